"""The audit trail's totalCount on a long trail (PostgreSQL): ``auditEvents(first: 1) { totalCount }`` counted
with ``count(*)`` (before) and read off the chain head and the newest archive anchor (after,
``audit.archive.events_held``), and what the partner's ``partnerAccessLog`` count costs on the same trail.

A fresh database (created through ``--admin-url`` and dropped), careloop's migrations, the bench's institution and
compliance officer (``bench.dataset.create_tenant``), then ``--events`` read events on its chain, of which
``--partner-events`` by one partner client (``bench.dataset.append_audit_events``: COPY, hashed as the writer
hashes, the head moved to the last); ``count(*)`` once before ``VACUUM ANALYZE`` (every heap page read too), then after
it (the best case for ``count(*)``: an index-only scan).
Measured: each statement alone (median of ``--runs``, on one connection, with its ``EXPLAIN (ANALYZE, BUFFERS)``),
and the officer's request through the API in this process (``httpx.ASGITransport``), with the count done as
before (``count(*)`` patched in) and as now. ``python -m bench.trail_count [--events 1000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import httpx

from app import db
from app.main import create_app
from app.services import build_services
from audit import archive
from bench import dataset
from bench.run import ARGON2
from bench.survey_report import LOGIN
from core.settings import Settings
from models import AuditEvent

COUNT_STAR = 'SELECT COUNT(*) FROM "audit_event" WHERE "institution_id"=$1'  # the statement count_of sent
HELD = archive._HELD.format("$1", "$2")
PARTNER_LOG = ('SELECT COUNT(*) FROM "audit_event" WHERE "institution_id"=$1 AND "actor_kind"=\'partner\' '
               'AND "actor_id"=ANY($2::uuid[])')  # partnerAccessLog's count, for a partner with one client
TOTAL = "query { auditEvents(first: 1) { totalCount nodes { seq } } }"
PAGE = "query { auditEvents(first: 1) { nodes { seq } } }"


def say(message: str) -> None:
    print(f"[trail-count] {message}", flush=True)


async def timed(run: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any]:
    """The median time of ``runs`` calls (ms) after one warm-up, and the last answer."""
    answer = await run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), answer


async def statements(url: str, institution_id: uuid.UUID, partner: uuid.UUID, runs: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        found = {}
        checks: list[tuple[str, str, list[Any]]] = [
            ("count(*)", COUNT_STAR, [institution_id]), ("head - anchor", HELD, [str(institution_id)] * 2),
            ("partnerAccessLog count", PARTNER_LOG, [institution_id, [partner]])]
        for name, sql, values in checks:
            ms, value = await timed(partial(conn.fetchval, sql, *values), runs)
            plan = [row[0] for row in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)]
            found[name] = {"median_ms": ms, "value": value, "plan": plan}
            say(f"{name}: {value:,} in {ms:.2f} ms")
        return found
    finally:
        await conn.close()


async def requests(app: Any, password: str, runs: int, monkey: Callable[[bool], None]) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                 timeout=300) as client:
        login = (await client.post("/graphql", json={"query": LOGIN, "variables": {
            "e": dataset.OFFICER_EMAIL, "p": password}})).json()
        headers = {"authorization": f"Bearer {login['data']['login']['token']}"}

        async def ask(query: str) -> Any:
            reply = (await client.post("/graphql", json={"query": query}, headers=headers)).json()
            assert "errors" not in reply, reply
            return reply["data"]["auditEvents"].get("totalCount")

        found = {}
        for name, query, before in [("page without totalCount", PAGE, False),
                                    ("with totalCount, count(*) (before)", TOTAL, True),
                                    ("with totalCount, head - anchor (after)", TOTAL, False)]:
            monkey(before)
            ms, value = await timed(partial(ask, query), runs)
            found[name] = {"median_ms": ms, "value": value}
            say(f"request {name}: {ms:.1f} ms (totalCount {value})")
        monkey(False)
        return found


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    name = f"careloop_bench_trail_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    await dataset.create_database(args.admin_url, name)
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        settings = Settings(database_url=url, environment="production", log_level="WARNING",
                            master_key=base64.b64encode(os.urandom(32)).decode(), password_hashing=ARGON2)
        password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        await db.migrate(url)
        await db.open_database(url)
        try:
            services = build_services(settings)
            tenant = await dataset.create_tenant(services, password)
            partner = uuid.uuid4()
            started = time.perf_counter()
            await dataset.append_audit_events(url, tenant.institution_id, tenant.nurse_id,
                                              args.events - args.partner_events)
            await dataset.append_audit_events(url, tenant.institution_id, partner, args.partner_events, "partner")
            conn = await asyncpg.connect(url)
            fresh, _ = await timed(lambda: conn.fetchval(COUNT_STAR, tenant.institution_id), args.runs)
            say(f"count(*) before VACUUM (no page all-visible yet: the heap is read too): {fresh:.2f} ms")
            await conn.execute("VACUUM ANALYZE audit_event")
            size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('audit_event'))")
            await conn.close()
            say(f"{args.events:,} events loaded in {time.perf_counter() - started:.0f}s ({size} with indexes)")
            found = {"events": args.events, "partner_events": args.partner_events, "size": size, "fresh_ms": fresh,
                     "statements": await statements(url, tenant.institution_id, partner, args.runs)}

            held = archive.events_held

            async def as_before(institution_id: uuid.UUID) -> int:
                return await AuditEvent.filter(institution_id=institution_id).count()

            def monkey(before: bool) -> None:
                archive.events_held = as_before if before else held

            app = create_app(settings, services, manage_database=False)
            found["requests"] = await requests(app, password, args.runs, monkey)
            return found
        finally:
            await db.close_database()
    finally:
        await dataset.drop_database(args.admin_url, name)


def markdown(found: dict[str, Any]) -> list[str]:
    lines = [f"{found['events']:,} events ({found['partner_events']:,} of them one partner client's), "
             f"audit_event {found['size']}, after VACUUM ANALYZE.", "",
             "| what | median ms | answer |", "|---|---|---|",
             f"| statement: count(*), before VACUUM | {found['fresh_ms']:.2f} | |"]
    lines += [f"| statement: {name} | {r['median_ms']:.2f} | {r['value']:,} |" for name, r in
              found["statements"].items()]
    lines += [f"| request: {name} | {r['median_ms']:.1f} | {r['value']} |" for name, r in found["requests"].items()]
    for name, r in found["statements"].items():
        lines += ["", f"{name}:", "```", *r["plan"], "```"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partner-events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    print("\n".join(markdown(asyncio.run(measure(parser.parse_args())))))


if __name__ == "__main__":
    main()
