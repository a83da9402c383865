"""Tortoise's SQLite client with a transaction that cancellation cannot leave holding the connection's lock.

Tortoise picks its migration schema editor by the client's module name, hence "sqlite" in it."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.connection import get_connections

from core.backends import finish, run_to_end


class SqliteTransaction(SqliteTransactionContext):
    async def __aenter__(self) -> Any:
        await self._trxlock.acquire()  # a cancelled wait takes nothing
        try:
            await run_to_end(self._begin())
        except BaseException:
            await run_to_end(self._rollback_if_begun())
            self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection

    async def _begin(self) -> None:
        await self.ensure_connection()
        await self.connection.begin()

    async def _rollback_if_begun(self) -> None:
        if self.connection._connection is not None and self.connection._connection.in_transaction:
            await self.connection._connection.rollback()

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            await finish(self.connection, exc_type)
        finally:
            get_connections().reset(self.token)
            self._trxlock.release()


class Sqlite(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransaction(SqliteTransactionWrapper(self), self._lock)


client_class = Sqlite
