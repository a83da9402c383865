"""A cursor whose sort key holds personal data is sealed (found by the front-end reviewer): a patient list by name
gave an endCursor that was the urlsafe base64 of ``patient.name.asc:<id>|Li Wei``, and portals put cursors in URLs
(browser history, proxy and server logs, analytics). The name order's cursor is now sealed under the institution's
key (AES-GCM, as a field is), its AAD naming the institution and the list's order: it shows neither the name nor the
id in any decoding, the next page after it is the same, and one of another institution or list, or altered, is
BAD_USER_INPUT at `after`, reason `invalid`, answered exactly as a forged cursor is. A cursor of ids, numbers and
times is unchanged: the default order's is still ``patient:<id>``, as the benchmark's baseline writes it."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import pytest

from bench.baseline import cursor as baseline_cursor
from models.keyring import KeyRing
from resolvers import institution as institutions
from resolvers import pagination
from resolvers.context import Services
from tests.factories import Response, Tenant, make_patient
from tests.models.test_key_rotation import age_keys

ORDERED = """query($order: PatientOrder, $first: Int!, $after: String) {
  patients(first: $first, after: $after, orderBy: $order) {
    edges { cursor } nodes { id fullName } pageInfo { hasNextPage endCursor }
  }
}"""
BY_NAME, BY_NAME_DESC = {"field": "NAME"}, {"field": "NAME", "direction": "DESC"}
NAMES = ("Li Wei", "王秀兰", "Alice", "Alice", "Zoë O'Brien-Ng")
STAFF = """query($after: String) { staffDirectory(first: 5, after: $after, orderBy: {field: NAME}) { nodes { id } } }"""


async def page(tenant: Tenant, order: dict[str, str] | None, first: int = 1, after: str | None = None) -> Any:
    reply = await tenant.call("front_desk", ORDERED, order=order, first=first, after=after)
    assert reply.errors == [], reply.errors
    return reply.data["patients"]


async def registered(tenant: Tenant) -> dict[str, list[str]]:
    """The patients of NAMES, each name's ids."""
    ids: dict[str, list[str]] = {}
    for name in NAMES:
        ids.setdefault(name, []).append(str(await make_patient(tenant, fullName=name)))
    return ids


def decodings(cursor: str) -> list[bytes]:
    """Every reading of a cursor someone holding it might try: as it is, base64 and urlsafe base64."""
    found = [cursor.encode()]
    padded = cursor + "=" * (-len(cursor) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            found.append(decode(padded))
        except (binascii.Error, ValueError):
            pass
    return found


def shows(cursor: str, text: str) -> bool:
    """Whether the cursor shows ``text`` (a name, an id as text or as its 16 bytes) in any decoding."""
    wanted = [text.encode(), text.lower().encode()]
    try:
        wanted.append(uuid.UUID(text).bytes)
    except ValueError:
        pass
    return any(value in decoded for decoded in decodings(cursor) for value in wanted)


def refused_at_after(reply: Response) -> dict[str, Any]:
    """The error of a refused cursor, as a forged one's: BAD_USER_INPUT at `after`, reason `invalid`."""
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    [error] = reply.errors
    assert (error["extensions"]["field"], error["extensions"]["reason"]) == ("after", "invalid"), error
    assert error["message"] == "after: not a valid cursor."
    return {key: value for key, value in error.items() if key != "extensions"} | {
        "extensions": {k: v for k, v in error["extensions"].items() if k != "requestId"}}


async def test_a_name_orders_cursor_shows_neither_the_name_nor_the_id(tenant: Tenant) -> None:
    ids = await registered(tenant)

    for order in (BY_NAME, BY_NAME_DESC):
        listed = await page(tenant, order, first=len(NAMES))
        cursors = [edge["cursor"] for edge in listed["edges"]]
        assert listed["pageInfo"]["endCursor"] == cursors[-1]
        for cursor, node in zip(cursors, listed["nodes"], strict=True):
            for name in NAMES:
                assert not shows(cursor, name), (cursor, name)
            for patient_ids in ids.values():
                for patient_id in patient_ids:
                    assert not shows(cursor, patient_id), (cursor, node)
            assert not shows(cursor, "patient.name"), cursor  # nor the list's kind
            assert len(cursor) <= 1000


async def test_the_page_after_a_sealed_cursor_is_the_next_one(tenant: Tenant) -> None:
    ids = await registered(tenant)
    everyone = await page(tenant, BY_NAME, first=len(NAMES))
    in_order = [node["id"] for node in everyone["nodes"]]
    assert [node["fullName"] for node in everyone["nodes"]] == sorted(
        [node["fullName"] for node in everyone["nodes"]])  # the database's collation; ties by id
    assert sorted(in_order) == sorted(i for patient_ids in ids.values() for i in patient_ids)

    for size in (1, 2):
        walked, after = [], None
        while True:
            listed = await page(tenant, BY_NAME, first=size, after=after)
            walked += [node["id"] for node in listed["nodes"]]
            if not listed["pageInfo"]["hasNextPage"]:
                break
            after = listed["pageInfo"]["endCursor"]
        assert walked == in_order, size
    first_two = await page(tenant, BY_NAME_DESC, first=2)
    rest = await page(tenant, BY_NAME_DESC, first=len(NAMES), after=first_two["pageInfo"]["endCursor"])
    assert [n["id"] for n in first_two["nodes"] + rest["nodes"]] == in_order[::-1]


async def test_a_sealed_cursor_is_the_same_each_time_the_page_is_read(tenant: Tenant) -> None:
    """A page read again (by the compiled plan or the generic path alike) answers the same cursors."""
    await registered(tenant)

    assert await page(tenant, BY_NAME, first=3) == await page(tenant, BY_NAME, first=3)


async def test_a_cursor_of_another_institution_does_not_open(tenant: Tenant, other_tenant: Tenant) -> None:
    await registered(tenant)
    await registered(other_tenant)  # the same names, so only the institution differs
    theirs = (await page(other_tenant, BY_NAME))["pageInfo"]["endCursor"]
    forged = refused_at_after(await tenant.call("front_desk", ORDERED, order=BY_NAME, first=1, after="x"))

    reply = await tenant.call("front_desk", ORDERED, order=BY_NAME, first=1, after=theirs)

    assert refused_at_after(reply) == forged  # nothing tells it from a forged one
    assert "Li Wei" not in str(reply.body) and theirs not in str(reply.body)


async def test_a_cursor_of_another_list_or_order_does_not_open(tenant: Tenant) -> None:
    await registered(tenant)
    by_name = (await page(tenant, BY_NAME))["pageInfo"]["endCursor"]
    by_name_desc = (await page(tenant, BY_NAME_DESC))["pageInfo"]["endCursor"]

    for order, after in ((BY_NAME_DESC, by_name), (BY_NAME, by_name_desc), (None, by_name),
                         ({"field": "CREATED_AT"}, by_name), ({"field": "UPDATED_AT", "direction": "DESC"}, by_name)):
        refused_at_after(await tenant.call("front_desk", ORDERED, order=order, first=1, after=after))
    refused_at_after(await tenant.call("front_desk", STAFF, after=by_name))


def flipped(cursor: str, bit: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[bit // 8] ^= 1 << (bit % 8)
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


async def test_an_altered_cursor_does_not_open(tenant: Tenant) -> None:
    ids = await registered(tenant)
    cursor = (await page(tenant, BY_NAME))["pageInfo"]["endCursor"]
    size = len(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) * 8
    # a bit of its header, its nonce, its body and its tag; cut short; the old plain form of the same position
    altered = [flipped(cursor, bit) for bit in (0, 39, 41, 17 * 8 + 3, size // 2, size - 1)]
    altered += [cursor[:-4], cursor[:40], pagination.encode("patient.name.asc", f"{ids['Alice'][0]}|Alice")]

    for after in altered:
        refused_at_after(await tenant.call("front_desk", ORDERED, order=BY_NAME, first=1, after=after))


async def test_a_cursor_sealed_before_a_key_rotation_still_opens(tenant: Tenant, services: Services,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await registered(tenant)
    in_order = [node["id"] for node in (await page(tenant, BY_NAME, first=len(NAMES)))["nodes"]]
    first = await page(tenant, BY_NAME, first=2)
    await institutions.rotate_key(services, tenant.id)
    await age_keys(tenant)
    monkeypatch.setattr("models.keyring.REFRESH", 0.0)  # the service's copy of the keys is due for a reload
    assert (await KeyRing(services.master_key).get(tenant.id)).current == 2

    rest = await page(tenant, BY_NAME, first=len(NAMES), after=first["pageInfo"]["endCursor"])

    assert [node["id"] for node in rest["nodes"]] == in_order[2:]


async def test_the_default_orders_cursor_is_unchanged(tenant: Tenant) -> None:
    """Ids only: still ``patient:<id>`` in urlsafe base64, as bench/baseline.py computes W1's cursors."""
    ids = await registered(tenant)
    last = await make_patient(tenant, fullName="Registered Last")

    listed = await page(tenant, None, first=len(NAMES) + 1)

    assert listed["nodes"][-1]["id"] == str(last)
    assert listed["pageInfo"]["endCursor"] == baseline_cursor("patient", last) == pagination.encode(
        "patient", str(last))
    after = await page(tenant, None, first=2, after=baseline_cursor("patient", ids["Li Wei"][0]))
    assert after["nodes"][0]["id"] == ids["王秀兰"][0]
