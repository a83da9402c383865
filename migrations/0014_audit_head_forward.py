"""The chain head only moves forward: the database refuses to lower it, change it in place or remove it.

``audit_chain_head`` says where each chain ends. Whoever deletes the last events could move it back
with them, so that the cut no longer shows; verification holds every chain against its newest
signed checkpoint as well (``audit/verify.py``). Here the database refuses the rewind itself: an
UPDATE must raise the sequence number (or leave the row as it is: the service role's no-op update
in ``tests/audit/test_postgres_role.py``), and a DELETE (and on PostgreSQL a TRUNCATE) is refused.
The writer only raises the head, and archiving appends its record through the writer, so neither
is affected. SQLite's INSERT OR REPLACE deletes a clashing row without firing DELETE triggers: an
insert that would put a lower (or, at the same sequence number, a different) head in place of one
is skipped instead (RAISE(IGNORE), not ABORT, so that ``writer.start_chain``, an INSERT OR IGNORE of
a head at seq 0, stays safe to call on a chain that already has one). Every statement can be run
again.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    "DROP TRIGGER IF EXISTS audit_chain_head_forward",
    """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
       WHEN NEW.institution_id IS NOT OLD.institution_id OR NEW.last_seq < OLD.last_seq
         OR (NEW.last_seq = OLD.last_seq AND NEW.last_hash IS NOT OLD.last_hash)
       BEGIN SELECT RAISE(ABORT, 'audit_chain_head only moves forward'); END""",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_delete",
    """CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
       BEGIN SELECT RAISE(ABORT, 'audit_chain_head only moves forward'); END""",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_replace",
    """CREATE TRIGGER audit_chain_head_no_replace BEFORE INSERT ON audit_chain_head
       WHEN EXISTS (SELECT 1 FROM audit_chain_head
                    WHERE institution_id = NEW.institution_id
                      AND (last_seq > NEW.last_seq OR (last_seq = NEW.last_seq AND last_hash IS NOT NEW.last_hash)))
       BEGIN SELECT RAISE(IGNORE); END""",
]
POSTGRES = [
    """CREATE OR REPLACE FUNCTION audit_chain_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND NEW.institution_id = OLD.institution_id
            AND (NEW.last_seq > OLD.last_seq OR (NEW.last_seq = OLD.last_seq AND NEW.last_hash = OLD.last_hash))
         THEN RETURN NEW;
         END IF;
         RAISE EXCEPTION 'audit_chain_head only moves forward';
       END $$""",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head",
    """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_chain_head
       FOR EACH ROW EXECUTE FUNCTION audit_chain_head_guard()""",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head",
    """CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
       FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_guard()""",
]


async def install_triggers(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    for statement in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0013_audit_partner_index")]
    operations = [ops.RunPython(install_triggers)]
