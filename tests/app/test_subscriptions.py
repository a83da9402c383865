"""The live ticket queue over graphql-transport-ws, against the real app served by uvicorn."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets

from models import CareTeamMember, Ticket
from tests.audit.test_events import audit_refuses_inserts
from tests.factories import Tenant, make_patient, subjects

SUBSCRIBE = "subscription($dep: ID) { ticketChanges(departmentId: $dep) { id status subject department { name } } }"
CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
MOVE = "mutation($id: ID!) { ticketTransition(id: $id, to: ACKNOWLEDGED) { id } }"
QUIET = 0.6  # seconds without a message that count as "nothing was sent"


class Live:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def next(self, within: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(within):
            return dict(json.loads(await self.connection.recv()))

    async def nothing(self) -> None:
        with pytest.raises(TimeoutError):
            await self.next(QUIET)


async def subscribe(url: str, token: str | None, department: str | None = None, query: str = SUBSCRIBE) -> Live:
    connection = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
    await connection.send(json.dumps({"type": "connection_init",
                                      "payload": {"authorization": f"Bearer {token}"} if token else {}}))
    live = Live(connection)
    assert (await live.next())["type"] == "connection_ack"
    await connection.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": query, "variables": {"dep": department}}}))
    await asyncio.sleep(0.2)  # let the subscription take its starting point
    return live


async def open_ticket(tenant: Tenant, role: str, department: str = "A", subject: str = "Live") -> str:
    pid = await make_patient(tenant, departmentId=str(tenant.departments[department].id))
    reply = await tenant.call(role, CREATE, input={"channel": "HOTLINE", "category": "ENQUIRY", "subject": subject,
                                                  "patientId": str(pid)})
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def test_agents_see_tickets_as_they_change(tenant: Tenant, ws_url: str) -> None:
    live = await subscribe(ws_url, tenant.tokens["support_agent"])
    tid = await open_ticket(tenant, "front_desk")
    message = await live.next()
    assert message["type"] == "next" and message["payload"]["data"]["ticketChanges"] == {
        "id": tid, "status": "NEW", "subject": "Live", "department": {"name": "Department A"}}
    await tenant.call("front_desk", MOVE, id=tid)
    moved = await live.next()
    assert moved["payload"]["data"]["ticketChanges"]["status"] == "ACKNOWLEDGED"
    reads = await tenant.audit_events(resource_type="ticket", action="read",
                                      actor_id=tenant.staff_ids["support_agent"])
    assert reads, "what a subscription sends is on the audit trail"
    await live.connection.close()


async def test_each_subscriber_gets_only_what_it_reaches(tenant: Tenant, other_tenant: Tenant, ws_url: str) -> None:
    head = await subscribe(ws_url, tenant.tokens["department_head"])
    front_desk = await subscribe(ws_url, tenant.tokens["front_desk"])
    agent_b = await subscribe(ws_url, tenant.tokens["support_agent"], str(tenant.departments["B"].id))
    await open_ticket(other_tenant, "support_agent")  # another institution: nobody here sees it
    in_b = await open_ticket(tenant, "support_agent", department="B", subject="In B")
    in_a = await open_ticket(tenant, "support_agent", department="A", subject="In A")
    assert (await head.next())["payload"]["data"]["ticketChanges"]["id"] == in_a
    assert (await agent_b.next())["payload"]["data"]["ticketChanges"]["id"] == in_b
    own = await open_ticket(tenant, "front_desk", subject="Mine")
    assert (await front_desk.next())["payload"]["data"]["ticketChanges"]["id"] == own  # not in_a, in_b
    assert (await head.next())["payload"]["data"]["ticketChanges"]["id"] == own  # department A
    await head.nothing()
    await front_desk.nothing()
    await agent_b.nothing()
    for live in (head, front_desk, agent_b):
        await live.connection.close()


async def test_no_token_or_a_bad_one_closes_the_connection(ws_url: str) -> None:
    for payload in ({}, {"authorization": "Bearer cl_" + "A" * 43}, {"authorization": 7}):
        connection = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_role_without_ticket_read_is_refused(tenant: Tenant, ws_url: str) -> None:
    live = await subscribe(ws_url, tenant.tokens["compliance_officer"])
    message = await live.next()
    assert message["type"] == "next"
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["compliance_officer"])
    assert [(e.resource_type, e.reason) for e in denied] == [("ticket", "forbidden")]
    await live.connection.close()


async def test_a_revoked_token_ends_the_subscription(tenant: Tenant, ws_url: str) -> None:
    live = await subscribe(ws_url, tenant.tokens["support_agent"])
    await open_ticket(tenant, "front_desk")
    assert (await live.next())["type"] == "next"
    logout = await tenant.call("support_agent", "mutation { logout }")
    assert logout.errors == []
    await open_ticket(tenant, "front_desk", subject="After logout")
    message = await live.next()
    assert message["type"] == "next" and message["payload"].get("data") is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]
    await live.connection.close()


async def test_each_event_sees_the_patient_as_the_subscriber_reaches_it_then(tenant: Tenant, ws_url: str) -> None:
    """The patient views a subscription loads are per sign-in like its decisions: a nurse taken off a patient's care
    team no longer sees the file on the next event (a view cached for the socket's life showed it still)."""
    query = "subscription { ticketChanges { id status patient { fullName } } }"
    pid = await make_patient(tenant, "nurse", fullName="Only Team", departmentId=str(tenant.departments["B"].id))
    live = await subscribe(ws_url, tenant.tokens["nurse"], query=query)
    reply = await tenant.call("nurse", CREATE, input={"channel": "HOTLINE", "category": "ENQUIRY", "subject": "Team",
                                                      "patientId": str(pid)})
    assert reply.errors == [], reply.errors
    tid = reply.data["ticketCreate"]["id"]
    first = await live.next()
    assert first["payload"]["data"]["ticketChanges"] == {"id": tid, "status": "NEW",
                                                         "patient": {"fullName": "Only Team"}}
    await CareTeamMember.filter(patient_id=pid).delete()
    assert (await tenant.call("nurse", MOVE, id=tid)).errors == []
    moved = await live.next()
    assert moved["payload"]["data"]["ticketChanges"] == {"id": tid, "status": "ACKNOWLEDGED", "patient": None}
    await live.connection.close()


READS_PATIENT = "subscription { ticketChanges { id status patient { fullName } } }"


async def test_an_event_is_on_the_trail_before_it_is_sent(tenant: Tenant, ws_url: str) -> None:
    """Found in review: an event's reads were written only when the subscription went on to its next look, after
    the event had gone out (lost if the socket closed first). Now the read is on the trail when the event arrives,
    and an event whose read cannot be written arrives without its data."""
    pid = await make_patient(tenant, fullName="Watched Patient")
    live = await subscribe(ws_url, tenant.tokens["nurse"], query=READS_PATIENT)
    reply = await tenant.call("nurse", CREATE, input={"channel": "HOTLINE", "category": "ENQUIRY", "subject": "Seen",
                                                      "patientId": str(pid)})
    tid = reply.data["ticketCreate"]["id"]
    first = await live.next()
    assert first["payload"]["data"]["ticketChanges"]["patient"] == {"fullName": "Watched Patient"}
    reads = await tenant.audit_events(action="read", actor_id=tenant.staff_ids["nurse"])
    assert any(pid in {p for _, p in subjects(e)} and "identity" in e.field_classes for e in reads)

    async with audit_refuses_inserts():
        await Ticket.filter(id=tid).update(status="acknowledged", updated_at=datetime.now(UTC))  # a change, unaudited
        withheld = await live.next()
    assert withheld["type"] == "next" and withheld["payload"].get("data") is None, withheld
    assert [e["message"] for e in withheld["payload"]["errors"]] == [
        "The operation could not be recorded, so its result is withheld."]
    await live.connection.close()


async def test_a_document_over_the_token_cap_is_answered_with_an_error(tenant: Tenant, ws_url: str) -> None:
    """Found in review: the client got a bare ``complete``."""
    live = await subscribe(ws_url, tenant.tokens["nurse"], query="subscription { ticketChanges { " + "id " * 2500 +
                           "} }")
    answer = await live.next()
    await live.connection.close()
    assert answer["type"] == "error" and "tokens" in answer["payload"][0]["message"]


@pytest.mark.parametrize("signed_in", [True, False])
async def test_a_message_over_the_body_limit_closes_the_socket_unread(tenant: Tenant, ws_url: str,
                                                                     signed_in: bool) -> None:
    """Found in review: a 4 MiB ``connection_init`` (HTTP bodies stop at 64 KiB) was parsed and acknowledged."""
    connection = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], max_size=2**24)
    payload = {"authorization": f"Bearer {tenant.tokens['nurse']}"} if signed_in else {}
    await connection.send(json.dumps({"type": "connection_init", "payload": {**payload, "pad": "x" * 70_000}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
