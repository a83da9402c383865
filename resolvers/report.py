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
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.functions import Count

from audit.events import Action
from core.errors import BadUserInput, Forbidden
from core.validation import check_year
from models import Department, Ticket, Visit
from models.ticket import ROOT_CAUSES
from resolvers import access
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.ticket import ticket_scope

MAX_PERIOD_DAYS = 366 * 6
UNCLASSIFIED = "unclassified"


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
    rows = await Ticket.filter(institution_id=ctx.institution_id, department_id=department_id,
                               received_at__gte=since, received_at__lt=until).values_list(
        "channel", "category", "received_at", "first_responded_at", "resolved_at", "response_due_at",
        "resolution_due_at")
    now = datetime.now(UTC)
    decided = met = 0
    for *_, responded, resolved, response_due, resolution_due in rows:
        outcome = _sla_outcome(now, responded, resolved, response_due, resolution_due)
        decided += outcome is not None
        met += outcome is True
    # found in review: today's active files of the department, whatever the month (a past month's rate moved with
    # every file registered or archived since); the patients seen in the month, as the documents planned
    seen = await Visit.filter(institution_id=ctx.institution_id, department_id=department_id, status="finished",
                              ended_at__gte=since, ended_at__lt=until).annotate(
        n=Count("patient_id", distinct=True)).values_list("n", flat=True)
    return MonthlyReport(
        department_id=department_id, month=month, tickets=len(rows),
        by_channel=dict(Counter(r[0] for r in rows)), by_category=dict(Counter(r[1] for r in rows)),
        first_response=durations([r[3] - r[2] for r in rows if r[3] is not None]),
        resolution=durations([r[4] - r[2] for r in rows if r[4] is not None]),
        sla_decided=decided, sla_met=met, complaints=sum(1 for r in rows if r[1] == "complaint"),
        patients_served=int(str(seen[0] or 0)) if seen else 0)


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


def _sla_outcome(now: datetime, responded: datetime | None, resolved: datetime | None,
                 response_due: datetime | None, resolution_due: datetime | None) -> bool | None:
    """True: both targets met; False: one missed or already breached; None: not decided yet."""
    for done, due in ((responded, response_due), (resolved, resolution_due)):
        # met at the due time itself ("within"); an open target is breached from it on (core.sla.Clock.state)
        if due is not None and ((done is not None and done > due) or (done is None and now >= due)):
            return False
    if responded is not None and resolved is not None:
        return True
    return None


def durations(spans: list[timedelta]) -> Durations:
    minutes = sorted(span.total_seconds() / 60 for span in spans)
    if not minutes:
        return Durations(0, None, None)

    def rank(share: float) -> float:
        return round(minutes[max(0, math.ceil(share * len(minutes)) - 1)], 1)

    return Durations(len(minutes), rank(0.5), rank(0.9))
