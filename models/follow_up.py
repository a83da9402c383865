"""Follow-up (随访): the institution's rules, the tasks they create (FHIR Task) and each call attempt.

A rule is versioned: changing it writes a new row (``version`` + 1, the same ``rule_key``) and retires
the old one, so a task keeps the version it came from. A task with no owner sits in its department's
pool until a nurse of that department claims it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField, TagsField

if TYPE_CHECKING:
    from models.care_plan import CarePlanActivity
    from models.institution import Department
    from models.patient import Patient
    from models.staff import Staff
    from models.ticket import Ticket
    from models.visit import Visit

ASSIGNEES = ("responsible_nurse", "department_pool")
# FHIR Task statuses: requested (due), accepted (claimed), completed (done), failed (not reached), cancelled.
TASK_STATUSES = ("requested", "accepted", "completed", "failed", "cancelled")
OPEN_TASK_STATUSES = ("requested", "accepted")
CONDITIONS = ("better", "same", "worse")
ATTEMPT_CHANNELS = ("phone", "sms", "wechat", "visit", "video")
ATTEMPT_OUTCOMES = ("reached", "no_answer", "busy", "wrong_number", "declined")


class FollowUpRule(TenantModel):
    rule_key = fields.UUIDField()  # the same across a rule's versions
    version = fields.IntField(default=1)
    active = fields.BooleanField(default=True)  # the newest version of a rule still in force
    name = fields.CharField(max_length=100)
    visit_kind = fields.CharField(max_length=16, null=True)  # any kind when null
    procedure_code = fields.CharField(max_length=32, null=True)  # a service catalogue code
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="follow_up_rules", null=True, on_delete=fields.RESTRICT)
    offsets_days = TagsField()  # "|1|7|30|"
    assignee = fields.CharField(max_length=20, default="responsible_nurse")
    skip_closed_days = fields.BooleanField(default=True)  # a due date on a holiday moves to the next working day
    author: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="follow_up_rules", null=True, on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        department_id: uuid.UUID | None
        author_id: uuid.UUID | None

    class Meta:
        table = "follow_up_rule"
        unique_together = (("institution", "rule_key", "version"),)
        indexes = (Index(fields=("institution_id", "active")),)


class FollowUpTask(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="follow_up_tasks", on_delete=fields.RESTRICT)
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="follow_up_tasks", null=True, on_delete=fields.RESTRICT)
    rule: fields.ForeignKeyNullableRelation[FollowUpRule] = fields.ForeignKeyField(
        "careloop.FollowUpRule", related_name="tasks", null=True, on_delete=fields.RESTRICT)
    activity: fields.ForeignKeyNullableRelation[CarePlanActivity] = fields.ForeignKeyField(
        "careloop.CarePlanActivity", related_name="tasks", null=True, on_delete=fields.RESTRICT)
    due_on = fields.DateField()
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="follow_up_tasks", null=True, on_delete=fields.RESTRICT)
    owner: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="follow_up_tasks", null=True, on_delete=fields.RESTRICT)  # pool when null
    status = fields.CharField(max_length=10, default="requested")
    # the outcome form
    reached = fields.BooleanField(null=True)
    condition = fields.CharField(max_length=8, null=True)
    needs_help = fields.BooleanField(null=True)
    satisfaction = fields.SmallIntField(null=True)  # 1 to 5
    notes = EncryptedField(null=True)
    completed_at = fields.DatetimeField(null=True)
    completed_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="follow_ups_done", null=True, on_delete=fields.RESTRICT)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="follow_up_tasks", null=True, on_delete=fields.RESTRICT)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        visit_id: uuid.UUID | None
        rule_id: uuid.UUID | None
        activity_id: uuid.UUID | None
        department_id: uuid.UUID | None
        owner_id: uuid.UUID | None
        completed_by_id: uuid.UUID | None
        ticket_id: uuid.UUID | None

    class Meta:
        table = "follow_up_task"
        indexes = (Index(fields=("institution_id", "owner_id", "status", "due_on")),
                   Index(fields=("institution_id", "department_id", "status", "due_on")),
                   Index(fields=("institution_id", "patient_id", "status")))


class FollowUpAttempt(TenantModel):
    task: fields.ForeignKeyRelation[FollowUpTask] = fields.ForeignKeyField(
        "careloop.FollowUpTask", related_name="attempts", on_delete=fields.RESTRICT)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="follow_up_attempts", on_delete=fields.RESTRICT)
    at = fields.DatetimeField()
    channel = fields.CharField(max_length=10)
    outcome = fields.CharField(max_length=16)
    note = EncryptedField(null=True)

    if TYPE_CHECKING:
        task_id: uuid.UUID
        staff_id: uuid.UUID

    class Meta:
        table = "follow_up_attempt"
        indexes = (Index(fields=("institution_id", "task_id")),)
