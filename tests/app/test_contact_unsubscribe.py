"""The unsubscribe link of a message to a patient's contact (a family member), through the outbox and the real
ASGI app: it is the contact's own link, and following it stops messages to that contact only (the contact may
no longer receive information, on the trail as a write by the link) and never withdraws the patient's consent,
so the patient's reminders still go, with the patient's own link working as before. A contact's link edited to
name someone else, replayed as a patient's link, or not signed by us is refused and changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.messages import Outgoing
from models import AuditEvent, Communication, Contact, Institution, Patient, SurveyInvitation
from resolvers import communication, reminder, survey
from resolvers.communication import LinkRefused
from resolvers.context import Services
from tests.daytime import daytime_from
from tests.factories import Tenant
from tests.patients import mark
from tests.surveys import family_member, finished_visit, questionnaire, texted, trigger

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONTACTS = "query($id: ID!) { patient(id: $id) { contactPurposes contacts { id mayReceiveInformation } } }"
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""
INVALID = "此退订链接无效"


class Collect:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def file_of(tenant: Tenant, pid: uuid.UUID) -> tuple[list[str], dict[str, bool]]:
    """The patient's purposes and whether each contact may receive information, as staff read them."""
    found = ok(await tenant.call("front_desk", CONTACTS, id=str(pid)), "patient")
    return found["contactPurposes"], {c["id"]: c["mayReceiveInformation"] for c in found["contacts"]}


async def sent_to(services: Services, tenant: Tenant, message: Communication) -> Outgoing:
    """Deliver the queued message once it is due, in the daytime (clear of the quiet hours whatever the hour the
    test runs at), and answer what the sender was handed."""
    collect = Collect()
    await communication.deliver_due(services, {"sms": collect, "email": collect}, now=daytime_from(message.due_at))
    [outgoing] = [m for m in collect.sent if m.institution_id == tenant.id and m.communication_id == message.id]
    return outgoing


async def family_invited(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, SurveyInvitation]:
    """A patient who agreed to care messages, with two contacts who may receive information (the first is
    asked; the second has no phone, so the survey never picks them), invited to a family questionnaire (its
    reminder after 3 days) by a finished visit."""
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0, reminderAfterDays=3)
    pid = await texted(tenant)
    asked = await family_member(tenant, pid, "Zhao Family", phone="13600004444")
    other = await family_member(tenant, pid, "Zhao Other", phone=None)
    await finished_visit(tenant, pid)
    row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    assert row.contact_id == asked
    return pid, asked, other, row


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


async def test_a_contacts_link_stops_that_contact_only_and_the_patients_reminders_still_go(
        client: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    pid, asked, other, row = await family_invited(tenant)
    message = await Communication.get(key=f"survey:{row.id}:invitation")
    outgoing = await sent_to(services, tenant, message)
    assert outgoing.address == "+8613600004444" and outgoing.unsubscribe_url in outgoing.body
    link = communication.read_link(services.master_key.token_key, token_of(outgoing.unsubscribe_url))
    assert (link.contact_id, link.patient_id, link.purpose) == (asked, None, "care")
    assert str(pid) not in outgoing.unsubscribe_url  # the link names the contact, never the patient
    target = path_of(outgoing.unsubscribe_url)

    before = await mark(tenant.id)
    page = await client.get(target)  # a link preview: nothing changes
    assert page.status_code == 200 and 'method="post"' in page.text
    assert "不再接收：发给您（患者的家属或联系人）的消息" in page.text and "appointment confirmations" not in page.text
    assert "Stop receiving: messages to you as a patient's family member or contact." in page.text
    assert "Messages to the patient are not affected" in page.text
    assert await mark(tenant.id) == before

    done = await client.post(target)
    assert done.status_code == 200 and INVALID not in done.text
    assert "You will no longer receive messages to you as a patient's family member or contact." in done.text
    [event] = await AuditEvent.filter(institution_id=tenant.id, seq__gt=before).order_by("seq")
    assert (event.action, event.resource_type, event.resource_id, event.outcome, event.actor_kind) == (
        "update", "contact", asked, "allowed", "anonymous")
    assert (event.fields_read, event.reason, event.policy_rule, event.patient_id) == (
        "may_receive_information", "unsubscribed", "unsubscribe link", pid)
    assert event.actor_id is None and event.client_address == "203.0.113.7"
    after = await mark(tenant.id)
    assert (await client.post(target)).status_code == 200  # followed again: nothing more to do or record
    assert await mark(tenant.id) == after

    purposes, informed = await file_of(tenant, pid)
    assert purposes == ["CARE"] and informed == {str(asked): False, str(other): True}  # that contact only
    patient = await Patient.get(id=pid)
    assert (patient.contact_consent, patient.contact_purposes) == (True, "|care|")
    assert not await AuditEvent.filter(institution_id=tenant.id, action="consent", patient_id=pid).exists()

    # Nothing more goes to the contact: the survey's reminder is refused by the gate.
    assert await survey.remind_unanswered(row.send_at + timedelta(days=3, minutes=1)) >= 1
    refused = await Communication.get(key=f"survey:{row.id}:reminder")
    assert (refused.contact_id, refused.status, refused.refusal) == (asked, "refused", "contact_not_informed")

    # The patient's own reminders still go, with the patient's own link, which withdraws a purpose as before.
    ok(await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "revisitOn": "2031-05-13",
        "departmentId": str(tenant.departments["A"].id), "startedAt": "2026-01-10T09:00:00+08:00",
        "endedAt": "2026-01-10T09:30:00+08:00"}), "visitCreate")
    await reminder.sweep_institution(await Institution.get(id=tenant.id), local(date(2031, 5, 12), time(7)))
    [revisit] = await Communication.filter(institution_id=tenant.id, patient_id=pid, cause="revisit_reminder")
    assert (revisit.status, revisit.contact_id, revisit.due_at) == ("queued", None, local(date(2031, 5, 12), time(9)))
    own = await sent_to(services, tenant, revisit)
    assert (await Communication.get(id=revisit.id)).status == "sent" and own.address != outgoing.address
    own_link = communication.read_link(services.master_key.token_key, token_of(own.unsubscribe_url))
    assert (own_link.patient_id, own_link.contact_id, own_link.purpose) == (pid, None, "care")
    before = await mark(tenant.id)
    assert (await client.post(path_of(own.unsubscribe_url))).status_code == 200
    [withdrawn] = await AuditEvent.filter(institution_id=tenant.id, seq__gt=before)
    assert (withdrawn.action, withdrawn.resource_type, withdrawn.reason, withdrawn.patient_id) == (
        "consent", "contact_consent", "withdrawn", pid)
    assert (await file_of(tenant, pid))[0] == []
    assert (await file_of(tenant, pid))[1] == {str(asked): False, str(other): True}  # the contacts as they were


async def test_a_contacts_link_works_on_a_contact_already_stopped_by_staff(
        client: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    pid, asked, _, _ = await family_invited(tenant)
    await Contact.filter(id=asked).update(may_receive_information=False)
    token = communication.contact_unsubscribe_token(services.master_key.token_key, tenant.id, asked, "care")
    before = await mark(tenant.id)
    assert (await client.post(f"/unsubscribe?token={token}")).status_code == 200
    assert await mark(tenant.id) == before  # nothing to change, nothing recorded
    assert (await Patient.get(id=pid)).contact_purposes == "|care|"


def forgeries(tenant: Tenant, services: Services, pid: uuid.UUID, contact: uuid.UUID,
              stranger: uuid.UUID) -> list[tuple[str, str]]:
    """(token, the reason it is refused) for links made from the contact's genuine one."""
    secret = services.master_key.token_key
    genuine = communication.contact_unsubscribe_token(secret, tenant.id, contact, "care")
    institution, marker, _, purpose, signature = genuine.split(".")
    patients = communication.unsubscribe_token(secret, tenant.id, pid, "care").split(".")[-1]
    return [
        (f"{institution}.{marker}.{contact}.{purpose}.{'A' * len(signature)}", "forged"),  # signature changed
        (f"{institution}.{marker}.{stranger}.{purpose}.{signature}", "forged"),  # replayed for another contact
        (f"{institution}.{pid}.{purpose}.{signature}", "forged"),  # replayed as the patient's own link
        (f"{institution}.{marker}.{pid}.{purpose}.{signature}", "forged"),  # ... naming the patient as a contact
        (f"{institution}.{marker}.{contact}.{purpose}.{patients}", "forged"),  # the patient's signature
        (f"{institution}.{marker}.{contact}.greeting.{signature}", "other_purpose"),  # another purpose
        (communication.contact_unsubscribe_token(b"\x00" * 32, tenant.id, contact, "care"), "forged"),  # not our key
        (f"{uuid.uuid4()}.{marker}.{contact}.{purpose}.{signature}", "forged"),  # another institution
        (f"{institution}.patient.{contact}.{purpose}.{signature}", "malformed"),
        (f"{institution}.{marker}.{contact}.{signature}", "malformed"),
    ]


async def test_a_forged_or_replayed_contact_link_is_refused_with_its_code_and_changes_nothing(
        client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, services: Services) -> None:
    pid, asked, other, _ = await family_invited(tenant)
    stranger = await family_member(tenant, await texted(tenant), "Someone else's")
    elsewhere = await family_member(other_tenant, await texted(other_tenant), "Elsewhere")
    before, before_elsewhere = await mark(tenant.id), await mark(other_tenant.id)
    for token, reason in forgeries(tenant, services, pid, asked, stranger):
        with pytest.raises(LinkRefused) as refused:
            await communication.unsubscribe(services, token)
        assert refused.value.reason == reason, token
        for method in ("GET", "POST"):
            reply = await client.request(method, f"/unsubscribe?token={token}")
            assert reply.status_code == 400 and INVALID in reply.text, (method, token)
    assert await mark(tenant.id) == before
    assert (await Contact.get(id=stranger)).may_receive_information is True

    # Signed by us for our institution, naming another institution's contact: no such contact here.
    token = communication.contact_unsubscribe_token(services.master_key.token_key, tenant.id, elsewhere, "care")
    with pytest.raises(LinkRefused) as unknown:
        await communication.unsubscribe(services, token)
    assert unknown.value.reason == "unknown"
    assert (await client.post(f"/unsubscribe?token={token}")).status_code == 400
    assert (await Contact.get(id=elsewhere)).may_receive_information is True
    assert (await mark(tenant.id), await mark(other_tenant.id)) == (before, before_elsewhere)
    assert await file_of(tenant, pid) == (["CARE"], {str(asked): True, str(other): True})
