from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('careloop', '0003_audit_no_replace')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='CareTeamMember',
            index=Index(fields=['institution_id', 'staff_id', 'patient_id']),
        ),
        ops.AddIndex(
            model_name='CareTeamMember',
            index=Index(fields=['institution_id', 'patient_id']),
        ),
        ops.AddIndex(
            model_name='Contact',
            index=Index(fields=['institution_id', 'patient_id']),
        ),
    ]
