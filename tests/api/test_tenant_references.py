"""Tenant isolation of references: records one institution names by id, and rows a report or a list resolves by a
stored id, are the caller's institution's only; another institution's look missing, and nothing of it shows.

Each test has two institutions (``tenant``, ``other_tenant``: A and B), and compares what A sees with what B holds.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models import AuditEvent, Contract, ImprovementItem, QuestionnaireResponse, Schedule, Staff, Ticket
from resolvers.context import Services
from tests import surveys
from tests.api.test_patient_merge import merge
from tests.conftest import BACKEND
from tests.contracts import draft_input, item_input, make_item
from tests.factories import Response, Tenant, make_patient
from tests.locks import another_transaction, until_waiting
from tests.patients import make_contact, make_partner, open_account, patient_login

PATIENT_ISSUE = "mutation($pid: ID!) { patientPasswordResetIssue(patientId: $pid) { code } }"
COMPLETE = "mutation($code: String!, $new: String!) { passwordResetComplete(code: $code, newPassword: $new) }"
REPORT = "query($id: ID!) { patientAccessReport(patientId: $id) { actorKind actorId name roles denied } }"
NEW_PASSWORD = "a brand new long passphrase"
LOG = "{ myAccessLog(first: 100) { nodes { action refused accessor { kind name roles } } } }"


def names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str(row.get("name") or row.get("accessor", {}).get("name")) for row in rows)


# -- who acted, as the trail's readers see them -------------------------------------------------------------------


async def test_a_reset_code_tried_by_another_institutions_staff_names_none_of_them(
        tenant: Tenant, other_tenant: Tenant) -> None:
    """A's patient's used reset code, sent again by someone signed in at B, is refused on A's trail (the code is
    A's). A's access report and the patient's own access log must not resolve that actor to B's staff member's name
    and roles: they are B's, and nobody of A's (found here: ``audit_event.who`` looked staff up by id alone)."""
    me = await open_account(tenant)
    code = (await tenant.call("front_desk", PATIENT_ISSUE, pid=str(me.patient_id))).data[
        "patientPasswordResetIssue"]["code"]
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []

    reply = await other_tenant.call("admin", COMPLETE, code=code, new="another long passphrase here")

    assert reply.codes == ["BAD_USER_INPUT"]
    b_admin = other_tenant.staff_ids["admin"]
    b_name = f"admin {other_tenant.institution.name.split()[-1]}"
    report = await tenant.call("compliance_officer", REPORT, id=str(me.patient_id))
    assert report.errors == []
    assert b_name not in str(report.body) and b_name not in names(report.data["patientAccessReport"])
    signed_in = await patient_login(tenant, me.email, NEW_PASSWORD)  # the reset ended the patient's sessions
    me = replace(me, token=signed_in.data["patientLogin"]["token"])
    log = await me.call(LOG)
    assert log.errors == []
    assert b_name not in str(log.body)
    # the refusal is on A's trail (the code is A's), naming no actor of B
    refused = await AuditEvent.filter(institution_id=tenant.id, resource_type="password_reset", outcome="denied")
    assert [(e.reason, e.actor_id) for e in refused] == [("bad_reset_code", None)]
    assert not await AuditEvent.filter(institution_id=tenant.id, actor_id=b_admin).exists()


# -- a survey link answered by someone signed in elsewhere ----------------------------------------------------------

BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId followUp } }"""


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_a_link_answered_during_a_merge_by_someone_signed_in_elsewhere_leaves_their_trail_alone(
        tenant: Tenant, other_tenant: Tenant, services: Services) -> None:
    """A survey link is nobody's sign-in: answered by a browser that holds a session of institution B, while A merges
    the invited file, the refusal of the merged file (the answer then goes on to the survivor) was recorded through
    that session, as B's admin's denial on B's trail naming A's patient (``access.merge_refusal_recorded`` records for
    any caller with a principal). The race made with row locks: the merge holds the file and waits for the
    invitation's row, the answer waits for the file."""
    q = await surveys.questionnaire(tenant)
    duplicate, invitation, token = await surveys.invited(tenant, services, q)
    survivor = await make_patient(tenant)
    b_events = await other_tenant.audit_count()

    async with another_transaction() as other:  # the invitation's row held: the merge waits there, the file locked
        await other.execute("SELECT id FROM survey_invitation WHERE id = $1 FOR UPDATE", invitation.id)
        merging = asyncio.ensure_future(merge(tenant, survivor, duplicate))
        await until_waiting([merging])
        answering = asyncio.ensure_future(other_tenant.call("admin", BY_LINK_ANSWER, t=token, answers=surveys.GOOD))
        await until_waiting([merging, answering], sessions=2)
    merged, answered = await asyncio.wait_for(asyncio.gather(merging, answering), 30)

    assert merged.errors == [] and answered.errors == [], (merged.errors, answered.errors)
    assert await QuestionnaireResponse.filter(patient_id=survivor).count() == 1
    on_b = await AuditEvent.filter(institution_id=other_tenant.id, patient_id=duplicate).values_list(
        "action", "resource_type", "outcome", "reason")
    assert on_b == []
    assert await other_tenant.audit_count() == b_events


# -- references nested in inputs ------------------------------------------------------------------------------------

TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
IMPROVEMENT_CREATE = "mutation($input: ImprovementCreateInput!) { improvementCreate(input: $input) { id } }"
STAFF_CREATE = "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id } }"
SCHEDULE_CREATE = "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }"
CONTRACT_CREATE = "mutation($input: ContractCreateInput!) { contractCreate(input: $input) { id } }"
WEEKDAYS = [{"weekday": d, "sessions": [{"start": "08:00", "end": "12:00"}]} for d in range(1, 6)]


def without_place(reply: Response) -> dict[str, Any]:
    return {"data": reply.data,
            "errors": [{k: v for k, v in e.items() if k not in ("path", "locations")} for e in reply.errors]}


async def rows_written() -> dict[str, int]:
    return {"ticket": await Ticket.all().count(), "improvement": await ImprovementItem.all().count(),
            "staff": await Staff.all().count(), "schedule": await Schedule.all().count(),
            "contract": await Contract.all().count()}


async def test_records_of_another_institution_named_inside_an_input_answer_as_missing_ones(
        tenant: Tenant, other_tenant: Tenant) -> None:
    """The control for the lookups above: a department, a staff member, a contact, a ticket, a partner and a catalogue
    item of B named inside A's inputs (lists too) are answered exactly as a random id is, and write nothing."""
    a_patient = await make_patient(tenant)
    b_patient = await make_patient(other_tenant)
    b_contact = await make_contact(other_tenant, b_patient, "B contact")
    b_ticket = (await other_tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "FRONT_DESK", "category": "ENQUIRY", "subject": "B's question", "patientId": str(b_patient)})).data[
        "ticketCreate"]["id"]
    b_partner, b_item = await make_partner(other_tenant), await make_item(other_tenant)
    a_item = await make_item(tenant)
    a_department, b_department = tenant.departments["A"].id, other_tenant.departments["A"].id
    b_nurse = other_tenant.staff_ids["nurse"]
    deadline = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    cases: list[tuple[str, str, Any]] = [
        ("front_desk", TICKET_CREATE, lambda ref: {"input": {
            "channel": "FRONT_DESK", "category": "ENQUIRY", "subject": "Question", "patientId": str(a_patient),
            "contactId": ref}}),
        ("front_desk", TICKET_CREATE, lambda ref: {"input": {
            "channel": "FRONT_DESK", "category": "ENQUIRY", "subject": "Question", "callerName": "A caller",
            "departmentId": ref}}),
        ("support_agent", IMPROVEMENT_CREATE, lambda ref: {"input": {
            "problem": "Long waits", "departmentId": str(a_department), "deadline": deadline, "ticketIds": [ref]}}),
        ("admin", STAFF_CREATE, lambda ref: {"input": {
            "email": "new.colleague@example.com", "name": "New colleague", "password": "a long enough passphrase",
            "roles": ["NURSE"], "departmentIds": [str(a_department), ref]}}),
        ("admin", SCHEDULE_CREATE, lambda ref: {"input": {
            "name": "Clinic", "kind": "CLINICIAN", "departmentId": str(a_department), "week": WEEKDAYS,
            "slotMinutes": 30, "capacity": 1, "clinicianId": ref}}),
        ("front_desk", CONTRACT_CREATE, lambda ref: {"input": draft_input(a_patient, [item_input(a_item)],
                                                                          guarantorContactId=ref)}),
        ("front_desk", CONTRACT_CREATE, lambda ref: {"input": draft_input(a_patient, [item_input(a_item)],
                                                                          partnerId=ref)}),
        ("front_desk", CONTRACT_CREATE, lambda ref: {"input": draft_input(a_patient, [item_input(uuid.UUID(ref))])}),
    ]
    theirs = [str(b_contact), str(b_department), b_ticket, str(b_department), str(b_nurse), str(b_contact),
              str(b_partner), str(b_item)]
    fields = ["input.contactId", "input.departmentId", "input.ticketIds", "input.departmentIds", "input.clinicianId",
              "input.guarantorContactId", "input.partnerId", "input.items[0].serviceItemId"]
    before = await rows_written()
    for (role, query, variables), their_id, field in zip(cases, theirs, fields, strict=True):
        ours = await tenant.call(role, query, **variables(their_id))
        missing = await tenant.call(role, query, **variables(str(uuid.uuid4())))
        assert ours.codes and ours.codes[0] in ("NOT_FOUND", "BAD_USER_INPUT"), (query, ours.errors)
        assert without_place(ours) == without_place(missing), query
        assert ours.errors[0]["extensions"]["field"] == field, ours.errors
    assert await rows_written() == before
