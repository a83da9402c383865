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
   by itself, since whoever rewrote it could have recomputed every hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import GENESIS_HASH, row_hash
from audit.checkpoint import Checkpoint
from audit.export import COLUMNS


@dataclass(frozen=True)
class OfflineReport:
    events: int
    checkpoints: int
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(export_lines: Iterable[str], checkpoints: list[Checkpoint], public: Ed25519PublicKey) -> OfflineReport:
    for checkpoint in checkpoints:
        if not checkpoint.signed_by(public):
            return OfflineReport(0, len(checkpoints), f"checkpoint at seq {checkpoint.last_seq}: the signature "
                                                      "does not verify with this public key")
    hashes: dict[int, str] = {}
    institution, previous_seq, previous_hash = None, None, None
    for number, text in enumerate(export_lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
            seq = int(row["seq"])
            missing = [c for c in COLUMNS if c not in row]
        except (ValueError, KeyError, TypeError):
            return OfflineReport(len(hashes), len(checkpoints), f"line {number}: not an exported audit event")
        if missing:
            return OfflineReport(len(hashes), len(checkpoints), f"line {number}: missing {', '.join(missing)}")
        institution = institution or row["institution_id"]
        problem = _link_problem(row, seq, institution, previous_seq, previous_hash)
        if problem:
            return OfflineReport(len(hashes), len(checkpoints), f"seq {seq}: {problem}")
        hashes[seq] = row["hash"]
        previous_seq, previous_hash = seq, row["hash"]
    return _against_checkpoints(hashes, institution, checkpoints)


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


def _against_checkpoints(hashes: dict[int, str], institution: str | None,
                         checkpoints: list[Checkpoint]) -> OfflineReport:
    mine = [c for c in checkpoints if c.institution_id == institution]
    if not hashes:
        return OfflineReport(0, len(mine), "the export holds no events")
    first, last = min(hashes), max(hashes)
    for checkpoint in sorted(mine, key=lambda c: c.last_seq):
        if checkpoint.last_seq > last:
            return OfflineReport(len(hashes), len(mine), f"truncated: a signed checkpoint covers seq "
                                                         f"{checkpoint.last_seq}, the export ends at {last}")
        if checkpoint.last_seq >= first and hashes[checkpoint.last_seq] != checkpoint.head_hash:
            return OfflineReport(len(hashes), len(mine), f"rewritten: seq {checkpoint.last_seq} does not have "
                                                         "the signed head hash")
    if not any(first <= c.last_seq <= last for c in mine):
        return OfflineReport(len(hashes), len(mine), "no signed checkpoint falls inside the export")
    return OfflineReport(len(hashes), len(mine))
