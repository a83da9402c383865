"""Staff accounts, their roles and departments, and their sessions."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.institution import Department


class Staff(TenantModel):
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=100)
    password_hash = fields.CharField(max_length=200)
    is_active = fields.BooleanField(default=True)
    is_demo = fields.BooleanField(default=False)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    password_changed_at = fields.DatetimeField(null=True)
    # RFC 6238 second factor: the shared secret sealed like health data; the last time step used (no replay)
    totp_secret = EncryptedField(null=True)
    totp_enabled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff"


class RoleAssignment(TenantModel):
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="role_assignments", on_delete=fields.RESTRICT)
    role = fields.CharField(max_length=32)

    if TYPE_CHECKING:
        staff_id: uuid.UUID

    class Meta:
        table = "role_assignment"
        unique_together = (("staff", "role"),)


class DepartmentMembership(TenantModel):
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="memberships", on_delete=fields.RESTRICT)
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="memberships", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        staff_id: uuid.UUID
        department_id: uuid.UUID

    class Meta:
        table = "department_membership"
        unique_together = (("staff", "department"),)


class Session(TenantModel):
    """A bearer token's server side: only its keyed hash, never the token."""

    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="sessions", on_delete=fields.RESTRICT)
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    used_after_end_at = fields.DatetimeField(null=True)  # the token's first use once ended: recorded then

    if TYPE_CHECKING:
        staff_id: uuid.UUID

    class Meta:
        table = "session"
