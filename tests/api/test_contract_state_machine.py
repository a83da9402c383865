"""The contract state machine probed through the API (a fresh-eyes review): every move that must be impossible
(sign after a termination, amend a terminated term, terminate twice, renew twice, send or withdraw a withdrawn
version) refused with its code and nothing written, each next to its allowed twin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.test_contract_signatures import AMEND, SEND, WITHDRAW, code_of, send, sign, written
from tests.contracts import draft, item_input, make_item, today
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

TERMINATE = """mutation($id: ID!, $v: Int!, $on: Date = null) {
  contractTerminate(contractId: $id, reason: "Moved away", expectedVersion: $v, effectiveOn: $on) {
    status version endOn versions { number status } } }"""
RENEW = """mutation($id: ID!, $input: ContractRenewInput!) {
  contractRenew(contractId: $id, input: $input) { id status version startOn endOn } }"""
STATE = """query($id: ID!) { contract(id: $id) { id status version startOn endOn currentVersion
  versions { number status documentSha256 } } }"""


def ok(reply: Any, root: str) -> Any:
    assert not reply.errors, reply.errors
    return reply.data[root]


async def state(tenant: Tenant, contract_id: str) -> dict[str, Any]:
    return dict(ok(await tenant.call("admin", STATE, id=contract_id), "contract"))


async def running(tenant: Tenant, *, days_in: int = 10, days_left: int = 300) -> dict[str, Any]:
    """An ACTIVE contract whose term started ``days_in`` days ago, signed through the API."""
    patient = await make_patient(tenant)
    item = await make_item(tenant)
    made = await draft(tenant, patient, [item_input(item)], role="finance",
                       startOn=(today() - timedelta(days=days_in)).isoformat(),
                       endOn=(today() + timedelta(days=days_left)).isoformat())
    sent = await send(tenant, made)
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, sent, party)).errors
    return await state(tenant, made["id"])


async def amendment_sent(tenant: Tenant, contract: dict[str, Any]) -> dict[str, Any]:
    """An amendment (the next version) drafted and sent; the contract as it then stands."""
    amended = ok(await tenant.call("finance", AMEND, contractId=contract["id"], expectedVersion=contract["version"],
                                   input={"effectiveOn": (today() + timedelta(days=1)).isoformat(),
                                          "changeSummary": "One more visit"}), "contractAmend")
    return await send(tenant, {**contract, **amended})


async def refused_quietly(tenant: Tenant, before: dict[str, Any], seq: int) -> None:
    """Nothing written, and no refusal of access on the trail: a conflict of state."""
    assert await written(tenant) == before
    assert await denials_since(tenant.id, seq) == []


async def test_no_signature_after_a_termination(tenant: Tenant) -> None:
    contract = await running(tenant)
    sent = await amendment_sent(tenant, contract)
    assert not (await sign(tenant, "finance", sent, "INSTITUTION", number=2)).errors  # the allowed twin
    now = await state(tenant, contract["id"])
    ended = ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=now["version"],
                                 on=(today() + timedelta(days=5)).isoformat()), "contractTerminate")
    assert ended["status"] == "TERMINATED" and ended["versions"] == [{"number": 1, "status": "SIGNED"},
                                                                     {"number": 2, "status": "WITHDRAWN"}]
    before, seq = await written(tenant), await mark(tenant.id)
    refused = await sign(tenant, "front_desk", sent, "CLIENT", number=2)
    assert code_of(refused) == ("CONFLICT", "input.versionNumber", "version_withdrawn")
    await refused_quietly(tenant, before, seq)


async def test_a_terminated_term_is_neither_amended_nor_terminated_again_nor_renewed(tenant: Tenant) -> None:
    contract = await running(tenant)
    amend = {"effectiveOn": (today() + timedelta(days=1)).isoformat(), "changeSummary": "One more visit"}
    twin = await tenant.call("finance", AMEND, contractId=contract["id"], expectedVersion=contract["version"],
                             input=amend)
    assert not twin.errors, twin.errors  # the allowed twin, while the term runs
    now = await state(tenant, contract["id"])
    ended = ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=now["version"]), "contractTerminate")
    before, seq = await written(tenant), await mark(tenant.id)
    replies = [
        await tenant.call("finance", AMEND, contractId=contract["id"], expectedVersion=ended["version"], input=amend),
        await tenant.call("admin", TERMINATE, id=contract["id"], v=ended["version"]),
        await tenant.call("finance", RENEW, id=contract["id"],
                          input={"endOn": (today() + timedelta(days=700)).isoformat()}),
        await tenant.call("front_desk", SEND, contractId=contract["id"], expectedVersion=ended["version"]),
    ]
    assert [code_of(r) for r in replies] == [("CONFLICT", "contractId", "illegal_transition")] * 3 + [
        ("CONFLICT", "contractId", "no_draft_version")]
    await refused_quietly(tenant, before, seq)


async def test_a_term_is_renewed_once(tenant: Tenant) -> None:
    contract = await running(tenant)
    first = ok(await tenant.call("finance", RENEW, id=contract["id"],
                                 input={"endOn": (today() + timedelta(days=600)).isoformat()}), "contractRenew")
    assert first["status"] == "DRAFT"  # the allowed twin
    before, seq = await written(tenant), await mark(tenant.id)
    again = await tenant.call("finance", RENEW, id=contract["id"],
                              input={"endOn": (today() + timedelta(days=650)).isoformat()})
    assert code_of(again) == ("CONFLICT", "contractId", "renewal_exists")
    await refused_quietly(tenant, before, seq)


async def test_a_withdrawn_version_is_neither_sent_signed_nor_withdrawn_again(tenant: Tenant) -> None:
    contract = await running(tenant)
    sent = await amendment_sent(tenant, contract)
    now = await state(tenant, contract["id"])
    withdrawn = ok(await tenant.call("finance", WITHDRAW, contractId=contract["id"], versionNumber=2,
                                     expectedVersion=now["version"]), "contractWithdraw")
    assert [(v["number"], v["status"]) for v in withdrawn["versions"]] == [(1, "SIGNED"), (2, "WITHDRAWN")]
    before, seq = await written(tenant), await mark(tenant.id)
    replies = [
        await tenant.call("front_desk", SEND, contractId=contract["id"], expectedVersion=withdrawn["version"]),
        await sign(tenant, "finance", sent, "INSTITUTION", number=2),
        await tenant.call("finance", WITHDRAW, contractId=contract["id"], versionNumber=2,
                          expectedVersion=withdrawn["version"]),
    ]
    assert [code_of(r) for r in replies] == [("CONFLICT", "contractId", "no_draft_version"),
                                             ("CONFLICT", "input.versionNumber", "version_withdrawn"),
                                             ("CONFLICT", "versionNumber", "version_withdrawn")]
    await refused_quietly(tenant, before, seq)
    again = await amendment_sent(tenant, await state(tenant, contract["id"]))  # the allowed twin: a new amendment
    assert [(v["number"], v["status"]) for v in again["versions"]] == [(1, "SIGNED"), (2, "WITHDRAWN"),
                                                                       (3, "SENT")]


async def test_the_renewal_of_a_terminated_term_is_neither_signed_nor_sent(tenant: Tenant) -> None:
    """Found in review: a renewal drafted and sent, then the term it renews terminated (the client leaves): the
    renewal's signatures still went through and it became ACTIVE, the next term of a term that had ended months
    before it began. Refused now, CONFLICT ``renewed_term_ended``, nothing written: its last signature, and sending
    it again after it was withdrawn. The allowed twin: the institution's signature given while the term ran."""
    contract = await running(tenant)
    renewal = ok(await tenant.call("finance", RENEW, id=contract["id"],
                                   input={"endOn": (today() + timedelta(days=600)).isoformat()}), "contractRenew")
    renewal_sent = await send(tenant, renewal)
    assert not (await sign(tenant, "finance", renewal_sent, "INSTITUTION")).errors
    ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=contract["version"]), "contractTerminate")

    before, seq = await written(tenant), await mark(tenant.id)
    refused = await sign(tenant, "front_desk", renewal_sent, "CLIENT")
    assert code_of(refused) == ("CONFLICT", "input.contractId", "renewed_term_ended")
    await refused_quietly(tenant, before, seq)
    assert (await state(tenant, renewal["id"]))["status"] == "SENT"

    now = await state(tenant, renewal["id"])
    withdrawn = ok(await tenant.call("finance", WITHDRAW, contractId=renewal["id"], versionNumber=1,
                                     expectedVersion=now["version"]), "contractWithdraw")
    assert withdrawn["status"] == "DRAFT"  # re-issued as version 2, a draft
    before, seq = await written(tenant), await mark(tenant.id)
    again = await tenant.call("front_desk", SEND, contractId=renewal["id"], expectedVersion=withdrawn["version"])
    assert code_of(again) == ("CONFLICT", "contractId", "renewed_term_ended")
    await refused_quietly(tenant, before, seq)


async def test_a_term_whose_next_term_is_signed_is_not_ended_early_before_it_is_revoked(tenant: Tenant) -> None:
    """Found in review: the term ended early (terminated today) while its next term, signed ahead, still began on
    the day after the term's agreed end: the client was without a contract in between, then under one again. Refused
    now, CONFLICT ``renewal_exists`` naming the way (revoke the renewal first), nothing written; the allowed twin:
    the renewal revoked, the term terminated."""
    contract = await running(tenant)
    renewal = ok(await tenant.call("finance", RENEW, id=contract["id"],
                                   input={"endOn": (today() + timedelta(days=600)).isoformat()}), "contractRenew")
    renewal_sent = await send(tenant, renewal)
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, renewal_sent, party)).errors
    signed_ahead = await state(tenant, renewal["id"])
    assert signed_ahead["status"] == "ACTIVE"

    before, seq = await written(tenant), await mark(tenant.id)
    refused = await tenant.call("admin", TERMINATE, id=contract["id"], v=contract["version"])
    assert code_of(refused) == ("CONFLICT", "contractId", "renewal_exists")
    await refused_quietly(tenant, before, seq)

    revoked = ok(await tenant.call("admin", TERMINATE, id=renewal["id"], v=signed_ahead["version"]),
                 "contractTerminate")
    assert revoked["status"] == "REVOKED"
    ended = ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=contract["version"]), "contractTerminate")
    assert (ended["status"], ended["endOn"]) == ("TERMINATED", today().isoformat())
