"""Tortoise's asyncpg client with a transaction that cancellation cannot leave holding a pooled connection.

Tortoise picks its migration schema editor by the client's module name, hence "asyncpg" in it."""

from __future__ import annotations

from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections

from core.backends import finish, run_to_end


class PooledTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        pool = self.client._parent._pool
        self.client._connection = await pool.acquire()  # asyncpg gives a cancelled acquire back itself
        try:
            await run_to_end(self.client.begin())
        except BaseException:
            await run_to_end(pool.release(self.client._connection))  # release rolls back an open transaction
            raise
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            await finish(self.client, exc_type)
        finally:
            if self.client._parent._pool:
                await run_to_end(self.client._parent._pool.release(self.client._connection))
            get_connections().reset(self.token)


class Postgres(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return PooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = Postgres
