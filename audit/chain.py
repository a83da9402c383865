"""The per-institution hash chain: each row's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# The columns a row's hash covers, in order: all of them but the hash itself. ``subjects`` (the records one
# event covers when it stands for many alike reads) joined the trail later: it is hashed only when it holds
# something, so every row written before it keeps its hash and old chains and exports verify unchanged.
HASHED_COLUMNS = (
    "id", "institution_id", "seq", "occurred_at", "actor_kind", "actor_id", "token_id", "action",
    "resource_type", "resource_id", "patient_id", "field_classes", "fields_read", "outcome", "reason",
    "policy_rule", "request_id", "client_address", "user_agent", "subjects", "prev_hash",
)
OPTIONAL_COLUMNS = frozenset({"subjects"})  # hashed when not empty; an old export may lack them


def canonical(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)  # ids (``UUID.__str__``), numbers and text


def _hashed_values(columns: dict[str, Any]) -> list[str]:
    return [canonical(columns[name]) for name in HASHED_COLUMNS if name not in OPTIONAL_COLUMNS or columns.get(name)]


# The body's JSON: the default separators, characters beyond ASCII as they are (one encoder, not one a call).
_body_json = json.JSONEncoder(ensure_ascii=False).encode


def row_hash(columns: dict[str, Any]) -> str:
    body = _body_json(_hashed_values(columns))
    return hashlib.sha256(body.encode()).hexdigest()


def subjects_text(subjects: Iterable[tuple[uuid.UUID | None, uuid.UUID | None]]) -> str:
    """The ``subjects`` column: each (record, patient) as ``record/patient`` ("-" for none), sorted, one space
    between: the same set always gives the same text, so the same hash."""
    return " ".join(sorted({f"{record or '-'}/{patient or '-'}" for record, patient in subjects}))


def parse_subjects(text: str | None) -> list[tuple[uuid.UUID | None, uuid.UUID | None]]:
    def ident(part: str) -> uuid.UUID | None:
        return None if part == "-" else uuid.UUID(part)

    return [(ident(record), ident(patient)) for record, _, patient in
            (item.partition("/") for item in (text or "").split())]


def patients_of(columns: dict[str, Any]) -> set[uuid.UUID]:
    """The patients an event is about: its ``patient_id`` and its subjects' patients (the per-patient index)."""
    patients = {patient for _, patient in parse_subjects(columns.get("subjects")) if patient is not None}
    if columns.get("patient_id"):
        patients.add(uuid.UUID(str(columns["patient_id"])))
    return patients


_SEQ_AT = HASHED_COLUMNS.index("seq")
assert HASHED_COLUMNS[-1] == "prev_hash"  # the split below relies on it
assert all(HASHED_COLUMNS.index(name) > _SEQ_AT for name in OPTIONAL_COLUMNS)  # and this: they fall in the middle


def body_around(columns: dict[str, Any]) -> tuple[str, str]:
    """``row_hash``'s JSON body without its sequence number and previous hash, the two values only the database
    knows when it appends (PostgreSQL's ``audit_append``): the text before the quoted sequence number and the
    text between it and the quoted previous hash. Both are plain ASCII digits and hex, never escaped, so
    ``head + '"' + seq + '"' + middle + '"' + prev_hash + '"]'`` is exactly the body ``row_hash`` hashes."""
    values = _hashed_values(columns)
    head = _body_json(values[:_SEQ_AT])[:-1] + ", "
    middle = ", " + _body_json(values[_SEQ_AT + 1:-1])[1:-1] + ", "
    return head, middle


def hash_of_pieces(head: str, middle: str, seq: int, prev_hash: str) -> str:
    """``row_hash`` from ``body_around``'s pieces and the two values between them: what verify checks a row's hash
    with, the pieces then serving its MAC too (one body per row, not two)."""
    return hashlib.sha256(f'{head}"{canonical(seq)}"{middle}"{prev_hash}"]'.encode()).hexdigest()
