"""The accounting of disclosures to partners (compliance officers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import disclosure as disclosures
from resolvers.disclosure import Disclosure as DisclosureView
from schema.audit_event import AuditFieldClass, field_classes_of
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
    PeriodFrom,
    PeriodTo,
    asks_total,
    optional_id,
    uuid_of,
)


@strawberry.type(description="One disclosure: what a partner was given of a patient's file, when and why.")
class Disclosure:
    occurred_at: datetime = strawberry.field(description="When the partner read the data.")
    partner_id: strawberry.ID | None = strawberry.field(description="The recipient partner; null if its client is "
                                                                    "gone.")
    partner_name: str = strawberry.field(description="The recipient.")
    client_id: strawberry.ID | None = strawberry.field(description="The partner's API client that read it; "
                                                                    "never null (a partner's read always names "
                                                                    "its client).")
    patient_id: strawberry.ID = strawberry.field(description="The patient whose data was disclosed.")
    field_classes: list[AuditFieldClass] = strawberry.field(description="Field classes disclosed, as the audit "
                                                                        "trail's events name them.")
    data_categories: list[str] = strawberry.field(
        description="Field classes disclosed, in the trail's stored spelling (identity, contact...).",
        deprecation_reason="Use fieldClasses: the same classes as the enum the audit trail's events use.")
    purpose: str = strawberry.field(description="The purpose of the grant it was made under.")
    grant_id: strawberry.ID | None = strawberry.field(description="The grant it was made under; null when the "
                                                                  "policy rule names none.")

    @classmethod
    def of(cls, d: DisclosureView) -> Disclosure:
        return cls(occurred_at=d.occurred_at, partner_id=optional_id(d.partner_id), partner_name=d.partner_name,
                   client_id=optional_id(d.client_id), patient_id=strawberry.ID(str(d.patient_id)),
                   field_classes=field_classes_of(d.data_categories), data_categories=d.data_categories,
                   purpose=d.purpose, grant_id=optional_id(d.grant_id))


@strawberry.type(description="One disclosure of a page, with its cursor.")
class DisclosureEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Disclosure = strawberry.field(description="The disclosure.")


@strawberry.type(description="A page of disclosures, newest first.")
class DisclosureConnection:
    edges: list[DisclosureEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Disclosure]:
        return [edge.node for edge in self.edges]


@strawberry.type
class DisclosureQuery:
    @strawberry.field(description="The accounting of disclosures to partners for a period of up to six years, "
                                  "optionally of one patient or one partner (compliance officers).")
    async def disclosures(
        self, info: Info, from_: PeriodFrom, to: PeriodTo,
        patient_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only disclosures of this patient's data; null: every patient.")] = None,
        partner_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only disclosures to this partner; null: every partner.")] = None,
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> DisclosureConnection:
        page = await disclosures.page(info.context, first=first, after=after, since=from_, until=to,
                                      patient_id=uuid_of(patient_id, "patientId"),
                                      partner_id=uuid_of(partner_id, "partnerId"), count=asks_total(info))
        return DisclosureConnection(edges=[DisclosureEdge(cursor=c, node=Disclosure.of(d)) for c, d in page.items],
                                    page_info=PageInfo.of(page), total_count=page.total)
