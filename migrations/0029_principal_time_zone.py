"""An institution's time zone travels with its principals (issue 17: a request that counts local days, such as the
follow-up worklist, read it with a statement of its own).

The sign-in's statement now reads the institution's time zone too, and a principal the cache keeps carries it
(``core.principal.Principal.time_zone``). So the cache must forget those principals when the zone changes, however
it is changed (no API changes it today; an operator may, by hand): a change of ``institution.time_zone``, or an
institution's deletion or truncation, notifies the principals' channel with ``*`` (everyone: such a change is rare,
and every process then reads its callers again on their next request). PostgreSQL only: SQLite keeps no cache.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

NOTIFY = """
CREATE OR REPLACE FUNCTION careloop_institution_zone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('careloop_principals', '*');
  RETURN NULL;
END $$
"""

STATEMENTS = [
    NOTIFY,
    "DROP TRIGGER IF EXISTS careloop_principals_institution ON institution",
    "DROP TRIGGER IF EXISTS careloop_principals_institution_delete ON institution",
    "DROP TRIGGER IF EXISTS careloop_principals_institution_truncate ON institution",
    """CREATE TRIGGER careloop_principals_institution AFTER UPDATE ON institution FOR EACH ROW
       WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone) EXECUTE FUNCTION careloop_institution_zone_changed()""",
    """CREATE TRIGGER careloop_principals_institution_delete AFTER DELETE ON institution FOR EACH ROW
       EXECUTE FUNCTION careloop_institution_zone_changed()""",
    """CREATE TRIGGER careloop_principals_institution_truncate AFTER TRUNCATE ON institution FOR EACH STATEMENT
       EXECUTE FUNCTION careloop_institution_zone_changed()""",
]


async def notify_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for statement in STATEMENTS:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0028_audit_inbox_tidy")]

    operations = [
        ops.RunPython(notify_on_postgres),
    ]
