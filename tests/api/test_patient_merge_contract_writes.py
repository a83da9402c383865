"""A contract's mutations on a contract whose file is merged between the read and the write (found in review): each
wrote its record on the file it had read, the merged one, though the merge had moved the contract to the survivor,
so the write was missing from the survivor's trail and access report. The caller named the contract, not the file:
the write goes on, as appointmentCancel and followUpTaskComplete do, and is recorded on the file the contract is on
when written, if the caller still reaches the contract there (contract.writing); beyond it NOT_FOUND, nothing
written, the refusal on the trail. The merge made sequential (right after the write found the contract), on SQLite
and PostgreSQL; contractCreate and contractRenew, which add a contract to a file, refuse a merged one instead
(test_patient_merge_copied_file)."""

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
from tests.api.test_contract_signatures import MY_SIGN, SEND, WITHDRAW, drafted, send, sha_of, sign, written
from tests.api.test_patient_merge_copied_file import merged_around
from tests.contracts import active_contract, draft, item_input, make_item, today
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, mark, open_account


async def version_of(contract_id: str) -> int:
    return int((await Contract.get(id=contract_id)).version)


async def drafted_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    return await draft(tenant, patient, [item_input(await make_item(tenant))])


async def sent_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    return await send(tenant, await drafted(tenant, patient_id=patient))


async def active_on(tenant: Tenant, services: Services, patient: uuid.UUID) -> dict[str, Any]:
    return await active_contract(tenant, services, patient_id=patient)


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
    after = await written(tenant)
    moved = [{**row, "patient_id": user.patient_id} for row in after["contracts"]]  # the merge's own move
    assert {**after, "contracts": moved} == stored
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
