"""Institutions (tenants), their wrapped data keys and their departments."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from core.ids import uuid7
from models.base import TenantModel

INSTITUTION_KINDS = ("hospital", "clinic", "dental", "checkup", "nursing", "eldercare")

# How long audit events are kept before they may be archived and removed from the database.
AUDIT_RETENTION_DEFAULT_MONTHS = 72
AUDIT_RETENTION_MIN_MONTHS = 6


class Institution(Model):
    id = fields.UUIDField(primary_key=True, default=uuid7)
    name = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=20)
    time_zone = fields.CharField(max_length=64, default="Asia/Shanghai")
    created_at = fields.DatetimeField(auto_now_add=True)
    # db_default: existing institutions get the default when the column is added.
    audit_retention_months = fields.IntField(default=AUDIT_RETENTION_DEFAULT_MONTHS,
                                             db_default=AUDIT_RETENTION_DEFAULT_MONTHS)
    # Staff whose roles read clinical data must sign in with a second factor (TOTP)
    totp_required = fields.BooleanField(default=False, db_default=False)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    class Meta:
        table = "institution"


class InstitutionKey(TenantModel):
    """An institution data key, wrapped by the master key. Rotation adds a version."""

    version = fields.IntField()
    wrapped_key = fields.BinaryField()

    class Meta:
        table = "institution_key"
        unique_together = (("institution", "version"),)


class Department(TenantModel):
    name = fields.CharField(max_length=100)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    class Meta:
        table = "department"
        unique_together = (("institution", "name"),)
