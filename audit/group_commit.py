"""Group commit: concurrent requests' audit records go to the database together, in one transaction.

Each caller waits until its own records are durable, so no response leaves before its audit
trail is written; but while one transaction is being written, the records of every request that
arrives meanwhile gather and go in the next one, instead of one transaction (and one turn on the
chain-head lock) each. Without contention this costs what a plain append costs.

A batch that fails is written again one request at a time. It may have been committed all the same (on PostgreSQL,
a connection lost after the server committed and before its answer was read): the events keep their ids
(``AuditRecord.id``) and the writer skips those already on the chain, so none is written twice, and none is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from audit import writer
from audit.events import AuditRecord

_Waiter = tuple[Sequence[AuditRecord], asyncio.Future[None]]


class GroupCommit:
    def __init__(self) -> None:
        self._waiting: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)  # a cancelled request must not cancel the others' commit

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await writer.append([record for records, _ in batch for record in records])
            except Exception:
                await self._one_by_one(batch)  # one bad record must not fail its neighbours; none is written twice
            else:
                for _, done in batch:
                    done.set_result(None)

    @staticmethod
    async def _one_by_one(batch: list[_Waiter]) -> None:
        for records, done in batch:
            try:
                await writer.append(records)
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
