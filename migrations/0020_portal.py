from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from models.fields import EncryptedField
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from typing import Any

# Existing tickets: the opener is the actor of the "created" event (null for a partner's), and the
# channel tells a partner's ticket (its partner is not on record before this migration).
BACKFILL_OPENER = """
UPDATE ticket SET opened_by_id = (
    SELECT e.actor_id FROM ticket_event e WHERE e.ticket_id = ticket.id AND e.kind = 'created' LIMIT 1)
"""


async def backfill_openers(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script(BACKFILL_OPENER)

class Migration(migrations.Migration):
    dependencies = [('careloop', '0019_contracts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PasswordReset',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('staff', fields.ForeignKeyField('careloop.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='password_resets', on_delete=OnDelete.RESTRICT)),
                ('patient_account', fields.ForeignKeyField('careloop.PatientAccount', source_field='patient_account_id', null=True, db_constraint=True, to_field='id', related_name='password_resets', on_delete=OnDelete.RESTRICT)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='issued_password_resets', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'password_reset', 'app': 'careloop', 'pk_attr': 'id', 'table_description': 'Single use and short-lived, for exactly one of a staff account or a patient account.'},
            bases=['TenantModel'],
        ),
        ops.AddField(
            model_name='BusinessCalendar',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Contact',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Department',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Flag',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='ImprovementItem',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Institution',
            name='totp_required',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Partner',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Patient',
            name='alt_phone_last4_bidx',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Patient',
            name='merged_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Patient',
            name='merged_into',
            field=fields.ForeignKeyField('careloop.Patient', source_field='merged_into_id', null=True, db_constraint=True, to_field='id', related_name='merged_files', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Patient',
            name='name_search',
            field=fields.CharField(default='', db_default='', max_length=400),
        ),
        ops.AddField(
            model_name='Patient',
            name='phone_last4_bidx',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Patient',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddIndex(
            model_name='Patient',
            index=Index(fields=['institution_id', 'phone_last4_bidx']),
        ),
        ops.AddIndex(
            model_name='Patient',
            index=Index(fields=['institution_id', 'alt_phone_last4_bidx']),
        ),
        ops.AddField(
            model_name='SlaPolicy',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Staff',
            name='password_changed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Staff',
            name='totp_enabled_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Staff',
            name='totp_last_step',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Staff',
            name='totp_secret',
            field=EncryptedField(null=True),
        ),
        ops.AddField(
            model_name='Staff',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Ticket',
            name='opened_by',
            field=fields.ForeignKeyField('careloop.Staff', source_field='opened_by_id', null=True, db_constraint=True, to_field='id', related_name='opened_tickets', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Ticket',
            name='opened_by_partner',
            field=fields.ForeignKeyField('careloop.Partner', source_field='opened_by_partner_id', null=True, db_constraint=True, to_field='id', related_name='opened_tickets', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Ticket',
            name='opened_by_patient',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Ticket',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.RunPython(backfill_openers),
    ]
