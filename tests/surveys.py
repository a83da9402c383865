"""Surveys in tests: questionnaires of every item kind, triggers, invitations and their links."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from core import questionnaire as instruments
from core import tokens
from models import Questionnaire, QuestionnaireResponse, ResponseAnswer, SurveyInvitation
from resolvers import institution as institutions
from resolvers.context import Services
from tests.daytime import ZONE
from tests.factories import Tenant, make_patient

T = {"zh-CN": "题目", "en": "Question"}


def texts(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


# Every item kind: a required Likert, a comment shown only when it is 2 or less, a section with a required CSAT
# and a yes/no, a single and a multiple choice, an NPS and a free comment.
ITEMS: list[dict[str, Any]] = [
    {"link_id": "q1", "kind": "likert", "text": texts("接待", "Reception"), "required": True,
     "anchors": {"1": texts("很不满意", "Very dissatisfied"), "5": texts("很满意", "Very satisfied")}},
    {"link_id": "q2", "kind": "text", "text": texts("哪里不满意？", "What went wrong?"),
     "enable_when": {"link_id": "q1", "operator": "<=", "answer": 2}},
    {"link_id": "s1", "kind": "section", "text": texts("护理", "Nursing"), "items": [
        {"link_id": "q3", "kind": "csat", "text": texts("护士态度", "Nurses' attitude"), "required": True},
        {"link_id": "q4", "kind": "yes_no", "text": texts("有健康指导吗？", "Health guidance given?"), "counts": True},
    ]},
    {"link_id": "q5", "kind": "choice", "text": texts("您如何得知我们？", "How did you hear of us?"),
     "options": [{"code": "friend", "text": texts("朋友", "A friend")},
                 {"code": "web", "text": texts("网络", "The web")}]},
    {"link_id": "q6", "kind": "multi_choice", "text": texts("您使用了哪些服务？", "Which services?"),
     "options": [{"code": "clean", "text": texts("洁牙", "Cleaning")},
                 {"code": "fill", "text": texts("补牙", "Filling")},
                 {"code": "xray", "text": texts("拍片", "X-ray")}]},
    {"link_id": "q7", "kind": "nps", "text": texts("您会推荐我们吗？", "Would you recommend us?")},
    {"link_id": "q8", "kind": "text", "text": texts("其他意见", "Anything else?")},
]
SCORING: dict[str, Any] = {"method": "mean", "satisfied_at": 75, "nps_item": "q7", "csat_item": "q3",
                           "low": {"any_item_at_most": 2, "nps_at_most": 6}}
# A satisfied answer (score: q1 5 -> 100, q3 4 -> 75, q4 yes -> 100: mean 91.666667).
GOOD: list[dict[str, Any]] = [
    {"linkId": "q1", "number": 5}, {"linkId": "q3", "number": 4}, {"linkId": "q4", "boolean": True},
    {"linkId": "q5", "code": "web"}, {"linkId": "q6", "codes": ["xray", "clean"]},
    {"linkId": "q7", "number": 9}, {"linkId": "q8", "text": "Friendly nurses, my gums bled a little"}]
# A low one (q1 2 opens q2; NPS 3).
LOW: list[dict[str, Any]] = [
    {"linkId": "q1", "number": 2}, {"linkId": "q2", "text": "Waited an hour with a toothache"},
    {"linkId": "q3", "number": 3}, {"linkId": "q4", "boolean": False}, {"linkId": "q7", "number": 3}]


async def questionnaire(tenant: Tenant, *, anonymous: bool = False, status: str = "active",
                        respondent: str = "patient") -> Questionnaire:
    """An active questionnaire of every item kind (written as the instruments' API stores one)."""
    items, scoring = instruments.clean_definition(ITEMS, SCORING)
    return await Questionnaire.create(
        institution_id=tenant.id, key=uuid.uuid4(), version=1, status=status,
        title=texts("门诊满意度调查", "Outpatient satisfaction"), anonymous=anonymous, respondent=respondent,
        items=items, scoring=scoring)


async def reachable(tenant: Tenant, department: str = "A", *, consent: bool = True, **more: Any) -> uuid.UUID:
    """A patient who agreed to care messages by e-mail."""
    return await make_patient(tenant, departmentId=str(tenant.departments[department].id), contactConsent=consent,
                              contactChannels=["EMAIL"], email=f"p{uuid.uuid4().hex[:8]}@example.org",
                              contactPurposes=["CARE"], **more)


TRIGGER_CREATE = """mutation($input: SurveyTriggerCreateInput!) {
  surveyTriggerCreate(input: $input) { id event questionnaireKey visitKind department { id } delayHours
    reminderAfterDays active version } }"""
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id status } }"


async def trigger(tenant: Tenant, q: Questionnaire, role: str = "admin", **fields: Any) -> dict[str, Any]:
    data = {"event": "VISIT_FINISHED", "questionnaireKey": str(q.key), **fields}
    reply = await tenant.call(role, TRIGGER_CREATE, input=data)
    assert reply.errors == [], reply.errors
    return dict(reply.data["surveyTriggerCreate"])


async def finished_visit(tenant: Tenant, patient_id: uuid.UUID, *, kind: str = "OUTPATIENT", department: str = "A",
                         ended_at: datetime | None = None) -> str:
    # Five minutes ago, but not before the institution's day began: an invitation counts in the month its visit
    # ended, an answer in the month it came, and a test invites and answers for one month (found running the
    # survey reports in the first minutes of a Shanghai month, 16:00-16:05 UTC: invited in the month before).
    now = datetime.now(UTC)
    ended = ended_at or max(now - timedelta(minutes=5), datetime.combine(now.astimezone(ZONE).date(), time(0), ZONE))
    recorder = "nurse" if department == "A" else "front_desk"  # the nurse reaches department A's patients only
    reply = await tenant.call(recorder, VISIT_CREATE, input={
        "patientId": str(patient_id), "kind": kind, "departmentId": str(tenant.departments[department].id),
        "status": "FINISHED", "startedAt": (ended - timedelta(minutes=30)).isoformat(),
        "endedAt": ended.isoformat()})
    assert reply.errors == [], reply.errors
    return str(reply.data["visitCreate"]["id"])


async def month_closed(tenant: Tenant) -> str:
    """This month's responses as they read once it has closed (an anonymous questionnaire's current month is neither
    reported nor listed): moved back to the month before, which is returned."""
    today = datetime.now(await institutions.zone(tenant.id))
    before = f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"
    for model in (QuestionnaireResponse, ResponseAnswer):
        await model.filter(institution_id=tenant.id, month=f"{today:%Y-%m}").update(month=before)
    return before


def link_of(services: Services, invitation: SurveyInvitation) -> str:
    """The link token the invitation's message carries (as the outbox computes it)."""
    return tokens.survey_link(services.master_key.token_key, invitation.institution_id, invitation.id)


async def invited(tenant: Tenant, services: Services, q: Questionnaire, *, department: str = "A",
                  **patient: Any) -> tuple[uuid.UUID, SurveyInvitation, str]:
    """A patient of ``department`` invited to ``q`` by a finished visit (a trigger on it made first, once)."""
    from models import SurveyTrigger

    if not await SurveyTrigger.exists(institution_id=tenant.id, questionnaire_key=q.key, active=True):
        await trigger(tenant, q)
    pid = await reachable(tenant, department, **patient)
    await finished_visit(tenant, pid, department=department)
    row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    return pid, row, link_of(services, row)


# -- family respondents ------------------------------------------------------------------------------------

CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) {
  id } }"""


async def texted(tenant: Tenant, department: str = "A", *, consent: bool = True, **more: Any) -> uuid.UUID:
    """A patient who agreed to care messages by e-mail and SMS (a contact is written to by SMS or WeChat on the
    patient's consented channels, so a family member can be texted)."""
    return await make_patient(tenant, departmentId=str(tenant.departments[department].id), contactConsent=consent,
                              contactChannels=["EMAIL", "SMS"], email=f"p{uuid.uuid4().hex[:8]}@example.org",
                              contactPurposes=["CARE"], **more)


async def family_member(tenant: Tenant, patient_id: uuid.UUID, name: str, *, phone: str | None = "13600004444",
                        informed: bool = True, emergency: bool = False, relationship: str = "CHILD") -> uuid.UUID:
    """A contact of the patient, added by the front desk (``informed``: may receive information)."""
    reply = await tenant.call("front_desk", CONTACT_CREATE, pid=str(patient_id), input={
        "name": name, "relationship": relationship, "phone": phone, "isEmergency": emergency,
        "mayReceiveInformation": informed})
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])
