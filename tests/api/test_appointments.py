"""Appointments through the API: booking from each channel within capacity, moving (the history kept),
cancelling (the place freed), checking in (the visit of the care journey), no-shows by hand and by the
sweep, the lists, the portal patient's and the partner's rules, and every refusal leaving nothing written
but its record."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise.transactions import in_transaction

from app import sweeps
from models import Appointment, AuditEvent, Communication, Institution, MessagingSettings, Visit
from resolvers import appointment as appointments
from resolvers import visit as visits
from resolvers.context import Services
from tests.api.test_idempotency_key import keyed
from tests.api.test_schedules import DEACTIVATE, EXCEPTION_ADD, FREE
from tests.conftest import BACKEND, SqlCounter
from tests.factories import Tenant, make_patient, make_tenant
from tests.partners import make_client, make_partner, make_partnership, token_for
from tests.patients import open_account

ZONE = ZoneInfo("Asia/Shanghai")
# Monday 1 March 2027, 08:00 in Shanghai: the first slot of the day opens now.
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=ZONE).astimezone(UTC)
TOMORROW_9 = datetime(2027, 3, 2, 9, 0, tzinfo=ZONE)

SCHEDULE_CREATE = """mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id capacity } }"""
FIELDS = """id status channel slotStart slotEnd version cancellationReason arrivedAt cancelledAt
  patient { id } schedule { id name } rescheduledFrom { id status }"""
BOOK = f"mutation($input: AppointmentBookInput!) {{ appointmentBook(input: $input) {{ {FIELDS} }} }}"
RESCHEDULE = f"""mutation($id: ID!, $slotStart: DateTime!, $version: Int) {{
  appointmentReschedule(id: $id, slotStart: $slotStart, version: $version) {{ {FIELDS} }} }}"""
CANCEL = f"""mutation($id: ID!, $reason: CancellationReason, $version: Int) {{
  appointmentCancel(id: $id, reason: $reason, version: $version) {{ {FIELDS} }} }}"""
CHECK_IN = """mutation($id: ID!, $version: Int) { appointmentCheckIn(id: $id, version: $version) {
  id status version arrivedAt visit { id kind status plannedAt arrivedAt department { id }
  clinician { id } } } }"""
NO_SHOW = "mutation($id: ID!, $version: Int) { appointmentNoShow(id: $id, version: $version) { id status version } }"
READ = f"query($id: ID!) {{ appointment(id: $id) {{ {FIELDS} }} }}"
READ_REASON = "query($id: ID!) { appointment(id: $id) { id reason } }"
OF_PATIENT = """query($pid: ID!, $upcoming: Boolean, $first: Int, $after: String) {
  patientAppointments(patientId: $pid, upcomingOnly: $upcoming, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { id status slotStart rescheduledFrom { id } } } }"""
MINE = """query($upcoming: Boolean) { myAppointments(upcomingOnly: $upcoming) {
  nodes { id status channel slotStart reason } } }"""
SCHEDULE_DAY = """query($sid: ID!, $date: Date!, $cancelled: Boolean, $first: Int, $after: String) {
  scheduleDay(scheduleId: $sid, date: $date, includeCancelled: $cancelled, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { id status slotStart patient { fullName } } } }"""
CLINICIAN_DAY = """query($cid: ID!, $date: Date!, $first: Int) {
  clinicianDay(clinicianId: $cid, date: $date, first: $first) {
    nodes { id slotStart reason patient { fullName } schedule { name } } } }"""


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appointments, "_now", lambda: NOW)


def at(day: int, hour: int, minute: int = 0) -> str:
    """A slot start in March 2027, Shanghai time, as the API takes it."""
    return datetime(2027, 3, day, hour, minute, tzinfo=ZONE).isoformat()


WEEK = [{"weekday": day, "sessions": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]}
        for day in range(1, 8)]


async def make_schedule(tenant: Tenant, capacity: int = 1, clinician: str | None = "doctor",
                        department: str = "A", name: str = "Dr Matrix") -> str:
    """A schedule of 30-minute slots every day, 08:00-12:00 and 13:00-17:00 (made by the admin)."""
    data: dict[str, Any] = {"name": name, "kind": "CLINICIAN" if clinician else "RESOURCE",
                            "departmentId": str(tenant.departments[department].id), "week": WEEK,
                            "slotMinutes": 30, "capacity": capacity}
    if clinician:
        data["clinicianId"] = str(tenant.staff_ids[clinician])
    reply = await tenant.call("admin", SCHEDULE_CREATE, input=data)
    assert reply.errors == [], reply.errors
    return str(reply.data["scheduleCreate"]["id"])


def booking(schedule: str, pid: uuid.UUID | None, start: str = TOMORROW_9.isoformat(), **more: Any) -> dict[str, Any]:
    data = {"scheduleId": schedule, "slotStart": start, **more}
    if pid is not None:
        data["patientId"] = str(pid)
    return data


async def ok(reply: Any, root: str) -> dict[str, Any]:
    assert reply.errors == [], reply.errors
    return dict(reply.data[root])


async def book(tenant: Tenant, schedule: str, pid: uuid.UUID, role: str = "front_desk",
               start: str = TOMORROW_9.isoformat(), **more: Any) -> dict[str, Any]:
    return await ok(await tenant.call(role, BOOK, input=booking(schedule, pid, start, **more)), "appointmentBook")


async def snapshot(tenant: Tenant) -> tuple[Any, ...]:
    rows = await Appointment.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "status", "seat", "version", "visit_id", "cancellation_reason")
    return (tuple(rows), await Visit.filter(institution_id=tenant.id).count(),
            await Communication.filter(institution_id=tenant.id).count())


async def last_denial(tenant: Tenant) -> AuditEvent | None:
    return await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()


async def assert_refused(tenant: Tenant, call: Any, code: str, field: str | None = None, reason: str | None = None,
                         root: str | None = None, says: str | None = None) -> None:
    """The denied twin: the code (and field, and ``says``: the error's reason), nothing written, and for a refusal
    exactly one denied record."""
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await call()
    assert reply.codes == [code], reply.errors
    if field is not None:
        assert reply.errors[0]["extensions"]["field"] == field
    if says is not None:
        assert reply.errors[0]["extensions"].get("reason") == says, reply.errors
    if root is not None:
        assert reply.data == {root: None}
    assert await snapshot(tenant) == before
    if reason is not None:
        assert await tenant.audit_count() == events + 1
        denial = await last_denial(tenant)
        assert denial is not None and denial.reason == reason


# -- booking -----------------------------------------------------------------------------------


async def test_the_front_desk_books_a_phone_call_and_it_is_on_the_trail(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid, reason="Toothache on the left", channel="PHONE")
    assert (made["status"], made["channel"], made["version"]) == ("BOOKED", "PHONE", 1)
    assert made["slotStart"] == TOMORROW_9.astimezone(UTC).isoformat()
    assert made["slotEnd"] == (TOMORROW_9 + timedelta(minutes=30)).astimezone(UTC).isoformat()
    assert made["schedule"] == {"id": schedule, "name": "Dr Matrix"} and made["patient"] == {"id": str(pid)}
    desk = await tenant.call("front_desk", READ_REASON, id=made["id"])
    assert desk.codes == ["FORBIDDEN"] and desk.data == {"appointment": {"id": made["id"], "reason": None}}
    row = await Appointment.get(id=made["id"])
    assert (row.seat, row.booked_by_id, row.partner_id) == (1, tenant.staff_ids["front_desk"], None)
    assert row.reason is not None and b"Toothache" not in bytes(row.reason)
    [event] = await tenant.audit_events(resource_type="appointment", action="create")
    assert event.patient_id == pid and event.outcome == "allowed"
    assert {"slot_start", "schedule", "reason", "seat"} <= set(event.fields_read.split(","))
    read = await ok(await tenant.call("nurse", READ_REASON, id=made["id"]), "appointment")
    assert read["reason"] == "Toothache on the left"  # a nurse of the patient's department reads it


async def test_the_slot_holds_its_capacity_and_a_cancellation_frees_a_place(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=2)
    first, second, third = [await make_patient(tenant) for _ in range(3)]
    kept = await book(tenant, schedule, first)
    await book(tenant, schedule, second, role="nurse")
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, third)), "CONFLICT",
                         "input.slotStart", root="appointmentBook", says="slot_full")
    cancelled = await ok(await tenant.call("front_desk", CANCEL, id=kept["id"], reason="INSTITUTION", version=1),
                         "appointmentCancel")
    assert (cancelled["status"], cancelled["cancellationReason"], cancelled["version"]) == ("CANCELLED",
                                                                                          "INSTITUTION", 2)
    assert cancelled["cancelledAt"] == NOW.isoformat()
    assert (await Appointment.get(id=kept["id"])).seat is None
    taken = await book(tenant, schedule, third)
    assert (await Appointment.get(id=taken["id"])).seat == 1  # the smallest free seat


async def test_a_slot_whose_capacity_was_lowered_counts_every_place_held(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=2)
    first, second, third = [await make_patient(tenant) for _ in range(3)]
    freed = await book(tenant, schedule, first)
    kept = await book(tenant, schedule, second)
    await ok(await tenant.call("front_desk", CANCEL, id=freed["id"], reason="INSTITUTION", version=1),
             "appointmentCancel")
    # one place now, held by the second patient's seat 2: seat 1 is no free place (it booked a second holder)
    await ok(await tenant.call("admin", """mutation($id: ID!, $input: ScheduleUpdateInput!, $version: Int!) {
      scheduleUpdate(id: $id, input: $input, version: $version) { id } }""", id=schedule, version=1,
                               input={"capacity": 1}), "scheduleUpdate")
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, third)), "CONFLICT",
                         "input.slotStart", root="appointmentBook", says="slot_full")
    await ok(await tenant.call("front_desk", CANCEL, id=kept["id"], reason="INSTITUTION", version=1),
             "appointmentCancel")
    taken = await book(tenant, schedule, third)  # the place freed: booked, on the one seat there is
    assert (await Appointment.get(id=taken["id"])).seat == 1


async def test_a_patient_holds_one_place_per_slot(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant, capacity=3), await make_patient(tenant)
    await book(tenant, schedule, pid)
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, pid)), "CONFLICT",
                         "input.slotStart", says="already_in_slot")


@pytest.mark.parametrize(("change", "field"), [
    ({"slotStart": at(2, 9, 10)}, "input.slotStart"),  # no slot starts then
    ({"slotStart": at(2, 12, 30)}, "input.slotStart"),  # the lunch break
    ({"slotStart": "2027-03-02T09:00:00"}, "input.slotStart"),  # no offset
    ({"slotStart": at(1, 7, 30)}, "input.slotStart"),  # before the day opens
    ({"slotStart": (NOW - timedelta(days=1)).isoformat()}, "input.slotStart"),  # yesterday's slot, now past
    ({"scheduleId": "not-an-id"}, "input.scheduleId"),
    ({"patientId": "1; DROP TABLE appointment"}, "input.patientId"),
    ({"reason": "x" * 1001}, "input.reason"),
    ({"reason": "Tooth\u202eache"}, "input.reason"),  # a bidirectional override
    ({"reason": "   "}, "input.reason"),
    ({"channel": "PORTAL"}, "input.channel"),  # the portal's and partners' channels are set by the server
    ({"channel": "PARTNER"}, "input.channel"),
])
async def test_bad_bookings_are_refused_with_the_field_named(tenant: Tenant, change: dict[str, Any],
                                                             field: str) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input={**booking(schedule, pid), **change}),
                         "BAD_USER_INPUT", field)


async def test_staff_book_the_slot_starting_soon_but_not_one_begun(tenant: Tenant, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    monkeypatch.setattr(appointments, "_now", lambda: NOW + timedelta(minutes=29))
    await book(tenant, schedule, pid, start=at(1, 8, 30))  # in one minute: staff are not bound by the portal rules
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, pid, at(1, 8))),
                         "BAD_USER_INPUT", "input.slotStart")


async def test_an_unknown_schedule_or_one_of_another_institution_is_missing(tenant: Tenant,
                                                                            other_tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(str(uuid.uuid4()), pid)),
                         "NOT_FOUND", "input.scheduleId", "not_found")
    theirs = await make_schedule(other_tenant)
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(theirs, pid)),
                         "NOT_FOUND", "input.scheduleId", "not_found")
    await assert_refused(tenant, lambda: other_tenant.call("front_desk", BOOK, input=booking(theirs, pid)),
                         "NOT_FOUND", "input.patientId")


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_an_archived_or_deceased_patient_is_not_booked_and_keeps_no_place(tenant: Tenant, status: str) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    held = await book(tenant, schedule, pid, start=at(3, 9))
    if status == "archived":
        reply = await tenant.call("front_desk", "mutation($id: ID!) { patientArchive(id: $id) { id } }", id=str(pid))
    else:
        reply = await tenant.call("front_desk", "mutation($id: ID!) { patientUpdate(id: $id, input: {status: "
                                                "DECEASED}) { id } }", id=str(pid))
    assert reply.errors == [], reply.errors
    row = await Appointment.get(id=held["id"])
    assert (row.status, row.seat, row.cancellation_reason, row.version) == ("cancelled", None, "institution", 2)
    assert not await Communication.filter(key__startswith=f"appointment:{held['id']}:", status="queued").exists()
    [event] = await tenant.audit_events(resource_type="appointment", resource_id=held["id"], action="update")
    assert event.patient_id == pid and event.policy_rule == "file archived or deceased"
    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, pid)),
                         "BAD_USER_INPUT", "input.patientId")


@pytest.mark.parametrize("role", ["doctor", "department_head", "support_agent", "admin", "compliance_officer"])
async def test_roles_that_do_not_book_are_refused_and_it_is_recorded(tenant: Tenant, role: str) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    await assert_refused(tenant, lambda: tenant.call(role, BOOK, input=booking(schedule, pid)), "FORBIDDEN",
                         reason="forbidden", root="appointmentBook")


async def test_a_patient_outside_the_nurses_reach_is_missing(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant)
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await assert_refused(tenant, lambda: tenant.call("nurse", BOOK, input=booking(schedule, pid)), "NOT_FOUND",
                         "input.patientId", "not_found")
    await book(tenant, schedule, pid)  # the front desk reaches the whole institution



async def test_a_leave_just_after_midnight_takes_the_slot_of_an_evening_session_across_it(tenant: Tenant) -> None:
    """An extra session from 22:50 to 00:50 and a leave recorded after it from 00:10 to 00:20: the 23:50 slot runs
    into the leave and is not offered nor booked, nor moved to; 23:20, before it, is. Found in review: booking,
    moving and freeSlots loaded a day's exceptions up to its midnight only, so the leave was not seen by the slot
    that starts before it; the slot was offered (freeSlots for that day) and booked inside the leave."""
    schedule = await make_schedule(tenant)
    for kind, starts, ends in (("EXTRA", at(5, 22, 50), at(6, 0, 50)), ("LEAVE", at(6, 0, 10), at(6, 0, 20))):
        added = await tenant.call("admin", EXCEPTION_ADD, id=schedule, input={"kind": kind, "startsAt": starts,
                                                                               "endsAt": ends})
        assert added.errors == [], added.errors
    offered = await tenant.call("front_desk", FREE, schedule=schedule, **{"from": "2027-03-05", "to": "2027-03-05"})
    assert offered.errors == [], offered.errors
    starts = {datetime.fromisoformat(s["start"]) for s in offered.data["freeSlots"]}
    assert datetime.fromisoformat(at(5, 23, 20)) in starts
    assert datetime.fromisoformat(at(5, 23, 50)) not in starts
    pid = await make_patient(tenant)

    await assert_refused(tenant, lambda: tenant.call("front_desk", BOOK, input=booking(schedule, pid, at(5, 23, 50))),
                         "BAD_USER_INPUT", "input.slotStart", root="appointmentBook")
    booked = await book(tenant, schedule, pid, start=at(5, 23, 20))  # the twin: the slot before the leave
    await assert_refused(tenant, lambda: tenant.call("front_desk", RESCHEDULE, id=booked["id"],
                                                     slotStart=at(5, 23, 50), version=booked["version"]),
                         "BAD_USER_INPUT", "slotStart", root="appointmentReschedule")

# -- moving and cancelling ---------------------------------------------------------------------


async def test_rescheduling_keeps_the_history_and_moves_the_place(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    old = await book(tenant, schedule, pid, reason="Check the crown", channel="PHONE")
    moved = await ok(await tenant.call("nurse", RESCHEDULE, id=old["id"], slotStart=at(3, 14), version=1),
                     "appointmentReschedule")
    assert moved["id"] != old["id"] and (moved["status"], moved["version"]) == ("BOOKED", 1)
    assert moved["slotStart"] == datetime(2027, 3, 3, 14, 0, tzinfo=ZONE).astimezone(UTC).isoformat()
    assert moved["rescheduledFrom"] == {"id": old["id"], "status": "CANCELLED"}
    assert moved["channel"] == "PHONE"
    read = await ok(await tenant.call("nurse", READ_REASON, id=moved["id"]), "appointment")
    assert read["reason"] == "Check the crown"  # the reason follows, sealed anew
    before = await ok(await tenant.call("front_desk", READ, id=old["id"]), "appointment")
    assert (before["status"], before["cancellationReason"], before["version"]) == ("CANCELLED", "RESCHEDULED", 2)
    assert (await Appointment.get(id=old["id"])).seat is None
    assert (await Appointment.get(id=moved["id"])).rescheduled_from_id == uuid.UUID(old["id"])
    upcoming = await ok(await tenant.call("front_desk", OF_PATIENT, pid=str(pid)), "patientAppointments")
    assert [n["id"] for n in upcoming["nodes"]] == [moved["id"]]
    every = await ok(await tenant.call("front_desk", OF_PATIENT, pid=str(pid), upcoming=False), "patientAppointments")
    assert [n["id"] for n in every["nodes"]] == [moved["id"], old["id"]]  # latest slot first
    events = await tenant.audit_events(resource_type="appointment", action__in=["create", "update"])
    assert [(e.action, str(e.resource_id)) for e in events[-2:]] == [("update", old["id"]), ("create", moved["id"])]
    # the place it left is free: another patient takes it
    await book(tenant, schedule, await make_patient(tenant))


async def test_a_stale_or_final_appointment_is_not_changed(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    for call in (lambda: tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=at(3, 9), version=7),
                 lambda: tenant.call("front_desk", CANCEL, id=made["id"], version=7),
                 lambda: tenant.call("front_desk", NO_SHOW, id=made["id"], version=7)):
        await assert_refused(tenant, call, "CONFLICT", "version", says="stale_version")
    await ok(await tenant.call("front_desk", CANCEL, id=made["id"]), "appointmentCancel")
    for call in (lambda: tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=at(3, 9)),
                 lambda: tenant.call("front_desk", CANCEL, id=made["id"]),
                 lambda: tenant.call("front_desk", CHECK_IN, id=made["id"])):
        await assert_refused(tenant, call, "BAD_USER_INPUT", "id")


async def test_a_move_to_a_slot_begun_is_refused_as_a_booking_of_it_is(tenant: Tenant) -> None:
    """Found in review: a booking of a slot begun or over answered reason in_past, a move to one reason invalid, so a
    client branching on the reason told the desk two stories. Both now say in_past at slotStart, nothing written;
    the twin, a move to a slot to come, is written."""
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    for start in ((NOW - timedelta(days=1)).isoformat(), NOW.isoformat()):  # yesterday's slot; one beginning now
        before = await snapshot(tenant)
        reply = await tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=start, version=1)
        assert reply.codes == ["BAD_USER_INPUT"], (start, reply.errors)
        assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
            "slotStart", "in_past"), start
        assert await snapshot(tenant) == before
    moved = await ok(await tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=at(3, 9), version=1),
                     "appointmentReschedule")
    assert moved["rescheduledFrom"] == {"id": made["id"], "status": "CANCELLED"}


async def test_hostile_changes_are_refused_with_the_field_named(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    for call, field in (
            (lambda: tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=TOMORROW_9.isoformat()),
             "slotStart"),  # the slot it holds
            (lambda: tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=at(3, 9, 5)), "slotStart"),
            (lambda: tenant.call("front_desk", RESCHEDULE, id="nope", slotStart=at(3, 9)), "id"),
            (lambda: tenant.call("front_desk", CANCEL, id=made["id"], reason="RESCHEDULED"), "reason"),
            (lambda: tenant.call("front_desk", OF_PATIENT, pid=str(pid), after="bm90IGEgY3Vyc29y"), "after"),
            (lambda: tenant.call("front_desk", OF_PATIENT, pid=str(pid), first=0), "first"),
            (lambda: tenant.call("front_desk", OF_PATIENT, pid=str(pid), first=101), "first")):
        await assert_refused(tenant, call, "BAD_USER_INPUT", field)
    reply = await tenant.call("front_desk", CANCEL, id=made["id"], reason="SOMETIMES")
    assert reply.codes == ["BAD_USER_INPUT"]  # not an enum value: refused by validation


async def test_changes_by_roles_without_the_right_are_refused(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    for role in ("doctor", "department_head", "support_agent", "admin", "compliance_officer"):
        for query, more in ((RESCHEDULE, {"slotStart": at(3, 9)}), (CANCEL, {}), (CHECK_IN, {}), (NO_SHOW, {})):
            await assert_refused(tenant, lambda q=query, m=more, r=role: tenant.call(r, q, id=made["id"], **m),
                                 "FORBIDDEN", reason="forbidden")


# -- at the desk -----------------------------------------------------------------------------------


async def test_check_in_opens_the_visit_and_its_waiting_time_starts_there(tenant: Tenant,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid, reason="Loose filling")
    await assert_refused(tenant, lambda: tenant.call("front_desk", CHECK_IN, id=made["id"]), "BAD_USER_INPUT", "id")
    arrival = TOMORROW_9 - timedelta(minutes=20)
    monkeypatch.setattr(appointments, "_now", lambda: arrival.astimezone(UTC))
    arrived = await ok(await tenant.call("front_desk", CHECK_IN, id=made["id"], version=1), "appointmentCheckIn")
    assert (arrived["status"], arrived["version"]) == ("ARRIVED", 2)
    assert arrived["arrivedAt"] == arrival.astimezone(UTC).isoformat()
    visit = arrived["visit"]
    assert (visit["kind"], visit["status"]) == ("DENTAL", "ARRIVED")  # a dental clinic's visit
    assert visit["plannedAt"] == TOMORROW_9.astimezone(UTC).isoformat()
    assert visit["arrivedAt"] == arrival.astimezone(UTC).isoformat()
    assert visit["department"] == {"id": str(tenant.departments["A"].id)}
    assert visit["clinician"] == {"id": str(tenant.staff_ids["doctor"])}
    row = await Appointment.get(id=made["id"])
    assert row.seat == 1 and str(row.visit_id) == visit["id"]
    read = await ok(await tenant.call("doctor", "query($id: ID!) { visit(id: $id) { reason status } }",
                                      id=visit["id"]), "visit")
    assert read == {"reason": "Loose filling", "status": "ARRIVED"}  # the doctor reads the reason on the visit
    [created] = await tenant.audit_events(resource_type="visit", action="create")
    assert created.patient_id == pid and "arrived_at" in created.fields_read.split(",")
    # the desk moves the visit on as any other (once it has begun: the visit's clock is the booking's)
    monkeypatch.setattr(visits, "_now", lambda: TOMORROW_9.astimezone(UTC) + timedelta(minutes=5))
    reply = await tenant.call("front_desk", "mutation($id: ID!, $at: DateTime) { visitTransition(id: $id, "
                                            "to: IN_PROGRESS, at: $at) { status } }",
                              id=visit["id"], at=TOMORROW_9.isoformat())
    assert reply.errors == [] and reply.data["visitTransition"]["status"] == "IN_PROGRESS"


async def test_a_resource_schedule_in_a_clinic_opens_an_outpatient_visit(client: httpx.AsyncClient,
                                                                         services: Services,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clinic = await make_tenant(client, services, name="General Clinic")
    await Institution.filter(id=clinic.id).update(kind="clinic")
    schedule, pid = await make_schedule(clinic, clinician=None, name="Room 2"), await make_patient(clinic)
    made = await book(clinic, schedule, pid)
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC))
    arrived = await ok(await clinic.call("nurse", CHECK_IN, id=made["id"]), "appointmentCheckIn")
    assert (arrived["visit"]["kind"], arrived["visit"]["clinician"]) == ("OUTPATIENT", None)


async def test_staff_record_a_no_show_once_the_slot_has_started(tenant: Tenant,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    await assert_refused(tenant, lambda: tenant.call("nurse", NO_SHOW, id=made["id"]), "BAD_USER_INPUT", "id")
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC) + timedelta(minutes=10))
    marked = await ok(await tenant.call("nurse", NO_SHOW, id=made["id"], version=1), "appointmentNoShow")
    assert (marked["status"], marked["version"]) == ("NO_SHOW", 2)
    await assert_refused(tenant, lambda: tenant.call("front_desk", CHECK_IN, id=made["id"]), "BAD_USER_INPUT", "id")


async def test_the_sweep_marks_the_booked_appointments_whose_slot_passed(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=3)
    missed, cancelled, came, later = [await book(tenant, schedule, await make_patient(tenant)) for _ in range(3)] + [
        await book(tenant, schedule, await make_patient(tenant), start=at(2, 10))]
    await ok(await tenant.call("front_desk", CANCEL, id=cancelled["id"]), "appointmentCancel")
    slot_end = (TOMORROW_9 + timedelta(minutes=30)).astimezone(UTC)
    await ok(await _check_in_at(tenant, came["id"], slot_end - timedelta(minutes=5)), "appointmentCheckIn")
    await appointments.mark_no_shows(slot_end + timedelta(minutes=29))  # within the grace: not yet
    assert (await Appointment.get(id=missed["id"])).status == "booked"
    assert await appointments.mark_no_shows(slot_end + timedelta(minutes=30)) >= 1
    statuses = {a["id"]: (await Appointment.get(id=a["id"])).status for a in (missed, cancelled, came, later)}
    assert statuses == {missed["id"]: "noshow", cancelled["id"]: "cancelled", came["id"]: "arrived",
                        later["id"]: "booked"}
    [event] = await tenant.audit_events(resource_type="appointment", resource_id=missed["id"], action="update")
    assert (event.actor_kind, event.actor_id, event.fields_read, event.patient_id) == (
        "system", None, "status", uuid.UUID(missed["patient"]["id"]))
    await appointments.mark_no_shows(slot_end + timedelta(minutes=30))  # once
    assert len(await tenant.audit_events(resource_type="appointment", resource_id=missed["id"], action="update")) == 1
    read = await ok(await tenant.call("front_desk", READ, id=missed["id"]), "appointment")
    assert (read["status"], read["version"]) == ("NO_SHOW", 2)


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks held by a concurrent transaction: PostgreSQL")
async def test_the_sweep_skips_the_appointments_another_worker_holds(tenant: Tenant) -> None:
    """Workers share the no-show sweep: a batch another worker holds is skipped, not waited for and marked twice
    (found in review: the batch was read with values_list, from which Tortoise drops FOR UPDATE SKIP LOCKED, so
    the sweep waited for the held row and then recorded it a second time)."""
    schedule = await make_schedule(tenant, capacity=2)
    held, free = [await book(tenant, schedule, await make_patient(tenant)) for _ in range(2)]
    slot_end = (TOMORROW_9 + timedelta(minutes=30)).astimezone(UTC)
    holding, release = asyncio.Event(), asyncio.Event()

    async def other_worker() -> None:
        async with in_transaction():
            await Appointment.filter(id=held["id"]).select_for_update().only("id").first()
            holding.set()
            await release.wait()

    other = asyncio.create_task(other_worker())
    await holding.wait()
    try:
        marked = await asyncio.wait_for(appointments.mark_no_shows(slot_end + timedelta(minutes=30)), timeout=10)
    finally:
        release.set()
        await other
    assert marked == 1
    assert {(await Appointment.get(id=a["id"])).status for a in (held, free)} == {"booked", "noshow"}
    assert (await Appointment.get(id=free["id"])).status == "noshow"
    assert await tenant.audit_events(resource_type="appointment", resource_id=held["id"], action="update") == []


async def _check_in_at(tenant: Tenant, appointment_id: str, moment: datetime) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(appointments, "_now", lambda: moment)
        return await tenant.call("front_desk", CHECK_IN, id=appointment_id)


async def test_the_app_runs_the_sweep_in_the_background(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = await make_schedule(tenant)
    made = await book(tenant, schedule, await make_patient(tenant))
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC) + timedelta(hours=2))
    task = asyncio.create_task(sweeps.run([sweeps.Sweep("no-shows", lambda: appointments.mark_no_shows(), 0.05)]))
    try:
        for _ in range(200):
            if (await Appointment.get(id=made["id"])).status == "noshow":
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (await Appointment.get(id=made["id"])).status == "noshow"


# -- the lists -------------------------------------------------------------------------------------


async def test_a_schedules_and_a_clinicians_day_in_slot_order(tenant: Tenant) -> None:
    schedule, other = await make_schedule(tenant, capacity=2), await make_schedule(tenant, name="Dr Matrix, pm")
    names = {}
    for hour in (11, 9, 10):
        pid = await make_patient(tenant, fullName=f"Day patient {hour}")
        names[hour] = (await book(tenant, schedule, pid, start=at(2, hour), reason=f"Reason {hour}"))["id"]
    gone = await book(tenant, schedule, await make_patient(tenant, fullName="Gone"), start=at(2, 9))
    await ok(await tenant.call("front_desk", CANCEL, id=gone["id"]), "appointmentCancel")
    await book(tenant, other, await make_patient(tenant, fullName="Afternoon"), start=at(2, 15))
    await book(tenant, schedule, await make_patient(tenant, fullName="Next day"), start=at(3, 9))

    page = await ok(await tenant.call("front_desk", SCHEDULE_DAY, sid=schedule, date="2027-03-02", first=2),
                    "scheduleDay")
    assert [n["patient"]["fullName"] for n in page["nodes"]] == ["Day patient 9", "Day patient 10"]
    rest = await ok(await tenant.call("front_desk", SCHEDULE_DAY, sid=schedule, date="2027-03-02",
                                      after=page["pageInfo"]["endCursor"]), "scheduleDay")
    assert [n["patient"]["fullName"] for n in rest["nodes"]] == ["Day patient 11"]
    assert rest["pageInfo"]["hasNextPage"] is False
    every = await ok(await tenant.call("front_desk", SCHEDULE_DAY, sid=schedule, date="2027-03-02", cancelled=True),
                     "scheduleDay")
    assert len(every["nodes"]) == 4
    day = await ok(await tenant.call("doctor", CLINICIAN_DAY, cid=str(tenant.staff_ids["doctor"]), date="2027-03-02"),
                   "clinicianDay")
    assert [(n["patient"]["fullName"], n["reason"]) for n in day["nodes"]] == [
        ("Day patient 9", "Reason 9"), ("Day patient 10", "Reason 10"), ("Day patient 11", "Reason 11"),
        ("Afternoon", None)]
    # the desk sees who and when, not why
    desk = await tenant.call("front_desk", CLINICIAN_DAY, cid=str(tenant.staff_ids["doctor"]), date="2027-03-02")
    assert {e["extensions"]["code"] for e in desk.errors} == {"FORBIDDEN"}
    assert [n["reason"] for n in desk.data["clinicianDay"]["nodes"]] == [None] * 4
    missing = await tenant.call("front_desk", SCHEDULE_DAY, sid=str(uuid.uuid4()), date="2027-03-02")
    assert missing.codes == ["NOT_FOUND"]


async def test_a_day_shows_only_the_patients_in_reach(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=2)
    await book(tenant, schedule, await make_patient(tenant, fullName="In A"))
    await book(tenant, schedule, await make_patient(tenant, fullName="In B",
                                                    departmentId=str(tenant.departments["B"].id)))
    nurse = await ok(await tenant.call("nurse", SCHEDULE_DAY, sid=schedule, date="2027-03-02"), "scheduleDay")
    assert [n["patient"]["fullName"] for n in nurse["nodes"]] == ["In A"]
    desk = await ok(await tenant.call("front_desk", SCHEDULE_DAY, sid=schedule, date="2027-03-02"), "scheduleDay")
    assert sorted(n["patient"]["fullName"] for n in desk["nodes"]) == ["In A", "In B"]


async def cost(sql_counter: SqlCounter, tenant: Tenant, query: str, root: str, count: int, **variables: Any) -> int:
    start = len(sql_counter.statements)
    reply = await tenant.call("nurse", query, first=count, **variables)
    assert reply.errors == [], reply.errors
    assert len(reply.data[root]["nodes"]) == count
    return len(sql_counter.statements) - start


async def test_a_page_costs_the_same_whatever_its_size(tenant: Tenant, sql_counter: SqlCounter) -> None:
    schedule = await make_schedule(tenant, capacity=6)
    pid = await make_patient(tenant)
    for hour in range(8, 12):
        for minute in (0, 30):
            await book(tenant, schedule, pid, start=at(2, hour, minute), reason="Again")
    for _ in range(5):
        await book(tenant, schedule, await make_patient(tenant), start=at(3, 9))
    day_query = SCHEDULE_DAY.replace("patient { fullName }", "patient { fullName } reason")
    small = await cost(sql_counter, tenant, day_query, "scheduleDay", 2, sid=schedule, date="2027-03-03")
    large = await cost(sql_counter, tenant, day_query, "scheduleDay", 5, sid=schedule, date="2027-03-03")
    assert small > 0 and large == small
    history = OF_PATIENT.replace("rescheduledFrom { id }", "rescheduledFrom { id } patient { fullName }")
    small = await cost(sql_counter, tenant, history, "patientAppointments", 2, pid=str(pid))
    large = await cost(sql_counter, tenant, history, "patientAppointments", 6, pid=str(pid))
    assert small > 0 and large == small


PAGE = """query($id: ID!, $count: Int) { patient(id: $id) { id upcomingAppointments(count: $count) {
  id slotStart status } } }"""


async def test_the_patient_page_shows_the_appointments_to_come(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    later = await book(tenant, schedule, pid, start=at(5, 9))
    sooner = await book(tenant, schedule, pid, start=at(3, 9))
    gone = await book(tenant, schedule, pid, start=at(4, 9))
    await ok(await tenant.call("front_desk", CANCEL, id=gone["id"]), "appointmentCancel")
    page = await ok(await tenant.call("doctor", PAGE, id=str(pid)), "patient")
    assert [a["id"] for a in page["upcomingAppointments"]] == [sooner["id"], later["id"]]
    one = await ok(await tenant.call("front_desk", PAGE, id=str(pid), count=1), "patient")
    assert [a["id"] for a in one["upcomingAppointments"]] == [sooner["id"]]
    too_many = await tenant.call("front_desk", PAGE, id=str(pid), count=21)
    assert too_many.codes == ["BAD_USER_INPUT"]


async def test_a_partner_without_the_appointment_scope_sees_no_section(tenant: Tenant) -> None:
    partnership = await make_partnership(tenant, ["patient.identity:read"])
    await book(tenant, await make_schedule(tenant), partnership.granted)
    reply = await partnership.call(PAGE, id=str(partnership.granted))
    assert reply.codes == ["FORBIDDEN"]
    assert reply.data == {"patient": {"id": str(partnership.granted), "upcomingAppointments": None}}


async def test_another_institution_meets_a_missing_appointment(tenant: Tenant, other_tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    for call in (lambda: other_tenant.call("front_desk", READ, id=made["id"]),
                 lambda: other_tenant.call("front_desk", CANCEL, id=made["id"]),
                 lambda: other_tenant.call("front_desk", OF_PATIENT, pid=str(pid))):
        reply = await call()
        assert reply.codes == ["NOT_FOUND"]
    assert (await Appointment.get(id=made["id"])).status == "booked"


# -- the portal ------------------------------------------------------------------------------------


async def test_a_patient_books_moves_and_cancels_their_own_in_the_portal(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    made = await ok(await me.call(BOOK, input=booking(schedule, None, reason="Braces check", channel="PHONE")),
                    "appointmentBook")
    assert (made["channel"], made["patient"]) == ("PORTAL", {"id": str(me.patient_id)})
    assert (await ok(await me.call(READ_REASON, id=made["id"]), "appointment"))["reason"] == "Braces check"
    row = await Appointment.get(id=made["id"])
    assert (row.booked_by_id, row.partner_id) == (None, None)
    mine = await ok(await me.call(MINE), "myAppointments")
    assert [n["id"] for n in mine["nodes"]] == [made["id"]]
    moved = await ok(await me.call(RESCHEDULE, id=made["id"], slotStart=at(4, 10)), "appointmentReschedule")
    assert moved["channel"] == "PORTAL"
    cancelled = await ok(await me.call(CANCEL, id=moved["id"], reason="INSTITUTION"), "appointmentCancel")
    assert cancelled["cancellationReason"] == "PATIENT"  # a patient cancels for themself
    assert (await ok(await me.call(MINE), "myAppointments"))["nodes"] == []
    assert len((await ok(await me.call(MINE, upcoming=False), "myAppointments"))["nodes"]) == 2


async def test_the_portal_refuses_within_two_hours_and_beyond_the_horizon(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    for start in (at(1, 9), at(1, 9, 30)):  # 1 and 1.5 hours ahead
        await assert_refused(tenant, lambda s=start: me.call(BOOK, input=booking(schedule, None, s)), "FORBIDDEN",
                             "input.slotStart", "portal_too_late", root="appointmentBook", says="portal_too_late")
    await ok(await me.call(BOOK, input=booking(schedule, None, at(1, 10))), "appointmentBook")  # 2 hours: allowed
    far = datetime(2027, 5, 31, 9, 0, tzinfo=ZONE).isoformat()  # 91 days ahead
    await assert_refused(tenant, lambda: me.call(BOOK, input=booking(schedule, None, far)), "FORBIDDEN",
                         "input.slotStart", "portal_too_far", says="portal_too_far")
    # the institution's own rules: a day's notice, a week ahead
    await MessagingSettings.create(institution_id=tenant.id, portal_change_min_hours=24, portal_horizon_days=7)
    await assert_refused(tenant, lambda: me.call(BOOK, input=booking(schedule, None, at(1, 16))), "FORBIDDEN",
                         "input.slotStart", "portal_too_late", says="portal_too_late")
    await assert_refused(tenant, lambda: me.call(BOOK, input=booking(schedule, None, at(9, 9))), "FORBIDDEN",
                         "input.slotStart", "portal_too_far", says="portal_too_far")
    await ok(await me.call(BOOK, input=booking(schedule, None, at(7, 16))), "appointmentBook")


async def test_the_portal_holds_at_most_ten_upcoming_appointments_of_a_patient(tenant: Tenant) -> None:
    """Found in review: one portal account could take every free slot of every schedule within the horizon (a slot
    at a time, each with its confirmation and reminder), and no other patient could book online. Staff are not
    bound; a place given back frees one."""
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    held = [await ok(await me.call(BOOK, input=booking(schedule, None, at(2, hour, minute))), "appointmentBook")
            for hour in (8, 9, 10, 11, 13) for minute in (0, 30)]
    await assert_refused(tenant, lambda: me.call(BOOK, input=booking(schedule, None, at(2, 14))), "BAD_USER_INPUT",
                         "input.patientId", "item_count", root="appointmentBook")
    await ok(await me.call(CANCEL, id=held[0]["id"]), "appointmentCancel")
    await ok(await me.call(BOOK, input=booking(schedule, None, at(2, 14))), "appointmentBook")
    await book(tenant, schedule, me.patient_id, start=at(2, 14, 30))  # the desk books an eleventh
    moved = await me.call(RESCHEDULE, id=held[1]["id"], slotStart=at(3, 9))  # moving holds no more places
    assert moved.errors == [], moved.errors


async def test_the_portal_does_not_move_or_cancel_an_appointment_close_to_its_slot(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    made = await ok(await me.call(BOOK, input=booking(schedule, None)), "appointmentBook")
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC) - timedelta(minutes=90))
    await assert_refused(tenant, lambda: me.call(CANCEL, id=made["id"]), "FORBIDDEN", "id", "portal_too_late",
                         says="portal_too_late")
    await assert_refused(tenant, lambda: me.call(RESCHEDULE, id=made["id"], slotStart=at(5, 9)), "FORBIDDEN", "id",
                         "portal_too_late", says="portal_too_late")
    await ok(await tenant.call("front_desk", CANCEL, id=made["id"], reason="PATIENT"), "appointmentCancel")


async def test_a_patient_meets_another_patients_appointment_as_missing(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=2)
    me, other = await open_account(tenant), await make_patient(tenant)
    theirs = await book(tenant, schedule, other)
    for call in (lambda: me.call(READ, id=theirs["id"]),
                 lambda: me.call(CANCEL, id=theirs["id"]),
                 lambda: me.call(RESCHEDULE, id=theirs["id"], slotStart=at(5, 9)),
                 lambda: me.call(BOOK, input=booking(schedule, other, at(5, 9))),
                 lambda: me.call(OF_PATIENT, pid=str(other))):
        await assert_refused(tenant, call, "NOT_FOUND", reason="not_found")
    assert (await ok(await me.call(MINE), "myAppointments"))["nodes"] == []


async def test_patients_do_not_check_in_or_record_no_shows(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    made = await ok(await me.call(BOOK, input=booking(schedule, None)), "appointmentBook")
    for query in (CHECK_IN, NO_SHOW):
        await assert_refused(tenant, lambda q=query: me.call(q, id=made["id"]), "FORBIDDEN", reason="forbidden")


async def test_staff_have_no_appointments_of_their_own(tenant: Tenant) -> None:
    await assert_refused(tenant, lambda: tenant.call("front_desk", MINE), "NOT_FOUND", reason="not_found")
    await assert_refused(tenant, lambda: tenant.call("admin", MINE), "FORBIDDEN", reason="forbidden")


# -- partners --------------------------------------------------------------------------------------

PARTNER_SCOPES = ["patient.identity:read", "patient.clinical:read", "appointment:create", "appointment:read",
                  "appointment:update", "visit:create"]


async def test_a_partner_books_no_more_than_the_portal_does(tenant: Tenant) -> None:
    """The bound of the portal holds for a partner booking for a granted patient: the patient's upcoming appointments
    booked from outside, the portal's and the partner's together."""
    schedule = await make_schedule(tenant)
    partnership = await make_partnership(tenant, PARTNER_SCOPES)
    for hour in (8, 9, 10, 11, 13):
        for minute in (0, 30):
            await ok(await partnership.call(BOOK, input=booking(schedule, partnership.granted, at(2, hour, minute))),
                     "appointmentBook")
    await assert_refused(tenant, lambda: partnership.call(BOOK, input=booking(schedule, partnership.granted,
                                                                                 at(2, 14))),
                         "BAD_USER_INPUT", "input.patientId", "item_count", root="appointmentBook")
    assert await Appointment.filter(patient_id=partnership.granted, status="booked").count() == 10


async def test_what_staff_book_does_not_count_toward_the_portals_bound(tenant: Tenant) -> None:
    """Found running the demo (`careloop demo --patients 2`, README's `make run`): the bound counted the desk's
    bookings too, so a patient the desk books often (dialysis, rehabilitation) could not book online at all."""
    schedule = await make_schedule(tenant)
    me = await open_account(tenant)
    for hour in (8, 9, 10, 11, 13):
        for minute in (0, 30):
            await book(tenant, schedule, me.patient_id, start=at(2, hour, minute))  # by the desk
    made = await ok(await me.call(BOOK, input=booking(schedule, None, at(2, 14))), "appointmentBook")
    assert made["channel"] == "PORTAL"


async def test_a_partner_books_for_a_granted_patient_and_sees_only_its_own_bookings(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=3)
    partnership = await make_partnership(tenant, PARTNER_SCOPES)
    made = await ok(await partnership.call(BOOK, input=booking(schedule, partnership.granted, reason="Home visit",
                                                               channel="FRONT_DESK")), "appointmentBook")
    assert made["channel"] == "PARTNER"
    assert (await ok(await partnership.call(READ_REASON, id=made["id"]), "appointment"))["reason"] == "Home visit"
    row = await Appointment.get(id=made["id"])
    assert (row.partner_id, row.booked_by_id) == (partnership.partner_id, None)
    read = await ok(await partnership.call(READ, id=made["id"]), "appointment")
    assert read["id"] == made["id"]
    # the institution's own booking for the same patient is not the partner's to see or change
    desk = await book(tenant, schedule, partnership.granted, start=at(2, 10))
    for call in (lambda: partnership.call(READ, id=desk["id"]), lambda: partnership.call(CANCEL, id=desk["id"])):
        await assert_refused(tenant, call, "NOT_FOUND", reason="not_found")
    listed = await ok(await partnership.call(OF_PATIENT, pid=str(partnership.granted)), "patientAppointments")
    assert [n["id"] for n in listed["nodes"]] == [made["id"]]
    # a patient it was not granted is missing
    await assert_refused(tenant, lambda: partnership.call(BOOK, input=booking(schedule, partnership.other)),
                         "NOT_FOUND", "input.patientId", "not_found")
    # it moves and cancels its own booking, within the portal rules; arrivals are the institution's
    moved = await ok(await partnership.call(RESCHEDULE, id=made["id"], slotStart=at(3, 9)), "appointmentReschedule")
    assert moved["channel"] == "PARTNER"
    await assert_refused(tenant, lambda: partnership.call(CHECK_IN, id=moved["id"]), "FORBIDDEN", reason="forbidden")
    await assert_refused(tenant, lambda: partnership.call(BOOK, input=booking(schedule, partnership.granted,
                                                                              at(1, 9))),
                         "FORBIDDEN", "input.slotStart", "portal_too_late", says="portal_too_late")
    # the institution's cancellations are its own (found in review: a partner could cancel "by the institution")
    refused = await partnership.call(CANCEL, id=moved["id"], reason="INSTITUTION")
    assert refused.codes == ["BAD_USER_INPUT"] and refused.errors[0]["extensions"]["reason"] == "partner_reason"
    assert (await Appointment.get(id=moved["id"])).status == "booked"
    await ok(await partnership.call(CANCEL, id=moved["id"], reason="OTHER"), "appointmentCancel")


async def test_a_partner_token_without_the_scope_is_refused(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant)
    partnership = await make_partnership(tenant, ["patient.identity:read", "appointment:read"])
    await assert_refused(tenant, lambda: partnership.call(BOOK, input=booking(schedule, partnership.granted)),
                         "FORBIDDEN", reason="forbidden")
    client = await make_client(tenant, await make_partner(tenant), PARTNER_SCOPES)
    stranger = await token_for(tenant.client, client)  # a partner with the scope but no grant
    await assert_refused(tenant, lambda: partnership.call(BOOK, token=stranger,
                                                          input=booking(schedule, partnership.granted)),
                         "NOT_FOUND", "input.patientId", "not_found")


async def test_a_changed_appointment_answers_as_written(tenant: Tenant) -> None:
    """The answer of a cancel is the row as stored, its updatedAt included (it kept the booking's time before)."""
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    cancelled = await ok(await tenant.call("front_desk", """mutation($id: ID!) { appointmentCancel(id: $id) {
        id version updatedAt cancelledAt } }""", id=made["id"]), "appointmentCancel")
    stored = await Appointment.get(id=made["id"])
    assert cancelled["updatedAt"] == stored.updated_at.astimezone(UTC).isoformat()
    assert cancelled["version"] == stored.version == 2
    assert cancelled["updatedAt"] >= cancelled["cancelledAt"]


async def test_a_reschedule_sent_again_with_its_key_names_the_new_appointment(tenant: Tenant) -> None:
    """Its first write cancels the old appointment, its last books the new one: the resend names the one to read."""
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    old = await book(tenant, schedule, pid)
    first = await keyed(tenant, "nurse", RESCHEDULE, "k-move", id=old["id"], slotStart=at(3, 14), version=1)
    moved = await ok(first, "appointmentReschedule")

    again = await keyed(tenant, "nurse", RESCHEDULE, "k-move", id=old["id"], slotStart=at(3, 14), version=1)

    assert again.codes == ["CONFLICT"], again.body
    extensions = again.errors[0]["extensions"]
    assert (extensions["reason"], extensions["resourceType"], extensions["resourceId"]) == (
        "already_done", "appointment", moved["id"])
    assert await Appointment.filter(patient_id=pid).count() == 2


@pytest.mark.parametrize("ended", ["appointment", "grant"])
async def test_an_archive_sent_again_names_the_file_not_what_the_archive_ended(tenant: Tenant, ended: str) -> None:
    """An archive cancels the file's appointments (and follow-up calls) and ends its partner grants after writing the
    file: the resend names the archive of the file (found in review: it named the last appointment cancelled, or the
    update of the file that records the grants ended), and its refusal is on the trail as the archive's."""
    if ended == "grant":
        patient = (await make_partnership(tenant)).granted
    else:
        patient = await make_patient(tenant)
        await book(tenant, await make_schedule(tenant), patient, start=at(3, 9))
    archive = "mutation($id: ID!) { patientArchive(id: $id) { id status } }"
    first = await keyed(tenant, "front_desk", archive, "k-archive", id=str(patient))
    assert not first.errors, first.body

    again = await keyed(tenant, "front_desk", archive, "k-archive", id=str(patient))

    assert again.codes == ["CONFLICT"] and again.errors[0]["extensions"]["reason"] == "already_done", again.body
    assert (again.errors[0]["extensions"]["resourceType"], again.errors[0]["extensions"]["resourceId"]) == (
        "patient", str(patient))
    [refusal] = await tenant.audit_events(outcome="denied", reason="already_done")
    assert (refusal.action, refusal.resource_type, refusal.resource_id) == ("archive", "patient", patient)


async def test_a_move_into_a_slot_the_patient_holds_already_is_refused(tenant: Tenant) -> None:
    """A patient holds one place per slot, moved there or booked there alike: a move into a slot where the patient
    has a place already is CONFLICT ``already_in_slot`` at slotStart, nothing written (found in hunting: the booking
    asked, the move did not, and the patient held two places of one slot). The twin, a move to a slot the patient
    holds nothing in, is written."""
    schedule, pid = await make_schedule(tenant, capacity=3), await make_patient(tenant)
    first = await book(tenant, schedule, pid)
    await book(tenant, schedule, pid, start=at(3, 9))
    await assert_refused(tenant, lambda: tenant.call("front_desk", RESCHEDULE, id=first["id"], slotStart=at(3, 9),
                                                     version=1),
                         "CONFLICT", "slotStart", root="appointmentReschedule", says="already_in_slot")
    moved = await ok(await tenant.call("front_desk", RESCHEDULE, id=first["id"], slotStart=at(3, 10), version=1),
                     "appointmentReschedule")
    assert moved["rescheduledFrom"] == {"id": first["id"], "status": "CANCELLED"}


async def test_a_move_on_a_deactivated_schedule_is_refused_at_the_appointment(tenant: Tenant) -> None:
    """A deactivated schedule offers no slot: a move of an appointment it holds is CONFLICT ``illegal_transition`` at
    ``id``, nothing written and nothing on the trail as a refusal (found in hunting: NOT_FOUND at ``scheduleId``, an
    argument the move does not take, and the trail recorded a refused *create* of a missing *schedule*, which exists).
    The appointment is still cancelled (the twin)."""
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    made = await book(tenant, schedule, pid)
    await ok(await tenant.call("admin", DEACTIVATE, id=schedule, version=1), "scheduleDeactivate")
    denials = await AuditEvent.filter(institution_id=tenant.id, outcome="denied").count()
    await assert_refused(tenant, lambda: tenant.call("front_desk", RESCHEDULE, id=made["id"], slotStart=at(3, 9),
                                                     version=1),
                         "CONFLICT", "id", root="appointmentReschedule", says="illegal_transition")
    assert await AuditEvent.filter(institution_id=tenant.id, outcome="denied").count() == denials
    cancelled = await ok(await tenant.call("front_desk", CANCEL, id=made["id"], reason="INSTITUTION", version=1),
                         "appointmentCancel")
    assert cancelled["status"] == "CANCELLED"
