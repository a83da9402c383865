"""Quiet hours on the days the clocks change, in an institution with daylight saving (Europe/Berlin), set through the
API as an admin does; messages scheduled as their causes schedule them and sent by the outbox (``deliver_due`` at
the moment it should take as now), at scheduling and, for a worker that comes late, at sending.

The quiet hours begin the first time the clocks show their start and end the first time after that they show their
end, as an alarm set for those times would ring:
- Fall-back day (Sunday 31 October 2027, 03:00 summer time becomes 02:00 winter time: 02:00-03:00 happens twice).
  Quiet hours ending at 02:30 end at the first 02:30; the repeated half hour after it is not quiet (it was deferred to
  the first 02:30, already past, so the outbox claimed it again at once, without end, until the second 02:30). Quiet
  hours starting at 02:30 begin at the first 02:30 and go on through the repeated hour (a message at the second 02:10
  went out in the middle of them).
- Spring-forward day (Sunday 28 March 2027, 02:00 winter time becomes 03:00 summer time: 02:00-03:00 does not happen).
  A bound the clocks skip is reached when they jump past it, at 03:00 summer time: quiet hours ending at 02:30 end
  then (they were held until 03:30), and quiet hours starting at 02:30 begin then.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from tortoise.transactions import in_transaction

from core.messages import Outgoing
from models import Communication, Institution
from resolvers import communication
from resolvers.context import Services
from tests.factories import Tenant, make_patient

BERLIN = ZoneInfo("Europe/Berlin")
FALL_BACK, SPRING_FORWARD = date(2027, 10, 31), date(2027, 3, 28)
SETTINGS = """mutation($input: MessagingSettingsInput!) { messagingSettingsUpdate(input: $input) { quietStart
  quietEnd } }"""


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def berlin(moment: datetime) -> str:
    """How the clocks in Berlin read ``moment``: "02:30 CEST"."""
    return moment.astimezone(BERLIN).strftime("%H:%M %Z")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2027, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return f"gw-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def clock(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The tenant in Berlin, and the outbox's clock (what scheduling takes as now) set by each test."""
    await Institution.filter(id=tenant.id).update(time_zone="Europe/Berlin")
    clock = Clock()
    monkeypatch.setattr(communication, "_now", clock)
    return clock


async def quiet_hours(tenant: Tenant, start: str, end: str) -> None:
    reply = await tenant.call("admin", SETTINGS, input={"quietStart": start, "quietEnd": end})
    assert reply.errors == [], reply.errors


async def message_due(tenant: Tenant, clock: Clock, at: datetime) -> Communication:
    """A reminder to a patient who gets e-mail, due ``at``, scheduled by its cause at that moment."""
    pid = await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"],
                             email=f"p{uuid.uuid4().hex[:8]}@example.org")
    clock.now = at
    async with in_transaction():
        return await communication.schedule(tenant.id, key=f"test:{uuid.uuid4()}", cause="appointment_reminder",
                                            patient_id=pid, due_at=at, variables={"patient_name": "Anna"})


async def sent_by(services: Services, now: datetime, *messages: Communication) -> bool:
    """The outbox run at ``now``: whether it sent the messages. Bounded: a message deferred to a moment already past
    was claimed again at once, and again, and the run never ended (found in review)."""
    recorder = Recorder()
    async with asyncio.timeout(30):
        await communication.deliver_due(services, dict.fromkeys(("email", "sms", "wechat", "app"), recorder),
                                        now=now)
    sent = {m.communication_id for m in recorder.sent}
    assert len({m.id in sent for m in messages}) == 1, "some sent, some not"
    return messages[0].id in sent


async def goes_at(services: Services, expected: datetime, *messages: Communication) -> None:
    """The messages wait until ``expected`` (not sent a second before) and are sent then."""
    for message in messages:
        stored = await Communication.get(id=message.id)
        assert (stored.status, berlin(stored.due_at)) == ("queued", berlin(expected))
        assert stored.due_at == expected
    assert not await sent_by(services, expected - timedelta(seconds=1), *messages)
    assert await sent_by(services, expected, *messages)


async def test_quiet_hours_ending_in_the_repeated_hour_end_at_its_first_showing(
        tenant: Tenant, services: Services, clock: Clock) -> None:
    await quiet_hours(tenant, "22:00", "02:30")
    first_half_past_two = utc(FALL_BACK, 0, 30)
    assert berlin(first_half_past_two) == "02:30 CEST"

    night = await message_due(tenant, clock, utc(FALL_BACK - timedelta(days=1), 21))  # 23:00 summer time
    await goes_at(services, first_half_past_two, night)

    for moment, shown in ((utc(FALL_BACK, 0, 45), "02:45 CEST"), (utc(FALL_BACK, 1, 15), "02:15 CET")):
        assert berlin(moment) == shown
        after = await message_due(tenant, clock, moment)  # the quiet hours are over: sent at once
        assert (await Communication.get(id=after.id)).due_at == moment, shown
        assert await sent_by(services, moment, after), shown


async def test_a_late_worker_in_the_repeated_hour_after_quiet_hours_ended_sends_at_once(
        tenant: Tenant, services: Services, clock: Clock) -> None:
    """At sending: a message due before the quiet hours, sent by a worker that came late, in the second 02:15."""
    await quiet_hours(tenant, "22:00", "02:30")
    evening = await message_due(tenant, clock, utc(FALL_BACK - timedelta(days=1), 19))  # 21:00 summer time
    assert await sent_by(services, utc(FALL_BACK, 1, 15), evening)  # 02:15 winter time


async def test_quiet_hours_starting_in_the_repeated_hour_go_on_through_it(
        tenant: Tenant, services: Services, clock: Clock) -> None:
    await quiet_hours(tenant, "02:30", "08:00")
    eight = utc(FALL_BACK, 7)
    assert berlin(eight) == "08:00 CET"

    before = await message_due(tenant, clock, utc(FALL_BACK, 0, 15))  # 02:15 summer time: not yet
    assert await sent_by(services, utc(FALL_BACK, 0, 15), before)
    for moment, shown in ((utc(FALL_BACK, 0, 45), "02:45 CEST"), (utc(FALL_BACK, 1, 10), "02:10 CET")):
        assert berlin(moment) == shown
        await goes_at(services, eight, await message_due(tenant, clock, moment))

    # At sending: due at 02:15 summer time, sent by a worker that came in the second 02:10.
    late = await message_due(tenant, clock, utc(FALL_BACK, 0, 15))
    assert not await sent_by(services, utc(FALL_BACK, 1, 10), late)
    await goes_at(services, eight, late)


async def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clocks_jump(
        tenant: Tenant, services: Services, clock: Clock) -> None:
    await quiet_hours(tenant, "22:00", "02:30")
    jump = utc(SPRING_FORWARD, 1)
    assert (berlin(jump - timedelta(seconds=1)), berlin(jump)) == ("01:59 CET", "03:00 CEST")

    night = await message_due(tenant, clock, utc(SPRING_FORWARD - timedelta(days=1), 22))  # 23:00 winter time
    late = await message_due(tenant, clock, utc(SPRING_FORWARD - timedelta(days=1), 20, 30))  # due 21:30...
    assert not await sent_by(services, utc(SPRING_FORWARD, 0, 30), late)  # ...and a worker comes at 01:30
    await goes_at(services, jump, night, late)
    after = await message_due(tenant, clock, utc(SPRING_FORWARD, 1, 10))  # 03:10 summer time
    assert await sent_by(services, utc(SPRING_FORWARD, 1, 10), after)


async def test_quiet_hours_starting_in_the_skipped_hour_begin_when_the_clocks_jump(
        tenant: Tenant, services: Services, clock: Clock) -> None:
    await quiet_hours(tenant, "02:30", "08:00")
    eight = utc(SPRING_FORWARD, 6)
    assert berlin(eight) == "08:00 CEST"

    before = await message_due(tenant, clock, utc(SPRING_FORWARD, 0, 59))  # 01:59 winter time
    assert await sent_by(services, utc(SPRING_FORWARD, 0, 59), before)
    for moment in (utc(SPRING_FORWARD, 1), utc(SPRING_FORWARD, 1, 10)):  # 03:00, 03:10 summer time
        await goes_at(services, eight, await message_due(tenant, clock, moment))


async def test_an_ordinary_night_is_as_before(tenant: Tenant, services: Services, clock: Clock) -> None:
    """The twin: a week after the fall-back day, 22:00-02:30 defers 23:00 to 02:30 and lets 02:45 go."""
    await quiet_hours(tenant, "22:00", "02:30")
    week_later = FALL_BACK + timedelta(days=7)
    await goes_at(services, utc(week_later, 1, 30),
                  await message_due(tenant, clock, utc(week_later - timedelta(days=1), 22)))
    assert await sent_by(services, utc(week_later, 1, 45), await message_due(tenant, clock, utc(week_later, 1, 45)))
