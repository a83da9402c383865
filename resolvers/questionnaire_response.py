"""Answering surveys (issue 14, FHIR QuestionnaireResponse): through the link that needs no sign-in, in the
portal, or entered by staff from a phone call or a paper form; staff rating a department on a staff
questionnaire (no invitation: see "staff rating a department"); reading the responses; a low score closing the
loop with a ticket.

Every door ends in ``_record``: the answers checked and scored by ``core.questionnaire`` before anything is
written, then one transaction that takes the invitation (compare-and-set of ``answered``: a second answer,
whatever its door, finds it taken and writes nothing), writes the response and one row per answered item
(a multiple choice one row per option; free text sealed with the institution's key), withdraws an
identified invitation's messages still queued (the reminder; not an anonymous one's, see below), and for an
identified questionnaire whose answer is low opens one complaint ticket on the patient's file through the
tickets' own path.

The link: its token (``clq_``, see ``resolvers.survey``) is looked up by its keyed digest. A forged,
malformed or unknown link, an expired one, or one already answered is refused with BAD_USER_INPUT on
``token`` and ``extensions.reason`` (``invalid``, ``expired``, ``answered``), recorded as a denial, and
nothing else is written. ``surveyByLink`` shows the questionnaire and when the link expires, nothing about
the patient.

Anonymous questionnaires: the response has no patient, visit, ticket or invitation, its id is random (not
time-ordered like other ids), the invitation records only that it was answered (not when), and the audit
trail gets one record for the whole answer naming no patient, contact, invitation or response, without the
request's details or the door (link or portal), made by "anonymous" (or the staff member who entered it: they know
whose it is, the trail does not say, nor whether by phone or on paper). No ticket is opened (there is no file to
open it on). The list shows an anonymous response only once its month has closed (``survey_report.live_month``,
the reports' rule: read twice, a live month's list showed its newest response, answers and free text, the moment
it came) and where its questionnaire, department and month hold at least ``min_cell`` responses; read by its id,
one not listed is NOT_FOUND, recorded as a missing one is.

When an anonymous invitation was answered is recorded nowhere, so that it cannot be lined up with the
response (issue 14): the response and its answer rows are dated the first instant of their month (as a staff
rater's are) and name nobody who entered them; the invitation's ``answered`` flag is set without a time, its
``status`` and ``updated_at`` left alone; its queued messages (an invitation not yet due, a reminder deferred
past the quiet hours) are NOT withdrawn at the moment of answering, which would date the answer on the
message's row: the outbox drops a survey message whose invitation was answered when the message falls due,
at a moment that owes nothing to the answer (and the reminder sweep queues no reminder for an answered
invitation). And no door tells whether an anonymous invitation was answered without being given a complete,
valid answer first: ``surveyByLink`` shows an anonymous questionnaire's form until its link expires, and the
link, the portal and staff entering answers learn "answered" only when the answer they give finds the
invitation taken. Whoever holds a link or calls a patient could otherwise poll it, free and unseen, for the
moment the patient answered; now a probe is an answer, written (and, for staff, recorded as theirs) if the
patient had not answered yet.

Decided where the issue is silent:
- a low answer opens a complaint of level 2, level 1 when the NPS answer is 3 or less (a detractor at the
  bottom of the scale), in the department of the invitation, channel ``survey``; its subject and
  description say which questionnaire and score, never an answer;
- free text is read with ``questionnaire_response.text: read`` (department heads, support agents, the
  patient their own): admins see scores and choices, not what patients wrote, as they read no clinical text;
  and only on the responses a role that reads text reaches (``ResponseView.text_reached``): an admin who also
  heads a department reads the text of that department's responses, the scores of every one;
- who reads which responses: admins the institution's, department heads their departments', support agents
  those linked to tickets they own or are assigned, a patient their own identified ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core import questionnaire as instruments
from core import questionnaire_fhir as fhir
from core import tokens
from core.crypto import InstitutionKeys, derive_key, field_aad
from core.errors import BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.principal import PATIENT
from core.validation import one_of
from models import Department, Patient, Questionnaire, QuestionnaireResponse, ResponseAnswer, SurveyInvitation, Ticket
from resolvers import access, pagination, sign_in_limit
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers import survey as surveys
from resolvers import survey_report as reports
from resolvers import ticket as tickets
from resolvers.access import PatientView
from resolvers.context import Context

ANONYMOUS = Actor("anonymous")
SYSTEM = Actor("system")
LINK_RULE = "survey link"
# The rule an anonymous answer through the link or the portal is recorded under: which of the two is not told (see
# "_answer_records")
ANONYMOUS_ANSWER_RULE = "survey answer, anonymous"
PATIENT_DOORS = ("link", "portal")
LOW_SCORE_RULE = "survey low score"
STAFF_SOURCES = ("phone", "paper")
CURSOR_KIND = "questionnaire-response"
REFUSALS = {
    "invalid": "token: this survey link is not valid.",
    "expired": "token: this survey link has expired.",
    "answered": "token: this survey has already been answered.",
}
# roles -> which responses they read (with questionnaire_response: read), and whose free text (with
# questionnaire_response.text: read)
INSTITUTION, DEPARTMENT, TICKETS, SELF = "institution", "department", "tickets", "self"
RESPONSE_REACH = {"admin": INSTITUTION, "department_head": DEPARTMENT, "support_agent": TICKETS, "patient": SELF}
READ, TEXT = "questionnaire_response", "questionnaire_response.text"


class LinkRefused(BadUserInput):
    """A survey link that does not hold, with the reason for the front end (``extensions.reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSALS[reason], field="token")
        self.extensions = {**(self.extensions or {}), "reason": reason}
        self.reason = reason


class _Taken(Exception):
    """The invitation was answered (or expired) under the caller's feet: the transaction rolls back. ``reason``: why,
    when it is not what the invitation's expiry says (``_why_taken``)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _SystemContext(Context):
    """The system acting in one institution (a low score's ticket): no principal, the institution's keys."""

    home: uuid.UUID | None = None

    @property
    def institution_id(self) -> uuid.UUID:
        assert self.home is not None
        return self.home

    @property
    def actor(self) -> Actor:
        return SYSTEM


# -- the link ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedSurvey:
    """What a link shows: the questionnaire and until when it may be answered."""

    questionnaire: Questionnaire
    expires_at: datetime


async def by_link(ctx: Context, token: str) -> LinkedSurvey:
    """The read is recorded, and the link opens again until it expires: its reads are bounded per link and minute
    (``sign_in_limit.admit_link_read``: over it RATE_LIMITED, and no row)."""
    invitation, questionnaire = await _linked(ctx, token, Action.READ)
    await sign_in_limit.admit_link_read(ctx, invitation.id, "survey_invitation")
    await writer.append_before_giving_way(
        [_link_record(ctx, invitation, questionnaire, Action.READ, Outcome.ALLOWED)])
    return LinkedSurvey(questionnaire, invitation.expires_at)


async def answer_by_link(ctx: Context, token: str, answers: Mapping[str, Any]) -> Receipt:
    invitation, questionnaire = await _linked(ctx, token, Action.CREATE)
    keys = await ctx.services.keyring.get(invitation.institution_id)
    door = Door("link", ANONYMOUS, LINK_RULE, ctx.request)
    try:
        try:
            return await _record(ctx, keys, invitation, questionnaire, answers, door)
        except access.MergedFile:  # merged since the link was read: the invitation is the survivor's now
            invitation, questionnaire = await _linked(ctx, token, Action.CREATE)
            return await _record(ctx, keys, invitation, questionnaire, answers, door)
    except _Taken as taken:
        raise await _refuse_link(ctx, invitation, questionnaire, Action.CREATE,
                                 taken.reason or _why_taken(invitation)) from None


async def _linked(ctx: Context, token: str, action: Action) -> tuple[SurveyInvitation, Questionnaire]:
    """The invitation a link holds, or a recorded refusal."""
    invitation = None
    if isinstance(token, str) and tokens.looks_like_survey_link(token):
        invitation = await SurveyInvitation.get_or_none(
            token_hash=tokens.token_digest(ctx.services.master_key.token_key, token))
    if invitation is None:
        raise await _refuse_link(ctx, None, None, action, "invalid")
    questionnaire = await Questionnaire.get(id=invitation.questionnaire_id)
    if invitation.answered and not questionnaire.anonymous:
        raise await _refuse_link(ctx, invitation, questionnaire, action, "answered")
    if _closed_to_patients(invitation, questionnaire):
        raise await _refuse_link(ctx, invitation, questionnaire, action, "expired")
    return invitation, questionnaire


def _closed_to_patients(invitation: SurveyInvitation, questionnaire: Questionnaire) -> bool:
    """Expired, cancelled, or of a version answered by staff since (edited in place while its invitations were out):
    a staff questionnaire's responses name nobody (``survey_report.names_nobody``), so none may come from an
    invitation, which would name its patient."""
    return (invitation.expires_at <= _now() or invitation.status == "cancelled"
            or questionnaire.respondent == reports.STAFF_RESPONDENT)


def _why_taken(invitation: SurveyInvitation) -> str:
    return "expired" if invitation.expires_at <= _now() else "answered"


async def _refuse_link(ctx: Context, invitation: SurveyInvitation | None, questionnaire: Questionnaire | None,
                       action: Action, reason: str) -> LinkRefused:
    """The refusal on the trail (an unknown link on the system chain), then the error: nothing else written. It
    counts against the caller's address first (over its limit: RATE_LIMITED, and no row)."""
    await sign_in_limit.admit_link(ctx, action, "survey_invitation")
    await writer.append_before_giving_way(
        [_link_record(ctx, invitation, questionnaire, action, Outcome.DENIED, reason)])
    return LinkRefused(reason)


def _link_record(ctx: Context, invitation: SurveyInvitation | None, questionnaire: Questionnaire | None,
                 action: Action, outcome: Outcome, reason: str = "") -> AuditRecord:
    """An anonymous questionnaire's link is recorded naming neither the patient nor the invitation."""
    named = invitation is not None and questionnaire is not None and not questionnaire.anonymous
    return AuditRecord(invitation.institution_id if invitation else writer.SYSTEM_CHAIN, ANONYMOUS, action,
                       "survey_invitation", outcome, ctx.request if named or invitation is None else RequestMeta(),
                       resource_id=invitation.id if named and invitation else None,
                       patient_id=invitation.patient_id if named and invitation else None,
                       reason=reason, policy_rule=LINK_RULE if outcome is Outcome.ALLOWED else "")


# -- the portal and staff ------------------------------------------------------------------------------


async def answer_own(ctx: Context, invitation_id: uuid.UUID | None, answers: Mapping[str, Any]) -> Receipt:
    """The signed-in patient answers one of their own invitations."""
    decision = await access.authorize(ctx, "questionnaire_response", "create", action=Action.CREATE,
                                      resource_type="questionnaire_response")
    view = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.CREATE)
    invitation, questionnaire = await _invitation_of(ctx, invitation_id, view)
    _check_open(invitation, questionnaire)
    door = Door("portal", ctx.actor, decision.rule, ctx.request)
    return await _answer(ctx, invitation, questionnaire, answers, door)


async def enter(ctx: Context, invitation_id: uuid.UUID | None, answers: Mapping[str, Any], source: str) -> Receipt:
    """Staff (or a partner with the scope, for its granted patients) enter answers taken by phone or on paper,
    recorded as such and naming who entered them."""
    decision = await access.authorize(ctx, "questionnaire_response", "create", action=Action.CREATE,
                                      resource_type="questionnaire_response")
    source = one_of(source, STAFF_SOURCES, "source")
    principal = ctx.require_principal()
    if principal.kind == PATIENT:  # a patient answers their own in the portal (surveyAnswer)
        await access.deny(ctx, Action.CREATE, "questionnaire_response", reason="forbidden")
        raise Forbidden()
    # The patient's reach is in the lookup: an invitation of a patient out of reach costs what a missing one does;
    # the reach of the roles that enter answers (found in review: a nurse of department B who also works in
    # finance, which finds every client, entered answers for every department's patients).
    scope = access.section_scope(ctx, "questionnaire_response", "create")
    reached = None if invitation_id is None else access.about_reached(scope, SurveyInvitation)
    found = None if reached is None else await reached.get_or_none(id=invitation_id)
    if found is None:
        raise await access.not_found(ctx, Action.CREATE, "survey_invitation", invitation_id, "invitationId")
    await access.find_patient(ctx, found.patient_id, action=Action.CREATE, field="invitationId")
    invitation, questionnaire = found, await Questionnaire.get(id=found.questionnaire_id)
    _check_open(invitation, questionnaire)
    door = Door(source, ctx.actor, decision.rule, ctx.request, entered_by=principal.user_id
                if principal.kind != "partner" and not questionnaire.anonymous else None)
    return await _answer(ctx, invitation, questionnaire, answers, door)


async def _invitation_of(ctx: Context, invitation_id: uuid.UUID | None,
                         view: PatientView) -> tuple[SurveyInvitation, Questionnaire]:
    # The patient's own: a family invitation (``contact_id``) is its contact's to answer, through its link.
    own = SurveyInvitation.filter(patient_id=view.row.id, contact_id=None)
    row = await access.find_in_institution(ctx, own, invitation_id, action=Action.CREATE,
                                           resource_type="survey_invitation", field="invitationId")
    return row, await Questionnaire.get(id=row.questionnaire_id)


def _check_open(invitation: SurveyInvitation, questionnaire: Questionnaire) -> None:
    """Refuse early what cannot be answered; an anonymous invitation's being answered is found only by a
    complete, valid answer (see "when an anonymous invitation was answered")."""
    if invitation.answered and not questionnaire.anonymous:
        raise _closed("answered")
    if _closed_to_patients(invitation, questionnaire):
        raise _closed("expired")


async def _answer(ctx: Context, invitation: SurveyInvitation, questionnaire: Questionnaire,
                  answers: Mapping[str, Any], door: Door) -> Receipt:
    try:
        return await _record(ctx, ctx.require_keys(), invitation, questionnaire, answers, door)
    except _Taken as taken:
        raise _closed(taken.reason or _why_taken(invitation)) from None


def _closed(reason: str) -> BadUserInput:
    message = ("invitationId: this survey has already been answered." if reason == "answered"
               else "invitationId: this invitation has expired.")
    return BadUserInput(message, field="invitationId", reason=reason)  # as the link's refusals (``LinkRefused``)


# -- staff rating a department ------------------------------------------------------------------------
#
# A staff questionnaire (the seeds' doctors rating a department's nursing) has no invitation: a doctor or a
# department head (``questionnaire_response.staff: create``) answers its active version about a department,
# once per questionnaire key, department and local month. The response is anonymous: no patient, no staff
# member (not even ``entered_by``), source ``staff``, only the department it is about and its month, and its
# ``created_at`` (the answers' too) set back to the month's first instant, so no timestamp lines it up with
# the trail. Deduplication without storing the rater: the response's id IS a keyed digest (HMAC under a key
# derived from the token key) of (institution, staff member, questionnaire key, department, month), shaped as
# a random UUID. A second answer by the same rater derives the same id and finds it taken (CONFLICT); nobody
# without the master key can tell whose an id is, and the key only lets one test a guessed rater, which is
# what deduplication itself must be able to do. The trail records that the staff member answered a staff
# questionnaire (one record naming them, as every write does, without the request's details), never the
# response, its questionnaire version or department: the trail cannot lead from a rater to their answers.

STAFF_SOURCE = "staff"
STAFF_ANSWER_KEY = "staff-survey-answer:v1"


async def answer_as_staff(ctx: Context, questionnaire_id: uuid.UUID | None, department_id: uuid.UUID | None,
                          answers: Mapping[str, Any]) -> Receipt:
    """A staff member answers a staff questionnaire's active version about a department, anonymously; once
    per questionnaire, department and month."""
    decision = await access.authorize(ctx, "questionnaire_response.staff", "create", action=Action.CREATE,
                                      resource_type="questionnaire_response")
    principal = ctx.require_principal()
    questionnaire = await access.find_in_institution(ctx, Questionnaire, questionnaire_id, action=Action.CREATE,
                                                     resource_type="questionnaire", field="questionnaireId")
    _check_staff_questionnaire(questionnaire)
    department = await access.find_in_institution(ctx, Department, department_id, action=Action.CREATE,
                                                  resource_type="department", field="departmentId")
    door = Door(STAFF_SOURCE, ctx.actor, decision.rule, ctx.request)
    # a staff member's id: patients and partners hold no questionnaire_response.staff rule
    return await _record_staff(ctx, questionnaire, department.id, principal.user_id, answers, door)


def _check_staff_questionnaire(questionnaire: Questionnaire) -> None:
    if questionnaire.respondent != "staff":
        raise BadUserInput("questionnaireId: this questionnaire is not answered by staff.", field="questionnaireId")
    if questionnaire.status != "active":
        raise BadUserInput("questionnaireId: only a questionnaire's active version is answered.",
                           field="questionnaireId")


def staff_answer_id(token_key: bytes, institution_id: uuid.UUID, staff_id: uuid.UUID, key: uuid.UUID,
                    department_id: uuid.UUID, month: str) -> uuid.UUID:
    """The one response id a rater may write for a questionnaire, department and month (see above)."""
    mac = hmac.new(derive_key(token_key, STAFF_ANSWER_KEY),
                   f"{institution_id}|{staff_id}|{key}|{department_id}|{month}".encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=mac[:16], version=4)


async def _record_staff(ctx: Context, questionnaire: Questionnaire, department_id: uuid.UUID, staff_id: uuid.UUID,
                        answers: Mapping[str, Any], door: Door) -> Receipt:
    institution_id, keys = ctx.institution_id, ctx.require_keys()
    zone = await institutions.zone(institution_id)
    local = _now().astimezone(zone)
    month, month_start = local.strftime("%Y-%m"), datetime(local.year, local.month, 1, tzinfo=zone)
    response_id = staff_answer_id(ctx.services.master_key.token_key, institution_id, staff_id, questionnaire.key,
                                  department_id, month)
    ready = _prepare_in(keys, institution_id, department_id, questionnaire, answers, month, response_id)
    try:
        async with in_transaction():
            # Locked first, as ``_record`` does: an in-place edit waits, an answer checked against an edited
            # revision is checked again, and a version retired meanwhile, or edited to be answered by patients or
            # family (found in review: the rating, stored without a rater, landed on an identified questionnaire
            # and was listed at once), is no longer answered this way.
            locked = await Questionnaire.filter(id=questionnaire.id).select_for_update(no_key=True).first()
            if locked is None:
                raise BadUserInput("questionnaireId: only a questionnaire's active version is answered.",
                                   field="questionnaireId")
            _check_staff_questionnaire(locked)
            if locked.revision != questionnaire.revision:
                ready = _prepare_in(keys, institution_id, department_id, locked, answers, month, response_id)
            if await QuestionnaireResponse.exists(id=response_id):
                raise _Taken()
            scored = ready.scored
            try:
                await QuestionnaireResponse.create(
                    id=response_id, institution_id=institution_id, questionnaire_id=questionnaire.id,
                    department_id=department_id, source=STAFF_SOURCE, month=month, score=scored.score,
                    satisfied=scored.satisfied, nps=scored.nps, csat=scored.csat, low=scored.low)
            except IntegrityError:  # the same rater's answer in a concurrent transaction
                raise _Taken() from None
            await QuestionnaireResponse.filter(id=response_id).update(created_at=month_start)
            if ready.rows:
                await ResponseAnswer.bulk_create(ready.rows)
                await ResponseAnswer.filter(institution_id=institution_id, response_id=response_id).update(
                    created_at=month_start)
            await writer.append([AuditRecord(
                institution_id, door.actor, Action.CREATE, "questionnaire_response", Outcome.ALLOWED, RequestMeta(),
                resource_id=None, fields_read=frozenset({"answers"}), reason="anonymous staff",
                policy_rule=door.rule)])
    except _Taken:
        raise Conflict("questionnaireId: you have already answered this questionnaire about this department this "
                       "month.", field="questionnaireId", reason="answered") from None
    ctx.recorded = True
    return Receipt(True, None, False)


# -- recording an answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Door:
    """How an answer arrives: its source, who gives it and under which rule."""

    source: str  # portal, link, phone, paper
    actor: Actor
    rule: str
    request: RequestMeta
    entered_by: uuid.UUID | None = None


@dataclass(frozen=True)
class Receipt:
    """What the answerer is told."""

    anonymous: bool
    response_id: uuid.UUID | None  # None for an anonymous questionnaire: nothing to trace it by
    follow_up: bool  # a ticket was opened to call the patient back


@dataclass(frozen=True)
class _Prepared:
    """An answer checked, scored and laid out in rows against one revision of its questionnaire."""

    questionnaire: Questionnaire
    response_id: uuid.UUID
    scored: instruments.Score
    rows: list[ResponseAnswer]
    ticket_data: dict[str, Any] | None


def _prepare(keys: InstitutionKeys, invitation: SurveyInvitation, questionnaire: Questionnaire,
             answers: Mapping[str, Any], month: str) -> _Prepared:
    response_id = uuid.uuid4() if nameless(questionnaire) else uuid7()  # a random id says nothing of when
    return _prepare_in(keys, invitation.institution_id, invitation.department_id, questionnaire, answers, month,
                       response_id)


def _prepare_in(keys: InstitutionKeys, institution_id: uuid.UUID, department_id: uuid.UUID | None,
                questionnaire: Questionnaire, answers: Mapping[str, Any], month: str,
                response_id: uuid.UUID) -> _Prepared:
    checked = instruments.check_answers(questionnaire.items, answers)
    scored = instruments.score(questionnaire.items, questionnaire.scoring, checked)
    rows = _answer_rows(keys, institution_id, questionnaire, response_id, department_id, month, checked)
    ticket_data = None if questionnaire.anonymous or not scored.low else _ticket_data(questionnaire, scored)
    return _Prepared(questionnaire, response_id, scored, rows, ticket_data)


async def _record(ctx: Context, keys: InstitutionKeys, invitation: SurveyInvitation, questionnaire: Questionnaire,
                  answers: Mapping[str, Any], door: Door) -> Receipt:
    institution_id, now = invitation.institution_id, _now()
    local = now.astimezone(await institutions.zone(institution_id))
    month, month_start = local.strftime("%Y-%m"), datetime(local.year, local.month, 1, tzinfo=local.tzinfo)
    ready = _prepare(keys, invitation, questionnaire, answers, month)  # refused before anything is written
    # An identified response joins the patient's file: the file locked first, as every write to it (a merge
    # meanwhile left it on the merged file, found in review); an anonymous one names nobody.
    file = None if questionnaire.anonymous else invitation.patient_id
    # a link's answer is nobody's sign-in: a file merged meanwhile is not refused on the trail of whoever's session
    # the browser holds (``answer_by_link`` reads the invitation again, the survivor's now)
    async with access.file_transaction(ctx, file, action=Action.CREATE, field="invitationId",
                                       recorded=door.source != "link"):
        # The version's row locked first, as its in-place edit does: an edit waits for this answer (and then
        # makes the next version), and an answer checked against a revision edited meanwhile is checked again.
        # FOR NO KEY UPDATE: invitations being made meanwhile (which hold the audit chain) reference the row.
        locked = await Questionnaire.filter(id=questionnaire.id).select_for_update(no_key=True).first()
        if locked is not None and locked.revision != questionnaire.revision:
            ready = _prepare(keys, invitation, locked, answers, month)
            if locked.respondent == reports.STAFF_RESPONDENT:  # made a staff questionnaire meanwhile
                raise _Taken("expired")
        questionnaire, response_id, scored, rows, ticket_data = (ready.questionnaire, ready.response_id, ready.scored,
                                                                 ready.rows, ready.ticket_data)
        anonymous = questionnaire.anonymous
        taken = {"answered": True} if anonymous else {"answered": True, "answered_at": now, "status": "answered"}
        if await SurveyInvitation.filter(id=invitation.id, answered=False, expires_at__gt=now).exclude(
                status="cancelled").update(**taken) != 1:
            # why, as the invitation stands now: one cancelled meanwhile (a merge's twin) is closed as an expired one
            # is, not answered (found in review: the answer was told the survey had been answered)
            current = await SurveyInvitation.get_or_none(id=invitation.id)
            raise _Taken("answered" if current is None or current.answered else "expired")
        ticket = None
        if ticket_data is not None:
            patient = await Patient.get(id=invitation.patient_id)
            # nobody is called back on a closed file: its calls were cancelled with it, and a deceased patient is
            # never called (the answer and its low score stand; the link's holder is told nothing of the file)
            if patient.status == "active":
                system = _SystemContext(services=ctx.services, request=door.request, keys=keys, home=institution_id)
                ticket = await tickets.open_for_system(system, ticket_data, patient_id=invitation.patient_id,
                                                       department_id=invitation.department_id,
                                                       vip="|vip|" in (patient.segments or ""), rule=LOW_SCORE_RULE)
        # anonymous: no link back, nobody who entered it, and no time finer than the month (see above)
        linked: dict[str, Any] = {"entered_by_id": None, "created_at": month_start} if anonymous else {
            "invitation_id": invitation.id, "patient_id": invitation.patient_id, "visit_id": invitation.visit_id,
            "ticket_id": invitation.ticket_id, "entered_by_id": door.entered_by}
        await QuestionnaireResponse.create(
            id=response_id, institution_id=institution_id, questionnaire_id=questionnaire.id,
            department_id=invitation.department_id, clinician_id=invitation.clinician_id,
            follow_up_ticket_id=ticket.id if ticket else None, source=door.source, month=month, score=scored.score,
            satisfied=scored.satisfied, nps=scored.nps, csat=scored.csat, low=scored.low, **linked)
        if rows:
            if anonymous:
                for row in rows:
                    row.created_at = month_start
            await ResponseAnswer.bulk_create(rows)
        if not anonymous:  # an anonymous invitation's messages are dropped when they fall due (see above)
            await communications.cancel_queued(institution_id, surveys.message_key(invitation.id, ""))
        await writer.append(_answer_records(institution_id, invitation, response_id, anonymous, door, ticket))
    ctx.recorded = True
    if ticket is not None:
        tickets.changed(ctx)
    return Receipt(anonymous, None if anonymous else response_id, ticket is not None)


def _answer_rows(keys: InstitutionKeys, institution_id: uuid.UUID, questionnaire: Questionnaire,
                 response_id: uuid.UUID, department_id: uuid.UUID | None, month: str,
                 checked: Mapping[str, Any]) -> list[ResponseAnswer]:
    """One row per answered item (a multiple choice one per option chosen), numbers as reports aggregate
    them, free text sealed to its row."""
    kinds = {item["link_id"]: item["kind"] for item in instruments.questions(questionnaire.items)}
    rows: list[ResponseAnswer] = []

    def row(link_id: str, **values: Any) -> None:
        answer_id = uuid.uuid4() if nameless(questionnaire) else uuid7()  # uuid7 would date a staff rating
        if values.get("text") is not None:
            values["text"] = keys.seal(values["text"], field_aad(institution_id, "response_answer", "text", answer_id))
        rows.append(ResponseAnswer(id=answer_id, institution_id=institution_id, response_id=response_id,
                                   questionnaire_id=questionnaire.id, department_id=department_id, month=month,
                                   link_id=link_id, **values))

    for link_id, value in checked.items():
        kind = kinds[link_id]
        if kind == "multi_choice":
            for code in value:
                row(link_id, choice=code)
        elif kind == "choice":
            row(link_id, choice=value)
        elif kind == "text":
            row(link_id, text=value)
        else:
            row(link_id, number=instruments.number_of(kind, value))
    return rows


def _ticket_data(questionnaire: Questionnaire, scored: instruments.Score) -> dict[str, Any]:
    """The complaint a low answer opens: which questionnaire and what score, never what was answered."""
    title = questionnaire.title.get("zh-CN") or next(iter(questionnaire.title.values()), "")
    figures = [f"score {scored.score:.0f}/100" if scored.score is not None else "",
               f"NPS {scored.nps}" if scored.nps is not None else "",
               f"CSAT {scored.csat}" if scored.csat is not None else ""]
    return {"channel": "survey", "category": "complaint",
            "level": 1 if scored.nps is not None and scored.nps <= 3 else 2,
            "subject": "Survey answer under the threshold: call the patient back",
            "description": f"{title} (version {questionnaire.version}): {', '.join(f for f in figures if f)}."[:4000]}


def _answer_records(institution_id: uuid.UUID, invitation: SurveyInvitation, response_id: uuid.UUID,
                    anonymous: bool, door: Door, ticket: Ticket | None) -> list[AuditRecord]:
    if anonymous:
        # One record naming no patient, contact, invitation or response, nor the request's details, nor the door (found
        # in review: "anonymous portal" under the patients' rule told a compliance officer that a signed-in patient
        # answered, and the trail's own record of a portal read a moment before, with its patient, address and user
        # agent, which one). The trail's time stays: the chain cannot lose it. Staff entering it are named (they
        # are accountable for it), not whether by phone or on paper (the response's source would single it out).
        patient = door.source in PATIENT_DOORS
        return [AuditRecord(institution_id, ANONYMOUS if patient else door.actor, Action.CREATE,
                            "questionnaire_response", Outcome.ALLOWED, RequestMeta(),
                            fields_read=frozenset({"answers", "invitation.answered"}), reason="anonymous",
                            policy_rule=ANONYMOUS_ANSWER_RULE if patient else door.rule)]
    written = frozenset({"answers", "source", *(("follow_up_ticket",) if ticket else ())})
    return [AuditRecord(institution_id, door.actor, Action.CREATE, "questionnaire_response", Outcome.ALLOWED,
                        door.request, resource_id=response_id, patient_id=invitation.patient_id,
                        fields_read=written, reason=door.source, policy_rule=door.rule),
            AuditRecord(institution_id, door.actor, Action.UPDATE, "survey_invitation", Outcome.ALLOWED,
                        door.request, resource_id=invitation.id, patient_id=invitation.patient_id,
                        fields_read=frozenset({"answered", "answered_at", "status"}), policy_rule=door.rule)]


# -- reading responses ---------------------------------------------------------------------------------


def nameless(questionnaire: Questionnaire) -> bool:
    """Whether the version's responses name nobody: the reports' one rule (``survey_report.names_nobody``)."""
    return reports.names_nobody(questionnaire.anonymous, questionnaire.respondent)


@dataclass(frozen=True)
class ResponseView:
    row: QuestionnaireResponse
    questionnaire: Questionnaire
    # whether a role of the caller that may read free text reaches this response (``text_reached``)
    text_reached: bool = False

    @property
    def anonymous(self) -> bool:
        return nameless(self.questionnaire)


@dataclass(frozen=True)
class AnswerView:
    row: ResponseAnswer
    response: ResponseView
    kind: str = ""
    values: list[str] = field(default_factory=list)


async def responses(ctx: Context, *, questionnaire_id: uuid.UUID | None, department_id: uuid.UUID | None,
                    ticket_id: uuid.UUID | None, first: int, after: str | None,
                    commented: bool = False, count: bool = False) -> pagination.Page[ResponseView]:
    """Responses in the caller's reach, newest first for identified ones (anonymous ones have random ids),
    narrowed to a questionnaire version, a department or a ticket (the one it was about or the one it
    opened), or (``commented``, with ``questionnaire_response.text: read``) to those with a free-text answer;
    a fixed number of statements whatever the page size. ``count``: also how many the pages hold, under the same
    rule for anonymous ones (a live month's, or a small cell's, counted would tell when an answer came)."""
    decision = await access.authorize(ctx, "questionnaire_response", "read", action=Action.READ,
                                      resource_type="questionnaire_response")
    if commented:
        await access.authorize(ctx, "questionnaire_response.text", "read", action=Action.READ,
                               resource_type="questionnaire_response")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = QuestionnaireResponse.filter(_reach(ctx))
    if commented:  # those whose text the caller reads
        query = query.filter(_reach(ctx, TEXT), id__in=Subquery(ResponseAnswer.filter(
            institution_id=ctx.institution_id, text__isnull=False).values("response_id")))
    if questionnaire_id is not None:
        query = query.filter(questionnaire_id=questionnaire_id)
    if department_id is not None:
        query = query.filter(department_id=department_id)
    if ticket_id is not None:
        query = query.filter(Q(ticket_id=ticket_id) | Q(follow_up_ticket_id=ticket_id))
    query = query.filter(await _shown_anonymous(ctx, query))
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(id__lt=pagination.decode_uuid(CURSOR_KIND, after))
    rows = list(await query.order_by("-id").limit(first + 1))
    found = {q.id: q for q in await Questionnaire.filter(institution_id=ctx.institution_id,
                                                         id__in=list({r.questionnaire_id for r in rows}))}
    for row in rows[:first]:
        ctx.reads.note("questionnaire_response", row.id, row.patient_id, rule=decision.rule)
    texts = await text_reached(ctx, rows[:first])
    return pagination.page_of([ResponseView(r, found[r.questionnaire_id], r.id in texts) for r in rows[:first]],
                              len(rows) > first,
                              CURSOR_KIND, key=lambda v: v.row.id, total=total)


async def one(ctx: Context, response_id: uuid.UUID | None) -> ResponseView:
    """One response in the caller's reach (as the list shows it), NOT_FOUND otherwise."""
    decision = await access.authorize(ctx, "questionnaire_response", "read", action=Action.READ,
                                      resource_type="questionnaire_response", resource_id=response_id)
    row = None if response_id is None else await QuestionnaireResponse.filter(_reach(ctx), id=response_id).first()
    questionnaire = None if row is None else await Questionnaire.get(id=row.questionnaire_id)
    if row is None or questionnaire is None or (nameless(questionnaire) and not await _listed(ctx, row)):
        # an anonymous response not listed yet answers as a missing one
        raise await access.not_found(ctx, Action.READ, "questionnaire_response", response_id)
    ctx.reads.note("questionnaire_response", row.id, row.patient_id, rule=decision.rule)
    return ResponseView(row, questionnaire, row.id in await text_reached(ctx, [row]))


def _reaches(ctx: Context, obj: str) -> frozenset[str]:
    """The reaches of the caller's roles that may read ``obj``."""
    principal = ctx.require_principal()
    guard, institution_id = ctx.services.guard, principal.institution_id
    return frozenset(RESPONSE_REACH[role] for role in principal.roles if role in RESPONSE_REACH
                     and guard.role_allows(role, institution_id, obj, "read"))


async def text_reached(ctx: Context, rows: Sequence[QuestionnaireResponse]) -> set[uuid.UUID]:
    """The ids among ``rows`` (responses in the caller's reach) whose free text the caller may read: with
    ``questionnaire_response.text: read``, on the responses that a role allowed to read text reaches, not every
    role's (found in review: an admin who also heads a department read the text of every department's). One
    statement only when the roles reading text reach less than those reading responses."""
    if not rows or not ctx.decide(TEXT, "read").allowed:
        return set()
    if _reaches(ctx, READ) <= _reaches(ctx, TEXT):
        return {row.id for row in rows}
    found = QuestionnaireResponse.filter(_reach(ctx, TEXT), id__in=[row.id for row in rows]).values_list("id",
                                                                                                         flat=True)
    return {uuid.UUID(str(found_id)) for found_id in await found}


def _reach(ctx: Context, obj: str = READ) -> Q:
    """The responses the caller's roles that may read ``obj`` reach (the union of each such role's), as a SQL
    condition."""
    principal = ctx.require_principal()
    institution_id = principal.institution_id
    reaches = _reaches(ctx, obj)
    tenant = Q(institution_id=institution_id)
    if INSTITUTION in reaches:
        return tenant
    parts: list[Q] = []
    if DEPARTMENT in reaches and principal.department_ids:
        parts.append(Q(department_id__in=sorted(principal.department_ids)))
    if TICKETS in reaches:
        worked = Subquery(Ticket.filter(Q(owner_id=principal.user_id) | Q(assignee_id=principal.user_id),
                                        institution_id=institution_id).values("id"))
        parts += [Q(follow_up_ticket_id__in=worked), Q(ticket_id__in=worked)]
    if SELF in reaches and principal.patient_id is not None:
        parts.append(Q(patient_id=principal.patient_id) & _not_family())
    if not parts:
        return tenant & Q(id__in=[])
    return tenant & Q(*parts, join_type=Q.OR)


def _not_family() -> Q:
    """Responses the patient gave, not their family's: a family invitation's answer is its contact's, filed with
    the patient for staff, never shown to the patient (found in review)."""
    family = Subquery(SurveyInvitation.filter(contact_id__isnull=False).values("id"))
    return Q(invitation_id__isnull=True) | ~Q(invitation_id__in=family)


def family_tickets(institution_id: uuid.UUID) -> Subquery:
    """The call-back tickets that family members' low answers opened on their patients' files (the tickets' ids):
    what the family answered is never shown to the patient, and such a ticket says it (its questionnaire, score and
    NPS), so the portal leaves them out (found in review: the patient read them in myTickets and their export)."""
    return Subquery(surveys.family_call_backs(institution_id).values("follow_up_ticket_id"))


async def _listed(ctx: Context, row: QuestionnaireResponse) -> bool:
    """Whether the list shows this anonymous response: its month closed and its cell of at least ``min_cell``."""
    live = await reports.live_month(ctx)
    if row.month >= live:
        return False
    cell = QuestionnaireResponse.filter(institution_id=row.institution_id, questionnaire_id=row.questionnaire_id,
                                        department_id=row.department_id, month=row.month)
    return reports.released_cell(row.month, await cell.count(), live, await reports.min_cell(ctx))


async def _shown_anonymous(ctx: Context, query: Any) -> Q:
    """Identified responses, and anonymous ones (``survey_report.names_nobody``) of a closed month whose
    questionnaire, department and month hold at least ``min_cell`` responses (one grouped statement): a small cell
    would single the answer out, and a live month, read twice, its newest answer and when it came."""
    least, live = await reports.min_cell(ctx), await reports.live_month(ctx)
    cells = await (query.filter(questionnaire_id__in=reports.nameless_versions(ctx.institution_id), month__lt=live)
                   .annotate(n=Count("id")).group_by("questionnaire_id", "department_id", "month")
                   .values_list("questionnaire_id", "department_id", "month", "n"))
    # the released months of each version and department: one term per pair, not per cell (they grow by the month)
    released: dict[tuple[Any, Any], list[str]] = defaultdict(list)
    for q, d, m, n in cells:
        if reports.released_cell(m, int(n), live, least):
            released[(q, d)].append(m)
    shown = [Q(questionnaire_id=q, month__in=months, **({"department_id": d} if d is not None else
                                                         {"department_id__isnull": True}))
             for (q, d), months in released.items()]
    identified = ~Q(questionnaire_id__in=reports.nameless_versions(ctx.institution_id))
    return identified | _any_of(shown) if shown else identified


def _any_of(terms: list[Q]) -> Q:
    """The terms ORed as a balanced tree: a flat Q(*terms) is a chain as deep as its terms, and from about 950 the SQL
    could not be built (RecursionError; SQLite's own limit on an expression's depth is 1000), found in review."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return Q(_any_of(terms[:middle]), _any_of(terms[middle:]), join_type=Q.OR)


async def answers_of(ctx: Context, view: ResponseView) -> list[AnswerView]:
    """A response's answers in the questionnaire's order (one statement for a page of responses)."""
    return answer_views(view, await ctx.require_loaders().answers_by_response.load(view.row.id))


def answer_views(view: ResponseView, rows: list[ResponseAnswer]) -> list[AnswerView]:
    """One answer per item (a multiple choice's rows gathered), in the questionnaire's order."""
    order = {item["link_id"]: (i, item["kind"]) for i, item in enumerate(instruments.questions(
        view.questionnaire.items))}
    by_item: dict[str, list[ResponseAnswer]] = {}
    for row in rows:
        by_item.setdefault(row.link_id, []).append(row)
    out = []
    for link_id, group in sorted(by_item.items(), key=lambda kv: order.get(kv[0], (len(order), ""))[0]):
        kind = order.get(link_id, (0, ""))[1]
        out.append(AnswerView(group[0], view, kind, [str(r.choice) for r in group if r.choice is not None]))
    return out


def require_text(ctx: Context, view: ResponseView) -> None:
    """Free text needs ``questionnaire_response.text: read`` on this response (``text_reached``): the refusal
    noted, then FORBIDDEN."""
    row = view.row
    if not ctx.decide(TEXT, "read").allowed or not view.text_reached:
        ctx.reads.note("questionnaire_response", row.id, row.patient_id, outcome=Outcome.DENIED,
                       reason="forbidden_field")
        raise access.permission_refused(ctx, TEXT)


def read_text(ctx: Context, answer: AnswerView) -> str | None:
    """A free-text answer: with ``questionnaire_response.text: read``, opened and noted; else FORBIDDEN."""
    sealed = answer.row.text
    if sealed is None:
        return None
    row = answer.response.row
    require_text(ctx, answer.response)
    decision = ctx.decide("questionnaire_response.text", "read")
    ctx.reads.note("questionnaire_response", row.id, row.patient_id, field_name="response_answer.text",
                   rule=decision.rule)
    return access.open_sealed(ctx, "response_answer", "text", answer.row.id, bytes(answer.row.text))


async def export_fhir(ctx: Context, response_id: uuid.UUID | None) -> str:
    """One response in reach as an R4 QuestionnaireResponse (JSON text), read as ``one`` reads it: free text
    opened (and noted) only with ``questionnaire_response.text: read``, else its item is marked withheld (the
    refusal noted, as the comments field notes it); an anonymous response without subject or time finer than its
    month."""
    view = await one(ctx, response_id)
    row, questionnaire = view.row, view.questionnaire
    rows = await ResponseAnswer.filter(institution_id=ctx.institution_id, response_id=row.id).order_by("id")
    text_allowed = ctx.decide(TEXT, "read")
    answers: dict[str, dict[str, Any]] = {}
    for answer in answer_views(view, list(rows)):
        if answer.row.text is not None and not (text_allowed.allowed and view.text_reached):
            # refused as the comments field refuses it, and on the record the same way (found in review: withheld
            # without a trace)
            ctx.reads.note("questionnaire_response", row.id, row.patient_id, outcome=Outcome.DENIED,
                           reason="forbidden_field")
            answers[answer.row.link_id] = {"withheld": True}
            continue
        text = None
        if answer.row.text is not None:
            ctx.reads.note("questionnaire_response", row.id, row.patient_id, field_name="response_answer.text",
                           rule=text_allowed.rule)
            text = access.open_sealed(ctx, "response_answer", "text", answer.row.id, bytes(answer.row.text))
        answers[answer.row.link_id] = {"number": answer.row.number, "codes": answer.values, "text": text}
    identified = row.patient_id is not None
    resource = fhir.response_to_fhir(
        {"id": row.id, "month": row.month, "source": row.source, "patient_id": row.patient_id,
         "authored": row.created_at if identified else None},
        {"key": questionnaire.key, "version": questionnaire.version, "items": questionnaire.items}, answers)
    return json.dumps(resource, ensure_ascii=False)


# -- the patient's copy of their data ------------------------------------------------------------------


async def export_copy(ctx: Context, view: PatientView) -> list[dict[str, Any]]:
    """The patient's identified responses for their data export (an anonymous one is linked to nobody, so
    it is in nobody's copy), three statements."""
    rows = list(await QuestionnaireResponse.filter(_not_family(), institution_id=ctx.institution_id,
                                                   patient_id=view.row.id).order_by("id"))
    found = {q.id: q for q in await Questionnaire.filter(id__in=list({r.questionnaire_id for r in rows}))}
    answers: dict[uuid.UUID, list[ResponseAnswer]] = {r.id: [] for r in rows}
    for answer in await ResponseAnswer.filter(institution_id=ctx.institution_id,
                                              response_id__in=list(answers)).order_by("id"):
        answers[answer.response_id].append(answer)
    copies = []
    for row in rows:
        response = ResponseView(row, found[row.questionnaire_id])
        copies.append({
            "id": str(row.id), "questionnaire": response.questionnaire.title, "version": response.questionnaire.version,
            "month": row.month, "source": row.source, "score": row.score,
            "answers": [{"link_id": a.row.link_id, "number": a.row.number, "choices": a.values,
                         "text": None if a.row.text is None else access.open_sealed(
                             ctx, "response_answer", "text", a.row.id, bytes(a.row.text))}
                        for a in answer_views(response, answers[row.id])]})
    return copies
