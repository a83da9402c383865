"""Schedules of clinicians and resources (FHIR Schedule), their exceptions, and their slots (FHIR Slot).

Slots are computed by core.slots from the schedule, its exceptions and the institution's business
calendar; nothing is stored per slot. A booking (resolvers.appointment) asks ``slot_at`` for the
slot it books, so the two can never disagree on what a slot is.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Outcome
from core import slots as slot_math
from core.business_time import Calendar
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.slots import EXTRA, Adjustment, Plan, Slot
from core.validation import Problems, aware_time, camel_case, check_year, clean_text, one_of
from models import Appointment, Department, Schedule, ScheduleException
from models.schedule import EXCEPTION_KINDS, SCHEDULE_KINDS
from resolvers import access, loaders, pagination, sla, staff, versioning
from resolvers.context import Context
from resolvers.versioning import bumped

SCHEDULE_CURSOR = "schedule"
COLUMNS = ("name", "kind", "clinician_id", "department_id", "week", "slot_minutes", "capacity")
LIMITS = {"slot_minutes": (5, 240), "capacity": (1, 50)}
MAX_SESSIONS = 6  # a day's sessions
MAX_EXCEPTION_DAYS = 366
MAX_EXTRA_SESSION = timedelta(hours=25)  # a day, the longest a clock change makes; a night shift crosses midnight
# A schedule holds at most this many exceptions not yet over (found in review: they had no bound, and every slot
# question reads those near its days). scheduleExceptionAdd refuses one more (BAD_USER_INPUT, reason ``item_count``,
# recorded); one cancelled or over frees its place.
MAX_OPEN_EXCEPTIONS = 200
ITEM_COUNT = "item_count"
MAX_LISTED_EXCEPTIONS = 100  # a schedule's upcoming exceptions shown with it
MAX_SLOT_DAYS = 31  # free slots are asked for a month at most
STAFF_ONLY = "staff_only"  # extensions.reason of an exception's reason read by a patient or a partner
MAX_SLOTS = 20_000  # and a month of a department fits (e.g. 20 clinicians x 31 days x 30 slots)
SEAT_HOLDING = ("booked", "arrived")  # appointments that hold a place of their slot

def _now() -> datetime:
    return datetime.now(UTC)


def _moment(value: datetime, field: str) -> datetime:
    """An aware time within the years schedules deal in, in UTC (``check_year``: reason ``out_of_range``, as every
    date out of the years; found in review, a schedule exception's and a booking's said only ``invalid``)."""
    moment = aware_time(value, field)
    check_year(moment, field)
    return moment


def plan_of(schedule: Schedule, exceptions: list[ScheduleException]) -> Plan:
    """What the schedule's row and its exceptions in force say about its slots (in the order they were recorded:
    between a leave and an extra session, the later holds)."""
    in_force = sorted((e for e in exceptions if e.cancelled_at is None), key=lambda e: (e.created_at, e.id))
    return Plan(week=slot_math.parse_week(schedule.week), slot_minutes=schedule.slot_minutes,
                capacity=schedule.capacity,
                adjustments=tuple(Adjustment(e.kind, e.starts_at, e.ends_at, e.capacity) for e in in_force))


def day_window(calendar: Calendar, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The UTC bounds of local days ``first_day`` to ``last_day``, both included."""
    return (datetime.combine(first_day, time(0), calendar.zone).astimezone(UTC),
            datetime.combine(last_day + timedelta(days=1), time(0), calendar.zone).astimezone(UTC))


async def slot_at(ctx: Context, schedule_id: uuid.UUID | None, slot_start: datetime, *,
                  action: Action = Action.CREATE, held: bool = False) -> tuple[Schedule, Slot]:
    """The active schedule of the caller's institution and its slot starting exactly at ``slot_start``.

    A schedule missing, inactive or of another institution is NOT_FOUND (field ``scheduleId``, the
    attempt recorded as ``action``: call this before opening the write's transaction); a time where
    no slot starts is BAD_USER_INPUT on ``slotStart``. No policy decision here: the caller made its own.
    ``held``: the schedule of an appointment being moved (not a caller's input), which exists: deactivated, it offers
    no slot, CONFLICT ``illegal_transition`` at the appointment's ``id``, no refusal on the trail (found in hunting:
    NOT_FOUND at a ``scheduleId`` the move does not take, recorded as a refused create of a missing schedule).
    """
    start = _moment(slot_start, "slotStart")
    if held:
        found = await Schedule.get_or_none(id=schedule_id, institution_id=ctx.institution_id)
        if found is None or not found.active:
            raise Conflict("id: the appointment's schedule is deactivated and offers no slot; cancel it and book "
                           "another schedule.", field="id", reason=ILLEGAL_TRANSITION)
        schedule = found
    else:
        schedule = await access.find_in_institution(ctx, Schedule.filter(active=True), schedule_id, action=action,
                                                    resource_type="schedule", field="scheduleId")
    calendar = await sla.calendar(ctx.institution_id)
    day = start.astimezone(calendar.zone).date()
    begin, end = day_window(calendar, day, day)
    # a slot of the day may run past its midnight (an evening extra session): what begins before the slot ends counts
    exceptions = await ScheduleException.filter(
        institution_id=ctx.institution_id, schedule_id=schedule.id, cancelled_at=None,
        starts_at__lt=end + timedelta(minutes=schedule.slot_minutes), ends_at__gt=begin)
    slot = slot_math.slot_starting(plan_of(schedule, list(exceptions)), calendar, start)
    if slot is None:
        raise BadUserInput("slotStart: no slot of this schedule starts at this time.", field="slotStart")
    return schedule, slot


# -- reading ---------------------------------------------------------------------------------


async def page(ctx: Context, *, department_id: uuid.UUID | None, first: int, after: str | None,
               include_inactive: bool = False, count: bool = False) -> pagination.Page[Schedule]:
    """The institution's schedules (of one department), in creation order."""
    decision = await access.authorize(ctx, "schedule", "read", action=Action.READ, resource_type="schedule")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Schedule.filter(institution_id=ctx.institution_id)
    if department_id is not None:
        query = query.filter(department_id=department_id)
    if not include_inactive:
        query = query.filter(active=True)
    page = await pagination.by_id(query, first=first, after=after, kind=SCHEDULE_CURSOR, count=count)
    ctx.reads.note("schedule", None, None, rule=decision.rule)
    return page


async def one(ctx: Context, schedule_id: uuid.UUID | None) -> Schedule:
    """One schedule of the institution, active or not."""
    decision = await access.authorize(ctx, "schedule", "read", action=Action.READ, resource_type="schedule",
                                      resource_id=schedule_id)
    row = await _find(ctx, schedule_id, Action.READ)
    ctx.reads.note("schedule", row.id, None, rule=decision.rule)
    return row


async def upcoming_exceptions(ctx: Context, schedule: Schedule, *,
                              include_cancelled: bool = False) -> list[ScheduleException]:
    """A schedule's exceptions not yet over, soonest first, at most ``MAX_LISTED_EXCEPTIONS``; one
    statement for a whole page of schedules."""
    async def batch(schedule_ids: Sequence[uuid.UUID]) -> list[list[ScheduleException]]:
        query = ScheduleException.filter(institution_id=ctx.institution_id, ends_at__gt=_now())
        if not include_cancelled:
            query = query.filter(cancelled_at=None)
        found = await loaders.newest_per_parent(query, "schedule_id", schedule_ids, ("starts_at", "id"),
                                                MAX_LISTED_EXCEPTIONS)
        return [found.get(i, []) for i in schedule_ids]

    name = "schedule_exceptions_all" if include_cancelled else "schedule_exceptions"
    return list(await ctx.require_loaders().made(name, batch).load(schedule.id))


@dataclass(frozen=True)
class SlotView:
    """A computed slot with the places booked in it."""

    schedule: Schedule
    slot: Slot
    booked: int

    @property
    def free(self) -> int:
        return max(0, self.slot.capacity - self.booked)


async def free_slots(ctx: Context, *, department_id: uuid.UUID | None = None,
                     schedule_id: uuid.UUID | None = None, clinician_id: uuid.UUID | None = None,
                     from_date: date, to_date: date, only_free: bool = True) -> list[SlotView]:
    """The future slots of the active schedules asked for (a department's, one schedule's, or a
    clinician's; given together they narrow each other), local days ``from_date`` to ``to_date``,
    by start. Five statements whatever the number of schedules and days: the schedules, the
    calendar (zone and row), their exceptions, and the booked places counted in one grouped query."""
    decision = await access.authorize(ctx, "schedule", "read", action=Action.READ, resource_type="schedule",
                                      resource_id=schedule_id)
    if department_id is None and schedule_id is None and clinician_id is None:
        raise BadUserInput("departmentId: give a department, a schedule or a clinician.", field="departmentId")
    check_year(from_date, "from")
    if to_date < from_date:
        raise BadUserInput("to: must not be before from.", field="to")
    if (to_date - from_date).days + 1 > MAX_SLOT_DAYS:
        raise BadUserInput(f"to: at most {MAX_SLOT_DAYS} days at a time.", field="to")
    query = Schedule.filter(institution_id=ctx.institution_id, active=True)
    for column, value in (("department_id", department_id), ("id", schedule_id), ("clinician_id", clinician_id)):
        if value is not None:
            query = query.filter(**{column: value})
    schedules = list(await query.order_by("name", "id"))
    if schedule_id is not None and not schedules:
        raise await access.not_found(ctx, Action.READ, "schedule", schedule_id, field="scheduleId")
    ctx.reads.note("free_slots", schedule_id, None, rule=decision.rule)
    if not schedules:
        return []
    calendar = await sla.calendar(ctx.institution_id)
    begin, end = day_window(calendar, from_date, to_date)
    now = _now()
    ids = [s.id for s in schedules]
    exceptions: dict[uuid.UUID, list[ScheduleException]] = defaultdict(list)
    longest = timedelta(minutes=max(s.slot_minutes for s in schedules))  # a last slot running past midnight
    for row in await ScheduleException.filter(institution_id=ctx.institution_id, schedule_id__in=ids,
                                              cancelled_at=None, starts_at__lt=end + longest, ends_at__gt=begin):
        exceptions[row.schedule_id].append(row)
    booked = await _booked(ctx, ids, max(begin, now), end)
    out: list[SlotView] = []
    for schedule in schedules:
        for slot in slot_math.slots(plan_of(schedule, exceptions[schedule.id]), calendar, from_date, to_date):
            if slot.start <= now:
                continue
            view = SlotView(schedule, slot, booked.get((schedule.id, slot.start), 0))
            if view.free or not only_free:
                out.append(view)
            if len(out) > MAX_SLOTS:
                raise BadUserInput(f"to: more than {MAX_SLOTS} slots; ask for fewer days or schedules.", field="to")
    out.sort(key=lambda v: v.slot.start)  # stable: schedules by name within one start
    return out


async def _booked(ctx: Context, schedule_ids: list[uuid.UUID], begin: datetime,
                  end: datetime) -> dict[tuple[uuid.UUID, datetime], int]:
    """Places held per (schedule, slot start), one grouped statement."""
    rows = await Appointment.filter(
        institution_id=ctx.institution_id, schedule_id__in=schedule_ids, status__in=SEAT_HOLDING,
        seat__isnull=False, slot_start__gte=begin, slot_start__lt=end,
    ).annotate(held=Count("id")).group_by("schedule_id", "slot_start").values_list("schedule_id", "slot_start", "held")
    return {(_uuid(schedule_id), _utc(start)): int(held) for schedule_id, start, held in rows}


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _utc(value: Any) -> datetime:
    """A grouped column's timestamp as an aware UTC datetime, whatever the driver returned."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- writing (admins any department, department heads their own) ------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> Schedule:
    decision = await access.authorize(ctx, "schedule", "create", action=Action.CREATE, resource_type="schedule")
    problems = Problems()
    for required in ("name", "kind", "department_id", "week", "slot_minutes"):
        if data.get(required) is None:
            problems.add(camel_case(required), "required", "is required.")
    values = problems.each({"capacity": 1, **{k: v for k, v in data.items() if not problems.has(camel_case(k))}},
                           _value)
    _check_whole(problems, values)
    problems.check()  # every problem of the input's shape, before the records it names are looked up
    await _check_references(ctx, values)
    await _check_reach(ctx, Action.CREATE, None, {values["department_id"]})
    async with in_transaction():
        row = await Schedule.create(id=uuid7(), institution_id=ctx.institution_id, **values)
        await writer.append([access.write_record(ctx, Action.CREATE, "schedule", row.id,
                                                 fields=frozenset(values), decision=decision)])
    return row


async def update(ctx: Context, schedule_id: uuid.UUID | None, data: dict[str, Any], version: int) -> Schedule:
    """Change a schedule (compare-and-set on ``version``). Appointments already booked keep their slot."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "schedule", "update", action=Action.UPDATE, resource_type="schedule",
                                      resource_id=schedule_id)
    row = await _find(ctx, schedule_id, Action.UPDATE)
    problems = Problems()
    values = problems.each(data, _value)
    merged = {name: getattr(row, name) for name in COLUMNS} | values
    _check_whole(problems, merged)  # the fields sent with those kept: one answer for every problem
    problems.check()
    await _check_references(ctx, values)
    await _check_reach(ctx, Action.UPDATE, row.id, {row.department_id, merged["department_id"]})
    _check_current(row, version)
    async with in_transaction():
        await _compare_and_set(ctx, row, version, values)
        await writer.append([access.write_record(ctx, Action.UPDATE, "schedule", row.id,
                                                 fields=frozenset(values), decision=decision)])
    return await Schedule.get(id=row.id, institution_id=ctx.institution_id)


async def deactivate(ctx: Context, schedule_id: uuid.UUID | None, version: int) -> Schedule:
    """No more slots from this schedule; appointments already booked stay as they are."""
    decision = await access.authorize(ctx, "schedule", "update", action=Action.UPDATE, resource_type="schedule",
                                      resource_id=schedule_id)
    row = await _find(ctx, schedule_id, Action.UPDATE)
    await _check_reach(ctx, Action.UPDATE, row.id, {row.department_id})
    _check_current(row, version)
    async with in_transaction():
        await _compare_and_set(ctx, row, version, {"active": False})
        await writer.append([access.write_record(ctx, Action.UPDATE, "schedule", row.id,
                                                 fields=frozenset({"active"}), decision=decision)])
    return await Schedule.get(id=row.id, institution_id=ctx.institution_id)


async def exception_add(ctx: Context, schedule_id: uuid.UUID | None, data: dict[str, Any]) -> ScheduleException:
    """A leave (no slots in its span) or an extra session (its own slots) on an active schedule."""
    decision = await access.authorize(ctx, "schedule", "update", action=Action.CREATE,
                                      resource_type="schedule_exception", resource_id=schedule_id)
    schedule = await _find(ctx, schedule_id, Action.CREATE, field="scheduleId")
    await _check_reach(ctx, Action.CREATE, schedule.id, {schedule.department_id})
    if not schedule.active:
        raise Conflict("scheduleId: the schedule is deactivated.", field="scheduleId", reason=ILLEGAL_TRANSITION)
    values = _exception_values(schedule, data)
    async with access.refusals_recorded(ctx), in_transaction():
        # one exception at a time per schedule, so two extra sessions added together cannot overlap, and two
        # additions count one after the other
        await Schedule.filter(id=schedule.id, institution_id=ctx.institution_id).select_for_update().first()
        if values["kind"] == EXTRA and await ScheduleException.exists(
                institution_id=ctx.institution_id, schedule_id=schedule.id, kind=EXTRA, cancelled_at=None,
                starts_at__lt=values["ends_at"], ends_at__gt=values["starts_at"]):
            raise BadUserInput("startsAt: overlaps another extra session of this schedule.", field="startsAt")
        if await ScheduleException.filter(institution_id=ctx.institution_id, schedule_id=schedule.id,
                                          cancelled_at=None, ends_at__gt=_now()).count() >= MAX_OPEN_EXCEPTIONS:
            raise access.Refusal(BadUserInput(
                f"scheduleId: a schedule holds at most {MAX_OPEN_EXCEPTIONS} exceptions not yet over; cancel one "
                "before adding another.", field="scheduleId", reason=ITEM_COUNT),
                Action.CREATE, "schedule_exception", schedule.id)
        row = await ScheduleException.create(id=uuid7(), institution_id=ctx.institution_id,
                                             schedule_id=schedule.id, **values)
        await writer.append([access.write_record(ctx, Action.CREATE, "schedule_exception", row.id,
                                                 fields=frozenset(values), decision=decision)])
    return row


async def exception_cancel(ctx: Context, exception_id: uuid.UUID | None,
                           version: int | None = None) -> ScheduleException:
    """Cancel an exception over the version the caller read (stale: CONFLICT, nothing written)."""
    decision = await access.authorize(ctx, "schedule", "update", action=Action.UPDATE,
                                      resource_type="schedule_exception", resource_id=exception_id)
    row = await access.find_in_institution(ctx, ScheduleException.all().select_related("schedule"), exception_id,
                                           action=Action.UPDATE, resource_type="schedule_exception")
    await _check_reach(ctx, Action.UPDATE, row.schedule_id, {row.schedule.department_id})
    if row.cancelled_at is not None:
        raise Conflict("id: the exception is cancelled already.", field="id", reason=ILLEGAL_TRANSITION)
    expected = versioning.check_version(row, version, "exception")
    changes = versioning.next_version(row, expected, {"cancelled_at": _now()})
    async with in_transaction():
        # cancelling is an exception's only change: a row that moved since it was read was cancelled meanwhile
        if await ScheduleException.filter(id=row.id, institution_id=ctx.institution_id, cancelled_at=None,
                                          version=expected).update(**changes) != 1:
            raise Conflict("id: the exception is cancelled already.", field="id", reason=ILLEGAL_TRANSITION)
        await writer.append([access.write_record(ctx, Action.UPDATE, "schedule_exception", row.id,
                                                 fields=frozenset({"cancelled_at"}), decision=decision)])
    for name, value in changes.items():
        setattr(row, name, value)
    return row


def refuse_exception_reason(ctx: Context) -> Forbidden:
    """An exception's reason is for staff (a colleague's leave, a training day): a patient's or a partner's read of
    it is FORBIDDEN at the field, reason ``staff_only``, the refusal noted, once per operation however many exceptions
    it shows (found in review: it was refused off the trail)."""
    ctx.reads.note("schedule_exception", None, None, field_name="reason", outcome=Outcome.DENIED,
                   reason="forbidden_field")
    return access.field_refused(STAFF_ONLY)


async def _find(ctx: Context, schedule_id: uuid.UUID | None, action: Action, field: str = "id") -> Schedule:
    return await access.find_in_institution(ctx, Schedule, schedule_id, action=action, resource_type="schedule",
                                            field=field)


async def _check_reach(ctx: Context, action: Action, schedule_id: uuid.UUID | None,
                       departments: set[uuid.UUID]) -> None:
    """Admins keep every department's schedules; a department head their own departments' only."""
    if access.keeps_departments(ctx, departments):
        return
    await access.deny(ctx, action, "schedule", schedule_id, reason="other_department")
    raise Forbidden("departmentId: a department head keeps the schedules of their own departments.",
                    field="departmentId")


def _check_current(row: Schedule, version: int) -> None:
    if version != row.version:
        raise _stale()
    if not row.active:
        raise Conflict("id: the schedule is deactivated.", field="id", reason=ILLEGAL_TRANSITION)


def _stale() -> Conflict:
    return Conflict("version: the schedule changed since you read it; read it again.", field="version")


async def _compare_and_set(ctx: Context, row: Schedule, version: int, values: dict[str, Any]) -> None:
    changed = await Schedule.filter(id=row.id, institution_id=ctx.institution_id, version=version,
                                    active=True).update(**values, version=bumped(), updated_at=_now())
    if changed != 1:
        raise _stale()


def _value(name: str, value: Any) -> Any:
    """A column from one of the API's fields, checked on its own (``_check_whole`` checks them together,
    ``_check_references`` looks up the records they name)."""
    field_name = camel_case(name)
    if value is None and name != "clinician_id":
        raise BadUserInput(f"{field_name}: must not be null.", field=field_name, reason="required")
    if name == "name":
        return clean_text(value, field=field_name, max_length=100, min_length=1)
    if name == "kind":
        return one_of(value, SCHEDULE_KINDS, field_name)
    if name in ("clinician_id", "department_id"):
        return value
    if name == "week":
        return _week(value)
    if name in ("slot_minutes", "capacity"):
        low, high = LIMITS[name]
        if not low <= value <= high:
            raise BadUserInput(f"{field_name}: must be between {low} and {high}.", field=field_name,
                               reason="out_of_range")
        return value
    raise BadUserInput(f"{field_name}: cannot be set here.", field=field_name)


async def _check_references(ctx: Context, values: dict[str, Any]) -> None:
    """The clinician named is an active clinician of the institution (``staff.check_clinicians``), the department
    one of its departments (both looked up, refused together)."""
    problems = Problems()
    if values.get("clinician_id") is not None:
        await staff.check_clinicians(ctx, problems, [("clinicianId", values["clinician_id"])])
    if "department_id" in values and not await Department.exists(id=values["department_id"],
                                                                 institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    problems.check()


def _check_whole(problems: Problems, values: dict[str, Any]) -> None:
    """A clinician's schedule names the clinician, a resource's none; every session holds a slot. A rule is
    left out when a field it reads has a problem of its own already."""
    if "kind" in values and not (problems.has("kind") or problems.has("clinicianId")) \
            and (values["kind"] == "clinician") != (values.get("clinician_id") is not None):
        problems.add("clinicianId", "invalid", "required for a clinician's schedule, and only for one.")
    if "week" not in values or "slot_minutes" not in values or problems.has("week") or problems.has("slotMinutes"):
        return
    length = timedelta(minutes=values["slot_minutes"])
    for sessions in slot_math.parse_week(values["week"]).values():
        for opens, closes in sessions:
            if _minutes(time.max if closes == time(0) else closes) - _minutes(opens) < length:
                problems.add("week", "invalid", "every session must hold at least one slot.")
                return


def _minutes(moment: time) -> timedelta:
    return timedelta(hours=moment.hour, minutes=moment.minute + (1 if moment == time.max else 0))


def _week(days: list[dict[str, Any]]) -> dict[str, list[list[str]]]:
    """``[{"weekday": 1, "sessions": [(start, end)]}]`` as stored: weekdays 1-7 at most once, local
    times in whole minutes, sessions ordered without overlap (an end of 00:00 is midnight)."""
    week: dict[str, list[list[str]]] = {}
    seen: set[int] = set()
    for day in days:
        weekday = day["weekday"]
        if not 1 <= weekday <= 7 or weekday in seen:
            raise BadUserInput("week: each weekday (1 = Monday ... 7 = Sunday) at most once.", field="week")
        if len(day["sessions"]) > MAX_SESSIONS:
            raise BadUserInput(f"week: at most {MAX_SESSIONS} sessions a day.", field="week")
        seen.add(weekday)
        previous_end: time | None = None
        sessions: list[list[str]] = []
        for start, end in day["sessions"]:
            if start.tzinfo is not None or end.tzinfo is not None or start.second or end.second \
                    or start.microsecond or end.microsecond:
                raise BadUserInput("week: session times are local, in whole minutes.", field="week")
            ends = end if end != time(0) else time.max
            if not start < ends or (previous_end is not None and start < previous_end):
                raise BadUserInput("week: sessions must be ordered, each ending after it starts.", field="week")
            previous_end = ends
            sessions.append([start.isoformat("minutes"), end.isoformat("minutes")])
        if sessions:
            week[str(weekday)] = sessions
    return week


def _exception_values(schedule: Schedule, data: dict[str, Any]) -> dict[str, Any]:
    """An exception's columns, every problem of the input reported at once."""
    problems = Problems()
    values: dict[str, Any] = {"capacity": data.get("capacity")}
    with problems.collect("kind"):
        values["kind"] = one_of(data.get("kind"), EXCEPTION_KINDS, "kind")
    for name in ("starts_at", "ends_at"):
        with problems.collect(camel_case(name)):
            values[name] = _moment(data[name], camel_case(name))
    with problems.collect("capacity"):
        _check_exception_capacity(values)
    with problems.collect("endsAt"):
        _check_span(schedule, values)
    with problems.collect("reason"):
        values["reason"] = clean_text(data.get("reason") or "", field="reason", max_length=200)
    problems.check()
    return values


def _check_exception_capacity(values: dict[str, Any]) -> None:
    capacity = values["capacity"]
    if capacity is None:
        return
    if values.get("kind", EXTRA) != EXTRA:
        raise BadUserInput("capacity: only an extra session has a capacity of its own.", field="capacity")
    low, high = LIMITS["capacity"]
    if not low <= capacity <= high:
        raise BadUserInput(f"capacity: must be between {low} and {high}.", field="capacity", reason="out_of_range")


def _check_span(schedule: Schedule, values: dict[str, Any]) -> None:
    """The exception ends after it starts, within a year; an extra session holds a slot and lasts at most a day
    (once both times are valid: found in review, a session of a year offered slots around the clock)."""
    starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
    if starts_at is None or ends_at is None:
        return
    if ends_at <= starts_at:
        raise BadUserInput("endsAt: must be after startsAt.", field="endsAt")
    if ends_at - starts_at > timedelta(days=MAX_EXCEPTION_DAYS):
        raise BadUserInput(f"endsAt: an exception lasts at most {MAX_EXCEPTION_DAYS} days.", field="endsAt")
    if values.get("kind") == EXTRA and ends_at - starts_at < timedelta(minutes=schedule.slot_minutes):
        raise BadUserInput("endsAt: an extra session must hold at least one slot.", field="endsAt")
    if values.get("kind") == EXTRA and ends_at - starts_at > MAX_EXTRA_SESSION:
        raise BadUserInput("endsAt: an extra session lasts at most a day (25 hours); add one per day.", field="endsAt",
                           reason="out_of_range")
