"""Support tickets, their timelines, and the SLA policy and business calendar they run on.

A ticket's free text (subject, description, root cause, resolution, the patient's feedback and
every timeline note) often holds health information, so it is sealed like the patient file. The
SLA due and at-risk times are computed by ``core.sla`` and stored, so the queue sorts and the
escalation outbox schedules on plain indexed columns.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.contact import Contact
    from models.institution import Department
    from models.patient import Patient
    from models.staff import Staff

CHANNELS = ("hotline", "front_desk", "nurse_station", "web_form", "app", "wechat", "email", "vip_adviser")
CATEGORIES = ("enquiry", "request", "complaint", "suggestion")
ROOT_CAUSES = ("people", "process", "place", "equipment", "other")
STATUSES = ("new", "acknowledged", "investigating", "waiting_on_patient", "resolved", "feedback_recorded", "closed")
OPEN_STATUSES = ("new", "acknowledged", "investigating", "waiting_on_patient")
STOPPED_STATUSES = ("resolved", "feedback_recorded", "closed")
EVENT_KINDS = ("created", "transition", "reply", "internal_note", "handover", "assignment", "level_change",
               "feedback", "contact_attempt")
CLOCKS = ("calendar", "business")


class Ticket(TenantModel):
    patient: fields.ForeignKeyNullableRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="tickets", null=True, on_delete=fields.RESTRICT)
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "careloop.Contact", related_name="tickets", null=True, on_delete=fields.RESTRICT)
    caller_name = EncryptedField(null=True)  # someone not on file yet
    caller_phone = EncryptedField(null=True)
    channel = fields.CharField(max_length=16)
    category = fields.CharField(max_length=16)
    subcategory = fields.CharField(max_length=64, default="")
    level = fields.SmallIntField()
    vip = fields.BooleanField(default=False)
    subject = EncryptedField()
    description = EncryptedField(null=True)
    status = fields.CharField(max_length=20, default="new")
    owner: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="owned_tickets", null=True, on_delete=fields.RESTRICT)
    assignee: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="assigned_tickets", null=True, on_delete=fields.RESTRICT)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="tickets", null=True, on_delete=fields.RESTRICT)
    root_cause_category = fields.CharField(max_length=16, null=True)
    root_cause = EncryptedField(null=True)
    resolution = EncryptedField(null=True)
    feedback = EncryptedField(null=True)
    received_at = fields.DatetimeField()
    first_responded_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    paused_at = fields.DatetimeField(null=True)  # waiting on the patient since
    # The SLA as last computed (core.sla); null while the clock is paused or stopped.
    response_due_at = fields.DatetimeField(null=True)
    response_at_risk_at = fields.DatetimeField(null=True)
    resolution_due_at = fields.DatetimeField(null=True)
    resolution_at_risk_at = fields.DatetimeField(null=True)
    next_due_at = fields.DatetimeField(null=True)  # of the target still pending: the queue's order
    next_at_risk_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID | None
        contact_id: uuid.UUID | None
        owner_id: uuid.UUID | None
        assignee_id: uuid.UUID | None
        department_id: uuid.UUID | None

    class Meta:
        table = "ticket"
        indexes = (
            Index(fields=("institution_id", "next_due_at")),
            Index(fields=("institution_id", "department_id", "status")),
            Index(fields=("institution_id", "patient_id")),
        )


class TicketEvent(TenantModel):
    """One entry of a ticket's timeline: who did what, when, from which status to which."""

    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="events", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=20)
    actor: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="ticket_events", null=True, on_delete=fields.RESTRICT)
    occurred_at = fields.DatetimeField()
    from_status = fields.CharField(max_length=20, null=True)
    to_status = fields.CharField(max_length=20, null=True)
    internal = fields.BooleanField(default=True)  # False: a reply the patient sees
    note = EncryptedField(null=True)
    to_staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="ticket_handovers", null=True, on_delete=fields.RESTRICT)
    to_department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="ticket_handovers", null=True, on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        ticket_id: uuid.UUID
        actor_id: uuid.UUID | None
        to_staff_id: uuid.UUID | None
        to_department_id: uuid.UUID | None

    class Meta:
        table = "ticket_event"
        indexes = (Index(fields=("ticket_id", "occurred_at")),)


class SlaPolicy(TenantModel):
    """First-response and resolution targets of one level, in minutes of its clock."""

    level = fields.SmallIntField()
    first_response_minutes = fields.IntField()
    resolution_minutes = fields.IntField()
    clock = fields.CharField(max_length=10)

    class Meta:
        table = "sla_policy"
        unique_together = (("institution", "level"),)


class BusinessCalendar(TenantModel):
    """Working hours per weekday (ISO, Monday = 1), public holidays and make-up working days.

    ``week`` maps a weekday number to a list of ``["08:00", "12:00"]`` intervals, local time in
    the institution's zone. Make-up days use ``workday_hours``.
    """

    week: dict[str, list[list[str]]] = fields.JSONField()
    workday_hours: list[list[str]] = fields.JSONField()
    holidays: list[str] = fields.JSONField()
    workdays: list[str] = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "business_calendar"
        unique_together = (("institution",),)


class Notification(TenantModel):
    """The escalation outbox: written with the change that schedules it, delivered at least once.

    ``key`` makes a notification unique (one per ticket, target and breach), so recomputing a
    ticket's SLA never schedules the same escalation twice.
    """

    key = fields.CharField(max_length=120)
    kind = fields.CharField(max_length=32)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="notifications", null=True, on_delete=fields.RESTRICT)
    recipient: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="notifications", null=True, on_delete=fields.RESTRICT)
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=200, default="")

    if TYPE_CHECKING:
        ticket_id: uuid.UUID | None
        recipient_id: uuid.UUID | None

    class Meta:
        table = "notification"
        unique_together = (("institution", "key"),)
        indexes = (Index(fields=("sent_at", "due_at")),)
