"""Concurrent edits of a patient file (issue 16), through the API: every update states the version it edits,
a stale one is a CONFLICT that writes nothing, and updatedAt moves with every change."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

from models import Contact, Patient
from resolvers import communication
from resolvers.context import Services
from tests.factories import Tenant, make_patient
from tests.patients import open_account

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


# -- the patient's own changes are versions too: a clerk's edit read before them is stale --------------------

SET_PREFERENCES = """mutation($input: ContactPreferencesInput!) {
  myContactPreferencesUpdate(input: $input) { consent purposes } }"""
CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id version updatedAt } }"""
CONTACT_UPDATE = """mutation($id: ID!, $input: ContactUpdateInput!, $version: Int) {
  contactUpdate(id: $id, input: $input, version: $version) { version } }"""
CONTACT_READ = "query($id: ID!) { patient(id: $id) { contacts { id version updatedAt mayReceiveInformation } } }"


async def stale_clerk_is_refused(tenant: Tenant, pid: object, clerk_read: dict[str, object]) -> None:
    """The file moved past the clerk's read (a new version, a later updatedAt); the clerk's edit over the old
    version is a CONFLICT that writes nothing."""
    now = await read(tenant, pid)
    assert now["version"] == int(str(clerk_read["version"])) + 1
    assert datetime.fromisoformat(str(now["updatedAt"])) > datetime.fromisoformat(str(clerk_read["updatedAt"]))
    row, events = await Patient.filter(id=pid).values(), await tenant.audit_count()

    lost = await tenant.call("front_desk", UPDATE, id=str(pid), input={"occupation": "Teacher"},
                             version=clerk_read["version"])

    assert (lost.codes, lost.data) == (["CONFLICT"], {"patientUpdate": None}), lost.errors
    assert await Patient.filter(id=pid).values() == row
    assert await tenant.audit_count() == events
    assert (await tenant.call("front_desk", UPDATE, id=str(pid), input={"occupation": "Teacher"},
                              version=now["version"])).errors == []  # read again, the edit goes through


async def test_portal_preferences_make_a_clerks_earlier_read_stale(tenant: Tenant) -> None:
    me = await open_account(tenant)
    clerk_read = await read(tenant, me.patient_id)

    changed = await me.call(SET_PREFERENCES, input={"consent": True, "purposes": ["CARE", "GREETING"]})

    assert changed.errors == [] and changed.data["myContactPreferencesUpdate"] == {
        "consent": True, "purposes": ["CARE", "GREETING"]}
    await stale_clerk_is_refused(tenant, me.patient_id, clerk_read)
    assert (await Patient.get(id=me.patient_id)).contact_purposes == "|care|greeting|"  # kept, not overwritten


async def test_an_unsubscribe_link_makes_a_clerks_earlier_read_stale(tenant: Tenant, services: Services) -> None:
    pid = await make_patient(tenant, contactPurposes=["CARE", "GREETING"])
    clerk_read = await read(tenant, pid)
    url = urlsplit(communication.unsubscribe_url(services, tenant.id, pid, "greeting"))

    assert (await tenant.client.post(f"{url.path}?{url.query}")).status_code == 200

    await stale_clerk_is_refused(tenant, pid, clerk_read)
    assert (await Patient.get(id=pid)).contact_purposes == "|care|"
    version = (await read(tenant, pid))["version"]
    assert (await tenant.client.post(f"{url.path}?{url.query}")).status_code == 200  # again: nothing changes
    assert (await read(tenant, pid))["version"] == version


async def test_a_contacts_unsubscribe_link_makes_a_clerks_earlier_read_of_it_stale(tenant: Tenant,
                                                                                    services: Services) -> None:
    pid = await make_patient(tenant)
    created = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid), input={
        "name": "Zhao Family", "relationship": "CHILD", "phone": "13600004444", "mayReceiveInformation": True})
    assert created.errors == [], created.errors
    contact = created.data["contactCreate"]
    token = communication.contact_unsubscribe_token(services.master_key.token_key, tenant.id,
                                                    uuid.UUID(contact["id"]), "care")

    assert (await tenant.client.post(f"/unsubscribe?token={token}")).status_code == 200

    [now] = (await tenant.call("front_desk", CONTACT_READ, id=str(pid))).data["patient"]["contacts"]
    assert (now["version"], now["mayReceiveInformation"]) == (contact["version"] + 1, False)
    assert datetime.fromisoformat(now["updatedAt"]) > datetime.fromisoformat(contact["updatedAt"])
    row, events = await Contact.filter(id=contact["id"]).values(), await tenant.audit_count()
    lost = await tenant.call("front_desk", CONTACT_UPDATE, id=contact["id"], input={"name": "Zhao Senior"},
                             version=contact["version"])
    assert (lost.codes, lost.data) == (["CONFLICT"], {"contactUpdate": None}), lost.errors
    assert await Contact.filter(id=contact["id"]).values() == row
    assert await tenant.audit_count() == events
