"""Gateways' reports that came before their message's sent record was written (found in review: such a report found
no message, answered 404, and was lost): kept here until the worker's write applies it, a day at most."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from core.ids import uuid7


class Migration(migrations.Migration):
    dependencies = [("careloop", "0041_communication_reserved")]

    operations = [
        ops.CreateModel(
            name="DeliveryReport",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ("institution", fields.ForeignKeyField("careloop.Institution", source_field="institution_id",
                                                       db_constraint=True, to_field="id", related_name=False,
                                                       on_delete=OnDelete.RESTRICT)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("channel", fields.CharField(max_length=8)),
                ("gateway_message_id", fields.CharField(max_length=100)),
                ("status", fields.CharField(max_length=10)),
                ("reason", fields.CharField(default="", max_length=60)),
            ],
            options={"table": "delivery_report", "app": "careloop", "pk_attr": "id",
                     "unique_together": (("institution", "channel", "gateway_message_id"),),
                     "table_description": "A gateway's report that came before its message's sent record was "
                                          "written."},
            bases=["TenantModel"],
        ),
    ]
