"""Review of the seventeenth session's changes: each test failed on a defect they introduced or left, now fixed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from typing import Any

import pytest

from audit.events import Action
from models import Appointment, Communication, Patient, QuestionnaireResponse
from resolvers import access
from resolvers import appointment as appointments
from resolvers.context import Services
from tests import surveys
from tests.api.test_appointments import CANCEL, CHECK_IN, TOMORROW_9, book, make_schedule
from tests.api.test_patient_merge import merge, merged_refusals
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient
from tests.locks import held, pause_after
from tests.patients import open_account

BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId followUp } }"""
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { anonymous responseId followUp } }"""
RESPONSE_COUNT = "query($id: ID!) { questionnaire(id: $id) { id anonymous responseCount } }"
PREFERENCES = """mutation($input: ContactPreferencesInput!) { myContactPreferencesUpdate(input: $input) {
  consent } }"""


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def merged_right_after_found(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, survivor: uuid.UUID,
                             duplicate: uuid.UUID, action: Action) -> None:
    """The race made sequential, as test_patient_merge does it: the file is merged once the write has found it
    (with ``action``) and before it writes."""
    found = access.find_patient

    async def merged_once_found(ctx: Any, patient_id: Any, *, action: Action, **kwargs: Any) -> Any:
        view = await found(ctx, patient_id, action=action, **kwargs)
        if patient_id == duplicate and action is wanted:
            monkeypatch.setattr(access, "find_patient", found)
            assert (await merge(tenant, survivor, duplicate)).errors == []
        return view

    wanted = action
    monkeypatch.setattr(access, "find_patient", merged_once_found)


# -- the patient-merge lock: writers that still do not lock the file -------------------------------------------


async def test_a_survey_answer_entered_while_the_file_is_merged_is_not_left_on_the_merged_file(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """surveyResponseEnter (an identified questionnaire) writes a response naming the patient of the invitation
    it read before the merge; it takes no file lock, so a merge in between leaves the response on the merged
    file (out of the survivor's survey history), as cdc862e fixed for contacts, visits, tickets..."""
    q = await surveys.questionnaire(tenant)
    duplicate, invitation, _ = await surveys.invited(tenant, services, q)
    survivor = await make_patient(tenant)
    merged_right_after_found(monkeypatch, tenant, survivor, duplicate, Action.CREATE)

    reply = await tenant.call("nurse", ENTER, id=str(invitation.id), answers=surveys.GOOD, source="PHONE")

    assert (await Patient.get(id=duplicate)).status == "merged"
    on_merged = await QuestionnaireResponse.filter(patient_id=duplicate).count()
    assert on_merged == 0, f"a response was written on the merged file ({reply.errors or 'no error answered'})"
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "merged"
    assert await merged_refusals(tenant, duplicate) == 1


async def test_a_consent_withdrawal_during_a_merge_is_not_lost(tenant: Tenant,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """myContactPreferencesUpdate locks the patient's row but never looks at its status once locked: a patient
    withdrawing consent while the front desk merges the file writes the withdrawal on the merged duplicate, after
    the merge computed the survivor's consent from both files; the survivor goes on being contacted."""
    user = await open_account(tenant)
    duplicate = user.patient_id
    survivor = await make_patient(tenant)
    await Patient.filter(id__in=[survivor, duplicate]).update(contact_consent=True)
    merged_right_after_found(monkeypatch, tenant, survivor, duplicate, Action.UPDATE)

    reply = await user.call(PREFERENCES, input={"consent": False})

    assert (await Patient.get(id=duplicate)).status == "merged"
    survivor_consent = (await Patient.get(id=survivor)).contact_consent
    assert reply.errors or survivor_consent is False, (
        "the withdrawal was answered as done, written on the merged file, and the survivor may still be contacted")
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "merged"
    assert (await Patient.get(id=duplicate)).contact_consent is True  # nothing written on the merged file
    assert await merged_refusals(tenant, duplicate) == 1


# -- anonymous questionnaires: when did an answer come? ----------------------------------------------------------


async def test_an_anonymous_questionnaires_response_count_does_not_tell_when_an_answer_came(
        tenant: Tenant, services: Services) -> None:
    """cc5088c/bbeef8f keep an anonymous questionnaire's live month out of the report and the list, since read
    twice they told when an answer came; Questionnaire.responseCount (admins, heads, nurses, front desk) still
    counts every response the moment it is given."""
    q = await surveys.questionnaire(tenant, anonymous=True)
    await surveys.trigger(tenant, q, delayHours=0)
    _, _, first = await surveys.invited(tenant, services, q)
    _, _, second = await surveys.invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=first, answers=surveys.GOOD), "surveyAnswerByLink")
    before = {role: ok(await tenant.call(role, RESPONSE_COUNT, id=str(q.id)), "questionnaire")
              for role in ("department_head", "admin", "nurse", "front_desk")}

    ok(await tenant.call(None, BY_LINK_ANSWER, t=second, answers=surveys.GOOD), "surveyAnswerByLink")

    after = {role: ok(await tenant.call(role, RESPONSE_COUNT, id=str(q.id)), "questionnaire")
             for role in ("department_head", "admin", "nurse", "front_desk")}
    assert after == before, (before, after)


# -- the merge lock's order on PostgreSQL: check-in against a cancel of the same appointment ---------------------


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks: PostgreSQL")
async def test_a_check_in_and_a_cancel_at_once_do_not_deadlock(tenant: Tenant,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """appointmentCheckIn locks the patient's row before the appointment's; a cancel updates the appointment's row
    first, then queues its message, a row referencing the patient (FOR KEY SHARE on it). With the file locked FOR
    UPDATE the two deadlocked (INTERNAL_SERVER_ERROR); FOR NO KEY UPDATE lets the cancel through, and the
    check-in then finds the appointment cancelled (CONFLICT)."""
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    await Patient.filter(id=pid).update(contact_consent=True)
    made = await book(tenant, schedule, pid)
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC))
    locked = pause_after(monkeypatch, access, "lock_file")  # the check-in's; the cancel's goes on
    messages = await Communication.filter(patient_id=pid).count()
    async with held(tenant.call("front_desk", CHECK_IN, id=made["id"]), locked) as checking_in:
        cancelling = asyncio.create_task(tenant.call("nurse", CANCEL, id=made["id"]))
        await asyncio.wait_for(asyncio.wait([cancelling]), 10)  # the cancel goes through while the file is held
        locked.release()
        arrived, cancelled = await asyncio.wait_for(asyncio.gather(checking_in, cancelling), 30)

    codes = sorted(arrived.codes + cancelled.codes)
    assert "INTERNAL_SERVER_ERROR" not in codes, (arrived.errors, cancelled.errors)
    assert codes == ["CONFLICT"], (arrived.errors, cancelled.errors, messages,
                                   (await Appointment.get(id=made["id"])).status)


async def test_a_link_answer_while_the_file_is_merged_lands_on_the_survivor(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """surveyAnswerByLink (no sign-in) of an identified questionnaire locks the file it read; a merge between that
    read and the write refused it, and recording the refusal asked the anonymous caller's institution: an
    UNAUTHENTICATED error instead. The answer now reads its invitation again (the survivor's now) and is kept."""
    from resolvers import questionnaire_response as responses

    q = await surveys.questionnaire(tenant)
    duplicate, _, token = await surveys.invited(tenant, services, q)
    survivor = await make_patient(tenant)
    linked = responses._linked

    async def merged_once_read(*args: Any) -> Any:
        found = await linked(*args)
        monkeypatch.setattr(responses, "_linked", linked)
        assert (await merge(tenant, survivor, duplicate)).errors == []
        return found

    monkeypatch.setattr(responses, "_linked", merged_once_read)

    reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=surveys.GOOD)

    assert reply.errors == [], reply.errors
    assert await QuestionnaireResponse.filter(patient_id=duplicate).count() == 0
    assert await QuestionnaireResponse.filter(patient_id=survivor).count() == 1
