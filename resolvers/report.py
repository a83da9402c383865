"""Service-improvement figures from tickets: the complaint Pareto and the monthly department report.

Reports are aggregates: they read no ticket text and no patient data, and are audited as one
read of the report. Periods are calendar days and months in the institution's time zone.

Definitions (the documents name the figures, not their arithmetic):
- first-response and resolution times are wall-clock minutes from receipt; median and p90 use
  the nearest-rank method (the smallest value with at least that share of values at or below it);
- SLA compliance: of the tickets whose outcome is decided (both targets met or missed, or a
  target already breached), the share that met both;
- complaint rate per 1,000 patients served: complaints received in the month per 1,000 patients
  seen by the department in the month (a finished visit of the department ending in the month, by
  its local date; a patient seen twice counts once).

The monthly report is counted and ranked in SQL (``resolvers.report_sql``): three statements once the department is
found, whatever the number of tickets, return a row per channel and category, the few rows a percentile can fall on
and one count, never a row per ticket.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise.functions import Count

from audit.events import Action
from core.errors import BadUserInput, Forbidden
from core.validation import check_year
from models import Department, Ticket, Visit
from models.ticket import ROOT_CAUSES
from resolvers import access
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.report_sql import Statement, micros_of, nearest_ranks, ranked
from resolvers.ticket import ticket_scope

MAX_PERIOD_DAYS = 366 * 6
UNCLASSIFIED = "unclassified"
# the ticket's columns the monthly report reads
RECEIVED, RESPONDED, RESOLVED = "received_at", "first_responded_at", "resolved_at"
RESPONSE_DUE, RESOLUTION_DUE = "response_due_at", "resolution_due_at"


@dataclass(frozen=True)
class ParetoBar:
    cause: str
    complaints: int
    share: float  # of all complaints in the period
    cumulative_share: float


@dataclass(frozen=True)
class Durations:
    count: int
    median_minutes: float | None
    p90_minutes: float | None


@dataclass(frozen=True)
class MonthlyReport:
    department_id: uuid.UUID
    month: str  # YYYY-MM
    tickets: int
    by_channel: dict[str, int]
    by_category: dict[str, int]
    first_response: Durations
    resolution: Durations
    sla_decided: int
    sla_met: int
    complaints: int
    patients_served: int

    @property
    def sla_compliance_rate(self) -> float | None:
        return self.sla_met / self.sla_decided if self.sla_decided else None

    @property
    def complaint_rate_per_1000(self) -> float | None:
        return 1000 * self.complaints / self.patients_served if self.patients_served else None


async def complaint_pareto(ctx: Context, start: date, end: date, department_id: uuid.UUID | None) -> list[ParetoBar]:
    """Complaints received from ``start`` to ``end`` (inclusive) by root cause, most frequent first."""
    await _authorize(ctx, department_id)
    if department_id is not None:  # another institution's answers as a missing one, as in ``monthly``
        await _department(ctx, department_id)
    check_year(start, "from")
    check_year(end, "to")
    if end < start or (end - start).days > MAX_PERIOD_DAYS:
        raise BadUserInput("to: the period must end after it starts and span at most six years.", field="to")
    note_read(ctx, "ticket_report", department_id)
    since, until = await local_bounds(ctx, start, end + timedelta(days=1))
    query = Ticket.filter(institution_id=ctx.institution_id, category="complaint",
                          received_at__gte=since, received_at__lt=until)
    if department_id is not None:
        query = query.filter(department_id=department_id)
    rows = await query.annotate(n=Count("id")).group_by("root_cause_category").values_list("root_cause_category", "n")
    counts = Counter({cause or UNCLASSIFIED: int(n) for cause, n in rows})
    total = sum(counts.values())
    order = {cause: i for i, cause in enumerate((*ROOT_CAUSES, UNCLASSIFIED))}
    bars, running = [], 0
    for cause, n in sorted(counts.items(), key=lambda item: (-item[1], order[item[0]])):
        running += n
        bars.append(ParetoBar(cause, n, n / total, running / total))
    return bars


async def monthly(ctx: Context, month: str, department_id: uuid.UUID) -> MonthlyReport:
    await _authorize(ctx, department_id)
    await _department(ctx, department_id)
    first_day = month_start(month)
    note_read(ctx, "ticket_report", department_id)
    next_month = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    since, until = await local_bounds(ctx, first_day, next_month)
    groups = await _ticket_counts(ctx.institution_id, department_id, since, until, datetime.now(UTC))
    first_response, resolution = await _ticket_durations(ctx.institution_id, department_id, since, until)
    # found in review: today's active files of the department, whatever the month (a past month's rate moved with
    # every file registered or archived since); the patients seen in the month, as the documents planned
    seen = await Visit.filter(institution_id=ctx.institution_id, department_id=department_id, status="finished",
                              ended_at__gte=since, ended_at__lt=until).annotate(
        n=Count("patient_id", distinct=True)).values_list("n", flat=True)
    by_channel: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    for row in groups:
        by_channel[row["channel"]] += int(row["tickets"])
        by_category[row["category"]] += int(row["tickets"])
    return MonthlyReport(
        department_id=department_id, month=month, tickets=sum(by_channel.values()),
        by_channel=dict(by_channel), by_category=dict(by_category),
        first_response=first_response, resolution=resolution,
        sla_decided=sum(int(row["decided"]) for row in groups), sla_met=sum(int(row["met"]) for row in groups),
        complaints=by_category.get("complaint", 0), patients_served=int(str(seen[0] or 0)) if seen else 0)


async def _ticket_counts(institution_id: uuid.UUID, department_id: uuid.UUID, since: datetime, until: datetime,
                         now: datetime) -> list[Any]:
    """The month's tickets counted per channel and category (a row each, not one per ticket), with how many have
    their SLA outcome decided and how many met both targets. Decided: a target missed (done after its due time) or
    already breached (open at or past it: core.sla.Clock.state), or both done; met: both done, neither missed."""
    sql = Statement(Ticket._meta.db)
    now_micros = sql.integer(micros_of(now))

    def missed(done: str, due: str) -> str:
        """Met at the due time itself ("within"); an open target is breached from it on."""
        done_at, due_at = sql.micros(done), sql.micros(due)
        return (f'("{due}" IS NOT NULL AND (("{done}" IS NOT NULL AND {done_at} > {due_at}) '
                f'OR ("{done}" IS NULL AND {now_micros} >= {due_at})))')

    breached = f"{missed(RESPONDED, RESPONSE_DUE)} OR {missed(RESOLVED, RESOLUTION_DUE)}"
    both_done = f'"{RESPONDED}" IS NOT NULL AND "{RESOLVED}" IS NOT NULL'
    return await sql.rows(
        f'SELECT "channel", "category", COUNT(*) AS "tickets", '  # noqa: S608
        f"SUM(CASE WHEN {breached} THEN 1 WHEN {both_done} THEN 1 ELSE 0 END) AS \"decided\", "
        f"SUM(CASE WHEN {breached} THEN 0 WHEN {both_done} THEN 1 ELSE 0 END) AS \"met\" "
        f'FROM "ticket" WHERE "institution_id" = {sql.bind(institution_id)} AND "department_id" = '
        f'{sql.bind(department_id)} AND "received_at" >= {sql.bind(since)} AND "received_at" < {sql.bind(until)} '
        f'GROUP BY "channel", "category"')


async def _ticket_durations(institution_id: uuid.UUID, department_id: uuid.UUID, since: datetime,
                            until: datetime) -> tuple[Durations, Durations]:
    """First-response and resolution times of the month's tickets: their count, median and p90, ranked in SQL (the
    few rows a rank can fall on come back, ``report_sql.ranked``)."""
    sql = Statement(Ticket._meta.db)
    month = sql.in_month(institution_id, department_id, RECEIVED, since, until)

    def spans(done: str) -> str:
        span = f'{sql.micros(done)} - {sql.micros(RECEIVED)}'
        return f'SELECT {span} AS "span" FROM "ticket" WHERE {month} AND "{done}" IS NOT NULL'  # noqa: S608

    rows = await sql.rows(f'{ranked(spans(RESPONDED), "response")} UNION ALL {ranked(spans(RESOLVED), "resolution")}')
    return (durations_of([r for r in rows if r["measure"] == "response"]),
            durations_of([r for r in rows if r["measure"] == "resolution"]))


# -- helpers -------------------------------------------------------------------------------


async def _authorize(ctx: Context, department_id: uuid.UUID | None) -> None:
    """Reports need ``ticket_report: read``; a department head sees only their departments'."""
    await access.authorize(ctx, "ticket_report", "read", action=Action.READ, resource_type="ticket_report",
                           resource_id=department_id)
    scope = ticket_scope(ctx)
    if department_id is None and not scope.reaches_department(None):
        raise BadUserInput("departmentId: give one of your departments.", field="departmentId")
    if department_id is not None and not scope.reaches_department(department_id):
        await access.deny(ctx, Action.READ, "ticket_report", department_id, reason="outside_department")
        raise Forbidden("Reports of other departments are not yours to see.")


async def _department(ctx: Context, department_id: uuid.UUID) -> None:
    """The institution's department, else NOT_FOUND with the refusal recorded (found in review: the Pareto of another
    institution's department, or of none, answered an empty chart and recorded an allowed read of it)."""
    if not await Department.exists(id=department_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "ticket_report", department_id, "departmentId")


def note_read(ctx: Context, report: str, department_id: uuid.UUID | None) -> None:
    """The read of a report, noted once its input is found good (found in review: noted before, a month that did not
    parse or a department that does not exist left on the trail an allowed read that never happened)."""
    ctx.reads.note(report, department_id, None, field_class="aggregate", rule=ctx.decide(report, "read").rule)


async def local_bounds(ctx: Context, start: date, end: date) -> tuple[datetime, datetime]:
    zone = await institutions.zone_of(ctx)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), zone).astimezone(UTC)

    return midnight(start), midnight(end)


def month_start(value: str, field: str = "month") -> date:
    """The first day of a "YYYY-MM" month within the years reports deal in, else BAD_USER_INPUT at ``field``."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2 or not (year.isdigit() and month.isdigit()):
            raise ValueError
        first = date(int(year), int(month), 1)
    except ValueError:
        raise BadUserInput(f"{field}: give it as YYYY-MM.", field=field) from None
    check_year(first, field)
    return first


def durations_of(rows: list[Any]) -> Durations:
    """``Durations`` from the rows ``report_sql.ranked`` returned for one measure."""
    count, (median, p90) = nearest_ranks(rows)
    return Durations(count, median, p90)
