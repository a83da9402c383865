"""The audit trail, for compliance officers: identifiers and field names, never values."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from audit.events import Action, Outcome
from resolvers import audit_event as audit_events
from resolvers.audit_event import AuditFilter
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, uuid_of

if TYPE_CHECKING:
    from models import AuditEvent as AuditEventRow


# The audit vocabulary's own enums, exposed as they are.
strawberry.enum(Action, name="AuditAction", description="What was done.")
strawberry.enum(Outcome, name="AuditOutcome", description="How it ended.")


def _ids(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


@strawberry.type(description="One event of the append-only, hash-chained audit trail.")
class AuditEvent:
    id: strawberry.ID
    seq: int = strawberry.field(description="Position in the institution's chain, gap-free from 1.")
    occurred_at: datetime
    actor_kind: str = strawberry.field(description="staff, anonymous or system.")
    actor_id: strawberry.ID | None
    token_id: strawberry.ID | None
    action: Action
    resource_type: str
    resource_id: strawberry.ID | None
    patient_id: strawberry.ID | None
    field_classes: list[str] = strawberry.field(description="Field classes returned (identity, contact...).")
    fields_read: list[str] = strawberry.field(
        description="For reads, the encrypted fields decrypted; for writes, the fields written. Names, not values.")
    outcome: Outcome
    reason: str = strawberry.field(description="Why it was denied: forbidden, not_found, forbidden_field...")
    policy_rule: str = strawberry.field(description="The policy rule that allowed it.")
    request_id: str
    client_address: str
    user_agent: str
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, row: AuditEventRow) -> AuditEvent:
        def ident(value: object) -> strawberry.ID | None:
            return None if value is None else strawberry.ID(str(value))

        return cls(
            id=strawberry.ID(str(row.id)), seq=row.seq, occurred_at=row.occurred_at, actor_kind=row.actor_kind,
            actor_id=ident(row.actor_id), token_id=ident(row.token_id), action=Action(row.action),
            resource_type=row.resource_type, resource_id=ident(row.resource_id), patient_id=ident(row.patient_id),
            field_classes=_ids(row.field_classes), fields_read=_ids(row.fields_read),
            outcome=Outcome(row.outcome), reason=row.reason, policy_rule=row.policy_rule,
            request_id=row.request_id, client_address=row.client_address, user_agent=row.user_agent,
            hash=row.hash, prev_hash=row.prev_hash,
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(description="A page of audit events, newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo


@strawberry.input(description="Narrow the audit trail. `from` is inclusive, `to` exclusive.")
class AuditEventFilter:
    actor: strawberry.ID | None = None
    patient: strawberry.ID | None = None
    resource_type: str | None = None
    resource: strawberry.ID | None = strawberry.field(default=None, description="One record, e.g. a ticket's id.")
    action: Action | None = None
    outcome: Outcome | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.type
class AuditEventQuery:
    @strawberry.field(description="The audit trail of your institution (compliance officers). Reading it is audited.")
    async def audit_events(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
        filter: AuditEventFilter | None = None,
    ) -> AuditEventConnection:
        f = filter or AuditEventFilter()
        where = AuditFilter(
            actor_id=uuid_of(f.actor, "filter.actor"), patient_id=uuid_of(f.patient, "filter.patient"),
            resource_type=f.resource_type, resource_id=uuid_of(f.resource, "filter.resource"),
            action=f.action.value if f.action else None,
            outcome=f.outcome.value if f.outcome else None, since=f.from_, until=f.to,
        )
        page = await audit_events.page(info.context, first=first, after=after, where=where)
        return AuditEventConnection(
            edges=[AuditEventEdge(cursor=cursor, node=AuditEvent.of(row)) for cursor, row in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )
