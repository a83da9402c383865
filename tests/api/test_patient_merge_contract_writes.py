"""A contract's mutations on a contract whose file is merged between the read and the write (found in review): each
wrote its record on the file it had read, the merged one, though the merge had moved the contract to the survivor,
so the write was missing from the survivor's trail and access report. The caller named the contract, not the file:
the write goes on, as appointmentCancel and followUpTaskComplete do, and is recorded on the file the contract is on
when written, if the caller still reaches the contract there (contract.writing); beyond it NOT_FOUND, nothing
written, the refusal on the trail. The merge made sequential (right after the write found the contract), on SQLite
and PostgreSQL; contractCreate and contractRenew, which add a contract to a file, refuse a merged one instead
(test_patient_merge_copied_file). What the write takes from the client's file is the survivor's too: the client's
signature carries its name, a draft's guarantor is one of its contacts, and a refusal of the commercial terms (a
deposit, a reprice) is on its trail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from audit.events import Action
from models import AuditEvent, Contract, ContractSignature, Patient
from resolvers import contract as contracts
from resolvers.context import Services
from tests.api.test_contract_lifecycle import AMEND, RESUME, SUSPEND, TERMINATE, UPDATE
from tests.api.test_contract_renewal import RENEW
from tests.api.test_contract_signatures import MY_SIGN, SEND, WITHDRAW, drafted, send, sha_of, sign, written
from tests.api.test_patient_merge_copied_file import merged_around
from tests.contracts import active_contract, draft, item_input, make_item, today
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, make_contact, mark, open_account


async def version_of(contract_id: str) -> int:
    return int((await Contract.get(id=contract_id)).version)


async def drafted_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    return await draft(tenant, patient, [item_input(await make_item(tenant))])


async def sent_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    return await send(tenant, await drafted(tenant, patient_id=patient))


async def active_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    # started today: a term terminated before its first day is REVOKED, not TERMINATED
    return await active_contract(tenant, services, patient_id=patient, startOn=today().isoformat())


async def suspended_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    made = await active_on(tenant, services, patient)
    assert (await tenant.call("finance", SUSPEND, id=made["id"], v=made["version"])).errors == []
    return made


def amending(tenant: Tenant, made: dict[str, Any], v: int) -> Awaitable[Response]:
    return tenant.call("finance", AMEND, id=made["id"], v=v, input={
        "effectiveOn": (today() + timedelta(days=5)).isoformat(), "changeSummary": "Two visits more"})


Write = Callable[[Tenant, dict[str, Any], int], Awaitable[Response]]
# mutation -> (the contract it needs, the call, what it records: resource type, action, status after)
WRITES: dict[str, tuple[Callable[..., Awaitable[dict[str, Any]]], Write, tuple[str, str, str]]] = {
    "contractDraftUpdate": (drafted_on, lambda t, m, v: t.call("front_desk", UPDATE, id=m["id"], v=v,
                                                               input={"title": "Home care, renamed"}),
                            ("contract", "update", "draft")),
    "contractAmend": (active_on, amending, ("contract", "update", "active")),
    "contractSuspend": (active_on, lambda t, m, v: t.call("finance", SUSPEND, id=m["id"], v=v),
                        ("contract", "update", "suspended")),
    "contractResume": (suspended_on, lambda t, m, v: t.call("finance", RESUME, id=m["id"], v=v),
                       ("contract", "update", "active")),
    "contractTerminate": (active_on, lambda t, m, v: t.call("finance", TERMINATE, id=m["id"], v=v),
                          ("contract", "update", "terminated")),
    "contractSign": (sent_on, lambda t, m, v: sign(t, "admin", m, "INSTITUTION"),
                     ("contract_signature", "create", "sent")),
    "contractWithdraw": (sent_on, lambda t, m, v: t.call("front_desk", WITHDRAW, contractId=m["id"], versionNumber=1,
                                                         expectedVersion=v),
                         ("contract", "update", "draft")),
}


def merged_after_the_write_finds_it(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, survivor: uuid.UUID,
                                    duplicate: uuid.UUID, action: Action) -> None:
    """The client's file merged once, right after the mutation found the contract (``contract.find`` with the
    write's action) and before its transaction opens."""
    merged_around(monkeypatch, contracts, "find", tenant, survivor, duplicate, after=True, action=action)


async def as_before_the_merge(tenant: Tenant, duplicate: uuid.UUID) -> dict[str, Any]:
    """The contract rows as stored, but for the merge's own move of the contracts: what a refused write left."""
    after = await written(tenant)
    return {**after, "contracts": [{**row, "patient_id": duplicate} for row in after["contracts"]]}


async def records_of(tenant: Tenant, resource_type: str, action: str, since: int) -> list[AuditEvent]:
    return [event for event in await tenant.audit_events(resource_type=resource_type, action=action,
                                                         outcome="allowed") if event.seq > since]


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_contract_written_as_its_file_is_merged_is_recorded_on_the_survivor(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    make, write, (resource_type, action, status) = WRITES[name]
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    made = await make(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate,
                                    Action.CREATE if name == "contractSign" else Action.UPDATE)
    before = await mark(tenant.id)

    reply = await write(tenant, made, await version_of(made["id"]))

    assert reply.errors == [], reply.errors
    stored = await Contract.get(id=made["id"])
    assert (stored.patient_id, stored.status) == (survivor, status)
    found = await records_of(tenant, resource_type, action, before)
    assert found, f"{name} wrote no record"
    # on the trail of the file the contract is on, none on the merged file's
    assert {event.patient_id for event in found} == {survivor}, [(e.resource_type, e.patient_id) for e in found]


async def test_a_contract_signed_in_the_portal_as_its_file_is_merged_away_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the patient signing in the portal reaches their own file's contracts; merged into another
    file as they sign, the contract is that file's, out of their reach: NOT_FOUND as the contract then answers,
    no signature, the refusal on the trail. (Every staff role that writes contracts reaches all of the
    institution's, whatever the file.)"""
    user = await open_account(tenant)
    survivor = await make_patient(tenant)
    sent = await send(tenant, await drafted(tenant, patient_id=user.patient_id))
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, user.patient_id, Action.CREATE)
    stored, before = await written(tenant), await mark(tenant.id)

    reply = await user.call(MY_SIGN, input={"contractId": sent["id"], "versionNumber": 1,
                                            "documentSha256": sha_of(sent)})

    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.contractId"
    assert await as_before_the_merge(tenant, user.patient_id) == stored
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("create", "contract", "not_found", uuid.UUID(sent["id"]))]
    assert await records_of(tenant, "contract_signature", "create", before) == []


async def test_a_contract_sent_as_its_file_is_merged_is_sent_again_on_the_survivor(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """contractSend renders the document with the client's file; under its lock it renders again and compares, and
    the contract is the survivor's by then: the document is not the one rendered, CONFLICT stale_version, nothing
    written (as for an edit slipped in between). Sent again, it is the survivor's document and record."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    made = await drafted_on(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate, Action.UPDATE)
    before = await mark(tenant.id)

    stale = await tenant.call("front_desk", SEND, contractId=made["id"], expectedVersion=made["version"])

    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["reason"] == "stale_version", stale.errors
    assert (await Contract.get(id=made["id"])).status == "draft"
    assert await records_of(tenant, "contract", "update", before) == []
    again = await tenant.call("front_desk", SEND, contractId=made["id"], expectedVersion=made["version"])
    assert again.errors == [], again.errors
    assert [e.patient_id for e in await records_of(tenant, "contract", "update", before)] == [survivor]


async def test_a_client_signature_recorded_as_the_file_is_merged_carries_the_survivors_name(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client who signs is the client of the file the contract is on when signed: merged since the contract was
    found, the survivor's, whose name the signature carries (found in review: the merged file's, read before)."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    made = await sent_on(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate, Action.CREATE)

    reply = await sign(tenant, "front_desk", made, "CLIENT")

    assert reply.errors == [], reply.errors
    name = (await Patient.get(id=survivor)).full_name
    assert name != (await Patient.get(id=duplicate)).full_name
    assert reply.data["contractSign"]["signerName"] == name
    stored = await ContractSignature.get(id=reply.data["contractSign"]["id"])
    assert (stored.party, stored.signer_name) == ("client", name)


@pytest.mark.parametrize("whose", ["survivor", "duplicate"])
async def test_a_guarantor_named_as_the_file_is_merged_is_a_contact_of_the_survivor(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, whose: str) -> None:
    """A draft's guarantor must be a contact of its client: of the file the contract is on. Merged right after the
    update found the contract, the contract and the merged file's contacts are the survivor's, so a contact of
    either file is named (found in review: checked on the merged file, which has no contacts left, it was refused)."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    contact = await make_contact(tenant, survivor if whose == "survivor" else duplicate, "Guarantor")
    made = await drafted_on(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate, Action.UPDATE)
    before = await mark(tenant.id)

    reply = await tenant.call("front_desk", UPDATE, id=made["id"], v=made["version"],
                              input={"guarantorContactId": str(contact)})

    assert reply.errors == [], reply.errors
    stored = await Contract.get(id=made["id"])
    assert (stored.patient_id, stored.guarantor_id) == (survivor, contact)
    assert [event.patient_id for event in await records_of(tenant, "contract", "update", before)] == [survivor]


async def test_a_guarantor_of_another_file_is_refused_as_the_file_is_merged(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refused twin: a contact of neither file is no contact of the survivor; nothing written."""
    survivor, duplicate, other = await make_patient(tenant), await make_patient(tenant), await make_patient(tenant)
    contact = await make_contact(tenant, other, "Stranger")
    made = await drafted_on(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate, Action.UPDATE)
    stored = await written(tenant)

    reply = await tenant.call("front_desk", UPDATE, id=made["id"], v=made["version"],
                              input={"guarantorContactId": str(contact)})

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert [(e["field"], e["reason"]) for e in reply.errors[0]["extensions"]["invalid"]] == [
        ("input.guarantorContactId", "not_patient_contact")]
    assert await as_before_the_merge(tenant, duplicate) == stored


DEPOSIT = {"deposit": {"amount": "500.00", "currency": "CNY"}}


async def amendment_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    made = await active_on(tenant, services, patient)
    assert (await amending(tenant, made, made["version"])).errors == []
    return made


# the front desk edits and renews contracts but leaves their money to finance: (the contract, the refused write)
TERMS_REFUSALS: dict[str, tuple[Callable[..., Awaitable[dict[str, Any]]], Write, Action]] = {
    "contractDraftUpdate deposit": (drafted_on, lambda t, m, v: t.call("front_desk", UPDATE, id=m["id"], v=v,
                                                                       input=DEPOSIT), Action.UPDATE),
    "contractDraftUpdate reprice": (amendment_on, lambda t, m, v: t.call("front_desk", UPDATE, id=m["id"], v=v,
                                                                         input={"reprice": True}), Action.UPDATE),
    "contractAmend deposit": (active_on, lambda t, m, v: t.call("front_desk", AMEND, id=m["id"], v=v, input={
        "effectiveOn": (today() + timedelta(days=5)).isoformat(), "changeSummary": "Deposit", **DEPOSIT}),
        Action.UPDATE),
    "contractAmend reprice": (active_on, lambda t, m, v: t.call("front_desk", AMEND, id=m["id"], v=v, input={
        "effectiveOn": (today() + timedelta(days=5)).isoformat(), "changeSummary": "Prices", "reprice": True}),
        Action.UPDATE),
    "contractRenew deposit": (active_on, lambda t, m, v: t.call("front_desk", RENEW, id=m["id"], input={
        "endOn": (today() + timedelta(days=366 + 180)).isoformat(), **DEPOSIT}), Action.CREATE),
}


@pytest.mark.parametrize("name", sorted(TERMS_REFUSALS))
async def test_a_terms_refusal_as_the_file_is_merged_names_the_survivor(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A deposit set or changed, or prices taken again from the catalogue, need contract.terms: update. Refused
    after a merge moved the contract to the survivor, the refusal is on the trail of the file the contract is on
    (found in review: it named the merged file); nothing written."""
    make, write, action = TERMS_REFUSALS[name]
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    made = await make(tenant, services, duplicate)
    merged_after_the_write_finds_it(monkeypatch, tenant, survivor, duplicate, action)
    stored, before = await written(tenant), await mark(tenant.id)

    reply = await write(tenant, made, await version_of(made["id"]))

    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert await as_before_the_merge(tenant, duplicate) == stored
    assert [d[:2] + d[3:] for d in await denials_since(tenant.id, before)] == [
        ("update", "contract", uuid.UUID(made["id"]), survivor)]
