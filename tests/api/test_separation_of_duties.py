"""Separation of duties (issue 11): nobody grants themselves a role or a department, every grant of a
role that reads patient data is on the trail as such and waits in the compliance officers' review
queue; staff e-mails do not reveal accounts of other institutions; free text refuses bidi controls.

Each allowed path has its denied twin, which writes nothing and leaves a coded denial on the trail.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.principal import ROLES
from models import DepartmentMembership, RoleAssignment, RoleGrant, Staff
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, gql, login, make_patient

STAFF_CREATE = "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id roles departmentIds } }"
STAFF_UPDATE = """mutation($id: ID!, $input: StaffUpdateInput!) {
  staffUpdate(id: $id, input: $input) { id name roles departmentIds }
}"""
ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"
ROLE_REVOKE = "mutation($id: ID!, $to: Role!) { roleRevoke(staffId: $id, role: $to) { roles } }"
PATIENTS = "{ patients(first: 100) { nodes { id nationalId phone address } } }"
GRANT_FIELDS = ("id grantedBy { id name } staff { id name } role grantedAt reviewedAt reviewedBy { id } "
                "outcome reviewNote")
GRANTS = f"""query($first: Int! = 20, $after: String, $unreviewed: Boolean! = true) {{
  roleGrants(first: $first, after: $after, unreviewedOnly: $unreviewed) {{
    edges {{ cursor node {{ {GRANT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
UNREVIEWED = "{ roleGrantUnreviewedCount }"
REVIEW = f"""mutation($id: ID!, $outcome: ReviewOutcome!, $note: String) {{
  roleGrantReview(id: $id, outcome: $outcome, note: $note) {{ {GRANT_FIELDS} }}
}}"""
DEPARTMENT_CREATE = "mutation($name: String!) { departmentCreate(name: $name) { id } }"
CREATE_PATIENT = """mutation($input: PatientCreateInput!) {
  patientCreate(input: $input, registerAnyway: true) { patient { id } }
}"""

# compliance officers read identity to find the patient a question is about (issue 18)
PATIENT_DATA_ROLES = ["front_desk", "nurse", "doctor", "department_head", "support_agent", "finance",
                      "compliance_officer"]


# -- helpers ---------------------------------------------------------------------------------


def new_staff(**fields: Any) -> dict[str, Any]:
    return {"email": f"sod.{uuid.uuid4().hex[:8]}@careloop.test", "name": "Gao Yan", "password": PASSWORD, **fields}


async def signed_in(tenant: Tenant, key: str, **fields: Any) -> str:
    """A second account created by the tenant's admin, signed in and remembered as ``key``."""
    data = new_staff(**fields)
    reply = await tenant.call("admin", STAFF_CREATE, input=data)
    assert reply.errors == [], reply.errors
    tenant.staff_ids[key] = uuid.UUID(reply.data["staffCreate"]["id"])
    tenant.tokens[key] = await login(tenant.client, data["email"])
    return str(tenant.staff_ids[key])


async def state(tenant: Tenant) -> dict[str, Any]:
    """What a refused grant must leave as it was."""
    return {
        "roles": await RoleAssignment.filter(institution_id=tenant.id).order_by("id").values(),
        "departments": await DepartmentMembership.filter(institution_id=tenant.id).order_by("id").values(),
        "staff": await Staff.filter(institution_id=tenant.id).order_by("id").values(),
        "grants": await RoleGrant.filter(institution_id=tenant.id).order_by("id").values(),
    }


async def denials(tenant: Tenant) -> list[tuple[uuid.UUID | None, str, str, uuid.UUID | None]]:
    return [(e.actor_id, e.resource_type, e.reason, e.resource_id)
            for e in await tenant.audit_events(outcome="denied")]


def refusal(reply: Any) -> tuple[str, str | None, str | None]:
    (error,) = reply.errors
    extensions = error["extensions"]
    return extensions["code"], extensions.get("field"), extensions.get("reason")


async def grant_events(tenant: Tenant) -> list[tuple[uuid.UUID | None, uuid.UUID | None, str, str]]:
    return [(e.actor_id, e.resource_id, e.fields_read, e.reason)
            for e in await tenant.audit_events(resource_type="role", action="create", outcome="allowed")]


# -- nobody grants themselves a role ---------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_an_admin_cannot_grant_itself_a_role(tenant: Tenant, role: str) -> None:
    admin = tenant.staff_ids["admin"]
    before = await state(tenant)

    reply = await tenant.call("admin", ROLE_ASSIGN, id=str(admin), to=role.upper())

    assert refusal(reply) == ("FORBIDDEN", "staffId", "self_grant")
    assert reply.data == {"roleAssign": None}
    assert await state(tenant) == before
    assert await denials(tenant) == [(admin, "role", "self_grant", admin)]


async def test_an_admin_grants_a_role_to_someone_else(tenant: Tenant) -> None:
    nurse, admin = tenant.staff_ids["nurse"], tenant.staff_ids["admin"]

    reply = await tenant.call("admin", ROLE_ASSIGN, id=str(nurse), to="FRONT_DESK")

    assert reply.errors == []
    assert reply.data == {"roleAssign": {"roles": ["FRONT_DESK", "NURSE"]}}
    assert await grant_events(tenant) == [(admin, nurse, "front_desk", "grants_patient_data")]
    assert await RoleGrant.filter(institution_id=tenant.id).values_list("staff_id", "role") == [(nurse, "front_desk")]
    assert await denials(tenant) == []


async def test_the_self_escalation_of_issue_11_reaches_no_patient(tenant: Tenant) -> None:
    """roleAssign(self, FRONT_DESK), then staffUpdate(self, departments), then the patient list."""
    await make_patient(tenant, nationalIdType="PASSPORT", nationalId="E12345678", phone="13800138000",
                       address="1 Main Street")
    admin = str(tenant.staff_ids["admin"])
    department_a = str(tenant.departments["A"].id)
    before = await state(tenant)

    assigned = await tenant.call("admin", ROLE_ASSIGN, id=admin, to="FRONT_DESK")
    placed = await tenant.call("admin", STAFF_UPDATE, id=admin, input={"departmentIds": [department_a]})
    listed = await tenant.call("admin", PATIENTS)

    assert refusal(assigned) == ("FORBIDDEN", "staffId", "self_grant")
    assert refusal(placed) == ("FORBIDDEN", "input.departmentIds", "self_grant")
    assert listed.errors == []
    assert listed.data == {"patients": {"nodes": []}}
    assert await state(tenant) == before
    admin_id = tenant.staff_ids["admin"]
    assert await denials(tenant) == [(admin_id, "role", "self_grant", admin_id),
                                     (admin_id, "staff", "self_grant", admin_id)]


async def test_an_admin_may_give_up_its_own_role_but_not_take_it_back(tenant: Tenant) -> None:
    """Giving up a role narrows one's reach: allowed on oneself. Taking it back is a grant."""
    second = await signed_in(tenant, "admin2", roles=["ADMIN", "SUPPORT_AGENT"])

    given_up = await tenant.call("admin2", ROLE_REVOKE, id=second, to="SUPPORT_AGENT")
    before = await state(tenant)
    taken_back = await tenant.call("admin2", ROLE_ASSIGN, id=second, to="SUPPORT_AGENT")

    assert given_up.errors == []
    assert given_up.data == {"roleRevoke": {"roles": ["ADMIN"]}}
    assert refusal(taken_back) == ("FORBIDDEN", "staffId", "self_grant")
    assert await state(tenant) == before
    assert await denials(tenant) == [(uuid.UUID(second), "role", "self_grant", uuid.UUID(second))]


# -- nor a department that widens their reach ------------------------------------------------


async def test_an_admin_nurse_cannot_add_a_department_to_itself(tenant: Tenant) -> None:
    department_a, department_b = str(tenant.departments["A"].id), str(tenant.departments["B"].id)
    me = await signed_in(tenant, "admin_nurse", roles=["ADMIN", "NURSE"], departmentIds=[department_a])
    in_b = await make_patient(tenant, departmentId=department_b)
    before = await state(tenant)

    reply = await tenant.call("admin_nurse", STAFF_UPDATE, id=me, input={"departmentIds": [department_a, department_b]})

    assert refusal(reply) == ("FORBIDDEN", "input.departmentIds", "self_grant")
    assert reply.data == {"staffUpdate": None}
    assert await state(tenant) == before
    assert await denials(tenant) == [(uuid.UUID(me), "staff", "self_grant", uuid.UUID(me))]
    listed = await tenant.call("admin_nurse", "{ patients(first: 100) { nodes { id } } }")
    assert str(in_b) not in [node["id"] for node in listed.data["patients"]["nodes"]]

    # the twins: leaving a department and a new name grant nothing; another admin may add the department
    left = await tenant.call("admin_nurse", STAFF_UPDATE, id=me, input={"name": "Gao Yan-Li", "departmentIds": []})
    assert left.errors == []
    assert (left.data["staffUpdate"]["name"], left.data["staffUpdate"]["departmentIds"]) == ("Gao Yan-Li", [])
    added = await tenant.call("admin", STAFF_UPDATE, id=me, input={"departmentIds": [department_b]})
    assert added.errors == []
    listed = await tenant.call("admin_nurse", "{ patients(first: 100) { nodes { id } } }")
    assert [node["id"] for node in listed.data["patients"]["nodes"]] == [str(in_b)]
    assert len(await denials(tenant)) == 1


# -- grants of patient data are on the trail as such -----------------------------------------


async def test_a_role_grant_says_whether_it_gives_patient_data(tenant: Tenant) -> None:
    """Every role, one by one, to an account that held none: those that read patient data are marked and queued."""
    target = uuid.UUID(await signed_in(tenant, "blank"))
    admin = tenant.staff_ids["admin"]

    for role in ROLES:
        assert (await tenant.call("admin", ROLE_ASSIGN, id=str(target), to=role.upper())).errors == []

    assert await grant_events(tenant) == [
        (admin, target, role, "grants_patient_data" if role in PATIENT_DATA_ROLES else "") for role in ROLES]
    queued = await RoleGrant.filter(institution_id=tenant.id).order_by("id").values_list(
        "granted_by_id", "staff_id", "role")
    assert queued == [(admin, target, role) for role in ROLES if role in PATIENT_DATA_ROLES]


async def test_a_new_account_with_patient_data_roles_is_queued(tenant: Tenant) -> None:
    admin = tenant.staff_ids["admin"]

    staff_id = uuid.UUID(await signed_in(tenant, "new", roles=["NURSE", "ADMIN", "DOCTOR"]))

    assert await grant_events(tenant) == [(admin, staff_id, "admin", ""),
                                          (admin, staff_id, "doctor", "grants_patient_data"),
                                          (admin, staff_id, "nurse", "grants_patient_data")]
    queued = await RoleGrant.filter(institution_id=tenant.id).order_by("role").values_list("staff_id", "role")
    assert queued == [(staff_id, "doctor"), (staff_id, "nurse")]


async def test_a_new_account_without_patient_data_is_not_queued(tenant: Tenant) -> None:
    await signed_in(tenant, "new", roles=["ADMIN"])

    assert await RoleGrant.filter(institution_id=tenant.id).count() == 0
    assert [reason for *_, reason in await grant_events(tenant)] == [""]


# -- the review queue ------------------------------------------------------------------------


async def test_the_compliance_officer_reviews_a_grant(tenant: Tenant) -> None:
    nurse, admin = tenant.staff_ids["nurse"], tenant.staff_ids["admin"]
    await tenant.call("admin", ROLE_ASSIGN, id=str(nurse), to="FRONT_DESK")
    assert (await tenant.call("compliance_officer", UNREVIEWED)).data == {"roleGrantUnreviewedCount": 1}

    listed = await tenant.call("compliance_officer", GRANTS)

    assert listed.errors == []
    (edge,) = listed.data["roleGrants"]["edges"]
    node = edge["node"]
    assert {k: v for k, v in node.items() if k not in ("id", "grantedAt")} == {
        "grantedBy": {"id": str(admin), "name": node["grantedBy"]["name"]},
        "staff": {"id": str(nurse), "name": node["staff"]["name"]}, "role": "FRONT_DESK",
        "reviewedAt": None, "reviewedBy": None, "outcome": None, "reviewNote": None}

    reviewed = await tenant.call("compliance_officer", REVIEW, id=node["id"], outcome="JUSTIFIED",
                                 note="Covers the front desk on Saturdays")

    assert reviewed.errors == []
    result = reviewed.data["roleGrantReview"]
    assert (result["outcome"], result["reviewNote"], result["reviewedBy"]) == (
        "JUSTIFIED", "Covers the front desk on Saturdays", {"id": str(tenant.staff_ids["compliance_officer"])})
    assert result["reviewedAt"] is not None
    assert (await tenant.call("compliance_officer", UNREVIEWED)).data == {"roleGrantUnreviewedCount": 0}
    assert (await tenant.call("compliance_officer", GRANTS)).data["roleGrants"]["edges"] == []
    everything = await tenant.call("compliance_officer", GRANTS, unreviewed=False)
    assert [e["node"]["outcome"] for e in everything.data["roleGrants"]["edges"]] == ["JUSTIFIED"]
    (event,) = await tenant.audit_events(resource_type="role_grant", outcome="allowed")
    assert (event.actor_id, event.action, str(event.resource_id)) == (
        tenant.staff_ids["compliance_officer"], "update", node["id"])

    again = await tenant.call("compliance_officer", REVIEW, id=node["id"], outcome="UNJUSTIFIED")
    assert refusal(again) == ("BAD_USER_INPUT", "id", "invalid")


async def test_nobody_reviews_a_grant_they_received(tenant: Tenant) -> None:
    officer = tenant.staff_ids["compliance_officer"]
    await tenant.call("admin", ROLE_ASSIGN, id=str(officer), to="NURSE")
    (grant,) = await RoleGrant.filter(institution_id=tenant.id)
    before = await state(tenant)

    reply = await tenant.call("compliance_officer", REVIEW, id=str(grant.id), outcome="JUSTIFIED")

    assert refusal(reply) == ("FORBIDDEN", "id", "self_review")
    assert await state(tenant) == before
    assert await denials(tenant) == [(officer, "role_grant", "self_review", grant.id)]


async def test_nobody_reviews_a_grant_they_made(tenant: Tenant) -> None:
    """An admin who is also a compliance officer grants, and a colleague reviews."""
    me = uuid.UUID(await signed_in(tenant, "admin_officer", roles=["ADMIN", "COMPLIANCE_OFFICER"]))
    assert (await tenant.call("admin_officer", ROLE_ASSIGN, id=str(tenant.staff_ids["support_agent"]),
                              to="FRONT_DESK")).errors == []
    (grant,) = await RoleGrant.filter(institution_id=tenant.id, staff_id=tenant.staff_ids["support_agent"])
    before = await state(tenant)

    reply = await tenant.call("admin_officer", REVIEW, id=str(grant.id), outcome="JUSTIFIED")

    assert refusal(reply) == ("FORBIDDEN", "id", "self_review")
    assert await state(tenant) == before
    assert await denials(tenant) == [(me, "role_grant", "self_review", grant.id)]
    colleague = await tenant.call("compliance_officer", REVIEW, id=str(grant.id), outcome="UNJUSTIFIED")
    assert colleague.errors == []
    assert colleague.data["roleGrantReview"]["outcome"] == "UNJUSTIFIED"


@pytest.mark.parametrize("role", [r for r in ROLES if r != "compliance_officer"])
async def test_only_compliance_officers_see_the_queue(tenant: Tenant, role: str) -> None:
    await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["compliance_officer"]), to="DOCTOR")
    (grant,) = await RoleGrant.filter(institution_id=tenant.id)
    before = await state(tenant)

    replies = [await tenant.call(role, GRANTS), await tenant.call(role, UNREVIEWED),
               await tenant.call(role, REVIEW, id=str(grant.id), outcome="JUSTIFIED")]

    assert [reply.codes for reply in replies] == [["FORBIDDEN"]] * 3
    assert await state(tenant) == before
    assert [reason for *_, reason, _ in await denials(tenant)] == ["forbidden"] * 3


async def test_the_queue_is_per_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["compliance_officer"]), to="NURSE")
    (grant,) = await RoleGrant.filter(institution_id=tenant.id)

    listed = await other_tenant.call("compliance_officer", GRANTS)
    counted = await other_tenant.call("compliance_officer", UNREVIEWED)
    reviewed = await other_tenant.call("compliance_officer", REVIEW, id=str(grant.id), outcome="JUSTIFIED")

    assert listed.data["roleGrants"]["edges"] == []
    assert counted.data == {"roleGrantUnreviewedCount": 0}
    assert reviewed.codes == ["NOT_FOUND"]
    assert (await RoleGrant.get(id=grant.id)).reviewed_at is None


async def test_the_queue_pages_oldest_first(tenant: Tenant) -> None:
    for role in ("FRONT_DESK", "DOCTOR", "SUPPORT_AGENT"):
        await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["nurse"]), to=role)

    first = await tenant.call("compliance_officer", GRANTS, first=2)
    cursor = first.data["roleGrants"]["pageInfo"]["endCursor"]
    second = await tenant.call("compliance_officer", GRANTS, first=2, after=cursor)
    bad = await tenant.call("compliance_officer", GRANTS, first=2, after="not-a-cursor")

    assert [e["node"]["role"] for e in first.data["roleGrants"]["edges"]] == ["FRONT_DESK", "DOCTOR"]
    assert first.data["roleGrants"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["role"] for e in second.data["roleGrants"]["edges"]] == ["SUPPORT_AGENT"]
    assert second.data["roleGrants"]["pageInfo"]["hasNextPage"] is False
    assert refusal(bad) == ("BAD_USER_INPUT", "after", "invalid")  # a reason, as every refused input


async def test_a_page_of_the_queue_costs_the_same_whatever_its_size(tenant: Tenant,
                                                                    sql_counter: SqlCounter) -> None:
    for n in range(6):
        await signed_in(tenant, f"new{n}", roles=["NURSE"])

    async def cost(first: int) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("compliance_officer", GRANTS, first=first)
        assert reply.errors == []
        assert len(reply.data["roleGrants"]["edges"]) == first
        assert all(e["node"]["grantedBy"] and e["node"]["staff"] for e in reply.data["roleGrants"]["edges"])
        return len(sql_counter.statements) - start

    assert await cost(2) == await cost(6) > 0


# -- staff e-mails do not reveal other institutions ------------------------------------------


async def test_an_address_of_another_institution_gets_the_same_answer(tenant: Tenant, other_tenant: Tenant) -> None:
    before = await state(tenant)

    here = await tenant.call("admin", STAFF_CREATE, input=new_staff(email=tenant.emails["nurse"]))
    elsewhere = await tenant.call("admin", STAFF_CREATE, input=new_staff(email=other_tenant.emails["nurse"].upper()))

    def answer(reply: Any) -> Any:
        return [{k: v for k, v in e.items() if k != "locations"} for e in reply.errors], reply.data

    assert answer(here) == answer(elsewhere)
    assert refusal(elsewhere) == ("BAD_USER_INPUT", "input.email", "invalid")
    message = elsewhere.errors[0]["message"]
    assert message == "input.email: this address cannot be used for a new account."
    assert await state(tenant) == before
    admin = tenant.staff_ids["admin"]
    assert await denials(tenant) == [(admin, "staff", "email_unavailable", None)] * 2
    assert await other_tenant.audit_events(outcome="denied") == []


# -- free text refuses bidi controls ---------------------------------------------------------

BIDI = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
        "\u200f", "\u061c", "\u200b", "\ufeff"]


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
async def test_a_staff_name_with_a_bidi_control_is_refused(tenant: Tenant, char: str) -> None:
    before = await state(tenant)

    created = await tenant.call("admin", STAFF_CREATE, input=new_staff(name=f"Gao{char}Yan"))
    renamed = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["nurse"]),
                                input={"name": f"{char}Nurse gpj.exe"})

    assert refusal(created) == ("BAD_USER_INPUT", "input.name", "invalid")
    assert refusal(renamed) == ("BAD_USER_INPUT", "input.name", "invalid")
    assert "invisible formatting characters" in created.errors[0]["message"]
    assert await state(tenant) == before
    # the twin: the zero-width non-joiner spells Persian words, and is kept between such letters
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert (await tenant.call("admin", STAFF_CREATE, input=new_staff(name=persian))).errors == []


@pytest.mark.parametrize(("query", "variables", "field"), [
    (DEPARTMENT_CREATE, {"name": "Radiology\u202e"}, "name"),
    (CREATE_PATIENT, {"input": {"fullName": "Li\u2067Ming"}}, "input.fullName"),
    (CREATE_PATIENT, {"input": {"fullName": "Li Ming", "address": "1 Main\u202e Street"}}, "input.address"),
    (CREATE_PATIENT, {"input": {"fullName": "Li Ming", "tags": ["vip\u3164"]}}, "input.tags"),
], ids=["department", "patient-name", "patient-address", "patient-tag-blank-letter"])
async def test_free_text_fields_refuse_invisible_characters(tenant: Tenant, query: str, variables: dict[str, Any],
                                                     field: str) -> None:
    role = "admin" if query == DEPARTMENT_CREATE else "front_desk"
    if query == CREATE_PATIENT:
        variables = {"input": {**variables["input"], "departmentId": str(tenant.departments["A"].id)}}
    events = await tenant.audit_count()

    reply = await tenant.call(role, query, **variables)

    assert refusal(reply) == ("BAD_USER_INPUT", field, "invalid")
    assert await tenant.audit_count() == events


async def test_the_admin_reads_no_patient_data_after_all(tenant: Tenant) -> None:
    """The admin's own token, freshly signed in, still reaches no patient."""
    await make_patient(tenant, phone="13800138000")
    await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["admin"]), to="FRONT_DESK")
    fresh = await login(tenant.client, tenant.emails["admin"])

    reply = await gql(tenant.client, PATIENTS, token=fresh)

    assert reply.data == {"patients": {"nodes": []}}


CARE_ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"


async def test_nobody_puts_themselves_on_a_care_team(tenant: Tenant) -> None:
    """A care team is reach: a department head may place a nurse on it, never itself."""
    from models import AuditEvent, CareTeamMember
    from tests.factories import make_patient

    pid = await make_patient(tenant, "front_desk")  # of the head's own department: the head sets its care team
    head = tenant.staff_ids["department_head"]
    reply = await tenant.call("department_head", CARE_ASSIGN, pid=str(pid), sid=str(head))
    assert reply.codes == ["FORBIDDEN"] and reply.errors[0]["extensions"]["reason"] == "self_grant"
    assert not await CareTeamMember.exists(patient_id=pid, staff_id=head)
    denial = await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()
    assert denial is not None and (denial.resource_type, denial.reason) == ("care_team", "self_grant")
    reply = await tenant.call("department_head", CARE_ASSIGN, pid=str(pid), sid=str(tenant.staff_ids["nurse"]))
    assert reply.data == {"careTeamAssign": True}
