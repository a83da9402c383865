"""An audit append tried again writes nothing twice and loses nothing (both databases).

An append may fail after the database committed it (on PostgreSQL a connection lost before the answer was read:
tests/api/test_lost_connections.py drops that answer), and the group commit then writes a failed batch again, one
request at a time. Each event's id is its record's, given once; the writer skips an event already on the chain if
it is the same event, and refuses another under a taken id as the primary key always did."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from tortoise.exceptions import IntegrityError

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.group_commit import GroupCommit
from audit.verify import verify_all
from models import AuditChainHead, AuditEvent, AuditPatientIndex
from resolvers.context import Services
from tests.audit.test_inbox import head_held, require_postgres, waiting
from tests.factories import Tenant


def read(tenant: Tenant, patient: uuid.UUID | None = None) -> AuditRecord:
    return AuditRecord(tenant.id, Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                       resource_id=patient, patient_id=patient, field_classes=frozenset({"identity"}))


async def trail(tenant: Tenant) -> list[tuple[int, uuid.UUID]]:
    return [(event.seq, event.id) for event in await tenant.audit_events()]


async def chain_verifies(tenant: Tenant, services: Services) -> bool:
    return all(report.ok for report in await verify_all(tenant.id, mac_key=services.master_key.audit_mac_key))


async def test_an_append_tried_again_writes_each_event_once(tenant: Tenant, services: Services) -> None:
    patient = uuid.uuid4()
    records = [read(tenant, patient), read(tenant)]
    before = await trail(tenant)

    await writer.append(records)
    await writer.append(records)  # as after a failure the database had committed

    after = await trail(tenant)
    assert [event_id for _, event_id in after[len(before):]] == [record.id for record in records]
    assert [seq for seq, _ in after] == list(range(1, len(after) + 1))
    assert await AuditPatientIndex.filter(institution_id=tenant.id, patient_id=patient).count() == 1
    assert await chain_verifies(tenant, services)


async def test_an_event_tried_again_after_later_ones_is_skipped_and_the_new_one_linked(
        tenant: Tenant, services: Services) -> None:
    first, later, new = read(tenant), read(tenant), read(tenant)
    await writer.append([first])
    await writer.append([later])
    head = (await AuditChainHead.get(institution_id=tenant.id)).last_seq

    await writer.append([first, new])

    assert (await trail(tenant))[-3:] == [(head - 1, first.id), (head, later.id), (head + 1, new.id)]
    assert await chain_verifies(tenant, services)


async def test_a_record_twice_in_one_append_is_one_event(tenant: Tenant, services: Services) -> None:
    record, before = read(tenant), await tenant.audit_count()
    await writer.append([record, record])
    await GroupCommit().append([record])
    assert await tenant.audit_count() == before + 1
    assert await chain_verifies(tenant, services)


async def test_two_requests_waiting_with_the_same_record_write_it_once(tenant: Tenant, services: Services) -> None:
    commit, shared, own = GroupCommit(), read(tenant), read(tenant)
    before = await tenant.audit_count()
    await asyncio.gather(commit.append([shared]), commit.append([shared, own]))
    assert [event_id for _, event_id in (await trail(tenant))[before:]] == [shared.id, own.id]
    assert await chain_verifies(tenant, services)


async def test_a_record_made_from_another_is_another_event(tenant: Tenant) -> None:
    """``dataclasses.replace`` (a refusal recorded with its reason, a revocation) makes a new event, not a retry."""
    record = read(tenant)
    again = dataclasses.replace(record, reason="revoked")
    before = await tenant.audit_count()
    await writer.append([record])
    await writer.append([again])
    assert again.id != record.id and await tenant.audit_count() == before + 2


async def test_another_event_under_a_taken_id_is_refused_and_the_chain_unchanged(
        tenant: Tenant, services: Services) -> None:
    """Only the same event is skipped: one that says something else under a taken id is refused, as the id (the
    primary key) always refused it."""
    record = read(tenant)
    await writer.append([record])
    before = await trail(tenant)
    other = dataclasses.replace(record, action=Action.UPDATE)
    object.__setattr__(other, "id", record.id)  # the same id on another event, as no writer makes it

    with pytest.raises(IntegrityError):
        await writer.append([other])

    assert await trail(tenant) == before
    assert (await AuditEvent.get(id=record.id)).action == "read"
    assert await chain_verifies(tenant, services)


@pytest.mark.parametrize("again", ["busy", "free"])
async def test_an_event_posted_to_the_inbox_and_tried_again_is_linked_once(
        tenant: Tenant, services: Services, database: str, again: str) -> None:
    """PostgreSQL: the first attempt found the chain head busy and posted its events to the inbox; tried again with
    the head still busy it posts them a second time (the second copy is skipped when the inbox is sealed), with the
    head free it seals the first copy and skips its own."""
    require_postgres()
    records, before = [read(tenant, uuid.uuid4()), read(tenant)], await tenant.audit_count()
    async with head_held(database, tenant.id):
        await writer.append(records)
        if again == "busy":
            await writer.append(records)
            assert await waiting(tenant.id) == 4
    if again == "free":
        await writer.append(records)

    assert [event_id for _, event_id in (await trail(tenant))[before:]] == [record.id for record in records]
    assert await waiting(tenant.id) == 0
    assert await chain_verifies(tenant, services)
