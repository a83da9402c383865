"""Race tests on PostgreSQL: a request held at a step of the code, another writer's transaction, and going on once
the requests raced are queued behind a lock it holds.

A fixed wait (a second) let go early on a loaded machine, before a request had reached the lock, so the race was not
run and the test passed without the fix it proves; on an idle machine it cost the second. The database tells when a
session waits for a lock, so the test waits for exactly that, and fails at once if a request finished instead of
waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
from tortoise import connections

# Sessions of this test database waiting for a lock: rows, unique keys, advisory locks. The suite runs one test at a
# time, so in its own database every such session is one the test started.
WAITING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
           "AND pid <> pg_backend_pid()")

T = TypeVar("T")


class Pause:
    """A step of the code a request is held at: its first call waits there until released; the calls after it go
    through (the other side of the race, the twins afterwards)."""

    def __init__(self) -> None:
        self._reached, self._released = asyncio.Event(), asyncio.Event()

    async def hold(self) -> bool:
        """Holds the first call until released; answers whether this call was the one held."""
        if self._reached.is_set():
            return False
        self._reached.set()
        await self._released.wait()
        return True

    async def reached_within(self, seconds: float = 10.0) -> None:
        await asyncio.wait_for(self._reached.wait(), seconds)

    def release(self) -> None:
        self._released.set()


def pause_before(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Pause:
    """A pause before the async function ``owner.<name>`` runs."""
    pause, original = Pause(), getattr(owner, name)

    async def paused(*args: Any, **kwargs: Any) -> Any:
        await pause.hold()
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, name, paused)
    return pause


def pause_after(monkeypatch: pytest.MonkeyPatch, owner: object, name: str,
                then: Callable[[Any], Any] | None = None) -> Pause:
    """A pause once the async function ``owner.<name>`` has answered; ``then`` changes what the held call answers."""
    pause, original = Pause(), getattr(owner, name)

    async def paused(*args: Any, **kwargs: Any) -> Any:
        answer = await original(*args, **kwargs)
        if await pause.hold() and then is not None:
            answer = then(answer)
        return answer

    monkeypatch.setattr(owner, name, paused)
    return pause


def pause_before_entering(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Pause:
    """A pause before the async context manager ``owner.<name>(...)`` is entered."""
    pause, original = Pause(), getattr(owner, name)

    @asynccontextmanager
    async def paused(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await pause.hold()
        async with original(*args, **kwargs) as entered:
            yield entered

    monkeypatch.setattr(owner, name, paused)
    return pause


@asynccontextmanager
async def held(request: Awaitable[T], pause: Pause) -> AsyncIterator[asyncio.Future[T]]:
    """``request`` started and held at ``pause``; the block runs meanwhile and releases it (leaving the block releases
    it too, so a failed assert leaves nothing waiting). Yields the answer to come."""
    answer = asyncio.ensure_future(request)
    try:
        await pause.reached_within()
        yield answer
    finally:
        pause.release()


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
