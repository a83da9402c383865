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
    complaints: int
    share: float = strawberry.field(description="Of all complaints in the period, 0 to 1.")
    cumulative_share: float = strawberry.field(description="This bar and every bar before it, 0 to 1.")


@strawberry.type(description="Durations from receipt, in wall-clock minutes (nearest-rank percentiles).")
class Durations:
    count: int
    median_minutes: float | None
    p90_minutes: float | None


@strawberry.type
class ChannelCount:
    channel: TicketChannel
    tickets: int


@strawberry.type
class CategoryCount:
    category: TicketCategory
    tickets: int


@strawberry.type(description="A department's tickets received in one month.")
class TicketReport:
    department_id: strawberry.ID
    month: str
    tickets: int
    by_channel: list[ChannelCount]
    by_category: list[CategoryCount]
    first_response: Durations
    resolution: Durations
    sla_compliance_rate: float | None = strawberry.field(
        description="Of the tickets whose SLA outcome is decided, the share that met both targets; null if none.")
    complaints: int
    patients_served: int = strawberry.field(description="Active patient files of the department.")
    complaint_rate_per_1000: float | None

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
                                  "cause, most frequent first: fix the few causes behind most complaints first.")
    async def complaint_pareto(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date,
                               department_id: strawberry.ID | None = None) -> list[ParetoBar]:
        bars = await reports.complaint_pareto(info.context, from_, to, uuid_of(department_id, "departmentId"))
        return [ParetoBar(cause=None if b.cause == reports.UNCLASSIFIED else RootCause(b.cause),
                          complaints=b.complaints, share=b.share, cumulative_share=b.cumulative_share) for b in bars]

    @strawberry.field(description="A department's tickets of one month (YYYY-MM): volume, response and resolution "
                                  "times, SLA compliance and complaint rate.")
    async def ticket_report(self, info: Info, month: str, department_id: strawberry.ID) -> TicketReport:
        department = uuid_of(department_id, "departmentId")
        assert department is not None  # a non-null argument
        return TicketReport.of(await reports.monthly(info.context, month, department))
