"""The audit trail's filter answers bad input with the error it always gave, whichever check the filter's value
building runs first (resolvers/audit_event.py)."""

from __future__ import annotations

from tests.factories import Tenant

QUERY = """query($filter: AuditEventFilter) { auditEvents(filter: $filter) { nodes { id } } }"""


async def test_a_bad_resource_type_is_named_before_a_reversed_period(tenant: Tenant) -> None:
    # before 953c5f0 the resource type was cleaned before the period was checked: its error came first
    reply = await tenant.call("compliance_officer", QUERY, filter={
        "resourceType": "patient\u0007", "from": "2024-02-01T00:00:00+00:00", "to": "2024-01-01T00:00:00+00:00"})
    assert reply.codes == ["BAD_USER_INPUT"]
    assert "filter.resourceType" in reply.errors[0]["message"], reply.errors


async def test_a_bad_resource_type_name_is_named_as_such(tenant: Tenant) -> None:
    # the filter in the API's spelling is cleaned as the stored one is, under its own name (a NUL reached no database)
    for name in ("Patient\u0000", "Patient\u0007", "P" * 1001):
        reply = await tenant.call("compliance_officer", QUERY, filter={"resourceTypeName": name})
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == "filter.resourceTypeName", reply.errors
