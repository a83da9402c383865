"""A ticket's escalation sent while the ticket resolves (PostgreSQL; found in review, December 2026). The deliverer
locks a due escalation, sends it and marks it sent in one transaction; the resolve cancels the ticket's pending
escalations, which it read unlocked as pending. Its UPDATE waited for the deliverer's lock and then cancelled the row
the deliverer had just marked sent: the record said both sent and cancelled. The cancellation now cancels only a row
not yet sent (``... WHERE sent_at IS NULL``, which PostgreSQL checks again on the row as the deliverer left it), and
the deliverer claims only rows not cancelled, skipping one a resolve holds: the two are exclusive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from models import Notification
from resolvers import notification
from resolvers.notification import Message
from tests import locks
from tests.api.test_ticket_sla import move, open_ticket
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")

RESOLUTION = ("ticket.resolution.at_risk", "ticket.resolution.breached")


class Recording:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    async def send(self, message: Message) -> None:
        self.kinds.append(message.kind)


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
        await locks.until_waiting([resolving])  # the resolve's cancellation waits for the deliverer's row
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
        assert await asyncio.wait_for(notification.deliver_due(sender, now=later), 10) == 0
    assert (await asyncio.wait_for(resolving, 10))["status"] == "RESOLVED"

    assert sender.kinds == []
    assert await records(ticket) == {kind: (False, True) for kind in RESOLUTION}
