"""Tickets in the portals: a patient opens their own request or complaint and sees when to expect an answer
and a resolution; a care partner follows the tickets it opened (their status and its own text)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from models import AuditEvent, Ticket
from tests.factories import Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, make_partnership, token_for

OPEN_MINE = """mutation($input: MyTicketCreateInput!) {
  myTicketCreate(input: $input) { id category status subject description responseDueAt resolutionDueAt } }"""
MY_TICKETS = "{ myTickets(first: 10) { edges { node { id status responseDueAt resolutionDueAt } } } }"
MOVE = "mutation($id: ID!, $to: TicketStatus!) { ticketTransition(id: $id, to: $to) { id status } }"
QUEUE = "{ ticketQueue(first: 10) { nodes { id channel owner { id } department { id } } } }"
REPORT = "mutation($input: PartnerTicketCreateInput!) { partnerTicketCreate(input: $input) { id status } }"
PARTNER_TICKETS = """{ partnerTickets(first: 10) { nodes { id status level category subject description
  receivedAt } } }"""
REVOKE = "mutation($id: ID!) { partnerGrantRevoke(id: $id) { id } }"


async def portal_token(tenant: Tenant, client: httpx.AsyncClient, patient: uuid.UUID) -> str:
    invited = await tenant.call("front_desk", "mutation($p: ID!) { patientInvite(patientId: $p) { code } }",
                                p=str(patient))
    assert invited.errors == [], invited.errors
    opened = await gql(client, "mutation($c: String!, $e: String!) { patientAccountActivate(code: $c, email: $e, "
                               "password: \"my own long secret\") { token } }",
                       {"c": invited.data["patientInvite"]["code"], "e": f"{uuid.uuid4().hex}@example.com"})
    assert opened.errors == [], opened.errors
    return str(opened.data["patientAccountActivate"]["token"])


def complaint(**extra: object) -> dict[str, object]:
    return {"category": "COMPLAINT", "subject": "Waited two hours", "description": "Nobody told me why.",
            "channel": "WEB_FORM", **extra}


async def test_a_patient_opens_a_complaint_and_sees_when_to_expect_answers(
        tenant: Tenant, client: httpx.AsyncClient) -> None:
    patient = await make_patient(tenant)
    token = await portal_token(tenant, client, patient)

    reply = await gql(client, OPEN_MINE, {"input": complaint()}, token)

    assert reply.errors == [], reply.errors
    mine = reply.data["myTicketCreate"]
    assert (mine["category"], mine["status"], mine["subject"]) == ("COMPLAINT", "NEW", "Waited two hours")
    assert mine["responseDueAt"] is not None and mine["resolutionDueAt"] > mine["responseDueAt"]
    row = await Ticket.get(id=mine["id"])
    assert (row.patient_id, row.channel, row.category, row.level, row.owner_id, row.opened_by_patient,
            row.opened_by_id, row.department_id) == (patient, "web_form", "complaint", 2, None, True, None,
                                                     tenant.departments["A"].id)
    [created] = await AuditEvent.filter(institution_id=tenant.id, action="create", resource_type="ticket")
    assert (created.actor_kind, created.patient_id, created.policy_rule) == (
        "patient", patient, "patient, *, my_ticket, create, allow")
    queue = await tenant.call("support_agent", QUEUE)  # waits in the department's queue, owned by nobody
    assert queue.data["ticketQueue"]["nodes"] == [{"id": mine["id"], "channel": "WEB_FORM", "owner": None,
                                                   "department": {"id": str(tenant.departments["A"].id)}}]

    listed = await gql(client, MY_TICKETS, token=token)
    assert listed.data["myTickets"]["edges"] == [{"node": {
        "id": mine["id"], "status": "NEW", "responseDueAt": mine["responseDueAt"],
        "resolutionDueAt": mine["resolutionDueAt"]}}]

    for to in ("ACKNOWLEDGED", "INVESTIGATING", "WAITING_ON_PATIENT"):
        assert (await tenant.call("support_agent", MOVE, id=mine["id"], to=to)).errors == []
    waiting = await gql(client, MY_TICKETS, token=token)
    assert waiting.data["myTickets"]["edges"][0]["node"] == {
        "id": mine["id"], "status": "WAITING_ON_PATIENT", "responseDueAt": None, "resolutionDueAt": None}


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "admin"])
async def test_staff_may_not_open_a_ticket_through_the_portal(tenant: Tenant, role: str) -> None:
    reply = await tenant.call(role, OPEN_MINE, input=complaint())

    assert reply.codes == ["FORBIDDEN"] and reply.data == {"myTicketCreate": None}
    assert await Ticket.filter(institution_id=tenant.id).count() == 0
    [denied] = await tenant.audit_events(outcome="denied")
    assert (denied.actor_id, denied.reason) == (tenant.staff_ids[role], "forbidden")


@pytest.mark.parametrize("bad", [{"subject": ""}, {"subject": "x" * 201}, {"description": "x" * 4001},
                                 {"channel": "HOTLINE"}, {"category": "PRAISE"}])
async def test_bad_portal_tickets_write_nothing(tenant: Tenant, client: httpx.AsyncClient,
                                                bad: dict[str, object]) -> None:
    token = await portal_token(tenant, client, await make_patient(tenant))

    reply = await gql(client, OPEN_MINE, {"input": complaint(**bad)}, token)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert await Ticket.filter(institution_id=tenant.id).count() == 0


async def test_a_partner_follows_its_own_reports_only(tenant: Tenant, client: httpx.AsyncClient) -> None:
    scopes = [*ALL_SCOPES, "ticket:create", "partner_ticket:read"]
    ours, theirs = await make_partnership(tenant, scopes), await make_partnership(tenant, scopes)
    reported = await ours.call(REPORT, input={"patientId": str(ours.granted), "category": "REQUEST",
                                              "subject": "Needs a wheelchair at the entrance"})
    assert reported.errors == [], reported.errors
    ticket_id = reported.data["partnerTicketCreate"]["id"]
    assert (await Ticket.get(id=ticket_id)).opened_by_partner_id == ours.partner_id
    assert (await tenant.call("support_agent", MOVE, id=ticket_id, to="ACKNOWLEDGED")).errors == []
    assert (await tenant.call("front_desk", REVOKE, id=str(ours.grant_id))).errors == []  # followed all the same
    reads_before = len(await ours.events(action="read", resource_type="ticket"))

    listed = await ours.call(PARTNER_TICKETS)

    assert listed.errors == [], listed.errors
    [node] = listed.data["partnerTickets"]["nodes"]
    assert {k: node[k] for k in ("id", "status", "level", "category", "subject", "description")} == {
        "id": ticket_id, "status": "ACKNOWLEDGED", "level": 2, "category": "REQUEST",
        "subject": "Needs a wheelchair at the entrance", "description": None}
    reads = (await ours.events(action="read", resource_type="ticket"))[reads_before:]
    assert [(e.resource_id, e.policy_rule) for e in reads] == [
        (uuid.UUID(ticket_id), "partner, *, partner_ticket, read, allow")]
    assert (await theirs.call(PARTNER_TICKETS)).data["partnerTickets"]["nodes"] == []


async def test_partner_tickets_need_their_scope_and_are_not_for_staff(tenant: Tenant,
                                                                      client: httpx.AsyncClient) -> None:
    reporter = await make_partnership(tenant, [*ALL_SCOPES, "ticket:create"])
    narrow = await token_for(client, reporter.client)

    refused = await gql(client, PARTNER_TICKETS, token=narrow)

    assert refused.codes == ["FORBIDDEN"] and refused.data is None
    assert [e.reason for e in await reporter.events(outcome="denied")] == ["forbidden"]
    staff = await tenant.call("support_agent", PARTNER_TICKETS)
    assert staff.codes == ["FORBIDDEN"]
