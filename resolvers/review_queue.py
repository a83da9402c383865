"""A compliance officers' review queue: the rows of one table that wait for a review (``reviewed_at`` unset).

Break-glass accesses (``resolvers.emergency_access``) and role grants (``resolvers.role_grant``) each keep one;
both are read the same way, which lives here once. Each module keeps its own names and wraps the rows in its view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from audit.events import Action
from models.emergency_access import EmergencyAccess
from models.role_grant import RoleGrant
from resolvers import access, pagination
from resolvers.context import Context

Row = TypeVar("Row", EmergencyAccess, RoleGrant)


@dataclass(frozen=True)
class ReviewQueue(Generic[Row]):
    model: type[Row]
    resource: str  # the policy's object, also the audit records' resource type
    cursor_kind: str

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

    async def _authorize(self, ctx: Context) -> None:
        await access.authorize(ctx, self.resource, "read", action=Action.READ, resource_type=self.resource)
