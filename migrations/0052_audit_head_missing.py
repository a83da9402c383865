"""A chain whose head row is missing is refused, not started again: ``audit_seal`` creates a head only for a chain
that has not begun.

``audit_seal`` (which ``audit_append`` calls first, and readers before they read) created a missing head at seq 0
with the genesis hash, for a new institution's first append. It did so too for a chain whose head row had been
deleted (by someone with the database owner's rights, 0014's triggers dropped): the next append linked at seq 1 from
the genesis hash, which the unique (institution_id, seq) key refused while seq 1 is held (the write failed with
SQLSTATE 23505, unexplained), and which went through after an archive run had taken seq 1 to a file: a second chain,
forked silently, and the deletion no longer showed. Now a missing head is created only when the chain has no event,
no archive anchor and no signed checkpoint; otherwise the function raises SQLSTATE CL001 (careloop's own class), which
``audit.writer`` answers as ``ChainHeadMissing``: the statement fails, and with it the write it records (one
statement, or the caller's transaction). ``careloop audit verify`` names such a chain HEAD_MISSING.

Nothing else changes (0031's function otherwise): the same lock, the same answers, the same chunks and setting aside.
The three lookups run only when no head is found (a chain's first append, or a damaged chain), by their indexes. Under
READ COMMITTED an append racing a chain's first one sees neither its head nor its events, waits on the head's insert
as before, and then finds the head. SQLite has no such function: ``audit.writer`` checks the same there.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SEAL = """
CREATE OR REPLACE FUNCTION audit_seal(chain uuid, wait boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  head_seq bigint;
  items jsonb;
  taken bigint[];
  waiting record;
BEGIN
  IF wait THEN
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  ELSE
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE SKIP LOCKED;
  END IF;
  IF NOT FOUND THEN
    IF NOT wait AND EXISTS (SELECT 1 FROM audit_chain_head WHERE institution_id = chain) THEN
      RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_event WHERE institution_id = chain)
       OR EXISTS (SELECT 1 FROM audit_archive WHERE institution_id = chain)
       OR EXISTS (SELECT 1 FROM audit_checkpoint WHERE institution_id = chain) THEN
      RAISE EXCEPTION 'audit_seal: the chain head is missing, though the chain has begun' USING ERRCODE = 'CL001';
    END IF;
    INSERT INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES (chain, 0, repeat('0', 64))
      ON CONFLICT DO NOTHING;
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM audit_inbox WHERE institution_id = chain) THEN
    RETURN head_seq;
  END IF;
  LOOP  -- the oldest posts first, a chunk at a time (a backlog must not exceed one jsonb value's limits)
    SELECT array_agg(id ORDER BY id) INTO taken
      FROM (SELECT id FROM audit_inbox WHERE institution_id = chain ORDER BY id LIMIT 500) AS oldest;
    EXIT WHEN taken IS NULL;
    BEGIN
      SELECT jsonb_agg(event || jsonb_build_object('mac', mac) ORDER BY id) INTO items
        FROM audit_inbox WHERE id = ANY(taken);
      PERFORM audit_link(chain, items);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      FOR waiting IN SELECT * FROM audit_inbox WHERE id = ANY(taken) ORDER BY id LOOP
        BEGIN
          PERFORM audit_link(chain, jsonb_build_array(waiting.event || jsonb_build_object('mac', waiting.mac)));
        EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
          INSERT INTO audit_inbox_rejected (id, institution_id, posted_at, event, mac, sqlstate)
            VALUES (waiting.id, chain, waiting.created_at, waiting.event, waiting.mac, SQLSTATE);
        END;
      END LOOP;
    END;
    DELETE FROM audit_inbox WHERE id = ANY(taken);
  END LOOP;
  SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain;
  RETURN head_seq;
END $$
"""


async def seal_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(SEAL)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0051_audit_append_once")]

    operations = [
        ops.RunPython(seal_on_postgres),
    ]
