"""Contracts in tests: catalogue items with prices, a draft contract through the API, and moving it to active.

- ``make_item(tenant, unit_price="120.00", ...)``: a catalogue item with its price versions (see its docstring);
- ``draft(tenant, patient_id, items, ...)``: ``contractCreate`` by the front desk (or a role given), the reply's
  contract as a dict (``CONTRACT_FIELDS``), asserting no error;
- ``signed(tenant, contract_id)``: the open version sent and signed and the contract activated without the
  signature module (raw rows for the sending and the signing, then ``resolvers.contract.on_version_signed``, as
  the signature module calls it), for tests that need an ACTIVE contract;
- ``active_contract(tenant, ...)``: a patient, an item and an ACTIVE contract in one go.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audit.events import Actor, RequestMeta
from models import Contract, ContractVersion
from resolvers import contract as contracts
from resolvers.context import Context
from tests.factories import Response, Tenant, make_patient

_counter = itertools.count(1)

CONTRACT_FIELDS = """
  id number title status patientId departmentId guarantorContactId partnerId renewalOfId currency startOn endOn
  currentVersion version activatedAt endedAt statusReason
  versions { number status effectiveOn endOn billingPeriod noticeDays autoRenew changeSummary
             items { position serviceItemId code name quantity frequency deliveredByPartner } }
"""
CREATE = f"mutation($input: ContractCreateInput!) {{ contractCreate(input: $input) {{ {CONTRACT_FIELDS} }} }}"
GET = f"query($id: ID!) {{ contract(id: $id) {{ {CONTRACT_FIELDS} }} }}"


def today() -> date:
    """Today in the test institutions' zone (Asia/Shanghai unless a test changes it)."""
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()


ITEM_CREATE = """mutation($code: String!, $name: String!, $standard: String, $frequencies: [ServiceFrequency!]) {
  serviceItemCreate(code: $code, name: $name, standard: $standard, frequencies: $frequencies) { id } }"""
PRICE_ADD = """mutation($id: ID!, $price: MoneyInput!, $from: Date!) {
  serviceItemPriceAdd(itemId: $id, price: $price, effectiveFrom: $from) { id } }"""


async def make_item(tenant: Tenant, *, code: str | None = None, name: str | None = None, unit_price: str = "120.00",
                    currency: str = "CNY", effective_from: date = date(2000, 1, 1),
                    frequencies: tuple[str, ...] = ("weekly", "per_visit", "monthly"),
                    later_prices: tuple[tuple[date, str], ...] = ()) -> uuid.UUID:
    """A catalogue item (by finance, through the API) with a first price in force from ``effective_from`` and later
    price versions (``later_prices``: (effective_from, amount), in date order)."""
    n = next(_counter)
    made = await tenant.call("finance", ITEM_CREATE, code=code or f"SVC-{n}", name=name or f"Service {n}",
                             standard="Delivered by a registered nurse at home",
                             frequencies=[f.upper() for f in frequencies])
    assert not made.errors, made.errors
    item_id = made.data["serviceItemCreate"]["id"]
    for since, amount in ((effective_from, unit_price), *later_prices):
        priced = await tenant.call("finance", PRICE_ADD, id=item_id, price={"amount": amount, "currency": currency},
                                   **{"from": since.isoformat()})
        assert not priced.errors, priced.errors
    return uuid.UUID(item_id)


def item_input(item_id: uuid.UUID, quantity: int = 4, frequency: str = "WEEKLY", by_partner: bool = False
               ) -> dict[str, Any]:
    return {"serviceItemId": str(item_id), "quantity": quantity, "frequency": frequency,
            "deliveredByPartner": by_partner}


def draft_input(patient_id: uuid.UUID, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    start = today() + timedelta(days=1)
    return {"patientId": str(patient_id), "title": "Home care service agreement", "currency": "CNY",
            "startOn": start.isoformat(), "endOn": (start + timedelta(days=364)).isoformat(),
            "rightsDuties": "The institution delivers the services to the standard; the client pays monthly.",
            "items": items, **fields}


async def create(tenant: Tenant, role: str, data: dict[str, Any]) -> Response:
    return await tenant.call(role, CREATE, input=data)


async def draft(tenant: Tenant, patient_id: uuid.UUID, items: list[dict[str, Any]], role: str = "front_desk",
                **fields: Any) -> dict[str, Any]:
    reply = await create(tenant, role, draft_input(patient_id, items, **fields))
    assert not reply.errors, reply.errors
    return dict(reply.data["contractCreate"])


async def signed(tenant: Tenant, services: Any, contract_id: uuid.UUID | str) -> None:
    """Send and sign the contract's open version without the signature module, then let the contract module do
    what it does when a version's last signature lands (activation, amendment, renewal bookkeeping)."""
    contract = await Contract.get(id=contract_id)
    version = await ContractVersion.get(contract_id=contract.id, number=contract.current_version)
    ctx = Context(services=services, request=RequestMeta())
    ctx.keys = await services.keyring.get(tenant.id)
    now = datetime.now(UTC)
    await ContractVersion.filter(id=version.id).update(status="sent", sent_at=now, document_sha256="0" * 64)
    await contracts.on_version_sent(ctx, contract, version)
    await ContractVersion.filter(id=version.id).update(status="signed", signed_at=now)
    await contracts.on_version_signed(ctx, await Contract.get(id=contract.id),
                                      await ContractVersion.get(id=version.id), actor=Actor("system"))


async def active_contract(tenant: Tenant, services: Any, *, patient_id: uuid.UUID | None = None,
                          items: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A patient (department A, by the front desk), one weekly item at 120.00 CNY x 4 and an ACTIVE contract."""
    patient_id = patient_id or await make_patient(tenant)
    if items is None:
        items = [item_input(await make_item(tenant))]
    made = await draft(tenant, patient_id, items, **fields)
    await signed(tenant, services, made["id"])
    reply = await tenant.call("admin", GET, id=made["id"])
    assert not reply.errors, reply.errors
    return dict(reply.data["contract"])
