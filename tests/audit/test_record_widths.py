"""An audit record's values fit its columns, or the operation is refused before anything is written or posted
(found in review: a whole patient page read more field names than ``fields_read``'s 500 characters held, and a
``patientUpdate`` of all five field classes joined a 209-character rule; on PostgreSQL with the chain head busy
the event went to the inbox and was set aside at sealing, after the answer had gone out). Migration 0033."""

from __future__ import annotations

import uuid

import pytest

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from models import AuditEvent, Patient
from resolvers.context import Services
from tests.audit.test_inbox import head_held, rejected, report, require_postgres, waiting
from tests.factories import Tenant, make_patient
from tests.patients import make_contact

VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
CODE = "mutation($id: ID!, $input: VisitCodeInput!) { visitCodeAdd(visitId: $id, input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
CALL = "mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }"
CLAIM = "mutation($id: ID!) { followUpTaskClaim(id: $id) { id } }"
ATTEMPT = ("mutation($id: ID!, $input: FollowUpAttemptInput!) "
           "{ followUpAttemptRecord(taskId: $id, input: $input) { id } }")
TASKS = "query($id: ID!) { patient(id: $id) { openFollowUpTasks { id } } }"
# Every sealed field a nurse reads on one page: more than 500 characters of field names.
WHOLE_PAGE = """query($id: ID!) { patient(id: $id) {
  id fullName nationalId address phone altPhone medicalHistory diagnoses allergies currentMedication specialNeeds
  contacts { id phone notes }
  recentVisits(count: 20) { id reason summary outcome treatmentPlan medicationGuidance rehabilitation precautions
                            feedback internalNote codes { code text } }
  flags { kind detail }
  carePlans { id title goals activities { description } }
  openFollowUpTasks { id notes attempts { note } }
  recentCommunications(count: 20) { id subject body note }
} }"""
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
# One change in each of the five field classes: five rules in the write's record, over 200 characters.
EVERY_CLASS = {"occupation": "Teacher", "address": "1 Road", "allergies": "Penicillin", "specialNeeds": "Wheelchair",
               "tags": ["quiet"]}


async def furnished(tenant: Tenant) -> uuid.UUID:
    """A patient with something in every section of the page."""
    pid = await make_patient(tenant, phone="13800138000")
    await make_contact(tenant, pid, "Mum")
    visit = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "summary": "Visit",
        "departmentId": str(tenant.departments["A"].id), "startedAt": "2026-11-01T09:00:00+08:00",
        "endedAt": "2026-11-01T10:00:00+08:00"})
    replies = [visit,
               await tenant.call("nurse", CODE, id=visit.data["visitCreate"]["id"],
                                 input={"kind": "CONDITION", "code": "K02.1", "text": "Caries"}),
               await tenant.call("nurse", FLAG, input={"patientId": str(pid), "kind": "ALLERGY", "detail": "Nuts"}),
               await tenant.call("nurse", PLAN, input={"patientId": str(pid), "title": "Plan",
                                                       "activities": [{"kind": "CALL", "afterDays": 1}]}),
               await tenant.call("nurse", CALL, input={"patientId": str(pid), "direction": "INBOUND",
                                                       "note": "Called"})]
    assert all(r.errors == [] for r in replies), [r.errors for r in replies]
    task = (await tenant.call("nurse", TASKS, id=str(pid))).data["patient"]["openFollowUpTasks"][0]["id"]
    assert (await tenant.call("nurse", CLAIM, id=task)).errors == []
    attempt = await tenant.call("nurse", ATTEMPT, id=task,
                                input={"channel": "PHONE", "outcome": "NO_ANSWER", "note": "Rang"})
    assert attempt.errors == [], attempt.errors
    return pid


async def page_read(tenant: Tenant, pid: uuid.UUID) -> AuditEvent:
    [read] = [e for e in await tenant.audit_events(action="read", patient_id=pid, actor_id=tenant.staff_ids["nurse"])
              if "visit.summary" in e.fields_read]
    return read


async def test_a_whole_patient_page_is_answered_and_its_read_recorded_whole(tenant: Tenant) -> None:
    pid = await furnished(tenant)
    reply = await tenant.call("nurse", WHOLE_PAGE, id=str(pid))
    assert reply.errors == [], reply.errors
    read = await page_read(tenant, pid)
    assert len(read.fields_read) > 500  # what the column held at most before 0033
    assert {"allergies", "contact.phone", "visit.internal_note"} <= set(read.fields_read.split(",")), read.fields_read


async def test_a_whole_page_answered_while_the_head_is_busy_is_sealed_into_the_chain(
        tenant: Tenant, database: str, services: Services) -> None:
    require_postgres()
    pid = await furnished(tenant)
    async with head_held(database, tenant.id):
        reply = await tenant.call("nurse", WHOLE_PAGE, id=str(pid))
        assert await waiting(tenant.id) > 0  # posted, as the head was busy
    assert reply.errors == [], reply.errors
    await writer.seal(tenant.id)
    assert await rejected(tenant.id) == []
    assert await page_read(tenant, pid)
    assert (await report(tenant.id, services)).ok


async def test_a_change_in_every_class_is_written_and_its_record_names_every_rule(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", UPDATE, id=str(pid), input=EVERY_CLASS)
    assert reply.errors == [], reply.errors
    [update] = await tenant.audit_events(action="update", patient_id=pid)
    assert len(update.policy_rule) > 200
    assert (await Patient.get(id=pid)).occupation == "Teacher"


async def test_a_change_in_every_class_with_the_head_busy_keeps_its_record(
        tenant: Tenant, database: str, services: Services) -> None:
    require_postgres()
    pid = await make_patient(tenant)
    async with head_held(database, tenant.id):
        reply = await tenant.call("nurse", UPDATE, id=str(pid), input=EVERY_CLASS)
    assert reply.errors == [], reply.errors
    await writer.seal(tenant.id)
    assert await rejected(tenant.id) == []
    assert len(await tenant.audit_events(action="update", patient_id=pid)) == 1
    assert (await report(tenant.id, services)).ok


def too_long(tenant: Tenant) -> AuditRecord:
    return AuditRecord(tenant.id, Actor("staff", tenant.staff_ids["nurse"]), Action.READ, "patient", Outcome.DENIED,
                       reason="x" * 65)  # reason holds 64


async def test_a_record_that_does_not_fit_is_refused_before_anything_is_written(tenant: Tenant) -> None:
    before = await AuditEvent.filter(institution_id=tenant.id).count()
    with pytest.raises(writer.RecordTooLong, match="reason"):
        await writer.append([too_long(tenant)])
    assert await AuditEvent.filter(institution_id=tenant.id).count() == before


async def test_a_record_that_does_not_fit_is_refused_before_it_is_posted(tenant: Tenant, database: str,
                                                                         services: Services) -> None:
    require_postgres()
    async with head_held(database, tenant.id):
        with pytest.raises(writer.RecordTooLong, match="reason"):
            await writer.append([too_long(tenant)])
        assert await waiting(tenant.id) == 0
    await writer.seal(tenant.id)
    assert await rejected(tenant.id) == []
    assert (await report(tenant.id, services)).ok
