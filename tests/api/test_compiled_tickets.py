"""The compiled read path for tickets (schema/compiled/ticket.py: the root ``tickets`` and ``ticketQueue`` lists and
the single ``ticket``) answers exactly as the generic path: a corpus of queries run through both
(tests/api/test_compiled_reads.py's ``assert_same``), comparing the whole JSON answer and the audit records, for
every role, a nurse who is also a compliance officer, a ticket whose patient left the reader's reach (a null
patient), a caller not on file, break-glass, and the patient and partner principals (refused at the root)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.principal import ROLES
from models import CareTeamMember, Ticket
from resolvers.context import Services
from tests.api.test_compiled_plan_cache import PLANNED
from tests.api.test_compiled_reads import ALL_CONTACT_FIELDS, ALL_PATIENT_FIELDS, assert_same
from tests.api.test_compiled_worklist import add_nurse_officer, created
from tests.conftest import SqlCounter
from tests.factories import Tenant, gql, make_patient
from tests.partners import make_partnership
from tests.patients import make_contact, open_account

ALL_TICKET_FIELDS = """id patientId contactId callerName callerPhone channel category subcategory level vip subject
  description status rootCauseCategory rootCause resolution feedback receivedAt firstRespondedAt resolvedAt closedAt
  updatedAt version paused __typename"""
CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
HANDOVER = "mutation($id: ID!, $to: ID!) { ticketHandover(id: $id, toStaffId: $to) { id } }"
LIST = "{ tickets(first: 50) { nodes { id subject status level patient { fullName phone } } } }"

# (query, variables, compiled?): the last says whether the compiled plan must run (else it falls back)
LISTS: list[tuple[str, dict[str, Any], bool]] = [
    (LIST, {}, True),
    ("{ tickets { nodes { id } } }", {}, True),
    (f"""{{ tickets(first: 100) {{ __typename totalCount edges {{ cursor node {{ {ALL_TICKET_FIELDS} patient {{
       {ALL_PATIENT_FIELDS} contacts {{ {ALL_CONTACT_FIELDS} }} }} }} }} pageInfo {{ hasNextPage hasPreviousPage
       startCursor endCursor }} }} }}""", {}, True),
    # aliases, the same field twice under two keys, the patient twice with different selections
    ("""{ list: tickets(first: 3) { n: totalCount rows: edges { at: cursor t: node { what: subject why: description
       who: patient { name: fullName tel: phone } p2: patient { allergies id } } } edges { node { level } }
       more: pageInfo { next: hasNextPage } } }""", {}, True),
    # fragments (nested), inline fragments with and without a type condition
    ("""{ tickets { nodes { ...T ... on Ticket { callerName callerPhone } ... { paused } } } }
       fragment T on Ticket { id status patient { ...P contacts { name notes } } }
       fragment P on Patient { fullName phone ... on Patient { allergies } }""", {}, True),
    # variables in arguments and in @skip/@include
    ("""query($first: Int!, $text: Boolean!, $filter: TicketFilter) { tickets(first: $first, filter: $filter) {
       nodes { id subject @include(if: $text) description @include(if: $text) patient @skip(if: $text) {
       fullName } } } }""", {"first": 2, "text": True}, True),
    ("""query($first: Int!, $text: Boolean!, $filter: TicketFilter) { tickets(first: $first, filter: $filter) {
       nodes { id subject @include(if: $text) description @include(if: $text) patient @skip(if: $text) {
       fullName } } } }""", {"first": 5, "text": False, "filter": {"mine": True}}, True),
    ("""query($filter: TicketFilter) { tickets(filter: $filter, orderBy: {field: CREATED_AT, direction: ASC}) {
       totalCount nodes { id category patient { phone } } } }""", {"filter": {"status": "NEW", "level": 2}}, True),
    ('{ tickets(after: "nope") { nodes { id } } }', {}, True),
    # the work queue: the same type, another root
    ("{ ticketQueue(first: 10) { totalCount nodes { id subject paused patient { fullName phone } } } }", {}, True),
    ("{ ticketQueue(slaState: PAUSED) { nodes { id } pageInfo { endCursor } } }", {}, True),
    # unsupported: fields loaded per ticket, several root fields, a root fragment
    ("{ tickets { nodes { id owner { id } } } }", {}, False),
    ("{ tickets { nodes { id responseSla { state } allowedTransitions } } }", {}, False),
    ("{ tickets { nodes { id timeline(first: 1) { nodes { kind } } } } }", {}, False),
    ("{ tickets { nodes { id patient { careTeam { id } } } } }", {}, False),
    ("{ tickets { nodes { id } } t: __typename }", {}, False),
    ("query { ...Root } fragment Root on Query { tickets { nodes { id } } }", {}, False),
]
SINGLE: list[tuple[str, bool]] = [
    (f"query($id: ID!) {{ ticket(id: $id) {{ {ALL_TICKET_FIELDS} patient {{ {ALL_PATIENT_FIELDS} }} }} }}", True),
    ("query($id: ID!) { t: ticket(id: $id) { ... on Ticket { subject level } who: patient { fullName phone } } }",
     True),
    ("query($id: ID!) { ticket(id: $id) { id department { id } } }", False),
]


@dataclass
class World:
    tenant: Tenant
    in_a: uuid.UUID
    in_b: uuid.UUID  # department B, left the nurse's care team after the nurse opened a ticket about it
    tickets: list[str]


async def _ticket(tenant: Tenant, role: str, **fields: Any) -> str:
    data = {"channel": "HOTLINE", "category": "REQUEST", "subject": "The bill is wrong", **fields}
    return await created(tenant, role, CREATE, data)


async def _handed_to_the_officer(tenant: Tenant, **fields: Any) -> str:
    """A ticket the nurse officer owns about a file of department B, which only the officer's reach holds: opened by
    the front desk and handed over (the officer's nurse, of department A, may not open one about it herself since
    tests/api/test_section_reach_other_writes.py)."""
    ticket = await _ticket(tenant, "front_desk", **fields)
    handed = await tenant.call("front_desk", HANDOVER, id=ticket, to=str(tenant.staff_ids["nurse_officer"]))
    assert not handed.errors, handed.errors
    return ticket


@pytest.fixture
async def world(tenant: Tenant, client: Any, services: Services) -> World:
    await add_nurse_officer(tenant, client, services)
    b = str(tenant.departments["B"].id)
    in_a = await make_patient(tenant, "nurse", fullName="Kinsley Moore", phone="13800001111", allergies="Penicillin")
    in_b = await make_patient(tenant, "nurse", fullName="Zhang Wei", departmentId=b, phone="13900002222")
    await make_contact(tenant, in_a, "Bo Moore", phone="13600005555", notes="Brother")
    tickets = [await _ticket(tenant, "nurse", patientId=str(in_a), description="Charged twice"),
               await _ticket(tenant, "nurse", patientId=str(in_b), category="COMPLAINT", level=1),
               await _ticket(tenant, "front_desk", category="ENQUIRY", subject="Opening hours",
                             callerName="Li Na", callerPhone="13500004444",
                             departmentId=str(tenant.departments["A"].id)),
               await _ticket(tenant, "support_agent", patientId=str(in_a), subject="Parking", level=3,
                             category="SUGGESTION"),
               await _handed_to_the_officer(tenant, patientId=str(in_b), description="Lost card")]
    await CareTeamMember.filter(patient_id=in_b).delete()
    return World(tenant, in_a, in_b, tickets)


async def _corpus(world: World, token: str, monkeypatch: pytest.MonkeyPatch,
                  caplog: pytest.LogCaptureFixture) -> list[Any]:
    answers = [await assert_same(world.tenant, token, query, variables, supported, monkeypatch, caplog)
               for query, variables, supported in LISTS]
    for ticket_id in [*world.tickets, str(uuid.uuid4())]:
        for query, supported in SINGLE:
            await assert_same(world.tenant, token, query, {"id": ticket_id}, supported, monkeypatch, caplog)
    return answers


@pytest.mark.parametrize("role", [*ROLES, "nurse_officer"])
async def test_every_role_reads_tickets_as_the_generic_path(world: World, role: str,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    [listed, *_] = await _corpus(world, world.tenant.tokens[role], monkeypatch, caplog)
    if role == "nurse":  # her two tickets: one about a file now out of her reach (null patient, no error)
        patients = sorted((n["patient"] or {}).get("fullName", "-") for n in listed.data["tickets"]["nodes"])
        assert patients == ["-", "Kinsley Moore"] and not listed.errors
    if role == "support_agent":  # every ticket, the caller's without a patient
        assert len(listed.data["tickets"]["nodes"]) == 5 and not listed.errors
    if role == "nurse_officer":  # Zhang Wei as the officer sees it: identity only, so the phone is refused
        assert [e["path"][-1] for e in listed.errors] == ["phone"] and set(listed.codes) == {"FORBIDDEN"}
    if role in ("compliance_officer", "admin", "finance"):
        assert listed.data is None and listed.codes == ["FORBIDDEN"]


async def test_break_glass_reads_tickets_as_the_generic_path(world: World, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    tenant = world.tenant
    opened = await tenant.call("nurse", """mutation($id: ID!) { breakGlass(patientId: $id, reason:
        "Called back about a severe reaction") { id } }""", id=str(world.in_b))
    assert not opened.errors, opened.errors
    [listed, *_] = await _corpus(world, tenant.tokens["nurse"], monkeypatch, caplog)
    patients = sorted(n["patient"]["fullName"] for n in listed.data["tickets"]["nodes"])
    assert patients == ["Kinsley Moore", "Zhang Wei"] and not listed.errors


async def test_patients_and_partners_are_refused_as_in_the_generic_path(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    me = await open_account(world.tenant, world.in_a)
    partnership = await make_partnership(world.tenant)
    for token in (me.token, partnership.token):
        [listed, *_] = await _corpus(world, token, monkeypatch, caplog)
        assert listed.data is None and listed.codes == ["FORBIDDEN"]


async def test_the_list_runs_the_compiled_plan_made_once(world: World, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    query = f"# {uuid.uuid4()}\n{LIST}"
    with caplog.at_level(logging.DEBUG, logger="careloop.compiled"):
        for role in ("support_agent", "nurse"):
            reply = await gql(world.tenant.client, query, None, world.tenant.tokens[role])
            assert reply.data["tickets"]["nodes"] and not reply.errors
    # each ticket's patient, the plan's one asynchronous field, completed in batch (run.complete_root)
    assert [r.getMessage() for r in caplog.records if r.name == "careloop.compiled"] == [
        "compiled tickets", "batched"] * 2
    assert [r.getMessage() for r in caplog.records if r.name == PLANNED] == ["planned TicketConnection"]


async def test_a_page_whose_patients_repeat_answers_as_the_generic_path(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Tickets about A, B, A with a field refused on every file: graphql-core reports the errors as its tasks
    wake, the two waiting on A together (0, 2, 1). The batched pass meets the error and completes the page again
    the plain way, which must find the loaders as graphql-core does (cold): when the batch had filled them, every
    task woke in document order (0, 1, 2). Found in review."""
    a = await make_patient(tenant, "nurse", fullName="Alice A", allergies="Penicillin")
    b = await make_patient(tenant, "nurse", fullName="Bob B", allergies="Latex")
    for pid in (a, b, a):
        await _ticket(tenant, "nurse", patientId=str(pid), subject=f"about {pid}")
    for query in ("{ tickets(first: 50) { nodes { id patient { fullName allergies } } } }",
                  "{ ticketQueue(first: 50) { nodes { id patient { fullName allergies } } } }"):
        reply = await assert_same(tenant, tenant.tokens["support_agent"], query, {}, True, monkeypatch, caplog)
        assert len(reply.errors) == 3
    # and without errors the batched page stands, each file once
    listed = await assert_same(tenant, tenant.tokens["nurse"], "{ tickets { nodes { patient { fullName } } } }", {},
                               True, monkeypatch, caplog)
    assert sorted(n["patient"]["fullName"] for n in listed.data["tickets"]["nodes"]) == ["Alice A", "Alice A", "Bob B"]


async def test_a_pages_patients_are_loaded_with_the_columns_the_selection_reads(
        world: World, sql_counter: SqlCounter) -> None:
    """The batched patients of a ticket page load what the selection reads and what a view needs, not the whole
    file (its sealed clinical columns among it); the corpus above compares every selection with the generic path."""
    reply = await gql(world.tenant.client, LIST, None, world.tenant.tokens["support_agent"])
    assert reply.data["tickets"]["nodes"] and not reply.errors, reply.errors
    [patients] = [sql for sql in sql_counter.statements if 'FROM "patient"' in sql and "follow_up" not in sql]
    selected = patients[:patients.index(" FROM ")]
    for column in ("full_name", "phone", "department_id", "status"):
        assert f'"{column}"' in selected, patients
    for column in ("allergies", "medical_history", "address", "national_id"):
        assert f'"{column}"' not in selected, patients


@pytest.mark.parametrize("role", ["support_agent", "nurse", "nurse_officer", "front_desk"])
async def test_a_failing_non_null_field_around_the_batched_patient_answers_as_the_generic_path(
        world: World, role: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A stored channel no enum knows fails a non-null field in the fast pass's synchronous part, with the batched
    patient selected before and after it: the null propagates to the page (the root), as in graphql-core, and the
    audit rows are the generic path's. Written in review."""
    await Ticket.filter(id=world.tickets[3]).update(channel="carrier-pigeon")
    token = world.tenant.tokens[role]
    for query in ("{ tickets(first: 50) { nodes { id patient { fullName phone allergies } channel subject } } }",
                  "{ tickets(first: 50) { nodes { id channel patient { fullName phone allergies } subject } } }",
                  "{ tickets(first: 50) { edges { node { patient { phone allergies } description channel } } } }"):
        reply = await assert_same(world.tenant, token, query, {}, True, monkeypatch, caplog)
        if role == "support_agent":  # the one whose queue holds the ticket: the page is lost to the bad value
            assert reply.data is None and reply.codes == ["INTERNAL_SERVER_ERROR"], query
