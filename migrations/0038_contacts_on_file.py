"""A file's contacts counted as of now, for contactCreate's bound (PostgreSQL; SQLite runs one write at a time).

contactCreate writes its contact in one statement that locks the file's row (``resolvers.writes.insert_on_open_file``)
and refuses a file that holds ``resolvers.contact.MAX_CONTACTS`` already. A count written into that statement reads
the snapshot the statement began with: a second contactCreate waiting for the lock of the first did not see its
contact once it had the lock, and both went in (found while testing: 49 contacts and two writers gave 51). A VOLATILE
function takes its own snapshot for its query, after the lock, so it counts what the first writer committed. It
counts no further than ``up_to``: the check costs no more on a file that holds more (merged files keep all theirs).
SECURITY INVOKER (the default): the service role reads ``contact`` already.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

COUNT = """
CREATE OR REPLACE FUNCTION contacts_on_file(institution uuid, file uuid, up_to integer) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  SELECT count(*) FROM (SELECT 1 FROM contact WHERE institution_id = institution AND patient_id = file
                        LIMIT up_to) AS counted
$$
"""


async def count_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(COUNT)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0037_communication_rescheduled")]

    operations = [
        ops.RunPython(count_on_postgres),
    ]
