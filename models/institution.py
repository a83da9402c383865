"""Institutions (tenants), their wrapped data keys and their departments."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from core.ids import uuid7
from models.base import TenantModel

INSTITUTION_KINDS = ("hospital", "clinic", "dental", "checkup", "nursing", "eldercare")


class Institution(Model):
    id = fields.UUIDField(primary_key=True, default=uuid7)
    name = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=20)
    time_zone = fields.CharField(max_length=64, default="Asia/Shanghai")
    created_at = fields.DatetimeField(auto_now_add=True)

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

    class Meta:
        table = "department"
        unique_together = (("institution", "name"),)
