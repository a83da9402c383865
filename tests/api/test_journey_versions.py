"""``version`` on appointments, visits, care plans and follow-up tasks is ``Int!``, as on every other versioned
record: the row's compare-and-set counter through every way the record is read (one by id, a page, under the
patient's page, under another record, a mutation's answer; the compiled read paths too: one visit, a history, the
worklist, whose tasks are loaded with only the columns a query asks for), for staff, the patient in the portal and
a partner. The check-in alert's visit carries it too (tests/app/test_check_in_alerts.py).

It belongs to no class of the patient's file, as ``id``: found in review, it was read under the identity class, so
the schema said ``version: Int`` and a partner's token without ``patient.identity:read`` read the version of the
visit it had just recorded, and of the appointment it had just booked (which it may move), as null with FORBIDDEN.
The refused twins: a caller who does not reach the record meets it missing, on its trail, and reads no version."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from models import Appointment, CarePlan, FollowUpTask, Visit
from resolvers import appointment as appointments
from tests.api.test_appointments import BOOK, RESCHEDULE, TOMORROW_9, ZONE, booking, make_schedule
from tests.api.test_visit_links import checked_in
from tests.factories import Response, Tenant, make_patient
from tests.partners import make_partnership
from tests.patients import events_since, mark, open_account

Call = Callable[..., Awaitable[Response]]

PLAN_CREATE = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id version } }"
TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id version } }"
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id version } }"
HOME_CARE = {"kind": "HOME_CARE", "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
             "endedAt": "2026-11-20T10:00:00+08:00"}

VISIT_ONE = "query($id: ID!) { visit(id: $id) { id version } }"
VISITS = "query($pid: ID!) { visits(patientId: $pid) { nodes { id version } edges { node { version } } } }"
VISITS_WITH_PATIENT = "query($pid: ID!) { visits(patientId: $pid) { nodes { id version patient { id } } } }"
APPOINTMENT_ONE = "query($id: ID!) { appointment(id: $id) { id version visit { id version } } }"
MOVED = "query($id: ID!) { appointment(id: $id) { id version rescheduledFrom { id version } } }"
OF_PATIENT = "query($pid: ID!) { patientAppointments(patientId: $pid, upcomingOnly: false) { nodes { id version } } }"
SCHEDULE_DAY = """query($sid: ID!, $date: Date!) { scheduleDay(scheduleId: $sid, date: $date, includeCancelled: true) {
  nodes { id version } } }"""
CLINICIAN_DAY = """query($cid: ID!, $date: Date!) { clinicianDay(clinicianId: $cid, date: $date) {
  nodes { id version } } }"""
MY_APPOINTMENTS = "{ myAppointments(upcomingOnly: false) { nodes { id version } } }"
PLAN_ONE = "query($id: ID!) { carePlan(id: $id) { id version visit { id version } } }"
PLANS = "query($pid: ID!) { carePlans(patientId: $pid) { nodes { id version } edges { node { version } } } }"
TASK_ONE = "query($id: ID!) { followUpTask(id: $id) { id version visit { id version } } }"
WORKLIST = "{ followUpWorklist(scope: MINE) { nodes { id version } } }"
WORKLIST_WITH_PATIENT = "{ followUpWorklist(scope: MINE) { nodes { id version patient { id fullName } } } }"
TASKS = """query($pid: ID!) { patientFollowUpTasks(patientId: $pid) { nodes { id version }
  edges { node { version } } } }"""
PAGE = """query($pid: ID!) { patient(id: $pid) { id recentVisits { id version } carePlans { id version }
  openFollowUpTasks { id version } upcomingAppointments { id version } } }"""
MY_FILE = "{ myFile { id recentVisits { id version } carePlans { id version } upcomingAppointments { id version } } }"

# the versions each record is given (as if so many changes had been made), so that a version read is its own
VERSIONS = {"visit": 4, "appointment": 3, "old": 8, "moved": 6, "plan": 5, "task": 7}


def answered(reply: Response) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


def ok(reply: Response, root: str) -> dict[str, Any]:
    return dict(answered(reply)[root])


async def journey(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, pid: uuid.UUID) -> dict[str, str]:
    """The patient's appointment checked in (its visit ARRIVED), a care plan and a follow-up task after that visit
    (the task the nurse's, due today), and another appointment booked and moved: each record's id, its version
    set as ``VERSIONS`` says."""
    arrival = await checked_in(tenant, monkeypatch, pid)
    plan = ok(await tenant.call("nurse", PLAN_CREATE, input={"patientId": str(pid), "title": "Knee",
                                                             "visitId": arrival.visit}), "carePlanCreate")
    today = datetime.now(ZONE).date().isoformat()
    task = ok(await tenant.call("nurse", TASK_CREATE, input={"patientId": str(pid), "dueOn": today,
                                                             "visitId": arrival.visit,
                                                             "ownerId": str(tenant.staff_ids["nurse"])}),
              "followUpTaskCreate")
    later = ok(await tenant.call("front_desk", BOOK, input=booking(arrival.schedule, pid,
                                                                   TOMORROW_9.replace(day=3).isoformat())),
               "appointmentBook")
    moved = ok(await tenant.call("front_desk", RESCHEDULE, id=later["id"], version=later["version"],
                                 slotStart=TOMORROW_9.replace(day=4).isoformat()), "appointmentReschedule")
    assert (plan["version"], task["version"], moved["version"]) == (1, 1, 1)
    ids = {"visit": arrival.visit, "appointment": arrival.appointment, "plan": plan["id"], "task": task["id"],
           "old": later["id"], "moved": moved["id"], "schedule": arrival.schedule}
    for model, key in ((Visit, "visit"), (Appointment, "appointment"), (Appointment, "old"), (Appointment, "moved"),
                       (CarePlan, "plan"), (FollowUpTask, "task")):
        assert await model.filter(id=ids[key]).update(version=VERSIONS[key]) == 1
    return ids


def versions_of(data: Any) -> dict[str, set[int]]:
    """Every ``version`` in an answer, by the id beside it (an edge's node, which has no id, by ``edge``)."""
    found: dict[str, set[int]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "version" in value:
                found.setdefault(value.get("id", "edge"), set()).add(value["version"])
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(data)
    return found


async def test_staff_read_each_records_version_every_way_it_is_read(tenant: Tenant,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await make_patient(tenant, "nurse")
    ids = await journey(tenant, monkeypatch, pid)
    versions = {ids[key]: VERSIONS[key] for key in VERSIONS}
    day = TOMORROW_9.date().isoformat()

    async def read(role: str, query: str, **variables: Any) -> dict[str, set[int]]:
        found = versions_of(answered(await tenant.call(role, query, **variables)))
        assert found, query
        assert all(got == {versions[record]} for record, got in found.items() if record != "edge"), (query, found)
        return found

    for role in ("nurse", "doctor", "front_desk"):  # the desk reads no clinical class: the version all the same
        assert set(await read(role, VISIT_ONE, id=ids["visit"])) == {ids["visit"]}
        assert set(await read(role, APPOINTMENT_ONE, id=ids["appointment"])) == {ids["appointment"], ids["visit"]}
        assert set(await read(role, MOVED, id=ids["moved"])) == {ids["moved"], ids["old"]}
        assert set(await read(role, OF_PATIENT, pid=str(pid))) == {ids["appointment"], ids["old"], ids["moved"]}
        assert set(await read(role, SCHEDULE_DAY, sid=ids["schedule"], date=day)) == {ids["appointment"]}
    for role in ("nurse", "doctor"):
        found = await read(role, VISITS, pid=str(pid))
        assert found == {ids["visit"]: {VERSIONS["visit"]}, "edge": {VERSIONS["visit"]}}
        assert set(await read(role, VISITS_WITH_PATIENT, pid=str(pid))) == {ids["visit"]}
        assert set(await read(role, PLAN_ONE, id=ids["plan"])) == {ids["plan"], ids["visit"]}
        found = await read(role, PLANS, pid=str(pid))
        assert found == {ids["plan"]: {VERSIONS["plan"]}, "edge": {VERSIONS["plan"]}}
        assert set(await read(role, TASK_ONE, id=ids["task"])) == {ids["task"], ids["visit"]}
        found = await read(role, TASKS, pid=str(pid))
        assert found == {ids["task"]: {VERSIONS["task"]}, "edge": {VERSIONS["task"]}}
        assert set(await read(role, PAGE, pid=str(pid))) == {ids["visit"], ids["plan"], ids["task"], ids["moved"]}
    assert set(await read("nurse", WORKLIST)) == {ids["task"]}  # the tasks' rows with only the columns asked for
    assert set(await read("nurse", WORKLIST_WITH_PATIENT)) == {ids["task"]}
    assert set(await read("doctor", CLINICIAN_DAY, cid=str(tenant.staff_ids["doctor"]), date=day)) == {
        ids["appointment"]}


async def test_the_version_read_is_the_one_a_change_takes(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version read goes through and moves on; the one before it is a CONFLICT that writes nothing."""
    pid = await make_patient(tenant, "nurse")
    ids = await journey(tenant, monkeypatch, pid)
    read = answered(await tenant.call("nurse", TASK_ONE, id=ids["task"]))["followUpTask"]["version"]
    cancel = """mutation($id: ID!, $version: Int) { followUpTaskCancel(id: $id, version: $version) {
      id status version } }"""
    stale = await tenant.call("nurse", cancel, id=ids["task"], version=read - 1)
    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["reason"] == "stale_version"
    assert (await FollowUpTask.get(id=ids["task"])).version == read
    assert ok(await tenant.call("nurse", cancel, id=ids["task"], version=read), "followUpTaskCancel") == {
        "id": ids["task"], "status": "CANCELLED", "version": read + 1}


async def test_the_patient_reads_the_versions_of_her_records(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    me = await open_account(tenant, await make_patient(tenant, "nurse"))
    ids = await journey(tenant, monkeypatch, me.patient_id)
    versions = {ids[key]: {VERSIONS[key]} for key in VERSIONS}
    page = versions_of(answered(await me.call(MY_FILE)))
    assert page == {ids["visit"]: versions[ids["visit"]], ids["plan"]: versions[ids["plan"]],
                    ids["moved"]: versions[ids["moved"]]}
    mine = versions_of(answered(await me.call(MY_APPOINTMENTS)))
    assert mine == {ids[key]: versions[ids[key]] for key in ("appointment", "old", "moved")}
    for query, key in ((VISIT_ONE, "visit"), (APPOINTMENT_ONE, "appointment"), (PLAN_ONE, "plan")):
        found = versions_of(answered(await me.call(query, id=ids[key])))
        assert found[ids[key]] == versions[ids[key]], query

    # the refused twin: another patient's records are missing to her, on the trail, and no version is read
    other = await open_account(tenant, await make_patient(tenant, "nurse"))
    seq = await mark(tenant.id)
    for query, key, resource in ((VISIT_ONE, "visit", "visit"), (APPOINTMENT_ONE, "appointment", "appointment"),
                                 (PLAN_ONE, "plan", "care_plan")):
        refused = await other.call(query, id=ids[key])
        assert refused.codes == ["NOT_FOUND"] and set(refused.data.values()) == {None}, query
        denials = [(e.resource_type, e.reason, str(e.resource_id))
                   for e in await events_since(tenant.id, seq, outcome="denied")]
        assert (resource, "not_found", ids[key]) in denials, query


async def test_a_partner_reads_its_records_versions_without_the_identity_class(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with the clinical class alone (no ``patient.identity:read``) reads the version of the visit it
    records and of the appointment it books, as their ids, and moves the appointment by it; was null, FORBIDDEN."""
    monkeypatch.setattr(appointments, "_now", lambda: datetime(2027, 3, 1, 8, 0, tzinfo=ZONE).astimezone(UTC))
    partnership = await make_partnership(tenant, ["patient.clinical:read", "visit:create", "visit:read",
                                                  "appointment:create", "appointment:read", "appointment:update"])
    recorded = ok(await partnership.call(VISIT_CREATE, input={"patientId": str(partnership.granted), **HOME_CARE}),
                  "visitCreate")
    assert recorded["version"] == 1
    await Visit.filter(id=recorded["id"]).update(version=VERSIONS["visit"])
    assert versions_of(answered(await partnership.call(VISIT_ONE, id=recorded["id"]))) == {
        recorded["id"]: {VERSIONS["visit"]}}
    assert versions_of(answered(await partnership.call(VISITS, pid=str(partnership.granted)))) == {
        recorded["id"]: {VERSIONS["visit"]}, "edge": {VERSIONS["visit"]}}

    book = "mutation($input: AppointmentBookInput!) { appointmentBook(input: $input) { id version } }"
    booked = ok(await partnership.call(book, input=booking(await make_schedule(tenant), partnership.granted)),
                "appointmentBook")
    assert booked["version"] == 1
    read = answered(await partnership.call("query($id: ID!) { appointment(id: $id) { id version } }",
                                           id=booked["id"]))["appointment"]
    assert read == booked
    move = """mutation($id: ID!, $slotStart: DateTime!, $version: Int) {
      appointmentReschedule(id: $id, slotStart: $slotStart, version: $version) { id version } }"""
    moved = ok(await partnership.call(move, id=booked["id"], version=read["version"],
                                      slotStart=TOMORROW_9.replace(day=3).isoformat()), "appointmentReschedule")
    assert moved["version"] == 1 and (await Appointment.get(id=booked["id"])).version == 2
    stale = await partnership.call(move, id=moved["id"], version=0, slotStart=TOMORROW_9.replace(day=4).isoformat())
    assert stale.codes == ["CONFLICT"] and (await Appointment.get(id=moved["id"])).version == 1

    # the refused twin: the institution's own visit of the same patient is missing to it, on its trail
    staff_visit = ok(await tenant.call("nurse", VISIT_CREATE, input={"patientId": str(partnership.granted),
                                                                     "kind": "OUTPATIENT"}), "visitCreate")
    seq = await mark(tenant.id)
    hidden = await partnership.call(VISIT_ONE, id=staff_visit["id"])
    assert hidden.codes == ["NOT_FOUND"] and hidden.data == {"visit": None}
    assert [(e.resource_type, e.reason, str(e.resource_id))
            for e in await events_since(tenant.id, seq, outcome="denied")] == [("visit", "not_found",
                                                                                staff_visit["id"])]


async def test_staff_who_do_not_reach_the_records_read_no_version(tenant: Tenant, other_tenant: Tenant,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The refused twin of the staff's reads: another institution's nurse meets every record missing, on its own
    trail, and reads no version."""
    ids = await journey(tenant, monkeypatch, await make_patient(tenant, "nurse"))
    seq = await mark(other_tenant.id)
    for query, key in ((VISIT_ONE, "visit"), (APPOINTMENT_ONE, "appointment"), (PLAN_ONE, "plan"),
                       (TASK_ONE, "task")):
        refused = await other_tenant.call("nurse", query, id=ids[key])
        assert refused.codes == ["NOT_FOUND"] and set(refused.data.values()) == {None}, query
    assert [(e.resource_type, e.reason, str(e.resource_id))
            for e in await events_since(other_tenant.id, seq, outcome="denied")] == [
        ("visit", "not_found", ids["visit"]), ("appointment", "not_found", ids["appointment"]),
        ("care_plan", "not_found", ids["plan"]), ("follow_up_task", "not_found", ids["task"])]
