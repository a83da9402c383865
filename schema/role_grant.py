"""The compliance officers' review queue of role grants that give patient data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import role_grant as role_grants
from resolvers.role_grant import RoleGrantView
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    asks_total,
    uuid_of,
)
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

    @strawberry.field(description="The grant's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="Who granted it; never null (an account is deactivated, never deleted).")
    async def granted_by(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.granted_by_id)

    @strawberry.field(description="Who received it; never null (an account is deactivated, never deleted).")
    async def staff(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.staff_id)

    @strawberry.field(description="The role granted.")
    def role(self) -> Role:
        return Role(self.view.row.role)

    @strawberry.field(description="When it was granted.")
    def granted_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field(description="When it was reviewed; null while it waits.")
    def reviewed_at(self) -> datetime | None:
        return self.view.row.reviewed_at

    @strawberry.field(description="The compliance officer who reviewed it; null until it is reviewed.")
    async def reviewed_by(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.view.row.reviewed_by_id)

    @strawberry.field(description="The review's finding; null while it waits.")
    def outcome(self) -> ReviewOutcome | None:
        return ReviewOutcome(self.view.row.review_outcome) if self.view.row.review_outcome else None

    @strawberry.field(description="The reviewer's note; null when none.")
    def review_note(self) -> str | None:
        return self.view.row.review_note


@strawberry.type(description="One role grant of a page, with its cursor.")
class RoleGrantEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: RoleGrant = strawberry.field(description="The role grant.")


@strawberry.type(description="A page of role grants, oldest first.")
class RoleGrantConnection:
    edges: list[RoleGrantEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[RoleGrant]:
        return [edge.node for edge in self.edges]


@strawberry.type
class RoleGrantQuery:
    @strawberry.field(description="The review queue of role grants that give patient data (compliance officers).")
    async def role_grants(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        unreviewed_only: Annotated[bool, strawberry.argument(
            description="Only grants still waiting for review; false: every one.")] = True,
    ) -> RoleGrantConnection:
        page = await role_grants.page(info.context, first=first, after=after, unreviewed_only=unreviewed_only,
                                      count=asks_total(info))
        return RoleGrantConnection(
            edges=[RoleGrantEdge(cursor=c, node=RoleGrant(view=v)) for c, v in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="How many role grants that give patient data wait for review (compliance "
                                  "officers).")
    async def role_grant_unreviewed_count(self, info: Info) -> int:
        return await role_grants.unreviewed(info.context)


@strawberry.type
class RoleGrantMutation:
    @strawberry.mutation(description="Record the review of a role grant (compliance officers; not one's own grant "
                                     "or a grant one made).")
    async def role_grant_review(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The role grant's id.")],
        outcome: Annotated[ReviewOutcome, strawberry.argument(description="The finding.")],
        note: Annotated[str | None, strawberry.argument(
            description="Why, at most 1000 characters; null: no note.")] = None,
    ) -> RoleGrant | None:
        return RoleGrant(view=await role_grants.review(info.context, uuid_of(id), str(outcome.value), note))
