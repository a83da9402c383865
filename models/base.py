"""What every careloop row shares: an application-generated UUID and its institution."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from core.ids import uuid7


class TenantModel(Model):
    id = fields.UUIDField(primary_key=True, default=uuid7)
    # Typed as any model: naming Institution here would make base and institution import each other.
    institution: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "careloop.Institution", related_name=False, on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    if TYPE_CHECKING:  # the column Tortoise adds for the foreign key
        institution_id: uuid.UUID

    class Meta:
        abstract = True
