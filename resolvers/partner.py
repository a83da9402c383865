"""Care partners: organisations and API clients (admins), access tokens (OAuth 2.0 client
credentials), rate limits, trusted documents, and what a partner may read of its own record.

A partner client's token carries scopes over our objects in a SMART-v2-like form
(``patient.clinical:read``); its rights are the policy's rules for partners intersected with
them (``Principal.scoped``), and its reach is the patients granted to the partner while their
consent stands (``policies.scopes``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.functions import Max, Sum
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core import statements
from core.db import placeholders
from core.errors import BadUserInput, Forbidden
from core.principal import PARTNER, Principal
from core.tokens import PARTNER_PREFIX, SECRET_PREFIX, looks_like_secret, new_token, token_digest
from core.validation import Problems, clean_text
from models import AuditEvent, Partner, PartnerClient, PartnerDocument, PartnerToken, PartnerUsage
from models.fields import tags_from_db, tags_to_db
from policies.guard import Guard
from resolvers import access, pagination, versioning
from resolvers.audit_event import EventRow, check_period, seq_of, within
from resolvers.context import Context, Services

TOKEN_LIFETIME = timedelta(hours=1)  # the longest a partner's access token lives
MAX_CLIENTS = 20  # per partner
MAX_DOCUMENTS = 200  # per client
MAX_RATE = 10_000  # requests per minute
CURSOR_KIND = "partner"
LOG_CURSOR_KIND = "partner-log"
OWN_LOG = "partner_log:read"  # every token may read its partner's own access log and usage
_SHA256 = re.compile(r"[0-9a-f]{64}")


def scope_vocabulary(guard: Guard) -> frozenset[str]:
    """What a partner token may carry: the policy's allow rules for partners, as ``object:action``."""
    return frozenset(f"{r.obj}:{r.act}" for r in guard.rules() if r.role == PARTNER and r.effect == "allow")


@dataclass(frozen=True)
class ClientCreated:
    client: PartnerClient
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int  # seconds
    scopes: list[str]


@dataclass(frozen=True)
class ClientUsage:
    client: PartnerClient
    requests: int
    throttled: int
    last_request_at: datetime | None


class TokenRefused(Exception):
    """An OAuth 2.0 token error (RFC 6749 §5.2): its code is the ``error`` a client sees."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


# -- organisations and clients (admins) -------------------------------------------------------


async def create(ctx: Context, name: str) -> Partner:
    decision = await access.authorize(ctx, "partner", "create", action=Action.CREATE, resource_type="partner")
    text = clean_text(name, field="name", max_length=100, min_length=2)
    taken = BadUserInput("name: a partner of that name exists.", field="name")
    if await Partner.exists(institution_id=ctx.institution_id, name=text):
        raise taken
    try:
        async with in_transaction():
            row = await Partner.create(institution_id=ctx.institution_id, name=text)
            await writer.append([access.write_record(ctx, Action.CREATE, "partner", row.id,
                                                     fields=frozenset({"name"}), decision=decision)])
    except IntegrityError:  # created concurrently under the same name
        raise taken from None
    return row


async def set_active(ctx: Context, partner_id: uuid.UUID | None, active: bool, version: int | None = None) -> Partner:
    """Suspending a partner stops every client and token of it on the next request. Over the version the caller
    read (stale: CONFLICT, nothing written)."""
    decision = await access.authorize(ctx, "partner", "update", action=Action.UPDATE, resource_type="partner",
                                      resource_id=partner_id)
    row = await _find(ctx, partner_id, Action.UPDATE)
    async with in_transaction():
        await versioning.update_versioned(row, version, "partner", is_active=active)
        await writer.append([access.write_record(ctx, Action.UPDATE, "partner", row.id,
                                                 fields=frozenset({"is_active"}), decision=decision)])
    return row


async def page(ctx: Context, *, first: int, after: str | None, count: bool = False) -> pagination.Page[Partner]:
    await access.authorize(ctx, "partner", "read", action=Action.READ, resource_type="partner")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Partner.filter(institution_id=ctx.institution_id)
    page = await pagination.by_id(query, first=first, after=after, kind=CURSOR_KIND, count=count)
    ctx.reads.note("partner", None, None, rule=ctx.decide("partner", "read").rule)
    return page


async def clients_of(ctx: Context, partner_id: uuid.UUID) -> list[PartnerClient]:
    """A partner's clients (at most MAX_CLIENTS), for those who manage partners; batched across a page.
    A refusal is a field's: noted once per request, like a field class read without the right."""
    decision = ctx.decide("partner", "update")
    if not decision.allowed:
        ctx.reads.note("partner_client", None, None, outcome=Outcome.DENIED, reason="forbidden_field")
        raise access.permission_refused(ctx, "partner", "update")
    ctx.reads.note("partner_client", None, None, rule=decision.rule)
    return await ctx.require_loaders().clients_by_partner.load(partner_id)


async def create_client(ctx: Context, partner_id: uuid.UUID | None, *, name: str, scopes: list[str],
                        rate_limit_per_minute: int, documents: list[str] | None) -> ClientCreated:
    decision = await access.authorize(ctx, "partner", "update", action=Action.CREATE, resource_type="partner_client",
                                      resource_id=partner_id)
    text, granted, hashes = _client_shape(ctx.services.guard, name, scopes, rate_limit_per_minute, documents)
    partner = await _find(ctx, partner_id, Action.CREATE, "partnerId")
    secret = new_token(SECRET_PREFIX)
    async with in_transaction():
        # The partner's row locked: concurrent creations count one after another.
        await Partner.filter(id=partner.id).select_for_update().first()
        if await PartnerClient.filter(partner_id=partner.id).count() >= MAX_CLIENTS:
            raise BadUserInput(f"partnerId: a partner has at most {MAX_CLIENTS} clients.", field="partnerId")
        client = await PartnerClient.create(
            institution_id=ctx.institution_id, partner_id=partner.id, name=text, scopes=tags_to_db(granted),
            secret_hash=token_digest(ctx.services.master_key.token_key, secret),
            rate_limit_per_minute=rate_limit_per_minute, documents_only=hashes is not None)
        await PartnerDocument.bulk_create([PartnerDocument(institution_id=ctx.institution_id, client_id=client.id,
                                                           sha256=h) for h in hashes or []])
        written = {"name", "scopes", "rate_limit_per_minute", "documents_only", "secret_hash"}
        await writer.append([access.write_record(ctx, Action.CREATE, "partner_client", client.id,
                                                 fields=frozenset(written), decision=decision)])
    return ClientCreated(client, secret)


async def revoke_client(ctx: Context, client_id: uuid.UUID | None) -> PartnerClient:
    """The client and every token it holds stop working on their next request."""
    decision = await access.authorize(ctx, "partner", "update", action=Action.UPDATE, resource_type="partner_client",
                                      resource_id=client_id)
    client = await access.find_in_institution(ctx, PartnerClient, client_id, action=Action.UPDATE,
                                              resource_type="partner_client")
    now = datetime.now(UTC)
    async with in_transaction():
        await PartnerClient.filter(id=client.id, revoked_at=None).update(revoked_at=now)
        await PartnerToken.filter(client_id=client.id, revoked_at=None).update(revoked_at=now)
        await writer.append([access.write_record(ctx, Action.UPDATE, "partner_client", client.id,
                                                 fields=frozenset({"revoked_at"}), decision=decision)])
    return await PartnerClient.get(id=client.id)


def client_scopes(client: PartnerClient) -> list[str]:
    return tags_from_db(client.scopes)


async def _find(ctx: Context, partner_id: uuid.UUID | None, action: Action, field: str = "id") -> Partner:
    return await access.find_in_institution(ctx, Partner, partner_id, action=action, resource_type="partner",
                                            field=field)


def _scopes(guard: Guard, requested: list[str], *, field: str) -> list[str]:
    vocabulary = scope_vocabulary(guard)
    unknown = sorted(set(requested) - vocabulary)
    if unknown or not requested:
        raise BadUserInput(f"{field}: each must be one of {', '.join(sorted(vocabulary))}.", field=field)
    return sorted(set(requested))


def _client_shape(guard: Guard, name: str, scopes: list[str], rate_limit_per_minute: int,
                  documents: list[str] | None) -> tuple[str, list[str], list[str] | None]:
    """A new client's name, scopes and trusted documents; every problem of its input at once."""
    problems = Problems()
    text, granted = "", list[str]()
    hashes: list[str] | None = None
    with problems.collect("name"):
        text = clean_text(name, field="name", max_length=100, min_length=2)
    with problems.collect("scopes"):
        granted = _scopes(guard, scopes, field="scopes")
    if not 1 <= rate_limit_per_minute <= MAX_RATE:
        problems.add("rateLimitPerMinute", "out_of_range", f"between 1 and {MAX_RATE}.")
    with problems.collect("trustedDocuments"):
        hashes = _document_hashes(documents)
    problems.check()
    return text, granted, hashes


def _document_hashes(documents: list[str] | None) -> list[str] | None:
    """The SHA-256 (hex) of each operation document a restricted client may send; None: any document."""
    if documents is None:
        return None
    if not documents or len(documents) > MAX_DOCUMENTS:
        raise BadUserInput(f"trustedDocuments: 1 to {MAX_DOCUMENTS} SHA-256 hashes.", field="trustedDocuments")
    hashes = sorted({d.strip().lower() for d in documents})
    if not all(_SHA256.fullmatch(h) for h in hashes):
        raise BadUserInput("trustedDocuments: each must be the hex SHA-256 of a document.", field="trustedDocuments")
    return hashes


# -- access tokens (OAuth 2.0 client credentials) ----------------------------------------------


async def issue_token(services: Services, request: RequestMeta, client_id: str, secret: str,
                      scope: str | None) -> IssuedToken:
    """Exchange a client's credentials for a token of at most an hour, with the scopes asked for
    (all the client's when none are). Every issue and refusal is on the record. The client's budget is spent
    once its secret is checked: a client id is no secret, and the budget is the one its API requests spend, so
    spent before, anyone knowing the id kept the partner out of the API (found in review). Guesses at the secret
    are bounded by their address's limit (``sign_in_limit``, counted by the route first)."""
    parsed = _uuid(client_id)
    client = None if parsed is None else await PartnerClient.filter(id=parsed).select_related("partner").first()
    digest = token_digest(services.master_key.token_key, secret)
    if client is None or not looks_like_secret(secret) or not hmac.compare_digest(client.secret_hash, digest):
        await _record_token(request, client, Outcome.DENIED, reason="bad_credentials")
        raise TokenRefused("invalid_client", "Unknown client or wrong secret.")
    stopped = _stopped(client)
    if stopped is not None:  # answered as an unknown client, on its institution's trail (see _stopped)
        await _record_token(request, client, Outcome.DENIED, reason=stopped)
        raise TokenRefused("invalid_client", "Unknown client or wrong secret.")
    used = await spend(client.institution_id, client.id, client.rate_limit_per_minute)
    if used > client.rate_limit_per_minute:
        if used == client.rate_limit_per_minute + 1:  # recorded once a minute, however hard it floods
            await _record_token(request, client, Outcome.DENIED, reason="rate_limited")
        raise TokenRefused("slow_down", "Too many requests; try again later.")
    allowed = {*client_scopes(client), OWN_LOG}
    wanted = set(scope.split()) if scope and scope.strip() else allowed
    if not wanted <= allowed or len(scope or "") > 2000:
        await _record_token(request, client, Outcome.DENIED, reason="invalid_scope")
        raise TokenRefused("invalid_scope", "A scope asked for is not granted to this client.")
    token = new_token(PARTNER_PREFIX)
    async with in_transaction():
        row = await PartnerToken.create(institution_id=client.institution_id, client_id=client.id,
                                        token_hash=token_digest(services.master_key.token_key, token),
                                        scopes=tags_to_db(sorted(wanted)),
                                        expires_at=datetime.now(UTC) + TOKEN_LIFETIME)
        await _record_token(request, client, Outcome.ALLOWED, token_id=row.id)
    return IssuedToken(token, int(TOKEN_LIFETIME.total_seconds()), sorted(wanted | {OWN_LOG}))


# Signing a partner in is one statement: the token in force (its client not revoked, its partner active) and this
# request counted in its client's minute, the counter created or incremented only when the token is good.
# A data-modifying CTE is PostgreSQL's; SQLite takes the CTE before the INSERT and the token's columns as
# subqueries in RETURNING, which PostgreSQL takes too: one text for both.
_SIGN_IN = """WITH token AS (
  SELECT t.id, t.client_id, t.institution_id, c.name, c.partner_id, t.scopes, c.documents_only,
         c.rate_limit_per_minute
  FROM partner_token t JOIN partner_client c ON c.id = t.client_id JOIN partner p ON p.id = c.partner_id
  WHERE t.token_hash = {0} AND t.revoked_at IS NULL AND t.expires_at > {1} AND c.revoked_at IS NULL AND p.is_active)
INSERT INTO partner_usage (institution_id, client_id, window_start, requests, throttled)
SELECT institution_id, client_id, {2}, 1, 0 FROM token WHERE true
ON CONFLICT (client_id, window_start) DO UPDATE SET requests = partner_usage.requests + 1,
  throttled = partner_usage.throttled
              + CASE WHEN partner_usage.requests >= (SELECT rate_limit_per_minute FROM token) THEN 1 ELSE 0 END
RETURNING requests, client_id, institution_id, (SELECT id FROM token) AS token_id, (SELECT name FROM token) AS name,
  (SELECT partner_id FROM token) AS partner_id, (SELECT scopes FROM token) AS scopes,
  (SELECT documents_only FROM token) AS documents_only, (SELECT rate_limit_per_minute FROM token) AS per_minute"""


async def principal(digest: str) -> tuple[Principal, int] | None:
    """The partner client behind an access token that is in force, and this request's number in its client's
    minute (the request is counted against the budget by the same statement)."""
    now = datetime.now(UTC)
    db = connections.get("default")
    sql = _SIGN_IN.format(*placeholders(db, 3))
    values = [digest, PartnerToken._meta.fields_map["expires_at"].to_db_value(now, PartnerToken),
              PartnerUsage._meta.fields_map["window_start"].to_db_value(now.replace(second=0, microsecond=0),
                                                                         PartnerUsage)]
    rows = await db.execute_query_dict(sql, values)
    if not rows:
        return None
    row = rows[0]
    return Principal(institution_id=_as_uuid(row["institution_id"]), user_id=_as_uuid(row["client_id"]),
                     token_id=_as_uuid(row["token_id"]), email="", name=row["name"], roles=frozenset({PARTNER}),
                     department_ids=frozenset(), kind=PARTNER,
                     scopes=frozenset([*tags_from_db(row["scopes"]), OWN_LOG]),
                     partner_id=_as_uuid(row["partner_id"]), documents_only=bool(row["documents_only"]),
                     requests_per_minute=int(row["per_minute"])), int(row["requests"])


def _as_uuid(value: object) -> uuid.UUID:
    """A UUID column as read by the driver: asyncpg gives UUIDs, SQLite their text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# One statement per request: the minute's counter, created or incremented, and its new value.
_COUNT = """INSERT INTO partner_usage (institution_id, client_id, window_start, requests, throttled)
VALUES ({0}, {1}, {2}, 1, 0)
ON CONFLICT (client_id, window_start) DO UPDATE SET requests = partner_usage.requests + 1,
  throttled = partner_usage.throttled + CASE WHEN partner_usage.requests >= {3} THEN 1 ELSE 0 END
RETURNING requests"""


async def spend(institution_id: uuid.UUID, client_id: uuid.UUID, limit: int) -> int:
    """A request's number in its client's minute: a fixed window, counted in the database so that every
    worker shares it (over ``limit``, it is also counted as throttled)."""
    window = datetime.now(UTC).replace(second=0, microsecond=0)
    db = connections.get("default")
    sql = _COUNT.format(*placeholders(db, 4))
    fields_map = PartnerUsage._meta.fields_map
    values: list[Any] = [fields_map[name].to_db_value(value, PartnerUsage) for name, value in
                         (("institution_id", institution_id), ("client_id", client_id), ("window_start", window))]
    rows = await db.execute_query_dict(sql, [*values, limit])  # a fetch: an INSERT's RETURNING rows come back
    return int(rows[0]["requests"])


def _stopped(client: PartnerClient) -> str | None:
    """Why a client whose secret was right gets no token: ``client_revoked`` or ``partner_suspended``; None when it
    may have one. Its institution's trail names the client (found in review: a revoked client or a suspended
    partner was looked up as no client at all, so its attempts went on the system chain as anonymous, and the
    institution never saw that the secret it had revoked, perhaps because it leaked, was still in use)."""
    if client.revoked_at is not None:
        return "client_revoked"
    return None if client.partner.is_active else "partner_suspended"


async def _record_token(request: RequestMeta, client: PartnerClient | None, outcome: Outcome, *, reason: str = "",
                        token_id: uuid.UUID | None = None) -> None:
    institution_id = client.institution_id if client is not None else writer.SYSTEM_CHAIN
    actor = Actor(PARTNER, client.id, token_id) if client is not None else Actor("anonymous")
    await writer.append([AuditRecord(institution_id, actor, Action.TOKEN, "partner_token", outcome, request,
                                     resource_id=token_id, reason=reason)])


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if len(value) <= 64 else None
    except ValueError:
        return None


# -- trusted documents ------------------------------------------------------------------------


async def check_document(ctx: Context, document: str) -> None:
    """A client restricted to registered documents may send nothing else: refused and recorded."""
    principal = ctx.principal
    if principal is None or not principal.documents_only:
        return
    digest = hashlib.sha256(document.encode()).hexdigest()
    if not await PartnerDocument.exists(client_id=principal.user_id, sha256=digest):
        await access.deny(ctx, Action.READ, "document", reason="untrusted_document")
        raise Forbidden("This client may send only its registered operation documents.")


async def check_file_route(ctx: Context) -> None:
    """The file routes carry no operation document: a client restricted to registered documents is refused
    there, recorded as any document it may not send (found in review: it downloaded contract documents)."""
    principal = ctx.principal
    if principal is not None and principal.documents_only:
        await access.deny(ctx, Action.READ, "document", reason="untrusted_document")
        raise Forbidden("This client may send only its registered operation documents.")


# -- what a partner reads of its own record ---------------------------------------------------


async def access_log(ctx: Context, *, first: int, after: str | None, since: datetime | None,
                     until: datetime | None, count: bool = False) -> pagination.Page[EventRow]:
    """The partner's own events (every client's), newest first: nothing else of the audit trail."""
    decision = await access.authorize(ctx, "partner_log", "read", action=Action.READ, resource_type="audit_event")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    clients = await _own_clients(ctx)
    await writer.seal(ctx.institution_id)
    query = AuditEvent.filter(institution_id=ctx.institution_id, actor_kind=PARTNER, actor_id__in=clients)
    query = within(query, since, until)
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(seq__lt=pagination.decode_int(LOG_CURSOR_KIND, after))
    rows = await statements.rows_of(query.order_by("-seq").limit(first + 1))
    ctx.reads.note("audit_event", None, None, rule=decision.rule)
    return pagination.page_of(rows[:first], len(rows) > first, LOG_CURSOR_KIND, key=seq_of, total=total)


async def usage(ctx: Context, since: datetime, until: datetime) -> list[ClientUsage]:
    """Requests per client of the partner in a period (counted per minute, as the rate limit counts)."""
    await access.authorize(ctx, "partner_log", "read", action=Action.READ, resource_type="partner_usage")
    check_period(since, until)
    clients = await PartnerClient.filter(institution_id=ctx.institution_id,
                                         partner_id=ctx.require_principal().partner_id).order_by("id")
    rows = await within(PartnerUsage.filter(client_id__in=[c.id for c in clients]), since, until,
                        column="window_start").annotate(
        requests_=Sum("requests"), throttled_=Sum("throttled"), last=Max("window_start")).group_by(
        "client_id").values("client_id", "requests_", "throttled_", "last")
    by_client: dict[Any, dict[str, Any]] = defaultdict(dict, {str(r["client_id"]): r for r in rows})
    return [ClientUsage(c, int(by_client[str(c.id)].get("requests_") or 0),
                        int(by_client[str(c.id)].get("throttled_") or 0), by_client[str(c.id)].get("last"))
            for c in clients]


async def _own_clients(ctx: Context) -> list[uuid.UUID]:
    partner_id = ctx.require_principal().partner_id
    return cast(list[uuid.UUID], await PartnerClient.filter(institution_id=ctx.institution_id,
                                                            partner_id=partner_id).values_list("id", flat=True))
