"""Visits (FHIR Encounter) and the codes recorded on them (procedures from the service catalogue,
``models.service_item``).

A visit's clinical text (reason, what was done, outcome, after-visit instructions, the patient's
feedback, staff notes) is sealed like the patient file. Codes are sealed too; each carries a blind
index of ``system|code`` so that "patients with condition X" is an exact SQL lookup that decrypts
nothing (the equality of two codes within an institution is what that index gives away).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.institution import Department
    from models.partner import Partner
    from models.patient import Patient
    from models.staff import Staff

VISIT_KINDS = ("outpatient", "inpatient", "procedure", "home_care", "check_up", "dental", "phone")
# FHIR Encounter's statuses, with no-show from Appointment (a planned visit the patient did not come to).
VISIT_STATUSES = ("planned", "arrived", "in_progress", "finished", "cancelled", "no_show")
OPEN_VISIT_STATUSES = ("planned", "arrived", "in_progress")
CODE_SYSTEMS = ("icd10", "service")  # WHO ICD-10 for conditions; the institution's catalogue for procedures
CODE_KINDS = ("condition", "procedure")
PROCEDURE_STATUSES = ("pending", "done", "not_done")  # FHIR Procedure: preparation/completed/not-done


class Visit(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="visits", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=16)
    status = fields.CharField(max_length=16, default="planned")
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="visits", null=True, on_delete=fields.RESTRICT)
    clinician: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="visits_led", null=True, on_delete=fields.RESTRICT)
    partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="visits", null=True, on_delete=fields.RESTRICT)  # recorded by a partner
    planned_at = fields.DatetimeField()  # when it was booked for; a walk-in: when it began
    arrived_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    revisit_on = fields.DateField(null=True)  # the re-visit date of the after-visit instructions
    # clinical, sealed
    reason = EncryptedField(null=True)
    summary = EncryptedField(null=True)  # what was done
    outcome = EncryptedField(null=True)
    treatment_plan = EncryptedField(null=True)
    medication_guidance = EncryptedField(null=True)
    rehabilitation = EncryptedField(null=True)
    precautions = EncryptedField(null=True)
    feedback = EncryptedField(null=True)  # the patient's own words on the visit
    internal_note = EncryptedField(null=True)  # staff only, never in the portal
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        department_id: uuid.UUID | None
        clinician_id: uuid.UUID | None
        partner_id: uuid.UUID | None

    class Meta:
        table = "visit"
        indexes = (Index(fields=("institution_id", "patient_id", "planned_at")),
                   Index(fields=("institution_id", "department_id", "status")),
                   Index(fields=("institution_id", "status", "planned_at")))


class VisitStaff(TenantModel):
    """Other staff who took part in a visit."""

    visit: fields.ForeignKeyRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="staff", on_delete=fields.RESTRICT)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="visits_joined", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        visit_id: uuid.UUID
        staff_id: uuid.UUID

    class Meta:
        table = "visit_staff"
        unique_together = (("visit", "staff"),)


class VisitCode(TenantModel):
    """A condition (ICD-10) or a procedure (catalogue) recorded on a visit."""

    visit: fields.ForeignKeyRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="codes", on_delete=fields.RESTRICT)
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="visit_codes", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=10)
    system = fields.CharField(max_length=10)
    code = EncryptedField()
    code_bidx = fields.CharField(max_length=64)
    text = EncryptedField(null=True)  # free text beside the code
    status = fields.CharField(max_length=10, null=True)  # procedures: pending, done, not_done
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    if TYPE_CHECKING:
        visit_id: uuid.UUID
        patient_id: uuid.UUID

    class Meta:
        table = "visit_code"
        indexes = (Index(fields=("institution_id", "code_bidx", "status")),
                   Index(fields=("institution_id", "visit_id")))
