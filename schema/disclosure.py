"""The accounting of disclosures to partners (compliance officers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import disclosure as disclosures
from resolvers.disclosure import Disclosure as DisclosureView
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, uuid_of


def _id(value: object) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(description="One disclosure: what a partner was given of a patient's file, when and why.")
class Disclosure:
    occurred_at: datetime
    partner_id: strawberry.ID | None
    partner_name: str = strawberry.field(description="The recipient.")
    client_id: strawberry.ID | None
    patient_id: strawberry.ID
    data_categories: list[str] = strawberry.field(description="Field classes disclosed (identity, contact...).")
    purpose: str = strawberry.field(description="The purpose of the grant it was made under.")
    grant_id: strawberry.ID | None

    @classmethod
    def of(cls, d: DisclosureView) -> Disclosure:
        return cls(occurred_at=d.occurred_at, partner_id=_id(d.partner_id), partner_name=d.partner_name,
                   client_id=_id(d.client_id), patient_id=strawberry.ID(str(d.patient_id)),
                   data_categories=d.data_categories, purpose=d.purpose, grant_id=_id(d.grant_id))


@strawberry.type
class DisclosureEdge:
    cursor: str
    node: Disclosure


@strawberry.type(description="A page of disclosures, newest first.")
class DisclosureConnection:
    edges: list[DisclosureEdge]
    page_info: PageInfo


@strawberry.type
class DisclosureQuery:
    @strawberry.field(description="The accounting of disclosures to partners for a period of up to six years, "
                                  "optionally of one patient or one partner (compliance officers).")
    async def disclosures(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
        patient_id: strawberry.ID | None = None, partner_id: strawberry.ID | None = None,
        first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
    ) -> DisclosureConnection:
        page = await disclosures.page(info.context, first=first, after=after, since=from_, until=to,
                                      patient_id=uuid_of(patient_id, "patientId"),
                                      partner_id=uuid_of(partner_id, "partnerId"))
        return DisclosureConnection(edges=[DisclosureEdge(cursor=c, node=Disclosure.of(d)) for c, d in page.items],
                                    page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))
