"""``audit_event.fields_read`` and ``policy_rule`` become text (found in review).

Both were bounded (500 and 200 characters), and ordinary operations wrote longer values: a nurse's whole patient
page reads more field names than 500 characters hold, and a ``patientUpdate`` touching all five field classes
joins five rules into 209 characters. The append then failed (the operation was refused) or, on PostgreSQL when
the chain head was busy, the event was posted to the inbox and set aside at sealing, after its answer had gone
out. Both values are bounded by the schema (its field names, its classes), not by the request.

PostgreSQL changes the columns' type in place: varchar to text rewrites neither the table nor an index. SQLite
is left as it is: it stores a ``VARCHAR(n)`` column's values at any length (type affinity), and changing the
column there would rebuild the table, dropping its append-only triggers.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class WidenOnPostgres(ops.AlterField):
    """The field becomes text in the migrations' state; only PostgreSQL's column changes."""

    reversible = False

    async def database_forward(self, app_label: str, old_state: Any, new_state: Any,
                               state_editor: Any = None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await state_editor.client.execute_script(
                f"ALTER TABLE audit_event ALTER COLUMN {self.name} TYPE text")


class Migration(migrations.Migration):
    dependencies = [("careloop", "0032_audit_disclosure_index")]

    operations = [
        WidenOnPostgres(model_name="AuditEvent", name="fields_read", field=fields.TextField(default="")),
        WidenOnPostgres(model_name="AuditEvent", name="policy_rule", field=fields.TextField(default="")),
    ]
