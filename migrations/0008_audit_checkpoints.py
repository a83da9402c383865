from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('careloop', '0007_attachments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution_id', fields.UUIDField()),
                ('last_seq', fields.BigIntField()),
                ('head_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('key_id', fields.CharField(max_length=16)),
                ('signature', fields.CharField(max_length=128)),
            ],
            options={'table': 'audit_checkpoint', 'app': 'careloop', 'unique_together': (('institution_id', 'last_seq'),), 'pk_attr': 'id', 'table_description': "A signed statement of a chain's head at a moment: institution, last sequence number, head"},
            bases=['Model'],
        ),
    ]
