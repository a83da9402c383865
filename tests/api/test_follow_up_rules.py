"""Follow-up rules through the API: the defaults in force, creating, changing (a new version, the old one
retired, in one transaction) and retiring rules, tasks keeping the version they came from, who may do
what, and bad input refused with the field named and nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from models import AuditEvent, CareTeamMember, FollowUpRule, FollowUpTask
from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

RULES = """query($first: Int, $after: String, $retired: Boolean, $key: ID) {
  followUpRules(first: $first, after: $after, includeRetired: $retired, ruleKey: $key) {
    pageInfo { hasNextPage endCursor }
    nodes { id ruleKey version active name visitKind procedureCode offsetsDays assignee skipClosedDays
            department { name } author { id } } } }"""
CREATE = """mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) {
  id ruleKey version active name visitKind procedureCode offsetsDays assignee skipClosedDays department { id } } }"""
CHANGE = """mutation($id: ID!, $input: FollowUpRuleChangeInput!, $version: Int) {
  followUpRuleUpdate(id: $id, input: $input, version: $version) {
    id ruleKey version active name offsetsDays assignee procedureCode department { id } author { id } } }"""
RETIRE = """mutation($id: ID!, $version: Int) {
  followUpRuleRetire(id: $id, version: $version) { id active version } }"""
CATALOGUE = 'mutation($code: String!) { serviceItemCreate(code: $code, name: "Dental implant") { id code } }'
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""


async def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def snapshot(tenant: Tenant) -> tuple[Any, ...]:
    return tuple(await FollowUpRule.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "version", "active", "name", "offsets_days"))


async def a_rule(tenant: Tenant, role: str = "admin", **fields: Any) -> dict[str, Any]:
    data = {"name": "After an implant", "offsetsDays": [30, 1, 7], "visitKind": "DENTAL", **fields}
    return dict(await ok(await tenant.call(role, CREATE, input=data), "followUpRuleCreate"))


async def finished_visit(tenant: Tenant, kind: str = "DENTAL", department: str = "A") -> str:
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": kind, "status": "FINISHED",
        "departmentId": str(tenant.departments[department].id),
        "startedAt": "2026-11-02T09:00:00+08:00", "endedAt": "2026-11-02T10:00:00+08:00"})
    assert reply.errors == [], reply.errors
    return str(reply.data["visitCreate"]["id"])


async def test_the_defaults_are_in_force_until_changed(tenant: Tenant) -> None:
    rules = (await ok(await tenant.call("nurse", RULES), "followUpRules"))["nodes"]
    assert {(r["visitKind"], tuple(r["offsetsDays"]), r["version"], r["active"]) for r in rules} == {
        ("PROCEDURE", (1, 7, 30), 1, True), ("OUTPATIENT", (3,), 1, True), ("INPATIENT", (7, 30), 1, True)}
    assert all(r["author"] is None and r["assignee"] == "RESPONSIBLE_NURSE" for r in rules)
    again = (await ok(await tenant.call("doctor", RULES), "followUpRules"))["nodes"]
    assert [r["id"] for r in again] == [r["id"] for r in rules]  # created once


async def test_an_admin_creates_a_rule_for_a_catalogue_procedure_and_it_schedules_calls(tenant: Tenant) -> None:
    await ok(await tenant.call("admin", CATALOGUE, code="IMPLANT"), "serviceItemCreate")
    rule = await a_rule(tenant, procedureCode="implant", assignee="DEPARTMENT_POOL", skipClosedDays=False)
    assert (rule["version"], rule["active"], rule["offsetsDays"], rule["procedureCode"]) == (1, True, [1, 7, 30],
                                                                                             "IMPLANT")
    [event] = await tenant.audit_events(resource_type="follow_up_rule", action="create", resource_id=rule["id"])
    assert event.outcome == "allowed" and "offsets_days" in event.fields_read.split(",")
    # a dental visit without the procedure: no call from this rule; with it: three, in the pool, on the dates
    plain = await finished_visit(tenant)
    assert await FollowUpTask.filter(visit_id=plain).count() == 0
    # with the procedure recorded before it finishes: three calls, in the pool, on the dates (closed days kept)
    visit = await tenant.call("nurse", VISIT, input={
        "patientId": str(await make_patient(tenant)), "kind": "DENTAL",
        "departmentId": str(tenant.departments["A"].id), "plannedAt": "2026-11-02T09:00:00+08:00"})
    vid = visit.data["visitCreate"]["id"]
    reply = await tenant.call("nurse", """mutation($id: ID!) { visitCodeAdd(visitId: $id, input:
      {kind: PROCEDURE, code: "IMPLANT"}) { id } }""", id=vid)
    assert reply.errors == [], reply.errors
    for to, at in (("ARRIVED", "2026-11-02T08:50:00+08:00"), ("IN_PROGRESS", "2026-11-02T09:00:00+08:00"),
                   ("FINISHED", "2026-11-02T10:00:00+08:00")):
        moved = await tenant.call("nurse", """mutation($id: ID!, $to: VisitStatus!, $at: DateTime) {
          visitTransition(id: $id, to: $to, at: $at) { id } }""", id=vid, to=to, at=at)
        assert moved.errors == [], moved.errors
    tasks = await FollowUpTask.filter(visit_id=vid, rule_id=rule["id"]).order_by("due_on")
    assert [str(t.due_on) for t in tasks] == ["2026-11-03", "2026-11-09", "2026-12-02"]
    assert {t.owner_id for t in tasks} == {None}


async def test_a_change_is_a_new_version_and_old_tasks_keep_theirs(tenant: Tenant) -> None:
    rule = await a_rule(tenant, departmentId=str(tenant.departments["A"].id))
    first_visit = await finished_visit(tenant)
    old_tasks = await FollowUpTask.filter(visit_id=first_visit, rule_id=rule["id"])
    assert len(old_tasks) == 3

    changed = await ok(await tenant.call("department_head", CHANGE, id=rule["id"], version=1,
                                         input={"offsetsDays": [2], "assignee": "DEPARTMENT_POOL"}),
                       "followUpRuleUpdate")
    assert (changed["ruleKey"], changed["version"], changed["active"], changed["offsetsDays"]) == (
        rule["ruleKey"], 2, True, [2])
    assert changed["id"] != rule["id"] and changed["name"] == "After an implant"
    assert changed["author"] == {"id": str(tenant.staff_ids["department_head"])}
    old = await FollowUpRule.get(id=rule["id"])
    assert (old.active, old.version) == (False, 1)
    # tasks already created keep the version they came from; new visits follow the new one
    assert {t.rule_id for t in await FollowUpTask.filter(visit_id=first_visit)} == {old.id}
    second_visit = await finished_visit(tenant)
    assert [str(t.rule_id) for t in await FollowUpTask.filter(visit_id=second_visit)] == [changed["id"]]

    versions = (await ok(await tenant.call("nurse", RULES, key=rule["ruleKey"]), "followUpRules"))["nodes"]
    assert [(v["version"], v["active"]) for v in versions] == [(1, False), (2, True)]
    in_force = (await ok(await tenant.call("nurse", RULES), "followUpRules"))["nodes"]
    assert rule["id"] not in [r["id"] for r in in_force] and changed["id"] in [r["id"] for r in in_force]
    writes = await tenant.audit_events(resource_type="follow_up_rule", action="update", resource_id=rule["id"])
    assert len(writes) == 1 and writes[0].actor_id == tenant.staff_ids["department_head"]


async def test_a_stale_change_or_retirement_is_a_conflict_and_writes_nothing(tenant: Tenant) -> None:
    rule = await a_rule(tenant)
    await ok(await tenant.call("admin", CHANGE, id=rule["id"], input={"name": "Renamed"}), "followUpRuleUpdate")
    for query, variables in ((CHANGE, {"input": {"name": "Again"}}), (RETIRE, {})):
        before = await snapshot(tenant)
        reply = await tenant.call("admin", query, id=rule["id"], **variables)  # the old version
        assert reply.codes == ["CONFLICT"] and await snapshot(tenant) == before
    current = (await ok(await tenant.call("admin", RULES, key=rule["ruleKey"]), "followUpRules"))["nodes"][-1]
    before = await snapshot(tenant)
    reply = await tenant.call("admin", CHANGE, id=current["id"], version=1, input={"name": "Stale"})
    assert reply.codes == ["CONFLICT"] and await snapshot(tenant) == before


async def test_a_retired_rule_creates_no_more_tasks(tenant: Tenant) -> None:
    rule = await a_rule(tenant)
    retired = await ok(await tenant.call("admin", RETIRE, id=rule["id"], version=1), "followUpRuleRetire")
    assert retired == {"id": rule["id"], "active": False, "version": 1}
    visit = await finished_visit(tenant)
    assert await FollowUpTask.filter(visit_id=visit).count() == 0
    listed = (await ok(await tenant.call("admin", RULES, retired=True), "followUpRules"))["nodes"]
    assert rule["id"] in [r["id"] for r in listed]


@pytest.mark.parametrize(("fields", "field"), [
    ({"offsetsDays": []}, "input.offsetsDays"),
    ({"offsetsDays": [-1]}, "input.offsetsDays"),
    ({"offsetsDays": [367]}, "input.offsetsDays"),
    ({"offsetsDays": list(range(11))}, "input.offsetsDays"),
    ({"offsetsDays": [7, 7]}, "input.offsetsDays"),
    ({"procedureCode": "NOT-IN-CATALOGUE"}, "input.procedureCode"),
    ({"departmentId": str(uuid.uuid4())}, "input.departmentId"),
    ({"name": " "}, "input.name"),
    ({"name": "x" * 101}, "input.name"),
    ({"name": "ad\u200dmin rule"}, "input.name"),
])
async def test_bad_rules_are_refused_with_the_field_named(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    rule = await a_rule(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("admin", CREATE, input={"name": "A rule", "offsetsDays": [1], **fields})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    reply = await tenant.call("admin", CHANGE, id=rule["id"], input=fields)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


async def test_required_fields_cannot_be_cleared(tenant: Tenant) -> None:
    rule = await a_rule(tenant)
    before = await snapshot(tenant)
    for fields in ({"name": None}, {"offsetsDays": None}, {"assignee": None}, {}):
        reply = await tenant.call("admin", CHANGE, id=rule["id"], input=fields)
        assert reply.codes == ["BAD_USER_INPUT"]
    assert await snapshot(tenant) == before


@pytest.mark.parametrize("role", ["nurse", "doctor", "front_desk", "support_agent", "compliance_officer"])
async def test_who_may_not_write_rules_is_refused_and_nothing_is_written(tenant: Tenant, role: str) -> None:
    rule = await a_rule(tenant)
    for query, variables in ((CREATE, {"input": {"name": "Mine", "offsetsDays": [1]}}),
                             (CHANGE, {"id": rule["id"], "input": {"name": "Mine"}}),
                             (RETIRE, {"id": rule["id"]})):
        before, events = await snapshot(tenant), await tenant.audit_count()
        reply = await tenant.call(role, query, **variables)
        assert reply.codes == ["FORBIDDEN"]
        assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1
        denial = await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()
        assert denial is not None and denial.resource_type == "follow_up_rule"


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "compliance_officer"])
async def test_who_may_not_read_rules_is_refused(tenant: Tenant, role: str) -> None:
    events = await tenant.audit_count()
    reply = await tenant.call(role, RULES)
    assert reply.codes == ["FORBIDDEN"] and await tenant.audit_count() == events + 1


async def test_a_department_head_sets_the_rules_of_their_own_departments_only(tenant: Tenant) -> None:
    own = await a_rule(tenant, role="department_head", departmentId=str(tenant.departments["A"].id))
    assert own["department"] == {"id": str(tenant.departments["A"].id)}
    wide = await a_rule(tenant)  # institution-wide, the admins'
    # the department sent in the input (input.departmentId), or else the rule's own (departmentId)
    for query, variables, field in ((CREATE, {"input": {"name": "Wide", "offsetsDays": [1]}}, "departmentId"),
                                    (CREATE, {"input": {"name": "B's", "offsetsDays": [1],
                                                        "departmentId": str(tenant.departments["B"].id)}},
                                     "input.departmentId"),
                                    (CHANGE, {"id": wide["id"], "input": {"name": "Mine now"}}, "departmentId"),
                                    (CHANGE, {"id": own["id"], "input": {"departmentId": None}}, "input.departmentId"),
                                    (RETIRE, {"id": wide["id"]}, "departmentId")):
        before, events = await snapshot(tenant), await tenant.audit_count()
        reply = await tenant.call("department_head", query, **variables)
        assert reply.codes == ["FORBIDDEN"] and reply.errors[0]["extensions"]["field"] == field
        assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1
        denial = await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()
        assert denial is not None and denial.reason == "other_department"


async def test_another_institutions_rule_is_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    rule = await a_rule(tenant)
    before = await snapshot(tenant)
    for query, variables in ((CHANGE, {"input": {"name": "Theirs"}}), (RETIRE, {})):
        reply = await other_tenant.call("admin", query, id=rule["id"], **variables)
        assert reply.codes == ["NOT_FOUND"]
    assert await snapshot(tenant) == before


async def test_the_rules_are_paged_at_a_fixed_cost(tenant: Tenant, sql_counter: SqlCounter) -> None:
    for n in range(6):
        await a_rule(tenant, name=f"Rule {n}", departmentId=str(tenant.departments["A"].id))
    costs = []
    for first in (2, 6):
        start = len(sql_counter.statements)
        page = await ok(await tenant.call("admin", RULES, first=first), "followUpRules")
        assert len(page["nodes"]) == first
        costs.append(len(sql_counter.statements) - start)
    assert costs[0] == costs[1] > 0
    seen: list[str] = []
    after = None
    while True:
        page = await ok(await tenant.call("nurse", RULES, first=4, after=after), "followUpRules")
        seen += [r["id"] for r in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 9  # 3 defaults and 6 of ours


# -- a task's rule is read under the clinical class ---------------------------------------------------------

ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"
TASKS = """query($pid: ID!) { patientFollowUpTasks(patientId: $pid, openOnly: false, first: 10) {
  nodes { dueOn status rule { name procedureCode } } } }"""


async def implant_tasks_of(tenant: Tenant, department: str) -> uuid.UUID:
    """A file of ``department`` (registered by the nurse, on their care team) whose implant visit finished: the
    implant rule scheduled its calls."""
    pid = await make_patient(tenant, "nurse", departmentId=str(tenant.departments[department].id))
    visit = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "DENTAL", "departmentId": str(tenant.departments[department].id),
        "plannedAt": "2026-11-02T09:00:00+08:00"})  # the day it arrived (an arrival comes on its planned day)
    vid = visit.data["visitCreate"]["id"]
    added = await tenant.call("nurse", """mutation($id: ID!) { visitCodeAdd(visitId: $id, input:
      {kind: PROCEDURE, code: "IMPLANT"}) { id } }""", id=vid)
    assert added.errors == [], added.errors
    for to, at in (("ARRIVED", "2026-11-02T08:50:00+08:00"), ("IN_PROGRESS", "2026-11-02T09:00:00+08:00"),
                   ("FINISHED", "2026-11-02T10:00:00+08:00")):
        moved = await tenant.call("nurse", """mutation($id: ID!, $to: VisitStatus!, $at: DateTime) {
          visitTransition(id: $id, to: $to, at: $at) { id } }""", id=vid, to=to, at=at)
        assert moved.errors == [], moved.errors
    assert await FollowUpTask.filter(visit_id=vid).count() == 3
    return pid


async def test_a_tasks_rule_needs_the_clinical_class_of_the_file(tenant: Tenant) -> None:
    """Found in review of the field classes: a task's rule was read under the identity class, and a rule names the
    procedure it follows (procedureCode: a code is clinical), so a nurse who also works the front desk (the identity
    of every file, the clinical class of their department's and care team's) read which procedure a department-B
    patient had by their follow-up calls' rule, though the visit's codes answered FORBIDDEN. Read under the clinical
    class now, the refusal recorded; on a file whose clinical class the nurse reads it is there as before. Since
    the tasks themselves are read only where a role that reads tasks reaches (test_section_reach), the front desk
    reading none, the department-B patient's tasks are refused as a whole."""
    await ok(await tenant.call("admin", CATALOGUE, code="IMPLANT"), "serviceItemCreate")
    await a_rule(tenant, name="After an implant", procedureCode="implant", assignee="DEPARTMENT_POOL")
    in_a, in_b = await implant_tasks_of(tenant, "A"), await implant_tasks_of(tenant, "B")
    await CareTeamMember.filter(patient_id=in_b).delete()  # outside the nurse's clinical reach now
    assigned = await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids["nurse"]), to="FRONT_DESK")
    assert assigned.data == {"roleAssign": {"roles": ["FRONT_DESK", "NURSE"]}}
    seq = await mark(tenant.id)

    theirs = await tenant.call("nurse", TASKS, pid=str(in_b))

    assert theirs.data == {"patientFollowUpTasks": None} and theirs.codes == ["FORBIDDEN"]
    assert await denials_since(tenant.id, seq) == [("read", "follow_up_task", "forbidden", None, in_b)]
    own = await tenant.call("nurse", TASKS, pid=str(in_a))
    assert own.errors == [] and [node["rule"] for node in own.data["patientFollowUpTasks"]["nodes"]] == [
        {"name": "After an implant", "procedureCode": "IMPLANT"}] * 3
