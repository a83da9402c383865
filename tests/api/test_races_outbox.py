"""A worker settles messages while their cause schedules them again, at the same moment (PostgreSQL), many rounds:
the worker's writes and the cause's ``schedule_many`` lock the same rows, and must take them in the same order or
deadlock (one of the two then fails: the batch's outcome, or the cause's transaction, is lost). Each round a batch of
messages is out with a worker, its gateway answers, and the cause moves them all three hours later as the worker
writes what the gateway said; the round ends with both done and each message where the rules put it, whichever
came first: a failed hand-over is retried at the cause's later time; a sent message stays sent, with its claim's due
time. The batch's messages are handed over from the highest id to the lowest (their due times run the other way),
so the worker answers them in that order.

Found by these tests: the settle's lock in id order was never taken (Tortoise leaves FOR UPDATE out of a values_list),
so a cause that committed between the settle's read and its write lost its time to the backoff (2 or 3 rounds of 20
retried a minute later); and the worker recorded what was sent in the order the answers came, which deadlocked with
the cause locking in id order (3 to 9 rounds of 20: one of the two failed)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from core.messages import Outgoing, SendFailed
from models import Communication
from resolvers import communication
from resolvers.context import Services
from tests.app.test_message_outbox import queue, reachable
from tests.app.test_message_review import Clock, Held, all_channels, flush, local
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")

ROUNDS = 20
BATCH = 10  # messages out with the worker at once
LATER = timedelta(hours=3)  # where the cause moves them

def delay(round_: int) -> float:
    """How long after the gateway answers the cause starts, by round: 0 to 10 ms, so that it comes at each point of
    the worker's writes in some round."""
    return round_ % 20 * 0.0005


class HeldThenDown(Held):
    """A gateway that takes each message, and when told to answer, answers that it is down (a transient failure:
    the worker settles a retry)."""

    async def send(self, message: Outgoing) -> str | None:
        await super().send(message)
        raise SendFailed("http_503")


async def one_round(tenant: Tenant, services: Services, pid: uuid.UUID, clock: Clock, gateway: Held,
                    wait: float) -> tuple[list[Communication], list[Any]]:
    """A batch out with a worker; its gateway answers, and ``wait`` seconds later the cause schedules every message
    again, ``LATER``; answers the messages as queued, and what the worker and the cause ended with (an exception if one
    failed)."""
    messages = [await queue(tenant, pid, due_at=clock.now - timedelta(seconds=n + 1)) for n in range(BATCH)]
    worker = asyncio.create_task(communication.deliver_due(services, all_channels(gateway)))
    await gateway.handed_over(BATCH)

    async def scheduled_again() -> None:
        await asyncio.sleep(wait)
        async with in_transaction():
            await communication.schedule_many(tenant.id, [communication.Request(
                m.key, m.cause, pid, clock.now + LATER, {"patient_name": "Li Na", "time": "13:00"})
                for m in messages])

    gateway.answer(later_ones_too=True)
    ended = await asyncio.wait_for(asyncio.gather(worker, scheduled_again(), return_exceptions=True), 60)
    return messages, list(ended)


def failures(ended: list[Any]) -> list[str]:
    return [f"{'worker' if n == 0 else 'cause'}: {type(e).__name__}: {e}" for n, e in enumerate(ended)
            if isinstance(e, BaseException)]


@pytest.fixture
def outbox_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The outbox's time, before anything else in the shared outbox; it stands still (a retry is due a minute later,
    after it, so each round's worker claims only its own batch)."""
    clock = Clock(local(date(1990, 6, 1), time(10)))
    monkeypatch.setattr(communication, "_now", clock)
    return clock


async def test_a_retry_settled_as_its_cause_moves_it(tenant: Tenant, services: Services, outbox_clock: Clock) -> None:
    """The gateway is down: the worker settles each message as a retry (``_settle``) while the cause moves them. The
    retry goes at the cause's time, whichever came first (the cause's time kept in ``rescheduled_to`` for the settle,
    or the settled row moved by the cause)."""
    clock = outbox_clock
    pid = await reachable(tenant)
    await flush(services)
    bad = []
    for round_ in range(ROUNDS):
        messages, ended = await one_round(tenant, services, pid, clock, HeldThenDown(), delay(round_))
        rows = await Communication.filter(id__in=[m.id for m in messages]).order_by("id")
        wrong = [(r.status, r.due_at - clock.now, r.attempts, r.last_error, r.leased_until, r.rescheduled_to)
                 for r in rows if (r.status, r.due_at, r.attempts, r.last_error, r.leased_until, r.rescheduled_to)
                 != ("queued", clock.now + LATER, 1, "http_503", None, None)]
        if failures(ended) or wrong:
            bad.append((round_, failures(ended), wrong))
    assert not bad, f"{len(bad)}/{ROUNDS} rounds: {bad}"


async def test_a_hand_over_recorded_as_its_cause_moves_it(tenant: Tenant, services: Services,
                                                         outbox_clock: Clock) -> None:
    """The gateway takes every message: the worker records each as sent as its answer comes (several answers in one
    write, ``_write_sent``) while the cause moves them. Each stays sent as it was claimed, once."""
    clock = outbox_clock
    pid = await reachable(tenant)
    await flush(services)
    bad = []
    for round_ in range(ROUNDS):
        gateway = Held()
        messages, ended = await one_round(tenant, services, pid, clock, gateway, delay(round_))
        rows = await Communication.filter(id__in=[m.id for m in messages]).order_by("id")
        claimed = {m.id: m.due_at for m in messages}
        wrong = [(r.status, r.due_at - clock.now, r.gateway_message_id, r.leased_until, r.rescheduled_to)
                 for r in rows if (r.status, r.due_at, r.gateway_message_id, r.leased_until, r.rescheduled_to)
                 != ("sent", claimed[r.id], f"gw-held-{r.id}", None, None)]
        if failures(ended) or wrong or sorted(gateway.handed) != sorted(claimed):
            bad.append((round_, failures(ended), wrong))
    assert not bad, f"{len(bad)}/{ROUNDS} rounds: {bad}"
