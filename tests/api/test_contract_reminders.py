"""Reminders a contract's calendar brings (``resolvers.contract_reminder.sweep``), on contracts made, sent and signed
through the API: the end of the term 60 and 30 days before it at exact local dates (none while the next term is
prepared, none for a terminated contract), a version still unsigned after 7 days, a contract suspended for 30 days.
Staff hear of each once (the notification outbox, delivered to the finance staff, else the admins); the client hears
of an end or a signature awaited through the consent gate, by a message holding the contract's number and a date,
never its money or clauses.

The sweep covers every institution of the shared test database, and is given the moment it takes as "now" (days
ahead of the real clock): each test looks only at its own contracts' rows. The outboxes' senders are test doubles
of the sender interfaces (the gateways are outside boundaries)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.messages import Outgoing
from models import Communication, ContractVersion, Notification
from resolvers import communication, contract_reminder, notification
from resolvers.context import Services
from resolvers.notification import Message
from tests.conftest import SqlCounter
from tests.contracts import draft, item_input, make_item, today
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test institutions' zone: local midnight is 16:00 UTC the day before
CLAUSES = "夜间需协助如厕 (help at night)"
FIELDS = "id number patientId status version currentVersion endOn versions { number status documentSha256 sentAt }"
SEND = f"""mutation($id: ID!, $v: Int!) {{ contractSend(contractId: $id, expectedVersion: $v) {{ {FIELDS} }} }}"""
SIGN = """mutation($input: ContractSignInput!) { contractSign(input: $input) { party contract { status version } } }"""
GET = f"query($id: ID!) {{ contract(id: $id) {{ {FIELDS} }} }}"
RENEW = """mutation($id: ID!, $input: ContractRenewInput!) { contractRenew(contractId: $id, input: $input) {
  id status } }"""
TERMINATE = """mutation($id: ID!, $v: Int!, $on: Date) { contractTerminate(contractId: $id, reason: "Moved away",
  expectedVersion: $v, effectiveOn: $on) { status endOn } }"""
SUSPEND = """mutation($id: ID!, $v: Int!) { contractSuspend(contractId: $id, reason: "Hospital stay",
  expectedVersion: $v) { status version suspendedAt } }"""
RESUME = """mutation($id: ID!, $v: Int!) { contractResume(contractId: $id, expectedVersion: $v) { status version } }"""
AMEND = """mutation($id: ID!, $input: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $input, expectedVersion: $v) { id version } }"""
STAFF_UPDATE = """mutation($id: ID!, $input: StaffUpdateInput!) { staffUpdate(id: $id, input: $input) { active } }"""


# -- helpers ---------------------------------------------------------------------------------------------------


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def local(day: date, at: time = time(10)) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


async def client(tenant: Tenant, consent: bool = True) -> uuid.UUID:
    """A patient who may be written to about their care by e-mail (or, ``consent=False``, not at all)."""
    if not consent:
        return await make_patient(tenant, contactConsent=False)
    return await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"], contactPurposes=["CARE"],
                              email=f"c{uuid.uuid4().hex[:8]}@example.org")


async def sent(tenant: Tenant, patient_id: uuid.UUID, *, start: date | None = None, end: date | None = None,
               **fields: Any) -> dict[str, Any]:
    """A contract drafted by finance (a deposit and clauses: what the reminders must never show) and sent."""
    item = await make_item(tenant, unit_price="120.00")
    terms: dict[str, Any] = {"deposit": {"amount": "3456.00", "currency": "CNY"}, "clauses": CLAUSES, **fields}
    if start is not None:
        terms["startOn"] = start.isoformat()
    if end is not None:
        terms["endOn"] = end.isoformat()
    made = await draft(tenant, patient_id, [item_input(item, quantity=7)], role="finance", **terms)
    return dict(ok(await tenant.call("front_desk", SEND, id=made["id"], v=made["version"]), "contractSend"))


async def sign(tenant: Tenant, contract: dict[str, Any], party: str, number: int = 1) -> None:
    sha = next(v["documentSha256"] for v in contract["versions"] if v["number"] == number)
    role = "finance" if party == "INSTITUTION" else "front_desk"
    ok(await tenant.call(role, SIGN, input={"contractId": contract["id"], "versionNumber": number, "party": party,
                                            "method": "IN_PERSON", "documentSha256": sha}), "contractSign")


async def active(tenant: Tenant, patient_id: uuid.UUID, *, end: date, **fields: Any) -> dict[str, Any]:
    """An ACTIVE contract (sent and signed by both parties through the API) whose term ends on ``end``."""
    contract = await sent(tenant, patient_id, start=today() - timedelta(days=100), end=end, **fields)
    await sign(tenant, contract, "INSTITUTION")
    await sign(tenant, contract, "CLIENT")
    got = ok(await tenant.call("admin", GET, id=contract["id"]), "contract")
    assert got["status"] == "ACTIVE"
    return dict(got)


async def sweep(now: datetime) -> None:
    await contract_reminder.sweep(now=now)


async def staff_side(contract: dict[str, Any]) -> list[Notification]:
    return list(await Notification.filter(contract_id=contract["id"]).order_by("created_at", "kind"))


async def client_side(tenant: Tenant, contract: dict[str, Any]) -> list[Communication]:
    return list(await Communication.filter(institution_id=tenant.id, key__startswith=f"contract:{contract['id']}:"
                                           ).order_by("created_at", "key"))


class RecordingSender:
    """The staff notifications' sender interface, keeping what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def of(self, contract: dict[str, Any]) -> list[Message]:
        return [m for m in self.messages if str(m.contract_id) == contract["id"]]


@dataclass
class Recorder:
    """The messages' sender interface (every channel), keeping what it is given."""

    sent: list[Outgoing] = field(default_factory=list)

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return f"gw-{message.communication_id}"


async def delivered_messages(services: Services, rows: list[Communication], now: datetime) -> list[Outgoing]:
    recorder = Recorder()
    await communication.deliver_due(services, dict.fromkeys(("sms", "email", "wechat", "app"), recorder), now=now)
    ids = {row.id for row in rows}
    return [m for m in recorder.sent if m.communication_id in ids]


# -- the end of the term ---------------------------------------------------------------------------------------


async def test_the_end_is_reminded_60_and_30_days_before_at_exact_local_dates(tenant: Tenant,
                                                                              services: Services) -> None:
    end = today() + timedelta(days=90)
    contract = await active(tenant, await client(tenant), end=end)
    key = f"contract:{contract['id']}:expiry:{end.isoformat()}"

    await sweep(local(end - timedelta(days=61), time(23, 59)))  # 61 days before, to the last local minute
    assert await staff_side(contract) == [] and await client_side(tenant, contract) == []

    await sweep(local(end - timedelta(days=60), time(0, 1)))  # 60 days before: still the day before in UTC
    [sixty] = await staff_side(contract)
    assert (sixty.kind, sixty.key, sixty.institution_id, sixty.ticket_id, sixty.sent_at) == (
        "contract.expiry.60", f"{key}:60", tenant.id, None, None)
    [message] = await client_side(tenant, contract)
    assert (message.cause, message.purpose, message.status, message.patient_id, message.due_at) == (
        "contract_expiry", "care", "queued", uuid.UUID(contract["patientId"]),
        local(end - timedelta(days=60), time(9)))  # at nine, as the calendar's reminders
    assert message.variables["contract_number"] == contract["number"] and message.variables["date"] == end.isoformat()

    for day in (59, 45, 31):  # nothing new in between, however often the sweep runs
        await sweep(local(end - timedelta(days=day)))
        await sweep(local(end - timedelta(days=day), time(18)))
    assert len(await staff_side(contract)) == 1 and len(await client_side(tenant, contract)) == 1

    await sweep(local(end - timedelta(days=30), time(0, 1)))
    await sweep(local(end - timedelta(days=10)))
    await sweep(local(end))  # the last day of the term
    staff = await staff_side(contract)
    messages = await client_side(tenant, contract)
    assert [n.kind for n in staff] == ["contract.expiry.60", "contract.expiry.30"]
    assert [m.key for m in messages] == [f"{key}:60", f"{key}:30"]
    assert all(m.cause == "contract_expiry" for m in messages)


async def test_a_contract_first_seen_20_days_before_its_end_gets_only_the_30_day_reminder(tenant: Tenant) -> None:
    end = today() + timedelta(days=25)
    contract = await active(tenant, await client(tenant), end=end)

    await sweep(local(end - timedelta(days=20)))
    await sweep(local(end - timedelta(days=19)))

    assert [n.kind for n in await staff_side(contract)] == ["contract.expiry.30"]
    assert [m.key.rsplit(":", 1)[1] for m in await client_side(tenant, contract)] == ["30"]


async def test_repeated_and_concurrent_sweeps_schedule_nothing_twice(tenant: Tenant) -> None:
    end = today() + timedelta(days=70)
    contract = await active(tenant, await client(tenant), end=end)
    moment = local(end - timedelta(days=60))

    await asyncio.gather(sweep(moment), sweep(moment), sweep(moment))
    await sweep(moment + timedelta(hours=1))

    assert len(await staff_side(contract)) == 1 and len(await client_side(tenant, contract)) == 1


async def test_no_end_reminder_while_the_next_term_is_prepared(tenant: Tenant) -> None:
    end = today() + timedelta(days=90)
    contract = await active(tenant, await client(tenant), end=end)
    renewal = ok(await tenant.call("front_desk", RENEW, id=contract["id"],
                                   input={"endOn": (end + timedelta(days=365)).isoformat()}), "contractRenew")
    assert renewal["status"] == "DRAFT"

    await sweep(local(end - timedelta(days=60)))
    await sweep(local(end - timedelta(days=30)))

    assert await staff_side(contract) == [] and await client_side(tenant, contract) == []
    assert await staff_side(renewal) == [] and await client_side(tenant, renewal) == []


async def test_no_end_reminder_for_a_terminated_contract(tenant: Tenant) -> None:
    contract = await active(tenant, await client(tenant), end=today() + timedelta(days=300))
    ends = today() + timedelta(days=40)  # terminated as from a day within the 60 days
    ended = ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=contract["version"], on=ends.isoformat()),
               "contractTerminate")
    assert ended == {"status": "TERMINATED", "endOn": ends.isoformat()}

    await sweep(local(ends - timedelta(days=30)))
    await sweep(local(today() + timedelta(days=1)))

    assert await staff_side(contract) == [] and await client_side(tenant, contract) == []


async def test_a_contract_ended_before_its_reminder_went_out_takes_it_with_it(tenant: Tenant) -> None:
    """Found in review: a contract terminated (or expired) after its reminder to the client was queued still had
    the reminder of its end sent."""
    end = today() + timedelta(days=90)
    contract = await active(tenant, await client(tenant), end=end)
    await sweep(local(end - timedelta(days=60), time(0, 1)))
    [queued] = await client_side(tenant, contract)
    assert queued.status == "queued"
    current = ok(await tenant.call("admin", GET, id=contract["id"]), "contract")

    ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=current["version"]), "contractTerminate")

    assert [m.status for m in await client_side(tenant, contract)] == ["cancelled"]


async def test_a_revoked_draft_renewal_lets_the_end_reminders_go_out(tenant: Tenant) -> None:
    """Found in review: a draft renewal could not be given up, and the term it renews was never reminded of its end
    again. Revoked (contractTerminate of a contract never signed), it is not the next term being prepared: the term's
    end is reminded as with no renewal, to staff and client; the revoked renewal is reminded of nothing."""
    end = today() + timedelta(days=90)
    contract = await active(tenant, await client(tenant), end=end)
    renewal = ok(await tenant.call("front_desk", RENEW, id=contract["id"],
                                   input={"endOn": (end + timedelta(days=365)).isoformat()}), "contractRenew")
    prepared = ok(await tenant.call("admin", GET, id=renewal["id"]), "contract")
    revoked = ok(await tenant.call("finance", TERMINATE, id=renewal["id"], v=prepared["version"]), "contractTerminate")
    assert revoked == {"status": "REVOKED", "endOn": prepared["endOn"]}

    await sweep(local(end - timedelta(days=60)))

    assert [n.kind for n in await staff_side(contract)] == ["contract.expiry.60"]
    assert [m.cause for m in await client_side(tenant, contract)] == ["contract_expiry"]
    assert await staff_side(renewal) == [] and await client_side(tenant, renewal) == []


async def test_a_contract_that_renews_itself_is_reminded_to_staff_only(tenant: Tenant) -> None:
    end = today() + timedelta(days=90)
    contract = await active(tenant, await client(tenant), end=end, autoRenew=True)

    await sweep(local(end - timedelta(days=60)))

    assert [n.kind for n in await staff_side(contract)] == ["contract.expiry.60"]
    assert await client_side(tenant, contract) == []  # "your contract ends" would not be true


# -- the client's message: gated, and free of terms --------------------------------------------------------------


async def test_the_clients_message_names_the_number_and_the_date_and_nothing_of_the_terms(
        tenant: Tenant, services: Services) -> None:
    end = today() + timedelta(days=80)
    contract = await active(tenant, await client(tenant), end=end)
    moment = local(end - timedelta(days=60))

    await sweep(moment)
    rows = await client_side(tenant, contract)
    [message] = await delivered_messages(services, rows, moment)

    assert message.channel == "email"
    assert contract["number"] in message.body and end.isoformat() in message.body
    for secret in ("120.00", "840.00", "3456.00", "CNY", CLAUSES, "夜间"):  # price, total, deposit, clauses
        assert secret not in message.body and secret not in message.subject
    [row] = await Communication.filter(id=message.communication_id)
    assert row.status == "sent"


async def test_a_client_without_consent_is_refused_and_staff_still_hear_of_it(tenant: Tenant,
                                                                             services: Services) -> None:
    end = today() + timedelta(days=80)
    contract = await active(tenant, await client(tenant, consent=False), end=end)
    moment = local(end - timedelta(days=60))

    await sweep(moment)

    [row] = await client_side(tenant, contract)
    assert (row.cause, row.status, row.refusal) == ("contract_expiry", "refused", "no_consent")
    assert await delivered_messages(services, [row], moment) == []
    assert [n.kind for n in await staff_side(contract)] == ["contract.expiry.60"]


# -- unsigned versions ---------------------------------------------------------------------------------------


async def test_a_version_unsigned_after_seven_days_is_reminded_once(tenant: Tenant, services: Services) -> None:
    contract = await sent(tenant, await client(tenant))
    await sign(tenant, contract, "INSTITUTION")  # the client has not signed
    sent_at = datetime.fromisoformat(contract["versions"][0]["sentAt"])

    await sweep(sent_at + timedelta(days=6, hours=23))
    assert await staff_side(contract) == [] and await client_side(tenant, contract) == []

    moment = sent_at + timedelta(days=7)
    await sweep(moment)
    await sweep(moment + timedelta(days=3))

    [staff] = await staff_side(contract)
    assert (staff.kind, staff.key) == ("contract.unsigned", f"contract:{contract['id']}:unsigned:1")
    [row] = await client_side(tenant, contract)
    assert (row.cause, row.key, row.status) == ("contract_signature", staff.key, "queued")
    [message] = await delivered_messages(services, [row], max(row.due_at, moment))
    assert contract["number"] in message.body
    assert "3456.00" not in message.body and "120.00" not in message.body and "夜间" not in message.body


async def test_a_sent_contract_revoked_takes_its_signature_reminder_with_it(tenant: Tenant) -> None:
    """A contract sent, its client reminded to sign, then given up before anyone signed everything (revoked: never
    in force): the queued reminder is cancelled, and the withdrawn version is reminded of no more. The denied twin:
    the front desk may not revoke it (FORBIDDEN), and the reminder stays queued."""
    contract = await sent(tenant, await client(tenant))
    await sign(tenant, contract, "INSTITUTION")
    sent_at = datetime.fromisoformat(contract["versions"][0]["sentAt"])
    await sweep(sent_at + timedelta(days=7))
    [queued] = await client_side(tenant, contract)
    assert (queued.cause, queued.status) == ("contract_signature", "queued")
    current = ok(await tenant.call("admin", GET, id=contract["id"]), "contract")

    refused = await tenant.call("front_desk", TERMINATE, id=contract["id"], v=current["version"])
    assert refused.codes == ["FORBIDDEN"], refused.body
    assert [m.status for m in await client_side(tenant, contract)] == ["queued"]

    revoked = ok(await tenant.call("admin", TERMINATE, id=contract["id"], v=current["version"]), "contractTerminate")
    assert revoked == {"status": "REVOKED", "endOn": current["endOn"]}
    assert [m.status for m in await client_side(tenant, contract)] == ["cancelled"]
    await sweep(sent_at + timedelta(days=20))
    assert len(await staff_side(contract)) == 1 and [m.status for m in await client_side(tenant, contract)] == [
        "cancelled"]


async def test_an_unsigned_amendment_is_reminded_and_a_version_the_client_signed_only_to_staff(
        tenant: Tenant) -> None:
    # Version 1: the client signed, the institution has not: staff's business only.
    waiting = await sent(tenant, await client(tenant))
    await sign(tenant, waiting, "CLIENT")
    # An amendment sent for signature, signed by nobody yet.
    contract = await active(tenant, await client(tenant), end=today() + timedelta(days=300))
    amended = ok(await tenant.call("front_desk", AMEND, id=contract["id"], v=contract["version"], input={
        "effectiveOn": (today() + timedelta(days=10)).isoformat(), "changeSummary": "Two more visits a week",
        "endOn": (today() + timedelta(days=330)).isoformat()}), "contractAmend")
    resent = ok(await tenant.call("front_desk", SEND, id=contract["id"], v=amended["version"]), "contractSend")
    sent_at = datetime.fromisoformat(next(v["sentAt"] for v in resent["versions"] if v["number"] == 2))

    await sweep(sent_at + timedelta(days=7, minutes=1))

    assert [(n.kind, n.key) for n in await staff_side(waiting)] == [
        ("contract.unsigned", f"contract:{waiting['id']}:unsigned:1")]
    assert await client_side(tenant, waiting) == []
    assert [n.key for n in await staff_side(contract)] == [f"contract:{contract['id']}:unsigned:2"]
    assert [m.cause for m in await client_side(tenant, contract)] == ["contract_signature"]


async def test_no_statement_of_the_sweep_names_more_than_a_batch(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement takes at most 32,767 parameters on either database, and the sweep runs over every institution:
    it named every contract ending within 60 days (their renewals, the versions in force), every version sent a week
    ago unsigned (their contracts, the client's signatures) and every reminded client in one statement each, and a
    larger deployment's sweep would fail (found reviewing the contract loads). Each is read a batch at a time, and
    what is reminded is unchanged."""
    monkeypatch.setattr(contract_reminder, "BATCH", 1)
    end = today() + timedelta(days=90)
    plain = [await active(tenant, await client(tenant), end=end) for _ in range(2)]
    renews = await active(tenant, await client(tenant), end=end, autoRenew=True)
    unsigned = [await sent(tenant, await client(tenant)) for _ in range(2)]
    for contract in unsigned:
        await sign(tenant, contract, "INSTITUTION")
    contracts = [*plain, renews, *unsigned]
    versions = [str(v) for v in await ContractVersion.filter(contract_id__in=[c["id"] for c in contracts])
                .values_list("id", flat=True)]
    patients = [c["patientId"] for c in contracts]
    sql_counter.statements.clear()

    await sweep(local(end - timedelta(days=60)))
    await sweep(datetime.fromisoformat(unsigned[-1]["versions"][0]["sentAt"]) + timedelta(days=7, minutes=1))

    for ids in ([c["id"] for c in contracts], versions, patients):
        named = [sum(i in statement for i in ids) for statement in sql_counter.statements
                 if statement.startswith("SELECT")]
        assert named and max(named) <= 1, named
    assert [[n.kind for n in await staff_side(c)] for c in contracts] == [
        ["contract.expiry.60"], ["contract.expiry.60"], ["contract.expiry.60"], ["contract.unsigned"],
        ["contract.unsigned"]]
    assert [[m.cause for m in await client_side(tenant, c)] for c in contracts] == [
        ["contract_expiry"], ["contract_expiry"], [], ["contract_signature"], ["contract_signature"]]


# -- suspended contracts ---------------------------------------------------------------------------------------


async def test_a_contract_suspended_for_thirty_days_is_reminded_to_staff_each_suspension(tenant: Tenant) -> None:
    contract = await active(tenant, await client(tenant), end=today() + timedelta(days=300))
    suspended = ok(await tenant.call("finance", SUSPEND, id=contract["id"], v=contract["version"]), "contractSuspend")
    since = datetime.fromisoformat(suspended["suspendedAt"])

    await sweep(since + timedelta(days=29, hours=23))
    assert await staff_side(contract) == []

    await sweep(since + timedelta(days=30))
    await sweep(since + timedelta(days=31))
    [first] = await staff_side(contract)
    assert first.kind == "contract.suspended" and await client_side(tenant, contract) == []

    resumed = ok(await tenant.call("finance", RESUME, id=contract["id"], v=suspended["version"]), "contractResume")
    again = ok(await tenant.call("finance", SUSPEND, id=contract["id"], v=resumed["version"]), "contractSuspend")
    await sweep(datetime.fromisoformat(again["suspendedAt"]) + timedelta(days=30))

    assert [n.kind for n in await staff_side(contract)] == ["contract.suspended"] * 2
    assert len({n.key for n in await staff_side(contract)}) == 2


# -- delivery to staff ---------------------------------------------------------------------------------------


async def test_staff_notifications_go_to_the_finance_staff_else_the_admins(tenant: Tenant) -> None:
    end = today() + timedelta(days=80)
    contract = await active(tenant, await client(tenant), end=end)
    moment = local(end - timedelta(days=60))
    await sweep(moment)

    sender = RecordingSender()
    await notification.deliver_due(sender, now=moment)
    await notification.deliver_due(sender, now=moment + timedelta(hours=1))  # once

    [message] = sender.of(contract)
    assert (message.kind, message.institution_id, list(message.recipients)) == (
        "contract.expiry.60", tenant.id, [tenant.staff_ids["finance"]])
    assert contract["id"] in message.text and "60 days" in message.text
    assert "120.00" not in message.text and contract["number"] not in message.text
    [row] = await staff_side(contract)
    assert row.sent_at == moment and row.attempts == 1

    # Without active finance staff, the admins hear of it.
    ok(await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["finance"]), input={"active": False}),
       "staffUpdate")
    later = local(end - timedelta(days=30))
    await sweep(later)
    await notification.deliver_due(sender, now=later)

    assert [(m.kind, list(m.recipients)) for m in sender.of(contract)][1:] == [
        ("contract.expiry.30", [tenant.staff_ids["admin"]])]
