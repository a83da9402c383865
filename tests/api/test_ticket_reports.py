"""The complaint Pareto and the monthly department report on a known data set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models import Ticket
from tests.factories import Tenant, make_patient

CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
PARETO = """query($from: Date!, $to: Date!, $dep: ID) {
  complaintPareto(from: $from, to: $to, departmentId: $dep) { cause complaints share cumulativeShare } }"""
REPORT = """query($month: String!, $dep: ID!) { ticketReport(month: $month, departmentId: $dep) {
  departmentId month tickets byChannel { channel tickets } byCategory { category tickets }
  firstResponse { count medianMinutes p90Minutes } resolution { count medianMinutes p90Minutes }
  slaComplianceRate complaints patientsServed complaintRatePer1000 } }"""
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def ticket(tenant: Tenant, pid: uuid.UUID, category: str, cause: str | None = None,
                 channel: str = "HOTLINE") -> uuid.UUID:
    reply = await tenant.call("support_agent", CREATE, input={
        "channel": channel, "category": category, "subject": "Report data", "patientId": str(pid)})
    assert reply.errors == [], reply.errors
    tid = uuid.UUID(reply.data["ticketCreate"]["id"])
    if cause:
        await Ticket.filter(id=tid).update(root_cause_category=cause)
    return tid


async def seen(tenant: Tenant, pid: uuid.UUID, ended: datetime, department: str = "A") -> None:
    """A finished visit of the department, recorded afterwards, ending at ``ended``."""
    reply = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED",
        "departmentId": str(tenant.departments[department].id),
        "startedAt": (ended - timedelta(minutes=20)).isoformat(), "endedAt": ended.isoformat()})
    assert reply.errors == [], reply.errors


async def test_pareto_sorts_causes_with_cumulative_shares(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    for cause, n in (("process", 5), ("people", 3), ("place", 1), (None, 1)):
        for _ in range(n):
            await ticket(tenant, pid, "COMPLAINT", cause)
    await ticket(tenant, pid, "ENQUIRY", "equipment")  # not a complaint: not counted
    today = datetime.now(SHANGHAI).date()
    reply = await tenant.call("department_head", PARETO, **{"from": str(today - timedelta(days=1)),
                                                           "to": str(today), "dep": str(tenant.departments["A"].id)})
    assert reply.errors == [], reply.errors
    assert reply.data["complaintPareto"] == [
        {"cause": "PROCESS", "complaints": 5, "share": 0.5, "cumulativeShare": 0.5},
        {"cause": "PEOPLE", "complaints": 3, "share": 0.3, "cumulativeShare": 0.8},
        {"cause": "PLACE", "complaints": 1, "share": 0.1, "cumulativeShare": 0.9},
        {"cause": None, "complaints": 1, "share": 0.1, "cumulativeShare": 1.0},
    ]
    earlier = await tenant.call("support_agent", PARETO, **{"from": "2020-01-01", "to": "2020-12-31"})
    assert earlier.data["complaintPareto"] == []


async def test_monthly_report_numbers(tenant: Tenant) -> None:
    pids = [await make_patient(tenant) for _ in range(4)]  # 4 patients seen in department A this month
    now = datetime.now(UTC)
    for pid in pids:
        await seen(tenant, pid, now - timedelta(minutes=140))
    # Five tickets: response after 10, 20, 30, 40 minutes (one never answered), resolution after 60 and 120.
    plan = [("COMPLAINT", "HOTLINE", 10, 60), ("COMPLAINT", "APP", 20, 120), ("ENQUIRY", "HOTLINE", 30, None),
            ("REQUEST", "HOTLINE", 40, None), ("SUGGESTION", "WECHAT", None, None)]
    for category, channel, responded, resolved in plan:
        tid = await ticket(tenant, pids[0], category, channel=channel)
        received = now - timedelta(minutes=150)
        await Ticket.filter(id=tid).update(
            received_at=received,
            first_responded_at=received + timedelta(minutes=responded) if responded else None,
            resolved_at=received + timedelta(minutes=resolved) if resolved else None)
    month = datetime.now(SHANGHAI).strftime("%Y-%m")
    if datetime.now(SHANGHAI) - timedelta(minutes=150) < datetime.now(SHANGHAI).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0):
        pytest.skip("the data would straddle two months")
    reply = await tenant.call("department_head", REPORT, month=month, dep=str(tenant.departments["A"].id))
    assert reply.errors == [], reply.errors
    report = reply.data["ticketReport"]
    assert report["tickets"] == 5 and report["complaints"] == 2 and report["patientsServed"] == 4
    assert report["byChannel"] == [{"channel": "APP", "tickets": 1}, {"channel": "HOTLINE", "tickets": 3},
                                   {"channel": "WECHAT", "tickets": 1}]
    assert report["byCategory"] == [{"category": "COMPLAINT", "tickets": 2}, {"category": "ENQUIRY", "tickets": 1},
                                    {"category": "REQUEST", "tickets": 1}, {"category": "SUGGESTION", "tickets": 1}]
    assert report["firstResponse"] == {"count": 4, "medianMinutes": 20.0, "p90Minutes": 40.0}
    assert report["resolution"] == {"count": 2, "medianMinutes": 60.0, "p90Minutes": 120.0}
    assert report["complaintRatePer1000"] == 500.0


async def test_reports_follow_the_policy_and_department_reach(tenant: Tenant) -> None:
    month = datetime.now(SHANGHAI).strftime("%Y-%m")
    other = str(tenant.departments["B"].id)
    refused = await tenant.call("department_head", REPORT, month=month, dep=other)
    assert refused.codes == ["FORBIDDEN"]
    assert (await tenant.call("support_agent", REPORT, month=month, dep=other)).errors == []
    for role in ("front_desk", "nurse", "doctor", "compliance_officer", "admin"):
        assert (await tenant.call(role, REPORT, month=month, dep=other)).codes == ["FORBIDDEN"]
    denied = [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]
    assert (tenant.staff_ids["department_head"], "outside_department") in denied
    assert (tenant.staff_ids["admin"], "forbidden") in denied
    bad = await tenant.call("support_agent", REPORT, month="2026-13", dep=other)
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "month"
    unknown = await tenant.call("support_agent", REPORT, month=month, dep=str(uuid.uuid4()))
    assert unknown.codes == ["NOT_FOUND"]


async def test_patients_served_are_the_patients_seen_in_the_month(tenant: Tenant) -> None:
    """The complaint rate's denominator was the department's active files as of today, for any month (found in
    review: a past month's rate moved with every file registered or archived since, and the documents said it would
    become the patients seen in the month once visits were recorded, which they are). It is the patients with a
    finished visit of the department in the month, by its local dates: 31 October 23:30 in Shanghai is October,
    1 November 00:10 is not; a patient seen twice counts once; another department's visit and a file never seen do
    not count."""
    once, twice, late, elsewhere, _never = [await make_patient(tenant) for _ in range(5)]
    await seen(tenant, once, datetime(2026, 10, 12, 10, tzinfo=SHANGHAI))
    await seen(tenant, twice, datetime(2026, 10, 3, 10, tzinfo=SHANGHAI))
    await seen(tenant, twice, datetime(2026, 10, 31, 23, 30, tzinfo=SHANGHAI))
    await seen(tenant, late, datetime(2026, 11, 1, 0, 10, tzinfo=SHANGHAI))
    await seen(tenant, elsewhere, datetime(2026, 10, 20, 10, tzinfo=SHANGHAI), department="B")
    tid = await ticket(tenant, once, "COMPLAINT")
    await Ticket.filter(id=tid).update(received_at=datetime(2026, 10, 15, 9, tzinfo=SHANGHAI))
    for role in ("department_head", "support_agent"):
        reply = await tenant.call(role, REPORT, month="2026-10", dep=str(tenant.departments["A"].id))
        assert reply.errors == [], reply.errors
        report = reply.data["ticketReport"]
        assert (report["complaints"], report["patientsServed"], report["complaintRatePer1000"]) == (1, 2, 500.0)
    empty = await tenant.call("department_head", REPORT, month="2026-09", dep=str(tenant.departments["A"].id))
    assert (empty.data["ticketReport"]["patientsServed"], empty.data["ticketReport"]["complaintRatePer1000"]) == (0,
                                                                                                                None)


async def test_a_report_refused_for_its_input_or_a_missing_department_is_no_read_on_the_trail(tenant: Tenant) -> None:
    """The read of the report was noted before its input was checked: a month that does not parse, a reversed period
    or a department that does not exist left an allowed read of a report on the trail, beside the refusal of the
    missing department (found in review). The missing department leaves its refusal alone."""
    dep = str(tenant.departments["A"].id)
    events = await tenant.audit_count()
    bad = await tenant.call("support_agent", REPORT, month="2026-13", dep=dep)
    reversed_ = await tenant.call("support_agent", PARETO, **{"from": "2026-10-02", "to": "2026-10-01", "dep": dep})
    assert bad.codes == reversed_.codes == ["BAD_USER_INPUT"]
    assert await tenant.audit_count() == events
    missing = uuid.uuid4()
    unknown = await tenant.call("support_agent", REPORT, month="2026-10", dep=str(missing))
    assert unknown.codes == ["NOT_FOUND"]
    added = (await tenant.audit_events())[events:]
    assert [(e.outcome, e.reason, e.resource_id) for e in added] == [("denied", "not_found", missing)]


async def test_the_pareto_of_another_institutions_department_is_refused_as_missing(tenant: Tenant,
                                                                                    other_tenant: Tenant) -> None:
    """``ticketReport`` answers a department that is not the institution's as missing, its refusal recorded; the
    Pareto answered an empty chart and recorded an allowed read of the other institution's department (found in
    review)."""
    theirs = await other_tenant.audit_count()
    for dep in (other_tenant.departments["A"].id, uuid.uuid4()):
        events = await tenant.audit_count()
        reply = await tenant.call("support_agent", PARETO, **{"from": "2026-10-01", "to": "2026-10-31",
                                                               "dep": str(dep)})
        assert reply.codes == ["NOT_FOUND"] and reply.errors[0]["extensions"]["field"] == "departmentId"
        added = (await tenant.audit_events())[events:]
        assert [(e.outcome, e.reason, e.resource_id) for e in added] == [("denied", "not_found", dep)]
    assert await other_tenant.audit_count() == theirs
