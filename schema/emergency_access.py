"""Break-glass access and its review queue."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from resolvers import emergency_access as emergencies
from resolvers.emergency_access import EmergencyView
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, uuid_of
from schema.staff import StaffSummary


@strawberry.enum(description="A compliance officer's finding on an emergency access.")
class ReviewOutcome(Enum):
    JUSTIFIED = "justified"
    UNJUSTIFIED = "unjustified"


@strawberry.type(description="A clinician's break-glass access to a file outside their reach: time-boxed, "
                             "recorded as emergency access, reviewed by a compliance officer.")
class EmergencyAccess:
    view: strawberry.Private[EmergencyView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.patient_id))

    @strawberry.field(description="Who opened the file.")
    async def staff(self, info: Info) -> StaffSummary | None:
        row = await info.context.require_loaders().staff.load(self.view.row.staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="The stated reason (encrypted at rest; reading it is audited).")
    def reason(self, info: Info) -> str:
        return emergencies.reason(info.context, self.view)

    @strawberry.field
    def opened_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field
    def expires_at(self) -> datetime:
        return self.view.row.expires_at

    @strawberry.field(description="Whether the file is still open under it.")
    def active(self) -> bool:
        return self.view.active

    @strawberry.field
    def reviewed_at(self) -> datetime | None:
        return self.view.row.reviewed_at

    @strawberry.field
    def outcome(self) -> ReviewOutcome | None:
        return ReviewOutcome(self.view.row.review_outcome) if self.view.row.review_outcome else None

    @strawberry.field
    def review_note(self, info: Info) -> str | None:
        return emergencies.review_note(info.context, self.view)


@strawberry.type
class EmergencyAccessEdge:
    cursor: str
    node: EmergencyAccess


@strawberry.type(description="A page of emergency accesses, oldest first.")
class EmergencyAccessConnection:
    edges: list[EmergencyAccessEdge]
    page_info: PageInfo


@strawberry.type
class EmergencyAccessQuery:
    @strawberry.field(description="The review queue of break-glass accesses (compliance officers).")
    async def emergency_accesses(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                                 unreviewed_only: bool = True) -> EmergencyAccessConnection:
        page = await emergencies.page(info.context, first=first, after=after, unreviewed_only=unreviewed_only)
        return EmergencyAccessConnection(
            edges=[EmergencyAccessEdge(cursor=c, node=EmergencyAccess(view=v)) for c, v in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))

    @strawberry.field(description="How many break-glass accesses wait for review (compliance officers).")
    async def emergency_access_unreviewed_count(self, info: Info) -> int:
        return await emergencies.unreviewed(info.context)


@strawberry.type
class EmergencyAccessMutation:
    @strawberry.mutation(description="Break the glass: open a patient's file outside your reach for up to 4 hours, "
                                     "stating why (at least 10 characters). Recorded as emergency access and "
                                     "reviewed by a compliance officer.")
    async def break_glass(self, info: Info, patient_id: strawberry.ID, reason: str,
                          hours: int = emergencies.MAX_HOURS) -> EmergencyAccess | None:
        view = await emergencies.open_file(info.context, uuid_of(patient_id, "patientId"), reason, hours)
        return EmergencyAccess(view=view)

    @strawberry.mutation(description="Record the review of a break-glass access (compliance officers).")
    async def emergency_access_review(self, info: Info, id: strawberry.ID, outcome: ReviewOutcome,
                                      note: str | None = None) -> EmergencyAccess | None:
        view = await emergencies.review(info.context, uuid_of(id), outcome.value, note)
        return EmergencyAccess(view=view)
