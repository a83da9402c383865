"""Tortoise's asyncpg client with a transaction that cancellation cannot leave holding a pooled connection, and
pooled connections proved alive before they are handed over after a pause.

A pooled connection can be dead without knowing it: after a failover that moved the server's address, or a
firewall's or load balancer's idle timeout, nothing tells the client; its next statement is answered by a reset
(or by nothing), and the request that sent it fails. So a connection idle for more than ``PROBE_AFTER_IDLE_SECONDS``
answers a ``SELECT 1`` (within ``PROBE_TIMEOUT_SECONDS``) before it is handed over, and one that does not is closed
and another taken, a new one in the end (HikariCP's check on borrow). Under load connections are rarely idle that
long, so the check costs a round trip only after a pause. A connection the server ends itself (a restart, an
administrator's ``pg_terminate_backend``, a pooler's timeout) is told so (a FATAL "terminating connection"), and
closed a moment later, when the backend has exited; once closed, asyncpg's pool replaces it. In between, asyncpg
holds it open but unusable: the message, unasked for, leaves its protocol waiting for the end of an operation
nobody started, and every statement fails at once ("cannot switch to state ...; another operation is in
progress"). So a pooled connection to which the server said anything while it sat in the pool (it is asked
nothing there) is proved alive before it is handed over too, however short its pause (found as a sign-in answered
500 right after every connection was killed, now and then).
A server fallen silent (its machine gone) answers nothing: a COMMIT, ROLLBACK or release unanswered for
``FINISH_TIMEOUT_SECONDS`` closes its connection rather than hold the request (and the pool's slot) for good. A
background loop's round over its budget (``core.rounds``) closes the connections it holds at once: nothing is waited
for on them, and the pool connects anew in their place.

Tortoise picks its migration schema editor by the client's module name, hence "asyncpg" in it."""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import PoolConnectionWrapper, TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections

from core.backends import finish, round_connections, run_to_end

PROBE_AFTER_IDLE_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 5.0
FINISH_TIMEOUT_SECONDS = 5.0  # a COMMIT, ROLLBACK or release unanswered by then: the connection is closed
# a sign of the database being unreachable, not of a statement at fault: the connection broke or was refused,
# the server shut down or is starting (SQLSTATE class 08 and 57P01-57P03)
_LOST_STATES = ("57P01", "57P02", "57P03")


class Connection(asyncpg.Connection):
    __slots__ = ("pooled", "released_at", "told_while_pooled")

    def __init__(self, protocol: Any, transport: asyncio.Transport, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, transport, *args, **kwargs)
        self.released_at = time.monotonic()
        self.pooled = True  # in the pool, nobody's (connected: nothing asked of it yet)
        self.told_while_pooled = False  # the server said something meanwhile
        transport.set_protocol(_Overheard(protocol, self))


class _Overheard(asyncio.Protocol):
    """asyncpg's protocol of a connection, as its transport calls it: notes on the connection whatever the server
    sends while the connection sits in the pool (``Connection.told_while_pooled``), before asyncpg reads it."""

    def __init__(self, protocol: Any, connection: Connection) -> None:
        self._protocol = protocol
        self._connection = weakref.ref(connection)  # as asyncpg's protocol holds it: no cycle keeps either alive

    def data_received(self, data: bytes) -> None:
        connection = self._connection()
        if connection is not None and connection.pooled:
            connection.told_while_pooled = True
        self._protocol.data_received(data)

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) says the database could not be reached."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (ConnectionError, asyncpg.PostgresConnectionError)):
            return True
        if getattr(seen, "sqlstate", None) in _LOST_STATES:
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):  # used after it was lost
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _held(connection: Any) -> Any:
    """``connection``, noted as held by the background loop's round under way, if any (``round_connections``)."""
    held = round_connections.get()
    if held is not None:
        held.add(connection._con)
    return connection


async def acquire_alive(pool: asyncpg.Pool) -> Any:
    """A pooled connection, proved alive first if it has been idle a while, or the server said anything to it
    meanwhile (see the module's docstring)."""
    for _ in range(pool.get_max_size()):
        connection = await pool.acquire()
        raw = connection._con
        if not _taken(raw) and time.monotonic() - raw.released_at < PROBE_AFTER_IDLE_SECONDS:
            return _held(connection)
        try:
            await connection.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_SECONDS)
        except BaseException as error:
            raw.terminate()  # dead (or the probe cut short): the pool connects anew in its place
            await pool.release(connection)
            if isinstance(error, Exception):
                continue
            raise
        return _held(connection)
    connection = await pool.acquire()  # every holder tried: this one connects anew
    _taken(connection._con)
    return _held(connection)


def _taken(raw: Connection) -> bool:
    """Note a pooled connection as taken from the pool (what the server sends from now on answers what is asked);
    whether the server said anything to it while it sat there."""
    raw.pooled = False
    told, raw.told_while_pooled = raw.told_while_pooled, False
    return told


async def release(pool: asyncpg.Pool, connection: Any) -> None:
    """Give a connection back, noting when. A statement cut short (a request over its budget) leaves asyncpg waiting
    for the cancel request it sends on a connection of its own, and a server fallen silent answers neither: past
    ``FINISH_TIMEOUT_SECONDS`` asyncpg closes the connection instead, and the pool connects anew in its place."""
    raw = connection._con
    if raw is not None:  # noted first: once the pool's, another task may acquire it before this one runs again
        raw.released_at = time.monotonic()
        raw.pooled = True  # an answer still due (a cancelled statement's, a ROLLBACK's): proved before its next use
    try:
        await pool.release(connection, timeout=FINISH_TIMEOUT_SECONDS)
    except TimeoutError:
        return  # terminated by asyncpg
    finally:
        held = round_connections.get()
        if held is not None:
            held.discard(raw)  # the pool's again: no longer the round's to close


class PooledConnection(PoolConnectionWrapper):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.connection = await acquire_alive(self.client._pool)
        return self.connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await release(self.client._pool, self.connection)


class PooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        pool = self.client._parent._pool
        self.client._connection = await acquire_alive(pool)  # asyncpg gives a cancelled acquire back itself
        try:
            await run_to_end(self.client.begin())
        except BaseException:
            await run_to_end(release(pool, self.client._connection))  # release rolls back an open transaction
            raise
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        # A server fallen silent answers neither COMMIT nor ROLLBACK, which run to their end whatever happens to the
        # task: closing the connection ends them (what the server had not committed is rolled back).
        silent = asyncio.get_running_loop().call_later(FINISH_TIMEOUT_SECONDS, self.client._connection.terminate)
        try:
            await finish(self.client, exc_type)
        finally:
            silent.cancel()
            if self.client._parent._pool:
                await run_to_end(release(self.client._parent._pool, self.client._connection))
            get_connections().reset(self.token)


class Postgres(AsyncpgDBClient):
    connection_class = Connection

    def acquire_connection(self) -> Any:
        return PooledConnection(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContext:
        return PooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = Postgres
