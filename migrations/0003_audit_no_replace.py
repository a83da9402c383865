"""SQLite's INSERT OR REPLACE deletes a clashing row without firing DELETE triggers: refuse it.

On PostgreSQL an upsert is an UPDATE, which migration 0002 already refuses.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = """CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event
   WHEN EXISTS (SELECT 1 FROM audit_event
                WHERE id = NEW.id OR (institution_id = NEW.institution_id AND seq = NEW.seq))
   BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"""


async def install_trigger(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(SQLITE)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0002_audit_append_only")]
    operations = [ops.RunPython(install_trigger)]
