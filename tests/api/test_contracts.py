"""Contracts through the API: drafting with catalogue prices, reading under reach and field classes, every role's
denied twin with nothing written and the denial on the audit trail, and bad input refused with every invalid field
named at once (tests/contracts.py builds catalogue items and contracts)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from models import AuditEvent, Contract, ContractItem, ContractVersion
from resolvers import institution as institutions
from resolvers.context import Services
from tests.contracts import (
    CREATE,
    active_contract,
    create,
    draft,
    draft_input,
    item_input,
    make_item,
    today,
)
from tests.factories import PASSWORD, Tenant, login, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import denials_since, events_since, make_contact, mark, open_account

MONEY = """query($id: ID!) { contract(id: $id) { id status
  versions { number deposit { amount currency minorUnits } periodTotal { amount minorUnits } clauses
    items { code quantity deliveredByPartner unitPrice { amount minorUnits }
      periodTotal { amount minorUnits } } } } }"""
ITEMS_ONLY = """query($id: ID!) { contract(id: $id) { id title versions { number rightsDuties
  items { code name quantity frequency deliveredByPartner } } } }"""


async def stored(tenant: Tenant) -> dict[str, Any]:
    where = {"institution_id": tenant.id}
    return {"contracts": await Contract.filter(**where).order_by("id").values(),
            "versions": await ContractVersion.filter(**where).order_by("id").values(),
            "items": await ContractItem.filter(**where).order_by("id").values()}


def invalid(reply: Any) -> list[tuple[str, str]]:
    [error] = reply.errors
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    return [(found["field"], found["reason"]) for found in error["extensions"]["invalid"]]


# -- drafting ---------------------------------------------------------------------------------------------


async def test_front_desk_drafts_a_contract_priced_from_the_catalogue_on_its_start(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    start = today() + timedelta(days=10)
    # in force on the start: the version from 5 days before it; the one from the day after is not yet
    visit = await make_item(tenant, unit_price="100.00",
                            later_prices=((start - timedelta(days=5), "33.33"), (start + timedelta(days=1), "50.00")))
    bath = await make_item(tenant, unit_price="0.10", frequencies=("daily",))
    guarantor = await make_contact(tenant, patient, "Wang Fang")
    seq = await mark(tenant.id)
    made = await draft(tenant, patient, [item_input(visit, quantity=3), item_input(bath, 7, "DAILY")],
                       startOn=start.isoformat(), endOn=(start + timedelta(days=89)).isoformat(),
                       guarantorContactId=str(guarantor), clauses="Client has a pacemaker: no electrotherapy.")
    assert made["status"] == "DRAFT" and made["currentVersion"] == 1 and made["version"] == 1
    assert made["number"] == f"C-{today().year}-00001"
    assert made["guarantorContactId"] == str(guarantor)
    assert made["departmentId"] == str(tenant.departments["A"].id)  # the client's by default
    [version] = made["versions"]
    assert version["status"] == "DRAFT" and version["effectiveOn"] == start.isoformat()
    assert [(i["position"], i["quantity"], i["frequency"]) for i in version["items"]] == [(1, 3, "WEEKLY"),
                                                                                         (2, 7, "DAILY")]
    reply = await tenant.call("finance", MONEY, id=made["id"])
    assert not reply.errors, reply.errors
    [read] = reply.data["contract"]["versions"]
    assert [(i["unitPrice"], i["periodTotal"]) for i in read["items"]] == [
        ({"amount": "33.33", "minorUnits": "3333"}, {"amount": "99.99", "minorUnits": "9999"}),
        ({"amount": "0.10", "minorUnits": "10"}, {"amount": "0.70", "minorUnits": "70"})]
    assert read["periodTotal"] == {"amount": "100.69", "minorUnits": "10069"}  # exact: no float anywhere
    assert read["deposit"] == {"amount": "0.00", "currency": "CNY", "minorUnits": "0"}
    assert read["clauses"] == "Client has a pacemaker: no electrotherapy."
    # one write record on the patient's trail, naming fields and never amounts or clause text
    [record] = await events_since(tenant.id, seq, action="create", resource_type="contract")
    assert record.patient_id == patient and str(record.resource_id) == made["id"]
    assert "pacemaker" not in str(record.fields_read) and "33.33" not in str(record.fields_read)
    stored_clauses = await ContractVersion.get(contract_id=made["id"])
    assert b"pacemaker" not in bytes(stored_clauses.clauses)  # sealed at rest


async def test_numbers_are_unique_and_sequential_per_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    item, other_item = await make_item(tenant), await make_item(other_tenant)
    first = await draft(tenant, await make_patient(tenant), [item_input(item)])
    second = await draft(tenant, await make_patient(tenant), [item_input(item)])
    elsewhere = await draft(other_tenant, await make_patient(other_tenant), [item_input(other_item)])
    year = today().year
    assert [first["number"], second["number"], elsewhere["number"]] == [f"C-{year}-00001", f"C-{year}-00002",
                                                                        f"C-{year}-00001"]


async def test_a_yen_contract_counts_in_whole_yen(tenant: Tenant) -> None:
    item = await make_item(tenant, unit_price="1500", currency="JPY")
    made = await draft(tenant, await make_patient(tenant), [item_input(item, quantity=3)], role="finance",
                       currency="JPY", deposit={"amount": "20000", "currency": "JPY"})
    reply = await tenant.call("admin", MONEY, id=made["id"])
    [version] = reply.data["contract"]["versions"]
    assert version["periodTotal"] == {"amount": "4500", "minorUnits": "4500"}
    assert version["deposit"] == {"amount": "20000", "currency": "JPY", "minorUnits": "20000"}


async def test_a_deposit_is_finance_business_the_front_desk_drafts_without_one(tenant: Tenant) -> None:
    patient, item = await make_patient(tenant), await make_item(tenant)
    before, seq = await stored(tenant), await mark(tenant.id)
    data = draft_input(patient, [item_input(item)], deposit={"amount": "500.00", "currency": "CNY"})
    reply = await create(tenant, "front_desk", data)
    assert reply.codes == ["FORBIDDEN"] and reply.data == {"contractCreate": None}
    assert await stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [("update", "contract", "forbidden", None, patient)]
    # a zero deposit is no deposit: the front desk may send it
    zero = await create(tenant, "front_desk", {**data, "deposit": {"amount": "0.00", "currency": "CNY"}})
    assert not zero.errors, zero.errors
    made = await create(tenant, "finance", data)
    assert not made.errors, made.errors
    money = await tenant.call("finance", MONEY, id=made.data["contractCreate"]["id"])
    assert money.data["contract"]["versions"][0]["deposit"]["minorUnits"] == "50000"


async def test_nurse_doctor_partner_and_patient_cannot_create_contracts(tenant: Tenant) -> None:
    patient, item = await make_patient(tenant), await make_item(tenant)
    me = await open_account(tenant)
    before, seq = await stored(tenant), await mark(tenant.id)
    for role in ("nurse", "doctor", "department_head", "support_agent", "compliance_officer"):
        reply = await create(tenant, role, draft_input(patient, [item_input(item)]))
        assert reply.codes == ["FORBIDDEN"], (role, reply.body)
    mine = await me.call(CREATE, input=draft_input(me.patient_id, [item_input(item)]))
    assert mine.codes == ["FORBIDDEN"]
    assert await stored(tenant) == before
    denials = await denials_since(tenant.id, seq)
    assert len(denials) == 6 and all(d[:3] == ("create", "contract", "forbidden") for d in denials)


async def test_another_institutions_patient_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs, item = await make_patient(other_tenant), await make_item(tenant)
    before, seq = await stored(tenant), await mark(tenant.id)
    reply = await create(tenant, "front_desk", draft_input(theirs, [item_input(item)]))
    assert reply.codes == ["NOT_FOUND"] and reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [("create", "patient", "not_found", theirs, None)]


# -- bad input --------------------------------------------------------------------------------------------


async def test_every_invalid_field_is_reported_at_once_and_nothing_is_written(tenant: Tenant,
                                                                              other_tenant: Tenant) -> None:
    patient, other_patient = await make_patient(tenant), await make_patient(tenant)
    weekly = await make_item(tenant, frequencies=("weekly",))
    dollars = await make_item(tenant, currency="USD")
    theirs = await make_item(other_tenant)
    not_theirs = await make_contact(tenant, other_patient, "Li Lei")
    start = today() + timedelta(days=3)
    data = draft_input(patient, [
        item_input(weekly, quantity=0),
        item_input(weekly, quantity=-2),
        item_input(theirs),
        item_input(weekly, frequency="DAILY"),
        item_input(dollars),
        item_input(weekly, by_partner=True),
    ], startOn=start.isoformat(), endOn=(start - timedelta(days=1)).isoformat(), guarantorContactId=str(not_theirs),
        deposit={"amount": "10.005", "currency": "CNY"}, noticeDays=400, title="  ")
    before = await stored(tenant)
    reply = await create(tenant, "finance", data)
    assert reply.data == {"contractCreate": None}
    assert invalid(reply) == [
        ("input.title", "invalid_text"),
        ("input.endOn", "end_not_after_start"),
        ("input.deposit.amount", "invalid_amount"),
        ("input.noticeDays", "invalid_notice"),
        ("input.guarantorContactId", "not_patient_contact"),
        ("input.items[0].quantity", "quantity_not_positive"),
        ("input.items[1].quantity", "quantity_not_positive"),
        ("input.items[2].serviceItemId", "unknown_item"),
        ("input.items[3].frequency", "frequency_not_offered"),
        ("input.items[4].serviceItemId", "currency_mismatch"),
        ("input.items[5].deliveredByPartner", "no_partner"),
    ]
    [error] = reply.errors
    assert error["extensions"]["field"] == "input.title" and error["extensions"]["reason"] == "invalid_text"
    assert await stored(tenant) == before


async def test_bad_input_one_problem_at_a_time(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    item = await make_item(tenant, effective_from=today() + timedelta(days=30))  # no price yet on the start
    priced = await make_item(tenant)
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"items": [item_input(item)]}, ("input.items[0].serviceItemId", "no_price")),
        ({"items": [item_input(priced)], "currency": "XYZ"}, ("input.currency", "unknown_currency")),
        ({"items": [item_input(priced)], "endOn": draft_input(patient, [])["startOn"]},
         ("input.endOn", "end_not_after_start")),
        ({"items": [item_input(priced)], "deposit": {"amount": "5.00", "currency": "USD"}},
         ("input.deposit.currency", "currency_mismatch")),
        ({"items": [item_input(priced)], "deposit": {"amount": "-5.00", "currency": "CNY"}},
         ("input.deposit.amount", "invalid_amount")),
        ({"items": []}, ("input.items", "item_count")),
        ({"items": [item_input(priced)] * 51}, ("input.items", "item_count")),
        ({"items": [item_input(priced)], "partnerId": str(uuid.uuid4())}, ("input.partnerId", "unknown_partner")),
        ({"items": [item_input(priced)], "departmentId": str(uuid.uuid4())},
         ("input.departmentId", "unknown_department")),
        ({"items": [item_input(priced)], "endOn": (date.today() + timedelta(days=4000)).isoformat()},
         ("input.endOn", "term_too_long")),
    ]
    before = await stored(tenant)
    for fields, expected in cases:
        reply = await create(tenant, "finance", draft_input(patient, **fields))
        assert invalid(reply) == [expected], (fields, reply.body)
    assert await stored(tenant) == before
    malformed = await create(tenant, "finance", draft_input(patient, [{**item_input(priced), "serviceItemId": "x"}]))
    assert malformed.codes == ["BAD_USER_INPUT"]
    assert malformed.errors[0]["extensions"]["field"] == "input.items[0].serviceItemId"


async def test_a_retired_item_is_refused(tenant: Tenant) -> None:
    patient, item = await make_patient(tenant), await make_item(tenant)
    retire = "mutation($id: ID!) { serviceItemSetActive(id: $id, active: false) { id } }"
    assert not (await tenant.call("admin", retire, id=str(item))).errors
    reply = await create(tenant, "front_desk", draft_input(patient, [item_input(item)]))
    assert invalid(reply) == [("input.items[0].serviceItemId", "unknown_item")]


# -- reading: reach and field classes -------------------------------------------------------------------------


async def test_commercial_terms_and_clauses_follow_their_field_classes(tenant: Tenant, services: Services) -> None:
    made = await active_contract(tenant, services, clauses="Diabetic diet")
    # the front desk reaches the contract but neither money nor clauses
    seq = await mark(tenant.id)
    reply = await tenant.call("front_desk", MONEY, id=made["id"])
    version = reply.data["contract"]["versions"][0]
    assert version["deposit"] is None and version["periodTotal"] is None and version["clauses"] is None
    assert version["items"][0]["unitPrice"] is None and version["items"][0]["quantity"] == 4
    paths = sorted(".".join(map(str, e["path"])) for e in reply.errors)
    assert paths == ["contract.versions.0.clauses", "contract.versions.0.deposit",
                     "contract.versions.0.items.0.periodTotal", "contract.versions.0.items.0.unitPrice",
                     "contract.versions.0.periodTotal"]
    assert set(reply.codes) == {"FORBIDDEN"}
    refused = await events_since(tenant.id, seq, outcome="denied")
    assert [(e.resource_type, e.field_classes, e.reason) for e in refused] == [
        ("contract", "clauses,terms", "forbidden_field")]
    [read] = await events_since(tenant.id, seq, outcome="allowed", resource_type="contract")
    assert str(read.resource_id) == made["id"] and "terms" not in read.field_classes
    # the nurse (department A) sees the items and clauses to deliver them, never fees
    nurse = await tenant.call("nurse", MONEY, id=made["id"])
    nurse_version = nurse.data["contract"]["versions"][0]
    assert nurse_version["clauses"] == "Diabetic diet" and nurse_version["periodTotal"] is None
    assert set(nurse.codes) == {"FORBIDDEN"} and len(nurse.errors) == 4
    # admin and finance read it all; reads noted with the classes
    seq = await mark(tenant.id)
    for role in ("admin", "finance"):
        full = await tenant.call(role, MONEY, id=made["id"])
        assert not full.errors, (role, full.errors)
        assert full.data["contract"]["versions"][0]["periodTotal"]["amount"] == "480.00"
    reads = await events_since(tenant.id, seq, resource_type="contract")
    assert [e.field_classes for e in reads] == ["clauses,terms"] * 2
    assert all("contract_version.clauses" in e.fields_read for e in reads)


CLAUSES_ONLY = """query($id: ID!) { contract(id: $id) { id versions { number clauses } } }"""
CLAUSES_DIFF = """query($id: ID!) { contractVersionDiff(contractId: $id, fromVersion: 1, toVersion: 2) {
  terms { field before after } } }"""


async def test_clauses_are_read_only_where_a_role_that_reads_them_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """A nurse of department A who also works the front desk reaches every contract (the desk's reach) but reads the
    clauses, which speak of the client's health, of her own patients' only, as the nurse she is: the desk reads
    none. Found in review: the right to read clauses was decided for the account and used on every contract its
    roles reached, so she read the clauses of department B's clients."""
    in_a = await active_contract(tenant, services, clauses="Diabetic diet")
    in_b = await active_contract(tenant, services, clauses="Dementia: accompany always", patient_id=await make_patient(
        tenant, departmentId=str(tenant.departments["B"].id)))
    amended = await tenant.call("finance", """mutation($id: ID!, $v: Int!, $input: ContractAmendInput!) {
      contractAmend(contractId: $id, expectedVersion: $v, input: $input) { id } }""", id=in_b["id"], v=in_b["version"],
                                input={"effectiveOn": (today() + timedelta(days=7)).isoformat(),
                                       "changeSummary": "Night visits", "clauses": "Dementia: night visits too"})
    assert not amended.errors, amended.errors
    email = f"desk-nurse.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name="desk and nurse",
                                              password=PASSWORD, roles=["front_desk", "nurse"],
                                              departments=[tenant.departments["A"]])
    tenant.staff_ids["desk_nurse"], tenant.tokens["desk_nurse"] = staff.id, await login(client, email)
    seq = await mark(tenant.id)

    own = await tenant.call("desk_nurse", CLAUSES_ONLY, id=in_a["id"])
    other = await tenant.call("desk_nurse", CLAUSES_ONLY, id=in_b["id"])
    diff = await tenant.call("desk_nurse", CLAUSES_DIFF, id=in_b["id"])

    assert own.errors == [] and own.data["contract"]["versions"] == [{"number": 1, "clauses": "Diabetic diet"}]
    assert other.codes == ["FORBIDDEN", "FORBIDDEN"]  # the contract is in reach, its clauses are not
    assert [v["clauses"] for v in other.data["contract"]["versions"]] == [None, None]
    assert diff.errors == [], diff.errors
    assert "Dementia" not in str(diff.data)
    refused = await events_since(tenant.id, seq, outcome="denied")
    assert {(str(e.resource_id), e.field_classes, e.reason) for e in refused} == {
        (in_b["id"], "clauses", "forbidden_field")}
    # finance, whose contracts are the institution's, reads them all
    finance = await tenant.call("finance", CLAUSES_ONLY, id=in_b["id"])
    assert [v["clauses"] for v in finance.data["contract"]["versions"]] == [
        "Dementia: accompany always", "Dementia: night visits too"]


async def test_reach_by_role(tenant: Tenant, services: Services) -> None:
    in_a = await active_contract(tenant, services)
    in_b = await active_contract(tenant, services, patient_id=await make_patient(
        tenant, departmentId=str(tenant.departments["B"].id)))
    for role in ("admin", "finance", "front_desk"):
        for made in (in_a, in_b):
            reply = await tenant.call(role, ITEMS_ONLY, id=made["id"])
            assert not reply.errors, (role, reply.errors)
    for role in ("nurse", "doctor", "department_head"):  # department A
        assert not (await tenant.call(role, ITEMS_ONLY, id=in_a["id"])).errors
        seq = await mark(tenant.id)
        reply = await tenant.call(role, ITEMS_ONLY, id=in_b["id"])
        assert reply.codes == ["NOT_FOUND"] and reply.data == {"contract": None}
        assert await denials_since(tenant.id, seq) == [("read", "contract", "not_found", uuid.UUID(in_b["id"]),
                                                        None)]
    seq = await mark(tenant.id)
    for role in ("compliance_officer", "support_agent"):  # the audit trail only; the support desk has no contracts
        reply = await tenant.call(role, ITEMS_ONLY, id=in_a["id"])
        assert reply.codes == ["FORBIDDEN"], (role, reply.body)
    assert await denials_since(tenant.id, seq) == [("read", "contract", "forbidden", uuid.UUID(in_a["id"]), None)] * 2


async def test_unknown_and_other_institutions_contracts_are_not_found_alike(tenant: Tenant, other_tenant: Tenant,
                                                                            services: Services) -> None:
    theirs = await active_contract(other_tenant, services)
    seq = await mark(tenant.id)
    foreign = await tenant.call("admin", ITEMS_ONLY, id=theirs["id"])
    missing = await tenant.call("admin", ITEMS_ONLY, id=str(uuid.uuid4()))
    assert foreign.codes == missing.codes == ["NOT_FOUND"]
    assert foreign.errors[0]["message"] == missing.errors[0]["message"]
    denials = await denials_since(tenant.id, seq)
    assert [d[:3] for d in denials] == [("read", "contract", "not_found")] * 2
    assert await AuditEvent.filter(institution_id=other_tenant.id, resource_id=uuid.UUID(theirs["id"]),
                                   outcome="denied").count() == 0


async def test_a_patient_reads_their_own_contracts_with_terms_and_no_one_elses(tenant: Tenant,
                                                                               services: Services) -> None:
    me = await open_account(tenant)
    mine = await active_contract(tenant, services, patient_id=me.patient_id, clauses="Key under the mat")
    someone = await active_contract(tenant, services)
    reply = await me.call(MONEY, id=mine["id"])
    assert not reply.errors, reply.errors
    version = reply.data["contract"]["versions"][0]
    assert version["periodTotal"]["amount"] == "480.00" and version["clauses"] == "Key under the mat"
    seq = await mark(tenant.id)
    other = await me.call(MONEY, id=someone["id"])
    assert other.codes == ["NOT_FOUND"]
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "contract", "not_found")]
    listed = await me.call("{ contracts(first: 10) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed.data["contracts"]["edges"]] == [mine["id"]]


async def test_a_partner_sees_only_the_items_it_delivers_for_granted_patients_and_no_money(
        tenant: Tenant, services: Services) -> None:
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    own, delivered = await make_item(tenant), await make_item(tenant)
    items = [item_input(own), item_input(delivered, quantity=2, by_partner=True)]
    theirs = await active_contract(tenant, services, patient_id=partnership.granted, items=items,
                                   partnerId=str(partnership.partner_id), clauses="Dementia: accompany always")
    not_granted = await active_contract(tenant, services, patient_id=partnership.other, items=items,
                                        partnerId=str(partnership.partner_id))
    no_partner = await active_contract(tenant, services, patient_id=partnership.granted)
    reply = await partnership.call(MONEY, id=theirs["id"])
    version = reply.data["contract"]["versions"][0]
    assert [(i["code"], i["quantity"], i["deliveredByPartner"]) for i in version["items"]] == [
        (theirs["versions"][0]["items"][1]["code"], 2, True)]
    assert version["clauses"] is None and version["periodTotal"] is None and version["items"][0]["unitPrice"] is None
    assert set(reply.codes) == {"FORBIDDEN"}
    for hidden in (not_granted, no_partner):
        assert (await partnership.call(MONEY, id=hidden["id"])).codes == ["NOT_FOUND"]
    listed = await partnership.call("{ contracts(first: 10) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed.data["contracts"]["edges"]] == [theirs["id"]]
    # without the scope its token reads no contract at all
    narrow = await make_partnership(tenant)
    assert (await narrow.call(MONEY, id=theirs["id"])).codes == ["FORBIDDEN"]
