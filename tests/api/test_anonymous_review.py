"""What careloop answers without a signed-in principal, probed as a hostile client would (a review; each test failed
before its fix).

Refused links and codes: a survey link, an invitation code or a reset code that does not hold is refused on the
audit trail, anonymously (an unknown one on the system chain). Without a bound, a client sending made-up tokens
wrote one row per attempt, fifteen per request with aliases, forever: a disk-filling attack on the trail nobody may
prune. Each such refusal now counts against the client's address as a sign-in does (``resolvers/sign_in_limit.py``):
over the limit it is RATE_LIMITED, recorded once a minute, and writes nothing else."""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.main import create_app
from audit import writer
from audit.writer import SYSTEM_CHAIN
from core.settings import Settings
from models import AuditEvent
from resolvers.context import Services
from resolvers.sign_in_limit import LINK_READS_PER_MINUTE
from tests.api.test_partner import READ, fresh_minute
from tests.api.test_sign_in_address_limit import LIMIT, new_address
from tests.factories import Response, Tenant, gql
from tests.partners import make_client, make_partnership, request_token, token_for
from tests.surveys import invited, questionnaire

pytestmark = pytest.mark.asyncio(loop_scope="session")

NEW_PASSWORD = "a new password, long enough"
REFUSED_LINKS = {  # an anonymous operation whose refusal is written on the trail, its variables, and its record
    "surveyByLink": ("query($t: String!) { surveyByLink(token: $t) { expiresAt } }",
                     lambda token: {"t": "clq_" + token}, ("read", "survey_invitation", "invalid")),
    "surveyAnswerByLink": ("mutation($t: String!) { surveyAnswerByLink(token: $t, answers: []) { __typename } }",
                           lambda token: {"t": "clq_" + token}, ("create", "survey_invitation", "invalid")),
    "patientAccountActivate": (
        "mutation($c: String!, $e: String!, $p: String!) { patientAccountActivate(code: $c, email: $e, password: $p) "
        "{ token } }", lambda token: {"c": "cli_" + token, "e": "someone@example.org", "p": NEW_PASSWORD},
        ("create", "patient_account", "bad_invitation")),
    "passwordResetComplete": (
        "mutation($c: String!, $p: String!) { passwordResetComplete(code: $c, newPassword: $p) }",
        lambda token: {"c": "clr_" + token, "p": NEW_PASSWORD}, ("update", "password_reset", "bad_reset_code")),
}


@pytest_asyncio.fixture
async def proxy(database: str, settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app, and its services, with a limit of ``LIMIT`` sign-ins per address and minute, reached through a
    trusted proxy (the client's address is the X-Forwarded-For it sends)."""
    limits = dataclasses.replace(settings.limits, login_per_address_per_minute=LIMIT)
    limited = dataclasses.replace(settings, limits=limits, trusted_proxies=("10.0.0.0/8",))
    own = copy.copy(services)
    own.settings = limited
    transport = httpx.ASGITransport(app=create_app(limited, own, manage_database=False), client=("10.1.2.3", 41000))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as http:
        yield http


def made_up() -> str:
    """The random part of a token of the right shape that nobody was ever given."""
    return secrets.token_urlsafe(32)


async def send(client: httpx.AsyncClient, address: str, query: str, variables: dict[str, Any]) -> Response:
    return await gql(client, query, variables, headers={"x-forwarded-for": address})


async def recorded_from(address: str) -> list[tuple[str, str, str]]:
    await writer.seal(SYSTEM_CHAIN)
    return [(e.action, e.resource_type, e.reason) for e in await AuditEvent.filter(
        institution_id=SYSTEM_CHAIN, client_address=address).order_by("seq")]


@pytest.mark.parametrize("operation", REFUSED_LINKS)
async def test_made_up_links_and_codes_write_the_trail_only_up_to_the_address_limit(
        proxy: httpx.AsyncClient, operation: str) -> None:
    await fresh_minute()
    address = new_address()
    query, variables, record = REFUSED_LINKS[operation]
    within = [await send(proxy, address, query, variables(made_up())) for _ in range(LIMIT)]
    assert [reply.codes for reply in within] == [["BAD_USER_INPUT"]] * LIMIT

    over = [await send(proxy, address, query, variables(made_up())) for _ in range(5)]

    assert [reply.codes for reply in over] == [["RATE_LIMITED"]] * 5
    assert all(1 <= reply.errors[0]["extensions"]["retryAfter"] <= 60 for reply in over)
    action, resource_type, _ = record
    assert await recorded_from(address) == [record] * LIMIT + [(action, resource_type, "rate_limited")]


async def test_aliases_count_each_refusal(proxy: httpx.AsyncClient) -> None:
    """Fifteen aliased links in one request were fifteen rows."""
    await fresh_minute()
    address = new_address()
    query = "query { " + " ".join(f'l{i}: surveyByLink(token: "clq_{made_up()}") {{ expiresAt }}'
                                  for i in range(15)) + " }"

    reply = await send(proxy, address, query, {})

    assert sorted(set(reply.codes)) == ["BAD_USER_INPUT", "RATE_LIMITED"]
    assert len(await recorded_from(address)) == LIMIT + 1


async def test_another_address_still_has_its_refusals_answered_as_such(proxy: httpx.AsyncClient) -> None:
    await fresh_minute()
    flooding = new_address()
    query, variables, _ = REFUSED_LINKS["surveyByLink"]
    for _ in range(LIMIT + 1):
        await send(proxy, flooding, query, variables(made_up()))

    reply = await send(proxy, new_address(), query, variables(made_up()))

    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["reason"] == "invalid"



# -- a partner's budget ------------------------------------------------------------------------------------------
#
# A client id is no secret (OAuth sends it in the clear, Basic or form; it is in the partner's configuration and
# logs). ``/oauth/token`` spent the client's request budget before it checked the secret, and the budget is the one
# the partner's API requests spend: anyone knowing the id could, without its secret, keep the partner locked out of
# the API (RATE_LIMITED) and out of new tokens (slow_down). A wrong secret is bounded by its address's limit instead.


async def test_wrong_secrets_do_not_spend_the_partners_budget(client: httpx.AsyncClient, tenant: Tenant) -> None:
    p = await make_partnership(tenant)
    await fresh_minute()
    limited = await make_client(tenant, p.partner_id, rate=3)
    token = await token_for(client, limited)  # the partner's own request: one of its three this minute
    wrong = "cls_" + made_up()

    refused = [await request_token(client, limited.id, wrong) for _ in range(5)]  # someone else, without the secret

    assert [(r.status_code, r.json()["error"]) for r in refused] == [(401, "invalid_client")] * 5
    assert (await gql(client, READ, {"id": str(p.granted)}, token=token)).errors == []  # the partner still works
    assert (await request_token(client, limited.id, limited.secret)).status_code == 200
    assert [e.reason for e in await tenant.audit_events(actor_id=limited.id, outcome="denied")] == [
        "bad_credentials"] * 5


# -- a link that holds -------------------------------------------------------------------------------------------


async def test_reading_a_link_again_and_again_writes_the_trail_only_up_to_the_links_limit(
        proxy: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    """Each read of a survey link is on its institution's trail; the link opens again until it expires (weeks),
    so whoever holds one (it travels by SMS and e-mail, and is forwarded) wrote a row per request without end. Its
    reads are bounded per link, from whatever address."""
    q = await questionnaire(tenant)
    _, invitation, token = await invited(tenant, services, q)
    await fresh_minute()
    address = new_address()
    query = REFUSED_LINKS["surveyByLink"][0]
    opened = [await send(proxy, address, query, {"t": token}) for _ in range(LINK_READS_PER_MINUTE)]
    assert [reply.errors for reply in opened] == [[]] * LINK_READS_PER_MINUTE

    elsewhere = [new_address() for _ in range(5)]
    over = [await send(proxy, other, query, {"t": token}) for other in elsewhere]

    assert [reply.codes for reply in over] == [["RATE_LIMITED"]] * 5
    assert len(await tenant.audit_events(resource_id=invitation.id, action="read")) == LINK_READS_PER_MINUTE
    refusals = [record for other in (address, *elsewhere) for record in await recorded_from(other)]
    assert refusals == [("read", "survey_invitation", "rate_limited")]  # once a minute


async def test_patients_behind_one_address_open_their_own_links(
        proxy: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    """The allowed twin: a campaign's patients behind one carrier's NAT open their own links in the same minute,
    more of them than the address's sign-in limit, and a sign-in from that address still goes through."""
    q = await questionnaire(tenant)
    tokens = [(await invited(tenant, services, q))[2] for _ in range(LIMIT + 2)]
    await fresh_minute()
    address = new_address()
    query = REFUSED_LINKS["surveyByLink"][0]
    opened = [await send(proxy, address, query, {"t": token}) for token in tokens for _ in range(2)]
    assert [reply.errors for reply in opened] == [[]] * len(opened)
    assert await recorded_from(address) == []


# -- metrics -----------------------------------------------------------------------------------------------------


def letters(number: int) -> str:
    """A name part without digits (a run of digits is never a label)."""
    return "".join(chr(65 + number // 26 ** power % 26) for power in range(3))


async def test_names_sent_without_a_sign_in_cannot_take_the_operation_labels(
        client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests are counted by operation name, the first ``MAX_OPERATION_NAMES`` names a process sees and ``other``
    beyond: an anonymous client sending that many made-up names (a hundred ``{ __typename }`` requests) took every
    label, and the portals' operations were all counted as ``other`` until the next restart."""
    for name in ("_operations", "_signed_out_operations"):
        monkeypatch.setattr(metrics, name, set(), raising=False)
    monkeypatch.setattr(metrics, "_by_operation", {})
    for number in range(metrics.MAX_OPERATION_NAMES):
        await gql(client, f"query Junk{letters(number)} {{ __typename }}")
    before = metric_value("PatientsPage")

    reply = await tenant.call("nurse", "query PatientsPage { patients(first: 1) { nodes { id } } }")

    assert reply.errors == []
    assert metric_value("PatientsPage") == before + 1


def metric_value(operation: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(metrics.exposition().decode())
               for sample in family.samples
               if sample.name == "careloop_graphql_requests_total" and sample.labels.get("operation") == operation)
