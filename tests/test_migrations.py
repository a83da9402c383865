"""The migrations describe the models exactly: a model change without a migration fails here."""

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from core.db import tortoise_config


async def test_models_and_migrations_agree() -> None:
    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert writers == [], "models changed without a migration: run `tortoise makemigrations` (see docs)"
