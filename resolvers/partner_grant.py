"""Grants: staff let a partner reach one patient's file, for a stated purpose, until a time.

A grant is possible only while the patient's consent to share with that partner stands, and it
lapses the moment the consent is withdrawn (``resolvers.consent`` revokes it; the partner's row
scope checks the consent too). The grant's id is named in every read the partner makes under it,
which is how the accounting of disclosures finds the purpose.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, ConsentRequired
from core.validation import Problems, aware_time, clean_text
from models import Partner, PartnerConsent, PartnerGrant, Patient
from resolvers import access, pagination
from resolvers.context import Context

MAX_GRANT = timedelta(days=366)
CURSOR_KIND = "partner-grant"
OWN_CURSOR_KIND = "partner-own-grant"


async def create(ctx: Context, partner_id: uuid.UUID | None, patient_id: uuid.UUID | None, purpose: str,
                 expires_at: datetime) -> PartnerGrant:
    decision = await access.authorize(ctx, "partner_grant", "create", action=Action.GRANT,
                                      resource_type="partner_grant", patient_id=patient_id)
    problems = Problems()  # the purpose and the expiry together, before the patient and partner are looked up
    text, until = "", expires_at
    with problems.collect("purpose"):
        text = clean_text(purpose, field="purpose", max_length=200, min_length=3)
    with problems.collect("expiresAt"):
        until = _expiry(expires_at)
    problems.check()
    view = await access.find_patient(ctx, patient_id, action=Action.GRANT, field="patientId")
    # by a role that grants, on a file it reaches (found in review: a doctor of department B who also works in
    # finance, which finds every client, granted partners files of every department)
    await access.require_section_reached(ctx, view, "partner_grant", act="create", action=Action.GRANT,
                                         resource_type="partner_grant")
    partner = await access.find_in_institution(ctx, Partner.filter(is_active=True), partner_id, action=Action.GRANT,
                                               resource_type="partner", field="partnerId")
    if not await PartnerConsent.exists(patient_id=view.row.id, partner_id=partner.id, granted=True):
        await access.deny(ctx, Action.GRANT, "partner_grant", None, view.row.id, reason="no_consent")
        raise ConsentRequired(field="patientId")
    async with access.file_transaction(ctx, view.row.id, action=Action.GRANT, active="partner grants"):
        # Locked: a withdrawal committing meanwhile would leave a grant it never revoked.
        consent = await PartnerConsent.filter(patient_id=view.row.id, partner_id=partner.id,
                                              granted=True).select_for_update().first()
        if consent is None:  # withdrawn since the check above: recorded as it records it, once rolled back
            raise access.Refusal(ConsentRequired(field="patientId"), Action.GRANT, "partner_grant", None, view.row.id,
                                 reason="no_consent")
        # The partner locked and read again too: a suspension committing since the check above would leave a
        # suspended partner a new grant (found in review). FOR NO KEY UPDATE, as ``access.lock_file``: it waits
        # for a suspension (and a suspension for it), not for rows being written that reference the partner.
        if await Partner.filter(id=partner.id, is_active=True).select_for_update(no_key=True).first() is None:
            # suspended since: answered as a suspended partner is above, once rolled back
            raise access.Refusal.not_found(Action.GRANT, "partner", partner.id, "partnerId")
        row = await PartnerGrant.create(institution_id=ctx.institution_id, partner_id=partner.id,
                                        patient_id=view.row.id, purpose=text, expires_at=until,
                                        created_by_id=ctx.actor.id)
        await writer.append([access.write_record(ctx, Action.GRANT, "partner_grant", row.id,
                                                 patient_id=view.row.id,
                                                 fields=frozenset({"partner_id", "purpose", "expires_at"}),
                                                 decision=decision)])
    return row


async def end_for_patient(ctx: Context, patient_id: uuid.UUID) -> bool:
    """Inside an archive's or a death's transaction: the file's live grants end with it (found in review: partners
    kept reading a closed file, though the care they were granted it for had ended); whether any did. Staff grant
    again if a partner still needs the file."""
    ended = await PartnerGrant.filter(institution_id=ctx.institution_id, patient_id=patient_id,
                                      revoked_at=None).update(revoked_at=datetime.now(UTC))
    return bool(ended)


async def revoke(ctx: Context, grant_id: uuid.UUID | None) -> PartnerGrant:
    decision = await access.authorize(ctx, "partner_grant", "delete", action=Action.GRANT,
                                      resource_type="partner_grant", resource_id=grant_id)
    row = await _find(ctx, grant_id, Action.GRANT)
    # Only while the grant is on the file it was found on, as contactUpdate writes (``write_over_version(on_file=)``):
    # a merge since moved it to the survivor, where it is found again, in the caller's reach or NOT_FOUND (found in
    # review: revoked there without asking, recorded on the merged file).
    async with in_transaction():
        revoked = await PartnerGrant.filter(id=row.id, revoked_at=None, patient_id=row.patient_id).update(
            revoked_at=datetime.now(UTC))
        if revoked:
            record = access.write_record(ctx, Action.GRANT, "partner_grant", row.id, patient_id=row.patient_id,
                                         fields=frozenset({"revoked_at"}), decision=decision)
            await writer.append([replace(record, reason="revoked")])
    if not revoked:
        if not await PartnerGrant.filter(id=row.id, patient_id=row.patient_id).exists():
            return await revoke(ctx, grant_id)  # moved by a merge
        # revoked already (before, or by a revocation racing this one): nothing changes, so nothing is recorded
        raise Conflict("id: the grant is revoked already.", field="id", reason=ILLEGAL_TRANSITION)
    return await PartnerGrant.get(id=row.id)


async def page(ctx: Context, patient_id: uuid.UUID | None, *, first: int,
               after: str | None, count: bool = False) -> pagination.Page[PartnerGrant]:
    """A patient's grants, standing or not, oldest first."""
    await access.authorize(ctx, "partner_grant", "read", action=Action.READ, resource_type="partner_grant",
                           patient_id=patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, view, "partner_grant", resource_type="partner_grant")
    query = PartnerGrant.filter(institution_id=ctx.institution_id, patient_id=view.row.id)
    page = await pagination.by_id(query, first=first, after=after, kind=CURSOR_KIND, count=count)
    ctx.reads.note("partner_grant", None, view.row.id, rule=ctx.decide("partner_grant", "read").rule)
    return page


async def own_page(ctx: Context, *, first: int, after: str | None, standing_only: bool = False,
                   count: bool = False) -> pagination.Page[PartnerGrant]:
    """The calling partner's grants (every client of it sees them), oldest first: which patients, for what, until
    when, so that a partner learns an access is ending before the file answers NOT_FOUND. ``partner_own_grant:
    read``, a scope of its own: ``partner_grant: read`` lists every partner's grants on a file to staff. Each grant
    read is on the trail of the file it opens, naming the grant the file is open under as the partner's other
    reads of it do (``access.load_file_grants``), so the patient's access report shows the partner looked."""
    decision = await access.authorize(ctx, "partner_own_grant", "read", action=Action.READ,
                                      resource_type="partner_grant")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = PartnerGrant.filter(institution_id=ctx.institution_id, partner_id=ctx.require_principal().partner_id)
    if standing_only:  # as ``standing`` says of a row
        query = query.filter(revoked_at=None, expires_at__gt=datetime.now(UTC))
    page = await pagination.by_id(query, first=first, after=after, kind=OWN_CURSOR_KIND, count=count)
    await access.load_file_grants(ctx, {row.patient_id for _, row in page.items})
    for _, row in page.items:
        ctx.reads.note("partner_grant", row.id, row.patient_id, rule=decision.rule)
        grant = ctx.file_grants.get(row.patient_id)
        if grant:
            ctx.reads.note("partner_grant", row.id, row.patient_id, rule=grant)
    return page


def standing(row: PartnerGrant) -> bool:
    return row.revoked_at is None and row.expires_at > datetime.now(UTC)


async def _find(ctx: Context, grant_id: uuid.UUID | None, action: Action) -> PartnerGrant:
    """A grant on a patient that a role of the caller allowed to revoke grants reaches (``access.section_scope``:
    the caller's whole reach for an account of one role); anything else looks missing."""
    condition = access.section_scope(ctx, "partner_grant", "delete").filter()
    patients = None if condition is None else Patient.filter(condition)
    row = None
    if grant_id is not None and patients is not None:
        row = await PartnerGrant.get_or_none(id=grant_id, institution_id=ctx.institution_id)
        if row is not None and not await patients.filter(id=row.patient_id).exists():
            row = None
    if row is None:
        raise await access.not_found(ctx, action, "partner_grant", grant_id)
    return row


def _expiry(expires_at: datetime) -> datetime:
    expires_at = aware_time(expires_at, "expiresAt")
    now = datetime.now(UTC)
    if not now < expires_at <= now + MAX_GRANT:  # which bound, for a client to say what to fix (found in review)
        raise BadUserInput("expiresAt: in the future, within a year.", field="expiresAt",
                           reason="in_past" if expires_at <= now else "out_of_range")
    return expires_at.astimezone(UTC)
