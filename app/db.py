"""Opening the database and running the migrations: the same code for the CLI, the app and tests."""

from __future__ import annotations

import asyncio
import os
import pkgutil
from collections.abc import Callable

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.api.migrate import migrate as tortoise_migrate
from tortoise.migrations.recorder import MigrationRecorder

import migrations
from core.db import APP_LABEL, backend_of, tortoise_config


def create_private_sqlite_file(database_url: str) -> None:
    """A new SQLite database file readable by its owner only (0600, like the key file): it holds the sealed
    data and, in clear, names and the audit trail. SQLite gives its -wal and -shm files the same mode. Its folder is
    made (0700) when missing: `make run` on a fresh clone has no var/ yet (found in review: the file's creation
    failed there, and `make run` with it)."""
    path = sqlite_file_missing(database_url)
    if path is not None:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


async def migrate(database_url: str, progress: Callable[[str], None] | None = None) -> None:
    """Apply every pending migration; leaves no connection open."""
    create_private_sqlite_file(database_url)

    def report(event: str, app_label: str, name: str) -> None:
        if progress and event == "apply_done":
            progress(f"applied {app_label}.{name}")

    try:
        await tortoise_migrate(config=tortoise_config(database_url), progress=report)
    finally:
        await Tortoise.close_connections()


def sqlite_file_missing(database_url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None: it exists, or the database is not SQLite):
    opening it would make an empty one."""
    if backend_of(database_url) != "sqlite":
        return None
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    return None if path in ("", ":memory:") or os.path.exists(path) else path


async def open_database(database_url: str) -> None:
    create_private_sqlite_file(database_url)
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


def known_migrations() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name[:4].isdigit()}


async def pending_migrations() -> set[str]:
    recorder = MigrationRecorder(get_connection("default"))
    applied = {key.name for key in await recorder.applied_migrations() if key.app_label == APP_LABEL}
    return known_migrations() - applied


async def ping(within: float = 2.0) -> bool:
    """The database answers a statement within ``within`` seconds: a held lock or an exhausted pool
    makes it not ready rather than making the probe wait with everyone else."""
    try:
        async with asyncio.timeout(within):
            await get_connection("default").execute_query("SELECT 1")
    except Exception:
        return False
    return True
