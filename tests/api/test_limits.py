"""Request limits and hardening: query bombs, body size, transport rules, production mode,
error codes, masked errors, security headers and health endpoints."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tortoise import connections

from app.main import create_app
from core.settings import Settings
from models import Patient
from resolvers.context import Services
from schema import limits
from tests.factories import Response, Tenant, gql, make_patient

DEPTH_ERROR = "'anonymous' exceeds maximum operation depth of 10"
TOKEN_ERROR = "Syntax Error: Document contains more than 2000 tokens. Parsing aborted."
BAD_INPUT = {"code": "BAD_USER_INPUT"}
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                    "x-frame-options": "DENY", "cache-control": "no-store"}
CREATE = ("mutation($input: PatientCreateInput!) { "
          "patientCreate(input: $input, registerAnyway: true) { patient { id } } }")


def messages(reply: Response) -> list[str]:
    return [error["message"] for error in reply.errors]


def nested(depth: int) -> str:
    """A query whose top-level field has `depth` nested selection sets."""
    return "{ me " + "{ a " * (depth - 1) + "{ id }" + " }" * (depth - 1) + " }"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


def long_query(tokens: int) -> str:
    """A query of `tokens` + 5 tokens."""
    return "{ me { " + "id " * tokens + "} }"


def long_mutation(items: int) -> str:
    """A valid mutation of `items` + 23 tokens: a list literal of `items` tags."""
    tags = " ".join(f'"t{i}"' for i in range(items))
    return 'mutation { patientCreate(input: {fullName: "x", tags: [' + tags + ']}) { patient { id } } }'


# -- query bombs -------------------------------------------------------------------------


async def test_sql_counter_sees_an_executed_request(client: httpx.AsyncClient, tenant: Tenant,
                                                    sql_counter: Any) -> None:
    """The control for the bomb tests below, which expect no SQL at all."""
    await gql(client, "{ me { id } }", token=tenant.tokens["nurse"])
    assert sql_counter.statements != []


async def test_depth_bomb_is_refused_before_execution(client: httpx.AsyncClient, sql_counter: Any) -> None:
    reply = await gql(client, nested(11))
    assert reply.data is None
    assert {"message": DEPTH_ERROR, "extensions": BAD_INPUT} in [
        {k: v for k, v in e.items() if k != "locations"} for e in reply.errors]
    assert sql_counter.statements == []


async def test_depth_of_ten_is_not_refused_for_depth(client: httpx.AsyncClient) -> None:
    reply = await gql(client, nested(10))
    assert DEPTH_ERROR not in messages(reply)
    assert messages(reply) == ["Cannot query field 'a' on type 'Me'."]


async def test_depth_bomb_through_fragments_is_refused(client: httpx.AsyncClient) -> None:
    fragments = " ".join(f"fragment F{i} on Me {{ a {{ ...F{i + 1} }} }}" for i in range(12))
    reply = await gql(client, "{ me { ...F0 } } " + fragments + " fragment F12 on Me { id }")
    assert reply.data is None
    assert DEPTH_ERROR in messages(reply)


async def test_alias_bomb_is_refused_before_execution(client: httpx.AsyncClient, sql_counter: Any) -> None:
    reply = await gql(client, aliased(16))
    assert reply.data is None
    assert [(e["message"], e["extensions"]) for e in reply.errors] == [("16 aliases found. Allowed: 15", BAD_INPUT)]
    assert sql_counter.statements == []


async def test_nested_aliases_count_toward_the_limit(client: httpx.AsyncClient) -> None:
    reply = await gql(client, "{ me { " + " ".join(f"a{i}: id" for i in range(16)) + " } }")
    assert messages(reply) == ["16 aliases found. Allowed: 15"]


async def test_fifteen_aliases_are_allowed(client: httpx.AsyncClient) -> None:
    reply = await gql(client, aliased(15))
    assert reply.body == {"data": {f"a{i}": None for i in range(15)}}


async def test_token_bomb_is_refused_before_execution(client: httpx.AsyncClient, sql_counter: Any) -> None:
    reply = await gql(client, long_query(2100))
    assert reply.data is None
    assert messages(reply) == [TOKEN_ERROR]
    assert sql_counter.statements == []


async def test_document_of_2000_tokens_runs(client: httpx.AsyncClient) -> None:
    reply = await gql(client, long_mutation(2000 - 23))
    assert messages(reply) == ["Authentication required."]  # parsed, validated, executed


async def test_document_of_2001_tokens_is_refused(client: httpx.AsyncClient) -> None:
    reply = await gql(client, long_mutation(2001 - 23))
    assert messages(reply) == [TOKEN_ERROR]


async def test_repeated_field_bomb_is_aborted_in_validation(client: httpx.AsyncClient, sql_counter: Any) -> None:
    reply = await gql(client, "{ me { " + "id " * 1900 + "} }")
    assert reply.data is None
    assert messages(reply) == ["'anonymous' selects 1901 fields with its fragments expanded. Allowed: 500",
                               "Validation aborted."]
    assert set(reply.codes) == {"BAD_USER_INPUT"}
    assert sql_counter.statements == []


def same_field(times: int) -> str:
    """One field with an argument, asked ``times`` times under one response name: within every limit of the
    document (one level, no alias, ``times`` fields), and graphql-core compares each pair of them."""
    return "{" + f' patient(id: "{uuid.UUID(int=7)}") {{ id }}' * times + " }"


async def test_fields_asked_again_and_again_are_refused_before_their_pairs_are_compared(
        client: httpx.AsyncClient, sql_counter: Any) -> None:
    """Found in review: 220 copies of one field (12 KiB; 48 KiB with a longer argument) passed every limit, and
    graphql-core's check that they can be merged compared all 24,090 pairs: about half a second of a worker's
    event loop per anonymous request, nothing served meanwhile. The comparison now has a budget of its own (144,540
steps asked here, 50,000 allowed)."""
    reply = await gql(client, same_field(220))

    assert reply.data is None
    assert messages(reply) == ["Validation aborted."]
    assert set(reply.codes) == {"BAD_USER_INPUT"}
    assert sql_counter.statements == []


async def test_a_field_asked_a_few_times_still_runs(client: httpx.AsyncClient) -> None:
    """The twin: twenty copies (190 pairs) are within the budget, merged and run once, as GraphQL has it."""
    reply = await gql(client, same_field(20))

    assert messages(reply) == ["Authentication required."]
    assert reply.codes == ["UNAUTHENTICATED"]


async def test_forty_fragments_side_by_side_still_run(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """What a client's colocated fragments look like (Apollo Client adds __typename to each): 40 of them spread on one
    object, each asking __typename and id, compare about 6,600 pairs' steps, within the budget."""
    fragments = " ".join(f"fragment F{i} on Me {{ __typename id }}" for i in range(40))
    document = "query { me { __typename id " + " ".join(f"...F{i}" for i in range(40)) + " } } " + fragments

    reply = await gql(client, document, token=tenant.tokens["nurse"])

    assert not reply.errors
    assert reply.data == {"me": {"__typename": "Me", "id": str(tenant.staff_ids["nurse"])}}


# -- the body and the transport ----------------------------------------------------------


async def writes_of(tenant: Tenant) -> tuple[int, int]:
    return await Patient.filter(institution_id=tenant.id).count(), await tenant.audit_count()


def refused(response: httpx.Response) -> tuple[int, str, str]:
    """A request refused before GraphQL ran it: its status, media type and the code of its one JSON error
    (GraphQL-over-HTTP: every answer is JSON, without a data entry)."""
    body = response.json()
    assert "data" not in body and len(body["errors"]) == 1, body
    return response.status_code, response.headers["content-type"], body["errors"][0]["extensions"]["code"]


def big_create_body(size: int) -> dict[str, Any]:
    return {"query": CREATE, "variables": {"input": {"fullName": "Big", "occupation": "x" * size}}}


async def test_body_over_64_kib_is_refused_and_nothing_written(client: httpx.AsyncClient, tenant: Tenant) -> None:
    before = await writes_of(tenant)
    response = await client.post("/graphql", json=big_create_body(70 * 1024),
                                 headers={"authorization": f"Bearer {tenant.tokens['front_desk']}"})
    assert refused(response) == (413, "application/json", "PAYLOAD_TOO_LARGE")
    assert await writes_of(tenant) == before


async def test_streamed_body_over_64_kib_is_refused_and_nothing_written(client: httpx.AsyncClient,
                                                                        tenant: Tenant) -> None:
    """Without Content-Length the limit is counted while reading."""
    before = await writes_of(tenant)
    body = httpx.Request("POST", "/", json=big_create_body(70 * 1024)).read()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    response = await client.post("/graphql", content=chunks(), headers={
        "content-type": "application/json", "authorization": f"Bearer {tenant.tokens['front_desk']}"})
    assert refused(response) == (413, "application/json", "PAYLOAD_TOO_LARGE")
    assert await writes_of(tenant) == before


async def test_body_under_the_limit_is_read(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/graphql", json=big_create_body(60 * 1024),
                                 headers={"authorization": f"Bearer {tenant.tokens['front_desk']}"})
    assert response.status_code == 200
    extensions = response.json()["errors"][0]["extensions"]
    assert (extensions["code"], extensions["field"], extensions["reason"]) == ("BAD_USER_INPUT", "input.occupation",
                                                                               "too_long")


async def test_body_limit_answer_has_the_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=big_create_body(70 * 1024))
    assert response.status_code == 413
    assert_security_headers(response)


@pytest.mark.parametrize("query", ["{ me { id } }", "mutation { logout }"])
async def test_get_with_a_query_is_refused(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get("/graphql", params={"query": query})
    assert refused(response) == (405, "application/json", "METHOD_NOT_ALLOWED")


async def test_batched_json_array_is_refused_and_nothing_written(client: httpx.AsyncClient, tenant: Tenant) -> None:
    before = await writes_of(tenant)
    operation = {"query": CREATE, "variables": {"input": {"fullName": "Batched"}}}
    response = await client.post("/graphql", json=[operation, operation],
                                 headers={"authorization": f"Bearer {tenant.tokens['front_desk']}"})
    assert refused(response) == (400, "application/json", "BAD_REQUEST")
    assert await writes_of(tenant) == before


# -- development and production ----------------------------------------------------------


def production(settings: Settings, services: Services) -> tuple[Settings, Services]:
    prod = dataclasses.replace(settings, environment="production")
    return prod, dataclasses.replace(services, settings=prod)


@pytest.fixture
async def prod_client(client: httpx.AsyncClient, settings: Settings, services: Services
                      ) -> AsyncIterator[httpx.AsyncClient]:
    """The app built with production settings, on the test database (which `client` opened)."""
    app = create_app(*production(settings, services), manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        yield http


INTROSPECTION = {
    "__schema": "{ __schema { queryType { name } } }",
    "__type": '{ __type(name: "Patient") { name } }',
}


@pytest.mark.parametrize("field", INTROSPECTION)
async def test_introspection_works_in_development(client: httpx.AsyncClient, field: str) -> None:
    reply = await gql(client, INTROSPECTION[field])
    assert reply.errors == []
    assert reply.data == {"__schema": {"queryType": {"name": "Query"}}} if field == "__schema" else {
        "__type": {"name": "Patient"}}


@pytest.mark.parametrize("field", INTROSPECTION)
async def test_introspection_is_refused_in_production(prod_client: httpx.AsyncClient, field: str) -> None:
    reply = await gql(prod_client, INTROSPECTION[field])
    assert reply.data is None
    first = reply.errors[0]
    assert first["message"] == f"GraphQL introspection has been disabled, but the requested query contained the " \
                               f"field '{field}'."
    assert first["extensions"] == BAD_INPUT


async def test_typename_still_answers_in_production(prod_client: httpx.AsyncClient) -> None:
    assert (await gql(prod_client, "{ __typename }")).body == {"data": {"__typename": "Query"}}


async def test_field_suggestions_only_in_development(client: httpx.AsyncClient,
                                                     prod_client: httpx.AsyncClient) -> None:
    query = "{ patiens { id } }"
    assert messages(await gql(client, query)) == [
        "Cannot query field 'patiens' on type 'Query'. Did you mean 'patient', 'patients', or 'partners'?"]
    assert messages(await gql(prod_client, query)) == ["Cannot query field 'patiens' on type 'Query'."]


TYPOS: dict[str, tuple[str, dict[str, Any]]] = {
    "field": ("{ patiens { id } }", {}),
    "argument": ("{ patients(frist: 1) { nodes { id } } }", {}),
    "enum value": ("{ patients(filter: {status: ACTIV}) { nodes { id } } }", {}),
    "type": ("{ patients { nodes { ... on Patiet { id } } } }", {}),
    "variable type": ("query($f: PatientFiltr) { patients(filter: $f) { nodes { id } } }", {}),
    "enum value in a variable": ("query($f: PatientFilter) { patients(filter: $f) { nodes { id } } }",
                                 {"f": {"status": "ACTIV"}}),
    "input field in a variable": ("query($f: PatientFilter) { patients(filter: $f) { nodes { id } } }",
                                  {"f": {"stauts": "ACTIVE"}}),
    "input field": ("{ patients(filter: {stauts: ACTIVE}) { nodes { id } } }", {}),
}


@pytest.mark.parametrize("typo", list(TYPOS))
async def test_no_suggestions_of_any_kind_in_production(client: httpx.AsyncClient, prod_client: httpx.AsyncClient,
                                                        tenant: Tenant, typo: str) -> None:
    query, variables = TYPOS[typo]
    development = await gql(client, query, variables, token=tenant.tokens["front_desk"])
    # the control: there is a hint (for a wrong enum value, the list of values)
    assert [m for m in messages(development) if "Did you mean" in m or "must be one of" in m] != []
    reply = await gql(prod_client, query, variables, token=tenant.tokens["front_desk"])
    assert reply.codes == ["BAD_USER_INPUT"]
    assert [m for m in messages(reply) if "Did you mean" in m or "must be one of" in m] == []


async def test_graphiql_is_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text


async def test_graphiql_is_not_served_in_production(prod_client: httpx.AsyncClient) -> None:
    response = await prod_client.get("/graphql", headers={"accept": "text/html"})
    assert refused(response) == (405, "application/json", "METHOD_NOT_ALLOWED")  # no GraphiQL, and GET is refused


async def test_production_settings_alone_turn_graphiql_off(client: httpx.AsyncClient, settings: Settings,
                                                           services: Services) -> None:
    app = create_app(dataclasses.replace(settings, environment="production"), services, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        assert (await gql(http, INTROSPECTION["__schema"])).data is None
        assert (await http.get("/graphql", headers={"accept": "text/html"})).status_code == 405


# -- errors ------------------------------------------------------------------------------

ERROR_CASES: dict[str, tuple[str | None, str, dict[str, Any], list[str]]] = {
    # name: (role, query, variables, expected codes)
    "unknown field": (None, "{ nope }", {}, ["BAD_USER_INPUT"]),
    "missing variable": (None, "query($id: ID!) { patient(id: $id) { id } }", {}, ["BAD_USER_INPUT"]),
    "wrong variable type": (None, "query($n: Int!) { patients(first: $n) { nodes { id } } }", {"n": "x"},
                            ["BAD_USER_INPUT"]),
    "two anonymous operations": (None, "{ me { id } } { me { id } }", {}, ["BAD_USER_INPUT"] * 2),
    "depth": (None, nested(11), {}, ["BAD_USER_INPUT", "BAD_USER_INPUT"]),
    "aliases": (None, aliased(16), {}, ["BAD_USER_INPUT"]),
    "unauthenticated": (None, "{ patients { nodes { id } } }", {}, ["UNAUTHENTICATED"]),
    "bad id": ("front_desk", 'query { patient(id: "not-a-uuid") { id } }', {}, ["BAD_USER_INPUT"]),
    "not found": ("front_desk", 'query { patient(id: "00000000-0000-7000-8000-000000000000") { id } }', {},
                  ["NOT_FOUND"]),
    "forbidden": ("compliance_officer", "{ departments { id } }", {}, ["FORBIDDEN"]),
    "page too large": ("front_desk", "{ patients(first: 1000) { nodes { id } } }", {}, ["BAD_USER_INPUT"]),
    "bad cursor": ("front_desk", '{ patients(after: "!!") { nodes { id } } }', {}, ["BAD_USER_INPUT"]),
    "syntax": (None, "{ me { ", {}, ["BAD_USER_INPUT"]),
    "token limit": (None, long_query(2100), {}, ["BAD_USER_INPUT"]),
}


@pytest.mark.parametrize("case", ERROR_CASES)
async def test_every_error_has_a_code(tenant: Tenant, case: str) -> None:
    role, query, variables, codes = ERROR_CASES[case]
    reply = await tenant.call(role, query, **variables)
    assert reply.errors, reply.body
    assert reply.codes == codes


async def corrupt_diagnoses(tenant: Tenant) -> str:
    """A patient whose diagnoses hold a well-formed envelope that does not open."""
    patient_id = await make_patient(tenant, "nurse", diagnoses="gingivitis")
    garbage = b"\x01\x00\x00\x00\x01" + b"\x00" * 40
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("UPDATE patient SET diagnoses = $1 WHERE id = $2", [garbage, patient_id])
    else:
        await connection.execute_query("UPDATE patient SET diagnoses = ? WHERE id = ?", [garbage, str(patient_id)])
    return str(patient_id)


async def test_unexpected_error_is_masked_with_the_request_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    patient_id = await corrupt_diagnoses(tenant)
    response = await client.post("/graphql", json={
        "query": "query($id: ID!) { patient(id: $id) { id diagnoses } }", "variables": {"id": patient_id}},
        headers={"authorization": f"Bearer {tenant.tokens['doctor']}"})
    body = response.json()
    request_id = response.headers["x-request-id"]
    assert REQUEST_ID.fullmatch(request_id)
    assert body["data"] == {"patient": {"id": patient_id, "diagnoses": None}}
    assert [{k: v for k, v in e.items() if k != "locations"} for e in body["errors"]] == [{
        "message": "Unexpected error.", "path": ["patient", "diagnoses"],
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]
    assert "DecryptionError" not in response.text and "ciphertext" not in response.text


# -- headers and health ------------------------------------------------------------------


def assert_security_headers(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert REQUEST_ID.fullmatch(response.headers.get("x-request-id", ""))


REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "graphql": ("POST", "/graphql", {"json": {"query": "{ me { id } }"}}),
    "graphql error": ("POST", "/graphql", {"json": {"query": "{ nope }"}}),
    "bad json": ("POST", "/graphql", {"content": b"{", "headers": {"content-type": "application/json"}}),
    "batch": ("POST", "/graphql", {"json": [{"query": "{ me { id } }"}]}),
    "get query": ("GET", "/graphql", {"params": {"query": "{ me { id } }"}}),
    "graphiql": ("GET", "/graphql", {"headers": {"accept": "text/html"}}),
    "healthz": ("GET", "/healthz", {}),
    "readyz": ("GET", "/readyz", {}),
    "unknown path": ("GET", "/nope", {}),
    "wrong method": ("DELETE", "/graphql", {}),
}


@pytest.mark.parametrize("name", REQUESTS)
async def test_security_headers_on_every_answer(client: httpx.AsyncClient, name: str) -> None:
    method, path, options = REQUESTS[name]
    assert_security_headers(await client.request(method, path, **options))


async def test_request_ids_differ_between_requests(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_reports_its_checks(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "keys": True, "migrations": True}}


async def test_repeated_queries_are_validated_once(tenant: Tenant) -> None:
    """The limit rules are built once per schema, so the validation cache can hit (it keys on them)."""
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache = _get_validate_cache(128)
    query = "{ departments { id name } }"
    await tenant.call("front_desk", query)
    hits = cache.cache_info().hits
    for _ in range(3):
        assert not (await tenant.call("front_desk", query)).errors
    assert cache.cache_info().hits == hits + 3


def deep_introspection(innermost: str) -> str:
    """A document deeper than the limit under ``__schema``, ``innermost`` at the bottom of a fragment."""
    return ("query { __schema { types { ...T } } } fragment T on __Type { name fields { type { " + "ofType { " * 8 +
            innermost + " }" * 11)


CYCLIC_INTROSPECTION = deep_introspection("...T")


async def test_a_fragment_cycle_under_introspection_is_refused_as_a_cycle(client: httpx.AsyncClient) -> None:
    """Found in review: shaping the document to compare it with the standard introspection query recursed to
    Python's limit, and the answer was a bare "Validation aborted."."""
    reply = await gql(client, CYCLIC_INTROSPECTION)

    assert reply.data is None and set(reply.codes) == {"BAD_USER_INPUT"}
    assert "Cannot spread fragment 'T' within itself." in messages(reply)


async def test_production_spends_nothing_on_shaping_introspection(prod_client: httpx.AsyncClient) -> None:
    """Production refuses introspection, so a deep introspection document is not compared with the standard one,
    whose shapes cost a worker about 1.8 s to build the first time (found in review)."""
    limits._standard_introspection.cache_clear()

    reply = await gql(prod_client, deep_introspection("name"))

    assert reply.data is None and set(reply.codes) == {"BAD_USER_INPUT"}
    assert any("exceeds maximum operation depth" in m for m in messages(reply))
    assert limits._standard_introspection.cache_info().currsize == 0
