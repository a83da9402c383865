"""The communication log (FHIR Communication): every message sent, refused or waiting for a patient or
their contacts, and the staff's own logged calls; the patient's contact preferences in the portal.

A message's cause, channel, status and times are read by whoever reads the patient's log; what it said
(subject, body) and a logged call's note are read under the contact class of the patient's file (a field
your role may not read on this patient resolves to null with a FORBIDDEN error).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import communication as communications
from resolvers.communication import CommunicationView, Preferences
from resolvers.context import Context
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    asks_total,
    optional_id,
    provided,
    register_node,
    uuid_of,
)
from schema.patient import Channel, ContactPurpose


@strawberry.enum(description="Why a message exists (each cause has a purpose the patient consents to), or "
                             "LOGGED_CALL for a call a staff member made or took.")
class CommunicationCause(Enum):
    APPOINTMENT_CONFIRMATION = strawberry.enum_value(
        "appointment_confirmation", description="An appointment was booked (purpose CARE).")
    APPOINTMENT_REMINDER = strawberry.enum_value(
        "appointment_reminder", description="An appointment is near (24 hours before by default; purpose CARE).")
    APPOINTMENT_CHANGE = strawberry.enum_value(
        "appointment_change", description="An appointment was moved to another slot (purpose CARE).")
    APPOINTMENT_CANCELLATION = strawberry.enum_value(
        "appointment_cancellation", description="An appointment was cancelled (purpose CARE).")
    REVISIT_REMINDER = strawberry.enum_value(
        "revisit_reminder", description="A visit's re-visit date is near (purpose CARE).")
    PENDING_TREATMENT_REMINDER = strawberry.enum_value(
        "pending_treatment_reminder", description="A procedure recorded as pending is still to be done (purpose CARE).")
    FOLLOW_UP_ANNOUNCEMENT = strawberry.enum_value(
        "follow_up_announcement", description="A follow-up call is coming (purpose CARE).")
    SURVEY_INVITATION = strawberry.enum_value(
        "survey_invitation", description="An invitation to answer a satisfaction survey (purpose CARE).")
    CONTRACT_EXPIRY = strawberry.enum_value(
        "contract_expiry", description="The client's service contract ends soon: 60 and 30 days before (purpose CARE).")
    CONTRACT_SIGNATURE = strawberry.enum_value(
        "contract_signature", description="A contract or amendment still awaits the client's signature (purpose CARE).")
    BIRTHDAY_GREETING = strawberry.enum_value(
        "birthday_greeting", description="A birthday greeting (purpose GREETING).")
    HOLIDAY_GREETING = strawberry.enum_value("holiday_greeting", description="A holiday greeting (purpose GREETING).")
    CAMPAIGN = strawberry.enum_value("campaign", description="A message of a campaign (purpose CAMPAIGN; see "
                                                             "campaignId).")
    LOGGED_CALL = strawberry.enum_value("logged_call", description="A call a staff member made or took, logged by hand "
                                                                   "(communicationLogCall).")


@strawberry.enum(description="Where a message stands: waiting (FHIR CommunicationRequest), then settled (FHIR "
                             "Communication). In FHIR R4 codes: QUEUED is a request active; SENT and DELIVERED a "
                             "communication completed; FAILED a communication not-done; REFUSED and CANCELLED a "
                             "request revoked.")
class CommunicationStatus(Enum):
    QUEUED = strawberry.enum_value("queued", description="Waiting for its due time (dueAt) (FHIR CommunicationRequest "
                                                         "active).")
    SENT = strawberry.enum_value("sent", description="Handed to the gateway of its channel (a logged call: it took "
                                                     "place) (FHIR Communication completed, its sent time set).")
    DELIVERED = strawberry.enum_value("delivered", description="The gateway reported it delivered (the portal inbox: "
                                                               "at once) (FHIR Communication completed, "
                                                               "its received time set).")
    FAILED = strawberry.enum_value("failed", description="Could not be sent or delivered after its attempts (see "
                                                         "lastError) (FHIR Communication not-done).")
    REFUSED = strawberry.enum_value("refused", description="The consent gate stopped it (see refusal) (FHIR "
                                                           "CommunicationRequest revoked).")
    CANCELLED = strawberry.enum_value("cancelled", description="Its cause went away before it was sent (e.g. the "
                                                               "appointment was cancelled) (FHIR CommunicationRequest "
                                                               "revoked).")


@strawberry.enum(description="How a message went out, or PHONE for a logged call.")
class CommunicationChannel(Enum):
    SMS = strawberry.enum_value("sms", description="A text message through the institution's SMS gateway.")
    EMAIL = strawberry.enum_value("email", description="An e-mail.")
    WECHAT = strawberry.enum_value("wechat", description="A message through the institution's WeChat gateway.")
    APP = strawberry.enum_value("app", description="The patient's portal inbox.")
    PHONE = strawberry.enum_value("phone", description="A telephone call (logged calls only).")


@strawberry.enum(description="Which way it went.")
class CommunicationDirection(Enum):
    OUTBOUND = strawberry.enum_value("outbound", description="From the institution: every message, and the calls staff "
                                                             "made.")
    INBOUND = strawberry.enum_value("inbound", description="From the patient or a contact: a call taken.")


@strawberry.enum(description="Why the consent gate refused a message (it decides when the message is scheduled and "
                             "again when it is sent).")
class CommunicationRefusal(Enum):
    NO_CONSENT = strawberry.enum_value("no_consent", description="The patient does not want to be contacted at all.")
    PURPOSE_NOT_CONSENTED = strawberry.enum_value(
        "purpose_not_consented", description="The patient did not consent to this purpose (GREETING, CAMPAIGN...).")
    NO_CHANNEL = strawberry.enum_value("no_channel", description="No message channel (SMS, e-mail, WeChat, app) is "
                                                                 "consented to.")
    NO_ADDRESS = strawberry.enum_value("no_address", description="None of the consented channels has an address (a "
                                                                 "phone, an e-mail, a portal account).")
    QUIET_HOURS = strawberry.enum_value(
        "quiet_hours", description="A message the quiet hours would have pushed past its moment: an appointment's "
                                   "notice past the start of its slot, a calendar message (a birthday greeting, a "
                                   "re-visit reminder) past the end of its day in the institution's zone.")
    FREQUENCY_CAP = strawberry.enum_value("frequency_cap", description="Too many greetings and campaign messages "
                                                                       "lately (the institution's cap, 2 a week by "
                                                                       "default).")
    PATIENT_INACTIVE = strawberry.enum_value(
        "patient_inactive", description="The patient's file is archived or deceased.")
    CONTACT_NOT_INFORMED = strawberry.enum_value(
        "contact_not_informed", description="For a contact who may not receive information about the patient.")
    NO_TEMPLATE = strawberry.enum_value("no_template", description="No template for its cause, channel and language "
                                                                   "could render it.")
    DUPLICATE = strawberry.enum_value("duplicate", description="A greeting or campaign message the person has "
                                                               "another of (the same campaign, or the same greeting "
                                                               "that day): two files of theirs were merged and each "
                                                               "had one. One goes.")



def communication_node(ctx: Context, view: CommunicationView) -> Communication:
    return Communication(view=view, ctx=ctx)


@strawberry.type(description="One message to a patient or a contact (waiting, sent or refused), or a logged call.")
class Communication:
    view: strawberry.Private[CommunicationView]
    ctx: strawberry.Private[Context]

    @strawberry.field(description="The log entry's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient it is about (and to, unless a contact is named).")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.patient_id))

    @strawberry.field(description="The family or emergency contact it went to; null: the patient.")
    def contact_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.contact_id)

    @strawberry.field(description="The appointment it is about, if any.")
    def appointment_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.appointment_id)

    @strawberry.field(description="The campaign it belongs to, if any.")
    def campaign_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.campaign_id)

    @strawberry.field(description="The staff member who logged the call; null for messages.")
    def staff_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.staff_id)

    @strawberry.field(description="Why it exists.")
    def cause(self) -> CommunicationCause:
        return CommunicationCause(self.view.row.cause)

    @strawberry.field(description="The purpose it was sent for (the patient consents to each).")
    def purpose(self) -> ContactPurpose:
        return ContactPurpose(self.view.row.purpose)

    @strawberry.field(description="From the institution, or to it (a call taken).")
    def direction(self) -> CommunicationDirection:
        return CommunicationDirection(self.view.row.direction)

    @strawberry.field(description="How it went out; null while it waits (the gate chooses at sending).")
    def channel(self) -> CommunicationChannel | None:
        return None if self.view.row.channel is None else CommunicationChannel(self.view.row.channel)

    @strawberry.field(description="Where it stands.")
    def status(self) -> CommunicationStatus:
        return CommunicationStatus(self.view.row.status)

    @strawberry.field(description="Why the gate refused it; null unless status is REFUSED.")
    def refusal(self) -> CommunicationRefusal | None:
        return None if self.view.row.refusal is None else CommunicationRefusal(self.view.row.refusal)

    @strawberry.field(description="When it is (or was) due to go out; for a logged call, when the call took place.")
    def due_at(self) -> datetime:
        return self.view.row.due_at

    @strawberry.field(description="When it was handed to the gateway (a logged call: when it took place); null "
                                  "until then (queued, or refused or cancelled before it went).")
    def sent_at(self) -> datetime | None:
        return self.view.row.sent_at

    @strawberry.field(description="When the gateway reported it delivered; null until it does (some channels "
                                  "never report).")
    def delivered_at(self) -> datetime | None:
        return self.view.row.delivered_at

    @strawberry.field(description="When it was refused, cancelled or given up; null while it is queued, and once "
                                  "sent or delivered.")
    def settled_at(self) -> datetime | None:
        return self.view.row.settled_at

    @strawberry.field(description="How many times it was handed to a sender.")
    def attempts(self) -> int:
        return self.view.row.attempts

    @strawberry.field(description="The last sending error, as a short code (\"timeout\", \"http_503\", "
                                  "\"no_gateway\"); null once sent, or when no attempt failed.")
    def last_error(self) -> str | None:
        return self.view.row.last_error or None

    @strawberry.field(description="The subject as sent (e-mail). Contact class; null until sent.")
    def subject(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "subject")

    @strawberry.field(description="The text as sent. Contact class; null until sent.")
    def body(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "body")

    @strawberry.field(description="A logged call's note (staff only). Contact class: without it, null with "
                                  "FORBIDDEN. Null for a message, a call logged without a note, and for the "
                                  "patient reading their own log.")
    def note(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "note")


@strawberry.type(description="One entry of a communication log page, with its cursor.")
class CommunicationEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Communication = strawberry.field(description="The message or logged call.")


@strawberry.type(description="A page of the communication log, newest first.")
class CommunicationConnection:
    edges: list[CommunicationEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Communication]:
        return [edge.node for edge in self.edges]


def _connection(ctx: Context, page: communications.pagination.Page[CommunicationView]) -> CommunicationConnection:
    return CommunicationConnection(
        edges=[CommunicationEdge(cursor=cursor, node=communication_node(ctx, view)) for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.input(description="A call a staff member made or took, for the patient's communication log.")
class CommunicationLogCallInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient the call was with or about.")
    contact_id: strawberry.ID | None = strawberry.field(default=None,
                                                        description="The contact spoken to; null: the patient.")
    direction: CommunicationDirection = strawberry.field(default=CommunicationDirection.OUTBOUND,
                                                         description="OUTBOUND: we called; INBOUND: they called.")
    occurred_at: datetime | None = strawberry.field(default=None, description="When; now when left out. Not in the "
                                                                              "future.")
    note: str | None = strawberry.field(default=None, description="What was said, at most 2000 characters; kept "
                                                                  "encrypted.")


@strawberry.type(description="How the patient wants to be contacted.")
class ContactPreferences:
    consent: bool = strawberry.field(description="Whether they may be contacted at all.")
    channels: list[Channel] = strawberry.field(description="The channels they consented to.")
    preferred_channel: Channel | None = strawberry.field(description="The channel tried first; null: none "
                                                                         "chosen (the consented channels are "
                                                                         "tried in their usual order).")
    purposes: list[ContactPurpose] = strawberry.field(description="What they may be contacted for.")

    @classmethod
    def of(cls, preferences: Preferences) -> ContactPreferences:
        return cls(consent=preferences.consent, channels=[Channel(c) for c in preferences.channels],
                   preferred_channel=None if preferences.preferred_channel is None else Channel(
                       preferences.preferred_channel),
                   purposes=[ContactPurpose(p) for p in preferences.purposes])


@strawberry.input(description="Changes to my contact preferences: fields left out stay as they are.")
class ContactPreferencesInput:
    consent: bool | None = strawberry.field(default=strawberry.UNSET,
                                            description="Whether I may be contacted at all.")
    channels: list[Channel] | None = strawberry.field(default=strawberry.UNSET,
                                                      description="The channels I consent to (replaces the list).")
    preferred_channel: Channel | None = strawberry.field(default=strawberry.UNSET,
                                                         description="The channel to try first; null: none.")
    purposes: list[ContactPurpose] | None = strawberry.field(
        default=strawberry.UNSET, description="What I may be contacted for (replaces the list; CARE for appointments "
                                              "and reminders).")


@strawberry.type
class CommunicationQuery:
    @strawberry.field(description="A patient's communication log, newest first: messages sent, waiting or refused "
                                  "and logged calls. Needs communication read rights and the patient in your reach.")
    async def patient_communications(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> CommunicationConnection:
        page = await communications.patient_log(info.context, uuid_of(patient_id, "patientId"), first=first,
                                                after=after, count=asks_total(info))
        return _connection(info.context, page)

    @strawberry.field(description="Portal: the messages sent to me, newest first.")
    async def my_communications(self, info: Info, first: First = DEFAULT_PAGE_SIZE,
                                after: After = None) -> CommunicationConnection:
        return _connection(info.context, await communications.own_log(info.context, first=first, after=after,
                                                                       count=asks_total(info)))

    @strawberry.field(description="Portal: how I want to be contacted.")
    async def my_contact_preferences(self, info: Info) -> ContactPreferences:
        return ContactPreferences.of(await communications.my_preferences(info.context))


@strawberry.type
class CommunicationMutation:
    @strawberry.mutation(description="Log a call made or taken with a patient or one of their contacts.")
    async def communication_log_call(self, info: Info, input: Annotated[CommunicationLogCallInput, strawberry.argument(
            description="The call.")]) -> Communication:
        data = provided(input)
        view = await communications.log_call(info.context, data.pop("patient_id"), data)
        return communication_node(info.context, view)

    @strawberry.mutation(description="Portal: change how I want to be contacted (consent, channels, preferred "
                                     "channel, purposes). Recorded as a consent change.")
    async def my_contact_preferences_update(
        self, info: Info,
        input: Annotated[ContactPreferencesInput, strawberry.argument(description="The changes.")],
    ) -> ContactPreferences:
        return ContactPreferences.of(await communications.set_my_preferences(info.context, provided(input)))


register_node("communication", communication_node)
