"""Survey statistics: thin wrappers over scipy, fed with aggregates (counts, sums, sums of squares).

Reports compute n, sums and sums of squares (or counts per answer value) in SQL; what is here turns
them into estimates and tests without seeing a single response. Distributions and tests are scipy's,
nothing is written by hand but the arithmetic around them:

- a mean's interval: Student's t with n - 1 degrees of freedom, s from the sums;
- a proportion's interval: Wilson's score interval (``scipy.stats.binomtest(...).proportion_ci``);
- NPS (promoters - detractors, in percent): the normal (Wald) interval of the mean of a variable that is
  +1 for a promoter, 0 for a passive and -1 for a detractor, whose variance is
  p+ + p- - (p+ - p-)^2 (the trinomial's); clipped to -100..100;
- two means: Welch's t-test (``ttest_ind_from_stats``, unequal variances) with the Welch-Satterthwaite
  degrees of freedom, the difference's interval, Cohen's d (pooled SD) and Hedges' g (d corrected for
  small samples, J = 1 - 3 / (4 (n1 + n2) - 9));
- two ordinal samples: the Mann-Whitney U test (``mannwhitneyu``, two-sided; exact for small samples
  without ties, otherwise the normal approximation with scipy's tie correction and continuity
  correction), counts per value expanded to arrays, and the rank-biserial correlation;
- a p-chart: centre line p = sum k / sum n, limits p +- 3 sqrt(p (1 - p) / n_i) per point (varying n),
  clipped to 0..1;
- small cells (``suppress``): primary and complementary (secondary) cell suppression among the parts of one
  total, as statistical agencies do it: a part with fewer than the minimum is hidden, and while the hidden
  parts of a shown total hold some but fewer than the minimum between them (what the total minus the shown
  parts would give away), the smallest shown part is hidden too. Where the parts' counts are not all told
  (``untold``: an anonymous questionnaire's), no hidden part stands alone either.

Effects and differences are B minus A: positive when group B is higher.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

# scipy.stats is imported where a statistic is computed, not with this module: the import costs seconds (tens on a
# busy machine) and the schema imports this module, so every process that serves or runs `careloop` paid for it at
# start, most of which never compute one (the CLI's commands, a worker before its first survey report).

CONFIDENCE = 0.95
K = TypeVar("K", bound=Hashable)

# what ``suppress`` says of a part
SHOWN = "shown"
TOO_FEW = "too_few_responses"  # fewer than the minimum behind it: the primary rule
PROTECTS = "protects_small_cell"  # enough behind it, hidden so that a small part cannot be worked back


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float | None  # None: no interval (one observation)
    high: float | None


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample summarised: its size, mean and (n - 1) variance (None for fewer than two values)."""

    n: int
    mean: float
    variance: float | None

    @classmethod
    def from_sums(cls, n: int, total: float, sum_squares: float) -> Sample:
        if n <= 0:
            raise ValueError("an empty sample has no mean")
        mean = total / n
        # Where every value is the same, the difference of two large sums leaves a rounding residue (a tiny
        # negative, or ~1e-11 for 91.666667 twelve times, which made Welch's t 1.8e7; found in review): a
        # residue within 1e-9 of the sum of squares is no variance at all. Scores differ by far more.
        residue = sum_squares - total * total / n
        variance = (0.0 if residue <= 1e-9 * abs(sum_squares) else residue / (n - 1)) if n > 1 else None
        return cls(n, mean, variance)

    @classmethod
    def from_counts(cls, counts: Mapping[float, int]) -> Sample:
        n = sum(counts.values())
        return cls.from_sums(n, sum(v * c for v, c in counts.items()), sum(v * v * c for v, c in counts.items()))

    @property
    def sd(self) -> float | None:
        return None if self.variance is None else math.sqrt(self.variance)


def _clip(value: float, bounds: tuple[float, float] | None) -> float:
    return value if bounds is None else min(max(value, bounds[0]), bounds[1])


def mean_interval(sample: Sample, confidence: float = CONFIDENCE,
                  bounds: tuple[float, float] | None = None) -> Interval:
    """The mean with its t interval (clipped to the scale's ``bounds``, if given)."""
    from scipy import stats

    if sample.variance is None:
        return Interval(sample.mean, None, None)
    half = float(stats.t.ppf((1 + confidence) / 2, sample.n - 1)) * math.sqrt(sample.variance / sample.n)
    return Interval(sample.mean, _clip(sample.mean - half, bounds), _clip(sample.mean + half, bounds))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The share of successes (0-1) with Wilson's score interval."""
    from scipy import stats

    if n <= 0:
        raise ValueError("an empty sample has no proportion")
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high))


def nps(promoters: int, detractors: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The Net Promoter Score (-100..100) with the normal interval of the trinomial's mean."""
    from scipy import stats

    if n <= 0:
        raise ValueError("an empty sample has no NPS")
    up, down = promoters / n, detractors / n
    score = up - down
    z = float(stats.norm.ppf((1 + confidence) / 2))
    half = z * math.sqrt(max(0.0, up + down - score * score) / n)
    return Interval(100 * score, 100 * max(-1.0, score - half), 100 * min(1.0, score + half))


@dataclass(frozen=True, slots=True)
class Welch:
    statistic: float | None  # t; None when neither group varies
    df: float | None
    p_value: float | None
    difference: float  # mean B - mean A
    low: float | None  # the difference's interval at 1 - alpha
    high: float | None
    cohens_d: float | None  # None when the pooled SD is 0
    hedges_g: float | None


def welch(a: Sample, b: Sample, alpha: float = 1 - CONFIDENCE) -> Welch:
    """Welch's two-sided t-test of mean B against mean A, from each group's n, mean and variance."""
    from scipy import stats

    if a.variance is None or b.variance is None:
        raise ValueError("each group needs at least two values")
    difference = b.mean - a.mean
    va, vb = a.variance / a.n, b.variance / b.n
    pooled = ((a.n - 1) * a.variance + (b.n - 1) * b.variance) / (a.n + b.n - 2)
    d = difference / math.sqrt(pooled) if pooled > 0 else None
    g = d * (1 - 3 / (4 * (a.n + b.n) - 9)) if d is not None else None
    if va + vb == 0:
        return Welch(None, None, None, difference, None, None, d, g)
    df = (va + vb) ** 2 / (va * va / (a.n - 1) + vb * vb / (b.n - 1))
    result = stats.ttest_ind_from_stats(b.mean, math.sqrt(b.variance), b.n, a.mean, math.sqrt(a.variance), a.n,
                                        equal_var=False)
    half = float(stats.t.ppf(1 - alpha / 2, df)) * math.sqrt(va + vb)
    return Welch(float(result.statistic), df, float(result.pvalue), difference, difference - half,
                 difference + half, d, g)


@dataclass(frozen=True, slots=True)
class MannWhitney:
    u_a: float  # U of group A: pairs where A's value is higher, ties counting one half
    p_value: float | None  # None if scipy finds none (every answer the same gives 1.0)
    rank_biserial: float  # (U_B - U_A) / (n_A n_B): +1 when every B is higher


def _expand(counts: Mapping[float, int]) -> np.ndarray:
    values = sorted(v for v, c in counts.items() if c > 0)
    return np.repeat(np.asarray(values, dtype=float), [counts[v] for v in values])


def mann_whitney(a: Mapping[float, int], b: Mapping[float, int]) -> MannWhitney:
    """The two-sided Mann-Whitney U test between two samples given as counts per value."""
    from scipy import stats

    xa, xb = _expand(a), _expand(b)
    if not len(xa) or not len(xb):
        raise ValueError("each group needs at least one value")
    result = stats.mannwhitneyu(xa, xb, alternative="two-sided")
    u_a, pairs = float(result.statistic), len(xa) * len(xb)
    p = float(result.pvalue)
    return MannWhitney(u_a, None if math.isnan(p) else p, 1 - 2 * u_a / pairs)


@dataclass(frozen=True, slots=True)
class ChartPoint:
    proportion: float
    low: float  # lower control limit, 0-1
    high: float
    out_of_control: bool


@dataclass(frozen=True, slots=True)
class PChart:
    centre: float
    points: list[ChartPoint]


def p_chart(samples: Sequence[tuple[int, int]]) -> PChart:
    """A p-chart over (n, successes) per period, each period with its own limits."""
    total = sum(n for n, _ in samples)
    if total <= 0:
        raise ValueError("a chart needs observations")
    centre = sum(k for _, k in samples) / total
    points = []
    for n, k in samples:
        sigma = math.sqrt(centre * (1 - centre) / n)
        low, high = max(0.0, centre - 3 * sigma), min(1.0, centre + 3 * sigma)
        p = k / n
        points.append(ChartPoint(p, low, high, p < low or p > high))
    return PChart(centre, points)


def suppress(counts: Mapping[K, int], least: int, hidden: Set[K] = frozenset(),
             order: Callable[[K], Any] = str, untold: Set[K] | None = None) -> dict[K, str]:
    """Primary and complementary suppression among the parts of one total: what each part is (SHOWN, TOO_FEW,
    PROTECTS), given the responses behind each part (``counts``), the minimum (``least``), and the parts
    hidden already for another reason (``hidden``: TOO_FEW when below the minimum, PROTECTS otherwise).

    The total (the sum of the parts) is shown when it holds at least ``least``; if it holds fewer, every part
    does too and all are TOO_FEW. Otherwise the parts below the minimum are hidden, and then, while the
    hidden parts hold between 1 and ``least`` - 1 between them (the total minus the shown parts would give
    them away), the smallest shown part holding any (ties in ``order``) is hidden as well. So what can be
    worked back by subtraction, the hidden parts together, holds none or at least ``least``; a part holding
    none adds nothing and is never hidden to protect another.

    ``untold`` (None: the rule above alone) names the parts whose count is not told where they are hidden (an
    anonymous questionnaire's hidden rows): such a part may hold answers even at 0. Then, too, while one hidden
    part alone may hold answers (the total minus the shown parts is that part's figure, a count of 0 included),
    or the hidden parts that may hold answers hold fewer than ``least`` (0 included: "none of them"), the next
    smallest shown part is hidden, one holding more than ``least`` first: PROTECTS says "at least ``least``", so
    beside small parts holding none, protectors holding exactly that would tell that they hold none.
    """
    small = {key for key, n in counts.items() if n < least}
    if sum(counts.values()) < least:
        return dict.fromkeys(counts, TOO_FEW)
    concealed = small | {key for key in hidden if key in counts}
    # untold, a part of exactly the minimum protects last: PROTECTS says "at least the minimum", so beside small parts
    # holding none it would tell that they hold none (the hidden total minus the minimum would be 0)
    spare = iter(sorted((k for k in counts if k not in concealed and counts[k] > 0),
                        key=lambda k: (untold is not None and counts[k] <= least, counts[k], order(k))))
    while _worked_back(counts, concealed, least, untold):
        key = next(spare, None)
        if key is None:  # every part hidden: the total is the only figure left
            break
        concealed.add(key)
    return {key: TOO_FEW if key in small else PROTECTS if key in concealed else SHOWN for key in counts}


def _worked_back(counts: Mapping[K, int], concealed: Set[K], least: int, untold: Set[K] | None) -> bool:
    """Whether the total minus the shown parts gives a hidden part's figure, or fewer than ``least`` answers."""
    residual = sum(counts[key] for key in concealed)
    if untold is None:
        return 0 < residual < least
    holding = [key for key in concealed if counts[key] > 0 or key in untold]
    return len(holding) == 1 or (len(holding) > 1 and residual < least)
