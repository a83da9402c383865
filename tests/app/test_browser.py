"""A real browser against the real app: headless Chromium (Debian's ``chromium``), driven by playwright-core
(``tests/node/browser.mjs``), with careloop served by uvicorn on a free port.

- A portal page served from another local port (another origin) signs in with fetch and pages patients with
  ``after`` cursors: CORS lets it, and it can read the exposed X-Request-ID. The same page from an origin that
  is not allowed gets nothing.
- A portal page on an allowed origin uploads a picture with ``fetch`` and FormData to ``POST /attachments`` (with an
  ``Idempotency-Key``, through CORS; sent again, it is stored once and answered 409) and shows it through the signed
  ``downloadUrl`` in an ``<img src>``, which sends no Authorization header.
- GraphiQL renders from careloop's own files, with every request that would leave this machine aborted (no
  CDN), no Content-Security-Policy violation, its first screen saying how to sign in, and a login run in it
  prefilling the Authorization header that the next query then uses.

Without Chromium, node or npm these tests are skipped, except under CI=true, where that is a failure. The npm
packages are installed from the committed lock file (``npm ci``) into pytest's cache directory, once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.main import create_app
from core.settings import Settings
from resolvers.context import Services
from tests.api.test_attachment_upload import new_ticket
from tests.app.conftest import serve
from tests.factories import PASSWORD, Tenant, make_patient

NODE_PROJECT = Path(__file__).resolve().parents[1] / "node"
NODE_FILES = ("package.json", "package-lock.json", "browser.mjs")
CHROMIUM_INSTALL = "apt-get install -y chromium"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: in CI that is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _unavailable(f"Chromium is needed for the browser tests (Debian: `{CHROMIUM_INSTALL}`)")
    return found


@pytest.fixture(scope="session")
def browser_script(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/node/browser.mjs`` with its node_modules (playwright-core), installed by ``npm ci``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to drive Chromium with playwright-core (tests/node)")
    digest = hashlib.sha256(b"".join((NODE_PROJECT / name).read_bytes() for name in NODE_FILES[:2])).hexdigest()
    cache = getattr(pytestconfig, "cache", None)
    name = f"browser-{digest[:16]}"
    target = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    # `make test` runs the SQLite and PostgreSQL suites side by side: one of them installs, the other waits.
    with (target.parent / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for file in NODE_FILES:
            shutil.copyfile(NODE_PROJECT / file, target / file)
        if not (target / "node_modules" / ".package-lock.json").exists():
            try:
                done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(target)],
                                      capture_output=True, text=True, timeout=300, check=False)
            except subprocess.TimeoutExpired:
                _unavailable("`npm ci` for tests/node did not finish within 300 s")
            if done.returncode != 0:
                _unavailable(f"`npm ci` for tests/node failed: {done.stderr.strip()[-1500:]}")
    return target / "browser.mjs"


async def browse(script: Path, chromium: str, job: dict[str, Any]) -> dict[str, Any]:
    """Runs one job of browser.mjs and returns its report. With BROWSER_SCREENSHOT=file.png, a job that fails
    leaves a screenshot of the page there."""
    if os.environ.get("BROWSER_SCREENSHOT"):
        job = {**job, "screenshot": os.environ["BROWSER_SCREENSHOT"]}
    process = await asyncio.create_subprocess_exec("node", str(script), chromium, json.dumps(job), cwd=script.parent,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(90):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    report: dict[str, Any] = json.loads(out)
    assert "error" not in report, json.dumps(report, indent=1)[-6000:]
    return report


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def only_local(report: dict[str, Any]) -> None:
    assert report["offsite"] == []
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in report["requests"]), report["requests"]


# -- a portal on another origin ---------------------------------------------------------------------

PORTAL_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>portal</title></head>
<body><ul id="patients"></ul><pre id="result"></pre><script src="/portal.js"></script></body></html>
"""
# What a portal's code does: sign in, then page through the patients with the cursors it is given.
PORTAL_JS = """
const params = new URLSearchParams(location.search);
const api = params.get("api");
const LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";
const PATIENTS = `query($after: String) { patients(first: 2, after: $after) {
  edges { node { id fullName } } pageInfo { hasNextPage endCursor } } }`;

async function gql(query, variables, token) {
  const headers = { "Content-Type": "application/json", Accept: "application/graphql-response+json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(api, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, requestId: response.headers.get("X-Request-ID"), body: await response.json() };
}

async function main() {
  const out = { pages: [], afters: [], names: [], requestIds: [] };
  try {
    const login = await gql(LOGIN, { email: params.get("email"), password: params.get("password") });
    out.requestIds.push(login.requestId);
    const token = login.body.data.login.token;
    let after = null;
    do {
      out.afters.push(after);
      const page = await gql(PATIENTS, { after }, token);
      out.requestIds.push(page.requestId);
      const { edges, pageInfo } = page.body.data.patients;
      out.pages.push(edges.length);
      for (const { node } of edges) {
        out.names.push(node.fullName);
        const item = document.createElement("li");
        item.textContent = node.fullName;
        document.getElementById("patients").append(item);
      }
      after = pageInfo.hasNextPage ? pageInfo.endCursor : null;
    } while (after !== null && out.pages.length < 20);
  } catch (error) {
    out.error = `${error.name}: ${error.message}`;
  }
  document.getElementById("result").textContent = JSON.stringify(out);
  document.body.dataset.done = "true";
}
main();
"""


# A portal's attachment form: the picture a person picked (here the portal's own /picture.png) goes up with
# fetch and FormData; the signed link the API gives for it is what an <img src> loads, with no header.
UPLOAD_JS = """
const params = new URLSearchParams(location.search);
const api = params.get("api");
const LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";
const LINKS = "query($id: ID!) { ticket(id: $id) { attachments { id downloadUrl } } }";

async function gql(query, variables, token) {
  const headers = { "Content-Type": "application/json", Authorization: `Bearer ${token}` };
  const response = await fetch(api, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return (await response.json()).data;
}

function shown(image) {
  return new Promise((resolve) => {
    image.onload = () => resolve("load");
    image.onerror = () => resolve("error");
  });
}

async function main() {
  const out = {};
  try {
    const signIn = { email: params.get("email"), password: params.get("password") };
    const login = await fetch(api, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query: LOGIN, variables: signIn }) });
    const token = (await login.json()).data.login.token;
    const picture = await (await fetch("/picture.png")).blob();
    const form = new FormData();
    form.append("ticketId", params.get("ticket"));
    form.append("file", new File([picture], "张伟 X-ray.png", { type: "image/png" }));
    // with its Idempotency-Key (which the preflight must allow), and again as a portal retrying a lost answer would
    const headers = { Authorization: `Bearer ${token}`, "Idempotency-Key": crypto.randomUUID() };
    const upload = await fetch(new URL("/attachments", api), { method: "POST", body: form, headers });
    out.upload = { status: upload.status, requestId: upload.headers.get("X-Request-ID"), body: await upload.json() };
    const again = await fetch(new URL("/attachments", api), { method: "POST", body: form, headers });
    out.again = { status: again.status, body: await again.json() };
    const links = await gql(LINKS, { id: params.get("ticket") }, token);
    out.attachments = links.ticket.attachments;
    const image = document.getElementById("picture");
    const loaded = shown(image);
    image.src = new URL(out.attachments[0].downloadUrl, api).href;
    out.image = { event: await loaded, src: image.src, naturalWidth: image.naturalWidth,
                  naturalHeight: image.naturalHeight };
  } catch (error) {
    out.error = `${error.name}: ${error.message}`;
  }
  document.getElementById("result").textContent = JSON.stringify(out);
  document.body.dataset.done = "true";
}
main();
"""
UPLOAD_HTML = PORTAL_HTML.replace('<ul id="patients"></ul>', '<img id="picture" alt="">').replace(
    "/portal.js", "/upload.js")


def png(width: int, height: int) -> bytes:
    """A real PNG (8-bit grey, all pixels mid-grey) a browser decodes: its size says it was."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # filter byte "none", then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PICTURE = png(7, 3)


async def portal_page(request: Request) -> Response:
    return HTMLResponse(PORTAL_HTML)


async def portal_script(request: Request) -> Response:
    return Response(PORTAL_JS, media_type="text/javascript")


async def upload_page(request: Request) -> Response:
    return HTMLResponse(UPLOAD_HTML)


async def upload_script(request: Request) -> Response:
    return Response(UPLOAD_JS, media_type="text/javascript")


async def picture(request: Request) -> Response:
    return Response(PICTURE, media_type="image/png")


@asynccontextmanager
async def portal() -> AsyncIterator[str]:
    """The portal's static files, served by uvicorn on a port of their own: their origin."""
    app = Starlette(routes=[Route("/", portal_page), Route("/portal.js", portal_script),
                            Route("/upload", upload_page), Route("/upload.js", upload_script),
                            Route("/picture.png", picture)])
    async with serve(app) as ws_url:
        yield origin_of(ws_url.replace("ws://", "http://", 1))


@asynccontextmanager
async def careloop(settings: Settings, services: Services) -> AsyncIterator[str]:
    async with serve(create_app(settings, services, manage_database=False)) as ws_url:
        yield ws_url.replace("ws://", "http://", 1)


async def test_a_portal_on_an_allowed_origin_signs_in_and_pages_patients(
        database: str, settings: Settings, services: Services, tenant: Tenant, browser_script: Path,
        chromium: str) -> None:
    names = {f"Browser Patient {n}" for n in range(5)}
    for name in sorted(names):
        await make_patient(tenant, fullName=name)
    async with AsyncExitStack() as stack:
        allowed = await stack.enter_async_context(portal())
        refused = await stack.enter_async_context(portal())
        api = await stack.enter_async_context(careloop(dataclasses.replace(settings, cors_origins=(allowed,)),
                                                       services))
        query = urlencode({"api": api, "email": tenant.emails["front_desk"], "password": PASSWORD})
        signed_in = await browse(browser_script, chromium, {"kind": "page", "url": f"{allowed}/?{query}"})
        blocked = await browse(browser_script, chromium, {"kind": "page", "url": f"{refused}/?{query}"})

    result = signed_in["result"]
    assert "error" not in result, result
    assert names <= set(result["names"]) and len(result["names"]) == len(set(result["names"]))
    assert len(result["pages"]) >= 3 and all(size <= 2 for size in result["pages"])
    assert result["afters"][0] is None and all(result["afters"][1:])  # every later page asked with a cursor
    assert all(request_id and len(request_id) == 32 for request_id in result["requestIds"])  # exposed header
    assert signed_in["pageErrors"] == []
    only_local(signed_in)

    # The browser itself refuses the answer to a page from an origin that is not listed.
    assert blocked["result"]["error"] == "TypeError: Failed to fetch", blocked["result"]
    assert blocked["result"]["names"] == []
    assert any("CORS" in message for message in blocked["consoleErrors"]), blocked["consoleErrors"]


async def test_a_portal_uploads_a_picture_by_form_and_shows_it_through_its_signed_link(
        database: str, settings: Settings, services: Services, tenant: Tenant, browser_script: Path,
        chromium: str) -> None:
    ticket_id = await new_ticket(tenant)  # the support agent's
    async with AsyncExitStack() as stack:
        allowed = await stack.enter_async_context(portal())
        api = await stack.enter_async_context(careloop(dataclasses.replace(settings, cors_origins=(allowed,)),
                                                       services))
        query = urlencode({"api": api, "email": tenant.emails["support_agent"], "password": PASSWORD,
                           "ticket": ticket_id})
        report = await browse(browser_script, chromium, {"kind": "page", "url": f"{allowed}/upload?{query}"})

    result = report["result"]
    assert "error" not in result, report
    upload = result["upload"]
    assert upload["status"] == 201, upload
    assert upload["body"]["ticketId"] == ticket_id and upload["body"]["contentType"] == "image/png"
    assert upload["body"]["sha256"] == hashlib.sha256(PICTURE).hexdigest()  # the bytes the portal sent
    assert upload["requestId"] and len(upload["requestId"]) == 32
    again = result["again"]  # sent again with its key: stored once, the resend told what was stored
    assert again["status"] == 409, again
    assert {k: again["body"]["errors"][0]["extensions"][k] for k in ("code", "reason", "resourceId")} == {
        "code": "CONFLICT", "reason": "already_done", "resourceId": upload["body"]["id"]}
    [attachment] = result["attachments"]
    assert attachment["id"] == upload["body"]["id"]
    image = result["image"]
    assert urlsplit(image["src"]).path == f"/attachments/{attachment['id']}/download", image
    assert origin_of(image["src"]) == origin_of(api) != allowed
    assert (image["event"], image["naturalWidth"], image["naturalHeight"]) == ("load", 7, 3), report
    # The <img> carried no Authorization header: the signed link alone let it through, as the trail records.
    [read] = await tenant.audit_events(resource_type="attachment", action="read")
    assert (read.actor_id, read.outcome, str(read.resource_id)) == (
        tenant.staff_ids["support_agent"], "allowed", attachment["id"])
    assert report["failed"] == [] and report["pageErrors"] == [], report
    # Chromium notes every 4xx answer in the console: the resend's 409, which the page expected, and nothing else
    assert report["consoleErrors"] == ["Failed to load resource: the server responded with a status of 409 "
                                       "(Conflict)"], report
    only_local(report)


# -- GraphiQL without the internet ------------------------------------------------------------------


async def test_graphiql_renders_offline_and_a_login_fills_the_header(
        database: str, settings: Settings, services: Services, tenant: Tenant, browser_script: Path,
        chromium: str) -> None:
    async with careloop(settings, services) as api:
        report = await browse(browser_script, chromium, {"kind": "graphiql", "url": api,
                                                         "email": tenant.emails["nurse"], "password": PASSWORD})

    only_local(report)
    assert report["cspViolations"] == [] and report["pageErrors"] == [], report
    assert report["introspected"] is True  # GraphiQL's own introspection query passes the depth limit
    assert {urlsplit(url).path for url in report["requests"]} >= {
        "/graphql", "/graphql/assets/react.production.min.js", "/graphql/assets/graphiql.min.js",
        "/graphql/assets/graphiql.min.css", "/graphql/assets/careloop-graphiql.js"}
    result = report["result"]
    assert "mutation Login" in result["firstScreen"] and '{"Authorization": "Bearer <token>"}' in result["firstScreen"]
    assert json.loads(result["headers"])["Authorization"].startswith("Bearer cl_")
    assert json.loads(result["response"]) == {"data": {"me": {"email": tenant.emails["nurse"]}}}
