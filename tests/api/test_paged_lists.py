"""The four lists that were not paged (found in review): departments and the service catalogue stopped at 500
rows with no way past them, a patient's alerts (inForceOnly: false) and a patient's access report had no bound.
Each is now a connection beside the old list (deprecated, at most 500): its pages cover the list once, in its
order; a page over the server's limit or a forged cursor is BAD_USER_INPUT; a page of 1, 5 or 20 costs the same
SQL statements; and a role without access is refused, recorded, and shown nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resolvers import audit_report as reports
from resolvers import department as departments
from resolvers import flag as flags
from resolvers import institution as institutions
from resolvers import pagination
from resolvers.context import Services
from tests.api.test_flags import DETAILS, SET_STATUS, raise_flag
from tests.api.test_nested_list_costs import costs, ok
from tests.api.test_service_catalogue import an_item
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Response, Tenant, login, make_patient
from tests.partners import make_partnership
from tests.patients import denials_since, events_since

PAGE = "pageInfo { hasNextPage endCursor }"
DEPARTMENTS = f"""query($n: Int! = 20, $after: String) {{ departmentsConnection(first: $n, after: $after) {{
  {PAGE} nodes {{ id name }} }} }}"""
OLD_DEPARTMENTS = "{ departments { id name } }"
ITEMS = f"""query($n: Int! = 20, $after: String, $retired: Boolean! = false) {{
  serviceItemsConnection(includeRetired: $retired, first: $n, after: $after) {{ {PAGE} nodes {{ code active }} }} }}"""
OLD_ITEMS = "query($retired: Boolean!) { serviceItems(includeRetired: $retired) { code active } }"
FLAGS = f"""query($p: ID!, $n: Int! = 20, $after: String, $inForce: Boolean! = true) {{
  patientFlagsConnection(patientId: $p, inForceOnly: $inForce, first: $n, after: $after) {{ {PAGE}
  nodes {{ id kind status detail }} }} }}"""
OLD_FLAGS = "query($p: ID!, $inForce: Boolean!) { patientFlags(patientId: $p, inForceOnly: $inForce) { id kind } }"
REPORT = f"""query($p: ID!, $n: Int! = 20, $after: String) {{
  patientAccessReportConnection(patientId: $p, first: $n, after: $after) {{ {PAGE}
  nodes {{ actorId name reads what lastAt }} }} }}"""
OLD_REPORT = "query($p: ID!) { patientAccessReport(patientId: $p) { actorId } }"
READ = "query($id: ID!) { patient(id: $id) { fullName } }"

Call = Callable[..., Awaitable[Response]]


async def walk(call: Call, root: str, size: int, between: Callable[[], Awaitable[None]] | None = None) -> list[Any]:
    """Every page of a list, ``size`` items at a time (``between`` runs after the first page): the nodes in
    order. Every page but the last is full."""
    nodes: list[Any] = []
    after = None
    while True:
        page = ok(await call(n=size, after=after))[root]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        assert len(page["nodes"]) == size, page
        if between is not None and after is None:
            await between()
        after = page["pageInfo"]["endCursor"]


def once_each(values: list[Any]) -> list[Any]:
    assert len({repr(value) for value in values}) == len(values), values
    return values


async def flat_cost(sql_counter: SqlCounter, call: Call, root: str) -> None:
    found = await costs(sql_counter, lambda n: call(n=n), root)
    assert found[0] == found[1] == found[2] > 0, found


async def test_departments_page_by_name(tenant: Tenant, sql_counter: SqlCounter) -> None:
    for n in reversed(range(22)):
        ok(await tenant.call("admin", "mutation($n: String!) { departmentCreate(name: $n) { id } }", n=f"Ward {n:02}"))
    everyone = ok(await tenant.call("nurse", OLD_DEPARTMENTS))["departments"]
    assert len(everyone) == 24 and [d["name"] for d in everyone] == sorted(d["name"] for d in everyone)

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", DEPARTMENTS, **page)
    for size in (1, 5, 7):
        assert once_each(await walk(call, "departmentsConnection", size)) == everyone
    await flat_cost(sql_counter, call, "departmentsConnection")
    second = ok(await call(n=1))["departmentsConnection"]["pageInfo"]["endCursor"]
    await flat_cost(sql_counter, lambda n: call(n=n, after=second), "departmentsConnection")  # the cursor's row


async def test_the_catalogue_pages_by_code_with_and_without_retired_items(tenant: Tenant,
                                                                         sql_counter: SqlCounter) -> None:
    for n in range(24):
        item = await an_item(tenant, code=f"C-{n:02}")
        if n % 4 == 0:
            ok(await tenant.call("admin", "mutation($id: ID!) { serviceItemSetActive(id: $id, active: false) "
                                          "{ active } }", id=item["id"]))
    for retired, count in ((False, 18), (True, 24)):
        everything = ok(await tenant.call("nurse", OLD_ITEMS, retired=retired))["serviceItems"]
        assert len(everything) == count

        def call(retired: bool = retired, **page: Any) -> Awaitable[Response]:
            return tenant.call("nurse", ITEMS, retired=retired, **page)
        for size in (1, 5, 7):
            assert once_each(await walk(call, "serviceItemsConnection", size)) == everything
    await flat_cost(sql_counter, lambda **page: tenant.call("nurse", ITEMS, retired=True, **page),
                    "serviceItemsConnection")


async def test_a_patients_alerts_page_oldest_first(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pid = await make_patient(tenant)
    kinds = list(DETAILS)
    for n in range(24):
        flag = await raise_flag(tenant, pid, kinds[n % len(kinds)], detail=f"Alert {n}")
        if n % 3 == 0:
            ok(await tenant.call("nurse", SET_STATUS, id=flag["id"], status="INACTIVE"))

    def call(in_force: bool, **page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", FLAGS, p=str(pid), inForce=in_force, **page)
    for in_force, count in ((False, 24), (True, 16)):
        old = ok(await tenant.call("nurse", OLD_FLAGS, p=str(pid), inForce=in_force))["patientFlags"]
        assert len(old) == count
        for size in (1, 5, 7):
            walked = once_each(await walk(lambda in_force=in_force, **page: call(in_force, **page),
                                          "patientFlagsConnection", size))
            assert [(f["id"], f["kind"]) for f in walked] == [(f["id"], f["kind"]) for f in old]
    await flat_cost(sql_counter, lambda **page: call(False, **page), "patientFlagsConnection")


async def test_the_alerts_a_partner_may_not_see_leave_no_gap_in_its_pages(tenant: Tenant) -> None:
    pship = await make_partnership(tenant, ["patient.identity:read", "patient.needs:read", "flag:read"])
    for _ in range(3):
        for kind in DETAILS:
            await raise_flag(tenant, pship.granted, kind)
    old = ok(await pship.call(OLD_FLAGS, p=str(pship.granted), inForce=True))["patientFlags"]
    walked = await walk(lambda **page: pship.call(FLAGS.replace(" detail", ""), p=str(pship.granted), **page),
                        "patientFlagsConnection", 2)  # every page but the last is full
    assert [f["id"] for f in once_each(walked)] == [f["id"] for f in old] and len(old) == 12
    assert {f["kind"] for f in walked} == {"SPECIAL_NEEDS", "FALL_RISK", "ALLERGY", "CLINICAL_ALERT"}


async def readers(tenant: Tenant, services: Services, pid: uuid.UUID, count: int) -> list[str]:
    """``count`` front-desk accounts that each read the patient's file once: their tokens, oldest reader first."""
    tokens = []
    for n in range(count):
        staff = await institutions.create_account(
            services, tenant.institution, email=f"reader{n}.{uuid.uuid4().hex[:6]}@careloop.test", name=f"Reader {n}",
            password=PASSWORD, roles=["front_desk"])
        tokens.append(await login(tenant.client, staff.email))
        await read_file(tenant, tokens[-1], pid)
    return tokens


async def read_file(tenant: Tenant, token: str, pid: uuid.UUID) -> None:
    reply = await tenant.client.post("/graphql", json={"query": READ, "variables": {"id": str(pid)}},
                                     headers={"authorization": f"Bearer {token}"})
    assert "errors" not in reply.json(), reply.json()


async def test_the_access_report_pages_people_most_recent_first_from_one_snapshot(
        tenant: Tenant, services: Services, sql_counter: SqlCounter) -> None:
    pid = await make_patient(tenant)
    tokens = await readers(tenant, services, pid, 22)
    before = [p["actorId"] for p in ok(await tenant.call("compliance_officer", OLD_REPORT, p=str(pid)))[
        "patientAccessReport"]]
    assert len(before) == 23  # the front desk that registered the file, and the readers
    officer = str(tenant.staff_ids["compliance_officer"])

    async def meanwhile() -> None:  # the oldest reader reads again, the nurse for the first time
        await read_file(tenant, tokens[0], pid)
        await read_file(tenant, tenant.tokens["nurse"], pid)

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("compliance_officer", REPORT, p=str(pid), **page)
    walked = once_each(await walk(call, "patientAccessReportConnection", 4, between=meanwhile))
    # the pages count the events up to the first page's: the officer's first report, not what came after
    assert [p["actorId"] for p in walked] == [officer, *before]
    assert [p["lastAt"] for p in walked] == sorted((p["lastAt"] for p in walked), reverse=True)
    assert walked[-2]["name"] == "Reader 0" and walked[-2]["reads"] == 1  # before the registering front desk
    again = ok(await call(n=3))["patientAccessReportConnection"]["nodes"]  # a new first page sees them
    assert [p["name"] for p in again[1:]] == ["nurse " + tenant.institution.name.split()[-1], "Reader 0"]
    assert again[2]["reads"] == 2
    for size in (1, 5):
        assert len(once_each([p["actorId"] for p in await walk(call, "patientAccessReportConnection", size)])) == 25
    await flat_cost(sql_counter, call, "patientAccessReportConnection")


async def test_the_access_report_export_stays_whole(tenant: Tenant, services: Services) -> None:
    """The report a patient's right of access is answered with goes out whole: only the API's list is paged."""
    pid = await make_patient(tenant)
    await readers(tenant, services, pid, 3)
    reply = await tenant.client.get(f"/compliance/exports/patient-access/{pid}.csv",
                                    headers={"authorization": f"Bearer {tenant.tokens['compliance_officer']}"})
    assert reply.status_code == 200, reply.text
    assert all(f"Reader {n}" in reply.text for n in range(3))


# -- refusals -----------------------------------------------------------------------------------------------


async def lists(tenant: Tenant) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each new connection: its query, a role that may read it, its variables."""
    pid = await make_patient(tenant)
    return {"departmentsConnection": (DEPARTMENTS, "nurse", {}), "serviceItemsConnection": (ITEMS, "nurse", {}),
            "patientFlagsConnection": (FLAGS, "nurse", {"p": str(pid)}),
            "patientAccessReportConnection": (REPORT, "compliance_officer", {"p": str(pid)})}


async def test_an_empty_cursor_reads_the_first_page(tenant: Tenant) -> None:
    """after: "" is no cursor, the first page as null is, on every list (found in review: the access report answered
    BAD_USER_INPUT "after: not a valid cursor", as Ticket.timeline did)."""
    for root, (query, role, variables) in (await lists(tenant)).items():
        first = ok(await tenant.call(role, query, **variables, n=5))[root]
        again = ok(await tenant.call(role, query, **variables, n=5, after=""))[root]
        if root == "patientAccessReportConnection":  # the report is a read of the file: the officer joins it
            officer = str(tenant.staff_ids[role])
            first["nodes"], again["nodes"] = ([n for n in page["nodes"] if n["actorId"] != officer]
                                              for page in (first, again))
            first["pageInfo"] = again["pageInfo"] = None
        assert again == first, root


@pytest.mark.parametrize("page, field", [({"n": 101}, "first"), ({"n": 0}, "first"), ({"after": "bm9wZQ"}, "after"),
                                         ({"after": "x" * 300}, "after")])
async def test_a_page_over_the_limit_or_a_forged_cursor_is_bad_input(tenant: Tenant, page: dict[str, Any],
                                                                     field: str) -> None:
    for root, (query, role, variables) in (await lists(tenant)).items():
        reply = await tenant.call(role, query, **variables, **page)
        assert reply.codes == ["BAD_USER_INPUT"], (root, reply.errors)
        assert reply.errors[0]["extensions"]["field"] == field and reply.data == {root: None}, (root, reply.errors)
        if field == "first":
            assert reply.errors[0]["message"] == "first: must be between 1 and 100."


async def test_a_cursor_of_another_list_is_bad_input(tenant: Tenant) -> None:
    found = await lists(tenant)
    await an_item(tenant, code="C-01")
    await an_item(tenant, code="C-02")
    cursor = ok(await tenant.call("nurse", DEPARTMENTS, n=1))["departmentsConnection"]["pageInfo"]["endCursor"]
    for root in ("serviceItemsConnection", "patientFlagsConnection", "patientAccessReportConnection"):
        query, role, variables = found[root]
        assert (await tenant.call(role, query, **variables, after=cursor)).codes == ["BAD_USER_INPUT"], root


@pytest.mark.parametrize("root, key", [("departmentsConnection", str(uuid.UUID(int=1))),  # no such department
                                       ("patientFlagsConnection", "yesterday"),
                                       ("patientAccessReportConnection", "12"),
                                       ("patientAccessReportConnection", "12.x"),
                                       ("patientAccessReportConnection", f"{10 ** 19}.1")])
async def test_a_forged_cursor_of_the_lists_own_kind_is_bad_input(tenant: Tenant, root: str, key: str) -> None:
    query, role, variables = (await lists(tenant))[root]
    kind = {"departmentsConnection": departments.CURSOR, "patientFlagsConnection": flags.CURSOR,
            "patientAccessReportConnection": reports.REPORT_CURSOR}[root]
    reply = await tenant.call(role, query, **variables, after=pagination.encode(kind, key))
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "after", reply.errors


@pytest.mark.parametrize("root, role, resource", [
    ("departmentsConnection", "compliance_officer", "department"),
    ("serviceItemsConnection", "compliance_officer", "service_item"),
    ("patientFlagsConnection", "admin", "flag"),
    ("patientAccessReportConnection", "admin", "audit_report"),
])
async def test_a_role_without_access_sees_nothing_and_is_recorded(tenant: Tenant, root: str, role: str,
                                                                  resource: str) -> None:
    found = await lists(tenant)
    query, allowed, variables = found[root]
    pid = variables.get("p")
    if pid is not None:
        await raise_flag(tenant, uuid.UUID(pid), "ALLERGY", detail="Penicillin")
    await an_item(tenant)
    assert ok(await tenant.call(allowed, query, **variables))[root]["nodes"]  # the twin that may read sees some
    last = await events_since(tenant.id, 0)
    reply = await tenant.call(role, query, **variables)
    assert reply.codes == ["FORBIDDEN"] and reply.data == {root: None}
    denials = await denials_since(tenant.id, last[-1].seq)
    assert [(action, kind, reason) for action, kind, reason, _, _ in denials] == [("read", resource, "forbidden")]


async def test_the_old_lists_stay_bounded(tenant: Tenant, services: Services,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The deprecated lists answer as before up to their bound (500, here 2): no longer every alert or person."""
    monkeypatch.setattr(flags, "LEGACY_LIMIT", 2)
    monkeypatch.setattr(reports, "LEGACY_LIMIT", 2)
    pid = await make_patient(tenant)
    raised = [(await raise_flag(tenant, pid, kind))["id"] for kind in ("VIP", "ALLERGY", "FALL_RISK")]
    old = ok(await tenant.call("nurse", OLD_FLAGS, p=str(pid), inForce=False))["patientFlags"]
    assert [f["id"] for f in old] == raised[:2]  # the oldest
    await readers(tenant, services, pid, 2)
    people = ok(await tenant.call("compliance_officer", OLD_REPORT.replace("actorId", "name"), p=str(pid)))
    assert [p["name"] for p in people["patientAccessReport"]] == ["Reader 1", "Reader 0"]  # the most recent


async def test_a_files_alerts_on_the_patient_page_stop_at_their_bound(tenant: Tenant, sql_counter: SqlCounter,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient.flags was not paged and had no bound (found in review), on a page of up to 100 files: it lists the
    alerts in force oldest first, at most IN_FORCE_LIMIT (50, here 2), the rest paged by patientFlagsConnection
    (whose totalCount says how many). An alert the caller may not see takes no place; a page of files costs the
    same statements whatever its size with every file over the bound."""
    monkeypatch.setattr(flags, "IN_FORCE_LIMIT", 2, raising=False)
    pship = await make_partnership(tenant, ["patient.identity:read", "patient.needs:read", "flag:read"])
    raised = [(await raise_flag(tenant, pship.granted, kind))["id"]
              for kind in ("VIP", "SPECIAL_NEEDS", "DIFFICULT_PAYER", "FALL_RISK")]
    page = "query($id: ID!) { patient(id: $id) { flags { id } } }"
    assert [f["id"] for f in ok(await tenant.call("nurse", page, id=str(pship.granted)))["patient"]["flags"]] \
        == raised[:2]
    shown = ok(await pship.call(page, id=str(pship.granted)))["patient"]["flags"]  # no staff-only labels
    assert [f["id"] for f in shown] == [raised[1], raised[3]]
    counted = ok(await tenant.call("nurse", FLAGS.replace("pageInfo", "totalCount pageInfo"), p=str(pship.granted),
                                   n=1))
    assert counted["patientFlagsConnection"]["totalCount"] == 4

    for _ in range(5):
        pid = await make_patient(tenant)
        for kind in ("ALLERGY", "FALL_RISK", "SPECIAL_NEEDS"):
            await raise_flag(tenant, pid, kind)
    files = "query($n: Int!) { patients(first: $n) { nodes { id flags { kind detail } } } }"

    async def statements(n: int) -> int:
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("nurse", files, n=n))["patients"]["nodes"]
        assert len(nodes) == n and all(len(node["flags"]) == (node["id"] != str(pship.other)) * 2 for node in nodes)
        return len(sql_counter.statements) - start
    assert await statements(1) == await statements(5)
