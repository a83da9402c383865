"""The contract sweeps and reports load the versions they need and no other (found in review: each loaded every
version of each contract it looked at, long texts and all, and an amendment adds one). The expiry sweep and the
reminders need the version in force at the end of the term: one row a contract. The delivery report and the
department report need every signed version's calendar columns (where a billing period begins depends on the
billing periods in force before it), never a draft or withdrawn one nor the texts, and the items only of the
versions in force in the periods they count. Each costs the same statements for a contract with one version and
with many, and answers as before (the same expiries and renewals, reminders, periods and figures)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from models import Communication, Contract, Notification
from resolvers import contract as contracts
from resolvers import contract_reminder
from resolvers.context import Services
from tests.api.test_contract_reminders import client, local
from tests.api.test_contract_renewal import at_local
from tests.api.test_nested_list_bounds import AMEND
from tests.conftest import RowsRead, SqlCounter
from tests.contracts import active_contract, signed, today
from tests.factories import Response, Tenant

ZONE = "Asia/Shanghai"
VERSION = "contract_version"
LONG_TEXTS = ('"rights_duties"', '"clauses"', '"change_summary"')
DELIVERY = """query($id: ID!) { contractDelivery(contractId: $id) { periods { start end versionNumber closed
  contracted delivered missed items { code contracted delivered missed } } } }"""
REPORT = """query($from: String!, $to: String!) { contractReport(from: $from, to: $to) { months { month active
  expiring new renewed terminated expired revenue { amount currency } contractedUnits deliveredUnits missedUnits
  deliveryRate } } }"""


def ok(reply: Response) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


async def with_versions(tenant: Tenant, services: Services, amendments: int, *, end: date,
                        auto_renew: tuple[bool, bool] = (True, True), patient: uuid.UUID | None = None) -> str:
    """An ACTIVE contract from tomorrow to ``end`` whose version 1 renews itself as ``auto_renew[0]`` says, with
    ``amendments`` signed amendments (the n-th effective in 5 * n days), the last one setting ``auto_renew[1]``, and
    one more amendment left a draft (never in force)."""
    made = await active_contract(tenant, services, patient_id=patient, autoRenew=auto_renew[0],
                                 endOn=end.isoformat())
    for n in range(1, amendments + 2):
        version = ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version } }",
                                       id=made["id"]))["contract"]["version"]
        changes = {"autoRenew": auto_renew[1]} if n == amendments else {}
        ok(await tenant.call("admin", AMEND, id=made["id"], v=version, input={
            "effectiveOn": (today() + timedelta(days=5 * n)).isoformat(), "changeSummary": f"Amendment {n}",
            **changes}))
        if n <= amendments:
            await signed(tenant, services, made["id"])
    return str(made["id"])


# -- the expiry sweep ------------------------------------------------------------------------------------------


async def test_the_expiry_sweep_loads_the_version_in_force_at_the_end_alone(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """Each contract ended reads one version, the one in force on its last day, which decides the renewal: the
    newest amendment's (renews itself) over version 1's (does not), and the other way round."""
    ends = [today() + timedelta(days=days) for days in (1234, 1274, 1314)]  # days no other test's term ends on
    one = await with_versions(tenant, services, 0, end=ends[0])
    many = await with_versions(tenant, services, 4, end=ends[1], auto_renew=(False, True))
    stops = await with_versions(tenant, services, 4, end=ends[2], auto_renew=(True, False))
    spent, reads = [], []
    for end in ends:
        # every contract ending before (other tests': they share the database), and the next terms their automatic
        # renewals open, ended first, so the sweep measured ends this one alone
        while await contracts.expire_due(services.keyring, at_local(end, time(0, 1), ZONE)):
            pass
        start, read = len(sql_counter.statements), rows_read(VERSION)
        assert await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 1), ZONE)) == 1
        spent.append(len(sql_counter.statements) - start)
        reads.append(list(read.rows))  # as it stands now: the watch goes on
    assert reads == [[1], [1], [1]], reads
    assert spent[0] == spent[1], spent  # both renewed: one version or five, the same statements
    statuses = {str(c.id): c.status for c in await Contract.filter(id__in=[one, many, stops])}
    assert statuses == {one: "renewed", many: "renewed", stops: "expired"}, statuses
    assert await Contract.filter(renewal_of_id__in=[one, many, stops]).count() == 2


# -- the reminders ---------------------------------------------------------------------------------------------


async def test_the_reminders_load_the_version_in_force_at_the_end_alone(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """The expiry reminder asks whether the version in force at the end renews itself (then the client is not told
    the service ends): one version a contract found. Far-off terms, which no other test's contracts end near (the
    sweep looks at every institution)."""
    ends = [today() + timedelta(days=days) for days in (2345, 2445, 2545)]
    one = await with_versions(tenant, services, 0, end=ends[0], patient=await client(tenant))
    many = await with_versions(tenant, services, 4, end=ends[1], auto_renew=(False, True),
                               patient=await client(tenant))
    stops = await with_versions(tenant, services, 4, end=ends[2], auto_renew=(True, False),
                                patient=await client(tenant))
    spent, reads = [], []
    for end in ends:
        # what other tests left due (they share the database: unsigned versions...) reminded of the day before, so
        # the sweep measured schedules this contract's reminder alone
        await contract_reminder.sweep(now=local(end - timedelta(days=61)))
        start, read = len(sql_counter.statements), rows_read(VERSION)
        await contract_reminder.sweep(now=local(end - timedelta(days=60)))
        spent.append(len(sql_counter.statements) - start)
        reads.append(read.rows[0])  # the versions in force of the contracts found; then the unsigned versions
    assert reads == [1, 1, 1], reads
    assert spent[0] == spent[1], spent  # both to staff alone: one version or five, the same statements
    staff = {str(n.contract_id): n.kind for n in await Notification.filter(contract_id__in=[one, many, stops])}
    assert staff == {one: "contract.expiry.60", many: "contract.expiry.60", stops: "contract.expiry.60"}, staff
    told = {str(c.key).split(":")[1] for c in await Communication.filter(institution_id=tenant.id,
                                                                        key__startswith="contract:")}
    assert told == {stops}, told  # one and many renew themselves at the end: the client is not told it ends


# -- the delivery report and the department report -------------------------------------------------------------


def later(monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    """The institution's clock ``days`` on: the billing periods so far are in the past."""
    monkeypatch.setattr(contracts, "_now", lambda: datetime.now(UTC) + timedelta(days=days))


async def test_the_delivery_report_reads_the_signed_versions_calendars_and_their_items_in_force(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch,
        rows_read: Callable[[str], RowsRead]) -> None:
    end = today() + timedelta(days=200)
    one = await with_versions(tenant, services, 0, end=end)
    many = await with_versions(tenant, services, 4, end=end)
    later(monkeypatch, 400)
    spent, reads, answers = [], [], []
    for contract in (one, many):
        start, read = len(sql_counter.statements), rows_read(VERSION)
        answers.append(ok(await tenant.call("admin", DELIVERY, id=contract))["contractDelivery"]["periods"])
        spent.append(len(sql_counter.statements) - start)
        reads.append((list(read.rows), list(read.queries)))
    assert spent[0] == spent[1], spent
    # the signed versions (1, then 5), not the draft, and none of their texts
    assert [rows for rows, _ in reads] == [[1], [5]], reads
    assert not any(text in query for _, queries in reads for query in queries for text in LONG_TEXTS), reads
    # the same periods and figures; the first period under version 1, the others under the newest amendment
    assert [p["versionNumber"] for p in answers[1]] == [1] + [5] * (len(answers[1]) - 1)
    strip = [[{k: v for k, v in p.items() if k not in ("versionNumber", "items")} for p in a] for a in answers]
    assert strip[0] == strip[1] and len(strip[0]) >= 6


async def test_the_report_reads_the_items_of_the_versions_in_force_only(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch,
        rows_read: Callable[[str], RowsRead]) -> None:
    """Revenue and delivery reckon with the version in force in each period: the items of the others are not read.
    A second contract like the first but with four amendments (same items and prices) doubles every figure and
    costs no more statements."""
    end = today() + timedelta(days=200)
    await with_versions(tenant, services, 0, end=end)
    months = {"from": today().strftime("%Y-%m"), "to": end.strftime("%Y-%m")}
    later(monkeypatch, 400)
    spent, items, versions, answers = [], [], [], []
    for _ in range(2):
        start, item_rows, version_rows = len(sql_counter.statements), rows_read("contract_item"), rows_read(VERSION)
        answers.append(ok(await tenant.call("finance", REPORT, **months))["contractReport"]["months"])
        spent.append(len(sql_counter.statements) - start)
        items.append(list(item_rows.rows))
        versions.append((list(version_rows.rows), list(version_rows.queries)))
        if len(answers) == 1:
            monkeypatch.setattr(contracts, "_now", lambda: datetime.now(UTC))  # amendments are made today
            await with_versions(tenant, services, 4, end=end)
            later(monkeypatch, 400)
    assert spent[0] == spent[1], spent
    assert items == [[1], [3]], items  # versions 1 / versions 1 and 5 (one item each), not 1 to 5
    assert [rows for rows, _ in versions] == [[1], [6]], versions
    assert not any(text in query for _, queries in versions for query in queries for text in LONG_TEXTS), versions
    for alone, both in zip(*answers, strict=True):
        assert both["contractedUnits"] == 2 * alone["contractedUnits"], (alone, both)
        assert [float(m["amount"]) for m in both["revenue"]] == [2 * float(m["amount"]) for m in alone["revenue"]]


async def test_the_report_reads_the_items_of_many_versions_in_several_statements(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement takes at most 32,767 parameters on either database, one a version id: an institution-wide report
    over more versions in force failed. The items are read IDS_PER_STATEMENT versions at a time, with the same
    answer (here one a statement: three versions in force, three statements where one did)."""
    from resolvers import contract_report
    end = today() + timedelta(days=200)
    await with_versions(tenant, services, 0, end=end)
    monkeypatch.setattr(contracts, "_now", lambda: datetime.now(UTC))  # amendments are made today
    await with_versions(tenant, services, 4, end=end)
    months = {"from": today().strftime("%Y-%m"), "to": end.strftime("%Y-%m")}
    later(monkeypatch, 400)
    spent, answers = [], []
    for per_statement in (contract_report.IDS_PER_STATEMENT, 1):
        monkeypatch.setattr(contract_report, "IDS_PER_STATEMENT", per_statement)
        start = len(sql_counter.statements)
        answers.append(ok(await tenant.call("finance", REPORT, **months))["contractReport"]["months"])
        spent.append(len(sql_counter.statements) - start)
    assert answers[0] == answers[1]
    assert any(month["contractedUnits"] for month in answers[0]), answers[0]
    assert spent[1] - spent[0] == 2, spent  # versions 1, 1 and 5 of the two contracts
