"""Grants: a partner's access to one patient's file, for a purpose, until a time (staff)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import partner_grant as grants
from schema import partner as partners
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
from schema.partner import Partner

if TYPE_CHECKING:
    from models import PartnerGrant as PartnerGrantRow
    from resolvers.pagination import Page


@strawberry.type(description="A partner's access to one patient, for a stated purpose, until a time. It stands "
                             "only while the patient's consent to share with the partner stands.")
class PartnerGrant:
    id: strawberry.ID = strawberry.field(description="The grant's id.")
    partner_id: strawberry.ID = strawberry.field(description="The partner granted access.")
    patient_id: strawberry.ID = strawberry.field(description="The patient whose file it opens.")
    purpose: str = strawberry.field(description="Why the partner needs the file, as stated when granted.")
    expires_at: datetime = strawberry.field(description="When the access ends.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked; null while it is not.")
    created_at: datetime = strawberry.field(description="When it was granted.")
    standing: bool = strawberry.field(description="Neither revoked nor expired.")

    @classmethod
    def of(cls, row: PartnerGrantRow) -> PartnerGrant:
        return cls(id=strawberry.ID(str(row.id)), partner_id=strawberry.ID(str(row.partner_id)),
                   patient_id=strawberry.ID(str(row.patient_id)), purpose=row.purpose, expires_at=row.expires_at,
                   revoked_at=row.revoked_at, created_at=row.created_at, standing=grants.standing(row))

    @strawberry.field(description="The partner granted access; never null (a partner is suspended, never "
                                  "deleted).")
    async def partner(self, info: Info) -> Partner | None:
        return await partners.load(info, self.partner_id)


@strawberry.type(description="One grant of a page, with its cursor.")
class PartnerGrantEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: PartnerGrant = strawberry.field(description="The grant.")


@strawberry.type(description="A page of grants (a patient's, or your partner's own), oldest first.")
class PartnerGrantConnection:
    edges: list[PartnerGrantEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[PartnerGrant]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: Page[PartnerGrantRow]) -> PartnerGrantConnection:
        return cls(edges=[PartnerGrantEdge(cursor=c, node=PartnerGrant.of(r)) for c, r in page.items],
                   page_info=PageInfo.of(page), total_count=page.total)


@strawberry.input(description="Let a partner reach a patient's file: the patient must have consented.")
class PartnerGrantCreateInput:
    partner_id: strawberry.ID = strawberry.field(description="The partner (active).")
    patient_id: strawberry.ID = strawberry.field(description="The patient, in your reach.")
    purpose: str = strawberry.field(description="Why the partner needs the file (3 to 200 characters).")
    expires_at: datetime = strawberry.field(description="When the access ends: in the future, within a year.")


@strawberry.type
class PartnerGrantQuery:
    @strawberry.field(description="A patient's grants to partners, standing or not.")
    async def partner_grants(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> PartnerGrantConnection:
        page = await grants.page(info.context, uuid_of(patient_id, "patientId"), first=first, after=after,
                                 count=asks_total(info))
        return PartnerGrantConnection.of(page)

    @strawberry.field(description="Your partner's own grants (every client of it sees them), oldest first: which "
                                  "patients, for what purpose, until when, standing or not (care partners, scope "
                                  "partner_own_grant:read). Each read is on the trail of the file the grant opens.")
    async def partner_own_grants(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        standing_only: Annotated[bool, strawberry.argument(
            description="Only the grants standing now (neither revoked nor expired); false: every one.")] = False,
    ) -> PartnerGrantConnection | None:
        page = await grants.own_page(info.context, first=first, after=after, standing_only=standing_only,
                                     count=asks_total(info))
        return PartnerGrantConnection.of(page)


@strawberry.type
class PartnerGrantMutation:
    @strawberry.mutation(description="Grant a partner access to a patient you reach. CONSENT_REQUIRED unless the "
                                     "patient consented to share with that partner.")
    async def partner_grant_create(self, info: Info, input: Annotated[PartnerGrantCreateInput, strawberry.argument(
            description="The grant.")]) -> PartnerGrant | None:
        row = await grants.create(info.context, uuid_of(input.partner_id, "partnerId"),
                                  uuid_of(input.patient_id, "patientId"), input.purpose, input.expires_at)
        return PartnerGrant.of(row)

    @strawberry.mutation(description="Revoke a grant: the partner loses the file on its next request. A grant revoked "
                                     "already answers CONFLICT (reason ILLEGAL_TRANSITION).")
    async def partner_grant_revoke(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The grant's id.")]) -> PartnerGrant | None:
        return PartnerGrant.of(await grants.revoke(info.context, uuid_of(id)))
