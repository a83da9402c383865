"""Two workers each hand over a greeting to the same patient at the same time (PostgreSQL): the frequency cap holds
across them. The patient was sent one greeting yesterday and the cap is 2 a week, so one more may go; two greetings
long overdue (the service was down) are claimed by two workers, one each (``deliver_due`` with batches of one), and
each is gated with the facts its worker read at its claim, where neither sees the other.

Found in review: each worker counted what had been sent as it read it at its claim, plus what its own batch sent
since, so both greetings went out and the patient got three in a week. Now a greeting takes its place under the cap
before its batch's hand-overs, in a short transaction that serialises on the patient and counts in the database what
is sent or going out (``communication._take_places``): of the two, one goes and the other is refused ``frequency_cap``,
recorded as any refusal at sending is."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta

import pytest

from core.messages import Outgoing, SendFailed
from models import Communication
from resolvers import communication
from resolvers.context import Services
from tests.app.test_frequency_cap import one_short_of_the_cap, status
from tests.app.test_message_outbox import Recorder, log, queue, senders
from tests.app.test_message_review import Clock, local
from tests.conftest import BACKEND
from tests.factories import Tenant
from tests.locks import another_transaction, held, pause_after, pause_before, until_waiting

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")


@pytest.fixture
def outbox_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The outbox's time, before anything else in the shared outbox, so each worker claims only this test's rows."""
    clock = Clock(local(date(1990, 7, 2), time(10)))
    monkeypatch.setattr(communication, "_now", clock)
    return clock


def worker(recorder: Recorder, services: Services) -> asyncio.Future[int]:
    """A worker delivering batches of one message."""
    return asyncio.ensure_future(communication.deliver_due(services, senders(recorder), batch=1))


async def assert_one_went_and_one_was_capped(tenant: Tenant, pid: uuid.UUID, overdue: list[uuid.UUID],
                                             recorders: list[Recorder]) -> None:
    handed = [m.communication_id for r in recorders for m in r.sent if m.communication_id in overdue]
    assert len(handed) == 1, f"{len(handed)} greetings went out, the cap allowed one more"
    (refused,) = set(overdue) - set(handed)
    stored = await Communication.get(id=refused)
    assert (stored.status, stored.refusal, stored.sent_at, stored.body, stored.reserved_at, stored.leased_until) == (
        "refused", "frequency_cap", None, None, None, None)
    on_log = {entry["id"]: entry for entry in await log(tenant, pid)}
    assert (on_log[str(refused)]["status"], on_log[str(refused)]["refusal"]) == ("REFUSED", "FREQUENCY_CAP")
    assert (on_log[str(handed[0])]["status"], on_log[str(handed[0])]["refusal"]) == ("SENT", None)


async def test_a_greeting_going_out_with_one_worker_counts_against_another_workers(
        tenant: Tenant, services: Services, outbox_clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first worker's greeting is held at its hand-over (the gateway has it, and has not answered); the second
    worker's greeting, gated meanwhile, counts it: refused. Before, it went out too."""
    pid, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    first, second = Recorder(), Recorder()
    handing_over = pause_before(monkeypatch, communication, "_hand_over")
    async with held(worker(first, services), handing_over) as first_worker:
        await asyncio.wait_for(worker(second, services), 30)
    await asyncio.wait_for(first_worker, 30)

    assert [m.communication_id for m in first.sent] == [overdue[0]]  # the older one, claimed first
    await assert_one_went_and_one_was_capped(tenant, pid, overdue, [first, second])


async def test_two_workers_taking_a_place_under_the_cap_at_once_take_turns(
        tenant: Tenant, services: Services, outbox_clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both workers take their greeting's place at the same moment: the first has counted and waits to mark its row
    (another writer holds it), the second must wait for the first rather than count without it. Before, neither
    waited for the other and both greetings went out."""
    pid, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    first, second = Recorder(), Recorder()
    claimed = pause_after(monkeypatch, communication, "load_facts")  # the first worker, its greeting claimed
    async with held(worker(first, services), claimed) as first_worker:
        async with another_transaction() as writer:
            await writer.execute("SELECT 1 FROM communication WHERE id = $1 FOR UPDATE", overdue[0])
            claimed.release()
            second_worker = worker(second, services)
            await until_waiting([first_worker, second_worker], sessions=2)  # the first for the row, the second for it
    await asyncio.wait_for(asyncio.gather(first_worker, second_worker), 30)

    await assert_one_went_and_one_was_capped(tenant, pid, overdue, [first, second])


class DownForOneHoldingTheOther:
    """A gateway that refuses the message ``failing`` at once (down a moment: retried later) and holds every other
    until ``release`` is set."""

    def __init__(self, failing: uuid.UUID) -> None:
        self.failing, self.failed, self.release = failing, asyncio.Event(), asyncio.Event()
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        if message.communication_id == self.failing:
            self.failed.set()
            raise SendFailed("http_503")
        await self.release.wait()
        self.sent.append(message)
        return f"gw-{message.communication_id}"


async def test_a_failed_hand_over_gives_its_place_back_before_its_batch_settles(
        tenant: Tenant, services: Services, outbox_clock: Clock) -> None:
    """The first worker's greeting fails at once, while the rest of its batch (a care message) is still with a slow
    gateway: its batch has not settled. The second worker's greeting goes in its place meanwhile; had the failed one
    kept its place until its batch settled, the second would have been refused for a message that did not go. The
    failed one's retry then finds the cap full."""
    pid, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    care = await queue(tenant, pid, due_at=outbox_clock.now - timedelta(days=30))  # claimed with the older greeting
    slow, second = DownForOneHoldingTheOther(overdue[0]), Recorder()
    first_worker = asyncio.ensure_future(communication.deliver_due(services, senders(slow), batch=2))
    try:
        await asyncio.wait_for(slow.failed.wait(), 10)
        await asyncio.wait_for(communication.deliver_due(services, senders(second), batch=1), 30)
    finally:
        slow.release.set()
    await asyncio.wait_for(first_worker, 30)

    assert [m.communication_id for m in second.sent] == [overdue[1]]
    assert [m.communication_id for m in slow.sent] == [care.id]
    assert [await status(m) for m in overdue] == [("queued", None), ("sent", None)]  # the older one retried later...

    outbox_clock.now += timedelta(minutes=5)
    await communication.deliver_due(services, senders(second))
    assert [await status(m) for m in overdue] == [("refused", "frequency_cap"), ("sent", None)]  # ...capped then
