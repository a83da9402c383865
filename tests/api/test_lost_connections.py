"""PostgreSQL connections lost under the service: a failover, a firewall's or pooler's idle timeout, an
administrator's ``pg_terminate_backend``, a restart (docs/operations.md, "Losing the database").

The app's pooled connections are killed while idle (the server ends them: the client hears of it at once) or
forgotten (a hop between the two drops them and answers the app's next packet with a reset, as after a failover that
moved the server's address: the client hears nothing until it sends), or killed in the middle of a write's statement
or of an audit append. Requests after that are answered normally; one the loss caught answers UNAVAILABLE, with
nothing half-written and the audit chain whole. SQLite has no connection to lose: these run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from tortoise import connections

from app import checkpoints, notifier, sweeps
from app.leader import Leadership
from app.main import create_app
from audit.verify import verify_all
from core.backends.asyncpg import FINISH_TIMEOUT_SECONDS, PROBE_AFTER_IDLE_SECONDS
from core.settings import Settings
from models import AuditEvent, Contact, Patient
from resolvers import notification, outbox, sign_in_limit
from resolvers.context import Services
from tests.conftest import BACKEND
from tests.factories import CLIENT_ADDRESS, CREATE_PATIENT, PASSWORD, Response, Tenant, gql, make_patient

POSTGRES_ONLY = pytest.mark.skipif(BACKEND == "sqlite", reason="SQLite has no connection to lose")

READ = "query($id: ID!) { patient(id: $id) { id fullName } }"
CONTACT = "mutation($p: ID!, $i: ContactCreateInput!) { contactCreate(patientId: $p, input: $i) { id } }"
LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"
OTHERS = "datname = current_database() AND pid <> pg_backend_pid()"


class Hop:
    """A TCP hop between the app and PostgreSQL. ``forget()`` drops its connections as a failover that moved the
    server's address does (or a firewall's idle timeout): the server's side ends, the app's side hears nothing
    until it next sends, and that is answered by a reset. ``refusing``: new connections are reset at once (the
    server is down). ``answering`` cleared: nothing the app sends gets an answer, on its connections or new ones (the
    server's machine is gone and its address not yet moved). ``closing`` cleared: a connection the server ends brings
    the app what the server said last (PostgreSQL's "terminating connection" FATAL), and its close only once set
    again: the moment between a backend's last message and its exit, which a busy server stretches."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.refusing = host, port, False
        self.answering, self.closing = asyncio.Event(), asyncio.Event()
        self.answering.set()
        self.closing.set()
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.Event]] = []
        self.unanswered: tuple[bytes, ...] = ()
        self.silenced: tuple[bytes, ...] = ()
        self.answers_lost = 0

    def lose_the_answer_to(self, *markers: bytes) -> None:
        """The next request the app sends holding every one of ``markers`` reaches the server, which runs and
        commits it; the server's answer is dropped and the app's side reset, as when a failover or a dropped
        connection comes between the server's commit and the client's reading of the answer. Once."""
        self.unanswered = markers

    def silence(self, *markers: bytes) -> None:
        """The next request the app sends holding every one of ``markers``, and all after it on its connection, go
        unanswered, the connection left open: the server's machine gone just then. Once."""
        self.silenced = markers

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _pipe(self, app_reader: asyncio.StreamReader, app_writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            reset(app_writer)
            return
        await self.answering.wait()
        db_reader, db_writer = await asyncio.open_connection(self.host, self.port)
        forgotten, answer_lost, silent = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.pairs.append((db_writer, forgotten))

        async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_app: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    if from_app and self.silenced and all(marker in data for marker in self.silenced):
                        self.silenced = ()
                        silent.set()
                    if not self.answering.is_set() or silent.is_set():
                        continue
                    if from_app and self.unanswered and all(marker in data for marker in self.unanswered):
                        self.unanswered = ()
                        answer_lost.set()
                    if not from_app and answer_lost.is_set():  # the server has answered, so committed: unheard
                        self.answers_lost += 1
                        reset(app_writer)
                        db_writer.close()
                        return
                    if forgotten.is_set():
                        if from_app:  # the app speaks on a connection the network forgot
                            reset(app_writer)
                        return
                    writer.write(data)
                    await writer.drain()
            if not forgotten.is_set():
                if not from_app:
                    await self.closing.wait()
                writer.close()

        await asyncio.gather(copy(app_reader, db_writer, True), copy(db_reader, app_writer, False))

    def forget(self) -> None:
        for db_writer, forgotten in self.pairs:
            forgotten.set()
            db_writer.transport.abort()
        self.pairs = []


def reset(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
async def hop(database: str) -> AsyncIterator[Hop]:
    """The app's pool, for this test, connects through a ``Hop``."""
    client = connections.get("default")
    await client.execute_query("SELECT 1")  # connected: its pool's settings (our connection class...) are made then
    url = urlsplit(database)
    hop = Hop(url.hostname or "127.0.0.1", url.port or 5432)
    port = await hop.start()
    kept = client._pool
    client._pool = await client.create_pool(password=client.password, **{**client._template, "port": port})
    try:
        yield hop
    finally:
        hop.refusing = False
        hop.answering.set()
        hop.closing.set()
        await client._pool.close()
        # the test may have ended every backend of the database, the kept pool's too: they are made anew (found when
        # the next test's first statement met a connection killed less than the probe's second before)
        await kept.expire_connections()
        client._pool = kept
        hop.server.close()


async def kill_every_connection(database_url: str) -> None:
    """``pg_terminate_backend`` on every connection to the test database but this one, once they are gone."""
    admin = await asyncpg.connect(database_url)
    try:
        pids = [row["pid"] for row in await admin.fetch(f"SELECT pid FROM pg_stat_activity WHERE {OTHERS}")]
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        await until(admin, f"pid = ANY('{{{','.join(map(str, pids))}}}'::int[])", present=False)
    finally:
        await admin.close()


async def until(admin: asyncpg.Connection, which: str, *, present: bool,
                unless: asyncio.Task[Response] | None = None) -> None:
    """Until the backends ``which`` selects are there (or gone), for 30 s at most (a machine running both suites
    beside other work can take seconds to bring a request to its statement). A request ``unless`` names that is
    answered meanwhile never will be: its answer is the failure's message."""
    for _ in range(3000):
        if bool(await admin.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {which}")) == present:
            return
        if unless is not None and unless.done():
            raise AssertionError(f"answered before any backend {which}: {(await unless).body}")
        await asyncio.sleep(0.01)
    raise AssertionError(f"no backend {which}" if present else f"backends {which} still there")


async def kill_midway(database_url: str, tables: str, request: Awaitable[Response],
                      mode: str = "EXCLUSIVE") -> Response:
    """``request``'s answer, its connection killed while a statement of it waits for a lock on ``tables`` (in
    ``mode``: EXCLUSIVE holds up writes, ACCESS EXCLUSIVE reads too)."""
    admin = await asyncpg.connect(database_url)
    waiting = f"{OTHERS} AND wait_event_type = 'Lock'"
    try:
        async with admin.transaction():
            await admin.execute(f"LOCK TABLE {tables} IN {mode} MODE")
            call = asyncio.create_task(request)
            await until(admin, waiting, present=True, unless=call)
            await admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {waiting}")
        return await call
    finally:
        await admin.close()


async def answered_normally(tenant: Tenant, patient: uuid.UUID) -> None:
    """A read (with its audit record), a write (with its own) and a sign-in, each answered."""
    read = await tenant.call("nurse", READ, id=str(patient))
    assert not read.errors and read.data["patient"]["id"] == str(patient)
    assert await AuditEvent.filter(institution_id=tenant.id, action="read", patient_id=patient,
                                   request_id__isnull=False).exists()
    written = await tenant.call("front_desk", CONTACT, p=str(patient), i={"name": "Wang", "relationship": "SPOUSE"})
    assert not written.errors, written.errors
    contact = uuid.UUID(written.data["contactCreate"]["id"])
    assert await Contact.filter(id=contact).exists()
    await tenant.audit_count()  # sealed
    assert await AuditEvent.filter(institution_id=tenant.id, action="create", resource_id=contact).exists()
    signed_in = await gql(tenant.client, LOGIN, {"email": tenant.emails["nurse"], "password": PASSWORD})
    assert not signed_in.errors and signed_in.data["login"]["token"]


def told_nothing(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    """careloop's lines logged at WARNING or above, after checking that no line names a value of the request and
    none but asyncio's carries a traceback. (asyncpg leaves a future unretrieved when a connection is reset as it
    opens, and asyncio logs "Future exception was never retrieved ... unexpected connection_lost() call" whenever
    the collector finds it: no value in it, and not ours to silence.)"""
    records = [record for record in caplog.records if record.levelno >= logging.WARNING]
    for record in records:
        line = record.getMessage()
        assert not any(secret in line for secret in secrets), line
        assert "SELECT" not in line and "INSERT" not in line, line
        assert not record.exc_info or record.name == "asyncio", line
    return [record.getMessage() for record in records if record.name.startswith("careloop")]


@POSTGRES_ONLY
async def test_requests_after_every_idle_connection_was_killed_are_answered(tenant: Tenant, database: str) -> None:
    patient = await make_patient(tenant)
    await kill_every_connection(database)

    await answered_normally(tenant, patient)


@POSTGRES_ONLY
async def test_requests_after_the_server_ended_every_connection_just_used_are_answered_before_it_closed_them(
        tenant: Tenant, hop: Hop, database: str, caplog: pytest.LogCaptureFixture) -> None:
    """Found as a flake of the test above (its sign-in failed now and then, a 500): a server ending a connection says
    so (a FATAL "terminating connection") and then closes it, a moment later. A pooled connection told meanwhile was
    not yet closed to asyncpg, only unusable (every statement: "cannot switch to state ...; another operation is in
    progress"), and one given back under a second ago was handed over unproved. The moment held open here."""
    patient = await make_patient(tenant)  # its connections given back just now: not idle long enough to be proved
    hop.closing.clear()
    await kill_every_connection(database)

    await answered_normally(tenant, patient)
    assert told_nothing(caplog) == []


@POSTGRES_ONLY
async def test_requests_after_a_failover_forgot_every_idle_connection_are_answered(
        tenant: Tenant, hop: Hop, caplog: pytest.LogCaptureFixture) -> None:
    """Found in review: the first statement on each forgotten connection failed, the sign-in's with a bare 500."""
    patient = await make_patient(tenant)
    for _ in range(3):
        hop.forget()
        await asyncio.sleep(PROBE_AFTER_IDLE_SECONDS)  # idle long enough to be proved alive before use

        await answered_normally(tenant, patient)
    assert told_nothing(caplog) == []


@POSTGRES_ONLY
async def test_a_request_while_the_database_cannot_be_reached_answers_unavailable(
        tenant: Tenant, hop: Hop, caplog: pytest.LogCaptureFixture) -> None:
    """Found in review: the sign-in's failure left the app (a bare 500 and a traceback in the log)."""
    patient = await make_patient(tenant)
    hop.refusing = True
    hop.forget()
    await asyncio.sleep(PROBE_AFTER_IDLE_SECONDS)

    reply = await tenant.call("nurse", READ, id=str(patient))

    assert reply.status == 503 and reply.codes == ["UNAVAILABLE"], reply.body
    assert "try again" in reply.errors[0]["message"]
    raw = await tenant.client.post("/graphql", json={"query": READ, "variables": {"id": str(patient)}},
                                   headers={"authorization": f"Bearer {tenant.tokens['nurse']}"})
    assert raw.status_code == 503 and raw.headers["retry-after"] == "5"
    lines = told_nothing(caplog, str(patient), tenant.tokens["nurse"])
    assert len(lines) == 2 and all(line.startswith("the database could not be reached") for line in lines), lines
    hop.refusing = False

    await answered_normally(tenant, patient)


@POSTGRES_ONLY
@pytest.mark.parametrize("tables", ["contact", "audit_event, audit_inbox"], ids=["in the write", "in its audit append"])
async def test_a_write_whose_connection_is_killed_midway_answers_unavailable_and_writes_nothing(
        tenant: Tenant, database: str, tables: str, caplog: pytest.LogCaptureFixture) -> None:
    patient = await make_patient(tenant)
    before = await tenant.audit_count()

    reply = await kill_midway(database, tables, tenant.call("front_desk", CONTACT, p=str(patient),
                                                            i={"name": "Wang", "relationship": "SPOUSE"}))

    assert reply.codes == ["UNAVAILABLE"] and reply.data == {"contactCreate": None}, reply.body
    assert reply.errors[0]["extensions"]["requestId"]
    assert not await Contact.filter(patient_id=patient).exists()
    assert await tenant.audit_count() == before
    assert all(report.ok for report in await verify_all(tenant.id))
    lines = told_nothing(caplog, str(patient), "Wang")
    assert len(lines) == 1 and lines[0].startswith("the database could not be reached"), lines

    await answered_normally(tenant, patient)
    assert all(report.ok for report in await verify_all(tenant.id))


@POSTGRES_ONLY
async def test_a_load_that_fails_several_fields_is_one_line(tenant: Tenant, database: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A page's departments load in one statement: its connection killed, each patient's department answers
    UNAVAILABLE, and the log tells the one failure once (found in review: a line per field it failed)."""
    for _ in range(2):
        await make_patient(tenant)

    reply = await kill_midway(database, "department", tenant.call(
        "nurse", "{ patients(first: 2) { nodes { id department { id } } } }"), mode="ACCESS EXCLUSIVE")

    assert reply.codes == ["UNAVAILABLE", "UNAVAILABLE"], reply.body
    assert [node["department"] for node in reply.data["patients"]["nodes"]] == [None, None]
    lines = told_nothing(caplog)
    assert len(lines) == 1 and lines[0].startswith("the database could not be reached"), lines
    assert lines[0].endswith(", 2 fields failed"), lines


@POSTGRES_ONLY
async def test_a_read_whose_audit_append_is_killed_is_answered_with_its_record(tenant: Tenant, database: str) -> None:
    """The group commit writes a failed batch again one request at a time, on a connection of the pool's: the kill
    costs the read nothing, and its record is written."""
    patient = await make_patient(tenant)

    reply = await kill_midway(database, "audit_event, audit_inbox", tenant.call("nurse", READ, id=str(patient)))

    assert not reply.errors and reply.data["patient"]["id"] == str(patient)
    await tenant.audit_count()
    assert await AuditEvent.filter(institution_id=tenant.id, action="read", patient_id=patient).count() == 1
    assert all(report.ok for report in await verify_all(tenant.id))


@contextlib.asynccontextmanager
async def chain_head_held(database_url: str, institution_id: uuid.UUID) -> AsyncIterator[None]:
    """The institution's audit chain head locked by another transaction meanwhile: appends post to the inbox."""
    admin = await asyncpg.connect(database_url)
    try:
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM audit_chain_head WHERE institution_id = $1 FOR UPDATE", institution_id)
            yield
    finally:
        await admin.close()


@POSTGRES_ONLY
@pytest.mark.parametrize("head", ["free", "busy"])
async def test_a_read_whose_audit_append_committed_but_lost_its_answer_is_recorded_once(
        tenant: Tenant, hop: Hop, database: str, services: Services, head: str) -> None:
    """The server commits the group commit's batch and a dropped connection loses its answer: the batch fails, and
    the group commit writes each request's records again, one request at a time (found in review: the read was
    then twice on the trail, each copy with an id of its own). With the head busy both copies wait in the inbox."""
    patient = await make_patient(tenant)
    hop.lose_the_answer_to(b'"body_head"', str(patient).encode())  # the append's events, not the read's query

    async with chain_head_held(database, tenant.id) if head == "busy" else contextlib.nullcontext():
        reply = await tenant.call("nurse", READ, id=str(patient))

    assert not reply.errors and reply.data["patient"]["id"] == str(patient), reply.body
    assert hop.answers_lost == 1
    await tenant.audit_count()  # sealed
    assert await AuditEvent.filter(institution_id=tenant.id, action="read", patient_id=patient).count() == 1
    assert all(report.ok for report in await verify_all(tenant.id, mac_key=services.master_key.audit_mac_key))


@POSTGRES_ONLY
async def test_the_background_loops_lose_no_round_when_their_connections_are_killed(
        database: str, caplog: pytest.LogCaptureFixture) -> None:
    """The outbox deliverer, the audit sealer and a sweep led through the advisory lock, running while every
    connection of the database is killed, three times: they keep running and their next rounds work (the pool and
    the leader's session connect anew). A kill that lands on a statement under way fails that round: told once by
    its kind, and its recovery once."""
    caplog.set_level(logging.INFO)
    rounds = [0]

    async def sweep() -> int:
        rounds[0] += 1
        return await sign_in_limit.forget_past_windows()

    leadership = Leadership(database)
    loops = [asyncio.create_task(sweeps._every(sweeps.Sweep(f"probe {uuid.uuid4().hex}", sweep, 0.02, leadership))),
             asyncio.create_task(checkpoints.seal_waiting(look_every=0.02)),
             asyncio.create_task(outbox.run(lambda: notification.deliver_due(notifier.LoggingSender()),
                                            notification.next_due, asyncio.Event(), poll_seconds=0.02,
                                            log=notifier.log, now=lambda: datetime.now(UTC)))]
    try:
        for _ in range(3):
            await kill_every_connection(database)
            before = rounds[0]
            for _ in range(500):
                if rounds[0] > before + 2:
                    break
                await asyncio.sleep(0.01)
            assert rounds[0] > before + 2, "the sweep stopped running"
        assert not any(loop.done() for loop in loops)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await leadership.close()
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    recovered = [r.getMessage() for r in caplog.records if "works again after" in r.getMessage()]
    assert len(failed) == len(recovered) <= 9, (failed, recovered)
    assert all(" failed (" in line and "Error at " in line for line in failed), failed
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)


@POSTGRES_ONLY
async def test_the_plain_routes_answer_unavailable_while_the_database_cannot_be_reached(
        tenant: Tenant, hop: Hop, caplog: pytest.LogCaptureFixture) -> None:
    """An attachment's download and a partner's token request, which sign in or look up outside GraphQL (found in
    review: the loss escaped the app, a bare 500 and a line of uvicorn's)."""
    hop.refusing = True
    hop.forget()
    await asyncio.sleep(PROBE_AFTER_IDLE_SECONDS)

    download = await tenant.client.get(f"/attachments/{uuid.uuid4()}",
                                       headers={"authorization": f"Bearer {tenant.tokens['nurse']}"})
    token = await tenant.client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                           "client_id": "cl_client", "client_secret": "s3cret"})

    for reply in (download, token):
        assert reply.status_code == 503 and reply.headers["retry-after"] == "5", reply.text
        assert [e["extensions"]["code"] for e in reply.json()["errors"]] == ["UNAVAILABLE"]
    lines = told_nothing(caplog, tenant.tokens["nurse"], "s3cret")
    assert len(lines) == 2 and all(line.startswith("the database could not be reached") for line in lines), lines


@POSTGRES_ONLY
async def test_a_transaction_whose_connection_is_killed_after_its_first_write_answers_unavailable_and_writes_nothing(
        tenant: Tenant, database: str, caplog: pytest.LogCaptureFixture) -> None:
    """patientCreate: the patient's row written in the transaction, its audit append waiting when the connection is
    killed; the rollback then meets a closed connection."""
    before = await tenant.audit_count()
    name = f"Killed Midway {uuid.uuid4().hex[:6]}"

    reply = await kill_midway(database, "audit_event, audit_inbox", tenant.call(
        "front_desk", CREATE_PATIENT, input={"fullName": name, "departmentId": str(tenant.departments["A"].id)},
        anyway=True))

    assert reply.codes == ["UNAVAILABLE"] and reply.data == {"patientCreate": None}, reply.body
    assert await Patient.filter(institution_id=tenant.id).count() == 0
    assert await tenant.audit_count() == before
    assert all(report.ok for report in await verify_all(tenant.id))
    assert len(told_nothing(caplog, name)) == 1

    await answered_normally(tenant, await make_patient(tenant))


@pytest.fixture
async def quick(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose requests have a budget of one second."""
    limits = dataclasses.replace(settings.limits, request_timeout_ms=1000)
    app = create_app(dataclasses.replace(settings, limits=limits), services, manage_database=False)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as http:
        yield http


@POSTGRES_ONLY
async def test_a_request_while_the_server_is_silent_answers_timeout_within_its_budget(
        tenant: Tenant, hop: Hop, quick: httpx.AsyncClient) -> None:
    """Found in review: a request whose statement the server never answered hung for good. Its budget cancelled it,
    and asyncpg, before giving the connection back, waited for the cancel request it sends on a new connection,
    which a silent server never answers either: the TIMEOUT answer never left, and the connection never came back."""
    patient = await make_patient(tenant)
    assert not (await gql(quick, READ, {"id": str(patient)}, tenant.tokens["nurse"])).errors
    hop.answering.clear()
    started = time.monotonic()

    reply = await asyncio.wait_for(gql(quick, READ, {"id": str(patient)}, tenant.tokens["nurse"]), 30)

    assert reply.codes == ["TIMEOUT"], reply.body
    assert time.monotonic() - started < 1 + FINISH_TIMEOUT_SECONDS + 1
    hop.answering.set()
    hop.forget()
    await asyncio.sleep(PROBE_AFTER_IDLE_SECONDS)
    assert not (await gql(quick, READ, {"id": str(patient)}, tenant.tokens["nurse"])).errors


@POSTGRES_ONLY
async def test_a_transaction_whose_server_falls_silent_answers_unavailable_within_seconds_and_writes_nothing(
        tenant: Tenant, hop: Hop, quick: httpx.AsyncClient, database: str) -> None:
    """Found in review: patientCreate, its patient's row written and its audit append waiting when the server fell
    silent, hung for good: cancelled by its budget, its ROLLBACK waited for an answer that never came. The
    connection is now closed once the ROLLBACK has waited FINISH_TIMEOUT_SECONDS, and the rollback's failure is
    the answer (UNAVAILABLE)."""
    admin = await asyncpg.connect(database)
    waiting = f"{OTHERS} AND wait_event_type = 'Lock'"
    name = f"Silent Midway {uuid.uuid4().hex[:6]}"
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE audit_event, audit_inbox IN EXCLUSIVE MODE")
            call = asyncio.create_task(gql(quick, CREATE_PATIENT, {"input": {
                "fullName": name, "departmentId": str(tenant.departments["A"].id)}, "anyway": True},
                tenant.tokens["front_desk"]))
            await until(admin, waiting, present=True, unless=call)
            hop.answering.clear()
            started = time.monotonic()
        reply = await asyncio.wait_for(call, 30)
    finally:
        await admin.close()

    assert reply.codes == ["UNAVAILABLE"], reply.body
    assert time.monotonic() - started < 1 + FINISH_TIMEOUT_SECONDS + 1
    hop.answering.set()
    hop.forget()
    await asyncio.sleep(PROBE_AFTER_IDLE_SECONDS)
    assert await Patient.filter(institution_id=tenant.id).count() == 0
    assert all(report.ok for report in await verify_all(tenant.id))
    await answered_normally(tenant, await make_patient(tenant))
