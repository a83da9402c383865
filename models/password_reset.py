"""One-time codes that let a staff member or a patient set a new password: only a keyed hash is kept."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel

if TYPE_CHECKING:
    from models.patient_account import PatientAccount
    from models.staff import Staff


class PasswordReset(TenantModel):
    """Single use and short-lived, for exactly one of a staff account or a patient account."""

    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="password_resets", null=True, on_delete=fields.RESTRICT)
    patient_account: fields.ForeignKeyNullableRelation[PatientAccount] = fields.ForeignKeyField(
        "careloop.PatientAccount", related_name="password_resets", null=True, on_delete=fields.RESTRICT)
    code_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # The admin or clerk who issued it; null when the patient asked for it themselves
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="issued_password_resets", null=True, on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        staff_id: uuid.UUID | None
        patient_account_id: uuid.UUID | None
        created_by_id: uuid.UUID | None

    class Meta:
        table = "password_reset"
