"""The migrations describe the models exactly: a model change without a migration fails here."""

import importlib
import pkgutil
from typing import Any

from tortoise.context import TortoiseContext
from tortoise.fields.base import DB_DEFAULT_NOT_SET
from tortoise.migrations import operations as ops
from tortoise.migrations.autodetector import MigrationAutodetector

import migrations
from core.db import tortoise_config


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
