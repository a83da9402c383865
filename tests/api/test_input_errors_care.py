"""Every invalid field of an input in one answer, with its path and reason, and nothing written: schedules and
their exceptions, care plans, alerts on the file, the improvement list and the service catalogue."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from models import ImprovementItem
from tests.api import test_care_plans as plans
from tests.api import test_flags as flags
from tests.api import test_improvement_items as improvements
from tests.api import test_schedules as schedules
from tests.api import test_service_catalogue as catalogue
from tests.api.test_input_errors import problems
from tests.factories import Tenant, make_patient


def schedule_input(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {"name": "Dr Wang", "kind": "CLINICIAN", "clinicianId": str(tenant.staff_ids["doctor"]),
            "departmentId": str(tenant.departments["A"].id), "week": schedules.WEEKDAYS, "slotMinutes": 30,
            **fields}


@pytest.mark.parametrize(("bad", "expected"), [
    ({"name": "  ", "slotMinutes": 4, "capacity": 51, "kind": "RESOURCE"},
     [("input.capacity", "out_of_range"), ("input.clinicianId", "invalid"), ("input.name", "required"),
      ("input.slotMinutes", "out_of_range")]),
    ({"capacity": 0, "week": [{"weekday": 1, "sessions": [{"start": "08:00", "end": "08:20"}]}]},  # under a slot
     [("input.capacity", "out_of_range"), ("input.week", "invalid")]),
    ({"clinicianId": "other", "departmentId": "other"},  # the records named: both looked up, refused together
     [("input.clinicianId", "invalid"), ("input.departmentId", "invalid")]),
])
async def test_schedule_create_reports_every_problem(tenant: Tenant, other_tenant: Tenant, bad: dict[str, Any],
                                                     expected: list[tuple[str, str]]) -> None:
    others = {"clinicianId": str(other_tenant.staff_ids["doctor"]),
              "departmentId": str(other_tenant.departments["A"].id)}
    before = await schedules.written(tenant)

    reply = await tenant.call("admin", schedules.CREATE, input=schedule_input(
        tenant, **{name: others[name] if value == "other" else value for name, value in bad.items()}))

    assert sorted(problems(reply)) == expected
    assert await schedules.written(tenant) == before


async def test_schedule_update_reports_every_problem(tenant: Tenant) -> None:
    created = await schedules.a_schedule(tenant)
    before = await schedules.written(tenant)

    reply = await tenant.call("admin", schedules.UPDATE, id=created["id"], version=1, input={
        "name": "x" * 101, "capacity": 0, "kind": "RESOURCE"})  # a resource's schedule keeps the clinician named

    assert sorted(problems(reply)) == [("input.capacity", "out_of_range"), ("input.clinicianId", "invalid"),
                                       ("input.name", "too_long")]
    assert await schedules.written(tenant) == before


async def test_schedule_exception_reports_every_problem(tenant: Tenant) -> None:
    created = await schedules.a_schedule(tenant)
    before = await schedules.written(tenant)

    reply = await tenant.call("admin", schedules.EXCEPTION_ADD, id=created["id"], input=schedules._exception(
        endsAt=schedules.local(schedules.MONDAY, 8).isoformat(), capacity=3, reason="x" * 201))

    assert problems(reply) == [("input.capacity", "invalid"), ("input.endsAt", "invalid"),
                               ("input.reason", "too_long")]
    assert await schedules.written(tenant) == before


@pytest.mark.parametrize(("bad", "expected"), [
    ({"title": " ", "endsOn": "2026-11-30", "activities": [
        {"kind": "CALL"}, {"kind": "CALL", "afterDays": -1}, {"kind": "CALL", "afterDays": 1, "description": "\x00"}]},
     [("input.title", "required"), ("input.endsOn", "invalid"), ("input.activities[0].dueOn", "one_of"),
      ("input.activities[1].afterDays", "out_of_range"), ("input.activities[2].dueOn", "out_of_range"),
      ("input.activities[2].description", "invalid")]),
    ({"goals": "x" * 4001, "activities": [{"kind": "CALL", "afterDays": 1}] * 31},
     [("input.goals", "too_long"), ("input.activities", "item_count")]),
    ({"visitId": str(uuid.uuid4()), "departmentId": str(uuid.uuid4())},  # both looked up, refused together
     [("input.departmentId", "invalid"), ("input.visitId", "invalid")]),
])
async def test_care_plan_create_reports_every_problem(tenant: Tenant, bad: dict[str, Any],
                                                      expected: list[tuple[str, str]]) -> None:
    pid = await make_patient(tenant)
    before = await plans.snapshot(tenant)

    reply = await tenant.call("doctor", plans.CREATE, input={"patientId": str(pid), **plans.IMPLANT_PLAN, **bad})

    assert problems(reply) == expected
    assert await plans.snapshot(tenant) == before


async def test_flag_create_reports_every_problem(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await flags.snapshot(tenant)

    reply = await tenant.call("nurse", flags.CREATE, input={
        "patientId": str(pid), "kind": "SPECIAL_NEEDS", "detail": "x" * 501, "startsOn": "2026-02-01",
        "endsOn": "2026-01-01"})

    assert problems(reply) == [("input.detail", "too_long"), ("input.endsOn", "invalid")]
    assert await flags.snapshot(tenant) == before


async def test_flag_update_reports_every_problem(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    flag = await flags.raise_flag(tenant, pid, "FALL_RISK", detail="Walks with a frame")
    before = await flags.snapshot(tenant)

    reply = await tenant.call("nurse", flags.UPDATE, id=flag["id"], input={
        "status": None, "detail": "\u200fhidden", "endsOn": "2000-01-01"})  # ends before the flag's start

    assert sorted(problems(reply)) == [("input.detail", "invalid"), ("input.endsOn", "invalid"),
                                       ("input.status", "required")]
    assert await flags.snapshot(tenant) == before


async def test_improvement_create_reports_every_problem(tenant: Tenant) -> None:
    reply = await tenant.call("support_agent", improvements.CREATE, input=improvements.item(
        tenant, problem="", measure="x" * 1001, source="SURVEY",
        ticketIds=[str(uuid.uuid4()) for _ in range(201)]))

    assert sorted(problems(reply)) == [("input.measure", "too_long"), ("input.problem", "required"),
                                       ("input.surveyCitation", "required"), ("input.ticketIds", "item_count")]
    assert await ImprovementItem.filter(institution_id=tenant.id).count() == 0


async def test_improvement_update_reports_every_problem(tenant: Tenant) -> None:
    created = await tenant.call("support_agent", improvements.CREATE, input=improvements.item(tenant))
    item_id = created.data["improvementCreate"]["id"]
    before = await improvements.rows(tenant)

    reply = await tenant.call("support_agent", improvements.UPDATE, id=item_id, input={
        "problem": " ", "deadline": None, "measure": "bad\u202emeasure"})

    assert sorted(problems(reply)) == [("input.deadline", "required"), ("input.measure", "invalid"),
                                       ("input.problem", "required")]
    assert await improvements.rows(tenant) == before


async def test_service_item_create_reports_every_argument_at_fault(tenant: Tenant) -> None:
    before = await catalogue.items_of(tenant)

    reply = await tenant.call("admin", catalogue.CREATE, **{**catalogue.NURSING, "code": "HN 01", "name": "  ",
                                                            "standard": "S" * 4001, "frequencies": []})

    assert problems(reply) == [("code", "invalid"), ("name", "required"), ("standard", "too_long"),
                               ("frequencies", "required")]
    assert await catalogue.items_of(tenant) == before


async def test_service_item_update_reports_every_problem(tenant: Tenant) -> None:
    item = await catalogue.an_item(tenant)
    before = await catalogue.items_of(tenant)

    reply = await tenant.call("admin", catalogue.UPDATE, id=item["id"], v=1, input={
        "name": None, "description": "D" * 2001, "unit": None, "frequencies": []})

    assert sorted(problems(reply)) == [("input.description", "too_long"), ("input.frequencies", "required"),
                                       ("input.name", "required"), ("input.unit", "required")]
    assert await catalogue.items_of(tenant) == before


async def test_a_price_version_reports_every_way_it_does_not_follow_the_last(tenant: Tenant) -> None:
    item = await catalogue.an_item(tenant)
    await catalogue.priced(tenant, item["id"], "100.00", "2026-07-01")
    before = await catalogue.prices_of(tenant)
    earlier = (date(2026, 7, 1) - timedelta(days=1)).isoformat()

    reply = await catalogue.add_price(tenant, item["id"], "120.00", earlier, currency="HKD")

    assert problems(reply) == [("price.currency", "currency_mismatch"), ("effectiveFrom", "invalid")]
    assert await catalogue.prices_of(tenant) == before
