"""Races in the relationship domains found in a review of concurrent writes (December 2026), each shown failing
before its fix:
- the calendar's sweep read a cause (a follow-up call, a care plan's activity, a visit's re-visit day) and queued its
  message after the cause was closed or moved meanwhile: the message the close had cancelled was queued again, and
  sent for a call cancelled, a plan revoked, a day no longer true;
- a file archived while the no-show sweep marks one of its appointments: the archive cancelled the appointments it
  had read as booked, and recorded each as cancelled by it, also the one the sweep had just made a no-show (its
  UPDATE, waiting for the sweep's lock, then left it out);
- an invitation answered through two doors at once (the patient in the portal, a nurse on the phone), or cancelled
  while an answer waited for it: the loser was refused with no reason (the link's refusals carry one), and an answer
  refused because the invitation was cancelled meanwhile was told it had been answered;
- a follow-up call planned, or a care plan made, for a file archived meanwhile: the file's status was checked as read
  before its lock, so the archive (which cancels the file's open calls) came between and the new call stayed open,
  for a patient the institution no longer cares for (a death likewise); an alert, or a planned visit, likewise stayed on
  such a file;
- a ticket handed over by its owner while a supervisor handed it to someone else: the owner's right was checked on
  the ticket as read before its lock, so the owner, no longer one but still reaching it as its assignee, handed it
  on over the supervisor's choice; and a department head assigning a ticket handed to another department meanwhile
  (still reaching it as its assignee) put a nurse of their own department on another department's ticket;
- and a flag's refused moves (ENTERED_IN_ERROR is final) answered reason ``invalid``, or none, where every other
  lifecycle's refused move answers ``illegal_transition`` (docs/architecture.md, Why)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta
from typing import Any

import pytest

from models import (
    Appointment,
    CarePlan,
    Communication,
    Flag,
    FollowUpTask,
    Institution,
    QuestionnaireResponse,
    Ticket,
    Visit,
)
from resolvers import access, follow_up, reminder
from resolvers import appointment as appointments
from resolvers.context import Services
from tests.api.test_appointments import NOW, book, make_schedule
from tests.api.test_flags import CREATE as FLAG_CREATE
from tests.api.test_flags import SET_STATUS, UPDATE, raise_flag
from tests.api.test_questionnaire_responses import ANSWER, ENTER
from tests.api.test_reminders import (
    CANCEL_TASK,
    END_PLAN,
    PLAN,
    VISIT,
    VISIT_UPDATE,
    finished_visit,
    local,
    ok,
    patient,
)
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient
from tests.locks import another_transaction, held, pause_after, pause_before_entering, until_waiting
from tests.patients import open_account
from tests.surveys import GOOD, invited, questionnaire

ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id } }"
TODAY = date(2031, 5, 12)
TOMORROW = TODAY + timedelta(days=1)


async def sweep(tenant: Tenant, at: time) -> None:
    await reminder.sweep_institution(await Institution.get(id=tenant.id), local(TODAY, at))


async def statuses(tenant: Tenant) -> dict[str, str]:
    return {row.key: row.status for row in await Communication.filter(institution_id=tenant.id)}


async def plan(tenant: Tenant, *kinds: str) -> str:
    reply = await tenant.call("nurse", PLAN, input={
        "patientId": str(await patient(tenant)), "title": "Orthodontics", "startsOn": TODAY.isoformat(),
        "departmentId": str(tenant.departments["A"].id),
        "activities": [{"kind": kind, "dueOn": TOMORROW.isoformat()} for kind in kinds]})
    return str(ok(reply, "carePlanCreate")["id"])


async def task_of(plan_id: str) -> uuid.UUID:
    [task] = await FollowUpTask.filter(activity__plan_id=plan_id).values_list("id", flat=True)
    return uuid.UUID(str(task))


@pytest.mark.parametrize("first_run", [True, False])
async def test_a_sweep_that_read_causes_before_they_closed_queues_nothing_for_them(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, first_run: bool) -> None:
    """The sweep read an open call, an active plan's activity and a visit's re-visit day, then (held once it has read
    them) the call is cancelled, the plan revoked and the day moved: none of their messages is left queued. Before
    the fix, run a second time (``first_run`` False), it queued again the messages the closes had just cancelled (a
    cancelled key is not known, so it was queued anew); run first, it queued them after the closes. Either way they
    went out."""
    revoked, cancelled = await plan(tenant, "REHABILITATION", "CALL"), await plan(tenant, "CALL")
    visit = await finished_visit(tenant, await patient(tenant), TOMORROW)
    if not first_run:
        await sweep(tenant, time(8))
        assert sorted((await statuses(tenant)).values()) == ["queued"] * 4
    read = pause_after(monkeypatch, reminder, "_holidays")  # the sweep's last read before it schedules
    async with held(sweep(tenant, time(8, 10)), read) as swept:
        ok(await tenant.call("doctor", END_PLAN, id=revoked), "carePlanTransition")
        ok(await tenant.call("department_head", CANCEL_TASK, id=str(await task_of(cancelled))), "followUpTaskCancel")
        moved = (TOMORROW + timedelta(days=5)).isoformat()  # outside the sweep's window: nothing due for it now
        ok(await tenant.call("nurse", VISIT_UPDATE, id=visit, input={"revisitOn": moved}), "visitUpdate")
    await swept

    left = {key: status for key, status in (await statuses(tenant)).items() if status != "cancelled"}
    assert left == {}


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("closed_meanwhile", [True, False])
async def test_a_sweep_waits_for_a_call_being_closed_and_queues_nothing_for_it(
        tenant: Tenant, closed_meanwhile: bool) -> None:
    """The call closed in a transaction still open as the sweep queues (here its effect, under the task's held row:
    the task cancelled and its queued announcement with it, as ``follow_up.cancel`` does): the sweep waits for it
    and then leaves the call out. Before the fix it did not wait: it read the call open and queued the announcement
    after the close had cancelled what was queued. Not closed, the call is announced."""
    task = await task_of(await plan(tenant, "CALL"))
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM follow_up_task WHERE id = $1 FOR UPDATE", task)
        sweeping = asyncio.ensure_future(sweep(tenant, time(8)))
        await until_waiting([sweeping])
        if closed_meanwhile:
            await other.execute("UPDATE follow_up_task SET status = 'cancelled', version = version + 1 WHERE id = $1",
                                task)
            await other.execute("UPDATE communication SET status = 'cancelled' WHERE key LIKE $1 AND status = 'queued'",
                                f"follow_up:{task}:%")
    await asyncio.wait_for(sweeping, 10)

    assert await statuses(tenant) == ({} if closed_meanwhile else {f"follow_up:{task}:{TOMORROW}": "queued"})
    assert (await CarePlan.filter(institution_id=tenant.id).count()) == 1


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("marked_meanwhile", [True, False])
async def test_an_archive_waiting_for_the_no_show_sweep_records_no_cancellation_it_did_not_make(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, marked_meanwhile: bool) -> None:
    """The no-show sweep holds a booked appointment of the file (``_mark_no_shows_of`` locks its batch) and marks it
    while the file is archived: the archive waits for it and then records nothing about that appointment, which
    stays a no-show. Before the fix the archive read the file's booked appointments unlocked, its UPDATE waited and
    then left the no-show out, and it recorded a cancellation of it all the same. Not marked, it is cancelled and
    recorded."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    pid = await make_patient(tenant)
    made = await book(tenant, await make_schedule(tenant), pid)
    appointment = uuid.UUID(made["id"])
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM appointment WHERE id = $1 FOR UPDATE", appointment)
        archiving = asyncio.ensure_future(tenant.call("front_desk", ARCHIVE, id=str(pid)))
        await until_waiting([archiving])
        if marked_meanwhile:
            await other.execute("UPDATE appointment SET status = 'noshow', version = version + 1 WHERE id = $1",
                                appointment)
    reply = await asyncio.wait_for(archiving, 10)

    assert reply.errors == []
    row = await Appointment.get(id=appointment)
    cancellations = await tenant.audit_events(resource_type="appointment", resource_id=appointment, action="update")
    if marked_meanwhile:
        assert (row.status, cancellations) == ("noshow", [])
    else:
        assert (row.status, row.cancellation_reason, len(cancellations)) == ("cancelled", "institution", 1)


async def test_a_flag_entered_in_error_refuses_every_move_as_an_illegal_transition(tenant: Tenant) -> None:
    """Two nurses change one flag at once, one entering it in error: the other's change over the version it read is a
    CONFLICT; read again, every change of the retracted flag (back to ACTIVE, a detail) is ``illegal_transition``,
    nothing written. Before the fix the reasons were ``invalid`` and none."""
    flag = await raise_flag(tenant, await make_patient(tenant), "SPECIAL_NEEDS", role="front_desk",
                            detail="Large print")
    retracted, edited = await asyncio.gather(
        tenant.call("nurse", SET_STATUS, id=flag["id"], status="ENTERED_IN_ERROR"),
        tenant.call("front_desk", UPDATE, id=flag["id"], input={"detail": "Large print, accompanied"}))
    if edited.errors:  # the edit read the flag before the retraction wrote (its write over that version is stale), or
        # after it (the flag is retracted)
        assert edited.codes == ["CONFLICT"] or refusals(edited) == [("BAD_USER_INPUT", "illegal_transition", "id")]
        assert retracted.errors == []
    else:  # the edit came first: the retraction over the next version
        assert retracted.errors == [] or retracted.codes == ["CONFLICT"]
        if retracted.errors:
            retracted = await tenant.call("nurse", SET_STATUS, id=flag["id"], status="ENTERED_IN_ERROR")
    assert retracted.errors == [] and retracted.data["flagUpdate"]["status"] == "ENTERED_IN_ERROR"
    for change in ({"status": "ACTIVE"}, {"detail": "Again"}, {"status": "ENTERED_IN_ERROR", "endsOn": "2099-12-31"}):
        refused = await tenant.call("nurse", UPDATE, id=flag["id"], input=change)
        assert [(e["extensions"]["code"], e["extensions"].get("reason")) for e in refused.errors] == [
            ("BAD_USER_INPUT", "illegal_transition")], change


def refusals(reply: Any) -> list[tuple[str, str | None, str | None]]:
    return [(e["extensions"]["code"], e["extensions"].get("reason"), e["extensions"].get("field"))
            for e in reply.errors]


async def test_an_invitation_answered_through_two_doors_at_once_is_answered_once(
        tenant: Tenant, services: Services) -> None:
    """The patient answers in the portal as a nurse enters their answers taken on the phone: one answer is kept, the
    other is refused at ``invitationId`` with reason ``answered``, as the link says it (before the fix: no reason)."""
    pid, row, _ = await invited(tenant, services, await questionnaire(tenant))
    user = await open_account(tenant, pid)
    replies = await asyncio.gather(user.call(ANSWER, id=str(row.id), answers=GOOD),
                                   tenant.call("nurse", ENTER, id=str(row.id), answers=GOOD, source="PHONE"))

    assert sorted(refusals(reply) for reply in replies) == [[], [("BAD_USER_INPUT", "answered", "invitationId")]]
    assert await QuestionnaireResponse.filter(invitation_id=row.id).count() == 1


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("cancelled_meanwhile", [True, False])
async def test_an_answer_waiting_while_its_invitation_is_cancelled_is_refused_as_closed(
        tenant: Tenant, services: Services, cancelled_meanwhile: bool) -> None:
    """The invitation is cancelled (as a merge cancels a twin: status CANCELLED, version bumped) while the patient's
    answer waits for its row: the answer is refused with reason ``expired``, what a cancelled invitation answers, and
    nothing is written (before the fix: "already been answered", no reason). Not cancelled, the answer is kept."""
    pid, row, _ = await invited(tenant, services, await questionnaire(tenant))
    user = await open_account(tenant, pid)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM survey_invitation WHERE id = $1 FOR UPDATE", row.id)
        answering = asyncio.ensure_future(user.call(ANSWER, id=str(row.id), answers=GOOD))
        await until_waiting([answering])
        if cancelled_meanwhile:
            await other.execute("UPDATE survey_invitation SET status = 'cancelled', version = version + 1 "
                                "WHERE id = $1", row.id)
    reply = await asyncio.wait_for(answering, 10)

    answers = await QuestionnaireResponse.filter(invitation_id=row.id).count()
    if cancelled_meanwhile:
        assert (refusals(reply), answers) == ([("BAD_USER_INPUT", "expired", "invitationId")], 0)
        assert "expired" in reply.errors[0]["message"]
    else:
        assert (refusals(reply), answers) == ([], 1)


TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
ASSIGN = "mutation($id: ID!, $to: ID) { ticketAssign(id: $id, assigneeId: $to) { id } }"
TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
HANDOVER = "mutation($id: ID!, $to: ID) { ticketHandover(id: $id, toStaffId: $to) { id } }"


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("handed_meanwhile", [True, False])
async def test_an_owner_handing_over_a_ticket_a_supervisor_handed_meanwhile_is_refused(
        tenant: Tenant, handed_meanwhile: bool) -> None:
    """The front desk opened a ticket (its owner) and works it (its assignee). As it hands the ticket to a nurse, the
    department head hands it to themself (here its effect under the held ticket row): the front desk is no longer
    the owner nor a supervisor, so its handover answers CONFLICT and the supervisor's choice stands. Before the fix it
    was written over it. Not handed meanwhile, the owner hands it over."""
    reply = await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my appointment",
        "patientId": str(await make_patient(tenant))})
    ticket = ok(reply, "ticketCreate")["id"]
    ok(await tenant.call("support_agent", ASSIGN, id=ticket, to=str(tenant.staff_ids["front_desk"])), "ticketAssign")
    head = tenant.staff_ids["department_head"]
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE", uuid.UUID(ticket))
        handing = asyncio.ensure_future(tenant.call("front_desk", HANDOVER, id=ticket,
                                                    to=str(tenant.staff_ids["nurse"])))
        await until_waiting([handing])
        if handed_meanwhile:
            await other.execute("UPDATE ticket SET owner_id = $2, version = version + 1 WHERE id = $1",
                                uuid.UUID(ticket), head)
    answer = await asyncio.wait_for(handing, 10)

    owner = (await Ticket.get(id=ticket)).owner_id
    if handed_meanwhile:
        assert (answer.codes, owner) == (["CONFLICT"], head)
    else:
        assert (answer.errors, owner) == ([], tenant.staff_ids["nurse"])


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("moved_meanwhile", [True, False])
async def test_an_assignment_of_a_ticket_moved_to_another_department_meanwhile_is_refused(
        tenant: Tenant, moved_meanwhile: bool) -> None:
    """Department A's head works a ticket of A (its assignee) and assigns it to a nurse of A, as the ticket is handed
    to department B (here its effect under the held ticket row): the assignment answers CONFLICT and the ticket keeps
    its assignee. Before the fix the nurse of A was put on B's ticket. Not moved, the nurse is assigned."""
    reply = await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my appointment",
        "patientId": str(await make_patient(tenant)), "departmentId": str(tenant.departments["A"].id)})
    ticket = ok(reply, "ticketCreate")["id"]
    head = tenant.staff_ids["department_head"]
    ok(await tenant.call("department_head", ASSIGN, id=ticket, to=str(head)), "ticketAssign")
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM ticket WHERE id = $1 FOR UPDATE", uuid.UUID(ticket))
        assigning = asyncio.ensure_future(tenant.call("department_head", ASSIGN, id=ticket,
                                                      to=str(tenant.staff_ids["nurse"])))
        await until_waiting([assigning])
        if moved_meanwhile:
            await other.execute("UPDATE ticket SET department_id = $2, owner_id = NULL, version = version + 1 "
                                "WHERE id = $1", uuid.UUID(ticket), tenant.departments["B"].id)
    answer = await asyncio.wait_for(assigning, 10)

    assignee = (await Ticket.get(id=ticket)).assignee_id
    if moved_meanwhile:
        assert (answer.codes, assignee) == (["CONFLICT"], head)
    else:
        assert (answer.errors, assignee) == ([], tenant.staff_ids["nurse"])


@pytest.mark.parametrize("what", ["task", "plan", "flag", "visit"])
async def test_a_call_or_plan_made_for_a_file_archived_meanwhile_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """A nurse plans a call (or a care plan with a call, or raises an alert) for a file, held once the file was read
    active, as the front desk archives it: the write finds the file archived under its lock and is refused as one for
    an archived file is, nothing written. Before the fix the call was written open after the archive had cancelled the
    file's calls (the alert, on the archived file)."""
    monkeypatch.setattr(follow_up, "_now", lambda: local(TODAY, time(8)))
    pid = await patient(tenant)
    if what == "task":
        request = tenant.call("nurse", TASK_CREATE, input={"patientId": str(pid), "dueOn": TOMORROW.isoformat()})
    elif what == "visit":
        request = tenant.call("nurse", VISIT, input={
            "patientId": str(pid), "kind": "OUTPATIENT", "status": "PLANNED", "departmentId": str(
                tenant.departments["A"].id), "plannedAt": "2031-05-13T09:00:00+08:00"})
    elif what == "flag":
        request = tenant.call("nurse", FLAG_CREATE, input={"patientId": str(pid), "kind": "SPECIAL_NEEDS"})
    else:
        request = tenant.call("nurse", PLAN, input={
            "patientId": str(pid), "title": "Orthodontics", "startsOn": TODAY.isoformat(),
            "departmentId": str(tenant.departments["A"].id), "activities": [{"kind": "CALL",
                                                                            "dueOn": TOMORROW.isoformat()}]})
    locked = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(request, locked) as made:
        ok(await tenant.call("front_desk", ARCHIVE, id=str(pid)), "patientArchive")
    reply = await made

    assert refusals(reply) == [("BAD_USER_INPUT", "invalid", "input.patientId")]
    assert (await FollowUpTask.filter(patient_id=pid).count(), await CarePlan.filter(patient_id=pid).count(),
            await Flag.filter(patient_id=pid).count(), await Visit.filter(patient_id=pid).count()) == (0, 0, 0, 0)
