"""Care partners end to end: organisations and API clients (admins), access tokens (OAuth 2.0 client
credentials), what a partner token reads (granted patients only, within its scopes), revocation and
expiry, trusted documents, rate limits, and a partner's own access log and usage.

A patient the partner does not reach must look exactly like a random UUID: the answers for both
are compared with their error places left out, through ids, aliases, fragments and nested fields.
Every refusal is on the audit trail once, with the client as actor and its token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from audit.writer import SYSTEM_CHAIN
from core.principal import ROLES
from core.tokens import token_digest
from models import AuditEvent, Partner, PartnerClient, PartnerConsent, PartnerDocument, PartnerGrant, PartnerToken
from resolvers.context import Services
from tests.factories import Response, Tenant, gql, make_patient
from tests.partners import (
    ALL_SCOPES,
    CLIENT_CREATE,
    CLIENT_REVOKE,
    GRANT_REVOKE,
    LOGOUT,
    OWN_LOG,
    PARTNER_CREATE,
    PARTNER_SET_ACTIVE,
    Partnership,
    add_contact,
    consent,
    consent_and_grant,
    make_client,
    make_partner,
    make_partnership,
    request_token,
    sha256,
    token_for,
)

BAD_TOKEN = [{"message": "Invalid or expired token.", "extensions": {"code": "UNAUTHENTICATED"}}]
UNAUTHENTICATED = {"data": {"patient": None}, "errors": BAD_TOKEN}  # the answer to READ with a dead token
ME = "{ me { id kind name email roles scopes partnerId patientId institution { id } departments { id } } }"
READ = "query($id: ID!) { patient(id: $id) { id fullName } }"
FULL = """query($id: ID!) { patient(id: $id) {
  id fullName nationalId phone address allergies dietPreferences contacts { name phone } } }"""
LIST = "query($first: Int! = 20, $after: String) { patients(first: $first, after: $after) { nodes { id } " \
       "pageInfo { hasNextPage endCursor } } }"
ADMIN_ONLY = [role for role in ROLES if role != "admin"]


def without_place(reply: Response) -> dict[str, Any]:
    """The reply with error paths and locations left out: what must not differ."""
    errors = [{k: v for k, v in error.items() if k not in ("path", "locations")} for error in reply.errors]
    return {"data": reply.data, "errors": errors}


def places(reply: Response) -> list[tuple[list[Any], str]]:
    return [(error["path"], error["extensions"]["code"]) for error in reply.errors]


async def denials(tenant: Tenant, actor_id: uuid.UUID) -> list[tuple[str, str, uuid.UUID | None, str]]:
    """(action, resource type, resource id, reason) of an actor's refusals, in order."""
    return [(e.action, e.resource_type, e.resource_id, e.reason)
            for e in await tenant.audit_events(actor_id=actor_id, outcome="denied")]


async def token_row(client_id: uuid.UUID) -> PartnerToken:
    """The client's only token."""
    [row] = await PartnerToken.filter(client_id=client_id)
    return row


def minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def fresh_minute(margin: int = 12) -> datetime:
    """Wait for the next minute when this one ends within ``margin`` seconds: a rate-limit window is a
    calendar minute, and a short sequence of requests must all fall in one."""
    now = datetime.now(UTC)
    if now.second >= 60 - margin:
        await asyncio.sleep(60 - now.second - now.microsecond / 1e6 + 0.05)
    return minute()


@pytest.fixture
async def pship(tenant: Tenant) -> Partnership:
    return await make_partnership(tenant)


# -- partners and clients (admins) -----------------------------------------------------------


async def test_admin_creates_a_partner_and_a_client_whose_secret_is_shown_once(tenant: Tenant) -> None:
    created = await tenant.call("admin", PARTNER_CREATE, name="  Sunrise Home Care ")
    assert created.errors == []
    partner = created.data["partnerCreate"]
    assert (partner["name"], partner["active"]) == ("Sunrise Home Care", True)

    # given scopes out of order and repeated, and no rate limit
    reply = await tenant.call("admin", CLIENT_CREATE, input={
        "partnerId": partner["id"], "name": "Scheduler",
        "scopes": ["patient.identity:read", "contact:read", "patient.identity:read"]})
    assert reply.errors == [], reply.errors
    payload = reply.data["partnerClientCreate"]
    client = payload["client"]
    assert client == {"id": client["id"], "name": "Scheduler", "scopes": ["contact:read", "patient.identity:read"],
                      "rateLimitPerMinute": 60, "documentsOnly": False, "revokedAt": None}
    secret = payload["clientSecret"]
    assert secret.startswith("cls_") and len(secret) == 47

    # the secret is stored only as a keyed hash, and the client list never shows it
    row = await PartnerClient.get(id=client["id"])
    assert row.secret_hash != secret and secret not in str(row.__dict__)
    listed = await tenant.call("admin", "{ partners { edges { node { id name clients { id name scopes } } } } }")
    assert listed.errors == []
    assert listed.data["partners"]["edges"] == [{"node": {
        "id": partner["id"], "name": "Sunrise Home Care",
        "clients": [{"id": client["id"], "name": "Scheduler", "scopes": ["contact:read", "patient.identity:read"]}]}}]
    assert secret not in json.dumps(listed.body)

    writes = [(e.action, e.resource_type, str(e.resource_id), e.fields_read, e.actor_id)
              for e in await tenant.audit_events(actor_id=tenant.staff_ids["admin"], action="create")]
    assert writes == [
        ("create", "partner", partner["id"], "name", tenant.staff_ids["admin"]),
        ("create", "partner_client", client["id"], "documents_only,name,rate_limit_per_minute,scopes,secret_hash",
         tenant.staff_ids["admin"])]
    trail = json.dumps([e.__dict__ for e in await tenant.audit_events()], default=str)
    assert secret not in trail and row.secret_hash not in trail


async def test_a_partner_name_is_unique_in_an_institution_only(tenant: Tenant, other_tenant: Tenant) -> None:
    await make_partner(tenant, "Rehab Centre")
    again = await tenant.call("admin", PARTNER_CREATE, name="Rehab Centre")
    assert again.codes == ["BAD_USER_INPUT"] and again.data == {"partnerCreate": None}
    assert await Partner.filter(institution_id=tenant.id).count() == 1
    await make_partner(other_tenant, "Rehab Centre")  # another institution's partner of the same name


@pytest.mark.parametrize("name", ["", " ", "x", "y" * 101])
async def test_a_partner_needs_a_name_of_2_to_100_characters(tenant: Tenant, name: str) -> None:
    reply = await tenant.call("admin", PARTNER_CREATE, name=name)
    assert reply.codes == ["BAD_USER_INPUT"]
    assert await Partner.filter(institution_id=tenant.id).count() == 0


async def test_a_partner_has_at_most_20_clients(tenant: Tenant) -> None:
    partner_id = await make_partner(tenant)
    for _ in range(20):
        await make_client(tenant, partner_id, ["patient.identity:read"])
    reply = await tenant.call("admin", CLIENT_CREATE, input={"partnerId": str(partner_id), "name": "One too many",
                                                             "scopes": ["patient.identity:read"]})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.partnerId"
    assert await PartnerClient.filter(partner_id=partner_id).count() == 20


MANAGE = {
    "partnerCreate": (PARTNER_CREATE, lambda p, c: {"name": "Intruder Care"}, "create", "partner"),
    "partnerSetActive": (PARTNER_SET_ACTIVE, lambda p, c: {"id": str(p), "active": False}, "update", "partner"),
    "partnerClientCreate": (CLIENT_CREATE, lambda p, c: {"input": {"partnerId": str(p), "name": "Extra",
                                                                   "scopes": ["patient.identity:read"]}},
                            "create", "partner_client"),
    "partnerClientRevoke": (CLIENT_REVOKE, lambda p, c: {"id": str(c)}, "update", "partner_client"),
}


@pytest.mark.parametrize("role", ADMIN_ONLY)
@pytest.mark.parametrize("operation", MANAGE)
async def test_only_admins_manage_partners_and_clients(tenant: Tenant, role: str, operation: str) -> None:
    partner_id = await make_partner(tenant)
    client = await make_client(tenant, partner_id)
    query, variables, action, resource = MANAGE[operation]
    before = (await Partner.filter(institution_id=tenant.id).values_list("id", "name", "is_active"),
              await PartnerClient.filter(institution_id=tenant.id).values_list("id", "revoked_at"))

    reply = await tenant.call(role, query, **variables(partner_id, client.id))

    assert reply.codes == ["FORBIDDEN"] and reply.data == {operation: None}
    assert (await Partner.filter(institution_id=tenant.id).values_list("id", "name", "is_active"),
            await PartnerClient.filter(institution_id=tenant.id).values_list("id", "revoked_at")) == before
    [(act, kind, _, reason)] = await denials(tenant, tenant.staff_ids[role])
    assert (act, kind, reason) == (action, resource, "forbidden")


PARTNERS = "{ partners { edges { node { id name active } } pageInfo { hasNextPage } } }"


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "department_head", "compliance_officer", "admin"])
async def test_staff_who_grant_or_oversee_read_the_partner_list(tenant: Tenant, other_tenant: Tenant,
                                                                 role: str) -> None:
    mine = await make_partner(tenant, "Alpha Care")
    await make_partner(other_tenant, "Alpha Care")  # never listed to A
    reply = await tenant.call(role, PARTNERS)
    assert reply.errors == []
    assert reply.data == {"partners": {"edges": [{"node": {"id": str(mine), "name": "Alpha Care", "active": True}}],
                                       "pageInfo": {"hasNextPage": False}}}


async def test_support_agents_do_not_read_the_partner_list(tenant: Tenant) -> None:
    await make_partner(tenant)
    reply = await tenant.call("support_agent", PARTNERS)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert await denials(tenant, tenant.staff_ids["support_agent"]) == [("read", "partner", None, "forbidden")]


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "department_head", "compliance_officer"])
async def test_only_admins_see_a_partners_clients(tenant: Tenant, role: str) -> None:
    first, second = await make_partner(tenant), await make_partner(tenant)
    for partner_id in (first, second):
        await make_client(tenant, partner_id)
    reply = await tenant.call(role, "{ partners { edges { node { id clients { id } } } } }")
    assert reply.data == {"partners": {"edges": [{"node": {"id": str(first), "clients": None}},
                                                 {"node": {"id": str(second), "clients": None}}]}}
    assert places(reply) == [(["partners", "edges", 0, "node", "clients"], "FORBIDDEN"),
                             (["partners", "edges", 1, "node", "clients"], "FORBIDDEN")]
    # refused as a field: once per request, however many partners the page shows
    assert await denials(tenant, tenant.staff_ids[role]) == [("read", "partner_client", None, "forbidden_field")]


async def test_partners_page_in_the_order_they_were_added(tenant: Tenant) -> None:
    ids = [str(await make_partner(tenant, f"Partner {n}")) for n in range(3)]
    query = "query($after: String) { partners(first: 2, after: $after) { edges { node { id } } " \
            "pageInfo { hasNextPage endCursor } } }"
    first = (await tenant.call("nurse", query)).data["partners"]
    assert [e["node"]["id"] for e in first["edges"]] == ids[:2] and first["pageInfo"]["hasNextPage"] is True
    rest = (await tenant.call("nurse", query, after=first["pageInfo"]["endCursor"])).data["partners"]
    assert [e["node"]["id"] for e in rest["edges"]] == ids[2:] and rest["pageInfo"]["hasNextPage"] is False


BAD_CLIENTS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown scope": ({"scopes": ["patient.identity:read", "patient.everything:read"]}, "BAD_USER_INPUT"),
    "no scopes": ({"scopes": []}, "BAD_USER_INPUT"),
    "the internal class": ({"scopes": ["patient.internal:read"]}, "BAD_USER_INPUT"),
    "a write scope": ({"scopes": ["patient.contact:update"]}, "BAD_USER_INPUT"),
    "a ticket read scope": ({"scopes": ["ticket:read"]}, "BAD_USER_INPUT"),
    "a staff scope": ({"scopes": ["audit:read"]}, "BAD_USER_INPUT"),
    "rate 0": ({"rateLimitPerMinute": 0}, "BAD_USER_INPUT"),
    "negative rate": ({"rateLimitPerMinute": -5}, "BAD_USER_INPUT"),
    "rate over 10000": ({"rateLimitPerMinute": 10001}, "BAD_USER_INPUT"),
    "empty document list": ({"trustedDocuments": []}, "BAD_USER_INPUT"),
    "non-hex document": ({"trustedDocuments": ["z" * 64]}, "BAD_USER_INPUT"),
    "short document hash": ({"trustedDocuments": ["a" * 63]}, "BAD_USER_INPUT"),
    "a document, not its hash": ({"trustedDocuments": ["{ me { id } }"]}, "BAD_USER_INPUT"),
    "201 documents": ({"trustedDocuments": [sha256(str(n)) for n in range(201)]}, "BAD_USER_INPUT"),
    "a one-letter name": ({"name": "x"}, "BAD_USER_INPUT"),
    "a malformed partner id": ({"partnerId": "not-an-id"}, "BAD_USER_INPUT"),
    "a random partner id": ({"partnerId": str(uuid.uuid4())}, "NOT_FOUND"),
}


@pytest.mark.parametrize("case", BAD_CLIENTS)
async def test_a_bad_client_is_refused_and_nothing_is_written(tenant: Tenant, case: str) -> None:
    partner_id = await make_partner(tenant)
    changes, code = BAD_CLIENTS[case]
    data = {"partnerId": str(partner_id), "name": "Scheduler", "scopes": ["patient.identity:read"], **changes}
    reply = await tenant.call("admin", CLIENT_CREATE, input=data)
    assert reply.codes == [code] and reply.data == {"partnerClientCreate": None}
    assert await PartnerClient.filter(institution_id=tenant.id).count() == 0
    assert await PartnerDocument.filter(institution_id=tenant.id).count() == 0
    expected = [("create", "partner", uuid.UUID(data["partnerId"]), "not_found")] if code == "NOT_FOUND" else []
    assert await denials(tenant, tenant.staff_ids["admin"]) == expected


async def test_another_institutions_partners_and_clients_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    b = await make_partnership(other_tenant)
    cases = [(PARTNER_SET_ACTIVE, {"id": str(b.partner_id), "active": False},
              {"id": str(uuid.uuid4()), "active": False}),
             (CLIENT_REVOKE, {"id": str(b.client.id)}, {"id": str(uuid.uuid4())}),
             (CLIENT_CREATE, {"input": {"partnerId": str(b.partner_id), "name": "Mine now", "scopes": ALL_SCOPES}},
              {"input": {"partnerId": str(uuid.uuid4()), "name": "Mine now", "scopes": ALL_SCOPES}})]
    b_events = await other_tenant.audit_count()
    for query, theirs, random in cases:
        reply = await tenant.call("admin", query, **theirs)
        assert reply.codes == ["NOT_FOUND"]
        assert without_place(reply) == without_place(await tenant.call("admin", query, **random))
    assert (await Partner.get(id=b.partner_id)).is_active is True
    assert (await PartnerClient.get(id=b.client.id)).revoked_at is None
    assert await PartnerClient.filter(partner_id=b.partner_id).count() == 1
    assert await other_tenant.audit_count() == b_events  # the attempts are on A's trail, not B's
    assert [(a, k, r) for a, k, _, r in await denials(tenant, tenant.staff_ids["admin"])] == [
        ("update", "partner", "not_found"), ("update", "partner", "not_found"),
        ("update", "partner_client", "not_found"), ("update", "partner_client", "not_found"),
        ("create", "partner", "not_found"), ("create", "partner", "not_found")]
    # and B's partner still reads its own patient
    assert (await b.call(READ, id=str(b.granted))).errors == []


# -- access tokens (POST /oauth/token) -------------------------------------------------------


@pytest.mark.parametrize("how", ["form", "basic"])
async def test_a_client_exchanges_its_credentials_for_an_hour_long_token(client: httpx.AsyncClient, tenant: Tenant,
                                                                         services: Services, how: str) -> None:
    partner_id = await make_partner(tenant)
    c = await make_client(tenant, partner_id)
    if how == "form":
        reply = await request_token(client, c.id, c.secret)
    else:
        basic = base64.b64encode(f"{c.id}:{c.secret}".encode()).decode()
        reply = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                  headers={"authorization": f"Basic {basic}"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    token = body["access_token"]
    assert body == {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                    "scope": " ".join(sorted([*ALL_SCOPES, OWN_LOG]))}
    assert token.startswith("clc_") and len(token) == 47
    assert reply.headers["cache-control"] == "no-store" and reply.headers["pragma"] == "no-cache"

    row = await token_row(c.id)
    assert row.token_hash == token_digest(services.master_key.token_key, token) != token
    assert timedelta(minutes=59) < row.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    [issued] = await tenant.audit_events(actor_id=c.id)
    assert (issued.actor_kind, issued.token_id, issued.action, issued.resource_type, issued.resource_id,
            issued.outcome) == ("partner", row.id, "token", "partner_token", row.id, "allowed")
    assert token not in json.dumps(issued.__dict__, default=str)

    me = await gql(client, ME, token=token)
    assert me.errors == []
    assert me.data == {"me": {"id": str(c.id), "kind": "PARTNER", "name": me.data["me"]["name"], "email": "",
                              "roles": [], "scopes": sorted([*ALL_SCOPES, OWN_LOG]), "partnerId": str(partner_id),
                              "patientId": None, "institution": {"id": str(tenant.id)}, "departments": []}}


async def test_a_token_may_ask_for_fewer_scopes_and_reads_no_more(client: httpx.AsyncClient,
                                                                  pship: Partnership) -> None:
    reply = await request_token(client, pship.client.id, pship.client.secret, scope="patient.identity:read")
    assert reply.status_code == 200 and reply.json()["scope"] == f"{OWN_LOG} patient.identity:read"
    narrow = reply.json()["access_token"]
    me = await pship.call("{ me { scopes } }", token=narrow)
    assert me.data == {"me": {"scopes": [OWN_LOG, "patient.identity:read"]}}
    read = await pship.call("query($id: ID!) { patient(id: $id) { fullName phone } }", token=narrow,
                            id=str(pship.granted))
    assert read.data == {"patient": {"fullName": pship.granted_name, "phone": None}}
    assert places(read) == [(["patient", "phone"], "FORBIDDEN")]


@pytest.mark.parametrize("scope", ["patient.clinical:read", "patient.identity:read patient.needs:read",
                                   "patient.everything:read", "patient.internal:read"])
async def test_a_scope_the_client_does_not_hold_is_invalid_scope(client: httpx.AsyncClient, tenant: Tenant,
                                                                 scope: str) -> None:
    c = await make_client(tenant, await make_partner(tenant), ["patient.identity:read"])
    reply = await request_token(client, c.id, c.secret, scope=scope)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_scope")
    assert await PartnerToken.filter(client_id=c.id).count() == 0
    assert await denials(tenant, c.id) == [("token", "partner_token", None, "invalid_scope")]


def _bad_requests(c: Any) -> dict[str, dict[str, Any]]:
    form = {"grant_type": "client_credentials", "client_id": str(c.id), "client_secret": c.secret}
    wrong = "cls_" + "A" * 43
    return {
        "json body": {"json": form, "expect": (400, "invalid_request")},
        "password grant": {"data": {**form, "grant_type": "password"}, "expect": (400, "unsupported_grant_type")},
        "no grant type": {"data": {k: v for k, v in form.items() if k != "grant_type"},
                          "expect": (400, "unsupported_grant_type")},
        "wrong secret": {"data": {**form, "client_secret": wrong}, "expect": (401, "invalid_client"), "recorded": True},
        # a known client's refusals are on its trail, whatever the secret looked like
        "malformed secret": {"data": {**form, "client_secret": "hunter2"}, "expect": (401, "invalid_client"),
                             "recorded": True},
        "no secret": {"data": {k: v for k, v in form.items() if k != "client_secret"},
                      "expect": (401, "invalid_client"), "recorded": True},
        "unknown client": {"data": {**form, "client_id": str(uuid.uuid4())}, "expect": (401, "invalid_client")},
        "malformed client id": {"data": {**form, "client_id": "client-1"}, "expect": (401, "invalid_client")},
        "basic with a wrong secret": {"data": {"grant_type": "client_credentials"}, "headers": {
            "authorization": "Basic " + base64.b64encode(f"{c.id}:{wrong}".encode()).decode()},
            "expect": (401, "invalid_client"), "recorded": True},
        "basic that is not base64": {"data": {"grant_type": "client_credentials"},
                                     "headers": {"authorization": "Basic %%%"}, "expect": (401, "invalid_client")},
        # Starlette reads a header as Latin-1: a byte over 0x7f is a character base64 refuses with a bare ValueError
        "basic that is not ASCII": {"data": {"grant_type": "client_credentials"},
                                    "headers": {"authorization": b"Basic \xff\xfe"}, "expect": (401, "invalid_client")},
        # a right Basic header beside another: ambiguous credentials are none
        "two basic headers": {"data": {"grant_type": "client_credentials"}, "headers": [
            ("authorization", "Basic " + base64.b64encode(f"{c.id}:{c.secret}".encode()).decode()),
            ("authorization", "Basic " + base64.b64encode(f"{c.id}:{wrong}".encode()).decode())],
            "expect": (401, "invalid_client")},
        # RFC 6749: each parameter once (§3.2), the credentials by one method (§2.3)
        "a scope sent twice": {"data": {**form, "scope": ["patient.identity:read", "patient.clinical:read"]},
                               "expect": (400, "invalid_request")},
        "a client id sent twice": {"data": {**form, "client_id": [str(c.id), str(c.id)]},
                                   "expect": (400, "invalid_request")},
        "basic and a secret in the form": {"data": form, "headers": {
            "authorization": "Basic " + base64.b64encode(f"{c.id}:{c.secret}".encode()).decode()},
            "expect": (400, "invalid_request")},
        "basic that is not UTF-8": {"data": {"grant_type": "client_credentials"},
                                    "headers": {"authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
                                    "expect": (401, "invalid_client")},
    }


BAD_REQUESTS = list(_bad_requests(type("C", (), {"id": "x", "secret": "y"})()))


@pytest.mark.parametrize("case", BAD_REQUESTS)
async def test_a_bad_token_request_is_refused_with_an_oauth_error(client: httpx.AsyncClient, tenant: Tenant,
                                                                  case: str) -> None:
    c = await make_client(tenant, await make_partner(tenant))
    spec = _bad_requests(c)[case]
    status, error = spec["expect"]
    reply = await client.post("/oauth/token", data=spec.get("data"), json=spec.get("json"),
                              headers=spec.get("headers"))
    assert (reply.status_code, reply.json()["error"]) == (status, error)
    assert set(reply.json()) == {"error", "error_description"}
    if status == 401:
        assert reply.headers["www-authenticate"] == "Basic"
    assert await PartnerToken.filter(client_id=c.id).count() == 0
    # a wrong secret for a known client is on that institution's trail, with the client as actor
    expected = [("token", "partner_token", None, "bad_credentials")] if spec.get("recorded") else []
    assert await denials(tenant, c.id) == expected
    assert c.secret not in json.dumps([e.__dict__ for e in await AuditEvent.filter(
        institution_id__in=[tenant.id, SYSTEM_CHAIN])], default=str)


async def test_a_revoked_client_or_suspended_partner_gets_no_token(client: httpx.AsyncClient, tenant: Tenant) -> None:
    partner_id = await make_partner(tenant)
    revoked, suspended = await make_client(tenant, partner_id), await make_client(tenant, await make_partner(tenant))
    assert (await tenant.call("admin", CLIENT_REVOKE, id=str(revoked.id))).errors == []
    assert (await tenant.call("admin", PARTNER_SET_ACTIVE, id=str(suspended.partner_id), active=False)).errors == []
    wrong = "cls_" + "A" * 43
    for c, why in ((revoked, "client_revoked"), (suspended, "partner_suspended")):
        for secret in (c.secret, wrong):
            reply = await request_token(client, c.id, secret)
            assert (reply.status_code, reply.json()) == (401, {"error": "invalid_client",
                                                               "error_description": "Unknown client or wrong secret."})
        assert await PartnerToken.filter(client_id=c.id).count() == 0
        # on the institution's trail, naming the client (found in review: anonymous, on the system chain)
        assert await denials(tenant, c.id) == [("token", "partner_token", None, why),
                                               ("token", "partner_token", None, "bad_credentials")]


# -- what a partner token reads --------------------------------------------------------------


async def test_a_partner_reads_its_granted_patient_within_its_scopes(pship: Partnership) -> None:
    query = """query($id: ID!) { patient(id: $id) { id fullName nationalId phone address allergies dietPreferences
      segments tags contacts { name phone } } }"""
    reply = await pship.call(query, id=str(pship.granted))
    assert reply.data == {"patient": {
        "id": str(pship.granted), "fullName": pship.granted_name, "nationalId": "11010519491231002X",
        "phone": reply.data["patient"]["phone"], "address": "Garden Road 5", "allergies": "Penicillin",
        "dietPreferences": "Vegetarian", "segments": None, "tags": None,
        "contacts": [{"name": pship.contact_name, "phone": "+8613600004444"}]}}
    assert reply.data["patient"]["phone"].startswith("+86138")
    # the staff-only labels are never a partner's, whatever its scopes
    assert places(reply) == [(["patient", "segments"], "FORBIDDEN"), (["patient", "tags"], "FORBIDDEN")]

    token = await token_row(pship.client.id)
    events = [e for e in await pship.events() if e.action == "read"]
    assert [(e.actor_kind, e.token_id, e.resource_type, e.patient_id, e.outcome, e.reason, e.field_classes,
             e.fields_read) for e in events] == [
        ("partner", token.id, "patient", pship.granted, "allowed", "", "clinical,contact,identity,needs",
         "address,allergies,contact.phone,national_id,phone"),
        ("partner", token.id, "patient", pship.granted, "denied", "forbidden_field", "internal", "")]


SCOPED_QUERY = """query($id: ID!) { patient(id: $id) { id fullName phone allergies dietPreferences
  contacts { name } } }"""
SCOPE_CASES: dict[str, tuple[list[str], set[str]]] = {  # scopes -> the fields of SCOPED_QUERY it reads
    "identity": (["patient.identity:read"], {"fullName"}),
    "contact without contacts": (["patient.contact:read"], {"phone"}),
    "contact and contacts": (["patient.contact:read", "contact:read"], {"phone", "contacts"}),
    "contacts without the contact class": (["contact:read", "patient.identity:read"], {"fullName"}),
    "clinical": (["patient.clinical:read"], {"allergies"}),
    "needs": (["patient.needs:read"], {"dietPreferences"}),
    "identity and clinical": (["patient.identity:read", "patient.clinical:read"], {"fullName", "allergies"}),
}


@pytest.mark.parametrize("case", SCOPE_CASES)
async def test_fields_outside_the_tokens_scopes_are_null_and_forbidden(tenant: Tenant, case: str) -> None:
    scopes, readable = SCOPE_CASES[case]
    p = await make_partnership(tenant, scopes)
    reply = await p.call(SCOPED_QUERY, id=str(p.granted))
    values = {"fullName": p.granted_name, "phone": reply.data["patient"]["phone"], "allergies": "Penicillin",
              "dietPreferences": "Vegetarian", "contacts": [{"name": p.contact_name}]}
    order = ["fullName", "phone", "allergies", "dietPreferences", "contacts"]
    assert reply.data == {"patient": {"id": str(p.granted), **{f: values[f] if f in readable else None
                                                               for f in order}}}
    assert ("phone" not in readable) == (reply.data["patient"]["phone"] is None)
    assert places(reply) == [(["patient", f], "FORBIDDEN") for f in order if f not in readable]
    refused = [e for e in await p.events(outcome="denied")]
    assert refused and all(e.reason == "forbidden_field" and e.patient_id == p.granted for e in refused)


async def test_a_token_with_no_patient_scope_reaches_no_patient(client: httpx.AsyncClient, pship: Partnership) -> None:
    c = await make_client(pship.tenant, pship.partner_id, [OWN_LOG])
    token = await token_for(client, c)
    assert (await pship.call(LIST, token=token)).data == {
        "patients": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}
    assert (await pship.call(READ, token=token, id=str(pship.granted))).codes == ["NOT_FOUND"]


async def test_the_patient_list_holds_only_granted_patients(pship: Partnership) -> None:
    tenant = pship.tenant
    more = [await make_patient(tenant) for _ in range(2)]
    for pid in more:
        await consent_and_grant(tenant, pship.partner_id, pid)
    ids = [str(pship.granted), *(str(pid) for pid in more)]
    whole = await pship.call(LIST, first=100)
    assert [n["id"] for n in whole.data["patients"]["nodes"]] == ids
    page = (await pship.call(LIST, first=2)).data["patients"]
    assert [n["id"] for n in page["nodes"]] == ids[:2] and page["pageInfo"]["hasNextPage"] is True
    rest = (await pship.call(LIST, first=2, after=page["pageInfo"]["endCursor"])).data["patients"]
    assert [n["id"] for n in rest["nodes"]] == ids[2:] and rest["pageInfo"]["hasNextPage"] is False
    # a name filter on a patient it does not reach finds nothing
    named = await pship.call("query($p: String!) { patients(filter: {namePrefix: $p}) { nodes { id } } }",
                             p=pship.other_name)
    assert named.errors == [] and named.data == {"patients": {"nodes": []}}
    mine = await pship.call("query($p: String!) { patients(filter: {namePrefix: $p}) { nodes { id } } }",
                            p=pship.granted_name)
    assert mine.data == {"patients": {"nodes": [{"id": str(pship.granted)}]}}


FILTERS: dict[str, tuple[list[str] | None, dict[str, Any]]] = {  # token scopes (None: all), filter
    "segment (staff only)": (None, {"segment": "VIP"}),
    "tag (staff only)": (None, {"tag": "wheelchair"}),
    "phone without the contact class": (["patient.identity:read"], {"phone": "13800001111"}),
    "name without the identity class": (["patient.clinical:read"], {"namePrefix": "Granted"}),
    "department without the identity class": (["patient.contact:read"], {"departmentId": str(uuid.uuid4())}),
    "status without the identity class": (["patient.needs:read"], {"status": "ACTIVE"}),
}


@pytest.mark.parametrize("case", FILTERS)
async def test_a_filter_on_a_class_the_token_may_not_read_is_forbidden(tenant: Tenant, case: str) -> None:
    scopes, where = FILTERS[case]
    p = await make_partnership(tenant, scopes)
    reply = await p.call("query($f: PatientFilter) { patients(filter: $f) { nodes { id } } }", f=where)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert await denials(tenant, p.client.id) == [("read", "patient", None, "forbidden")]
    assert await p.events(action="read", outcome="allowed", resource_type="patient") == []


ORDERED = """query($f: PatientOrderField!, $d: OrderDirection!) {
  patients(orderBy: {field: $f, direction: $d}) { nodes { id } } }"""


@pytest.mark.parametrize("field", ["NAME", "CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("scopes", [["patient.clinical:read"], ["patient.identity:read"]],
                         ids=["without the identity class", "with it"])
async def test_an_order_needs_the_identity_class_as_a_filter_on_its_field_does(tenant: Tenant, scopes: list[str],
                                                                                field: str) -> None:
    """An order tells which of two files' names (or registration, or last change times: identity too) comes first,
    and a time order's cursor is base64 that can be written to compare with any time (found in review: a token
    without patient.identity:read listed its granted patients in their names' order, ascending and descending).
    Refused as a filter on the field is, FORBIDDEN and recorded, nothing read; a token with the class sorts them."""
    p = await make_partnership(tenant, scopes)
    later_file = await make_patient(tenant, "nurse", fullName="Aaron Early")  # first by name, last by time
    await consent_and_grant(tenant, p.partner_id, later_file)
    ascending = [str(later_file), str(p.granted)] if field == "NAME" else [str(p.granted), str(later_file)]

    replies = [await p.call(ORDERED, f=field, d=d) for d in ("ASC", "DESC")]

    if "patient.identity:read" in scopes:
        assert [[n["id"] for n in r.data["patients"]["nodes"]] for r in replies] == [ascending, ascending[::-1]]
        assert await denials(tenant, p.client.id) == []
        return
    for reply in replies:
        assert reply.codes == ["FORBIDDEN"] and reply.data is None, reply.body
    assert await denials(tenant, p.client.id) == [("read", "patient", None, "forbidden")] * 2
    assert await p.events(action="read", outcome="allowed", resource_type="patient") == []
    plain = await p.call("{ patients { nodes { id } } }")  # registration order, as ids go: no field compared
    assert sorted(n["id"] for n in plain.data["patients"]["nodes"]) == sorted(ascending)


# -- every other patient is NOT_FOUND, like a random id ------------------------------------


@dataclass
class World:
    p: Partnership
    others: dict[str, uuid.UUID]
    names: list[str]  # of patients the partner must never see


@pytest.fixture
async def world(tenant: Tenant, other_tenant: Tenant) -> World:
    p = await make_partnership(tenant)
    q = await make_partnership(tenant)  # another partner of the same institution, with its own patient
    consent_only = await make_patient(tenant, fullName="ConsentOnly")
    assert (await consent(tenant, consent_only, p.partner_id)).errors == []
    revoked = await make_patient(tenant, fullName="RevokedGrant")
    grant_id = await consent_and_grant(tenant, p.partner_id, revoked)
    assert (await tenant.call("nurse", GRANT_REVOKE, id=str(grant_id))).errors == []
    b = await make_partnership(other_tenant)
    others = {"never granted": p.other, "granted to another partner": q.granted, "consent but no grant": consent_only,
              "grant revoked": revoked, "another institution's granted patient": b.granted}
    return World(p, others, [p.other_name, q.granted_name, "ConsentOnly", "RevokedGrant", b.granted_name,
                             q.contact_name, b.contact_name])


SHAPES = {
    "by id": "query($id: ID!) { patient(id: $id) { id fullName } }",
    "nested contacts": "query($id: ID!) { patient(id: $id) { id contacts { name phone } } }",
    "named fragment": "query($id: ID!) { patient(id: $id) { ...F } } fragment F on Patient { id fullName allergies }",
    "inline fragment": "query($id: ID!) { patient(id: $id) { ... on Patient { id phone contacts { name } } } }",
    "nested named fragments": """query($id: ID!) { ...Q } fragment Q on Query { patient(id: $id) { ...F } }
                                 fragment F on Patient { id nationalId contacts { name } }""",
    "consents": "query($id: ID!) { patient(id: $id) { id partnerConsents { partnerId granted } } }",
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("whose", ["never granted", "granted to another partner", "consent but no grant",
                                   "grant revoked", "another institution's granted patient"])
async def test_a_patient_not_granted_answers_like_a_random_id(world: World, whose: str, shape: str) -> None:
    p, target = world.p, world.others[whose]
    theirs = await p.call(SHAPES[shape], id=str(target))
    assert await denials(p.tenant, p.client.id) == [("read", "patient", target, "not_found")]
    missing = await p.call(SHAPES[shape], id=str(uuid.uuid4()))

    assert theirs.codes == ["NOT_FOUND"] and theirs.data == {"patient": None}
    assert without_place(theirs) == without_place(missing)
    assert [n for n in world.names if n in json.dumps(theirs.body)] == []
    # nothing of it was read: no allowed record names the patient
    assert await AuditEvent.filter(patient_id=target, actor_id=p.client.id).count() == 0


async def test_aliases_each_answer_for_their_own_patient(world: World) -> None:
    p = world.p
    query = """query($mine: ID!, $a: ID!, $b: ID!, $c: ID!) {
      mine: patient(id: $mine) { id fullName contacts { name } }
      a: patient(id: $a) { id fullName }
      b: patient(id: $b) { ...F }
      c: patient(id: $c) { id contacts { name } }
    } fragment F on Patient { id allergies }"""
    a, b, c = (world.others[k] for k in ("never granted", "granted to another partner",
                                         "another institution's granted patient"))
    reply = await p.call(query, mine=str(p.granted), a=str(a), b=str(b), c=str(c))
    assert reply.data == {"mine": {"id": str(p.granted), "fullName": p.granted_name,
                                   "contacts": [{"name": p.contact_name}]}, "a": None, "b": None, "c": None}
    assert sorted(places(reply)) == [(["a"], "NOT_FOUND"), (["b"], "NOT_FOUND"), (["c"], "NOT_FOUND")]
    assert sorted((e.resource_id, e.reason) for e in await p.events(outcome="denied")) == sorted(
        [(a, "not_found"), (b, "not_found"), (c, "not_found")])
    [read] = await p.events(outcome="allowed", action="read")
    assert (read.patient_id, read.field_classes) == (p.granted, "contact,identity")
    assert [n for n in world.names if n in json.dumps(reply.body)] == []


async def test_the_list_never_carries_another_patient(world: World) -> None:
    query = "{ patients(first: 100) { nodes { id fullName phone contacts { name } partnerConsents { partnerId } } } }"
    reply = await world.p.call(query)
    assert reply.errors == []
    assert [n["id"] for n in reply.data["patients"]["nodes"]] == [str(world.p.granted)]
    text = json.dumps(reply.body)
    assert [n for n in world.names if n in text] == []
    assert [str(pid) for pid in world.others.values() if str(pid) in text] == []


async def test_another_institutions_token_finds_nothing_here(world: World, other_tenant: Tenant) -> None:
    b = await make_partnership(other_tenant)
    random = uuid.uuid4()
    theirs = await b.call(READ, id=str(world.p.granted))
    missing = await b.call(READ, id=str(random))
    assert theirs.codes == ["NOT_FOUND"] and without_place(theirs) == without_place(missing)
    assert [n["id"] for n in (await b.call(LIST)).data["patients"]["nodes"]] == [str(b.granted)]
    denied = await other_tenant.audit_events(actor_id=b.client.id, outcome="denied")
    assert [(e.resource_id, e.reason) for e in denied] == [(world.p.granted, "not_found"), (random, "not_found")]
    assert await AuditEvent.filter(institution_id=world.p.tenant.id, actor_id=b.client.id).count() == 0


async def test_a_partner_sees_no_other_partner_through_the_patients_consents(tenant: Tenant) -> None:
    """The partner role may not read partners (``partners`` is FORBIDDEN to it), and whom else a patient
    shares their file with (a clinic, a lab) is not the partner's to know."""
    p = await make_partnership(tenant)
    other = await make_partner(tenant, "Mind Clinic")
    await consent_and_grant(tenant, other, p.granted)
    reply = await p.call("query($id: ID!) { patient(id: $id) { partnerConsents { partnerId granted "
                         "partner { id name } } } }", id=str(p.granted))
    text = json.dumps(reply.body)
    assert str(other) not in text and "Mind Clinic" not in text


# -- what a partner may not do ---------------------------------------------------------------


WRITES: dict[str, tuple[str, Any]] = {
    "patientUpdate": ('mutation($id: ID!) { patientUpdate(id: $id, input: {fullName: "Changed"}) { id } }',
                      lambda p: {"id": str(p.granted)}),
    "patientCreate": ('mutation { patientCreate(input: {fullName: "Planted"}) { patient { id } } }', lambda p: {}),
    "patientArchive": ("mutation($id: ID!) { patientArchive(id: $id) { id } }", lambda p: {"id": str(p.granted)}),
    "patientUnarchive": ("mutation($id: ID!) { patientUnarchive(id: $id) { id } }",
                         lambda p: {"id": str(p.granted)}),
    "contactCreate": ('mutation($id: ID!) { contactCreate(patientId: $id, input: {name: "X", relationship: FRIEND}) '
                      "{ id } }", lambda p: {"id": str(p.granted)}),
    "partnerGrantCreate": ("mutation($i: PartnerGrantCreateInput!) { partnerGrantCreate(input: $i) { id } }",
                           lambda p: {"i": {"partnerId": str(p.partner_id), "patientId": str(p.other),
                                            "purpose": "Wider access", "expiresAt": "2099-01-01T00:00:00Z"}}),
    "partnerGrantRevoke": ("mutation($id: ID!) { partnerGrantRevoke(id: $id) { id } }",
                           lambda p: {"id": str(p.grant_id)}),
    "partnerConsentSet": ("mutation($p: ID!, $q: ID!) { partnerConsentSet(patientId: $p, partnerId: $q, "
                          "granted: true) { granted } }", lambda p: {"p": str(p.other), "q": str(p.partner_id)}),
    "partnerCreate": ('mutation { partnerCreate(name: "Shadow partner") { id } }', lambda p: {}),
    "partnerClientCreate": ('mutation($id: ID!) { partnerClientCreate(input: {partnerId: $id, name: "Mine", '
                            'scopes: ["patient.clinical:read"]}) { clientSecret } }',
                            lambda p: {"id": str(p.partner_id)}),
    "partnerSetActive": ("mutation($id: ID!) { partnerSetActive(id: $id, active: true) { id } }",
                         lambda p: {"id": str(p.partner_id)}),
    "breakGlass": ('mutation($id: ID!) { breakGlass(patientId: $id, reason: "An emergency at home, really") '
                   "{ id } }", lambda p: {"id": str(p.other)}),
}


async def _state(p: Partnership) -> tuple[Any, ...]:
    tenant = p.tenant
    return (await PartnerGrant.filter(institution_id=tenant.id).values_list("id", "revoked_at"),
            await PartnerConsent.filter(institution_id=tenant.id).values_list("id", "granted"),
            await Partner.filter(institution_id=tenant.id).values_list("id", "is_active"),
            await PartnerClient.filter(institution_id=tenant.id).count(),
            await AuditEvent.filter(institution_id=tenant.id, outcome="allowed").exclude(action="read").count())


@pytest.mark.parametrize("operation", WRITES)
async def test_a_partner_writes_nothing(pship: Partnership, operation: str) -> None:
    query, variables = WRITES[operation]
    before = await _state(pship)
    reply = await pship.call(query, **variables(pship))
    assert reply.codes == ["FORBIDDEN"] and reply.data == {operation: None}
    assert await _state(pship) == before
    refused = await pship.events(outcome="denied")
    assert len(refused) == 1 and refused[0].reason == "forbidden" and refused[0].token_id is not None


COMPLIANCE_ONLY: dict[str, tuple[str, Any]] = {
    "auditEvents": ("{ auditEvents { edges { node { id } } } }", lambda p: {}),
    "patientAccessReport": ("query($id: ID!) { patientAccessReport(patientId: $id) { actorId } }",
                            lambda p: {"id": str(p.granted)}),
    "disclosures": ('{ disclosures(from: "2020-01-01T00:00:00Z", to: "2025-01-01T00:00:00Z") '
                    "{ edges { node { patientId } } } }", lambda p: {}),
    "emergencyAccesses": ("{ emergencyAccesses { edges { node { id } } } }", lambda p: {}),
    "emergencyAccessUnreviewedCount": ("{ emergencyAccessUnreviewedCount }", lambda p: {}),
    "accessAnomalies": ('{ accessAnomalies(from: "2020-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z") '
                        "{ staffId } }", lambda p: {}),
    "partners": ("{ partners { edges { node { id } } } }", lambda p: {}),
    "partnerGrants": ("query($id: ID!) { partnerGrants(patientId: $id) { edges { node { id } } } }",
                      lambda p: {"id": str(p.granted)}),
    "tickets": ("{ tickets { edges { node { id } } } }", lambda p: {}),
    "staff": ("query($id: ID!) { staff(id: $id) { id } }", lambda p: {"id": str(p.tenant.staff_ids["nurse"])}),
}


@pytest.mark.parametrize("query_name", COMPLIANCE_ONLY)
async def test_a_partner_reads_nothing_else_of_the_trail_or_the_institution(pship: Partnership,
                                                                            query_name: str) -> None:
    query, variables = COMPLIANCE_ONLY[query_name]
    reply = await pship.call(query, **variables(pship))
    assert reply.codes == ["FORBIDDEN"]
    assert reply.data is None or reply.data == {query_name: None}
    refused = await pship.events(outcome="denied")
    assert [(e.action, e.reason, e.actor_kind) for e in refused] == [("read", "forbidden", "partner")]
    assert refused[0].token_id == (await token_row(pship.client.id)).id


# -- revocation and expiry take effect on the next request -----------------------------------


async def test_revoking_a_client_stops_its_tokens_on_the_next_request(client: httpx.AsyncClient,
                                                                       pship: Partnership) -> None:
    sibling = await make_client(pship.tenant, pship.partner_id)
    sibling_token = await token_for(client, sibling)
    assert (await pship.call(READ, id=str(pship.granted))).errors == []

    revoked = await pship.tenant.call("admin", CLIENT_REVOKE, id=str(pship.client.id))
    assert revoked.errors == [] and revoked.data["partnerClientRevoke"]["revokedAt"] is not None

    assert without_place(await pship.call(READ, id=str(pship.granted))) == UNAUTHENTICATED
    assert (await token_row(pship.client.id)).revoked_at is not None
    reply = await request_token(client, pship.client.id, pship.client.secret)
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client")
    # the partner's other client is untouched
    assert (await pship.call(READ, token=sibling_token, id=str(pship.granted))).errors == []


async def test_logout_revokes_the_partner_token(client: httpx.AsyncClient, pship: Partnership) -> None:
    second = await token_for(client, pship.client)
    reply = await pship.call(LOGOUT)
    assert reply.errors == [] and reply.data == {"logout": True}
    assert without_place(await pship.call(READ, id=str(pship.granted))) == UNAUTHENTICATED
    assert (await pship.call(READ, token=second, id=str(pship.granted))).errors == []  # its other token
    [out] = await pship.events(action="logout")
    revoked = await PartnerToken.get(client_id=pship.client.id, revoked_at__isnull=False)
    assert (out.actor_kind, out.token_id, out.resource_id) == ("partner", revoked.id, revoked.id)


async def test_suspending_a_partner_stops_its_tokens_and_resuming_restores_them(client: httpx.AsyncClient,
                                                                                pship: Partnership) -> None:
    tenant = pship.tenant
    assert (await tenant.call("admin", PARTNER_SET_ACTIVE, id=str(pship.partner_id), active=False)).data == {
        "partnerSetActive": {"id": str(pship.partner_id), "active": False}}
    assert without_place(await pship.call(READ, id=str(pship.granted))) == UNAUTHENTICATED
    refused = await request_token(client, pship.client.id, pship.client.secret)
    assert refused.status_code == 401
    assert (await tenant.call("admin", PARTNER_SET_ACTIVE, id=str(pship.partner_id), active=True)).errors == []
    assert (await pship.call(READ, id=str(pship.granted))).data == {
        "patient": {"id": str(pship.granted), "fullName": pship.granted_name}}


async def test_an_expired_token_is_unauthenticated(pship: Partnership) -> None:
    assert (await pship.call(READ, id=str(pship.granted))).errors == []
    await PartnerToken.filter(client_id=pship.client.id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert without_place(await pship.call(READ, id=str(pship.granted))) == UNAUTHENTICATED
    assert without_place(await pship.call(ME)) == {"data": {"me": None}, "errors": BAD_TOKEN}


@pytest.mark.parametrize("token", ["clc_" + "A" * 43, "clc_short", "cls_" + "A" * 43])
async def test_an_unknown_or_malformed_partner_token_is_unauthenticated(client: httpx.AsyncClient,
                                                                        pship: Partnership, token: str) -> None:
    reply = await gql(client, READ, {"id": str(pship.granted)}, token=token)
    assert without_place(reply) == UNAUTHENTICATED


async def test_a_client_secret_is_not_a_bearer_token(client: httpx.AsyncClient, pship: Partnership) -> None:
    reply = await gql(client, READ, {"id": str(pship.granted)}, token=pship.client.secret)
    assert without_place(reply) == UNAUTHENTICATED


# -- trusted documents -----------------------------------------------------------------------


TRUSTED = "query($id: ID!) { patient(id: $id) { id fullName } }"
TRUSTED_LIST = "query Granted { patients { nodes { id } } }"


async def test_a_client_with_trusted_documents_sends_only_those(client: httpx.AsyncClient, tenant: Tenant) -> None:
    p = await make_partnership(tenant, documents=[sha256(TRUSTED), sha256(TRUSTED_LIST).upper()])
    [row] = await PartnerClient.filter(id=p.client.id).values_list("documents_only", flat=True)
    assert row is True
    assert sorted(await PartnerDocument.filter(client_id=p.client.id).values_list("sha256", flat=True)) == sorted(
        [sha256(TRUSTED), sha256(TRUSTED_LIST)])

    # the registered documents, with any variables
    assert (await p.call(TRUSTED, id=str(p.granted))).data == {
        "patient": {"id": str(p.granted), "fullName": p.granted_name}}
    assert (await p.call(TRUSTED, id=str(p.other))).codes == ["NOT_FOUND"]
    assert (await p.call(TRUSTED_LIST)).data == {"patients": {"nodes": [{"id": str(p.granted)}]}}
    assert [e.reason for e in await p.events(outcome="denied")] == ["not_found"]


UNTRUSTED = {
    "another query": "{ me { id } }",
    "a trailing space": TRUSTED + " ",
    "a different field": "query($id: ID!) { patient(id: $id) { id fullName allergies } }",
    "an alias": "query($id: ID!) { patient(id: $id) { id name: fullName } }",
    "a mutation": "mutation { logout }",
}


@pytest.mark.parametrize("case", UNTRUSTED)
async def test_an_untrusted_document_is_refused_and_recorded(tenant: Tenant, case: str) -> None:
    p = await make_partnership(tenant, documents=[sha256(TRUSTED)])
    reply = await p.call(UNTRUSTED[case], id=str(p.granted))
    assert reply.body == {"errors": [{  # refused before execution: no data entry (GraphQL-over-HTTP)
        "message": "This client may send only its registered operation documents.",
        "extensions": {"code": "FORBIDDEN"}}]}
    events = [e for e in await p.events() if e.action != "token"]
    assert [(e.action, e.resource_type, e.outcome, e.reason) for e in events] == [
        ("read", "document", "denied", "untrusted_document")]
    assert events[0].token_id == (await token_row(p.client.id)).id
    assert await PartnerToken.filter(client_id=p.client.id, revoked_at__isnull=False).count() == 0  # not logged out


async def test_a_client_without_trusted_documents_sends_any_document(pship: Partnership) -> None:
    for query in (TRUSTED, TRUSTED + " ", "query($id: ID!) { patient(id: $id) { id name: fullName } }"):
        assert (await pship.call(query, id=str(pship.granted))).errors == []
    assert await pship.events(outcome="denied") == []


# -- rate limits -----------------------------------------------------------------------------


async def test_the_request_after_the_limit_is_rate_limited_and_recorded(client: httpx.AsyncClient,
                                                                        tenant: Tenant) -> None:
    p = await make_partnership(tenant)  # a roomy client, to show the limit is per client
    window = await fresh_minute()
    limited = await make_client(tenant, p.partner_id, rate=3)
    token = await token_for(client, limited)  # the token request is the first of three
    for _ in range(2):
        assert (await gql(client, READ, {"id": str(p.granted)}, token=token)).errors == []

    over = await gql(client, READ, {"id": str(p.granted)}, token=token)
    assert without_place(over) == {"data": {"patient": None}, "errors": [
        {"message": "Too many requests; try again later.", "extensions": {"code": "RATE_LIMITED"}}]}
    again = await request_token(client, limited.id, limited.secret)
    assert (again.status_code, again.json()["error"]) == (429, "slow_down")
    assert (await p.call(READ, id=str(p.granted))).errors == []  # another client of the partner: untouched
    assert minute() == window, "the sequence crossed a minute; fresh_minute's margin is too small"

    token_id = (await token_row(limited.id)).id
    assert [(e.action, e.resource_type, e.token_id, e.reason) for e in await tenant.audit_events(
        actor_id=limited.id, outcome="denied")] == [("read", "request", token_id, "rate_limited")]  # once a minute
    assert await PartnerToken.filter(client_id=limited.id).count() == 1  # no token issued over the limit


async def test_me_over_the_limit_answers_rate_limited(client: httpx.AsyncClient, tenant: Tenant) -> None:
    partner_id = await make_partner(tenant)
    await fresh_minute()
    limited = await make_client(tenant, partner_id, rate=2)
    token = await token_for(client, limited)
    assert (await gql(client, "{ me { id } }", token=token)).data == {"me": {"id": str(limited.id)}}
    over = await gql(client, "{ me { id } }", token=token)
    assert over.codes == ["RATE_LIMITED"] and over.data == {"me": None}


@pytest.mark.parametrize("rate", [1, 2])
async def test_a_mixed_request_over_the_limit_reads_nothing(client: httpx.AsyncClient, tenant: Tenant,
                                                            rate: int) -> None:
    p = await make_partnership(tenant)
    await fresh_minute()
    limited = await make_client(tenant, p.partner_id, rate=rate)
    token = await token_for(client, limited)
    for _ in range(rate - 1):
        await gql(client, "{ partnerUsage(from: \"2020-01-01T00:00:00Z\", to: \"2021-01-01T00:00:00Z\") "
                          "{ requests } }", token=token)
    query = "query($id: ID!) { a: patient(id: $id) { fullName } b: patients { nodes { id } } }"
    reply = await gql(client, query, {"id": str(p.granted)}, token=token)
    assert reply.data is None or reply.data.get("a") is None
    assert set(reply.codes) == {"RATE_LIMITED"}
    assert p.granted_name not in json.dumps(reply.body)
    assert await tenant.audit_events(actor_id=limited.id, action="read", outcome="allowed",
                                     resource_type="patient") == []


# -- a partner's own access log and usage ----------------------------------------------------


LOG = """query($first: Int! = 100, $after: String, $from: DateTime, $to: DateTime) {
  partnerAccessLog(first: $first, after: $after, from: $from, to: $to) {
    edges { node { seq actorKind actorId tokenId action resourceType patientId outcome reason } }
    pageInfo { hasNextPage endCursor } } }"""


async def test_the_access_log_holds_the_partners_own_events_newest_first(client: httpx.AsyncClient,
                                                                         tenant: Tenant) -> None:
    p = await make_partnership(tenant)
    q = await make_partnership(tenant)  # another partner: none of its events may show
    second = await make_client(tenant, p.partner_id)
    second_token = await token_for(client, second)
    await p.call(READ, id=str(p.granted))
    await p.call(READ, id=str(p.other))
    await p.call(READ, token=second_token, id=str(p.granted))
    await q.call(READ, id=str(q.granted))
    await tenant.call("nurse", READ, id=str(p.granted))

    reply = await p.call(LOG)
    assert reply.errors == []
    nodes = [e["node"] for e in reply.data["partnerAccessLog"]["edges"]]
    own = [e for e in await tenant.audit_events(actor_kind="partner")
           if e.actor_id in (p.client.id, second.id)]
    # everything of its own but the record of this very read, written when the read ended
    assert (own[-1].resource_type, own[-1].actor_id) == ("audit_event", p.client.id)
    assert [n["seq"] for n in nodes] == [e.seq for e in reversed(own[:-1])]
    assert {n["actorId"] for n in nodes} == {str(p.client.id), str(second.id)}
    assert {(n["actorKind"], n["tokenId"] is not None) for n in nodes} == {("PARTNER", True)}
    assert [(n["actorId"], n["resourceType"], n["patientId"], n["outcome"], n["reason"]) for n in nodes[:3]] == [
        (str(second.id), "patient", str(p.granted), "ALLOWED", ""),
        (str(p.client.id), "patient", None, "DENIED", "not_found"),
        (str(p.client.id), "patient", str(p.granted), "ALLOWED", "")]
    text = json.dumps(reply.body)
    assert str(q.client.id) not in text and str(tenant.staff_ids["nurse"]) not in text
    # reading the log is itself on it
    [latest] = await p.events(resource_type="audit_event")
    assert (latest.outcome, latest.policy_rule) == ("allowed", "partner, *, partner_log, read, allow")


async def test_the_access_log_pages_and_takes_a_period(pship: Partnership) -> None:
    for _ in range(3):
        await pship.call(READ, id=str(pship.granted))
    middle = datetime.now(UTC)
    await pship.call(READ, id=str(pship.other))
    # the token, three reads and the refusal (a refusal on record leaves no extra request record)
    own = [e.seq for e in await pship.events()][::-1]
    assert len(own) == 5

    def seqs(reply: Response) -> list[int]:
        assert reply.errors == [], reply.errors
        return [e["node"]["seq"] for e in reply.data["partnerAccessLog"]["edges"]]

    first = await pship.call(LOG, first=2)
    assert seqs(first) == own[:2] and first.data["partnerAccessLog"]["pageInfo"]["hasNextPage"] is True
    rest = await pship.call(LOG, first=100, after=first.data["partnerAccessLog"]["pageInfo"]["endCursor"])
    assert seqs(rest) == own[2:] and rest.data["partnerAccessLog"]["pageInfo"]["hasNextPage"] is False

    later_ones = [e.seq for e in await pship.events() if e.occurred_at >= middle][::-1]
    assert seqs(await pship.call(LOG, **{"from": middle.isoformat()})) == later_ones
    assert later_ones[-1] == own[0]  # the refusal, and the log reads since
    assert seqs(await pship.call(LOG, to=middle.isoformat())) == own[1:]
    window = await pship.call(LOG, **{"from": middle.isoformat(), "to": middle.isoformat()})
    assert seqs(window) == []
    naive = await pship.call(LOG, **{"from": "2024-01-01T00:00:00"})
    assert naive.codes == ["BAD_USER_INPUT"]


USAGE = """query($from: DateTime!, $to: DateTime!) { partnerUsage(from: $from, to: $to) {
  client { id } requests throttled lastRequestAt } }"""


async def test_usage_counts_each_clients_requests_and_throttling(client: httpx.AsyncClient, tenant: Tenant) -> None:
    p = await make_partnership(tenant)  # its token request: 1
    q = await make_partnership(tenant)  # another partner: never listed
    await fresh_minute()
    limited = await make_client(tenant, p.partner_id, rate=2)
    limited_token = await token_for(client, limited)  # 1
    for _ in range(3):  # 2, then two over the limit
        await gql(client, "{ me { id } }", token=limited_token)
    for _ in range(4):
        await p.call(READ, id=str(p.granted))  # 2 to 5
    start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)

    reply = await p.call(USAGE, **{"from": start.isoformat(), "to": end.isoformat()})  # 6
    assert reply.errors == []
    rows = {u["client"]["id"]: u for u in reply.data["partnerUsage"]}
    assert set(rows) == {str(p.client.id), str(limited.id)}
    assert (rows[str(p.client.id)]["requests"], rows[str(p.client.id)]["throttled"]) == (6, 0)
    assert (rows[str(limited.id)]["requests"], rows[str(limited.id)]["throttled"]) == (4, 2)
    last = datetime.fromisoformat(rows[str(p.client.id)]["lastRequestAt"])
    assert last == minute() or last == minute() - timedelta(minutes=1)
    assert str(q.client.id) not in json.dumps(reply.body)

    past = await p.call(USAGE, **{"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"})
    assert sorted((u["client"]["id"], u["requests"], u["throttled"], u["lastRequestAt"])
                  for u in past.data["partnerUsage"]) == sorted(
        [(str(p.client.id), 0, 0, None), (str(limited.id), 0, 0, None)])
    backwards = await p.call(USAGE, **{"from": end.isoformat(), "to": start.isoformat()})
    assert backwards.codes == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("role", ROLES)
async def test_staff_do_not_read_a_partners_log_or_usage(tenant: Tenant, role: str) -> None:
    await make_partnership(tenant)
    log = await tenant.call(role, LOG)
    usage = await tenant.call(role, USAGE, **{"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"})
    assert (log.codes, log.data, usage.codes, usage.data) == (["FORBIDDEN"], None, ["FORBIDDEN"], None)
    assert [(a, k, r) for a, k, _, r in await denials(tenant, tenant.staff_ids[role])] == [
        ("read", "audit_event", "forbidden"), ("read", "partner_usage", "forbidden")]


# -- the audit trail -------------------------------------------------------------------------


async def test_every_partner_request_is_on_the_trail_with_client_and_token(pship: Partnership) -> None:
    token = await token_row(pship.client.id)
    queries = [("query($id: ID!) { patient(id: $id) { fullName } }", {"id": str(pship.granted)}),
               ("query($id: ID!) { patient(id: $id) { fullName } }", {"id": str(pship.other)}),
               ("{ me { id } }", {}),
               ("{ auditEvents { edges { node { id } } } }", {})]
    seen = len(await pship.events())
    for query, variables in queries:
        await pship.call(query, **variables)
        events = await pship.events()
        assert len(events) > seen, query  # each request left at least one record
        assert {(e.actor_kind, e.actor_id, e.token_id) for e in events[seen:]} == {
            ("partner", pship.client.id, token.id)}
        seen = len(events)


@pytest.mark.parametrize("query", ["{ patient(id: ", "{ nosuchfield }", '{ patients(first: "x") { nodes { id } } }'],
                         ids=["syntax", "unknown field", "wrong argument type"])
async def test_a_request_that_fails_before_it_runs_is_on_the_trail(pship: Partnership, query: str) -> None:
    token = await token_row(pship.client.id)
    seen = len(await pship.events())

    reply = await pship.call(query)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert [(e.action, e.resource_type, e.outcome, e.token_id) for e in (await pship.events())[seen:]] == [
        ("read", "request", "allowed", token.id)]


async def test_no_secret_token_or_patient_value_reaches_the_trail(client: httpx.AsyncClient, tenant: Tenant,
                                                                  services: Services) -> None:
    p = await make_partnership(tenant)
    second = await token_for(client, p.client)
    full = await p.call(FULL, id=str(p.granted))
    phone = full.data["patient"]["phone"]  # +86 and eleven digits
    await p.call(FULL, id=str(p.other))
    await p.call("query($f: PatientFilter) { patients(filter: $f) { nodes { id } } }",
                 f={"namePrefix": p.granted_name})
    await request_token(client, p.client.id, "cls_" + "B" * 43)
    await gql(client, "{ me { id } }", token=second)
    await p.call(LOGOUT)
    rows = await AuditEvent.filter(institution_id__in=[tenant.id, SYSTEM_CHAIN])
    text = json.dumps([r.__dict__ for r in rows], default=str, ensure_ascii=False)
    secrets = [p.client.secret, p.token, second, token_digest(services.master_key.token_key, p.token),
               token_digest(services.master_key.token_key, p.client.secret)]
    values = [p.granted_name, p.other_name, p.contact_name, "Garden Road 5", "Penicillin", "Latex", "Vegetarian",
              "11010519491231002X", phone, phone[3:], "Call after 6", "Home care visits", "Garden Road"]
    assert [s for s in secrets if s in text] == []
    assert [v for v in values if v in text] == []


async def test_contacts_are_read_on_the_patients_record(tenant: Tenant) -> None:
    p = await make_partnership(tenant, ["patient.contact:read", "contact:read"])
    second = await add_contact(tenant, p.granted, "Second Contact", "13600007777")
    reply = await p.call("query($id: ID!) { patient(id: $id) { contacts { id name phone notes } } }",
                         id=str(p.granted))
    assert reply.errors == []
    assert [c["id"] for c in reply.data["patient"]["contacts"]][-1] == str(second)
    [read] = await p.events(action="read")
    assert (read.resource_type, read.patient_id, read.field_classes, read.fields_read) == (
        "patient", p.granted, "contact", "contact.notes,contact.phone")
    assert f"partner_grant {p.grant_id}" in read.policy_rule


async def test_usage_for_a_period_without_a_time_zone_is_bad_input(pship: Partnership) -> None:
    """A naive and an aware time do not even compare: refused with a code, never a server error."""
    usage = "query($f: DateTime!, $t: DateTime!) { partnerUsage(from: $f, to: $t) { requests } }"
    for start, end, field in (("2026-01-01T00:00:00", "2026-02-01T00:00:00+00:00", "from"),
                              ("2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00", "to")):
        reply = await pship.call(usage, f=start, t=end)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
