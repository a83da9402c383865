"""Values at the edge of what the database holds or the calendar means, each a coded error with nothing written,
never INTERNAL_SERVER_ERROR (found by a review that called every mutation with hostile values on both databases):
a version at GraphQL's largest Int (PostgreSQL cannot count past it), a NUL in a catalogue code (PostgreSQL refuses
it in text), an optional create field given as null, and days outside the years the institution deals in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from models import BusinessCalendar, CarePlan, Communication, Flag, FollowUpRule, ImprovementItem, SurveyTrigger, Visit
from tests.api.test_input_errors import problems
from tests.factories import Tenant, make_patient
from tests.surveys import questionnaire, trigger

LARGEST_INT = 2**31 - 1
RULE_CREATE = "mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) { id } }"
DEACTIVATE = "mutation($id: ID!, $version: Int) { surveyTriggerDeactivate(id: $id, version: $version) { id } }"
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
MOVE = """mutation($id: ID!, $to: VisitStatus!, $version: Int) {
  visitTransition(id: $id, to: $to, version: $version) { id status } }"""
IMPROVEMENT = "mutation($input: ImprovementCreateInput!) { improvementCreate(input: $input) { id measure source } }"
LOG_CALL = "mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
CALENDAR = "mutation($input: BusinessCalendarInput!) { businessCalendarSet(input: $input) { levels { level } } }"
WEEK = [{"weekday": day, "intervals": [{"start": "08:30", "end": "17:30"}]} for day in range(1, 6)]


async def test_a_trigger_version_at_the_largest_int_is_a_conflict(tenant: Tenant) -> None:
    made = await trigger(tenant, await questionnaire(tenant))
    reply = await tenant.call("admin", DEACTIVATE, id=made["id"], version=LARGEST_INT)
    assert reply.codes == ["CONFLICT"], reply.errors
    assert (await SurveyTrigger.get(id=made["id"])).active


async def test_a_visit_version_at_the_largest_int_is_a_conflict(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    made = await tenant.call("nurse", VISIT_CREATE, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id)})
    visit_id = made.data["visitCreate"]["id"]
    reply = await tenant.call("nurse", MOVE, id=visit_id, to="ARRIVED", version=LARGEST_INT)
    assert reply.codes == ["CONFLICT"], reply.errors
    assert (await Visit.get(id=visit_id)).status == "planned"
    moved = await tenant.call("nurse", MOVE, id=visit_id, to="ARRIVED", version=1)  # the stored version still counts
    assert moved.errors == [] and (await Visit.get(id=visit_id)).version == 2


async def test_a_nul_in_a_rule_procedure_code_is_not_a_catalogue_code(tenant: Tenant) -> None:
    before = await FollowUpRule.filter(institution_id=tenant.id).count()
    reply = await tenant.call("admin", RULE_CREATE, input={
        "name": "After an implant", "offsetsDays": [7], "assignee": "DEPARTMENT_POOL", "skipClosedDays": False,
        "procedureCode": "IMP\u0000LANT"})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.procedureCode"
    assert await FollowUpRule.filter(institution_id=tenant.id).count() == before


def improvement(tenant: Tenant, **more: Any) -> dict[str, Any]:
    return {"problem": "Long waits at the desk", "departmentId": str(tenant.departments["A"].id),
            "deadline": (date.today() + timedelta(days=30)).isoformat(), "source": "INTERNAL_CHECK", **more}


@pytest.mark.parametrize(("given", "stored"), [({"measure": None}, ("", "internal_check")),
                                                ({"source": None}, ("", "ticket"))])
async def test_an_optional_improvement_field_given_as_null_takes_its_default(
        tenant: Tenant, given: dict[str, Any], stored: tuple[str, str]) -> None:
    reply = await tenant.call("department_head", IMPROVEMENT, input=improvement(tenant, **given))
    assert reply.errors == [], reply.errors
    row = await ImprovementItem.get(id=reply.data["improvementCreate"]["id"])
    assert (row.measure, row.source) == stored


@pytest.mark.parametrize("deadline", ["0001-01-01", "1999-12-31", "2200-01-01", "9999-12-31"])
async def test_an_improvement_deadline_outside_the_years_is_refused(tenant: Tenant, deadline: str) -> None:
    before = await ImprovementItem.filter(institution_id=tenant.id).count()
    reply = await tenant.call("department_head", IMPROVEMENT, input=improvement(tenant, deadline=deadline))
    assert problems(reply) == [("input.deadline", "out_of_range")]
    assert await ImprovementItem.filter(institution_id=tenant.id).count() == before


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "1899-12-31T23:00:00Z"])
async def test_a_call_logged_before_the_records_began_is_refused(tenant: Tenant, when: str) -> None:
    pid = await make_patient(tenant)
    before = await Communication.filter(institution_id=tenant.id).count()
    reply = await tenant.call("front_desk", LOG_CALL, input={
        "patientId": str(pid), "direction": "OUTBOUND", "occurredAt": when})
    assert problems(reply) == [("input.occurredAt", "out_of_range")]
    assert await Communication.filter(institution_id=tenant.id).count() == before


async def test_a_call_from_paper_records_is_logged(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("front_desk", LOG_CALL, input={
        "patientId": str(pid), "direction": "INBOUND", "occurredAt": "1995-06-01T09:00:00+08:00"})
    assert reply.errors == [], reply.errors


@pytest.mark.parametrize(("field", "day"), [("startsOn", "0001-01-01"), ("startsOn", "9999-12-31"),
                                            ("endsOn", "9999-12-31")])
async def test_a_flag_outside_the_years_is_refused(tenant: Tenant, field: str, day: str) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", FLAG, input={"patientId": str(pid), "kind": "ALLERGY", "detail": "Nuts",
                                                    field: day})
    assert problems(reply) == [(f"input.{field}", "out_of_range")]
    assert await Flag.filter(institution_id=tenant.id).count() == 0


async def test_a_long_standing_flag_is_recorded(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", FLAG, input={"patientId": str(pid), "kind": "ALLERGY", "detail": "Nuts",
                                                    "startsOn": "1990-01-01"})
    assert reply.errors == [], reply.errors


@pytest.mark.parametrize(("field", "day"), [("startsOn", "0001-01-01"), ("startsOn", "9999-12-31"),
                                            ("endsOn", "9999-12-31")])
async def test_a_care_plan_outside_the_years_is_refused(tenant: Tenant, field: str, day: str) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("doctor", PLAN, input={"patientId": str(pid), "title": "Plan", field: day,
                                                     "activities": [{"kind": "CALL", "afterDays": 1}]})
    assert (f"input.{field}", "out_of_range") in problems(reply)
    assert await CarePlan.filter(institution_id=tenant.id).count() == 0


@pytest.mark.parametrize("field", ["holidays", "workdays"])
async def test_a_calendar_day_outside_the_years_is_refused(tenant: Tenant, field: str) -> None:
    before = await BusinessCalendar.filter(institution_id=tenant.id).values_list("holidays", "workdays")
    reply = await tenant.call("admin", CALENDAR, input={"week": WEEK, field: ["2031-10-01", "9999-12-31"]})
    assert problems(reply) == [(f"input.{field}", "out_of_range")]
    assert await BusinessCalendar.filter(institution_id=tenant.id).values_list("holidays", "workdays") == before
