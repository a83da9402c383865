"""The sections of a patient's record (visits, alerts, care plans, follow-up tasks, appointments, the communication
log) are read where a role allowed to read that section reaches the patient, not wherever another role of the same
account reaches the file: a nurse of department B who also works in finance (which finds every client of the
institution by identity, and reads no section) reads the sections of department B's patients only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from resolvers import appointment as appointments
from resolvers import institution as institutions
from resolvers.context import Services
from tests.api.test_appointments import NOW, TOMORROW_9, book, make_schedule
from tests.factories import PASSWORD, Tenant, login, make_patient
from tests.patients import events_since, mark

SECTIONS = ("recentVisits", "flags", "carePlans", "openFollowUpTasks", "upcomingAppointments",
            "recentCommunications")
PAGE = """query($id: ID!) { patient(id: $id) { id fullName recentVisits { id kind } flags { id kind }
  carePlans { id status } openFollowUpTasks { id status } upcomingAppointments { id status }
  recentCommunications { id cause } } }"""
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
CALL = "mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }"
# one record each, by id: out of the section's reach they answer as missing ones
BY_ID = {
    "visit": "query($id: ID!) { visit(id: $id) { id kind } }",
    "carePlan": "query($id: ID!) { carePlan(id: $id) { id status } }",
    "followUpTask": "query($id: ID!) { followUpTask(id: $id) { id status } }",
    "appointment": "query($id: ID!) { appointment(id: $id) { id status } }",
}
# a patient's whole section: the file is in reach, the section is not
OF_PATIENT = {
    "visits": "query($id: ID!) { visits(patientId: $id) { nodes { id kind } } }",
    "patientFlagsConnection": "query($id: ID!) { patientFlagsConnection(patientId: $id) { nodes { id kind } } }",
    "carePlans": "query($id: ID!) { carePlans(patientId: $id) { nodes { id status } } }",
    "patientFollowUpTasks": "query($id: ID!) { patientFollowUpTasks(patientId: $id) { nodes { id status } } }",
    "patientAppointments": "query($id: ID!) { patientAppointments(patientId: $id) { nodes { id status } } }",
    "patientCommunications": "query($id: ID!) { patientCommunications(patientId: $id) { nodes { id cause } } }",
}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appointments, "_now", lambda: NOW)


async def furnish(tenant: Tenant, role: str, department: str, schedule: str) -> dict[str, str]:
    """A patient of ``department`` with one record of each section, written by ``role`` (a nurse of that
    department), the appointment booked by the front desk and the call logged by the support agent."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments[department].id))
    made = {"patient": str(pid)}
    for key, query, who, data in (
            ("visit", VISIT, role, {"patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED",
                                    "departmentId": str(tenant.departments[department].id),
                                    "startedAt": "2026-11-02T09:00:00+08:00", "endedAt": "2026-11-02T10:00:00+08:00"}),
            ("flag", FLAG, role, {"patientId": str(pid), "kind": "ALLERGY", "detail": "Penicillin"}),
            ("carePlan", PLAN, role, {"patientId": str(pid), "title": "Gum care",
                                      "activities": [{"kind": "CALL", "afterDays": 1}]}),
            ("call", CALL, "support_agent", {"patientId": str(pid), "direction": "INBOUND",
                                             "occurredAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
                                             "note": "Asked about the gums"})):
        reply = await tenant.call(who, query, input=data)
        assert reply.errors == [], reply.errors
        made[key] = next(iter(reply.data.values()))["id"]
    made["appointment"] = (await book(tenant, schedule, pid))["id"]
    page = await tenant.call(role, PAGE, id=str(pid))
    made["followUpTask"] = page.data["patient"]["openFollowUpTasks"][0]["id"]
    return made


async def nurse_in_finance(tenant: Tenant, services: Services, client: httpx.AsyncClient) -> str:
    email = f"finance-nurse.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name="finance and nurse",
                                              password=PASSWORD, roles=["finance", "nurse"],
                                              departments=[tenant.departments["B"]])
    tenant.staff_ids["finance_nurse"], tenant.tokens["finance_nurse"] = staff.id, await login(client, email)
    return "finance_nurse"


async def test_sections_are_read_only_where_a_role_that_reads_them_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """Found in review: each section's read right was decided for the account and used on every file any of its
    roles reached, so a nurse of department B who also works in finance read the visits, alerts, plans, tasks,
    appointments and calls (dates, kinds, statuses) of every patient of the institution."""
    schedule = await make_schedule(tenant, capacity=2)
    who = await nurse_in_finance(tenant, services, client)
    in_a = await furnish(tenant, "nurse", "A", schedule)
    in_b = await furnish(tenant, who, "B", schedule)
    seq = await mark(tenant.id)

    other = await tenant.call(who, PAGE, id=in_a["patient"])
    own = await tenant.call(who, PAGE, id=in_b["patient"])

    assert other.data["patient"]["id"] == in_a["patient"]  # the file is in reach (finance finds every client)
    assert [other.data["patient"][section] for section in SECTIONS] == [None] * len(SECTIONS)
    assert sorted(tuple(e["path"][1:]) for e in other.errors) == sorted((s,) for s in SECTIONS)
    assert set(other.codes) == {"FORBIDDEN"}
    # held through a role that does not reach the file: the right is named as for a caller without it
    assert {e["extensions"]["reason"] for e in other.errors} == {"permission"}
    assert sorted(e["extensions"]["permission"] for e in other.errors) == sorted(
        f"{kind}:read" for kind in ("visit", "flag", "care_plan", "follow_up_task", "appointment", "communication"))
    assert own.errors == [], own.errors
    assert all(own.data["patient"][section] for section in SECTIONS)  # each section lists B's records
    refused = await events_since(tenant.id, seq, outcome="denied")
    assert {(e.resource_type, e.patient_id, e.reason) for e in refused} == {
        (kind, uuid.UUID(in_a["patient"]), "forbidden_field")
        for kind in ("visit", "flag", "care_plan", "follow_up_task", "appointment", "communication")}


async def test_a_sections_records_out_of_its_reach_answer_as_missing_ones(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    schedule = await make_schedule(tenant, capacity=2)
    who = await nurse_in_finance(tenant, services, client)
    in_a = await furnish(tenant, "nurse", "A", schedule)
    in_b = await furnish(tenant, who, "B", schedule)
    seq = await mark(tenant.id)

    for root, query in BY_ID.items():
        other = await tenant.call(who, query, id=in_a[root])
        own = await tenant.call(who, query, id=in_b[root])
        assert other.data == {root: None} and other.codes == ["NOT_FOUND"], (root, other.errors)
        assert own.errors == [] and own.data[root]["id"] == in_b[root], (root, own.errors)
    for root, query in OF_PATIENT.items():
        other = await tenant.call(who, query, id=in_a["patient"])
        own = await tenant.call(who, query, id=in_b["patient"])
        assert other.codes == ["FORBIDDEN"], (root, other.errors)
        assert own.errors == [] and own.data[root]["nodes"], (root, own.errors)
    refused = await events_since(tenant.id, seq, outcome="denied")
    assert {(e.resource_type, e.reason) for e in refused} == {
        *((kind, "not_found") for kind in ("visit", "care_plan", "follow_up_task", "appointment")),
        *((kind, "forbidden") for kind in ("visit", "flag", "care_plan", "follow_up_task", "appointment",
                                           "communication"))}
    assert {e.patient_id for e in refused if e.reason == "forbidden"} == {uuid.UUID(in_a["patient"])}


async def test_finance_alone_reads_no_section(tenant: Tenant, services: Services) -> None:
    """The denied twin: the role whose reach the account borrowed reads none of these sections on its own."""
    in_a = await furnish(tenant, "nurse", "A", await make_schedule(tenant))
    page = await tenant.call("finance", PAGE, id=in_a["patient"])
    assert page.data["patient"]["id"] == in_a["patient"]
    assert [page.data["patient"][section] for section in SECTIONS] == [None] * len(SECTIONS)
    assert set(page.codes) == {"FORBIDDEN"}
    for root, query in BY_ID.items():
        reply = await tenant.call("finance", query, id=in_a[root])
        assert reply.data == {root: None} and reply.codes == ["FORBIDDEN"], (root, reply.errors)


TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
BOOK = "mutation($input: AppointmentBookInput!) { appointmentBook(input: $input) { id } }"


async def test_a_section_takes_new_records_only_where_a_role_that_adds_them_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """As reading (found by the review of the reads' fix): a nurse of department B who also works in finance added
    visits, alerts, plans, follow-up calls, appointments and logged calls to any file of the institution, the finance
    role's reach with the nurse's right. Refused on department A's file now (FORBIDDEN, recorded, nothing written);
    on her own department's file each goes through (``furnish`` above writes B's records as her)."""
    schedule = await make_schedule(tenant, capacity=2)
    who = await nurse_in_finance(tenant, services, client)
    pid = str(await make_patient(tenant, departmentId=str(tenant.departments["A"].id)))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    creates = {
        "visit": (VISIT, {"patientId": pid, "kind": "OUTPATIENT", "status": "PLANNED",
                          "departmentId": str(tenant.departments["B"].id)}),
        "flag": (FLAG, {"patientId": pid, "kind": "FALL_RISK"}),
        "care_plan": (PLAN, {"patientId": pid, "title": "Gum care", "activities": [{"kind": "CALL", "afterDays": 1}]}),
        "follow_up_task": (TASK, {"patientId": pid, "dueOn": tomorrow}),
        "appointment": (BOOK, {"scheduleId": schedule, "slotStart": TOMORROW_9.isoformat(), "patientId": pid}),
        "communication": (CALL, {"patientId": pid, "direction": "INBOUND",
                                 "occurredAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}),
    }
    seq = await mark(tenant.id)
    for section, (query, data) in creates.items():
        refused = await tenant.call(who, query, input=data)
        assert refused.codes == ["FORBIDDEN"], (section, refused.errors)
    page = await tenant.call("nurse", PAGE, id=pid)  # the department's own nurse sees what the file holds
    assert page.errors == [], page.errors
    assert [page.data["patient"][section] for section in SECTIONS] == [[]] * len(SECTIONS)  # nothing written
    refused_events = await events_since(tenant.id, seq, outcome="denied")
    assert {(e.action, e.resource_type, e.patient_id, e.reason) for e in refused_events} == {
        ("create", section, uuid.UUID(pid), "forbidden") for section in creates}
    for section, (query, data) in creates.items():  # the allowed twin: a nurse of department A adds each
        added = await tenant.call("nurse", query, input={**data, "departmentId": str(tenant.departments["A"].id)}
                                  if section == "visit" else data)
        assert added.errors == [], (section, added.errors)


CHECK_IN = "mutation($id: ID!) { appointmentCheckIn(id: $id) { id status } }"


async def test_a_check_in_opens_a_visit_only_where_a_role_that_adds_visits_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A support agent reads every appointment of the institution; with a nurse's rights (department B) the account
    checked in department A's patients, opening visits on their files. Refused now (FORBIDDEN, recorded, the
    appointment still booked); the department's own nurse checks the patient in."""
    email = f"agent-nurse.{uuid.uuid4().hex[:8]}@careloop.test"
    await institutions.create_account(services, tenant.institution, email=email, name="agent and nurse",
                                      password=PASSWORD, roles=["support_agent", "nurse"],
                                      departments=[tenant.departments["B"]])
    tenant.tokens["agent_nurse"] = await login(client, email)
    pid = await make_patient(tenant, departmentId=str(tenant.departments["A"].id))
    made = await book(tenant, await make_schedule(tenant), pid)
    monkeypatch.setattr(appointments, "_now", lambda: (TOMORROW_9 - timedelta(minutes=20)).astimezone(UTC))
    seq = await mark(tenant.id)
    refused = await tenant.call("agent_nurse", CHECK_IN, id=made["id"])
    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert [(e.action, e.resource_type, e.patient_id) for e in await events_since(tenant.id, seq, outcome="denied")
            ] == [("create", "visit", pid)]
    arrived = await tenant.call("nurse", CHECK_IN, id=made["id"])
    assert arrived.errors == [] and arrived.data["appointmentCheckIn"]["status"] == "ARRIVED", arrived.errors
