"""The message outbox: scheduled in the caller's transaction, idempotent per cause, gated at scheduling and
again at sending, delivered at least once in leased batches, retried with backoff, never lost on restart.

Patients are registered and changed through the API; the outbox is driven as its callers drive it
(``communication.schedule`` inside a transaction, ``deliver_due`` with the moment it should take as
"now"), and what it recorded is read back through the communication log. Every moment is chosen in
the day (Shanghai, the tenants' zone) unless a test is about the night, so the quiet hours (21:00 to
08:00 by default) never depend on when the suite runs. The outbox table is shared by every
institution of the test database: each test looks only at its own patients' messages.
"""

from __future__ import annotations

import time as clock
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise.transactions import in_transaction

from app import db
from audit.events import Action
from core.messages import Outgoing, SendFailed
from core.settings import Settings
from models import (
    Appointment,
    AuditEvent,
    Communication,
    Contact,
    MessagingSettings,
    Patient,
    Schedule,
    Staff,
)
from models.fields import tags_to_db
from resolvers import communication
from resolvers.communication import LinkRefused
from resolvers.context import Services
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2030, 3, 12, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # 10:00 local, a Tuesday
PHONE, EMAIL = "13800138000", "li.na@example.com"
LOG = """query($id: ID!, $first: Int, $after: String) { patientCommunications(patientId: $id, first: $first,
  after: $after) { edges { node { id cause purpose channel status refusal dueAt sentAt attempts lastError subject
  body } } pageInfo { hasNextPage endCursor } } }"""
CONTACT = """mutation($patientId: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $patientId, input: $input) { id } }"""
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"


@dataclass
class Recorder:
    """A sender that keeps what it is given; ``failures`` are raised first, one per call."""

    sent: list[Outgoing] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    async def send(self, message: Outgoing) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"gw-{message.communication_id}"


def senders(recorder: Recorder) -> dict[str, Recorder]:
    return dict.fromkeys(("sms", "email", "wechat", "app"), recorder)


async def reachable(tenant: Tenant, **fields: Any) -> uuid.UUID:
    """A patient who consented to SMS and e-mail for care, with a phone and an e-mail address."""
    data = {"contactConsent": True, "contactChannels": ["SMS", "EMAIL"], "phone": PHONE, "email": EMAIL,
            "preferredChannel": "SMS", **fields}
    return await make_patient(tenant, **data)


async def purposes(patient_id: uuid.UUID, *values: str) -> None:
    await Patient.filter(id=patient_id).update(contact_purposes=tags_to_db(list(values)))


async def queue(tenant: Tenant, patient_id: uuid.UUID, key: str | None = None, cause: str = "appointment_reminder",
                due_at: datetime = DAY, **extra: Any) -> Communication:
    async with in_transaction():
        return await communication.schedule(tenant.id, key=key or f"test:{uuid.uuid4()}", cause=cause,
                                            patient_id=patient_id, due_at=due_at,
                                            variables={"patient_name": "Li Na", "date": "2030-03-13",
                                                       "time": "09:30", "place": "Chair 3",
                                                       "department_name": "Dentistry"}, **extra)


async def deliver(services: Services, recorder: Recorder, now: datetime) -> int:
    return await communication.deliver_due(services, senders(recorder), now=now)


async def row(message: Communication) -> Communication:
    return await Communication.get(id=message.id)


async def log(tenant: Tenant, patient_id: uuid.UUID, role: str = "front_desk") -> list[dict[str, Any]]:
    reply = await tenant.call(role, LOG, id=str(patient_id), first=50)
    assert reply.errors == [], reply.errors
    return [edge["node"] for edge in reply.data["patientCommunications"]["edges"]]


async def settings_of(tenant: Tenant, **values: Any) -> None:
    await MessagingSettings.update_or_create(defaults=values, institution_id=tenant.id)


# -- idempotent per cause ---------------------------------------------------------------------------------


async def test_scheduling_a_cause_twice_keeps_one_message_and_moves_it(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    first = await queue(tenant, pid, "appointment:x:reminder")
    again = await queue(tenant, pid, "appointment:x:reminder", due_at=DAY + timedelta(hours=2))

    assert again.id == first.id
    assert (await row(first)).due_at == DAY + timedelta(hours=2)
    assert await Communication.filter(institution_id=tenant.id, key="appointment:x:reminder").count() == 1

    recorder = Recorder()
    await deliver(services, recorder, DAY + timedelta(hours=2))
    sent = await row(first)
    assert sent.status == "sent" and len(recorder.sent) >= 1
    await queue(tenant, pid, "appointment:x:reminder", due_at=DAY + timedelta(days=3))  # settled: untouched
    assert (await row(first)).due_at == sent.due_at and (await row(first)).status == "sent"
    await deliver(services, recorder, DAY + timedelta(days=3))
    assert [m.communication_id for m in recorder.sent].count(first.id) == 1


async def test_cancel_queued_cancels_by_key_prefix_and_leaves_what_was_sent(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    confirmation = await queue(tenant, pid, f"appointment:{pid}:confirmation", due_at=DAY)
    reminder = await queue(tenant, pid, f"appointment:{pid}:reminder", due_at=DAY + timedelta(days=1))
    await deliver(services, Recorder(), DAY)

    assert await communication.cancel_queued(tenant.id, f"appointment:{pid}:") == 1

    assert (await row(confirmation)).status == "sent"
    assert (await row(reminder)).status == "cancelled" and (await row(reminder)).settled_at is not None


# -- the gate ---------------------------------------------------------------------------------------------


async def test_the_gate_refuses_each_reason_at_scheduling_and_records_it(tenant: Tenant) -> None:
    archived, deceased = await reachable(tenant), await reachable(tenant)
    archive = "mutation($id: ID!) { patientArchive(id: $id) { id } }"  # patientUpdate does not archive
    assert (await tenant.call("front_desk", archive, id=str(archived))).errors == []
    assert (await tenant.call("front_desk", UPDATE, id=str(deceased), input={"status": "DECEASED"})).errors == []
    unwilling = await reachable(tenant, contactConsent=False)
    care_only = await reachable(tenant)
    phone_only = await reachable(tenant, contactChannels=["PHONE"], preferredChannel="PHONE")
    no_phone = await make_patient(tenant, contactConsent=True, contactChannels=["SMS", "WECHAT"])
    keeper = await reachable(tenant)
    uninformed = await Contact.create(institution_id=tenant.id, patient_id=keeper, name="Wang", relationship="spouse",
                                      may_receive_information=False)
    capped = await reachable(tenant)
    await purposes(capped, "care", "greeting")
    await settings_of(tenant, non_care_cap=2, non_care_cap_days=7)

    refused = {
        "patient_inactive": [await queue(tenant, archived), await queue(tenant, deceased)],
        "no_consent": [await queue(tenant, unwilling)],
        "purpose_not_consented": [await queue(tenant, care_only, cause="birthday_greeting")],
        "no_channel": [await queue(tenant, phone_only)],
        "no_address": [await queue(tenant, no_phone)],
        "contact_not_informed": [await queue(tenant, keeper, contact_id=uninformed.id)],
    }
    greetings = [await queue(tenant, capped, cause="holiday_greeting", due_at=DAY + timedelta(days=d))
                 for d in (0, 2, 4)]
    refused["frequency_cap"] = [greetings[2]]

    for reason, messages in refused.items():
        for message in messages:
            stored = await row(message)
            assert (stored.status, stored.refusal) == ("refused", reason)
            assert stored.settled_at is not None
    assert [(await row(g)).status for g in greetings[:2]] == ["queued", "queued"]
    (entry,) = await log(tenant, unwilling)
    assert (entry["status"], entry["refusal"], entry["body"]) == ("REFUSED", "NO_CONSENT", None)
    assert {r for r, _ in [(m.refusal, 0) for m in await Communication.filter(
        institution_id=tenant.id, status="refused")]} == set(refused)


async def test_consent_withdrawn_between_scheduling_and_sending_refuses_at_sending(
        tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    assert (await row(message)).status == "queued"

    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={"contactConsent": False})
    assert reply.errors == []
    recorder = Recorder()
    await deliver(services, recorder, DAY)

    stored = await row(message)
    assert (stored.status, stored.refusal, stored.body) == ("refused", "no_consent", None)
    assert all(m.communication_id != message.id for m in recorder.sent)


async def test_an_archived_patient_is_never_sent_what_was_queued(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    await tenant.call("front_desk", "mutation($id: ID!) { patientArchive(id: $id) { id } }", id=str(pid))

    await deliver(services, Recorder(), DAY)

    assert ((await row(message)).status, (await row(message)).refusal) == ("refused", "patient_inactive")


async def test_quiet_hours_defer_to_their_end_at_scheduling_and_at_sending(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    night = datetime(2030, 3, 12, 23, 30, tzinfo=SHANGHAI)
    morning = datetime(2030, 3, 13, 8, 0, tzinfo=SHANGHAI)
    scheduled_at_night = await queue(tenant, pid, due_at=night)
    assert (await row(scheduled_at_night)).due_at == morning  # deferred, not refused
    assert (await row(scheduled_at_night)).status == "queued"

    evening = await queue(tenant, pid, due_at=datetime(2030, 3, 12, 20, 30, tzinfo=SHANGHAI))
    recorder = Recorder()
    await deliver(services, recorder, datetime(2030, 3, 12, 22, 0, tzinfo=SHANGHAI))  # the worker was late
    stored = await row(evening)
    assert (stored.status, stored.due_at, stored.attempts) == ("queued", morning, 0)
    assert recorder.sent == []

    await deliver(services, recorder, morning)
    assert {m.communication_id for m in recorder.sent} >= {evening.id, scheduled_at_night.id}


async def test_the_frequency_cap_counts_what_was_sent_at_sending(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    await purposes(pid, "care", "greeting", "campaign")
    await settings_of(tenant, non_care_cap=1, non_care_cap_days=7)
    first = await queue(tenant, pid, cause="birthday_greeting", due_at=DAY)
    later = await queue(tenant, pid, cause="campaign", due_at=DAY + timedelta(days=8))
    care = await queue(tenant, pid, due_at=DAY + timedelta(days=8))
    assert [(await row(m)).status for m in (first, later, care)] == ["queued"] * 3

    await deliver(services, Recorder(), DAY + timedelta(days=8))  # the first went out late, with the second

    assert [((await row(m)).status, (await row(m)).refusal) for m in (first, later, care)] == [
        ("sent", None), ("refused", "frequency_cap"), ("sent", None)]  # care messages are never capped


# -- channel, content, disclosure -----------------------------------------------------------------------


async def test_the_preferred_channel_then_the_first_consented_one_with_an_address(
        tenant: Tenant, services: Services) -> None:
    by_mail = await reachable(tenant, preferredChannel="EMAIL")
    no_mail = await reachable(tenant, preferredChannel="EMAIL", email=None)
    wechat = await make_patient(tenant, contactConsent=True, contactChannels=["PHONE", "WECHAT"], phone=PHONE)
    keeper = await reachable(tenant)
    reply = await tenant.call("front_desk", CONTACT, patientId=str(keeper), input={
        "name": "Wang", "relationship": "SPOUSE", "phone": "13900139000", "mayReceiveInformation": True})
    informed = uuid.UUID(reply.data["contactCreate"]["id"])
    messages = {pid: await queue(tenant, pid) for pid in (by_mail, no_mail, wechat)}
    messages[informed] = await queue(tenant, keeper, contact_id=informed)
    recorder = Recorder()

    await deliver(services, recorder, DAY)

    got = {m.communication_id: m for m in recorder.sent}
    assert (got[messages[by_mail].id].channel, got[messages[by_mail].id].address) == ("email", EMAIL)
    assert (got[messages[no_mail].id].channel, got[messages[no_mail].id].address) == ("sms", "+86" + PHONE)
    assert (got[messages[wechat].id].channel, got[messages[wechat].id].address) == ("wechat", "+86" + PHONE)
    assert (got[messages[informed].id].channel, got[messages[informed].id].address) == ("sms", "+8613900139000")


async def test_a_sent_message_is_sealed_logged_and_disclosed_without_its_content(
        tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    recorder = Recorder()

    await deliver(services, recorder, DAY)

    (outgoing,) = [m for m in recorder.sent if m.communication_id == message.id]
    assert "2030-03-13" in outgoing.body and "09:30" in outgoing.body
    assert "Dentistry" not in outgoing.body  # the default text names the institution, never the department
    assert outgoing.unsubscribe_url.startswith("http://127.0.0.1:8000/unsubscribe?token=")
    stored = await row(message)
    assert (stored.status, stored.channel, stored.gateway_message_id, stored.attempts) == (
        "sent", "sms", f"gw-{message.id}", 1)
    assert b"2030-03-13" not in bytes(stored.body or b"") and stored.body  # sealed at rest
    (entry,) = await log(tenant, pid)
    # staff read the log without the link that withdraws the patient's consent (found in review)
    withheld = outgoing.body.replace(outgoing.unsubscribe_url, "[unsubscribe link: sent to the recipient only]")
    assert (entry["status"], entry["channel"], entry["body"]) == ("SENT", "SMS", withheld)
    (disclosure,) = await AuditEvent.filter(institution_id=tenant.id, action=Action.DISCLOSE, resource_id=message.id)
    # the phone, the name the text greets the patient by and the appointment's time it tells (found in review: the
    # phone alone was named, then the phone and the name); not the place nor the department, which its text leaves out
    assert (disclosure.actor_kind, disclosure.patient_id, disclosure.fields_read) == (
        "system", pid, "appointment.slot_start,full_name,phone")
    text = repr({k: v for k, v in disclosure.__dict__.items() if not k.startswith("_")})
    assert PHONE[1:] not in text and "2030-03-13" not in text and EMAIL not in text


async def test_every_message_carries_an_unsubscribe_link_for_its_purpose(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    await purposes(pid, "care", "greeting")
    message = await queue(tenant, pid, cause="birthday_greeting")
    recorder = Recorder()
    await deliver(services, recorder, DAY)

    (outgoing,) = [m for m in recorder.sent if m.communication_id == message.id]
    token = outgoing.unsubscribe_url.split("token=")[1]
    assert outgoing.unsubscribe_url in outgoing.body
    assert await communication.unsubscribe(services, token) == "greeting"
    assert (await Patient.get(id=pid)).contact_purposes == "|care|"


# -- retries, failures, restarts --------------------------------------------------------------------------


async def test_a_failing_sender_is_retried_with_backoff_then_succeeds(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    recorder = Recorder(failures=[SendFailed("timeout"), ConnectionError("reset")])

    await deliver(services, recorder, DAY)
    first = await row(message)
    assert (first.status, first.attempts, first.last_error, first.due_at) == (
        "queued", 1, "timeout", DAY + communication.RETRY_FIRST)
    await deliver(services, recorder, DAY + timedelta(seconds=30))  # not yet
    assert (await row(message)).attempts == 1

    await deliver(services, recorder, first.due_at)
    second = await row(message)
    assert (second.status, second.attempts, second.last_error) == ("queued", 2, "ConnectionError")
    assert second.due_at == first.due_at + 2 * communication.RETRY_FIRST  # doubled

    await deliver(services, recorder, second.due_at)
    third = await row(message)
    assert (third.status, third.attempts, third.last_error, third.sent_at) == ("sent", 3, "", second.due_at)
    assert [m.communication_id for m in recorder.sent].count(message.id) == 1


async def test_a_permanent_failure_settles_the_message_as_failed(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)

    await deliver(services, Recorder(failures=[SendFailed("invalid_number", permanent=True)]), DAY)

    stored = await row(message)
    assert (stored.status, stored.last_error, stored.attempts) == ("failed", "invalid_number", 1)
    assert stored.settled_at == DAY


@pytest.mark.parametrize("permanent", [True, False], ids=["failed", "retried"])
async def test_a_senders_failure_keeps_no_address_nor_number(tenant: Tenant, services: Services,
                                                             permanent: bool) -> None:
    """Found in review: a sender's failure reason was stored as given (cut at 200 characters), while the delivery
    callbacks' reasons go through ``clean_reason``; a sender echoing the recipient put the patient's address or number
    into lastError, which staff read. Every stored lastError is cleaned alike: the address and the number replaced
    by ``#``, the rest kept, whether the message is settled failed or retried."""
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    said = f"rejected <{EMAIL}> for +86 138-0013-8000"

    await deliver(services, Recorder(failures=[SendFailed(said, permanent=permanent)]), DAY)

    stored = await row(message)
    assert (stored.status, stored.attempts) == ("failed" if permanent else "queued", 1)
    assert stored.last_error == "rejected#for#"
    [node] = [n for n in await log(tenant, pid) if n["id"] == str(message.id)]
    assert node["lastError"] == "rejected#for#"
    assert EMAIL not in str(node) and "0013" not in str(node) and "8000" not in str(node)


async def test_queued_messages_survive_a_restart(tenant: Tenant, services: Services, settings: Settings) -> None:
    pid = await reachable(tenant)
    message = await queue(tenant, pid)
    leased = await queue(tenant, pid)
    # A worker leased this one and died before settling it: it comes back when the lease runs out.
    await Communication.filter(id=leased.id).update(due_at=DAY + communication.LEASE, attempts=1)

    await db.close_database()  # a new process: nothing held in memory survives
    await db.open_database(settings.database_url)
    recorder = Recorder()
    await deliver(services, recorder, DAY)
    assert (await row(message)).status == "sent" and (await row(leased)).status == "queued"
    await deliver(services, recorder, DAY + communication.LEASE)

    assert ((await row(leased)).status, (await row(leased)).attempts) == ("sent", 2)


# -- delivery callbacks and unsubscribe links -------------------------------------------------------------


async def test_delivery_callbacks_mark_delivered_or_failed(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    good, bad = await queue(tenant, pid), await queue(tenant, pid)
    await deliver(services, Recorder(), DAY)

    assert await communication.record_delivery(tenant.id, "sms", f"gw-{good.id}", "delivered", "")
    assert await communication.record_delivery(tenant.id, "sms", f"gw-{bad.id}", "failed", "absent subscriber!")
    assert await communication.record_delivery(tenant.id, "sms", f"gw-{good.id}", "failed", "late")  # no change
    applied, kept = communication.Delivery.APPLIED, communication.Delivery.KEPT
    assert await communication.record_delivery(tenant.id, "sms", "gw-unknown", "delivered", "") is kept
    assert await communication.record_delivery(tenant.id, "email", f"gw-{good.id}", "delivered", "") is kept
    assert await communication.record_delivery(tenant.id, "sms", f"gw-{good.id}", "failed", "late") is applied

    assert ((await row(good)).status, (await row(good)).delivered_at is not None) == ("delivered", True)
    assert ((await row(bad)).status, (await row(bad)).last_error) == ("failed", "absentsubscriber")
    updates = await AuditEvent.filter(institution_id=tenant.id, action="update", resource_type="communication")
    assert sorted((e.resource_id, e.reason, e.actor_kind) for e in updates) == sorted(
        [(good.id, "sms_delivered", "system"), (bad.id, "sms_failed", "system")])  # once each


async def test_unsubscribe_links_valid_forged_and_replayed_for_another_purpose(
        tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    await purposes(pid, "care", "greeting", "campaign")
    secret = services.master_key.token_key
    token = communication.unsubscribe_token(secret, tenant.id, pid, "campaign")
    institution, patient, _, signature = token.split(".")

    with pytest.raises(LinkRefused) as replayed:
        await communication.unsubscribe(services, f"{institution}.{patient}.greeting.{signature}")
    assert replayed.value.reason == "other_purpose"
    with pytest.raises(LinkRefused) as forged:
        await communication.unsubscribe(services, f"{institution}.{patient}.campaign.{'A' * len(signature)}")
    assert forged.value.reason == "forged"
    other = communication.unsubscribe_token(b"another key" * 3, tenant.id, pid, "campaign")
    with pytest.raises(LinkRefused):
        await communication.unsubscribe(services, other)
    with pytest.raises(LinkRefused) as malformed:
        await communication.unsubscribe(services, "not-a-token")
    assert malformed.value.reason == "malformed"
    assert (await Patient.get(id=pid)).contact_purposes == "|campaign|care|greeting|"  # refusals change nothing

    assert await communication.unsubscribe(services, token) == "campaign"
    assert await communication.unsubscribe(services, token) == "campaign"  # again: nothing more to do
    assert (await Patient.get(id=pid)).contact_purposes == "|care|greeting|"
    (event,) = await AuditEvent.filter(institution_id=tenant.id, patient_id=pid, action=Action.CONSENT)
    assert (event.actor_kind, event.reason, event.fields_read) == ("anonymous", "withdrawn", "contact_purposes")


# -- appointments -----------------------------------------------------------------------------------------


async def appointment_at(tenant: Tenant, pid: uuid.UUID, start: datetime, clinician: bool = True) -> Appointment:
    schedule = await Schedule.create(institution_id=tenant.id, name="Chair 3", kind="clinician",
                                     clinician_id=tenant.staff_ids["doctor"] if clinician else None,
                                     department_id=tenant.departments["A"].id, week={}, slot_minutes=30, capacity=1)
    return await Appointment.create(institution_id=tenant.id, patient_id=pid, schedule_id=schedule.id,
                                    slot_start=start, slot_end=start + timedelta(minutes=30), seat=1, channel="phone")


async def test_appointments_confirm_remind_move_and_cancel(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(communication, "_now", lambda: DAY)
    pid = await reachable(tenant, fullName="Li Na")
    ctx: Any = SimpleNamespace(institution_id=tenant.id)
    first = await appointment_at(tenant, pid, datetime(2030, 3, 14, 9, 30, tzinfo=SHANGHAI))
    async with in_transaction():
        await communication.on_appointment(ctx, first, "booked")
    rows = {r.key: r for r in await Communication.filter(institution_id=tenant.id, patient_id=pid)}
    base = f"appointment:{first.id}:"
    assert {k: (r.cause, r.due_at, r.status) for k, r in rows.items()} == {
        base + "confirmation": ("appointment_confirmation", DAY, "queued"),
        base + "reminder": ("appointment_reminder", datetime(2030, 3, 13, 9, 30, tzinfo=SHANGHAI), "queued")}
    doctor = await Staff.get(id=tenant.staff_ids["doctor"])
    assert rows[base + "reminder"].variables == {
        "patient_name": "Li Na", "date": "2030-03-14", "time": "09:30", "clinician_name": doctor.name,
        "department_name": "Department A", "place": "Chair 3", "institution_name": tenant.institution.name,
        "institution_phone": ""}

    moved = await appointment_at(tenant, pid, datetime(2030, 3, 20, 15, 0, tzinfo=SHANGHAI))
    async with in_transaction():
        await communication.on_appointment(ctx, moved, "rescheduled", previous=first)
    rows = {r.key: r for r in await Communication.filter(institution_id=tenant.id, patient_id=pid)}
    assert rows[base + "reminder"].status == "cancelled" and rows[base + "confirmation"].status == "cancelled"
    moved_base = f"appointment:{moved.id}:"
    assert (rows[moved_base + "change"].cause, rows[moved_base + "change"].variables["time"]) == (
        "appointment_change", "15:00")
    assert rows[moved_base + "reminder"].due_at == datetime(2030, 3, 19, 15, 0, tzinfo=SHANGHAI)

    async with in_transaction():
        await communication.on_appointment(ctx, moved, "cancelled")
    rows = {r.key: r for r in await Communication.filter(institution_id=tenant.id, patient_id=pid)}
    assert rows[moved_base + "reminder"].status == "cancelled"
    assert rows[moved_base + "change"].status == "cancelled"  # not sent yet: the cancellation says it all
    assert (rows[moved_base + "cancellation"].cause, rows[moved_base + "cancellation"].status) == (
        "appointment_cancellation", "queued")


async def test_a_reminder_follows_the_institutions_hours_before(tenant: Tenant,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(communication, "_now", lambda: DAY)
    await settings_of(tenant, reminder_hours_before=2)
    pid = await reachable(tenant)
    soon = await appointment_at(tenant, pid, DAY + timedelta(hours=1), clinician=False)  # too late to remind
    later = await appointment_at(tenant, pid, DAY + timedelta(hours=5), clinician=False)
    ctx: Any = SimpleNamespace(institution_id=tenant.id)
    async with in_transaction():
        await communication.on_appointment(ctx, soon, "booked")
        await communication.on_appointment(ctx, later, "booked")

    keys = {r.key: r.due_at for r in await Communication.filter(institution_id=tenant.id, patient_id=pid)}
    assert f"appointment:{soon.id}:reminder" not in keys
    assert keys[f"appointment:{later.id}:reminder"] == DAY + timedelta(hours=3)


async def test_an_appointments_notices_go_only_while_it_is_booked_and_to_come(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked in, a no-show, or a service that was down until after the slot: the reminder is cancelled at
    sending, not sent; a cancellation always goes."""
    monkeypatch.setattr(communication, "_now", lambda: DAY)
    pid = await reachable(tenant)
    ctx: Any = SimpleNamespace(institution_id=tenant.id)
    arrived = await appointment_at(tenant, pid, DAY + timedelta(days=2))
    missed = await appointment_at(tenant, pid, DAY + timedelta(days=2, hours=1))
    async with in_transaction():
        for appointment in (arrived, missed):
            await communication.on_appointment(ctx, appointment, "booked")
    await Appointment.filter(id=arrived.id).update(status="arrived")  # the desk checked the patient in early

    recorder = Recorder()
    await deliver(services, recorder, DAY + timedelta(days=3))  # the service was down until after both slots

    notices = {r.key: r.status for r in await Communication.filter(institution_id=tenant.id, patient_id=pid)}
    assert notices == {f"appointment:{arrived.id}:confirmation": "cancelled",
                       f"appointment:{arrived.id}:reminder": "cancelled",
                       f"appointment:{missed.id}:confirmation": "cancelled",
                       f"appointment:{missed.id}:reminder": "cancelled"}
    assert [m for m in recorder.sent if m.institution_id == tenant.id] == []


async def test_a_reminder_the_quiet_hours_would_push_past_its_slot_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(communication, "_now", lambda: DAY)
    await settings_of(tenant, reminder_hours_before=2)
    pid = await reachable(tenant)
    early = await appointment_at(tenant, pid, datetime(2030, 3, 14, 7, 30, tzinfo=SHANGHAI))  # reminder at 05:30
    ctx: Any = SimpleNamespace(institution_id=tenant.id)
    async with in_transaction():
        await communication.on_appointment(ctx, early, "booked")

    reminder = await Communication.get(institution_id=tenant.id, key=f"appointment:{early.id}:reminder")
    assert (reminder.status, reminder.refusal) == ("refused", "quiet_hours")


# -- throughput -------------------------------------------------------------------------------------------


async def test_a_large_batch_goes_out_fast_with_no_transaction_across_it(tenant: Tenant, services: Services) -> None:
    """2,000 messages with a sender that does nothing; the whole of 10,000 must take under a minute."""
    count = 2000
    pid = await reachable(tenant)
    await purposes(pid, "care")
    at = DAY - timedelta(days=400)  # before anything else queued in the shared outbox
    await Communication.bulk_create([Communication(
        institution_id=tenant.id, key=f"load:{uuid.uuid4()}", cause="appointment_reminder", purpose="care",
        patient_id=pid, due_at=at, variables={"patient_name": "Li Na"}) for _ in range(count)], batch_size=500)
    recorder = Recorder()

    started = clock.perf_counter()
    sent = await deliver(services, recorder, at)
    elapsed = clock.perf_counter() - started

    assert sent >= count
    assert await Communication.filter(institution_id=tenant.id, status="sent", due_at=at).count() == count
    print(f"\n{count} messages in {elapsed:.2f} s: 10,000 in about {elapsed * 10_000 / count:.0f} s")
    assert elapsed * 10_000 / count < 60


def test_a_gateways_reason_keeps_no_phone_number() -> None:
    assert communication.clean_reason("http_503") == "http_503"
    assert communication.clean_reason("undeliverable: +86 138-0013-8000") == "undeliverable#"
    assert communication.clean_reason("undeliverable: 13-80-01-38-00-0") == "undeliverable#"  # no group of 4
    assert communication.clean_reason("bad rcpt jane.doe@example.com, retry") == "badrcpt#retry"
    assert communication.clean_reason("bad rcpt 张三＠例子.中国") == "badrcpt#"
    assert communication.clean_reason("smtp 550 rejected") == "smtp550rejected"  # a status code is not a number
    assert communication.clean_reason("号码不存在 13800138000") == "#"
    assert communication.clean_reason("中文") == "failed"
