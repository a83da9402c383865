"""A write that names a record the merge moved, not the file, follows it to the survivor (found in review):
followUpTaskComplete with openTicket on a task read just before its file was merged opened the ticket on the file it
had read, refused there inside the completion's transaction: INTERNAL_SERVER_ERROR. The task, its ticket and its survey
invitation are now the survivor's, as when the call is recorded after the merge, and as closing a ticket or completing a
call already did; a survivor out of the caller's reach answers as the task then does (NOT_FOUND, nothing written).
appointmentCancel follows the survivor the same way (access.following_survivor) and, found in review, did so without
asking whether the caller reaches it: a nurse cancelled an appointment, and told the patient, on a file of a department
she does not reach. Closing a ticket follows the survivor without that question, as a ticket is reached through its own
scope, never its file's. The merge made sequential (right before the writer's transaction opens), on SQLite and
PostgreSQL; the concurrent case is in test_races_merge_writers."""

from __future__ import annotations

import uuid

import pytest

from models import Appointment, FollowUpTask, SurveyInvitation, Ticket
from resolvers import appointment as appointments
from resolvers import follow_up
from resolvers import ticket as tickets
from tests import surveys
from tests.api import test_appointments as appointment_tests
from tests.api import test_reminders as reminder_tests
from tests.api.test_follow_up import COMPLETE, NOW, owned_task
from tests.api.test_patient_merge_messages import merged_before_transaction, messages
from tests.api.test_survey_invitations import TICKET_CREATE, TICKET_MOVE
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

WORSE = {"reached": True, "condition": "WORSE", "needsHelp": True, "openTicket": True}
NOT_REACHED = {"reached": False}


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


async def test_a_call_that_did_not_reach_the_patient_completed_as_its_file_is_merged_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ticket, no invitation: the completion alone, recorded on the file the task is on, as a call that reached
    the patient is (found in review: this path recorded it on the merged file, out of the survivor's trail)."""
    survivor, duplicate = await two_files(tenant)
    task = await owned_task(tenant, pid=duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input=NOT_REACHED)

    assert reply.errors == [], reply.errors
    assert reply.data["followUpTaskComplete"]["status"] == "COMPLETED"
    stored = await FollowUpTask.get(id=task["id"])
    assert (stored.patient_id, stored.status, stored.reached) == (survivor, "completed", False)
    written = [event for event in await tenant.audit_events(action="update", resource_type="follow_up_task",
                                                            resource_id=task["id"]) if event.seq > before]
    assert [str(event.patient_id) for event in written] == [str(survivor)]


@pytest.mark.parametrize("form", [WORSE, NOT_REACHED], ids=["ticket", "not_reached"])
async def test_a_call_completed_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, form: dict[str, object]) -> None:
    """The denied twin: the survivor is in department B, which the nurse does not reach (nor its care team). A call
    that did not reach the patient asks the same (found in review: it was completed on a file beyond reach)."""
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    task = await owned_task(tenant, pid=duplicate)
    merged_before_transaction(monkeypatch, follow_up, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input=form)

    assert reply.codes == ["NOT_FOUND"], reply.errors
    stored = await FollowUpTask.get(id=task["id"])
    assert (stored.patient_id, stored.status, stored.ticket_id) == (survivor, "requested", None)
    assert await Ticket.filter(institution_id=tenant.id).count() == 0
    assert [d[:3] for d in await denials_since(tenant.id, before)] == [("update", "follow_up_task", "not_found")]
    assert [event for event in await tenant.audit_events(resource_type="follow_up_task", outcome="allowed")
            if event.seq > before and event.action != "read"] == []


# -- appointmentCancel ----------------------------------------------------------------------------------------------


async def booked_on_a_file_merged_at_the_cancel(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                survivor_department: str) -> tuple[uuid.UUID, str]:
    """An appointment booked on a file of department A that is merged, right before the cancel's transaction, into
    a survivor of ``survivor_department``; the survivor and the appointment's id."""
    monkeypatch.setattr(appointments, "_now", lambda: appointment_tests.NOW)
    schedule = await appointment_tests.make_schedule(tenant)
    survivor = await reminder_tests.patient(tenant, departmentId=str(tenant.departments[survivor_department].id))
    duplicate = await reminder_tests.patient(tenant)
    made = await appointment_tests.book(tenant, schedule, duplicate)
    merged_before_transaction(monkeypatch, appointments, tenant, survivor, duplicate)
    return survivor, made["id"]


async def test_an_appointment_cancelled_as_its_file_is_merged_is_cancelled_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed twin: the survivor is in the nurse's department."""
    survivor, appointment = await booked_on_a_file_merged_at_the_cancel(tenant, monkeypatch, "A")

    reply = await tenant.call("nurse", appointment_tests.CANCEL, id=appointment, reason="INSTITUTION")

    assert reply.errors == [], reply.errors
    cancelled = reply.data["appointmentCancel"]
    assert (cancelled["status"], cancelled["patient"]["id"]) == ("CANCELLED", str(survivor))
    assert await messages(tenant, f"appointment:{appointment}:cancellation") == {survivor: ["queued"]}
    written = await tenant.audit_events(action="update", resource_type="appointment", resource_id=appointment)
    assert str(written[-1].patient_id) == str(survivor)  # on the trail of the file it is on


async def test_an_appointment_cancelled_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the survivor is in department B, which the nurse does not reach: the appointment answers as
    it does after the merge (NOT_FOUND), nothing is cancelled or told, and the refusal is on the trail."""
    survivor, appointment = await booked_on_a_file_merged_at_the_cancel(tenant, monkeypatch, "B")
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", appointment_tests.CANCEL, id=appointment, reason="INSTITUTION")

    assert reply.codes == ["NOT_FOUND"], reply.errors
    stored = await Appointment.get(id=appointment)
    assert (stored.patient_id, stored.status, stored.cancelled_at) == (survivor, "booked", None)
    assert await messages(tenant, f"appointment:{appointment}:cancellation") == {}
    assert await messages(tenant, f"appointment:{appointment}:reminder") == {survivor: ["queued"]}  # not cancelled
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("update", "appointment", "not_found", uuid.UUID(appointment))]


# -- a ticket closed: reached through its own scope -----------------------------------------------------------------


async def test_a_ticket_closed_as_its_file_is_merged_out_of_the_closers_patient_reach_invites_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticket is reached through its own scope (the nurse opened it: she owns it), never through its patient's
    file, and the merge leaves that scope as it was: her close after the merge is allowed though the survivor is in a
    department she does not reach, and so is her close as the merge happens; the survey invitation, the trigger's,
    goes to the survivor. No survivor check to add here (access.following_survivor is for records reached through
    their file)."""
    await surveys.trigger(tenant, await surveys.questionnaire(tenant), event="TICKET_CLOSED", delayHours=0)
    survivor = await surveys.reachable(tenant, "B")
    duplicate = await surveys.reachable(tenant)
    ticket = (await tenant.call("nurse", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my bill", "patientId": str(duplicate)}
    )).data["ticketCreate"]
    for to, more in (("ACKNOWLEDGED", {}), ("INVESTIGATING", {}), ("RESOLVED", {"resolution": "Done"})):
        assert (await tenant.call("nurse", TICKET_MOVE, id=ticket["id"], to=to, **more)).errors == []
    merged_before_transaction(monkeypatch, tickets, tenant, survivor, duplicate)

    reply = await tenant.call("nurse", TICKET_MOVE, id=ticket["id"], to="CLOSED")

    assert reply.errors == [], reply.errors
    assert (await Ticket.get(id=ticket["id"])).patient_id == survivor
    invited = await SurveyInvitation.filter(ticket_id=ticket["id"]).values_list("patient_id", flat=True)
    assert invited == [survivor], invited
