"""The five writes to a follow-up task that follow a merge (followUpTaskClaim, followUpTaskAssign,
followUpAttemptRecord, followUpTaskFail, followUpTaskCancel; followUpTaskComplete's races are in
test_races_merge_writers) at the moment a merge of the task's file runs (PostgreSQL). Each found the task on the
duplicate and is started while the merge holds both files and has moved nothing yet (test_races_merge_writers'
meeting point); it holds the file before the task (follow_up._writing), as the merge does, so it waits for the
merge: neither deadlocks, and the write is recorded on the survivor the task moved to, or, the survivor beyond the
caller's reach, refused as the task then answers (NOT_FOUND), nothing written. test_patient_merge_follow_up_writes
makes the merge sequential. The other way round, a merge started while the write holds the file waits for the
write, then moves the task it wrote."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from models import FollowUpTask
from resolvers import access, follow_up
from tests.api.test_follow_up import NOW
from tests.api.test_patient_merge import merge
from tests.api.test_patient_merge_follow_up_writes import WRITES, stored, two_files, written_since
from tests.api.test_races_merge_writers import during_a_held_merge, meeting_a_held_merge
from tests.conftest import BACKEND
from tests.factories import Tenant
from tests.locks import held, pause_after, until_waiting
from tests.patients import denials_since, mark

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_task_written_during_a_merge_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    made, call, (resource_type, action), status = WRITES[name]
    survivor, duplicate = await two_files(tenant)
    task = await made(tenant, duplicate)
    before = await mark(tenant.id)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: call(tenant, task))

    row = await FollowUpTask.get(id=task["id"])
    assert (row.patient_id, row.status) == (survivor, status)  # nothing left on the merged file
    found = [(e.resource_type, e.action, e.patient_id) for e in await written_since(tenant, before)]
    assert found == [(resource_type, action, survivor)], found  # none on the merged file's trail


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_task_written_during_a_merge_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The survivor is in department B, which neither the nurse nor the head of A reaches: NOT_FOUND once the merge
    is done, nothing written, the refusal on the trail."""
    made, call, _, _ = WRITES[name]
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    task = await made(tenant, duplicate)
    as_found, before = await stored(tenant), await mark(tenant.id)

    reply = await meeting_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: call(tenant, task))

    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (await FollowUpTask.get(id=task["id"])).patient_id == survivor
    assert await stored(tenant) == as_found
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("update", "follow_up_task", "not_found", uuid.UUID(task["id"]))]
    assert await written_since(tenant, before) == []


async def merged_during_a_held_write(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor: uuid.UUID,
                                     duplicate: uuid.UUID, write: Callable[[], Awaitable[Any]]) -> Any:
    """A merge of the two files started while ``write`` holds the file it read (its transaction open, nothing
    written yet), then the write let go: both must end, neither failed nor deadlocked nor refused; answers what
    ``write`` answered."""
    holding = pause_after(monkeypatch, access, "current_files")  # the write's hold; the merge's goes on
    async with held(write(), holding) as writing:
        merging = asyncio.ensure_future(merge(tenant, survivor, duplicate))
        await until_waiting([merging])  # the merge reaches the file the write holds, and waits
        holding.release()
        written, merged = await asyncio.wait_for(asyncio.gather(writing, merging, return_exceptions=True), 30)
    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(written, BaseException) and written.errors == [], written
    return written


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_merge_during_a_task_write_moves_what_was_written(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The write goes on the file it holds, the duplicate, merged once it commits: its record stays on the
    duplicate's trail, where the task was when written, and the merge moves the task as written."""
    made, call, (resource_type, action), status = WRITES[name]
    survivor, duplicate = await two_files(tenant)
    task = await made(tenant, duplicate)
    before = await mark(tenant.id)

    await merged_during_a_held_write(tenant, monkeypatch, survivor, duplicate, lambda: call(tenant, task))

    row = await FollowUpTask.get(id=task["id"])
    assert (row.patient_id, row.status) == (survivor, status)
    found = [(e.resource_type, e.action, e.patient_id) for e in await written_since(tenant, before)]
    assert found == [(resource_type, action, duplicate)], found
