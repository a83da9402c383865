"""core.statistics against published textbook values and against the formulas worked by hand."""

from __future__ import annotations

import math

import pytest

from core import statistics
from core.statistics import Sample

# Moore, McCabe & Craig, Introduction to the Practice of Statistics, Example 7.14 ("Directed reading
# activities", after Schmitt, 1987): DRP scores of 21 third-graders taught with directed reading activities
# and of a control class of 23. The book: means 51.48 and 41.52, s 11.01 and 17.15, t = 2.31, df = 37.86
# (software; Welch-Satterthwaite), one-sided P = 0.013, so two-sided 0.026.
DRP_TREATMENT = [24, 43, 58, 71, 43, 49, 61, 44, 67, 49, 53, 56, 59, 52, 62, 54, 57, 33, 46, 43, 57]
DRP_CONTROL = [42, 43, 55, 26, 62, 37, 33, 41, 19, 54, 20, 85, 46, 10, 17, 60, 53, 42, 37, 42, 55, 28, 48]

# Moore, McCabe & Craig, Introduction to the Practice of Statistics, Examples 15.1-15.3 ("Weeds among the
# corn"): yields (bushels per acre) of 4 weed-free plots and of 4 plots with 3 lamb's-quarter plants per metre.
# The book: rank sum of the weed-free plots W = 23, exact one-sided P(W >= 23) = 0.100. Then U = W - 4*5/2 = 13
# and the two-sided exact P = 0.200.
CORN_WEED_FREE = [166.7, 172.2, 165.0, 176.9]
CORN_WEEDS = [158.6, 176.4, 153.1, 156.0]

# Moore, McCabe & Craig, Introduction to the Practice of Statistics, Example 7.2 (vitamin C of corn soy
# blend, mg/100 g): mean 22.50, s = 7.19, 95 % t interval 22.50 +- 6.01 = (16.49, 28.51).
VITAMIN_C = [26, 31, 23, 22, 11, 22, 14, 31]

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven methods",
# Statistics in Medicine 17:857-872, Table I, method 3 (Wilson's score interval without continuity correction).
NEWCOMBE_WILSON = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)),
                   ((1, 29), (0.0061, 0.1718))]

Z95 = 1.959963984540054  # the normal 97.5 % quantile (tables: 1.96)


def sample(values: list[float]) -> Sample:
    return Sample.from_sums(len(values), sum(values), sum(v * v for v in values))


def counts(values: list[float]) -> dict[float, int]:
    found: dict[float, int] = {}
    for v in values:
        found[v] = found.get(v, 0) + 1
    return found


def test_the_welch_test_gives_the_textbook_drp_values() -> None:
    control, treatment = sample(DRP_CONTROL), sample(DRP_TREATMENT)
    assert (round(treatment.mean, 2), round(treatment.sd or 0, 2)) == (51.48, 11.01)
    assert (round(control.mean, 2), round(control.sd or 0, 2)) == (41.52, 17.15)

    t = statistics.welch(control, treatment)  # B - A: the treatment's gain

    assert round(t.statistic or 0, 2) == 2.31
    assert round(t.df or 0, 2) == 37.86
    assert round((t.p_value or 0) / 2, 3) == 0.013  # the book's one-sided P
    assert round(t.p_value or 0, 4) == 0.0264
    assert t.difference == pytest.approx(51.4762 - 41.5217, abs=1e-4)


def test_welch_effect_sizes_and_interval_by_hand() -> None:
    a, b = sample(DRP_CONTROL), sample(DRP_TREATMENT)
    t = statistics.welch(a, b, alpha=0.05)
    assert a.variance is not None and b.variance is not None
    pooled = math.sqrt(((a.n - 1) * a.variance + (b.n - 1) * b.variance) / (a.n + b.n - 2))
    d = (b.mean - a.mean) / pooled
    assert t.cohens_d == pytest.approx(d)
    assert t.hedges_g == pytest.approx(d * (1 - 3 / (4 * 44 - 9)))
    # the difference's 95 % interval: +- t(0.975, 37.86) * SE; t(0.975, 37.86) = 2.0245 (interpolated tables)
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    assert t.low == pytest.approx(t.difference - 2.0245 * se, abs=1e-3)
    assert t.high == pytest.approx(t.difference + 2.0245 * se, abs=1e-3)


def test_welch_without_any_variation_has_no_statistic() -> None:
    t = statistics.welch(Sample.from_sums(3, 150, 7500), Sample.from_sums(3, 240, 19200))
    assert (t.statistic, t.p_value, t.difference, t.cohens_d) == (None, None, 30.0, None)
    with pytest.raises(ValueError):
        statistics.welch(Sample.from_sums(1, 50, 2500), Sample.from_sums(3, 240, 19200))


def test_mann_whitney_gives_the_textbook_corn_values() -> None:
    u = statistics.mann_whitney(counts(CORN_WEED_FREE), counts(CORN_WEEDS))
    assert u.u_a == 13  # W = 23 = U + 4*5/2
    assert u.p_value == pytest.approx(0.200, abs=5e-4)
    # B (the weedy plots) lower: the rank-biserial correlation is negative, (U_B - U_A) / 16 = (3 - 13) / 16
    assert u.rank_biserial == pytest.approx(-0.625)


def tied_mann_whitney_by_hand(a: dict[float, int], b: dict[float, int]) -> tuple[float, float]:
    """U of A and the two-sided p of the normal approximation with mid-ranks, the tie correction
    sigma^2 = nA nB / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))) and a continuity correction of 1/2."""
    na, nb = sum(a.values()), sum(b.values())
    n, rank, rank_sum_a, ties = na + nb, 0, 0.0, 0
    for value in sorted(set(a) | set(b)):
        t = a.get(value, 0) + b.get(value, 0)
        mid = rank + (t + 1) / 2
        rank_sum_a += a.get(value, 0) * mid
        rank += t
        ties += t ** 3 - t
    u_a = rank_sum_a - na * (na + 1) / 2
    sigma = math.sqrt(na * nb / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (abs(u_a - na * nb / 2) - 0.5) / sigma
    return u_a, math.erfc(z / math.sqrt(2))


def test_mann_whitney_with_ties_as_worked_by_hand() -> None:
    before, after = {2.0: 3, 3.0: 4, 4.0: 5, 5.0: 3}, {3.0: 2, 4.0: 6, 5.0: 7}
    u_a, p = tied_mann_whitney_by_hand(before, after)
    found = statistics.mann_whitney(before, after)
    assert found.u_a == pytest.approx(u_a)
    assert found.p_value == pytest.approx(p, rel=1e-9)
    assert found.rank_biserial == pytest.approx(1 - 2 * u_a / (15 * 15))
    same = statistics.mann_whitney({4.0: 6}, {4.0: 5})  # nothing varies: scipy finds no difference at all
    assert (same.u_a, same.p_value, same.rank_biserial) == (15, 1.0, 0)


def test_the_t_interval_gives_the_textbook_vitamin_c_values() -> None:
    found = statistics.mean_interval(sample(VITAMIN_C))
    assert (round(found.value, 2), round(found.low or 0, 2), round(found.high or 0, 2)) == (22.50, 16.49, 28.51)
    clipped = statistics.mean_interval(sample(VITAMIN_C), bounds=(20, 25))
    assert (clipped.low, clipped.high) == (20, 25)
    assert statistics.mean_interval(Sample.from_sums(1, 4, 16)) == statistics.Interval(4.0, None, None)


@pytest.mark.parametrize(("case", "expected"), NEWCOMBE_WILSON)
def test_wilson_gives_newcombes_table(case: tuple[int, int], expected: tuple[float, float]) -> None:
    found = statistics.wilson(*case)
    assert (round(found.low or 0, 4), round(found.high or 0, 4)) == expected
    assert found.value == case[0] / case[1]


def test_nps_interval_by_hand() -> None:
    # 10 answers: 5 promoters, 3 passives, 2 detractors. NPS = 50 - 20 = 30; variance of the +1/0/-1 variable
    # 0.5 + 0.2 - 0.3^2 = 0.61; half width 1.96 * sqrt(0.61 / 10) = 0.48408 (48.41 points)
    found = statistics.nps(5, 2, 10)
    half = Z95 * math.sqrt(0.61 / 10) * 100
    assert found.value == pytest.approx(30)
    assert (round(found.low or 0, 4), round(found.high or 0, 4)) == (round(30 - half, 4), round(30 + half, 4))
    assert (round(found.low or 0, 2), round(found.high or 0, 2)) == (-18.41, 78.41)
    everyone = statistics.nps(10, 0, 10)
    assert (everyone.value, everyone.low, everyone.high) == (100, 100, 100)


def test_p_chart_by_hand() -> None:
    # 66 satisfied of 80 over four months: p = 0.825; for n = 20, sigma = sqrt(0.825 * 0.175 / 20) = 0.084963
    chart = statistics.p_chart([(20, 18), (20, 19), (20, 10), (20, 19)])
    assert chart.centre == pytest.approx(0.825)
    sigma = math.sqrt(0.825 * 0.175 / 20)
    low = chart.points[0].low
    assert (round(low, 4), chart.points[0].high) == (round(0.825 - 3 * sigma, 4), 1.0)
    assert round(low, 4) == 0.5701
    assert [p.out_of_control for p in chart.points] == [False, False, True, False]
    # varying n: a month of 80 has limits half as wide as a month of 20
    varying = statistics.p_chart([(20, 18), (80, 66)])
    assert varying.centre - varying.points[1].low == pytest.approx((varying.centre - varying.points[0].low) / 2)


def test_samples_from_sums_and_counts_agree() -> None:
    values = [1.0, 2.0, 2.0, 5.0, 5.0, 5.0]
    by_sums, by_counts = sample(values), Sample.from_counts(counts(values))
    assert by_sums == by_counts
    assert by_sums.variance == pytest.approx(sum((v - 10 / 3) ** 2 for v in values) / 5)
    assert Sample.from_sums(4, 400, 40000).variance == 0  # rounding never makes it negative
    same = [91.666667] * 12  # a score rounded to 6 decimals: the sums leave a residue of ~1e-11 (found in review)
    assert sample(same).variance == 0
    assert statistics.welch(sample(same), sample([100.0] * 12)).statistic is None
    assert sample([91.666667] * 11 + [92.666667]).variance == pytest.approx(1 / 12)  # one point apart: a variance
    with pytest.raises(ValueError):
        Sample.from_sums(0, 0, 0)
