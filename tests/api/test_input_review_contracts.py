"""A review of the relationship domains' mutations against careless or hostile input (December 2026): what it
found in contracts. A term is recorded after it ended (paper history: the report tests build their months so), and
one that renewed itself automatically renews into the term in force today, never into terms already over."""

from __future__ import annotations

from datetime import date, timedelta

from models import AuditEvent, Contract
from resolvers import contract as contracts
from resolvers.context import Services
from resolvers.contract_report import add_months
from tests.api.test_contract_report import contract
from tests.contracts import item_input, make_item, today
from tests.factories import Tenant, make_patient


async def terms(tenant: Tenant) -> list[tuple[date, date, str]]:
    return [(start, end, status) for start, end, status in await Contract.filter(institution_id=tenant.id).order_by(
        "start_on").values_list("start_on", "end_on", "status")]


async def test_a_past_term_renewing_itself_expires_rather_than_open_terms_already_over(tenant: Tenant,
                                                                                       services: Services) -> None:
    """Found in review: a term of 2000 with automatic renewal, recorded (and signed) today, made the sweep open a
    next term of 2001 signed "by automatic renewal", then 2002 on its next run, one a run up to today: terms nobody
    agreed to, each counted in the contract report's months (a term of two days would have made thousands)."""
    item = await make_item(tenant)
    await contract(tenant, await make_patient(tenant), [item_input(item)], date(2000, 1, 1), date(2000, 12, 31),
                   autoRenew=True)
    for _ in range(3):
        await contracts.expire_due(services.keyring)

    assert await terms(tenant) == [(date(2000, 1, 1), date(2000, 12, 31), "expired")]
    assert not await AuditEvent.filter(institution_id=tenant.id, actor_kind="system", action="create",
                                       resource_type="contract").exists()


async def test_a_term_renewing_itself_into_today_renews_once(tenant: Tenant, services: Services) -> None:
    """The twin: a half year recorded after it ended last month, renewing itself, opens the term in force today."""
    item = await make_item(tenant)
    start = add_months(today().replace(day=1), -6)
    last_month_end = today().replace(day=1) - timedelta(days=1)
    await contract(tenant, await make_patient(tenant), [item_input(item)], start, last_month_end, autoRenew=True)
    for _ in range(3):
        await contracts.expire_due(services.keyring)

    next_start = today().replace(day=1)
    assert await terms(tenant) == [(start, last_month_end, "renewed"),
                                   (next_start, add_months(next_start, 6) - timedelta(days=1), "active")]
