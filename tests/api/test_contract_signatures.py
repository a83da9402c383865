"""Contracts sent for signature and signed, through the API: the rendered document sealed and frozen, signatures bound
to its SHA-256, every party -> signed and active, the patient signing in the portal, the document checked on every
download (a tampered file refused), withdrawal, and each allowed path's denied twin with nothing written."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pypdf
import pytest
from tortoise.exceptions import IntegrityError, OperationalError

from core.contract_document import render
from core.crypto import field_aad
from core.settings import Settings
from models import AuditEvent, Contract, ContractItem, ContractSignature, ContractVersion
from resolvers.context import Services
from tests.contracts import draft, item_input, make_item
from tests.factories import Response, Tenant, make_patient
from tests.partners import make_partnership, sha256
from tests.patients import denials_since, make_contact, make_partner, mark, open_account

VERSION_FIELDS = "number status documentSha256 sentAt signedAt items { code quantity }"
CONTRACT = f"id number status version currentVersion activatedAt versions {{ {VERSION_FIELDS} }}"
SEND = f"""mutation($contractId: ID!, $expectedVersion: Int!) {{
  contractSend(contractId: $contractId, expectedVersion: $expectedVersion) {{ {CONTRACT} }} }}"""
SIGNATURE = """id versionNumber party signerKind signerName staffId contactId witnessId witnessName method signedAt
  documentSha256"""
SIGN = f"""mutation($input: ContractSignInput!) {{ contractSign(input: $input) {{ {SIGNATURE}
  contract {{ status version activatedAt }} version {{ status signedAt }} }} }}"""
MY_SIGN = f"""mutation($input: MyContractSignInput!) {{ myContractSign(input: $input) {{ {SIGNATURE}
  contract {{ status }} version {{ status }} }} }}"""
WITHDRAW = f"""mutation($contractId: ID!, $versionNumber: Int!, $expectedVersion: Int!) {{
  contractWithdraw(contractId: $contractId, versionNumber: $versionNumber, expectedVersion: $expectedVersion) {{
    {CONTRACT} }} }}"""
SIGNATURES = f"""query($contractId: ID!, $versionNumber: Int!) {{
  contractSignatures(contractId: $contractId, versionNumber: $versionNumber) {{ {SIGNATURE} }} }}"""
REFUSED = (IntegrityError, OperationalError, asyncpg.exceptions.RaiseError)  # SQLite, PostgreSQL
DRAFT_UPDATE = """mutation($contractId: ID!, $input: ContractDraftInput!, $expectedVersion: Int!) {
  contractDraftUpdate(contractId: $contractId, input: $input, expectedVersion: $expectedVersion) { id } }"""
AMEND = f"""mutation($contractId: ID!, $input: ContractAmendInput!, $expectedVersion: Int!) {{
  contractAmend(contractId: $contractId, input: $input, expectedVersion: $expectedVersion) {{ {CONTRACT} }} }}"""
CLAUSES = "低盐饮食，夜间需协助如厕 (low-salt diet, help at night)"


# -- helpers ---------------------------------------------------------------------------------------------------


async def drafted(tenant: Tenant, *, patient_id: uuid.UUID | None = None, guarantor: bool = False,
                  partner_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A draft contract made by finance (a deposit and clauses), with a guarantor and a partner when asked."""
    patient_id = patient_id or await make_patient(tenant, fullName="王秀兰")
    item = await make_item(tenant, name="居家护理 Home nursing", unit_price="120.50")
    fields: dict[str, Any] = {"deposit": {"amount": "3000.00", "currency": "CNY"}, "clauses": CLAUSES}
    if guarantor:
        fields["guarantorContactId"] = str(await make_contact(tenant, patient_id, "李明"))
    if partner_id is not None:
        fields["partnerId"] = str(partner_id)
    made = await draft(tenant, patient_id, [item_input(item, quantity=8, by_partner=partner_id is not None)],
                       role="finance", **fields)
    return {**made, "patient_id": patient_id}


async def send(tenant: Tenant, made: dict[str, Any], role: str = "front_desk") -> dict[str, Any]:
    reply = await tenant.call(role, SEND, contractId=made["id"], expectedVersion=made["version"])
    assert not reply.errors, reply.errors
    return {**made, **reply.data["contractSend"]}


def sha_of(contract: dict[str, Any], number: int = 1) -> str:
    return next(v["documentSha256"] for v in contract["versions"] if v["number"] == number)


async def sign(tenant: Tenant, role: str, contract: dict[str, Any], party: str, method: str = "IN_PERSON",
               number: int = 1, sha: str | None = None, **extra: Any) -> Response:
    return await tenant.call(role, SIGN, input={"contractId": contract["id"], "versionNumber": number,
                                                "party": party, "method": method,
                                                "documentSha256": sha or sha_of(contract, number), **extra})


async def download(tenant: Tenant, token: str, contract_id: str, number: int = 1) -> Any:
    return await tenant.client.get(f"/contracts/{contract_id}/versions/{number}/document",
                                   headers={"authorization": f"Bearer {token}"})


def stored_path(settings: Settings, key: str) -> Path:
    return Path(settings.attachment_dir) / key[:2] / key


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


async def written(tenant: Tenant) -> dict[str, Any]:
    """The contract rows a refused attempt must leave as they were."""
    where = {"institution_id": tenant.id}
    return {"contracts": await Contract.filter(**where).order_by("id").values(),
            "versions": await ContractVersion.filter(**where).order_by("id").values(),
            "items": await ContractItem.filter(**where).order_by("id").values(),
            "signatures": await ContractSignature.filter(**where).order_by("id").values()}


def code_of(reply: Response) -> tuple[str, str | None, str | None]:
    extensions = reply.errors[0]["extensions"]
    return extensions["code"], extensions.get("field"), extensions.get("reason")


# -- sending ---------------------------------------------------------------------------------------------------


async def test_send_renders_seals_stores_and_freezes(tenant: Tenant, settings: Settings) -> None:
    made = await drafted(tenant)
    sent = await send(tenant, made)
    assert sent["status"] == "SENT" and sent["version"] == made["version"] + 1
    [version] = sent["versions"]
    assert version["status"] == "SENT" and version["sentAt"] and version["signedAt"] is None
    row = await ContractVersion.get(contract_id=made["id"], number=1)
    assert row.document_sha256 == version["documentSha256"] and row.document_key and row.document_size

    # Sealed at rest: the file holds neither the PDF nor the client's name in clear.
    stored = stored_path(settings, row.document_key).read_bytes()
    assert b"%PDF" not in stored and "王秀兰".encode() not in stored and len(stored) > row.document_size

    got = await download(tenant, tenant.tokens["admin"], made["id"])
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == f"attachment; filename*=UTF-8''{made['number']}-v1.pdf"
    assert got.headers["cache-control"] == "no-store"
    assert hashlib.sha256(got.content).hexdigest() == version["documentSha256"] and len(got.content) == \
        row.document_size
    text = text_of(got.content)
    for shown in ("王秀兰", "居家护理 Home nursing", "CNY 120.50", "CNY 964.00", "CNY 3000.00", made["number"],
                  "低盐饮食", "Delivered by a registered nurse at home"):
        assert shown in text, shown

    # Frozen: the database refuses any change of the sent version's terms or items; a second send finds no draft.
    with pytest.raises(REFUSED, match="frozen"):
        await ContractVersion.filter(id=row.id).update(deposit=1)
    with pytest.raises(REFUSED, match="frozen"):
        await ContractItem.filter(contract_version_id=row.id).update(quantity=99)
    again = await tenant.call("front_desk", SEND, contractId=made["id"], expectedVersion=sent["version"])
    assert code_of(again) == ("CONFLICT", "contractId", "no_draft_version")
    edit = await tenant.call("finance", DRAFT_UPDATE, contractId=made["id"], expectedVersion=sent["version"],
                             input={"noticeDays": 60})
    assert code_of(edit) == ("CONFLICT", "contractId", "version_not_draft")
    assert (await ContractVersion.get(id=row.id)).deposit == 300000

    # On the trail: the send as a write of the contract, the download as a read, neither with content.
    [send_record] = await tenant.audit_events(resource_type="contract", action="update", resource_id=made["id"],
                                              actor_id=tenant.staff_ids["front_desk"])
    assert send_record.patient_id == made["patient_id"] and "document" in send_record.fields_read
    reads = await tenant.audit_events(resource_type="contract", action="read", resource_id=made["id"],
                                      actor_id=tenant.staff_ids["admin"])
    assert any("contract_version.1.document" in e.fields_read and e.patient_id == made["patient_id"] for e in reads)
    for event in await tenant.audit_events():
        assert "低盐" not in str(event.__dict__) and "3000" not in str(event.reason)


async def test_send_with_a_stale_version_writes_nothing(tenant: Tenant) -> None:
    made = await drafted(tenant)
    before = await written(tenant)
    reply = await tenant.call("front_desk", SEND, contractId=made["id"], expectedVersion=made["version"] + 5)
    assert code_of(reply) == ("CONFLICT", "expectedVersion", "stale_version")
    assert await written(tenant) == before


# -- signing ---------------------------------------------------------------------------------------------------


async def test_every_party_signs_then_the_contract_is_active(tenant: Tenant, settings: Settings,
                                                              services: Services) -> None:
    partner_id = await make_partner(tenant, "Sunrise Home Care")
    sent = await send(tenant, await drafted(tenant, guarantor=True, partner_id=partner_id))
    sha = sha_of(sent)
    row = await ContractVersion.get(contract_id=sent["id"], number=1)
    keys = await services.keyring.get(tenant.id)
    stored_pdf = keys.open_bytes(stored_path(settings, row.document_key or "").read_bytes(),
                                 field_aad(tenant.id, "contract_version", "document", row.id))
    assert hashlib.sha256(stored_pdf).hexdigest() == sha  # the stored PDF is the one every signature names

    institution = await sign(tenant, "finance", sent, "INSTITUTION")
    assert not institution.errors, institution.errors
    signature = institution.data["contractSign"]
    assert signature["signerKind"] == "STAFF" and signature["staffId"] == str(tenant.staff_ids["finance"])
    assert signature["witnessId"] is None and signature["documentSha256"] == sha
    assert signature["contract"]["status"] == "SENT" and signature["version"]["status"] == "SENT"

    client = await sign(tenant, "front_desk", sent, "CLIENT", "ON_PAPER")
    assert not client.errors, client.errors
    assert client.data["contractSign"]["signerName"] == "王秀兰"
    assert client.data["contractSign"]["witnessId"] == str(tenant.staff_ids["front_desk"])

    guarantor_id = (await Contract.get(id=sent["id"])).guarantor_id
    guarantor = await sign(tenant, "front_desk", sent, "GUARANTOR", contactId=str(guarantor_id))
    assert not guarantor.errors, guarantor.errors
    assert guarantor.data["contractSign"]["signerKind"] == "CONTACT"
    assert guarantor.data["contractSign"]["contactId"] == str(guarantor_id)
    assert guarantor.data["contractSign"]["contract"]["status"] == "SENT"  # the partner has not signed yet

    partner = await sign(tenant, "front_desk", sent, "PARTNER", "ON_PAPER")
    assert not partner.errors, partner.errors
    last = partner.data["contractSign"]
    assert last["signerName"] == "Sunrise Home Care" and last["signerKind"] == "PARTNER"
    assert last["version"]["status"] == "SIGNED" and last["version"]["signedAt"]
    assert last["contract"]["status"] == "ACTIVE" and last["contract"]["activatedAt"]

    listed = await tenant.call("admin", SIGNATURES, contractId=sent["id"], versionNumber=1)
    assert not listed.errors, listed.errors
    rows = listed.data["contractSignatures"]
    assert [s["party"] for s in rows] == ["INSTITUTION", "CLIENT", "GUARANTOR", "PARTNER"]
    assert {s["documentSha256"] for s in rows} == {sha}
    assert [s["method"] for s in rows] == ["IN_PERSON", "ON_PAPER", "IN_PERSON", "ON_PAPER"]
    assert rows[2]["signerName"] == "李明" and rows[2]["witnessName"] and rows[0]["witnessName"] is None
    on_version = await tenant.call(  # the same list, where a screen shows the version
        "nurse", "query($id: ID!) { contract(id: $id) { versions { signatures { party } } } }", id=sent["id"])
    assert not on_version.errors, on_version.errors
    assert [s["party"] for s in on_version.data["contract"]["versions"][0]["signatures"]] == [
        "INSTITUTION", "CLIENT", "GUARANTOR", "PARTNER"]

    # A party signs once; a signed version takes no more signatures.
    twice = await sign(tenant, "finance", sent, "CLIENT")
    assert code_of(twice) == ("CONFLICT", "input.versionNumber", "version_signed")
    assert await ContractSignature.filter(institution_id=tenant.id).count() == 4
    creates = await tenant.audit_events(resource_type="contract_signature", action="create", outcome="allowed")
    assert len(creates) == 4 and {e.patient_id for e in creates} == {sent["patient_id"]}


async def test_a_party_signs_once(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    assert not (await sign(tenant, "front_desk", sent, "CLIENT")).errors
    before = await written(tenant)
    again = await sign(tenant, "admin", sent, "CLIENT", "ON_PAPER")
    assert code_of(again) == ("CONFLICT", "input.party", "already_signed")
    assert await written(tenant) == before


async def test_the_last_two_signatures_at_once_activate_the_contract_once(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    replies = await asyncio.gather(sign(tenant, "finance", sent, "INSTITUTION"),
                                   sign(tenant, "front_desk", sent, "CLIENT"))
    assert [r.errors for r in replies] == [[], []]
    assert sorted(r.data["contractSign"]["version"]["status"] for r in replies) == ["SENT", "SIGNED"]
    contract = await Contract.get(id=sent["id"])
    assert contract.status == "active"
    activations = [e for e in await tenant.audit_events(resource_type="contract", action="update",
                                                        resource_id=sent["id"])
                   if "version.1.signed" in e.fields_read]
    assert len(activations) == 1


async def test_the_same_party_at_once_signs_once(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    replies = await asyncio.gather(*(sign(tenant, role, sent, "CLIENT") for role in ("front_desk", "admin",
                                                                                     "finance")))
    assert sorted(len(r.errors) for r in replies) == [0, 1, 1]
    assert {code_of(r) for r in replies if r.errors} == {("CONFLICT", "input.party", "already_signed")}
    assert await ContractSignature.filter(institution_id=tenant.id).count() == 1


async def test_the_signer_must_have_seen_the_stored_document(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    before = await written(tenant)
    other = hashlib.sha256(b"another document").hexdigest()
    wrong = await sign(tenant, "front_desk", sent, "CLIENT", sha=other)
    assert code_of(wrong) == ("BAD_USER_INPUT", "input.documentSha256", "document_mismatch")
    malformed = await sign(tenant, "front_desk", sent, "CLIENT", sha="not-a-hash")
    assert code_of(malformed) == ("BAD_USER_INPUT", "input.documentSha256", "invalid_hash")
    upper = await sign(tenant, "front_desk", sent, "CLIENT", sha=sha_of(sent).upper())  # hex in any case
    assert not upper.errors and upper.data["contractSign"]["documentSha256"] == sha_of(sent)
    after = await written(tenant)
    assert len(after["signatures"]) == len(before["signatures"]) + 1


async def test_bad_signing_input_is_refused(tenant: Tenant) -> None:
    made = await drafted(tenant)
    not_sent = await tenant.call("front_desk", SIGN, input={
        "contractId": made["id"], "versionNumber": 1, "party": "CLIENT", "method": "IN_PERSON",
        "documentSha256": "0" * 64})
    assert code_of(not_sent) == ("CONFLICT", "input.versionNumber", "version_not_sent")
    sent = await send(tenant, made)
    before = await written(tenant)
    cases = [
        (dict(party="GUARANTOR"), ("BAD_USER_INPUT", "input.party", "no_guarantor")),
        (dict(party="PARTNER", method="ON_PAPER"), ("BAD_USER_INPUT", "input.party", "no_partner")),
        (dict(party="CLIENT", method="PORTAL"), ("BAD_USER_INPUT", "input.method", "method_not_allowed")),
        (dict(party="CLIENT", contactId=str(uuid.uuid4())), ("BAD_USER_INPUT", "input.contactId",
                                                             "contact_not_allowed")),
        (dict(party="CLIENT", number=2), ("NOT_FOUND", "input.versionNumber", None)),
    ]
    for extra, expected in cases:
        reply = await sign(tenant, "front_desk", sent, sha=sha_of(sent), **extra)
        assert code_of(reply) == expected, (extra, reply.errors)
    assert await written(tenant) == before


async def test_only_the_named_guarantor_signs_as_guarantor(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant, guarantor=True))
    other_contact = await make_contact(tenant, sent["patient_id"], "张三")
    before = await written(tenant)
    for extra in ({}, {"contactId": str(other_contact)}):
        reply = await sign(tenant, "front_desk", sent, "GUARANTOR", **extra)
        assert code_of(reply) == ("BAD_USER_INPUT", "input.contactId", "not_the_guarantor")
    assert await written(tenant) == before


async def test_a_contact_named_as_guarantor_who_is_not_is_recorded_as_a_refusal(tenant: Tenant,
                                                                              other_tenant: Tenant) -> None:
    """A contact named to sign as guarantor that is not the contract's (the client's other contact, another
    patient's, another institution's, none) is answered alike and recorded, as a guarantor that is not the client's
    contact is on a draft (``not_found`` on the ``contact``); a signature with no contact named is missing input."""
    sent = await send(tenant, await drafted(tenant, guarantor=True))
    patient_id = sent["patient_id"]
    named = [await make_contact(tenant, patient_id, "张三"),
             await make_contact(tenant, await make_patient(tenant), "赵六"),
             await make_contact(other_tenant, await make_patient(other_tenant), "钱七"), uuid.uuid4()]
    before = await written(tenant)
    for contact_id in named:
        seq = await mark(tenant.id)
        reply = await sign(tenant, "front_desk", sent, "GUARANTOR", contactId=str(contact_id))
        assert code_of(reply) == ("BAD_USER_INPUT", "input.contactId", "not_the_guarantor")
        assert await denials_since(tenant.id, seq) == [("create", "contact", "not_found", contact_id, patient_id)]
    seq = await mark(tenant.id)
    reply = await sign(tenant, "front_desk", sent, "GUARANTOR")
    assert code_of(reply) == ("BAD_USER_INPUT", "input.contactId", "not_the_guarantor")
    assert await denials_since(tenant.id, seq) == []
    assert await written(tenant) == before
    # The guarantor named signs; the denied twin, a nurse, is refused before any contact is looked at.
    guarantor_id = (await Contract.get(id=sent["id"])).guarantor_id
    seq = await mark(tenant.id)
    refused = await sign(tenant, "nurse", sent, "GUARANTOR", contactId=str(guarantor_id))
    assert refused.codes == ["FORBIDDEN"]
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("create", "contract_signature", "forbidden")]
    assert await written(tenant) == before
    signed = await sign(tenant, "front_desk", sent, "GUARANTOR", contactId=str(guarantor_id))
    assert not signed.errors, signed.errors


# -- the portal ------------------------------------------------------------------------------------------------


async def test_the_patient_reads_and_signs_their_own_contract_in_the_portal(tenant: Tenant) -> None:
    user = await open_account(tenant, fullName="陈美玲")
    sent = await send(tenant, await drafted(tenant, patient_id=user.patient_id))
    got = await download(tenant, user.token, sent["id"])
    assert got.status_code == 200, got.text
    sha = hashlib.sha256(got.content).hexdigest()
    assert sha == sha_of(sent) and "陈美玲" in text_of(got.content)

    mine = await user.call(MY_SIGN, input={"contractId": sent["id"], "versionNumber": 1, "documentSha256": sha})
    assert not mine.errors, mine.errors
    signature = mine.data["myContractSign"]
    assert signature["party"] == "CLIENT" and signature["method"] == "PORTAL" and signature["signerKind"] == "PATIENT"
    assert signature["witnessId"] is None and signature["signerName"] == "陈美玲"
    assert signature["contract"]["status"] == "SENT"

    done = await sign(tenant, "admin", sent, "INSTITUTION", "ON_PAPER")
    assert not done.errors, done.errors
    assert done.data["contractSign"]["contract"]["status"] == "ACTIVE"
    [record] = await tenant.audit_events(resource_type="contract_signature", action="create",
                                         actor_id=user.account_id)
    assert record.patient_id == user.patient_id


async def test_another_patient_can_neither_sign_nor_download(tenant: Tenant) -> None:
    owner = await open_account(tenant)
    stranger = await open_account(tenant)
    sent = await send(tenant, await drafted(tenant, patient_id=owner.patient_id))
    before, seq = await written(tenant), await mark(tenant.id)
    reply = await stranger.call(MY_SIGN, input={"contractId": sent["id"], "versionNumber": 1,
                                                "documentSha256": sha_of(sent)})
    assert code_of(reply) == ("NOT_FOUND", "input.contractId", None)
    got = await download(tenant, stranger.token, sent["id"])
    assert got.status_code == 404 and b"%PDF" not in got.content
    # Staff sign through contractSign; a patient never does, even their own contract.
    staff_path = await gql_as(tenant, owner.token, SIGN, {"contractId": sent["id"], "versionNumber": 1,
                                                          "party": "CLIENT", "method": "IN_PERSON",
                                                          "documentSha256": sha_of(sent)})
    assert code_of(staff_path)[0] == "FORBIDDEN"
    assert await written(tenant) == before
    denials = await denials_since(tenant.id, seq)
    assert ("create", "contract", "not_found", uuid.UUID(sent["id"]), None) in denials
    assert ("read", "contract", "not_found", uuid.UUID(sent["id"]), None) in denials
    assert ("create", "contract_signature", "forbidden", uuid.UUID(sent["id"]), None) in denials


async def gql_as(tenant: Tenant, token: str, query: str, data: dict[str, Any]) -> Response:
    from tests.factories import gql

    return await gql(tenant.client, query, {"input": data}, token)


async def test_staff_cannot_sign_in_the_patients_place(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    before, seq = await written(tenant), await mark(tenant.id)
    reply = await tenant.call("front_desk", MY_SIGN, input={"contractId": sent["id"], "versionNumber": 1,
                                                            "documentSha256": sha_of(sent)})
    assert code_of(reply)[0] == "FORBIDDEN"
    assert await written(tenant) == before
    assert len(await denials_since(tenant.id, seq)) == 1


# -- the stored document ---------------------------------------------------------------------------------------


async def test_a_tampered_document_is_refused_and_nothing_is_served(tenant: Tenant, settings: Settings,
                                                                     services: Services) -> None:
    sent = await send(tenant, await drafted(tenant))
    row = await ContractVersion.get(contract_id=sent["id"], number=1)
    path = stored_path(settings, row.document_key or "")
    original = path.read_bytes()

    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    got = await download(tenant, tenant.tokens["admin"], sent["id"])
    assert got.status_code == 500 and got.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_TAMPERED"
    assert b"%PDF" not in got.content

    # Sealed properly under the right key and row, but another document: the SHA-256 catches it.
    keys = await services.keyring.get(tenant.id)
    other = render_other()
    path.write_bytes(keys.seal_bytes(other, field_aad(tenant.id, "contract_version", "document", row.id)))
    got = await download(tenant, tenant.tokens["admin"], sent["id"])
    assert got.status_code == 500 and got.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_TAMPERED"
    assert b"%PDF" not in got.content

    path.unlink()
    got = await download(tenant, tenant.tokens["admin"], sent["id"])
    assert got.status_code == 500 and got.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_TAMPERED"

    errors = await tenant.audit_events(outcome="error", reason="document_tampered")
    assert len(errors) == 3 and {e.patient_id for e in errors} == {sent["patient_id"]}
    assert not [e for e in await tenant.audit_events(resource_type="contract", action="read",
                                                     actor_id=tenant.staff_ids["admin"])
                if "contract_version.1.document" in e.fields_read]  # no read recorded: nothing was served

    path.write_bytes(original)  # restored: served again
    assert (await download(tenant, tenant.tokens["admin"], sent["id"])).status_code == 200


def render_other() -> bytes:
    from datetime import date

    from core.contract_document import ContractDocument

    return render(ContractDocument(institution="X", number="C-1", title="Forged", version=1, client="Someone",
                                   start_on=date(2030, 1, 1), end_on=date(2030, 12, 31),
                                   effective_on=date(2030, 1, 1), billing_period="monthly", period_total="CNY 0.00",
                                   deposit="CNY 0.00", notice_days=0, auto_renew=False, rights_duties="None."))


async def test_who_may_download_the_document(tenant: Tenant, other_tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    seq, other_seq = await mark(tenant.id), await mark(other_tenant.id)
    for role, status in (("finance", 200), ("admin", 200), ("front_desk", 403), ("nurse", 403),
                         ("compliance_officer", 403)):
        got = await download(tenant, tenant.tokens[role], sent["id"])
        assert got.status_code == status, (role, got.text)
        if status != 200:
            assert b"%PDF" not in got.content
    other = await download(other_tenant, other_tenant.tokens["admin"], sent["id"])
    missing = await download(tenant, tenant.tokens["admin"], str(uuid.uuid4()))
    assert other.status_code == missing.status_code == 404 and other.json() == missing.json()
    assert (await download(tenant, tenant.tokens["admin"], sent["id"], 2)).status_code == 404
    bad = await tenant.client.get(f"/contracts/{sent['id']}/versions/x/document",
                                  headers={"authorization": f"Bearer {tenant.tokens['admin']}"})
    assert bad.status_code == 400
    assert (await tenant.client.get(f"/contracts/{sent['id']}/versions/1/document")).status_code == 401
    denials = await denials_since(tenant.id, seq)
    assert ("read", "contract", "forbidden", uuid.UUID(sent["id"]), sent["patient_id"]) in denials  # front desk
    assert [d[:3] for d in await denials_since(other_tenant.id, other_seq)] == [("read", "contract", "not_found")]


async def test_a_partner_named_on_the_contract_may_not_download_what_its_view_refuses(tenant: Tenant) -> None:
    """The document shows the deposit, the prices and the sealed clauses, which the partner's view of the contract
    refuses (FORBIDDEN at those fields): the download is refused too, and recorded (found in review: it was
    served whole). A contract not naming it stays a missing one."""
    partnership = await make_partnership(tenant, ["contract:read", "patient.identity:read"])
    named = await send(tenant, await drafted(tenant, patient_id=partnership.granted,
                                             partner_id=partnership.partner_id))
    unnamed = await send(tenant, await drafted(tenant, patient_id=partnership.granted))
    api = await partnership.call("query($id: ID!) { contract(id: $id) { versions { deposit { amount } clauses } } }",
                                 id=named["id"])
    assert sorted(e["extensions"]["code"] for e in api.errors) == ["FORBIDDEN", "FORBIDDEN"]
    seq = await mark(tenant.id)
    got = await download(tenant, partnership.token, named["id"])
    assert got.status_code == 403 and got.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert ("read", "contract", "forbidden", uuid.UUID(named["id"])) in [d[:4] for d in await denials_since(
        tenant.id, seq)]
    assert (await download(tenant, partnership.token, unnamed["id"])).status_code == 404


async def test_a_client_restricted_to_registered_documents_downloads_nothing(tenant: Tenant) -> None:
    """The file routes carry no operation document: such a client is refused there, recorded (found in review: it
    downloaded contract documents its GraphQL door refused)."""
    partnership = await make_partnership(tenant, ["contract:read", "patient.identity:read"],
                                         documents=[sha256("query { me { id } }")])
    named = await send(tenant, await drafted(tenant, patient_id=partnership.granted,
                                             partner_id=partnership.partner_id))
    assert (await partnership.call("query($id: ID!) { contract(id: $id) { id } }", id=named["id"])).codes == [
        "FORBIDDEN"]
    seq = await mark(tenant.id)
    got = await download(tenant, partnership.token, named["id"])
    assert got.status_code == 403
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "document", "untrusted_document")]


# -- denied twins ----------------------------------------------------------------------------------------------


async def test_nurse_may_neither_send_nor_sign(tenant: Tenant) -> None:
    made = await drafted(tenant)
    before, seq = await written(tenant), await mark(tenant.id)
    reply = await tenant.call("nurse", SEND, contractId=made["id"], expectedVersion=made["version"])
    assert code_of(reply)[0] == "FORBIDDEN"
    assert await written(tenant) == before
    sent = await send(tenant, made)
    before = await written(tenant)
    reply = await sign(tenant, "nurse", sent, "CLIENT")
    assert code_of(reply)[0] == "FORBIDDEN"
    assert await written(tenant) == before
    denials = await denials_since(tenant.id, seq)
    assert ("update", "contract", "forbidden", uuid.UUID(made["id"]), None) in denials
    assert ("create", "contract_signature", "forbidden", uuid.UUID(made["id"]), None) in denials


async def test_front_desk_cannot_sign_for_the_institution(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    before, seq = await written(tenant), await mark(tenant.id)
    reply = await sign(tenant, "front_desk", sent, "INSTITUTION")
    assert code_of(reply)[0] == "FORBIDDEN"
    assert await written(tenant) == before
    assert await denials_since(tenant.id, seq) == [("create", "contract_signature", "forbidden",
                                                    uuid.UUID(sent["id"]), None)]
    allowed = await sign(tenant, "admin", sent, "INSTITUTION")  # the twin: an admin may
    assert not allowed.errors, allowed.errors


async def test_another_institution_finds_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    made = await drafted(tenant)
    before, seq = await written(tenant), await mark(other_tenant.id)
    reply = await other_tenant.call("admin", SEND, contractId=made["id"], expectedVersion=made["version"])
    assert code_of(reply) == ("NOT_FOUND", "contractId", None)
    sent = await send(tenant, made)
    before = await written(tenant)
    for party in ("INSTITUTION", "CLIENT"):
        reply = await sign(other_tenant, "admin", sent, party)
        assert code_of(reply) == ("NOT_FOUND", "input.contractId", None)
    listed = await other_tenant.call("admin", SIGNATURES, contractId=sent["id"], versionNumber=1)
    assert code_of(listed) == ("NOT_FOUND", "contractId", None)
    withdrawn = await other_tenant.call("admin", WITHDRAW, contractId=sent["id"], versionNumber=1,
                                        expectedVersion=sent["version"])
    assert code_of(withdrawn) == ("NOT_FOUND", "contractId", None)
    assert await written(tenant) == before
    assert len([d for d in await denials_since(other_tenant.id, seq) if d[2] == "not_found"]) == 5
    assert await AuditEvent.filter(institution_id=tenant.id, actor_id=other_tenant.staff_ids["admin"]).count() == 0


# -- withdrawal ------------------------------------------------------------------------------------------------


async def test_withdrawing_version_1_returns_the_contract_to_draft(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    assert not (await sign(tenant, "front_desk", sent, "CLIENT")).errors
    current = (await Contract.get(id=sent["id"])).version

    nurse = await tenant.call("nurse", WITHDRAW, contractId=sent["id"], versionNumber=1, expectedVersion=current)
    assert code_of(nurse)[0] == "FORBIDDEN"
    reply = await tenant.call("front_desk", WITHDRAW, contractId=sent["id"], versionNumber=1,
                              expectedVersion=current)
    assert not reply.errors, reply.errors
    contract = reply.data["contractWithdraw"]
    assert contract["status"] == "DRAFT" and contract["currentVersion"] == 2
    assert [(v["number"], v["status"]) for v in contract["versions"]] == [(1, "WITHDRAWN"), (2, "DRAFT")]
    assert contract["versions"][1]["items"] == contract["versions"][0]["items"]
    copy = await ContractVersion.get(contract_id=sent["id"], number=2)
    assert copy.document_sha256 is None and copy.deposit == 300000
    assert await ContractSignature.filter(contract_version__contract_id=sent["id"]).count() == 1  # kept

    late = await sign(tenant, "admin", sent, "INSTITUTION")
    assert code_of(late) == ("CONFLICT", "input.versionNumber", "version_withdrawn")
    again = await tenant.call("front_desk", WITHDRAW, contractId=sent["id"], versionNumber=1,
                              expectedVersion=contract["version"])
    assert code_of(again) == ("CONFLICT", "versionNumber", "version_withdrawn")

    # The copy is sent and signed as the original terms: the contract becomes active.
    resent = await send(tenant, {**sent, **contract})
    assert resent["status"] == "SENT"
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        reply = await sign(tenant, role, resent, party, number=2)
        assert not reply.errors, reply.errors
    assert reply.data["contractSign"]["contract"]["status"] == "ACTIVE"


async def test_an_amendment_is_sent_signed_or_withdrawn_as_its_own_version(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, sent, party)).errors
    row = await Contract.get(id=sent["id"])
    assert row.status == "active"

    async def amend(expected: int, summary: str) -> dict[str, Any]:
        reply = await tenant.call("finance", AMEND, contractId=sent["id"], expectedVersion=expected, input={
            "effectiveOn": (row.start_on + timedelta(days=30)).isoformat(), "changeSummary": summary,
            "noticeDays": 60})
        assert not reply.errors, reply.errors
        return {**sent, **reply.data["contractAmend"]}

    v2 = await send(tenant, await amend(row.version, "自下月起提前通知期改为60天 notice period 60 days"))
    assert v2["status"] == "ACTIVE"  # an amendment leaves the contract as it stands until signed
    assert [(v["number"], v["status"]) for v in v2["versions"]] == [(1, "SIGNED"), (2, "SENT")]
    got = await download(tenant, tenant.tokens["finance"], sent["id"], 2)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha_of(v2, 2) != sha_of(sent)
    text = text_of(got.content)
    assert "变更说明 Amendment" in text and "notice period 60 days" in text and "Version 2" in text
    assert "60 天 days" in text

    reply = await tenant.call("front_desk", WITHDRAW, contractId=sent["id"], versionNumber=2,
                              expectedVersion=v2["version"])
    assert not reply.errors, reply.errors
    withdrawn = reply.data["contractWithdraw"]
    assert withdrawn["status"] == "ACTIVE" and withdrawn["currentVersion"] == 1
    assert [(v["number"], v["status"]) for v in withdrawn["versions"]] == [(1, "SIGNED"), (2, "WITHDRAWN")]

    v3 = await send(tenant, await amend(withdrawn["version"], "提前通知期改为60天 notice period 60 days"))
    for role, party in (("admin", "INSTITUTION"), ("front_desk", "CLIENT")):
        reply = await sign(tenant, role, v3, party, number=3)
        assert not reply.errors, reply.errors
    assert reply.data["contractSign"]["version"]["status"] == "SIGNED"
    assert reply.data["contractSign"]["contract"]["status"] == "ACTIVE"
    assert [s["party"] for s in (await tenant.call("admin", SIGNATURES, contractId=sent["id"], versionNumber=3)
                                 ).data["contractSignatures"]] == ["INSTITUTION", "CLIENT"]
