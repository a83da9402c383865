from datetime import timedelta, timezone

from tortoise import Tortoise

from models import AuditEvent
from tests.factories import Tenant

Q = "query($f: AuditEventFilter){auditEvents(first:100, filter:$f){edges{node{seq occurredAt}}}}"

async def test_explore(tenant: Tenant) -> None:
    evs = await tenant.audit_events()
    e = evs[5]
    utc = e.occurred_at.isoformat()
    cst = e.occurred_at.astimezone(timezone(timedelta(hours=8))).isoformat()
    for v in (utc, cst, utc.replace("+00:00", "Z")):
        r = await tenant.call("compliance_officer", Q, f={"from": v})
        print(v, r.errors, [x["node"]["seq"] for x in r.data["auditEvents"]["edges"]] if r.data else None)
    conn = Tortoise.get_connection("default")
    row = (await conn.execute_query_dict(f"SELECT * FROM audit_event WHERE id = '{e.id}'"))[0]
    row["reason"] = "tampered"
    cols = ", ".join(row)
    qs = ", ".join("?" for _ in row)
    try:
        await conn.execute_query(f"INSERT OR REPLACE INTO audit_event ({cols}) VALUES ({qs})", list(row.values()))
        print("REPLACE succeeded", (await AuditEvent.get(id=e.id)).reason)
    except Exception as exc:
        print("REPLACE refused", exc)
    try:
        await conn.execute_query(f"INSERT INTO audit_event ({cols}) VALUES ({qs}) ON CONFLICT(id) DO UPDATE SET reason='x'", list(row.values()))
        print("UPSERT succeeded", (await AuditEvent.get(id=e.id)).reason)
    except Exception as exc:
        print("UPSERT refused", type(exc), exc)
