"""Extreme but valid dates (year 1, year 9999) through every kind of date argument: data or BAD_USER_INPUT at
the argument's place, never an unexpected error (an OverflowError once a day is moved to UTC or a day added),
and a refused mutation writes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from models import CarePlan, Contract, ContractVersion, FollowUpTask, ServiceItemPrice, SurveyInvitation, Visit
from tests.api.test_appointments import make_schedule
from tests.contracts import draft, draft_input, item_input, make_item, signed
from tests.factories import Tenant, make_patient
from tests.surveys import questionnaire, reachable, trigger

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
        ("input.startsOn", "out_of_range"),  # a plan starts within the years 2000-2199 (found in review)
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


# -- stored dates that later code counts on from -------------------------------------------------------------
# A finished visit's end starts follow-up and survey timers, a contract's term its billing periods and renewal, a
# price's date the prices of contracts: each had to stay in the years the product deals in (2000-2199), or the
# mutation (or a later read) failed with an overflow. Each refusal writes nothing.

VISIT = "mutation($i: VisitCreateInput!) { visitCreate(input: $i) { id } }"
MOVE = "mutation($id: ID!, $at: DateTime) { visitTransition(id: $id, to: FINISHED, at: $at) { id } }"
START = "mutation($id: ID!, $to: VisitStatus!) { visitTransition(id: $id, to: $to) { id } }"
PRICE = ("mutation($item: ID!, $from: Date!) { serviceItemPriceAdd(itemId: $item, price: {amount: \"10.00\", "
         "currency: \"CNY\"}, effectiveFrom: $from) { id } }")
CONTRACT = "mutation($i: ContractCreateInput!) { contractCreate(input: $i) { id } }"
RENEW = "mutation($id: ID!, $i: ContractRenewInput!) { contractRenew(contractId: $id, input: $i) { id } }"
DISCLOSURES = "query($f: DateTime!, $t: DateTime!) { disclosures(from: $f, to: $t, first: 5) { __typename } }"


async def stored(tenant: Tenant) -> tuple[int, ...]:
    return (await Visit.filter(institution_id=tenant.id).count(),
            await FollowUpTask.filter(institution_id=tenant.id).count(),
            await SurveyInvitation.filter(institution_id=tenant.id).count(),
            await Contract.filter(institution_id=tenant.id).count(),
            await ServiceItemPrice.filter(institution_id=tenant.id).count())


def refused_at(reply: Any, field: str) -> None:
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    extensions = reply.errors[0]["extensions"]
    places = [(p["field"], p["reason"]) for p in extensions.get("invalid", [])] or [
        (extensions["field"], extensions.get("reason"))]
    assert (field, "out_of_range") in places, reply.errors


@pytest.mark.parametrize(("start", "end"), [("9999-12-31T00:00:00Z", "9999-12-31T01:00:00Z"),
                                            ("0001-01-01T11:00:00Z", "0001-01-01T12:00:00Z")])
async def test_a_visit_finished_outside_the_years_is_refused(tenant: Tenant, start: str, end: str) -> None:
    pid = await reachable(tenant)
    await trigger(tenant, await questionnaire(tenant), visitKind="PROCEDURE")  # a survey counts on from the end
    before = await stored(tenant)
    fields = {"patientId": str(pid), "kind": "PROCEDURE", "departmentId": str(tenant.departments["A"].id)}

    finished = await tenant.call("nurse", VISIT, i={**fields, "status": "FINISHED", "startedAt": start, "endedAt": end})
    revisit = await tenant.call("nurse", VISIT, i={**fields, "revisitOn": end[:10]})

    refused_at(finished, "input.startedAt")
    refused_at(revisit, "input.revisitOn")
    assert await stored(tenant) == before
    started = await tenant.call("nurse", VISIT, i=fields)
    visit_id = started.data["visitCreate"]["id"]
    for step in ("ARRIVED", "IN_PROGRESS"):
        assert (await tenant.call("nurse", START, id=visit_id, to=step)).errors == []
    moved = await tenant.call("nurse", MOVE, id=visit_id, at=end)
    refused_at(moved, "at")
    assert (await Visit.get(id=visit_id)).status == "in_progress"
    assert await FollowUpTask.filter(institution_id=tenant.id).count() == before[1]


async def test_a_visit_entered_from_paper_is_taken_from_1900(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    reply = await tenant.call("nurse", VISIT, i={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "status": "FINISHED", "startedAt": "1995-03-01T09:00:00+08:00", "endedAt": "1995-03-01T09:30:00+08:00"})
    assert reply.errors == [], reply.errors
    before = await tenant.call("nurse", VISIT, i={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "plannedAt": "1899-12-31T09:00:00+00:00"})
    refused_at(before, "input.plannedAt")


async def test_contract_terms_and_prices_outside_the_years_are_refused(tenant: Tenant, services: Any) -> None:
    pid = await make_patient(tenant)
    item = await make_item(tenant)
    running = await draft(tenant, pid, [item_input(item)])
    await signed(tenant, services, running["id"])
    before = await stored(tenant)

    far = await tenant.call("front_desk", CONTRACT, i=draft_input(pid, [item_input(item)], startOn="9999-12-01",
                                                                  endOn="9999-12-31"))
    renewal = await tenant.call("admin", RENEW, id=running["id"], i={"endOn": "9999-12-31"})
    price = await tenant.call("finance", PRICE, item=str(item), **{"from": "9999-12-31"})

    refused_at(far, "input.startOn")
    refused_at(far, "input.endOn")
    refused_at(renewal, "input.endOn")
    refused_at(price, "effectiveFrom")
    assert await stored(tenant) == before


AMEND = """mutation($id: ID!, $i: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $i, expectedVersion: $v) { id } }"""


async def test_an_amendment_of_a_term_stored_beyond_the_years_names_the_contract(tenant: Tenant,
                                                                                 services: Any) -> None:
    """A term stored before the years were bounded (ending 9999-12-31): amending it without a new end is refused
    at the contract, not at the ``input.endOn`` the caller did not give; nothing is written."""
    pid = await make_patient(tenant)
    running = await draft(tenant, pid, [item_input(await make_item(tenant))])
    await ContractVersion.filter(contract_id=running["id"]).update(end_on=date(9999, 12, 31))  # (a draft's: not frozen)
    await Contract.filter(id=running["id"]).update(end_on=date(9999, 12, 31))
    await signed(tenant, services, running["id"])
    version = (await Contract.get(id=running["id"])).version
    versions = await ContractVersion.filter(contract_id=running["id"]).count()

    reply = await tenant.call("admin", AMEND, id=running["id"], v=version, i={
        "effectiveOn": running["startOn"], "changeSummary": "More visits"})

    refused_at(reply, "contractId")
    assert all(p["field"] == "contractId" for p in reply.errors[0]["extensions"].get("invalid", [])), reply.errors
    assert await ContractVersion.filter(contract_id=running["id"]).count() == versions


async def test_disclosures_and_exports_ending_in_the_first_years_are_refused(tenant: Tenant) -> None:
    reply = await tenant.call("compliance_officer", DISCLOSURES, f="0001-01-01T00:00:00Z", t="0003-01-01T00:00:00Z")
    refused_at(reply, "from")

    token = {"authorization": f"Bearer {tenant.tokens['compliance_officer']}"}
    export = await tenant.client.get("/compliance/exports/audit.ndjson", headers=token,
                                     params={"to": "0001-01-02T00:00:00+00:00"})
    assert export.status_code == 400, export.text
    assert export.json()["errors"][0]["extensions"]["field"] == "to"
