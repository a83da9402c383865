"""What one patient's file holds is bounded at write (found in review: Patient.contacts and Patient.careTeam, listed
whole on a page of up to 100 files, had no bound): contactCreate and careTeamAssign refuse one more past the bound
(50 each, here 2), BAD_USER_INPUT with reason item_count, nothing written and the refusal on the trail. A merge keeps
both files' contacts and team, past the bound if need be."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from models import CareTeamMember, Contact
from resolvers import care_team
from resolvers import contact as contacts
from tests.api.test_contact import CARE_ASSIGN, CREATE, DELETE, SPOUSE, add_contact
from tests.api.test_patient_merge import merge
from tests.conftest import BACKEND
from tests.factories import PASSWORD, Response, Tenant, make_patient
from tests.locks import another_transaction, until_waiting
from tests.patients import denials_since, events_since, mark

STAFF_CREATE = "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id } }"
UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"


@pytest.fixture(autouse=True)
def bounds_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contacts, "MAX_CONTACTS", 2)
    monkeypatch.setattr(care_team, "MAX_MEMBERS", 2)


def full(reply: Response, root: str) -> bool:
    """BAD_USER_INPUT at patientId, reason item_count, and no answer."""
    [error] = reply.errors
    extensions = error["extensions"]
    return reply.data == {root: None} and (extensions["code"], extensions["field"], extensions["reason"]) == (
        "BAD_USER_INPUT", "patientId", "item_count")


async def contacts_of(patient: uuid.UUID) -> list[str]:
    return sorted(str(i) for i in await Contact.filter(patient_id=patient).values_list("id", flat=True))


async def team_of(patient: uuid.UUID) -> list[uuid.UUID]:
    return sorted(await CareTeamMember.filter(patient_id=patient).values_list("staff_id", flat=True))


# -- contacts ----------------------------------------------------------------------------------------------------


async def test_a_file_takes_contacts_up_to_its_bound_and_refuses_one_more(tenant: Tenant) -> None:
    pid, other = await make_patient(tenant), await make_patient(tenant)
    first = await add_contact(tenant, pid)
    await add_contact(tenant, pid, "nurse", name="Wang Lei")  # the second: the bound is reached, not passed
    await add_contact(tenant, other)  # the bound is per file
    held, seq = await contacts_of(pid), await mark(tenant.id)

    refused = await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)
    assert full(refused, "contactCreate"), refused.errors
    assert "at most 2 contacts" in refused.errors[0]["message"]
    assert await contacts_of(pid) == held  # nothing written
    assert await denials_since(tenant.id, seq) == [("create", "contact", "item_count", None, pid)]
    assert [e.outcome for e in await events_since(tenant.id, seq)] == ["denied"]  # no write recorded

    # one removed, one more goes in
    assert (await tenant.call("front_desk", DELETE, id=str(first))).errors == []
    assert (await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)).errors == []
    assert len(await contacts_of(pid)) == 2


async def test_a_merge_keeps_both_files_contacts_past_the_bound(tenant: Tenant) -> None:
    """The bound is on callers' writes: a merge moves every contact of the duplicate (a person's contacts are not
    dropped to fit), and the survivor then takes no new one until it holds fewer."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    for patient in (survivor, duplicate):
        for name in ("Wang Fang", "Wang Lei"):
            await add_contact(tenant, patient, name=name)
    merged = await merge(tenant, survivor, duplicate)
    assert merged.errors == [], merged.errors
    assert len(merged.data["patientMerge"]["survivor"]["contacts"]) == 4
    assert len(await contacts_of(survivor)) == 4

    refused = await tenant.call("front_desk", CREATE, pid=str(survivor), input=SPOUSE)
    assert full(refused, "contactCreate"), refused.errors
    assert len(await contacts_of(survivor)) == 4


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_a_contact_written_while_another_holds_the_file_is_counted(tenant: Tenant) -> None:
    """A contactCreate waiting for the file's lock counts what the writer holding it committed (found while testing:
    a count in the statement read the snapshot it began with, and both writers went in, 3 of a bound of 2)."""
    pid = await make_patient(tenant)
    kept = await add_contact(tenant, pid)
    async with another_transaction() as other:  # the file locked, a second contact written, not committed
        await other.execute('SELECT 1 FROM patient WHERE id = $1 FOR NO KEY UPDATE', pid)
        await other.execute(
            "INSERT INTO contact (id, institution_id, patient_id, created_at, updated_at, name, relationship, "
            "is_emergency, may_receive_information, version) SELECT $2, institution_id, patient_id, created_at, "
            "updated_at, name, relationship, is_emergency, may_receive_information, 1 FROM contact WHERE id = $1",
            kept, uuid.uuid4())
        writing = asyncio.create_task(tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE))
        await until_waiting([writing])
    refused = await asyncio.wait_for(writing, 10)
    assert full(refused, "contactCreate"), refused.errors
    assert len(await contacts_of(pid)) == 2


# -- care teams --------------------------------------------------------------------------------------------------


async def test_a_care_team_takes_members_up_to_its_bound_and_refuses_one_more(tenant: Tenant) -> None:
    pid, other = await make_patient(tenant), await make_patient(tenant)
    nurse, doctor, head = (tenant.staff_ids[role] for role in ("nurse", "doctor", "department_head"))
    for staff in (nurse, doctor):
        assert (await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(staff))).errors == []
    # one already on the team adds nothing and passes; the bound is per file
    assert (await tenant.call("department_head", CARE_ASSIGN, pid=str(pid), sid=str(nurse))).errors == []
    assert (await tenant.call("admin", CARE_ASSIGN, pid=str(other), sid=str(head))).errors == []
    held, seq = await team_of(pid), await mark(tenant.id)

    refused = await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(head))
    assert full(refused, "careTeamAssign"), refused.errors
    assert "at most 2 members" in refused.errors[0]["message"]
    assert await team_of(pid) == held  # nothing written
    assert await denials_since(tenant.id, seq) == [("create", "care_team", "item_count", head, pid)]
    assert [e.outcome for e in await events_since(tenant.id, seq)] == ["denied"]

    # one taken off, another goes on
    assert (await tenant.call("admin", UNASSIGN, pid=str(pid), sid=str(doctor))).errors == []
    assert (await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(head))).errors == []
    assert await team_of(pid) == sorted([nurse, head])


async def another_nurse(tenant: Tenant) -> uuid.UUID:
    """One more clinician: a care team takes clinicians only (tests/api/test_clinicians.py)."""
    reply = await tenant.call("admin", STAFF_CREATE, input={
        "email": f"{uuid.uuid4().hex[:10]}@careloop.test", "name": "Another nurse", "password": PASSWORD,
        "roles": ["NURSE"], "departmentIds": [str(tenant.departments["A"].id)]})
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["staffCreate"]["id"])


async def test_a_merge_keeps_both_care_teams_past_the_bound(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    ids = tenant.staff_ids
    for patient, members in ((survivor, (ids["nurse"], ids["doctor"])),
                             (duplicate, (ids["department_head"], await another_nurse(tenant)))):
        for member in members:
            assigned = await tenant.call("admin", CARE_ASSIGN, pid=str(patient), sid=str(member))
            assert assigned.errors == [], assigned.errors
    merged = await merge(tenant, survivor, duplicate)
    assert merged.errors == [], merged.errors
    assert len(await team_of(survivor)) == 4

    refused = await tenant.call("admin", CARE_ASSIGN, pid=str(survivor), sid=str(await another_nurse(tenant)))
    assert full(refused, "careTeamAssign"), refused.errors
    assert len(await team_of(survivor)) == 4
