"""The one audit writer: appends records to their institutions' hash chains.

``append`` runs inside the caller's transaction when there is one (a write and its
audit records commit together) and in a transaction of its own otherwise (denials, which
must survive the rollback of the operation they deny); on PostgreSQL one chain's append is
one statement, its own transaction. ``append_with`` sends a write and its records together.

On SQLite the chain head row is locked for the append, so writers take turns and the sequence stays gap-free. On
PostgreSQL an append links its events when the chain head is free (first linking any that wait) and otherwise posts
them to the chain's inbox without waiting (migration 0023): writers never wait for each other, and whoever next
finds the head free links everything waiting. Readers of the trail call ``seal`` first, so they see every committed
event. Every event carries a MAC under a key derived from the master key (``use_mac_key``), checked by ``verify``.

An append is idempotent: an event's id is its record's (``AuditRecord.id``, given when the record is made), and an
event whose id is on the chain already is skipped if it is the same event (its body hashes to the stored hash at the
stored place), so an append tried again after a failure that may have been committed (a connection lost before the
answer was read; the group commit's batch) writes nothing twice. Another event under a taken id is refused, as the
primary key always refused it. PostgreSQL's ``audit_link`` skips it (migration 0051), SQLite's writer here.

A chain is started (its head row created at seq 0, the genesis hash) by its first append, and only then: an append
that finds no head while the chain has an event, an archive anchor or a signed checkpoint is refused
(``ChainHeadMissing``; PostgreSQL's ``audit_seal`` since migration 0052, SQLite's writer here), and nothing of it
lands. The head row was deleted (by someone with the database owner's rights): starting the chain again would link a
second chain from the genesis hash at seq 1 (refused by the unique key while seq 1 is held, silently after an archive
run) and the deletion would no longer show. ``careloop audit verify`` names the chain HEAD_MISSING.

A request sent with an ``Idempotency-Key`` (``RequestKey``, held by ``resolvers/idempotency_key.py``) has the key's
row written with its first write's record: in the write's statement (``append_with`` on PostgreSQL) or transaction,
so the row exists exactly when the write committed (each later write of the request names itself in it), and a
resend whose write gets that far is refused by the row's unique key (``KeyTaken``), its write undone with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise.transactions import in_transaction

from audit.chain import GENESIS_HASH, body_around, patients_of, row_hash, subjects_text
from audit.events import Action, AuditRecord, Outcome
from core.errors import AuditUnrecorded, Conflict
from core.ids import uuid7
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent, AuditPatientIndex, IdempotencyKey

# Events about no institution (a login with an unknown e-mail) go to the system chain.
SYSTEM_CHAIN = uuid.UUID(int=0)
# Told each append's duration (seconds, lock wait included) and number of events: app/metrics.py listens.
append_observers: list[Callable[[float, int], None]] = []
# Events wait in PostgreSQL's inbox at most about this long when no writer or reader comes to seal them.
SEAL_PENDING_AFTER_SECONDS = 0.5
log = logging.getLogger("careloop.audit")
_mac_key: bytes | None = None
# PostgreSQL's ``audit_seal`` (migration 0052) refuses a chain that has lost its head with this SQLSTATE.
HEAD_MISSING_SQLSTATE = "CL001"


class ChainHeadMissing(AuditUnrecorded):
    """An append to a chain whose head row is missing though the chain has an event, an archive anchor or a signed
    checkpoint: refused, and nothing of it written (the write it records neither). Logged at ERROR when raised."""

    def __init__(self, institution_id: uuid.UUID) -> None:
        super().__init__()
        self.institution_id = institution_id


def _head_missing(institution_id: uuid.UUID) -> ChainHeadMissing:
    """The refusal, told in the log by the chain's institution (as sealing's failures are), never an event's data."""
    log.error("the audit chain head of institution %s is missing though the chain has events, an archive anchor or a "
              "checkpoint: nothing is appended to it (careloop audit verify names it)", institution_id)
    return ChainHeadMissing(institution_id)


async def chain_started(institution_id: uuid.UUID) -> bool:
    """Whether the chain has an event, an archive anchor or a signed checkpoint: then it has begun, and a missing head
    was deleted, not yet to be made. The current transaction's connection, if there is one."""
    return (await AuditEvent.exists(institution_id=institution_id)
            or await AuditArchive.exists(institution_id=institution_id)
            or await AuditCheckpoint.exists(institution_id=institution_id))


@contextlib.contextmanager
def _head_checked(institution_id: uuid.UUID, *, told: bool = False) -> Iterator[None]:
    """PostgreSQL's refusal of a chain without its head (``HEAD_MISSING_SQLSTATE``) as ``ChainHeadMissing``, logged
    unless ``told`` already."""
    try:
        yield
    except ChainHeadMissing:
        raise
    except Exception as exc:
        if _sqlstate(exc) == HEAD_MISSING_SQLSTATE:
            raise (ChainHeadMissing(institution_id) if told else _head_missing(institution_id)) from None
        raise


ALREADY_DONE = "already_done"  # ``extensions.reason`` of a resend refused by its Idempotency-Key


@dataclass
class RequestKey:
    """A signed-in caller's ``Idempotency-Key`` for the request running: written (as keyed hashes, with what its
    write was) beside the first allowed write record of that request, each later one naming itself in its row.
    ``taken_by``: the write record a resend's key was refused for, when another request with the same key committed
    first."""

    institution_id: uuid.UUID
    actor_kind: str
    actor_id: uuid.UUID
    key_hash: str
    request_hash: str
    request_id: str
    row_id: uuid.UUID | None = None  # its row's, once written
    taken_by: AuditRecord | None = None
    # a resend run again as new, its change's file out of the caller's reach now (resolvers/idempotency_key.py): its
    # own checks answer it, and only a write refused by the key is told done
    run_again: bool = False


class KeyTaken(Conflict):
    """The request's Idempotency-Key was written by another request first (a resend while the first was running):
    this one's write is undone."""

    def __init__(self) -> None:
        super().__init__("This request was done already (its Idempotency-Key was used by a request that wrote first): "
                         "read before writing again.", reason=ALREADY_DONE)


# The running request's key, when it came with one (set by the GraphQL extension that admits it). Tasks the request
# starts copy the variable and share the one object, so the key is written once.
_REQUEST_KEY: ContextVar[RequestKey | None] = ContextVar("careloop_request_key", default=None)


@contextlib.contextmanager
def request_key(key: RequestKey) -> Iterator[RequestKey]:
    """``key`` held for the writes made inside the block."""
    token = _REQUEST_KEY.set(key)
    try:
        yield key
    finally:
        _REQUEST_KEY.reset(token)


@contextlib.contextmanager
def unkeyed() -> Iterator[None]:
    """Writes the system makes on a request's way (the follow-up tasks and survey invitations a finished visit asks
    for, an institution's default rules) are not what the request's key names: a resend names the record asked for
    (found in review: a partner's finished home-care visit sent again was told it had written a follow-up rule, or a
    task, or an invitation of the file, records of classes its token does not read, and recorded so). The key's row
    is written by the request's own write, in the same transaction."""
    token = _REQUEST_KEY.set(None)
    try:
        yield
    finally:
        _REQUEST_KEY.reset(token)


def _keyed(records: Sequence[AuditRecord]) -> tuple[RequestKey, AuditRecord] | None:
    """The running request's key and the last allowed write among ``records`` that is that request's own (a group
    commit's batch holds other requests' reads), if any: the key's row names the request's last write, its main
    record rather than what it wrote first on the way (found in review: a reschedule named the old appointment, a
    first follow-up rule the default rule made before it)."""
    key = _REQUEST_KEY.get()
    if key is None:
        return None
    record = next((r for r in reversed(records) if r.outcome is Outcome.ALLOWED and r.action is not Action.READ
                   and r.request.request_id == key.request_id), None)
    return None if record is None else (key, record)


def _key_row(key: RequestKey, record: AuditRecord) -> dict[str, Any]:
    return {"id": uuid7(), "institution_id": key.institution_id, "created_at": datetime.now(UTC),
            "actor_kind": key.actor_kind, "actor_id": key.actor_id, "key_hash": key.key_hash,
            "request_hash": key.request_hash, "action": record.action.value, "resource_type": record.resource_type,
            "resource_id": record.resource_id, "patient_id": record.patient_id, "request_id": key.request_id[:64]}


_KEY_CASTS = {"id": "uuid", "institution_id": "uuid", "created_at": "timestamptz", "actor_id": "uuid",
              "resource_id": "uuid", "patient_id": "uuid"}


def _key_insert_after(first: int, row: dict[str, Any]) -> str:
    """PostgreSQL's insert of the key's ``row`` for each row ``written`` returned (one: a write of one row), its values
    from placeholder ``first`` on, in the row's order."""
    values = ", ".join(f"${first + i}::{_KEY_CASTS.get(column, 'text')}" for i, column in enumerate(row))
    columns = ", ".join(f'"{column}"' for column in row)
    return f'INSERT INTO "idempotency_key" ({columns}) SELECT {values} FROM written'  # noqa: S608


@contextlib.contextmanager
def _key_checked(keyed: tuple[RequestKey, AuditRecord] | None) -> Iterator[None]:
    """The key's row refused by its unique key as ``KeyTaken``."""
    try:
        yield
    except Exception as exc:
        taken = (_sqlstate(exc) == "23505" and _table_of(exc) == "idempotency_key") \
            or "UNIQUE constraint failed: idempotency_key." in str(exc)  # PostgreSQL's, SQLite's
        if keyed is not None and taken:
            keyed[0].taken_by = keyed[1]
            raise KeyTaken() from None
        raise


async def _write_key(keyed: tuple[RequestKey, AuditRecord] | None) -> None:
    """The key's row, in the current transaction: written with the request's first write, naming each later one."""
    if keyed is None:
        return
    key, record = keyed
    if key.row_id is not None:
        await IdempotencyKey.filter(id=key.row_id).update(
            action=record.action.value, resource_type=record.resource_type, resource_id=record.resource_id,
            patient_id=record.patient_id)
        return
    row = _key_row(key, record)
    with _key_checked(keyed):
        await _insert(IdempotencyKey, [row])
    key.row_id = row["id"]


def _table_of(error: BaseException) -> str:
    """The table of a PostgreSQL error (asyncpg's, or Tortoise's around it), '' if none."""
    return next((name for cause in (error, error.__cause__, *error.args)
                 if isinstance(name := getattr(cause, "table_name", None), str)), "")


# The chains ``seal_pending`` found without their head, told once by this process (it looks every second).
_told_headless: set[uuid.UUID] = set()


def use_mac_key(key: bytes | None) -> None:
    """The key every event's MAC is made with (``core.crypto.MasterKey.audit_mac_key``); set at start-up."""
    global _mac_key
    _mac_key = key


def current_mac_key() -> bytes | None:
    return _mac_key


def mac(key: bytes, columns: dict[str, Any]) -> str:
    """An event's MAC: HMAC-SHA256 of its hashed body without the sequence number and previous hash (known only
    when it is linked), so it is made when the event is and checked against the columns as stored."""
    return mac_of_body(key, *body_around(columns))


def mac_of_body(key: bytes, head: str, middle: str) -> str:
    """The MAC of an event's body pieces (``audit.chain.body_around``), as PostgreSQL's inbox holds them."""
    return hmac.new(key, (head + middle).encode(), hashlib.sha256).hexdigest()


async def start_chain(institution_id: uuid.UUID) -> None:
    """Create the chain head if there is none; safe to call concurrently. For a chain that has not begun (a new
    institution's): the writer calls it only when ``chain_started`` says so."""
    await AuditChainHead.bulk_create(
        [AuditChainHead(institution_id=institution_id, last_seq=0, last_hash=GENESIS_HASH)], ignore_conflicts=True
    )


async def append(records: Sequence[AuditRecord]) -> None:
    if not records:
        return
    by_chain: dict[uuid.UUID, list[AuditRecord]] = defaultdict(list)
    for record in once(records):
        by_chain[record.institution_id].append(record)
    started = time.perf_counter()
    db = AuditEvent._meta.db
    keyed = _keyed(records)
    if db.capabilities.dialect == "postgres" and len(by_chain) == 1 and keyed is None:
        # One statement is its own transaction: no BEGIN and COMMIT round trips around it.
        [(institution_id, chain_records)] = by_chain.items()
        await _append_in_database(db, institution_id, chain_records)
    else:
        async with in_transaction():
            await _write_key(keyed)
            for institution_id in sorted(by_chain):  # a fixed lock order: no deadlock between chains
                await _append_to_chain(institution_id, by_chain[institution_id])
    for observe in append_observers:
        observe(time.perf_counter() - started, len(records))


async def append_before_giving_way(records: Sequence[AuditRecord]) -> None:
    """``append``, finished even when the caller is cancelled meanwhile, and only then the cancellation let through.

    graphql-core cancels a failing field's siblings and waits for them to end before the response leaves: a sibling
    recording a refusal ends only once the record is durable, so no response leaves ahead of its trail (a bare
    ``asyncio.shield`` ended at once and left the append running behind the response). The append runs as its own
    task, so a cancellation never cuts it halfway (on SQLite that would leave the connection's lock held)."""
    task = asyncio.ensure_future(append(records))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("an audit append under a cancelled request failed (%s)", failure(error))
        raise


async def append_with(statement: str, values: Sequence[Any], records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    """Run one write and append its audit records atomically; returns the rows the write returned.

    ``statement`` writes at most one row and ends with a RETURNING clause; ``values`` fill its placeholders
    (the dialect's own: Tortoise's executor builds it); the records are of one institution. On PostgreSQL it
    is one statement, so one round trip and its own transaction: the write as a data-modifying CTE and
    ``audit_append`` called once per row it returns, so the append follows the write, nothing is appended
    when nothing was written, and a failure of either undoes both. On SQLite (no round trip to save) the
    write, then the chain, in one transaction.
    """
    chains = {record.institution_id for record in records}
    if len(chains) != 1:
        raise ValueError("a write's audit records belong to one institution")
    events = once(records)
    (institution_id,) = chains
    started = time.perf_counter()
    db = AuditEvent._meta.db  # the caller's transaction's connection, if there is one
    keyed = _keyed(events)
    if db.capabilities.dialect == "postgres":
        n = len(values)  # the statement is Tortoise-built SQL with placeholders; values are never in it
        first = None if keyed is None or keyed[0].row_id is not None else keyed  # the key's row, with the write
        key_row = {} if first is None else _key_row(*first)
        key = f", keyed AS ({_key_insert_after(n + 3, key_row)})" if key_row else ""  # inserted if it wrote
        key_values = list(key_row.values())
        combined = (f"WITH written AS ({statement}){key} "  # noqa: S608
                    f"SELECT written.*, audit_append(${n + 1}, ${n + 2}::jsonb) AS audit_seq FROM written")
        with _head_checked(institution_id), _key_checked(first):
            rows = await db.execute_query_dict(combined, [*values, institution_id, events_json(events), *key_values])
        for row in rows:
            del row["audit_seq"]
        if keyed is not None and rows:
            if first is not None:
                keyed[0].row_id = key_row["id"]
            else:  # a later write of the request: its row names this one (the caller's transaction, if any)
                await _write_key(keyed)
    else:
        async with in_transaction():
            rows = await AuditEvent._meta.db.execute_query_dict(statement, list(values))
            if rows:
                await _write_key(keyed)
                await _append_to_chain(institution_id, events)
    for observe in append_observers:
        observe(time.perf_counter() - started, len(events) if rows else 0)
    return rows


async def _append_to_chain(institution_id: uuid.UUID, records: list[AuditRecord]) -> None:
    db = AuditEvent._meta.db  # the current transaction's connection
    if db.capabilities.dialect == "postgres":
        await _append_in_database(db, institution_id, records)
        return
    # SQLite: one writer at a time, so the transaction holds the head without a row lock
    chain = [str(institution_id)]
    head = [orjson.dumps([record.id for record in records]).decode(), *chain]
    _, heads = await db.execute_query(_HEAD, head)
    if not heads:
        if await chain_started(institution_id):
            raise _head_missing(institution_id)
        await start_chain(institution_id)
        _, heads = await db.execute_query(_HEAD, head)
    if heads[0]["written"] != "[]":  # some of these ids are on the chain already: an append tried again
        records = await _not_yet_written(db, records)
        if not records:
            return
    seq, prev_hash = heads[0]["last_seq"], heads[0]["last_hash"]
    rows = []
    for record in records:
        seq += 1
        columns = _columns(record, seq, prev_hash)
        columns["mac"] = _mac_of(columns)
        prev_hash = columns["hash"] = row_hash(columns)
        rows.append(columns)
    await _insert(AuditEvent, rows)
    await _insert(AuditPatientIndex, [entry for row in rows for entry in index_rows(row)])
    await db.execute_query(_MOVE_HEAD, [seq, prev_hash, *chain])


# The chain head's read and move on SQLite, written once: Tortoise building these two statements anew was most of
# an append's cost, and every write appends. The read also says which of the events' ids (a JSON array) are on
# the chain already, so an append tried again costs no more statements than a first one.
_HEAD = ('SELECT "last_seq", "last_hash", (SELECT json_group_array("id") FROM "audit_event" WHERE "id" IN '
         '(SELECT "value" FROM json_each(?))) AS "written" FROM "audit_chain_head" WHERE "institution_id" = ?')
_MOVE_HEAD = 'UPDATE "audit_chain_head" SET "last_seq" = ?, "last_hash" = ? WHERE "institution_id" = ?'


async def _not_yet_written(db: Any, records: list[AuditRecord]) -> list[AuditRecord]:
    """The records whose event is not on the chain yet. An event already there under the record's id is skipped if
    it is the same event (its body, at the stored place, hashes to the stored hash, under the same MAC; its patients
    follow from its body), as PostgreSQL's ``audit_link`` skips it; another keeps its record, and the insert refuses
    it (the id is the primary key)."""
    ids = {str(record.id): record for record in records}
    marks = ", ".join("?" * len(ids))
    _, stored = await db.execute_query(f'SELECT "id", "institution_id", "seq", "prev_hash", "hash", "mac" '  # noqa: S608
                                       f'FROM "audit_event" WHERE "id" IN ({marks})', list(ids))
    written = {row["id"] for row in stored if _same_event(ids[row["id"]], row)}
    return [record for record in records if str(record.id) not in written]


def _same_event(record: AuditRecord, stored: Any) -> bool:
    columns = _columns(record, stored["seq"], stored["prev_hash"])
    return (str(record.institution_id) == stored["institution_id"] and row_hash(columns) == stored["hash"]
            and _mac_of(columns) == stored["mac"])


async def _append_in_database(db: Any, institution_id: uuid.UUID, records: list[AuditRecord]) -> None:
    """The events linked if the chain head is free, else posted to its inbox, in one round trip (migration 0023's
    ``audit_append``), which computes each hash as ``row_hash`` does from the body pieces sent."""
    with _head_checked(institution_id):
        await db.execute_query("SELECT audit_append($1, $2::jsonb)", [institution_id, events_json(records)])


async def seal(institution_id: uuid.UUID) -> None:
    """Link every committed event waiting in the chain's inbox, waiting for the head if another transaction holds
    it: called by readers of the trail before they read. Nothing to do on SQLite, which has no inbox."""
    db = AuditEvent._meta.db
    if db.capabilities.dialect == "postgres":
        with _head_checked(institution_id):
            await db.execute_query("SELECT audit_seal($1, true) WHERE EXISTS "
                                   "(SELECT 1 FROM audit_inbox WHERE institution_id = $1)", [institution_id])


async def seal_all() -> None:
    """``seal`` every chain whose inbox holds events, in one statement when none does (the service's start-up, which
    reads every institution's trail). A chain without its head (``ChainHeadMissing``) is passed over, not a reason
    for the others to stay unsealed."""
    db = AuditEvent._meta.db
    if db.capabilities.dialect == "postgres":
        for row in await db.execute_query_dict("SELECT DISTINCT institution_id FROM audit_inbox"):
            try:
                await seal(row["institution_id"])
            except ChainHeadMissing:  # logged; its events keep waiting, and the other chains are sealed
                continue


async def seal_pending(older_than: float = SEAL_PENDING_AFTER_SECONDS) -> int:
    """Seal the chains whose inbox holds events posted more than ``older_than`` seconds ago (their writers found
    the head busy and no one came after them); returns how many chains were sealed. The service calls it every
    second. A chain whose head another transaction holds is left for the next pass (not waited for), so one long
    transaction cannot hold up the other institutions' events."""
    db = AuditEvent._meta.db
    if db.capabilities.dialect != "postgres":
        return 0
    rows = await db.execute_query_dict(
        "SELECT DISTINCT institution_id FROM audit_inbox "
        "WHERE created_at < clock_timestamp() - make_interval(secs => $1)", [older_than])
    sealed = 0
    for row in rows:
        chain = uuid.UUID(str(row["institution_id"]))
        try:
            with _head_checked(chain, told=chain in _told_headless):
                [taken] = await db.execute_query_dict("SELECT audit_seal($1, false) IS NOT NULL AS sealed",
                                                      [row["institution_id"]])
        except ChainHeadMissing:  # told once: its events wait (unlinked) until an operator repairs the chain
            _told_headless.add(chain)
            continue
        except Exception as exc:  # one chain's fault must not hold up the others': it is tried again next pass
            log.error("sealing the waiting audit events of institution %s failed (%s)", row["institution_id"],
                      failure(exc))
            continue
        _told_headless.discard(chain)
        sealed += bool(taken["sealed"])
    return sealed


def failure(error: BaseException) -> str:
    """An error as the log may tell it: its kind and, for a database error, its SQLSTATE. Never its text nor a
    traceback: a database error's message and detail quote the values at fault (a key, a column's content), and an
    audit event holds identifiers."""
    sqlstate = _sqlstate(error)
    return type(error).__name__ + (f", SQLSTATE {sqlstate}" if sqlstate else "")


def _sqlstate(error: BaseException) -> str | None:
    """A database error's SQLSTATE, whether the driver's error or Tortoise's around it."""
    return next((code for cause in (error, error.__cause__, *error.args)
                 if isinstance(code := getattr(cause, "sqlstate", None), str)), None)


def events_json(records: list[AuditRecord]) -> str:
    """``audit_append``'s second argument: each event's row and its body in two pieces around the sequence
    number and the previous hash, which only the database knows. orjson writes the ids and times (the
    database reads them back as the same values); only the body pieces, which are hashed, need ``body_around``'s
    exact text."""
    events = []
    for record in records:
        columns = _columns(record, 0, "")
        head, middle = body_around(columns)
        del columns["seq"], columns["prev_hash"]
        patients = sorted(str(patient) for patient in patients_of(columns))
        signed = mac_of_body(_mac_key, head, middle) if _mac_key is not None else ""
        events.append({"body_head": head, "body_middle": middle, "row": columns, "patients": patients, "mac": signed})
    return orjson.dumps(events, default=_uuid_text).decode()


def _mac_of(columns: dict[str, Any]) -> str:
    return mac(_mac_key, columns) if _mac_key is not None else ""


def _uuid_text(value: Any) -> str:
    """An id orjson does not write itself: a subclass of ``uuid.UUID`` (asyncpg's, on ids read from PostgreSQL)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"an audit event's column cannot hold a {type(value).__name__}")


def index_rows(event: dict[str, Any]) -> list[dict[str, Any]]:
    """An event's rows in the per-patient index: one per patient it is about."""
    return [{"institution_id": event["institution_id"], "seq": event["seq"], "patient_id": patient,
             "occurred_at": event["occurred_at"], "actor_kind": event["actor_kind"], "actor_id": event["actor_id"],
             "action": event["action"], "outcome": event["outcome"]} for patient in sorted(patients_of(event))]


async def _insert(model: type[AuditEvent | AuditPatientIndex | IdempotencyKey], rows: list[dict[str, Any]]) -> None:
    """One multi-row insert with the statement Tortoise builds for the model, without a model instance per row
    (building instances was most of an append's cost)."""
    if not rows:
        return
    db = model._meta.db  # the current transaction's connection
    statement = _INSERTS.get((model, db.executor_class))
    if statement is None:  # once per model and dialect; without a generated key (the index's) among the columns
        executor = db.executor_class(model=model, db=db)
        statement = _INSERTS[model, db.executor_class] = (executor.insert_query, tuple(executor.regular_columns))
    sql, columns = statement
    fields_map = model._meta.fields_map
    await db.execute_many(sql, [[fields_map[c].to_db_value(row[c], model) for c in columns] for row in rows])


_INSERTS: dict[tuple[type, type], tuple[str, tuple[str, ...]]] = {}


class RecordTooLong(ValueError):
    """An audit record with a value longer than its column: refused before anything is written or posted, so the
    operation fails with it rather than its event being set aside when the inbox is sealed (after the answer)."""


def _bounded_columns() -> tuple[tuple[str, int], ...]:
    return tuple((name, limit) for name, field in AuditEvent._meta.fields_map.items()
                 if (limit := getattr(field, "max_length", None)) and name not in ("prev_hash", "hash", "mac"))


_BOUNDED = _bounded_columns()


def _columns(record: AuditRecord, seq: int, prev_hash: str) -> dict[str, Any]:
    columns = _row(record, seq, prev_hash)
    for name, limit in _BOUNDED:
        if len(columns[name]) > limit:
            raise RecordTooLong(f"audit column {name} holds {len(columns[name])} characters, at most {limit}")
    return columns


def once(records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """Each record once: the same record twice in one append is one event (its id is the record's)."""
    return list({record.id: record for record in records}.values())


def _row(record: AuditRecord, seq: int, prev_hash: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "institution_id": record.institution_id,
        "seq": seq,
        "occurred_at": record.occurred_at,
        "actor_kind": record.actor.kind,
        "actor_id": record.actor.id,
        "token_id": record.actor.token_id,
        "action": record.action.value,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "patient_id": record.patient_id,
        "field_classes": ",".join(sorted(record.field_classes)),
        "fields_read": ",".join(sorted(record.fields_read)),
        "outcome": record.outcome.value,
        "reason": record.reason,
        "policy_rule": record.policy_rule,
        "request_id": record.request.request_id[:64],
        "client_address": record.request.client_address[:64],
        "user_agent": record.request.user_agent[:200],
        "subjects": subjects_text(record.subjects),
        "prev_hash": prev_hash,
    }
