"""Extreme but valid dates (year 1, year 9999) through every kind of date argument: data or BAD_USER_INPUT at
the argument's place, never an unexpected error (an OverflowError once a day is moved to UTC or a day added),
and a refused mutation writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from models import CarePlan, FollowUpTask
from tests.api.test_appointments import make_schedule
from tests.factories import Tenant, make_patient

EXTREMES = ["0001-01-01", "9999-12-31"]
SCHEDULE_DAY = "query($d: Date!, $s: ID!) { scheduleDay(scheduleId: $s, date: $d) { nodes { id } } }"
CLINICIAN_DAY = "query($d: Date!, $c: ID!) { clinicianDay(clinicianId: $c, date: $d) { nodes { id } } }"
PARETO = "query($d: Date!, $dep: ID) { complaintPareto(from: $d, to: $d, departmentId: $dep) { cause } }"
WORKLIST = "query($d: Date) { followUpWorklist(dueBy: $d) { __typename } }"
CONTRACTS = "query($d: Date) { contracts(first: 2, filter: {endingBefore: $d}) { nodes { id } } }"
PATIENTS = "query($d: Date) { patients(first: 2, filter: {birthDate: $d}) { nodes { id } } }"
PLAN = "mutation($i: CarePlanCreateInput!) { carePlanCreate(input: $i) { id } }"
TASK = "mutation($i: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $i) { id } }"

# (role, query, variables: "$d" is the extreme date, "$pid" the patient, "$s"/"$c"/"$dep" set-up ids; the field a
# refusal names, None when data is the answer, "*" for either)
PROBES: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("front_desk", SCHEDULE_DAY, {"d": "$d", "s": "$s"}, "date"),
    ("front_desk", CLINICIAN_DAY, {"d": "$d", "c": "$c"}, "date"),
    ("department_head", PARETO, {"d": "$d", "dep": "$dep"}, "from"),
    ("nurse", WORKLIST, {"d": "$d"}, None),
    ("admin", CONTRACTS, {"d": "$d"}, None),
    ("front_desk", PATIENTS, {"d": "$d"}, None),
    ("doctor", PLAN, {"i": {"patientId": "$pid", "title": "Plan", "startsOn": "$d",
                            "activities": [{"kind": "CALL", "afterDays": 1}]}}, "*"),
    ("nurse", TASK, {"i": {"patientId": "$pid", "dueOn": "$d"}}, "input.dueOn"),
]


def filled(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, ids) for v in value]
    return ids.get(value, value) if isinstance(value, str) else value


async def written(tenant: Tenant) -> tuple[int, int]:
    return (await CarePlan.filter(institution_id=tenant.id).count(),
            await FollowUpTask.filter(institution_id=tenant.id).count())


@pytest.mark.parametrize("day", EXTREMES)
async def test_an_extreme_date_is_data_or_bad_input_never_an_unexpected_error(tenant: Tenant, day: str) -> None:
    ids = {"$d": day, "$pid": str(await make_patient(tenant)), "$s": await make_schedule(tenant),
           "$c": str(tenant.staff_ids["doctor"]), "$dep": str(tenant.departments["A"].id)}
    for role, query, variables, field in PROBES:
        before = await written(tenant)
        reply = await tenant.call(role, query, **filled(variables, ids))
        assert "INTERNAL_SERVER_ERROR" not in reply.codes, (query, reply.errors)
        if field is None:
            assert reply.errors == [], (query, reply.errors)
        elif field != "*":
            assert reply.codes == ["BAD_USER_INPUT"], (query, reply.errors)
            assert reply.errors[0]["extensions"]["field"] == field, (query, reply.errors)
            assert day not in reply.errors[0]["message"]
        if reply.errors:
            assert await written(tenant) == before, query


async def test_a_plan_whose_activity_would_fall_after_the_calendar_is_refused_there(tenant: Tenant) -> None:
    pid = str(await make_patient(tenant))

    reply = await tenant.call("doctor", PLAN, i={"patientId": pid, "title": "Plan", "startsOn": "9999-12-31",
                                                 "activities": [{"kind": "CALL", "afterDays": 1}]})

    assert [(p["field"], p["reason"]) for p in reply.errors[0]["extensions"]["invalid"]] == [
        ("input.activities[0].afterDays", "out_of_range")]
    assert await written(tenant) == (0, 0)


MONTH_REPORTS = [
    ("department_head", "query($m: String!, $dep: ID!) { ticketReport(month: $m, departmentId: $dep) "
                        "{ tickets } }", {"m": "$m", "dep": "$dep"}, "month"),
    ("department_head", "query($m: String!, $dep: ID!) { visitReport(month: $m, departmentId: $dep) "
                        "{ noShows } }", {"m": "$m", "dep": "$dep"}, "month"),
    ("admin", "query($m: String!) { contractReport(from: $m, to: \"2026-01\") { months { month } } }",
     {"m": "$m"}, "from"),
    ("admin", "query($m: String!) { contractReport(from: \"2026-01\", to: $m) { months { month } } }",
     {"m": "$m"}, "to"),
]


@pytest.mark.parametrize("month", ["0001-01", "9999-12", "1999-12", "2200-01"])
async def test_a_report_month_outside_the_years_reports_deal_in_is_refused_at_its_place(
        tenant: Tenant, month: str) -> None:
    ids = {"$m": month, "$dep": str(tenant.departments["A"].id)}
    for role, query, variables, field in MONTH_REPORTS:
        reply = await tenant.call(role, query, **filled(variables, ids))

        assert reply.codes == ["BAD_USER_INPUT"], (query, reply.errors)
        assert reply.errors[0]["extensions"]["field"] == field, (query, reply.errors)
        assert reply.errors[0]["extensions"]["reason"] == "out_of_range", (query, reply.errors)
        assert month not in reply.errors[0]["message"]


@pytest.mark.parametrize("month", ["2000-01", "2199-12"])
async def test_a_report_month_at_the_edge_of_those_years_is_answered(tenant: Tenant, month: str) -> None:
    ids = {"$m": month, "$dep": str(tenant.departments["A"].id)}
    both_ends = ("admin", "query($m: String!) { contractReport(from: $m, to: $m) { months { month } } }", {"m": "$m"})
    for role, query, variables, *_ in [*MONTH_REPORTS[:2], both_ends]:
        reply = await tenant.call(role, query, **filled(variables, ids))

        assert reply.errors == [], (query, reply.errors)
