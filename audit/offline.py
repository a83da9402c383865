"""Checking an NDJSON export against signed checkpoints, without the database.

What an outside auditor runs (``careloop audit verify --export --checkpoint --public-key``):
1. every checkpoint's Ed25519 signature verifies with the public key;
2. the export is one institution's events in consecutive sequence numbers, each linking to the
   previous one's hash (the first to the genesis hash when it starts at 1), each hash matching
   its content;
3. every checkpoint falls inside the export and its head hash is the hash of that event: a
   checkpoint beyond the export's last event means the tail was cut off, and a different hash
   means the chain was rewritten;
4. at least one checkpoint vouches for the export: an internally consistent chain proves nothing
   by itself, since whoever rewrote it could have recomputed every hash;
5. an export that starts after seq 1 (a period, an archive, or what is left after archiving: an
   archived stretch always ends at a checkpoint) must link to the checkpoint just before its
   first event, when there is one; the report says whether its start was vouched for that way.

Only the hashes at signed sequence numbers are kept, so an archive of millions of events is
checked in little memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import GENESIS_HASH, row_hash
from audit.checkpoint import Checkpoint
from audit.export import COLUMNS


@dataclass(frozen=True)
class OfflineReport:
    events: int
    checkpoints: int
    problem: str = ""
    first_seq: int = 0
    start_vouched: bool = False  # starts at seq 1, or links to a signed head just before it

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass
class _Span:
    """What the checkpoints are compared with, gathered in one pass over the export."""

    institution: str
    first: int
    first_prev: str
    signed: set[int]  # the sequence numbers the institution's checkpoints name
    last: int = 0
    count: int = 0
    hashes: dict[int, str] = field(default_factory=dict)  # at signed sequence numbers only


def first_forged(checkpoints: Iterable[Checkpoint], public: Ed25519PublicKey) -> Checkpoint | None:
    """Step 1: the first checkpoint whose signature does not verify with ``public`` (None when all do)."""
    return next((checkpoint for checkpoint in checkpoints if not checkpoint.signed_by(public)), None)


def forged_problem(checkpoint: Checkpoint) -> str:
    return f"checkpoint at seq {checkpoint.last_seq}: the signature does not verify with this public key"


def coverage_problem(checkpoint: Checkpoint, last_seq: int, hash_at_checkpoint: str | None,
                     what: str = "the export") -> str:
    """Step 3 for one checkpoint, given where ``what`` ends and the hash it holds at the signed
    sequence number: beyond the end means a cut-off tail, another hash a rewritten chain. Also what
    ``careloop audit verify`` checks in the database (``audit/verify.py``)."""
    if checkpoint.last_seq > last_seq:
        return f"truncated: a signed checkpoint covers seq {checkpoint.last_seq}, {what} ends at {last_seq}"
    if hash_at_checkpoint != checkpoint.head_hash:
        return f"rewritten: seq {checkpoint.last_seq} does not have the signed head hash"
    return ""


def verify(export_lines: Iterable[str], checkpoints: list[Checkpoint], public: Ed25519PublicKey) -> OfflineReport:
    forged = first_forged(checkpoints, public)
    if forged is not None:
        return OfflineReport(0, len(checkpoints), forged_problem(forged))
    span: _Span | None = None
    previous_hash: str | None = None
    for number, text in enumerate(export_lines, start=1):
        if not text.strip():
            continue
        count = span.count if span else 0
        try:
            row = json.loads(text)
            seq = int(row["seq"])
            missing = [c for c in COLUMNS if c not in row]
        except (ValueError, KeyError, TypeError):
            return OfflineReport(count, len(checkpoints), f"line {number}: not an exported audit event")
        if missing:
            return OfflineReport(count, len(checkpoints), f"line {number}: missing {', '.join(missing)}")
        if span is None:
            span = _Span(row["institution_id"], seq, row["prev_hash"],
                         {c.last_seq for c in checkpoints if c.institution_id == row["institution_id"]})
        problem = _link_problem(row, seq, span.institution, span.last if count else None, previous_hash)
        if problem:
            return OfflineReport(count, len(checkpoints), f"seq {seq}: {problem}")
        if seq in span.signed:
            span.hashes[seq] = row["hash"]
        span.last, span.count, previous_hash = seq, count + 1, row["hash"]
    if span is None:
        return OfflineReport(0, len(checkpoints), "the export holds no events")
    return _against_checkpoints(span, checkpoints)


def _link_problem(row: dict[str, str], seq: int, institution: str, previous_seq: int | None,
                  previous_hash: str | None) -> str:
    if row["institution_id"] != institution:
        return "belongs to another institution"
    if previous_seq is not None and seq != previous_seq + 1:
        return f"sequence gap after {previous_seq}"
    expected_prev = previous_hash if previous_hash is not None else GENESIS_HASH if seq == 1 else None
    if expected_prev is not None and row["prev_hash"] != expected_prev:
        return "does not link to the previous event"
    if row_hash(row) != row["hash"]:
        return "content does not match its hash"
    return ""


def _against_checkpoints(span: _Span, checkpoints: list[Checkpoint]) -> OfflineReport:
    mine = sorted((c for c in checkpoints if c.institution_id == span.institution), key=lambda c: c.last_seq)

    def report(problem: str = "", start_vouched: bool = False) -> OfflineReport:
        return OfflineReport(span.count, len(mine), problem, span.first, start_vouched)

    before = None
    for checkpoint in mine:
        if checkpoint.last_seq == span.first - 1:
            before = checkpoint
        if checkpoint.last_seq >= span.first:
            problem = coverage_problem(checkpoint, span.last, span.hashes.get(checkpoint.last_seq))
            if problem:
                return report(problem)
    if before is not None and span.first_prev != before.head_hash:
        return report(f"rewritten: seq {span.first} does not link to the signed head at seq {before.last_seq}")
    if not any(span.first <= c.last_seq <= span.last for c in mine):
        return report("no signed checkpoint falls inside the export")
    return report(start_vouched=span.first == 1 or before is not None)
