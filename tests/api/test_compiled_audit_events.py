"""The compiled read path for the audit trail's pages (schema/compiled/audit_event.py: the root ``auditEvents``, bench
W4, and a partner's ``partnerAccessLog``) answers exactly as the generic path: a corpus of queries run through both
(tests/api/test_compiled_reads.py's ``assert_same``), comparing the whole JSON answer and the audit records, for
every role, a partner and a patient. Each query reads the trail up to a moment before the corpus runs (``to``), so
that both runs page the same events although each one's read is recorded on the trail."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.principal import ROLES
from tests.api.test_compiled_plan_cache import PLANNED
from tests.api.test_compiled_reads import assert_same
from tests.factories import Tenant, gql, make_patient
from tests.partners import make_partnership
from tests.patients import make_contact, open_account

ALL_EVENT_FIELDS = """id seq occurredAt actorKind actorId tokenId action resourceType resourceTypeName resourceId
  patientId resourceIds patientIds fieldClasses fieldsRead fieldNames outcome reason reasonCode policyRule requestId
  clientAddress userAgent hash prevHash __typename"""
W4 = f"""query($to: DateTime, $first: Int) {{ auditEvents(first: $first, filter: {{to: $to}}) {{
  edges {{ node {{ {ALL_EVENT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""

# (query, variables besides $to, compiled?): the last says whether the compiled plan must run (else it falls back)
CORPUS: list[tuple[str, dict[str, Any], bool]] = [
    (W4, {"first": 50}, True),
    (W4, {"first": 3}, True),
    # aliases, the same field under two keys, __typename at every level, nodes beside edges
    ("""query($to: DateTime) { trail: auditEvents(first: 5, filter: {to: $to}) { __typename rows: edges {
       at: cursor __typename e: node { n: seq seq what: action who: actorId } } nodes { id outcome } more: pageInfo {
       next: hasNextPage hasPreviousPage startCursor endCursor } } }""", {}, True),
    # fragments (nested), inline fragments with and without a type condition
    ("""query($to: DateTime) { auditEvents(filter: {to: $to}) { nodes { ...E ... on AuditEvent { hash prevHash }
       ... { reason } } } } fragment E on AuditEvent { id ...F } fragment F on AuditEvent { fieldClasses fieldsRead
       patientIds resourceIds }""", {}, True),
    # variables in the filter and in @skip/@include
    ("""query($to: DateTime, $who: Boolean!, $outcome: Outcome) { auditEvents(filter: {to: $to, outcome: $outcome}) {
       nodes { id actorId @include(if: $who) actorKind @include(if: $who) policyRule @skip(if: $who) } } }""",
     {"who": True, "outcome": "DENIED"}, True),
    ("""query($to: DateTime, $who: Boolean!, $outcome: Outcome) { auditEvents(filter: {to: $to, outcome: $outcome}) {
       nodes { id actorId @include(if: $who) actorKind @include(if: $who) policyRule @skip(if: $who) } } }""",
     {"who": False, "outcome": None}, True),
    ("""query($to: DateTime) { auditEvents(filter: {to: $to, action: CREATE, resourceType: "patient"}) {
       edges { node { resourceId patientId fieldClasses } } } }""", {}, True),
    # the API's spellings (resolvers/audit_spelling.py), in the filter too
    ("""query($to: DateTime) { auditEvents(filter: {to: $to, resourceTypeName: "Patient"}) {
       nodes { kind: resourceTypeName resourceTypeName names: fieldNames fieldNames reasonCode } } }""", {}, True),
    # refused at the root (bad input): no plan runs
    ('query($to: DateTime) { auditEvents(after: "nope", filter: {to: $to}) { nodes { id } } }', {}, True),
    ('query($to: DateTime) { auditEvents(first: 0, filter: {to: $to}) { nodes { id } } }', {}, True),
    # unsupported: several root fields, a root fragment
    ("query($to: DateTime) { auditEvents(filter: {to: $to}) { nodes { id } } t: __typename }", {}, False),
    ("query($to: DateTime) { ...Root } fragment Root on Query { auditEvents(filter: {to: $to}) { nodes { id } } }",
     {}, False),
]
ACCESS_LOG = f"""query($to: DateTime) {{ partnerAccessLog(first: 20, to: $to) {{ edges {{ cursor node {{
  {ALL_EVENT_FIELDS} }} }} nodes {{ id action }} pageInfo {{ hasNextPage endCursor }} }} }}"""


@pytest.fixture
async def trail(tenant: Tenant) -> datetime:
    """A trail with creations, reads of one patient and of a page (several subjects), refusals and sign-ins;
    the moment after it."""
    pid = await make_patient(tenant, "nurse", fullName="Kinsley Moore", phone="13800001111", allergies="Penicillin")
    await make_contact(tenant, pid, "Bo Moore", phone="13600005555", notes="Brother")
    await make_patient(tenant, "nurse", fullName="Zhang Wei", phone="13900002222", allergies="Latex")
    assert not (await tenant.call("nurse", "{ patients { nodes { fullName phone allergies } } }")).errors
    assert (await tenant.call("front_desk", "query($id: ID!) { patient(id: $id) { allergies } }",
                              id=str(pid))).codes == ["FORBIDDEN"]
    assert (await tenant.call("nurse", "{ auditEvents { nodes { id } } }")).codes == ["FORBIDDEN"]
    return datetime.now(UTC) + timedelta(milliseconds=1)


async def _corpus(tenant: Tenant, token: str, to: datetime, monkeypatch: pytest.MonkeyPatch,
                  caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [await assert_same(tenant, token, query, {"to": to.isoformat(), **variables}, supported, monkeypatch,
                              caplog) for query, variables, supported in CORPUS]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_reads_the_trail_as_the_generic_path(tenant: Tenant, trail: datetime, role: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    [page, short, *_] = await _corpus(tenant, tenant.tokens[role], trail, monkeypatch, caplog)
    if role == "compliance_officer":  # the corpus exercises what it claims: a page of many kinds of events
        events = [edge["node"] for edge in page.data["auditEvents"]["edges"]]
        assert not page.errors and len(events) > 10
        assert {"ALLOWED", "DENIED"} <= {e["outcome"] for e in events}
        assert any(len(e["patientIds"]) > 1 for e in events) and any(e["fieldsRead"] for e in events)
        assert any("Contact.phone" in e["fieldNames"] for e in events) and any(e["reasonCode"] for e in events)
        assert short.data["auditEvents"]["pageInfo"]["hasNextPage"] is True
    elif role != "admin":
        assert page.data is None and page.codes == ["FORBIDDEN"]


async def test_the_next_page_reads_as_the_generic_path(tenant: Tenant, trail: datetime,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    token = tenant.tokens["compliance_officer"]
    first = await assert_same(tenant, token, W4, {"to": trail.isoformat(), "first": 4}, True, monkeypatch, caplog)
    cursor = first.data["auditEvents"]["pageInfo"]["endCursor"]
    query = W4.replace("auditEvents(first: $first,", "auditEvents(first: $first, after: $after,").replace(
        "$first: Int)", "$first: Int, $after: String)")
    second = await assert_same(tenant, token, query, {"to": trail.isoformat(), "first": 4, "after": cursor}, True,
                               monkeypatch, caplog)
    seqs = [edge["node"]["seq"] for edge in second.data["auditEvents"]["edges"]]
    assert len(seqs) == 4 and max(seqs) < min(e["node"]["seq"] for e in first.data["auditEvents"]["edges"])


async def test_a_partner_reads_its_access_log_as_the_generic_path(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    partnership = await make_partnership(tenant)
    read = await gql(tenant.client, "query($id: ID!) { patient(id: $id) { fullName } }",
                     {"id": str(partnership.granted)}, partnership.token)
    assert not read.errors, read.errors
    to = (datetime.now(UTC) + timedelta(milliseconds=1)).isoformat()
    logged = await assert_same(tenant, partnership.token, ACCESS_LOG, {"to": to}, True, monkeypatch, caplog)
    assert not logged.errors and logged.data["partnerAccessLog"]["nodes"]
    for token in (partnership.token, (await open_account(tenant, partnership.granted)).token):
        [page, *_] = await _corpus(tenant, token, datetime.fromisoformat(to), monkeypatch, caplog)
        assert page.data is None and page.codes == ["FORBIDDEN"]


async def test_the_page_runs_the_compiled_plan_made_once(tenant: Tenant, trail: datetime,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    query = f"# {uuid.uuid4()}\n{W4}"
    with caplog.at_level(logging.DEBUG, logger="careloop.compiled"):
        for _ in range(2):
            reply = await gql(tenant.client, query, {"to": trail.isoformat(), "first": 50},
                              tenant.tokens["compliance_officer"])
            assert reply.data["auditEvents"]["edges"] and not reply.errors
    assert [r.getMessage() for r in caplog.records if r.name == "careloop.compiled"] == [
        "compiled auditEvents", "fast"] * 2  # by the fast pass (schema/compiled/fast.py)
    assert [r.getMessage() for r in caplog.records if r.name == PLANNED] == ["planned AuditEventConnection"]
