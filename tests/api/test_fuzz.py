"""A schema-driven fuzzer: no document any principal can send may end in a server error.

Queries and mutations are built from the schema's SDL by hypothesis-graphql (valid documents, and a
share of documents with one schema violation), with IDs drawn mostly from real rows of one shared
institution (patients, contacts, tickets, staff, departments, partners, grants...), and sent over
HTTP through the ASGI app as each principal: anonymous, every staff role, a partner's API client
and a patient. A reply with HTTP 5xx, or an error whose ``extensions.code`` is
INTERNAL_SERVER_ERROR, fails the test and prints the document.

Bounded and reproducible: ``EXAMPLES`` documents per principal (``derandomize``, no example
database), so CI sends the same documents every run. A long campaign, by hand:

    CARELOOP_FUZZ_EXAMPLES=2000 .venv/bin/pytest -q tests/api/test_fuzz.py
    CARELOOP_FUZZ_EXAMPLES=2000 CARELOOP_TEST_DATABASE=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/pytest -q tests/api/test_fuzz.py

What the fuzzer is kept from, so that one principal's documents keep running as that principal
(none of it hides a reply: these documents are simply not sent):
- ``logout`` is never generated (it would end the principal's session for the remaining examples);
- the IDs fed are those of rows that are not the principals themselves: the staff signed in here,
  the partner client and its partner, and the patient signed in here are left out of the pool (an
  admin's ``staffUpdate(id: <nurse>, input: {active: false})`` would silence the nurse for good);
  other staff, partners, clients and patients with accounts are in it.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import graphql
import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from core.principal import ROLES
from core.settings import Limits
from resolvers import institution as institutions
from resolvers.context import Services
from resolvers.partner import MAX_RATE
from schema.root import build_schema
from tests.factories import PASSWORD, Tenant, make_patient, make_tenant
from tests.partners import PATIENT_FIELDS, add_contact, make_client, make_partner, make_partnership
from tests.patients import open_account

EXAMPLES = int(os.environ.get("CARELOOP_FUZZ_EXAMPLES", "25"))
PRINCIPALS = ("anonymous", *ROLES, "partner", "patient")
NEVER_SENT = frozenset({"logout"})  # see the module's docstring

TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
IMPROVEMENT_CREATE = "mutation($input: ImprovementCreateInput!) { improvementCreate(input: $input) { id } }"
BREAK_GLASS = "mutation($id: ID!) { breakGlass(patientId: $id, reason: \"Unconscious at the door\") { id } }"
INVITE = "mutation($patientId: ID!) { patientInvite(patientId: $patientId) { code } }"


@dataclass
class World:
    tenant: Tenant
    tokens: dict[str, str | None]  # principal -> bearer token (None: anonymous)
    ids: list[str]  # real rows, none of them a principal
    strings: list[str]  # strings the API gives meaning to: months, e-mails, scopes...


async def created(tenant: Tenant, role: str, query: str, **variables: Any) -> str:
    reply = await tenant.call(role, query, **variables)
    assert reply.errors == [], reply.errors
    return str(next(iter(reply.data.values()))["id"])


@pytest_asyncio.fixture(scope="module")
async def world(client: httpx.AsyncClient, services: Services) -> World:
    """One institution shared by every principal's fuzzing: each example only adds to it."""
    tenant = await make_tenant(client, services, name="Fuzz Clinic")
    a, b = tenant.departments["A"], tenant.departments["B"]
    acting = await make_partnership(tenant, rate=MAX_RATE)  # its client fuzzes; its patients are fed
    victim = await make_partnership(tenant)  # its partner, client and grant are fed
    spare_client = await make_client(tenant, acting.partner_id)
    other_partner = await make_partner(tenant)
    portal = await open_account(tenant)  # the patient who fuzzes
    with_account = await open_account(tenant, await make_patient(tenant, "nurse", **PATIENT_FIELDS))  # fed
    in_b = await make_patient(tenant, departmentId=str(b.id))
    invited = await make_patient(tenant)
    invitation = await tenant.call("front_desk", INVITE, patientId=str(invited))  # an invitation pending
    assert invitation.errors == [], invitation.errors
    contact = await add_contact(tenant, in_b, "Fuzz Contact")
    ticket = await created(tenant, "front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "COMPLAINT", "subject": "Waited an hour", "patientId": str(in_b)})
    caller_ticket = await created(tenant, "support_agent", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Opening hours", "callerName": "Zhang Wei",
        "departmentId": str(a.id)})
    improvement = await created(tenant, "department_head", IMPROVEMENT_CREATE, input={
        "problem": "Long waits", "departmentId": str(a.id), "deadline": "2030-01-31", "ticketIds": [caller_ticket]})
    emergency = await created(tenant, "doctor", BREAK_GLASS, id=str(in_b))
    staff = [await institutions.create_account(services, tenant.institution, email=f"fuzz.{role}.{uuid.uuid4().hex[:6]}"
                                               "@careloop.test", name=f"Fuzz {role}", password=PASSWORD,
                                               roles=[role], departments=[b])
             for role in ("nurse", "doctor", "department_head")]
    ids = [str(x) for x in (a.id, b.id, acting.granted, acting.other, victim.partner_id, victim.client.id,
                            victim.grant_id, victim.granted, spare_client.id, other_partner, with_account.patient_id,
                            with_account.account_id, in_b, invited, contact, *(s.id for s in staff))]
    ids += [ticket, caller_ticket, improvement, emergency]
    tokens: dict[str, str | None] = {"anonymous": None, **tenant.tokens, "partner": acting.token,
                                     "patient": portal.token}
    month = datetime.now(UTC).strftime("%Y-%m")
    strings = [month, "2026-13", tenant.emails["nurse"], with_account.email, "contact:read",
               "patient.clinical:read", acting.granted_name, "Fuzz", "+8613800001111", "13800001111"]
    return World(tenant, tokens, ids, strings)


def mostly(usual: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` nine times in ten, else one of ``odd``."""
    return st.integers(0, 9).flatmap(lambda n: st.one_of(*odd) if n == 0 else usual)


def scalars(world: World) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Custom scalar values: mostly meaningful (real ids, valid dates), sometimes anything."""
    text = st.text(st.characters(codec="utf-8", max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=40)
    ids = mostly(st.sampled_from(world.ids).map(nodes.String), st.uuids().map(str).map(nodes.String),
                 text.map(nodes.String), st.integers(-2, 2**40).map(nodes.Int))
    near = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))
    far = st.datetimes()
    moments = mostly(near.map(lambda d: d.replace(tzinfo=UTC).isoformat()),
                     near.map(lambda d: d.isoformat()),  # naive: no time zone
                     st.timezones().flatmap(lambda tz: far.map(lambda d: d.replace(tzinfo=tz).isoformat())),
                     far.map(lambda d: d.replace(tzinfo=UTC).isoformat()), text)
    days = mostly(st.dates(min_value=datetime(2020, 1, 1).date(), max_value=datetime(2031, 1, 1).date()).map(str),
                  st.dates().map(str), text)
    ints = mostly(st.integers(-1, 120).map(nodes.Int), st.integers(-(2**31), 2**31 - 1).map(nodes.Int))
    strings = mostly(st.sampled_from(world.strings) | st.text(alphabet="abcdefghij +-@.:0123456789", max_size=30),
                     text, st.text(max_size=300))
    plain_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                              lambda inner: st.lists(inner, max_size=3), max_leaves=5)
    return {"ID": ids, "Int": ints, "String": strings.map(nodes.String), "DateTime": moments.map(nodes.String),
            "Date": days.map(nodes.String), "Time": mostly(st.times().map(str), text).map(nodes.String),
            "JSON": plain_json.map(lambda v: nodes.String(json.dumps(v)))}


@pytest.fixture(scope="module")
def documents(world: World) -> st.SearchStrategy[str]:
    schema = graphql.build_schema(str(build_schema(Limits(), production=False)))
    custom = scalars(world)
    assert schema.mutation_type is not None
    sent = [name for name in schema.mutation_type.fields if name not in NEVER_SENT]
    valid = st.one_of(queries(schema, custom_scalars=custom), mutations(schema, fields=sent, custom_scalars=custom))
    invalid = st.one_of(queries(schema, custom_scalars=custom, mode=Mode.NEGATIVE),
                        mutations(schema, fields=sent, custom_scalars=custom, mode=Mode.NEGATIVE))
    # Four valid documents for one with a schema violation (those stop in validation, cheaply).
    return st.integers(0, 4).flatmap(lambda n: invalid if n == 0 else valid)


def server_errors(response: httpx.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:500]}"]
    try:
        body = response.json()
    except ValueError:
        return []
    return [json.dumps(error) for error in (body.get("errors") or [])
            if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"]


@pytest.mark.parametrize("principal", PRINCIPALS)
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
async def test_no_document_ends_in_a_server_error(client: httpx.AsyncClient, world: World,
                                                  documents: st.SearchStrategy[str], principal: str,
                                                  data: st.DataObject) -> None:
    document = data.draw(documents, label="document")
    token = world.tokens[principal]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": document}, headers=headers)
    errors = server_errors(response)
    assert errors == [], f"as {principal}, the document\n{document}\nanswered\n" + "\n".join(errors)


# -- what the fuzzer found (issue 11): each document as its principal, and the answer it gets now ---------

FOUND = [
    # A nullable argument without a Python default: omitting it was a TypeError in the resolver call.
    ("anonymous", 'mutation { ticketAssign(id: "a") { id } }', "BAD_USER_INPUT"),
    # A NUL in the e-mail reached PostgreSQL, which cannot compare text with one (OperationalError).
    ("anonymous", 'mutation { login(email: "a\\u0000@careloop.test", password: "x") { token } }', "UNAUTHENTICATED"),
    ("anonymous", 'mutation { patientLogin(email: "\\u0000", password: "x") { token } }', "UNAUTHENTICATED"),
    # The same through the audit trail's filter.
    ("compliance_officer", '{ auditEvents(filter: {resourceType: "patient\\u0000"}) { edges { cursor } } }',
     "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(("principal", "document", "code"), FOUND)
async def test_what_the_fuzzer_found_is_answered_with_a_code(client: httpx.AsyncClient, world: World,
                                                             principal: str, document: str, code: str) -> None:
    token = world.tokens[principal]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": document}, headers=headers)
    assert server_errors(response) == []
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]
