"""A review of the relationship domains' mutations against careless or hostile input (December 2026): what it
found in visits, each a coded refusal with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models import AuditEvent, Visit
from tests.api.test_visits import CREATE, MOVE, a_visit, moved
from tests.factories import Tenant, make_patient

ZONE = ZoneInfo("Asia/Shanghai")  # the test institutions' zone
UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!, $version: Int) {
  visitUpdate(id: $id, input: $input, version: $version) { id version plannedAt } }"""


def local(days: int, hour: int, minute: int = 0) -> str:
    """A local time of the institution, ``days`` from today."""
    today = datetime.now(UTC).astimezone(ZONE).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=ZONE).isoformat()


async def stored(tenant: Tenant) -> tuple[object, ...]:
    visits = await Visit.filter(institution_id=tenant.id).order_by("id").values("id", "status", "version",
                                                                                "planned_at", "arrived_at")
    return tuple(visits), await AuditEvent.filter(institution_id=tenant.id, outcome="allowed").count()


def refusal(reply: object) -> tuple[str, str | None, str | None]:
    error = reply.errors[0]["extensions"]  # type: ignore[attr-defined]
    return error["code"], error.get("field"), error.get("reason")


@pytest.mark.parametrize("at", ["1950-01-01T09:00:00+08:00", "year before", "day before"])
async def test_an_arrival_before_the_planned_day_is_refused(tenant: Tenant, at: str) -> None:
    """Found in review: an arrival typed a day, a month or a year early was stored, and its whole span to the start
    counted as waiting time in the month's report. An arrival comes on the day the visit was planned for (the
    institution's date), as an appointment's check-in opens on its day."""
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt=local(0, 9))
    at = {"year before": local(-365, 9), "day before": local(-1, 23, 59)}.get(at, at)
    before = await stored(tenant)

    reply = await tenant.call("front_desk", MOVE, id=visit["id"], to="ARRIVED", at=at)

    assert refusal(reply) == ("BAD_USER_INPUT", "at", "out_of_order"), reply.errors
    assert await stored(tenant) == before


async def test_a_check_in_before_the_planned_day_is_refused(tenant: Tenant) -> None:
    """A visit booked for next month is not checked in today: its planned time is moved first (visitUpdate)."""
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt=local(30, 9))
    before = await stored(tenant)

    reply = await tenant.call("front_desk", MOVE, id=visit["id"], to="ARRIVED")

    assert refusal(reply) == ("BAD_USER_INPUT", "at", "out_of_order"), reply.errors
    assert await stored(tenant) == before
    moved_to_today = await tenant.call("front_desk", UPDATE, id=visit["id"], version=1,
                                       input={"plannedAt": local(0, 0, 1)})
    assert moved_to_today.errors == [], moved_to_today.errors
    assert (await moved(tenant, "front_desk", visit["id"], "ARRIVED"))["status"] == "ARRIVED"


async def test_an_early_arrival_on_the_planned_day_is_recorded(tenant: Tenant) -> None:
    """The twin: a patient who came at 00:05 for a 23:30 visit of the same day arrived on its day."""
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt=local(0, 23, 30))
    arrived = await moved(tenant, "front_desk", visit["id"], "ARRIVED", at=local(0, 0, 5))
    assert arrived["arrivedAt"] == datetime.fromisoformat(local(0, 0, 5)).astimezone(UTC).isoformat()


async def test_a_walk_in_planned_for_another_day_is_refused(tenant: Tenant) -> None:
    """A walk-in (created ARRIVED, arrived now) planned for next week is a typo in plannedAt."""
    pid = await make_patient(tenant)
    before = await stored(tenant)

    reply = await tenant.call("front_desk", CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT",
                                                           "status": "ARRIVED", "plannedAt": local(7, 9)})

    assert refusal(reply) == ("BAD_USER_INPUT", "input.plannedAt", "out_of_order"), reply.errors
    assert await stored(tenant) == before


async def test_the_planned_day_of_an_arrived_visit_is_not_moved_past_its_arrival(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    visit = await a_visit(tenant, pid, plannedAt=local(0, 9))
    await moved(tenant, "front_desk", visit["id"], "ARRIVED")
    before = await stored(tenant)

    reply = await tenant.call("front_desk", UPDATE, id=visit["id"], version=2, input={"plannedAt": local(1, 9)})

    assert refusal(reply) == ("BAD_USER_INPUT", "input.plannedAt", "out_of_order"), reply.errors
    assert await stored(tenant) == before
    earlier = await tenant.call("front_desk", UPDATE, id=visit["id"], version=2, input={"plannedAt": local(-1, 9)})
    assert earlier.errors == [], earlier.errors  # planned yesterday, came today: late, not early


# -- page sizes and cursors: a reason to branch on ------------------------------------------------------------

PAGES = {
    "visits": ('query($pid: ID!, $n: Int, $after: String) { visits(patientId: $pid, first: $n, after: $after) '
               '{ nodes { id } } }', "front_desk"),
    "carePlans": ('query($pid: ID!, $n: Int, $after: String) { carePlans(patientId: $pid, first: $n, after: $after) '
                  '{ nodes { id } } }', "doctor"),
    "patientCommunications": ('query($pid: ID!, $n: Int, $after: String) { patientCommunications(patientId: $pid, '
                              'first: $n, after: $after) { nodes { id } } }', "nurse"),
}


@pytest.mark.parametrize(("page", "field", "reason"), [
    ({"n": -1}, "first", "out_of_range"), ({"n": 0}, "first", "out_of_range"), ({"n": 100000}, "first", "out_of_range"),
    ({"n": 5, "after": "bm9wZQ"}, "after", "invalid"), ({"n": 5, "after": "x" * 300}, "after", "invalid")])
async def test_a_page_size_out_of_range_or_a_forged_cursor_carries_a_reason(tenant: Tenant, page: dict[str, object],
                                                                            field: str, reason: str) -> None:
    """Found in review: `first: -1` or `first: 100000`, and a forged cursor, were BAD_USER_INPUT at their field with
    no `extensions.reason` (every list pages through
    ``resolvers.pagination``)."""
    pid = await make_patient(tenant)
    for root, (query, role) in PAGES.items():
        reply = await tenant.call(role, query, pid=str(pid), **page)
        assert refusal(reply) == ("BAD_USER_INPUT", field, reason), (root, reply.errors)
