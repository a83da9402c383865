from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('careloop', '0005_tickets')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ImprovementItem',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('problem', fields.CharField(max_length=500)),
                ('measure', fields.CharField(default='', max_length=1000)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='improvement_items', on_delete=OnDelete.RESTRICT)),
                ('deadline', fields.DateField()),
                ('status', fields.CharField(default='open', max_length=16)),
                ('source', fields.CharField(default='ticket', max_length=16)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='improvement_items', on_delete=OnDelete.RESTRICT)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'improvement_item', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'status', 'deadline'])], 'pk_attr': 'id', 'table_description': 'A service problem on the improvement list: who fixes it, how, by when.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ImprovementTicket',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('item', fields.ForeignKeyField('careloop.ImprovementItem', source_field='item_id', db_constraint=True, to_field='id', related_name='ticket_links', on_delete=OnDelete.RESTRICT)),
                ('ticket', fields.ForeignKeyField('careloop.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='improvement_links', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'improvement_ticket', 'app': 'careloop', 'unique_together': (('item', 'ticket'),), 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
    ]
