"""The accounting of disclosures: every partner read of a patient's file, exactly, on a known data set:
when, to which partner and client, which data categories, for what purpose, under which grant.
Refused reads, staff reads and reads of nothing are not disclosures. Compliance officers only."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.principal import ROLES
from models import AuditArchive
from tests.contracts import draft, item_input, make_item
from tests.factories import Tenant, gql, make_patient
from tests.partners import (
    GRANT_REVOKE,
    Client,
    consent_and_grant,
    make_client,
    make_partner,
    make_partnership,
    token_for,
)

DISCLOSURES = """query($from: DateTime!, $to: DateTime!, $patientId: ID, $partnerId: ID, $first: Int! = 100,
  $after: String) {
  disclosures(from: $from, to: $to, patientId: $patientId, partnerId: $partnerId, first: $first, after: $after) {
    edges { cursor node { occurredAt partnerId partnerName clientId patientId fieldClasses dataCategories purpose
      grantId } }
    pageInfo { hasNextPage endCursor } } }"""
WIDE = {"from": (datetime.now(UTC) - timedelta(days=3 * 365)).isoformat(),  # five years around now
        "to": (datetime.now(UTC) + timedelta(days=2 * 365)).isoformat()}


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Story:
    """Two partners, three clients, three patients, three grants, and a known sequence of reads."""

    tenant: Tenant
    alpha: uuid.UUID
    beta: uuid.UUID
    a1: Client
    a2: Client
    b1: Client
    x: uuid.UUID
    y: uuid.UUID
    z: uuid.UUID
    gx: uuid.UUID  # alpha -> x
    gya: uuid.UUID  # alpha -> y
    gyb: uuid.UUID  # beta -> y
    start: str
    middle: str
    end: str
    expected: list[tuple[Any, ...]]  # newest first: partner id, name, client, patient, categories, purpose, grant
    names: list[str]


async def read(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    reply = await gql(http, query, variables, token)
    return reply


@pytest.fixture
async def story(client: httpx.AsyncClient, tenant: Tenant) -> Story:
    alpha, beta = await make_partner(tenant, "Alpha Home Care"), await make_partner(tenant, "Beta Lab")
    a1, a2, b1 = (await make_client(tenant, alpha), await make_client(tenant, alpha), await make_client(tenant, beta))
    tag = uuid.uuid4().hex[:6]
    x, y, z = [await make_patient(tenant, "nurse", fullName=f"{n}{tag}", phone=f"1390000{i:04d}",
                                  allergies="Penicillin", dietPreferences="Low salt")
               for i, n in enumerate(("Xavier", "Yolanda", "Zhang"))]
    gx = await consent_and_grant(tenant, alpha, x, "Wound care at home")
    gya = await consent_and_grant(tenant, alpha, y, "Physiotherapy")
    gyb = await consent_and_grant(tenant, beta, y, "Blood tests")
    t1, t2, t3 = [await token_for(client, c) for c in (a1, a2, b1)]
    await tenant.call("front_desk", "mutation($id: ID!) { contactCreate(patientId: $id, input: "
                                    "{name: \"Xavier's son\", relationship: CHILD}) { id } }", id=str(x))

    start = now()
    assert (await read(client, t1, "query($id: ID!) { patient(id: $id) { fullName } }", id=str(x))).errors == []
    assert (await read(client, t2, "query($id: ID!) { patient(id: $id) { phone allergies } }", id=str(y))).errors == []
    middle = now()
    assert (await read(client, t3, "query($id: ID!) { patient(id: $id) { dietPreferences } }", id=str(y))).errors == []
    # one request, two files: two disclosures
    assert (await read(client, t1, "{ patients { nodes { fullName } } }")).errors == []
    # not disclosures: a refusal, a field that is never a partner's, a staff read, a request that read no file
    assert (await read(client, t1, "query($id: ID!) { patient(id: $id) { fullName } }", id=str(z))).codes == [
        "NOT_FOUND"]
    assert (await read(client, t1, "query($id: ID!) { patient(id: $id) { segments } }", id=str(x))).codes == [
        "FORBIDDEN"]
    assert (await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName allergies } }",
                              id=str(x))).errors == []
    assert (await read(client, t1, "{ me { id } }")).errors == []
    # the family: contacts are of the contact category
    assert (await read(client, t1, "query($id: ID!) { patient(id: $id) { contacts { name } } }",
                       id=str(x))).errors == []
    end = now()

    def row(partner: uuid.UUID, c: Client, patient: uuid.UUID, categories: list[str], purpose: str,
            grant: uuid.UUID) -> tuple[Any, ...]:
        return (str(partner), "Alpha Home Care" if partner == alpha else "Beta Lab", str(c.id), str(patient),
                categories, purpose, str(grant))

    expected = [row(alpha, a1, x, ["contact"], "Wound care at home", gx),
                row(alpha, a1, y, ["identity"], "Physiotherapy", gya),
                row(alpha, a1, x, ["identity"], "Wound care at home", gx),
                row(beta, b1, y, ["needs"], "Blood tests", gyb),
                row(alpha, a2, y, ["clinical", "contact"], "Physiotherapy", gya),
                row(alpha, a1, x, ["identity"], "Wound care at home", gx)]
    return Story(tenant, alpha, beta, a1, a2, b1, x, y, z, gx, gya, gyb, start, middle, end, expected,
                 [f"Xavier{tag}", f"Yolanda{tag}", f"Zhang{tag}", "Penicillin", "Low salt", "Xavier's son"])


def rows(reply: Any) -> list[tuple[Any, ...]]:
    assert reply.errors == [], reply.errors
    nodes = [e["node"] for e in reply.data["disclosures"]["edges"]]
    # the classes as the audit trail's events spell them (dataCategories, deprecated, keeps the stored spelling)
    assert [n["fieldClasses"] for n in nodes] == [[c.upper() for c in n["dataCategories"]] for n in nodes]
    return [(n["partnerId"], n["partnerName"], n["clientId"], n["patientId"], n["dataCategories"], n["purpose"],
             n["grantId"]) for n in (e["node"] for e in reply.data["disclosures"]["edges"])]


async def test_the_accounting_is_exact(story: Story) -> None:
    reply = await story.tenant.call("compliance_officer", DISCLOSURES, **{"from": story.start, "to": story.end})
    assert rows(reply) == story.expected
    moments = [datetime.fromisoformat(e["node"]["occurredAt"]) for e in reply.data["disclosures"]["edges"]]
    assert moments == sorted(moments, reverse=True)
    assert datetime.fromisoformat(story.start) <= moments[-1] and moments[0] < datetime.fromisoformat(story.end)
    assert reply.data["disclosures"]["pageInfo"]["hasNextPage"] is False
    # identifiers, categories and purposes; never a value of the file
    assert [n for n in story.names if n in json.dumps(reply.body)] == []


async def test_the_accounting_of_one_patient_or_one_partner(story: Story) -> None:
    period = {"from": story.start, "to": story.end}
    call = story.tenant.call
    of_y = await call("compliance_officer", DISCLOSURES, **period, patientId=str(story.y))
    assert rows(of_y) == [r for r in story.expected if r[3] == str(story.y)]
    assert len(rows(of_y)) == 3
    of_beta = await call("compliance_officer", DISCLOSURES, **period, partnerId=str(story.beta))
    assert rows(of_beta) == [story.expected[3]]
    alpha_x = await call("compliance_officer", DISCLOSURES, **period, partnerId=str(story.alpha),
                         patientId=str(story.x))
    assert rows(alpha_x) == [story.expected[i] for i in (0, 2, 5)]
    assert rows(await call("compliance_officer", DISCLOSURES, **period, patientId=str(story.z))) == []
    assert rows(await call("compliance_officer", DISCLOSURES, **period, patientId=str(uuid.uuid4()))) == []
    assert rows(await call("compliance_officer", DISCLOSURES, **period, partnerId=str(uuid.uuid4()))) == []


async def test_the_period_is_from_inclusive_to_exclusive(story: Story) -> None:
    call = story.tenant.call
    early = await call("compliance_officer", DISCLOSURES, **{"from": story.start, "to": story.middle})
    late = await call("compliance_officer", DISCLOSURES, **{"from": story.middle, "to": story.end})
    assert rows(early) == story.expected[4:]
    assert rows(late) == story.expected[:4]
    a_day_before = (datetime.fromisoformat(story.start) - timedelta(days=1)).isoformat()
    before = await call("compliance_officer", DISCLOSURES, **{"from": a_day_before, "to": story.start})
    assert rows(before) == []


async def test_the_accounting_pages_without_gaps_or_overlaps(story: Story) -> None:
    period = {"from": story.start, "to": story.end}
    seen: list[tuple[Any, ...]] = []
    after = None
    pages = 0
    while True:
        reply = await story.tenant.call("compliance_officer", DISCLOSURES, **period, first=4, after=after)
        seen += rows(reply)
        pages += 1
        info = reply.data["disclosures"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert (pages, seen) == (2, story.expected)


async def test_a_revoked_grant_still_names_its_purpose(story: Story) -> None:
    assert (await story.tenant.call("nurse", GRANT_REVOKE, id=str(story.gx))).errors == []
    reply = await story.tenant.call("compliance_officer", DISCLOSURES, **{"from": story.start, "to": story.end})
    assert rows(reply) == story.expected


async def test_viewing_the_accounting_is_itself_audited(story: Story) -> None:
    before = await story.tenant.audit_count()
    await story.tenant.call("compliance_officer", DISCLOSURES, **{"from": story.start, "to": story.end})
    events = (await story.tenant.audit_events())[before:]
    assert [(e.actor_id, e.action, e.resource_type, e.field_classes, e.outcome, e.policy_rule) for e in events] == [
        (story.tenant.staff_ids["compliance_officer"], "read", "disclosure", "audit", "allowed",
         "compliance_officer, *, audit, read, allow")]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "compliance_officer"])
async def test_only_compliance_officers_read_the_accounting(story: Story, role: str) -> None:
    reply = await story.tenant.call(role, DISCLOSURES, **WIDE)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    denied = await story.tenant.audit_events(actor_id=story.tenant.staff_ids[role], outcome="denied")
    assert [(e.action, e.resource_type, e.reason) for e in denied] == [("read", "disclosure", "forbidden")]


async def test_a_partner_does_not_read_the_accounting(client: httpx.AsyncClient, story: Story) -> None:
    token = await token_for(client, story.a1)
    reply = await gql(client, DISCLOSURES, WIDE, token)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    denied = await story.tenant.audit_events(actor_id=story.a1.id, outcome="denied")
    assert [(e.actor_kind, e.action, e.resource_type, e.reason) for e in denied][-1] == (
        "partner", "read", "disclosure", "forbidden")


BAD_PERIODS: dict[str, dict[str, Any]] = {
    "six years and a week": {"from": "2018-01-01T00:00:00Z", "to": "2024-01-08T00:00:00Z"},
    "seven years": {"from": "2018-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
    "an empty period": {"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"},
    "backwards": {"from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"},
    "no time zone": {"from": "2024-01-01T00:00:00", "to": "2024-02-01T00:00:00Z"},
    "a malformed patient id": {**WIDE, "patientId": "patient-7"},
    "a malformed partner id": {**WIDE, "partnerId": "alpha"},
    "a page of 0": {**WIDE, "first": 0},
    "a page of 101": {**WIDE, "first": 101},
    "a malformed cursor": {**WIDE, "after": "not-a-cursor"},
}


@pytest.mark.parametrize("case", BAD_PERIODS)
async def test_a_bad_request_for_the_accounting_is_bad_input(tenant: Tenant, case: str) -> None:
    reply = await tenant.call("compliance_officer", DISCLOSURES, **BAD_PERIODS[case])
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None


@pytest.mark.parametrize("period", [("2019-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
                                    ("2019-01-01T08:00:00+08:00", "2025-01-01T08:00:00+08:00")])
async def test_six_years_is_the_longest_period(tenant: Tenant, period: tuple[str, str]) -> None:
    reply = await tenant.call("compliance_officer", DISCLOSURES, **{"from": period[0], "to": period[1]})
    assert reply.errors == [] and reply.data["disclosures"]["edges"] == []


async def test_another_institutions_disclosures_never_appear(story: Story, other_tenant: Tenant) -> None:
    theirs = await other_tenant.call("compliance_officer", DISCLOSURES, **WIDE)
    assert rows(theirs) == []
    by_id = await other_tenant.call("compliance_officer", DISCLOSURES, **WIDE, patientId=str(story.x))
    assert rows(by_id) == []
    b = await make_partnership(other_tenant)
    await b.call("query($id: ID!) { patient(id: $id) { fullName } }", id=str(b.granted))
    mine = await story.tenant.call("compliance_officer", DISCLOSURES, **WIDE)
    assert str(b.client.id) not in json.dumps(mine.body)
    assert rows(await story.tenant.call("compliance_officer", DISCLOSURES, **WIDE, partnerId=str(b.partner_id))) == []


# -- the accounting names every read's grant and only what was given -------------------------


async def test_reading_every_class_at_once_is_one_disclosure_that_names_its_grant(tenant: Tenant) -> None:
    p = await make_partnership(tenant, purpose="Home nursing")
    start = now()
    reply = await p.call("""query($id: ID!) { patient(id: $id) { fullName phone allergies dietPreferences
      contacts { name } } }""", id=str(p.granted))
    assert reply.errors == []
    found = await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})
    assert rows(found) == [(str(p.partner_id), found.data["disclosures"]["edges"][0]["node"]["partnerName"],
                            str(p.client.id), str(p.granted), ["clinical", "contact", "identity", "needs"],
                            "Home nursing", str(p.grant_id))]


async def test_refused_contacts_are_not_a_disclosed_category(tenant: Tenant) -> None:
    # a token that reads the contact class of the file but not the family (no contact:read)
    p = await make_partnership(tenant, ["patient.identity:read", "patient.contact:read"])
    start = now()
    reply = await p.call("query($id: ID!) { patient(id: $id) { fullName contacts { name } } }", id=str(p.granted))
    assert reply.data == {"patient": {"fullName": p.granted_name, "contacts": None}}
    assert reply.codes == ["FORBIDDEN"]
    found = await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})
    assert [r[4] for r in rows(found)] == [["identity"]]


async def test_a_partners_read_of_a_contract_names_its_grant(tenant: Tenant) -> None:
    """Found in review: a partner's read of a contract it delivers part of (its title, terms and items, in a list or by
    id) was on the trail under the contract rule alone, so the accounting listed it with no purpose and no grant. Its
    denied twin: once the grant is revoked the contract answers NOT_FOUND, the refusal recorded, and no disclosure
    is added."""
    p = await make_partnership(tenant, ["contract:read", "patient.identity:read"], purpose="Home nursing")
    item = await make_item(tenant)
    made = await draft(tenant, p.granted, [item_input(item, by_partner=True)], partnerId=str(p.partner_id))
    by_id = "query($id: ID!) { contract(id: $id) { title versions { rightsDuties items { name } } } }"
    for query, variables in ((by_id, {"id": made["id"]}), ("{ contracts(first: 5) { nodes { title } } }", {})):
        start = now()
        reply = await p.call(query, **variables)
        assert reply.errors == [], reply.errors
        found = await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})
        assert [(r[3], r[5], r[6]) for r in rows(found)] == [(str(p.granted), "Home nursing", str(p.grant_id))]

    revoked = await tenant.call("nurse", GRANT_REVOKE, id=str(p.grant_id))
    assert revoked.errors == [], revoked.errors
    start, events = now(), await tenant.audit_count()
    reply = await p.call(by_id, id=made["id"])
    assert reply.codes == ["NOT_FOUND"] and reply.data == {"contract": None}
    denials = await tenant.audit_events(actor_id=p.client.id, outcome="denied", resource_type="contract")
    assert denials[-1].reason == "not_found" and await tenant.audit_count() == events + 1
    assert rows(await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})) == []


async def test_a_partners_look_at_its_own_ticket_names_the_grant_that_stands(tenant: Tenant) -> None:
    """Found in review: a partner following a ticket it opened about a granted patient (its status and what it wrote)
    was on the trail under the partner_ticket rule alone, so the accounting listed it with no purpose and no grant
    while the grant stood. Once the grant has ended the partner still follows its ticket (docs/tickets.md), a
    disclosure that names no grant then; a token without the scope reads nothing, the refusal recorded."""
    p = await make_partnership(tenant, ["ticket:create", "partner_ticket:read", "patient.identity:read"],
                               purpose="Home nursing")
    made = await p.call("mutation($input: PartnerTicketCreateInput!) { partnerTicketCreate(input: $input) { id } }",
                        input={"patientId": str(p.granted), "category": "REQUEST", "subject": "Needs a walker"})
    assert made.errors == [], made.errors
    follow = "{ partnerTickets(first: 5) { nodes { status subject description } } }"
    start = now()
    assert (await p.call(follow)).errors == []
    found = await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})
    assert [(r[3], r[4], r[5], r[6]) for r in rows(found)] == [
        (str(p.granted), ["ticket"], "Home nursing", str(p.grant_id))]

    without = await token_for(tenant.client, p.client, "ticket:create patient.identity:read")
    start, events = now(), await tenant.audit_count()
    refused = await p.call(follow, token=without)
    assert refused.codes == ["FORBIDDEN"] and refused.data is None
    assert await tenant.audit_count() == events + 1
    assert (await tenant.audit_events(actor_id=p.client.id))[-1].reason == "forbidden"
    assert rows(await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})) == []

    assert (await tenant.call("nurse", GRANT_REVOKE, id=str(p.grant_id))).errors == []
    start = now()
    assert (await p.call(follow)).errors == []
    found = await tenant.call("compliance_officer", DISCLOSURES, **{"from": start, "to": now()})
    assert [(r[3], r[5], r[6]) for r in rows(found)] == [(str(p.granted), "", None)]


async def test_a_period_reaching_into_archived_events_is_refused(tenant: Tenant) -> None:
    """Archived events are out of the database: a period starting before the trail kept there would
    answer incomplete without a word, so it is refused and names where the kept trail starts."""
    events = await tenant.audit_events()
    cut, kept = events[1], events[2]
    await AuditArchive.create(institution_id=tenant.id, up_to_seq=cut.seq, up_to_hash=cut.hash,
                              archived_at=datetime.now(UTC), events=cut.seq, sha256="0" * 64)
    before = (kept.occurred_at - timedelta(seconds=1)).isoformat()

    refused = await tenant.call("compliance_officer", DISCLOSURES, **{"from": before, "to": WIDE["to"]})

    assert refused.codes == ["BAD_USER_INPUT"] and refused.errors[0]["extensions"]["field"] == "from"
    assert kept.occurred_at.isoformat() in refused.errors[0]["message"]
    allowed = await tenant.call("compliance_officer", DISCLOSURES,
                                **{"from": kept.occurred_at.isoformat(), "to": WIDE["to"]})
    assert allowed.errors == [] and allowed.data["disclosures"]["edges"] == []
