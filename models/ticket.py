"""Support tickets and their timelines.

A ticket's free text (subject, description, root cause, resolution, the patient's feedback and
every timeline note) often holds health information, so it is sealed like the patient file. The
SLA due and at-risk times are computed by ``core.sla`` (see ``resolvers.sla``) and stored, so the
queue sorts and the escalation outbox schedules on plain indexed columns.
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
    from models.partner import Partner
    from models.patient import Patient
    from models.staff import Staff

CHANNELS = ("hotline", "front_desk", "nurse_station", "web_form", "app", "wechat", "email", "vip_adviser", "partner",
            "survey")  # survey: opened by a survey answer under its threshold
CATEGORIES = ("enquiry", "request", "complaint", "suggestion")
ROOT_CAUSES = ("people", "process", "place", "equipment", "other")
STATUSES = ("new", "acknowledged", "investigating", "waiting_on_patient", "resolved", "feedback_recorded", "closed")
OPEN_STATUSES = ("new", "acknowledged", "investigating", "waiting_on_patient")
STOPPED_STATUSES = ("resolved", "feedback_recorded", "closed")
EVENT_KINDS = ("created", "transition", "reply", "internal_note", "handover", "assignment", "level_change",
               "feedback", "contact_attempt", "attachment")


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
    # Who opened it, so that the opener keeps seeing its status after a handover: one of the three
    opened_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="opened_tickets", null=True, on_delete=fields.RESTRICT)
    opened_by_partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="opened_tickets", null=True, on_delete=fields.RESTRICT)
    opened_by_patient = fields.BooleanField(default=False, db_default=False)  # through the portal
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID | None
        contact_id: uuid.UUID | None
        owner_id: uuid.UUID | None
        assignee_id: uuid.UUID | None
        department_id: uuid.UUID | None
        opened_by_id: uuid.UUID | None
        opened_by_partner_id: uuid.UUID | None

    class Meta:
        table = "ticket"
        # Each list's page read in its order from an index, not sorted from every ticket of the institution (migration
        # 0039): ``tickets`` newest first (by id) or by creation or last change (``updated_at`` also the ticket
        # subscription's poll), ``myOpenedTickets`` and ``partnerTickets`` (tests/api/test_list_indexes.py).
        indexes = (
            Index(fields=("institution_id", "next_due_at")),
            Index(fields=("institution_id", "department_id", "status")),
            Index(fields=("institution_id", "patient_id")),
            Index(fields=("institution_id", "id")),
            Index(fields=("institution_id", "created_at", "id")),
            Index(fields=("institution_id", "updated_at", "id")),
            Index(fields=("institution_id", "opened_by_id", "id")),
            Index(fields=("institution_id", "opened_by_partner_id", "id")),
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
