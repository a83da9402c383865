"""Contracts under review (found in review, each failing before its fix): a total beyond what an amount holds is
BAD_USER_INPUT, an amendment takes effect no earlier than it is sent and signed, the document's SHA-256 confirms
no guessed fee, a partner reads no signatures, a text of many short lines renders in time, and an amendment does
not move the end of a term renewed already."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from core.contract_document import ContractDocument, DocumentItem, render
from models import Institution
from resolvers import contract as contract_module
from tests.api.test_contract_signatures import AMEND, SEND, download, send, sign, text_of, written
from tests.contracts import create, draft, draft_input, item_input, make_item, today
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


# -- money: a total beyond the bound ------------------------------------------------------------------------


async def test_a_period_total_beyond_the_bound_is_bad_input_not_an_internal_error(tenant: Tenant) -> None:
    """A unit price at the documented maximum (10^12 minor units) is accepted by the catalogue; a contract of 2 units
    of it makes a total beyond the bound: money.multiply raises OverflowError deep in the insert, and the caller (the
    front desk, who may not even see prices) gets INTERNAL_SERVER_ERROR instead of BAD_USER_INPUT at the item."""
    patient = await make_patient(tenant)
    item = await make_item(tenant, unit_price="10000000000.00")  # 10^12 fen: MAX_MINOR_UNITS, accepted
    reply = await create(tenant, "front_desk", draft_input(patient, [item_input(item, quantity=2)]))
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors


# -- lifecycle: an amendment signed after the date it takes effect -------------------------------------------


async def _amended_ten_days_ago(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, *, send_then: bool
                                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """An active contract and its amendment drafted ten days ago to take effect the next day (allowed then), and
    sent then too when ``send_then``; the clock is back to today on return."""
    patient = await make_patient(tenant)
    item = await make_item(tenant, unit_price="100.00")
    start = today() - timedelta(days=60)
    made = await draft(tenant, patient, [item_input(item)], role="finance", startOn=start.isoformat(),
                       endOn=(start + timedelta(days=364)).isoformat())
    sent = await send(tenant, made)
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, sent, party)).errors
    contract = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version status } }",
                                    id=made["id"]), "contract")
    real_now = contract_module._now
    monkeypatch.setattr(contract_module, "_now", lambda: real_now() - timedelta(days=10))
    amended = ok(await tenant.call("finance", AMEND, contractId=made["id"], expectedVersion=contract["version"],
                                   input={"effectiveOn": (today() - timedelta(days=9)).isoformat(),
                                          "changeSummary": "8 units a week",
                                          "items": [item_input(item, quantity=8)]}), "contractAmend")
    amendment = await send(tenant, {**sent, **amended}) if send_then else {**sent, **amended}
    monkeypatch.setattr(contract_module, "_now", real_now)
    return made, amendment


async def test_an_amendment_is_not_sent_after_the_day_it_takes_effect(tenant: Tenant,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: drafted for 'tomorrow' ten days ago, sent and signed today, it was in force from nine days
    ago (a repriced amendment reprices periods already delivered and billed)."""
    _, amendment = await _amended_ten_days_ago(tenant, monkeypatch, send_then=False)

    reply = await tenant.call("finance", SEND, contractId=amendment["id"], expectedVersion=amendment["version"])

    assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in reply.errors] == [
        ("CONFLICT", "effective_in_past")]


async def test_an_amendment_is_not_signed_after_the_day_it_takes_effect(tenant: Tenant,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    made, amendment = await _amended_ten_days_ago(tenant, monkeypatch, send_then=True)

    reply = await sign(tenant, "finance", amendment, "INSTITUTION", number=2)

    assert [(e["extensions"]["code"], e["extensions"]["reason"]) for e in reply.errors] == [
        ("CONFLICT", "effective_in_past")]
    in_force = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { inForce { number } } }",
                                    id=made["id"]), "contract")["inForce"]
    assert in_force == {"number": 1}


# -- who sees fees: the document's SHA-256 is an oracle for them ------------------------------------------------

NURSE_VIEW = """query($id: ID!) { contract(id: $id) { number title startOn endOn patient { fullName }
  versions { number effectiveOn endOn billingPeriod noticeDays autoRenew rightsDuties clauses changeSummary
             documentSha256 deposit { amount } items { code name quantity frequency deliveredByPartner
                                                       unitPrice { amount } } } } }"""


async def test_a_nurse_recovers_the_fees_she_may_not_read_from_the_documents_sha256(tenant: Tenant) -> None:
    """A nurse reads everything a version's PDF shows but the money (unit prices, totals, deposit: FORBIDDEN), and
    its documentSha256. The PDF is deterministic (invariant=1), so rendering guesses and comparing hashes confirms
    the fees: here a price among 61 candidates and a deposit among 6, found in 366 renders."""
    patient = await make_patient(tenant, fullName="王秀兰")
    item = await make_item(tenant, name="居家护理 Home nursing", unit_price="117.50")
    made = await draft(tenant, patient, [item_input(item, quantity=8)], role="finance",
                       deposit={"amount": "3000.00", "currency": "CNY"}, clauses="夜间需协助如厕")
    await send(tenant, made)

    reply = await tenant.call("nurse", NURSE_VIEW, id=made["id"])
    seen = reply.data["contract"]
    [version] = seen["versions"]
    assert version["deposit"] is None and version["items"][0]["unitPrice"] is None  # FORBIDDEN to her
    assert {e["extensions"]["code"] for e in reply.errors} == {"FORBIDDEN"}
    standard = "Delivered by a registered nurse at home"  # the item's service standard: hers to read
    institution = (await Institution.get(id=tenant.id)).name  # her employer's name
    [line] = version["items"]

    found = []
    prices = [f"{100 + i / 2:.2f}" for i in range(61)]  # 100.00 .. 130.00 by 0.50
    deposits = ["0.00", "1000.00", "2000.00", "3000.00", "5000.00", "10000.00"]
    for price, deposit in itertools.product(prices, deposits):
        total = f"{round(float(price) * 100) * line['quantity'] / 100:.2f}"
        document = ContractDocument(
            institution=institution, number=seen["number"], title=seen["title"], version=version["number"],
            client=seen["patient"]["fullName"], start_on=date.fromisoformat(seen["startOn"]),
            end_on=date.fromisoformat(version["endOn"]), effective_on=date.fromisoformat(version["effectiveOn"]),
            billing_period=version["billingPeriod"].lower(), period_total=f"CNY {total}", deposit=f"CNY {deposit}",
            notice_days=version["noticeDays"], auto_renew=version["autoRenew"], rights_duties=version["rightsDuties"],
            items=(DocumentItem(code=line["code"], name=line["name"], standard=standard, quantity=line["quantity"],
                                frequency=line["frequency"].lower(), unit_price=f"CNY {price}",
                                period_total=f"CNY {total}", delivered_by_partner=line["deliveredByPartner"]),),
            clauses=version["clauses"], change_summary=version["changeSummary"])
        if hashlib.sha256(render(document)).hexdigest() == version["documentSha256"]:
            found.append((price, deposit))
    assert found == [], f"the nurse confirmed the fees she may not read: unit price and deposit {found}"


# -- a partner reads the signatures: the guarantor (a family contact) by name --------------------------------

PARTNER_VIEW = """query($id: ID!, $pid: ID!) {
  contract(id: $id) { guarantorContactId versions { documentSha256
    signatures { party signerKind signerName contactId witnessName } } }
  patient(id: $pid) { contacts { name } } }"""


async def test_a_partner_reads_the_guarantors_name_through_the_signatures(tenant: Tenant) -> None:
    """The access table gives a partner 'signatures: no' and its grant here does not cover the client's contacts
    (patient.contacts is FORBIDDEN to it); yet Contract.versions.signatures answers the guarantor's name and contact
    id, and the names of the staff who witnessed."""
    from tests.api.test_contract_signatures import drafted
    from tests.partners import make_partnership
    partnership = await make_partnership(tenant, ["contract:read", "patient.identity:read"])
    sent = await send(tenant, await drafted(tenant, patient_id=partnership.granted, guarantor=True,
                                            partner_id=partnership.partner_id))
    contract = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { guarantorContactId } }",
                                    id=sent["id"]), "contract")
    assert not (await sign(tenant, "front_desk", sent, "GUARANTOR",
                           contactId=contract["guarantorContactId"])).errors
    reply = await partnership.call(PARTNER_VIEW, id=sent["id"], pid=str(partnership.granted))
    assert reply.data["patient"]["contacts"] is None  # the client's contacts are not the partner's to read
    signatures = reply.data["contract"]["versions"][0]["signatures"]
    assert signatures == [], f"the partner reads who signed: {signatures}"


# -- the document: a long text of many short lines --------------------------------------------------------------


async def test_a_text_of_many_short_lines_is_sent_in_seconds_not_minutes(tenant: Tenant) -> None:
    """Found in review of core/contract_document.py: a block of text was one paragraph, its single newlines line
    breaks, and a paragraph flowing over many pages is laid out again at each page break. Rights and duties within
    their 20,000 characters, as one-character lines, took about 40 seconds of CPU to render on contractSend (the
    front desk's): the request ran past its 10 s budget (TIMEOUT, so the contract could never be sent) while the
    render went on burning a core in its thread. Line by line, well under a second; the document still ends with its
    text and the signatures. Its denied twin: a nurse's send is refused before anything is rendered, nothing
    written, the refusal on the trail."""
    patient = await make_patient(tenant)
    item = await make_item(tenant, unit_price="100.00")
    duties = "x\n" * 9_990 + "END-OF-DUTIES"
    made = await draft(tenant, patient, [item_input(item)], rightsDuties=duties)

    before, seq = await written(tenant), await mark(tenant.id)
    refused = await tenant.call("nurse", SEND, contractId=made["id"], expectedVersion=made["version"])
    assert [e["extensions"]["code"] for e in refused.errors] == ["FORBIDDEN"]
    assert await written(tenant) == before
    assert ("update", "contract", "forbidden", uuid.UUID(made["id"]), None) in await denials_since(tenant.id, seq)

    await send(tenant, made)  # within the request's own budget (10 s): TIMEOUT before, about 0.8 s now
    got = await download(tenant, tenant.tokens["admin"], made["id"])
    assert got.status_code == 200, got.text
    text = text_of(got.content)
    assert "END-OF-DUTIES" in text and "签署 Signatures" in text


# -- an amendment moving the end of a term whose next term is prepared --------------------------------------------

async def test_an_amendment_does_not_move_the_end_of_a_term_renewed_already(tenant: Tenant) -> None:
    """Found in review of the report's figures: the next term starts the day after this one ends (contractRenew);
    an amendment moving this term's end, signed after the renewal was drafted, moved it anyway. Extended, both terms
    ran at once: the client counted twice as active and their fees twice as revenue in the months between (and the
    visits delivered against both); shortened, the service stopped between the two terms. Each signature refused
    (under the contract's lock, which a renewal takes too): CONFLICT ``renewal_exists``, the version still SENT, the
    term's end as it was, no signature written. Its allowed twin: the same amendment, the renewal terminated, is
    signed."""
    patient = await make_patient(tenant)
    item = await make_item(tenant, unit_price="100.00")
    start = today() + timedelta(days=1)
    made = await draft(tenant, patient, [item_input(item)], role="finance", startOn=start.isoformat(),
                       endOn=(start + timedelta(days=89)).isoformat())
    sent = await send(tenant, made)
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, sent, party)).errors
    renewal = ok(await tenant.call("finance", """mutation($id: ID!, $input: ContractRenewInput!) {
        contractRenew(contractId: $id, input: $input) { id version startOn } }""", id=made["id"],
                                   input={"endOn": (start + timedelta(days=400)).isoformat()}), "contractRenew")
    renewal_sent = await send(tenant, {**renewal, "id": renewal["id"]})
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, renewal_sent, party)).errors
    contract = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version endOn } }",
                                    id=made["id"]), "contract")
    later_end = (start + timedelta(days=180)).isoformat()
    amended = ok(await tenant.call("finance", AMEND, contractId=made["id"], expectedVersion=contract["version"],
                                   input={"effectiveOn": start.isoformat(), "endOn": later_end,
                                          "changeSummary": "three months more"}), "contractAmend")
    amendment = await send(tenant, {**sent, **amended})

    before, seq = await written(tenant), await mark(tenant.id)
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        refused = await sign(tenant, role, amendment, party, number=2)
        assert [(e["extensions"]["code"], e["extensions"].get("reason")) for e in refused.errors] == [
            ("CONFLICT", "renewal_exists")]
    assert await written(tenant) == before
    assert await denials_since(tenant.id, seq) == []  # a conflict of state, not a refusal of access
    now = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { endOn openVersion { status } } }",
                               id=made["id"]), "contract")
    assert now == {"endOn": contract["endOn"], "openVersion": {"status": "SENT"}}

    # The renewal terminated, the term may run longer: the same signature goes through.
    renewal_now = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version } }",
                                       id=renewal["id"]), "contract")
    assert not (await tenant.call("admin", """mutation($id: ID!, $v: Int!) { contractTerminate(contractId: $id,
        reason: "term extended instead", expectedVersion: $v) { status } }""", id=renewal["id"],
                                  v=renewal_now["version"])).errors
    for role, party in (("finance", "INSTITUTION"), ("front_desk", "CLIENT")):
        assert not (await sign(tenant, role, amendment, party, number=2)).errors
    assert ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { endOn } }", id=made["id"]),
              "contract") == {"endOn": later_end}
