"""Who reaches a ticket, who may hand it over or assign it, and what every refusal leaves behind.

First-contact responsibility: whoever opens a ticket owns it until handing it over to a named
person or a department. Support agents reach every ticket of their institution, department heads
their departments' tickets, everyone else the tickets they own or are assigned. A ticket out of
reach answers exactly like a missing one. Every refusal writes nothing but its audit record, and a
ticket's text never reaches the audit trail or the database file in clear.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.principal import ROLES
from models import AuditEvent, Notification, Ticket, TicketEvent
from models.ticket import STATUSES
from resolvers.context import Services
from resolvers.ticket import TRANSITIONS
from tests.factories import Response, Tenant, make_patient, make_tenant, raw_sqlite_bytes, subjects

TICKET = "id status patientId owner { id } assignee { id } department { id }"
CREATE = f"mutation($input: TicketCreateInput!) {{ ticketCreate(input: $input) {{ {TICKET} }} }}"
GET = f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET} }} }}"
TIMELINE = """query($id: ID!) { ticket(id: $id) { timeline(first: 100) { edges { node {
  kind from to note actor { id } toStaff { id } toDepartment { id } } } } } }"""
LIST = "query { tickets(first: 100) { nodes { id } } }"
QUEUE = "query { ticketQueue(first: 100) { nodes { id } } }"
HANDOVER = f"""mutation($id: ID!, $toStaffId: ID, $toDepartmentId: ID, $note: String) {{
  ticketHandover(id: $id, toStaffId: $toStaffId, toDepartmentId: $toDepartmentId, note: $note) {{ {TICKET} }} }}"""
ASSIGN = f"mutation($id: ID!, $assigneeId: ID) {{ ticketAssign(id: $id, assigneeId: $assigneeId) {{ {TICKET} }} }}"
MOVE = f"""mutation($id: ID!, $to: TicketStatus!, $note: String, $resolution: String) {{
  ticketTransition(id: $id, to: $to, note: $note, resolution: $resolution) {{ {TICKET} resolvedAt closedAt }} }}"""
REPLY = """mutation($id: ID!, $body: String!, $internal: Boolean! = false) {
  ticketReply(id: $id, body: $body, internal: $internal) { id } }"""
FEEDBACK = "mutation($id: ID!, $text: String!) { ticketRecordFeedback(id: $id, feedback: $text) { id } }"
ATTEMPT = """mutation($id: ID!, $reached: Boolean!, $note: String) {
  ticketLogContactAttempt(id: $id, reached: $reached, note: $note) { id } }"""
UPDATE = "mutation($id: ID!, $input: TicketUpdateInput!) { ticketUpdate(id: $id, input: $input) { id } }"
STAFF_UPDATE = "mutation($id: ID!, $input: StaffUpdateInput!) { staffUpdate(id: $id, input: $input) { id } }"
CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id } }"""

READERS = ("front_desk", "nurse", "doctor", "department_head", "support_agent")  # may read tickets at all
NON_READERS = ("compliance_officer", "admin")


# -- helpers ---------------------------------------------------------------------------------


def sid(tenant: Tenant, role: str) -> str:
    return str(tenant.staff_ids[role])


def dep(tenant: Tenant, key: str) -> str:
    return str(tenant.departments[key].id)


async def open_ticket(tenant: Tenant, role: str = "front_desk", department: str = "A", **fields: Any) -> str:
    """A ticket about a patient of ``department`` (registered by the front desk), opened by ``role``."""
    pid = await make_patient(tenant, departmentId=dep(tenant, department))
    data = {"channel": "HOTLINE", "category": "REQUEST", "subject": "The bill is wrong", "patientId": str(pid),
            **fields}
    reply = await tenant.call(role, CREATE, input=data)
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def caller_ticket(tenant: Tenant, role: str, department: str | None, **fields: Any) -> str:
    """A ticket from a caller not on file, filed under ``department``."""
    data = {"channel": "HOTLINE", "category": "ENQUIRY", "subject": "Opening hours", "callerName": "Zhang Wei",
            **({"departmentId": dep(tenant, department)} if department else {}), **fields}
    reply = await tenant.call(role, CREATE, input=data)
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def ok(tenant: Tenant, role: str, query: str, **variables: Any) -> dict[str, Any]:
    reply = await tenant.call(role, query, **variables)
    assert reply.errors == [], reply.errors
    return dict(reply.data)


async def state(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every ticket, timeline entry and scheduled escalation of the institution, as stored."""
    return {name: await model.filter(institution_id=tenant.id).order_by("id").values()  # type: ignore[attr-defined]
            for name, model in (("ticket", Ticket), ("event", TicketEvent), ("notification", Notification))}


async def since(tenant: Tenant, mark: int, **filters: Any) -> list[AuditEvent]:
    return await tenant.audit_events(seq__gt=mark, **filters)


async def writes_since(tenant: Tenant, mark: int) -> list[AuditEvent]:
    return [e for e in await since(tenant, mark, outcome="allowed") if e.action != "read"]


async def denials_since(tenant: Tenant, mark: int) -> list[tuple[Any, ...]]:
    return [(e.actor_id, e.action, e.resource_type, e.resource_id, e.reason)
            for e in await since(tenant, mark, outcome="denied")]


def field_of(reply: Response) -> Any:
    return reply.errors[0].get("extensions", {}).get("field")


def without_place(reply: Response) -> dict[str, Any]:
    errors = [{k: v for k, v in error.items() if k != "locations"} for error in reply.errors]
    return {"status": reply.status, "data": reply.data, "errors": errors}


def timeline_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in data["ticket"]["timeline"]["edges"]]


def ids_of(data: dict[str, Any], name: str) -> list[str]:
    return [node["id"] for node in data[name]["nodes"]]


async def drive(tenant: Tenant, tid: str, status: str, role: str = "front_desk") -> None:
    """Take a NEW ticket to ``status`` along the lifecycle."""
    path = {
        "new": [],
        "acknowledged": ["acknowledged"],
        "investigating": ["acknowledged", "investigating"],
        "waiting_on_patient": ["acknowledged", "investigating", "waiting_on_patient"],
        "resolved": ["acknowledged", "investigating", "resolved"],
        "feedback_recorded": ["acknowledged", "investigating", "resolved", "feedback_recorded"],
        "closed": ["acknowledged", "investigating", "resolved", "feedback_recorded", "closed"],
    }[status]
    for step in path:
        if step == "feedback_recorded":
            await ok(tenant, role, FEEDBACK, id=tid, text="Happy with the answer.")
        else:
            extra = {"resolution": "Corrected the bill."} if step == "resolved" else {}
            await ok(tenant, role, MOVE, id=tid, to=step.upper(), **extra)
    row = await Ticket.get(id=tid)
    assert row.status == status


@pytest_asyncio.fixture(scope="module")
async def clinic(client: httpx.AsyncClient, services: Services) -> Tenant:
    """An institution shared by the tests of this module that only open tickets and get refused: each
    compares what it touched before and after, and none lists a whole institution's tickets."""
    return await make_tenant(client, services, name="Shared Clinic")


# -- 1. ownership: first-contact responsibility ----------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "nurse", "support_agent"])
async def test_the_creator_owns_the_ticket(tenant: Tenant, role: str) -> None:
    tid = await open_ticket(tenant, role)

    ticket = (await ok(tenant, role, GET, id=tid))["ticket"]

    assert (ticket["status"], ticket["owner"], ticket["assignee"], ticket["department"]) == (
        "NEW", {"id": sid(tenant, role)}, None, {"id": dep(tenant, "A")})
    assert (await Ticket.get(id=tid)).owner_id == tenant.staff_ids[role]


async def test_handover_to_a_named_person_moves_ownership(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    mark = await tenant.audit_count()

    handed = await ok(tenant, "front_desk", HANDOVER, id=tid, toStaffId=sid(tenant, "nurse"), note="Over to you")

    assert handed["ticketHandover"]["owner"] == {"id": sid(tenant, "nurse")}
    assert handed["ticketHandover"]["department"] == {"id": dep(tenant, "A")}  # unchanged
    (write,) = await writes_since(tenant, mark)
    assert (write.actor_id, write.action, write.resource_type, write.resource_id, write.fields_read) == (
        tenant.staff_ids["front_desk"], "update", "ticket", uuid.UUID(tid), "owner_id")
    last = timeline_of(await ok(tenant, "nurse", TIMELINE, id=tid))[-1]
    assert last == {"kind": "HANDOVER", "from": None, "to": None, "note": "Over to you",
                    "actor": {"id": sid(tenant, "front_desk")}, "toStaff": {"id": sid(tenant, "nurse")},
                    "toDepartment": None}
    # The new owner works it; the former owner no longer reaches it.
    moved = await ok(tenant, "nurse", MOVE, id=tid, to="ACKNOWLEDGED")
    assert moved["ticketTransition"]["status"] == "ACKNOWLEDGED"
    mark = await tenant.audit_count()
    gone = await tenant.call("front_desk", GET, id=tid)
    assert (gone.codes, gone.data) == (["NOT_FOUND"], {"ticket": None})
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["front_desk"], "read", "ticket", uuid.UUID(tid), "not_found")]


async def test_handover_to_a_department_leaves_no_owner(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    mark = await tenant.audit_count()

    handed = await ok(tenant, "front_desk", HANDOVER, id=tid, toDepartmentId=dep(tenant, "B"))

    assert (handed["ticketHandover"]["owner"], handed["ticketHandover"]["department"]) == (
        None, {"id": dep(tenant, "B")})
    (write,) = await writes_since(tenant, mark)
    assert (write.action, write.resource_id, write.fields_read) == ("update", uuid.UUID(tid), "department_id,owner_id")
    row = await Ticket.get(id=tid)
    assert (row.owner_id, row.department_id) == (None, tenant.departments["B"].id)
    last = timeline_of(await ok(tenant, "support_agent", TIMELINE, id=tid))[-1]
    assert (last["kind"], last["toStaff"], last["toDepartment"], last["note"]) == (
        "HANDOVER", None, {"id": dep(tenant, "B")}, None)

    mark = await tenant.audit_count()
    for role in ("front_desk", "department_head"):  # the former owner, and department A's head
        gone = await tenant.call(role, GET, id=tid)
        assert (gone.codes, gone.data) == (["NOT_FOUND"], {"ticket": None})
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids[role], "read", "ticket", uuid.UUID(tid), "not_found")
        for role in ("front_desk", "department_head")]
    assert ids_of(await ok(tenant, "support_agent", LIST), "tickets") == [tid]


async def test_former_owner_can_no_longer_act_on_a_handed_over_ticket(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    await ok(tenant, "front_desk", HANDOVER, id=tid, toDepartmentId=dep(tenant, "B"))
    before, mark = await state(tenant), await tenant.audit_count()

    attempts = [
        await tenant.call("front_desk", MOVE, id=tid, to="ACKNOWLEDGED"),
        await tenant.call("front_desk", REPLY, id=tid, body="Still mine?"),
        await tenant.call("front_desk", HANDOVER, id=tid, toStaffId=sid(tenant, "front_desk")),
        await tenant.call("front_desk", UPDATE, id=tid, input={"level": 1}),
    ]

    assert [(r.codes, field_of(r)) for r in attempts] == [(["NOT_FOUND"], "id")] * 4
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["front_desk"], "update", "ticket", uuid.UUID(tid), "not_found")] * 4


@pytest.mark.parametrize("role", ["front_desk", "nurse"])
async def test_non_owner_cannot_hand_over(tenant: Tenant, role: str) -> None:
    tid = await open_ticket(tenant, "support_agent")  # department A, owned by the agent
    before, mark = await state(tenant), await tenant.audit_count()

    reply = await tenant.call(role, HANDOVER, id=tid, toStaffId=sid(tenant, role))

    assert (reply.codes, field_of(reply), reply.data) == (["NOT_FOUND"], "id", {"ticketHandover": None})
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids[role], "update", "ticket", uuid.UUID(tid), "not_found")]


async def test_doctor_may_not_hand_over_at_all(tenant: Tenant) -> None:
    """The doctor has no ``ticket: assign``: refused before any lookup, even as the assignee."""
    tid = await open_ticket(tenant)
    await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))
    before, mark = await state(tenant), await tenant.audit_count()

    reply = await tenant.call("doctor", HANDOVER, id=tid, toDepartmentId=dep(tenant, "B"))

    assert reply.codes == ["FORBIDDEN"]
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["doctor"], "update", "ticket", uuid.UUID(tid), "forbidden")]


async def test_assignee_who_is_not_the_owner_may_not_hand_over(tenant: Tenant) -> None:
    tid = await open_ticket(tenant, "support_agent")
    await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "nurse"))
    assert (await ok(tenant, "nurse", GET, id=tid))["ticket"]["assignee"] == {"id": sid(tenant, "nurse")}
    before, mark = await state(tenant), await tenant.audit_count()

    reply = await tenant.call("nurse", HANDOVER, id=tid, toStaffId=sid(tenant, "nurse"))

    assert (reply.codes, reply.data) == (["FORBIDDEN"], {"ticketHandover": None})
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["nurse"], "update", "ticket", uuid.UUID(tid), "not_owner")]


async def test_department_head_hands_over_and_assigns_in_the_department(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)  # department A, owned by the front desk

    assigned = await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))
    handed = await ok(tenant, "department_head", HANDOVER, id=tid, toStaffId=sid(tenant, "nurse"))

    assert assigned["ticketAssign"]["assignee"] == {"id": sid(tenant, "doctor")}
    assert (handed["ticketHandover"]["owner"], handed["ticketHandover"]["assignee"]) == (
        {"id": sid(tenant, "nurse")}, {"id": sid(tenant, "doctor")})
    kinds = [(e["kind"], e["actor"], e["toStaff"]) for e in timeline_of(await ok(tenant, "nurse", TIMELINE, id=tid))]
    head = {"id": sid(tenant, "department_head")}
    assert kinds[1:] == [("ASSIGNMENT", head, {"id": sid(tenant, "doctor")}),
                         ("HANDOVER", head, {"id": sid(tenant, "nurse")})]


async def test_department_head_of_another_department_does_not_reach_it(tenant: Tenant) -> None:
    tid = await open_ticket(tenant, department="B")
    before, mark = await state(tenant), await tenant.audit_count()

    attempts = [
        await tenant.call("department_head", GET, id=tid),
        await tenant.call("department_head", HANDOVER, id=tid, toStaffId=sid(tenant, "nurse")),
        await tenant.call("department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "nurse")),
    ]

    assert [(r.codes, field_of(r)) for r in attempts] == [(["NOT_FOUND"], "id")] * 3
    assert await state(tenant) == before
    head = tenant.staff_ids["department_head"]
    assert await denials_since(tenant, mark) == [
        (head, action, "ticket", uuid.UUID(tid), "not_found") for action in ("read", "update", "update")]


@pytest.mark.parametrize("targets", [{}, {"toStaffId": None, "toDepartmentId": None}, "both"],
                         ids=["neither", "both null", "both"])
async def test_handover_needs_exactly_one_target(tenant: Tenant, targets: Any) -> None:
    tid = await open_ticket(tenant)
    if targets == "both":
        targets = {"toStaffId": sid(tenant, "nurse"), "toDepartmentId": dep(tenant, "B")}
    before = await state(tenant)

    reply = await tenant.call("front_desk", HANDOVER, id=tid, **targets)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "toStaffId")
    assert await state(tenant) == before


@pytest.mark.parametrize(("field", "target"), [
    ("toStaffId", "random"), ("toStaffId", "other institution"), ("toStaffId", "deactivated"),
    ("toDepartmentId", "random"), ("toDepartmentId", "other institution"),
])
async def test_handover_to_an_unknown_target_is_not_found(tenant: Tenant, other_tenant: Tenant, field: str,
                                                          target: str) -> None:
    tid = await open_ticket(tenant)
    if target == "random":
        value = str(uuid.uuid4())
    elif target == "other institution":
        value = sid(other_tenant, "nurse") if field == "toStaffId" else dep(other_tenant, "A")
    else:
        await ok(tenant, "admin", STAFF_UPDATE, id=sid(tenant, "nurse"), input={"active": False})
        value = sid(tenant, "nurse")
    before, other_before = await state(tenant), await state(other_tenant)

    reply = await tenant.call("front_desk", HANDOVER, id=tid, **{field: value})

    assert (reply.codes, field_of(reply), reply.data) == (["NOT_FOUND"], field, {"ticketHandover": None})
    assert await state(tenant) == before
    assert await state(other_tenant) == other_before
    assert (await Ticket.get(id=tid)).owner_id == tenant.staff_ids["front_desk"]


@pytest.mark.parametrize("field", ["id", "toStaffId", "toDepartmentId"])
async def test_malformed_handover_ids_are_bad_input(tenant: Tenant, field: str) -> None:
    tid = await open_ticket(tenant)
    before = await state(tenant)
    variables = {"id": tid, field: "not-an-id"}

    reply = await tenant.call("front_desk", HANDOVER, **variables)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], field)
    assert await state(tenant) == before


# -- 2. assignment ---------------------------------------------------------------------------


async def test_support_agent_assigns_anyone_in_the_institution(tenant: Tenant) -> None:
    tid = await open_ticket(tenant, "support_agent")  # department A
    mark = await tenant.audit_count()

    # The front desk belongs to no department: only an institution-wide role may assign it.
    assigned = await ok(tenant, "support_agent", ASSIGN, id=tid, assigneeId=sid(tenant, "front_desk"))

    assert assigned["ticketAssign"]["assignee"] == {"id": sid(tenant, "front_desk")}
    assert assigned["ticketAssign"]["owner"] == {"id": sid(tenant, "support_agent")}  # ownership stays
    (write,) = await writes_since(tenant, mark)
    assert (write.actor_id, write.resource_id, write.fields_read) == (
        tenant.staff_ids["support_agent"], uuid.UUID(tid), "assignee_id")
    assert (await ok(tenant, "front_desk", GET, id=tid))["ticket"]["id"] == tid  # reached as the assignee


async def test_department_head_assigns_only_within_the_department(tenant: Tenant) -> None:
    tid = await open_ticket(tenant, "support_agent")
    assert (await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))
            )["ticketAssign"]["assignee"] == {"id": sid(tenant, "doctor")}
    before = await state(tenant)

    reply = await tenant.call("department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "front_desk"))

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "assigneeId")
    assert await state(tenant) == before


@pytest.mark.parametrize("role", ["front_desk", "nurse"])
async def test_owner_without_supervision_may_not_assign(tenant: Tenant, role: str) -> None:
    tid = await open_ticket(tenant, role)
    before, mark = await state(tenant), await tenant.audit_count()

    reply = await tenant.call(role, ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))

    assert (reply.codes, reply.data) == (["FORBIDDEN"], {"ticketAssign": None})
    assert await state(tenant) == before
    (denial,) = await since(tenant, mark)
    assert (denial.actor_id, denial.action, denial.outcome, denial.resource_type, denial.resource_id,
            denial.patient_id is not None, denial.reason) == (
        tenant.staff_ids[role], "update", "denied", "ticket", uuid.UUID(tid), True, "outside_department")


async def test_doctor_may_not_assign_at_all(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    before, mark = await state(tenant), await tenant.audit_count()

    reply = await tenant.call("doctor", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))

    assert reply.codes == ["FORBIDDEN"]
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["doctor"], "update", "ticket", uuid.UUID(tid), "forbidden")]


async def test_the_assignee_reaches_the_ticket_until_unassigned(tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    assert (await tenant.call("doctor", GET, id=tid)).codes == ["NOT_FOUND"]

    await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))

    assert (await ok(tenant, "doctor", GET, id=tid))["ticket"]["assignee"] == {"id": sid(tenant, "doctor")}
    assert ids_of(await ok(tenant, "doctor", LIST), "tickets") == [tid]
    moved = await ok(tenant, "doctor", MOVE, id=tid, to="ACKNOWLEDGED", note="Seen it")
    assert moved["ticketTransition"]["status"] == "ACKNOWLEDGED"
    await ok(tenant, "doctor", REPLY, id=tid, body="We will call you back.")

    unassigned = await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=None)

    assert unassigned["ticketAssign"]["assignee"] is None
    assert (await Ticket.get(id=tid)).assignee_id is None
    assignments = [e["toStaff"] for e in timeline_of(await ok(tenant, "front_desk", TIMELINE, id=tid))
                   if e["kind"] == "ASSIGNMENT"]
    assert assignments == [{"id": sid(tenant, "doctor")}, None]
    assert (await tenant.call("doctor", GET, id=tid)).codes == ["NOT_FOUND"]
    assert ids_of(await ok(tenant, "doctor", LIST), "tickets") == []


async def test_assign_without_assignee_means_nobody(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 11: ``assigneeId`` is nullable, so it may be left out; that used to be a server error
    (TypeError in the resolver call), for anonymous callers too."""
    tid = await open_ticket(tenant)
    await ok(tenant, "department_head", ASSIGN, id=tid, assigneeId=sid(tenant, "doctor"))
    bare = "mutation($id: ID!) { ticketAssign(id: $id) { id assignee { id } } }"

    malformed = await tenant.call(None, 'mutation { ticketAssign(id: "a") { id } }')  # the fuzzer's document
    anonymous = await tenant.call(None, bare, id=tid)
    left_out = await tenant.call("department_head", bare, id=tid)

    assert (malformed.status, malformed.codes) == (200, ["BAD_USER_INPUT"])
    assert (anonymous.status, anonymous.codes) == (200, ["UNAUTHENTICATED"])
    assert left_out.errors == [] and left_out.data["ticketAssign"] == {"id": tid, "assignee": None}
    assert (await Ticket.get(id=tid)).assignee_id is None
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize("target", ["random", "other institution", "deactivated", "malformed"])
async def test_assigning_an_unknown_person_writes_nothing(tenant: Tenant, other_tenant: Tenant, target: str
                                                         ) -> None:
    tid = await open_ticket(tenant)
    if target == "deactivated":
        await ok(tenant, "admin", STAFF_UPDATE, id=sid(tenant, "doctor"), input={"active": False})
    value = {"random": str(uuid.uuid4()), "other institution": sid(other_tenant, "doctor"),
             "deactivated": sid(tenant, "doctor"), "malformed": "42"}[target]
    before = await state(tenant)

    reply = await tenant.call("support_agent", ASSIGN, id=tid, assigneeId=value)

    expected = "BAD_USER_INPUT" if target == "malformed" else "NOT_FOUND"
    assert (reply.codes, field_of(reply)) == ([expected], "assigneeId")
    assert await state(tenant) == before


# -- 3. reach --------------------------------------------------------------------------------


async def test_each_role_lists_the_tickets_it_reaches(tenant: Tenant) -> None:
    a_desk = await open_ticket(tenant)  # front desk, department A
    b_desk = await open_ticket(tenant, department="B")  # front desk, department B
    a_agent = await open_ticket(tenant, "support_agent")  # agent, department A
    b_nurse = await caller_ticket(tenant, "nurse", "B")  # nurse, department B
    loose = await caller_ticket(tenant, "support_agent", None)  # agent, no department
    newest_first = [loose, b_nurse, a_agent, b_desk, a_desk]
    expected = {
        "support_agent": newest_first,
        "department_head": [a_agent, a_desk],
        "front_desk": [b_desk, a_desk],
        "nurse": [b_nurse],
        "doctor": [],
    }

    for role, tickets in expected.items():
        assert ids_of(await ok(tenant, role, LIST), "tickets") == tickets, role
        assert sorted(ids_of(await ok(tenant, role, QUEUE), "ticketQueue")) == sorted(tickets), role
        mine = await ok(tenant, role, "query { tickets(first: 100, filter: {mine: true}) { nodes { id } } }")
        owned = [t for t in tickets if (await Ticket.get(id=t)).owner_id == tenant.staff_ids[role]]
        assert ids_of(mine, "tickets") == owned, role


@pytest.mark.parametrize("role", NON_READERS)
async def test_roles_without_ticket_read_are_forbidden(tenant: Tenant, role: str) -> None:
    tid = await open_ticket(tenant)
    before, mark = await state(tenant), await tenant.audit_count()

    listed, queued, one = (await tenant.call(role, LIST), await tenant.call(role, QUEUE),
                           await tenant.call(role, GET, id=tid))
    created = await tenant.call(role, CREATE, input={"channel": "HOTLINE", "category": "ENQUIRY", "subject": "Hi",
                                                     "callerName": "Li"})
    moved = await tenant.call(role, MOVE, id=tid, to="ACKNOWLEDGED")

    assert [r.codes for r in (listed, queued, one, created, moved)] == [["FORBIDDEN"]] * 5
    assert (listed.data, queued.data, one.data) == (None, None, {"ticket": None})
    assert await state(tenant) == before
    actor = tenant.staff_ids[role]
    assert await denials_since(tenant, mark) == [
        (actor, "read", "ticket", None, "forbidden"), (actor, "read", "ticket", None, "forbidden"),
        (actor, "read", "ticket", uuid.UUID(tid), "forbidden"), (actor, "create", "ticket", None, "forbidden"),
        (actor, "update", "ticket", uuid.UUID(tid), "forbidden")]


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "department_head"])
async def test_a_ticket_out_of_reach_answers_like_a_missing_one(tenant: Tenant, role: str) -> None:
    tid = await open_ticket(tenant, "support_agent", department="B")
    missing = str(uuid.uuid4())
    mark = await tenant.audit_count()

    theirs = await tenant.call(role, GET, id=tid)
    random = await tenant.call(role, GET, id=missing)

    assert theirs.codes == ["NOT_FOUND"]
    assert without_place(theirs) == without_place(random)
    assert theirs.body == random.body  # same place too: the whole answer is the same
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids[role], "read", "ticket", uuid.UUID(t), "not_found") for t in (tid, missing)]


@pytest.mark.parametrize("operation", ["transition", "reply", "handover", "assign", "update", "feedback"])
async def test_mutations_out_of_reach_answer_like_missing(tenant: Tenant, operation: str) -> None:
    tid = await open_ticket(tenant, "support_agent", department="B")
    query, variables = {
        "transition": (MOVE, {"to": "ACKNOWLEDGED"}),
        "reply": (REPLY, {"body": "hello"}),
        "handover": (HANDOVER, {"toDepartmentId": dep(tenant, "A")}),
        "assign": (ASSIGN, {"assigneeId": sid(tenant, "nurse")}),
        "update": (UPDATE, {"input": {"level": 1}}),
        "feedback": (FEEDBACK, {"text": "fine"}),
    }[operation]
    missing = str(uuid.uuid4())
    before, mark = await state(tenant), await tenant.audit_count()

    theirs = await tenant.call("nurse", query, id=tid, **variables)
    random = await tenant.call("nurse", query, id=missing, **variables)

    assert theirs.codes == ["NOT_FOUND"]
    assert theirs.body == random.body
    assert await state(tenant) == before
    assert await denials_since(tenant, mark) == [
        (tenant.staff_ids["nurse"], "update", "ticket", uuid.UUID(t), "not_found") for t in (tid, missing)]


# -- 4. tenant isolation ---------------------------------------------------------------------


@dataclass
class World:
    a: Tenant
    b: Tenant
    a_ticket: str  # front desk's, department A, assigned to the nurse
    b_ticket: str
    b_subject: str


@pytest_asyncio.fixture(scope="module")
async def world(client: httpx.AsyncClient, services: Services) -> World:
    """Two institutions; the isolation tests only read and get refused, so they share them."""
    tenant = await make_tenant(client, services, name="Isolated Clinic")
    other_tenant = await make_tenant(client, services, name="Other Clinic")
    b_subject = f"B secret {secrets.token_hex(4)}"
    b_ticket = await open_ticket(other_tenant, subject=b_subject, description="B only")
    await ok(other_tenant, "support_agent", ASSIGN, id=b_ticket, assigneeId=sid(other_tenant, "nurse"))
    a_ticket = await open_ticket(tenant)
    await ok(tenant, "support_agent", ASSIGN, id=a_ticket, assigneeId=sid(tenant, "nurse"))
    return World(tenant, other_tenant, a_ticket, b_ticket, b_subject)


@pytest.mark.parametrize("role", ROLES)
async def test_other_institutions_ticket_answers_like_a_random_id(world: World, role: str) -> None:
    b_before = await state(world.b)

    theirs = await world.a.call(role, GET, id=world.b_ticket)
    random = await world.a.call(role, GET, id=str(uuid.uuid4()))

    assert theirs.codes == (["NOT_FOUND"] if role in READERS else ["FORBIDDEN"])
    assert theirs.body == random.body
    assert world.b_subject not in json.dumps(theirs.body)
    assert await state(world.b) == b_before


ALIASES = "query($mine: ID!, $other: ID!) { mine: ticket(id: $mine) { id } other: ticket(id: $other) { id } }"
FRAGMENTS = {
    "named": "query($id: ID!) { ticket(id: $id) { ...F } } fragment F on Ticket { id subject description }",
    "inline": "query($id: ID!) { ticket(id: $id) { ... on Ticket { id subject timeline { edges { node { note } } } }"
              " } }",
    "nested named": "query($id: ID!) { ...Q } fragment Q on Query { ticket(id: $id) { ...F } } "
                    "fragment F on Ticket { id subject owner { id } }",
}
REACHERS = ("front_desk", "nurse", "department_head", "support_agent")  # of world.a_ticket


@pytest.mark.parametrize("role", REACHERS)
async def test_alias_on_other_institutions_ticket_is_not_found(world: World, role: str) -> None:
    theirs = await world.a.call(role, ALIASES, mine=world.a_ticket, other=world.b_ticket)
    random = await world.a.call(role, ALIASES, mine=world.a_ticket, other=str(uuid.uuid4()))

    assert theirs.data == {"mine": {"id": world.a_ticket}, "other": None}
    assert [(e["path"], e["extensions"]["code"]) for e in theirs.errors] == [(["other"], "NOT_FOUND")]
    assert theirs.body == random.body


@pytest.mark.parametrize("role", REACHERS)
@pytest.mark.parametrize("kind", FRAGMENTS)
async def test_fragment_on_other_institutions_ticket_is_not_found(world: World, role: str, kind: str) -> None:
    control = await world.a.call(role, FRAGMENTS[kind], id=world.a_ticket)
    assert control.errors == [] and control.data["ticket"]["id"] == world.a_ticket

    theirs = await world.a.call(role, FRAGMENTS[kind], id=world.b_ticket)
    random = await world.a.call(role, FRAGMENTS[kind], id=str(uuid.uuid4()))

    assert (theirs.codes, theirs.data) == (["NOT_FOUND"], {"ticket": None})
    assert theirs.body == random.body


@pytest.mark.parametrize("role", READERS)
async def test_other_institutions_ticket_is_never_listed(world: World, role: str) -> None:
    replies = [await world.a.call(role, query) for query in (
        LIST, QUEUE, "query { tickets(first: 100) { nodes { id subject owner { id } assignee { id } } } }")]

    assert [r.errors for r in replies] == [[], [], []]
    text = json.dumps([r.body for r in replies])
    b_ids = [world.b_ticket, *map(str, world.b.staff_ids.values())]
    assert [marker for marker in [*b_ids, world.b_subject] if marker in text] == []
    if role != "doctor":  # control: the same query does list A's ticket
        assert ids_of(replies[0].data, "tickets") == [world.a_ticket]
    b_view = ids_of(await ok(world.b, role if role != "doctor" else "support_agent", LIST), "tickets")
    assert b_view == [world.b_ticket]


@pytest.mark.parametrize("operation", ["transition", "reply", "handover", "assign", "update", "feedback",
                                       "contact attempt"])
async def test_mutations_on_other_institutions_ticket_are_not_found(world: World, operation: str) -> None:
    query, variables = {
        "transition": (MOVE, {"to": "ACKNOWLEDGED"}),
        "reply": (REPLY, {"body": "mine now"}),
        "handover": (HANDOVER, {"toStaffId": sid(world.a, "support_agent")}),
        "assign": (ASSIGN, {"assigneeId": sid(world.a, "support_agent")}),
        "update": (UPDATE, {"input": {"level": 1}}),
        "feedback": (FEEDBACK, {"text": "fine"}),
        "contact attempt": (ATTEMPT, {"reached": False}),
    }[operation]
    a_before, b_before = await state(world.a), await state(world.b)
    mark, b_audit = await world.a.audit_count(), await world.b.audit_count()

    theirs = await world.a.call("support_agent", query, id=world.b_ticket, **variables)
    random = await world.a.call("support_agent", query, id=str(uuid.uuid4()), **variables)

    assert theirs.codes == ["NOT_FOUND"]
    assert theirs.body == random.body
    assert (await state(world.a), await state(world.b)) == (a_before, b_before)
    denials = await denials_since(world.a, mark)
    assert denials[0] == (world.a.staff_ids["support_agent"], "update", "ticket", uuid.UUID(world.b_ticket),
                          "not_found")
    assert [d[4] for d in denials] == ["not_found"] * 2
    assert await world.b.audit_count() == b_audit  # the attempt is on A's record, not B's


async def test_aliased_mutations_on_other_institutions_ticket_are_each_not_found(world: World) -> None:
    b_before = await state(world.b)
    query = """mutation($id: ID!, $me: ID!) {
      a: ticketAssign(id: $id, assigneeId: $me) { id }
      b: ticketHandover(id: $id, toStaffId: $me) { id }
      c: ticketTransition(id: $id, to: ACKNOWLEDGED) { id subject }
    }"""

    reply = await world.a.call("support_agent", query, id=world.b_ticket, me=sid(world.a, "support_agent"))

    assert reply.data == {"a": None, "b": None, "c": None}
    assert [(e["path"], e["extensions"]["code"]) for e in reply.errors] == [
        (["a"], "NOT_FOUND"), (["b"], "NOT_FOUND"), (["c"], "NOT_FOUND")]
    assert await state(world.b) == b_before


async def test_tickets_cannot_point_into_another_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    b_patient = await make_patient(other_tenant)
    a_patient = await make_patient(tenant)
    base = {"channel": "HOTLINE", "category": "REQUEST", "subject": "Where is B?"}
    before = await state(tenant)

    attempts = [
        await tenant.call("support_agent", CREATE, input={**base, "patientId": str(b_patient)}),
        await tenant.call("support_agent", CREATE, input={**base, "patientId": str(a_patient),
                                                          "departmentId": dep(other_tenant, "A")}),
        await tenant.call("support_agent", CREATE, input={**base, "callerName": "Li",
                                                          "departmentId": dep(other_tenant, "B")}),
    ]

    assert [(r.codes, field_of(r)) for r in attempts] == [
        (["NOT_FOUND"], "input.patientId"), (["NOT_FOUND"], "input.departmentId"),
        (["NOT_FOUND"], "input.departmentId")]
    assert await state(tenant) == before


# -- 5. lifecycle refusals -------------------------------------------------------------------


@dataclass
class Ladder:
    tenant: Tenant
    at: dict[str, str]  # status -> a ticket in it


@pytest_asyncio.fixture(scope="module")
async def ladder(clinic: Tenant) -> Ladder:
    """One ticket in every status; refused transitions leave them where they are."""
    tenant, at = clinic, {}
    for status in STATUSES:
        at[status] = await open_ticket(tenant, category="COMPLAINT")
        await drive(tenant, at[status], status)
    return Ladder(tenant, at)


REFUSED = [(a, b) for a in STATUSES for b in STATUSES if b not in TRANSITIONS.get(a, frozenset())]
ALLOWED = [(a, b) for a in STATUSES for b in STATUSES if b in TRANSITIONS.get(a, frozenset())]


def test_the_pairs_cover_every_status() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    assert len(REFUSED) + len(ALLOWED) == len(STATUSES) ** 2
    assert ("resolved", "feedback_recorded") in REFUSED and ("closed", "investigating") in ALLOWED


async def one_ticket(tid: str) -> dict[str, Any]:
    return {"ticket": await Ticket.filter(id=tid).values(),
            "events": await TicketEvent.filter(ticket_id=tid).order_by("id").values(),
            "notifications": await Notification.filter(ticket_id=tid).order_by("id").values()}


@pytest.mark.parametrize(("current", "to"), REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
async def test_transition_outside_the_lifecycle_is_refused(ladder: Ladder, current: str, to: str) -> None:
    tid = ladder.at[current]
    before, mark = await one_ticket(tid), await ladder.tenant.audit_count()

    reply = await ladder.tenant.call("front_desk", MOVE, id=tid, to=to.upper(), note="trying",
                                     resolution="A resolution, so only the move itself is at fault.")

    assert (reply.codes, field_of(reply), reply.data) == (["BAD_USER_INPUT"], "to", {"ticketTransition": None})
    assert await one_ticket(tid) == before
    assert await writes_since(ladder.tenant, mark) == []


@pytest.mark.parametrize(("current", "to"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
async def test_transition_in_the_lifecycle_is_allowed(ladder: Ladder, current: str, to: str) -> None:
    tid = await open_ticket(ladder.tenant, category="REQUEST")
    await drive(ladder.tenant, tid, current)
    mark = await ladder.tenant.audit_count()

    reply = await ladder.tenant.call("front_desk", MOVE, id=tid, to=to.upper(), resolution="Done.")

    assert reply.errors == [], reply.errors
    assert reply.data["ticketTransition"]["status"] == to.upper()
    (write,) = await writes_since(ladder.tenant, mark)
    assert (write.action, write.resource_id) == ("update", uuid.UUID(tid))
    last = await TicketEvent.filter(ticket_id=tid).order_by("-id").first()
    assert last is not None and (last.kind, last.from_status, last.to_status) == ("transition", current, to)


@pytest.mark.parametrize("resolution", [None, "", "   ", "\n"])
async def test_resolved_needs_a_resolution(clinic: Tenant, resolution: str | None) -> None:
    tid = await open_ticket(clinic)
    await drive(clinic, tid, "investigating")
    before = await state(clinic)

    reply = await clinic.call("front_desk", MOVE, id=tid, to="RESOLVED", resolution=resolution)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "resolution")
    assert await state(clinic) == before


async def test_feedback_recorded_only_by_recording_feedback(clinic: Tenant) -> None:
    tid = await open_ticket(clinic)
    await drive(clinic, tid, "investigating")
    before = await state(clinic)
    early = await clinic.call("front_desk", FEEDBACK, id=tid, text="Too early")
    assert (early.codes, field_of(early)) == (["BAD_USER_INPUT"], "to")
    assert await state(clinic) == before

    await drive_on(clinic, tid, "RESOLVED")
    before = await state(clinic)
    reply = await clinic.call("front_desk", MOVE, id=tid, to="FEEDBACK_RECORDED")

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "to")
    assert "ticketRecordFeedback" in reply.errors[0]["message"]
    assert await state(clinic) == before
    assert (await ok(clinic, "front_desk", FEEDBACK, id=tid, text="Fine"))["ticketRecordFeedback"]["id"] == tid


async def drive_on(tenant: Tenant, tid: str, to: str) -> None:
    await ok(tenant, "front_desk", MOVE, id=tid, to=to, resolution="Done." if to == "RESOLVED" else None)


async def test_complaint_does_not_close_without_feedback_or_a_failed_attempt(clinic: Tenant) -> None:
    tid = await open_ticket(clinic, category="COMPLAINT")
    await drive(clinic, tid, "resolved")
    before = await state(clinic)

    reply = await clinic.call("front_desk", MOVE, id=tid, to="CLOSED")

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "to")
    assert await state(clinic) == before


async def test_reopening_a_closed_ticket_clears_its_stop_times(clinic: Tenant) -> None:
    tid = await open_ticket(clinic, category="COMPLAINT")
    await drive(clinic, tid, "closed")
    closed = (await ok(clinic, "front_desk", GET.replace("department { id }", "department { id } resolvedAt closedAt"),
                       id=tid))["ticket"]
    assert closed["resolvedAt"] is not None and closed["closedAt"] is not None

    reopened = (await ok(clinic, "front_desk", MOVE, id=tid, to="INVESTIGATING", note="Pain came back"))

    assert {k: reopened["ticketTransition"][k] for k in ("status", "resolvedAt", "closedAt")} == {
        "status": "INVESTIGATING", "resolvedAt": None, "closedAt": None}
    row = await Ticket.get(id=tid)
    assert (row.status, row.resolved_at, row.closed_at) == ("investigating", None, None)
    assert row.next_due_at is not None  # the resolution clock runs again
    last = timeline_of(await ok(clinic, "front_desk", TIMELINE, id=tid))[-1]
    assert (last["kind"], last["from"], last["to"], last["note"]) == (
        "TRANSITION", "CLOSED", "INVESTIGATING", "Pain came back")


# -- 6. audit --------------------------------------------------------------------------------


def secret_text() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {"subject": f"Overcharged for implant {tag}", "description": f"Swelling after extraction {tag}",
            "callerName": f"Caller Name {tag}", "callerPhone": "139" + str(secrets.randbelow(10**8)).zfill(8),
            "subcategory": f"billing-{tag}", "note": f"Spoke to the patient's husband {tag}",
            "reply": f"We are sorry about the swelling {tag}", "internal": f"Suspect dry socket {tag}",
            "resolution": f"Refunded the implant fee {tag}", "feedback": f"Satisfied with the refund {tag}",
            "attempt": f"Left a voicemail {tag}", "handover": f"Please call back before noon {tag}",
            "rootCause": f"Price list outdated {tag}"}


SECRET_KEYS = ("subject", "description", "callerName", "note", "reply", "internal", "resolution", "feedback",
               "attempt", "handover", "rootCause")


async def full_life(tenant: Tenant, text: dict[str, str], pid: uuid.UUID | None) -> tuple[str, list[list[str]]]:
    """A ticket through its whole life with every kind of text; the fields each write names."""
    data = {"channel": "WECHAT", "category": "COMPLAINT", "subject": text["subject"],
            "description": text["description"], "callerName": text["callerName"], "callerPhone": text["callerPhone"],
            "subcategory": text["subcategory"], "departmentId": dep(tenant, "A")}
    if pid is not None:
        data["patientId"] = str(pid)
    writes: list[list[str]] = []
    mark = await tenant.audit_count()
    tid = str((await ok(tenant, "front_desk", "mutation($input: TicketCreateInput!) { ticketCreate(input: $input)"
                        " { id } }", input=data))["ticketCreate"]["id"])
    steps: list[tuple[str, dict[str, Any]]] = [
        ("mutation($id: ID!, $note: String) { ticketTransition(id: $id, to: ACKNOWLEDGED, note: $note) { id } }",
         {"note": text["note"]}),
        (REPLY, {"body": text["internal"], "internal": True}),
        (REPLY, {"body": text["reply"]}),
        ("mutation($id: ID!) { ticketTransition(id: $id, to: INVESTIGATING) { id } }", {}),
        (UPDATE, {"input": {"rootCause": text["rootCause"], "rootCauseCategory": "PROCESS"}}),
        ("mutation($id: ID!, $r: String) { ticketTransition(id: $id, to: RESOLVED, resolution: $r) { id } }",
         {"r": text["resolution"]}),
        (ATTEMPT, {"reached": True, "note": text["attempt"]}),
        (FEEDBACK, {"text": text["feedback"]}),
        (HANDOVER.replace(TICKET, "id"), {"toStaffId": sid(tenant, "support_agent"), "note": text["handover"]}),
    ]
    writes.append(await fields_written(tenant, mark, tid, pid))
    for query, variables in steps:
        mark = await tenant.audit_count()
        await ok(tenant, "support_agent" if query.startswith("mutation($id: ID!, $toStaffId") else "front_desk",
                 query, id=tid, **variables)
        writes.append(await fields_written(tenant, mark, tid, pid))
    return tid, writes


async def fields_written(tenant: Tenant, mark: int, tid: str, pid: uuid.UUID | None) -> list[str]:
    """The one write record since ``mark``: on the ticket and its patient; the field names it holds."""
    (event,) = await since(tenant, mark)
    assert (event.action in ("create", "update"), event.outcome, event.resource_type, event.resource_id,
            event.patient_id) == (True, "allowed", "ticket", uuid.UUID(tid), pid)
    assert event.policy_rule
    return event.fields_read.split(",")


async def test_every_write_is_audited_once_with_field_names_never_values(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    text = secret_text()

    tid, writes = await full_life(tenant, text, pid)

    assert writes == [  # fields_read is sorted by the writer
        ["caller_name", "caller_phone", "category", "channel", "description", "level", "owner_id", "subcategory",
         "subject"],  # create
        ["first_responded_at", "paused_at", "status"],  # acknowledged
        ["timeline"],  # internal note
        ["timeline"],  # reply
        ["paused_at", "status"],  # investigating
        ["root_cause", "root_cause_category"],  # update
        ["paused_at", "resolution", "resolved_at", "status"],  # resolved
        ["timeline"],  # contact attempt
        ["feedback", "status"],  # feedback
        ["owner_id"],  # handover
    ]
    values = [text[k] for k in SECRET_KEYS] + [text["callerPhone"], "+86" + text["callerPhone"]]
    rows = await AuditEvent.filter(institution_id=tenant.id).values()
    cells = [str(v) for row in rows for v in row.values()]
    assert [value for value in values if any(value in cell for cell in cells)] == []
    assert tid in cells and str(pid) in cells  # the scan does see the ticket's records


async def test_reading_ticket_text_notes_a_read_record(clinic: Tenant) -> None:
    pid = await make_patient(clinic)
    tid = await open_ticket(clinic, patientId=str(pid), description="Tooth ache")
    await ok(clinic, "front_desk", REPLY, id=tid, body="Noted", internal=True)

    cases = [
        ("query($id: ID!) { ticket(id: $id) { subject description } }", "description,subject"),
        ("query($id: ID!) { ticket(id: $id) { status level } }", ""),
        ("query($id: ID!) { ticket(id: $id) { timeline { edges { node { note } } } } }", "timeline.note"),
    ]
    for query, fields_read in cases:
        mark = await clinic.audit_count()
        await ok(clinic, "support_agent", query, id=tid)
        events = await since(clinic, mark)
        assert [(e.actor_id, e.action, e.outcome, e.resource_type, e.resource_id, e.patient_id, e.field_classes,
                 e.fields_read) for e in events] == [
            (clinic.staff_ids["support_agent"], "read", "allowed", "ticket", uuid.UUID(tid), pid, "ticket",
             fields_read)], query


async def test_a_list_notes_one_read_per_ticket(tenant: Tenant) -> None:
    first, second = await open_ticket(tenant), await open_ticket(tenant)
    mark = await tenant.audit_count()

    await ok(tenant, "support_agent", "query { tickets(first: 10) { nodes { id subject } } }")

    events = await since(tenant, mark)  # one event for the alike reads (issue 17), naming each ticket
    assert sorted((str(record), e.fields_read) for e in events for record, _ in subjects(e)) == sorted(
        [(first, "subject"), (second, "subject")])


# -- 7. encryption at rest -------------------------------------------------------------------


@pytest.fixture
def sqlite_path(database_url: str) -> Path:
    if not database_url.startswith("sqlite://"):
        pytest.skip("inspects the SQLite file")
    return Path(database_url.removeprefix("sqlite://"))


async def test_ticket_text_is_not_in_the_database_file(tenant: Tenant, sqlite_path: Path) -> None:
    text = secret_text()
    tid, _ = await full_life(tenant, text, None)
    read = (await ok(tenant, "support_agent", """query($id: ID!) { ticket(id: $id) { subject description
      callerName callerPhone resolution feedback rootCause timeline { edges { node { note } } } } }""", id=tid))
    ticket = read["ticket"]
    assert (ticket["subject"], ticket["callerPhone"], ticket["feedback"]) == (
        text["subject"], "+86" + text["callerPhone"], text["feedback"])  # the values do open
    notes = {e["node"]["note"] for e in ticket["timeline"]["edges"]}
    assert {text[k] for k in ("note", "reply", "internal", "attempt", "handover")} <= notes

    stored = raw_sqlite_bytes(sqlite_path)

    assert text["subcategory"].encode() in stored  # kept in clear: the scan does see the ticket
    values = [text[k] for k in SECRET_KEYS] + [text["callerPhone"], "+86" + text["callerPhone"]]
    assert [value for value in values if value.encode() in stored] == []


async def test_no_ticket_column_holds_a_plaintext(tenant: Tenant) -> None:
    """Every column of the ticket's rows as the database returns them (on any backend)."""
    text = secret_text()
    tid, _ = await full_life(tenant, text, None)

    rows = [*await Ticket.filter(id=tid).values(), *await TicketEvent.filter(ticket_id=tid).values()]
    cells = [bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode()
             for row in rows for v in row.values()]

    assert len(rows) == 10  # the ticket and its nine timeline entries
    assert any(text["subcategory"].encode() in cell for cell in cells)
    values = [text[k] for k in SECRET_KEYS] + [text["callerPhone"], "+86" + text["callerPhone"]]
    assert [value for value in values if any(value.encode() in cell for cell in cells)] == []


# -- 8. bad input ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


BAD_CREATE: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "subject too long": (lambda: {"subject": "x" * 201}, "input.subject"),
    "subject empty": (lambda: {"subject": ""}, "input.subject"),
    "subject blank": (lambda: {"subject": "  \n "}, "input.subject"),
    "subject escape": (lambda: {"subject": "Bill \x1b[31mred"}, "input.subject"),
    "subject nul": (lambda: {"subject": "Bill\x00"}, "input.subject"),
    "description too long": (lambda: {"description": "x" * 4001}, "input.description"),
    "description control": (lambda: {"description": "a\x07b"}, "input.description"),
    "caller name too long": (lambda: {"callerName": "x" * 101}, "input.callerName"),
    "caller phone": (lambda: {"callerPhone": "call me"}, "input.callerPhone"),
    "subcategory too long": (lambda: {"subcategory": "x" * 65}, "input.subcategory"),
    "level 0": (lambda: {"level": 0}, "input.level"),
    "level 4": (lambda: {"level": 4}, "input.level"),
    "level -1": (lambda: {"level": -1}, "input.level"),
    "received in the future": (lambda: {"receivedAt": (_now() + timedelta(hours=1)).isoformat()}, "input.receivedAt"),
    "received 8 days back": (lambda: {"receivedAt": (_now() - timedelta(days=8)).isoformat()}, "input.receivedAt"),
    "received without zone": (lambda: {"receivedAt": (_now() - timedelta(hours=1)).replace(tzinfo=None)
                                       .isoformat()}, "input.receivedAt"),
    "malformed patient id": (lambda: {"patientId": "nope"}, "input.patientId"),
    "malformed contact id": (lambda: {"contactId": "nope"}, "input.contactId"),
    "malformed department id": (lambda: {"departmentId": "1"}, "input.departmentId"),
    "neither patient nor caller": (lambda: {"patientId": None, "callerName": None}, "input.callerName"),
}


@pytest.mark.parametrize("case", BAD_CREATE)
async def test_bad_ticket_input_is_refused_and_writes_nothing(clinic: Tenant, case: str) -> None:
    pid = await make_patient(clinic)
    make, field = BAD_CREATE[case]
    before, mark = await state(clinic), await clinic.audit_count()
    data = {"channel": "HOTLINE", "category": "REQUEST", "subject": "Fine subject", "patientId": str(pid), **make()}
    data = {k: v for k, v in data.items() if v is not None}

    reply = await clinic.call("front_desk", CREATE, input=data)

    assert (reply.codes, field_of(reply), reply.data) == (["BAD_USER_INPUT"], field, {"ticketCreate": None})
    assert await state(clinic) == before
    assert await writes_since(clinic, mark) == []


async def test_received_at_within_the_week_is_accepted(clinic: Tenant) -> None:
    """The twin of the refused times: six days back, with a zone, is on time."""
    when = (datetime.now(UTC) - timedelta(days=6)).replace(microsecond=0)
    tid = await open_ticket(clinic, receivedAt=when.astimezone(timezone(timedelta(hours=8))).isoformat())
    assert (await Ticket.get(id=tid)).received_at == when


@pytest.mark.parametrize("operation", ["create", "update"])
async def test_null_subcategory_is_bad_input(tenant: Tenant, operation: str) -> None:
    tid = await open_ticket(tenant)
    before = await state(tenant)

    if operation == "create":
        reply = await tenant.call("front_desk", CREATE, input={
            "channel": "HOTLINE", "category": "REQUEST", "subject": "Null sub", "callerName": "Li",
            "subcategory": None})
    else:
        reply = await tenant.call("front_desk", UPDATE, id=tid, input={"subcategory": None})

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], "input.subcategory")
    assert await state(tenant) == before


async def test_contact_must_be_the_patients(clinic: Tenant) -> None:
    pid, other = await make_patient(clinic), await make_patient(clinic)
    contact = await ok(clinic, "front_desk", CONTACT_CREATE, pid=str(other),
                       input={"name": "Wang Fang", "relationship": "SPOUSE"})
    cid = contact["contactCreate"]["id"]
    base = {"channel": "HOTLINE", "category": "REQUEST", "subject": "From the spouse", "contactId": cid}
    before = await state(clinic)

    wrong = await clinic.call("front_desk", CREATE, input={**base, "patientId": str(pid)})
    no_patient = await clinic.call("front_desk", CREATE, input={**base, "callerName": "Wang Fang"})
    missing = await clinic.call("front_desk", CREATE, input={**base, "patientId": str(other),
                                                             "contactId": str(uuid.uuid4())})

    assert [(r.codes, field_of(r)) for r in (wrong, no_patient, missing)] == [(["NOT_FOUND"], "input.contactId")] * 3
    assert await state(clinic) == before
    right = await ok(clinic, "front_desk", CREATE.replace("department { id }", "department { id } contactId"),
                     input={**base, "patientId": str(other)})
    assert right["ticketCreate"]["contactId"] == cid


@pytest.mark.parametrize(("query", "variables"), [
    (CREATE, {"input": {"channel": "FAX", "category": "REQUEST", "subject": "x", "callerName": "Li"}}),
    (CREATE, {"input": {"channel": "HOTLINE", "category": "PRAISE", "subject": "x", "callerName": "Li"}}),
    (CREATE, {"input": {"channel": "hotline", "category": "REQUEST", "subject": "x", "callerName": "Li"}}),
    (MOVE, {"to": "REOPENED"}),
    ("mutation($id: ID!) { ticketTransition(id: $id, to: REOPENED) { id } }", {}),
    (UPDATE, {"input": {"rootCauseCategory": "WEATHER"}}),
    ("query { tickets(filter: {status: LOST}) { nodes { id } } }", {}),
    ("query { ticketQueue(slaState: LATE) { nodes { id } } }", {}),
], ids=["channel", "category", "lowercase channel", "status variable", "status literal", "root cause",
        "filter status", "sla state"])
async def test_unknown_enum_values_are_rejected_by_graphql(clinic: Tenant, query: str, variables: dict[str, Any]
                                                           ) -> None:
    tid = await open_ticket(clinic)
    if "$id" in query:
        variables = {"id": tid, **variables}
    before, mark = await state(clinic), await clinic.audit_count()

    reply = await clinic.call("support_agent", query, **variables)

    assert reply.errors and all(code == "BAD_USER_INPUT" for code in reply.codes), reply.body
    assert reply.data is None
    assert await state(clinic) == before
    assert await writes_since(clinic, mark) == []


@pytest.mark.parametrize(("query", "variables", "field"), [
    (GET, {}, "id"),
    (MOVE, {"to": "ACKNOWLEDGED"}, "id"),
    (REPLY, {"body": "hi"}, "id"),
    (FEEDBACK, {"text": "ok"}, "id"),
    (ATTEMPT, {"reached": False}, "id"),
    (UPDATE, {"input": {"level": 1}}, "id"),
    (HANDOVER, {"toDepartmentId": "B"}, "id"),
    (ASSIGN, {"assigneeId": None}, "id"),
], ids=["ticket", "transition", "reply", "feedback", "attempt", "update", "handover", "assign"])
@pytest.mark.parametrize("bad", ["nope", "1", "", "'; DROP TABLE ticket; --", "x" * 100])
async def test_malformed_ticket_ids_are_bad_input(clinic: Tenant, query: str, variables: dict[str, Any], field: str,
                                                  bad: str) -> None:
    reply = await clinic.call("support_agent", query, id=bad, **variables)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], field)


@pytest.mark.parametrize(("data", "field"), [
    ({"level": 0}, "input.level"), ({"level": 4}, "input.level"), ({"level": None}, "input.level"), ({}, "input"),
    ({"rootCause": "x" * 2001}, "input.rootCause"), ({"rootCause": "a\x1bb"}, "input.rootCause"),
    ({"subcategory": "x" * 65}, "input.subcategory"), ({"note": "x" * 4001, "level": 1}, "input.note"),
])
async def test_bad_update_input_writes_nothing(clinic: Tenant, data: dict[str, Any], field: str) -> None:
    tid = await open_ticket(clinic)
    before, mark = await state(clinic), await clinic.audit_count()

    reply = await clinic.call("front_desk", UPDATE, id=tid, input=data)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], field)
    assert await state(clinic) == before
    assert await writes_since(clinic, mark) == []


@pytest.mark.parametrize(("query", "field"), [
    ("query { tickets(first: 0) { nodes { id } } }", "first"),
    ("query { tickets(first: 101) { nodes { id } } }", "first"),
    ('query { tickets(after: "garbage") { nodes { id } } }', "after"),
    ('query { ticketQueue(after: "garbage") { nodes { id } } }', "after"),
    ('query { tickets(filter: {departmentId: "A"}) { nodes { id } } }', "filter.departmentId"),
    ('query { ticketQueue(departmentId: "A") { nodes { id } } }', "departmentId"),
    ("query { ticketQueue(slaState: ON_TRACK) { nodes { id } } }", "slaState"),
])
async def test_bad_list_arguments_are_bad_input(clinic: Tenant, query: str, field: str) -> None:
    reply = await clinic.call("support_agent", query)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], field)


@pytest.mark.parametrize(("body", "field"), [("", "body"), ("   ", "body"), ("x" * 4001, "body"),
                                             ("bell\x07", "body")])
async def test_bad_reply_writes_nothing(clinic: Tenant, body: str, field: str) -> None:
    tid = await open_ticket(clinic)
    before = await state(clinic)

    reply = await clinic.call("front_desk", REPLY, id=tid, body=body)

    assert (reply.codes, field_of(reply)) == (["BAD_USER_INPUT"], field)
    assert await state(clinic) == before



@pytest.mark.parametrize("mutation", ["handover", "assign"])
async def test_tickets_go_only_to_people_who_work_on_tickets(tenant: Tenant, mutation: str) -> None:
    """Handing a ticket to the admin or the compliance officer would make it vanish from their sight."""
    tid = await open_ticket(tenant, "support_agent")
    before = await state(tenant)
    for role in ("admin", "compliance_officer"):
        if mutation == "handover":
            reply = await tenant.call("support_agent", HANDOVER, id=tid, toStaffId=str(tenant.staff_ids[role]))
            field = "toStaffId"
        else:
            reply = await tenant.call("support_agent", ASSIGN, id=tid, assigneeId=str(tenant.staff_ids[role]))
            field = "assigneeId"
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await state(tenant) == before
