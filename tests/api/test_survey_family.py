"""Family respondents through the API: a questionnaire answered by family is addressed to one of the patient's
contacts (who may receive information and has a phone; one marked for emergencies first, then the earliest
added), its message and reminder go to that contact's phone through the consent-gated outbox and tell nothing of
the patient's health, the contact answers through the link, a patient with no such contact is not invited (and
nothing goes to the patient instead), staff see which contact was invited under the contact read rules, and the
portal does not offer a family invitation to the patient."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.messages import Outgoing
from models import (
    AuditEvent,
    Communication,
    Patient,
    Questionnaire,
    QuestionnaireResponse,
    SurveyInvitation,
    SurveySettings,
)
from resolvers import communication, survey
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.daytime import daytime_from
from tests.factories import Tenant, make_patient
from tests.patients import open_account
from tests.surveys import (
    GOOD,
    family_member,
    finished_visit,
    link_of,
    questionnaire,
    texted,
    trigger,
)

PATIENT_INVITATIONS = """query($pid: ID!, $first: Int! = 20) {
  patientSurveyInvitations(patientId: $pid, first: $first) {
    nodes { id status cause invitedContact { id name relationship } } } }"""
MY_INVITATIONS = "{ mySurveyInvitations { nodes { id status invitedContact { id } } } }"
ANSWER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswer(invitationId: $id, answers: $answers) { responseId } }"""
INVITE = """mutation($qid: ID!, $audience: CampaignAudienceInput) {
  surveyInvite(questionnaireId: $qid, audience: $audience) { invited refused fatigued inactive noContact } }"""
BY_LINK = "query($t: String!) { surveyByLink(token: $t) { questionnaire { id respondent } } }"
BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId } }"""
TEMPLATE_SET = """mutation($body: String!) { messageTemplateSet(input: {cause: SURVEY_INVITATION, channel: ANY,
  language: ZH_CN, subject: "问卷", body: $body}) { cause } }"""
CONTACT_PHONE = "13600004444"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


class Collect:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


async def family_invited(tenant: Tenant, *, reminder: int | None = None,
                         **patient: Any) -> tuple[uuid.UUID, uuid.UUID, SurveyInvitation]:
    """A patient of department A with one contact who may be asked, invited to a family questionnaire by a
    finished visit (a trigger on it made first, once)."""
    await family_questionnaire(tenant, reminder)
    pid = await texted(tenant, **patient)
    contact = await family_member(tenant, pid, "Zhao Family", phone=CONTACT_PHONE)
    await finished_visit(tenant, pid)
    row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    return pid, contact, row


async def family_questionnaire(tenant: Tenant, reminder: int | None = None) -> Questionnaire:
    """A family questionnaire with a trigger on finished visits (sent at once), made once per institution."""
    found = await Questionnaire.filter(institution_id=tenant.id, respondent="family", status="active").first()
    if found is not None:
        return found
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0, reminderAfterDays=reminder)
    return q


async def deliver(services: Services, collect: Collect, row: SurveyInvitation) -> None:
    """Send the invitation's message once it is due (past the quiet hours, should it fall into them), in the
    daytime whatever the hour the test runs at: scheduled at 08:02, a message due since 07:57 (the visit ended
    five minutes ago) keeps that due time, and a minute after it is still in the quiet hours."""
    message = await Communication.get(key=f"survey:{row.id}:invitation")
    await communication.deliver_due(services, {"sms": collect, "email": collect},
                                    now=daytime_from(max(row.send_at, message.due_at)))


async def denials(tenant: Tenant) -> list[tuple[str, str]]:
    return [(e.resource_type, e.reason) for e in await tenant.audit_events(outcome="denied")]


# -- addressing ------------------------------------------------------------------------------------------


async def test_a_family_invitation_is_addressed_to_the_eligible_contact(tenant: Tenant) -> None:
    await family_questionnaire(tenant)
    pid = await texted(tenant)
    await family_member(tenant, pid, "No phone", phone=None, emergency=True)  # cannot be reached
    await family_member(tenant, pid, "Not told", informed=False, emergency=True)  # the patient did not allow it
    await family_member(tenant, pid, "Earliest", phone="13600001111")
    chosen = await family_member(tenant, pid, "Emergency", phone="13600002222", emergency=True)
    await family_member(tenant, pid, "Later emergency", phone="13600003333", emergency=True)
    visit_id = await finished_visit(tenant, pid)
    [row] = await SurveyInvitation.filter(institution_id=tenant.id, patient_id=pid)
    assert (row.contact_id, row.visit_id, row.status) == (chosen, uuid.UUID(visit_id), "requested")
    [message] = await Communication.filter(institution_id=tenant.id, cause="survey_invitation")
    assert (message.key, message.patient_id, message.contact_id, message.status) == (
        f"survey:{row.id}:invitation", pid, chosen, "queued")
    [created] = await tenant.audit_events(resource_type="survey_invitation", action="create")
    assert (created.resource_id, created.patient_id, "contact" in created.fields_read) == (row.id, pid, True)

    other = await texted(tenant)  # no emergency contact: the earliest added who may be asked
    first = await family_member(tenant, other, "First", phone="13600004444")
    await family_member(tenant, other, "Second", phone="13600005555")
    await finished_visit(tenant, other)
    assert (await SurveyInvitation.get(institution_id=tenant.id, patient_id=other)).contact_id == first


async def test_the_message_goes_to_the_contacts_phone_and_tells_nothing_of_the_patient(
        tenant: Tenant, services: Services) -> None:
    ok(await tenant.call("admin", TEMPLATE_SET, body="{patient_name}您好，{department_name}请您填写问卷。"),
       "messageTemplateSet")
    pid, contact, row = await family_invited(tenant, fullName="Qian Patient")
    collect = Collect()
    await deliver(services, collect, row)
    [message] = [m for m in collect.sent if m.institution_id == tenant.id]
    token = link_of(services, row)
    assert (message.channel, message.address) == ("sms", "+86" + CONTACT_PHONE)
    assert message.body.startswith("Zhao Family您好，请您填写问卷。")  # greets the contact; no department
    assert f"/survey#token={token}" in message.body
    assert "Qian Patient" not in message.body and tenant.departments["A"].name not in message.body
    stored = await Communication.get(key=f"survey:{row.id}:invitation")
    assert (stored.status, stored.channel, stored.contact_id) == ("sent", "sms", contact)
    assert "Qian Patient" not in str(stored.variables) and token not in str(stored.variables)
    [disclosure] = await tenant.audit_events(action="disclose", resource_id=stored.id)
    # greeted by name, and handed the survey's link (which answers as whoever holds it); the department left out
    assert (disclosure.patient_id, disclosure.fields_read) == (pid, "contact.name,contact.phone,survey_invitation.link")


async def test_the_default_message_greets_the_contact(tenant: Tenant, services: Services) -> None:
    _, _, row = await family_invited(tenant, fullName="Sun Patient")
    collect = Collect()
    await deliver(services, collect, row)
    [message] = [m for m in collect.sent if m.institution_id == tenant.id]
    assert message.address == "+86" + CONTACT_PHONE and message.body.startswith("Zhao Family，")
    assert "Sun Patient" not in message.body


async def test_the_gate_still_decides_on_the_patients_consent(tenant: Tenant) -> None:
    _, contact, row = await family_invited(tenant, consent=False)
    assert (row.contact_id, row.status) == (contact, "refused")
    message = await Communication.get(key=f"survey:{row.id}:invitation")
    assert (message.contact_id, message.status, message.refusal) == (contact, "refused", "no_consent")
    by_mail = await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"], contactPurposes=["CARE"],
                                 email="only.mail@example.org")
    await family_member(tenant, by_mail, "Texted", phone="13600006666")
    await finished_visit(tenant, by_mail)  # the patient allowed e-mail only: a contact has no e-mail
    later = await SurveyInvitation.get(institution_id=tenant.id, patient_id=by_mail)
    refusal = await Communication.get(key=f"survey:{later.id}:invitation")
    assert (later.status, refusal.refusal) == ("refused", "no_address")
    assert not await Communication.filter(institution_id=tenant.id, contact_id__isnull=True,
                                          cause="survey_invitation").exists()


async def test_the_reminder_goes_to_the_contact(tenant: Tenant) -> None:
    pid, contact, row = await family_invited(tenant, reminder=3)
    assert await survey.remind_unanswered(row.send_at + timedelta(days=3, minutes=1)) >= 1  # every institution's
    reminder = await Communication.get(key=f"survey:{row.id}:reminder")
    assert (reminder.patient_id, reminder.contact_id, reminder.status) == (pid, contact, "queued")
    assert reminder.variables == {"patient_name": "Zhao Family", "department_name": ""}


# -- no contact who may be asked ------------------------------------------------------------------------------


async def test_no_eligible_contact_no_invitation_and_nothing_to_the_patient(tenant: Tenant) -> None:
    await family_questionnaire(tenant)
    alone = await texted(tenant)
    untold = await texted(tenant)
    await family_member(tenant, untold, "Not told", informed=False)
    unreachable = await texted(tenant)
    await family_member(tenant, unreachable, "No phone", phone=None, emergency=True)
    for pid in (alone, untold, unreachable):
        await finished_visit(tenant, pid)
    assert not await SurveyInvitation.filter(institution_id=tenant.id).exists()
    assert not await Communication.filter(institution_id=tenant.id).exists()
    assert not await tenant.audit_events(resource_type="survey_invitation", action="create")


async def test_a_family_campaign_counts_patients_with_no_contact(tenant: Tenant) -> None:
    q = await questionnaire(tenant, respondent="family")
    asked = await texted(tenant)
    contact = await family_member(tenant, asked, "Asked")
    await texted(tenant)  # no contact
    fatigued = await texted(tenant)
    await family_member(tenant, fatigued, "Recently")
    patient_q = await questionnaire(tenant)  # the cap counts per patient: the patient's own invitation counts
    await SurveyInvitation.create(institution_id=tenant.id, questionnaire_id=patient_q.id, cause_key="earlier",
                                  patient_id=fatigued, send_at=datetime.now(UTC) - timedelta(days=2),
                                  expires_at=datetime.now(UTC) + timedelta(days=5))
    result = ok(await tenant.call("department_head", INVITE, qid=str(q.id)), "surveyInvite")
    assert result == {"invited": 1, "refused": 0, "fatigued": 1, "inactive": 0, "noContact": 1}
    [row] = await SurveyInvitation.filter(institution_id=tenant.id, cause_key__startswith="campaign:")
    assert (row.patient_id, row.contact_id) == (asked, contact)
    assert await Communication.filter(institution_id=tenant.id).values_list("contact_id", flat=True) == [contact]


async def test_a_family_campaign_is_refused_outside_the_heads_departments(tenant: Tenant) -> None:
    q = await questionnaire(tenant, respondent="family")
    in_b = await texted(tenant, "B")
    await family_member(tenant, in_b, "In B")
    reply = await tenant.call("department_head", INVITE, qid=str(q.id),
                              audience={"departmentId": str(tenant.departments["B"].id)})
    assert reply.codes == ["FORBIDDEN"]
    assert (await tenant.call("nurse", INVITE, qid=str(q.id))).codes == ["FORBIDDEN"]
    assert not await SurveyInvitation.filter(institution_id=tenant.id).exists()
    assert not await Communication.filter(institution_id=tenant.id).exists()
    assert await denials(tenant) == [("survey_invitation", "other_department"), ("survey_invitation", "forbidden")]


async def test_a_patient_questionnaire_still_goes_to_the_patient(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, delayHours=0)
    pid = await texted(tenant, preferredChannel="EMAIL")
    await family_member(tenant, pid, "Could be asked", emergency=True)
    await finished_visit(tenant, pid)
    row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    assert row.contact_id is None
    message = await Communication.get(key=f"survey:{row.id}:invitation")
    assert message.contact_id is None
    collect = Collect()
    await deliver(services, collect, row)
    [sent] = [m for m in collect.sent if m.institution_id == tenant.id]
    patient = await Patient.get(id=pid)
    assert (sent.channel, sent.address) == ("email", patient.email)
    assert sent.body.startswith(f"{patient.full_name}，")


# -- answering -----------------------------------------------------------------------------------------------


async def test_the_contact_answers_through_the_link(tenant: Tenant, services: Services) -> None:
    pid, _, row = await family_invited(tenant)
    token = link_of(services, row)
    shown = ok(await tenant.call(None, BY_LINK, t=token), "surveyByLink")
    assert shown == {"questionnaire": {"id": str(row.questionnaire_id), "respondent": "FAMILY"}}
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert (response.patient_id, response.invitation_id) == (pid, row.id)
    assert (await SurveyInvitation.get(id=row.id)).answered is True
    again = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD)
    assert again.codes == ["BAD_USER_INPUT"] and again.errors[0]["extensions"]["reason"] == "answered"
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1


# -- reading -------------------------------------------------------------------------------------------------


async def test_staff_see_which_contact_was_invited(tenant: Tenant) -> None:
    pid, contact, row = await family_invited(tenant)
    for role in ("nurse", "front_desk", "department_head"):
        nodes = ok(await tenant.call(role, PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]
        assert nodes == [{"id": str(row.id), "status": "REQUESTED", "cause": "VISIT", "invitedContact": {
            "id": str(contact), "name": "Zhao Family", "relationship": "CHILD"}}]
    reads = await AuditEvent.filter(institution_id=tenant.id, actor_id=tenant.staff_ids["nurse"], action="read",
                                    resource_type="patient", patient_id=pid)
    assert reads and "contact" in reads[-1].field_classes  # read under the contact rules, noted on the file


async def test_invitations_and_their_contact_are_not_found_outside_reach(tenant: Tenant, other_tenant: Tenant) -> None:
    q = await questionnaire(tenant, respondent="family")
    in_b = await texted(tenant, "B")
    await family_member(tenant, in_b, "In B")
    ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")
    assert await SurveyInvitation.filter(institution_id=tenant.id, patient_id=in_b).count() == 1
    for caller, role in ((tenant, "nurse"), (other_tenant, "front_desk")):  # department A's nurse; another tenant
        reply = await caller.call(role, PATIENT_INVITATIONS, pid=str(in_b))
        assert reply.codes == ["NOT_FOUND"] and reply.data is None
    for role in ("doctor", "support_agent"):
        assert (await tenant.call(role, PATIENT_INVITATIONS, pid=str(in_b))).codes == ["FORBIDDEN"]
    assert [(e.resource_type, e.reason) for e in await tenant.audit_events(outcome="denied")] == [
        ("patient", "not_found"), ("survey_invitation", "forbidden"), ("survey_invitation", "forbidden")]
    assert [(e.resource_type, e.reason) for e in await other_tenant.audit_events(outcome="denied")] == [
        ("patient", "not_found")]
    contact_reads = await AuditEvent.filter(institution_id=tenant.id, action="read", resource_type="patient",
                                            patient_id=in_b)
    assert [e for e in contact_reads if "contact" in e.field_classes] == []


async def test_the_portal_does_not_offer_a_family_invitation_to_the_patient(tenant: Tenant,
                                                                            services: Services) -> None:
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0)
    pid, _, family_row = await family_invited(tenant)
    own_q = await questionnaire(tenant)
    ok(await tenant.call("admin", INVITE, qid=str(own_q.id)), "surveyInvite")
    own_row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid, contact_id__isnull=True)
    user = await open_account(tenant, pid)
    mine = ok(await user.call(MY_INVITATIONS), "mySurveyInvitations")["nodes"]
    assert mine == [{"id": str(own_row.id), "status": "REQUESTED", "invitedContact": None}]
    staff = ok(await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]
    assert [n["id"] for n in staff] == [str(own_row.id), str(family_row.id)]


async def test_the_staff_list_shows_a_patient_their_own_invitations_only(tenant: Tenant, services: Services) -> None:
    """A patient may read their invitations through patientSurveyInvitations too (survey_invitation: read, their own
    file): it answers as the portal's list, without the one addressed to their family. Found in review: it listed
    the family's invitation, its contact and whether the family had answered."""
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0)
    pid, _, _family_row = await family_invited(tenant)
    own_q = await questionnaire(tenant)
    ok(await tenant.call("admin", INVITE, qid=str(own_q.id)), "surveyInvite")
    own_row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid, contact_id__isnull=True)
    user = await open_account(tenant, pid)

    listed = ok(await user.call(PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]

    assert listed == [{"id": str(own_row.id), "status": "REQUESTED", "cause": "CAMPAIGN", "invitedContact": None}]


async def test_the_patient_cannot_answer_a_family_invitation_in_the_portal(tenant: Tenant) -> None:
    """Found in review: the portal looked the invitation up by patient only, so a patient who learnt the id of
    the one addressed to their contact could answer it as the contact. It is answered as a missing one."""
    pid, _, family_row = await family_invited(tenant)
    user = await open_account(tenant, pid)
    reply = await user.call(ANSWER, id=str(family_row.id), answers=GOOD)
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 0
    assert not (await SurveyInvitation.get(id=family_row.id)).answered


@pytest.mark.parametrize("size", [2, 5])
async def test_a_page_of_family_invitations_costs_the_same_whatever_its_size(
        tenant: Tenant, sql_counter: SqlCounter, size: int) -> None:
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0)
    q = await questionnaire(tenant, respondent="family")
    pid = await texted(tenant)
    for n in range(6):
        await family_member(tenant, pid, f"Member {n}", emergency=n == 0)
    for _ in range(6):
        ok(await tenant.call("admin", INVITE, qid=str(q.id)), "surveyInvite")

    async def cost(first: int) -> int:
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(pid), first=first),
                   "patientSurveyInvitations")["nodes"]
        assert len(nodes) == first and all(n["invitedContact"]["name"] == "Member 0" for n in nodes)
        return len(sql_counter.statements) - start

    assert await cost(size) == await cost(1)


async def test_the_portal_does_not_show_a_patient_what_their_family_answered(tenant: Tenant,
                                                                            services: Services) -> None:
    """Found in review: the family's answer is filed under the patient, and the patient's reach (their list, one
    response, their data export) showed it, free text included. Staff still see it."""
    pid, _contact, row = await family_invited(tenant)
    reply = await tenant.call(None, BY_LINK_ANSWER, t=link_of(services, row), answers=GOOD)
    assert reply.errors == [], reply.errors
    family_response = await QuestionnaireResponse.get(invitation_id=row.id)
    user = await open_account(tenant, pid)
    listed = await user.call("{ questionnaireResponses { nodes { id } } }")
    one = await user.call("query($id: ID!) { questionnaireResponse(id: $id) { id } }", id=str(family_response.id))
    export = await user.call("{ myDataExport }")
    assert listed.data["questionnaireResponses"]["nodes"] == []
    assert one.codes == ["NOT_FOUND"]
    assert export.data["myDataExport"]["surveyResponses"] == []
    staff = await tenant.call("department_head", "query($id: ID!) { questionnaireResponse(id: $id) { id } }",
                              id=str(family_response.id))
    assert staff.data["questionnaireResponse"] == {"id": str(family_response.id)}, staff.errors
