"""The care journey's monthly figures for a department: visits, follow-up, satisfaction, retention and
waiting time, the first of the seeds' KPIs (retention at least 90 %, waiting time down 40 %).

Aggregates only: no patient is named and nothing is decrypted; reading one is one audited read of
the report. Months are calendar months in the institution's time zone. Definitions:
- visits: visits of the department that FINISHED in the month (by the local date they ended), by
  kind; no-shows: visits planned in the month that were marked NO_SHOW;
- follow-up: tasks of the department due in the month (by due date), cancelled ones left out; done
  on time: completed on or before the local due date; done late: completed after it; not reached:
  marked failed; completion rate: (on time + late) / due;
- satisfaction: the mean of the 1-5 scores of the outcome forms completed in the month;
- retention: of the patients with a finished visit of the department in the month, the share who
  finished another visit anywhere in the institution within N months after their first visit of
  the month (N = ``retention_months``; a month whose window is still open counts returns so far);
- waiting time: arrival to start of the visits started in the month, in minutes (nearest rank).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from tortoise.expressions import Subquery

from audit.events import Action
from core.errors import BadUserInput, Forbidden
from models import Department, FollowUpTask, Visit
from resolvers import access
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.report import Durations, durations, local_bounds, month_start, note_read

MAX_RETENTION_MONTHS = 24


@dataclass(frozen=True)
class FollowUpFigures:
    due: int
    done_on_time: int
    done_late: int
    not_reached: int
    still_open: int

    @property
    def completion_rate(self) -> float | None:
        return (self.done_on_time + self.done_late) / self.due if self.due else None


@dataclass(frozen=True)
class VisitReport:
    department_id: uuid.UUID
    month: str
    visits_by_kind: dict[str, int]
    no_shows: int
    follow_up: FollowUpFigures
    satisfaction_responses: int
    average_satisfaction: float | None
    retention_months: int
    patients_seen: int
    patients_returned: int
    waiting_time: Durations

    @property
    def retention_rate(self) -> float | None:
        return self.patients_returned / self.patients_seen if self.patients_seen else None


async def monthly(ctx: Context, month: str, department_id: uuid.UUID, retention_months: int) -> VisitReport:
    await _authorize(ctx, department_id)
    if not 1 <= retention_months <= MAX_RETENTION_MONTHS:
        raise BadUserInput(f"retentionMonths: 1 to {MAX_RETENTION_MONTHS}.", field="retentionMonths")
    if not await Department.exists(id=department_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "visit_report", department_id, "departmentId")
    first_day = month_start(month)
    note_read(ctx, "visit_report", department_id)
    next_month = _next_month(first_day)
    since, until = await local_bounds(ctx, first_day, next_month)
    zone: tzinfo = await institutions.zone_of(ctx)
    tenant = {"institution_id": ctx.institution_id}

    finishing = Visit.filter(**tenant, department_id=department_id, status="finished", ended_at__gte=since,
                             ended_at__lt=until)
    finished = await finishing.values_list("kind", "patient_id", "ended_at")
    no_shows = await Visit.filter(**tenant, department_id=department_id, status="no_show", planned_at__gte=since,
                                  planned_at__lt=until).count()
    started = await Visit.filter(**tenant, department_id=department_id, started_at__gte=since, started_at__lt=until,
                                 arrived_at__isnull=False).values_list("arrived_at", "started_at")
    tasks = await FollowUpTask.filter(**tenant, department_id=department_id, due_on__gte=first_day,
                                      due_on__lt=next_month).exclude(status="cancelled").values_list(
        "status", "due_on", "completed_at")
    scores = await FollowUpTask.filter(**tenant, department_id=department_id, status="completed",
                                       completed_at__gte=since, completed_at__lt=until,
                                       satisfaction__isnull=False).values_list("satisfaction", flat=True)

    on_time = late = 0
    for status, due_on, completed_at in tasks:
        if status == "completed" and completed_at is not None:
            if completed_at.astimezone(zone).date() <= due_on:
                on_time += 1
            else:
                late += 1
    first_visit: dict[uuid.UUID, datetime] = {}
    for _kind, patient_id, ended_at in finished:
        if patient_id not in first_visit or ended_at < first_visit[patient_id]:
            first_visit[patient_id] = ended_at
    returned = await _returned(ctx, first_visit, Subquery(finishing.values("patient_id")), retention_months, zone)
    numbers = [int(str(s)) for s in scores]
    return VisitReport(
        department_id=department_id, month=month,
        visits_by_kind=dict(Counter(kind for kind, _, _ in finished)), no_shows=no_shows,
        follow_up=FollowUpFigures(due=len(tasks), done_on_time=on_time, done_late=late,
                                  not_reached=sum(1 for t in tasks if t[0] == "failed"),
                                  still_open=sum(1 for t in tasks if t[0] in ("requested", "accepted"))),
        satisfaction_responses=len(numbers),
        average_satisfaction=round(sum(numbers) / len(numbers), 2) if numbers else None,
        retention_months=retention_months, patients_seen=len(first_visit), patients_returned=returned,
        waiting_time=durations([start - arrival for arrival, start in started if start >= arrival]))


async def _returned(ctx: Context, first_visit: dict[uuid.UUID, datetime], seen: Subquery, months: int,
                    zone: tzinfo) -> int:
    """How many of these patients (``seen``: the statement that found them) finished another visit (any
    department) within ``months`` of their first (months counted on the institution's calendar: a UTC date can be
    the local day before); only the visits ending within the latest window are read. Named by a subquery, not one
    parameter each: a department sees more patients in a month than a statement takes parameters (32,767) in a large
    hospital."""
    if not first_visit:
        return 0
    earliest = min(first_visit.values())
    # found in review: read to today, however short the window (a month two years back read two years of visits)
    latest = max(_add_months_at(first.astimezone(zone), months) for first in first_visit.values())
    later = await Visit.filter(institution_id=ctx.institution_id, patient_id__in=seen, status="finished",
                               ended_at__gt=earliest, ended_at__lte=latest).values_list("patient_id", "ended_at")
    back = set()
    for patient_id, ended_at in later:
        first = first_visit[patient_id]
        if first < ended_at <= _add_months_at(first.astimezone(zone), months):
            back.add(patient_id)
    return len(back)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _add_months_at(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later (the month's last day when it is shorter)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    # found in review: the day was looked for from ``moment.day`` down to 28, so from the 1st to the 27th of a month
    # the window ended on the 28th (up to 26 days late) and later returns counted as retained
    last = (_next_month(date(year, month, 1)) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


async def _authorize(ctx: Context, department_id: uuid.UUID) -> None:
    """``visit_report: read``, for the caller's own departments."""
    await access.authorize(ctx, "visit_report", "read", action=Action.READ, resource_type="visit_report",
                           resource_id=department_id)
    if department_id not in ctx.require_principal().department_ids:
        await access.deny(ctx, Action.READ, "visit_report", department_id, reason="outside_department")
        raise Forbidden("Reports of other departments are not yours to see.")

