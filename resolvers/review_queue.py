"""A compliance officers' review queue: the rows of one table that wait for a review (``reviewed_at`` unset).

Break-glass accesses (``resolvers.emergency_access``) and role grants (``resolvers.role_grant``) each keep one;
both are read, and a review recorded, the same way, which lives here once, as does the rule that nobody reviews what
they took part in (separation of duties). Each module keeps its own names, its checks before a review (the note's
shape, who took part) and wraps the rows in its view.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import SELF_REVIEW, Action
from core.errors import BadUserInput, Forbidden
from models.emergency_access import EmergencyAccess
from models.role_grant import RoleGrant
from policies.guard import Decision
from resolvers import access, pagination
from resolvers.context import Context
from resolvers.writes import MovedOffFile

Row = TypeVar("Row", EmergencyAccess, RoleGrant)


@dataclass(frozen=True)
class ReviewQueue(Generic[Row]):
    model: type[Row]
    resource: str  # the policy's object, also the audit records' resource type
    cursor_kind: str
    noun: str  # what a reviewer reviews, in messages: "access", "grant"

    async def page(self, ctx: Context, *, first: int, after: str | None, unreviewed_only: bool,
                   count: bool) -> pagination.Page[Row]:
        """The queue, oldest first; ``unreviewed_only`` leaves out the rows reviewed already."""
        await self._authorize(ctx)
        first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
        query = self.model.filter(institution_id=ctx.institution_id)
        if unreviewed_only:
            query = query.filter(reviewed_at__isnull=True)
        return await pagination.by_id(query, first=first, after=after, kind=self.cursor_kind, count=count)

    async def unreviewed(self, ctx: Context) -> int:
        """How many rows wait for a review."""
        await self._authorize(ctx)
        return await self.model.filter(institution_id=ctx.institution_id, reviewed_at__isnull=True).count()

    async def refuse_a_party(self, ctx: Context, row_id: uuid.UUID, parties: Collection[uuid.UUID | None],
                             message: str, *, patient_id: uuid.UUID | None = None) -> None:
        """Separation of duties: nobody reviews what they took part in (``parties``: who made or used the row).
        FORBIDDEN, reason ``self_review``, the refusal recorded; ``patient_id``: the file it is about."""
        if ctx.actor.id in parties:
            await access.deny(ctx, Action.UPDATE, self.resource, row_id, patient_id, reason=SELF_REVIEW)
            raise Forbidden(message, field="id", reason=SELF_REVIEW)

    def reviewed_already(self) -> BadUserInput:
        return BadUserInput(f"id: this {self.noun} was reviewed already.", field="id")

    async def record_review(self, ctx: Context, row: Row, outcome: str, note: str | bytes | None,
                            decision: Decision, *, patient_id: uuid.UUID | None = None,
                            consequence: Callable[[], Awaitable[frozenset[str]]] | None = None) -> Row:
        """Record the caller's review of a row they found unreviewed (``note`` as stored: sealed where the table
        seals it), with its audit record, in one transaction; a review recorded since the row was read wins and
        this one is BAD_USER_INPUT. ``consequence``: what the review changes besides, in the same transaction,
        answering the fields it wrote (recorded with the review's). ``patient_id``: the file the row was read on,
        which the record names; the review is written only while the row is on it (a merge moves a break-glass
        access to the survivor: ``writes.MovedOffFile``, for the caller to find it again; found in review: the review
        was recorded on the merged file, as ``writes.write_over_version(on_file=)`` keeps a contact's update from it).
        The row as reviewed."""
        async with in_transaction():
            changes = {"reviewed_at": datetime.now(UTC), "reviewed_by_id": ctx.actor.id, "review_outcome": outcome,
                       "review_note": note}
            on_file = {} if patient_id is None else {"patient_id": patient_id}
            updated = await self.model.filter(Q(reviewed_at__isnull=True), id=row.id, **on_file).update(**changes)
            if not updated:
                if on_file and not await self.model.filter(id=row.id, **on_file).exists():
                    raise MovedOffFile()
                raise self.reviewed_already()
            written = frozenset(changes) | (await consequence() if consequence is not None else frozenset())
            await writer.append([access.write_record(ctx, Action.UPDATE, self.resource, row.id, patient_id=patient_id,
                                                     fields=written, decision=decision)])
        return await self.model.get(id=row.id)

    async def _authorize(self, ctx: Context) -> None:
        await access.authorize(ctx, self.resource, "read", action=Action.READ, resource_type=self.resource)
