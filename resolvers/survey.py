"""Distributing surveys (issue 14): the institution's settings and triggers, invitations and their links, the
fatigue cap, the invitation messages through the outbox, and reminders.

An invitation is made for a cause ("visit:<id>", "ticket:<id>", "follow_up:<id>", "campaign:<id>:<patient>")
inside the transaction of whatever caused it (a visit finishing, a ticket closing, a follow-up call completed,
a one-off campaign): the cause key is unique per institution, so a cause never invites twice however often or
concurrently it is reported. It is not made when the patient is archived, deceased or merged, or was invited within
the institution's ``fatigue_days`` (the cap; decided one transaction at a time, see ``invite_many``, so two
causes at once cannot both pass). Its message is scheduled through the outbox (cause ``survey_invitation``, due at
the cause's time plus the trigger's delay): the consent gate and channel preferences decide, as for every
message.

The link: ``tokens.survey_link`` derives it from the master key and the invitation (HMAC, 256 bits), so no
secret is stored anywhere, not in the invitation (which keeps only ``token_digest`` of it, for the lookup)
nor in the message's variables (the outbox computes it when it renders the message, ``survey_url``). It
expires ``link_valid_days`` after the message is due and answers once (``resolvers.questionnaire_response``).

Decided where the issue is silent:
- when several active triggers match a cause, the most specific one invites (department and visit kind
  named over either over neither, then the oldest); the cause still invites once;
- the fatigue cap counts invitations whose message was not refused or cancelled, either side of the new
  one's due time;
- a trigger names a questionnaire by its key; the version active when the cause occurs is the one asked
  (a trigger whose questionnaire has no active version invites nobody); staff-answered questionnaires are
  not sent to patients;
- department heads write triggers for their own departments; settings are the institution's (department
  heads and admins, as the policy says);
- a one-off campaign invites at most ``CAMPAIGN_LIMIT`` patients in one call (narrow the audience);
- reminders: one per invitation, ``reminder_after_days`` after its message was due, while unanswered, not
  expired and not refused by the gate (the sweep ``remind_unanswered``).

Family respondents (a questionnaire whose ``respondent`` is ``family``): the invitation is addressed to one of the
patient's contacts (``SurveyInvitation.contact``), chosen when it is made (``family_contacts``):
- eligible: a contact the patient allows to receive information and who has a phone (the outbox writes to a
  contact by SMS or WeChat on their phone only, so a contact without one could never be reached); among them a
  contact marked for emergencies first, then the earliest added;
- a patient with no eligible contact is not invited (no invitation, no message, nothing sent to the patient in
  their stead): the campaign result counts them as ``no_contact``. Not an invitation ``refused``: that status
  means an invitation was made and the gate stopped its message, and it may still be answered;
- the message and its reminder go to that contact (the one chosen when the invitation was made) through the
  outbox (``Request.contact_id``): the gate decides on the patient's consent, purposes and channels and the
  contact's own permission and phone, as for every message to a contact; a refusal marks the invitation refused
  as for a patient;
- the message greets the contact (the templates' greeting slot ``patient_name`` holds the contact's name, as
  does ``contact_name``) and names neither the patient nor the department, which could tell of an illness;
- the contact answers through the link as a patient does; the portal's ``mySurveyInvitations`` does not list
  family invitations (they are not the patient's to answer); staff see which contact was invited (identity
  only, under the contact read rules);
- the fatigue cap counts per patient, family invitations included: a patient's family is not asked within the
  period of the patient's last invitation, nor the patient within their family's;
- a contact deleted after it was chosen and before its invitation is written is not asked (as if the patient had no
  such contact; the cause itself, a visit's finish, goes through): the chosen contacts are held first
  (``hold_contacts``), so a delete under way is waited for and one coming later is refused (contact referenced).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.chain import parse_subjects
from audit.events import Action, Actor, AuditRecord, Outcome
from core import tokens
from core.errors import BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.principal import PATIENT
from core.validation import Problems, camel_case, one_of
from models import (
    Attachment,
    AuditEvent,
    Communication,
    Contact,
    Department,
    FollowUpTask,
    Patient,
    Questionnaire,
    QuestionnaireResponse,
    SurveyInvitation,
    SurveySettings,
    SurveyTrigger,
    Ticket,
    Visit,
)
from models.survey import TRIGGER_EVENTS
from models.visit import VISIT_KINDS
from policies.guard import Decision
from resolvers import access, pagination
from resolvers import campaign as campaigns
from resolvers import communication as communications
from resolvers.access import ContactView, PatientView
from resolvers.context import Context
from resolvers.versioning import bumped

SYSTEM = Actor("system")
TRIGGER_DECISION = Decision(True, "survey trigger")
REMINDER_RULE = "survey reminder"
CAUSE = "survey_invitation"
CAMPAIGN_CAUSE = "campaign"  # a one-off campaign's invitations: cause key "campaign:<campaign>:<file invited>"
CAMPAIGN_LIMIT = 5000
REMINDER_BATCH = 500
TRIGGER_CURSOR = "survey-trigger"
INVITATION_CURSOR = "survey-invitation"
# setting: (least, most)
SETTING_RANGES: dict[str, tuple[int, int]] = {
    "fatigue_days": (0, 365),  # 0: no cap
    "satisfaction_target": (1, 100),
    "min_cell": (3, 100),  # fewer than 3 would let a report single an answer out
    "link_valid_days": (1, 90),
}
DELAY_HOURS = (0, 24 * 30)
REMINDER_DAYS = (1, 30)
TRIGGER_COLUMNS = ("event", "visit_kind", "department_id", "questionnaire_key", "delay_hours", "reminder_after_days")
NOT_COUNTED = ("refused", "cancelled")  # invitations the fatigue cap does not count
# A trigger's reminder goes while the link holds (``remind_unanswered``): one due no sooner than the link closes would
# never go, so a trigger's ``reminder_after_days`` stays below the institution's ``link_valid_days``, both ways.
REMINDER_AFTER_LINK = "reminder_after_link"


def _now() -> datetime:
    return datetime.now(UTC)


def message_key(invitation_id: uuid.UUID, kind: str) -> str:
    """The outbox key of an invitation's message (``kind``: invitation or reminder); the outbox reads the
    invitation's id from it to compute the link (``communication.survey_url_of``)."""
    return f"{communications.SURVEY_KEY}{invitation_id}:{kind}"


def link_digest(token_key: bytes, institution_id: uuid.UUID, invitation_id: uuid.UUID) -> str:
    """What the invitation keeps of its link: the token's keyed digest (as for every token)."""
    return tokens.token_digest(token_key, tokens.survey_link(token_key, institution_id, invitation_id))


# -- settings -------------------------------------------------------------------------------------------


async def settings_of(institution_id: uuid.UUID) -> SurveySettings:
    """The institution's survey settings, or the defaults (an unsaved row, version 0)."""
    row = await SurveySettings.get_or_none(institution_id=institution_id)
    return row if row is not None else SurveySettings(institution_id=institution_id, version=0)


async def settings(ctx: Context) -> SurveySettings:
    decision = await access.authorize(ctx, "survey", "read", action=Action.READ, resource_type="survey_settings")
    row = await settings_of(ctx.institution_id)
    ctx.reads.note("survey_settings", row.id if row.version else None, None, rule=decision.rule)
    return row


async def update_settings(ctx: Context, data: dict[str, Any], version: int | None) -> SurveySettings:
    """Change the settings given (others stay). ``version``: the one read (0 for the defaults); a stale one is
    a CONFLICT and writes nothing; without it the last write wins."""
    decision = await access.authorize(ctx, "survey", "update", action=Action.UPDATE,
                                      resource_type="survey_settings")
    if not data:
        raise BadUserInput("input: give at least one setting to change.", field="input")
    problems = Problems()  # every setting out of its range at once
    for name, value in data.items():
        least, most = SETTING_RANGES[name]
        if value is None or not least <= value <= most:
            problems.add(camel_case(name), "out_of_range", f"must be between {least} and {most}.")
    if not problems.has("linkValidDays") and "link_valid_days" in data:
        await _check_links_outlive_reminders(ctx, problems, data["link_valid_days"])
    problems.check()
    values = dict(data)
    try:
        async with in_transaction():
            row = await SurveySettings.filter(institution_id=ctx.institution_id).select_for_update().first()
            if version is not None and version != (0 if row is None else row.version):
                raise _stale("the settings")
            if row is None:
                row = await SurveySettings.create(id=uuid7(), institution_id=ctx.institution_id, version=1, **values)
                action = Action.CREATE
            else:
                await SurveySettings.filter(id=row.id).update(version=row.version + 1, updated_at=_now(), **values)
                action = Action.UPDATE
            await writer.append([access.write_record(ctx, action, "survey_settings", row.id,
                                                     fields=frozenset(values), decision=decision)])
    except IntegrityError:  # another request saved the first settings a moment ago
        raise _stale("the settings") from None
    return await SurveySettings.get(id=row.id)


async def _check_links_outlive_reminders(ctx: Context, problems: Problems, days: int) -> None:
    """Links valid ``days`` still open when the active triggers remind (the latest of them), else a problem at
    ``linkValidDays``. The invitations made already keep the validity they were made with."""
    latest = await SurveyTrigger.filter(institution_id=ctx.institution_id, active=True,
                                        reminder_after_days__isnull=False).order_by("-reminder_after_days").first()
    if latest is not None and days <= cast(int, latest.reminder_after_days):
        problems.add("linkValidDays", REMINDER_AFTER_LINK, f"a trigger reminds after {latest.reminder_after_days} "
                     "days: links must be valid longer (change or deactivate the trigger first).")


def _stale(what: str) -> Conflict:
    return Conflict(f"version: {what} changed since you read them; read again.", field="version")


# -- triggers -------------------------------------------------------------------------------------------


async def triggers(ctx: Context, *, first: int, after: str | None,
                   include_inactive: bool = False, count: bool = False) -> pagination.Page[SurveyTrigger]:
    """The institution's triggers, oldest first (active ones unless asked)."""
    decision = await access.authorize(ctx, "survey", "read", action=Action.READ, resource_type="survey_trigger")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = SurveyTrigger.filter(institution_id=ctx.institution_id)
    if not include_inactive:
        query = query.filter(active=True)
    page = await pagination.by_id(query, first=first, after=after, kind=TRIGGER_CURSOR, count=count)
    ctx.reads.note("survey_trigger", None, None, rule=decision.rule)
    return page


async def trigger_create(ctx: Context, data: dict[str, Any]) -> SurveyTrigger:
    decision = await access.authorize(ctx, "survey", "update", action=Action.CREATE, resource_type="survey_trigger")
    problems = Problems()  # every problem of the input's shape at once, then the references looked up
    for required in ("event", "questionnaire_key"):
        if data.get(required) is None:
            problems.add(camel_case(required), "required", "is required.")
    values = _trigger_shape(problems, {k: v for k, v in data.items() if not problems.has(camel_case(k))})
    _check_kind_and_event(problems, values)
    problems.check()
    await _check_trigger_references(ctx, values)
    await _check_trigger_reach(ctx, Action.CREATE, None, values.get("department_id"))
    trigger_id = uuid7()
    async with in_transaction():
        row = await SurveyTrigger.create(id=trigger_id, institution_id=ctx.institution_id, version=1, active=True,
                                         **values)
        await writer.append([access.write_record(ctx, Action.CREATE, "survey_trigger", trigger_id,
                                                 fields=frozenset(values), decision=decision)])
    return row


async def trigger_update(ctx: Context, trigger_id: uuid.UUID | None, data: dict[str, Any],
                         version: int | None) -> SurveyTrigger:
    """Change an active trigger in place (invitations already made keep their questionnaire version)."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "survey", "update", action=Action.UPDATE, resource_type="survey_trigger",
                                      resource_id=trigger_id)
    problems = Problems()
    values = _trigger_shape(problems, data)
    if "event" in data and "visit_kind" in data:  # against each other now, against the trigger once it is read
        _check_kind_and_event(problems, values)
    problems.check()
    row = await _find_trigger(ctx, trigger_id)
    against_row = Problems()
    _check_kind_and_event(against_row, {**{name: getattr(row, name) for name in TRIGGER_COLUMNS}, **values})
    against_row.check()
    await _check_trigger_references(ctx, values)
    await _check_trigger_reach(ctx, Action.UPDATE, row.id, row.department_id)
    if "department_id" in values:
        await _check_trigger_reach(ctx, Action.UPDATE, row.id, values["department_id"])
    await _write_trigger(ctx, row, version, values, decision)
    return await SurveyTrigger.get(id=row.id)


async def trigger_deactivate(ctx: Context, trigger_id: uuid.UUID | None, version: int | None) -> SurveyTrigger:
    """An inactive trigger invites nobody; its invitations stand (and are still reminded)."""
    decision = await access.authorize(ctx, "survey", "update", action=Action.UPDATE, resource_type="survey_trigger",
                                      resource_id=trigger_id)
    row = await _find_trigger(ctx, trigger_id)
    await _check_trigger_reach(ctx, Action.UPDATE, row.id, row.department_id)
    await _write_trigger(ctx, row, version, {"active": False}, decision)
    return await SurveyTrigger.get(id=row.id)


async def _write_trigger(ctx: Context, row: SurveyTrigger, version: int | None, values: dict[str, Any],
                         decision: Decision) -> None:
    expected = row.version if version is None else version
    async with in_transaction():
        changed = await SurveyTrigger.filter(id=row.id, institution_id=ctx.institution_id, version=expected,
                                             active=True).update(version=bumped(), updated_at=_now(), **values)
        if changed != 1:
            raise Conflict("version: the trigger changed (or was deactivated) since you read it; read it again.",
                           field="version")
        await writer.append([access.write_record(ctx, Action.UPDATE, "survey_trigger", row.id,
                                                 fields=frozenset(values), decision=decision)])


async def _find_trigger(ctx: Context, trigger_id: uuid.UUID | None) -> SurveyTrigger:
    return await access.find_in_institution(ctx, SurveyTrigger, trigger_id, action=Action.UPDATE,
                                            resource_type="survey_trigger")


async def _check_trigger_reach(ctx: Context, action: Action, trigger_id: uuid.UUID | None,
                               department_id: uuid.UUID | None) -> None:
    """Admins write any trigger; a department head only those of their own departments."""
    if not access.keeps_departments(ctx, [department_id]):
        await access.deny(ctx, action, "survey_trigger", trigger_id, reason="other_department")
        raise Forbidden("departmentId: a department head writes the triggers of their own departments.",
                        field="departmentId")


def _trigger_shape(problems: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """The trigger's columns given, each checked alone; each invalid one becomes a problem (the caller checks)."""
    return problems.each({name: value for name, value in data.items() if name in TRIGGER_COLUMNS}, _trigger_value)


def _trigger_value(name: str, value: Any) -> Any:
    field = camel_case(name)
    if name == "event":
        return one_of(value, TRIGGER_EVENTS, field)
    if name == "visit_kind":
        return None if value is None else one_of(value, VISIT_KINDS, field)
    if name == "questionnaire_key" and value is None:
        raise BadUserInput(f"{field}: must not be null.", field=field, reason="required")
    if name == "delay_hours":
        return _bounded(value, DELAY_HOURS, field)
    if name == "reminder_after_days":
        return None if value is None else _bounded(value, REMINDER_DAYS, field)
    return value  # department_id, questionnaire_key: looked up once the shape is sound


def _check_kind_and_event(problems: Problems, merged: dict[str, Any]) -> None:
    """Only a trigger on finished visits names a visit kind (unless either field has a problem already)."""
    if merged.get("visit_kind") is not None and merged.get("event") != "visit_finished" \
            and not (problems.has("visitKind") or problems.has("event")):
        problems.add("visitKind", "invalid", "only a trigger on finished visits names a visit kind.")


async def _check_trigger_references(ctx: Context, values: dict[str, Any]) -> None:
    """The department and the questionnaire named, looked up, and the reminder within the institution's link
    validity: every problem at once."""
    problems = Problems()
    department = values.get("department_id")
    if department is not None and not await Department.exists(id=department, institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    reminder = values.get("reminder_after_days")
    if reminder is not None:  # found in review: one after the links closed was saved, and never sent
        valid = (await settings_of(ctx.institution_id)).link_valid_days
        if reminder >= valid:
            problems.add("reminderAfterDays", REMINDER_AFTER_LINK, f"must be fewer days than the links are valid "
                         f"(linkValidDays, {valid}): no reminder goes once the link has closed.")
    if values.get("questionnaire_key") is not None:
        questionnaire = await active_version(ctx.institution_id, values["questionnaire_key"])
        if questionnaire is None:
            problems.add("questionnaireKey", "invalid", "no active questionnaire has this key.")
        elif questionnaire.respondent == "staff":
            problems.add("questionnaireKey", "invalid", "this questionnaire is answered by staff, not sent to "
                                                        "patients.")
    problems.check()


def _bounded(value: int | None, bounds: tuple[int, int], field: str) -> int:
    if value is None or not bounds[0] <= value <= bounds[1]:
        raise BadUserInput(f"{field}: must be between {bounds[0]} and {bounds[1]}.", field=field,
                           reason="out_of_range")
    return value


async def active_version(institution_id: uuid.UUID, key: uuid.UUID) -> Questionnaire | None:
    """The questionnaire's active version (the newest, should two be active)."""
    return await (Questionnaire.filter(institution_id=institution_id, key=key, status="active")
                  .order_by("-version").first())


# -- invitations: the causes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    """Something that may ask a patient to answer a survey."""

    key: str
    event: str
    patient_id: uuid.UUID
    at: datetime
    department_id: uuid.UUID | None
    visit_kind: str | None = None
    visit_id: uuid.UUID | None = None
    ticket_id: uuid.UUID | None = None
    follow_up_task_id: uuid.UUID | None = None
    clinician_id: uuid.UUID | None = None


async def on_visit_finished(ctx: Context, visit: Visit) -> SurveyInvitation | None:
    """The invitation a finished visit asks for, inside the visit's transaction."""
    return await _on_cause(ctx, Cause(
        f"visit:{visit.id}", "visit_finished", visit.patient_id, visit.ended_at or _now(), visit.department_id,
        visit_kind=visit.kind, visit_id=visit.id, clinician_id=visit.clinician_id))


async def on_ticket_closed(ctx: Context, ticket: Ticket) -> SurveyInvitation | None:
    """The invitation a closed ticket asks for (a ticket about a patient on file), inside its transaction.
    A ticket closed, reopened and closed again is one cause: it invites once. Not the call-back ticket a family
    member's low answer opened: the patient never learns what their family answered, nor that they complained."""
    if ticket.patient_id is None or await _opened_by_a_family_answer(ticket):
        return None
    return await _on_cause(ctx, Cause(f"ticket:{ticket.id}", "ticket_closed", ticket.patient_id,
                                      ticket.closed_at or _now(), ticket.department_id, ticket_id=ticket.id))


async def _opened_by_a_family_answer(ticket: Ticket) -> bool:
    """Whether a family member's survey answer opened this ticket (found in review: closing it invited the patient to
    a survey about it, which told them their family had complained). Only the system opens such tickets, so the
    others cost no statement."""
    if ticket.opened_by_id is not None or ticket.opened_by_partner_id is not None or ticket.opened_by_patient:
        return False
    return await family_call_backs(ticket.institution_id).filter(follow_up_ticket_id=ticket.id).exists()


def family_call_backs(institution_id: uuid.UUID) -> QuerySet[QuestionnaireResponse]:
    """The responses of family members (invitations to a contact) whose low answers opened a call-back ticket on the
    patient's file: what the family answered, which the patient is never shown."""
    return QuestionnaireResponse.filter(institution_id=institution_id, follow_up_ticket_id__isnull=False,
                                        invitation__contact_id__isnull=False)


def _family_ids(institution_id: uuid.UUID, files: Subquery) -> dict[str, tuple[QuerySet[Any], str]]:
    """The records of a family's survey on these files, per resource type as the trail names them, each a query and
    its column of ids: the invitations to a contact, the family's responses, the call-back tickets they opened and
    those tickets' attachments, the invitations' messages."""
    invitations = SurveyInvitation.filter(institution_id=institution_id, patient_id__in=files,
                                          contact_id__isnull=False)
    responses = QuestionnaireResponse.filter(institution_id=institution_id,
                                             invitation_id__in=Subquery(invitations.values("id")))
    call_backs = family_call_backs(institution_id).filter(patient_id__in=files)
    messages = Communication.filter(institution_id=institution_id, patient_id__in=files, contact_id__isnull=False,
                                    cause="survey_invitation")
    attachments = Attachment.filter(institution_id=institution_id,
                                    ticket_id__in=Subquery(call_backs.values("follow_up_ticket_id")))
    return {"survey_invitation": (invitations, "id"), "questionnaire_response": (responses, "id"),
            "ticket": (call_backs, "follow_up_ticket_id"), "communication": (messages, "id"),
            "attachment": (attachments, "id")}


def family_records(institution_id: uuid.UUID, files: Subquery) -> Q:
    """The ``AuditEvent`` rows about a family's survey on these files: the invitation to a contact (made, read through
    its link, answered, refused), its messages, the family's response and the call-back ticket it opened, with its
    attachments (their records are the attachment's, not the ticket's: found in review, their upload and downloads
    were listed). The portal shows the patient none of them, so neither does their own access log (found in review:
    "who viewed my record" showed the family's link answer as an anonymous write on the file, the call-back as the
    system's). A record listing several (a page read alike) is ``family_lists``'."""
    # resource_id not null in each: NOT (a NULL IN ...) would leave out every record of a list too
    conditions = [Q(resource_type=kind, resource_id__not_isnull=True, resource_id__in=Subquery(rows.values(column)))
                  for kind, (rows, column) in _family_ids(institution_id, files).items()]
    return Q(*conditions, join_type=Q.OR)


async def family_lists(institution_id: uuid.UUID, files: Subquery, events: QuerySet[AuditEvent]) -> list[int]:
    """The sequence numbers of the records among ``events`` (about the person whose files ``files`` names) that list
    several records (a page read alike: its subjects, no record of its own) of which every one on
    the person's files is of their family's survey, as ``family_records`` names them: such a record is about them
    as much as a record of one (found in review: a support agent's queue holding the family's call-back and another
    patient's ticket showed the patient a read of a Ticket). One statement; only when there is such a record, one
    more for the person's files and one for each kind of record listed (five kinds at most)."""
    ids = _family_ids(institution_id, files)
    listed = await events.filter(resource_id__isnull=True, resource_type__in=list(ids)).exclude(
        subjects="").values_list("seq", "resource_type", "subjects")
    if not listed:
        return []
    person = {str(i) for i in await Patient.filter(institution_id=institution_id, id__in=files).values_list(
        "id", flat=True)}
    kinds = sorted({str(kind) for _, kind, _ in listed})
    family = {kind: {str(i) for i in await ids[kind][0].values_list(ids[kind][1], flat=True)} for kind in kinds}
    hidden = []
    for seq, kind, text in listed:
        theirs = [str(record) for record, patient in parse_subjects(str(text)) if str(patient) in person]
        if theirs and all(record in family[str(kind)] for record in theirs):
            hidden.append(int(seq))
    return hidden


async def on_follow_up_completed(ctx: Context, task: FollowUpTask) -> SurveyInvitation | None:
    """The invitation a completed follow-up call asks for, inside the task's transaction."""
    return await _on_cause(ctx, Cause(f"follow_up:{task.id}", "follow_up_completed", task.patient_id,
                                      task.completed_at or _now(), task.department_id, visit_id=task.visit_id,
                                      follow_up_task_id=task.id))


async def _on_cause(ctx: Context, cause: Cause) -> SurveyInvitation | None:
    trigger = await _trigger_for(ctx.institution_id, cause)
    if trigger is None:
        return None
    questionnaire = await active_version(ctx.institution_id, trigger.questionnaire_key)
    if questionnaire is None or questionnaire.respondent == "staff":
        return None
    with writer.unkeyed():  # the system's, after what caused it: the request's Idempotency-Key names that
        made = await invite_many(ctx, questionnaire, [cause], trigger=trigger, decision=TRIGGER_DECISION)
    return made.invitations[0] if made.invitations else None


async def _trigger_for(institution_id: uuid.UUID, cause: Cause) -> SurveyTrigger | None:
    """The most specific active trigger matching the cause (one statement)."""
    query = SurveyTrigger.filter(institution_id=institution_id, event=cause.event, active=True)
    query = query.filter(Q(department_id__isnull=True) | Q(department_id=cause.department_id))
    query = query.filter(Q(visit_kind__isnull=True) | Q(visit_kind=cause.visit_kind))
    found = list(await query.order_by("id"))
    if not found:
        return None
    return max(found, key=lambda t: (t.department_id is not None) + (t.visit_kind is not None))  # the oldest of a tie


# -- invitations: making them ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    """What inviting a set of patients came to."""

    invitations: list[SurveyInvitation]  # made now
    fatigued: int  # asked within the fatigue period: not asked again
    inactive: int  # archived, deceased or merged (or no such patient)
    duplicate: int  # their cause had invited already
    refused: int  # made, but the consent gate refused the message (they may still answer in the portal)
    no_contact: int = 0  # a family questionnaire, and no contact of the patient's may be asked (none made)
    closed: int = 0  # the link would close before the message is sent: a visit entered long after it ended (none made)


async def take_turn(institution_id: uuid.UUID) -> None:
    """Wait for the institution's other invitation decisions to commit: a transaction-scoped advisory lock on
    PostgreSQL (released at commit or rollback, so no pooled connection keeps it); SQLite has one writer. Also taken
    by an edit of a version's anonymity (``resolvers.questionnaire.update``) before it looks for invitations."""
    db = SurveyInvitation._meta.db  # the caller's transaction's connection
    if db.capabilities.dialect == "postgres":
        await db.execute_query("SELECT pg_advisory_xact_lock(hashtext('careloop.survey_invitations'), hashtext($1))",
                               [str(institution_id)])


async def invite_many(ctx: Context, questionnaire: Questionnaire, causes: Sequence[Cause], *,
                      trigger: SurveyTrigger | None, decision: Decision) -> Invited:
    """Invite the causes' patients to answer ``questionnaire``, inside the caller's transaction, in a fixed
    number of statements whatever their number: patients, recent invitations, one insert (a cause that invited
    already is skipped quietly), the messages through the outbox, the audit records.

    The institution's invitations are decided one transaction at a time (``take_turn``), so two causes of one
    patient cannot both pass the fatigue cap. (Locking the patient's row instead would deadlock against a
    concurrent edit of the file. The audit chain head used to give the turns; since migration 0023 writers no
    longer wait for it.) The patients' files are held (``access.current_files``) before their status is read: a file
    merged meanwhile is not asked (counted ``inactive``); its survivor is asked on a cause of its own."""
    institution_id = ctx.institution_id
    patient_ids = sorted({cause.patient_id for cause in causes})
    # The files held before their status is read, as a merge locks them before it moves their invitations: one merged
    # meanwhile is read as merged (not active: not asked) rather than active from before the merge (found in review:
    # a survey campaign invited a file being merged, the invitation stayed on it and its message went to the
    # survivor). In one statement in id order, as the merge locks its two; FOR KEY SHARE, so only a merge waits. And
    # before the turn, as the other causes' writers hold their file first: no one waits for a file holding the turn.
    await access.current_files(patient_ids)
    await take_turn(institution_id)
    setup = await settings_of(institution_id)
    delay = timedelta(hours=trigger.delay_hours if trigger is not None else 0)
    send_at = {cause.key: cause.at + delay for cause in causes}
    patients = {p.id: p for p in await Patient.filter(id__in=patient_ids, institution_id=institution_id)}
    family = questionnaire.respondent == "family"
    contacts = await family_contacts(institution_id, patient_ids) if family and causes else {}
    fatigue = timedelta(days=setup.fatigue_days)
    recent: dict[uuid.UUID, list[datetime]] = {}
    if setup.fatigue_days and causes:
        earliest = min(send_at.values()) - fatigue
        for pid, at in await SurveyInvitation.filter(institution_id=institution_id, patient_id__in=patient_ids,
                                                     send_at__gt=earliest).exclude(
                status__in=NOT_COUNTED).values_list("patient_id", "send_at"):
            recent.setdefault(pid, []).append(at)
    inactive = fatigued = no_contact = closed = 0
    validity, now = timedelta(days=setup.link_valid_days), _now()
    fresh: list[SurveyInvitation] = []
    for cause in causes:
        patient = patients.get(cause.patient_id)
        if patient is None or patient.status != "active":
            inactive += 1
            continue
        contact = contacts.get(patient.id)
        if family and contact is None:
            no_contact += 1
            continue
        at = send_at[cause.key]
        if at + validity <= now:  # found in review: a visit of 1995 entered from paper was surveyed at once, by a
            closed += 1  # message whose link had closed in 1995
            continue
        if setup.fatigue_days and any(abs(at - other) < fatigue for other in recent.get(patient.id, [])):
            fatigued += 1
            continue
        recent.setdefault(patient.id, []).append(at)  # two causes of one patient in one call: the first asks
        invitation_id = uuid7()
        fresh.append(SurveyInvitation(
            id=invitation_id, institution_id=institution_id, questionnaire_id=questionnaire.id, cause_key=cause.key,
            patient_id=patient.id, contact_id=contact.id if contact is not None else None, visit_id=cause.visit_id,
            ticket_id=cause.ticket_id, follow_up_task_id=cause.follow_up_task_id,
            department_id=cause.department_id or patient.department_id,
            clinician_id=cause.clinician_id, trigger_id=trigger.id if trigger is not None else None,
            token_hash=link_digest(ctx.services.master_key.token_key, institution_id, invitation_id),
            send_at=at, expires_at=at + validity))
    if family and fresh:
        # The contacts chosen, held until the transaction ends (found in review, on PostgreSQL: one deleted by another
        # desk after ``family_contacts`` read it made the invitation's foreign key refuse it, and the visit's finish
        # answered INTERNAL_SERVER_ERROR with nothing written). One deleted meanwhile is simply not asked.
        held = await hold_contacts([row.contact_id for row in fresh if row.contact_id is not None])
        no_contact += sum(row.contact_id not in held for row in fresh)
        fresh = [row for row in fresh if row.contact_id in held]
    if not fresh:
        return Invited([], fatigued, inactive, 0, 0, no_contact, closed)
    await SurveyInvitation.bulk_create(fresh, ignore_conflicts=True)
    stored = {row.id for row in await SurveyInvitation.filter(
        institution_id=institution_id, id__in=[row.id for row in fresh]).only("id")}
    made = [row for row in fresh if row.id in stored]  # the others' causes had invited already
    names = {c.id: c.name for c in contacts.values()}
    refused = await _send(ctx, made, {pid: p.full_name for pid, p in patients.items()}, names)
    written = frozenset({"questionnaire", "cause", "send_at", "expires_at", *(("contact",) if family else ())})
    await writer.append([access.write_record(
        ctx, Action.CREATE, "survey_invitation", row.id, patient_id=row.patient_id, fields=written,
        decision=decision) for row in made])
    return Invited(made, fatigued, inactive, len(fresh) - len(made), refused, no_contact, closed)


async def family_contacts(institution_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contact]:
    """The contact each patient's family invitation goes to (one statement): of the contacts who may receive
    information and have a phone, one marked for emergencies first, then the earliest added. A patient with no
    such contact is absent."""
    found: dict[uuid.UUID, Contact] = {}
    for contact in await Contact.filter(institution_id=institution_id, patient_id__in=list(patient_ids),
                                        may_receive_information=True, phone__isnull=False).order_by(
            "-is_emergency", "created_at", "id"):
        found.setdefault(contact.patient_id, contact)
    return found


# FOR KEY SHARE, which Tortoise does not write: what the invitation's foreign key takes on the contact anyway.
_HOLD_CONTACTS = 'SELECT "id" FROM "contact" WHERE "id" = ANY($1::uuid[]) ORDER BY "id" FOR KEY SHARE'


async def hold_contacts(contact_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Inside the transaction that will name ``contact_ids`` (family invitations and their messages): those still
    there, each held until it ends, in one statement. On PostgreSQL FOR KEY SHARE, in id order: a delete under way
    is waited for (a contact it deleted is absent from the answer once it commits; one it rolled back is held), and
    one that comes later waits for the transaction and then finds the contact named (``contact.delete`` refuses it,
    CONFLICT contact_referenced). Only a delete (or a change of the contact's id) waits: KEY SHARE is what a foreign
    key takes, so an edit of the contact does not. No deadlock with ``contact.delete``: it locks the one contact row
    and waits for nothing this transaction holds (it takes no file lock; on PostgreSQL its audit append waits for no
    one). SQLite runs one write at a time: the contacts read in this transaction are still there."""
    if not contact_ids:
        return set()
    db = Contact._meta.db  # the caller's transaction's connection
    if db.capabilities.dialect != "postgres":
        return set(contact_ids)
    _, rows = await db.execute_query(_HOLD_CONTACTS, [sorted(set(contact_ids))])
    return {row["id"] for row in rows}


def _variables(row: SurveyInvitation, patient_names: dict[uuid.UUID, str], contact_names: dict[uuid.UUID, str],
               departments: dict[Any, Any]) -> dict[str, str]:
    """An invitation's message variables: names only. A family member's greets them by name and names neither
    the patient nor the department (which could tell of an illness)."""
    if row.contact_id is not None:
        return {"patient_name": contact_names.get(row.contact_id, ""), "department_name": ""}
    return {"patient_name": patient_names.get(row.patient_id, ""),
            "department_name": str(departments.get(row.department_id, "")) if row.department_id else ""}


async def _send(ctx: Context, made: list[SurveyInvitation], patient_names: dict[uuid.UUID, str],
                contact_names: dict[uuid.UUID, str]) -> int:
    """Schedule the invitations' messages (to the patient, or the family member a family invitation is
    addressed to); an invitation whose message the gate refused is marked refused (not asked: it does not count
    toward the fatigue cap). Answers how many were refused."""
    if not made:
        return 0
    names = dict(await Department.filter(id__in=list({r.department_id for r in made if r.department_id}))
                 .values_list("id", "name"))
    requests = [communications.Request(
        message_key(row.id, "invitation"), CAUSE, row.patient_id, row.send_at,
        _variables(row, patient_names, contact_names, names), contact_id=row.contact_id)
        for row in made]
    messages = await communications.schedule_many(ctx.institution_id, requests)
    refused = [row.id for row, message in zip(made, messages, strict=True) if message.status == "refused"]
    if refused:
        await SurveyInvitation.filter(id__in=refused).update(status="refused")
        for row in made:
            if row.id in refused:
                row.status = "refused"
    ctx.services.messages.scheduled.set()
    return len(refused)


# -- a one-off campaign ---------------------------------------------------------------------------------


async def invite_audience(ctx: Context, questionnaire_id: uuid.UUID | None, data: dict[str, Any]) -> Invited:
    """Invite a segment or a cohort at once (department heads: their own departments; admins: anyone), the
    audience filter being the campaigns' own; the fatigue cap and the consent gate apply to each patient."""
    decision = await access.authorize(ctx, "survey_invitation", "create", action=Action.CREATE,
                                      resource_type="survey_invitation")
    questionnaire = await access.find_in_institution(ctx, Questionnaire, questionnaire_id, action=Action.CREATE,
                                                     resource_type="questionnaire", field="questionnaireId")
    if questionnaire.status != "active":
        raise BadUserInput("questionnaireId: only an active questionnaire is sent.", field="questionnaireId")
    if questionnaire.respondent == "staff":
        raise BadUserInput("questionnaireId: this questionnaire is answered by staff, not sent to patients.",
                           field="questionnaireId")
    department = data.get("department_id")
    if department is not None and not access.keeps_departments(ctx, [department]):
        await access.deny(ctx, Action.CREATE, "survey_invitation", reason="other_department")
        raise Forbidden("audience.departmentId: a department head addresses their own departments.",
                        field="audience.departmentId")
    audience = await campaigns.audience_of(ctx, data)  # the campaigns' criteria, the author's reach folded in
    ids = list(await campaigns.audience_query(ctx.institution_id, audience).order_by("id")
               .limit(CAMPAIGN_LIMIT + 1).values_list("id", flat=True))
    if len(ids) > CAMPAIGN_LIMIT:
        raise BadUserInput(f"audience: more than {CAMPAIGN_LIMIT} patients; narrow it.", field="audience")
    campaign = uuid7()
    now = _now()
    causes = [Cause(f"{CAMPAIGN_CAUSE}:{campaign}:{pid}", "campaign", uuid.UUID(str(pid)), now, None) for pid in ids]
    async with in_transaction():
        # The campaign's own record, then its invitations, which take their turn with the causes' (invite_many).
        await writer.append([access.write_record(ctx, Action.CREATE, "survey_campaign", campaign,
                                                 fields=frozenset({"questionnaire", "audience"}),
                                                 decision=decision)])
        return await invite_many(ctx, questionnaire, causes, trigger=None, decision=decision)


async def ask_once_after_merge(institution_id: uuid.UUID, survivor_id: uuid.UUID) -> list[uuid.UUID]:
    """A survey campaign that invited both files of one person, merged (inside the merge's transaction, its files
    held): the person is asked once. Of each campaign's invitations now on the survivor the one kept is one
    answered, else one the gate did not refuse, the survivor's own (its cause names the file) first, else the first
    (``_kept``); the others not answered are cancelled, and their queued messages dropped when they fall due
    (``communication.Facts.outdated``). Found in review: both went out, two links to one questionnaire for one
    campaign. Invitations of other causes stand: each is about its own visit, ticket or call. Answers the
    invitations cancelled, for the merge's record. One cancelled already (by an earlier merge into this file) is left
    as it is, neither kept nor cancelled again (found in review: a second merge cancelled it again and recorded that).
    The rows are locked as read: an answer (which holds no file: an anonymous one names nobody) waits for the merge
    and then finds its invitation cancelled, or the merge waits for it and keeps the answered one."""
    rows = await SurveyInvitation.filter(institution_id=institution_id, patient_id=survivor_id,
                                         cause_key__startswith=f"{CAMPAIGN_CAUSE}:").exclude(
        status="cancelled").order_by("id").select_for_update()
    by_campaign: dict[str, list[SurveyInvitation]] = {}
    for row in rows:
        by_campaign.setdefault(row.cause_key.split(":")[1], []).append(row)
    cancelled = [row.id for twins in by_campaign.values() if len(twins) > 1
                 for row in twins if row is not _kept(twins, survivor_id) and not row.answered]
    if cancelled:
        await SurveyInvitation.filter(id__in=cancelled).update(status="cancelled", version=F("version") + 1)
    return cancelled


def _kept(twins: list[SurveyInvitation], survivor_id: uuid.UUID) -> SurveyInvitation:
    """One answered, else one whose message the gate did not refuse (found in review: the survivor's own kept though
    refused, the other cancelled, the person was asked by neither), the survivor's own first, else the first."""
    return min(twins, key=lambda row: (not row.answered, row.status == "refused",
                                       not row.cause_key.endswith(f":{survivor_id}")))


# -- reading invitations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationView:
    row: SurveyInvitation
    questionnaire: Questionnaire
    patient: PatientView
    own: bool  # the patient's own (the portal): they see whether they answered, even an anonymous survey
    contact: Contact | None = None  # the family member a family invitation was addressed to


async def patient_invitations(ctx: Context, patient_id: uuid.UUID | None, *, first: int,
                              after: str | None, count: bool = False) -> pagination.Page[InvitationView]:
    """A patient's invitations, newest first (nurses, front desk and department heads, within their reach):
    what to ask on the phone or enter from paper."""
    decision = await access.authorize(ctx, "survey_invitation", "read", action=Action.READ,
                                      resource_type="survey_invitation", patient_id=patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    # read where a role that reads invitations reaches, not another role of the account (a nurse in finance)
    await access.require_section_reached(ctx, view, "survey_invitation", resource_type="survey_invitation")
    # a patient reaches their own file only, and reads it as the portal lists it (found in review: this door showed
    # them the invitation addressed to their family, its contact and whether it was answered)
    own = ctx.require_principal().kind == PATIENT
    return await _invitation_page(ctx, view, first, after, decision.rule, own=own, count=count)


async def my_invitations(ctx: Context, *, first: int, after: str | None,
                         count: bool = False) -> pagination.Page[InvitationView]:
    """The signed-in patient's own invitations, newest first: those addressed to them (a family invitation is
    their family's to answer, not theirs)."""
    decision = await access.authorize(ctx, "survey_invitation", "read", action=Action.READ,
                                      resource_type="survey_invitation")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.READ)
    return await _invitation_page(ctx, view, first, after, decision.rule, own=True, count=count)


async def _invitation_page(ctx: Context, view: PatientView, first: int, after: str | None, rule: str, *,
                           own: bool, count: bool) -> pagination.Page[InvitationView]:
    query = SurveyInvitation.filter(institution_id=ctx.institution_id, patient_id=view.row.id)
    if own:
        query = query.filter(contact_id__isnull=True)
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(id__lt=pagination.decode_uuid(INVITATION_CURSOR, after))
    rows = list(await query.order_by("-id").limit(first + 1))
    questionnaires = {q.id: q for q in await Questionnaire.filter(
        institution_id=ctx.institution_id, id__in=list({r.questionnaire_id for r in rows}))}
    contact_ids = list({r.contact_id for r in rows[:first] if r.contact_id})
    contacts = {c.id: c for c in await Contact.filter(institution_id=ctx.institution_id, id__in=contact_ids)} \
        if contact_ids else {}
    ctx.reads.note("survey_invitation", None, view.row.id, rule=rule)
    return pagination.page_of([InvitationView(r, questionnaires[r.questionnaire_id], view, own,
                                              contacts.get(r.contact_id) if r.contact_id else None)
                               for r in rows[:first]], len(rows) > first, INVITATION_CURSOR, key=lambda v: v.row.id,
                              total=total)


def invited_contact(ctx: Context, view: InvitationView) -> ContactView | None:
    """The family member the invitation was addressed to, read under the contact rules (``contact: read`` and
    the patient's contact class; otherwise FORBIDDEN on the field, noted); None when it went to the patient."""
    if view.contact is None:
        return None
    access.require_contacts(ctx, view.patient)
    return ContactView(view.contact, view.patient)


def shown_answered(view: InvitationView) -> bool | None:
    """Whether it was answered: for an anonymous questionnaire only the patient themself is told, so that
    staff cannot line an anonymous response up with the invitation that was answered just then."""
    if view.questionnaire.anonymous and not view.own:
        return None
    return bool(view.row.answered)


def shown_status(view: InvitationView, now: datetime | None = None) -> str:
    """requested (waiting or sent), refused (the gate stopped the message), answered, expired or cancelled;
    an anonymous questionnaire's answered invitation shows to staff as an unanswered one does, before its
    expiry and after it."""
    row = view.row
    if row.answered and shown_answered(view):
        return "answered"
    if row.status in ("cancelled", "refused"):
        return str(row.status)
    if row.expires_at <= (now or _now()):  # an answer staff are told of returned above
        return "expired"
    return "requested" if row.status == "answered" else str(row.status)


# -- reminders ------------------------------------------------------------------------------------------


async def remind_unanswered(now: datetime | None = None) -> int:
    """The sweep: one reminder per unanswered invitation whose trigger asks for one, ``reminder_after_days``
    after its message was due, while the link holds; recorded as the system's writes. Safe in several
    workers at once (rows locked, ``SKIP LOCKED`` on PostgreSQL; message keys make a repeat harmless)."""
    now = now or _now()
    reminded = 0
    for trigger_id, institution_id, days in await SurveyTrigger.filter(reminder_after_days__isnull=False).order_by(
            "id").values_list("id", "institution_id", "reminder_after_days"):
        reminded += await _remind(institution_id, trigger_id, now - timedelta(days=int(days)), now)
    return reminded


async def _remind(institution_id: uuid.UUID, trigger_id: uuid.UUID, due_by: datetime, now: datetime) -> int:
    reminded = 0
    while True:
        async with in_transaction():
            pending = SurveyInvitation.filter(institution_id=institution_id, trigger_id=trigger_id, answered=False,
                                              reminded_at__isnull=True, status="requested", send_at__lte=due_by,
                                              expires_at__gt=now).order_by("send_at", "id").limit(REMINDER_BATCH)
            # Their files held before the invitations, as a merge locks the files before it moves the invitations:
            # the other way round, the reminders' wait for a file deadlocked with a merge at that moment (found in
            # review). One whose file is not held (due since the first look) waits for the next sweep.
            first_look = await pending.values_list("patient_id", flat=True)
            files = await access.current_files({uuid.UUID(str(p)) for p in first_look})
            if not files:
                return reminded
            due = await pending.filter(patient_id__in=sorted(set(files.values()))).select_for_update(skip_locked=True)
            if not due:
                return reminded
            await SurveyInvitation.filter(id__in=[row.id for row in due]).update(reminded_at=now)
            names = {i: str(n) for i, n in await Patient.filter(
                id__in=list({row.patient_id for row in due})).values_list("id", "full_name")}
            contact_ids = list({row.contact_id for row in due if row.contact_id})
            contacts = {i: str(n) for i, n in await Contact.filter(
                institution_id=institution_id, id__in=contact_ids).values_list("id", "name")} if contact_ids else {}
            departments = dict(await Department.filter(id__in=list({row.department_id for row in due
                                                                    if row.department_id})).values_list("id", "name"))
            await communications.schedule_many(institution_id, [communications.Request(
                message_key(row.id, "reminder"), CAUSE, row.patient_id, now,
                _variables(row, names, contacts, departments), contact_id=row.contact_id) for row in due])
            await writer.append([AuditRecord(institution_id, SYSTEM, Action.UPDATE, "survey_invitation",
                                             Outcome.ALLOWED, resource_id=row.id, patient_id=row.patient_id,
                                             fields_read=frozenset({"reminded_at"}), policy_rule=REMINDER_RULE)
                                 for row in due])
        reminded += len(due)
        if len(due) < REMINDER_BATCH:
            return reminded
