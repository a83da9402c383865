"""The audit trail for compliance officers: identifiers and field names, never values."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from audit import patient_index, writer
from audit.events import Action, Outcome
from core.errors import BadUserInput
from core.principal import PARTNER, STAFF
from core.validation import clean_text
from models import AuditEvent, PartnerClient, RoleAssignment, Staff
from resolvers import access, pagination
from resolvers.context import Context

CURSOR_KIND = "audit"


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page(ctx: Context, *, first: int, after: str | None, where: AuditFilter) -> pagination.Page[AuditEvent]:
    """Newest first, keyset-paged on the chain's sequence number."""
    decision = await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="audit_event")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    await writer.seal(ctx.institution_id)
    query = AuditEvent.filter(Q(institution_id=ctx.institution_id) & _conditions(ctx.institution_id, where))
    if after:
        query = query.filter(seq__lt=pagination.decode_int(CURSOR_KIND, after))
    rows = await query.order_by("-seq").limit(first + 1)
    ctx.reads.note("audit_event", None, None, rule=decision.rule)  # reading the trail is itself on the trail
    return pagination.page_of(rows[:first], len(rows) > first, CURSOR_KIND, key=lambda row: row.seq)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _conditions(institution_id: uuid.UUID, where: AuditFilter) -> Q:
    q = Q()
    if where.actor_id is not None:
        q &= Q(actor_id=where.actor_id)
    if where.patient_id is not None:
        q &= patient_index.about_patient(institution_id, where.patient_id)
    if where.resource_type is not None:
        # A control character names no resource type, and PostgreSQL cannot compare with a NUL (issue 11).
        q &= Q(resource_type=clean_text(where.resource_type, field="filter.resourceType", max_length=1000)[:32])
    if where.resource_id is not None:
        q &= patient_index.about_record(where.resource_id)
    if where.action is not None:
        q &= Q(action=Action(where.action).value)
    if where.outcome is not None:
        q &= Q(outcome=Outcome(where.outcome).value)
    if where.since is not None and where.until is not None and where.since > where.until:
        raise BadUserInput("filter.from: must not be after filter.to.", field="filter.from")
    # Compared as UTC: SQLite keeps timestamps as text, so an offset would compare as characters.
    if where.since is not None:
        q &= Q(occurred_at__gte=_utc(where.since))
    if where.until is not None:
        q &= Q(occurred_at__lt=_utc(where.until))
    return q


def within(query: Any, since: datetime | None, until: datetime | None, column: str = "occurred_at") -> Any:
    """Rows of a period (``since`` inclusive, ``until`` exclusive); times must carry a zone and are
    compared in UTC (SQLite keeps them as text)."""
    _zoned(since, until)
    if since is not None:
        query = query.filter(**{f"{column}__gte": since.astimezone(UTC)})
    if until is not None:
        query = query.filter(**{f"{column}__lt": until.astimezone(UTC)})
    return query


def check_period(since: datetime, until: datetime) -> None:
    """A period a report must have: both ends with a zone (a naive and an aware time do not even
    compare), the end after the start."""
    _zoned(since, until)
    if until <= since:
        raise BadUserInput("to: the period must end after it starts.", field="to")


def _zoned(since: datetime | None, until: datetime | None) -> None:
    for moment, name in ((since, "from"), (until, "to")):
        if moment is not None and moment.tzinfo is None:
            raise BadUserInput(f"{name}: give a time zone.", field=name)


@dataclass(frozen=True)
class Who:
    """Who did something, as the trail's readers may see them: no contact details."""

    name: str  # a staff member's name, or a partner's
    roles: list[str]  # a staff member's roles
    client: str = ""  # a partner's API client


async def who(actors: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], Who]:
    """Staff by name and roles, partner clients by their partner's name: three statements for any
    number of (actor kind, actor id) pairs."""
    wanted = {(kind, actor) for kind, actor in actors if actor is not None}
    staff = [actor for kind, actor in wanted if kind == STAFF]
    clients = [actor for kind, actor in wanted if kind == PARTNER]
    roles: dict[Any, list[str]] = defaultdict(list)
    for staff_id, role in await RoleAssignment.filter(staff_id__in=staff).order_by("role").values_list(
            "staff_id", "role"):
        roles[staff_id].append(str(role))
    found = {(STAFF, staff_id): Who(str(name), roles.get(staff_id, []))
             for staff_id, name in await Staff.filter(id__in=staff).values_list("id", "name")}
    found |= {(PARTNER, client_id): Who(str(partner), [], str(client)) for client_id, client, partner in
              await PartnerClient.filter(id__in=clients).values_list("id", "name", "partner__name")}
    return found
