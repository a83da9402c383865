"""Service-improvement reports from tickets: aggregates only, never ticket text or patient data."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import report as reports
from schema.common import Info, uuid_of
from schema.ticket import RootCause, TicketCategory, TicketChannel


@strawberry.type(description="One bar of the complaint Pareto chart.")
class ParetoBar:
    cause: RootCause | None = strawberry.field(description="Null: complaints without a root cause yet.")
    complaints: int = strawberry.field(description="Complaints with this root cause received in the period.")
    share: float = strawberry.field(description="Of all complaints in the period, 0 to 1.")
    cumulative_share: float = strawberry.field(description="This bar and every bar before it, 0 to 1.")


@strawberry.type(description="Durations from receipt, in wall-clock minutes (nearest-rank percentiles).")
class Durations:
    count: int = strawberry.field(description="Tickets of the month that have reached this point (responded, or "
                                              "resolved).")
    median_minutes: float | None = strawberry.field(description="The median, in minutes; null when count is 0.")
    p90_minutes: float | None = strawberry.field(description="The 90th percentile, in minutes; null when count is 0.")


@strawberry.type(description="How many tickets came in on one channel.")
class ChannelCount:
    channel: TicketChannel = strawberry.field(description="The channel the tickets came in on.")
    tickets: int = strawberry.field(description="Tickets received on it in the month.")


@strawberry.type(description="How many tickets were of one category.")
class CategoryCount:
    category: TicketCategory = strawberry.field(description="The category the tickets were filed under.")
    tickets: int = strawberry.field(description="Tickets of the category received in the month.")


@strawberry.type(description="A department's tickets received in one month.")
class TicketReport:
    department_id: strawberry.ID = strawberry.field(description="The department reported on.")
    month: str = strawberry.field(description="The month, YYYY-MM, in the institution's time zone.")
    tickets: int = strawberry.field(description="Tickets received in the month.")
    by_channel: list[ChannelCount] = strawberry.field(description="Tickets per channel (channels with none left "
                                                                  "out).")
    by_category: list[CategoryCount] = strawberry.field(description="Tickets per category (categories with none "
                                                                     "left out).")
    first_response: Durations = strawberry.field(description="Time from receipt to the first response.")
    resolution: Durations = strawberry.field(description="Time from receipt to resolution.")
    sla_compliance_rate: float | None = strawberry.field(
        description="Of the tickets whose SLA outcome is decided, the share that met both targets: a fraction 0 to 1, "
                    "not a percent; null if none.")
    complaints: int = strawberry.field(description="Complaints received in the month.")
    patients_served: int = strawberry.field(description="Patients seen by the department in the month (a finished "
                                                        "visit ending in it, by its local date), each once.")
    complaint_rate_per_1000: float | None = strawberry.field(description="Complaints per 1,000 patients served; "
                                                                         "null when it serves none.")

    @classmethod
    def of(cls, report: reports.MonthlyReport) -> TicketReport:
        return cls(
            department_id=strawberry.ID(str(report.department_id)), month=report.month, tickets=report.tickets,
            by_channel=[ChannelCount(channel=TicketChannel(c), tickets=n)
                        for c, n in sorted(report.by_channel.items())],
            by_category=[CategoryCount(category=TicketCategory(c), tickets=n)
                         for c, n in sorted(report.by_category.items())],
            first_response=Durations(count=report.first_response.count,
                                     median_minutes=report.first_response.median_minutes,
                                     p90_minutes=report.first_response.p90_minutes),
            resolution=Durations(count=report.resolution.count, median_minutes=report.resolution.median_minutes,
                                 p90_minutes=report.resolution.p90_minutes),
            sla_compliance_rate=report.sla_compliance_rate, complaints=report.complaints,
            patients_served=report.patients_served, complaint_rate_per_1000=report.complaint_rate_per_1000)


@strawberry.type
class ReportQuery:
    @strawberry.field(description="Complaints received in a period (days inclusive, institution time) by root "
                                  "cause, most frequent first: fix the few causes behind most complaints first. One "
                                  "bar per RootCause value with complaints, and one with a null cause for those not "
                                  "classified yet.")
    async def complaint_pareto(
        self, info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="The first day, inclusive.")],
        to: Annotated[date, strawberry.argument(description="The last day, inclusive; at most six years after "
                                                            "`from`.")],
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="One of your departments; null: the whole institution (who reaches every "
                        "department).")] = None,
    ) -> list[ParetoBar]:
        bars = await reports.complaint_pareto(info.context, from_, to, uuid_of(department_id, "departmentId"))
        return [ParetoBar(cause=None if b.cause == reports.UNCLASSIFIED else RootCause(b.cause),
                          complaints=b.complaints, share=b.share, cumulative_share=b.cumulative_share) for b in bars]

    @strawberry.field(description="A department's tickets of one month (YYYY-MM): volume, response and resolution "
                                  "times, SLA compliance and complaint rate.")
    async def ticket_report(
        self, info: Info,
        month: Annotated[str, strawberry.argument(description="The month, YYYY-MM.")],
        department_id: Annotated[strawberry.ID, strawberry.argument(description="One of your departments.")],
    ) -> TicketReport:
        department = uuid_of(department_id, "departmentId")
        assert department is not None  # a non-null argument
        return TicketReport.of(await reports.monthly(info.context, month, department))
