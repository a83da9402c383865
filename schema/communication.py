"""The communication log (FHIR Communication): every message sent, refused or waiting for a patient or
their contacts, and the staff's own logged calls; the patient's contact preferences in the portal.

A message's cause, channel, status and times are read by whoever reads the patient's log; what it said
(subject, body) and a logged call's note are read under the contact class of the patient's file (a field
your role may not read on this patient resolves to null with a FORBIDDEN error).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from resolvers import communication as communications
from resolvers.communication import CommunicationView, Preferences
from resolvers.context import Context
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, provided, register_node, uuid_of
from schema.patient import Channel, ContactPurpose


@strawberry.enum(description="Why a message exists: an appointment's confirmation, reminder, change or cancellation, "
                             "a re-visit or pending-treatment reminder, a follow-up call's announcement, a survey "
                             "invitation, a birthday or holiday greeting, a campaign; LOGGED_CALL is a call a staff "
                             "member made or took.")
class CommunicationCause(Enum):
    APPOINTMENT_CONFIRMATION = "appointment_confirmation"
    APPOINTMENT_REMINDER = "appointment_reminder"
    APPOINTMENT_CHANGE = "appointment_change"
    APPOINTMENT_CANCELLATION = "appointment_cancellation"
    REVISIT_REMINDER = "revisit_reminder"
    PENDING_TREATMENT_REMINDER = "pending_treatment_reminder"
    FOLLOW_UP_ANNOUNCEMENT = "follow_up_announcement"
    SURVEY_INVITATION = "survey_invitation"
    BIRTHDAY_GREETING = "birthday_greeting"
    HOLIDAY_GREETING = "holiday_greeting"
    CAMPAIGN = "campaign"
    LOGGED_CALL = "logged_call"


@strawberry.enum(description="Where a message stands: QUEUED waits for its time (FHIR CommunicationRequest); SENT was "
                             "handed to the gateway; DELIVERED the gateway reported it delivered; FAILED could not be "
                             "sent or delivered (see lastError); REFUSED the gate stopped it (see refusal); CANCELLED "
                             "its cause went away.")
class CommunicationStatus(Enum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


@strawberry.enum(description="How a message went out, or PHONE for a logged call.")
class CommunicationChannel(Enum):
    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"
    APP = "app"
    PHONE = "phone"


@strawberry.enum(description="OUTBOUND: from the institution; INBOUND: from the patient or a contact (a call taken).")
class CommunicationDirection(Enum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


@strawberry.enum(description="Why the gate refused a message: NO_CONSENT (the patient does not want to be contacted), "
                             "PURPOSE_NOT_CONSENTED (not for this purpose), NO_CHANNEL (no message channel consented), "
                             "NO_ADDRESS (no phone or e-mail for the consented channels), QUIET_HOURS, FREQUENCY_CAP "
                             "(too many greetings and campaigns lately), PATIENT_INACTIVE (archived or deceased), "
                             "CONTACT_NOT_INFORMED (a contact who may not receive information), NO_TEMPLATE.")
class CommunicationRefusal(Enum):
    NO_CONSENT = "no_consent"
    PURPOSE_NOT_CONSENTED = "purpose_not_consented"
    NO_CHANNEL = "no_channel"
    NO_ADDRESS = "no_address"
    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    PATIENT_INACTIVE = "patient_inactive"
    CONTACT_NOT_INFORMED = "contact_not_informed"
    NO_TEMPLATE = "no_template"


def _id(value: object) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


def communication_node(ctx: Context, view: CommunicationView) -> Communication:
    return Communication(view=view, ctx=ctx)


@strawberry.type(description="One message to a patient or a contact (waiting, sent or refused), or a logged call.")
class Communication:
    view: strawberry.Private[CommunicationView]
    ctx: strawberry.Private[Context]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient it is about (and to, unless a contact is named).")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.patient_id))

    @strawberry.field(description="The family or emergency contact it went to; null: the patient.")
    def contact_id(self) -> strawberry.ID | None:
        return _id(self.view.row.contact_id)

    @strawberry.field(description="The appointment it is about, if any.")
    def appointment_id(self) -> strawberry.ID | None:
        return _id(self.view.row.appointment_id)

    @strawberry.field(description="The campaign it belongs to, if any.")
    def campaign_id(self) -> strawberry.ID | None:
        return _id(self.view.row.campaign_id)

    @strawberry.field(description="The staff member who logged the call; null for messages.")
    def staff_id(self) -> strawberry.ID | None:
        return _id(self.view.row.staff_id)

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

    @strawberry.field(description="Why the gate refused it (status REFUSED).")
    def refusal(self) -> CommunicationRefusal | None:
        return None if self.view.row.refusal is None else CommunicationRefusal(self.view.row.refusal)

    @strawberry.field(description="When it is (or was) due to go out; for a logged call, when the call took place.")
    def due_at(self) -> datetime:
        return self.view.row.due_at

    @strawberry.field(description="When it was handed to the gateway (a logged call: when it took place).")
    def sent_at(self) -> datetime | None:
        return self.view.row.sent_at

    @strawberry.field(description="When the gateway reported it delivered.")
    def delivered_at(self) -> datetime | None:
        return self.view.row.delivered_at

    @strawberry.field(description="When it was refused, cancelled or given up.")
    def settled_at(self) -> datetime | None:
        return self.view.row.settled_at

    @strawberry.field(description="How many times it was handed to a sender.")
    def attempts(self) -> int:
        return self.view.row.attempts

    @strawberry.field(description="The last sending error, as a short code (\"timeout\", \"http_503\").")
    def last_error(self) -> str | None:
        return self.view.row.last_error or None

    @strawberry.field(description="The subject as sent (e-mail). Contact class; null until sent.")
    def subject(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "subject")

    @strawberry.field(description="The text as sent. Contact class; null until sent.")
    def body(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "body")

    @strawberry.field(description="A logged call's note (staff only). Contact class.")
    def note(self) -> str | None:
        return communications.read_sealed(self.ctx, self.view, "note")


@strawberry.type
class CommunicationEdge:
    cursor: str
    node: Communication


@strawberry.type(description="A page of the communication log, newest first.")
class CommunicationConnection:
    edges: list[CommunicationEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Communication]:
        return [edge.node for edge in self.edges]


def _connection(ctx: Context, page: communications.pagination.Page[CommunicationView]) -> CommunicationConnection:
    return CommunicationConnection(
        edges=[CommunicationEdge(cursor=cursor, node=communication_node(ctx, view)) for cursor, view in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


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
    preferred_channel: Channel | None = strawberry.field(description="The channel tried first.")
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
    async def patient_communications(self, info: Info, patient_id: strawberry.ID, first: int = DEFAULT_PAGE_SIZE,
                                     after: str | None = None) -> CommunicationConnection:
        page = await communications.patient_log(info.context, uuid_of(patient_id, "patientId"), first=first,
                                                after=after)
        return _connection(info.context, page)

    @strawberry.field(description="Portal: the messages sent to me, newest first.")
    async def my_communications(self, info: Info, first: int = DEFAULT_PAGE_SIZE,
                                after: str | None = None) -> CommunicationConnection:
        return _connection(info.context, await communications.own_log(info.context, first=first, after=after))

    @strawberry.field(description="Portal: how I want to be contacted.")
    async def my_contact_preferences(self, info: Info) -> ContactPreferences:
        return ContactPreferences.of(await communications.my_preferences(info.context))


@strawberry.type
class CommunicationMutation:
    @strawberry.mutation(description="Log a call made or taken with a patient or one of their contacts.")
    async def communication_log_call(self, info: Info, input: CommunicationLogCallInput) -> Communication:
        data = provided(input)
        view = await communications.log_call(info.context, data.pop("patient_id"), data)
        return communication_node(info.context, view)

    @strawberry.mutation(description="Portal: change how I want to be contacted (consent, channels, preferred "
                                     "channel, purposes). Recorded as a consent change.")
    async def my_contact_preferences_update(self, info: Info, input: ContactPreferencesInput) -> ContactPreferences:
        return ContactPreferences.of(await communications.set_my_preferences(info.context, provided(input)))


register_node("communication", communication_node)
