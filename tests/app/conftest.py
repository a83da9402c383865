"""The real app served by uvicorn on a free port, for tests that need a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest_asyncio
import uvicorn
from starlette.applications import Starlette

from app.main import create_app
from core.settings import Settings
from resolvers.context import Services

STOP_WITHIN = 10  # seconds


@asynccontextmanager
async def serve(app: Starlette, *, ws: str = "websockets-sansio", log_level: str = "warning") -> AsyncIterator[str]:
    """Serves ``app`` in this event loop and yields the WebSocket URL of /graphql.

    ``ws`` picks uvicorn's WebSocket implementation ("websockets-sansio" is what its "auto" picks).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # proxy_headers off as `careloop serve` has it: uvicorn's default trusts X-Forwarded-For from 127.0.0.1, which
    # would let every test client name its own address.
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level=log_level, ws=ws, proxy_headers=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # uvicorn exposes a flag, not an event
        if task.done():
            await task  # raise what stopped it
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/graphql"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(STOP_WITHIN):
                await asyncio.shield(task)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise AssertionError(f"uvicorn did not stop within {STOP_WITHIN} s: a request or WebSocket is stuck"
                                 ) from None


@pytest_asyncio.fixture
async def ws_url(database: str, settings: Settings, services: Services) -> AsyncIterator[str]:
    async with serve(create_app(settings, services, manage_database=False)) as url:
        yield url
