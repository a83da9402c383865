"""Schedules of clinicians and resources (FHIR Schedule), their exceptions, and their slots (FHIR Slot).

Slots are computed by core.slots from the schedule, its exceptions and the institution's business
calendar; nothing is stored per slot. A booking (resolvers.appointment) asks ``slot_at`` for the
slot it books, so the two can never disagree on what a slot is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from audit.events import Action
from core import slots as slot_math
from core.business_time import Calendar
from core.errors import BadUserInput
from core.slots import Adjustment, Plan, Slot
from core.validation import aware_time
from models import Schedule, ScheduleException
from resolvers import access, sla
from resolvers.context import Context


def plan_of(schedule: Schedule, exceptions: list[ScheduleException]) -> Plan:
    """What the schedule's row and its exceptions in force say about its slots."""
    return Plan(week=slot_math.parse_week(schedule.week), slot_minutes=schedule.slot_minutes,
                capacity=schedule.capacity,
                adjustments=tuple(Adjustment(e.kind, e.starts_at, e.ends_at, e.capacity)
                                  for e in exceptions if e.cancelled_at is None))


def day_window(calendar: Calendar, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The UTC bounds of local days ``first_day`` to ``last_day``, both included."""
    return (datetime.combine(first_day, time(0), calendar.zone).astimezone(UTC),
            datetime.combine(last_day + timedelta(days=1), time(0), calendar.zone).astimezone(UTC))


async def slot_at(ctx: Context, schedule_id: uuid.UUID | None, slot_start: datetime, *,
                  action: Action = Action.CREATE) -> tuple[Schedule, Slot]:
    """The active schedule of the caller's institution and its slot starting exactly at ``slot_start``.

    A schedule missing, inactive or of another institution is NOT_FOUND (field ``scheduleId``, the
    attempt recorded as ``action``: call this before opening the write's transaction); a time where
    no slot starts is BAD_USER_INPUT on ``slotStart``. No policy decision here: the caller made its own.
    """
    start = aware_time(slot_start, "slotStart")
    schedule = None if schedule_id is None else await Schedule.get_or_none(
        id=schedule_id, institution_id=ctx.institution_id, active=True)
    if schedule is None:
        raise await access.not_found(ctx, action, "schedule", schedule_id, field="scheduleId")
    calendar = await sla.calendar(ctx.institution_id)
    day = start.astimezone(calendar.zone).date()
    begin, end = day_window(calendar, day, day)
    exceptions = await ScheduleException.filter(
        institution_id=ctx.institution_id, schedule_id=schedule.id, cancelled_at=None,
        starts_at__lt=end, ends_at__gt=begin)
    slot = slot_math.slot_starting(plan_of(schedule, list(exceptions)), calendar, start)
    if slot is None:
        raise BadUserInput("slotStart: no slot of this schedule starts at this time.", field="slotStart")
    return schedule, slot
