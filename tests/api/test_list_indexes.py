"""Each ticket list's page, and the survey responses', is read from an index in its order, on SQLite and PostgreSQL:
the database's plan for the statement the API sent finds the institution's rows by the index and needs no sort (found
in review, with EXPLAIN ANALYZE on PostgreSQL over 500,000 tickets of two institutions: ``tickets`` ordered by creation
or last change read and sorted every ticket of the institution; the default newest-first page of the institution
whose tickets were older, ``myOpenedTickets`` and ``questionnaireResponses`` walked the primary key through the other
institution's rows, 1.1 s for 21 tickets).

The test's tables are small, so a planner would rightly read them whole: on PostgreSQL the plan is asked for with
sequential scans and sorts priced out (``enable_seqscan``/``enable_sort`` off), which leaves a sort only where no index
gives the order. SQLite says ``USE TEMP B-TREE FOR ORDER BY`` where it sorts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from resolvers.context import Services
from tests.api.test_questionnaire_responses import BY_LINK_ANSWER
from tests.api.test_ticket_lifecycle import open_ticket
from tests.api.test_ticket_portal import REPORT
from tests.conftest import BACKEND
from tests.factories import Tenant
from tests.partners import ALL_SCOPES, make_partnership
from tests.surveys import GOOD, invited, questionnaire

POSTGRES = BACKEND != "sqlite"
Sent = list[tuple[str, list[Any]]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    """The ordered, limited SELECTs (a page) the API sends from now on, each with its values (a spy on Tortoise's
    client: what it runs and returns is unchanged)."""
    client = next(klass for klass in type(connections.get("default")).__mro__ if "execute_query" in vars(klass))
    run, seen = client.execute_query, []

    async def spied(self: Any, query: str, values: list[Any] | None = None) -> Any:
        if query.lstrip().upper().startswith("SELECT") and "ORDER BY" in query and "LIMIT" in query:
            seen.append((query, list(values or [])))
        return await run(self, query, values)

    monkeypatch.setattr(client, "execute_query", spied)
    yield seen


async def plan(query: str, values: list[Any]) -> str:
    """The database's plan for the statement, as text: PostgreSQL's JSON, or SQLite's EXPLAIN QUERY PLAN lines."""
    async with in_transaction() as db:
        if POSTGRES:
            await db.execute_script("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
            _, rows = await db.execute_query(f"EXPLAIN (FORMAT JSON) {query}", values)
            found = next(iter(dict(rows[0]).values()))
            return json.dumps(json.loads(found) if isinstance(found, str) else found)
        _, rows = await db.execute_query(f"EXPLAIN QUERY PLAN {query}", values)
        return "\n".join(str(dict(row)["detail"]) for row in rows)


async def assert_served_by_an_index(sent: Sent, table: str, *columns: str) -> None:
    """The list's one page statement of ``table`` finds the rows through an index on ``columns`` (equalities) and is
    not sorted."""
    [(query, values)] = [(q, v) for q, v in sent if f'FROM "{table}"' in q]
    text = await plan(query, values)
    if POSTGRES:
        assert '"Sort"' not in text and "Incremental Sort" not in text, text
        scans = [node for node in _nodes(json.loads(text)) if node.get("Relation Name") == table
                 and "Index Cond" in node]
        # The institution is found by the index; a further equality (the opener) by the index or as a filter on it:
        # which of two indexes that both give the order is the cheaper depends on the table's statistics, which
        # the suite's shared database moves (found in make test: (institution_id, id) backward with the opener as
        # a filter, over a handful of rows, where the test alone took (institution_id, opened_by_id, id)).
        assert scans and f"{columns[0]} =" in scans[0]["Index Cond"], text
        found = scans[0]["Index Cond"] + " " + scans[0].get("Filter", "")
        assert all(f"{c} =" in found for c in columns), text
    else:
        assert "TEMP B-TREE" not in text, text
        assert all(f"{c}=?" in text for c in columns), text
    sent.clear()


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    if isinstance(plan, list):
        for item in plan:
            yield from _nodes(item)
    elif isinstance(plan, dict):
        yield plan
        for value in plan.values():
            yield from _nodes(value)


TICKETS = "query($order: TicketOrder) { tickets(first: 5, orderBy: $order) { nodes { id } } }"


@pytest.mark.parametrize("order", [None, {"field": "CREATED_AT", "direction": "DESC"},
                                   {"field": "CREATED_AT", "direction": "ASC"},
                                   {"field": "UPDATED_AT", "direction": "DESC"},
                                   {"field": "UPDATED_AT", "direction": "ASC"}])
async def test_the_institutions_tickets_page_in_each_order(tenant: Tenant, sent: Sent,
                                                           order: dict[str, str] | None) -> None:
    for _ in range(2):
        await open_ticket(tenant)
    sent.clear()
    reply = await tenant.call("support_agent", TICKETS, order=order)
    assert reply.errors == [] and len(reply.data["tickets"]["nodes"]) == 2, reply.errors
    await assert_served_by_an_index(sent, "ticket", "institution_id")


async def test_the_tickets_i_opened(tenant: Tenant, sent: Sent) -> None:
    await open_ticket(tenant)
    sent.clear()
    reply = await tenant.call("front_desk", "{ myOpenedTickets(first: 5) { nodes { id } } }")
    assert reply.errors == [] and len(reply.data["myOpenedTickets"]["nodes"]) == 1, reply.errors
    await assert_served_by_an_index(sent, "ticket", "institution_id", "opened_by_id")


async def test_the_tickets_a_partner_opened(tenant: Tenant, sent: Sent) -> None:
    reporter = await make_partnership(tenant, [*ALL_SCOPES, "ticket:create", "partner_ticket:read"])
    reported = await reporter.call(REPORT, input={"patientId": str(reporter.granted), "category": "COMPLAINT",
                                                  "subject": "Wound bleeding after the visit"})
    assert reported.errors == [], reported.errors
    sent.clear()
    reply = await reporter.call("{ partnerTickets(first: 5) { nodes { id } } }")
    assert reply.errors == [] and len(reply.data["partnerTickets"]["nodes"]) == 1, reply.errors
    await assert_served_by_an_index(sent, "ticket", "institution_id", "opened_by_partner_id")


async def test_the_institutions_survey_responses(tenant: Tenant, services: Services, sent: Sent) -> None:
    _, _, token = await invited(tenant, services, await questionnaire(tenant))
    answered = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD)
    assert answered.errors == [], answered.errors
    sent.clear()
    reply = await tenant.call("admin", "{ questionnaireResponses(first: 5) { nodes { id } } }")
    assert reply.errors == [] and len(reply.data["questionnaireResponses"]["nodes"]) == 1, reply.errors
    await assert_served_by_an_index(sent, "questionnaire_response", "institution_id")
