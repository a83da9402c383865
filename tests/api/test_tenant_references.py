"""Tenant isolation of references: records one institution names by id, and rows a report or a list resolves by a
stored id, are the caller's institution's only; another institution's look missing, and nothing of it shows.

Each test has two institutions (``tenant``, ``other_tenant``: A and B), and compares what A sees with what B holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from models import AuditEvent, QuestionnaireResponse
from resolvers.context import Services
from tests import surveys
from tests.api.test_patient_merge import merge
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient
from tests.locks import another_transaction, until_waiting
from tests.patients import open_account, patient_login

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
