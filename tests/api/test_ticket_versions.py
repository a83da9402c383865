"""Tickets under optimistic concurrency (``version``), sorted lists with their count, and tickets waiting on
the patient shown as paused: never breached with a time left that keeps falling, and after the running ones
in the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from models import Ticket, TicketEvent
from tests.factories import Tenant, make_patient

CLOCK = "state dueAt timeLeftSeconds"
FIELDS = f"id version updatedAt status level subcategory paused resolutionSla {{ {CLOCK} }}"
CREATE = f"mutation($input: TicketCreateInput!) {{ ticketCreate(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $input: TicketUpdateInput!, $version: Int) {{
  ticketUpdate(id: $id, input: $input, version: $version) {{ {FIELDS} }} }}"""
MOVE = f"""mutation($id: ID!, $to: TicketStatus!, $version: Int) {{
  ticketTransition(id: $id, to: $to, version: $version) {{ {FIELDS} }} }}"""
LIST = """query($first: Int!, $after: String, $order: TicketOrder, $filter: TicketFilter) {
  tickets(first: $first, after: $after, orderBy: $order, filter: $filter) {
    totalCount nodes { id } pageInfo { endCursor hasNextPage } } }"""
QUEUE = """query($first: Int!, $after: String, $slaState: SlaState) {
  ticketQueue(first: $first, after: $after, slaState: $slaState) { totalCount
    nodes { id paused resolutionSla { state timeLeftSeconds } } pageInfo { endCursor hasNextPage } } }"""


async def open_ticket(tenant: Tenant, received: datetime | None = None, **extra: Any) -> dict[str, Any]:
    pid = await make_patient(tenant)
    data = {"channel": "HOTLINE", "category": "REQUEST", "subject": "Change my appointment", "patientId": str(pid),
            **extra}
    if received is not None:
        data["receivedAt"] = received.isoformat()
    reply = await tenant.call("support_agent", CREATE, input=data)
    assert reply.errors == [], reply.errors
    return dict(reply.data["ticketCreate"])


async def move(tenant: Tenant, ticket_id: str, *statuses: str) -> dict[str, Any]:
    reply = None
    for to in statuses:
        reply = await tenant.call("support_agent", MOVE, id=ticket_id, to=to)
        assert reply.errors == [], reply.errors
    assert reply is not None
    return dict(reply.data["ticketTransition"])


# -- versions ---------------------------------------------------------------------------------


async def test_the_first_of_two_clerks_wins_and_the_second_gets_a_conflict(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant)
    assert ticket["version"] == 1

    first = await tenant.call("support_agent", UPDATE, id=ticket["id"], input={"subcategory": "Billing"}, version=1)
    second = await tenant.call("support_agent", UPDATE, id=ticket["id"], input={"subcategory": "Parking"}, version=1)

    assert first.errors == [] and first.data["ticketUpdate"]["version"] == 2
    assert first.data["ticketUpdate"]["updatedAt"] > ticket["updatedAt"]
    assert second.codes == ["CONFLICT"] and second.errors[0]["extensions"]["field"] == "version"
    row = await Ticket.get(id=ticket["id"])
    assert (row.subcategory, row.version) == ("Billing", 2)
    denied = await tenant.call("front_desk", UPDATE, id=ticket["id"], input={"subcategory": "X"}, version=2)
    assert denied.codes == ["NOT_FOUND"] and (await Ticket.get(id=ticket["id"])).subcategory == "Billing"


async def test_a_stale_transition_writes_nothing(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant)
    moved = await tenant.call("support_agent", MOVE, id=ticket["id"], to="ACKNOWLEDGED", version=1)
    assert moved.errors == [] and moved.data["ticketTransition"]["version"] == 2
    events = await TicketEvent.filter(ticket_id=ticket["id"]).count()

    stale = await tenant.call("support_agent", MOVE, id=ticket["id"], to="INVESTIGATING", version=1)

    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["reason"] == "stale_version"
    row = await Ticket.get(id=ticket["id"])
    assert (row.status, row.version) == ("acknowledged", 2)
    assert await TicketEvent.filter(ticket_id=ticket["id"]).count() == events
    fresh = await tenant.call("support_agent", MOVE, id=ticket["id"], to="INVESTIGATING", version=2)
    assert fresh.errors == [] and fresh.data["ticketTransition"]["version"] == 3


# -- sorting and counting -----------------------------------------------------------------------


async def page_through(tenant: Tenant, order: dict[str, str] | None, first: int = 2) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        reply = await tenant.call("support_agent", LIST, first=first, after=after, order=order)
        assert reply.errors == [], reply.errors
        ids += [node["id"] for node in reply.data["tickets"]["nodes"]]
        if not reply.data["tickets"]["pageInfo"]["hasNextPage"]:
            return ids
        after = reply.data["tickets"]["pageInfo"]["endCursor"]


async def test_lists_sort_by_due_updated_and_created_and_count(tenant: Tenant) -> None:
    now = datetime.now(UTC)
    late = await open_ticket(tenant, level=3)
    soon = await open_ticket(tenant, now - timedelta(minutes=20), level=1)
    resolved = await open_ticket(tenant, level=1)
    await move(tenant, resolved["id"], "ACKNOWLEDGED", "INVESTIGATING")
    await tenant.call("support_agent", "mutation($id: ID!) { ticketTransition(id: $id, to: RESOLVED, "
                                       "resolution: \"Done\") { id } }", id=resolved["id"])
    middle = await open_ticket(tenant, level=2)
    created = [late["id"], soon["id"], resolved["id"], middle["id"]]

    assert await page_through(tenant, None) == created[::-1]  # the default: newest first
    assert await page_through(tenant, {"field": "CREATED_AT"}) == created
    assert await page_through(tenant, {"field": "CREATED_AT", "direction": "DESC"}) == created[::-1]
    assert await page_through(tenant, {"field": "UPDATED_AT", "direction": "DESC"}, first=3) == [
        middle["id"], resolved["id"], soon["id"], late["id"]]
    due = await page_through(tenant, {"field": "DUE"})
    assert due[0] == soon["id"] and due[-1] == resolved["id"]  # no running clock: last
    assert await page_through(tenant, {"field": "DUE", "direction": "DESC"}, first=1) == [
        *[t for t in due[:-1][::-1]], resolved["id"]]

    counted = await tenant.call("support_agent", LIST, first=1, filter={"level": 1})
    assert counted.data["tickets"]["totalCount"] == 2 and len(counted.data["tickets"]["nodes"]) == 1
    cursor = counted.data["tickets"]["pageInfo"]["endCursor"]
    mixed = await tenant.call("support_agent", LIST, first=1, after=cursor, order={"field": "DUE"})
    assert mixed.codes == ["BAD_USER_INPUT"] and mixed.errors[0]["extensions"]["field"] == "after"
    assert (await tenant.call("front_desk", LIST, first=5)).data["tickets"]["totalCount"] == 0  # owns none
    refused = await tenant.call("compliance_officer", LIST, first=5)
    assert refused.codes == ["FORBIDDEN"]


async def test_a_sorted_counted_page_costs_the_same_sql_for_2_and_10(tenant: Tenant, sql_counter: Any) -> None:
    for level in (1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3):
        await open_ticket(tenant, level=level)
    counts = []
    for first in (2, 10):
        start = len(sql_counter.statements)
        reply = await tenant.call("support_agent", LIST, first=first, order={"field": "DUE"})
        assert reply.errors == [] and reply.data["tickets"]["totalCount"] == 11
        counts.append(len(sql_counter.statements) - start)
    assert counts[0] == counts[1] > 0


# -- paused tickets -------------------------------------------------------------------------------


async def test_a_ticket_waiting_on_the_patient_is_paused_not_breached(tenant: Tenant) -> None:
    # level 1 resolves within 24 hours of calendar time: received two days ago, it is breached
    breached = await open_ticket(tenant, datetime.now(UTC) - timedelta(days=2), level=1)
    assert breached["resolutionSla"]["state"] == "BREACHED" and breached["paused"] is False
    running = await open_ticket(tenant, level=3)

    paused = await move(tenant, breached["id"], "ACKNOWLEDGED", "INVESTIGATING", "WAITING_ON_PATIENT")

    assert paused["paused"] is True
    assert paused["resolutionSla"] == {"state": "PAUSED", "dueAt": None, "timeLeftSeconds": None}
    queue = await tenant.call("support_agent", QUEUE, first=10)
    assert [(n["id"], n["paused"]) for n in queue.data["ticketQueue"]["nodes"]] == [
        (running["id"], False), (breached["id"], True)]
    assert queue.data["ticketQueue"]["nodes"][1]["resolutionSla"] == {"state": "PAUSED", "timeLeftSeconds": None}
    only_breached = await tenant.call("support_agent", QUEUE, first=10, slaState="BREACHED")
    assert only_breached.data["ticketQueue"]["nodes"] == [] and only_breached.data["ticketQueue"]["totalCount"] == 0
    only_paused = await tenant.call("support_agent", QUEUE, first=10, slaState="PAUSED")
    assert [n["id"] for n in only_paused.data["ticketQueue"]["nodes"]] == [breached["id"]]
    assert only_paused.data["ticketQueue"]["totalCount"] == 1
    assert (await Ticket.get(id=breached["id"])).next_due_at is None

    resumed = await move(tenant, breached["id"], "INVESTIGATING")  # the clock counts again from where it stood
    assert resumed["paused"] is False and resumed["resolutionSla"]["state"] == "BREACHED"
    queue = await tenant.call("support_agent", QUEUE, first=1)
    assert [n["id"] for n in queue.data["ticketQueue"]["nodes"]] == [breached["id"]]


async def test_the_queue_pages_from_running_into_paused_tickets(tenant: Tenant) -> None:
    running = [(await open_ticket(tenant, level=1))["id"] for _ in range(2)]
    paused = []
    for _ in range(3):
        ticket = await open_ticket(tenant, level=2)
        await move(tenant, ticket["id"], "ACKNOWLEDGED", "INVESTIGATING", "WAITING_ON_PATIENT")
        paused.append(ticket["id"])
    ids: list[str] = []
    after = None
    while True:
        reply = await tenant.call("support_agent", QUEUE, first=2, after=after)
        assert reply.errors == [], reply.errors
        ids += [n["id"] for n in reply.data["ticketQueue"]["nodes"]]
        assert reply.data["ticketQueue"]["totalCount"] == 5
        if not reply.data["ticketQueue"]["pageInfo"]["hasNextPage"]:
            break
        after = reply.data["ticketQueue"]["pageInfo"]["endCursor"]
    assert ids == sorted(running, key=uuid.UUID) + sorted(paused, key=uuid.UUID)
