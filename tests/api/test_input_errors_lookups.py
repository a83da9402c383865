"""Mutations that look a record up (a ticket, a patient, a visit, an invitation): the input's shape is checked
first, every problem reported at once with its path and reason, whether the record exists or not, and nothing
is written; a caller without the right is still refused before any of it, as before."""

from __future__ import annotations

import uuid

from audit.writer import SYSTEM_CHAIN
from models import EmergencyAccess, PatientAccount, PatientInvitation
from tests.api import test_break_glass as glass
from tests.api import test_ticket_access as tickets
from tests.api import test_visits as visits
from tests.api.test_input_errors import problems
from tests.factories import Tenant, make_patient
from tests.patients import activate, events_since, invite, mark, new_email, stored

TOO_LONG_NOTE = "x" * 4001


async def test_a_handover_reports_its_target_and_its_note_at_once(tenant: Tenant) -> None:
    tid = await tickets.open_ticket(tenant)
    before, writes = await tickets.state(tenant), await tenant.audit_count()
    both = {"toStaffId": tickets.sid(tenant, "nurse"), "toDepartmentId": tickets.dep(tenant, "B")}

    for ticket in (tid, str(uuid.uuid4())):  # an unknown ticket too: the shape comes first
        for targets in (both, {}):
            reply = await tenant.call("front_desk", tickets.HANDOVER, id=ticket, note=TOO_LONG_NOTE, **targets)
            assert problems(reply) == [("toStaffId", "invalid"), ("note", "too_long")]
            assert reply.data == {"ticketHandover": None}
    assert await tickets.state(tenant) == before
    assert await tenant.audit_count() == writes


async def test_a_handover_without_the_right_is_refused_before_its_shape(tenant: Tenant) -> None:
    tid = await tickets.open_ticket(tenant)
    before, mark_ = await tickets.state(tenant), await tenant.audit_count()

    reply = await tenant.call("doctor", tickets.HANDOVER, id=tid, note=TOO_LONG_NOTE)  # no ticket: assign

    assert (reply.codes, reply.data) == (["FORBIDDEN"], {"ticketHandover": None})
    assert await tickets.state(tenant) == before
    assert await tickets.denials_since(tenant, mark_) == [
        (tenant.staff_ids["doctor"], "update", "ticket", uuid.UUID(tid), "forbidden")]


async def test_a_transition_reports_its_note_and_resolution_at_once(tenant: Tenant) -> None:
    tid = await tickets.open_ticket(tenant)
    await tickets.ok(tenant, "front_desk", tickets.MOVE, id=tid, to="ACKNOWLEDGED")
    await tickets.ok(tenant, "front_desk", tickets.MOVE, id=tid, to="INVESTIGATING")
    before, writes = await tickets.state(tenant), await tenant.audit_count()

    for ticket in (tid, str(uuid.uuid4())):
        resolved = await tenant.call("front_desk", tickets.MOVE, id=ticket, to="RESOLVED", note="a\x07b",
                                     resolution="   ")
        assert problems(resolved) == [("note", "invalid"), ("resolution", "required")]
        too_long = await tenant.call("front_desk", tickets.MOVE, id=ticket, to="RESOLVED", note=TOO_LONG_NOTE,
                                     resolution="x" * 4001)
        assert problems(too_long) == [("note", "too_long"), ("resolution", "too_long")]
        feedback = await tenant.call("front_desk", tickets.MOVE, id=ticket, to="FEEDBACK_RECORDED",
                                     note=TOO_LONG_NOTE)
        assert problems(feedback) == [("to", "invalid"), ("note", "too_long")]
        assert "ticketRecordFeedback" in feedback.errors[0]["extensions"]["invalid"][0]["message"]
    assert await tickets.state(tenant) == before
    assert await tenant.audit_count() == writes


async def test_a_transition_without_the_right_is_refused_before_its_shape(tenant: Tenant) -> None:
    tid = await tickets.open_ticket(tenant)
    before, mark_ = await tickets.state(tenant), await tenant.audit_count()

    reply = await tenant.call("compliance_officer", tickets.MOVE, id=tid, to="RESOLVED", note=TOO_LONG_NOTE)

    assert (reply.codes, reply.data) == (["FORBIDDEN"], {"ticketTransition": None})
    assert await tickets.state(tenant) == before
    assert await tickets.denials_since(tenant, mark_) == [
        (tenant.staff_ids["compliance_officer"], "update", "ticket", uuid.UUID(tid), "forbidden")]


async def test_break_glass_reports_its_reason_and_hours_at_once(tenant: Tenant) -> None:
    pid = await glass.patient_of_b(tenant)
    writes = await tenant.audit_count()

    for patient in (str(pid), str(uuid.uuid4())):  # an unknown patient too: the shape comes first
        short = await tenant.call("nurse", glass.BREAK, id=patient, reason="because", hours=5)
        assert problems(short) == [("reason", "too_short"), ("hours", "out_of_range")]
        hidden = await tenant.call("nurse", glass.BREAK, id=patient, reason="\u202e" + glass.REASON, hours=0)
        assert problems(hidden) == [("reason", "invalid"), ("hours", "out_of_range")]
    assert await EmergencyAccess.filter(institution_id=tenant.id).count() == 0
    assert await tenant.audit_count() == writes
    assert (await tenant.call("nurse", glass.READ, id=str(pid))).codes == ["NOT_FOUND"]


async def test_break_glass_without_the_right_is_refused_before_its_shape(tenant: Tenant) -> None:
    pid = await glass.patient_of_b(tenant)

    reply = await tenant.call("front_desk", glass.BREAK, id=str(pid), reason="because", hours=5)

    assert reply.codes == ["FORBIDDEN"]
    assert await EmergencyAccess.filter(institution_id=tenant.id).count() == 0
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["front_desk"])
    assert [(e.action, e.reason) for e in denied] == [("break_glass", "forbidden")]


async def test_an_activation_reports_its_email_and_password_at_once_and_keeps_the_code(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    system, before, state = await mark(), await mark(tenant.id), await stored(tenant)

    real = await activate(tenant, code, "li na@example", "short")
    unknown = await activate(tenant, "cli_" + "A" * 43, "li na@example", "short")

    # the same answer whatever the code: the form's shape says nothing about it
    assert problems(real) == problems(unknown) == [("email", "invalid"), ("password", "invalid")]
    assert real.body == unknown.body and real.data == {"patientAccountActivate": None}
    assert await stored(tenant) == state
    assert await events_since(tenant.id, before) == []
    assert await events_since(SYSTEM_CHAIN, system) == []
    assert (await activate(tenant, code, new_email())).errors == []  # the code was not spent
    assert await PatientAccount.filter(patient_id=pid, is_active=True).count() == 1


async def test_a_well_formed_activation_with_a_bad_code_is_still_one_uniform_refusal(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    assert (await activate(tenant, code, new_email())).errors == []
    system = await mark()

    used = await activate(tenant, code, new_email())
    unknown = await activate(tenant, "cli_" + "A" * 43, new_email())

    assert used.codes == unknown.codes == ["BAD_USER_INPUT"]
    assert used.errors[0]["extensions"] == unknown.errors[0]["extensions"] == {"code": "BAD_USER_INPUT",
                                                                              "field": "code", "reason": "invalid"}
    assert used.errors[0]["message"] == unknown.errors[0]["message"]
    assert [e.reason for e in await events_since(SYSTEM_CHAIN, system)] == ["bad_invitation"] * 2
    assert await PatientInvitation.filter(institution_id=tenant.id, used_at=None).count() == 0


async def test_a_visit_code_reports_every_problem_before_the_visit_is_looked_up(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    vid = (await visits.a_visit(tenant, pid, role="nurse"))["id"]
    before, writes = await visits.snapshot(tenant), await tenant.audit_count()

    for visit in (vid, str(uuid.uuid4())):  # an unknown visit too: the shape comes first
        condition = await tenant.call("nurse", visits.ADD_CODE, id=visit, input={
            "kind": "CONDITION", "code": "XYZ.99", "status": "PENDING", "text": "x" * 501})
        assert problems(condition) == [("input.code", "invalid"), ("input.status", "invalid"),
                                       ("input.text", "too_long")]
        procedure = await tenant.call("nurse", visits.ADD_CODE, id=visit, input={
            "kind": "PROCEDURE", "code": "not a code!", "text": "a\x00b"})
        assert problems(procedure) == [("input.code", "invalid"), ("input.text", "invalid")]
    assert await visits.snapshot(tenant) == before
    assert await tenant.audit_count() == writes


async def test_a_visit_code_without_clinical_rights_is_still_refused(tenant: Tenant) -> None:
    """The front desk updates visits but writes no clinical data: a well-formed code is refused and the refusal
    recorded, as before; the visit's codes are untouched."""
    pid = await make_patient(tenant)
    vid = (await visits.a_visit(tenant, pid))["id"]
    before, mark_ = await visits.snapshot(tenant), await tenant.audit_count()

    reply = await tenant.call("front_desk", visits.ADD_CODE, id=vid, input={"kind": "CONDITION", "code": "K08.1"})

    assert (reply.codes, reply.data) == (["FORBIDDEN"], {"visitCodeAdd": None})
    assert await visits.snapshot(tenant) == before
    assert await tickets.denials_since(tenant, mark_) == [
        (tenant.staff_ids["front_desk"], "update", "visit", None, "forbidden")]
