"""An appointment's time in its messages on the days the clocks change, in an institution with daylight saving
(Europe/Berlin), set up and booked through the API as a front desk does, the messages sent by the outbox.

- Fall-back day (Sunday 31 October 2027): 02:00-03:00 happens twice. Both 02:30s are slots and can be booked; their
  messages said "02:30" alike (found in review). A time the clocks show twice now carries its UTC offset; every other
  time reads as before.
- Spring-forward day (Sunday 28 March 2027): 02:00-03:00 does not happen. A session bound the clocks skip is read as
  the clock shows after the jump (RFC 5545: 02:30 is 03:30 summer time); a booking names an instant with its offset,
  so "02:30 with the summer offset" (01:30 winter time, no slot) is refused, and one without an offset is refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.messages import Outgoing
from models import Communication, Institution
from resolvers import appointment as appointments
from resolvers import communication
from resolvers import schedule as schedules
from resolvers.context import Services
from tests.api.test_appointments import BOOK, booking
from tests.api.test_schedules import FREE
from tests.factories import Tenant, make_patient

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 3, 20, 10, tzinfo=UTC)  # a Saturday before both changes, in the day in Berlin
FALL_BACK, SPRING_FORWARD = date(2027, 10, 31), date(2027, 3, 28)
SCHEDULE = """mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }"""


@pytest.fixture(autouse=True)
async def in_berlin(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    await Institution.filter(id=tenant.id).update(time_zone="Europe/Berlin")
    for module in (appointments, schedules, communication):
        monkeypatch.setattr(module, "_now", lambda: NOW)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return f"gw-{uuid.uuid4().hex[:10]}"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def sunday_schedule(tenant: Tenant, start: str, end: str) -> str:
    return str(ok(await tenant.call("admin", SCHEDULE, input={
        "name": "Night clinic", "kind": "RESOURCE", "departmentId": str(tenant.departments["A"].id),
        "week": [{"weekday": 7, "sessions": [{"start": start, "end": end}]}], "slotMinutes": 30, "capacity": 1}),
        "scheduleCreate")["id"])


async def starts(tenant: Tenant, schedule: str, day: date) -> list[datetime]:
    slots = ok(await tenant.call("front_desk", FREE, schedule=schedule, **{"from": str(day), "to": str(day)}),
               "freeSlots")
    return [datetime.fromisoformat(s["start"]).astimezone(UTC) for s in slots]


async def book_at(tenant: Tenant, schedule: str, start: str) -> uuid.UUID:
    """A patient who gets e-mail, booked at ``start`` (as the API takes it); answers the patient."""
    pid = await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"],
                             email=f"p{uuid.uuid4().hex[:8]}@example.org")
    ok(await tenant.call("front_desk", BOOK, input=booking(schedule, pid, start)), "appointmentBook")
    return pid


async def times_told(services: Services, *patients: uuid.UUID) -> list[tuple[str, str, str]]:
    """For each patient's booking, the time its confirmation and reminder say (their variables), and the
    confirmation as sent (the outbox run once for them all)."""
    rows = {(row.patient_id, row.cause): row for row in await Communication.filter(patient_id__in=patients)}
    recorder = Recorder()
    await communication.deliver_due(services, dict.fromkeys(("email", "sms", "wechat", "app"), recorder), now=NOW)
    sent = {m.communication_id: m.body for m in recorder.sent}
    return [(rows[p, "appointment_confirmation"].variables["time"], rows[p, "appointment_reminder"].variables["time"],
             sent[rows[p, "appointment_confirmation"].id]) for p in patients]


async def test_the_two_half_past_twos_of_a_fall_back_day_are_told_apart(tenant: Tenant, services: Services) -> None:
    schedule = await sunday_schedule(tenant, "01:00", "04:00")
    summer, winter = datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    assert summer.astimezone(BERLIN).strftime("%H:%M") == winter.astimezone(BERLIN).strftime("%H:%M") == "02:30"
    assert {summer, winter} <= set(await starts(tenant, schedule, FALL_BACK))

    first = await book_at(tenant, schedule, summer.isoformat())
    second = await book_at(tenant, schedule, winter.isoformat())

    said_first, said_second = await times_told(services, first, second)
    assert said_first[:2] == ("02:30 (UTC+02:00)", "02:30 (UTC+02:00)")
    assert said_second[:2] == ("02:30 (UTC+01:00)", "02:30 (UTC+01:00)")
    assert "2027-10-31 02:30 (UTC+02:00)" in said_first[2] and "2027-10-31 02:30 (UTC+01:00)" in said_second[2]


async def test_a_time_shown_once_reads_as_before(tenant: Tenant, services: Services) -> None:
    """The twin: the same day's 01:30 (summer time) and 03:30 (winter time) happen once, and say so plainly."""
    schedule = await sunday_schedule(tenant, "01:00", "04:00")
    for moment, text in ((datetime(2027, 10, 30, 23, 30, tzinfo=UTC), "01:30"),
                         (datetime(2027, 10, 31, 2, 30, tzinfo=UTC), "03:30")):
        [(confirmation, reminder, body)] = await times_told(services, await book_at(tenant, schedule,
                                                                                   moment.isoformat()))
        assert (confirmation, reminder) == (text, text)
        assert f"2027-10-31 {text}" in body and "UTC" not in body


async def test_a_session_bound_the_clocks_skip_is_read_after_the_jump(tenant: Tenant, services: Services) -> None:
    """Sunday 28 March 2027: a session 02:30-04:00 holds 03:30-04:00 that day (02:30 is read as 03:30 summer time),
    booked and told as 03:30; 02:30 with the summer offset (01:30 winter time) and 02:30 without an offset are refused
    with BAD_USER_INPUT on input.slotStart, writing nothing."""
    schedule = await sunday_schedule(tenant, "02:30", "04:00")
    half_past_three = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert half_past_three.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    assert await starts(tenant, schedule, SPRING_FORWARD) == [half_past_three]
    assert len(await starts(tenant, schedule, date(2027, 4, 4))) == 3  # a week later: 02:30, 03:00, 03:30

    for start in ("2027-03-28T02:30:00+02:00", "2027-03-28T02:30:00"):
        pid = await make_patient(tenant)
        refused = await tenant.call("front_desk", BOOK, input=booking(schedule, pid, start))
        field = refused.errors[0]["extensions"]["field"]
        assert (refused.codes, field) == (["BAD_USER_INPUT"], "input.slotStart"), start
        assert not await Communication.filter(patient_id=pid).exists()

    # The same instant written with the winter offset the wall clock had before the jump is the 03:30 slot.
    pid = await book_at(tenant, schedule, datetime.combine(SPRING_FORWARD, time(2, 30), BERLIN).isoformat())
    [(confirmation, reminder, body)] = await times_told(services, pid)
    assert (confirmation, reminder) == ("03:30", "03:30") and "2027-03-28 03:30" in body
