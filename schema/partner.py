"""Care partners: organisations and their API clients (admins), and what a partner reads of its own
record (its access log and usage). Partners get access tokens at ``POST /oauth/token``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import partner as partners
from schema.audit_event import AuditEvent as AuditEventNode
from schema.audit_event import AuditEventConnection, AuditEventEdge
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
    OpenFrom,
    OpenTo,
    PageInfo,
    PeriodFrom,
    PeriodTo,
    Version,
    asks_total,
    uuid_of,
)

if TYPE_CHECKING:
    from models import Partner as PartnerRow
    from models import PartnerClient as PartnerClientRow

SCOPES_HELP = ("Scopes in the form `object:action`, any of the partner rules of the access policy, e.g. "
               "patient.identity:read, patient.contact:read, patient.clinical:read, patient.needs:read, contact:read, "
               "ticket:create, visit:create, appointment:create, questionnaire_response:create; another is "
               "BAD_USER_INPUT. Every token may also read its partner's own log (partner_log:read).")


@strawberry.type(description="An API client of a partner. Its secret is shown once, when it is created.")
class PartnerClient:
    id: strawberry.ID = strawberry.field(description="The client's id: its client_id at POST /oauth/token.")
    name: str = strawberry.field(description="What the partner calls this client (e.g. \"scheduling system\").")
    scopes: list[str] = strawberry.field(description="The most its tokens may carry. " + SCOPES_HELP)
    rate_limit_per_minute: int = strawberry.field(description="Requests per minute before RATE_LIMITED.")
    documents_only: bool = strawberry.field(description="Whether it may send only its registered documents.")
    created_at: datetime = strawberry.field(description="When it was created.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked; its tokens stopped then. "
                                                               "Null while it is not.")

    @classmethod
    def of(cls, row: PartnerClientRow) -> PartnerClient:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, scopes=partners.client_scopes(row),
                   rate_limit_per_minute=row.rate_limit_per_minute, documents_only=row.documents_only,
                   created_at=row.created_at, revoked_at=row.revoked_at)


@strawberry.type(description="A partner organisation (home-care company, lab, rehab centre).")
class Partner:
    id: strawberry.ID = strawberry.field(description="The partner's id.")
    name: str = strawberry.field(description="The organisation's name, unique in the institution.")
    active: bool = strawberry.field(description="Whether its clients may call (a suspended partner's tokens stop).")
    created_at: datetime = strawberry.field(description="When it was added.")
    version: int = strawberry.field(description="Pass back as `version` when you change it.")

    @classmethod
    def of(cls, row: PartnerRow) -> Partner:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, active=row.is_active, created_at=row.created_at,
                   version=row.version)

    @strawberry.field(description="Its API clients, revoked ones included: at most 20 (a partner gets "
                                  "no more). Admins only: for anyone else null with FORBIDDEN.")
    async def clients(self, info: Info) -> list[PartnerClient] | None:
        return [PartnerClient.of(c) for c in await partners.clients_of(info.context, uuid.UUID(self.id))]


async def load(info: Info, partner_id: strawberry.ID) -> Partner | None:
    """A partner by id, batched across the request (a grant's or a consent's partner)."""
    row = await info.context.require_loaders().partner.load(uuid.UUID(partner_id))
    return None if row is None else Partner.of(row)


@strawberry.type(description="One partner of a page, with its cursor.")
class PartnerEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Partner = strawberry.field(description="The partner.")


@strawberry.type(description="A page of partners, in the order they were added.")
class PartnerConnection:
    edges: list[PartnerEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Partner]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A new client and its secret: the secret is shown this once, never stored.")
class PartnerClientCreatePayload:
    client: PartnerClient = strawberry.field(description="The new client.")
    client_secret: str = strawberry.field(description="Exchange it with the client's id at POST /oauth/token.")


@strawberry.input(description="A new API client for a partner.")
class PartnerClientCreateInput:
    partner_id: strawberry.ID = strawberry.field(description="The partner it belongs to.")
    name: str = strawberry.field(description="What the partner calls it, 2-100 characters.")
    scopes: list[str] = strawberry.field(description=SCOPES_HELP)
    rate_limit_per_minute: int = strawberry.field(default=60, description="Requests per minute before RATE_LIMITED, "
                                                                          "1 to 10000.")
    trusted_documents: list[str] | None = strawberry.field(
        default=None, description="SHA-256 (hex) of the only operation documents it may send; null: any.")


@strawberry.type(description="A client's requests in a period.")
class PartnerClientUsage:
    client: PartnerClient = strawberry.field(description="The API client counted on this line (revoked ones too).")
    requests: int = strawberry.field(description="Requests it made in the period, throttled ones included.")
    throttled: int = strawberry.field(description="Requests refused with RATE_LIMITED.")
    last_request_at: datetime | None = strawberry.field(description="The minute of its last request in the "
                                                                    "period; null: none in the period.")


@strawberry.type
class PartnerQuery:
    @strawberry.field(description="The institution's partners (admins, compliance officers, and staff who grant "
                                  "access).")
    async def partners(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                       ) -> PartnerConnection:
        page = await partners.page(info.context, first=first, after=after, count=asks_total(info))
        return PartnerConnection(edges=[PartnerEdge(cursor=c, node=Partner.of(r)) for c, r in page.items],
                                 page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="A partner's own access log: its clients' requests, newest first (partners).")
    async def partner_access_log(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None, from_: OpenFrom = None,
        to: OpenTo = None,
    ) -> AuditEventConnection:
        page = await partners.access_log(info.context, first=first, after=after, since=from_, until=to,
                                         count=asks_total(info))
        return AuditEventConnection(
            edges=[AuditEventEdge(cursor=c, node=AuditEventNode.of(row)) for c, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="A partner's usage in a period, one line per client of the calling "
                                  "partner (at most 20, revoked clients included, with zeros where a client made no "
                                  "request). Partners only.")
    async def partner_usage(self, info: Info, from_: PeriodFrom, to: PeriodTo) -> list[PartnerClientUsage]:
        found = await partners.usage(info.context, from_, to)
        return [PartnerClientUsage(client=PartnerClient.of(u.client), requests=u.requests, throttled=u.throttled,
                                   last_request_at=u.last_request_at) for u in found]


@strawberry.type
class PartnerMutation:
    @strawberry.mutation(description="Add a partner organisation (admins).")
    async def partner_create(self, info: Info, name: Annotated[str, strawberry.argument(
            description="The organisation's name, 2-100 characters, unique in the institution.")]) -> Partner | None:
        return Partner.of(await partners.create(info.context, name))

    @strawberry.mutation(description="Suspend or resume a partner: its tokens stop or work again (admins). "
                                     "Pass the version you read: a stale one answers CONFLICT.")
    async def partner_set_active(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The partner's id.")],
        active: Annotated[bool, strawberry.argument(description="False: suspend; true: resume.")],
        version: Version = None,
    ) -> Partner | None:
        return Partner.of(await partners.set_active(info.context, uuid_of(id), active, version))

    @strawberry.mutation(description="Create an API client for a partner; its secret is in the answer, once "
                                     "(admins).")
    async def partner_client_create(
        self, info: Info, input: Annotated[PartnerClientCreateInput, strawberry.argument(description="The client.")],
    ) -> PartnerClientCreatePayload | None:
        created = await partners.create_client(
            info.context, uuid_of(input.partner_id, "partnerId"), name=input.name, scopes=input.scopes,
            rate_limit_per_minute=input.rate_limit_per_minute, documents=input.trusted_documents)
        return PartnerClientCreatePayload(client=PartnerClient.of(created.client), client_secret=created.secret)

    @strawberry.mutation(description="Revoke a client: it and its tokens stop on their next request (admins).")
    async def partner_client_revoke(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The client's id.")]) -> PartnerClient | None:
        return PartnerClient.of(await partners.revoke_client(info.context, uuid_of(id)))
