"""Race: two renewals of one contract sent at once (a double click), 10 rounds: one renewal at a time holds, the
other answers CONFLICT renewal_exists (found in review on PostgreSQL: two drafts in 10 of 10 rounds)."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from models import Contract
from resolvers.context import Services
from tests.api.test_contract_renewal import RENEW
from tests.contracts import active_contract, item_input, make_item, today
from tests.factories import Tenant, make_patient

ROUNDS = 10


async def test_double_renewal(tenant: Tenant, services: Services) -> None:
    item = await make_item(tenant)
    bad = 0
    for _ in range(ROUNDS):
        made = await active_contract(tenant, services, patient_id=await make_patient(tenant), items=[item_input(item)])
        end = (today() + timedelta(days=366 + 180)).isoformat()
        replies = await asyncio.gather(*(tenant.call("admin", RENEW, id=made["id"], input={"endOn": end})
                                         for _ in range(2)))
        renewals = await Contract.filter(renewal_of_id=made["id"]).exclude(status="terminated").count()
        refused = [e["extensions"].get("reason") for r in replies for e in r.errors]
        if renewals != 1 or refused != ["renewal_exists"]:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"
