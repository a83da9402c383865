"""Message templates: the built-in defaults, an institution's own, picking, checking and rendering.

A template has ``{variable}`` slots, and only the variables of ``TEMPLATE_VARIABLES`` may appear:
names, dates, times, places, the institution's name and phone, and the unsubscribe link. A message
is read on a lock screen and passes through a gateway, so a slot such as ``{diagnosis}`` is refused
when the template is written, never filled in. Slots are ``{name}`` and nothing else: no format
specs, conversions, attributes or indexes (``{patient_name!r}``, ``{x.__class__}``), and no other
brace, so rendering is a plain substitution that cannot reach anything but the given values.

The outbox (``resolvers.communication``) calls ``pick`` and ``render`` at the moment of sending;
the API sets, resets, lists and previews templates (admins write, department heads read).

Versions: a key (institution, cause, channel, language) counts 1, 2, 3, ... from its first write and never
goes back. A reset keeps the row as a tombstone (body emptied, version one more), which every reader here
treats as absent, so the next write continues the count: a version read before a reset (and another
template written since) can never match again, and a stale write is a CONFLICT instead of a lost update.
Version 0 states "no template of the institution's own there" (never written, or reset): it is what a
reader shows for a default and what ``set_template``/``reset`` compare against for a missing or reset key.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput, Conflict
from core.ids import uuid7
from core.validation import Problems, clean_text, one_of
from models import Institution, MessageTemplate
from models.communication import CAUSES, PURPOSES
from models.message_template import TEMPLATE_CHANNELS, TEMPLATE_LANGUAGES, TEMPLATE_VARIABLES, TOMBSTONE_BODY
from policies.guard import Decision
from resolvers import access, pagination
from resolvers import messaging as messagings
from resolvers.context import Context

VARIABLES = TEMPLATE_VARIABLES
DEFAULT_LANGUAGE = "zh-CN"
TEMPLATE_CAUSES = tuple(CAUSES)  # logged calls are not sent, so they have no template
SUBJECT_LIMIT = 200
BODY_LIMIT = 1000
SMS_BODY_LIMIT = 500  # a few SMS parts at most, whatever the gateway would accept
# The channels whose text may go out by SMS: an ANY template is the SMS text wherever there is no SMS one.
SMS_SENT = ("sms", "any")
CURSOR = "message-template"
# A cause of these purposes may be refused by the patient at any time: its message carries the link.
UNSUBSCRIBE_PURPOSES = frozenset(p for p in PURPOSES if p != "care")

_SLOT = re.compile(r"\{([a-z_]+)\}")
_ANY_BRACED = re.compile(r"\{([^{}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")

# (subject, body) per cause and language: short enough for an SMS, nothing clinical. A variable the
# outbox leaves empty renders as nothing, so each reads acceptably without the optional ones. None names the
# department: a text is read on a lock screen, and "Oncology", "Psychiatry" or "HIV clinic" there tells anyone who
# glances at the phone what the patient is treated for (found in review: the appointment texts named it). They name
# the institution instead; an institution's own template may still use {department_name} (docs/messages.md).
DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    ("appointment_confirmation", "zh-CN"): (
        "预约成功",
        "{patient_name}，您已预约{date} {time}{institution_name} {clinician_name}的门诊。"
        "如需改约请致电{institution_phone}。【{institution_name}】"),
    ("appointment_confirmation", "en"): (
        "Appointment booked",
        "{patient_name}, your appointment at {institution_name} is booked for {date} {time} {clinician_name}. "
        "To change it call {institution_phone}."),
    ("appointment_reminder", "zh-CN"): (
        "就诊提醒",
        "{patient_name}，提醒您于{date} {time}到{institution_name} {clinician_name}就诊。"
        "如需改约请致电{institution_phone}。【{institution_name}】"),
    ("appointment_reminder", "en"): (
        "Appointment reminder",
        "{patient_name}, a reminder of your appointment at {institution_name} on {date} at {time} {clinician_name}. "
        "To change it call {institution_phone}."),
    ("appointment_change", "zh-CN"): (
        "预约变更",
        "{patient_name}，您的预约已改为{date} {time}{institution_name} {clinician_name}的门诊。"
        "如有疑问请致电{institution_phone}。【{institution_name}】"),
    ("appointment_change", "en"): (
        "Appointment changed",
        "{patient_name}, your appointment at {institution_name} is now on {date} at {time} {clinician_name}. "
        "Questions: call {institution_phone}."),
    ("appointment_cancellation", "zh-CN"): (
        "预约取消",
        "{patient_name}，您{date} {time}在{institution_name}的预约已取消。"
        "如需重新预约请致电{institution_phone}。【{institution_name}】"),
    ("appointment_cancellation", "en"): (
        "Appointment cancelled",
        "{patient_name}, your appointment at {institution_name} on {date} at {time} is cancelled. "
        "To book again call {institution_phone}."),
    ("revisit_reminder", "zh-CN"): (
        "复诊提醒",
        "{patient_name}，您的复诊日期为{date}，请提前预约。预约电话{institution_phone}。【{institution_name}】"),
    ("revisit_reminder", "en"): (
        "Time for your next visit",
        "{patient_name}, your next visit is due on {date}. Please book ahead: call {institution_phone}. "
        "{institution_name}"),
    ("pending_treatment_reminder", "zh-CN"): (
        "预约提醒",
        "{patient_name}，您在{institution_name}尚有待预约的就诊，请于{date}前预约。预约电话{institution_phone}。"),
    ("pending_treatment_reminder", "en"): (
        "Please book your next appointment",
        "{patient_name}, please book your next appointment at {institution_name} before {date}. "
        "Call {institution_phone}."),
    ("follow_up_announcement", "zh-CN"): (
        "回访通知",
        "{patient_name}，{institution_name}将于{date}致电回访，来电号码{institution_phone}，请留意接听。"),
    ("follow_up_announcement", "en"): (
        "We will call you",
        "{patient_name}, {institution_name} will call you on {date} from {institution_phone}."),
    ("survey_invitation", "zh-CN"): (
        "满意度调查",
        "{patient_name}，感谢您到{institution_name}就诊，诚邀您参与满意度调查：{survey_url} "
        "如有疑问请致电{institution_phone}。"),
    ("survey_invitation", "en"): (
        "How was your visit?",
        "{patient_name}, thank you for visiting {institution_name}. We would welcome your answers to a short "
        "survey: {survey_url} Questions: call {institution_phone}."),
    ("contract_expiry", "zh-CN"): (
        "合同到期提醒",
        "{patient_name}，您与{institution_name}的服务合同（编号{contract_number}）将于{date}到期。"
        "如需续签请致电{institution_phone}。"),
    ("contract_expiry", "en"): (
        "Your service contract ends soon",
        "{patient_name}, your service contract {contract_number} with {institution_name} ends on {date}. "
        "To renew it call {institution_phone}."),
    ("contract_signature", "zh-CN"): (
        "合同待签署",
        "{patient_name}，您的服务合同（编号{contract_number}）有待您签署的文本，可在患者门户查看并签署，"
        "或致电{institution_phone}。【{institution_name}】"),
    ("contract_signature", "en"): (
        "A contract awaits your signature",
        "{patient_name}, a document of your service contract {contract_number} awaits your signature: read and "
        "sign it in the patient portal, or call {institution_phone}. {institution_name}"),
    ("birthday_greeting", "zh-CN"): (
        "生日快乐",
        "{patient_name}，{institution_name}祝您生日快乐，身体健康！退订：{unsubscribe_url}"),
    ("birthday_greeting", "en"): (
        "Happy birthday",
        "Happy birthday, {patient_name}, from all of us at {institution_name}! Unsubscribe: {unsubscribe_url}"),
    ("holiday_greeting", "zh-CN"): (
        "节日问候",
        "{patient_name}，{institution_name}祝您{holiday_name}快乐！退订：{unsubscribe_url}"),
    ("holiday_greeting", "en"): (
        "Season's greetings",
        "{patient_name}, {institution_name} wishes you a happy {holiday_name}! Unsubscribe: {unsubscribe_url}"),
    ("campaign", "zh-CN"): (
        "{institution_name}通知",
        "{patient_name}，感谢您对{institution_name}的信任。咨询电话{institution_phone}。退订：{unsubscribe_url}"),
    ("campaign", "en"): (
        "News from {institution_name}",
        "{patient_name}, thank you for your trust in {institution_name}. Questions: call {institution_phone}. "
        "Unsubscribe: {unsubscribe_url}"),
}

# What a preview fills the slots with: never a patient's data.
SAMPLES: dict[str, dict[str, str]] = {
    "zh-CN": {"patient_name": "张三", "contact_name": "李四", "date": "2026-12-01", "time": "09:30",
              "clinician_name": "王医生", "department_name": "口腔科", "place": "门诊楼3层",
              "holiday_name": "春节", "institution_phone": "0755-12345678",
              "unsubscribe_url": "https://example.invalid/u/sample",
              "survey_url": "https://example.invalid/survey#token=sample"},
    "en": {"patient_name": "Alex Chen", "contact_name": "Sam Lee", "date": "2026-12-01", "time": "09:30",
           "clinician_name": "Dr Wang", "department_name": "Dentistry", "place": "Building A, 3rd floor",
           "holiday_name": "Spring Festival", "institution_phone": "0755-12345678",
           "unsubscribe_url": "https://example.invalid/u/sample",
           "survey_url": "https://example.invalid/survey#token=sample"},
}


@dataclass(frozen=True)
class Template:
    """A template in force: the institution's own row, or a built-in default (``row`` None; also when the
    institution's row for the key is a reset's tombstone)."""

    cause: str
    channel: str
    language: str
    subject: str
    body: str
    row: MessageTemplate | None = None

    @property
    def is_default(self) -> bool:
        return self.row is None

    @property
    def version(self) -> int:
        return 0 if self.row is None else self.row.version  # 0: none of its own (pass it to replace a default)

    @property
    def updated_at(self) -> datetime | None:
        return None if self.row is None else self.row.updated_at

    @property
    def key(self) -> str:
        return f"{TEMPLATE_CAUSES.index(self.cause):02d}|{self.language}|{TEMPLATE_CHANNELS.index(self.channel)}"


@dataclass(frozen=True)
class Preview:
    template: Template
    subject: str
    body: str


# -- checking and rendering (no database) ------------------------------------------------------


def check(text: str, field: str) -> None:
    """Refuse (BAD_USER_INPUT naming ``field``) control or invisible characters, a brace that is not
    part of a ``{variable}`` slot, and a slot that is not one of ``TEMPLATE_VARIABLES``."""
    clean_text(text, field=field, max_length=len(text) + 1)
    for match in _ANY_BRACED.finditer(text):
        inner = match.group(1)
        if inner in TEMPLATE_VARIABLES:
            continue
        if _IDENTIFIER.fullmatch(inner):
            raise BadUserInput(f"{field}: {{{inner}}} may not be filled in; a message may name only "
                               f"{', '.join(TEMPLATE_VARIABLES)}.", field=field)
        raise BadUserInput(f"{field}: a slot is a variable's name in braces, nothing else (no format, conversion "
                           "or attribute).", field=field)
    if "{" in _ANY_BRACED.sub("", text) or "}" in _ANY_BRACED.sub("", text):
        raise BadUserInput(f"{field}: unbalanced braces; braces only surround a variable's name.", field=field)


def render(text: str, variables: Mapping[str, object]) -> str:
    """Fill ``{variable}`` slots in one pass: a missing variable renders as nothing, and braces in the
    values stay as they are (never read as slots)."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = variables.get(name) if name in TEMPLATE_VARIABLES else None
        return "" if value is None else str(value)

    return _SLOT.sub(fill, text)


def slots_of(text: str) -> frozenset[str]:
    """The variables a text fills in (``{patient_name}`` -> ``patient_name``), as ``render`` finds them."""
    return frozenset(name for name in _SLOT.findall(text) if name in TEMPLATE_VARIABLES)


def language_of(language: str | None) -> str:
    """A supported language for a patient's preference ("en-GB" -> "en"); Chinese otherwise."""
    if language in TEMPLATE_LANGUAGES:
        return language
    if language and language.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE


def default(cause: str, language: str) -> Template:
    subject, body = DEFAULTS[(cause, language_of(language))]
    return Template(cause, "any", language_of(language), subject, body)


def sms_parts(text: str) -> int:
    """How many SMS a body takes: 160 / 153 characters in GSM-7 (approximated as ASCII), 70 / 67 in UCS-2."""
    single, multi = (160, 153) if text.isascii() else (70, 67)
    return 0 if not text else 1 if len(text) <= single else -(-len(text) // multi)


# -- the outbox's side ---------------------------------------------------------------------------


async def pick(institution_id: uuid.UUID, cause: str, channel: str, language: str | None) -> tuple[str, str]:
    """(subject, body) for a message: the institution's template for the channel, else its "any"
    template, else the built-in default; an unsupported language falls back to Chinese. One statement.
    An unknown cause (a logged call) has no template: LookupError."""
    if cause not in TEMPLATE_CAUSES:
        raise LookupError(cause)
    found = await _in_force(institution_id, cause, channel, language_of(language))
    return found.subject, found.body


async def _in_force(institution_id: uuid.UUID, cause: str, channel: str, language: str) -> Template:
    rows = {row.channel: row for row in await MessageTemplate.live(
        institution_id=institution_id, cause=cause, language=language, channel__in=list({channel, "any"}))}
    row = rows.get(channel) or rows.get("any")
    return _template(row) if row is not None else default(cause, language)


def _template(row: MessageTemplate) -> Template:
    return Template(row.cause, row.channel, row.language, row.subject, row.body, row)


# -- the API: list, set, reset, preview ----------------------------------------------------------


async def templates(ctx: Context, *, cause: str | None, first: int,
                    after: str | None, count: bool = False) -> pagination.Page[Template]:
    """The institution's own templates and the defaults it has not replaced (or has reset), by cause, language
    and channel. One statement whatever the page (an institution has at most causes x channels x languages
    rows), the count (``count``) included."""
    decision = await access.authorize(ctx, "message_template", "read", action=Action.READ,
                                      resource_type="message_template")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    if cause is not None:
        one_of(cause, TEMPLATE_CAUSES, "cause")
    query = MessageTemplate.live(institution_id=ctx.institution_id)
    if cause is not None:
        query = query.filter(cause=cause)
    own = {(row.cause, row.channel, row.language): _template(row) for row in await query}
    defaults = {(c, "any", lang): default(c, lang) for c in TEMPLATE_CAUSES for lang in TEMPLATE_LANGUAGES
                if cause is None or c == cause}
    every = sorted({**defaults, **own}.values(), key=lambda t: t.key)
    total = len(every) if count else None
    if after:
        start = pagination.decode_text(CURSOR, after)
        every = [t for t in every if t.key > start]
    ctx.reads.note("message_template", None, None, rule=decision.rule)
    return pagination.page_of(every[:first], len(every) > first, CURSOR, key=lambda t: t.key, total=total)


def _checked_key(cause: str, channel: str, language: str, problems: Problems | None = None) -> tuple[str, str, str]:
    """The template's key, checked (each problem into ``problems`` when given: the caller checks them)."""
    own = problems is None
    problems = problems or Problems()
    key: list[str] = []
    for value, allowed, field in ((cause, TEMPLATE_CAUSES, "cause"), (channel, TEMPLATE_CHANNELS, "channel"),
                                  (language, TEMPLATE_LANGUAGES, "language")):
        with problems.collect(field):
            value = one_of(value, allowed, field)
        key.append(value)
    if own:
        problems.check()
    cause, channel, language = key
    return cause, channel, language


def checked_text(cause: str, channel: str, subject: str, body: str,
                 problems: Problems | None = None) -> tuple[str, str]:
    """A template's subject and body as they may be stored: BAD_USER_INPUT naming every field at fault, or with
    ``problems`` given, each problem added there (the caller checks them before using the text)."""
    own = problems is None
    problems = problems or Problems()
    checked_subject, checked_body = subject, body
    with problems.collect("subject"):
        checked_subject = clean_text(subject, field="subject", max_length=SUBJECT_LIMIT)
        check(checked_subject, "subject")
    with problems.collect("body"):
        checked_body = _checked_body(cause, channel, body)
    if own:
        problems.check()
    return checked_subject, checked_body


def _checked_body(cause: str, channel: str, body: str) -> str:
    limit = SMS_BODY_LIMIT if channel in SMS_SENT else BODY_LIMIT
    text = clean_text(body, field="body", max_length=limit, min_length=1)
    check(text, "body")
    if CAUSES.get(cause) in UNSUBSCRIBE_PURPOSES and "{unsubscribe_url}" not in text:
        raise BadUserInput("body: a greeting or campaign must carry {unsubscribe_url}, the patient's way out.",
                           field="body")
    return text


async def set_template(ctx: Context, cause: str, channel: str, language: str, subject: str, body: str,
                       version: int | None) -> Template:
    """Create or replace the institution's template. ``version``: the one read (0 for a default, also after a
    reset); a stale one is a CONFLICT and writes nothing. Without it, the last write wins. Writing a key that
    was reset fills its tombstone again with the next version (on the trail as a create, as the first write)."""
    decision = await access.authorize(ctx, "message_template", "update", action=Action.UPDATE,
                                      resource_type="message_template")
    problems = Problems()  # every problem of the input at once, before anything is read or written
    cause, channel, language = _checked_key(cause, channel, language, problems)
    subject, body = checked_text(cause, channel, subject, body, problems)
    problems.check()
    key: dict[str, Any] = {"institution_id": ctx.institution_id, "cause": cause, "channel": channel,
                           "language": language}
    try:
        row_id = await _write(ctx, key, subject, body, version, decision)
    except IntegrityError:  # another request created it a moment ago
        if version is not None:
            raise _stale() from None
        # without a version the last write wins (found in review: it was a CONFLICT): that row is there to replace
        row_id = await _write(ctx, key, subject, body, version, decision)
    found = await MessageTemplate.get(id=row_id)
    return _template(found)


async def _write(ctx: Context, key: dict[str, Any], subject: str, body: str, version: int | None,
                 decision: Decision) -> uuid.UUID:
    """``set_template``'s transaction: the key's row created or replaced over ``version`` (None: whatever it is),
    recorded; the row's id."""
    async with in_transaction():
        row = await MessageTemplate.filter(**key).select_for_update().first()
        if version is not None and version != _version_of(row):
            raise _stale()
        if row is None:
            row = await MessageTemplate.create(id=uuid7(), subject=subject, body=body, version=1, **key)
            action = Action.CREATE
        else:  # replaced, or written again after a reset: the key's versions only go up
            await MessageTemplate.filter(id=row.id).update(subject=subject, body=body, version=row.version + 1,
                                                           updated_at=datetime.now(UTC))  # no auto_now here
            action = Action.CREATE if row.is_tombstone else Action.UPDATE
        await writer.append([access.write_record(ctx, action, "message_template", row.id,
                                                 fields=frozenset({"subject", "body"}), decision=decision)])
    return row.id


async def reset(ctx: Context, cause: str, channel: str, language: str, version: int | None = None) -> Template:
    """Drop the institution's template: the next in line (its "any" template, or the default) is in force.
    ``version``: the one read (0 for a default); a stale one is a CONFLICT and drops nothing.

    The row stays as a tombstone (subject and body emptied, version one more, on the trail as the template's
    delete), so the key's next write continues its versions instead of starting at 1 again: a client still
    holding a version from before the reset gets a CONFLICT rather than overwriting the new template. A key
    with nothing of its own (never written, or reset already) is left as it is."""
    decision = await access.authorize(ctx, "message_template", "update", action=Action.DELETE,
                                      resource_type="message_template")
    cause, channel, language = _checked_key(cause, channel, language)
    async with in_transaction():
        row = await MessageTemplate.filter(institution_id=ctx.institution_id, cause=cause, channel=channel,
                                           language=language).select_for_update().first()
        if version is not None and version != _version_of(row):
            raise _stale()
        if row is not None and not row.is_tombstone:
            await MessageTemplate.filter(id=row.id).update(subject="", body=TOMBSTONE_BODY, version=row.version + 1,
                                                           updated_at=datetime.now(UTC))
            await writer.append([access.write_record(ctx, Action.DELETE, "message_template", row.id,
                                                     fields=frozenset({"subject", "body"}), decision=decision)])
    return await _in_force(ctx.institution_id, cause, channel, language)


async def preview(ctx: Context, cause: str, channel: str, language: str, subject: str | None = None,
                  body: str | None = None) -> Preview:
    """The template in force (or a draft given as ``subject``/``body``, checked as it would be stored, answered as the
    key asked for with the version to save it over) rendered with sample values and the institution's own name and
    phone: no patient's data."""
    decision = await access.authorize(ctx, "message_template", "read", action=Action.READ,
                                      resource_type="message_template")
    cause, channel, language = _checked_key(cause, channel, language)
    template = await _in_force(ctx.institution_id, cause, channel, language)
    if subject is not None or body is not None:
        draft_subject, draft_body = checked_text(cause, channel, template.subject if subject is None else subject,
                                                 template.body if body is None else body)
        # the draft is of the key asked for: its own row's version, not the fallback's it would replace there (found
        # in review: a draft for a channel whose ANY template is in force answered that one's version: a CONFLICT)
        own = template.row if template.channel == channel else None
        template = Template(cause, channel, language, draft_subject, draft_body, own)
    variables = dict(SAMPLES[language])
    institution = await Institution.get(id=ctx.institution_id)
    variables["institution_name"] = institution.name
    phone = (await messagings.settings(ctx.institution_id)).institution_phone
    if phone:
        variables["institution_phone"] = phone
    ctx.reads.note("message_template", None if template.row is None else template.row.id, None, rule=decision.rule)
    return Preview(template, render(template.subject, variables), render(template.body, variables))


def _version_of(row: MessageTemplate | None) -> int:
    """The version a reader shows for the key's template, which a write states: 0 when the institution has none
    of its own there (no row, or a reset's tombstone, whose own version only keeps the count going)."""
    return 0 if row is None or row.is_tombstone else row.version


def _stale() -> Conflict:
    return Conflict("version: the template was changed since you read it; read it again.", field="version")
