"""A queued message's lease as a column of its own (found in review: scheduling its cause again while a worker was
sending it moved ``due_at``, which was the lease's end, back to now; another worker claimed it and sent it twice)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0035_sign_in_window")]

    operations = [
        ops.AddField(model_name="Communication", name="leased_until", field=fields.DatetimeField(null=True)),
    ]
