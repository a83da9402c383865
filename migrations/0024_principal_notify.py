"""The database announces every change to who is signed in as what (issue 17, item 3: the principal cache).

Each process may keep signed-in staff and patients for a few seconds (core/principal_cache.py), but only while
it listens on the ``careloop_principals`` channel (app/principals.py). These triggers ``pg_notify`` that channel
whenever a row a principal is read from changes, whichever code path (or hand-written SQL) changed it:

- ``session``, ``patient_session``: revoked, expiry moved, token or owner changed, deleted;
- ``staff``: activity, e-mail, name or institution changed, deleted;
- ``role_assignment``, ``department_membership``: any row inserted, updated or deleted;
- ``patient_account``: activity, e-mail, file or institution changed, deleted.

The payload is the account's id (the staff member's or the patient account's), old and new when it moved; a
TRUNCATE of any of these tables says ``*`` (everyone). PostgreSQL delivers notifications at commit, once per
distinct payload and transaction, and never those of a transaction that rolled back. SQLite keeps no cache and
needs no trigger.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

NOTIFY = """
CREATE OR REPLACE FUNCTION careloop_principal_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  before_id text;
  after_id text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('careloop_principals', '*');
    RETURN NULL;
  END IF;
  -- TG_ARGV[0] names the column holding the account's id
  IF TG_OP <> 'INSERT' THEN
    before_id := to_jsonb(OLD) ->> TG_ARGV[0];
    PERFORM pg_notify('careloop_principals', coalesce(before_id, '*'));
  END IF;
  IF TG_OP <> 'DELETE' THEN
    after_id := to_jsonb(NEW) ->> TG_ARGV[0];
    IF after_id IS DISTINCT FROM before_id THEN
      PERFORM pg_notify('careloop_principals', coalesce(after_id, '*'));
    END IF;
  END IF;
  RETURN NULL;
END $$
"""

# table -> (the column naming the account, the columns whose change matters; None: every insert, update, delete)
WATCHED: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "session": ("staff_id", ("revoked_at", "expires_at", "token_hash", "staff_id", "institution_id")),
    "patient_session": ("account_id", ("revoked_at", "expires_at", "token_hash", "account_id", "institution_id")),
    "staff": ("id", ("is_active", "email", "name", "institution_id")),
    "role_assignment": ("staff_id", None),
    "department_membership": ("staff_id", None),
    "patient_account": ("id", ("is_active", "email", "patient_id", "institution_id")),
}


def triggers(table: str, account: str, columns: tuple[str, ...] | None) -> list[str]:
    rows = f"careloop_principals_{table}"
    statements = [f"DROP TRIGGER IF EXISTS {rows} ON {table}",
                  f"DROP TRIGGER IF EXISTS {rows}_truncate ON {table}"]
    if columns is None:
        statements.append(f"""CREATE TRIGGER {rows} AFTER INSERT OR UPDATE OR DELETE ON {table}
                              FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('{account}')""")
    else:
        changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in columns)
        statements += [f"""CREATE TRIGGER {rows} AFTER UPDATE ON {table} FOR EACH ROW WHEN ({changed})
                           EXECUTE FUNCTION careloop_principal_changed('{account}')""",
                       f"""CREATE TRIGGER {rows}_delete AFTER DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('{account}')"""]
        statements.insert(0, f"DROP TRIGGER IF EXISTS {rows}_delete ON {table}")
    statements.append(f"""CREATE TRIGGER {rows}_truncate AFTER TRUNCATE ON {table}
                          FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('{account}')""")
    return statements


async def notify_on_postgres(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script(NOTIFY)
    for table, (account, columns) in WATCHED.items():
        for statement in triggers(table, account, columns):
            await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("careloop", "0023_audit_inbox")]

    operations = [
        ops.RunPython(notify_on_postgres),
    ]
