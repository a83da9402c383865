"""PostgreSQL appends audit events in one statement: ``audit_append(institution, rows)``.

The writer used to lock the chain head, insert the events and move the head: three round trips, each
holding the lock that every write of the institution queues on. The function does the same work inside
the server. The hash is the one ``audit.chain.row_hash`` computes: the writer sends each event's
canonical JSON body in two pieces around the sequence number and the previous hash (the only parts the
database knows first), and the function joins them and takes SHA-256 of the UTF-8 text. Events are
inserted with ``jsonb_populate_record``, so every column keeps its type and the append-only triggers
apply as before. SECURITY INVOKER (the default): the service role needs nothing beyond what it has.
SQLite keeps the writer's own three statements (one connection: there is no round trip to save).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append(chain uuid, events jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
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
    INSERT INTO audit_event SELECT (jsonb_populate_record(NULL::audit_event, (item->'row')
      || jsonb_build_object('seq', head_seq, 'prev_hash', head_hash, 'hash', new_hash))).*;
    head_hash := new_hash;
  END LOOP;
  UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  RETURN head_seq;
END $$
"""


async def create_function(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0020_portal")]
    operations = [ops.RunPython(create_function)]
