"""A follow-up task's writes on a task whose file is merged between the read and the write (found in review):
followUpTaskClaim, followUpTaskAssign, followUpAttemptRecord, followUpTaskFail and followUpTaskCancel wrote without
holding the file, recorded on the file they had read, the merged one, though the merge had moved the task to the
survivor, and did not ask whether the caller reaches the task there. Now each does as followUpTaskComplete does
(test_patient_merge_named_records): the write goes on, recorded on the survivor's trail, if the caller still reaches
the task there; beyond it NOT_FOUND, nothing written, the refusal on the trail. A refusal of the write (not the
owner, not the department's, no right to open the ticket) names the file the task is on when refused, the survivor.
The merge made sequential (right before the write's transaction opens, or right after the write found the task), on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.events import Action
from models import AuditEvent, FollowUpAttempt, FollowUpTask
from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import follow_up
from resolvers.context import Services
from tests.api.test_follow_up import (
    ASSIGN,
    ATTEMPT,
    CANCEL,
    CLAIM,
    COMPLETE,
    FAIL,
    NOW,
    a_task,
    colleague,
    owned_task,
)
from tests.api.test_patient_merge_copied_file import merged_around
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, mark

BUSY = {"channel": "PHONE", "outcome": "BUSY"}
WORSE = {"reached": True, "condition": "WORSE", "needsHelp": True, "openTicket": True}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def pool_task(tenant: Tenant, pid: uuid.UUID) -> dict[str, Any]:
    return await a_task(tenant, pid)


async def nurses_task(tenant: Tenant, pid: uuid.UUID) -> dict[str, Any]:
    return await owned_task(tenant, pid=pid)


async def tried_task(tenant: Tenant, pid: uuid.UUID) -> dict[str, Any]:
    """The nurse's task with one attempt that did not reach the patient: one she may mark failed."""
    task = await owned_task(tenant, pid=pid)
    assert (await tenant.call("nurse", ATTEMPT, id=task["id"], input=BUSY)).errors == []
    return task


Made = Callable[[Tenant, uuid.UUID], Awaitable[dict[str, Any]]]
Call = Callable[[Tenant, dict[str, Any]], Awaitable[Response]]
# mutation -> (the task it needs, the call, what it records: resource type, action; the task's status after)
WRITES: dict[str, tuple[Made, Call, tuple[str, str], str]] = {
    "followUpTaskClaim": (pool_task, lambda t, task: t.call("nurse", CLAIM, id=task["id"]),
                          ("follow_up_task", "update"), "accepted"),
    "followUpTaskAssign": (pool_task, lambda t, task: t.call("department_head", ASSIGN, id=task["id"],
                                                             staff=str(t.staff_ids["nurse"])),
                           ("follow_up_task", "update"), "requested"),
    "followUpAttemptRecord": (nurses_task, lambda t, task: t.call("nurse", ATTEMPT, id=task["id"], input=BUSY),
                              ("follow_up_attempt", "create"), "requested"),
    "followUpTaskFail": (tried_task, lambda t, task: t.call("nurse", FAIL, id=task["id"]),
                         ("follow_up_task", "update"), "failed"),
    "followUpTaskCancel": (nurses_task, lambda t, task: t.call("nurse", CANCEL, id=task["id"]),
                           ("follow_up_task", "update"), "cancelled"),
}


async def two_files(tenant: Tenant, survivor_department: str = "A") -> tuple[uuid.UUID, uuid.UUID]:
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    return survivor, await make_patient(tenant)


async def stored(tenant: Tenant) -> tuple[Any, ...]:
    """The tasks and attempts as stored, but for the file each is on (the merge's own move)."""
    tasks = await FollowUpTask.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "status", "owner_id", "version", "ticket_id", "completed_at")
    attempts = await FollowUpAttempt.filter(institution_id=tenant.id).order_by("id").values_list("id", flat=True)
    return tuple(tasks), tuple(attempts)


async def written_since(tenant: Tenant, before: int) -> list[AuditEvent]:
    """The records of the tasks, attempts and tickets written since ``before`` (reads left out)."""
    return [event for event in await tenant.audit_events(outcome="allowed")
            if event.seq > before and event.action != "read"
            and event.resource_type in ("follow_up_task", "follow_up_attempt", "ticket")]


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_task_written_as_its_file_is_merged_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    made, call, (resource_type, action), status = WRITES[name]
    survivor, duplicate = await two_files(tenant)
    task = await made(tenant, duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await call(tenant, task)

    assert reply.errors == [], reply.errors
    row = await FollowUpTask.get(id=task["id"])
    assert (row.patient_id, row.status) == (survivor, status)
    found = [(e.resource_type, e.action, e.patient_id) for e in await written_since(tenant, before)]
    assert found == [(resource_type, action, survivor)]  # on the survivor's trail, none on the merged file's


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_task_written_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The denied twin: the survivor is in department B, which neither the nurse nor the head of A reaches: the task
    answers as it does after the merge (NOT_FOUND), nothing is written, the refusal is on the trail."""
    made, call, _, _ = WRITES[name]
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    task = await made(tenant, duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    as_found, before = await stored(tenant), await mark(tenant.id)

    reply = await call(tenant, task)

    assert reply.codes == ["NOT_FOUND"], reply.errors
    field = "taskId" if name == "followUpAttemptRecord" else "id"
    assert reply.errors[0]["extensions"]["field"] == field
    assert (await FollowUpTask.get(id=task["id"])).patient_id == survivor
    assert await stored(tenant) == as_found
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("update", "follow_up_task", "not_found", uuid.UUID(task["id"]))]
    assert await written_since(tenant, before) == []


def merged_after_the_write_finds_it(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, survivor: uuid.UUID,
                                    duplicate: uuid.UUID) -> None:
    merged_around(monkeypatch, follow_up, "find", tenant, survivor, duplicate, after=True, action=Action.UPDATE)


async def nobody_opens_tickets_here(tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    """This institution's policy takes the right to open tickets from its nurses."""
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + f"p, nurse, {tenant.id}, ticket, create, deny\n")
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))


# refused write -> (the task it needs, the refused call, the refusal: action, resource type, reason)
REFUSALS: dict[str, tuple[Made, Call, tuple[str, str, str]]] = {
    "followUpTaskClaim by the head": (pool_task, lambda t, task: t.call("department_head", CLAIM, id=task["id"]),
                                      ("update", "follow_up_task", "other_department")),
    "followUpTaskAssign by a nurse": (pool_task, lambda t, task: t.call("nurse", ASSIGN, id=task["id"],
                                                                        staff=str(t.staff_ids["nurse"])),
                                      ("update", "follow_up_task", "forbidden")),
    "followUpAttemptRecord by a colleague": (nurses_task, lambda t, task: t.call("nurse2", ATTEMPT, id=task["id"],
                                                                                 input=BUSY),
                                             ("update", "follow_up_task", "not_owner")),
    "followUpTaskComplete by a colleague": (nurses_task, lambda t, task: t.call("nurse2", COMPLETE, id=task["id"],
                                                                               input=WORSE),
                                            ("update", "follow_up_task", "not_owner")),
    "followUpTaskComplete opening a ticket": (nurses_task, lambda t, task: t.call("nurse", COMPLETE, id=task["id"],
                                                                                 input=WORSE),
                                              ("create", "ticket", "forbidden")),
    "followUpAttemptRecord without the clinical class": (
        lambda t, pid: owned_task(t, "auditing_nurse", pid=pid),
        lambda t, task: t.call("auditing_nurse", ATTEMPT, id=task["id"], input=BUSY),
        ("update", "follow_up_task", "forbidden")),
    "followUpTaskFail by a colleague": (tried_task, lambda t, task: t.call("nurse2", FAIL, id=task["id"]),
                                        ("update", "follow_up_task", "not_owner")),
    "followUpTaskCancel by a colleague": (nurses_task, lambda t, task: t.call("nurse2", CANCEL, id=task["id"]),
                                          ("update", "follow_up_task", "not_owner")),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
async def test_a_refusal_as_the_file_is_merged_names_the_survivor(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, name: str) -> None:
    """A write refused after a merge moved the task to the survivor: the refusal is on the trail of the file the task
    is on (found in review: it named the merged file); the answer as before, nothing written."""
    made, call, refusal = REFUSALS[name]
    await colleague(tenant, client, services, "nurse2")
    # a nurse who is a compliance officer too, which reads no clinical notes: she may not record a call
    await colleague(tenant, client, services, "auditing_nurse", also=("compliance_officer",))
    survivor, duplicate = await two_files(tenant)
    task = await made(tenant, duplicate)
    if refusal[1] == "ticket":
        await nobody_opens_tickets_here(tenant, services, monkeypatch, tmp_path)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate)
    as_found, before = await stored(tenant), await mark(tenant.id)

    reply = await call(tenant, task)

    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert await stored(tenant) == as_found
    assert [(d[0], d[1], d[2], d[4]) for d in await denials_since(tenant.id, before)] == [(*refusal, survivor)]
    assert await written_since(tenant, before) == []
