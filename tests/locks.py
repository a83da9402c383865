"""Race tests on PostgreSQL: another writer's transaction, and going on once the requests raced are queued behind a
lock it holds.

A fixed pause (a second) let go early on a loaded machine, before a request had reached the lock, so the race was not
run and the test passed without the fix it proves; on an idle machine it cost the second. The database tells when a
session waits for a lock, so the test waits for exactly that, and fails at once if a request finished instead of
waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from tortoise import connections

# Sessions of this test database waiting for a lock: rows, unique keys, advisory locks. The suite runs one test at a
# time, so in its own database every such session is one the test started.
WAITING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
           "AND pid <> pg_backend_pid()")


@asynccontextmanager
async def another_transaction() -> AsyncIterator[asyncpg.Connection]:
    """Another writer: a session of its own with its transaction open in the block, committed at its end (rolled
    back on an error), and closed whatever happens."""
    other = await _connect()
    try:
        async with other.transaction():
            yield other
    finally:
        await other.close()


async def until_waiting(raced: Iterable[asyncio.Future[Any]], sessions: int = 1, within: float = 10.0) -> None:
    """Returns once ``sessions`` sessions wait for a lock; fails if one of ``raced`` ended first (it did not wait)
    or nobody waited ``within`` seconds."""
    raced = list(raced)
    watcher = await _connect()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (waiting := await watcher.fetchval(WAITING)) < sessions:
            ended = [task for task in raced if task.done()]
            assert not ended, f"a request raced did not wait for the lock: {ended[0]!r}"
            assert loop.time() < deadline, f"{waiting} of {sessions} sessions waited for the lock"
            await asyncio.sleep(0.01)
    finally:
        await watcher.close()


async def _connect() -> asyncpg.Connection:
    """A session of its own on the test database (the pool's may all be taken, or waiting)."""
    test_database = connections.get("default")
    return await asyncpg.connect(host=test_database.host, port=test_database.port, user=test_database.user,
                                 password=test_database.password, database=test_database.database)
