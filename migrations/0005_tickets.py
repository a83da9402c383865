from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from core.ids import uuid7
from models.fields import EncryptedField


class Migration(migrations.Migration):
    dependencies = [('careloop', '0004_lookup_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BusinessCalendar',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('week', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('workday_hours', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('holidays', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('workdays', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'business_calendar', 'app': 'careloop', 'unique_together': (('institution',),), 'pk_attr': 'id', 'table_description': 'Working hours per weekday (ISO, Monday = 1), public holidays and make-up working days.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SlaPolicy',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('level', fields.SmallIntField()),
                ('first_response_minutes', fields.IntField()),
                ('resolution_minutes', fields.IntField()),
                ('clock', fields.CharField(max_length=10)),
            ],
            options={'table': 'sla_policy', 'app': 'careloop', 'unique_together': (('institution', 'level'),), 'pk_attr': 'id', 'table_description': 'First-response and resolution targets of one level, in minutes of its clock.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='Ticket',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.RESTRICT)),
                ('contact', fields.ForeignKeyField('careloop.Contact', source_field='contact_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.RESTRICT)),
                ('caller_name', EncryptedField(null=True)),
                ('caller_phone', EncryptedField(null=True)),
                ('channel', fields.CharField(max_length=16)),
                ('category', fields.CharField(max_length=16)),
                ('subcategory', fields.CharField(default='', max_length=64)),
                ('level', fields.SmallIntField()),
                ('vip', fields.BooleanField(default=False)),
                ('subject', EncryptedField()),
                ('description', EncryptedField(null=True)),
                ('status', fields.CharField(default='new', max_length=20)),
                ('owner', fields.ForeignKeyField('careloop.Staff', source_field='owner_id', null=True, db_constraint=True, to_field='id', related_name='owned_tickets', on_delete=OnDelete.RESTRICT)),
                ('assignee', fields.ForeignKeyField('careloop.Staff', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='assigned_tickets', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='tickets', on_delete=OnDelete.RESTRICT)),
                ('root_cause_category', fields.CharField(null=True, max_length=16)),
                ('root_cause', EncryptedField(null=True)),
                ('resolution', EncryptedField(null=True)),
                ('feedback', EncryptedField(null=True)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('first_responded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paused_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('response_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('response_at_risk_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolution_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolution_at_risk_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_at_risk_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'ticket', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'next_due_at']), Index(fields=['institution_id', 'department_id', 'status']), Index(fields=['institution_id', 'patient_id'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('key', fields.CharField(max_length=120)),
                ('kind', fields.CharField(max_length=32)),
                ('ticket', fields.ForeignKeyField('careloop.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.RESTRICT)),
                ('recipient', fields.ForeignKeyField('careloop.Staff', source_field='recipient_id', null=True, db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.RESTRICT)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'notification', 'app': 'careloop', 'unique_together': (('institution', 'key'),), 'indexes': [Index(fields=['sent_at', 'due_at'])], 'pk_attr': 'id', 'table_description': 'The escalation outbox: written with the change that schedules it, delivered at least once.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='TicketEvent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('ticket', fields.ForeignKeyField('careloop.Ticket', source_field='ticket_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharField(max_length=20)),
                ('actor', fields.ForeignKeyField('careloop.Staff', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='ticket_events', on_delete=OnDelete.RESTRICT)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('from_status', fields.CharField(null=True, max_length=20)),
                ('to_status', fields.CharField(null=True, max_length=20)),
                ('internal', fields.BooleanField(default=True)),
                ('note', EncryptedField(null=True)),
                ('to_staff', fields.ForeignKeyField('careloop.Staff', source_field='to_staff_id', null=True, db_constraint=True, to_field='id', related_name='ticket_handovers', on_delete=OnDelete.RESTRICT)),
                ('to_department', fields.ForeignKeyField('careloop.Department', source_field='to_department_id', null=True, db_constraint=True, to_field='id', related_name='ticket_handovers', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'ticket_event', 'app': 'careloop', 'indexes': [Index(fields=['ticket_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': "One entry of a ticket's timeline: who did what, when, from which status to which."},
            bases=['TenantModel'],
        ),
    ]
