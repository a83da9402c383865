"""The staff notification outbox: escalations of tickets at risk or breached, contracts needing attention."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.contract import Contract
    from models.staff import Staff
    from models.ticket import Ticket


class Notification(TenantModel):
    """The escalation outbox: written with the change that schedules it, delivered at least once.

    ``key`` makes a notification unique (one per ticket, target and breach), so recomputing a
    ticket's SLA never schedules the same escalation twice.
    """

    key = fields.CharField(max_length=120)
    kind = fields.CharField(max_length=32)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="notifications", null=True, on_delete=fields.RESTRICT)
    contract: fields.ForeignKeyNullableRelation[Contract] = fields.ForeignKeyField(
        "careloop.Contract", related_name="notifications", null=True, on_delete=fields.RESTRICT)
    recipient: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="notifications", null=True, on_delete=fields.RESTRICT)
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=200, default="")

    if TYPE_CHECKING:
        ticket_id: uuid.UUID | None
        contract_id: uuid.UUID | None
        recipient_id: uuid.UUID | None

    class Meta:
        table = "notification"
        unique_together = (("institution", "key"),)
        indexes = (Index(fields=("sent_at", "due_at")),)
