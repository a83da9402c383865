"""Two loose ends of 0027's inbox (issue 17).

- An inbox row's id came from the column default and then again from ``audit_inbox_place``, which must set it (a
  row posted by hand chooses neither its place nor its time): every row used two numbers of the sequence. The
  trigger alone now sets it; the sequence stays owned by the column.
- ``audit_link`` linked a hand-made row whose ``occurred_at`` was ``infinity``, or year 10000, or before Christ:
  reading the institution's trail back then failed (no Python date holds it), ``verify`` included. An event is
  written at the server's present, so its time must lie in the years the product deals in (2000-2199, as
  ``core.validation`` bounds stored dates); another fails with a check violation (class 23) and ``audit_seal``
  sets it aside like any malformed row. NOT VALID: the writer never made such a row, so existing trails are not
  scanned (adding it still takes a brief lock on ``audit_event``).

PostgreSQL only: SQLite has no inbox.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

STATEMENTS = [
    "ALTER TABLE audit_inbox ALTER COLUMN id DROP DEFAULT",
    """DO $$ BEGIN
         ALTER TABLE audit_event ADD CONSTRAINT audit_event_occurred_in_years
           CHECK (occurred_at >= '2000-01-01 00:00:00+00' AND occurred_at < '2200-01-01 00:00:00+00') NOT VALID;
       EXCEPTION WHEN duplicate_object THEN NULL;
       END $$""",
]


async def tidy_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for statement in STATEMENTS:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0027_audit_inbox_rejected")]

    operations = [
        ops.RunPython(tidy_on_postgres),
    ]
