"""The nested lists that had no bound (found in review after the alerts): a file's plans in force, open follow-up
tasks and open tickets on the patient page (a page of up to 100 files), the replies on a patient's own tickets
in the portal (a page of up to 100 tickets), a visit's codes, a task's call attempts and a contract's versions. The
page's sections stop at their documented bound (50; here 2), what the caller may not see or what the section leaves
out takes no place, a paged list goes past the bound, and a page costs the same SQL statements whatever its size
with every item over the bound. A contract's version in force is the one row loaded; a ticket's timeline page
reads its own rows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from resolvers import care_plan as care_plans
from resolvers import contract as contracts
from resolvers import follow_up as follow_ups
from resolvers import pagination
from resolvers import patient_account as accounts
from resolvers import ticket as tickets
from resolvers import visit as visits
from resolvers.context import Services
from tests.api.test_nested_list_costs import ATTEMPT, CODE, REPLY, TICKET, costs, finished_visit, ok
from tests.api.test_paged_lists import once_each, walk
from tests.api.test_total_counts import counts, listing, out_of_reach, staff
from tests.conftest import RowsRead, SqlCounter
from tests.contracts import active_contract, draft, item_input, make_item, signed, today
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, events_since, mark, open_account

PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id version } }"
PLAN_STATUS = """mutation($id: ID!, $s: CarePlanStatus!, $v: Int) { carePlanTransition(id: $id, to: $s,
  version: $v) { status } }"""
TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id version } }"
CANCEL = "mutation($id: ID!, $v: Int) { followUpTaskCancel(id: $id, version: $v) { status } }"
TASKS = """query($p: ID!, $n: Int! = 20, $after: String, $open: Boolean! = true) {
  patientFollowUpTasks(patientId: $p, openOnly: $open, first: $n, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { id dueOn status } } }"""
SECTIONS = "query($id: ID!) { patient(id: $id) { carePlans { id } openFollowUpTasks { id } openTickets { id } } }"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def page_cost(sql_counter: SqlCounter, tenant: Tenant, role: str, section: str, size: int) -> list[int]:
    """What a page of files with ``section`` costs, for pages of 1 and ``size`` files: each holds the bound."""
    query = f"query($n: Int!) {{ patients(first: $n) {{ nodes {{ id {section} {{ id }} }} }} }}"
    return await costs(sql_counter, lambda n: tenant.call(role, query, n=n), "patients", (1, size),
                       check=lambda nodes: all(len(node[section]) == 2 for node in nodes))


# -- care plans in force -----------------------------------------------------------------------------------------


async def plans(tenant: Tenant, pid: uuid.UUID, count: int) -> list[dict[str, Any]]:
    made = []
    for n in range(count):
        made.append(ok(await tenant.call("doctor", PLAN, input={
            "patientId": str(pid), "title": f"Plan {n}", "activities": [{"kind": "CALL", "afterDays": 1}]}))[
            "carePlanCreate"])
    return made


async def test_a_files_plans_in_force_on_the_patient_page_stop_at_their_bound(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient.carePlans listed every plan in force: at most IN_FORCE_LIMIT (50, here 2), newest first; an ended
    plan takes no place; the carePlans query pages through every plan of the file."""
    monkeypatch.setattr(care_plans, "IN_FORCE_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    made = await plans(tenant, pid, 4)
    ok(await tenant.call("doctor", PLAN_STATUS, id=made[-1]["id"], s="REVOKED", v=made[-1]["version"]))
    shown = ok(await tenant.call("nurse", SECTIONS, id=str(pid)))["patient"]["carePlans"]
    assert ids(shown) == ids([made[2], made[1]])  # the newest in force; the revoked one takes no place
    every = listing("carePlans", ", patientId: $p", ", $p: ID!", "id")
    assert await counts(sql_counter, every, ("carePlans",), [staff(tenant, "nurse", p=str(pid))]) == [4]

    for _ in range(4):
        await plans(tenant, await make_patient(tenant), 3)
    found = await page_cost(sql_counter, tenant, "nurse", "carePlans", 5)
    assert found[0] == found[1], found


# -- open follow-up tasks ----------------------------------------------------------------------------------------


async def tasks(tenant: Tenant, pid: uuid.UUID, count: int) -> list[dict[str, Any]]:
    """``count`` open tasks owned by the nurse, due on the next days, the latest created first."""
    made = []
    for n in reversed(range(count)):
        made.append(ok(await tenant.call("doctor", TASK, input={
            "patientId": str(pid), "dueOn": (date.today() + timedelta(days=n + 1)).isoformat(),
            "ownerId": str(tenant.staff_ids["nurse"])}))["followUpTaskCreate"])
    return list(reversed(made))  # soonest due first


async def test_a_files_open_tasks_on_the_patient_page_stop_at_their_bound(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient.openFollowUpTasks listed every open task: at most OPEN_LIMIT (50, here 2), soonest due first; a
    cancelled task takes no place; patientFollowUpTasks pages through all of them (openOnly: false, every task)."""
    monkeypatch.setattr(follow_ups, "OPEN_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    made = await tasks(tenant, pid, 5)
    ok(await tenant.call("nurse", CANCEL, id=made[0]["id"], v=made[0]["version"]))  # the soonest: no longer open
    shown = ok(await tenant.call("nurse", SECTIONS, id=str(pid)))["patient"]["openFollowUpTasks"]
    assert ids(shown) == ids(made[1:3])

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", TASKS, p=str(pid), **page)
    for size in (1, 3):
        assert ids(once_each(await walk(call, "patientFollowUpTasks", size))) == ids(made[1:])
    everything = await walk(lambda **page: call(open=False, **page), "patientFollowUpTasks", 2)
    assert ids(everything) == ids(made) and everything[0]["status"] == "CANCELLED"
    found = await costs(sql_counter, lambda n: call(n=n), "patientFollowUpTasks", (1, 4))
    assert found[0] == found[1], found

    for _ in range(4):
        await tasks(tenant, await make_patient(tenant), 3)
    found = await page_cost(sql_counter, tenant, "nurse", "openFollowUpTasks", 5)
    assert found[0] == found[1], found

    every = listing("patientFollowUpTasks", ", patientId: $p", ", $p: ID!", "id")
    few = await make_patient(tenant)
    await tasks(tenant, few, 1)
    assert await counts(sql_counter, every, ("patientFollowUpTasks",),
                        [staff(tenant, "nurse", p=str(pid)), staff(tenant, "doctor", p=str(few))]) == [4, 1]


async def test_a_patients_tasks_refuse_what_any_list_refuses(tenant: Tenant) -> None:
    """patientFollowUpTasks: a file out of reach is NOT_FOUND; a role without follow_up_task: read is refused and
    recorded (the twin that may read sees the tasks); a page over the limit, a forged cursor or one of the worklist
    is BAD_USER_INPUT."""
    pid = await make_patient(tenant)
    await tasks(tenant, pid, 2)
    elsewhere = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await out_of_reach(staff(tenant, "department_head", p=str(elsewhere)), listing(
        "patientFollowUpTasks", ", patientId: $p", ", $p: ID!", "id"), "patientFollowUpTasks")
    assert len(ok(await tenant.call("nurse", TASKS, p=str(pid)))["patientFollowUpTasks"]["nodes"]) == 2
    last = await events_since(tenant.id, 0)
    refused = await tenant.call("front_desk", TASKS, p=str(pid))
    assert refused.codes == ["FORBIDDEN"] and refused.data == {"patientFollowUpTasks": None}
    denials = await denials_since(tenant.id, last[-1].seq)
    assert [(action, kind, reason) for action, kind, reason, _, _ in denials] == [
        ("read", "follow_up_task", "forbidden")]
    worklist = ok(await tenant.call("nurse", "{ followUpWorklist(scope: MINE, first: 1, dueBy: \"2099-01-01\") { "
                                             "pageInfo { endCursor } } }"))
    for page, field in (({"n": 101}, "first"), ({"after": pagination.encode(follow_ups.PATIENT_TASK_CURSOR,
                                                                             "yesterday|x")}, "after"),
                        ({"after": worklist["followUpWorklist"]["pageInfo"]["endCursor"]}, "after")):
        reply = await tenant.call("nurse", TASKS, p=str(pid), **page)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field, reply.errors


# -- open tickets ------------------------------------------------------------------------------------------------


async def opened(tenant: Tenant, pid: uuid.UUID, role: str, count: int) -> list[str]:
    made = []
    for n in range(count):
        made.append(ok(await tenant.call(role, TICKET, input={
            "channel": "NURSE_STATION", "category": "ENQUIRY", "subject": f"Question {n}",
            "patientId": str(pid)}))["ticketCreate"]["id"])
    return made


async def test_a_files_open_tickets_on_the_patient_page_stop_at_their_bound(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patient.openTickets listed every open ticket in reach: at most OPEN_LIMIT (50, here 2), newest first; a
    ticket outside the caller's ticket reach takes no place; tickets(filter: {patientId}) pages through them."""
    monkeypatch.setattr(tickets, "OPEN_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    hers = await opened(tenant, pid, "nurse", 3)  # hers: first-contact ownership
    agents = await opened(tenant, pid, "support_agent", 1)  # newer, outside the nurse's ticket reach
    section = "query($id: ID!) { patient(id: $id) { openTickets { id } } }"
    shown = ok(await tenant.call("nurse", section, id=str(pid)))["patient"]["openTickets"]
    assert ids(shown) == [hers[2], hers[1]]
    queue = ok(await tenant.call("support_agent", section, id=str(pid)))["patient"]["openTickets"]
    assert ids(queue) == [agents[0], hers[2]]
    every = listing("tickets", ", filter: {patientId: $p}", ", $p: ID!", "id")
    assert await counts(sql_counter, every, ("tickets",), [staff(tenant, "nurse", p=str(pid)),
                                                           staff(tenant, "support_agent", p=str(pid))]) == [3, 4]

    for _ in range(4):
        await opened(tenant, await make_patient(tenant), "nurse", 3)
    found = await page_cost(sql_counter, tenant, "nurse", "openTickets", 5)
    assert found[0] == found[1], found


# -- the replies on a patient's own tickets ---------------------------------------------------------------------

REPLIES = """query($n: Int! = 20, $after: String) { myTickets(first: 1) { nodes { id
  repliesConnection(first: $n, after: $after) { pageInfo { hasNextPage endCursor } nodes { message } } } } }"""
OLD_REPLIES = "{ myTickets(first: 1) { nodes { replies { message } } } }"


async def replied(tenant: Tenant, pid: uuid.UUID, public: int) -> str:
    """A ticket about the patient with ``public`` replies, an internal note before each."""
    ticket = (await opened(tenant, pid, "support_agent", 1))[0]
    for n in range(public):
        ok(await tenant.call("support_agent", REPLY, id=ticket, body=f"Note {n}", internal=True))
        ok(await tenant.call("support_agent", REPLY, id=ticket, body=f"Reply {n}", internal=False))
    return ticket


async def test_the_replies_on_my_ticket_page_past_the_old_lists_bound(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """MyTicket.replies listed every reply: deprecated, it stops at REPLIES_LIMIT (50, here 2), oldest first, and
    repliesConnection pages through them all; an internal note takes no place in either, nor in the count."""
    monkeypatch.setattr(accounts, "REPLIES_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    await replied(tenant, pid, 3)
    user = await open_account(tenant, pid)
    old = ok(await user.call(OLD_REPLIES))["myTickets"]["nodes"][0]["replies"]
    assert old == [{"message": "Reply 0"}, {"message": "Reply 1"}]

    async def call(**page: Any) -> Response:
        reply = await user.call(REPLIES, **page)
        return reply if reply.errors else Response(reply.status, {"data": {
            "replies": reply.data["myTickets"]["nodes"][0]["repliesConnection"]}})
    for size in (1, 2):
        walked = once_each(await walk(call, "replies", size))
        assert [r["message"] for r in walked] == ["Reply 0", "Reply 1", "Reply 2"]
    counted = ok(await user.call(REPLIES.replace("pageInfo", "totalCount pageInfo"), n=1))
    assert counted["myTickets"]["nodes"][0]["repliesConnection"]["totalCount"] == 3

    for page, field in (({"n": 101}, "first"), ({"after": "bm9wZQ"}, "after"),
                        ({"after": pagination.encode(accounts.REPLY_CURSOR_KIND, "12")}, "after"),
                        ({"after": pagination.encode(tickets.TIMELINE_CURSOR_KIND, str(uuid.UUID(int=1)))}, "after")):
        reply = await user.call(REPLIES, **page)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field, reply.errors
        assert reply.data["myTickets"]["nodes"][0]["repliesConnection"] is None  # the ticket itself still answers


async def test_a_page_of_my_tickets_with_their_replies_costs_the_same_for_1_5_and_20(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ticket over the bound, a later page of replies after one cursor for every ticket, counted or not."""
    monkeypatch.setattr(accounts, "REPLIES_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    first = await replied(tenant, pid, 1)
    for _ in range(20):
        await replied(tenant, pid, 4)
    user = await open_account(tenant, pid)
    # The oldest ticket's reply: reply ids are UUIDv7, so every reply of the 20 newer tickets comes after it.
    oldest = "{ myTickets(first: 21) { nodes { id repliesConnection { pageInfo { endCursor } } } } }"
    found = {node["id"]: node for node in ok(await user.call(oldest))["myTickets"]["nodes"]}
    cursor = found[first]["repliesConnection"]["pageInfo"]["endCursor"]
    shapes = {
        "old": "query($n: Int!) { myTickets(first: $n) { nodes { id replies { message occurredAt } } } }",
        "page": """query($n: Int!, $c: String) { myTickets(first: $n) { nodes { id repliesConnection(first: 3,
          after: $c) { totalCount pageInfo { hasNextPage } nodes { message } } } } }""",
    }
    def later_page(node: dict[str, Any]) -> bool:  # three of the four replies, all after the cursor
        page = node["repliesConnection"]
        return page["totalCount"] == 4 and len(page["nodes"]) == 3 and page["pageInfo"]["hasNextPage"]
    expected = {"old": lambda node: len(node["replies"]) == 2, "page": later_page}
    for name, query in shapes.items():
        spent = await costs(sql_counter, lambda n, q=query: user.call(q, n=n, c=cursor),  # type: ignore[misc]
                            "myTickets", check=lambda nodes, e=expected[name]: all(map(e, nodes)))  # type: ignore[misc]
        assert spent[0] == spent[1] == spent[2], (name, spent)


# -- a visit's codes and a task's call attempts ------------------------------------------------------------------

CODES = """query($v: ID!, $n: Int! = 20, $after: String) { visitCodes(visitId: $v, first: $n, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { id code } } }"""
ATTEMPTS = """query($t: ID!, $n: Int! = 20, $after: String) { followUpAttempts(taskId: $t, first: $n, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { id note } } }"""


async def coded(tenant: Tenant, pid: uuid.UUID, day: int, more: tuple[str, ...] = ("K02.1", "K05.3")) -> str:
    """A finished visit with K08.1, then ``more`` codes."""
    visit = await finished_visit(tenant, pid, day)
    for code in more:
        ok(await tenant.call("doctor", CODE, id=visit, input={"kind": "CONDITION", "code": code}))
    return visit


async def refusals(tenant: Tenant, query: str, root: str, variables: dict[str, Any], kind: str) -> None:
    """A page over the limit, a forged cursor and one of another list are BAD_USER_INPUT (field first, after)."""
    for page, field in (({"n": 101}, "first"), ({"after": "bm9wZQ"}, "after"),
                        ({"after": pagination.encode(kind, "12")}, "after"),
                        ({"after": pagination.encode(tickets.TIMELINE_CURSOR_KIND, str(uuid.UUID(int=1)))}, "after")):
        reply = await tenant.call("nurse", query, **variables, **page)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field, reply.errors
        assert reply.data == {root: None}


async def test_a_visits_codes_stop_at_their_bound_and_page_through_visit_codes(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Visit.codes listed every code (a page of up to 100 visits, or 20 recent visits of each of 100 files): at most
    CODES_LIMIT (50, here 2), in the order recorded; visitCodes pages through them all, clinical as they are."""
    monkeypatch.setattr(visits, "CODES_LIMIT", 2, raising=False)
    pid = await make_patient(tenant)
    visit = await coded(tenant, pid, 0)
    listed = ok(await tenant.call("nurse", "query($v: ID!) { visit(id: $v) { codes { code } } }", v=visit))
    assert [c["code"] for c in listed["visit"]["codes"]] == ["K08.1", "K02.1"]

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", CODES, v=visit, **page)
    for size in (1, 2):
        assert [c["code"] for c in once_each(await walk(call, "visitCodes", size))] == ["K08.1", "K02.1", "K05.3"]
    one = await coded(tenant, pid, 1, ())
    every = listing("visitCodes", ", visitId: $v", ", $v: ID!", "id")
    assert await counts(sql_counter, every, ("visitCodes",), [staff(tenant, "nurse", v=visit),
                                                              staff(tenant, "doctor", v=one)]) == [3, 1]
    await refusals(tenant, CODES, "visitCodes", {"v": visit}, visits.CODE_CURSOR_KIND)
    desk = await tenant.call("front_desk", CODES, v=visit)  # reads the visit, not its clinical part
    assert desk.codes == ["FORBIDDEN"] and desk.data == {"visitCodes": None}
    assert (await tenant.call("nurse", CODES, v=str(uuid.UUID(int=7)))).codes == ["NOT_FOUND"]

    for day in range(2, 21):
        await coded(tenant, pid, day)
    history = """query($p: ID!, $n: Int!) { visits(patientId: $p, first: $n, filter: {codeSystem: ICD10,
      code: "K02.1"}) { nodes { id codes { code } } } }"""
    found = await costs(sql_counter, lambda n: tenant.call("nurse", history, p=str(pid), n=n), "visits",
                        check=lambda nodes: all(len(node["codes"]) == 2 for node in nodes))
    assert found[0] == found[1] == found[2], found


async def test_a_tasks_attempts_stop_at_their_bound_and_page_through_follow_up_attempts(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """FollowUpTask.attempts listed every attempt (a worklist page of up to 100 tasks): at most ATTEMPTS_LIMIT (50,
    here 2), oldest first; followUpAttempts pages through them all, clinical as they are."""
    monkeypatch.setattr(follow_ups, "ATTEMPTS_LIMIT", 2, raising=False)

    async def attempted(count: int) -> str:
        task = (await tasks(tenant, await make_patient(tenant), 1))[0]["id"]
        for n in range(count):
            at = (datetime.now(UTC) - timedelta(hours=count - n)).isoformat()
            ok(await tenant.call("nurse", ATTEMPT, id=task, input={"channel": "PHONE", "outcome": "NO_ANSWER",
                                                                   "note": f"Rang {n}", "at": at}))
        return str(task)
    task = await attempted(3)
    listed = ok(await tenant.call("nurse", "query($t: ID!) { followUpTask(id: $t) { attempts { note } } }", t=task))
    assert listed["followUpTask"]["attempts"] == [{"note": "Rang 0"}, {"note": "Rang 1"}]

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", ATTEMPTS, t=task, **page)
    for size in (1, 2):
        assert [a["note"] for a in once_each(await walk(call, "followUpAttempts", size))] == [
            "Rang 0", "Rang 1", "Rang 2"]
    one = await attempted(1)
    every = listing("followUpAttempts", ", taskId: $t", ", $t: ID!", "id")
    assert await counts(sql_counter, every, ("followUpAttempts",), [staff(tenant, "nurse", t=task),
                                                                    staff(tenant, "doctor", t=one)]) == [3, 1]
    await refusals(tenant, ATTEMPTS, "followUpAttempts", {"t": task}, follow_ups.ATTEMPT_CURSOR)
    desk = await tenant.call("front_desk", ATTEMPTS, t=task)  # no right to read follow-up tasks
    assert desk.codes == ["FORBIDDEN"] and desk.data == {"followUpAttempts": None}
    assert (await tenant.call("nurse", ATTEMPTS, t=str(uuid.UUID(int=7)))).codes == ["NOT_FOUND"]

    for _ in range(19):
        await attempted(3)
    worklist = """query($n: Int!) { followUpWorklist(scope: MINE, dueBy: "2099-01-01", first: $n) { nodes { id
      attempts { note } } } }"""
    found = await costs(sql_counter, lambda n: tenant.call("nurse", worklist, n=n), "followUpWorklist",
                        check=lambda nodes: all(len(node["attempts"]) == 2 for node in nodes if node["id"] != one))
    assert found[0] == found[1] == found[2], found


# -- a contract's versions, and the version in force -------------------------------------------------------------

AMEND = """mutation($id: ID!, $input: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $input, expectedVersion: $v) { version } }"""
VERSIONS = """query($c: ID!, $n: Int! = 20, $after: String) { contractVersions(contractId: $c, first: $n,
  after: $after) { pageInfo { hasNextPage endCursor } nodes { number status } } }"""


async def amended(tenant: Tenant, services: Services, amendments: int, **fields: Any) -> str:
    """An active contract (version 1 takes effect tomorrow) with ``amendments`` signed amendments, the n-th taking
    effect in 5 * n days."""
    made = await active_contract(tenant, services, **fields)
    for n in range(1, amendments + 1):
        version = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version } }",
                                       id=made["id"]))["contract"]["version"]
        ok(await tenant.call("admin", AMEND, id=made["id"], v=version, input={
            "effectiveOn": (today() + timedelta(days=5 * n)).isoformat(), "changeSummary": f"Amendment {n}"}))
        await signed(tenant, services, made["id"])
    return str(made["id"])


async def test_a_contracts_versions_stop_at_their_bound_and_page_through_contract_versions(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Contract.versions listed every version, each with its long texts, on a page of up to 100 contracts, and each
    amendment adds one: at most VERSIONS_LIMIT (50, here 2), oldest first; contractVersions pages through them all,
    read as the contract is."""
    monkeypatch.setattr(contracts, "VERSIONS_LIMIT", 2, raising=False)
    contract = await amended(tenant, services, 2)
    listed = ok(await tenant.call("nurse", "query($c: ID!) { contract(id: $c) { versions { number } } }", c=contract))
    assert [v["number"] for v in listed["contract"]["versions"]] == [1, 2]

    def call(**page: Any) -> Awaitable[Response]:
        return tenant.call("nurse", VERSIONS, c=contract, **page)
    for size in (1, 2):
        assert [v["number"] for v in once_each(await walk(call, "contractVersions", size))] == [1, 2, 3]
    one = str((await active_contract(tenant, services))["id"])
    every = listing("contractVersions", ", contractId: $c", ", $c: ID!", "number")
    assert await counts(sql_counter, every, ("contractVersions",), [staff(tenant, "nurse", c=contract),
                                                                    staff(tenant, "finance", c=one)]) == [3, 1]
    for page, where in (({"n": 101}, "first"), ({"after": "bm9wZQ"}, "after"),
                        ({"after": pagination.encode(contracts.VERSION_CURSOR, "x")}, "after"),
                        ({"after": pagination.encode(tickets.TIMELINE_CURSOR_KIND, str(uuid.UUID(int=1)))}, "after")):
        reply = await tenant.call("nurse", VERSIONS, c=contract, **page)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == where, reply.errors
        assert reply.data == {"contractVersions": None}

    # the denied twins: no right to read contracts; a contract out of reach, or none
    seq = await mark(tenant.id)
    officer = await tenant.call("compliance_officer", VERSIONS, c=contract)
    assert officer.codes == ["FORBIDDEN"] and officer.data == {"contractVersions": None}
    elsewhere = str((await active_contract(tenant, services, patient_id=await make_patient(
        tenant, departmentId=str(tenant.departments["B"].id))))["id"])
    await out_of_reach(staff(tenant, "nurse", c=elsewhere), every, "contractVersions")
    assert (await tenant.call("nurse", VERSIONS, c=str(uuid.UUID(int=7)))).codes == ["NOT_FOUND"]
    assert [(action, kind, reason) for action, kind, reason, _, _ in await denials_since(tenant.id, seq)] == [
        ("read", "contract", "forbidden"), ("read", "contract", "not_found"), ("read", "contract", "not_found")]

    # a page of contracts, each over the bound, costs the same statements whatever its size
    for _ in range(4):
        await amended(tenant, services, 2)
    page = "query($n: Int!) { contracts(first: $n) { nodes { id versions { number } } } }"
    found = await costs(sql_counter, lambda n: tenant.call("admin", page, n=n), "contracts", (1, 5),
                        check=lambda nodes: all(len(node["versions"]) <= 2 for node in nodes))
    assert found[0] == found[1], found


IN_FORCE = "query($c: ID!) { contract(id: $c) { inForce { number effectiveOn rightsDuties } } }"


async def test_the_version_in_force_is_the_one_row_loaded(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch,
        rows_read: Callable[[str], RowsRead]) -> None:
    """Contract.inForce loaded every version of the contract (long texts and all) to choose one: the choice is made
    in SQL, and the version in force is the one row loaded, one a contract on a page of contracts. The choice is
    in_force_on's: the newest signed version already effective, else the first signed."""
    draft_only = str((await draft(tenant, await make_patient(tenant), [item_input(await make_item(tenant))]))["id"])
    assert ok(await tenant.call("nurse", IN_FORCE, c=draft_only)) == {"contract": {"inForce": None}}
    contract = await amended(tenant, services, 2)  # effective tomorrow, in 5 days, in 10 days
    now = contracts._now
    for days, number in ((0, 1), (6, 2), (11, 3), (400, 3)):
        monkeypatch.setattr(contracts, "_now", lambda days=days: datetime.now(UTC) + timedelta(days=days))
        read = rows_read("contract_version")
        found = ok(await tenant.call("nurse", IN_FORCE, c=contract))["contract"]["inForce"]
        assert found["number"] == number, (days, found)
        assert read.rows == [1], (days, read.rows)
    monkeypatch.setattr(contracts, "_now", now)

    for _ in range(4):
        await amended(tenant, services, 2)
    page = "query($n: Int!) { contracts(first: $n) { nodes { id inForce { number } openVersion { number } } } }"
    spent, read = [], rows_read("contract_version")
    for n in (1, 5):
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("admin", page, n=n))["contracts"]["nodes"]
        spent.append(len(sql_counter.statements) - start)
        assert len(nodes) == n and all(node["inForce"] == {"number": 1} for node in nodes)
    assert spent[0] == spent[1], spent
    assert sorted(read.rows) == [0, 0, 1, 5], read.rows  # in force: a row a contract; open versions: none


# -- a ticket's timeline, a page at a time ------------------------------------------------------------------------

TIMELINE = """query($id: ID!, $n: Int!, $after: String, $internal: Boolean!) { ticket(id: $id) {
  timeline(first: $n, after: $after, includeInternal: $internal) { totalCount pageInfo { hasNextPage endCursor }
  nodes { id kind internal } } } }"""


async def with_entries(tenant: Tenant, replies: int, **fields: Any) -> str:
    """A ticket of a new patient (department A unless ``fields`` say) with ``replies`` replies, every other one an
    internal note."""
    pid = await make_patient(tenant, **fields)
    made = ok(await tenant.call("support_agent", TICKET, input={
        "channel": "HOTLINE", "category": "COMPLAINT", "subject": "Waited", "patientId": str(pid)}))["ticketCreate"]
    for n in range(replies):
        ok(await tenant.call("support_agent", REPLY, id=made["id"], body=f"Reply {n}", internal=n % 2 == 1))
    return str(made["id"])


async def test_an_empty_cursor_reads_the_timelines_first_page(tenant: Tenant) -> None:
    """after: "" is no cursor, the first page as null is, on every list (found in review: the timeline answered
    BAD_USER_INPUT "after: not a valid cursor")."""
    ticket = await with_entries(tenant, 3)
    first = ok(await tenant.call("support_agent", TIMELINE, id=ticket, n=2, internal=True))["ticket"]
    assert ok(await tenant.call("support_agent", TIMELINE, id=ticket, n=2, after="", internal=True))["ticket"] == first


async def test_a_timeline_page_reads_its_own_rows_and_no_more(
        tenant: Tenant, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """A page of a ticket's timeline was cut here from every entry of the page's tickets (its statements fixed, its
    rows not): it is cut in SQL, each SELECT of the entries returning a page's rows (the page and one to tell
    whether more follow; after a cursor with totalCount, one more for a ticket with nothing past it). The pages and
    their totalCount are the whole timeline's, with and without the internal notes."""
    ticket = await with_entries(tenant, 10)
    for internal in (True, False):
        whole = ok(await tenant.call("support_agent", TIMELINE, id=ticket, n=100, internal=internal))["ticket"]
        everything = whole["timeline"]["nodes"]
        assert len(everything) >= 5 and (internal or not any(entry["internal"] for entry in everything))
        for size in (1, 2, 3):
            read, walked, after = rows_read("ticket_event"), [], None
            while True:
                page = ok(await tenant.call("support_agent", TIMELINE, id=ticket, n=size, after=after,
                                            internal=internal))["ticket"]["timeline"]
                assert page["totalCount"] == len(everything), page
                walked += page["nodes"]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            assert walked == everything, (internal, size)
            assert read.rows and max(read.rows) <= size + 2, (internal, size, read.rows)
        # past the last entry: nothing, counted all the same, from one row
        read = rows_read("ticket_event")
        last = ok(await tenant.call("support_agent", TIMELINE, id=ticket, n=2, after=whole["timeline"]["pageInfo"][
            "endCursor"], internal=internal))["ticket"]["timeline"]
        assert (last["nodes"], last["totalCount"], last["pageInfo"]["hasNextPage"]) == ([], len(everything), False)
        assert read.rows == [1], read.rows

    # the denied twins: a forged cursor, a ticket out of reach (nothing read)
    forged = await tenant.call("support_agent", TIMELINE, id=ticket, n=2, after="bm9wZQ", internal=True)
    assert forged.codes == ["BAD_USER_INPUT"] and forged.errors[0]["extensions"]["field"] == "after"
    elsewhere = await with_entries(tenant, 2, departmentId=str(tenant.departments["B"].id))
    read = rows_read("ticket_event")
    refused = await tenant.call("nurse", TIMELINE, id=elsewhere, n=2, internal=True)
    assert refused.codes == ["NOT_FOUND"] and read.rows == []

    # a page of tickets, each with more entries than its page: the same statements, a page's rows a ticket
    for _ in range(4):
        await with_entries(tenant, 4)
    page = "query($n: Int!) { tickets(first: $n) { nodes { id timeline(first: 2) { nodes { kind } } } } }"
    spent, read = [], rows_read("ticket_event")
    for n in (1, 5):
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("support_agent", page, n=n))["tickets"]["nodes"]
        spent.append(len(sql_counter.statements) - start)
        assert len(nodes) == n and all(len(node["timeline"]["nodes"]) == 2 for node in nodes)
    assert spent[0] == spent[1] and read.rows == [3, 15], (spent, read.rows)


# -- an empty cursor ---------------------------------------------------------------------------------------------


async def test_an_empty_cursor_reads_the_first_page_on_every_list_that_refused_it(
        tenant: Tenant, services: Services) -> None:
    """One rule for ``after: ""``: the first page, as null (found in review: most lists read it so, seven answered
    BAD_USER_INPUT)."""
    pid = await make_patient(tenant)
    await tasks(tenant, pid, 2)
    task = (await tasks(tenant, await make_patient(tenant), 1))[0]["id"]
    ok(await tenant.call("nurse", ATTEMPT, id=task, input={
        "channel": "PHONE", "outcome": "NO_ANSWER", "note": "Rang", "at": datetime.now(UTC).isoformat()}))
    lists = {
        "departmentsConnection": ("admin", "", ""),
        "serviceItemsConnection": ("admin", "", ""),
        "patientFlagsConnection": ("nurse", ", patientId: $x", ", $x: ID!"),
        "patientFollowUpTasks": ("nurse", ", patientId: $x", ", $x: ID!"),
        "visitCodes": ("nurse", ", visitId: $x", ", $x: ID!"),
        "followUpAttempts": ("nurse", ", taskId: $x", ", $x: ID!"),
        "contractVersions": ("admin", ", contractId: $x", ", $x: ID!"),
    }
    subjects = {"patientFlagsConnection": str(pid), "patientFollowUpTasks": str(pid),
                "visitCodes": await coded(tenant, pid, 1), "followUpAttempts": task,
                "contractVersions": await amended(tenant, services, 1)}
    for root, (role, arguments, declared) in lists.items():
        query = (f"query($after: String{declared}) {{ {root}(first: 5, after: $after{arguments}) {{ "
                 "totalCount pageInfo { hasNextPage endCursor } } }")
        subject = {"x": subjects[root]} if root in subjects else {}
        first = ok(await tenant.call(role, query, after=None, **subject))
        assert ok(await tenant.call(role, query, after="", **subject)) == first, root
        assert first[root]["totalCount"] > 0 or root == "patientFlagsConnection", (root, first)
