"""An institution's SLA: targets per ticket level and the business calendar they count on.

Defaults come from the institutions' documents (shared/domain.md): level 1 answers within 30
minutes and resolves within 24 hours, calendar time; level 2 within 2 working hours and 1
business day; level 3 within 1 and 5 business days. A business day is the working time of the
calendar's usual working day (``Calendar.business_day``): 8 hours on the standard week
(08:00-12:00 and 13:00-17:00, Monday to Friday), 24 on a round-the-clock one. VIP patients get
their adviser's first response within 30 minutes of calendar time whatever the level.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.business_time import STANDARD_DAY, STANDARD_WEEK, Calendar, Interval, calendar_time
from core.errors import BadUserInput
from core.sla import Clock, Pause, SlaSettings, SlaState, Target
from core.validation import Problems, check_year
from models import BusinessCalendar, SlaPolicy, Ticket, TicketEvent
from models.sla import CLOCKS
from models.ticket import OPEN_STATUSES, STOPPED_STATUSES
from resolvers import access, notification, versioning
from resolvers import institution as institutions
from resolvers.context import Context

LEVELS = (1, 2, 3)
VIP_FIRST_RESPONSE = timedelta(minutes=30)
MAX_TARGET_MINUTES = 60 * 24 * 366
MAX_DATES = 400
# Open tickets recomputed per round of statements after a change of targets or calendar. A statement takes at most
# 32,767 parameters on either database: a round's UPDATE of the tickets takes 21 a ticket (7 columns, each an id, a
# value and the id again), its escalations' UPDATE 6 a row and their INSERT about a dozen a row (4 rows a ticket at
# most): 200 tickets stay far below it.
RECOMPUTE_BATCH = 200
RECOMPUTED_COLUMNS = ("response_due_at", "response_at_risk_at", "resolution_due_at", "resolution_at_risk_at",
                      "next_due_at", "next_at_risk_at", "updated_at")


def default_targets(business_day: timedelta) -> dict[int, Target]:
    """The domain's targets (above), a business day being the calendar's: a fixed 8 hours made one business day
    three on a round-the-clock calendar and two on a mornings-only one (found in review)."""
    return {1: Target(1, timedelta(minutes=30), timedelta(hours=24), "calendar"),
            2: Target(2, timedelta(hours=2), business_day, "business"),
            3: Target(3, business_day, 5 * business_day, "business")}


async def load(institution_id: uuid.UUID) -> SlaSettings:
    zone = await institutions.zone(institution_id)
    rows = {p.level: p for p in await SlaPolicy.filter(institution_id=institution_id)}
    business = await calendar(institution_id, zone)
    defaults = default_targets(business.business_day())
    targets = {level: Target(level, timedelta(minutes=rows[level].first_response_minutes),
                             timedelta(minutes=rows[level].resolution_minutes), rows[level].clock)
               if level in rows else defaults[level] for level in LEVELS}
    return SlaSettings(targets, business, calendar_time(zone))


async def calendar(institution_id: uuid.UUID, zone: ZoneInfo | None = None) -> Calendar:
    """The institution's business calendar (the standard week until it sets one)."""
    zone = zone or await institutions.zone(institution_id)
    stored = await BusinessCalendar.get_or_none(institution_id=institution_id)
    return _calendar(zone, stored) if stored else Calendar(zone=zone)


async def settings(ctx: Context) -> SlaSettings:
    """The caller's institution's SLA, loaded once per request."""
    if ctx.sla is None:  # one load, shared by the fields of a list that ask at the same time
        ctx.sla = asyncio.ensure_future(load(ctx.institution_id))
    return await ctx.sla


# -- changing it (admins) ------------------------------------------------------------------


async def set_policy(ctx: Context, level: int, first_response_minutes: int, resolution_minutes: int,
                     clock: str, version: int | None = None) -> Target:
    decision = await access.authorize(ctx, "sla", "update", action=Action.UPDATE, resource_type="sla_policy")
    _check_targets(level, first_response_minutes, resolution_minutes, clock)
    async with in_transaction():
        row = await SlaPolicy.filter(institution_id=ctx.institution_id, level=level).select_for_update().first()
        values: dict[str, Any] = {"first_response_minutes": first_response_minutes,
                                  "resolution_minutes": resolution_minutes, "clock": clock}
        if row is None:
            versioning.check_version(UNSAVED, version, "SLA level")
            row = await SlaPolicy.create(institution_id=ctx.institution_id, level=level, **values)
        else:
            await versioning.update_versioned(row, version, "SLA level", **values)
        await writer.append([access.write_record(ctx, Action.UPDATE, "sla_policy", row.id,
                                                 fields=frozenset(values), decision=decision)])
        ctx.sla = None
        await recompute_open(ctx, level=level)
    ctx.services.outbox.scheduled.set()  # committed: due times may have moved
    return (await settings(ctx)).targets[level]


def _check_targets(level: int, first_response_minutes: int, resolution_minutes: int, clock: str) -> None:
    """Every problem of one level's targets at once."""
    problems = Problems()
    if level not in LEVELS:
        problems.add("level", "out_of_range", "must be 1, 2 or 3.")
    for name, minutes in (("firstResponseMinutes", first_response_minutes), ("resolutionMinutes", resolution_minutes)):
        if not 1 <= minutes <= MAX_TARGET_MINUTES:
            problems.add(name, "out_of_range", f"must be between 1 and {MAX_TARGET_MINUTES}.")
    if first_response_minutes > resolution_minutes and not problems.has("firstResponseMinutes") \
            and not problems.has("resolutionMinutes"):
        problems.add("firstResponseMinutes", "out_of_range", "must not exceed resolutionMinutes.")
    if clock not in CLOCKS:
        problems.add("clock", "invalid_choice", "unknown clock.")
    problems.check()


async def set_calendar(ctx: Context, data: dict[str, Any], version: int | None = None) -> SlaSettings:
    decision = await access.authorize(ctx, "sla", "update", action=Action.UPDATE, resource_type="business_calendar")
    columns = _calendar_columns(data)
    async with in_transaction():
        row = await BusinessCalendar.filter(institution_id=ctx.institution_id).select_for_update().first()
        if row is None:
            versioning.check_version(UNSAVED, version, "business calendar")
            row = await BusinessCalendar.create(institution_id=ctx.institution_id, **columns)
        else:
            await versioning.update_versioned(row, version, "business calendar", **columns)
        await writer.append([access.write_record(ctx, Action.UPDATE, "business_calendar", row.id,
                                                 fields=frozenset(columns), decision=decision)])
        ctx.sla = None
        await recompute_open(ctx)
    ctx.services.outbox.scheduled.set()
    return await settings(ctx)


@dataclass(frozen=True)
class Unsaved:
    """The defaults before an admin first saves them: version 0."""

    version: int = 0


UNSAVED = Unsaved()


async def versions(ctx: Context) -> tuple[dict[int, int], int]:
    """The version of each level's targets and of the calendar (0: the defaults, never saved)."""
    levels = {int(level): int(version) for level, version in await SlaPolicy.filter(
        institution_id=ctx.institution_id).values_list("level", "version")}
    stored = await BusinessCalendar.get_or_none(institution_id=ctx.institution_id)
    return {level: levels.get(level, 0) for level in LEVELS}, 0 if stored is None else stored.version


async def read(ctx: Context) -> SlaSettings:
    await access.authorize(ctx, "sla", "read", action=Action.READ, resource_type="sla_policy")
    return await settings(ctx)


# -- a ticket's clocks ----------------------------------------------------------------------

def pauses(events: list[TicketEvent]) -> list[Pause]:
    """Spans the clocks stand still: waiting on the patient, and resolved until reopened.

    While a ticket stays resolved its clocks are stopped, not paused (they say MET or MISSED),
    so a stop that lasts is not returned as a pause.
    """
    spans: list[Pause] = []
    transitions = [e for e in events if e.kind == "transition"]
    for event in transitions:
        if event.to_status == "waiting_on_patient" or (
                event.to_status in STOPPED_STATUSES and event.from_status not in STOPPED_STATUSES):
            spans.append((event.occurred_at, None))
        elif spans and spans[-1][1] is None and event.to_status in OPEN_STATUSES:
            spans[-1] = (spans[-1][0], event.occurred_at)
    if spans and spans[-1][1] is None and transitions[-1].to_status in STOPPED_STATUSES:
        spans.pop()
    return spans


def clocks(ticket: Ticket, events: list[TicketEvent], sla: SlaSettings) -> tuple[Clock, Clock]:
    """(first response, resolution) clocks of a ticket; ``events`` in timeline order."""
    target = sla.targets[ticket.level]
    spans = pauses(events)
    response = Clock(ticket.received_at, target.first_response, sla.calendar_for(ticket.level), spans,
                     ticket.first_responded_at)
    if ticket.vip:  # the adviser's 30 minutes of calendar time, unless the level promises sooner
        adviser = Clock(ticket.received_at, VIP_FIRST_RESPONSE, sla.calendar, spans, ticket.first_responded_at)
        if response.due_at is None or (adviser.due_at is not None and adviser.due_at < response.due_at):
            response = adviser
    resolution = Clock(ticket.received_at, target.resolution, sla.calendar_for(ticket.level), spans,
                       ticket.resolved_at)
    return response, resolution


def due_columns(ticket: Ticket, events: list[TicketEvent], sla: SlaSettings) -> dict[str, datetime | None]:
    """The stored due times. While the ticket waits on the patient nothing is pending (``next_due_at`` null):
    a ticket paused after its due time would otherwise sort first in the queue as breached."""
    response, resolution = clocks(ticket, events, sla)
    pending = response if ticket.first_responded_at is None else resolution if ticket.resolved_at is None else None
    if waiting_on_patient(ticket):
        pending = None
    return {
        "response_due_at": response.due_at, "response_at_risk_at": response.at_risk_at,
        "resolution_due_at": resolution.due_at, "resolution_at_risk_at": resolution.at_risk_at,
        "next_due_at": pending.due_at if pending else None,
        "next_at_risk_at": pending.at_risk_at if pending else None,
    }


@dataclass(frozen=True)
class ClockView:
    state: SlaState
    due_at: datetime | None
    at_risk_at: datetime | None
    time_left_seconds: int | None


def waiting_on_patient(ticket: Ticket) -> bool:
    """Whether the ticket's running clocks stand still: it waits on the patient."""
    return bool(ticket.status == "waiting_on_patient")


def view(ticket: Ticket, target: str, sla: SlaSettings, now: datetime) -> ClockView:
    """Where a target stands, from the stored due times alone (no timeline needed for a list). A target not
    yet met is PAUSED while the ticket waits on the patient, even past its due time: no time left that keeps
    falling (it counts again, from where it stood, once the ticket is worked on again)."""
    due, at_risk, stopped = ((ticket.response_due_at, ticket.response_at_risk_at, ticket.first_responded_at)
                             if target == "response" else
                             (ticket.resolution_due_at, ticket.resolution_at_risk_at, ticket.resolved_at))
    calendar = _response_calendar(ticket, due, sla) if target == "response" else sla.calendar_for(ticket.level)
    if stopped is not None:
        # "within 30 minutes": a response at the due time meets it (as core.sla.Clock.state has it)
        state = SlaState.MET if due is not None and stopped <= due else SlaState.MISSED
        return ClockView(state, due, at_risk, None)
    if due is None or waiting_on_patient(ticket):
        return ClockView(SlaState.PAUSED, None, None, None)
    left = calendar.between(now, due) if now < due else -calendar.between(due, now)
    if now >= due:
        state = SlaState.BREACHED
    else:
        state = SlaState.AT_RISK if at_risk is not None and now >= at_risk else SlaState.ON_TRACK
    return ClockView(state, due, at_risk, int(left.total_seconds()))


def _response_calendar(ticket: Ticket, due: datetime | None, sla: SlaSettings) -> Calendar:
    """The calendar of the clock that set the first-response due time (see ``clocks``): a VIP's is the adviser's
    calendar time unless the level's own clock came sooner, which only a target under 30 minutes can, and did when
    the target's whole working time lies before the due time (the adviser's clock ends with less: it is the
    sooner). Told from the stored due time alone, which holds because no pause comes before the first response:
    a new ticket's only way on is ``acknowledged``, which records the response (``ticket.TRANSITIONS``)."""
    level = sla.calendar_for(ticket.level)
    target = sla.targets[ticket.level].first_response
    if not ticket.vip or due is None or target >= VIP_FIRST_RESPONSE:
        return sla.calendar if ticket.vip else level
    return level if level.between(ticket.received_at, due) >= target else sla.calendar


async def recompute(ctx: Context, ticket: Ticket) -> dict[str, datetime | None]:
    """Store a ticket's due times afresh and reschedule its escalations; inside the caller's transaction."""
    events = await TicketEvent.filter(ticket_id=ticket.id).order_by("occurred_at", "id")
    columns: dict[str, datetime | None] = {**due_columns(ticket, events, await settings(ctx)),
                                           "updated_at": datetime.now(UTC)}
    await Ticket.filter(id=ticket.id).update(**columns)
    for name, value in columns.items():
        setattr(ticket, name, value)
    await notification.schedule_escalations(ticket)
    return columns


async def recompute_open(ctx: Context, level: int | None = None) -> int:
    """After a change of targets or calendar: every open ticket (of one level) gets new due times; inside the
    caller's transaction. The tickets are locked (in id order, as one statement) until it ends (found in review: read
    unlocked, a ticket resolved meanwhile got its due times from the stale copy and its cancelled escalations
    scheduled again): a transition waits for the recompute, or the recompute for it, and reads the ticket as it is
    then (PostgreSQL checks a locked row's condition again: one resolved meanwhile drops out). A fixed number of
    statements per ``RECOMPUTE_BATCH`` tickets, read and locked a batch at a time (``recompute_many``), whatever their
    number (found in review: about four per open ticket, an institution's every open ticket in the admin's one
    request, all of them in memory at once)."""
    query = Ticket.filter(institution_id=ctx.institution_id, status__in=OPEN_STATUSES)
    query = query.filter(level=level) if level is not None else query
    count, after = 0, None
    while True:  # a batch at a time, by id (the lock order), so memory holds one batch (found on re-reading: all)
        batch = await (query.filter(id__gt=after) if after else query).order_by("id").limit(RECOMPUTE_BATCH) \
            .select_for_update()
        await recompute_many(ctx, batch)
        count += len(batch)
        if len(batch) < RECOMPUTE_BATCH:
            return count
        after = batch[-1].id


async def recompute_many(ctx: Context, tickets: list[Ticket]) -> None:
    """``recompute`` for several tickets at once, with the same results: their timelines read in one statement, their
    due times written in one (an UPDATE choosing each row's values by id), their escalations brought in line in at
    most four (``notification.schedule_escalations_of``). Inside the caller's transaction, the tickets locked."""
    if not tickets:
        return
    sla = await settings(ctx)
    timelines: dict[uuid.UUID, list[TicketEvent]] = {ticket.id: [] for ticket in tickets}
    for event in await TicketEvent.filter(ticket_id__in=list(timelines)).order_by("occurred_at", "id"):
        timelines[event.ticket_id].append(event)  # each ticket's in timeline order, as ``recompute`` reads it
    now = datetime.now(UTC)
    for ticket in tickets:
        for name, value in {**due_columns(ticket, timelines[ticket.id], sla), "updated_at": now}.items():
            setattr(ticket, name, value)
    await Ticket.bulk_update(tickets, fields=RECOMPUTED_COLUMNS)
    await notification.schedule_escalations_of(tickets)


# -- the calendar as stored ------------------------------------------------------------------


def _calendar(zone: ZoneInfo, row: BusinessCalendar) -> Calendar:
    return Calendar(
        zone=zone,
        week={int(day) - 1: _intervals(spans) for day, spans in dict(row.week).items()},
        holidays=frozenset(date.fromisoformat(d) for d in row.holidays),
        workdays=frozenset(date.fromisoformat(d) for d in row.workdays),
        workday_hours=_intervals(row.workday_hours),
    )


def _intervals(spans: list[list[str]]) -> tuple[Interval, ...]:
    return tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in spans)


def _calendar_columns(data: dict[str, Any]) -> dict[str, Any]:
    """Check a calendar from the API: weekdays 1-7 at most once, ordered non-overlapping intervals. Every
    problem at once."""
    problems = Problems()
    week: dict[str, list[list[str]]] = {}
    for day in data.get("week") or []:
        if problems.has("week"):  # the week's first problem is enough
            break
        weekday = day["weekday"]
        if not 1 <= weekday <= 7 or str(weekday) in week:
            problems.add("week", "invalid", "each weekday (1 = Monday ... 7 = Sunday) at most once.")
            continue
        with problems.collect("week"):
            week[str(weekday)] = _checked(day["intervals"], "week")
    workday_hours: list[list[str]] = []
    if data.get("workday_hours") is not None:
        with problems.collect("workdayHours"):
            workday_hours = _checked(data["workday_hours"], "workdayHours")
    else:
        workday_hours = [[s.isoformat("minutes"), e.isoformat("minutes")] for s, e in STANDARD_DAY]
    holidays = sorted({d.isoformat() for d in data.get("holidays") or []})
    workdays = sorted({d.isoformat() for d in data.get("workdays") or []})
    for name, days in (("holidays", data.get("holidays") or []), ("workdays", data.get("workdays") or [])):
        with problems.collect(name):
            for day in days:
                check_year(day, name)  # deadlines are counted over these days
    for name, dates in (("holidays", holidays), ("workdays", workdays)):
        if len(dates) > MAX_DATES:
            problems.add(name, "too_many", f"at most {MAX_DATES} dates.")
    if set(holidays) & set(workdays) and not problems.has("workdays"):
        problems.add("workdays", "invalid", "a date cannot be both a holiday and a make-up working day.")
    if not week and data.get("week") is None:
        week = {str(d + 1): [[s.isoformat("minutes"), e.isoformat("minutes")] for s, e in spans]
                for d, spans in STANDARD_WEEK.items()}
    if not any(week.values()) and not problems.has("week"):  # business-time targets would never fall due
        problems.add("week", "invalid", "give working hours on at least one weekday.")
    problems.check()
    return {"week": week, "workday_hours": workday_hours, "holidays": holidays, "workdays": workdays}


def _checked(intervals: list[dict[str, time]], field: str) -> list[list[str]]:
    out: list[list[str]] = []
    previous_end: time | None = None
    for interval in intervals:
        start, end = interval["start"], interval["end"]
        if start.tzinfo is not None or end.tzinfo is not None or start.second or end.second:
            raise BadUserInput(f"{field}: times are local, in whole minutes.", field=field)
        ends = end if end != time(0) else time.max  # 00:00 as an end is midnight at the end of the day
        if not start < ends or (previous_end is not None and start < previous_end):
            raise BadUserInput(f"{field}: intervals must be ordered, each ending after it starts.", field=field)
        previous_end = ends
        out.append([start.isoformat("minutes"), end.isoformat("minutes")])
    if len(out) > 6:
        raise BadUserInput(f"{field}: at most 6 intervals a day.", field=field)
    return out
