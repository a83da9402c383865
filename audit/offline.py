"""Checking an NDJSON export against signed checkpoints, without the database.

What an outside auditor runs (``careloop audit verify --export --checkpoint --public-key``):
1. every checkpoint's Ed25519 signature verifies with the public key;
2. the export is one institution's events in consecutive sequence numbers, each linking to the
   previous one's hash (the first to the genesis hash when it starts at 1), each hash matching
   its content; each line holds an export's columns, each once (a key twice is read two ways by
   two readers, and a key no export writes is covered by no hash);
3. every checkpoint that falls inside the export has the hash of that event as its head hash (a
   different hash means the chain was rewritten). Checkpoints beyond the export's last event: for
   an export with its own signed end (step 5) they vouch for events recorded after it and are
   counted, not failed; for one without (an archive, an older export) they mean its tail was cut
   off, so give only the checkpoints up to its end (``audit checkpoints --to-seq``);
4. at least one checkpoint vouches for the export: an internally consistent chain proves nothing
   by itself, since whoever rewrote it could have recomputed every hash;
   the events after the last checkpoint inside the export are an *unverified tail*, named as such;
5. an export's own signed end (``careloop audit export`` ends an NDJSON export with a
   ``{"checkpoint": …}`` line signed at exactly its last event) must match its last event: an
   export cut short under its signed end is truncated. It also names the export's first event
   (``first_seq``, signed with the rest), which must be the first one there: events cut from its
   start are found too. With or without it, the events after the last signed point are named as an
   unverified tail;
6. an export that starts after seq 1 (a period, an archive, or what is left after archiving: an
   archived stretch always ends at a checkpoint) must link to the checkpoint just before its
   first event, when there is one; the report says whether its start was vouched for that way.

Only the hashes at signed sequence numbers are kept, so an archive of millions of events is
checked in little memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import GENESIS_HASH, OPTIONAL_COLUMNS, row_hash
from audit.checkpoint import Checkpoint
from audit.export import COLUMNS, EXPORT_END


@dataclass(frozen=True)
class OfflineReport:
    events: int
    checkpoints: int
    problem: str = ""
    first_seq: int = 0
    start_vouched: bool = False  # starts at seq 1, or links to a signed head just before it
    last_seq: int = 0
    vouched_to: int = 0  # the last event a signed checkpoint (or the export's signed end) covers
    later_checkpoints: int = 0  # checkpoints beyond the export's end: the trail went on after it
    signed_end: bool = False  # the export ends with its own signed checkpoint, matching its last event
    signed_start: bool = False  # that signed end names the export's first event, and it is the first one there

    @property
    def unverified_tail(self) -> tuple[int, int] | None:
        """The events after the last signed checkpoint inside the export (first, last), if any."""
        return (self.vouched_to + 1, self.last_seq) if self.ok and self.vouched_to < self.last_seq else None

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
    last_hash: str = ""
    end: Checkpoint | None = None  # the export's own signed end


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


def verify(export_lines: Iterable[str | bytes], checkpoints: list[Checkpoint],
           public: Ed25519PublicKey) -> OfflineReport:
    """``export_lines``: text, or bytes (a file read as it is), each line UTF-8 as an export writes it."""
    forged = first_forged(checkpoints, public)
    if forged is not None:
        return OfflineReport(0, len(checkpoints), forged_problem(forged))
    span: _Span | None = None
    previous_hash: str | None = None
    for number, text in enumerate(export_lines, start=1):
        if not text.strip():
            continue
        count = span.count if span else 0
        if span is not None and span.end is not None:
            return OfflineReport(count, len(checkpoints), f"line {number}: follows the export's signed end")
        try:
            row = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text, object_pairs_hook=_each_once)
            if span is not None and set(row) == {EXPORT_END}:
                span.end = Checkpoint.from_json(row[EXPORT_END])
                continue
            seq = int(row["seq"])
            missing = [c for c in COLUMNS if c not in row and c not in OPTIONAL_COLUMNS]  # old exports lack them
        except _Twice as twice:
            return OfflineReport(count, len(checkpoints), f"line {number}: holds {_shown(twice.key)} twice")
        except (ValueError, KeyError, TypeError, RecursionError):  # not UTF-8, not JSON, nested without end
            return OfflineReport(count, len(checkpoints), f"line {number}: not an exported audit event")
        if missing:
            return OfflineReport(count, len(checkpoints), f"line {number}: missing {', '.join(missing)}")
        unknown = next((name for name in row if name not in COLUMNS), None)
        if unknown is not None:
            return OfflineReport(count, len(checkpoints), f"line {number}: holds {_shown(unknown)}, which no export "
                                                          "writes")
        if span is None:
            span = _Span(row["institution_id"], seq, row["prev_hash"],
                         {c.last_seq for c in checkpoints if c.institution_id == row["institution_id"]})
        problem = _link_problem(row, seq, span.institution, span.last if count else None, previous_hash)
        if problem:
            return OfflineReport(count, len(checkpoints), f"seq {seq}: {problem}")
        if seq in span.signed:
            span.hashes[seq] = row["hash"]
        span.last, span.count, previous_hash, span.last_hash = seq, count + 1, row["hash"], row["hash"]
    if span is None:
        return OfflineReport(0, len(checkpoints), "the export holds no events")
    if span.end is not None and not span.end.signed_by(public):
        return OfflineReport(span.count, len(checkpoints), "the export's signed end does not verify with this "
                                                           "public key")
    return _against_checkpoints(span, checkpoints)


class _Twice(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _each_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each there once. Two of one key read two ways: Python's json keeps the last, which
    the hash is checked on, other readers the first, which it does not cover."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(key)
        found[key] = value
    return found


def _shown(key: str) -> str:
    """A key the file holds, as the report may name it: quoted, escaped (no control character reaches a terminal),
    and short."""
    return json.dumps(key[:40])


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
    inside = [c for c in mine if span.first <= c.last_seq <= span.last]
    later = sum(1 for c in mine if c.last_seq > span.last)

    def report(problem: str = "", start_vouched: bool = False, vouched_to: int = 0) -> OfflineReport:
        signed_end = span.end is not None and not problem
        return OfflineReport(span.count, len(mine), problem, span.first, start_vouched, span.last, vouched_to,
                             later, signed_end, signed_end and span.end is not None and span.end.first_seq is not None)

    # Without its own signed end an export must reach every checkpoint given: one beyond it may mark a cut tail.
    for checkpoint in inside if span.end is not None else [c for c in mine if c.last_seq >= span.first]:
        problem = coverage_problem(checkpoint, span.last, span.hashes.get(checkpoint.last_seq))
        if problem:
            return report(problem)
    end_problem = _end_problem(span)
    if end_problem:
        return report(end_problem)
    before = next((c for c in mine if c.last_seq == span.first - 1), None)
    if before is not None and span.first_prev != before.head_hash:
        return report(f"rewritten: seq {span.first} does not link to the signed head at seq {before.last_seq}")
    if not inside and span.end is None:
        return report("no signed checkpoint falls inside the export")
    vouched_to = span.last if span.end is not None else inside[-1].last_seq
    return report(start_vouched=span.first == 1 or before is not None, vouched_to=vouched_to)


def _end_problem(span: _Span) -> str:
    """The export's own signed end (its signature checked already) names its last event."""
    end = span.end
    if end is None:
        return ""
    if end.institution_id != span.institution:
        return "the export's signed end belongs to another institution"
    if end.last_seq != span.last:
        return f"truncated: the export's signed end is seq {end.last_seq}, its events end at {span.last}"
    if end.head_hash != span.last_hash:
        return f"rewritten: seq {span.last} does not have the export's signed end hash"
    if end.first_seq is not None and end.first_seq != span.first:
        return f"truncated: the export's signed end says it starts at seq {end.first_seq}, its events start at " \
               f"{span.first}"
    return ""
