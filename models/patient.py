"""The patient file and its care team.

Encrypted columns hold AES-GCM envelopes (``EncryptedField``); ``*_bidx`` columns hold
keyed HMACs of normalised values for exact lookups. Names stay in clear so that the
front desk can search by name prefix.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField, TagsField

if TYPE_CHECKING:
    from models.institution import Department
    from models.staff import Staff

PATIENT_STATUSES = ("active", "archived", "deceased", "merged")
SEXES = ("female", "male", "other", "unknown")
CHANNELS = ("sms", "phone", "email", "wechat", "app", "post")
SEGMENTS = ("vip", "special_needs", "orthodontics", "restoration", "implant", "periodontal")


class Patient(TenantModel):
    # identity
    full_name = fields.CharField(max_length=100)
    # The name as searched: lower case, its pinyin and pinyin initials (names are in clear already)
    name_search = fields.CharField(max_length=400, default="", db_default="")
    sex = fields.CharField(max_length=10, default="unknown")
    birth_date = fields.DateField(null=True)
    occupation = fields.CharField(max_length=100, null=True)
    national_id_type = fields.CharField(max_length=32, null=True)
    national_id = EncryptedField(null=True)
    national_id_bidx = fields.CharField(max_length=64, null=True, db_index=True)
    # contact
    address = EncryptedField(null=True)
    phone = EncryptedField(null=True)
    phone_bidx = fields.CharField(max_length=64, null=True, db_index=True)
    alt_phone = EncryptedField(null=True)
    alt_phone_bidx = fields.CharField(max_length=64, null=True, db_index=True)
    # keyed HMACs of the last 4 digits (front-desk lookup); leakage stated in docs/security.md
    phone_last4_bidx = fields.CharField(max_length=64, null=True)
    alt_phone_last4_bidx = fields.CharField(max_length=64, null=True)
    email = fields.CharField(max_length=254, null=True)
    preferred_channel = fields.CharField(max_length=10, null=True)
    preferred_language = fields.CharField(max_length=16, default="zh-CN")
    contact_consent = fields.BooleanField(default=False)
    contact_channels = TagsField()
    # what the patient may be contacted for (models.communication.PURPOSES); care only until they say more
    contact_purposes = TagsField(default="|care|", db_default="|care|")
    # clinical
    medical_history = EncryptedField(null=True)
    diagnoses = EncryptedField(null=True)
    allergies = EncryptedField(null=True)
    current_medication = EncryptedField(null=True)
    # needs and preferences
    diet_preferences = fields.CharField(max_length=200, null=True)
    activity_preferences = fields.CharField(max_length=200, null=True)
    special_needs = EncryptedField(null=True)
    # segments, status, ownership
    segments = TagsField()
    tags = TagsField()
    status = fields.CharField(max_length=10, default="active", db_index=True)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(

        "careloop.Department", related_name="patients", null=True, on_delete=fields.RESTRICT
    )
    # A duplicate file merged into another: kept, status merged, pointing at the surviving file
    merged_into: fields.ForeignKeyNullableRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="merged_files", null=True, on_delete=fields.RESTRICT)
    merged_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        department_id: uuid.UUID | None
        merged_into_id: uuid.UUID | None

    class Meta:
        table = "patient"
        indexes = (Index(fields=("institution_id", "full_name")), Index(fields=("institution_id", "department_id")),
                   Index(fields=("institution_id", "phone_last4_bidx")),
                   Index(fields=("institution_id", "alt_phone_last4_bidx")))


class CareTeamMember(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="care_team", on_delete=fields.RESTRICT)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="care_assignments", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        staff_id: uuid.UUID

    class Meta:
        table = "care_team_member"
        indexes = (Index(fields=("institution_id", "staff_id", "patient_id")),
                   Index(fields=("institution_id", "patient_id")))
        unique_together = (("patient", "staff"),)
