"""Patients' self-service accounts: invitations, accounts linked to one file, and their sessions."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel

if TYPE_CHECKING:
    from models.patient import Patient
    from models.staff import Staff


class PatientInvitation(TenantModel):
    """A one-time code staff hand a patient to open their account: only its keyed hash is kept."""

    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="invitations", on_delete=fields.RESTRICT)
    code_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="patient_invitations", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        created_by_id: uuid.UUID

    class Meta:
        table = "patient_invitation"


class PatientAccount(TenantModel):
    """Signs in like staff (argon2id, lockout) and reaches exactly one file."""

    patient: fields.OneToOneRelation[Patient] = fields.OneToOneField(
        "careloop.Patient", related_name="account", on_delete=fields.RESTRICT)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=200)
    is_active = fields.BooleanField(default=True)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID

    class Meta:
        table = "patient_account"


class PatientSession(TenantModel):
    account: fields.ForeignKeyRelation[PatientAccount] = fields.ForeignKeyField(
        "careloop.PatientAccount", related_name="sessions", on_delete=fields.RESTRICT)
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    used_after_end_at = fields.DatetimeField(null=True)  # the token's first use once ended: recorded then

    if TYPE_CHECKING:
        account_id: uuid.UUID

    class Meta:
        table = "patient_session"
