"""Two files of one person each with a greeting or a campaign's message, merged (found in review): both messages
went to the survivor and the person got them twice; the frequency cap (2 non-care messages a week) let the second
through. The person gets one message of an occasion (a campaign, a day's greeting), whether the merge moved the
queued messages or a writer that read the file before the merge queued one on the survivor after it; the others are
refused DUPLICATE. Distinct campaigns, and care messages (each about its own appointment, which moved), all go.
A message out with a worker goes whatever the merge decides, but one whose worker died (its lease over) is not out.
Through the API, delivered by the outbox as the campaign tests do; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from core.messages import Outgoing
from models import Communication
from resolvers import appointment as appointments
from resolvers import campaign as campaigns
from resolvers import communication, reminder
from resolvers.context import Services
from tests.api import test_campaigns as campaign_tests
from tests.api import test_reminders as reminder_tests
from tests.api.test_appointments import NOW, TOMORROW_9, book, make_schedule
from tests.api.test_patient_merge import merge
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.app.test_message_review import Clock, Held
from tests.campaigns import approve
from tests.daytime import ZONE
from tests.factories import Tenant, make_patient

PHONE = "13800138000"  # the person's, on both files
LOG = """query($id: ID!) { patientCommunications(patientId: $id, first: 50) {
  nodes { cause status refusal campaignId } } }"""
# Past every message of these tests: the campaigns' (queued now, or at the end of the quiet hours), the appointments'
# (confirmed at NOW, reminded 24 hours before their slot tomorrow).
DELIVERED_BY = NOW + timedelta(hours=2)


class Phone:
    """The SMS gateway: what it was handed, by message."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


async def person_file(tenant: Tenant, name: str, **more: Any) -> uuid.UUID:
    """One of the person's files: their phone, consent to every purpose by SMS, department A."""
    return await make_patient(tenant, fullName=name, phone=PHONE, contactConsent=True, contactChannels=["SMS"],
                              contactPurposes=["CARE", "CAMPAIGN", "GREETING"], **more)


async def campaign_to_both(tenant: Tenant) -> str:
    """A campaign to department A, started and queued in full."""
    await campaigns.advance()  # another test's campaign, still sending, queued out of the way
    made = campaign_tests.ok(await tenant.call("admin", campaign_tests.CREATE, input=campaign_tests.draft(
        departmentId=str(tenant.departments["A"].id))), "campaignCreate")
    version = await approve(tenant, made["id"], "department_head")  # four eyes: the department's head approves
    campaign_tests.ok(await tenant.call("admin", campaign_tests.START, id=made["id"], v=version), "campaignStart")
    return str(made["id"])


async def received(tenant: Tenant, services: Services, by: Any = DELIVERED_BY) -> Counter[str]:
    """What the person's phone receives from the outbox, by cause."""
    phone = Phone()
    await communication.deliver_due(services, {"sms": phone}, now=by)
    mine = [m for m in phone.sent if m.institution_id == tenant.id]
    assert {m.address[-11:] for m in mine} <= {PHONE}
    causes = dict(await Communication.filter(id__in=[m.communication_id for m in mine]).values_list("id", "cause"))
    return Counter(str(causes[m.communication_id]) for m in mine)


async def log_of(tenant: Tenant, pid: uuid.UUID) -> Counter[tuple[str, str, str | None]]:
    reply = await tenant.call("front_desk", LOG, id=str(pid))
    assert reply.errors == [], reply.errors
    return Counter((n["cause"], n["status"], n["refusal"]) for n in reply.data["patientCommunications"]["nodes"])


async def test_a_campaign_queued_for_both_files_reaches_the_person_once(tenant: Tenant, services: Services) -> None:
    survivor, duplicate = await person_file(tenant, "Zhang Wei"), await person_file(tenant, "张伟")
    await campaign_to_both(tenant)
    await campaigns.advance()

    assert (await merge(tenant, survivor, duplicate)).errors == []

    assert await received(tenant, services) == {"campaign": 1}
    assert await log_of(tenant, survivor) == {("CAMPAIGN", "SENT", None): 1, ("CAMPAIGN", "REFUSED", "DUPLICATE"): 1}
    kept = await Communication.get(institution_id=tenant.id, cause="campaign", status="sent")
    assert kept.key.endswith(str(survivor))  # the survivor's own


async def test_distinct_campaigns_and_care_messages_all_reach_the_person(tenant: Tenant, services: Services,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed twin: one message of each campaign, and every appointment's confirmation and reminder (each about
    its own appointment: the merged file's moved to the survivor)."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    survivor, duplicate = await person_file(tenant, "Zhang Wei"), await person_file(tenant, "张伟")
    schedule = await make_schedule(tenant)
    await book(tenant, schedule, survivor)
    await book(tenant, schedule, duplicate, start=(TOMORROW_9 + timedelta(minutes=30)).isoformat())
    for _ in range(2):
        await campaign_to_both(tenant)
        await campaigns.advance()

    assert (await merge(tenant, survivor, duplicate)).errors == []

    assert await received(tenant, services) == {"campaign": 2, "appointment_confirmation": 2,
                                                "appointment_reminder": 2}


async def test_a_campaign_batch_that_read_the_merged_file_reaches_the_person_once(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch read the merged file before the merge and queued its message on the survivor after it; the survivor's
    own came in the next batch."""
    duplicate, survivor = await person_file(tenant, "张伟"), await person_file(tenant, "Zhang Wei")
    await campaign_to_both(tenant)
    merged_before_transaction(monkeypatch, campaigns, tenant, survivor, duplicate)

    await campaigns.advance(batch=1)  # the duplicate's: registered first, it is first in the audience
    await campaigns.advance()

    assert await received(tenant, services) == {"campaign": 1}
    assert await log_of(tenant, survivor) == {("CAMPAIGN", "SENT", None): 1, ("CAMPAIGN", "REFUSED", "DUPLICATE"): 1}


async def test_a_campaign_sent_to_the_merged_file_is_not_sent_again(tenant: Tenant, services: Services) -> None:
    """The merged file's message went before the merge; the survivor's, queued after it, is the twin."""
    duplicate, survivor = await person_file(tenant, "张伟"), await person_file(tenant, "Zhang Wei")
    await campaign_to_both(tenant)
    await campaigns.advance(batch=1)  # the duplicate's
    assert await received(tenant, services) == {"campaign": 1}

    assert (await merge(tenant, survivor, duplicate)).errors == []
    await campaigns.advance()  # the survivor's

    assert await received(tenant, services) == {}
    assert await log_of(tenant, survivor) == {("CAMPAIGN", "SENT", None): 1, ("CAMPAIGN", "REFUSED", "DUPLICATE"): 1}


async def test_a_birthday_greeted_on_both_files_is_greeted_once(tenant: Tenant, services: Services) -> None:
    birthday = date(2031, 10, 1)
    survivor = await person_file(tenant, "Zhang Wei", birthDate="1960-10-01")
    duplicate = await person_file(tenant, "张伟", birthDate="1960-10-01")
    await reminder_tests.sweep(tenant, reminder_tests.local(birthday, time(8)))  # greetings at 09:00

    assert (await merge(tenant, survivor, duplicate)).errors == []

    assert await received(tenant, services, reminder_tests.local(birthday, time(9))) == {"birthday_greeting": 1}


# -- a worker that claimed a message and died ----------------------------------------------------------------------


@pytest.fixture
def outbox_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The outbox's time (a worker's, and the lease's the merge compares with), before anything else in the shared
    outbox; the campaigns below queue their messages at it."""
    clock = Clock(datetime(1990, 5, 2, 10, 0, tzinfo=ZONE))
    monkeypatch.setattr(communication, "_now", clock)
    return clock


async def a_worker_holds(services: Services, count: int) -> tuple[Held, asyncio.Task[int]]:
    """A worker that claimed what is due (``count`` messages) and is handing it to a gateway that has not answered."""
    gateway = Held()
    worker = asyncio.create_task(communication.deliver_due(services, {"sms": gateway}))
    await gateway.handed_over(count)
    return gateway, worker


async def dies(worker: asyncio.Task[int], clock: Clock) -> None:
    """The worker dies mid-batch (its rows keep ``leased_until``), and its lease runs out."""
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    clock.now += communication.LEASE + timedelta(minutes=1)


async def test_a_campaign_whose_worker_died_with_both_messages_reaches_the_person_once(
        tenant: Tenant, services: Services, outbox_clock: Clock) -> None:
    """A worker claimed both files' messages and died; the files are merged once its lease is over. Both messages
    counted as out (``leased_until`` set): neither was refused, and both went when they came back."""
    clock = outbox_clock
    survivor, duplicate = await person_file(tenant, "Zhang Wei"), await person_file(tenant, "张伟")
    await received(tenant, services, clock.now)  # what the shared outbox holds due by now
    await campaign_to_both(tenant)
    await campaigns.advance(clock.now)
    _, worker = await a_worker_holds(services, 2)
    await dies(worker, clock)

    assert (await merge(tenant, survivor, duplicate)).errors == []

    assert await received(tenant, services, clock.now) == {"campaign": 1}
    assert await log_of(tenant, survivor) == {("CAMPAIGN", "SENT", None): 1, ("CAMPAIGN", "REFUSED", "DUPLICATE"): 1}
    kept = await Communication.get(institution_id=tenant.id, cause="campaign", status="sent")
    assert kept.key.endswith(str(survivor))  # neither was out: the survivor's own goes


@pytest.mark.parametrize("worker_alive", [True, False], ids=["worker-sending", "worker-died"])
async def test_a_message_with_a_worker_goes_only_while_its_lease_runs(
        tenant: Tenant, services: Services, outbox_clock: Clock, worker_alive: bool) -> None:
    """The merged file's message is with a worker when the files are merged; the survivor's own is queued. While the
    worker's lease runs the message it is handing over goes, and the survivor's own is the twin; once the worker died
    and its lease is over, the survivor's own goes and the moved one is the twin (it was counted as out, and went
    when it came back)."""
    clock = outbox_clock
    duplicate, survivor = await person_file(tenant, "张伟"), await person_file(tenant, "Zhang Wei")
    await received(tenant, services, clock.now)
    await campaign_to_both(tenant)
    await campaigns.advance(clock.now, batch=1)  # the duplicate's: registered first, it is first in the audience
    gateway, worker = await a_worker_holds(services, 1)
    if not worker_alive:
        await dies(worker, clock)
    await campaigns.advance(clock.now)  # the survivor's

    assert (await merge(tenant, survivor, duplicate)).errors == []

    if worker_alive:
        gateway.answer(later_ones_too=True)
        assert await asyncio.wait_for(worker, 10) == 1
    assert await received(tenant, services, clock.now) == ({} if worker_alive else {"campaign": 1})
    assert await log_of(tenant, survivor) == {("CAMPAIGN", "SENT", None): 1, ("CAMPAIGN", "REFUSED", "DUPLICATE"): 1}
    kept = await Communication.get(institution_id=tenant.id, cause="campaign", status="sent")
    assert kept.key.endswith(str(duplicate if worker_alive else survivor))


async def test_a_birthday_greeting_moved_to_a_file_born_another_day_is_not_sent(tenant: Tenant,
                                                                                 services: Services) -> None:
    """The merged file's birthday greeting, moved to a survivor born another day, went out on the merged file's day
    (found in review). The survivor's birth date stands: the greeting's cause went away, and it is cancelled when it
    falls due. The survivor's own birthday is greeted, on its day."""
    their_day, survivors_day = date(2031, 10, 1), date(2031, 10, 5)
    survivor = await person_file(tenant, "Zhang Wei", birthDate="1960-10-05")
    duplicate = await person_file(tenant, "张伟", birthDate="1960-10-01")
    await reminder_tests.sweep(tenant, reminder_tests.local(their_day, time(8)))

    assert (await merge(tenant, survivor, duplicate)).errors == []

    assert await received(tenant, services, reminder_tests.local(their_day, time(9))) == {}
    assert await log_of(tenant, survivor) == {("BIRTHDAY_GREETING", "CANCELLED", None): 1}
    await reminder_tests.sweep(tenant, reminder_tests.local(survivors_day, time(8)))
    assert await received(tenant, services, reminder_tests.local(survivors_day, time(9))) == {"birthday_greeting": 1}


async def test_a_birthday_greeting_queued_on_the_survivor_from_the_merged_files_birth_date_is_not_sent(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep read the merged file's birth date before the merge and queued its greeting after it, on the
    survivor (born another day): cancelled as it is queued."""
    their_day = date(2031, 10, 1)
    duplicate = await person_file(tenant, "张伟", birthDate="1960-10-01")
    survivor = await person_file(tenant, "Zhang Wei", birthDate="1960-10-05")
    merged_before_transaction(monkeypatch, reminder, tenant, survivor, duplicate)
    await reminder_tests.sweep(tenant, reminder_tests.local(their_day, time(8)))

    assert await log_of(tenant, survivor) == {("BIRTHDAY_GREETING", "CANCELLED", None): 1}
    assert await received(tenant, services, reminder_tests.local(their_day, time(9))) == {}


async def test_a_moved_message_names_the_survivor_when_it_is_sent(tenant: Tenant, services: Services,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A message queued on the merged file kept the name read then (its variables) and greeted the person by the
    merged file's name after the merge (found in review). The name is the file's as it is sent: the survivor's."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    survivor, duplicate = await person_file(tenant, "Zhang Wei"), await person_file(tenant, "Zhang Wie")
    await book(tenant, await make_schedule(tenant), duplicate)

    assert (await merge(tenant, survivor, duplicate)).errors == []

    phone = Phone()
    await communication.deliver_due(services, {"sms": phone}, now=DELIVERED_BY)
    mine = [m for m in phone.sent if m.institution_id == tenant.id]
    assert len(mine) == 2  # the confirmation and the reminder
    assert all("Zhang Wei" in m.body and "Zhang Wie" not in m.body for m in mine), [m.body for m in mine]


async def test_a_campaigns_queued_count_stays_as_queued_and_its_progress_counts_the_twin(tenant: Tenant) -> None:
    """The campaign's queued and refused count the queueing (every recipient once), as they were when it queued
    them; what became of a message later is its progress: the merged file's twin refused DUPLICATE, one waiting
    (decided in review: queued is not lowered, as a message sent, cancelled or refused at sending does not lower
    it)."""
    survivor, duplicate = await person_file(tenant, "Zhang Wei"), await person_file(tenant, "张伟")
    made = await campaign_to_both(tenant)
    await campaigns.advance()

    assert (await merge(tenant, survivor, duplicate)).errors == []

    found = campaign_tests.ok(await tenant.call("admin", campaign_tests.ONE, id=made), "campaign")
    assert (found["queued"], found["refused"]) == (2, [])
    assert (found["progress"]["waiting"], found["progress"]["refused"]) == (1, [{"reason": "DUPLICATE", "count": 1}])
