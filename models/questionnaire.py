"""Survey instruments (FHIR Questionnaire): versioned, immutable once answered.

A questionnaire's versions share ``key``; a version that has a response is never edited (editing makes
the next version), so every figure can say which version it comes from. Texts are per language
(``{"zh-CN": ..., "en": ...}``). ``items`` holds the typed items (see ``core.questionnaire``) and
``scoring`` how a response is scored and when it closes the loop. Organisational text, kept in clear.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.staff import Staff

# FHIR Questionnaire.status
QUESTIONNAIRE_STATUSES = ("draft", "active", "retired")
RESPONDENTS = ("patient", "family", "staff")  # who answers
SUBJECTS = ("visit", "ticket", "follow_up", "department", "clinician", "service")  # what it is about


class Questionnaire(TenantModel):
    key = fields.UUIDField()  # the same across versions
    version = fields.IntField(default=1)
    status = fields.CharField(max_length=10, default="draft")
    title: dict[str, str] = fields.JSONField()
    purpose: dict[str, str] = fields.JSONField(default=dict)
    respondent = fields.CharField(max_length=10, default="patient")
    subject = fields.CharField(max_length=12, default="visit")
    anonymous = fields.BooleanField(default=False)
    items: list[dict[str, Any]] = fields.JSONField()
    scoring: dict[str, Any] = fields.JSONField()
    # Every write to this version (edits in place, only while it has no response, and status changes): the
    # compare-and-set of questionnaireUpdate, questionnaireActivate and questionnaireRetire.
    revision = fields.IntField(default=1)
    template = fields.CharField(max_length=32, null=True)  # the shipped template it was adopted from
    author: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="questionnaires", null=True, on_delete=fields.RESTRICT)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        author_id: uuid.UUID | None

    class Meta:
        table = "questionnaire"
        unique_together = (("institution", "key", "version"),)
        indexes = (Index(fields=("institution_id", "status")),)
