"""Race: two renewals of one contract sent at once (a double click), 10 rounds: one renewal at a time holds, the
other answers CONFLICT renewal_exists (found in review on PostgreSQL: two drafts in 10 of 10 rounds). And, on
PostgreSQL, writes waiting on a contract's row while it moves: a renewal while the term's end moves, a revocation
while the last signature lands."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from models import Contract, ContractVersion
from resolvers.context import Services
from tests.api.test_contract_renewal import RENEW
from tests.api.test_contract_signatures import send
from tests.api.test_contract_state_machine import TERMINATE
from tests.conftest import BACKEND
from tests.contracts import active_contract, draft, item_input, make_item, today
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


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("signed_meanwhile", [True, False])
async def test_a_revocation_waiting_while_the_last_signature_lands_is_refused(
        tenant: Tenant, signed_meanwhile: bool) -> None:
    """A SENT contract revoked (contractTerminate of a contract never in force) while its last signature lands (here
    its effect under the held contract row: the version SIGNED, the contract ACTIVE, its row version bumped, as
    ``on_version_signed`` does): the revocation is written over the row as read, so it answers CONFLICT
    stale_version and the contract stays ACTIVE; not signed meanwhile, it is REVOKED."""
    made = await draft(tenant, await make_patient(tenant), [item_input(await make_item(tenant))], role="finance")
    sent = await send(tenant, made)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM contract WHERE id = $1 FOR UPDATE", uuid.UUID(made["id"]))
        revoking = asyncio.create_task(tenant.call("admin", TERMINATE, id=made["id"], v=sent["version"]))
        await until_waiting([revoking])
        if signed_meanwhile:
            await other.execute("UPDATE contract_version SET status = 'signed', signed_at = now() "
                                "WHERE contract_id = $1", uuid.UUID(made["id"]))
            await other.execute("UPDATE contract SET status = 'active', activated_at = now(), version = version + 1 "
                                "WHERE id = $1", uuid.UUID(made["id"]))
    reply = await asyncio.wait_for(revoking, 10)

    row = await Contract.get(id=made["id"])
    statuses = set(await ContractVersion.filter(contract_id=row.id).values_list("status", flat=True))
    if signed_meanwhile:
        assert [(e["extensions"]["code"], e["extensions"].get("reason")) for e in reply.errors] == [
            ("CONFLICT", "stale_version")]
        assert (row.status, row.ended_at, statuses) == ("active", None, {"signed"})
    else:
        assert reply.errors == [] and (row.status, statuses) == ("revoked", {"withdrawn"})
