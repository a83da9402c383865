"""``audit_seal`` with less work when nothing waits in the inbox (issue 17), which is every append but those that
follow a busy head.

0027's ``audit_seal`` locked the chain head, then looked for waiting events with an ``array_agg`` over the inbox,
then read the head again to return its sequence number, on every call: every write's append and every reader's
seal. Now the head is locked and read in one statement, and the inbox is only walked when ``EXISTS`` finds a
waiting event; only that path reads the head again (linking moved it). Measured with ``pgbench`` on the statement
``make bench``'s W3 sends (a contact's insert and its two audit events, commit included), alternating with 0027's
function on copies of one database: 16-18 µs less of PostgreSQL's CPU per call, of about 394 (bench/README.md,
thirteenth session).

Nothing else changes: the same lock (waiting, or only when free), the same answer (the head's sequence number,
or NULL when ``wait`` is false and another transaction holds the head; as before, ``wait`` false still waits
while another transaction is creating a missing head), the same creation of a missing head, the same
oldest-first chunks of 500 and the same setting aside of a row that cannot be linked. The function keeps its
name and arguments, which ``audit_inbox_guard`` and ``audit_inbox_rejected_guard`` read off the call stack (only
it may delete from the inbox or add set-aside rows), and its SECURITY DEFINER. In READ COMMITTED a row locked
with ``FOR UPDATE`` is returned as its latest committed version (or the caller's own, uncommitted), so the
sequence number read with the lock is the one the lock holds; in REPEATABLE READ a head another transaction moved
fails with 40001, as it did. A review ran 45 scenarios on 0027's and this function side by side (empty and
waiting inboxes across chunks, malformed rows, a missing head, a busy head with and without waiting against
concurrent appends, seals, posts and rollbacks): the same answers, errors and rows. SQLite has no such function.
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
    dependencies = [("careloop", "0030_audit_link_columns")]

    operations = [
        ops.RunPython(seal_on_postgres),
    ]
