"""An institution's SLA: targets per ticket level, and the business calendar they count on."""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel

CLOCKS = ("calendar", "business")


class SlaPolicy(TenantModel):
    """First-response and resolution targets of one level, in minutes of its clock."""

    level = fields.SmallIntField()
    first_response_minutes = fields.IntField()
    resolution_minutes = fields.IntField()
    clock = fields.CharField(max_length=10)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    class Meta:
        table = "sla_policy"
        unique_together = (("institution", "level"),)


class BusinessCalendar(TenantModel):
    """Working hours per weekday (ISO, Monday = 1), public holidays and make-up working days.

    ``week`` maps a weekday number to a list of ``["08:00", "12:00"]`` intervals, local time in
    the institution's zone. Make-up days use ``workday_hours``.
    """

    week: dict[str, list[list[str]]] = fields.JSONField()
    workday_hours: list[list[str]] = fields.JSONField()
    holidays: list[str] = fields.JSONField()
    workdays: list[str] = fields.JSONField()
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "business_calendar"
        unique_together = (("institution",),)
