"""A survey campaign that invited both files of one person, merged: the person is asked once (found in review: both
invitations moved to the survivor and both went out, two links to one questionnaire for one campaign, each
answerable). The merge cancels the survivor's extra campaign invitation (one answered is kept, else the survivor's
own), recorded as an update by the merge; its queued message is dropped when it falls due. Invitations of other
causes (a visit, a ticket) stand: each is about its own visit or ticket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from models import AuditEvent, Communication, SurveyInvitation
from resolvers import communication
from resolvers.context import Services
from tests.api.test_patient_merge import merge
from tests.api.test_survey_invitations import INVITE, ok
from tests.app.test_message_outbox import Recorder, senders
from tests.daytime import daytime_from
from tests.factories import Tenant
from tests.surveys import questionnaire, reachable


async def campaign_invitations(tenant: Tenant, patient_id: uuid.UUID) -> dict[str, str]:
    """The file's campaign invitations: their cause's file (whose they were) and status."""
    rows = await SurveyInvitation.filter(institution_id=tenant.id, patient_id=patient_id,
                                         cause_key__startswith="campaign:").order_by("id")
    return {row.cause_key.rsplit(":", 1)[-1]: row.status for row in rows}


async def test_a_survey_campaign_that_invited_both_files_asks_the_person_once(
        tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    survivor, duplicate = await reachable(tenant), await reachable(tenant)
    assert ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")["invited"] == 2

    ok(await merge(tenant, survivor, duplicate), "patientMerge")

    assert await campaign_invitations(tenant, survivor) == {str(survivor): "requested", str(duplicate): "cancelled"}
    cancelled = await SurveyInvitation.get(cause_key__endswith=str(duplicate))
    [record] = await AuditEvent.filter(institution_id=tenant.id, resource_type="survey_invitation",
                                       action="update", resource_id=cancelled.id)
    assert (record.patient_id, record.reason, record.outcome) == (survivor, "merge", "allowed")
    recorder = Recorder()
    await communication.deliver_due(services, senders(recorder), now=daytime_from(datetime.now(UTC)))
    sent = await Communication.filter(institution_id=tenant.id, patient_id=survivor, cause="survey_invitation",
                                      status="sent").count()
    handed = [m for m in recorder.sent if m.institution_id == tenant.id]  # the shared database's others too
    assert (sent, len(handed)) == (1, 1)


async def test_an_answered_campaign_invitation_is_the_one_kept(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    survivor, duplicate = await reachable(tenant), await reachable(tenant)
    ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")
    await SurveyInvitation.filter(cause_key__endswith=str(duplicate)).update(answered=True, status="answered")

    ok(await merge(tenant, survivor, duplicate), "patientMerge")

    assert await campaign_invitations(tenant, survivor) == {str(survivor): "cancelled", str(duplicate): "answered"}


async def test_both_invitations_answered_stay_and_no_merge_changes_nothing(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    survivor, duplicate = await reachable(tenant), await reachable(tenant)
    ok(await tenant.call("admin", INVITE, qid=str(q.id),
                         audience={"departmentId": str(tenant.departments["A"].id)}), "surveyInvite")
    both_answered = await SurveyInvitation.filter(institution_id=tenant.id).values_list("id", flat=True)
    await SurveyInvitation.filter(id__in=list(both_answered)).update(answered=True, status="answered")
    other = await reachable(tenant)

    ok(await merge(tenant, survivor, duplicate), "patientMerge")

    assert await campaign_invitations(tenant, survivor) == {str(survivor): "answered", str(duplicate): "answered"}
    assert await campaign_invitations(tenant, other) == {}
    assert not await AuditEvent.filter(institution_id=tenant.id, resource_type="survey_invitation",
                                       action="update").exists()


async def test_a_second_merge_leaves_the_first_merges_cancellation_as_it_was(tenant: Tenant) -> None:
    """Three files of one person, all invited by one campaign, merged one after the other into the first: each merge
    cancels the invitation it brought and records that, once. Found in review: the second merge cancelled again the
    invitation the first had cancelled (its version moved on) and recorded a second cancellation of it, by a merge
    that changed nothing of it."""
    q = await questionnaire(tenant)
    survivor, first, second = await reachable(tenant), await reachable(tenant), await reachable(tenant)
    assert ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")["invited"] == 3
    ok(await merge(tenant, survivor, first), "patientMerge")
    cancelled_first = await SurveyInvitation.get(cause_key__endswith=str(first))

    ok(await merge(tenant, survivor, second), "patientMerge")

    assert await campaign_invitations(tenant, survivor) == {
        str(survivor): "requested", str(first): "cancelled", str(second): "cancelled"}
    assert (await SurveyInvitation.get(id=cancelled_first.id)).version == cancelled_first.version
    for file in (first, second):
        invitation = await SurveyInvitation.get(cause_key__endswith=str(file))
        assert await AuditEvent.filter(institution_id=tenant.id, resource_type="survey_invitation", action="update",
                                       resource_id=invitation.id).count() == 1, file


async def test_the_invitation_kept_is_one_whose_message_may_go_not_one_the_gate_refused(tenant: Tenant) -> None:
    """The survivor's own invitation was refused by the gate (that file had not agreed to messages), the duplicate's
    was not: the duplicate's is kept and the refused one cancelled. Found in review: the survivor's own was kept
    because it was the survivor's, the other cancelled, and the person was asked by neither."""
    q = await questionnaire(tenant)
    survivor, duplicate = await reachable(tenant, consent=False), await reachable(tenant)
    invited = ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")
    assert (invited["invited"], invited["refused"]) == (2, 1), invited
    assert await campaign_invitations(tenant, survivor) == {str(survivor): "refused"}

    ok(await merge(tenant, survivor, duplicate), "patientMerge")

    assert await campaign_invitations(tenant, survivor) == {str(survivor): "cancelled", str(duplicate): "requested"}
