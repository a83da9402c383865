"""Optimistic concurrency for updatable records: every update states (or takes) the version it edits.

Two clerks editing one record must not overwrite each other silently. An update is one compare-and-set
UPDATE on the row's id and version: it writes only if nobody wrote since, bumps the version, and sets
``updated_at`` itself (a query-set update skips Tortoise's ``auto_now``). A stale version is a CONFLICT
with nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F
from tortoise.models import Model

from core.errors import Conflict


def stale(noun: str) -> Conflict:
    return Conflict(f"version: the {noun} changed since you read it; read it again.", field="version")


def bumped() -> Any:
    """The version a compare-and-set writes: the stored one plus one. The caller's version is only compared, so
    one the database cannot count past (2^31 - 1, GraphQL's largest Int) is a CONFLICT like any other stale
    version, never an overflow."""
    return F("version") + 1


def check_version(row: Any, version: int | None, noun: str) -> int:
    """The version the write goes over: the caller's (a stale one is a CONFLICT at once), else the one read."""
    if version is not None and version != row.version:
        raise stale(noun)
    return int(row.version)


def next_version(row: Model, expected: int, values: dict[str, Any]) -> dict[str, Any]:
    """What an update over version ``expected`` writes: ``values``, the next version and, where the model keeps
    one, ``updated_at`` (an update through a query set skips ``auto_now``)."""
    changes = {**values, "version": expected + 1}
    if "updated_at" in row._meta.fields_map:
        changes["updated_at"] = datetime.now(UTC)
    return changes


async def update_versioned(row: Model, version: int | None, noun: str, **values: Any) -> None:
    """Write ``values`` (column names as the model spells them) over the version read, or CONFLICT.

    On success the row object carries the new values, version and ``updated_at``.
    """
    expected = check_version(row, version, noun)
    changes = next_version(row, expected, values)
    written = await type(row).filter(id=row.pk, version=expected).update(**changes)
    if not written:
        raise stale(noun)
    for name, value in changes.items():
        setattr(row, name, value)
