"""The compiled read path for a patient's visits (schema/compiled/visit.py: the root ``visits`` history and the
single ``visit``) answers exactly as the generic path: a corpus of queries run through both
(tests/api/test_compiled_reads.py's ``assert_same``), comparing the whole JSON answer and the audit records, for
every role, a nurse who is also a compliance officer (refused classes on the visit and on its patient), patients
out of reach and missing, break-glass, the patient's own portal (no internal note) and a partner (its own visits
only)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.principal import ROLES
from models import CareTeamMember
from resolvers.context import Services
from tests.api.test_compiled_plan_cache import PLANNED
from tests.api.test_compiled_reads import ALL_CONTACT_FIELDS, ALL_PATIENT_FIELDS, assert_same
from tests.api.test_compiled_worklist import add_nurse_officer, created
from tests.factories import Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, Partnership, make_partnership
from tests.patients import make_contact, open_account

ALL_VISIT_FIELDS = """id recordedByPartner kind status plannedAt arrivedAt startedAt endedAt cancelledAt revisitOn
  createdAt updatedAt version reason summary outcome treatmentPlan medicationGuidance rehabilitation precautions
  feedback internalNote __typename"""
CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
HISTORY = """query($pid: ID!) { visits(patientId: $pid, first: 50) { nodes { id kind status plannedAt summary
  patient { fullName phone } } } }"""

# (query, compiled?) for a patient's history ($pid); the last says whether the plan must run (else it falls back)
HISTORIES: list[tuple[str, bool]] = [
    (HISTORY, True),
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id } } }", True),
    (f"""query($pid: ID!) {{ visits(patientId: $pid, first: 100) {{ __typename totalCount edges {{ cursor node {{
       {ALL_VISIT_FIELDS} patient {{ {ALL_PATIENT_FIELDS} contacts {{ {ALL_CONTACT_FIELDS} }} }} }} }}
       pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}""", True),
    # aliases, the same field twice under two keys, the patient twice with different selections
    ("""query($pid: ID!) { history: visits(patientId: $pid, first: 2) { n: totalCount rows: edges { at: cursor
       v: node { what: kind why: reason note: internalNote who: patient { name: fullName tel: phone }
       p2: patient { allergies } } } edges { node { summary } } more: pageInfo { next: hasNextPage } } }""", True),
    # fragments (nested), inline fragments with and without a type condition
    ("""query($pid: ID!) { visits(patientId: $pid) { nodes { ...V ... on Visit { outcome treatmentPlan }
       ... { revisitOn } } } } fragment V on Visit { id status patient { ...P contacts { name phone } } }
       fragment P on Patient { fullName phone ... on Patient { medicalHistory } }""", True),
    # @skip/@include on fields and on the root field
    ("""query($pid: ID!, $clinical: Boolean = true) { visits(patientId: $pid) { nodes { id
       summary @include(if: $clinical) patient { phone @skip(if: $clinical) allergies @include(if: $clinical) }
       } } }""", True),
    ("query($pid: ID!) { visits(patientId: $pid) @skip(if: false) { nodes { kind } } }", True),
    # filter, order, paging
    ("""query($pid: ID!) { visits(patientId: $pid, first: 1, filter: {kind: OUTPATIENT},
       orderBy: {field: PLANNED_AT, direction: ASC}) { totalCount nodes { id plannedAt } pageInfo { endCursor
       hasNextPage } } }""", True),
    ('query($pid: ID!) { visits(patientId: $pid, after: "nope") { nodes { id } } }', True),
    ('query($pid: ID!) { visits(patientId: $pid, filter: {kind: HOME_CARE}) { totalCount nodes { id } } }', True),
    # unsupported: fields loaded per visit, several root fields, a root fragment
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id department { name } } } }", False),
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id clinician { id } staff { id } } } }", False),
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id codes { code } } } }", False),
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id patient { careTeam { id } } } } }", False),
    ("query($pid: ID!) { visits(patientId: $pid) { nodes { id } } t: __typename }", False),
    ("query($pid: ID!) { ...Root } fragment Root on Query { visits(patientId: $pid) { nodes { id } } }", False),
]
# (query, compiled?) for one visit ($id)
SINGLE: list[tuple[str, bool]] = [
    (f"query($id: ID!) {{ visit(id: $id) {{ {ALL_VISIT_FIELDS} patient {{ {ALL_PATIENT_FIELDS} }} }} }}", True),
    ("query($id: ID!) { v: visit(id: $id) { ... on Visit { summary kind } who: patient { fullName phone } } }", True),
    ("query($id: ID!) { visit(id: $id) { id department { id } } }", False),
]


@dataclass
class World:
    tenant: Tenant
    partnership: Partnership
    patients: list[uuid.UUID]  # in the nurse's care team, outside every reach but the officer's, a partner's
    visits: list[str]


async def _visit(tenant: Tenant, role: str, pid: uuid.UUID, **fields: Any) -> str:
    data = {"patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id), **fields}
    return await created(tenant, role, CREATE, data)


@pytest.fixture
async def world(tenant: Tenant, client: Any, services: Services) -> World:
    await add_nurse_officer(tenant, client, services)
    b = str(tenant.departments["B"].id)
    in_a = await make_patient(tenant, "nurse", fullName="Kinsley Moore", phone="13800001111", allergies="Penicillin",
                              medicalHistory="Asthma")
    in_b = await make_patient(tenant, "nurse", fullName="Zhang Wei", departmentId=b, phone="13900002222",
                              allergies="Latex")
    await make_contact(tenant, in_a, "Bo Moore", phone="13600005555", notes="Brother")
    clinical = {"reason": "Toothache", "summary": "Filling", "outcome": "Good", "treatmentPlan": "Floss",
                "medicationGuidance": "Ibuprofen", "rehabilitation": "Rest", "precautions": "No sweets",
                "revisitOn": "2027-01-10", "internalNote": "Anxious", "plannedAt": "2026-11-02T09:00:00+08:00"}
    visits = [await _visit(tenant, "nurse", in_a, **clinical),
              await _visit(tenant, "front_desk", in_a, plannedAt="2026-11-20T09:00:00+08:00"),
              await _visit(tenant, "nurse", in_b, **clinical, departmentId=b)]
    await CareTeamMember.filter(patient_id=in_b).delete()
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "visit:create", "visit:read"])
    visits.append(await _visit(tenant, "nurse", partnership.granted, reason="Check-up"))
    home = await partnership.call(CREATE, input={"patientId": str(partnership.granted), "kind": "HOME_CARE",
                                                 "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
                                                 "endedAt": "2026-11-20T10:00:00+08:00"})
    assert not home.errors, home.errors
    visits.append(str(home.data["visitCreate"]["id"]))
    return World(tenant, partnership, [in_a, in_b, partnership.granted], visits)


async def _corpus(world: World, token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                  patients: list[str] | None = None) -> list[Any]:
    answers = []
    for pid in patients or [*map(str, world.patients), str(uuid.uuid4()), "not-an-id"]:
        for query, supported in HISTORIES:
            answers.append(await assert_same(world.tenant, token, query, {"pid": pid}, supported, monkeypatch,
                                             caplog))
    for visit_id in [*world.visits, str(uuid.uuid4())]:
        for query, supported in SINGLE:
            await assert_same(world.tenant, token, query, {"id": visit_id}, supported, monkeypatch, caplog)
    return answers


@pytest.mark.parametrize("role", [*ROLES, "nurse_officer"])
async def test_every_role_reads_visits_as_the_generic_path(world: World, role: str, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    answers = await _corpus(world, world.tenant.tokens[role], monkeypatch, caplog)
    in_a, in_b = answers[0], answers[len(HISTORIES)]
    if role == "nurse":  # the corpus exercises what it claims: sealed fields opened, a file out of reach
        assert [n["summary"] for n in in_a.data["visits"]["nodes"]] == [None, "Filling"] and not in_a.errors
        assert in_a.data["visits"]["nodes"][0]["patient"] == {"fullName": "Kinsley Moore", "phone": "+8613800001111"}
        assert in_b.codes == ["NOT_FOUND"]
    if role == "front_desk":  # clinical refused, once per visit
        assert [e["path"] for e in in_a.errors] == [["visits", "nodes", i, "summary"] for i in (0, 1)]
    if role == "nurse_officer":  # the officer finds Zhang Wei (identity); his visits are read only where the
        # nurse, who reads visits, reaches (test_section_reach): refused, as a whole
        assert {(tuple(e["path"]), e["extensions"]["code"]) for e in in_b.errors} == {(("visits",), "FORBIDDEN")}


async def test_break_glass_reads_visits_as_the_generic_path(world: World, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    tenant, in_b = world.tenant, world.patients[1]
    opened = await tenant.call("doctor", """mutation($id: ID!) { breakGlass(patientId: $id, reason:
        "Unconscious in the emergency room") { id } }""", id=str(in_b))
    assert not opened.errors, opened.errors
    [answer, *_] = await _corpus(world, tenant.tokens["doctor"], monkeypatch, caplog, [str(in_b)])
    assert answer.data["visits"]["nodes"][0]["summary"] == "Filling" and not answer.errors
    [record] = [e for e in await tenant.audit_events(patient_id=in_b, action="read", outcome="allowed")
                if e.actor_id == tenant.staff_ids["doctor"]][-1:]
    assert f"emergency_access {opened.data['breakGlass']['id']}" in record.policy_rule


async def test_the_patient_and_a_partner_read_visits_as_the_generic_path(world: World,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    me = await open_account(world.tenant, world.patients[0])
    [mine, *_] = await _corpus(world, me.token, monkeypatch, caplog)
    assert len(mine.data["visits"]["nodes"]) == 2
    full = await gql(world.tenant.client, HISTORIES[2][0], {"pid": str(world.patients[0])}, me.token)
    assert "internalNote" in {e["path"][-1] for e in full.errors}  # never in the portal
    answers = await _corpus(world, world.partnership.token, monkeypatch, caplog)
    granted = answers[2 * len(HISTORIES)]
    assert len(granted.data["visits"]["nodes"]) == 1  # its own home-care visit only


async def test_the_history_runs_the_compiled_plan_made_once(world: World, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    query = f"# {uuid.uuid4()}\n{HISTORY}"
    with caplog.at_level(logging.DEBUG, logger="careloop.compiled"):
        for role in ("nurse", "doctor"):
            reply = await gql(world.tenant.client, query, {"pid": str(world.patients[0])}, world.tenant.tokens[role])
            assert len(reply.data["visits"]["nodes"]) == 2 and not reply.errors
    assert [r.getMessage() for r in caplog.records if r.name == "careloop.compiled"] == [
        "compiled visits", "fast"] * 2  # by the fast pass (schema/compiled/fast.py)
    assert [r.getMessage() for r in caplog.records if r.name == PLANNED] == ["planned VisitConnection"]
