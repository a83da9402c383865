"""Care partners: organisations, their API clients and access tokens, and per-patient grants.

A partner reaches a patient only through a grant (purpose, expiry) that stands while the patient's
consent to share with that partner stands (``models.consent``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from models.base import TenantModel
from models.fields import TagsField

if TYPE_CHECKING:
    from models.patient import Patient
    from models.staff import Staff


class Partner(TenantModel):
    """A home-care company, lab or rehab centre the institution shares data with."""

    name = fields.CharField(max_length=100)
    is_active = fields.BooleanField(default=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update

    class Meta:
        table = "partner"
        unique_together = (("institution", "name"),)


class PartnerClient(TenantModel):
    """One API client of a partner: a secret (only its keyed hash), the most its tokens may carry,
    a request budget per minute, and optionally the only operation documents it may send."""

    partner: fields.ForeignKeyRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="clients", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=100)
    secret_hash = fields.CharField(max_length=64, unique=True)
    scopes = TagsField()
    rate_limit_per_minute = fields.IntField(default=60)
    documents_only = fields.BooleanField(default=False)
    revoked_at = fields.DatetimeField(null=True)

    if TYPE_CHECKING:
        partner_id: uuid.UUID

    class Meta:
        table = "partner_client"


class PartnerDocument(TenantModel):
    """An operation document a restricted client may send, by the SHA-256 of its text."""

    client: fields.ForeignKeyRelation[PartnerClient] = fields.ForeignKeyField(
        "careloop.PartnerClient", related_name="documents", on_delete=fields.RESTRICT)
    sha256 = fields.CharField(max_length=64)

    if TYPE_CHECKING:
        client_id: uuid.UUID

    class Meta:
        table = "partner_document"
        unique_together = (("client", "sha256"),)


class PartnerToken(TenantModel):
    """A short-lived access token (at most an hour): its keyed hash and the scopes granted."""

    client: fields.ForeignKeyRelation[PartnerClient] = fields.ForeignKeyField(
        "careloop.PartnerClient", related_name="tokens", on_delete=fields.RESTRICT)
    token_hash = fields.CharField(max_length=64, unique=True)
    scopes = TagsField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    if TYPE_CHECKING:
        client_id: uuid.UUID

    class Meta:
        table = "partner_token"


class PartnerGrant(TenantModel):
    """Staff let a partner reach one patient, for a purpose, until a time."""

    partner: fields.ForeignKeyRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="grants", on_delete=fields.RESTRICT)
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="partner_grants", on_delete=fields.RESTRICT)
    purpose = fields.CharField(max_length=200)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="partner_grants", on_delete=fields.RESTRICT)

    if TYPE_CHECKING:
        partner_id: uuid.UUID
        patient_id: uuid.UUID
        created_by_id: uuid.UUID

    class Meta:
        table = "partner_grant"
        indexes = (Index(fields=("institution_id", "partner_id", "patient_id")),
                   Index(fields=("institution_id", "patient_id")))


class PartnerUsage(Model):
    """Requests per client and minute: the rate limit's counter, and the partner's usage report."""

    id = fields.BigIntField(primary_key=True)
    institution_id = fields.UUIDField()
    client_id = fields.UUIDField()
    window_start = fields.DatetimeField()
    requests = fields.IntField(default=0)
    throttled = fields.IntField(default=0)

    class Meta:
        table = "partner_usage"
        unique_together = (("client_id", "window_start"),)
