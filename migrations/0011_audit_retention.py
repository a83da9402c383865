"""Audit retention and archiving.

Each institution keeps its audit events for ``audit_retention_months`` (default 72, at least 6).
An archive run writes the oldest signed stretch of a chain to a file and leaves an anchor in
``audit_archive`` (append-only, like the checkpoints). The DELETE trigger on ``audit_event`` now
lets through only rows an anchor covers that are older than the retention period (never less
than 6 months, whatever the column says). UPDATE and TRUNCATE stay refused, and SQLite's INSERT
OR REPLACE guard (0003) is untouched. The replaced triggers keep 0002's names (the role test and
the chain tests refer to them), and every statement can be run again.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from core.ids import uuid7

# A row may go when an archive anchor covers it and it is older than its institution's retention
# period, never less than 6 months (the system chain has no institution row: 72 months).
SQLITE = [
    # SQLite's 'now', '-N months' overflows into the next month (31 March - 1 month = 3 March):
    # the last day of the target month, at the same time of day, caps it, as on PostgreSQL.
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN
         SELECT RAISE(ABORT, 'audit_event is append-only')
         FROM (SELECT max(6, coalesce((SELECT audit_retention_months FROM institution
                                       WHERE id = OLD.institution_id), 72)) AS m)
         WHERE NOT EXISTS (SELECT 1 FROM audit_archive a
                           WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
            OR julianday(OLD.occurred_at) >= min(
                 julianday('now', '-' || m || ' months'),
                 julianday('now', 'start of month', '-' || (m - 1) || ' months', '-1 day')
                   + julianday('now') - julianday('now', 'start of day'));
       END""",
    "DROP TRIGGER IF EXISTS audit_archive_no_update",
    """CREATE TRIGGER audit_archive_no_update BEFORE UPDATE ON audit_archive
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END""",
    "DROP TRIGGER IF EXISTS audit_archive_no_delete",
    """CREATE TRIGGER audit_archive_no_delete BEFORE DELETE ON audit_archive
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END""",
    # INSERT OR REPLACE deletes a clashing row without firing DELETE triggers.
    "DROP TRIGGER IF EXISTS audit_archive_no_replace",
    """CREATE TRIGGER audit_archive_no_replace BEFORE INSERT ON audit_archive
       WHEN EXISTS (SELECT 1 FROM audit_archive
                    WHERE id = NEW.id OR (institution_id = NEW.institution_id AND up_to_seq = NEW.up_to_seq))
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END""",
]
POSTGRES = [
    # Month arithmetic on UTC timestamps, whatever the session's time zone.
    """CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE'
            AND EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
            AND OLD.occurred_at AT TIME ZONE 'UTC' < now() AT TIME ZONE 'UTC' - make_interval(
                  months => GREATEST(6, coalesce((SELECT audit_retention_months FROM institution
                                                  WHERE id = OLD.institution_id), 72)))
         THEN RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit_event is append-only';
       END $$""",
    "DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_event",
    """CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
    """CREATE OR REPLACE FUNCTION audit_archive_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_archive is append-only'; END $$""",
    "DROP TRIGGER IF EXISTS audit_archive_no_update_delete ON audit_archive",
    """CREATE TRIGGER audit_archive_no_update_delete BEFORE UPDATE OR DELETE ON audit_archive
       FOR EACH ROW EXECUTE FUNCTION audit_archive_refuse_change()""",
    "DROP TRIGGER IF EXISTS audit_archive_no_truncate ON audit_archive",
    """CREATE TRIGGER audit_archive_no_truncate BEFORE TRUNCATE ON audit_archive
       FOR EACH STATEMENT EXECUTE FUNCTION audit_archive_refuse_change()""",
]


async def install_triggers(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    for statement in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0010_emergency_access")]

    operations = [
        ops.CreateModel(
            name="AuditArchive",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ("institution_id", fields.UUIDField()),
                ("up_to_seq", fields.BigIntField()),
                ("up_to_hash", fields.CharField(max_length=64)),
                ("archived_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("events", fields.BigIntField()),
                ("sha256", fields.CharField(max_length=64)),
            ],
            options={"table": "audit_archive", "app": "careloop",
                     "unique_together": (("institution_id", "up_to_seq"),), "pk_attr": "id",
                     "table_description": "Where the archived start of a chain ends: its last sequence number "
                                          "and hash."},
            bases=["Model"],
        ),
        ops.AddField(model_name="Institution", name="audit_retention_months",
                     field=fields.IntField(default=72, db_default=72)),
        ops.RunPython(install_triggers),
    ]
