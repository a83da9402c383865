"""Messages to patients and their contacts (FHIR CommunicationRequest / Communication): the outbox, the
gate, the communication log, the patient's contact preferences and the unsubscribe link.

Scheduling (``schedule``) writes a queued row in the caller's transaction, idempotent on the cause's
key, and runs the gate once; the gate runs again at the moment of sending (consent may have been
withdrawn in between). Every refusal is kept with its reason (``models.communication.REFUSALS``).
Delivery (``deliver_due``) leases a batch of due rows, renders and hands each to its channel's
sender with no transaction open, renewing each row's lease just before its hand-over and recording it
sent (with the gateway's id, for delivery callbacks) as soon as its sender answers; then it settles the
rest of the batch: retried with backoff, failed, refused or deferred past the quiet hours.

Decided where the issue is silent:
- quiet hours are the institution's local time (a patient has no zone of their own); a message falling
  into them is never refused but deferred to their end, care messages and greetings alike; on the days the clocks
  change they run from the first time the clocks show their start to the first time after that they show their
  end (``Quiet``);
- the frequency cap counts a patient's non-care messages queued or sent within ``non_care_cap_days``
  either side of the new one when scheduling, and those actually sent (or going out with a worker) in the last
  ``non_care_cap_days`` when sending, in the database before the batch's hand-overs (``_take_places``);
- a contact is written to on the patient's consent (purposes, channels) when they may receive
  information, by SMS or WeChat on the contact's phone; their message carries their own unsubscribe link,
  which stops messages to them (``may_receive_information``) and never touches the patient's consent;
- the ``app`` channel has an address when the patient has an active portal account;
- a person gets one message of a campaign, or of a greeting on a day, on one file (two files of theirs merged, each
  with one): the others are refused ``duplicate`` (``refuse_twins``).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import hashlib
import hmac
import logging
import operator
import re
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core import tokens
from core.crypto import DecryptionError, InstitutionKeys, derive_key, field_aad
from core.errors import BadUserInput
from core.ids import uuid7
from core.messages import Gateway, MessageSender, Outgoing, SendFailed, needs_gateway
from core.principal import PATIENT
from core.validation import Problems, clean_text, happened_time, one_of
from models import (
    Appointment,
    Campaign,
    Communication,
    Contact,
    DeliveryReport,
    Department,
    Institution,
    MessagingSettings,
    Patient,
    PatientAccount,
    Schedule,
    Staff,
    SurveyInvitation,
)
from models.communication import CAUSES, DIRECTIONS, LOGGED_CALL, MESSAGE_CHANNELS, PURPOSES
from models.fields import tags_from_db, tags_to_db
from models.messaging import GATEWAY_CHANNELS
from models.patient import CHANNELS
from resolvers import access, outbox, pagination, versioning
from resolvers import message_template as templates
from resolvers import messaging as messagings
from resolvers.access import PatientView
from resolvers.context import Context, Services
from resolvers.loaders import newest_per_parent

log = logging.getLogger("careloop.messages")

BATCH = 500  # rows leased and settled together
LEASE = timedelta(minutes=5)  # a leased row comes back if its worker died before settling it; renewed at hand-over
# A sender's answer for one message, every try included, comes within HAND_OVER or the hand-over is a timeout (retried
# later): the senders' own timeouts count per read or per SMTP step, so they bound nothing (found in review). A
# hand-over starts with at least half a lease left (``_still_ours``), and RECORD_WITHIN is left to record its answer.
HAND_OVER, RECORD_WITHIN = timedelta(minutes=2), timedelta(seconds=30)
if HAND_OVER + RECORD_WITHIN > LEASE / 2:
    raise RuntimeError("a message's hand-over must end within half its lease")
SEND_AT_ONCE = 20  # messages handed to the senders concurrently
RETRY_FIRST, RETRY_FACTOR, RETRY_AT_MOST = timedelta(minutes=1), 2.0, timedelta(hours=2)
MAX_ATTEMPTS = 8
NON_CARE = frozenset(p for p in PURPOSES if p != "care")
COUNTED = ("queued", "sent", "delivered")  # what the frequency cap counts when scheduling
LOCK_TRIES = 4  # schedule_many's tries at locking its rows and their twins' candidates in one statement
SETTLED = ("sent", "delivered", "failed", "refused", "cancelled")
SYSTEM = Actor("system")
OUTBOX_RULE = "message outbox"
_LONG_NUMBER = re.compile(r"[0-9]{4,}")
# What identifies a patient in a gateway's words, on the text as it came (before the spaces go): an e-mail address
# (also with a full-width at sign), and a number as people write a phone's, 7 digits or more with spaces, dots,
# dashes, slashes or brackets between them
_WORDS = re.compile(r"([\s<>()\[\]{}\"',;:]+)")  # split so, an address is one word (linear, whatever the text)
_PHONE = re.compile(r"\+?[0-9](?:[\s().\-/]*[0-9]){6,}")
UNSUBSCRIBE_LINE = {"zh-CN": " 退订：{unsubscribe_url}", "en": " Unsubscribe: {unsubscribe_url}"}
UNSUBSCRIBE_PATH = "/unsubscribe"  # the link is f"{public_url}{UNSUBSCRIBE_PATH}?token=..."
SURVEY_PATH = "/survey"  # the portal's survey page: f"{public_url}{SURVEY_PATH}#token=clq_..."
SURVEY_KEY = "survey:"  # a survey invitation's messages: "survey:<invitation id>:invitation" or ":reminder"
SURVEY_LINK_WITHHELD = "[survey link: sent to the recipient only]"  # what staff see in its place on the log
# An unsubscribe link withdraws consent as the recipient, with no sign-in: staff reading the log see this instead
# (found in review: a role that may not change consent did so, anonymously, with the stored link)
UNSUBSCRIBE_LINK_WITHHELD = "[unsubscribe link: sent to the recipient only]"
SURVEY_LINE = {"zh-CN": " 问卷：{survey_url}", "en": " Survey: {survey_url}"}
CURSOR_KIND = "communication"
# An appointment's notices that only make sense while it is booked and still to come.
APPOINTMENT_NOTICES = frozenset({"appointment_confirmation", "appointment_reminder", "appointment_change"})
CALENDAR_NOTICES = frozenset({"revisit_reminder", "pending_treatment_reminder", "follow_up_announcement",
                              "birthday_greeting", "holiday_greeting"})  # resolvers.reminder's: keys end with a day
NOTE_LIMIT = 2000


def _now() -> datetime:
    return datetime.now(UTC)


# -- the gate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """What the gate knows of whoever a message is for (a patient, or one of their contacts)."""

    active: bool  # the patient is neither archived nor deceased
    consent: bool  # the patient agreed to be contacted at all
    purposes: frozenset[str]  # ... for these purposes
    channels: tuple[str, ...]  # ... on these message channels, the preferred one first
    addressed: frozenset[str]  # channels with an address (a phone for sms/wechat, an e-mail for email)
    informed: bool = True  # a contact who may receive information (the patient always may)


@dataclass(frozen=True)
class Quiet:
    """No messages between ``start`` and ``end``, local time in the institution's zone.

    The quiet hours begin the first time the clocks show ``start`` and end the first time after that they show
    ``end``, as an alarm set for those times rings: a time the clocks show twice (the hour repeated when daylight
    saving ends) counts at its first showing, and one they skip (the hour lost when it begins) when they jump past
    it. So a night's quiet hours are one span of time (found in review: read as clock times, quiet hours starting
    at 02:30 let messages go in the repeated 02:00-02:30 after they had begun, and those ending at 02:30 deferred a
    message of the repeated half hour to the first 02:30, already past, and the outbox claimed it again without end;
    ending at a skipped 02:30 they held messages until 03:30, half an hour after the clocks had passed it)."""

    start: time
    end: time
    zone: ZoneInfo

    def ending(self, moment: datetime) -> datetime | None:
        """When the quiet hours under way at ``moment`` end (UTC), or None when none are: those that began the day
        before (over midnight) or that day."""
        if self.start == self.end:
            return None
        for begins, ends in _spans(self.start, self.end, self.zone, moment.astimezone(self.zone).date()):
            if begins <= moment < ends:
                return ends
        return None


@functools.lru_cache(maxsize=4096)  # a batch asks the same few days of the same zones, thousands of times
def _spans(start: time, end: time, zone: ZoneInfo, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The quiet hours from ``start`` to ``end`` that began the day before ``day`` (over midnight) and on ``day``, as
    moments (UTC): when each begins and when it ends."""
    spans = []
    for began in (day - timedelta(days=1), day):
        ends_on = began + timedelta(days=1) if end < start else began
        spans.append((reached(began, start, zone), reached(ends_on, end, zone)))
    return tuple(spans)


def reached(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The moment (UTC) the clocks in ``zone`` first show ``at`` on ``day``, or a later time if they skip it: a time
    shown twice, at its first showing (fold 0); a time skipped, when the clocks jump past it."""
    first = datetime.combine(day, at, tzinfo=zone)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == first.replace(tzinfo=None):
        return first.astimezone(UTC)
    # Skipped: read with the offset after the jump (fold 1) it names a moment before the jump, with the offset before
    # it (fold 0) one after (PEP 495); the jump is the first second between them that has the later offset.
    before, after = int(first.replace(fold=1).timestamp()), int(first.timestamp())
    offset = datetime.fromtimestamp(after, zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


@dataclass(frozen=True)
class Verdict:
    refusal: str | None = None  # a reason of REFUSALS
    channel: str | None = None
    defer_to: datetime | None = None  # not now: quiet hours


def gate(recipient: Recipient | None, purpose: str, moment: datetime, quiet: Quiet, *, non_care_nearby: int,
         cap: int, closed: frozenset[str] = frozenset()) -> Verdict:
    """May this message go out at ``moment``, and on which channel? One pure decision over loaded facts.
    ``closed``: channels with no way out (no active gateway): passed over for the next addressed one, and taken
    only when every addressed channel is closed (its sender then says why: ``no_gateway``)."""
    if recipient is None or not recipient.active:
        return Verdict("patient_inactive")
    if not recipient.consent:
        return Verdict("no_consent")
    if purpose not in recipient.purposes:
        return Verdict("purpose_not_consented")
    if not recipient.informed:
        return Verdict("contact_not_informed")
    if not recipient.channels:
        return Verdict("no_channel")
    addressed = [c for c in recipient.channels if c in recipient.addressed]
    channel = next((c for c in addressed if c not in closed), addressed[0] if addressed else None)
    if channel is None:
        return Verdict("no_address")
    if purpose in NON_CARE and non_care_nearby >= cap:
        return Verdict("frequency_cap")
    return Verdict(channel=channel, defer_to=quiet.ending(moment))  # asked once a message (it was twice)


def consented_channels(patient: Patient) -> tuple[str, ...]:
    """The patient's consented message channels, the preferred one first, then in MESSAGE_CHANNELS order."""
    consented = set(tags_from_db(patient.contact_channels)) & set(MESSAGE_CHANNELS)
    ordered = [c for c in MESSAGE_CHANNELS if c in consented]
    if patient.preferred_channel in consented:
        ordered.remove(patient.preferred_channel)
        ordered.insert(0, patient.preferred_channel)
    return tuple(ordered)


# -- facts the gate needs, loaded for a batch ---------------------------------------------------


@dataclass
class Facts:
    """Everything the gate and the renderer need for a batch of rows, in a fixed number of statements."""

    patients: dict[uuid.UUID, Patient] = field(default_factory=dict)
    contacts: dict[uuid.UUID, Contact] = field(default_factory=dict)
    accounts: set[uuid.UUID] = field(default_factory=set)  # patients with an active portal account
    non_care: dict[uuid.UUID, list[Communication]] = field(default_factory=dict)
    settings: dict[uuid.UUID, MessagingSettings] = field(default_factory=dict)
    institutions: dict[uuid.UUID, Institution] = field(default_factory=dict)
    appointments: dict[uuid.UUID, tuple[str, datetime]] = field(default_factory=dict)  # status, slot start
    surveys_closed: set[uuid.UUID] = field(default_factory=set)  # invitations answered or cancelled
    survey_expiry: dict[uuid.UUID, datetime] = field(default_factory=dict)  # when each invitation's link closes

    def born_on(self, patient_id: uuid.UUID, day: date) -> bool:
        born = self.patients[patient_id].birth_date
        return born is not None and birthday_of(born, day.year) == day

    def outdated(self, row: Communication, moment: datetime) -> bool:
        """A confirmation, reminder or change of an appointment no longer booked, or already begun (the
        service was down when it fell due): nothing to tell any more. Cancellations always go. A survey
        invitation's message or reminder once the invitation was answered (or cancelled): dropped when it falls
        due, so that an anonymous invitation's answer leaves no mark dated by it (resolvers.questionnaire_response);
        and once its link has closed (found in review: deferred past the link's last hours, or found late, it went
        out with a link that answered "expired").
        A birthday greeting for a day that is not the file's birthday: the merged file's, moved to a survivor born
        another day, or queued there by a sweep that read the merged file (found in review: it went out on the
        merged file's day); the survivor's birth date stands."""
        invitation_id = survey_invitation_of(row)
        if invitation_id is not None:
            expires = self.survey_expiry.get(invitation_id)
            return invitation_id in self.surveys_closed or (expires is not None and expires <= moment)
        if row.cause == "birthday_greeting":
            day = _greeting_day(row)
            return day is not None and not self.born_on(row.patient_id, day)
        if row.appointment_id is None or row.cause not in APPOINTMENT_NOTICES:
            return False
        status, start = self.appointments.get(row.appointment_id, ("", moment))
        return status != "booked" or start <= moment

    def past_its_slot(self, row: Communication, moment: datetime) -> bool:
        """Deferred past the quiet hours, an appointment's notice would come after the slot began; a message of the
        calendar (``resolvers.reminder``: its key ends with the day it is about) after that day ended in the
        institution's zone (found in review: found late in the evening, a birthday was greeted the day after, a
        re-visit reminded after its day)."""
        if row.cause in CALENDAR_NOTICES:
            day = _greeting_day(row)
            zone = ZoneInfo(self.institutions[row.institution_id].time_zone)
            return day is not None and moment >= datetime.combine(day + timedelta(days=1), time(0), zone)
        if row.appointment_id is None or row.cause not in APPOINTMENT_NOTICES:
            return False
        return self.appointments.get(row.appointment_id, ("", moment))[1] <= moment

    def recipient(self, row: Communication) -> Recipient | None:
        patient = self.patients.get(row.patient_id)
        if patient is None:
            return None
        contact = self.contacts.get(row.contact_id) if row.contact_id else None
        if row.contact_id is not None and contact is None:
            return None
        return Recipient(
            active=patient.status == "active", consent=patient.contact_consent,
            purposes=frozenset(tags_from_db(patient.contact_purposes)), channels=consented_channels(patient),
            addressed=_addressed(patient, contact, patient.id in self.accounts),
            informed=contact is None or contact.may_receive_information)

    def quiet(self, institution_id: uuid.UUID) -> Quiet:
        s = self.settings[institution_id]
        return Quiet(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end),
                     ZoneInfo(self.institutions[institution_id].time_zone))

    def nearby(self, row: Communication, moment: datetime, *, sending: bool,
               undecided: set[uuid.UUID] | None = None) -> int:
        """The patient's other non-care messages that count against the cap around ``moment`` (those of
        the batch not decided yet do not)."""
        days = timedelta(days=self.settings[row.institution_id].non_care_cap_days)
        count = 0
        for other in self.non_care.get(row.patient_id, []):
            if other.id == row.id or (undecided is not None and other.id in undecided):
                continue
            if sending:
                count += other.status in ("sent", "delivered") and other.sent_at is not None and \
                    moment - days < other.sent_at <= moment
            else:
                when = other.sent_at or other.due_at
                count += other.status in COUNTED and abs(when - moment) < days
        return count


def _addressed(patient: Patient, contact: Contact | None, has_account: bool) -> frozenset[str]:
    if contact is not None:
        return frozenset({"sms", "wechat"} if contact.phone is not None else set())
    found = set()
    if patient.phone is not None:
        found |= {"sms", "wechat"}
    if patient.email:
        found.add("email")
    if has_account:
        found.add("app")
    return frozenset(found)


async def load_facts(rows: Iterable[Communication]) -> Facts:
    rows = list(rows)
    facts = Facts()
    if not rows:
        return facts
    institution_ids = {row.institution_id for row in rows}
    patient_ids = {row.patient_id for row in rows}
    contact_ids = {row.contact_id for row in rows if row.contact_id}
    facts.patients = {p.id: p for p in await Patient.filter(id__in=list(patient_ids))}
    if contact_ids:
        facts.contacts = {c.id: c for c in await Contact.filter(id__in=list(contact_ids))}
    facts.accounts = set(await PatientAccount.filter(patient_id__in=list(patient_ids), is_active=True)
                         .values_list("patient_id", flat=True))  # type: ignore[arg-type]
    facts.institutions = {i.id: i for i in await Institution.filter(id__in=list(institution_ids))}
    appointment_ids = {row.appointment_id for row in rows if row.appointment_id is not None}
    if appointment_ids:
        facts.appointments = {a: (str(status), start) for a, status, start in await Appointment.filter(
            id__in=list(appointment_ids)).values_list("id", "status", "slot_start")}
    invitation_ids = {i for i in (survey_invitation_of(row) for row in rows) if i is not None}
    if invitation_ids:
        for i, answered, status, expires in await SurveyInvitation.filter(id__in=list(invitation_ids)).values_list(
                "id", "answered", "status", "expires_at"):
            invitation_id = uuid.UUID(str(i))
            facts.survey_expiry[invitation_id] = expires
            if answered or status == "cancelled":
                facts.surveys_closed.add(invitation_id)
    found = {s.institution_id: s for s in await MessagingSettings.filter(institution_id__in=list(institution_ids))}
    facts.settings = {i: found.get(i) or MessagingSettings(institution_id=i) for i in institution_ids}
    if any(row.purpose in NON_CARE for row in rows):
        longest = max(s.non_care_cap_days for s in facts.settings.values())
        moments = [row.due_at for row in rows] + [_now()]
        window = Q(due_at__gt=min(moments) - timedelta(days=longest)) | Q(sent_at__gt=min(moments) - timedelta(
            days=longest))
        nearby = await Communication.filter(
            window, patient_id__in=[r.patient_id for r in rows if r.purpose in NON_CARE],
            purpose__in=list(NON_CARE), status__in=list(COUNTED)).only("id", "patient_id", "status", "due_at",
                                                                      "sent_at")
        grouped: dict[uuid.UUID, list[Communication]] = defaultdict(list)
        batch = {row.id: row for row in rows}
        for other in nearby:  # the batch's own rows as the batch holds them: their outcome counts
            grouped[other.patient_id].append(batch.get(other.id, other))
        facts.non_care = dict(grouped)
    return facts


# -- scheduling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One message to schedule (see ``schedule``)."""

    key: str
    cause: str
    patient_id: uuid.UUID
    due_at: datetime
    variables: dict[str, str]
    appointment_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


async def schedule(institution_id: uuid.UUID, *, key: str, cause: str, patient_id: uuid.UUID, due_at: datetime,
                   appointment_id: uuid.UUID | None = None, contact_id: uuid.UUID | None = None,
                   campaign_id: uuid.UUID | None = None, variables: dict[str, str]) -> Communication:
    """Queue one message, inside the caller's transaction (see ``schedule_many``)."""
    request = Request(key, cause, patient_id, due_at, dict(variables), appointment_id, contact_id, campaign_id)
    return (await schedule_many(institution_id, [request]))[0]


async def schedule_many(institution_id: uuid.UUID, requests: list[Request]) -> list[Communication]:
    """Queue messages, inside the caller's transaction, idempotent on their keys: a queued row with the
    same key is moved (due time, variables), a sent or settled one is left as it is. The gate runs
    once now: a refused message is recorded as refused with its reason; a message due in the quiet
    hours is moved to their end. A file merged since the caller read it: the message goes to the survivor, as
    the merge moved the messages queued a moment before it (found in review: it was queued on the merged file,
    refused there, its key taken, and the survivor never told). Answers the rows in the order asked.

    A queued row a worker holds (claimed and being sent) keeps its lease: its due time moves no earlier than
    the lease's end (found in review: moved back to now, the row was claimed and sent by another worker while
    the first was sending it). Its new variables are kept for a retry, and its new due time in ``rescheduled_to``:
    a retry or a deferral that worker settles goes no earlier (found in review: the worker's retry time replaced
    it, and the message went out hours early). What is out goes as it was claimed. The rows are locked as they
    are read, so a claim either came first (its lease is seen here) or skips them until the caller's transaction
    ends; with them, in the same statement and in id order, the greeting and campaign messages that may be their
    twins (``_locked_with_twins``)."""
    for request in requests:
        if request.cause not in CAUSES:
            raise ValueError(f"unknown cause {request.cause!r}")
    keys = [r.key for r in requests]
    asked = set(keys)
    existing = {row.key: row for row in await Communication.filter(institution_id=institution_id, key__in=keys)}
    files = await access.current_files({r.patient_id for r in requests if r.key not in existing})
    fresh = [Communication(institution_id=institution_id, key=r.key, cause=r.cause, purpose=CAUSES[r.cause],
                           patient_id=files[r.patient_id], contact_id=r.contact_id, appointment_id=r.appointment_id,
                           campaign_id=r.campaign_id, due_at=r.due_at, variables=r.variables)
             for r in requests if r.key not in existing]
    if fresh:  # a concurrent scheduler of the same key wins quietly: its row is the row
        await Communication.bulk_create(fresh, ignore_conflicts=True)
    held = await _locked_with_twins(institution_id, keys, [*existing.values(), *fresh])
    rows = {row.key: row for row in held.rows if row.key in asked}
    twins = await refuse_twins(institution_id, [rows[r.key] for r in requests if rows[r.key].status == "queued"],
                               held=held)
    queued = [rows[r.key] for r in requests if rows[r.key].status == "queued" and rows[r.key].id not in twins]
    by_key = {r.key: r for r in requests}
    for row in queued:  # the cause's latest word
        row.due_at, row.variables = by_key[row.key].due_at, by_key[row.key].variables
    facts = await load_facts(queued)
    now = _now()
    undecided = {row.id for row in queued}
    for row in queued:
        undecided.discard(row.id)
        moment = max(row.due_at, now)
        verdict = gate(facts.recipient(row), row.purpose, moment, facts.quiet(institution_id),
                       non_care_nearby=facts.nearby(row, row.due_at, sending=False, undecided=undecided),
                       cap=facts.settings[institution_id].non_care_cap)
        if facts.outdated(row, moment):
            row.status, row.settled_at = "cancelled", now
        elif verdict.refusal is not None:
            row.status, row.refusal, row.settled_at = "refused", verdict.refusal, now
        elif verdict.defer_to is not None and facts.past_its_slot(row, verdict.defer_to):
            row.status, row.refusal, row.settled_at = "refused", "quiet_hours", now
        elif verdict.defer_to is not None:
            row.due_at = verdict.defer_to
        if row.leased_until is not None:  # out with a worker: not before its lease ends (a settled one has none)
            row.rescheduled_to = row.due_at  # ...and a retry of that worker's not before the cause's time
            row.due_at = max(row.due_at, row.leased_until)
        await Communication.filter(id=row.id, status="queued").update(
            due_at=row.due_at, variables=row.variables, status=row.status, refusal=row.refusal,
            settled_at=row.settled_at, rescheduled_to=row.rescheduled_to)
    return [rows[r.key] for r in requests]


def birthday_of(born: date, year: int) -> date:
    """A 29 February birthday is kept on 28 February in other years."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


# -- one message of an occasion per person ------------------------------------------------------


def occasion(row: Communication) -> str | None:
    """What a greeting or a campaign's message is about, whichever of a person's files it was queued for: its
    campaign, or its cause and day (a greeting's key ends with its day: ``resolvers.reminder``). None for a care
    message: each is about its own appointment, visit, call, contract or invitation, which moves with the file."""
    if row.purpose not in NON_CARE:
        return None
    if row.campaign_id is not None:
        return f"campaign:{row.campaign_id}"
    return f"{row.cause}:{row.key.rsplit(':', 1)[-1]}"


def _out(row: Communication) -> bool:
    """Sent, or with a worker that may be handing it over now (its lease still running: a worker that died leaves
    ``leased_until`` behind, found in review): it goes (or went) whatever is decided here."""
    return row.status in ("sent", "delivered") or (row.leased_until is not None and row.leased_until > _now())


async def refuse_twins(institution_id: uuid.UUID, queued: Sequence[Communication],
                       held: LockedRows | None = None) -> set[uuid.UUID]:
    """Of ``queued`` (queued messages, the caller holding their files), refuse (``duplicate``) each greeting or
    campaign message whose file has another of its occasion that goes instead, and answer the ids refused. Two
    files of one person, merged, each had one (found in review: the person got the campaign twice; the frequency
    cap, 2 a week, let the second through). Of an occasion's messages on a file the one that goes is one already
    out (sent, or with a worker); else the one queued for that file itself (its key names it)
    rather than one moved from the merged file; else the first queued. Refused, not cancelled: nothing about it
    went away, and a campaign counts it with its refusals. ``held``: the candidates the caller locked already with
    its own rows (``schedule_many``); else they are locked here, in id order."""
    mine = [row for row in queued if row.status == "queued" and occasion(row) is not None]
    wanted = Occasions.of(mine)
    if wanted is None:
        return set()
    if held is not None and held.occasions is not None and held.occasions.covers(wanted):
        found = [row for row in held.rows if wanted.holds(row)]
    else:  # locked as read (a worker claiming one meanwhile is waited for, and its lease seen): none goes out unseen
        found = await Communication.filter(wanted.query(), institution_id=institution_id).order_by(
            "id").select_for_update()
    together: dict[tuple[uuid.UUID, str | None], list[Communication]] = defaultdict(list)
    for row in ({row.id: row for row in mine} | {row.id: row for row in found}).values():
        together[(row.patient_id, occasion(row))].append(row)
    refused = {row.id for rows in together.values() for row in sorted(rows, key=_going_first)[1:] if not _out(row)}
    now = _now()
    if refused:
        await Communication.filter(id__in=sorted(refused)).update(status="refused", refusal="duplicate",
                                                                 settled_at=now)
    for row in mine:
        if row.id in refused:
            row.status, row.refusal, row.settled_at = "refused", "duplicate", now
    return refused


@dataclass(frozen=True)
class Occasions:
    """The occasions of some queued greeting or campaign messages (campaigns; greetings' causes and days) and their
    files: the messages that may be their twins are those of these occasions on these files (``refuse_twins``)."""

    campaigns: frozenset[uuid.UUID]
    greetings: frozenset[tuple[str, str]]
    patients: frozenset[uuid.UUID]

    @classmethod
    def of(cls, rows: Iterable[Communication]) -> Occasions | None:
        """Of the queued rows with an occasion; None when there is none."""
        mine = [row for row in rows if row.status == "queued" and occasion(row) is not None]
        if not mine:
            return None
        return cls(frozenset(row.campaign_id for row in mine if row.campaign_id is not None),
                   frozenset((row.cause, _day(row)) for row in mine if row.campaign_id is None),
                   frozenset(row.patient_id for row in mine))

    def query(self) -> Q:
        which = [Q(campaign_id__in=sorted(self.campaigns))] if self.campaigns else []
        which += [Q(campaign_id__isnull=True, cause=cause, key__endswith=f":{day}")
                  for cause, day in sorted(self.greetings)]
        return functools.reduce(operator.or_, which) & Q(purpose__in=sorted(NON_CARE), status__in=list(COUNTED),
                                                         patient_id__in=sorted(self.patients))

    def holds(self, row: Communication) -> bool:
        """Whether ``query`` finds the row (evaluated on a loaded row: the two must agree)."""
        of_one = (row.campaign_id in self.campaigns if row.campaign_id is not None
                  else (row.cause, _day(row)) in self.greetings)
        return of_one and row.purpose in NON_CARE and row.status in COUNTED and row.patient_id in self.patients

    def covers(self, other: Occasions) -> bool:
        return (other.campaigns <= self.campaigns and other.greetings <= self.greetings
                and other.patients <= self.patients)

    def __or__(self, other: Occasions) -> Occasions:
        return Occasions(self.campaigns | other.campaigns, self.greetings | other.greetings,
                         self.patients | other.patients)


def _day(row: Communication) -> str:
    """A greeting's day, the last part of its key (``resolvers.reminder``)."""
    return row.key.rsplit(":", 1)[-1]


def _greeting_day(row: Communication) -> date | None:
    """The day a greeting's key names (``resolvers.reminder``); None for a key that names none."""
    try:
        return date.fromisoformat(_day(row))
    except ValueError:
        return None


@dataclass(frozen=True)
class LockedRows:
    """What ``schedule_many`` locked: its own rows and the candidates for twins of ``occasions`` (None: none)."""

    rows: list[Communication]
    occasions: Occasions | None


class _TwinsMoved(Exception):
    """A row locked was not as read before the lock (a merge moved it to another file meanwhile)."""


async def _locked_with_twins(institution_id: uuid.UUID, keys: list[str],
                             expected: Sequence[Communication]) -> LockedRows:
    """The rows of ``keys`` and the candidates for their twins, locked in one statement in id order (found in review:
    the candidates were locked in a statement of their own after the rows, out of id order, and the outbox's settle,
    which locks its batch in id order, could hold a candidate and wait for one of the rows: a deadlock). The
    candidates are found by the occasions of the rows as read before the lock (``expected``: those there already and
    those just written). A row a merge moved to another file meanwhile has candidates there too: that try is rolled
    back to its savepoint, letting go of what it locked, and the next one locks them all, in order. Care messages
    have no twins: only the rows are locked, as they always were."""
    occasions = Occasions.of(expected)
    if occasions is None:
        return LockedRows(await _locked(Q(key__in=keys), institution_id), None)
    asked = set(keys)
    for _ in range(LOCK_TRIES):
        locked: list[Communication] = []
        try:
            async with in_transaction():  # a savepoint of the caller's transaction
                locked = await _locked(Q(key__in=keys) | occasions.query(), institution_id)
                as_locked = Occasions.of(row for row in locked if row.key in asked)
                if as_locked is not None and not occasions.covers(as_locked):
                    raise _TwinsMoved()
                return LockedRows(locked, occasions)
        except _TwinsMoved:  # locked again with the files the rows are on now
            found = Occasions.of(row for row in locked if row.key in asked)
            occasions = occasions if found is None else occasions | found
    # The rows moving on every try: the rows alone, their candidates locked after them (refuse_twins).
    return LockedRows(await _locked(Q(key__in=keys), institution_id), None)


async def _locked(which: Q, institution_id: uuid.UUID) -> list[Communication]:
    return list(await Communication.filter(which, institution_id=institution_id).order_by("id").select_for_update())


async def hold_messages_of(institution_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]) -> None:
    """Every message of these files locked, in one statement in id order, as the outbox's settle and
    ``schedule_many`` lock theirs: a merge, which then moves the duplicate's messages (an UPDATE locks rows in the
    order it finds them) and refuses twins among the survivor's, takes no message's lock out of that order (found in
    review: the merge held a moved greeting and asked for the survivor's, while a settle of both held the survivor's
    and waited for the moved one: a deadlock)."""
    await Communication.filter(institution_id=institution_id, patient_id__in=sorted(patient_ids)).order_by(
        "id").select_for_update().only("id")


def _going_first(row: Communication) -> tuple[bool, bool, uuid.UUID]:
    return not _out(row), str(row.patient_id) not in row.key, row.id


async def cancel_queued(institution_id: uuid.UUID, *key_prefixes: str) -> int:
    """Cancel the queued messages whose key starts with one of ``key_prefixes`` (their cause went away), in one
    statement."""
    if not key_prefixes:
        return 0
    which = Q(key__startswith=key_prefixes[0])
    for prefix in key_prefixes[1:]:
        which |= Q(key__startswith=prefix)
    return await Communication.filter(which, institution_id=institution_id, status="queued").update(
        status="cancelled", settled_at=_now())


def cause_prefix(kind: str, cause_id: uuid.UUID) -> str:
    """The key prefix of every message about one cause (``revisit:<visit>:``, ``follow_up:<task>:``,
    ``care_plan_activity:<activity>:``): the reminders' keys add the day, and ``cancel_queued`` cancels them all
    when the cause moves or goes away."""
    return f"{kind}:{cause_id}:"


# -- appointments -----------------------------------------------------------------------------


async def on_appointment(ctx: Context, appointment: Appointment, change: str,
                         previous: Appointment | None = None) -> None:
    """The messages an appointment's change asks for, inside its transaction: "booked" confirms it now and
    reminds before the slot; "rescheduled" tells of the change now and moves the reminder (the previous
    appointment's queued messages are cancelled); "cancelled" tells of it and cancels the reminder."""
    institution_id, now = ctx.institution_id, _now()
    base = f"appointment:{appointment.id}:"
    requests: list[Request] = []
    variables = await appointment_variables(appointment)
    settings = await messaging_settings(institution_id)

    def message(kind: str, cause: str, due_at: datetime) -> None:
        requests.append(Request(base + kind, cause, appointment.patient_id, due_at, variables,
                                appointment_id=appointment.id))

    def reminder() -> None:
        at = appointment.slot_start - timedelta(hours=settings.reminder_hours_before)
        if at > now:
            message("reminder", "appointment_reminder", at)

    if change == "booked":
        message("confirmation", "appointment_confirmation", now)
        reminder()
    elif change == "rescheduled":
        if previous is not None:
            await cancel_queued(institution_id, f"appointment:{previous.id}:")
        message("change", "appointment_change", now)
        reminder()
    elif change == "cancelled":
        await cancel_queued(institution_id, base)
        message("cancellation", "appointment_cancellation", now)
    else:
        raise ValueError(f"unknown appointment change {change!r}")
    await schedule_many(institution_id, requests)


async def appointment_variables(appointment: Appointment) -> dict[str, str]:
    """Names, the local date and time, the place and the institution's phone: nothing clinical."""
    schedule_row = await Schedule.get(id=appointment.schedule_id)
    institution = await Institution.get(id=appointment.institution_id)
    patient = await Patient.get(id=appointment.patient_id)
    department = await Department.get(id=schedule_row.department_id)
    clinician = await Staff.get_or_none(id=schedule_row.clinician_id) if schedule_row.clinician_id else None
    settings = await messaging_settings(appointment.institution_id)
    local = appointment.slot_start.astimezone(ZoneInfo(institution.time_zone))
    return {"patient_name": patient.full_name, "date": local.date().isoformat(), "time": time_of_day(local),
            "clinician_name": clinician.name if clinician else "", "department_name": department.name,
            "place": schedule_row.name, "institution_name": institution.name,
            "institution_phone": settings.institution_phone}


def time_of_day(local: datetime) -> str:
    """``HH:MM`` of a local time (an aware datetime in the institution's zone). A time the clocks show twice (the
    hour repeated when daylight saving ends) carries its UTC offset, "02:30 (UTC+02:00)" then "02:30 (UTC+01:00)",
    so the two are told apart (found in review: both read "02:30"); every other time reads as it always did."""
    text = local.strftime("%H:%M")
    offset = local.utcoffset()
    if offset is None or local.replace(fold=1 - local.fold).utcoffset() == offset:
        return text
    minutes = int(offset.total_seconds()) // 60
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text} (UTC{'-' if offset < timedelta(0) else '+'}{hours:02d}:{minutes:02d})"


async def messaging_settings(institution_id: uuid.UUID) -> MessagingSettings:
    """The institution's messaging settings, or the defaults."""
    return await messagings.settings(institution_id)


# -- delivery ---------------------------------------------------------------------------------


def _pending() -> QuerySet[Communication]:
    return Communication.filter(status="queued")


async def next_due() -> datetime | None:
    return await outbox.next_due(_pending())


@dataclass
class Batch:
    """A leased batch, with what it needs to render, send and settle: ``clock`` is the worker's time and
    ``leased_until`` the end of the claim's lease on it, ``claims`` each row's attempts as claimed (what renewing
    and settling a row compare with), ``recorded`` the rows the batch's settle leaves alone (recorded at their
    hand-over, or taken over by another worker)."""

    rows: list[Communication]
    facts: Facts
    keys: dict[uuid.UUID, InstitutionKeys]
    clock: Callable[[], datetime]
    leased_until: datetime
    claims: dict[uuid.UUID, int] = field(init=False)
    recorded: set[uuid.UUID] = field(default_factory=set)
    placed: set[uuid.UUID] = field(default_factory=set)  # greetings and campaign messages holding a place under the cap
    capped: set[uuid.UUID] = field(default_factory=set)  # ... for which the batch found the cap full
    answered: list[tuple[Communication, AuditRecord]] = field(default_factory=list)  # to be recorded sent
    recording: bool = False  # one of the batch's messages is recording what was answered
    # Looked up once per batch, shared by its messages in flight together (``once``)
    gateways: dict[tuple[uuid.UUID, str], asyncio.Future[Gateway | None]] = field(default_factory=dict)
    templates: dict[tuple[uuid.UUID, str, str, str], asyncio.Future[tuple[str, str] | None]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self.claims = {row.id: row.attempts for row in self.rows}

    def claimed(self, row: Communication) -> QuerySet[Communication]:
        """The row, while it is still as this worker claimed it (no other worker claimed it since)."""
        return Communication.filter(id=row.id, attempts=self.claims[row.id])


async def deliver_due(services: Services, senders: Mapping[str, MessageSender], now: datetime | None = None, *,
                      batch: int = BATCH, batches: int | None = None) -> int:
    """Send every queued message due by ``now`` (a batch at a time, no transaction open while sending), or the first
    ``batches`` batches of them (the outbox's loop takes one a round, so that a round's budget bounds one batch, not a
    backlog); answers how many were handed over."""
    sent = 0
    while batches is None or batches > 0:
        if batches is not None:
            batches -= 1
        moment = now or _now()
        rows = await outbox.claim_batch(Communication, _pending(), moment, size=batch, lease=LEASE)
        if not rows:
            return sent
        facts = await load_facts(rows)
        work = Batch(rows, facts, {i: await services.keyring.get(i) for i in {r.institution_id for r in rows}},
                     clock=lambda: now or _now(), leased_until=moment + LEASE)
        await _take_places(work, moment)
        sent += await _send_batch(services, senders, work, moment)
        await _settle(work)
    return sent


async def _send_batch(services: Services, senders: Mapping[str, MessageSender], work: Batch,
                      moment: datetime) -> int:
    """Hand a batch over, ``SEND_AT_ONCE`` messages at a time (a slow gateway holds up only its own)."""
    limit = asyncio.Semaphore(SEND_AT_ONCE)

    async def one(row: Communication) -> bool:
        async with limit:
            went = await _deliver_one(services, senders, work, row, moment)
            if not went and row.id in work.placed and row.id not in work.recorded:
                await _give_place_back(work, row)
            return went

    return sum(await asyncio.gather(*(one(row) for row in sorted(work.rows, key=_turn))))


def _turn(row: Communication) -> tuple[datetime, uuid.UUID]:
    """The order a batch's messages go in, and take their places under the frequency cap in."""
    return row.due_at, row.id


async def _deliver_one(services: Services, senders: Mapping[str, MessageSender], work: Batch, row: Communication,
                       moment: datetime) -> bool:
    facts = work.facts
    late = _out_long(work, work.clock())
    if late:  # what the gate read at the claim may have changed since: read it again
        moment = work.clock()
        facts = await _facts_now(work, row)
    if facts.outdated(row, moment):
        row.status, row.settled_at, row.sent_at = "cancelled", moment, None
        return False
    verdict = await _gate_to_a_way_out(services, senders, work, facts, row, moment)
    if verdict.refusal is not None:
        _refuse(row, verdict.refusal, moment)
        return False
    if verdict.defer_to is not None and facts.past_its_slot(row, verdict.defer_to):
        _refuse(row, "quiet_hours", moment)
        return False
    if verdict.defer_to is not None:
        row.due_at, row.attempts = verdict.defer_to, row.attempts - 1  # not an attempt: not its time
        return False
    channel = str(verdict.channel)
    if row.id in work.capped and not late:  # the batch found no place for it under the cap (``_take_places``)
        _refuse(row, "frequency_cap", moment)
        return False
    if row.purpose in NON_CARE:  # counted at once: the batch's next message to this patient sees it
        row.sent_at = moment
        row.status = "sent"
    keys = work.keys[row.institution_id]
    link = unsubscribe_url(services, row.institution_id, row.patient_id, row.purpose, row.contact_id)
    rendered = await render(work, row, channel, link, survey_url_of(services, row))
    if rendered is None:
        _refuse(row, "no_template", moment)
        return False
    subject, body, names = rendered
    try:
        gateway = await _gateway(services, work, row.institution_id, channel)
    except DecryptionError:  # its secret does not open (found in review: it raised out of the whole batch)
        _failed(row, "gateway_secret", moment, permanent=False)
        return False
    survey_url = survey_url_of(services, row)
    message = Outgoing(row.id, row.institution_id, channel, _address(row, facts, keys, channel), subject, body,
                       sender_address=facts.settings[row.institution_id].email_from, gateway=gateway,
                       unsubscribe_url=link)
    subject, body = withhold_links(subject, survey_url, link), withhold_links(body, survey_url, link)
    sealed = (keys.seal(subject, field_aad(row.institution_id, "communication", "subject", row.id)),
              keys.seal(body, field_aad(row.institution_id, "communication", "body", row.id)))
    if not await _still_ours(work, row):
        work.recorded.add(row.id)  # another worker has it now, or it was cancelled: not sent twice
        return False
    if row.purpose in NON_CARE and (late or row.id not in work.placed):  # taken again, or one at a time
        place = await _take_place(work, row, facts.settings[row.institution_id], moment)
        if place is _Place.NOT_OURS:
            work.recorded.add(row.id)
            return False
        work.placed.add(row.id)
        if place is _Place.CAPPED:
            _refuse(row, "frequency_cap", moment)
            return False
    row.channel = channel  # set once it goes: a message refused here keeps none, nor a body
    row.subject, row.body = sealed
    sender = senders.get(channel)
    try:
        if sender is None:
            raise SendFailed("no_sender")
        gateway_id = await _hand_over(sender, message)
    except SendFailed as exc:
        _failed(row, exc.reason, moment, permanent=exc.permanent)
        return False
    except Exception as exc:  # a broken sender must not stop the others: retry later
        _failed(row, type(exc).__name__, moment, permanent=False)
        return False
    row.status, row.sent_at, row.gateway_message_id, row.last_error = "sent", moment, gateway_id, ""
    if channel == "app":  # the portal's inbox is the row itself: there once it is sent
        row.status, row.delivered_at = "delivered", moment
    await _record_sent(work, row, channel, names)
    return True


async def _gate_to_a_way_out(services: Services, senders: Mapping[str, MessageSender], work: Batch, facts: Facts,
                             row: Communication, moment: datetime) -> Verdict:
    """The gate's verdict, on a channel the message can leave by: one whose sender needs the institution's gateway
    (SMS and WeChat in production) is passed over while the institution has no active gateway for it (found in
    review: a patient preferring SMS, with an e-mail address too, got nothing while the institution had no SMS
    gateway: each message failed for good as ``no_gateway``). The gateway is looked up once per batch, as sending
    looks it up; a secret that does not open counts as a way out (that message fails as ``gateway_secret``)."""
    closed: frozenset[str] = frozenset()
    while True:
        verdict = gate(facts.recipient(row), row.purpose, moment, facts.quiet(row.institution_id),
                       non_care_nearby=facts.nearby(row, moment, sending=True),
                       cap=facts.settings[row.institution_id].non_care_cap, closed=closed)
        channel = verdict.channel
        if channel is None or channel in closed or await _way_out(services, senders, work, row, channel):
            return verdict
        closed |= {channel}


async def _way_out(services: Services, senders: Mapping[str, MessageSender], work: Batch, row: Communication,
                   channel: str) -> bool:
    if not needs_gateway(senders.get(channel)):
        return True
    try:
        return await _gateway(services, work, row.institution_id, channel) is not None
    except DecryptionError:
        return True


async def _hand_over(sender: MessageSender, message: Outgoing) -> str | None:
    """The sender's answer within ``HAND_OVER``, else ``SendFailed("timeout")``: a gateway that answers a byte at a
    time never trips httpx's read timeout, and a hand-over that outlasted its lease was sent by another worker too.
    Cut short, a sender sends nothing more (the SMTP sender hangs up without QUIT). The gateway may have taken the
    message all the same; a retry carries the same ``Idempotency-Key`` (at least once)."""
    try:
        async with asyncio.timeout(HAND_OVER.total_seconds()):
            return await sender.send(message)
    except TimeoutError:
        raise SendFailed("timeout") from None


class _Place(enum.Enum):
    TAKEN = "taken"
    CAPPED = "capped"  # the patient's greetings and campaign messages sent or going out fill the cap
    NOT_OURS = "not_ours"  # another worker claimed the row since, or it is no longer queued


# One transaction-level advisory lock per patient, taken in one statement in one order (a batch takes several).
_LOCK_PATIENTS = ("SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(name, 0) AS key "
                  "FROM unnest($1::text[]) AS name ORDER BY key) AS keys")


def _cap_lock_name(patient_id: uuid.UUID) -> str:
    return f"frequency_cap:{patient_id}"


async def _take_places(work: Batch, moment: datetime) -> None:
    """The batch's greetings and campaign messages take their places under the frequency cap, before any is handed
    over, in one short transaction of a bounded number of statements whatever their number (none without them): the
    patients' other greetings and campaign messages sent, or going out (a place taken, while its lease runs), within
    the cap's days are read from the database, and the batch's messages that the gate lets go but for the cap take
    the places left, in the order they go (``placed``, their rows marked with ``reserved_at``); the others are
    refused ``frequency_cap`` as they come (``capped``). Found in review: each worker counted what was sent as it read
    it at the claim and what its own batch sent since, so two workers, each with one greeting for a patient one short
    of the cap, both sent theirs. The transaction serialises on the patients (PostgreSQL advisory locks, in one order;
    SQLite runs one write transaction at a time already), so of two such workers the second counts the first's places.
    A place goes with the settle, or at once when its message does not go (``_give_place_back``), and with the lease:
    a worker that died holds it no longer once another could claim the row. A message whose turn comes late in its
    batch (its lease may have run out meanwhile) takes its place again as it goes (``_take_place``)."""
    going = [row for row in sorted(work.rows, key=_turn)
             if row.purpose in NON_CARE and _goes_but_for_the_cap(work.facts, row, moment)]
    if not going:
        return
    patients = sorted({row.patient_id for row in going})
    longest = max(work.facts.settings[row.institution_id].non_care_cap_days for row in going)
    async with in_transaction() as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_query(_LOCK_PATIENTS, [[_cap_lock_name(p) for p in patients]])
        found = await _counted(moment - timedelta(days=longest), moment).filter(
            institution_id__in=sorted({row.institution_id for row in going}), patient_id__in=patients).exclude(
            id__in=[row.id for row in work.rows]).values_list("patient_id", "sent_at", "reserved_at")
        counted: dict[uuid.UUID, list[datetime]] = defaultdict(list)
        for patient_id, sent_at, reserved_at in found:
            counted[uuid.UUID(str(patient_id))].append(sent_at or reserved_at)
        for row in going:
            settings = work.facts.settings[row.institution_id]
            since = moment - timedelta(days=settings.non_care_cap_days)
            taken = sum(when > since for when in counted[row.patient_id])
            if taken >= settings.non_care_cap:
                work.capped.add(row.id)
            else:
                work.placed.add(row.id)
                counted[row.patient_id].append(moment)
        await _mark_placed(work, patients, moment)


async def _mark_placed(work: Batch, patients: list[uuid.UUID], moment: datetime) -> None:
    """The rows that took a place marked going out: locked first in one statement in id order, as every writer of
    messages locks them (an UPDATE locks rows in the order it finds them), then marked in one. One cancelled (or moved
    to another file by a merge) since the claim is left as ``_still_ours`` leaves a row no longer this worker's."""
    if not work.placed:
        return
    held = {row.id for row in await Communication.filter(
        id__in=sorted(work.placed), status="queued", patient_id__in=patients).order_by("id").select_for_update()
        .only("id")}
    for row_id in sorted(work.placed - held):
        work.placed.discard(row_id)
        work.recorded.add(row_id)
    if held:
        await Communication.filter(id__in=sorted(held)).update(reserved_at=moment)


def _counted(since: datetime, moment: datetime) -> QuerySet[Communication]:
    """Greetings and campaign messages that count against the cap at ``moment``: sent since ``since``, or going out
    (a place taken since then, its worker's lease still running)."""
    return Communication.filter(Q(status__in=["sent", "delivered"], sent_at__gt=since)
                                | Q(status="queued", reserved_at__gt=since, leased_until__gt=moment),
                                purpose__in=sorted(NON_CARE))


def _goes_but_for_the_cap(facts: Facts, row: Communication, moment: datetime) -> bool:
    """Whether the gate lets the message go at ``moment`` but for the frequency cap (as ``_deliver_one`` asks it)."""
    if facts.outdated(row, moment):
        return False
    verdict = gate(facts.recipient(row), row.purpose, moment, facts.quiet(row.institution_id), non_care_nearby=0,
                   cap=1)
    return verdict.refusal is None and verdict.defer_to is None


async def _take_place(work: Batch, row: Communication, settings: MessagingSettings, moment: datetime) -> _Place:
    """One message's place under the frequency cap (``_take_places``), taken as it goes: one whose turn comes late in
    its batch, or that the batch's facts did not let go. Counted as the batch counts, the row itself left out (its
    own place, taken before, is not counted against it), in one short transaction."""
    since = moment - timedelta(days=settings.non_care_cap_days)
    async with in_transaction() as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_query(_LOCK_PATIENTS, [[_cap_lock_name(row.patient_id)]])
        counted = await _counted(since, moment).filter(
            institution_id=row.institution_id, patient_id=row.patient_id).exclude(id=row.id).count()
        if counted >= settings.non_care_cap:
            return _Place.CAPPED
        if await work.claimed(row).filter(status="queued", patient_id=row.patient_id).update(reserved_at=moment) != 1:
            return _Place.NOT_OURS  # its settle leaves it be; moved to another file by a merge, it comes back
    return _Place.TAKEN


async def _give_place_back(work: Batch, row: Communication) -> None:
    """A message that took a place under the cap and did not go (its hand-over failed, or it was refused or deferred
    as it went) gives it back at once rather than when its batch settles, which a slow gateway can keep minutes away:
    meanwhile another worker's message to the patient would be refused for it. A retry takes a place again."""
    work.placed.discard(row.id)
    await work.claimed(row).filter(status="queued").update(reserved_at=None)


def _refuse(row: Communication, reason: str, moment: datetime) -> None:
    row.status, row.refusal, row.settled_at, row.sent_at = "refused", reason, moment, None


def _failed(row: Communication, reason: str, moment: datetime, *, permanent: bool) -> None:
    """A hand-over that failed: settled failed, or queued again after a backoff. The sender's reason is kept as the
    delivery callbacks' are (``clean_reason``): a sender echoing the recipient must not store the address or number
    in lastError (found in review: it was stored as given)."""
    row.last_error, row.sent_at = clean_reason(reason), None
    if permanent or row.attempts >= MAX_ATTEMPTS:
        row.status, row.settled_at = "failed", moment
    else:
        row.status = "queued"
        row.due_at = moment + outbox.backoff(row.attempts, first=RETRY_FIRST, factor=RETRY_FACTOR,
                                             at_most=RETRY_AT_MOST)


def _disclosure(row: Communication, channel: str, names: frozenset[str]) -> AuditRecord:
    """Sending hands the patient's (or contact's) address to a gateway, and the fields its text tells (``names``:
    ``_fields_told``): a disclosure on the trail, with the columns' names and never their values; a portal message
    goes to no gateway and names no column (found in review: it was recorded as disclosing the phone)."""
    column = "email" if channel == "email" else ("contact.phone" if row.contact_id else "phone")
    told = frozenset() if channel == "app" else frozenset({column}) | names
    classes = {TOLD_CLASSES.get(name, "contact") for name in told}
    return AuditRecord(row.institution_id, SYSTEM, Action.DISCLOSE, "communication", Outcome.ALLOWED,
                       resource_id=row.id, patient_id=row.patient_id, field_classes=frozenset(classes),
                       fields_read=told, reason=f"sent_{channel}", policy_rule=OUTBOX_RULE)


_SETTLED_COLUMNS = ("status", "refusal", "channel", "due_at", "sent_at", "delivered_at", "settled_at", "attempts",
                    "last_error", "gateway_message_id", "subject", "body")


def _out_long(work: Batch, now: datetime) -> bool:
    """Whether the batch has been out for half its lease or more (a large batch, a slow gateway)."""
    return now >= work.leased_until - LEASE / 2


async def _facts_now(work: Batch, row: Communication) -> Facts:
    """The facts of a message whose turn comes late in its batch, read again as it goes: the gate then sees a consent,
    a purpose or a contact withdrawn, an address changed, an appointment cancelled or the quiet hours begun while the
    batch was out (found in review: the batch's facts, read when it was claimed, held for its whole hand-over, which a
    slow gateway, 20 messages at a time, can make last many minutes). The patient's non-care messages are counted as
    the batch holds them: those it sent meanwhile count against the cap."""
    fresh = await load_facts([row])
    fresh.non_care = work.facts.non_care
    return fresh


async def _still_ours(work: Batch, row: Communication) -> bool:
    """Whether the worker may still hand ``row`` over. While the batch is within the first half of its lease, no
    other worker can have claimed the row, and nothing is asked. Later (a large batch, a slow gateway) each row's
    lease is renewed just before its hand-over, compare-and-set on its claim (``outbox.hold``), so the hand-over
    has a whole lease to finish; a row whose lease ran out while it waited and that another worker claimed is left
    to that worker (found in review: both sent it, and both settled it)."""
    now = work.clock()
    if not _out_long(work, now):
        return True
    return await outbox.hold(_pending(), row, work.claims[row.id], now + LEASE)


async def _record_sent(work: Batch, row: Communication, channel: str, names: frozenset[str]) -> None:
    """A message handed over, and its disclosure, recorded as soon as its sender answers rather than when the
    batch settles (found in review: the gateway's delivery report, coming before the batch settled, found no
    message with its id and was lost). One write at a time, each of every answer that came meanwhile: as few
    transactions as the senders' pace allows, and the batch is done only once all are written."""
    work.answered.append((row, _disclosure(row, channel, names)))
    if work.recording:
        return  # taken along by the write under way
    work.recording = True
    try:
        while work.answered:
            answered, work.answered = work.answered, []
            await _write_sent(work, answered)
            await _apply_early_reports(answered)
    finally:
        work.recording = False


async def _write_sent(work: Batch, answered: list[tuple[Communication, AuditRecord]]) -> None:
    """Each message recorded sent whatever happened to its row meanwhile (cancelled while it went out), unless
    another worker claimed it since (a send that outlasted the lease): then nothing is written over the newer
    outcome, and only the disclosure, which happened all the same, is kept. The rows are locked first, in one
    statement in id order, as every other writer of messages locks them (found in review: updated one at a time in
    the order the answers came, a write holding one message and asking for another of a lower id deadlocked with a
    writer holding that one and asking for the first)."""
    async with in_transaction():
        await _held_in_id_order([row.id for row, _ in answered])
        for row, _ in sorted(answered, key=lambda pair: pair[0].id):
            await work.claimed(row).update(**{c: getattr(row, c) for c in _SETTLED_COLUMNS}, leased_until=None,
                                           rescheduled_to=None, reserved_at=None)
            work.recorded.add(row.id)
        await writer.append([disclosure for _, disclosure in answered])


async def _settle(work: Batch) -> None:
    """The rest of the batch's outcomes (a retry, a deferral, a refusal), in one short transaction, each only over
    a row still queued and as claimed, so a message cancelled while its batch was out stays cancelled (found in
    review: a campaign cancelled during a slow send went back to the queue on a timeout and was sent on the next
    run), and a worker whose lease ran out writes nothing over the outcome of the worker that took the row over
    (found in review). A retry or a deferral goes no earlier than the due time its cause set while the row was out
    (found in review: the backoff's minute replaced the cause's later time)."""
    async with in_transaction():
        rescheduled = await _rescheduled([row for row in work.rows if row.id not in work.recorded])
        for row in sorted(work.rows, key=lambda r: r.id):  # in the order _rescheduled locked them
            if row.id in work.recorded:
                continue
            if row.status == "queued" and row.id in rescheduled:  # a retry, or deferred past the quiet hours
                row.due_at = max(row.due_at, rescheduled[row.id])
            await work.claimed(row).filter(status="queued").update(
                **{c: getattr(row, c) for c in _SETTLED_COLUMNS}, leased_until=None, rescheduled_to=None,
                reserved_at=None)


async def _rescheduled(rows: list[Communication]) -> dict[uuid.UUID, datetime]:
    """The due times the rows' causes set while they were out (``rescheduled_to``), read with the rows locked in the
    order of their ids, as ``schedule_many`` locks them: a cause scheduled again waits for the settle or comes wholly
    before it (one statement)."""
    if not rows:
        return {}
    found = await _held_in_id_order([row.id for row in rows])
    return {row.id: row.rescheduled_to for row in found if row.rescheduled_to is not None}


async def _held_in_id_order(ids: Sequence[uuid.UUID]) -> list[Communication]:
    """The rows locked in one statement in id order: their id and ``rescheduled_to`` (``only``: Tortoise drops
    FOR UPDATE from a ``values_list`` query, found in review: the settle's lock was no lock)."""
    return list(await Communication.filter(id__in=sorted(ids)).order_by("id").select_for_update()
                .only("id", "rescheduled_to"))


def _address(row: Communication, facts: Facts, keys: InstitutionKeys, channel: str) -> str:
    patient = facts.patients[row.patient_id]
    if row.contact_id is not None:
        contact = facts.contacts[row.contact_id]
        return keys.open(bytes(contact.phone or b""), field_aad(row.institution_id, "contact", "phone", contact.id))
    if channel == "email":
        return str(patient.email)
    if channel == "app":
        return str(patient.id)
    return keys.open(bytes(patient.phone or b""), field_aad(row.institution_id, "patient", "phone", patient.id))


async def _gateway(services: Services, work: Batch, institution_id: uuid.UUID, channel: str) -> Gateway | None:
    """The institution's HTTP gateway for SMS or WeChat (its secret opened), once per batch (``once``); a secret that
    does not open raises ``DecryptionError`` for each message that asks."""
    if channel not in GATEWAY_CHANNELS:
        return None
    key = (institution_id, channel)
    return await once(work.gateways, key, lambda: messagings.gateway(institution_id, channel, services.keyring))


Key = TypeVar("Key")
Value = TypeVar("Value")


def once(cache: dict[Key, asyncio.Future[Value]], key: Key,
         load: Callable[[], Coroutine[Any, Any, Value]]) -> Awaitable[Value]:
    """``load()``'s answer for ``key``, loaded once for a batch whose messages go ``SEND_AT_ONCE`` at a time (found on
    re-reading: a value cached only once loaded was loaded by each message in flight, 20 gateway or template look-ups
    where one does). A failure is kept too: a gateway secret that does not open is tried once, not for each message.
    Shielded: a message cut short does not cancel the look-up the others wait on."""
    if key not in cache:
        cache[key] = asyncio.ensure_future(load())
    return asyncio.shield(cache[key])


# -- rendering --------------------------------------------------------------------------------


class Rendered(NamedTuple):
    subject: str
    body: str
    names: frozenset[str]  # the fields it tells beside the address (``_fields_told``), for its disclosure's record


async def render(work: Batch, row: Communication, channel: str, link: str,
                 survey_url: str | None = None) -> Rendered | None:
    """Subject and body of a message: the institution's template for its cause, channel and the patient's
    language, its variables filled in (the unsubscribe link always among them, a survey invitation's link in
    its own); None without a template. ``link`` is the recipient's own way out: a message to a contact carries
    the contact's link (``unsubscribe_url`` with the contact), which never touches the patient's consent. A
    message to the patient names them as their file does when it is sent, not as the cause read it: a message moved
    by a merge names the survivor, one queued before a correction of the name the corrected name (found in review:
    the merged file's name went out)."""
    patient = work.facts.patients[row.patient_id]
    key = (row.institution_id, row.cause, channel, templates.language_of(patient.preferred_language))
    if row.campaign_id is not None:  # a campaign's own text, whatever the channel and language
        key = (row.institution_id, f"campaign:{row.campaign_id}", "any", "")
    template = await once(work.templates, key, lambda: _template(row, key))  # once per batch and kind of message
    if template is None:
        return None
    institution = work.facts.institutions[row.institution_id]
    variables = {"institution_name": institution.name,
                 "institution_phone": work.facts.settings[row.institution_id].institution_phone,
                 **row.variables, "unsubscribe_url": link}
    if row.contact_id is None:
        variables["patient_name"] = patient.full_name  # the file's name as it is sent (a merge, a correction)
    else:  # a contact's message has the contact's name in ``patient_name`` (``resolvers.survey``)
        variables.setdefault("contact_name", work.facts.contacts[row.contact_id].name)
    body = template[1]
    if survey_url is not None:
        variables["survey_url"] = survey_url
        if "{survey_url}" not in body:  # an institution's own template that forgot it still reaches the survey
            body += SURVEY_LINE[templates.language_of(patient.preferred_language)]
    if "{unsubscribe_url}" not in body:  # every message carries its way out, care messages too
        body += UNSUBSCRIBE_LINE[templates.language_of(patient.preferred_language)]
    told = _fields_told(row, templates.slots_of(template[0]) | templates.slots_of(body), variables)
    return Rendered(templates.render(template[0], variables), templates.render(body, variables), told)


# The field each slot a message fills in tells, per the record its cause is about (the kind of its key: a re-visit
# reminder is a visit's or a care plan activity's), as the trail names fields (``table.column``, ``Type.field`` in the
# API's spelling). A slot not named here tells no field of the patient's: the institution's name and phone, a holiday's
# word, the unsubscribe link (the recipient's own way out), a greeting's date (the day it is sent: a birthday's is
# its occasion's, ``OCCASION_FIELDS``, told with or without the slot).
_APPOINTMENT_SLOTS = {"date": "appointment.slot_start", "time": "appointment.slot_start",
                      "clinician_name": "schedule.clinician", "department_name": "schedule.department",
                      "place": "schedule.name"}
_CARE_PLAN_SLOTS = {"date": "care_plan_activity.due_on", "department_name": "care_plan.department_id"}
_CONTRACT_SLOTS = {"contract_number": "contract.number"}
SLOT_FIELDS: dict[str, dict[str, str]] = {
    **{cause: _APPOINTMENT_SLOTS for cause in ("appointment_confirmation", "appointment_reminder",
                                               "appointment_change", "appointment_cancellation")},
    "revisit": {"date": "visit.revisit_on", "department_name": "visit.department"},
    "care_plan_activity": _CARE_PLAN_SLOTS,
    "follow_up": {"date": "follow_up_task.due_on", "department_name": "follow_up_task.department"},
    "survey_invitation": {"department_name": "survey_invitation.department_id", "survey_url": "survey_invitation.link"},
    "contract_expiry": {**_CONTRACT_SLOTS, "date": "contract.end_on"},
    "contract_signature": {**_CONTRACT_SLOTS, "date": "contract_version.effective_on"},
}
# The fields a message tells by being sent at all, whatever its text fills in: a birthday greeting goes on the
# birthday, so its day tells the day and month of birth (found in review: the built-in "Happy birthday" has no
# ``{date}``, and its record named no birth date). A holiday's day tells nothing of the file.
OCCASION_FIELDS: dict[str, frozenset[str]] = {"birthday_greeting": frozenset({"birth_date"})}
# The class of each field a message tells (``_disclosure``; an address's is contact): when, where and who of the
# journey are identity, as the file's name and birth date are (docs/compliance.md); the survey's link, one more way
# to reach the patient, is contact.
TOLD_CLASSES = {**{name: "identity" for fields in SLOT_FIELDS.values() for name in fields.values()},
                **{name: "identity" for fields in OCCASION_FIELDS.values() for name in fields},
                "full_name": "identity", "survey_invitation.link": "contact"}


def _fields_told(row: Communication, slots: frozenset[str], variables: Mapping[str, object]) -> frozenset[str]:
    """The fields a message tells whoever carries it, beside the address, as its text fills them in: the patient's
    name (``full_name``), or for a message to a contact the contact's (``contact.name``, which it has in
    ``patient_name`` or ``contact_name``), the slots of its cause's record (``SLOT_FIELDS``: an appointment's
    time, clinician, department and place, a reminder's day, a contract's number), and what its occasion tells
    whatever the text (``OCCASION_FIELDS``: a birthday's day). A slot the text has but the message left empty tells
    nothing. Named on the disclosure's record (found in review: every built-in text greets
    the patient by name, and the record named the phone alone; then, an appointment's text tells its time and
    clinician, and the record named neither)."""
    filled = frozenset(slot for slot in slots if variables.get(slot))
    name = "full_name" if row.contact_id is None else "contact.name"
    named = filled & ({"patient_name"} if row.contact_id is None else {"patient_name", "contact_name"})
    of_cause = SLOT_FIELDS.get(row.cause) or SLOT_FIELDS.get(row.key.partition(":")[0], {})
    return (frozenset({name} if named else ()) | {of_cause[slot] for slot in filled if slot in of_cause}
            | OCCASION_FIELDS.get(row.cause, frozenset()))


async def _template(row: Communication, key: tuple[uuid.UUID, str, str, str]) -> tuple[str, str] | None:
    if row.campaign_id is not None:
        found = await Campaign.get_or_none(id=row.campaign_id).values_list("subject", "body")
        return None if found is None else (str(found[0]), str(found[1]))
    try:
        return await templates.pick(*key)
    except LookupError:
        return None


# -- delivery callbacks -----------------------------------------------------------------------


class Delivery(enum.Enum):
    """What became of a gateway's report."""

    APPLIED = "applied"  # its message found (a repeated report changes nothing)
    KEPT = "kept"  # no message has its id yet: kept for the sent record being written (``DeliveryReport``)
    UNKNOWN = "unknown"  # neither: the institution keeps ``EARLY_REPORTS_MAX`` early reports of a channel at most


EARLY_REPORTS_KEPT = timedelta(days=1)
EARLY_REPORTS_MAX = 10_000


async def record_delivery(institution_id: uuid.UUID, channel: str, gateway_message_id: str, status: str,
                          reason: str = "") -> Delivery:
    """A gateway's word on a message it was handed: delivered, or failed with a short reason code. A report whose
    message has no sent record yet (the gateway reported before the worker's write committed) is kept until that
    write applies it (``_apply_early_reports``); looked for again once kept, as the write may have committed
    between the two, and whichever side comes second applies it."""
    if status not in ("delivered", "failed"):
        raise ValueError("status must be delivered or failed")
    if await _apply_delivery(institution_id, channel, gateway_message_id, status, reason):
        return Delivery.APPLIED
    if not await _keep_early(institution_id, channel, gateway_message_id, status, reason):
        return Delivery.UNKNOWN
    if await _apply_delivery(institution_id, channel, gateway_message_id, status, reason):
        await DeliveryReport.filter(institution_id=institution_id, channel=channel,
                                    gateway_message_id=gateway_message_id).delete()
        return Delivery.APPLIED
    return Delivery.KEPT


async def _apply_delivery(institution_id: uuid.UUID, channel: str, gateway_message_id: str, status: str,
                          reason: str) -> bool:
    """The report applied to its message, if a message of that institution and channel has the id."""
    query = Communication.filter(institution_id=institution_id, channel=channel,
                                 gateway_message_id=gateway_message_id)
    row = await query.first()
    if row is None:
        return False
    if row.status == "sent":  # a repeated callback changes nothing
        now = _now()
        async with in_transaction():
            if status == "delivered":
                changed = await query.filter(status="sent").update(status="delivered", delivered_at=now)
            else:
                changed = await query.filter(status="sent").update(status="failed", settled_at=now,
                                                                   last_error=clean_reason(reason))
            if changed:  # the gateway's word on the trail, as every write is
                await writer.append([AuditRecord(institution_id, SYSTEM, Action.UPDATE, "communication",
                                                 Outcome.ALLOWED, resource_id=row.id, patient_id=row.patient_id,
                                                 reason=f"{channel}_{status}", policy_rule=OUTBOX_RULE)])
    return True


async def _keep_early(institution_id: uuid.UUID, channel: str, gateway_message_id: str, status: str,
                      reason: str) -> bool:
    """A report kept for its message's sent record, reports older than a day dropped first; False when the channel
    holds ``EARLY_REPORTS_MAX`` already (a gateway reporting another system's messages fills nothing for ever)."""
    kept = DeliveryReport.filter(institution_id=institution_id, channel=channel)
    await kept.filter(created_at__lt=datetime.now(UTC) - EARLY_REPORTS_KEPT).delete()
    if await kept.count() >= EARLY_REPORTS_MAX:
        return False
    try:
        await DeliveryReport.create(institution_id=institution_id, channel=channel,
                                    gateway_message_id=gateway_message_id, status=status,
                                    reason=clean_reason(reason) if status == "failed" else "")
    except IntegrityError:
        pass  # reported twice before its record: the first report is kept
    return True


async def _apply_early_reports(answered: list[tuple[Communication, AuditRecord]]) -> None:
    """Reports that came before these messages' sent records, applied now that the records are written: one
    statement when there are none."""
    handed = {(row.institution_id, row.channel, row.gateway_message_id) for row, _ in answered
              if row.gateway_message_id and row.channel in GATEWAY_CHANNELS}
    if not handed:
        return
    early = [r for r in await DeliveryReport.filter(institution_id__in=sorted({i for i, _, _ in handed}),
                                                    gateway_message_id__in=sorted({g for _, _, g in handed}))
             if (r.institution_id, r.channel, r.gateway_message_id) in handed]
    for report in early:
        await _apply_delivery(report.institution_id, report.channel, report.gateway_message_id, report.status,
                              report.reason)
    if early:
        await DeliveryReport.filter(id__in=[r.id for r in early]).delete()


def clean_reason(reason: str) -> str:
    """A gateway's reason kept as a short code: letters, digits and ``_.-`` only, e-mail addresses and phone-like
    numbers replaced by ``#``, and no run of more than three digits (a gateway that echoes the recipient must not
    store the patient's address or number here, which staff read as lastError; found in review: an address was
    kept, its ``@`` dropped, and a number written in groups of three digits or fewer)."""
    words = ("#" if "@" in word or "\uff20" in word else word for word in _WORDS.split(reason))
    redacted = _PHONE.sub("#", "".join(words))
    kept = "".join(c for c in redacted if c.isascii() and (c.isalnum() or c in "_.-#"))
    return _LONG_NUMBER.sub("#", kept)[:60] or "failed"


# -- unsubscribe links ------------------------------------------------------------------------
#
# A patient's message carries a link that withdraws the message's purpose from the patient's consent:
#   "<institution>.<patient>.<purpose>.<signature>"
# A message to one of the patient's contacts (a family member) carries a link that stops messages to that
# contact only, by clearing the contact's ``may_receive_information``; the patient's consent is never touched:
#   "<institution>.contact.<contact>.<purpose>.<signature>"
# Each kind is signed under its own key of the institution, so neither signature holds for the other kind (a
# family member cannot turn their link into one that unsubscribes the patient).


class LinkRefused(Exception):
    """An unsubscribe link that does not hold: ``reason`` is ``malformed``, ``forged`` (not signed by us, or
    signed for another patient, contact or kind of link), ``other_purpose`` (signed for another purpose than the
    one it names) or ``unknown`` (no such file or contact)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Link:
    """What a valid unsubscribe link names: a patient's purpose, or one contact (``contact_id``)."""

    institution_id: uuid.UUID
    subject_id: uuid.UUID  # the patient, or the contact for a contact's link
    purpose: str  # the purpose of the message that carried the link
    contact: bool = False

    @property
    def contact_id(self) -> uuid.UUID | None:
        return self.subject_id if self.contact else None

    @property
    def patient_id(self) -> uuid.UUID | None:
        return None if self.contact else self.subject_id


CONTACT_LINK = "contact"  # the second part of a contact's link


def _link_key(secret: bytes, institution_id: uuid.UUID, *, contact: bool = False) -> bytes:
    return derive_key(secret, f"unsubscribe{'-contact' if contact else ''}:v1:{institution_id}")


def _signature(secret: bytes, institution_id: uuid.UUID, subject_id: uuid.UUID, purpose: str, *,
               contact: bool = False) -> str:
    text = f"{institution_id}|{CONTACT_LINK}|{subject_id}|{purpose}" if contact else \
        f"{institution_id}|{subject_id}|{purpose}"
    mac = hmac.new(_link_key(secret, institution_id, contact=contact), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def unsubscribe_token(secret: bytes, institution_id: uuid.UUID, patient_id: uuid.UUID, purpose: str) -> str:
    """A link token that withdraws one purpose of one patient, signed with a key of the institution
    derived from ``secret`` (the master key's token key)."""
    return f"{institution_id}.{patient_id}.{purpose}.{_signature(secret, institution_id, patient_id, purpose)}"


def contact_unsubscribe_token(secret: bytes, institution_id: uuid.UUID, contact_id: uuid.UUID, purpose: str) -> str:
    """A link token that stops messages to one contact of a patient (never the patient's own), under its own key
    of the institution; ``purpose`` is the purpose of the message that carries it."""
    signature = _signature(secret, institution_id, contact_id, purpose, contact=True)
    return f"{institution_id}.{CONTACT_LINK}.{contact_id}.{purpose}.{signature}"


def unsubscribe_url(services: Services, institution_id: uuid.UUID, patient_id: uuid.UUID, purpose: str,
                    contact_id: uuid.UUID | None = None) -> str:
    """The link a message carries: the patient's for a message to the patient, the contact's own for a message
    to one of their contacts."""
    secret = services.master_key.token_key
    token = unsubscribe_token(secret, institution_id, patient_id, purpose) if contact_id is None else \
        contact_unsubscribe_token(secret, institution_id, contact_id, purpose)
    return f"{services.settings.public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={token}"


def survey_invitation_of(row: Communication) -> uuid.UUID | None:
    """The survey invitation a message is about (its key names it), or None."""
    if row.cause != "survey_invitation" or not row.key.startswith(SURVEY_KEY):
        return None
    try:
        return uuid.UUID(row.key.split(":")[1])
    except (IndexError, ValueError):
        return None


def survey_url_of(services: Services, row: Communication) -> str | None:
    """The link of a survey invitation's message, computed as it is sent from the invitation its key names
    (``tokens.survey_link``): the token is stored nowhere, not even in the message's variables."""
    invitation_id = survey_invitation_of(row)
    if invitation_id is None:
        return None
    token = tokens.survey_link(services.master_key.token_key, row.institution_id, invitation_id)
    return f"{services.settings.public_url.rstrip('/')}{SURVEY_PATH}#token={token}"


def withhold_links(text: str, survey_url: str | None, unsubscribe: str) -> str:
    """The text as kept on the log: a survey invitation's link answers as the patient and an unsubscribe link
    withdraws their consent, so only the message sent carries them, and the stored copy that staff read has
    markers instead (the patient's own view puts them back)."""
    text = text.replace(unsubscribe, UNSUBSCRIBE_LINK_WITHHELD)
    return text if survey_url is None else text.replace(survey_url, SURVEY_LINK_WITHHELD)


def restore_links(services: Services, row: Communication, text: str | None) -> str | None:
    """The patient's own copy of a message, with its links (see withhold_links)."""
    if text is None:
        return None
    link = unsubscribe_url(services, row.institution_id, row.patient_id, row.purpose, row.contact_id)
    survey_url = survey_url_of(services, row)
    text = text.replace(UNSUBSCRIBE_LINK_WITHHELD, link)
    return text if survey_url is None else text.replace(SURVEY_LINK_WITHHELD, survey_url)


def read_link(secret: bytes, token: str) -> Link:
    """What a link token names, or LinkRefused."""
    parts = token.split(".")
    if len(token) > 300 or len(parts) not in (4, 5) or (len(parts) == 5 and parts[1] != CONTACT_LINK):
        raise LinkRefused("malformed")
    contact = len(parts) == 5
    if contact:
        parts = [parts[0], *parts[2:]]
    try:
        institution_id, subject_id = uuid.UUID(parts[0]), uuid.UUID(parts[1])
    except ValueError:
        raise LinkRefused("malformed") from None
    purpose, signature = parts[2], parts[3]
    # ASCII only: compare_digest raises on text with other characters ("é" escaped as an unexpected error, a 500)
    if purpose not in PURPOSES or not signature.isascii():
        raise LinkRefused("malformed")
    if hmac.compare_digest(signature, _signature(secret, institution_id, subject_id, purpose, contact=contact)):
        return Link(institution_id, subject_id, purpose, contact)
    if any(hmac.compare_digest(signature, _signature(secret, institution_id, subject_id, other, contact=contact))
           for other in PURPOSES if other != purpose):
        raise LinkRefused("other_purpose")
    raise LinkRefused("forged")


def read_token(secret: bytes, token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The institution, the patient (or, for a contact's link, the contact) and the purpose a token names, or
    LinkRefused (see ``read_link``)."""
    link = read_link(secret, token)
    return link.institution_id, link.subject_id, link.purpose


async def unsubscribe(services: Services, token: str, request: RequestMeta | None = None) -> str:
    """Follow an unsubscribe link (no sign-in) and answer the purpose it names (see ``follow_link``)."""
    return (await follow_link(services, token, request)).purpose


async def follow_link(services: Services, token: str, request: RequestMeta | None = None) -> Link:
    """Follow an unsubscribe link (no sign-in). A patient's link: the purpose it names leaves the patient's
    contact purposes, recorded as a withdrawal of consent. A contact's link: the contact may no longer receive
    information, so nothing more is sent to them (the gate refuses ``contact_not_informed``), recorded as an
    update of the contact by the link; the patient's consent and their own messages are untouched. Following it
    again changes and records nothing."""
    link = read_link(services.master_key.token_key, token)
    if link.contact:
        await _stop_contact(link, request or RequestMeta())
        return link
    institution_id, patient_id, purpose = link.institution_id, link.subject_id, link.purpose
    async with in_transaction():
        patient = await Patient.filter(id=patient_id, institution_id=institution_id).select_for_update().first()
        if patient is not None and patient.merged_into_id is not None:  # a link sent before its file was merged
            patient_id = patient.merged_into_id  # stops what is still sent: the survivor's (found in review)
            patient = await Patient.filter(id=patient_id, institution_id=institution_id).select_for_update().first()
        if patient is None:
            raise LinkRefused("unknown")
        purposes = tags_from_db(patient.contact_purposes)
        if purpose in purposes:
            await versioning.update_versioned(patient, None, "patient",  # locked: the version read is current
                                              contact_purposes=tags_to_db([p for p in purposes if p != purpose]))
            await writer.append([AuditRecord(
                institution_id, Actor("anonymous"), Action.CONSENT, "contact_consent", Outcome.ALLOWED,
                request or RequestMeta(), resource_id=patient_id, patient_id=patient_id,
                fields_read=frozenset({"contact_purposes"}), reason="withdrawn", policy_rule="unsubscribe link")])
    return link


async def _stop_contact(link: Link, request: RequestMeta) -> None:
    """A contact's link followed: ``may_receive_information`` cleared, once, on the trail as a write of the
    contact by the link (an anonymous actor; the record names the contact, and the file it belongs to as
    every record about a file's rows does, never as a consent of the patient)."""
    async with in_transaction():
        contact = await Contact.filter(id=link.subject_id, institution_id=link.institution_id) \
            .select_for_update().first()
        if contact is None:
            raise LinkRefused("unknown")
        if contact.may_receive_information:
            await versioning.update_versioned(contact, None, "contact", may_receive_information=False)
            await writer.append([AuditRecord(
                link.institution_id, Actor("anonymous"), Action.UPDATE, "contact", Outcome.ALLOWED, request,
                resource_id=contact.id, patient_id=contact.patient_id,
                fields_read=frozenset({"may_receive_information"}), reason="unsubscribed",
                policy_rule="unsubscribe link")])


# -- the communication log ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommunicationView:
    row: Communication
    patient: PatientView


async def patient_log(ctx: Context, patient_id: uuid.UUID | None, *, first: int,
                      after: str | None, count: bool = False) -> pagination.Page[CommunicationView]:
    """A patient's messages and logged calls, newest first (staff with ``communication: read``, through
    the patient's reach)."""
    decision = await access.authorize(ctx, "communication", "read", action=Action.READ,
                                      resource_type="communication", patient_id=patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, view, "communication", resource_type="communication")
    return await _page(ctx, view, first, after, decision.rule, count)


async def own_log(ctx: Context, *, first: int, after: str | None,
                  count: bool = False) -> pagination.Page[CommunicationView]:
    """The signed-in patient's own messages, newest first."""
    decision = await access.authorize(ctx, "communication", "read", action=Action.READ,
                                      resource_type="communication")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.READ)
    return await _page(ctx, view, first, after, decision.rule, count)


RECENT_MAX = 20


async def recent_of(ctx: Context, patient: PatientView, count: int) -> list[CommunicationView]:
    """A patient page's latest messages and logged calls, newest first: a section that needs
    ``communication: read``, batched across a list of patients (two statements whatever their number)."""
    if not 1 <= count <= RECENT_MAX:
        raise BadUserInput(f"count: 1 to {RECENT_MAX}.", field="count")
    access.require_section(ctx, patient, "communication")

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[Communication]]:
        found = await newest_per_parent(_shown(ctx, Communication.filter(institution_id=ctx.institution_id)),
                                        "patient_id", patient_ids, ("-due_at", "-id"), RECENT_MAX)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("recent_communications", batch).load(patient.row.id)
    ctx.reads.note("communication", None, patient.row.id, rule=ctx.decide("communication", "read").rule)
    return [CommunicationView(row, patient) for row in rows[:count]]


def _shown(ctx: Context, query: QuerySet[Communication]) -> QuerySet[Communication]:
    """The log as the caller sees it: a patient's own view leaves out their family's survey messages (an invitation
    to a contact, its reminder), as the portal never lists a family invitation nor tells whether it was answered
    (docs/surveys.md; found in review: the log showed the invitation, its contact, and by its reminder whether the
    family had answered)."""
    if ctx.require_principal().kind != PATIENT:
        return query
    # Not exclude(contact_id__isnull=False, cause=...): Tortoise makes that NOT a AND NOT b, every survey message
    return query.filter(Q(contact_id__isnull=True) | ~Q(cause="survey_invitation"))


async def _page(ctx: Context, view: PatientView, first: int, after: str | None,
                rule: str, count: bool) -> pagination.Page[CommunicationView]:
    query = _shown(ctx, Communication.filter(institution_id=ctx.institution_id, patient_id=view.row.id))
    total = await pagination.count_of(query, count)
    if after:
        at, row_id = pagination.decode_keyset(CURSOR_KIND, after, pagination.decode_time)
        query = query.filter(Q(due_at__lt=at) | Q(due_at=at, id__lt=row_id))
    rows = await query.order_by("-due_at", "-id").limit(first + 1)
    ctx.reads.note("communication", None, view.row.id, rule=rule)
    return pagination.page_of([CommunicationView(row, view) for row in rows[:first]], len(rows) > first,
                              CURSOR_KIND, key=lambda v: f"{v.row.due_at.isoformat()}|{v.row.id}", total=total)




def read_sealed(ctx: Context, view: CommunicationView, name: str) -> str | None:
    """A message's subject or body, or a logged call's note: read under the patient's contact class. The
    staff's note is theirs: a patient reading their own log sees none."""
    patient = ctx.require_principal().kind == PATIENT
    if name == "note" and patient:
        return None
    text = access.read_journey_field(ctx, view.patient, "communication", view.row, name, "contact")
    own = patient and view.row.contact_id is None  # a family member's invitation stays theirs
    return restore_links(ctx.services, view.row, text) if own else text


async def log_call(ctx: Context, patient_id: uuid.UUID | None, data: dict[str, Any]) -> CommunicationView:
    """A call a staff member made or took, on the patient's log (cause ``logged_call``, status ``sent``)."""
    decision = await access.authorize(ctx, "communication", "create", action=Action.CREATE,
                                      resource_type="communication", patient_id=patient_id)
    direction, occurred_at, note = _checked_call(data)
    view = await access.find_patient(ctx, patient_id, action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, view, "communication", resource_type="communication", act="create")
    contact_id = data.get("contact_id")
    if contact_id is not None and not await access.is_patient_contact(ctx, Action.CREATE, contact_id, view.row.id):
        raise BadUserInput("contactId: no such contact of this patient.", field="contactId")
    row_id = uuid7()
    try:
        async with access.file_transaction(ctx, view.row.id, action=Action.CREATE):
            row = await Communication.create(
                id=row_id, institution_id=ctx.institution_id, key=f"{LOGGED_CALL}:{row_id}", cause=LOGGED_CALL,
                purpose="care", direction=direction, patient_id=view.row.id, contact_id=contact_id,
                staff_id=ctx.actor.id, channel="phone", status="sent", due_at=occurred_at, sent_at=occurred_at,
                note=access.seal(ctx, "communication", "note", row_id, note))
            await writer.append([access.write_record(
                ctx, Action.CREATE, "communication", row.id, patient_id=view.row.id,
                fields=frozenset({"direction", "occurred_at", "contact", *(("note",) if note else ())}),
                decision=decision)])
    except IntegrityError:
        # the contact deleted after the check found it: answered as a contact not the patient's
        if not await access.contact_deleted_meanwhile(ctx, Action.CREATE, contact_id, view.row.id):
            raise
        raise BadUserInput("contactId: no such contact of this patient.", field="contactId") from None
    return CommunicationView(row, view)


def _checked_call(data: dict[str, Any]) -> tuple[str, datetime, str | None]:
    """(direction, when, note) of a logged call: every problem of the input at once, before the patient and
    the contact are looked up."""
    problems = Problems()
    direction, occurred_at, note = "", _now(), data.get("note")
    with problems.collect("direction"):
        direction = one_of(data.get("direction") or "outbound", DIRECTIONS, "direction")
    with problems.collect("occurredAt"):
        occurred_at = happened_time(data.get("occurred_at") or _now(), "occurredAt", now=_now())
    with problems.collect("note"):
        note = None if note is None else clean_text(note, field="note", max_length=NOTE_LIMIT)
    problems.check()
    return direction, occurred_at, note


# -- the patient's own preferences ------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    consent: bool
    channels: list[str]
    preferred_channel: str | None
    purposes: list[str]


async def my_preferences(ctx: Context) -> Preferences:
    """The signed-in patient's contact preferences (read under the contact class of their file)."""
    await access.authorize(ctx, "patient.contact", "read", action=Action.READ, resource_type="patient")
    view = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.READ)
    access.require_class(ctx, view, "contact")
    return _preferences(view.row)


def _preferences(row: Patient) -> Preferences:
    return Preferences(row.contact_consent, tags_from_db(row.contact_channels), row.preferred_channel,
                       tags_from_db(row.contact_purposes))


async def set_my_preferences(ctx: Context, data: dict[str, Any]) -> Preferences:
    """The patient's own consent to be contacted, channels, preferred channel and purposes (audited as an
    update of the file and a consent event)."""
    decision = await access.authorize(ctx, "patient.contact", "update", action=Action.UPDATE,
                                      resource_type="patient")
    if not data:
        raise BadUserInput("input: give at least one preference to change.", field="input")
    columns = _preference_columns(data)
    view = await access.find_patient(ctx, ctx.require_principal().patient_id, action=Action.UPDATE)
    written = frozenset(columns)
    # The file locked first, and refused when merged meanwhile: a withdrawal written on the merged file, after the
    # merge had given the survivor both files' consent, was lost (found in review).
    async with access.file_transaction(ctx, view.row.id, action=Action.UPDATE, field="input"):
        row = await Patient.get(id=view.row.id, institution_id=ctx.institution_id)
        # a new version: a clerk's edit of the file read before this one is a CONFLICT, not an overwrite
        await versioning.update_versioned(row, None, "patient", **columns)
        await writer.append([
            access.write_record(ctx, Action.UPDATE, "patient", view.row.id, patient_id=view.row.id, fields=written,
                                decision=decision),
            AuditRecord(ctx.institution_id, ctx.actor, Action.CONSENT, "contact_consent", Outcome.ALLOWED,
                        ctx.request, resource_id=view.row.id, patient_id=view.row.id, fields_read=written,
                        policy_rule=decision.rule)])
    return _preferences(await Patient.get(id=view.row.id))


def _preference_columns(data: dict[str, Any]) -> dict[str, Any]:
    """The columns of the preferences given, checked: every problem at once."""
    problems = Problems()
    columns: dict[str, Any] = {}
    if "consent" in data:
        if data["consent"] is None:
            problems.add("consent", "required", "must not be null.")
        else:
            columns["contact_consent"] = bool(data["consent"])
    if "channels" in data:
        with problems.collect("channels"):
            columns["contact_channels"] = tags_to_db(sorted({one_of(c, CHANNELS, "channels")
                                                            for c in data["channels"] or []}))
    if "preferred_channel" in data:
        with problems.collect("preferredChannel"):
            columns["preferred_channel"] = None if data["preferred_channel"] is None else one_of(
                data["preferred_channel"], CHANNELS, "preferredChannel")
    if "purposes" in data:
        with problems.collect("purposes"):
            columns["contact_purposes"] = tags_to_db(sorted({one_of(p, PURPOSES, "purposes")
                                                            for p in data["purposes"] or []}))
    problems.check()
    return columns


# -- the patient's copy of their data -----------------------------------------------------------


async def export_copy(ctx: Context, view: PatientView) -> list[dict[str, Any]]:
    """The patient's communications for their data export: what was sent, when, how, and why (one statement)."""
    access.require_class(ctx, view, "contact")
    rows = await _shown(ctx, Communication.filter(institution_id=ctx.institution_id, patient_id=view.row.id)
                        ).order_by("due_at")
    cv = [CommunicationView(row, view) for row in rows]
    return [{"id": str(v.row.id), "cause": v.row.cause, "purpose": v.row.purpose, "direction": v.row.direction,
             "channel": v.row.channel, "status": v.row.status, "refusal": v.row.refusal,
             "due_at": v.row.due_at.isoformat(), "sent_at": v.row.sent_at and v.row.sent_at.isoformat(),
             "subject": read_sealed(ctx, v, "subject"), "body": read_sealed(ctx, v, "body")} for v in cv]
