"""The service catalogue (FHIR ChargeItemDefinition) through the API: items with their description, service
standard, unit and frequencies, changed over the version read; price versions in exact money, in force from
their date, in one currency per item; prices as commercial terms (nurses see the standard, not the fee); who
may do what, with every refusal audited and nothing written; and lists at a fixed cost in SQL statements."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest

from audit import writer
from models import AuditEvent, ServiceItem, ServiceItemPrice
from resolvers import service_item as service_items
from tests.conftest import BACKEND, SqlCounter
from tests.factories import Response, Tenant
from tests.locks import held, pause_after, pause_before, until_waiting
from tests.patients import denials_since, events_since

ITEM = "id code name active description standard unit frequencies version"
CREATE = f"""mutation($code: String!, $name: String!, $description: String, $standard: String,
                      $unit: ServiceUnit! = VISIT, $frequencies: [ServiceFrequency!]) {{
  serviceItemCreate(code: $code, name: $name, description: $description, standard: $standard, unit: $unit,
                    frequencies: $frequencies) {{ {ITEM} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: ServiceItemUpdateInput!, $v: Int!) {{
  serviceItemUpdate(id: $id, input: $input, expectedVersion: $v) {{ {ITEM} }} }}"""
SET_ACTIVE = "mutation($id: ID!, $on: Boolean!) { serviceItemSetActive(id: $id, active: $on) { active version } }"
PRICE = "id number effectiveFrom unitPrice { amount currency minorUnits }"
ADD_PRICE = f"""mutation($item: ID!, $price: MoneyInput!, $from: Date!) {{
  serviceItemPriceAdd(itemId: $item, price: $price, effectiveFrom: $from) {{ {PRICE} }} }}"""
GET = f"query($id: ID!) {{ serviceItem(id: $id) {{ {ITEM} }} }}"
PRICE_ON = f"query($id: ID!, $on: Date!) {{ serviceItem(id: $id) {{ code priceOn(date: $on) {{ {PRICE} }} }} }}"
HISTORY = """query($id: ID!, $first: Int!, $after: String) { serviceItem(id: $id) {
  prices(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { number effectiveFrom
  unitPrice { amount } } } } }"""
STANDARD_AND_PRICES = """query($id: ID!) { serviceItem(id: $id) { code standard unit frequencies
  priceOn(date: "2026-03-01") { number } prices(first: 5) { nodes { number } } } }"""
LIST = """query($on: Date!) { serviceItems { code standard priceOn(date: $on) { unitPrice { amount currency } }
  prices(first: 2) { pageInfo { hasNextPage } nodes { number effectiveFrom } } } }"""

NURSING = {
    "code": "hn-01", "name": "Home nursing visit",
    "description": "A registered nurse visits the client at home.",
    "standard": "Vital signs, medication check and wound care by a registered nurse; at most 60 minutes; "
                "recorded in the visit note the same day.",
    "unit": "VISIT", "frequencies": ["WEEKLY", "DAILY"],
}


def ok(reply: Response, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def refused(reply: Response, code: str, field: str | None = None) -> dict[str, Any]:
    assert [e["extensions"]["code"] for e in reply.errors] == [code], reply.errors
    error: dict[str, Any] = reply.errors[0]
    if field is not None:
        assert error["extensions"].get("field") == field, error
    return error


async def an_item(tenant: Tenant, role: str = "admin", **fields: Any) -> dict[str, Any]:
    return dict(ok(await tenant.call(role, CREATE, **{**NURSING, **fields}), "serviceItemCreate"))


async def add_price(tenant: Tenant, item_id: str, amount: str, on: str, currency: str = "CNY",
                    role: str = "finance") -> Response:
    return await tenant.call(role, ADD_PRICE, item=item_id, price={"amount": amount, "currency": currency},
                             **{"from": on})


async def priced(tenant: Tenant, item_id: str, amount: str, on: str, currency: str = "CNY") -> dict[str, Any]:
    return dict(ok(await add_price(tenant, item_id, amount, on, currency), "serviceItemPriceAdd"))


async def items_of(tenant: Tenant) -> list[tuple[Any, ...]]:
    return list(await ServiceItem.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "code", "name", "description", "standard", "unit", "frequencies", "active", "version"))


async def prices_of(tenant: Tenant) -> list[tuple[Any, ...]]:
    return list(await ServiceItemPrice.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "item_id", "number", "unit_price", "currency", "effective_from"))


async def mark(tenant: Tenant) -> int:
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    return 0 if last is None else last.seq


# -- items ------------------------------------------------------------------------------------------


async def test_an_item_with_every_field_and_one_with_the_defaults(tenant: Tenant) -> None:
    seq = await mark(tenant)
    item = await an_item(tenant)
    assert item == {"id": item["id"], "code": "HN-01", "name": "Home nursing visit",
                    "description": NURSING["description"], "standard": NURSING["standard"], "unit": "VISIT",
                    "frequencies": ["DAILY", "WEEKLY"], "active": True, "version": 1}
    plain = ok(await tenant.call("finance", CREATE, code="BATH.1", name="Bathing assistance"), "serviceItemCreate")
    assert {k: plain[k] for k in ("code", "description", "standard", "unit", "frequencies", "version")} == {
        "code": "BATH.1", "description": None, "standard": None, "unit": "VISIT", "frequencies": ["PER_VISIT"],
        "version": 1}
    for unit in ("HOUR", "DAY", "SESSION", "MONTH", "ITEM"):
        made = ok(await tenant.call("admin", CREATE, code=f"U-{unit}", name=unit.title(), unit=unit,
                                    frequencies=["MONTHLY", "PER_VISIT", "WEEKLY", "DAILY"]), "serviceItemCreate")
        assert (made["unit"], made["frequencies"]) == (unit, ["DAILY", "WEEKLY", "PER_VISIT", "MONTHLY"])
    # Readable by the roles that deliver or sell services.
    for role in ("nurse", "doctor", "front_desk", "department_head", "support_agent", "finance", "admin"):
        assert ok(await tenant.call(role, GET, id=item["id"]), "serviceItem") == item
    # Each write is on the record with the names of the fields written, never their values.
    writes = await events_since(tenant.id, seq, resource_type="service_item", outcome="allowed")
    assert len(writes) == 7 and {e.action for e in writes} == {"create"}
    assert writes[0].resource_id == uuid.UUID(item["id"])
    assert set(writes[0].fields_read.split(",")) >= {"code", "name", "description", "standard", "unit",
                                                     "frequencies"}
    assert "nurse visits" not in writes[0].fields_read


async def test_each_field_changes_over_the_version_read(tenant: Tenant) -> None:
    item = await an_item(tenant)
    changes: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"name": "  Home nursing visit (60 min)  "}, {"name": "Home nursing visit (60 min)"}),
        ({"description": "At the client's home."}, {"description": "At the client's home."}),
        ({"standard": "By a registered nurse, 60 minutes."}, {"standard": "By a registered nurse, 60 minutes."}),
        ({"unit": "HOUR"}, {"unit": "HOUR"}),
        ({"frequencies": ["MONTHLY"]}, {"frequencies": ["MONTHLY"]}),
        ({"description": None, "standard": "   "}, {"description": None, "standard": None}),
    ]
    seq = await mark(tenant)
    for version, (change, expected) in enumerate(changes, start=1):
        updated = ok(await tenant.call("finance" if version % 2 else "admin", UPDATE, id=item["id"], input=change,
                                       v=version), "serviceItemUpdate")
        assert {k: updated[k] for k in expected} == expected
        assert (updated["version"], updated["code"]) == (version + 1, "HN-01")
    assert ok(await tenant.call("nurse", GET, id=item["id"]), "serviceItem")["version"] == len(changes) + 1
    writes = await events_since(tenant.id, seq, resource_type="service_item", outcome="allowed")
    assert [(e.action, e.fields_read) for e in writes[:2]] == [("update", "name"), ("update", "description")]
    # Retiring is a change too: the version moves on, and a change over the old version is stale.
    assert ok(await tenant.call("admin", SET_ACTIVE, id=item["id"], on=False), "serviceItemSetActive") == {
        "active": False, "version": len(changes) + 2}
    before = await items_of(tenant)
    refused(await tenant.call("admin", UPDATE, id=item["id"], input={"name": "Late"}, v=len(changes) + 1),
            "CONFLICT", "expectedVersion")
    assert await items_of(tenant) == before


async def test_a_stale_version_changes_nothing(tenant: Tenant) -> None:
    item = await an_item(tenant)
    ok(await tenant.call("admin", UPDATE, id=item["id"], input={"name": "First desk"}, v=1), "serviceItemUpdate")
    before, seq = await items_of(tenant), await mark(tenant)
    for version in (1, 3, 0, -1):
        refused(await tenant.call("finance", UPDATE, id=item["id"], input={"name": "Second desk"}, v=version),
                "CONFLICT", "expectedVersion")
    assert await items_of(tenant) == before
    assert await events_since(tenant.id, seq, resource_type="service_item") == []


async def test_retiring_an_item_changed_meanwhile_retires_the_item_as_changed(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """serviceItemSetActive takes no version: found in review, an edit committed between its read and its write
    answered it CONFLICT on expectedVersion, an argument it has not. It retires the item as it now is."""
    item = await an_item(tenant)
    reading = pause_after(monkeypatch, service_items, "_find")
    async with held(tenant.call("admin", SET_ACTIVE, id=item["id"], on=False), reading) as retiring:
        ok(await tenant.call("finance", UPDATE, id=item["id"], input={"name": "Night nursing"}, v=1),
           "serviceItemUpdate")
    assert ok(await retiring, "serviceItemSetActive") == {"active": False, "version": 3}
    [row] = await items_of(tenant)
    assert (row[2], row[7], row[8]) == ("Night nursing", False, 3)
    written = await AuditEvent.filter(institution_id=tenant.id, resource_type="service_item", action="update")
    assert sorted(e.fields_read for e in written) == ["active", "name"]


async def a_nearly_full_catalogue(tenant: Tenant) -> None:
    """MAX_ITEMS - 1 items, straight into the table (creating them one by one is what the other tests do)."""
    await ServiceItem.bulk_create([ServiceItem(id=uuid.uuid4(), institution_id=tenant.id, code=f"FILL-{n}",
                                               name=f"Item {n}")
                                   for n in range(service_items.MAX_ITEMS - 1)])


async def test_a_catalogue_holds_a_bounded_number_of_items(tenant: Tenant) -> None:
    await a_nearly_full_catalogue(tenant)
    await an_item(tenant)
    before = await items_of(tenant)
    error = refused(await tenant.call("admin", CREATE, **{**NURSING, "code": "ONE-MORE"}), "BAD_USER_INPUT", "code")
    assert error["extensions"]["reason"] == "item_count"
    assert await items_of(tenant) == before


@pytest.mark.skipif(BACKEND == "sqlite", reason="concurrent transactions: PostgreSQL")
async def test_two_creates_at_once_do_not_pass_the_catalogues_bound_together(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: the items were counted before the create's transaction, so two creates one place short of
    the bound both counted one place left. The second now counts once the first has committed."""
    await a_nearly_full_catalogue(tenant)
    writing = pause_before(monkeypatch, writer, "append")  # the first create, its item inserted, not committed
    async with held(tenant.call("admin", CREATE, **NURSING), writing) as first:
        second = asyncio.ensure_future(tenant.call("admin", CREATE, **{**NURSING, "code": "ONE-MORE"}))
        await until_waiting([second])
    ok(await first, "serviceItemCreate")
    refused(await second, "BAD_USER_INPUT", "code")
    assert await ServiceItem.filter(institution_id=tenant.id).count() == service_items.MAX_ITEMS


CREATE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"frequencies": []}, "frequencies"),
    ({"code": ""}, "code"),
    ({"code": "   "}, "code"),
    ({"code": "HN 01"}, "code"),
    ({"code": "HN_01"}, "code"),
    ({"code": "护理01"}, "code"),
    ({"code": "straße"}, "code"),  # would be STRASSE once upper-cased
    ({"code": "X" * 33}, "code"),
    ({"name": "  "}, "name"),
    ({"name": "N" * 101}, "name"),
    ({"name": "Bad\u202ename"}, "name"),
    ({"description": "D" * 2001}, "description"),
    ({"standard": "S" * 4001}, "standard"),
    ({"standard": "bell\x07"}, "standard"),
]


@pytest.mark.parametrize(("change", "field"), CREATE_REFUSALS, ids=[f for _, f in CREATE_REFUSALS])
async def test_bad_items_are_refused_at_their_field(tenant: Tenant, change: dict[str, Any], field: str) -> None:
    await an_item(tenant, code="KEEP")
    before = await items_of(tenant)
    refused(await tenant.call("admin", CREATE, **{**NURSING, **change}), "BAD_USER_INPUT", field)
    assert await items_of(tenant) == before


async def test_unknown_units_and_frequencies_and_duplicate_codes_are_refused(tenant: Tenant) -> None:
    await an_item(tenant)
    before = await items_of(tenant)
    for change in ({"unit": "FURLONG"}, {"frequencies": ["HOURLY"]}, {"unit": "visit"}):
        error = refused(await tenant.call("admin", CREATE, **{**NURSING, "code": "NEW", **change}),
                        "BAD_USER_INPUT")  # not a value of the enum: refused by validation, naming the argument
        assert error["extensions"]["field"] == ("unit" if "unit" in change else "frequencies[0]")
        assert ("FURLONG" if "unit" in change else "HOURLY") not in error["message"]  # the value is not echoed
    refused(await tenant.call("admin", CREATE, **{**NURSING, "code": " hn-01 "}), "BAD_USER_INPUT", "code")
    assert await items_of(tenant) == before


UPDATE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({}, "input"),
    ({"name": None}, "input.name"),
    ({"name": ""}, "input.name"),
    ({"unit": None}, "input.unit"),
    ({"frequencies": None}, "input.frequencies"),
    ({"frequencies": []}, "input.frequencies"),
    ({"standard": "S" * 4001}, "input.standard"),
]


@pytest.mark.parametrize(("change", "field"), UPDATE_REFUSALS, ids=[f"{i}-{f}" for i, (_, f)
                                                                   in enumerate(UPDATE_REFUSALS)])
async def test_bad_changes_are_refused_at_their_field(tenant: Tenant, change: dict[str, Any], field: str) -> None:
    item = await an_item(tenant)
    before = await items_of(tenant)
    refused(await tenant.call("admin", UPDATE, id=item["id"], input=change, v=1), "BAD_USER_INPUT", field)
    assert await items_of(tenant) == before


async def test_unknown_and_malformed_items(tenant: Tenant) -> None:
    missing = str(uuid.uuid4())
    seq = await mark(tenant)
    refused(await tenant.call("admin", GET, id=missing), "NOT_FOUND", "id")
    refused(await tenant.call("admin", UPDATE, id=missing, input={"name": "X"}, v=1), "NOT_FOUND", "id")
    refused(await tenant.call("admin", SET_ACTIVE, id=missing, on=False), "NOT_FOUND", "id")
    refused(await add_price(tenant, missing, "1.00", "2026-01-01"), "NOT_FOUND", "itemId")
    refused(await tenant.call("admin", GET, id="not-an-id"), "BAD_USER_INPUT", "id")
    refused(await add_price(tenant, "not-an-id", "1.00", "2026-01-01"), "BAD_USER_INPUT", "itemId")
    assert await denials_since(tenant.id, seq) == [
        ("read", "service_item", "not_found", uuid.UUID(missing), None),
        ("update", "service_item", "not_found", uuid.UUID(missing), None),
        ("update", "service_item", "not_found", uuid.UUID(missing), None),
        ("create", "service_item", "not_found", uuid.UUID(missing), None)]
    assert await items_of(tenant) == [] and await prices_of(tenant) == []


# -- prices -----------------------------------------------------------------------------------------


async def test_the_price_in_force_the_day_before_on_and_after_each_change(tenant: Tenant) -> None:
    item = await an_item(tenant)
    first = await priced(tenant, item["id"], "100", "2026-01-01")
    assert first == {"id": first["id"], "number": 1, "effectiveFrom": "2026-01-01",
                     "unitPrice": {"amount": "100.00", "currency": "CNY", "minorUnits": "10000"}}
    second = await priced(tenant, item["id"], "120.5", "2026-07-01")
    assert (second["number"], second["unitPrice"]) == (2, {"amount": "120.50", "currency": "CNY",
                                                             "minorUnits": "12050"})
    expected = {"2025-12-31": None, "2026-01-01": 1, "2026-01-02": 1, "2026-06-30": 1, "2026-07-01": 2,
                "2026-07-02": 2, "2030-01-01": 2}
    for role in ("admin", "finance"):
        for on, number in expected.items():
            found = ok(await tenant.call(role, PRICE_ON, id=item["id"], on=on), "serviceItem")["priceOn"]
            assert (None if found is None else found["number"]) == number, on
    # The function the contracts call gives the same answers, one item or many.
    item_id = uuid.UUID(item["id"])
    for on, number in expected.items():
        row = await service_items.price_on(tenant.id, item_id, date.fromisoformat(on))
        assert (None if row is None else row.number) == number
        batch = await service_items.prices_on(tenant.id, [item_id, uuid.uuid4()], date.fromisoformat(on))
        assert {k: v.number for k, v in batch.items()} == ({} if number is None else {item_id: number})


async def test_future_versions_queue_in_date_order(tenant: Tenant) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "80.00", "2020-01-01")  # recorded late: a past date is fine
    await priced(tenant, item["id"], "90.00", "2031-01-01")  # a scheduled change
    before = await prices_of(tenant)
    for on in ("2030-12-31", "2031-01-01", "2020-01-02"):  # before or on the latest version's date
        refused(await add_price(tenant, item["id"], "95.00", on), "BAD_USER_INPUT", "effectiveFrom")
    assert await prices_of(tenant) == before
    third = await priced(tenant, item["id"], "95.00", "2031-07-01")  # a second future version, after the first
    assert third["number"] == 3
    history = ok(await tenant.call("admin", HISTORY, id=item["id"], first=2), "serviceItem")["prices"]
    assert [(p["number"], p["effectiveFrom"], p["unitPrice"]["amount"]) for p in history["nodes"]] == [
        (3, "2031-07-01", "95.00"), (2, "2031-01-01", "90.00")]
    assert history["pageInfo"]["hasNextPage"] is True
    rest = ok(await tenant.call("finance", HISTORY, id=item["id"], first=2, after=history["pageInfo"]["endCursor"]),
              "serviceItem")["prices"]
    assert ([p["number"] for p in rest["nodes"]], rest["pageInfo"]["hasNextPage"]) == ([1], False)
    refused(await tenant.call("admin", HISTORY, id=item["id"], first=0), "BAD_USER_INPUT", "first")
    refused(await tenant.call("admin", HISTORY, id=item["id"], first=2, after="bogus"), "BAD_USER_INPUT", "after")
    # after: "" is no cursor, the first page, as on every list (found in review: BAD_USER_INPUT "not a valid cursor")
    assert ok(await tenant.call("admin", HISTORY, id=item["id"], first=2, after=""), "serviceItem")["prices"] == history


async def test_currencies_keep_their_own_decimals(tenant: Tenant) -> None:
    yen = await an_item(tenant, code="JP-1")
    assert (await priced(tenant, yen["id"], "1200", "2026-01-01", "JPY"))["unitPrice"] == {
        "amount": "1200", "currency": "JPY", "minorUnits": "1200"}
    free = await an_item(tenant, code="FREE")
    assert (await priced(tenant, free["id"], "0.00", "2026-01-01", "HKD"))["unitPrice"]["minorUnits"] == "0"
    big = await an_item(tenant, code="BIG")
    assert (await priced(tenant, big["id"], "10000000000.00", "2026-01-01"))["unitPrice"]["minorUnits"] == \
        "1000000000000"
    assert [row[3] for row in await prices_of(tenant)] == [1200, 0, 10**12]  # integers, never floats


PRICE_REFUSALS: list[tuple[str, str, str]] = [
    ("-1", "CNY", "price.amount"),
    ("-0.01", "CNY", "price.amount"),
    ("1.005", "CNY", "price.amount"),
    ("12.5", "JPY", "price.amount"),
    ("1e3", "CNY", "price.amount"),
    ("NaN", "CNY", "price.amount"),
    ("", "CNY", "price.amount"),
    (" 12", "CNY", "price.amount"),
    ("1,200.00", "CNY", "price.amount"),
    ("10000000000.01", "CNY", "price.amount"),
    ("12.00", "cny", "price.currency"),
    ("12.00", "XXX", "price.currency"),
    ("12.00", "", "price.currency"),
]


@pytest.mark.parametrize(("amount", "currency", "field"), PRICE_REFUSALS,
                         ids=[f"{a!r}-{c}" for a, c, _ in PRICE_REFUSALS])
async def test_bad_prices_are_refused_at_their_field(tenant: Tenant, amount: str, currency: str, field: str) -> None:
    item = await an_item(tenant)
    seq = await mark(tenant)
    refused(await add_price(tenant, item["id"], amount, "2026-01-01", currency), "BAD_USER_INPUT", field)
    assert await prices_of(tenant) == []
    assert await events_since(tenant.id, seq, resource_type="service_item_price") == []


async def test_a_float_is_not_money(tenant: Tenant) -> None:
    item = await an_item(tenant)
    reply = await tenant.call("admin", ADD_PRICE, item=item["id"], price={"amount": 12.5, "currency": "CNY"},
                              **{"from": "2026-01-01"})
    refused(reply, "BAD_USER_INPUT")  # String cannot represent a non-string value
    assert await prices_of(tenant) == []


async def test_one_currency_per_item(tenant: Tenant) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "100.00", "2026-01-01")
    before = await prices_of(tenant)
    error = refused(await add_price(tenant, item["id"], "120.00", "2026-07-01", "HKD"), "BAD_USER_INPUT",
                    "price.currency")
    assert "currency mismatch" in error["message"]
    assert await prices_of(tenant) == before
    other = await an_item(tenant, code="OTHER")  # another item may have another currency
    assert (await priced(tenant, other["id"], "120.00", "2026-07-01", "HKD"))["number"] == 1


# -- who may see and do what ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["nurse", "doctor", "front_desk", "department_head", "support_agent"])
async def test_staff_without_commercial_terms_see_the_standard_not_the_fee(tenant: Tenant, role: str) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "100.00", "2026-01-01")
    seq = await mark(tenant)
    reply = await tenant.call(role, STANDARD_AND_PRICES, id=item["id"])
    assert reply.data == {"serviceItem": {"code": "HN-01", "standard": NURSING["standard"], "unit": "VISIT",
                                          "frequencies": ["DAILY", "WEEKLY"], "priceOn": None, "prices": None}}
    assert sorted((e["path"], e["extensions"]["code"]) for e in reply.errors) == [
        (["serviceItem", "priceOn"], "FORBIDDEN"), (["serviceItem", "prices"], "FORBIDDEN")]
    # The refusal is on the record (once), and no read of the fees is.
    events = await events_since(tenant.id, seq)
    assert [(e.action, e.resource_type, e.outcome, e.reason, e.field_classes) for e in events] == [
        ("read", "service_item", "denied", "forbidden_field", "terms")]  # the class contracts' terms are read under
    # The same on a whole list: one refusal per field, one record.
    seq = await mark(tenant)
    reply = await tenant.call(role, LIST, on="2026-03-01")
    assert reply.data["serviceItems"] == [{"code": "HN-01", "standard": NURSING["standard"], "priceOn": None,
                                           "prices": None}]
    assert {e["extensions"]["code"] for e in reply.errors} == {"FORBIDDEN"}
    assert len(await events_since(tenant.id, seq)) == 1


@pytest.mark.parametrize("role", ["nurse", "front_desk", "doctor", "support_agent", "compliance_officer"])
async def test_only_admins_and_finance_price_items(tenant: Tenant, role: str) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "100.00", "2026-01-01")
    before, seq = await prices_of(tenant), await mark(tenant)
    refused(await add_price(tenant, item["id"], "150.00", "2026-07-01", role=role), "FORBIDDEN")
    assert await prices_of(tenant) == before
    assert await denials_since(tenant.id, seq) == [
        ("create", "service_item_price", "forbidden", uuid.UUID(item["id"]), None)]


@pytest.mark.parametrize("role", ["nurse", "front_desk", "doctor", "department_head"])
async def test_only_admins_and_finance_change_the_catalogue(tenant: Tenant, role: str) -> None:
    item = await an_item(tenant)
    before, seq = await items_of(tenant), await mark(tenant)
    refused(await tenant.call(role, CREATE, **{**NURSING, "code": "NEW"}), "FORBIDDEN")
    refused(await tenant.call(role, UPDATE, id=item["id"], input={"name": "Cheaper"}, v=1), "FORBIDDEN")
    refused(await tenant.call(role, SET_ACTIVE, id=item["id"], on=False), "FORBIDDEN")
    assert await items_of(tenant) == before
    item_id = uuid.UUID(item["id"])
    assert await denials_since(tenant.id, seq) == [("create", "service_item", "forbidden", None, None),
                                                   ("update", "service_item", "forbidden", item_id, None),
                                                   ("update", "service_item", "forbidden", item_id, None)]


async def test_compliance_officers_do_not_read_the_catalogue(tenant: Tenant) -> None:
    item = await an_item(tenant)
    seq = await mark(tenant)
    refused(await tenant.call("compliance_officer", GET, id=item["id"]), "FORBIDDEN")
    assert await denials_since(tenant.id, seq) == [("read", "service_item", "forbidden", uuid.UUID(item["id"]),
                                                    None)]


async def test_another_institutions_item_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "100.00", "2026-01-01")
    items, prices = await items_of(tenant), await prices_of(tenant)
    seq, other_seq = await mark(tenant), await mark(other_tenant)
    item_id = uuid.UUID(item["id"])
    for role in ("admin", "finance"):
        refused(await other_tenant.call(role, GET, id=item["id"]), "NOT_FOUND", "id")
        refused(await other_tenant.call(role, UPDATE, id=item["id"], input={"name": "Mine"}, v=1), "NOT_FOUND", "id")
        refused(await other_tenant.call(role, SET_ACTIVE, id=item["id"], on=False), "NOT_FOUND", "id")
        refused(await add_price(other_tenant, item["id"], "1.00", "2027-01-01", role=role), "NOT_FOUND", "itemId")
        assert ok(await other_tenant.call(role, LIST, on="2026-03-01"), "serviceItems") == []
    assert (await items_of(tenant), await prices_of(tenant)) == (items, prices)
    assert await prices_of(other_tenant) == [] and await items_of(other_tenant) == []
    assert await events_since(tenant.id, seq) == []  # nothing on the owner's trail: nothing happened to it
    assert await denials_since(other_tenant.id, other_seq) == 2 * [
        ("read", "service_item", "not_found", item_id, None), ("update", "service_item", "not_found", item_id, None),
        ("update", "service_item", "not_found", item_id, None), ("create", "service_item", "not_found", item_id, None)]
    # The function the contracts call does not cross institutions either.
    assert await service_items.price_on(other_tenant.id, item_id, date(2026, 3, 1)) is None
    assert await service_items.prices_on(other_tenant.id, [item_id], date(2026, 3, 1)) == {}


async def test_a_price_version_write_is_audited_without_the_amount(tenant: Tenant) -> None:
    item = await an_item(tenant)
    seq = await mark(tenant)
    price = await priced(tenant, item["id"], "4321.98", "2026-01-01")
    [event] = await events_since(tenant.id, seq)
    assert (event.action, event.resource_type, event.resource_id, event.outcome, event.actor_id) == (
        "create", "service_item_price", uuid.UUID(price["id"]), "allowed", tenant.staff_ids["finance"])
    assert set(event.fields_read.split(",")) == {"item_id", "number", "unit_price", "currency", "effective_from"}
    row = await ServiceItemPrice.get(id=price["id"])
    assert (row.unit_price, row.created_by_id) == (432198, tenant.staff_ids["finance"])
    # the amount as given and in minor units (not "4321" alone: the row's hashes and ids are hex, and held it by
    # chance once in a few hundred runs)
    written = str(await AuditEvent.filter(id=event.id).values())
    assert "4321.98" not in written and "432198" not in written


# -- cost --------------------------------------------------------------------------------------------


async def test_the_catalogue_with_prices_costs_a_fixed_number_of_statements(tenant: Tenant,
                                                                          sql_counter: SqlCounter) -> None:
    async def cost() -> int:
        start = len(sql_counter.statements)
        rows = ok(await tenant.call("finance", LIST, on="2026-08-01"), "serviceItems")
        assert all(row["priceOn"]["unitPrice"]["amount"] == "120.00" for row in rows)
        assert all([p["number"] for p in row["prices"]["nodes"]] == [3, 2] for row in rows)
        return len(sql_counter.statements) - start

    async def grow(count: int) -> None:
        for _ in range(count):
            item = await an_item(tenant, code=f"I-{uuid.uuid4().hex[:8]}")
            for amount, on in (("100.00", "2026-01-01"), ("120.00", "2026-07-01"), ("150.00", "2027-01-01")):
                await priced(tenant, item["id"], amount, on)

    await grow(2)
    small = await cost()
    await grow(4)
    assert await cost() == small > 0
