"""``make bench`` (``python -m bench.run``): careloop against a bare baseline on PostgreSQL, driven by wrk.

One run: a fresh database with deterministic data, careloop (``careloop serve``, production settings)
and the baseline as real servers, the same answers checked, W0-W6 measured in rounds, then growth
(page size, data size, audit verify and append); then C1, a campaign to 10,000 recipients run in this
process on PostgreSQL and SQLite (``bench.campaign``). Results go to bench/results/<UTC time>.md and .json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx

from app import db
from app.main import create_app
from app.principals import PrincipalListener
from app.services import Services, build_services
from audit import writer
from bench import baseline, campaign, dataset, measure, report, roundtrips, servers, survey_report, workloads
from bench.servers import Server, WrkResult
from bench.workloads import Request
from core.passwords import HashParameters
from core.settings import Settings
from resolvers import pagination
from resolvers.follow_up import TASK_CURSOR

W3_PATIENTS = 2_000  # W3's files, taken in turn
GOALS = {"W1": 0.30, "W2": 0.30, "W3": 0.30, "W4": 0.25}  # issue 17's (the first bench issue's: 0.45, 0.66, 0.66)
# Strong enough for production's OWASP check, cheap enough for the two sign-ins of a run.
ARGON2 = HashParameters(time_cost=2, memory_cost_kib=19456, parallelism=1)
POOL = "?maxsize=20"  # this process's connections: 16 audit writers each hold one


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=20_000)
    p.add_argument("--contacts", type=int, default=50_000)
    p.add_argument("--audit-events", type=int, default=5_000, help="events in the chain before the run (W4)")
    p.add_argument("--tasks", type=int, default=600,
                   help="follow-up tasks, mostly the nurse's, due today or before (W5)")
    p.add_argument("--clinicians", type=int, default=20,
                   help="clinicians of the outpatient department, one schedule each (W6)")
    p.add_argument("--workloads", default="W0,W1,W2,W3,W4,W5,W6,C1,R1",
                   help="the workloads to measure (comma-separated)")
    p.add_argument("--recipients", type=int, default=10_000, help="C1: patients the campaign is sent to")
    p.add_argument("--campaign-databases", default="postgres,sqlite", help="C1: the databases to run it on")
    p.add_argument("--campaign-probe-ms", type=float, default=200,
                   help="C1: a logged call through the API this often while the campaign runs (0: none)")
    survey_report.add_arguments(p)  # R1: --responses, --report-requests, --report-databases
    p.add_argument("--rounds", type=int, default=3, help="rounds of every measurement; the median is reported")
    p.add_argument("--seconds", type=float, default=8, help="wrk -d of each measurement")
    p.add_argument("--warmup", type=float, default=2, help="wrk -d of the warm-up before each measurement")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn worker processes of each server, the same for both (production runs 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--statements-repeat", type=int, default=5, help="requests averaged for SQL per request")
    p.add_argument("--scale-patients", type=int, default=200_000, help="W1 again after growing to this many")
    p.add_argument("--verify-events", type=int, default=100_000, help="chain length for `careloop audit verify`")
    p.add_argument("--append-writers", default="1,4,16",
                   help="concurrent audit writers on one institution's chain, one measurement per number")
    p.add_argument("--append-seconds", type=float, default=5)
    p.add_argument("--no-page-sizes", action="store_true", help="skip W1 with first = 10 and 100")
    p.add_argument("--no-scale", action="store_true", help="skip W1 on the grown data set")
    p.add_argument("--no-verify", action="store_true", help="skip the audit verify throughput")
    p.add_argument("--no-append", action="store_true", help="skip the audit append throughput")
    p.add_argument("--index-contacts", action="store_true",
                   help="add an index on contact (institution_id, patient_id), which careloop's migrations lack")
    p.add_argument("--quick", action="store_true", help="small data, one short round: a smoke test")
    p.add_argument("--full", action="store_true", help="1,000,000 events for audit verify")
    p.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                   help="PostgreSQL URL allowed to CREATE and DROP DATABASE")
    p.add_argument("--results", default=str(servers.ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    unknown = set(args.workloads.split(",")) - {*workloads.DOCUMENTS, "C1", "R1"}
    if unknown:
        p.error(f"--workloads: unknown {', '.join(sorted(unknown))}")
    if set(args.campaign_databases.split(",")) - {"postgres", "sqlite"}:
        p.error("--campaign-databases: postgres and/or sqlite")
    if args.quick:
        args.patients, args.contacts, args.audit_events, args.recipients = 2_000, 5_000, 2_000, 2_000
        args.rounds, args.seconds, args.warmup, args.statements_repeat = 1, 2, 1, 2
        args.scale_patients, args.verify_events, args.append_seconds = 20_000, 20_000, 2
    if args.full:
        args.verify_events = 1_000_000
    return args


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Summary:
    """The median of the rounds of one workload on one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    bad: int
    rounds: list[dict] = field(default_factory=list)
    statements: float | None = None
    round_trips: float | None = None
    audit_rows: float | None = None
    database_ms: float | None = None
    peak_mib: float | None = None

    @classmethod
    def of(cls, results: list[WrkResult]) -> Summary:
        return cls(rps=statistics.median(r.rps for r in results), p50_ms=statistics.median(r.p50_ms for r in results),
                   p99_ms=statistics.median(r.p99_ms for r in results), bad=sum(r.bad for r in results),
                   rounds=[asdict(r) for r in results])


@dataclass
class Bench:
    args: argparse.Namespace
    dsn: str
    settings: Settings
    env: dict[str, str]
    password: str
    tenant: dataset.Tenant | None = None
    careloop: Server | None = None
    baseline: Server | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    patients: int = 0
    contacts: int = 0
    tasks_loaded_on: date | None = None  # the local date the tasks' due dates count back from
    outpatients: dataset.Outpatients | None = None  # W6's department and week

    def pair(self) -> tuple[Server, Server]:
        assert self.careloop is not None and self.baseline is not None
        return self.careloop, self.baseline

    def token(self, request: Request, server: Server) -> str | None:
        return self.tokens[request.account] if server is self.careloop else None

    def w3_patients(self) -> range:
        """W3's files, the last of the patients (a quarter at most: never W1's page nor W2's file), so that a run's
        contacts (about 7,000 a measurement at 900 a second) stay well under 50 a file."""
        return range(self.patients - min(W3_PATIENTS, self.patients // 4), self.patients)

    def requests(self, first: int = 50) -> dict[str, Request]:
        """W1 from the middle of the patients; W2 and W3 on patients outside that page, apart (W3 on the last ones,
        in turn); W5 the first page of the nurse's worklist; W6 next week's free slots of the outpatient
        department."""
        middle = self.patients // 2
        assert self.outpatients is not None
        week = self.outpatients
        every = {
            "W0": workloads.w0(),
            "W1": workloads.w1(pagination.encode("patient", str(dataset.patient_id(middle - 1))), first),
            "W2": workloads.w2(str(dataset.patient_id(middle // 2))),
            "W3": workloads.w3([str(dataset.patient_id(i)) for i in self.w3_patients()]),
            "W4": workloads.w4(),
            "W5": workloads.w5(),
            "W6": workloads.w6(str(week.department_id), str(week.first_day), str(week.last_day)),
        }
        chosen = self.args.workloads.split(",")
        return {name: request for name, request in every.items() if name in chosen}


def careloop_env(dsn: str, master_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARELOOP_")}
    return env | {
        "CARELOOP_ENV": "production", "CARELOOP_DATABASE_URL": dsn, "CARELOOP_MASTER_KEY": master_key,
        "CARELOOP_ARGON2_TIME_COST": str(ARGON2.time_cost), "CARELOOP_ARGON2_MEMORY_KIB": str(ARGON2.memory_cost_kib),
        "CARELOOP_ARGON2_PARALLELISM": str(ARGON2.parallelism), "CARELOOP_LOG_LEVEL": "WARNING",
    }


def login(server: Server, email: str, password: str) -> str:
    body = {"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            "variables": {"e": email, "p": password}}
    answer = httpx.post(server.url + "/graphql", json=body, timeout=30).json()
    if "errors" in answer:
        raise RuntimeError(f"login {email}: {answer['errors']}")
    return str(answer["data"]["login"]["token"])


# -- the steps -----------------------------------------------------------------------------


async def load(bench: Bench) -> None:
    args = bench.args
    started = time.perf_counter()
    say(f"migrating {bench.dsn}")
    await db.migrate(bench.dsn)
    await db.open_database(bench.dsn + POOL)
    services = build_services(bench.settings)
    bench.tenant = await dataset.create_tenant(services, bench.password)
    say(f"loading {args.patients:,} patients, {args.contacts:,} contacts, {args.audit_events:,} audit events")
    await dataset.load_patients(bench.dsn, bench.tenant, 0, args.patients, 0, args.contacts)
    await dataset.append_audit_events(bench.dsn, bench.tenant.institution_id, bench.tenant.nurse_id,
                                      args.audit_events)
    today = bench.tasks_loaded_on = await dataset.load_follow_up_tasks(bench.dsn, bench.tenant, args.tasks,
                                                                       args.patients)
    say(f"loaded {args.tasks:,} follow-up tasks due by {today} (the institution's local date) or soon after")
    week = bench.outpatients = await dataset.load_schedules(services, bench.tenant, bench.password, args.clinicians,
                                                            args.patients)
    say(f"loaded {args.clinicians} clinicians' schedules and {week.appointments:,} appointments for "
        f"{week.first_day} to {week.last_day}")
    if args.index_contacts:
        await dataset.index_contacts(bench.dsn)
    bench.patients, bench.contacts = args.patients, args.contacts
    say(f"loaded in {time.perf_counter() - started:.1f}s")


def start_servers(bench: Bench) -> None:
    assert bench.tenant is not None
    workers = bench.args.workers
    bench.careloop = servers.careloop(bench.env, workers)
    bench.baseline = servers.baseline(bench.env | {"BENCH_DSN": bench.dsn,
                                                   "BENCH_INSTITUTION": str(bench.tenant.institution_id),
                                                   "BENCH_NURSE": str(bench.tenant.nurse_id)}, workers)
    for server in bench.pair():
        server.start()
        say(f"{server.name} listening on {server.url}")
    bench.tokens = {"nurse": login(bench.careloop, dataset.NURSE_EMAIL, bench.password),
                    "officer": login(bench.careloop, dataset.OFFICER_EMAIL, bench.password)}


def check_answers(bench: Bench, requests: dict[str, Request]) -> None:
    careloop, baseline = bench.pair()
    for name, request in requests.items():
        if request.name in workloads.COMPARED:
            items = measure.check_same(careloop, baseline, request, bench.tokens[request.account])
            say(f"{name}: careloop and the baseline return the same data ({items} items)")


async def check_worklist(bench: Bench) -> None:
    """W5 beyond its first page: the nurse's whole worklist, page by page (the cursor made from the last
    task, as careloop makes it), the same on both servers and the tasks the data set says are due: open,
    the nurse's, due today or before (the institution's local date), pool tasks and later ones left out."""
    assert bench.tenant is not None and bench.tasks_loaded_on is not None
    careloop, baseline = bench.pair()
    ids: list[str] = []
    after, pages = None, 0
    while True:
        request = workloads.w5(50, after)
        expected = baseline.post(request, None)
        got = careloop.post(request, bench.tokens[request.account])
        difference = measure.first_difference(got, expected)
        if "errors" in got or difference:
            raise measure.Mismatch(f"W5 page {pages + 1}: {got.get('errors') or difference}")
        nodes = got["data"]["followUpWorklist"]["nodes"]
        ids += [n["id"] for n in nodes]
        pages += 1
        if len(nodes) < 50:
            break
        after = pagination.encode(TASK_CURSOR, f"{nodes[-1]['dueOn']}|{nodes[-1]['id']}")
    today = await dataset.local_today(bench.tenant.institution_id)
    wanted = dataset.expected_worklist(bench.tenant, bench.args.tasks, bench.args.patients, bench.tasks_loaded_on,
                                       today)
    if ids != wanted:
        missing, extra = sorted(set(wanted) - set(ids)), sorted(set(ids) - set(wanted))
        raise measure.Mismatch(f"W5: the worklist has {len(ids)} tasks, the data set expects {len(wanted)} "
                               f"(missing {missing[:3]}, unexpected {extra[:3]}, or in another order)")
    say(f"W5: the whole worklist ({len(ids)} tasks, {pages} pages) is the same on both and as the data set expects")


async def count_costs(bench: Bench, requests: dict[str, Request]) -> dict[str, dict[str, measure.Cost]]:
    """Statements, round trips, audit rows and PostgreSQL's CPU time per request of each workload on each server:
    both apps run in this process, one request at a time, connected to PostgreSQL through the round-trip counting
    proxy. careloop's principal cache is live, as in the server, its listener connected through the proxy too: a
    signed-in request costs no statement while the cache knows its token, but one round trip on the listener's
    connection (the fence that applies every change committed before it; requests arriving together share it)."""
    assert bench.tenant is not None
    services = build_services(bench.settings)
    app = create_app(bench.settings, services, manage_database=False)
    plain = baseline.create_app  # the same app as `python -m bench.baseline`, without its uvicorn
    repeat, costs = bench.args.statements_repeat, {}
    async with roundtrips.RoundTripProxy(bench.dsn) as proxy, principal_cache(services, proxy.proxied_dsn):
        await db.close_database()
        await db.open_database(proxy.proxied_dsn + POOL)
        bare = plain(proxy.proxied_dsn, bench.tenant.institution_id, services.master_key, bench.tenant.nurse_id)
        try:
            async with bare.router.lifespan_context(bare):
                for name, request in requests.items():
                    costs[name] = {
                        "careloop": await measure.careloop_cost(app, request, bench.tokens[request.account], repeat,
                                                                proxy),
                        "baseline": await measure.baseline_cost(bare, request, repeat, proxy),
                    }
        finally:
            await db.close_database()
            await db.open_database(bench.dsn + POOL)  # the rest of the run connects directly
    return costs


@contextlib.asynccontextmanager
async def principal_cache(services: Services, dsn: str) -> AsyncIterator[None]:
    """The principal cache live while in the block, as the server's lifespan keeps it (``app.principals``)."""
    listener = asyncio.create_task(PrincipalListener(services.principals, dsn).run())
    try:
        for _ in range(100):
            if services.principals.live:
                break
            await asyncio.sleep(0.05)
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def run_rounds(bench: Bench, requests: dict[str, Request]) -> dict[str, dict[str, Summary]]:
    """Every request on both servers, round after round: warm-up, then the measured run."""
    args = bench.args
    raw: dict[str, dict[str, list[WrkResult]]] = {name: {"careloop": [], "baseline": []} for name in requests}
    peaks: dict[str, dict[str, float]] = {name: {} for name in requests}
    for round_no in range(1, args.rounds + 1):
        for name, request in requests.items():
            for server in bench.pair():
                token = bench.token(request, server)
                options = {"connections": args.connections, "threads": args.threads}
                servers.wrk(server, request, token, seconds=args.warmup, **options)
                result = servers.wrk(server, request, token, seconds=args.seconds, **options)
                raw[name][server.name].append(result)
                peaks[name][server.name] = server.peak_memory_mib()
                if request.name == "W3":
                    await dataset.remove_created_contacts(bench.dsn, [uuid.UUID(turn["patientId"])
                                                                      for turn in request.turns],
                                                          request.variables["input"]["name"])
                flag = f"  ** {result.bad} BAD ANSWERS **" if result.bad else ""
                say(f"round {round_no} {name:<14} {server.name:<8} {result.rps:8.1f} req/s  "
                    f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms{flag}")
    out = {}
    for name in requests:
        out[name] = {s: Summary.of(raw[name][s]) for s in ("careloop", "baseline")}
        for s, summary in out[name].items():
            summary.peak_mib = peaks[name][s]
    return out


async def grow(bench: Bench, patients: int) -> None:
    assert bench.tenant is not None
    contacts = round(patients * bench.args.contacts / bench.args.patients)
    say(f"growing to {patients:,} patients and {contacts:,} contacts")
    started = time.perf_counter()
    await dataset.load_patients(bench.dsn, bench.tenant, bench.patients, patients, bench.contacts, contacts)
    bench.patients, bench.contacts = patients, contacts
    say(f"grown in {time.perf_counter() - started:.1f}s")


async def audit_verify(bench: Bench) -> dict[str, Any]:
    events = bench.args.verify_events
    services = build_services(bench.settings)
    chain = await dataset.create_chain(services, "Verify Clinic")
    say(f"writing an audit chain of {events:,} events")
    started = time.perf_counter()
    await dataset.append_audit_events(bench.dsn, chain, uuid.uuid4(), events - 1)  # + the institution's own event
    say(f"written in {time.perf_counter() - started:.1f}s; running careloop audit verify")
    start_up = measure.verify_seconds(bench.env, uuid.uuid4(), check=False)  # no such chain
    seconds = measure.verify_seconds(bench.env, chain)
    net = max(seconds - start_up, 1e-9)
    return {"events": events, "seconds": seconds, "start_up_seconds": start_up, "events_per_s": events / net}


async def audit_append(bench: Bench) -> list[dict[str, Any]]:
    """Appends per second to one institution's chain with 1, 4, 16 (--append-writers) concurrent writers,
    each number on a fresh chain of its own."""
    services = build_services(bench.settings)
    out = []
    for writers in (int(n) for n in bench.args.append_writers.split(",")):
        chain = await dataset.create_chain(services, f"Append Clinic {writers}")
        say(f"{writers} concurrent audit writers on one institution for {bench.args.append_seconds}s")
        appending = asyncio.ensure_future(measure.append_throughput(chain, writers, bench.args.append_seconds))
        ages = sorted(await measure.sealing_window(chain, appending))
        events, seconds = await appending
        started = time.perf_counter()
        await writer.seal(chain)  # what still waits in the inbox: sealed/s counts it in
        sealed_seconds = seconds + time.perf_counter() - started
        window = {"window_max_ms": ages[-1] * 1000, "window_p99_ms": ages[int(len(ages) * 0.99)] * 1000} if ages \
            else {}
        out.append({"writers": writers, "events": events, "seconds": seconds, "events_per_s": events / seconds,
                    "sealed_per_s": events / sealed_seconds, **window})
        say(f"  {events / seconds:,.0f} appends/s; oldest waiting event: {window}")
    return out


# -- the run -------------------------------------------------------------------------------


async def benchmark(bench: Bench) -> dict[str, Any]:
    args = bench.args
    await load(bench)
    start_servers(bench)
    requests = bench.requests()
    check_answers(bench, requests)
    if "W5" in requests:
        await check_worklist(bench)
    costs = await count_costs(bench, requests)
    results: dict[str, Any] = {"workloads": await run_rounds(bench, requests)}
    for name, summaries in results["workloads"].items():
        for s, summary in summaries.items():
            cost = costs[name][s]
            summary.statements, summary.round_trips, summary.audit_rows, summary.database_ms = (
                cost.statements, cost.round_trips, cost.audit_rows, cost.database_ms)
    main_w1 = results["workloads"].get("W1")
    if main_w1 is None:  # the growth runs are W1's
        args.no_page_sizes = args.no_scale = True
    if not args.no_page_sizes:
        sized = {f"W1 first={n}": bench.requests(n)["W1"] for n in (10, 100)}
        check_answers(bench, sized)
        results["page_sizes"] = {"W1 first=10": None, "W1 first=50": main_w1, "W1 first=100": None}
        results["page_sizes"].update(await run_rounds(bench, sized))
    if not args.no_scale and args.scale_patients > bench.patients:
        before = bench.patients
        await grow(bench, args.scale_patients)
        grown = {f"W1 @{bench.patients:,}": bench.requests()["W1"]}
        check_answers(bench, grown)
        results["scale"] = {f"W1 @{before:,}": main_w1, **(await run_rounds(bench, grown))}
    if not args.no_verify:
        results["audit_verify"] = await audit_verify(bench)
    if not args.no_append:
        results["audit_append"] = await audit_append(bench)
    return results


async def main(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC)
    chosen = args.workloads.split(",")
    results: dict[str, Any] = {}
    patients = contacts = 0
    if any(name in workloads.DOCUMENTS for name in chosen):
        results, patients, contacts = await web(args, stamp)
    if "C1" in chosen:
        results["campaign"] = await campaign.measure_all(args, ARGON2, stamp)
    if "R1" in chosen:
        results["survey_report"] = await survey_report.measure_all(args, ARGON2, stamp)
    meta = await report.metadata(args.admin_url, args, stamp, patients, contacts)
    md, js = report.write(args.results, stamp, meta, results, GOALS)
    print()
    print(md.read_text())
    say(f"written {md} and {js}")
    bad = sum(s.bad for group in ("workloads", "page_sizes", "scale") for pair in results.get(group, {}).values()
              if pair for s in pair.values())
    if bad:
        print(f"WARNING: {bad} requests answered with errors during the measurements", file=sys.stderr)
    return 1 if bad else 0


async def web(args: argparse.Namespace, stamp: datetime) -> tuple[dict[str, Any], int, int]:
    """W0-W6 and the growth runs against the two servers: the results, and the patients and contacts loaded."""
    name = f"careloop_bench_{stamp:%Y%m%d%H%M%S}_{os.getpid()}"
    dsn = args.admin_url.rsplit("/", 1)[0] + "/" + name
    master_key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(database_url=dsn, environment="production", master_key=master_key,
                        password_hashing=ARGON2, log_level="WARNING")
    bench = Bench(args, dsn, settings, careloop_env(dsn, master_key), secrets.token_urlsafe(18))
    await dataset.create_database(args.admin_url, name)
    try:
        results = await benchmark(bench)
    finally:
        for server in (bench.careloop, bench.baseline):
            if server is not None:
                server.stop()
        await db.close_database()
        await dataset.drop_database(args.admin_url, name)
    return results, bench.patients, bench.contacts


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGINT and SIGTERM into an exception, once, so that the clean-up in ``main`` runs."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        raise SystemExit(asyncio.run(main(parse_args())))
    except measure.Mismatch as exc:
        print(f"\n*** MISMATCH: {exc} ***\n", file=sys.stderr)
        raise SystemExit(3) from None
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc}); servers stopped, database dropped", file=sys.stderr)
        raise SystemExit(130) from None
