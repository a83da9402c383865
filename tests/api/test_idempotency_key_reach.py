"""A change sent again with its ``Idempotency-Key`` after what it was written on left the caller's reach (a role
revoked, a move to another department, a ticket handed on, every role revoked) is answered as a new request is, never
CONFLICT ``already_done`` naming the record written where the caller no longer reaches (resolvers/idempotency_key.py).
The twins: still in reach, the resend is told done as before."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from models import Attachment, ImprovementItem, Ticket
from tests.api.test_attachments import PNG
from tests.api.test_idempotency_key import CONTACT, contact_input, contacts_of, keyed, last_seq
from tests.api.test_improvement_items import item
from tests.api.test_ticket_access import HANDOVER, UPDATE, caller_ticket, dep, open_ticket, state
from tests.api.test_ticket_portal import REPORT as PARTNER_REPORT
from tests.factories import Response, Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, GRANT_REVOKE, make_partnership

ASSIGN_ROLE = "mutation($s: ID!, $r: Role!) { roleAssign(staffId: $s, role: $r) { id } }"
IMPROVEMENT = "mutation($input: ImprovementCreateInput!) { improvementCreate(input: $input) { id } }"
REVOKE = "mutation($s: ID!, $r: Role!) { roleRevoke(staffId: $s, role: $r) { id } }"
MOVE_STAFF = "mutation($s: ID!, $i: StaffUpdateInput!) { staffUpdate(id: $s, input: $i) { id } }"
MOVE_PATIENT = "mutation($id: ID!, $i: PatientUpdateInput!) { patientUpdate(id: $id, input: $i) { id } }"


def without_ids(reply: Response) -> dict[str, Any]:
    return {"data": reply.body.get("data"), "errors": [{**e, "extensions": e.get("extensions")}
                                                       for e in reply.errors or []]}


async def _written(tenant: Tenant, patient: uuid.UUID, key: str) -> None:
    first = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())
    assert not first.errors, first.body


async def _move_nurse_to_b(tenant: Tenant) -> None:
    moved = await tenant.call("admin", MOVE_STAFF, s=str(tenant.staff_ids["nurse"]),
                              i={"departmentIds": [str(tenant.departments["B"].id)]})
    assert not moved.errors, moved.body


async def test_a_resend_after_the_callers_role_was_revoked_is_refused_as_a_new_request(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    key = str(uuid.uuid4())
    await _written(tenant, patient, key)
    revoked = await tenant.call("admin", REVOKE, s=str(tenant.staff_ids["nurse"]), r="NURSE")
    assert not revoked.errors, revoked.body
    mark = await last_seq(tenant)

    again = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    assert again.codes == ["FORBIDDEN"], again.body
    assert "resourceId" not in again.errors[0]["extensions"]
    new = await keyed(tenant, "nurse", CONTACT, str(uuid.uuid4()), p=str(patient), i=contact_input())
    assert without_ids(again) == without_ids(new)
    assert await contacts_of(patient) == 1
    refusals = await tenant.audit_events(seq__gt=mark)
    assert [(r.outcome, r.actor_id) for r in refusals] == [("denied", tenant.staff_ids["nurse"])] * 2, refusals
    assert all(r.reason != "already_done" for r in refusals)


async def test_a_resend_after_the_caller_moved_department_answers_as_a_missing_file(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    key = str(uuid.uuid4())
    await _written(tenant, patient, key)
    await _move_nurse_to_b(tenant)
    mark = await last_seq(tenant)

    again = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    missing = await keyed(tenant, "nurse", CONTACT, str(uuid.uuid4()), p=str(uuid.uuid4()), i=contact_input())
    assert again.codes == ["NOT_FOUND"], again.body
    assert without_ids(again) == without_ids(missing)
    assert await contacts_of(patient) == 1
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, refusal.actor_id) == ("denied", "not_found", tenant.staff_ids["nurse"])


async def test_a_resend_on_a_file_still_in_reach_after_a_move_is_told_done(tenant: Tenant) -> None:
    """The twin: the file moved with the nurse, so the resend is refused as done, naming the contact written."""
    patient = await make_patient(tenant)
    key = str(uuid.uuid4())
    first = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())
    assert not first.errors, first.body
    await _move_nurse_to_b(tenant)
    moved = await tenant.call("front_desk", MOVE_PATIENT, id=str(patient),
                              i={"departmentId": str(tenant.departments["B"].id)})
    assert not moved.errors, moved.body

    again = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    assert again.codes == ["CONFLICT"], again.body
    assert again.errors[0]["extensions"]["resourceId"] == first.data["contactCreate"]["id"]
    assert await contacts_of(patient) == 1


async def _handed_over(tenant: Tenant, tid: str) -> None:
    handed = await tenant.call("front_desk", HANDOVER, id=tid, toDepartmentId=dep(tenant, "B"))
    assert not handed.errors, handed.body


async def test_a_ticket_change_sent_again_after_the_ticket_was_handed_over_answers_as_a_missing_ticket(
        tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    key = str(uuid.uuid4())
    first = await keyed(tenant, "front_desk", UPDATE, key, id=tid, input={"level": 1})
    assert not first.errors, first.body
    await _handed_over(tenant, tid)
    before, mark = await state(tenant), await last_seq(tenant)

    again = await keyed(tenant, "front_desk", UPDATE, key, id=tid, input={"level": 1})

    missing = await keyed(tenant, "front_desk", UPDATE, str(uuid.uuid4()), id=str(uuid.uuid4()),
                          input={"level": 1})
    assert again.codes == ["NOT_FOUND"], again.body
    assert without_ids(again) == without_ids(missing)
    assert await state(tenant) == before
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, str(refusal.resource_id)) == ("denied", "not_found", tid)


async def _upload(tenant: Tenant, ticket: str, key: str = "upload-1") -> httpx.Response:
    """The front desk's upload of a picture to ``ticket`` with the Idempotency-Key ``key``."""
    return await tenant.client.post(f"/tickets/{ticket}/attachments", content=PNG, headers={
        "content-type": "image/png", "x-filename": "scan.png", "idempotency-key": key,
        "authorization": f"Bearer {tenant.tokens['front_desk']}"})


async def test_an_upload_sent_again_after_the_ticket_was_handed_over_answers_as_a_missing_ticket(
        tenant: Tenant) -> None:
    tid = await open_ticket(tenant)
    first = await _upload(tenant, tid)
    assert first.status_code == 201, first.text
    await _handed_over(tenant, tid)
    mark = await last_seq(tenant)

    again = await _upload(tenant, tid)

    missing = await _upload(tenant, str(uuid.uuid4()), "upload-2")
    assert (again.status_code, again.json()) == (missing.status_code, missing.json()), again.text
    assert again.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert first.json()["id"] not in again.text
    assert await Attachment.filter(ticket_id=tid).count() == 1
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, str(refusal.resource_id)) == ("denied", "not_found", tid)


async def test_an_upload_sent_again_on_a_ticket_still_in_reach_is_told_done(tenant: Tenant) -> None:
    """The twin: the front desk still owns the ticket."""
    tid = await open_ticket(tenant)
    first = await _upload(tenant, tid)
    assert first.status_code == 201, first.text

    again = await _upload(tenant, tid)

    assert again.status_code == 409, again.text
    assert again.json()["errors"][0]["extensions"]["resourceId"] == first.json()["id"]
    assert await Attachment.filter(ticket_id=tid).count() == 1


async def test_a_resend_after_a_move_is_answered_as_new_for_a_nurse_who_also_works_in_finance(tenant: Tenant) -> None:
    """Finance finds every file but adds no contact: the reach that counts is the nurse's, which left the file."""
    patient = await make_patient(tenant)
    key = str(uuid.uuid4())
    await _written(tenant, patient, key)
    granted = await tenant.call("admin", ASSIGN_ROLE, s=str(tenant.staff_ids["nurse"]), r="FINANCE")
    assert not granted.errors, granted.body
    await _move_nurse_to_b(tenant)
    mark = await last_seq(tenant)

    again = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    new = await keyed(tenant, "nurse", CONTACT, str(uuid.uuid4()), p=str(patient), i=contact_input())
    assert again.codes == ["FORBIDDEN"], again.body
    assert without_ids(again) == without_ids(new)
    assert await contacts_of(patient) == 1
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, refusal.patient_id) == ("denied", "forbidden", patient)


async def test_an_upload_sent_again_after_the_uploaders_role_was_revoked_is_refused_as_a_new_one(
        tenant: Tenant) -> None:
    """A caller's ticket on no file: the front desk still owns it, but holds no role that reads tickets."""
    tid = await caller_ticket(tenant, "front_desk", "A")
    first = await _upload(tenant, tid)
    assert first.status_code == 201, first.text
    revoked = await tenant.call("admin", REVOKE, s=str(tenant.staff_ids["front_desk"]), r="FRONT_DESK")
    assert not revoked.errors, revoked.body
    mark = await last_seq(tenant)

    again = await _upload(tenant, tid)

    new = await _upload(tenant, tid, "upload-2")
    assert (again.status_code, again.json()) == (new.status_code, new.json()), again.text
    assert again.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Attachment.filter(ticket_id=tid).count() == 1
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, refusal.actor_id) == ("denied", "forbidden",
                                                                    tenant.staff_ids["front_desk"])


async def test_a_change_on_no_file_sent_again_after_every_role_was_revoked_is_refused_as_a_new_one(
        tenant: Tenant) -> None:
    """An improvement item names no patient: an account holding no role any more is refused it as a new one."""
    key = str(uuid.uuid4())
    first = await keyed(tenant, "support_agent", IMPROVEMENT, key, input=item(tenant))
    assert not first.errors, first.body
    revoked = await tenant.call("admin", REVOKE, s=str(tenant.staff_ids["support_agent"]), r="SUPPORT_AGENT")
    assert not revoked.errors, revoked.body
    mark = await last_seq(tenant)

    again = await keyed(tenant, "support_agent", IMPROVEMENT, key, input=item(tenant))

    new = await keyed(tenant, "support_agent", IMPROVEMENT, str(uuid.uuid4()), input=item(tenant))
    assert again.codes == ["FORBIDDEN"], again.body
    assert without_ids(again) == without_ids(new)
    assert await ImprovementItem.filter(institution_id=tenant.id).count() == 1
    refusal = (await tenant.audit_events(seq__gt=mark))[0]
    assert (refusal.outcome, refusal.reason, refusal.actor_id) == ("denied", "forbidden",
                                                                    tenant.staff_ids["support_agent"])


async def test_a_partners_report_sent_again_after_its_grant_was_revoked_answers_as_a_missing_file(
        tenant: Tenant) -> None:
    reporter = await make_partnership(tenant, [*ALL_SCOPES, "ticket:create"])
    report = {"patientId": str(reporter.granted), "category": "COMPLAINT", "subject": "Wound bleeding"}
    first = await gql(tenant.client, PARTNER_REPORT, {"input": report}, reporter.token, {"idempotency-key": "k-p"})
    assert first.errors == [], first.body
    revoked = await tenant.call("nurse", GRANT_REVOKE, id=str(reporter.grant_id))
    assert not revoked.errors, revoked.body

    again = await gql(tenant.client, PARTNER_REPORT, {"input": report}, reporter.token, {"idempotency-key": "k-p"})

    new = await gql(tenant.client, PARTNER_REPORT, {"input": report}, reporter.token, {"idempotency-key": "k-p2"})
    assert again.codes == ["NOT_FOUND"], again.body
    assert without_ids(again) == without_ids(new)
    assert await Ticket.filter(patient_id=reporter.granted).count() == 1
    assert [e.reason for e in await reporter.events(outcome="denied")] == ["not_found", "not_found"]
