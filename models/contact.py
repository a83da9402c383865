"""A patient's family members and emergency contacts."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.patient import Patient

RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "guardian", "friend", "other")


class Contact(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="contacts", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=100)
    relationship = fields.CharField(max_length=16)
    phone = EncryptedField(null=True)
    phone_bidx = fields.CharField(max_length=64, null=True, db_index=True)
    is_emergency = fields.BooleanField(default=False)
    may_receive_information = fields.BooleanField(default=False)
    notes = EncryptedField(null=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID

    class Meta:
        table = "contact"
        indexes = (Index(fields=("institution_id", "patient_id")),)
