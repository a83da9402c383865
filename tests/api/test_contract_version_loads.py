"""The contract sweeps, reports and writes load the versions they need and no other (found in review: each loaded
every version of each contract it looked at, long texts and all, and an amendment adds one). The expiry sweep and
the reminders need the version in force at the end of the term: one row a contract (the reminders only whether it
renews itself). The delivery report and the department report need every signed version's calendar columns (where a
billing period begins depends on the billing periods in force before it), never a draft or withdrawn one nor the
texts, and the items only of the versions in force in the periods they count. A draft's update needs the draft and
the newest signed version (which an amendment is held to and keeps the prices of), an amendment and a renewal the
newest signed version (what they copy); a few columns each. Each costs the same statements for a contract with one
version and with many, and answers as before (the same expiries and renewals, reminders, periods, figures and
versions written)."""

from __future__ import annotations

import re
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


def selected(query: str) -> list[str]:
    """What a SELECT returns: the name (or alias) of each column of its outer list, ``*`` for a whole row."""
    while "(" in query:  # subqueries and calls out, the outer list's own columns left
        query = re.sub(r"\([^()]*\)", "", query)
    columns = query.strip().removeprefix("SELECT").split(" FROM ", 1)[0]
    return [(re.findall(r'"([^"]+)"', column) or [column.strip()])[-1] if not column.strip().endswith("*")
            else "*" for column in columns.split(",")]


async def row_version(tenant: Tenant, contract: str) -> int:
    return int(ok(await tenant.call("admin", "query($id: ID!) { contract(id: $id) { version } }",
                                    id=contract))["contract"]["version"])


async def with_versions(tenant: Tenant, services: Services, amendments: int, *, end: date,
                        auto_renew: tuple[bool, bool] = (True, True), patient: uuid.UUID | None = None,
                        draft: bool = True) -> str:
    """An ACTIVE contract from tomorrow to ``end`` whose version 1 renews itself as ``auto_renew[0]`` says, with
    ``amendments`` signed amendments (the n-th effective in 5 * n days), the last one setting ``auto_renew[1]``, and
    (``draft``) one more amendment left a draft (never in force)."""
    made = await active_contract(tenant, services, patient_id=patient, autoRenew=auto_renew[0],
                                 endOn=end.isoformat())
    for n in range(1, amendments + (2 if draft else 1)):
        version = await row_version(tenant, made["id"])
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
    spent, reads, columns = [], [], []
    for end in ends:
        # what other tests left due (they share the database: unsigned versions...) reminded of the day before, so
        # the sweep measured schedules this contract's reminder alone
        await contract_reminder.sweep(now=local(end - timedelta(days=61)))
        start, read = len(sql_counter.statements), rows_read(VERSION)
        await contract_reminder.sweep(now=local(end - timedelta(days=60)))
        spent.append(len(sql_counter.statements) - start)
        reads.append(read.rows[0])  # the versions in force of the contracts found; then the unsigned versions
        columns.append([selected(query) for query in read.queries])
    assert reads == [1, 1, 1], reads
    # of the version in force, whether it renews itself; of a version sent and unsigned, which it is and its date
    unsigned = sorted(contract_reminder.UNSIGNED_COLUMNS)
    assert [[found[0], *map(sorted, found[1:])] for found in columns] == [
        [["contract_id", "auto_renew"], unsigned]] * 3, columns
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


# -- the writes: a draft's update, an amendment, a renewal -------------------------------------------------------

DRAFT_UPDATE = """mutation($id: ID!, $input: ContractDraftInput!, $v: Int!) {
  contractDraftUpdate(contractId: $id, input: $input, expectedVersion: $v) { version currentVersion } }"""
AMEND_ONLY = """mutation($id: ID!, $input: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $input, expectedVersion: $v) { version currentVersion } }"""
RENEW = """mutation($id: ID!, $input: ContractRenewInput!) { contractRenew(contractId: $id, input: $input) { id } }"""
VERSIONS = """query($id: ID!) { contract(id: $id) { currentVersion versions { number status effectiveOn endOn
  noticeDays autoRenew rightsDuties items { code quantity unitPrice { amount } } } } }"""
# what a draft's update reads of the draft and of the version it amends
DRAFT_READ = ["id", "number", "status", "effective_on", "end_on", "deposit"]
# what an amendment or a renewal copies of the version it follows, the texts unless the input replaces them
FOLLOWED_READ = ["id", "billing_period", "deposit", "notice_days", "auto_renew"]
TEXTS_READ = ["rights_duties", "clauses"]
NUMBERS_READ = ["newest_number", "open_number"]  # an amendment's: the newest version's number, an open one's


async def versions(tenant: Tenant, contract: str) -> Any:
    return ok(await tenant.call("admin", VERSIONS, id=contract))["contract"]


async def measured(sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead], call: Any
                   ) -> tuple[int, list[int], list[list[str]], Any]:
    """The statements ``call`` ran, the rows and columns of each SELECT of versions, and its answer."""
    start, read = len(sql_counter.statements), rows_read(VERSION)
    answer = await call
    return len(sql_counter.statements) - start, list(read.rows), [selected(q) for q in read.queries], answer


async def test_a_draft_update_reads_the_draft_and_the_version_it_amends_alone(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """A draft amendment's update reads two versions, a few columns each, in one statement: the draft, and the newest
    signed version (the amendment is held to its dates and keeps its signed prices), whether the contract has two
    versions or six."""
    end = today() + timedelta(days=300)
    one = await with_versions(tenant, services, 0, end=end)  # version 1 signed, version 2 a draft
    many = await with_versions(tenant, services, 4, end=end)  # versions 1 to 5 signed, version 6 a draft
    found = []
    for contract in (one, many):
        change = {"noticeDays": 45, "effectiveOn": (today() + timedelta(days=40)).isoformat()}
        found.append(await measured(sql_counter, rows_read, tenant.call(
            "admin", DRAFT_UPDATE, id=contract, v=await row_version(tenant, contract), input=change)))
    spent, rows, columns = ([f[i] for f in found] for i in range(3))
    assert spent[0] == spent[1], spent
    assert rows == [[2], [2]], rows  # the draft and the newest signed version, not every version
    assert [[sorted(c) for c in each] for each in columns] == [[sorted(DRAFT_READ)]] * 2, columns
    for contract, (_, _, _, reply), draft_number in zip((one, many), found, (2, 6), strict=True):
        assert ok(reply)["contractDraftUpdate"]["currentVersion"] == draft_number
        written = await versions(tenant, contract)
        draft = written["versions"][-1]
        assert (draft["number"], draft["status"], draft["noticeDays"]) == (draft_number, "DRAFT", 45), draft
        assert draft["effectiveOn"] == (today() + timedelta(days=40)).isoformat()
        assert draft["items"] == written["versions"][-2]["items"]  # the signed prices kept


async def test_an_amendment_reads_the_newest_signed_version_alone(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """An amendment reads one version, in one statement: the newest signed one, which it copies (not the one in
    force: every amendment here takes effect later), and with it the newest version's number (the amendment's is the
    next) and whether one is open; its texts only when the input does not replace them. One version or six, the same
    statements."""
    end = today() + timedelta(days=300)
    one = await with_versions(tenant, services, 0, end=end, auto_renew=(False, True), draft=False)
    many = await with_versions(tenant, services, 5, end=end, auto_renew=(False, True), draft=False)
    texts = await with_versions(tenant, services, 0, end=end, auto_renew=(False, True), draft=False)
    change = {"effectiveOn": (today() + timedelta(days=40)).isoformat(), "changeSummary": "Two visits more",
              "noticeDays": 60}
    found = []
    for contract, given in ((one, {}), (many, {}), (texts, {"rightsDuties": "As agreed anew.", "clauses": None})):
        found.append(await measured(sql_counter, rows_read, tenant.call(
            "admin", AMEND_ONLY, id=contract, v=await row_version(tenant, contract), input={**change, **given})))
    spent, rows, columns = ([f[i] for f in found] for i in range(3))
    assert spent[0] == spent[1] == spent[2], spent
    assert rows == [[1], [1], [1]], rows
    copied = sorted([*FOLLOWED_READ, "effective_on", "end_on", *NUMBERS_READ])
    assert [[sorted(c) for c in each] for each in columns] == [
        [sorted([*copied, *TEXTS_READ])], [sorted([*copied, *TEXTS_READ])], [copied]], columns
    for contract, number, auto_renew in ((one, 2, False), (many, 7, True), (texts, 2, False)):
        written = await versions(tenant, contract)
        amendment = written["versions"][-1]
        assert written["currentVersion"] == amendment["number"] == number, written
        # the newest signed version's terms (version 6's automatic renewal, not version 1's, in force today)
        assert (amendment["status"], amendment["noticeDays"], amendment["autoRenew"]) == ("DRAFT", 60, auto_renew)
        assert amendment["items"] == written["versions"][-2]["items"]
    assert (await versions(tenant, texts))["versions"][-1]["rightsDuties"] == "As agreed anew."
    # an open version found in the same statement: a second amendment is refused, nothing written
    refused = await tenant.call("admin", AMEND_ONLY, id=one, v=await row_version(tenant, one), input=change)
    assert [e["extensions"].get("reason") for e in refused.errors] == ["open_version_exists"], refused.errors


async def test_a_renewal_reads_the_newest_signed_version_alone(
        tenant: Tenant, services: Services, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    """A renewal reads one version, the newest signed one (its terms and items are the next term's), in one
    statement, the columns it copies: one version or six, the same statements."""
    end = today() + timedelta(days=300)
    one = await with_versions(tenant, services, 0, end=end, auto_renew=(False, True), draft=False)
    many = await with_versions(tenant, services, 5, end=end, auto_renew=(False, True), draft=False)
    found = []
    for contract in (one, many):
        found.append(await measured(sql_counter, rows_read, tenant.call(
            "admin", RENEW, id=contract, input={"endOn": (end + timedelta(days=365)).isoformat()})))
    spent, rows, columns = ([f[i] for f in found] for i in range(3))
    assert spent[0] == spent[1], spent
    assert rows == [[1], [1]], rows
    assert [[sorted(c) for c in each] for each in columns] == [[sorted([*FOLLOWED_READ, *TEXTS_READ])]] * 2, columns
    for contract, (_, _, _, reply), auto_renew in zip((one, many), found, (False, True), strict=True):
        renewal = await versions(tenant, ok(reply)["contractRenew"]["id"])
        first = renewal["versions"][0]
        assert (first["number"], first["status"], first["autoRenew"]) == (1, "DRAFT", auto_renew), first
        renewed = (await versions(tenant, contract))["versions"][-1]
        assert first["rightsDuties"] == renewed["rightsDuties"]
        assert [i["code"] for i in first["items"]] == [i["code"] for i in renewed["items"]]
