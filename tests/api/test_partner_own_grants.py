"""A care partner's own grants (``partnerOwnGrants``): which patients it was granted, for what purpose, until when,
so that a partner portal can say "your access to Mrs Li ends on 31 March" and plan renewals, instead of learning
that a grant ended when the patient answers NOT_FOUND. Every client of the partner sees the partner's grants and
nothing else (no other partner's, no other institution's); a token needs the scope partner_own_grant:read; staff
and patients are refused. Each read is on the trail of the file the grant opens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.principal import ROLES
from models import PartnerGrant
from tests.factories import Tenant, gql, make_patient, subjects
from tests.partners import (
    ALL_SCOPES,
    GRANT_REVOKE,
    consent_and_grant,
    make_client,
    make_partner,
    make_partnership,
    token_for,
)
from tests.patients import open_account

OWN_SCOPE = "partner_own_grant:read"
SCOPES = [*ALL_SCOPES, OWN_SCOPE]
OWN_GRANTS = """query($first: Int! = 20, $after: String, $standingOnly: Boolean! = false) {
  partnerOwnGrants(first: $first, after: $after, standingOnly: $standingOnly) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id partnerId patientId purpose expiresAt revokedAt standing createdAt } } }"""
ROLE_RULE = "partner, *, partner_own_grant, read, allow"
DISCLOSURES = """query($from: DateTime!, $to: DateTime!, $patientId: ID) {
  disclosures(from: $from, to: $to, patientId: $patientId) { nodes { clientId fieldClasses grantId purpose } } }"""


def ids(reply: Any) -> list[str]:
    assert reply.errors == [], reply.errors
    return [node["id"] for node in reply.data["partnerOwnGrants"]["nodes"]]


async def grants_of(tenant: Tenant) -> list[tuple[Any, ...]]:
    return await PartnerGrant.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "partner_id", "patient_id", "purpose", "revoked_at", "expires_at")


async def ended_grants(tenant: Tenant, partner_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """Two more grants of the partner, on two more patients: one revoked by the nurse, one expired."""
    revoked_on, expired_on = await make_patient(tenant), await make_patient(tenant)
    revoked = await consent_and_grant(tenant, partner_id, revoked_on, "Physiotherapy")
    assert (await tenant.call("nurse", GRANT_REVOKE, id=str(revoked))).errors == []
    expired = await consent_and_grant(tenant, partner_id, expired_on, "Wound care")
    await PartnerGrant.filter(id=expired).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    return revoked, revoked_on, expired, expired_on


# -- what a partner sees ---------------------------------------------------------------------------------------------


async def test_a_partner_sees_its_grants_standing_or_not_with_their_terms(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    revoked, revoked_on, expired, expired_on = await ended_grants(tenant, p.partner_id)
    theirs = await consent_and_grant(tenant, await make_partner(tenant), p.granted)  # another's, on the same file

    reply = await p.call(OWN_GRANTS)

    assert ids(reply) == [str(p.grant_id), str(revoked), str(expired)]  # oldest first
    assert str(theirs) not in ids(reply)
    page = reply.data["partnerOwnGrants"]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (3, False)
    stored = {row[0]: row for row in await grants_of(tenant)}
    for node in page["nodes"]:
        _, partner_id, patient_id, purpose, revoked_at, expires_at = stored[uuid.UUID(node["id"])]
        assert (node["partnerId"], node["patientId"], node["purpose"]) == (str(partner_id), str(patient_id), purpose)
        assert datetime.fromisoformat(node["expiresAt"]) == expires_at
        assert (node["revokedAt"] is None) is (revoked_at is None)
        assert node["createdAt"] is not None
    assert [(n["patientId"], n["standing"]) for n in page["nodes"]] == [
        (str(p.granted), True), (str(revoked_on), False), (str(expired_on), False)]


async def test_standing_only_leaves_the_ended_grants_out_of_the_page_and_the_count(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    await ended_grants(tenant, p.partner_id)

    reply = await p.call(OWN_GRANTS, standingOnly=True)

    assert ids(reply) == [str(p.grant_id)]
    assert reply.data["partnerOwnGrants"]["totalCount"] == 1
    assert [n["standing"] for n in reply.data["partnerOwnGrants"]["nodes"]] == [True]


async def test_every_client_of_the_partner_pages_through_the_partners_grants(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    revoked, _, expired, _ = await ended_grants(tenant, p.partner_id)
    second = await token_for(tenant.client, await make_client(tenant, p.partner_id, [OWN_SCOPE]))

    first = await p.call(OWN_GRANTS, token=second, first=2)

    assert ids(first) == [str(p.grant_id), str(revoked)]
    info = first.data["partnerOwnGrants"]["pageInfo"]
    assert info["hasNextPage"] is True
    rest = await p.call(OWN_GRANTS, token=second, first=2, after=info["endCursor"])
    assert ids(rest) == [str(expired)]
    assert rest.data["partnerOwnGrants"]["pageInfo"]["hasNextPage"] is False


async def test_a_bad_page_size_or_cursor_is_bad_input(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    for variables, field in (({"first": 0}, "first"), ({"after": "not a cursor"}, "after")):
        reply = await p.call(OWN_GRANTS, **variables)
        assert reply.codes == ["BAD_USER_INPUT"], reply.errors
        assert reply.errors[0]["extensions"]["field"] == field


# -- on the trail of each file ---------------------------------------------------------------------------------------


async def test_each_grant_read_is_on_the_trail_of_the_file_it_opens(tenant: Tenant) -> None:
    """One record per grant read, naming the grant and its patient: the patient's access report and their own log
    show the partner. A standing grant's record names the grant the file is open under, as every read of the file
    does (the accounting of disclosures gives its purpose); an ended grant's names the role's rule alone."""
    p = await make_partnership(tenant, SCOPES)
    revoked, revoked_on, expired, expired_on = await ended_grants(tenant, p.partner_id)
    patient = await open_account(tenant, p.granted)

    assert len(ids(await p.call(OWN_GRANTS))) == 3

    reads = await p.events(action="read", resource_type="partner_grant")
    assert sorted(s for e in reads for s in subjects(e)) == sorted(
        [(p.grant_id, p.granted), (revoked, revoked_on), (expired, expired_on)])
    assert all(e.outcome == "allowed" and e.token_id is not None and e.field_classes == "" for e in reads)
    rules = {s: e.policy_rule for e in reads for s in subjects(e)}
    assert rules[(p.grant_id, p.granted)] == f"partner_grant {p.grant_id}; {ROLE_RULE}"
    assert rules[(revoked, revoked_on)] == rules[(expired, expired_on)] == ROLE_RULE
    log = await patient.call("{ myAccessLog(first: 1) { nodes { action refused accessor { kind name } } } }")
    assert log.errors == [], log.errors
    [seen] = log.data["myAccessLog"]["nodes"]
    assert (seen["action"], seen["refused"], seen["accessor"]["kind"]) == ("READ", False, "PARTNER")
    period = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "to": datetime.now(UTC).isoformat()}
    for patient_id, grant_id in ((p.granted, p.grant_id), (revoked_on, None)):
        accounted = await tenant.call("compliance_officer", DISCLOSURES, patientId=str(patient_id), **period)
        assert accounted.errors == [], accounted.errors
        [told] = accounted.data["disclosures"]["nodes"]  # no field class: nothing of the file; an open one's purpose
        assert (told["clientId"], told["fieldClasses"], told["grantId"], told["purpose"]) == (
            str(p.client.id), [], grant_id and str(grant_id), "Home care visits" if grant_id else "")


# -- who is refused ----------------------------------------------------------------------------------------------


async def test_a_token_without_the_scope_is_forbidden_and_recorded(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    allowed = await p.call(OWN_GRANTS)
    assert ids(allowed) == [str(p.grant_id)]
    narrow_client = await token_for(tenant.client, await make_client(tenant, p.partner_id, ALL_SCOPES))
    narrow_token = await token_for(tenant.client, p.client, "patient.identity:read")  # the client's, narrowed
    stored = await grants_of(tenant)

    for token in (narrow_client, narrow_token):
        refused = await p.call(OWN_GRANTS, token=token)

        assert refused.codes == ["FORBIDDEN"], refused.errors
        assert refused.data is None or refused.data["partnerOwnGrants"] is None
    assert await grants_of(tenant) == stored
    denied = await tenant.audit_events(outcome="denied", resource_type="partner_grant")
    assert [(e.actor_kind, e.action, e.reason, e.patient_id) for e in denied] == [
        ("partner", "read", "forbidden", None)] * 2
    assert len({e.token_id for e in denied}) == 2


@pytest.mark.parametrize("role", ROLES)
async def test_staff_are_refused_and_recorded(tenant: Tenant, role: str) -> None:
    await make_partnership(tenant, SCOPES)
    stored = await grants_of(tenant)

    refused = await tenant.call(role, OWN_GRANTS)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert refused.data is None or refused.data["partnerOwnGrants"] is None
    assert await grants_of(tenant) == stored
    denied = await tenant.audit_events(actor_id=tenant.staff_ids[role], outcome="denied")
    assert [(e.resource_type, e.reason) for e in denied] == [("partner_grant", "forbidden")]


async def test_a_patient_is_refused_and_recorded(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    patient = await open_account(tenant, p.granted)  # even the patient the grant is about
    stored = await grants_of(tenant)

    refused = await patient.call(OWN_GRANTS)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert refused.data is None or refused.data["partnerOwnGrants"] is None
    assert await grants_of(tenant) == stored
    denied = await tenant.audit_events(actor_id=patient.account_id, outcome="denied")
    assert [(e.actor_kind, e.resource_type, e.reason) for e in denied] == [("patient", "partner_grant", "forbidden")]


async def test_another_partner_sees_only_its_own_grants(tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    q = await make_partnership(tenant, SCOPES)
    on_the_same_file = await consent_and_grant(tenant, q.partner_id, p.granted)
    nothing_granted = await token_for(tenant.client, await make_client(tenant, await make_partner(tenant),
                                                                       [OWN_SCOPE]))

    assert ids(await p.call(OWN_GRANTS)) == [str(p.grant_id)]
    assert ids(await q.call(OWN_GRANTS)) == [str(q.grant_id), str(on_the_same_file)]
    empty = await gql(tenant.client, OWN_GRANTS, token=nothing_granted)
    assert ids(empty) == [] and empty.data["partnerOwnGrants"]["totalCount"] == 0


async def test_a_partner_of_another_institution_sees_only_its_own_grants(tenant: Tenant,
                                                                         other_tenant: Tenant) -> None:
    p = await make_partnership(tenant, SCOPES)
    o = await make_partnership(other_tenant, SCOPES)

    assert ids(await p.call(OWN_GRANTS)) == [str(p.grant_id)]
    assert ids(await o.call(OWN_GRANTS)) == [str(o.grant_id)]
