"""Several careloop nodes against one database: the background jobs run once across the fleet.

Two real processes run one round of what every node runs beside the API (``app.checkpoints``' signer and the
message outbox's deliverer) against the same PostgreSQL database at the same moment: each message is handed
to a gateway once, the signer runs on one node only (an advisory lock), and each chain head is signed once.
Leadership itself (who leads, and the take-over when the leader stops) is checked on both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app import sweeps
from app.leader import STATEMENT_TIMEOUT_SECONDS, Leadership
from core.settings import Settings
from models import AuditChainHead, AuditCheckpoint, Communication
from resolvers.context import Services
from tests.app.test_message_outbox import DAY, queue, reachable
from tests.conftest import BACKEND
from tests.factories import Tenant

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 40
# One node's round: sign if it leads, meet the other node, deliver what is due, report.
NODE = """
import asyncio, json, os, sys, time
from datetime import datetime
from pathlib import Path
from app import checkpoints, db
from app import sweeps
from app.leader import Leadership
from app.services import build_services
from core.settings import load_settings
from resolvers import communication

class Gateway:
    def __init__(self) -> None:
        self.sent: list[str] = []
    async def send(self, message) -> str:
        await asyncio.sleep(0.01)  # a gateway's round trip: the other node claims meanwhile
        self.sent.append(str(message.communication_id))
        return "gw-" + str(message.communication_id)

async def main() -> None:
    meeting, me, now = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
    settings = load_settings()
    services = build_services(settings)
    await db.open_database(settings.database_url)
    leadership = Leadership(settings.database_url)
    try:
        signed = await checkpoints.sign_if_leader(settings, services, leadership)
        (meeting / me).touch()
        deadline = time.monotonic() + 120
        while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        gateway = Gateway()
        await communication.deliver_due(services, dict.fromkeys(("sms", "email", "wechat", "app"), gateway),
                                        now=now, batch=4)
        print(json.dumps({"led": signed is not None,
                          "signed": [[c.institution_id, c.last_seq] for c in signed or []],
                          "sent": gateway.sent}))
    finally:
        await leadership.close()
        await db.close_database()

asyncio.run(main())
"""


def start_node(settings: Settings, database: str, meeting: Path, name: str) -> subprocess.Popen[str]:
    env = {"PATH": os.environ.get("PATH", ""), "CARELOOP_DATABASE_URL": database,
           "CARELOOP_MASTER_KEY": settings.master_key or "", "CARELOOP_ATTACHMENT_DIR": str(settings.attachment_dir),
           "CARELOOP_CHECKPOINT_EVERY_EVENTS": "1", "CARELOOP_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-c", NODE, str(meeting), name, DAY.isoformat()], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report(node: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = node.communicate(timeout=240)
    assert node.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.skipif(BACKEND == "sqlite", reason="several nodes share a PostgreSQL server")
async def test_two_nodes_deliver_each_message_once_and_sign_each_head_once(
        tenant: Tenant, settings: Settings, database: str, tmp_path: Path) -> None:
    patient = await reachable(tenant)
    queued = {str((await queue(tenant, patient, f"fleet:{n}")).id) for n in range(MESSAGES)}
    head = (await AuditChainHead.get(institution_id=tenant.id)).last_seq
    meeting = tmp_path / "meeting"
    meeting.mkdir()

    nodes = [start_node(settings, database, meeting, name) for name in ("a", "b")]
    reports = await asyncio.gather(*(asyncio.to_thread(report, node) for node in nodes))

    # Every message went to a gateway exactly once, whichever node claimed it.
    handed = Counter(i for r in reports for i in r["sent"] if i in queued)
    assert set(handed) == queued and set(handed.values()) == {1}
    rows = await Communication.filter(id__in=[uuid.UUID(i) for i in queued])
    assert {row.status for row in rows} == {"sent"} and {row.attempts for row in rows} == {1}

    # One node led the signer; it signed this institution's head, once.
    assert sorted(r["led"] for r in reports) == [False, True]
    follower = next(r for r in reports if not r["led"])
    assert follower["signed"] == []
    leader = next(r for r in reports if r["led"])
    assert [str(tenant.id), head] in leader["signed"]
    assert await AuditCheckpoint.filter(institution_id=tenant.id, last_seq=head).count() == 1


async def test_one_node_leads_a_job_and_another_takes_over_when_it_stops(settings: Settings, database: str) -> None:
    first, second = Leadership(database), Leadership(database)
    job = f"test-job-{uuid.uuid4().hex[:8]}"
    try:
        assert await first.leads(job)
        assert not await second.leads(job)
        assert await first.leads(job)  # still the leader, round after round
        assert await second.leads(f"{job}-other")  # leadership is per job
        await first.close()
        assert await second.leads(job)  # the lock went with the first node's session
        assert not await first.leads(job)
    finally:
        await first.close()
        await second.close()


async def test_each_sweep_runs_on_one_node(services: Services, database: str) -> None:
    node_a, node_b = sweeps.of(services), sweeps.of(services)
    try:
        led_a = [await sweeps.leads(sweep) for sweep in node_a]
        led_b = [await sweeps.leads(sweep) for sweep in node_b]
        assert all(led_a) and not any(led_b)  # the first to ask leads every sweep; the other runs none
    finally:
        for node in (node_a, node_b):
            lead = node[0].leadership
            assert lead is not None and all(sweep.leadership is lead for sweep in node)
            await lead.close()


class SilentPath:
    """A TCP relay to the database that can go silent: bytes stop flowing both ways, the sockets stay open (a
    network path dropping packets, as a partition does; neither end hears a reset)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()

        with contextlib.suppress(Exception):
            await asyncio.gather(pump(client_in, server_out), pump(server_in, client_out))

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.skipif(BACKEND == "sqlite", reason="the advisory lock's connection is PostgreSQL's")
async def test_a_leader_whose_server_falls_silent_stops_leading_within_seconds(database: str) -> None:
    url = urlsplit(database)
    path = SilentPath(url.hostname or "127.0.0.1", url.port or 5432)
    port = await path.start()
    through_path = url._replace(netloc=f"{url.username}@127.0.0.1:{port}").geturl()
    leader, other = Leadership(through_path), Leadership(database)
    job = f"test-job-{uuid.uuid4().hex[:8]}"
    try:
        assert await leader.leads(job)
        path.flowing.clear()
        started = asyncio.get_running_loop().time()
        # the proof of its session goes unanswered: no longer the leader, after seconds (not the kernel's
        # quarter of an hour, during which every sweep of the node waited for the lock's connection)
        assert not await asyncio.wait_for(leader.leads(job), 30)
        assert asyncio.get_running_loop().time() - started < STATEMENT_TIMEOUT_SECONDS + 5
        assert not await other.leads(job)  # the server has not seen the session go: its lock holds yet
    finally:
        path.flowing.set()
        await leader.close()
        await other.close()
        path.close()


@pytest.mark.skipif(BACKEND == "sqlite", reason="the advisory lock's session is PostgreSQL's")
async def test_the_server_probes_a_leaders_session_so_a_vanished_node_loses_its_locks_within_a_minute(
        database: str) -> None:
    leader = Leadership(database)
    try:
        assert await leader.leads(f"test-job-{uuid.uuid4().hex[:8]}")
        session = leader._connection  # the lock's own session: how the server watches it is what matters here
        assert session is not None
        probes = dict(await session.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                                          ["tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"]))
        # a first probe after 30 s idle, then every 10 s, 3 unanswered end the session: about a minute, where the
        # server's defaults (the kernel's: 2 hours idle, then 9 probes 75 s apart) left a dead node's locks held
        assert int(probes["tcp_keepalives_idle"]) + int(probes["tcp_keepalives_interval"]) * int(
            probes["tcp_keepalives_count"]) <= 60
        assert all(int(value) > 0 for value in probes.values())
    finally:
        await leader.close()
