"""The audit append with less work in PostgreSQL (issue 17): ``audit_link`` inserts each event's columns directly.

0027's ``audit_link`` (0026's, with the chain's institution taken over the row's) gathered the events into an
array of JSON rows (each the writer's row with the sequence number, the hashes, the MAC, the subjects and the
patients added), then inserted them through ``jsonb_populate_record`` and read the index rows back out of the same
array. Measured on PostgreSQL 15 with one event per call (the common case: a request's write, or its reads as one
event), all PostgreSQL processes' CPU per call without the commit: 0.26 ms; the same events inserted column by
column from the writer's row: 0.16-0.19 ms (two events: 0.33 -> 0.23-0.29 ms). A whole append with its commit
cost about 0.41 ms, more than everything else W3 asks of PostgreSQL.

Nothing else changes: the same hashes (computed from the same body pieces, in the same order), the same rows (the
institution is the chain's, whatever the row names, as 0027 made it), the same index rows, the same lock, the head
updated only when an event was linked, the same fallback for a writer that sends no patients (a node on 0021's
code during a rolling upgrade). The columns are named here: a column added to ``audit_event`` must be added to
this function too, or its events would be stored without it, and ``careloop audit verify`` (which hashes the
stored row) would report them. SQLite has no such function.

A review compared the two functions on 481 inputs (every column missing, null, empty, of another JSON type, too
long; patients missing, duplicated, malformed; several events; an empty batch): the same rows, index rows and
head for every input 0027 accepted, and a refusal for every input it refused, with the same SQLSTATE for a row
that is not a JSON object (22023, which ``audit_inbox_rejected`` keeps). Two differences remain, both on refused
input: in a batch with two bad events the first one's error is reported (``audit_seal`` then retries one by one,
where both agree), and a refused call may have used numbers of the index rows' id sequence (gaps in an id nothing
reads but the order).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

LINK = """
CREATE OR REPLACE FUNCTION audit_link(chain uuid, items jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
  r jsonb;
  head_seq bigint;
  head_hash text;
  new_hash text;
  linked integer := 0;
BEGIN
  SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain;
  FOR item IN SELECT value FROM jsonb_array_elements(items) LOOP
    head_seq := head_seq + 1;
    new_hash := encode(sha256(convert_to(
      (item->>'body_head') || '"' || head_seq || '"' || (item->>'body_middle') || '"' || head_hash || '"]',
      'UTF8')), 'hex');
    r := item->'row';
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' AND r IS NOT NULL THEN  -- as jsonb_populate_record refused it
      RAISE EXCEPTION 'audit_link: an event''s row must be a JSON object' USING ERRCODE = '22023';
    END IF;
    INSERT INTO audit_event (id, institution_id, seq, occurred_at, actor_kind, actor_id, token_id, action,
                             resource_type, resource_id, patient_id, field_classes, fields_read, outcome, reason,
                             policy_rule, request_id, client_address, user_agent, subjects, mac, prev_hash, hash)
    VALUES ((r->>'id')::uuid, chain, head_seq, (r->>'occurred_at')::timestamptz,
            r->>'actor_kind', (r->>'actor_id')::uuid, (r->>'token_id')::uuid, r->>'action', r->>'resource_type',
            (r->>'resource_id')::uuid, (r->>'patient_id')::uuid, r->>'field_classes', r->>'fields_read',
            r->>'outcome', r->>'reason', r->>'policy_rule', r->>'request_id', r->>'client_address',
            r->>'user_agent', coalesce(r->>'subjects', ''), coalesce(item->>'mac', ''), head_hash, new_hash);
    -- A node still on 0021's code during a rolling upgrade sends no patients: its event's patient_id is the one.
    INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action,
                                     outcome)
      SELECT chain, head_seq, patient::uuid, (r->>'occurred_at')::timestamptz, r->>'actor_kind',
             (r->>'actor_id')::uuid, r->>'action', r->>'outcome'
      FROM jsonb_array_elements_text(coalesce(item->'patients', CASE WHEN r->>'patient_id' IS NULL THEN '[]'::jsonb
                                                                     ELSE jsonb_build_array(r->>'patient_id') END))
           AS patient;
    head_hash := new_hash;
    linked := linked + 1;
  END LOOP;
  IF linked > 0 THEN
    UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  END IF;
  RETURN head_seq;
END $$
"""


async def link_columns_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(LINK)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0029_principal_time_zone")]

    operations = [
        ops.RunPython(link_columns_on_postgres),
    ]
