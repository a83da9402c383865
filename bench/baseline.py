"""The bare baseline: Starlette + asyncpg + orjson, one uvicorn worker (uvloop, httptools, as careloop serve),
no GraphQL, no policy, no audit.

It answers POST /graphql with the JSON careloop returns for the benchmark's operations, chosen by
``operationName`` (W0..W6) with the same variables, so wrk sends both servers the same bytes.
Encrypted fields are opened with the institution's key, unwrapped once at start-up with careloop's
MasterKey, as ``models.keyring.KeyRing`` does. W5 (the worklist) is the tasks of the account in
BENCH_NURSE (the baseline has no sign-in), due by today in the institution's time zone (read once at
start-up). W6 (free slots) computes the slots with careloop's ``core.slots`` on the institution's
calendar (zone, holidays and make-up days read once at start-up) from three statements.

    python -m bench.baseline --port 8101   # env: BENCH_DSN, BENCH_INSTITUTION, BENCH_NURSE, CARELOOP_MASTER_KEY
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.servers import HTTP_STACK
from core.business_time import Calendar
from core.crypto import InstitutionKeys, MasterKey, field_aad
from core.ids import uuid7
from core.slots import Adjustment, Plan, parse_week, slots
from core.validation import normalize_phone

PATIENT_SQL = """SELECT id, full_name, sex, birth_date, phone, address, allergies FROM patient
                 WHERE institution_id = $1 AND id > $2 ORDER BY id LIMIT $3"""
ONE_PATIENT_SQL = """SELECT id, full_name, sex, birth_date, phone, address, allergies FROM patient
                     WHERE institution_id = $1 AND id = $2"""
CONTACTS_SQL = """SELECT patient_id, name, relationship, phone, id FROM contact
                  WHERE institution_id = $1 AND patient_id = ANY($2::uuid[]) ORDER BY id"""
INSERT_CONTACT_SQL = """INSERT INTO contact (id, institution_id, patient_id, created_at, updated_at, name,
                        relationship, phone, phone_bidx, is_emergency, may_receive_information, notes)
                        VALUES ($1, $2, $3, now(), now(), $4, $5, $6, $7, $8, $9, NULL)"""
AUDIT_SQL = """SELECT id, seq, occurred_at, actor_kind, actor_id, token_id, action, resource_type, resource_id,
                      patient_id, field_classes, fields_read, outcome, reason, policy_rule, request_id,
                      client_address, user_agent, hash, prev_hash
               FROM audit_event WHERE institution_id = $1 ORDER BY seq DESC LIMIT $2"""

# The worklist (W5): open tasks of one owner due by a local date, the earliest first, with the patient's
# name and sealed phone, in one statement.
WORKLIST_SQL = """SELECT t.id, t.due_on, t.status, t.patient_id, p.full_name, p.phone
                  FROM follow_up_task t JOIN patient p ON p.id = t.patient_id AND p.institution_id = t.institution_id
                  WHERE t.institution_id = $1 AND t.owner_id = $2 AND t.status IN ('requested', 'accepted')
                    AND t.due_on <= $3 AND (t.due_on, t.id) > ($5, $6)
                  ORDER BY t.due_on, t.id LIMIT $4"""
EARLIEST = (date.min, uuid.UUID(int=0))

# Free slots (W6): a department's active schedules, their exceptions in force over the days asked for, and the
# places held per slot (booked or arrived appointments with a seat), counted in one grouped statement.
SCHEDULES_SQL = """SELECT id, name, week, slot_minutes, capacity FROM schedule
                   WHERE institution_id = $1 AND department_id = $2 AND active ORDER BY name, id"""
EXCEPTIONS_SQL = """SELECT schedule_id, kind, starts_at, ends_at, capacity FROM schedule_exception
                    WHERE institution_id = $1 AND schedule_id = ANY($2::uuid[]) AND cancelled_at IS NULL
                      AND starts_at < $4 AND ends_at > $3"""
HELD_SQL = """SELECT schedule_id, slot_start, count(*) AS held FROM appointment
              WHERE institution_id = $1 AND schedule_id = ANY($2::uuid[]) AND status IN ('booked', 'arrived')
                AND seat IS NOT NULL AND slot_start >= $3 AND slot_start < $4
              GROUP BY schedule_id, slot_start"""


class Db:
    """The pool, counting statements so the bench can report SQL per request (GET /stats)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.statements = pool, 0

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.statements += 1
        return await self.pool.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        self.statements += 1
        await self.pool.execute(sql, *args)


def cursor(kind: str, key: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def after_id(text: str | None) -> uuid.UUID:
    if not text:
        return uuid.UUID(int=0)
    return uuid.UUID(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split(":", 1)[1])


def task_key(text: str) -> tuple[date, uuid.UUID]:
    """A worklist cursor ("follow-up-task:<due>|<id>", base64) as (due_on, id)."""
    due, task_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split(":", 1)[1].split("|")
    return date.fromisoformat(due), uuid.UUID(task_id)


def ident(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


class Baseline:
    def __init__(self, db: Db, keys: InstitutionKeys, zone: ZoneInfo | None = None,
                 nurse: uuid.UUID | None = None, calendar: Calendar | None = None) -> None:
        self.db, self.keys, self.iid = db, keys, keys.institution_id
        self.zone, self.nurse, self.calendar = zone, nurse, calendar

    def open(self, table: str, column: str, row_id: uuid.UUID, value: bytes | None) -> str | None:
        return None if value is None else self.keys.open(value, field_aad(self.iid, table, column, row_id))

    async def patients(self, rows: list[asyncpg.Record]) -> list[dict]:
        contacts: dict[uuid.UUID, list[dict]] = defaultdict(list)
        for c in await self.db.fetch(CONTACTS_SQL, self.iid, [r["id"] for r in rows]):
            contacts[c["patient_id"]].append({"name": c["name"], "relationship": c["relationship"].upper(),
                                              "phone": self.open("contact", "phone", c["id"], c["phone"])})
        return [{
            "id": str(r["id"]), "fullName": r["full_name"], "sex": r["sex"].upper(),
            "birthDate": r["birth_date"] and r["birth_date"].isoformat(),
            "phone": self.open("patient", "phone", r["id"], r["phone"]),
            "address": self.open("patient", "address", r["id"], r["address"]),
            "allergies": self.open("patient", "allergies", r["id"], r["allergies"]),
            "contacts": contacts[r["id"]],
        } for r in rows]

    async def w0(self, v: dict) -> dict:
        return {"__typename": "Query"}

    async def w1(self, v: dict) -> dict:
        first = v["first"]
        rows = await self.db.fetch(PATIENT_SQL, self.iid, after_id(v.get("after")), first + 1)
        nodes = await self.patients(rows[:first])
        end = cursor("patient", nodes[-1]["id"]) if nodes else None
        return {"patients": {"edges": [{"node": n} for n in nodes],
                             "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end}}}

    async def w2(self, v: dict) -> dict:
        rows = await self.db.fetch(ONE_PATIENT_SQL, self.iid, uuid.UUID(v["id"]))
        return {"patient": (await self.patients(rows))[0] if rows else None}

    async def w3(self, v: dict) -> dict:
        data, cid = v["input"], uuid7()
        phone = normalize_phone(data["phone"]) if data.get("phone") else None
        sealed = None if phone is None else self.keys.seal(phone, field_aad(self.iid, "contact", "phone", cid))
        bidx = None if phone is None else self.keys.blind_index("phone", phone)
        await self.db.execute(INSERT_CONTACT_SQL, cid, self.iid, uuid.UUID(v["patientId"]), data["name"],
                              data["relationship"].lower(), sealed, bidx, data.get("isEmergency", False),
                              data.get("mayReceiveInformation", False))
        return {"contactCreate": {"id": str(cid), "name": data["name"], "relationship": data["relationship"],
                                  "phone": phone}}

    async def w4(self, v: dict) -> dict:
        first = v["first"]
        rows = await self.db.fetch(AUDIT_SQL, self.iid, first + 1)
        nodes = [{
            "id": str(r["id"]), "seq": r["seq"], "occurredAt": r["occurred_at"], "actorKind": r["actor_kind"].upper(),
            "actorId": ident(r["actor_id"]), "tokenId": ident(r["token_id"]), "action": r["action"].upper(),
            "resourceType": r["resource_type"], "resourceId": ident(r["resource_id"]),
            "patientId": ident(r["patient_id"]),
            "fieldClasses": [c.upper() for c in r["field_classes"].split(",") if c],
            "fieldsRead": [f for f in r["fields_read"].split(",") if f], "outcome": r["outcome"].upper(),
            "reason": r["reason"], "policyRule": r["policy_rule"], "requestId": r["request_id"],
            "clientAddress": r["client_address"], "userAgent": r["user_agent"], "hash": r["hash"],
            "prevHash": r["prev_hash"],
        } for r in rows[:first]]
        end = cursor("audit", nodes[-1]["seq"]) if nodes else None
        return {"auditEvents": {"edges": [{"node": n} for n in nodes],
                                "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end}}}

    async def w5(self, v: dict) -> dict:
        today = datetime.now(self.zone).date()
        after = task_key(v["after"]) if v.get("after") else EARLIEST
        rows = await self.db.fetch(WORKLIST_SQL, self.iid, self.nurse, today, v["first"], *after)
        return {"followUpWorklist": {"nodes": [{
            "id": str(r["id"]), "dueOn": r["due_on"].isoformat(), "status": r["status"].upper(),
            "patient": {"fullName": r["full_name"],
                        "phone": self.open("patient", "phone", r["patient_id"], r["phone"])},
        } for r in rows]}}

    async def w6(self, v: dict) -> dict:
        assert self.calendar is not None
        zone, first, last = self.calendar.zone, date.fromisoformat(v["from"]), date.fromisoformat(v["to"])
        begin = datetime.combine(first, time(0), zone).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
        now = datetime.now(UTC)
        schedules = await self.db.fetch(SCHEDULES_SQL, self.iid, uuid.UUID(v["department"]))
        ids = [r["id"] for r in schedules]
        exceptions: dict[uuid.UUID, list[Adjustment]] = defaultdict(list)
        for r in await self.db.fetch(EXCEPTIONS_SQL, self.iid, ids, begin, end):
            exceptions[r["schedule_id"]].append(Adjustment(r["kind"], r["starts_at"], r["ends_at"], r["capacity"]))
        held = {(r["schedule_id"], r["slot_start"]): r["held"]
                for r in await self.db.fetch(HELD_SQL, self.iid, ids, max(begin, now), end)}
        found = []
        for schedule in schedules:
            sid = str(schedule["id"])
            plan = Plan(parse_week(orjson.loads(schedule["week"])), schedule["slot_minutes"], schedule["capacity"],
                        tuple(exceptions[schedule["id"]]))
            for slot in slots(plan, self.calendar, first, last):
                booked = held.get((schedule["id"], slot.start), 0)
                if slot.start > now and slot.capacity > booked:
                    found.append((slot.start, {"scheduleId": sid, "start": slot.start.isoformat(),
                                               "end": slot.end.isoformat(), "capacity": slot.capacity,
                                               "booked": booked, "free": slot.capacity - booked}))
        found.sort(key=lambda pair: pair[0])  # stable: schedules by name within one start
        return {"freeSlots": [slot for _, slot in found]}


async def load_calendar(conn: asyncpg.Connection, institution_id: uuid.UUID, zone: ZoneInfo) -> Calendar:
    """The institution's days: its zone, holidays and make-up working days (what slots depend on)."""
    row = await conn.fetchrow("SELECT holidays, workdays FROM business_calendar WHERE institution_id = $1",
                              institution_id)
    if row is None:
        return Calendar(zone=zone)
    return Calendar(zone=zone, holidays=frozenset(date.fromisoformat(d) for d in orjson.loads(row["holidays"])),
                    workdays=frozenset(date.fromisoformat(d) for d in orjson.loads(row["workdays"])))


async def load_keys(conn: asyncpg.Connection, master: MasterKey, institution_id: uuid.UUID) -> InstitutionKeys:
    """The institution's data keys, unwrapped once, as KeyRing.get does."""
    keys = InstitutionKeys(institution_id)
    for row in await conn.fetch("SELECT version, wrapped_key FROM institution_key WHERE institution_id = $1 "
                                "ORDER BY version", institution_id):
        keys.add(row["version"], master.unwrap(bytes(row["wrapped_key"]), institution_id, row["version"]))
    return keys


def create_app(dsn: str, institution_id: uuid.UUID, master: MasterKey, nurse: uuid.UUID | None = None,
               pool_size: int = 5) -> Starlette:
    state: dict[str, Baseline] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size)
        async with pool.acquire() as conn:
            keys = await load_keys(conn, master, institution_id)
            zone = ZoneInfo(await conn.fetchval("SELECT time_zone FROM institution WHERE id = $1", institution_id))
            calendar = await load_calendar(conn, institution_id, zone)
        state["app"] = Baseline(Db(pool), keys, zone, nurse, calendar)
        try:
            yield
        finally:
            await pool.close()

    async def graphql(request: Request) -> Response:
        body = orjson.loads(await request.body())
        handler = getattr(state["app"], body["operationName"].lower())
        data = await handler(body.get("variables") or {})
        return Response(orjson.dumps({"data": data}), media_type="application/json")

    async def stats(request: Request) -> Response:
        return Response(orjson.dumps({"statements": state["app"].db.statements}), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/stats", stats),
                             Route("/healthz", healthz)], lifespan=lifespan)


def app_from_env() -> Starlette:
    """The app as uvicorn's factory makes it in each worker process, from the environment the bench sets."""
    return create_app(os.environ["BENCH_DSN"], uuid.UUID(os.environ["BENCH_INSTITUTION"]),
                      MasterKey.from_base64(os.environ["CARELOOP_MASTER_KEY"]),
                      uuid.UUID(os.environ["BENCH_NURSE"]) if os.environ.get("BENCH_NURSE") else None)


def main() -> None:
    parser = argparse.ArgumentParser(description="careloop's bare benchmark baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, as careloop's")
    args = parser.parse_args()
    uvicorn.run("bench.baseline:app_from_env", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, log_level="warning", loop=HTTP_STACK["loop"], http=HTTP_STACK["http"])


if __name__ == "__main__":
    main()
