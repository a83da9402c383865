"""Two people working the same ticket at the same moment (PostgreSQL): two agents resolving it, two supervisors
assigning it. The second waits for the first's row lock and then reads the ticket as the first left it: one
resolution (the second move is refused as illegal, nothing of it written), and the assignee is the one the timeline's
last assignment names."""

from __future__ import annotations

import asyncio

import pytest

import resolvers.ticket as ticket_module
from models import AuditEvent, Ticket, TicketEvent
from resolvers import sla
from tests import locks
from tests.api.test_ticket_sla import move, open_ticket
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent writers: PostgreSQL")

RESOLVE = """mutation($id: ID!, $resolution: String) {
  ticketTransition(id: $id, to: RESOLVED, resolution: $resolution) { id status version } }"""
ASSIGN = "mutation($id: ID!, $to: ID) { ticketAssign(id: $id, assigneeId: $to) { id assignee { id } } }"


async def test_two_agents_resolving_one_ticket_at_once_resolve_it_once(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = await open_ticket(tenant, departmentId=str(tenant.departments["A"].id))
    await move(tenant, ticket["id"], "ACKNOWLEDGED", "INVESTIGATING")
    updates_before = await AuditEvent.filter(resource_id=ticket["id"], action="update", outcome="allowed").count()
    pause = locks.pause_before(monkeypatch, sla, "recompute")  # the first resolve, holding the ticket's lock
    first = asyncio.create_task(tenant.call("support_agent", RESOLVE, id=ticket["id"], resolution="Refunded."))
    await pause.reached_within()
    second = asyncio.create_task(tenant.call("department_head", RESOLVE, id=ticket["id"], resolution="Explained."))
    await locks.until_waiting([second])
    pause.release()
    won, lost = await asyncio.gather(first, second)
    assert won.errors == [] and won.data["ticketTransition"]["status"] == "RESOLVED", won.errors
    assert lost.codes == ["BAD_USER_INPUT"] and lost.errors[0]["extensions"]["reason"] == "illegal_transition"
    row = await Ticket.get(id=ticket["id"])
    assert row.status == "resolved" and row.version == won.data["ticketTransition"]["version"]
    resolved = await TicketEvent.filter(ticket_id=ticket["id"], kind="transition", to_status="resolved").count()
    assert resolved == 1
    assert await AuditEvent.filter(resource_id=ticket["id"], action="update",
                                   outcome="allowed").count() == updates_before + 1


async def test_two_supervisors_assigning_one_ticket_at_once_leave_the_last_assignment_in_force(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = await open_ticket(tenant, departmentId=str(tenant.departments["A"].id))
    pause = locks.pause_before(monkeypatch, ticket_module, "add_event")  # the first assignment, holding the lock
    first = asyncio.create_task(tenant.call("support_agent", ASSIGN, id=ticket["id"],
                                            to=str(tenant.staff_ids["nurse"])))
    await pause.reached_within()
    second = asyncio.create_task(tenant.call("department_head", ASSIGN, id=ticket["id"],
                                             to=str(tenant.staff_ids["doctor"])))
    await locks.until_waiting([second])
    pause.release()
    one, two = await asyncio.gather(first, second)
    assert one.errors == [] and two.errors == [], (one.errors, two.errors)
    row = await Ticket.get(id=ticket["id"])
    events = await TicketEvent.filter(ticket_id=ticket["id"], kind="assignment").order_by("occurred_at", "id")
    assert [e.to_staff_id for e in events] == [tenant.staff_ids["nurse"], tenant.staff_ids["doctor"]]
    assert row.assignee_id == tenant.staff_ids["doctor"] == events[-1].to_staff_id
