"""What a portal's one generic handler needs (found in the schema review): every refused lifecycle move carries
``extensions.reason: illegal_transition`` whatever its code, a time given to a move that keeps none is refused
rather than dropped, and a care plan leads back to its patient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import Visit
from tests.contracts import draft, item_input, make_item
from tests.factories import Response, Tenant, make_patient
from tests.surveys import questionnaire

VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
VISIT_MOVE = """mutation($id: ID!, $to: VisitStatus!, $at: DateTime) {
  visitTransition(id: $id, to: $to, at: $at) { id status } }"""
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
TICKET_MOVE = """mutation($id: ID!, $to: TicketStatus!, $resolution: String) {
  ticketTransition(id: $id, to: $to, resolution: $resolution) { id status } }"""
PLAN_CREATE = "mutation($i: CarePlanCreateInput!) { carePlanCreate(input: $i) { id } }"


def refusal(reply: Response) -> tuple[Any, ...]:
    (error,) = reply.errors
    extensions = error["extensions"]
    return extensions["code"], extensions.get("field"), extensions.get("reason")


async def visit_of(tenant: Tenant) -> str:
    pid = await make_patient(tenant)
    made = await tenant.call("front_desk", VISIT_CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    assert made.errors == [], made.errors
    return str(made.data["visitCreate"]["id"])


async def ticket_of(tenant: Tenant) -> str:
    pid = await make_patient(tenant)
    made = await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Opening hours", "patientId": str(pid)})
    assert made.errors == [], made.errors
    return str(made.data["ticketCreate"]["id"])


async def test_every_refused_lifecycle_move_names_its_reason(tenant: Tenant) -> None:
    vid = await visit_of(tenant)
    tid = await ticket_of(tenant)
    active = await questionnaire(tenant)
    contract = await draft(tenant, await make_patient(tenant), [item_input(await make_item(tenant))])

    refused = {
        "visitTransition": await tenant.call("front_desk", VISIT_MOVE, id=vid, to="FINISHED"),
        "ticketTransition": await tenant.call("support_agent", TICKET_MOVE, id=tid, to="CLOSED"),
        "questionnaireActivate": await tenant.call(
            "admin", "mutation($id: ID!) { questionnaireActivate(id: $id) { id } }", id=str(active.id)),
        "contractResume": await tenant.call(
            "admin", "mutation($id: ID!, $v: Int!) { contractResume(contractId: $id, expectedVersion: $v) { id } }",
            id=contract["id"], v=contract["version"]),
    }

    assert {name: refusal(reply) for name, reply in refused.items()} == {
        "visitTransition": ("BAD_USER_INPUT", "to", "illegal_transition"),
        "ticketTransition": ("BAD_USER_INPUT", "to", "illegal_transition"),
        "questionnaireActivate": ("CONFLICT", "id", "illegal_transition"),
        "contractResume": ("CONFLICT", "contractId", "illegal_transition"),
    }


async def test_a_time_for_a_no_show_is_refused_not_dropped(tenant: Tenant) -> None:
    vid = await visit_of(tenant)
    when = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0).isoformat()

    reply = await tenant.call("front_desk", VISIT_MOVE, id=vid, to="NO_SHOW", at=when)

    assert refusal(reply) == ("BAD_USER_INPUT", "at", "invalid")
    assert (await Visit.get(id=vid)).status == "planned"
    moved = await tenant.call("front_desk", VISIT_MOVE, id=vid, to="NO_SHOW")
    assert moved.data == {"visitTransition": {"id": vid, "status": "NO_SHOW"}}
    planned_now = await visit_of(tenant)
    # now, not three hours ago: an arrival before the planned day (the institution's, Asia/Shanghai) is refused, and
    # three hours ago was the day before from midnight to 03:00 there (found failing at 00:27 in Shanghai)
    arrival = datetime.now(UTC).isoformat()
    arrived = await tenant.call("front_desk", VISIT_MOVE, id=planned_now, to="ARRIVED", at=arrival)
    assert arrived.errors == []  # a move that keeps a time still takes one


async def test_a_care_plan_leads_back_to_its_patient_visit_and_department(tenant: Tenant) -> None:
    pid = await make_patient(tenant, fullName="Plan Owner", departmentId=str(tenant.departments["A"].id))
    visit = await tenant.call("front_desk", VISIT_CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    vid = visit.data["visitCreate"]["id"]
    plans = [await tenant.call("doctor", PLAN_CREATE, i={"patientId": str(pid), "title": "After the implant", **more})
             for more in ({}, {"visitId": vid})]
    assert [plan.errors for plan in plans] == [[], []]

    replies = [await tenant.call("doctor", """query($id: ID!) { carePlan(id: $id) { patient { id fullName } visitId
      departmentId } }""", id=plan.data["carePlanCreate"]["id"]) for plan in plans]

    department = str(tenant.departments["A"].id)
    assert [reply.data for reply in replies] == [
        {"carePlan": {"patient": {"id": str(pid), "fullName": "Plan Owner"}, "visitId": visit_id,
                      "departmentId": department}} for visit_id in (None, vid)]
