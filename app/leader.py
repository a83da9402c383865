"""One leader per background job across the fleet, so work that every node would repeat runs on one.

- PostgreSQL: a session advisory lock per job (``pg_try_advisory_lock``), held on a connection of its own for as
  long as the node lives. When the node stops, dies or loses that connection, the server releases the lock and
  another node takes the job at its next round. Before each round the leader proves its session alive
  (``SELECT 1``, answered within ``STATEMENT_TIMEOUT_SECONDS``); if it is not, it stops leading until it takes
  the lock again. A server that stops answering (a network path gone silent) fails the proof by that timeout,
  not by the kernel's give-up a quarter of an hour later, during which every sweep of the node would wait.
  The server, in turn, probes the lock's session (``SERVER_KEEPALIVES``): a node whose machine died or whose
  network went away loses its locks within about a minute, where the server's default probes start after two
  hours, and no node would take the jobs meanwhile.
- SQLite: one machine. An exclusive ``flock`` on a file beside the database, per job, elects one of the processes
  of ``careloop serve --workers N``; an in-memory database has one process, which always leads.

The outboxes need no leader: their rows are claimed with ``SKIP LOCKED``, so every node delivers a share and
none sends a message another has claimed. The jobs led here are also safe to repeat (rows locked or keyed), so
the moment two nodes both believe they lead (a network partition the server has not noticed yet) costs
repeated work, never a wrong result.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from core.db import backend_of
from core.errors import FailingRounds

log = logging.getLogger("careloop.leader")
CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 5.0  # a lock statement not answered by then counts the session lost
# the server's TCP keepalives on the lock's session: first probe after 30 s idle, then every 10 s, 3 unanswered
# probes end the session (and release its locks)
SERVER_KEEPALIVES = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey")  # kept from the URL; Tortoise's pool options are not


def libpq_dsn(database_url: str) -> str:
    """The database URL for a connection of careloop's own, outside Tortoise: its TLS options kept, the pool's
    dropped (libpq and asyncpg refuse them)."""
    url = urlsplit(database_url)
    kept = [(key, value) for key, value in parse_qsl(url.query) if key in LIBPQ_OPTIONS]
    return url._replace(query=urlencode(kept)).geturl()


def lock_key(job: str) -> int:
    """The job's advisory lock: a stable signed 64-bit number from its name, in careloop's own namespace."""
    return int.from_bytes(hashlib.sha256(f"careloop:{job}".encode()).digest()[:8], "big", signed=True)


class Leadership:
    """The jobs this process leads. ``leads(job)`` before each round: True while this process holds the job."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._postgres = backend_of(database_url) == "postgres"
        self._connection: asyncpg.Connection | None = None
        self._held: set[str] = set()
        self._files: dict[str, int] = {}
        self._turn: asyncio.Lock | None = None  # one statement at a time on the lock connection
        self._told = FailingRounds(log, "the leader lock's connection")

    async def leads(self, job: str) -> bool:
        if not self._postgres:
            return self._leads_by_file(job)
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            try:
                leading = await self._leads_by_advisory_lock(job)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                self._told.failed(error)  # every job waits for its next round; told once, not a line each
                await self._drop_connection()
                return False
            self._told.worked()
            return leading

    async def _leads_by_advisory_lock(self, job: str) -> bool:
        if self._connection is None or self._connection.is_closed():
            self._held.clear()  # a new session holds nothing yet
            self._connection = await asyncpg.connect(libpq_dsn(self._url), timeout=CONNECT_TIMEOUT_SECONDS)
            # set once connected, not in the start-up packet, which a pgbouncer refuses such settings in
            await self._connection.execute(SERVER_KEEPALIVES, timeout=STATEMENT_TIMEOUT_SECONDS)
        if job in self._held:
            # the session, and so the lock, is alive
            await self._connection.fetchval("SELECT 1", timeout=STATEMENT_TIMEOUT_SECONDS)
            return True
        if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(job),
                                              timeout=STATEMENT_TIMEOUT_SECONDS):
            self._held.add(job)
            log.info("this node now leads %s", job)
            return True
        return False

    def _leads_by_file(self, job: str) -> bool:
        if job in self._files:
            return True
        path = self._url.removeprefix("sqlite://").split("?", 1)[0]
        if path in ("", ":memory:"):
            self._files[job] = -1
            return True
        lock = Path(f"{path}.{re.sub(r'[^a-z0-9]+', '-', job.lower())}.lock")
        descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._files[job] = descriptor
        return True

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None:
            connection.terminate()

    async def close(self) -> None:
        """Give up every job (closing the session releases its advisory locks)."""
        connection, self._connection = self._connection, None
        self._held.clear()
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)
        for descriptor in self._files.values():
            if descriptor >= 0:
                os.close(descriptor)  # releases the flock
        self._files.clear()
