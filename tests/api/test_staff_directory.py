"""The staff directory through the API: colleagues' names, roles and departments for every staff role but
finance, the accounts for admins, never for patients or partners; sorted by name, paged, counted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.principal import ROLES
from policies.guard import Guard
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, gql
from tests.partners import make_client, make_partner, token_for
from tests.patients import open_account

DIRECTORY = """query($filter: StaffDirectoryFilter, $order: StaffOrder, $first: Int, $after: String) {
  staffDirectory(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    edges { cursor node { id name roles departments { name } } }
    pageInfo { hasNextPage endCursor startCursor hasPreviousPage }
  }
}"""
NAMES = """query($filter: StaffDirectoryFilter, $order: StaffOrder, $first: Int, $after: String) {
  staffDirectory(filter: $filter, orderBy: $order, first: $first, after: $after) {
    nodes { name } pageInfo { hasNextPage endCursor }
  }
}"""
ACCOUNTS = """query($filter: StaffDirectoryFilter) {
  staffDirectory(filter: $filter) { nodes { name account { email active lockedUntil version } } }
}"""
STAFF_CREATE = "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id } }"
DEACTIVATE = "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { active } }"
GUARD = Guard()


def readers() -> list[str]:
    anywhere = uuid.uuid4()
    return [role for role in ROLES if GUARD.role_allows(role, anywhere, "staff.directory", "read")]


async def colleague(tenant: Tenant, name: str, roles: list[str], department: str = "B") -> str:
    reply = await tenant.call("admin", STAFF_CREATE, input={
        "email": f"{uuid.uuid4().hex[:10]}@careloop.test", "name": name, "password": PASSWORD, "roles": roles,
        "departmentIds": [str(tenant.departments[department].id)]})
    assert reply.errors == [], reply.errors
    return str(reply.data["staffCreate"]["id"])


async def department_b(tenant: Tenant) -> dict[str, str]:
    """Three colleagues of department B (no account of the factory is in B), created out of name order."""
    return {name: await colleague(tenant, name, roles) for name, roles in (
        ("Chen Bo", ["NURSE"]), ("Alice Wu", ["DOCTOR", "NURSE"]), ("Bai Lin", ["FRONT_DESK"]))}


def in_b(tenant: Tenant, **more: Any) -> dict[str, Any]:
    return {"departmentId": str(tenant.departments["B"].id), **more}


async def denials(tenant: Tenant) -> list[tuple[uuid.UUID | None, str, str]]:
    return [(e.actor_id, e.resource_type, e.reason) for e in await tenant.audit_events(outcome="denied")]


# -- what colleagues see ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", readers())
async def test_colleagues_see_names_roles_and_departments_by_name(tenant: Tenant, role: str) -> None:
    ids = await department_b(tenant)

    reply = await tenant.call(role, DIRECTORY, filter=in_b(tenant))

    assert reply.errors == [], reply.errors
    found = reply.data["staffDirectory"]
    b = [{"name": "Department B"}]
    assert [e["node"] for e in found["edges"]] == [
        {"id": ids["Alice Wu"], "name": "Alice Wu", "roles": ["DOCTOR", "NURSE"], "departments": b},
        {"id": ids["Bai Lin"], "name": "Bai Lin", "roles": ["FRONT_DESK"], "departments": b},
        {"id": ids["Chen Bo"], "name": "Chen Bo", "roles": ["NURSE"], "departments": b}]
    assert found["totalCount"] == 3
    assert found["pageInfo"]["hasPreviousPage"] is False
    assert found["pageInfo"]["startCursor"] == found["edges"][0]["cursor"]


async def test_pages_follow_the_order_and_count_the_whole_filter(tenant: Tenant) -> None:
    await department_b(tenant)

    first = await tenant.call("nurse", DIRECTORY, filter=in_b(tenant), first=2)
    rest = await tenant.call("nurse", DIRECTORY, filter=in_b(tenant), first=2,
                             after=first.data["staffDirectory"]["pageInfo"]["endCursor"])
    down = await tenant.call("nurse", NAMES, filter=in_b(tenant), order={"field": "NAME", "direction": "DESC"},
                             first=2)
    down_rest = await tenant.call("nurse", NAMES, filter=in_b(tenant), order={"field": "NAME", "direction": "DESC"},
                                  after=down.data["staffDirectory"]["pageInfo"]["endCursor"])

    assert [e["node"]["name"] for e in first.data["staffDirectory"]["edges"]] == ["Alice Wu", "Bai Lin"]
    assert first.data["staffDirectory"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["name"] for e in rest.data["staffDirectory"]["edges"]] == ["Chen Bo"]
    assert rest.data["staffDirectory"]["pageInfo"]["hasNextPage"] is False
    assert rest.data["staffDirectory"]["totalCount"] == 3
    assert [n["name"] for n in down.data["staffDirectory"]["nodes"]] == ["Chen Bo", "Bai Lin"]
    assert [n["name"] for n in down_rest.data["staffDirectory"]["nodes"]] == ["Alice Wu"]


async def test_a_cursor_of_another_order_or_a_forged_one_is_bad_input(tenant: Tenant) -> None:
    await department_b(tenant)
    ascending = await tenant.call("nurse", NAMES, filter=in_b(tenant), first=1)
    cursor = ascending.data["staffDirectory"]["pageInfo"]["endCursor"]

    other_order = await tenant.call("nurse", NAMES, filter=in_b(tenant), after=cursor,
                                    order={"field": "NAME", "direction": "DESC"})
    forged = await tenant.call("nurse", NAMES, after="bm90LWEtY3Vyc29y")

    for reply in (other_order, forged):
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == "after"


async def test_filters_by_role_name_and_department(tenant: Tenant) -> None:
    await department_b(tenant)

    nurses = await tenant.call("front_desk", NAMES, filter=in_b(tenant, role="NURSE"))
    by_part = await tenant.call("front_desk", NAMES, filter={"name": "aI L"})
    in_a = await tenant.call("front_desk", NAMES, filter={"departmentId": str(tenant.departments["A"].id)})
    blank = await tenant.call("front_desk", NAMES, filter={"name": "  "})
    bad_id = await tenant.call("front_desk", NAMES, filter={"departmentId": "nope"})

    assert [n["name"] for n in nurses.data["staffDirectory"]["nodes"]] == ["Alice Wu", "Chen Bo"]
    assert [n["name"] for n in by_part.data["staffDirectory"]["nodes"]] == ["Bai Lin"]
    # the factory's nurse, doctor and department head are in department A
    assert sorted(n["name"].split()[0] for n in in_a.data["staffDirectory"]["nodes"]) == [
        "department_head", "doctor", "nurse"]
    assert blank.codes == ["BAD_USER_INPUT"] and blank.errors[0]["extensions"]["field"] == "filter.name"
    assert bad_id.codes == ["BAD_USER_INPUT"] and bad_id.errors[0]["extensions"]["field"] == "filter.departmentId"


async def test_colleagues_see_active_accounts_only_and_admins_all(tenant: Tenant) -> None:
    ids = await department_b(tenant)
    assert (await tenant.call("admin", DEACTIVATE, id=ids["Bai Lin"])).errors == []

    colleague_view = await tenant.call("nurse", NAMES, filter=in_b(tenant))
    asked_active = await tenant.call("nurse", NAMES, filter=in_b(tenant, active=True))
    admin_view = await tenant.call("admin", ACCOUNTS, filter=in_b(tenant))
    deactivated = await tenant.call("admin", NAMES, filter=in_b(tenant, active=False))

    assert [n["name"] for n in colleague_view.data["staffDirectory"]["nodes"]] == ["Alice Wu", "Chen Bo"]
    assert [n["name"] for n in asked_active.data["staffDirectory"]["nodes"]] == ["Alice Wu", "Chen Bo"]
    accounts = {n["name"]: n["account"] for n in admin_view.data["staffDirectory"]["nodes"]}
    assert {name: (a["active"], a["version"]) for name, a in accounts.items()} == {
        "Alice Wu": (True, 1), "Bai Lin": (False, 2), "Chen Bo": (True, 1)}
    assert all(a["email"].endswith("@careloop.test") and a["lockedUntil"] is None for a in accounts.values())
    assert [n["name"] for n in deactivated.data["staffDirectory"]["nodes"]] == ["Bai Lin"]


async def test_the_directory_stays_in_its_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    await department_b(other_tenant)

    reply = await tenant.call("nurse", NAMES, first=100)

    names = [n["name"] for n in reply.data["staffDirectory"]["nodes"]]
    assert len(names) == len(ROLES) and not {"Alice Wu", "Bai Lin", "Chen Bo"} & set(names)


# -- what is refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("query, variables", [
    (ACCOUNTS, {}),
    (NAMES, {"filter": {"active": False}}),
    ("{ staffDirectory { edges { node { ...on StaffMember { account { email } } } } } }", {}),
], ids=["accounts", "deactivated", "through-a-fragment"])
async def test_the_accounts_are_the_admins_to_read(tenant: Tenant, query: str, variables: dict[str, Any]) -> None:
    before = await denials(tenant)

    reply = await tenant.call("nurse", query, **variables)

    assert reply.codes == ["FORBIDDEN"]
    assert reply.data is None or reply.data.get("staffDirectory") is None
    assert (await denials(tenant))[len(before):] == [(tenant.staff_ids["nurse"], "staff", "forbidden")]


@pytest.mark.parametrize("role", [role for role in ROLES if role not in readers()])
async def test_roles_without_colleagues_are_refused(tenant: Tenant, role: str) -> None:
    before = await denials(tenant)

    reply = await tenant.call(role, NAMES)

    assert reply.codes == ["FORBIDDEN"]
    assert (await denials(tenant))[len(before):] == [(tenant.staff_ids[role], "staff", "forbidden")]


async def test_patients_and_partners_never_see_it(tenant: Tenant) -> None:
    patient = await open_account(tenant)
    partner = await make_partner(tenant)
    partner_token = await token_for(tenant.client, await make_client(tenant, partner))
    before = len(await denials(tenant))

    as_patient = await patient.call(NAMES)
    as_partner = await gql(tenant.client, NAMES, {}, partner_token)

    assert as_patient.codes == ["FORBIDDEN"] and as_partner.codes == ["FORBIDDEN"]
    assert [reason for _, _, reason in (await denials(tenant))[before:]] == ["forbidden", "forbidden"]


# -- its cost --------------------------------------------------------------------------------------


async def test_a_page_costs_the_same_whatever_its_size(tenant: Tenant, sql_counter: SqlCounter) -> None:
    for n in range(8):
        await colleague(tenant, f"Colleague {n}", ["NURSE", "DOCTOR"], department="A" if n % 2 else "B")

    async def cost(first: int, after: str | None = None) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("admin", """query($first: Int, $after: String) {
          staffDirectory(first: $first, after: $after, filter: {name: "Colleague"}) {
            totalCount nodes { name roles departments { name } account { email } } pageInfo { endCursor }
          }
        }""", first=first, after=after)
        assert reply.errors == [] and len(reply.data["staffDirectory"]["nodes"]) == first
        return len(sql_counter.statements) - start

    assert await cost(2) == await cost(6)
    second = await tenant.call("admin", NAMES, filter={"name": "Colleague"}, first=1)
    after = second.data["staffDirectory"]["pageInfo"]["endCursor"]
    assert await cost(2, after) == await cost(6, after)


async def test_the_count_without_a_filter_is_every_active_colleague(tenant: Tenant) -> None:
    reply = await tenant.call("nurse", "{ staffDirectory(first: 1) { totalCount nodes { name } } }")

    assert reply.data["staffDirectory"]["totalCount"] == len(ROLES)
    assert len(reply.data["staffDirectory"]["nodes"]) == 1
