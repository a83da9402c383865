"""What a reminder's default text gives away on a lock screen: the department's name is health information ("Oncology",
"Psychiatry", "HIV clinic" tell anyone who glances at the phone what the patient is treated for), so the built-in
texts name the institution and never the department. Set up through the API as the desk and the nurses do, scheduled
by the booking and by the calendar's sweep, sent by the outbox with the development (logging) senders, and read back
as sent through the API (``patientCommunications``), in both languages. An institution that writes its own template
with ``{department_name}`` still gets it filled in (its choice, documented in docs/messages.md and docs/security.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app import senders
from models import Institution
from resolvers import appointment as appointments
from resolvers import communication, reminder
from resolvers import schedule as schedules
from resolvers.context import Services
from tests.api.test_appointments import BOOK, CANCEL, RESCHEDULE, SCHEDULE_CREATE, WEEK, booking
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 3, 1, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Monday morning
SLOT = datetime(2027, 3, 3, 9, 0, tzinfo=SHANGHAI)  # Wednesday 09:00: reminded on Tuesday 09:00
MOVED, LATER, CANCELLED = (datetime(2027, 3, 3, hour, minute, tzinfo=SHANGHAI) for hour, minute in
                           ((10, 0), (11, 0), (10, 30)))
DEPARTMENT = "Oncology"
LOG = """query($id: ID!) { patientCommunications(patientId: $id, first: 50) {
  edges { node { cause status subject body } } } }"""
RENAME = "mutation($id: ID!, $name: String!) { departmentUpdate(id: $id, name: $name) { id name } }"
TEMPLATE_SET = """mutation($input: MessageTemplateInput!) { messageTemplateSet(input: $input) { version } }"""
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""
PLAN = """mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"""
APPOINTMENT_CAUSES = ["appointment_cancellation", "appointment_change", "appointment_confirmation",
                      "appointment_reminder"]


@pytest.fixture(autouse=True)
async def oncology(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Department A is the oncology department; the booking's clock is Monday morning."""
    ok(await tenant.call("admin", RENAME, id=str(tenant.departments["A"].id), name=DEPARTMENT), "departmentUpdate")
    for module in (appointments, schedules, communication):
        monkeypatch.setattr(module, "_now", lambda: NOW)


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def patient(tenant: Tenant, language: str) -> uuid.UUID:
    return await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"], preferredLanguage=language,
                              email=f"p{uuid.uuid4().hex[:8]}@example.org")


async def sent(tenant: Tenant, services: Services, pid: uuid.UUID, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The outbox run at ``now`` with the development senders (each message logged, not sent); the patient's messages
    sent, as the log shows them, by cause."""
    await communication.deliver_due(services, senders.logging_senders(), now=now)
    edges = ok(await tenant.call("nurse", LOG, id=str(pid)), "patientCommunications")["edges"]
    by_cause: dict[str, list[dict[str, Any]]] = {}
    for node in (edge["node"] for edge in edges if edge["node"]["status"] == "SENT"):
        by_cause.setdefault(node["cause"].lower(), []).append(node)
    return by_cause


async def appointment_messages(tenant: Tenant, services: Services, language: str) -> dict[str, list[dict[str, Any]]]:
    """In the oncology department: a booking (its confirmation and reminder), one moved (its change) and one
    cancelled (its cancellation), all sent."""
    schedule = ok(await tenant.call("admin", SCHEDULE_CREATE, input={
        "name": "Dr Matrix", "kind": "CLINICIAN", "departmentId": str(tenant.departments["A"].id), "week": WEEK,
        "slotMinutes": 30, "capacity": 1, "clinicianId": str(tenant.staff_ids["doctor"])}), "scheduleCreate")["id"]
    pid = await patient(tenant, language)
    _, moved, cancelled = [ok(await tenant.call("front_desk", BOOK, input=booking(
        schedule, pid, start.isoformat())), "appointmentBook")["id"] for start in (SLOT, MOVED, CANCELLED)]
    ok(await tenant.call("front_desk", RESCHEDULE, id=moved, slotStart=LATER.isoformat()), "appointmentReschedule")
    ok(await tenant.call("front_desk", CANCEL, id=cancelled), "appointmentCancel")
    return await sent(tenant, services, pid, SLOT - timedelta(hours=23))  # the reminders are due, the slots to come


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_appointment_messages_name_the_institution_not_the_department(
        tenant: Tenant, services: Services, language: str) -> None:
    """The built-in appointment texts read "... {time} Oncology Dr ..." (found in review): they now name the
    institution where the department was."""
    messages = await appointment_messages(tenant, services, language)

    assert sorted(messages) == APPOINTMENT_CAUSES
    for message in (m for group in messages.values() for m in group):
        assert DEPARTMENT not in message["body"] and DEPARTMENT not in (message["subject"] or ""), message
        assert tenant.institution.name in message["body"], message


async def test_an_institutions_own_template_may_still_name_the_department(tenant: Tenant, services: Services) -> None:
    """The twin: an institution that wants the department in its reminders writes it into its own template (its
    choice, the risk documented); the variable is still filled in."""
    ok(await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "APPOINTMENT_REMINDER", "channel": "ANY", "language": "EN", "subject": "Reminder",
        "body": "{patient_name}, {date} {time} at {department_name}."}), "messageTemplateSet")

    messages = await appointment_messages(tenant, services, "en")

    assert all(f"at {DEPARTMENT}." in m["body"] for m in messages["appointment_reminder"])
    assert all(DEPARTMENT not in m["body"] for m in messages["appointment_confirmation"])  # the default there


@pytest.mark.parametrize("language", ["zh-CN", "en"])
async def test_the_calendars_reminders_name_no_department(tenant: Tenant, services: Services, language: str) -> None:
    """A re-visit reminder (a finished visit's, a care plan's), a pending-treatment reminder and a follow-up call's
    announcement, scheduled by the sweep for a patient of the oncology department, say nothing of it."""
    pid = await patient(tenant, language)
    tomorrow = date(2031, 5, 13)
    ok(await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "revisitOn": tomorrow.isoformat(),
        "departmentId": str(tenant.departments["A"].id), "startedAt": "2026-01-10T09:00:00+08:00",
        "endedAt": "2026-01-10T09:30:00+08:00"}), "visitCreate")
    ok(await tenant.call("nurse", PLAN, input={
        "patientId": str(pid), "title": "Chemotherapy cycle 2", "startsOn": "2031-05-12",
        "departmentId": str(tenant.departments["A"].id),
        "activities": [{"kind": "REHABILITATION", "dueOn": tomorrow.isoformat()},
                       {"kind": "CALL", "dueOn": tomorrow.isoformat()}]}), "carePlanCreate")
    await reminder.sweep_institution(await Institution.get(id=tenant.id),
                                     datetime.combine(date(2031, 5, 12), time(7), SHANGHAI).astimezone(UTC))

    messages = await sent(tenant, services, pid, datetime.combine(date(2031, 5, 12), time(9), SHANGHAI))

    assert sorted(messages) == ["follow_up_announcement", "pending_treatment_reminder", "revisit_reminder"]
    for message in (m for group in messages.values() for m in group):
        assert DEPARTMENT not in message["body"] and DEPARTMENT not in (message["subject"] or ""), message
        assert "Chemotherapy" not in message["body"], message
        assert tenant.institution.name in message["body"], message
