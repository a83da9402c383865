"""Staff accounts, roles and departments through the API: the admin's work, refused to everyone else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.passwords import password_problem
from core.principal import ROLES
from models import Department, DepartmentMembership, RoleAssignment, Session, Staff
from policies.guard import Guard
from tests.factories import PASSWORD, Tenant, gql, login, make_patient

STAFF_FIELDS = "id email name active roles departmentIds lockedUntil"
STAFF_CREATE = f"mutation($input: StaffCreateInput!) {{ staffCreate(input: $input) {{ {STAFF_FIELDS} }} }}"
STAFF_UPDATE = f"""mutation($id: ID!, $input: StaffUpdateInput!) {{
  staffUpdate(id: $id, input: $input) {{ {STAFF_FIELDS} }}
}}"""
STAFF = f"query($id: ID!) {{ staff(id: $id) {{ {STAFF_FIELDS} }} }}"
ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"
ROLE_REVOKE = "mutation($id: ID!, $to: Role!) { roleRevoke(staffId: $id, role: $to) { roles } }"
DEPARTMENT_CREATE = "mutation($name: String!) { departmentCreate(name: $name) { id name } }"
DEPARTMENTS = "{ departments { name } }"
ME = "{ me { id email roles departments { name } } }"
ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { status } }"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
READ_NAME = "query($id: ID!) { patient(id: $id) { fullName } }"


# -- helpers ---------------------------------------------------------------------------------


def new_staff(**fields: Any) -> dict[str, Any]:
    return {"email": f"staff.{uuid.uuid4().hex[:8]}@careloop.test", "name": "Gao Yan", "password": PASSWORD,
            **fields}


async def create_staff(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    reply = await tenant.call("admin", STAFF_CREATE, input=new_staff(**fields))
    assert reply.errors == [], reply.errors
    return reply.data["staffCreate"]


async def staff_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await Staff.filter(institution_id=tenant.id).order_by("id").values()


async def roles_of(staff_id: uuid.UUID | str) -> list[str]:
    return sorted(await RoleAssignment.filter(staff_id=staff_id).values_list("role", flat=True))


async def denials(tenant: Tenant) -> list[tuple[uuid.UUID | None, str]]:
    return [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]


async def call_with(tenant: Tenant, token: str, query: str, **variables: Any) -> Any:
    return await gql(tenant.client, query, variables, token)


def roles_denied(obj: str, act: str) -> list[str]:
    """The roles the reviewed policy refuses (obj, act)."""
    guard, anywhere = Guard(), uuid.uuid4()
    return [role for role in ROLES if not guard.role_allows(role, anywhere, obj, act)]


# -- creating staff --------------------------------------------------------------------------


async def test_admin_creates_staff_who_can_sign_in(tenant: Tenant) -> None:
    department_a = str(tenant.departments["A"].id)

    created = await create_staff(tenant, email="  Gao.Yan@Example.COM ", roles=["NURSE", "DOCTOR", "NURSE"],
                                 departmentIds=[department_a])

    assert {k: v for k, v in created.items() if k != "id"} == {
        "email": "gao.yan@example.com", "name": "Gao Yan", "active": True, "roles": ["DOCTOR", "NURSE"],
        "departmentIds": [department_a], "lockedUntil": None}
    token = await login(tenant.client, "gao.yan@example.com")
    me = await call_with(tenant, token, ME)
    assert me.data["me"] == {"id": created["id"], "email": "gao.yan@example.com", "roles": ["DOCTOR", "NURSE"],
                             "departments": [{"name": "Department A"}]}
    (event,) = await tenant.audit_events(action="create", resource_type="staff", actor_id=tenant.staff_ids["admin"])
    assert (event.resource_id, event.outcome) == (uuid.UUID(created["id"]), "allowed")
    stored = await Staff.get(id=created["id"])
    assert PASSWORD not in stored.password_hash


async def test_admin_reads_a_staff_account(tenant: Tenant) -> None:
    reply = await tenant.call("admin", STAFF, id=str(tenant.staff_ids["nurse"]))

    assert reply.errors == []
    assert reply.data["staff"] == {
        "id": str(tenant.staff_ids["nurse"]), "email": tenant.emails["nurse"], "name": reply.data["staff"]["name"],
        "active": True, "roles": ["NURSE"], "departmentIds": [str(tenant.departments["A"].id)], "lockedUntil": None}


@pytest.mark.parametrize(("password", "accepted"), [
    ("", False), ("short", False), ("x" * 11, False), ("x" * 12, True), ("x" * 256, True), ("x" * 257, False),
], ids=["empty", "5", "11", "12", "256", "257"])
async def test_password_length(tenant: Tenant, password: str, accepted: bool) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_CREATE, input=new_staff(password=password))

    if accepted:
        assert reply.errors == []
        assert len(await staff_rows(tenant)) == len(before) + 1
    else:
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == "input.password"
        # the words of the password-change path (core.passwords): the two rules cannot drift apart
        assert reply.errors[0]["message"] == f"input.password: {password_problem(password)}."
        assert await staff_rows(tenant) == before


@pytest.mark.parametrize(("fields", "field"), [
    ({"email": "not-an-email"}, "input.email"),
    ({"name": ""}, "input.name"),
    ({"name": "x" * 101}, "input.name"),
    ({"name": "Gao\x00Yan"}, "input.name"),
    ({"departmentIds": ["nope"]}, "input.departmentIds"),
], ids=["email", "empty-name", "long-name", "control-name", "malformed-department"])
async def test_bad_staff_input_writes_nothing(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_CREATE, input=new_staff(**fields))

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert await staff_rows(tenant) == before


async def test_email_in_use_is_refused_whatever_its_case(tenant: Tenant) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_CREATE, input=new_staff(email=tenant.emails["nurse"].upper()))

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "input.email"
    assert await staff_rows(tenant) == before


async def test_department_of_another_institution_is_refused(tenant: Tenant, other_tenant: Tenant) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_CREATE,
                              input=new_staff(departmentIds=[str(other_tenant.departments["A"].id)]))

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "input.departmentIds"
    assert await staff_rows(tenant) == before


# -- non-admins ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", roles_denied("staff", "create"))
async def test_non_admin_cannot_create_staff(tenant: Tenant, role: str) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call(role, STAFF_CREATE, input=new_staff(roles=["ADMIN"]))

    assert reply.codes == ["FORBIDDEN"]
    assert reply.data == {"staffCreate": None}
    assert await staff_rows(tenant) == before
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")]


@pytest.mark.parametrize("role", roles_denied("role", "create"))
async def test_non_admin_cannot_grant_itself_a_role(tenant: Tenant, role: str) -> None:
    reply = await tenant.call(role, ROLE_ASSIGN, id=str(tenant.staff_ids[role]), to="ADMIN")

    assert reply.codes == ["FORBIDDEN"]
    assert await roles_of(tenant.staff_ids[role]) == [role]
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")]


@pytest.mark.parametrize("role", roles_denied("staff", "update"))
async def test_non_admin_cannot_deactivate_staff(tenant: Tenant, role: str) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call(role, STAFF_UPDATE, id=str(tenant.staff_ids["admin"]), input={"active": False})

    assert reply.codes == ["FORBIDDEN"]
    assert await staff_rows(tenant) == before
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")]


@pytest.mark.parametrize("role", roles_denied("department", "create"))
async def test_non_admin_cannot_create_a_department(tenant: Tenant, role: str) -> None:
    reply = await tenant.call(role, DEPARTMENT_CREATE, name="Radiology")

    assert reply.codes == ["FORBIDDEN"]
    assert await Department.filter(institution_id=tenant.id).count() == 2
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")]


# -- roles take effect on the next request ---------------------------------------------------


async def test_role_given_and_taken_applies_to_the_next_request(tenant: Tenant) -> None:
    first, second = await make_patient(tenant), await make_patient(tenant)
    nurse = str(tenant.staff_ids["nurse"])
    assert (await tenant.call("nurse", ARCHIVE, id=str(first))).codes == ["FORBIDDEN"]

    granted = await tenant.call("admin", ROLE_ASSIGN, id=nurse, to="FRONT_DESK")
    assert granted.data == {"roleAssign": {"roles": ["FRONT_DESK", "NURSE"]}}
    archived = await tenant.call("nurse", ARCHIVE, id=str(first))
    assert (archived.errors, archived.data) == ([], {"patientArchive": {"status": "ARCHIVED"}})

    revoked = await tenant.call("admin", ROLE_REVOKE, id=nurse, to="FRONT_DESK")
    assert revoked.data == {"roleRevoke": {"roles": ["NURSE"]}}
    assert (await tenant.call("nurse", ARCHIVE, id=str(second))).codes == ["FORBIDDEN"]
    assert await roles_of(nurse) == ["nurse"]
    events = await tenant.audit_events(resource_type="role", outcome="allowed")
    assert [(e.action, e.resource_id, e.fields_read) for e in events] == [
        ("create", uuid.UUID(nurse), "front_desk"), ("delete", uuid.UUID(nurse), "front_desk")]


async def test_assigning_a_held_role_changes_nothing(tenant: Tenant) -> None:
    events = await tenant.audit_count()

    reply = await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["nurse"]), to="NURSE")

    assert reply.data == {"roleAssign": {"roles": ["NURSE"]}}
    assert await roles_of(tenant.staff_ids["nurse"]) == ["nurse"]
    assert await tenant.audit_count() == events


async def test_new_departments_apply_to_the_next_request(tenant: Tenant) -> None:
    in_a = await make_patient(tenant)
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))

    reply = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["nurse"]),
                              input={"departmentIds": [str(tenant.departments["B"].id)]})

    assert reply.data["staffUpdate"]["departmentIds"] == [str(tenant.departments["B"].id)]
    assert (await tenant.call("nurse", READ_NAME, id=str(in_a))).codes == ["NOT_FOUND"]
    assert (await tenant.call("nurse", READ_NAME, id=str(in_b))).errors == []


async def test_staff_of_another_institution_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = str(other_tenant.staff_ids["nurse"])

    replies = [
        await tenant.call("admin", STAFF, id=theirs),
        await tenant.call("admin", STAFF_UPDATE, id=theirs, input={"active": False}),
        await tenant.call("admin", ROLE_ASSIGN, id=theirs, to="ADMIN"),
        await tenant.call("admin", ROLE_REVOKE, id=theirs, to="NURSE"),
    ]

    assert [reply.codes for reply in replies] == [["NOT_FOUND"]] * 4
    assert await roles_of(theirs) == ["nurse"]
    assert (await Staff.get(id=theirs)).is_active is True


# -- deactivation and sign-out ---------------------------------------------------------------


async def test_deactivation_revokes_the_users_tokens(tenant: Tenant) -> None:
    nurse = str(tenant.staff_ids["nurse"])
    assert (await tenant.call("nurse", ME)).errors == []

    reply = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": False})

    assert reply.errors == []
    assert reply.data["staffUpdate"]["active"] is False
    assert (await tenant.call("nurse", ME)).codes == ["UNAUTHENTICATED"]
    assert (await tenant.call("nurse", "{ patients { nodes { id } } }")).codes == ["UNAUTHENTICATED"]
    assert await Session.filter(staff_id=nurse, revoked_at=None).count() == 0
    relogin = await gql(tenant.client, LOGIN, {"e": tenant.emails["nurse"], "p": PASSWORD})
    assert relogin.codes == ["UNAUTHENTICATED"]


async def test_reactivated_user_signs_in_again_but_old_tokens_stay_revoked(tenant: Tenant) -> None:
    nurse = str(tenant.staff_ids["nurse"])
    await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": False})

    reply = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": True})

    assert reply.data["staffUpdate"]["active"] is True
    assert (await tenant.call("nurse", ME)).codes == ["UNAUTHENTICATED"]
    fresh = await login(tenant.client, tenant.emails["nurse"])
    assert (await call_with(tenant, fresh, ME)).data["me"]["id"] == nurse


async def test_revoke_sessions_signs_out_everywhere(tenant: Tenant) -> None:
    nurse = str(tenant.staff_ids["nurse"])
    second_device = await login(tenant.client, tenant.emails["nurse"])

    reply = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"revokeSessions": True})

    assert reply.data["staffUpdate"]["active"] is True
    assert (await tenant.call("nurse", ME)).codes == ["UNAUTHENTICATED"]
    assert (await call_with(tenant, second_device, ME)).codes == ["UNAUTHENTICATED"]
    assert (await tenant.call("admin", ME)).errors == []
    fresh = await login(tenant.client, tenant.emails["nurse"])
    assert (await call_with(tenant, fresh, ME)).data["me"]["id"] == nurse


async def test_admin_cannot_deactivate_itself(tenant: Tenant) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["admin"]), input={"active": False})

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "input.active"
    assert await staff_rows(tenant) == before
    assert (await tenant.call("admin", ME)).errors == []
    # the refusal is on the trail (found in review: it left no row, unlike every other refusal of account work)
    (event,) = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["admin"])
    assert (event.action, event.resource_type, event.resource_id, event.reason) == (
        "update", "staff", tenant.staff_ids["admin"], "self_deactivation")


# -- the last admin --------------------------------------------------------------------------


async def test_last_admin_keeps_the_admin_role(tenant: Tenant) -> None:
    admin = str(tenant.staff_ids["admin"])

    reply = await tenant.call("admin", ROLE_REVOKE, id=admin, to="ADMIN")

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "role"
    assert await roles_of(admin) == ["admin"]
    assert (await tenant.call("admin", STAFF, id=admin)).errors == []
    # the refusal is on the trail (found in review: it left no row, unlike every other refusal of account work)
    (event,) = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["admin"])
    assert (event.action, event.resource_type, event.resource_id, event.reason) == (
        "delete", "role", tenant.staff_ids["admin"], "last_admin")


async def test_admin_role_may_go_while_another_admin_remains(tenant: Tenant) -> None:
    admin = str(tenant.staff_ids["admin"])
    await create_staff(tenant, roles=["ADMIN"])

    reply = await tenant.call("admin", ROLE_REVOKE, id=admin, to="ADMIN")

    assert reply.data == {"roleRevoke": {"roles": []}}
    assert (await tenant.call("admin", STAFF, id=admin)).codes == ["FORBIDDEN"]


async def test_last_active_admin_keeps_the_admin_role(tenant: Tenant) -> None:
    admin = str(tenant.staff_ids["admin"])
    other = await create_staff(tenant, roles=["ADMIN"])
    assert (await tenant.call("admin", STAFF_UPDATE, id=other["id"], input={"active": False})).errors == []

    reply = await tenant.call("admin", ROLE_REVOKE, id=admin, to="ADMIN")

    assert reply.codes == ["BAD_USER_INPUT"]
    assert await roles_of(admin) == ["admin"]


# -- departments -----------------------------------------------------------------------------


async def test_admin_creates_a_department(tenant: Tenant) -> None:
    reply = await tenant.call("admin", DEPARTMENT_CREATE, name="  Orthodontics ")

    assert reply.errors == []
    created = reply.data["departmentCreate"]
    assert created["name"] == "Orthodontics"
    listing = await tenant.call("front_desk", DEPARTMENTS)
    assert listing.data["departments"] == [{"name": "Department A"}, {"name": "Department B"},
                                           {"name": "Orthodontics"}]
    (event,) = await tenant.audit_events(action="create", resource_type="department",
                                         actor_id=tenant.staff_ids["admin"])
    assert event.resource_id == uuid.UUID(created["id"])


@pytest.mark.parametrize("name", ["Department A", "", "x" * 101, "Ward\x003"],
                         ids=["duplicate", "empty", "too-long", "control-char"])
async def test_bad_department_name_writes_nothing(tenant: Tenant, name: str) -> None:
    reply = await tenant.call("admin", DEPARTMENT_CREATE, name=name)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "name"
    assert await Department.filter(institution_id=tenant.id).count() == 2


async def test_departments_are_per_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    await other_tenant.call("admin", DEPARTMENT_CREATE, name="Radiology")

    reply = await tenant.call("admin", DEPARTMENTS)

    assert reply.data["departments"] == [{"name": "Department A"}, {"name": "Department B"}]


# -- an account's departments are capped -----------------------------------------------------

MAX_DEPARTMENTS = 50  # docs/security.md: an account belongs to at most 50 departments


async def many_departments(tenant: Tenant, count: int) -> list[str]:
    """``count`` departments of the tenant: its own two and as many more as needed."""
    made = [await Department.create(institution_id=tenant.id, name=f"Ward {n:02d}")
            for n in range(count - len(tenant.departments))]
    return [str(d.id) for d in tenant.departments.values()] + [str(d.id) for d in made]


async def memberships(tenant: Tenant) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return sorted(await DepartmentMembership.filter(institution_id=tenant.id).values_list("staff_id",
                                                                                          "department_id"))


async def test_an_account_gets_at_most_50_departments(tenant: Tenant) -> None:
    """Created or changed, an account with 50 departments is accepted; with 51 it is BAD_USER_INPUT at
    input.departmentIds, reason too_many, and nothing is written (no account, its memberships as they were)."""
    departments = await many_departments(tenant, MAX_DEPARTMENTS + 1)
    staff, members = await staff_rows(tenant), await memberships(tenant)

    created = await tenant.call("admin", STAFF_CREATE, input=new_staff(departmentIds=departments))
    updated = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["nurse"]),
                                input={"departmentIds": departments})

    for reply in (created, updated):
        assert reply.codes == ["BAD_USER_INPUT"]
        assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
            "input.departmentIds", "too_many")
    assert (await staff_rows(tenant), await memberships(tenant)) == (staff, members)

    made = await create_staff(tenant, departmentIds=departments[:MAX_DEPARTMENTS])
    changed = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["nurse"]),
                                input={"departmentIds": departments[1:]})
    assert len(made["departmentIds"]) == MAX_DEPARTMENTS
    assert changed.errors == [] and len(changed.data["staffUpdate"]["departmentIds"]) == MAX_DEPARTMENTS


@pytest.mark.parametrize("role", roles_denied("staff", "update"))
async def test_a_role_that_cannot_edit_staff_is_refused_whatever_the_departments(tenant: Tenant, role: str) -> None:
    """The denied twin: too many departments or not, a role that may not change accounts is FORBIDDEN (before the
    input is looked at), nothing is written, and the refusal is on the trail."""
    departments = await many_departments(tenant, MAX_DEPARTMENTS + 1)
    members = await memberships(tenant)

    reply = await tenant.call(role, STAFF_UPDATE, id=str(tenant.staff_ids["nurse"]),
                              input={"departmentIds": departments})

    assert reply.codes == ["FORBIDDEN"]
    assert await memberships(tenant) == members
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")]
