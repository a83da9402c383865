"""The moment a worker took a greeting's or campaign message's place under the frequency cap, just before handing it
over (found in review: two workers each counted what their own batch had sent, and both sent a patient's message past
the cap). Other workers count it while its lease runs; cleared when the message settles."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0040_audit_policy_index")]

    operations = [
        ops.AddField(model_name="Communication", name="reserved_at", field=fields.DatetimeField(null=True)),
    ]
