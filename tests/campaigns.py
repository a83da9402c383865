"""Campaigns in tests that start one: four eyes come first (resolvers.campaign.approve), someone other than the author
approves the draft. The tests of the approval itself are in tests/api/test_campaign_approval.py."""

from __future__ import annotations

import uuid

from resolvers import institution as institutions
from resolvers.context import Services
from tests.factories import PASSWORD, Tenant, open_session

APPROVE = "mutation($id: ID!, $v: Int) { campaignApprove(id: $id, version: $v) { version } }"
SECOND_ADMIN = "second_admin"


async def second_admin(tenant: Tenant, services: Services) -> str:
    """Another admin of the institution, made once per tenant (the fixtures sign in one account per role), for a
    campaign an admin wrote to the whole institution: a department head approves only within their departments.
    Answers its key in ``tenant.tokens``."""
    if SECOND_ADMIN not in tenant.tokens:
        staff = await institutions.create_account(
            services, tenant.institution, email=f"second-admin.{uuid.uuid4().hex[:8]}@careloop.test",
            name="second admin", password=PASSWORD, roles=["admin"], departments=[])
        tenant.staff_ids[SECOND_ADMIN] = staff.id
        tenant.tokens[SECOND_ADMIN] = await open_session(services, staff)
    return SECOND_ADMIN


async def approve(tenant: Tenant, campaign_id: str | uuid.UUID, approver: str) -> int:
    """The campaign approved through the API by ``approver`` (a role key of ``tenant``, not its author's); answers
    its version after the approval, to start it with."""
    reply = await tenant.call(approver, APPROVE, id=str(campaign_id))
    assert reply.errors == [], reply.errors
    return int(reply.data["campaignApprove"]["version"])
