"""The lists of partners, grants, disclosures and access logs cost the same number of SQL statements
for a page of 2 as for a page of 6: nothing is loaded once per row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import SqlCounter
from tests.factories import Tenant, gql, make_patient

PERIOD = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
          "to": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
EXPIRES = (datetime.now(UTC) + timedelta(days=30)).isoformat()
SCOPES = ["patient.identity:read", "patient.contact:read", "contact:read"]


async def ok(reply: Any) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


async def partner_with_clients(tenant: Tenant, name: str, clients: int = 2) -> tuple[str, str, str]:
    """A partner and its clients; the first client's id and secret."""
    partner = (await ok(await tenant.call("admin", "mutation($n: String!) { partnerCreate(name: $n) { id } }",
                                          n=name)))["partnerCreate"]["id"]
    created = []
    for n in range(clients):
        data = await ok(await tenant.call(
            "admin", "mutation($i: PartnerClientCreateInput!) { partnerClientCreate(input: $i) "
                     "{ client { id } clientSecret } }",
            i={"partnerId": partner, "name": f"client {n}", "scopes": SCOPES}))
        created.append(data["partnerClientCreate"])
    return partner, created[0]["client"]["id"], created[0]["clientSecret"]


async def share(tenant: Tenant, partner: str, patient: uuid.UUID) -> None:
    await ok(await tenant.call("front_desk", "mutation($p: ID!, $q: ID!) { partnerConsentSet(patientId: $p, "
                                             "partnerId: $q, granted: true) { granted } }", p=str(patient), q=partner))
    await ok(await tenant.call("front_desk", "mutation($i: PartnerGrantCreateInput!) { partnerGrantCreate(input: $i) "
                                             "{ id } }", i={"partnerId": partner, "patientId": str(patient),
                                                            "purpose": "Home care", "expiresAt": EXPIRES}))


async def token_for(client: httpx.AsyncClient, client_id: str, secret: str) -> str:
    reply = await client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                    "client_secret": secret})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


async def cost(sql_counter: SqlCounter, call: Any, root: str, first: int) -> int:
    start = len(sql_counter.statements)
    data = await ok(await call(first))
    page = data[root]
    assert len(page["edges"] if isinstance(page, dict) else page) == first
    return len(sql_counter.statements) - start


async def assert_flat(sql_counter: SqlCounter, call: Any, root: str) -> None:
    small = await cost(sql_counter, call, root, 2)
    large = await cost(sql_counter, call, root, 6)
    assert small > 0
    assert large == small


async def test_partners_with_their_clients(tenant: Tenant, sql_counter: SqlCounter) -> None:
    for n in range(6):
        await partner_with_clients(tenant, f"Partner {n}")
    query = "query($n: Int!) { partners(first: $n) { edges { node { name clients { id scopes } } } } }"
    await assert_flat(sql_counter, lambda n: tenant.call("admin", query, n=n), "partners")


async def test_a_partners_page_of_patients_with_contacts_and_consents(
        tenant: Tenant, client: httpx.AsyncClient, sql_counter: SqlCounter) -> None:
    partner, client_id, secret = await partner_with_clients(tenant, "Home Care", clients=1)
    for _ in range(6):
        patient = await make_patient(tenant, phone="+8613800138000")
        await ok(await tenant.call("front_desk", "mutation($p: ID!) { contactCreate(patientId: $p, input: "
                                                 "{name: \"Li Na\", relationship: CHILD}) { id } }", p=str(patient)))
        await share(tenant, partner, patient)
    token = await token_for(client, client_id, secret)
    query = ("query($n: Int!) { patients(first: $n) { edges { node { fullName phone contacts { name } "
             "partnerConsents { granted } } } } }")
    await assert_flat(sql_counter, lambda n: gql(client, query, {"n": n}, token=token), "patients")


async def test_grants_disclosures_and_the_access_logs(
        tenant: Tenant, client: httpx.AsyncClient, sql_counter: SqlCounter) -> None:
    partner, client_id, secret = await partner_with_clients(tenant, "Lab", clients=1)
    patient = await make_patient(tenant)
    for _ in range(6):
        await share(tenant, partner, patient)
    token = await token_for(client, client_id, secret)
    for _ in range(6):
        await ok(await gql(client, "query($id: ID!) { patient(id: $id) { fullName } }", {"id": str(patient)},
                           token=token))

    grants = ("query($p: ID!, $n: Int!) { partnerGrants(patientId: $p, first: $n) "
              "{ edges { node { partner { name } } } } }")
    await assert_flat(sql_counter, lambda n: tenant.call("nurse", grants, p=str(patient), n=n), "partnerGrants")
    disclosures = ("query($f: DateTime!, $t: DateTime!, $n: Int!) { disclosures(from: $f, to: $t, first: $n) "
                   "{ edges { node { partnerName purpose dataCategories } } } }")
    await assert_flat(sql_counter, lambda n: tenant.call("compliance_officer", disclosures, f=PERIOD["from"],
                                                         t=PERIOD["to"], n=n), "disclosures")
    own_log = "query($n: Int!) { partnerAccessLog(first: $n) { edges { node { action patientId } } } }"
    await assert_flat(sql_counter, lambda n: gql(client, own_log, {"n": n}, token=token), "partnerAccessLog")
