"""Messages to patients under review (found in review, each failing before its fix), driven through the API and
the outbox as its worker runs it: a withdrawal survives a merge of the files, a campaign is stopped while its
messages wait, a cancelled message stays cancelled when its batch fails, staff read no working unsubscribe link on
the log, and a portal message discloses no address."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from tortoise.transactions import in_transaction

from core.messages import Outgoing, SendFailed
from models import AuditEvent, Communication, Patient
from models.fields import tags_from_db
from resolvers import campaign as campaigns
from resolvers import communication
from resolvers.context import Services
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOG = """query($id: ID!) { patientCommunications(patientId: $id, first: 50) {
  edges { node { id cause purpose channel status refusal subject body } } } }"""
MERGE = """mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) {
  survivor { id } merged { id status } } }"""
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
CREATE = "mutation($input: CampaignCreateInput!) { campaignCreate(input: $input) { id version status } }"
START = "mutation($id: ID!, $v: Int) { campaignStart(id: $id, version: $v) { id status } }"
CANCEL = "mutation($id: ID!, $v: Int) { campaignCancel(id: $id, version: $v) { id status } }"
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""
VISIT_UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!) { visitUpdate(id: $id, input: $input) { id } }"""
BODY = "{patient_name}，{institution_name}春季健康讲座本周六开讲。退订：{unsubscribe_url}"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


def tomorrow_at_ten() -> datetime:
    """A day-time moment after anything queued now (even if deferred past tonight's quiet hours)."""
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    return local(today + timedelta(days=1), time(10))


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return f"gw-{uuid.uuid4().hex[:10]}"


def all_channels(sender: Any) -> dict[str, Any]:
    return dict.fromkeys(("sms", "email", "wechat", "app"), sender)


async def campaign_patient(tenant: Tenant, email: str | None = None) -> uuid.UUID:
    return await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"],
                              email=email or f"p{uuid.uuid4().hex[:8]}@example.org",
                              contactPurposes=["CARE", "CAMPAIGN"])


async def run_campaign(tenant: Tenant) -> str:
    made = ok(await tenant.call("admin", CREATE, input={
        "name": "Spring lecture", "purpose": "CAMPAIGN", "subject": "Spring lecture", "body": BODY,
        "audience": {}}), "campaignCreate")
    ok(await tenant.call("admin", START, id=made["id"], v=made["version"]), "campaignStart")
    while (await campaigns.advance()) or await campaigns.sending():
        pass
    return str(made["id"])


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# -- 1. a withdrawal recorded on a file that is then merged is lost ------------------------------------------


async def test_an_unsubscribe_on_a_duplicate_file_survives_its_merge(
        client: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    email = f"same.person.{uuid.uuid4().hex[:6]}@example.org"
    survivor = await campaign_patient(tenant, email)
    duplicate = await campaign_patient(tenant, email)  # the same person registered twice
    # The patient follows the campaign link of a message sent on the duplicate file: no more campaigns.
    link = communication.unsubscribe_url(services, tenant.id, duplicate, "campaign")
    assert (await client.post(path_of(link))).status_code == 200
    assert "campaign" not in tags_from_db((await Patient.get(id=duplicate)).contact_purposes)

    ok(await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate)), "patientMerge")
    # ...and, after the merge, follows the same link again (the page says it worked)
    again = await client.post(path_of(link))
    assert again.status_code == 200 and "已为您停止" in again.text

    campaign_id = await run_campaign(tenant)
    recorder = Recorder()
    await communication.deliver_due(services, all_channels(recorder), now=tomorrow_at_ten())
    got = [m for m in recorder.sent if m.address == email and m.institution_id == tenant.id]
    rows = await Communication.filter(campaign_id=campaign_id, patient_id=survivor).values_list("status", flat=True)
    assert got == [], f"the patient who unsubscribed got the campaign: rows {rows}, {len(got)} e-mail(s)"


async def test_a_link_sent_before_a_merge_stops_the_survivors_messages(
        client: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    email = f"same.person.{uuid.uuid4().hex[:6]}@example.org"
    survivor = await campaign_patient(tenant, email)
    duplicate = await campaign_patient(tenant, email)
    link = communication.unsubscribe_url(services, tenant.id, duplicate, "campaign")  # in a message sent before
    ok(await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate)), "patientMerge")

    assert (await client.post(path_of(link))).status_code == 200

    assert tags_from_db((await Patient.get(id=survivor)).contact_purposes) == ["care"]
    [event] = await AuditEvent.filter(patient_id=survivor, action="consent")
    assert (event.resource_id, event.reason) == (survivor, "withdrawn")


async def test_a_merge_keeps_what_both_files_allow(tenant: Tenant) -> None:
    survivor = await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL", "SMS"], phone="13800138000",
                                  email=f"p{uuid.uuid4().hex[:8]}@example.org", contactPurposes=["CARE", "CAMPAIGN"])
    duplicate = await make_patient(tenant, contactConsent=True, contactChannels=["SMS"], phone="13800138000",
                                   contactPurposes=["CARE", "GREETING"])

    ok(await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate)), "patientMerge")

    kept = await Patient.get(id=survivor)
    assert (kept.contact_consent, tags_from_db(kept.contact_purposes), tags_from_db(kept.contact_channels)) == (
        True, ["care"], ["sms"])
    changed = await AuditEvent.filter(patient_id=survivor, resource_id=survivor, reason="merge").values_list(
        "fields_read", flat=True)
    assert changed == ["contact_channels,contact_purposes"]


# -- 2. a cancelled campaign comes back when its in-flight message is retried --------------------------------


class Stalling:
    """Holds the first message until released, then fails it as a gateway timeout would (transient)."""

    def __init__(self) -> None:
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, message: Outgoing) -> str | None:
        self.entered.set()
        await self.release.wait()
        raise SendFailed("timeout")


async def test_a_campaign_queued_but_not_yet_sent_can_be_cancelled(tenant: Tenant, services: Services) -> None:
    pid = await campaign_patient(tenant)
    campaign_id = await run_campaign(tenant)  # the worker queued it at once (fewer than 500 patients)
    [row] = await Communication.filter(campaign_id=campaign_id, patient_id=pid)
    assert row.status == "queued"  # nothing sent yet (e.g. started at 22:00: deferred to 08:00)

    reply = await tenant.call("admin", CANCEL, id=campaign_id)

    assert reply.data == {"campaignCancel": {"id": campaign_id, "status": "CANCELLED"}}
    recorder = Recorder()
    await communication.deliver_due(services, all_channels(recorder), now=tomorrow_at_ten())
    assert [m for m in recorder.sent if m.communication_id == row.id] == []
    again = await tenant.call("admin", CANCEL, id=campaign_id)  # nothing left to stop
    assert [e["extensions"]["reason"] for e in again.errors] == ["illegal_transition"]


async def test_a_cancelled_campaign_is_not_sent_after_a_retry(tenant: Tenant, services: Services) -> None:
    for _ in range(2):
        await campaign_patient(tenant)
    made = ok(await tenant.call("admin", CREATE, input={
        "name": "Spring lecture", "purpose": "CAMPAIGN", "subject": "Spring lecture", "body": BODY,
        "audience": {}}), "campaignCreate")
    ok(await tenant.call("admin", START, id=made["id"], v=made["version"]), "campaignStart")
    await campaigns.advance(batch=1)  # the first batch queued, the campaign still SENDING
    [row] = await Communication.filter(campaign_id=made["id"])
    moment = tomorrow_at_ten()

    stalling = Stalling()
    worker = asyncio.create_task(communication.deliver_due(services, all_channels(stalling), now=moment))
    await asyncio.wait_for(stalling.entered.wait(), 10)
    ok(await tenant.call("admin", CANCEL, id=made["id"]), "campaignCancel")  # the author stops it
    assert (await Communication.get(id=row.id)).status == "cancelled"
    stalling.release.set()  # the gateway times out: a transient failure
    await worker

    recorder = Recorder()
    await communication.deliver_due(services, all_channels(recorder), now=moment + timedelta(hours=3))
    status = (await Communication.get(id=row.id)).status
    resent = [m for m in recorder.sent if m.communication_id == row.id]
    assert resent == [] and status == "cancelled", f"cancelled campaign message: status {status}, sent {len(resent)}"


# -- 5. staff who may not change consent withdraw it with the link stored in the log --------------------------


async def test_staff_reading_the_log_cannot_withdraw_consent_anonymously(
        client: httpx.AsyncClient, tenant: Tenant, services: Services) -> None:
    pid = await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"],
                             email=f"p{uuid.uuid4().hex[:8]}@example.org", contactPurposes=["CARE", "GREETING"])
    moment = local(date(2030, 3, 12), time(10))
    async with in_transaction():
        await communication.schedule(tenant.id, key=f"appointment:{uuid.uuid4()}:reminder",
                                     cause="appointment_reminder", patient_id=pid, due_at=moment,
                                     variables={"patient_name": "Li Na", "date": "2030-03-13"})
    await communication.deliver_due(services, all_channels(Recorder()), now=moment)
    # The department head may read the log but may not change the patient's contact preferences:
    denied = await tenant.call("department_head", UPDATE, id=str(pid), input={"contactPurposes": []})
    assert denied.codes == ["FORBIDDEN"]
    [node] = [e["node"] for e in ok(await tenant.call("department_head", LOG, id=str(pid)),
                                   "patientCommunications")["edges"]]
    found = re.search(r"/unsubscribe\?token=[^\s]+", node["body"] or "")
    assert found is None, "the log shows staff the patient's working unsubscribe link: " + (
        f"POST -> {(await client.post(found.group(0))).status_code}, purposes now "
        f"{tags_from_db((await Patient.get(id=pid)).contact_purposes)}, recorded as "
        f"{[(e.action, e.actor_kind) for e in await AuditEvent.filter(patient_id=pid, action='consent')][-1:]}")


# -- 7. the app channel is on the trail as a disclosure of the phone ------------------------------------------


async def test_a_portal_message_is_not_recorded_as_disclosing_the_phone(tenant: Tenant, services: Services) -> None:
    from tests.patients import open_account
    user = await open_account(tenant, contactConsent=True, contactChannels=["APP"])  # no phone on the file
    moment = local(date(2030, 3, 12), time(10))
    async with in_transaction():
        message = await communication.schedule(tenant.id, key=f"appointment:{uuid.uuid4()}:reminder",
                                               cause="appointment_reminder", patient_id=user.patient_id,
                                               due_at=moment, variables={"patient_name": "Li Na"})
    await communication.deliver_due(services, all_channels(Recorder()), now=moment)
    assert (await Communication.get(id=message.id)).status == "delivered"
    [event] = await AuditEvent.filter(resource_id=message.id, action="disclose")
    assert "phone" not in event.fields_read, (event.reason, event.fields_read)
