"""The ASGI application: /graphql, /healthz, /readyz, behind request-id and security-header middleware."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import checkpoints, compliance, db, files, graphiql, message_hooks, metrics, notifier, oauth, sweeps
from app.graphql import CareloopGraphQL, error_body, unreachable
from app.logs import clamp_library_logging
from app.principals import PrincipalListener
from app.services import StartupError, build_services
from app.websocket_limit import WebSocketLimit
from core.backends.asyncpg import connection_lost
from core.settings import Settings, load_settings
from models import Staff
from resolvers import policy
from resolvers.context import Services
from schema.root import build_schema

log = logging.getLogger("careloop.startup")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
# What a portal's fetch needs: POST for GraphQL (and /oauth/token), GET for attachment downloads. No cookies
# are involved (tokens travel in the Authorization header), so credentials stay off: a page cannot ride on
# a browser's session, and an allowed origin still needs the token.
CORS_METHODS = ["GET", "POST"]
# Idempotency-Key: a mutation sent again is written once (docs/portals.md)
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Content-Disposition"]
CORS_MAX_AGE = 7200  # seconds a browser may reuse a preflight answer (Chromium's own cap)


class RequestIdAndHeaders:
    """Give each request an id (echoed as X-Request-ID) and every response the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS,
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Young objects collected after this many net allocations instead of 700: a request allocates tens of
# thousands of short-lived objects (W1: ~830 fields), and the default ran a collection many times per request.
GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collection() -> None:
    """Once a serving worker has started (in each worker: this runs in the app's lifespan): what is alive now
    (modules, the schema, the policy) lives as long as the process, so it is frozen out of every collection
    rather than traversed again by each full one; and the young generation is collected less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_app(settings: Settings | None = None, services: Services | None = None, *, manage_database: bool = True
               ) -> Starlette:
    """The app. Tests that own the database pass ``manage_database=False``."""
    settings = settings or load_settings()
    clamp_library_logging()  # in every worker: uvicorn hands its own logger to the WebSocket library, and logs errors
    services = services or build_services(settings)
    schema = build_schema(settings.limits, production=settings.is_production)
    graphql = CareloopGraphQL(schema, services, ide=not settings.is_production,
                              budget_seconds=settings.limits.request_timeout_ms / 1000,
                              max_body_bytes=settings.limits.max_body_bytes,
                              allowed_origins=settings.cors_allowed_origins,
                              websockets=WebSocketLimit(settings.limits.websockets_pending_per_address,
                                                        settings.limits.websockets_per_address))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not manage_database:
            yield
            return
        await db.open_database(settings.database_url)
        background: list[asyncio.Task[None]] = []
        try:
            await refuse_unsafe_production(settings)
            await policy.record_change(services)
            background = [asyncio.create_task(notifier.run_outboxes(services)),
                          asyncio.create_task(checkpoints.run(settings, services)),
                          asyncio.create_task(checkpoints.seal_waiting()),
                          asyncio.create_task(sweeps.run(sweeps.of(services))),
                          # the principal cache answers only while this listens (PostgreSQL; SQLite: returns)
                          asyncio.create_task(PrincipalListener(services.principals, settings.database_url).run()),
                          *([asyncio.create_task(metrics.run())] if settings.metrics_port else [])]
            settle_garbage_collection()
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.close_database()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {"database": await db.ping(), "keys": services.master_key is not None}
        checks["migrations"] = checks["database"] and not await db.pending_migrations()
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    app = Starlette(
        routes=[
            # Every method reaches the view, which answers each in JSON (405 for all but POST and GraphiQL's
            # GET) and counts the body limit itself (413 in JSON); inside RequestIdAndHeaders, so every
            # answer gets the headers too.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),  # subscriptions, graphql-transport-ws
            *([] if settings.is_production else graphiql.routes()),  # GraphiQL's own files, served offline
            *files.routes(services),
            *compliance.routes(services),  # compliance officers' exports (PDF, CSV, the NDJSON evidence)
            *oauth.routes(services, settings.limits.login_per_address_per_minute),  # partners' access tokens
            *message_hooks.routes(services),  # gateways' delivery callbacks, patients' unsubscribe links
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
        exception_handlers={kind: database_unreachable for kind in LOST_DATABASE_ERRORS},
    )
    if settings.cors_allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_allowed_origins),
                           allow_methods=CORS_METHODS, allow_headers=CORS_REQUEST_HEADERS,
                           expose_headers=CORS_EXPOSED_HEADERS, allow_credentials=False, max_age=CORS_MAX_AGE)
    app.add_middleware(RequestIdAndHeaders)  # added last, so outermost: preflight answers get the headers too
    if settings.trusted_proxies:
        # The client's address (audit rows, rate limits) from X-Forwarded-For, the rightmost hop that is not a
        # trusted proxy, and the scheme from X-Forwarded-Proto; only when the peer itself is a trusted proxy.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app


# What the database's loss raises (core.backends.asyncpg.connection_lost has the last word)
LOST_DATABASE_ERRORS = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


async def database_unreachable(request: Request, error: Exception) -> Response:
    """A plain route (attachments, exports, /oauth/token, delivery callbacks) whose database could not be reached
    answers as /graphql does before execution: 503 UNAVAILABLE with Retry-After (found in review: the error left the
    app, a bare 500)."""
    if not connection_lost(error):
        raise error
    refused = unreachable(request, error)
    metrics.count_errors([refused.code])
    return JSONResponse(error_body(refused.message, refused.code), status_code=refused.status, headers=refused.headers)


async def refuse_demo_accounts(settings: Settings) -> None:
    """``careloop serve`` asks this before it binds the port, so the refusal is one line, not the traceback an
    ASGI server logs for a failed lifespan; the lifespan asks again for servers started otherwise."""
    if settings.is_production and await Staff.exists(is_demo=True):
        raise StartupError("Demo accounts exist in this database; production refuses to start with them.")


async def refuse_unsafe_production(settings: Settings) -> None:
    await refuse_demo_accounts(settings)
    if settings.is_production and urlsplit(settings.public_url).hostname in ("127.0.0.1", "localhost", "::1"):
        log.warning("CARELOOP_PUBLIC_URL is %s: the links in messages to patients (unsubscribe, surveys) point at "
                    "this server's loopback; set it to the address patients reach.", settings.public_url)
