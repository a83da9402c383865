"""Slot arithmetic (FHIR Slot): a schedule's free places, computed rather than stored.

A schedule has sessions per ISO weekday in the institution's local time (``"1"`` = Monday:
``[["08:00", "12:00"], ["13:30", "17:00"]]``), cut into slots of ``slot_minutes`` with
``capacity`` places each; a session's last partial slot is dropped. The institution's business
calendar decides which days open: a holiday has no slots, a make-up working day (a weekend day
worked in place of a holiday) uses the schedule's Monday sessions. The schedule's own exceptions
come last: a leave removes every slot it overlaps, an extra session puts its own slots in its
span (replacing the regular slots it overlaps). Between a leave and an extra session the one recorded
later holds: a session added inside a leave keeps its slots (a clinician on leave who comes in for one
session), a leave recorded over a session takes them (a clinician who falls ill on the Saturday agreed).

Sessions are cut in elapsed time between their UTC bounds, as core.business_time counts working
time: a session across a daylight-saving change has the slots its real length holds. Everything
here is pure and cheap (a department's week is a few thousand slots); the caller loads the rows.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core.business_time import Calendar

Session = tuple[time, time]
MAKE_UP_WEEKDAY = 1  # make-up working days use Monday's sessions
LEAVE, EXTRA = "leave", "extra"


@dataclass(frozen=True, slots=True)
class Slot:
    """One slot: ``start`` and ``end`` in UTC, ``capacity`` places."""

    start: datetime
    end: datetime
    capacity: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A schedule exception: a leave or an extra session, aware bounds, end after start.
    ``capacity`` (extra sessions only) overrides the schedule's when set."""

    kind: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = None


@dataclass(frozen=True)
class Plan:
    """What a schedule says about its slots. ``week`` maps ISO weekdays 1..7 to sessions; ``adjustments``
    are in the order they were recorded."""

    week: Mapping[int, tuple[Session, ...]]
    slot_minutes: int
    capacity: int
    adjustments: tuple[Adjustment, ...] = ()


def parse_week(week: Mapping[str, Iterable[Iterable[str]]]) -> dict[int, tuple[Session, ...]]:
    """The stored ``{"1": [["08:00", "12:00"]]}`` as ``{1: ((time(8), time(12)),)}``."""
    parsed: dict[int, tuple[Session, ...]] = {}
    for day, sessions in week.items():
        bounds = [tuple(session) for session in sessions]
        parsed[int(day)] = tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in bounds)
    return parsed


def sessions_on(plan: Plan, calendar: Calendar, day: date) -> tuple[Session, ...]:
    """The schedule's sessions on a local day, after the institution's calendar."""
    if day in calendar.holidays:
        return ()
    if day in calendar.workdays:
        return plan.week.get(MAKE_UP_WEEKDAY, ())
    return plan.week.get(day.isoweekday(), ())


def slots(plan: Plan, calendar: Calendar, first_day: date, last_day: date) -> list[Slot]:
    """Every slot of the local days ``first_day`` to ``last_day`` (both included), by start."""
    length = timedelta(minutes=plan.slot_minutes)
    regular: list[Slot] = []
    day = first_day
    while day <= last_day:
        for opens, closes in sessions_on(plan, calendar, day):
            begin, end = _utc_bounds(calendar, day, opens, closes)
            regular.extend(_cut(begin, end, length, plan.capacity))
        day += timedelta(days=1)
    if not plan.adjustments:
        return regular
    window = (_midnight(calendar, first_day), _midnight(calendar, last_day + timedelta(days=1)))
    # only the exceptions touching the days asked for: a year-long leave costs one comparison
    near = [a for a in plan.adjustments
            if a.starts_at < window[1] + length and window[0] - length < a.ends_at]
    covered = _Spans((a.starts_at, a.ends_at) for a in near)  # leaves and extra sessions alike
    kept = [s for s in regular if not covered.overlaps(s.start, s.end)] if near else regular
    extras = _extra_slots(plan, near, window, length)
    return sorted(kept + extras, key=lambda s: s.start) if extras else kept


def slot_starting(plan: Plan, calendar: Calendar, start: datetime) -> Slot | None:
    """The slot that starts exactly at ``start`` (aware), or None."""
    day = start.astimezone(calendar.zone).date()
    wanted = start.astimezone(UTC)
    return next((s for s in slots(plan, calendar, day, day) if s.start == wanted), None)


def _utc_bounds(calendar: Calendar, day: date, opens: time, closes: time) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, opens, calendar.zone).astimezone(UTC)
    # 00:00 as an end is midnight at the end of the day, as in the business calendar
    end_day = day + timedelta(days=1) if closes == time(0) else day
    end = datetime.combine(end_day, closes, calendar.zone).astimezone(UTC)
    return begin, end


def _cut(begin: datetime, end: datetime, length: timedelta, capacity: int) -> list[Slot]:
    cut: list[Slot] = []
    start = begin
    while start + length <= end:
        cut.append(Slot(start, start + length, capacity))
        start += length
    return cut


def _extra_slots(plan: Plan, adjustments: list[Adjustment], window: tuple[datetime, datetime],
                 length: timedelta) -> list[Slot]:
    """Slots of the extra sessions that start inside ``window``, on each session's own grid, but for
    those a leave recorded after the session overlaps; where two extra sessions overlap (the API
    refuses that), the earlier one's slots win."""
    earlier: list[tuple[datetime, datetime]] = []
    extras: list[Slot] = []
    sessions = sorted(((a, n) for n, a in enumerate(adjustments) if a.kind == EXTRA),
                      key=lambda pair: pair[0].starts_at)
    for extra, position in sessions:
        begin, end = extra.starts_at.astimezone(UTC), extra.ends_at.astimezone(UTC)
        taken = _Spans(earlier + _leaves_recorded_after(adjustments, position))
        skipped = max(0, -((begin - window[0]) // length))  # whole slots before the window
        start = begin + skipped * length
        capacity = extra.capacity or plan.capacity
        while start + length <= end and start < window[1]:
            if not taken.overlaps(start, start + length):
                extras.append(Slot(start, start + length, capacity))
            start += length
        earlier.append((begin, end))
    return extras


def _leaves_recorded_after(adjustments: list[Adjustment], position: int) -> list[tuple[datetime, datetime]]:
    return [(a.starts_at, a.ends_at) for a in adjustments[position + 1:] if a.kind == LEAVE]


class _Spans:
    """Time spans merged into disjoint ones in order, so that whether a slot overlaps any of them is one binary
    search, not a comparison with each (found in review: a month of a department's slots was compared with every
    exception near it, slots x exceptions)."""

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        merged: list[list[datetime]] = []
        for begin, end in sorted(spans):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        self._begins = [begin for begin, _ in merged]
        self._ends = [end for _, end in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # the last span beginning before ``end`` is the only one that can overlap: those before it end before it
        # begins (disjoint and in order), and it overlaps when it ends after ``start``
        last = bisect_left(self._begins, end) - 1
        return last >= 0 and self._ends[last] > start


def _midnight(calendar: Calendar, day: date) -> datetime:
    return datetime.combine(day, time(0), calendar.zone).astimezone(UTC)
