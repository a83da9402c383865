"""/graphql as the GraphQL-over-HTTP specification has it (https://graphql.github.io/graphql-over-http/draft/).

- Every answer is JSON: a refused request is ``{"errors": [...]}`` with ``extensions.code`` (and ``field`` for a
  bad parameter), never text/plain.
- Content negotiation: ``application/graphql-response+json`` when Accept names it, ``application/json``
  otherwise (no Accept, ``*/*``); 406 when Accept allows neither.
- Under graphql-response+json a request that failed before execution (parse, validation, variable coercion,
  operation selection) is a 400 without a ``data`` entry; under application/json it is a 200 (the legacy rule),
  also without ``data``. A result with data is a 200 in both.
- A document with several operations and no ``operationName`` is an error and nothing of it runs.
- POST with application/json only: GET (but GraphiQL's page in development) and other methods are 405, other
  content types 415, a body over the limit 413.
- The npm ``graphql-http`` package's server audits pass against the app served by uvicorn: every MUST, and every
  SHOULD; the MAY audits that send queries by GET fail by design (GET is refused).

graphql-http is installed (pinned) by ``npm install`` into pytest's cache directory, once. Without node and npm
the audit test is skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import pytest_asyncio

from app.main import create_app
from core.settings import Settings
from models import Patient
from resolvers.context import Services
from tests.app.conftest import serve
from tests.factories import CREATE_PATIENT, Tenant
from tests.partners import make_partnership, sha256

GRAPHQL_HTTP = "graphql-http@1.23.1"
GRAPHQL = "graphql@16.15.0"
AUDIT_SCRIPT = Path(__file__).resolve().parents[1] / "node" / "graphql-http-audits.mjs"
# The MAY audits that send their query by GET: careloop refuses GET (405) so that variables never land in URLs.
REFUSED_BY_DESIGN = {"5A70", "D6D5", "6A70"}

NEW = "application/graphql-response+json"
JSON = "application/json"
ME = "query Me { me { id } }"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: in CI that is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def audit_script(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/node/graphql-http-audits.mjs`` next to its node_modules (graphql-http and graphql, pinned)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to run the graphql-http server audits (tests/node)")
    name = f"{GRAPHQL_HTTP}-{GRAPHQL}".replace("@", "-")
    cache = getattr(pytestconfig, "cache", None)
    target = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    if not (target / "node_modules" / "graphql-http" / "package.json").exists():
        (target / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
        try:
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--save-exact", "--prefix", str(target),
                                   GRAPHQL_HTTP, GRAPHQL], capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            _unavailable(f"`npm install {GRAPHQL_HTTP}` did not finish within 300 s")
        if done.returncode != 0:
            _unavailable(f"`npm install {GRAPHQL_HTTP}` failed: {done.stderr.strip()[-1500:]}")
    shutil.copyfile(AUDIT_SCRIPT, target / AUDIT_SCRIPT.name)
    return target / AUDIT_SCRIPT.name


@pytest_asyncio.fixture
async def http_url(database: str, settings: Settings, services: Services) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port (the audits speak real HTTP)."""
    async with serve(create_app(settings, services, manage_database=False)) as ws_url:
        yield ws_url.replace("ws://", "http://", 1)


async def test_the_graphql_http_server_audits_pass(audit_script: Path, http_url: str) -> None:
    process = await asyncio.create_subprocess_exec("node", str(audit_script), http_url, cwd=audit_script.parent,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")
    results = json.loads(out)
    assert len(results) > 50, results  # the whole list ran
    failed = {r["id"]: r for r in results if r["status"] != "ok"}
    assert [r for r in failed.values() if not r["name"].startswith("MAY")] == []
    assert set(failed) == REFUSED_BY_DESIGN, failed
    for refused in failed.values():  # refused as JSON, with the reason
        assert refused["response"]["status"] == 405
        assert refused["response"]["contentType"] in (JSON, NEW)
        assert json.loads(refused["response"]["body"])["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


# -- in-process checks of each rule ------------------------------------------------------------------


async def post(client: httpx.AsyncClient, body: Any, accept: str | None = JSON, token: str | None = None,
               content_type: str | None = JSON) -> httpx.Response:
    headers = {"accept": accept or "", "content-type": content_type or ""}
    if token:
        headers["authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = client.build_request("POST", "/graphql", content=content, headers=headers)
    for name, value in (("accept", accept), ("content-type", content_type)):
        if value is None:
            del request.headers[name]
    return await client.send(request)


def refusal(response: httpx.Response, status: int, code: str, media: str = JSON) -> dict[str, Any]:
    """The one error of a refused request, after checking its status, media type and shape."""
    assert (response.status_code, response.headers["content-type"]) == (status, media), response.text
    body = response.json()
    assert "data" not in body, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    assert response.headers["x-request-id"]  # the security-header middleware still wraps every answer
    return dict(body["errors"][0])


@pytest.mark.parametrize(("accept", "media"), [
    (None, JSON),
    ("", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    (JSON, JSON),
    (NEW, NEW),
    (f"{NEW}, {JSON}", NEW),
    (f"{JSON}, {NEW}", NEW),  # both named with the same weight: the specification's own type
    (f"{NEW};q=0.5, {JSON}", JSON),
    (f"{JSON};q=0.9, {NEW}", NEW),
    (f"{NEW}, */*;q=0.1", NEW),
    (f"text/html, {JSON};q=0.8", JSON),
    (f"{JSON}; charset=utf-8", JSON),
    ("*/*;q=0.5, application/json;q=0", NEW),
])
async def test_the_answer_is_in_the_media_type_the_client_accepts(client: httpx.AsyncClient, accept: str | None,
                                                                  media: str) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=accept)
    assert (response.status_code, response.headers["content-type"]) == (200, media)
    assert response.json() == {"data": {"__typename": "Query"}}
    assert "accept" in response.headers["vary"].lower()


@pytest.mark.parametrize("accept", ["text/html", "application/xml, text/plain;q=0.5",
                                    f"{JSON};q=0, {NEW};q=0", "image/*"])
async def test_an_accept_header_that_allows_neither_json_type_is_406(client: httpx.AsyncClient, accept: str) -> None:
    error = refusal(await post(client, {"query": "{ __typename }"}, accept=accept), 406, "NOT_ACCEPTABLE")
    assert NEW in error["message"]


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/graphql",
                                          "application/json; charset=latin-1"])
async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient, content_type: str | None) -> None:
    response = await post(client, {"query": "{ __typename }"}, content_type=content_type, accept=NEW)
    refusal(response, 415, "UNSUPPORTED_MEDIA_TYPE", NEW)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8",
                                          "Application/JSON"])
async def test_json_in_utf8_is_accepted_however_it_is_spelled(client: httpx.AsyncClient, content_type: str) -> None:
    response = await post(client, {"query": '{ __type(name: "Run🏃") { name } }'}, content_type=content_type)
    assert (response.status_code, response.json()) == (200, {"data": {"__type": None}})


MALFORMED: dict[str, tuple[bytes | Any, str | None]] = {
    # name: (body, the parameter named in extensions.field)
    "empty body": (b"", None),
    "unparsable JSON": (b'{ "not a JSON', None),
    "not UTF-8": (b'\xff\xfe{"query": "{ me { id } }"}', None),
    "a number": (0, None),
    "a string": ("{ __typename }", None),
    "null": (None, None),
    "a batch": ([{"query": "{ __typename }"}], None),
    "no query": ({"qeury": "{ __typename }"}, "query"),
    "null query": ({"query": None}, "query"),
    "empty query": ({"query": ""}, "query"),
    "query an object": ({"query": {"obj": "ect"}}, "query"),
    "query a list": ({"query": ["{ __typename }"]}, "query"),
    "operationName a number": ({"query": "{ __typename }", "operationName": 0}, "operationName"),
    "operationName an object": ({"query": "{ __typename }", "operationName": {}}, "operationName"),
    "variables a string": ({"query": "{ __typename }", "variables": '{"a": 1}'}, "variables"),
    "variables a list": ({"query": "{ __typename }", "variables": []}, "variables"),
    "extensions a boolean": ({"query": "{ __typename }", "extensions": False}, "extensions"),
}


@pytest.mark.parametrize("accept", [JSON, NEW])
@pytest.mark.parametrize("case", MALFORMED)
async def test_a_malformed_request_is_a_400_in_json(client: httpx.AsyncClient, case: str, accept: str) -> None:
    body, field = MALFORMED[case]
    error = refusal(await post(client, body, accept=accept), 400, "BAD_REQUEST", accept)
    assert error["extensions"].get("field") == field


@pytest.mark.parametrize("parameter", ["operationName", "variables", "extensions"])
async def test_null_parameters_are_allowed(client: httpx.AsyncClient, parameter: str) -> None:
    response = await post(client, {"query": "{ __typename }", parameter: None}, accept=NEW)
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


# -- operations: which one runs -----------------------------------------------------------------------

TWO = f"{CREATE_PATIENT.replace('mutation(', 'mutation Create(')}\n{ME}"


async def writes_of(tenant: Tenant) -> tuple[int, int]:
    return await Patient.filter(institution_id=tenant.id).count(), await tenant.audit_count()


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (NEW, 400)])
async def test_several_operations_without_a_name_is_an_error_and_none_runs(
        tenant: Tenant, accept: str, status: int) -> None:
    before = await writes_of(tenant)
    variables = {"input": {"fullName": "Not Created", "departmentId": str(tenant.departments["A"].id)}}
    response = await post(tenant.client, {"query": TWO, "variables": variables}, accept=accept,
                          token=tenant.tokens["front_desk"])
    error = refusal(response, status, "BAD_USER_INPUT", accept)
    assert error["message"] == "The document has 2 operations: name the one to run in operationName."
    assert error["extensions"]["field"] == "operationName"
    assert await writes_of(tenant) == before


async def test_the_named_operation_of_several_runs(tenant: Tenant) -> None:
    variables = {"input": {"fullName": "Created", "departmentId": str(tenant.departments["A"].id)}}
    for name, expect in (("Me", {"me": {"id": str(tenant.staff_ids["front_desk"])}}), ("Create", None)):
        response = await post(tenant.client, {"query": TWO, "operationName": name, "variables": variables},
                              accept=NEW, token=tenant.tokens["front_desk"])
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data == expect if expect else data["patientCreate"]["patient"]["id"]


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (NEW, 400)])
@pytest.mark.parametrize(("query", "name", "message"), [
    (ME, "Other", 'The document has no operation named "Other".'),
    ("{ me { id } }", "Me", 'The document has no operation named "Me".'),
    ("fragment F on Query { __typename }", None, "The document has no operation to run."),
])
async def test_an_operation_that_cannot_be_chosen_is_an_error(client: httpx.AsyncClient, accept: str, status: int,
                                                              query: str, name: str | None, message: str) -> None:
    error = refusal(await post(client, {"query": query, "operationName": name}, accept=accept), status,
                    "BAD_USER_INPUT", accept)
    assert (error["message"], error["extensions"]["field"]) == (message, "operationName")


# -- status codes and the data entry -----------------------------------------------------------------

BEFORE_EXECUTION = {
    "document parsing": ("{ me { ", {}),
    "document validation": ("{ nope }", {}),
    "variable coercion": ("query($n: Int!) { patients(first: $n) { nodes { id } } }", {"n": "x"}),
    "missing variable": ("query($id: ID!) { patient(id: $id) { id } }", {}),
    "a query limit": ("{ me { " + "id " * 600 + "} }", {}),
}


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (NEW, 400)])
@pytest.mark.parametrize("case", BEFORE_EXECUTION)
async def test_a_request_that_fails_before_execution_has_no_data(client: httpx.AsyncClient, case: str,
                                                                 accept: str, status: int) -> None:
    query, variables = BEFORE_EXECUTION[case]
    response = await post(client, {"query": query, "variables": variables}, accept=accept)
    assert (response.status_code, response.headers["content-type"]) == (status, accept)
    body = response.json()
    assert "data" not in body and body["errors"], body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}


@pytest.mark.parametrize("accept", [JSON, NEW])
async def test_field_errors_keep_their_data_and_a_200(tenant: Tenant, accept: str) -> None:
    """A denied field is an error during execution: the result has data, so it is a 200 in both types."""
    response = await post(tenant.client, {"query": "{ me { id } departments { id } }"}, accept=accept,
                          token=tenant.tokens["compliance_officer"])
    assert (response.status_code, response.headers["content-type"]) == (200, accept)
    body = response.json()
    assert "data" in body and [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("accept", [JSON, NEW])
async def test_a_subscription_over_post_is_refused_in_json(tenant: Tenant, accept: str) -> None:
    response = await post(tenant.client, {"query": "subscription { ticketChanges { id } }"}, accept=accept,
                          token=tenant.tokens["support_agent"])
    error = refusal(response, 400, "BAD_REQUEST", accept)
    assert "WebSocket" in error["message"]


# -- methods --------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["{ me { id } }", "mutation { logout }"])
@pytest.mark.parametrize("accept", [JSON, NEW, "*/*"])
async def test_get_is_refused_with_405_in_json(client: httpx.AsyncClient, query: str, accept: str) -> None:
    response = await client.get("/graphql", params={"query": query}, headers={"accept": accept})
    refusal(response, 405, "METHOD_NOT_ALLOWED", NEW if accept == NEW else JSON)
    assert response.headers["allow"] == "GET, POST"  # GET for GraphiQL's page, in development


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "HEAD"])
async def test_other_methods_are_refused_with_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    if method != "HEAD":
        refusal(response, 405, "METHOD_NOT_ALLOWED")


async def test_graphiql_is_still_served_to_a_browser_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")


async def test_production_answers_a_browser_get_with_405_in_json(client: httpx.AsyncClient, settings: Settings,
                                                                 services: Services) -> None:
    app = create_app(dataclasses.replace(settings, environment="production"), services, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


# -- the body limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, NEW])
async def test_a_body_over_the_limit_is_413_in_json_and_nothing_runs(tenant: Tenant, settings: Settings,
                                                                     accept: str) -> None:
    before = await writes_of(tenant)
    big = {"query": CREATE_PATIENT, "variables": {"input": {
        "fullName": "Big", "departmentId": str(tenant.departments["A"].id),
        "occupation": "x" * (settings.limits.max_body_bytes + 1)}}}
    error = refusal(await post(tenant.client, big, accept=accept, token=tenant.tokens["front_desk"]), 413,
                    "PAYLOAD_TOO_LARGE", accept)
    assert str(settings.limits.max_body_bytes) in error["message"]
    assert await writes_of(tenant) == before


# -- a refused caller ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (NEW, 403)])
async def test_an_untrusted_partner_document_is_refused_before_execution(tenant: Tenant, accept: str,
                                                                         status: int) -> None:
    partnership = await make_partnership(tenant, documents=[sha256("query { me { id } }")])
    response = await post(tenant.client, {"query": "{ __typename }"}, accept=accept, token=partnership.token)
    refusal(response, status, "FORBIDDEN", accept)
    assert [(e.action, e.reason) for e in await partnership.events() if e.action != "token"] == [
        ("read", "untrusted_document")]


@pytest.mark.parametrize("accept", [JSON, NEW])
async def test_a_bad_token_is_a_field_error_with_data(client: httpx.AsyncClient, accept: str) -> None:
    """The token is checked field by field (a public field still answers): data, so a 200 in both types."""
    response = await post(client, {"query": "{ me { id } }"}, accept=accept, token="cl_" + "A" * 43)
    assert (response.status_code, response.headers["content-type"]) == (200, accept)
    body = response.json()
    assert body["data"] == {"me": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
