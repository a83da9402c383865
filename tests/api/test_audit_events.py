"""The `auditEvents` query: the institution's trail for compliance officers, paged newest first."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio

from core.principal import ROLES
from models import AuditEvent
from resolvers.pagination import encode
from tests.factories import Response, Tenant, make_patient

AUDIT = """
query($first: Int! = 20, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { cursor node {
      id seq occurredAt actorKind actorId tokenId action resourceType resourceId patientId
      fieldClasses fieldsRead outcome reason policyRule requestId clientAddress userAgent hash prevHash
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
UPDATE_PATIENT = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"


async def trail(tenant: Tenant, role: str = "compliance_officer", **variables: Any) -> Response:
    return await tenant.call(role, AUDIT, **variables)


def nodes(reply: Response) -> list[dict[str, Any]]:
    assert reply.errors == []
    return [edge["node"] for edge in reply.data["auditEvents"]["edges"]]


def seqs(reply: Response) -> list[int]:
    return [node["seq"] for node in nodes(reply)]


async def last_seq(tenant: Tenant) -> int:
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    assert last is not None
    return last.seq


async def events_since(tenant: Tenant, seq: int) -> list[AuditEvent]:
    return await tenant.audit_events(seq__gt=seq)


@dataclass
class Story:
    """A known stretch of trail: two registrations, a read, a refused update."""

    p1: uuid.UUID
    p2: uuid.UUID
    created_p1: int  # the seq of each event
    read_p1: int
    created_p2: int
    refused: int


@pytest_asyncio.fixture
async def story(tenant: Tenant) -> Story:
    p1 = await make_patient(tenant, fullName="Lin Xiaomei")
    created_p1 = await last_seq(tenant)
    assert (await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName } }", id=str(p1))).errors == []
    p2 = await make_patient(tenant)
    refused = await tenant.call("front_desk", UPDATE_PATIENT, id=str(p1), input={"diagnoses": "Gingivitis"})
    assert refused.codes == ["FORBIDDEN"]
    return Story(p1, p2, created_p1, created_p1 + 1, created_p1 + 2, created_p1 + 3)


# -- paging ------------------------------------------------------------------------------


async def test_pages_run_newest_first_without_gaps_or_overlaps(tenant: Tenant) -> None:
    newest = await last_seq(tenant)
    seen: list[int] = []
    more: list[bool] = []
    after = None

    while True:
        reply = await trail(tenant, first=5, after=after)
        page = reply.data["auditEvents"]
        seen += seqs(reply)
        more.append(page["pageInfo"]["hasNextPage"])
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break

    assert seen == list(range(newest, 0, -1))
    assert more == [True] * (len(more) - 1) + [False]
    assert len(more) == -(-newest // 5)


async def test_the_last_page_ends_exactly(tenant: Tenant) -> None:
    newest = await last_seq(tenant)

    first = await trail(tenant, first=newest - 3)
    rest = await trail(tenant, first=3, after=first.data["auditEvents"]["pageInfo"]["endCursor"])

    assert seqs(first) == list(range(newest, 3, -1))
    assert first.data["auditEvents"]["pageInfo"]["hasNextPage"] is True
    assert seqs(rest) == [3, 2, 1]
    last = rest.data["auditEvents"]
    assert last["pageInfo"] == {"hasNextPage": False, "endCursor": last["edges"][-1]["cursor"]}


async def test_a_node_carries_its_row(tenant: Tenant, story: Story) -> None:
    [node] = nodes(await trail(tenant, first=1, after=encode("audit", str(story.refused + 1))))
    row = await AuditEvent.get(institution_id=tenant.id, seq=story.refused)

    assert node == {
        "id": str(row.id), "seq": row.seq, "occurredAt": row.occurred_at.isoformat(), "actorKind": "STAFF",
        "actorId": str(tenant.staff_ids["front_desk"]), "tokenId": str(row.token_id), "action": "UPDATE",
        "resourceType": "patient", "resourceId": str(story.p1), "patientId": str(story.p1),
        "fieldClasses": ["CLINICAL"], "fieldsRead": [], "outcome": "DENIED", "reason": "forbidden", "policyRule": "",
        "requestId": row.request_id,
        "clientAddress": "203.0.113.7", "userAgent": row.user_agent, "hash": row.hash, "prevHash": row.prev_hash,
    }


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_a_page_size_out_of_range_is_bad_input(tenant: Tenant, first: int) -> None:
    reply = await trail(tenant, first=first)

    assert reply.data is None
    assert reply.codes == ["BAD_USER_INPUT"]


MALFORMED_CURSORS = {
    "not base64": "not a cursor!",
    "another kind": encode("patient", str(uuid.uuid4())),
    "not a number": encode("audit", "abc"),
    "negative": encode("audit", "-1"),
    "too large": encode("audit", "1" * 19),
    "too long": "A" * 201,
    "no kind": base64.urlsafe_b64encode(b"5").decode(),
}


@pytest.mark.parametrize("cursor", list(MALFORMED_CURSORS))
async def test_a_malformed_cursor_is_bad_input(tenant: Tenant, cursor: str) -> None:
    reply = await trail(tenant, after=MALFORMED_CURSORS[cursor])

    assert reply.data is None
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "after"


# -- filters -----------------------------------------------------------------------------


def _summary(reply: Response) -> list[tuple[int, str, str, str]]:
    return [(n["seq"], n["action"], n["outcome"], n["resourceType"]) for n in nodes(reply)]


async def test_filter_by_actor(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"actor": str(tenant.staff_ids["front_desk"])})

    assert [(action, outcome, kind) for _, action, outcome, kind in _summary(reply)] == [
        ("UPDATE", "DENIED", "patient"), ("CREATE", "ALLOWED", "patient"), ("CREATE", "ALLOWED", "patient"),
        ("LOGIN", "ALLOWED", "session"),
    ]
    assert {n["actorId"] for n in nodes(reply)} == {str(tenant.staff_ids["front_desk"])}


async def test_filter_by_patient(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"patient": str(story.p1)})

    assert _summary(reply) == [
        (story.refused, "UPDATE", "DENIED", "patient"),
        (story.read_p1, "READ", "ALLOWED", "patient"),
        (story.created_p1, "CREATE", "ALLOWED", "patient"),
    ]


async def test_filter_by_resource_type(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"resourceType": "session"})

    assert {(action, outcome) for _, action, outcome, _ in _summary(reply)} == {("LOGIN", "ALLOWED")}
    assert sorted(n["actorId"] for n in nodes(reply)) == sorted(str(tenant.staff_ids[role]) for role in ROLES)


async def test_filter_by_action(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"action": "CREATE"})

    assert [kind for _, _, _, kind in _summary(reply)] == [
        "patient", "patient", *["staff"] * len(ROLES), "department", "department", "institution"]
    assert seqs(reply)[:2] == [story.created_p2, story.created_p1]


async def test_filter_by_outcome(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"outcome": "DENIED"})

    assert _summary(reply) == [(story.refused, "UPDATE", "DENIED", "patient")]


async def test_filters_combine(tenant: Tenant, story: Story) -> None:
    reply = await trail(tenant, filter={"actor": str(tenant.staff_ids["front_desk"]), "action": "CREATE"})

    assert seqs(reply) == [story.created_p2, story.created_p1]


async def _moments(tenant: Tenant, story: Story) -> tuple[datetime, datetime]:
    start = await AuditEvent.get(institution_id=tenant.id, seq=story.read_p1)
    end = await AuditEvent.get(institution_id=tenant.id, seq=story.refused)
    return start.occurred_at, end.occurred_at


async def test_filter_from_is_inclusive_and_to_exclusive(tenant: Tenant, story: Story) -> None:
    start, end = await _moments(tenant, story)

    reply = await trail(tenant, filter={"from": start.isoformat(), "to": end.isoformat()})

    assert seqs(reply) == [story.created_p2, story.read_p1]


async def test_filter_from_alone_and_to_alone(tenant: Tenant, story: Story) -> None:
    start, end = await _moments(tenant, story)

    since = await trail(tenant, filter={"from": end.isoformat()})
    until = await trail(tenant, filter={"to": start.isoformat()})

    assert seqs(since) == [story.refused]
    assert seqs(until) == list(range(story.created_p1, 0, -1))


async def test_filter_times_with_an_offset_mean_the_same_instants(tenant: Tenant, story: Story) -> None:
    start, end = await _moments(tenant, story)
    shanghai = timezone(timedelta(hours=8))

    reply = await trail(tenant, filter={"from": start.astimezone(shanghai).isoformat(),
                                        "to": end.astimezone(shanghai).isoformat()})

    assert seqs(reply) == [story.created_p2, story.read_p1]


async def test_filter_from_after_to_is_bad_input(tenant: Tenant, story: Story) -> None:
    start, end = await _moments(tenant, story)

    reply = await trail(tenant, filter={"from": end.isoformat(), "to": start.isoformat()})

    assert reply.data is None
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "filter.from"


@pytest.mark.parametrize("name", ["actor", "patient"])
async def test_a_malformed_filter_id_is_bad_input(tenant: Tenant, name: str) -> None:
    reply = await trail(tenant, filter={name: "not-an-id"})

    assert reply.data is None
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == f"filter.{name}"


# -- who may read it, and the record of reading it ---------------------------------------


@pytest.mark.parametrize("role", [role for role in ROLES if role != "compliance_officer"])
async def test_every_other_role_is_refused_and_the_refusal_recorded(tenant: Tenant, role: str) -> None:
    before = await last_seq(tenant)

    reply = await trail(tenant, role)

    assert reply.data is None
    assert reply.codes == ["FORBIDDEN"]
    [event] = await events_since(tenant, before)
    assert (event.action, event.outcome, event.reason, event.resource_type) == (
        "read", "denied", "forbidden", "audit_event")
    assert (event.actor_id, event.resource_id, event.patient_id) == (tenant.staff_ids[role], None, None)


async def test_without_a_token_the_trail_is_refused(tenant: Tenant) -> None:
    before = await last_seq(tenant)

    reply = await trail(tenant, None)

    assert reply.data is None
    assert reply.codes == ["UNAUTHENTICATED"]
    assert await events_since(tenant, before) == []


async def test_reading_the_trail_is_itself_audited(tenant: Tenant) -> None:
    before = await last_seq(tenant)

    first = await trail(tenant, first=3)

    assert seqs(first) == [before, before - 1, before - 2]
    [event] = await events_since(tenant, before)
    assert (event.action, event.outcome, event.resource_type, event.reason) == (
        "read", "allowed", "audit_event", "")
    assert (event.actor_id, event.resource_id, event.patient_id) == (
        tenant.staff_ids["compliance_officer"], None, None)
    assert (event.field_classes, event.fields_read) == ("", "")
    assert "audit, read, allow" in event.policy_rule
    assert seqs(await trail(tenant, first=1)) == [event.seq]  # and it shows on the trail


async def test_another_institutions_events_never_appear(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = await make_patient(other_tenant, fullName="Chen Jing")
    await trail(other_tenant)
    mine = {str(e.id) for e in await tenant.audit_events()}
    foreign = {str(e.id) for e in await other_tenant.audit_events()}

    reply = await trail(tenant, first=100)

    assert {n["id"] for n in nodes(reply)} == mine
    assert foreign.isdisjoint(n["id"] for n in nodes(reply))
    assert nodes(await trail(tenant, filter={"actor": str(other_tenant.staff_ids["front_desk"])})) == []
    assert nodes(await trail(tenant, filter={"patient": str(theirs)})) == []
    their_view = {n["id"] for n in nodes(await trail(other_tenant, first=100))}
    assert their_view <= {str(e.id) for e in await other_tenant.audit_events()}
    assert their_view.isdisjoint(mine)


async def test_the_trail_never_carries_patient_data(tenant: Tenant) -> None:
    values = ["Lin Xiaomei", "13912345678", "Chronic periodontitis", "Wang Fang", "13712345678",
              "Allergic to penicillin", "Wheelchair user"]
    pid = await make_patient(tenant, "nurse", fullName=values[0], phone=values[1], diagnoses=values[2],
                             specialNeeds=values[6])
    contact = """mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) {
        id name phone notes } }"""
    assert (await tenant.call("front_desk", contact, pid=str(pid),
                              input={"name": values[3], "relationship": "SPOUSE", "phone": values[4],
                                     "notes": values[5]})).errors == []
    read = """query($id: ID!) { patient(id: $id) { fullName phone diagnoses specialNeeds
        contacts { name phone notes } } }"""
    assert (await tenant.call("nurse", read, id=str(pid))).errors == []
    assert (await tenant.call("front_desk", read, id=str(pid))).codes == ["FORBIDDEN"]
    assert (await tenant.call("nurse", UPDATE_PATIENT, id=str(pid),
                              input={"diagnoses": values[2] + " II"})).errors == []

    reply = await trail(tenant, first=100)

    assert len(nodes(reply)) == await tenant.audit_count() - 1  # all but the record of this very read
    text = json.dumps(reply.body).lower()
    for value in values:
        assert value.lower() not in text


async def test_a_look_at_one_patients_trail_is_on_that_patients_record(tenant: Tenant) -> None:
    """Who dealt with a file, read from the trail filtered to the patient (or the disclosures of that patient), is
    about that patient, as their access report is; found in review: both were recorded as a read of the whole trail,
    so the look at a file's history was on no file's record (not in its index, its trail filtered to it, or the
    patient's own access log). Refused, the look names the patient too."""
    pid = await make_patient(tenant)
    co = tenant.staff_ids["compliance_officer"]
    around = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    looks = {"audit_event": (AUDIT, {"filter": {"patient": str(pid)}}),
             "disclosure": ("query($p: ID, $from: DateTime!, $to: DateTime!) { disclosures(from: $from, to: $to, "
                            "patientId: $p) { edges { cursor } } }", {"p": str(pid), **around}),
             "audit_report": ("query($p: ID!) { patientAccessReport(patientId: $p) { name } }",
                              {"p": str(pid)})}
    for query, variables in looks.values():
        assert (await tenant.call("nurse", query, **variables)).codes == ["FORBIDDEN"]
        assert (await tenant.call("compliance_officer", query, **variables)).errors == []

    reads = await tenant.audit_events(action="read", resource_type__in=list(looks))
    assert {(e.actor_id, e.resource_type, e.outcome, e.patient_id) for e in reads} == {
        (tenant.staff_ids["nurse"], kind, "denied", pid) for kind in looks} | {
        (co, kind, "allowed", pid) for kind in looks}
    assert all(e.field_classes == "audit" for e in reads if e.outcome == "allowed")
    again = nodes(await trail(tenant, filter={"patient": str(pid)}))
    assert {(n["actorId"], n["resourceType"]) for n in again if n["action"] == "READ"} >= {
        (str(co), kind) for kind in looks}  # through the per-patient index
