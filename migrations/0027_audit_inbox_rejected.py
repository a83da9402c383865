"""A malformed inbox row no longer stops its chain (issue 17, the audit inbox's last open point).

The service role may insert into ``audit_inbox`` (writers post there when the chain head is busy). A row the writer
never makes (no body pieces, a row that is not an object, a patient that is not a UUID) made ``audit_link`` fail
inside ``audit_seal``, and with it every later seal of the institution: each write (its append seals first), each
reader of the trail, the sealing loop. One INSERT by whoever holds the service's database password stopped an
institution's writes.

``audit_seal`` now links the waiting events as before (500 at a time); only if that fails with a data error
(SQLSTATE class 22, 23 or 54: what a malformed or oversized row raises) does it link them one by one, and a row
that cannot be linked is moved to
``audit_inbox_rejected`` (append-only, written only by ``audit_seal``) with its SQLSTATE, and leaves the inbox.
Other errors (a full disk, a cancelled statement) still fail the seal, so no well-formed event is ever set aside
for a fault of the server. ``careloop audit verify`` names every rejected row: the writer never makes one, so each
is evidence that someone wrote to the inbox by hand. ``audit_link`` also takes the chain's institution from its
argument, not from the row, so a posted row cannot place an event in another institution's table. An inbox row's id
and time are set by the server (a trigger), so a row posted by hand cannot take a place before an event already
waiting, or reuse an id.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

REJECTED = [
    """CREATE TABLE IF NOT EXISTS audit_inbox_rejected (
         id bigint PRIMARY KEY,
         institution_id uuid NOT NULL,
         posted_at timestamptz NOT NULL,
         rejected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
         event jsonb NOT NULL,
         mac varchar(64) NOT NULL,
         sqlstate varchar(5) NOT NULL
       )""",
    "CREATE INDEX IF NOT EXISTS audit_inbox_rejected_chain ON audit_inbox_rejected (institution_id, id)",
    # Rows come only from audit_seal (the call stack, which no caller can set, says so), and never leave.
    """CREATE OR REPLACE FUNCTION audit_inbox_rejected_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE
         stack text;
       BEGIN
         IF TG_OP = 'INSERT' THEN
           GET DIAGNOSTICS stack = PG_CONTEXT;
           IF stack LIKE '%function audit_seal(uuid,boolean) %' THEN RETURN NEW; END IF;
         END IF;
         RAISE EXCEPTION 'audit_inbox_rejected: rows are set aside by audit_seal alone, and kept';
       END $$""",
    "DROP TRIGGER IF EXISTS audit_inbox_rejected_no_update_delete ON audit_inbox_rejected",
    """CREATE TRIGGER audit_inbox_rejected_no_update_delete BEFORE INSERT OR UPDATE OR DELETE ON audit_inbox_rejected
       FOR EACH ROW EXECUTE FUNCTION audit_inbox_rejected_guard()""",
    # An inbox row's place and time are the server's: a row posted by hand cannot take an earlier place than an
    # event already waiting (and so be linked before it), nor reuse an id.
    """CREATE OR REPLACE FUNCTION audit_inbox_place() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.id := nextval(pg_get_serial_sequence('audit_inbox', 'id'));
         NEW.created_at := clock_timestamp();
         RETURN NEW;
       END $$""",
    "DROP TRIGGER IF EXISTS audit_inbox_place ON audit_inbox",
    """CREATE TRIGGER audit_inbox_place BEFORE INSERT ON audit_inbox
       FOR EACH ROW EXECUTE FUNCTION audit_inbox_place()""",
    "DROP TRIGGER IF EXISTS audit_inbox_rejected_no_truncate ON audit_inbox_rejected",
    """CREATE TRIGGER audit_inbox_rejected_no_truncate BEFORE TRUNCATE ON audit_inbox_rejected
       FOR EACH STATEMENT EXECUTE FUNCTION audit_inbox_rejected_guard()""",
]

# 0026's audit_link, with the institution taken from the chain being linked.
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
      'institution_id', chain, 'seq', head_seq, 'prev_hash', head_hash, 'hash', new_hash,
      'mac', coalesce(item->>'mac', ''), 'subjects', coalesce(item->'row'->>'subjects', ''),
      'patients', coalesce(item->'patients', CASE WHEN item->'row'->>'patient_id' IS NULL THEN '[]'::jsonb
                                                  ELSE jsonb_build_array(item->'row'->>'patient_id') END)));
    head_hash := new_hash;
  END LOOP;
  IF cardinality(linked) > 0 THEN
    INSERT INTO audit_event SELECT record.*
      FROM unnest(linked) AS event, LATERAL jsonb_populate_record(NULL::audit_event, event) AS record;
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

# 0023's audit_seal; when the waiting events cannot be linked together, each that cannot be linked on its own is
# set aside (each EXCEPTION block is a subtransaction: paid only on this path, never by a write's own events).
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


async def rejected_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for statement in [*REJECTED, LINK, SEAL]:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0026_audit_link_once")]

    operations = [
        ops.RunPython(rejected_on_postgres),
    ]
