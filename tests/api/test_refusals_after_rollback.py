"""A refusal found inside a write's transaction (``access.Refusal``) is on the trail once that transaction has rolled
back, and the client is answered the error it carries: recorded inside the transaction, the denial would roll back
with the write (``access.deny`` refuses to be called there: INTERNAL_SERVER_ERROR); not recorded, the attempt would
be missing from the trail. Each wrapper that records it is tried here with a write made before the refusal, which must
not survive; the refusals of the resolvers that raise it are tested where their rules are (a full care team in
test_file_bounds.py, an archive while contracts run in test_file_lifecycle_contracts.py...)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from tortoise.transactions import in_transaction

from audit.events import Action, RequestMeta
from core.errors import BadUserInput, NotFound
from core.principal import Principal
from models import CareTeamMember
from resolvers import access
from resolvers.context import Context, Services
from resolvers.loaders import Loaders
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, events_since, mark

Wrapper = Callable[[Context, uuid.UUID], AbstractAsyncContextManager[object]]


@asynccontextmanager
async def plain(ctx: Context, patient_id: uuid.UUID) -> AsyncIterator[None]:
    """A plain transaction, wrapped as a resolver wraps one (``refusals_recorded`` outside it)."""
    async with access.refusals_recorded(ctx), in_transaction():
        yield


@asynccontextmanager
async def merge_checked(ctx: Context, patient_id: uuid.UUID) -> AsyncIterator[None]:
    """A transaction that locks the file itself, as a booking's does (``merge_refusal_recorded`` outside it)."""
    async with access.merge_refusal_recorded(ctx, Action.CREATE, patient_id), in_transaction():
        await access.lock_file(patient_id)
        yield


@asynccontextmanager
async def following(ctx: Context, patient_id: uuid.UUID) -> AsyncIterator[None]:
    """A write on a record a merge moves, its file held first (``following_survivor``)."""
    async with access.following_survivor(ctx, Action.CREATE, "care_team", patient_id) as hold, in_transaction():
        assert await hold(patient_id) is None  # not merged: the write stays on its file
        yield


WRAPPERS: dict[str, Wrapper] = {
    "file_transaction": lambda ctx, pid: access.file_transaction(ctx, pid, action=Action.CREATE),
    "merge_refusal_recorded": merge_checked,
    "refusals_recorded": plain,
    "following_survivor": following,
}


async def admin_context(tenant: Tenant, services: Services) -> Context:
    """The context of the admin's requests, to run a write's transaction as a resolver does."""
    principal = Principal(tenant.id, tenant.staff_ids["admin"], None, "", "admin", frozenset({"admin"}),
                          frozenset())
    return Context(services, RequestMeta(), principal, await services.keyring.get(tenant.id), Loaders(tenant.id))


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
async def test_a_refusal_inside_the_transaction_is_recorded_once_the_write_has_rolled_back(
        tenant: Tenant, services: Services, wrapper: str) -> None:
    ctx, pid, nurse = await admin_context(tenant, services), await make_patient(tenant), tenant.staff_ids["nurse"]
    seq = await mark(tenant.id)

    with pytest.raises(BadUserInput) as refused:
        async with WRAPPERS[wrapper](ctx, pid):
            # a write made before the refusal is found: the refusal must roll it back, and survive it
            await CareTeamMember.create(institution_id=tenant.id, patient_id=pid, staff_id=nurse)
            raise access.Refusal(BadUserInput("patientId: the team is full.", field="patientId", reason="item_count"),
                                 Action.CREATE, "care_team", nurse, pid)

    # the error carried, as it was made: code, message, field, reason
    assert type(refused.value) is BadUserInput
    assert (refused.value.message, refused.value.extensions) == (
        "patientId: the team is full.", {"code": "BAD_USER_INPUT", "field": "patientId", "reason": "item_count"})
    assert refused.value.__suppress_context__  # raised from None: the Refusal is no part of the answer
    assert not await CareTeamMember.exists(patient_id=pid)  # nothing written
    # on the trail once, DENIED, as the Refusal names it (reason: the error's)
    assert await denials_since(tenant.id, seq) == [("create", "care_team", "item_count", nurse, pid)]
    [event] = await events_since(tenant.id, seq)
    assert (event.outcome, event.actor_id) == ("denied", tenant.staff_ids["admin"])


async def test_a_refusal_records_its_own_reason_when_given_and_needs_one(tenant: Tenant, services: Services) -> None:
    """A NOT_FOUND carries no reason: the refusal names the one recorded (``Refusal.not_found``: ``not_found``, the
    record's id, no file, as a missing record is recorded); a refusal with none at all is a mistake in the code."""
    ctx, seq, missing = await admin_context(tenant, services), await mark(tenant.id), uuid.uuid4()

    with pytest.raises(NotFound) as refused:
        async with access.refusals_recorded(ctx), in_transaction():
            raise access.Refusal.not_found(Action.UPDATE, "improvement", missing, "itemId")

    assert refused.value.extensions == {"code": "NOT_FOUND", "field": "itemId"}
    assert await denials_since(tenant.id, seq) == [("update", "improvement", "not_found", missing, None)]
    with pytest.raises(ValueError, match="needs a reason"):
        access.Refusal(NotFound(), Action.UPDATE, "improvement", missing)


async def test_a_refusal_is_never_recorded_inside_the_transaction(tenant: Tenant, services: Services) -> None:
    """The recording wrapper opened inside the transaction would record the denial where its rollback erases it:
    ``deny`` refuses, and nothing reaches the trail or the tables."""
    ctx, pid, nurse = await admin_context(tenant, services), await make_patient(tenant), tenant.staff_ids["nurse"]
    seq = await mark(tenant.id)

    with pytest.raises(RuntimeError, match="before the write's transaction opens"):
        async with in_transaction(), access.refusals_recorded(ctx):
            await CareTeamMember.create(institution_id=tenant.id, patient_id=pid, staff_id=nurse)
            raise access.Refusal(BadUserInput("patientId: full.", field="patientId", reason="item_count"),
                                 Action.CREATE, "care_team", nurse, pid)

    assert not await CareTeamMember.exists(patient_id=pid)
    assert await events_since(tenant.id, seq) == []


async def test_a_write_that_is_not_the_principals_records_no_refusal(tenant: Tenant, services: Services) -> None:
    """A survey link's answer (``merge_refusal_recorded(recorded=False)``), followed in a browser signed in anywhere,
    has no trail of its own to record a refusal on: the error is answered, nothing recorded, the write rolled back
    (found in review: a Refusal was recorded there on the signed-in principal's institution)."""
    ctx, pid, nurse = await admin_context(tenant, services), await make_patient(tenant), tenant.staff_ids["nurse"]
    seq = await mark(tenant.id)

    with pytest.raises(BadUserInput) as refused:
        async with access.merge_refusal_recorded(ctx, Action.CREATE, pid, recorded=False), in_transaction():
            await access.lock_file(pid)
            await CareTeamMember.create(institution_id=tenant.id, patient_id=pid, staff_id=nurse)
            raise access.Refusal(BadUserInput("patientId: full.", field="patientId", reason="item_count"),
                                 Action.CREATE, "care_team", nurse, pid)

    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": "patientId", "reason": "item_count"}
    assert not await CareTeamMember.exists(patient_id=pid)
    assert await events_since(tenant.id, seq) == []
