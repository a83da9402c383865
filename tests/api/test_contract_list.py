"""The list of contracts: filters, keyset pages, reach, and a fixed number of SQL statements whatever the page size
(with versions, items, money and the client's file on every row)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import AuditEvent
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.contracts import active_contract, draft, item_input, make_item, today
from tests.factories import Tenant, make_patient, subjects
from tests.patients import mark

LIST = """query($first: Int!, $after: String, $filter: ContractFilter) {
  contracts(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id status patientId } } pageInfo { hasNextPage endCursor } } }"""
HEAVY = """query($first: Int!) { contracts(first: $first) { edges { node { id number status
  patient { fullName } inForce { number } openVersion { number }
  versions { number deposit { amount } periodTotal { amount }
    items { code quantity unitPrice { amount } periodTotal { amount } } } } } pageInfo { hasNextPage } } }"""


def ids(reply: Any) -> list[str]:
    assert not reply.errors, reply.errors
    return [edge["node"]["id"] for edge in reply.data["contracts"]["edges"]]


async def test_filters_and_pages(tenant: Tenant, services: Services) -> None:
    item = await make_item(tenant)
    patient = await make_patient(tenant)
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    first = await active_contract(tenant, services, patient_id=patient)
    second = await draft(tenant, patient, [item_input(item)],
                         endOn=(today() + timedelta(days=40)).isoformat())
    third = await active_contract(tenant, services, patient_id=in_b)
    mine = {first["id"], second["id"], third["id"]}
    everything = [i for i in ids(await tenant.call("front_desk", LIST, first=100)) if i in mine]
    assert everything == [third["id"], second["id"], first["id"]]  # newest first
    page = await tenant.call("admin", LIST, first=2, filter={"patientId": str(patient)})
    assert ids(page) == [second["id"], first["id"]] and page.data["contracts"]["pageInfo"]["hasNextPage"] is False
    one = await tenant.call("admin", LIST, first=1, filter={"patientId": str(patient)})
    assert ids(one) == [second["id"]] and one.data["contracts"]["pageInfo"]["hasNextPage"] is True
    rest = await tenant.call("admin", LIST, first=1, filter={"patientId": str(patient)},
                             after=one.data["contracts"]["pageInfo"]["endCursor"])
    assert ids(rest) == [first["id"]] and rest.data["contracts"]["pageInfo"]["hasNextPage"] is False
    drafts = await tenant.call("admin", LIST, first=100, filter={"patientId": str(patient), "status": "DRAFT"})
    assert ids(drafts) == [second["id"]]
    in_dept_b = await tenant.call("admin", LIST, first=100, filter={"departmentId": str(tenant.departments["B"].id)})
    assert ids(in_dept_b) == [third["id"]]
    ending = await tenant.call("admin", LIST, first=100, filter={
        "patientId": str(patient), "endingBefore": (today() + timedelta(days=100)).isoformat()})
    assert ids(ending) == [second["id"]]
    # the nurse of department A lists only her patients' contracts
    nurse = set(ids(await tenant.call("nurse", LIST, first=100))) & mine
    assert nurse == {first["id"], second["id"]}
    bad = await tenant.call("admin", LIST, first=1, after="not-a-cursor")
    assert bad.codes == ["BAD_USER_INPUT"]
    too_many = await tenant.call("admin", LIST, first=101)
    assert too_many.codes == ["BAD_USER_INPUT"]


async def test_every_contract_listed_is_a_read_on_its_patients_trail(tenant: Tenant, services: Services) -> None:
    made = [await active_contract(tenant, services) for _ in range(2)]
    seq = await mark(tenant.id)
    assert set(ids(await tenant.call("finance", LIST, first=100))) >= {m["id"] for m in made}
    reads = await AuditEvent.filter(institution_id=tenant.id, seq__gt=seq, resource_type="contract", action="read")
    listed = {(str(record), str(patient)) for e in reads for record, patient in subjects(e)}
    assert listed >= {(m["id"], m["patientId"]) for m in made}


async def test_compliance_officers_list_nothing(tenant: Tenant) -> None:
    reply = await tenant.call("compliance_officer", LIST, first=10)
    assert reply.codes == ["FORBIDDEN"]


async def test_a_page_costs_the_same_statements_whatever_its_size(tenant: Tenant, services: Services,
                                                                   sql_counter: SqlCounter) -> None:
    items = [item_input(await make_item(tenant)), item_input(await make_item(tenant), 2)]
    for _ in range(6):
        await active_contract(tenant, services, items=items)
    for role in ("finance", "nurse"):
        costs = []
        for first in (2, 6):
            start = len(sql_counter.statements)
            reply = await tenant.call(role, HEAVY, first=first)
            if role == "finance":
                assert not reply.errors, reply.errors
            assert len(reply.data["contracts"]["edges"]) == first
            costs.append(len(sql_counter.statements) - start)
        assert costs[0] == costs[1], (role, costs)
