"""The Tortoise configuration, built from the database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url

APP_LABEL = "careloop"


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


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: dict[str, Any] = expand_db_url(database_url)
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    elif database_url.startswith(("postgres://", "postgresql://")):
        connection["credentials"]["reset"] = keep_session
    # Tortoise's clients, with transactions that cancellation cannot leave half open (core/backends).
    connection["engine"] = "core.backends.sqlite" if database_url.startswith("sqlite://") else "core.backends.asyncpg"
    return {
        "connections": {"default": connection},
        "apps": {APP_LABEL: {"models": ["models"], "default_connection": "default", "migrations": "migrations"}},
        "use_tz": True,
        "timezone": "UTC",
    }
