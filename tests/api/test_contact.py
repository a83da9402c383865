"""A patient's contacts through the API: create, update, delete, who may, and phone numbers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from models import Contact
from tests.factories import Tenant, make_patient

FIELDS = "id patientId name relationship phone isEmergency mayReceiveInformation notes"
CREATE = f"""mutation($pid: ID!, $input: ContactCreateInput!) {{
  contactCreate(patientId: $pid, input: $input) {{ {FIELDS} }}
}}"""
UPDATE = f"""mutation($id: ID!, $input: ContactUpdateInput!) {{
  contactUpdate(id: $id, input: $input) {{ {FIELDS} }}
}}"""
DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"
READ = "query($id: ID!) { patient(id: $id) { id contacts { id name phone } } }"
CARE_ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"

SPOUSE = {"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"}


# -- helpers ---------------------------------------------------------------------------------


async def add_contact(tenant: Tenant, pid: uuid.UUID, role: str = "front_desk", **fields: Any) -> uuid.UUID:
    reply = await tenant.call(role, CREATE, pid=str(pid), input={**SPOUSE, **fields})
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])


async def contact_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await Contact.filter(institution_id=tenant.id).order_by("id").values()


async def denials(tenant: Tenant) -> list[tuple[uuid.UUID | None, str]]:
    return [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]


async def patient_of_b(tenant: Tenant) -> uuid.UUID:
    return await make_patient(tenant, departmentId=str(tenant.departments["B"].id))


# -- the life of a contact -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "nurse"])
async def test_create_update_delete(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)

    created = await tenant.call(role, CREATE, pid=str(pid), input={
        **SPOUSE, "phone": "139 0013 9000", "isEmergency": True, "notes": " Call after 6pm "})
    assert created.errors == []
    contact = created.data["contactCreate"]
    cid = contact.pop("id")
    assert contact == {"patientId": str(pid), "name": "Wang Fang", "relationship": "SPOUSE",
                       "phone": "+8613900139000", "isEmergency": True, "mayReceiveInformation": False,
                       "notes": "Call after 6pm"}

    updated = await tenant.call(role, UPDATE, id=cid, input={"notes": None, "mayReceiveInformation": True,
                                                             "relationship": "GUARDIAN"})
    assert updated.errors == []
    assert updated.data["contactUpdate"] == {"id": cid, "patientId": str(pid), "name": "Wang Fang",
                                             "relationship": "GUARDIAN", "phone": "+8613900139000",
                                             "isEmergency": True, "mayReceiveInformation": True, "notes": None}

    deleted = await tenant.call(role, DELETE, id=cid)
    assert (deleted.errors, deleted.data) == ([], {"contactDelete": cid})
    assert await contact_rows(tenant) == []
    assert (await tenant.call(role, READ, id=str(pid))).data["patient"]["contacts"] == []

    writes = [(e.action, e.resource_id, e.patient_id, e.actor_id)
              for e in await tenant.audit_events(resource_type="contact", outcome="allowed")
              if e.action != "read"]
    actor = tenant.staff_ids[role]
    assert writes == [(action, uuid.UUID(cid), pid, actor) for action in ("create", "update", "delete")]


async def test_contact_data_is_encrypted_at_rest(tenant: Tenant) -> None:
    cid = await add_contact(tenant, await make_patient(tenant), notes="Prefers WeChat")

    (stored,) = await contact_rows(tenant)

    assert stored["id"] == cid
    assert b"13900139000" not in bytes(stored["phone"])
    assert b"WeChat" not in bytes(stored["notes"])


async def test_reading_contacts_is_audited_on_the_patients_record(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)
    second = await add_contact(tenant, pid)
    before = await tenant.audit_count()

    reply = await tenant.call("support_agent", READ, id=str(pid))

    assert reply.errors == []
    assert [c["id"] for c in reply.data["patient"]["contacts"]] == [str(cid), str(second)]
    events = [e for e in await tenant.audit_events(action="read") if e.seq > before]
    assert [(e.actor_id, e.resource_type, e.resource_id, e.patient_id, e.field_classes, e.fields_read)
            for e in events] == [(tenant.staff_ids["support_agent"], "patient", pid, pid, "contact",
                                  "contact.phone")]


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["doctor", "support_agent", "department_head"])
async def test_readers_may_not_change_contacts(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)
    before = await contact_rows(tenant)

    attempts = [
        await tenant.call(role, CREATE, pid=str(pid), input={"name": "Li Na", "relationship": "CHILD"}),
        await tenant.call(role, UPDATE, id=str(cid), input={"name": "Li Na"}),
        await tenant.call(role, DELETE, id=str(cid)),
    ]

    assert [reply.codes for reply in attempts] == [["FORBIDDEN"]] * 3
    assert await contact_rows(tenant) == before
    assert await denials(tenant) == [(tenant.staff_ids[role], "forbidden")] * 3


async def test_patient_out_of_scope_hides_its_contacts(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    cid = await add_contact(tenant, pid)
    before = await contact_rows(tenant)

    attempts = [
        await tenant.call("nurse", CREATE, pid=str(pid), input={"name": "Li Na", "relationship": "CHILD"}),
        await tenant.call("nurse", UPDATE, id=str(cid), input={"name": "Li Na"}),
        await tenant.call("nurse", DELETE, id=str(cid)),
        await tenant.call("nurse", READ, id=str(pid)),
    ]

    assert [reply.codes for reply in attempts] == [["NOT_FOUND"]] * 4
    assert attempts[0].errors[0]["extensions"]["field"] == "patientId"
    assert await contact_rows(tenant) == before
    assert await denials(tenant) == [(tenant.staff_ids["nurse"], "not_found")] * 4


async def test_care_team_nurse_may_change_contacts_of_another_department(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    cid = await add_contact(tenant, pid)
    await tenant.call("admin", CARE_ASSIGN, pid=str(pid), sid=str(tenant.staff_ids["nurse"]))

    reply = await tenant.call("nurse", UPDATE, id=str(cid), input={"name": "Wang Li"})

    assert reply.errors == []
    assert reply.data["contactUpdate"]["name"] == "Wang Li"


async def test_contacts_of_another_institution_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    pid = await make_patient(other_tenant)
    cid = await add_contact(other_tenant, pid)
    before = await contact_rows(other_tenant)

    attempts = [
        await tenant.call("front_desk", CREATE, pid=str(pid), input={"name": "Li Na", "relationship": "CHILD"}),
        await tenant.call("front_desk", UPDATE, id=str(cid), input={"name": "Li Na"}),
        await tenant.call("front_desk", DELETE, id=str(cid)),
    ]

    assert [reply.codes for reply in attempts] == [["NOT_FOUND"]] * 3
    assert await contact_rows(other_tenant) == before
    assert await contact_rows(tenant) == []


async def test_missing_contact_is_not_found(tenant: Tenant) -> None:
    missing = uuid.uuid4()

    reply = await tenant.call("front_desk", DELETE, id=str(missing))

    assert reply.codes == ["NOT_FOUND"]
    (event,) = await tenant.audit_events(outcome="denied")
    assert (event.resource_type, event.resource_id, event.reason) == ("contact", missing, "not_found")


# -- phone numbers and other input -----------------------------------------------------------


@pytest.mark.parametrize(("typed", "stored"), [
    ("13900139000", "+8613900139000"),
    ("139 0013 9000", "+8613900139000"),
    ("139-0013-9000", "+8613900139000"),
    ("+86 139 0013 9000", "+8613900139000"),
    ("0086 139 0013 9000", "+8613900139000"),
    ("8613900139000", "+8613900139000"),
    ("+86 (010) 1234 5678", "+861012345678"),
    ("+86 21 1234 5678", "+862112345678"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+1 (415) 555-0100", "+14155550100"),
])
async def test_phone_is_stored_in_e164(tenant: Tenant, typed: str, stored: str) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid, phone="13800138000")

    created = await tenant.call("front_desk", CREATE, pid=str(pid), input={**SPOUSE, "phone": typed})
    updated = await tenant.call("front_desk", UPDATE, id=str(cid), input={"phone": typed})

    assert created.data["contactCreate"]["phone"] == stored
    assert updated.data["contactUpdate"]["phone"] == stored


@pytest.mark.parametrize("typed", [
    "12345", "139001390001", "+0123456789", "+86 139 0013 900", "+86 12 3456", "call me", "139.0013.9000",
    "+1234567890123456", "",
])
async def test_invalid_phone_is_bad_input_and_writes_nothing(tenant: Tenant, typed: str) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)
    before = await contact_rows(tenant)

    created = await tenant.call("front_desk", CREATE, pid=str(pid), input={**SPOUSE, "phone": typed})
    updated = await tenant.call("front_desk", UPDATE, id=str(cid), input={"phone": typed})

    for reply in (created, updated):
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == "input.phone"
    assert await contact_rows(tenant) == before


async def test_null_phone_clears_it(tenant: Tenant) -> None:
    cid = await add_contact(tenant, await make_patient(tenant))

    reply = await tenant.call("front_desk", UPDATE, id=str(cid), input={"phone": None})

    assert reply.data["contactUpdate"]["phone"] is None
    (stored,) = await contact_rows(tenant)
    assert (stored["phone"], stored["phone_bidx"]) == (None, None)


@pytest.mark.parametrize(("operation", "fields", "field"), [
    ("create", {"name": "x" * 101}, "input.name"),
    ("create", {"name": "   "}, "input.name"),
    ("create", {"name": "Wang\x1bFang"}, "input.name"),
    ("create", {"notes": "x" * 501}, "input.notes"),
    ("update", {"name": "x" * 101}, "input.name"),
    ("update", {"notes": "Line\x00"}, "input.notes"),
    ("update", {"name": None}, "input"),  # null leaves a name as it is: nothing to change
    ("update", {"relationship": None}, "input"),
    ("update", {}, "input"),
], ids=lambda value: str(value)[:30])
async def test_bad_contact_input_writes_nothing(tenant: Tenant, operation: str, fields: dict[str, Any], field: str
                                                ) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)
    before = await contact_rows(tenant)

    if operation == "create":
        reply = await tenant.call("front_desk", CREATE, pid=str(pid), input={**SPOUSE, **fields})
    else:
        reply = await tenant.call("front_desk", UPDATE, id=str(cid), input=fields)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert await contact_rows(tenant) == before


@pytest.mark.parametrize(("fields", "field"), [
    ({"isEmergency": None}, "input"),  # null leaves a flag as it is (tests/api/test_input_errors.py): no change
    ({"mayReceiveInformation": None}, "input"),
])
async def test_null_flag_alone_is_no_change(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    cid = await add_contact(tenant, await make_patient(tenant))
    before = await contact_rows(tenant)

    reply = await tenant.call("front_desk", UPDATE, id=str(cid), input=fields)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert await contact_rows(tenant) == before


async def test_malformed_contact_id_is_bad_input(tenant: Tenant) -> None:
    reply = await tenant.call("front_desk", DELETE, id="nope")

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "id"
