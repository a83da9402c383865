"""Care plans (FHIR CarePlan): goals and planned activities for a patient, made by a clinician.

Activities due on a date (a call on day 7, a re-visit at 3 months) become follow-up tasks on that
date (``models.follow_up``). Goals and activity descriptions are clinical: sealed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.institution import Department
    from models.patient import Patient
    from models.staff import Staff
    from models.visit import Visit

PLAN_STATUSES = ("draft", "active", "completed", "revoked")  # FHIR CarePlan
ACTIVITY_KINDS = ("call", "revisit", "education", "medication", "rehabilitation", "other")
ACTIVITY_STATUSES = ("scheduled", "completed", "cancelled")  # FHIR CarePlan.activity.detail.status


class CarePlan(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="care_plans", on_delete=fields.RESTRICT)
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="care_plans", null=True, on_delete=fields.RESTRICT)
    author: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="care_plans", on_delete=fields.RESTRICT)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="care_plans", null=True, on_delete=fields.RESTRICT)
    status = fields.CharField(max_length=10, default="active")
    title = EncryptedField()
    goals = EncryptedField(null=True)
    starts_on = fields.DateField()
    ends_on = fields.DateField(null=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        visit_id: uuid.UUID | None
        author_id: uuid.UUID
        department_id: uuid.UUID | None

    class Meta:
        table = "care_plan"
        indexes = (Index(fields=("institution_id", "patient_id", "status")),)


class CarePlanActivity(TenantModel):
    plan: fields.ForeignKeyRelation[CarePlan] = fields.ForeignKeyField(
        "careloop.CarePlan", related_name="activities", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=16)
    due_on = fields.DateField()
    description = EncryptedField(null=True)
    status = fields.CharField(max_length=10, default="scheduled")

    if TYPE_CHECKING:
        plan_id: uuid.UUID

    class Meta:
        table = "care_plan_activity"
        indexes = (Index(fields=("institution_id", "plan_id")),)
