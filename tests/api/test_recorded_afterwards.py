"""What happened is recorded when it happened, not in the future, and a visit entered long afterwards does not survey
its patient with a link that closed long ago (found by a review of input validation, as a careless client would send
it):
- a visit's arrival, start and end (`visitCreate`, `visitTransition(at)`) in the future were stored, and a visit
  "finished" next year made its follow-up calls and survey for then, and counted in that month's report;
- a visit finished years ago and entered from paper made a survey invitation whose message went out at once, with a
  link that had expired before it was sent. (Its follow-up calls keep their dates, as tests/api/test_visits.py
  holds: whether a visit entered that late should make calls at all is left to a decision.)
- a re-visit date before the visit itself (a year typed wrong) was stored, and its reminder, which the sweep queues
  for the day before, was never sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import Communication, FollowUpTask, SurveyInvitation, Visit
from tests.api.test_input_errors import problems
from tests.factories import Tenant
from tests.surveys import questionnaire, reachable, trigger

VISIT = "mutation($i: VisitCreateInput!) { visitCreate(input: $i) { id status } }"
UPDATE = """mutation($id: ID!, $i: VisitUpdateInput!) { visitUpdate(id: $id, input: $i) { id revisitOn version } }"""
MOVE = """mutation($id: ID!, $to: VisitStatus!, $at: DateTime, $version: Int) {
  visitTransition(id: $id, to: $to, at: $at, version: $version) { id status version } }"""
ZONE = ZoneInfo("Asia/Shanghai")  # the test institutions'


async def stored(tenant: Tenant) -> tuple[int, ...]:
    return (await Visit.filter(institution_id=tenant.id).count(),
            await FollowUpTask.filter(institution_id=tenant.id).count(),
            await SurveyInvitation.filter(institution_id=tenant.id).count(),
            await Communication.filter(institution_id=tenant.id).count())


async def surveyed(tenant: Tenant) -> tuple[Any, dict[str, Any]]:
    """A patient who takes care messages, a trigger that surveys after every procedure, and a procedure's fields."""
    pid = await reachable(tenant)
    await trigger(tenant, await questionnaire(tenant), visitKind="PROCEDURE")
    return pid, {"patientId": str(pid), "kind": "PROCEDURE", "departmentId": str(tenant.departments["A"].id)}




def finished(fields: dict[str, Any], ended: datetime, minutes: int = 30) -> dict[str, Any]:
    return {**fields, "status": "FINISHED", "startedAt": (ended - timedelta(minutes=minutes)).isoformat(),
            "endedAt": ended.isoformat()}


async def test_a_visit_finished_in_the_future_is_refused_and_starts_nothing(tenant: Tenant) -> None:
    _, fields = await surveyed(tenant)
    before = await stored(tenant)
    reply = await tenant.call("nurse", VISIT, i=finished(fields, datetime.now(UTC) + timedelta(days=400)))
    assert problems(reply) == [("input.startedAt", "in_future"), ("input.endedAt", "in_future")]
    assert await stored(tenant) == before  # no visit, follow-up call, invitation or message
    # its twin: ended a moment ago, and the start may still be given ahead of the end by the minutes clocks differ
    done = await tenant.call("nurse", VISIT, i=finished(fields, datetime.now(UTC) + timedelta(minutes=1)))
    assert done.errors == [], done.errors


@pytest.mark.parametrize("to", ["ARRIVED", "CANCELLED"])
async def test_a_visit_moved_on_at_a_future_time_is_refused(tenant: Tenant, to: str) -> None:
    _, fields = await surveyed(tenant)
    made = await tenant.call("front_desk", VISIT, i=fields)
    visit_id = made.data["visitCreate"]["id"]
    reply = await tenant.call("front_desk", MOVE, id=visit_id, to=to, version=1,
                              at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == ("at", "in_future")
    row = await Visit.get(id=visit_id)
    assert (row.status, row.version, row.arrived_at, row.cancelled_at) == ("planned", 1, None, None)
    moved = await tenant.call("front_desk", MOVE, id=visit_id, to=to, version=1,
                              at=(datetime.now(UTC) - timedelta(minutes=10)).isoformat())
    assert moved.errors == [], moved.errors
    assert (await Visit.get(id=visit_id)).status == to.lower()


async def test_a_visit_finished_years_ago_surveys_no_one(tenant: Tenant) -> None:
    _, fields = await surveyed(tenant)
    reply = await tenant.call("nurse", VISIT, i=finished(fields, datetime(1995, 3, 1, 10, tzinfo=ZONE)))
    assert reply.errors == [], reply.errors  # the visit itself is history worth having
    assert await SurveyInvitation.filter(institution_id=tenant.id).count() == 0
    assert await Communication.filter(institution_id=tenant.id).count() == 0


async def test_a_visit_entered_after_its_survey_link_would_have_closed_surveys_no_one(tenant: Tenant) -> None:
    """Ended 20 days ago: sent a day after (the trigger's 24 hours), the link would have closed five days ago (14
    days' validity, the default)."""
    _, fields = await surveyed(tenant)
    reply = await tenant.call("nurse", VISIT, i=finished(fields, datetime.now(UTC) - timedelta(days=20)))
    assert reply.errors == [], reply.errors
    assert await SurveyInvitation.filter(institution_id=tenant.id).count() == 0
    assert await Communication.filter(institution_id=tenant.id, cause="survey_invitation").count() == 0


async def test_a_visit_entered_days_late_still_surveys(tenant: Tenant) -> None:
    """The twin: ended three days ago, sent a day after, the link is open 12 more days: invited, message queued."""
    _, fields = await surveyed(tenant)
    reply = await tenant.call("nurse", VISIT, i=finished(fields, datetime.now(UTC) - timedelta(days=3)))
    assert reply.errors == [], reply.errors
    invitation = await SurveyInvitation.get(institution_id=tenant.id, visit_id=reply.data["visitCreate"]["id"])
    assert invitation.expires_at > datetime.now(UTC)
    assert await Communication.filter(institution_id=tenant.id, cause="survey_invitation").count() == 1


def today() -> date:
    return datetime.now(UTC).astimezone(ZONE).date()


async def test_a_revisit_before_the_visit_is_refused(tenant: Tenant) -> None:
    _, fields = await surveyed(tenant)
    before = await stored(tenant)
    reply = await tenant.call("front_desk", VISIT, i={**fields, "revisitOn": (today() - timedelta(days=1)).isoformat()})
    assert problems(reply) == [("input.revisitOn", "out_of_order")]
    ended = datetime.now(UTC) - timedelta(days=3)
    reply = await tenant.call("nurse", VISIT, i={**finished(fields, ended),
                                                 "revisitOn": (ended - timedelta(days=2)).date().isoformat()})
    assert problems(reply) == [("input.revisitOn", "out_of_order")]
    assert await stored(tenant) == before
    # the twins: the same day as a visit booked today, and after a visit entered three days late
    same_day = await tenant.call("front_desk", VISIT, i={**fields, "revisitOn": today().isoformat()})
    assert same_day.errors == [], same_day.errors
    late = await tenant.call("nurse", VISIT, i={**finished(fields, ended), "revisitOn": today().isoformat()})
    assert late.errors == [], late.errors


async def test_a_revisit_moved_before_the_visit_is_refused(tenant: Tenant) -> None:
    _, fields = await surveyed(tenant)
    made = await tenant.call("front_desk", VISIT, i={**fields, "plannedAt": datetime.now(UTC).isoformat()})
    visit_id = made.data["visitCreate"]["id"]
    reply = await tenant.call("front_desk", UPDATE, id=visit_id, i={"revisitOn": "2025-12-01"})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
        "input.revisitOn", "out_of_order")
    row = await Visit.get(id=visit_id)
    assert (row.revisit_on, row.version) == (None, 1)
    later = (today() + timedelta(days=30)).isoformat()
    moved = await tenant.call("front_desk", UPDATE, id=visit_id, i={"revisitOn": later})
    assert moved.data["visitUpdate"] == {"id": visit_id, "revisitOn": later, "version": 2}, moved.errors
