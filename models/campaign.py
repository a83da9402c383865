"""Campaigns: one message to a segment or a cohort, previewed, then sent in batches with progress."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel

if TYPE_CHECKING:
    from models.staff import Staff

CAMPAIGN_STATUSES = ("draft", "sending", "completed", "cancelled")


class Campaign(TenantModel):
    name = fields.CharField(max_length=100)
    purpose = fields.CharField(max_length=10)  # greeting or campaign
    cause = fields.CharField(max_length=32, default="campaign")
    subject = fields.CharField(max_length=200, default="")  # the campaign's own text, a template like
    body = fields.TextField()  # the institution's (names, dates, places and the unsubscribe link only)
    audience: dict[str, str] = fields.JSONField()  # segment / department / code, as the filter was given
    status = fields.CharField(max_length=10, default="draft")
    recipients = fields.IntField(default=0)  # patients in the audience when sending began
    queued = fields.IntField(default=0)
    refused: dict[str, int] = fields.JSONField(default=dict)  # count per refusal reason
    cursor = fields.CharField(max_length=60, null=True)  # the last patient id queued: batches resume here
    author: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="campaigns", on_delete=fields.RESTRICT)
    # Four eyes (the institutions' approval rule for using customer information): someone other than the author
    # approves a draft before it is started; both null until then (migration 0050).
    approved_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="campaigns_approved", null=True, on_delete=fields.RESTRICT)
    approved_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        author_id: uuid.UUID
        approved_by_id: uuid.UUID | None

    class Meta:
        table = "campaign"
