"""Writing the scripts a new database is made from: the schema the migrations leave, as they leave it
(``migrations/fresh/<backend>.sql``, loaded by ``app.db.migrate``).

Tortoise 1.1 renders its whole model state again for every operation of every migration: migrating a new database
through 47 migrations took about 20 s of CPU, which `make run`, `careloop init` and both test suites paid. An empty
database is loaded from the snapshot instead, in one transaction, the migrations it holds recorded as applied (their
rows are in it); the migrations written after it then run as usual, so a snapshot behind the migrations is slower,
never wrong. A database that holds anything is migrated step by step, as before.

tests/test_migrations.py proves that a database made so and one migrated step by step are the same (tables,
columns, constraints, indexes, triggers, functions, comments, recorded migrations), on SQLite and PostgreSQL, and
that the snapshot holds every migration. Write it again after adding one: `make snapshot` (PostgreSQL's needs
`pg_dump` and a server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from app.backup import run_pg
from app.db import snapshot_of
from core.db import tortoise_config


def dump_sqlite(path: str) -> str:
    """A migrated SQLite database as a script: its schema and rows (the recorded migrations), without the dump's
    own transaction (``app.db.load_snapshot_if_empty`` brings its own)."""
    with contextlib.closing(sqlite3.connect(path)) as database:
        lines = [line for line in database.iterdump() if line not in ("BEGIN TRANSACTION;", "COMMIT;")]
    return "\n".join(lines) + "\n"


def dump_postgres(database_url: str) -> str:
    """A migrated PostgreSQL database as a script: pg_dump's schema and the recorded migrations, with pg_dump's
    session settings left out and names not qualified by ``public.``, so that it makes its tables where the
    migrations would (the role's first schema), as they do."""
    with tempfile.TemporaryDirectory() as folder:
        schema, rows = Path(folder, "schema.sql"), Path(folder, "rows.sql")
        common = ["--no-owner", "--no-privileges", "--no-tablespaces"]
        run_pg("pg_dump", database_url, [*common, "--schema-only", f"--file={schema}"])
        run_pg("pg_dump", database_url, [*common, "--data-only", "--inserts", "--table=tortoise_migrations",
                                         f"--file={rows}"])
        return _plain_postgres(schema.read_text()) + _plain_postgres(rows.read_text())


def _plain_postgres(dump: str) -> str:
    kept = [line for line in dump.splitlines()
            if line and not line.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config("))]
    return re.sub(r"\bpublic\.", "", "\n".join(kept)) + "\n"


async def migrate_step_by_step(database_url: str) -> None:
    try:
        await tortoise_migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


async def write(admin_url: str) -> None:
    """Both snapshots again, each from a new database migrated step by step (PostgreSQL's made with ``admin_url``'s
    rights and dropped after)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "new.sqlite3")
        await migrate_step_by_step(f"sqlite://{path}")
        snapshot_of("sqlite").write_text(dump_sqlite(path))

    name = f"careloop_snapshot_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
        try:
            await migrate_step_by_step(url)
            snapshot_of("postgres").write_text(dump_postgres(url))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/test"))
