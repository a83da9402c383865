"""WebSockets per client address (app/websocket_limit.py), against the real app served by uvicorn: an address holds
at most so many sockets not yet signed in, and so many in all, per worker process; over either a socket is closed
at once with 1013 "Try Again Later" and counted, and the refusals are logged at most once a minute.

Found in review: a socket waits up to 10 s for its connection_init, and one address could open thousands of them
and hold a worker's sockets and memory."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin, Subprotocol

from app import metrics
from app.graphql import ORIGIN_REFUSALS
from app.logs import RefusalLines
from app.main import create_app
from app.websocket_limit import TOO_MANY, TOO_MANY_PENDING
from core.settings import Settings, load_settings
from resolvers import session
from resolvers.context import Services
from tests.app.conftest import serve
from tests.factories import Tenant, gql
from tests.partners import make_client, make_partner, token_for

PROTOCOL = Subprotocol("graphql-transport-ws")
PENDING, ALL = 3, 5
BAD_TOKEN = "cl_" + "A" * 43
PORTAL, ELSEWHERE = "https://portal.example.org", "https://elsewhere.example.org"

Server = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture(autouse=True)
def fresh_error_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """RATE_LIMITED keeps its label whatever codes earlier tests in this process counted (they are bounded)."""
    monkeypatch.setattr(metrics, "_codes", set())


@pytest.fixture
def limited(database: str, settings: Settings, services: Services) -> Server:
    """The app with small caps (PENDING waiting to sign in, ALL in all), served by uvicorn."""

    def server(**changes: Any) -> AbstractAsyncContextManager[str]:
        limits = dataclasses.replace(settings.limits, websockets_pending_per_address=PENDING,
                                     websockets_per_address=ALL)
        return serve(create_app(dataclasses.replace(settings, limits=limits, **changes), services,
                                manage_database=False))

    return server


@pytest_asyncio.fixture
async def url(limited: Server) -> AsyncIterator[str]:
    async with limited() as served:
        yield served


async def connect(url: str, *, token: str | None = None, forwarded_for: str | None = None,
                  origin: str | None = None) -> ClientConnection:
    """A socket, its token in the Authorization header when given (as a client outside a browser may send it), and
    the Origin a browser page would send when given."""
    headers = {**({"authorization": f"Bearer {token}"} if token else {}),
               **({"x-forwarded-for": forwarded_for} if forwarded_for else {})}
    return await websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers,
                                    origin=Origin(origin) if origin else None)


async def served(connection: ClientConnection) -> bool:
    """Whether the server holds the socket: it answers a ping (graphql-transport-ws allows one before
    connection_init, and it signs nothing in), or it closed the socket as over its address's cap."""
    try:
        await connection.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(5):
            return bool(json.loads(await connection.recv())["type"] == "pong")
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
        return False


async def refused_with(connection: ClientConnection) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(2):  # at once, not after the 10 s connection_init wait
            await connection.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def sign_in(connection: ClientConnection, token: str) -> None:
    await connection.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    async with asyncio.timeout(5):
        assert json.loads(await connection.recv())["type"] == "connection_ack"


async def close_all(connections: list[ClientConnection]) -> None:
    for connection in connections:
        await connection.close()


async def pending(url: str, count: int, **how: str) -> list[ClientConnection]:
    """``count`` sockets the server holds, not signed in; the slots of sockets closed just before may take the
    server a moment to free (an aborted socket's end is noticed when its connection drops)."""
    held: list[ClientConnection] = []
    async with asyncio.timeout(5):
        while len(held) < count:
            connection = await connect(url, **how)
            if await served(connection):
                held.append(connection)
            else:
                await asyncio.sleep(0.05)
    return held


def rate_limited() -> float:
    return metrics.REGISTRY.get_sample_value("careloop_graphql_errors_total", {"code": "RATE_LIMITED"}) or 0.0


async def test_over_the_cap_a_socket_waiting_to_sign_in_is_closed_at_once(
        tenant: Tenant, url: str, caplog: pytest.LogCaptureFixture) -> None:
    waiting = await pending(url, PENDING)
    before = rate_limited()
    caplog.set_level(logging.INFO, logger="careloop.graphql")

    for _ in range(3):
        over = await connect(url)
        assert await refused_with(over) == (1013, TOO_MANY_PENDING)
    assert rate_limited() == before + 3
    lines = [r.getMessage() for r in caplog.records if r.name == "careloop.graphql"]
    assert lines == [f"WebSocket refused: its address holds {PENDING} already (websockets_pending_per_address)"
                     ], lines  # one line, not three

    for connection in waiting:  # the sockets under the cap are served: they sign in and subscribe
        await sign_in(connection, tenant.tokens["support_agent"])
    await close_all(waiting)


async def test_a_socket_that_signs_in_frees_its_waiting_slot(tenant: Tenant, url: str) -> None:
    waiting = await pending(url, PENDING)
    assert not await served(await connect(url))
    await sign_in(waiting[0], tenant.tokens["support_agent"])
    assert await served(waiting[0])

    another = await connect(url)
    assert await served(another), "the socket that signed in still held a waiting slot"
    assert not await served(await connect(url)), "the new socket took the freed slot: the cap is full again"
    await sign_in(another, tenant.tokens["nurse"])
    await close_all([*waiting, another])


async def test_a_socket_signed_in_by_its_header_holds_no_waiting_slot(tenant: Tenant, url: str) -> None:
    """A token in the Authorization header (a client outside a browser may send one) signs the socket in as it
    opens; a bad one leaves it waiting like the others."""
    by_header = await connect(url, token=tenant.tokens["support_agent"])
    assert await served(by_header)
    waiting = await pending(url, PENDING)
    assert not await served(await connect(url))
    await waiting.pop().close()
    bad_header = (await pending(url, 1, token=BAD_TOKEN))[0]
    assert not await served(await connect(url))
    await close_all([*waiting, by_header, bad_header])


class Lookups:
    """The Authorization values whose tokens are looked up from now on (``session.authenticate``), in order; when
    ``held``, each lookup waits until ``go_on`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, held: bool = False) -> None:
        self.values: list[str | None] = []
        self.go_on, self.one_more = asyncio.Event(), asyncio.Event()
        if not held:
            self.go_on.set()
        check = session.authenticate

        async def watched(services: Services, authorization: str | None) -> Any:
            self.values.append(authorization)
            self.one_more.set()
            await self.go_on.wait()
            return await check(services, authorization)

        monkeypatch.setattr(session, "authenticate", watched)

    async def reach(self, count: int) -> None:
        """Until ``count`` lookups have begun."""
        async with asyncio.timeout(5):
            while len(self.values) < count:
                self.one_more.clear()
                await self.one_more.wait()


async def test_sockets_opened_at_once_with_a_good_header_token_are_all_served(
        tenant: Tenant, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket is counted as waiting only once its header's token has been checked (found in review: counted while
    the check ran, more than PENDING clients with good tokens opening at once from one address, a service behind one
    proxy, were closed with 1013: eleven at once under the default cap of ten, on SQLite and PostgreSQL). Each check
    is held here until the one socket too many has arrived (or, counted before its check, been refused)."""
    lookups = Lookups(monkeypatch, held=True)
    token = tenant.tokens["support_agent"]
    opening = [asyncio.create_task(connect(url, token=token)) for _ in range(PENDING)]
    await lookups.reach(PENDING)
    one_more = asyncio.create_task(connect(url, token=token))
    reached = asyncio.create_task(lookups.reach(PENDING + 1))
    await asyncio.wait([one_more, reached], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    lookups.go_on.set()
    connections = await asyncio.gather(*opening, one_more)
    assert [await served(connection) for connection in connections] == [True] * (PENDING + 1)
    assert await served(await connect(url)), "signed in, they hold no waiting slot"
    await close_all(connections)


USAGE = """query($from: DateTime!, $to: DateTime!) { partnerUsage(from: $from, to: $to) {
  client { id } requests } }"""


async def requests_counted(tenant: Tenant, token: str) -> int:
    """The partner client's requests counted this hour and the next, this question included (it is one)."""
    now = datetime.now(UTC)
    reply = await gql(tenant.client, USAGE, {"from": (now - timedelta(hours=1)).isoformat(),
                                              "to": (now + timedelta(hours=1)).isoformat()}, token)
    assert reply.errors == [], reply.errors
    return sum(int(row["requests"]) for row in reply.data["partnerUsage"])


async def signed_in_sockets(url: str, token: str, count: int) -> list[ClientConnection]:
    """``count`` sockets signed in by connection_init, each before the next opens (PENDING may be fewer)."""
    connections = []
    for _ in range(count):
        connections.append(await connect(url))
        await sign_in(connections[-1], token)
    return connections


async def test_over_the_cap_in_all_a_partner_socket_costs_no_lookup_and_none_of_its_budget(
        tenant: Tenant, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over its address's cap in all a socket is refused before the token in its header is looked up (found in
    review: it was looked up first, and a partner's lookup counts against its client's requests a minute, so a
    graphql-ws client retrying the 1013 with its backoff spent its partner's budget on refusals)."""
    partner_client = await make_client(tenant, await make_partner(tenant))
    token = await token_for(tenant.client, partner_client)
    held = await signed_in_sockets(url, tenant.tokens["support_agent"], ALL)
    before, refusals = await requests_counted(tenant, token), rate_limited()
    lookups = Lookups(monkeypatch)

    for _ in range(3):
        assert await refused_with(await connect(url, token=token)) == (1013, TOO_MANY)
    assert lookups.values == [], "a socket refused over the cap in all had its token looked up"
    assert rate_limited() == refusals + 3
    assert await requests_counted(tenant, token) == before + 1, "the refused sockets spent the partner's budget"
    await close_all(held)


async def test_sockets_opened_at_once_past_the_cap_in_all_are_refused_before_any_lookup(
        tenant: Tenant, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket takes its place in all before the token in its header is looked up, so that a burst opened at
    once past the cap (a client's retries, or many behind one proxy) costs no lookup either: of ALL + 2 sockets,
    with every lookup held until released, the two over the cap are refused while the others' still run."""
    lookups = Lookups(monkeypatch, held=True)
    token = tenant.tokens["support_agent"]
    opening = [asyncio.create_task(connect(url, token=token)) for _ in range(ALL + 2)]
    try:
        first_done = asyncio.as_completed(opening, timeout=5)  # the others wait for their lookups
        refused = [await next(first_done) for _ in range(2)]
        assert [await refused_with(connection) for connection in refused] == [(1013, TOO_MANY)] * 2
        assert len(lookups.values) == ALL, "the sockets over the cap had their tokens looked up"
    finally:
        lookups.go_on.set()
    connections = [connection for connection in await asyncio.gather(*opening) if connection not in refused]
    assert [await served(connection) for connection in connections] == [True] * ALL
    await close_all(connections)


async def refused_handshake(url: str, **how: str) -> int:
    """The HTTP status that refused the handshake."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(url, **how)
    return refused.value.response.status_code


async def test_a_disallowed_origin_is_refused_as_such_even_over_the_caps(tenant: Tenant, limited: Server) -> None:
    """The origin is checked before the caps (found in review: over a cap, a page on a disallowed origin was told to
    try again later, 1013, and counted as rate limited): it gets the handshake's 403 whatever its address holds,
    and only the refusals over a cap are counted."""
    token = tenant.tokens["support_agent"]
    async with limited(cors_origins=(PORTAL,)) as url:
        waiting = await pending(url, PENDING)
        before = rate_limited()
        assert await refused_handshake(url, origin=ELSEWHERE) == 403
        assert await refused_with(await connect(url, origin=PORTAL)) == (1013, TOO_MANY_PENDING)
        assert rate_limited() == before + 1

        for connection in waiting:
            await sign_in(connection, token)
        held = [*waiting, *await pending(url, ALL - PENDING, token=token)]
        assert await refused_handshake(url, origin=ELSEWHERE, token=token) == 403
        assert await refused_with(await connect(url, origin=PORTAL, token=token)) == (1013, TOO_MANY)
        assert rate_limited() == before + 2
        await close_all(held)


async def test_disallowed_origins_are_logged_at_most_once_a_minute(
        limited: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strawberry warned with each handshake's origin and host: a stranger making up origins wrote a line each
    (found in review). One line names the refusal and neither; the rest of the minute is counted."""
    monkeypatch.setattr(ORIGIN_REFUSALS, "lines", RefusalLines(ORIGIN_REFUSALS.lines.logger, "WebSocket"))  # its
    caplog.set_level(logging.INFO)  # minute starts here, whatever refusals earlier tests in this process logged
    async with limited(cors_origins=(PORTAL,)) as url:
        for attempt in range(3):
            assert await refused_handshake(url, origin=f"https://made-up-{attempt}.example.org") == 403
    lines = [r.getMessage() for r in caplog.records if r.name in ("careloop.graphql", "strawberry.ws")]
    assert lines == ["WebSocket refused: its origin is not allowed"], lines
    assert not any("made-up" in r.getMessage() for r in caplog.records)


async def test_an_address_holds_so_many_sockets_in_all(tenant: Tenant, url: str) -> None:
    signed_in = []
    for _ in range(ALL):
        connection = await connect(url)
        await sign_in(connection, tenant.tokens["support_agent"])
        signed_in.append(connection)
    over = await connect(url, token=tenant.tokens["support_agent"])
    assert await refused_with(over) == (1013, TOO_MANY)

    await signed_in.pop().close()
    again = (await pending(url, 1, token=tenant.tokens["support_agent"]))[0]  # the closed one's slot
    await close_all([*signed_in, again])


async def test_closed_sockets_free_their_slots(tenant: Tenant, url: str) -> None:
    """Opened and closed again and again, every way a socket ends (closed, dropped without a closing handshake,
    signed in, refused a bad token, refused over the cap): the address is still served after."""
    for round_ in range(12):
        waiting = await pending(url, PENDING)
        over = await connect(url)
        assert not await served(over)
        if round_ % 4 == 1:
            await sign_in(waiting[0], tenant.tokens["support_agent"])
        if round_ % 4 == 2:
            await waiting[0].send(json.dumps({"type": "connection_init",
                                              "payload": {"authorization": f"Bearer {BAD_TOKEN}"}}))
            assert (await refused_with(waiting[0]))[0] == 4403
        for connection in waiting:
            if round_ % 4 == 3:
                connection.transport.abort()
            else:
                await connection.close()
    last = await pending(url, PENDING)
    for connection in last:
        await sign_in(connection, tenant.tokens["nurse"])
    await close_all(last)


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap(tenant: Tenant, limited: Server) -> None:
    """The cap counts the client the proxy names, not the proxy (every socket would share one cap), and an IPv6
    client with its /64."""
    async with limited(trusted_proxies=("127.0.0.1",)) as url:
        first = await pending(url, PENDING, forwarded_for="198.51.100.7")
        assert not await served(await connect(url, forwarded_for="198.51.100.7"))
        second = await pending(url, PENDING, forwarded_for="198.51.100.8")

        same_64 = await pending(url, PENDING, forwarded_for="2001:db8:1:2::1")
        assert not await served(await connect(url, forwarded_for="2001:db8:1:2::ffff"))
        other_64 = await pending(url, 1, forwarded_for="2001:db8:1:3::1")
        await close_all([*first, *second, *same_64, *other_64])


async def test_without_a_trusted_proxy_a_forwarded_address_changes_nothing(tenant: Tenant, url: str) -> None:
    """Else a client could name a new address on each socket and never meet its cap."""
    waiting = await pending(url, PENDING, forwarded_for="198.51.100.7")
    assert not await served(await connect(url, forwarded_for="198.51.100.99"))
    await close_all(waiting)


def test_the_caps_are_settings() -> None:
    defaults = load_settings({}).limits
    assert (defaults.websockets_pending_per_address, defaults.websockets_per_address) == (10, 200)
    chosen = load_settings({"CARELOOP_LIMIT_WEBSOCKETS_PENDING_PER_ADDRESS": "4",
                            "CARELOOP_LIMIT_WEBSOCKETS_PER_ADDRESS": "0"}).limits
    assert (chosen.websockets_pending_per_address, chosen.websockets_per_address) == (4, 0)
