"""Appointments (FHIR Appointment): a patient's place in a slot of a schedule.

Capacity is enforced by the database, not by a count read beforehand: a booked appointment holds a
numbered ``seat`` (1..capacity) of its slot, and ``(schedule, slot_start, seat)`` is unique, so two
bookings of the last place cannot both commit. Cancelling frees the seat (``NULL`` never collides).
Rescheduling cancels the appointment (reason ``rescheduled``) and books a new one that names it in
``rescheduled_from``: the history stays.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.partner import Partner
    from models.patient import Patient
    from models.schedule import Schedule
    from models.staff import Staff
    from models.visit import Visit

# FHIR Appointment statuses; arrived turns it into a visit, noshow is recorded once the slot passed.
APPOINTMENT_STATUSES = ("booked", "arrived", "cancelled", "noshow")
BOOKING_CHANNELS = ("front_desk", "phone", "web", "app", "kiosk", "portal", "partner")
CANCELLATION_REASONS = ("patient", "institution", "rescheduled", "other")


class Appointment(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="appointments", on_delete=fields.RESTRICT)
    schedule: fields.ForeignKeyRelation[Schedule] = fields.ForeignKeyField(
        "careloop.Schedule", related_name="appointments", on_delete=fields.RESTRICT)
    slot_start = fields.DatetimeField()
    slot_end = fields.DatetimeField()
    seat = fields.IntField(null=True)  # held while booked or arrived
    status = fields.CharField(max_length=10, default="booked")
    channel = fields.CharField(max_length=12)
    reason = EncryptedField(null=True)  # clinical, sealed like a visit's reason
    booked_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="appointments_booked", null=True, on_delete=fields.RESTRICT)
    partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="appointments", null=True, on_delete=fields.RESTRICT)
    rescheduled_from: fields.ForeignKeyNullableRelation[Appointment] = fields.ForeignKeyField(
        "careloop.Appointment", related_name="rescheduled_to", null=True, on_delete=fields.RESTRICT)
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="appointments", null=True, on_delete=fields.RESTRICT)
    arrived_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancellation_reason = fields.CharField(max_length=12, null=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        schedule_id: uuid.UUID
        booked_by_id: uuid.UUID | None
        partner_id: uuid.UUID | None
        rescheduled_from_id: uuid.UUID | None
        visit_id: uuid.UUID | None

    class Meta:
        table = "appointment"
        unique_together = (("schedule", "slot_start", "seat"),)
        indexes = (Index(fields=("institution_id", "schedule_id", "slot_start")),
                   Index(fields=("institution_id", "patient_id", "slot_start")),
                   Index(fields=("institution_id", "status", "slot_end")))
