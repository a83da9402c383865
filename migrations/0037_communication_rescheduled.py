"""The due time a message's cause set while a worker held it (found in review: the worker's retry time, written when
the hand-over failed, replaced a later one the cause had set meanwhile, and the message went out early)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0036_communication_lease")]

    operations = [
        ops.AddField(model_name="Communication", name="rescheduled_to", field=fields.DatetimeField(null=True)),
    ]
