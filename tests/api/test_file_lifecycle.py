"""A file's lifecycle against the writes that add to it: archived or deceased, nothing more is added (docs/patients.md,
docs/care-journey.md), and the patient's copy of their data (docs/partners-and-patients.md)."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from models import CarePlan, Contract, Flag, FollowUpTask, PartnerGrant, Patient, Visit
from resolvers import access
from resolvers import appointment as appointments
from resolvers.context import Services
from tests.api.test_appointments import NOW, book, make_schedule
from tests.conftest import SqlCounter
from tests.contracts import CREATE as CONTRACT
from tests.contracts import active_contract, draft_input, item_input, make_item
from tests.factories import Tenant, make_patient
from tests.locks import held, pause_before_entering
from tests.partners import ALL_SCOPES, consent, grant, make_partnership
from tests.patients import events_since, mark, open_account

ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id status } }"
DECEASED = "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) { id status } }"
TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
VISIT_READ = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id status } }"
MOVE_VISIT = "mutation($id: ID!, $to: VisitStatus!) { visitTransition(id: $id, to: $to) { id status } }"
EXPORT = "{ myDataExport }"


def _writes(today: date) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each write that adds to a file: who makes it, the mutation, its input besides the patient."""
    return {
        "followUpTaskCreate": ("nurse", TASK, {"dueOn": (today + timedelta(days=2)).isoformat()}),
        "carePlanCreate": ("doctor", PLAN, {"title": "After the implant", "startsOn": today.isoformat(),
                                            "activities": [{"kind": "CALL", "afterDays": 7}]}),
        "flagCreate": ("nurse", FLAG, {"kind": "FALL_RISK"}),
        "visitCreate": ("nurse", VISIT, {"kind": "OUTPATIENT"}),
    }


async def _added(pid: Any) -> tuple[int, int, int, int]:
    return (await FollowUpTask.filter(patient_id=pid).count(), await CarePlan.filter(patient_id=pid).count(),
            await Flag.filter(patient_id=pid).count(), await Visit.filter(patient_id=pid).count())


# -- nothing is added to a file archived or deceased while the write was under way ---------------------------------


@pytest.mark.parametrize("write", ["followUpTaskCreate", "carePlanCreate", "flagCreate", "visitCreate"])
@pytest.mark.parametrize("end", ["archived", "deceased"])
async def test_a_file_closed_as_a_write_adds_to_it_takes_nothing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, write: str, end: str) -> None:
    """The write read the file active, then the file was archived (or the death recorded), cancelling what the file
    had, before the write's transaction locked it. Found in review: the write went on, and the archived file kept an
    open call (a plan and its calls, an alert, a visit) that the archive never cancelled and nothing ever would."""
    pid = await make_patient(tenant)
    role, mutation, fields = _writes(date.today())[write]
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call(role, mutation, input={"patientId": str(pid), **fields}), pause) as writing:
        closed = await tenant.call("front_desk" if end == "archived" else "nurse",
                                   ARCHIVE if end == "archived" else DECEASED, id=str(pid))
        assert closed.errors == [], closed.errors
    reply = await writing

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await _added(pid) == (0, 0, 0, 0)
    created = await tenant.audit_events(patient_id=pid, action="create", outcome="allowed")
    assert [e.resource_type for e in created] == ["patient"]  # the registration only


@pytest.mark.parametrize("end", ["archived", "deceased"])
async def test_a_contract_drafted_as_the_file_closes_is_not_written(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, end: str) -> None:
    """contractCreate read the client's file active, the file was archived (or the death recorded), then the draft was
    written on it (found in review); now refused as a contract for a file not active is, nothing written."""
    pid = await make_patient(tenant)
    data = draft_input(pid, [item_input(await make_item(tenant))])
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call("front_desk", CONTRACT, input=data), pause) as writing:
        closed = await tenant.call("front_desk" if end == "archived" else "nurse",
                                   ARCHIVE if end == "archived" else DECEASED, id=str(pid))
        assert closed.errors == [], closed.errors
    reply = await writing

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await Contract.filter(patient_id=pid).count() == 0
    assert await tenant.audit_events(patient_id=pid, resource_type="contract") == []


@pytest.mark.parametrize("write", ["followUpTaskCreate", "carePlanCreate", "flagCreate", "visitCreate"])
async def test_an_active_file_takes_the_write(tenant: Tenant, write: str) -> None:
    """The allowed twin: the same write on an active file."""
    pid = await make_patient(tenant)
    role, mutation, fields = _writes(date.today())[write]
    reply = await tenant.call(role, mutation, input={"patientId": str(pid), **fields})
    assert reply.errors == [], reply.errors
    assert sum(await _added(pid)) >= 1


# -- the patient's copy of their data -------------------------------------------------------------------------------


async def _journey(tenant: Tenant, pid: Any, schedule: str, day: int) -> None:
    """A visit with its after-visit instructions (and the staff's internal note), a care plan and an appointment."""
    visit = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "summary": f"Implant placed {day}", "treatmentPlan": "Soft food for a week", "precautions": "No hot drinks",
        "internalNote": f"Nervous patient {day}"})
    assert visit.errors == [], visit.errors
    plan = await tenant.call("doctor", PLAN, input={
        "patientId": str(pid), "title": f"After the implant {day}", "goals": "Healed by March",
        "startsOn": date.today().isoformat(),
        "activities": [{"kind": "CALL", "afterDays": 7, "description": "Check the gum"}]})
    assert plan.errors == [], plan.errors
    await book(tenant, schedule, pid, start=f"2027-03-{day:02d}T09:00:00+08:00", reason=f"Loose crown {day}")


async def test_my_copy_holds_my_visits_plans_and_appointments(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, sql_counter: SqlCounter) -> None:
    """PIPL's right to a copy: found in review, myDataExport held the file, contacts, consents, tickets, messages
    and survey answers but none of the care journey the portal shows the patient: not one visit nor its after-visit
    instructions, no care plan, no appointment. Now they are there in the portal's terms (no internal note, no staff
    who wrote them, nobody else's), the export recorded on my file, in a fixed number of statements."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    schedule = await make_schedule(tenant, capacity=2)
    pid, neighbour = await make_patient(tenant), await make_patient(tenant)
    await _journey(tenant, pid, schedule, 2)
    await _journey(tenant, neighbour, schedule, 2)
    me = await open_account(tenant, pid)
    before = await mark(tenant.id)

    start = len(sql_counter.statements)
    reply = await me.call(EXPORT)
    cost = len(sql_counter.statements) - start

    assert reply.errors == [], reply.errors
    export = reply.data["myDataExport"]
    (visit,) = export["visits"]
    assert (visit["kind"], visit["status"], visit["summary"], visit["treatmentPlan"], visit["precautions"],
            visit["codes"]) == ("OUTPATIENT", "PLANNED", "Implant placed 2", "Soft food for a week", "No hot drinks",
                                [])
    assert "internalNote" not in visit and "version" not in visit
    (plan,) = export["carePlans"]
    assert (plan["title"], plan["goals"], plan["status"]) == ("After the implant 2", "Healed by March", "ACTIVE")
    assert [(a["kind"], a["description"]) for a in plan["activities"]] == [("CALL", "Check the gum")]
    (appointment,) = export["appointments"]
    assert (appointment["status"], appointment["channel"], appointment["reason"]) == ("BOOKED", "FRONT_DESK",
                                                                                      "Loose crown 2")
    text = json.dumps(export, ensure_ascii=False)
    assert "Nervous patient" not in text and str(neighbour) not in text
    assert [str(i) for i in tenant.staff_ids.values() if str(i) in text] == []  # who wrote them is not mine to copy

    exports = await events_since(tenant.id, before, action="export")
    assert [(e.patient_id, e.resource_id, e.outcome) for e in exports] == [(pid, pid, "allowed")]
    assert {e.patient_id for e in await events_since(tenant.id, before)} == {pid}
    assert await events_since(tenant.id, before, outcome="denied") == []

    for day in (3, 4):  # three of each: the copy costs the same
        await _journey(tenant, pid, schedule, day)
    start = len(sql_counter.statements)
    bigger = (await me.call(EXPORT)).data["myDataExport"]
    assert len(sql_counter.statements) - start == cost
    assert [len(bigger[k]) for k in ("visits", "carePlans", "appointments")] == [3, 3, 3]


async def test_my_copy_holds_the_contracts_i_am_party_to(tenant: Tenant, services: Services,
                                                        sql_counter: SqlCounter) -> None:
    """Found in review: the copy held none of the contracts the portal shows the patient (their terms, fees, clauses
    and items). Now each is there as the portal reads it, nobody else's, and the reads are on my file's trail."""
    me = await open_account(tenant)
    mine = await active_contract(tenant, services, patient_id=me.patient_id, clauses="Key under the mat")
    someone = await active_contract(tenant, services, clauses="Their dog bites")
    before = await mark(tenant.id)

    start = len(sql_counter.statements)
    reply = await me.call(EXPORT)
    cost = len(sql_counter.statements) - start

    assert reply.errors == [], reply.errors
    export = reply.data["myDataExport"]
    (contract,) = export["contracts"]
    assert (contract["id"], contract["status"], contract["currency"]) == (mine["id"], "ACTIVE", "CNY")
    (version,) = contract["versions"]
    assert (version["number"], version["periodTotal"], version["clauses"]) == (1, "480.00", "Key under the mat")
    assert [(i["quantity"], i["unitPrice"]) for i in version["items"]] == [(4, "120.00")]
    text = json.dumps(export, ensure_ascii=False)
    assert someone["id"] not in text and "Their dog bites" not in text
    assert [str(i) for i in tenant.staff_ids.values() if str(i) in text] == []
    reads = await events_since(tenant.id, before, resource_type="contract")
    assert {(e.resource_id, e.patient_id, e.outcome) for e in reads} == {(uuid.UUID(mine["id"]), me.patient_id,
                                                                         "allowed")}
    assert await events_since(tenant.id, before, outcome="denied") == []

    await active_contract(tenant, services, patient_id=me.patient_id)
    await active_contract(tenant, services, patient_id=me.patient_id)
    start = len(sql_counter.statements)
    bigger = (await me.call(EXPORT)).data["myDataExport"]
    assert len(sql_counter.statements) - start == cost and len(bigger["contracts"]) == 3


PARTNER_READ = "query($id: ID!) { patient(id: $id) { id } }"


@pytest.mark.parametrize("end", ["archived", "deceased"])
async def test_a_closed_file_ends_its_partners_grants(tenant: Tenant, end: str) -> None:
    """Found in review: a partner kept reading a file archived, or its patient's after the death, though the care it
    was granted the file for had ended. Closing the file ends its live grants (NOT_FOUND for the partner from then on),
    recorded as a change of the file by whoever closed it; closing another file leaves the grant alone."""
    partnership = await make_partnership(tenant, ALL_SCOPES)
    role, mutation = ("front_desk", ARCHIVE) if end == "archived" else ("nurse", DECEASED)
    assert (await tenant.call(role, mutation, id=str(partnership.other))).errors == []  # not the granted file
    assert (await partnership.call(PARTNER_READ, id=str(partnership.granted))).errors == []
    assert (await PartnerGrant.get(id=partnership.grant_id)).revoked_at is None
    seq = await mark(tenant.id)

    assert (await tenant.call(role, mutation, id=str(partnership.granted))).errors == []

    assert (await PartnerGrant.get(id=partnership.grant_id)).revoked_at is not None
    assert (await partnership.call(PARTNER_READ, id=str(partnership.granted))).codes == ["NOT_FOUND"]
    ended = await events_since(tenant.id, seq, reason="file_closed")
    assert [(e.action, e.resource_type, e.resource_id, e.patient_id, e.actor_id) for e in ended] == [
        ("update", "patient", partnership.granted, partnership.granted, tenant.staff_ids[role])]


@pytest.mark.parametrize("end", ["archived", "deceased"])
async def test_a_closed_file_cancels_its_planned_visits_and_takes_no_check_in(tenant: Tenant, end: str) -> None:
    """Found in review: an archive or a death cancelled the file's booked appointments but left its PLANNED visits
    (FHIR Encounter planned), which the desk could still check in and finish. They are cancelled with the file, by
    whoever closed it, and recorded; a visit under way stays (it is documented to its end); another file's planned
    visit stays planned. A visit created PLANNED and left so by a write under way meets the closed file when checked
    in: BAD_USER_INPUT, nothing written."""
    pid, other = await make_patient(tenant), await make_patient(tenant)
    planned_at = datetime.now(UTC).isoformat()  # arrived today, as planned
    visit = {"kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id), "plannedAt": planned_at}
    planned, under_way, others = [
        (await tenant.call("front_desk", VISIT_READ, input={"patientId": str(p), **visit}))
        .data["visitCreate"]["id"] for p in (pid, pid, other)]
    arrived = await tenant.call("nurse", MOVE_VISIT, id=under_way, to="ARRIVED")
    assert arrived.errors == [], arrived.errors
    role, mutation = ("front_desk", ARCHIVE) if end == "archived" else ("nurse", DECEASED)
    seq = await mark(tenant.id)

    assert (await tenant.call(role, mutation, id=str(pid))).errors == []

    statuses = {str(v.id): v.status for v in await Visit.filter(institution_id=tenant.id)}
    assert (statuses[planned], statuses[under_way], statuses[others]) == ("cancelled", "arrived", "planned")
    assert (await Visit.get(id=planned)).cancelled_at is not None
    cancelled = [(e.action, e.resource_type, str(e.resource_id), e.patient_id, e.actor_id, e.policy_rule)
                 for e in await events_since(tenant.id, seq) if e.resource_type == "visit"]
    assert cancelled == [("update", "visit", planned, pid, tenant.staff_ids[role], "file archived or deceased")]
    again = await tenant.call("front_desk", MOVE_VISIT, id=planned, to="ARRIVED")
    assert again.codes == ["BAD_USER_INPUT"] and again.errors[0]["extensions"]["reason"] == "illegal_transition"


async def test_a_closed_file_takes_no_new_grant(tenant: Tenant) -> None:
    """Grants end with the file (above), so none is made on a closed one: BAD_USER_INPUT at patientId, nothing
    written; the same grant on an open file is made (the consent stands for both)."""
    partnership = await make_partnership(tenant, ALL_SCOPES)
    assert (await consent(tenant, partnership.other, partnership.partner_id)).errors == []
    assert (await tenant.call("front_desk", ARCHIVE, id=str(partnership.granted))).errors == []
    before = await PartnerGrant.filter(institution_id=tenant.id).count()

    refused = await grant(tenant, partnership.partner_id, partnership.granted)
    made = await grant(tenant, partnership.partner_id, partnership.other)

    assert refused.codes == ["BAD_USER_INPUT"] and refused.errors[0]["extensions"]["field"] == "input.patientId"
    assert made.errors == [] and await PartnerGrant.filter(institution_id=tenant.id).count() == before + 1


# -- back out of the archive -----------------------------------------------------------------------------------------

SET_STATUS = """mutation($id: ID!, $status: PatientStatus!) {
  patientUpdate(id: $id, input: {status: $status}) { id status } }"""
UNARCHIVE = "mutation($id: ID!) { patientUnarchive(id: $id) { id status } }"
# each door back out of the archive: the role that may, the mutation and its variables besides the file
DOORS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "patientUpdate": ("front_desk", SET_STATUS, {"status": "ACTIVE"}),
    "patientUnarchive by the front desk": ("front_desk", UNARCHIVE, {}),
    "patientUnarchive by the department head": ("department_head", UNARCHIVE, {}),
}


async def _archived_with_a_call_and_a_grant(tenant: Tenant) -> tuple[Any, uuid.UUID]:
    """An archived file (the front desk's) whose open call the archive cancelled and whose partner grant it ended:
    the partnership and the task."""
    partnership = await make_partnership(tenant, ALL_SCOPES)
    task = await tenant.call("nurse", TASK, input={"patientId": str(partnership.granted),
                                                   "dueOn": (date.today() + timedelta(days=2)).isoformat()})
    assert task.errors == [], task.errors
    assert (await tenant.call("front_desk", ARCHIVE, id=str(partnership.granted))).errors == []
    return partnership, uuid.UUID(task.data["followUpTaskCreate"]["id"])


@pytest.mark.parametrize(("mutation", "variables"), [
    (SET_STATUS, {"status": "ACTIVE"}), (SET_STATUS, {"status": "DECEASED"}), (UNARCHIVE, {})],
    ids=["patientUpdate ACTIVE", "patientUpdate DECEASED", "patientUnarchive"])
async def test_only_a_role_that_archives_takes_a_file_out_of_the_archive(
        tenant: Tenant, mutation: str, variables: dict[str, Any]) -> None:
    """Found in review: patientUpdate(status: ACTIVE) on an archived file went through under the identity class, so a
    nurse (who may not archive) un-archived files; and ARCHIVED -> DECEASED -> ACTIVE was the same door in two steps.
    A status moved off an archived file, and patientUnarchive, need ``patient: archive``: FORBIDDEN, nothing written,
    the refusal on the trail."""
    partnership, _ = await _archived_with_a_call_and_a_grant(tenant)
    pid = partnership.granted
    before = await Patient.get(id=pid)
    seq = await mark(tenant.id)

    reply = await tenant.call("nurse", mutation, id=str(pid), **variables)

    assert reply.codes == ["FORBIDDEN"], reply.errors
    if mutation == SET_STATUS:
        assert reply.errors[0]["extensions"]["field"] == "input.status"
    assert list(reply.data.values()) == [None]
    after = await Patient.get(id=pid)
    assert (after.status, after.version) == ("archived", before.version)
    since = await events_since(tenant.id, seq, resource_type="patient")
    assert [(e.action, e.outcome, e.reason, e.resource_id, e.patient_id, e.actor_id) for e in since] == [
        ("update", "denied", "forbidden", pid, pid, tenant.staff_ids["nurse"])]


@pytest.mark.parametrize("door", DOORS)
async def test_a_role_that_archives_takes_the_file_back_and_nothing_comes_back_with_it(
        tenant: Tenant, door: str) -> None:
    """The allowed twin: the front desk or the department's head (``patient: archive``) set it ACTIVE again; what
    the archive cancelled or ended stays so (the call cancelled, the partner's grant ended: the partner still finds
    the file NOT_FOUND), as after a death corrected (docs/patients.md)."""
    role, mutation, variables = DOORS[door]
    partnership, task_id = await _archived_with_a_call_and_a_grant(tenant)
    pid = partnership.granted
    seq = await mark(tenant.id)

    reply = await tenant.call(role, mutation, id=str(pid), **variables)

    assert reply.errors == [], reply.errors
    assert list(reply.data.values()) == [{"id": str(pid), "status": "ACTIVE"}]
    assert (await Patient.get(id=pid)).status == "active"
    assert (await FollowUpTask.get(id=task_id)).status == "cancelled"
    assert (await PartnerGrant.get(id=partnership.grant_id)).revoked_at is not None
    assert (await partnership.call(PARTNER_READ, id=str(pid))).codes == ["NOT_FOUND"]
    written = await events_since(tenant.id, seq, action="update", resource_type="patient", patient_id=pid)
    assert [(e.outcome, e.fields_read, e.actor_id) for e in written] == [("allowed", "status", tenant.staff_ids[role])]


async def test_a_file_not_archived_is_not_unarchived(tenant: Tenant) -> None:
    """patientUnarchive is for archived files: an active or deceased one answers BAD_USER_INPUT (illegal_transition),
    nothing written, the refusal on the trail as the archive's of an archived file is (a denial of the update, reason
    illegal_transition, on the file; left by the review that added both, recorded for one only)."""
    active, deceased = await make_patient(tenant), await make_patient(tenant)
    assert (await tenant.call("nurse", DECEASED, id=str(deceased))).errors == []
    for pid in (active, deceased):
        before = await Patient.get(id=pid)
        seq = await mark(tenant.id)
        reply = await tenant.call("front_desk", UNARCHIVE, id=str(pid))
        assert reply.codes == ["BAD_USER_INPUT"], reply.errors
        assert reply.errors[0]["extensions"]["reason"] == "illegal_transition"
        after = await Patient.get(id=pid)
        assert (after.status, after.version) == (before.status, before.version)
        since = await events_since(tenant.id, seq, resource_type="patient")
        assert [(e.action, e.outcome, e.reason, e.resource_id, e.actor_id) for e in since] == [
            ("update", "denied", "illegal_transition", pid, tenant.staff_ids["front_desk"])]


MERGE = "mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) { merged { id } } }"


async def test_an_archived_file_is_not_archived_again(tenant: Tenant) -> None:
    """Found in review: patientArchive on a file archived already archived it again, without complaint (a new
    record of an archive, the version bumped, nothing to cancel). BAD_USER_INPUT at id, reason illegal_transition,
    as patientUnarchive refuses a file not archived; nothing written, the refusal on the trail (a denial of the
    archive, reason illegal_transition, on the file)."""
    pid = await make_patient(tenant)
    assert (await tenant.call("front_desk", ARCHIVE, id=str(pid))).errors == []
    before = await Patient.get(id=pid)
    seq = await mark(tenant.id)

    reply = await tenant.call("front_desk", ARCHIVE, id=str(pid))

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"] | {"field": "id", "reason": "illegal_transition"} == \
        reply.errors[0]["extensions"]
    assert reply.data == {"patientArchive": None}
    after = await Patient.get(id=pid)
    assert (after.status, after.version, after.updated_at) == ("archived", before.version, before.updated_at)
    since = await events_since(tenant.id, seq, resource_type="patient")
    assert [(e.action, e.outcome, e.reason, e.resource_id, e.patient_id, e.actor_id) for e in since] == [
        ("archive", "denied", "illegal_transition", pid, pid, tenant.staff_ids["front_desk"])]


async def test_a_deceased_file_is_archived(tenant: Tenant) -> None:
    """The allowed twin: a death's file is archived later (DECEASED -> ARCHIVED), once, on the trail."""
    pid = await make_patient(tenant)
    assert (await tenant.call("nurse", DECEASED, id=str(pid))).errors == []
    before = await Patient.get(id=pid)
    seq = await mark(tenant.id)

    reply = await tenant.call("front_desk", ARCHIVE, id=str(pid))

    assert reply.errors == [], reply.errors
    assert reply.data == {"patientArchive": {"id": str(pid), "status": "ARCHIVED"}}
    after = await Patient.get(id=pid)
    assert (after.status, after.version) == ("archived", before.version + 1)
    since = await events_since(tenant.id, seq, resource_type="patient", action="archive")
    assert [(e.outcome, e.resource_id, e.actor_id) for e in since] == [
        ("allowed", pid, tenant.staff_ids["front_desk"])]


async def test_a_merged_file_is_not_archived(tenant: Tenant) -> None:
    """A merged file answers an archive as it answers every write (docs/patients.md): CONFLICT at id, reason merged,
    nothing written, the refusal on the trail; never a second status over MERGED."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    assert (await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate))).errors == []
    before = await Patient.get(id=duplicate)
    seq = await mark(tenant.id)

    reply = await tenant.call("front_desk", ARCHIVE, id=str(duplicate))

    assert reply.codes == ["CONFLICT"], reply.errors
    assert reply.errors[0]["extensions"] | {"field": "id", "reason": "merged"} == reply.errors[0]["extensions"]
    after = await Patient.get(id=duplicate)
    assert (after.status, after.version) == ("merged", before.version)
    since = await events_since(tenant.id, seq, resource_type="patient")
    assert [(e.action, e.outcome, e.reason, e.resource_id) for e in since] == [
        ("archive", "denied", "merged", duplicate)]


async def test_a_nurse_still_corrects_a_death_recorded_by_mistake(tenant: Tenant) -> None:
    """The other door is left as it was: DECEASED back to ACTIVE (a death recorded by mistake) is the identity
    class's, the nurse's."""
    pid = await make_patient(tenant)
    assert (await tenant.call("nurse", DECEASED, id=str(pid))).errors == []

    reply = await tenant.call("nurse", SET_STATUS, id=str(pid), status="ACTIVE")

    assert reply.errors == [], reply.errors
    assert (await Patient.get(id=pid)).status == "active"
