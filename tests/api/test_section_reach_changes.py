"""Changes to a section's records (an appointment moved, cancelled, checked in or recorded as a no-show; a follow-up
task claimed, assigned, its call attempts and outcome recorded, failed or cancelled) are made only where a role of the
account allowed to change that section reaches the file, not wherever a role that reads the section does (as reading
and adding, tests/api/test_section_reach.py). Found in review: a support agent (who reads every appointment of the
institution) who is also a nurse of department B (who changes appointments) cancelled and moved any appointment of
the institution. Refused now: FORBIDDEN, the refusal on the trail, nothing written; the same account changes its own
department's records. A record the write finds again on a merge's survivor is asked the same of the survivor."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import Appointment, AuditEvent, FollowUpAttempt, FollowUpTask, Patient, Ticket, Visit
from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import appointment as appointments
from resolvers import follow_up
from resolvers import institution as institutions
from resolvers.context import Services
from tests.api.test_appointments import CANCEL, CHECK_IN, NO_SHOW, NOW, RESCHEDULE, TOMORROW_9, at, book, make_schedule
from tests.api.test_follow_up import ASSIGN, ATTEMPT, CLAIM, COMPLETE, FAIL, a_task
from tests.api.test_follow_up import CANCEL as TASK_CANCEL
from tests.api.test_follow_up import NOW as TASK_NOW
from tests.api.test_patient_merge import assign
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.api.test_patient_merge_versioned_writes import merged_once_found
from tests.factories import PASSWORD, Response, Tenant, login, make_patient
from tests.patients import denials_since, events_since, mark

# -- appointments -------------------------------------------------------------------------------------------------

# Each change's call as the account; the slots are on Tuesday 2 March 2027 from 09:00 (Shanghai), the clock then at
# 11:10: they have begun (a no-show is recorded, a patient checked in), the one moved to (Wednesday) has not.
APPOINTMENT_CHANGES: dict[str, Callable[[Tenant, str, str], Awaitable[Response]]] = {
    "appointmentReschedule": lambda t, who, a: t.call(who, RESCHEDULE, id=a, slotStart=at(3, 14)),
    "appointmentCancel": lambda t, who, a: t.call(who, CANCEL, id=a, reason="INSTITUTION"),
    "appointmentNoShow": lambda t, who, a: t.call(who, NO_SHOW, id=a),
}
AFTER_THE_SLOT = (TOMORROW_9 + timedelta(hours=2, minutes=10)).astimezone(UTC)


async def account(tenant: Tenant, services: Services, client: httpx.AsyncClient, key: str, roles: list[str]) -> str:
    """A signed-in account of department B holding ``roles``, called as ``tenant.call(key, ...)``."""
    email = f"{key}.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name=key, password=PASSWORD,
                                              roles=roles, departments=[tenant.departments["B"]])
    tenant.staff_ids[key], tenant.tokens[key] = staff.id, await login(client, email)
    return key


async def agent_nurse(tenant: Tenant, services: Services, client: httpx.AsyncClient) -> str:
    """The support agent reads every appointment of the institution; the nurse of department B changes them."""
    return await account(tenant, services, client, "agent_nurse", ["support_agent", "nurse"])


async def appointments_stored(tenant: Tenant) -> tuple[Any, ...]:
    rows = await Appointment.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "patient_id", "status", "seat", "version", "visit_id", "cancellation_reason")
    return tuple(rows), await Visit.filter(institution_id=tenant.id).count()


async def booked_in(tenant: Tenant, schedule: str, department: str, hour: int) -> tuple[uuid.UUID, str]:
    """A patient of ``department`` with an appointment at ``hour`` on Tuesday, booked by the front desk."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments[department].id))
    return pid, (await book(tenant, schedule, pid, start=at(2, hour)))["id"]


@pytest.mark.parametrize("name", sorted(APPOINTMENT_CHANGES))
async def test_an_appointment_changes_only_where_a_role_that_changes_appointments_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        name: str) -> None:
    """The support agent and nurse of department B moved, cancelled and recorded no-shows of department A's patients
    (each went through before). Refused now, recorded, the appointment as it was."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    who = await agent_nurse(tenant, services, client)
    pid, appointment = await booked_in(tenant, await make_schedule(tenant), "A", 9)
    monkeypatch.setattr(appointments, "_now", lambda: AFTER_THE_SLOT)
    before, seq = await appointments_stored(tenant), await mark(tenant.id)

    refused = await APPOINTMENT_CHANGES[name](tenant, who, appointment)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert await appointments_stored(tenant) == before  # status, seat, version as they were; no new appointment
    assert await denials_since(tenant.id, seq) == [("update", "appointment", "forbidden", uuid.UUID(appointment), pid)]


@pytest.mark.parametrize(("name", "status"), [("appointmentCancel", "cancelled"), ("appointmentNoShow", "noshow"),
                                              ("appointmentReschedule", "cancelled")])
async def test_the_same_account_changes_its_departments_appointments(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        name: str, status: str) -> None:
    """The allowed twin: the patient in department B, which the nurse reaches."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    who = await agent_nurse(tenant, services, client)
    _, appointment = await booked_in(tenant, await make_schedule(tenant), "B", 9)
    monkeypatch.setattr(appointments, "_now", lambda: AFTER_THE_SLOT)

    reply = await APPOINTMENT_CHANGES[name](tenant, who, appointment)

    assert reply.errors == [], reply.errors
    assert (await Appointment.get(id=appointment)).status == status


async def support_agents_admit(tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    """This institution's policy lets its support agents open visits (reach: the institution): a check-in then
    passes the visit's check, and the appointment's own is what stands between the account and the change."""
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + f"p, support_agent, {tenant.id}, visit, create, allow\n")
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))


async def test_a_check_in_changes_the_appointment_only_where_a_role_that_changes_appointments_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """A check-in opens a visit and makes the appointment ARRIVED: where the roles that add visits reach but no role
    that changes appointments does, refused (it went through before), nothing written; the twin on B's file."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    await support_agents_admit(tenant, services, monkeypatch, tmp_path)
    who = await agent_nurse(tenant, services, client)
    schedule = await make_schedule(tenant)
    pid, in_a = await booked_in(tenant, schedule, "A", 9)
    _, in_b = await booked_in(tenant, schedule, "B", 10)
    monkeypatch.setattr(appointments, "_now", lambda: AFTER_THE_SLOT)
    before, seq = await appointments_stored(tenant), await mark(tenant.id)

    refused = await tenant.call(who, CHECK_IN, id=in_a)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert await appointments_stored(tenant) == before  # still booked, no visit
    assert await denials_since(tenant.id, seq) == [("update", "appointment", "forbidden", uuid.UUID(in_a), pid)]
    arrived = await tenant.call(who, CHECK_IN, id=in_b)
    assert arrived.errors == [] and arrived.data["appointmentCheckIn"]["status"] == "ARRIVED", arrived.errors


@pytest.mark.parametrize("survivor_department", ["A", "B"])
async def test_an_appointment_cancelled_as_its_file_is_merged_asks_the_survivor(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        survivor_department: str) -> None:
    """The account read the appointment on a file of department B; merged meanwhile into a file of department A
    (which only the support agent's reach holds), the cancellation is refused there as it is asked after the merge:
    FORBIDDEN, recorded on the survivor, the appointment still booked. Merged into B's: cancelled on the survivor."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    who = await agent_nurse(tenant, services, client)
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    duplicate, appointment = await booked_in(tenant, await make_schedule(tenant), "B", 9)
    merged_before_transaction(monkeypatch, appointments, tenant, survivor, duplicate)
    seq = await mark(tenant.id)

    reply = await tenant.call(who, CANCEL, id=appointment, reason="INSTITUTION")

    row = await Appointment.get(id=appointment)
    if survivor_department == "B":
        assert reply.errors == [], reply.errors
        assert (row.patient_id, row.status) == (survivor, "cancelled")
        return
    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "booked", 1)
    assert await denials_since(tenant.id, seq) == [
        ("update", "appointment", "forbidden", uuid.UUID(appointment), survivor)]


@pytest.mark.parametrize("survivor_department", ["A", "B"])
async def test_a_no_show_found_again_on_the_survivor_asks_the_survivor(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        survivor_department: str) -> None:
    """appointmentNoShow writes only while the appointment is on the file it found it on; merged meanwhile, it finds
    the appointment again on the survivor, and asks there what it asked of the first file: FORBIDDEN on department
    A's survivor, recorded there, nothing written; recorded on B's survivor."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    who = await agent_nurse(tenant, services, client)
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    duplicate, appointment = await booked_in(tenant, await make_schedule(tenant), "B", 9)
    monkeypatch.setattr(appointments, "_now", lambda: AFTER_THE_SLOT)
    merged_once_found(tenant, monkeypatch, appointments, "find", survivor, duplicate)
    seq = await mark(tenant.id)

    reply = await tenant.call(who, NO_SHOW, id=appointment)

    row = await Appointment.get(id=appointment)
    if survivor_department == "B":
        assert reply.errors == [], reply.errors
        assert (row.patient_id, row.status) == (survivor, "noshow")
        return
    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "booked", 1)
    assert await denials_since(tenant.id, seq) == [
        ("update", "appointment", "forbidden", uuid.UUID(appointment), survivor)]


# -- follow-up tasks ----------------------------------------------------------------------------------------------

BUSY = {"channel": "PHONE", "outcome": "BUSY"}
REACHED = {"reached": True, "condition": "SAME"}
Made = Callable[[Tenant, str, uuid.UUID], Awaitable[str]]


async def pool_task(tenant: Tenant, who: str, pid: uuid.UUID) -> str:
    return str((await a_task(tenant, pid, role=who))["id"])


async def own_task(tenant: Tenant, who: str, pid: uuid.UUID) -> str:
    return str((await a_task(tenant, pid, role=who, ownerId=str(tenant.staff_ids[who])))["id"])


async def tried_task(tenant: Tenant, who: str, pid: uuid.UUID) -> str:
    """The account's task with one attempt that did not reach the patient: one it may mark failed."""
    task = await own_task(tenant, who, pid)
    assert (await tenant.call(who, ATTEMPT, id=task, input=BUSY)).errors == []
    return task


# mutation -> (the task it needs, the call as the account, the task's status once it went through)
TASK_CHANGES: dict[str, tuple[Made, Callable[[Tenant, str, str], Awaitable[Response]], str]] = {
    "followUpTaskClaim": (pool_task, lambda t, who, task: t.call(who, CLAIM, id=task), "accepted"),
    "followUpTaskAssign": (pool_task, lambda t, who, task: t.call(who, ASSIGN, id=task,
                                                                   staff=str(t.staff_ids[who])), "requested"),
    "followUpAttemptRecord": (own_task, lambda t, who, task: t.call(who, ATTEMPT, id=task, input=BUSY), "requested"),
    "followUpTaskComplete": (own_task, lambda t, who, task: t.call(who, COMPLETE, id=task, input=REACHED),
                             "completed"),
    "followUpTaskFail": (tried_task, lambda t, who, task: t.call(who, FAIL, id=task), "failed"),
    "followUpTaskCancel": (own_task, lambda t, who, task: t.call(who, TASK_CANCEL, id=task), "cancelled"),
}


@pytest.fixture
async def desk_nurse(tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
                     tmp_path: Path) -> str:
    """This institution's policy lets its support desk read follow-up calls and the clinical notes they need (reach:
    the institution); the account is also a nurse and the head of department B, who change tasks there."""
    monkeypatch.setattr(follow_up, "_now", lambda: TASK_NOW)
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + "".join(f"p, support_agent, {tenant.id}, {obj}, read, allow\n"
                                                        for obj in ("follow_up_task", "patient.clinical")))
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))
    return await account(tenant, services, client, "desk_nurse", ["support_agent", "nurse", "department_head"])


async def tasks_stored(tenant: Tenant) -> tuple[Any, ...]:
    tasks = await FollowUpTask.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "patient_id", "status", "owner_id", "version", "completed_at")
    return tuple(tasks), await FollowUpAttempt.filter(institution_id=tenant.id).count()


async def task_on_transferred_file(tenant: Tenant, who: str, made: Made) -> tuple[uuid.UUID, str]:
    """A task the account planned (and worked) while the patient was in department B, which then moved to A."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    task = await made(tenant, who, pid)
    await Patient.filter(id=pid).update(department_id=tenant.departments["A"].id)  # transferred
    return pid, task


@pytest.mark.parametrize("name", sorted(TASK_CHANGES))
async def test_a_task_changes_only_where_a_role_that_changes_tasks_reaches(
        tenant: Tenant, desk_nurse: str, name: str) -> None:
    """Read through the support desk's reach, the task was changed with the nurse's or the head's right on a file
    neither reaches (it went through before): FORBIDDEN, recorded on the file, nothing written."""
    made, change, _ = TASK_CHANGES[name]
    pid, task = await task_on_transferred_file(tenant, desk_nurse, made)
    before, seq = await tasks_stored(tenant), await mark(tenant.id)

    refused = await change(tenant, desk_nurse, task)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert await tasks_stored(tenant) == before  # status, owner, version and attempts as they were
    assert await denials_since(tenant.id, seq) == [
        ("update", "follow_up_task", "forbidden", uuid.UUID(task), pid)]


@pytest.mark.parametrize("name", sorted(TASK_CHANGES))
async def test_the_same_account_changes_its_departments_tasks(tenant: Tenant, desk_nurse: str, name: str) -> None:
    """The allowed twin: the patient still in department B."""
    made, change, status = TASK_CHANGES[name]
    task = await made(tenant, desk_nurse, await make_patient(tenant, departmentId=str(tenant.departments["B"].id)))
    reply = await change(tenant, desk_nurse, task)
    assert reply.errors == [], reply.errors
    assert (await FollowUpTask.get(id=task)).status == status


@pytest.mark.parametrize("survivor_department", ["A", "B"])
async def test_a_task_changed_as_its_file_is_merged_asks_the_survivor(
        tenant: Tenant, desk_nurse: str, monkeypatch: pytest.MonkeyPatch, survivor_department: str) -> None:
    """Found on a file of department B, merged meanwhile into one of department A: the cancellation is refused as it
    is asked after the merge (FORBIDDEN, recorded on the survivor, the task open); into B's: cancelled there."""
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    duplicate = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    task = await own_task(tenant, desk_nurse, duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    seq = await mark(tenant.id)

    reply = await tenant.call(desk_nurse, TASK_CANCEL, id=task)

    row = await FollowUpTask.get(id=task)
    if survivor_department == "B":
        assert reply.errors == [], reply.errors
        assert (row.patient_id, row.status) == (survivor, "cancelled")
        return
    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "requested", 1)
    assert await denials_since(tenant.id, seq) == [("update", "follow_up_task", "forbidden", uuid.UUID(task),
                                                    survivor)]


@pytest.mark.parametrize("department", ["A", "B"])
async def test_a_head_who_is_also_a_doctor_of_the_care_team_changes_tasks_of_her_department_only(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        department: str) -> None:
    """Under the policy as shipped: a doctor reads the tasks of the patients of her care team (wherever they are),
    the head of department B changes tasks (assigns, cancels) of department B's patients. Together they assigned and
    cancelled department B's calls for a patient of department A (each went through before): FORBIDDEN now, recorded,
    nothing written; for a patient of department B both go through."""
    monkeypatch.setattr(follow_up, "_now", lambda: TASK_NOW)
    who = await account(tenant, services, client, "doctor_head", ["doctor", "department_head"])
    nurse_b = await account(tenant, services, client, "nurse_b", ["nurse"])
    pid = await make_patient(tenant, departmentId=str(tenant.departments[department].id))
    await assign(tenant, pid, who)  # the doctor is in the patient's care team
    creator = "nurse" if department == "A" else nurse_b
    tasks = [(await a_task(tenant, pid, role=creator, departmentId=str(tenant.departments["B"].id)))["id"]
             for _ in range(2)]
    changes = [lambda task: tenant.call(who, ASSIGN, id=task, staff=str(tenant.staff_ids[nurse_b])),
               lambda task: tenant.call(who, TASK_CANCEL, id=task)]

    for task, change in zip(tasks, changes, strict=True):
        before, seq = await tasks_stored(tenant), await mark(tenant.id)
        reply = await change(task)
        if department == "B":
            assert reply.errors == [], reply.errors
            continue
        assert reply.codes == ["FORBIDDEN"], reply.errors
        assert await tasks_stored(tenant) == before
        assert await denials_since(tenant.id, seq) == [
            ("update", "follow_up_task", "forbidden", uuid.UUID(task), pid)]
    if department == "B":
        assert [(await FollowUpTask.get(id=task)).status for task in tasks] == ["requested", "cancelled"]


def finance_works_calls(tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *,
                        writes_clinical: bool) -> None:
    """This institution's policy lets its finance staff read and change follow-up calls and read (``writes_clinical``:
    and write) their clinical notes (reach: the institution)."""
    rights = [("follow_up_task", "read"), ("follow_up_task", "update"), ("patient.clinical", "read"),
              *([("patient.clinical", "update")] if writes_clinical else [])]
    policy = tmp_path / f"policy-{writes_clinical}.csv"
    policy.write_text(POLICY_PATH.read_text() + "".join(f"p, finance, {tenant.id}, {obj}, {act}, allow\n"
                                                        for obj, act in rights))
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))


async def finance_nurse(tenant: Tenant, services: Services, client: httpx.AsyncClient,
                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, writes_clinical: bool) -> str:
    """An account of finance (as ``finance_works_calls``) that is also a nurse of department B, who makes the calls,
    writes their clinical outcome and opens tickets."""
    monkeypatch.setattr(follow_up, "_now", lambda: TASK_NOW)
    finance_works_calls(tenant, services, monkeypatch, tmp_path, writes_clinical=writes_clinical)
    return await account(tenant, services, client, "finance_nurse", ["finance", "nurse"])


@pytest.mark.parametrize("department", ["A", "B"])
async def test_a_call_that_opens_a_ticket_asks_where_the_roles_that_open_tickets_reach(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, department: str) -> None:
    """The nurse's own call for a patient since moved to department A, completed as worse with a ticket to open: the
    call and its outcome are written where finance reaches, but the ticket would be opened where no role of the
    account that opens tickets reaches. Found in review: asked inside the write's transaction, the refusal could not
    be recorded there and the call answered INTERNAL_SERVER_ERROR; now FORBIDDEN before it opens, recorded, nothing
    written. In department B it goes through."""
    who = await finance_nurse(tenant, services, client, monkeypatch, tmp_path, writes_clinical=True)
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    task = await own_task(tenant, who, pid)
    await Patient.filter(id=pid).update(department_id=tenant.departments[department].id)
    before, tickets, seq = await tasks_stored(tenant), await Ticket.filter(institution_id=tenant.id).count(), \
        await mark(tenant.id)

    reply = await tenant.call(who, COMPLETE, id=task, input={"reached": True, "condition": "WORSE",
                                                             "openTicket": True})

    if department == "B":
        assert reply.errors == [], reply.errors
        assert reply.data["followUpTaskComplete"]["ticketId"] is not None
        return
    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert (await tasks_stored(tenant), await Ticket.filter(institution_id=tenant.id).count()) == (before, tickets)
    assert await denials_since(tenant.id, seq) == [("create", "ticket", "forbidden", None, pid)]


async def test_a_call_that_opens_a_ticket_merged_meanwhile_asks_the_survivor_where_tickets_are_opened(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """As above, but the call's file (department B: asked before the transaction, allowed) is merged right before
    the write's transaction into a file of department A: the call and its outcome follow the task there (finance's
    reach), the ticket would be opened where no role that opens tickets reaches. It answered INTERNAL_SERVER_ERROR (the
    ticket's refusal asked inside the transaction, where it cannot be recorded); now FORBIDDEN, recorded on the
    survivor once rolled back, nothing written."""
    who = await finance_nurse(tenant, services, client, monkeypatch, tmp_path, writes_clinical=True)
    duplicate = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    survivor = await make_patient(tenant, departmentId=str(tenant.departments["A"].id))
    task = await own_task(tenant, who, duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    tickets = await Ticket.filter(institution_id=tenant.id).count()

    reply = await tenant.call(who, COMPLETE, id=task, input={"reached": True, "condition": "WORSE",
                                                             "openTicket": True})

    assert reply.codes == ["FORBIDDEN"], reply.errors
    row = await FollowUpTask.get(id=task)
    assert (row.patient_id, row.status, await Ticket.filter(institution_id=tenant.id).count()) == (
        survivor, "requested", tickets)
    refusals = await AuditEvent.filter(institution_id=tenant.id, outcome="denied", patient_id=survivor,
                                       reason="forbidden").values_list("action", "resource_type", "resource_id")
    assert refusals == [("update", "follow_up_task", uuid.UUID(task))]


@pytest.mark.parametrize("name", ["followUpAttemptRecord", "followUpTaskComplete", "followUpTaskFail"])
async def test_a_call_s_clinical_outcome_is_written_where_a_role_that_writes_it_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, name: str) -> None:
    """The nurse's own call for a patient since moved to department A: the task is changed where finance reaches,
    but its attempts and outcome are the clinical class of the file, written with the nurse's right where the nurse
    does not reach (went through before, as patientUpdate's classes did before access.require_class_write asked the
    updating roles' reach): FORBIDDEN, recorded with the class, nothing written. With finance writing the class too
    it goes through."""
    who = await finance_nurse(tenant, services, client, monkeypatch, tmp_path, writes_clinical=False)
    made, change, status = TASK_CHANGES[name]
    pid, task = await task_on_transferred_file(tenant, who, made)
    before, seq = await tasks_stored(tenant), await mark(tenant.id)

    refused = await change(tenant, who, task)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert await tasks_stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [
        ("update", "follow_up_task", "forbidden", uuid.UUID(task), pid)]
    assert [e.field_classes for e in await events_since(tenant.id, seq, outcome="denied")] == ["clinical"]
    finance_works_calls(tenant, services, monkeypatch, tmp_path, writes_clinical=True)
    reply = await change(tenant, who, task)
    assert reply.errors == [], reply.errors
    assert (await FollowUpTask.get(id=task)).status == status
