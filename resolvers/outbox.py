"""The machinery both outboxes share: rows due at a moment, claimed without blocking other workers,
retried with backoff, and a loop that sleeps until the next one is due.

An outbox row is written in the transaction of the change that causes it, so a crash loses none, and
its unique key per cause means scheduling the same cause twice never sends twice. Two ways to deliver:
- ``claim_one``: one row locked in the caller's transaction, marked sent in that same transaction (the
  escalation outbox: few rows, each sent once the transaction commits);
- ``claim_batch``: a batch of rows leased in one short transaction (their ``due_at`` moved past the
  lease, their attempts one more), handed over with no transaction open, and settled afterwards (the
  message outbox: thousands of rows, no lock held while the gateways answer). A crash between the two
  leaves the rows queued; they come back when the lease runs out and are sent again (at least once).
  A claim is (row, attempts as claimed): another worker's claim after the lease ran out counts one more,
  so ``hold`` (just before a row is handed over) and every settle compare-and-set on it, and a worker
  whose batch outlasted the lease neither sends a row taken over nor writes over its newer outcome.
  Such a model keeps the lease's end in ``leased_until`` as well (cleared when the row is settled), so that
  whoever moves a claimed row's ``due_at`` (its cause scheduled again) can leave the lease whole: a lease ended
  early is a row another worker claims and sends while the first is still sending it. Nothing the worker writes
  meanwhile brings such a move forward: ``hold`` keeps a later ``due_at``, and the settle a later due time its
  cause set (the message outbox keeps it in ``rescheduled_to``).
``SKIP LOCKED`` on PostgreSQL lets several workers share the work; SQLite has one writer anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tortoise.expressions import F
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from core import rounds
from core.errors import FailingRounds

M = TypeVar("M", bound=Model)
# A delivery round past its budget is cut short (core.rounds); each outbox's loop gives its own (app/notifier.py)
ROUND_BUDGET_SECONDS = 60.0


def due(pending: QuerySet[M], moment: datetime) -> QuerySet[M]:
    """The pending rows due by ``moment``, oldest due first."""
    return pending.filter(due_at__lte=moment).order_by("due_at")


async def claim_one(pending: QuerySet[M], moment: datetime) -> M | None:
    """The next due row, locked for the caller's transaction (skipped by other workers)."""
    return await due(pending, moment).select_for_update(skip_locked=True).first()


async def claim_batch(model: type[M], pending: QuerySet[M], moment: datetime, *, size: int,
                      lease: timedelta) -> list[M]:
    """Up to ``size`` due rows, leased: their ``due_at`` and ``leased_until`` move to ``moment + lease`` and
    their attempts count one more, in a transaction of their own that commits before anything is sent. The
    rows are answered as claimed (``due_at`` unchanged), the caller settles each with its own outcome."""
    async with in_transaction():
        rows = list(await due(pending, moment).select_for_update(skip_locked=True).limit(size))
        if rows:
            await model.filter(id__in=[row.pk for row in rows]).update(
                due_at=moment + lease, leased_until=moment + lease, attempts=F("attempts") + 1)
    for row in rows:  # as they were when claimed (their due time kept for the log), one attempt more
        claimed: Any = row
        claimed.attempts += 1
    return rows


async def hold(pending: QuerySet[M], row: M, attempts: int, until: datetime) -> bool:
    """Renew the lease of one claimed row up to ``until``, just before it is handed over; False when it is no
    longer this worker's: another worker claimed it since (its attempts moved on) or it is no longer pending
    (cancelled meanwhile). The lease then covers the hand-over itself, however long the batch has been out. Its
    ``due_at`` moves to ``until`` only if that is later: its cause may have set a later one meanwhile (found in
    review: the renewal brought it forward, and a worker dying during the hand-over left it to go when the lease
    ended)."""
    async with in_transaction():
        ours = pending.filter(pk=row.pk, attempts=attempts)
        if await ours.update(leased_until=until) != 1:
            return False
        await ours.filter(due_at__lt=until).update(due_at=until)
    return True


def backoff(attempts: int, *, first: timedelta, factor: float = 1.0, at_most: timedelta | None = None) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: ``first``, times ``factor`` each time."""
    wait = first * (factor ** max(0, attempts - 1))
    return wait if at_most is None else min(wait, at_most)


async def next_due(pending: QuerySet[Any]) -> datetime | None:
    row = await pending.order_by("due_at").first()
    return row.due_at if row else None


async def run(deliver: Callable[[], Awaitable[Any]], soonest: Callable[[], Awaitable[datetime | None]],
              wake: asyncio.Event, *, poll_seconds: float, log: logging.Logger,
              now: Callable[[], datetime], budget_seconds: float | None = None) -> None:
    """Deliver what is due, then sleep until the soonest pending row, a poll, or a wake-up, forever. A round
    (``deliver`` and ``soonest``) past ``budget_seconds`` (``ROUND_BUDGET_SECONDS`` if None) is cut short and told
    as a failed one (``core.rounds``): what it handed over and had not recorded goes again (at least once).

    Nothing lives only in memory: the outbox is a table, so a restart resumes where the last process
    stopped and sends what fell due while it was down."""
    told = FailingRounds(log, "outbox delivery")
    while True:
        wake.clear()
        try:
            async with rounds.Budget(ROUND_BUDGET_SECONDS if budget_seconds is None else budget_seconds):
                await deliver()
                soon = await soonest()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database may be briefly away: try again at the next poll
            told.failed(error)
            soon = None
        else:
            told.worked()
        wait = poll_seconds
        if soon is not None:
            wait = min(wait, max(0.0, (soon - now()).total_seconds()))
        with contextlib.suppress(TimeoutError):  # not wait_for, which (Python 3.11) can swallow the shutdown's cancel
            async with asyncio.timeout(wait):
                await wake.wait()
