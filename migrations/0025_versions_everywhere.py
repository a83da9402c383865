"""Versions everywhere (issue 16): the institution, a message gateway, a schedule exception and a visit code get
the optimistic-concurrency ``version`` the other updatable records have (existing rows: 1). institutionSecurityUpdate,
messageGatewaySet, scheduleExceptionCancel and visitCodeSetStatus bump it and take the version the caller read.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('careloop', '0024_principal_notify')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Institution',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='MessageGateway',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='ScheduleException',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        ops.AddField(
            model_name='VisitCode',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
    ]
