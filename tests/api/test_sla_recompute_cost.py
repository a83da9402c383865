"""What an admin's change of the SLA costs: a new target (``slaLevelSet``) or calendar (``businessCalendarSet``)
recomputes every open ticket's due times and escalations in the admin's request. It cost about four statements per
open ticket (each ticket's timeline, its update, its escalations read, each escalation moved: found in review); it
now costs a fixed number per batch of ``sla.RECOMPUTE_BATCH`` tickets, with the same results as recomputing each
ticket on its own (``sla.recompute``, which a ticket's own changes run). Through the API, statements counted on the
database client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from audit.events import RequestMeta
from core.principal import Principal
from models import Notification, Ticket
from resolvers import sla
from resolvers.context import Context, Services
from resolvers.loaders import Loaders
from tests.api.test_ticket_sla import CALENDAR_SET, LEVEL_SET, STANDARD_WEEK, move, open_ticket
from tests.conftest import RowsRead, SqlCounter
from tests.factories import Tenant

DUE = ("response_due_at", "response_at_risk_at", "resolution_due_at", "resolution_at_risk_at", "next_due_at",
       "next_at_risk_at")


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def statements_of(tenant: Tenant, sql_counter: SqlCounter, query: str, **variables: Any) -> int:
    start = len(sql_counter.statements)
    reply = await tenant.call("admin", query, **variables)
    assert reply.errors == [], reply.errors
    return len(sql_counter.statements) - start


async def open_tickets(tenant: Tenant, count: int) -> list[dict[str, Any]]:
    """Open level-1 tickets (four escalations each), the first of every three acknowledged (its first response
    met) and the second waiting on the patient (its clocks paused)."""
    tickets = [await open_ticket(tenant, level=1) for _ in range(count)]
    for n, ticket in enumerate(tickets):
        if n % 3 == 0:
            await move(tenant, ticket["id"], "ACKNOWLEDGED")
        elif n % 3 == 1:
            await move(tenant, ticket["id"], "ACKNOWLEDGED", "INVESTIGATING", "WAITING_ON_PATIENT")
    return tickets


async def test_a_change_of_targets_or_calendar_costs_the_same_for_3_and_9_open_tickets(
        tenant: Tenant, sql_counter: SqlCounter) -> None:
    await open_tickets(tenant, 3)
    few = [await statements_of(tenant, sql_counter, LEVEL_SET, level=1, first=45, resolution=1440, clock="CALENDAR"),
           await statements_of(tenant, sql_counter, CALENDAR_SET, input={"week": STANDARD_WEEK,
                                                                         "holidays": ["2031-01-02"]})]
    await open_tickets(tenant, 6)
    many = [await statements_of(tenant, sql_counter, LEVEL_SET, level=1, first=60, resolution=1440, clock="CALENDAR"),
            await statements_of(tenant, sql_counter, CALENDAR_SET, input={"week": STANDARD_WEEK,
                                                                          "holidays": ["2031-01-03"]})]

    assert many == few, (few, many)
    assert await Ticket.filter(institution_id=tenant.id, status__in=("acknowledged", "waiting_on_patient",
                                                                       "new")).count() == 9


async def test_each_batch_costs_the_same_fixed_number_of_statements(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of 2: each 2 open tickets more cost the same few statements more (the tickets' timelines, their
    due times, their escalations read and moved), never one per ticket."""
    monkeypatch.setattr(sla, "RECOMPUTE_BATCH", 2)
    costs = []
    for minutes in (40, 50, 60):
        for _ in range(2):
            await open_ticket(tenant, level=1)
        costs.append(await statements_of(tenant, sql_counter, LEVEL_SET, level=1, first=minutes, resolution=1440,
                                         clock="CALENDAR"))

    per_batch = costs[1] - costs[0]
    assert costs[2] - costs[1] == per_batch and 0 < per_batch <= 6, costs


async def test_the_open_tickets_are_read_a_batch_at_a_time(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, rows_read: Callable[[str], RowsRead]) -> None:
    """Found on re-reading: the change read (and locked) every open ticket of the institution in one statement, all of
    them in the admin's request's memory at once. Now a batch at a time, in id order (the lock order), every one of
    them recomputed."""
    monkeypatch.setattr(sla, "RECOMPUTE_BATCH", 2)
    tickets = await open_tickets(tenant, 5)
    before = await state_of([t["id"] for t in tickets])
    read = rows_read("ticket")
    ok(await tenant.call("admin", LEVEL_SET, level=1, first=25, resolution=900, clock="CALENDAR"), "slaLevelSet")

    locked = [n for n, query in zip(read.rows, read.queries, strict=True) if "\"status\" IN" in query]
    assert locked and max(locked) <= 2, list(zip(read.rows, read.queries, strict=True))
    after = await state_of([t["id"] for t in tickets])
    assert all(after[t["id"]][0] != before[t["id"]][0] for t in tickets)  # every one of the five recomputed


async def test_the_batched_recompute_gives_each_ticket_what_its_own_recompute_gives(
        tenant: Tenant, services: Services) -> None:
    """Every kind of open ticket (levels 1 to 3, a VIP's, one met, one paused), its targets and calendar changed by the
    admin; recomputing each ticket on its own afterwards changes nothing: neither its due times nor its escalations
    (moved, cancelled, sent or to come). A resolved ticket is left as it was, as before."""
    tickets = [*await open_tickets(tenant, 3), await open_ticket(tenant), await open_ticket(tenant, level=3),
               await open_ticket(tenant, level=1, channel="VIP_ADVISER"), await open_ticket(tenant, level=2,
                                                                                           channel="VIP_ADVISER")]
    resolved = await open_ticket(tenant, level=1)
    await move(tenant, resolved["id"], "ACKNOWLEDGED", "INVESTIGATING", "RESOLVED")
    stopped = await state_of([resolved["id"]])
    ok(await tenant.call("admin", LEVEL_SET, level=1, first=20, resolution=600, clock="BUSINESS"), "slaLevelSet")
    ok(await tenant.call("admin", CALENDAR_SET, input={
        "week": [{"weekday": day, "intervals": [{"start": "09:00", "end": "18:00"}]} for day in range(1, 7)],
        "holidays": ["2031-01-02"]}), "businessCalendarSet")
    assert await state_of([resolved["id"]]) == stopped  # a resolved ticket keeps the due times it was resolved under
    ids = [t["id"] for t in tickets]
    batched = await state_of(ids)

    async with in_transaction():
        ctx = admin_context(tenant, services)
        for ticket in await Ticket.filter(id__in=ids).order_by("id"):
            await sla.recompute(ctx, ticket)

    assert await state_of(ids) == batched
    assert any(kinds for _, kinds in batched.values())  # escalations to compare
    assert any(columns[0] is not None for columns, _ in batched.values())


async def state_of(ids: list[str]) -> dict[str, tuple[tuple[datetime | None, ...], dict[str, tuple[Any, ...]]]]:
    """Each ticket's due times, and its escalations: when due, whether cancelled, whether sent."""
    state = {}
    for ticket in await Ticket.filter(id__in=ids):
        rows = await Notification.filter(ticket_id=ticket.id)
        state[str(ticket.id)] = (tuple(getattr(ticket, name) for name in DUE),
                                 {row.kind: (row.due_at, row.cancelled_at is None, row.sent_at) for row in rows})
    return state


def admin_context(tenant: Tenant, services: Services) -> Context:
    """The context of the admin's requests, for running a ticket's own recompute as its transitions do."""
    principal = Principal(tenant.id, tenant.staff_ids["admin"], None, "", "admin", frozenset({"admin"}), frozenset())
    return Context(services, RequestMeta(), principal, None, Loaders(tenant.id))
