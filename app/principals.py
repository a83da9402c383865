"""The listener that keeps the principal cache honest: PostgreSQL tells it, at commit, whose sign-in changed.

One connection of its own per process (never the Tortoise pool, whose connections carry no session state),
``LISTEN careloop_principals``; migration 0024's triggers ``pg_notify`` on that channel the account whose
session, activity, name, roles or departments changed (or ``*``). Each notification drops that account's
entries from ``services.principals``. The cache answers only while this connection is up: until it listens,
and from the moment it is lost (the server closed it, or a ping went unanswered), the cache is emptied and
every request asks the database again, until a new connection listens. SQLite has no such channel: no cache.

The same connection answers the cache's fences (``fence``: one ``SELECT 1`` shared by the requests waiting,
which doubles as the liveness ping when nobody waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from app.leader import libpq_dsn
from core.db import backend_of
from core.errors import FailingRounds
from core.principal_cache import PrincipalCache

log = logging.getLogger("careloop.principals")
CHANNEL = "careloop_principals"
APPLICATION_NAME = "careloop principal listener"  # in pg_stat_activity
RETRY_SECONDS = 2.0  # between attempts to connect
PING_SECONDS = 5.0  # a silent connection is proved alive this often...
PING_TIMEOUT_SECONDS = 5.0  # ...and counted lost when the proof (or LISTEN) takes longer
CONNECT_TIMEOUT_SECONDS = 10.0


def cacheable(database_url: str, cache: PrincipalCache) -> bool:
    """Whether the cache can be live at all: PostgreSQL, and a TTL."""
    return backend_of(database_url) == "postgres" and cache.ttl > 0


class PrincipalListener:
    def __init__(self, cache: PrincipalCache, database_url: str, *, retry_seconds: float = RETRY_SECONDS,
                 ping_seconds: float = PING_SECONDS, timeout_seconds: float = PING_TIMEOUT_SECONDS) -> None:
        self.cache = cache
        self._url = database_url
        self._retry = retry_seconds
        self._ping = ping_seconds
        self._timeout = timeout_seconds  # for LISTEN and each ping
        self.server_pid: int | None = None  # the listening backend, while connected
        self._wanted = asyncio.Event()  # a request waits for a fence
        self._next: asyncio.Future[None] | None = None  # what the next round trip (started after it) completes

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a loss; returns at once where no cache can be live."""
        if not cacheable(self._url, self.cache):
            return
        told = FailingRounds(log, "connecting the principal cache's listener (meanwhile every request signs in "
                                  "against the database)")
        while True:
            try:
                await self._listen(told)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                told.failed(exc)  # told once, then counted: it tries again every few seconds
            await asyncio.sleep(self._retry)

    async def fence(self) -> None:
        """Returns after a round trip on the listening connection that started after this call: every
        notification committed before the call has then been applied (PostgreSQL delivers them before it
        answers). Requests arriving together share one round trip."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._wanted.set()
        await asyncio.shield(self._next)

    async def _listen(self, told: FailingRounds) -> None:
        connection: asyncpg.Connection | None = None
        lost = asyncio.Event()
        try:
            connection = await asyncpg.connect(libpq_dsn(self._url), timeout=CONNECT_TIMEOUT_SECONDS,
                                               server_settings={"application_name": APPLICATION_NAME})

            def closed(_connection: object) -> None:
                lost.set()
                self._wanted.set()  # wakes the loop below

            connection.add_termination_listener(closed)
            # returns once LISTEN is in force; bounded, as each ping is (found in review: a server that went silent
            # just then held it, and the cache off, until the kernel gave the connection up, tcp_retries2)
            async with asyncio.timeout(self._timeout):  # not wait_for: see below
                await connection.add_listener(CHANNEL, self._notified)
            self.server_pid = connection.get_server_pid()
            self.cache.go_live(self.fence)
            told.worked()
            while not lost.is_set():
                # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that comes as what it
                # awaits is done, and the listener, cancelled at shutdown, pinged on for good (found when a test hung)
                with contextlib.suppress(TimeoutError):  # a fence wanted, or a ping due
                    async with asyncio.timeout(self._ping):
                        await self._wanted.wait()
                if lost.is_set():
                    break
                self._wanted.clear()
                waiting, self._next = self._next, None  # who asks from now on waits for the next round trip
                try:
                    async with asyncio.timeout(self._timeout):
                        await connection.fetchval("SELECT 1")
                except BaseException:
                    if waiting is not None:
                        waiting.set_exception(ConnectionError("the principal listener's connection failed"))
                        waiting.exception()  # retrieved: its waiters ask the database instead
                    raise
                if waiting is not None:
                    waiting.set_result(None)
            log.warning("the principal cache's listener lost its connection; the cache is off until it is back")
        finally:
            self.cache.go_dark()  # first: from here on nothing is answered from memory
            self.server_pid = None
            waiting, self._next = self._next, None
            if waiting is not None and not waiting.done():
                waiting.set_exception(ConnectionError("the principal listener stopped"))
                waiting.exception()
            if connection is not None:
                connection.terminate()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.cache.forget(payload)
