"""Races on rows whose invariant the database alone cannot state, each 20 rounds of two requests at once (found in
the review of the models' constraints, on PostgreSQL).

- An institution's default follow-up rules are written once, by whichever request first finds it without any rule
  (``resolvers.follow_up.ensure_default_rules``). Their rule keys are random, so no unique key holds two requests that
  both found none: each wrote the three defaults, and every finished visit after that had each call scheduled twice.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx

from models import FollowUpRule
from resolvers import institution as institutions
from resolvers.context import Services
from tests.factories import PASSWORD, Tenant, gql, open_session

ROUNDS = 20
RULES = "query { followUpRules(first: 10) { nodes { id } } }"


async def a_new_institution(client: httpx.AsyncClient, services: Services) -> Tenant:
    """An institution with one nurse signed in twice (two desks), and no follow-up rule yet."""
    institution = await institutions.create(services, f"Race Clinic {uuid.uuid4().hex[:8]}", "dental")
    department = await institutions.create_department(institution, "Department A")
    tenant = Tenant(client, institution, {"A": department})
    email = f"nurse.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, institution, email=email, name="nurse", password=PASSWORD,
                                              roles=["nurse"], departments=[department])
    for desk in ("nurse", "nurse2"):
        tenant.tokens[desk] = await open_session(services, staff)
    return tenant


async def test_two_first_looks_write_the_default_rules_once(client: httpx.AsyncClient, services: Services) -> None:
    bad = 0
    for _ in range(ROUNDS):
        tenant = await a_new_institution(client, services)
        replies = await asyncio.gather(gql(client, RULES, {}, tenant.tokens["nurse"]),
                                       gql(client, RULES, {}, tenant.tokens["nurse2"]))
        rules = await FollowUpRule.filter(institution_id=tenant.id).count()
        made = await tenant.audit_events(resource_type="follow_up_rule", action="create")
        listed = [len(r.data["followUpRules"]["nodes"]) for r in replies if not r.errors]
        if rules != 3 or len(made) != 3 or listed != [3, 3]:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"
