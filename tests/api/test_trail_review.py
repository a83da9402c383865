"""Gaps in the promise that every read and write of patient data is on the audit trail, found by a review of it
(docs/security.md, Audit): each test failed before its fix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from resolvers import communication
from resolvers.context import Services
from tests.factories import Tenant, make_patient

NOON = datetime(2030, 3, 12, 4, 0, tzinfo=UTC)
NAME, PHONE = "Zelda Quokkafield", "13812345678"
DISCLOSED = """query($filter: AuditEventFilter) { auditEvents(first: 20, filter: $filter) {
  nodes { action actorKind patientId fieldClasses fieldsRead fieldNames reason } } }"""
TEMPLATE_SET = """mutation($input: MessageTemplateInput!) { messageTemplateSet(input: $input) { version } }"""


class _Sender:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def send(self, message: Any) -> str | None:
        self.bodies.append(message.body)
        return None


async def _reminded(tenant: Tenant, services: Services) -> tuple[uuid.UUID, _Sender]:
    """A patient who takes SMS, sent an appointment reminder by the outbox."""
    pid = await make_patient(tenant, fullName=NAME, phone=PHONE, preferredLanguage="en", contactConsent=True,
                             contactChannels=["SMS"])
    async with in_transaction():
        await communication.schedule(tenant.id, key=f"test:{uuid.uuid4()}", cause="appointment_reminder",
                                     patient_id=pid, due_at=NOON - timedelta(minutes=1),
                                     variables={"date": "2030-03-13", "time": "09:30"})
    sender = _Sender()
    await communication.deliver_due(services, {"sms": sender}, now=NOON)
    return pid, sender


async def _disclosures(tenant: Tenant, pid: uuid.UUID) -> list[dict[str, Any]]:
    reply = await tenant.call("compliance_officer", DISCLOSED, filter={"patient": str(pid), "action": "DISCLOSE"})
    assert reply.errors == [], reply.errors
    assert NAME not in str(reply.body) and PHONE not in str(reply.body)
    return list(reply.data["auditEvents"]["nodes"])


# -- a message handed to a gateway discloses the name it greets the patient by ------------------------------------


async def test_a_message_that_names_the_patient_discloses_the_name_on_the_trail(tenant: Tenant,
                                                                                services: Services) -> None:
    """Every built-in text greets the patient by name: the gateway gets the name with the phone. The `disclose`
    record named the phone alone, so the trail said less left the institution than did."""
    pid, sender = await _reminded(tenant, services)

    [body] = sender.bodies
    assert body.startswith(f"{NAME}, a reminder")
    [disclosed] = await _disclosures(tenant, pid)
    assert (disclosed["actorKind"], disclosed["reason"]) == ("SYSTEM", "sent_sms")
    assert sorted(disclosed["fieldsRead"]) == ["full_name", "phone"]
    assert sorted(disclosed["fieldNames"]) == ["Patient.fullName", "Patient.phone"]
    assert sorted(disclosed["fieldClasses"]) == ["CONTACT", "IDENTITY"]


async def test_a_message_that_does_not_name_the_patient_discloses_the_address_alone(tenant: Tenant,
                                                                                    services: Services) -> None:
    """The twin: an institution's own text without `{patient_name}` hands the gateway the phone only."""
    reply = await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "APPOINTMENT_REMINDER", "channel": "SMS", "language": "EN",
        "body": "A reminder of your appointment on {date} at {time}."})
    assert reply.errors == [], reply.errors

    pid, sender = await _reminded(tenant, services)

    [body] = sender.bodies
    assert NAME not in body
    [disclosed] = await _disclosures(tenant, pid)
    assert (disclosed["fieldsRead"], disclosed["fieldClasses"]) == (["phone"], ["CONTACT"])
