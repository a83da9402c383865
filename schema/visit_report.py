"""The care journey's monthly figures for a department (aggregates only)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import visit_report as visit_reports
from schema.common import Info, uuid_of
from schema.report import Durations
from schema.visit import VisitKind


@strawberry.type(description="Visits of one kind.")
class VisitKindCount:
    kind: VisitKind = strawberry.field(description="The kind of visit counted on this line.")
    visits: int = strawberry.field(description="Visits of the kind finished in the month.")


@strawberry.type(description="Follow-up tasks of the department due in the month (cancelled ones left out).")
class FollowUpFigures:
    due: int = strawberry.field(description="Tasks due in the month.")
    done_on_time: int = strawberry.field(description="Completed on or before the local due date.")
    done_late: int = strawberry.field(description="Completed after the due date.")
    not_reached: int = strawberry.field(description="Marked failed: the patient could not be reached.")
    still_open: int = strawberry.field(description="Not done yet.")
    completion_rate: float | None = strawberry.field(description="(On time + late) / due, a fraction 0 to 1, not a "
                                                                  "percent; null without tasks.")


@strawberry.type(description="A department's month of the care journey: visits, follow-up, satisfaction, retention "
                             "and waiting time. Definitions are in docs/care-journey.md.")
class VisitReport:
    department_id: strawberry.ID = strawberry.field(description="The department reported on.")
    month: str = strawberry.field(description="The month, YYYY-MM, in the institution's time zone.")
    visits_by_kind: list[VisitKindCount] = strawberry.field(description="Visits finished in the month, by kind.")
    no_shows: int = strawberry.field(description="Visits planned in the month that the patient missed.")
    follow_up: FollowUpFigures = strawberry.field(description="The month's follow-up calls.")
    satisfaction_responses: int = strawberry.field(description="Outcome forms completed in the month with a score.")
    average_satisfaction: float | None = strawberry.field(description="Their mean score, 1 to 5; null without a "
                                                                       "response.")
    retention_months: int = strawberry.field(description="N: the window for a return visit.")
    patients_seen: int = strawberry.field(description="Patients with a finished visit of the department in the month.")
    patients_returned: int = strawberry.field(description="Of them, those with another finished visit within N months.")
    retention_rate: float | None = strawberry.field(description="Returned / seen, a fraction 0 to 1, not a percent "
                                                                 "(the seeds aim at 0.9 or more); null when nobody was "
                                                                 "seen.")
    waiting_time: Durations = strawberry.field(description="Arrival to start of the visits started in the month.")

    @classmethod
    def of(cls, report: visit_reports.VisitReport) -> VisitReport:
        figures = report.follow_up
        return cls(
            department_id=strawberry.ID(str(report.department_id)), month=report.month,
            visits_by_kind=[VisitKindCount(kind=VisitKind(kind), visits=n)
                            for kind, n in sorted(report.visits_by_kind.items())],
            no_shows=report.no_shows,
            follow_up=FollowUpFigures(due=figures.due, done_on_time=figures.done_on_time, done_late=figures.done_late,
                                      not_reached=figures.not_reached, still_open=figures.still_open,
                                      completion_rate=figures.completion_rate),
            satisfaction_responses=report.satisfaction_responses, average_satisfaction=report.average_satisfaction,
            retention_months=report.retention_months, patients_seen=report.patients_seen,
            patients_returned=report.patients_returned, retention_rate=report.retention_rate,
            waiting_time=Durations(count=report.waiting_time.count, median_minutes=report.waiting_time.median_minutes,
                                   p90_minutes=report.waiting_time.p90_minutes))


@strawberry.type
class VisitReportQuery:
    @strawberry.field(description="A department's month of visits and follow-up (department heads, their departments).")
    async def visit_report(
        self, info: Info,
        month: Annotated[str, strawberry.argument(description="The month, YYYY-MM.")],
        department_id: Annotated[strawberry.ID, strawberry.argument(description="One of your departments.")],
        retention_months: Annotated[int, strawberry.argument(
            description="N, the window for a return visit that counts as retained: 1 to 24 months.")] = 12,
    ) -> VisitReport:
        department = uuid_of(department_id, "departmentId")
        assert department is not None  # a non-null argument
        report = await visit_reports.monthly(info.context, month, department, retention_months)
        return VisitReport.of(report)
