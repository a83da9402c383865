"""The review queue of role grants that give patient data (issue 11)."""

from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from core.ids import uuid7


def _staff(source: str, related_name: str, *, null: bool = False) -> Any:
    options: dict[str, Any] = {'null': True} if null else {}
    return fields.ForeignKeyField('careloop.Staff', source_field=source, db_constraint=True, to_field='id',
                                  related_name=related_name, on_delete=OnDelete.RESTRICT, **options)


class Migration(migrations.Migration):
    dependencies = [('careloop', '0014_audit_head_forward')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RoleGrant',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id',
                                                       db_constraint=True, to_field='id', related_name=False,
                                                       on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('granted_by', _staff('granted_by_id', 'role_grants_made')),
                ('staff', _staff('staff_id', 'role_grants_received')),
                ('role', fields.CharField(max_length=32)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reviewed_by', _staff('reviewed_by_id', 'role_grant_reviews', null=True)),
                ('review_outcome', fields.CharField(null=True, max_length=16)),
                ('review_note', fields.CharField(null=True, max_length=1000)),
            ],
            options={'table': 'role_grant', 'app': 'careloop', 'pk_attr': 'id',
                     'indexes': [Index(fields=['institution_id', 'reviewed_at'])]},
            bases=['TenantModel'],
        ),
    ]
