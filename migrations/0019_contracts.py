"""Service contracts and the catalogue's prices. A contract version's terms and items are frozen once it is sent
for signature, and signatures are append-only: the database refuses the change, not only the API."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from models.fields import EncryptedField
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

TERMS = ("contract_id", "number", "effective_on", "end_on", "billing_period", "deposit", "period_total",
         "notice_days", "auto_renew", "rights_duties", "clauses", "change_summary", "document_sha256",
         "document_key", "document_size", "sent_at")
_TERMS_CHANGED_SQLITE = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in TERMS)
_TERMS_CHANGED_PG = "ROW(" + ", ".join(f"NEW.{c}" for c in TERMS) + ") IS DISTINCT FROM ROW(" + \
    ", ".join(f"OLD.{c}" for c in TERMS) + ")"
_ITEM_VERSION_STATUS = "(SELECT status FROM contract_version WHERE id = {}.contract_version_id)"

SQLITE = [
    f"""CREATE TRIGGER contract_version_frozen BEFORE UPDATE ON contract_version
        WHEN (OLD.status <> 'draft' AND ({_TERMS_CHANGED_SQLITE}))
          OR (OLD.status IN ('signed', 'withdrawn') AND NEW.status IS NOT OLD.status)
        BEGIN SELECT RAISE(ABORT, 'contract_version is frozen once sent for signature'); END""",
    """CREATE TRIGGER contract_version_no_delete BEFORE DELETE ON contract_version WHEN OLD.status <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_version is frozen once sent for signature'); END""",
    f"""CREATE TRIGGER contract_item_frozen_insert BEFORE INSERT ON contract_item
        WHEN {_ITEM_VERSION_STATUS.format("NEW")} <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END""",
    f"""CREATE TRIGGER contract_item_frozen_update BEFORE UPDATE ON contract_item
        WHEN {_ITEM_VERSION_STATUS.format("OLD")} <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END""",
    f"""CREATE TRIGGER contract_item_frozen_delete BEFORE DELETE ON contract_item
        WHEN {_ITEM_VERSION_STATUS.format("OLD")} <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END""",
    """CREATE TRIGGER contract_signature_no_update BEFORE UPDATE ON contract_signature
        BEGIN SELECT RAISE(ABORT, 'contract_signature is append-only'); END""",
    """CREATE TRIGGER contract_signature_no_delete BEFORE DELETE ON contract_signature
        BEGIN SELECT RAISE(ABORT, 'contract_signature is append-only'); END""",
]
POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION contract_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN
            IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'contract_version is frozen once sent for signature'; END IF;
            RETURN OLD;
          END IF;
          IF (OLD.status <> 'draft' AND {_TERMS_CHANGED_PG})
             OR (OLD.status IN ('signed', 'withdrawn') AND NEW.status IS DISTINCT FROM OLD.status) THEN
            RAISE EXCEPTION 'contract_version is frozen once sent for signature';
          END IF;
          RETURN NEW;
        END $$""",
    """CREATE TRIGGER contract_version_frozen BEFORE UPDATE OR DELETE ON contract_version
        FOR EACH ROW EXECUTE FUNCTION contract_version_guard()""",
    """CREATE OR REPLACE FUNCTION contract_item_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE version_id uuid;
        BEGIN
          IF TG_OP = 'INSERT' THEN version_id := NEW.contract_version_id; ELSE version_id := OLD.contract_version_id; END IF;
          IF (SELECT status FROM contract_version WHERE id = version_id) <> 'draft' THEN
            RAISE EXCEPTION 'contract_item is frozen once sent for signature';
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$""",
    """CREATE TRIGGER contract_item_frozen BEFORE INSERT OR UPDATE OR DELETE ON contract_item
        FOR EACH ROW EXECUTE FUNCTION contract_item_guard()""",
    """CREATE OR REPLACE FUNCTION contract_signature_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'contract_signature is append-only'; END $$""",
    """CREATE TRIGGER contract_signature_no_update_delete BEFORE UPDATE OR DELETE ON contract_signature
        FOR EACH ROW EXECUTE FUNCTION contract_signature_refuse_change()""",
]


async def install_guards(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    for statement in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [('careloop', '0018_surveys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Contract',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='contracts', on_delete=OnDelete.RESTRICT)),
                ('number', fields.CharField(max_length=32)),
                ('title', fields.CharField(max_length=200)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='contracts', on_delete=OnDelete.RESTRICT)),
                ('guarantor', fields.ForeignKeyField('careloop.Contact', source_field='guarantor_id', null=True, db_constraint=True, to_field='id', related_name='guaranteed_contracts', on_delete=OnDelete.RESTRICT)),
                ('partner', fields.ForeignKeyField('careloop.Partner', source_field='partner_id', null=True, db_constraint=True, to_field='id', related_name='contracts', on_delete=OnDelete.RESTRICT)),
                ('renewal_of', fields.ForeignKeyField('careloop.Contract', source_field='renewal_of_id', null=True, db_constraint=True, to_field='id', related_name='renewals', on_delete=OnDelete.RESTRICT)),
                ('currency', fields.CharField(max_length=3)),
                ('status', fields.CharField(default='draft', max_length=10)),
                ('start_on', fields.DateField()),
                ('end_on', fields.DateField()),
                ('current_version', fields.IntField(default=1)),
                ('activated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('suspended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('status_reason', fields.CharField(null=True, max_length=200)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='contracts_created', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField(default=1)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'contract', 'app': 'careloop', 'unique_together': (('institution', 'number'),), 'indexes': [Index(fields=['institution_id', 'patient_id', 'start_on']), Index(fields=['institution_id', 'status', 'end_on'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ContractVersion',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('contract', fields.ForeignKeyField('careloop.Contract', source_field='contract_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.RESTRICT)),
                ('number', fields.IntField()),
                ('status', fields.CharField(default='draft', max_length=10)),
                ('effective_on', fields.DateField()),
                ('end_on', fields.DateField()),
                ('billing_period', fields.CharField(default='monthly', max_length=10)),
                ('deposit', fields.BigIntField(default=0)),
                ('period_total', fields.BigIntField(default=0)),
                ('notice_days', fields.IntField(default=30)),
                ('auto_renew', fields.BooleanField(default=False)),
                ('rights_duties', fields.TextField(unique=False)),
                ('clauses', EncryptedField(null=True)),
                ('change_summary', fields.TextField(null=True, unique=False)),
                ('document_sha256', fields.CharField(null=True, max_length=64)),
                ('document_key', fields.CharField(null=True, max_length=64)),
                ('document_size', fields.IntField(null=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('signed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='contract_versions', on_delete=OnDelete.RESTRICT)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'contract_version', 'app': 'careloop', 'unique_together': (('contract', 'number'),), 'pk_attr': 'id', 'table_description': 'The terms as agreed at one version. Frozen from ``sent`` on (the database enforces it).'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ContractSignature',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('contract_version', fields.ForeignKeyField('careloop.ContractVersion', source_field='contract_version_id', db_constraint=True, to_field='id', related_name='signatures', on_delete=OnDelete.RESTRICT)),
                ('party', fields.CharField(max_length=12)),
                ('signer_kind', fields.CharField(max_length=10)),
                ('staff', fields.ForeignKeyField('careloop.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='contract_signatures', on_delete=OnDelete.RESTRICT)),
                ('contact', fields.ForeignKeyField('careloop.Contact', source_field='contact_id', null=True, db_constraint=True, to_field='id', related_name='contract_signatures', on_delete=OnDelete.RESTRICT)),
                ('witness', fields.ForeignKeyField('careloop.Staff', source_field='witness_id', null=True, db_constraint=True, to_field='id', related_name='contract_witnessed', on_delete=OnDelete.RESTRICT)),
                ('signer_name', fields.CharField(max_length=100)),
                ('method', fields.CharField(max_length=10)),
                ('signed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('document_sha256', fields.CharField(max_length=64)),
            ],
            options={'table': 'contract_signature', 'app': 'careloop', 'unique_together': (('contract_version', 'party'),), 'pk_attr': 'id', 'table_description': "One party's signature of one version, bound to the SHA-256 of the exact document signed."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ServiceItemPrice',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('item', fields.ForeignKeyField('careloop.ServiceItem', source_field='item_id', db_constraint=True, to_field='id', related_name='prices', on_delete=OnDelete.RESTRICT)),
                ('number', fields.IntField()),
                ('unit_price', fields.BigIntField()),
                ('currency', fields.CharField(max_length=3)),
                ('effective_from', fields.DateField()),
                ('created_by', fields.ForeignKeyField('careloop.Staff', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='service_prices', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'service_item_price', 'app': 'careloop', 'unique_together': (('item', 'number'), ('item', 'effective_from')), 'indexes': [Index(fields=['institution_id', 'item_id', 'effective_from'])], 'pk_attr': 'id', 'table_description': "One price version of an item: in force from ``effective_from`` until the next version's date."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ContractItem',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('contract_version', fields.ForeignKeyField('careloop.ContractVersion', source_field='contract_version_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.RESTRICT)),
                ('service_item', fields.ForeignKeyField('careloop.ServiceItem', source_field='service_item_id', db_constraint=True, to_field='id', related_name='contract_items', on_delete=OnDelete.RESTRICT)),
                ('price', fields.ForeignKeyField('careloop.ServiceItemPrice', source_field='price_id', db_constraint=True, to_field='id', related_name='contract_items', on_delete=OnDelete.RESTRICT)),
                ('position', fields.IntField()),
                ('code', fields.CharField(max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('quantity', fields.IntField()),
                ('frequency', fields.CharField(max_length=10)),
                ('unit_price', fields.BigIntField()),
                ('period_total', fields.BigIntField()),
                ('delivered_by_partner', fields.BooleanField(default=False)),
            ],
            options={'table': 'contract_item', 'app': 'careloop', 'unique_together': (('contract_version', 'position'),), 'pk_attr': 'id', 'table_description': 'A catalogue item sold at one price version: ``quantity`` units per billing period.'},
            bases=['TenantModel'],
        ),
        ops.AlterModelOptions(
            name='ServiceItem',
            options={'table': 'service_item', 'app': 'careloop', 'unique_together': (('institution', 'code'),), 'pk_attr': 'id', 'table_description': 'An entry of the catalogue (orthodontics, implant, home nursing visit, bathing assistance...).'},
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='description',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='frequencies',
            field=fields.CharField(default='per_visit', db_default='per_visit', max_length=64),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='standard',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='unit',
            field=fields.CharField(default='visit', db_default='visit', max_length=10),
        ),
        ops.AddField(
            model_name='ServiceItem',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='Notification',
            name='contract',
            field=fields.ForeignKeyField('careloop.Contract', source_field='contract_id', null=True, db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.RESTRICT),
        ),
        ops.RunPython(install_guards),
    ]
