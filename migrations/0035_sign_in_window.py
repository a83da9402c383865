"""Sign-in attempts per client address and minute (found in review: anonymous sign-ins at once from one address
held the argon2 slots, and every honest sign-in queued behind them)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0034_sign_in_throttle")]

    operations = [
        ops.CreateModel(
            name="SignInWindow",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("address", fields.CharField(max_length=64)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("attempts", fields.IntField(default=0)),
            ],
            options={"table": "sign_in_window", "app": "careloop", "unique_together": (("address", "window_start"),),
                     "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
