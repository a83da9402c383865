"""The patient page (patient 360): recent visits, alerts, care plans, open follow-up tasks and open
tickets on `patient`, each filtered by the same rules as its own query, at a fixed SQL cost."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient

PAGE = """query($id: ID!) { patient(id: $id) { id fullName
  recentVisits(count: 20) { id kind summary }
  flags { kind detail }
  carePlans { id title }
  openFollowUpTasks { id dueOn }
  openTickets { id subject } } }"""
LIST = """{ patients(first: 100) { nodes { id recentVisits { id kind } flags { kind } carePlans { id }
  openFollowUpTasks { id } openTickets { id } } } }"""
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
TICKET = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"


async def furnished(tenant: Tenant, n: int) -> uuid.UUID:
    """A patient with n of everything: visits (finished outpatient visits: one call each), alerts, plans
    (one call each) and tickets (opened by the nurse, so hers: first-contact ownership)."""
    pid = await make_patient(tenant)
    for i in range(n):
        ok = [
            await tenant.call("nurse", VISIT, input={
                "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "summary": f"Visit {i}",
                "departmentId": str(tenant.departments["A"].id), "startedAt": f"2026-11-{i + 1:02d}T09:00:00+08:00",
                "endedAt": f"2026-11-{i + 1:02d}T10:00:00+08:00"}),
            await tenant.call("nurse", FLAG, input={"patientId": str(pid), "kind": "ALLERGY",
                                                    "detail": f"Allergy {i}"}),
            await tenant.call("nurse", PLAN, input={"patientId": str(pid), "title": f"Plan {i}",
                                                    "activities": [{"kind": "CALL", "afterDays": 1}]}),
            await tenant.call("nurse", TICKET, input={"channel": "NURSE_STATION", "category": "ENQUIRY",
                                                           "subject": f"Question {i}", "patientId": str(pid)}),
        ]
        assert all(reply.errors == [] for reply in ok), [reply.errors for reply in ok]
    return pid


async def test_the_nurse_sees_every_section(tenant: Tenant) -> None:
    pid = await furnished(tenant, 2)
    reply = await tenant.call("nurse", PAGE, id=str(pid))
    assert reply.errors == [], reply.errors
    page = reply.data["patient"]
    assert [v["summary"] for v in page["recentVisits"]] == ["Visit 1", "Visit 0"]  # newest first
    assert sorted(f["detail"] for f in page["flags"]) == ["Allergy 0", "Allergy 1"]
    assert sorted(p["title"] for p in page["carePlans"]) == ["Plan 0", "Plan 1"]
    assert len(page["openFollowUpTasks"]) == 4  # a call per visit, a call per plan
    assert sorted(t["subject"] for t in page["openTickets"]) == ["Question 0", "Question 1"]


async def test_each_section_follows_its_own_rules(tenant: Tenant) -> None:
    """The front desk sees visits without their clinical part and alerts without an allergy's text, and is
    refused plans and tasks as fields; the nurse's tickets are not in its ticket reach."""
    pid = await furnished(tenant, 1)
    reply = await tenant.call("front_desk", PAGE, id=str(pid))
    page = reply.data["patient"]
    assert page["recentVisits"][0]["kind"] == "OUTPATIENT" and page["recentVisits"][0]["summary"] is None
    assert page["flags"] == [{"kind": "ALLERGY", "detail": None}]
    assert page["carePlans"] is None and page["openFollowUpTasks"] is None
    assert page["openTickets"] == []
    agent = await tenant.call("support_agent", PAGE, id=str(pid))  # the institution's ticket queue
    assert [t["subject"] for t in agent.data["patient"]["openTickets"]] == ["Question 0"]
    assert {tuple(e["path"][1:]) for e in reply.errors} == {
        ("recentVisits", 0, "summary"), ("flags", 0, "detail"), ("carePlans",), ("openFollowUpTasks",)}
    assert set(reply.codes) == {"FORBIDDEN"}


@pytest.mark.parametrize("query", ["page", "list"])
async def test_the_page_costs_the_same_whatever_it_holds(tenant: Tenant, other_tenant: Tenant,
                                                         sql_counter: SqlCounter, query: str) -> None:
    counts = []
    for place, n in ((tenant, 1), (other_tenant, 3)):
        pid = await furnished(place, n)
        if query == "list":  # more patients on the page too
            for _ in range(n - 1):
                await furnished(place, n)
        sql_counter.statements.clear()
        variables: dict[str, Any] = {"id": str(pid)} if query == "page" else {}
        reply = await place.call("nurse", PAGE if query == "page" else LIST, **variables)
        assert reply.errors == [], reply.errors
        counts.append(len(sql_counter.statements))
    assert counts[0] == counts[1], sql_counter.statements


async def test_a_count_out_of_range_is_bad_input(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { recentVisits(count: 21) { id } } }",
                              id=str(pid))
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "count"
