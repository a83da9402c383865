"""When a session's token was first used after the session ended (a logout, a revocation, a deactivation): that
use is on the institution's trail, once per session (found in the notes: such a token was refused unrecorded, so a
stolen token tried after its owner signed out left no trace). Set by the refusal that records it."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0045_delivery_report")]

    operations = [
        ops.AddField(model_name="Session", name="used_after_end_at", field=fields.DatetimeField(null=True)),
        ops.AddField(model_name="PatientSession", name="used_after_end_at", field=fields.DatetimeField(null=True)),
    ]
