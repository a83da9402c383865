"""Answering surveys through the API: the no-sign-in link (single use, expiring, unforgeable: a refused link
records its refusal and nothing else), the portal, staff entering phone and paper answers, every item kind with
valid and invalid answers, required and conditional items, anonymous questionnaires with no path back to the
patient (through every query, the data export and the audit trail), a low score opening exactly one ticket, and
who reads which responses (free text under its own permission)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core import questionnaire as instruments
from models import (
    AuditEvent,
    Communication,
    Patient,
    QuestionnaireResponse,
    ResponseAnswer,
    SurveyInvitation,
    SurveySettings,
    Ticket,
)
from resolvers import institution as institutions
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, login, subjects
from tests.patients import PatientUser, events_since, mark, open_account
from tests.surveys import GOOD, LOW, invited, month_closed, questionnaire, trigger

BY_LINK = """query($t: String!) { surveyByLink(token: $t) { expiresAt
  questionnaire { id version anonymous title { zhCN en } items { linkId kind required } } } }"""
BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId followUp } }"""
ANSWER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswer(invitationId: $id, answers: $answers) { anonymous responseId followUp } }"""
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { anonymous responseId followUp } }"""
RESPONSES = """query($q: ID, $d: ID, $t: ID, $first: Int, $after: String) {
  questionnaireResponses(questionnaireId: $q, departmentId: $d, ticketId: $t, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id anonymous source month score satisfied nps csat low departmentId visitId ticketId followUpTicketId
            enteredById questionnaire { id } patient { id }
            answers { linkId number codes } } } }"""
TEXTS = """query($q: ID) { questionnaireResponses(questionnaireId: $q) { nodes { id answers { linkId text } } } }"""
EXPORT = "{ myDataExport }"
REQUIRED_ANSWERS = [{"linkId": "q1", "number": 4}, {"linkId": "q3", "number": 4}]


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def written(tenant: Tenant) -> tuple[int, int, int, int, int]:
    """What answering writes: responses, answers, answered invitations, tickets, allowed audit events."""
    return (await QuestionnaireResponse.filter(institution_id=tenant.id).count(),
            await ResponseAnswer.filter(institution_id=tenant.id).count(),
            await SurveyInvitation.filter(institution_id=tenant.id, answered=True).count(),
            await Ticket.filter(institution_id=tenant.id).count(),
            await AuditEvent.filter(institution_id=tenant.id, outcome="allowed").count())


# -- the link ----------------------------------------------------------------------------------------------


async def test_a_link_shows_the_questionnaire_and_nothing_of_the_patient(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, row, token = await invited(tenant, services, q)
    shown = ok(await tenant.call(None, BY_LINK, t=token), "surveyByLink")
    assert shown["questionnaire"]["id"] == str(q.id) and shown["questionnaire"]["title"]["zhCN"] == "门诊满意度调查"
    assert [i["linkId"] for i in shown["questionnaire"]["items"]] == ["q1", "q2", "s1", "q5", "q6", "q7", "q8"]
    assert datetime.fromisoformat(shown["expiresAt"]) == row.expires_at
    name = (await Patient.get(id=pid)).full_name
    assert name not in str(shown) and str(pid) not in str(shown)
    [read] = await AuditEvent.filter(institution_id=tenant.id, action="read", resource_type="survey_invitation")
    assert (read.actor_kind, read.resource_id, read.patient_id, read.policy_rule) == ("anonymous", row.id, pid,
                                                                                      "survey link")


async def test_a_link_answers_once_and_records_the_answer(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await trigger(tenant, q, reminderAfterDays=2)
    pid, row, token = await invited(tenant, services, q)
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    assert receipt["anonymous"] is False and receipt["followUp"] is False
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert (response.patient_id, response.visit_id, response.invitation_id, response.source) == (
        pid, row.visit_id, row.id, "link")
    assert (round(response.score or 0, 4), response.satisfied, response.nps, response.csat, response.low) == (
        91.6667, True, 9, 4, False)
    assert response.month == datetime.now(UTC).astimezone(tenant_zone()).strftime("%Y-%m")
    answers = await ResponseAnswer.filter(response_id=response.id).order_by("link_id", "choice")
    assert [(a.link_id, a.number, a.choice, a.text is not None) for a in answers] == [
        ("q1", 5.0, None, False), ("q3", 4.0, None, False), ("q4", 1.0, None, False), ("q5", None, "web", False),
        ("q6", None, "clean", False), ("q6", None, "xray", False), ("q7", 9.0, None, False),
        ("q8", None, None, True)]
    assert b"gums" not in bytes(answers[-1].text or b"")  # sealed
    invitation = await SurveyInvitation.get(id=row.id)
    assert (invitation.answered, invitation.status, invitation.answered_at is not None) == (True, "answered", True)
    records = await AuditEvent.filter(institution_id=tenant.id, action__in=["create", "update"],
                                      resource_type__in=["questionnaire_response", "survey_invitation"],
                                      actor_kind="anonymous").order_by("seq")
    assert [(e.action, e.resource_type, e.resource_id, e.patient_id, e.reason) for e in records] == [
        ("create", "questionnaire_response", response.id, pid, "link"),
        ("update", "survey_invitation", row.id, pid, "")]
    before = await written(tenant)
    again = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD)
    assert again.codes == ["BAD_USER_INPUT"] and again.errors[0]["extensions"] == {
        "code": "BAD_USER_INPUT", "field": "token", "reason": "answered"}
    assert again.errors[0]["message"] == "token: this survey has already been answered."
    assert (await tenant.call(None, BY_LINK, t=token)).errors[0]["extensions"]["reason"] == "answered"
    assert await written(tenant) == before
    denied = await tenant.audit_events(outcome="denied")
    assert [(e.actor_kind, e.resource_id, e.reason) for e in denied] == [("anonymous", row.id, "answered")] * 2


def tenant_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


async def test_answering_withdraws_the_queued_reminder(tenant: Tenant, services: Services) -> None:
    from resolvers import survey

    q = await questionnaire(tenant)
    await trigger(tenant, q, reminderAfterDays=1)
    _, row, token = await invited(tenant, services, q)
    await survey.remind_unanswered(row.send_at + timedelta(days=1, minutes=1))
    assert (await Communication.get(key=f"survey:{row.id}:reminder")).status == "queued"
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=REQUIRED_ANSWERS), "surveyAnswerByLink")
    messages = await Communication.filter(key__startswith=f"survey:{row.id}:")
    assert {m.key.rsplit(":", 1)[1]: m.status for m in messages} == {"invitation": "cancelled",
                                                                     "reminder": "cancelled"}


@pytest.mark.parametrize("make", ["forged", "malformed", "other_prefix", "expired", "cancelled"])
async def test_a_link_that_does_not_hold_is_refused_and_records_nothing_else(tenant: Tenant, services: Services,
                                                                              make: str) -> None:
    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    reason = "invalid"
    if make == "forged":
        token = "clq_" + secrets.token_urlsafe(32)
    elif make == "malformed":
        token = token[:-1] + "!"
    elif make == "other_prefix":
        token = "cli_" + token[4:]
    elif make == "expired":
        await SurveyInvitation.filter(id=row.id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        reason = "expired"
    else:
        await SurveyInvitation.filter(id=row.id).update(status="cancelled")
        reason = "expired"
    before = await written(tenant)
    system_before = await AuditEvent.filter(outcome="denied", reason="invalid").count()
    for query, root in ((BY_LINK_ANSWER, "surveyAnswerByLink"), (BY_LINK, "surveyByLink")):
        reply = await tenant.call(None, query, t=token, answers=GOOD) if root == "surveyAnswerByLink" \
            else await tenant.call(None, query, t=token)
        assert reply.data == {root: None}
        assert reply.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "token", "reason": reason}
    assert await written(tenant) == before
    if reason == "invalid":  # an unknown link names no institution: the system chain has its refusals
        assert await AuditEvent.filter(outcome="denied", reason="invalid").count() == system_before + 2
        assert await tenant.audit_events(outcome="denied") == []
    else:
        assert [(e.resource_id, e.reason) for e in await tenant.audit_events(outcome="denied")] == [
            (row.id, reason)] * 2


async def test_two_answers_through_one_link_at_once_record_one(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, row, token = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    replies = await asyncio.gather(tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD),
                                   tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD),
                                   user.call(ANSWER, id=str(row.id), answers=GOOD))
    assert sorted("OK" if not r.errors else r.codes[0] for r in replies) == ["BAD_USER_INPUT", "BAD_USER_INPUT", "OK"]
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1


# -- item kinds, required and conditional items ------------------------------------------------------------

INVALID: list[tuple[list[dict[str, Any]], str]] = [
    ([{"linkId": "q3", "number": 4}], "answers.q1"),  # required
    ([{"linkId": "q1", "number": 6}, {"linkId": "q3", "number": 4}], "answers.q1"),  # Likert 1-5
    ([{"linkId": "q1", "number": 0}, {"linkId": "q3", "number": 4}], "answers.q1"),
    ([{"linkId": "q1", "boolean": True}, {"linkId": "q3", "number": 4}], "answers.q1"),  # wrong kind
    ([*REQUIRED_ANSWERS[:1], {"linkId": "q3", "number": 9}], "answers.q3"),  # CSAT 1-5
    ([*REQUIRED_ANSWERS, {"linkId": "q4", "number": 1}], "answers.q4"),  # yes/no is a boolean
    ([*REQUIRED_ANSWERS, {"linkId": "q5", "code": "tv"}], "answers.q5"),  # not an option
    ([*REQUIRED_ANSWERS, {"linkId": "q5", "codes": ["web"]}], "answers.q5"),
    ([*REQUIRED_ANSWERS, {"linkId": "q6", "codes": ["clean", "tv"]}], "answers.q6"),
    ([*REQUIRED_ANSWERS, {"linkId": "q6", "codes": ["clean", "clean"]}], "answers.q6"),
    ([*REQUIRED_ANSWERS, {"linkId": "q7", "number": 11}], "answers.q7"),  # NPS 0-10
    ([*REQUIRED_ANSWERS, {"linkId": "q7", "number": -1}], "answers.q7"),
    ([*REQUIRED_ANSWERS, {"linkId": "q8", "text": "x" * 2001}], "answers.q8"),
    ([*REQUIRED_ANSWERS, {"linkId": "q8", "number": 3}], "answers.q8"),
    ([*REQUIRED_ANSWERS, {"linkId": "q2", "text": "Hidden: q1 is 4"}], "answers.q2"),  # conditional, hidden
    ([*REQUIRED_ANSWERS, {"linkId": "s1", "text": "a section"}], "answers.s1"),
    ([*REQUIRED_ANSWERS, {"linkId": "q9", "number": 3}], "answers.q9"),  # unknown item
    ([*REQUIRED_ANSWERS, {"linkId": "q7", "number": 3, "text": "two values"}], "answers.q7"),
    ([*REQUIRED_ANSWERS, {"linkId": "q7"}], "answers.q7"),
    ([*REQUIRED_ANSWERS, {"linkId": "q1", "number": 3}], "answers.q1"),  # twice
]


@pytest.mark.parametrize(("answers", "field"), INVALID, ids=[f"{i}-{f}" for i, (_, f) in enumerate(INVALID)])
async def test_invalid_answers_are_refused_with_nothing_written(tenant: Tenant, services: Services,
                                                                answers: list[dict[str, Any]], field: str) -> None:
    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    before = await written(tenant)
    reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field, reply.errors
    assert await written(tenant) == before
    assert not (await SurveyInvitation.get(id=row.id)).answered


VALID: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
    (REQUIRED_ANSWERS, {"score": 75.0, "satisfied": True, "nps": None, "csat": 4, "low": False}),
    ([{"linkId": "q1", "number": 1}, {"linkId": "q3", "number": 5}],  # q2 shown but not required
     {"score": 50.0, "satisfied": False, "nps": None, "csat": 5, "low": True}),
    ([{"linkId": "q1", "number": 2}, {"linkId": "q2", "text": "Rude"}, {"linkId": "q3", "number": 5},
      {"linkId": "q4", "boolean": False}, {"linkId": "q7", "number": 10}],
     {"score": round((25 + 100 + 0) / 3, 6), "satisfied": False, "nps": 10, "csat": 5, "low": True}),
    ([*REQUIRED_ANSWERS, {"linkId": "q7", "number": 0}, {"linkId": "q6", "codes": ["fill"]},
      {"linkId": "q5", "code": "friend"}, {"linkId": "q8", "text": "   "}],  # blank text is no answer
     {"score": 75.0, "satisfied": True, "nps": 0, "csat": 4, "low": True}),
]


@pytest.mark.parametrize(("answers", "scored"), VALID, ids=[str(i) for i in range(len(VALID))])
async def test_every_item_kind_is_recorded_and_scored(tenant: Tenant, services: Services,
                                                      answers: list[dict[str, Any]], scored: dict[str, Any]) -> None:
    q = await questionnaire(tenant)
    _, _, token = await invited(tenant, services, q)
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers), "surveyAnswerByLink")
    row = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert {"score": row.score, "satisfied": row.satisfied, "nps": row.nps, "csat": row.csat, "low": row.low} == scored
    expected = instruments.check_answers(q.items, {a["linkId"]: next(v for k, v in a.items() if k != "linkId")
                                                   for a in answers})
    stored = {a.link_id for a in await ResponseAnswer.filter(response_id=row.id)}
    assert stored == set(expected)


# -- the portal and staff ----------------------------------------------------------------------------------


async def test_the_patient_answers_their_own_invitation_in_the_portal(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, row, _ = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    other = await open_account(tenant, (await invited(tenant, services, q))[0])
    assert (await other.call(ANSWER, id=str(row.id), answers=GOOD)).codes == ["NOT_FOUND"]
    receipt = ok(await user.call(ANSWER, id=str(row.id), answers=GOOD), "surveyAnswer")
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert (response.source, response.patient_id, response.entered_by_id) == ("portal", pid, None)
    again = await user.call(ANSWER, id=str(row.id), answers=GOOD)
    assert again.codes == ["BAD_USER_INPUT"] and again.errors[0]["extensions"]["field"] == "invitationId"
    record = await AuditEvent.get(institution_id=tenant.id, action="create", resource_type="questionnaire_response")
    assert (record.actor_kind, record.actor_id, record.patient_id) == ("patient", user.account_id, pid)


async def test_staff_enter_phone_and_paper_answers_recorded_as_such(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    entered = []
    for role, source in (("nurse", "PHONE"), ("front_desk", "PAPER")):
        _, row, _ = await invited(tenant, services, q)
        receipt = ok(await tenant.call(role, ENTER, id=str(row.id), answers=GOOD, source=source),
                     "surveyResponseEnter")
        response = await QuestionnaireResponse.get(id=receipt["responseId"])
        entered.append((response.source, response.entered_by_id))
        assert (await tenant.call(role, ENTER, id=str(row.id), answers=GOOD, source=source)).codes == [
            "BAD_USER_INPUT"]
    assert entered == [("phone", tenant.staff_ids["nurse"]), ("paper", tenant.staff_ids["front_desk"])]
    listed = ok(await tenant.call("admin", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]
    assert sorted((n["source"], n["enteredById"]) for n in listed) == [
        ("PAPER", str(tenant.staff_ids["front_desk"])), ("PHONE", str(tenant.staff_ids["nurse"]))]


async def test_staff_entry_refused_outside_reach_and_to_other_roles(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, in_b, _ = await invited(tenant, services, q, department="B")
    user = await open_account(tenant, in_b.patient_id)
    before = await written(tenant)
    assert (await tenant.call("nurse", ENTER, id=str(in_b.id), answers=GOOD, source="PHONE")).codes == ["NOT_FOUND"]
    assert (await tenant.call("nurse", ENTER, id=str(uuid.uuid4()), answers=GOOD, source="PHONE")).codes == [
        "NOT_FOUND"]
    for role in ("doctor", "department_head", "support_agent", "admin", "compliance_officer"):
        assert (await tenant.call(role, ENTER, id=str(in_b.id), answers=GOOD, source="PAPER")).codes == ["FORBIDDEN"]
        assert (await tenant.call(role, ANSWER, id=str(in_b.id), answers=GOOD)).codes == ["FORBIDDEN"]
    for role in ("nurse", "front_desk"):  # staff have no invitation of their own to answer in the portal
        assert (await tenant.call(role, ANSWER, id=str(in_b.id), answers=GOOD)).codes == ["NOT_FOUND"]
    assert (await user.call(ENTER, id=str(in_b.id), answers=GOOD, source="PAPER")).codes == ["FORBIDDEN"]
    assert await written(tenant) == before
    denied = await tenant.audit_events(outcome="denied")
    assert [(e.resource_type, e.reason) for e in denied] == [
        # an invitation out of reach is refused as a missing one is, with no statement more (the patient's file
        # is not looked up to name it: tests/api/test_out_of_reach_cost.py)
        ("survey_invitation", "not_found"), ("survey_invitation", "not_found"),
        *[("questionnaire_response", "forbidden")] * 10, ("patient", "not_found"), ("patient", "not_found"),
        ("questionnaire_response", "forbidden")]


# -- anonymous questionnaires ------------------------------------------------------------------------------


async def test_an_anonymous_response_has_no_path_back_to_its_patient(tenant: Tenant, services: Services) -> None:
    await SurveySettings.create(institution_id=tenant.id, min_cell=3)
    q = await questionnaire(tenant, anonymous=True)
    pid, row, token = await invited(tenant, services, q)
    user = await open_account(tenant, pid)
    mark = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=LOW), "surveyAnswerByLink")
    assert receipt == {"anonymous": True, "responseId": None, "followUp": False}
    [response] = await QuestionnaireResponse.filter(institution_id=tenant.id)
    assert (response.patient_id, response.visit_id, response.ticket_id, response.invitation_id,
            response.follow_up_ticket_id) == (None, None, None, None, None)
    assert response.id.version == 4 and response.low  # a random id, not time-ordered
    assert await Ticket.filter(institution_id=tenant.id).count() == 0  # no file to open it on
    invitation = await SurveyInvitation.get(id=row.id)
    assert (invitation.answered, invitation.answered_at, invitation.status) == (True, None, "requested")
    # the trail: one record, naming no patient, invitation or response, without the request's details
    new = await AuditEvent.filter(seq__gt=mark.seq if mark else 0, institution_id=tenant.id).order_by("seq")
    assert [(e.actor_kind, e.action, e.resource_type, e.resource_id, e.patient_id, e.request_id, e.client_address)
            for e in new] == [("anonymous", "create", "questionnaire_response", None, None, "", "")]
    # two more answers fill the cell (min 3): once its month has closed, the list shows it to whoever reads the
    # department's responses, with nothing that leads to a patient
    for _ in range(2):
        _, _, other = await invited(tenant, services, q)
        ok(await tenant.call(None, BY_LINK_ANSWER, t=other, answers=GOOD), "surveyAnswerByLink")
    await month_closed(tenant)
    for role in ("admin", "department_head"):
        nodes = ok(await tenant.call(role, RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]
        assert len(nodes) == 3 and all(n["anonymous"] and n["patient"] is None and n["visitId"] is None
                                       and n["ticketId"] is None for n in nodes)
        assert str(pid) not in str(nodes) and str(row.id) not in str(nodes)
    assert ok(await user.call(RESPONSES), "questionnaireResponses")["nodes"] == []  # not even to the patient
    export = ok(await user.call(EXPORT), "myDataExport")
    assert export["surveyResponses"] == [] and str(response.id) not in str(export)
    invitations = ok(await tenant.call("nurse", """query($pid: ID!) { patientSurveyInvitations(patientId: $pid) {
      nodes { id status answered } } }""", pid=str(pid)), "patientSurveyInvitations")["nodes"]
    assert invitations == [{"id": str(row.id), "status": "REQUESTED", "answered": None}]
    about_patient = await AuditEvent.filter(patient_id=pid, resource_type="questionnaire_response")
    assert about_patient == []


async def test_a_small_anonymous_cell_is_not_listed(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)  # min_cell 5 by default
    for _ in range(4):
        _, _, token = await invited(tenant, services, q)
        ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    await month_closed(tenant)
    assert ok(await tenant.call("admin", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"] == []  # four
    _, _, token = await invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    assert ok(await tenant.call("admin", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"] == []  # live
    await month_closed(tenant)
    assert len(ok(await tenant.call("admin", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]) == 5


async def test_staff_entering_an_anonymous_answer_are_named_the_patient_is_not(tenant: Tenant,
                                                                              services: Services) -> None:
    q = await questionnaire(tenant, anonymous=True)
    _, row, _ = await invited(tenant, services, q)
    mark = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    receipt = ok(await tenant.call("nurse", ENTER, id=str(row.id), answers=GOOD, source="PHONE"),
                 "surveyResponseEnter")
    assert receipt["responseId"] is None
    new = await AuditEvent.filter(seq__gt=mark.seq if mark else 0, institution_id=tenant.id).order_by("seq")
    assert [(e.actor_kind, e.actor_id, e.resource_id, e.patient_id, e.reason) for e in new] == [
        ("staff", tenant.staff_ids["nurse"], None, None, "anonymous")]
    response = await QuestionnaireResponse.get(institution_id=tenant.id)
    assert (response.source, response.entered_by_id, response.patient_id) == ("phone", None, None)


# -- a low score closes the loop ---------------------------------------------------------------------------


async def test_a_low_score_opens_exactly_one_complaint_on_the_patients_file(tenant: Tenant,
                                                                            services: Services) -> None:
    q = await questionnaire(tenant)
    pid, _, token = await invited(tenant, services, q)
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=LOW), "surveyAnswerByLink")
    assert receipt["followUp"] is True
    [ticket] = await Ticket.filter(institution_id=tenant.id)
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert response.follow_up_ticket_id == ticket.id
    assert (ticket.patient_id, ticket.category, ticket.channel, ticket.level, ticket.status, ticket.owner_id,
            ticket.department_id) == (pid, "complaint", "survey", 1, "new", None, tenant.departments["A"].id)
    assert ticket.next_due_at is not None  # on the SLA clock
    assert (await tenant.call(None, BY_LINK_ANSWER, t=token, answers=LOW)).codes == ["BAD_USER_INPUT"]
    assert await Ticket.filter(institution_id=tenant.id).count() == 1
    read = ok(await tenant.call("support_agent", """query($id: ID!) { ticket(id: $id) { channel subject description
      level } }""", id=str(ticket.id)), "ticket")
    assert read["channel"] == "SURVEY" and "Waited" not in str(read) and "score 25/100" in read["description"]
    created = await AuditEvent.get(institution_id=tenant.id, resource_type="ticket", action="create")
    assert (created.actor_kind, created.patient_id, created.policy_rule) == ("system", pid, "survey low score")


@pytest.mark.parametrize("closed", ["archived", "deceased"])
async def test_a_low_score_on_a_closed_file_is_recorded_and_calls_nobody_back(tenant: Tenant, services: Services,
                                                                               closed: str) -> None:
    """A link sent before the file was archived or the death recorded is answered as any other (nothing tells its
    holder the file closed), the low score on record; but nobody is called back: what the file closed cancelled its
    calls, and a deceased patient is never called (found in review: a family member answering the patient's link
    opened a level-1 "call the patient back" complaint on the deceased patient's file). The active file's twin opens
    one (test_a_low_score_opens_exactly_one_complaint_on_the_patients_file)."""
    q = await questionnaire(tenant)
    pid, _, token = await invited(tenant, services, q)
    closing = ("mutation($id: ID!) { patientArchive(id: $id) { id } }" if closed == "archived" else
               "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) { id } }")
    ok(await tenant.call("front_desk", closing, id=str(pid)), "patientArchive" if closed == "archived" else
       "patientUpdate")

    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=LOW), "surveyAnswerByLink")

    assert receipt["followUp"] is False
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert (response.low, response.follow_up_ticket_id) == (True, None)
    assert await Ticket.filter(institution_id=tenant.id).count() == 0


async def test_a_low_score_without_a_bottom_nps_is_level_two(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, row, _ = await invited(tenant, services, q)
    ok(await tenant.call("nurse", ENTER, id=str(row.id), source="PHONE",
                         answers=[{"linkId": "q1", "number": 4}, {"linkId": "q3", "number": 1}]),
       "surveyResponseEnter")
    assert [t.level for t in await Ticket.filter(institution_id=tenant.id)] == [2]


# -- reading responses -------------------------------------------------------------------------------------


async def answered(tenant: Tenant, services: Services, q: Any, department: str = "A",
                   answers: list[dict[str, Any]] = GOOD) -> tuple[uuid.UUID, str]:
    pid, _, token = await invited(tenant, services, q, department=department)
    return pid, ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers),
                   "surveyAnswerByLink")["responseId"]


async def test_who_reads_which_responses(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid_a, in_a = await answered(tenant, services, q)
    _, in_b = await answered(tenant, services, q, "B")
    _, low = await answered(tenant, services, q, answers=LOW)
    ticket = await Ticket.get(institution_id=tenant.id)

    def ids(reply: Any) -> list[str]:
        return sorted(n["id"] for n in ok(reply, "questionnaireResponses")["nodes"])

    assert ids(await tenant.call("admin", RESPONSES)) == sorted([in_a, in_b, low])
    assert ids(await tenant.call("department_head", RESPONSES)) == sorted([in_a, low])
    assert ids(await tenant.call("support_agent", RESPONSES)) == []  # no ticket of theirs yet
    ok(await tenant.call("support_agent", """mutation($id: ID!, $to: ID!) { ticketAssign(id: $id,
      assigneeId: $to) { id } }""", id=str(ticket.id), to=str(tenant.staff_ids["support_agent"])), "ticketAssign")
    assert ids(await tenant.call("support_agent", RESPONSES, t=str(ticket.id))) == [low]
    assert ids(await tenant.call("support_agent", RESPONSES)) == [low]
    user = await open_account(tenant, pid_a)
    assert ids(await user.call(RESPONSES)) == [in_a]
    for role in ("nurse", "front_desk", "doctor", "compliance_officer"):
        assert (await tenant.call(role, RESPONSES)).codes == ["FORBIDDEN"]
    node = next(n for n in ok(await tenant.call("department_head", RESPONSES), "questionnaireResponses")["nodes"]
                if n["id"] == in_a)
    assert node["patient"] == {"id": str(pid_a)} and node["source"] == "LINK"
    assert node["answers"] == [{"linkId": "q1", "number": 5.0, "codes": []}, {"linkId": "q3", "number": 4.0,
                                                                             "codes": []},
                               {"linkId": "q4", "number": 1.0, "codes": []}, {"linkId": "q5", "number": None,
                                                                             "codes": ["web"]},
                               {"linkId": "q6", "number": None, "codes": ["clean", "xray"]},
                               {"linkId": "q7", "number": 9.0, "codes": []},
                               {"linkId": "q8", "number": None, "codes": []}]


async def test_free_text_is_read_under_its_own_permission(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, response_id = await answered(tenant, services, q)
    head = ok(await tenant.call("department_head", TEXTS, q=str(q.id)), "questionnaireResponses")["nodes"]
    assert [a["text"] for a in head[0]["answers"] if a["linkId"] == "q8"] == [
        "Friendly nurses, my gums bled a little"]
    read = await AuditEvent.filter(institution_id=tenant.id, action="read", resource_type="questionnaire_response",
                                   actor_id=tenant.staff_ids["department_head"]).first()
    assert read is not None and "response_answer.text" in read.fields_read and read.patient_id == pid
    admin = await tenant.call("admin", TEXTS, q=str(q.id))
    assert admin.codes == ["FORBIDDEN"]  # q8's text; the other answers have none
    texts = [a["text"] for a in admin.data["questionnaireResponses"]["nodes"][0]["answers"]]
    assert texts == [None] * 7
    denied = await AuditEvent.get(institution_id=tenant.id, outcome="denied")
    assert (denied.actor_id, denied.resource_id, denied.reason) == (tenant.staff_ids["admin"],
                                                                   uuid.UUID(response_id), "forbidden_field")
    user = await open_account(tenant, pid)
    own = ok(await user.call(TEXTS), "questionnaireResponses")["nodes"]
    assert "Friendly nurses, my gums bled a little" in str(own)


async def test_free_text_is_read_only_where_a_role_that_reads_it_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """The right to read free text is a department head's for their departments (a support agent's for the tickets
    they work), not every role's reach: an admin who also heads department A reads the scores and choices of the
    whole institution, and the text of department A's responses only. Found in review: the text was decided for
    the user and read on every response of the union of the roles' reaches, so such an account read the free text
    (health information) of every department."""
    q = await questionnaire(tenant)
    _, in_a = await answered(tenant, services, q)
    _, in_b = await answered(tenant, services, q, "B")
    email = f"head-admin.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name="head and admin",
                                              password=PASSWORD, roles=["department_head", "admin"],
                                              departments=[tenant.departments["A"]])
    tenant.staff_ids["head_admin"], tenant.tokens["head_admin"] = staff.id, await login(client, email)
    seq = await mark(tenant.id)

    listed = await tenant.call("head_admin", TEXTS, q=str(q.id))
    one_b = await tenant.call("head_admin", ONE, id=in_b)
    comments = ok(await tenant.call("head_admin", COMMENTS, q=str(q.id)), "questionnaireResponseComments")["nodes"]
    exported = await tenant.call("head_admin", "query($id: ID!) { questionnaireResponseExportFhir(id: $id) }",
                                 id=in_b)

    texts = {n["id"]: [a["text"] for a in n["answers"] if a["linkId"] == "q8"]
             for n in listed.data["questionnaireResponses"]["nodes"]}
    assert texts == {in_a: ["Friendly nurses, my gums bled a little"], in_b: [None]}  # B's scores still listed
    assert listed.codes == ["FORBIDDEN"]
    assert one_b.codes == ["FORBIDDEN"] and one_b.data["questionnaireResponse"]["comments"] is None
    assert [n["id"] for n in comments] == [in_a]
    assert exported.errors == [], exported.errors
    assert "gums bled" not in exported.data["questionnaireResponseExportFhir"]
    refused = [e for e in await events_since(tenant.id, seq, outcome="denied")]
    assert {(e.resource_id, e.reason) for e in refused} == {(uuid.UUID(in_b), "forbidden_field")}
    opened = [e for e in await events_since(tenant.id, seq, action="read", outcome="allowed")
              if "response_answer.text" in (e.fields_read or "")]
    assert opened and all(uuid.UUID(in_b) not in {r for r, _ in subjects(e)} for e in opened)


async def test_the_list_pages_at_a_fixed_cost(tenant: Tenant, services: Services, sql_counter: SqlCounter) -> None:
    q = await questionnaire(tenant)
    for _ in range(6):
        await answered(tenant, services, q)
    counts = []
    for first in (2, 6):
        sql_counter.statements.clear()
        reply = await tenant.call("department_head", TEXTS.replace("questionnaireId: $q", "questionnaireId: $q, "
                                                                   "first: $first").replace("($q: ID)",
                                                                                            "($q: ID, $first: Int)"),
                                  q=str(q.id), first=first)
        assert reply.errors == [] and len(reply.data["questionnaireResponses"]["nodes"]) == first
        counts.append(len(sql_counter.statements))
    assert counts[0] == counts[1]
    page = ok(await tenant.call("admin", RESPONSES, q=str(q.id), first=4), "questionnaireResponses")
    rest = ok(await tenant.call("admin", RESPONSES, q=str(q.id), first=4, after=page["pageInfo"]["endCursor"]),
              "questionnaireResponses")
    assert len(page["nodes"]) == 4 and len(rest["nodes"]) == 2 and rest["pageInfo"]["hasNextPage"] is False
    assert (await tenant.call("admin", RESPONSES, after="garbage")).codes == ["BAD_USER_INPUT"]


async def test_the_list_answers_with_a_thousand_released_anonymous_cells(tenant: Tenant) -> None:
    """An anonymous questionnaire's released cells (version, department, month) grow with the years: a hospital of 40
    departments has about 960 after two years of the doctors' monthly rating. Found in review: they were one OR of a
    term per cell, and from about 950 the list (and its comments) answered INTERNAL_SERVER_ERROR (RecursionError
    building the SQL), for every reader."""
    await SurveySettings.create(institution_id=tenant.id, min_cell=3)
    q = await questionnaire(tenant, anonymous=True)
    cells = [(department, f"{1990 + n // 12}-{n % 12 + 1:02d}") for department in (tenant.departments["A"].id,
                                                                                     tenant.departments["B"].id, None)
             for n in range(340)]
    rows = [QuestionnaireResponse(id=uuid.uuid4(), institution_id=tenant.id, questionnaire_id=q.id, source="link",
                                  department_id=department, month=month)
            for department, month in cells for _ in range(3)]
    small = QuestionnaireResponse(id=uuid.uuid4(), institution_id=tenant.id, questionnaire_id=q.id, source="link",
                                  department_id=tenant.departments["A"].id, month="1989-12")  # a cell of one
    await QuestionnaireResponse.bulk_create([*rows, small], batch_size=500)
    reply = await tenant.call("admin", """{ questionnaireResponses(first: 100) { totalCount nodes { id month } } }""")
    listed = ok(reply, "questionnaireResponses")
    assert listed["totalCount"] == 3 * len(cells) and len(listed["nodes"]) == 100
    assert str(small.id) not in {node["id"] for node in listed["nodes"]}


async def test_the_patients_export_holds_their_identified_responses(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    pid, response_id = await answered(tenant, services, q)
    user: PatientUser = await open_account(tenant, pid)
    export = ok(await user.call(EXPORT), "myDataExport")
    [copy] = export["surveyResponses"]
    assert copy["id"] == response_id and copy["source"] == "LINK"
    assert {"linkId": "q8", "number": None, "choices": [],
            "text": "Friendly nurses, my gums bled a little"} in copy["answers"]


ONE = """query($id: ID!) { questionnaireResponse(id: $id) { id source comments { linkId text } } }"""


async def test_one_response_in_reach_and_its_comments(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, in_a = await answered(tenant, services, q)
    _, in_b = await answered(tenant, services, q, "B")
    assert ok(await tenant.call("department_head", ONE, id=in_a), "questionnaireResponse") == {
        "id": in_a, "source": "LINK", "comments": [{"linkId": "q8", "text": "Friendly nurses, my gums bled a little"}]}
    assert (await tenant.call("department_head", ONE, id=in_b)).codes == ["NOT_FOUND"]
    assert (await tenant.call("support_agent", ONE, id=in_a)).codes == ["NOT_FOUND"]
    assert (await tenant.call("nurse", ONE, id=in_a)).codes == ["FORBIDDEN"]
    admin = await tenant.call("admin", ONE, id=in_b)
    assert admin.codes == ["FORBIDDEN"] and admin.data == {"questionnaireResponse": {
        "id": in_b, "source": "LINK", "comments": None}}
    anonymous = await questionnaire(tenant, anonymous=True)
    await trigger(tenant, anonymous, departmentId=str(tenant.departments["A"].id), visitKind="OUTPATIENT")
    _, token = (await invited(tenant, services, anonymous))[1:]
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    lone = await QuestionnaireResponse.get(questionnaire_id=anonymous.id)
    await month_closed(tenant)
    assert (await tenant.call("admin", ONE, id=str(lone.id))).codes == ["NOT_FOUND"]  # a cell of one
    await SurveySettings.create(institution_id=tenant.id, min_cell=3)
    for _ in range(2):
        _, token = (await invited(tenant, services, anonymous))[1:]
        ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    await month_closed(tenant)
    shown = await tenant.call("admin", "query($id: ID!) { questionnaireResponse(id: $id) { id patient { id } } }",
                              id=str(lone.id))
    assert ok(shown, "questionnaireResponse") == {"id": str(lone.id), "patient": None}


COMMENTS = """query($q: ID) { questionnaireResponseComments(questionnaireId: $q) {
  nodes { id comments { linkId text } } } }"""


async def test_the_comments_list_needs_the_text_permission(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, commented = await answered(tenant, services, q)
    await answered(tenant, services, q, answers=REQUIRED_ANSWERS)  # no free text
    nodes = ok(await tenant.call("department_head", COMMENTS, q=str(q.id)), "questionnaireResponseComments")["nodes"]
    assert nodes == [{"id": commented,
                      "comments": [{"linkId": "q8", "text": "Friendly nurses, my gums bled a little"}]}]
    for role in ("admin", "nurse"):
        reply = await tenant.call(role, COMMENTS, q=str(q.id))
        assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")] == [
        (tenant.staff_ids["admin"], "forbidden"), (tenant.staff_ids["nurse"], "forbidden")]


# -- partners ----------------------------------------------------------------------------------------------


async def test_a_partner_enters_answers_only_with_the_scope_and_for_granted_patients(tenant: Tenant) -> None:
    from models import Questionnaire as QuestionnaireRow
    from tests.partners import ALL_SCOPES, make_partnership, token_for

    ship = await make_partnership(tenant, [*ALL_SCOPES, "questionnaire_response:create"])
    q: QuestionnaireRow = await questionnaire(tenant)
    now = datetime.now(UTC)
    rows = {pid: await SurveyInvitation.create(institution_id=tenant.id, questionnaire_id=q.id,
                                               cause_key=f"partner:{pid}", patient_id=pid, send_at=now,
                                               expires_at=now + timedelta(days=3))
            for pid in (ship.granted, ship.other)}
    assert (await ship.call(ENTER, id=str(rows[ship.other].id), answers=GOOD, source="PAPER")).codes == [
        "NOT_FOUND"]
    without = await token_for(tenant.client, ship.client, " ".join(ALL_SCOPES))
    assert (await ship.call(ENTER, token=without, id=str(rows[ship.granted].id), answers=GOOD,
                            source="PAPER")).codes == ["FORBIDDEN"]
    receipt = ok(await ship.call(ENTER, id=str(rows[ship.granted].id), answers=GOOD, source="PAPER"),
                 "surveyResponseEnter")
    response = await QuestionnaireResponse.get(id=receipt["responseId"])
    assert (response.source, response.patient_id, response.entered_by_id) == ("paper", ship.granted, None)
    [record] = await ship.events(action="create", resource_type="questionnaire_response", outcome="allowed")
    assert (record.actor_kind, record.patient_id) == ("partner", ship.granted)


async def test_an_answer_checked_against_an_edited_revision_is_checked_again(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The instruments' in-place edit (no response yet) and an answer meet at the version's row: an answer
    checked against a revision that an edit replaced meanwhile is checked again, against the one it is stored
    under."""
    from models import Questionnaire as QuestionnaireRow
    from resolvers import institution
    from resolvers import questionnaire_response as answering

    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    items = [dict(item, required=True) if item["link_id"] == "q7" else item for item in q.items]
    real_zone = institution.zone

    async def edited_meanwhile(institution_id: uuid.UUID) -> Any:  # after the first check, before the transaction
        await QuestionnaireRow.filter(id=q.id).update(items=items, revision=q.revision + 1)
        return await real_zone(institution_id)

    monkeypatch.setattr(answering.institutions, "zone", edited_meanwhile)
    reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=REQUIRED_ANSWERS)  # q7 is required now
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "answers.q7"
    assert not (await SurveyInvitation.get(id=row.id)).answered
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 0
