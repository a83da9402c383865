"""A campaign is queued a batch per transaction, never in one transaction over its whole audience (issue 13:
"never holds a database lock for the whole batch"): each batch is committed on its own, progress shows between
batches, and other writes to the communication table get through while the campaign is being queued.

The audience is a few hundred patients inserted in one go (registering them one by one through the API would
take the whole time budget of these tests); the campaign itself is created, started and read through the API.
The full-size measurement (10,000 recipients, PostgreSQL and SQLite) is C1 in ``make bench``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from core.ids import uuid7
from models import Campaign, Communication, Patient
from models.fields import tags_to_db
from resolvers import campaign as campaigns
from resolvers.context import Services
from tests.campaigns import approve, second_admin
from tests.factories import Tenant

AUDIENCE = 300
BODY = "{patient_name}，{institution_name}春季健康讲座本周六开讲。退订：{unsubscribe_url}"
CREATE = "mutation($input: CampaignCreateInput!) { campaignCreate(input: $input) { id version } }"
START = "mutation($id: ID!, $v: Int) { campaignStart(id: $id, version: $v) { status recipients } }"
ONE = "query($id: ID!) { campaign(id: $id) { status queued refused { reason count } } }"
CALL = "mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def audience(tenant: Tenant, count: int = AUDIENCE) -> list[uuid.UUID]:
    """``count`` active patients of department A taking campaigns by e-mail; every fifth gave no consent (so
    the gate refuses some in every batch)."""
    rows = [Patient(id=uuid7(), institution_id=tenant.id, department_id=tenant.departments["A"].id,
                    full_name=f"Batch Patient {n}", contact_consent=n % 5 != 4,
                    contact_channels=tags_to_db(["email"]), preferred_channel="email",
                    contact_purposes=tags_to_db(["care", "campaign"]), email=f"batch{n}@example.org")
            for n in range(count)]
    await Patient.bulk_create(rows, batch_size=500)
    return [row.id for row in rows]


async def started(tenant: Tenant, services: Services) -> uuid.UUID:
    made = ok(await tenant.call("admin", CREATE, input={
        "name": "Spring lecture", "purpose": "CAMPAIGN", "subject": "Spring lecture", "body": BODY,
        "audience": {}}), "campaignCreate")
    version = await approve(tenant, made["id"], await second_admin(tenant, services))  # four eyes before the start
    begun = ok(await tenant.call("admin", START, id=made["id"], v=version), "campaignStart")
    assert begun == {"status": "SENDING", "recipients": AUDIENCE}
    return uuid.UUID(made["id"])


async def log_a_call(tenant: Tenant, patient_id: uuid.UUID) -> None:
    """A front-desk write to the communication table, which must not wait for the whole campaign."""
    async with asyncio.timeout(5):
        ok(await tenant.call("front_desk", CALL, input={"patientId": str(patient_id)}), "communicationLogCall")


async def test_each_batch_is_committed_on_its_own_with_progress_and_writes_in_between(tenant: Tenant,
                                                                                     services: Services) -> None:
    patients = await audience(tenant)
    campaign_id = await started(tenant, services)

    seen = []
    while True:
        await campaigns.advance(batch=100)
        shown = ok(await tenant.call("admin", ONE, id=str(campaign_id)), "campaign")
        seen.append((shown["status"], shown["queued"] + sum(r["count"] for r in shown["refused"])))
        await log_a_call(tenant, patients[0])
        if shown["status"] != "SENDING":
            break

    assert seen == [("SENDING", 100), ("SENDING", 200), ("SENDING", 300), ("COMPLETED", 300)]
    assert shown["queued"] == 240 and shown["refused"] == [{"reason": "NO_CONSENT", "count": 60}]
    assert await Communication.filter(patient_id=patients[0], cause="logged_call").count() == 4


async def test_writes_get_through_while_the_worker_queues_the_campaign(tenant: Tenant, services: Services) -> None:
    patients = await audience(tenant)
    campaign_id = await started(tenant, services)

    async def worker() -> None:
        while (await Campaign.get(id=campaign_id)).status == "sending":
            await campaigns.advance(batch=50)

    running = asyncio.ensure_future(worker())
    committed: list[int] = []  # the campaign's messages another writer saw, after each of its writes
    while not running.done():
        await log_a_call(tenant, patients[1])
        committed.append(await Communication.filter(campaign_id=campaign_id).count())
    await running

    between = {n for n in committed if 0 < n < AUDIENCE}
    assert len(between) >= 2, committed  # it got in between batches, more than once
    assert all(n % 50 == 0 for n in committed), committed  # and saw whole batches only: one transaction each
    assert await Communication.filter(campaign_id=campaign_id).count() == AUDIENCE
