"""Four eyes on a campaign (the institutions' approval rule for using customer information, docs/security.md):
who approved a draft, someone other than its author, and when; both null until then, and a campaign is started only
once approved. Campaigns written before keep null: a draft among them is approved like a new one before it starts."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0049_session_used_after_end")]

    operations = [
        ops.AddField(model_name="Campaign", name="approved_by",
                     field=fields.ForeignKeyField("careloop.Staff", source_field="approved_by_id", null=True,
                                                  db_constraint=True, to_field="id",
                                                  related_name="campaigns_approved", on_delete=OnDelete.RESTRICT)),
        ops.AddField(model_name="Campaign", name="approved_at", field=fields.DatetimeField(null=True)),
    ]
