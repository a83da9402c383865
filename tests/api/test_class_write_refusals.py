"""A refused write of a field class names the class on the trail, as a refused read of it does (docs/security.md,
"Roles and least privilege"; found in review: a role without the right to write a class, such as the front desk
sending a patient's allergies, was refused and recorded, but the record named no class, so a compliance officer
could not tell which class was attempted). Like a refused read, it names the class and never a field or a value."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from models import Contact, Flag, Patient, Visit
from resolvers.context import Services
from tests.api.test_section_reach_changes import account
from tests.factories import Tenant, make_patient

SECRET = "Penicillin-zz-7731"
EVENTS = """query($filter: AuditEventFilter) { auditEvents(first: 50, filter: $filter) {
  nodes { action outcome resourceType patientId fieldClasses fieldsRead reason } } }"""
PATIENT_UPDATE = """mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"""
PATIENT_CREATE = """mutation($input: PatientCreateInput!) {
  patientCreate(input: $input, registerAnyway: true) { patient { id } } }"""
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
FLAG_CREATE = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) {
  id } }"""
SPOUSE = {"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"}

Attempt = Callable[[Tenant, uuid.UUID], Awaitable[Any]]


async def _update_allergies(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, PATIENT_UPDATE, id=str(pid), input={"allergies": SECRET})


async def _update_phone(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, PATIENT_UPDATE, id=str(pid), input={"phone": "13900001111"})


async def _create_with_allergies(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, PATIENT_CREATE, input={
        "fullName": "Quentin Refusedwrite", "departmentId": str(tenant.departments["A"].id), "allergies": SECRET})


async def _visit_with_summary(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, VISIT_CREATE, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "summary": SECRET})


async def _allergy_flag(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, FLAG_CREATE, input={"patientId": str(pid), "kind": "ALLERGY", "detail": SECRET})


async def _vip_flag(tenant: Tenant, pid: uuid.UUID, role: str) -> Any:
    return await tenant.call(role, FLAG_CREATE, input={"patientId": str(pid), "kind": "VIP", "detail": SECRET})


# name: (attempt, refused role, its allowed twin, the class, the action and resource the trail records, on the file)
CASES: dict[str, tuple[Callable[..., Awaitable[Any]], str, str, str, str, str, bool]] = {
    "patientUpdate allergies": (_update_allergies, "front_desk", "nurse", "CLINICAL", "UPDATE", "patient", True),
    "patientUpdate phone": (_update_phone, "doctor", "nurse", "CONTACT", "UPDATE", "patient", True),
    "patientCreate allergies": (_create_with_allergies, "front_desk", "nurse", "CLINICAL", "CREATE", "patient",
                                False),
    "visitCreate summary": (_visit_with_summary, "front_desk", "nurse", "CLINICAL", "CREATE", "visit", True),
    "flagCreate allergy detail": (_allergy_flag, "front_desk", "nurse", "CLINICAL", "CREATE", "flag", True),
    "flagCreate vip detail": (_vip_flag, "department_head", "nurse", "INTERNAL", "CREATE", "flag", True),
}


async def _stored(tenant: Tenant) -> tuple[int, ...]:
    return (await Patient.filter(institution_id=tenant.id).count(),
            await Visit.filter(institution_id=tenant.id).count(),
            await Flag.filter(institution_id=tenant.id).count())


async def _events(tenant: Tenant, **filters: Any) -> list[dict[str, Any]]:
    reply = await tenant.call("compliance_officer", EVENTS, filter=filters)
    assert reply.errors == [], reply.errors
    assert SECRET not in str(reply.body)
    return list(reply.data["auditEvents"]["nodes"])


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
async def test_a_refused_class_write_names_the_class(tenant: Tenant, case: str) -> None:
    attempt, refused, _, field_class, action, resource_type, on_file = CASES[case]
    pid = await make_patient(tenant, "nurse")
    before = await _stored(tenant)

    reply = await attempt(tenant, pid, refused)

    assert reply.codes == ["FORBIDDEN"] and SECRET not in str(reply.body)
    assert await _stored(tenant) == before  # nothing written
    [denied] = await _events(tenant, outcome="DENIED")
    assert denied == {"action": action, "outcome": "DENIED", "resourceType": resource_type,
                      "patientId": str(pid) if on_file else None, "fieldClasses": [field_class],
                      "fieldsRead": [], "reason": "forbidden"}


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
async def test_the_allowed_class_write_names_the_class_too(tenant: Tenant, case: str) -> None:
    """The twin: the role that may write the class does, and its write's record names the class (the patient's
    record; a visit's or a flag's names its fields, which the class is read from)."""
    attempt, _, allowed, field_class, action, resource_type, _ = CASES[case]
    pid = await make_patient(tenant, "nurse")

    reply = await attempt(tenant, pid, allowed)

    assert reply.errors == [], reply.errors
    assert await _events(tenant, outcome="DENIED") == []
    written = [e for e in await _events(tenant, action=action, resourceType=resource_type) if e["outcome"] == "ALLOWED"]
    assert written
    if resource_type == "patient":
        assert field_class in written[0]["fieldClasses"]


async def test_a_contact_refused_on_a_file_whose_contact_class_is_not_read_names_the_class(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """A nurse of department B who also works in finance reads only the identity of a file of department A: her
    contact there is refused as a write of its contact class, and names it; on her own department's file it goes."""
    who = await account(tenant, services, client, "finance_nurse", ["finance", "nurse"])
    in_a = await make_patient(tenant, departmentId=str(tenant.departments["A"].id))
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))

    refused = await tenant.call(who, CONTACT_CREATE, pid=str(in_a), input=SPOUSE)

    assert refused.codes == ["FORBIDDEN"]
    assert await Contact.filter(institution_id=tenant.id).count() == 0
    [denied] = await _events(tenant, outcome="DENIED")
    assert denied == {"action": "CREATE", "outcome": "DENIED", "resourceType": "contact", "patientId": str(in_a),
                      "fieldClasses": ["CONTACT"], "fieldsRead": [], "reason": "forbidden"}
    allowed = await tenant.call(who, CONTACT_CREATE, pid=str(in_b), input=SPOUSE)
    assert allowed.errors == [], allowed.errors
    assert len(await _events(tenant, outcome="DENIED")) == 1
