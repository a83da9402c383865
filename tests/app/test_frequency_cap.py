"""The frequency cap at sending, one worker at a time (SQLite and PostgreSQL): greetings and campaign messages, at
most ``non_care_cap`` a patient within ``non_care_cap_days``. A greeting takes its place under the cap in the database
before its batch's hand-overs (``communication._take_places``, for workers running at once: tests/api/
test_races_frequency_cap.py); one worker decides as it did before, whether the greetings come in one batch or in
several, a failed hand-over's retry is capped by what went out meanwhile, and a worker that died before its hand-over
holds no place once its lease has run out.

The outbox's clock is set before anything else in the shared outbox (1990), so each worker claims only this test's
rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta

import pytest

from core.messages import SendFailed
from models import Communication
from resolvers import communication
from resolvers.context import Services
from tests.app.test_message_outbox import Recorder, purposes, queue, reachable, senders, settings_of
from tests.app.test_message_review import Clock, flush, local
from tests.conftest import BACKEND, SqlCounter
from tests.factories import Tenant
from tests.locks import pause_before


@pytest.fixture
def outbox_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The outbox's time, before anything else in the shared outbox."""
    clock = Clock(local(date(1990, 7, 2), time(10)))
    monkeypatch.setattr(communication, "_now", clock)
    return clock


async def one_short_of_the_cap(tenant: Tenant, services: Services, clock: Clock) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A patient sent one greeting yesterday, the cap 2 a week, and two greetings overdue for them (due 20 and 10 days
    ago: neither counts the other, nor yesterday's, when queued, so both wait); answers the patient and the two."""
    pid = await reachable(tenant)
    await purposes(pid, "care", "greeting")
    await settings_of(tenant, non_care_cap=2, non_care_cap_days=7)
    await flush(services)
    clock.now -= timedelta(days=1)
    yesterday = await queue(tenant, pid, cause="birthday_greeting", due_at=clock.now)
    await communication.deliver_due(services, senders(Recorder()))
    clock.now += timedelta(days=1)
    assert (await Communication.get(id=yesterday.id)).status == "sent"
    overdue = [await queue(tenant, pid, cause="birthday_greeting", due_at=clock.now - timedelta(days=days))
               for days in (20, 10)]
    assert [await status(m.id) for m in overdue] == [("queued", None)] * 2
    return pid, [m.id for m in overdue]


async def status(message_id: uuid.UUID) -> tuple[str, str | None]:
    stored = await Communication.get(id=message_id)
    return stored.status, stored.refusal


@pytest.mark.parametrize("batch", [1, communication.BATCH])
async def test_one_worker_sends_up_to_the_cap_and_refuses_the_rest(
        tenant: Tenant, services: Services, outbox_clock: Clock, batch: int) -> None:
    """The older greeting goes, the newer one is refused ``frequency_cap``, and a care message is never capped:
    whether the greetings come in one batch or one batch each (as before)."""
    pid, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    care = await queue(tenant, pid, due_at=outbox_clock.now - timedelta(days=5))
    recorder = Recorder()

    await communication.deliver_due(services, senders(recorder), batch=batch)

    assert [await status(m) for m in (*overdue, care.id)] == [("sent", None), ("refused", "frequency_cap"),
                                                               ("sent", None)]
    assert sorted(m.communication_id for m in recorder.sent) == sorted([overdue[0], care.id])
    assert await Communication.filter(id__in=[*overdue, care.id], reserved_at__not_isnull=True).count() == 0


async def test_a_failed_hand_over_leaves_its_place_and_its_retry_is_capped(
        tenant: Tenant, services: Services, outbox_clock: Clock) -> None:
    """The older greeting's hand-over fails (the gateway is down a moment): the newer one, in the next batch, goes in
    its place; the older one's retry, a minute later, finds the cap full."""
    _, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    recorder = Recorder(failures=[SendFailed("http_503")])

    await communication.deliver_due(services, senders(recorder), batch=1)
    assert [await status(m) for m in overdue] == [("queued", None), ("sent", None)]
    assert (await Communication.get(id=overdue[0])).reserved_at is None

    outbox_clock.now += timedelta(minutes=5)
    await communication.deliver_due(services, senders(recorder), batch=1)
    assert [await status(m) for m in overdue] == [("refused", "frequency_cap"), ("sent", None)]
    assert [m.communication_id for m in recorder.sent] == [overdue[1]]


async def test_a_worker_that_died_before_its_hand_over_holds_no_place_once_its_lease_ran_out(
        tenant: Tenant, services: Services, outbox_clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker takes the older greeting's place and dies before handing it over. Once its lease has run out the
    newer greeting goes, and the older one, claimed again, counts it and is refused: the cap holds, and the dead
    worker's place was not held for good."""
    _, overdue = await one_short_of_the_cap(tenant, services, outbox_clock)
    handing_over = pause_before(monkeypatch, communication, "_hand_over")
    dying = asyncio.ensure_future(communication.deliver_due(services, senders(Recorder()), batch=1))
    await handing_over.reached_within()
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    handing_over.release()
    assert (await Communication.get(id=overdue[0])).reserved_at is not None

    outbox_clock.now += communication.LEASE + timedelta(minutes=1)
    recorder = Recorder()
    await communication.deliver_due(services, senders(recorder), batch=1)

    assert [await status(m) for m in overdue] == [("refused", "frequency_cap"), ("sent", None)]
    assert [m.communication_id for m in recorder.sent] == [overdue[1]]


async def test_a_batch_takes_its_greetings_places_in_a_few_statements_whatever_their_number(
        tenant: Tenant, services: Services, outbox_clock: Clock, sql_counter: SqlCounter) -> None:
    """A batch's greetings and campaign messages take their places together, in one transaction of a few statements
    (the locks on PostgreSQL, the count, the mark), as many for three greetings as for one; a batch of care messages
    takes none. A campaign's messages do not each pay a transaction of their own."""
    pids = [await reachable(tenant) for _ in range(3)]
    for pid in pids:
        await purposes(pid, "care", "greeting")
    await flush(services)
    due = outbox_clock.now - timedelta(hours=1)
    taking = {1: [], 3: [], 0: []}
    for greetings in (1, 3, 0):
        care = [await queue(tenant, pid, due_at=due) for pid in pids]
        greeted = [await queue(tenant, pid, cause="birthday_greeting", due_at=due) for pid in pids[:greetings]]
        start = len(sql_counter.statements)
        await communication.deliver_due(services, senders(Recorder()))
        assert [await status(m.id) for m in (*care, *greeted)] == [("sent", None)] * (3 + greetings)
        taking[greetings] = [s for s in sql_counter.statements[start:] if "pg_advisory_xact_lock" in s
                             or '"reserved_at">' in s or 'SET "reserved_at"=' in s]
        outbox_clock.now += timedelta(days=8)  # the cap's week over: the next greetings count none of these
        due = outbox_clock.now - timedelta(hours=1)
    assert [len(taking[n]) for n in (1, 3, 0)] == [2 if BACKEND == "sqlite" else 3] * 2 + [0], taking
