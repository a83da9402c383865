"""Business time: adding and measuring working time on an institution's calendar.

A calendar has working hours per weekday in the institution's time zone, public holidays (no work
even on a weekday) and make-up working days (work on a weekend day, with a standard weekday's
hours: Chinese public holidays move working days onto weekends). ``CALENDAR_TIME`` counts every
minute of every day (the level-1 SLA runs on calendar time).

All arithmetic is exact to the microsecond and done in UTC between the local working intervals,
so daylight-saving changes and odd zone offsets need no special cases.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[time, time]

# Monday to Friday, 08:00-12:00 and 13:00-17:00 (the lunch break is not working time).
STANDARD_DAY: tuple[Interval, ...] = ((time(8), time(12)), (time(13), time(17)))
STANDARD_WEEK: Mapping[int, tuple[Interval, ...]] = {day: STANDARD_DAY for day in range(5)}

# A calendar never looks further than this for working time: ten years without one working
# minute means the calendar is wrong, not that the ticket is due in eleven.
_HORIZON_DAYS = 3660


def _length(interval: Interval) -> timedelta:
    """An interval's length on a day without a clock change; a close at 00:00 is the day's end."""
    opens, closes = interval
    day = date(2000, 1, 1)
    end = datetime.combine(day, closes) if closes != time(0) else datetime.combine(day + timedelta(days=1), closes)
    return end - datetime.combine(day, opens)


class NoWorkingTime(ValueError):
    """The calendar has no working time within its horizon."""


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    week: Mapping[int, tuple[Interval, ...]] = field(default_factory=lambda: STANDARD_WEEK)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # make-up working days
    workday_hours: tuple[Interval, ...] = STANDARD_DAY
    always: bool = False  # calendar time: every minute counts

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.workday_hours
        return self.week.get(day.weekday(), ())

    def business_day(self) -> timedelta:
        """The working time of one business day: the length most of the week's working days have, the longer on a
        tie (8 hours on the standard week, 24 on a round-the-clock one, 4 on a mornings-only one). SLA targets
        in business days count this much working time each."""
        lengths = [sum((_length(interval) for interval in intervals), timedelta())
                   for intervals in self.week.values() if intervals]
        if not lengths:
            return sum((_length(interval) for interval in STANDARD_DAY), timedelta())
        return max(lengths, key=lambda length: (lengths.count(length), length))

    def working_day_from(self, day: date) -> date:
        """``day`` if it has working hours, else the next day that has (holidays and weekends skipped)."""
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if self.intervals_on(current):
                return current
        raise NoWorkingTime("The calendar has no working time in the next ten years.")

    def _working(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals in UTC from the local day containing ``start`` onwards."""
        day = start.astimezone(self.zone).date()
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            for opens, closes in self.intervals_on(current):
                begin = datetime.combine(current, opens, self.zone).astimezone(UTC)
                end = (datetime.combine(current, closes, self.zone) if closes != time(0)
                       else datetime.combine(current + timedelta(days=1), time(0), self.zone)).astimezone(UTC)
                if end > begin:
                    yield begin, end

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of working time after ``start``; ``start`` itself for none (a closing time
        stays a closing time: a pause with no working time in it moves no due time)."""
        if self.always:
            return start + duration
        if not duration:
            return start
        remaining = duration
        for begin, end in self._working(start):
            if end <= start:
                continue
            begin = max(begin, start)
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise NoWorkingTime("The calendar has no working time in the next ten years.")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end`` (zero when ``end`` is not after ``start``)."""
        if end <= start:
            return timedelta(0)
        if self.always:
            return end - start
        total = timedelta(0)
        for begin, close in self._working(start):
            if begin >= end:
                break
            overlap = min(close, end) - max(begin, start)
            if overlap > timedelta(0):
                total += overlap
        return total


def calendar_time(zone: ZoneInfo) -> Calendar:
    return Calendar(zone=zone, week={}, always=True)
