"""Separation of duties for roles: nobody grants themselves a role, and every grant of a role that
reads patient data is on the trail as such and waits in the compliance officers' review queue.

The queue is a table (``role_grant``), not a view over the audit trail: a review changes a row
(the trail is append-only), and the trail's oldest stretches are archived away after the retention
period, while an unreviewed grant must stay in the queue until someone looks at it.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from audit import writer
from audit.events import GRANTS_PATIENT_DATA, SELF_GRANT, Action, AuditRecord
from core.errors import Forbidden
from core.validation import Problems, clean_text
from models import RoleGrant
from models.emergency_access import REVIEW_OUTCOMES
from policies.fields import PATIENT_CLASSES
from policies.guard import Decision
from resolvers import access, pagination
from resolvers.context import Context
from resolvers.review_queue import ReviewQueue

CURSOR_KIND = "role-grant"
QUEUE = ReviewQueue(RoleGrant, "role_grant", CURSOR_KIND, "grant")


@dataclass(frozen=True)
class RoleGrantView:
    row: RoleGrant


def gives_patient_data(ctx: Context, role: str) -> bool:
    """Whether the reviewed policy lets the role read some patient field class (deny rules win)."""
    guard = ctx.services.guard
    return any(guard.role_allows(role, ctx.institution_id, f"patient.{cls}", "read") for cls in PATIENT_CLASSES)


def forbidden(message: str, *, field: str, reason: str) -> Forbidden:
    """FORBIDDEN that says why, with the audit record's reason code in ``extensions.reason``."""
    error = Forbidden(message, field=field)
    if error.extensions is not None:
        error.extensions["reason"] = reason
    return error


async def refuse_self_grant(ctx: Context, action: Action, resource_type: str, staff_id: uuid.UUID,
                            *, field: str, what: str) -> Forbidden:
    """Record the refusal of a grant to oneself (before any transaction opens) and return the error."""
    await access.deny(ctx, action, resource_type, staff_id, reason=SELF_GRANT)
    return forbidden(f"{field}: nobody grants {what} to themselves; another admin must.", field=field,
                     reason=SELF_GRANT)


async def record_grants(ctx: Context, staff_id: uuid.UUID, roles: list[str], decision: Decision) -> None:
    """Inside the grant's transaction: one role record per role given, and a queue entry per role that
    reads patient data (its record says so with the reason ``grants_patient_data``)."""
    records: list[AuditRecord] = []
    for role in roles:
        record = access.write_record(ctx, Action.CREATE, "role", staff_id, fields=frozenset({role}), decision=decision)
        if gives_patient_data(ctx, role):
            await RoleGrant.create(institution_id=ctx.institution_id, granted_by_id=ctx.actor.id, staff_id=staff_id,
                                   role=role)
            record = dataclasses.replace(record, reason=GRANTS_PATIENT_DATA)
        records.append(record)
    if records:
        await writer.append(records)


async def page(ctx: Context, *, first: int, after: str | None, unreviewed_only: bool,
               count: bool = False) -> pagination.Page[RoleGrantView]:
    """The review queue (compliance officers), oldest first."""
    page = await QUEUE.page(ctx, first=first, after=after, unreviewed_only=unreviewed_only, count=count)
    return page.map(RoleGrantView)


async def unreviewed(ctx: Context) -> int:
    return await QUEUE.unreviewed(ctx)


async def review(ctx: Context, grant_id: uuid.UUID | None, outcome: str, note: str | None) -> RoleGrantView:
    decision = await access.authorize(ctx, "role_grant", "update", action=Action.UPDATE, resource_type="role_grant",
                                      resource_id=grant_id)
    problems = Problems()  # the outcome and the note together, before the grant is looked up
    if outcome not in REVIEW_OUTCOMES:
        problems.add("outcome", "invalid_choice", "justified or unjustified.")
    text = None
    with problems.collect("note"):
        text = clean_text(note, field="note", max_length=1000, min_length=1) if note is not None else None
    problems.check()
    found = await access.find_in_institution(ctx, RoleGrant, grant_id, action=Action.UPDATE,
                                             resource_type="role_grant")
    await QUEUE.refuse_a_party(ctx, found.id, (found.granted_by_id, found.staff_id),
                               "id: nobody reviews a role grant they made or received.")
    if found.reviewed_at is not None:
        raise QUEUE.reviewed_already()
    return RoleGrantView(await QUEUE.record_review(ctx, found, outcome, text, decision))
