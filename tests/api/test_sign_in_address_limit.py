"""Sign-in attempts per client address (found in review: forty anonymous sign-ins at once, at staff, patient and
unknown addresses, held the two argon2 slots, and every honest sign-in queued behind them for seconds). An address
over ``login_per_address_per_minute`` is refused before its document runs, so before any password is checked;
the refusal is recorded once a minute; aliases and fragments count each sign-in they ask for."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from app.main import create_app
from audit import writer
from audit.writer import SYSTEM_CHAIN
from core.db import delete_in_batches
from core.settings import Settings, load_settings
from core.tokens import token_digest
from models import AuditEvent, Session, SignInThrottle, SignInWindow
from resolvers import idempotency_key, session, sign_in_limit
from resolvers.context import Services
from tests.api.test_accounts import WRONG, staff_row
from tests.api.test_partner import fresh_minute
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Response, Tenant, gql

LIMIT = 3
PROXY = "10.1.2.3"  # a trusted proxy: the client's address is the X-Forwarded-For it sends
REFUSED = {"errors": [{"message": "Too many sign-in attempts from your address; try again in a minute.",
                       "extensions": {"code": "RATE_LIMITED"}}]}  # no data entry: refused before it ran
SIGN_INS = {  # each mutation that checks a password, and the kind of account its unknown addresses count under
    "login": ("mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "staff"),
    "patientLogin": ("mutation($e: String!, $p: String!) { patientLogin(email: $e, password: $p) { token } }",
                     "patient"),
    "totpEnrollForLogin": ("mutation($e: String!, $p: String!) { totpEnrollForLogin(email: $e, password: $p) "
                           "{ secret } }", "staff"),
}
LOGIN = SIGN_INS["login"][0]


@pytest_asyncio.fixture
async def proxy(database: str, settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a limit of ``LIMIT`` sign-ins per address and minute, reached through a trusted proxy."""
    limits = dataclasses.replace(settings.limits, login_per_address_per_minute=LIMIT)
    app = create_app(dataclasses.replace(settings, limits=limits, trusted_proxies=("10.0.0.0/8",)), services,
                     manage_database=False)
    transport = httpx.ASGITransport(app=app, client=(PROXY, 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as http:
        yield http


def new_address() -> str:
    """An address of this test's own (198.18.0.0/15, for tests): the counts live in the shared test database."""
    return f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def attempt(client: httpx.AsyncClient, address: str, email: str, password: str = WRONG,
                  document: str = LOGIN, accept: str | None = None) -> Response:
    headers = {"x-forwarded-for": address, **({"accept": accept} if accept else {})}
    return await gql(client, document, {"e": email, "p": password}, headers=headers)


def refused(reply: Response) -> bool:
    """The answer is the limit's refusal, which says in ``retryAfter`` how many seconds the minute has left."""
    retry = reply.errors[0]["extensions"].pop("retryAfter", None) if reply.errors else None
    return isinstance(retry, int) and 1 <= retry <= 60 and reply.body == REFUSED


async def refusals_recorded(address: str) -> list[tuple[str, str, str, str]]:
    await writer.seal(SYSTEM_CHAIN)
    return [(e.action, e.resource_type, e.actor_kind, e.outcome) for e in await AuditEvent.filter(
        institution_id=SYSTEM_CHAIN, client_address=address, reason="rate_limited").order_by("seq")]


async def test_an_address_over_its_limit_is_refused_before_any_password_is_checked(
        proxy: httpx.AsyncClient, tenant: Tenant) -> None:
    await fresh_minute()
    address, email = new_address(), tenant.emails["nurse"]
    for _ in range(LIMIT):
        assert (await attempt(proxy, address, email)).codes == ["UNAUTHENTICATED"]
    sessions = await Session.filter(staff_id=tenant.staff_ids["nurse"]).count()

    over = await attempt(proxy, address, email, PASSWORD, accept="application/graphql-response+json")
    again = await attempt(proxy, address, email, PASSWORD)

    assert over.status == 429 and refused(Response(over.status, json.loads(over.body["raw"])))
    assert again.status == 200 and refused(again)  # application/json: the legacy status
    row = await staff_row(tenant, "nurse")
    assert (row["failed_logins"], row["locked_until"]) == (LIMIT, None)  # neither password was checked
    assert await Session.filter(staff_id=tenant.staff_ids["nurse"]).count() == sessions  # the right one opened none
    assert await refusals_recorded(address) == [("login", "session", "anonymous", "denied")]  # once a minute
    assert await tenant.audit_events(client_address=address, reason="rate_limited") == []  # nor on the account's


@pytest.mark.parametrize("field", SIGN_INS)
async def test_every_sign_in_counts_toward_the_limit(proxy: httpx.AsyncClient, field: str,
                                                     services: Services) -> None:
    await fresh_minute()
    address, email = new_address(), f"nobody.{random.getrandbits(64):x}@example.org"
    document, kind = SIGN_INS[field]
    for _ in range(LIMIT):
        assert (await attempt(proxy, address, email, document=document)).codes == ["UNAUTHENTICATED"]

    assert refused(await attempt(proxy, address, email, document=document))

    key = token_digest(services.master_key.token_key, f"{kind}:{email}")
    assert (await SignInThrottle.get(id=key)).failed_logins == LIMIT  # the refused one was not checked


@pytest.mark.parametrize("document", [
    "mutation($e: String!, $p: String!) { a: login(email: $e, password: $p) { token } "
    "b: login(email: $e, password: $p) { token } c: patientLogin(email: $e, password: $p) { token } "
    "d: login(email: $e, password: $p) { token } }",
    "mutation($e: String!, $p: String!) { ...Two c: login(email: $e, password: $p) { token } "
    "d: login(email: $e, password: $p) { token } } "
    "fragment Two on Mutation { a: login(email: $e, password: $p) { token } "
    "b: patientLogin(email: $e, password: $p) { token } }",
    "mutation($e: String!, $p: String!) { ... on Mutation { a: login(email: $e, password: $p) { token } "
    "b: login(email: $e, password: $p) { token } } ... { c: totpEnrollForLogin(email: $e, password: $p) { secret } "
    "d: login(email: $e, password: $p) { token } } }",
], ids=["aliases", "fragments", "inline fragments"])
async def test_sign_ins_in_one_document_count_one_by_one(proxy: httpx.AsyncClient, tenant: Tenant,
                                                         document: str) -> None:
    await fresh_minute()
    address = new_address()

    reply = await attempt(proxy, address, tenant.emails["nurse"], document=document)

    assert refused(reply)  # four attempts over a limit of three: none of them runs
    assert (await staff_row(tenant, "nurse"))["failed_logins"] == 0
    assert refused(await attempt(proxy, address, tenant.emails["nurse"], PASSWORD))  # and they counted


async def test_another_address_is_not_held_back(proxy: httpx.AsyncClient, tenant: Tenant) -> None:
    await fresh_minute()
    flooding = new_address()
    for _ in range(LIMIT + 2):
        await attempt(proxy, flooding, tenant.emails["doctor"])
    assert refused(await attempt(proxy, flooding, tenant.emails["nurse"], PASSWORD))

    honest = await attempt(proxy, new_address(), tenant.emails["nurse"], PASSWORD)

    assert honest.errors == [] and honest.data["login"]["token"]


async def test_an_ipv6_address_counts_with_its_64_network(proxy: httpx.AsyncClient, tenant: Tenant) -> None:
    """One subscriber holds a whole /64 (and a host may choose any address in it): counted per address, it would
    be no limit at all."""
    await fresh_minute()
    network = f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}"
    for host in range(1, LIMIT + 1):
        assert (await attempt(proxy, f"{network}::{host}", tenant.emails["nurse"])).codes == ["UNAUTHENTICATED"]

    assert refused(await attempt(proxy, f"{network}:ffff::1", tenant.emails["nurse"], PASSWORD))
    other = await attempt(proxy, f"2001:db8:{random.getrandbits(16):x}::1", tenant.emails["nurse"], PASSWORD)
    assert other.errors == []


async def test_the_count_starts_again_the_next_minute(proxy: httpx.AsyncClient, tenant: Tenant,
                                                      services: Services) -> None:
    await fresh_minute()
    address = new_address()
    for _ in range(LIMIT + 1):
        await attempt(proxy, address, tenant.emails["nurse"])
    assert refused(await attempt(proxy, address, tenant.emails["nurse"], PASSWORD))
    key = sign_in_limit.address_key(services, address)
    assert await SignInWindow.filter(address=key).update(window_start=datetime.now(UTC).replace(
        second=0, microsecond=0) - timedelta(minutes=5)) == 1  # as if the minute were long gone

    reply = await attempt(proxy, address, tenant.emails["nurse"], PASSWORD)

    assert reply.errors == [] and reply.data["login"]["token"]
    assert await sign_in_limit.forget_past_windows() >= 1
    assert [w.attempts for w in await SignInWindow.filter(address=key)] == [1]  # the new minute's, kept
    assert await refusals_recorded(address) == [("login", "session", "anonymous", "denied")]


def test_the_limit_is_thirty_a_minute_unless_set() -> None:
    assert load_settings({}).limits.login_per_address_per_minute == 30
    assert load_settings({"CARELOOP_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE": "5"}).limits.login_per_address_per_minute == 5


async def test_a_refusal_under_graphql_response_json_says_when_to_retry(proxy: httpx.AsyncClient,
                                                                        tenant: Tenant) -> None:
    """A 429 carries Retry-After (RFC 9110), the seconds ``extensions.retryAfter`` gives, for HTTP clients and
    proxies that back off by the header alone."""
    await fresh_minute()
    address = new_address()
    for _ in range(LIMIT):
        await attempt(proxy, address, tenant.emails["nurse"])
    reply = await proxy.post("/graphql", json={"query": LOGIN, "variables": {"e": tenant.emails["nurse"],
                                                                              "p": WRONG}},
                             headers={"x-forwarded-for": address, "accept": "application/graphql-response+json"})
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == str(reply.json()["errors"][0]["extensions"]["retryAfter"])
    assert "retry-after" not in (await proxy.post("/graphql", json={"query": "{ __typename }"})).headers


async def test_token_requests_count_as_sign_ins_of_their_address(proxy: httpx.AsyncClient) -> None:
    """``/oauth/token`` refuses an unknown client on the trail, anonymously: without the address's limit a flood of
    made-up client ids wrote an audit row each, without end. Now its requests count as sign-ins of the address:
    over the limit, slow_down (429, Retry-After) before any client is looked up, recorded once a minute."""
    await fresh_minute()
    address = new_address()
    form = {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "client_secret": "clcs_" + "x" * 43}

    async def ask() -> httpx.Response:
        return await proxy.post("/oauth/token", data=form, headers={"x-forwarded-for": address})

    assert [(await ask()).status_code for _ in range(LIMIT)] == [401] * LIMIT  # invalid_client, each recorded
    over = [await ask() for _ in range(3)]
    assert [(r.status_code, r.json()["error"]) for r in over] == [(429, "slow_down")] * 3
    assert 1 <= int(over[0].headers["retry-after"]) <= 60
    await writer.seal(SYSTEM_CHAIN)
    recorded = [(e.action, e.resource_type, e.reason) for e in await AuditEvent.filter(
        institution_id=SYSTEM_CHAIN, client_address=address).order_by("seq")]
    assert recorded == [("token", "partner_token", "bad_credentials")] * LIMIT + [
        ("token", "partner_token", "rate_limited")]


async def test_the_sweeps_delete_a_backlog_a_bounded_batch_a_statement(database: str, sql_counter: SqlCounter) -> None:
    """Past windows (an attack's thousands of addresses), idle throttles and expired idempotency keys are deleted at
    most a batch a statement, each its own transaction: no sweep holds a lock over a whole backlog, nor SQLite's one
    write lock, for long (found in review: one statement each, where docs/operations.md promises bounded batches)."""
    prefix = uuid.uuid4().hex[:12]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    await SignInWindow.bulk_create([SignInWindow(address=f"{prefix}-{n}", window_start=now - timedelta(minutes=30))
                                    for n in range(5)] + [SignInWindow(address=f"{prefix}-now", window_start=now)])
    sql_counter.statements.clear()

    assert await delete_in_batches(SignInWindow.filter(address__startswith=prefix, window_start__lt=now), batch=2) == 5

    deletes = [s for s in sql_counter.statements if s.startswith("DELETE")]
    assert len(deletes) == 3 and all(" IN (" in s for s in deletes), deletes  # each names its rows
    assert [w.address for w in await SignInWindow.filter(address__startswith=prefix)] == [f"{prefix}-now"]
    for sweep in (sign_in_limit.forget_past_windows, session.forget_idle_unknown_addresses,
                  idempotency_key.forget_expired):
        sql_counter.statements.clear()
        await sweep()
        assert all(" IN (" in s for s in sql_counter.statements if s.startswith("DELETE")), sweep
        assert any("LIMIT" in s for s in sql_counter.statements), sweep
