"""Staff accounts, their roles and departments, and their sessions."""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel


class Staff(TenantModel):
    email = fields.CharField(max_length=254, unique=True)
    name = fields.CharField(max_length=100)
    password_hash = fields.CharField(max_length=200)
    is_active = fields.BooleanField(default=True)
    is_demo = fields.BooleanField(default=False)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff"


class RoleAssignment(TenantModel):
    staff = fields.ForeignKeyField("careloop.Staff", related_name="role_assignments", on_delete=fields.RESTRICT)
    role = fields.CharField(max_length=32)

    class Meta:
        table = "role_assignment"
        unique_together = (("staff", "role"),)


class DepartmentMembership(TenantModel):
    staff = fields.ForeignKeyField("careloop.Staff", related_name="memberships", on_delete=fields.RESTRICT)
    department = fields.ForeignKeyField("careloop.Department", related_name="memberships", on_delete=fields.RESTRICT)

    class Meta:
        table = "department_membership"
        unique_together = (("staff", "department"),)


class Session(TenantModel):
    """A bearer token's server side: only its keyed hash, never the token."""

    staff = fields.ForeignKeyField("careloop.Staff", related_name="sessions", on_delete=fields.RESTRICT)
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "session"
