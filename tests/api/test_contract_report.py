"""Delivered against contracted and the contract report, through the API: a contract's billing periods with each
item's units contracted, delivered and missed on a known data set (visits that count and visits that must not:
another patient, not finished, the wrong kind, a procedure not done, another code, just outside a period in local
time), the version in force switching with an amendment, the patient reading their own; the department and
institution report month by month (counts, revenue per currency with monthly and quarterly billing, delivery
rate); commercial terms as a field class; each allowed path's denied twin, nothing leaked and the refusal on the
trail; a fixed number of SQL statements whatever the size. Contracts are drafted, sent and signed through the API
(contractCreate, contractSend, contractSign)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models import AuditEvent, Contract, ContractItem, ContractVersion, Visit, VisitCode
from resolvers import contract as contracts
from resolvers import institution as institutions
from resolvers.context import Services
from resolvers.contract_report import add_months
from tests.conftest import SqlCounter
from tests.contracts import draft, item_input, make_item, today
from tests.daytime import a_whole_local_day
from tests.factories import PASSWORD, Response, Tenant, gql, login, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import denials_since, mark, open_account

ZONE = ZoneInfo("Asia/Shanghai")  # the test institutions' zone

ITEM = "position code name contracted delivered missed deliveredByPartner"
DELIVERY = f"""query($id: ID!, $from: Date, $to: Date) {{ contractDelivery(contractId: $id, from: $from, to: $to) {{
  contractId number today periods {{ start end versionNumber closed contracted delivered missed
    items {{ {ITEM} }} shortfall {{ code missed }} }} }} }}"""
REPORT = """query($from: String!, $to: String!, $dep: ID) { contractReport(from: $from, to: $to, departmentId: $dep) {
  departmentId months { month active expiring new renewed terminated expired revenue { amount currency minorUnits }
    contractedUnits deliveredUnits missedUnits deliveryRate } } }"""
VERSION = "query($id: ID!) { contract(id: $id) { version status currentVersion } }"
SEND = """mutation($id: ID!, $v: Int!) { contractSend(contractId: $id, expectedVersion: $v) {
  version versions { number documentSha256 } } }"""
SIGN = "mutation($input: ContractSignInput!) { contractSign(input: $input) { contract { status } } }"
AMEND = """mutation($id: ID!, $input: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $input, expectedVersion: $v) { version currentVersion } }"""
TERMINATE = """mutation($id: ID!, $v: Int!, $on: Date) {
  contractTerminate(contractId: $id, reason: "Moving away", expectedVersion: $v, effectiveOn: $on) { status endOn } }"""
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
CODE = "mutation($id: ID!, $input: VisitCodeInput!) { visitCodeAdd(visitId: $id, input: $input) { id } }"


# -- helpers ------------------------------------------------------------------------------------------------------


def first_of_month(offset: int) -> date:
    """The first day of the month ``offset`` months from the current one (the institution's dates)."""
    return add_months(today().replace(day=1), offset)


def at(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A local moment of the institution."""
    return datetime.combine(day, time(hour, minute, second), ZONE)


def ok(reply: Response) -> Any:
    assert not reply.errors, reply.errors
    return reply.data


async def signed(tenant: Tenant, contract_id: str, number: int = 1, partner: bool = False) -> None:
    """Send the open version and have every party sign it in person (the institution by finance, the client and
    the partner recorded by the front desk): version 1 activates the contract, an amendment takes effect."""
    version = ok(await tenant.call("admin", VERSION, id=contract_id))["contract"]["version"]
    sent = ok(await tenant.call("front_desk", SEND, id=contract_id, v=version))["contractSend"]
    sha = next(v["documentSha256"] for v in sent["versions"] if v["number"] == number)
    parties = [("finance", "INSTITUTION"), ("front_desk", "CLIENT"), *([("front_desk", "PARTNER")] if partner else [])]
    for role, party in parties:
        ok(await tenant.call(role, SIGN, input={"contractId": contract_id, "versionNumber": number, "party": party,
                                                "method": "IN_PERSON" if party != "PARTNER" else "ON_PAPER",
                                                "documentSha256": sha}))


async def contract(tenant: Tenant, patient_id: uuid.UUID, items: list[dict[str, Any]], start: date, end: date,
                   *, activate: bool = True, partner_id: uuid.UUID | None = None, **fields: Any) -> str:
    made = await draft(tenant, patient_id, items, startOn=start.isoformat(), endOn=end.isoformat(),
                       **({"partnerId": str(partner_id)} if partner_id else {}), **fields)
    if activate:
        await signed(tenant, made["id"], partner=partner_id is not None)
    return str(made["id"])


async def visit(tenant: Tenant, patient_id: uuid.UUID, when: datetime, codes: list[tuple[str, str]], *,
                kind: str = "HOME_CARE", status: str = "FINISHED", caller: Any = None) -> str:
    """A visit that ended at ``when`` (or is planned for it) with procedures (code, DONE|NOT_DONE|PENDING), the
    codes recorded by the nurse; ``caller``: another caller records the visit (a partner)."""
    data: dict[str, Any] = {"patientId": str(patient_id), "kind": kind, "status": status}
    if status == "FINISHED":
        data.update(startedAt=(when - timedelta(hours=1)).isoformat(), endedAt=when.isoformat())
    else:
        data["plannedAt"] = when.isoformat()
    reply = await caller.call(VISIT, input=data) if caller else await tenant.call("nurse", VISIT, input=data)
    visit_id = str(ok(reply)["visitCreate"]["id"])
    for code, state in codes:
        ok(await tenant.call("nurse", CODE, id=visit_id, input={"kind": "PROCEDURE", "code": code, "status": state}))
    return visit_id


async def code_of(tenant: Tenant, item_id: uuid.UUID) -> str:
    reply = ok(await tenant.call("admin", "query($id: ID!) { serviceItem(id: $id) { code } }", id=str(item_id)))
    return str(reply["serviceItem"]["code"])


async def stored(tenant: Tenant) -> dict[str, Any]:
    """The rows a read must leave as they were."""
    where = {"institution_id": tenant.id}
    return {name: await model.filter(**where).order_by("id").values()
            for name, model in (("contracts", Contract), ("versions", ContractVersion), ("items", ContractItem),
                                ("visits", Visit), ("codes", VisitCode))}


def items_of(period: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [(i["code"], i["contracted"], i["delivered"], i["missed"]) for i in period["items"]]


async def department_head_of_b(tenant: Tenant, services: Services) -> str:
    """A department head of department B, signed in."""
    email = f"head.b.{uuid.uuid4().hex[:8]}@careloop.test"
    await institutions.create_account(services, tenant.institution, email=email, name="Head of B",
                                      password=PASSWORD, roles=["department_head"],
                                      departments=[tenant.departments["B"]])
    return await login(tenant.client, email)


# -- delivered against contracted ------------------------------------------------------------------------------


async def test_delivered_against_contracted_exact_on_a_known_data_set(tenant: Tenant, services: Services,
                                                                      sql_counter: SqlCounter) -> None:
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "visit:create"])
    patient, someone = partnership.granted, await make_patient(tenant)
    x_item, y_item, w_item = await make_item(tenant), await make_item(tenant), await make_item(tenant)
    x, y, w = [await code_of(tenant, i) for i in (x_item, y_item, w_item)]
    start = first_of_month(-3)
    contract_id = await contract(tenant, patient, [item_input(x_item, quantity=4),
                                                   item_input(y_item, quantity=2, by_partner=True)],
                                 start, add_months(start, 12) - timedelta(days=1), partner_id=partnership.partner_id)
    p1, p2, p3, p4 = (first_of_month(k) for k in (-3, -2, -1, 0))
    DONE, NOT_DONE, PENDING = "DONE", "NOT_DONE", "PENDING"

    # Period 1: X twice (once recorded twice on the same visit: one unit), Y twice.
    await visit(tenant, patient, at(p1 + timedelta(days=2)), [(x, DONE), (y, DONE)])
    await visit(tenant, patient, at(p1 + timedelta(days=5)), [(x, DONE), (x, DONE)], kind="PROCEDURE")
    await visit(tenant, patient, at(p1 + timedelta(days=6), 9), [(y, DONE)])
    # ... and what must not count: another patient, not finished, the wrong kind, not done or pending, another code.
    await visit(tenant, someone, at(p1 + timedelta(days=3)), [(x, DONE)])
    await visit(tenant, patient, at(p1 + timedelta(days=4)), [(x, DONE)], status="PLANNED")
    await visit(tenant, patient, at(p1 + timedelta(days=4), 15), [(x, DONE)], kind="OUTPATIENT")
    await visit(tenant, patient, at(p1 + timedelta(days=7)), [(x, NOT_DONE), (x, PENDING)])
    await visit(tenant, patient, at(p1 + timedelta(days=8)), [(w, DONE)])
    # Period 2: X on its first local second (the day before in UTC), by the partner, and on its last second with Y.
    await visit(tenant, patient, at(p2, 0, 0, 30), [(x, DONE)])
    await visit(tenant, patient, at(p2 + timedelta(days=10), 15), [(x, DONE)], caller=partnership)
    await visit(tenant, patient, at(p3 - timedelta(days=1), 23, 59, 59), [(x, DONE), (y, DONE)])
    # Period 3: X five times (more than contracted), Y only just after the period ends.
    for day in range(1, 6):
        await visit(tenant, patient, at(p3 + timedelta(days=day)), [(x, DONE)])
    await visit(tenant, patient, at(p4, 0, 0, 10), [(y, DONE)])

    before, seq = await stored(tenant), await mark(tenant.id)
    counted = len(sql_counter.statements)
    reply = ok(await tenant.call("finance", DELIVERY, id=contract_id, **{"from": p1.isoformat(),
                                                                        "to": (p4 - timedelta(days=1)).isoformat()}))
    cost = len(sql_counter.statements) - counted
    found = reply["contractDelivery"]
    assert found["contractId"] == contract_id and found["today"] == today().isoformat()
    periods = found["periods"]
    assert [(p["start"], p["end"], p["versionNumber"], p["closed"]) for p in periods] == [
        (p1.isoformat(), (p2 - timedelta(days=1)).isoformat(), 1, True),
        (p2.isoformat(), (p3 - timedelta(days=1)).isoformat(), 1, True),
        (p3.isoformat(), (p4 - timedelta(days=1)).isoformat(), 1, True)]
    assert [items_of(p) for p in periods] == [
        [(x, 4, 2, 2), (y, 2, 2, 0)],
        [(x, 4, 3, 1), (y, 2, 1, 1)],
        [(x, 4, 5, 0), (y, 2, 0, 2)]]
    assert [(p["contracted"], p["delivered"], p["missed"]) for p in periods] == [(6, 4, 2), (6, 4, 2), (6, 4, 2)]
    assert [p["shortfall"] for p in periods] == [
        [{"code": x, "missed": 2}], [{"code": x, "missed": 1}, {"code": y, "missed": 1}], [{"code": y, "missed": 2}]]
    assert [(i["position"], i["deliveredByPartner"]) for i in periods[0]["items"]] == [(1, False), (2, True)]

    # The whole term so far: the period running today is listed, not closed (Y's visit counts there).
    whole = ok(await tenant.call("admin", DELIVERY, id=contract_id))["contractDelivery"]["periods"]
    assert [p["start"] for p in whole] == [d.isoformat() for d in (p1, p2, p3, p4)]
    assert whole[:3] == periods and whole[3]["closed"] is False
    assert items_of(whole[3]) == [(x, 4, 0, 4), (y, 2, 1, 1)]
    # A narrower range: the periods overlapping it.
    middle = ok(await tenant.call("admin", DELIVERY, id=contract_id, **{"from": (p2 + timedelta(days=3)).isoformat(),
                                                                       "to": (p2 + timedelta(days=4)).isoformat()}))
    assert [p["start"] for p in middle["contractDelivery"]["periods"]] == [p2.isoformat()]

    # A read of the contract on the patient's trail, nothing else written, no refusal.
    assert await stored(tenant) == before and await denials_since(tenant.id, seq) == []
    [read] = await tenant.audit_events(resource_type="contract", action="read", actor_id=tenant.staff_ids["finance"],
                                       resource_id=uuid.UUID(contract_id))
    assert read.patient_id == patient and "delivery" in read.fields_read and read.outcome == "allowed"

    # The cost does not grow with the periods, items or visits: a one-item contract in its first period costs the same.
    single_patient = await make_patient(tenant)
    small = await contract(tenant, single_patient, [item_input(await make_item(tenant), quantity=1)], p4,
                           add_months(p4, 12) - timedelta(days=1))
    counted = len(sql_counter.statements)
    assert len(ok(await tenant.call("finance", DELIVERY, id=small))["contractDelivery"]["periods"]) == 1
    assert len(sql_counter.statements) - counted == cost


async def test_the_version_in_force_at_a_periods_start_decides_its_items(tenant: Tenant) -> None:
    """An amendment taking effect today (a period's first day) lists its items from that period on."""
    now = await a_whole_local_day()  # the API refuses an amendment effective before its today
    months = next(k for k in range(1, 13) if add_months(add_months(now, -k), k) == now)
    start = add_months(now, -months)
    patient = await make_patient(tenant)
    x_item, w_item = await make_item(tenant), await make_item(tenant)
    x, w = await code_of(tenant, x_item), await code_of(tenant, w_item)
    contract_id = await contract(tenant, patient, [item_input(x_item, quantity=4)], start,
                                 add_months(start, 12) - timedelta(days=1))
    version = ok(await tenant.call("admin", VERSION, id=contract_id))["contract"]["version"]
    ok(await tenant.call("finance", AMEND, id=contract_id, v=version, input={
        "effectiveOn": now.isoformat(), "changeSummary": "One visit a month and a new service",
        "items": [item_input(x_item, quantity=1), item_input(w_item, quantity=2)]}))
    await signed(tenant, contract_id, number=2)
    await visit(tenant, patient, at(now - timedelta(days=1), 12), [(x, "DONE")])
    await visit(tenant, patient, at(now, 0, 0, 1), [(x, "DONE"), (w, "DONE")])

    periods = ok(await tenant.call("admin", DELIVERY, id=contract_id))["contractDelivery"]["periods"]
    assert len(periods) == months + 1
    assert [p["versionNumber"] for p in periods] == [1] * months + [2]
    assert periods[-1]["start"] == now.isoformat() and periods[-1]["closed"] is False
    assert periods[-2]["end"] == (now - timedelta(days=1)).isoformat() and periods[-2]["closed"] is True
    assert items_of(periods[-2]) == [(x, 4, 1, 3)]
    assert items_of(periods[-1]) == [(x, 1, 1, 0), (w, 2, 1, 1)]
    assert periods[-1]["shortfall"] == [{"code": w, "missed": 1}]
    assert today() == now, "the test crossed the institution's midnight: a_whole_local_day's margin is short"


async def test_a_patient_reads_their_own_contracts_delivery_and_no_one_elses(tenant: Tenant) -> None:
    me = await open_account(tenant)
    item = await make_item(tenant)
    code = await code_of(tenant, item)
    start = first_of_month(-1)
    mine = await contract(tenant, me.patient_id, [item_input(item, quantity=2)], start,
                          add_months(start, 12) - timedelta(days=1))
    theirs = await contract(tenant, await make_patient(tenant), [item_input(item)], start,
                            add_months(start, 12) - timedelta(days=1))
    await visit(tenant, me.patient_id, at(start + timedelta(days=3)), [(code, "DONE")])
    reply = ok(await me.call(DELIVERY, id=mine, to=(first_of_month(0) - timedelta(days=1)).isoformat()))
    [period] = reply["contractDelivery"]["periods"]
    assert items_of(period) == [(code, 2, 1, 1)]
    events = await tenant.audit_events(resource_type="contract", action="read", resource_id=uuid.UUID(mine))
    assert any(e.actor_kind == "patient" and e.patient_id == me.patient_id and "delivery" in e.fields_read
               for e in events)

    seq = await mark(tenant.id)
    other = await me.call(DELIVERY, id=theirs)
    assert other.codes == ["NOT_FOUND"] and other.data is None
    assert await denials_since(tenant.id, seq) == [("read", "contract", "not_found", uuid.UUID(theirs), None)]


async def test_delivery_denied_twins_leak_nothing_and_are_on_the_trail(tenant: Tenant, other_tenant: Tenant,
                                                                       services: Services) -> None:
    item = await make_item(tenant)
    patient = await make_patient(tenant)
    start = first_of_month(-1)
    contract_id = await contract(tenant, patient, [item_input(item)], start, add_months(start, 12) - timedelta(days=1))
    allowed = [ok(await tenant.call(role, DELIVERY, id=contract_id)) for role in ("admin", "finance",
                                                                                  "department_head")]
    assert allowed[0] == allowed[1] == allowed[2]
    head_of_b = await department_head_of_b(tenant, services)
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    before = await stored(tenant)
    for role in ("nurse", "doctor", "front_desk", "support_agent", "compliance_officer"):
        seq = await mark(tenant.id)
        reply = await tenant.call(role, DELIVERY, id=contract_id)
        assert reply.codes == ["FORBIDDEN"] and reply.data is None, role
        assert await denials_since(tenant.id, seq) == [("read", "contract", "forbidden", uuid.UUID(contract_id),
                                                        None)], role
    seq = await mark(tenant.id)
    reply = await partnership.call(DELIVERY, id=contract_id)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "contract", "forbidden")]
    seq = await mark(tenant.id)
    reply = await gql(tenant.client, DELIVERY, {"id": contract_id}, head_of_b)
    assert reply.codes == ["NOT_FOUND"] and reply.data is None
    assert await denials_since(tenant.id, seq) == [("read", "contract", "not_found", uuid.UUID(contract_id), None)]
    seq = await mark(other_tenant.id)
    reply = await other_tenant.call("admin", DELIVERY, id=contract_id)
    assert reply.codes == ["NOT_FOUND"] and reply.data is None
    assert await denials_since(other_tenant.id, seq) == [("read", "contract", "not_found", uuid.UUID(contract_id),
                                                          None)]
    assert await stored(tenant) == before
    # No read of the contract was recorded for any of them.
    readers = {e.actor_id for e in await tenant.audit_events(resource_type="contract", action="read",
                                                             resource_id=uuid.UUID(contract_id), outcome="allowed")}
    assert readers == {tenant.staff_ids[r] for r in ("admin", "finance", "department_head")}

    bad = await tenant.call("admin", DELIVERY, id=contract_id, **{"from": "2027-02-01", "to": "2027-01-31"})
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "to"


# -- the department and institution report ---------------------------------------------------------------------


def month(offset: int) -> str:
    return first_of_month(offset).strftime("%Y-%m")


def money(amount: str, currency: str = "CNY") -> dict[str, str]:
    return {"amount": amount, "currency": currency, "minorUnits": amount.replace(".", "")}


async def test_the_report_month_by_month_exact(tenant: Tenant, services: Services, sql_counter: SqlCounter) -> None:
    f = first_of_month
    x_item = await make_item(tenant, unit_price="120.00")
    y_item = await make_item(tenant, unit_price="50.00")
    z_item = await make_item(tenant, unit_price="200.00")
    u_item = await make_item(tenant, unit_price="30.00", currency="USD")
    x, y = await code_of(tenant, x_item), await code_of(tenant, y_item)

    def year_from(day: date) -> date:
        return add_months(day, 12) - timedelta(days=1)

    async def patient(department: str = "A") -> uuid.UUID:
        return await make_patient(tenant, departmentId=str(tenant.departments[department].id))

    a_patient = await patient()
    # A: monthly, 4 x 120.00 + 2 x 50.00 = 580.00 a month.
    await contract(tenant, a_patient, [item_input(x_item, quantity=4), item_input(y_item, quantity=2)], f(-2),
                   year_from(f(-2)))
    # B: quarterly, 3 x 200.00 = 600.00 in the first month of each quarter of the term.
    await contract(tenant, await patient(), [item_input(z_item, quantity=3)], f(-2), year_from(f(-2)),
                   billingPeriod="QUARTERLY")
    # C: in dollars, monthly 30.00 from last month.
    await contract(tenant, await patient(), [item_input(u_item, quantity=1)], f(-1), year_from(f(-1)), currency="USD")
    # D: monthly 120.00, terminated to end on the 15th of next month.
    d_id = await contract(tenant, await patient(), [item_input(x_item, quantity=1)], f(-2), year_from(f(-2)))
    version = ok(await tenant.call("admin", VERSION, id=d_id))["contract"]["version"]
    ok(await tenant.call("finance", TERMINATE, id=d_id, v=version, on=(f(1) + timedelta(days=14)).isoformat()))
    # E: monthly 240.00, its term ended two months ago: the sweep expires it.
    await contract(tenant, await patient(), [item_input(x_item, quantity=2)], f(-4), f(-1) - timedelta(days=1))
    # F: monthly 50.00 for six months up to last month, renewing itself: the sweep opens G from this month.
    await contract(tenant, await patient(), [item_input(y_item, quantity=1)], f(-6), f(0) - timedelta(days=1),
                   autoRenew=True)
    # H: another department; I: a draft never signed.
    await contract(tenant, await patient("B"), [item_input(x_item, quantity=1)], f(-2), year_from(f(-2)))
    await contract(tenant, await patient(), [item_input(x_item, quantity=9)], f(-2), year_from(f(-2)), activate=False)
    await contracts.expire_due(services.keyring)
    statuses = sorted(s for s in await Contract.filter(institution_id=tenant.id).values_list("status", flat=True))
    assert statuses == ["active"] * 5 + ["draft", "expired", "renewed", "terminated"]

    # A's deliveries: two months ago X 3, Y 2; last month X 5 (one more than contracted), Y 1.
    for day, codes in ((3, [x, y]), (4, [x, y]), (5, [x])):
        await visit(tenant, a_patient, at(f(-2) + timedelta(days=day)), [(c, "DONE") for c in codes])
    for day in range(1, 6):
        await visit(tenant, a_patient, at(f(-1) + timedelta(days=day)), [(x, "DONE")] + ([(y, "DONE")] if day == 1
                                                                                         else []))

    span = {"from": month(-2), "to": month(1)}
    counted = len(sql_counter.statements)
    department = ok(await tenant.call("finance", REPORT, dep=str(tenant.departments["A"].id), **span))["contractReport"]
    cost = len(sql_counter.statements) - counted
    assert department["departmentId"] == str(tenant.departments["A"].id)
    rows = department["months"]
    assert [r["month"] for r in rows] == [month(k) for k in (-2, -1, 0, 1)]
    figures = ("active", "expiring", "new", "renewed", "terminated", "expired")
    assert [[r[name] for r in rows] for name in figures] == [
        [5, 5, 5, 4], [1, 1, 1, 0], [0, 0, 6, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
    assert [r["revenue"] for r in rows] == [
        [money("1590.00")], [money("750.00"), money("30.00", "USD")], [money("750.00"), money("30.00", "USD")],
        [money("1350.00"), money("30.00", "USD")]]
    assert [(r["contractedUnits"], r["deliveredUnits"], r["missedUnits"], r["deliveryRate"]) for r in rows] == [
        (10, 5, 5, 0.5), (9, 5, 4, 5 / 9), (0, 0, 0, None), (0, 0, 0, None)]

    # The institution: department B's contract too.
    institution = ok(await tenant.call("admin", REPORT, **span))["contractReport"]
    assert institution["departmentId"] is None
    rows = institution["months"]
    assert [r["active"] for r in rows] == [6, 6, 6, 5] and [r["new"] for r in rows] == [0, 0, 7, 0]
    assert [r["revenue"][0] for r in rows] == [money("1710.00"), money("870.00"), money("870.00"), money("1470.00")]
    assert [(r["contractedUnits"], r["deliveredUnits"], r["deliveryRate"]) for r in rows[:2]] == [(11, 5, 5 / 11),
                                                                                                  (10, 5, 0.5)]

    # The department head: their department, every figure but revenue (commercial terms), refused at its path.
    seq = await mark(tenant.id)
    head = await tenant.call("department_head", REPORT, dep=str(tenant.departments["A"].id), **span)
    assert [(e["path"], e["extensions"]["code"]) for e in head.errors] == [
        (["contractReport", "months", n, "revenue"], "FORBIDDEN") for n in range(4)]
    assert [r["revenue"] for r in head.data["contractReport"]["months"]] == [None] * 4
    assert [{k: v for k, v in r.items() if k != "revenue"} for r in head.data["contractReport"]["months"]] == [
        {k: v for k, v in r.items() if k != "revenue"} for r in department["months"]]
    events = await AuditEvent.filter(institution_id=tenant.id, seq__gt=seq, resource_type="contract_report")
    assert sorted((e.outcome, e.field_classes, e.reason) for e in events) == [
        ("allowed", "aggregate", ""), ("denied", "terms", "forbidden_field")]
    assert all(e.patient_id is None and e.resource_id == tenant.departments["A"].id for e in events)

    # A fixed number of statements: department B (one contract) costs what department A (eight) did.
    counted = len(sql_counter.statements)
    ok(await tenant.call("finance", REPORT, dep=str(tenant.departments["B"].id), **span))
    assert len(sql_counter.statements) - counted == cost


async def test_report_denied_twins_and_bad_input(tenant: Tenant, other_tenant: Tenant, services: Services) -> None:
    patient = await make_patient(tenant)
    await contract(tenant, patient, [item_input(await make_item(tenant))], first_of_month(-1),
                   add_months(first_of_month(-1), 12) - timedelta(days=1))
    span = {"from": month(-1), "to": month(0)}
    dep_a, dep_b = str(tenant.departments["A"].id), str(tenant.departments["B"].id)
    before = await stored(tenant)
    me = await open_account(tenant)
    for role in ("nurse", "doctor", "front_desk", "support_agent", "compliance_officer"):
        seq = await mark(tenant.id)
        reply = await tenant.call(role, REPORT, dep=dep_a, **span)
        assert reply.codes == ["FORBIDDEN"] and reply.data is None, role
        assert await denials_since(tenant.id, seq) == [("read", "contract_report", "forbidden",
                                                        tenant.departments["A"].id, None)], role
    seq = await mark(tenant.id)
    reply = await me.call(REPORT, dep=dep_a, **span)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "contract_report", "forbidden")]

    # A department head: another department is refused (and recorded), none named is bad input.
    seq = await mark(tenant.id)
    reply = await tenant.call("department_head", REPORT, dep=dep_b, **span)
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert reply.errors[0]["extensions"]["field"] == "departmentId"
    assert await denials_since(tenant.id, seq) == [("read", "contract_report", "other_department",
                                                    tenant.departments["B"].id, None)]
    reply = await tenant.call("department_head", REPORT, **span)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "departmentId"
    head_of_b = await department_head_of_b(tenant, services)
    mine = await gql(tenant.client, REPORT, {"dep": dep_b, **span}, head_of_b)
    assert [e["path"][-1] for e in mine.errors] == ["revenue", "revenue"]  # commercial terms, not theirs
    assert [r["active"] for r in mine.data["contractReport"]["months"]] == [0, 0]

    # Another institution's admin: our department is NOT_FOUND, recorded on their trail.
    seq = await mark(other_tenant.id)
    reply = await other_tenant.call("admin", REPORT, dep=dep_a, **span)
    assert reply.codes == ["NOT_FOUND"] and reply.data is None
    assert await denials_since(other_tenant.id, seq) == [("read", "contract_report", "not_found",
                                                          tenant.departments["A"].id, None)]
    assert await stored(tenant) == before

    for given, field in ((("2026-13", "2026-12"), "from"), (("2026-1", "2026-12"), "from"),
                         (("2026-05", "2026-04"), "to"), (("2023-12", "2026-12"), "to"), (("2026-01", "x"), "to")):
        reply = await tenant.call("admin", REPORT, **{"from": given[0], "to": given[1]})
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field, given
    assert len(ok(await tenant.call("admin", REPORT, **{"from": "2024-01", "to": "2026-12"}))["contractReport"][
        "months"]) == 36
