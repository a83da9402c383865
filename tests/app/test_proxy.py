"""Behind a reverse proxy, the audit trail records the client's address, taken from X-Forwarded-For only
when the request comes from a trusted proxy (CARELOOP_TRUSTED_PROXIES)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from app.main import create_app
from core.settings import Settings, load_settings
from resolvers.context import Services
from tests.factories import CLIENT_ADDRESS, LOGIN, PASSWORD, Tenant, gql

PROXY = "10.1.2.3"  # inside the trusted network below
CLIENT = "198.51.100.23"  # the patient's or staff member's own address, as the proxy saw it


@pytest_asyncio.fixture
async def behind_proxy(database: str, settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app with 10.0.0.0/8 trusted, reached from a proxy at PROXY."""
    app = create_app(dataclasses.replace(settings, trusted_proxies=("10.0.0.0/8",)), services,
                     manage_database=False)
    transport = httpx.ASGITransport(app=app, client=(PROXY, 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as http:
        yield http


async def login_from(client: httpx.AsyncClient, tenant: Tenant, forwarded_for: str | None) -> str:
    """Signs the front desk in and answers the address the login's audit record holds."""
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for is not None else {}
    reply = await gql(client, LOGIN, {"email": tenant.emails["front_desk"], "password": PASSWORD}, headers=headers)
    assert not reply.errors, reply.errors
    event = (await tenant.audit_events(action="login", actor_id=tenant.staff_ids["front_desk"]))[-1]
    return event.client_address


async def test_from_a_trusted_proxy_the_forwarded_client_is_recorded(tenant: Tenant,
                                                                     behind_proxy: httpx.AsyncClient) -> None:
    assert await login_from(behind_proxy, tenant, CLIENT) == CLIENT


async def test_the_rightmost_untrusted_hop_is_the_client(tenant: Tenant, behind_proxy: httpx.AsyncClient) -> None:
    """A client may send its own X-Forwarded-For; each proxy appends the peer it saw, so only the rightmost
    address no trusted proxy added is believed, whatever the client put before it."""
    assert await login_from(behind_proxy, tenant, f"192.0.2.99, {CLIENT}, 10.9.9.9") == CLIENT


async def test_without_the_header_the_proxy_is_recorded(tenant: Tenant, behind_proxy: httpx.AsyncClient) -> None:
    assert await login_from(behind_proxy, tenant, None) == PROXY


async def test_from_an_untrusted_peer_a_forged_header_is_ignored(tenant: Tenant, settings: Settings,
                                                                 services: Services) -> None:
    """The same app, reached directly by a client outside the trusted networks."""
    app = create_app(dataclasses.replace(settings, trusted_proxies=("10.0.0.0/8",)), services,
                     manage_database=False)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as direct:
        assert await login_from(direct, tenant, "10.0.0.5") == CLIENT_ADDRESS
        assert await login_from(direct, tenant, CLIENT) == CLIENT_ADDRESS


async def test_an_ipv6_proxy_is_trusted_by_its_address(tenant: Tenant, settings: Settings,
                                                       services: Services) -> None:
    app = create_app(dataclasses.replace(settings, trusted_proxies=("2001:db8::1",)), services,
                     manage_database=False)
    transport = httpx.ASGITransport(app=app, client=("2001:db8::1", 41001))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as proxy:
        assert await login_from(proxy, tenant, "2001:db8:ffff::7") == "2001:db8:ffff::7"


async def test_no_proxy_is_trusted_by_default(tenant: Tenant, client: httpx.AsyncClient) -> None:
    """The test client's app has no trusted proxies (the default): the header changes nothing."""
    assert load_settings({}).trusted_proxies == ()
    assert await login_from(client, tenant, CLIENT) == CLIENT_ADDRESS


def test_the_setting_takes_addresses_and_networks() -> None:
    settings = load_settings({"CARELOOP_TRUSTED_PROXIES": " 10.0.0.1/8, 127.0.0.1 ,2001:DB8::1,"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "2001:db8::1")


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.0/33", "10.0.0.0/8;rm"])
def test_anything_else_stops_the_process(value: str) -> None:
    with pytest.raises(SystemExit, match="CARELOOP_TRUSTED_PROXIES"):
        load_settings({"CARELOOP_TRUSTED_PROXIES": value})
