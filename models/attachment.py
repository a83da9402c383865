"""Files attached to tickets: metadata here, the (sealed) bytes behind ``core.storage``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.staff import Staff
    from models.ticket import Ticket


class Attachment(TenantModel):
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="attachments", on_delete=fields.RESTRICT)
    filename = EncryptedField()  # names often carry the patient's name
    content_type = fields.CharField(max_length=100)
    size = fields.IntField()  # of the plaintext, in bytes
    sha256 = fields.CharField(max_length=64)  # of the plaintext
    storage_key = fields.CharField(max_length=64, unique=True)
    uploaded_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="attachments", null=True, on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        ticket_id: uuid.UUID
        uploaded_by_id: uuid.UUID | None

    class Meta:
        table = "attachment"
