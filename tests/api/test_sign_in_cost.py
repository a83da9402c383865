"""What signing in costs: a signed-in ``{ __typename }`` sends one SQL statement, whoever asks, and a token
revoked or a budget spent still counts on the next request (the statement is the check, nothing is cached).

A staff member: session, account, roles and departments joined. A patient: session and account. A partner
client: token, client and partner, with the request counted against the client's minute in the same
statement. The institution's keys are loaded once per process (warmed by the first request), so they cost
nothing here. A partner's request is also put on the audit trail (``access.record_request``): that append
is the operation's record, not sign-in, and is left out of the count.
"""

from __future__ import annotations

import httpx

from models import PartnerUsage
from tests.conftest import SqlCounter
from tests.factories import Tenant, gql
from tests.partners import make_client, make_partner, token_for
from tests.patients import open_account

TYPENAME = "{ __typename }"


async def sign_in_statements(client: httpx.AsyncClient, token: str, sql_counter: SqlCounter) -> list[str]:
    """The statements of one signed-in ``{ __typename }`` (after a first one warmed the process's caches),
    without the audit trail's own."""
    await gql(client, TYPENAME, token=token)
    sql_counter.statements.clear()
    reply = await gql(client, TYPENAME, token=token)
    assert reply.body == {"data": {"__typename": "Query"}}, reply.body
    return [s for s in sql_counter.statements if "audit" not in s]  # audit_event, its chain head, audit_append()


async def test_a_staff_member_signs_in_with_one_statement(client: httpx.AsyncClient, tenant: Tenant,
                                                          sql_counter: SqlCounter) -> None:
    [statement] = await sign_in_statements(client, tenant.tokens["nurse"], sql_counter)
    assert '"session"' in statement and "role_assignment" in statement and "department_membership" in statement
    assert len(sql_counter.statements) == 1  # staff requests of no data leave no record


async def test_a_patient_signs_in_with_one_statement(client: httpx.AsyncClient, tenant: Tenant,
                                                     sql_counter: SqlCounter) -> None:
    patient = await open_account(tenant)
    [statement] = await sign_in_statements(client, patient.token, sql_counter)
    assert '"patient_session"' in statement
    assert len(sql_counter.statements) == 1


async def test_a_partner_signs_in_and_spends_its_budget_with_one_statement(client: httpx.AsyncClient,
                                                                          tenant: Tenant,
                                                                          sql_counter: SqlCounter) -> None:
    partner_client = await make_client(tenant, await make_partner(tenant))
    token = await token_for(client, partner_client)
    [statement] = await sign_in_statements(client, token, sql_counter)
    assert "partner_token" in statement and "INSERT INTO partner_usage" in statement
    # the token's issue and the two requests are counted in the client's minute (or two, across a boundary)
    usage = await PartnerUsage.filter(client_id=partner_client.id)
    assert sum(row.requests for row in usage) == 3


async def test_a_logout_takes_effect_on_the_next_request(client: httpx.AsyncClient, tenant: Tenant) -> None:
    patient = await open_account(tenant)
    partner_client = await make_client(tenant, await make_partner(tenant))
    partner_token = await token_for(client, partner_client)
    for token in (patient.token, partner_token):
        assert (await gql(client, TYPENAME, token=token)).body == {"data": {"__typename": "Query"}}
        assert (await gql(client, "mutation { logout }", token=token)).errors == []
        assert (await gql(client, "{ me { id } }", token=token)).codes == ["UNAUTHENTICATED"]
