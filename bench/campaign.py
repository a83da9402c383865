"""C1, a campaign to 10,000 recipients (issue 13): "finishes within a minute on this machine with the logging
sender and never holds a database lock for the whole batch", measured on PostgreSQL and on SQLite.

One run per database, in this process: a fresh database (PostgreSQL: created through ``--admin-url`` and
dropped; SQLite: a file in a temporary directory, removed), careloop's migrations, an institution with a
department, two admins and a front-desk account (careloop's own code), the quiet hours moved away from now
through the API (``messagingSettingsUpdate``), then ``--recipients`` active patients inserted in bulk (COPY,
or one executemany on SQLite), sealed as ``resolvers.patient`` seals them, in a fixed mix of twenty:

- 12 consent to care and campaigns by e-mail and SMS, e-mail preferred, with an address: sent by e-mail;
- 4 consent to care and campaigns by SMS, with a sealed phone: sent by SMS (the phone is opened to send);
- 2 consent to care only: refused, ``purpose_not_consented``;
- 1 consents to nothing: refused, ``no_consent``;
- 1 consents to campaigns by e-mail but has no address: refused, ``no_address``.

careloop: the admin previews, creates and starts the campaign through the API (GraphQL over
``httpx.ASGITransport``), approved in between by the second admin (four eyes: a campaign is started only once
someone other than its author approved it; outside the measured time), then the worker runs the loop
``app.notifier.run_messages`` runs, without its sleeps: ``campaign.advance`` (one batch of 500 patients queued per
transaction) then ``communication.deliver_due`` with ``app.senders.logging_senders`` (leased batches of 500: the
gate again, render, seal, one log line each, settled in one short transaction), until the campaign is completed
and none of its messages is queued. Wall time: from campaignStart to the last message settled. Every transaction
is timed from BEGIN to COMMIT at careloop's transaction contexts (``core.backends``), named by the careloop
function that opened it: on SQLite that is how long everyone else in the process waits for the one connection, on
PostgreSQL the longest any row lock can be held. Meanwhile the front desk logs a call through the API every
``--campaign-probe-ms`` (a write to the communication table): its slowest answer is the longest anyone waited for
the campaign.

Baseline, in the same database after careloop: the same end state written the bare way. One transaction on the
driver itself (asyncpg, sqlite3): the audience read in one statement, decided by the same pure gate
(``resolvers.communication.gate``), the same text rendered, the phone opened, subject and body sealed, the
same logging sender called, and every row written in one go (COPY on PostgreSQL, one executemany on SQLite).
No batches, outbox states, leases, audit records or GraphQL, and one lock over the whole audience: exactly
what careloop must not do, as a floor. Both outcomes (status, channel, refusal per message) must be the data
set's, or the run fails (exit 3).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import json
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from app import db
from app.main import create_app
from app.senders import LoggingSender, logging_senders
from app.services import build_services
from bench import dataset, measure
from bench.servers import ROOT
from core.backends.asyncpg import PooledTransaction
from core.backends.sqlite import SqliteTransaction
from core.crypto import field_aad
from core.ids import uuid7
from core.messages import Outgoing
from core.passwords import HashParameters
from core.settings import Settings
from models import AuditEvent, Campaign, Communication
from models.communication import MESSAGE_CHANNELS
from models.fields import tags_from_db, tags_to_db
from resolvers import campaign as campaigns
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers import message_template as templates
from resolvers.context import Services

GOAL_SECONDS = 60.0
SHORT_SHARE = 0.1  # "no lock for the whole batch": no transaction lasts a tenth of the run or more
ADMIN_EMAIL = "admin@bench.careloop.test"
APPROVER_EMAIL = "approver@bench.careloop.test"  # the second admin, who approves the admin's campaign
FRONT_DESK_EMAIL = "front.desk@bench.careloop.test"
SUBJECT = "Spring health lecture"
BODY = "{patient_name}，{institution_name}春季健康讲座本周六开讲，咨询 {institution_phone}。退订：{unsubscribe_url}"
INSTITUTION_PHONE = "+86 10 8888 0000"
WORKER_LIMIT = 600.0  # seconds: a campaign that has not settled by then has a bug, not a slow machine
PATIENT_COLUMNS = (*dataset.PATIENT_COLUMNS, "email", "preferred_channel", "contact_purposes")
BOTH = tags_to_db(["campaign", "care"])
# The mix, by patient index mod 20: (consent, channels, preferred, purposes, has an e-mail address)
MIX = ([(True, ["email", "sms"], "email", BOTH, True)] * 12 + [(True, ["sms"], "sms", BOTH, False)] * 4
       + [(True, ["email", "sms"], "email", tags_to_db(["care"]), True)] * 2
       + [(False, [], None, BOTH, True), (True, ["email"], "email", BOTH, False)])
OUTCOMES = ([("sent", "email", None)] * 12 + [("sent", "sms", None)] * 4
            + [("refused", None, "purpose_not_consented")] * 2
            + [("refused", None, "no_consent"), ("refused", None, "no_address")])
COMMUNICATION_COLUMNS = ("id", "institution_id", "created_at", "key", "cause", "purpose", "direction", "channel",
                         "status", "refusal", "due_at", "sent_at", "settled_at", "attempts", "last_error",
                         "variables", "subject", "body", "patient_id")

GRAPHQL = {
    "login": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
    "quiet": """mutation($start: Time!, $end: Time!, $phone: String!) { messagingSettingsUpdate(input: {
               quietStart: $start, quietEnd: $end, institutionPhone: $phone }) { version } }""",
    "preview": """query { campaignPreview(purpose: CAMPAIGN) { audience recipients refused { reason count } } }""",
    "create": """mutation($input: CampaignCreateInput!) { campaignCreate(input: $input) { id version } }""",
    "approve": """mutation($id: ID!, $v: Int) { campaignApprove(id: $id, version: $v) { version } }""",
    "start": """mutation($id: ID!, $v: Int) { campaignStart(id: $id, version: $v) { status recipients } }""",
    "show": """query($id: ID!) { campaign(id: $id) { status recipients queued refused { reason count }
               progress { waiting sent delivered failed refused { reason count } } } }""",
    "call": """mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }""",
}


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] C1 {message}", flush=True)


# -- the data --------------------------------------------------------------------------------


def patient_row(tenant: dataset.Tenant, index: int) -> tuple:
    """The bench's patient ``index`` (names, sealed phone and address as for W1-W6), active, with the
    contact preferences of its place in the mix."""
    values = dict(zip(dataset.PATIENT_COLUMNS, dataset.patient_row(tenant, index), strict=True))
    consent, channels, preferred, purposes, has_email = MIX[index % len(MIX)]
    values.update(contact_consent=consent, contact_channels=tags_to_db(channels), preferred_channel=preferred,
                  contact_purposes=purposes, email=f"patient{index}@bench.careloop.test" if has_email else None)
    return tuple(values[c] for c in PATIENT_COLUMNS)


def expected_outcome(count: int) -> Counter[tuple[str, str | None, str | None]]:
    """(status, channel, refusal) of every message, by the mix's own rules."""
    return Counter(OUTCOMES[i % len(OUTCOMES)] for i in range(count))


def _sqlite_value(value: Any) -> Any:
    """A value as Tortoise stores it in SQLite (UUIDs and times as text, booleans as integers)."""
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite://")


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


async def load_patients(url: str, tenant: dataset.Tenant, count: int) -> None:
    rows = (patient_row(tenant, i) for i in range(count))
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(_sqlite_path(url), timeout=30)) as conn, conn:
            conn.executemany(_insert_sql("patient", PATIENT_COLUMNS),
                             ([_sqlite_value(v) for v in row] for row in rows))
            conn.execute("ANALYZE patient")
    else:
        await dataset._copy(url, "patient", PATIENT_COLUMNS, rows)


# -- the databases ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(kind: str, admin_url: str, stamp: datetime) -> AsyncIterator[str]:
    """A new empty database of ``kind`` (postgres or sqlite), dropped or removed afterwards."""
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix="careloop_bench_c1_")
        try:
            yield "sqlite://" + str(Path(directory) / "careloop.sqlite3")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    name = f"careloop_bench_c1_{stamp:%Y%m%d%H%M%S}_{os.getpid()}"
    await dataset.create_database(admin_url, name)
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await dataset.drop_database(admin_url, name)


# -- timing every transaction ----------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    label: str  # the careloop function that opened it
    seconds: float  # BEGIN to COMMIT (or ROLLBACK)


def _opener() -> str:
    """The innermost careloop function (resolvers, audit, app) on the stack of ``async with in_transaction()``."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent.name in ("resolvers", "audit", "app") and ROOT in path.parents:
            return f"{path.stem}.{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


@contextlib.contextmanager
def transaction_clock() -> Iterator[list[Timed]]:
    """Time every top-level transaction careloop opens, on both backends (nested ones are savepoints
    inside these). The clock starts when BEGIN has run and stops when COMMIT or ROLLBACK has."""
    timed: list[Timed] = []
    originals: dict[Any, tuple[Any, Any]] = {cls: (cls.__aenter__, cls.__aexit__)
                                             for cls in (SqliteTransaction, PooledTransaction)}

    def wrap(cls: Any, enter: Any, leave: Any) -> None:
        async def __aenter__(self: Any) -> Any:
            label = _opener()
            connection = await enter(self)
            self._bench_clock = (label, time.perf_counter())
            return connection

        async def __aexit__(self: Any, *exc: Any) -> None:
            try:
                await leave(self, *exc)
            finally:
                label, started = self._bench_clock
                timed.append(Timed(label, time.perf_counter() - started))

        cls.__aenter__, cls.__aexit__ = __aenter__, __aexit__

    for cls, (enter, leave) in originals.items():
        wrap(cls, enter, leave)
    try:
        yield timed
    finally:
        for cls, (enter, leave) in originals.items():
            setattr(cls, "__aenter__", enter)  # noqa: B010 -- the methods as they were
            setattr(cls, "__aexit__", leave)  # noqa: B010


@contextlib.contextmanager
def sender_log(path: Path) -> Iterator[list[int]]:
    """The logging sender's lines written to ``path`` (as a development server writes them to its log);
    yields a one-item list that holds the number of lines once done."""
    logger = logging.getLogger("careloop.messages")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    lines = [0]
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)
        logger.propagate = propagate
        lines[0] = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if "logged, not sent" in line)


# -- careloop --------------------------------------------------------------------------------


class Api:
    """GraphQL over careloop's app in this process, as the accounts signed in."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    async def call(self, account: str | None, operation: str, **variables: Any) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[account]}"} if account else {}
        answer = (await self.client.post("/graphql", json={"query": GRAPHQL[operation], "variables": variables},
                                         headers=headers)).json()
        if answer.get("errors"):
            raise RuntimeError(f"C1 {operation}: {answer['errors']}")
        return next(iter(answer["data"].values()))

    async def sign_in(self, account: str, email: str, password: str) -> None:
        self.tokens[account] = str((await self.call(None, "login", e=email, p=password))["token"])


@dataclass
class Worker:
    rounds: int = 0
    queueing_s: float = 0.0  # in campaign.advance
    delivering_s: float = 0.0  # in communication.deliver_due
    queued: int = 0
    handed_over: int = 0


async def run_worker(services: Services, campaign_id: uuid.UUID) -> Worker:
    """The campaign's worker, as ``app.notifier.run_messages`` drives it: a batch queued, then everything due
    delivered, round after round until nothing is left."""
    senders, worker = logging_senders(), Worker()
    deadline = time.perf_counter() + WORKER_LIMIT
    try:
        while True:
            started = time.perf_counter()
            worker.queued += await campaigns.advance()
            queued = time.perf_counter()
            worker.handed_over += await communications.deliver_due(services, senders)
            worker.rounds += 1
            worker.queueing_s += queued - started
            worker.delivering_s += time.perf_counter() - queued
            row = await Campaign.get(id=campaign_id)
            if row.status == "completed" and not await Communication.filter(campaign_id=campaign_id,
                                                                            status="queued").exists():
                return worker
            if time.perf_counter() > deadline:
                raise RuntimeError(f"C1: the campaign is not settled after {WORKER_LIMIT:.0f}s ({row.status})")
    finally:
        await senders.aclose()


async def probe(api: Api, patient_id: uuid.UUID, every: float, stop: asyncio.Event) -> list[float]:
    """The front desk logs a call every ``every`` seconds until ``stop``: each answer's time."""
    waits: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        await api.call("front_desk", "call", input={"patientId": str(patient_id), "note": "bench probe"})
        waits.append(time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return waits


def _quiet_hours_away(zone: ZoneInfo) -> tuple[str, str]:
    """An hour of quiet that starts six hours from now, local: the run never falls into it."""
    start = (datetime.now(zone) + timedelta(hours=6)).hour
    return f"{start:02}:00:00", f"{(start + 1) % 24:02}:00:00"


def _summary(timed: list[Timed]) -> dict[str, Any]:
    by_label: dict[str, list[float]] = {}
    for t in timed:
        by_label.setdefault(t.label, []).append(t.seconds)
    longest = max(timed, key=lambda t: t.seconds)
    return {
        "count": len(timed), "longest_s": longest.seconds, "longest_label": longest.label,
        "by_label": {label: {"count": len(s), "longest_s": max(s), "median_s": statistics.median(s),
                             "total_s": sum(s)} for label, s in sorted(by_label.items(), key=lambda kv: -max(kv[1]))},
    }


async def _outcome(campaign_id: uuid.UUID | None, key_prefix: str) -> Counter[tuple[str, str | None, str | None]]:
    query = Communication.filter(campaign_id=campaign_id) if campaign_id else Communication.filter(
        key__startswith=key_prefix)
    return Counter((str(s), c, r) for s, c, r in await query.values_list("status", "channel", "refusal"))


async def careloop_campaign(services: Services, api: Api, tenant: dataset.Tenant, args: argparse.Namespace,
                            scratch: Path, profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    count = args.recipients
    started = time.perf_counter()
    preview = await api.call("admin", "preview")
    preview_s = time.perf_counter() - started
    made = await api.call("admin", "create", input={"name": "Bench spring lecture", "purpose": "CAMPAIGN",
                                                    "subject": SUBJECT, "body": BODY, "audience": {}})
    campaign_id = uuid.UUID(made["id"])
    approved = await api.call("approver", "approve", id=made["id"], v=made["version"])
    audit_before = await AuditEvent.filter(institution_id=tenant.institution_id).count()
    stop = asyncio.Event()
    waits: asyncio.Future[list[float]] | None = None
    with transaction_clock() as timed, sender_log(scratch / "sender.log") as lines, \
            measure.tortoise_statements() as statements:
        if args.campaign_probe_ms > 0:
            waits = asyncio.ensure_future(probe(api, dataset.patient_id(0), args.campaign_probe_ms / 1000, stop))
        if profiler is not None:
            profiler.enable()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        begun = await api.call("admin", "start", id=made["id"], v=approved["version"])
        try:
            worker = await run_worker(services, campaign_id)
        finally:
            wall = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
            stop.set()
            probe_waits = await waits if waits is not None else []
    shown = await api.call("admin", "show", id=made["id"])
    outcome = await _outcome(campaign_id, "")
    if outcome != expected_outcome(count) or begun["recipients"] != count:
        raise measure.Mismatch(f"C1 careloop: {dict(outcome)} for {begun['recipients']} recipients, the data set "
                               f"expects {dict(expected_outcome(count))}")
    settled = sum(outcome.values())
    return {
        "wall_s": wall, "load_average": [load_before, os.getloadavg()[0]], "settled": settled,
        "settled_per_s": settled / wall,
        "sent": sum(n for (s, _, _), n in outcome.items() if s == "sent"),
        "queued": shown["queued"], "recipients": shown["recipients"],
        "refused": {r["reason"]: r["count"] for r in shown["refused"]}, "progress": shown["progress"],
        "by_channel": dict(Counter({str(c): n for (s, c, _), n in outcome.items() if s == "sent"})),
        "preview": preview, "preview_s": preview_s, "worker": vars(worker), "transactions": _summary(timed),
        "statements": statements.count, "sender_log_lines": lines[0],
        "audit_rows": await AuditEvent.filter(institution_id=tenant.institution_id).count() - audit_before,
        "probe": {"every_ms": args.campaign_probe_ms, "calls": len(probe_waits),
                  "longest_ms": max(probe_waits, default=0) * 1000,
                  "median_ms": statistics.median(probe_waits) * 1000 if probe_waits else 0},
    }


# -- the baseline ------------------------------------------------------------------------------


def _bare_recipient(row: dict[str, Any]) -> communications.Recipient:
    consented = set(tags_from_db(row["contact_channels"]))
    channels = [c for c in MESSAGE_CHANNELS if c in consented]
    if row["preferred_channel"] in channels:
        channels.remove(row["preferred_channel"])
        channels.insert(0, row["preferred_channel"])
    addressed = ({"sms", "wechat"} if row["phone"] is not None else set()) | ({"email"} if row["email"] else set())
    return communications.Recipient(active=row["status"] == "active", consent=bool(row["contact_consent"]),
                                    purposes=frozenset(tags_from_db(row["contact_purposes"])),
                                    channels=tuple(channels), addressed=frozenset(addressed))


BARE_AUDIENCE = """SELECT id, full_name, status, contact_consent, contact_purposes, contact_channels,
                          preferred_channel, email, phone FROM patient
                   WHERE institution_id = {p} AND status = 'active' ORDER BY id"""


async def _bare_messages(services: Services, tenant: dataset.Tenant, patients: list[dict[str, Any]],
                         quiet: communications.Quiet, institution_name: str) -> list[tuple]:
    """Every patient's message decided, rendered, sealed and handed to the logging sender, as rows."""
    sender, now, keys = LoggingSender(), datetime.now(UTC), tenant.keys
    institution = tenant.institution_id
    rows = []
    for patient in patients:
        pid, row_id = uuid.UUID(str(patient["id"])), uuid7()
        verdict = communications.gate(_bare_recipient(patient), "campaign", now, quiet, non_care_nearby=0, cap=2)
        values: dict[str, Any] = {
            "id": row_id, "institution_id": institution, "created_at": now, "key": f"baseline:{pid}",
            "cause": "campaign", "purpose": "campaign", "direction": "outbound", "channel": None, "status": "refused",
            "refusal": verdict.refusal, "due_at": now, "sent_at": None, "settled_at": now, "attempts": 0,
            "last_error": "", "variables": {"patient_name": patient["full_name"]}, "subject": None, "body": None,
            "patient_id": pid}
        if verdict.refusal is None:
            link = communications.unsubscribe_url(services, institution, pid, "campaign")
            filled = {"patient_name": patient["full_name"], "institution_name": institution_name,
                      "institution_phone": INSTITUTION_PHONE, "unsubscribe_url": link}
            subject, body = templates.render(SUBJECT, filled), templates.render(BODY, filled)
            channel = str(verdict.channel)
            address = str(patient["email"]) if channel == "email" else keys.open(
                bytes(patient["phone"]), field_aad(institution, "patient", "phone", pid))
            await sender.send(Outgoing(row_id, institution, channel, address, subject, body, unsubscribe_url=link))
            values.update(channel=channel, status="sent", refusal=None, sent_at=now, settled_at=None, attempts=1,
                          subject=keys.seal(subject, field_aad(institution, "communication", "subject", row_id)),
                          body=keys.seal(body, field_aad(institution, "communication", "body", row_id)))
        rows.append(tuple(values[c] for c in COMMUNICATION_COLUMNS))
    return rows


async def baseline_campaign(url: str, services: Services, tenant: dataset.Tenant,
                            quiet: communications.Quiet, institution_name: str) -> dict[str, Any]:
    """The same messages decided, rendered, sealed, logged and written in one transaction on the driver."""
    started = time.perf_counter()
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(_sqlite_path(url), timeout=30, isolation_level=None)) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute("BEGIN IMMEDIATE")
            patients = [dict(r) for r in conn.execute(BARE_AUDIENCE.format(p="?"), (str(tenant.institution_id),))]
            rows = await _bare_messages(services, tenant, patients, quiet, institution_name)
            json_at = COMMUNICATION_COLUMNS.index("variables")
            conn.executemany(_insert_sql("communication", COMMUNICATION_COLUMNS), (
                [_sqlite_value(v) if i != json_at else _json(v) for i, v in enumerate(row)] for row in rows))
            conn.execute("COMMIT")
    else:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                patients = [dict(r) for r in await conn.fetch(BARE_AUDIENCE.format(p="$1"), tenant.institution_id)]
                rows = await _bare_messages(services, tenant, patients, quiet, institution_name)
                json_at = COMMUNICATION_COLUMNS.index("variables")
                await conn.copy_records_to_table("communication", columns=list(COMMUNICATION_COLUMNS), records=[
                    tuple(_json(v) if i == json_at else v for i, v in enumerate(row)) for row in rows])
        finally:
            await conn.close()
    wall = time.perf_counter() - started
    outcome = await _outcome(None, "baseline:")
    if outcome != expected_outcome(len(rows)):
        raise measure.Mismatch(f"C1 baseline: {dict(outcome)}, the data set expects "
                               f"{dict(expected_outcome(len(rows)))}")
    return {"wall_s": wall, "settled": len(rows), "settled_per_s": len(rows) / wall,
            "sent": sum(n for (s, _, _), n in outcome.items() if s == "sent")}


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- one database ------------------------------------------------------------------------------


async def _tenant(services: Services, password: str) -> tuple[dataset.Tenant, str]:
    institution = await institutions.create(services, "Bench Campaign Clinic", "clinic")
    department = await institutions.create_department(institution, "Ward 1")
    await institutions.create_account(services, institution, email=ADMIN_EMAIL, name="Bench Admin",
                                      password=password, roles=["admin"])
    await institutions.create_account(services, institution, email=APPROVER_EMAIL, name="Bench Approver",
                                      password=password, roles=["admin"])
    desk = await institutions.create_account(services, institution, email=FRONT_DESK_EMAIL, name="Bench Front Desk",
                                             password=password, roles=["front_desk"], departments=[department])
    keys = await services.keyring.get(institution.id)
    return dataset.Tenant(institution.id, department.id, desk.id, keys), institution.name


async def measure_one(kind: str, args: argparse.Namespace, hashing: HashParameters, stamp: datetime,
                      profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """C1 on a fresh database of ``kind``: careloop, then the baseline (with ``profiler`` on careloop's run)."""
    async with fresh_database(kind, args.admin_url, stamp) as url:
        settings = Settings(database_url=url, environment="production", log_level="WARNING",
                            master_key=base64.b64encode(os.urandom(32)).decode(), password_hashing=hashing)
        password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        say(f"{kind}: migrating a fresh database")
        await db.migrate(url)
        await db.open_database(url if kind == "sqlite" else url + "?maxsize=10")
        try:
            services = build_services(settings)
            tenant, institution_name = await _tenant(services, password)
            started = time.perf_counter()
            await load_patients(url, tenant, args.recipients)
            say(f"{kind}: loaded {args.recipients:,} patients in {time.perf_counter() - started:.1f}s")
            app = create_app(settings, services, manage_database=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as client:
                api = Api(client)
                await api.sign_in("admin", ADMIN_EMAIL, password)
                await api.sign_in("approver", APPROVER_EMAIL, password)
                await api.sign_in("front_desk", FRONT_DESK_EMAIL, password)
                zone = await institutions.zone(tenant.institution_id)
                start, end = _quiet_hours_away(zone)
                await api.call("admin", "quiet", start=start, end=end, phone=INSTITUTION_PHONE)
                with tempfile.TemporaryDirectory(prefix="careloop_bench_c1_log_") as scratch:
                    careloop = await careloop_campaign(services, api, tenant, args, Path(scratch), profiler)
                say(f"{kind}: careloop settled {careloop['settled']:,} messages in {careloop['wall_s']:.1f}s; longest "
                    f"transaction {careloop['transactions']['longest_s'] * 1000:.0f} ms "
                    f"({careloop['transactions']['longest_label']})")
                quiet = communications.Quiet(datetime.strptime(start, "%H:%M:%S").time(),
                                             datetime.strptime(end, "%H:%M:%S").time(), zone)
                baseline = await baseline_campaign(url, services, tenant, quiet, institution_name)
                say(f"{kind}: the baseline wrote the same {baseline['settled']:,} messages in "
                    f"{baseline['wall_s']:.1f}s")
        finally:
            await db.close_database()
    return {"careloop": careloop, "baseline": baseline, "ratio": careloop["settled_per_s"] / baseline["settled_per_s"],
            "minute_met": careloop["wall_s"] <= GOAL_SECONDS,
            "short_transactions": careloop["transactions"]["longest_s"] <= careloop["wall_s"] * SHORT_SHARE}


async def measure_all(args: argparse.Namespace, hashing: HashParameters, stamp: datetime) -> dict[str, Any]:
    """C1 on each database of ``--campaign-databases``, one after the other."""
    return {kind: await measure_one(kind, args, hashing, stamp) for kind in args.campaign_databases.split(",")}
