"""The disclosures' index covers a partner's allowed reads only (issue 17).

``audit_patient_index`` had an index on ``(institution_id, actor_kind, action, id)`` for the disclosures listing
(a partner's allowed reads of patients, newest first). Every row of the per-patient index paid for it, and most
rows are staff reads: a page of 50 patient files (``make bench``'s W1) added 50 of its tuples. It is replaced by a
partial index on ``(institution_id, id)`` holding the rows the disclosures listing reads, and nothing else.

Upgrading builds the new index with one scan of ``audit_patient_index`` under a lock that appends wait for (as
any index creation): on a large trail run it in a quiet hour (docs/operations.md).
"""

from tortoise import migrations
from tortoise.indexes import PartialIndex
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0031_audit_seal_idle_inbox")]

    operations = [
        ops.RemoveIndex(model_name="AuditPatientIndex", name=None,
                        fields=["institution_id", "actor_kind", "action", "id"]),
        ops.AddIndex(
            model_name="AuditPatientIndex",
            index=PartialIndex(fields=["institution_id", "id"], name="audit_patient_index_disclosures",
                               condition={"actor_kind": "partner", "action": "read", "outcome": "allowed"}),
        ),
    ]
