"""Several root fields refused in one operation: graphql-core cancels the siblings of the first
failure, and a refusal being recorded must neither be lost nor leave the database locked."""

from __future__ import annotations

import asyncio

from tests.factories import Tenant

MANY = """{ a: emergencyAccessUnreviewedCount b: emergencyAccessUnreviewedCount
  c: auditEvents(first: 1) { edges { node { id } } } d: slaSettings { levels { level } } }"""


async def test_refused_siblings_do_not_lock_the_database(tenant: Tenant) -> None:
    for _ in range(5):
        reply = await asyncio.wait_for(tenant.call("front_desk", MANY), 10)
        assert "FORBIDDEN" in reply.codes and reply.data is None
    # The next request is served at once, and every refusal is on record.
    me = await asyncio.wait_for(tenant.call("front_desk", "{ me { id } }"), 10)
    assert me.errors == []
    await asyncio.sleep(0.2)  # shielded records finish after their request was answered
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["front_desk"])
    assert len(denied) == 20
