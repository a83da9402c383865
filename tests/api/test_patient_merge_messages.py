"""Messages queued for a patient read before a merge (found in review): the appointment cancelled, the reminder sweep,
the contract reminder sweep and a campaign's batch read the file's id, then queued the message in a transaction of
their own; a merge in between moved everything of the file to the survivor, but the message was queued on the merged
file, refused there (``patient_inactive``) under a key that is then taken, so the survivor was never told. A merge
moves the queued messages to the survivor (docs/patients.md); one queued just after it goes there too. The merge
made sequential (right before the writer's transaction opens), on SQLite and PostgreSQL; the concurrent case is in
test_races_merge_writers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, time, timedelta
from typing import Any

import pytest

from models import Communication, Patient
from resolvers import appointment as appointments
from resolvers import campaign as campaigns
from resolvers import contract_reminder, reminder
from tests.api import test_campaigns as campaign_tests
from tests.api import test_contract_reminders as contract_tests
from tests.api import test_reminders as reminder_tests
from tests.api.test_appointments import CANCEL, NOW, book, make_schedule
from tests.api.test_patient_merge import merge
from tests.campaigns import approve
from tests.contracts import today
from tests.factories import Tenant


def merged_before_transaction(monkeypatch: pytest.MonkeyPatch, module: Any, tenant: Tenant, survivor: uuid.UUID,
                              duplicate: uuid.UUID) -> None:
    """The file is merged once, right before ``module`` opens its next transaction: after the writer read the file's
    id, before it queues the message."""
    opened = module.in_transaction

    @asynccontextmanager
    async def merging_first(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        monkeypatch.setattr(module, "in_transaction", opened)
        assert (await merge(tenant, survivor, duplicate)).errors == []
        async with opened(*args, **kwargs) as connection:
            yield connection

    monkeypatch.setattr(module, "in_transaction", merging_first)


async def messages(tenant: Tenant, key: str) -> dict[uuid.UUID, list[str]]:
    """The patient each message under ``key`` (a prefix) was queued for, and its status."""
    found: dict[uuid.UUID, list[str]] = {}
    for pid, status in await Communication.filter(institution_id=tenant.id, key__startswith=key).values_list(
            "patient_id", "status"):
        found.setdefault(pid, []).append(status)
    return found


def on_the_survivor(found: dict[uuid.UUID, list[str]], survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    assert duplicate not in found, f"queued on the merged file: {found[duplicate]}"
    assert found == {survivor: ["queued"]}, found


async def test_a_cancellation_told_after_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """appointmentCancel reads the appointment (its file), then cancels it and tells the patient in one transaction:
    the appointment had moved to the survivor, the message about it went to the merged file."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    schedule = await make_schedule(tenant)
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    made = await book(tenant, schedule, duplicate)
    merged_before_transaction(monkeypatch, appointments, tenant, survivor, duplicate)

    reply = await tenant.call("front_desk", CANCEL, id=made["id"], reason="INSTITUTION")

    assert reply.errors == [], reply.errors
    assert (await Patient.get(id=duplicate)).status == "merged"
    on_the_survivor(await messages(tenant, f"appointment:{made['id']}:cancellation"), survivor, duplicate)


async def test_a_reminder_found_before_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The reminder sweep finds a re-visit due (its visit's file), then queues the reminder: the visit had moved
    to the survivor, the reminder went to the merged file and its key was taken (no later sweep sends it)."""
    now = reminder_tests.local(date(2031, 5, 12), time(7))
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    visit = await reminder_tests.finished_visit(tenant, duplicate, date(2031, 5, 13))
    merged_before_transaction(monkeypatch, reminder, tenant, survivor, duplicate)

    await reminder_tests.sweep(tenant, now)

    assert (await Patient.get(id=duplicate)).status == "merged"
    on_the_survivor(await messages(tenant, f"revisit:{visit}:"), survivor, duplicate)


async def test_a_contract_reminder_found_before_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract reminder sweep finds a contract ending (its file), then queues the client's message under the
    contract's lock; a merge moves the contract without changing its version, so the check passed and the message
    went to the merged file."""
    end = today() + timedelta(days=90)
    survivor, duplicate = await contract_tests.client(tenant), await contract_tests.client(tenant)
    contract = await contract_tests.active(tenant, duplicate, end=end)
    merged_before_transaction(monkeypatch, contract_reminder, tenant, survivor, duplicate)

    await contract_tests.sweep(contract_tests.local(end - timedelta(days=60)))

    assert (await Patient.get(id=duplicate)).status == "merged"
    on_the_survivor(await messages(tenant, f"contract:{contract['id']}:"), survivor, duplicate)


async def test_a_campaign_batch_read_before_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign's batch reads its patients, then queues their messages in its own transaction: one merged in
    between had its message queued on the merged file (refused, and counted as refused)."""
    duplicate, survivor = await campaign_tests.patient(tenant), await campaign_tests.patient(tenant)
    campaign = await started_campaign(tenant)
    merged_before_transaction(monkeypatch, campaigns, tenant, survivor, duplicate)

    await campaigns.advance(batch=1)  # the duplicate's batch: registered first, it is first in the audience

    assert (await Patient.get(id=duplicate)).status == "merged"
    on_the_survivor(await messages(tenant, f"campaign:{campaign}:{duplicate}"), survivor, duplicate)
    await campaigns.advance()  # completed: no later test's batch meets it


async def started_campaign(tenant: Tenant) -> str:
    """A campaign to department A, started, the only one sending (the worker takes every institution's in turn)."""
    await campaigns.advance()
    made = campaign_tests.ok(await tenant.call("admin", campaign_tests.CREATE, input=campaign_tests.draft(
        departmentId=str(tenant.departments["A"].id))), "campaignCreate")
    version = await approve(tenant, made["id"], "department_head")  # four eyes: the department's head approves
    campaign_tests.ok(await tenant.call("admin", campaign_tests.START, id=made["id"], v=version), "campaignStart")
    return str(made["id"])
