"""A patient's consents: to be contacted (channels, on the file) and to share with each partner.

The patient manages them in the self-service portal, or staff record what the patient said.
Every change is an audit event of its own (action ``consent``, reason ``given`` or
``withdrawn``); withdrawing consent to share revokes that partner's grants on the patient at
once, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from audit import writer
from audit.events import Action, AuditRecord, Outcome
from models import Partner, PartnerConsent, PartnerGrant
from resolvers import access
from resolvers.access import PatientView
from resolvers.context import Context

CONTACT_CONSENT_FIELDS = frozenset({"contact_consent", "contact_channels", "contact_purposes"})


async def set_sharing(ctx: Context, patient_id: uuid.UUID | None, partner_id: uuid.UUID | None,
                      granted: bool) -> PartnerConsent:
    decision = await access.authorize(ctx, "consent", "update", action=Action.CONSENT,
                                      resource_type="partner_consent", patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.CONSENT, field="patientId")
    # by a role that records consents, on a file it reaches (not one another role of the account reaches)
    await access.require_section_reached(ctx, view, "consent", act="update", action=Action.CONSENT,
                                         resource_type="partner_consent")
    partner = await access.find_in_institution(ctx, Partner, partner_id, action=Action.CONSENT,
                                               resource_type="partner", field="partnerId")
    async with access.file_transaction(ctx, view.row.id, action=Action.CONSENT):
        row, created = await PartnerConsent.get_or_create(
            institution_id=ctx.institution_id, patient_id=view.row.id, partner_id=partner.id,
            defaults={"granted": granted})
        if not created:
            await PartnerConsent.filter(id=row.id).update(granted=granted, updated_at=datetime.now(UTC))
        fields = {"share_with_partner"}
        if not granted:
            revoked = await PartnerGrant.filter(patient_id=view.row.id, partner_id=partner.id,
                                                revoked_at=None).update(revoked_at=datetime.now(UTC))
            if revoked:
                fields.add("partner_grant.revoked_at")
        record = access.write_record(ctx, Action.CONSENT, "partner_consent", row.id, patient_id=view.row.id,
                                     fields=frozenset(fields), decision=decision)
        await writer.append([replace(record, reason="given" if granted else "withdrawn")])
    return await PartnerConsent.get(id=row.id)


async def of_patient(ctx: Context, view: PatientView) -> list[PartnerConsent]:
    """Recorded consents to share (one per partner asked), read with the file's contact class; a
    partner sees only its own, never which other partners the patient deals with."""
    access.require_class(ctx, view, "contact")
    consents = await ctx.require_loaders().consents_by_patient.load(view.row.id)
    partner_id = ctx.require_principal().partner_id
    return consents if partner_id is None else [c for c in consents if c.partner_id == partner_id]


def contact_consent_record(ctx: Context, view_id: uuid.UUID, written: frozenset[str], rule: str) -> AuditRecord | None:
    """A change of the consent to be contacted, recorded as a consent event besides the update's."""
    changed = written & CONTACT_CONSENT_FIELDS
    if not changed:
        return None
    return AuditRecord(ctx.institution_id, ctx.actor, Action.CONSENT, "contact_consent", Outcome.ALLOWED,
                       ctx.request, resource_id=view_id, patient_id=view_id, fields_read=changed, policy_rule=rule)
