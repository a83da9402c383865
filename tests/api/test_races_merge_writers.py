"""Writers that take a file from a row read earlier, at the moment a merge of that file runs (PostgreSQL; found in
review). Each is started while the merge holds both files and has moved nothing yet, given a second to reach what it
waits for, then the merge goes on. Before: a message was queued on the merged file (the sweep had read the file as
active, its insert waited for the merge and then went in), or the writer, holding its own row (the appointment, the
contract, the ticket, the task, the invitations) and waiting for the file, deadlocked with the merge waiting to move
that row: one of the two answered INTERNAL_SERVER_ERROR, or a sweep's batch failed. Now each waits for the merge
first and writes on the survivor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from models import Appointment, Communication, Contract, Institution, Patient, SurveyInvitation, Ticket
from resolvers import appointment as appointments
from resolvers import campaign as campaigns
from resolvers import contract as contracts
from resolvers import patient_merge, reminder, survey
from resolvers.context import Services
from tests import surveys
from tests.api import test_campaigns as campaign_tests
from tests.api import test_contract_reminders as contract_tests
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

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")


async def during_a_held_merge(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor: uuid.UUID,
                              duplicate: uuid.UUID, write: Callable[[], Awaitable[Any]]) -> Any:
    """``write`` run while a merge of the two files holds both, then the merge let go: both must end, the merge
    done and the write neither failed nor deadlocked; answers what ``write`` answered."""
    locked, release = asyncio.Event(), asyncio.Event()
    consent = patient_merge._stricter_consent

    async def held(*args: Any) -> Any:  # runs once the merge has locked both files
        locked.set()
        await release.wait()
        return await consent(*args)

    monkeypatch.setattr(patient_merge, "_stricter_consent", held)
    merging = asyncio.create_task(merge(tenant, survivor, duplicate))
    await asyncio.wait_for(locked.wait(), 10)
    writing = asyncio.ensure_future(write())
    await asyncio.sleep(1.0)  # the write reaches the file the merge holds, and waits
    release.set()
    merged, written = await asyncio.wait_for(asyncio.gather(merging, writing, return_exceptions=True), 30)
    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(written, BaseException), repr(written)
    assert getattr(written, "errors", []) == [], written.errors
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
    locked, release = asyncio.Event(), asyncio.Event()
    consent = patient_merge._stricter_consent

    async def held(*args: Any) -> Any:  # the first merge holds both files until released; the second goes on
        locked.set()
        await release.wait()
        return await consent(*args)

    monkeypatch.setattr(patient_merge, "_stricter_consent", held)
    merging = asyncio.create_task(merge(tenant, survivor, duplicate))
    await asyncio.wait_for(locked.wait(), 10)
    merging_again = asyncio.ensure_future(merge(tenant, survivor, duplicate))
    await asyncio.sleep(0.5)  # the second merge waits for the survivor
    cancelling = asyncio.ensure_future(tenant.call("front_desk", CANCEL, id=made["id"], reason="INSTITUTION"))
    await asyncio.sleep(1.0)  # the cancel waits for the duplicate
    release.set()
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
