"""Concurrent requests' read records are committed together, each durable before its response."""

from __future__ import annotations

import asyncio

import pytest

from audit.events import Action, Actor, AuditRecord, Outcome
from audit.group_commit import GroupCommit
from audit.verify import verify_all
from models import AuditChainHead
from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient

READ = "query($id: ID!) { patient(id: $id) { fullName phone } }"


def _head_lookups(counter: SqlCounter) -> int:
    """Appends to a chain: the head's lock taken by the writer (SQLite) or by ``audit_append`` (PostgreSQL)."""
    return sum(('FROM "audit_chain_head"' in s and "SELECT" in s) or "audit_append(" in s for s in counter.statements)


async def test_concurrent_reads_share_audit_transactions(tenant: Tenant, sql_counter: SqlCounter) -> None:
    patients = [await make_patient(tenant, phone=f"1380000{n:04d}") for n in range(8)]
    before = await tenant.audit_count()
    sql_counter.statements.clear()

    replies = await asyncio.gather(*(tenant.call("front_desk", READ, id=str(pid)) for pid in patients))

    assert all(not reply.errors for reply in replies)
    reads = await tenant.audit_events(action="read", resource_type="patient", seq__gt=before)
    assert sorted(str(e.patient_id) for e in reads) == sorted(str(pid) for pid in patients)
    assert 1 <= _head_lookups(sql_counter) < len(patients)  # fewer chain appends than requests
    (report,) = await verify_all(tenant.id)
    assert report.ok


def _record(tenant: Tenant, resource_type: str) -> AuditRecord:
    return AuditRecord(tenant.id, Actor("system"), Action.READ, resource_type, Outcome.ALLOWED)


async def test_a_failing_record_fails_only_its_own_request(tenant: Tenant) -> None:
    commit = GroupCommit()
    head = await AuditChainHead.get(institution_id=tenant.id)
    good, bad, also_good = [_record(tenant, "patient")], [_record(tenant, "x" * 500)], [_record(tenant, "patient")]

    results = await asyncio.gather(commit.append(good), commit.append(bad), commit.append(also_good),
                                   return_exceptions=True)  # "x" * 500: too long for its column

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception)
    assert (await AuditChainHead.get(institution_id=tenant.id)).last_seq == head.last_seq + 2
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_nothing_to_write_writes_nothing(tenant: Tenant) -> None:
    before = await tenant.audit_count()
    await GroupCommit().append([])
    assert await tenant.audit_count() == before


@pytest.mark.parametrize("requests", [1, 3])
async def test_every_waiter_returns_after_its_records_are_durable(tenant: Tenant, requests: int) -> None:
    commit, before = GroupCommit(), await tenant.audit_count()
    await asyncio.gather(*(commit.append([_record(tenant, "patient")]) for _ in range(requests)))
    assert await tenant.audit_count() == before + requests
