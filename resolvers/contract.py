"""Service contracts (FHIR Contract): draft, amend, suspend, resume, terminate, renew, expire; versions and their diff.

A contract is one term of service with one client (a patient). What was agreed lives in its versions
(``models.contract``): version 1 is the original, each amendment a new version N+1 that states what changed and
takes effect on a date. A version is edited only while it is a draft; once sent for signature it is frozen (the
database refuses the change too, migration 0019). Sending and signing are the signature module's
(``resolvers.contract_signature``); when a version's last signature lands it calls ``on_version_signed`` here,
which activates the contract or applies the amendment, and keeps the renewal bookkeeping.

Reach: admin, finance and the front desk reach every contract of the institution; nurses, doctors and department
heads the contracts of the patients they reach; a patient their own; a partner the contracts it delivers part of
(``partner_id``), for patients granted to it, and then only the items it delivers. A contract out of reach
answers NOT_FOUND, as a missing one does, and the attempt is on the audit trail.

Field classes: commercial terms (prices, totals, deposit, the catalogue's price version) need ``contract.terms:
read`` (never a partner); special clauses are sealed and need ``contract.clauses: read``. A field refused is null
with FORBIDDEN at its path, and the refusal is noted. Every read notes the contract and its patient; every write
appends its record in its own transaction. Audit records never carry clause text or amounts.

Money is integer minor units of the contract's currency: never a float.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core import money, statements
from core.crypto import InstitutionKeys, field_aad
from core.db import placeholders
from core.errors import ILLEGAL_TRANSITION, STALE_VERSION, BadUserInput, Conflict, Forbidden, InvalidInput
from core.ids import uuid7
from core.principal import PARTNER, STAFF
from core.validation import Problems, check_year, clean_text
from models import Contact, Department, Institution, Partner, Patient, ServiceItem
from models.contract import BILLING_PERIODS, Contract, ContractItem, ContractVersion
from models.keyring import KeyRing
from models.service_item import FREQUENCIES
from policies.guard import Decision
from resolvers import access, pagination
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers import service_item as service_items
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.versioning import bumped

# -- limits and vocabulary -----------------------------------------------------------------

MAX_ITEMS = 50
TITLE_LIMIT = 200
TEXT_LIMIT = 20000  # rights and duties, clauses
SUMMARY_LIMIT = 2000
REASON_LIMIT = 200
MAX_NOTICE_DAYS = 365
MAX_QUANTITY = 10000
MAX_TERM_DAYS = 366 * 10
OPEN_VERSION = ("draft", "sent")
# A contract's versions as ``Contract.versions`` lists them stop here, oldest first (found in review: every version,
# each with its rights and duties and clauses, was loaded whole, on a page of up to 100 contracts, and an amendment
# adds one); every one pages through ``contractVersions``.
VERSIONS_LIMIT = 50
VERSION_CURSOR = "contract-version"  # by number
LIVE = ("active", "suspended")  # a contract in its term
INSTITUTION_WIDE = frozenset({"admin", "finance", "front_desk"})  # roles that reach every contract
TERMS, CLAUSES = "contract.terms", "contract.clauses"
PARTNER_VIEW = "partner_view"  # extensions.reason of a field a partner's view of a contract leaves out
AUTO_RENEWAL = "automatic renewal"
SYSTEM = Actor("system")
SWEEP_RULE = "contract expiry sweep"
SIGNED_RULE = "contract version signed"
CURSOR = "contract"
NUMBER_ATTEMPTS = 5

# Where a contract may go from where it stands (suspend, resume, terminate); sending, signing, expiry and renewal
# are moved by their own functions below.
TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "suspend": {"to": ("suspended",), "from": ("active",)},
    "resume": {"to": ("active",), "from": ("suspended",)},
    "terminate": {"to": ("terminated", "revoked"), "from": ("draft", "sent", "active", "suspended")},
}
# Never in force: no version signed yet. Terminated, such a contract is revoked as it stands (decided by the lead: a
# draft or sent contract, a prepared renewal most of all, could not be given up, and a draft renewal blocked the
# term's second renewal, the amendments moving its end, its expiry reminders and its automatic renewal for ever).
NEVER_IN_FORCE = ("draft", "sent")
# Terminated before its first day, or before any version was signed (DRAFT or SENT): never in force (FHIR revoked).
# Its term stays as agreed or drafted (a term never ends before it starts: found as a renewal signed ahead and
# terminated, which ended on the day before its start); no report month counts it, and it is no term's next term.
REVOKED = "revoked"
# Ended by a party (terminated, or revoked before it started or was signed). A renewal so ended is not the next term
# of the term it renews: that term may be renewed again, is not RENEWED by it, may have its end moved, is reminded of
# its end and renews itself at it. A term so ended has no next term: its renewal is neither sent nor signed
# (``check_renewed_term_running``).
ENDED_EARLY = ("terminated", REVOKED)
# Not ended: what contractTerminate ends (a term running or signed ahead, a contract never in force); a closed file's
# client has none (a death ends them, an archive waits for them).
NOT_ENDED = TRANSITIONS["terminate"]["from"]
# Why a death ended a contract: its ``statusReason`` and the reason of its record on the trail.
CLIENT_DECEASED = "client_deceased"

# Reason codes (``extensions.reason``) of refused input and conflicts.
STALE = STALE_VERSION
ILLEGAL = ILLEGAL_TRANSITION
NOT_DRAFT = "version_not_draft"
OPEN = "open_version_exists"
RENEWAL_EXISTS = "renewal_exists"
RENEWED_TERM_ENDED = "renewed_term_ended"
# What ``writing`` refuses on a closed file (archived, deceased), as it refuses a send or a signature there: a draft
# edited or an amendment drafted would wait for a send and signatures the file no longer takes (found in review).
DRAFTED = "drafting and amending contracts"


# -- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractView:
    """A contract in the caller's reach. ``partner_only``: a partner's view, its own items and no money."""

    row: Contract
    partner_only: bool = False


@dataclass(frozen=True)
class VersionView:
    row: ContractVersion
    contract: ContractView


@dataclass(frozen=True)
class ItemView:
    row: ContractItem
    version: VersionView


@dataclass(frozen=True)
class TermChange:
    field: str  # the GraphQL name (endOn, deposit...)
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ItemChange:
    before: ItemView
    after: ItemView
    fields: tuple[str, ...]  # quantity, frequency, unitPrice, deliveredByPartner


@dataclass(frozen=True)
class VersionDiff:
    contract: ContractView
    before: VersionView
    after: VersionView
    terms: list[TermChange]
    added: list[ItemView]
    removed: list[ItemView]
    changed: list[ItemChange]


def _now() -> datetime:
    return datetime.now(UTC)


async def local_today(ctx: Context, now: datetime | None = None) -> date:
    """The caller's institution's local date (contract terms are in local dates), by the zone its sign-in read."""
    return await institutions.local_today_of(ctx, now or _now())


# -- input problems, all reported at once ------------------------------------------------------


def _text(problems: Problems, path: str, value: str | None, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            problems.add(path, "required", "is required.")
        return None
    try:
        text = clean_text(value, field=path, max_length=limit, min_length=1 if required else 0)
    except BadUserInput as error:
        problems.add(path, "invalid_text", error.message.removeprefix(f"{path}: "))
        return None
    return text or None


def _conflict(message: str, reason: str, field: str = "expectedVersion") -> Conflict:
    return Conflict(message, field=field, reason=reason)


def _stale() -> Conflict:
    return _conflict("expectedVersion: the contract changed since you read it; read it again.", STALE)


# -- reach and reading -------------------------------------------------------------------------


def _wide(ctx: Context) -> bool:
    principal = ctx.require_principal()
    return principal.kind == STAFF and bool(principal.roles & INSTITUTION_WIDE)


def in_reach(ctx: Context) -> QuerySet[Contract] | None:
    """Contracts the caller reaches, as a query; None when it reaches none."""
    principal = ctx.require_principal()
    base = Contract.filter(institution_id=principal.institution_id)
    if _wide(ctx):
        return base
    patients = access.scoped_patients(ctx)
    if patients is None:
        return None
    query = base.filter(patient_id__in=Subquery(patients.values("id")))
    if principal.kind == PARTNER:
        query = query.filter(partner_id=principal.partner_id)
    return query


def patients_in_reach(ctx: Context) -> QuerySet[Patient] | None:
    """Patients whose contracts the caller reaches (admin and finance reach every client for contracts)."""
    if _wide(ctx):
        return Patient.filter(institution_id=ctx.institution_id)
    return access.scoped_patients(ctx)


def _view(ctx: Context, row: Contract) -> ContractView:
    return ContractView(row, partner_only=ctx.require_principal().kind == PARTNER)


def note_read(ctx: Context, view: ContractView) -> None:
    """A read of the contract on the patient's trail (once per operation and contract), naming the grant the file is
    open under (a partner's, break-glass) when ``access.load_file_grants`` found one."""
    ctx.reads.note("contract", view.row.id, view.row.patient_id, rule=ctx.decide("contract", "read").rule)
    grant = ctx.file_grants.get(view.row.patient_id)
    if grant:
        ctx.reads.note("contract", view.row.id, view.row.patient_id, rule=grant)


async def find(ctx: Context, contract_id: uuid.UUID | None, action: Action, field: str = "id") -> ContractView:
    """A contract in the caller's reach, or NOT_FOUND (recorded). Does not authorize: call ``access.authorize``
    first. With ``Action.READ`` the read is noted."""
    query = in_reach(ctx)
    row = None if query is None or contract_id is None else await query.get_or_none(id=contract_id)
    if row is None:
        raise await access.not_found(ctx, action, "contract", contract_id, field)
    view = _view(ctx, row)
    if action == Action.READ:
        await access.load_file_grants(ctx, [row.patient_id])
        note_read(ctx, view)
    return view


async def get(ctx: Context, contract_id: uuid.UUID | None) -> ContractView:
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           resource_id=contract_id)
    return await find(ctx, contract_id, Action.READ)


def may_read_terms(ctx: Context, view: ContractView) -> bool:
    return not view.partner_only and ctx.decide(TERMS, "read").allowed


def _field_refused(ctx: Context, view: ContractView, error: Forbidden, **what: str) -> Forbidden:
    """A field of the contract the caller may not read: the refusal noted on the contract's record, and ``error`` to
    raise (null with FORBIDDEN at the field's path): ``_left_out`` or ``access.permission_refused``."""
    ctx.reads.note("contract", view.row.id, view.row.patient_id, outcome=Outcome.DENIED, reason="forbidden_field",
                   **what)
    return error


def _left_out() -> Forbidden:
    """What a partner's view leaves out (money, the institution's words): reason ``partner_view``, whatever the
    policy grants, as the view decides it before the policy is asked."""
    return access.field_refused(PARTNER_VIEW)


def require_terms(ctx: Context, view: ContractView) -> None:
    """Commercial terms (prices, totals, deposit): noted as read, or the refusal noted and FORBIDDEN."""
    row = view.row
    if not may_read_terms(ctx, view):
        error = _left_out() if view.partner_only else access.permission_refused(ctx, TERMS)
        raise _field_refused(ctx, view, error, field_class="terms")
    ctx.reads.note("contract", row.id, row.patient_id, field_class="terms", rule=ctx.decide(TERMS, "read").rule)


def read_change_summary(ctx: Context, version: VersionView) -> str | None:
    """An amendment's summary: what changed in the whole contract and why, in words (its fees, every party's items),
    so not for a partner's view, which shows its own items and no money: FORBIDDEN there, the refusal noted (found in
    review: a partner read every amendment's summary in full)."""
    if version.contract.partner_only:
        raise _field_refused(ctx, version.contract, _left_out(), field_name="contract_version.change_summary")
    return version.row.change_summary


def read_status_reason(ctx: Context, view: ContractView) -> str | None:
    """Why the contract was last suspended, resumed, terminated or revoked, in the institution's words (unpaid fees,
    a dispute with the client): not for a partner's view, which shows its own items and no money: FORBIDDEN there,
    the refusal noted, as ``read_change_summary`` (found in review: a partner read it)."""
    if view.partner_only:
        raise _field_refused(ctx, view, _left_out(), field_name="contract.status_reason")
    return view.row.status_reason


async def read_clauses(ctx: Context, version: VersionView) -> str | None:
    """A version's special clauses, opened only for a caller with ``contract.clauses: read`` on this contract
    (``clauses_reached``)."""
    row = version.contract.row
    decision = ctx.decide(CLAUSES, "read")
    if not decision.allowed or not await clauses_reached(ctx, version.contract):
        raise _field_refused(ctx, version.contract, access.permission_refused(ctx, CLAUSES), field_class="clauses")
    ctx.reads.note("contract", row.id, row.patient_id, field_class="clauses", rule=decision.rule)
    sealed = version.row.clauses
    if sealed is None:
        return None
    ctx.reads.note("contract", row.id, row.patient_id, field_name="contract_version.clauses")
    return access.open_sealed(ctx, "contract_version", "clauses", version.row.id, sealed)


async def clauses_reached(ctx: Context, view: ContractView) -> bool:
    """Whether a role of the caller that may read clauses (which often speak of the client's health) reaches this
    contract: admins and finance every one, a clinician those of the patients that role reaches, a patient their
    own; never through the reach of another role of the account (found in review: a nurse who also works the front
    desk, which reaches every contract and reads no clauses, read the clauses of every client). Batched across a
    request; a statement only for an account whose roles reading clauses reach fewer files than its others."""

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[bool]:
        reached = _clauses_patients(ctx)
        if isinstance(reached, bool):
            return [reached] * len(patient_ids)
        found = set(await Patient.filter(reached, id__in=sorted(set(patient_ids))).values_list("id", flat=True))
        return [patient_id in found for patient_id in patient_ids]

    loaded: bool = await ctx.require_loaders().made("contract_clauses_reached", batch).load(view.row.patient_id)
    return loaded


def _clauses_patients(ctx: Context) -> Q | bool:
    """The patients whose contracts' clauses the caller reads, as a condition; True: every contract the caller
    reaches, False: none."""
    principal = ctx.require_principal()
    readers = {role for role in principal.roles
               if ctx.services.guard.role_allows(role, principal.institution_id, CLAUSES, "read")}
    if principal.kind == STAFF and readers & INSTITUTION_WIDE:
        return True
    scope = access.section_scope(ctx, CLAUSES)  # the patients the roles reading clauses reach
    if not _wide(ctx) and scope is access.patient_scope(ctx):  # the contracts in reach are those of these patients
        return True
    condition = scope.filter()
    return False if condition is None else condition


async def versions_of(ctx: Context, view: ContractView) -> list[VersionView]:
    """The contract's versions as ``Contract.versions`` lists them: oldest first, at most VERSIONS_LIMIT (batched
    across a page of contracts: two statements whatever the number of contracts and versions)."""
    async def batch(ids: Sequence[uuid.UUID]) -> list[list[ContractVersion]]:
        query = ContractVersion.filter(institution_id=ctx.institution_id)
        found = await newest_per_parent(query, "contract_id", ids, ("number",), VERSIONS_LIMIT)
        return [found.get(i, []) for i in ids]

    rows: list[ContractVersion] = await ctx.require_loaders().made("contract_versions", batch).load(view.row.id)
    return [VersionView(row, view) for row in rows]


async def versions_page(ctx: Context, contract_id: uuid.UUID | None, *, first: int, after: str | None,
                        count: bool = False) -> pagination.Page[VersionView]:
    """A contract's versions, oldest first, a page at a time: every one ``Contract.versions`` lists, and those past
    its bound. Read as the contract is."""
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           resource_id=contract_id)
    view = await find(ctx, contract_id, Action.READ, "contractId")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = ContractVersion.filter(institution_id=ctx.institution_id, contract_id=view.row.id)
    total = await pagination.count_of(query, count)
    if after:  # "" is no cursor: the first page, as null (every list alike)
        query = query.filter(number__gt=pagination.decode_int(VERSION_CURSOR, after, pagination.INT_MAX))
    rows = await query.order_by("number").limit(first + 1)
    return pagination.page_of([VersionView(row, view) for row in rows[:first]], len(rows) > first, VERSION_CURSOR,
                              key=lambda version: version.row.number, total=total)


async def version_of(ctx: Context, view: ContractView, number: int) -> VersionView | None:
    row = await ContractVersion.get_or_none(institution_id=ctx.institution_id, contract_id=view.row.id,
                                            number=number)
    return None if row is None else VersionView(row, view)


def newest_signed(versions: Sequence[VersionView]) -> VersionView | None:
    signed = [v for v in versions if v.row.status == "signed"]
    return signed[-1] if signed else None


def in_force_on(versions: Sequence[VersionView], day: date) -> VersionView | None:
    """The signed version in force on a date: the newest signed one already effective, else the first signed
    (a contract signed before its start)."""
    signed = [v for v in versions if v.row.status == "signed"]
    effective = [v for v in signed if v.row.effective_on <= day]
    return effective[-1] if effective else (signed[0] if signed else None)


async def today_of(ctx: Context) -> date:
    """The institution's local date, read once per request however many contracts ask."""
    async def batch(ids: Sequence[uuid.UUID]) -> list[str]:
        zones = dict(await Institution.filter(id__in=list(ids)).values_list("id", "time_zone"))
        return [str(zones[i]) for i in ids]

    zone: str = await ctx.require_loaders().made("contract_zone", batch).load(ctx.institution_id)
    return _now().astimezone(ZoneInfo(zone)).date()


async def in_force(ctx: Context, view: ContractView) -> VersionView | None:
    """``in_force_on`` today, chosen in SQL: the version in force and no other is loaded, one row a contract in one
    statement for a page of contracts (found in review: every version, long texts and all, was loaded to find it)."""
    today = await today_of(ctx)

    async def batch(ids: Sequence[uuid.UUID]) -> list[ContractVersion | None]:
        found = {row.contract_id: row for row in await _in_force_rows(ctx.institution_id, ids, today)}
        return [found.get(i) for i in ids]

    row = await ctx.require_loaders().made("contract_in_force", batch).load(view.row.id)
    return None if row is None else VersionView(row, view)


# The signed version in force on a day, as ``in_force_on`` chooses it: the newest signed one effective by then, else
# the first signed. Once per contract (the subquery's index: the contract's versions by number). The day is a value,
# or each contract's own last day of service (its row joined in the subquery: SQLite does not see the outer "c" in
# the subquery's ORDER BY).
_IN_FORCE = ('SELECT {columns} FROM "contract" AS "c" JOIN "contract_version" AS "v" ON "v"."id" = ('
             'SELECT "s"."id" FROM "contract_version" AS "s"{term} WHERE "s"."contract_id" = "c"."id" '
             'AND "s"."status" = {signed} ORDER BY CASE WHEN "s"."effective_on" <= {day} THEN 0 ELSE 1 END, '
             'CASE WHEN "s"."effective_on" <= {same_day} THEN -"s"."number" ELSE "s"."number" END LIMIT 1) '
             'WHERE {institution} "c"."id" {contracts}')
TERM = ' JOIN "contract" AS "t" ON "t"."id" = "s"."contract_id"'
TERM_END = '"t"."end_on"'


async def _in_force_rows(institution_id: uuid.UUID | None, contract_ids: Sequence[uuid.UUID], day: date | None,
                         columns: Sequence[str] | None = None) -> list[ContractVersion]:
    """The version in force on ``day`` (None: on the last day of each contract's own term) of each contract that has
    one, a row each, in one statement; ``institution_id`` None: of any institution (a sweep's); ``columns`` None: the
    whole row, else those columns and the contract's id."""
    db = ContractVersion._meta.db  # the caller's transaction's connection, when in one
    postgres = db.capabilities.dialect == "postgres"
    ids = sorted(set(contract_ids))
    marks = iter(placeholders(db, 4 + (1 if postgres else len(ids))))  # numbered in the order they are bound
    values: list[Any] = []

    def bind(value: Any) -> str:
        values.append(value if postgres or not isinstance(value, uuid.UUID) else str(value))
        return next(marks)

    signed = bind("signed")
    day_at, same_day = (TERM_END, TERM_END) if day is None else (bind(day), bind(day))
    institution = "" if institution_id is None else f'"c"."institution_id" = {bind(institution_id)} AND'
    contracts = f"= ANY({bind(ids)}::uuid[])" if postgres else f"IN ({', '.join(bind(i) for i in ids)})"
    projection = ContractVersion._meta.fields_db_projection
    chosen = '"v".*' if columns is None else ", ".join(
        f'"v"."{projection[name]}"' for name in dict.fromkeys(("contract_id", *columns)))
    sql = _IN_FORCE.format(columns=chosen, term=TERM if day is None else "", signed=signed, day=day_at,
                           same_day=same_day, institution=institution, contracts=contracts)
    _, rows = await db.execute_query(sql, values)
    return statements.models_of(ContractVersion, rows)


async def in_force_at_end(contract_ids: Sequence[uuid.UUID], institution_id: uuid.UUID | None = None, *,
                          columns: Sequence[str] | None = None) -> dict[uuid.UUID, ContractVersion]:
    """Each contract's version in force on the last day of its term (``in_force_on`` its ``end_on``): what the
    expiry sweep renews from, and what tells the reminders whether the contract renews itself. Chosen in SQL, the one
    version loaded a contract, in one statement whatever the number of contracts and versions (found in review: every
    version of each, long texts and all, was loaded to choose it); whole, or only ``columns`` (and ``contract_id``)."""
    if not contract_ids:
        return {}
    return {row.contract_id: row for row in await _in_force_rows(institution_id, contract_ids, None, columns)}


async def open_version(ctx: Context, view: ContractView) -> VersionView | None:
    """The version being prepared (draft) or collecting signatures (sent), if any (batched across a page of
    contracts; that version alone is loaded)."""
    async def batch(ids: Sequence[uuid.UUID]) -> list[ContractVersion | None]:
        rows = ContractVersion.filter(institution_id=ctx.institution_id, contract_id__in=list(ids),
                                      status__in=OPEN_VERSION)
        found = {row.contract_id: row for row in await rows.order_by("-number")}  # one at most; else the first
        return [found.get(i) for i in ids]

    row = await ctx.require_loaders().made("contract_open_version", batch).load(view.row.id)
    return None if row is None else VersionView(row, view)


async def items_of(ctx: Context, version: VersionView) -> list[ItemView]:
    """A version's items in order (batched across versions); a partner sees only those it delivers."""
    rows = await ctx.require_loaders().items_by_version.load(version.row.id)
    if version.contract.partner_only:
        rows = [row for row in rows if row.delivered_by_partner]
    return [ItemView(row, version) for row in rows]


async def patient_of(ctx: Context, view: ContractView) -> access.PatientView | None:
    """The client's file as the caller may see it (null for a caller who reads no patient file, e.g. admin)."""
    return await access.visible_patient(ctx, view.row.patient_id)


# -- lists -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractOrder:
    """A list order asked for: by the term's end or start, or by last change; ties broken by id."""

    field: str  # "end_on", "start_on" or "updated_at"
    direction: str = "asc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors, so one from another order is BAD_USER_INPUT."""
        return f"{CURSOR}.{self.field}.{self.direction}"


@dataclass(frozen=True)
class ContractPage:
    page: pagination.Page[ContractView]
    total: int | None = None  # counted only when asked for


async def page(ctx: Context, *, patient_id: uuid.UUID | None = None, status: str | None = None,
               department_id: uuid.UUID | None = None, ending_before: date | None = None, first: int,
               after: str | None, order: ContractOrder | None = None, count: bool = False) -> ContractPage:
    """Contracts in reach, newest first (or in ``order``): one statement for the page whatever its size (versions,
    items and patients come in one batched statement each when asked for), one more for the count if asked."""
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           patient_id=patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = in_reach(ctx)
    if query is None:
        return ContractPage(pagination.Page([], False), await pagination.count_of(None, count))
    if patient_id is not None:
        query = query.filter(patient_id=patient_id)
    if status is not None:
        query = query.filter(status=status)
    if department_id is not None:
        query = query.filter(department_id=department_id)
    if ending_before is not None:
        query = query.filter(end_on__lt=ending_before)
    total = await pagination.count_of(query, count)
    if order is not None:
        rows = await _ordered(query, order, after, first)
    else:
        if after:
            query = query.filter(id__lt=pagination.decode_uuid(CURSOR, after))
        rows = await query.order_by("-id").limit(first + 1)
    views = [_view(ctx, row) for row in rows[:first]]
    await access.load_file_grants(ctx, [view.row.patient_id for view in views])
    for view in views:
        note_read(ctx, view)
    if order is None:
        return ContractPage(pagination.page_of(views, len(rows) > first, CURSOR, key=lambda v: v.row.id), total)
    column = order.field
    return ContractPage(pagination.page_of(views, len(rows) > first, order.cursor_kind,
                                           key=lambda v: f"{getattr(v.row, column).isoformat()}|{v.row.id}"), total)


async def _ordered(query: Any, order: ContractOrder, after: str | None, first: int) -> list[Contract]:
    """A page by keyset: the sort key, then the id."""
    parse = pagination.decode_time if order.field == "updated_at" else date.fromisoformat
    return await pagination.keyset_rows(query, order.field, order.direction == "desc", first=first, after=after,
                                        kind=order.cursor_kind, parse=parse)


# -- validating terms and items ------------------------------------------------------------------


@dataclass
class Line:
    """An item as it will be written."""

    service_item_id: uuid.UUID
    code: str  # as contracted
    name: str
    price_id: uuid.UUID
    unit_price: int
    quantity: int
    frequency: str
    delivered_by_partner: bool

    @property
    def total(self) -> int:
        return money.multiply(self.unit_price, self.quantity)


async def _lines(ctx: Context, problems: Problems, items: list[dict[str, Any]] | None, *, path: str,
                 currency: str | None, day: date | None, kept: dict[uuid.UUID, tuple[uuid.UUID, int]] | None = None,
                 partner: bool) -> list[Line]:
    """Validate items and price them: each catalogue item's price in force on ``day`` in the contract's currency,
    or for an item in ``kept`` (an amendment: service item -> (price version, unit price) as signed) that price."""
    if items is None:
        problems.add(path, "required", "is required.")
        return []
    if not 1 <= len(items) <= MAX_ITEMS:
        problems.add(path, "item_count", f"1 to {MAX_ITEMS} items.")
        return []
    ids = [cast(uuid.UUID, item.get("service_item_id")) for item in items if item.get("service_item_id")]
    # An active item of the catalogue, or a service the amended version holds (``kept``), retired since or not: the
    # amendment keeps what was contracted (found in hunting: a retired service refused every amendment of the contract
    # at an item the caller never sent).
    catalogue = {row.id: row for row in await ServiceItem.filter(institution_id=ctx.institution_id, id__in=ids)
                 if row.active or row.id in (kept or {})} if ids else {}
    priced = await service_items.prices_on(ctx.institution_id, list(catalogue), day) if day is not None else {}
    lines: list[Line] = []
    for index, item in enumerate(items):
        at = f"{path}[{index}]"
        service = catalogue.get(cast(uuid.UUID, item.get("service_item_id")))
        quantity, frequency = item.get("quantity"), item.get("frequency")
        by_partner = bool(item.get("delivered_by_partner", False))
        ok = True
        if not isinstance(quantity, int) or quantity <= 0 or quantity > MAX_QUANTITY:
            problems.add(f"{at}.quantity", "quantity_not_positive", f"a whole number from 1 to {MAX_QUANTITY}.")
            ok = False
        if by_partner and not partner:
            problems.add(f"{at}.deliveredByPartner", "no_partner", "the contract names no care partner.")
            ok = False
        if service is None:
            problems.add(f"{at}.serviceItemId", "unknown_item", "not an active item of the catalogue.")
            continue
        if frequency not in FREQUENCIES or frequency not in service_items.frequencies_of(service):
            offered = ", ".join(service_items.frequencies_of(service)) or "with no frequency"
            problems.add(f"{at}.frequency", "frequency_not_offered", f"the item is offered {offered}.")
            ok = False
        held = (kept or {}).get(service.id)
        if held is not None:
            price_id, unit_price = held
        else:
            price = priced.get(service.id)
            if day is None:
                continue
            if price is None:
                problems.add(f"{at}.serviceItemId", "no_price", "the item has no price in force on that date.")
                continue
            if currency is not None and price.currency != currency:
                problems.add(f"{at}.serviceItemId", "currency_mismatch",
                             "the item's price is in another currency than the contract's.")
                continue
            price_id, unit_price = price.id, price.unit_price
        if ok:
            line = Line(service.id, service.code, service.name, price_id, unit_price, cast(int, quantity),
                        cast(str, frequency), by_partner)
            if _beyond_bound(money.multiply, line.unit_price, line.quantity):  # found in review: an
                # INTERNAL_SERVER_ERROR deep in the insert
                problems.add(f"{at}.quantity", "total_too_large", "the item's total is beyond what an amount holds.")
                continue
            lines.append(line)
    if _beyond_bound(money.total, [line.total for line in lines]):
        problems.add(path, "total_too_large", "the period's total is beyond what an amount holds.")
    return lines


def _beyond_bound(compute: Callable[..., int], *arguments: Any) -> bool:
    try:
        compute(*arguments)
    except OverflowError:
        return True
    return False


def _currency(problems: Problems, path: str, value: str | None) -> str | None:
    if value is None:
        problems.add(path, "required", "is required.")
        return None
    try:
        return money.parse_currency(value, field=path)
    except BadUserInput:
        problems.add(path, "unknown_currency", "an ISO 4217 code in capitals that the institution bills in.")
        return None


def _deposit(problems: Problems, path: str, value: dict[str, Any] | None, currency: str | None) -> int | None:
    """A deposit as minor units of the contract's currency (None: not given or invalid)."""
    if value is None:
        return None
    try:
        minor, code = money.parse_money(str(value.get("amount", "")), str(value.get("currency", "")), field=path)
    except BadUserInput as error:
        reason = "unknown_currency" if (error.field or "").endswith(".currency") else "invalid_amount"
        problems.add(error.field or path, reason, error.message.removeprefix(f"{error.field}: "))
        return None
    if currency is not None and code != currency:
        problems.add(f"{path}.currency", "currency_mismatch", "the deposit must be in the contract's currency.")
        return None
    return minor


def _term(problems: Problems, start_path: str, start: date | None, end_path: str, end: date | None) -> None:
    _years(problems, start_path, start)
    _years(problems, end_path, end)
    if start is not None and end is not None:
        if end <= start:
            problems.add(end_path, "end_not_after_start", "must be after the start.")
        elif (end - start).days > MAX_TERM_DAYS:
            problems.add(end_path, "term_too_long", "a term is at most ten years.")


def _years(problems: Problems, path: str, day: date | None) -> None:
    """A term's dates within the years contracts are made for: billing periods and renewals count on from them."""
    if day is not None:
        with problems.collect(path):
            check_year(day, path)


def _choice(problems: Problems, path: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        problems.add(path, "invalid_choice", f"one of {', '.join(allowed)}.")
        return None
    return value


def _notice(problems: Problems, path: str, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_NOTICE_DAYS:
        problems.add(path, "invalid_notice", f"0 to {MAX_NOTICE_DAYS} days.")
        return None
    return value


async def _parties(ctx: Context, problems: Problems, contacts: QuerySet[Contact], data: dict[str, Any], *,
                   path: str, action: Action, patient_id: uuid.UUID) -> dict[str, Any]:
    """Department, guarantor (one of ``contacts``, the client's: another is a refusal on the trail) and care partner
    (of the institution), as given."""
    out: dict[str, Any] = {}
    if "department_id" in data:
        department_id = data["department_id"]
        if department_id is not None and not await Department.exists(id=department_id,
                                                                     institution_id=ctx.institution_id):
            problems.add(f"{path}.departmentId", "unknown_department", "not a department of the institution.")
        out["department_id"] = department_id
    if "guarantor_contact_id" in data:
        contact_id = data["guarantor_contact_id"]
        if contact_id is not None and not await access.is_patient_contact(ctx, action, contact_id, patient_id,
                                                                          contacts):
            problems.add(f"{path}.guarantorContactId", "not_patient_contact", "not a contact of this patient.")
        out["guarantor_id"] = contact_id
    if "partner_id" in data:
        partner_id = data["partner_id"]
        if partner_id is not None and not await Partner.exists(id=partner_id, institution_id=ctx.institution_id,
                                                               is_active=True):
            problems.add(f"{path}.partnerId", "unknown_partner", "not an active partner of the institution.")
        out["partner_id"] = partner_id
    return out


def _terms_after(problems: Problems, data: dict[str, Any], currency: str, base: ContractVersion,
                 scribe: Scribe) -> dict[str, Any]:
    """The terms of a version that follows ``base`` (an amendment, or a renewal's first): each one given, checked
    (its problems added), else the base's. A deposit left as the base's needs no right to change it."""
    billing = _choice(problems, "input.billingPeriod", data.get("billing_period"), BILLING_PERIODS)
    deposit = _deposit(problems, "input.deposit", data.get("deposit"), currency)
    notice = _notice(problems, "input.noticeDays", data.get("notice_days"))
    rights = (_text(problems, "input.rightsDuties", data["rights_duties"], TEXT_LIMIT, required=True)
              if data.get("rights_duties") is not None else base.rights_duties)
    clauses = (_text(problems, "input.clauses", data["clauses"], TEXT_LIMIT, required=False)
               if "clauses" in data else scribe.open(base))
    return {"billing_period": billing or base.billing_period, "deposit": base.deposit if deposit is None else deposit,
            "notice_days": base.notice_days if notice is None else notice,
            "auto_renew": base.auto_renew if data.get("auto_renew") is None else bool(data["auto_renew"]),
            "rights_duties": rights, "clauses": clauses}


def _contacts_of_client(ctx: Context, contract_id: uuid.UUID) -> QuerySet[Contact]:
    """The contacts of the file a contract found earlier is on, as one statement finds it: a merge since it was found
    moved the contract and the merged file's contacts to the survivor together (found in review: checked on the
    merged file, which had none left, a guarantor was refused). A merge after the check moves both again."""
    return Contact.filter(institution_id=ctx.institution_id, patient_id__in=Subquery(
        Contract.filter(id=contract_id, institution_id=ctx.institution_id).values("patient_id")))


def _changes_deposit(deposit: int | None, current: int) -> bool:
    return deposit is not None and deposit != current


async def _require_terms_right(ctx: Context, row: Contract) -> None:
    """Money is finance's: setting or changing a deposit, or repricing an amendment, needs ``contract.terms:
    update`` (the front desk drafts with none and leaves it as it is). A refusal names the file the contract is on
    now (``access.authorize_on_record``)."""
    await access.authorize_on_record(ctx, TERMS, "update", action=Action.UPDATE, resource_type="contract",
                                     resource_id=row.id, model=Contract, record_id=row.id)


# -- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scribe:
    """Who writes versions and items, and with which keys clauses are sealed: a request's caller, or the system
    (the expiry sweep's automatic renewals)."""

    institution_id: uuid.UUID
    keys: InstitutionKeys
    staff_id: uuid.UUID | None = None

    @classmethod
    def of(cls, ctx: Context) -> Scribe:
        principal = ctx.require_principal()
        return cls(principal.institution_id, ctx.require_keys(),
                   principal.user_id if principal.kind == STAFF else None)

    def seal(self, version_id: uuid.UUID, clauses: str | None) -> bytes | None:
        if clauses is None:
            return None
        return self.keys.seal(clauses, field_aad(self.institution_id, "contract_version", "clauses", version_id))

    def open(self, version: ContractVersion) -> str | None:
        """A version's clauses opened to be sealed again under another version (never shown)."""
        if version.clauses is None:
            return None
        return self.keys.open(version.clauses, field_aad(self.institution_id, "contract_version", "clauses",
                                                         version.id))


async def _insert_version(scribe: Scribe, contract_id: uuid.UUID, number: int, *, status: str, effective_on: date,
                          end_on: date, billing_period: str, deposit: int, notice_days: int, auto_renew: bool,
                          rights_duties: str, clauses: str | None, change_summary: str | None, lines: list[Line],
                          signed_at: datetime | None = None) -> ContractVersion:
    version_id = uuid7()
    # Items go in while the version is a draft (the database refuses items of a sent or signed version).
    row = await ContractVersion.create(
        id=version_id, institution_id=scribe.institution_id, contract_id=contract_id, number=number, status="draft",
        effective_on=effective_on, end_on=end_on, billing_period=billing_period, deposit=deposit,
        period_total=money.total(line.total for line in lines), notice_days=notice_days, auto_renew=auto_renew,
        rights_duties=rights_duties, clauses=scribe.seal(version_id, clauses), change_summary=change_summary,
        created_by_id=scribe.staff_id)
    await _insert_items(scribe.institution_id, version_id, lines)
    if status != "draft":
        await ContractVersion.filter(id=version_id).update(status=status, signed_at=signed_at)
        row.status, row.signed_at = status, signed_at
    return row


async def _insert_items(institution_id: uuid.UUID, version_id: uuid.UUID, lines: list[Line]) -> None:
    await ContractItem.bulk_create([
        ContractItem(id=uuid7(), institution_id=institution_id, contract_version_id=version_id,
                     service_item_id=line.service_item_id, price_id=line.price_id, position=position,
                     code=line.code, name=line.name, quantity=line.quantity,
                     frequency=line.frequency, unit_price=line.unit_price, period_total=line.total,
                     delivered_by_partner=line.delivered_by_partner)
        for position, line in enumerate(lines, start=1)])


async def _next_number(institution_id: uuid.UUID, year: int) -> str:
    prefix = f"C-{year}-"
    taken = await Contract.filter(institution_id=institution_id, number__startswith=prefix).values_list(
        "number", flat=True)
    highest = max((int(str(n)[len(prefix):]) for n in taken if str(n)[len(prefix):].isdigit()), default=0)
    return f"{prefix}{highest + 1:05d}"


async def _insert_contract_rows(scribe: Scribe, year: int, values: dict[str, Any], version: dict[str, Any]
                                ) -> Contract:
    """A contract numbered C-<year>-<seq> with its version 1 (inside the caller's transaction)."""
    number = await _next_number(scribe.institution_id, year)
    row = await Contract.create(id=uuid7(), institution_id=scribe.institution_id, number=number, **values)
    await _insert_version(scribe, row.id, 1, **version)
    return row


async def _insert_contract(ctx: Context, values: dict[str, Any], version: dict[str, Any], *, decision: Decision,
                           written: frozenset[str]) -> Contract:
    """A new contract with its version 1 and its record, in one transaction; a number taken meanwhile by a
    concurrent creation is drawn again."""
    scribe = Scribe.of(ctx)
    year = (await local_today(ctx)).year
    renewal = values.get("renewal_of_id") is not None
    for attempt in range(NUMBER_ATTEMPTS):
        try:
            # The file the patient was read on (a renewal's: the renewed contract's), locked first as a merge locks
            # it: a merge since refused, not a draft left on the merged file.
            # A new contract, a renewal too, is for an active file: one archived or deceased (before or since it was
            # read) is refused (found in review: a closed file's contract was renewed).
            async with access.file_transaction(ctx, values["patient_id"], action=Action.CREATE,
                                               field="contractId" if renewal else "input.patientId",
                                               active="contracts"):
                if renewal:  # one renewal at a time, checked under the term's lock
                    term = await Contract.filter(id=values["renewal_of_id"]).select_for_update().only(
                        "id", "status", "end_on").first()
                    await _check_no_renewal(ctx, values["renewal_of_id"])
                    # The term as it is now: an amendment signed since it was read may have moved its end (found
                    # in review: the next term then overlapped it or left a gap) or ended it.
                    if term is None or term.status not in LIVE or term.end_on + timedelta(days=1) != values[
                            "start_on"]:
                        raise _conflict("contractId: the contract's term changed since you read it; read it again.",
                                        STALE, "contractId")
                row = await _insert_contract_rows(scribe, year, values, version)
                await writer.append([access.write_record(ctx, Action.CREATE, "contract", row.id,
                                                         patient_id=row.patient_id, fields=written,
                                                         decision=decision)])
            return row
        except IntegrityError:
            await _check_guarantor_kept(ctx, values.get("guarantor_id"), values["patient_id"], Action.CREATE)
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _check_guarantor_kept(ctx: Context, guarantor_id: uuid.UUID | None, patient_id: uuid.UUID,
                                action: Action) -> None:
    """After a write refused by the database (a draft's insert, or its edit): a guarantor deleted since ``_parties``
    found it is answered as a guarantor not the client's (the foreign key refused it on every attempt of the number
    draw)."""
    if not await access.contact_deleted_meanwhile(ctx, action, guarantor_id, patient_id):
        return
    raise InvalidInput([("input.guarantorContactId", "not_patient_contact", "not a contact of this patient.")])


async def _check_no_renewal(ctx: Context, contract_id: uuid.UUID) -> None:
    """CONFLICT ``renewal_exists`` when the contract has a renewal that is not terminated. Checked again inside the
    renewal's insert under the renewed contract's lock: two renewals sent at once made two drafts (found in
    review)."""
    if await Contract.filter(institution_id=ctx.institution_id, renewal_of_id=contract_id).exclude(
            status__in=ENDED_EARLY).exists():
        raise _conflict("contractId: the contract has a renewal already.", RENEWAL_EXISTS, "contractId")


async def check_renewed_term_running(ctx: Context, contract: Contract, field: str) -> None:
    """The original terms of a renewal are sent and signed only while the term it renews has not been ended by a
    party: CONFLICT ``renewed_term_ended`` otherwise (found in review: a renewal signed after the term it renews was
    terminated became ACTIVE, the next term of a term that had ended months before it started). Inside a write's
    transaction the renewed term's row is locked, as ``transition`` writes it before it looks for a renewal signed."""
    if contract.renewal_of_id is None or contract.status not in ("draft", "sent"):
        return
    term = await Contract.filter(id=contract.renewal_of_id, institution_id=ctx.institution_id
                                 ).select_for_update().only("id", "status").first()
    if term is not None and term.status in ENDED_EARLY:
        raise _conflict(f"{field}: the term this contract renews was ended ({term.status.upper()}); it has no next "
                        "term. Draft a new contract instead.", RENEWED_TERM_ENDED, field)


async def _cas(ctx: Context, row: Contract, expected: int, **columns: Any) -> None:
    """Write the contract row only over the version the caller read."""
    changed = await Contract.filter(id=row.id, institution_id=ctx.institution_id, version=expected).update(
        **columns, version=bumped(), updated_at=_now())
    if changed != 1:
        raise _stale()


@asynccontextmanager
async def writing(ctx: Context, view: ContractView, action: Action, field: str = "contractId", *,
                  active: str | None = None) -> AsyncIterator[uuid.UUID]:
    """The transaction of a caller's write to a contract it found; yields the client's file as it is now, which the
    write's records name. The file is held first (``access.following_record``), as a merge locks it before it moves
    the contract. A file merged since the contract was found moved the contract to the survivor: the caller named the
    contract, not the file, so the write goes on and is recorded on the survivor's trail, if the caller reaches the
    contract there (``in_reach``, as ``find`` would ask after the merge); beyond it NOT_FOUND for the contract,
    nothing written, the refusal recorded once rolled back (found in review: the records named the merged file). As
    ``appointmentCancel`` and ``followUpTaskComplete`` do; a write that adds a contract to a file (create, renew)
    refuses a merged file instead, as every write naming a file does.
    ``active`` (what is for active files only: a send, a signature, a draft edited, an amendment) refuses the
    client's file closed, read once it is held, BAD_USER_INPUT at ``field`` (found in review: a contract of a file
    closed before a death ended contracts and an archive waited for them was sent, signed, amended and its draft
    edited). Neither comes about while the write runs: an archive is refused while the contract has not ended, and a
    death ends it under the contract's lock, which these writes take (a draft edited and an amendment through
    ``_cas``, over the version the caller read: a death in between bumped it, CONFLICT ``stale_version``)."""
    following = access.following_record(ctx, action, "contract", view.row.id, field=field,
                                        reached=lambda: _reached(ctx, view.row.id))
    async with following as hold, in_transaction():
        patient_id = await hold(view.row.patient_id)
        if active is not None:
            access.require_active(await _file_status(patient_id), field, active)
        yield patient_id


async def _reached(ctx: Context, contract_id: uuid.UUID) -> bool:
    query = in_reach(ctx)
    return query is not None and await query.filter(id=contract_id).exists()


def _expect(row: Contract, expected: int | None) -> int:
    if expected is not None and expected != row.version:
        raise _stale()
    return row.version


async def _refetch(row: Contract) -> Contract:
    return await Contract.get(id=row.id, institution_id=row.institution_id)


# -- create ------------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> ContractView:
    """A draft contract (version 1, draft) with its items priced from the catalogue on the start date."""
    patient_id = data.get("patient_id")
    decision = await access.authorize(ctx, "contract", "create", action=Action.CREATE, resource_type="contract",
                                      patient_id=patient_id)
    patients = patients_in_reach(ctx)
    patient = None if patients is None or patient_id is None else await patients.get_or_none(id=patient_id)
    if patient is None:
        raise await access.not_found(ctx, Action.CREATE, "patient", patient_id, "input.patientId")
    if patient.status == access.MERGED:  # as every write to a merged file is refused
        raise await access.refuse_merged(ctx, Action.CREATE, patient.id, "input.patientId")
    problems = Problems()
    if patient.status != "active":
        problems.add("input.patientId", "patient_not_active", "contracts are for active files.")
    title = _text(problems, "input.title", data.get("title"), TITLE_LIMIT, required=True)
    currency = _currency(problems, "input.currency", data.get("currency"))
    start_on, end_on = data.get("start_on"), data.get("end_on")
    if start_on is None:
        problems.add("input.startOn", "required", "is required.")
    if end_on is None:
        problems.add("input.endOn", "required", "is required.")
    _term(problems, "input.startOn", start_on, "input.endOn", end_on)
    billing = _choice(problems, "input.billingPeriod", data.get("billing_period", "monthly"), BILLING_PERIODS)
    deposit = _deposit(problems, "input.deposit", data.get("deposit"), currency)
    notice = _notice(problems, "input.noticeDays", data.get("notice_days", 30))
    rights = _text(problems, "input.rightsDuties", data.get("rights_duties"), TEXT_LIMIT, required=True)
    clauses = _text(problems, "input.clauses", data.get("clauses"), TEXT_LIMIT, required=False)
    parties = await _parties(ctx, problems, Contact.filter(institution_id=ctx.institution_id, patient_id=patient.id),
                             {k: data.get(k) for k in ("department_id", "guarantor_contact_id", "partner_id")},
                             path="input", action=Action.CREATE, patient_id=patient.id)
    lines = await _lines(ctx, problems, data.get("items"), path="input.items", currency=currency, day=start_on,
                         partner=parties.get("partner_id") is not None)
    problems.check()
    if _changes_deposit(deposit, 0):
        await access.authorize(ctx, TERMS, "update", action=Action.UPDATE, resource_type="contract",
                               patient_id=patient.id)
    if parties.get("department_id") is None:
        parties["department_id"] = patient.department_id
    principal = ctx.require_principal()
    values = {"patient_id": patient.id, "title": title, "currency": currency, "status": "draft",
              "start_on": start_on, "end_on": end_on, "current_version": 1,
              "created_by_id": principal.user_id if principal.kind == STAFF else None, **parties}
    version = {"status": "draft", "effective_on": start_on, "end_on": end_on, "billing_period": billing,
               "deposit": deposit or 0, "notice_days": notice, "auto_renew": bool(data.get("auto_renew", False)),
               "rights_duties": rights, "clauses": clauses, "change_summary": None, "lines": lines}
    written = frozenset({"number", "title", "currency", "status", "start_on", "end_on", *parties, "version.1",
                         "items"} | ({"deposit"} if deposit else set()) | ({"clauses"} if clauses else set()))
    row = await _insert_contract(ctx, values, version, decision=decision, written=written)
    return _view(ctx, row)


# -- the signature module's hooks -----------------------------------------------------------------


async def on_version_sent(ctx: Context, contract: Contract, version: ContractVersion) -> None:
    """Call inside the transaction that sends a version for signature: the original terms (version 1, or the copy
    re-issued after a withdrawn version 1) move a DRAFT contract to SENT; an amendment leaves the contract as it
    stands. Bumps the contract's row version."""
    columns: dict[str, Any] = {"status": "sent"} if contract.status == "draft" else {}
    await Contract.filter(id=contract.id, institution_id=contract.institution_id).update(
        **columns, version=F("version") + 1, updated_at=_now())


async def on_version_signed(ctx: Context, contract: Contract, version: ContractVersion, *,
                            actor: Actor | None = None, decision: Decision | None = None) -> Contract:
    """Call inside the transaction in which a version's last signature lands (the version already ``signed``).

    - the original terms (version 1, or the copy re-issued after a withdrawn version 1) of a contract not yet
      active: the contract becomes ACTIVE (``activated_at`` now). A renewal (``renewal_of``)
      whose previous term already ended (EXPIRED) marks that one RENEWED now; a previous term still running is
      marked RENEWED by the expiry sweep at its end instead of EXPIRED;
    - an amendment of a running contract: its end date becomes the version's ``end_on`` (the status stays).
    Appends the contract's write record (the caller's actor, or ``actor``). Returns the contract as written."""
    now = _now()
    activates = contract.status in ("sent", "draft")
    columns: dict[str, Any] = {"status": "active", "activated_at": now} if activates else {"end_on": version.end_on}
    await Contract.filter(id=contract.id, institution_id=contract.institution_id).update(
        **columns, version=F("version") + 1, updated_at=now)
    records = [AuditRecord(contract.institution_id, actor or ctx.actor, Action.UPDATE, "contract", Outcome.ALLOWED,
                           ctx.request, resource_id=contract.id, patient_id=contract.patient_id,
                           fields_read=frozenset(columns) | {f"version.{version.number}.signed"},
                           policy_rule=(decision.rule if decision else "") or SIGNED_RULE)]
    if activates and contract.renewal_of_id is not None:
        renewed = await Contract.filter(id=contract.renewal_of_id, institution_id=contract.institution_id,
                                        status="expired").update(status="renewed", version=F("version") + 1,
                                                                 updated_at=now)
        if renewed:
            records.append(AuditRecord(contract.institution_id, actor or ctx.actor, Action.UPDATE, "contract",
                                       Outcome.ALLOWED, ctx.request, resource_id=contract.renewal_of_id,
                                       patient_id=contract.patient_id, fields_read=frozenset({"status"}),
                                       policy_rule=SIGNED_RULE))
    ctx.recorded = True
    await writer.append(records)
    return await Contract.get(id=contract.id, institution_id=contract.institution_id)


# -- editing the open draft ---------------------------------------------------------------------------


def _item_dicts(items: Sequence[ContractItem]) -> list[dict[str, Any]]:
    return [{"service_item_id": item.service_item_id, "quantity": item.quantity, "frequency": item.frequency,
             "delivered_by_partner": item.delivered_by_partner} for item in items]


def _kept_prices(items: Sequence[ContractItem]) -> dict[uuid.UUID, tuple[uuid.UUID, int]]:
    """An amendment keeps the prices signed for the services already contracted (service item -> price)."""
    return {item.service_item_id: (item.price_id, item.unit_price) for item in items}


async def _items_of_version(institution_id: uuid.UUID, version_id: uuid.UUID) -> list[ContractItem]:
    return list(await ContractItem.filter(institution_id=institution_id, contract_version_id=version_id)
                .order_by("position"))


# What the writes read of a contract's versions, chosen in SQL: the few versions and columns each uses, in one
# statement whatever the number of versions (found in review: ``contractDraftUpdate``, ``contractAmend`` and
# ``contractRenew`` each loaded every version of the contract whole, long texts and all, and an amendment adds one).
# The draft being edited and the version it amends: which is which, the dates an amendment is held to, the deposit
# (whether it changes), the ids (the items, the clauses' seal).
DRAFT_COLUMNS = ("id", "number", "status", "effective_on", "end_on", "deposit")
# What a following version (an amendment, a renewal's first) takes from the version it follows (``_terms_after``): the
# texts only when the input does not replace them.
FOLLOWED_COLUMNS = ("id", "billing_period", "deposit", "notice_days", "auto_renew")
NEWEST_NUMBER, OPEN_NUMBER = "newest_number", "open_number"  # an amendment's: its contract's newest, open version


def _followed_columns(data: dict[str, Any], *extra: str) -> tuple[str, ...]:
    return (*FOLLOWED_COLUMNS, *extra, *(("rights_duties",) if data.get("rights_duties") is None else ()),
            *(() if "clauses" in data else ("clauses",)))


def _versions_of(institution_id: uuid.UUID, contract_id: uuid.UUID) -> QuerySet[ContractVersion]:
    return ContractVersion.filter(institution_id=institution_id, contract_id=contract_id)


def _newest_signed(institution_id: uuid.UUID, contract_id: uuid.UUID) -> QuerySet[ContractVersion]:
    """The newest signed version (by number): the one an amendment amends and a renewal renews, whether or not it
    is in force yet."""
    return _versions_of(institution_id, contract_id).filter(status="signed").order_by("-number").limit(1)


async def _draft_and_base(institution_id: uuid.UUID, contract_id: uuid.UUID, current: int
                          ) -> tuple[ContractVersion, ContractVersion | None]:
    """The contract's current version (``current_version``: the one a draft update edits) and its newest signed
    version (None: none signed, the original terms), ``DRAFT_COLUMNS`` only: two rows at most, in one statement."""
    rows = await _versions_of(institution_id, contract_id).filter(
        Q(number=current) | Q(id=Subquery(_newest_signed(institution_id, contract_id).values("id")))
    ).only(*DRAFT_COLUMNS)
    version = next(v for v in rows if v.number == current)
    signed = sorted((v for v in rows if v.status == "signed"), key=lambda v: v.number)
    return version, signed[-1] if signed else None


def _amendment_dates(problems: Problems, contract: Contract, base: ContractVersion, today: date,
                     effective_on: date | None, end_on: date) -> None:
    """An amendment takes effect within the term (from the start to the end, the new end if it moves it), not
    before today nor before the version it amends, and the term still ends after it takes effect."""
    if effective_on is None:
        problems.add("input.effectiveOn", "required", "is required.")
        return
    # an end the input does not move is the contract's (stored before the years were bounded), not the input's
    end_at = "input.endOn" if end_on != base.end_on else "contractId"
    _years(problems, end_at, end_on)
    if effective_on < today:
        problems.add("input.effectiveOn", "effective_in_past", "not before today (the institution's date).")
    elif effective_on < max(contract.start_on, base.effective_on):
        problems.add("input.effectiveOn", "effective_outside_term",
                     "not before the start of the term nor before the version it amends.")
    if end_on <= effective_on:
        problems.add("input.endOn" if end_on != base.end_on else "input.effectiveOn", "effective_outside_term",
                     "the term must still run after the amendment takes effect.")
    elif (end_on - contract.start_on).days > MAX_TERM_DAYS:
        problems.add(end_at, "term_too_long", "a term is at most ten years.")


async def update_draft(ctx: Context, contract_id: uuid.UUID | None, data: dict[str, Any],
                       expected_version: int | None) -> ContractView:
    """Edit the open draft version (version 1 of a draft contract, or a draft amendment): what is given replaces
    what was there (items: the whole list). Items are priced again (a draft is not agreed): version 1 at the
    catalogue's prices on the start date; an amendment keeps the prices signed for services already contracted
    (unless ``reprice``; a repricing made on the draft stays, its prices kept by the edits after it) and prices new
    ones on its effective date. Refused with CONFLICT (``version_not_draft``)
    once the version was sent for signature, and on a closed file (BAD_USER_INPUT at ``contractId``, ``writing``):
    a draft there is never sent nor signed."""
    decision = await access.authorize(ctx, "contract", "update", action=Action.UPDATE, resource_type="contract",
                                      resource_id=contract_id)
    view = await find(ctx, contract_id, Action.UPDATE, "contractId")
    row = view.row
    expected = _expect(row, expected_version)
    if row.status not in ("draft", "sent", *LIVE):  # ended: nothing of it is edited (found in review: told to amend)
        raise _conflict(f"contractId: a {row.status.upper()} contract cannot be edited.", ILLEGAL, "contractId")
    version, base = await _draft_and_base(ctx.institution_id, row.id, row.current_version)  # base: what it amends
    if version.status != "draft":
        raise _conflict(f"contractId: version {version.number} is {version.status.upper()}, no longer a draft; "
                        "amend the contract instead.", NOT_DRAFT, "contractId")
    first = base is None  # the original terms (maybe re-issued), not an amendment
    problems = Problems()
    for name, path in (("start_on", "input.startOn"), ("title", "input.title"), ("department_id", "input.departmentId"),
                       ("guarantor_contact_id", "input.guarantorContactId"), ("partner_id", "input.partnerId")):
        if not first and name in data:
            problems.add(path, "not_for_amendment", "set on the contract's first version only.")
    if first and "effective_on" in data:
        problems.add("input.effectiveOn", "not_for_first_version", "the original terms take effect on the start "
                                                                   "date.")
    if first and data.get("change_summary") is not None and version.number == 1:
        problems.add("input.changeSummary", "not_for_first_version", "only an amendment states what changed.")
    if first and data.get("reprice"):
        problems.add("input.reprice", "not_for_first_version", "version 1 is always priced from the catalogue.")
    end_on = data.get("end_on") or version.end_on
    columns: dict[str, Any] = {}  # of the version
    contract_columns: dict[str, Any] = {}
    if base is None:
        start_on = data.get("start_on") or row.start_on
        _term(problems, "input.startOn", start_on, "input.endOn", end_on)
        effective_on = start_on
        contract_columns.update(start_on=start_on, end_on=end_on)
        if "title" in data:
            contract_columns["title"] = _text(problems, "input.title", data["title"], TITLE_LIMIT, required=True)
        contract_columns.update(await _parties(ctx, problems, _contacts_of_client(ctx, row.id), data, path="input",
                                               action=Action.UPDATE, patient_id=row.patient_id))
    else:
        effective_on = data.get("effective_on") or version.effective_on
        _amendment_dates(problems, row, base, await local_today(ctx), effective_on, end_on)
    columns.update(effective_on=effective_on, end_on=end_on)
    if "billing_period" in data:
        columns["billing_period"] = _choice(problems, "input.billingPeriod", data["billing_period"], BILLING_PERIODS)
    deposit = _deposit(problems, "input.deposit", data.get("deposit"), row.currency)
    if deposit is not None:
        columns["deposit"] = deposit
    if "notice_days" in data:
        columns["notice_days"] = _notice(problems, "input.noticeDays", data["notice_days"])
    if data.get("auto_renew") is not None:
        columns["auto_renew"] = bool(data["auto_renew"])
    if "rights_duties" in data:
        columns["rights_duties"] = _text(problems, "input.rightsDuties", data["rights_duties"], TEXT_LIMIT,
                                         required=True)
    if "clauses" in data:
        columns["clauses"] = access.seal(ctx, "contract_version", "clauses", version.id,
                                         _text(problems, "input.clauses", data["clauses"], TEXT_LIMIT,
                                               required=False))
    if "change_summary" in data and not (first and version.number == 1):
        columns["change_summary"] = _text(problems, "input.changeSummary", data["change_summary"], SUMMARY_LIMIT,
                                          required=True)
    current_items = await _items_of_version(ctx.institution_id, version.id)
    given = data.get("items")
    partner_id = contract_columns.get("partner_id", row.partner_id)
    kept = None
    if base is not None and not data.get("reprice"):
        kept = _kept_prices(await _items_of_version(ctx.institution_id, base.id))
        # The draft's own prices of the services already contracted: a repricing made on it (by whoever may) stays
        # (found in hunting: the front desk's edit of a repriced amendment's notice period priced its items again at
        # the signed prices, unseen).
        kept.update((service, price) for service, price in _kept_prices(current_items).items() if service in kept)
    lines = await _lines(ctx, problems, given if given is not None else _item_dicts(current_items),
                         path="input.items", currency=row.currency, day=effective_on, kept=kept,
                         partner=partner_id is not None)
    problems.check()
    if _changes_deposit(deposit, version.deposit) or data.get("reprice"):
        await _require_terms_right(ctx, row)
    columns["period_total"] = money.total(line.total for line in lines)
    written = frozenset({*(f"version.{version.number}.{name}" for name in columns), *contract_columns,
                         *(["items"] if given is not None else [])})
    try:
        async with writing(ctx, view, Action.UPDATE, active=DRAFTED) as patient_id:
            await _cas(ctx, row, expected, **contract_columns)
            changed = await ContractVersion.filter(id=version.id, status="draft").update(**columns,
                                                                                        updated_at=_now())
            if changed != 1:
                raise _stale()
            await ContractItem.filter(contract_version_id=version.id).delete()
            await _insert_items(ctx.institution_id, version.id, lines)
            await writer.append([access.write_record(ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
                                                     fields=written, decision=decision)])
    except IntegrityError:
        await _check_guarantor_kept(ctx, contract_columns.get("guarantor_id"), row.patient_id, Action.UPDATE)
        raise
    return _view(ctx, await _refetch(row))


# -- amendments ------------------------------------------------------------------------------------


async def amend(ctx: Context, contract_id: uuid.UUID | None, data: dict[str, Any],
                expected_version: int | None) -> ContractView:
    """A new draft version N+1 of an ACTIVE or SUSPENDED contract with no open version: the newest signed version
    (the one in force, or agreed to take effect) copied with the changes given. It takes effect on
    ``effectiveOn`` (within the term, not before today) once every party signed it. Items already contracted keep
    their signed prices unless ``reprice`` (the catalogue's on the effective date; needs ``contract.terms:
    update``, as a changed deposit does); new items are priced on the effective date. A closed file's contract is
    not amended (BAD_USER_INPUT at ``contractId``, ``writing``): the amendment would never be sent nor signed."""
    decision = await access.authorize(ctx, "contract", "update", action=Action.UPDATE, resource_type="contract",
                                      resource_id=contract_id)
    view = await find(ctx, contract_id, Action.UPDATE, "contractId")
    row = view.row
    expected = _expect(row, expected_version)
    if row.status not in LIVE:
        raise _conflict(f"contractId: a {row.status.upper()} contract cannot be amended (only ACTIVE or SUSPENDED "
                        "ones).", ILLEGAL, "contractId")
    # The version amended (the newest signed one, the columns the amendment takes from it) with, in the same
    # statement, the newest version's number (the amendment's is the next) and an open version's, if any.
    versions = _versions_of(ctx.institution_id, row.id)
    base = await _newest_signed(ctx.institution_id, row.id).only(
        *_followed_columns(data, "effective_on", "end_on")).annotate(**{
            NEWEST_NUMBER: Subquery(versions.order_by("-number").limit(1).values("number")),
            OPEN_NUMBER: Subquery(versions.filter(status__in=OPEN_VERSION).limit(1).values("number"))}).first()
    assert base is not None  # a running contract has a signed version (signed versions stay so: migration 0019)
    if getattr(base, OPEN_NUMBER) is not None:
        raise _conflict("contractId: an amendment is already being prepared or signed; edit or finish it first.",
                        OPEN, "contractId")
    problems = Problems()
    end_on = data.get("end_on") or base.end_on
    effective_on = data.get("effective_on")
    _amendment_dates(problems, row, base, await local_today(ctx), effective_on, end_on)
    summary = _text(problems, "input.changeSummary", data.get("change_summary"), SUMMARY_LIMIT, required=True)
    scribe = Scribe.of(ctx)
    terms = _terms_after(problems, data, row.currency, base, scribe)
    base_items = await _items_of_version(ctx.institution_id, base.id)
    given = data.get("items")
    lines = await _lines(ctx, problems, given if given is not None else _item_dicts(base_items), path="input.items",
                         currency=row.currency, day=effective_on,
                         kept=None if data.get("reprice") else _kept_prices(base_items),
                         partner=row.partner_id is not None)
    problems.check()
    if _changes_deposit(terms["deposit"], base.deposit) or data.get("reprice"):
        await _require_terms_right(ctx, row)
    number = int(getattr(base, NEWEST_NUMBER)) + 1
    written = frozenset({"current_version", f"version.{number}", "change_summary", "effective_on",
                         *(name for name in ("end_on", "billing_period", "deposit", "notice_days", "auto_renew",
                                             "rights_duties", "clauses", "items", "reprice") if name in data)})
    async with writing(ctx, view, Action.UPDATE, active=DRAFTED) as patient_id:
        await _cas(ctx, row, expected, current_version=number)
        await _insert_version(scribe, row.id, number, status="draft", effective_on=cast(date, effective_on),
                              end_on=end_on, change_summary=summary, lines=lines, **terms)
        await writer.append([access.write_record(ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
                                                 fields=written, decision=decision)])
    return _view(ctx, await _refetch(row))


# -- what changed between two versions -----------------------------------------------------------------


async def diff(ctx: Context, contract_id: uuid.UUID | None, from_number: int, to_number: int) -> VersionDiff:
    """What changed from one version to another: terms (before and after as text; money only for a caller who
    reads commercial terms, clauses only for one who reads clauses) and items added, removed and changed
    (matched by catalogue item, in order)."""
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           resource_id=contract_id)
    view = await find(ctx, contract_id, Action.READ, "contractId")
    versions = {row.number: VersionView(row, view) for row in await ContractVersion.filter(
        institution_id=ctx.institution_id, contract_id=view.row.id, number__in=[from_number, to_number])}
    before, after = versions.get(from_number), versions.get(to_number)
    problems = Problems()
    if before is None:
        problems.add("fromVersion", "unknown_version", "the contract has no such version.")
    if after is None:
        problems.add("toVersion", "unknown_version", "the contract has no such version.")
    problems.check()
    assert before is not None and after is not None
    old_items, new_items = await items_of(ctx, before), await items_of(ctx, after)
    currency = view.row.currency
    terms: list[TermChange] = []

    def compare(name: str, old: Any, new: Any) -> None:
        if old != new:
            terms.append(TermChange(name, None if old is None else str(old), None if new is None else str(new)))

    compare("effectiveOn", before.row.effective_on.isoformat(), after.row.effective_on.isoformat())
    compare("endOn", before.row.end_on.isoformat(), after.row.end_on.isoformat())
    compare("billingPeriod", before.row.billing_period, after.row.billing_period)
    compare("noticeDays", before.row.notice_days, after.row.notice_days)
    compare("autoRenew", str(before.row.auto_renew).lower(), str(after.row.auto_renew).lower())
    compare("rightsDuties", before.row.rights_duties, after.row.rights_duties)
    terms_readable = may_read_terms(ctx, view)
    if terms_readable:
        require_terms(ctx, view)
        compare("deposit", money.format_amount(before.row.deposit, currency),
                money.format_amount(after.row.deposit, currency))
        compare("periodTotal", money.format_amount(before.row.period_total, currency),
                money.format_amount(after.row.period_total, currency))
    if ctx.decide(CLAUSES, "read").allowed and await clauses_reached(ctx, view):
        compare("clauses", await read_clauses(ctx, before), await read_clauses(ctx, after))
    remaining: dict[uuid.UUID, list[ItemView]] = defaultdict(list)
    for item in old_items:
        remaining[item.row.service_item_id].append(item)
    added: list[ItemView] = []
    changed: list[ItemChange] = []
    for item in new_items:
        matches = remaining.get(item.row.service_item_id)
        if not matches:
            added.append(item)
            continue
        old = matches.pop(0)
        fields = [name for name, a, b in (
            ("quantity", old.row.quantity, item.row.quantity), ("frequency", old.row.frequency, item.row.frequency),
            ("deliveredByPartner", old.row.delivered_by_partner, item.row.delivered_by_partner),
            ("unitPrice", old.row.unit_price if terms_readable else 0, item.row.unit_price if terms_readable else 0),
        ) if a != b]
        if fields:
            changed.append(ItemChange(old, item, tuple(fields)))
    removed = [item for items in remaining.values() for item in items]
    removed.sort(key=lambda item: item.row.position)
    return VersionDiff(view, before, after, terms, added, removed, changed)


# -- suspend, resume, terminate ------------------------------------------------------------------------


async def transition(ctx: Context, contract_id: uuid.UUID | None, move: str, *, reason: str | None,
                     expected_version: int | None, effective_on: date | None = None) -> ContractView:
    """Suspend an ACTIVE contract, resume a SUSPENDED one, terminate either (``contract.status: update``). A move
    the state machine does not allow is CONFLICT (``illegal_transition``), nothing written. Termination ends the
    term on ``effective_on`` (today by default, not before today nor the term's start, not after the end), records
    when it was decided (``ended_at``) and withdraws a version still being prepared or signed. A term not started
    yet (a renewal or a term signed ahead) terminated without a date is REVOKED: never in force, its term left as
    agreed (found by the last session: it ended today, before its start). A term whose next term is signed is not
    ended early nor revoked (CONFLICT ``renewal_exists``): the renewal is revoked first. A DRAFT or SENT contract
    (no version signed: a prepared renewal, say) terminated is REVOKED as it stands, its open versions withdrawn
    (``effective_on`` given: BAD_USER_INPUT, there is no term to end); found in review: nothing could give it up,
    and a draft renewal blocked the term it renews for ever. The write is on the row as read (``expectedVersion``):
    a send or a last signature landing first bumps it, so the revocation is then CONFLICT ``stale_version``."""
    decision = await access.authorize(ctx, "contract.status", "update", action=Action.UPDATE,
                                      resource_type="contract", resource_id=contract_id)
    view = await find(ctx, contract_id, Action.UPDATE, "contractId")
    row = view.row
    expected = _expect(row, expected_version)
    rule = TRANSITIONS[move]
    if row.status not in rule["from"]:
        raise _conflict(f"contractId: a {row.status.upper()} contract cannot be {move.rstrip('e')}ed (from "
                        f"{' or '.join(s.upper() for s in rule['from'])} only).", ILLEGAL, "contractId")
    problems = Problems()
    text = _text(problems, "reason", reason, REASON_LIMIT, required=move != "resume")
    now = _now()
    columns: dict[str, Any] = {"status": rule["to"][0]}
    if move == "suspend":
        columns.update(suspended_at=now, status_reason=text)
    elif move == "resume":
        columns.update(suspended_at=None, status_reason=text)
    elif row.status in NEVER_IN_FORCE:  # revoked as it stands: its term as drafted, nothing else moves
        if effective_on is not None:
            problems.add("effectiveOn", "effective_not_allowed", "leave it out: a contract never signed has no term "
                                                                 "to end; it is revoked as it stands.")
        columns = _ended(row, None, now, text)
    else:
        today = await local_today(ctx)
        ends = effective_on or today
        if ends < today:
            problems.add("effectiveOn", "effective_in_past", "not before today (the institution's date).")
        elif ends > row.end_on:
            problems.add("effectiveOn", "effective_outside_term", "not after the end of the term.")
        elif effective_on is not None and ends < row.start_on:
            problems.add("effectiveOn", "effective_outside_term", "not before the start of the term; leave it out to "
                                                                  "revoke a term that has not started.")
        columns = _ended(row, ends, now, text)
    problems.check()
    async with writing(ctx, view, Action.UPDATE) as patient_id:
        await _cas(ctx, row, expected, **columns)
        if move == "terminate":
            # A next term signed ahead starts the day after this term's end as agreed: ending this one earlier (or
            # revoking it) would leave it running after a gap, or after a term never in force (found in review).
            # Checked after this row is written (locked), as a renewal's signature locks it before it activates.
            if (columns.get("status") == REVOKED or columns.get("end_on", row.end_on) != row.end_on) and \
                    await Contract.filter(institution_id=ctx.institution_id, renewal_of_id=row.id,
                                          status__in=LIVE).exists():
                raise _conflict("contractId: the contract's next term is signed; revoke it first (contractTerminate "
                                "on the renewal), then end this one.", RENEWAL_EXISTS, "contractId")
            await _close_ended(ctx.institution_id, row.id, now)
        await writer.append([access.write_record(ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
                                                 fields=frozenset(columns), decision=decision)])
    return _view(ctx, await _refetch(row))


def _ended(row: Contract, ends: date | None, now: datetime, reason: str | None) -> dict[str, Any]:
    """What ending a contract early writes over its row (``contractTerminate``, a death): one never in force (DRAFT or
    SENT), or a term not started by ``ends``, is REVOKED, its term as agreed or drafted; else TERMINATED, its term
    ending on ``ends`` (None: a contract never in force, which has no term to end)."""
    columns: dict[str, Any] = {"status": "terminated", "ended_at": now, "status_reason": reason}
    if ends is None or row.status in NEVER_IN_FORCE or ends < row.start_on:
        columns["status"] = REVOKED
    else:
        columns["end_on"] = ends
    return columns


async def _close_ended(institution_id: uuid.UUID, contract_id: uuid.UUID, now: datetime) -> None:
    """Inside the transaction that ends a contract early: a version still being prepared or signed is withdrawn and
    its queued reminders cancelled."""
    await ContractVersion.filter(institution_id=institution_id, contract_id=contract_id,
                                 status__in=OPEN_VERSION).update(status="withdrawn", updated_at=now)
    await _cancel_reminders(institution_id, contract_id)


async def running_on_file(ctx: Context, patient_id: uuid.UUID) -> bool:
    """Whether the client has a contract not ended (``NOT_ENDED``: a draft, one sent, a term running or signed
    ahead): an archive waits for admin or finance to end them (found in review: it archived the file and the
    contracts ran on). Asked under the file's lock, which every write adding a contract to the file takes."""
    return await Contract.filter(institution_id=ctx.institution_id, patient_id=patient_id,
                                 status__in=NOT_ENDED).exists()


async def end_for_deceased(ctx: Context, patient_id: uuid.UUID, decision: Decision) -> int:
    """Inside a death's transaction, after the file's row is written (so locked): the client's contracts end by the
    fact of the death, as ``contractTerminate`` ends them today (``_ended``): a term in force TERMINATED on the
    institution's date, a term not started and a contract never signed REVOKED as they stand, open versions
    withdrawn, queued reminders cancelled; each recorded as a change by whoever recorded the death, reason
    ``client_deceased`` (found in review: they ran on, reminded and renewed themselves). A term whose last day has
    passed already is the expiry sweep's, which expires it (it does not renew a closed file's).
    Returns how many it ended."""
    today, now = await local_today(ctx), _now()
    records: list[AuditRecord] = []
    for row in await _lock_every_contract(ctx.institution_id, patient_id):
        if row.status not in NOT_ENDED or (row.status in LIVE and row.end_on < today):
            continue
        columns = _ended(row, today, now, CLIENT_DECEASED)
        await Contract.filter(id=row.id).update(**columns, version=bumped(), updated_at=now)
        await _close_ended(ctx.institution_id, row.id, now)
        record = access.write_record(ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
                                     fields=frozenset(columns), decision=decision)
        records.append(replace(record, reason=CLIENT_DECEASED))
    if records:
        await writer.append(records)
    return len(records)


async def _lock_every_contract(institution_id: uuid.UUID, patient_id: uuid.UUID) -> list[Contract]:
    """Every contract of the file, locked in id order and read as they are, once no new one appears. Contract writes
    that add to a file lock the file first and wait for the caller's write of it, but not the expiry sweep's automatic
    renewal, which holds the term it renews: a statement that waited for that term did not see the next term
    committed meanwhile (found testing: the death found the term RENEWED and left its next term running). Read
    again, under the locks taken, until nothing new: the next term is then seen and locked too."""
    locked: set[uuid.UUID] = set()
    while True:
        rows = await Contract.filter(institution_id=institution_id, patient_id=patient_id).order_by(
            "id").select_for_update()
        if {row.id for row in rows} <= locked:
            return list(rows)
        locked |= {row.id for row in rows}


async def _cancel_reminders(institution_id: uuid.UUID, contract_id: uuid.UUID) -> None:
    """An ended contract's queued reminders to the client (its end, an unsigned version) are not true any more
    (found in review: they were still sent)."""
    await communications.cancel_queued(institution_id, communications.cause_prefix("contract", contract_id))


# -- renewal -------------------------------------------------------------------------------------------


async def renew(ctx: Context, contract_id: uuid.UUID | None, data: dict[str, Any]) -> ContractView:
    """The next term of an ACTIVE or SUSPENDED contract as a new DRAFT contract naming it (``renewalOf``): same
    parties and currency, from the day after this term's end to ``endOn``, the terms of the newest signed version
    unless changed, the items (as given, or as contracted) at the catalogue's prices on the new start date.
    One renewal at a time (CONFLICT ``renewal_exists``)."""
    decision = await access.authorize(ctx, "contract", "create", action=Action.CREATE, resource_type="contract",
                                      resource_id=contract_id)
    view = await find(ctx, contract_id, Action.CREATE, "contractId")
    row = view.row
    if row.status not in LIVE:
        raise _conflict(f"contractId: a {row.status.upper()} contract cannot be renewed (only ACTIVE or SUSPENDED "
                        "ones).", ILLEGAL, "contractId")
    await _check_no_renewal(ctx, row.id)
    base = await _newest_signed(ctx.institution_id, row.id).only(*_followed_columns(data)).first()
    assert base is not None  # a running contract has a signed version (signed versions stay so: migration 0019)
    start_on = row.end_on + timedelta(days=1)
    problems = Problems()
    end_on = data.get("end_on")
    if end_on is None:
        problems.add("input.endOn", "required", "is required.")
    _term(problems, "contractId", start_on, "input.endOn", end_on)  # the next term starts the day after this one
    title = (_text(problems, "input.title", data["title"], TITLE_LIMIT, required=True)
             if data.get("title") is not None else row.title)
    scribe = Scribe.of(ctx)
    terms = _terms_after(problems, data, row.currency, base, scribe)
    given = data.get("items")
    lines = await _lines(ctx, problems, given if given is not None else _item_dicts(
        await _items_of_version(ctx.institution_id, base.id)), path="input.items", currency=row.currency,
        day=start_on, partner=row.partner_id is not None)
    problems.check()
    if _changes_deposit(terms["deposit"], base.deposit):
        await _require_terms_right(ctx, row)
    values = {"patient_id": row.patient_id, "title": title, "currency": row.currency, "status": "draft",
              "start_on": start_on, "end_on": end_on, "current_version": 1, "department_id": row.department_id,
              "guarantor_id": row.guarantor_id, "partner_id": row.partner_id, "renewal_of_id": row.id,
              "created_by_id": scribe.staff_id}
    version = {"status": "draft", "effective_on": start_on, "end_on": end_on, **terms, "change_summary": None,
               "lines": lines}
    written = frozenset({"number", "title", "currency", "status", "start_on", "end_on", "renewal_of", "version.1",
                         "items"})
    created = await _insert_contract(ctx, values, version, decision=decision, written=written)
    return _view(ctx, created)


# -- the expiry sweep ------------------------------------------------------------------------------------


def next_term_end(start_on: date, end_on: date, new_start: date) -> date:
    """The end of a term as long as [start_on, end_on] beginning on new_start: whole months when the term is whole
    months (2026-01-01..2026-12-31 -> 2027-01-01..2027-12-31), else as many days."""
    after = end_on + timedelta(days=1)
    months = (after.year - start_on.year) * 12 + after.month - start_on.month
    if after.day == 1 and start_on.day > end_on.day:
        # A start on a day the end's month lacks (29 February, the 31st) and an end on that month's last day:
        # whole months too (2024-02-29..2025-02-28 is a year), counted to the end's month. Counted as days, each
        # renewal drifted a day (2025-03-01..2026-03-01).
        months = (end_on.year - start_on.year) * 12 + end_on.month - start_on.month
    elif after.day != start_on.day:
        months = 0
    if months > 0:
        total = new_start.month - 1 + months
        year, month = new_start.year + total // 12, total % 12 + 1
        try:
            return date(year, month, new_start.day) - timedelta(days=1)
        except ValueError:  # the 31st of a shorter month: the month's last day is the term's end
            return date(year, month % 12 + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return new_start + (end_on - start_on)


async def expire_due(keyring: KeyRing, now: datetime | None = None) -> int:
    """The sweep, for every institution: ACTIVE or SUSPENDED contracts whose term ended (``end_on`` before the
    institution's local date) become RENEWED when a next term has been signed, else, when their version in force
    renews itself and the next term reaches today (``_renews_into``), open the next term at once (a new contract,
    ACTIVE, version 1 signed without new signatures at the same items and signed prices, "automatic renewal") and
    become RENEWED, else EXPIRED. A version still being prepared or signed is withdrawn. Each contract in its own
    transaction with its row locked and its status checked again, so a second worker or run changes nothing; recorded
    as the system's writes. Returns how many contracts it ended."""
    now = now or _now()
    done = 0
    for institution_id, zone in await Institution.all().order_by("id").values_list("id", "time_zone"):
        today = now.astimezone(ZoneInfo(str(zone))).date()
        due = await Contract.filter(institution_id=institution_id, status__in=LIVE, end_on__lt=today).order_by(
            "end_on", "id").values_list("id", "patient_id")
        for contract_id, patient_id in due:
            done += await _end_term(keyring, cast(uuid.UUID, institution_id), cast(uuid.UUID, contract_id),
                                    cast(uuid.UUID, patient_id), today, now)
    return done


async def _end_term(keyring: KeyRing, institution_id: uuid.UUID, contract_id: uuid.UUID, patient_id: uuid.UUID,
                    today: date, now: datetime) -> int:
    async with in_transaction():
        # The client's file held before the contract, as a merge locks it before it moves the contract: the other way
        # round, the next term's wait for the file deadlocked with a merge at that moment (found in review). A file
        # merged since: the contract, read again under its lock, is the survivor's, and so is its next term.
        await access.current_files([patient_id])
        row = await Contract.filter(id=contract_id, institution_id=institution_id, status__in=LIVE,
                                    end_on__lt=today).select_for_update(skip_locked=True).first()
        if row is None:
            return 0
        renewals = await Contract.filter(institution_id=institution_id, renewal_of_id=row.id).exclude(
            status__in=ENDED_EARLY).values_list("status", "activated_at")
        signed = any(activated is not None for _, activated in renewals)
        base = (await in_force_at_end([row.id], institution_id)).get(row.id)
        records: list[AuditRecord] = []
        if signed:
            status = "renewed"
        elif not renewals and base is not None and base.auto_renew and _renews_into(row, today) \
                and await _file_open(row.patient_id):
            status = "renewed"
            renewal = await _auto_renew(Scribe(institution_id, await keyring.get(institution_id)), row, base,
                                        now, today.year)
            records.append(AuditRecord(institution_id, SYSTEM, Action.CREATE, "contract", Outcome.ALLOWED,
                                       resource_id=renewal.id, patient_id=row.patient_id,
                                       fields_read=frozenset({"number", "status", "start_on", "end_on", "renewal_of",
                                                              "version.1", "items"}), policy_rule=SWEEP_RULE))
        else:
            status = "expired"
        await Contract.filter(id=row.id).update(status=status, ended_at=now, version=F("version") + 1,
                                                updated_at=now)
        await ContractVersion.filter(institution_id=institution_id, contract_id=row.id,
                                     status__in=OPEN_VERSION).update(status="withdrawn", updated_at=now)
        await _cancel_reminders(institution_id, row.id)
        records.append(AuditRecord(institution_id, SYSTEM, Action.UPDATE, "contract", Outcome.ALLOWED,
                                   resource_id=row.id, patient_id=row.patient_id,
                                   fields_read=frozenset({"status", "ended_at"}), policy_rule=SWEEP_RULE))
        await writer.append(records)
    return 1


def _renews_into(row: Contract, today: date) -> bool:
    """Whether the automatic renewal's next term reaches ``today``: a term recorded (or signed) after its next one
    would have ended too expires instead (found in review: a term of 2000 recorded today opened 2001 signed "by
    automatic renewal", then 2002 on the sweep's next run, and so on up to today: terms nobody agreed to, each counted
    in the report's months). Staff renew it (``contractRenew``) for the term the client is cared for now."""
    return next_term_end(row.start_on, row.end_on, row.end_on + timedelta(days=1)) >= today


async def _file_open(patient_id: uuid.UUID) -> bool:
    """Whether the client's file is active: a closed one's term is not renewed automatically, it expires (decided: a
    death ends the contracts and an archive waits for them, but files closed before that exist; nobody is cared for
    under the term any more). What the parties signed (a next term) stands: staff end it."""
    return await _file_status(patient_id) == "active"


async def _file_status(patient_id: uuid.UUID) -> str:
    return str(await Patient.filter(id=patient_id).first().values_list("status", flat=True))


async def _auto_renew(scribe: Scribe, row: Contract, base: ContractVersion, now: datetime, year: int) -> Contract:
    """The next term, ACTIVE at once: version 1 signed by the automatic renewal the parties agreed to, with the
    items and prices of the version in force."""
    start_on = row.end_on + timedelta(days=1)
    end_on = next_term_end(row.start_on, row.end_on, start_on)
    # the items as signed (code, name, price), whatever the catalogue says now
    lines = [Line(i.service_item_id, i.code, i.name, i.price_id, i.unit_price, i.quantity, i.frequency,
                  i.delivered_by_partner) for i in await _items_of_version(scribe.institution_id, base.id)]
    values = {"patient_id": row.patient_id, "title": row.title, "currency": row.currency, "status": "active",
              "start_on": start_on, "end_on": end_on, "current_version": 1, "department_id": row.department_id,
              "guarantor_id": row.guarantor_id, "partner_id": row.partner_id, "renewal_of_id": row.id,
              "activated_at": now}
    version = {"status": "signed", "signed_at": now, "effective_on": start_on, "end_on": end_on,
               "billing_period": base.billing_period, "deposit": base.deposit, "notice_days": base.notice_days,
               "auto_renew": True, "rights_duties": base.rights_duties, "clauses": scribe.open(base),
               "change_summary": AUTO_RENEWAL, "lines": lines}
    return await _insert_contract_rows(scribe, year, values, version)
