"""Care plans through the API: made by clinicians, read under the clinical class, calls and re-visits
becoming follow-up tasks, ending a plan cancelling what is still open, and every refusal writing nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from models import CarePlan, CarePlanActivity, FollowUpTask
from tests.conftest import BACKEND
from tests.factories import Tenant, gql, make_patient
from tests.locks import another_transaction, until_waiting
from tests.patients import events_since, mark, open_account

CREATE = """mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) {
  id status version startsOn title activities { kind dueOn status description } } }"""
MOVE = """mutation($id: ID!, $to: CarePlanStatus!, $version: Int) {
  carePlanTransition(id: $id, to: $to, version: $version) { id status version } }"""
READ = "query($id: ID!) { carePlan(id: $id) { id status startsOn title goals activities { kind } } }"
LIST = "query($pid: ID!) { carePlans(patientId: $pid) { nodes { id } pageInfo { hasNextPage } } }"

START = date(2026, 12, 1)
IMPLANT_PLAN = {"title": "After the implant", "goals": "Healed by March", "startsOn": START.isoformat(),
                "activities": [{"kind": "CALL", "afterDays": 1}, {"kind": "CALL", "afterDays": 7},
                               {"kind": "CALL", "afterDays": 30, "description": "Check the gum"},
                               {"kind": "REVISIT", "afterDays": 90}, {"kind": "EDUCATION", "afterDays": 0}]}


async def snapshot(tenant: Tenant) -> tuple[int, int, int]:
    return (await CarePlan.filter(institution_id=tenant.id).count(),
            await CarePlanActivity.filter(institution_id=tenant.id).count(),
            await FollowUpTask.filter(institution_id=tenant.id).count())


async def a_plan(tenant: Tenant, pid: uuid.UUID, role: str = "doctor", **fields: Any) -> dict[str, Any]:
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), **IMPLANT_PLAN, **fields})
    assert reply.errors == [], reply.errors
    return dict(reply.data["carePlanCreate"])


async def test_a_plan_turns_its_calls_and_revisit_into_tasks(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    assert plan["status"] == "ACTIVE" and plan["title"] == "After the implant"
    assert [(a["kind"], a["dueOn"]) for a in plan["activities"]] == [
        ("EDUCATION", "2026-12-01"), ("CALL", "2026-12-02"), ("CALL", "2026-12-08"), ("CALL", "2026-12-31"),
        ("REVISIT", "2027-03-01")]
    tasks = await FollowUpTask.filter(patient_id=pid).order_by("due_on")
    assert [t.due_on for t in tasks] == [START + timedelta(days=d) for d in (1, 7, 30, 90)]
    assert {t.status for t in tasks} == {"requested"} and all(t.activity_id for t in tasks)


async def test_revoking_a_plan_cancels_its_open_tasks_once(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    reply = await tenant.call("doctor", MOVE, id=plan["id"], to="REVOKED", version=1)
    assert reply.data["carePlanTransition"] == {"id": plan["id"], "status": "REVOKED", "version": 2}
    assert await FollowUpTask.filter(patient_id=pid).exclude(status="cancelled").count() == 0
    again = await tenant.call("doctor", MOVE, id=plan["id"], to="COMPLETED")
    assert again.codes == ["BAD_USER_INPUT"]


async def test_a_stale_version_is_a_conflict(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    reply = await tenant.call("doctor", MOVE, id=plan["id"], to="COMPLETED", version=7)
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "stale_version"
    assert (await CarePlan.get(id=plan["id"])).status == "active"


@pytest.mark.parametrize(("role", "sees_clinical"), [("nurse", True), ("department_head", True)])
async def test_clinicians_read_plans(tenant: Tenant, role: str, sees_clinical: bool) -> None:
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    reply = await tenant.call(role, READ, id=plan["id"])
    assert reply.errors == [] and reply.data["carePlan"]["goals"] == "Healed by March"


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "admin", "compliance_officer"])
async def test_other_roles_read_no_plan_and_the_refusal_is_audited(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    events = await tenant.audit_count()
    reply = await tenant.call(role, READ, id=plan["id"])
    assert reply.codes == ["FORBIDDEN"] and reply.data == {"carePlan": None}
    assert await tenant.audit_count() == events + 1


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "department_head", "admin", "compliance_officer"])
async def test_only_clinicians_who_write_clinical_data_make_plans(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), **IMPLANT_PLAN})
    assert reply.codes == ["FORBIDDEN"]
    assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1


async def test_a_clinician_outside_the_patients_reach_meets_a_missing_patient(tenant: Tenant,
                                                                              other_tenant: Tenant) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    before = await snapshot(tenant)
    reply = await tenant.call("doctor", CREATE, input={"patientId": str(pid), **IMPLANT_PLAN})
    assert reply.codes == ["NOT_FOUND"] and await snapshot(tenant) == before
    mine = await make_patient(tenant)
    plan = await a_plan(tenant, mine)
    assert (await other_tenant.call("doctor", READ, id=plan["id"])).codes == ["NOT_FOUND"]


async def test_the_patient_reads_their_own_plans_and_no_one_elses(tenant: Tenant) -> None:
    me, someone = await open_account(tenant), await make_patient(tenant)
    plan = await a_plan(tenant, me.patient_id)
    theirs = await a_plan(tenant, someone)
    reply = await gql(tenant.client, LIST, {"pid": str(me.patient_id)}, me.token)
    assert [n["id"] for n in reply.data["carePlans"]["nodes"]] == [plan["id"]]
    assert (await gql(tenant.client, READ, {"id": theirs["id"]}, me.token)).codes == ["NOT_FOUND"]


@pytest.mark.parametrize(("change", "field"), [
    ({"title": " "}, "input.title"),
    ({"activities": [{"kind": "CALL"}]}, "input.activities[0].dueOn"),
    ({"activities": [{"kind": "CALL", "afterDays": -1}]}, "input.activities[0].afterDays"),
    ({"activities": [{"kind": "CALL", "dueOn": "2026-11-30"}]}, "input.activities[0].dueOn"),
    # an open-ended plan bounds a date by the years as its start (found in review: a call due in 9999 was a task)
    ({"activities": [{"kind": "CALL", "dueOn": "9999-12-31"}]}, "input.activities[0].dueOn"),
    ({"activities": [{"kind": "CALL", "dueOn": "2200-01-01"}]}, "input.activities[0].dueOn"),
    ({"startsOn": "2199-12-31", "activities": [{"kind": "CALL", "afterDays": 1}]}, "input.activities[0].afterDays"),
    ({"endsOn": "2026-11-01"}, "input.endsOn"),
    ({"visitId": str(uuid.uuid4())}, "input.visitId"),
    ({"activities": [{"kind": "CALL", "afterDays": 1}] * 31}, "input.activities"),
])
async def test_bad_plans_are_refused_with_the_field_named(tenant: Tenant, change: dict[str, Any], field: str) -> None:
    pid = await make_patient(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("doctor", CREATE, input={"patientId": str(pid), **IMPLANT_PLAN, **change})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


# -- ending a plan beside the nurse's own writes to its tasks ------------------------------------------------------


async def test_ending_a_plan_moves_the_version_of_each_task_it_cancels(tenant: Tenant) -> None:
    """A task the plan's end cancels is changed like any other write to it: its version moves on (found in review:
    it stayed, so a worklist read before the end could not tell the task had changed)."""
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    reply = await tenant.call("doctor", MOVE, id=plan["id"], to="REVOKED", version=1)
    assert reply.errors == [], reply.errors
    tasks = await FollowUpTask.filter(patient_id=pid)
    assert len(tasks) == 4 and {(t.status, t.version) for t in tasks} == {("cancelled", 2)}


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_ending_a_plan_leaves_a_task_completed_meanwhile_completed(tenant: Tenant) -> None:
    """The nurse completes a call while the plan is revoked: the plan's end waits for the task and leaves it as the
    nurse wrote it (found in review: the open tasks were read without a lock and cancelled by id, so a call
    completed meanwhile was overwritten as cancelled, and recorded so)."""
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    first = await FollowUpTask.filter(patient_id=pid).order_by("due_on").first()
    assert first is not None
    seq = await mark(tenant.id)
    async with another_transaction() as other:  # the nurse's completion, its row locked until it commits
        await other.execute("UPDATE follow_up_task SET status = 'completed', version = version + 1 WHERE id = $1",
                            first.id)
        ending = asyncio.ensure_future(tenant.call("doctor", MOVE, id=plan["id"], to="REVOKED", version=1))
        await until_waiting([ending])
    reply = await asyncio.wait_for(ending, 10)
    assert reply.errors == [], reply.errors
    tasks = {t.id: t.status for t in await FollowUpTask.filter(patient_id=pid)}
    assert tasks.pop(first.id) == "completed" and set(tasks.values()) == {"cancelled"}
    cancelled = {e.resource_id for e in await events_since(tenant.id, seq) if e.resource_type == "follow_up_task"}
    assert cancelled == set(tasks)


async def test_a_plans_department_and_visit_are_read_as_identity_of_the_file_and_noted(tenant: Tenant) -> None:
    """Where a plan's tasks go and the visit it follows are read like a follow-up task's (identity of the file),
    and the read is on the trail (found in review: carePlan { departmentId visitId } recorded nothing)."""
    pid = await make_patient(tenant)
    plan = await a_plan(tenant, pid)
    seq = await mark(tenant.id)
    reply = await tenant.call("nurse", "query($id: ID!) { carePlan(id: $id) { id departmentId visitId } }",
                              id=plan["id"])
    assert reply.errors == [] and reply.data["carePlan"]["departmentId"] == str(tenant.departments["A"].id)
    reads = await events_since(tenant.id, seq, action="read", resource_type="patient")
    assert [(e.patient_id, e.outcome, e.field_classes) for e in reads] == [(pid, "allowed", "identity")]
