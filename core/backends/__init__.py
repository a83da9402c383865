"""Tortoise's SQLite and asyncpg clients, with transactions that a cancelled task cannot leave half open.

A task is cancelled when a client goes away, a request runs out of its time budget, graphql-core
cancels a failed field's siblings, or the service stops. Tortoise's transaction contexts take the
connection (SQLite: the one connection's lock; PostgreSQL: a pooled connection) before BEGIN and
give it back only in ``__aexit__``; a cancellation landing on BEGIN skips ``__aexit__``, and on
SQLite every later statement then waits for that lock for ever. Here BEGIN, COMMIT and ROLLBACK run
to their end whatever happens to the task that asked for them, and a cancelled start gives back what
it took. The cancellation itself still reaches the task, once the database is in a clean state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

from tortoise.exceptions import TransactionManagementError

T = TypeVar("T")

# The database connections a background loop's round holds (``core.rounds.Budget``): the PostgreSQL client adds each
# connection it hands to the round and takes it out once given back, and a round over its budget closes those left.
# None outside a round (requests: their ROLLBACK or release closes a silent connection, see core/backends/asyncpg.py).
round_connections: ContextVar[set[Any] | None] = ContextVar("round_connections", default=None)


async def run_to_end(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if this task is cancelled meanwhile; then raise the cancellation."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        task.exception()  # retrieved, so asyncio does not warn about it; the cancellation wins
        raise asyncio.CancelledError
    return task.result()


async def finish(client: Any, exc_type: type[BaseException] | None) -> None:
    """Commit or roll back as Tortoise's ``__aexit__`` does, to the end."""
    if client._finalized:
        return
    if exc_type is None:
        await run_to_end(client.commit())
    elif exc_type is not TransactionManagementError:  # a failed transaction cannot be rolled back
        await run_to_end(client.rollback())
