"""A change of the SLA's targets or calendar recomputes every open ticket's due times and escalations, while the support
desk moves those tickets (PostgreSQL; found in review). The recompute read the open tickets unlocked: a ticket resolved
while it ran got its due times written from the stale copy and its cancelled escalations scheduled again, so staff
were told of a breach of a ticket resolved in time. It now locks the tickets it recomputes (in id order): a transition
waits for it, or it waits for the transition and reads the ticket as it is then."""

from __future__ import annotations

import asyncio

import pytest

from models import Notification
from resolvers import sla
from tests import locks
from tests.api.test_ticket_sla import LEVEL_SET, move, open_ticket
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent writers: PostgreSQL")


async def pending(ticket_id: str) -> list[str]:
    return sorted(n.kind for n in await Notification.filter(ticket_id=ticket_id, sent_at=None, cancelled_at=None))


async def test_a_ticket_resolved_while_the_targets_change_keeps_its_escalations_cancelled(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = await open_ticket(tenant, level=1)
    assert await pending(ticket["id"])  # a level-1 ticket's escalations are scheduled
    pause = locks.pause_before(monkeypatch, sla, "recompute_many")  # the targets' change, held at its first batch
    change = asyncio.create_task(tenant.call("admin", LEVEL_SET, level=1, first=45, resolution=1440,
                                             clock="CALENDAR"))
    await pause.reached_within()
    resolving = asyncio.create_task(move(tenant, ticket["id"], "ACKNOWLEDGED", "INVESTIGATING", "RESOLVED"))
    await locks.until_waiting([resolving])  # the transition waits for the recompute holding the ticket
    pause.release()
    changed, resolved = await asyncio.gather(change, resolving)
    assert changed.errors == [] and resolved["status"] == "RESOLVED", changed.errors
    assert await pending(ticket["id"]) == []  # resolved: nothing to escalate
    again = await tenant.call("admin", LEVEL_SET, level=1, first=30, resolution=1440, clock="CALENDAR")
    assert again.errors == [] and await pending(ticket["id"]) == []  # a later change leaves it alone too
