"""One audit event for many alike reads, and a per-patient index of the trail (issue 17, item 2).

A page of 50 patients used to append 50 hashed events. Now the alike reads of a request share one event,
whose ``subjects`` lists each record read and its patient (hashed when not empty, so every existing row keeps
its hash and every chain verifies unchanged). Who read which patient's file is answered by
``audit_patient_index``: one row per event and patient, written in the append itself (``audit_append`` below,
the SQLite writer), backfilled here from every existing event's ``patient_id``, append-only like the trail (a
row may be deleted only after its event, by an archive run), and held against the events by ``verify``.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# 0021's function, which now also writes each event's index rows ("patients" of each event).
FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append(chain uuid, events jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
  patients jsonb;
  head_seq bigint;
  head_hash text;
  new_hash text;
BEGIN
  SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES (chain, 0, repeat('0', 64))
      ON CONFLICT DO NOTHING;
    SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  END IF;
  FOR item IN SELECT value FROM jsonb_array_elements(events) LOOP
    head_seq := head_seq + 1;
    new_hash := encode(sha256(convert_to(
      (item->>'body_head') || '"' || head_seq || '"' || (item->>'body_middle') || '"' || head_hash || '"]',
      'UTF8')), 'hex');
    -- A node still on 0021's code during a rolling upgrade sends no subjects (hashed only when not empty, so its
    -- hash stays right) and no patients: its event's patient_id is then the one patient to index.
    patients := coalesce(item->'patients', CASE WHEN item->'row'->>'patient_id' IS NULL THEN '[]'::jsonb
                                                ELSE jsonb_build_array(item->'row'->>'patient_id') END);
    INSERT INTO audit_event SELECT (jsonb_populate_record(NULL::audit_event, (item->'row')
      || jsonb_build_object('seq', head_seq, 'prev_hash', head_hash, 'hash', new_hash,
                            'subjects', coalesce(item->'row'->>'subjects', '')))).*;
    IF jsonb_array_length(patients) > 0 THEN
      INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action,
                                       outcome)
        SELECT chain, head_seq, patient::uuid, (item->'row'->>'occurred_at')::timestamptz,
               item->'row'->>'actor_kind', (item->'row'->>'actor_id')::uuid, item->'row'->>'action',
               item->'row'->>'outcome'
        FROM jsonb_array_elements_text(patients) AS patient;
    END IF;
    head_hash := new_hash;
  END LOOP;
  UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  RETURN head_seq;
END $$
"""

BACKFILL = """
INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action, outcome)
SELECT institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action, outcome
FROM audit_event WHERE patient_id IS NOT NULL ORDER BY institution_id, seq
"""

# A row may go only once its event is gone and an archive anchor covers it (``careloop audit archive``).
POSTGRES = [
    """CREATE OR REPLACE FUNCTION audit_patient_index_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE'
            AND NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.institution_id = OLD.institution_id AND e.seq = OLD.seq)
            AND EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
         THEN RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit_patient_index is append-only';
       END $$""",
    "DROP TRIGGER IF EXISTS audit_patient_index_no_update_delete ON audit_patient_index",
    """CREATE TRIGGER audit_patient_index_no_update_delete BEFORE UPDATE OR DELETE ON audit_patient_index
       FOR EACH ROW EXECUTE FUNCTION audit_patient_index_guard()""",
    """CREATE OR REPLACE FUNCTION audit_patient_index_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_patient_index is append-only'; END $$""",
    "DROP TRIGGER IF EXISTS audit_patient_index_no_truncate ON audit_patient_index",
    """CREATE TRIGGER audit_patient_index_no_truncate BEFORE TRUNCATE ON audit_patient_index
       FOR EACH STATEMENT EXECUTE FUNCTION audit_patient_index_refuse()""",
    FUNCTION,
]
SQLITE = [
    "DROP TRIGGER IF EXISTS audit_patient_index_no_update",
    """CREATE TRIGGER audit_patient_index_no_update BEFORE UPDATE ON audit_patient_index
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END""",
    "DROP TRIGGER IF EXISTS audit_patient_index_no_delete",
    """CREATE TRIGGER audit_patient_index_no_delete BEFORE DELETE ON audit_patient_index
       WHEN EXISTS (SELECT 1 FROM audit_event e WHERE e.institution_id = OLD.institution_id AND e.seq = OLD.seq)
         OR NOT EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END""",
    # INSERT OR REPLACE deletes a clashing row without firing DELETE triggers.
    "DROP TRIGGER IF EXISTS audit_patient_index_no_replace",
    """CREATE TRIGGER audit_patient_index_no_replace BEFORE INSERT ON audit_patient_index
       WHEN EXISTS (SELECT 1 FROM audit_patient_index WHERE id = NEW.id
                    OR (institution_id = NEW.institution_id AND seq = NEW.seq AND patient_id = NEW.patient_id))
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END""",
]


async def backfill_and_guard(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    await client.execute_script(BACKFILL)
    for statement in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0021_audit_append")]

    operations = [
        ops.CreateModel(
            name="AuditPatientIndex",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("institution_id", fields.UUIDField()),
                ("seq", fields.BigIntField()),
                ("patient_id", fields.UUIDField()),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                ("action", fields.CharField(max_length=32)),
                ("outcome", fields.CharField(max_length=16)),
            ],
            options={"table": "audit_patient_index", "app": "careloop",
                     "unique_together": (("institution_id", "seq", "patient_id"),),
                     "indexes": [Index(fields=["institution_id", "patient_id", "seq"]),
                                 Index(fields=["institution_id", "actor_kind", "action", "id"]),
                                 Index(fields=["institution_id", "occurred_at"])],
                     "pk_attr": "id",
                     "table_description": "Which events are about which patient: one row per event and patient."},
            bases=["Model"],
        ),
        ops.AddField(model_name="AuditEvent", name="subjects", field=fields.TextField(default="", db_default="")),
        ops.RunPython(backfill_and_guard),
    ]
