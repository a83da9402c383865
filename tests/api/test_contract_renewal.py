"""Renewals and the end of a term: contractRenew (the next term at current prices), the expiry sweep at exact local
dates in a zone far from UTC, automatic renewal (once, at the signed prices) and the renewal bookkeeping when the
next term is signed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from models import Contract, Institution
from resolvers import contract as contracts
from resolvers.context import Services
from tests.api.test_contracts import stored
from tests.contracts import GET, active_contract, draft, item_input, make_item, signed, today
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, events_since, make_contact, mark, open_account

RENEW = """mutation($id: ID!, $input: ContractRenewInput!) { contractRenew(contractId: $id, input: $input) {
  id status renewalOfId startOn endOn patientId partnerId guarantorContactId departmentId currency title
  versions { number status effectiveOn endOn autoRenew noticeDays deposit { amount }
    items { code quantity frequency unitPrice { amount } } } } }"""
TERMINATE = """mutation($id: ID!, $v: Int!) {
  contractTerminate(contractId: $id, reason: "Client prefers a shorter term", expectedVersion: $v) { status } }"""
READ = """query($id: ID!) { contract(id: $id) { id status startOn endOn endedAt renewalOfId
  versions { number status changeSummary autoRenew signedAt clauses
    items { code quantity unitPrice { amount } } } } }"""


def at_local(day: date, clock: time, zone: str) -> datetime:
    return datetime.combine(day, clock, ZoneInfo(zone)).astimezone(UTC)


async def past_contract(tenant: Tenant, services: Services, start: date, end: date, **fields: object) -> dict:
    """An ACTIVE contract whose term lies in the past (the sweep has not seen it yet)."""
    item = await make_item(tenant)
    made = await draft(tenant, await make_patient(tenant), [item_input(item)], startOn=start.isoformat(),
                       endOn=end.isoformat(), **fields)
    await signed(tenant, services, made["id"])
    return made


async def status_of(contract_id: str) -> str:
    return (await Contract.get(id=contract_id)).status


# -- contractRenew --------------------------------------------------------------------------------------------


async def test_a_renewal_is_the_next_term_at_the_current_catalogue_prices(tenant: Tenant, services: Services) -> None:
    patient = await make_patient(tenant)
    guarantor = await make_contact(tenant, patient, "Zhang Wei")
    next_start = today() + timedelta(days=366)  # the helpers' term: tomorrow and 364 days more
    visit = await make_item(tenant, unit_price="120.00", later_prices=((next_start - timedelta(days=100), "125.00"),
                                                                        (next_start, "135.00"),
                                                                        (next_start + timedelta(days=1), "999.00")))
    made = await active_contract(tenant, services, patient_id=patient, items=[item_input(visit, 6)],
                                 guarantorContactId=str(guarantor), noticeDays=45, autoRenew=True)
    new_end = next_start + timedelta(days=180)
    seq = await mark(tenant.id)
    reply = await tenant.call("front_desk", RENEW, id=made["id"], input={"endOn": new_end.isoformat()})
    assert set(reply.codes) == {"FORBIDDEN"}, reply.errors  # the front desk renews but reads no money
    renewal = reply.data["contractRenew"]
    assert (renewal["status"], renewal["renewalOfId"], renewal["startOn"], renewal["endOn"]) == (
        "DRAFT", made["id"], next_start.isoformat(), new_end.isoformat())
    assert {k: renewal[k] for k in ("patientId", "guarantorContactId", "departmentId", "currency", "title")} == {
        k: made[k] for k in ("patientId", "guarantorContactId", "departmentId", "currency", "title")}
    [version] = renewal["versions"]
    assert (version["effectiveOn"], version["autoRenew"], version["noticeDays"]) == (next_start.isoformat(), True, 45)
    assert version["deposit"] is None and version["items"][0]["unitPrice"] is None
    money = await tenant.call("admin", READ, id=renewal["id"])
    assert money.data["contract"]["versions"][0]["items"][0]["unitPrice"] == {"amount": "135.00"}
    [write] = await events_since(tenant.id, seq, action="create", resource_type="contract")
    assert str(write.resource_id) == renewal["id"] and write.patient_id == patient
    # one renewal at a time; the original stays as it is
    again = await tenant.call("admin", RENEW, id=made["id"], input={"endOn": new_end.isoformat()})
    assert again.errors[0]["extensions"]["reason"] == "renewal_exists"
    assert await status_of(made["id"]) == "active"


async def test_renewals_refused(tenant: Tenant, services: Services) -> None:
    item = await make_item(tenant)
    drafted = await draft(tenant, await make_patient(tenant), [item_input(item)])
    made = await active_contract(tenant, services)
    before, seq = await stored(tenant), await mark(tenant.id)
    not_live = await tenant.call("admin", RENEW, id=drafted["id"], input={"endOn": "2099-01-01"})
    assert not_live.errors[0]["extensions"]["reason"] == "illegal_transition"
    too_short = await tenant.call("admin", RENEW, id=made["id"], input={"endOn": made["endOn"]})
    assert [(f["field"], f["reason"]) for f in too_short.errors[0]["extensions"]["invalid"]] == [
        ("input.endOn", "end_not_after_start")]
    for role in ("nurse", "compliance_officer"):
        assert (await tenant.call(role, RENEW, id=made["id"], input={"endOn": "2099-01-01"})).codes == ["FORBIDDEN"]
    me = await open_account(tenant, (uuid.UUID(made["patientId"])))
    assert (await me.call(RENEW, id=made["id"], input={"endOn": "2099-01-01"})).codes == ["FORBIDDEN"]
    assert (await stored(tenant))["contracts"] == before["contracts"]
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("create", "contract", "forbidden")] * 3


# -- the end of a term ---------------------------------------------------------------------------------------


async def test_a_term_expires_on_the_next_local_day_in_a_zone_ahead_of_utc(tenant: Tenant,
                                                                           services: Services) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: the local day starts at 10:00 UTC the day before
    await Institution.filter(id=tenant.id).update(time_zone=zone)
    end = date(2025, 3, 31)
    made = await past_contract(tenant, services, date(2024, 4, 1), end)
    paused = await past_contract(tenant, services, date(2024, 4, 1), end)
    suspended = await tenant.call("admin", """mutation($id: ID!, $v: Int!) {
      contractSuspend(contractId: $id, reason: "Away", expectedVersion: $v) { version } }""",
                                  id=paused["id"], v=(await Contract.get(id=paused["id"])).version)
    assert not suspended.errors, suspended.errors
    last_minute = at_local(end, time(23, 59, 59), zone)
    assert last_minute.date() == end  # still the end day in UTC too
    await contracts.expire_due(services.keyring, last_minute)
    assert [await status_of(c["id"]) for c in (made, paused)] == ["active", "suspended"]
    next_day = at_local(end + timedelta(days=1), time(0), zone)
    assert next_day.date() == end  # in UTC it is still the end day: only the local date counts
    seq = await mark(tenant.id)
    assert await contracts.expire_due(services.keyring, next_day) >= 2
    for c in (made, paused):
        row = await Contract.get(id=c["id"])
        assert (row.status, row.ended_at) == ("expired", next_day)
    records = await events_since(tenant.id, seq, resource_type="contract")
    assert sorted((str(e.resource_id), e.actor_kind, e.action, e.fields_read, e.policy_rule) for e in records) == \
        sorted((c["id"], "system", "update", "ended_at,status", "contract expiry sweep") for c in (made, paused))
    # once: a second run changes nothing
    seq = await mark(tenant.id)
    await contracts.expire_due(services.keyring, next_day + timedelta(hours=1))
    assert await events_since(tenant.id, seq) == []


async def test_a_term_is_active_all_its_last_local_day_in_a_zone_behind_utc(tenant: Tenant,
                                                                            services: Services) -> None:
    zone = "Pacific/Pago_Pago"  # UTC-11: the local day ends at 11:00 UTC the day after
    await Institution.filter(id=tenant.id).update(time_zone=zone)
    end = date(2025, 5, 31)
    made = await past_contract(tenant, services, date(2024, 6, 1), end)
    late = at_local(end, time(23, 30), zone)
    assert late.date() == end + timedelta(days=1)  # UTC has moved on; the institution has not
    await contracts.expire_due(services.keyring, late)
    assert await status_of(made["id"]) == "active"
    await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 0, 1), zone))
    assert await status_of(made["id"]) == "expired"
    reply = await tenant.call("admin", READ, id=made["id"])
    assert reply.data["contract"]["status"] == "EXPIRED" and reply.data["contract"]["endedAt"]


async def test_an_automatic_renewal_opens_the_next_term_once_at_the_signed_prices(tenant: Tenant,
                                                                                  services: Services) -> None:
    start, end = date(2024, 2, 1), date(2025, 1, 31)
    visit = await make_item(tenant, unit_price="120.00", later_prices=((date(2025, 1, 15), "200.00"),))
    me = await open_account(tenant)
    made = await draft(tenant, me.patient_id, [item_input(visit, 5)], startOn=start.isoformat(),
                       endOn=end.isoformat(), autoRenew=True, clauses="Two carers for transfers")
    await signed(tenant, services, made["id"])
    now = at_local(end + timedelta(days=1), time(0, 5), "Asia/Shanghai")
    seq = await mark(tenant.id)
    await asyncio.gather(contracts.expire_due(services.keyring, now), contracts.expire_due(services.keyring, now))
    await contracts.expire_due(services.keyring, now + timedelta(minutes=10))
    [renewal] = await Contract.filter(renewal_of_id=made["id"])
    assert await status_of(made["id"]) == "renewed"
    assert (renewal.status, renewal.start_on, renewal.end_on) == ("active", date(2025, 2, 1), date(2026, 1, 31))
    # the patient reads the next term in the portal: signed by the automatic renewal, same items, signed prices
    reply = await me.call(READ, id=str(renewal.id))
    assert not reply.errors, reply.errors
    [version] = reply.data["contract"]["versions"]
    assert (version["status"], version["changeSummary"], version["autoRenew"]) == ("SIGNED", "automatic renewal",
                                                                                   True)
    assert version["signedAt"] and version["clauses"] == "Two carers for transfers"
    assert [(i["quantity"], i["unitPrice"]) for i in version["items"]] == [(5, {"amount": "120.00"})]
    assert reply.data["contract"]["renewalOfId"] == made["id"]
    records = await events_since(tenant.id, seq, resource_type="contract", actor_kind="system")
    assert sorted((str(e.resource_id), e.action, e.actor_kind) for e in records) == sorted(
        [(str(renewal.id), "create", "system"), (made["id"], "update", "system")])


async def test_a_renewal_signed_in_time_takes_over_at_the_end(tenant: Tenant, services: Services) -> None:
    end = date(2025, 6, 30)
    made = await past_contract(tenant, services, date(2024, 7, 1), end, autoRenew=True)
    reply = await tenant.call("admin", RENEW, id=made["id"], input={"endOn": "2025-12-31"})
    renewal = reply.data["contractRenew"]
    await signed(tenant, services, renewal["id"])
    assert (await status_of(renewal["id"]), await status_of(made["id"])) == ("active", "active")
    await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 1), "Asia/Shanghai"))
    assert await status_of(made["id"]) == "renewed"  # not expired, and no automatic renewal besides
    assert await Contract.filter(renewal_of_id=made["id"]).count() == 1


async def test_a_term_with_an_unsigned_renewal_expires_and_is_renewed_when_it_is_signed(
        tenant: Tenant, services: Services) -> None:
    end = date(2025, 8, 31)
    made = await past_contract(tenant, services, date(2024, 9, 1), end, autoRenew=True)
    reply = await tenant.call("admin", RENEW, id=made["id"], input={"endOn": "2026-08-31"})
    renewal = reply.data["contractRenew"]
    await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 1), "Asia/Shanghai"))
    assert await status_of(made["id"]) == "expired"  # the renewal being prepared replaces the automatic one
    assert await Contract.filter(renewal_of_id=made["id"]).count() == 1
    await signed(tenant, services, renewal["id"])
    assert (await status_of(renewal["id"]), await status_of(made["id"])) == ("active", "renewed")
    after = await tenant.call("admin", GET, id=made["id"])
    assert after.data["contract"]["status"] == "RENEWED"


@pytest.mark.parametrize(("term", "next_start", "next_end"), [
    ((date(2026, 1, 1), date(2026, 12, 31)), date(2027, 1, 1), date(2027, 12, 31)),  # a calendar year
    ((date(2024, 2, 29), date(2025, 2, 28)), date(2025, 3, 1), date(2026, 2, 28)),  # a year from 29 February
    ((date(2026, 1, 31), date(2026, 2, 28)), date(2026, 3, 1), date(2026, 3, 31)),  # a month from the 31st
    ((date(2026, 3, 31), date(2026, 4, 30)), date(2026, 5, 1), date(2026, 5, 31)),
    ((date(2026, 1, 31), date(2026, 3, 30)), date(2026, 3, 31), date(2026, 5, 30)),  # two months, day kept
    ((date(2026, 1, 10), date(2026, 2, 5)), date(2026, 2, 6), date(2026, 3, 4)),  # not whole months: as many days
    ((date(2026, 1, 31), date(2026, 1, 31)), date(2026, 2, 1), date(2026, 2, 1)),  # one day
])
def test_a_renewed_term_is_as_long_as_the_last(term: tuple[date, date], next_start: date, next_end: date) -> None:
    assert contracts.next_term_end(*term, next_start) == next_end


async def test_a_revoked_draft_renewal_leaves_the_term_to_renew_itself(tenant: Tenant, services: Services) -> None:
    """Found in review: a draft renewal could not be given up, and a term renewing itself then expired at its end
    instead, for ever. Revoked (contractTerminate of a contract never signed: admins, finance), it is no next term:
    the sweep renews the term itself at its end. The denied twin: the front desk may not revoke it (FORBIDDEN,
    recorded, nothing written)."""
    end = date(2025, 10, 31)
    made = await past_contract(tenant, services, date(2024, 11, 1), end, autoRenew=True)
    renewal = (await tenant.call("admin", RENEW, id=made["id"], input={"endOn": "2026-10-31"})).data["contractRenew"]
    version = (await tenant.call("admin", GET, id=renewal["id"])).data["contract"]["version"]
    before, seq = await stored(tenant), await mark(tenant.id)
    assert (await tenant.call("front_desk", TERMINATE, id=renewal["id"], v=version)).codes == ["FORBIDDEN"]
    assert await stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [("update", "contract", "forbidden", uuid.UUID(renewal["id"]), None)]
    revoked = await tenant.call("finance", TERMINATE, id=renewal["id"], v=version)
    assert revoked.data == {"contractTerminate": {"status": "REVOKED"}}, revoked.body

    await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 1), "Asia/Shanghai"))
    assert await status_of(made["id"]) == "renewed"
    terms = await Contract.filter(renewal_of_id=made["id"]).values_list("status", "start_on", "end_on")
    assert sorted(terms) == [("active", date(2025, 11, 1), date(2026, 10, 31)),  # the automatic renewal
                             ("revoked", date(2025, 11, 1), date(2026, 10, 31))]
