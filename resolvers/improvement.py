"""The service-improvement list: problem, responsible department, measure, deadline, status, tickets.

Department heads keep their departments' items; support agents, who see every complaint, keep
everyone's. An item is overdue when its deadline has passed (in the institution's time zone)
and it is neither done nor cancelled; so a new item's deadline, and one an update moves while the item stays open,
is today or later.

An item found in surveys (source ``survey``) cites its finding: a questionnaire of the institution (its key,
any version) and a month, in the item's department. Only aggregates are citable, never one response: an
anonymous answer must not be singled out. A survey item needs its citation and only a survey item has one;
the month is ``YYYY-MM``, from the year 2000 on (as reports take them), and not one to come. The item shows the
cited questionnaire's newest title and version to whoever reads the item (a questionnaire's name, no answer).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput, Forbidden
from core.ids import uuid7
from core.validation import FIRST_YEAR, Problems, camel_case, check_year, clean_text
from models import Department, ImprovementItem, ImprovementTicket, Questionnaire, Ticket
from models.improvement import IMPROVEMENT_SOURCES, IMPROVEMENT_STATUSES
from policies.guard import Decision
from resolvers import access, pagination, versioning
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.ticket import ticket_scope

CURSOR_KIND = "improvement"
DONE = ("done", "cancelled")
MAX_LINKED = 200
_TEXT_LIMITS = {"problem": 500, "measure": 1000}
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class SurveyCitation:
    """The survey finding an item cites: a questionnaire (its newest version's title and number) and a month."""

    questionnaire_key: uuid.UUID
    month: str
    title: dict[str, str]
    version: int


@dataclass(frozen=True)
class ImprovementView:
    row: ImprovementItem
    ticket_ids: list[uuid.UUID]
    today: date
    citation: SurveyCitation | None = None

    @property
    def overdue(self) -> bool:
        return self.row.status not in DONE and self.row.deadline < self.today


@dataclass(frozen=True)
class ImprovementOrder:
    """A list order: by deadline (the default, soonest first) or by last change; ties broken by id."""

    field: str = "deadline"  # or "updated_at"
    direction: str = "asc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors (the default keeps today's), so one from another is BAD_USER_INPUT."""
        return CURSOR_KIND if self == ImprovementOrder() else f"{CURSOR_KIND}.{self.field}.{self.direction}"


@dataclass(frozen=True)
class ImprovementPage:
    page: pagination.Page[ImprovementView]
    total: int | None  # counted only when asked for


async def page(ctx: Context, *, first: int, after: str | None, status: str | None, overdue: bool,
               department_id: uuid.UUID | None, order: ImprovementOrder | None = None,
               count: bool = False) -> ImprovementPage:
    """Items in reach by deadline, soonest first (or in ``order``); ``overdue`` keeps the late ones."""
    order = order or ImprovementOrder()
    await access.authorize(ctx, "improvement", "read", action=Action.READ, resource_type="improvement")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    today = await institutions.local_today_of(ctx)
    query = ImprovementItem.filter(_reach(ctx))
    if status is not None:
        query = query.filter(status=_one_of(status, IMPROVEMENT_STATUSES, "status"))
    if overdue:
        query = query.filter(deadline__lt=today).exclude(status__in=DONE)
    if department_id is not None:
        query = query.filter(department_id=department_id)
    total = await pagination.count_of(query, count)
    column = order.field
    rows = await pagination.keyset_rows(query, column, order.direction == "desc", first=first, after=after,
                                        kind=order.cursor_kind,
                                        parse=date.fromisoformat if column == "deadline" else pagination.decode_time)
    views = await _views(rows[:first], today)
    return ImprovementPage(pagination.page_of(
        views, len(rows) > first, order.cursor_kind,
        key=lambda view: f"{getattr(view.row, column).isoformat()}|{view.row.id}"), total)


async def create(ctx: Context, data: dict[str, Any]) -> ImprovementView:
    decision = await access.authorize(ctx, "improvement", "create", action=Action.CREATE,
                                      resource_type="improvement")
    problems = Problems()  # every problem of the input's shape at once, before the records it names
    # An optional field given as null takes its default, as if left out.
    values = {name: value for name, value in _normalize(problems, {k: v for k, v in data.items()
                                                                  if k != "survey_citation"}).items()
              if value is not None}
    for required in ("problem", "department_id", "deadline"):
        if values.get(required) is None and not problems.has(camel_case(required)):
            problems.add(camel_case(required), "required", "is required.")
    today = await institutions.local_today_of(ctx)
    _check_deadline_ahead(problems, values.get("deadline"), today)
    citation = await _citation_shape(ctx, problems, values.get("source") or "ticket", data.get("survey_citation"))
    _check_ticket_count(problems, data.get("ticket_ids"))
    problems.check()
    await _require_department(ctx, values["department_id"], decision, Action.CREATE)
    cited = await _citation(ctx, citation)
    values |= _citation_columns(cited)
    ticket_ids = await _tickets(ctx, data.get("ticket_ids") or [], Action.CREATE)
    item_id = uuid7()
    async with in_transaction():
        row = await ImprovementItem.create(id=item_id, institution_id=ctx.institution_id,
                                           created_by_id=ctx.actor.id, **values)
        await _link(ctx, row, ticket_ids, linked=set())  # a new item links nothing yet: no read for that
        await writer.append([access.write_record(ctx, Action.CREATE, "improvement", row.id,
                                                 fields=_written(values, ticket_ids),
                                                 decision=decision)])
    # Answered from what was written (found in review: it read back the links it had just made): the links are
    # the tickets given, in the order a read lists them (by id), and the citation was read as it was checked.
    return ImprovementView(row, ticket_ids, today, cited)


async def update(ctx: Context, item_id: uuid.UUID | None, data: dict[str, Any],
                 version: int | None = None) -> ImprovementView:
    decision = await access.authorize(ctx, "improvement", "update", action=Action.UPDATE,
                                      resource_type="improvement", resource_id=item_id)
    # After the rights (found in review: before them, one without any got no FORBIDDEN, no audit row). No tickets to
    # link (null or []) is no change either (found in review: alone, it bumped the version and wrote an empty update).
    data = {name: value for name, value in data.items() if name != "ticket_ids" or value}
    if not data:
        raise _empty_change()
    problems = Problems()
    values = _normalize(problems, data)
    for name, value in values.items():
        if value is None:
            problems.add(camel_case(name), "required", "must not be null.")
    _check_ticket_count(problems, data.get("ticket_ids"))
    problems.check()
    ticket_ids = await _tickets(ctx, data.get("ticket_ids") or [], Action.UPDATE)
    # Refusals first, outside the write's transaction: a rollback would take their audit records along.
    found = await ImprovementItem.filter(_reach(ctx), id=item_id).first() if item_id else None
    if found is None:
        raise await access.not_found(ctx, Action.UPDATE, "improvement", item_id)
    if "department_id" in values:
        await _require_department(ctx, values["department_id"], decision, Action.UPDATE)
    async with access.refusals_recorded(ctx), in_transaction():
        # The reach again, on the row as the lock leaves it (found in review: an item moved to another
        # department while the update waited for its lock was written all the same).
        row = await ImprovementItem.filter(_reach(ctx), id=found.id).select_for_update().first()
        if row is None:  # recorded once the transaction has rolled back, as a missing item is
            raise access.Refusal.not_found(Action.UPDATE, "improvement", item_id)
        _check_deadline_moved(row, values, await institutions.local_today_of(ctx))
        linked = await _linked_ids(row)
        _check_linked_count(linked, ticket_ids)  # with the row locked: two updates count one after the other
        # Tickets linked already are no change (found in review: alone, they bumped the version and recorded
        # an update of the item's tickets; with another field, the record named tickets no link was made for).
        added = [t for t in ticket_ids if t not in linked]
        if not values and not added:
            raise _empty_change()
        await versioning.update_versioned(row, version, "improvement item", **values)  # linking tickets too
        await _link(ctx, row, added, linked)
        await writer.append([access.write_record(ctx, Action.UPDATE, "improvement", row.id,
                                                 fields=_written(values, added),
                                                 decision=decision)])
    fresh = await ImprovementItem.get(id=row.id)
    return (await _views([fresh], await institutions.local_today_of(ctx)))[0]


# -- helpers -------------------------------------------------------------------------------


def _check_deadline_ahead(problems: Problems, deadline: date | None, today: date) -> None:
    """A new item is open, its measure still to take: a deadline before today (the institution's date) is a
    client's mistake (found in review: it was accepted, and the item overdue from its first moment)."""
    if deadline is not None and deadline < today and not problems.has("deadline"):
        problems.add("deadline", "in_past", "not before today (the institution's date).")


def _check_deadline_moved(row: ImprovementItem, values: dict[str, Any], today: date) -> None:
    """Only a deadline the change moves is checked (one that has passed since, given again as it stands, is kept),
    and only while the item stays open: one closed by the same change may have its deadline corrected."""
    deadline = values.get("deadline", row.deadline)
    if deadline != row.deadline and values.get("status", row.status) not in DONE:
        problems = Problems()
        _check_deadline_ahead(problems, deadline, today)
        problems.check()


def _empty_change() -> BadUserInput:
    return BadUserInput("input: give at least one field to change.", field="input")


async def _citation_shape(ctx: Context, problems: Problems, source: str,
                          citation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The citation when its shape is right (a survey item needs one, no other item has one; a month begun),
    else None with its problems added."""
    if citation is None:
        if source == "survey":
            problems.add("surveyCitation", "required", "an item found in surveys cites the questionnaire and month.")
        return None
    if source != "survey":
        problems.add("surveyCitation", "invalid", "only an item found in surveys (source SURVEY) cites one.")
        return None
    month = citation.get("month")
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        problems.add("surveyCitation.month", "invalid", "a month as YYYY-MM.")
        return None
    if int(month[:4]) < FIRST_YEAR:  # found in review: "0001-01" was cited, a month no report shows
        problems.add("surveyCitation.month", "out_of_range", f"a month from the year {FIRST_YEAR} on.")
        return None
    if month > (await institutions.local_today_of(ctx)).strftime("%Y-%m"):
        problems.add("surveyCitation.month", "in_future", "a month that has begun.")
        return None
    return citation


async def _citation(ctx: Context, citation: dict[str, Any] | None) -> SurveyCitation | None:
    """The citation with its questionnaire's newest version, the questionnaire being the institution's."""
    if citation is None:
        return None
    key = citation.get("questionnaire_key")
    newest = [] if key is None else await Questionnaire.filter(
        institution_id=ctx.institution_id, key=key).order_by("-version").limit(1).values_list("version", "title")
    if key is None or not newest:
        raise await access.not_found(ctx, Action.CREATE, "questionnaire", None, "surveyCitation.questionnaireKey")
    [(version, title)] = newest
    return SurveyCitation(key, citation["month"], title, version)


def _citation_columns(citation: SurveyCitation | None) -> dict[str, Any]:
    if citation is None:
        return {}
    return {"survey_questionnaire_key": citation.questionnaire_key, "survey_month": citation.month}


def _written(values: dict[str, Any], ticket_ids: list[uuid.UUID]) -> frozenset[str]:
    return frozenset(values) | (frozenset({"tickets"}) if ticket_ids else frozenset())


def _reach(ctx: Context) -> Q:
    scope = ticket_scope(ctx)
    tenant = Q(institution_id=ctx.institution_id)
    if scope.reaches_department(None):
        return tenant
    return tenant & Q(department_id__in=sorted(scope.department_ids) or [uuid.UUID(int=0)])


async def _require_department(ctx: Context, department_id: uuid.UUID, decision: Decision, action: Action) -> None:
    if not await Department.exists(id=department_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, action, "department", department_id, "departmentId")
    if not ticket_scope(ctx).reaches_department(department_id):
        await access.deny(ctx, action, "improvement", None, reason="outside_department")
        raise Forbidden("Improvement items of other departments are not yours to keep.")


async def _tickets(ctx: Context, ticket_ids: list[uuid.UUID], action: Action) -> list[uuid.UUID]:
    """Tickets to link must be in the caller's ticket reach; others look missing, their refusal recorded as the
    ``action`` asked for (found in review: a create's was recorded as an update)."""
    wanted = sorted(set(ticket_ids))
    if not wanted:
        return []
    found = set(await Ticket.filter(ticket_scope(ctx).filter(), id__in=wanted).values_list("id", flat=True))
    missing = [t for t in wanted if t not in found]
    if missing:
        raise await access.not_found(ctx, action, "ticket", missing[0], "ticketIds")
    return wanted


def _check_ticket_count(problems: Problems, ticket_ids: list[uuid.UUID] | None) -> None:
    if len(set(ticket_ids or [])) > MAX_LINKED:
        problems.add("ticketIds", "item_count", f"at most {MAX_LINKED}.")


def _check_linked_count(linked: set[uuid.UUID], ticket_ids: list[uuid.UUID]) -> None:
    """An item links at most MAX_LINKED tickets in all (found in review: each update added up to MAX_LINKED more,
    so the item's ticketIds, listed whole on a page of up to 100 items, had no bound)."""
    if len(linked | set(ticket_ids)) > MAX_LINKED:
        raise BadUserInput(f"ticketIds: an item links at most {MAX_LINKED} tickets in all, those linked included.",
                           field="ticketIds", reason="item_count")


async def _linked_ids(row: ImprovementItem) -> set[uuid.UUID]:
    return {uuid.UUID(str(ticket_id)) for ticket_id in
            await ImprovementTicket.filter(item_id=row.id).values_list("ticket_id", flat=True)}


async def _link(ctx: Context, row: ImprovementItem, ticket_ids: list[uuid.UUID], linked: set[uuid.UUID]) -> None:
    """Link the tickets not linked yet (``linked``: those already linked)."""
    fresh = [ImprovementTicket(institution_id=ctx.institution_id, item_id=row.id, ticket_id=t)
             for t in ticket_ids if t not in linked]
    if fresh:
        await ImprovementTicket.bulk_create(fresh)


async def _views(rows: list[ImprovementItem], today: date) -> list[ImprovementView]:
    links = await ImprovementTicket.filter(item_id__in=[r.id for r in rows]).order_by("ticket_id").values_list(
        "item_id", "ticket_id")
    by_item: dict[Any, list[uuid.UUID]] = {}
    for item_id, ticket_id in links:
        by_item.setdefault(item_id, []).append(ticket_id)
    cited = await _cited(rows)
    return [ImprovementView(r, by_item.get(r.id, []), today, cited.get(r.id)) for r in rows]


async def _cited(rows: list[ImprovementItem]) -> dict[uuid.UUID, SurveyCitation]:
    """The page's citations with their questionnaires' newest versions (one statement, none without any)."""
    keys = {r.survey_questionnaire_key for r in rows if r.survey_questionnaire_key is not None}
    if not keys:
        return {}
    newest: dict[uuid.UUID, tuple[int, dict[str, str]]] = {}
    for key, version, title in await Questionnaire.filter(
            institution_id=rows[0].institution_id, key__in=sorted(keys)).order_by("version").values_list(
            "key", "version", "title"):
        newest[key] = (version, title)
    return {r.id: SurveyCitation(r.survey_questionnaire_key, str(r.survey_month), newest[r.survey_questionnaire_key][1],
                                 newest[r.survey_questionnaire_key][0])
            for r in rows if r.survey_questionnaire_key is not None and r.survey_questionnaire_key in newest}




def _normalize(problems: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """The fields' values, each checked on its own; its problems gathered in ``problems``."""
    return problems.each({name: value for name, value in data.items() if name != "ticket_ids"}, _value)


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TEXT_LIMITS:
        return clean_text(value, field=camel_case(name), max_length=_TEXT_LIMITS[name],
                          min_length=1 if name == "problem" else 0)
    if name == "status":
        return _one_of(value, IMPROVEMENT_STATUSES, "status")
    if name == "source":
        return _one_of(value, IMPROVEMENT_SOURCES, "source")
    if name == "deadline":
        check_year(value, "deadline")
        return value
    if name == "department_id":
        return value
    raise BadUserInput(f"{camel_case(name)}: cannot be set here.", field=camel_case(name))


def _one_of(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise BadUserInput(f"{field}: unknown value.", field=field)
    return value


