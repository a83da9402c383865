"""Anonymous questionnaires leave no path from a response back to its patient (issue 14), not even through time:
nothing that staff can read, no message row, no audit record, dates the moment an anonymous invitation was
answered. Answering withdraws nothing from the outbox then (the outbox drops the invitation's messages when they
fall due, a moment that owes nothing to the answer), the response and its answers are dated their month, and no
door tells whether an anonymous invitation was answered without being given a complete, valid answer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.messages import Outgoing
from models import (
    AuditEvent,
    Communication,
    QuestionnaireResponse,
    ResponseAnswer,
    SurveyInvitation,
    SurveySettings,
    SurveyTrigger,
)
from resolvers import communication, survey
from resolvers.context import Services
from tests.factories import Tenant
from tests.patients import PatientUser, open_account
from tests.surveys import (
    GOOD,
    family_member,
    finished_visit,
    invited,
    link_of,
    month_closed,
    questionnaire,
    texted,
    trigger,
)

BY_LINK = "query($t: String!) { surveyByLink(token: $t) { expiresAt questionnaire { id } } }"
BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId followUp } }"""
ANSWER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswer(invitationId: $id, answers: $answers) { anonymous responseId followUp } }"""
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { anonymous responseId followUp } }"""
INVITATIONS = """query($pid: ID!) { patientSurveyInvitations(patientId: $pid) {
  nodes { id status answered sendAt expiresAt remindedAt createdAt } } }"""
MY_INVITATIONS = "{ mySurveyInvitations { nodes { id status answered } } }"
LOG = """query($pid: ID!) { patientCommunications(patientId: $pid) {
  nodes { id cause status dueAt sentAt settledAt attempts } } }"""
RESPONSES = "query($q: ID) { questionnaireResponses(questionnaireId: $q) { nodes { id source enteredById } } }"
ZONE = ZoneInfo("Asia/Shanghai")  # the test institutions' zone
# the answers checked first: an incomplete answer (q3 is required) is refused for itself, whatever the invitation
INCOMPLETE = [{"linkId": "q1", "number": 4}]


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


class Collect:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


async def rows(tenant: Tenant) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every message row and every invitation row of the institution, each column as stored."""
    messages = await Communication.filter(institution_id=tenant.id).order_by("key").values()
    invitations = await SurveyInvitation.filter(institution_id=tenant.id).order_by("id").values()
    return list(messages), list(invitations)


async def staff_views(tenant: Tenant, pid: uuid.UUID) -> list[Any]:
    """What staff read of the patient's invitations and messages."""
    return [ok(await tenant.call(role, INVITATIONS, pid=str(pid)), "patientSurveyInvitations")
            for role in ("nurse", "front_desk", "department_head")] + [
        ok(await tenant.call(role, LOG, pid=str(pid)), "patientCommunications")
        for role in ("nurse", "front_desk", "doctor", "department_head", "support_agent")]


async def last_seq(tenant: Tenant) -> int:
    mark = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    return mark.seq if mark else 0


def month_start(now: datetime) -> datetime:
    local = now.astimezone(ZONE)
    return datetime(local.year, local.month, 1, tzinfo=ZONE)


async def answer(door: str, tenant: Tenant, token: str, invitation: SurveyInvitation, user: PatientUser,
                 answers: list[dict[str, Any]]) -> Any:
    if door == "link":
        return await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers)
    if door == "portal":
        return await user.call(ANSWER, id=str(invitation.id), answers=answers)
    return await tenant.call("nurse", ENTER, id=str(invitation.id), answers=answers, source="PHONE")


ROOTS = {"link": "surveyAnswerByLink", "portal": "surveyAnswer", "phone": "surveyResponseEnter"}


# -- answering dates nothing -------------------------------------------------------------------------------


@pytest.mark.parametrize("door", ["link", "portal", "phone"])
async def test_answering_an_anonymous_invitation_changes_no_message_no_staff_view_and_dates_nothing(
        tenant: Tenant, services: Services, door: str) -> None:
    q = await questionnaire(tenant, anonymous=True)
    await trigger(tenant, q, reminderAfterDays=1)  # the invitation's message goes a day after the visit
    pid, row, token = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    # the reminder queued already (its sweep ran at its time): both messages wait in the outbox
    reminder_due = row.send_at + timedelta(days=1, minutes=1)
    assert await survey.remind_unanswered(reminder_due) >= 1
    before_rows, before_views = await rows(tenant), await staff_views(tenant, pid)
    assert {m["key"].rsplit(":", 1)[1]: m["status"] for m in before_rows[0]} == {"invitation": "queued",
                                                                               "reminder": "queued"}
    mark = await last_seq(tenant)

    now = datetime.now(UTC)
    receipt = ok(await answer(door, tenant, token, row, user, GOOD), ROOTS[door])
    assert receipt == {"anonymous": True, "responseId": None, "followUp": False}
    # the trail: the answer's one record, naming no patient, invitation or response, without the request's
    # details (whoever answered in the portal is not named either)
    new = await AuditEvent.filter(institution_id=tenant.id, seq__gt=mark).order_by("seq")
    actor = ("staff", tenant.staff_ids["nurse"]) if door == "phone" else ("anonymous", None)
    assert [(e.actor_kind, e.actor_id, e.action, e.resource_type, e.resource_id, e.patient_id, e.request_id,
             e.client_address, e.user_agent) for e in new] == [
        (*actor, "create", "questionnaire_response", None, None, "", "", "")]

    # the outbox and the invitation as they were, but for the flag that it was answered (no time, no status)
    messages, invitations = await rows(tenant)
    assert messages == before_rows[0]
    [(was, now_is)] = zip(before_rows[1], invitations, strict=True)
    assert {k: v for k, v in now_is.items() if v != was[k]} == {"answered": True}
    # what staff read of the patient is what they read before
    assert await staff_views(tenant, pid) == before_views
    # the response and its answers: dated the first instant of their month, entered by nobody, linked to nobody
    [response] = await QuestionnaireResponse.filter(institution_id=tenant.id)
    assert (response.patient_id, response.invitation_id, response.visit_id, response.entered_by_id) == (
        None, None, None, None)
    assert (response.source, response.month) == (door, now.astimezone(ZONE).strftime("%Y-%m"))
    assert response.created_at == month_start(now)
    answers = await ResponseAnswer.filter(response_id=response.id)
    assert answers and {a.created_at for a in answers} == {month_start(now)}


async def test_the_invitation_and_its_reminder_are_dropped_when_they_fall_due(tenant: Tenant,
                                                                              services: Services) -> None:
    """Answered early (in the portal, before the message went): neither message reaches the patient, each
    dropped by the outbox at its own due time."""
    q = await questionnaire(tenant, anonymous=True)
    await trigger(tenant, q, reminderAfterDays=1)
    pid, row, _ = await invited(tenant, services, q)
    _, twin, _ = await invited(tenant, services, q)  # unanswered: its messages go
    reminder_due = row.send_at + timedelta(days=1, minutes=1)
    assert await survey.remind_unanswered(reminder_due) >= 2
    user = await open_account(tenant, pid)
    ok(await user.call(ANSWER, id=str(row.id), answers=GOOD), "surveyAnswer")

    collect = Collect()
    first = max(m.due_at for m in await Communication.filter(key__in=[f"survey:{i}:invitation"
                                                                      for i in (row.id, twin.id)]))
    await communication.deliver_due(services, {"email": collect}, now=first)
    invitation = await Communication.get(key=f"survey:{row.id}:invitation")
    assert (invitation.status, invitation.settled_at, invitation.sent_at) == ("cancelled", first, None)
    assert (await Communication.get(key=f"survey:{row.id}:reminder")).status == "queued"  # not its time yet
    last = max(m.due_at for m in await Communication.filter(key__in=[f"survey:{i}:reminder"
                                                                     for i in (row.id, twin.id)]))
    await communication.deliver_due(services, {"email": collect}, now=last)
    reminder = await Communication.get(key=f"survey:{row.id}:reminder")
    assert (reminder.status, reminder.settled_at, reminder.sent_at) == ("cancelled", last, None)
    ours = [m for m in collect.sent if m.institution_id == tenant.id]
    assert {m.communication_id for m in ours} == {
        m.id for m in await Communication.filter(key__startswith=f"survey:{twin.id}:")}  # the twin's two only
    assert len(ours) == 2
    # dropping them was the system's, at their due times: the trail names neither the patient nor the answer
    assert await AuditEvent.filter(institution_id=tenant.id, patient_id=pid, resource_type="communication") == []


async def test_the_reminder_sweep_reminds_no_one_who_answered(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)
    await trigger(tenant, q, reminderAfterDays=2)
    _, row, token = await invited(tenant, services, q)
    _, twin, _ = await invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    assert await survey.remind_unanswered(row.send_at + timedelta(days=2, minutes=1)) >= 1
    assert not await Communication.exists(key=f"survey:{row.id}:reminder")
    assert (await Communication.get(key=f"survey:{twin.id}:reminder")).status == "queued"
    assert (await SurveyInvitation.get(id=row.id)).reminded_at is None


# -- no door tells without an answer -----------------------------------------------------------------------


async def test_the_link_of_an_answered_anonymous_invitation_tells_only_whoever_answers_it(tenant: Tenant,
                                                                                          services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)
    _, row, token = await invited(tenant, services, q)
    shown = ok(await tenant.call(None, BY_LINK, t=token), "surveyByLink")
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    assert ok(await tenant.call(None, BY_LINK, t=token), "surveyByLink") == shown  # as before the answer
    mark = await last_seq(tenant)
    incomplete = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=INCOMPLETE)
    assert incomplete.codes == ["BAD_USER_INPUT"] and incomplete.errors[0]["extensions"]["field"] != "token"
    again = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD)
    assert again.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "token", "reason": "answered"}
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1
    # the refusal is recorded naming neither the patient nor the invitation
    denied = await AuditEvent.filter(institution_id=tenant.id, seq__gt=mark, outcome="denied")
    assert [(e.actor_kind, e.resource_id, e.patient_id, e.reason) for e in denied] == [
        ("anonymous", None, None, "answered")]
    # once expired, a link says so whether or not it was answered
    await SurveyInvitation.filter(id=row.id).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    expired = await tenant.call(None, BY_LINK, t=token)
    assert expired.errors[0]["extensions"]["reason"] == "expired"


async def test_staff_learn_an_anonymous_invitation_was_answered_only_by_answering_it(tenant: Tenant,
                                                                                    other_tenant: Tenant,
                                                                                    services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)
    _, row, token = await invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    before = await rows(tenant)
    probe = await tenant.call("nurse", ENTER, id=str(row.id), answers=INCOMPLETE, source="PHONE")
    assert probe.codes == ["BAD_USER_INPUT"] and probe.errors[0]["extensions"]["field"] != "invitationId"
    taken = await tenant.call("nurse", ENTER, id=str(row.id), answers=GOOD, source="PHONE")
    assert taken.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "invitationId",
                                             "reason": "answered"}
    assert await rows(tenant) == before and await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1
    # the denied twin: another institution's nurse finds no such invitation, writes nothing, and is on record
    mark = await last_seq(other_tenant)
    foreign = await other_tenant.call("nurse", ENTER, id=str(row.id), answers=GOOD, source="PHONE")
    assert foreign.codes == ["NOT_FOUND"]
    assert await rows(tenant) == before and await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1
    denied = await AuditEvent.filter(institution_id=other_tenant.id, seq__gt=mark, outcome="denied")
    assert [(e.resource_type, e.reason) for e in denied] == [("survey_invitation", "not_found")]


async def test_staff_never_see_an_anonymous_invitations_answer_its_patient_does(tenant: Tenant,
                                                                                services: Services) -> None:
    """Answered or not, an anonymous invitation reads alike to staff, before its expiry and after it; its
    patient sees that they answered."""
    q = await questionnaire(tenant, anonymous=True)
    pid, row, token = await invited(tenant, services, q)
    other_pid, other, _ = await invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")

    def shown(nodes: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        return [(n["status"], n["answered"]) for n in nodes]

    for expired in (False, True):
        if expired:
            await SurveyInvitation.filter(id__in=[row.id, other.id]).update(
                expires_at=datetime.now(UTC) - timedelta(minutes=1))
        for role in ("nurse", "front_desk", "department_head"):
            answered_one = ok(await tenant.call(role, INVITATIONS, pid=str(pid)), "patientSurveyInvitations")
            unanswered = ok(await tenant.call(role, INVITATIONS, pid=str(other_pid)), "patientSurveyInvitations")
            assert shown(answered_one["nodes"]) == shown(unanswered["nodes"]) == [
                ("EXPIRED" if expired else "REQUESTED", None)]
    user = await open_account(tenant, pid)
    assert shown(ok(await user.call(MY_INVITATIONS), "mySurveyInvitations")["nodes"]) == [("ANSWERED", True)]


async def test_staff_entering_an_anonymous_answer_are_not_stored_on_it(tenant: Tenant, services: Services) -> None:
    """The trail names who entered it (one record, no patient); the response does not: with the trail's reads
    of the patient's invitations it would say whose it is."""
    await SurveySettings.create(institution_id=tenant.id, min_cell=3)
    q = await questionnaire(tenant, anonymous=True)
    for source in ("PHONE", "PAPER", "PHONE"):
        _, row, _ = await invited(tenant, services, q)
        ok(await tenant.call("nurse", ENTER, id=str(row.id), answers=GOOD, source=source), "surveyResponseEnter")
    await month_closed(tenant)  # listed once their month has closed
    nodes = ok(await tenant.call("admin", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]
    assert sorted((n["source"], n["enteredById"]) for n in nodes) == [("PAPER", None), ("PHONE", None),
                                                                      ("PHONE", None)]
    records = await AuditEvent.filter(institution_id=tenant.id, resource_type="questionnaire_response",
                                      action="create")
    assert [(e.actor_id, e.patient_id, e.reason) for e in records] == [
        (tenant.staff_ids["nurse"], None, "anonymous")] * 3  # not phone or paper: the source would single it out


# -- the trail, as a compliance officer reads it -----------------------------------------------------------

TRAIL = """query($patient: ID) { auditEvents(first: 100, filter: {patient: $patient}) { nodes {
  id seq actorKind actorId action resourceType resourceId patientId resourceIds patientIds fieldClasses fieldsRead
  outcome reason policyRule requestId clientAddress userAgent } } }"""
FAMILY_LINK = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous } }"""


async def answer_records(tenant: Tenant, mark: int) -> list[dict[str, Any]]:
    """The answer's records since ``mark``, through auditEvents as a compliance officer reads them."""
    nodes = ok(await tenant.call("compliance_officer", TRAIL), "auditEvents")["nodes"]
    return [n for n in nodes if n["seq"] > mark and (n["action"], n["resourceType"]) == (
        "CREATE", "questionnaire_response")]


async def test_the_trails_record_of_an_anonymous_answer_names_no_one_and_no_door(tenant: Tenant,
                                                                                 services: Services) -> None:
    """Each door as its client uses it: the link (read, then answered), the portal (signed in, the invitations
    listed, then answered), a nurse (the patient's invitations read, then the answer entered from a call), and a
    family member's link. The trail keeps each answer's exact time, and next to it what the portal's patient or the
    nurse read a moment before, with the patient's id, address and user agent. The answer's record said "anonymous
    portal" under the patients' policy rule, which pointed at that portal read: the patient who answered, and when.
    Now the record is the same through the link, the portal and a family member's link (made by "anonymous", reason
    "anonymous", one rule), a nurse's names the nurse, not phone or paper; none names a patient, contact, invitation
    or response, an address, a user agent or a request, in auditEvents, filtered by the patient, or in the export."""
    q = await questionnaire(tenant, anonymous=True)
    await trigger(tenant, q)
    records: dict[str, dict[str, Any]] = {}
    about: dict[str, set[str]] = {}
    patients: dict[str, uuid.UUID] = {}
    for door in ("link", "portal", "phone"):
        pid, row, token = await invited(tenant, services, q)
        mark = await last_seq(tenant)
        user = await open_account(tenant, pid)  # signed in: on the trail, with its address and user agent
        if door == "link":
            ok(await tenant.call(None, BY_LINK, t=token), "surveyByLink")
        elif door == "portal":
            ok(await user.call(MY_INVITATIONS), "mySurveyInvitations")
        else:
            ok(await tenant.call("nurse", INVITATIONS, pid=str(pid)), "patientSurveyInvitations")
        ok(await answer(door, tenant, token, row, user, GOOD), ROOTS[door])
        [records[door]] = await answer_records(tenant, mark)
        about[door], patients[door] = {str(pid), str(row.id)}, pid
    # a family member answers through their link
    await SurveyTrigger.filter(institution_id=tenant.id).update(active=False)
    family = await questionnaire(tenant, anonymous=True, respondent="family")
    await trigger(tenant, family, delayHours=0)
    pid = await texted(tenant)
    contact = await family_member(tenant, pid, "Zhao Family")
    await finished_visit(tenant, pid)
    row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    mark = await last_seq(tenant)
    ok(await tenant.call(None, BY_LINK, t=link_of(services, row)), "surveyByLink")
    ok(await tenant.call(None, FAMILY_LINK, t=link_of(services, row), answers=GOOD), "surveyAnswerByLink")
    [records["family"]] = await answer_records(tenant, mark)
    about["family"], patients["family"] = {str(pid), str(row.id), str(contact)}, pid

    def named(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in ("id", "seq")}

    nobody = {"actorKind": "ANONYMOUS", "actorId": None, "action": "CREATE", "resourceType": "questionnaire_response",
              "resourceId": None, "patientId": None, "resourceIds": [], "patientIds": [], "fieldClasses": [],
              "fieldsRead": ["answers", "invitation.answered"], "outcome": "ALLOWED", "reason": "anonymous",
              "policyRule": "survey answer, anonymous", "requestId": "", "clientAddress": "", "userAgent": ""}
    for door in ("link", "portal", "family"):
        assert named(records[door]) == nobody, door
    assert named(records["phone"]) == {**nobody, "actorKind": "STAFF", "actorId": str(tenant.staff_ids["nurse"]),
                                       "policyRule": named(records["phone"])["policyRule"]}
    assert named(records["phone"])["policyRule"].startswith("nurse, ")
    responses = {str(r.id) for r in await QuestionnaireResponse.filter(institution_id=tenant.id)}
    for door, record in records.items():
        assert not (about[door] | responses) & set(str(record).replace("'", " ").split()), door
    # each patient's trail (what their access report is made of) holds their sign-in and reads, not their answer
    for door, pid in patients.items():
        mine = ok(await tenant.call("compliance_officer", TRAIL, patient=str(pid)), "auditEvents")["nodes"]
        assert mine and not [n for n in mine if n["resourceType"] == "questionnaire_response"], door
    # the export (the evidence, every column): the same, no address, user agent or request
    reply = await tenant.client.get("/compliance/exports/audit.ndjson", headers={
        "authorization": f"Bearer {tenant.tokens['compliance_officer']}"})
    assert reply.status_code == 200
    exported = {line["id"]: line for line in map(json.loads, reply.text.splitlines()) if "id" in line}
    for door, record in records.items():
        line = exported[record["id"]]
        assert (line["patient_id"], line["resource_id"], line["client_address"], line["user_agent"],
                line["request_id"], line["subjects"], line["reason"]) == ("", "", "", "", "", "", "anonymous")
        assert not about[door] & set(str(line).replace("'", " ").split()), door
    # the denied twin: an identified answer's record names its patient, invitation and request
    identified = await questionnaire(tenant)
    await SurveyTrigger.filter(institution_id=tenant.id).update(active=False)
    await trigger(tenant, identified)
    pid, row, token = await invited(tenant, services, identified)
    mark = await last_seq(tenant)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    [named_one] = await answer_records(tenant, mark)
    assert (named_one["patientId"], named_one["reason"], named_one["clientAddress"] != "") == (str(pid), "link", True)
