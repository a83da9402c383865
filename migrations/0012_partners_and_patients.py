from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from models.fields import TagsField
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('careloop', '0011_audit_retention')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Partner',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('name', fields.CharField(max_length=100)),
                ('is_active', fields.BooleanField(default=True)),
            ],
            options={'table': 'partner', 'app': 'careloop', 'unique_together': (('institution', 'name'),), 'pk_attr': 'id', 'table_description': 'A home-care company, lab or rehab centre the institution shares data with.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerClient',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('partner', fields.ForeignKeyField('careloop.Partner', source_field='partner_id', db_constraint=True, to_field='id', related_name='clients', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=100)),
                ('secret_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', TagsField(default='|')),
                ('rate_limit_per_minute', fields.IntField(default=60)),
                ('documents_only', fields.BooleanField(default=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_client', 'app': 'careloop', 'pk_attr': 'id', 'table_description': 'One API client of a partner: a secret (only its keyed hash), the most its tokens may carry,'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerConsent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='partner_consents', on_delete=OnDelete.RESTRICT)),
                ('partner', fields.ForeignKeyField('careloop.Partner', source_field='partner_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.RESTRICT)),
                ('granted', fields.BooleanField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'partner_consent', 'app': 'careloop', 'unique_together': (('patient', 'partner'),), 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerDocument',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('client', fields.ForeignKeyField('careloop.PartnerClient', source_field='client_id', db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.RESTRICT)),
                ('sha256', fields.CharField(max_length=64)),
            ],
            options={'table': 'partner_document', 'app': 'careloop', 'unique_together': (('client', 'sha256'),), 'pk_attr': 'id', 'table_description': 'An operation document a restricted client may send, by the SHA-256 of its text.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerGrant',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('partner', fields.ForeignKeyField('careloop.Partner', source_field='partner_id', db_constraint=True, to_field='id', related_name='grants', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='partner_grants', on_delete=OnDelete.RESTRICT)),
                ('purpose', fields.CharField(max_length=200)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', db_constraint=True, to_field='id', related_name='partner_grants', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'partner_grant', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'partner_id', 'patient_id']), Index(fields=['institution_id', 'patient_id'])], 'pk_attr': 'id', 'table_description': 'Staff let a partner reach one patient, for a purpose, until a time.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('client', fields.ForeignKeyField('careloop.PartnerClient', source_field='client_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.RESTRICT)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', TagsField(default='|')),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_token', 'app': 'careloop', 'pk_attr': 'id', 'table_description': 'A short-lived access token (at most an hour): its keyed hash and the scopes granted.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PartnerUsage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('institution_id', fields.UUIDField()),
                ('client_id', fields.UUIDField()),
                ('window_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('requests', fields.IntField(default=0)),
                ('throttled', fields.IntField(default=0)),
            ],
            options={'table': 'partner_usage', 'app': 'careloop', 'unique_together': (('client_id', 'window_start'),), 'pk_attr': 'id', 'table_description': "Requests per client and minute: the rate limit's counter, and the partner's usage report."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PatientAccount',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('patient', fields.OneToOneField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='account', on_delete=OnDelete.RESTRICT)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('password_hash', fields.CharField(max_length=200)),
                ('is_active', fields.BooleanField(default=True)),
                ('failed_logins', fields.IntField(default=0)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patient_account', 'app': 'careloop', 'pk_attr': 'id', 'table_description': 'Signs in like staff (argon2id, lockout) and reaches exactly one file.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PatientInvitation',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.RESTRICT)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', db_constraint=True, to_field='id', related_name='patient_invitations', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'patient_invitation', 'app': 'careloop', 'pk_attr': 'id', 'table_description': 'A one-time code staff hand a patient to open their account: only its keyed hash is kept.'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='PatientSession',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('account', fields.ForeignKeyField('careloop.PatientAccount', source_field='account_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.RESTRICT)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patient_session', 'app': 'careloop', 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
    ]
