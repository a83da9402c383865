"""Issue 11: the work of a document is bounded before it runs, every request has a time budget, and
neither an abusive request nor a stuck database stops other clients from being served."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import get_introspection_query
from tortoise import connections
from tortoise.transactions import in_transaction

from app.main import create_app
from core.settings import Settings
from models import Patient
from resolvers.context import Services
from tests.factories import Tenant, gql

BUDGET_MS = 400
ME = "{ me { id } }"


def doubling_fragments(count: int) -> str:
    """``fragment F{i} { ...F{i-1} ...F{i-1} }``: 2**count fields from about 40 bytes a fragment."""
    chain = " ".join(f"fragment F{i} on Me {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, count + 1))
    return f"query {{ me {{ ...F{count} }} }} fragment F0 on Me {{ id }} {chain}"


def messages(reply: Any) -> list[str]:
    return [e["message"] for e in reply.errors]


# -- the work of a document ----------------------------------------------------------------------


async def test_a_fragment_bomb_is_refused_at_once_while_others_are_served(client: httpx.AsyncClient,
                                                                          tenant: Tenant) -> None:
    bomb = doubling_fragments(29)  # 2**29 fields; about 1,300 bytes; minutes of work before the fix
    assert len(bomb) < 1400
    others = [gql(client, ME, token=tenant.tokens["nurse"]) for _ in range(10)]
    started = time.monotonic()
    async with asyncio.timeout(20):
        refused, *served = await asyncio.gather(gql(client, bomb), *others, client.get("/healthz"))
    assert refused.data is None and refused.codes == ["BAD_USER_INPUT"]
    assert messages(refused) == [f"'anonymous' selects {2 ** 29 + 1} fields with its fragments expanded. "
                                 "Allowed: 500"]
    assert all(reply.data["me"]["id"] for reply in served[:-1])
    assert served[-1].status_code == 200
    assert time.monotonic() - started < 10  # not a timing test: before the fix this never finished


async def test_depth_counts_fragments_as_expanded(client: httpx.AsyncClient) -> None:
    """Each fragment adds a level and spreads the next twice: depth 11 through 11 small fragments."""
    chain = " ".join(f"fragment F{i} on Me {{ a {{ ...F{i + 1} ...F{i + 1} }} }}" for i in range(10))
    reply = await gql(client, f"{{ me {{ ...F0 }} }} {chain} fragment F10 on Me {{ id }}")
    assert "'anonymous' exceeds maximum operation depth of 10" in messages(reply)


async def test_aliases_count_every_time_their_fragment_is_spread(client: httpx.AsyncClient) -> None:
    four = "fragment Four on Me { a1: id a2: id a3: id a4: id }"
    reply = await gql(client, f"{{ me {{ ...Four ... on Me {{ ...Four }} ...Four ...Four }} }} {four}")
    assert messages(reply) == ["16 aliases found. Allowed: 15"]
    reply = await gql(client, f"{{ me {{ ...Four ... on Me {{ ...Four }} ...Four }} x: me {{ id }} y: me {{ id }} "
                              f"z: me {{ id }} }} {four}")
    assert reply.errors == []


@pytest.mark.parametrize(("spreads", "refused"), [(499, False), (500, True)])
async def test_the_field_limit_counts_spreads(client: httpx.AsyncClient, tenant: Tenant, spreads: int,
                                              refused: bool) -> None:
    query = "{ me { " + "...F " * spreads + "} } fragment F on Me { id }"  # me + one id per spread
    reply = await gql(client, query, token=tenant.tokens["nurse"])
    if refused:
        assert messages(reply) == ["'anonymous' selects 501 fields with its fragments expanded. Allowed: 500"]
    else:
        assert reply.errors == [] and reply.data["me"]["id"]


async def test_introspection_fields_count_toward_depth(client: httpx.AsyncClient) -> None:
    of_type = "ofType { " * 8 + "name" + " }" * 8
    reply = await gql(client, f'{{ __type(name: "Patient") {{ fields {{ type {{ {of_type} }} }} }} }}')
    assert reply.data is None
    assert messages(reply) == ["'anonymous' exceeds maximum operation depth of 10"]
    fan_out = "fields { type { " * 5 + "name" + " } }" * 5  # 150 types x 20 fields, five times over
    reply = await gql(client, f"{{ __schema {{ types {{ {fan_out} }} }} }}")
    assert reply.data is None
    assert "'anonymous' exceeds maximum operation depth of 10" in messages(reply)


@pytest.mark.parametrize("variant", ["graphql-core", "graphql-js order"])
async def test_the_standard_introspection_query_still_runs_in_development(client: httpx.AsyncClient,
                                                                          variant: str) -> None:
    """What GraphiQL and code generators send is deeper than 10 and is recognised by its shape."""
    query = get_introspection_query(input_value_deprecation=True, type_depth=7 if variant != "graphql-core" else 9)
    if variant == "graphql-js order":
        query = query.replace("name\n    kind", "kind\n    name").replace("query IntrospectionQuery", "query Intro")
    reply = await gql(client, query)
    assert reply.errors == []
    assert reply.data["__schema"]["queryType"]["name"] == "Query"


async def test_a_deeper_variant_of_the_introspection_query_is_refused(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(type_depth=9).replace("ofType {\n                    name",
                                                          "ofType {\n ofType { name }\n                    name")
    reply = await gql(client, query)
    assert "'IntrospectionQuery' exceeds maximum operation depth of 10" in messages(reply)


# -- requests that are not GraphQL ----------------------------------------------------------------


async def test_a_subscription_over_post_is_a_bad_request(client: httpx.AsyncClient, tenant: Tenant,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    response = await client.post("/graphql", json={"query": "subscription { ticketChanges { id } }"},
                                 headers={"authorization": f"Bearer {tenant.tokens['support_agent']}"})
    assert response.status_code == 400
    assert response.json() == {"errors": [{
        "message": "Subscriptions are served over the WebSocket at /graphql (graphql-transport-ws), not over POST.",
        "extensions": {"code": "BAD_REQUEST", "field": "query"}}]}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("body", [b'\xff\xfe{"query": "{ me { id } }"}', b'{"query": "{ me { id } }\xc3"}',
                                  b"\x00\x01", b""])
async def test_a_body_that_is_not_utf8_json_is_a_bad_request(client: httpx.AsyncClient, body: bytes,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the time budget and a stuck database -------------------------------------------------------


@pytest_asyncio.fixture
async def budget_client(client: httpx.AsyncClient, settings: Settings, services: Services
                        ) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a short request budget, on the test database."""
    limits = dataclasses.replace(settings.limits, request_timeout_ms=BUDGET_MS)
    app = create_app(dataclasses.replace(settings, limits=limits), services, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        yield http


def sqlite() -> bool:
    return connections.get("default").capabilities.dialect == "sqlite"


async def holding(table: str, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work`` while another task holds the database (SQLite: a transaction holds the one connection;
    PostgreSQL: an exclusive lock on ``table``), then let go."""
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with in_transaction() as connection:
            if not sqlite():
                await connection.execute_script(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    try:
        return await work()
    finally:
        release.set()
        await holder


async def test_a_request_over_its_budget_is_stopped_and_others_are_served(budget_client: httpx.AsyncClient,
                                                                          tenant: Tenant) -> None:
    async def stuck_and_healthy() -> tuple[Any, httpx.Response]:
        async with asyncio.timeout(10):
            return await asyncio.gather(gql(budget_client, ME, token=tenant.tokens["nurse"]),
                                        budget_client.get("/healthz"))

    reply, health = await holding("session", stuck_and_healthy)
    assert reply.data is None and reply.codes == ["TIMEOUT"]
    assert reply.errors[0]["message"].startswith("The request took longer than its budget of 0.4 s")
    assert health.status_code == 200
    async with asyncio.timeout(10):  # nothing was left held: the next request runs
        again = await gql(budget_client, ME, token=tenant.tokens["nurse"])
    assert again.errors == [] and again.data["me"]["id"]


async def test_a_mutation_stopped_by_its_budget_writes_nothing(budget_client: httpx.AsyncClient,
                                                              tenant: Tenant) -> None:
    if sqlite():
        pytest.skip("SQLite has one connection: a held database stops the request at sign-in (test above)")
    before = (await Patient.filter(institution_id=tenant.id).count(), await tenant.audit_count())
    create = 'mutation { patientCreate(input: {fullName: "Budget Case"}, registerAnyway: true) { patient { id } } }'

    async def create_while_held() -> Any:
        async with asyncio.timeout(10):
            return await gql(budget_client, create, token=tenant.tokens["front_desk"])

    reply = await holding("patient", create_while_held)
    assert reply.codes == ["TIMEOUT"]
    assert (await Patient.filter(institution_id=tenant.id).count(), await tenant.audit_count()) == before


async def test_readyz_says_not_ready_when_the_database_is_stuck(client: httpx.AsyncClient) -> None:
    async def probe() -> httpx.Response:
        async with asyncio.timeout(10):
            return await client.get("/readyz")

    if sqlite():
        response = await holding("session", probe)
    else:  # PostgreSQL: every pooled connection taken
        pool = connections.get("default")._pool
        taken = [await pool.acquire() for _ in range(pool.get_max_size())]
        try:
            response = await probe()
        finally:
            for connection in taken:
                await pool.release(connection)
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is False
    assert (await client.get("/readyz")).status_code == 200
