"""Several stateless workers on one PostgreSQL database, as production runs them.

Real `careloop serve` processes over real sockets: the audit chain stays gap-free and verifiable
under concurrent writers in two worker processes, and a change made through one worker (a role,
a token, a care team) takes effect on the next request in another.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from tortoise import connections

from app.principals import APPLICATION_NAME
from audit.verify import verify_all
from core.settings import Settings
from models import AuditChainHead
from tests.conftest import BACKEND
from tests.factories import Response, Tenant, make_patient

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="several workers need PostgreSQL")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(database: str, settings: Settings, *workers: int) -> Iterator[list[str]]:
    """A `careloop serve --workers N` for each N, started side by side (each takes seconds to import the app, more
    on a machine busy with the rest of the suite), their URLs once every one is ready."""
    env = {"PATH": os.environ.get("PATH", ""), "CARELOOP_DATABASE_URL": database,
           "CARELOOP_MASTER_KEY": settings.master_key or "", "CARELOOP_ARGON2_TIME_COST": "1",
           "CARELOOP_ARGON2_MEMORY_KIB": "1024", "CARELOOP_ARGON2_PARALLELISM": "1", "CARELOOP_LOG_LEVEL": "WARNING"}
    servers = []
    try:
        for count in workers:
            port = _free_port()
            # its log to a file, not a pipe nobody reads (a server that logs enough would block on a full pipe), and
            # told when it does not start (its start-up error was invisible)
            log = tempfile.TemporaryFile()
            process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
                                        str(count)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
            servers.append((process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 60  # workers importing on a machine busy with the rest of the suite
        for process, url, log in servers:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                log.seek(0)
                raise RuntimeError("careloop serve did not become ready:\n"
                                   + log.read()[-3000:].decode(errors="replace"))
        yield [url for _, url, _ in servers]
    finally:
        for process, _, _ in servers:
            process.terminate()
        for process, _, log in servers:
            process.wait(timeout=20)
            log.close()


@pytest.fixture(scope="module")
def two_workers(database: str, settings: Settings) -> Iterator[str]:
    """One server for the module's tests (starting one costs seconds; each test has an institution of its own)."""
    for [url] in _serve(database, settings, 2):
        yield url


@pytest.fixture
def workers_a_and_b(database: str, settings: Settings) -> Iterator[list[str]]:
    """Two servers of one worker each, started together."""
    yield from _serve(database, settings, 1, 1)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def call(http: httpx.AsyncClient, url: str, token: str, query: str, **variables: object) -> Response:
    reply = await http.post(f"{url}/graphql", json={"query": query, "variables": variables},
                            headers={"authorization": f"Bearer {token}"})
    return Response(reply.status_code, reply.json())


CREATE = "mutation($n: String!) { patientCreate(input: {fullName: $n}, registerAnyway: true) { patient { id } } }"
READ = "query($id: ID!) { patient(id: $id) { fullName diagnoses } }"


async def test_eight_clients_two_workers_keep_the_chain_gap_free(
    tenant: Tenant, two_workers: str, http: httpx.AsyncClient
) -> None:
    before = await tenant.audit_count()

    async def client(n: int) -> None:
        for i in range(6):
            created = await call(http, two_workers, tenant.tokens["nurse"], CREATE, n=f"Client {n} patient {i}")
            assert not created.errors, created.errors
            pid = created.data["patientCreate"]["patient"]["id"]
            assert not (await call(http, two_workers, tenant.tokens["nurse"], READ, id=pid)).errors

    await asyncio.gather(*(client(n) for n in range(8)))

    # sealed first, as the service's readers do: the last writer may have left its event in the inbox for a head
    # another worker held (the count was one short under load without it)
    seqs = [e.seq for e in await tenant.audit_events()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) - before == 8 * 6 * 2  # per patient: the write and the read (selecting only id reads no class)
    head = await AuditChainHead.get(institution_id=tenant.id)
    assert head.last_seq == len(seqs)
    (report,) = await verify_all(tenant.id)
    assert report.ok, report.problem


async def test_changes_through_one_worker_take_effect_in_another(
    tenant: Tenant, workers_a_and_b: list[str], http: httpx.AsyncClient
) -> None:
    worker_a, worker_b = workers_a_and_b
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    nurse, admin = tenant.tokens["nurse"], tenant.tokens["admin"]
    nurse_id = str(tenant.staff_ids["nurse"])
    assert (await call(http, worker_b, nurse, READ, id=str(pid))).codes == ["NOT_FOUND"]  # B's worker caches

    assign = "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }"
    assert not (await call(http, worker_a, admin, assign, p=str(pid), s=nurse_id)).errors
    assert (await call(http, worker_b, nurse, READ, id=str(pid))).errors == []

    revoke = "mutation($s: ID!) { roleRevoke(staffId: $s, role: NURSE) { roles } }"
    assert not (await call(http, worker_a, admin, revoke, s=nurse_id)).errors
    assert (await call(http, worker_b, nurse, READ, id=str(pid))).codes == ["NOT_FOUND"]

    grant = "mutation($s: ID!) { roleAssign(staffId: $s, role: NURSE) { roles } }"
    assert not (await call(http, worker_a, admin, grant, s=nurse_id)).errors
    assert (await call(http, worker_b, nurse, READ, id=str(pid))).errors == []

    assert not (await call(http, worker_a, nurse, "mutation { logout }")).errors
    assert (await call(http, worker_b, nurse, READ, id=str(pid))).codes == ["UNAUTHENTICATED"]


async def _fresh(url: str, token: str, query: str, **variables: object) -> Response:
    """A request on a connection of its own, so the server's workers share them out."""
    async with httpx.AsyncClient(timeout=30) as http:
        return await call(http, url, token, query, **variables)


async def _listening(within: float = 20) -> int:
    """How many workers' principal listeners are connected to the database (the cache live in each)."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"
    deadline = time.monotonic() + within
    while True:
        (count,) = (await connections.get("default").execute_query(sql, [APPLICATION_NAME]))[1][0].values()
        if count >= 2 or time.monotonic() > deadline:
            return int(count)
        await asyncio.sleep(0.1)


ME = "{ me { id roles } }"


@pytest.mark.parametrize("how", ["logout", "deactivation"])
async def test_a_revocation_reaches_every_workers_principal_cache_on_the_next_request(
    tenant: Tenant, two_workers: str, how: str
) -> None:
    """Both workers' caches warmed with many requests on fresh connections, then the session revoked (the
    nurse's logout, or the admin deactivating her): every request after that is refused, whichever worker
    takes it."""
    assert await _listening() == 2  # each worker listens, so each answers signed-in requests from memory
    nurse = tenant.tokens["nurse"]
    warm = await asyncio.gather(*(_fresh(two_workers, nurse, ME) for _ in range(40)))
    assert all(reply.errors == [] for reply in warm)
    for _ in range(20):  # and again one by one, so both workers hold the entry
        assert (await _fresh(two_workers, nurse, ME)).errors == []

    if how == "logout":
        revoked = await _fresh(two_workers, nurse, "mutation { logout }")
    else:
        revoked = await _fresh(two_workers, tenant.tokens["admin"],
                               "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { active } }",
                               id=str(tenant.staff_ids["nurse"]))
    assert revoked.errors == [], revoked.errors

    after = [await _fresh(two_workers, nurse, ME) for _ in range(20)]
    assert [reply.codes for reply in after] == [["UNAUTHENTICATED"]] * 20
    assert (await _fresh(two_workers, tenant.tokens["doctor"], ME)).errors == []  # others sign in as before
