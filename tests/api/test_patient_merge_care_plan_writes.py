"""A care plan ended while its file is merged, between the plan's read and the write (found in review):
carePlanTransition held no file and recorded the plan's change, and the cancellation of its open tasks, on the file it
had read, the merged one, though the merge had moved the plan and its tasks to the survivor, and did not ask whether
the caller reaches them there. Now it does as a follow-up task's writes do (test_patient_merge_follow_up_writes): the
write goes on, recorded on the survivor's trail, if the caller still reaches the plan there, with the clinical class
it writes; beyond it NOT_FOUND, nothing written, the refusal on the trail. The merge made right before the write's
transaction opens, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from models import CarePlan, FollowUpTask
from resolvers import care_plan as care_plans
from tests.api.test_care_plans import MOVE, a_plan
from tests.api.test_patient_merge_follow_up_writes import two_files
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.factories import Tenant
from tests.patients import denials_since, mark


async def test_a_plan_ended_as_its_file_is_merged_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate = await two_files(tenant)
    plan = await a_plan(tenant, duplicate)
    merged_before_transaction(monkeypatch, care_plans, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("doctor", MOVE, id=plan["id"], to="REVOKED", version=1)

    assert reply.errors == [], reply.errors
    assert (await CarePlan.get(id=plan["id"])).status == "revoked"
    written = [(e.resource_type, e.patient_id) for e in await tenant.audit_events(outcome="allowed")
               if e.seq > before and e.action == "update" and e.resource_type in ("care_plan", "follow_up_task")]
    assert written == [("care_plan", survivor)] + [("follow_up_task", survivor)] * 4


async def test_a_plan_ended_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the survivor is in department B, which the doctor of A does not reach: the plan answers as it
    does after the merge (NOT_FOUND), nothing is written, the refusal is on the trail."""
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    plan = await a_plan(tenant, duplicate)
    merged_before_transaction(monkeypatch, care_plans, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("doctor", MOVE, id=plan["id"], to="REVOKED", version=1)

    assert reply.codes == ["NOT_FOUND"], reply.errors
    row = await CarePlan.get(id=plan["id"])
    assert (row.patient_id, row.status, row.version) == (survivor, "active", 1)
    assert {t.status for t in await FollowUpTask.filter(activity__plan_id=row.id)} == {"requested"}
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("update", "care_plan", "not_found", uuid.UUID(plan["id"]))]
