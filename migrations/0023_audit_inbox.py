"""An audit chain that is not one lock (issue 17, item 5): writers post events to an inbox, sealing links them.

Every append used to lock its institution's chain head until COMMIT, so all writes of an institution took turns on
one row. On PostgreSQL ``audit_append`` now takes the head only if it is free (SKIP LOCKED): then it links every
event waiting in ``audit_inbox`` and its own (``audit_seal``, ``audit_link``: gap-free sequence numbers and the
same hashes as before, events and index rows inserted set-wise); if another transaction holds the head, it posts
its events to the inbox and goes on without waiting (any number of writers at once). Waiting events are linked by
the next seal: the next writer, a reader (readers seal first, waiting for the lock, so they see every committed
event) or the service's sealing loop (``audit.writer.seal_pending``, about once a second). An event in the inbox is
committed with its write, so a crash before sealing loses nothing: the next seal takes it.

The inbox is guarded like the trail: no UPDATE, no TRUNCATE, and DELETE only from inside ``audit_seal`` (the
trigger reads the call stack; docs/postgres-app-role.sql also revokes DELETE from the service role, which
reaches it only through the function, SECURITY DEFINER). Each event carries a MAC (``audit_event.mac``,
HMAC under a key derived from the master key) that ``verify`` checks on the trail and in the inbox: a row
posted by someone without the key is found. SQLite keeps its one writer and its three statements.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

INBOX = """
CREATE TABLE IF NOT EXISTS audit_inbox (
  id bigserial PRIMARY KEY,
  institution_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  event jsonb NOT NULL,
  mac varchar(64) NOT NULL DEFAULT ''
)
"""

GUARD = [
    # The call stack, which no caller can set, says whether audit_seal is deleting.
    """CREATE OR REPLACE FUNCTION audit_inbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE
         stack text;
       BEGIN
         IF TG_OP = 'DELETE' THEN
           GET DIAGNOSTICS stack = PG_CONTEXT;
           IF stack LIKE '%function audit_seal(uuid,boolean) %' THEN RETURN OLD; END IF;
         END IF;
         RAISE EXCEPTION 'audit_inbox: events leave only by being sealed into the chain';
       END $$""",
    "DROP TRIGGER IF EXISTS audit_inbox_no_update_delete ON audit_inbox",
    """CREATE TRIGGER audit_inbox_no_update_delete BEFORE UPDATE OR DELETE ON audit_inbox
       FOR EACH ROW EXECUTE FUNCTION audit_inbox_guard()""",
    "DROP TRIGGER IF EXISTS audit_inbox_no_truncate ON audit_inbox",
    """CREATE TRIGGER audit_inbox_no_truncate BEFORE TRUNCATE ON audit_inbox
       FOR EACH STATEMENT EXECUTE FUNCTION audit_inbox_guard()""",
]

# Links events to the chain whose head the caller holds locked, as 0022's audit_append did: each hash from the body
# pieces the writer sent, around the sequence number and previous hash; then the events and their index rows in
# two set-based inserts (the hash chain is the only sequential part). Items: {body_head, body_middle, row,
# patients, mac}.
LINK = """
CREATE OR REPLACE FUNCTION audit_link(chain uuid, items jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  item jsonb;
  head_seq bigint;
  head_hash text;
  new_hash text;
  linked jsonb[] := '{}';
BEGIN
  SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain;
  FOR item IN SELECT value FROM jsonb_array_elements(items) LOOP
    head_seq := head_seq + 1;
    new_hash := encode(sha256(convert_to(
      (item->>'body_head') || '"' || head_seq || '"' || (item->>'body_middle') || '"' || head_hash || '"]',
      'UTF8')), 'hex');
    -- A node still on 0021's code during a rolling upgrade sends no patients: its event's patient_id is the one.
    linked := linked || ((item->'row') || jsonb_build_object(
      'seq', head_seq, 'prev_hash', head_hash, 'hash', new_hash, 'mac', coalesce(item->>'mac', ''),
      'subjects', coalesce(item->'row'->>'subjects', ''),
      'patients', coalesce(item->'patients', CASE WHEN item->'row'->>'patient_id' IS NULL THEN '[]'::jsonb
                                                  ELSE jsonb_build_array(item->'row'->>'patient_id') END)));
    head_hash := new_hash;
  END LOOP;
  IF cardinality(linked) > 0 THEN
    INSERT INTO audit_event SELECT (jsonb_populate_record(NULL::audit_event, event)).* FROM unnest(linked) AS event;
    INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action,
                                     outcome)
      SELECT chain, (event->>'seq')::bigint, patient::uuid, (event->>'occurred_at')::timestamptz,
             event->>'actor_kind', (event->>'actor_id')::uuid, event->>'action', event->>'outcome'
      FROM unnest(linked) AS event, jsonb_array_elements_text(event->'patients') AS patient;
    UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  END IF;
  RETURN head_seq;
END $$
"""

# Takes the chain's head (waiting for it, or only if it is free) and links every event waiting in the inbox,
# oldest post first; the lock is kept to the end of the caller's transaction. Returns the head's sequence
# number, or NULL when ``wait`` is false and another transaction holds the head (it, or the seal after it,
# takes the waiting events).
SEAL = """
CREATE OR REPLACE FUNCTION audit_seal(chain uuid, wait boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  head_seq bigint;
  items jsonb;
  taken bigint[];
BEGIN
  IF wait THEN
    PERFORM 1 FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  ELSE
    PERFORM 1 FROM audit_chain_head WHERE institution_id = chain FOR UPDATE SKIP LOCKED;
  END IF;
  IF NOT FOUND THEN
    IF NOT wait AND EXISTS (SELECT 1 FROM audit_chain_head WHERE institution_id = chain) THEN
      RETURN NULL;
    END IF;
    INSERT INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES (chain, 0, repeat('0', 64))
      ON CONFLICT DO NOTHING;
    PERFORM 1 FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  END IF;
  SELECT jsonb_agg(event || jsonb_build_object('mac', mac) ORDER BY id), array_agg(id)
    INTO items, taken FROM audit_inbox WHERE institution_id = chain;
  IF taken IS NULL THEN
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain;
    RETURN head_seq;
  END IF;
  head_seq := audit_link(chain, items);
  DELETE FROM audit_inbox WHERE id = ANY(taken);
  RETURN head_seq;
END $$
"""

# The writers' entry point keeps its name and arguments (a node on 0022's code still appends through it). With the
# head free it links what waits and then its own events, as before; with the head busy it posts them and goes on.
APPEND = """
CREATE OR REPLACE FUNCTION audit_append(chain uuid, events jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF audit_seal(chain, false) IS NULL THEN
    INSERT INTO audit_inbox (institution_id, event, mac)
      SELECT chain, e.item - 'mac', coalesce(e.item->>'mac', '')
      FROM jsonb_array_elements(events) WITH ORDINALITY AS e(item, n) ORDER BY e.n;
    RETURN NULL;
  END IF;
  RETURN audit_link(chain, events);
END $$
"""


async def inbox_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for statement in [INBOX, "CREATE INDEX IF NOT EXISTS audit_inbox_chain ON audit_inbox (institution_id, id)",
                      *GUARD, LINK, SEAL, APPEND]:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0022_audit_subjects")]

    operations = [
        ops.AddField(model_name="AuditEvent", name="mac",
                     field=fields.CharField(default="", db_default="", max_length=64)),
        ops.RunPython(inbox_on_postgres),
        # Unused since 0022 (a patient's events are found through audit_patient_index), and paid for by every append.
        ops.RemoveIndex(model_name="AuditEvent", name=None, fields=["institution_id", "patient_id"]),
    ]
