"""A ticket names other records: the contact who reported (one of the patient's), a department, a colleague to hand it
over or assign it to. One that is missing, another institution's or (a contact) another patient's answers NOT_FOUND
at the argument that named it, nothing written, and the attempt on the trail as one refusal naming the record (found
in review: these three lookups refused without a record, where every other lookup of the institution records one)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from models import Contact
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark, stored

CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
HANDOVER_TO_STAFF = "mutation($id: ID!, $to: ID!) { ticketHandover(id: $id, toStaffId: $to) { id } }"
HANDOVER_TO_DEPARTMENT = "mutation($id: ID!, $to: ID!) { ticketHandover(id: $id, toDepartmentId: $to) { id } }"
ASSIGN = "mutation($id: ID!, $to: ID!) { ticketAssign(id: $id, assigneeId: $to) { id } }"


async def opened(tenant: Tenant, patient: uuid.UUID) -> str:
    reply = await tenant.call("support_agent", CREATE, input={
        "channel": "FRONT_DESK", "category": "REQUEST", "subject": "Lost my invoice", "patientId": str(patient)})
    assert reply.errors == [], reply.errors
    return str(reply.data["ticketCreate"]["id"])


async def refused(tenant: Tenant, query: str, field: str, audited: tuple[str, str], record: uuid.UUID,
                  patient: uuid.UUID | None = None, **variables: Any) -> None:
    before, seq = await stored(tenant), await mark(tenant.id)
    reply = await tenant.call("support_agent", query, **variables)
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [(*audited, "not_found", record, patient)]


@pytest.mark.parametrize("whose", ["missing", "other institution's"])
async def test_a_colleague_or_department_out_of_the_institution_is_not_found_and_on_the_trail(
        tenant: Tenant, other_tenant: Tenant, whose: str) -> None:
    ticket = await opened(tenant, await make_patient(tenant))
    staff = uuid.uuid4() if whose == "missing" else other_tenant.staff_ids["support_agent"]
    department = uuid.uuid4() if whose == "missing" else other_tenant.departments["A"].id
    await refused(tenant, HANDOVER_TO_STAFF, "toStaffId", ("update", "staff"), staff, id=ticket, to=str(staff))
    await refused(tenant, HANDOVER_TO_DEPARTMENT, "toDepartmentId", ("update", "department"), department,
                  id=ticket, to=str(department))
    await refused(tenant, ASSIGN, "assigneeId", ("update", "staff"), staff, id=ticket, to=str(staff))
    await refused(tenant, CREATE, "input.departmentId", ("create", "department"), department, input={
        "channel": "FRONT_DESK", "category": "REQUEST", "subject": "Lost my invoice", "callerName": "Wang Fang",
        "departmentId": str(department)})


async def test_another_patients_contact_is_not_found_and_on_the_trail(tenant: Tenant) -> None:
    patient, other = await make_patient(tenant), await make_patient(tenant)
    theirs = await Contact.create(institution_id=tenant.id, patient_id=other, name="Li Na", relationship="child")
    for contact in (theirs.id, uuid.uuid4()):
        await refused(tenant, CREATE, "input.contactId", ("create", "contact"), contact, patient, input={
            "channel": "HOTLINE", "category": "REQUEST", "subject": "Calling for mother", "patientId": str(patient),
            "contactId": str(contact)})
