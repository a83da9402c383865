from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from models.fields import EncryptedField
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('careloop', '0009_audit_checkpoint_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EmergencyAccess',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('staff', fields.ForeignKeyField('careloop.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='emergency_accesses', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='emergency_accesses', on_delete=OnDelete.RESTRICT)),
                ('reason', EncryptedField()),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reviewed_by', fields.ForeignKeyField('careloop.Staff', source_field='reviewed_by_id', null=True, db_constraint=True, to_field='id', related_name='emergency_reviews', on_delete=OnDelete.RESTRICT)),
                ('review_outcome', fields.CharField(null=True, max_length=16)),
                ('review_note', EncryptedField(null=True)),
            ],
            options={'table': 'emergency_access', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'staff_id', 'expires_at']), Index(fields=['institution_id', 'reviewed_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
    ]
