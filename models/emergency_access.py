"""Break-glass: a clinician's time-boxed access to a file outside their reach, with a stated reason."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.patient import Patient
    from models.staff import Staff

JUSTIFIED, UNJUSTIFIED = "justified", "unjustified"
REVIEW_OUTCOMES = (JUSTIFIED, UNJUSTIFIED)


class EmergencyAccess(TenantModel):
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="emergency_accesses", on_delete=fields.RESTRICT)
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="emergency_accesses", on_delete=fields.RESTRICT)
    reason = EncryptedField()  # often clinical: sealed like the file
    expires_at = fields.DatetimeField()
    reviewed_at = fields.DatetimeField(null=True)
    reviewed_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="emergency_reviews", null=True, on_delete=fields.RESTRICT)
    review_outcome = fields.CharField(max_length=16, null=True)
    review_note = EncryptedField(null=True)

    if TYPE_CHECKING:
        staff_id: uuid.UUID
        patient_id: uuid.UUID
        reviewed_by_id: uuid.UUID | None

    class Meta:
        table = "emergency_access"
        indexes = (Index(fields=("institution_id", "staff_id", "expires_at")),
                   Index(fields=("institution_id", "reviewed_at")))
