"""Chain verification: recompute every chain and name the first row that does not fit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from audit.chain import GENESIS_HASH, HASHED_COLUMNS, row_hash
from models import AuditChainHead, AuditEvent

BATCH = 2000


@dataclass(frozen=True)
class ChainReport:
    institution_id: uuid.UUID
    events: int
    problem: str = ""  # empty when the chain verifies
    seq: int | None = None  # the first bad row's sequence number
    event_id: uuid.UUID | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


async def verify_all(
    institution_id: uuid.UUID | None = None, progress: Callable[[uuid.UUID, int], None] | None = None
) -> list[ChainReport]:
    heads = AuditChainHead.all().order_by("institution_id")
    if institution_id is not None:
        heads = heads.filter(institution_id=institution_id)
    return [await verify_chain(head, progress) for head in await heads]


async def verify_chain(head: AuditChainHead, progress: Callable[[uuid.UUID, int], None] | None = None) -> ChainReport:
    institution_id = head.institution_id
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    while True:
        rows = (
            await AuditEvent.filter(institution_id=institution_id, seq__gte=expected_seq)
            .order_by("seq")
            .limit(BATCH)
            .values(*HASHED_COLUMNS, "hash")
        )
        for row in rows:
            problem = _problem(row, expected_seq, prev_hash)
            if problem:
                return ChainReport(institution_id, checked, problem, row["seq"], row["id"])
            prev_hash, expected_seq, checked = row["hash"], expected_seq + 1, checked + 1
        if progress:
            progress(institution_id, checked)
        if len(rows) < BATCH:
            break
    if head.last_seq != checked or head.last_hash != prev_hash:
        return ChainReport(institution_id, checked, "rows missing after the last event", checked + 1, None)
    return ChainReport(institution_id, checked)


def _problem(row: dict, expected_seq: int, prev_hash: str) -> str:
    if row["seq"] != expected_seq:
        return f"sequence gap: expected {expected_seq}"
    if row["prev_hash"] != prev_hash:
        return "does not link to the previous event"
    if row_hash(row) != row["hash"]:
        return "content does not match its hash"
    return ""
