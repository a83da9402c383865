"""The one audit writer: appends records to their institutions' hash chains.

``append`` runs inside the caller's transaction when there is one (a write and its
audit records commit together) and in a transaction of its own otherwise (denials, which
must survive the rollback of the operation they deny). The chain head row is locked for
the append, so concurrent writers take turns and the sequence stays gap-free.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from audit.chain import GENESIS_HASH, body_around, row_hash
from audit.events import AuditRecord
from core.ids import uuid7
from models import AuditChainHead, AuditEvent

# Events about no institution (a login with an unknown e-mail) go to the system chain.
SYSTEM_CHAIN = uuid.UUID(int=0)
# Told each append's duration (seconds, lock wait included) and number of events: app/metrics.py listens.
append_observers: list[Callable[[float, int], None]] = []


async def start_chain(institution_id: uuid.UUID) -> None:
    """Create the chain head if there is none; safe to call concurrently."""
    await AuditChainHead.bulk_create(
        [AuditChainHead(institution_id=institution_id, last_seq=0, last_hash=GENESIS_HASH)], ignore_conflicts=True
    )


async def append(records: Sequence[AuditRecord]) -> None:
    if not records:
        return
    by_chain: dict[uuid.UUID, list[AuditRecord]] = defaultdict(list)
    for record in records:
        by_chain[record.institution_id].append(record)
    started = time.perf_counter()
    async with in_transaction():
        for institution_id in sorted(by_chain):  # a fixed lock order: no deadlock between chains
            await _append_to_chain(institution_id, by_chain[institution_id])
    for observe in append_observers:
        observe(time.perf_counter() - started, len(records))


async def _append_to_chain(institution_id: uuid.UUID, records: list[AuditRecord]) -> None:
    db = AuditEvent._meta.db  # the current transaction's connection
    if db.capabilities.dialect == "postgres":
        await _append_in_database(db, institution_id, records)
        return
    head = await AuditChainHead.select_for_update().get_or_none(institution_id=institution_id)
    if head is None:
        await start_chain(institution_id)
        head = await AuditChainHead.select_for_update().get(institution_id=institution_id)
    seq, prev_hash = head.last_seq, head.last_hash
    rows = []
    for record in records:
        seq += 1
        columns = _columns(record, seq, prev_hash)
        prev_hash = columns["hash"] = row_hash(columns)
        rows.append(columns)
    await _insert(rows)
    await AuditChainHead.filter(institution_id=institution_id).update(last_seq=seq, last_hash=prev_hash)


async def _append_in_database(db: Any, institution_id: uuid.UUID, records: list[AuditRecord]) -> None:
    """The lock, the inserts and the head's move in one round trip (migration 0021's ``audit_append``), which
    computes each hash as ``row_hash`` does from the body pieces sent."""
    events = []
    for record in records:
        columns = _columns(record, 0, "")
        head, middle = body_around(columns)
        row = {name: _json_value(value) for name, value in columns.items() if name not in ("seq", "prev_hash")}
        events.append({"body_head": head, "body_middle": middle, "row": row})
    await db.execute_query("SELECT audit_append($1, $2::jsonb)",
                           [institution_id, json.dumps(events, ensure_ascii=False)])


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _insert(rows: list[dict[str, Any]]) -> None:
    """One multi-row insert with the statement Tortoise builds for the model, without a model
    instance per row: a page of 50 patients appends 50 events, and building instances was most of
    the append's cost."""
    db = AuditEvent._meta.db  # the current transaction's connection
    statement = _INSERTS.get(db.executor_class)
    if statement is None:  # once per dialect
        executor = db.executor_class(model=AuditEvent, db=db)
        statement = _INSERTS[db.executor_class] = (executor.insert_query_all, tuple(executor.regular_columns_all))
    sql, columns = statement
    fields_map = AuditEvent._meta.fields_map
    await db.execute_many(sql, [[fields_map[c].to_db_value(row[c], AuditEvent) for c in columns] for row in rows])


_INSERTS: dict[type, tuple[str, tuple[str, ...]]] = {}


def _columns(record: AuditRecord, seq: int, prev_hash: str) -> dict[str, Any]:
    return {
        "id": uuid7(),
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
        "prev_hash": prev_hash,
    }
