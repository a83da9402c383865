"""Concurrent edits of a patient file (issue 16), through the API: every update states the version it edits,
a stale one is a CONFLICT that writes nothing, and updatedAt moves with every change."""

from __future__ import annotations

from datetime import datetime

from models import Patient
from tests.factories import Tenant, make_patient

READ = "query($id: ID!) { patient(id: $id) { version updatedAt createdAt occupation } }"
UPDATE = """mutation($id: ID!, $input: PatientUpdateInput!, $version: Int) {
  patientUpdate(id: $id, input: $input, version: $version) { version updatedAt occupation }
}"""
ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { version status } }"


async def read(tenant: Tenant, pid: object, role: str = "front_desk") -> dict[str, object]:
    reply = await tenant.call(role, READ, id=str(pid))
    assert reply.errors == [], reply.errors
    return dict(reply.data["patient"])


async def test_the_first_of_two_clerks_wins_and_the_second_gets_a_conflict(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    first_read, second_read = await read(tenant, pid), await read(tenant, pid, "nurse")
    assert first_read["version"] == second_read["version"] == 1

    won = await tenant.call("front_desk", UPDATE, id=str(pid), input={"occupation": "Teacher"}, version=1)
    assert won.errors == [], won.errors
    assert won.data["patientUpdate"]["version"] == 2
    assert datetime.fromisoformat(won.data["patientUpdate"]["updatedAt"]) > datetime.fromisoformat(
        str(first_read["updatedAt"]))
    row = await Patient.filter(id=pid).values()
    events = await tenant.audit_count()

    lost = await tenant.call("nurse", UPDATE, id=str(pid), input={"occupation": "Engineer"}, version=1)

    assert lost.codes == ["CONFLICT"], lost.errors
    assert lost.errors[0]["extensions"]["field"] == "version"
    assert lost.data["patientUpdate"] is None
    assert await Patient.filter(id=pid).values() == row
    assert await tenant.audit_count() == events
    assert (await read(tenant, pid))["occupation"] == "Teacher"


async def test_without_a_version_the_current_one_is_edited_and_bumped(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await read(tenant, pid)

    for n, job in enumerate(("Teacher", "Engineer"), start=2):
        reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={"occupation": job})
        assert reply.errors == [] and reply.data["patientUpdate"]["version"] == n

    after = await read(tenant, pid)
    assert after["version"] == 3 and after["occupation"] == "Engineer"
    assert datetime.fromisoformat(str(after["updatedAt"])) > datetime.fromisoformat(str(before["updatedAt"]))
    assert after["createdAt"] == before["createdAt"]


async def test_archiving_is_a_change_too(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("front_desk", ARCHIVE, id=str(pid))
    assert reply.data["patientArchive"] == {"version": 2, "status": "ARCHIVED"}
    stale = await tenant.call("front_desk", UPDATE, id=str(pid), input={"occupation": "Teacher"}, version=1)
    assert stale.codes == ["CONFLICT"]


async def test_a_version_of_a_file_out_of_reach_is_not_found_and_writes_nothing(tenant: Tenant,
                                                                                 other_tenant: Tenant) -> None:
    elsewhere = await make_patient(other_tenant)
    row = await Patient.filter(id=elsewhere).values()

    reply = await tenant.call("front_desk", UPDATE, id=str(elsewhere), input={"occupation": "Teacher"}, version=1)

    assert reply.codes == ["NOT_FOUND"]
    assert await Patient.filter(id=elsewhere).values() == row
    denials = await tenant.audit_events(outcome="denied")
    assert [(e.reason, e.action) for e in denials] == [("not_found", "update")]


async def test_a_role_that_may_not_change_the_field_gets_forbidden_whatever_the_version(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    row = await Patient.filter(id=pid).values()

    reply = await tenant.call("doctor", UPDATE, id=str(pid), input={"occupation": "Teacher"}, version=1)

    assert reply.codes == ["FORBIDDEN"]
    assert await Patient.filter(id=pid).values() == row
    assert [e.reason for e in await tenant.audit_events(outcome="denied")] == ["forbidden"]
