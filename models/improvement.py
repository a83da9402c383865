"""The service-improvement list: problems found in tickets, surveys and internal checks."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.institution import Department
    from models.staff import Staff
    from models.ticket import Ticket

IMPROVEMENT_STATUSES = ("open", "in_progress", "done", "cancelled")
IMPROVEMENT_SOURCES = ("ticket", "survey", "internal_check")


class ImprovementItem(TenantModel):
    """A service problem on the improvement list: who fixes it, how, by when.

    Organisational text (a problem, a measure), not a patient's: kept in clear so that it can be
    searched and reported on. Linked tickets carry the patient-specific detail.
    """

    problem = fields.CharField(max_length=500)
    measure = fields.CharField(max_length=1000, default="")
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="improvement_items", on_delete=fields.RESTRICT)
    deadline = fields.DateField()
    status = fields.CharField(max_length=16, default="open")
    source = fields.CharField(max_length=16, default="ticket")
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="improvement_items", null=True, on_delete=fields.RESTRICT)
    # A survey finding cited (source survey): a questionnaire's key and a month of the item's department,
    # aggregates only, never one response (an anonymous answer must not be citable on its own).
    survey_questionnaire_key = fields.UUIDField(null=True)
    survey_month = fields.CharField(max_length=7, null=True)  # "2026-12"
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        department_id: uuid.UUID
        created_by_id: uuid.UUID | None

    class Meta:
        table = "improvement_item"
        indexes = (Index(fields=("institution_id", "status", "deadline")),)


class ImprovementTicket(TenantModel):
    item: fields.ForeignKeyRelation[ImprovementItem] = fields.ForeignKeyField(
        "careloop.ImprovementItem", related_name="ticket_links", on_delete=fields.RESTRICT)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="improvement_links", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        item_id: uuid.UUID
        ticket_id: uuid.UUID

    class Meta:
        table = "improvement_ticket"
        unique_together = (("item", "ticket"),)
