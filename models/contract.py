"""Service contracts (FHIR Contract): the agreement, its immutable versions, their items and signatures.

A contract is one term of service with one client (a patient). What was agreed lives in versions:
version 1 is the original, each amendment a new version that says what changed and takes effect on a
date. A version is written while it is a draft and frozen once sent for signature; the database itself
refuses to change a frozen version's terms or items (migration 0019). Renewal opens the next term as a
new contract (``renewal_of``). Money is in integer minor units of the contract's currency.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.contact import Contact
    from models.institution import Department
    from models.partner import Partner
    from models.patient import Patient
    from models.service_item import ServiceItem, ServiceItemPrice
    from models.staff import Staff

# draft -> sent (for signature) -> active -> suspended -> active ... -> terminated; active or suspended ->
# expired at the end date; renewed when the next term has been signed; revoked: terminated before its first day,
# never in force (its term stays as agreed: a term never ends before it starts). FHIR: draft, offered, executed,
# (disputed), terminated, (expired), renewed, revoked.
CONTRACT_STATUSES = ("draft", "sent", "active", "suspended", "terminated", "expired", "renewed", "revoked")
# A version: draft (editable), sent (frozen, collecting signatures), signed (every party signed), withdrawn
# (a sent version given up before all signed), superseded is not a state: versions stay as signed.
VERSION_STATUSES = ("draft", "sent", "signed", "withdrawn")
BILLING_PERIODS = ("monthly", "quarterly", "yearly")
PARTIES = ("institution", "client", "guarantor", "partner")
SIGNER_KINDS = ("staff", "patient", "contact", "partner")
SIGNING_METHODS = ("portal", "in_person", "on_paper")


class Contract(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="contracts", on_delete=fields.RESTRICT)
    number = fields.CharField(max_length=32)  # human reference, unique in the institution
    title = fields.CharField(max_length=200)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="contracts", null=True, on_delete=fields.RESTRICT)
    guarantor: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "careloop.Contact", related_name="guaranteed_contracts", null=True, on_delete=fields.RESTRICT)
    partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="contracts", null=True, on_delete=fields.RESTRICT)
    renewal_of: fields.ForeignKeyNullableRelation[Contract] = fields.ForeignKeyField(
        "careloop.Contract", related_name="renewals", null=True, on_delete=fields.RESTRICT)
    currency = fields.CharField(max_length=3)
    status = fields.CharField(max_length=10, default="draft")
    start_on = fields.DateField()  # the term, from version 1 (an amendment may move the end)
    end_on = fields.DateField()
    current_version = fields.IntField(default=1)  # the newest version in force or being prepared
    activated_at = fields.DatetimeField(null=True)
    suspended_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)  # terminated or expired
    status_reason = fields.CharField(max_length=200, null=True)  # why suspended or terminated, no health data
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="contracts_created", null=True, on_delete=fields.RESTRICT)
    version = fields.IntField(default=1)  # optimistic lock of this row
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        department_id: uuid.UUID | None
        guarantor_id: uuid.UUID | None
        partner_id: uuid.UUID | None
        renewal_of_id: uuid.UUID | None
        created_by_id: uuid.UUID | None

    class Meta:
        table = "contract"
        unique_together = (("institution", "number"),)
        indexes = (Index(fields=("institution_id", "patient_id", "start_on")),
                   Index(fields=("institution_id", "status", "end_on")))


class ContractVersion(TenantModel):
    """The terms as agreed at one version. Frozen from ``sent`` on (the database enforces it)."""

    contract: fields.ForeignKeyRelation[Contract] = fields.ForeignKeyField(
        "careloop.Contract", related_name="versions", on_delete=fields.RESTRICT)
    number = fields.IntField()
    status = fields.CharField(max_length=10, default="draft")
    effective_on = fields.DateField()  # version 1: the start; an amendment: when it takes effect
    end_on = fields.DateField()
    billing_period = fields.CharField(max_length=10, default="monthly")
    deposit = fields.BigIntField(default=0)
    period_total = fields.BigIntField(default=0)  # sum of the items' totals per billing period
    notice_days = fields.IntField(default=30)
    auto_renew = fields.BooleanField(default=False)
    rights_duties = fields.TextField()  # both parties' rights and duties, the institution's standard text
    clauses = EncryptedField(null=True)  # special clauses: often about the client's health, sealed
    change_summary = fields.TextField(null=True)  # an amendment: what changed and why (no health data)
    document_sha256 = fields.CharField(max_length=64, null=True)  # of the rendered PDF sent for signature
    document_key = fields.CharField(max_length=64, null=True)  # its sealed bytes in storage
    document_size = fields.IntField(null=True)
    sent_at = fields.DatetimeField(null=True)
    signed_at = fields.DatetimeField(null=True)  # when the last required party signed
    created_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="contract_versions", null=True, on_delete=fields.RESTRICT)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        contract_id: uuid.UUID
        created_by_id: uuid.UUID | None

    class Meta:
        table = "contract_version"
        unique_together = (("contract", "number"),)


class ContractItem(TenantModel):
    """A catalogue item sold at one price version: ``quantity`` units per billing period."""

    contract_version: fields.ForeignKeyRelation[ContractVersion] = fields.ForeignKeyField(
        "careloop.ContractVersion", related_name="items", on_delete=fields.RESTRICT)
    service_item: fields.ForeignKeyRelation[ServiceItem] = fields.ForeignKeyField(
        "careloop.ServiceItem", related_name="contract_items", on_delete=fields.RESTRICT)
    price: fields.ForeignKeyRelation[ServiceItemPrice] = fields.ForeignKeyField(
        "careloop.ServiceItemPrice", related_name="contract_items", on_delete=fields.RESTRICT)
    position = fields.IntField()
    code = fields.CharField(max_length=32)  # as signed, whatever the catalogue says later
    name = fields.CharField(max_length=100)
    quantity = fields.IntField()
    frequency = fields.CharField(max_length=10)
    unit_price = fields.BigIntField()
    period_total = fields.BigIntField()  # quantity x unit_price
    delivered_by_partner = fields.BooleanField(default=False)  # the contract's care partner delivers it

    if TYPE_CHECKING:
        contract_version_id: uuid.UUID
        service_item_id: uuid.UUID
        price_id: uuid.UUID

    class Meta:
        table = "contract_item"
        unique_together = (("contract_version", "position"),)


class ContractSignature(TenantModel):
    """One party's signature of one version, bound to the SHA-256 of the exact document signed."""

    contract_version: fields.ForeignKeyRelation[ContractVersion] = fields.ForeignKeyField(
        "careloop.ContractVersion", related_name="signatures", on_delete=fields.RESTRICT)
    party = fields.CharField(max_length=12)
    signer_kind = fields.CharField(max_length=10)
    staff: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="contract_signatures", null=True, on_delete=fields.RESTRICT)
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "careloop.Contact", related_name="contract_signatures", null=True, on_delete=fields.RESTRICT)
    witness: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="contract_witnessed", null=True, on_delete=fields.RESTRICT)
    signer_name = fields.CharField(max_length=100)  # as signed (a contact's or a partner's name)
    method = fields.CharField(max_length=10)
    signed_at = fields.DatetimeField()
    document_sha256 = fields.CharField(max_length=64)

    if TYPE_CHECKING:
        contract_version_id: uuid.UUID
        staff_id: uuid.UUID | None
        contact_id: uuid.UUID | None
        witness_id: uuid.UUID | None

    class Meta:
        table = "contract_signature"
        unique_together = (("contract_version", "party"),)
