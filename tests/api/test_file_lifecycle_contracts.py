"""A client's file closed against the client's service contracts (docs/patients.md, docs/contracts.md): a death ends
them as contractTerminate would, an archive is refused while one is not ended (ending one is admin's or finance's, not
the front desk's), a closed file's contract is not renewed (by hand or by the sweep) nor reminded of."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import (
    Communication,
    Contract,
    ContractSignature,
    ContractVersion,
    FollowUpTask,
    Institution,
    Notification,
    Patient,
)
from resolvers import access, contract_reminder
from resolvers import contract as contracts
from resolvers.context import Services
from tests.api.test_contract_reminders import active, client, sent
from tests.conftest import BACKEND
from tests.contracts import draft, item_input, make_item, signed
from tests.factories import Tenant
from tests.locks import Pause, held, pause_before_entering, until_waiting
from tests.patients import denials_since, events_since, mark, open_account

ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id status } }"
DECEASED = "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) { id status } }"
RENEW = """mutation($id: ID!, $input: ContractRenewInput!) { contractRenew(contractId: $id, input: $input) {
  id status } }"""
SUSPEND = """mutation($id: ID!, $v: Int!) { contractSuspend(contractId: $id, reason: "Hospital stay",
  expectedVersion: $v) { status } }"""
TERMINATE = """mutation($id: ID!, $v: Int!) { contractTerminate(contractId: $id, reason: "Moved away",
  expectedVersion: $v) { status } }"""
ZONE = "Pacific/Kiritimati"  # UTC+14: for ten hours of each UTC day the institution's date is the next one


def local_today(zone: str = ZONE) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


async def version_of(contract_id: str) -> int:
    return (await Contract.get(id=contract_id)).version


async def contract_rows(pid: uuid.UUID) -> list[dict[str, Any]]:
    return list(await Contract.filter(patient_id=pid).order_by("id").values())


async def close_before_this_change(pid: uuid.UUID, status: str) -> None:
    """A file archived, or its patient's death recorded, before a closing file had anything to do with contracts:
    such files exist, with their contracts running (the only row written here without the API)."""
    await Patient.filter(id=pid).update(status=status)


# -- a death ends the client's contracts ------------------------------------------------------------------------


async def test_a_death_ends_every_contract_of_the_client_as_a_termination_would(
        tenant: Tenant, services: Services) -> None:
    """Found in review: after the death was recorded, the client's contracts ran on: the term in force, a next term
    signed ahead, drafts and sent contracts, their reminders queued and the automatic renewal to come. Now the death
    ends them in its transaction, by the fact of the death: the term in force TERMINATED on the day the death is
    recorded (the institution's date), a term not started and a contract never signed REVOKED as they stand, open
    versions withdrawn, queued reminders cancelled; each a change on the trail by whoever recorded the death, reason
    client_deceased, naming columns only. Another client's contract runs on."""
    await Institution.filter(id=tenant.id).update(time_zone=ZONE)
    pid = await client(tenant)
    end = local_today() + timedelta(days=50)
    running = await active(tenant, pid, end=end)
    renewing = await active(tenant, pid, end=end, autoRenew=True)
    await contract_reminder.sweep()  # the term ends within 60 days: its client's reminder queued
    [queued] = await Communication.filter(key__startswith=f"contract:{running['id']}:")
    assert queued.status == "queued"
    ahead = (await tenant.call("admin", RENEW, id=running["id"], input={
        "endOn": (end + timedelta(days=365)).isoformat()})).data["contractRenew"]
    await signed(tenant, services, ahead["id"])  # the next term, signed ahead: ACTIVE, not started
    item = await make_item(tenant)
    drafted = await draft(tenant, pid, [item_input(item)])
    offered = await sent(tenant, pid)
    other = await active(tenant, await client(tenant), end=end)
    seq = await mark(tenant.id)

    reply = await tenant.call("nurse", DECEASED, id=str(pid))

    assert reply.errors == [], reply.errors
    today = local_today()
    ended = {str(row.id): row for row in await Contract.filter(patient_id=pid)}
    for term in (running, renewing):
        assert (ended[term["id"]].status, ended[term["id"]].end_on) == ("terminated", today)
    assert (ended[ahead["id"]].status, ended[ahead["id"]].start_on, ended[ahead["id"]].end_on) == (
        "revoked", end + timedelta(days=1), end + timedelta(days=365))  # its term as agreed
    assert (ended[drafted["id"]].status, ended[offered["id"]].status) == ("revoked", "revoked")
    assert all(row.ended_at is not None and row.status_reason == "client_deceased" for row in ended.values())
    assert await ContractVersion.filter(contract_id__in=list(ended), status__in=("draft", "sent")).count() == 0
    assert await ContractVersion.filter(contract_id__in=[drafted["id"], offered["id"]]).values_list(
        "status", flat=True) == ["withdrawn", "withdrawn"]
    assert (await Communication.get(id=queued.id)).status == "cancelled"
    assert (await Contract.get(id=other["id"])).status == "active"
    records = await events_since(tenant.id, seq, resource_type="contract")
    assert sorted((str(e.resource_id), e.action, e.outcome, e.actor_id, e.patient_id, e.reason) for e in records) == \
        sorted((c, "update", "allowed", tenant.staff_ids["nurse"], pid, "client_deceased") for c in ended)
    assert {e.fields_read for e in records} <= {"ended_at,status,status_reason", "end_on,ended_at,status,status_reason"}
    assert await denials_since(tenant.id, seq) == []

    # the automatic renewal never comes, and nothing more is reminded
    await contracts.expire_due(services.keyring, datetime.combine(end + timedelta(days=1), time(0, 5),
                                                                  ZoneInfo(ZONE)).astimezone(UTC))
    assert await Contract.filter(renewal_of_id=running["id"]).values_list("id", flat=True) == [
        uuid.UUID(ahead["id"])]
    assert await Contract.filter(renewal_of_id=renewing["id"]).count() == 0
    before = await Notification.filter(contract_id__in=list(ended)).count()
    await contract_reminder.sweep(datetime.now(UTC) + timedelta(days=30))
    assert await Notification.filter(contract_id__in=list(ended)).count() == before


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_a_next_term_the_sweep_opens_as_the_death_is_recorded_is_ended_too(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep renewed the term automatically (it read the file active) and had not committed when the death was
    recorded: the death waited for the term's lock, found the term RENEWED, and its statement, older than the next
    term, did not see it. The death reads the client's contracts again until nothing new: the next term, started
    today, is TERMINATED today too."""
    pid = await client(tenant)
    today = local_today("Asia/Shanghai")
    term = await draft(tenant, pid, [item_input(await make_item(tenant))], startOn=(today - timedelta(days=200))
                       .isoformat(), endOn=(today - timedelta(days=1)).isoformat(), autoRenew=True)
    await signed(tenant, services, term["id"])
    pause, original = Pause(), contracts._auto_renew

    async def renewing(scribe: Any, row: Contract, *more: Any) -> Contract:
        renewal = await original(scribe, row, *more)
        if str(row.id) == term["id"]:
            await pause.hold()
        return renewal

    monkeypatch.setattr(contracts, "_auto_renew", renewing)
    sweeping = asyncio.ensure_future(contracts.expire_due(services.keyring))
    try:
        await pause.reached_within()
        dying = asyncio.ensure_future(tenant.call("nurse", DECEASED, id=str(pid)))
        await until_waiting([dying])
    finally:
        pause.release()
    await sweeping
    reply = await asyncio.wait_for(dying, 10)

    assert reply.errors == [], reply.errors
    assert (await Contract.get(id=term["id"])).status == "renewed"
    [renewal] = await Contract.filter(renewal_of_id=term["id"])
    assert (renewal.status, renewal.start_on, renewal.end_on) == ("terminated", today, today)


async def test_a_role_that_may_not_record_the_death_ends_nothing(tenant: Tenant, services: Services) -> None:
    """The denied twin: a doctor does not change a file's identity class, so records no death; refused as before,
    on the trail, and the client's contract runs on."""
    pid = await client(tenant)
    running = await active(tenant, pid, end=local_today("Asia/Shanghai") + timedelta(days=200))
    before, seq = await contract_rows(pid), await mark(tenant.id)

    reply = await tenant.call("doctor", DECEASED, id=str(pid))

    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert await contract_rows(pid) == before and (await Contract.get(id=running["id"])).status == "active"
    assert (await Patient.get(id=pid)).status == "active"
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("update", "patient", "forbidden")]


# -- an archive is refused while a contract is not ended -----------------------------------------------------------


async def _contract_in(tenant: Tenant, services: Services, pid: uuid.UUID, state: str) -> str:
    """A contract of the client standing in ``state``."""
    end = local_today("Asia/Shanghai") + timedelta(days=200)
    if state == "draft":
        return str((await draft(tenant, pid, [item_input(await make_item(tenant))]))["id"])
    if state == "sent":
        return str((await sent(tenant, pid))["id"])
    if state == "signed ahead":  # ACTIVE, its term not started
        made = await draft(tenant, pid, [item_input(await make_item(tenant))])
        await signed(tenant, services, made["id"])
        return str(made["id"])
    made = await active(tenant, pid, end=end)
    if state == "suspended":
        suspended = await tenant.call("admin", SUSPEND, id=made["id"], v=await version_of(made["id"]))
        assert suspended.errors == [], suspended.errors
    return str(made["id"])


@pytest.mark.parametrize("state", ["draft", "sent", "active", "signed ahead", "suspended"])
async def test_a_file_whose_client_has_a_contract_not_ended_is_not_archived(
        tenant: Tenant, services: Services, state: str) -> None:
    """Found in review: the archive went through and the contract ran on. Archiving is the front desk's right and
    ending a contract admin's or finance's (docs/contracts.md, Access), so the archive does not end it: CONFLICT
    contracts_running at id, nothing written (the file, its contracts, its open calls), the refusal on the trail."""
    pid = await client(tenant)
    contract_id = await _contract_in(tenant, services, pid, state)
    task = await tenant.call("nurse", """mutation($input: FollowUpTaskCreateInput!) {
      followUpTaskCreate(input: $input) { id status } }""", input={
        "patientId": str(pid), "dueOn": (local_today("Asia/Shanghai") + timedelta(days=2)).isoformat()})
    assert task.errors == [], task.errors
    file, contracts_before, seq = await Patient.get(id=pid), await contract_rows(pid), await mark(tenant.id)

    reply = await tenant.call("front_desk", ARCHIVE, id=str(pid))

    assert reply.codes == ["CONFLICT"], reply.errors
    assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
        "id", "contracts_running")
    after = await Patient.get(id=pid)
    assert (after.status, after.version) == ("active", file.version)
    assert await contract_rows(pid) == contracts_before
    assert (await FollowUpTask.get(id=task.data["followUpTaskCreate"]["id"])).status == task.data[
        "followUpTaskCreate"]["status"].lower()
    assert await denials_since(tenant.id, seq) == [("archive", "patient", "contracts_running", pid, pid)]
    assert await events_since(tenant.id, seq, outcome="allowed", action="archive") == []
    assert contract_id in {str(row["id"]) for row in contracts_before}


async def test_a_file_whose_contracts_are_all_ended_is_archived(tenant: Tenant, services: Services) -> None:
    """The allowed twin: once admin or finance ended them (terminated, revoked), the front desk archives the file."""
    pid = await client(tenant)
    running = await _contract_in(tenant, services, pid, "active")
    drafted = await _contract_in(tenant, services, pid, "draft")
    for contract_id in (running, drafted):
        ended = await tenant.call("finance", TERMINATE, id=contract_id, v=await version_of(contract_id))
        assert ended.errors == [], ended.errors

    reply = await tenant.call("front_desk", ARCHIVE, id=str(pid))

    assert reply.errors == [], reply.errors
    assert reply.data["patientArchive"]["status"] == "ARCHIVED"


async def test_a_role_that_may_not_archive_is_refused_as_before(tenant: Tenant, services: Services) -> None:
    """The denied twin: a nurse does not archive files; refused as before (FORBIDDEN, recorded), nothing ended."""
    pid = await client(tenant)
    await _contract_in(tenant, services, pid, "active")
    file, before, seq = await Patient.get(id=pid), await contract_rows(pid), await mark(tenant.id)

    reply = await tenant.call("nurse", ARCHIVE, id=str(pid))

    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert (await Patient.get(id=pid)).version == file.version and await contract_rows(pid) == before
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("archive", "patient", "forbidden")]


async def test_a_contract_drafted_while_the_file_is_archived_stops_the_archive(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive found the client without a contract, then a desk drafted one before the archive wrote: the file
    would be archived with a contract running. The archive reads the contracts again under the file's lock, which a
    new contract takes too: refused, nothing written, the draft stands."""
    pid = await client(tenant)
    item = await make_item(tenant)
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call("front_desk", ARCHIVE, id=str(pid)), pause) as archiving:
        made = await draft(tenant, pid, [item_input(item)])
    reply = await archiving

    assert reply.codes == ["CONFLICT"], reply.errors
    assert reply.errors[0]["extensions"]["reason"] == "contracts_running"
    assert (await Patient.get(id=pid)).status == "active"
    assert (await Contract.get(id=made["id"])).status == "draft"


# -- a closed file's contract is not renewed nor reminded of ----------------------------------------------------------


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_contract_is_not_renewed(tenant: Tenant, services: Services, status: str) -> None:
    """Found in review: contractRenew never asked about the client's file, so a closed file's contract (closed before
    a death ended contracts and an archive waited for them) was renewed. Refused as contractCreate refuses a closed
    file: BAD_USER_INPUT at contractId, nothing written. The twin on an open file is renewed."""
    closed, open_ = await client(tenant), await client(tenant)
    end = local_today("Asia/Shanghai") + timedelta(days=200)
    old = await active(tenant, closed, end=end)
    kept = await active(tenant, open_, end=end)
    await close_before_this_change(closed, status)
    before = await contract_rows(closed)

    reply = await tenant.call("admin", RENEW, id=old["id"], input={"endOn": (end + timedelta(days=365)).isoformat()})
    twin = await tenant.call("admin", RENEW, id=kept["id"], input={"endOn": (end + timedelta(days=365)).isoformat()})

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "contractId"
    assert await contract_rows(closed) == before
    assert twin.errors == [] and twin.data["contractRenew"]["status"] == "DRAFT"


async def test_a_renewal_made_as_the_death_is_recorded_is_not_written(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """contractRenew read the term running, the death was recorded (ending it) before the renewal was written: the
    renewal reads the file under its lock, as contractCreate does, and is refused there, nothing written."""
    pid = await client(tenant)
    end = local_today("Asia/Shanghai") + timedelta(days=200)
    old = await active(tenant, pid, end=end)
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call("admin", RENEW, id=old["id"], input={
            "endOn": (end + timedelta(days=365)).isoformat()}), pause) as renewing:
        dead = await tenant.call("nurse", DECEASED, id=str(pid))
        assert dead.errors == [], dead.errors
    reply = await renewing

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "contractId"
    assert await Contract.filter(renewal_of_id=old["id"]).count() == 0


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_the_sweep_lets_a_closed_files_contract_expire(tenant: Tenant, services: Services, status: str) -> None:
    """Decided: a contract of a file closed before this change, renewing itself, is not renewed at its end: it
    EXPIRES (nobody is cared for under it any more). The twin on an open file renews itself."""
    start, end = date(2024, 3, 1), date(2025, 2, 28)
    pids, ids = [await client(tenant), await client(tenant)], []
    for pid in pids:
        made = await draft(tenant, pid, [item_input(await make_item(tenant))], startOn=start.isoformat(),
                           endOn=end.isoformat(), autoRenew=True)
        await signed(tenant, services, made["id"])
        ids.append(made["id"])
    closed, open_ = ids
    await close_before_this_change(pids[0], status)

    await contracts.expire_due(services.keyring, datetime.combine(end + timedelta(days=1), time(0, 5),
                                                                  ZoneInfo("Asia/Shanghai")).astimezone(UTC))

    assert (await Contract.get(id=closed)).status == "expired"
    assert await Contract.filter(renewal_of_id=closed).count() == 0
    assert (await Contract.get(id=open_)).status == "renewed"
    assert await Contract.filter(renewal_of_id=open_).count() == 1


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_contract_is_reminded_of_nothing(tenant: Tenant, status: str) -> None:
    """The reminders' sweep queues nothing (staff nor client) for a closed file's contract; the twin on an open file
    is reminded."""
    end = local_today("Asia/Shanghai") + timedelta(days=50)
    closed, open_ = await client(tenant), await client(tenant)
    old = await active(tenant, closed, end=end)
    kept = await active(tenant, open_, end=end)
    await close_before_this_change(closed, status)

    await contract_reminder.sweep()

    assert await Notification.filter(contract_id=old["id"]).count() == 0
    assert await Communication.filter(key__startswith=f"contract:{old['id']}:").count() == 0
    assert await Notification.filter(contract_id=kept["id"]).count() == 1
    assert await Communication.filter(key__startswith=f"contract:{kept['id']}:").count() == 1


# -- a closed file's contract is not sent nor signed ------------------------------------------------------------------

SEND = """mutation($id: ID!, $v: Int!) { contractSend(contractId: $id, expectedVersion: $v) {
  id status version versions { number status documentSha256 } } }"""
SIGN = """mutation($input: ContractSignInput!) { contractSign(input: $input) { party contract { status } } }"""
AMEND = """mutation($id: ID!, $v: Int!, $input: ContractAmendInput!) {
  contractAmend(contractId: $id, expectedVersion: $v, input: $input) { id version currentVersion } }"""


async def contract_state(pid: uuid.UUID) -> dict[str, Any]:
    """The contract rows of a file, their versions and signatures: what a refused send or signature leaves as it was."""
    ids = await Contract.filter(patient_id=pid).values_list("id", flat=True)
    versions = await ContractVersion.filter(contract_id__in=ids).order_by("id").values()
    return {"contracts": await contract_rows(pid), "versions": versions,
            "signatures": await ContractSignature.filter(contract_version_id__in=[v["id"] for v in versions]
                                                         ).order_by("id").values()}


async def _amendment(tenant: Tenant, pid: uuid.UUID, *, sent_too: bool) -> tuple[str, int, int]:
    """An ACTIVE contract of the file with an amendment drafted (and sent, ``sent_too``) while the file was open: the
    contract's id, its version and the amendment's number."""
    contract = await active(tenant, pid, end=local_today("Asia/Shanghai") + timedelta(days=200))
    amended = await tenant.call("admin", AMEND, id=contract["id"], v=contract["version"], input={
        "effectiveOn": (local_today("Asia/Shanghai") + timedelta(days=10)).isoformat(),
        "changeSummary": "Two more visits"})
    assert amended.errors == [], amended.errors
    version, number = amended.data["contractAmend"]["version"], amended.data["contractAmend"]["currentVersion"]
    if sent_too:
        reply = await tenant.call("front_desk", SEND, id=contract["id"], v=version)
        assert reply.errors == [], reply.errors
        version = reply.data["contractSend"]["version"]
    return contract["id"], version, number


def _sha(contract: dict[str, Any], number: int) -> str:
    return str(next(v["documentSha256"] for v in contract["versions"] if v["number"] == number))


async def _drafts_on_a_closed_file_and_an_open_one(tenant: Tenant, what: str, status: str
                                                  ) -> tuple[uuid.UUID, list[tuple[str, int]]]:
    """A draft (a new contract's, or an amendment's) on each of two clients' files, (id, version) each, the first
    file then closed as an old database holds it."""
    closed, open_ = await client(tenant), await client(tenant)
    if what == "contract":
        drafts = [await draft(tenant, pid, [item_input(await make_item(tenant))]) for pid in (closed, open_)]
        pending = [(made["id"], made["version"]) for made in drafts]
    else:
        pending = [(await _amendment(tenant, pid, sent_too=False))[:2] for pid in (closed, open_)]
    await close_before_this_change(closed, status)
    return closed, pending


@pytest.mark.parametrize("what", ["contract", "amendment"])
@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_contract_is_not_sent(tenant: Tenant, status: str, what: str) -> None:
    """Found in review: contractSend never asked about the client's file, so a contract (or an amendment) drafted on a
    file closed before a death ended contracts and an archive waited for them was sent for signature. The file's
    status is written directly (as an old database holds it: the API no longer lets it arise). Refused as
    contractRenew refuses a closed file: BAD_USER_INPUT at contractId, nothing written. The twin on an open file is
    sent."""
    closed, pending = await _drafts_on_a_closed_file_and_an_open_one(tenant, what, status)
    before = await contract_state(closed)

    reply = await tenant.call("front_desk", SEND, id=pending[0][0], v=pending[0][1])
    twin = await tenant.call("front_desk", SEND, id=pending[1][0], v=pending[1][1])

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "contractId"
    assert reply.data == {"contractSend": None}
    assert await contract_state(closed) == before
    assert twin.errors == [], twin.errors


@pytest.mark.parametrize("what", ["contract", "amendment"])
@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_contract_is_not_signed(tenant: Tenant, status: str, what: str) -> None:
    """As sending (above): a contract (or an amendment) sent while the file was open, the file closed before this
    change (its status written directly, as an old database holds it), is not signed: BAD_USER_INPUT at
    input.contractId, no signature written, the contract as it stood. The twin on an open file is signed."""
    closed, open_ = await client(tenant), await client(tenant)
    pending = []
    for pid in (closed, open_):
        if what == "contract":
            contract = await sent(tenant, pid)
            pending.append((contract["id"], 1, _sha(contract, 1)))
        else:
            contract_id, _, number = await _amendment(tenant, pid, sent_too=True)
            versions = await ContractVersion.filter(contract_id=contract_id, number=number).first()
            assert versions is not None
            pending.append((contract_id, number, str(versions.document_sha256)))
    await close_before_this_change(closed, status)
    before = await contract_state(closed)

    def signing(contract_id: str, number: int, sha: str) -> dict[str, Any]:
        return {"contractId": contract_id, "versionNumber": number, "party": "INSTITUTION", "method": "IN_PERSON",
                "documentSha256": sha}

    reply = await tenant.call("finance", SIGN, input=signing(*pending[0]))
    twin = await tenant.call("finance", SIGN, input=signing(*pending[1]))

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.contractId"
    assert reply.data == {"contractSign": None}
    assert await contract_state(closed) == before
    assert twin.errors == [], twin.errors


MY_SIGN = """mutation($input: MyContractSignInput!) { myContractSign(input: $input) { party } }"""


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_client_does_not_sign_in_the_portal(tenant: Tenant, status: str) -> None:
    """The portal's signature goes the way contractSign does (above): the client of a file closed before this change
    (its status written directly, as an old database holds it) signing a contract sent while the file was open is
    BAD_USER_INPUT at input.contractId, nothing written. The twin, the same client's file open, is signed."""
    users = [await open_account(tenant), await open_account(tenant)]
    contracts_sent = [await sent(tenant, user.patient_id) for user in users]
    await close_before_this_change(users[0].patient_id, status)
    before = await contract_state(users[0].patient_id)

    replies = [await user.call(MY_SIGN, input={"contractId": contract["id"], "versionNumber": 1,
                                               "documentSha256": _sha(contract, 1)})
               for user, contract in zip(users, contracts_sent, strict=True)]

    assert replies[0].codes == ["BAD_USER_INPUT"], replies[0].errors
    assert replies[0].errors[0]["extensions"]["field"] == "input.contractId"
    assert await contract_state(users[0].patient_id) == before
    assert replies[1].errors == [] and replies[1].data == {"myContractSign": {"party": "CLIENT"}}


# -- a closed file's contract is neither amended nor its draft edited --------------------------------------------------

DRAFT_UPDATE = """mutation($id: ID!, $v: Int!, $input: ContractDraftInput!) {
  contractDraftUpdate(contractId: $id, expectedVersion: $v, input: $input) { id version } }"""


async def _updates_since(tenant: Tenant, seq: int, contract_id: str) -> list[Any]:
    """The successful changes of a contract recorded since the mark: a refused write records none."""
    return list(await events_since(tenant.id, seq, resource_type="contract", resource_id=contract_id,
                                   action="update", outcome="allowed"))


@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_contract_is_not_amended(tenant: Tenant, status: str) -> None:
    """Found in review: contractAmend never asked about the client's file, so a running contract of a file closed
    before a death ended contracts and an archive waited for them (its status written directly, as an old database
    holds it) took a new draft version that could no longer be sent nor signed: work nobody can finish. Refused as
    contractSend refuses a closed file: BAD_USER_INPUT at contractId, no version written, nothing recorded as done.
    The twin on an open file is amended."""
    closed, open_ = await client(tenant), await client(tenant)
    end = local_today("Asia/Shanghai") + timedelta(days=200)
    running = [await active(tenant, pid, end=end) for pid in (closed, open_)]
    await close_before_this_change(closed, status)
    before = await contract_state(closed)
    seq = await mark(tenant.id)

    def amending(contract: dict[str, Any]) -> dict[str, Any]:
        return {"id": contract["id"], "v": contract["version"], "input": {
            "effectiveOn": (local_today("Asia/Shanghai") + timedelta(days=10)).isoformat(),
            "changeSummary": "Two more visits"}}

    reply = await tenant.call("admin", AMEND, **amending(running[0]))
    twin = await tenant.call("admin", AMEND, **amending(running[1]))

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "contractId"
    assert reply.data == {"contractAmend": None}
    assert await contract_state(closed) == before
    assert await _updates_since(tenant, seq, running[0]["id"]) == []
    assert twin.errors == [] and twin.data["contractAmend"]["currentVersion"] == 2, twin.errors
    assert len(await _updates_since(tenant, seq, running[1]["id"])) == 1


@pytest.mark.parametrize("what", ["contract", "amendment"])
@pytest.mark.parametrize("status", ["archived", "deceased"])
async def test_a_closed_files_draft_is_not_edited(tenant: Tenant, status: str, what: str) -> None:
    """As amending (above): the draft of a closed file's contract (version 1, or an amendment drafted while the file
    was open; the file's status written directly, as an old database holds it) can no longer be sent nor signed, so
    contractDraftUpdate refuses it: BAD_USER_INPUT at contractId, the draft as it stood, nothing recorded as done.
    The twin on an open file is edited."""
    closed, pending = await _drafts_on_a_closed_file_and_an_open_one(tenant, what, status)
    before = await contract_state(closed)
    seq = await mark(tenant.id)

    reply = await tenant.call("front_desk", DRAFT_UPDATE, id=pending[0][0], v=pending[0][1],
                              input={"noticeDays": 60})
    twin = await tenant.call("front_desk", DRAFT_UPDATE, id=pending[1][0], v=pending[1][1],
                             input={"noticeDays": 60})

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "contractId"
    assert reply.data == {"contractDraftUpdate": None}
    assert await contract_state(closed) == before
    assert await _updates_since(tenant, seq, pending[0][0]) == []
    assert twin.errors == [] and twin.data["contractDraftUpdate"]["version"] == pending[1][1] + 1, twin.errors
    assert len(await _updates_since(tenant, seq, pending[1][0])) == 1
