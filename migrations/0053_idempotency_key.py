"""A signed-in caller's ``Idempotency-Key``, held with the write it came with (``resolvers/idempotency_key.py``): a
mutation whose answer was lost (its COMMIT went through, the connection did not) may be sent again without being
written twice. Keyed hashes only; one row per caller and key, a day at least."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from core.ids import uuid7


class Migration(migrations.Migration):
    dependencies = [("careloop", "0052_audit_head_missing")]

    operations = [
        ops.CreateModel(
            name="IdempotencyKey",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ("institution", fields.ForeignKeyField("careloop.Institution", source_field="institution_id",
                                                       db_constraint=True, to_field="id", related_name=False,
                                                       on_delete=OnDelete.RESTRICT)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField()),
                ("key_hash", fields.CharField(max_length=64)),
                ("request_hash", fields.CharField(max_length=64)),
                ("action", fields.CharField(max_length=20)),
                ("resource_type", fields.CharField(max_length=40)),
                ("resource_id", fields.UUIDField(null=True)),
                ("patient_id", fields.UUIDField(null=True)),
                ("request_id", fields.CharField(max_length=64)),
            ],
            options={"table": "idempotency_key", "app": "careloop", "pk_attr": "id",
                     "unique_together": (("institution", "actor_kind", "actor_id", "key_hash"),),
                     "indexes": [Index(fields=["created_at"])],
                     "table_description": "A signed-in caller's Idempotency-Key, held for a day with the write it "
                                          "came with."},
            bases=["TenantModel"],
        ),
    ]
