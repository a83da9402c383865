"""The migrations describe the models exactly: a model change without a migration fails here."""

import asyncio
import contextlib
import importlib
import pkgutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import asyncpg
from tortoise.context import TortoiseContext
from tortoise.fields.base import DB_DEFAULT_NOT_SET
from tortoise.migrations import operations as ops
from tortoise.migrations.autodetector import MigrationAutodetector

import migrations
from app import db, snapshot
from core.db import tortoise_config

ROOT = Path(__file__).resolve().parent.parent


async def test_models_and_migrations_agree() -> None:
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert writers == [], "models changed without a migration: run `tortoise makemigrations` (see docs)"


def test_every_column_added_to_a_table_has_a_database_default_or_takes_null() -> None:
    """A table that holds rows cannot take a NOT NULL column without a database default: the upgrade fails
    there (found in review: 0019's three catalogue columns had Python defaults only, so every database with a
    catalogue item stopped at 0018, and the service could not start on it)."""
    bare = []
    for module in sorted(pkgutil.iter_modules(migrations.__path__), key=lambda m: m.name):
        for operation in importlib.import_module(f"migrations.{module.name}").Migration.operations:
            field = getattr(operation, "field", None)
            if type(operation) is ops.AddField and field is not None and not field.null and \
                    field.db_default is DB_DEFAULT_NOT_SET:
                bare.append(f"{module.name}: {operation.model_name}.{operation.name}")
    assert bare == []


async def test_a_database_with_a_catalogue_upgrades_from_0018(upgraded: dict[str, Any]) -> None:
    """A catalogue item written at 0018 comes through 0019's three NOT NULL columns with their defaults (the
    upgrade itself: tests/upgrade.py, shared with test_patient_index.py's)."""
    assert upgraded["catalogue"] == [{"code": "D001", "unit": "visit", "frequencies": "per_visit", "version": 1}]


# -- a new database made from the snapshot (app/snapshot.py) ------------------------------------------------------

POSTGRES_CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
                         character_maximum_length, numeric_precision, numeric_scale,
                         col_description(format('%I', table_name)::regclass, ordinal_position::int)
                  FROM information_schema.columns WHERE table_schema = current_schema()
                  ORDER BY table_name, ordinal_position""",
    "tables": """SELECT relname, relkind, obj_description(oid, 'pg_class') FROM pg_class
                 WHERE relnamespace = current_schema()::regnamespace ORDER BY relname""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
    "functions": """SELECT proname, pg_get_functiondef(oid) FROM pg_proc
                    WHERE pronamespace = current_schema()::regnamespace ORDER BY 1, 2""",
    "sequences": """SELECT sequencename, data_type, increment_by, min_value, max_value, cycle FROM pg_sequences
                    WHERE schemaname = current_schema() ORDER BY 1""",
    "migrations": "SELECT app, name FROM tortoise_migrations ORDER BY app, name",
}
SQLITE_CATALOG = {
    "schema": "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
    "migrations": "SELECT app, name FROM tortoise_migrations ORDER BY app, name",
}


async def catalog_of(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a database holds of its own making (not the rows the tests wrote, nor sequence values), read with the
    driver alone: this process's Tortoise holds the test database."""
    if database_url.startswith("sqlite://"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as database:
            return {part: database.execute(query).fetchall() for part, query in SQLITE_CATALOG.items()}
    connection = await asyncpg.connect(database_url)
    try:
        return {part: [tuple(row) for row in await connection.fetch(query)] for part, query in POSTGRES_CATALOG.items()}
    finally:
        await connection.close()


async def test_a_new_database_made_from_the_snapshot_is_one_migrated_step_by_step(
        fresh_database: str, upgraded: dict[str, Any]) -> None:
    """`careloop migrate` on an empty database loads the snapshot and applies what came after it; the upgraded
    database went through every migration. Their schemas (and the migrations recorded) are the same. Fails on a
    snapshot written by hand, or on a change to app/snapshot.py's clean-up of pg_dump's script."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import asyncio, sys; from app import db; asyncio.run(db.migrate(sys.argv[1], print))",
        fresh_database, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert stdout.decode().startswith("made the new database from migrations/fresh/"), stdout

    from_snapshot, step_by_step = await catalog_of(fresh_database), await catalog_of(upgraded["url"])
    for part in step_by_step:
        assert from_snapshot[part] == step_by_step[part], part
    assert len(step_by_step["migrations"]) == len(db.known_migrations())


def test_the_snapshot_holds_every_migration() -> None:
    """A migration added without writing the snapshot again (`make snapshot`) leaves every new database to migrate
    through it step by step: correct, but the seconds of CPU the snapshot saves are back."""
    for backend in ("sqlite", "postgres"):
        script = snapshot.snapshot_of(backend).read_text()
        missing = [name for name in sorted(db.known_migrations()) if f"'{name}'" not in script]
        assert missing == [], f"{backend}: run `make snapshot` ({missing})"
