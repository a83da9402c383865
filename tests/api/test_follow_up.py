"""Follow-up tasks through the API: planned by hand, claimed from the pool (one winner when two nurses
claim at once), call attempts, the outcome form and the ticket it may open, failure, cancellation,
(re)assignment, the worklists on the institution's local date, field classes, and every refusal leaving
nothing written but its record."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from models import AuditEvent, FollowUpAttempt, FollowUpTask, Ticket
from resolvers import follow_up, pagination
from resolvers import institution as institutions
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, login, make_patient

# 17:00 UTC on 2 December is 01:00 on 3 December in Shanghai (the tenants' zone): "today" is the 3rd.
NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
TODAY = date(2026, 12, 3)

CREATE = """mutation($input: FollowUpTaskCreateInput!) {
  followUpTaskCreate(input: $input) { id status version dueOn owner { id } department { id } } }"""
CLAIM = "mutation($id: ID!) { followUpTaskClaim(id: $id) { id status version owner { id } } }"
ASSIGN = """mutation($id: ID!, $staff: ID, $version: Int) {
  followUpTaskAssign(id: $id, staffId: $staff, version: $version) { id status version owner { id } } }"""
ATTEMPT = """mutation($id: ID!, $input: FollowUpAttemptInput!) {
  followUpAttemptRecord(taskId: $id, input: $input) { id channel outcome note at staff { id } } }"""
COMPLETE = """mutation($id: ID!, $input: FollowUpOutcomeInput!, $version: Int) {
  followUpTaskComplete(id: $id, input: $input, version: $version) {
    id status version reached condition needsHelp satisfaction notes ticketId completedAt } }"""
FAIL = """mutation($id: ID!, $notes: String, $version: Int) {
  followUpTaskFail(id: $id, notes: $notes, version: $version) { id status reached version } }"""
CANCEL = "mutation($id: ID!, $version: Int) { followUpTaskCancel(id: $id, version: $version) { id status version } }"
READ = """query($id: ID!) { followUpTask(id: $id) { id status dueOn reached condition notes
  attempts { outcome note } owner { id } patient { id fullName } } }"""
WORKLIST = """query($scope: FollowUpScope, $dept: ID, $dueBy: Date, $first: Int, $after: String) {
  followUpWorklist(scope: $scope, departmentId: $dept, dueBy: $dueBy, first: $first, after: $after) {
    today pageInfo { hasNextPage endCursor }
    edges { node { id dueOn status patient { id fullName phone } owner { id name } department { name }
                   rule { version } } } } }"""
WORKLOAD = """query($dept: ID) { followUpWorkload(departmentId: $dept) {
  today lines { department { name } owner { id } overdue dueToday } } }"""


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def colleague(tenant: Tenant, client: httpx.AsyncClient, services: Services, key: str, role: str = "nurse",
                    department: str = "A", also: tuple[str, ...] = ()) -> uuid.UUID:
    """One more account (with the roles ``also`` besides ``role``), signed in as ``tenant.call(key, ...)``."""
    email = f"{key}.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name=f"{key} colleague",
                                              password=PASSWORD, roles=[role, *also],
                                              departments=[tenant.departments[department]])
    tenant.staff_ids[key], tenant.tokens[key] = staff.id, await login(client, email)
    return staff.id


async def ok(reply: Any, root: str) -> dict[str, Any]:
    assert reply.errors == [], reply.errors
    return dict(reply.data[root])


async def a_task(tenant: Tenant, pid: uuid.UUID | None = None, role: str = "doctor", **fields: Any) -> dict[str, Any]:
    pid = pid or await make_patient(tenant)
    data = {"patientId": str(pid), "dueOn": TODAY.isoformat(), **fields}
    return await ok(await tenant.call(role, CREATE, input=data), "followUpTaskCreate")


async def owned_task(tenant: Tenant, role: str = "nurse", pid: uuid.UUID | None = None,
                     **fields: Any) -> dict[str, Any]:
    return await a_task(tenant, pid, ownerId=str(tenant.staff_ids[role]), **fields)


async def snapshot(tenant: Tenant) -> tuple[Any, ...]:
    tasks = await FollowUpTask.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "status", "owner_id", "version", "ticket_id")
    return (tuple(tasks), await FollowUpAttempt.filter(institution_id=tenant.id).count(),
            await Ticket.filter(institution_id=tenant.id).count())


async def last_denial(tenant: Tenant) -> AuditEvent | None:
    return await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()


async def assert_refused(tenant: Tenant, role: str, query: str, code: str, reason: str | None = None,
                         says: str | None = None, **variables: Any) -> None:
    """The denied twin: the code (and ``says``: the error's reason), nothing written, and (for a refusal) the
    refusal on the trail."""
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call(role, query, **variables)
    assert reply.codes == [code], reply.errors
    if says is not None:
        assert reply.errors[0]["extensions"].get("reason") == says, reply.errors
    assert await snapshot(tenant) == before
    if reason is not None:
        assert await tenant.audit_count() == events + 1
        denial = await last_denial(tenant)
        assert denial is not None and denial.reason == reason
        assert denial.resource_type in ("follow_up_task", "patient")


# -- planned by hand ---------------------------------------------------------------------------------


async def test_a_doctor_plans_a_call_into_the_pool_and_it_is_on_the_trail(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    task = await a_task(tenant, pid)
    assert (task["status"], task["version"], task["dueOn"], task["owner"]) == ("REQUESTED", 1, "2026-12-03", None)
    assert task["department"] == {"id": str(tenant.departments["A"].id)}
    [event] = await tenant.audit_events(resource_type="follow_up_task", action="create")
    assert event.patient_id == pid and event.outcome == "allowed" and "due_on" in event.fields_read.split(",")


@pytest.mark.parametrize(("fields", "field"), [
    ({"dueOn": "2026-12-02"}, "input.dueOn"),  # yesterday in Shanghai, though still today in UTC
    ({"dueOn": "2028-01-01"}, "input.dueOn"),
    ({"departmentId": str(uuid.uuid4())}, "input.departmentId"),
    ({"ownerId": str(uuid.uuid4())}, "input.ownerId"),
    ({"visitId": str(uuid.uuid4())}, "input.visitId"),
    ({"ownerId": "not-an-id"}, "input.ownerId"),
])
async def test_bad_tasks_are_refused_with_the_field_named(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    pid = await make_patient(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "dueOn": TODAY.isoformat(), **fields})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


async def test_the_owner_must_be_a_nurse_of_the_department(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    for role in ("doctor", "front_desk"):
        reply = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "dueOn": TODAY.isoformat(),
                                                          "ownerId": str(tenant.staff_ids[role])})
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.ownerId"


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "admin", "compliance_officer", "department_head"])
async def test_roles_that_do_not_plan_calls_are_refused(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    await assert_refused(tenant, role, CREATE, "FORBIDDEN", "forbidden",
                         input={"patientId": str(pid), "dueOn": TODAY.isoformat()})


async def test_a_patient_outside_reach_is_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await assert_refused(tenant, "nurse", CREATE, "NOT_FOUND", "not_found",
                         input={"patientId": str(pid), "dueOn": TODAY.isoformat()})
    await assert_refused(other_tenant, "nurse", CREATE, "NOT_FOUND", "not_found",
                         input={"patientId": str(await make_patient(tenant)), "dueOn": TODAY.isoformat()})


# -- the pool and claims -------------------------------------------------------------------------------


async def test_a_nurse_of_the_department_claims_a_pool_task(tenant: Tenant) -> None:
    task = await a_task(tenant)
    claimed = await ok(await tenant.call("nurse", CLAIM, id=task["id"]), "followUpTaskClaim")
    assert (claimed["status"], claimed["version"]) == ("ACCEPTED", 2)
    assert claimed["owner"] == {"id": str(tenant.staff_ids["nurse"])}
    event = (await tenant.audit_events(resource_type="follow_up_task", action="update"))[-1]
    assert set(event.fields_read.split(",")) == {"owner", "status"}
    # claimed already: a clear CONFLICT, nothing changes
    await assert_refused(tenant, "nurse", CLAIM, "CONFLICT", says="task_taken", id=task["id"])


@pytest.mark.parametrize("both_read_it_first", [False, True])
async def test_two_nurses_claiming_at_once_exactly_one_wins(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch,
        both_read_it_first: bool) -> None:
    """Two claims sent together over HTTP. With ``both_read_it_first`` each request has read the task as
    still in the pool before either writes, so the compare-and-set UPDATE alone decides."""
    await colleague(tenant, client, services, "nurse2")
    if both_read_it_first:
        barrier, find = asyncio.Barrier(2), follow_up.find

        async def find_then_wait(*args: Any, **kwargs: Any) -> follow_up.TaskView:
            view = await find(*args, **kwargs)
            await asyncio.wait_for(barrier.wait(), timeout=10)
            return view

        monkeypatch.setattr(follow_up, "find", find_then_wait)
    for _ in range(5):
        task = await a_task(tenant)
        events = await tenant.audit_count()
        first, second = await asyncio.gather(tenant.call("nurse", CLAIM, id=task["id"]),
                                             tenant.call("nurse2", CLAIM, id=task["id"]))
        replies = {"nurse": first, "nurse2": second}
        winners = [who for who, reply in replies.items() if reply.errors == []]
        losers = [who for who, reply in replies.items() if reply.errors]
        assert len(winners) == 1 and len(losers) == 1, (first.body, second.body)
        loser = replies[losers[0]]
        assert loser.codes == ["CONFLICT"] and loser.errors[0]["extensions"]["field"] == "id"
        assert loser.errors[0]["extensions"]["reason"] == "task_taken"
        assert loser.data == {"followUpTaskClaim": None}
        row = await FollowUpTask.get(id=task["id"])
        assert (row.owner_id, row.status, row.version) == (tenant.staff_ids[winners[0]], "accepted", 2)
        # one write on the trail (the winner's); the loser's rolled back with its transaction
        updates = await AuditEvent.filter(institution_id=tenant.id, resource_type="follow_up_task",
                                          resource_id=task["id"], action="update")
        assert len(updates) == 1 and await tenant.audit_count() >= events + 1


async def test_only_nurses_of_the_tasks_department_claim(
        tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    await colleague(tenant, client, services, "nurse_b", department="B")
    pid = await make_patient(tenant)
    task = await a_task(tenant, pid)
    await assert_refused(tenant, "doctor", CLAIM, "FORBIDDEN", "forbidden", id=task["id"])  # reads, never works
    await assert_refused(tenant, "department_head", CLAIM, "FORBIDDEN", "other_department", id=task["id"])
    await assert_refused(tenant, "nurse_b", CLAIM, "NOT_FOUND", "not_found", id=task["id"])  # out of reach
    # a department B nurse who reaches the patient through the care team still does not claim A's pool
    reply = await tenant.call("admin", "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }",
                              p=str(pid), s=str(tenant.staff_ids["nurse_b"]))
    assert reply.errors == [], reply.errors
    await assert_refused(tenant, "nurse_b", CLAIM, "FORBIDDEN", "other_department", id=task["id"])


# -- attempts and the outcome -------------------------------------------------------------------------


async def test_attempts_then_the_outcome_form_sealed_and_read_back(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    attempt = await ok(await tenant.call("nurse", ATTEMPT, id=task["id"], input={
        "channel": "PHONE", "outcome": "NO_ANSWER", "note": "Rang twice", "at": "2026-12-03T00:30:00+08:00"}),
        "followUpAttemptRecord")
    assert (attempt["channel"], attempt["outcome"], attempt["note"]) == ("PHONE", "NO_ANSWER", "Rang twice")
    assert attempt["at"] == "2026-12-02T16:30:00+00:00" and attempt["staff"] == {"id": str(tenant.staff_ids["nurse"])}
    done = await ok(await tenant.call("nurse", COMPLETE, id=task["id"], version=1, input={
        "reached": True, "condition": "BETTER", "needsHelp": False, "satisfaction": 5,
        "notes": "Healing well, no pain"}), "followUpTaskComplete")
    assert (done["status"], done["reached"], done["condition"], done["satisfaction"], done["version"]) == (
        "COMPLETED", True, "BETTER", 5, 2)
    assert done["notes"] == "Healing well, no pain" and done["ticketId"] is None and done["completedAt"]
    row = await FollowUpTask.get(id=task["id"])
    attempt_row = await FollowUpAttempt.get(id=attempt["id"])
    assert b"Healing" not in bytes(row.notes or b"") and b"Rang" not in bytes(attempt_row.note or b"")
    assert row.completed_by_id == tenant.staff_ids["nurse"]

    reply = await tenant.call("doctor", READ, id=task["id"])
    assert reply.errors == [] and reply.data["followUpTask"]["notes"] == "Healing well, no pain"
    assert reply.data["followUpTask"]["attempts"] == [{"outcome": "NO_ANSWER", "note": "Rang twice"}]
    read = (await tenant.audit_events(action="read", patient_id=row.patient_id))[-1]
    assert "clinical" in read.field_classes
    assert {"follow_up_task.notes", "follow_up_attempt.note"} <= set(read.fields_read.split(","))
    assert "Healing" not in str(read.fields_read)
    # closed: no more attempts or outcomes
    await assert_refused(tenant, "nurse", COMPLETE, "BAD_USER_INPUT", id=task["id"],
                         input={"reached": True, "condition": "SAME"})
    await assert_refused(tenant, "nurse", ATTEMPT, "BAD_USER_INPUT", id=task["id"],
                         input={"channel": "PHONE", "outcome": "REACHED"})


@pytest.mark.parametrize(("form", "field"), [
    ({"reached": True}, "input.condition"),
    ({"reached": True, "condition": "SAME", "satisfaction": 6}, "input.satisfaction"),
    ({"reached": True, "condition": "SAME", "satisfaction": 0}, "input.satisfaction"),
    ({"reached": False, "condition": "SAME"}, "input.condition"),
    ({"reached": False, "satisfaction": 3}, "input.satisfaction"),
    ({"reached": True, "condition": "BETTER", "openTicket": True}, "input.openTicket"),
    ({"reached": True, "condition": "SAME", "notes": "x" * 2001}, "input.notes"),
    ({"reached": True, "condition": "SAME", "notes": "ab\u202ecd"}, "input.notes"),
])
async def test_a_bad_outcome_form_writes_nothing(tenant: Tenant, form: dict[str, Any], field: str) -> None:
    task = await owned_task(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input=form)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


@pytest.mark.parametrize(("attempt", "field"), [
    ({"channel": "PHONE", "outcome": "BUSY", "at": "2026-12-03T09:00:00"}, "input.at"),  # no offset
    ({"channel": "PHONE", "outcome": "BUSY", "at": "2026-12-04T09:00:00+08:00"}, "input.at"),  # the future
    ({"channel": "PHONE", "outcome": "BUSY", "at": "2026-10-01T09:00:00+08:00"}, "input.at"),  # too old
    ({"channel": "PHONE", "outcome": "BUSY", "note": " "}, "input.note"),
])
async def test_a_bad_attempt_writes_nothing(tenant: Tenant, attempt: dict[str, Any], field: str) -> None:
    task = await owned_task(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", ATTEMPT, id=task["id"], input=attempt)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


async def test_a_worse_patient_opens_a_ticket_linked_to_the_task(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    task = await owned_task(tenant, pid=pid)
    done = await ok(await tenant.call("nurse", COMPLETE, id=task["id"], input={
        "reached": True, "condition": "WORSE", "needsHelp": True, "notes": "Swelling since yesterday",
        "openTicket": True}), "followUpTaskComplete")
    assert done["status"] == "COMPLETED" and done["ticketId"] is not None
    ticket = await Ticket.get(id=done["ticketId"])
    assert (ticket.patient_id, ticket.department_id, ticket.owner_id, ticket.status) == (
        pid, tenant.departments["A"].id, tenant.staff_ids["nurse"], "new")
    assert ticket.response_due_at is not None and ticket.resolution_due_at is not None  # the SLA ran
    assert (await FollowUpTask.get(id=task["id"])).ticket_id == ticket.id
    # the clinical notes stay on the task: the ticket (read by support agents) does not carry them
    assert "Swelling" not in str(await tenant.call("nurse", "query($id: ID!) { ticket(id: $id) { subject "
                                                             "description } }", id=done["ticketId"]))
    writes = await tenant.audit_events(action="update", resource_type="follow_up_task", resource_id=task["id"])
    assert "ticket" in writes[-1].fields_read.split(",")
    assert len(await tenant.audit_events(action="create", resource_type="ticket", resource_id=ticket.id)) == 1


async def test_failed_after_attempts_that_did_not_reach(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    await assert_refused(tenant, "nurse", FAIL, "BAD_USER_INPUT", id=task["id"])  # no attempt yet
    for outcome in ("NO_ANSWER", "BUSY"):
        await ok(await tenant.call("nurse", ATTEMPT, id=task["id"], input={"channel": "PHONE", "outcome": outcome}),
                 "followUpAttemptRecord")
    failed = await ok(await tenant.call("nurse", FAIL, id=task["id"], notes="Three days, no answer"),
                      "followUpTaskFail")
    assert (failed["status"], failed["reached"], failed["version"]) == ("FAILED", False, 2)


async def test_a_reached_patient_is_completed_not_failed(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    await ok(await tenant.call("nurse", ATTEMPT, id=task["id"], input={"channel": "PHONE", "outcome": "REACHED"}),
             "followUpAttemptRecord")
    await assert_refused(tenant, "nurse", FAIL, "BAD_USER_INPUT", id=task["id"])


async def test_a_stale_version_is_a_conflict_and_writes_nothing(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    await ok(await tenant.call("department_head", ASSIGN, id=task["id"], staff=str(tenant.staff_ids["nurse"]),
                               version=1), "followUpTaskAssign")
    await assert_refused(tenant, "nurse", COMPLETE, "CONFLICT", says="stale_version", id=task["id"], version=1,
                         input={"reached": True, "condition": "SAME"})
    await assert_refused(tenant, "nurse", CANCEL, "CONFLICT", says="stale_version", id=task["id"], version=1)
    await assert_refused(tenant, "department_head", ASSIGN, "CONFLICT", says="stale_version", id=task["id"],
                         staff=None, version=1)


async def test_a_colleagues_task_is_not_worked_and_a_pool_task_is_claimed_first(
        tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    await colleague(tenant, client, services, "nurse2")
    task = await owned_task(tenant)
    for query, variables in ((ATTEMPT, {"input": {"channel": "PHONE", "outcome": "BUSY"}}),
                             (COMPLETE, {"input": {"reached": True, "condition": "SAME"}}),
                             (FAIL, {}), (CANCEL, {})):
        await assert_refused(tenant, "nurse2", query, "FORBIDDEN", "not_owner", id=task["id"], **variables)
    pool = await a_task(tenant)
    await assert_refused(tenant, "nurse", ATTEMPT, "BAD_USER_INPUT", id=pool["id"],
                         input={"channel": "PHONE", "outcome": "BUSY"})
    await assert_refused(tenant, "doctor", COMPLETE, "FORBIDDEN", "forbidden", id=task["id"],
                         input={"reached": True, "condition": "SAME"})


# -- assignment and cancellation ------------------------------------------------------------------------


async def test_the_department_head_assigns_and_returns_tasks_to_the_pool(
        tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    nurse2 = await colleague(tenant, client, services, "nurse2")
    task = await a_task(tenant)
    given = await ok(await tenant.call("department_head", ASSIGN, id=task["id"], staff=str(nurse2)),
                     "followUpTaskAssign")
    assert (given["status"], given["owner"], given["version"]) == ("REQUESTED", {"id": str(nurse2)}, 2)
    back = await ok(await tenant.call("department_head", ASSIGN, id=task["id"], version=2), "followUpTaskAssign")
    assert (back["owner"], back["version"]) == (None, 3)
    await assert_refused(tenant, "department_head", ASSIGN, "BAD_USER_INPUT", id=task["id"],
                         staff=str(tenant.staff_ids["doctor"]))
    await assert_refused(tenant, "nurse", ASSIGN, "FORBIDDEN", "forbidden", id=task["id"],
                         staff=str(tenant.staff_ids["nurse"]))


async def test_the_owner_or_the_head_cancels(tenant: Tenant) -> None:
    mine, other = await owned_task(tenant), await a_task(tenant)
    assert (await ok(await tenant.call("nurse", CANCEL, id=mine["id"]), "followUpTaskCancel"))["status"] == "CANCELLED"
    await assert_refused(tenant, "nurse", CANCEL, "FORBIDDEN", "not_owner", id=other["id"])
    assert (await ok(await tenant.call("department_head", CANCEL, id=other["id"]),
                     "followUpTaskCancel"))["status"] == "CANCELLED"
    await assert_refused(tenant, "nurse", CANCEL, "BAD_USER_INPUT", id=mine["id"])


# -- who reads what --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "admin", "compliance_officer"])
async def test_roles_outside_follow_up_read_nothing(tenant: Tenant, role: str) -> None:
    task = await owned_task(tenant)
    await assert_refused(tenant, role, READ, "FORBIDDEN", "forbidden", id=task["id"])
    await assert_refused(tenant, role, WORKLIST, "FORBIDDEN", "forbidden", scope="POOL")
    await assert_refused(tenant, role, CLAIM, "FORBIDDEN", "forbidden", id=task["id"])


async def test_out_of_reach_and_another_institution_meet_a_missing_task(
        tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    await colleague(tenant, client, services, "nurse_b", department="B")
    task = await owned_task(tenant)
    hidden = await tenant.call("nurse_b", READ, id=task["id"])
    missing = await tenant.call("nurse_b", READ, id=str(uuid.uuid4()))
    assert hidden.codes == missing.codes == ["NOT_FOUND"] and hidden.errors[0]["message"] == missing.errors[0][
        "message"]
    await assert_refused(other_tenant, "nurse", READ, "NOT_FOUND", "not_found", id=task["id"])


async def test_the_department_head_reads_the_outcome_of_the_departments_tasks(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    await ok(await tenant.call("nurse", COMPLETE, id=task["id"], input={"reached": True, "condition": "SAME",
                                                                         "notes": "Fine"}), "followUpTaskComplete")
    reply = await tenant.call("department_head", READ, id=task["id"])
    assert reply.errors == [] and reply.data["followUpTask"]["notes"] == "Fine"


# -- the worklists ------------------------------------------------------------------------------------------


async def due(task_id: str, day: date) -> None:
    await FollowUpTask.filter(id=task_id).update(due_on=day)


async def test_my_worklist_is_due_today_local_and_overdue_earliest_first(tenant: Tenant) -> None:
    overdue, today, tomorrow = [await owned_task(tenant) for _ in range(3)]
    await due(overdue["id"], TODAY - timedelta(days=2))
    await due(tomorrow["id"], TODAY + timedelta(days=1))
    await a_task(tenant)  # the pool's, not mine
    await ok(await tenant.call("nurse", CANCEL, id=(await owned_task(tenant))["id"]), "followUpTaskCancel")

    reply = await tenant.call("nurse", WORKLIST, scope="MINE")
    assert reply.errors == [], reply.errors
    page = reply.data["followUpWorklist"]
    assert page["today"] == "2026-12-03"  # in Shanghai; it is still 2 December in UTC
    assert [e["node"]["id"] for e in page["edges"]] == [overdue["id"], today["id"]]
    node = page["edges"][0]["node"]
    assert node["patient"]["fullName"].startswith("Patient") and node["owner"]["id"] == str(tenant.staff_ids["nurse"])
    assert node["department"] == {"name": "Department A"}

    ahead = await tenant.call("nurse", WORKLIST, scope="MINE", dueBy="2026-12-04", first=2)
    ids = [e["node"]["id"] for e in ahead.data["followUpWorklist"]["edges"]]
    cursor = ahead.data["followUpWorklist"]["pageInfo"]["endCursor"]
    rest = await tenant.call("nurse", WORKLIST, scope="MINE", dueBy="2026-12-04", first=2, after=cursor)
    ids += [e["node"]["id"] for e in rest.data["followUpWorklist"]["edges"]]
    assert ids == [overdue["id"], today["id"], tomorrow["id"]]
    assert rest.data["followUpWorklist"]["pageInfo"]["hasNextPage"] is False
    bad = await tenant.call("nurse", WORKLIST, scope="MINE", after="garbage")
    assert bad.codes == ["BAD_USER_INPUT"]


FORGED = [("updated_at.asc", "9999-12-31T23:59:59-05:00"),  # past the calendar's end once in UTC
          ("updated_at.desc", "0001-01-01T00:00:00+05:00"),  # before its start
          ("updated_at.asc", "2026-12-03T10:00:00"),  # no offset
          ("updated_at.asc", "yesterday")]


@pytest.mark.parametrize(("kind", "value"), FORGED)
async def test_a_forged_cursor_is_bad_input(tenant: Tenant, kind: str, value: str) -> None:
    """A cursor is the client's to forge; one whose time cannot be compared in UTC is BAD_USER_INPUT on either
    database, never an unexpected error."""
    field, direction = kind.split(".")
    forged = pagination.encode(f"{follow_up.TASK_CURSOR}.{kind}", f"{value}|{uuid.UUID(int=1)}")
    reply = await tenant.call("nurse", """query($after: String, $order: FollowUpTaskOrder) {
      followUpWorklist(scope: MINE, orderBy: $order, after: $after) { edges { node { id } } } }""",
                              after=forged, order={"field": field.upper(), "direction": direction.upper()})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "after"


async def test_the_pool_and_the_department_for_its_head(
        tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    nurse2 = await colleague(tenant, client, services, "nurse2")
    pool = await a_task(tenant)
    mine = await owned_task(tenant)
    theirs = await a_task(tenant, ownerId=str(nurse2))
    late_pool = await a_task(tenant)
    await due(late_pool["id"], TODAY - timedelta(days=1))
    await due(mine["id"], TODAY - timedelta(days=3))

    reply = await tenant.call("nurse", WORKLIST, scope="POOL")
    assert [e["node"]["id"] for e in reply.data["followUpWorklist"]["edges"]] == [late_pool["id"], pool["id"]]
    reply = await tenant.call("department_head", WORKLIST, scope="DEPARTMENT")
    assert {e["node"]["id"] for e in reply.data["followUpWorklist"]["edges"]} == {
        pool["id"], mine["id"], theirs["id"], late_pool["id"]}
    # the department's list is its head's; another department's pool is refused and recorded
    await assert_refused(tenant, "nurse", WORKLIST, "FORBIDDEN", "forbidden", scope="DEPARTMENT")
    await assert_refused(tenant, "nurse", WORKLIST, "FORBIDDEN", "other_department", scope="POOL",
                         dept=str(tenant.departments["B"].id))

    load = await tenant.call("department_head", WORKLOAD)
    assert load.errors == [], load.errors
    lines = {(line["owner"] or {}).get("id"): (line["overdue"], line["dueToday"])
             for line in load.data["followUpWorkload"]["lines"]}
    assert lines == {None: (1, 1), str(tenant.staff_ids["nurse"]): (1, 0), str(nurse2): (0, 1)}
    assert load.data["followUpWorkload"]["today"] == "2026-12-03"
    await assert_refused(tenant, "nurse", WORKLOAD, "FORBIDDEN", "forbidden")


async def cost(sql_counter: SqlCounter, tenant: Tenant, role: str, scope: str, first: int) -> int:
    start = len(sql_counter.statements)
    reply = await tenant.call(role, WORKLIST, scope=scope, first=first, dueBy="2026-12-31")
    assert reply.errors == [], reply.errors
    assert len(reply.data["followUpWorklist"]["edges"]) == first
    return len(sql_counter.statements) - start


@pytest.mark.parametrize(("role", "scope"), [("nurse", "MINE"), ("nurse", "POOL"), ("department_head", "DEPARTMENT")])
async def test_a_worklist_page_costs_the_same_whatever_its_size(
        tenant: Tenant, sql_counter: SqlCounter, role: str, scope: str) -> None:
    for n in range(6):
        pid = await make_patient(tenant, phone=f"+861380013800{n}")
        if scope == "POOL":
            await a_task(tenant, pid)
        else:
            await owned_task(tenant, pid=pid)
    small = await cost(sql_counter, tenant, role, scope, 2)
    large = await cost(sql_counter, tenant, role, scope, 6)
    assert small > 0 and large == small
