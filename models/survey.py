"""Distributing surveys: the institution's triggers and settings, and each invitation.

An invitation is one request to answer one questionnaire version, for one cause (``cause_key``:
"visit:<id>", "ticket:<id>", "follow_up:<id>", "campaign:<id>:<patient>"), unique per institution so a
cause never invites twice. Its link is a random token of which only a keyed hash is stored: single use
(``answered``), expiring, bound to this invitation.

For an anonymous questionnaire the invitation keeps only that it was answered, never when, and the
response keeps no link back (see ``models.questionnaire_response``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.contact import Contact
    from models.follow_up import FollowUpTask
    from models.institution import Department
    from models.patient import Patient
    from models.questionnaire import Questionnaire
    from models.staff import Staff
    from models.ticket import Ticket
    from models.visit import Visit

TRIGGER_EVENTS = ("visit_finished", "ticket_closed", "follow_up_completed")
INVITATION_STATUSES = ("requested", "sent", "answered", "expired", "cancelled", "refused")


class SurveySettings(TenantModel):
    """One row per institution (the defaults when absent)."""

    fatigue_days = fields.IntField(default=30)  # a patient is asked at most once in this many days
    satisfaction_target = fields.IntField(default=92)  # percent satisfied
    min_cell = fields.IntField(default=5)  # no figure from fewer responses than this
    link_valid_days = fields.IntField(default=14)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "survey_settings"
        unique_together = (("institution",),)


class SurveyTrigger(TenantModel):
    """A rule such as: ask questionnaire Q the day after a finished outpatient visit in department D, and
    remind after 3 days."""

    questionnaire_key = fields.UUIDField()  # the active version at the moment of inviting
    event = fields.CharField(max_length=20)
    visit_kind = fields.CharField(max_length=16, null=True)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="survey_triggers", null=True, on_delete=fields.RESTRICT)
    delay_hours = fields.IntField(default=24)
    reminder_after_days = fields.IntField(null=True)
    active = fields.BooleanField(default=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        department_id: uuid.UUID | None

    class Meta:
        table = "survey_trigger"
        indexes = (Index(fields=("institution_id", "event", "active")),)


class SurveyInvitation(TenantModel):
    questionnaire: fields.ForeignKeyRelation[Questionnaire] = fields.ForeignKeyField(
        "careloop.Questionnaire", related_name="invitations", on_delete=fields.RESTRICT)
    cause_key = fields.CharField(max_length=120)
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="survey_invitations", on_delete=fields.RESTRICT)
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "careloop.Contact", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    follow_up_task: fields.ForeignKeyNullableRelation[FollowUpTask] = fields.ForeignKeyField(
        "careloop.FollowUpTask", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    clinician: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="survey_invitations", null=True, on_delete=fields.RESTRICT)
    trigger: fields.ForeignKeyNullableRelation[SurveyTrigger] = fields.ForeignKeyField(
        "careloop.SurveyTrigger", related_name="invitations", null=True, on_delete=fields.RESTRICT)
    status = fields.CharField(max_length=10, default="requested")
    token_hash = fields.CharField(max_length=64, null=True, unique=True)
    send_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    answered = fields.BooleanField(default=False)
    answered_at = fields.DatetimeField(null=True)  # identified questionnaires only
    reminded_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        questionnaire_id: uuid.UUID
        patient_id: uuid.UUID
        contact_id: uuid.UUID | None
        visit_id: uuid.UUID | None
        ticket_id: uuid.UUID | None
        follow_up_task_id: uuid.UUID | None
        department_id: uuid.UUID | None
        clinician_id: uuid.UUID | None
        trigger_id: uuid.UUID | None

    class Meta:
        table = "survey_invitation"
        unique_together = (("institution", "cause_key"),)
        indexes = (Index(fields=("institution_id", "patient_id", "created_at")),
                   Index(fields=("institution_id", "questionnaire_id", "status")),
                   Index(fields=("status", "send_at")))
