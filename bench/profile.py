"""Where careloop's time goes on one workload: `python -m bench.profile W1 [--requests 300]`.

Loads a small data set into a fresh PostgreSQL database (as `make bench` does), runs the workload
sequentially in this process through `httpx.ASGITransport` under cProfile, and prints the functions
with the most cumulative and own time. No wrk, no baseline: this is for finding hot spots, the
ratios come from `make bench`.

`python -m bench.profile C1 [--database sqlite] [--recipients 10000]`: the campaign of `make bench`'s C1
(`bench.campaign`), with cProfile on from campaignStart to the last message settled.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx

from app import db
from app.main import create_app, settle_garbage_collection
from app.services import build_services
from bench import campaign, dataset, workloads
from bench.run import ARGON2, Bench, careloop_env, load, principal_cache
from core.settings import Settings


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all processes, from /proc/stat)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def _login(client: httpx.AsyncClient, email: str, password: str) -> str:
    body = {"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            "variables": {"e": email, "p": password}}
    return str((await client.post("/graphql", json=body)).json()["data"]["login"]["token"])


@contextlib.asynccontextmanager
async def workload_client(args: argparse.Namespace
                          ) -> AsyncIterator[tuple[httpx.AsyncClient, Iterator[bytes], dict[str, str]]]:
    """A fresh PostgreSQL database loaded as ``make bench`` loads it (``args.patients``), the app over it in this
    process (principal listener running, as under the server's lifespan), and the workload's account signed in:
    the client, the request bodies, taken in turn (``args.workload``'s, W3's a patient each, or ``args.query``),
    and their headers, caches warmed and the
    garbage collector settled. The database is dropped afterwards unless ``args.keep``."""
    name = f"careloop_profile_{datetime.now(UTC):%Y%m%d%H%M%S}_{os.getpid()}"
    dsn = args.admin_url.rsplit("/", 1)[0] + "/" + name
    master_key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(database_url=dsn, environment="production", master_key=master_key,
                        password_hashing=ARGON2, log_level="WARNING")
    load_args = argparse.Namespace(patients=args.patients, contacts=args.patients * 5 // 2, audit_events=1000,
                                   tasks=600, index_contacts=False, clinicians=20,
                                   workloads=",".join(sorted(workloads.DOCUMENTS)))
    bench = Bench(load_args, dsn, settings, careloop_env(dsn, master_key), secrets.token_urlsafe(18))
    await dataset.create_database(args.admin_url, name)
    try:
        await load(bench)
        services = build_services(settings)
        app = create_app(settings, services, manage_database=False)
        transport = httpx.ASGITransport(app=app)
        # the principal cache answers only while its listener listens, as under the server's lifespan
        async with principal_cache(services, dsn), \
                httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            email = dataset.OFFICER_EMAIL if args.workload == "W4" else dataset.NURSE_EMAIL
            token = await _login(client, email, bench.password)
            bodies = itertools.cycle(bench.requests(args.first)[args.workload].bodies if args.query is None
                                     else [json.dumps({"query": args.query}).encode()])
            headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            for _ in range(20):  # warm caches
                await client.post("/graphql", content=next(bodies), headers=headers)
            settle_garbage_collection()  # as the server's lifespan does, which ASGITransport does not run
            yield client, bodies, headers
    finally:
        await db.close_database()
        if args.keep:
            print(f"kept the database: {dsn}")
        else:
            await dataset.drop_database(args.admin_url, name)


async def profile(args: argparse.Namespace) -> None:
    async with workload_client(args) as (client, bodies, headers):
        profiler = cProfile.Profile()
        started, cpu, machine = time.perf_counter(), time.process_time(), _busy_seconds()
        if not args.plain:
            profiler.enable()
        for _ in range(args.requests):
            answer = (await client.post("/graphql", content=next(bodies), headers=headers)).json()
            assert "errors" not in answer, answer["errors"]
        profiler.disable()
        elapsed = time.perf_counter() - started
        cpu, machine = time.process_time() - cpu, _busy_seconds() - machine
    print(f"{args.workload}: {args.requests} requests in {elapsed:.2f}s{'' if args.plain else ' under cProfile'} "
          f"({elapsed / args.requests * 1000:.2f} ms each, sequential, one connection); CPU per request: "
          f"{cpu / args.requests * 1000:.2f} ms in this process, {machine / args.requests * 1000:.2f} ms "
          "on the whole machine (PostgreSQL included)")
    if args.plain:
        return
    if args.dump:
        profiler.dump_stats(args.dump)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


async def profile_campaign(args: argparse.Namespace) -> None:
    c1 = argparse.Namespace(admin_url=args.admin_url, recipients=args.recipients, campaign_probe_ms=0)
    profiler = cProfile.Profile()
    result = await campaign.measure_one(args.database, c1, ARGON2, datetime.now(UTC), profiler)
    careloop = result["careloop"]
    print(f"C1 on {args.database}: {careloop['settled']:,} messages settled in {careloop['wall_s']:.1f}s under "
          f"cProfile (baseline {result['baseline']['wall_s']:.1f}s)")
    if args.dump:
        profiler.dump_stats(args.dump)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=[*sorted(workloads.DOCUMENTS), "C1"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--first", type=int, default=50)
    parser.add_argument("--query", help="send this GraphQL document instead of the workload's, as the workload's "
                        "account (for instance '{ __typename }' for the fixed cost of a request)")
    parser.add_argument("--plain", action="store_true", help="no cProfile: time only (or run under py-spy)")
    parser.add_argument("--dump", help="also write the raw cProfile stats to this file (for pstats)")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--keep", action="store_true", help="keep the loaded database (to EXPLAIN its statements)")
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres", help="C1 only")
    parser.add_argument("--recipients", type=int, default=10_000, help="C1 only")
    args = parser.parse_args()
    asyncio.run(profile_campaign(args) if args.workload == "C1" else profile(args))


if __name__ == "__main__":
    main()
