"""Delivered against contracted (per contract and billing period) and the department and institution contract
report (issue 15).

Definitions (dates are the institution's local dates throughout):

- Billing periods are counted from the contract's ``start_on``: a monthly period is one month, a quarterly one
  three, a yearly one twelve (the same day of the month, or the month's last day when it is shorter: a term from
  31 January has periods from 28/29 February, 31 March...). Each period is under the version in force on its
  first day (``resolvers.contract.in_force_on``: the newest signed version already effective) and lasts as long as
  that version's billing period; the term's last period ends with the term (``end_on``, moved by a termination),
  and is contracted in full (no pro rata).
- Contracted: an item's ``quantity`` (units per billing period) in that version.
- Delivered: visits of the contract's patient of kind HOME_CARE or PROCEDURE (treatment), FINISHED, that ended in
  the period (by the local date of ``ended_at``; a finished visit without an end, which the API never writes but
  older or imported data may hold, counts at ``planned_at``), carrying a procedure of the service catalogue
  (``VisitCode`` kind procedure, system service) marked DONE whose code is the item's. The code is sealed: it is
  matched on its blind index (the keyring's ``code`` index of ``service|<CODE>``, as ``resolvers.visit`` writes it),
  so nothing is decrypted. A visit delivers one unit of each code it carries, however often the code is recorded
  on it. Visits recorded by a care partner count the same. Two items of one version with the same code share the
  visits in their order (each up to its quantity, the last one takes the rest). A visit counts against every
  contract of the patient with that code in the period.
- Missed: max(0, contracted - delivered) per item; the shortfall is the items with something missed. A period's
  ``delivered`` counts each item up to its contracted quantity (what was delivered against the contract), so
  contracted = delivered + missed; an item's own ``delivered`` is everything counted. Periods run up to today (the
  one running today is listed, not ``closed``: its missed units are the ones still to deliver).

The report, per month of a range, over the contracts of one department (or the institution); a contract counts
from the moment it was signed (``activated_at`` set: draft or sent contracts never count) over its term, whatever
its status now (a suspension is not historized, so a suspended contract counts as active), except a REVOKED one
(terminated before it started: never in force, in no figure):
- active: in its term on the month's last day; expiring: of those, ending within 60 days after that day;
- new: first terms (no ``renewal_of``) signed in the month; renewed: terms ending in the month that were renewed
  (RENEWED, or still running with their next term signed); terminated: TERMINATED terms whose (moved) end falls in
  the month; expired: EXPIRED terms ending in the month (the expiry sweep marks them the day after);
- revenue (commercial terms: needs ``contract.terms: read``): per currency, the sum of the period totals of the
  billing periods that begin in the month (monthly: every month; quarterly: the first month of each quarter of the
  term; yearly: the term's first month each year), at the version in force on the period's first day;
- delivery: over the billing periods that ended in the month (their last day in the month and before today):
  contracted units, delivered units (each item up to its quantity), missed units, and the rate delivered /
  contracted (null when nothing was contracted).

Access: ``contractDelivery`` needs ``contract_report: read`` for staff (admins and finance: any contract of the
institution; department heads: their departments' contracts of patients in their reach), and for a patient in
the portal ``contract: read`` on their own contract. It is one read of the contract on the patient's trail. The
report needs ``contract_report: read``: department heads for their departments only (one of them must be named;
another is FORBIDDEN and the refusal recorded), admins and finance the institution or any department; aggregates
only, no patient named, one audited read of the report (revenue adds the ``terms`` class, or its refusal).

Cost: a fixed number of SQL statements whatever the number of periods, versions, items, contracts or visits: the
contract, its signed versions' calendar columns (``CALENDAR_COLUMNS``: never a draft or withdrawn version, never the
texts), the items of the versions in force in the periods shown, and one statement for the visits of the whole
range; the report adds one statement counting every month's figures in SQL, and one each for the contracts, their
signed versions' calendar columns, the items of the versions in force in the periods it counts, and the visits
(their billing calendars are computed here). Every signed version is read, however old: where a period begins
depends on the billing periods of the versions in force before it.
"""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from tortoise.expressions import Q, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from audit.events import Action, Outcome
from core.errors import BadUserInput, Forbidden
from core.principal import PATIENT, STAFF, Principal
from models import Contract, ContractItem, ContractVersion, Department, VisitCode
from resolvers import access
from resolvers import contract as contracts
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.contract import ContractView, VersionView
from resolvers.report import month_start

DELIVERING_KINDS = ("home_care", "procedure")  # home-care service and treatment
PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
EXPIRING_DAYS = 60
MAX_MONTHS = 36
INSTITUTION_WIDE = frozenset({"admin", "finance"})  # report roles that see every department
LIVE = ("active", "suspended")
REPORT = "contract_report"
IDS_PER_STATEMENT = 10_000  # ids a statement names: well under both databases' 32,767 parameters
TERMS = "contract.terms"


# -- calendars -----------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), or that month's last day when it is shorter."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


@dataclass(frozen=True)
class Period:
    """A billing period, first and last day inclusive, under the version in force on its first day."""

    start: date
    end: date
    version: VersionView


def billing_periods(start_on: date, end_on: date, versions: Sequence[VersionView], *, through: date) -> list[Period]:
    """The term's billing periods that begin on or before ``through`` (and within the term), in order."""
    periods: list[Period] = []
    offset = 0
    while True:
        start = add_months(start_on, offset)
        if start > end_on or start > through:
            return periods
        version = contracts.in_force_on(versions, start)
        if version is None:  # nothing signed: nothing contracted
            return periods
        offset += PERIOD_MONTHS.get(version.row.billing_period, 1)
        periods.append(Period(start, min(add_months(start_on, offset) - timedelta(days=1), end_on), version))


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def code_index(ctx: Context, code: str) -> str:
    """The blind index a visit's procedure code of the catalogue is stored under (as ``resolvers.visit`` writes it:
    the keyring's ``code`` index of ``service|<code>``)."""
    digest = access.blind_index(ctx, "code", f"service|{code}")
    assert digest is not None
    return digest


# -- what was delivered --------------------------------------------------------------------------


Delivered = dict[tuple[uuid.UUID, str], list[date]]  # (patient, code index) -> local dates, one per visit, sorted


async def _delivered(ctx: Context, zone: tzinfo, patients: Collection[uuid.UUID] | QuerySet[Any],
                     indexes: Collection[str], first: date, last: date) -> Delivered:
    """One statement: the finished home-care and treatment visits of these patients, from ``first`` to ``last``
    (local dates, inclusive), carrying a DONE catalogue procedure with one of these code indexes."""
    if not indexes:
        return {}
    since, until = _midnight(first, zone), _midnight(last + timedelta(days=1), zone)
    patient_ids: Any = (Subquery(patients.values("patient_id")) if isinstance(patients, QuerySet)
                        else list(patients))
    rows = await VisitCode.filter(
        institution_id=ctx.institution_id, patient_id__in=patient_ids, kind="procedure", system="service",
        status="done", code_bidx__in=sorted(indexes), visit__institution_id=ctx.institution_id,
        visit__status="finished", visit__kind__in=DELIVERING_KINDS,
    ).filter(Q(visit__ended_at__gte=since, visit__ended_at__lt=until)
             | Q(visit__ended_at__isnull=True, visit__planned_at__gte=since, visit__planned_at__lt=until)
             ).values_list("patient_id", "code_bidx", "visit_id", "visit__ended_at", "visit__planned_at")
    seen: set[tuple[Any, str, Any]] = set()
    found: Delivered = defaultdict(list)
    for patient_id, index, visit_id, ended_at, planned_at in rows:
        if (patient_id, index, visit_id) in seen:  # a code recorded twice on one visit is one unit
            continue
        seen.add((patient_id, index, visit_id))
        moment: datetime = ended_at or planned_at
        found[(_uuid(patient_id), index)].append(moment.astimezone(zone).date())
    for dates in found.values():
        dates.sort()
    return found


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _count(dates: list[date], first: date, last: date) -> int:
    return bisect.bisect_right(dates, last) - bisect.bisect_left(dates, first)


@dataclass(frozen=True)
class Line:
    """An item of a version as the figures need it."""

    position: int
    code: str
    quantity: int


def _allocate(lines: Sequence[Line], counted: dict[str, int]) -> list[int]:
    """Delivered units per line: lines sharing a code share its visits in order (each up to its quantity, the
    last one takes the rest)."""
    left = dict(counted)
    last_of = {line.code: i for i, line in enumerate(lines)}
    out = []
    for i, line in enumerate(lines):
        available = left.get(line.code, 0)
        taken = available if last_of[line.code] == i else min(available, line.quantity)
        left[line.code] = available - taken
        out.append(taken)
    return out


# What a billing calendar reads of a version: which one is in force on a period's first day (signed, its effective
# date and number), how long the period lasts (billing period) and what it makes due (period total). A version that
# is not signed is never in force, and the texts (rights and duties, clauses) are never read: found in review, the
# delivery report loaded every version of the contract whole. Every signed version is needed, however old: where each
# period begins depends on the billing periods of those in force before it.
CALENDAR_COLUMNS = ("id", "contract_id", "number", "status", "effective_on", "end_on", "billing_period",
                    "period_total")


async def _calendars(ctx: Context, contract_ids: Collection[uuid.UUID] | Subquery) -> list[ContractVersion]:
    """The signed versions of these contracts, their calendar columns only, by contract and number (one
    statement)."""
    ids: Any = contract_ids if isinstance(contract_ids, Subquery) else list(contract_ids)
    return list(await ContractVersion.filter(institution_id=ctx.institution_id, status="signed", contract_id__in=ids)
                .only(*CALENDAR_COLUMNS).order_by("contract_id", "number"))


async def _lines_of(version_ids: Collection[uuid.UUID], institution_id: uuid.UUID) -> dict[uuid.UUID, list[Line]]:
    """The items of the versions in force in the periods counted, and of no other version (found in review: the
    items of every signed version of every contract were loaded): one statement per ``IDS_PER_STATEMENT`` versions
    (a statement takes at most 32,767 parameters on either database: an institution-wide report over more
    versions failed)."""
    lines: dict[uuid.UUID, list[Line]] = defaultdict(list)
    ordered = sorted(version_ids)
    for start in range(0, len(ordered), IDS_PER_STATEMENT):
        for version_id, position, code, quantity in await ContractItem.filter(
                institution_id=institution_id, contract_version_id__in=ordered[start:start + IDS_PER_STATEMENT]
        ).order_by("contract_version_id", "position").values_list("contract_version_id", "position", "code",
                                                                   "quantity"):
            lines[_uuid(version_id)].append(Line(position, code, quantity))
    return lines


# -- delivery of one contract ---------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDelivery:
    item: contracts.ItemView
    contracted: int
    delivered: int

    @property
    def missed(self) -> int:
        return max(0, self.contracted - self.delivered)


@dataclass(frozen=True)
class PeriodDelivery:
    start: date
    end: date
    version: VersionView
    closed: bool  # ended before today
    items: list[ItemDelivery]

    @property
    def contracted(self) -> int:
        return sum(i.contracted for i in self.items)

    @property
    def delivered(self) -> int:
        """Delivered against the contract: each item up to its contracted quantity."""
        return sum(min(i.delivered, i.contracted) for i in self.items)

    @property
    def missed(self) -> int:
        return sum(i.missed for i in self.items)

    @property
    def shortfall(self) -> list[ItemDelivery]:
        return [i for i in self.items if i.missed > 0]


@dataclass(frozen=True)
class ContractDelivery:
    contract: ContractView
    today: date
    periods: list[PeriodDelivery]


def _wide(principal: Principal) -> bool:
    return principal.kind == STAFF and bool(principal.roles & INSTITUTION_WIDE)


async def _reached(ctx: Context, contract_id: uuid.UUID | None, rule: str) -> ContractView:
    """The contract, in the caller's reach (a department head: also of one of their departments), its read noted;
    NOT_FOUND (recorded) otherwise."""
    principal = ctx.require_principal()
    query = contracts.in_reach(ctx)
    if query is not None and principal.kind == STAFF and not _wide(principal):
        query = query.filter(department_id__in=sorted(principal.department_ids))
    row = None if query is None or contract_id is None else await query.get_or_none(id=contract_id)
    if row is None:
        raise await access.not_found(ctx, Action.READ, "contract", contract_id, "contractId")
    ctx.reads.note("contract", row.id, row.patient_id, field_name="delivery", rule=rule)
    return ContractView(row)


async def delivery(ctx: Context, contract_id: uuid.UUID | None, since: date | None = None,
                   until: date | None = None) -> ContractDelivery:
    """A contract's billing periods from ``since`` to ``until`` (those overlapping them; the whole term up to today
    by default), each item contracted, delivered and missed."""
    principal = ctx.require_principal()
    obj = "contract" if principal.kind == PATIENT else REPORT
    decision = await access.authorize(ctx, obj, "read", action=Action.READ, resource_type="contract",
                                      resource_id=contract_id)
    if since is not None and until is not None and until < since:
        raise BadUserInput("to: must not be before from.", field="to")
    view = await _reached(ctx, contract_id, decision.rule)
    row = view.row
    today = await contracts.local_today(ctx)
    if row.status == contracts.REVOKED:  # never in force: no period was ever due
        return ContractDelivery(view, today, [])
    versions = [VersionView(v, view) for v in await _calendars(ctx, [row.id])]
    through = min(today, until) if until is not None else today
    periods = [p for p in billing_periods(row.start_on, row.end_on, versions, through=through)
               if since is None or p.end >= since]
    if not periods:
        return ContractDelivery(view, today, [])
    used = list({p.version.row.id: p.version for p in periods}.values())
    items = dict(zip([v.row.id for v in used],
                     await asyncio.gather(*(contracts.items_of(ctx, v) for v in used)), strict=True))
    indexes = {code: code_index(ctx, code) for code in sorted({i.row.code for found in items.values()
                                                               for i in found})}
    zone = await institutions.zone_of(ctx)
    delivered = await _delivered(ctx, zone, [row.patient_id], set(indexes.values()), periods[0].start,
                                 periods[-1].end)
    out = []
    for period in periods:
        lines = items[period.version.row.id]
        counted = {code: _count(delivered.get((row.patient_id, index), []), period.start, period.end)
                   for code, index in indexes.items()}
        shares = _allocate([Line(i.row.position, i.row.code, i.row.quantity) for i in lines], counted)
        out.append(PeriodDelivery(period.start, period.end, period.version, period.end < today,
                                  [ItemDelivery(item, item.row.quantity, share)
                                   for item, share in zip(lines, shares, strict=True)]))
    return ContractDelivery(view, today, out)


# -- the department and institution report ---------------------------------------------------------


@dataclass(frozen=True)
class Month:
    key: str  # YYYY-MM
    first: date
    last: date


@dataclass
class MonthFigures:
    month: Month
    active: int = 0
    expiring: int = 0
    new: int = 0
    renewed: int = 0
    terminated: int = 0
    expired: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    contracted_units: int = 0
    delivered_units: int = 0

    @property
    def missed_units(self) -> int:
        return self.contracted_units - self.delivered_units

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered_units / self.contracted_units if self.contracted_units else None


@dataclass(frozen=True)
class ContractReport:
    department_id: uuid.UUID | None
    months: list[MonthFigures]
    terms_allowed: bool


def _month(value: str, name: str) -> Month:
    first = month_start(value, name)
    return Month(value, first, add_months(first, 1) - timedelta(days=1))


def months_between(first: str, last: str) -> list[Month]:
    start, end = _month(first, "from"), _month(last, "to")
    if end.first < start.first:
        raise BadUserInput("to: must not be before from.", field="to")
    count = (end.first.year - start.first.year) * 12 + end.first.month - start.first.month + 1
    if count > MAX_MONTHS:
        raise BadUserInput(f"to: at most {MAX_MONTHS} months from from.", field="to")
    months = []
    for n in range(count):
        day = add_months(start.first, n)
        months.append(Month(day.strftime("%Y-%m"), day, add_months(day, 1) - timedelta(days=1)))
    return months


async def _authorize_report(ctx: Context, department_id: uuid.UUID | None) -> str:
    """``contract_report: read``; department heads name one of their departments (another is FORBIDDEN and
    recorded); an unknown department (or another institution's) is NOT_FOUND."""
    decision = await access.authorize(ctx, REPORT, "read", action=Action.READ, resource_type=REPORT,
                                      resource_id=department_id)
    principal = ctx.require_principal()
    if not _wide(principal):
        if department_id is None:
            raise BadUserInput("departmentId: give one of your departments.", field="departmentId")
        if department_id not in principal.department_ids:
            await access.deny(ctx, Action.READ, REPORT, department_id, reason="other_department")
            raise Forbidden("departmentId: reports of other departments are not yours to see.", field="departmentId")
    return decision.rule


async def report(ctx: Context, department_id: uuid.UUID | None, first: str, last: str) -> ContractReport:
    rule = await _authorize_report(ctx, department_id)
    months = months_between(first, last)
    if department_id is not None and not await Department.exists(id=department_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, REPORT, department_id, "departmentId")
    zone = await institutions.zone_of(ctx)
    today = await contracts.local_today(ctx)
    # signed, and in force at some time: a REVOKED term never was
    signed = Contract.filter(institution_id=ctx.institution_id, activated_at__isnull=False).exclude(
        status=contracts.REVOKED)
    if department_id is not None:
        signed = signed.filter(department_id=department_id)
    figures = [MonthFigures(m) for m in months]
    await _count_contracts(ctx, signed, figures, zone)
    await _money_and_delivery(ctx, signed, figures, zone, today)
    terms = ctx.decide(TERMS, "read")
    ctx.reads.note(REPORT, department_id, None, field_class="aggregate", rule=rule)
    return ContractReport(department_id, figures, terms.allowed)


def revenue_of(ctx: Context, report: ContractReport, figures: MonthFigures) -> dict[str, int]:
    """A month's revenue for a caller who reads commercial terms; the refusal noted and FORBIDDEN otherwise."""
    if not report.terms_allowed:
        ctx.reads.note(REPORT, report.department_id, None, field_class="terms", outcome=Outcome.DENIED,
                       reason="forbidden_field")
        raise access.permission_refused(ctx, TERMS)
    ctx.reads.note(REPORT, report.department_id, None, field_class="terms", rule=ctx.decide(TERMS, "read").rule)
    return figures.revenue


async def _count_contracts(ctx: Context, signed: QuerySet[Contract], figures: list[MonthFigures],
                           zone: tzinfo) -> None:
    """Every month's counts in one statement (a filtered COUNT per month and figure)."""
    successors = Contract.filter(institution_id=ctx.institution_id, renewal_of_id__isnull=False,
                                 activated_at__isnull=False).exclude(status__in=contracts.ENDED_EARLY
                                                                      ).values("renewal_of_id")
    counts: dict[str, Count] = {}
    for n, f in enumerate(figures):
        m = f.month
        in_month = Q(end_on__gte=m.first, end_on__lte=m.last)
        active = Q(start_on__lte=m.last, end_on__gte=m.last)
        counts[f"active_{n}"] = Count("id", _filter=active)
        counts[f"expiring_{n}"] = Count("id", _filter=Q(start_on__lte=m.last, end_on__gt=m.last,
                                                        end_on__lte=m.last + timedelta(days=EXPIRING_DAYS)))
        counts[f"new_{n}"] = Count("id", _filter=Q(renewal_of_id__isnull=True,
                                                   activated_at__gte=_midnight(m.first, zone),
                                                   activated_at__lt=_midnight(m.last + timedelta(days=1), zone)))
        counts[f"renewed_{n}"] = Count("id", _filter=in_month & (
            Q(status="renewed") | Q(status__in=LIVE, id__in=Subquery(successors))))
        counts[f"terminated_{n}"] = Count("id", _filter=in_month & Q(status="terminated"))
        counts[f"expired_{n}"] = Count("id", _filter=in_month & Q(status="expired"))
    rows = await signed.annotate(**counts).values(*counts)
    row: dict[str, Any] = rows[0] if rows else {}
    for n, f in enumerate(figures):
        for name in ("active", "expiring", "new", "renewed", "terminated", "expired"):
            setattr(f, name, int(row.get(f"{name}_{n}") or 0))


async def _money_and_delivery(ctx: Context, signed: QuerySet[Contract], figures: list[MonthFigures], zone: tzinfo,
                              today: date) -> None:
    """Revenue per month (periods beginning in it) and delivery (periods ending in it, before today): the
    contracts whose term meets the range, their signed versions and items, and the visits, a statement each."""
    first, last = figures[0].month.first, figures[-1].month.last
    overlapping = signed.filter(start_on__lte=last, end_on__gte=first)
    rows = await overlapping.only("id", "patient_id", "currency", "start_on", "end_on")
    if not rows:
        return
    versions = await _calendars(ctx, Subquery(overlapping.values("id")))
    by_contract: dict[uuid.UUID, list[VersionView]] = defaultdict(list)
    views = {row.id: ContractView(row) for row in rows}
    for version in versions:
        by_contract[version.contract_id].append(VersionView(version, views[version.contract_id]))
    by_key = {f.month.key: f for f in figures}

    due: list[tuple[Contract, Period]] = []  # periods whose delivery counts: ended in the range, before today
    for row in rows:
        for period in billing_periods(row.start_on, row.end_on, by_contract[row.id], through=last):
            begins = by_key.get(period.start.strftime("%Y-%m"))
            if begins is not None:
                total = begins.revenue.get(row.currency, 0) + period.version.row.period_total
                begins.revenue[row.currency] = total
            if first <= period.end <= last and period.end < today:
                due.append((row, period))
    if not due:
        return
    lines = await _lines_of({period.version.row.id for _, period in due}, ctx.institution_id)
    indexes = {code: code_index(ctx, code) for code in sorted({line.code for _, period in due
                                                               for line in lines[period.version.row.id]})}
    delivered = await _delivered(ctx, zone, overlapping, set(indexes.values()), min(p.start for _, p in due),
                                 max(p.end for _, p in due))
    for row, period in due:
        items = lines[period.version.row.id]
        counted = {code: _count(delivered.get((row.patient_id, indexes[code]), []), period.start, period.end)
                   for code in {line.code for line in items}}
        month = by_key[period.end.strftime("%Y-%m")]
        for line, share in zip(items, _allocate(items, counted), strict=True):
            month.contracted_units += line.quantity
            month.delivered_units += min(share, line.quantity)

