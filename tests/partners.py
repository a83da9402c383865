"""Care partners for tests, built through the API: a partner (admin), an API client and its secret
(admin), an access token (``POST /oauth/token``), the patient's consent (front desk) and a grant
(nurse), and a way to call GraphQL with a partner's token."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.factories import Response, Tenant, gql, make_patient

ALL_SCOPES = ["contact:read", "patient.clinical:read", "patient.contact:read", "patient.identity:read",
              "patient.needs:read"]
OWN_LOG = "partner_log:read"
# Generous by default, so that a test's own requests never meet the limit by accident.
ROOMY_RATE = 1000
_counter = itertools.count(1)

PARTNER_CREATE = "mutation($name: String!) { partnerCreate(name: $name) { id name active } }"
PARTNER_SET_ACTIVE = """mutation($id: ID!, $active: Boolean!) {
  partnerSetActive(id: $id, active: $active) { id active } }"""
CLIENT_CREATE = """mutation($input: PartnerClientCreateInput!) { partnerClientCreate(input: $input) {
  client { id name scopes rateLimitPerMinute documentsOnly revokedAt } clientSecret } }"""
CLIENT_REVOKE = "mutation($id: ID!) { partnerClientRevoke(id: $id) { id revokedAt } }"
CONSENT_SET = """mutation($patientId: ID!, $partnerId: ID!, $granted: Boolean!) {
  partnerConsentSet(patientId: $patientId, partnerId: $partnerId, granted: $granted) {
    partnerId granted changedAt } }"""
GRANT_CREATE = """mutation($input: PartnerGrantCreateInput!) { partnerGrantCreate(input: $input) {
  id partnerId patientId purpose expiresAt revokedAt standing partner { id name } } }"""
GRANT_REVOKE = "mutation($id: ID!) { partnerGrantRevoke(id: $id) { id revokedAt standing } }"
CONTACT_CREATE = """mutation($patientId: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $patientId, input: $input) { id } }"""
LOGOUT = "mutation { logout }"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def later(**delta: float) -> str:
    """A moment from now, as the API takes it (ISO 8601 with a time zone)."""
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def make_partner(tenant: Tenant, name: str | None = None) -> uuid.UUID:
    reply = await tenant.call("admin", PARTNER_CREATE, name=name or f"Home Care {next(_counter)}")
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["partnerCreate"]["id"])


@dataclass
class Client:
    id: uuid.UUID
    secret: str
    partner_id: uuid.UUID


async def make_client(tenant: Tenant, partner_id: uuid.UUID, scopes: list[str] | None = None, *,
                      rate: int = ROOMY_RATE, documents: list[str] | None = None) -> Client:
    data: dict[str, Any] = {"partnerId": str(partner_id), "name": f"Client {next(_counter)}",
                            "scopes": ALL_SCOPES if scopes is None else scopes, "rateLimitPerMinute": rate}
    if documents is not None:
        data["trustedDocuments"] = documents
    reply = await tenant.call("admin", CLIENT_CREATE, input=data)
    assert reply.errors == [], reply.errors
    created = reply.data["partnerClientCreate"]
    return Client(uuid.UUID(created["client"]["id"]), created["clientSecret"], partner_id)


async def request_token(http: httpx.AsyncClient, client_id: object, secret: str, scope: str | None = None,
                        grant_type: str = "client_credentials") -> httpx.Response:
    form = {"grant_type": grant_type, "client_id": str(client_id), "client_secret": secret}
    if scope is not None:
        form["scope"] = scope
    return await http.post("/oauth/token", data=form)


async def token_for(http: httpx.AsyncClient, client: Client, scope: str | None = None) -> str:
    reply = await request_token(http, client.id, client.secret, scope)
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    assert isinstance(token, str) and token.startswith("clc_")
    return token


async def consent(tenant: Tenant, patient_id: uuid.UUID, partner_id: uuid.UUID, granted: bool = True,
                  role: str = "front_desk") -> Response:
    reply = await tenant.call(role, CONSENT_SET, patientId=str(patient_id), partnerId=str(partner_id),
                              granted=granted)
    return reply


async def grant(tenant: Tenant, partner_id: uuid.UUID, patient_id: uuid.UUID, purpose: str = "Home care visits",
                expires_at: str | None = None, role: str = "nurse") -> Response:
    return await tenant.call(role, GRANT_CREATE, input={"partnerId": str(partner_id), "patientId": str(patient_id),
                                                        "purpose": purpose, "expiresAt": expires_at or later(days=30)})


async def consent_and_grant(tenant: Tenant, partner_id: uuid.UUID, patient_id: uuid.UUID,
                            purpose: str = "Home care visits") -> uuid.UUID:
    """The patient consents (front desk records it) and the nurse grants: the grant's id."""
    given = await consent(tenant, patient_id, partner_id)
    assert given.errors == [], given.errors
    made = await grant(tenant, partner_id, patient_id, purpose)
    assert made.errors == [], made.errors
    return uuid.UUID(made.data["partnerGrantCreate"]["id"])


async def add_contact(tenant: Tenant, patient_id: uuid.UUID, name: str, phone: str = "13600004444") -> uuid.UUID:
    reply = await tenant.call("front_desk", CONTACT_CREATE, patientId=str(patient_id),
                              input={"name": name, "relationship": "SPOUSE", "phone": phone, "notes": "Call after 6"})
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])


@dataclass
class Partnership:
    """A partner with one client and a token carrying ``scopes``, and two patients of department A
    registered by the nurse (so every class is filled): ``granted`` (consent and grant stand) and
    ``other`` (neither), each with one contact."""

    tenant: Tenant
    partner_id: uuid.UUID
    client: Client
    token: str
    granted: uuid.UUID
    other: uuid.UUID
    grant_id: uuid.UUID
    granted_name: str
    other_name: str
    contact_name: str

    async def call(self, query: str, token: str | None = None, **variables: Any) -> Response:
        return await gql(self.tenant.client, query, variables, token or self.token)

    async def events(self, **filters: Any) -> list[Any]:
        """The audit events of this partnership's client."""
        return await self.tenant.audit_events(actor_id=self.client.id, **filters)


PATIENT_FIELDS = {"phone": "13800001111", "address": "Garden Road 5", "allergies": "Penicillin",
                  "dietPreferences": "Vegetarian", "segments": ["VIP"], "tags": ["wheelchair"],
                  "nationalIdType": "RESIDENT_ID", "nationalId": "11010519491231002X"}


async def make_partnership(tenant: Tenant, scopes: list[str] | None = None, *, rate: int = ROOMY_RATE,
                           documents: list[str] | None = None, purpose: str = "Home care visits") -> Partnership:
    tag = uuid.uuid4().hex[:8]
    partner_id = await make_partner(tenant)
    client = await make_client(tenant, partner_id, scopes, rate=rate, documents=documents)
    granted_name, other_name, contact_name = f"Granted{tag}", f"Other{tag}", f"Contact{tag}"
    fields = {**PATIENT_FIELDS, "phone": "138" + str(next(_counter)).zfill(8)}
    granted = await make_patient(tenant, "nurse", fullName=granted_name, **fields)
    other = await make_patient(tenant, "nurse", fullName=other_name, allergies="Latex")
    await add_contact(tenant, granted, contact_name)
    await add_contact(tenant, other, f"OtherContact{tag}", "13600005555")
    grant_id = await consent_and_grant(tenant, partner_id, granted, purpose)
    token = await token_for(tenant.client, client)
    return Partnership(tenant, partner_id, client, token, granted, other, grant_id, granted_name, other_name,
                       contact_name)
