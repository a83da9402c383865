"""A ticket's escalation sent while the ticket resolves, or while its targets change (PostgreSQL; found in review,
December 2026). The deliverer locks a due escalation, sends it and marks it sent in one transaction; a change of the
ticket reschedules its escalations, which it read unlocked as pending. The resolve's UPDATE waited for the deliverer's
lock and then cancelled the row the deliverer had just marked sent (the record said both sent and cancelled); a
change of targets moved its due time past its sending. The rescheduling now reads the rows locked (so one being sent
is read sent, and left alone) and cancels only a row not yet sent; the deliverer claims only rows not cancelled,
skipping those a change holds: the two are exclusive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from models import Notification
from resolvers import notification
from resolvers.notification import Message
from tests import locks
from tests.api.test_ticket_sla import LEVEL_SET, move, open_ticket
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")

RESOLUTION = ("ticket.resolution.at_risk", "ticket.resolution.breached")


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (ticket id, kind): whatever else is due goes too

    async def send(self, message: Message) -> None:
        self.sent.append((str(message.ticket_id), message.kind))

    def of(self, ticket: str) -> list[str]:
        return [kind for sent_for, kind in self.sent if sent_for == ticket]


async def responded(tenant: Tenant) -> str:
    """A level-1 ticket answered in time: its resolution escalations are pending, its response ones cancelled."""
    ticket = await open_ticket(tenant, level=1)
    await move(tenant, ticket["id"], "ACKNOWLEDGED", "INVESTIGATING")
    assert await records(ticket["id"]) == {kind: (False, False) for kind in RESOLUTION}
    return str(ticket["id"])


async def records(ticket_id: str) -> dict[str, tuple[bool, bool]]:
    """Each resolution escalation's record: (sent, cancelled)."""
    return {row.kind: (row.sent_at is not None, row.cancelled_at is not None)
            for row in await Notification.filter(ticket_id=ticket_id, kind__in=RESOLUTION)}


@pytest.mark.parametrize("sent_meanwhile", [True, False])
async def test_an_escalation_sent_while_its_ticket_resolves_is_not_also_cancelled(
        tenant: Tenant, sent_meanwhile: bool) -> None:
    """The deliverer holds the at-risk escalation (its claim's lock) as the ticket resolves: the resolve waits, and
    once the deliverer has marked it sent, leaves it sent and cancels only the breach still pending. Before the fix
    the sent one was cancelled too. Not sent (the sender failed, the lock let go), it is cancelled with the other."""
    ticket = await responded(tenant)
    held = await Notification.get(ticket_id=ticket, kind=RESOLUTION[0])
    async with locks.another_transaction() as deliverer:
        await deliverer.execute("SELECT 1 FROM notification WHERE id = $1 FOR UPDATE", held.id)
        resolving = asyncio.ensure_future(move(tenant, ticket, "RESOLVED"))
        await locks.until_waiting([resolving])  # the resolve waits for the deliverer's row
        if sent_meanwhile:
            await deliverer.execute("UPDATE notification SET sent_at = now(), attempts = attempts + 1 WHERE id = $1",
                                    held.id)
    resolved = await asyncio.wait_for(resolving, 10)

    assert resolved["status"] == "RESOLVED"
    assert await records(ticket) == {RESOLUTION[0]: (sent_meanwhile, not sent_meanwhile),
                                     RESOLUTION[1]: (False, True)}


async def test_the_deliverer_sends_no_escalation_a_resolve_is_cancelling(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin from the other side: the resolve has cancelled the escalations in its transaction, still open, when
    the deliverer looks for what is due (both now): it skips the rows the resolve holds and sends nothing; once the
    resolve commits they are cancelled, never sent."""
    ticket = await responded(tenant)
    pause = locks.pause_after(monkeypatch, notification, "schedule_escalations_of")  # its cancellation written
    sender = Recording()
    async with locks.held(move(tenant, ticket, "RESOLVED"), pause) as resolving:
        later = datetime.now(UTC) + timedelta(days=365)  # every escalation of the ticket is due by then
        await asyncio.wait_for(notification.deliver_due(sender, now=later), 10)
        assert sender.of(ticket) == []
    assert (await asyncio.wait_for(resolving, 10))["status"] == "RESOLVED"

    await notification.deliver_due(sender, now=later)  # once it has committed: nothing of the ticket is left to send
    assert sender.of(ticket) == []
    assert await records(ticket) == {kind: (False, True) for kind in RESOLUTION}


async def test_an_escalation_sent_while_the_targets_change_keeps_the_due_time_it_was_sent_at(
        tenant: Tenant) -> None:
    """The deliverer holds the at-risk escalation as the level's targets change (every open ticket's escalations
    moved): the change waits for it and then leaves the row it marked sent as sent, due when it was, and moves only
    the breach still pending. Before the fix the change read the row unlocked as pending and moved the sent one's due
    time too: the record said it was sent before it was due."""
    ticket = await responded(tenant)
    held = await Notification.get(ticket_id=ticket, kind=RESOLUTION[0])
    breach = await Notification.get(ticket_id=ticket, kind=RESOLUTION[1])
    async with locks.another_transaction() as deliverer:
        await deliverer.execute("SELECT 1 FROM notification WHERE id = $1 FOR UPDATE", held.id)
        changing = asyncio.ensure_future(tenant.call("admin", LEVEL_SET, level=1, first=45, resolution=2880,
                                                     clock="CALENDAR"))
        await locks.until_waiting([changing])
        await deliverer.execute("UPDATE notification SET sent_at = now(), attempts = attempts + 1 WHERE id = $1",
                                held.id)
    changed = await asyncio.wait_for(changing, 10)

    assert changed.errors == []
    sent, moved = await Notification.get(id=held.id), await Notification.get(id=breach.id)
    assert (sent.sent_at is not None, sent.cancelled_at, sent.due_at) == (True, None, held.due_at)
    assert (moved.sent_at, moved.cancelled_at) == (None, None) and moved.due_at > breach.due_at
