"""Several root fields refused in one operation: graphql-core cancels the siblings of the first
failure, and a refusal being recorded must neither be lost nor leave the database locked."""

from __future__ import annotations

import asyncio

from tests.factories import Tenant

MANY = """{ a: emergencyAccessUnreviewedCount b: emergencyAccessUnreviewedCount
  c: auditEvents(first: 1) { edges { node { id } } } d: slaSettings { levels { level } } }"""


async def test_refused_siblings_do_not_lock_the_database(tenant: Tenant) -> None:
    actor = tenant.staff_ids["front_desk"]
    for n in range(1, 6):
        reply = await asyncio.wait_for(tenant.call("front_desk", MANY), 10)
        assert "FORBIDDEN" in reply.codes and reply.data is None
        # every refusal is on record once the answer is out, the cancelled siblings' too (no wait: they give way
        # only once their record is durable, audit.writer.append_before_giving_way)
        assert len(await tenant.audit_events(outcome="denied", actor_id=actor)) == 4 * n
    # The next request is served at once.
    me = await asyncio.wait_for(tenant.call("front_desk", "{ me { id } }"), 10)
    assert me.errors == []
