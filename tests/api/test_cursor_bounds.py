"""Forged cursors whose key the list reads but the database cannot bind (found in review): a text key holding a NUL
(PostgreSQL refuses to compare text with one), and a whole number past an integer column's range (PostgreSQL refuses
to bind it). Each answered INTERNAL_SERVER_ERROR on PostgreSQL; now BAD_USER_INPUT on the cursor's argument, on both
databases, as every forged cursor is. The cursors a list writes, and keys at the edge of the range, are still taken."""

from __future__ import annotations

import pytest

from resolvers import contract as contracts
from resolvers import pagination
from resolvers import service_item as service_items
from tests.api.test_service_catalogue import an_item
from tests.contracts import draft, item_input, make_item
from tests.factories import Response, Tenant, make_patient

ITEMS = "query($after: String) { serviceItemsConnection(first: 5, after: $after) { nodes { code } } }"
VERSIONS = """query($id: ID!, $after: String) { contractVersions(contractId: $id, first: 5, after: $after) {
  nodes { number } } }"""


def refused_at_after(reply: Response) -> bool:
    return reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "after"


@pytest.mark.parametrize(("key", "taken"), [("C-01", True), ("C-01\x00", False), ("\x00", False)])
async def test_a_catalogue_cursor_holding_a_nul_is_bad_input(tenant: Tenant, key: str, taken: bool) -> None:
    await an_item(tenant, code="C-01")
    await an_item(tenant, code="C-02")

    reply = await tenant.call("nurse", ITEMS, after=pagination.encode(service_items.ITEM_CURSOR, key))

    if taken:
        assert reply.errors == [] and [n["code"] for n in reply.data["serviceItemsConnection"]["nodes"]] == ["C-02"]
    else:
        assert refused_at_after(reply), reply.errors


@pytest.mark.parametrize(("key", "taken"), [("0", True), (str(2**31 - 1), True), (str(2**31), False),
                                            ("9" * 18, False)])
async def test_a_version_cursor_past_an_integer_is_bad_input(tenant: Tenant, key: str, taken: bool) -> None:
    contract = await draft(tenant, await make_patient(tenant), [item_input(await make_item(tenant))])

    reply = await tenant.call("front_desk", VERSIONS, id=contract["id"],
                              after=pagination.encode(contracts.VERSION_CURSOR, key))

    if taken:
        assert reply.errors == [], reply.errors
        assert [n["number"] for n in reply.data["contractVersions"]["nodes"]] == ([1] if key == "0" else [])
    else:
        assert refused_at_after(reply), reply.errors
