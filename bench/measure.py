"""Checks and counts that need no load: same answers from both servers, SQL statements per request,
`careloop audit verify` and audit append throughput."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp
from tortoise import Tortoise

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from bench.roundtrips import RoundTripProxy
from bench.servers import ROOT, Server
from bench.workloads import Request
from models import AuditEvent


class Mismatch(Exception):
    """careloop and the baseline answered the same request differently."""


def first_difference(a: Any, b: Any, path: str = "$") -> str | None:
    """Where two parsed JSON values first differ, or None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'careloop' if key in a else 'baseline'}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in careloop, {len(b)} in baseline"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := first_difference(x, y, f"{path}[{i}]"))), None)
    return None if a == b else f"{path}: careloop {a!r} != baseline {b!r}"


def check_same(careloop: Server, baseline: Server, request: Request, token: str) -> int:
    """Ask the baseline first (careloop's own read audit would otherwise show in W4), then careloop."""
    expected = baseline.post(request, None)
    got = careloop.post(request, token)
    if "errors" in got or "errors" in expected:
        raise Mismatch(f"{request.name}: errors in an answer: {got.get('errors') or expected.get('errors')}")
    difference = first_difference(got, expected)
    if difference:
        raise Mismatch(f"{request.name}: careloop and the baseline differ at {difference}")
    items = request_items(got)
    if not items or items == [None]:
        raise Mismatch(f"{request.name}: both answered with no data, nothing was compared")
    return len(items)


def request_items(answer: dict) -> list:
    data = next(iter(answer["data"].values()))
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("edges", "nodes"):
            if key in data:
                return list(data[key])
    return [data]


# -- SQL statements per request ------------------------------------------------------------


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def tortoise_statements() -> Iterator[_Count]:
    """Count the statements Tortoise sends: ``tortoise.db_client`` logs one line per statement at DEBUG
    (BEGIN/COMMIT are not among them)."""
    logger = logging.getLogger("tortoise.db_client")
    handler, level, propagate = _Count(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@dataclass(frozen=True)
class Cost:
    """What one request costs the database, averaged over the counted requests."""

    statements: float  # careloop: Tortoise's statements (no BEGIN/COMMIT); baseline: its own count
    round_trips: float  # client-to-server exchanges on the wire (bench.roundtrips), the same count for both
    audit_rows: float = 0.0
    database_ms: float | None = None  # PostgreSQL's CPU time (every postgres process of the machine), None: unknown


def postgres_cpu_ns() -> int | None:
    """On-CPU nanoseconds used so far by every PostgreSQL process of this machine (``/proc/<pid>/schedstat``:
    backends, the WAL writer and the rest, whose work a commit causes too); None where ``/proc`` does not say."""
    total, found = 0, False
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            with open(f"/proc/{entry.name}/schedstat") as stat:
                total += int(stat.read().split()[0])
                found = True
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return total if found else None


def _database_ms(before: int | None, after: int | None, repeat: int) -> float | None:
    return None if before is None or after is None else (after - before) / repeat / 1e6


async def careloop_cost(app: ASGIApp, request: Request, token: str, repeat: int, proxy: RoundTripProxy) -> Cost:
    """Statements, round trips and audit rows per request, running careloop's app in this process
    (httpx.ASGITransport) with Tortoise connected through the proxy."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    bodies = itertools.cycle(request.bodies)  # W3: a patient each, in turn
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        await client.post("/graphql", content=next(bodies), headers=headers)  # warm the key ring and caches
        audit_rows = await AuditEvent.all().count()
        round_trips = proxy.round_trips
        with tortoise_statements() as counter:
            cpu = postgres_cpu_ns()
            for _ in range(repeat):
                answer = (await client.post("/graphql", content=next(bodies), headers=headers)).json()
                if "errors" in answer:
                    raise RuntimeError(f"{request.name} in process: {answer['errors']}")
            database_ms = _database_ms(cpu, postgres_cpu_ns(), repeat)
        round_trips = proxy.round_trips - round_trips
        audit_rows = await AuditEvent.all().count() - audit_rows
        return Cost(counter.count / repeat, round_trips / repeat, audit_rows / repeat, database_ms)


async def baseline_cost(app: ASGIApp, request: Request, repeat: int, proxy: RoundTripProxy) -> Cost:
    """Statements (its own count, GET /stats) and round trips per request of the baseline's app in this
    process, its pool connected through the proxy (started by the caller with the app's lifespan)."""
    bodies = itertools.cycle(request.bodies)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        await client.post("/graphql", content=next(bodies))  # warm the pool and the prepared statements

        async def statements() -> int:
            return int((await client.get("/stats")).json()["statements"])

        before, round_trips = await statements(), proxy.round_trips
        cpu = postgres_cpu_ns()
        for _ in range(repeat):
            answer = (await client.post("/graphql", content=next(bodies))).json()
            if "errors" in answer:
                raise RuntimeError(f"{request.name} in the baseline: {answer['errors']}")
        database_ms = _database_ms(cpu, postgres_cpu_ns(), repeat)
        round_trips = proxy.round_trips - round_trips
        return Cost((await statements() - before) / repeat, round_trips / repeat, database_ms=database_ms)


# -- the audit chain -----------------------------------------------------------------------


def verify_seconds(env: dict[str, str], institution_id: uuid.UUID, *, check: bool = True) -> float:
    """Wall time of ``careloop audit verify --institution ID``; with ``check``, fails unless the chain is intact."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 -- our own interpreter and arguments
        [sys.executable, "-m", "app.cli", "audit", "verify", "--institution", str(institution_id)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(f"careloop audit verify failed ({done.returncode}): {done.stdout}{done.stderr}")
    return seconds


async def append_throughput(institution_id: uuid.UUID, writers: int, seconds: float) -> tuple[int, float]:
    """Events appended by ``writers`` concurrent tasks, each calling audit.writer.append in its own
    transaction, one record at a time; returns (events, elapsed seconds)."""
    actor = Actor("staff", uuid.uuid4())
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def write(n: int) -> None:
        meta = RequestMeta(request_id=f"bench-append-{n}", client_address="127.0.0.1", user_agent="careloop-bench")
        while time.perf_counter() < deadline:
            await writer.append([AuditRecord(institution_id, actor, Action.READ, "patient", Outcome.ALLOWED, meta,
                                             resource_id=uuid.uuid4(), field_classes=frozenset({"identity"}))])
            counts[n] += 1

    start = time.perf_counter()
    await asyncio.gather(*(write(n) for n in range(writers)))
    return sum(counts), time.perf_counter() - start


async def sealing_window(institution_id: uuid.UUID, until: asyncio.Future[Any], every: float = 0.01) -> list[float]:
    """PostgreSQL: the age in seconds of the oldest event waiting in the chain's inbox, sampled every ``every``
    seconds until ``until`` is done (how long an event waits before it is sealed into the chain)."""
    db = Tortoise.get_connection("default")
    ages = []
    while not until.done():
        [row] = await db.execute_query_dict(
            "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS age "
            "FROM audit_inbox WHERE institution_id = $1", [institution_id])
        ages.append(float(row["age"]))
        await asyncio.sleep(every)
    return ages
