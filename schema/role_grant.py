"""The compliance officers' review queue of role grants that give patient data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from resolvers import role_grant as role_grants
from resolvers.role_grant import RoleGrantView
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, uuid_of
from schema.emergency_access import ReviewOutcome
from schema.staff import Role, StaffSummary

if TYPE_CHECKING:
    import uuid


async def _summary(info: Info, staff_id: uuid.UUID | None) -> StaffSummary | None:
    row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
    return None if row is None else StaffSummary.of(row)


@strawberry.type(description="A role that reads patient data, granted to a staff member: recorded as such and "
                             "reviewed by a compliance officer.")
class RoleGrant:
    view: strawberry.Private[RoleGrantView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="Who granted it.")
    async def granted_by(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.granted_by_id)

    @strawberry.field(description="Who received it.")
    async def staff(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.staff_id)

    @strawberry.field
    def role(self) -> Role:
        return Role(self.view.row.role)

    @strawberry.field
    def granted_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field
    def reviewed_at(self) -> datetime | None:
        return self.view.row.reviewed_at

    @strawberry.field(description="Who reviewed it.")
    async def reviewed_by(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.reviewed_by_id)

    @strawberry.field
    def outcome(self) -> ReviewOutcome | None:
        return ReviewOutcome(self.view.row.review_outcome) if self.view.row.review_outcome else None

    @strawberry.field
    def review_note(self) -> str | None:
        return self.view.row.review_note


@strawberry.type
class RoleGrantEdge:
    cursor: str
    node: RoleGrant


@strawberry.type(description="A page of role grants, oldest first.")
class RoleGrantConnection:
    edges: list[RoleGrantEdge]
    page_info: PageInfo


@strawberry.type
class RoleGrantQuery:
    @strawberry.field(description="The review queue of role grants that give patient data (compliance officers).")
    async def role_grants(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                          unreviewed_only: bool = True) -> RoleGrantConnection:
        page = await role_grants.page(info.context, first=first, after=after, unreviewed_only=unreviewed_only)
        return RoleGrantConnection(
            edges=[RoleGrantEdge(cursor=c, node=RoleGrant(view=v)) for c, v in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))

    @strawberry.field(description="How many role grants that give patient data wait for review (compliance "
                                  "officers).")
    async def role_grant_unreviewed_count(self, info: Info) -> int:
        return await role_grants.unreviewed(info.context)


@strawberry.type
class RoleGrantMutation:
    @strawberry.mutation(description="Record the review of a role grant (compliance officers; not one's own grant "
                                     "or a grant one made).")
    async def role_grant_review(self, info: Info, id: strawberry.ID, outcome: ReviewOutcome,
                                note: str | None = None) -> RoleGrant | None:
        return RoleGrant(view=await role_grants.review(info.context, uuid_of(id), outcome.value, note))
