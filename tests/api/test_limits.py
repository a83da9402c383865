from tortoise import connections

from tests.factories import Tenant, make_patient


async def test_explore(tenant: Tenant, client, settings, services, database_url) -> None:
    pid = await make_patient(tenant, "nurse", phone="13912345678", diagnoses="secret")
    pid2 = await make_patient(tenant, "nurse", phone="13912345679", diagnoses="other")
    conn = connections.get("default")
    print(await conn.execute_query("select id, typeof(id), typeof(diagnoses), hex(diagnoses) from patient where id = ?", [str(pid)]))
    print(await conn.execute_query("pragma journal_mode"))
    print(await conn.execute_query("update patient set diagnoses = (select diagnoses from patient where id = ?) where id = ?", [str(pid), str(pid2)]))
    r = await client.post("/graphql", json={"query": "query($id: ID!) { patient(id: $id) { id fullName diagnoses } }", "variables": {"id": str(pid2)}}, headers={"authorization": "Bearer " + tenant.tokens["doctor"]})
    print(r.headers, r.text)
    for ev in await tenant.audit_events(patient_id=pid2):
        print(ev.action, ev.outcome, ev.reason, ev.field_classes, ev.fields_read)
