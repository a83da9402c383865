"""The desk answering a caller: a ticket is found from its patient (``tickets(filter: {patientId})``), and
whoever opened a ticket keeps seeing where it stands after handing it over (``myOpenedTickets``), without
its timeline or internal notes; each look audited."""

from __future__ import annotations

import uuid

from models import Ticket
from tests.factories import Tenant, make_patient

CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
HANDOVER = "mutation($id: ID!, $did: ID!) { ticketHandover(id: $id, toDepartmentId: $did) { id } }"
NOTE = "mutation($id: ID!) { ticketReply(id: $id, body: \"Patient is angry\", internal: true) { id } }"
GET = "query($id: ID!) { ticket(id: $id) { id status } }"
OPENED = """query($pid: ID) { myOpenedTickets(first: 10, patientId: $pid) { nodes { id patientId subject category
  status level paused inReach department { id } responseSla { state } resolutionSla { state dueAt } } } }"""
BY_PATIENT = "query($pid: ID!) { tickets(filter: {patientId: $pid}) { totalCount nodes { id } } }"


async def open_ticket(tenant: Tenant, role: str, patient: uuid.UUID, subject: str = "Lost my invoice") -> str:
    reply = await tenant.call(role, CREATE, input={"channel": "FRONT_DESK", "category": "REQUEST",
                                                   "subject": subject, "patientId": str(patient)})
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def test_the_opener_still_sees_the_status_after_a_handover(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    tid = await open_ticket(tenant, "front_desk", patient)
    assert (await Ticket.get(id=tid)).opened_by_id == tenant.staff_ids["front_desk"]
    assert (await tenant.call("front_desk", NOTE, id=tid)).errors == []
    department_b = str(tenant.departments["B"].id)
    assert (await tenant.call("front_desk", HANDOVER, id=tid, did=department_b)).errors == []
    assert (await tenant.call("front_desk", GET, id=tid)).codes == ["NOT_FOUND"]  # out of reach now

    reply = await tenant.call("front_desk", OPENED, pid=str(patient))

    assert reply.errors == [], reply.errors
    [seen] = reply.data["myOpenedTickets"]["nodes"]
    assert {k: seen[k] for k in ("id", "patientId", "subject", "category", "status", "level", "paused",
                                 "inReach", "department")} == {
        "id": tid, "patientId": str(patient), "subject": "Lost my invoice", "category": "REQUEST", "status": "NEW",
        "level": 2, "paused": False, "inReach": False, "department": {"id": department_b}}
    assert seen["responseSla"]["state"] in ("ON_TRACK", "AT_RISK", "BREACHED")
    assert seen["resolutionSla"]["dueAt"] is not None
    [read] = await tenant.audit_events(action="read", resource_type="ticket", outcome="allowed",
                                       actor_id=tenant.staff_ids["front_desk"])
    assert (read.resource_id, read.patient_id, read.policy_rule) == (
        uuid.UUID(tid), patient, "front_desk, *, ticket, read, allow")
    assert "subject" in read.fields_read and "note" not in read.fields_read

    # the type has no timeline: asking for it is a request error, and nothing is read
    timeline = await tenant.call("front_desk", "{ myOpenedTickets { nodes { timeline { edges { node { note } } } "
                                               "} } }")
    assert timeline.codes == ["BAD_USER_INPUT"] and timeline.data is None


async def test_only_the_opener_sees_it_and_only_staff_who_read_tickets(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    await open_ticket(tenant, "front_desk", patient)
    other = await tenant.call("nurse", OPENED, pid=None)
    assert other.errors == [] and other.data["myOpenedTickets"]["nodes"] == []
    assert (await tenant.call("front_desk", OPENED, pid=str(await make_patient(tenant)))).data[
        "myOpenedTickets"]["nodes"] == []

    refused = await tenant.call("compliance_officer", OPENED, pid=None)

    assert refused.codes == ["FORBIDDEN"] and refused.data is None
    [denied] = await tenant.audit_events(outcome="denied")
    assert (denied.actor_id, denied.reason) == (tenant.staff_ids["compliance_officer"], "forbidden")


async def test_tickets_are_found_from_their_patient(tenant: Tenant, other_tenant: Tenant) -> None:
    patient, someone = await make_patient(tenant), await make_patient(tenant)
    first = await open_ticket(tenant, "support_agent", patient)
    second = await open_ticket(tenant, "support_agent", patient, "Parking")
    await open_ticket(tenant, "support_agent", someone)

    reply = await tenant.call("support_agent", BY_PATIENT, pid=str(patient))

    assert reply.errors == []
    assert reply.data["tickets"] == {"totalCount": 2, "nodes": [{"id": second}, {"id": first}]}
    mine = await tenant.call("front_desk", BY_PATIENT, pid=str(patient))  # in patient reach, owns none of them
    assert mine.data["tickets"] == {"totalCount": 0, "nodes": []}


async def test_a_patient_out_of_reach_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await open_ticket(tenant, "support_agent", in_b)
    for caller, pid in ((tenant, in_b), (tenant, uuid.uuid4()), (other_tenant, in_b)):
        role = "department_head" if caller is tenant else "support_agent"  # heads reach department A only
        reply = await caller.call(role, BY_PATIENT, pid=str(pid))
        assert reply.codes == ["NOT_FOUND"] and reply.data is None
        assert reply.errors[0]["extensions"]["field"] == "filter.patientId"
    denied = [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]
    assert denied == [(tenant.staff_ids["department_head"], "not_found")] * 2
    malformed = await tenant.call("support_agent", BY_PATIENT, pid="not-an-id")
    assert malformed.codes == ["BAD_USER_INPUT"]
