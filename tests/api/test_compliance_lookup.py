"""A compliance officer finds the patient a question is about (issue 18): by name, birth date or ID number, through
the patient list; identity only (every other class is FORBIDDEN), every lookup on the trail."""

from __future__ import annotations

from typing import Any

from core.validation import resident_id_check_digit
from tests.factories import Tenant, make_patient

LOOKUP = """query($filter: PatientFilter) {
  patients(first: 20, filter: $filter) { nodes { id fullName birthDate } }
}"""
CLINICAL = """query($filter: PatientFilter) {
  patients(first: 20, filter: $filter) { nodes { id fullName diagnoses phone specialNeeds } }
}"""
FIRST17 = "11010519800101123"
RESIDENT_ID = FIRST17 + resident_id_check_digit(FIRST17)


async def _asked_about(tenant: Tenant) -> tuple[str, str]:
    """The patient a question is about, and a namesake born another day (both in department A)."""
    pid = await make_patient(tenant, "nurse", fullName="王小明", birthDate="1980-01-01", nationalIdType="RESIDENT_ID",
                             nationalId=RESIDENT_ID, diagnoses="Periodontitis", phone="13800138000")
    namesake = await make_patient(tenant, "nurse", fullName="王小明", birthDate="1991-05-06")
    return str(pid), str(namesake)


async def _lookup(tenant: Tenant, query: str = LOOKUP, **filter_: Any) -> Any:
    return await tenant.call("compliance_officer", query, filter=filter_)


def _ids(reply: Any) -> set[str]:
    assert reply.errors == [], reply.errors
    return {node["id"] for node in reply.data["patients"]["nodes"]}


async def test_a_compliance_officer_finds_a_patient_by_name_birth_date_or_id_number(tenant: Tenant) -> None:
    pid, namesake = await _asked_about(tenant)
    assert _ids(await _lookup(tenant, name="wangxiaoming")) == {pid, namesake}
    assert _ids(await _lookup(tenant, name="wxm", birthDate="1980-01-01")) == {pid}
    assert _ids(await _lookup(tenant, birthDate="1991-05-06")) == {namesake}
    assert _ids(await _lookup(tenant, nationalIdType="RESIDENT_ID", nationalId=RESIDENT_ID)) == {pid}
    reply = await _lookup(tenant, nationalIdType="RESIDENT_ID", nationalId=RESIDENT_ID)
    assert reply.data["patients"]["nodes"] == [{"id": pid, "fullName": "王小明", "birthDate": "1980-01-01"}]


async def test_the_lookup_shows_identity_only_and_is_on_the_trail(tenant: Tenant) -> None:
    pid, _ = await _asked_about(tenant)
    officer = tenant.staff_ids["compliance_officer"]
    mark = await tenant.audit_count()
    reply = await _lookup(tenant, CLINICAL, birthDate="1980-01-01")
    node = reply.data["patients"]["nodes"][0]
    assert node["id"] == pid and node["fullName"] == "王小明"
    assert node["diagnoses"] is None and node["phone"] is None and node["specialNeeds"] is None
    assert set(reply.codes) == {"FORBIDDEN"} and len(reply.errors) == 3
    assert "Periodontitis" not in str(reply.body) and "13800138000" not in str(reply.body)
    events = (await tenant.audit_events(actor_id=officer))[-(await tenant.audit_count() - mark):]
    on_file = [e for e in events if e.patient_id is not None and str(e.patient_id) == pid]
    assert {(e.outcome, e.field_classes) for e in on_file} >= {("allowed", "identity")}
    assert any(e.outcome == "denied" and e.reason == "forbidden_field" for e in on_file)
    assert all("clinical" not in e.field_classes for e in on_file if e.outcome == "allowed")


async def test_a_lookup_by_a_field_the_officer_may_not_read_is_refused_and_audited(tenant: Tenant) -> None:
    await _asked_about(tenant)
    mark = await tenant.audit_count()
    reply = await _lookup(tenant, phone="13800138000")  # the phone is contact class: not the officer's
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    denied = (await tenant.audit_events(actor_id=tenant.staff_ids["compliance_officer"], outcome="denied"))
    assert denied and denied[-1].reason == "forbidden" and await tenant.audit_count() == mark + 1


async def test_the_admin_without_identity_read_finds_nobody_by_birth_date(tenant: Tenant) -> None:
    await _asked_about(tenant)
    reply = await tenant.call("admin", LOOKUP, filter={"birthDate": "1980-01-01"})
    assert reply.codes == ["FORBIDDEN"]
    assert (await tenant.audit_events(actor_id=tenant.staff_ids["admin"], outcome="denied"))[-1].reason == "forbidden"


async def test_the_officer_finds_no_patient_of_another_institution(tenant: Tenant, other_tenant: Tenant) -> None:
    foreign, _ = await _asked_about(other_tenant)
    assert _ids(await _lookup(tenant, nationalIdType="RESIDENT_ID", nationalId=RESIDENT_ID)) == set()
    assert _ids(await _lookup(tenant, birthDate="1980-01-01")) == set()
    assert (await tenant.call("compliance_officer", "query($id: ID!) { patient(id: $id) { id } }",
                              id=foreign)).codes == ["NOT_FOUND"]
