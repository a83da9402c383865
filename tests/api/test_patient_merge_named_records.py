"""A write that names a record the merge moved, not the file, follows it to the survivor (found in review):
followUpTaskComplete with openTicket on a task read just before its file was merged opened the ticket on the file it
had read, refused there inside the completion's transaction: INTERNAL_SERVER_ERROR. The task, its ticket and its survey
invitation are now the survivor's, as when the call is recorded after the merge, and as closing a ticket or completing a
call already did; a survivor out of the caller's reach answers as the task then does (NOT_FOUND, nothing written). The
merge made sequential (right before the completion's transaction opens), on SQLite and PostgreSQL; the concurrent case
is in test_races_merge_writers."""

from __future__ import annotations

import uuid

import pytest

from models import FollowUpTask, Ticket
from resolvers import follow_up
from tests.api.test_follow_up import COMPLETE, NOW, owned_task
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

WORSE = {"reached": True, "condition": "WORSE", "needsHelp": True, "openTicket": True}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def two_files(tenant: Tenant, survivor_department: str = "A") -> tuple[uuid.UUID, uuid.UUID]:
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    return survivor, await make_patient(tenant)


async def test_a_call_completed_as_its_file_is_merged_opens_its_ticket_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate = await two_files(tenant)
    task = await owned_task(tenant, pid=duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input=WORSE)

    assert reply.errors == [], reply.errors
    done = reply.data["followUpTaskComplete"]
    assert done["status"] == "COMPLETED" and done["ticketId"] is not None
    ticket = await Ticket.get(id=done["ticketId"])
    assert (ticket.patient_id, ticket.owner_id) == (survivor, tenant.staff_ids["nurse"])
    stored = await FollowUpTask.get(id=task["id"])
    assert (stored.patient_id, stored.ticket_id) == (survivor, ticket.id)
    written = await tenant.audit_events(action="update", resource_type="follow_up_task", resource_id=task["id"])
    assert str(written[-1].patient_id) == str(survivor)  # on the trail of the file it is on


async def test_a_call_completed_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the survivor is in department B, which the nurse does not reach (nor its care team)."""
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    task = await owned_task(tenant, pid=duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input=WORSE)

    assert reply.codes == ["NOT_FOUND"], reply.errors
    stored = await FollowUpTask.get(id=task["id"])
    assert (stored.patient_id, stored.status, stored.ticket_id) == (survivor, "requested", None)
    assert await Ticket.filter(institution_id=tenant.id).count() == 0
    assert [d[:3] for d in await denials_since(tenant.id, before)] == [("update", "follow_up_task", "not_found")]
