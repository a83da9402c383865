"""The institution's SLA: targets per ticket level and the business calendar they count on."""

from __future__ import annotations

from datetime import date, time
from enum import Enum
from typing import Annotated

import strawberry

from core.sla import SlaSettings as Settings
from resolvers import sla as slas
from schema.common import Info, Version, provided


@strawberry.enum(description="How an SLA target's time counts.")
class SlaClockKind(Enum):
    CALENDAR = strawberry.enum_value("calendar", description="Every minute of every day.")
    BUSINESS = strawberry.enum_value("business", description="Working hours of the business calendar only.")


@strawberry.type(description="The targets of one ticket level.")
class SlaLevel:
    level: int = strawberry.field(description="The ticket level: 1 urgent, 2 normal, 3 suggestion.")
    first_response_minutes: int = strawberry.field(description="Minutes from receipt to the first response, counted "
                                                               "on the clock.")
    resolution_minutes: int = strawberry.field(description="Minutes from receipt to resolution, counted on the "
                                                           "clock (by default a business day is the working time "
                                                           "of the calendar's usual working day: 8 hours on the "
                                                           "standard week, 24 on a round-the-clock one).")
    clock: SlaClockKind = strawberry.field(description="How the minutes count.")
    version: int = strawberry.field(description="Pass back as `version` to slaLevelSet (0: the defaults, never "
                                                "saved).")


@strawberry.type(description="A span of working time, local time in the institution's zone.")
class WorkingInterval:
    start: time = strawberry.field(description="When work starts.")
    end: time = strawberry.field(description="When it stops; 00:00 means midnight at the end of the day.")


@strawberry.type(description="Working intervals of one weekday (1 = Monday ... 7 = Sunday).")
class WorkingDay:
    weekday: int = strawberry.field(description="1 = Monday ... 7 = Sunday.")
    intervals: list[WorkingInterval] = strawberry.field(description="Its working hours, in order.")


@strawberry.type(description="Working hours, public holidays and make-up working days.")
class BusinessCalendar:
    time_zone: str = strawberry.field(description="The institution's IANA time zone (e.g. Asia/Shanghai) the hours "
                                                  "are in.")
    week: list[WorkingDay] = strawberry.field(description="The weekdays with working hours; a weekday left out is a "
                                                          "day off.")
    workday_hours: list[WorkingInterval] = strawberry.field(description="Hours of a make-up working day.")
    holidays: list[date] = strawberry.field(description="Public holidays: no working hours that day.")
    workdays: list[date] = strawberry.field(description="Make-up working days (often weekends).")
    version: int = strawberry.field(description="Pass back as `version` to businessCalendarSet (0: the standard "
                                                "week, never saved).")


@strawberry.type(description="The SLA every ticket of the institution runs on.")
class SlaSettings:
    levels: list[SlaLevel] = strawberry.field(description="The targets of each ticket level, 1 to 3.")
    calendar: BusinessCalendar = strawberry.field(description="The calendar business-time clocks count on.")

    @classmethod
    def of(cls, settings: Settings, versions: tuple[dict[int, int], int]) -> SlaSettings:
        business = settings.business
        level_versions, calendar_version = versions
        return cls(
            levels=[SlaLevel(level=t.level, first_response_minutes=int(t.first_response.total_seconds() // 60),
                             resolution_minutes=int(t.resolution.total_seconds() // 60),
                             clock=SlaClockKind(t.clock), version=level_versions.get(t.level, 0))
                    for t in settings.targets.values()],
            calendar=BusinessCalendar(
                time_zone=business.zone.key,
                week=[WorkingDay(weekday=day + 1, intervals=_intervals(spans))
                      for day, spans in sorted(business.week.items())],
                workday_hours=_intervals(business.workday_hours),
                holidays=sorted(business.holidays),
                workdays=sorted(business.workdays),
                version=calendar_version,
            ),
        )


def _intervals(spans: tuple[tuple[time, time], ...]) -> list[WorkingInterval]:
    return [WorkingInterval(start=start, end=end) for start, end in spans]


@strawberry.input(description="A span of working time, local time in the institution's zone.")
class WorkingIntervalInput:
    start: time = strawberry.field(description="When work starts; before end.")
    end: time = strawberry.field(description="00:00 means midnight at the end of the day.")


@strawberry.input(description="The working hours of one weekday.")
class WorkingDayInput:
    weekday: int = strawberry.field(description="1 = Monday ... 7 = Sunday.")
    intervals: list[WorkingIntervalInput] = strawberry.field(description="Its working hours, in order, not "
                                                                         "overlapping.")


@strawberry.input(description="A whole business calendar; it replaces the current one. Open tickets get new due "
                              "times.")
class BusinessCalendarInput:
    week: list[WorkingDayInput] = strawberry.field(description="Weekdays left out are days off.")
    holidays: list[date] = strawberry.field(default_factory=list, description="Public holidays (days off whatever "
                                                                             "the weekday).")
    workdays: list[date] = strawberry.field(default_factory=list, description="Make-up working days.")
    workday_hours: list[WorkingIntervalInput] | None = strawberry.field(
        default=None, description="Hours of a make-up working day; default 08:00-12:00 and 13:00-17:00.")


@strawberry.type
class SlaQuery:
    @strawberry.field(description="Your institution's SLA targets and business calendar.")
    async def sla_settings(self, info: Info) -> SlaSettings:
        settings = await slas.read(info.context)
        return SlaSettings.of(settings, await slas.versions(info.context))


@strawberry.type
class SlaMutation:
    @strawberry.mutation(description="Set the targets of one level (admins). Open tickets of that level get new due "
                                     "times. Pass the level's version you read: a stale one answers CONFLICT.")
    async def sla_level_set(
        self, info: Info,
        level: Annotated[int, strawberry.argument(description="The ticket level: 1, 2 or 3.")],
        first_response_minutes: Annotated[int, strawberry.argument(
            description="The first-response target in minutes on the clock, 1 to 527040; not above "
                        "resolutionMinutes.")],
        resolution_minutes: Annotated[int, strawberry.argument(
            description="The resolution target in minutes on the clock, 1 to 527040.")],
        clock: Annotated[SlaClockKind, strawberry.argument(description="How the minutes count.")],
        version: Version = None,
    ) -> SlaSettings | None:
        await slas.set_policy(info.context, level, first_response_minutes, resolution_minutes, str(clock.value),
                              version)
        return SlaSettings.of(await slas.settings(info.context), await slas.versions(info.context))

    @strawberry.mutation(description="Replace the business calendar (admins). Pass the calendar's version you read: a "
                                     "stale one answers CONFLICT.")
    async def business_calendar_set(self, info: Info, input: Annotated[BusinessCalendarInput, strawberry.argument(
            description="The whole new calendar.")], version: Version = None) -> SlaSettings | None:
        settings = await slas.set_calendar(info.context, _calendar_data(input), version)
        return SlaSettings.of(settings, await slas.versions(info.context))


def _calendar_data(data: BusinessCalendarInput) -> dict[str, object]:
    def spans(intervals: list[WorkingIntervalInput]) -> list[dict[str, time]]:
        return [{"start": i.start, "end": i.end} for i in intervals]

    out = provided(data)
    out["week"] = [{"weekday": d.weekday, "intervals": spans(d.intervals)} for d in data.week]
    out["workday_hours"] = spans(data.workday_hours) if data.workday_hours is not None else None
    return out
