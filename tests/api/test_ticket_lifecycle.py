"""A ticket's closed loop through the API: open, acknowledge, investigate, resolve, feedback, close."""

from __future__ import annotations

from typing import Any

from models import Ticket, TicketEvent
from tests.factories import Tenant, make_patient

FIELDS = """id patientId channel category level vip subject description status resolution feedback
receivedAt firstRespondedAt resolvedAt closedAt owner { id } assignee { id } department { id name }
responseSla { state dueAt atRiskAt timeLeftSeconds } resolutionSla { state dueAt timeLeftSeconds }"""
CREATE = f"mutation($input: TicketCreateInput!) {{ ticketCreate(input: $input) {{ {FIELDS} }} }}"
MOVE = f"""mutation($id: ID!, $to: TicketStatus!, $note: String, $resolution: String) {{
  ticketTransition(id: $id, to: $to, note: $note, resolution: $resolution) {{ {FIELDS} }} }}"""
REPLY = "mutation($id: ID!, $body: String!, $internal: Boolean!) { ticketReply(id: $id, body: $body, internal: $internal) { id status } }"  # noqa: E501
FEEDBACK = "mutation($id: ID!, $text: String!) { ticketRecordFeedback(id: $id, feedback: $text) { id status feedback } }"  # noqa: E501
ATTEMPT = "mutation($id: ID!, $reached: Boolean!) { ticketLogContactAttempt(id: $id, reached: $reached) { id } }"
TIMELINE = """query($id: ID!, $internal: Boolean!) { ticket(id: $id) { timeline(includeInternal: $internal) {
  edges { node { kind from to internal note actor { id } } } } } }"""


async def open_ticket(tenant: Tenant, role: str = "front_desk", **fields: Any) -> dict[str, Any]:
    pid = await make_patient(tenant)
    data = {"channel": "HOTLINE", "category": "COMPLAINT", "subject": "Waited two hours",
            "description": "Bleeding gums after the cleaning", "patientId": str(pid), **fields}
    reply = await tenant.call(role, CREATE, input=data)
    assert reply.errors == [], reply.errors
    return dict(reply.data["ticketCreate"])


async def test_the_closed_loop_of_a_complaint(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant)
    assert ticket["status"] == "NEW" and ticket["level"] == 2 and ticket["owner"]["id"] == str(
        tenant.staff_ids["front_desk"])
    assert ticket["department"]["name"] == "Department A"  # the patient's
    assert ticket["responseSla"]["state"] in ("ON_TRACK", "AT_RISK", "BREACHED")
    tid = ticket["id"]

    for to, extra in (("ACKNOWLEDGED", {}), ("INVESTIGATING", {}),
                      ("RESOLVED", {"resolution": "Apologised; the hygienist re-checked the gums."})):
        reply = await tenant.call("front_desk", MOVE, id=tid, to=to, **extra)
        assert reply.errors == [], reply.errors
        assert reply.data["ticketTransition"]["status"] == to
    resolved = reply.data["ticketTransition"]
    assert resolved["responseSla"]["state"] == "MET" and resolved["resolutionSla"]["state"] == "MET"
    assert resolved["resolution"].startswith("Apologised")

    refused = await tenant.call("front_desk", MOVE, id=tid, to="CLOSED")
    assert refused.codes == ["BAD_USER_INPUT"] and "feedback" in refused.errors[0]["message"]

    recorded = await tenant.call("front_desk", FEEDBACK, id=tid, text="Satisfied with the follow-up.")
    assert recorded.errors == [] and recorded.data["ticketRecordFeedback"]["status"] == "FEEDBACK_RECORDED"
    closed = await tenant.call("front_desk", MOVE, id=tid, to="CLOSED")
    assert closed.errors == [] and closed.data["ticketTransition"]["closedAt"] is not None

    timeline = await tenant.call("front_desk", TIMELINE, id=tid, internal=True)
    kinds = [(e["node"]["kind"], e["node"]["from"], e["node"]["to"])
             for e in timeline.data["ticket"]["timeline"]["edges"]]
    assert kinds == [("CREATED", None, "NEW"), ("TRANSITION", "NEW", "ACKNOWLEDGED"),
                     ("TRANSITION", "ACKNOWLEDGED", "INVESTIGATING"), ("TRANSITION", "INVESTIGATING", "RESOLVED"),
                     ("FEEDBACK", "RESOLVED", "FEEDBACK_RECORDED"), ("TRANSITION", "FEEDBACK_RECORDED", "CLOSED")]


async def test_a_failed_attempt_to_reach_the_patient_lets_a_complaint_close(tenant: Tenant) -> None:
    tid = (await open_ticket(tenant))["id"]
    for to in ("ACKNOWLEDGED", "INVESTIGATING"):
        await tenant.call("front_desk", MOVE, id=tid, to=to)
    await tenant.call("front_desk", MOVE, id=tid, to="RESOLVED", resolution="Refunded.")
    reached = await tenant.call("front_desk", ATTEMPT, id=tid, reached=True)
    assert reached.errors == []
    assert (await tenant.call("front_desk", MOVE, id=tid, to="CLOSED")).codes == ["BAD_USER_INPUT"]
    await tenant.call("front_desk", ATTEMPT, id=tid, reached=False)
    closed = await tenant.call("front_desk", MOVE, id=tid, to="CLOSED")
    assert closed.errors == [] and closed.data["ticketTransition"]["status"] == "CLOSED"


async def test_replies_and_internal_notes_are_kept_apart(tenant: Tenant) -> None:
    tid = (await open_ticket(tenant))["id"]
    note = await tenant.call("front_desk", REPLY, id=tid, body="Patient sounded upset", internal=True)
    assert note.data["ticketReply"]["status"] == "NEW"  # an internal note is no response
    reply = await tenant.call("front_desk", REPLY, id=tid, body="We are looking into it.", internal=False)
    assert reply.data["ticketReply"]["status"] == "ACKNOWLEDGED"  # the first reply is the first response
    public = await tenant.call("front_desk", TIMELINE, id=tid, internal=False)
    notes = [e["node"]["note"] for e in public.data["ticket"]["timeline"]["edges"]]
    assert "Patient sounded upset" not in notes and "We are looking into it." in notes
    everything = await tenant.call("front_desk", TIMELINE, id=tid, internal=True)
    assert "Patient sounded upset" in [e["node"]["note"] for e in everything.data["ticket"]["timeline"]["edges"]]


async def test_text_is_sealed_at_rest(tenant: Tenant) -> None:
    tid = (await open_ticket(tenant))["id"]
    row = await Ticket.get(id=tid)
    assert isinstance(row.subject, bytes) and b"Waited" not in row.subject
    assert b"Bleeding" not in (row.description or b"")
    assert all(e.note is None for e in await TicketEvent.filter(ticket_id=tid))


async def test_post_operative_problems_are_level_one(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant, category="REQUEST", level=3, postOperative=True)
    assert ticket["level"] == 1
    due = ticket["responseSla"]["timeLeftSeconds"]
    assert 29 * 60 <= due <= 30 * 60  # 30 minutes, calendar time


async def test_compliance_officers_see_a_tickets_audit_trail(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant)
    await tenant.call("front_desk", MOVE, id=ticket["id"], to="ACKNOWLEDGED")
    trail = await tenant.call("compliance_officer", """query($id: ID!) { auditEvents(filter: {resourceType: "ticket",
        resource: $id}) { edges { node { seq action outcome fieldsRead actorId } } } }""", id=ticket["id"])
    assert trail.errors == [], trail.errors
    nodes = sorted((e["node"] for e in trail.data["auditEvents"]["edges"]), key=lambda n: int(n["seq"]))
    actions = [(n["action"], n["actorId"]) for n in nodes]
    front_desk = str(tenant.staff_ids["front_desk"])
    assert actions == [("CREATE", front_desk), ("READ", front_desk), ("UPDATE", front_desk), ("READ", front_desk)]
    assert "Waited" not in str(trail.body)  # names of fields, never their values


async def test_a_list_of_tickets_with_timelines_costs_the_same_for_any_page_size(tenant: Tenant,
                                                                                 sql_counter: Any) -> None:
    for _ in range(6):
        ticket = await open_ticket(tenant, "support_agent")
        await tenant.call("support_agent", REPLY, id=ticket["id"], body="On it", internal=False)
    query = """query($first: Int!) { tickets(first: $first) { edges { node { id subject owner { name }
      department { name } responseSla { state } attachments { id } timeline { edges { node { kind note
      actor { name } } } } } } } }"""
    counts = []
    for first in (2, 6):
        start = len(sql_counter.statements)
        reply = await tenant.call("support_agent", query, first=first)
        assert reply.errors == [] and len(reply.data["tickets"]["edges"]) == first
        counts.append(len(sql_counter.statements) - start)
    assert counts[0] == counts[1]


async def test_a_ticket_shows_its_patient_as_the_caller_may_see_it(tenant: Tenant) -> None:
    ticket = await open_ticket(tenant, "support_agent")
    query = "query($id: ID!) { ticket(id: $id) { patient { id fullName allergies } } }"
    agent = await tenant.call("support_agent", query, id=ticket["id"])
    assert agent.data["ticket"]["patient"]["id"] == ticket["patientId"]
    assert agent.data["ticket"]["patient"]["fullName"].startswith("Patient")
    assert agent.codes == ["FORBIDDEN"]  # a support agent reads no clinical field
    of_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    reply = await tenant.call("support_agent", CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Asked at ward A", "patientId": str(of_b),
        "departmentId": str(tenant.departments["A"].id)})
    head = await tenant.call("department_head", query, id=reply.data["ticketCreate"]["id"])
    assert head.errors == [] and head.data["ticket"] == {"patient": None}  # ticket in reach, file not
