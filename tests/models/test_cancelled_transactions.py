"""A unit of work cancelled at any point leaves no lock or connection held and nothing half written.

Each case cancels a task after a given number of event-loop turns, so the cancellation lands in turn
on waiting for the connection, on BEGIN, on a statement, on COMMIT and after it. Whatever it hit,
the next statement of another task must run at once, and the rows are all there or none is.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tortoise.transactions import in_transaction

from models import Department
from tests.factories import Tenant

pytestmark = pytest.mark.usefixtures("database")


async def _write_two(institution_id: int, marker: str) -> None:
    async with in_transaction():
        await Department.create(institution_id=institution_id, name=f"{marker}-1")
        await asyncio.sleep(0)
        await Department.create(institution_id=institution_id, name=f"{marker}-2")


async def _cancel_after(turns: int, work: asyncio.Task[None]) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)


@pytest.mark.parametrize("turns", range(0, 40, 1))
async def test_a_cancelled_transaction_leaves_the_database_usable_and_whole(tenant: Tenant, turns: int) -> None:
    marker = uuid.uuid4().hex
    await _cancel_after(turns, asyncio.create_task(_write_two(tenant.id, marker)))
    async with asyncio.timeout(5):  # before the fix: a held SQLite lock, every later statement waits for ever
        written = await Department.filter(name__startswith=marker).count()
        await _write_two(tenant.id, f"{marker}-after")
    assert written in (0, 2)  # all or nothing
    assert await Department.filter(name__startswith=f"{marker}-after").count() == 2


async def test_concurrent_cancellations_do_not_exhaust_connections(tenant: Tenant) -> None:
    """Many units of work cancelled together, more than a PostgreSQL pool holds by default."""
    for turns in range(6):
        tasks = [asyncio.create_task(_write_two(tenant.id, uuid.uuid4().hex)) for _ in range(25)]
        for _ in range(turns):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    async with asyncio.timeout(5):
        await _write_two(tenant.id, "still-works")
