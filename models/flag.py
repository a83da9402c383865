"""Alerts on a patient's file (FHIR Flag): shown wherever the patient is looked up and on check-in.

The kind and period are part of the file's identity; the detail is sealed and read under the class
its kind belongs to (``policies.fields.FLAG_DETAIL_CLASS``): the front desk reads "large print,
accompanied" on a special-needs flag, never the text of an allergy.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.patient import Patient
    from models.staff import Staff

FLAG_KINDS = ("vip", "special_needs", "fall_risk", "allergy", "clinical_alert", "difficult_payer")
FLAG_STATUSES = ("active", "inactive", "entered_in_error")  # FHIR Flag


class Flag(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="flags", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=16)
    status = fields.CharField(max_length=16, default="active")
    detail = EncryptedField(null=True)
    starts_on = fields.DateField(null=True)
    ends_on = fields.DateField(null=True)  # open-ended when null
    author: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="flags_raised", null=True, on_delete=fields.RESTRICT)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        author_id: uuid.UUID | None

    class Meta:
        table = "flag"
        indexes = (Index(fields=("institution_id", "patient_id", "status")),)
