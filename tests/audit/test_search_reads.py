"""A search that finds a file reads what it compared (found in review): a phone, ID number or family member's phone
that leads to a patient is on that patient's read record even when the page shows only ids, and so is the
registration check that answers "this person is on file". The plain list of ids still notes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from models import AuditEvent
from tests.api.test_compiled_reads import assert_same
from tests.factories import CREATE_PATIENT, Tenant, make_patient, subjects
from tests.patients import make_contact

SEARCH = "query($filter: PatientFilter) { patients(first: 50, filter: $filter) { nodes { id } } }"


async def reads_since(tenant: Tenant, seq: int) -> list[AuditEvent]:
    return [e for e in await tenant.audit_events(action="read") if e.seq > seq]


async def last_seq(tenant: Tenant) -> int:
    return (await tenant.audit_events())[-1].seq


def about(events: list[AuditEvent], patient_id: uuid.UUID) -> list[AuditEvent]:
    return [e for e in events if patient_id in {p for _, p in subjects(e)}]


@pytest.mark.parametrize(("role", "filter_", "field_class", "field"), [
    ("front_desk", {"phone": "+86 138 0013 8000"}, "contact", "phone"),
    ("front_desk", {"phoneLast4": "8000"}, "contact", "phone"),
    ("front_desk", {"nationalIdType": "RESIDENT_ID", "nationalId": "11010519491231002X"}, "identity",
     "national_id"),
    ("nurse", {"contactPhone": "13600007777"}, "contact", "contact.phone"),
])
async def test_a_search_that_finds_a_file_is_a_read_of_what_it_compared(
        tenant: Tenant, role: str, filter_: dict[str, Any], field_class: str, field: str) -> None:
    pid = await make_patient(tenant, phone="13800138000", nationalIdType="RESIDENT_ID",
                             nationalId="11010519491231002X")
    await make_contact(tenant, pid, "Mum", phone="13600007777")
    other = await make_patient(tenant, phone="13900139000")
    before = await last_seq(tenant)

    reply = await tenant.call(role, SEARCH, filter=filter_)

    assert reply.data["patients"]["nodes"] == [{"id": str(pid)}], reply.errors
    [read] = about(await reads_since(tenant, before), pid)
    assert read.outcome == "allowed" and read.actor_id == tenant.staff_ids[role]
    assert field_class in read.field_classes.split(",")
    assert field in read.fields_read.split(","), read.fields_read
    assert not about(await reads_since(tenant, before), other)


async def test_a_search_that_finds_nobody_and_the_plain_list_note_no_read(tenant: Tenant) -> None:
    await make_patient(tenant, phone="13800138000")
    before = await last_seq(tenant)
    assert (await tenant.call("front_desk", SEARCH, filter={"phone": "13911112222"})).data["patients"]["nodes"] == []
    assert (await tenant.call("front_desk", SEARCH, filter=None)).data["patients"]["nodes"]
    assert await reads_since(tenant, before) == []


async def test_a_search_reads_the_same_on_the_compiled_path(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    await make_contact(tenant, pid, "Mum", phone="13600007777")
    for filter_ in ({"phone": "13800138000"}, {"contactPhone": "13600007777"}):
        answer = await assert_same(tenant, tenant.tokens["nurse"], SEARCH, {"filter": filter_}, True, monkeypatch,
                                   caplog)
        assert answer.data["patients"]["nodes"] == [{"id": str(pid)}]


async def test_the_registration_check_that_finds_a_file_is_a_read_of_what_matched(tenant: Tenant) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    before = await last_seq(tenant)

    reply = await tenant.call("front_desk", CREATE_PATIENT, input={"fullName": "Someone Else", "phone": "13800138000"})

    assert reply.data["patientCreate"]["returningPatient"] == {"id": str(pid)}
    assert reply.data["patientCreate"]["matchedOn"] == ["PHONE"]
    [read] = about(await reads_since(tenant, before), pid)
    assert read.actor_id == tenant.staff_ids["front_desk"] and read.outcome == "allowed"
    assert "phone" in read.fields_read.split(",")
