"""Deleting a contact that other records name, through the API: the database keeps a contact that a message, a
survey invitation, a ticket or a contract names (ON DELETE RESTRICT), and ``contactDelete`` says so with a coded
CONFLICT (reason ``contact_referenced``) instead of an unexpected error, writes nothing and puts the refusal on
the trail; a contact nothing names is deleted as before."""

from __future__ import annotations

import uuid
from typing import Any

from models import Communication, Contact, SurveyInvitation
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark
from tests.surveys import family_member, finished_visit, questionnaire, texted, trigger

DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"
CONTACTS = "query($id: ID!) { patient(id: $id) { contacts { id mayReceiveInformation } } }"
LOG_CALL = """mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }"""
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def contact_ids(tenant: Tenant, pid: uuid.UUID) -> list[str]:
    return [c["id"] for c in ok(await tenant.call("front_desk", CONTACTS, id=str(pid)), "patient")["contacts"]]


async def assert_kept(tenant: Tenant, pid: uuid.UUID, contact: uuid.UUID, role: str = "front_desk") -> None:
    """contactDelete refused with CONFLICT contact_referenced, nothing written, the refusal recorded."""
    before = await mark(tenant.id)
    reply = await tenant.call(role, DELETE, id=str(contact))
    assert reply.codes == ["CONFLICT"] and reply.data == {"contactDelete": None}, reply.errors
    [error] = reply.errors
    assert (error["extensions"]["field"], error["extensions"]["reason"]) == ("id", "contact_referenced")
    assert "mayReceiveInformation" in error["message"] and "Unexpected" not in error["message"]
    assert str(contact) in await contact_ids(tenant, pid)  # still there, still readable
    assert await Contact.exists(id=contact, institution_id=tenant.id)
    assert await denials_since(tenant.id, before) == [("delete", "contact", "contact_referenced", contact, pid)]
    deletes = await tenant.audit_events(resource_type="contact", action="delete", outcome="allowed")
    assert [e for e in deletes if e.resource_id == contact] == []


async def test_a_contact_a_family_survey_invitation_names_is_kept(tenant: Tenant) -> None:
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0)
    pid = await texted(tenant)
    contact = await family_member(tenant, pid, "Zhao Family")
    await finished_visit(tenant, pid)
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    message = await Communication.get(institution_id=tenant.id, contact_id=contact)
    assert (invitation.contact_id, message.key) == (contact, f"survey:{invitation.id}:invitation")

    await assert_kept(tenant, pid, contact)
    await assert_kept(tenant, pid, contact, role="nurse")  # whoever asks; a second refusal, recorded again


async def test_a_contact_with_a_queued_message_only_is_kept(tenant: Tenant) -> None:
    # Nothing but a message waiting in the outbox names the contact (its invitation refused to exist would
    # not matter): the message would lose its address, so the contact stays.
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=48)
    pid = await texted(tenant)
    contact = await family_member(tenant, pid, "Waiting")
    await finished_visit(tenant, pid)
    [message] = await Communication.filter(institution_id=tenant.id, contact_id=contact)
    assert message.status == "queued"
    await SurveyInvitation.filter(institution_id=tenant.id, contact_id=contact).update(contact_id=None)
    await assert_kept(tenant, pid, contact)


async def test_a_contact_a_logged_call_names_is_kept(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    contact = await family_member(tenant, pid, "Called")
    ok(await tenant.call("front_desk", LOG_CALL, input={"patientId": str(pid), "contactId": str(contact),
                                                       "note": "Asked about the next visit"}),
       "communicationLogCall")
    await assert_kept(tenant, pid, contact)


async def test_a_contact_who_raised_a_ticket_is_kept(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    contact = await family_member(tenant, pid, "Complained")
    ok(await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Visiting hours", "patientId": str(pid),
        "contactId": str(contact)}), "ticketCreate")
    await assert_kept(tenant, pid, contact)


async def test_a_contact_nothing_names_is_deleted_alongside_one_that_is_kept(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    kept = await family_member(tenant, pid, "Called")
    free = await family_member(tenant, pid, "Never used")
    ok(await tenant.call("front_desk", LOG_CALL, input={"patientId": str(pid), "contactId": str(kept)}),
       "communicationLogCall")
    await assert_kept(tenant, pid, kept)

    before = await mark(tenant.id)
    assert ok(await tenant.call("front_desk", DELETE, id=str(free)), "contactDelete") == str(free)
    assert await contact_ids(tenant, pid) == [str(kept)]
    assert await denials_since(tenant.id, before) == []
    [deleted] = await tenant.audit_events(resource_type="contact", action="delete", outcome="allowed")
    assert (deleted.resource_id, deleted.patient_id, deleted.actor_id) == (free, pid, tenant.staff_ids["front_desk"])


async def test_a_referenced_contact_out_of_reach_is_still_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    # The check comes after reach and rights: a caller who may not delete the contact learns nothing of what
    # names it.
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    contact = await family_member(tenant, pid, "Called")
    ok(await tenant.call("front_desk", LOG_CALL, input={"patientId": str(pid), "contactId": str(contact)}),
       "communicationLogCall")
    before = await mark(tenant.id)
    assert (await tenant.call("nurse", DELETE, id=str(contact))).codes == ["NOT_FOUND"]  # department A's nurse
    assert (await tenant.call("doctor", DELETE, id=str(contact))).codes == ["FORBIDDEN"]
    assert (await other_tenant.call("front_desk", DELETE, id=str(contact))).codes == ["NOT_FOUND"]
    assert [(action, reason) for action, _, reason, _, _ in await denials_since(tenant.id, before)] == [
        ("delete", "not_found"), ("delete", "forbidden")]
    assert await Contact.exists(id=contact, institution_id=tenant.id)
