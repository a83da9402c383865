"""An audit event appended again is written once: ``audit_link`` skips an event already on the chain.

A connection lost after the server committed an append but before the client read its answer (a failover, a
dropped connection) fails the append on the client, and whoever tries it again (the group commit writes a failed
batch again one request at a time) sent the same events a second time: each was then twice on the trail. The writer
now gives each event its id once (``AuditRecord.id``, before the first attempt), and ``audit_link`` (which
``audit_append`` and ``audit_seal`` link every event with) inserts each with ``ON CONFLICT (id) DO NOTHING``: an
event whose id is on the chain already is skipped, without taking a sequence number or moving the hash, if it is
the same event: of the same chain, its body hashed at the stored event's place giving the stored hash, the same
MAC and the same patients. Another event under that id (a row posted to the inbox by hand, a copy with other
patients) fails as before with SQLSTATE 23505 (unique_violation), and ``audit_seal`` sets it aside as evidence. An
event posted to the inbox twice (the head busy on both attempts) waits there twice and is linked once: the second
copy is skipped when its turn comes.

The cost: the primary key's probe that the insert made anyway, now before the insert (an index lookup by id, no
scan); only a skipped event reads its stored row and index rows (by key). Nothing else changes: the same hashes
from the same body pieces, the same rows and index rows, the same lock, the head moved only when an event was
linked. Existing trails are not touched (no column, hash or MAC changes) and verify as before. SQLite has no such
function: its writer skips such events itself (``audit.writer``).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

LINK = """
CREATE OR REPLACE FUNCTION audit_link(chain uuid, items jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
  r jsonb;
  patients jsonb;
  head_seq bigint;
  head_hash text;
  new_hash text;
  linked integer := 0;
BEGIN
  SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain;
  FOR item IN SELECT value FROM jsonb_array_elements(items) LOOP
    new_hash := encode(sha256(convert_to(
      (item->>'body_head') || '"' || (head_seq + 1) || '"' || (item->>'body_middle') || '"' || head_hash || '"]',
      'UTF8')), 'hex');
    r := item->'row';
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' AND r IS NOT NULL THEN  -- as jsonb_populate_record refused it
      RAISE EXCEPTION 'audit_link: an event''s row must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- A node still on 0021's code during a rolling upgrade sends no patients: its event's patient_id is the one.
    patients := coalesce(item->'patients', CASE WHEN r->>'patient_id' IS NULL THEN '[]'::jsonb
                                                ELSE jsonb_build_array(r->>'patient_id') END);
    INSERT INTO audit_event (id, institution_id, seq, occurred_at, actor_kind, actor_id, token_id, action,
                             resource_type, resource_id, patient_id, field_classes, fields_read, outcome, reason,
                             policy_rule, request_id, client_address, user_agent, subjects, mac, prev_hash, hash)
    VALUES ((r->>'id')::uuid, chain, head_seq + 1, (r->>'occurred_at')::timestamptz,
            r->>'actor_kind', (r->>'actor_id')::uuid, (r->>'token_id')::uuid, r->>'action', r->>'resource_type',
            (r->>'resource_id')::uuid, (r->>'patient_id')::uuid, r->>'field_classes', r->>'fields_read',
            r->>'outcome', r->>'reason', r->>'policy_rule', r->>'request_id', r->>'client_address',
            r->>'user_agent', coalesce(r->>'subjects', ''), coalesce(item->>'mac', ''), head_hash, new_hash)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN  -- its id is taken: the same event appended again (its answer was lost) is skipped
      IF NOT EXISTS (
          SELECT 1 FROM audit_event e
          WHERE e.id = (r->>'id')::uuid AND e.institution_id = chain AND e.mac = coalesce(item->>'mac', '')
            AND e.hash = encode(sha256(convert_to((item->>'body_head') || '"' || e.seq || '"' || (item->>'body_middle')
                                                  || '"' || e.prev_hash || '"]', 'UTF8')), 'hex')
            AND ARRAY(SELECT i.patient_id FROM audit_patient_index i WHERE i.institution_id = chain AND i.seq = e.seq
                      ORDER BY 1)
                = ARRAY(SELECT DISTINCT patient::uuid FROM jsonb_array_elements_text(patients) AS patient ORDER BY 1))
      THEN
        RAISE EXCEPTION 'audit_link: another event holds this event''s id' USING ERRCODE = '23505';
      END IF;
      CONTINUE;
    END IF;
    head_seq := head_seq + 1;
    INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action,
                                     outcome)
      SELECT chain, head_seq, patient::uuid, (r->>'occurred_at')::timestamptz, r->>'actor_kind',
             (r->>'actor_id')::uuid, r->>'action', r->>'outcome'
      FROM jsonb_array_elements_text(patients) AS patient;
    head_hash := new_hash;
    linked := linked + 1;
  END LOOP;
  IF linked > 0 THEN
    UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  END IF;
  RETURN head_seq;
END $$
"""


async def link_once_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(LINK)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0050_campaign_approval")]

    operations = [
        ops.RunPython(link_once_on_postgres),
    ]
