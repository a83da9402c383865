"""Schedules (FHIR Schedule) of a clinician or a resource, and their exceptions.

Slots (FHIR Slot) are computed, never stored one by one: a schedule's sessions per weekday, cut
into ``slot_minutes`` slots with ``capacity`` places each, on the days the institution's business
calendar is open; a leave removes the slots it overlaps, an extra session adds slots.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.institution import Department
    from models.staff import Staff

SCHEDULE_KINDS = ("clinician", "resource")  # a doctor; a dental chair, a home-care team, a room
EXCEPTION_KINDS = ("leave", "extra")


class Schedule(TenantModel):
    """``week`` maps an ISO weekday ("1" = Monday) to ``[["08:00", "12:00"], ...]`` sessions, local
    time in the institution's zone. Make-up working days of the calendar use Monday's sessions."""

    name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=10)
    clinician: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="schedules", null=True, on_delete=fields.RESTRICT)
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="schedules", on_delete=fields.RESTRICT)
    week: dict[str, list[list[str]]] = fields.JSONField()
    slot_minutes = fields.IntField()
    capacity = fields.IntField()  # places per slot
    active = fields.BooleanField(default=True)
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        clinician_id: uuid.UUID | None
        department_id: uuid.UUID

    class Meta:
        table = "schedule"
        indexes = (Index(fields=("institution_id", "department_id", "active")),)


class ScheduleException(TenantModel):
    """A leave (no slots from ``starts_at`` to ``ends_at``) or an extra session (slots there, with
    ``capacity`` places each or the schedule's). The reason is organisational, kept in clear."""

    schedule: fields.ForeignKeyRelation[Schedule] = fields.ForeignKeyField(
        "careloop.Schedule", related_name="exceptions", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=8)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    capacity = fields.IntField(null=True)
    reason = fields.CharField(max_length=200, default="")
    cancelled_at = fields.DatetimeField(null=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    if TYPE_CHECKING:
        schedule_id: uuid.UUID

    class Meta:
        table = "schedule_exception"
        indexes = (Index(fields=("institution_id", "schedule_id", "starts_at")),)
