"""Sign-in attempts at addresses without an account, counted and locked as an account's (found in review: an
unknown address never locked, so the lockout told which addresses have an account)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0033_audit_free_length_columns")]

    operations = [
        ops.CreateModel(
            name="SignInThrottle",
            fields=[
                ("id", fields.CharField(max_length=64, primary_key=True, unique=True, db_index=True)),
                ("failed_logins", fields.IntField(default=0)),
                ("locked_until", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "sign_in_throttle", "app": "careloop", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
