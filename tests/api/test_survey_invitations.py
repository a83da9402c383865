"""Distributing surveys through the API: settings and triggers (and their refusals), invitations made by finished
visits, closed tickets and completed follow-up calls (exactly one per cause, also when reported twice or at
once), the fatigue cap, the invitation's message through the outbox and the consent gate with its link, the
reminder sweep, one-off survey campaigns, and who reads invitations."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from tortoise.transactions import in_transaction

from core import tokens
from core.messages import Outgoing
from models import (
    AuditEvent,
    Communication,
    FollowUpTask,
    Patient,
    SurveyInvitation,
    SurveySettings,
    SurveyTrigger,
    Ticket,
    Visit,
)
from resolvers import communication, survey
from resolvers.context import Context, Services
from tests.daytime import ZONE, daytime_from
from tests.factories import Tenant, make_patient
from tests.patients import open_account
from tests.surveys import (
    finished_visit,
    invited,
    link_of,
    questionnaire,
    reachable,
    trigger,
)

SETTINGS = "{ surveySettings { fatigueDays satisfactionTarget minCell linkValidDays version } }"
SETTINGS_UPDATE = """mutation($input: SurveySettingsInput!, $version: Int) {
  surveySettingsUpdate(input: $input, version: $version) { fatigueDays minCell linkValidDays version } }"""
TRIGGERS = """query($all: Boolean!) { surveyTriggers(includeInactive: $all) { nodes { id event active version } } }"""
TRIGGER_CREATE = """mutation($input: SurveyTriggerCreateInput!) { surveyTriggerCreate(input: $input) { id } }"""
TRIGGER_UPDATE = """mutation($id: ID!, $input: SurveyTriggerUpdateInput!, $version: Int) {
  surveyTriggerUpdate(id: $id, input: $input, version: $version) { id delayHours visitKind version } }"""
TRIGGER_DEACTIVATE = """mutation($id: ID!, $version: Int) {
  surveyTriggerDeactivate(id: $id, version: $version) { id active version } }"""
INVITE = """mutation($qid: ID!, $audience: CampaignAudienceInput) {
  surveyInvite(questionnaireId: $qid, audience: $audience) { invited refused fatigued inactive } }"""
PATIENT_INVITATIONS = """query($pid: ID!) { patientSurveyInvitations(patientId: $pid) {
  nodes { id status answered cause visitId questionnaire { id anonymous } sendAt expiresAt } } }"""
MY_INVITATIONS = "{ mySurveyInvitations { nodes { id status answered anonymous questionnaire { title { zhCN } } } } }"
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
TICKET_MOVE = """mutation($id: ID!, $to: TicketStatus!, $resolution: String) {
  ticketTransition(id: $id, to: $to, resolution: $resolution) { id status } }"""
FEEDBACK = "mutation($id: ID!) { ticketRecordFeedback(id: $id, feedback: \"Fine now\") { id status } }"
TASK_CREATE = """mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id version } }"""
TASK_COMPLETE = """mutation($id: ID!, $input: FollowUpOutcomeInput!) {
  followUpTaskComplete(id: $id, input: $input) { id status } }"""
VISIT_MOVE = """mutation($id: ID!, $to: VisitStatus!, $version: Int) {
  visitTransition(id: $id, to: $to, version: $version) { id status } }"""
ANSWER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswer(invitationId: $id, answers: $answers) { anonymous responseId } }"""


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def denials(tenant: Tenant) -> list[tuple[str, str]]:
    return [(e.resource_type, e.reason) for e in await tenant.audit_events(outcome="denied")]


async def invitations(tenant: Tenant, **filters: Any) -> list[SurveyInvitation]:
    return list(await SurveyInvitation.filter(institution_id=tenant.id, **filters).order_by("created_at"))


# -- settings ----------------------------------------------------------------------------------------------


async def test_settings_are_the_defaults_until_saved_then_compare_and_set(tenant: Tenant) -> None:
    assert ok(await tenant.call("department_head", SETTINGS), "surveySettings") == {
        "fatigueDays": 30, "satisfactionTarget": 92, "minCell": 5, "linkValidDays": 14, "version": 0}
    saved = ok(await tenant.call("admin", SETTINGS_UPDATE, input={"fatigueDays": 10, "minCell": 6}, version=0),
               "surveySettingsUpdate")
    assert saved == {"fatigueDays": 10, "minCell": 6, "linkValidDays": 14, "version": 1}
    stale = await tenant.call("department_head", SETTINGS_UPDATE, input={"linkValidDays": 7}, version=0)
    assert stale.codes == ["CONFLICT"]
    for bad in ({"fatigueDays": -1}, {"minCell": 2}, {"linkValidDays": 91}, {"satisfactionTarget": 0}, {}):
        refused = await tenant.call("admin", SETTINGS_UPDATE, input=bad)
        assert refused.codes == ["BAD_USER_INPUT"], bad
    row = await SurveySettings.get(institution_id=tenant.id)
    assert (row.fatigue_days, row.min_cell, row.link_valid_days, row.version) == (10, 6, 14, 1)


@pytest.mark.parametrize("role", ["nurse", "front_desk", "doctor", "support_agent", "compliance_officer"])
async def test_settings_refused_to_roles_without_survey_rights(tenant: Tenant, role: str) -> None:
    assert (await tenant.call(role, SETTINGS)).codes == ["FORBIDDEN"]
    assert (await tenant.call(role, SETTINGS_UPDATE, input={"fatigueDays": 1})).codes == ["FORBIDDEN"]
    assert not await SurveySettings.exists(institution_id=tenant.id)
    assert await denials(tenant) == [("survey_settings", "forbidden")] * 2


# -- triggers ----------------------------------------------------------------------------------------------


async def test_triggers_are_written_checked_versioned_and_deactivated(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    made = await trigger(tenant, q, "department_head", departmentId=str(tenant.departments["A"].id),
                         visitKind="PROCEDURE", delayHours=2, reminderAfterDays=3)
    assert (made["event"], made["visitKind"], made["delayHours"], made["reminderAfterDays"], made["version"]) == (
        "VISIT_FINISHED", "PROCEDURE", 2, 3, 1)
    moved = ok(await tenant.call("department_head", TRIGGER_UPDATE, id=made["id"], input={"delayHours": 48,
                                                                                         "visitKind": None},
                                 version=1), "surveyTriggerUpdate")
    assert moved == {"id": made["id"], "delayHours": 48, "visitKind": None, "version": 2}
    assert (await tenant.call("admin", TRIGGER_UPDATE, id=made["id"], input={"delayHours": 1},
                              version=1)).codes == ["CONFLICT"]
    off = ok(await tenant.call("admin", TRIGGER_DEACTIVATE, id=made["id"], version=2), "surveyTriggerDeactivate")
    assert off == {"id": made["id"], "active": False, "version": 3}
    assert ok(await tenant.call("admin", TRIGGERS, all=False), "surveyTriggers")["nodes"] == []
    assert ok(await tenant.call("admin", TRIGGERS, all=True), "surveyTriggers")["nodes"] == [
        {"id": made["id"], "event": "VISIT_FINISHED", "active": False, "version": 3}]
    assert (await tenant.call("admin", TRIGGER_DEACTIVATE, id=made["id"])).codes == ["CONFLICT"]


@pytest.mark.parametrize(("change", "field"), [
    ({"questionnaireKey": None}, "input.questionnaireKey"),  # filled in below: a key with no active version
    ({"event": "TICKET_CLOSED", "visitKind": "OUTPATIENT"}, "input.visitKind"),
    ({"delayHours": 721}, "input.delayHours"),
    ({"reminderAfterDays": 0}, "input.reminderAfterDays"),
    ({"departmentId": str(uuid.uuid4())}, "input.departmentId"),
    ({"questionnaireKey": "staff"}, "input.questionnaireKey"),  # a questionnaire staff answer
])
async def test_trigger_input_is_checked(tenant: Tenant, change: dict[str, Any], field: str) -> None:
    q = await questionnaire(tenant)
    data = {"event": "VISIT_FINISHED", "questionnaireKey": str(q.key), **change}
    if change.get("questionnaireKey") is None and "questionnaireKey" in change:
        data["questionnaireKey"] = str((await questionnaire(tenant, status="draft")).key)
    elif change.get("questionnaireKey") == "staff":
        data["questionnaireKey"] = str((await questionnaire(tenant, respondent="staff")).key)
    reply = await tenant.call("admin", TRIGGER_CREATE, input=data)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    assert not await SurveyTrigger.exists(institution_id=tenant.id)


async def test_a_department_head_writes_triggers_of_their_own_departments_only(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    for department in (str(tenant.departments["B"].id), None):
        reply = await tenant.call("department_head", TRIGGER_CREATE, input={
            "event": "TICKET_CLOSED", "questionnaireKey": str(q.key), "departmentId": department})
        assert reply.codes == ["FORBIDDEN"]
    made = await trigger(tenant, q, "admin", departmentId=str(tenant.departments["B"].id))
    assert (await tenant.call("department_head", TRIGGER_DEACTIVATE, id=made["id"])).codes == ["FORBIDDEN"]
    assert [t.active for t in await SurveyTrigger.filter(institution_id=tenant.id)] == [True]
    assert await denials(tenant) == [("survey_trigger", "other_department")] * 3


@pytest.mark.parametrize("role", ["nurse", "front_desk", "doctor", "support_agent", "compliance_officer"])
async def test_triggers_refused_to_roles_without_survey_rights(tenant: Tenant, role: str) -> None:
    q = await questionnaire(tenant)
    made = await trigger(tenant, q)
    assert (await tenant.call(role, TRIGGERS, all=True)).codes == ["FORBIDDEN"]
    assert (await tenant.call(role, TRIGGER_CREATE, input={"event": "VISIT_FINISHED",
                                                           "questionnaireKey": str(q.key)})).codes == ["FORBIDDEN"]
    assert (await tenant.call(role, TRIGGER_UPDATE, id=made["id"], input={"delayHours": 1})).codes == ["FORBIDDEN"]
    assert (await tenant.call(role, TRIGGER_DEACTIVATE, id=made["id"])).codes == ["FORBIDDEN"]
    assert [(t.version, t.delay_hours) for t in await SurveyTrigger.filter(institution_id=tenant.id)] == [(1, 24)]
    assert await denials(tenant) == [("survey_trigger", "forbidden")] * 4


# -- invitations from their causes -------------------------------------------------------------------------


async def test_a_finished_visit_invites_once_with_its_message_queued(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, departmentId=str(tenant.departments["A"].id), visitKind="OUTPATIENT", delayHours=24)
    pid = await reachable(tenant)
    # Ended 11 to 24 hours ago, so that the message falls due a day after it, in the future and in the daytime
    # (a due time in the quiet hours would be moved to their end: another test's business).
    ended = daytime_from(datetime.now(UTC) + timedelta(minutes=10)) - timedelta(hours=24)
    visit_id = await finished_visit(tenant, pid, ended_at=ended)
    [row] = await invitations(tenant)
    assert (row.patient_id, row.visit_id, row.questionnaire_id, row.cause_key, row.status) == (
        pid, uuid.UUID(visit_id), q.id, f"visit:{visit_id}", "requested")
    assert row.department_id == tenant.departments["A"].id and row.answered is False
    assert abs(row.send_at - (ended + timedelta(hours=24))) < timedelta(seconds=1)
    assert row.expires_at == row.send_at + timedelta(days=14)
    token = link_of(services, row)
    assert tokens.looks_like_survey_link(token) and row.token_hash == tokens.token_digest(
        services.master_key.token_key, token)
    [message] = await Communication.filter(institution_id=tenant.id, patient_id=pid)
    assert (message.key, message.cause, message.status, message.due_at) == (
        f"survey:{row.id}:invitation", "survey_invitation", "queued", row.send_at)
    assert token not in str(message.variables) and "survey_url" not in message.variables  # stored nowhere
    created = await tenant.audit_events(resource_type="survey_invitation", action="create")
    assert [(e.resource_id, e.patient_id, e.policy_rule) for e in created] == [(row.id, pid, "survey trigger")]


async def test_no_trigger_no_invitation_and_the_wrong_kind_or_department_does_not_match(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    pid = await reachable(tenant)
    await finished_visit(tenant, pid)
    await trigger(tenant, q, visitKind="PROCEDURE")
    await trigger(tenant, q, departmentId=str(tenant.departments["B"].id))
    await finished_visit(tenant, pid)
    assert await invitations(tenant) == []


async def test_the_most_specific_trigger_chooses_the_questionnaire(tenant: Tenant) -> None:
    general, specific = await questionnaire(tenant), await questionnaire(tenant)
    await trigger(tenant, general)
    await trigger(tenant, specific, departmentId=str(tenant.departments["A"].id), visitKind="OUTPATIENT")
    pid = await reachable(tenant)
    await finished_visit(tenant, pid)
    assert [r.questionnaire_id for r in await invitations(tenant)] == [specific.id]


async def test_one_invitation_per_cause_when_reported_twice_or_at_once(tenant: Tenant, services: Services) -> None:
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0)  # only the cause key stops a repeat
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await reachable(tenant)
    visit_id = await finished_visit(tenant, pid)
    visit = await Visit.get(id=visit_id)
    ctx = await staff_context(tenant, services)

    async def report() -> None:
        async with in_transaction():
            await survey.on_visit_finished(ctx, visit)

    await report()
    await asyncio.gather(report(), report(), report())
    assert len(await invitations(tenant)) == 1
    assert await Communication.filter(institution_id=tenant.id, cause="survey_invitation").count() == 1


async def test_a_visit_finished_twice_at_once_invites_once(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await reachable(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE_PLANNED, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "status": "ARRIVED"})
    visit_id = ok(reply, "visitCreate")["id"]
    ok(await tenant.call("nurse", VISIT_MOVE, id=visit_id, to="IN_PROGRESS", version=1), "visitTransition")
    replies = await asyncio.gather(*(tenant.call(role, VISIT_MOVE, id=visit_id, to="FINISHED", version=2)
                                     for role in ("nurse", "doctor")))
    assert sorted(r.codes[0] if r.codes else "OK" for r in replies) == ["CONFLICT", "OK"]
    assert len(await invitations(tenant, visit_id=visit_id)) == 1


VISIT_CREATE_PLANNED = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"


async def test_two_causes_of_one_patient_at_once_invite_once(tenant: Tenant) -> None:
    """The fatigue cap holds when visits of one patient finish at the same moment (their transactions take
    turns from their first audit record on)."""
    q = await questionnaire(tenant)
    await trigger(tenant, q, delayHours=0)
    pid = await reachable(tenant)
    await asyncio.gather(*(finished_visit(tenant, pid) for _ in range(3)))
    assert await Visit.filter(patient_id=pid, status="finished").count() == 3
    assert len(await invitations(tenant, patient_id=pid)) == 1


async def staff_context(tenant: Tenant, services: Services) -> Context:
    """The context of the nurse's requests (for calling a cause's hook as its transaction would)."""
    from audit.events import RequestMeta
    from core.principal import Principal
    from resolvers.loaders import Loaders

    principal = Principal(tenant.id, tenant.staff_ids["nurse"], None, "", "nurse", frozenset({"nurse"}),
                          frozenset({tenant.departments["A"].id}))
    return Context(services, RequestMeta(), principal, await services.keyring.get(tenant.id), Loaders(tenant.id))


async def test_the_fatigue_cap_asks_a_patient_once_in_its_period(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, delayHours=0)
    pid = await reachable(tenant)
    await finished_visit(tenant, pid)
    await finished_visit(tenant, pid)  # the same day: within 30 days of the first
    assert len(await invitations(tenant, patient_id=pid)) == 1
    ok(await tenant.call("admin", SETTINGS_UPDATE, input={"fatigueDays": 0}), "surveySettingsUpdate")
    await finished_visit(tenant, pid)
    assert len(await invitations(tenant, patient_id=pid)) == 2
    ok(await tenant.call("admin", SETTINGS_UPDATE, input={"fatigueDays": 30}), "surveySettingsUpdate")
    old = datetime.now(UTC) - timedelta(days=45)  # a visit 45 days ago (sent then): outside the period
    await SurveyInvitation.filter(institution_id=tenant.id).update(send_at=old)
    await finished_visit(tenant, pid)
    assert len(await invitations(tenant, patient_id=pid)) == 3
    other = await reachable(tenant)  # the cap is per patient
    await finished_visit(tenant, other)
    assert len(await invitations(tenant, patient_id=other)) == 1


async def test_an_invitation_the_gate_refused_does_not_count_toward_the_cap(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, delayHours=0)
    pid = await reachable(tenant, consent=False)
    await finished_visit(tenant, pid)
    [refused] = await invitations(tenant)
    assert refused.status == "refused"
    message = await Communication.get(key=f"survey:{refused.id}:invitation")
    assert (message.status, message.refusal) == ("refused", "no_consent")
    await Patient.filter(id=pid).update(contact_consent=True)
    await finished_visit(tenant, pid)
    assert [r.status for r in await invitations(tenant)] == ["refused", "requested"]


async def test_archived_patients_are_not_invited(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await reachable(tenant)
    visit_id = await finished_visit(tenant, pid)
    await SurveyInvitation.filter(institution_id=tenant.id).delete()
    await Communication.filter(institution_id=tenant.id).delete()
    await Patient.filter(id=pid).update(status="archived")
    async with in_transaction():
        assert await survey.on_visit_finished(await staff_context(tenant, services), await Visit.get(id=visit_id)) \
            is None
    assert await invitations(tenant) == []


async def test_a_closed_ticket_invites_once(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, event="TICKET_CLOSED", delayHours=0)
    pid = await reachable(tenant)
    ticket = ok(await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my bill", "patientId": str(pid)}),
        "ticketCreate")
    for to, more in (("ACKNOWLEDGED", {}), ("INVESTIGATING", {}), ("RESOLVED", {"resolution": "Done"})):
        ok(await tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to=to, **more), "ticketTransition")
    assert await invitations(tenant) == []  # resolved is not closed
    ok(await tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to="CLOSED"), "ticketTransition")
    [row] = await invitations(tenant)
    assert (row.ticket_id, row.cause_key) == (uuid.UUID(ticket["id"]), f"ticket:{ticket['id']}")
    for to, more in (("INVESTIGATING", {}), ("RESOLVED", {"resolution": "Again"}), ("CLOSED", {})):
        ok(await tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to=to, **more), "ticketTransition")
    assert len(await invitations(tenant)) == 1  # closed again: the same cause


async def test_a_ticket_without_a_patient_invites_nobody(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, event="TICKET_CLOSED")
    ticket = ok(await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Opening hours", "callerName": "Li Lei"}),
        "ticketCreate")
    for to, more in (("ACKNOWLEDGED", {}), ("INVESTIGATING", {}), ("RESOLVED", {"resolution": "Told"}),
                     ("CLOSED", {})):
        ok(await tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to=to, **more), "ticketTransition")
    assert await Ticket.filter(id=ticket["id"], status="closed").exists()
    assert await invitations(tenant) == []


async def test_a_follow_up_call_that_reached_the_patient_invites(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, event="FOLLOW_UP_COMPLETED", delayHours=1)
    invited_ids = []
    for reached in (False, True):
        pid = await reachable(tenant)
        task = ok(await tenant.call("doctor", TASK_CREATE, input={
            "patientId": str(pid), "dueOn": datetime.now(ZONE).date().isoformat(),  # today there, not in UTC
            "ownerId": str(tenant.staff_ids["nurse"])}), "followUpTaskCreate")
        outcome: dict[str, Any] = {"reached": reached}
        if reached:
            outcome.update(condition="BETTER", satisfaction=5)
        ok(await tenant.call("nurse", TASK_COMPLETE, id=task["id"], input=outcome), "followUpTaskComplete")
        invited_ids.append((pid, task["id"]))
    [row] = await invitations(tenant)
    assert (row.patient_id, row.follow_up_task_id) == (invited_ids[1][0], uuid.UUID(invited_ids[1][1]))
    task = await FollowUpTask.get(id=invited_ids[1][1])
    assert row.cause_key == f"follow_up:{task.id}"
    assert task.completed_at is not None
    assert abs(row.send_at - (task.completed_at + timedelta(hours=1))) < timedelta(seconds=1)


# -- the message and its link ------------------------------------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


async def deliver(services: Services, collect: Collect, row: SurveyInvitation) -> None:
    """Send the invitation's message at the moment it is due: its send time, or the end of the quiet hours when
    it fell into them (the outbox moved it there), so the test does not depend on the hour it runs at."""
    message = await Communication.get(key=f"survey:{row.id}:invitation")
    assert message.status == "queued" and message.due_at >= row.send_at
    await communication.deliver_due(services, {"email": collect}, now=message.due_at)  # due by then, inclusive


async def test_the_message_carries_the_link_computed_when_it_is_sent(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    collect = Collect()
    await deliver(services, collect, row)
    [message] = [m for m in collect.sent if m.institution_id == tenant.id]
    url = f"http://127.0.0.1:8000/survey#token={token}"
    assert url in message.body
    assert urlsplit(url).fragment == f"token={token}"  # a fragment: never sent to a server, never in its logs
    stored = await Communication.get(key=f"survey:{row.id}:invitation")
    assert stored.status == "sent" and token not in str(stored.variables)
    reply = await tenant.call(None, "query($t: String!) { surveyByLink(token: $t) { questionnaire { id } } }",
                              t=token)
    assert ok(reply, "surveyByLink") == {"questionnaire": {"id": str(q.id)}}


async def test_the_log_keeps_no_link_that_answers_as_the_patient(tenant: Tenant, services: Services) -> None:
    """The stored copy that staff read has a marker where the link was (the link answers as the patient); the
    patient's own inbox shows the link again."""
    q = await questionnaire(tenant)
    pid, row, token = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    await deliver(services, Collect(), row)
    query = "query($id: ID!) { patientCommunications(patientId: $id, first: 20) { nodes { cause body } } }"
    staff_view = ok(await tenant.call("nurse", query, id=str(pid)), "patientCommunications")["nodes"]
    [staff_copy] = [n["body"] for n in staff_view if n["cause"] == "SURVEY_INVITATION"]
    assert token not in staff_copy and communication.SURVEY_LINK_WITHHELD in staff_copy
    stored = await Communication.get(key=f"survey:{row.id}:invitation")
    assert token.encode() not in stored.body
    mine = ok(await user.call("{ myCommunications(first: 20) { edges { node { cause body } } } }"),
              "myCommunications")["edges"]
    [own_copy] = [e["node"]["body"] for e in mine if e["node"]["cause"] == "SURVEY_INVITATION"]
    assert f"#token={token}" in own_copy and communication.SURVEY_LINK_WITHHELD not in own_copy
    # the unsubscribe link withdraws the patient's consent with no sign-in: the same (found in review)
    unsubscribe = communication.unsubscribe_url(services, tenant.id, pid, "care")  # a survey is a care message
    assert unsubscribe not in staff_copy and communication.UNSUBSCRIBE_LINK_WITHHELD in staff_copy
    assert unsubscribe in own_copy and communication.UNSUBSCRIBE_LINK_WITHHELD not in own_copy


async def test_an_institutions_own_template_without_the_link_still_carries_it(tenant: Tenant,
                                                                               services: Services) -> None:
    reply = await tenant.call("admin", """mutation { messageTemplateSet(input: {cause: SURVEY_INVITATION,
      channel: ANY, language: ZH_CN, subject: "问卷", body: "{patient_name}您好，请填写问卷。"}) { cause } }""")
    assert reply.errors == [], reply.errors
    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    collect = Collect()
    await deliver(services, collect, row)
    [message] = [m for m in collect.sent if m.institution_id == tenant.id]
    assert message.body == (f"{(await Patient.get(id=row.patient_id)).full_name}您好，请填写问卷。 问卷："
                            f"http://127.0.0.1:8000/survey#token={token} 退订：{message.unsubscribe_url}")


# -- reminders ---------------------------------------------------------------------------------------------


async def test_the_reminder_sweep_reminds_once_while_unanswered(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, reminderAfterDays=3)
    _, first, _ = await invited(tenant, services, q)
    _, second, _ = await invited(tenant, services, q)
    user = await open_account(tenant, first.patient_id)
    due = second.send_at + timedelta(days=3, minutes=1)

    async def reminders() -> int:  # this institution's: the sweep also serves others (the demo's, say)
        return await Communication.filter(institution_id=tenant.id, key__endswith=":reminder").count()

    await survey.remind_unanswered(second.send_at + timedelta(days=2))
    assert await reminders() == 0
    ok(await user.call(ANSWER, id=str(first.id), answers=[{"linkId": "q1", "number": 4}, {"linkId": "q3",
                                                                                         "number": 4}]),
       "surveyAnswer")
    await survey.remind_unanswered(due)
    assert await reminders() == 1
    await survey.remind_unanswered(due)
    assert await reminders() == 1  # once
    reminder = await Communication.get(key=f"survey:{second.id}:reminder")
    assert (reminder.cause, reminder.status, reminder.patient_id) == ("survey_invitation", "queued",
                                                                      second.patient_id)
    assert not await Communication.exists(key=f"survey:{first.id}:reminder")
    assert (await SurveyInvitation.get(id=second.id)).reminded_at is not None
    [record] = await tenant.audit_events(resource_type="survey_invitation", action="update", actor_kind="system")
    assert (record.resource_id, record.policy_rule) == (second.id, "survey reminder")
    late = second.expires_at + timedelta(days=1)  # no reminder once the link expired
    await SurveyInvitation.filter(id=second.id).update(reminded_at=None)
    await survey.remind_unanswered(late)
    assert (await SurveyInvitation.get(id=second.id)).reminded_at is None


# -- a one-off campaign ------------------------------------------------------------------------------------


async def test_a_survey_campaign_invites_its_audience_within_the_cap(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    in_a = [await reachable(tenant) for _ in range(3)]
    in_b = await reachable(tenant, "B")
    await SurveyInvitation.create(institution_id=tenant.id, questionnaire_id=q.id, cause_key="earlier",
                                  patient_id=in_a[0], send_at=datetime.now(UTC) - timedelta(days=2),
                                  expires_at=datetime.now(UTC) + timedelta(days=5))
    refused_patient = await reachable(tenant, consent=False)
    result = ok(await tenant.call("department_head", INVITE, qid=str(q.id)), "surveyInvite")
    assert result == {"invited": 3, "refused": 1, "fatigued": 1, "inactive": 0}
    made = {r.patient_id for r in await invitations(tenant, cause_key__startswith="campaign:")}
    assert made == {in_a[1], in_a[2], refused_patient}
    assert in_b not in made
    again = ok(await tenant.call("admin", INVITE, qid=str(q.id),
                                 audience={"departmentId": str(tenant.departments["B"].id)}), "surveyInvite")
    assert again["invited"] == 1


async def test_a_survey_campaign_is_refused_outside_the_heads_departments_and_to_other_roles(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    await reachable(tenant, "B")
    reply = await tenant.call("department_head", INVITE, qid=str(q.id),
                              audience={"departmentId": str(tenant.departments["B"].id)})
    assert reply.codes == ["FORBIDDEN"]
    for role in ("nurse", "front_desk", "doctor", "support_agent", "compliance_officer"):
        assert (await tenant.call(role, INVITE, qid=str(q.id))).codes == ["FORBIDDEN"]
    draft = await questionnaire(tenant, status="draft")
    assert (await tenant.call("admin", INVITE, qid=str(draft.id))).codes == ["BAD_USER_INPUT"]
    assert (await tenant.call("admin", INVITE, qid=str(uuid.uuid4()))).codes == ["NOT_FOUND"]
    assert await invitations(tenant) == []
    assert await denials(tenant) == [("survey_invitation", "other_department"),
                                     *[("survey_invitation", "forbidden")] * 5, ("questionnaire", "not_found")]


# -- reading invitations -----------------------------------------------------------------------------------


async def test_staff_and_the_patient_read_invitations_within_their_reach(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, row, _ = await invited(tenant, services, q)
    for role in ("nurse", "front_desk", "department_head"):
        nodes = ok(await tenant.call(role, PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]
        assert [(n["id"], n["status"], n["answered"], n["cause"], n["questionnaire"]) for n in nodes] == [
            (str(row.id), "REQUESTED", False, "VISIT", {"id": str(q.id), "anonymous": False})]
    for role in ("doctor", "support_agent", "admin", "compliance_officer"):
        assert (await tenant.call(role, PATIENT_INVITATIONS, pid=str(pid))).codes == ["FORBIDDEN"]
    user = await open_account(tenant, pid)
    mine = ok(await user.call(MY_INVITATIONS), "mySurveyInvitations")["nodes"]
    assert mine == [{"id": str(row.id), "status": "REQUESTED", "answered": False, "anonymous": False,
                     "questionnaire": {"title": {"zhCN": "门诊满意度调查"}}}]
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    assert (await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(in_b))).codes == ["NOT_FOUND"]
    assert (await tenant.call("nurse", MY_INVITATIONS)).codes == ["NOT_FOUND"]


async def test_expired_invitations_show_as_expired(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, row, _ = await invited(tenant, services, q)
    await SurveyInvitation.filter(id=row.id).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    nodes = ok(await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]
    assert nodes[0]["status"] == "EXPIRED"


async def test_an_answered_anonymous_invitation_is_answered_only_to_its_patient(tenant: Tenant,
                                                                               services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)
    pid, row, _ = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    ok(await user.call(ANSWER, id=str(row.id), answers=[{"linkId": "q1", "number": 4}, {"linkId": "q3",
                                                                                       "number": 5}]),
       "surveyAnswer")
    stored = await SurveyInvitation.get(id=row.id)
    assert (stored.answered, stored.answered_at, stored.status) == (True, None, "requested")
    nodes = ok(await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")["nodes"]
    assert (nodes[0]["status"], nodes[0]["answered"]) == ("REQUESTED", None)
    mine = ok(await user.call(MY_INVITATIONS), "mySurveyInvitations")["nodes"]
    assert (mine[0]["status"], mine[0]["answered"]) == ("ANSWERED", True)


async def test_audit_of_invitation_reads(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, _, _ = await invited(tenant, services, q)
    ok(await tenant.call("nurse", PATIENT_INVITATIONS, pid=str(pid)), "patientSurveyInvitations")
    reads = await AuditEvent.filter(institution_id=tenant.id, resource_type="survey_invitation", action="read")
    assert [(e.actor_id, e.patient_id) for e in reads] == [(tenant.staff_ids["nurse"], pid)]


@pytest.mark.parametrize("kind", ["invitation", "reminder"])
async def test_a_message_whose_link_closed_before_it_went_is_dropped_not_sent(tenant: Tenant, services: Services,
                                                                             kind: str) -> None:
    """A survey message found by the outbox only once its link has closed (the quiet hours deferred it past the
    link's last hours, the outbox was down, its hand-over retried with backoff) is dropped, as an answered
    invitation's is, rather than sent with a link that answers "expired" (found in review: it went out; a visit
    entered so late that its link would close before the message is sent makes no invitation at all)."""
    q = await questionnaire(tenant)
    await trigger(tenant, q, delayHours=0, reminderAfterDays=1)
    pid, row, _ = await invited(tenant, services, q)
    _, twin, _ = await invited(tenant, services, q)  # the twin: still open at that moment, its message goes
    await SurveyInvitation.filter(id=twin.id).update(expires_at=row.expires_at + timedelta(days=2))
    if kind == "reminder":  # the invitations went at their time; the reminders wait
        # both invitations' messages (the twin's is due a moment after the row's: outside the quiet hours, the row's
        # time alone left it queued, to go out with the reminders; the test failed so in the morning, Shanghai time)
        await communication.deliver_due(services, {"email": Collect()},
                                        now=daytime_from(max(row.send_at, twin.send_at)))
        assert await survey.remind_unanswered(row.send_at + timedelta(days=1, minutes=1)) >= 2
    assert (await Communication.get(key=f"survey:{row.id}:{kind}")).status == "queued"
    collect = Collect()
    late = daytime_from(row.expires_at + timedelta(minutes=1))  # clear of the quiet hours
    await communication.deliver_due(services, {"email": collect}, now=late)
    ours = [m for m in collect.sent if m.institution_id == tenant.id]
    sent = await Communication.get(key=f"survey:{twin.id}:{kind}")
    assert [m.communication_id for m in ours] == [sent.id] and sent.status == "sent"
    dropped = await Communication.get(key=f"survey:{row.id}:{kind}")
    assert (dropped.status, dropped.sent_at, dropped.settled_at) == ("cancelled", None, late)
    assert (await SurveyInvitation.get(id=row.id, patient_id=pid)).answered is False
