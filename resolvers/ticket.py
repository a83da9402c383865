"""Support tickets: opening, the closed-loop lifecycle, first-contact ownership, the queue.

The lifecycle is a state machine the server enforces (``TRANSITIONS``). Every change is an
event on the ticket's timeline, written with the change and its audit record in one
transaction, and every change that can move a due time recomputes the SLA (``resolvers.sla``)
and the escalations it schedules. A complaint closes only after the patient's feedback is
recorded or a failed attempt to reach them is logged (the closed loop of shared/domain.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import ValuesQuery
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core import statements
from core.db import placeholders
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Forbidden, NotFound
from core.ids import uuid7
from core.principal import PARTNER, STAFF
from core.validation import Problems, aware_time, camel_case, clean_text, normalize_phone
from models import Department, DepartmentMembership, RoleAssignment, Staff, Ticket, TicketEvent
from models.ticket import CATEGORIES, CHANNELS, OPEN_STATUSES, ROOT_CAUSES, STATUSES, STOPPED_STATUSES
from policies.guard import Decision
from policies.scopes import TicketScope
from policies.scopes import ticket_scope as build_ticket_scope
from resolvers import access, pagination, session, sla, survey
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.versioning import check_version, stale, update_versioned

CURSOR_KIND = "ticket"
QUEUE_CURSOR_KIND = "ticket-queue"
OPENED_CURSOR_KIND = "ticket-opened"
PARTNER_CURSOR_KIND = "partner-ticket"
PORTAL_CHANNELS = ("app", "web_form")  # where a patient opens a ticket themselves
WAITING = "waiting_on_patient"
TIMELINE_CURSOR_KIND = "ticket-event"
# A file's open tickets as the patient page (``Patient.openTickets``) lists them stop here, newest first (found in
# review: not bounded, on a page of up to 100 files); every one pages through ``tickets(filter: {patientId})``.
OPEN_LIMIT = 50
MAX_BACKDATE = timedelta(days=7)
ENCRYPTED = ("caller_name", "caller_phone", "subject", "description", "root_cause", "resolution", "feedback")
_TEXT_LIMITS = {"subject": 200, "description": 4000, "root_cause": 2000, "resolution": 4000, "feedback": 2000,
                "note": 4000, "caller_name": 100, "subcategory": 64}

_REQUIRED_VALUES = frozenset({"channel", "category", "subject", "subcategory"})  # columns without null

# status -> statuses a transition may lead to; feedback_recorded is reached by recording feedback.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged"}),
    "acknowledged": frozenset({"investigating"}),
    "investigating": frozenset({"waiting_on_patient", "resolved"}),
    "waiting_on_patient": frozenset({"investigating"}),
    "resolved": frozenset({"closed", "investigating"}),
    "feedback_recorded": frozenset({"closed", "investigating"}),
    "closed": frozenset({"investigating"}),
}


@dataclass(frozen=True)
class TicketView:
    row: Ticket


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    department_id: uuid.UUID | None = None
    category: str | None = None
    level: int | None = None
    mine: bool = False
    patient_id: uuid.UUID | None = None


# A list order's field -> its column. DUE: the pending target's due time; tickets without a running clock
# (paused, resolved, closed) come after every ticket that has one, whatever the direction.
ORDER_COLUMNS = {"due": "next_due_at", "updated_at": "updated_at", "created_at": "created_at"}


@dataclass(frozen=True)
class TicketOrder:
    field: str  # a key of ORDER_COLUMNS
    direction: str = "asc"  # or "desc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors: one from another order is BAD_USER_INPUT."""
        return f"ticket-{self.field}-{self.direction}"


# -- scope ---------------------------------------------------------------------------------


def ticket_scope(ctx: Context) -> TicketScope:
    if ctx.ticket_scope is None:
        p = ctx.require_principal()
        ctx.ticket_scope = build_ticket_scope(ctx.services.guard, institution_id=p.institution_id,
                                              staff_id=p.user_id, roles=p.roles, department_ids=p.department_ids)
    return ctx.ticket_scope


async def find(ctx: Context, ticket_id: uuid.UUID | None, action: Action) -> Ticket:
    """A ticket in the caller's reach; otherwise NOT_FOUND, exactly as for a missing one.

    Call it before opening a write's transaction: the refusal's audit record is written at once,
    and a transaction rolled back by the refusal would take the record with it.
    """
    row = await find_or_none(ctx, ticket_id)
    if row is None:
        raise await access.not_found(ctx, action, "ticket", ticket_id)
    return row


def reached_ids(ctx: Context) -> ValuesQuery[Any]:
    """The ids of the tickets in the caller's reach, as a query to look records of them up by."""
    return Ticket.filter(ticket_scope(ctx).filter()).values("id")


async def find_or_none(ctx: Context, ticket_id: uuid.UUID | None) -> Ticket | None:
    if ticket_id is None:
        return None
    return await Ticket.filter(ticket_scope(ctx).filter(), id=ticket_id).first()


async def lock(ctx: Context, found: Ticket) -> Ticket:
    """The ticket's current row, locked until the caller's transaction ends (changes are serialised).

    Reach is checked again under the lock: a ticket handed away meanwhile is refused. That refusal
    (a race, rare) is not on the audit trail, since the transaction it happens in rolls back.
    """
    row = await Ticket.filter(ticket_scope(ctx).filter(), id=found.id).select_for_update().first()
    if row is None:
        raise NotFound()
    return row


# -- reads ---------------------------------------------------------------------------------


async def get(ctx: Context, ticket_id: uuid.UUID | None) -> TicketView:
    await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="ticket", resource_id=ticket_id)
    return TicketView(await find(ctx, ticket_id, Action.READ))


async def page(ctx: Context, *, first: int, after: str | None, where: TicketFilter,
               order: TicketOrder | None = None) -> pagination.Page[TicketView]:
    """Tickets in reach, newest first (or in ``order``). Narrowed to a patient, the patient must be in the
    caller's patient reach: otherwise NOT_FOUND, as every list filtered by patient answers."""
    await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="ticket")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = await _listed(ctx, where)
    if order is not None:
        rows = await _ordered(query, order, after, first)
        column = ORDER_COLUMNS[order.field]
        return pagination.page_of([TicketView(r) for r in rows[:first]], len(rows) > first, order.cursor_kind,
                                  key=lambda view: _order_key(getattr(view.row, column), view.row.id))
    newest = await pagination.by_id(query, first=first, after=after, kind=CURSOR_KIND, count=False, newest_first=True)
    return newest.map(TicketView)


async def count(ctx: Context, where: TicketFilter) -> int:
    """How many tickets in reach match ``where`` (one COUNT; asked only when a list selects totalCount, after
    ``page`` has authorized and found the patient)."""
    return await Ticket.filter(ticket_scope(ctx).filter()).filter(_conditions(ctx, where)).count()


async def _listed(ctx: Context, where: TicketFilter) -> Any:
    if where.patient_id is not None:
        await access.find_patient(ctx, where.patient_id, action=Action.READ, field="filter.patientId")
    return Ticket.filter(ticket_scope(ctx).filter()).filter(_conditions(ctx, where))


async def _ordered(query: Any, order: TicketOrder, after: str | None, first: int) -> list[Ticket]:
    """A page in ``order``, by keyset (the sort key, then the id). Tickets without a value of the key (DUE
    only) follow the others, by id: a second statement, run only when the first did not fill the page."""
    column, desc = ORDER_COLUMNS[order.field], order.direction == "desc"
    sign = "-" if desc else ""
    value, last_id = pagination.decode_keyset(order.cursor_kind, after, _time_or_none("-")) if after else (None, None)
    if last_id is not None:
        query = query.filter(pagination.keyset_after(column, value, last_id, desc, nulls_last=True))
    rows: list[Ticket] = []
    if after is None or value is not None:
        valued = query.filter(**{f"{column}__isnull": False})
        rows = list(await valued.order_by(f"{sign}{column}", f"{sign}id").limit(first + 1))
    if column == "next_due_at" and len(rows) <= first:
        rest = query.filter(next_due_at__isnull=True)
        rows += await rest.order_by(f"{sign}id").limit(first + 1 - len(rows))
    return rows


def _order_key(value: datetime | None, row_id: uuid.UUID) -> str:
    return f"{value.isoformat() if value is not None else '-'}|{row_id}"


def _time_or_none(none: str) -> Callable[[str], datetime | None]:
    """A cursor's time, or None where its key says ``none`` (a row without one)."""
    return lambda value: None if value == none else pagination.decode_time(value)


async def open_of(ctx: Context, patient: PatientView) -> list[TicketView]:
    """A patient page's open tickets within the caller's ticket reach, newest first, at most OPEN_LIMIT (batched
    across patients: two statements whatever the number of files and tickets)."""
    access.require_section(ctx, patient, "ticket", own_reach=True)  # tickets: TicketScope

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[Ticket]]:
        query = Ticket.filter(ticket_scope(ctx).filter(), status__in=OPEN_STATUSES)  # out of reach: no place
        found = await newest_per_parent(query, "patient_id", patient_ids, ("-id",), OPEN_LIMIT)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("open_tickets", batch).load(patient.row.id)
    return [TicketView(row) for row in rows]


async def queue(ctx: Context, *, first: int, after: str | None, department_id: uuid.UUID | None,
                sla_state: str | None) -> pagination.Page[TicketView]:
    """Open tickets whose clock runs, soonest due first, then the ones waiting on the patient (paused: their
    clocks stand still, so they never look breached), oldest first. ``sla_state`` narrows to
    at_risk, breached or paused. At most two statements: the paused ones are read only when the running
    ones do not fill the page."""
    await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="ticket")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    running, paused = _queue_parts(ctx, department_id, sla_state)
    # (due time, id) of a running ticket's cursor; (None, id) of a paused one's
    due, last_id = (pagination.decode_keyset(QUEUE_CURSOR_KIND, after, _time_or_none("paused")) if after
                    else (None, None))
    rows: list[Ticket] = []
    if running is not None and (after is None or due is not None):
        if due is not None and last_id is not None:
            running = running.filter(pagination.keyset_after("next_due_at", due, last_id, False))
        rows = list(await running.order_by("next_due_at", "id").limit(first + 1))
    if paused is not None and len(rows) <= first:
        if last_id is not None and due is None:
            paused = paused.filter(id__gt=last_id)
        rows += await paused.order_by("id").limit(first + 1 - len(rows))
    return pagination.page_of([TicketView(r) for r in rows[:first]], len(rows) > first, QUEUE_CURSOR_KIND,
                              key=lambda view: _queue_key(view.row))


async def queue_count(ctx: Context, department_id: uuid.UUID | None, sla_state: str | None) -> int:
    """How many tickets the queue holds, as narrowed (one COUNT, after ``queue`` has authorized)."""
    running, paused = _queue_parts(ctx, department_id, sla_state)
    if running is None or paused is None:
        return int(await (running if running is not None else paused).count())
    return int(await _queue_base(ctx, department_id).filter(Q(status=WAITING) | Q(next_due_at__isnull=False))
               .count())


def _queue_parts(ctx: Context, department_id: uuid.UUID | None, sla_state: str | None) -> tuple[Any, Any]:
    """(running, paused) tickets of the queue as narrowed; None for a part the narrowing leaves out."""
    if sla_state not in (None, "breached", "at_risk", "paused"):
        raise BadUserInput("slaState: only AT_RISK, BREACHED and PAUSED narrow the queue.", field="slaState")
    now = datetime.now(UTC)
    query = _queue_base(ctx, department_id)
    running = query.filter(next_due_at__isnull=False).exclude(status=WAITING)
    if sla_state == "breached":
        running = running.filter(next_due_at__lte=now)
    elif sla_state == "at_risk":
        running = running.filter(next_at_risk_at__lte=now, next_due_at__gt=now)
    return (None if sla_state == "paused" else running,
            query.filter(status=WAITING) if sla_state in (None, "paused") else None)


def _queue_base(ctx: Context, department_id: uuid.UUID | None) -> Any:
    query = Ticket.filter(ticket_scope(ctx).filter(), status__in=OPEN_STATUSES)
    return query if department_id is None else query.filter(department_id=department_id)


def _queue_key(row: Ticket) -> str:
    waiting = row.status == WAITING or row.next_due_at is None
    return f"{'paused' if waiting else row.next_due_at.isoformat()}|{row.id}"  # type: ignore[union-attr]


async def timeline(ctx: Context, view: TicketView, *, first: int, after: str | None,
                   include_internal: bool, count: bool = False) -> pagination.Page[TicketEvent]:
    """A page of the timeline, oldest first. The pages of a list of tickets are cut in SQL, in one statement
    whatever the number of tickets and the page size (``_timeline_pages``: found in review, every entry of every
    ticket was loaded and each page cut from them here; before that, a later page was one statement per ticket);
    so is ``count``, the entries the caller is shown (internal notes only for whoever reads them)."""
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    internal = include_internal and ctx.decide("ticket.internal", "read").allowed
    since = pagination.decode_uuid(TIMELINE_CURSOR_KIND, after) if after else None  # "": the first page

    async def batch(ticket_ids: Sequence[uuid.UUID]) -> list[tuple[list[TicketEvent], int]]:
        return await _timeline_pages(ctx.institution_id, ticket_ids, internal=internal, since=since, size=first + 1,
                                     marked=count and since is not None)

    pages = ctx.require_loaders().made(f"ticket_timeline:{internal}:{since}:{first}:{count}", batch)
    rows, shown = await pages.load(view.row.id)
    return pagination.page_of(rows[:first], len(rows) > first, TIMELINE_CURSOR_KIND, key=lambda event: event.id,
                              total=shown if count else None)


async def _timeline_pages(institution_id: uuid.UUID, ticket_ids: Sequence[uuid.UUID], *, internal: bool,
                          since: uuid.UUID | None, size: int, marked: bool) -> list[tuple[list[TicketEvent], int]]:
    """Each ticket's first ``size`` entries after ``since`` (from the start when None), oldest first, and how many
    entries it shows in all, in one statement: windows number each ticket's entries past the cursor and count those
    shown, and only the pages' rows come back. ``internal``: internal notes shown. ``marked``: each ticket's first
    entry comes back too, so that one with nothing past the cursor still tells its count (left off its page here)."""
    db = TicketEvent._meta.db
    postgres = db.capabilities.dialect == "postgres"
    params: list[Any] = []

    def bound(value: Any) -> str:  # the next parameter's marker: called in the order the markers occur in the text
        params.append(str(value) if isinstance(value, uuid.UUID) and not postgres else value)
        return placeholders(db, 1, first=len(params))[0]

    within = 'PARTITION BY "e"."ticket_id" ORDER BY "e"."id"'
    place = (f'SUM(CASE WHEN "e"."id" > {bound(since)} THEN 1 ELSE 0 END) OVER ({within})' if since
             else f"ROW_NUMBER() OVER ({within})")
    shown = f'"e"."institution_id" = {bound(institution_id)}'
    ids = sorted(set(ticket_ids))
    shown += f' AND "e"."ticket_id" = ANY({bound(ids)}::uuid[])' if postgres else \
        f' AND "e"."ticket_id" IN ({", ".join(bound(i) for i in ids)})'
    if not internal:
        shown += f' AND "e"."internal" = {bound(False)}'
    wanted = f'"w"."id" > {bound(since)} AND ' if since else ""
    wanted += f'"w"."place" <= {bound(size)}'
    if marked:
        wanted = f'({wanted}) OR "w"."first_one" = 1'
    sql = (f'SELECT * FROM (SELECT "e".*, {place} AS "place", ROW_NUMBER() OVER ({within}) AS "first_one", '  # noqa: S608
           f'COUNT(*) OVER (PARTITION BY "e"."ticket_id") AS "shown" FROM "ticket_event" AS "e" WHERE {shown}) '
           f'AS "w" WHERE {wanted} ORDER BY "w"."ticket_id", "w"."id"')
    _, rows = await db.execute_query(sql, params)
    pages: dict[uuid.UUID, list[TicketEvent]] = {}
    totals: dict[uuid.UUID, int] = {}
    for row, event in zip(rows, statements.models_of(TicketEvent, rows), strict=True):
        totals[event.ticket_id] = int(row["shown"])
        if since is None or event.id > since:
            pages.setdefault(event.ticket_id, []).append(event)
    return [(pages.get(i, []), totals.get(i, 0)) for i in ticket_ids]


def read_field(ctx: Context, view: TicketView, name: str) -> Any:
    """A ticket field; sealed text is opened here and its reading noted on the ticket's audit record."""
    row = view.row
    value = getattr(row, name)
    ctx.reads.note("ticket", row.id, row.patient_id, field_class="ticket",
                   field_name=name if name in ENCRYPTED and value is not None else None, rule=_read_rule(ctx))
    _note_partner_grant(ctx, row)
    if name in ENCRYPTED and value is not None:
        value = access.open_sealed(ctx, "ticket", name, row.id, value)
    return value


def read_event_note(ctx: Context, view: TicketView, event: TicketEvent) -> str | None:
    if event.note is None:
        return None
    ctx.reads.note("ticket", view.row.id, view.row.patient_id, field_class="ticket", field_name="timeline.note",
                   rule=_read_rule(ctx))
    _note_partner_grant(ctx, view.row)
    return access.open_sealed(ctx, "ticket_event", "note", event.id, event.note)


def _note_partner_grant(ctx: Context, row: Ticket) -> None:
    """A partner's read of a ticket about a file it is granted names that grant, as its reads of the file do, so the
    accounting of disclosures gives its purpose (found in review: ``partnerTickets`` named the role's rule alone).
    A ticket whose grant has ended (a partner follows its reports still) names none."""
    grant = ctx.file_grants.get(row.patient_id) if row.patient_id is not None else None
    if grant and ctx.require_principal().kind == PARTNER:
        ctx.reads.note("ticket", row.id, row.patient_id, rule=grant)


def _read_rule(ctx: Context) -> str:
    """Staff read tickets with ``ticket: read``; a patient reads their own with ``my_ticket: read``, a partner
    the ones it opened with ``partner_ticket: read``."""
    return (ctx.decide("ticket", "read").rule or ctx.decide("my_ticket", "read").rule
            or ctx.decide("partner_ticket", "read").rule)


# -- what openers keep seeing ----------------------------------------------------------------


async def opened_page(ctx: Context, *, first: int, after: str | None,
                      patient_id: uuid.UUID | None, count: bool = False) -> pagination.Page[TicketView]:
    """Tickets the caller opened, newest first, wherever they went since (a handover takes a ticket out of
    the opener's reach, not out of the opener's sight): the desk can tell a caller where their ticket
    stands. The schema shows only the status, level, SLA times and department of these (``OpenedTicket``),
    never the timeline or internal notes; each read is on the ticket's audit record."""
    await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="ticket")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Ticket.filter(institution_id=ctx.institution_id, opened_by_id=ctx.require_principal().user_id)
    if patient_id is not None:
        query = query.filter(patient_id=patient_id)
    page = await pagination.by_id(query, first=first, after=after, kind=OPENED_CURSOR_KIND, count=count,
                                  newest_first=True)
    return page.map(TicketView)


def due_for_patient(view: TicketView, target: str) -> datetime | None:
    """When a patient can expect the first answer or the resolution: the stored due time while that target's
    clock runs; None once it is met, or while the institution waits on the patient."""
    row = view.row
    due, stopped = ((row.response_due_at, row.first_responded_at) if target == "response"
                    else (row.resolution_due_at, row.resolved_at))
    return None if stopped is not None or sla.waiting_on_patient(row) else due


def note_status_read(ctx: Context, view: TicketView) -> None:
    """An opener's or a partner's look at where a ticket stands: on the ticket's audit record."""
    ctx.reads.note("ticket", view.row.id, view.row.patient_id, field_class="ticket", rule=_read_rule(ctx))
    _note_partner_grant(ctx, view.row)


async def partner_page(ctx: Context, *, first: int, after: str | None,
                       count: bool = False) -> pagination.Page[TicketView]:
    """The tickets the caller's partner opened (partnerTicketCreate), newest first: a partner follows its own
    reports (their status and its own text) even once its grant to the patient has ended."""
    await access.authorize(ctx, "partner_ticket", "read", action=Action.READ, resource_type="ticket")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    partner_id = ctx.require_principal().partner_id
    if partner_id is None:
        return pagination.Page([], False, await pagination.count_of(None, count))
    query = Ticket.filter(institution_id=ctx.institution_id, opened_by_partner_id=partner_id)
    page = await pagination.by_id(query, first=first, after=after, kind=PARTNER_CURSOR_KIND, count=count,
                                  newest_first=True)
    await access.load_file_grants(ctx, {row.patient_id for _, row in page.items if row.patient_id is not None})
    return page.map(TicketView)


# -- live queue ----------------------------------------------------------------------------

WATCH_POLL_SECONDS = 2.0
WATCH_BATCH = 100


async def watch(ctx: Context, department_id: uuid.UUID | None,
                poll_seconds: float = WATCH_POLL_SECONDS) -> AsyncIterator[TicketView]:
    """Tickets in reach as they change, from now on, oldest change first.

    Before each look the subscriber signs in again and its rights are decided afresh, so a revoked
    token or a lost role ends the subscription; what it is sent is what ``tickets`` would show it.
    Changes in this process wake it at once; other workers' are found by polling the database.
    """
    since, last_id = datetime.now(UTC), uuid.UUID(int=0)
    while True:
        await session.sign_in(ctx)
        ctx.forget_decisions()
        await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="ticket")
        query = Ticket.filter(ticket_scope(ctx).filter()).filter(
            pagination.keyset_after("updated_at", since, last_id, False))
        if department_id is not None:
            query = query.filter(department_id=department_id)
        rows = await query.order_by("updated_at", "id").limit(WATCH_BATCH)
        for row in rows:
            since, last_id = row.updated_at, row.id
            yield TicketView(row)
        await access.flush_reads(ctx)
        if len(rows) < WATCH_BATCH:
            await ctx.services.ticket_changes.wait(poll_seconds)


# -- opening a ticket ----------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any], *, by_partner: bool = False) -> TicketView:
    """Open a ticket: staff through ``ticketCreate``, a care partner through ``partnerTicketCreate``
    (``by_partner``), each only through its own door, since the staff's answer shows staff fields."""
    decision = await access.authorize(ctx, "ticket", "create", action=Action.CREATE, resource_type="ticket")
    staff = ctx.require_principal().kind == STAFF
    if staff == by_partner:
        await access.deny(ctx, Action.CREATE, "ticket", reason="forbidden")
        raise Forbidden()
    if by_partner:  # about a patient granted to it; the channel says who reported it
        data = {**data, "channel": "partner"}
    values, received_at = _checked_opening(data, by_partner=by_partner)
    patient = None
    if data.get("patient_id") is not None:
        patient = await access.find_patient(ctx, data["patient_id"], action=Action.CREATE, field="patientId")
        # about a file a role that opens tickets reaches (not one only finance, say, finds)
        await access.require_section_reached(ctx, patient, "ticket", act="create", resource_type="ticket")
    contact_id = await _contact_of(ctx, data.get("contact_id"), patient.row.id if patient else None)
    department_id = await _department(ctx, data.get("department_id"), Action.CREATE) if data.get("department_id") else (
        patient.row.department_id if patient else None)
    level = _level(values.pop("level", None), values["category"], data.get("post_operative"), data.get("dispute"))
    vip = values["channel"] == "vip_adviser" or (patient is not None and "|vip|" in (patient.row.segments or ""))
    ticket_id = uuid7()
    try:
        async with access.file_transaction(ctx, patient.row.id if patient else None, action=Action.CREATE):
            row = await Ticket.create(
                id=ticket_id, institution_id=ctx.institution_id, patient_id=patient.row.id if patient else None,
                # A partner owns nothing here: its ticket waits in the department's queue for staff to take.
                contact_id=contact_id, level=level, vip=vip, status="new", owner_id=ctx.actor.id if staff else None,
                department_id=department_id, received_at=received_at, **_opener(ctx),
                **_sealed(ctx, ticket_id, values))
            await add_event(ctx, row, "created", to_status="new", occurred_at=received_at)
            await sla.recompute(ctx, row)
            await _audit(ctx, Action.CREATE, row, frozenset(values) | {"level", "owner_id"}, decision)
    except IntegrityError:
        # the contact deleted after ``_contact_of`` found it: NOT_FOUND, as if it had been missing
        if not await access.contact_deleted_meanwhile(ctx, Action.CREATE, contact_id,
                                                      patient.row.id if patient else None):
            raise
        raise NotFound("The contact is not one of this patient's.", field="contactId") from None
    return _changed(ctx, row)


def _checked_opening(data: dict[str, Any], *, by_partner: bool) -> tuple[dict[str, Any], datetime]:
    """A new ticket's values and reception time; every problem of its shape reported at once, before the
    checks that read the database (the patient in reach, the contact, the department)."""
    problems = Problems()
    if by_partner and data.get("patient_id") is None:
        problems.add("patientId", "required", "is required.")
    values = _collect(problems, data)
    for required in ("channel", "category", "subject"):
        if values.get(required) is None and not problems.has(camel_case(required)):
            problems.add(camel_case(required), "required", "is required.")
    if not by_partner and data.get("patient_id") is None and values.get("caller_name") is None \
            and not problems.has("callerName"):
        problems.add("callerName", "required", "give the patient, or the caller's name.")
    received_at = datetime.now(UTC)
    with problems.collect("receivedAt"):
        received_at = _received_at(data.get("received_at"))
    problems.check()
    return values, received_at


async def create_mine(ctx: Context, data: dict[str, Any]) -> TicketView:
    """A patient opens a request, complaint, enquiry or suggestion on their own file in the portal. It waits
    in their department's queue with its SLA (the patient's VIP segment counts), owned by nobody."""
    decision = await access.authorize(ctx, "my_ticket", "create", action=Action.CREATE, resource_type="ticket")
    problems = Problems()  # every problem of the input at once, in its order; the schema prefixes ``input.``
    values = _collect(problems, {name: data[name] for name in ("category", "subject", "description") if name in data})
    for required in ("category", "subject"):
        if values.get(required) is None and not problems.has(required):
            problems.add(required, "required", "is required.")
    if data.get("channel") not in PORTAL_CHANNELS:
        problems.add("channel", "invalid_choice", "APP or WEB_FORM.")
    problems.check()
    values["channel"] = data["channel"]
    patient = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.CREATE)
    level = _level(None, values["category"], None, None)
    ticket_id, now = uuid7(), datetime.now(UTC)
    async with access.file_transaction(ctx, patient.row.id, action=Action.CREATE, field="id"):
        row = await Ticket.create(
            id=ticket_id, institution_id=ctx.institution_id, patient_id=patient.row.id, level=level,
            vip="|vip|" in (patient.row.segments or ""), status="new", department_id=patient.row.department_id,
            received_at=now, **_opener(ctx), **_sealed(ctx, ticket_id, values))
        await add_event(ctx, row, "created", to_status="new", occurred_at=now)
        await sla.recompute(ctx, row)
        await _audit(ctx, Action.CREATE, row, frozenset(values) | {"level"}, decision)
    return _changed(ctx, row)


async def open_for_system(ctx: Context, data: dict[str, Any], *, patient_id: uuid.UUID,
                          department_id: uuid.UUID | None, vip: bool, rule: str) -> Ticket:
    """A ticket the system opens on a patient's file (a survey answer under its threshold), inside the
    caller's transaction: nobody's rights are asked (its cause was decided), nobody owns it (it waits in its
    department's queue), and it is on the timeline, the SLA clock and the audit trail (under ``rule``) like
    any other. ``ctx`` names the institution and the actor (the system); the caller wakes the live queues
    once it has committed (``changed``)."""
    values = _normalize(data)
    level = _level(values.pop("level", None), values["category"], None, None)
    ticket_id, now = uuid7(), datetime.now(UTC)
    row = await Ticket.create(id=ticket_id, institution_id=ctx.institution_id, patient_id=patient_id, level=level,
                              vip=vip, status="new", department_id=department_id, received_at=now,
                              **_sealed(ctx, ticket_id, values))
    await add_event(ctx, row, "created", to_status="new", occurred_at=now)
    await sla.recompute(ctx, row)
    await _audit(ctx, Action.CREATE, row, frozenset(values) | {"level"}, Decision(True, rule))
    return row


def changed(ctx: Context) -> None:
    """After a ticket opened elsewhere has committed: wake this process's live queues and escalations."""
    ctx.services.ticket_changes.notify()
    ctx.services.outbox.scheduled.set()


# -- the lifecycle -------------------------------------------------------------------------


async def transition(ctx: Context, ticket_id: uuid.UUID | None, to: str, *, note: str | None,
                     resolution: str | None, version: int | None = None) -> TicketView:
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    problems = Problems()  # the input's shape, every problem at once, before the ticket is looked up
    if to == "feedback_recorded":
        problems.add("to", "invalid", "record the patient's feedback with ticketRecordFeedback.")
    elif to not in TRANSITIONS:
        problems.add("to", "invalid", "unknown status.")
    with problems.collect("note"):
        note = _text(note, "note")
    if to == "resolved":
        with problems.collect("resolution"):
            resolution = _text(resolution, "resolution")
            if not resolution:
                problems.add("resolution", "required", "say how the ticket was resolved.")
    problems.check()
    found = await find(ctx, ticket_id, Action.UPDATE)
    async with in_transaction():
        if to == "closed" and found.patient_id is not None:
            # Closing invites the patient to a survey, a row of their file: the file held before the ticket, as a merge
            # locks it before it moves the ticket; the other way round, the invitation's wait for the file deadlocked
            # with a merge at that moment (found in review). Merged since: the ticket, read again under its lock, is
            # the survivor's, and so is the invitation. Not access.following_survivor: a ticket is reached through its
            # own scope (its department, owner, assignee), which the merge leaves as it was and ``lock`` checks again,
            # never through its patient's file, and the invitation is the trigger's, not the caller's: the same close
            # after the merge is allowed whoever's reach the survivor is in.
            await access.current_files([found.patient_id])
        row = await lock(ctx, found)
        check_version(row, version, "ticket")
        previous = row.status
        unreachable = await _unreachable_attempts(ctx, [row.id]) if to == "closed" else {}
        refused = transition_refusal(row, to, unreachable.get(row.id, ()))
        if refused is not None:
            raise BadUserInput(refused, field="to", reason=ILLEGAL_TRANSITION)
        changes: dict[str, Any] = {"status": to}
        now = _now()
        if to == "acknowledged" and row.first_responded_at is None:
            changes["first_responded_at"] = now
        elif to == "resolved" and resolution:  # checked above: a move to resolved has its resolution
            changes |= {"resolved_at": now, "resolution": access.seal(ctx, "ticket", "resolution", row.id, resolution)}
        elif to == "closed":
            changes["closed_at"] = now
        elif to == "investigating" and previous in STOPPED_STATUSES:
            changes |= {"resolved_at": None, "closed_at": None}  # reopened: the resolution clock runs again
        changes["paused_at"] = now if to == WAITING else None
        await _apply(ctx, row, changes, version)
        await add_event(ctx, row, "transition", from_status=previous, to_status=to, note=note)
        await sla.recompute(ctx, row)
        await _audit(ctx, Action.UPDATE, row, frozenset(changes), decision)
        if to == "closed":
            await survey.on_ticket_closed(ctx, row)
    return _changed(ctx, row)


async def reply(ctx: Context, ticket_id: uuid.UUID | None, body: str, *, internal: bool) -> TicketView:
    """A reply to the patient (the first one is the first response) or an internal note."""
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    text = _text(body, "body")  # clean_text refuses empty text
    found = await find(ctx, ticket_id, Action.UPDATE)
    async with in_transaction():
        row = await lock(ctx, found)
        changes: dict[str, Any] = {}
        if not internal and row.status == "new":
            changes = {"status": "acknowledged", "first_responded_at": _now()}
            await _apply(ctx, row, changes)
            await add_event(ctx, row, "transition", from_status="new", to_status="acknowledged")
        await add_event(ctx, row, "internal_note" if internal else "reply", note=text, internal=internal)
        if changes:
            await sla.recompute(ctx, row)
        await _audit(ctx, Action.UPDATE, row, frozenset({"timeline", *changes}), decision)
    return _changed(ctx, row)


async def record_feedback(ctx: Context, ticket_id: uuid.UUID | None, feedback: str) -> TicketView:
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    text = _text(feedback, "feedback")
    found = await find(ctx, ticket_id, Action.UPDATE)
    async with in_transaction():
        row = await lock(ctx, found)
        _check_transition(row.status, "feedback_recorded", allowed_from=("resolved",))
        changes = {"status": "feedback_recorded", "feedback": access.seal(ctx, "ticket", "feedback", row.id, text)}
        await _apply(ctx, row, changes)
        await add_event(ctx, row, "feedback", from_status="resolved", to_status="feedback_recorded")
        await _audit(ctx, Action.UPDATE, row, frozenset(changes), decision)
    return _changed(ctx, row)


async def log_contact_attempt(ctx: Context, ticket_id: uuid.UUID | None, *, reached: bool,
                              note: str | None) -> TicketView:
    """An attempt to reach the patient for feedback; a failed one lets a resolved complaint close."""
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    text = _text(note, "note")
    found = await find(ctx, ticket_id, Action.UPDATE)
    async with in_transaction():
        row = await lock(ctx, found)
        await add_event(ctx, row, "contact_attempt", note=text, to_status="reached" if reached else "unreachable")
        await _audit(ctx, Action.UPDATE, row, frozenset({"timeline"}), decision)
    return _changed(ctx, row)


async def update(ctx: Context, ticket_id: uuid.UUID | None, data: dict[str, Any],
                 version: int | None = None) -> TicketView:
    """Level, subcategory and root cause. A new level recomputes the due times."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    problems = Problems()
    if "level" in data and data["level"] is None:  # the first field of the input: its problem comes first
        problems.add("level", "required", "must not be null.")
    values = _collect(problems, data)
    note = None
    with problems.collect("note"):
        note = _text(data.get("note"), "note")
    problems.check()
    found = await find(ctx, ticket_id, Action.UPDATE)
    async with in_transaction():
        row = await lock(ctx, found)
        old_level = row.level
        await _apply(ctx, row, _sealed(ctx, row.id, values), version)
        if "level" in values and values["level"] != old_level:
            await add_event(ctx, row, "level_change", from_status=str(old_level), to_status=str(values["level"]),
                         note=note)
            await sla.recompute(ctx, row)
        await _audit(ctx, Action.UPDATE, row, frozenset(values), decision)
    return _changed(ctx, row)


# -- ownership -----------------------------------------------------------------------------


async def handover(ctx: Context, ticket_id: uuid.UUID | None, *, to_staff_id: uuid.UUID | None,
                   to_department_id: uuid.UUID | None, note: str | None, version: int | None = None) -> TicketView:
    """First-contact responsibility: the owner keeps a ticket until handing it to a named person or
    department. Besides the owner, whoever supervises the ticket's department may hand it over."""
    decision = await access.authorize(ctx, "ticket", "assign", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    problems = Problems()  # the input's shape, every problem at once, before the ticket is looked up
    if (to_staff_id is None) == (to_department_id is None):
        problems.add("toStaffId", "invalid", "hand over to one person or one department.")
    text = None
    with problems.collect("note"):
        text = _text(note, "note")
    problems.check()
    found = await find(ctx, ticket_id, Action.UPDATE)
    if not _may_hand_over(ctx, found):
        await access.deny(ctx, Action.UPDATE, "ticket", found.id, found.patient_id, reason="not_owner")
        raise Forbidden("Only the ticket's owner or its department's supervisors may hand it over.")
    if to_staff_id is not None:
        await _staff(ctx, to_staff_id, Action.UPDATE, "toStaffId")
        changes: dict[str, Any] = {"owner_id": to_staff_id}
    else:
        changes = {"owner_id": None, "department_id": await _department(ctx, to_department_id, Action.UPDATE,
                                                                                 "toDepartmentId")}
    async with in_transaction():
        row = await lock(ctx, found)
        if not _may_hand_over(ctx, row):
            # handed over (or moved) since it was read, by someone else: the caller owns it no more (found in review:
            # an owner who still reached it as its assignee handed it on over a supervisor's handover)
            raise stale("ticket")
        await _apply(ctx, row, changes, version)
        await add_event(ctx, row, "handover", note=text, to_staff_id=to_staff_id, to_department_id=to_department_id)
        await _audit(ctx, Action.UPDATE, row, frozenset(changes), decision)
    return _changed(ctx, row)


def _may_hand_over(ctx: Context, ticket: Ticket) -> bool:
    """The ticket's owner, or someone who supervises its department."""
    return ticket.owner_id == ctx.actor.id or ticket_scope(ctx).reaches_department(ticket.department_id)


async def assign(ctx: Context, ticket_id: uuid.UUID | None, assignee_id: uuid.UUID | None,
                 version: int | None = None) -> TicketView:
    """Who works the ticket. Department heads assign within their departments, agents anywhere."""
    decision = await access.authorize(ctx, "ticket", "assign", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    found = await find(ctx, ticket_id, Action.UPDATE)
    scope = ticket_scope(ctx)
    if not scope.reaches_department(found.department_id):
        await access.deny(ctx, Action.UPDATE, "ticket", found.id, found.patient_id, reason="outside_department")
        raise Forbidden("Only the ticket's department's supervisors or support agents may assign it.")
    if assignee_id is not None:
        staff = await _staff(ctx, assignee_id, Action.UPDATE, "assigneeId")
        if not scope.reaches_department(None) and found.department_id not in await _departments_of(staff):
            raise BadUserInput("assigneeId: assign within the ticket's department.", field="assigneeId")
    async with in_transaction():
        row = await lock(ctx, found)
        if row.department_id != found.department_id:  # moved to another department since it was read: its
            raise stale("ticket")  # supervisors and staff are not the ones checked above (as a handover's owner)
        await _apply(ctx, row, {"assignee_id": assignee_id}, version)
        await add_event(ctx, row, "assignment", to_staff_id=assignee_id)
        await _audit(ctx, Action.UPDATE, row, frozenset({"assignee_id"}), decision)
    return _changed(ctx, row)


# -- helpers -------------------------------------------------------------------------------


def _check_transition(current: str, to: str, allowed_from: tuple[str, ...]) -> None:
    """A move made by another mutation than ticketTransition (feedback_recorded, from resolved only)."""
    if current not in allowed_from:
        raise BadUserInput(f"to: a ticket cannot go from {current} to {to}.", field="to", reason=ILLEGAL_TRANSITION)


def transition_refusal(row: Ticket, to: str, unreachable_at: Iterable[datetime] = ()) -> str | None:
    """Why ``ticketTransition`` refuses to move this ticket to ``to`` (None: the move is accepted), given
    when its failed attempts to reach the patient were logged (only read for a move to closed). The one
    rule of the lifecycle: the mutation applies it, and ``allowed_transitions`` lists what it accepts."""
    if to not in TRANSITIONS.get(row.status, frozenset()):
        return f"to: a ticket cannot go from {row.status} to {to}."
    if to == "closed" and not _loop_closed(row, unreachable_at):
        return ("to: a complaint closes after the patient's feedback is recorded or a failed attempt to reach "
                "them is logged.")
    return None


def _loop_closed(row: Ticket, unreachable_at: Iterable[datetime]) -> bool:
    """A complaint closes with the patient's feedback recorded, or after a failed attempt to reach them
    since it was resolved."""
    if not _closes_on_attempts(row):
        return True
    resolved_at = row.resolved_at
    return resolved_at is not None and any(at >= resolved_at for at in unreachable_at)


def _closes_on_attempts(row: Ticket) -> bool:
    """Whether closing the ticket depends on the logged attempts to reach the patient."""
    return row.category == "complaint" and row.status != "feedback_recorded"


async def _unreachable_attempts(ctx: Context, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[datetime]]:
    """When failed attempts to reach the patient were logged, per ticket: one statement for all."""
    found: dict[uuid.UUID, list[datetime]] = {}
    rows = await TicketEvent.filter(institution_id=ctx.institution_id, ticket_id__in=list(ticket_ids),
                                    kind="contact_attempt", to_status="unreachable").values_list("ticket_id",
                                                                                                 "occurred_at")
    for ticket_id, occurred_at in rows:
        found.setdefault(ticket_id, []).append(occurred_at)
    return found


def in_reach(ctx: Context, row: Ticket) -> bool:
    """Whether the ticket lies within the caller's ticket reach: ``TicketScope.filter`` evaluated on a loaded
    row (the changes refuse a ticket outside it as NOT_FOUND; one handed away meanwhile drops out)."""
    return ticket_scope(ctx).reaches(row.institution_id, row.owner_id, row.assignee_id, row.department_id)


async def allowed_transitions(ctx: Context, view: TicketView) -> list[str]:
    """The statuses ``ticketTransition`` would accept for this ticket from the caller now, in lifecycle order:
    ``ticket: update`` allowed, the ticket in reach, and ``transition_refusal`` silent. Moves to closed of
    resolved complaints look up the logged attempts, batched across the tickets of a request."""
    row = view.row
    if not ctx.decide("ticket", "update").allowed or not in_reach(ctx, row):
        return []
    unreachable: Sequence[datetime] = ()
    if "closed" in TRANSITIONS.get(row.status, frozenset()) and _closes_on_attempts(row):
        async def batch(ids: Sequence[uuid.UUID]) -> list[list[datetime]]:
            found = await _unreachable_attempts(ctx, ids)
            return [found.get(i, []) for i in ids]

        unreachable = await ctx.require_loaders().made("ticket_unreachable_attempts", batch).load(row.id)
    return [to for to in STATUSES if transition_refusal(row, to, unreachable) is None]


async def _apply(ctx: Context, row: Ticket, changes: dict[str, Any], version: int | None = None) -> None:
    """Write changes over the version the caller read (None: the one locked), bumping it; stale: CONFLICT."""
    if not changes:
        check_version(row, version, "ticket")
        return
    await update_versioned(row, version, "ticket", **changes)


def _opener(ctx: Context) -> dict[str, Any]:
    """Who opens a ticket, so that they keep seeing its status after handing it over (``opened_page``)."""
    principal = ctx.require_principal()
    if principal.kind == STAFF:
        return {"opened_by_id": principal.user_id}
    if principal.kind == PARTNER:
        return {"opened_by_partner_id": principal.partner_id}
    return {"opened_by_patient": True}


def _changed(ctx: Context, row: Ticket) -> TicketView:
    """After a committed change: wake this process's live queues and escalation deliverer."""
    ctx.services.ticket_changes.notify()
    ctx.services.outbox.scheduled.set()
    return TicketView(row)


async def add_event(ctx: Context, row: Ticket, kind: str, *, from_status: str | None = None,
                 to_status: str | None = None, note: str | None = None, internal: bool = True,
                 to_staff_id: uuid.UUID | None = None, to_department_id: uuid.UUID | None = None,
                 occurred_at: datetime | None = None) -> TicketEvent:
    event_id = uuid7()
    return await TicketEvent.create(
        id=event_id, institution_id=ctx.institution_id, ticket_id=row.id, kind=kind,
        actor_id=ctx.actor.id if ctx.actor.kind == STAFF else None,  # the audit trail names a partner
        occurred_at=occurred_at or _now(), from_status=from_status, to_status=to_status,
        internal=internal, note=access.seal(ctx, "ticket_event", "note", event_id, note) if note else None,
        to_staff_id=to_staff_id, to_department_id=to_department_id)


async def _audit(ctx: Context, action: Action, row: Ticket, fields: frozenset[str], decision: Decision) -> None:
    await writer.append([access.write_record(ctx, action, "ticket", row.id, patient_id=row.patient_id,
                                             fields=fields,
                                             decision=decision)])


async def _contact_of(ctx: Context, contact_id: uuid.UUID | None, patient_id: uuid.UUID | None) -> uuid.UUID | None:
    """The contact who reported, one of the patient's: another's, or none, is NOT_FOUND with the refusal on the
    trail (found in review: it was not recorded)."""
    if contact_id is None:
        return None
    if not await access.is_patient_contact(ctx, Action.CREATE, contact_id, patient_id):
        raise NotFound("The contact is not one of this patient's.", field="contactId")
    return contact_id


async def _department(ctx: Context, department_id: uuid.UUID | None, action: Action,
                      field: str = "departmentId") -> uuid.UUID:
    """A department of the institution, or NOT_FOUND with the refusal on the trail."""
    department = await access.find_in_institution(ctx, Department, department_id, action=action,
                                                  resource_type="department", field=field)
    return department.id


async def _staff(ctx: Context, staff_id: uuid.UUID, action: Action, field: str) -> Staff:
    """An active colleague who works tickets (a ticket handed to someone who may not read tickets
    would drop out of sight); another institution's, or none, is NOT_FOUND with the refusal on the trail."""
    staff = await access.find_in_institution(ctx, Staff.filter(is_active=True), staff_id, action=action,
                                             resource_type="staff", field=field)
    roles = await RoleAssignment.filter(staff_id=staff.id).values_list("role", flat=True)
    if not any(ctx.services.guard.role_allows(str(role), ctx.institution_id, "ticket", "read") for role in roles):
        raise BadUserInput(f"{field}: this person does not work on tickets.", field=field)
    return staff


def _now() -> datetime:
    """The present of a ticket's steps: the demo seed replays its tickets' stories through it (app.demo_clock)."""
    return datetime.now(UTC)


async def _departments_of(staff: Staff) -> set[uuid.UUID]:
    rows = await DepartmentMembership.filter(staff_id=staff.id).values_list("department_id", flat=True)
    return {uuid.UUID(str(d)) for d in rows}


def _received_at(value: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if value is None:
        return now
    value = aware_time(value, "receivedAt")
    if value > now + timedelta(minutes=1) or value < now - MAX_BACKDATE:
        raise BadUserInput("receivedAt: within the last 7 days, not in the future.", field="receivedAt",
                           reason="out_of_range")
    # the minute allowed for a client's clock running fast is now: stored ahead, the ticket was received after its
    # first answer, its timeline opened with that answer and the report counted a negative response time (found in
    # review)
    return min(value.astimezone(UTC), now)


def _level(level: int | None, category: str, post_operative: bool | None, dispute: bool | None) -> int:
    """Post-operative problems and complaints escalating to a dispute are level 1 whatever is asked."""
    if post_operative or dispute:
        return 1
    if level is not None:
        return level
    return 3 if category == "suggestion" else 2


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Validated values of a ticket's fields, every invalid one reported at once (``core.validation.Problems``)."""
    problems = Problems()
    out = _collect(problems, data)
    problems.check()
    return out


def _collect(problems: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """The valid values of a ticket's own fields; each invalid one becomes a problem (the caller checks)."""
    elsewhere = ("patient_id", "contact_id", "department_id", "received_at", "post_operative", "dispute", "note")
    return problems.each({name: value for name, value in data.items() if name not in elsewhere}, _normalize_one)


def _normalize_one(name: str, value: Any) -> Any:
    field = camel_case(name)
    if value is None:
        if name in _REQUIRED_VALUES:
            raise BadUserInput(f"{field}: must not be null.", field=field, reason="required")
        return None
    if name in _TEXT_LIMITS:
        return clean_text(value, field=field, max_length=_TEXT_LIMITS[name], min_length=1)
    if name == "caller_phone":
        return normalize_phone(value, field="callerPhone")
    if name in ("channel", "category", "root_cause_category"):
        allowed = {"channel": CHANNELS, "category": CATEGORIES, "root_cause_category": ROOT_CAUSES}[name]
        if value not in allowed:
            raise BadUserInput(f"{field}: unknown value.", field=field, reason="invalid_choice")
        return value
    if name == "level":
        if value not in (1, 2, 3):
            raise BadUserInput("level: must be 1, 2 or 3.", field="level", reason="out_of_range")
        return value
    raise BadUserInput(f"{field}: cannot be set here.", field=field)


def _sealed(ctx: Context, ticket_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    return {name: access.seal(ctx, "ticket", name, ticket_id, value) if name in ENCRYPTED else value
            for name, value in values.items()}


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    return clean_text(value, field=field, max_length=_TEXT_LIMITS.get(field, 4000), min_length=1)





def _conditions(ctx: Context, where: TicketFilter) -> Q:
    q = Q()
    if where.status is not None:
        q &= Q(status=where.status)
    if where.department_id is not None:
        q &= Q(department_id=where.department_id)
    if where.category is not None:
        q &= Q(category=where.category)
    if where.level is not None:
        q &= Q(level=where.level)
    if where.mine:
        q &= Q(owner_id=ctx.actor.id) | Q(assignee_id=ctx.actor.id)
    if where.patient_id is not None:
        q &= Q(patient_id=where.patient_id)
    return q
