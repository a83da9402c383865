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

Every figure is counted in SQL (``resolvers.report_sql``): six statements once the department is found, whatever
the number of visits and tasks, each returning a row (a row per kind, a few for a percentile), never one per visit,
task or patient.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from tortoise.functions import Count, Sum

from audit.events import Action
from core.errors import BadUserInput, Forbidden
from models import Department, FollowUpTask, Visit
from resolvers import access
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.report import Durations, durations_of, local_bounds, month_start, note_read
from resolvers.report_sql import MICROSECOND, Statement, micros_of, ranked

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
    scope = Month(ctx.institution_id, department_id, first_day, next_month, since, until)

    kinds = await Visit.filter(**tenant, department_id=department_id, status="finished", ended_at__gte=since,
                               ended_at__lt=until).annotate(n=Count("id")).group_by("kind").values_list("kind", "n")
    no_shows = await Visit.filter(**tenant, department_id=department_id, status="no_show", planned_at__gte=since,
                                  planned_at__lt=until).count()
    waiting = await _waiting_time(scope)
    follow_up = await _follow_up(scope, zone)
    [scores] = await FollowUpTask.filter(**tenant, department_id=department_id, status="completed",
                                         completed_at__gte=since, completed_at__lt=until,
                                         satisfaction__isnull=False).annotate(
        n=Count("satisfaction"), total=Sum("satisfaction")).values_list("n", "total")
    responses, total = int(str(scores[0] or 0)), int(str(scores[1] or 0))
    seen, returned = await _retention(scope, retention_months, zone)
    return VisitReport(
        department_id=department_id, month=month, visits_by_kind={kind: int(str(n)) for kind, n in kinds},
        no_shows=no_shows, follow_up=follow_up, satisfaction_responses=responses,
        average_satisfaction=round(total / responses, 2) if responses else None,
        retention_months=retention_months, patients_seen=seen, patients_returned=returned, waiting_time=waiting)


@dataclass(frozen=True)
class Month:
    """The department's month a report is about: its local days and the UTC instants they start and end at."""

    institution_id: uuid.UUID
    department_id: uuid.UUID
    first_day: date
    next_month: date
    since: datetime
    until: datetime

    def visits(self, sql: Statement, column: str) -> str:
        """The condition on the department's visits whose ``column`` falls in the month."""
        return sql.in_month(self.institution_id, self.department_id, column, self.since, self.until)


async def _waiting_time(month: Month) -> Durations:
    """Arrival to start of the visits started in the month (a start before the arrival left out), ranked in SQL."""
    sql = Statement(Visit._meta.db)
    wait = f"{sql.micros('started_at')} - {sql.micros('arrived_at')}"
    spans = (f'SELECT {wait} AS "span" FROM "visit" WHERE {month.visits(sql, "started_at")} '  # noqa: S608
             f'AND "arrived_at" IS NOT NULL AND {wait} >= 0')
    return durations_of(await sql.rows(ranked(spans, "waiting")))


async def _follow_up(month: Month, zone: tzinfo) -> FollowUpFigures:
    """The department's tasks due in the month (cancelled ones left out), counted in SQL. On time: completed before
    the local midnight that ends its due date, each day's midnight in UTC named in the statement (a day or two of
    them is 23 or 25 hours long across a DST change)."""
    sql = Statement(FollowUpTask._meta.db)
    done = "\"status\" = 'completed' AND \"completed_at\" IS NOT NULL"
    day, deadlines = month.first_day, []
    while day < month.next_month:
        midnight = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        deadlines.append(f'WHEN "due_on" = {sql.bind(day)} THEN {sql.integer(micros_of(midnight))}')
        day += timedelta(days=1)
    on_time = f"{sql.micros('completed_at')} < CASE {' '.join(deadlines)} END"
    [row] = await sql.rows(
        f'SELECT COUNT(*) AS "due", SUM(CASE WHEN {done} AND {on_time} THEN 1 ELSE 0 END) AS "on_time", '  # noqa: S608
        f'SUM(CASE WHEN {done} THEN 1 ELSE 0 END) AS "done", '
        f"SUM(CASE WHEN \"status\" = 'failed' THEN 1 ELSE 0 END) AS \"failed\", "
        f"SUM(CASE WHEN \"status\" IN ('requested', 'accepted') THEN 1 ELSE 0 END) AS \"open\" "
        f'FROM "follow_up_task" WHERE "institution_id" = {sql.bind(month.institution_id)} AND "department_id" = '
        f'{sql.bind(month.department_id)} AND "due_on" >= {sql.bind(month.first_day)} AND "due_on" < '
        f"{sql.bind(month.next_month)} AND \"status\" <> 'cancelled'")
    on_time_n, done_n = int(row["on_time"] or 0), int(row["done"] or 0)
    return FollowUpFigures(due=int(row["due"]), done_on_time=on_time_n, done_late=done_n - on_time_n,
                           not_reached=int(row["failed"] or 0), still_open=int(row["open"] or 0))


async def _retention(month: Month, months: int, zone: tzinfo) -> tuple[int, int]:
    """The patients seen (a finished visit of the department in the month) and how many of them finished another
    visit (any department) within ``months`` of their first visit of the month, counted in one statement.

    A window ends the same local day and time ``months`` on (``_add_months_at``): a first visit plus a shift that is
    the same for every first visit within one stretch of the month (``_window_shifts``), so the statement adds to
    each first visit its stretch's shift, the few stretches named in it. The patients are named by a subquery, not
    one parameter each (a large department sees more in a month than a statement takes); the returns are read
    within the month's latest window only (found in review: to today, a month two years back read two years)."""
    sql = Statement(Visit._meta.db)
    stretches = _window_shifts(zone, month.since, month.until, months)
    ends = [start for start, _ in stretches[1:]] + [month.until]
    latest = max(end - MICROSECOND + shift for (_, shift), end in zip(stretches, ends, strict=True))
    first, ended = '"f"."first"', sql.micros("ended_at", "v")
    window = " ".join(f"WHEN {first} < {sql.integer(micros_of(end))} THEN {sql.integer(shift // MICROSECOND)}"
                      for (_, shift), end in zip(stretches, ends, strict=True))
    firsts = (f'SELECT "patient_id", MIN({sql.micros("ended_at")}) AS "first" FROM "visit" '  # noqa: S608
              f"WHERE {month.visits(sql, 'ended_at')} AND \"status\" = 'finished' GROUP BY \"patient_id\"")
    back = (f'SELECT 1 FROM "visit" AS "v" WHERE "v"."institution_id" = {sql.bind(month.institution_id)} '  # noqa: S608
            f'AND "v"."patient_id" = "f"."patient_id" AND "v"."status" = \'finished\' '
            f'AND "v"."ended_at" > {sql.bind(month.since)} AND "v"."ended_at" <= {sql.bind(latest)} '
            f"AND {ended} > {first} AND {ended} <= {first} + CASE {window} END")
    [row] = await sql.rows(f'SELECT COUNT(*) AS "seen", SUM(CASE WHEN EXISTS ({back}) THEN 1 ELSE 0 END) '  # noqa: S608
                           f'AS "returned" FROM ({firsts}) AS "f"')
    return int(row["seen"]), int(row["returned"] or 0)


STEP = timedelta(minutes=15)


@functools.lru_cache(maxsize=1024)
def _window_shifts(zone: tzinfo, since: datetime, until: datetime, months: int) -> tuple[tuple[datetime, timedelta],
                                                                                         ...]:
    """The stretches of ``since`` to ``until`` (a month, UTC) over which a first visit's window ends a constant
    shift after it: (where each starts, its shift), in order. The shift changes where the local day changes (the day
    ``months`` on, clamped to a shorter month's last), where the first visit's UTC offset changes (DST) and where the
    window's end crosses a DST change of its own (a wall time in the spring gap is read with the offset before it,
    one in the autumn fold with the first visit's fold, as ``_add_months_at`` leaves them). Found without reading
    the zone's rules: the shift is compared every 15 minutes and each change bisected to the microsecond (a shift that
    changed and changed back within 15 minutes would be missed: no zone does that). Cached: a month's stretches are
    the same for every report of it."""

    def shift(moment: datetime) -> timedelta:
        return _add_months_at(moment.astimezone(zone), months) - moment

    stretches = [(since, shift(since))]
    checked = since  # the last instant known to be in the last stretch
    point = since
    while point < until - MICROSECOND:
        point = min(point + STEP, until - MICROSECOND)
        while shift(point) != stretches[-1][1]:
            low, high = checked, point  # low in the last stretch, high past it: the change is between
            while high - low > MICROSECOND:
                middle = low + (high - low) // 2
                low, high = (middle, high) if shift(middle) == stretches[-1][1] else (low, middle)
            stretches.append((high, shift(high)))
            checked = high
        checked = point
    return tuple(stretches)


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

