"""Tenant isolation: nothing of institution B reaches any user of institution A.

Out of scope must look exactly like missing: the answer for one of B's ids is compared with
the answer for a random UUID, for every role and every way in (id, filter, nesting, alias,
fragment). A role that may not perform an operation at all is refused with FORBIDDEN before
any lookup, for B's ids and random ids alike; every role that may, gets NOT_FOUND.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from core.principal import ROLES
from models import CareTeamMember, Contact, Patient, RoleAssignment, Staff
from tests.factories import Response, Tenant, make_patient

B_PHONE = "13700001111"
B_NATIONAL_ID = "11010519491231002X"

CONTACT_CREATE = """
mutation($patientId: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $patientId, input: $input) { id } }"""
CARE_TEAM_ASSIGN = "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }"


@dataclass
class World:
    a: Tenant
    b: Tenant
    a_patient: uuid.UUID
    a_contact: uuid.UUID
    b_patient: uuid.UUID
    b_contact: uuid.UUID
    b_name: str
    b_contact_name: str

    @property
    def b_staff(self) -> uuid.UUID:
        return self.b.staff_ids["nurse"]

    @property
    def a_staff(self) -> uuid.UUID:
        return self.a.staff_ids["nurse"]

    def b_markers(self) -> list[str]:
        """Every string of B that must never appear in an answer to A."""
        ids = [self.b_patient, self.b_contact, *self.b.staff_ids.values(), self.b.id,
               *(d.id for d in self.b.departments.values())]
        return [str(i) for i in ids] + [self.b_name, self.b_contact_name, "+86" + B_PHONE, B_NATIONAL_ID,
                                        self.b.institution.name]


async def add_contact(tenant: Tenant, patient_id: uuid.UUID, name: str, phone: str) -> uuid.UUID:
    reply = await tenant.call("front_desk", CONTACT_CREATE, patientId=str(patient_id),
                              input={"name": name, "relationship": "SPOUSE", "phone": phone, "notes": "note"})
    assert not reply.errors, reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])


@pytest.fixture
async def world(tenant: Tenant, other_tenant: Tenant) -> World:
    tag = uuid.uuid4().hex[:8]
    b_name, b_contact_name = f"Bpatient{tag}", f"Bcontact{tag}"
    b_patient = await make_patient(other_tenant, fullName=b_name, phone=B_PHONE, nationalIdType="RESIDENT_ID",
                                   nationalId=B_NATIONAL_ID, address="B street 1")
    b_contact = await add_contact(other_tenant, b_patient, b_contact_name, "13700002222")
    reply = await other_tenant.call("admin", CARE_TEAM_ASSIGN, p=str(b_patient), s=str(other_tenant.staff_ids["nurse"]))
    assert reply.data == {"careTeamAssign": True}, reply.errors
    a_patient = await make_patient(tenant, fullName=f"Apatient{tag}", phone="13600003333")
    a_contact = await add_contact(tenant, a_patient, f"Acontact{tag}", "13600004444")
    reply = await tenant.call("admin", CARE_TEAM_ASSIGN, p=str(a_patient), s=str(tenant.staff_ids["nurse"]))
    assert reply.data == {"careTeamAssign": True}, reply.errors
    return World(tenant, other_tenant, a_patient, a_contact, b_patient, b_contact, b_name, b_contact_name)


def without_place(reply: Response) -> dict[str, Any]:
    """The reply with error paths and locations left out: what must not differ."""
    errors = [{k: v for k, v in error.items() if k not in ("path", "locations")} for error in reply.errors]
    return {"data": reply.data, "errors": errors}


async def b_state(world: World) -> dict[str, Any]:
    """What A's attempts must leave exactly as it was in B."""
    patient = await Patient.get(id=world.b_patient)
    contact = await Contact.get_or_none(id=world.b_contact)
    staff = await Staff.get(id=world.b_staff)
    return {
        "patient": (patient.full_name, patient.status, patient.updated_at),
        "contact": None if contact is None else (contact.name, contact.updated_at),
        "care_team": sorted(str(m) for m in await CareTeamMember.filter(patient_id=world.b_patient)
                            .values_list("staff_id", flat=True)),
        "staff": (staff.name, staff.is_active),
        "roles": sorted(await RoleAssignment.filter(staff_id=world.b_staff).values_list("role", flat=True)),
        "a_care_team": await CareTeamMember.filter(institution_id=world.a.id).count(),
    }


# -- by id -------------------------------------------------------------------------------

ALL = frozenset(ROLES)
Target = Callable[[World, bool], dict[str, Any]]  # (world, random?) -> variables


def _id(attr: str) -> Target:
    return lambda w, random: {"id": str(uuid.uuid4() if random else getattr(w, attr))}


@dataclass(frozen=True)
class Operation:
    name: str
    query: str
    variables: Target
    allowed: frozenset[str]  # roles that may perform it at all (the rest: FORBIDDEN for any id)


OPERATIONS = [
    Operation("patient", "query($id: ID!) { patient(id: $id) { id fullName phone } }", _id("b_patient"), ALL),
    Operation("staff", "query($id: ID!) { staff(id: $id) { id email name } }", _id("b_staff"),
              frozenset({"admin"})),
    Operation("patientUpdate", 'mutation($id: ID!) { patientUpdate(id: $id, input: {fullName: "X"}) { id } }',
              _id("b_patient"), ALL),
    Operation("patientArchive", "mutation($id: ID!) { patientArchive(id: $id) { id } }", _id("b_patient"),
              frozenset({"front_desk", "department_head"})),
    Operation("patientUnarchive", "mutation($id: ID!) { patientUnarchive(id: $id) { id } }", _id("b_patient"),
              frozenset({"front_desk", "department_head"})),
    Operation("contactCreate", CONTACT_CREATE,
              lambda w, random: {"patientId": str(uuid.uuid4() if random else w.b_patient),
                                 "input": {"name": "Intruder", "relationship": "FRIEND"}},
              frozenset({"front_desk", "nurse"})),
    Operation("contactUpdate", 'mutation($id: ID!) { contactUpdate(id: $id, input: {name: "X"}) { id name } }',
              _id("b_contact"), frozenset({"front_desk", "nurse"})),
    Operation("contactDelete", "mutation($id: ID!) { contactDelete(id: $id) }", _id("b_contact"),
              frozenset({"front_desk", "nurse"})),
    Operation("careTeamAssign(B patient)", CARE_TEAM_ASSIGN,
              lambda w, random: {"p": str(uuid.uuid4() if random else w.b_patient), "s": str(w.a_staff)},
              frozenset({"admin", "department_head"})),
    Operation("careTeamAssign(B staff)", CARE_TEAM_ASSIGN,
              lambda w, random: {"p": str(w.a_patient), "s": str(uuid.uuid4() if random else w.b_staff)},
              frozenset({"admin", "department_head"})),
    Operation("careTeamUnassign(B patient, B staff)",
              "mutation($p: ID!, $s: ID!) { careTeamUnassign(patientId: $p, staffId: $s) }",
              lambda w, random: {"p": str(uuid.uuid4() if random else w.b_patient),
                                 "s": str(uuid.uuid4() if random else w.b_staff)},
              frozenset({"admin", "department_head"})),
    Operation("staffUpdate", "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { id } }",
              _id("b_staff"), frozenset({"admin"})),
    Operation("roleAssign", "mutation($id: ID!) { roleAssign(staffId: $id, role: ADMIN) { id } }",
              lambda w, random: {"id": str(uuid.uuid4() if random else w.b_staff)}, frozenset({"admin"})),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
async def test_b_ids_answer_like_random_ids(world: World, role: str, operation: Operation) -> None:
    before = await b_state(world)
    theirs = await world.a.call(role, operation.query, **operation.variables(world, False))
    missing = await world.a.call(role, operation.query, **operation.variables(world, True))

    expected = "NOT_FOUND" if role in operation.allowed else "FORBIDDEN"
    assert theirs.codes == [expected]
    assert without_place(theirs) == without_place(missing)
    assert await b_state(world) == before


async def test_not_found_message_is_the_generic_one(world: World) -> None:
    reply = await world.a.call("front_desk", OPERATIONS[0].query, id=str(world.b_patient))
    assert without_place(reply) == {
        "data": {"patient": None},
        "errors": [{"message": "Not found.", "extensions": {"code": "NOT_FOUND", "field": "id"}}],
    }


async def test_attempt_on_b_is_recorded_in_a_not_b(world: World) -> None:
    b_events = await world.b.audit_count()
    await world.a.call("admin", OPERATIONS[1].query, id=str(world.b_staff))
    denied = await world.a.audit_events(resource_id=world.b_staff)
    assert [(e.action, e.outcome, e.reason, e.actor_id) for e in denied] == [
        ("read", "denied", "not_found", world.a.staff_ids["admin"])]
    assert await world.b.audit_count() == b_events


# -- by filter ---------------------------------------------------------------------------

PATIENT_IDS = """query($filter: PatientFilter) { patients(first: 100, filter: $filter) { nodes { id } } }"""

FILTERS: dict[str, Callable[[World], dict[str, Any]]] = {
    "phone": lambda w: {"phone": B_PHONE},
    "phone in E.164": lambda w: {"phone": "+86" + B_PHONE},
    "nationalId": lambda w: {"nationalIdType": "RESIDENT_ID", "nationalId": B_NATIONAL_ID},
    "nationalId written loosely": lambda w: {"nationalIdType": "RESIDENT_ID", "nationalId": "110105 19491231 002x"},
    "namePrefix": lambda w: {"namePrefix": w.b_name},
    "departmentId": lambda w: {"departmentId": str(w.b.departments["A"].id)},
}


def node_ids(reply: Response) -> list[str]:
    assert not reply.errors, reply.errors
    return [node["id"] for node in reply.data["patients"]["nodes"]]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", FILTERS)
async def test_filter_on_b_values_finds_nothing(world: World, role: str, name: str) -> None:
    where = FILTERS[name](world)
    assert node_ids(await world.b.call("front_desk", PATIENT_IDS, filter=where)) == [str(world.b_patient)]
    reply = await world.a.call(role, PATIENT_IDS, filter=where)
    no_class = role == "admin" or (role in ("finance", "compliance_officer") and name.startswith("phone"))
    if no_class:  # admin reads no patient data (finance, compliance: identity only, not the phone): refused
        assert reply.codes == ["FORBIDDEN"] and reply.data is None
        return
    assert node_ids(reply) == []


@pytest.mark.parametrize("role", ROLES)
async def test_unfiltered_list_holds_only_a_patients(world: World, role: str) -> None:
    ids = node_ids(await world.a.call(role, PATIENT_IDS, filter=None))
    assert str(world.b_patient) not in ids
    if role in ("front_desk", "support_agent", "nurse", "doctor", "department_head", "finance",
                "compliance_officer"):
        assert ids == [str(world.a_patient)]


REGISTER = """
mutation($input: PatientCreateInput!) {
  patientCreate(input: $input) { patient { id phone nationalId } returningPatient { id } matchedOn }
}"""


REGISTER_INPUTS = {
    "phone": {"phone": B_PHONE},
    "nationalId": {"nationalIdType": "RESIDENT_ID", "nationalId": B_NATIONAL_ID},
    "both": {"phone": B_PHONE, "nationalIdType": "RESIDENT_ID", "nationalId": B_NATIONAL_ID},
}


@pytest.mark.parametrize("same", REGISTER_INPUTS)
async def test_registering_b_patients_numbers_finds_no_returning_patient(world: World, same: str) -> None:
    reply = await world.a.call("front_desk", REGISTER, input={"fullName": "Same Numbers", **REGISTER_INPUTS[same]})
    assert not reply.errors, reply.errors
    payload = reply.data["patientCreate"]
    assert (payload["returningPatient"], payload["matchedOn"]) == (None, [])
    assert payload["patient"]["id"] != str(world.b_patient)
    assert (payload["patient"]["phone"], payload["patient"]["nationalId"]) == (
        "+86" + B_PHONE if "phone" in REGISTER_INPUTS[same] else None,
        B_NATIONAL_ID if "nationalId" in REGISTER_INPUTS[same] else None)


async def test_audit_trail_filtered_on_b_patient_is_empty(world: World) -> None:
    query = "query($p: ID!) { auditEvents(first: 100, filter: {patient: $p}) { edges { node { id } } } }"
    assert (await world.b.call("compliance_officer", query, p=str(world.b_patient))).data["auditEvents"]["edges"]
    reply = await world.a.call("compliance_officer", query, p=str(world.b_patient))
    assert reply.errors == []
    assert reply.data == {"auditEvents": {"edges": []}}


# -- nested, aliases, fragments ----------------------------------------------------------

ME = "{ me { id institution { id name } departments { id name } } }"
DEPARTMENTS = "{ departments { id name } }"
EVERYTHING = """
{
  patients(first: 100) {
    nodes {
      id fullName nationalId phone address
      department { id name }
      careTeam { id name }
      contacts { id patientId name phone notes }
    }
  }
}"""


@pytest.mark.parametrize("role", ROLES)
async def test_nested_fields_never_carry_b(world: World, role: str) -> None:
    replies = [await world.a.call(role, query) for query in (ME, DEPARTMENTS, EVERYTHING)]
    text = json.dumps([reply.body for reply in replies], ensure_ascii=False)
    assert [marker for marker in world.b_markers() if marker in text] == []
    assert replies[0].data["me"]["institution"]["id"] == str(world.a.id)


async def test_nested_fields_show_a_data_to_front_desk(world: World) -> None:
    """The control for the test above: the query does reach A's nested data."""
    reply = await world.a.call("front_desk", EVERYTHING)
    (node,) = reply.data["patients"]["nodes"]
    assert node["id"] == str(world.a_patient)
    assert [c["id"] for c in node["contacts"]] == [str(world.a_contact)]
    assert [m["id"] for m in node["careTeam"]] == [str(world.a_staff)]
    assert node["department"]["id"] == str(world.a.departments["A"].id)


@pytest.mark.parametrize("role", ROLES)
async def test_alias_on_b_id_is_not_found_like_random(world: World, role: str) -> None:
    query = "query($mine: ID!, $other: ID!) { mine: patient(id: $mine) { id } other: patient(id: $other) { id } }"
    theirs = await world.a.call(role, query, mine=str(world.a_patient), other=str(world.b_patient))
    missing = await world.a.call(role, query, mine=str(world.a_patient), other=str(uuid.uuid4()))
    assert without_place(theirs) == without_place(missing)
    assert theirs.data["other"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in theirs.errors if e["path"] == ["other"]] == [
        (["other"], "NOT_FOUND")]


async def test_aliased_mutations_on_b_contact_are_each_not_found(world: World) -> None:
    before = await b_state(world)
    query = """mutation($id: ID!) {
      a: contactDelete(id: $id)
      b: contactUpdate(id: $id, input: {notes: "mine now"}) { id notes }
    }"""
    reply = await world.a.call("front_desk", query, id=str(world.b_contact))
    assert reply.data == {"a": None, "b": None}
    assert [(e["path"], e["extensions"]["code"]) for e in reply.errors] == [(["a"], "NOT_FOUND"), (["b"], "NOT_FOUND")]
    assert await b_state(world) == before


FRAGMENTS = {
    "named": "query($id: ID!) { patient(id: $id) { ...F } } fragment F on Patient { id fullName contacts { id } }",
    "inline": "query($id: ID!) { patient(id: $id) { ... on Patient { id fullName contacts { id } } } }",
    "nested named": """query($id: ID!) { ...Q } fragment Q on Query { patient(id: $id) { ...F } }
                       fragment F on Patient { id nationalId }""",
}


@pytest.mark.parametrize("role", ["front_desk", "nurse", "admin"])
@pytest.mark.parametrize("kind", FRAGMENTS)
async def test_fragment_on_b_id_is_not_found_like_random(world: World, role: str, kind: str) -> None:
    theirs = await world.a.call(role, FRAGMENTS[kind], id=str(world.b_patient))
    missing = await world.a.call(role, FRAGMENTS[kind], id=str(uuid.uuid4()))
    assert theirs.codes == ["NOT_FOUND"]
    assert without_place(theirs) == without_place(missing)
