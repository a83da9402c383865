"""The compiled read path (schema/compiled.py) answers exactly as the generic path: a corpus of queries, each
run through both (CARELOOP_COMPILED_READS switches the compiled path off), comparing the whole JSON answer
(data, errors with codes, paths and locations) and the audit records each run appended."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.principal import ROLES
from models import AuditEvent, CareTeamMember
from schema.compiled import SWITCH
from tests.factories import Response, Tenant, gql, make_patient
from tests.partners import make_partnership
from tests.patients import make_contact, open_account

ALL_PATIENT_FIELDS = """id version mergedInto mergedAt fullName sex birthDate occupation nationalIdType nationalId
  status segments tags createdAt updatedAt address phone altPhone email preferredChannel preferredLanguage
  contactConsent contactChannels contactPurposes medicalHistory diagnoses allergies currentMedication
  dietPreferences activityPreferences specialNeeds"""
ALL_CONTACT_FIELDS = "id patientId version name relationship phone isEmergency mayReceiveInformation notes updatedAt"

W1 = """query($after: String) { patients(first: 50, after: $after) { nodes { id fullName sex birthDate phone
  address allergies contacts { name relationship phone } } pageInfo { hasNextPage endCursor } } }"""

# Lists: (query, variables, compiled?) -- the last says whether the compiled plan must run (else it falls back).
LISTS: list[tuple[str, dict[str, Any], bool]] = [
    (W1, {}, True),
    ("{ patients { nodes { id } } }", {}, True),
    (f"{{ patients(first: 100) {{ totalCount __typename edges {{ cursor node {{ {ALL_PATIENT_FIELDS} __typename "
     f"contacts {{ {ALL_CONTACT_FIELDS} __typename }} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor "
     f"endCursor __typename }} }} }}", {}, True),
    # aliases, the same field twice under two keys, and merged selections
    ("""{ list: patients(first: 3) { total: totalCount rows: edges { at: cursor patient: node { name: fullName
       n2: fullName id alias: allergies } } edges { node { phone } } more: pageInfo { next: hasNextPage } } }""",
     {}, True),
    # fragments (nested), inline fragments with and without a type condition
    ("""query { patients { nodes { ...Who ... on Patient { segments tags status } ... { diagnoses } } } }
       fragment Who on Patient { fullName ...Clinical contacts { ...Kin } }
       fragment Clinical on Patient { allergies medicalHistory }
       fragment Kin on Contact { name phone notes }""", {}, True),
    # variables in arguments and in @skip/@include
    ("""query($first: Int!, $clinical: Boolean!, $kin: Boolean!) { patients(first: $first) { nodes {
       id allergies @include(if: $clinical) phone @skip(if: $clinical) contacts @include(if: $kin) { name } } } }""",
     {"first": 2, "clinical": True, "kin": False}, True),
    ("""query($first: Int!, $clinical: Boolean!, $kin: Boolean!) { patients(first: $first) { nodes {
       id allergies @include(if: $clinical) phone @skip(if: $clinical) contacts @include(if: $kin) { name } } } }""",
     {"first": 2, "clinical": False, "kin": True}, True),
    # the same patients under edges and nodes, contacts in both (the generic path's order of async work)
    ("""{ patients(first: 4) { edges { node { id allergies contacts { name } } } nodes { allergies fullName
       contacts { phone } } } }""", {}, True),
    # sorted and filtered
    ("""query($order: PatientOrder) { patients(first: 5, orderBy: $order) { nodes { fullName allergies }
       pageInfo { endCursor } } }""", {"order": {"field": "NAME", "direction": "DESC"}}, True),
    ("""{ patients(filter: {name: "kin"}) { totalCount nodes { fullName sex } } }""", {}, True),
    # unsupported: a field the compiler does not know, several root fields, a bad argument
    ("{ patients { nodes { id fullName careTeam { id } } } }", {}, False),
    ("{ patients { nodes { id allergies } } me: __typename }", {}, False),
    ("{ patients(first: 1000) { nodes { id } } }", {}, False),
    ("query { ...Root } fragment Root on Query { patients { nodes { id allergies } } }", {}, False),
]

SINGLE: list[tuple[str, bool]] = [
    (f"query($id: ID!) {{ patient(id: $id) {{ {ALL_PATIENT_FIELDS} contacts {{ {ALL_CONTACT_FIELDS} }} }} }}", True),
    ("query($id: ID!) { patient(id: $id) { diagnoses id fullName allergies phone c: contacts { name } } }", True),
    ("query($id: ID!) { file: patient(id: $id) { ... on Patient { __typename sex nationalId } } }", True),
    ("query($id: ID!) { patient(id: $id) { id department { id } } }", False),
]


@dataclass
class World:
    tenant: Tenant
    in_a: uuid.UUID  # department A, every class filled, two contacts
    in_a_plain: uuid.UUID  # department A, few fields, one contact
    in_b: uuid.UUID  # department B, outside every clinician's care team


@pytest.fixture
async def world(tenant: Tenant) -> World:
    in_a = await make_patient(tenant, "nurse", fullName="Kinsley Moore", sex="FEMALE", birthDate="1970-03-04",
                              occupation="Teacher", phone="13800001111", altPhone="13800002222",
                              address="Garden Road 5", allergies="Penicillin", medicalHistory="Asthma",
                              diagnoses="Caries", currentMedication="None", dietPreferences="Vegetarian",
                              specialNeeds="Wheelchair", segments=["VIP", "IMPLANT"], tags=["wheelchair"],
                              nationalIdType="RESIDENT_ID", nationalId="11010519491231002X",
                              email="kinsley@example.com", contactChannels=["SMS", "EMAIL"])
    in_a_plain = await make_patient(tenant, fullName="Liam Kin")
    in_b = await make_patient(tenant, "nurse", fullName="Zhang Wei", departmentId=str(tenant.departments["B"].id),
                              allergies="Latex")
    await CareTeamMember.filter(patient_id=in_b).delete()
    await make_contact(tenant, in_a, "Ann Moore")
    await make_contact(tenant, in_a, "Bo Moore", phone="13600005555", notes="Brother")
    await make_contact(tenant, in_a_plain, "Cy Kin")
    return World(tenant, in_a, in_a_plain, in_b)


def _audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """A record without what differs between two runs (position, hash, time, request id)."""
    return (event.actor_kind, event.actor_id, event.token_id, event.action, event.resource_type, event.resource_id,
            event.patient_id, event.field_classes, event.fields_read, event.outcome, event.reason, event.policy_rule,
            event.client_address, event.user_agent)


async def _run(tenant: Tenant, token: str, query: str, variables: dict[str, Any], *, compiled: bool,
               monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
               ) -> tuple[Response, list[tuple[Any, ...]], bool]:
    monkeypatch.setenv(SWITCH, "1" if compiled else "0")
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    mark = 0 if last is None else last.seq
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="careloop.compiled"):
        reply = await gql(tenant.client, query, variables, token)
    ran = any(r.name == "careloop.compiled" for r in caplog.records)
    events = await AuditEvent.filter(institution_id=tenant.id, seq__gt=mark).order_by("seq")
    return reply, [_audit_row(e) for e in events], ran


async def assert_same(tenant: Tenant, token: str, query: str, variables: dict[str, Any], supported: bool,
                      monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Response:
    generic, generic_audit, generic_ran = await _run(tenant, token, query, variables, compiled=False,
                                                     monkeypatch=monkeypatch, caplog=caplog)
    compiled, compiled_audit, compiled_ran = await _run(tenant, token, query, variables, compiled=True,
                                                        monkeypatch=monkeypatch, caplog=caplog)
    assert not generic_ran
    # The plan runs when the query is supported and its root resolver returned a value to complete.
    reached = bool(generic.data) and all(value is not None for value in generic.data.values())
    assert compiled_ran is (supported and reached), query
    assert compiled.status == generic.status
    assert compiled.body == generic.body, query
    assert list(compiled.body) == list(generic.body)
    assert compiled_audit == generic_audit, query
    return compiled


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_lists_as_the_generic_path(world: World, role: str, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    token = world.tenant.tokens[role]
    answers = [await assert_same(world.tenant, token, query, variables, supported, monkeypatch, caplog)
               for query, variables, supported in LISTS]
    if role == "nurse":  # the corpus exercises what it claims: data, contacts
        assert {p["fullName"] for p in answers[0].data["patients"]["nodes"]} == {"Kinsley Moore", "Liam Kin"}
        assert not answers[0].errors
    if role == "front_desk":  # clinical fields refused: one FORBIDDEN per field and patient
        assert set(answers[0].codes) == {"FORBIDDEN"} and len(answers[0].errors) == 3


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_reads_one_as_the_generic_path(world: World, role: str, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    token = world.tenant.tokens[role]
    for pid in (str(world.in_a), str(world.in_a_plain), str(world.in_b), str(uuid.uuid4()), "not-an-id"):
        for query, supported in SINGLE:
            await assert_same(world.tenant, token, query, {"id": pid}, supported, monkeypatch, caplog)


async def test_break_glass_reads_as_the_generic_path(world: World, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    tenant = world.tenant
    opened = await tenant.call("doctor", """mutation($id: ID!) { breakGlass(patientId: $id, reason:
        "Unconscious in the emergency room") { id } }""", id=str(world.in_b))
    assert not opened.errors, opened.errors
    token = tenant.tokens["doctor"]
    for query, compiled in SINGLE:
        reply = await assert_same(tenant, token, query, {"id": str(world.in_b)}, compiled, monkeypatch, caplog)
    for query, variables, compiled in LISTS:
        await assert_same(tenant, token, query, variables, compiled, monkeypatch, caplog)
    reply = await assert_same(tenant, token, SINGLE[1][0], {"id": str(world.in_b)}, True, monkeypatch, caplog)
    assert reply.data["patient"]["allergies"] == "Latex"
    [record] = [e for e in await tenant.audit_events(patient_id=world.in_b, action="read", outcome="allowed")
                if e.actor_id == tenant.staff_ids["doctor"]][-1:]
    assert f"emergency_access {opened.data['breakGlass']['id']}" in record.policy_rule


async def test_the_patient_reads_their_file_as_the_generic_path(world: World, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    me = await open_account(world.tenant, world.in_a)
    for query, compiled in SINGLE:
        await assert_same(world.tenant, me.token, query, {"id": str(world.in_a)}, compiled, monkeypatch, caplog)
        await assert_same(world.tenant, me.token, query, {"id": str(world.in_b)}, False, monkeypatch, caplog)
    for query, variables, supported in LISTS:
        await assert_same(world.tenant, me.token, query, variables, supported, monkeypatch, caplog)


async def test_a_partner_reads_as_the_generic_path(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    partnership = await make_partnership(tenant)
    for query, compiled in SINGLE:
        reply = await assert_same(tenant, partnership.token, query, {"id": str(partnership.granted)}, compiled,
                                  monkeypatch, caplog)
        assert None not in reply.data.values()
        await assert_same(tenant, partnership.token, query, {"id": str(partnership.other)}, False, monkeypatch,
                          caplog)
    for query, variables, compiled in LISTS:
        await assert_same(tenant, partnership.token, query, variables, compiled, monkeypatch, caplog)
