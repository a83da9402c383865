"""Races on follow-up tasks, each 20 rounds of two requests at once (found in review, on PostgreSQL: the first two
failed 20 and 19 rounds of 20): a patient archived while the nurse completes the call; a failure recorded while
the nurse records an attempt that reached the patient; two nurses claiming one pool task."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from models import FollowUpAttempt, FollowUpTask
from resolvers import follow_up
from resolvers.context import Services
from tests.api.test_follow_up import ATTEMPT, CLAIM, COMPLETE, FAIL, NOW, a_task, colleague, owned_task
from tests.factories import Tenant, make_patient

ROUNDS = 20
ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id } }"
FORM = {"reached": True, "condition": "BETTER", "needsHelp": False, "satisfaction": 5, "notes": "fine"}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def test_archive_while_the_call_is_completed(tenant: Tenant) -> None:
    bad = 0
    for _ in range(ROUNDS):
        pid = await make_patient(tenant)
        task = await owned_task(tenant, pid=pid)
        done, _archived = await asyncio.gather(
            tenant.call("nurse", COMPLETE, id=task["id"], version=1, input=FORM),
            tenant.call("front_desk", ARCHIVE, id=str(pid)))
        row = await FollowUpTask.get(id=task["id"])
        events = await tenant.audit_events(resource_type="follow_up_task", resource_id=row.id, action="update")
        if not done.errors and (row.status != "completed" or len(events) != 1):  # the completion's one record
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


async def test_fail_while_a_reaching_attempt_is_recorded(tenant: Tenant) -> None:
    bad = 0
    for _ in range(ROUNDS):
        task = await owned_task(tenant)
        first = await tenant.call("nurse", ATTEMPT, id=task["id"], input={"channel": "PHONE", "outcome": "NO_ANSWER"})
        assert not first.errors, first.errors
        attempt, failed = await asyncio.gather(
            tenant.call("nurse", ATTEMPT, id=task["id"], input={"channel": "PHONE", "outcome": "REACHED"}),
            tenant.call("nurse", FAIL, id=task["id"], notes="never reached", version=1))
        row = await FollowUpTask.get(id=task["id"])
        reached = await FollowUpAttempt.filter(task_id=row.id, outcome="reached").exists()
        if (row.status == "failed" and reached) or bool(attempt.errors) == bool(failed.errors):  # one wins
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


async def test_two_nurses_claim(tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    await colleague(tenant, client, services, "nurse2")
    bad = 0
    for _ in range(ROUNDS):
        task = await a_task(tenant)
        replies = await asyncio.gather(tenant.call("nurse", CLAIM, id=task["id"]),
                                       tenant.call("nurse2", CLAIM, id=task["id"]))
        won = [r for r in replies if not r.errors]
        events = await tenant.audit_events(resource_type="follow_up_task", resource_id=task["id"], action="update",
                                           outcome="allowed")
        if len(won) != 1 or len(events) != 1 or [r.codes for r in replies if r.errors] != [["CONFLICT"]]:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS}"
