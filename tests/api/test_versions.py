"""Versions on the update mutations (issue 16): two clerks read version 1, the first update wins (version 2),
the second, still stating version 1, gets CONFLICT and writes nothing; updatedAt moves forward; a caller
without the right is refused whatever version it states."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tortoise.models import Model

from models import BusinessCalendar, Contact, Department, Flag, ImprovementItem, Partner, SlaPolicy, Staff
from tests.factories import Tenant, make_patient
from tests.partners import make_partner
from tests.patients import make_contact

Variables = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    role: str  # may make the change
    denied: str  # may not
    query: str  # takes $version, answers { version } at the mutation's root (or at `path`)
    model: type[Model]
    prepare: Callable[[Tenant], Awaitable[tuple[Any, Variables, Variables]]]  # row id, first change, second
    path: tuple[str, ...] = ()  # where `version` sits in the answer, below the root

    @property
    def root(self) -> str:
        return self.query.split("{", 2)[1].split("(")[0].strip()


async def a_contact(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    contact = await make_contact(tenant, await make_patient(tenant), "Wang Fang")
    return contact, {"id": str(contact), "input": {"name": "Wang Li"}}, {"id": str(contact), "input": {
        "name": "Wang Mei"}}


async def a_nurse(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    nurse = tenant.staff_ids["nurse"]
    return nurse, {"id": str(nurse), "input": {"name": "Zhou Min"}}, {"id": str(nurse), "input": {"name": "Zhou Jie"}}


async def department_b(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    department = tenant.departments["B"].id
    return department, {"id": str(department), "name": "Implants"}, {"id": str(department), "name": "Hygiene"}


async def a_partner(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    partner = await make_partner(tenant)
    return partner, {"id": str(partner), "active": False}, {"id": str(partner), "active": False}


async def a_flag(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    patient = await make_patient(tenant, "nurse")
    reply = await tenant.call("nurse", "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }",
                              input={"patientId": str(patient), "kind": "FALL_RISK", "detail": "Uses a cane"})
    assert reply.errors == [], reply.errors
    flag = reply.data["flagCreate"]["id"]
    return uuid.UUID(flag), {"id": flag, "input": {"endsOn": "2031-01-01"}}, {"id": flag, "input": {
        "endsOn": "2032-01-01"}}


async def an_improvement_item(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    reply = await tenant.call("support_agent", "mutation($input: ImprovementCreateInput!) { improvementCreate("
                              "input: $input) { id } }", input={
                                  "problem": "Long waits at the reception desk", "deadline": "2030-01-01",
                                  "departmentId": str(tenant.departments["A"].id)})
    assert reply.errors == [], reply.errors
    item = reply.data["improvementCreate"]["id"]
    return uuid.UUID(item), {"id": item, "input": {"measure": "A second desk"}}, {"id": item, "input": {
        "measure": "Appointments only"}}


async def sla_level(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    """Level 2 saved once (version 1): the defaults before are version 0."""
    targets = {"level": 2, "clock": "BUSINESS"}
    reply = await tenant.call("admin", SLA_SET, **targets, first=60, resolution=480, version=0)
    assert reply.errors == [], reply.errors
    row = await SlaPolicy.get(institution_id=tenant.id, level=2)
    return row.id, {**targets, "first": 90, "resolution": 480}, {**targets, "first": 30, "resolution": 240}


async def calendar(tenant: Tenant) -> tuple[Any, Variables, Variables]:
    reply = await tenant.call("admin", CALENDAR_SET, input=week("17:00"), version=0)
    assert reply.errors == [], reply.errors
    row = await BusinessCalendar.get(institution_id=tenant.id)
    return row.id, {"input": week("18:00")}, {"input": week("16:00")}


def week(end: str) -> Variables:
    return {"week": [{"weekday": day, "intervals": [{"start": "08:00", "end": end}]} for day in range(1, 6)]}


SLA_SET = """mutation($level: Int!, $first: Int!, $resolution: Int!, $clock: SlaClockKind!, $version: Int) {
  slaLevelSet(level: $level, firstResponseMinutes: $first, resolutionMinutes: $resolution, clock: $clock,
              version: $version) { levels { level version } calendar { version } }
}"""
CALENDAR_SET = """mutation($input: BusinessCalendarInput!, $version: Int) {
  businessCalendarSet(input: $input, version: $version) { calendar { version } }
}"""

CASES = [
    Case("contactUpdate", "front_desk", "finance", """mutation($id: ID!, $input: ContactUpdateInput!, $version: Int) {
      contactUpdate(id: $id, input: $input, version: $version) { version } }""", Contact, a_contact),
    Case("staffUpdate", "admin", "department_head", """mutation($id: ID!, $input: StaffUpdateInput!, $version: Int) {
      staffUpdate(id: $id, input: $input, version: $version) { version } }""", Staff, a_nurse),
    Case("departmentUpdate", "admin", "department_head", """mutation($id: ID!, $name: String!, $version: Int) {
      departmentUpdate(id: $id, name: $name, version: $version) { version } }""", Department, department_b),
    Case("partnerSetActive", "admin", "compliance_officer", """mutation($id: ID!, $active: Boolean!, $version: Int) {
      partnerSetActive(id: $id, active: $active, version: $version) { version } }""", Partner, a_partner),
    Case("flagUpdate", "nurse", "support_agent", """mutation($id: ID!, $input: FlagUpdateInput!, $version: Int) {
      flagUpdate(id: $id, input: $input, version: $version) { version } }""", Flag, a_flag),
    Case("improvementUpdate", "support_agent", "nurse", """mutation($id: ID!, $input: ImprovementUpdateInput!,
      $version: Int) { improvementUpdate(id: $id, input: $input, version: $version) { version } }""",
         ImprovementItem, an_improvement_item),
    Case("slaLevelSet", "admin", "department_head", SLA_SET, SlaPolicy, sla_level, ("levels", "1")),
    Case("businessCalendarSet", "admin", "support_agent", CALENDAR_SET, BusinessCalendar, calendar, ("calendar",)),
]


def version_in(case: Case, data: Any) -> int:
    found = data[case.root]
    for key in case.path:
        found = found[int(key)] if isinstance(found, list) else found[key]
    return int(found["version"])


async def row_of(case: Case, row_id: Any) -> dict[str, Any]:
    return (await case.model.filter(id=row_id).values())[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_second_of_two_clerks_gets_a_conflict(tenant: Tenant, case: Case) -> None:
    row_id, first, second = await case.prepare(tenant)
    read = await row_of(case, row_id)
    assert read["version"] == 1

    won = await tenant.call(case.role, case.query, **first, version=1)
    after_first = await row_of(case, row_id)
    lost = await tenant.call(case.role, case.query, **second, version=1)

    assert won.errors == [], won.errors
    assert version_in(case, won.data) == 2
    assert after_first["version"] == 2
    if "updated_at" in read:
        assert after_first["updated_at"] > read["updated_at"]
    assert lost.codes == ["CONFLICT"]
    assert lost.errors[0]["extensions"]["field"] == "version"
    assert lost.errors[0]["extensions"]["reason"] == "stale_version"  # one reason for every record
    assert await row_of(case, row_id) == after_first


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_without_a_version_the_change_goes_over_the_current_one(tenant: Tenant, case: Case) -> None:
    row_id, first, second = await case.prepare(tenant)

    one = await tenant.call(case.role, case.query, **first)
    two = await tenant.call(case.role, case.query, **second, version=None)

    assert one.errors == [] and two.errors == [], (one.errors, two.errors)
    assert version_in(case, two.data) == 3
    assert (await row_of(case, row_id))["version"] == 3


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_caller_without_the_right_is_refused_whatever_its_version(tenant: Tenant, case: Case) -> None:
    row_id, first, _ = await case.prepare(tenant)
    before, denied = await row_of(case, row_id), len(await tenant.audit_events(outcome="denied"))

    reply = await tenant.call(case.denied, case.query, **first, version=1)

    assert reply.codes == ["FORBIDDEN"]
    assert await row_of(case, row_id) == before
    assert [e.actor_id for e in (await tenant.audit_events(outcome="denied"))[denied:]] == [
        tenant.staff_ids[case.denied]]


async def test_settings_never_saved_are_version_0(tenant: Tenant) -> None:
    read = await tenant.call("admin", "{ slaSettings { levels { version } calendar { version } } }")
    stale = await tenant.call("admin", SLA_SET, level=1, first=30, resolution=60, clock="CALENDAR", version=1)

    assert read.data["slaSettings"] == {"levels": [{"version": 0}] * 3, "calendar": {"version": 0}}
    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["reason"] == "stale_version"
    assert not await SlaPolicy.exists(institution_id=tenant.id)
