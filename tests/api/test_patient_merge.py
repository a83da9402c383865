"""Two files of one person merged (issue 16), through the API: everything moves to the surviving file, the
duplicate is kept as MERGED and can be reviewed, the trail records it on both files; and every refusal (a
role without the right, a file out of reach, a stale version, what cannot be merged) writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.events import Action
from models import (
    CarePlan,
    CareTeamMember,
    Contact,
    Flag,
    FollowUpTask,
    PartnerConsent,
    Patient,
    PatientAccount,
    Ticket,
    Visit,
)
from resolvers import access, writes
from resolvers.patient_merge import patient_links
from tests.factories import Tenant, make_patient
from tests.partners import consent, make_partner
from tests.patients import make_contact, open_account

MERGE = """mutation($s: ID!, $d: ID!, $sv: Int, $dv: Int) {
  patientMerge(survivorId: $s, duplicateId: $d, survivorVersion: $sv, duplicateVersion: $dv) {
    survivor { id version contacts { name } careTeam { id } }
    merged { id status mergedInto mergedAt version fullName }
    moved { table count } kept { table count }
  }
}"""
READ = "query($id: ID!) { patient(id: $id) { id status mergedInto fullName version } }"
LIST = "query($filter: PatientFilter) { patients(first: 50, filter: $filter) { nodes { id } } }"
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
CARE_ASSIGN = "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }"
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
# A follow-up call is due from today (the institution's local date) to a year ahead: two weeks from the real
# clock is inside that range whatever day the tests run on.
IN_TWO_WEEKS = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()


async def state(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    return {model.__name__: await model.filter(institution_id=tenant.id).order_by("id").values()
            for model in (Patient, Contact, CareTeamMember, Ticket, PartnerConsent, PatientAccount)}


async def merge(tenant: Tenant, survivor: uuid.UUID, duplicate: uuid.UUID, role: str = "front_desk",
                **versions: Any) -> Any:
    return await tenant.call(role, MERGE, s=str(survivor), d=str(duplicate), **versions)


async def listed(tenant: Tenant, **filter_: Any) -> set[str]:
    reply = await tenant.call("front_desk", LIST, filter=filter_ or None)
    assert reply.errors == [], reply.errors
    return {node["id"] for node in reply.data["patients"]["nodes"]}


async def assign(tenant: Tenant, patient: uuid.UUID, role: str) -> None:
    reply = await tenant.call("admin", CARE_ASSIGN, p=str(patient), s=str(tenant.staff_ids[role]))
    assert reply.errors == [], reply.errors


async def test_everything_moves_to_the_survivor_and_the_duplicate_is_kept_as_merged(tenant: Tenant) -> None:
    survivor = await make_patient(tenant, fullName="Zhang Wei", birthDate="1980-01-02")
    duplicate = await make_patient(tenant, fullName="张伟", birthDate="1980-01-02", phone="13800138000")
    await make_contact(tenant, survivor, "Wang Fang")
    await make_contact(tenant, duplicate, "Li Lei")
    await make_contact(tenant, duplicate, "Li Mei")
    await assign(tenant, survivor, "nurse")
    await assign(tenant, duplicate, "nurse")  # on both teams: stays on the merged file
    await assign(tenant, duplicate, "doctor")
    reply = await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Opening hours", "patientId": str(duplicate)})
    assert reply.errors == []
    before = (await tenant.audit_events())[-1].seq

    reply = await merge(tenant, survivor, duplicate, sv=1, dv=1)

    assert reply.errors == [], reply.errors
    data = reply.data["patientMerge"]
    assert sorted(c["name"] for c in data["survivor"]["contacts"]) == ["Li Lei", "Li Mei", "Wang Fang"]
    assert {m["id"] for m in data["survivor"]["careTeam"]} == {str(tenant.staff_ids["nurse"]),
                                                               str(tenant.staff_ids["doctor"])}
    assert data["survivor"]["version"] == 2
    merged = data["merged"]
    assert (merged["id"], merged["status"], merged["mergedInto"], merged["fullName"], merged["version"]) == (
        str(duplicate), "MERGED", str(survivor), "张伟", 2)
    assert merged["mergedAt"] is not None
    assert data["moved"] == [{"table": "care_team_member", "count": 1}, {"table": "contact", "count": 2},
                             {"table": "ticket", "count": 1}]
    assert data["kept"] == [{"table": "care_team_member", "count": 1}]
    assert await Ticket.filter(patient_id=duplicate).count() == 0
    assert await Contact.filter(patient_id=survivor).count() == 3

    events = [e for e in await tenant.audit_events() if e.reason == "merge"]
    assert len(events) == 2 and all(e.seq > before for e in events)
    assert {(e.action, e.resource_type, e.resource_id, e.patient_id, e.outcome, e.fields_read) for e in events} == {
        ("update", "patient", duplicate, duplicate, "allowed", "merged_into,status"),
        ("update", "patient_merge", duplicate, survivor, "allowed",
         "care_team_member:1,contact:2,kept.care_team_member:1,ticket:1"),
    }


async def test_a_merged_file_is_read_listed_on_request_and_never_changed(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    assert (await merge(tenant, survivor, duplicate)).errors == []

    read = await tenant.call("front_desk", READ, id=str(duplicate))
    assert read.data["patient"]["status"] == "MERGED" and read.data["patient"]["mergedInto"] == str(survivor)
    assert str(duplicate) not in await listed(tenant)
    assert await listed(tenant, status="MERGED") == {str(duplicate)}
    assert await listed(tenant, mergedIntoId=str(survivor)) == {str(duplicate)}  # the merges to review
    before = await state(tenant)
    update = await tenant.call("front_desk", UPDATE, id=str(duplicate), input={"occupation": "Teacher"})
    assert update.codes == ["CONFLICT"] and update.errors[0]["extensions"]["field"] == "id"
    again = await merge(tenant, survivor, duplicate)
    assert again.codes == ["CONFLICT"] and again.errors[0]["extensions"]["field"] == "duplicateId"
    reversed_ = await merge(tenant, duplicate, survivor)
    assert reversed_.codes == ["CONFLICT"] and reversed_.errors[0]["extensions"]["field"] == "survivorId"
    assert await state(tenant) == before


async def test_files_merged_before_follow_the_duplicate_to_the_survivor(tenant: Tenant) -> None:
    first, second, third = await make_patient(tenant), await make_patient(tenant), await make_patient(tenant)
    assert (await merge(tenant, second, third)).errors == []

    reply = await merge(tenant, first, second)

    assert reply.errors == []
    assert {"table": "patient", "count": 1} in reply.data["patientMerge"]["moved"]
    assert await listed(tenant, mergedIntoId=str(first)) == {str(second), str(third)}


async def test_merging_status_is_not_set_by_an_update(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={"status": "MERGED"})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.status"


# -- refusals -----------------------------------------------------------------------------------------


async def test_a_role_without_the_right_may_not_merge(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    await make_contact(tenant, duplicate, "Li Lei")
    before = await state(tenant)

    reply = await merge(tenant, survivor, duplicate, role="nurse")

    assert reply.codes == ["FORBIDDEN"] and reply.data["patientMerge"] is None
    assert await state(tenant) == before
    denials = await tenant.audit_events(outcome="denied")
    assert [(e.actor_id, e.reason, sorted(e.subjects.split())) for e in denials] == [
        (tenant.staff_ids["nurse"], "forbidden", sorted([f"{duplicate}/{duplicate}", f"{survivor}/{survivor}"]))]


async def test_a_file_out_of_reach_is_not_found_and_nothing_moves(tenant: Tenant, other_tenant: Tenant) -> None:
    survivor = await make_patient(tenant)
    elsewhere = await make_patient(other_tenant)
    await make_contact(other_tenant, elsewhere, "Li Lei")
    before, theirs = await state(tenant), await state(other_tenant)

    for s, d, name in ((survivor, elsewhere, "duplicateId"), (elsewhere, survivor, "survivorId"),
                       (survivor, uuid.uuid4(), "duplicateId")):
        reply = await merge(tenant, s, d)
        assert reply.codes == ["NOT_FOUND"] and reply.errors[0]["extensions"]["field"] == name

    assert await state(tenant) == before and await state(other_tenant) == theirs
    denials = await tenant.audit_events(outcome="denied")
    assert [(e.reason, e.action) for e in denials] == [("not_found", "update")] * 3
    assert await other_tenant.audit_events(outcome="denied") == []


async def test_the_same_file_twice_is_bad_input(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await merge(tenant, pid, pid)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "duplicateId"


async def test_a_stale_version_is_a_conflict(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    assert (await tenant.call("front_desk", UPDATE, id=str(duplicate), input={"occupation": "Teacher"})).errors == []
    await make_contact(tenant, duplicate, "Li Lei")
    before = await state(tenant)

    for version, name in ((1, "duplicateVersion"), (2, "survivorVersion")):
        reply = await merge(tenant, survivor, duplicate, sv=version, dv=version)
        assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["field"] == name
        assert reply.errors[0]["extensions"]["reason"] == "stale_version"

    assert await state(tenant) == before


async def test_two_portal_accounts_or_disagreeing_consents_refuse_the_merge(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    await open_account(tenant, survivor)
    await open_account(tenant, duplicate)
    before = await state(tenant)
    reply = await merge(tenant, survivor, duplicate)
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["field"] == "duplicateId"
    assert reply.errors[0]["extensions"]["reason"] == "one_per_file"
    assert await state(tenant) == before

    one, other = await make_patient(tenant), await make_patient(tenant)
    partner = await make_partner(tenant)
    assert (await consent(tenant, one, partner, granted=True)).errors == []
    assert (await consent(tenant, other, partner, granted=False)).errors == []
    before = await state(tenant)
    reply = await merge(tenant, one, other)
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "consents_disagree"
    assert await state(tenant) == before


async def test_one_portal_account_moves_with_its_file(tenant: Tenant) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    user = await open_account(tenant, duplicate)

    reply = await merge(tenant, survivor, duplicate)

    assert reply.errors == []
    assert {"table": "patient_account", "count": 1} in reply.data["patientMerge"]["moved"]
    assert (await PatientAccount.get(id=user.account_id)).patient_id == survivor


def test_every_foreign_key_to_a_patient_is_a_link() -> None:
    """Found from the models' metadata, so a table added later moves too."""
    tables = {(link.table, link.column) for link in patient_links()}
    assert {("contact", "patient_id"), ("visit", "patient_id"), ("care_team_member", "patient_id"),
            ("patient_account", "patient_id"), ("patient", "merged_into_id"), ("ticket", "patient_id"),
            ("appointment", "patient_id")} <= tables
    assert not any(table == "audit_event" for table, _ in tables)  # the trail stays as it was written


# -- a merged file takes no new records: they go to the survivor --------------------------------------------

WRITES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    # name: (role, mutation, the field naming the patient, input without the patient)
    "contactCreate": ("front_desk", "mutation($p: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $p, "
                      "input: $input) { id } }", "patientId",
                      {"name": "Li Hua", "relationship": "SPOUSE", "phone": "13600004444"}),
    "ticketCreate": ("support_agent", TICKET_CREATE, "patientId",
                     {"channel": "HOTLINE", "category": "REQUEST", "subject": "Change my appointment"}),
    "visitCreate": ("front_desk", "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }",
                    "patientId", {"kind": "OUTPATIENT"}),
    "flagCreate": ("nurse", "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }", "patientId",
                   {"kind": "FALL_RISK"}),
    "followUpTaskCreate": ("doctor", "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: "
                           "$input) { id } }", "patientId", {"dueOn": IN_TWO_WEEKS}),
    "carePlanCreate": ("doctor", "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }",
                       "patientId", {"title": "After the implant", "startsOn": IN_TWO_WEEKS,
                                     "activities": [{"kind": "CALL", "afterDays": 1}]}),
}


async def write(tenant: Tenant, name: str, patient: uuid.UUID) -> Any:
    role, mutation, field, data = WRITES[name]
    if name == "contactCreate":
        return await tenant.call(role, mutation, p=str(patient), input=data)
    extra = {"departmentId": str(tenant.departments["A"].id)} if name == "visitCreate" else {}
    return await tenant.call(role, mutation, input={field: str(patient), **data, **extra})


async def records(tenant: Tenant) -> dict[str, int]:
    return {model.__name__: await model.filter(institution_id=tenant.id).count()
            for model in (Contact, Ticket, Visit, Flag, FollowUpTask, CarePlan)}


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_merged_file_takes_no_new_records(tenant: Tenant, name: str) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    assert (await merge(tenant, survivor, duplicate)).errors == []
    before = await records(tenant)

    refused = await write(tenant, name, duplicate)

    assert refused.codes == ["CONFLICT"], refused.errors
    path = "patientId" if name == "contactCreate" else "input.patientId"
    assert refused.errors[0]["extensions"] | {"field": path, "reason": "merged"} == refused.errors[0]["extensions"]
    assert refused.data == {name: None}
    assert await records(tenant) == before
    assert await merged_refusals(tenant, duplicate) == 1
    allowed = await write(tenant, name, survivor)  # the twin: the same write on the file it was merged into
    assert allowed.errors == [], allowed.errors


async def merged_refusals(tenant: Tenant, patient: uuid.UUID) -> int:
    """How many writes to the merged file the trail holds as refused (on the file, as every refusal is)."""
    denials = await tenant.audit_events(outcome="denied", reason="merged")
    assert all((e.resource_type, e.resource_id, e.patient_id) == ("patient", patient, patient) for e in denials)
    return len(denials)


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_file_merged_after_the_write_found_it_takes_nothing(tenant: Tenant, name: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The race made sequential (found in review): the file is merged after the write found it open and before
    it writes; the write, locking the file as a merge does, finds it merged and is refused as above, not left on
    the merged file (test_races_patients runs the two at once)."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    found = access.find_patient

    async def merged_once_found(ctx: Any, patient_id: Any, *, action: Action, **kwargs: Any) -> Any:
        view = await found(ctx, patient_id, action=action, **kwargs)
        if patient_id == duplicate and action is not Action.UPDATE:  # the write's, not the merge's own
            monkeypatch.setattr(access, "find_patient", found)
            assert (await merge(tenant, survivor, duplicate)).errors == []
        return view

    monkeypatch.setattr(access, "find_patient", merged_once_found)
    before = await records(tenant)

    refused = await write(tenant, name, duplicate)

    assert refused.codes == ["CONFLICT"], refused.errors
    assert refused.errors[0]["extensions"]["reason"] == "merged"
    assert await records(tenant) == before
    assert (await Patient.get(id=duplicate)).status == "merged"
    assert await merged_refusals(tenant, duplicate) == 1


CONTACT_UPDATE = "mutation($id: ID!, $input: ContactUpdateInput!) { contactUpdate(id: $id, input: $input) { name } }"


async def contact_changed_across_a_merge(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, role: str,
                                        survivor: uuid.UUID) -> tuple[Any, uuid.UUID, uuid.UUID]:
    """``role``'s contactUpdate of a contact of a file merged into ``survivor`` after the update found the contact
    and before it writes (the race made sequential); the reply, the contact and the merged file."""
    duplicate = await make_patient(tenant)
    contact = await make_contact(tenant, duplicate, "Li Lei")
    write = writes.write_over_version

    async def merged_first(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(writes, "write_over_version", write)
        assert (await merge(tenant, survivor, duplicate)).errors == []
        return await write(*args, **kwargs)

    monkeypatch.setattr(writes, "write_over_version", merged_first)
    reply = await tenant.call(role, CONTACT_UPDATE, id=str(contact), input={"name": "Li Lei Jr"})
    return reply, contact, duplicate


async def test_a_contact_changed_across_a_merge_is_changed_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: contactUpdate found the contact on the duplicate, the merge moved it to the survivor (its
    version as it was), and the update then wrote it without asking, recorded on the merged file. The write now
    holds only while the contact is on the file found; moved, it is found again, and written and recorded on the
    survivor, as a flag's or a task's update follows the survivor."""
    survivor = await make_patient(tenant)

    reply, contact, _ = await contact_changed_across_a_merge(tenant, monkeypatch, "front_desk", survivor)

    assert reply.errors == [] and reply.data == {"contactUpdate": {"name": "Li Lei Jr"}}, reply.errors
    row = await Contact.get(id=contact)
    assert (row.name, row.patient_id, row.version) == ("Li Lei Jr", survivor, 2)
    assert await contact_updates(tenant) == [survivor]


async def test_a_contact_moved_out_of_reach_by_a_merge_is_not_changed(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the survivor is a file of department B, which the nurse (department A) does not reach:
    NOT_FOUND, as the contact now is for them, recorded; nothing written."""
    survivor = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))

    reply, contact, _ = await contact_changed_across_a_merge(tenant, monkeypatch, "nurse", survivor)

    assert reply.codes == ["NOT_FOUND"], reply.errors
    row = await Contact.get(id=contact)
    assert (row.name, row.patient_id, row.version) == ("Li Lei", survivor, 1)
    assert await contact_updates(tenant) == []
    denied = await tenant.audit_events(outcome="denied", resource_type="contact")
    assert [(e.actor_id, e.reason, e.resource_id) for e in denied] == [(tenant.staff_ids["nurse"], "not_found",
                                                                         contact)]


async def contact_updates(tenant: Tenant) -> list[uuid.UUID | None]:
    """The files the trail's allowed contact updates are recorded on."""
    return [e.patient_id for e in await tenant.audit_events(resource_type="contact", action=Action.UPDATE,
                                                            outcome="allowed")]


async def test_a_merged_files_care_team_takes_no_one(tenant: Tenant) -> None:
    """careTeamAssign looked the file up without its status: a place on a merged file's team was written and
    reached nothing. It is refused as every write adding to a merged file (found in review); leaving a merged
    file's team stays allowed, and the twin on the survivor is written."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    await assign(tenant, duplicate, "nurse")
    assert (await merge(tenant, survivor, duplicate)).errors == []
    members = await CareTeamMember.filter(institution_id=tenant.id).count()

    refused = await tenant.call("admin", CARE_ASSIGN, p=str(duplicate), s=str(tenant.staff_ids["doctor"]))

    assert refused.codes == ["CONFLICT"] and refused.errors[0]["extensions"]["reason"] == "merged", refused.errors
    assert await CareTeamMember.filter(institution_id=tenant.id).count() == members
    assert await merged_refusals(tenant, duplicate) == 1
    allowed = await tenant.call("admin", CARE_ASSIGN, p=str(survivor), s=str(tenant.staff_ids["doctor"]))
    assert allowed.errors == [] and allowed.data == {"careTeamAssign": True}
