"""A patient's own tickets in the portal: what they asked and the replies they were sent, never an
internal note, never another patient's ticket, never the staff's fields."""

from __future__ import annotations

import uuid

import httpx

from models import AuditEvent
from tests.factories import Tenant, gql, make_patient

MY_TICKETS = """{ myTickets(first: 10) { edges { node { id category status subject description resolution
  replies { message } } } } }"""
OPEN = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
REPLY = """mutation($id: ID!, $body: String!, $internal: Boolean!) {
  ticketReply(id: $id, body: $body, internal: $internal) { id }
}"""


async def portal_token(tenant: Tenant, client: httpx.AsyncClient, patient: uuid.UUID) -> str:
    invited = await tenant.call("front_desk", "mutation($p: ID!) { patientInvite(patientId: $p) { code } }",
                                p=str(patient))
    assert invited.errors == [], invited.errors
    opened = await gql(client, "mutation($c: String!, $e: String!) { patientAccountActivate(code: $c, email: $e, "
                               "password: \"my own long secret\") { token } }",
                       {"c": invited.data["patientInvite"]["code"], "e": f"{uuid.uuid4().hex}@example.com"})
    assert opened.errors == [], opened.errors
    return str(opened.data["patientAccountActivate"]["token"])


async def ticket_for(tenant: Tenant, patient: uuid.UUID, subject: str) -> str:
    reply = await tenant.call("support_agent", OPEN, input={"channel": "APP", "category": "ENQUIRY",
                                                            "subject": subject, "patientId": str(patient)})
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def test_a_patient_sees_their_tickets_and_replies_but_no_internal_note(
        tenant: Tenant, client: httpx.AsyncClient) -> None:
    mine, theirs = await make_patient(tenant), await make_patient(tenant)
    ticket = await ticket_for(tenant, mine, "When is my next cleaning?")
    await ticket_for(tenant, theirs, "Someone else's question")
    for body, internal in (("Patient sounded upset", True), ("Your cleaning is on Monday at 9.", False)):
        assert (await tenant.call("support_agent", REPLY, id=ticket, body=body, internal=internal)).errors == []
    token = await portal_token(tenant, client, mine)

    reply = await gql(client, MY_TICKETS, token=token)

    assert reply.errors == []
    assert reply.data["myTickets"]["edges"] == [{"node": {
        "id": ticket, "category": "ENQUIRY", "status": "ACKNOWLEDGED", "subject": "When is my next cleaning?",
        "description": None, "resolution": None, "replies": [{"message": "Your cleaning is on Monday at 9."}]}}]
    [read] = await AuditEvent.filter(institution_id=tenant.id, actor_kind="patient", action="read",
                                     resource_type="ticket")
    assert (read.resource_id, read.patient_id, read.policy_rule) == (
        uuid.UUID(ticket), mine, "patient, *, my_ticket, read, allow")
    assert read.fields_read == "subject,timeline.note"


async def test_the_staff_queue_stays_closed_to_patients(tenant: Tenant, client: httpx.AsyncClient) -> None:
    mine = await make_patient(tenant)
    ticket = await ticket_for(tenant, mine, "A question")
    token = await portal_token(tenant, client, mine)

    for query, variables in (("query($id: ID!) { ticket(id: $id) { id vip rootCause } }", {"id": ticket}),
                             ("{ tickets(first: 5) { nodes { id } } }", {})):
        reply = await gql(client, query, variables, token=token)
        assert [e["extensions"]["code"] for e in reply.body["errors"]] == ["FORBIDDEN"]
        assert reply.data is None or all(value is None for value in reply.data.values())


async def test_staff_have_no_my_tickets(tenant: Tenant) -> None:
    reply = await tenant.call("support_agent", MY_TICKETS)
    assert reply.codes == ["FORBIDDEN"]
    assert [e.reason for e in await tenant.audit_events(outcome="denied")] == ["forbidden"]


async def test_the_copy_of_my_data_carries_my_tickets_without_internal_notes(
        tenant: Tenant, client: httpx.AsyncClient) -> None:
    mine = await make_patient(tenant)
    ticket = await ticket_for(tenant, mine, "Billing question")
    await tenant.call("support_agent", REPLY, id=ticket, body="Check the invoice of May", internal=True)
    await tenant.call("support_agent", REPLY, id=ticket, body="We refunded the second charge.", internal=False)
    token = await portal_token(tenant, client, mine)

    copy = (await gql(client, "{ myDataExport }", token=token)).data["myDataExport"]

    [only] = copy["tickets"]
    assert (only["id"], only["subject"], only["status"]) == (ticket, "Billing question", "ACKNOWLEDGED")
    assert [r["message"] for r in only["replies"]] == ["We refunded the second charge."]
    assert "Check the invoice" not in str(copy)
