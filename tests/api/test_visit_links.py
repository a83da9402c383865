"""A record that names a visit (a follow-up task, a care plan, a survey invitation, a questionnaire response) shows it
as ``visit``, read exactly as ``visit(id:)`` reads it for the same caller: the same answer, the same refusal
(FORBIDDEN without the right to read visits, NOT_FOUND outside the caller's reach, a field of a class refused), the
same records on the audit trail; null when it names none."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import Appointment, AuditEvent, QuestionnaireResponse, SurveyInvitation
from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import appointment as appointments
from resolvers.context import Services
from tests.api.test_appointments import BOOK, NOW, TOMORROW_9, booking, make_schedule
from tests.factories import Response, Tenant, make_patient, subjects
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import PatientUser, events_since, mark, open_account
from tests.surveys import GOOD, questionnaire, reachable, trigger

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test institutions' zone
VISIT_FIELDS = "id kind status summary internalNote department { name } patient { id fullName }"
BY_ID = f"query($id: ID!) {{ visit(id: $id) {{ {VISIT_FIELDS} }} }}"
TASK = f"query($id: ID!) {{ followUpTask(id: $id) {{ id visitId visit {{ {VISIT_FIELDS} }} }} }}"
WORKLIST = f"""{{ followUpWorklist(scope: MINE) {{ nodes {{ id visitId visit {{ {VISIT_FIELDS} }} }} }} }}"""
PLAN = f"query($id: ID!) {{ carePlan(id: $id) {{ id visitId visit {{ {VISIT_FIELDS} }} }} }}"
RESPONSE = f"query($id: ID!) {{ questionnaireResponse(id: $id) {{ id visitId visit {{ {VISIT_FIELDS} }} }} }}"
INVITATIONS = f"""query($pid: ID!) {{ patientSurveyInvitations(patientId: $pid) {{ nodes {{ id visitId
  visit {{ {VISIT_FIELDS} }} }} }} }}"""
MY_INVITATIONS = f"{{ mySurveyInvitations {{ nodes {{ id visitId visit {{ {VISIT_FIELDS} }} }} }} }}"
# A refused visit field says why, as every refused field does (the visit(id:) query itself answers plain FORBIDDEN)
REFUSED_FIELD = {"code": "FORBIDDEN", "reason": "permission", "permission": "visit:read"}

VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
PLAN_CREATE = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { responseId } }"""

Call = Callable[..., Awaitable[Response]]


def ok(reply: Response) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


async def a_visit(tenant: Tenant, pid: uuid.UUID, *, role: str = "nurse", department: str = "A") -> str:
    """A finished visit with a clinical summary and an internal note (three classes of the file), but for the front
    desk, who writes neither."""
    ended = datetime.now(UTC) - timedelta(minutes=5)
    texts = {} if role == "front_desk" else {"summary": "Crown re-cemented", "internalNote": "Anxious patient"}
    return str(ok(await tenant.call(role, VISIT_CREATE, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED",
        "departmentId": str(tenant.departments[department].id),
        "startedAt": (ended - timedelta(minutes=30)).isoformat(), "endedAt": ended.isoformat(),
        **texts}))["visitCreate"]["id"])


async def a_task(tenant: Tenant, pid: uuid.UUID, visit: str | None = None) -> str:
    """A call the nurse owns, due today (the institution's date), after ``visit``."""
    data = {"patientId": str(pid), "dueOn": datetime.now(SHANGHAI).date().isoformat(),
            "ownerId": str(tenant.staff_ids["nurse"]), **({"visitId": visit} if visit else {})}
    return str(ok(await tenant.call("doctor", TASK_CREATE, input=data))["followUpTaskCreate"]["id"])


async def a_plan(tenant: Tenant, pid: uuid.UUID, visit: str) -> str:
    return str(ok(await tenant.call("doctor", PLAN_CREATE, input={
        "patientId": str(pid), "title": "After the crown", "startsOn": datetime.now(SHANGHAI).date().isoformat(),
        "visitId": visit}))["carePlanCreate"]["id"])


def refuse_visits(tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  role: str) -> None:
    """This institution's policy takes from ``role`` the right to read visits (not the records that name them)."""
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + f"p, {role}, {tenant.id}, visit, read, deny\n")
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))


@dataclass
class World:
    pid: uuid.UUID  # department A: the nurse's, the doctor's, the head's
    visit: str
    task: str
    bare_task: str  # after no visit
    plan: str


@pytest.fixture
async def world(tenant: Tenant) -> World:
    pid = await make_patient(tenant, "nurse", fullName="Liu Jianguo")
    visit = await a_visit(tenant, pid)
    return World(pid, visit, await a_task(tenant, pid, visit), await a_task(tenant, pid), await a_plan(tenant, pid,
                                                                                                      visit))


# -- the same read as visit(id:) -----------------------------------------------------------------------------------


def visit_errors(reply: Response, but: str = "") -> list[tuple[Any, ...]]:
    """Each error at or under a visit: its path from the visit on, message and extensions (without ``but``)."""
    return sorted((tuple(e["path"][e["path"].index("visit"):]), e["message"],
                   json.dumps({k: v for k, v in e["extensions"].items() if k != but}, sort_keys=True))
                  for e in reply.errors if "visit" in e["path"])


def as_field(errors: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """visit(id:)'s errors as the visit field gives them: its plain FORBIDDEN (the operation refused) is, on a field,
    the refused field's, which says why (reason permission); a partner's missing scope is compared apart."""
    field_refusal = ("Not allowed to read this field.", json.dumps(REFUSED_FIELD, sort_keys=True))
    return [(path, *field_refusal) if (message, extensions) == ("Not allowed.", '{"code": "FORBIDDEN"}')
            else (path, message, extensions) for path, message, extensions in errors]


def denials(events: list[AuditEvent]) -> list[tuple[Any, ...]]:
    return [(e.action, e.resource_type, e.reason, e.resource_id, e.patient_id, e.field_classes, e.policy_rule,
             e.subjects) for e in events if e.outcome == "denied"]


def file_reads(events: list[AuditEvent]) -> dict[Any, tuple[set[str], set[str], set[str]]]:
    """Per file: the classes, the fields and the rules its allowed reads name."""
    found: dict[Any, tuple[set[str], set[str], set[str]]] = {}
    for e in events:
        if e.outcome == "allowed" and e.action == "read" and e.resource_type == "patient":
            classes, names, rules = found.setdefault(e.patient_id, (set(), set(), set()))
            classes.update(filter(None, e.field_classes.split(",")))
            names.update(filter(None, e.fields_read.split(",")))
            rules.update(filter(None, e.policy_rule.split("; ")))
    return found


async def read_as_by_id(tenant: Tenant, call: Call, query: str, record_of: Callable[[Any], Any],
                        visit_id: str | None = None, **variables: Any) -> tuple[Response, list[AuditEvent]]:
    """``query`` (a record that names a visit, no other field of it read but its id and visitId) and ``visit(id:)``
    of the visit it names (``visit_id`` for a record that shows no visitId: an appointment), as the same caller: the
    same visit or null, the same errors at and under it, the same refusals on the trail, and what the visit's fields
    read named on the file's record. Returns the first answer and its records."""
    start = await mark(tenant.id)
    linked = await call(query, **variables)
    middle = await mark(tenant.id)
    record = record_of(linked.data)
    by_id = await call(BY_ID, id=visit_id or record["visitId"])
    linked_events = await events_since(tenant.id, start)
    linked_events = [e for e in linked_events if e.seq <= middle]
    by_id_events = await events_since(tenant.id, middle)
    assert record["visit"] == (by_id.data or {}).get("visit")
    assert visit_errors(linked, but="scope") == as_field(visit_errors(by_id))
    assert denials(linked_events) == denials(by_id_events)
    linked_reads, by_id_reads = file_reads(linked_events), file_reads(by_id_events)
    for file, (classes, names, rules) in by_id_reads.items():
        assert classes <= linked_reads[file][0] and names <= linked_reads[file][1] and rules <= linked_reads[file][2]
        assert {n for n in linked_reads[file][1] if n.startswith("visit.")} == {n for n in names
                                                                               if n.startswith("visit.")}
    return linked, linked_events


async def test_the_nurse_sees_the_visit_of_her_task_and_it_is_read_as_a_visit(tenant: Tenant, world: World) -> None:
    reply, events = await read_as_by_id(tenant, lambda q, **v: tenant.call("nurse", q, **v), TASK,
                                        lambda data: data["followUpTask"], id=world.task)
    visit = reply.data["followUpTask"]["visit"]
    assert reply.errors == [] and visit["id"] == world.visit
    assert (visit["summary"], visit["internalNote"], visit["patient"]["fullName"]) == (
        "Crown re-cemented", "Anxious patient", "Liu Jianguo")
    assert {"visit.summary", "visit.internal_note"} <= file_reads(events)[world.pid][1]
    assert {"clinical", "internal"} <= file_reads(events)[world.pid][0]


async def test_the_worklist_shows_each_task_with_its_visit_or_null(tenant: Tenant, world: World) -> None:
    nodes = ok(await tenant.call("nurse", WORKLIST))["followUpWorklist"]["nodes"]
    shown = {node["id"]: (node["visitId"], node["visit"] and node["visit"]["summary"]) for node in nodes}
    assert shown == {world.task: (world.visit, "Crown re-cemented"), world.bare_task: (None, None)}


async def test_a_task_after_no_visit_shows_null_and_reads_no_visit(tenant: Tenant, world: World) -> None:
    start = await mark(tenant.id)
    reply = await tenant.call("nurse", TASK, id=world.bare_task)
    assert reply.errors == [] and reply.data["followUpTask"]["visit"] is None
    events = await events_since(tenant.id, start)
    assert denials(events) == [] and not any(n.startswith("visit.") for n in file_reads(events)[world.pid][1])


async def test_a_care_plan_shows_its_visit_as_visit_by_id(tenant: Tenant, world: World) -> None:
    reply, _ = await read_as_by_id(tenant, lambda q, **v: tenant.call("doctor", q, **v), PLAN,
                                   lambda data: data["carePlan"], id=world.plan)
    assert reply.errors == [] and reply.data["carePlan"]["visit"]["summary"] == "Crown re-cemented"


async def test_the_patient_sees_the_visit_of_her_plan_without_the_internal_note(tenant: Tenant,
                                                                               world: World) -> None:
    user = await open_account(tenant, world.pid)
    reply, events = await read_as_by_id(tenant, user.call, PLAN, lambda data: data["carePlan"], id=world.plan)
    assert reply.data["carePlan"]["visit"]["summary"] == "Crown re-cemented"
    assert reply.data["carePlan"]["visit"]["internalNote"] is None
    assert [e["path"] for e in reply.errors] == [["carePlan", "visit", "internalNote"]]
    assert ("read", "patient", "forbidden_field", world.pid, world.pid, "internal", "", "") in denials(events)


# -- refused as visit(id:) refuses ---------------------------------------------------------------------------------


async def test_a_head_whose_policy_refuses_visits_gets_the_refusal_visit_by_id_gives(
        tenant: Tenant, world: World, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    refuse_visits(tenant, services, monkeypatch, tmp_path, "department_head")
    for query, root, record in ((TASK, "followUpTask", world.task), (PLAN, "carePlan", world.plan)):
        reply, events = await read_as_by_id(tenant, lambda q, **v: tenant.call("department_head", q, **v), query,
                                            lambda data, root=root: data[root], id=record)
        assert reply.data[root]["visitId"] == world.visit and reply.data[root]["visit"] is None
        assert [(e["path"], e["extensions"]) for e in reply.errors] == [([root, "visit"], REFUSED_FIELD)]
        assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(world.visit), None, "", "", "")]


async def test_a_patient_whose_policy_refuses_visits_gets_the_refusal_visit_by_id_gives(
        tenant: Tenant, world: World, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    user = await open_account(tenant, world.pid)
    refuse_visits(tenant, services, monkeypatch, tmp_path, "patient")
    reply, events = await read_as_by_id(tenant, user.call, PLAN, lambda data: data["carePlan"], id=world.plan)
    assert reply.data["carePlan"]["visit"] is None and reply.codes == ["FORBIDDEN"]
    assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(world.visit), None, "", "", "")]


async def entered_response(tenant: Tenant, *, patient_department: str) -> tuple[str, str]:
    """A response the front desk entered for an invitation a visit in department A made (its patient in
    ``patient_department``): the response's id and the visit's."""
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await reachable(tenant, patient_department)
    visit = await a_visit(tenant, pid, role="nurse" if patient_department == "A" else "front_desk")
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    assert str(invitation.visit_id) == visit
    ok(await tenant.call("front_desk", ENTER, id=str(invitation.id), answers=GOOD, source="PAPER"))
    response = await QuestionnaireResponse.get(institution_id=tenant.id, invitation_id=invitation.id)
    return str(response.id), visit


async def test_a_response_shows_its_visit_to_whoever_reads_both(tenant: Tenant) -> None:
    response, visit = await entered_response(tenant, patient_department="A")
    reply, _ = await read_as_by_id(tenant, lambda q, **v: tenant.call("department_head", q, **v), RESPONSE,
                                   lambda data: data["questionnaireResponse"], id=response)
    assert reply.data["questionnaireResponse"]["visit"]["id"] == visit
    assert reply.data["questionnaireResponse"]["visit"]["summary"] == "Crown re-cemented"


async def test_a_head_reading_a_response_about_a_file_outside_her_reach_meets_a_missing_visit(
        tenant: Tenant) -> None:
    """The head reads her department's responses, whoever's file they are about; the visit is on a file of
    department B, outside her reach: NOT_FOUND, as visit(id:) answers, and as it answers a visit that is not."""
    response, visit = await entered_response(tenant, patient_department="B")
    reply, events = await read_as_by_id(tenant, lambda q, **v: tenant.call("department_head", q, **v), RESPONSE,
                                        lambda data: data["questionnaireResponse"], id=response)
    assert reply.data["questionnaireResponse"]["visit"] is None
    missing = await tenant.call("department_head", BY_ID, id=str(uuid.uuid4()))
    assert [(e["message"], e["extensions"]) for e in reply.errors] == [
        (e["message"], e["extensions"]) for e in missing.errors] == [("Not found.", {"code": "NOT_FOUND",
                                                                                      "field": "id"})]
    assert denials(events) == [("read", "visit", "not_found", uuid.UUID(visit), None, "", "", "")]


async def test_an_admin_reads_responses_not_visits(tenant: Tenant) -> None:
    response, visit = await entered_response(tenant, patient_department="A")
    reply, events = await read_as_by_id(tenant, lambda q, **v: tenant.call("admin", q, **v), RESPONSE,
                                        lambda data: data["questionnaireResponse"], id=response)
    assert reply.data["questionnaireResponse"]["visit"] is None and reply.codes == ["FORBIDDEN"]
    assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(visit), None, "", "", "")]


async def test_invitations_show_their_visit_to_staff_and_to_the_patient(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await reachable(tenant, "A")
    visit = await a_visit(tenant, pid)
    user: PatientUser = await open_account(tenant, pid)
    as_nurse: Call = lambda q, **v: tenant.call("nurse", q, **v)  # noqa: E731
    as_patient: Call = lambda q, **v: user.call(q, **({} if q == MY_INVITATIONS else v))  # noqa: E731
    for call, query, root in ((as_nurse, INVITATIONS, "patientSurveyInvitations"),
                              (as_patient, MY_INVITATIONS, "mySurveyInvitations")):
        reply, _ = await read_as_by_id(tenant, call, query, lambda data, root=root: data[root]["nodes"][0],
                                       pid=str(pid))
        assert reply.data[root]["nodes"][0]["visit"]["id"] == visit


async def test_a_page_of_refusals_is_one_record_naming_each_visit(
        tenant: Tenant, world: World, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = await a_visit(tenant, world.pid)
    await a_task(tenant, world.pid, other)
    refuse_visits(tenant, services, monkeypatch, tmp_path, "department_head")
    start = await mark(tenant.id)
    reply = await tenant.call("department_head", """{ followUpWorklist(scope: DEPARTMENT) { nodes { id visitId
      visit { id } } } }""")
    nodes = reply.data["followUpWorklist"]["nodes"]
    assert sorted(n["visitId"] or "" for n in nodes) == sorted(["", world.visit, other])
    assert all(n["visit"] is None for n in nodes) and reply.codes == ["FORBIDDEN", "FORBIDDEN"]
    [refusal] = [e for e in await events_since(tenant.id, start) if e.outcome == "denied"]
    assert (refusal.resource_type, refusal.reason, refusal.resource_id) == ("visit", "forbidden", None)
    assert sorted(subjects(refusal), key=str) == sorted([(uuid.UUID(v), None) for v in (world.visit, other)], key=str)


# -- an appointment's visit, the one its check-in opened -----------------------------------------------------------

APPOINTMENT = f"query($id: ID!) {{ appointment(id: $id) {{ id status visit {{ {VISIT_FIELDS} }} }} }}"
SCHEDULE_DAY = f"""query($sid: ID!) {{ scheduleDay(scheduleId: $sid, date: "2027-03-02") {{ nodes {{ id
  visit {{ {VISIT_FIELDS} }} }} }} }}"""
MY_APPOINTMENTS = f"""{{ myAppointments(upcomingOnly: false) {{ nodes {{ id status
  visit {{ {VISIT_FIELDS} }} }} }} }}"""
CHECK_IN = "mutation($id: ID!) { appointmentCheckIn(id: $id, version: 1) { id } }"


@dataclass
class Arrival:
    schedule: str
    appointment: str
    visit: str  # the one its check-in opened


async def checked_in(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, pid: uuid.UUID,
                     book: Call | None = None) -> Arrival:
    """An appointment of department A's schedule booked (by the desk, or ``book``) for tomorrow 9:00 and checked in
    by the desk 20 minutes before: its visit ARRIVED."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    schedule = await make_schedule(tenant)
    data = booking(schedule, pid)
    made = ok(await (book or (lambda q, **v: tenant.call("front_desk", q, **v)))(BOOK, input=data))
    appointment = made["appointmentBook"]["id"]
    monkeypatch.setattr(appointments, "_now", lambda: (TOMORROW_9 - timedelta(minutes=20)).astimezone(UTC))
    ok(await tenant.call("front_desk", CHECK_IN, id=appointment))
    row = await Appointment.get(id=appointment)
    return Arrival(schedule, appointment, str(row.visit_id))


async def test_staff_who_reach_the_visit_see_an_appointments_visit_as_visit_by_id(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Wang Xiulan")
    arrival = await checked_in(tenant, monkeypatch, pid)
    for role in ("front_desk", "nurse", "doctor"):
        reply, _ = await read_as_by_id(tenant, lambda q, role=role, **v: tenant.call(role, q, **v), APPOINTMENT,
                                       lambda data: data["appointment"], arrival.visit, id=arrival.appointment)
        visit = reply.data["appointment"]["visit"]
        assert (visit["id"], visit["status"], visit["patient"]["fullName"]) == (arrival.visit, "ARRIVED",
                                                                                "Wang Xiulan"), role
    reply, _ = await read_as_by_id(tenant, lambda q, **v: tenant.call("nurse", q, **v), SCHEDULE_DAY,
                                   lambda data: data["scheduleDay"]["nodes"][0], arrival.visit, sid=arrival.schedule)
    assert reply.errors == [] and reply.data["scheduleDay"]["nodes"][0]["visit"]["id"] == arrival.visit


async def test_the_desk_whose_policy_refuses_visits_gets_the_refusal_visit_by_id_gives(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Was: "Not allowed to read this field.", noted as a refused section of the file (reason forbidden_field)."""
    arrival = await checked_in(tenant, monkeypatch, await make_patient(tenant, "nurse"))
    refuse_visits(tenant, services, monkeypatch, tmp_path, "front_desk")
    reply, events = await read_as_by_id(tenant, lambda q, **v: tenant.call("front_desk", q, **v), APPOINTMENT,
                                        lambda data: data["appointment"], arrival.visit, id=arrival.appointment)
    assert reply.data["appointment"]["status"] == "ARRIVED" and reply.data["appointment"]["visit"] is None
    assert [(e["path"], e["message"], e["extensions"]) for e in reply.errors] == [
        (["appointment", "visit"], "Not allowed to read this field.", REFUSED_FIELD)]
    assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(arrival.visit), None, "", "", "")]


async def test_a_partner_meets_the_visit_of_its_booking_as_visit_by_id_does(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner reads the appointments it booked, and only the visits it recorded: the visit the desk's check-in
    opened is outside its reach, NOT_FOUND as a missing visit (was: null, no error, nothing recorded); without the
    visit:read scope, FORBIDDEN (was: "Not allowed to read this field.")."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "appointment:create", "appointment:read",
                                                  "visit:read"])
    arrival = await checked_in(tenant, monkeypatch, partnership.granted,
                               lambda q, **v: partnership.call(q, **v))
    reply, events = await read_as_by_id(tenant, lambda q, **v: partnership.call(q, **v), APPOINTMENT,
                                        lambda data: data["appointment"], arrival.visit, id=arrival.appointment)
    assert reply.data["appointment"]["status"] == "ARRIVED" and reply.data["appointment"]["visit"] is None
    missing = await partnership.call(BY_ID, id=str(uuid.uuid4()))
    assert [(e["path"], e["message"], e["extensions"]) for e in reply.errors] == [
        (["appointment", "visit"], e["message"], e["extensions"]) for e in missing.errors] == [
        (["appointment", "visit"], "Not found.", {"code": "NOT_FOUND", "field": "id"})]
    assert denials(events) == [("read", "visit", "not_found", uuid.UUID(arrival.visit), None, "", "", "")]

    without_scope = await make_partnership(tenant, [*ALL_SCOPES, "appointment:create", "appointment:read"])
    other = await checked_in(tenant, monkeypatch, without_scope.granted, lambda q, **v: without_scope.call(q, **v))
    reply, events = await read_as_by_id(tenant, lambda q, **v: without_scope.call(q, **v), APPOINTMENT,
                                        lambda data: data["appointment"], other.visit, id=other.appointment)
    assert reply.data["appointment"]["visit"] is None
    assert [e["extensions"] for e in reply.errors] == [{**REFUSED_FIELD, "scope": "visit:read"}]
    assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(other.visit), None, "", "", "")]


async def test_the_patient_sees_the_visit_of_her_appointment_without_the_internal_note(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Chen Meiling")
    user = await open_account(tenant, pid)
    arrival = await checked_in(tenant, monkeypatch, pid)
    reply, events = await read_as_by_id(tenant, lambda q, **v: user.call(q, **v), MY_APPOINTMENTS,
                                        lambda data: data["myAppointments"]["nodes"][0], arrival.visit)
    [node] = reply.data["myAppointments"]["nodes"]
    assert (node["id"], node["visit"]["id"], node["visit"]["status"]) == (arrival.appointment, arrival.visit,
                                                                          "ARRIVED")
    assert node["visit"]["internalNote"] is None
    assert [e["path"] for e in reply.errors] == [["myAppointments", "nodes", 0, "visit", "internalNote"]]
    assert ("read", "patient", "forbidden_field", pid, pid, "internal", "", "") in denials(events)


async def test_a_patient_whose_policy_refuses_visits_gets_the_refusal_on_her_appointment(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pid = await make_patient(tenant, "nurse")
    user = await open_account(tenant, pid)
    arrival = await checked_in(tenant, monkeypatch, pid)
    refuse_visits(tenant, services, monkeypatch, tmp_path, "patient")
    reply, events = await read_as_by_id(tenant, lambda q, **v: user.call(q, **v), APPOINTMENT,
                                        lambda data: data["appointment"], arrival.visit, id=arrival.appointment)
    assert reply.data["appointment"]["status"] == "ARRIVED" and reply.data["appointment"]["visit"] is None
    assert reply.codes == ["FORBIDDEN"]
    assert denials(events) == [("read", "visit", "forbidden", uuid.UUID(arrival.visit), None, "", "", "")]
