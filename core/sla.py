"""The SLA clock of a ticket target (first response or resolution), computed exactly.

A clock starts when the ticket is received, pauses while the ticket waits on the patient and
stops when the target is met. Time counts on a ``Calendar`` (business hours, or every minute for
calendar time). The due time is the moment the working time used, pauses excluded, reaches the
target; the at-risk time is when it reaches 80 % of it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.business_time import Calendar

AT_RISK_SHARE = 0.8

Pause = tuple[datetime, datetime | None]  # (paused at, resumed at; None while still paused)


class SlaState(enum.StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"  # stopped within the target
    MISSED = "missed"  # stopped after the due time


@dataclass(frozen=True)
class Clock:
    started_at: datetime
    target: timedelta
    calendar: Calendar
    pauses: Sequence[Pause] = ()
    stopped_at: datetime | None = None

    def _shifted(self, budget: timedelta) -> datetime | None:
        """When ``budget`` of working time is used, counting only the pauses that begin before it."""
        moment = self.calendar.add(self.started_at, budget)
        for paused_at, resumed_at in sorted(self.pauses, key=lambda p: p[0]):
            if paused_at >= moment or (self.stopped_at is not None and paused_at >= self.stopped_at):
                break  # a pause after the due time, or after the target was met, moves nothing
            if resumed_at is None:
                return None  # still paused: the moment is not known yet
            moment = self.calendar.add(moment, self.calendar.between(paused_at, resumed_at))
        return moment

    @property
    def due_at(self) -> datetime | None:
        """None while paused before the due time (the clock is not running)."""
        return self._shifted(self.target)

    @property
    def at_risk_at(self) -> datetime | None:
        return self._shifted(self.target * AT_RISK_SHARE)

    def used(self, now: datetime) -> timedelta:
        """Working time used by ``now`` (or by the stop), pauses excluded."""
        end = min(now, self.stopped_at) if self.stopped_at else now
        used = self.calendar.between(self.started_at, end)
        for paused_at, resumed_at in self.pauses:
            if paused_at < end:
                used -= self.calendar.between(paused_at, min(resumed_at or end, end))
        return max(used, timedelta(0))

    def state(self, now: datetime) -> SlaState:
        used = self.used(now)
        if self.stopped_at is not None:
            return SlaState.MET if used <= self.target else SlaState.MISSED
        if used >= self.target:  # from the due time on
            return SlaState.BREACHED
        if self.pauses and self.pauses[-1][1] is None:
            return SlaState.PAUSED
        return SlaState.AT_RISK if used >= self.target * AT_RISK_SHARE else SlaState.ON_TRACK

    def time_left(self, now: datetime) -> timedelta:
        """Working time left before the due time; negative once breached."""
        return self.target - self.used(now)


@dataclass(frozen=True)
class Target:
    """An institution's targets for one ticket level, on one clock ("calendar" or "business")."""

    level: int
    first_response: timedelta
    resolution: timedelta
    clock: str


@dataclass(frozen=True)
class SlaSettings:
    """An institution's targets and its two clocks: business hours and plain calendar time."""

    targets: dict[int, Target]
    business: Calendar
    calendar: Calendar

    def calendar_for(self, level: int) -> Calendar:
        return self.calendar if self.targets[level].clock == "calendar" else self.business
