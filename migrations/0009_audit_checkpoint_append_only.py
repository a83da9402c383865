"""Signed checkpoints are append-only too: the database refuses to change or remove them."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    """CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END""",
    """CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END""",
    # INSERT OR REPLACE deletes a clashing row without firing DELETE triggers.
    """CREATE TRIGGER audit_checkpoint_no_replace BEFORE INSERT ON audit_checkpoint
       WHEN EXISTS (SELECT 1 FROM audit_checkpoint
                    WHERE id = NEW.id OR (institution_id = NEW.institution_id AND last_seq = NEW.last_seq))
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END""",
]
POSTGRES = [
    """CREATE OR REPLACE FUNCTION audit_checkpoint_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_checkpoint is append-only'; END $$""",
    """CREATE TRIGGER audit_checkpoint_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoint
       FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_refuse_change()""",
    """CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
       FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoint_refuse_change()""",
]


async def install_triggers(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    for statement in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0008_audit_checkpoints")]
    operations = [ops.RunPython(install_triggers)]
