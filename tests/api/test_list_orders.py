"""Sort orders and totalCount on the lists a portal needs (issue 16): the follow-up worklist, a patient's visits and
appointments, the improvement list and the contract list. Each keeps its default order, sorts both ways by the
orders it offers, pages by keyset within an order (a cursor of another order is BAD_USER_INPUT), counts what
matches when asked (one statement more, whatever the page size), and refuses whoever may not read it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resolvers import appointment as appointments
from resolvers import institution as institutions
from tests.api.test_appointments import NOW, at, book, make_schedule
from tests.conftest import SqlCounter
from tests.contracts import draft, item_input, make_item
from tests.factories import Tenant, make_patient


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Appointments are booked in March 2027 (Shanghai), as tests/api/test_appointments.py does."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)


@dataclass(frozen=True)
class Listing:
    """One list: who reads it, who may not, how to fill it, and its query (taking $order, $first, $after)."""

    name: str
    reader: str
    denied: str
    query: str  # answers { totalCount nodes { id } pageInfo { endCursor hasNextPage } } at `root`
    fill: Callable[[Tenant], Awaitable[tuple[dict[str, Any], list[str]]]]  # variables, ids in ascending key order
    field: str  # an order field the list offers
    default_descending: bool = False  # the default order runs newest first

    @property
    def root(self) -> str:
        return self.query.split("{", 2)[1].split("(")[0].strip()


async def local_today(tenant: Tenant) -> datetime:
    return datetime.now(UTC).astimezone(await institutions.zone(tenant.id))


# -- filling each list, the ids in ascending order of the key sorted on ---------------------------------------


async def improvement_items(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    ids = {}
    for deadline in ("2030-03-01", "2030-01-01", "2030-02-01"):
        reply = await tenant.call("support_agent", "mutation($input: ImprovementCreateInput!) { improvementCreate("
                                  "input: $input) { id } }", input={
                                      "problem": f"Problem due {deadline}", "deadline": deadline,
                                      "departmentId": str(tenant.departments["A"].id)})
        assert reply.errors == [], reply.errors
        ids[deadline] = reply.data["improvementCreate"]["id"]
    return {}, [ids[d] for d in sorted(ids)]


async def worklist(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    today = (await local_today(tenant)).date()
    patient = await make_patient(tenant, "nurse")
    ids = {}
    for days in (2, 0, 1):
        reply = await tenant.call("doctor", "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate("
                                  "input: $input) { id } }", input={
                                      "patientId": str(patient), "ownerId": str(tenant.staff_ids["nurse"]),
                                      "dueOn": (today + timedelta(days=days)).isoformat()})
        assert reply.errors == [], reply.errors
        ids[days] = reply.data["followUpTaskCreate"]["id"]
    return {"dueBy": (today + timedelta(days=5)).isoformat()}, [ids[d] for d in sorted(ids)]


async def visits(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    patient = await make_patient(tenant, "nurse")
    ids = {}
    for hour in (11, 9, 10):
        reply = await tenant.call("nurse", "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }",
                                  input={"patientId": str(patient), "kind": "OUTPATIENT",
                                         "plannedAt": f"2026-12-01T{hour:02}:00:00+08:00"})
        assert reply.errors == [], reply.errors
        ids[hour] = reply.data["visitCreate"]["id"]
    return {"pid": str(patient)}, [ids[h] for h in sorted(ids)]


async def patient_appointments(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    schedule = await make_schedule(tenant, capacity=2)
    patient = await make_patient(tenant, "nurse")
    ids = {}
    for hour in (11, 9, 10):
        ids[hour] = (await book(tenant, schedule, patient, start=at(2, hour)))["id"]
    return {"pid": str(patient)}, [ids[h] for h in sorted(ids)]


async def contracts(tenant: Tenant) -> tuple[dict[str, Any], list[str]]:
    patient = await make_patient(tenant)
    item = await make_item(tenant)
    start = (await local_today(tenant)).date() + timedelta(days=1)
    ids = {}
    for days in (300, 100, 200):
        made = await draft(tenant, patient, [item_input(item)], startOn=start.isoformat(),
                           endOn=(start + timedelta(days=days)).isoformat())
        ids[days] = made["id"]
    return {"filter": {"patientId": str(patient)}}, [ids[d] for d in sorted(ids)]


PAGE = "totalCount nodes { id } pageInfo { endCursor hasNextPage }"
LISTINGS = [
    Listing("improvementItems", "support_agent", "nurse", f"""query($order: ImprovementOrder, $first: Int,
      $after: String) {{ improvementItems(orderBy: $order, first: $first, after: $after) {{ {PAGE} }} }}""",
            improvement_items, "DEADLINE"),
    Listing("followUpWorklist", "nurse", "front_desk", f"""query($order: FollowUpTaskOrder, $first: Int,
      $after: String, $dueBy: Date) {{ followUpWorklist(orderBy: $order, first: $first, after: $after, dueBy: $dueBy)
      {{ {PAGE} }} }}""", worklist, "DUE_ON"),
    Listing("visits", "nurse", "finance", f"""query($pid: ID!, $order: VisitOrder, $first: Int,
      $after: String) {{ visits(patientId: $pid, orderBy: $order, first: $first, after: $after) {{ {PAGE} }} }}""",
            visits, "PLANNED_AT", default_descending=True),
    Listing("patientAppointments", "front_desk", "finance", f"""query($pid: ID!, $order: AppointmentOrder,
      $first: Int, $after: String) {{ patientAppointments(patientId: $pid, orderBy: $order, first: $first,
      after: $after, upcomingOnly: false) {{ {PAGE} }} }}""", patient_appointments, "START",
            default_descending=True),
    Listing("contracts", "front_desk", "support_agent", f"""query($filter: ContractFilter, $order: ContractOrder,
      $first: Int, $after: String) {{ contracts(filter: $filter, orderBy: $order, first: $first, after: $after)
      {{ {PAGE} }} }}""", contracts, "END_ON"),
]
IDS = [listing.name for listing in LISTINGS]


async def ids_of(tenant: Tenant, listing: Listing, variables: dict[str, Any], **more: Any) -> list[str]:
    reply = await tenant.call(listing.reader, listing.query, **variables, **more)
    assert reply.errors == [], reply.errors
    return [node["id"] for node in reply.data[listing.root]["nodes"]]


@pytest.mark.parametrize("listing", LISTINGS, ids=IDS)
async def test_the_default_order_is_unchanged_and_both_directions_sort(tenant: Tenant, listing: Listing) -> None:
    variables, ascending = await listing.fill(tenant)

    default = await ids_of(tenant, listing, variables)
    up = await ids_of(tenant, listing, variables, order={"field": listing.field})
    down = await ids_of(tenant, listing, variables, order={"field": listing.field, "direction": "DESC"})
    by_change = await ids_of(tenant, listing, variables, order={"field": "UPDATED_AT", "direction": "DESC"})

    if listing.name != "contracts":  # newest first, by id
        assert default == (ascending[::-1] if listing.default_descending else ascending)
    assert up == ascending
    assert down == ascending[::-1]
    assert sorted(by_change) == sorted(ascending)


@pytest.mark.parametrize("listing", LISTINGS, ids=IDS)
async def test_pages_follow_their_order_and_count_the_whole_list(tenant: Tenant, listing: Listing) -> None:
    variables, ascending = await listing.fill(tenant)
    order = {"field": listing.field, "direction": "DESC"}

    first = await tenant.call(listing.reader, listing.query, **variables, order=order, first=2)
    page = first.data[listing.root]
    rest = await tenant.call(listing.reader, listing.query, **variables, order=order, first=2,
                             after=page["pageInfo"]["endCursor"])

    assert [n["id"] for n in page["nodes"]] == ascending[::-1][:2]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["totalCount"] == 3
    assert [n["id"] for n in rest.data[listing.root]["nodes"]] == ascending[:1]
    assert rest.data[listing.root]["pageInfo"]["hasNextPage"] is False
    assert rest.data[listing.root]["totalCount"] == 3


@pytest.mark.parametrize("listing", LISTINGS, ids=IDS)
async def test_a_cursor_from_another_order_is_bad_input(tenant: Tenant, listing: Listing) -> None:
    variables, _ = await listing.fill(tenant)
    first = await tenant.call(listing.reader, listing.query, **variables, first=1)
    cursor = first.data[listing.root]["pageInfo"]["endCursor"]

    reply = await tenant.call(listing.reader, listing.query, **variables, first=1, after=cursor,
                              order={"field": "UPDATED_AT"})

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "after"


@pytest.mark.parametrize("listing", LISTINGS, ids=IDS)
async def test_the_count_costs_one_statement_whatever_the_page_size(
        tenant: Tenant, listing: Listing, sql_counter: SqlCounter) -> None:
    variables, _ = await listing.fill(tenant)

    async def cost(first: int, counted: bool) -> int:
        query = listing.query if counted else listing.query.replace("totalCount", "")
        start = len(sql_counter.statements)
        reply = await tenant.call(listing.reader, query, **variables, first=first,
                                  order={"field": listing.field})
        assert reply.errors == [] and len(reply.data[listing.root]["nodes"]) == first
        return len(sql_counter.statements) - start

    assert await cost(1, True) == await cost(3, True) == await cost(3, False) + 1


@pytest.mark.parametrize("listing", LISTINGS, ids=IDS)
async def test_a_role_that_may_not_read_the_list_is_refused(tenant: Tenant, listing: Listing) -> None:
    variables, _ = await listing.fill(tenant)
    denied = len(await tenant.audit_events(outcome="denied"))

    reply = await tenant.call(listing.denied, listing.query, **variables, order={"field": listing.field})

    assert reply.codes in (["FORBIDDEN"], ["NOT_FOUND"])
    assert (reply.data or {}).get(listing.root) is None
    assert [e.actor_id for e in (await tenant.audit_events(outcome="denied"))[denied:]] == [
        tenant.staff_ids[listing.denied]]


async def test_a_forged_cursor_is_bad_input(tenant: Tenant) -> None:
    listing = LISTINGS[0]
    await listing.fill(tenant)

    reply = await tenant.call(listing.reader, listing.query, order={"field": "UPDATED_AT"},
                              after=str(uuid.uuid4()))

    assert reply.codes == ["BAD_USER_INPUT"]
