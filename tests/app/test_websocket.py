"""The WebSocket as real clients use it, against the real app served by uvicorn.

- The npm ``graphql-ws`` client (what Apollo's GraphQLWsLink and urql use; ``tests/node``) follows the live
  ticket queue: every graphql-transport-ws message goes out as a text frame, which that client needs.
- The WebSocket carries subscriptions only: a query or a mutation sent there gets an error and is not run.
- A client closing its socket while the server works on its message (3-10 ms after sending it, again and
  again) cannot wedge the database: logins, queries and /readyz still answer at once.

The npm client is installed from the committed lock file (``npm ci``) into pytest's cache directory, once.
Without node and npm these tests are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from models import AuditEvent, Patient
from tests.app.test_subscriptions import MOVE, open_ticket
from tests.factories import PASSWORD, Tenant, make_patient

NODE_PROJECT = Path(__file__).resolve().parents[1] / "node"
NODE_FILES = ("package.json", "package-lock.json", "live.mjs")
LIVE = ("subscription($dep: ID) { ticketChanges(departmentId: $dep) "
        "{ id status subject callerName department { name } } }")
PATIENT_UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
ME = "query { me { id } }"
BAD_TOKEN = "cl_" + "A" * 43
PROTOCOL = Subprotocol("graphql-transport-ws")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: in CI that is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def graphql_ws_client(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/node/live.mjs`` with its node_modules, installed by ``npm ci`` from the committed lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to run the npm graphql-ws client (tests/node)")
    digest = hashlib.sha256(b"".join((NODE_PROJECT / name).read_bytes() for name in NODE_FILES[:2])).hexdigest()
    cache = getattr(pytestconfig, "cache", None)
    name = f"graphql-ws-client-{digest[:16]}"
    target = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
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
    return target / "live.mjs"


class NodeClient:
    """The output of ``live.mjs``: one JSON object per line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []

    async def event(self, within: float = 10) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            line = await self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            problem = (await self.process.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the node client ended after {self.seen}: {problem}")
        event = dict(json.loads(line))
        self.seen.append(event)
        return event

    async def until(self, kind: str, within: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while (event := await self.event(within))["event"] != kind:
                pass
        return event

    async def stop(self) -> None:
        """Closes its stdin (live.mjs then disposes of the client) and reads what it printed until it ended."""
        if self.process.returncode is not None:
            return
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            async with asyncio.timeout(10):
                rest = await self.process.stdout.read()
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise
        self.seen.extend(dict(json.loads(line)) for line in rest.splitlines() if line.strip())


@asynccontextmanager
async def node_client(script: Path, url: str, token: str | None, query: str,
                      variables: dict[str, Any] | None = None) -> AsyncIterator[NodeClient]:
    process = await asyncio.create_subprocess_exec(
        "node", str(script), url, token or "", query, json.dumps(variables or {}), cwd=script.parent,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    client = NodeClient(process)
    try:
        yield client
    finally:
        await client.stop()


async def test_the_npm_graphql_ws_client_follows_the_ticket_queue(
        graphql_ws_client: Path, tenant: Tenant, ws_url: str) -> None:
    async with node_client(graphql_ws_client, ws_url, tenant.tokens["support_agent"], LIVE) as client:
        assert (await client.event())["event"] == "connected"
        await asyncio.sleep(0.3)  # let the subscription take its starting point
        tid = await open_ticket(tenant, "front_desk", subject="From node")
        opened = await client.event()
        assert opened == {"event": "next", "payload": {"data": {"ticketChanges": {
            "id": tid, "status": "NEW", "subject": "From node", "callerName": None,
            "department": {"name": "Department A"}}}}}
        assert (await tenant.call("front_desk", MOVE, id=tid)).errors == []
        moved = await client.event()
        assert moved["event"] == "next"
        assert moved["payload"]["data"]["ticketChanges"]["status"] == "ACKNOWLEDGED"
        await client.stop()
    assert [e["event"] for e in client.seen] == ["connected", "next", "next", "closed", "complete"]
    assert client.seen[3]["code"] == 1000
    assert client.process.returncode == 0


@pytest.mark.parametrize("token", [BAD_TOKEN, None], ids=["bad token", "no token"])
async def test_a_bad_token_closes_the_npm_client_with_4403(
        graphql_ws_client: Path, ws_url: str, token: str | None) -> None:
    async with node_client(graphql_ws_client, ws_url, token, LIVE) as client:
        closed = await client.until("closed")
        assert (closed["code"], closed["reason"]) == (4403, "Forbidden")
        failed = await client.until("error")
        assert failed["error"]["code"] == 4403
    assert "connected" not in [e["event"] for e in client.seen]
    assert "next" not in [e["event"] for e in client.seen]


class Frames:
    """A graphql-transport-ws connection that keeps every frame the server sent, as websockets returns it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.received: list[str | bytes] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, token: str) -> AsyncIterator[Frames]:
        async with websockets.connect(url, subprotocols=[PROTOCOL]) as connection:
            frames = cls(connection)
            await frames.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            assert (await frames.next())["type"] == "connection_ack"
            yield frames

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def next(self, within: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(within):
            frame = await self.connection.recv()
        self.received.append(frame)
        return dict(json.loads(frame))


async def test_every_frame_the_server_sends_is_text(tenant: Tenant, ws_url: str) -> None:
    async with Frames.open(ws_url, tenant.tokens["support_agent"]) as frames:
        await frames.send({"type": "ping"})
        assert (await frames.next())["type"] == "pong"
        await frames.send({"id": "live", "type": "subscribe", "payload": {"query": LIVE}})
        await asyncio.sleep(0.2)
        await open_ticket(tenant, "front_desk")
        assert (await frames.next())["type"] == "next"
        await frames.send({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { nothing }"}})
        assert (await frames.next())["type"] == "error"
        await frames.send({"id": "me", "type": "subscribe", "payload": {"query": ME}})
        assert (await frames.next())["type"] == "error"
        await frames.send({"id": "live", "type": "complete"})
        await asyncio.sleep(0.2)
    assert len(frames.received) == 5
    assert [type(frame) for frame in frames.received] == [str] * 5, "a binary frame reads as a message without a type"


async def _patient_state(pid: uuid.UUID) -> tuple[Any, ...]:
    row = await Patient.get(id=pid)
    return row.full_name, row.phone, row.updated_at


async def test_queries_and_mutations_over_the_websocket_are_refused(
        graphql_ws_client: Path, tenant: Tenant, ws_url: str) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["A"].id), fullName="Before Change",
                             phone="13900000001")
    before, events = await _patient_state(pid), await AuditEvent.all().count()
    change = {"id": str(pid), "input": {"fullName": "Changed Over WS", "phone": "13900000002"}}

    async with Frames.open(ws_url, tenant.tokens["front_desk"]) as frames:
        await frames.send({"id": "m", "type": "subscribe", "payload": {"query": PATIENT_UPDATE, "variables": change}})
        refused = await frames.next()
        assert (refused["type"], refused["id"]) == ("error", "m")
        assert [(e["message"], e["extensions"]["code"]) for e in refused["payload"]] == [(
            "The WebSocket carries subscriptions only: send queries and mutations by HTTP POST to /graphql.",
            "BAD_USER_INPUT")]  # the client's mistake, not an INTERNAL_SERVER_ERROR (found in review)
        await frames.send({"id": "q", "type": "subscribe", "payload": {"query": ME}})
        refused = await frames.next()
        assert (refused["type"], refused["id"]) == ("error", "q")
        await frames.send({"type": "ping"})
        assert (await frames.next())["type"] == "pong"  # the connection itself stays usable

    async with node_client(graphql_ws_client, ws_url, tenant.tokens["front_desk"], PATIENT_UPDATE, change) as client:
        failed = await client.until("error")
        assert isinstance(failed["error"], list) and failed["error"], failed
        assert "next" not in [e["event"] for e in client.seen]

    await asyncio.sleep(0.3)  # anything that did run would have finished by now
    assert await _patient_state(pid) == before, "the mutation ran"
    assert await AuditEvent.all().count() == events, "something was written"


async def test_closing_mid_operation_does_not_wedge_the_server(tenant: Tenant, ws_url: str) -> None:
    """Finding 2: a client that closes its socket while the server works on its message (here a mutation,
    which is refused, a subscription whose denial is written to the audit trail, and the sign-in of
    connection_init) must not leave a database lock held."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments["A"].id))
    change = {"id": str(pid), "input": {"fullName": "Wedge Test"}}
    mutation = ("front_desk", {"id": "1", "type": "subscribe",
                               "payload": {"query": PATIENT_UPDATE, "variables": change}})
    others = [("compliance_officer", {"id": "1", "type": "subscribe", "payload": {"query": LIVE}}),  # denied: audited
              ("nurse", None)]  # closed during connection_init's sign-in
    for attempt, (role, message) in enumerate([mutation] * 20 + others * 4):
        delay = (3 + attempt % 8) / 1000  # 3-10 ms
        connection = await websockets.connect(ws_url, subprotocols=[PROTOCOL])
        await connection.send(json.dumps({"type": "connection_init",
                                          "payload": {"authorization": f"Bearer {tenant.tokens[role]}"}}))
        if message is not None:
            try:
                async with asyncio.timeout(5):
                    assert json.loads(await connection.recv())["type"] == "connection_ack"
            except TimeoutError:
                pytest.fail(f"attempt {attempt}: no connection_ack within 5 s, the sign-in is stuck (wedged)")
            await connection.send(json.dumps(message))
        await asyncio.sleep(delay)
        if attempt % 2:
            connection.transport.abort()  # the socket goes away without a closing handshake
        else:
            await connection.close()

    base = ws_url.replace("ws://", "http://").removesuffix("/graphql")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with asyncio.timeout(5):
            login = await http.post("/graphql", json={"query": "mutation($e: String!, $p: String!) "
                                                      "{ login(email: $e, password: $p) { token } }",
                                                      "variables": {"e": tenant.emails["nurse"], "p": PASSWORD}})
        assert login.status_code == 200 and not login.json().get("errors"), login.text
        token = login.json()["data"]["login"]["token"]
        async with asyncio.timeout(5):
            read = await http.post("/graphql", json={"query": "query($id: ID!) { patient(id: $id) { id fullName } }",
                                                     "variables": {"id": str(pid)}},
                                   headers={"authorization": f"Bearer {token}"})
        assert read.status_code == 200 and not read.json().get("errors"), read.text
        async with asyncio.timeout(5):
            ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
    assert read.json()["data"]["patient"]["fullName"] != "Wedge Test", "a mutation ran over the WebSocket"
