"""Two loose ends of 0027's inbox (issue 17).

- An inbox row's id came from the column default and then again from ``audit_inbox_place``, which must set it (a
  row posted by hand chooses neither its place nor its time): every row used two numbers of the sequence. The
  trigger alone now sets it; the sequence stays owned by the column.
- ``audit_link`` linked a hand-made row whose ``occurred_at`` was ``infinity``: its MAC failed in ``verify`` and
  reading it back failed (no language's date type holds it). An event's time must be a finite instant, so such a
  row fails with a check violation (class 23) and ``audit_seal`` sets it aside like any malformed row. NOT VALID:
  the writer never made such a row, so existing trails are not scanned.

PostgreSQL only: SQLite has no inbox.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

STATEMENTS = [
    "ALTER TABLE audit_inbox ALTER COLUMN id DROP DEFAULT",
    """DO $$ BEGIN
         ALTER TABLE audit_event ADD CONSTRAINT audit_event_occurred_at_finite CHECK (isfinite(occurred_at)) NOT VALID;
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
