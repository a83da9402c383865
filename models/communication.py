"""Messages to patients and their contacts: the outbox and the communication log in one table.

A row is FHIR's CommunicationRequest while it waits (``queued``, due at ``due_at``) and its
Communication once settled (``sent``, ``delivered``, ``failed``, ``refused`` by the gate, or
``cancelled`` because its cause went away). ``key`` names the cause ("appointment:<id>:reminder"):
unique per institution, so scheduling the same cause twice never sends twice. The staff's own logged
calls are rows too (``cause`` = ``logged_call``), so the log is one list.

Bodies are rendered at the moment of sending and kept sealed: they hold names, dates and places.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.appointment import Appointment
    from models.campaign import Campaign
    from models.contact import Contact
    from models.patient import Patient
    from models.staff import Staff

# care: appointments, reminders, follow-up announcements; greeting: birthdays and holidays; campaign:
# newsletters and campaigns. A patient consents to each separately.
PURPOSES = ("care", "greeting", "campaign")
CAUSES = {
    "appointment_confirmation": "care",
    "appointment_reminder": "care",
    "appointment_change": "care",
    "appointment_cancellation": "care",
    "revisit_reminder": "care",
    "pending_treatment_reminder": "care",
    "follow_up_announcement": "care",
    "survey_invitation": "care",
    "contract_expiry": "care",
    "contract_signature": "care",
    "birthday_greeting": "greeting",
    "holiday_greeting": "greeting",
    "campaign": "campaign",
}
LOGGED_CALL = "logged_call"
MESSAGE_CHANNELS = ("sms", "email", "wechat", "app")
STATUSES = ("queued", "sent", "delivered", "failed", "refused", "cancelled")
# Why the gate refused a message (counted per reason in a campaign's result).
REFUSALS = ("no_consent", "purpose_not_consented", "no_channel", "no_address", "quiet_hours",
            "frequency_cap", "patient_inactive", "contact_not_informed", "no_template", "duplicate")
DIRECTIONS = ("outbound", "inbound")


class Communication(TenantModel):
    key = fields.CharField(max_length=160)
    cause = fields.CharField(max_length=32)
    purpose = fields.CharField(max_length=10)
    direction = fields.CharField(max_length=8, default="outbound")
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="communications", on_delete=fields.RESTRICT)
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "careloop.Contact", related_name="communications", null=True, on_delete=fields.RESTRICT)
    appointment: fields.ForeignKeyNullableRelation[Appointment] = fields.ForeignKeyField(
        "careloop.Appointment", related_name="communications", null=True, on_delete=fields.RESTRICT)
    campaign: fields.ForeignKeyNullableRelation[Campaign] = fields.ForeignKeyField(
        "careloop.Campaign", related_name="communications", null=True, on_delete=fields.RESTRICT)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="communications", null=True, on_delete=fields.RESTRICT)
    channel = fields.CharField(max_length=8, null=True)  # chosen by the gate at sending
    status = fields.CharField(max_length=10, default="queued")
    refusal = fields.CharField(max_length=24, null=True)
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    settled_at = fields.DatetimeField(null=True)  # failed, refused or cancelled
    attempts = fields.IntField(default=0)
    # While a worker holds the row (claimed, not yet settled), the end of its lease: ``due_at`` is then the lease's end
    # too, and scheduling the cause again moves it no earlier (resolvers.outbox, resolvers.communication).
    leased_until = fields.DatetimeField(null=True)
    # The due time the cause set while a worker held the row (scheduled again meanwhile): what that worker writes, a
    # retry, a deferral or a renewed lease, goes no earlier; cleared with ``leased_until``.
    rescheduled_to = fields.DatetimeField(null=True)
    # A greeting's or campaign message's place under the frequency cap, taken before its batch's hand-overs: counted
    # by other workers while the lease runs (resolvers.communication._take_places); cleared with ``leased_until``.
    reserved_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=200, default="")
    gateway_message_id = fields.CharField(max_length=100, null=True)
    variables: dict[str, str] = fields.JSONField(default=dict)  # names, dates, times, places only
    subject = EncryptedField(null=True)
    body = EncryptedField(null=True)
    note = EncryptedField(null=True)  # a logged call's notes

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        contact_id: uuid.UUID | None
        appointment_id: uuid.UUID | None
        campaign_id: uuid.UUID | None
        staff_id: uuid.UUID | None

    class Meta:
        table = "communication"
        unique_together = (("institution", "key"),)
        indexes = (Index(fields=("status", "due_at")),
                   Index(fields=("institution_id", "patient_id", "due_at")),
                   Index(fields=("institution_id", "campaign_id", "status")),
                   Index(fields=("gateway_message_id",)))


class DeliveryReport(TenantModel):
    """A gateway's report that came before its message's sent record was written.

    The gateway answered the hand-over and reported before the worker's write committed (found in review: such a
    report found no message and was lost). Kept until that write applies it, a day at most
    (``resolvers.communication``)."""

    channel = fields.CharField(max_length=8)
    gateway_message_id = fields.CharField(max_length=100)
    status = fields.CharField(max_length=10)
    reason = fields.CharField(max_length=60, default="")

    class Meta:
        table = "delivery_report"
        unique_together = (("institution", "channel", "gateway_message_id"),)
