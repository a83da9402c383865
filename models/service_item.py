"""The institution's service catalogue (FHIR ChargeItemDefinition) and each item's price versions.

Visits record procedures with an item's code; contracts sell items at a price version. A price never
changes in place: a new version takes effect on a date, and a contract keeps the version it was signed
with. Organisational, not about a patient: kept in clear. Money is in integer minor units (cents, fen).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel

if TYPE_CHECKING:
    from models.staff import Staff

UNITS = ("visit", "hour", "day", "session", "month", "item")
FREQUENCIES = ("daily", "weekly", "per_visit", "monthly")


class ServiceItem(TenantModel):
    """An entry of the catalogue (orthodontics, implant, home nursing visit, bathing assistance...)."""

    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=100)
    active = fields.BooleanField(default=True)
    description = fields.TextField(null=True)
    standard = fields.TextField(null=True)  # the service standard: what is delivered, how, by whom
    # database defaults: the columns were added to a catalogue that could hold items (migration 0019)
    unit = fields.CharField(max_length=10, default="visit", db_default="visit")
    frequencies = fields.CharField(max_length=64, default="per_visit", db_default="per_visit")  # FREQUENCIES, joined
    version = fields.IntField(default=1, db_default=1)

    class Meta:
        table = "service_item"
        unique_together = (("institution", "code"),)


class ServiceItemPrice(TenantModel):
    """One price version of an item: in force from ``effective_from`` until the next version's date."""

    item: fields.ForeignKeyRelation[ServiceItem] = fields.ForeignKeyField(
        "careloop.ServiceItem", related_name="prices", on_delete=fields.RESTRICT)
    number = fields.IntField()  # 1, 2, ... per item
    unit_price = fields.BigIntField()  # minor units
    currency = fields.CharField(max_length=3)  # ISO 4217
    effective_from = fields.DateField()
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="service_prices", null=True, on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        item_id: uuid.UUID
        created_by_id: uuid.UUID | None

    class Meta:
        table = "service_item_price"
        unique_together = (("item", "number"), ("item", "effective_from"))
        indexes = (Index(fields=("institution_id", "item_id", "effective_from")),)
