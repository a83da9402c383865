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
