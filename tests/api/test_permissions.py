"""What may I do? ``me { permissions }`` and ``Ticket.allowedTransitions`` agree with what the server then does.

Every answer is checked against the server's behaviour, never against a copy of the policy: a field class
reported readable comes back and one reported unreadable answers FORBIDDEN; an update reported allowed is
accepted and one reported denied is refused (and the refusal audited, nothing written); a sample of reported
(object, action) pairs is tried through an operation that needs it; each reported transition is accepted and
a transition not reported is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.principal import ROLES
from models import Patient
from tests.api.test_ticket_lifecycle import ATTEMPT, FEEDBACK, open_ticket
from tests.conftest import SqlCounter
from tests.factories import CREATE_PATIENT, Response, Tenant, make_patient
from tests.partners import make_partnership
from tests.patients import denials_since, mark, open_account

PERMISSIONS = "{ me { permissions { allowed patientFields { fieldClass read update } } } }"

# One field of each class to read, and a value of the class to write.
CLASS_FIELDS: dict[str, tuple[str, str, Any]] = {
    "IDENTITY": ("fullName", "occupation", "Teacher"),
    "CONTACT": ("phone", "email", "someone@example.com"),
    "CLINICAL": ("allergies", "allergies", "Latex"),
    "NEEDS": ("dietPreferences", "dietPreferences", "Vegan"),
    "INTERNAL": ("tags", "tags", ["wheelchair"]),
}
FILLED = {"phone": "13800001111", "allergies": "Penicillin", "dietPreferences": "Vegetarian", "tags": ["stairs"],
          "occupation": "Engineer"}
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
READ_ONE = "query($id: ID!) { patient(id: $id) { id %s } }"
SHOW = "query($id: ID!) { ticket(id: $id) { id status allowedTransitions } }"
MOVE = "mutation($id: ID!, $to: TicketStatus!, $resolution: String) { ticketTransition(id: $id, to: $to, " \
       "resolution: $resolution) { id status allowedTransitions } }"
HANDOVER = "mutation($id: ID!, $dept: ID) { ticketHandover(id: $id, toDepartmentId: $dept) { id allowedTransitions } }"


def permissions_of(reply: Response) -> tuple[set[str], dict[str, dict[str, bool]]]:
    assert reply.errors == [], reply.errors
    found = reply.data["me"]["permissions"]
    return set(found["allowed"]), {p["fieldClass"]: {"read": p["read"], "update": p["update"]}
                                   for p in found["patientFields"]}


def field_error(reply: Response, name: str) -> str | None:
    codes = [e["extensions"]["code"] for e in reply.errors if e.get("path", [])[-1:] in ([name], ["patient"])]
    return codes[0] if codes else None


@pytest.mark.parametrize("role", ROLES)
async def test_field_classes_reported_are_what_the_server_reads_and_updates(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant, "nurse", **FILLED)  # department A: every department role reaches it
    allowed, classes = permissions_of(await tenant.call(role, PERMISSIONS))
    assert set(classes) == set(CLASS_FIELDS)
    for cls, (read_field, write_field, value) in CLASS_FIELDS.items():
        # read: a readable class comes back; an unreadable one is null with FORBIDDEN (NOT_FOUND for the file
        # when the role reads no class at all: the file is out of its reach)
        reply = await tenant.call(role, READ_ONE % read_field, id=str(pid))
        if classes[cls]["read"]:
            assert reply.errors == [] and reply.data["patient"][read_field] is not None, (role, cls, reply.body)
            assert f"patient.{cls.lower()}:read" in allowed
        else:
            expected = "FORBIDDEN" if any(c["read"] for c in classes.values()) else "NOT_FOUND"
            assert field_error(reply, read_field) == expected, (role, cls, reply.body)
            if expected == "FORBIDDEN":  # the class refused, as me.permissions names it: a client branches on it
                [refusal] = reply.errors
                assert refusal["extensions"] == {"code": "FORBIDDEN", "reason": "field_class", "fieldClass": cls}
        # update: an updatable class is accepted; any other is refused, audited, and nothing is written
        before, seq = await Patient.get(id=pid).values(), await mark(tenant.id)
        reply = await tenant.call(role, UPDATE, id=str(pid), input={write_field: value})
        if classes[cls]["update"]:
            assert classes[cls]["read"] and f"patient.{cls.lower()}:update" in allowed
            assert reply.errors == [], (role, cls, reply.errors)
        else:
            assert reply.codes in (["FORBIDDEN"], ["NOT_FOUND"]), (role, cls, reply.body)
            assert await Patient.get(id=pid).values() == before
            assert len(await denials_since(tenant.id, seq)) == 1


# A representative operation of some (object, action) pairs, and whether a reply shows it was allowed.
OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "patient:create": (CREATE_PATIENT, {"input": {"fullName": "Probe Patient"}, "anyway": True}),
    "ticket:read": ("{ tickets(first: 1) { edges { node { id } } } }", {}),
    "audit:read": ("{ auditEvents(first: 1) { edges { node { id } } } }", {}),
    "department:read": ("{ departments { id } }", {}),
}


@pytest.mark.parametrize("role", ROLES)
async def test_reported_operations_are_the_ones_the_server_allows(tenant: Tenant, role: str) -> None:
    allowed, _ = permissions_of(await tenant.call(role, PERMISSIONS))
    for pair, (query, variables) in OPERATIONS.items():
        reply = await tenant.call(role, query, **variables)
        if pair in allowed:
            assert reply.errors == [], (role, pair, reply.errors)
        else:
            assert reply.codes == ["FORBIDDEN"], (role, pair, reply.body)


async def test_permissions_cost_no_sql_statement(tenant: Tenant, sql_counter: SqlCounter) -> None:
    await tenant.call("nurse", PERMISSIONS)  # the enforcer's first evaluation of these pairs
    start = len(sql_counter.statements)
    await tenant.call("nurse", "{ me { id } }")
    plain = len(sql_counter.statements) - start
    start = len(sql_counter.statements)
    await tenant.call("nurse", PERMISSIONS)
    assert len(sql_counter.statements) - start == plain


async def test_a_partner_token_with_narrower_scopes_reports_less(tenant: Tenant) -> None:
    pship = await make_partnership(tenant)
    narrow = await make_partnership(tenant, ["patient.identity:read"])
    wide_allowed, wide = permissions_of(await pship.call(PERMISSIONS))
    narrow_allowed, narrow_classes = permissions_of(await narrow.call(PERMISSIONS))
    assert narrow_allowed < wide_allowed and "contact:read" in wide_allowed - narrow_allowed
    assert {c for c, p in wide.items() if p["read"]} == {"IDENTITY", "CONTACT", "CLINICAL", "NEEDS"}
    assert {c for c, p in narrow_classes.items() if p["read"]} == {"IDENTITY"}
    assert not any(p["update"] for p in [*wide.values(), *narrow_classes.values()])
    # and the server agrees: the narrow token reads the name, not the phone
    reply = await narrow.call("query($id: ID!) { patient(id: $id) { fullName phone } }", id=str(narrow.granted))
    assert reply.data["patient"]["fullName"] == narrow.granted_name and reply.data["patient"]["phone"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in reply.errors] == [(["patient", "phone"], "FORBIDDEN")]
    # the scope the token lacks, which the partner's own client holds the list of
    assert reply.errors[0]["extensions"] == {"code": "FORBIDDEN", "reason": "field_class", "fieldClass": "CONTACT",
                                             "scope": "patient.contact:read"}
    wide_reply = await pship.call("query($id: ID!) { patient(id: $id) { phone } }", id=str(pship.granted))
    assert wide_reply.errors == [] and wide_reply.data["patient"]["phone"]


async def test_a_patient_reports_their_own_set(tenant: Tenant) -> None:
    user = await open_account(tenant, await make_patient(tenant, "nurse", **FILLED))
    allowed, classes = permissions_of(await user.call(PERMISSIONS))
    assert {c for c, p in classes.items() if p["read"]} == {"IDENTITY", "CONTACT", "CLINICAL", "NEEDS"}
    assert {c for c, p in classes.items() if p["update"]} == {"CONTACT", "NEEDS"}
    assert {"my_ticket:read", "patient:export"} <= allowed and not allowed & {"ticket:read", "patient:create"}
    for cls, (read_field, write_field, value) in CLASS_FIELDS.items():
        reply = await user.call(READ_ONE % read_field, id=str(user.patient_id))
        assert (reply.errors == []) is classes[cls]["read"], (cls, reply.body)
        reply = await user.call(UPDATE, id=str(user.patient_id), input={write_field: value})
        assert (reply.errors == []) is classes[cls]["update"], (cls, reply.body)
    assert (await user.call("{ tickets(first: 1) { edges { node { id } } } }")).codes == ["FORBIDDEN"]


# -- tickets ---------------------------------------------------------------------------------


async def transitions(tenant: Tenant, role: str, tid: str) -> list[str]:
    reply = await tenant.call(role, SHOW, id=tid)
    assert reply.errors == [], reply.errors
    return list(reply.data["ticket"]["allowedTransitions"])


async def move(tenant: Tenant, role: str, tid: str, to: str) -> Response:
    resolution = "Apologised and re-checked." if to == "RESOLVED" else None
    return await tenant.call(role, MOVE, id=tid, to=to, resolution=resolution)


async def test_each_reported_transition_is_accepted_and_others_refused(tenant: Tenant) -> None:
    """The owner walks a complaint's whole loop: at each step every reported move is what the mutation accepts
    and a move not reported is refused."""
    tid = (await open_ticket(tenant))["id"]
    expected = {"NEW": ["ACKNOWLEDGED"], "ACKNOWLEDGED": ["INVESTIGATING"],
                "INVESTIGATING": ["WAITING_ON_PATIENT", "RESOLVED"], "WAITING_ON_PATIENT": ["INVESTIGATING"]}
    path = ["ACKNOWLEDGED", "INVESTIGATING", "WAITING_ON_PATIENT", "INVESTIGATING", "RESOLVED"]
    status = "NEW"
    for to in path:
        reported = await transitions(tenant, "front_desk", tid)
        assert reported == expected[status]
        refused = await move(tenant, "front_desk", tid, "CLOSED")
        assert refused.codes == ["BAD_USER_INPUT"]
        reply = await move(tenant, "front_desk", tid, to)
        assert reply.errors == [] and reply.data["ticketTransition"]["status"] == to
        status = to
    # a resolved complaint: reopening is reported; closing only once the loop is closed
    assert await transitions(tenant, "front_desk", tid) == ["INVESTIGATING"]
    assert (await move(tenant, "front_desk", tid, "CLOSED")).codes == ["BAD_USER_INPUT"]
    await tenant.call("front_desk", ATTEMPT, id=tid, reached=True)
    assert await transitions(tenant, "front_desk", tid) == ["INVESTIGATING"]
    await tenant.call("front_desk", ATTEMPT, id=tid, reached=False)
    assert await transitions(tenant, "front_desk", tid) == ["INVESTIGATING", "CLOSED"]
    closed = await move(tenant, "front_desk", tid, "CLOSED")
    assert closed.errors == [] and closed.data["ticketTransition"]["allowedTransitions"] == ["INVESTIGATING"]
    assert (await move(tenant, "front_desk", tid, "RESOLVED")).codes == ["BAD_USER_INPUT"]


async def test_feedback_closes_the_loop_and_is_never_a_reported_transition(tenant: Tenant) -> None:
    tid = (await open_ticket(tenant))["id"]
    for to in ("ACKNOWLEDGED", "INVESTIGATING", "RESOLVED"):
        assert (await move(tenant, "front_desk", tid, to)).errors == []
    await tenant.call("front_desk", FEEDBACK, id=tid, text="Fine now.")
    reported = await transitions(tenant, "front_desk", tid)
    assert reported == ["INVESTIGATING", "CLOSED"] and "FEEDBACK_RECORDED" not in reported
    assert (await move(tenant, "front_desk", tid, "FEEDBACK_RECORDED")).codes == ["BAD_USER_INPUT"]
    assert (await move(tenant, "front_desk", tid, "CLOSED")).errors == []


async def test_transitions_follow_the_callers_rights_and_reach(tenant: Tenant) -> None:
    """The owner, the department head (reaching the ticket's department) and the support agent (the whole
    queue) may move it; a role without ticket:update reports nothing and is refused; once the owner hands
    it to another department it reports nothing for the owner, whose move is then refused."""
    tid = (await open_ticket(tenant))["id"]
    for role in ("front_desk", "department_head", "support_agent"):
        assert await transitions(tenant, role, tid) == ["ACKNOWLEDGED"], role
    seq = await mark(tenant.id)
    assert (await move(tenant, "finance", tid, "ACKNOWLEDGED")).codes == ["FORBIDDEN"]
    assert len(await denials_since(tenant.id, seq)) == 1
    assert (await move(tenant, "department_head", tid, "ACKNOWLEDGED")).errors == []
    assert await transitions(tenant, "support_agent", tid) == ["INVESTIGATING"]

    handed = await tenant.call("front_desk", HANDOVER, id=tid, dept=str(tenant.departments["B"].id))
    assert handed.errors == [] and handed.data["ticketHandover"]["allowedTransitions"] == []
    assert (await move(tenant, "front_desk", tid, "INVESTIGATING")).codes == ["NOT_FOUND"]
    assert (await tenant.call("department_head", SHOW, id=tid)).codes == ["NOT_FOUND"]  # department A's head
    assert await transitions(tenant, "support_agent", tid) == ["INVESTIGATING"]
    assert (await move(tenant, "support_agent", tid, "INVESTIGATING")).errors == []


async def test_a_page_of_tickets_reports_transitions_in_a_fixed_number_of_statements(
        tenant: Tenant, sql_counter: SqlCounter) -> None:
    async def resolved_complaint() -> str:
        tid = str((await open_ticket(tenant))["id"])
        for to in ("ACKNOWLEDGED", "INVESTIGATING", "RESOLVED"):
            assert (await move(tenant, "front_desk", tid, to)).errors == []
        return tid

    page = "{ tickets(first: 50) { edges { node { id allowedTransitions } } } }"
    await resolved_complaint()
    start = len(sql_counter.statements)
    one = await tenant.call("support_agent", page)
    small = len(sql_counter.statements) - start
    failed = await resolved_complaint()
    await tenant.call("front_desk", ATTEMPT, id=failed, reached=False)
    await resolved_complaint()
    start = len(sql_counter.statements)
    three = await tenant.call("support_agent", page)
    assert len(sql_counter.statements) - start == small
    assert one.errors == [] and three.errors == []
    found = {e["node"]["id"]: e["node"]["allowedTransitions"] for e in three.data["tickets"]["edges"]}
    assert found[failed] == ["INVESTIGATING", "CLOSED"]
    assert sorted(found.values()) == [["INVESTIGATING"], ["INVESTIGATING"], ["INVESTIGATING", "CLOSED"]]
