"""Opening the database and running the migrations: the same code for the CLI, the app and tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pkgutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.api.migrate import migrate as tortoise_migrate
from tortoise.migrations.recorder import MigrationRecorder
from tortoise.transactions import in_transaction

import migrations
from core.db import APP_LABEL, Backend, backend_of, tortoise_config


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
    """Apply every pending migration (an empty database: first the snapshot of those it holds, see app/snapshot.py);
    leaves no connection open."""
    create_private_sqlite_file(database_url)
    if await load_snapshot_if_empty(database_url) and progress:
        progress(f"made the new database from migrations/fresh/{backend_of(database_url)}.sql")

    def report(event: str, app_label: str, name: str) -> None:
        if progress and event == "apply_done":
            progress(f"applied {app_label}.{name}")

    try:
        await tortoise_migrate(config=tortoise_config(database_url), progress=report)
    finally:
        await Tortoise.close_connections()


SNAPSHOTS = Path(migrations.__file__).parent / "fresh"

# A PostgreSQL database with nothing of careloop's (nor anyone's) in the schema it creates its tables in.
_POSTGRES_EMPTY = """
SELECT current_schema() IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = current_schema()::regnamespace)
   AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = current_schema()::regnamespace) AS empty
"""


def _applied_at(moment: str) -> str:
    """The migrations the snapshot holds were applied when it was loaded, not when it was written."""
    return f"UPDATE tortoise_migrations SET applied_at = {moment};"  # noqa: S608 -- now() or our own literal


def snapshot_of(backend: Backend) -> Path:
    return SNAPSHOTS / f"{backend}.sql"


async def load_snapshot_if_empty(database_url: str) -> bool:
    """Load the snapshot into the database if it is empty (True), else leave it as it is (False)."""
    backend = backend_of(database_url)
    snapshot = snapshot_of(backend)
    if not snapshot.exists():
        return False
    if backend == "sqlite":
        return _load_sqlite(_sqlite_path(database_url), snapshot)
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        async with in_transaction("default") as connection:
            rows = await connection.execute_query_dict(_POSTGRES_EMPTY)
            if not rows[0]["empty"]:
                return False
            # SQL functions may name tables the script creates after them: their bodies are checked when called.
            await connection.execute_script(
                f"SET LOCAL check_function_bodies = false;\n{snapshot.read_text()}\n{_applied_at('now()')}")
        return True
    finally:
        await Tortoise.close_connections()


def _sqlite_path(database_url: str) -> str:
    return database_url.removeprefix("sqlite://").split("?", 1)[0]


def _load_sqlite(path: str, snapshot: Path) -> bool:
    if path in ("", ":memory:"):  # a new database per connection: nothing to load it into
        return False
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as database:
        if database.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False
        try:
            now = datetime.now(UTC).isoformat(sep=" ")  # as Tortoise writes it
            database.executescript(f"BEGIN IMMEDIATE;\n{snapshot.read_text()}\n{_applied_at(repr(now))}\nCOMMIT;")
        except BaseException:
            if database.in_transaction:
                database.execute("ROLLBACK")
            raise
    return True


def sqlite_file_missing(database_url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None: it exists, or the database is not SQLite):
    opening it would make an empty one."""
    if backend_of(database_url) != "sqlite":
        return None
    path = _sqlite_path(database_url)
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
