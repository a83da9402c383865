"""The policy events are indexed on their own, so a start reads each institution's last one directly.

At every start each worker compares the policy it loaded with the last one recorded on every institution's trail
(``resolvers.policy``). That read walked each chain backward from its head to its last policy event, and took two
statements per institution: seconds for every worker's start with thousands of institutions, and a long walk on a
trail with many events since the last policy change. A partial index on ``(institution_id, seq)`` holding the policy
events alone serves one statement for all institutions; other appends do not write to it.

Upgrading builds the index with one scan of ``audit_event`` under a lock that appends wait for (as any index
creation): on a large trail run it in a quiet hour (docs/operations.md).
"""

from tortoise import migrations
from tortoise.indexes import PartialIndex
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0039_list_indexes")]

    operations = [
        ops.AddIndex(
            model_name="AuditEvent",
            index=PartialIndex(fields=["institution_id", "seq"], name="audit_event_policy",
                               condition={"resource_type": "policy"}),
        ),
    ]
