"""Chain verification: recompute every chain and name the first row that does not fit.

A chain whose start was archived (``audit/archive.py``) is walked from its newest archive anchor:
the first event left must link to the anchor's hash, itself a signed checkpoint's head hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from audit.chain import GENESIS_HASH, HASHED_COLUMNS, row_hash
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent

BATCH = 2000


@dataclass(frozen=True)
class ChainReport:
    institution_id: uuid.UUID
    events: int  # checked: those in the database, after the newest archive anchor
    problem: str = ""  # empty when the chain verifies
    seq: int | None = None  # the first bad row's sequence number
    event_id: uuid.UUID | None = None
    archived: int = 0  # events before them, archived to files (seq 1 to this)

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
    """Walk the chain from the newest archive anchor (from the genesis hash at seq 1 if none) to the head."""
    institution_id = head.institution_id
    anchor = await AuditArchive.filter(institution_id=institution_id).order_by("-up_to_seq").first()
    archived, prev_hash = (anchor.up_to_seq, anchor.up_to_hash) if anchor else (0, GENESIS_HASH)
    bad_anchor = await _anchor_problem(anchor) if anchor else None
    if bad_anchor:
        return bad_anchor
    expected_seq, checked = archived + 1, 0
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
                return ChainReport(institution_id, checked, problem, row["seq"], row["id"], archived)
            prev_hash, expected_seq, checked = row["hash"], expected_seq + 1, checked + 1
        if progress:
            progress(institution_id, checked)
        if len(rows) < BATCH:
            break
    if head.last_seq != archived + checked or head.last_hash != prev_hash:
        return ChainReport(institution_id, checked, "rows missing after the last event", expected_seq, None, archived)
    return ChainReport(institution_id, checked, archived=archived)


async def _anchor_problem(anchor: AuditArchive) -> ChainReport | None:
    """An anchor must match the signed checkpoint it was cut at, and nothing may remain (or have
    been inserted) at or below it: such rows would escape verification."""
    institution_id, seq = anchor.institution_id, anchor.up_to_seq
    signed = await AuditCheckpoint.filter(institution_id=institution_id, last_seq=seq).first()
    if signed is None or signed.head_hash != anchor.up_to_hash:
        return ChainReport(institution_id, 0, "the archive anchor does not match a signed checkpoint", seq,
                           None, seq)
    below = await AuditEvent.filter(institution_id=institution_id, seq__lte=seq).order_by("seq").first()
    if below is not None:
        return ChainReport(institution_id, 0, f"an event at or below the archive anchor (seq {seq})", below.seq,
                           below.id, seq)
    return None


def _problem(row: dict, expected_seq: int, prev_hash: str) -> str:
    if row["seq"] != expected_seq:
        return f"sequence gap: expected {expected_seq}"
    if row["prev_hash"] != prev_hash:
        return "does not link to the previous event"
    if row_hash(row) != row["hash"]:
        return "content does not match its hash"
    return ""
