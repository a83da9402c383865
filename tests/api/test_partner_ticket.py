"""A care partner reports a problem about a patient granted to it (scope ticket:create): the ticket
waits in the patient's department's queue, the partner is on its record, and nothing else opens."""

from __future__ import annotations

import uuid

import httpx
import pytest

from models import PartnerToken, Ticket, TicketEvent
from tests.factories import Tenant, gql
from tests.partners import ALL_SCOPES, Partnership, make_partnership, token_for

REPORT = """mutation($input: PartnerTicketCreateInput!) {
  partnerTicketCreate(input: $input) { id status level receivedAt } }"""
STAFF_DOOR = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id vip owner { name } } }"
WITH_TICKETS = [*ALL_SCOPES, "ticket:create"]


def report(patient: uuid.UUID, **extra: object) -> dict[str, object]:
    return {"patientId": str(patient), "category": "COMPLAINT", "subject": "Wound bleeding after the visit",
            **extra}


@pytest.fixture
async def reporter(tenant: Tenant) -> Partnership:
    return await make_partnership(tenant, WITH_TICKETS)


async def test_a_partner_reports_about_its_granted_patient(reporter: Partnership, tenant: Tenant) -> None:
    reply = await reporter.call(REPORT, input=report(reporter.granted, postOperative=True))

    assert reply.errors == [], reply.errors
    ticket = await Ticket.get(id=reply.data["partnerTicketCreate"]["id"])
    assert (ticket.channel, ticket.owner_id, ticket.patient_id, ticket.department_id, ticket.level) == (
        "partner", None, reporter.granted, tenant.departments["A"].id, 1)
    assert reply.data["partnerTicketCreate"]["status"] == "NEW"
    assert [e.actor_id for e in await TicketEvent.filter(ticket_id=ticket.id)] == [None]
    [created] = await reporter.events(action="create", resource_type="ticket")
    assert (created.actor_kind, created.token_id, created.patient_id) == (
        "partner", (await _token_row(reporter)).id, reporter.granted)
    queue = await tenant.call("support_agent", "{ tickets(first: 5) { nodes { id channel owner { id } } } }")
    assert queue.data["tickets"]["nodes"] == [{"id": str(ticket.id), "channel": "PARTNER", "owner": None}]


async def test_a_patient_not_granted_looks_missing(reporter: Partnership) -> None:
    for patient in (reporter.other, uuid.uuid4()):
        reply = await reporter.call(REPORT, input=report(patient))
        assert reply.codes == ["NOT_FOUND"] and reply.data == {"partnerTicketCreate": None}
    assert await Ticket.filter(institution_id=reporter.tenant.id).count() == 0
    assert [e.reason for e in await reporter.events(outcome="denied")] == ["not_found", "not_found"]


async def test_without_the_scope_a_partner_may_not_report(tenant: Tenant) -> None:
    reading_only = await make_partnership(tenant)  # every read scope, no ticket:create

    reply = await reading_only.call(REPORT, input=report(reading_only.granted))

    assert reply.codes == ["FORBIDDEN"]
    assert await Ticket.filter(institution_id=tenant.id).count() == 0
    assert [e.reason for e in await reading_only.events(outcome="denied")] == ["forbidden"]


async def test_a_token_may_leave_the_scope_out(reporter: Partnership, client: httpx.AsyncClient) -> None:
    narrow = await token_for(client, reporter.client, scope="patient.identity:read")

    reply = await gql(client, REPORT, {"input": report(reporter.granted)}, token=narrow)

    assert reply.codes == ["FORBIDDEN"]


async def test_the_staff_door_stays_closed_to_partners(reporter: Partnership) -> None:
    """ticketCreate answers with the staff's view of a ticket (VIP flag, owner): not for partners."""
    staff_input = {"channel": "APP", "category": "COMPLAINT", "subject": "Hello", "patientId": str(reporter.granted)}

    reply = await reporter.call(STAFF_DOOR, input=staff_input)

    assert reply.codes == ["FORBIDDEN"] and reply.data == {"ticketCreate": None}
    assert await Ticket.filter(institution_id=reporter.tenant.id).count() == 0
    assert [e.reason for e in await reporter.events(outcome="denied")] == ["forbidden"]


@pytest.mark.parametrize("role", ["front_desk", "support_agent"])
async def test_staff_use_their_own_door(tenant: Tenant, role: str, reporter: Partnership) -> None:
    reply = await tenant.call(role, REPORT, input=report(reporter.granted))

    assert reply.codes == ["FORBIDDEN"]
    assert await Ticket.filter(institution_id=tenant.id).count() == 0


@pytest.mark.parametrize("bad", [{"subject": ""}, {"subject": "x" * 201}, {"patientId": "not-an-id"}])
async def test_bad_reports_are_refused_and_write_nothing(reporter: Partnership, bad: dict[str, object]) -> None:
    reply = await reporter.call(REPORT, input=report(reporter.granted) | bad)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert await Ticket.filter(institution_id=reporter.tenant.id).count() == 0


async def _token_row(partnership: Partnership) -> PartnerToken:
    return await PartnerToken.get(client_id=partnership.client.id)
