"""Break-glass access and its review queue."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import emergency_access as emergencies
from resolvers.emergency_access import EmergencyView
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
from schema.staff import StaffSummary


@strawberry.enum(description="A compliance officer's finding on an emergency access.")
class ReviewOutcome(Enum):
    JUSTIFIED = strawberry.enum_value("justified", description="The access was warranted.")
    UNJUSTIFIED = strawberry.enum_value("unjustified", description="The access was not warranted: a matter for "
                                                                   "follow-up with the person.")


@strawberry.type(description="A clinician's break-glass access to a file outside their reach: time-boxed, "
                             "recorded as emergency access, reviewed by a compliance officer.")
class EmergencyAccess:
    view: strawberry.Private[EmergencyView]

    @strawberry.field(description="The emergency access's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient whose file was opened.")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.patient_id))

    @strawberry.field(description="Who opened the file; never null (an account is deactivated, never deleted).")
    async def staff(self, info: Info) -> StaffSummary | None:
        row = await info.context.require_loaders().staff.load(self.view.row.staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="The stated reason (encrypted at rest; reading it is audited).")
    def reason(self, info: Info) -> str:
        return emergencies.reason(info.context, self.view)

    @strawberry.field(description="When the glass was broken.")
    def opened_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field(description="When the access ends (1 to 4 hours after it opened; at once when the account "
                                  "is deactivated or loses its last role that may break the glass).")
    def expires_at(self) -> datetime:
        return self.view.row.expires_at

    @strawberry.field(description="Whether the file is still open under it.")
    def active(self) -> bool:
        return self.view.active

    @strawberry.field(description="When a compliance officer reviewed it; null while it waits.")
    def reviewed_at(self) -> datetime | None:
        return self.view.row.reviewed_at

    @strawberry.field(description="The review's finding; null while it waits.")
    def outcome(self) -> ReviewOutcome | None:
        return ReviewOutcome(self.view.row.review_outcome) if self.view.row.review_outcome else None

    @strawberry.field(description="The reviewer's note (encrypted at rest; reading it is audited); null when none.")
    def review_note(self, info: Info) -> str | None:
        return emergencies.review_note(info.context, self.view)


@strawberry.type(description="One emergency access of a page, with its cursor.")
class EmergencyAccessEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: EmergencyAccess = strawberry.field(description="The emergency access.")


@strawberry.type(description="A page of emergency accesses, oldest first.")
class EmergencyAccessConnection:
    edges: list[EmergencyAccessEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[EmergencyAccess]:
        return [edge.node for edge in self.edges]


@strawberry.type
class EmergencyAccessQuery:
    @strawberry.field(description="The review queue of break-glass accesses (compliance officers).")
    async def emergency_accesses(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        unreviewed_only: Annotated[bool, strawberry.argument(
            description="Only those still waiting for review; false: every one.")] = True,
    ) -> EmergencyAccessConnection:
        page = await emergencies.page(info.context, first=first, after=after, unreviewed_only=unreviewed_only,
                                      count=asks_total(info))
        return EmergencyAccessConnection(
            edges=[EmergencyAccessEdge(cursor=c, node=EmergencyAccess(view=v)) for c, v in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="How many break-glass accesses wait for review (compliance officers).")
    async def emergency_access_unreviewed_count(self, info: Info) -> int:
        return await emergencies.unreviewed(info.context)


@strawberry.type
class EmergencyAccessMutation:
    @strawberry.mutation(description="Break the glass: open a patient's file outside your reach for up to 4 hours, "
                                     "stating why (at least 10 characters). Recorded as emergency access and "
                                     "reviewed by a compliance officer.")
    async def break_glass(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient whose file to open.")],
        reason: Annotated[str, strawberry.argument(description="Why, 10-500 characters; encrypted, read by the "
                                                               "reviewer.")],
        hours: Annotated[int, strawberry.argument(description="How long the file stays open, 1 to 4 hours.")]
        = emergencies.MAX_HOURS,
    ) -> EmergencyAccess | None:
        view = await emergencies.open_file(info.context, uuid_of(patient_id, "patientId"), reason, hours)
        return EmergencyAccess(view=view)

    @strawberry.mutation(description="Record the review of a break-glass access (compliance officers). An access "
                                     "found UNJUSTIFIED while still open ends with the finding (its expiresAt "
                                     "becomes the review's time).")
    async def emergency_access_review(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The emergency access's id.")],
        outcome: Annotated[ReviewOutcome, strawberry.argument(description="The finding.")],
        note: Annotated[str | None, strawberry.argument(
            description="Why, at most 1000 characters, kept encrypted; null: no note.")] = None,
    ) -> EmergencyAccess | None:
        view = await emergencies.review(info.context, uuid_of(id), str(outcome.value), note)
        return EmergencyAccess(view=view)
