from tortoise import migrations
from tortoise.migrations import operations as ops
from core.ids import uuid7
from models.fields import EncryptedField
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('careloop', '0017_appointments_and_messages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Questionnaire',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('key', fields.UUIDField()),
                ('version', fields.IntField(default=1)),
                ('status', fields.CharField(default='draft', max_length=10)),
                ('title', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('purpose', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('respondent', fields.CharField(default='patient', max_length=10)),
                ('subject', fields.CharField(default='visit', max_length=12)),
                ('anonymous', fields.BooleanField(default=False)),
                ('items', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('scoring', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('revision', fields.IntField(default=1)),
                ('template', fields.CharField(null=True, max_length=32)),
                ('author', fields.ForeignKeyField('careloop.Staff', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name='questionnaires', on_delete=OnDelete.RESTRICT)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'questionnaire', 'app': 'careloop', 'unique_together': (('institution', 'key', 'version'),), 'indexes': [Index(fields=['institution_id', 'status'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SurveySettings',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('fatigue_days', fields.IntField(default=30)),
                ('satisfaction_target', fields.IntField(default=92)),
                ('min_cell', fields.IntField(default=5)),
                ('link_valid_days', fields.IntField(default=14)),
                ('version', fields.IntField(default=1)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'survey_settings', 'app': 'careloop', 'unique_together': (('institution',),), 'pk_attr': 'id', 'table_description': 'One row per institution (the defaults when absent).'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SurveyTrigger',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('questionnaire_key', fields.UUIDField()),
                ('event', fields.CharField(max_length=20)),
                ('visit_kind', fields.CharField(null=True, max_length=16)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='survey_triggers', on_delete=OnDelete.RESTRICT)),
                ('delay_hours', fields.IntField(default=24)),
                ('reminder_after_days', fields.IntField(null=True)),
                ('active', fields.BooleanField(default=True)),
                ('version', fields.IntField(default=1)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'survey_trigger', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'event', 'active'])], 'pk_attr': 'id', 'table_description': 'A rule such as: ask questionnaire Q the day after a finished outpatient visit in department D, and'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='SurveyInvitation',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('questionnaire', fields.ForeignKeyField('careloop.Questionnaire', source_field='questionnaire_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.RESTRICT)),
                ('cause_key', fields.CharField(max_length=120)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('contact', fields.ForeignKeyField('careloop.Contact', source_field='contact_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('visit', fields.ForeignKeyField('careloop.Visit', source_field='visit_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('ticket', fields.ForeignKeyField('careloop.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('follow_up_task', fields.ForeignKeyField('careloop.FollowUpTask', source_field='follow_up_task_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('clinician', fields.ForeignKeyField('careloop.Staff', source_field='clinician_id', null=True, db_constraint=True, to_field='id', related_name='survey_invitations', on_delete=OnDelete.RESTRICT)),
                ('trigger', fields.ForeignKeyField('careloop.SurveyTrigger', source_field='trigger_id', null=True, db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharField(default='requested', max_length=10)),
                ('token_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('send_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('answered', fields.BooleanField(default=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('version', fields.IntField(default=1)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'survey_invitation', 'app': 'careloop', 'unique_together': (('institution', 'cause_key'),), 'indexes': [Index(fields=['institution_id', 'patient_id', 'created_at']), Index(fields=['institution_id', 'questionnaire_id', 'status']), Index(fields=['status', 'send_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='QuestionnaireResponse',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('questionnaire', fields.ForeignKeyField('careloop.Questionnaire', source_field='questionnaire_id', db_constraint=True, to_field='id', related_name='responses', on_delete=OnDelete.RESTRICT)),
                ('invitation', fields.ForeignKeyField('careloop.SurveyInvitation', source_field='invitation_id', null=True, unique=True, db_constraint=True, to_field='id', related_name='responses', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('careloop.Patient', source_field='patient_id', null=True, db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.RESTRICT)),
                ('visit', fields.ForeignKeyField('careloop.Visit', source_field='visit_id', null=True, db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.RESTRICT)),
                ('ticket', fields.ForeignKeyField('careloop.Ticket', source_field='ticket_id', null=True, db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='questionnaire_responses', on_delete=OnDelete.RESTRICT)),
                ('clinician', fields.ForeignKeyField('careloop.Staff', source_field='clinician_id', null=True, db_constraint=True, to_field='id', related_name='responses_about', on_delete=OnDelete.RESTRICT)),
                ('entered_by', fields.ForeignKeyField('careloop.Staff', source_field='entered_by_id', null=True, db_constraint=True, to_field='id', related_name='responses_entered', on_delete=OnDelete.RESTRICT)),
                ('follow_up_ticket', fields.ForeignKeyField('careloop.Ticket', source_field='follow_up_ticket_id', null=True, db_constraint=True, to_field='id', related_name='from_responses', on_delete=OnDelete.RESTRICT)),
                ('source', fields.CharField(max_length=8)),
                ('month', fields.CharField(max_length=7)),
                ('score', fields.FloatField(null=True)),
                ('satisfied', fields.BooleanField(null=True)),
                ('nps', fields.SmallIntField(null=True)),
                ('csat', fields.SmallIntField(null=True)),
                ('low', fields.BooleanField(default=False)),
            ],
            options={'table': 'questionnaire_response', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'questionnaire_id', 'department_id', 'month']), Index(fields=['institution_id', 'patient_id'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='ResponseAnswer',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid7, unique=True, db_index=True)),
                ('institution', fields.ForeignKeyField('careloop.Institution', source_field='institution_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('response', fields.ForeignKeyField('careloop.QuestionnaireResponse', source_field='response_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.RESTRICT)),
                ('questionnaire', fields.ForeignKeyField('careloop.Questionnaire', source_field='questionnaire_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('careloop.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='response_answers', on_delete=OnDelete.RESTRICT)),
                ('month', fields.CharField(max_length=7)),
                ('link_id', fields.CharField(max_length=40)),
                ('number', fields.FloatField(null=True)),
                ('choice', fields.CharField(null=True, max_length=40)),
                ('text', EncryptedField(null=True)),
            ],
            options={'table': 'response_answer', 'app': 'careloop', 'indexes': [Index(fields=['institution_id', 'questionnaire_id', 'department_id', 'month', 'link_id', 'number', 'choice']), Index(fields=['institution_id', 'response_id'])], 'pk_attr': 'id', 'table_description': "One item's answer: a number (Likert, 0-10, CSAT, yes = 1 / no = 0), a choice, or sealed text."},
            bases=['TenantModel'],
        ),
        ops.AddField(
            model_name='ImprovementItem',
            name='survey_month',
            field=fields.CharField(null=True, max_length=7),
        ),
        ops.AddField(
            model_name='ImprovementItem',
            name='survey_questionnaire_key',
            field=fields.UUIDField(null=True),
        ),
    ]
