"""Writers that take a file from a row read earlier, at the moment a merge of that file runs (PostgreSQL; found in
review). Each is started while the merge is held with both files locked and nothing moved yet (``tests.locks.held``);
once it waits for what the merge holds, the merge goes on. Before: a message was queued on the merged file (the sweep
had read the file as active, its insert waited for the merge and then went in), or the writer, holding its own row (the
appointment, the contract, the ticket, the task, the invitations) and waiting for the file, deadlocked with the merge
waiting to move that row: one of the two answered INTERNAL_SERVER_ERROR, or a sweep's batch failed. Now each waits for
the merge first and writes on the survivor."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from core.messages import Outgoing, SendFailed
from models import Appointment, Communication, Contract, Institution, Patient, SurveyInvitation, Ticket
from resolvers import appointment as appointments
from resolvers import campaign as campaigns
from resolvers import communication, patient_merge, reminder, survey
from resolvers import contract as contracts
from resolvers.context import Services
from tests import surveys
from tests.api import test_campaigns as campaign_tests
from tests.api import test_contract_reminders as contract_tests
from tests.api import test_contract_signatures as signature_tests
from tests.api import test_reminders as reminder_tests
from tests.api.test_appointments import CANCEL, NOW, book, make_schedule
from tests.api.test_contract_renewal import at_local
from tests.api.test_patient_merge import merge
from tests.api.test_patient_merge_messages import messages, on_the_survivor, started_campaign
from tests.api.test_survey_invitations import INVITE, TASK_COMPLETE, TASK_CREATE, TICKET_CREATE, TICKET_MOVE
from tests.conftest import BACKEND
from tests.contracts import draft, item_input, make_item, signed, today
from tests.daytime import ZONE
from tests.factories import Tenant
from tests.locks import held, pause_before, until_waiting
from tests.patients import events_since, mark

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")


async def during_a_held_merge(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor: uuid.UUID,
                              duplicate: uuid.UUID, write: Callable[[], Awaitable[Any]]) -> Any:
    """``write`` run while a merge of the two files holds both, then the merge let go: both must end, the merge
    done and the write neither failed nor deadlocked nor refused; answers what ``write`` answered."""
    written = await meeting_a_held_merge(tenant, monkeypatch, survivor, duplicate, write)
    assert getattr(written, "errors", []) == [], written.errors
    return written


async def meeting_a_held_merge(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor: uuid.UUID,
                               duplicate: uuid.UUID, write: Callable[[], Awaitable[Any]]) -> Any:
    """``during_a_held_merge`` for a write that may be refused: both must end, the merge done and the write
    neither failed (an exception, not an answer) nor deadlocked; answers what ``write`` answered."""
    locked = pause_before(monkeypatch, patient_merge, "_stricter_consent")  # run once the merge has locked both files
    async with held(merge(tenant, survivor, duplicate), locked) as merging:
        writing = asyncio.ensure_future(write())
        await until_waiting([writing])  # the write reaches the file the merge holds, and waits
        locked.release()
        merged, written = await asyncio.wait_for(asyncio.gather(merging, writing, return_exceptions=True), 30)
    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(written, BaseException), repr(written)
    assert (await Patient.get(id=duplicate)).status == "merged"
    return written


# -- messages ---------------------------------------------------------------------------------------------------


async def test_a_reminder_swept_during_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    now = reminder_tests.local(date(2031, 5, 12), time(7))
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    visit = await reminder_tests.finished_visit(tenant, duplicate, date(2031, 5, 13))
    institution = await Institution.get(id=tenant.id)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: reminder.sweep_institution(institution, now))

    on_the_survivor(await messages(tenant, f"revisit:{visit}:"), survivor, duplicate)


async def test_a_campaign_batch_queued_during_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    duplicate, survivor = await campaign_tests.patient(tenant), await campaign_tests.patient(tenant)
    campaign = await started_campaign(tenant)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: campaigns.advance(batch=1))

    on_the_survivor(await messages(tenant, f"campaign:{campaign}:{duplicate}"), survivor, duplicate)
    await campaigns.advance()


async def test_an_appointment_cancelled_during_a_merge_tells_the_survivor(tenant: Tenant,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The cancel held the appointment, then its message waited for the file: the merge, waiting to move the
    appointment, deadlocked with it."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    schedule = await make_schedule(tenant)
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    made = await book(tenant, schedule, duplicate)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: tenant.call(
        "front_desk", CANCEL, id=made["id"], reason="INSTITUTION"))

    on_the_survivor(await messages(tenant, f"appointment:{made['id']}:cancellation"), survivor, duplicate)


async def test_a_contract_reminder_swept_during_a_merge_goes_to_the_survivor(tenant: Tenant,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep held the contract, then its message waited for the file: a deadlock with the merge."""
    end = today() + timedelta(days=90)
    survivor, duplicate = await contract_tests.client(tenant), await contract_tests.client(tenant)
    contract = await contract_tests.active(tenant, duplicate, end=end)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: contract_tests.sweep(contract_tests.local(end - timedelta(days=60))))

    on_the_survivor(await messages(tenant, f"contract:{contract['id']}:"), survivor, duplicate)


async def test_a_survey_reminder_swept_during_a_merge_goes_to_the_survivor(tenant: Tenant, services: Services,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep held the invitations, then their reminders waited for the file: a deadlock with the merge."""
    q = await surveys.questionnaire(tenant)
    await surveys.trigger(tenant, q, reminderAfterDays=3)
    duplicate, invitation, _ = await surveys.invited(tenant, services, q)
    survivor = await surveys.reachable(tenant)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: survey.remind_unanswered(invitation.send_at + timedelta(days=3, minutes=1)))

    on_the_survivor(await messages(tenant, f"survey:{invitation.id}:reminder"), survivor, duplicate)


# -- the contract sweep's automatic renewal -----------------------------------------------------------------------


async def test_a_contract_renewed_by_the_sweep_during_a_merge_is_the_survivors(tenant: Tenant, services: Services,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The expiry sweep held the ended contract, then its next term waited for the file: a deadlock with the merge
    waiting to move the contract (the sweep's whole run failed, or the merge)."""
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    end = date(2025, 6, 30)
    made = await draft(tenant, duplicate, [item_input(await make_item(tenant))], startOn="2024-07-01",
                       endOn=end.isoformat(), autoRenew=True)
    await signed(tenant, services, made["id"])
    now = at_local(end + timedelta(days=1), time(0, 5), "Asia/Shanghai")

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: contracts.expire_due(services.keyring, now))

    assert (await Contract.get(id=made["id"])).status == "renewed"
    renewals = await Contract.filter(renewal_of_id=made["id"]).values_list("patient_id", "status")
    assert renewals == [(survivor, "active")], renewals


async def test_a_contract_signed_during_a_merge_is_recorded_on_the_survivor(tenant: Tenant,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """contractSign (contract.writing) holds the client's file before the contract and its version, as the merge
    locks the file before it moves the contract: it waits for the merge, neither deadlocks, and the signature and
    the activation are recorded on the file the contract is on then (test_patient_merge_contract_writes makes the
    merge sequential)."""
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    sent = await signature_tests.send(tenant, await signature_tests.drafted(tenant, patient_id=duplicate))
    assert (await signature_tests.sign(tenant, "front_desk", sent, "CLIENT")).errors == []
    seq = await mark(tenant.id)

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: signature_tests.sign(tenant, "admin", sent, "INSTITUTION"))

    stored = await Contract.get(id=sent["id"])
    assert (stored.patient_id, stored.status) == (survivor, "active")
    recorded = [(e.resource_type, e.patient_id) for e in await events_since(tenant.id, seq, outcome="allowed")
                if e.resource_type in ("contract", "contract_signature") and e.action != "read"]
    assert recorded and {patient for _, patient in recorded} == {survivor}, recorded


# -- survey invitations ------------------------------------------------------------------------------------------


async def test_a_ticket_closed_during_a_merge_invites_the_survivor(tenant: Tenant,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """ticketTransition to CLOSED held the ticket, then its survey invitation waited for the file: a deadlock with
    the merge waiting to move the ticket."""
    await surveys.trigger(tenant, await surveys.questionnaire(tenant), event="TICKET_CLOSED", delayHours=0)
    survivor, duplicate = await surveys.reachable(tenant), await surveys.reachable(tenant)
    ticket = (await tenant.call("front_desk", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my bill", "patientId": str(duplicate)}
    )).data["ticketCreate"]
    for to, more in (("ACKNOWLEDGED", {}), ("INVESTIGATING", {}), ("RESOLVED", {"resolution": "Done"})):
        assert (await tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to=to, **more)).errors == []

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                              lambda: tenant.call("front_desk", TICKET_MOVE, id=ticket["id"], to="CLOSED"))

    invited = await SurveyInvitation.filter(ticket_id=ticket["id"]).values_list("patient_id", flat=True)
    assert invited == [survivor], invited


async def test_a_call_completed_during_a_merge_invites_the_survivor(tenant: Tenant,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """followUpTaskComplete wrote the task, then its survey invitation waited for the file: a deadlock with the merge
    waiting to move the task."""
    await surveys.trigger(tenant, await surveys.questionnaire(tenant), event="FOLLOW_UP_COMPLETED", delayHours=0)
    survivor, duplicate = await surveys.reachable(tenant), await surveys.reachable(tenant)
    task = (await tenant.call("doctor", TASK_CREATE, input={
        "patientId": str(duplicate), "dueOn": datetime.now(ZONE).date().isoformat(),  # today there, not in UTC
        "ownerId": str(tenant.staff_ids["nurse"])})).data["followUpTaskCreate"]

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: tenant.call(
        "nurse", TASK_COMPLETE, id=task["id"], input={"reached": True, "condition": "BETTER", "satisfaction": 5}))

    invited = await SurveyInvitation.filter(follow_up_task_id=task["id"]).values_list("patient_id", flat=True)
    assert invited == [survivor], invited


async def test_a_call_completed_during_a_merge_opens_its_ticket_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """followUpTaskComplete with openTicket waited for the file, then opened the ticket on the file it had read,
    merged by then: refused inside its transaction, INTERNAL_SERVER_ERROR."""
    survivor, duplicate = await surveys.reachable(tenant), await surveys.reachable(tenant)
    task = (await tenant.call("doctor", TASK_CREATE, input={
        "patientId": str(duplicate), "dueOn": datetime.now(ZONE).date().isoformat(),
        "ownerId": str(tenant.staff_ids["nurse"])})).data["followUpTaskCreate"]

    await during_a_held_merge(tenant, monkeypatch, survivor, duplicate, lambda: tenant.call(
        "nurse", TASK_COMPLETE, id=task["id"], input={"reached": True, "condition": "WORSE", "openTicket": True}))

    tickets = await Ticket.filter(institution_id=tenant.id).values_list("patient_id", flat=True)
    assert tickets == [survivor], tickets


async def test_a_survey_campaign_during_a_merge_invites_no_merged_file(tenant: Tenant,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """surveyInvite read its audience's files without a lock: the merged file, read as active, was invited (the
    invitation's foreign key waited for the merge, then went in on the merged file) while its message, queued on the
    file as it then was, went to the survivor, which had its own as well."""
    q = await surveys.questionnaire(tenant)
    duplicate, survivor = await surveys.reachable(tenant), await surveys.reachable(tenant)

    reply = await during_a_held_merge(tenant, monkeypatch, survivor, duplicate,
                                      lambda: tenant.call("admin", INVITE, qid=str(q.id)))

    invited = await SurveyInvitation.filter(institution_id=tenant.id).values_list("patient_id", flat=True)
    assert invited == [survivor], invited
    told = await Communication.filter(institution_id=tenant.id, cause="survey_invitation").values_list(
        "patient_id", flat=True)
    assert told == [survivor], told
    assert (reply.data["surveyInvite"]["invited"], reply.data["surveyInvite"]["inactive"]) == (1, 1)


# -- the order the files are held in --------------------------------------------------------------------------------


async def test_a_cancel_as_a_merge_is_sent_twice_holds_the_files_in_id_order(tenant: Tenant,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """access.current_files held the files it was given, then, in a statement of its own, the survivor a merge had
    led one of them to: out of id order. A merge sent twice (a second click at the desk) and a cancel of an
    appointment on the duplicate: the first merge held both files; the second waited for the survivor (first in id
    order), the cancel for the duplicate. The first merge done, the cancel held the duplicate, merged now, and waited
    for the survivor, which the second merge held while it waited for the duplicate: a deadlock, one of the two
    INTERNAL_SERVER_ERROR. Now the cancel lets go of the duplicate (its savepoint) and holds both in id order: the
    second merge goes first and is refused (the duplicate changed since it was read: CONFLICT), then the cancel
    follows the appointment to the survivor."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    schedule = await make_schedule(tenant)
    survivor, duplicate = sorted([await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)])
    made = await book(tenant, schedule, duplicate)
    locked = pause_before(monkeypatch, patient_merge, "_stricter_consent")  # the first merge's; the second goes on
    async with held(merge(tenant, survivor, duplicate), locked) as merging:
        merging_again = asyncio.ensure_future(merge(tenant, survivor, duplicate))
        await until_waiting([merging_again])  # the second merge waits for the survivor
        cancelling = asyncio.ensure_future(tenant.call("front_desk", CANCEL, id=made["id"], reason="INSTITUTION"))
        await until_waiting([merging_again, cancelling], sessions=2)  # the cancel waits for the duplicate
        locked.release()
        merged, merged_again, cancelled = await asyncio.wait_for(
            asyncio.gather(merging, merging_again, cancelling, return_exceptions=True), 30)

    for reply in (merged, merged_again, cancelled):
        assert not isinstance(reply, BaseException), repr(reply)
    assert merged.errors == [], merged.errors
    assert cancelled.errors == [], cancelled.errors
    assert merged_again.codes == ["CONFLICT"], merged_again.errors
    stored = await Appointment.get(id=made["id"])
    assert (stored.patient_id, stored.status) == (survivor, "cancelled")
    on_the_survivor(await messages(tenant, f"appointment:{made['id']}:cancellation"), survivor, duplicate)


# -- the order the messages are locked in ---------------------------------------------------------------------------


class FailingWhenTold:
    """A gateway that takes each message, then, once told, fails them all (a transient failure: each is retried);
    ``all_handed`` is set once ``count`` messages are with it."""

    def __init__(self, count: int) -> None:
        self.handed: list[uuid.UUID] = []
        self.count, self.all_handed, self.release = count, asyncio.Event(), asyncio.Event()

    async def send(self, message: Outgoing) -> str | None:
        self.handed.append(message.communication_id)
        if len(self.handed) >= self.count:
            self.all_handed.set()
        await self.release.wait()
        raise SendFailed("http_503")


async def test_greetings_scheduled_again_as_the_outbox_settles_them_are_locked_in_id_order(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """communication.schedule_many locked its own rows (in id order), then, in a statement of its own, the greeting
    and campaign messages that may be their twins (refuse_twins, added for merged files): out of id order. The
    outbox's settle locks its batch in id order. A holiday greeting of one patient (the first row) and her birthday
    greeting (the second) out with a worker; her birthday greeting and another patient's holiday greeting (the
    third, held a moment by another writer) scheduled again: the scheduler held the second and waited for the third;
    the worker's gateway failed, and its settle held the first and waited for the second; the third let go, the
    scheduler asked for the first, a candidate twin of the two greetings of that day: a deadlock, one of the two
    failed. Now the scheduler locks its rows and their candidates in one statement in id order: the settle waits for
    it, and both end."""
    now = datetime.combine(date(1990, 3, 2), time(10), tzinfo=ZONE)  # before anything else in the shared outbox
    monkeypatch.setattr(communication, "_now", lambda: now)
    her = await reminder_tests.patient(tenant, birthDate="1960-03-02")  # her birthday greeting goes on her day
    other = await reminder_tests.patient(tenant)
    day = now.date().isoformat()

    async def greeting(cause: str, pid: uuid.UUID, due_at: datetime) -> communication.Request:
        request = communication.Request(f"{cause.split('_')[0]}:{pid}:{day}", cause, pid, due_at,
                                        {"patient_name": "Li Na"})
        async with in_transaction():
            await communication.schedule_many(tenant.id, [request])
        return request

    first = await greeting("holiday_greeting", her, now)
    second = await greeting("birthday_greeting", her, now)
    third = await greeting("holiday_greeting", other, now + timedelta(hours=1))  # not due: not the worker's
    rows = {r.key: r for r in await Communication.filter(institution_id=tenant.id)}
    assert sorted(rows, key=lambda k: rows[k].id) == [first.key, second.key, third.key]
    assert {r.status for r in rows.values()} == {"queued"}

    gateway = FailingWhenTold(2)
    worker = asyncio.create_task(communication.deliver_due(services, dict.fromkeys(("email", "sms"), gateway),
                                                           now=now))
    await asyncio.wait_for(gateway.all_handed.wait(), 10)
    held, let_go = asyncio.Event(), asyncio.Event()

    async def another_writer() -> None:  # holds the third row a moment, as any writer of it does
        async with in_transaction():
            await Communication.filter(id=rows[third.key].id).select_for_update().first()
            held.set()
            await let_go.wait()

    holding = asyncio.create_task(another_writer())
    await asyncio.wait_for(held.wait(), 10)

    async def schedule_again() -> None:
        async with in_transaction():
            await communication.schedule_many(tenant.id, [second, third])

    scheduling = asyncio.create_task(schedule_again())
    await until_waiting([scheduling])  # the scheduler waits for the third row
    gateway.release.set()
    await until_waiting([scheduling, worker], sessions=2)  # the worker's settle waits too
    let_go.set()
    done = await asyncio.wait_for(asyncio.gather(scheduling, worker, holding, return_exceptions=True), 30)

    assert not any(isinstance(outcome, BaseException) for outcome in done), done
    after = {r.key: r for r in await Communication.filter(institution_id=tenant.id)}
    assert [(after[k].status, after[k].attempts) for k in (first.key, second.key, third.key)] == [
        ("queued", 1), ("queued", 1), ("queued", 0)]  # the two out retried, none refused


async def test_a_greeting_scheduled_again_as_a_merge_moves_it_is_locked_again_with_the_survivors(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """schedule_many reads its rows, then locks them with the candidates for their twins on their files: a merge that
    moves one of the rows meanwhile (the scheduler waits for it) puts it on a file whose candidates were not locked.
    That try is let go (its savepoint) and the rows are locked again with the survivor's candidates, in id order; the
    greeting, moved, is scheduled on the survivor. Runs the two to completion (the order is the point: no outcome
    tells it from locking the survivor's candidates after)."""
    now = datetime.combine(date(1990, 3, 3), time(10), tzinfo=ZONE)
    monkeypatch.setattr(communication, "_now", lambda: now)
    born = "1960-03-03"  # the greeting, moved, is for the survivor's birthday too
    survivor, duplicate = (await reminder_tests.patient(tenant, birthDate=born),
                           await reminder_tests.patient(tenant, birthDate=born))
    birthday = communication.Request(f"birthday:{duplicate}:{now.date()}", "birthday_greeting", duplicate,
                                     now + timedelta(hours=1), {"patient_name": "Li Na"})
    async with in_transaction():
        await communication.schedule_many(tenant.id, [birthday])

    async def schedule_again() -> None:
        async with in_transaction():
            await communication.schedule_many(tenant.id, [dataclasses.replace(birthday, due_at=now)])

    # run once the merge has moved the rows, before it commits
    moved = pause_before(monkeypatch, patient_merge, "_one_greeting_or_campaign_message_each")
    async with held(merge(tenant, survivor, duplicate), moved) as merging:
        scheduling = asyncio.create_task(schedule_again())
        await until_waiting([scheduling])  # the scheduler waits for the row the merge moved
        moved.release()
        merged, scheduled = await asyncio.wait_for(asyncio.gather(merging, scheduling, return_exceptions=True), 30)

    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(scheduled, BaseException), repr(scheduled)
    row = await Communication.get(key=birthday.key)
    assert (row.patient_id, row.status, row.due_at) == (survivor, "queued", now)


async def test_a_merge_as_the_outbox_settles_the_files_greetings_locks_them_in_id_order(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge moved the duplicate's messages in one UPDATE, which locks them in the order it finds them, then
    (refuse_twins) locked the survivor's greetings and campaign messages: out of id order, while the outbox's settle
    locks its batch in id order. The survivor's holiday greeting (the first row) and the duplicate's (the second) out
    with a worker: the merge moved the second; the worker's gateway failed and its settle held the first and waited
    for the second; the merge then asked for the first, a candidate twin: a deadlock, one of the two failed. Now the
    merge locks both files' messages in one statement in id order before it moves any: the settle waits for the
    merge, and both end (both greetings were out at the merge: neither is refused, both retried)."""
    now = datetime.combine(date(1990, 2, 26), time(10), tzinfo=ZONE)  # before anything else in the shared outbox
    monkeypatch.setattr(communication, "_now", lambda: now)
    survivor, duplicate = await reminder_tests.patient(tenant), await reminder_tests.patient(tenant)
    for pid in (survivor, duplicate):
        async with in_transaction():
            await communication.schedule_many(tenant.id, [communication.Request(
                f"holiday:{pid}:{now.date()}", "holiday_greeting", pid, now, {"patient_name": "Li Na"})])
    rows = list(await Communication.filter(institution_id=tenant.id).order_by("id"))
    assert [(r.patient_id, r.status) for r in rows] == [(survivor, "queued"), (duplicate, "queued")]

    gateway = FailingWhenTold(2)
    worker = asyncio.create_task(communication.deliver_due(services, {"email": gateway}, now=now))
    await asyncio.wait_for(gateway.all_handed.wait(), 10)
    # run once the merge has moved the rows, before refuse_twins
    moved = pause_before(monkeypatch, patient_merge, "_one_greeting_or_campaign_message_each")
    async with held(merge(tenant, survivor, duplicate), moved) as merging:
        gateway.release.set()
        await until_waiting([worker])  # the settle waits: for the second row (before the fix), or for the merge
        moved.release()
        merged, delivered = await asyncio.wait_for(asyncio.gather(merging, worker, return_exceptions=True), 30)

    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(delivered, BaseException), repr(delivered)
    after = list(await Communication.filter(institution_id=tenant.id).order_by("id"))
    assert [(r.patient_id, r.status, r.attempts) for r in after] == [(survivor, "queued", 1), (survivor, "queued", 1)]
    # Out of the way of the other tests' workers (their clocks are later than the retries).
    await Communication.filter(institution_id=tenant.id, status="queued").update(status="cancelled")


class AnsweringWhenTold:
    """A gateway that answers each message (taken) once told to; ``all_handed`` is set once ``count`` are with it."""

    def __init__(self, count: int) -> None:
        self.count, self.all_handed = count, asyncio.Event()
        self.answer: dict[uuid.UUID, asyncio.Event] = {}

    async def send(self, message: Outgoing) -> str | None:
        told = self.answer.setdefault(message.communication_id, asyncio.Event())
        if len(self.answer) >= self.count:
            self.all_handed.set()
        await told.wait()
        return f"gw-{message.communication_id}"

    def tell(self, communication_id: uuid.UUID) -> None:
        self.answer.setdefault(communication_id, asyncio.Event()).set()


async def test_messages_recorded_sent_together_are_locked_in_id_order(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox records what its senders answered in one transaction of every answer that came meanwhile
    (_write_sent), and it updated them one at a time in the order the answers came, not in id order, as every other
    writer of messages locks them (schedule_many, the settle, a merge). Three greetings out with a worker (A, B, C in
    id order): C answered first and its write waited for another writer holding C; meanwhile B, then A answered;
    a writer locking in id order held A. C let go, the worker wrote B then asked for A; the writer, holding A, asked
    for B: a deadlock, the worker's batch failed. Now the worker locks what it records in one statement in id order:
    it waits for the writer, and both end."""
    now = datetime.combine(date(1990, 2, 27), time(10), tzinfo=ZONE)  # before anything else in the shared outbox
    monkeypatch.setattr(communication, "_now", lambda: now)
    for _ in range(3):
        pid = await reminder_tests.patient(tenant)
        async with in_transaction():
            await communication.schedule_many(tenant.id, [communication.Request(
                f"holiday:{pid}:{now.date()}", "holiday_greeting", pid, now, {"patient_name": "Li Na"})])
    a, b, c = [row.id for row in await Communication.filter(institution_id=tenant.id).order_by("id")]

    gateway = AnsweringWhenTold(3)
    worker = asyncio.create_task(communication.deliver_due(services, {"email": gateway}, now=now))
    await asyncio.wait_for(gateway.all_handed.wait(), 10)

    async def holding(first: uuid.UUID, then: uuid.UUID | None, held: asyncio.Event, go: asyncio.Event) -> None:
        async with in_transaction():
            await Communication.filter(id=first).select_for_update().only("id").first()
            held.set()
            await go.wait()
            if then is not None:
                await Communication.filter(id=then).select_for_update().only("id").first()

    held_c, let_c_go = asyncio.Event(), asyncio.Event()
    holding_c = asyncio.create_task(holding(c, None, held_c, let_c_go))
    await asyncio.wait_for(held_c.wait(), 10)
    gateway.tell(c)
    await until_waiting([worker])  # the worker's write of C waits for C
    gateway.tell(b)
    await asyncio.sleep(0.2)
    gateway.tell(a)  # B, then A: recorded together, once C is
    await asyncio.sleep(0.3)
    held_a, on_to_b = asyncio.Event(), asyncio.Event()
    in_id_order = asyncio.create_task(holding(a, b, held_a, on_to_b))
    await asyncio.wait_for(held_a.wait(), 10)
    let_c_go.set()
    await asyncio.sleep(1.0)  # the worker writes B and waits for A (before the fix), or waits for A first
    on_to_b.set()
    done = await asyncio.wait_for(asyncio.gather(worker, holding_c, in_id_order, return_exceptions=True), 30)

    assert not any(isinstance(outcome, BaseException) for outcome in done), done
    assert done[0] == 3
    after = {row.id: row for row in await Communication.filter(institution_id=tenant.id)}
    assert [(after[i].status, after[i].gateway_message_id) for i in (a, b, c)] == [
        ("sent", f"gw-{i}") for i in (a, b, c)]
