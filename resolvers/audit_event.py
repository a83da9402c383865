"""The audit trail for compliance officers: identifiers and field names, never values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from audit.events import Action, Outcome
from core.errors import BadUserInput
from models import AuditEvent
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
    query = AuditEvent.filter(Q(institution_id=ctx.institution_id) & _conditions(where))
    if after:
        query = query.filter(seq__lt=pagination.decode_int(CURSOR_KIND, after))
    rows = await query.order_by("-seq").limit(first + 1)
    ctx.reads.note("audit_event", None, None, rule=decision.rule)  # reading the trail is itself on the trail
    return pagination.page_of(rows[:first], len(rows) > first, CURSOR_KIND, key=lambda row: row.seq)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _conditions(where: AuditFilter) -> Q:
    q = Q()
    if where.actor_id is not None:
        q &= Q(actor_id=where.actor_id)
    if where.patient_id is not None:
        q &= Q(patient_id=where.patient_id)
    if where.resource_type is not None:
        q &= Q(resource_type=where.resource_type[:32])
    if where.resource_id is not None:
        q &= Q(resource_id=where.resource_id)
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
    for moment, name in ((since, "from"), (until, "to")):
        if moment is not None and moment.tzinfo is None:
            raise BadUserInput(f"{name}: give a time zone.", field=name)
    if since is not None:
        query = query.filter(**{f"{column}__gte": since.astimezone(UTC)})
    if until is not None:
        query = query.filter(**{f"{column}__lt": until.astimezone(UTC)})
    return query
