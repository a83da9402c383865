"""One database upgraded as an installation is, for the upgrade tests: test_migrations.py's catalogue written at
0018, test_patient_index.py's audit events appended as 0021's writer did, then ``db.migrate`` to the newest
migration (what `careloop migrate` runs). Shared (the session fixture ``upgraded`` in tests/conftest.py runs it
once a suite): migrating costs seconds of CPU a migration step (tortoise 1.1 renders its state again for every
operation), and each test upgrading a database of its own paid for the whole upgrade. Each test checks its part."""

OLD_HASHED = ("id", "institution_id", "seq", "occurred_at", "actor_kind", "actor_id", "token_id", "action",
              "resource_type", "resource_id", "patient_id", "field_classes", "fields_read", "outcome", "reason",
              "policy_rule", "request_id", "client_address", "user_agent", "prev_hash")  # the hashed columns of 0021

# argv: the database's URL (an empty database), OLD_HASHED as JSON. Prints one JSON line: {"catalogue": ...,
# "audit": ...}.
UPGRADE = """
import asyncio, hashlib, json, sys, uuid
from datetime import UTC, datetime, timedelta
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate
from app import db
from audit import writer
from audit.chain import canonical
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import verify_all
from core.db import tortoise_config
from models import AuditChainHead, AuditEvent, AuditPatientIndex, ServiceItem

OLD = json.loads(sys.argv[2])  # the hashed columns of 0021

def placeholders(conn):
    pg = conn.capabilities.dialect == "postgres"
    return lambda n: ", ".join(("$%d" % i) if pg else "?" for i in range(1, n + 1))

async def main(url):
    db.create_private_sqlite_file(url)

    # test_migrations.py: a catalogue item written at 0018, before 0019 added three NOT NULL columns
    await migrate(config=tortoise_config(url), target="careloop.0018_surveys")
    conn = Tortoise.get_connection("default")
    marks = placeholders(conn)
    institution, item, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    await conn.execute_query("INSERT INTO institution (id, name, kind, time_zone, created_at) VALUES (%s)" % marks(5),
                             [str(institution), "Old Clinic", "clinic", "Asia/Shanghai", now])
    await conn.execute_query("INSERT INTO service_item (id, institution_id, code, name, active, created_at) "
                             "VALUES (%s)" % marks(6), [str(item), str(institution), "D001", "Scaling", True, now])
    await Tortoise.close_connections()

    # test_patient_index.py: events appended at 0021 as 0021's writer did, every column but subjects, hashed over OLD
    await migrate(config=tortoise_config(url), target="careloop.0021_audit_append")
    await Tortoise.close_connections()
    await db.open_database(url)
    conn = Tortoise.get_connection("default")
    marks = placeholders(conn)
    chain, actor, p1, p2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    prev, base, fields = "0" * 64, datetime.now(UTC) - timedelta(days=1), AuditEvent._meta.fields_map
    for seq, patient in enumerate([p1, None, p2, p1], start=1):
        row = {"id": uuid.uuid4(), "institution_id": chain, "seq": seq, "occurred_at": base + timedelta(seconds=seq),
               "actor_kind": "staff", "actor_id": actor, "token_id": None, "action": "read",
               "resource_type": "patient", "resource_id": patient, "patient_id": patient,
               "field_classes": "identity", "fields_read": "", "outcome": "allowed", "reason": "",
               "policy_rule": "", "request_id": "r%d" % seq, "client_address": "", "user_agent": "",
               "prev_hash": prev}
        row["hash"] = prev = hashlib.sha256(json.dumps([canonical(row[c]) for c in OLD]).encode()).hexdigest()
        await conn.execute_query("INSERT INTO audit_event (%s) VALUES (%s)" % (", ".join(row), marks(len(row))),
                                 [fields[c].to_db_value(v, AuditEvent) for c, v in row.items()])
    await AuditChainHead.create(institution_id=chain, last_seq=4, last_hash=prev)
    await Tortoise.close_connections()

    await db.migrate(url)  # what `careloop migrate` runs
    await db.open_database(url)
    catalogue = await ServiceItem.filter(id=item).values("code", "unit", "frequencies", "version")
    out = {"patients": [str(p1), str(p2)], "actor": str(actor)}
    out["events"] = [dict(r) for r in await AuditEvent.filter(institution_id=chain).order_by("seq").values(
        "seq", "occurred_at", "subjects")]
    out["index"] = [dict(r) for r in await AuditPatientIndex.filter(institution_id=chain).order_by(
        "seq", "patient_id").values("seq", "patient_id", "occurred_at", "actor_kind", "actor_id", "action", "outcome")]
    out["report"] = repr(await verify_all(chain))
    await writer.append([AuditRecord(chain, Actor("staff", actor), Action.READ, "patient", Outcome.ALLOWED,
                                     subjects=frozenset({(p1, p1), (p2, p2)}))])
    out["after"] = repr(await verify_all(chain))
    out["new_index"] = [str(p) for p in await AuditPatientIndex.filter(institution_id=chain, seq=5).order_by(
        "patient_id").values_list("patient_id", flat=True)]
    out["chain"] = str(chain)
    await Tortoise.close_connections()
    print(json.dumps({"catalogue": catalogue, "audit": out}, default=str))

asyncio.run(main(sys.argv[1]))
"""
