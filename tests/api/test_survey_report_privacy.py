"""Complementary disclosure in survey reports, through the API: a hidden small cell cannot be worked back by
subtraction, from a department's row minus its shown clinicians, from the institution (or a department) minus
the cells shown beside it, or from one period minus an overlapping one.

The rule (resolvers/survey_report.py): the report's cells (version, department, month, and clinician) are the
only figures released. Among a department's clinicians, when the hidden ones hold some but fewer than minCell
responses (or answers to a figure) between them, the next smallest is hidden too (PROTECTS_SMALL_CELL); the
control chart and the comparisons' groups add up only the cells the report shows (``withheld`` counts the rest);
two groups of one comparison must share no response. A hidden row shows its counts, not its figures' counts.

The data set (department A, November 2025, version 1, minCell 5), scores as tests/api/test_survey_reports.py
scales them (the mean of q1 and q2, (v - 1) / 4 * 100):

| clinician | responses | scores | q7 answers |
|---|---|---|---|
| x (the doctor) | 2 | 0, 12.5 | 2 |
| n (the nurse) | 5 | 100 x 5 | 0 |
| h (the head) | 7 | 100, 87.5, 75, 62.5, 87.5, 100, 100 | 1 |
| f (the front desk) | 8 | 62.5 x 6, 100 x 2 | 6 |

so x is hidden (2 < 5), and n, the next smallest, with it (2 + 5 = 7 >= 5); h and f are shown. For the
conditional item q7 the hidden rows and h (1 answer) hold 3 answers: f's q7 is hidden too (a figure of a shown
row, PROTECTS_SMALL_CELL). Besides: version 2 has 3 responses in department A (no clinician), department B has 2.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from core import statistics
from models import Questionnaire
from tests.api.test_survey_reports import (
    ALL_SATISFIED,
    CHART,
    COMPARE,
    NOVEMBER,
    REPORT,
    invite,
    questionnaire,
    respond,
)
from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient

T_975_6 = 2.4469118511449692  # Student's t, 97.5 % quantile, 6 degrees of freedom (tables: 2.447)
LOW = [{"q1": 1, "q2": 1, "q3": "a", "q5": 2, "q6": 1, "q7": False},  # score 0
       {"q1": 2, "q2": 1, "q3": "b", "q5": 0, "q6": 1, "q7": False}]  # score 12.5
FAIR = {"q1": 3, "q2": 4, "q3": "c", "q5": 7, "q6": 4, "q7": True}  # score 62.5
H_SCORES = [100, 87.5, 75, 62.5, 87.5, 100, 100]
PERIOD = {"from": "2025-11", "to": "2025-11"}


class Data:
    def __init__(self, tenant: Tenant, v1: Questionnaire, v2: Questionnaire) -> None:
        self.tenant, self.v1, self.v2, self.key = tenant, v1, v2, str(v1.key)
        self.x, self.n, self.h, self.f = (str(tenant.staff_ids[r]) for r in (
            "doctor", "nurse", "department_head", "front_desk"))
        self.a, self.b = str(tenant.departments["A"].id), str(tenant.departments["B"].id)


@pytest.fixture
async def data(tenant: Tenant) -> Data:
    v1 = await questionnaire(tenant)
    v2 = await questionnaire(tenant, v1.key, 2)
    staff = tenant.staff_ids
    await respond(tenant, v1, "2025-11", LOW, clinician=staff["doctor"])
    await respond(tenant, v1, "2025-11", [ALL_SATISFIED] * 5, clinician=staff["nurse"])
    await respond(tenant, v1, "2025-11", NOVEMBER[:5] + [ALL_SATISFIED] * 2, clinician=staff["department_head"])
    await respond(tenant, v1, "2025-11", [FAIR] * 6 + [ALL_SATISFIED] * 2, clinician=staff["front_desk"])
    await respond(tenant, v2, "2025-11", [ALL_SATISFIED] * 3)  # version 2: a small cell of its own
    await respond(tenant, v1, "2025-11", LOW, department="B")  # department B: a small department
    return Data(tenant, v1, v2)


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def items(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["linkId"]: i for i in row["items"]}


def total(estimate: dict[str, Any]) -> float:
    """What a shown mean gives away: its sum (mean times n)."""
    return float(estimate["value"]) * int(estimate["responses"])


async def test_a_clinician_with_two_responses_is_hidden_with_the_next_smallest(data: Data) -> None:
    tenant = data.tenant
    report = ok(await tenant.call("department_head", REPORT, key=data.key, dep=data.a, by=True, **PERIOD),
                "surveyReport")
    rows = {r["clinicianId"]: r for r in report["rows"] if r["version"] == 1}
    assert {c: (r["responses"], r["status"]) for c, r in rows.items()} == {
        data.x: (2, "TOO_FEW_RESPONSES"), data.n: (5, "PROTECTS_SMALL_CELL"), data.h: (7, "SHOWN"),
        data.f: (8, "SHOWN")}
    # a hidden row: its responses, nothing of its figures, not even how many answered each (x's two answers to
    # q7, shown only when q1 <= 3, would tell what they answered to q1)
    for hidden, status in ((data.x, "TOO_FEW_RESPONSES"), (data.n, "PROTECTS_SMALL_CELL")):
        row = rows[hidden]
        for figure in ("score", "satisfied", "nps", "csat"):
            assert row[figure] == {"status": status, "responses": None, "value": None, "low": None, "high": None}
        assert {(i["status"], i["responses"], i["distribution"]) for i in row["items"]} == {(status, None, None)}
        assert row["meetsTarget"] is None
    # h is shown: mean 87.5, s = sqrt(1250 / 6), and the t interval's top (100.849) clipped to the scale
    mean = sum(H_SCORES) / 7
    half = T_975_6 * math.sqrt(1250 / 6) / math.sqrt(7)
    assert (round(mean, 4), round(mean + half, 4)) == (87.5, 100.849)
    h_score = rows[data.h]["score"]
    assert (h_score["status"], h_score["responses"], round(h_score["value"], 4), round(h_score["low"], 4),
            h_score["high"]) == ("SHOWN", 7, 87.5, round(mean - half, 4), 100.0)
    # a figure of a shown row, protecting: q7 of the hidden rows and of h (one answer) holds three answers, so
    # f's (six) is hidden too; h's own q7 is too few, its count shown (the row is)
    assert (items(rows[data.h])["q7"]["status"], items(rows[data.h])["q7"]["responses"]) == ("TOO_FEW_RESPONSES", 1)
    f_q7 = items(rows[data.f])["q7"]
    assert (f_q7["status"], f_q7["responses"], f_q7["mean"]["value"], f_q7["distribution"]) == (
        "PROTECTS_SMALL_CELL", 6, None, None)
    assert items(rows[data.f])["q1"]["status"] == "SHOWN"

    # the attack: the department's row minus the shown clinicians
    (department,) = [r for r in ok(await tenant.call("department_head", REPORT, key=data.key, dep=data.a, **PERIOD),
                                   "surveyReport")["rows"] if r["version"] == 1]
    assert (department["responses"], department["status"], department["score"]["responses"]) == (22, "SHOWN", 22)
    left_n = department["score"]["responses"] - h_score["responses"] - rows[data.f]["score"]["responses"]
    left_sum = total(department["score"]) - total(h_score) - total(rows[data.f]["score"])
    assert left_n == 7  # x and n together, not x's 2
    assert left_sum / left_n == pytest.approx((0 + 12.5 + 5 * 100) / 7)  # 73.21, not x's 6.25
    # the same for an item's distribution: q1 of x and n together (1, 2 and five 5s), not x's (1, 2)
    q1 = {d["value"]: d["responses"] for d in items(department)["q1"]["distribution"]}
    for shown in (data.h, data.f):
        for d in items(rows[shown])["q1"]["distribution"]:
            q1[d["value"]] -= d["responses"]
    assert q1 == {"1": 1, "2": 1, "3": 0, "4": 0, "5": 5}
    # q7: the department's nine answers; with f's hidden, nothing shown to subtract from them
    assert (items(department)["q7"]["status"], items(department)["q7"]["responses"]) == ("SHOWN", 9)

    # asked about one clinician alone, the same cells hidden: their colleagues decide
    for clinician, status in ((data.x, "TOO_FEW_RESPONSES"), (data.n, "PROTECTS_SMALL_CELL"), (data.h, "SHOWN")):
        alone = ok(await tenant.call("department_head", REPORT, key=data.key, dep=data.a, clinician=clinician,
                                     **PERIOD), "surveyReport")["rows"]
        assert [(r["clinicianId"], r["status"]) for r in alone] == [(clinician, status)]
        assert alone[0]["score"] == rows[clinician]["score"]
    # so does an admin's breakdown of the whole institution
    admin = ok(await tenant.call("admin", REPORT, key=data.key, by=True, **PERIOD), "surveyReport")["rows"]
    assert {r["clinicianId"]: r["status"] for r in admin if r["departmentId"] == data.a and r["version"] == 1} == {
        c: r["status"] for c, r in rows.items()}


async def test_the_institution_and_other_versions_minus_shown_cells_give_nothing(data: Data) -> None:
    """The chart and the comparisons add up the report's shown cells only: department B (two responses) and
    version 2 (three) are left out of the institution's and the department's figures, x and n out of any group
    of theirs."""
    tenant = data.tenant
    report = ok(await tenant.call("admin", REPORT, key=data.key, **PERIOD), "surveyReport")["rows"]
    cells = {(r["departmentId"], r["version"]): r for r in report}
    assert {k: (r["responses"], r["status"]) for k, r in cells.items()} == {
        (data.a, 1): (22, "SHOWN"), (data.a, 2): (3, "TOO_FEW_RESPONSES"), (data.b, 1): (2, "TOO_FEW_RESPONSES")}
    shown = cells[(data.a, 1)]["satisfied"]

    async def point(role: str, dep: str | None) -> dict[str, Any]:
        chart = ok(await tenant.call(role, CHART, key=data.key, dep=dep, **PERIOD), "surveyControlChart")
        (found,) = chart["points"]
        assert chart["centreLine"] == found["percentSatisfied"]
        return dict(found)

    institution, department = await point("admin", None), await point("admin", data.a)
    head = await point("department_head", None)  # the head's reach: department A
    # the institution minus department A: nothing of B; department A minus its version 1: nothing of version 2
    for found, withheld in ((institution, 5), (department, 3), (head, 3)):
        assert (found["status"], found["responses"], found["withheld"]) == ("SHOWN", 22, withheld)
        assert found["percentSatisfied"] == pytest.approx(shown["value"])
    assert shown["responses"] == 22
    b_chart = await point("admin", data.b)
    assert (b_chart["status"], b_chart["responses"], b_chart["withheld"], b_chart["percentSatisfied"]) == (
        "TOO_FEW_RESPONSES", 0, 2, None)

    async def group(role: str, **group: Any) -> dict[str, Any]:
        found = ok(await tenant.call(role, COMPARE, key=data.key, a={**PERIOD, **group},
                                     b={"from": "2025-10", "to": "2025-10"}), "surveyComparison")
        return dict(found["groupA"])

    whole, a_only = await group("admin"), await group("admin", departmentId=data.a)
    assert {k: whole[k] for k in ("responses", "withheld")} == {"responses": 22, "withheld": 5}
    assert (a_only["responses"], a_only["withheld"], a_only["mean"], a_only["standardDeviation"]) == (
        22, 3, whole["mean"], whole["standardDeviation"])
    assert whole["mean"] * 22 == pytest.approx(total(cells[(data.a, 1)]["score"]))
    # a clinician's group: x's two and n's five (hidden to protect x) are left out; h's is h's cell
    for clinician, responses, withheld in ((data.x, 0, 2), (data.n, 0, 5), (data.h, 7, 0)):
        for dep in (data.a, None):
            found = await group("department_head", departmentId=dep, clinicianId=clinician)
            assert (found["responses"], found["withheld"]) == (responses, withheld)
            assert (found["mean"] is None) == (responses == 0)
    # an item's group too: f's q7 protects x's, so neither counts
    item = ok(await tenant.call("admin", COMPARE, key=data.key, item="q7", a={**PERIOD, "clinicianId": data.f},
                                b={"from": "2025-10", "to": "2025-10"}), "surveyComparison")["groupA"]
    assert (item["status"], item["responses"], item["withheld"]) == ("TOO_FEW_RESPONSES", 0, 6)
    everyone = ok(await tenant.call("admin", COMPARE, key=data.key, item="q7", a={**PERIOD, "departmentId": data.a},
                                    b={"from": "2025-10", "to": "2025-10"}), "surveyComparison")["groupA"]
    # the department's cell of version 1 (nine answers, shown in the report); version 2's hidden row counts all
    # its three responses (how many of them answered q7 is not told)
    assert (everyone["responses"], everyone["withheld"]) == (9, 3)


@pytest.fixture
async def months(tenant: Tenant) -> Questionnaire:
    """Department A: January 8 responses, February 6, March 2 (a small cell), July 10; version 1 only."""
    q = await questionnaire(tenant)
    await respond(tenant, q, "2025-01", NOVEMBER + [ALL_SATISFIED] * 2)
    await respond(tenant, q, "2025-02", NOVEMBER)
    await respond(tenant, q, "2025-03", LOW)
    await respond(tenant, q, "2025-07", [FAIR] * 4 + [ALL_SATISFIED] * 6)
    return q


async def test_overlapping_periods_give_nothing_and_are_refused_in_one_comparison(tenant: Tenant,
                                                                                months: Questionnaire) -> None:
    key, july = str(months.key), {"from": "2025-07", "to": "2025-07"}

    async def compare(a: dict[str, Any], item: str | None = None) -> dict[str, Any]:
        return dict(ok(await tenant.call("department_head", COMPARE, key=key, a=a, b=july, item=item),
                       "surveyComparison"))

    for item in (None, "q1"):  # Welch on the score, Mann-Whitney on an item
        three, two = await compare({"from": "2025-01", "to": "2025-03"}, item), await compare(
            {"from": "2025-01", "to": "2025-02"}, item)
        # January to March minus January to February would be March's two responses: March is left out of both
        assert (three["groupA"]["responses"], three["groupA"]["withheld"]) == (14, 2)
        assert (two["groupA"]["responses"], two["groupA"]["withheld"]) == (14, 0)
        assert {k: v for k, v in three.items() if k != "groupA"} == {k: v for k, v in two.items() if k != "groupA"}
        assert {k: v for k, v in three["groupA"].items() if k != "withheld"} == {
            k: v for k, v in two["groupA"].items() if k != "withheld"}
        march = await compare({"from": "2025-03", "to": "2025-03"}, item)
        assert (march["status"], march["groupA"]["responses"], march["groupA"]["withheld"],
                march["groupA"]["mean"], march["statistic"]) == ("TOO_FEW_RESPONSES", 0, 2, None, None)
    # January to March, scores worked by hand: January's eight and February's six, not March's 0 and 12.5
    scores = [100, 87.5, 75, 62.5, 87.5, 37.5] * 2 + [100, 100]
    found = (await compare({"from": "2025-01", "to": "2025-03"}))["groupA"]
    assert found["mean"] == pytest.approx(sum(scores) / 14)
    assert found["standardDeviation"] == pytest.approx(statistics.Sample.from_sums(
        14, sum(scores), sum(s * s for s in scores)).sd)

    # one comparison of groups sharing responses is refused (and so is the textbook reason: the tests assume
    # independent samples)
    a_dep = str(tenant.departments["A"].id)
    for a, b, role in (
        ({"from": "2025-01", "to": "2025-03"}, {"from": "2025-03", "to": "2025-07"}, "department_head"),
        ({"from": "2025-01", "to": "2025-07"}, {"from": "2025-02", "to": "2025-02", "departmentId": a_dep},
         "department_head"),
        ({"from": "2025-01", "to": "2025-02"}, {"from": "2025-02", "to": "2025-02", "departmentId": a_dep}, "admin"),
        ({"from": "2025-01", "to": "2025-02", "clinicianId": str(tenant.staff_ids["doctor"])},
         {"from": "2025-01", "to": "2025-02"}, "admin"),
    ):
        reply = await tenant.call(role, COMPARE, key=key, a=a, b=b)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "groupB", reply.errors
        assert reply.data is None
    # groups apart by department or clinician may share months
    b_dep = str(tenant.departments["B"].id)
    for a, b in (({"departmentId": a_dep}, {"departmentId": b_dep}),
                 ({"clinicianId": str(tenant.staff_ids["doctor"])}, {"clinicianId": str(tenant.staff_ids["nurse"])})):
        period = {"from": "2025-01", "to": "2025-07"}
        ok(await tenant.call("admin", COMPARE, key=key, a={**period, **a}, b={**period, **b}), "surveyComparison")


async def test_reports_without_small_cells_are_unchanged(tenant: Tenant) -> None:
    """Every clinician with five or more responses: every cell shown, nothing withheld, and the department's row
    is the clinicians' rows added up."""
    q = await questionnaire(tenant)
    staff = tenant.staff_ids
    fair = {k: v for k, v in FAIR.items() if k != "q7"}  # q7 answered by the head's two only: too few anyway
    given = {staff["nurse"]: [ALL_SATISFIED] * 5, staff["department_head"]: NOVEMBER,
             staff["front_desk"]: [fair] * 6 + [ALL_SATISFIED] * 2}
    for clinician, answers in given.items():
        await respond(tenant, q, "2025-11", answers, clinician=clinician)
    dep = str(tenant.departments["A"].id)
    rows = ok(await tenant.call("department_head", REPORT, key=str(q.key), dep=dep, by=True, **PERIOD),
              "surveyReport")["rows"]
    assert sorted((r["responses"], r["status"]) for r in rows) == [(5, "SHOWN"), (6, "SHOWN"), (8, "SHOWN")]
    for row in rows:
        assert all(row[f]["status"] == "SHOWN" for f in ("score", "satisfied", "nps", "csat"))
        shown = {i["linkId"]: i["status"] for i in row["items"]}
        assert {k for k, v in shown.items() if v != "SHOWN"} <= {"q4", "q7"}  # answered by fewer than five
        assert "PROTECTS_SMALL_CELL" not in shown.values()
    (department,) = ok(await tenant.call("department_head", REPORT, key=str(q.key), dep=dep, **PERIOD),
                       "surveyReport")["rows"]
    assert department["responses"] == 19
    assert total(department["score"]) == pytest.approx(sum(total(r["score"]) for r in rows))
    (point,) = ok(await tenant.call("department_head", CHART, key=str(q.key), dep=dep, **PERIOD),
                  "surveyControlChart")["points"]
    assert (point["responses"], point["withheld"]) == (19, 0)
    assert point["percentSatisfied"] == pytest.approx(department["satisfied"]["value"]) == pytest.approx(1100 / 19)
    found = ok(await tenant.call("department_head", COMPARE, key=str(q.key), a={**PERIOD, "clinicianId": str(
        staff["department_head"])}, b={"from": "2025-10", "to": "2025-10"}), "surveyComparison")["groupA"]
    assert (found["responses"], found["withheld"], found["mean"]) == (6, 0, 75.0)


async def test_one_clinicians_report_costs_the_same_statements_for_few_or_many(tenant: Tenant,
                                                                              sql_counter: SqlCounter) -> None:
    """Reading a clinician's colleagues to decide what is hidden reads their aggregates, not their responses."""
    few, many = await questionnaire(tenant), await questionnaire(tenant)
    doctor, nurse = tenant.staff_ids["doctor"], tenant.staff_ids["nurse"]
    await respond(tenant, few, "2025-11", NOVEMBER[:2], clinician=doctor)
    await respond(tenant, few, "2025-11", NOVEMBER, clinician=nurse)
    await respond(tenant, many, "2025-11", (NOVEMBER * 20)[:100], clinician=doctor)
    await respond(tenant, many, "2025-11", (NOVEMBER * 20)[:120], clinician=nurse)

    async def cost(query: str, **variables: Any) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("department_head", query, **variables)
        assert reply.errors == [], reply.errors
        return len(sql_counter.statements) - start

    assert await cost(REPORT, key=str(few.key), clinician=str(doctor), **PERIOD) == await cost(
        REPORT, key=str(many.key), clinician=str(doctor), **PERIOD)
    group = {**PERIOD, "clinicianId": str(doctor)}
    october = {"from": "2025-10", "to": "2025-10"}
    for item in (None, "q1"):
        assert await cost(COMPARE, key=str(few.key), a=group, b=october, item=item) == await cost(
            COMPARE, key=str(many.key), a=group, b=october, item=item)


@pytest.mark.parametrize(("counts", "hidden", "expected"), [
    # one small part: the next smallest (not the largest) is hidden with it
    ({"x": 2, "n": 5, "h": 7, "f": 8}, set(), {"x": "too_few_responses", "n": "protects_small_cell", "h": "shown",
                                               "f": "shown"}),
    # two small parts already holding the minimum between them: nothing more
    ({"x": 2, "y": 3, "h": 7}, set(), {"x": "too_few_responses", "y": "too_few_responses", "h": "shown"}),
    # a part with none is no protection, and never hidden for another
    ({"x": 1, "z": 0, "h": 9, "f": 6}, set(), {"x": "too_few_responses", "z": "too_few_responses",
                                               "h": "shown", "f": "protects_small_cell"}),
    # a total below the minimum: every part too few
    ({"x": 2, "y": 2}, set(), {"x": "too_few_responses", "y": "too_few_responses"}),
    # no small part: all shown
    ({"h": 7, "f": 8}, set(), {"h": "shown", "f": "shown"}),
    # parts hidden already (their rows): counted, and with too little another is hidden
    ({"x": 1, "n": 0, "h": 6, "f": 9}, {"n"}, {"x": "too_few_responses", "n": "too_few_responses",
                                               "h": "protects_small_cell", "f": "shown"}),
    ({"x": 0, "n": 6, "h": 6}, {"n"}, {"x": "too_few_responses", "n": "protects_small_cell", "h": "shown"}),
    # the smallest that is enough may need two more
    ({"x": 1, "a": 1, "b": 1, "h": 20}, set(), {"x": "too_few_responses", "a": "too_few_responses",
                                                "b": "too_few_responses", "h": "protects_small_cell"}),
])
def test_suppression_among_the_parts_of_a_total(counts: dict[str, int], hidden: set[str],
                                                expected: dict[str, str]) -> None:
    assert statistics.suppress(counts, 5, hidden) == expected
    # ties are broken by the parts' order, so the answer never depends on how they were read
    assert statistics.suppress(dict(reversed(list(counts.items()))), 5, hidden) == expected


EVERY = object()  # untold: every part (a row's responses)
FEW, GUARD, SHOW = "too_few_responses", "protects_small_cell", "shown"


@pytest.mark.parametrize(("counts", "hidden", "untold", "expected"), [
    # a row of no response hidden alone: the total minus the shown parts is its 0; one holding more than 5 protects
    ({"x": 0, "n": 6, "h": 7}, set(), EVERY, {"x": FEW, "n": GUARD, "h": SHOW}),
    ({"x": 0, "n": 6, "h": 7}, set(), None, {"x": FEW, "n": SHOW, "h": SHOW}),  # identified: unchanged
    # a part of exactly the minimum last: hidden with x, its "at least 5" would pin x's at 0
    ({"x": 0, "n": 5, "h": 7}, set(), EVERY, {"x": FEW, "n": SHOW, "h": GUARD}),
    ({"x": 1, "n": 5, "h": 7}, set(), EVERY, {"x": FEW, "n": SHOW, "h": GUARD}),
    ({"x": 0, "n": 5}, set(), EVERY, {"x": FEW, "n": GUARD}),  # nothing else: the department is the doctor's
    # two small parts holding the minimum between them: nothing more
    ({"x": 2, "y": 3, "h": 7}, set(), EVERY, {"x": FEW, "y": FEW, "h": SHOW}),
    # a figure: the hidden rows' counts are untold, two of them are enough ...
    ({"x": 0, "n": 6, "h": 6}, {"x", "n"}, {"x", "n"}, {"x": FEW, "n": GUARD, "h": SHOW}),
    # ... unless they hold none of it between them ("none of them answered it")
    ({"x": 0, "n": 0, "h": 6, "f": 9}, {"x", "n"}, {"x", "n"}, {"x": FEW, "n": FEW, "h": GUARD, "f": SHOW}),
    # a figure's count of 0 told in a shown row adds nothing to protect
    ({"x": 0, "h": 6, "f": 9}, set(), set(), {"x": FEW, "h": SHOW, "f": SHOW}),
    # invitations (told to staff by the invitation list): x invited none, so n's answered would come out alone
    ({"x": 0, "n": 7, "h": 6, "f": 9}, {"x", "n"}, set(), {"x": FEW, "n": GUARD, "h": GUARD, "f": SHOW}),
])
def test_no_hidden_part_stands_alone_where_counts_are_untold(counts: dict[str, int], hidden: set[str], untold: Any,
                                                            expected: dict[str, str]) -> None:
    told = set(counts) if untold is EVERY else untold
    assert statistics.suppress(counts, 5, hidden, untold=told) == expected
    assert statistics.suppress(dict(reversed(list(counts.items()))), 5, hidden, untold=told) == expected


def test_ties_are_broken_by_order() -> None:
    ids = sorted(uuid.uuid4() for _ in range(2))
    found = statistics.suppress({ids[1]: 5, ids[0]: 5, "x": 1}, 5, order=str)
    assert (found[ids[0]], found[ids[1]], found["x"]) == ("protects_small_cell", "shown", "too_few_responses")


# -- an anonymous questionnaire: no hidden clinician stands alone ------------------------------------------------

BREAKDOWN = """query($key: ID!, $dep: ID!, $clinician: ID, $by: Boolean! = false) {
  surveyReport(questionnaireKey: $key, from: "2025-10", to: "2025-11", departmentId: $dep, clinicianId: $clinician,
               byClinician: $by) {
    minCell rows { clinicianId month invitedCount responseCount status score { status responses value } } }
  surveyControlChart(questionnaireKey: $key, from: "2025-10", to: "2025-11", departmentId: $dep) {
    centreLine points { month status responses withheldCount percentSatisfied } } }"""
GROUP = """query($key: ID!, $a: SurveyGroupInput!) {
  surveyComparison(questionnaireKey: $key, groupA: $a, groupB: {from: "2025-01", to: "2025-01"}) {
    groupA { status responses withheldCount mean } } }"""
NOVEMBER_ONLY = {"from": "2025-11", "to": "2025-11"}


async def anonymous_questionnaire(tenant: Tenant, anonymous: bool = True) -> Questionnaire:
    q = await questionnaire(tenant)
    await Questionnaire.filter(id=q.id).update(anonymous=anonymous)
    return q


async def breakdown(tenant: Tenant, role: str, q: Questionnaire, month: str = "2025-11",
                    **asked: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """The department's row of ``month``, its clinicians' rows (by clinician id) and the chart, as ``role`` reads
    them."""
    dep = str(tenant.departments["A"].id)
    alone = ok(await tenant.call(role, BREAKDOWN, key=str(q.key), dep=dep), "surveyReport")
    [department] = [r for r in alone["rows"] if r["month"] == month]
    reply = await tenant.call(role, BREAKDOWN, key=str(q.key), dep=dep, by=True, **asked)
    report = ok(reply, "surveyReport")
    rows = {r["clinicianId"]: r for r in report["rows"] if r["month"] == month}
    return department, rows, reply.data["surveyControlChart"]


def left_over(department: dict[str, Any], rows: dict[str, dict[str, Any]]) -> tuple[int, list[str]]:
    """The attack: the department's responses minus its shown clinicians' (what the hidden ones hold together), and
    the hidden clinicians it is shared by."""
    shown = [r for r in rows.values() if r["status"] == "SHOWN"]
    return (department["responseCount"] - sum(r["responseCount"] for r in shown),
            sorted(c for c, r in rows.items() if r["status"] != "SHOWN"))


async def test_an_anonymous_clinician_hidden_alone_is_worked_back_by_subtraction(tenant: Tenant) -> None:
    """An anonymous questionnaire, November closed, department A: the doctor invited two patients, neither answered;
    the nurse has five responses, the head seven, the front desk eight. By clinician the doctor's row was the only
    one hidden (no response: too few), so the department's 20 minus the shown 5 + 7 + 8 gave the doctor's count, 0:
    neither of the two patients the invitation list names answered, which is what the anonymous invitation's
    'answered' is withheld for. (A hidden clinician holding 1 to 4 was already hidden with the next smallest: only
    a count of 0 came out so, never a mean.) Now a hidden clinician never stands alone: another is hidden with the
    doctor (PROTECTS_SMALL_CELL), and not the nurse, the next smallest: PROTECTS says "at least 5", so the 5 left
    over would still pin the doctor at 0. The head is (7 left over: the doctor's 0, 1 or 2). The chart (the
    department's cells) and a comparison group of the head count only what the report shows."""
    q = await anonymous_questionnaire(tenant)
    staff = tenant.staff_ids
    patient = await make_patient(tenant)
    for day in (3, 4):
        await invite(tenant, q, patient, f"2025-11-{day:02d}T10:00:00+08:00", status="expired",
                     clinician=staff["doctor"])
    await respond(tenant, q, "2025-11", [ALL_SATISFIED] * 3 + [FAIR] * 2, clinician=staff["nurse"])
    await respond(tenant, q, "2025-11", NOVEMBER[:5] + [ALL_SATISFIED] * 2, clinician=staff["department_head"])
    await respond(tenant, q, "2025-11", [FAIR] * 6 + [ALL_SATISFIED] * 2, clinician=staff["front_desk"])
    doctor, nurse, head, desk = (str(staff[r]) for r in ("doctor", "nurse", "department_head", "front_desk"))
    for role in ("department_head", "admin"):
        department, rows, chart = await breakdown(tenant, role, q)
        assert (department["responseCount"], department["status"]) == (20, "SHOWN")
        left, hidden = left_over(department, rows)
        assert len(hidden) >= 2, f"the department minus the shown clinicians is {hidden}'s count: {left}"
        assert {c: (r["status"], r["responseCount"]) for c, r in rows.items()} == {
            doctor: ("TOO_FEW_RESPONSES", None), nurse: ("SHOWN", 5), head: ("PROTECTS_SMALL_CELL", None),
            desk: ("SHOWN", 8)}
        protecting = sum(r["status"] == "PROTECTS_SMALL_CELL" for r in rows.values())
        assert left == 7 and left - 5 * protecting == 2  # the doctor's at most 2, and maybe 0: not told
        assert rows[head]["score"] == {"status": "PROTECTS_SMALL_CELL", "responses": None, "value": None}
        # the head asked about alone: hidden exactly as in the breakdown
        _, asked, _ = await breakdown(tenant, role, q, clinician=head)
        assert [(c, r["status"]) for c, r in asked.items()] == [(head, "PROTECTS_SMALL_CELL")]
        # the chart is the department's cells: November's 20, with nothing withheld to tell
        november = [p for p in chart["points"] if p["month"] == "2025-11"]
        assert [(p["status"], p["responses"], p["withheldCount"]) for p in november] == [("SHOWN", 20, None)]
        # a comparison group of the head counts what the report shows of the head: nothing; the nurse's, five
        group = ok(await tenant.call(role, GROUP, key=str(q.key), a={**NOVEMBER_ONLY, "clinicianId": head}),
                   "surveyComparison")["groupA"]
        assert group == {"status": "TOO_FEW_RESPONSES", "responses": 0, "withheldCount": None, "mean": None}
        shown = ok(await tenant.call(role, GROUP, key=str(q.key), a={**NOVEMBER_ONLY, "clinicianId": nurse}),
                   "surveyComparison")["groupA"]
        assert (shown["responses"], shown["mean"]) == (5, rows[nurse]["score"]["value"])


async def test_a_breakdown_where_nothing_can_be_worked_back_keeps_its_cells(tenant: Tenant) -> None:
    """The allowed twins. An anonymous questionnaire whose two hidden clinicians (two and three responses, and
    invitations: their rows are listed) hold five between them: nothing stands alone, nothing more is hidden. And
    the doctor's two unanswered invitations beside the nurse's five responses and the head's seven on an identified
    questionnaire: unchanged, the doctor's 0 told and nobody else hidden (whoever reads its report may read its
    responses one by one)."""
    staff = tenant.staff_ids
    doctor, nurse, head, desk = (str(staff[r]) for r in ("doctor", "nurse", "department_head", "front_desk"))
    q = await anonymous_questionnaire(tenant)
    patient = await make_patient(tenant)
    for day, clinician in enumerate(["doctor"] * 2 + ["front_desk"] * 3, start=3):
        await invite(tenant, q, patient, f"2025-11-{day:02d}T10:00:00+08:00", status="expired",
                     clinician=staff[clinician])
    await respond(tenant, q, "2025-11", LOW, clinician=staff["doctor"])
    await respond(tenant, q, "2025-11", [FAIR] * 3, clinician=staff["front_desk"])
    await respond(tenant, q, "2025-11", [ALL_SATISFIED] * 6, clinician=staff["nurse"])
    await respond(tenant, q, "2025-11", NOVEMBER[:5] + [ALL_SATISFIED] * 2, clinician=staff["department_head"])
    identified = await anonymous_questionnaire(tenant, anonymous=False)
    for day in (3, 4):
        await invite(tenant, identified, patient, f"2025-11-{day:02d}T10:00:00+08:00", status="expired",
                     clinician=staff["doctor"])
    await respond(tenant, identified, "2025-11", [ALL_SATISFIED] * 5, clinician=staff["nurse"])
    await respond(tenant, identified, "2025-11", NOVEMBER[:5] + [ALL_SATISFIED] * 2,
                  clinician=staff["department_head"])
    for role in ("department_head", "admin"):
        department, rows, _ = await breakdown(tenant, role, q)
        assert {c: (r["status"], r["responseCount"]) for c, r in rows.items()} == {
            doctor: ("TOO_FEW_RESPONSES", None), desk: ("TOO_FEW_RESPONSES", None), nurse: ("SHOWN", 6),
            head: ("SHOWN", 7)}
        assert left_over(department, rows) == (5, sorted([doctor, desk]))
        assert rows[nurse]["score"] == {"status": "SHOWN", "responses": 6, "value": 100.0}
        group = ok(await tenant.call(role, GROUP, key=str(q.key), a={**NOVEMBER_ONLY, "clinicianId": nurse}),
                   "surveyComparison")["groupA"]
        assert (group["status"], group["responses"], group["mean"]) == ("SHOWN", 6, 100.0)
        _, rows, _ = await breakdown(tenant, role, identified)
        assert {c: (r["status"], r["responseCount"]) for c, r in rows.items()} == {
            doctor: ("TOO_FEW_RESPONSES", 0), nurse: ("SHOWN", 5), head: ("SHOWN", 7)}


async def test_an_anonymous_hidden_row_in_a_month_without_invitations_is_not_listed(tenant: Tenant) -> None:
    """October: the doctor invited two patients (department A) and department B one; November: one of the doctor's
    answered late (a response about the doctor, filed in November), and so did B's patient, and nobody was invited.
    The report listed a hidden row wherever a cell had an invitation or a response, so the doctor's November row
    (and B's), too small to show anything, said that an October invitation was answered in November: with the
    invitation list, one of those two patients (B's one). A hidden (too few) row of an anonymous questionnaire is
    listed now only where its cell had invitations that month; its responses still count among the hidden ones
    (the nurse is hidden with them). An identified questionnaire lists it as before."""
    staff = tenant.staff_ids
    doctor, nurse, head = (str(staff[r]) for r in ("doctor", "nurse", "department_head"))
    b = str(tenant.departments["B"].id)
    patient = await make_patient(tenant)
    found: dict[Any, Any] = {}
    for anonymous in (True, False):
        q = await anonymous_questionnaire(tenant, anonymous=anonymous)
        for day in (3, 4):
            await invite(tenant, q, patient, f"2025-10-{day:02d}T10:00:00+08:00", status="expired", answered=day == 3,
                         clinician=staff["doctor"])
        await invite(tenant, q, patient, "2025-10-05T10:00:00+08:00", department="B", status="expired",
                     answered=True)
        await respond(tenant, q, "2025-11", [ALL_SATISFIED], clinician=staff["doctor"])  # the late answer
        await respond(tenant, q, "2025-11", [ALL_SATISFIED], department="B")  # and B's
        await respond(tenant, q, "2025-11", [ALL_SATISFIED] * 6, clinician=staff["nurse"])
        await respond(tenant, q, "2025-11", NOVEMBER[:5] + [ALL_SATISFIED] * 2, clinician=staff["department_head"])
        for role in ("department_head", "admin"):
            _, rows, _ = await breakdown(tenant, role, q)
            found[anonymous, role] = {c: r["status"] for c, r in rows.items()}
        rows = ok(await tenant.call("admin", BREAKDOWN, key=str(q.key), dep=b), "surveyReport")["rows"]
        found[anonymous, "B"] = [(r["month"], r["status"]) for r in rows]
    for role in ("department_head", "admin"):
        assert found[True, role] == {nurse: "PROTECTS_SMALL_CELL", head: "SHOWN"}
        assert found[False, role] == {doctor: "TOO_FEW_RESPONSES", nurse: "PROTECTS_SMALL_CELL", head: "SHOWN"}
    assert found[True, "B"] == [("2025-10", "TOO_FEW_RESPONSES")]
    assert found[False, "B"] == [("2025-10", "TOO_FEW_RESPONSES"), ("2025-11", "TOO_FEW_RESPONSES")]
