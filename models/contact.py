"""A patient's family members and emergency contacts."""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel
from models.fields import EncryptedField

RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "guardian", "friend", "other")


class Contact(TenantModel):
    patient = fields.ForeignKeyField("careloop.Patient", related_name="contacts", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=100)
    relationship = fields.CharField(max_length=16)
    phone = EncryptedField(null=True)
    phone_bidx = fields.CharField(max_length=64, null=True, db_index=True)
    is_emergency = fields.BooleanField(default=False)
    may_receive_information = fields.BooleanField(default=False)
    notes = EncryptedField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "contact"
