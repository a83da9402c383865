"""A contract version sent for signature, its parties' signatures, and the signed document.

- ``send``: the open draft version is rendered to PDF (``core.contract_document``), sealed with the institution's key
  bound to the version's row (as ticket attachments are), stored, and the version becomes SENT: frozen (the database
  refuses later changes of its terms and items) with the document's SHA-256, storage key, size and time. Version 1
  moves the contract from DRAFT to SENT (``contracts.on_version_sent``). Sending and signing are for a client whose
  file is active: a closed one (archived, deceased; files closed before a death ended contracts and an archive waited
  for them) is BAD_USER_INPUT at the contract's id, nothing written.
- ``sign``: staff record a party's signature (the institution's needs ``contract.status: update`` as well: admins and
  finance; the client's, the guarantor's and the partner's are signed in person or on paper, witnessed by the staff
  member recording them); ``sign_mine``: a patient signs their own contract's client party in the portal. Every
  signature names the SHA-256 of the document its signer saw, which must be the version's: nobody signs a document
  other than the one stored. A party signs a version once. When every required party has signed (the institution,
  the client, the guarantor and the partner when the contract names them) the version becomes SIGNED and
  ``contracts.on_version_signed`` activates the contract or applies the amendment, in the same transaction.
- ``withdraw``: a SENT version not yet signed by every party is withdrawn (its signatures stay on record). Version 1
  withdrawn: the contract goes back to DRAFT with a new draft version, a copy of the withdrawn terms, to correct and
  send again. An amendment withdrawn: the contract stays as it stands under its signed terms (a new amendment may be
  drafted).
- ``download``: the stored document, opened and checked against the version's SHA-256 on every download: a file
  that does not open or does not match is refused (DOCUMENT_TAMPERED, on the audit trail) and nothing is served.
  The read is on the audit trail, durably, before a byte leaves. The document shows the fees and the clauses:
  staff need ``contract.terms: read`` and ``contract.clauses: read``; the patient reads their own; a partner reads
  the document of a contract naming it as a party.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from audit import writer
from audit.events import Action, AuditRecord, Outcome
from core.contract_document import ContractDocument, DocumentItem, render
from core.crypto import DecryptionError, field_aad
from core.errors import ILLEGAL_TRANSITION, STALE_VERSION, BadUserInput, CareloopError, Conflict, Forbidden
from core.ids import uuid7
from core.money import format_amount
from core.principal import PARTNER, PATIENT, STAFF
from core.validation import Problems
from models import Contact, Institution, Partner, Patient, ServiceItem, Staff
from models.contract import Contract, ContractItem, ContractSignature, ContractVersion
from policies.guard import Decision
from resolvers import access
from resolvers import contract as contracts
from resolvers.context import Context
from resolvers.contract import ContractView, VersionView
from resolvers.versioning import bumped

log = logging.getLogger("careloop.contracts")

PARTIES = ("institution", "client", "guarantor", "partner")
STAFF_METHODS = ("in_person", "on_paper")  # a signature staff record; the portal is the patient's own
OPEN = ("draft", "sent", "active", "suspended")  # a contract that has not ended
_SHA256 = re.compile(r"[0-9a-f]{64}")

# Reason codes (``extensions.reason``) of refusals.
STALE = STALE_VERSION
NO_DRAFT = "no_draft_version"
EFFECTIVE_IN_PAST = "effective_in_past"
ILLEGAL = ILLEGAL_TRANSITION
NOT_SENT = "version_not_sent"
WITHDRAWN = "version_withdrawn"
SIGNED = "version_signed"
ALREADY = "already_signed"
MISMATCH = "document_mismatch"
RENEWAL_EXISTS = "renewal_exists"
# What ``contracts.writing`` refuses on a closed file (archived, deceased): a version sent or signed
SENT_OR_SIGNED = "sending and signing contracts"


class DocumentTampered(CareloopError):
    """The stored document does not open or does not match the SHA-256 recorded when it was sent."""

    code = "DOCUMENT_TAMPERED"
    default_message = "The stored document does not match the document sent for signature; it is not served."


@dataclass(frozen=True)
class SignatureView:
    row: ContractSignature
    version: VersionView
    witness_name: str | None = None  # the staff member who witnessed and recorded it, as named today


@dataclass(frozen=True)
class Document:
    version: VersionView
    filename: str
    data: bytes


def _now() -> datetime:
    return datetime.now(UTC)


def _refusal(kind: type[CareloopError], message: str, reason: str, field: str) -> CareloopError:
    return kind(message, field=field, reason=reason)


def _stale() -> CareloopError:
    return _refusal(Conflict, "expectedVersion: the contract changed since you read it; read it again.", STALE,
                    "expectedVersion")


def _aad(ctx: Context, version_id: uuid.UUID) -> bytes:
    return field_aad(ctx.institution_id, "contract_version", "document", version_id)


# -- the document ----------------------------------------------------------------------------------------------


async def document_of(ctx: Context, contract: Contract, version: ContractVersion) -> ContractDocument:
    """What a version's document shows, read from the database (clauses opened)."""
    currency = contract.currency

    def money(minor: int) -> str:
        return f"{currency} {format_amount(minor, currency)}"

    institution = await Institution.get(id=ctx.institution_id)
    patient = await Patient.get(id=contract.patient_id, institution_id=ctx.institution_id)
    guarantor = None if contract.guarantor_id is None else await Contact.get(id=contract.guarantor_id,
                                                                             institution_id=ctx.institution_id)
    partner = None if contract.partner_id is None else await Partner.get(id=contract.partner_id,
                                                                         institution_id=ctx.institution_id)
    items = await ContractItem.filter(institution_id=ctx.institution_id, contract_version_id=version.id
                                      ).order_by("position")
    standards = dict(await ServiceItem.filter(institution_id=ctx.institution_id,
                                              id__in=[i.service_item_id for i in items]).values_list("id", "standard"))
    clauses = None if version.clauses is None else access.open_sealed(ctx, "contract_version", "clauses", version.id,
                                                                      version.clauses)
    return ContractDocument(
        institution=institution.name, number=contract.number, title=contract.title, version=version.number,
        client=patient.full_name, start_on=contract.start_on, end_on=version.end_on,
        effective_on=version.effective_on, billing_period=version.billing_period,
        period_total=money(version.period_total), deposit=money(version.deposit), notice_days=version.notice_days,
        auto_renew=version.auto_renew, rights_duties=version.rights_duties,
        items=tuple(DocumentItem(code=i.code, name=i.name, standard=standards.get(i.service_item_id),
                                 quantity=i.quantity, frequency=i.frequency, unit_price=money(i.unit_price),
                                 period_total=money(i.period_total), delivered_by_partner=i.delivered_by_partner)
                    for i in items),
        guarantor=None if guarantor is None else guarantor.name, partner=None if partner is None else partner.name,
        clauses=clauses, change_summary=version.change_summary)


def required_parties(contract: Contract) -> tuple[str, ...]:
    """Who must sign: the institution and the client, and the guarantor and the partner when named."""
    return ("institution", "client") + (("guarantor",) if contract.guarantor_id else ()) + \
        (("partner",) if contract.partner_id else ())


# -- send --------------------------------------------------------------------------------------------------------


async def send(ctx: Context, contract_id: uuid.UUID | None, expected_version: int) -> ContractView:
    """Send the open draft version for signature: rendered, sealed, stored, frozen."""
    decision = await access.authorize(ctx, "contract", "update", action=Action.UPDATE, resource_type="contract",
                                      resource_id=contract_id)
    view = await contracts.find(ctx, contract_id, Action.UPDATE, "contractId")
    row = view.row
    if row.version != expected_version:
        raise _stale()
    draft = await ContractVersion.filter(institution_id=ctx.institution_id, contract_id=row.id, status="draft"
                                         ).order_by("-number").first()
    if draft is None:
        raise _refusal(Conflict, "contractId: the contract has no draft version to send.", NO_DRAFT, "contractId")
    _check_contract_open(row, "contractId")
    await contracts.check_renewed_term_running(ctx, row, "contractId")
    await _check_not_retroactive(ctx, row, draft, "contractId")
    document = dataclasses.replace(await document_of(ctx, row, draft), nonce=secrets.token_hex(16))
    data = await asyncio.to_thread(render, document)  # CPU work off the event loop
    digest, key = hashlib.sha256(data).hexdigest(), uuid.uuid4().hex
    async with contracts.writing(ctx, view, Action.UPDATE, active=SENT_OR_SIGNED) as patient_id:
        locked = await Contract.filter(id=row.id, institution_id=ctx.institution_id).select_for_update().first()
        version = await ContractVersion.filter(id=draft.id, institution_id=ctx.institution_id
                                               ).select_for_update().first()
        if locked is None or version is None or locked.version != expected_version or version.status != "draft":
            raise _stale()
        await contracts.check_renewed_term_running(ctx, locked, "contractId")
        # The draft as rendered is the draft as it stands now (no edit slipped in between): else read it again.
        if dataclasses.replace(await document_of(ctx, locked, version), nonce=document.nonce) != document:
            raise _stale()
        sealed = ctx.require_keys().seal_bytes(data, _aad(ctx, version.id))
        # Bytes first: a failure after this leaves an unreferenced file, never a version without its document.
        await ctx.services.storage.put(key, sealed)
        await ContractVersion.filter(id=version.id, status="draft").update(
            status="sent", document_sha256=digest, document_key=key, document_size=len(data), sent_at=_now())
        await contracts.on_version_sent(ctx, locked, version)
        await _settle(ctx, row.id, "draft", {"status": "sent"})
        await writer.append([access.write_record(
            ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
            fields=frozenset({"status", f"version.{version.number}.sent", "document"}), decision=decision)])
    return ContractView(await Contract.get(id=row.id, institution_id=ctx.institution_id), view.partner_only)


async def _settle(ctx: Context, contract_id: uuid.UUID, stands: str | tuple[str, ...], columns: dict[str, Any]
                  ) -> int:
    """The original terms re-issued after a withdrawn version 1 (version 2 or later of a contract never active) move
    the contract as version 1 would: SENT when sent, ACTIVE when signed. The contract module's hooks do it for
    version 1; this covers what they leave (a no-op when the hook moved the contract already)."""
    statuses = (stands,) if isinstance(stands, str) else stands
    return await Contract.filter(id=contract_id, institution_id=ctx.institution_id, status__in=statuses).update(
        **columns, updated_at=_now())


def _check_contract_open(contract: Contract, field: str) -> None:
    """The original terms are sent and signed while the contract is a draft or sent (version 1, or the copy that
    replaced a withdrawn version 1); an amendment while the contract runs. Never once it has ended."""
    if contract.status not in OPEN:
        raise _refusal(Conflict, f"{field}: not while the contract is {contract.status}.", ILLEGAL, field)


# -- sign --------------------------------------------------------------------------------------------------------


async def sign(ctx: Context, data: dict[str, Any]) -> SignatureView:
    """A staff member records a party's signature (the institution's own, or the client's, the guarantor's or the
    partner's given in person or on paper and witnessed by them)."""
    contract_id = data.get("contract_id")
    principal = ctx.require_principal()
    decision = await access.authorize(ctx, "contract_signature", "create", action=Action.CREATE,
                                      resource_type="contract_signature", resource_id=contract_id)
    if principal.kind != STAFF:  # a patient signs in the portal (myContractSign); a partner's is recorded by staff
        await access.deny(ctx, Action.CREATE, "contract_signature", contract_id, reason="forbidden")
        raise Forbidden()
    party, method = str(data.get("party")), str(data.get("method"))
    if party == "institution":  # signing for the institution: those who run its contracts (admin, finance)
        await access.authorize(ctx, "contract.status", "update", action=Action.CREATE,
                               resource_type="contract_signature", resource_id=contract_id)
    contact_id = data.get("contact_id")
    _check_signing_shape(data, party, method, contact_id)
    view = await contracts.find(ctx, contract_id, Action.CREATE, "input.contractId")
    contract = view.row
    me = await Staff.get(id=principal.user_id, institution_id=ctx.institution_id)
    columns: dict[str, Any]
    if party == "institution":
        columns = {"signer_kind": "staff", "staff_id": me.id, "signer_name": me.name}
    elif party == "client":  # the client's name: _record reads it from the file the contract is on when signed
        columns = {"signer_kind": "patient", "witness_id": principal.user_id}
    elif party == "guarantor":
        if contract.guarantor_id is None:
            raise _refusal(BadUserInput, "input.party: the contract names no guarantor.", "no_guarantor",
                           "input.party")
        if contact_id is None or contact_id != contract.guarantor_id:
            if contact_id is not None:  # another contact named (anyone's, or none): recorded as a draft records it
                await access.deny(ctx, Action.CREATE, "contact", contact_id, contract.patient_id, reason="not_found")
            raise _refusal(BadUserInput, "input.contactId: the contract's guarantor signs for the guarantor.",
                           "not_the_guarantor", "input.contactId")
        contact = await Contact.get(id=contract.guarantor_id, institution_id=ctx.institution_id)
        columns = {"signer_kind": "contact", "contact_id": contact.id, "witness_id": principal.user_id,
                   "signer_name": contact.name}
    else:
        if contract.partner_id is None:
            raise _refusal(BadUserInput, "input.party: the contract names no care partner.", "no_partner",
                           "input.party")
        partner = await Partner.get(id=contract.partner_id, institution_id=ctx.institution_id)
        columns = {"signer_kind": "partner", "witness_id": principal.user_id, "signer_name": partner.name}
    return await _record(ctx, view, data, party, method, columns, decision,
                         None if party == "institution" else me.name)


def _check_signing_shape(data: dict[str, Any], party: str, method: str, contact_id: Any) -> None:
    """Every problem of a staff-recorded signature's input at once, before the contract is looked up."""
    problems = Problems()
    if party not in PARTIES:
        problems.add("input.party", "invalid_choice", "one of INSTITUTION, CLIENT, GUARANTOR, PARTNER.")
    if method not in STAFF_METHODS:
        problems.add("input.method", "method_not_allowed", "IN_PERSON or ON_PAPER (a patient signs in the portal "
                                                           "themselves).")
    with problems.collect("input.documentSha256"):
        _digest(data.get("document_sha256"))
    if contact_id is not None and party != "guarantor" and not problems.has("input.party"):
        problems.add("input.contactId", "contact_not_allowed", "only the guarantor signs as a contact.")
    problems.check()


async def sign_mine(ctx: Context, data: dict[str, Any]) -> SignatureView:
    """The signed-in patient signs their own contract as the client, in the portal."""
    contract_id = data.get("contract_id")
    principal = ctx.require_principal()
    decision = await access.authorize(ctx, "contract_signature", "create", action=Action.CREATE,
                                      resource_type="contract_signature", resource_id=contract_id)
    if principal.kind != PATIENT:
        await access.deny(ctx, Action.CREATE, "contract_signature", contract_id, reason="forbidden")
        raise Forbidden()
    view = await contracts.find(ctx, contract_id, Action.CREATE, "input.contractId")
    if view.row.patient_id != principal.patient_id:  # reach says so already; a second lock on the door
        raise await access.not_found(ctx, Action.CREATE, "contract", contract_id, "input.contractId")
    return await _record(ctx, view, data, "client", "portal", {"signer_kind": "patient"}, decision)


async def _record(ctx: Context, view: ContractView, data: dict[str, Any], party: str, method: str,
                  columns: dict[str, Any], decision: Decision, witness: str | None = None) -> SignatureView:
    contract = view.row
    number = data.get("version_number")
    version = None if not isinstance(number, int) else await ContractVersion.get_or_none(
        institution_id=ctx.institution_id, contract_id=contract.id, number=number)
    if version is None:
        raise await access.not_found(ctx, Action.CREATE, "contract_version", contract.id, "input.versionNumber")
    digest = _digest(data.get("document_sha256"))
    _check_signable(contract, version)
    await contracts.check_renewed_term_running(ctx, contract, "input.contractId")
    await _check_not_retroactive(ctx, contract, version, "input.versionNumber")
    if digest != version.document_sha256:
        raise _refusal(BadUserInput, "input.documentSha256: not the document sent for signature; download it "
                                     "again.", MISMATCH, "input.documentSha256")
    signature_id = uuid7()
    try:
        async with contracts.writing(ctx, view, Action.CREATE, "input.contractId",
                                     active=SENT_OR_SIGNED) as patient_id:
            locked = await Contract.filter(id=contract.id, institution_id=ctx.institution_id
                                           ).select_for_update().first()
            current = await ContractVersion.filter(id=version.id, institution_id=ctx.institution_id
                                                   ).select_for_update().first()
            if locked is None or current is None:
                raise _stale()
            _check_signable(locked, current)
            await _check_renewal_kept(ctx, locked, current)
            await contracts.check_renewed_term_running(ctx, locked, "input.contractId")
            signed = set(await ContractSignature.filter(institution_id=ctx.institution_id,
                                                        contract_version_id=current.id).values_list("party", flat=True))
            if party in signed:
                raise _already(party)
            if party == "client":
                columns = {**columns, "signer_name": await _client_name(ctx, patient_id)}
            row = await ContractSignature.create(
                id=signature_id, institution_id=ctx.institution_id, contract_version_id=current.id, party=party,
                method=method, signed_at=_now(), document_sha256=digest, **columns)
            await writer.append([access.write_record(
                ctx, Action.CREATE, "contract_signature", signature_id, patient_id=patient_id,
                fields=frozenset({"party", "method", "signer", "document_sha256"}), decision=decision)])
            if set(required_parties(locked)) <= signed | {party}:
                await ContractVersion.filter(id=current.id, status="sent").update(status="signed", signed_at=_now())
                current.status = "signed"
                await contracts.on_version_signed(ctx, locked, current, decision=decision)
                if await _settle(ctx, contract.id, ("draft", "sent"), {"status": "active", "activated_at": _now()}):
                    await writer.append([access.write_record(
                        ctx, Action.UPDATE, "contract", contract.id, patient_id=patient_id,
                        fields=frozenset({"status", "activated_at"}), decision=decision)])
            # As this signature left them (read under the lock, before anyone else signs).
            fresh = await Contract.get(id=contract.id, institution_id=ctx.institution_id)
            version_row = await ContractVersion.get(id=version.id, institution_id=ctx.institution_id)
    except IntegrityError:  # the same party signing at the same moment elsewhere
        raise _already(party) from None
    return SignatureView(row, VersionView(version_row, ContractView(fresh, view.partner_only)), witness)


async def _client_name(ctx: Context, patient_id: uuid.UUID) -> str:
    """The client's name as it is on the file the contract is on when signed (held by ``contracts.writing``): a
    merge since the contract was found moved it to the survivor, whose client signs (found in review: the signature
    carried the merged file's name, read before)."""
    return str((await Patient.get(id=patient_id, institution_id=ctx.institution_id)).full_name)


def _digest(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _SHA256.fullmatch(text):
        raise _refusal(BadUserInput, "input.documentSha256: the document's SHA-256, 64 hexadecimal digits.",
                       "invalid_hash", "input.documentSha256")
    return text


async def _check_not_retroactive(ctx: Context, contract: Contract, version: ContractVersion, field: str) -> None:
    """An amendment (a version of a running contract) takes effect no earlier than the day it is sent and signed:
    ``contractAmend`` checks its date when drafted, and a draft sent or signed days later would reprice periods
    already delivered and billed (found in review). It is withdrawn and amended again with a later date."""
    if contract.status in ("active", "suspended") and version.effective_on < await contracts.local_today(ctx):
        raise _refusal(Conflict, f"{field}: the amendment would take effect before today; withdraw it and amend "
                                 "again with a later effectiveOn.", EFFECTIVE_IN_PAST, field)


def _check_signable(contract: Contract, version: ContractVersion) -> None:
    reasons = {"draft": (NOT_SENT, "has not been sent for signature"), "withdrawn": (WITHDRAWN, "was withdrawn"),
               "signed": (SIGNED, "is signed by every party already")}
    if version.status in reasons:
        reason, what = reasons[version.status]
        raise _refusal(Conflict, f"input.versionNumber: the version {what}.", reason, "input.versionNumber")
    _check_contract_open(contract, "input.contractId")


async def _check_renewal_kept(ctx: Context, contract: Contract, version: ContractVersion) -> None:
    """An amendment moving the end of a term whose next term is prepared (a renewal not terminated nor revoked) is
    never signed:
    the next term starts the day after this one ends as it stood when renewed. Found in review: extended, both terms
    ran at once (the client active twice in the report, their fees twice as revenue, visits delivered against
    both); shortened, the service stopped between them. Checked under the contract's lock, which a renewal takes
    too; the amendment is withdrawn, or the renewal terminated first."""
    if contract.status in ("active", "suspended") and version.end_on != contract.end_on and await Contract.filter(
            institution_id=ctx.institution_id, renewal_of_id=contract.id).exclude(
            status__in=contracts.ENDED_EARLY).exists():
        raise _refusal(Conflict, "input.versionNumber: the amendment moves the end of a term whose next term is "
                                 "prepared; withdraw it, or terminate the renewal first.", RENEWAL_EXISTS,
                       "input.versionNumber")


def _already(party: str) -> CareloopError:
    return _refusal(Conflict, f"input.party: the {party} signed this version already.", ALREADY, "input.party")


# -- withdraw ----------------------------------------------------------------------------------------------------


async def withdraw(ctx: Context, contract_id: uuid.UUID | None, number: int, expected_version: int) -> ContractView:
    """Withdraw a sent version before every party signed (see the module's docstring for what follows)."""
    decision = await access.authorize(ctx, "contract", "update", action=Action.UPDATE, resource_type="contract",
                                      resource_id=contract_id)
    view = await contracts.find(ctx, contract_id, Action.UPDATE, "contractId")
    row = view.row
    if row.version != expected_version:
        raise _stale()
    version = await ContractVersion.get_or_none(institution_id=ctx.institution_id, contract_id=row.id, number=number)
    if version is None:
        raise await access.not_found(ctx, Action.UPDATE, "contract_version", row.id, "versionNumber")
    _check_withdrawable(version)
    async with contracts.writing(ctx, view, Action.UPDATE) as patient_id:
        locked = await Contract.filter(id=row.id, institution_id=ctx.institution_id).select_for_update().first()
        current = await ContractVersion.filter(id=version.id, institution_id=ctx.institution_id
                                               ).select_for_update().first()
        if locked is None or current is None or locked.version != expected_version:
            raise _stale()
        _check_withdrawable(current)
        await ContractVersion.filter(id=current.id, status="sent").update(status="withdrawn")
        columns: dict[str, Any] = {}
        written = {f"version.{current.number}.withdrawn"}
        if current.number == 1 or locked.status in ("draft", "sent"):
            copy = await _copy_as_draft(ctx, locked, current)
            columns = {"status": "draft", "current_version": copy}
            written |= {"status", f"version.{copy}"}
        else:
            newest = await ContractVersion.filter(institution_id=ctx.institution_id, contract_id=row.id,
                                                  status="signed").order_by("-number").first()
            if newest is not None:
                columns = {"current_version": newest.number}
        changed = await Contract.filter(id=row.id, institution_id=ctx.institution_id, version=expected_version
                                        ).update(**columns, version=bumped(), updated_at=_now())
        if changed != 1:
            raise _stale()
        await writer.append([access.write_record(ctx, Action.UPDATE, "contract", row.id, patient_id=patient_id,
                                                 fields=frozenset(written), decision=decision)])
    return ContractView(await Contract.get(id=row.id, institution_id=ctx.institution_id), view.partner_only)


def _check_withdrawable(version: ContractVersion) -> None:
    if version.status != "sent":
        reason = {"draft": NOT_SENT, "withdrawn": WITHDRAWN, "signed": SIGNED}.get(version.status, ILLEGAL)
        raise _refusal(Conflict, "versionNumber: only a version sent for signature and not yet signed by every "
                                 "party can be withdrawn.", reason, "versionNumber")


async def _copy_as_draft(ctx: Context, contract: Contract, version: ContractVersion) -> int:
    """A new draft version with the withdrawn one's terms and items (clauses sealed again under its own id)."""
    newest = await ContractVersion.filter(institution_id=ctx.institution_id, contract_id=contract.id
                                          ).order_by("-number").first()
    number = (newest.number if newest else version.number) + 1
    copy_id = uuid7()
    clauses = None if version.clauses is None else access.open_sealed(ctx, "contract_version", "clauses", version.id,
                                                                      version.clauses)
    principal = ctx.require_principal()
    await ContractVersion.create(
        id=copy_id, institution_id=ctx.institution_id, contract_id=contract.id, number=number, status="draft",
        effective_on=version.effective_on, end_on=version.end_on, billing_period=version.billing_period,
        deposit=version.deposit, period_total=version.period_total, notice_days=version.notice_days,
        auto_renew=version.auto_renew, rights_duties=version.rights_duties,
        clauses=access.seal(ctx, "contract_version", "clauses", copy_id, clauses),
        change_summary=version.change_summary, created_by_id=principal.user_id if principal.kind == STAFF else None)
    items = await ContractItem.filter(institution_id=ctx.institution_id, contract_version_id=version.id)
    await ContractItem.bulk_create([
        ContractItem(id=uuid7(), institution_id=ctx.institution_id, contract_version_id=copy_id,
                     service_item_id=i.service_item_id, price_id=i.price_id, position=i.position, code=i.code,
                     name=i.name, quantity=i.quantity, frequency=i.frequency, unit_price=i.unit_price,
                     period_total=i.period_total, delivered_by_partner=i.delivered_by_partner) for i in items])
    return number


# -- reading signatures ------------------------------------------------------------------------------------------


async def signatures_of(ctx: Context, version: VersionView) -> list[SignatureView]:
    """A version's signatures in the order they were given (at most one per party: no paging needed), batched
    across the versions of a request; noted as a read of the contract. A partner's view has none: they name the
    client's family and the staff who witnessed (found in review: a partner read the guarantor's name)."""
    if version.contract.partner_only:
        return []
    loaders = ctx.require_loaders()
    rows = await loaders.signatures_by_version.load(version.row.id)
    witnesses = [row.witness_id for row in rows if row.witness_id is not None]
    names = {staff.id: staff.name for staff in await loaders.staff.load_many(witnesses) if staff is not None}
    contracts.note_read(ctx, version.contract)
    return [SignatureView(row, version, names.get(row.witness_id) if row.witness_id else None) for row in rows]


async def list_for(ctx: Context, contract_id: uuid.UUID | None, number: int) -> list[SignatureView]:
    """The signatures of one version of a contract in reach."""
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           resource_id=contract_id)
    view = await contracts.find(ctx, contract_id, Action.READ, "contractId")
    version = await contracts.version_of(ctx, view, number)
    if version is None:
        raise await access.not_found(ctx, Action.READ, "contract_version", view.row.id, "versionNumber")
    return await signatures_of(ctx, version)


# -- the document, downloaded ------------------------------------------------------------------------------------


async def download(ctx: Context, contract_id: uuid.UUID | None, number: int | None) -> Document:
    """A version's document, checked against its SHA-256; the read durable on the audit trail before it is
    returned."""
    principal = ctx.require_principal()
    await access.authorize(ctx, "contract", "read", action=Action.READ, resource_type="contract",
                           resource_id=contract_id)
    view = await contracts.find(ctx, contract_id, Action.READ, "contractId")
    contract = view.row
    if principal.kind == PARTNER and contract.partner_id != principal.partner_id:
        raise await access.not_found(ctx, Action.READ, "contract", contract.id, "contractId")
    # The document shows the fees and the clauses: whoever may not read them through the API may not download
    # it either, a partner named on the contract included (found in review: it got what its view refuses).
    for obj in (contracts.TERMS, contracts.CLAUSES):
        await access.authorize(ctx, obj, "read", action=Action.READ, resource_type="contract",
                               resource_id=contract.id, patient_id=contract.patient_id)
    version = None if number is None else await ContractVersion.get_or_none(
        institution_id=ctx.institution_id, contract_id=contract.id, number=number)
    if version is None or version.document_key is None or version.document_sha256 is None:
        raise await access.not_found(ctx, Action.READ, "contract_version", contract.id, "number")
    try:
        sealed = await ctx.services.storage.get(version.document_key)
        data = ctx.require_keys().open_bytes(sealed, _aad(ctx, version.id))
    except (OSError, DecryptionError):
        data = None
    if data is None or len(data) != version.document_size or \
            hashlib.sha256(data).hexdigest() != version.document_sha256:
        await _tampered(ctx, contract, version)
        raise DocumentTampered()
    ctx.reads.note("contract", contract.id, contract.patient_id, field_class="document",
                   field_name=f"contract_version.{version.number}.document", rule=ctx.decide("contract", "read").rule)
    await access.flush_reads(ctx)  # durable before a byte leaves
    return Document(VersionView(version, view), f"{contract.number}-v{version.number}.pdf", data)


async def _tampered(ctx: Context, contract: Contract, version: ContractVersion) -> None:
    """A document that failed its check is on the audit trail (as an error, naming no content) and in the log."""
    log.warning("contract document failed its integrity check, request %s", ctx.request.request_id)
    ctx.recorded = True
    await writer.append([AuditRecord(ctx.institution_id, ctx.actor, Action.READ, "contract_version", Outcome.ERROR,
                                     ctx.request, resource_id=version.id, patient_id=contract.patient_id,
                                     reason="document_tampered")])
