"""Sign-in attempts per client address and minute, counted before any password is checked.

A password is checked with argon2id, two at a time per process (core/passwords.py). Forty anonymous sign-ins sent
at once from one address held both slots, and every honest sign-in queued behind them for seconds (found in
review); the lockout could not help, since the attempts may name forty accounts or addresses nobody has. So the
sign-ins a request asks for are counted against its client's address (``RequestMeta.client_address``: the peer,
or behind a trusted proxy its X-Forwarded-For, app/main.py) before it runs (``schema.extensions.MutationGate``),
and an address over ``login_per_address_per_minute`` is refused whole: RATE_LIMITED, recorded once a minute.

The count is kept in the database, one statement per sign-in request, not in each process: every worker and node
shares it, so the limit holds for the fleet as the lockout and partners' budgets do, and the refusal is recorded
once a minute, not once per worker. A counter in memory would cost nothing, but would let an address through once
per worker and node and forget it at every restart; the statement is small next to the argon2 work it spares
(about 130 ms). The window is a calendar minute, as a partner's budget: up to twice the limit across its edge.

A link or code refused without a sign-in (a survey link, a patient's invitation code, a reset code) is written on
the trail too, an unknown one on the system chain: each such refusal counts against the address the same way
before it is written (``admit_link``; found in review: made-up tokens wrote a row each, fifteen a request with
aliases, without end). Each read of a survey link that holds is recorded too and the link opens again until it
expires: its reads count against the link itself (``admit_link_read``), not the address, so that patients sharing
one address are not held back; answering it, activating an account or resetting a password with a code that holds
does not count.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core.db import delete_in_batches, placeholders
from core.errors import RateLimited
from core.tokens import token_digest
from models import SignInWindow
from resolvers.context import Context, Services

# The mutations that check a password (``resolvers.session.check_credentials``), counted against the client's address
# before they run (``schema.extensions.MutationGate``): one added there is named here too, or the limit misses it.
SIGN_IN_FIELDS = frozenset({"login", "patientLogin", "totpEnrollForLogin"})
TOO_MANY = "Too many sign-in attempts from your address; try again in a minute."
TOO_MANY_LINKS = "Too many invalid links or codes from your address; try again in a minute."
TOO_MANY_READS = "This link was opened too often in the last minute; try again in a minute."
WINDOW = timedelta(minutes=1)
# A link that holds is opened a few times by its patient; each read is on the trail, so its reads are bounded
LINK_READS_PER_MINUTE = 10

# One statement: the address's minute, created or counted up, and its new count.
_COUNT = """INSERT INTO sign_in_window (address, window_start, attempts) VALUES ({0}, {1}, {2})
ON CONFLICT (address, window_start) DO UPDATE SET attempts = sign_in_window.attempts + excluded.attempts
RETURNING attempts"""


def address_key(services: Services, client_address: str) -> str:
    """Where an address's attempts are counted: a keyed hash of it, never the address (as the lockout keeps unknown
    e-mail addresses)."""
    return token_digest(services.master_key.token_key, f"client:{counted_address(client_address)}")


def counted_address(client_address: str) -> str:
    """The address a limit counts: an IPv6 address with its /64, which one subscriber holds whole; an IPv4 address
    mapped into IPv6 as itself."""
    try:
        ip = ipaddress.ip_address(client_address)
    except ValueError:
        return client_address  # not an IP address (none known): counted as it is
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


class TooManySignIns(RateLimited):
    """An address over its limit: RATE_LIMITED with the seconds left in its minute (``extensions.retryAfter``);
    ``recorded`` when this refusal is the minute's one on the trail."""

    def __init__(self, retry_after: int, *, recorded: bool, message: str = TOO_MANY) -> None:
        super().__init__(message)
        self.extensions = {**(self.extensions or {}), "retryAfter": retry_after}
        self.retry_after, self.recorded = retry_after, recorded


async def admit(ctx: Context, attempts: int, per_minute: int, *, action: Action = Action.LOGIN,
                resource_type: str = "session", message: str = TOO_MANY) -> None:
    """Count a request's ``attempts`` against its client's address; refused (``TooManySignIns``) when they take
    this minute's count over ``per_minute``."""
    try:
        await admit_request(ctx.services, ctx.request, attempts, per_minute, action=action,
                            resource_type=resource_type, message=message)
    except TooManySignIns as refused:
        ctx.recorded = ctx.recorded or refused.recorded
        raise


async def admit_link(ctx: Context, action: Action, resource_type: str) -> None:
    """Before a refused link or code (used without a sign-in) is written on the trail:
    counted as one sign-in of the address; over the limit refused instead (RATE_LIMITED, recorded once a minute as
    ``action`` on ``resource_type``), nothing written."""
    await admit(ctx, 1, ctx.services.settings.limits.login_per_address_per_minute, action=action,
                resource_type=resource_type, message=TOO_MANY_LINKS)


async def admit_request(services: Services, request: RequestMeta, attempts: int, per_minute: int, *,
                        action: Action = Action.LOGIN, resource_type: str = "session", message: str = TOO_MANY
                        ) -> None:
    """``admit`` for any request, a partner's ``/oauth/token`` too (each refusal of an unknown client is on the
    trail, so without a limit an anonymous flood wrote audit rows without end)."""
    await _admit_key(address_key(services, request.client_address), request, attempts, per_minute, action=action,
                     resource_type=resource_type, message=message)


async def admit_link_read(ctx: Context, link_id: uuid.UUID, resource_type: str) -> None:
    """Before a read of a link that holds is written on the trail: counted against the link, not the address (the
    patients of one carrier's NAT open their own links at once, after a campaign), ``LINK_READS_PER_MINUTE`` a
    minute; over it refused (RATE_LIMITED, recorded once a minute), nothing written."""
    key = token_digest(ctx.services.master_key.token_key, f"link:{link_id}")
    try:
        await _admit_key(key, ctx.request, 1, LINK_READS_PER_MINUTE, action=Action.READ, resource_type=resource_type,
                         message=TOO_MANY_READS)
    except TooManySignIns as refused:
        ctx.recorded = ctx.recorded or refused.recorded
        raise


async def _admit_key(key: str, request: RequestMeta, attempts: int, per_minute: int, *, action: Action,
                     resource_type: str, message: str) -> None:
    now = datetime.now(UTC)
    window = now.replace(second=0, microsecond=0)
    count = await _count(key, window, attempts)
    if count <= per_minute:
        return
    recorded = count - attempts <= per_minute  # the request that went over: recorded once a minute, however hard
    if recorded:
        await writer.append([AuditRecord(writer.SYSTEM_CHAIN, Actor("anonymous"), action, resource_type,
                                         Outcome.DENIED, request, reason="rate_limited")])
    raise TooManySignIns(max(1, math.ceil((window + WINDOW - now).total_seconds())), recorded=recorded,
                         message=message)


async def _count(address: str, window: datetime, attempts: int) -> int:
    db = connections.get("default")
    sql = _COUNT.format(*placeholders(db, 3))
    start = SignInWindow._meta.fields_map["window_start"].to_db_value(window, SignInWindow)
    values: list[Any] = [address, start, attempts]
    rows = await db.execute_query_dict(sql, values)  # a fetch: an INSERT's RETURNING rows come back
    return int(rows[0]["attempts"])


async def forget_past_windows(now: datetime | None = None) -> int:
    """Delete the counts of minutes gone by (a sweep); the last one is kept for a node whose clock lags a little."""
    cutoff = (now or datetime.now(UTC)).replace(second=0, microsecond=0) - WINDOW
    return await delete_in_batches(SignInWindow.filter(window_start__lt=cutoff))
