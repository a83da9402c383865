"""Appointments (FHIR Appointment): book a place in a slot, move it, cancel it, check the patient in (the
appointment becomes the visit of the care journey), record a no-show; a patient's appointments, a
schedule's or a clinician's day.

Capacity is held by the database (``models.appointment``): a booking takes the smallest free seat of its
slot and inserts it, and the unique (schedule, slot start, seat) refuses a second holder; a booking that
loses that race reads the seats again and takes the next one (a few times at most), or answers CONFLICT when
the slot is full. Cancelling frees the seat; moving cancels (reason ``rescheduled``) and books a new appointment that
names the old one, so the history stays.

An appointment is reached through its patient, as a visit is: the patient must be in the caller's reach
(a patient reaches their own file, a partner its granted patients and only the appointments it booked), and
each field is read under its class of the patient's file (``policies.fields.APPOINTMENT_FIELD_CLASS``): when,
where and its state are identity, why the patient comes is clinical and sealed. Patients and partners book,
move and cancel within the institution's portal rules (``MessagingSettings``: not within
``portal_change_min_hours`` of the slot, not beyond ``portal_horizon_days``); staff are not bound by them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.principal import PARTNER, PATIENT, STAFF
from core.validation import Problems, aware_time, check_year, clean_text, one_of
from models import Appointment, Institution, Schedule
from models.appointment import BOOKING_CHANNELS, CANCELLATION_REASONS
from policies.fields import APPOINTMENT_FIELD_CLASS
from resolvers import access, communication, pagination, versioning, writes
from resolvers import institution as institutions
from resolvers import schedule as schedules
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.versioning import bumped

REASON_LIMIT = 1000
HOLDING = ("booked", "arrived")  # statuses that hold a seat of their slot
# A booked appointment whose slot ended this long ago without an arrival is a no-show: a patient late for the
# last slot of a session can still be checked in meanwhile.
NO_SHOW_GRACE = timedelta(minutes=30)
SWEEP_BATCH = 500
SEAT_ATTEMPTS = 3  # a booking that lost its seat to another reads the seats again, at most this many times
SWEEP = Actor("system")
SWEEP_RULE = "no-show sweep"
# Channels only a patient (the portal) or a partner (its API) books through; staff record the others.
OUTSIDE_CHANNELS = {PATIENT: "portal", PARTNER: "partner"}
# A patient books from outside (the portal, a partner) while they hold fewer upcoming appointments booked from outside
# than this (found in review: one portal account could take every free slot within the horizon). Staff are not bound,
# and what they book does not count: a patient the desk books three times a week still books online.
OUTSIDE_UPCOMING_LIMIT = 10
ITEM_COUNT = "item_count"
# The portal's booking rules broken (``_check_when``): the error's reason and the trail's alike
PORTAL_TOO_LATE, PORTAL_TOO_FAR = "portal_too_late", "portal_too_far"
STAFF_CHANNELS = tuple(c for c in BOOKING_CHANNELS if c not in OUTSIDE_CHANNELS.values())
# What a visit opened by an arrival is, by the kind of institution (an outpatient visit elsewhere).
VISIT_KIND_OF_INSTITUTION = {"dental": "dental", "checkup": "check_up"}
CURSOR = {True: "appointment-upcoming", False: "appointment"}
DAY_CURSOR = "appointment-day"


@dataclass(frozen=True)
class AppointmentView:
    row: Appointment
    patient: PatientView


def _now() -> datetime:
    return datetime.now(UTC)


# -- reading -----------------------------------------------------------------------------


def read_field(ctx: Context, view: AppointmentView, name: str) -> Any:
    """An appointment's field under its class on the patient's file; the reason opened when asked for."""
    return access.read_journey_field(ctx, view.patient, "appointment", view.row, name, APPOINTMENT_FIELD_CLASS[name])


def require_field(ctx: Context, view: AppointmentView, name: str) -> None:
    """Check and note the class of a field that is a link (the schedule, the visit): nothing to open."""
    access.require_class(ctx, view.patient, APPOINTMENT_FIELD_CLASS[name])


def in_reach(ctx: Context) -> QuerySet[Appointment] | None:
    """Appointments of patients the caller's roles that read appointments reach (a partner: only those it booked),
    as a query."""
    return access.records_in_reach(ctx, Appointment, "appointment")


async def _views(ctx: Context, rows: Sequence[Appointment]) -> list[AppointmentView]:
    return await access.with_files(ctx, rows, AppointmentView)


async def find(ctx: Context, appointment_id: uuid.UUID | None, action: Action, field: str = "id") -> AppointmentView:
    return await access.find_on_file(ctx, in_reach(ctx), appointment_id, AppointmentView, action=action,
                                     resource_type="appointment", field=field)


async def find_to_change(ctx: Context, appointment_id: uuid.UUID | None) -> AppointmentView:
    """An appointment to change (move, cancel, a no-show), found as ``find`` finds it, where a role of the caller
    allowed to change appointments reaches its file: FORBIDDEN otherwise, the refusal recorded. Found in review: a
    support agent (who reads every appointment) who is also a nurse of department B (who changes them) cancelled
    and moved any appointment of the institution. One role (a patient's own, a partner's): no change, no
    statement."""
    view = await find(ctx, appointment_id, Action.UPDATE)
    await require_change_reached(ctx, view)
    return view


async def require_change_reached(ctx: Context, view: AppointmentView) -> None:
    """``find_to_change``'s check on an appointment's file, for a change that finds the appointment otherwise (a
    check-in asks the visit's first)."""
    await access.require_section_reached(ctx, view.patient, "appointment", resource_type="appointment", act="update",
                                         resource_id=view.row.id)


async def get(ctx: Context, appointment_id: uuid.UUID | None) -> AppointmentView:
    await access.authorize(ctx, "appointment", "read", action=Action.READ, resource_type="appointment",
                           resource_id=appointment_id)
    return await find(ctx, appointment_id, Action.READ)


async def schedule_of(ctx: Context, view: AppointmentView) -> Schedule | None:
    """The appointment's schedule (batched across a page); where and with whom is identity of the file."""
    require_field(ctx, view, "schedule")

    async def batch(ids: Sequence[uuid.UUID]) -> list[Schedule | None]:
        found = {row.id: row for row in await Schedule.filter(institution_id=ctx.institution_id, id__in=list(ids))}
        return [found.get(i) for i in ids]

    loaded: Schedule | None = await ctx.require_loaders().made("appointment_schedule", batch).load(
        view.row.schedule_id)
    return loaded


async def visit_of(ctx: Context, view: AppointmentView) -> visits.VisitView | None:
    """The visit the arrival opened, read as ``visit(id)`` reads it for the caller (``visits.named``: FORBIDDEN
    without ``visit: read``, NOT_FOUND outside their reach, as a missing visit; a partner reaches only the visits it
    recorded), after the appointment's own guard on the link (its identity class). Batched across a page."""
    require_field(ctx, view, "visit")
    return await visits.named(ctx, view.row.visit_id)


async def rescheduled_from(ctx: Context, view: AppointmentView) -> AppointmentView | None:
    """The appointment this one replaced (same patient; batched across a page)."""
    require_field(ctx, view, "rescheduled_from")
    if view.row.rescheduled_from_id is None:
        return None

    async def batch(ids: Sequence[uuid.UUID]) -> list[Appointment | None]:
        query = in_reach(ctx)
        found = {} if query is None else {row.id: row for row in await query.filter(id__in=list(ids))}
        return [found.get(i) for i in ids]

    row: Appointment | None = await ctx.require_loaders().made("appointment_by_id", batch).load(
        view.row.rescheduled_from_id)
    return None if row is None else AppointmentView(row, view.patient)


# -- lists -------------------------------------------------------------------------------

UPCOMING_MAX = 20  # a patient page's upcoming appointments; the rest is paged by ``of_patient``


async def upcoming_of(ctx: Context, patient: PatientView, count: int) -> list[AppointmentView]:
    """A patient page's appointments still to come, soonest first: a section that needs ``appointment: read``,
    batched across a list of patients (two statements whatever their number)."""
    if not 1 <= count <= UPCOMING_MAX:
        raise BadUserInput(f"count: 1 to {UPCOMING_MAX}.", field="count")
    access.require_section(ctx, patient, "appointment")

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[Appointment]]:
        query = in_reach(ctx)
        found = {} if query is None else await newest_per_parent(
            query.filter(status="booked", slot_end__gt=_now()), "patient_id", patient_ids, ("slot_start", "id"),
            UPCOMING_MAX)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("upcoming_appointments", batch).load(patient.row.id)
    return [AppointmentView(row, patient) for row in rows[:count]]


@dataclass(frozen=True)
class AppointmentOrder:
    """A patient's appointments in an order asked for: by slot start or by last change; ties broken by id."""

    field: str = "slot_start"  # or "updated_at"
    direction: str = "asc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors, so one from another order is BAD_USER_INPUT."""
        return f"appointment.{self.field}.{self.direction}"


@dataclass(frozen=True)
class AppointmentPage:
    page: pagination.Page[AppointmentView]
    total: int | None = None  # counted only when asked for


async def of_patient(ctx: Context, patient_id: uuid.UUID | None, *, upcoming_only: bool, first: int,
                     after: str | None, order: AppointmentOrder | None = None,
                     count: bool = False) -> AppointmentPage:
    await access.authorize(ctx, "appointment", "read", action=Action.READ, resource_type="appointment",
                           patient_id=patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, patient, "appointment", resource_type="appointment")
    return await _history(ctx, patient, upcoming_only=upcoming_only, first=first, after=after, order=order,
                          count=count)


async def mine(ctx: Context, *, upcoming_only: bool, first: int, after: str | None,
               order: AppointmentOrder | None = None, count: bool = False) -> AppointmentPage:
    """A patient's own appointments in the portal; anyone else has no file of their own (NOT_FOUND)."""
    await access.authorize(ctx, "appointment", "read", action=Action.READ, resource_type="appointment")
    patient = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.READ)
    return await _history(ctx, patient, upcoming_only=upcoming_only, first=first, after=after, order=order,
                          count=count)


async def _history(ctx: Context, patient: PatientView, *, upcoming_only: bool, first: int, after: str | None,
                   order: AppointmentOrder | None, count: bool) -> AppointmentPage:
    """Upcoming ones (booked, slot not over) soonest first; or all of them, latest slot first; or in ``order``."""
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = in_reach(ctx)
    if query is None:
        return AppointmentPage(pagination.Page([], False), await pagination.count_of(None, count))
    query = query.filter(patient_id=patient.row.id)
    if upcoming_only:
        query = query.filter(status="booked", slot_end__gt=_now())
    total = await pagination.count_of(query, count)
    # the default order of each list: upcoming ones soonest first, the whole history latest first
    order = order or AppointmentOrder(direction="asc" if upcoming_only else "desc")
    cursor = order.cursor_kind if order != AppointmentOrder(direction=order.direction) else CURSOR[
        order.direction == "asc"]
    column = order.field
    rows = await pagination.keyset_rows(query, column, order.direction == "desc", first=first, after=after,
                                        kind=cursor, parse=pagination.decode_time)
    views = [AppointmentView(row, patient) for row in rows[:first]]
    return AppointmentPage(pagination.page_of(
        views, len(rows) > first, cursor,
        key=lambda view: f"{getattr(view.row, column).astimezone(UTC).isoformat()}|{view.row.id}"), total)


async def schedule_day(ctx: Context, schedule_id: uuid.UUID | None, day: date, *, include_cancelled: bool,
                       first: int, after: str | None, count: bool = False) -> AppointmentPage:
    """A schedule's appointments on a local day, in slot order: those of patients the caller reaches."""
    await access.authorize(ctx, "appointment", "read", action=Action.READ, resource_type="appointment")
    schedule = await access.find_in_institution(ctx, Schedule, schedule_id, action=Action.READ,
                                                resource_type="schedule", field="scheduleId")
    return await _day(ctx, Q(schedule_id=schedule.id), day, include_cancelled=include_cancelled, first=first,
                      after=after, count=count)


async def clinician_day(ctx: Context, clinician_id: uuid.UUID | None, day: date, *, include_cancelled: bool,
                        first: int, after: str | None, count: bool = False) -> AppointmentPage:
    """A clinician's appointments on a local day across their schedules, in slot order."""
    await access.authorize(ctx, "appointment", "read", action=Action.READ, resource_type="appointment")
    if clinician_id is None:
        raise BadUserInput("clinicianId: not a valid id.", field="clinicianId")
    theirs = Schedule.filter(institution_id=ctx.institution_id, clinician_id=clinician_id)
    return await _day(ctx, Q(schedule_id__in=Subquery(theirs.values("id"))), day,
                      include_cancelled=include_cancelled, first=first, after=after, count=count)


async def _day(ctx: Context, which: Q, day: date, *, include_cancelled: bool, first: int,
               after: str | None, count: bool) -> AppointmentPage:
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    check_year(day, "date")
    query = in_reach(ctx)
    if query is None:
        return AppointmentPage(pagination.Page([], False), await pagination.count_of(None, count))
    zone = await institutions.zone_of(ctx)
    begins = datetime.combine(day, time(0), zone).astimezone(UTC)
    ends = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    query = query.filter(which, slot_start__gte=begins, slot_start__lt=ends)
    if not include_cancelled:
        query = query.exclude(status="cancelled")
    total = await pagination.count_of(query, count)
    if after:
        at, row_id = pagination.decode_keyset(DAY_CURSOR, after, pagination.decode_time)
        query = query.filter(Q(slot_start__gt=at) | (Q(slot_start=at) & Q(id__gt=row_id)))
    rows = await query.order_by("slot_start", "id").limit(first + 1)
    views = await _views(ctx, rows[:first])
    return AppointmentPage(pagination.page_of(views, len(rows) > first, DAY_CURSOR, key=_cursor_key), total)


def _cursor_key(view: AppointmentView) -> str:
    return f"{view.row.slot_start.astimezone(UTC).isoformat()}|{view.row.id}"


# -- booking -----------------------------------------------------------------------------


async def book(ctx: Context, data: dict[str, Any]) -> AppointmentView:
    """A place in a slot for a patient. A patient books for themself (channel portal), a partner for its
    granted patients (channel partner), staff for any patient they reach, in the channel they name."""
    principal = ctx.require_principal()
    patient_id = data.get("patient_id") or (principal.patient_id if principal.kind == PATIENT else None)
    decision = await access.authorize(ctx, "appointment", "create", action=Action.CREATE,
                                      resource_type="appointment", patient_id=patient_id)
    start, channel, reason = _checked_booking(ctx, data, patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, patient, "appointment", resource_type="appointment", act="create")
    schedule, slot = await schedules.slot_at(ctx, data["schedule_id"], start)
    now = _now()
    await _check_when(ctx, Action.CREATE, None, patient, slot.start, now)
    _check_active(patient)
    values = {"patient_id": patient.row.id, "schedule_id": schedule.id, "slot_start": slot.start,
              "slot_end": slot.end, "channel": channel, "reason": reason,
              "booked_by_id": principal.user_id if principal.kind == STAFF else None,
              "partner_id": principal.partner_id if principal.kind == PARTNER else None}

    async def write(seat: int) -> Appointment:
        # The file locked first: the same patient booked twice at once (a double click, two desks) waits here and
        # then finds the first place, and a merge of the file meanwhile is seen (found in review: both won).
        if await access.lock_file(patient.row.id) != "active":
            raise BadUserInput("patientId: the file is no longer active; appointments are for active files.",
                               field="patientId")
        await _check_not_in_slot(ctx, schedule.id, slot.start, patient.row.id)
        if principal.kind in OUTSIDE_CHANNELS and await Appointment.filter(  # counted under the file's lock
                institution_id=ctx.institution_id, patient_id=patient.row.id, status="booked",
                channel__in=tuple(OUTSIDE_CHANNELS.values()), slot_start__gt=now).count() >= OUTSIDE_UPCOMING_LIMIT:
            raise access.Refusal(BadUserInput(
                f"patientId: at most {OUTSIDE_UPCOMING_LIMIT} upcoming appointments are booked online; cancel one, "
                "or call the institution.", field="patientId", reason=ITEM_COUNT),
                Action.CREATE, "appointment", None, patient.row.id)  # recorded once the booking has rolled back
        row = await _insert(ctx, seat, values)
        await communication.on_appointment(ctx, row, "booked")
        await writer.append([access.write_record(ctx, Action.CREATE, "appointment", row.id,
                                                 patient_id=patient.row.id, fields=_written(values),
                                                 decision=decision)])
        return row

    async with access.merge_refusal_recorded(ctx, Action.CREATE, patient.row.id):
        booked = await _seated(schedule.id, slot.start, slot.capacity, write)
    ctx.services.messages.scheduled.set()  # its confirmation is due now
    return AppointmentView(booked, patient)


def _checked_booking(ctx: Context, data: dict[str, Any], patient_id: uuid.UUID | None
                     ) -> tuple[datetime, str, str | None]:
    """(slot start, channel, reason) of a booking; every problem of its shape reported at once (in the input's
    order), before reach, the schedule and the slot are looked up."""
    problems = Problems()
    if data.get("schedule_id") is None:
        problems.add("scheduleId", "required", "is required.")
    start = _now()
    with problems.collect("slotStart"):
        start = aware_time(data["slot_start"], "slotStart")
        _check_not_begun(start, _now())
    if patient_id is None:
        problems.add("patientId", "required", "is required.")
    reason = None
    with problems.collect("reason"):
        reason = _reason(data.get("reason"))
    channel = ""
    with problems.collect("channel"):
        channel = _channel(ctx, data.get("channel"))
    problems.check()
    return start, channel, reason


async def reschedule(ctx: Context, appointment_id: uuid.UUID | None, slot_start: datetime,
                     version: int | None) -> AppointmentView:
    """Move a booked appointment to another slot of its schedule: the old one is cancelled (reason
    ``rescheduled``) and a new one names it, in one transaction."""
    decision = await access.authorize(ctx, "appointment", "update", action=Action.UPDATE,
                                      resource_type="appointment", resource_id=appointment_id)
    view = await find_to_change(ctx, appointment_id)
    old = view.row
    expected = versioning.check_version(old, version, "appointment")
    start = aware_time(slot_start, "slotStart")
    _check_booked(old, "moved")
    schedule, slot = await schedules.slot_at(ctx, old.schedule_id, start, held=True)
    if slot.start == old.slot_start:
        raise BadUserInput("slotStart: the appointment is in this slot already.", field="slotStart")
    now = _now()
    await _check_when(ctx, Action.UPDATE, old, view.patient, slot.start, now)
    _check_active(view.patient)
    principal = ctx.require_principal()
    values = {"patient_id": old.patient_id, "schedule_id": schedule.id, "slot_start": slot.start,
              "slot_end": slot.end, "channel": OUTSIDE_CHANNELS.get(principal.kind, old.channel),
              "reason": _open_reason(ctx, old), "rescheduled_from_id": old.id,
              "booked_by_id": principal.user_id if principal.kind == STAFF else None,
              "partner_id": principal.partner_id if principal.kind == PARTNER else old.partner_id}
    cancelled = {"status": "cancelled", "seat": None, "cancelled_at": now, "cancellation_reason": "rescheduled"}

    async def write(seat: int) -> Appointment:
        await access.lock_file(old.patient_id, "id")  # a merge moving the appointment meanwhile is seen
        await _check_not_in_slot(ctx, schedule.id, slot.start, old.patient_id)  # as a booking of it would
        await _compare_and_set(ctx, old, expected, cancelled)
        row = await _insert(ctx, seat, values)
        await communication.on_appointment(ctx, row, "rescheduled", previous=_updated(old, expected, cancelled))
        await writer.append([
            access.write_record(ctx, Action.UPDATE, "appointment", old.id, patient_id=old.patient_id,
                                fields=frozenset(cancelled), decision=decision),
            access.write_record(ctx, Action.CREATE, "appointment", row.id, patient_id=old.patient_id,
                                fields=_written(values), decision=decision)])
        return row

    async with access.merge_refusal_recorded(ctx, Action.UPDATE, old.patient_id):
        moved = await _seated(schedule.id, slot.start, slot.capacity, write)
    ctx.services.messages.scheduled.set()  # the change message is due now
    return AppointmentView(moved, view.patient)


async def cancel(ctx: Context, appointment_id: uuid.UUID | None, reason: str, version: int | None) -> AppointmentView:
    """Cancel a booked appointment: its seat is free again. A patient's own cancellation is for reason
    ``patient`` whatever they send."""
    decision = await access.authorize(ctx, "appointment", "update", action=Action.UPDATE,
                                      resource_type="appointment", resource_id=appointment_id)
    view = await find_to_change(ctx, appointment_id)
    expected = versioning.check_version(view.row, version, "appointment")
    principal = ctx.require_principal()
    reason = "patient" if principal.kind == PATIENT else one_of(reason, CANCELLATION_REASONS, "reason")
    if reason == "rescheduled":
        raise BadUserInput("reason: to move an appointment, reschedule it.", field="reason")
    if reason == "institution" and principal.kind == PARTNER:  # the institution's cancellations are its own to count
        raise BadUserInput("reason: a partner cancels for the patient (PATIENT) or for another reason (OTHER).",
                           field="reason", reason="partner_reason")
    _check_booked(view.row, "cancelled")
    now = _now()
    await _check_when(ctx, Action.UPDATE, view.row, view.patient, None, now)
    columns = {"status": "cancelled", "seat": None, "cancelled_at": now, "cancellation_reason": reason}
    # A file merged since the appointment was read: the appointment is the survivor's now, and so is the message, as
    # when it is cancelled after the merge, in the caller's reach as find would ask then, and where a role of theirs
    # that changes appointments reaches, as find_to_change would.
    following = access.following_survivor(ctx, Action.UPDATE, "appointment", view.row.id, section="appointment")
    async with following as hold, in_transaction():
        # The file held first, as a merge locks it before it moves the appointment: the appointment held first, the
        # message's wait for the file deadlocked with a merge at that moment (found in review).
        patient = await hold(view.row.patient_id) or view.patient
        await _compare_and_set(ctx, view.row, expected, columns)
        row = _updated(view.row, expected, columns)
        row.patient_id = patient.row.id
        await communication.on_appointment(ctx, row, "cancelled")
        await writer.append([access.write_record(ctx, Action.UPDATE, "appointment", row.id,
                                                 patient_id=row.patient_id, fields=frozenset(columns),
                                                 decision=decision)])
    ctx.services.messages.scheduled.set()  # the cancellation message is due now
    return AppointmentView(row, patient)


# -- at the desk -------------------------------------------------------------------------


async def check_in(ctx: Context, appointment_id: uuid.UUID | None, version: int | None) -> AppointmentView:
    """The patient arrived: the appointment becomes a visit of the care journey, ARRIVED now (its waiting time
    starts here), in the schedule's department with its clinician, for the appointment's reason. Staff only:
    it needs ``visit: create`` besides ``appointment: update``."""
    decision = await access.authorize(ctx, "appointment", "update", action=Action.UPDATE,
                                      resource_type="appointment", resource_id=appointment_id)
    visit_decision = await access.authorize(ctx, "visit", "create", action=Action.CREATE, resource_type="visit")
    await _staff_only(ctx, appointment_id)
    view = await find(ctx, appointment_id, Action.UPDATE)
    await access.require_section_reached(ctx, view.patient, "visit", resource_type="visit", act="create")
    await require_change_reached(ctx, view)  # the appointment changes too (arrived)
    row = view.row
    expected = versioning.check_version(row, version, "appointment")
    _check_booked(row, "checked in")
    now = _now()
    zone = await institutions.zone_of(ctx)
    if now.astimezone(zone).date() < row.slot_start.astimezone(zone).date():
        raise BadUserInput("id: check-in opens on the day of the appointment.", field="id")
    _check_active(view.patient)
    schedule = await Schedule.get(id=row.schedule_id, institution_id=ctx.institution_id)
    institution = await Institution.get(id=ctx.institution_id)
    arrival = {"kind": VISIT_KIND_OF_INSTITUTION.get(institution.kind, "outpatient"),
               "department_id": schedule.department_id, "clinician_id": schedule.clinician_id,
               "planned_at": row.slot_start, "arrived_at": now}
    reason = _open_reason(ctx, row)
    if reason is not None:
        arrival["reason"] = reason
    columns: dict[str, Any] = {"status": "arrived", "arrived_at": now}
    # the file first (a merge moving the appointment meanwhile is seen), then the appointment's row, the audit
    # chain's head last, as every write here takes them
    async with access.file_transaction(ctx, row.patient_id, action=Action.UPDATE, field="id"):
        await _compare_and_set(ctx, row, expected, columns)
        visit = await visits.insert(ctx, view.patient, "arrived", arrival, visit_decision)
        await Appointment.filter(id=row.id, institution_id=ctx.institution_id).update(visit_id=visit.id)
        await communication.cancel_queued(ctx.institution_id, f"appointment:{row.id}:")  # here: no reminder
        await writer.append([access.write_record(ctx, Action.UPDATE, "appointment", row.id,
                                                 patient_id=row.patient_id,
                                                 fields=frozenset({"status", "arrived_at", "visit"}),
                                                 decision=decision)])
    ctx.services.visit_changes.notify()  # check-in alerts
    return AppointmentView(_updated(row, expected, {**columns, "visit_id": visit.id}), view.patient)


async def no_show(ctx: Context, appointment_id: uuid.UUID | None, version: int | None) -> AppointmentView:
    """Staff record that the patient did not come, once the slot has started (the sweep does it on its own
    ``NO_SHOW_GRACE`` after the slot's end). The seat stays taken: the slot is under way or over."""
    decision = await access.authorize(ctx, "appointment", "update", action=Action.UPDATE,
                                      resource_type="appointment", resource_id=appointment_id)
    await _staff_only(ctx, appointment_id)
    view = await find_to_change(ctx, appointment_id)  # again after a merge moved it: the survivor is checked too
    expected = versioning.check_version(view.row, version, "appointment")
    _check_booked(view.row, "recorded as a no-show")
    if _now() < view.row.slot_start:
        raise BadUserInput("id: a no-show is recorded once the slot has started.", field="id")
    columns = {"status": "noshow"}
    file = view.patient.row.id
    try:
        async with in_transaction():
            # Only while the appointment is on the file it was found on (the version covers its status): a merge
            # since moved it with its version as it was, and it is found again there (found in review: written on
            # the survivor without asking, recorded on the merged file), as contactUpdate does.
            row = await writes.write_over_version(view.row, expected, "appointment", columns, [
                access.write_record(ctx, Action.UPDATE, "appointment", view.row.id, patient_id=file,
                                    fields=frozenset(columns), decision=decision)], on_file=file)
            await communication.cancel_queued(ctx.institution_id, f"appointment:{view.row.id}:")
    except writes.MovedOffFile:
        return await no_show(ctx, appointment_id, version)
    return AppointmentView(row, view.patient)


async def mark_no_shows(now: datetime | None = None) -> int:
    """The sweep, for every institution: booked appointments whose slot ended ``NO_SHOW_GRACE`` ago become
    no-shows, recorded as the system's writes; returns how many it marked. Nothing is freed: the slot is over."""
    cutoff = (now or _now()) - NO_SHOW_GRACE
    marked = 0
    for institution_id in await Institution.all().order_by("id").values_list("id", flat=True):
        marked += await _mark_no_shows_of(cast(uuid.UUID, institution_id), cutoff)
    return marked


async def _mark_no_shows_of(institution_id: uuid.UUID, cutoff: datetime) -> int:
    """One institution's no-shows (on its status and slot-end index), a batch per transaction with its rows
    locked (``SKIP LOCKED`` on PostgreSQL: several workers share the work and never mark one twice)."""
    marked = 0
    while True:
        async with in_transaction():
            # .only, not .values_list: Tortoise leaves FOR UPDATE out of a values query (found in review: two
            # workers both took a batch and each recorded its no-shows)
            due = [(row.id, row.patient_id) for row in await (
                Appointment.filter(institution_id=institution_id, status="booked", slot_end__lte=cutoff)
                .order_by("slot_end", "id").limit(SWEEP_BATCH).select_for_update(skip_locked=True)
                .only("id", "patient_id"))]
            if not due:
                return marked
            await Appointment.filter(id__in=[row_id for row_id, _ in due], status="booked").update(
                status="noshow", version=F("version") + 1, updated_at=_now())
            await writer.append([AuditRecord(institution_id, SWEEP, Action.UPDATE, "appointment", Outcome.ALLOWED,
                                             resource_id=row_id, patient_id=patient_id,
                                             fields_read=frozenset({"status"}), policy_rule=SWEEP_RULE)
                                 for row_id, patient_id in due])
        marked += len(due)
        if len(due) < SWEEP_BATCH:
            return marked


async def cancel_for_patient(ctx: Context, patient_id: uuid.UUID) -> int:
    """An archived or deceased patient keeps no place (inside the caller's transaction): their booked
    appointments are cancelled by the institution, their places freed and their queued messages withdrawn;
    nothing is sent to them about it."""
    # Locked as read, as ``follow_up.cancel_for_patient`` does: one the no-show sweep marks meanwhile is waited for and
    # then left out, never recorded as cancelled here (found in review: the UPDATE left it out, the records did not).
    # .only, not .values_list: Tortoise leaves FOR UPDATE out of a values query.
    booked = [row.id for row in await Appointment.filter(
        institution_id=ctx.institution_id, patient_id=patient_id, status="booked").order_by("id")
        .select_for_update().only("id")]
    if not booked:
        return 0
    now = _now()
    await Appointment.filter(id__in=booked, status="booked").update(
        status="cancelled", seat=None, cancelled_at=now, cancellation_reason="institution",
        version=F("version") + 1, updated_at=now)
    for appointment_id in booked:
        await communication.cancel_queued(ctx.institution_id, f"appointment:{appointment_id}:")
    await writer.append([access.write_record(ctx, Action.UPDATE, "appointment", appointment_id, patient_id=patient_id,
                                             fields=frozenset({"status", "seat", "cancelled_at",
                                                               "cancellation_reason"}), decision=access.FILE_CLOSED)
                         for appointment_id in booked])
    return len(booked)


# -- the rules ---------------------------------------------------------------------------


def _check_not_begun(start: datetime, now: datetime) -> None:
    """Nobody books or moves an appointment to a slot that has begun: reason ``in_past`` either way (found in review:
    a move to one answered ``invalid``)."""
    if start <= now:
        raise BadUserInput("slotStart: the slot has begun or is over; choose a later one.", field="slotStart",
                           reason="in_past")


async def _check_when(ctx: Context, action: Action, current: Appointment | None, patient: PatientView,
                      new_start: datetime | None, now: datetime) -> None:
    """Nobody books a slot that has begun. Patients and partners (from outside the institution) book, move and
    cancel no later than ``portal_change_min_hours`` before a slot and no further ahead than
    ``portal_horizon_days``: a refusal is FORBIDDEN naming the rule, on the audit trail."""
    if new_start is not None:
        _check_not_begun(new_start, now)
    if ctx.require_principal().kind not in OUTSIDE_CHANNELS:
        return
    rules = await communication.messaging_settings(ctx.institution_id)  # no row: the defaults
    hours, days = rules.portal_change_min_hours, rules.portal_horizon_days
    soonest = now + timedelta(hours=hours)
    resource = None if current is None else current.id
    if current is not None and current.slot_start < soonest:
        await access.deny(ctx, action, "appointment", resource, patient.row.id, reason=PORTAL_TOO_LATE)
        raise Forbidden(f"id: appointments are changed online no later than {hours} hours before "
                        "the slot; please call the institution.", field="id", reason=PORTAL_TOO_LATE)
    if new_start is not None and new_start < soonest:
        await access.deny(ctx, action, "appointment", resource, patient.row.id, reason=PORTAL_TOO_LATE)
        raise Forbidden(f"slotStart: online booking closes {hours} hours before the slot; "
                        "please call the institution.", field="slotStart", reason=PORTAL_TOO_LATE)
    if new_start is not None and new_start > now + timedelta(days=days):
        await access.deny(ctx, action, "appointment", resource, patient.row.id, reason=PORTAL_TOO_FAR)
        raise Forbidden(f"slotStart: online booking opens {days} days ahead.", field="slotStart",
                        reason=PORTAL_TOO_FAR)


async def _staff_only(ctx: Context, appointment_id: uuid.UUID | None) -> None:
    """Arrivals and no-shows are recorded at the institution, by its staff."""
    if ctx.require_principal().kind != STAFF:
        await access.deny(ctx, Action.UPDATE, "appointment", appointment_id, reason="forbidden")
        raise Forbidden()


def _check_booked(row: Appointment, done: str) -> None:
    if row.status != "booked":
        raise BadUserInput(f"id: a {row.status.upper()} appointment cannot be {done}.", field="id",
                           reason=ILLEGAL_TRANSITION)


def _check_active(patient: PatientView) -> None:
    if patient.row.status != "active":
        raise BadUserInput(f"patientId: the file is {patient.row.status}; appointments are for active files.",
                           field="patientId")


def _channel(ctx: Context, channel: str | None) -> str:
    """Patients book through the portal and partners through theirs, whatever they say; staff name the channel
    the patient used (the front desk by default)."""
    kind = ctx.require_principal().kind
    if kind in OUTSIDE_CHANNELS:
        return OUTSIDE_CHANNELS[kind]
    return "front_desk" if channel is None else one_of(channel, STAFF_CHANNELS, "channel")


def _reason(value: str | None) -> str | None:
    """Why the patient comes, in their words (whoever books may write it; reading it is clinical)."""
    if value is None:
        return None
    return clean_text(value, field="reason", max_length=REASON_LIMIT, min_length=1)


def _open_reason(ctx: Context, row: Appointment) -> str | None:
    """The sealed reason, opened to be sealed again under another row (a move, a visit): never shown here."""
    return None if row.reason is None else access.open_sealed(ctx, "appointment", "reason", row.id, row.reason)


def _written(values: dict[str, Any]) -> frozenset[str]:
    names = {name.removesuffix("_id") for name, value in values.items() if value is not None}
    return frozenset(names | {"seat", "status"})


# -- writing -----------------------------------------------------------------------------


async def _check_not_in_slot(ctx: Context, schedule_id: uuid.UUID, start: datetime, patient_id: uuid.UUID) -> None:
    """A patient holds one place per slot, booked or moved there (asked under the file's lock: found in hunting, a
    move into a slot the patient held already gave them two places of it)."""
    if await Appointment.exists(institution_id=ctx.institution_id, schedule_id=schedule_id, slot_start=start,
                                patient_id=patient_id, status__in=HOLDING):
        raise Conflict("slotStart: the patient already has a place in this slot.", field="slotStart",
                       reason="already_in_slot")


async def _free_seat(schedule_id: uuid.UUID, start: datetime, capacity: int) -> int | None:
    """The smallest seat of the slot nobody holds, or None when the slot is full. Holders of seats beyond the
    capacity (it was lowered after they booked) count against it too: the seats offered are fewer by as many,
    so the unique seat still refuses a place over the capacity to bookings racing for it."""
    taken = set(await Appointment.filter(schedule_id=schedule_id, slot_start=start, seat__isnull=False)
                .values_list("seat", flat=True))
    seats = capacity - len(taken - set(range(1, capacity + 1)))
    return next((seat for seat in range(1, seats + 1) if seat not in taken), None)


async def _seated(schedule_id: uuid.UUID, start: datetime, capacity: int,
                  write: Callable[[int], Awaitable[Appointment]]) -> Appointment:
    """Run ``write(seat)`` in a transaction on the smallest free seat. Another booking taking that seat first
    makes the insert fail on the unique seat and roll the whole write back: the seats are read again and the
    next free one tried, a few times at most (a crowd racing for a slot), then the slot is full (CONFLICT)."""
    for _ in range(SEAT_ATTEMPTS):
        seat = await _free_seat(schedule_id, start, capacity)
        if seat is None:
            break
        try:
            async with in_transaction():
                row: Appointment = await write(seat)
            return row
        except IntegrityError:
            continue
    raise Conflict("slotStart: the slot is full.", field="slotStart", reason="slot_full")


async def _insert(ctx: Context, seat: int, values: dict[str, Any]) -> Appointment:
    appointment_id = uuid7()
    columns = {**values, "reason": access.seal(ctx, "appointment", "reason", appointment_id, values["reason"])}
    return await Appointment.create(id=appointment_id, institution_id=ctx.institution_id, seat=seat,
                                    status="booked", **columns)


async def _compare_and_set(ctx: Context, row: Appointment, expected: int, columns: dict[str, Any]) -> None:
    """Write only over the version and status the caller saw: two desks never both move one appointment. Sets
    ``columns["updated_at"]`` to the time written, so that ``_updated`` gives the row as written."""
    columns["updated_at"] = _now()
    changed = await Appointment.filter(id=row.id, institution_id=ctx.institution_id, version=expected,
                                       status=row.status).update(**columns, version=bumped())
    if changed != 1:
        raise versioning.stale("appointment")


def _updated(row: Appointment, expected: int, columns: dict[str, Any]) -> Appointment:
    """The row as written (a copy: a write retried after a lost seat starts again from the row as read)."""
    written = copy.copy(row)
    for name, value in columns.items():
        setattr(written, name, value)
    written.version = expected + 1
    return written
