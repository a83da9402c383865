"""A patient's consent to share their file with a partner: the standing state. Every change is
also an audit event (action ``consent``), which is the history."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from models.base import TenantModel

if TYPE_CHECKING:
    from models.partner import Partner
    from models.patient import Patient


class PartnerConsent(TenantModel):
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="partner_consents", on_delete=fields.RESTRICT)
    partner: fields.ForeignKeyRelation[Partner] = fields.ForeignKeyField(
        "careloop.Partner", related_name="consents", on_delete=fields.RESTRICT)
    granted = fields.BooleanField()
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        patient_id: uuid.UUID
        partner_id: uuid.UUID

    class Meta:
        table = "partner_consent"
        unique_together = (("patient", "partner"),)
