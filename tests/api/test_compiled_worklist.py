"""The compiled read path for the follow-up worklist (schema/compiled/follow_up.py) answers exactly as the generic
path: a corpus of worklist queries run through both (tests/api/test_compiled_reads.py's ``assert_same``),
comparing the whole JSON answer and the audit records, for every role, a nurse who is also a compliance officer
(identity of any file, clinical of none: refused classes on the task and on its patient), tasks whose patient left
the caller's reach, break-glass, and the patient and partner principals (refused at the root)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from core.principal import ROLES
from models import CareTeamMember
from resolvers import follow_up
from resolvers import institution as institutions
from resolvers.context import Services
from tests.api.test_compiled_plan_cache import PLANNED
from tests.api.test_compiled_reads import (
    ALL_CONTACT_FIELDS,
    ALL_PATIENT_FIELDS,
    PATIENT_FIELDS,
    WHOLE_ROW,
    assert_same,
)
from tests.api.test_follow_up import NOW, TODAY
from tests.factories import PASSWORD, Tenant, gql, login, make_patient
from tests.partners import make_partnership
from tests.patients import make_contact, open_account

W5 = """query W5($first: Int!, $after: String) {
  followUpWorklist(scope: MINE, first: $first, after: $after) { nodes { id dueOn status patient { fullName phone } } }
}"""
ALL_TASK_FIELDS = """id dueOn status completedAt createdAt updatedAt version reached condition needsHelp
  satisfaction notes visitId ticketId __typename"""
CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
TOMORROW = (TODAY + timedelta(days=1)).isoformat()

# (query, variables, compiled?): the last says whether the compiled plan must run (else it falls back)
WORKLIST: list[tuple[str, dict[str, Any], bool]] = [
    (W5, {"first": 50}, True),
    ("{ followUpWorklist { nodes { id } } }", {}, True),
    (f"""{{ followUpWorklist(first: 100) {{ __typename today totalCount edges {{ cursor __typename node {{
       {ALL_TASK_FIELDS} patient {{ {ALL_PATIENT_FIELDS} __typename contacts {{ {ALL_CONTACT_FIELDS} }} }} }} }}
       pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor __typename }} }} }}""", {}, True),
    # aliases, the same field twice under two keys, the patient twice with different selections
    ("""{ list: followUpWorklist(first: 3) { total: totalCount day: today rows: edges { at: cursor task: node {
       when: dueOn st: status who: patient { name: fullName tel: phone } p2: patient { allergies id } } }
       edges { node { id notes } } more: pageInfo { next: hasNextPage } } }""", {}, True),
    # fragments (nested), inline fragments with and without a type condition
    ("""query { followUpWorklist { nodes { ...Task ... on FollowUpTask { reached condition } ... { version } } } }
       fragment Task on FollowUpTask { id dueOn patient { ...Who contacts { ...Kin } } }
       fragment Who on Patient { fullName phone ... on Patient { allergies } }
       fragment Kin on Contact { name phone notes }""", {}, True),
    # variables in arguments and in @skip/@include
    ("""query($first: Int!, $clinical: Boolean!, $phone: Boolean!) { followUpWorklist(first: $first) { nodes {
       id notes @include(if: $clinical) patient { fullName phone @include(if: $phone) allergies @skip(if: $clinical)
       } } } }""", {"first": 2, "clinical": True, "phone": False}, True),
    ("""query($first: Int!, $clinical: Boolean!, $phone: Boolean!) { followUpWorklist(first: $first) { nodes {
       id notes @include(if: $clinical) patient { fullName phone @include(if: $phone) allergies @skip(if: $clinical)
       } } } }""", {"first": 2, "clinical": False, "phone": True}, True),
    ("query($skip: Boolean!) { followUpWorklist @skip(if: $skip) { nodes { id } } }", {"skip": True}, True),
    # the same tasks under edges and nodes, contacts in both (the generic path's order of async work)
    ("""{ followUpWorklist { edges { node { id patient { contacts { name } c2: contacts { phone } } } }
       nodes { status patient { contacts { notes } } } } }""", {}, True),
    # scopes, due dates, order and paging
    ("""query($scope: FollowUpScope, $dueBy: Date, $dept: ID) { followUpWorklist(scope: $scope, dueBy: $dueBy,
       departmentId: $dept) { totalCount nodes { id dueOn status patient { fullName phone } } } }""",
     {"scope": "POOL"}, True),
    ("""query($scope: FollowUpScope, $dueBy: Date) { followUpWorklist(scope: $scope, dueBy: $dueBy) { totalCount
       nodes { id dueOn status patient { fullName phone } } } }""", {"scope": "DEPARTMENT", "dueBy": TOMORROW}, True),
    ("""query($dueBy: Date) { followUpWorklist(dueBy: $dueBy, first: 1) { nodes { id dueOn } pageInfo {
       hasNextPage endCursor } } }""", {"dueBy": TOMORROW}, True),
    ("""{ followUpWorklist(orderBy: {field: UPDATED_AT, direction: DESC}) { edges { cursor node { id updatedAt
       patient { fullName } } } } }""", {}, True),
    # pages without nodes, and empty ones
    ("{ followUpWorklist { totalCount today } }", {}, True),
    ("{ followUpWorklist { pageInfo { hasNextPage endCursor startCursor hasPreviousPage } } }", {}, True),
    (f"""{{ followUpWorklist(dueBy: "{(TODAY - timedelta(days=30)).isoformat()}") {{ totalCount nodes {{ id }}
       edges {{ cursor }} pageInfo {{ endCursor }} }} }}""", {}, True),
    # refused before completion: no plan runs, the same error
    ("{ followUpWorklist(first: 0) { nodes { id } } }", {}, True),
    ('{ followUpWorklist(after: "not-a-cursor") { nodes { id } } }', {}, True),
    ('{ followUpWorklist(scope: POOL, departmentId: "nope") { nodes { id } } }', {}, True),
    ("query($first: Int!) { followUpWorklist(first: $first) { nodes { id } } }", {"first": "ten"}, True),
    # unsupported: fields the compiler does not know (loaded per task), several root fields, a root fragment
    ("{ followUpWorklist { nodes { id owner { id } } } }", {}, False),
    ("{ followUpWorklist { nodes { id department { name } rule { version } } } }", {}, False),
    ("{ followUpWorklist { nodes { id attempts { outcome } } } }", {}, False),
    # a task's visit (read as visit(id:) reads it, batched: tests/api/test_visit_links.py), alone and in a fragment
    ("""{ followUpWorklist { nodes { id visitId visit { id kind status summary internalNote
       patient { fullName allergies } } patient { fullName } } } }""", {}, False),
    ("""query { followUpWorklist { nodes { ...Task } } } fragment Task on FollowUpTask { id dueOn
       ... on FollowUpTask { visit { id summary } } }""", {}, False),
    ("{ followUpWorklist { nodes { id patient { fullName careTeam { id } } } } }", {}, False),
    ("{ followUpWorklist { nodes { id patient { recentVisits(count: 1) { id } } } } }", {}, False),
    ("{ followUpWorklist { nodes { id } } me: __typename }", {}, False),
    ("query { ...Root } fragment Root on Query { followUpWorklist { nodes { id dueOn } } }", {}, False),
]


VISITS_AT = next(index for index, (query, _, _) in enumerate(WORKLIST) if "visit {" in query)


def visits_shown(reply: Any) -> dict[str, Any]:
    """The summary of each task's visit, by patient (tasks after no visit left out)."""
    return {n["patient"]["fullName"]: n["visit"] and n["visit"]["summary"]
            for n in reply.data["followUpWorklist"]["nodes"] if n["visitId"]}


@dataclass
class World:
    tenant: Tenant
    in_a: uuid.UUID  # department A, in the nurse's care team, every class filled, two contacts
    in_a_plain: uuid.UUID  # department A (the nurse reaches it by department), one contact
    in_b: uuid.UUID  # department B, left the nurse's care team after its task was planned: out of reach
    seen_by_officer: uuid.UUID  # department B: the nurse-officer reaches it as officer only (identity, no tasks)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def created(tenant: Tenant, role: str, mutation: str, data: dict[str, Any]) -> str:
    """The id of what ``mutation`` (one root field, with an ``$input``) created."""
    reply = await tenant.call(role, mutation, input=data)
    assert not reply.errors, reply.errors
    [made] = reply.data.values()
    return str(made["id"])


async def _task(tenant: Tenant, role: str, pid: uuid.UUID, **fields: Any) -> str:
    return await created(tenant, role, CREATE, {"patientId": str(pid), "dueOn": TODAY.isoformat(), **fields})


async def _visit(tenant: Tenant, pid: uuid.UUID, department: str) -> str:
    """A finished visit with a summary and an internal note, which a task follows (its ``visit``, not compiled)."""
    ended = NOW - timedelta(hours=1)
    return await created(tenant, "nurse", VISIT_CREATE, {
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "departmentId": department,
        "summary": "Crown re-cemented", "internalNote": "Anxious",
        "startedAt": (ended - timedelta(hours=1)).isoformat(), "endedAt": ended.isoformat()})


async def add_nurse_officer(tenant: Tenant, client: Any, services: Services) -> uuid.UUID:
    """A nurse of department A who is also a compliance officer (``tenant.call("nurse_officer", ...)``): the
    identity of every file (officer), the contact class of department A's (nurse), the clinical class of none
    (the officer's clinical deny overrides the nurse's allow)."""
    email = f"nurse-officer.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name="Nurse officer",
                                              password=PASSWORD, roles=["nurse", "compliance_officer"],
                                              departments=[tenant.departments["A"]])
    tenant.staff_ids["nurse_officer"], tenant.tokens["nurse_officer"] = staff.id, await login(client, email)
    return staff.id


@pytest.fixture
async def world(tenant: Tenant, client: Any, services: Services) -> World:
    a, b = str(tenant.departments["A"].id), str(tenant.departments["B"].id)
    officer = str(await add_nurse_officer(tenant, client, services))
    in_a = await make_patient(tenant, "nurse", fullName="Kinsley Moore", sex="FEMALE", phone="13800001111",
                              address="Garden Road 5", allergies="Penicillin", medicalHistory="Asthma",
                              segments=["VIP"], tags=["wheelchair"], email="kinsley@example.com")
    in_a_plain = await make_patient(tenant, fullName="Liam Kin")
    in_b = await make_patient(tenant, "nurse", fullName="Zhang Wei", departmentId=b, allergies="Latex",
                              phone="13900002222")
    seen_by_officer = await make_patient(tenant, fullName="Wang Fang", departmentId=b, phone="13700003333")
    await make_contact(tenant, in_a, "Ann Moore")
    await make_contact(tenant, in_a, "Bo Moore", phone="13600005555", notes="Brother")
    await make_contact(tenant, in_a_plain, "Cy Kin")
    nurse = str(tenant.staff_ids["nurse"])
    await _task(tenant, "nurse", in_a, ownerId=nurse, visitId=await _visit(tenant, in_a, a))
    await _task(tenant, "nurse", in_a_plain, ownerId=nurse)
    await _task(tenant, "nurse", in_a, ownerId=nurse, dueOn=TOMORROW)
    await _task(tenant, "nurse", in_b, ownerId=nurse, departmentId=a, visitId=await _visit(tenant, in_b, b))
    await _task(tenant, "doctor", in_a_plain)  # department A's pool
    refused = await tenant.call("nurse_officer", CREATE, input={  # the officer's file: the nurse, who adds tasks,
        "patientId": str(seen_by_officer), "dueOn": TODAY.isoformat(), "ownerId": officer,  # does not reach it
        "departmentId": a})  # (tests/api/test_section_reach.py)
    assert refused.codes == ["FORBIDDEN"], refused.errors
    await _task(tenant, "nurse_officer", in_a, ownerId=officer)
    await CareTeamMember.filter(patient_id=in_b).delete()
    return World(tenant, in_a, in_a_plain, in_b, seen_by_officer)


async def _corpus(tenant: Tenant, token: str, monkeypatch: pytest.MonkeyPatch,
                  caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [await assert_same(tenant, token, query, variables, supported, monkeypatch, caplog)
            for query, variables, supported in WORKLIST]


@pytest.mark.parametrize("role", [*ROLES, "nurse_officer"])
async def test_every_role_reads_the_worklist_as_the_generic_path(world: World, role: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    answers = await _corpus(world.tenant, world.tenant.tokens[role], monkeypatch, caplog)
    w5 = answers[0]
    if role == "nurse":  # the corpus exercises what it claims: the nurse's tasks in reach, with their patients
        names = [n["patient"]["fullName"] for n in w5.data["followUpWorklist"]["nodes"]]
        assert sorted(names) == ["Kinsley Moore", "Liam Kin"] and not w5.errors  # Zhang Wei: out of reach
        assert {"+8613800001111", None} == {n["patient"]["phone"] for n in w5.data["followUpWorklist"]["nodes"]}
        assert visits_shown(answers[VISITS_AT]) == {"Kinsley Moore": "Crown re-cemented"}
    if role == "nurse_officer":  # tasks are read where the nurse, who reads them, reaches (test_section_reach):
        # not on the officer's file Wang Fang's (nor added there); clinical nowhere
        nodes = w5.data["followUpWorklist"]["nodes"]
        assert sorted(n["patient"]["fullName"] for n in nodes) == ["Kinsley Moore"] and not w5.errors
        assert {"FORBIDDEN"} == set(answers[2].codes) and len(answers[2].errors) > 10
    if role in ("front_desk", "support_agent", "finance", "admin", "compliance_officer"):
        assert w5.data is None and w5.codes == ["FORBIDDEN"]  # refused at the root: nothing to compile


async def test_break_glass_reads_the_worklist_as_the_generic_path(world: World, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    tenant = world.tenant
    opened = await tenant.call("nurse", """mutation($id: ID!) { breakGlass(patientId: $id, reason:
        "Called back about a severe reaction") { id } }""", id=str(world.in_b))
    assert not opened.errors, opened.errors
    answers = await _corpus(tenant, tenant.tokens["nurse"], monkeypatch, caplog)
    names = sorted(n["patient"]["fullName"] for n in answers[0].data["followUpWorklist"]["nodes"])
    assert names == ["Kinsley Moore", "Liam Kin", "Zhang Wei"]
    assert visits_shown(answers[VISITS_AT]) == {"Kinsley Moore": "Crown re-cemented", "Zhang Wei": "Crown re-cemented"}
    records = [e for e in await tenant.audit_events(action="read", outcome="allowed")
               if e.actor_id == tenant.staff_ids["nurse"]]
    assert f"emergency_access {opened.data['breakGlass']['id']}" in records[-1].policy_rule


async def test_patients_and_partners_are_refused_as_in_the_generic_path(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    me = await open_account(world.tenant, world.in_a)
    partnership = await make_partnership(world.tenant)
    for token in (me.token, partnership.token):
        answers = await _corpus(world.tenant, token, monkeypatch, caplog)
        assert answers[0].data is None and answers[0].codes == ["FORBIDDEN"]


async def test_w5_runs_the_compiled_plan_made_once(world: World, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The bench's W5 is completed from a plan (the executor logs it), planned once for the document."""
    query = f"# {uuid.uuid4()}\n{W5}"
    token = world.tenant.tokens["nurse"]
    with caplog.at_level(logging.DEBUG, logger="careloop.compiled"):
        for _ in range(3):
            reply = await gql(world.tenant.client, query, {"first": 50}, token)
            assert len(reply.data["followUpWorklist"]["nodes"]) == 2 and not reply.errors
    assert [r.getMessage() for r in caplog.records if r.name == "careloop.compiled"] == [
        "compiled followUpWorklist", "fast"] * 3  # by the fast pass (schema/compiled/fast.py)
    assert [r.getMessage() for r in caplog.records if r.name == PLANNED] == ["planned FollowUpWorklist"]


# -- the tasks' patients with only the columns the selection reads (resolvers/follow_up.py worklist) -----------


async def test_each_patient_field_answers_from_a_pruned_row_as_from_the_whole_row(world: World) -> None:
    """Each patient field alone (so that it alone decides the columns loaded) answers as when the whole row is
    loaded (a section of the patient's page needs it): a field reading a column it does not declare fails here."""
    query = "{ followUpWorklist { nodes { id status patient { id %s } } } }"
    for role in ("nurse", "nurse_officer", "department_head"):
        token = world.tenant.tokens[role]
        for field in PATIENT_FIELDS:
            pruned = await gql(world.tenant.client, query % field, None, token)
            whole = await gql(world.tenant.client, query % f"{field} {WHOLE_ROW}", None, token)
            assert "INTERNAL_SERVER_ERROR" not in pruned.codes, (field, pruned.errors)
            for node in whole.data["followUpWorklist"]["nodes"]:
                node["patient"].pop("flags")
            assert pruned.data == whole.data, field
            assert pruned.errors == [e for e in whole.errors if "flags" not in e["path"]], field


async def test_w5_fetches_only_the_phone_of_the_sealed_columns(world: World, sql_counter: Any) -> None:
    start = len(sql_counter.statements)
    reply = await world.tenant.call("nurse", W5, first=50)
    assert len(reply.data["followUpWorklist"]["nodes"]) == 2 and not reply.errors
    [select] = [s for s in sql_counter.statements[start:]  # the tasks' query names patients in its scope too
                if s.lstrip().upper().startswith("SELECT") and ' FROM "patient"' in s and "follow_up_task" not in s]
    sealed = {"national_id", "address", "phone", "alt_phone", "medical_history", "diagnoses", "allergies",
              "current_medication", "special_needs"}
    assert {column for column in sealed if f'"{column}"' in select} == {"phone"}
    assert '"department_id"' in select and '"full_name"' in select and '"email"' not in select


# -- the tasks with only the columns the selection reads -------------------------------------------------------

TASK_FIELDS = [*ALL_TASK_FIELDS.split(), "owner { id }", "department { id }", "rule { id }", "attempts { at }"]


async def test_each_task_field_answers_from_a_pruned_row_as_from_the_whole_row(world: World) -> None:
    """Each task field alone (so that it alone decides the task columns loaded) answers as among every field: a
    field reading a column it does not declare (schema.follow_up.TASK_COLUMNS) fails here. The pages' cursors
    read the order's column, which is loaded whatever the selection (both orders)."""
    query = "{ followUpWorklist(orderBy: %s) { edges { cursor node { %s } } } }"
    every = " ".join(TASK_FIELDS)
    for role in ("nurse", "nurse_officer", "department_head"):
        token = world.tenant.tokens[role]
        for order in ("{field: DUE_ON}", "{field: UPDATED_AT, direction: DESC}"):
            whole = await gql(world.tenant.client, query % (order, every), None, token)
            for field in TASK_FIELDS:
                pruned = await gql(world.tenant.client, query % (order, field), None, token)
                assert "INTERNAL_SERVER_ERROR" not in pruned.codes, (field, pruned.errors)
                key = field.split()[0]
                assert [(e["cursor"], e["node"][key]) for e in pruned.data["followUpWorklist"]["edges"]] == [
                    (e["cursor"], e["node"][key]) for e in whole.data["followUpWorklist"]["edges"]], field


async def test_w5_loads_only_the_task_columns_it_reads(world: World, sql_counter: Any) -> None:
    start = len(sql_counter.statements)
    reply = await world.tenant.call("nurse", W5, first=50)
    assert len(reply.data["followUpWorklist"]["nodes"]) == 2 and not reply.errors
    [select] = [s for s in sql_counter.statements[start:]
                if s.lstrip().upper().startswith("SELECT") and ' FROM "follow_up_task"' in s and "LIMIT" in s]
    selected = select[:select.index(" FROM ")]
    assert {c for c in ("id", "patient_id", "due_on", "status") if f'"{c}"' not in selected} == set(), select
    assert {c for c in ("notes", "condition", "reached", "satisfaction", "needs_help", "completed_at", "rule_id",
                        "owner_id", "visit_id") if f'"{c}"' in selected} == set(), select
