"""R1, a department's monthly survey report over 10,000 responses (issue 14): "the report must not load every
response into Python". Measured on PostgreSQL and on SQLite, in this process, like C1.

One run per database: a fresh database (PostgreSQL: created through ``--admin-url`` and dropped; SQLite: a file
in a temporary directory, removed), careloop's migrations, an institution with two departments, eight clinicians
and the head of the first department (careloop's own code), and the seeds' outpatient satisfaction form as a
questionnaire (seven Likert items toward the score, an NPS and a CSAT item, a single choice and a free-text item;
checked by ``core.questionnaire``). Then, in bulk (COPY, or one executemany on SQLite):

- ``--responses`` (10,000) responses of the report's department and month (October 2025), each answering the ten
  non-text items in a fixed pattern, scored by ``core.questionnaire.score`` as the answering code scores them,
  spread over the eight clinicians; 10 answer rows each;
- as many again that the report must leave out: half in the other department, half in the month before;
- the report month's invitations: one per response (answered) plus a quarter more unanswered, and a few cancelled
  and refused ones (left out of "invited").

careloop: the department head asks ``surveyReport`` for the department and the month through the API (GraphQL over
``httpx.ASGITransport``), ``--report-requests`` times after one warm-up; per request: the time, the SQL statements
Tortoise sends and the rows they return (counted at the database client), the audit rows.

Baseline: the naive report, on the driver itself (asyncpg, sqlite3): every response, answer and invitation of the
department and month read into Python and the same figures computed there with ``core.statistics`` (no GraphQL,
no policy, no audit). Both answers must agree (to 6 decimals), or the run fails (exit 3). Ratio = baseline time /
careloop time (above 1: careloop's answer comes faster than loading the responses would).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from tortoise.connection import connections

from app import db
from app.main import create_app
from app.services import build_services
from bench import dataset, measure
from core import questionnaire as definitions
from core import statistics as stats
from core.ids import uuid7
from core.passwords import HashParameters
from core.settings import Settings
from models import AuditEvent, Questionnaire
from resolvers import institution as institutions

MONTH, BEFORE = "2025-10", "2025-09"
HEAD_EMAIL = "head@bench.careloop.test"
CLINICIANS = 8
MIN_CELL, TARGET = 5, 92  # SurveySettings' defaults: the bench saves none


def text(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


LIKERT = [("q1", "挂号接待", "Reception"), ("q2", "护士态度", "Nurses' attitude"), ("q3", "护理技术", "Nursing skill"),
          ("q4", "健康指导", "Health guidance"), ("q5", "就诊环境", "Environment"), ("q6", "等候时间", "Waiting time"),
          ("q7", "总体满意", "Overall")]
ITEMS: list[dict[str, Any]] = [
    *({"link_id": link, "kind": "likert", "text": text(zh, en), "required": True, "counts": True}
      for link, zh, en in LIKERT),
    {"link_id": "nps", "kind": "nps", "text": text("推荐意愿", "Would you recommend us?"), "required": True},
    {"link_id": "csat", "kind": "csat", "text": text("本次满意度", "Satisfied with this visit?"), "required": True},
    {"link_id": "heard", "kind": "choice", "text": text("如何得知", "How did you hear of us?"), "required": False,
     "options": [{"code": "friend", "text": text("朋友", "A friend")}, {"code": "web", "text": text("网络", "Online")},
                 {"code": "doctor", "text": text("医生", "A doctor")}]},
    {"link_id": "comment", "kind": "text", "text": text("其他意见", "Anything else?"), "required": False},
]
SCORING = {"method": "mean", "satisfied_at": 75, "nps_item": "nps", "csat_item": "csat",
           "low": {"any_item_at_most": 2, "nps_at_most": 6}}
# Answers in turn (mostly satisfied, as the seeds' clinics are): Likert and CSAT 1-5, NPS 0-10.
FIVE = (5, 5, 5, 4, 5, 4, 4, 5, 3, 5, 4, 5, 5, 2, 4, 5, 4, 5, 1, 5, 4, 3, 5, 5, 4)
ELEVEN = (10, 9, 10, 8, 9, 10, 7, 9, 10, 6, 10, 9, 3, 10, 8, 9, 10, 9, 0, 10, 9)
HEARD = ("friend", "web", "doctor", "friend", "friend")

RESPONSE_COLUMNS = ("id", "institution_id", "created_at", "questionnaire_id", "department_id", "clinician_id",
                    "source", "month", "score", "satisfied", "nps", "csat", "low")
ANSWER_COLUMNS = ("id", "institution_id", "created_at", "response_id", "questionnaire_id", "department_id", "month",
                  "link_id", "number", "choice")
INVITATION_COLUMNS = ("id", "institution_id", "created_at", "updated_at", "questionnaire_id", "cause_key",
                      "patient_id", "department_id", "clinician_id", "status", "send_at", "expires_at", "answered",
                      "version")

R1 = """query R1($key: ID!, $dep: ID!, $month: String!) {
  surveyReport(questionnaireKey: $key, departmentId: $dep, from: $month, to: $month) {
    minCell satisfactionTarget
    rows { version month invited answered responseRate responses status meetsTarget
           score { value low high } satisfied { value low high } nps { value low high } csat { value low high }
           items { linkId responses mean { value low high } distribution { value responses } } } } }"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] R1 {message}", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--responses", type=int, default=10_000,
                        help="R1: responses of the reported department and month (as many again elsewhere)")
    parser.add_argument("--report-requests", type=int, default=30, help="R1: reports asked for, one after another")
    parser.add_argument("--report-databases", default="postgres,sqlite", help="R1: the databases to run it on")


# -- the data --------------------------------------------------------------------------------------


def answers_of(index: int) -> dict[str, Any]:
    """Response ``index``'s answers (the pattern shifts per item, so items differ)."""
    found: dict[str, Any] = {link: FIVE[(index * 7 + k * 3) % len(FIVE)] for k, (link, _, _) in enumerate(LIKERT)}
    found["nps"] = ELEVEN[(index * 5) % len(ELEVEN)]
    found["csat"] = FIVE[(index * 11 + 1) % len(FIVE)]
    if index % 4:
        found["heard"] = HEARD[index % len(HEARD)]
    return found


def _rows(institution_id: uuid.UUID, questionnaire_id: uuid.UUID, department_id: uuid.UUID,
          clinicians: list[uuid.UUID], month: str, start: int, count: int) -> tuple[list[tuple], list[tuple]]:
    """Responses [start, start + count) with their answer rows."""
    responses, answers = [], []
    created = datetime(int(month[:4]), int(month[5:]), 15, tzinfo=UTC)
    for index in range(start, start + count):
        given = answers_of(index)
        scored = definitions.score(ITEMS, SCORING, given)
        rid = uuid7()
        responses.append((rid, institution_id, created, questionnaire_id, department_id,
                          clinicians[index % len(clinicians)], "link", month, scored.score, scored.satisfied,
                          scored.nps, scored.csat, scored.low))
        for link, value in given.items():
            number, choice = (None, value) if isinstance(value, str) else (float(value), None)
            answers.append((uuid7(), institution_id, created, rid, questionnaire_id, department_id, month, link,
                            number, choice))
    return responses, answers


def _invitations(institution_id: uuid.UUID, questionnaire_id: uuid.UUID, department_id: uuid.UUID,
                 patient: uuid.UUID, zone: ZoneInfo, answered: int) -> list[tuple]:
    """The report month's invitations: ``answered`` answered, a quarter more not, one in 50 cancelled or refused."""
    first = datetime(int(MONTH[:4]), int(MONTH[5:]), 1, tzinfo=zone)
    rows = []
    for j in range(answered + answered // 4 + answered // 50):
        sent = (first + timedelta(days=j % 28, hours=8 + j % 10)).astimezone(UTC)
        status = ("answered" if j < answered else "expired" if j < answered + answered // 4
                  else ("cancelled", "refused")[j % 2])
        rows.append((uuid7(), institution_id, sent, sent, questionnaire_id, f"visit:bench-{j}", patient,
                     department_id, None, status, sent, sent + timedelta(days=14), status == "answered", 1))
    return rows


def _sqlite_value(value: Any) -> Any:
    """A value as Tortoise stores it in SQLite (UUIDs and times as text, booleans as integers)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


async def _insert(url: str, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    if url.startswith("sqlite://"):
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"), timeout=30)) as conn, conn:
            conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))
            conn.execute(f"ANALYZE {table}")
    else:
        await dataset._copy(url, table, columns, iter(rows))


async def load(url: str, services: Any, password: str, count: int) -> dict[str, Any]:
    """The institution, its accounts, the questionnaire and every row; what the workload needs to know."""
    institution = await institutions.create(services, "Bench Survey Clinic", "dental")
    outpatients = await institutions.create_department(institution, "Outpatients")
    ward = await institutions.create_department(institution, "Ward 2")
    await institutions.create_account(services, institution, email=HEAD_EMAIL, name="Bench Head", password=password,
                                      roles=["department_head"], departments=[outpatients])
    clinicians = [(await institutions.create_account(
        services, institution, email=f"doctor{k}@bench.careloop.test", name=f"Bench Doctor {k}", password=password,
        roles=["doctor"], departments=[outpatients])).id for k in range(CLINICIANS)]
    definitions.check_definition(ITEMS, SCORING)
    form = await Questionnaire.create(institution_id=institution.id, key=uuid.uuid4(), status="active",
                                      title=text("门诊患者满意度调查", "Outpatient satisfaction"), items=ITEMS,
                                      scoring=SCORING)
    keys = await services.keyring.get(institution.id)
    tenant = dataset.Tenant(institution.id, outpatients.id, clinicians[0], keys)
    await _insert(url, "patient", dataset.PATIENT_COLUMNS, [dataset.patient_row(tenant, 0)])
    responses: list[tuple] = []
    answers: list[tuple] = []
    for department, month, start, n in ((outpatients.id, MONTH, 0, count), (ward.id, MONTH, count, count // 2),
                                        (outpatients.id, BEFORE, count + count // 2, count - count // 2)):
        more, rows = _rows(institution.id, form.id, department, clinicians, month, start, n)
        responses += more
        answers += rows
    await _insert(url, "questionnaire_response", RESPONSE_COLUMNS, responses)
    await _insert(url, "response_answer", ANSWER_COLUMNS, answers)
    zone = await institutions.zone(institution.id)
    await _insert(url, "survey_invitation", INVITATION_COLUMNS,
                  _invitations(institution.id, form.id, outpatients.id, dataset.patient_id(0), zone, count))
    return {"institution_id": institution.id, "department_id": outpatients.id, "questionnaire_id": form.id,
            "key": form.key, "zone": zone, "responses": len(responses), "answers": len(answers)}


# -- the baseline: every row into Python -------------------------------------------------------------------

BARE = {
    "responses": """SELECT score, satisfied, nps, csat FROM questionnaire_response
                    WHERE institution_id = {0} AND questionnaire_id = {1} AND department_id = {2} AND month = {3}""",
    "answers": """SELECT response_id, link_id, number, choice FROM response_answer
                  WHERE institution_id = {0} AND questionnaire_id = {1} AND department_id = {2} AND month = {3}""",
    "invitations": """SELECT answered FROM survey_invitation WHERE institution_id = {0} AND questionnaire_id = {1}
                      AND department_id = {2} AND send_at >= {3} AND send_at < {4}
                      AND status NOT IN ('cancelled', 'refused')""",
}


def _month_bounds(zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = datetime(int(MONTH[:4]), int(MONTH[5:]), 1, tzinfo=zone)
    following = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=zone)
    return first.astimezone(UTC), following.astimezone(UTC)


async def _fetch(url: str, loaded: dict[str, Any]) -> dict[str, list[tuple]]:
    ids = (loaded["institution_id"], loaded["questionnaire_id"], loaded["department_id"])
    since, until = _month_bounds(loaded["zone"])
    if url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"), timeout=30)) as conn:
            plain = [str(v) for v in ids]
            return {"responses": conn.execute(BARE["responses"].format(*"????"), (*plain, MONTH)).fetchall(),
                    "answers": conn.execute(BARE["answers"].format(*"????"), (*plain, MONTH)).fetchall(),
                    "invitations": conn.execute(BARE["invitations"].format(*"?????"), (
                        *plain, _sqlite_value(since), _sqlite_value(until))).fetchall()}
    conn = await asyncpg.connect(url)
    try:
        return {"responses": [tuple(r) for r in await conn.fetch(BARE["responses"].format("$1", "$2", "$3", "$4"),
                                                                   *ids, MONTH)],
                "answers": [tuple(r) for r in await conn.fetch(BARE["answers"].format("$1", "$2", "$3", "$4"),
                                                                 *ids, MONTH)],
                "invitations": [tuple(r) for r in await conn.fetch(
                    BARE["invitations"].format("$1", "$2", "$3", "$4", "$5"), *ids, since, until)]}
    finally:
        await conn.close()


def _estimate(interval: stats.Interval) -> dict[str, float | None]:
    return {"value": interval.value, "low": interval.low, "high": interval.high}


def _percent(interval: stats.Interval) -> stats.Interval:
    return stats.Interval(100 * interval.value, 100 * (interval.low or 0), 100 * (interval.high or 0))


def bare_report(rows: dict[str, list[tuple]]) -> dict[str, Any]:
    """The report's row computed from every response, answer and invitation (the department and month have
    thousands of responses: every figure is shown)."""
    responses = rows["responses"]
    scores = [float(r[0]) for r in responses if r[0] is not None]
    judged = [bool(r[1]) for r in responses if r[1] is not None]
    nps = [int(r[2]) for r in responses if r[2] is not None]
    csat = [int(r[3]) for r in responses if r[3] is not None]
    satisfied = _percent(stats.wilson(sum(judged), len(judged)))
    by_item: dict[str, Counter[str]] = defaultdict(Counter)
    answering: dict[str, set[Any]] = defaultdict(set)
    for response_id, link, number, choice in rows["answers"]:
        label = choice if number is None else str(int(number)) if float(number).is_integer() else str(number)
        by_item[link][label] += 1
        answering[link].add(response_id)
    items = []
    for item in definitions.questions(ITEMS):
        if item["kind"] == "text":
            continue
        counts = by_item[item["link_id"]]
        if item["kind"] == "choice":
            labels, mean = [o["code"] for o in item["options"]], None
        else:
            low, high = definitions.RANGES[item["kind"]]
            labels = [str(v) for v in range(low, high + 1)]
            sample = stats.Sample.from_counts({float(v): n for v, n in counts.items()})
            mean = _estimate(stats.mean_interval(sample, bounds=(low, high)))
        items.append({"linkId": item["link_id"], "responses": len(answering[item["link_id"]]), "mean": mean,
                      "distribution": [{"value": v, "responses": counts.get(v, 0)} for v in labels]})
    invited = len(rows["invitations"])
    answered = sum(1 for (a,) in rows["invitations"] if a)
    return {
        "minCell": MIN_CELL, "satisfactionTarget": TARGET,
        "rows": [{
            "version": 1, "month": MONTH, "invited": invited, "answered": answered,
            "responseRate": 100 * answered / invited, "responses": len(responses), "status": "SHOWN",
            "meetsTarget": satisfied.value >= TARGET,
            "score": _estimate(stats.mean_interval(stats.Sample.from_sums(
                len(scores), sum(scores), sum(s * s for s in scores)), bounds=(0, 100))),
            "satisfied": _estimate(satisfied),
            "nps": _estimate(stats.nps(sum(1 for v in nps if v >= 9), sum(1 for v in nps if v <= 6), len(nps))),
            "csat": _estimate(_percent(stats.wilson(sum(1 for v in csat if v >= 4), len(csat)))),
            "items": items}]}


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return round(value, 6) if isinstance(value, float) else value


async def baseline(url: str, loaded: dict[str, Any], requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    times, rows = [], 0
    answer: dict[str, Any] = {}
    for _ in range(requests):
        started = time.perf_counter()
        fetched = await _fetch(url, loaded)
        answer = bare_report(fetched)
        times.append(time.perf_counter() - started)
        rows = sum(len(v) for v in fetched.values())
    return answer, {"median_ms": statistics.median(times) * 1000, "p95_ms": _p95(times) * 1000, "rows": rows}


# -- careloop ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def rows_returned() -> Iterator[list[int]]:
    """Count the rows careloop's database client hands back (every read goes through ``execute_query_dict`` or
    ``execute_query``); yields a one-item list."""
    client = type(connections.get("default"))
    originals = {name: getattr(client, name) for name in ("execute_query_dict", "execute_query")}
    counted = [0]

    async def query_dict(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = await originals["execute_query_dict"](self, *args, **kwargs)
        counted[0] += len(found)
        return found

    async def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = await originals["execute_query"](self, *args, **kwargs)
        counted[0] += len(found[1])
        return found

    client.execute_query_dict, client.execute_query = query_dict, query
    try:
        yield counted
    finally:
        for name, method in originals.items():
            setattr(client, name, method)


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


async def careloop(client: httpx.AsyncClient, token: str, loaded: dict[str, Any],
                   requests: int) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {"query": R1, "operationName": "R1",
            "variables": {"key": str(loaded["key"]), "dep": str(loaded["department_id"]), "month": MONTH}}
    headers = {"authorization": f"Bearer {token}"}

    async def ask() -> dict[str, Any]:
        reply = (await client.post("/graphql", json=body, headers=headers)).json()
        if reply.get("errors"):
            raise RuntimeError(f"R1: {reply['errors']}")
        return dict(reply["data"]["surveyReport"])

    answer = await ask()  # warm-up: key ring, caches
    audit_before = await AuditEvent.filter(institution_id=loaded["institution_id"]).count()
    times = []
    with measure.tortoise_statements() as statements, rows_returned() as rows:
        for _ in range(requests):
            started = time.perf_counter()
            answer = await ask()
            times.append(time.perf_counter() - started)
    audit = await AuditEvent.filter(institution_id=loaded["institution_id"]).count() - audit_before
    return answer, {"median_ms": statistics.median(times) * 1000, "p95_ms": _p95(times) * 1000,
                    "statements": statements.count / requests, "rows": rows[0] / requests,
                    "audit_rows": audit / requests}


# -- one database ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database(kind: str, admin_url: str, stamp: datetime) -> AsyncIterator[str]:
    """A new empty database of ``kind`` (postgres or sqlite), dropped or removed afterwards."""
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix="careloop_bench_r1_")
        try:
            yield "sqlite://" + str(Path(directory) / "careloop.sqlite3")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    name = f"careloop_bench_r1_{stamp:%Y%m%d%H%M%S}_{os.getpid()}"
    await dataset.create_database(admin_url, name)
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await dataset.drop_database(admin_url, name)


async def measure_one(kind: str, args: argparse.Namespace, hashing: HashParameters, stamp: datetime) -> dict[str, Any]:
    count = 2_000 if getattr(args, "quick", False) else args.responses
    requests = 5 if getattr(args, "quick", False) else args.report_requests
    async with fresh_database(kind, args.admin_url, stamp) as url:
        settings = Settings(database_url=url, environment="production", log_level="WARNING",
                            master_key=base64.b64encode(os.urandom(32)).decode(), password_hashing=hashing)
        password = base64.urlsafe_b64encode(os.urandom(18)).decode()
        say(f"{kind}: migrating a fresh database")
        await db.migrate(url)
        await db.open_database(url if kind == "sqlite" else url + "?maxsize=10")
        try:
            services = build_services(settings)
            started = time.perf_counter()
            loaded = await load(url, services, password, count)
            say(f"{kind}: loaded {loaded['responses']:,} responses and {loaded['answers']:,} answers in "
                f"{time.perf_counter() - started:.1f}s")
            app = create_app(settings, services, manage_database=False)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                         timeout=120) as client:
                login = (await client.post("/graphql", json={"query": LOGIN, "variables": {
                    "e": HEAD_EMAIL, "p": password}})).json()
                token = str(login["data"]["login"]["token"])
                answer, ours = await careloop(client, token, loaded, requests)
            expected, bare = await baseline(url, loaded, requests)
        finally:
            await db.close_database()
    difference = measure.first_difference(_rounded(answer), _rounded(expected))
    if difference is not None:
        raise measure.Mismatch(f"R1 on {kind}: careloop and the baseline differ at {difference}")
    row = answer["rows"][0]
    say(f"{kind}: careloop {ours['median_ms']:.0f} ms a report ({ours['statements']:.0f} statements, "
        f"{ours['rows']:.0f} rows); the baseline {bare['median_ms']:.0f} ms ({bare['rows']:,} rows); same answers")
    return {"responses": count, "requests": requests, "careloop": ours, "baseline": bare,
            "ratio": bare["median_ms"] / ours["median_ms"],
            "figures": {"responses": row["responses"], "invited": row["invited"], "score": row["score"]["value"],
                        "satisfied": row["satisfied"]["value"], "nps": row["nps"]["value"],
                        "csat": row["csat"]["value"]}}


async def measure_all(args: argparse.Namespace, hashing: HashParameters, stamp: datetime) -> dict[str, Any]:
    """R1 on each database of ``--report-databases``, one after the other."""
    return {kind: await measure_one(kind, args, hashing, stamp) for kind in args.report_databases.split(",")}


def markdown(by_database: dict[str, Any]) -> list[str]:
    """R1's table for the run's report."""
    head = ["database", "responses", "careloop median ms", "p95 ms", "statements", "rows read", "audit rows",
            "baseline median ms", "baseline rows read", "ratio"]
    lines = ["## R1 a department's monthly survey report over its responses (issue 14)", "",
             "careloop: surveyReport for one department and month (7 Likert items, NPS, CSAT, a choice) through the "
             "API, aggregated in SQL; baseline: every response, answer and invitation of that department and month "
             "read over the driver and the same figures computed in Python. Same answers checked. Ratio = baseline "
             "time / careloop time.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, r in by_database.items():
        c, b = r["careloop"], r["baseline"]
        lines.append("| " + " | ".join([
            kind, f"{r['responses']:,}", f"**{c['median_ms']:.0f}**", f"{c['p95_ms']:.0f}", f"{c['statements']:.0f}",
            f"{c['rows']:.0f}", f"{c['audit_rows']:.0f}", f"{b['median_ms']:.0f}", f"{b['rows']:,}",
            f"**{r['ratio']:.2f}**"]) + " |")
    return lines


def main() -> None:
    """R1 alone: ``python -m bench.survey_report [--report-databases sqlite] [--responses 2000]``."""
    from bench.run import ARGON2  # here: bench.run imports this module

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results = asyncio.run(measure_all(args, ARGON2, datetime.now(UTC)))
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
