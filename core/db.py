"""The Tortoise configuration, built from the database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.queryset import QuerySet

APP_LABEL = "careloop"
Backend = Literal["sqlite", "postgres"]
SWEEP_BATCH = 500  # rows a sweep's statement deletes at most


async def delete_in_batches(rows: QuerySet[Any], batch: int = SWEEP_BATCH) -> int:
    """The rows ``rows`` selects deleted, at most ``batch`` a statement (each its own transaction), and how many: a
    sweep holds no lock over a whole backlog, nor SQLite's one write lock, which every write waits for, for long
    (found in review: the sweeps of sign-in windows, throttles and idempotency keys deleted theirs in one statement,
    where docs/operations.md promises bounded batches). The rows are found in key order from where the last batch
    ended, so each is read once whatever the backlog, with no index on the condition; each delete asks the condition
    again, so a row changed meanwhile (an address tried again) is kept."""
    pk = rows.model._meta.pk_attr
    deleted, after = 0, None
    while True:
        found = rows if after is None else rows.filter(**{f"{pk}__gt": after})
        keys = await found.order_by(pk).limit(batch).values_list(pk, flat=True)
        if keys:
            deleted += await rows.filter(**{f"{pk}__in": keys}).delete()
        if len(keys) < batch:
            return deleted
        after = keys[-1]


async def keep_session(connection: object) -> None:
    """Return a pooled PostgreSQL connection as it is.

    asyncpg's default reset on release runs ``RESET ALL; UNLISTEN *; CLOSE ALL;`` and unlocks
    advisory locks: one more round trip for every statement run outside a transaction. careloop
    sets no session state on pooled connections (no SET, LISTEN, cursors or advisory locks), and
    asyncpg still rolls back a transaction left open before it calls this.
    """


def placeholders(db: BaseDBAsyncClient, count: int, first: int = 1) -> tuple[str, ...]:
    """The parameter markers of a hand-written statement in ``db``'s dialect: ``$first``... on PostgreSQL
    (numbered), ``?`` on SQLite (by position), for ``count`` parameters."""
    if db.capabilities.dialect == "postgres":
        return tuple(f"${number}" for number in range(first, first + count))
    return ("?",) * count


def backend_of(database_url: str) -> Backend:
    """The database a URL names. careloop speaks SQLite (``sqlite://``) and PostgreSQL (``postgres://``,
    ``postgresql://``) and decides by this alone (found in review: Tortoise also opens ``asyncpg://``, which the
    leader election took for SQLite, so every node led every job through a lock file of its own)."""
    if database_url.startswith("sqlite://"):
        return "sqlite"
    if database_url.startswith(("postgres://", "postgresql://")):
        return "postgres"
    raise ValueError("the database URL must start with sqlite:// or postgres://")


def tortoise_config(database_url: str) -> dict[str, Any]:
    backend = backend_of(database_url)
    connection: dict[str, Any] = expand_db_url(database_url)
    if backend == "sqlite":
        path = database_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        connection["credentials"]["reset"] = keep_session
    # Tortoise's clients, with transactions that cancellation cannot leave half open (core/backends).
    connection["engine"] = "core.backends.sqlite" if backend == "sqlite" else "core.backends.asyncpg"
    return {
        "connections": {"default": connection},
        "apps": {APP_LABEL: {"models": ["models"], "default_connection": "default", "migrations": "migrations"}},
        "use_tz": True,
        "timezone": "UTC",
    }
