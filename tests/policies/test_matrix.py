"""Role x operation matrix: every role against every operation the policy guards.

The expected outcome of each case is derived from the reviewed policy (``policy.csv`` through
``Guard``) and the row reach of ``policies.scopes``; nothing here copies a rule by hand.
A denied case must answer FORBIDDEN (NOT_FOUND when the role reaches no patient row), write
nothing, and leave exactly one denied audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import pytest

from core.principal import ROLES
from models import (
    AuditEvent,
    CareTeamMember,
    Contact,
    Department,
    DepartmentMembership,
    Patient,
    RoleAssignment,
    Session,
    Staff,
)
from policies.fields import PATIENT_CLASSES
from policies.guard import Guard
from policies.scopes import ROLE_REACH, Reach
from tests.factories import PASSWORD, Tenant, make_patient

GUARD = Guard()
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
TENANT_TABLES = (Patient, Contact, CareTeamMember, Staff, RoleAssignment, DepartmentMembership, Department, Session)

# What the matrix patient holds, one field per class (the nurse registers it: she may write every class).
PATIENT_VALUES = {
    "fullName": "Matrix Patient",
    "phone": "+8613800138000",
    "diagnoses": "Caries on 36",
    "specialNeeds": "Wheelchair user",
}
CLASS_FIELD = {"identity": "fullName", "contact": "phone", "clinical": "diagnoses", "needs": "specialNeeds"}
UPDATE_INPUT = {
    "identity": {"fullName": "Renamed Patient"},
    "contact": {"email": "renamed@example.com"},
    "clinical": {"diagnoses": "Pulpitis"},
    "needs": {"dietPreferences": "Vegetarian"},
}


# -- what the policy says ----------------------------------------------------------------------


def allows(role: str, institution_id: uuid.UUID, obj: str, act: str) -> bool:
    return GUARD.role_allows(role, institution_id, obj, act)


def reach(role: str, institution_id: uuid.UUID) -> frozenset[Reach]:
    """The rows a role reaches: its reach, if the policy lets it read any patient class at all."""
    if any(allows(role, institution_id, f"patient.{cls}", "read") for cls in PATIENT_CLASSES):
        return ROLE_REACH.get(role, frozenset())
    return frozenset()


def reaches_department_a(role: str, institution_id: uuid.UUID) -> bool:
    """Nurse, doctor and department head of the factory belong to department A."""
    return bool(reach(role, institution_id) & {Reach.INSTITUTION, Reach.DEPARTMENT})


# -- the operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    root: str  # the top-level field
    query: str
    prepare: Callable[[Tenant], Awaitable[dict[str, Any]]]
    requires: tuple[tuple[str, str], ...]  # every (object, action) the operation needs
    writes: bool = True
    row_scoped: bool = False  # finds the patient in the caller's scope before checking the permission
    field: str | None = None  # a field read: denied as a null field with FORBIDDEN
    expect: Callable[[Any], None] | None = None  # checks the data of an allowed reply

    def allowed(self, role: str, institution_id: uuid.UUID) -> bool:
        permitted = all(allows(role, institution_id, obj, act) for obj, act in self.requires)
        return permitted and (not self.row_scoped or reaches_department_a(role, institution_id))

    def denial(self, role: str, institution_id: uuid.UUID) -> tuple[str, str]:
        """(error code, audit reason) of a denied case."""
        if self.row_scoped and not reaches_department_a(role, institution_id):
            return "NOT_FOUND", "not_found"
        return "FORBIDDEN", "forbidden_field" if self.field else "forbidden"


async def matrix_patient(tenant: Tenant) -> uuid.UUID:
    """A patient of department A with a value in every class."""
    return await make_patient(tenant, "nurse", **PATIENT_VALUES)


async def patient_of_b(tenant: Tenant) -> uuid.UUID:
    """Registered by the front desk: a nurse registering it would join its care team."""
    return await make_patient(tenant, "front_desk", departmentId=str(tenant.departments["B"].id))


CARE_ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"
CARE_UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"


CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id name phone }
}"""


async def matrix_contact(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID]:
    pid = await matrix_patient(tenant)
    reply = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid),
                              input={"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"})
    assert reply.errors == [], reply.errors
    return pid, uuid.UUID(reply.data["contactCreate"]["id"])


async def with_patient(tenant: Tenant) -> dict[str, Any]:
    return {"id": str(await matrix_patient(tenant))}


async def with_contact(tenant: Tenant) -> dict[str, Any]:
    _, contact_id = await matrix_contact(tenant)
    return {"id": str(contact_id)}


async def with_care_team_member(tenant: Tenant) -> dict[str, Any]:
    pid = await patient_of_b(tenant)
    variables = {"pid": str(pid), "sid": str(tenant.staff_ids["nurse"])}
    reply = await tenant.call("admin", CARE_ASSIGN, **variables)
    assert reply.data == {"careTeamAssign": True}, reply.body
    return variables


async def with_patient_b_and_nurse(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str(await patient_of_b(tenant)), "sid": str(tenant.staff_ids["nurse"])}


async def with_nurse(tenant: Tenant) -> dict[str, Any]:
    return {"id": str(tenant.staff_ids["nurse"])}


async def nothing(tenant: Tenant) -> dict[str, Any]:
    return {}


def create_op(cls: str) -> Op:
    """Registering with a field of a class: besides ``patient: create``, writing any class but identity."""
    async def prepare(tenant: Tenant) -> dict[str, Any]:
        fields = {"fullName": "New Patient", "departmentId": str(tenant.departments["A"].id)}
        return {"input": {**fields, **UPDATE_INPUT[cls]}}

    requires = (("patient", "create"),) + ((f"patient.{cls}", "update"),) * (cls != "identity")
    return Op(
        name=f"patientCreate.{cls}", root="patientCreate",
        query="mutation($input: PatientCreateInput!) { patientCreate(input: $input) { patient { id } } }",
        prepare=prepare, requires=requires,
    )


def update_op(cls: str) -> Op:
    async def prepare(tenant: Tenant) -> dict[str, Any]:
        return {"id": str(await matrix_patient(tenant)), "input": UPDATE_INPUT[cls]}

    return Op(
        name=f"patientUpdate.{cls}", root="patientUpdate",
        query="mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }",
        prepare=prepare, requires=((f"patient.{cls}", "update"),), row_scoped=True,
    )


def read_op(cls: str) -> Op:
    field = CLASS_FIELD[cls]

    def expect(data: Any) -> None:
        assert data["patient"][field] == PATIENT_VALUES[field]

    return Op(
        name=f"patient.{cls}", root="patient", query=f"query($id: ID!) {{ patient(id: $id) {{ id {field} }} }}",
        prepare=with_patient, requires=((f"patient.{cls}", "read"),), writes=False, row_scoped=True, field=field,
        expect=expect,
    )


def expect_contacts(data: Any) -> None:
    assert data["patient"]["contacts"] == [{"name": "Wang Fang", "phone": "+8613900139000"}]


async def with_patient_and_contact(tenant: Tenant) -> dict[str, Any]:
    pid, _ = await matrix_contact(tenant)
    return {"id": str(pid)}


def expect_departments(data: Any) -> None:
    assert [d["name"] for d in data["departments"]] == ["Department A", "Department B"]


async def new_contact(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str(await matrix_patient(tenant)), "input": {"name": "Li Na", "relationship": "CHILD"}}


async def contact_renamed(tenant: Tenant) -> dict[str, Any]:
    return {**await with_contact(tenant), "input": {"name": "Wang Li"}}


async def staff_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"email": f"new.{uuid.uuid4().hex[:8]}@careloop.test", "name": "New Nurse",
                      "password": PASSWORD, "roles": ["NURSE"]}}


async def nurse_renamed(tenant: Tenant) -> dict[str, Any]:
    return {**await with_nurse(tenant), "input": {"name": "Renamed Nurse"}}


OPS: tuple[Op, ...] = (
    *(create_op(cls) for cls in PATIENT_CLASSES),
    *(update_op(cls) for cls in PATIENT_CLASSES),
    Op("patientArchive", "patientArchive", "mutation($id: ID!) { patientArchive(id: $id) { id } }",
       with_patient, (("patient", "archive"),)),
    *(read_op(cls) for cls in PATIENT_CLASSES),
    Op("patient.contacts", "patient", "query($id: ID!) { patient(id: $id) { id contacts { name phone } } }",
       with_patient_and_contact, (("patient.contact", "read"), ("contact", "read")), writes=False,
       row_scoped=True, field="contacts", expect=expect_contacts),
    Op("contactCreate", "contactCreate", CONTACT_CREATE, new_contact, (("contact", "create"),)),
    Op("contactUpdate", "contactUpdate",
       "mutation($id: ID!, $input: ContactUpdateInput!) { contactUpdate(id: $id, input: $input) { id } }",
       contact_renamed, (("contact", "update"),)),
    Op("contactDelete", "contactDelete", "mutation($id: ID!) { contactDelete(id: $id) }",
       with_contact, (("contact", "delete"),)),
    Op("staffCreate", "staffCreate", "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id } }",
       staff_input, (("staff", "create"),)),
    Op("staffUpdate", "staffUpdate",
       "mutation($id: ID!, $input: StaffUpdateInput!) { staffUpdate(id: $id, input: $input) { id name } }",
       nurse_renamed, (("staff", "update"),)),
    Op("staff", "staff", "query($id: ID!) { staff(id: $id) { id roles } }", with_nurse, (("staff", "read"),),
       writes=False, expect=lambda data: _equal(data["staff"]["roles"], ["NURSE"])),
    Op("roleAssign", "roleAssign", "mutation($id: ID!) { roleAssign(staffId: $id, role: FRONT_DESK) { roles } }",
       with_nurse, (("role", "create"),)),
    Op("roleRevoke", "roleRevoke", "mutation($id: ID!) { roleRevoke(staffId: $id, role: NURSE) { roles } }",
       with_nurse, (("role", "delete"),)),
    Op("careTeamAssign", "careTeamAssign", CARE_ASSIGN, with_patient_b_and_nurse, (("care_team", "create"),)),
    Op("careTeamUnassign", "careTeamUnassign", CARE_UNASSIGN, with_care_team_member, (("care_team", "delete"),)),
    Op("departmentCreate", "departmentCreate", "mutation { departmentCreate(name: \"Department C\") { id } }",
       nothing, (("department", "create"),)),
    Op("departments", "departments", "{ departments { name } }", nothing, (("department", "read"),),
       writes=False, expect=expect_departments),
    Op("auditEvents", "auditEvents", "{ auditEvents(first: 3) { edges { node { seq } } } }", nothing,
       (("audit", "read"),), writes=False, expect=lambda data: _equal(len(data["auditEvents"]["edges"]), 3)),
)


def _equal(actual: Any, expected: Any) -> None:
    assert actual == expected


# -- observing the database ------------------------------------------------------------------


async def snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row of the institution but the audit trail."""
    return {model.__name__: await model.filter(institution_id=tenant.id).order_by("id").values()
            for model in TENANT_TABLES}


async def denied_events(tenant: Tenant) -> list[AuditEvent]:
    return await tenant.audit_events(outcome="denied")


# -- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_role_operation(tenant: Tenant, op: Op, role: str) -> None:
    variables = await op.prepare(tenant)
    before, denied_before = await snapshot(tenant), await denied_events(tenant)

    reply = await tenant.call(role, op.query, **variables)

    after, denied_after = await snapshot(tenant), await denied_events(tenant)
    new_denials = [e for e in denied_after if e.id not in {d.id for d in denied_before}]
    if op.allowed(role, tenant.id):
        assert reply.errors == []
        assert reply.data[op.root] is not None
        if op.expect is not None:
            op.expect(reply.data)
        assert (after != before) is op.writes
        assert new_denials == []
        return
    code, reason = op.denial(role, tenant.id)
    assert reply.codes == [code]
    if code == "FORBIDDEN" and op.field:  # a field-level denial: the row comes back, the field is null
        assert reply.data[op.root] == {"id": variables["id"], op.field: None}
    else:
        assert (reply.data or {}).get(op.root) is None
    assert after == before
    assert [(e.actor_id, e.outcome, e.reason) for e in new_denials] == [(tenant.staff_ids[role], "denied", reason)]
    if op.field and code == "FORBIDDEN":
        assert new_denials[0].patient_id == uuid.UUID(variables["id"])


# -- the list follows the same row reach -----------------------------------------------------

PATIENT_IDS = "{ patients(first: 100) { nodes { id } } }"


@pytest.mark.parametrize("role", ROLES)
async def test_patient_list_follows_row_reach(tenant: Tenant, role: str) -> None:
    in_a = await matrix_patient(tenant)
    in_b = await patient_of_b(tenant)
    roles_reach = reach(role, tenant.id)
    expected = [str(pid) for pid, visible in (
        (in_a, bool(roles_reach & {Reach.INSTITUTION, Reach.DEPARTMENT})),
        (in_b, Reach.INSTITUTION in roles_reach),
    ) if visible]

    reply = await tenant.call(role, PATIENT_IDS)

    assert reply.errors == []
    assert [node["id"] for node in reply.data["patients"]["nodes"]] == expected


# -- the matrix is complete and meaningful ---------------------------------------------------


def test_every_policy_rule_is_exercised() -> None:
    covered = {requirement for op in OPS for requirement in op.requires}
    assert {(rule.obj, rule.act) for rule in GUARD.rules()} <= covered


def test_every_guarded_operation_of_the_schema_is_in_the_matrix() -> None:
    schema = graphql.build_schema(SCHEMA_FILE.read_text())
    operations = set(schema.query_type.fields) | set(schema.mutation_type.fields)
    unguarded = {"me", "login", "logout", "patients"}  # sessions, and the list (row reach only, tested above)
    assert operations - unguarded == {op.root for op in OPS}


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_some_role_is_allowed_and_some_denied(op: Op) -> None:
    domain = uuid.uuid4()
    outcomes = {op.allowed(role, domain) for role in ROLES}
    assert outcomes == {True, False}
