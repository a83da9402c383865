"""The migrations describe the models exactly: a model change without a migration fails here."""

import asyncio
import importlib
import json
import os
import pkgutil
import sys
from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.fields.base import DB_DEFAULT_NOT_SET
from tortoise.migrations import operations as ops
from tortoise.migrations.autodetector import MigrationAutodetector

import migrations
from core.db import tortoise_config

ROOT = Path(__file__).resolve().parents[1]


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


UPGRADE_FROM_0018 = """
import asyncio, json, sys, uuid
from datetime import UTC, datetime
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate
from app import db
from core.db import tortoise_config
from models import ServiceItem

async def main(url):
    db.create_private_sqlite_file(url)
    await migrate(config=tortoise_config(url), target="careloop.0018_surveys")
    conn = Tortoise.get_connection("default")
    marks = (lambda n: ", ".join("$%d" % i for i in range(1, n + 1))) if conn.capabilities.dialect == "postgres" \\
        else (lambda n: ", ".join("?" * n))
    institution, item, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    await conn.execute_query("INSERT INTO institution (id, name, kind, time_zone, created_at) VALUES (%s)" % marks(5),
                             [str(institution), "Old Clinic", "clinic", "Asia/Shanghai", now])
    await conn.execute_query("INSERT INTO service_item (id, institution_id, code, name, active, created_at) "
                             "VALUES (%s)" % marks(6), [str(item), str(institution), "D001", "Scaling", True, now])
    await Tortoise.close_connections()

    await db.migrate(url)  # what `careloop migrate` runs
    await db.open_database(url)
    print(json.dumps(await ServiceItem.filter(id=item).values("code", "unit", "frequencies", "version"), default=str))
    await Tortoise.close_connections()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_database_with_a_catalogue_upgrades_from_0018(fresh_database: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UPGRADE_FROM_0018, fresh_database, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert json.loads(stdout.decode().strip().splitlines()[-1]) == [
        {"code": "D001", "unit": "visit", "frequencies": "per_visit", "version": 1}]
