"""The root fields and fields added by the bounded-list and schema-review sessions, probed from outside: a care
partner's token (scopes, per-patient grants) and a patient in the portal. Each reaches exactly what the old field
beside it shows (contractVersions as Contract.versions, visitCodes as Visit.codes); a record out of reach answers
as a random id does (same data, same error, same statements) with the refusal on the trail, and in the partner's
own log the two probes read alike; what a principal may not read at all (follow-up tasks) is FORBIDDEN whoever's
the id, recorded, and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from models import AuditEvent, Contract, ContractVersion, FollowUpAttempt, FollowUpTask, Visit, VisitCode
from resolvers.context import Services
from tests.api.test_nested_list_bounds import REPLIES, replied
from tests.api.test_nested_list_costs import ok
from tests.conftest import SqlCounter
from tests.contracts import active_contract, item_input, make_item
from tests.factories import Response, Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, OWN_LOG, make_partnership
from tests.patients import denials_since, mark, open_account, without_place

RANDOM = str(uuid.UUID(int=7))
VERSION_FIELDS = "number status rightsDuties clauses deposit { amount } items { quantity deliveredByPartner }"
VERSIONS = f"""query($c: ID!) {{ contractVersions(contractId: $c) {{ totalCount
  pageInfo {{ hasNextPage }} nodes {{ {VERSION_FIELDS} }} }} }}"""
CONTRACT_VERSIONS = f"query($c: ID!) {{ contract(id: $c) {{ versions {{ {VERSION_FIELDS} }} }} }}"
CODES = """query($v: ID!) { visitCodes(visitId: $v) { totalCount pageInfo { hasNextPage }
  nodes { kind system code text } } }"""
VISIT_CODES = "query($v: ID!) { visit(id: $v) { codes { kind system code text } } }"
ATTEMPTS = "query($t: ID!) { followUpAttempts(taskId: $t) { totalCount nodes { note } } }"
TASKS = "query($p: ID!) { patientFollowUpTasks(patientId: $p, openOnly: false) { totalCount nodes { id } } }"
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
ADD_CODE = """mutation($id: ID!) { visitCodeAdd(visitId: $id, input: {kind: CONDITION, code: "K08.1",
  text: "Loss of teeth"}) { id } }"""
TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
ATTEMPT = """mutation($id: ID!) { followUpAttemptRecord(taskId: $id, input: {channel: PHONE, outcome: NO_ANSWER,
  note: "Rang"}) { id } }"""
HOME_CARE = {"kind": "HOME_CARE", "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
             "endedAt": "2026-11-20T10:00:00+08:00"}
OWN_LOG_QUERY = """{ partnerAccessLog(first: 20) { nodes { action resourceType resourceTypeName resourceId
  patientId patientIds resourceIds fieldClasses fieldsRead fieldNames outcome reason reasonCode policyRule } } }"""

Call = Callable[[str, dict[str, Any]], Awaitable[Response]]


def errors_of(reply: Response) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["message"]) for e in reply.errors]


async def rows_written() -> dict[str, int]:
    """What a read must never change: the records these fields list."""
    return {model.__name__: await model.all().count()
            for model in (Contract, ContractVersion, Visit, VisitCode, FollowUpTask, FollowUpAttempt)}


async def cost(sql_counter: SqlCounter, call: Call, query: str, variables: dict[str, Any]) -> tuple[int, Response]:
    start = len(sql_counter.statements)
    reply = await call(query, variables)
    return len(sql_counter.statements) - start, reply


async def alike_to_random(sql_counter: SqlCounter, call: Call, query: str, name: str, hidden: list[str]) -> None:
    """Each hidden id answers as a random one: the same data and error, in as many statements."""
    await call(query, {name: RANDOM})  # anything made once per process, made
    random_cost, random_reply = await cost(sql_counter, call, query, {name: RANDOM})
    assert random_reply.codes == ["NOT_FOUND"], random_reply.body
    for record in hidden:
        hidden_cost, reply = await cost(sql_counter, call, query, {name: record})
        assert without_place(reply) == without_place(random_reply), (record, reply.body)
        assert hidden_cost == random_cost, (record, hidden_cost, random_cost)


async def probes_refused(tenant: Tenant, seq: int) -> list[tuple[str, str, str]]:
    """(action, resource type, reason) of each refusal since the mark; none names a patient (the probe of a hidden
    record is recorded as a random id's is)."""
    found = await denials_since(tenant.id, seq)
    assert [patient for _, _, _, _, patient in found] == [None] * len(found), found
    return [(action, kind, reason) for action, kind, reason, _, _ in found]


def as_page(reply: Response, root: str) -> tuple[list[Any], list[tuple[str, str]]]:
    page = reply.data[root]
    return page["nodes"], errors_of(reply)


# -- a care partner ----------------------------------------------------------------------------------------------


async def test_a_partner_pages_the_versions_it_reads_and_nothing_else(tenant: Tenant, services: Services,
                                                                      sql_counter: SqlCounter) -> None:
    pship = await make_partnership(tenant, [*ALL_SCOPES, "contract:read", OWN_LOG])
    own, delivered = await make_item(tenant), await make_item(tenant)
    items = [item_input(own), item_input(delivered, quantity=2, by_partner=True)]
    theirs = str((await active_contract(tenant, services, patient_id=pship.granted, items=items,
                                        partnerId=str(pship.partner_id), clauses="Accompany always"))["id"])
    not_granted = str((await active_contract(tenant, services, patient_id=pship.other, items=items,
                                             partnerId=str(pship.partner_id)))["id"])
    not_named = str((await active_contract(tenant, services, patient_id=pship.granted))["id"])

    def call(query: str, variables: dict[str, Any]) -> Awaitable[Response]:
        return pship.call(query, **variables)

    # what Contract.versions shows the partner, no more: its own items, no money, no clauses
    paged = await call(VERSIONS, {"c": theirs})
    listed = await call(CONTRACT_VERSIONS, {"c": theirs})
    nodes, errors = as_page(paged, "contractVersions")
    assert nodes == listed.data["contract"]["versions"] and errors == errors_of(listed), (paged.body, listed.body)
    assert paged.data["contractVersions"]["totalCount"] == 1
    assert nodes[0]["items"] == [{"quantity": 2, "deliveredByPartner": True}]
    assert (nodes[0]["clauses"], nodes[0]["deposit"]) == (None, None)  # sealed clauses, money: refused
    assert {code for code, _ in errors} == {"FORBIDDEN"}

    before, seq = await rows_written(), await mark(tenant.id)
    await alike_to_random(sql_counter, call, VERSIONS, "c", [not_granted, not_named])
    assert await rows_written() == before
    refusals = await probes_refused(tenant, seq)
    assert refusals == [("read", "contract", "not_found")] * 4, refusals

    # the partner's own log: the probes of a hidden contract and of a random id read alike, but for the id probed
    log = ok(await pship.call(OWN_LOG_QUERY))["partnerAccessLog"]["nodes"]
    probes = [event for event in log if event["outcome"] == "DENIED" and event["resourceType"] == "contract"
              and event["reason"] != "forbidden_field"]  # the refused clauses and money of its own contract
    assert {event["resourceId"] for event in probes} == {RANDOM, not_granted, not_named}, probes
    shapes = [{k: v for k, v in event.items() if k not in ("resourceId", "resourceIds")} for event in probes]
    assert all(shape == shapes[0] for shape in shapes), shapes
    assert shapes[0]["patientId"] is None and shapes[0]["patientIds"] == [] and shapes[0]["fieldNames"] == []
    assert (shapes[0]["resourceTypeName"], shapes[0]["reasonCode"]) == ("Contract", "NOT_FOUND")


async def test_a_partner_pages_the_codes_of_its_own_visits_only(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pship = await make_partnership(tenant, [*ALL_SCOPES, "visit:create", "visit:read"])
    own = ok(await pship.call(VISIT, input={"patientId": str(pship.granted), **HOME_CARE}))["visitCreate"]["id"]
    ok(await tenant.call("nurse", ADD_CODE, id=own))
    staff_visit = ok(await tenant.call("nurse", VISIT, input={"patientId": str(pship.granted),
                                                             "kind": "OUTPATIENT"}))["visitCreate"]["id"]
    other_visit = ok(await tenant.call("nurse", VISIT, input={"patientId": str(pship.other),
                                                             "kind": "OUTPATIENT"}))["visitCreate"]["id"]
    for visit in (staff_visit, other_visit):
        ok(await tenant.call("nurse", ADD_CODE, id=visit))

    def call(query: str, variables: dict[str, Any]) -> Awaitable[Response]:
        return pship.call(query, **variables)

    paged = ok(await call(CODES, {"v": own}))["visitCodes"]
    listed = ok(await call(VISIT_CODES, {"v": own}))["visit"]["codes"]
    assert paged["nodes"] == listed == [{"kind": "CONDITION", "system": "ICD10", "code": "K08.1",
                                         "text": "Loss of teeth"}]
    assert paged["totalCount"] == 1

    before, seq = await rows_written(), await mark(tenant.id)
    await alike_to_random(sql_counter, call, CODES, "v", [staff_visit, other_visit])
    assert await rows_written() == before
    refusals = await probes_refused(tenant, seq)
    assert refusals == [("read", "visit", "not_found")] * 4, refusals

    # without the clinical scope the codes are refused before any visit is looked up: whoever's the visit
    blind = await make_partnership(tenant, ["patient.identity:read", "visit:read"])
    seq = await mark(tenant.id)
    answers = [await blind.call(CODES, v=visit) for visit in (own, staff_visit, RANDOM)]
    assert all(without_place(reply) == without_place(answers[0]) for reply in answers), [a.body for a in answers]
    assert answers[0].codes == ["FORBIDDEN"] and answers[0].data == {"visitCodes": None}
    assert [reason for _, _, reason, _, _ in await denials_since(tenant.id, seq)] == ["forbidden"] * 3


async def test_follow_up_lists_are_refused_to_partners_and_patients_whoever_the_id(tenant: Tenant) -> None:
    pship = await make_partnership(tenant, [*ALL_SCOPES, "visit:read", "flag:read", "contract:read"])
    me = await open_account(tenant)
    tasks = {}
    for pid in (pship.granted, pship.other, me.patient_id):
        task = ok(await tenant.call("nurse", TASK, input={
            "patientId": str(pid), "dueOn": (date.today() + timedelta(days=2)).isoformat(),
            "ownerId": str(tenant.staff_ids["nurse"])}))["followUpTaskCreate"]["id"]
        ok(await tenant.call("nurse", ATTEMPT, id=task))
        tasks[pid] = task

    before = await rows_written()
    for token, own in ((pship.token, pship.granted), (me.token, me.patient_id)):
        seq = await mark(tenant.id)
        answers = [await gql(tenant.client, ATTEMPTS, {"t": task}, token) for task in [*tasks.values(), RANDOM]]
        answers += [await gql(tenant.client, TASKS, {"p": str(pid)}, token)
                    for pid in (own, pship.other, RANDOM)]
        assert {reply.codes[0] for reply in answers} == {"FORBIDDEN"}, [a.body for a in answers]
        assert len({str(without_place(reply)["errors"]) for reply in answers}) == 1
        assert all(list(reply.data.values()) == [None] for reply in answers)
        assert [reason for _, _, reason, _, _ in await denials_since(tenant.id, seq)] == ["forbidden"] * 7
    assert await rows_written() == before


# -- a patient in the portal ------------------------------------------------------------------------------------


async def test_a_patient_pages_their_own_versions_and_codes_and_nobody_elses(
        tenant: Tenant, services: Services, sql_counter: SqlCounter) -> None:
    me = await open_account(tenant)
    someone = await make_patient(tenant)
    mine = str((await active_contract(tenant, services, patient_id=me.patient_id, clauses="Night visits"))["id"])
    theirs = str((await active_contract(tenant, services, patient_id=someone))["id"])
    visits = {}
    for pid in (me.patient_id, someone):
        visits[pid] = ok(await tenant.call("nurse", VISIT, input={"patientId": str(pid),
                                                                 "kind": "DENTAL"}))["visitCreate"]["id"]
        ok(await tenant.call("nurse", ADD_CODE, id=visits[pid]))

    def call(query: str, variables: dict[str, Any]) -> Awaitable[Response]:
        return gql(tenant.client, query, variables, me.token)

    paged = await call(VERSIONS, {"c": mine})
    listed = await call(CONTRACT_VERSIONS, {"c": mine})
    nodes, errors = as_page(paged, "contractVersions")
    assert nodes == listed.data["contract"]["versions"] and errors == errors_of(listed) == [], paged.body
    assert nodes[0]["clauses"] == "Night visits" and paged.data["contractVersions"]["totalCount"] == 1
    codes = ok(await call(CODES, {"v": visits[me.patient_id]}))["visitCodes"]
    assert codes["nodes"] == ok(await call(VISIT_CODES, {"v": visits[me.patient_id]}))["visit"]["codes"]
    assert codes["totalCount"] == 1

    before, seq = await rows_written(), await mark(tenant.id)
    await alike_to_random(sql_counter, call, VERSIONS, "c", [theirs])
    await alike_to_random(sql_counter, call, CODES, "v", [visits[someone]])
    assert await rows_written() == before
    refusals = await probes_refused(tenant, seq)
    assert refusals == [("read", "contract", "not_found")] * 3 + [("read", "visit", "not_found")] * 3, refusals
    assert await AuditEvent.filter(institution_id=tenant.id, seq__gt=seq, outcome="allowed",
                                   patient_id=someone).count() == 0


async def test_an_empty_cursor_reads_my_tickets_first_replies(tenant: Tenant) -> None:
    """``after: ""`` is the first page on every list, as null (found probing the portal: repliesConnection, added
    after that rule, answered BAD_USER_INPUT)."""
    pid = await make_patient(tenant)
    await replied(tenant, pid, 2)
    me = await open_account(tenant, pid)
    first = ok(await me.call(REPLIES, n=1, after=None))
    assert ok(await me.call(REPLIES, n=1, after="")) == first
    assert first["myTickets"]["nodes"][0]["repliesConnection"]["nodes"] == [{"message": "Reply 0"}]


STAFF_LISTS = {
    "departmentsConnection": "{ departmentsConnection { totalCount nodes { id } } }",
    "serviceItemsConnection": "{ serviceItemsConnection(includeRetired: true) { totalCount nodes { id } } }",
    "patientAccessReportConnection": """query($p: ID!) { patientAccessReportConnection(patientId: $p) { totalCount
      nodes { actorId } } }""",
}


async def test_the_institutions_new_lists_are_refused_to_partners_and_patients(tenant: Tenant) -> None:
    """Departments, the catalogue and a file's access report are staff's: FORBIDDEN with every scope, and for the
    patient on their own file too (their own log is myAccessLog), each refusal recorded."""
    pship = await make_partnership(tenant, [*ALL_SCOPES, "visit:read", "flag:read", "contract:read", OWN_LOG])
    me = await open_account(tenant)
    for token, own in ((pship.token, pship.granted), (me.token, me.patient_id)):
        seq = await mark(tenant.id)
        for root, query in STAFF_LISTS.items():
            reply = await gql(tenant.client, query, {"p": str(own)} if "$p" in query else {}, token)
            assert reply.codes == ["FORBIDDEN"] and reply.data == {root: None}, (root, reply.body)
        assert [reason for _, _, reason, _, _ in await denials_since(tenant.id, seq)] == ["forbidden"] * 3


async def test_a_partner_pages_the_alerts_of_granted_files_only(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pship = await make_partnership(tenant, [*ALL_SCOPES, "flag:read"])
    query = "query($p: ID!) { patientFlagsConnection(patientId: $p) { totalCount nodes { id } } }"

    def call(query: str, variables: dict[str, Any]) -> Awaitable[Response]:
        return pship.call(query, **variables)

    assert ok(await call(query, {"p": str(pship.granted)}))["patientFlagsConnection"]["totalCount"] == 0
    seq = await mark(tenant.id)
    await alike_to_random(sql_counter, call, query, "p", [str(pship.other)])
    assert await probes_refused(tenant, seq) == [("read", "patient", "not_found")] * 3
