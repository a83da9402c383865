"""CORS: which browser origins may call the API (``CARELOOP_CORS_ORIGINS``).

- An allowed origin's preflight is answered 200 with the methods and headers a portal sends, no credentials
  (tokens travel in the Authorization header, never in cookies), cached for two hours, and with the security
  headers and X-Request-ID like every answer; its requests' answers name it and expose X-Request-ID.
- An origin that is not listed gets no Access-Control-Allow-Origin, on a preflight or a request.
- Development allows the usual local dev servers unless told otherwise; production allows none unless told.
- The setting takes exact origins, comma-separated; anything else stops the process with a clear message.

A real browser on another origin is in ``test_browser.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.main import create_app
from core.settings import DEV_CORS_ORIGINS, Settings, load_settings
from resolvers.context import Services
from tests.factories import Tenant

PORTAL = "https://portal.example.org"
ELSEWHERE = "https://evil.example"
ME = {"query": "{ me { id } }"}


@asynccontextmanager
async def app_client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        yield http


async def preflight(http: httpx.AsyncClient, origin: str, method: str = "POST",
                    headers: str = "authorization,content-type") -> httpx.Response:
    return await http.options("/graphql", headers={"origin": origin, "access-control-request-method": method,
                                                   "access-control-request-headers": headers})


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert len(response.headers["x-request-id"]) == 32


@pytest.fixture
def portal_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, cors_origins=(PORTAL,))


async def test_an_allowed_origins_preflight_gets_what_a_portal_needs(database: str, portal_settings: Settings,
                                                                     services: Services) -> None:
    async with app_client(portal_settings, services) as http:
        response = await preflight(http, PORTAL, headers="authorization,content-type,accept,idempotency-key")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert {m.strip() for m in response.headers["access-control-allow-methods"].split(",")} == {"GET", "POST"}
    allowed_headers = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "accept", "idempotency-key"} <= allowed_headers  # docs/portals.md
    assert response.headers["access-control-max-age"] == "7200"
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in response.headers["vary"].lower()
    assert_security_headers(response)  # CORS sits inside RequestIdAndHeaders


async def test_an_allowed_origins_request_is_answered_with_its_origin_and_the_request_id_exposed(
        database: str, portal_settings: Settings, services: Services, tenant: Tenant) -> None:
    async with app_client(portal_settings, services) as http:
        response = await http.post("/graphql", json=ME, headers={
            "origin": PORTAL, "authorization": f"Bearer {tenant.tokens['nurse']}"})
    assert response.status_code == 200 and response.json()["data"]["me"]["id"]
    assert response.headers["access-control-allow-origin"] == PORTAL
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after"} <= exposed
    assert "access-control-allow-credentials" not in response.headers
    assert_security_headers(response)


async def test_an_origin_not_listed_gets_no_allow_origin(database: str, portal_settings: Settings,
                                                         services: Services) -> None:
    async with app_client(portal_settings, services) as http:
        refused = await preflight(http, ELSEWHERE)
        answered = await http.post("/graphql", json=ME, headers={"origin": ELSEWHERE})
        almost = await preflight(http, PORTAL + ":444")  # another port is another origin
    for response in (refused, almost):
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        assert_security_headers(response)
    # The request itself is answered (CORS is the browser's to enforce), but the browser will not let the
    # page read it.
    assert answered.status_code == 200 and "access-control-allow-origin" not in answered.headers


async def test_a_preflight_for_a_method_or_header_a_portal_does_not_need_is_refused(
        database: str, portal_settings: Settings, services: Services) -> None:
    async with app_client(portal_settings, services) as http:
        delete = await preflight(http, PORTAL, method="DELETE")
        cookie_like = await preflight(http, PORTAL, headers="authorization,x-csrf-token")
    for response in (delete, cookie_like):
        assert response.status_code == 400


async def test_development_allows_the_local_dev_servers_by_default(database: str, settings: Settings,
                                                                   services: Services) -> None:
    assert settings.cors_origins is None and not settings.is_production
    async with app_client(settings, services) as http:
        for origin in ("http://localhost:3000", "http://127.0.0.1:5173"):
            response = await preflight(http, origin)
            assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-origin" not in (await preflight(http, PORTAL)).headers


async def test_production_allows_no_origin_by_default(database: str, settings: Settings,
                                                      services: Services) -> None:
    production = dataclasses.replace(settings, environment="production")
    assert production.cors_allowed_origins == ()
    async with app_client(production, services) as http:
        for origin in (*DEV_CORS_ORIGINS, PORTAL):
            response = await preflight(http, origin)
            # No CORS at all: OPTIONS reaches the GraphQL view, which refuses it in JSON.
            assert response.status_code == 405 and response.json()["errors"][0]["extensions"]["code"] == \
                "METHOD_NOT_ALLOWED"
            assert "access-control-allow-origin" not in response.headers
            assert_security_headers(response)
        answered = await http.post("/graphql", json=ME, headers={"origin": "http://localhost:3000"})
        assert "access-control-allow-origin" not in answered.headers


async def test_production_allows_the_origins_it_is_given(database: str, settings: Settings,
                                                         services: Services) -> None:
    production = dataclasses.replace(settings, environment="production", cors_origins=(PORTAL,))
    async with app_client(production, services) as http:
        assert (await preflight(http, PORTAL)).headers["access-control-allow-origin"] == PORTAL
        assert "access-control-allow-origin" not in (await preflight(http, "http://localhost:3000")).headers


# -- the setting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "expected"), [
    ({}, DEV_CORS_ORIGINS),
    ({"CARELOOP_ENV": "production"}, ()),
    ({"CARELOOP_CORS_ORIGINS": ""}, ()),
    ({"CARELOOP_ENV": "production", "CARELOOP_CORS_ORIGINS": " https://a.example.org, https://b.example.org:8443/ "},
     ("https://a.example.org", "https://b.example.org:8443")),
    ({"CARELOOP_CORS_ORIGINS": "http://localhost:4200"}, ("http://localhost:4200",)),
])
def test_the_setting_is_read_from_the_environment(env: dict[str, str], expected: tuple[str, ...]) -> None:
    assert load_settings(env).cors_allowed_origins == expected


@pytest.mark.parametrize("value", ["*", "portal.example.org", "https://portal.example.org/app", "ftp://x.example",
                                   "https://", "https://user@portal.example.org", "https://*.example.org"])
def test_anything_but_exact_origins_stops_the_process(value: str) -> None:
    with pytest.raises(SystemExit, match="CARELOOP_CORS_ORIGINS"):
        load_settings({"CARELOOP_CORS_ORIGINS": value})
