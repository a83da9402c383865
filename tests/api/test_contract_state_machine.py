"""The contract state machine probed through the API (a fresh-eyes review): every move that must be impossible
(sign after a termination, amend a terminated term, terminate twice, renew twice, send or withdraw a withdrawn
version) refused with its code and nothing written, each next to its allowed twin; and a contract never in force
(DRAFT or SENT, a prepared renewal say) given up with contractTerminate: REVOKED as it stands."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from tests.api.test_contract_signatures import AMEND, SEND, WITHDRAW, code_of, send, sign, written
from tests.contracts import draft, item_input, make_item, today
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, events_since, mark

TERMINATE = """mutation($id: ID!, $v: Int!, $on: Date = null) {
  contractTerminate(contractId: $id, reason: "Moved away", expectedVersion: $v, effectiveOn: $on) {
    status version endOn versions { number status } } }"""
RENEW = """mutation($id: ID!, $input: ContractRenewInput!) {
  contractRenew(contractId: $id, input: $input) { id status version startOn endOn } }"""
STATE = """query($id: ID!) { contract(id: $id) { id patientId status version startOn endOn currentVersion endedAt
  statusReason versions { number status documentSha256 } } }"""


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


# -- a contract never signed, revoked ----------------------------------------------------------------------------


async def revoke_refused_then_allowed(tenant: Tenant, contract: dict[str, Any]) -> dict[str, Any]:
    """The denied twins of revoking a contract never in force, then the revocation (by finance, as termination is):
    the front desk, which drafts and sends contracts, may not give one up (FORBIDDEN, recorded) and an effective date
    is refused (BAD_USER_INPUT at effectiveOn: leave it out), nothing written by either; revoked, it is REVOKED with
    its term as drafted, its versions WITHDRAWN, recorded on the client's trail as a termination is."""
    before, seq = await written(tenant), await mark(tenant.id)
    refused = await tenant.call("front_desk", TERMINATE, id=contract["id"], v=contract["version"])
    assert refused.codes == ["FORBIDDEN"], refused.body
    dated = await tenant.call("finance", TERMINATE, id=contract["id"], v=contract["version"],
                              on=(today() + timedelta(days=5)).isoformat())
    assert code_of(dated) == ("BAD_USER_INPUT", "effectiveOn", "effective_not_allowed"), dated.body
    assert "leave it out" in dated.errors[0]["message"]
    assert await written(tenant) == before
    assert await denials_since(tenant.id, seq) == [("update", "contract", "forbidden", uuid.UUID(contract["id"]),
                                                    None)]

    seq = await mark(tenant.id)
    revoked = ok(await tenant.call("finance", TERMINATE, id=contract["id"], v=contract["version"]),
                 "contractTerminate")
    assert (revoked["status"], revoked["endOn"]) == ("REVOKED", contract["endOn"])
    assert revoked["version"] == contract["version"] + 1
    now = await state(tenant, contract["id"])
    assert (now["startOn"], now["endOn"], now["currentVersion"], now["statusReason"]) == (
        contract["startOn"], contract["endOn"], contract["currentVersion"], "Moved away")
    assert now["endedAt"] and {v["status"] for v in now["versions"]} == {"WITHDRAWN"}
    writes = await events_since(tenant.id, seq, action="update", resource_type="contract")
    assert [(e.resource_id, e.fields_read, e.patient_id) for e in writes] == [
        (uuid.UUID(contract["id"]), "ended_at,status,status_reason", uuid.UUID(contract["patientId"]))]
    assert await denials_since(tenant.id, seq) == []
    return now


async def test_a_draft_renewal_is_revoked_and_the_term_renewed_again_and_its_end_moved(tenant: Tenant) -> None:
    """Found in review: a DRAFT or SENT contract could not be given up (contractTerminate refused it, a withdrawn
    version 1 came back as a new draft), so a prepared renewal stood for ever: the term could not be renewed again,
    no amendment moving its end could be signed, its end was never reminded and it never renewed itself. Decided:
    terminated, it is REVOKED as it stands, and is not the term's next term any more."""
    contract = await running(tenant)
    renewal = ok(await tenant.call("finance", RENEW, id=contract["id"],
                                   input={"endOn": (today() + timedelta(days=600)).isoformat()}), "contractRenew")
    assert renewal["status"] == "DRAFT"
    await revoke_refused_then_allowed(tenant, await state(tenant, renewal["id"]))

    # The term's end moves: an amendment sent and signed by every party (refused while the renewal stood).
    now = await state(tenant, contract["id"])
    later_end = (date.fromisoformat(now["endOn"]) + timedelta(days=30)).isoformat()
    amended = ok(await tenant.call("finance", AMEND, contractId=contract["id"], expectedVersion=now["version"],
                                   input={"effectiveOn": (today() + timedelta(days=1)).isoformat(),
                                          "endOn": later_end, "changeSummary": "A month more"}), "contractAmend")
    amendment = await send(tenant, {**now, **amended})
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, amendment, party, number=2)).errors
    assert (await state(tenant, contract["id"]))["endOn"] == later_end

    # The term is renewed again, from the day after its moved end.
    again = ok(await tenant.call("finance", RENEW, id=contract["id"],
                                 input={"endOn": (today() + timedelta(days=700)).isoformat()}), "contractRenew")
    assert (again["status"], again["startOn"]) == (
        "DRAFT", (date.fromisoformat(later_end) + timedelta(days=1)).isoformat())
    assert (await state(tenant, renewal["id"]))["status"] == "REVOKED"  # final: nothing brought it back


async def test_a_sent_contract_is_revoked_and_its_sent_version_no_longer_signed(tenant: Tenant) -> None:
    """A contract sent for signature, signed by the institution only, given up before the client signs: REVOKED, its
    sent version WITHDRAWN (the institution's signature stays on record). Signing the sent version then is refused
    (CONFLICT ``version_withdrawn``), and so are sending, withdrawing and revoking it again, nothing written."""
    made = await draft(tenant, await make_patient(tenant), [item_input(await make_item(tenant))], role="finance")
    sent = await send(tenant, made)
    assert not (await sign(tenant, "finance", sent, "INSTITUTION")).errors
    contract = await state(tenant, made["id"])
    assert contract["status"] == "SENT"
    revoked = await revoke_refused_then_allowed(tenant, contract)
    assert [(v["number"], v["status"]) for v in revoked["versions"]] == [(1, "WITHDRAWN")]

    before, seq = await written(tenant), await mark(tenant.id)
    assert len(before["signatures"]) == 1
    replies = [
        await sign(tenant, "front_desk", sent, "CLIENT"),
        await tenant.call("front_desk", SEND, contractId=made["id"], expectedVersion=revoked["version"]),
        await tenant.call("finance", WITHDRAW, contractId=made["id"], versionNumber=1,
                          expectedVersion=revoked["version"]),
        await tenant.call("admin", TERMINATE, id=made["id"], v=revoked["version"]),
    ]
    assert [code_of(r) for r in replies] == [("CONFLICT", "input.versionNumber", "version_withdrawn"),
                                             ("CONFLICT", "contractId", "no_draft_version"),
                                             ("CONFLICT", "versionNumber", "version_withdrawn"),
                                             ("CONFLICT", "contractId", "illegal_transition")]
    await refused_quietly(tenant, before, seq)
