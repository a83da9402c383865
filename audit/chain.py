"""The per-institution hash chain: each row's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# The columns a row's hash covers, in order: all of them but the hash itself.
HASHED_COLUMNS = (
    "id", "institution_id", "seq", "occurred_at", "actor_kind", "actor_id", "token_id", "action",
    "resource_type", "resource_id", "patient_id", "field_classes", "fields_read", "outcome", "reason",
    "policy_rule", "request_id", "client_address", "user_agent", "prev_hash",
)


def canonical(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def row_hash(columns: dict[str, Any]) -> str:
    body = json.dumps([canonical(columns[name]) for name in HASHED_COLUMNS], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


_SEQ_AT = HASHED_COLUMNS.index("seq")
assert HASHED_COLUMNS[-1] == "prev_hash"  # the split below relies on it


def body_around(columns: dict[str, Any]) -> tuple[str, str]:
    """``row_hash``'s JSON body without its sequence number and previous hash, the two values only the database
    knows when it appends (PostgreSQL's ``audit_append``): the text before the quoted sequence number and the
    text between it and the quoted previous hash. Both are plain ASCII digits and hex, never escaped, so
    ``head + '"' + seq + '"' + middle + '"' + prev_hash + '"]'`` is exactly the body ``row_hash`` hashes."""
    values = [canonical(columns[name]) for name in HASHED_COLUMNS]
    head = json.dumps(values[:_SEQ_AT], ensure_ascii=False)[:-1] + ", "
    middle = ", " + json.dumps(values[_SEQ_AT + 1:-1], ensure_ascii=False)[1:-1] + ", "
    return head, middle
