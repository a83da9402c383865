"""Survey reports, comparisons and control charts through the API, exact on known data sets (every expected
figure worked out by hand below), with the small-cell rule, the target, a fixed SQL cost, and who may read them.

The rows are written with the ORM (a small builder below): these tests are about the arithmetic and the
access of the reports, not about answering, which tests/api/test_questionnaire_responses.py covers.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import questionnaire as definitions
from core.ids import uuid7
from models import Questionnaire, QuestionnaireResponse, ResponseAnswer, SurveyInvitation, SurveySettings
from resolvers.context import Services
from tests import surveys
from tests.conftest import SqlCounter
from tests.core.test_statistics import DRP_CONTROL, DRP_TREATMENT, tied_mann_whitney_by_hand
from tests.daytime import a_whole_local_day
from tests.factories import Tenant, make_patient
from tests.patients import open_account

# -- the builder ----------------------------------------------------------------------------------------


def text(en: str) -> dict[str, str]:
    return {"zh-CN": en, "en": en}


ITEMS: list[dict[str, Any]] = [
    {"link_id": "q1", "kind": "likert", "text": text("Reception"), "required": True, "counts": True},
    {"link_id": "q2", "kind": "likert", "text": text("Nurses' attitude"), "required": True, "counts": True},
    {"link_id": "q3", "kind": "choice", "text": text("How did you come?"), "required": False,
     "options": [{"code": "a", "text": text("Bus")}, {"code": "b", "text": text("Car")},
                 {"code": "c", "text": text("On foot")}]},
    {"link_id": "q4", "kind": "multi_choice", "text": text("What helped?"), "required": False,
     "options": [{"code": "x", "text": text("Signs")}, {"code": "y", "text": text("Staff")}]},
    {"link_id": "s1", "kind": "section", "text": text("Overall"), "items": [
        {"link_id": "q5", "kind": "nps", "text": text("Recommend us?"), "required": True},
        {"link_id": "q6", "kind": "csat", "text": text("Satisfied overall?"), "required": True}]},
    {"link_id": "q7", "kind": "yes_no", "text": text("Did anyone explain why?"), "required": False,
     "enable_when": {"link_id": "q1", "operator": "<=", "answer": 3}},
    {"link_id": "q8", "kind": "text", "text": text("Anything else?"), "required": False},
]
SCORING = {"method": "mean", "satisfied_at": 75, "nps_item": "q5", "csat_item": "q6", "low": None}
REPORTED = ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]  # not the text item, not the section


async def questionnaire(tenant: Tenant, key: uuid.UUID | None = None, version: int = 1) -> Questionnaire:
    definitions.check_definition(ITEMS, SCORING)  # what the instruments' API would accept
    return await Questionnaire.create(institution_id=tenant.id, key=key or uuid.uuid4(), version=version,
                                      status="active", title=text("Outpatient satisfaction"), items=ITEMS,
                                      scoring=SCORING)


def score_of(answers: dict[str, Any]) -> float:
    """The mean of the two counted Likert items, each scaled (v - 1) / 4 * 100."""
    return sum((answers[q] - 1) / 4 * 100 for q in ("q1", "q2")) / 2


async def respond(tenant: Tenant, q: Questionnaire, month: str, answers: list[dict[str, Any]], department: str = "A",
                  clinician: uuid.UUID | None = None) -> None:
    """Responses with their answer rows, as the answering code stores them (score, satisfied, NPS, CSAT)."""
    responses, rows = [], []
    for given in answers:
        score = given["score"] if "score" in given else (score_of(given) if "q1" in given else None)
        satisfied = given.get("satisfied", None if score is None else score >= SCORING["satisfied_at"])
        response = QuestionnaireResponse(
            id=uuid7(), institution_id=tenant.id, questionnaire_id=q.id, source="paper", month=month,
            department_id=tenant.departments[department].id if department else None, clinician_id=clinician,
            score=score, satisfied=satisfied, nps=given.get("q5"), csat=given.get("q6"))
        responses.append(response)
        for link_id, value in given.items():
            if link_id in ("score", "satisfied") or value is None:
                continue
            common = {"institution_id": tenant.id, "response_id": response.id, "questionnaire_id": q.id,
                      "department_id": response.department_id, "month": month, "link_id": link_id}
            for one in value if isinstance(value, list) else [value]:
                if isinstance(one, str):
                    rows.append(ResponseAnswer(id=uuid7(), choice=one, **common))
                else:
                    rows.append(ResponseAnswer(id=uuid7(), number=float(one), **common))
    await QuestionnaireResponse.bulk_create(responses)
    await ResponseAnswer.bulk_create(rows)


_causes = iter(range(10**9))


async def invite(tenant: Tenant, q: Questionnaire, patient: uuid.UUID, send_at: str, *, department: str = "A",
                 status: str = "sent", answered: bool = False, clinician: uuid.UUID | None = None) -> None:
    sent = datetime.fromisoformat(send_at)
    await SurveyInvitation.create(
        institution_id=tenant.id, questionnaire_id=q.id, cause_key=f"visit:{next(_causes)}", patient_id=patient,
        department_id=tenant.departments[department].id, clinician_id=clinician, status=status, send_at=sent,
        expires_at=sent + timedelta(days=14), answered=answered)


# -- the November data set (Asia/Shanghai) -----------------------------------------------------------------

# Department A, version 1, November 2025: six responses. Scores (q1, q2 scaled): 100, 87.5, 75, 62.5, 87.5, 37.5.
NOVEMBER = [
    {"q1": 5, "q2": 5, "q3": "a", "q4": ["x", "y"], "q5": 10, "q6": 5},
    {"q1": 4, "q2": 5, "q3": "a", "q4": ["x"], "q5": 9, "q6": 4},
    {"q1": 4, "q2": 4, "q3": "b", "q5": 8, "q6": 4},
    {"q1": 3, "q2": 4, "q3": "b", "q4": ["y"], "q5": 7, "q6": 4, "q7": True},
    {"q1": 5, "q2": 4, "q3": "c", "q4": ["x"], "q5": 6, "q6": 5},
    {"q1": 2, "q2": 3, "q3": "a", "q4": ["x", "y"], "q5": 3, "q6": 2, "q7": False},
]
ALL_SATISFIED = {"q1": 5, "q2": 5, "q3": "a", "q5": 10, "q6": 5}
T_975_5 = 2.5705818366147395  # Student's t, 97.5 % quantile, 5 degrees of freedom (tables: 2.571)
Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval in percent: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p, z2 = k / n, Z95 * Z95
    centre, half = p + z2 / (2 * n), Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return 100 * (centre - half) / (1 + z2 / n), 100 * (centre + half) / (1 + z2 / n)


def t_interval_by_hand(values: list[float], t: float) -> tuple[float, float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, mean - t * sd / math.sqrt(n), mean + t * sd / math.sqrt(n)


def r4(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class Data:
    def __init__(self, tenant: Tenant, key: uuid.UUID, v1: Questionnaire, v2: Questionnaire, x: uuid.UUID,
                 y: uuid.UUID) -> None:
        self.tenant, self.key, self.v1, self.v2, self.x, self.y = tenant, key, v1, v2, x, y


@pytest.fixture
async def november(tenant: Tenant) -> Data:
    key = uuid.uuid4()
    v1, v2 = await questionnaire(tenant, key, 1), await questionnaire(tenant, key, 2)
    x, y = tenant.staff_ids["doctor"], tenant.staff_ids["nurse"]
    await respond(tenant, v1, "2025-11", NOVEMBER[:5], clinician=x)
    await respond(tenant, v1, "2025-11", NOVEMBER[5:], clinician=y)
    await respond(tenant, v2, "2025-11", NOVEMBER[:2], clinician=x)  # the new version: two responses
    await respond(tenant, v1, "2025-11", [ALL_SATISFIED] * 5, department="B")
    await respond(tenant, v1, "2025-10", [ALL_SATISFIED] * 7)  # outside the period
    patient = await make_patient(tenant)
    # Invitations of November (local): eight went out, six answered; a cancelled and a refused one never went
    # out; 00:10 on 1 December local is 16:10 UTC on 30 November but December's; 23:30 on 31 October is October's.
    for n, when in enumerate(["2025-11-01T00:05:00+08:00", *[f"2025-11-{d:02d}T10:00:00+08:00" for d in range(2, 8)],
                              "2025-11-30T23:30:00+08:00"]):
        await invite(tenant, v1, patient, when, answered=n < 6, status="answered" if n < 6 else "expired")
    await invite(tenant, v1, patient, "2025-11-10T10:00:00+08:00", status="cancelled")
    await invite(tenant, v1, patient, "2025-11-11T10:00:00+08:00", status="refused")
    await invite(tenant, v1, patient, "2025-10-31T23:30:00+08:00")
    for day in (1, 2, 3):
        await invite(tenant, v1, patient, f"2025-12-{day:02d}T00:10:00+08:00")  # December: no response
    await invite(tenant, v1, patient, "2025-11-20T10:00:00+08:00", department="B", answered=True, status="answered")
    return Data(tenant, key, v1, v2, x, y)


REPORT = """query($key: ID!, $from: String!, $to: String!, $dep: ID, $clinician: ID, $by: Boolean! = false) {
  surveyReport(questionnaireKey: $key, from: $from, to: $to, departmentId: $dep, clinicianId: $clinician,
               byClinician: $by) {
    questionnaireKey from to minCell satisfactionTarget versions { questionnaireId version method satisfiedAt }
    rows { questionnaireId version departmentId clinicianId month invited answered responseRate responses status
           score { ...E } satisfied { ...E } nps { ...E } csat { ...E } meetsTarget
           items { linkId kind status responses mean { ...E } distribution { value responses } } } } }
fragment E on SurveyEstimate { status responses value low high }"""


def estimate(responses: int | None, value: float | None = None, low: float | None = None,
             high: float | None = None, status: str = "TOO_FEW_RESPONSES") -> dict[str, Any]:
    shown = value is not None
    return {"status": "SHOWN" if shown else status, "responses": responses, "value": r4(value),
            "low": r4(low), "high": r4(high)}


def rounded(found: Any) -> Any:
    """Every float of a reply to 4 decimals (intervals are compared to 4 decimals)."""
    if isinstance(found, dict):
        return {k: rounded(v) for k, v in found.items()}
    if isinstance(found, list):
        return [rounded(v) for v in found]
    return round(found, 4) if isinstance(found, float) else found


def hidden_items(status: str = "TOO_FEW_RESPONSES") -> list[dict[str, Any]]:
    """A hidden row's items: nothing of them shows, not even how many answered them (the count of answers to a
    conditional item tells what was answered to the item it depends on), each with the row's status."""
    kinds = {"q1": "LIKERT", "q2": "LIKERT", "q3": "CHOICE", "q4": "MULTI_CHOICE", "q5": "NPS", "q6": "CSAT",
             "q7": "YES_NO"}
    return [{"linkId": q, "kind": kinds[q], "status": status, "responses": None,
             "mean": None if q in ("q3", "q4") else estimate(None, status=status), "distribution": None}
            for q in REPORTED]


def scale(counts: dict[int, int], low: int, high: int) -> list[dict[str, Any]]:
    return [{"value": str(v), "responses": counts.get(v, 0)} for v in range(low, high + 1)]


def numeric_item(link_id: str, kind: str, values: list[int], low: int, high: int) -> dict[str, Any]:
    mean, lo, hi = t_interval_by_hand([float(v) for v in values], T_975_5) if len(values) == 6 else (0, 0, 0)
    return {"linkId": link_id, "kind": kind.upper(), "status": "SHOWN", "responses": len(values),
            "mean": estimate(len(values), mean, max(lo, low), min(hi, high)),
            "distribution": scale({v: values.count(v) for v in values}, low, high)}


def november_a_v1(data: Data) -> dict[str, Any]:
    """Department A, version 1, November, worked by hand."""
    scores = [100, 87.5, 75, 62.5, 87.5, 37.5]  # mean 75, s² = 500, s = 22.3607, SE = 9.1287
    mean, low, high = t_interval_by_hand(scores, T_975_5)
    assert (round(mean, 4), round(low, 4), round(high, 4)) == (75, 51.5339, 98.4661)
    # satisfied (score >= 75): 4 of 6; CSAT 4-5: 5 of 6 (one 2)
    satisfied_low, satisfied_high = wilson_by_hand(4, 6)
    assert (round(satisfied_low, 4), round(satisfied_high, 4)) == (29.9993, 90.3229)
    csat_low, csat_high = wilson_by_hand(5, 6)
    # NPS: promoters 10, 9; detractors 6, 3 of 6: NPS 0, variance 4/6, half width 1.96 sqrt(4/6/6) = 65.33 points
    half = 100 * Z95 * math.sqrt(4 / 6 / 6)
    assert round(half, 4) == 65.3321
    q7 = {"linkId": "q7", "kind": "YES_NO", "status": "TOO_FEW_RESPONSES", "responses": 2,
          "mean": estimate(2), "distribution": None}  # answered by two only: hidden though the row is shown
    return {
        "questionnaireId": str(data.v1.id), "version": 1, "departmentId": str(data.tenant.departments["A"].id),
        "clinicianId": None, "month": "2025-11", "invited": 8, "answered": 6, "responseRate": 75.0,
        "responses": 6, "status": "SHOWN", "score": estimate(6, mean, low, high),
        "satisfied": estimate(6, 400 / 6, satisfied_low, satisfied_high), "nps": estimate(6, 0, -half, half),
        "csat": estimate(6, 500 / 6, csat_low, csat_high), "meetsTarget": False,
        "items": [
            numeric_item("q1", "likert", [5, 4, 4, 3, 5, 2], 1, 5),  # mean 23/6
            numeric_item("q2", "likert", [5, 5, 4, 4, 4, 3], 1, 5),  # mean 25/6
            {"linkId": "q3", "kind": "CHOICE", "status": "SHOWN", "responses": 6, "mean": None,
             "distribution": [{"value": "a", "responses": 3}, {"value": "b", "responses": 2},
                              {"value": "c", "responses": 1}]},
            # five responses chose something (the third none): x four times, y three times
            {"linkId": "q4", "kind": "MULTI_CHOICE", "status": "SHOWN", "responses": 5, "mean": None,
             "distribution": [{"value": "x", "responses": 4}, {"value": "y", "responses": 3}]},
            numeric_item("q5", "nps", [10, 9, 8, 7, 6, 3], 0, 10),
            numeric_item("q6", "csat", [5, 4, 4, 4, 5, 2], 1, 5),
            q7,
        ],
    }


def too_few(data: Data, version: Questionnaire, month: str, responses: int, invited: int, department: str = "A",
            clinician: uuid.UUID | None = None, status: str = "TOO_FEW_RESPONSES") -> dict[str, Any]:
    """A hidden row: its counts (invited, answered, responses), nothing of its figures, not even their counts."""
    hidden = estimate(None, status=status)
    return {
        "questionnaireId": str(version.id), "version": version.version,
        "departmentId": str(data.tenant.departments[department].id),
        "clinicianId": None if clinician is None else str(clinician), "month": month, "invited": invited,
        "answered": 0, "responseRate": 0.0 if invited else None, "responses": responses, "status": status,
        "score": hidden, "satisfied": hidden, "nps": hidden, "csat": hidden, "meetsTarget": None,
        "items": hidden_items(status),
    }


async def test_the_november_report_is_exact(november: Data) -> None:
    tenant = november.tenant
    reply = await tenant.call("admin", REPORT, key=str(november.key), dep=str(tenant.departments["A"].id),
                              **{"from": "2025-11", "to": "2025-12"})
    assert reply.errors == [], reply.errors
    report = reply.data["surveyReport"]
    assert {k: v for k, v in report.items() if k != "rows"} == {
        "questionnaireKey": str(november.key), "from": "2025-11", "to": "2025-12", "minCell": 5,
        "satisfactionTarget": 92,
        "versions": [{"questionnaireId": str(v.id), "version": v.version, "method": "MEAN", "satisfiedAt": 75.0}
                     for v in (november.v1, november.v2)]}
    assert rounded(report["rows"]) == rounded([
        november_a_v1(november),
        # version 2: two responses, every figure hidden (how many responses is not an answer: shown; how many
        # answered each item can be, and is hidden with the figures)
        too_few(november, november.v2, "2025-11", 2, 0),
        # December: three invitations out, nothing answered yet
        too_few(november, november.v1, "2025-12", 0, 3),
    ])


async def test_a_head_sees_their_departments_and_an_admin_the_institution(november: Data) -> None:
    tenant, period = november.tenant, {"from": "2025-11", "to": "2025-11"}
    head = await tenant.call("department_head", REPORT, key=str(november.key), **period)
    admin = await tenant.call("admin", REPORT, key=str(november.key), **period)
    assert head.errors == [] and admin.errors == []
    a, b = str(tenant.departments["A"].id), str(tenant.departments["B"].id)
    assert [(r["departmentId"], r["version"]) for r in head.data["surveyReport"]["rows"]] == [(a, 1), (a, 2)]
    rows = admin.data["surveyReport"]["rows"]
    assert sorted((r["departmentId"], r["version"]) for r in rows) == sorted([(a, 1), (b, 1), (a, 2)])
    # department B: five responses, all satisfied: 100 % >= 92 %, the target met; its Wilson interval for 5 of 5
    (b_row,) = [r for r in rows if r["departmentId"] == b]
    low, high = wilson_by_hand(5, 5)
    assert (b_row["meetsTarget"], b_row["invited"], b_row["answered"], b_row["responseRate"]) == (True, 1, 1, 100.0)
    assert rounded(b_row["satisfied"]) == rounded(estimate(5, 100.0, low, high))
    assert round(low, 4) == 56.5518
    # every score the same (100): no spread, the interval is the point
    assert b_row["score"] == estimate(5, 100.0, 100.0, 100.0)
    (a_row,) = [r for r in rows if r["departmentId"] == a and r["version"] == 1]
    assert a_row["meetsTarget"] is False


async def test_clinician_breakdowns_hide_small_cells(november: Data) -> None:
    tenant, period = november.tenant, {"from": "2025-11", "to": "2025-11"}
    dep = str(tenant.departments["A"].id)
    reply = await tenant.call("department_head", REPORT, key=str(november.key), dep=dep, by=True, **period)
    assert reply.errors == [], reply.errors
    rows = {(r["version"], r["clinicianId"]): r for r in reply.data["surveyReport"]["rows"]}
    x, y = str(november.x), str(november.y)
    assert sorted(rows, key=str) == sorted([(1, x), (1, y), (2, x), (1, None)], key=str)
    # the November invitations name no clinician: a row of their own, with no response
    assert (rows[(1, None)]["invited"], rows[(1, None)]["answered"], rows[(1, None)]["responses"]) == (8, 6, 0)
    # clinician y: one response; nothing of it shows, its items neither. Clinician x: five responses, enough, but
    # hidden with it: the department's row (six responses, shown) minus x's would be y's answer (the clipped
    # interval of a shown clinician is checked in tests/api/test_survey_report_privacy.py)
    assert rows[(1, y)] == too_few(november, november.v1, "2025-11", 1, 0, clinician=november.y) | {
        "invited": 0, "responseRate": None}
    assert rows[(1, x)] == too_few(november, november.v1, "2025-11", 5, 0, clinician=november.x,
                                   status="PROTECTS_SMALL_CELL") | {"invited": 0, "responseRate": None}
    # asked about x or y alone: the same hidden rows (their colleagues are read to decide)
    for clinician, status in ((x, "PROTECTS_SMALL_CELL"), (y, "TOO_FEW_RESPONSES")):
        alone = await tenant.call("department_head", REPORT, key=str(november.key), dep=dep, clinician=clinician,
                                  **period)
        assert [(r["version"], r["clinicianId"], r["status"]) for r in alone.data["surveyReport"]["rows"]] == (
            [(1, x, status), (2, x, "TOO_FEW_RESPONSES")] if clinician == x else [(1, y, status)])


async def test_the_minimum_and_the_target_are_the_institutions(november: Data) -> None:
    tenant = november.tenant
    await SurveySettings.create(institution_id=tenant.id, min_cell=2, satisfaction_target=60)
    reply = await tenant.call("department_head", REPORT, key=str(november.key), **{"from": "2025-11", "to": "2025-11"})
    report = reply.data["surveyReport"]
    assert (report["minCell"], report["satisfactionTarget"]) == (2, 60)
    v1, v2 = report["rows"]
    assert (v1["status"], v1["meetsTarget"]) == ("SHOWN", True)  # 66.7 % >= 60 %
    assert v1["items"][-1]["status"] == "SHOWN"  # q7, two answers
    assert v1["items"][-1]["distribution"] == [{"value": "0", "responses": 1}, {"value": "1", "responses": 1}]
    # version 2 now shows: two responses, scores 100 and 87.5, both satisfied
    assert (v2["status"], v2["score"]["value"], v2["satisfied"]["value"], v2["meetsTarget"]) == (
        "SHOWN", 93.75, 100.0, True)


async def test_a_report_costs_the_same_statements_for_10_or_200_responses(tenant: Tenant,
                                                                           sql_counter: SqlCounter) -> None:
    few, many = await questionnaire(tenant), await questionnaire(tenant)
    await respond(tenant, few, "2025-11", (NOVEMBER * 2)[:10])
    await respond(tenant, many, "2025-11", (NOVEMBER * 40)[:200], clinician=tenant.staff_ids["doctor"])

    async def cost(q: Questionnaire, **more: Any) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("department_head", REPORT, key=str(q.key), **{"from": "2025-11", "to": "2025-11"},
                                  **more)
        assert reply.errors == [], reply.errors
        return len(sql_counter.statements) - start

    assert await cost(few) == await cost(many)
    assert await cost(few, by=True) == await cost(many, by=True)


async def test_reading_a_report_is_audited_without_patients(november: Data) -> None:
    tenant = november.tenant
    events = await tenant.audit_count()
    reply = await tenant.call("department_head", REPORT, key=str(november.key), dep=str(tenant.departments["A"].id),
                              **{"from": "2025-11", "to": "2025-11"})
    assert reply.errors == []
    (event,) = (await tenant.audit_events())[events:]
    assert (event.resource_type, event.resource_id, event.patient_id, event.outcome, event.field_classes) == (
        "survey_report", tenant.departments["A"].id, None, "allowed", "aggregate")


# -- comparisons ---------------------------------------------------------------------------------------------

COMPARE = """query($key: ID!, $a: SurveyGroupInput!, $b: SurveyGroupInput!, $item: String, $alpha: Float! = 0.05) {
  surveyComparison(questionnaireKey: $key, groupA: $a, groupB: $b, itemLinkId: $item, alpha: $alpha) {
    test itemLinkId alpha status groupA { status responses withheld mean standardDeviation }
    groupB { status responses withheld mean standardDeviation } statistic degreesOfFreedom pValue difference
    differenceLow differenceHigh cohensD hedgesG rankBiserial conclusion } }"""


async def test_the_score_comparison_gives_the_textbook_welch_values(tenant: Tenant) -> None:
    """The DRP scores of Moore & McCabe's Example 7.14 (see tests/core/test_statistics.py) as survey scores:
    the control class before (spread over two months), the treatment after; t = 2.31, df = 37.86, P = 0.026."""
    q = await questionnaire(tenant)
    await respond(tenant, q, "2025-01", [{"score": float(s)} for s in DRP_CONTROL[:12]])
    await respond(tenant, q, "2025-02", [{"score": float(s)} for s in DRP_CONTROL[12:]])
    await respond(tenant, q, "2025-05", [{"score": float(s)} for s in DRP_TREATMENT])
    await respond(tenant, q, "2025-05", [{"score": 0.0}] * 3, department="B")  # another department

    reply = await tenant.call("department_head", COMPARE, key=str(q.key),
                              a={"from": "2025-01", "to": "2025-03"}, b={"from": "2025-04", "to": "2025-06"})

    assert reply.errors == [], reply.errors
    found = reply.data["surveyComparison"]
    assert (found["test"], found["itemLinkId"], found["status"], found["conclusion"]) == (
        "WELCH_T", None, "SHOWN", "DIFFERENT")
    assert (found["groupA"]["responses"], round(found["groupA"]["mean"], 2),
            round(found["groupA"]["standardDeviation"], 2)) == (23, 41.52, 17.15)
    assert (found["groupB"]["responses"], round(found["groupB"]["mean"], 2),
            round(found["groupB"]["standardDeviation"], 2)) == (21, 51.48, 11.01)
    assert (round(found["statistic"], 2), round(found["degreesOfFreedom"], 2), round(found["pValue"], 3)) == (
        2.31, 37.86, 0.026)
    assert found["difference"] == pytest.approx(sum(DRP_TREATMENT) / 21 - sum(DRP_CONTROL) / 23)
    assert found["differenceLow"] < found["difference"] < found["differenceHigh"]
    assert (round(found["cohensD"], 4), round(found["hedgesG"], 4)) == (0.6841, 0.6718)
    strict = await tenant.call("department_head", COMPARE, key=str(q.key), alpha=0.01,
                               a={"from": "2025-01", "to": "2025-03"}, b={"from": "2025-04", "to": "2025-06"})
    assert strict.data["surveyComparison"]["conclusion"] == "NO_DIFFERENCE_SHOWN"  # p = 0.026 >= 0.01


async def test_an_item_comparison_is_mann_whitney_with_ties(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    before, after = {2: 3, 3: 4, 4: 5, 5: 3}, {3: 2, 4: 6, 5: 7}
    await respond(tenant, q, "2025-03", [{"q1": v, "q2": 4} for v, n in before.items() for _ in range(n)])
    await respond(tenant, q, "2025-09", [{"q1": v, "q2": 4} for v, n in after.items() for _ in range(n)])
    u_a, p = tied_mann_whitney_by_hand({float(k): v for k, v in before.items()},
                                       {float(k): v for k, v in after.items()})

    reply = await tenant.call("admin", COMPARE, key=str(q.key), item="q1", a={"from": "2025-01", "to": "2025-06"},
                              b={"from": "2025-07", "to": "2025-12", "departmentId": str(tenant.departments["A"].id)})

    assert reply.errors == [], reply.errors
    found = reply.data["surveyComparison"]
    assert (found["test"], found["itemLinkId"], found["groupA"]["responses"], found["groupB"]["responses"]) == (
        "MANN_WHITNEY_U", "q1", 15, 15)
    assert found["statistic"] == u_a and round(found["pValue"], 4) == round(p, 4)
    assert round(found["rankBiserial"], 4) == round(1 - 2 * u_a / 225, 4)
    assert found["difference"] == pytest.approx(65 / 15 - 53 / 15)  # mean 4.3333 after, 3.5333 before
    assert (found["degreesOfFreedom"], found["cohensD"], found["differenceLow"]) == (None, None, None)
    assert found["conclusion"] == ("DIFFERENT" if p < 0.05 else "NO_DIFFERENCE_SHOWN")


async def test_a_comparison_with_a_small_group_shows_no_test(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await respond(tenant, q, "2025-01", NOVEMBER)
    await respond(tenant, q, "2025-02", NOVEMBER[:4])
    reply = await tenant.call("admin", COMPARE, key=str(q.key), a={"from": "2025-01", "to": "2025-01"},
                              b={"from": "2025-02", "to": "2025-02"})
    found = reply.data["surveyComparison"]
    # February's four responses are a hidden cell: left out (withheld), nothing of them in the figures
    assert (found["status"], found["groupA"]["status"], found["groupB"]) == ("TOO_FEW_RESPONSES", "SHOWN", {
        "status": "TOO_FEW_RESPONSES", "responses": 0, "withheld": 4, "mean": None, "standardDeviation": None})
    assert (found["statistic"], found["pValue"], found["difference"], found["conclusion"]) == (None, None, None, None)


@pytest.mark.parametrize(("variables", "field"), [
    ({"item": "q3"}, "itemLinkId"), ({"item": "q8"}, "itemLinkId"), ({"item": "nope"}, "itemLinkId"),
    ({"alpha": 0}, "alpha"), ({"alpha": 0.6}, "alpha"),
    ({"a": {"from": "2025-13", "to": "2025-12"}}, "groupA.from"), ({"b": {"from": "2025-06", "to": "2025-01"}},
                                                                    "groupB.to"),
    ({"b": {"from": "2025-01", "to": "2025-02", "clinicianId": "x"}}, "groupB.clinicianId"),
])
async def test_bad_comparisons_are_refused(tenant: Tenant, variables: dict[str, Any], field: str) -> None:
    q = await questionnaire(tenant)
    reply = await tenant.call("admin", COMPARE, key=str(q.key), **{
        "a": {"from": "2025-01", "to": "2025-02"}, "b": {"from": "2025-03", "to": "2025-04"}, **variables})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field


# -- the control chart ---------------------------------------------------------------------------------------

CHART = """query($key: ID!, $from: String!, $to: String!, $dep: ID) {
  surveyControlChart(questionnaireKey: $key, from: $from, to: $to, departmentId: $dep) {
    questionnaireKey departmentId from to minCell centreLine
    points { month status responses withheld percentSatisfied lowerLimit upperLimit outOfControl } } }"""


async def test_the_control_chart_flags_a_real_change(tenant: Tenant) -> None:
    q, q2 = await questionnaire(tenant), None
    q2 = await questionnaire(tenant, q.key, 2)  # both versions count
    for month, n, k in (("2025-01", 20, 18), ("2025-02", 20, 19), ("2025-03", 3, 3), ("2025-04", 20, 10)):
        await respond(tenant, q, month, [{"satisfied": i < k} for i in range(n)])
    await respond(tenant, q2, "2025-05", [{"satisfied": i < 19} for i in range(20)])
    await respond(tenant, q2, "2025-05", [{"satisfied": False}] * 9, department="B")  # not department A's

    reply = await tenant.call("department_head", CHART, key=str(q.key), dep=str(tenant.departments["A"].id),
                              **{"from": "2025-01", "to": "2025-06"})

    assert reply.errors == [], reply.errors
    chart = reply.data["surveyControlChart"]
    # centre line over the shown months (March has 3 responses: hidden, and left out): 66 of 80 = 82.5 %;
    # n = 20 everywhere: 3 sigma = 3 sqrt(0.825 * 0.175 / 20) = 25.4889 points, so 57.0111 to 100 (clipped)
    sigma3 = 300 * math.sqrt(0.825 * 0.175 / 20)
    assert round(sigma3, 4) == 25.489
    limits = {"lowerLimit": round(82.5 - sigma3, 4), "upperLimit": 100.0}

    def point(month: str, n: int, percent: float, out: bool) -> dict[str, Any]:
        return {"month": month, "status": "SHOWN", "responses": n, "withheld": 0, "percentSatisfied": percent,
                **limits, "outOfControl": out}

    def hidden(month: str, n: int) -> dict[str, Any]:  # n responses withheld: a hidden cell of the report
        return {"month": month, "status": "TOO_FEW_RESPONSES", "responses": 0, "withheld": n,
                "percentSatisfied": None, "lowerLimit": None, "upperLimit": None, "outOfControl": None}

    assert rounded(chart) == {
        "questionnaireKey": str(q.key), "departmentId": str(tenant.departments["A"].id), "from": "2025-01",
        "to": "2025-06", "minCell": 5, "centreLine": 82.5,
        "points": [point("2025-01", 20, 90.0, False), point("2025-02", 20, 95.0, False), hidden("2025-03", 3),
                   point("2025-04", 20, 50.0, True), point("2025-05", 20, 95.0, False), hidden("2025-06", 0)]}


# -- who may read them -----------------------------------------------------------------------------------

def operations(tenant: Tenant, key: uuid.UUID, department: str = "A") -> dict[str, tuple[str, dict[str, Any]]]:
    dep = str(tenant.departments[department].id)
    period = {"from": "2025-11", "to": "2025-11"}
    return {
        "report": (REPORT, {"key": str(key), "dep": dep, **period}),
        "comparison": (COMPARE, {"key": str(key), "a": {"from": "2025-10", "to": "2025-10"},
                                 "b": {**period, "departmentId": dep}}),
        "chart": (CHART, {"key": str(key), "dep": dep, **period}),
    }


@pytest.mark.parametrize("operation", ["report", "comparison", "chart"])
@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "support_agent", "compliance_officer"])
async def test_other_roles_are_refused_and_the_refusal_audited(november: Data, role: str, operation: str) -> None:
    tenant = november.tenant
    query, variables = operations(tenant, november.key)[operation]
    events = await tenant.audit_count()
    reply = await tenant.call(role, query, **variables)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    (event,) = (await tenant.audit_events())[events:]
    assert (event.outcome, event.reason, event.resource_type, event.actor_id) == (
        "denied", "forbidden", "survey_report", tenant.staff_ids[role])


@pytest.mark.parametrize("operation", ["report", "comparison", "chart"])
async def test_heads_and_admins_are_allowed(november: Data, operation: str) -> None:
    for role in ("department_head", "admin"):
        query, variables = operations(november.tenant, november.key)[operation]
        reply = await november.tenant.call(role, query, **variables)
        assert reply.errors == [], reply.errors


@pytest.mark.parametrize("operation", ["report", "comparison", "chart"])
async def test_a_head_is_refused_another_department(november: Data, operation: str) -> None:
    tenant = november.tenant
    query, variables = operations(tenant, november.key, "B")[operation]
    events = await tenant.audit_count()
    reply = await tenant.call("department_head", query, **variables)
    assert reply.codes == ["FORBIDDEN"]
    assert reply.errors[0]["extensions"]["field"] == ("groupB.departmentId" if operation == "comparison"
                                                      else "departmentId")
    (event,) = (await tenant.audit_events())[events:]
    assert (event.outcome, event.reason, event.resource_id) == ("denied", "other_department",
                                                                tenant.departments["B"].id)
    admin = await tenant.call("admin", query, **variables)
    assert admin.errors == []


async def test_a_patient_is_refused(november: Data) -> None:
    user = await open_account(november.tenant)
    for query, variables in operations(november.tenant, november.key).values():
        reply = await user.call(query, **variables)
        assert reply.codes == ["FORBIDDEN"]


async def test_tenants_are_apart(november: Data, other_tenant: Tenant) -> None:
    """Another institution's questionnaire, department or clinician is not found (and recorded); its own
    report of the same months shows nothing of ours."""
    tenant = november.tenant
    theirs = await questionnaire(other_tenant)
    await respond(other_tenant, theirs, "2025-11", NOVEMBER)
    period = {"from": "2025-11", "to": "2025-11"}
    for variables, field in (({"key": str(theirs.key)}, "questionnaireKey"),
                             ({"key": str(november.key), "dep": str(other_tenant.departments["A"].id)},
                              "departmentId"),
                             ({"key": str(november.key), "clinician": str(other_tenant.staff_ids["doctor"])},
                              "clinicianId")):
        events = await tenant.audit_count()
        reply = await tenant.call("admin", REPORT, **variables, **period)
        assert reply.codes == ["NOT_FOUND"] and reply.errors[0]["extensions"]["field"] == field
        assert [e.reason for e in (await tenant.audit_events())[events:]] == ["not_found"]
    # a head asking for another institution's department: not theirs
    reply = await tenant.call("department_head", REPORT, key=str(november.key),
                              dep=str(other_tenant.departments["A"].id), **period)
    assert reply.codes == ["FORBIDDEN"]
    own = await other_tenant.call("admin", REPORT, key=str(theirs.key), **period)
    assert [r["responses"] for r in own.data["surveyReport"]["rows"]] == [6]
    ours = await tenant.call("admin", REPORT, key=str(november.key), **period)
    assert sum(r["responses"] for r in ours.data["surveyReport"]["rows"]) == 13


@pytest.mark.parametrize(("variables", "field"), [
    ({"from": "2025-13"}, "from"), ({"from": "Nov"}, "from"), ({"to": "2025-1"}, "to"),
    ({"from": "1999-12"}, "from"), ({"to": "2025-10"}, "to"), ({"from": "2022-11"}, "to"),
    ({"key": "not-a-key"}, "questionnaireKey"), ({"dep": "nope"}, "departmentId"),
])
async def test_bad_periods_are_refused(november: Data, variables: dict[str, Any], field: str) -> None:
    reply = await november.tenant.call("admin", REPORT, **{"key": str(november.key), "from": "2025-11",
                                                            "to": "2025-11", **variables})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field


async def test_a_period_of_36_months_is_read(november: Data) -> None:
    reply = await november.tenant.call("admin", CHART, key=str(november.key), **{"from": "2022-12", "to": "2025-11"})
    assert reply.errors == [] and len(reply.data["surveyControlChart"]["points"]) == 36


# -- with the answering code ---------------------------------------------------------------------------------

BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { responseId } }"""


async def test_answers_given_through_the_api_are_reported(tenant: Tenant, services: Services) -> None:
    """Five satisfied answers and a low one by link (tests/surveys.py's GOOD and LOW), and one invitation not
    answered: the month's report, worked by hand. GOOD scores 91.67 (q1 5, q3 4, q4 yes), NPS 9, CSAT 4; LOW
    scores 25 (q1 2, q3 3, q4 no), NPS 3, CSAT 3."""
    await a_whole_local_day(90)  # the answers' month and the month reported: one month of the institution's
    q = await surveys.questionnaire(tenant)
    await surveys.trigger(tenant, q, delayHours=0)
    for answers in [surveys.GOOD] * 5 + [surveys.LOW, None]:
        _, _, token = await surveys.invited(tenant, services, q)
        if answers is not None:
            reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers)
            assert reply.errors == [], reply.errors
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")

    reply = await tenant.call("department_head", REPORT, key=str(q.key), **{"from": month, "to": month})

    assert reply.errors == [], reply.errors
    (row,) = reply.data["surveyReport"]["rows"]
    assert (row["invited"], row["answered"], round(row["responseRate"], 4), row["responses"], row["status"]) == (
        7, 6, round(600 / 7, 4), 6, "SHOWN")
    assert round(row["score"]["value"], 4) == round((5 * 275 / 3 + 25) / 6, 4)  # 80.5556
    assert (round(row["satisfied"]["value"], 4), round(row["nps"]["value"], 4), round(row["csat"]["value"], 4)) == (
        round(500 / 6, 4), round(400 / 6, 4), round(500 / 6, 4))
    items = {i["linkId"]: i for i in row["items"]}
    assert list(items) == ["q1", "q3", "q4", "q5", "q6", "q7"]  # no free text
    assert [d["responses"] for d in items["q1"]["distribution"]] == [0, 1, 0, 0, 5]
    assert items["q4"]["distribution"] == [{"value": "0", "responses": 1}, {"value": "1", "responses": 5}]
    assert (items["q5"]["responses"], items["q5"]["distribution"]) == (5, [
        {"value": "friend", "responses": 0}, {"value": "web", "responses": 5}])
    assert (items["q6"]["responses"], items["q6"]["distribution"]) == (5, [
        {"value": "clean", "responses": 5}, {"value": "fill", "responses": 0}, {"value": "xray", "responses": 5}])
