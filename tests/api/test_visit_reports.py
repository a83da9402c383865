"""The monthly care-journey report, exact on a known data set (November 2026, Asia/Shanghai), with its
time-zone boundaries, and who may read it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models import FollowUpTask, Visit
from tests.conftest import RowsRead, SqlCounter
from tests.factories import Tenant, make_patient

CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
MOVE = "mutation($id: ID!, $to: VisitStatus!, $at: DateTime) { visitTransition(id: $id, to: $to, at: $at) { id } }"
CLAIM = "mutation($id: ID!) { followUpTaskClaim(id: $id) { id } }"
COMPLETE = """mutation($id: ID!, $input: FollowUpOutcomeInput!) {
  followUpTaskComplete(id: $id, input: $input) { id status } }"""
FAIL = "mutation($id: ID!) { followUpTaskFail(id: $id) { id status } }"
ATTEMPT = """mutation($id: ID!) { followUpAttemptRecord(taskId: $id, input: {channel: PHONE, outcome: NO_ANSWER}) {
  id } }"""
REPORT = """query($month: String!, $dep: ID!, $n: Int) { visitReport(month: $month, departmentId: $dep,
  retentionMonths: $n) {
    month visitsByKind { kind visits } noShows
    followUp { due doneOnTime doneLate notReached stillOpen completionRate }
    satisfactionResponses averageSatisfaction retentionMonths patientsSeen patientsReturned retentionRate
    waitingTime { count medianMinutes p90Minutes } } }"""


def local(text: str) -> str:
    return f"2026-{text}+08:00"


async def seen(tenant: Tenant, pid: uuid.UUID, kind: str, arrived: str, started: str, ended: str,
               department: str = "A") -> str:
    """A visit checked in, started and finished at these local times."""
    reply = await tenant.call("front_desk", CREATE, input={
        "patientId": str(pid), "kind": kind, "departmentId": str(tenant.departments[department].id),
        "plannedAt": local(arrived)})
    vid = reply.data["visitCreate"]["id"]
    for to, at in (("ARRIVED", arrived), ("IN_PROGRESS", started), ("FINISHED", ended)):
        moved = await tenant.call("nurse", MOVE, id=vid, to=to, at=local(at))
        assert moved.errors == [], moved.errors
    return str(vid)


async def recorded(tenant: Tenant, pid: uuid.UUID, kind: str, started: str, ended: str) -> None:
    """A visit recorded afterwards (no arrival at the desk)."""
    reply = await tenant.call("nurse", CREATE, input={
        "patientId": str(pid), "kind": kind, "status": "FINISHED", "departmentId": str(tenant.departments["A"].id),
        "startedAt": local(started), "endedAt": local(ended)})
    assert reply.errors == [], reply.errors


async def close(tenant: Tenant, task: FollowUpTask, at: str, outcome: dict[str, Any] | None) -> None:
    """Claim and complete (or fail) a pool task through the API; the completion time is then fixed to ``at``
    (the API stamps now, and the report's arithmetic is what is under test)."""
    assert (await tenant.call("nurse", CLAIM, id=str(task.id))).errors == []
    if outcome is None:  # not reached: a call attempt first
        attempt = await tenant.call("nurse", ATTEMPT, id=str(task.id))
        assert attempt.errors == [], attempt.errors
        reply = await tenant.call("nurse", FAIL, id=str(task.id))
    else:
        reply = await tenant.call("nurse", COMPLETE, id=str(task.id), input=outcome)
    assert reply.errors == [], reply.errors
    await FollowUpTask.filter(id=task.id).update(completed_at=datetime.fromisoformat(local(at)))


@pytest.fixture
async def november(tenant: Tenant) -> Tenant:
    p1, p2, p3, p4, p5, p6, p7 = [await make_patient(tenant) for _ in range(7)]
    await seen(tenant, p1, "OUTPATIENT", "11-02T09:00:00", "11-02T09:10:00", "11-02T09:40:00")  # wait 10
    await seen(tenant, p2, "OUTPATIENT", "11-02T10:00:00", "11-02T10:30:00", "11-02T10:50:00")  # wait 30
    await seen(tenant, p3, "PROCEDURE", "11-03T08:00:00", "11-03T09:00:00", "11-03T11:00:00")  # wait 60
    await recorded(tenant, p1, "DENTAL", "11-20T14:00:00", "11-20T15:00:00")  # p1 returns in November
    await recorded(tenant, p2, "OUTPATIENT", "12-01T14:00:00", "12-01T15:00:00")  # p2 returns in December
    await recorded(tenant, p4, "OUTPATIENT", "10-31T22:00:00", "10-31T23:30:00")  # October, local
    await seen(tenant, p5, "OUTPATIENT", "11-10T09:00:00", "11-10T09:05:00", "11-10T09:20:00", department="B")
    await recorded(tenant, p6, "OUTPATIENT", "11-30T23:00:00", "11-30T23:50:00")  # 15:50 UTC: November, local
    await recorded(tenant, p7, "OUTPATIENT", "12-01T00:00:00", "12-01T00:10:00")  # 16:10 UTC on 30 Nov: December
    no_show = await tenant.call("front_desk", CREATE, input={
        "patientId": str(p2), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "plannedAt": local("11-25T09:00:00")})
    await tenant.call("front_desk", MOVE, id=no_show.data["visitCreate"]["id"], to="NO_SHOW")

    tasks = {(t.patient_id, t.due_on.isoformat()): t for t in await FollowUpTask.filter(institution_id=tenant.id)}
    await close(tenant, tasks[(p1, "2026-11-05")], "11-05T20:00:00", {"reached": True, "condition": "BETTER",
                                                                         "needsHelp": False, "satisfaction": 5})
    await close(tenant, tasks[(p2, "2026-11-05")], "11-06T09:00:00", {"reached": True, "condition": "SAME",
                                                                         "needsHelp": False, "satisfaction": 4})
    await close(tenant, tasks[(p3, "2026-11-04")], "11-04T18:00:00", None)
    return tenant


async def test_the_november_report_is_exact(november: Tenant) -> None:
    reply = await november.call("department_head", REPORT, month="2026-11",
                                dep=str(november.departments["A"].id), n=12)
    assert reply.errors == [], reply.errors
    assert reply.data["visitReport"] == {
        "month": "2026-11",
        "visitsByKind": [{"kind": "DENTAL", "visits": 1}, {"kind": "OUTPATIENT", "visits": 3},
                         {"kind": "PROCEDURE", "visits": 1}],
        "noShows": 1,
        # due in November: p4 on the 3rd (its 31 October visit, day 3), p1 and p2 on the 5th (outpatient, day 3),
        # p3 on the 4th and 10th (procedure, day 1 and 7; its day-30 call falls in December)
        "followUp": {"due": 5, "doneOnTime": 1, "doneLate": 1, "notReached": 1, "stillOpen": 2,
                     "completionRate": 0.4},
        "satisfactionResponses": 2, "averageSatisfaction": 4.5,
        # seen: p1, p2, p3, p6; back within 12 months: p1 (20 Nov) and p2 (1 Dec)
        "retentionMonths": 12, "patientsSeen": 4, "patientsReturned": 2, "retentionRate": 0.5,
        "waitingTime": {"count": 3, "medianMinutes": 30.0, "p90Minutes": 60.0},
    }


async def test_the_retention_window_is_a_parameter(november: Tenant) -> None:
    reply = await november.call("department_head", REPORT, month="2026-11",
                                dep=str(november.departments["A"].id), n=1)
    # p2's return on 1 December is within a month of 2 November; p1's on 20 November too
    assert reply.data["visitReport"]["patientsReturned"] == 2
    reply = await november.call("department_head", REPORT, month="2026-10",
                                dep=str(november.departments["A"].id), n=1)
    assert reply.data["visitReport"]["patientsSeen"] == 1 and reply.data["visitReport"]["patientsReturned"] == 0


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "support_agent", "admin", "compliance_officer"])
async def test_other_roles_are_refused_and_the_refusal_audited(tenant: Tenant, role: str) -> None:
    events = await tenant.audit_count()
    reply = await tenant.call(role, REPORT, month="2026-11", dep=str(tenant.departments["A"].id))
    assert reply.codes == ["FORBIDDEN"] and await tenant.audit_count() == events + 1


async def test_a_head_reads_only_their_departments(tenant: Tenant, other_tenant: Tenant) -> None:
    reply = await tenant.call("department_head", REPORT, month="2026-11", dep=str(tenant.departments["B"].id))
    assert reply.codes == ["FORBIDDEN"]
    reply = await tenant.call("department_head", REPORT, month="2026-11", dep=str(other_tenant.departments["A"].id))
    assert reply.codes == ["FORBIDDEN"]


@pytest.mark.parametrize(("variables", "field"), [({"month": "2026-13"}, "month"), ({"month": "Nov"}, "month"),
                                                  ({"n": 0}, "retentionMonths"), ({"n": 25}, "retentionMonths")])
async def test_bad_periods_are_refused(tenant: Tenant, variables: dict[str, Any], field: str) -> None:
    reply = await tenant.call("department_head", REPORT, **{"month": "2026-11", "dep": str(tenant.departments["A"].id),
                                                             **variables})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field


async def test_the_retention_window_ends_on_the_local_day(tenant: Tenant) -> None:
    """1 October 00:30 local is 30 September in UTC: a month later is 1 November 00:30 local, so a return on
    31 October is within the window (a month added to the UTC time would end it at 31 October 00:30 local)."""
    pid = await make_patient(tenant)
    await recorded(tenant, pid, "OUTPATIENT", "10-01T00:10:00", "10-01T00:30:00")
    await recorded(tenant, pid, "OUTPATIENT", "10-31T11:00:00", "10-31T12:00:00")
    reply = await tenant.call("department_head", REPORT, month="2026-10", dep=str(tenant.departments["A"].id), n=1)
    assert reply.errors == [], reply.errors
    assert (reply.data["visitReport"]["patientsSeen"], reply.data["visitReport"]["patientsReturned"]) == (1, 1)


async def test_the_returning_patients_are_named_by_a_subquery_not_one_parameter_each(
        november: Tenant, sql_counter: SqlCounter) -> None:
    """A statement takes at most 32,767 parameters on either database: a large hospital's department sees more
    patients in a month, and the statement that looked for their return named each one (found in review). The
    statement that counts the returns finds the patients by a subquery: none of their ids is a parameter."""
    reply = await november.call("department_head", REPORT, month="2026-11",
                                dep=str(november.departments["A"].id), n=12)
    assert reply.data["visitReport"]["patientsSeen"] == 4 and reply.data["visitReport"]["patientsReturned"] == 2
    [returning] = [s for s in sql_counter.statements if "EXISTS (SELECT 1 FROM \"visit\"" in s]
    assert 'GROUP BY "patient_id"' in returning, returning
    patients = {str(p) for p in await Visit.filter(institution_id=november.id).values_list("patient_id", flat=True)}
    assert patients and not any(p in returning for p in patients), returning


async def test_the_retention_window_ends_n_months_after_the_first_visit_not_on_the_28th(tenant: Tenant) -> None:
    """Seen on 2 October, a return on 20 November is more than a month later: with retentionMonths 1 it does not
    count (found in review: for a first visit on the 1st to the 27th the window ended on the 28th of the month N
    months on, up to 26 days late, so returns after the window counted as retained)."""
    pid = await make_patient(tenant)
    await recorded(tenant, pid, "OUTPATIENT", "10-02T09:00:00", "10-02T09:30:00")
    await recorded(tenant, pid, "OUTPATIENT", "11-20T09:00:00", "11-20T09:30:00")
    back = await make_patient(tenant)
    await recorded(tenant, back, "OUTPATIENT", "10-02T10:00:00", "10-02T10:30:00")
    await recorded(tenant, back, "OUTPATIENT", "11-02T10:00:00", "11-02T10:30:00")  # the same day a month on: in
    reply = await tenant.call("department_head", REPORT, month="2026-10", dep=str(tenant.departments["A"].id), n=1)
    assert reply.errors == [], reply.errors
    assert (reply.data["visitReport"]["patientsSeen"], reply.data["visitReport"]["patientsReturned"]) == (2, 1)
    reply = await tenant.call("department_head", REPORT, month="2026-10", dep=str(tenant.departments["A"].id), n=2)
    assert (reply.data["visitReport"]["patientsSeen"], reply.data["visitReport"]["patientsReturned"]) == (2, 2)


async def test_the_returns_are_read_within_the_window_only(tenant: Tenant, sql_counter: SqlCounter,
                                                           rows_read: Callable[[str], RowsRead]) -> None:
    """The statement that looks for the patients' returns read every later finished visit of theirs, to today,
    however short the window (found in review: a report of a month two years back read two years of those patients'
    visits to keep the ones within a month). It reads those ending within the latest first visit's window (June's
    last local instant a month on: 30 July 23:59:59.999999 in Shanghai), and counts them there: one row comes back."""
    pid = await make_patient(tenant)
    await recorded(tenant, pid, "OUTPATIENT", "06-10T09:00:00", "06-10T09:30:00")
    for day in ("07-05", "08-20", "09-20", "10-20", "11-20"):  # back within a month on 5 July; the rest after it
        await recorded(tenant, pid, "OUTPATIENT", f"{day}T09:00:00", f"{day}T09:30:00")
    visits = rows_read("visit")
    reply = await tenant.call("department_head", REPORT, month="2026-06", dep=str(tenant.departments["A"].id), n=1)
    assert reply.errors == [], reply.errors
    assert (reply.data["visitReport"]["patientsSeen"], reply.data["visitReport"]["patientsReturned"]) == (1, 1)
    [returns] = [n for n, q in zip(visits.rows, visits.queries, strict=True) if "EXISTS (SELECT" in q]
    assert returns == 1
    [returning] = [s for s in sql_counter.statements if "EXISTS (SELECT 1 FROM \"visit\"" in s]
    latest = datetime.fromisoformat(local("07-31T00:00:00")).astimezone(UTC) - timedelta(microseconds=1)
    assert '"v"."ended_at" <= ' in returning and repr(latest) in returning, returning


@pytest.mark.parametrize(("variables", "field"), [({"month": "2026-13"}, "month"), ({"n": 0}, "retentionMonths")])
async def test_a_report_refused_for_its_input_leaves_no_read_on_the_trail(tenant: Tenant, variables: dict[str, Any],
                                                                           field: str) -> None:
    """The read of the report was noted before its input was checked, so a month that does not parse left an allowed
    read of the department's report on the trail, a read that never happened (found in review)."""
    events = await tenant.audit_count()
    reply = await tenant.call("department_head", REPORT, **{"month": "2026-11", "dep": str(tenant.departments["A"].id),
                                                             **variables})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await tenant.audit_count() == events
