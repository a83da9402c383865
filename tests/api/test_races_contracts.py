"""Race: two renewals of one contract sent at once (a double click), 10 rounds: one renewal at a time holds, the
other answers CONFLICT renewal_exists (found in review on PostgreSQL: two drafts in 10 of 10 rounds)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from models import Contract
from resolvers.context import Services
from tests.api.test_contract_renewal import RENEW
from tests.conftest import BACKEND
from tests.contracts import active_contract, item_input, make_item, today
from tests.factories import Tenant, make_patient
from tests.locks import another_transaction, until_waiting

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


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("moved", [True, False])
async def test_a_renewal_waiting_while_the_term_is_moved_is_refused(tenant: Tenant, services: Services,
                                                                    moved: bool) -> None:
    """contractRenew read the term's end before its lock: an amendment signed meanwhile (here its effect, the end
    moved under the held lock) left the next term starting the day after the old end, overlapping the new one (found
    in review). The end is read again under the lock: CONFLICT stale, nothing written; an unmoved term renews."""
    item = await make_item(tenant)
    made = await active_contract(tenant, services, patient_id=await make_patient(tenant), items=[item_input(item)])
    end = (today() + timedelta(days=366 + 180)).isoformat()
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM contract WHERE id = $1 FOR UPDATE", uuid.UUID(made["id"]))
        renewing = asyncio.create_task(tenant.call("admin", RENEW, id=made["id"], input={"endOn": end}))
        await until_waiting([renewing])
        if moved:
            await other.execute("UPDATE contract SET end_on = end_on + 30 WHERE id = $1", uuid.UUID(made["id"]))
    reply = await asyncio.wait_for(renewing, 10)

    renewals = await Contract.filter(renewal_of_id=made["id"]).count()
    if moved:
        assert [(e["extensions"]["code"], e["extensions"].get("reason"), e["extensions"].get("field"))
                for e in reply.errors] == [("CONFLICT", "stale_version", "contractId")]
        assert renewals == 0
    else:
        assert reply.errors == [] and renewals == 1
