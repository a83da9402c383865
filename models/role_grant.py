"""Role grants that give patient data: each waits for a compliance officer's review."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.staff import Staff


# No class docstring: Tortoise would make it the table's comment, and the migration would have to follow it.
class RoleGrant(TenantModel):
    granted_by: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="role_grants_made", on_delete=fields.RESTRICT)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="role_grants_received", on_delete=fields.RESTRICT)
    role = fields.CharField(max_length=32)
    reviewed_at = fields.DatetimeField(null=True)
    reviewed_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="role_grant_reviews", null=True, on_delete=fields.RESTRICT)
    review_outcome = fields.CharField(max_length=16, null=True)
    review_note = fields.CharField(max_length=1000, null=True)  # about staff and roles, never patient data

    if TYPE_CHECKING:
        granted_by_id: uuid.UUID
        staff_id: uuid.UUID
        reviewed_by_id: uuid.UUID | None

    class Meta:
        table = "role_grant"
        indexes = (Index(fields=("institution_id", "reviewed_at")),)
