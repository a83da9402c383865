"""Visits through the API: the state machine, field classes per role, codes and cohorts, the service
history, follow-up scheduled on finishing, and every refusal leaving nothing written but its record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import AuditEvent, CareTeamMember, FollowUpTask, Visit, VisitCode
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

CREATE = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id status version kind } }"""
MOVE = """mutation($id: ID!, $to: VisitStatus!, $at: DateTime, $version: Int) {
  visitTransition(id: $id, to: $to, at: $at, version: $version) { id status version arrivedAt startedAt endedAt } }"""
UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!, $version: Int) {
  visitUpdate(id: $id, input: $input, version: $version) { id version summary } }"""
READ = """query($id: ID!) { visit(id: $id) { id kind status summary treatmentPlan internalNote
  department { name } patient { id } } }"""
ADD_CODE = """mutation($id: ID!, $input: VisitCodeInput!) {
  visitCodeAdd(visitId: $id, input: $input) { id kind system code status } }"""
HISTORY = """query($pid: ID!, $first: Int, $after: String, $filter: VisitFilter) {
  visits(patientId: $pid, first: $first, after: $after, filter: $filter) {
    nodes { id kind plannedAt } pageInfo { hasNextPage endCursor } } }"""
COHORT = """query($system: CodeSystem!, $code: String!, $status: ProcedureStatus) {
  patientsWithCode(codeSystem: $system, code: $code, status: $status) { nodes { id } } }"""
CATALOGUE = 'mutation($code: String!) { serviceItemCreate(code: $code, name: "Dental implant") { id code } }'

ZONE = ZoneInfo("Asia/Shanghai")


async def a_visit(tenant: Tenant, pid: uuid.UUID, role: str = "front_desk", **fields: Any) -> dict[str, Any]:
    data = {"patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id), **fields}
    reply = await tenant.call(role, CREATE, input=data)
    assert reply.errors == [], reply.errors
    return dict(reply.data["visitCreate"])


async def moved(tenant: Tenant, role: str, visit_id: str, to: str, **more: Any) -> dict[str, Any]:
    reply = await tenant.call(role, MOVE, id=visit_id, to=to, **more)
    assert reply.errors == [], reply.errors
    return dict(reply.data["visitTransition"])


async def snapshot(tenant: Tenant) -> tuple[int, ...]:
    return (await Visit.filter(institution_id=tenant.id).count(),
            await VisitCode.filter(institution_id=tenant.id).count(),
            await FollowUpTask.filter(institution_id=tenant.id).count())


async def last_denial(tenant: Tenant) -> AuditEvent | None:
    return await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()


# -- the journey ---------------------------------------------------------------------------------


async def test_a_visit_from_booking_to_finish(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt="2026-12-01T09:00:00+08:00")
    assert (visit["status"], visit["version"], visit["kind"]) == ("PLANNED", 1, "OUTPATIENT")
    arrived = await moved(tenant, "front_desk", visit["id"], "ARRIVED", at="2026-12-01T08:55:00+08:00")
    assert (arrived["status"], arrived["arrivedAt"], arrived["version"]) == ("ARRIVED", "2026-12-01T00:55:00+00:00", 2)
    started = await moved(tenant, "nurse", visit["id"], "IN_PROGRESS", at="2026-12-01T09:10:00+08:00")
    assert started["startedAt"] == "2026-12-01T01:10:00+00:00"
    reply = await tenant.call("doctor", UPDATE, id=visit["id"], input={"summary": "Scaling done",
                                                                        "treatmentPlan": "Floss daily"})
    assert reply.errors == [] and reply.data["visitUpdate"]["summary"] == "Scaling done"
    finished = await moved(tenant, "doctor", visit["id"], "FINISHED", at="2026-12-01T09:40:00+08:00")
    assert (finished["status"], finished["version"]) == ("FINISHED", 5)


@pytest.mark.parametrize(("path", "refused"), [
    ((), "IN_PROGRESS"), ((), "FINISHED"), (("ARRIVED",), "NO_SHOW"), (("ARRIVED",), "FINISHED"),
    (("ARRIVED", "IN_PROGRESS"), "CANCELLED"), (("ARRIVED", "IN_PROGRESS", "FINISHED"), "ARRIVED"),
    (("CANCELLED",), "ARRIVED"), (("NO_SHOW",), "ARRIVED"), ((), "PLANNED")])
async def test_refused_transitions_write_nothing(tenant: Tenant, path: tuple[str, ...], refused: str) -> None:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid)
    for step in path:
        await moved(tenant, "nurse", visit["id"], step)
    before = (await snapshot(tenant), await Visit.get(id=visit["id"]))
    reply = await tenant.call("nurse", MOVE, id=visit["id"], to=refused)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "to"
    after = await Visit.get(id=visit["id"])
    assert (await snapshot(tenant), after.status, after.version) == (before[0], before[1].status, before[1].version)


async def test_a_stale_version_is_a_conflict_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid)
    await moved(tenant, "front_desk", visit["id"], "ARRIVED", version=1)
    reply = await tenant.call("nurse", UPDATE, id=visit["id"], input={"summary": "Late edit"}, version=1)
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "stale_version"
    assert (await Visit.get(id=visit["id"])).summary is None
    reply = await tenant.call("nurse", MOVE, id=visit["id"], to="CANCELLED", version=1)
    assert reply.codes == ["CONFLICT"] and (await Visit.get(id=visit["id"])).status == "arrived"
    assert reply.errors[0]["extensions"]["reason"] == "stale_version"


# -- who reads what ----------------------------------------------------------------------------------


async def clinical_visit(tenant: Tenant) -> tuple[uuid.UUID, str]:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, role="nurse", summary="Implant placed", treatmentPlan="Soft food",
                          internalNote="Nervous patient")
    return pid, visit["id"]


async def test_the_front_desk_reads_when_and_where_never_what_was_done(tenant: Tenant) -> None:
    _, vid = await clinical_visit(tenant)
    reply = await tenant.call("front_desk", READ, id=vid)
    assert reply.data["visit"]["kind"] == "OUTPATIENT" and reply.data["visit"]["department"] == {"name": "Department A"}
    assert reply.data["visit"]["summary"] is None and reply.data["visit"]["treatmentPlan"] is None
    assert sorted(e["path"][-1] for e in reply.errors) == ["summary", "treatmentPlan"]
    assert set(reply.codes) == {"FORBIDDEN"}


async def test_a_nurse_of_the_department_reads_the_clinical_part_and_the_read_is_audited(tenant: Tenant) -> None:
    pid, vid = await clinical_visit(tenant)
    reply = await tenant.call("nurse", READ, id=vid)
    assert reply.errors == []
    assert (reply.data["visit"]["summary"], reply.data["visit"]["internalNote"]) == ("Implant placed",
                                                                                    "Nervous patient")
    event = await AuditEvent.filter(institution_id=tenant.id, patient_id=pid, action="read").order_by("-seq").first()
    assert event is not None and "clinical" in event.field_classes
    assert "visit.summary" in event.fields_read and "Implant" not in str(event.fields_read)


async def test_a_nurse_of_another_department_meets_a_missing_visit(tenant: Tenant) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    vid = (await a_visit(tenant, pid, departmentId=str(tenant.departments["B"].id)))["id"]
    hidden = await tenant.call("nurse", READ, id=vid)
    missing = await tenant.call("nurse", READ, id=str(uuid.uuid4()))
    assert hidden.body == {**missing.body, "errors": [{**e, "extensions": e["extensions"]} for e in missing.errors]}
    assert hidden.codes == ["NOT_FOUND"]


@pytest.mark.parametrize("role", ["admin", "compliance_officer"])
async def test_roles_without_patient_data_read_no_visit(tenant: Tenant, role: str) -> None:
    _, vid = await clinical_visit(tenant)
    reply = await tenant.call(role, READ, id=vid)
    assert reply.codes == ["FORBIDDEN"]
    denial = await last_denial(tenant)
    assert denial is not None and denial.resource_type == "visit"


async def test_another_institution_meets_a_missing_visit(tenant: Tenant, other_tenant: Tenant) -> None:
    _, vid = await clinical_visit(tenant)
    reply = await other_tenant.call("front_desk", READ, id=vid)
    assert reply.codes == ["NOT_FOUND"]
    reply = await other_tenant.call("nurse", MOVE, id=vid, to="ARRIVED")
    assert reply.codes == ["NOT_FOUND"] and (await Visit.get(id=vid)).status == "planned"


@pytest.mark.parametrize("role", ["department_head", "support_agent", "admin", "compliance_officer"])
async def test_roles_that_do_not_record_visits_are_refused_and_nothing_is_written(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    assert reply.codes == ["FORBIDDEN"]
    assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1


async def test_the_front_desk_cannot_write_clinical_text(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("front_desk", CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT",
                                                           "summary": "Not mine to write"})
    assert reply.codes == ["FORBIDDEN"] and await snapshot(tenant) == before


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"plannedAt": "2026-12-01T09:00:00"}, "input.plannedAt"),
    ({"status": "FINISHED", "startedAt": "2026-12-01T10:00:00+08:00", "endedAt": "2026-12-01T09:00:00+08:00"},
     "input.endedAt"),
    ({"status": "FINISHED"}, "input.endedAt"),
    ({"status": "IN_PROGRESS"}, "input.status"),
    ({"departmentId": str(uuid.uuid4())}, "input.departmentId"),
    ({"clinicianId": str(uuid.uuid4())}, "input.clinicianId"),
    ({"reason": "  "}, "input.reason"),
    ({"reason": "x" * 1001}, "input.reason"),
    ({"reason": "abc\u202edef"}, "input.reason"),
])
async def test_bad_visits_are_refused_with_the_field_named(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    pid = await make_patient(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT", **fields})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_no_visit_for_a_file_that_is_not_active(tenant: Tenant, status: str) -> None:
    pid = await make_patient(tenant)
    if status == "archived":
        assert (await tenant.call("front_desk", "mutation($id: ID!) { patientArchive(id: $id) { id } }",
                                  id=str(pid))).errors == []
    else:
        assert (await tenant.call("nurse", "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) "
                                           "{ id } }", id=str(pid))).errors == []
    before = await snapshot(tenant)
    reply = await tenant.call("front_desk", CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await snapshot(tenant) == before


# -- codes and cohorts ------------------------------------------------------------------------------


async def test_codes_are_checked_sealed_and_found_without_decrypting(tenant: Tenant, other_tenant: Tenant) -> None:
    assert (await tenant.call("admin", CATALOGUE, code="IMPLANT")).errors == []
    with_code, without = await make_patient(tenant), await make_patient(tenant)
    vid = (await a_visit(tenant, with_code, role="nurse"))["id"]
    other_vid = (await a_visit(tenant, without, role="nurse"))["id"]
    reply = await tenant.call("nurse", ADD_CODE, id=vid, input={"kind": "CONDITION", "code": "k081"})
    assert reply.data["visitCodeAdd"] == {**reply.data["visitCodeAdd"], "code": "K08.1", "system": "ICD10",
                                          "status": None}
    reply = await tenant.call("nurse", ADD_CODE, id=vid, input={"kind": "PROCEDURE", "code": "IMPLANT",
                                                                "status": "PENDING"})
    assert reply.data["visitCodeAdd"]["status"] == "PENDING"
    await tenant.call("nurse", ADD_CODE, id=other_vid, input={"kind": "CONDITION", "code": "K02.1"})
    # the same code in another institution
    assert (await other_tenant.call("admin", CATALOGUE, code="IMPLANT")).errors == []
    foreign = await make_patient(other_tenant)
    foreign_vid = (await a_visit(other_tenant, foreign, role="nurse"))["id"]
    await other_tenant.call("nurse", ADD_CODE, id=foreign_vid, input={"kind": "CONDITION", "code": "K08.1"})

    rows = await VisitCode.filter(institution_id=tenant.id)
    assert all(b"K08" not in bytes(row.code) for row in rows)
    found = await tenant.call("nurse", COHORT, system="ICD10", code="K08.1")
    assert [n["id"] for n in found.data["patientsWithCode"]["nodes"]] == [str(with_code)]
    pending = await tenant.call("nurse", COHORT, system="SERVICE", code="IMPLANT", status="PENDING")
    assert [n["id"] for n in pending.data["patientsWithCode"]["nodes"]] == [str(with_code)]
    done = await tenant.call("nurse", COHORT, system="SERVICE", code="IMPLANT", status="DONE")
    assert done.data["patientsWithCode"]["nodes"] == []
    refused = await tenant.call("front_desk", COHORT, system="ICD10", code="K08.1")
    assert refused.codes == ["FORBIDDEN"]


COUNTS = """query($codes: [String!]!) { codeCounts(codeSystem: ICD10, codes: $codes) { code patients } }"""
COHORT_TOTAL = """query($code: String!) {
  patientsWithCode(codeSystem: ICD10, code: $code) { totalCount nodes { id } } }"""
ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"


async def coded_files(tenant: Tenant, role: str) -> tuple[tuple[uuid.UUID, str], tuple[uuid.UUID, str]]:
    """Two files with a visit coded F32.1, as (patient, visit): one of department A, in the clinical reach of
    department A's staff, and one of department B, outside it; ``role`` (of department A) also works the front desk,
    and so reaches the identity of every file."""
    files = []
    in_a = await make_patient(tenant)
    in_b = await make_patient(tenant, "nurse", departmentId=str(tenant.departments["B"].id))
    for pid, department in ((in_a, "A"), (in_b, "B")):
        vid = (await a_visit(tenant, pid, role="nurse", departmentId=str(tenant.departments[department].id)))["id"]
        added = await tenant.call("nurse", ADD_CODE, id=vid, input={"kind": "CONDITION", "code": "F32.1"})
        assert added.errors == [], added.errors
        files.append((pid, vid))
    await CareTeamMember.filter(patient_id=in_b).delete()  # no one of department A reaches it now
    assigned = await tenant.call("admin", ROLE_ASSIGN, id=str(tenant.staff_ids[role]), to="FRONT_DESK")
    assert assigned.data == {"roleAssign": {"roles": sorted([role.upper(), "FRONT_DESK"])}}
    found = await tenant.call(role, "query($id: ID!) { patient(id: $id) { fullName allergies } }", id=str(in_b))
    assert found.data["patient"]["fullName"] and found.codes == ["FORBIDDEN"]  # its identity, not its clinical class
    return files[0], files[1]


async def test_code_counts_count_only_the_files_whose_clinical_class_the_caller_reads(tenant: Tenant) -> None:
    """Found in review of the field classes: codeCounts counted the codes of every file the caller reached by any
    class, so a department head who also works the front desk (identity across the institution) learnt how many
    patients of other departments carry a diagnosis; patientsWithCode, over the same codes, counts the clinical
    reach only. Both now agree."""
    head = "department_head"
    (in_a, _), _ = await coded_files(tenant, head)

    counts = await tenant.call(head, COUNTS, codes=["F32.1", "K08.1"])
    cohort = await tenant.call(head, COHORT_TOTAL, code="F32.1")

    assert counts.errors == [] and counts.data["codeCounts"] == [{"code": "F32.1", "patients": 1},
                                                                  {"code": "K08.1", "patients": 0}]
    assert cohort.data["patientsWithCode"] == {"totalCount": 1, "nodes": [{"id": str(in_a)}]}
    # the department's own head, with no other role, counts the same
    revoked = await tenant.call("admin", "mutation($id: ID!) { roleRevoke(staffId: $id, role: FRONT_DESK) { roles } }",
                                id=str(tenant.staff_ids[head]))
    assert revoked.errors == []
    alone = await tenant.call(head, COUNTS, codes=["F32.1"])
    assert alone.data["codeCounts"] == [{"code": "F32.1", "patients": 1}]


CODED_HISTORY = """query($pid: ID!) { visits(patientId: $pid, filter: {codeSystem: ICD10, code: "F32.1"}) {
  totalCount nodes { id } } }"""


async def test_a_code_filter_on_a_history_needs_the_clinical_class_of_that_file(tenant: Tenant) -> None:
    """Found in review of the field classes: the history's code filter asked for the clinical read permission, not
    for the clinical class of the file, so a nurse who also works the front desk (the identity of every file, the
    clinical class of their own department's and care team's) learnt which visits of any patient carried a
    diagnosis, and how many (totalCount). Refused now on a file whose clinical class the caller does not read,
    like the codes themselves, and the refusal is recorded."""
    (in_a, visit_a), (in_b, visit_b) = await coded_files(tenant, "nurse")
    plain = await tenant.call("nurse", "query($pid: ID!) { visits(patientId: $pid) { totalCount nodes { id } } }",
                              pid=str(in_b))
    assert plain.data == {"visits": {"totalCount": 1, "nodes": [{"id": visit_b}]}}  # identity: the front desk's
    seq = await mark(tenant.id)

    refused = await tenant.call("nurse", CODED_HISTORY, pid=str(in_b))

    assert refused.codes == ["FORBIDDEN"] and refused.data is None
    assert await denials_since(tenant.id, seq) == [("read", "patient", "forbidden_field", in_b, in_b)]
    allowed = await tenant.call("nurse", CODED_HISTORY, pid=str(in_a))
    assert allowed.data == {"visits": {"totalCount": 1, "nodes": [{"id": visit_a}]}}


@pytest.mark.parametrize(("input_", "field"), [
    ({"kind": "CONDITION", "code": "XYZ.99"}, "input.code"),
    ({"kind": "PROCEDURE", "code": "NOT-IN-CATALOGUE"}, "input.code"),
    ({"kind": "CONDITION", "code": "K08.1", "status": "PENDING"}, "input.status"),
])
async def test_unknown_codes_are_refused(tenant: Tenant, input_: dict[str, Any], field: str) -> None:
    pid = await make_patient(tenant)
    vid = (await a_visit(tenant, pid, role="nurse"))["id"]
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", ADD_CODE, id=vid, input=input_)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


# -- the service history -------------------------------------------------------------------------------


async def test_the_history_is_newest_first_paged_and_filtered(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    ids = []
    for day, kind in ((1, "OUTPATIENT"), (3, "DENTAL"), (2, "OUTPATIENT"), (5, "CHECK_UP")):
        visit = await a_visit(tenant, pid, kind=kind, plannedAt=f"2026-11-0{day}T09:00:00+08:00")
        ids.append((day, visit["id"]))
    newest_first = [vid for _, vid in sorted(ids, reverse=True)]
    first = await tenant.call("front_desk", HISTORY, pid=str(pid), first=3)
    assert [n["id"] for n in first.data["visits"]["nodes"]] == newest_first[:3]
    rest = await tenant.call("front_desk", HISTORY, pid=str(pid), first=3,
                             after=first.data["visits"]["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest.data["visits"]["nodes"]] == newest_first[3:]
    assert rest.data["visits"]["pageInfo"]["hasNextPage"] is False
    outpatient = await tenant.call("front_desk", HISTORY, pid=str(pid), filter={"kind": "OUTPATIENT"})
    assert len(outpatient.data["visits"]["nodes"]) == 2
    window = await tenant.call("front_desk", HISTORY, pid=str(pid), filter={
        "since": "2026-11-02T00:00:00+08:00", "until": "2026-11-04T00:00:00+08:00"})
    assert len(window.data["visits"]["nodes"]) == 2
    bad = await tenant.call("front_desk", HISTORY, pid=str(pid), after="garbage")
    assert bad.codes == ["BAD_USER_INPUT"]


async def test_an_arrival_a_few_minutes_ahead_is_now_and_the_visit_starts_at_once(tenant: Tenant) -> None:
    """An `at` within the five minutes allowed for a client's clock running fast is taken as now: stored as sent, the
    visit had arrived in the future, and starting it (no `at`) was refused out_of_order until then (found in review)."""
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt=datetime.now(UTC).isoformat())
    arrived = await moved(tenant, "front_desk", visit["id"], "ARRIVED",
                          at=(datetime.now(UTC) + timedelta(minutes=3)).isoformat())
    assert datetime.fromisoformat(arrived["arrivedAt"]) <= datetime.now(UTC)
    started = await moved(tenant, "front_desk", visit["id"], "IN_PROGRESS")
    assert started["status"] == "IN_PROGRESS"


async def test_a_no_show_is_recorded_once_the_visit_was_due_not_before(tenant: Tenant) -> None:
    """A patient misses a visit only once its planned time has come, as an appointment's no-show waits for its slot:
    a NO_SHOW of a visit planned for tomorrow was stored (its calls cancelled, counted in that month's noShows; found
    in review). Refused, nothing written; the twin planned an hour ago is marked."""
    pid = await make_patient(tenant)
    later = await a_visit(tenant, pid, plannedAt=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    reply = await tenant.call("front_desk", MOVE, id=later["id"], to="NO_SHOW")
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "to"
    assert reply.errors[0]["extensions"]["reason"] == "out_of_order"
    row = await Visit.get(id=later["id"])
    assert (row.status, row.version) == ("planned", later["version"])
    due = await a_visit(tenant, pid, plannedAt=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert (await moved(tenant, "front_desk", due["id"], "NO_SHOW"))["status"] == "NO_SHOW"


# -- follow-up scheduled by finishing ------------------------------------------------------------------


async def test_finishing_a_procedure_schedules_calls_on_day_1_7_and_30_local(tenant: Tenant) -> None:
    pid = await make_patient(tenant, role="nurse")  # the registering nurse joins the care team? only outside reach
    visit = await a_visit(tenant, pid, role="nurse", kind="PROCEDURE",
                          plannedAt="2026-11-26T22:45:00+08:00")  # planned that evening: it arrived on its day
    # a fixed evening already past (a time still to come would be refused, and "now" moves past it)
    await moved(tenant, "nurse", visit["id"], "ARRIVED", at="2026-11-26T22:50:00+08:00")
    await moved(tenant, "nurse", visit["id"], "IN_PROGRESS", at="2026-11-26T23:00:00+08:00")
    # 23:30 in Shanghai on Thursday 26 November is 15:30 UTC: the local date counts
    await moved(tenant, "nurse", visit["id"], "FINISHED", at="2026-11-26T23:30:00+08:00")
    tasks = await FollowUpTask.filter(visit_id=visit["id"]).order_by("due_on")
    finished_on = datetime(2026, 11, 26, 15, 30, tzinfo=UTC).astimezone(ZONE).date()
    expected = [finished_on + timedelta(days=d) for d in (1, 7, 30)]
    # due dates on a weekend move to the next working day (the default rules do)
    expected = [d + timedelta(days=(7 - d.weekday()) % 7 if d.weekday() >= 5 else 0) for d in expected]
    assert [t.due_on for t in tasks] == expected
    assert {t.status for t in tasks} == {"requested"} and {t.department_id for t in tasks} == {
        tenant.departments["A"].id}


async def test_a_responsible_nurse_who_left_gets_no_calls_they_wait_in_the_pool(tenant: Tenant) -> None:
    """The care team's first nurse, deactivated since (left the institution), is nobody's caller: the calls a finished
    visit schedules wait in the department's pool for a nurse to claim, as a manual task refuses such an owner (found
    in review: they were owned by the account that can no longer sign in, on nobody's worklist)."""
    pid = await make_patient(tenant)
    nurse = tenant.staff_ids["nurse"]
    on_team = await tenant.call("admin", "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }",
                                p=str(pid), s=str(nurse))
    assert on_team.errors == [], on_team.errors
    off = await tenant.call("admin", "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { active } }",
                            id=str(nurse))
    assert off.errors == [], off.errors
    visit = await a_visit(tenant, pid, role="doctor", kind="OUTPATIENT", status="FINISHED",
                          startedAt="2026-11-02T09:00:00+08:00", endedAt="2026-11-02T10:00:00+08:00")
    tasks = await FollowUpTask.filter(visit_id=visit["id"])
    assert len(tasks) == 1 and tasks[0].owner_id is None and tasks[0].status == "requested"


async def test_cancelling_a_visit_or_a_death_cancels_its_follow_up(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    first = await a_visit(tenant, pid, role="nurse", kind="INPATIENT", status="FINISHED",
                          startedAt="2026-11-01T09:00:00+08:00", endedAt="2026-11-05T09:00:00+08:00")
    assert await FollowUpTask.filter(visit_id=first["id"], status="requested").count() == 2
    second = await a_visit(tenant, pid, role="nurse")
    await moved(tenant, "nurse", second["id"], "NO_SHOW")
    reply = await tenant.call("nurse", "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) "
                                       "{ id } }", id=str(pid))
    assert reply.errors == []
    assert await FollowUpTask.filter(patient_id=pid).exclude(status="cancelled").count() == 0
    third = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "kind": "INPATIENT"})
    assert third.codes == ["BAD_USER_INPUT"]  # and no rule creates new calls for a deceased patient


async def test_a_visit_recorded_afterwards_for_a_date_already_past_keeps_its_dates(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, role="nurse", kind="OUTPATIENT", status="FINISHED",
                          startedAt="2026-11-02T09:00:00+08:00", endedAt="2026-11-02T10:00:00+08:00")
    tasks = await FollowUpTask.filter(visit_id=visit["id"])
    assert [t.due_on for t in tasks] == [date(2026, 11, 5)]


async def test_other_staff_who_took_part(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    nurse, doctor = str(tenant.staff_ids["nurse"]), str(tenant.staff_ids["doctor"])
    visit = await a_visit(tenant, pid, role="nurse", staffIds=[nurse, doctor, nurse])
    staff = "query($id: ID!) { visit(id: $id) { staff { id } } }"
    reply = await tenant.call("front_desk", staff, id=visit["id"])
    assert sorted(s["id"] for s in reply.data["visit"]["staff"]) == sorted([nurse, doctor])
    changed = await tenant.call("nurse", UPDATE, id=visit["id"], input={"staffIds": [doctor]})
    assert changed.errors == []
    assert [s["id"] for s in (await tenant.call("nurse", staff, id=visit["id"])).data["visit"]["staff"]] == [doctor]
    before = await snapshot(tenant)
    bad = await tenant.call("nurse", UPDATE, id=visit["id"], input={"staffIds": [str(uuid.uuid4())]})
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "input.staffIds[0]"
    assert await snapshot(tenant) == before


CALENDAR_SET = """mutation($input: BusinessCalendarInput!) {
  businessCalendarSet(input: $input) { calendar { holidays } } }"""
STANDARD_WEEK = [{"weekday": day, "intervals": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]}
                 for day in range(1, 6)]
RULE_CREATE = """mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) { id } }"""


async def test_a_call_due_on_a_holiday_moves_to_the_next_working_day_when_the_rule_says_so(tenant: Tenant) -> None:
    """Finished on Tuesday 29 December 2020: day 3 is New Year's Day, a holiday (and 2 January a Saturday). In the past:
    a visit finished is never in the future."""
    reply = await tenant.call("admin", CALENDAR_SET, input={"week": STANDARD_WEEK, "holidays": ["2021-01-01"]})
    assert reply.errors == [], reply.errors
    reply = await tenant.call("admin", RULE_CREATE, input={"name": "Dental, every day counts", "visitKind": "DENTAL",
                                                           "offsetsDays": [3], "skipClosedDays": False})
    assert reply.errors == [], reply.errors
    pid = await make_patient(tenant)
    for kind in ("OUTPATIENT", "DENTAL"):
        await a_visit(tenant, pid, role="nurse", kind=kind, status="FINISHED", startedAt="2020-12-29T09:00:00+08:00",
                      endedAt="2020-12-29T10:00:00+08:00")
    tasks = {t.rule_id: t.due_on for t in await FollowUpTask.filter(patient_id=pid)}
    assert sorted(tasks.values()) == [date(2021, 1, 1), date(2021, 1, 4)]  # the rule that keeps the day; the default
