"""A time budget for each round of a background loop (the outboxes, the audit sealer and checkpoint signer, the sweeps,
the metrics gauges).

A database server that falls silent (its machine gone, packets dropped, no reset) answers nothing, and a statement
sent to it waits until the kernel gives the connection up (``net.ipv4.tcp_retries2``, about 15 minutes by default).
A request has its budget (``app.graphql``); a loop's round has this one::

    async with rounds.Budget(ROUND_BUDGET_SECONDS):
        await work()

Past its budget the round is cancelled and the PostgreSQL connections it holds are closed at once (a statement, a
COMMIT or ROLLBACK waiting on them fails there and then, and the pool connects anew in their place: none is given
back busy, none holds a pool slot), and the ``async with`` raises ``RoundOverBudget``, which the loop tells as any
failed round (``core.errors.FailingRounds``: its kind and place, nothing else). What the round had committed stays;
its open transaction is rolled back by the server when its connection closes, so each round's writes must be whole
transactions, as the loops' are. The next round starts as usual once the loop's pause is over.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from core.backends import round_connections


class RoundOverBudget(TimeoutError):
    """A background loop's round ran past its budget: it was cancelled and its database connections closed."""


class Budget:
    """``async with Budget(seconds)``: the block is cancelled after ``seconds`` and ``RoundOverBudget`` raised, the
    database connections it (or a task it started) holds closed first. A cancellation from outside (the service
    stopping) still raises ``CancelledError``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._held: set[Any] = set()

    async def __aenter__(self) -> Budget:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a round's budget needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._token = round_connections.set(self._held)
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()
        for connection in list(self._held):  # what waits on them fails at once, a ROLLBACK included
            connection.terminate()
        self._held.clear()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._timer.cancel()
        round_connections.reset(self._token)
        if self.expired and self._task.uncancel() <= self._cancelling:
            # the cancellation was ours: whatever the cut-short round raised (its connection closed under it), it
            # is told as over its budget
            raise RoundOverBudget(f"the round took longer than its budget of {self.seconds:g} s") from None
