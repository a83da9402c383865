"""Who may be named a clinician: a visit's responsible clinician and the other staff who took part, a clinician's
schedule, and a place on a patient's care team name active staff holding a clinical role (one whose policy reads a
file's clinical class: nurse, doctor, department head). Found in review: any active account of the institution was
taken, a finance clerk or an admin included, and was shown to the patient in the portal as their clinician, credited
with the visit's follow-up and surveyed about. Anyone else is BAD_USER_INPUT at the field that names them, reason
``not_a_clinician``, nothing written; each refusal has its twin naming a clinician, which is written."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from models import CareTeamMember, Schedule, Visit, VisitStaff
from tests.conftest import SqlCounter
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, events_since, mark

VISIT_CREATE = """mutation($input: VisitCreateInput!) {
  visitCreate(input: $input) { id version clinician { id } staff { id } } }"""
VISIT_UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!, $version: Int) {
  visitUpdate(id: $id, input: $input, version: $version) { id version clinician { id } staff { id } } }"""
SCHEDULE_CREATE = """mutation($input: ScheduleCreateInput!) {
  scheduleCreate(input: $input) { id version clinician { id } } }"""
SCHEDULE_UPDATE = """mutation($id: ID!, $input: ScheduleUpdateInput!, $version: Int!) {
  scheduleUpdate(id: $id, input: $input, version: $version) { id version clinician { id } } }"""
CARE_ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"
CARE_UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"
CARE_TEAM = "query($id: ID!) { patient(id: $id) { careTeam { id } } }"
ROLE_ASSIGN = "mutation($id: ID!, $to: Role!) { roleAssign(staffId: $id, role: $to) { roles } }"
WEEKDAYS = [{"weekday": d, "sessions": [{"start": "08:00", "end": "12:00"}]} for d in range(1, 6)]

CLINICAL = ["nurse", "doctor", "department_head"]
NOT_CLINICAL = ["front_desk", "support_agent", "compliance_officer", "finance", "admin"]


def refused_at(reply: Response, *fields: str) -> None:
    """BAD_USER_INPUT listing exactly these fields, each as not a clinician."""
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    invalid = reply.errors[0]["extensions"]["invalid"]
    assert [(p["field"], p["reason"]) for p in invalid] == [(field, "not_a_clinician") for field in fields]
    assert reply.errors[0]["extensions"]["field"] == fields[0]
    assert reply.errors[0]["extensions"]["reason"] == "not_a_clinician"


def ok(reply: Response, root: str) -> dict[str, Any]:
    assert reply.errors == [], reply.errors
    return dict(reply.data[root])


async def visits_written(tenant: Tenant) -> tuple[Any, ...]:
    return (tuple(await Visit.filter(institution_id=tenant.id).order_by("id").values_list(
                "id", "version", "clinician_id")),
            tuple(await VisitStaff.filter(institution_id=tenant.id).order_by("id").values_list("visit_id", "staff_id")))


async def schedules_written(tenant: Tenant) -> tuple[Any, ...]:
    return tuple(await Schedule.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "version", "kind", "clinician_id"))


def visit_input(tenant: Tenant, pid: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {"patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id), **fields}


def schedule_input(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {"name": "Clinic", "kind": "CLINICIAN", "departmentId": str(tenant.departments["A"].id),
            "week": WEEKDAYS, "slotMinutes": 30, "capacity": 1, **fields}


# -- visits ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", NOT_CLINICAL)
async def test_a_visits_clinician_without_a_clinical_role_is_refused(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    before = await visits_written(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE, input=visit_input(tenant, pid,
                                                                        clinicianId=str(tenant.staff_ids[role])))
    refused_at(reply, "input.clinicianId")
    assert reply.data == {"visitCreate": None}
    assert await visits_written(tenant) == before


@pytest.mark.parametrize("role", CLINICAL)
async def test_a_visits_clinician_with_a_clinical_role_is_recorded(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    clinician = str(tenant.staff_ids[role])
    visit = ok(await tenant.call("front_desk", VISIT_CREATE, input=visit_input(tenant, pid, clinicianId=clinician)),
               "visitCreate")
    assert visit["clinician"] == {"id": clinician}
    assert await Visit.filter(id=visit["id"], clinician_id=clinician).exists()


async def test_the_other_staff_of_a_visit_are_clinicians_each_named_at_its_place(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    ids = tenant.staff_ids
    before = await visits_written(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE, input=visit_input(
        tenant, pid, clinicianId=str(ids["admin"]),
        staffIds=[str(ids["nurse"]), str(ids["finance"]), str(ids["doctor"]), str(ids["admin"])]))
    refused_at(reply, "input.clinicianId", "input.staffIds[1]", "input.staffIds[3]")
    assert await visits_written(tenant) == before

    named = [str(ids["nurse"]), str(ids["doctor"]), str(ids["department_head"])]
    visit = ok(await tenant.call("nurse", VISIT_CREATE, input=visit_input(
        tenant, pid, clinicianId=str(ids["doctor"]), staffIds=named)), "visitCreate")
    assert sorted(s["id"] for s in visit["staff"]) == sorted(named)


async def test_an_unknown_staff_member_and_a_non_clinician_are_told_apart(tenant: Tenant) -> None:
    """An id that names no active staff member of the institution stays ``invalid`` ("no such staff member"), as
    before; only an existing account without a clinical role is ``not_a_clinician``. Both listed at once."""
    pid = await make_patient(tenant)
    before = await visits_written(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE, input=visit_input(
        tenant, pid, clinicianId=str(uuid.uuid4()), staffIds=[str(tenant.staff_ids["finance"]), str(uuid.uuid4())]))
    assert reply.codes == ["BAD_USER_INPUT"]
    assert [(p["field"], p["reason"]) for p in reply.errors[0]["extensions"]["invalid"]] == [
        ("input.clinicianId", "invalid"), ("input.staffIds[0]", "not_a_clinician"), ("input.staffIds[1]", "invalid")]
    assert await visits_written(tenant) == before


@pytest.mark.parametrize("role", ["finance", "admin"])
async def test_a_visit_changed_to_a_non_clinician_is_left_as_it_was(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    doctor, nurse, other = (str(tenant.staff_ids[r]) for r in ("doctor", "nurse", role))
    visit = ok(await tenant.call("front_desk", VISIT_CREATE, input=visit_input(
        tenant, pid, clinicianId=doctor, staffIds=[nurse])), "visitCreate")
    before = await visits_written(tenant)
    refused_at(await tenant.call("front_desk", VISIT_UPDATE, id=visit["id"], version=visit["version"],
                                 input={"clinicianId": other}), "input.clinicianId")
    refused_at(await tenant.call("front_desk", VISIT_UPDATE, id=visit["id"], version=visit["version"],
                                 input={"staffIds": [doctor, other]}), "input.staffIds[1]")
    assert await visits_written(tenant) == before

    head = str(tenant.staff_ids["department_head"])  # the twin: clinicians are taken
    changed = ok(await tenant.call("front_desk", VISIT_UPDATE, id=visit["id"], version=visit["version"],
                                   input={"clinicianId": nurse, "staffIds": [doctor, head]}), "visitUpdate")
    assert changed["clinician"] == {"id": nurse} and changed["version"] == visit["version"] + 1
    assert sorted(s["id"] for s in changed["staff"]) == sorted([doctor, head])


async def test_a_clinician_who_also_works_in_finance_is_a_clinician(tenant: Tenant) -> None:
    """A clinical role makes a clinician, whatever other roles the account holds; a deactivated clinician is no staff
    member at all (as before)."""
    nurse = tenant.staff_ids["nurse"]
    ok(await tenant.call("admin", ROLE_ASSIGN, id=str(nurse), to="FINANCE"), "roleAssign")
    pid = await make_patient(tenant)
    visit = ok(await tenant.call("front_desk", VISIT_CREATE, input=visit_input(tenant, pid, clinicianId=str(nurse))),
               "visitCreate")
    assert visit["clinician"] == {"id": str(nurse)}
    schedule = ok(await tenant.call("admin", SCHEDULE_CREATE, input=schedule_input(tenant, clinicianId=str(nurse))),
                  "scheduleCreate")
    assert schedule["clinician"] == {"id": str(nurse)}


async def test_the_people_named_on_a_visit_are_looked_up_in_one_statement(tenant: Tenant,
                                                                          sql_counter: SqlCounter) -> None:
    """The clinician and the other staff, their accounts and roles: one SELECT of the staff table for all of them."""
    pid = await make_patient(tenant)
    ids = tenant.staff_ids
    staff_reads = re.compile(r'FROM "?staff"?\b', re.IGNORECASE)
    create = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"  # reads nobody back
    start = len(sql_counter.statements)
    ok(await tenant.call("nurse", create, input=visit_input(tenant, pid)), "visitCreate")
    plain = sum(bool(staff_reads.search(s)) for s in sql_counter.statements[start:])
    start = len(sql_counter.statements)
    ok(await tenant.call("nurse", create, input=visit_input(
        tenant, pid, clinicianId=str(ids["doctor"]), staffIds=[str(ids["nurse"]), str(ids["department_head"])])),
        "visitCreate")
    named = sum(bool(staff_reads.search(s)) for s in sql_counter.statements[start:])
    assert named - plain == 1


# -- schedules ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", NOT_CLINICAL)
async def test_a_schedules_clinician_without_a_clinical_role_is_refused(tenant: Tenant, role: str) -> None:
    before = await schedules_written(tenant)
    reply = await tenant.call("admin", SCHEDULE_CREATE, input=schedule_input(tenant,
                                                                            clinicianId=str(tenant.staff_ids[role])))
    refused_at(reply, "input.clinicianId")
    assert await schedules_written(tenant) == before


@pytest.mark.parametrize("role", CLINICAL)
async def test_a_schedules_clinician_with_a_clinical_role_is_taken(tenant: Tenant, role: str) -> None:
    clinician = str(tenant.staff_ids[role])
    made = ok(await tenant.call("department_head", SCHEDULE_CREATE, input=schedule_input(tenant,
                                                                                        clinicianId=clinician)),
              "scheduleCreate")
    assert made["clinician"] == {"id": clinician}
    assert await Schedule.filter(id=made["id"], clinician_id=clinician).exists()


@pytest.mark.parametrize("role", ["finance", "admin"])
async def test_a_schedule_handed_to_a_non_clinician_is_left_as_it_was(tenant: Tenant, role: str) -> None:
    made = ok(await tenant.call("admin", SCHEDULE_CREATE, input=schedule_input(
        tenant, clinicianId=str(tenant.staff_ids["doctor"]))), "scheduleCreate")
    chair = ok(await tenant.call("admin", SCHEDULE_CREATE, input=schedule_input(
        tenant, name="Chair 1", kind="RESOURCE")), "scheduleCreate")
    before = await schedules_written(tenant)
    other = str(tenant.staff_ids[role])
    refused_at(await tenant.call("admin", SCHEDULE_UPDATE, id=made["id"], version=made["version"],
                                 input={"clinicianId": other}), "input.clinicianId")
    refused_at(await tenant.call("admin", SCHEDULE_UPDATE, id=chair["id"], version=chair["version"],
                                 input={"kind": "CLINICIAN", "clinicianId": other}), "input.clinicianId")
    assert await schedules_written(tenant) == before

    nurse = str(tenant.staff_ids["nurse"])  # the twin
    changed = ok(await tenant.call("admin", SCHEDULE_UPDATE, id=made["id"], version=made["version"],
                                   input={"clinicianId": nurse}), "scheduleUpdate")
    assert changed["clinician"] == {"id": nurse} and changed["version"] == made["version"] + 1


# -- care teams -----------------------------------------------------------------------------------------------------
# Found after the rule above: careTeamAssign took any staff member of the institution, a finance clerk or an admin
# included. It widened no reach (care-team reach counts for nurses and doctors only), but the team is shown to the
# patient in the portal and to staff as the people caring for the patient.


async def team_of(patient: uuid.UUID) -> list[uuid.UUID]:
    return sorted(await CareTeamMember.filter(patient_id=patient).values_list("staff_id", flat=True))


@pytest.mark.parametrize("role", NOT_CLINICAL)
async def test_a_care_team_place_for_someone_without_a_clinical_role_is_refused(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)  # of department A: the head sets its team
    assert (await tenant.call("department_head", CARE_ASSIGN, pid=str(pid),
                              sid=str(tenant.staff_ids["nurse"]))).errors == []
    team, seq = await team_of(pid), await mark(tenant.id)
    other = tenant.staff_ids[role]

    reply = await tenant.call("department_head", CARE_ASSIGN, pid=str(pid), sid=str(other))

    refused_at(reply, "staffId")
    assert reply.data == {"careTeamAssign": None}
    assert await team_of(pid) == team  # nothing written
    # recorded as careTeamAssign's other refusals are (a full team, a place for oneself): the staff member named
    assert await denials_since(tenant.id, seq) == [("create", "care_team", "not_a_clinician", other, pid)]
    assert [e.outcome for e in await events_since(tenant.id, seq)] == ["denied"]


@pytest.mark.parametrize("role", CLINICAL)
async def test_a_care_team_place_for_a_clinician_is_written(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    clinician = tenant.staff_ids[role]
    assert (await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(clinician))).data == {
        "careTeamAssign": True}
    assert await team_of(pid) == [clinician]
    shown = await tenant.call("nurse", CARE_TEAM, id=str(pid))
    assert shown.errors == [] and shown.data["patient"]["careTeam"] == [{"id": str(clinician)}]


async def test_a_non_clinician_already_on_a_team_stays_shown_until_taken_off(tenant: Tenant) -> None:
    """A database from before the rule may hold a place of a non-clinician (put there through the model, as the old
    careTeamAssign wrote it): left as it is and shown as before (a place is checked when it is given, as a visit's
    clinician is), refused again if asked for again, and taken off by careTeamUnassign. It reaches nothing: care-team
    reach counts for nurses and doctors only."""
    pid = await make_patient(tenant)
    nurse, finance = tenant.staff_ids["nurse"], tenant.staff_ids["finance"]
    assert (await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(nurse))).errors == []
    await CareTeamMember.create(institution_id=tenant.id, patient_id=pid, staff_id=finance)

    shown = await tenant.call("nurse", CARE_TEAM, id=str(pid))
    assert shown.errors == [] and shown.data["patient"]["careTeam"] == [{"id": str(nurse)}, {"id": str(finance)}]
    refused_at(await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(finance)), "staffId")
    assert await team_of(pid) == sorted([nurse, finance])

    assert (await tenant.call("admin", CARE_UNASSIGN, pid=str(pid), sid=str(finance))).data == {
        "careTeamUnassign": True}
    assert await team_of(pid) == [nurse]


async def test_a_clinician_who_also_works_in_finance_joins_a_care_team(tenant: Tenant) -> None:
    nurse = tenant.staff_ids["nurse"]
    ok(await tenant.call("admin", ROLE_ASSIGN, id=str(nurse), to="FINANCE"), "roleAssign")
    pid = await make_patient(tenant)
    assert (await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(nurse))).data == {"careTeamAssign": True}
    assert await team_of(pid) == [nurse]


async def test_a_care_team_place_for_a_deactivated_clinician_or_an_unknown_id(tenant: Tenant) -> None:
    """An id of no account of the institution stays NOT_FOUND at staffId (as before, as careTeamUnassign's); a
    deactivated clinician's account, taken before, is no active staff member now: BAD_USER_INPUT, reason invalid,
    as a visit's clinician. Both recorded, nothing written."""
    pid = await make_patient(tenant)
    doctor = tenant.staff_ids["doctor"]
    deactivate = "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { id } }"
    deactivated = await tenant.call("admin", deactivate, id=str(doctor))
    assert deactivated.errors == [], deactivated.errors
    seq, unknown = await mark(tenant.id), uuid.uuid4()

    missing = await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(unknown))
    assert missing.codes == ["NOT_FOUND"] and missing.errors[0]["extensions"]["field"] == "staffId"
    inactive = await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(doctor))
    assert inactive.codes == ["BAD_USER_INPUT"]
    assert [(p["field"], p["reason"]) for p in inactive.errors[0]["extensions"]["invalid"]] == [("staffId", "invalid")]
    assert await team_of(pid) == []
    assert await denials_since(tenant.id, seq) == [("create", "staff", "not_found", unknown, None),
                                                   ("create", "care_team", "invalid", doctor, pid)]
