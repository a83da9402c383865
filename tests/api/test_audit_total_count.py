"""``auditEvents { totalCount }`` without a filter: the trail's ``count(*)``, read off the chain head and the newest
archive anchor (``audit.archive.events_held``) instead of counted row by row, which took seconds on a trail of
millions for every portal that shows "N events" (docs/compliance.md, bench/README.md). Checked through the API
against ``count(*)`` after appends, after archive runs, while an archive run is under way, with events waiting in
PostgreSQL's inbox and a link not yet committed; a filter still counts its rows, and the whole trail's count no
longer reads the trail (its statement, and on PostgreSQL its plan)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from audit import archive, checkpoint, writer
from audit.events import Action, Actor, AuditRecord, Outcome
from models import AuditArchive, AuditEvent, Institution
from resolvers import institution as institutions
from resolvers.context import Services
from tests.audit.test_chain import connection, is_postgres
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, make_patient, open_session

WHOLE = "query { auditEvents(first: 1) { totalCount } }"
# The whole trail twice in one request: as the head says, and as a filter every event matches counts it.
BOTH = """query($since: DateTime!) {
  whole: auditEvents(first: 1) { totalCount }
  matched: auditEvents(first: 1, filter: {from: $since}) { totalCount }
}"""
FILTERED = "query($actor: ID) { auditEvents(first: 1, filter: {actor: $actor}) { totalCount } }"
EVER = "2000-01-01T00:00:00+00:00"
LONG_AGO = timedelta(days=8 * 365)  # past the default retention of 72 months
COUNTS_THE_TRAIL = re.compile(r'\bcount\(.*\bfrom "?audit_event"?\s', re.IGNORECASE | re.DOTALL)


def read(institution_id: uuid.UUID, when: datetime) -> AuditRecord:
    return AuditRecord(institution_id, Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                       patient_id=uuid.uuid4(), fields_read=frozenset({"phone"}), occurred_at=when)


async def rows_held(tenant: Tenant) -> int:
    """``count(*)`` of the institution's trail, once waiting events are sealed, as the service's readers seal."""
    return await tenant.audit_count()


async def totals(tenant: Tenant) -> tuple[int, int]:
    """The whole trail's totalCount, and that of a filter every event matches (``count(*)``), in one request."""
    reply = await tenant.call("compliance_officer", BOTH, since=EVER)
    assert reply.errors == [], reply.errors
    return reply.data["whole"]["totalCount"], reply.data["matched"]["totalCount"]


async def assert_counted_exactly(tenant: Tenant) -> int:
    """The totalCount is ``count(*)`` of the trail as the request found it (its own read is appended after it)."""
    held = await rows_held(tenant)
    assert await totals(tenant) == (held, held)
    return held


async def old_trail(client: httpx.AsyncClient, services: Services, stretches: Sequence[int]) -> Tenant:
    """An institution whose chain begins with ``stretches`` of events past their retention, a month apart, each
    ended by a signed checkpoint (what an archive run may take), then a compliance officer signed in."""
    institution = await Institution.create(name=f"Archived Clinic {uuid.uuid4().hex[:6]}", kind="clinic")
    await services.keyring.create(institution.id)
    for number, size in enumerate(stretches):
        start = datetime.now(UTC) - LONG_AGO + timedelta(days=30 * number)
        await writer.append([read(institution.id, start + timedelta(seconds=n)) for n in range(size)])
        assert await checkpoint.take(services.master_key.checkpoint_key, institution.id) is not None
    officer = await institutions.create_account(
        services, institution, email=f"officer.{uuid.uuid4().hex[:8]}@careloop.test", name="Officer",
        password=PASSWORD, roles=["compliance_officer"])
    return Tenant(client, institution, {}, staff_ids={"compliance_officer": officer.id},
                  tokens={"compliance_officer": await open_session(services, officer)})


async def archive_run(services: Services, tenant: Tenant, output: Path, before: datetime | None = None) -> int:
    """An operator's archive run (``careloop audit archive``): how many events it took out of the database."""
    anchor = await archive.archive(tenant.id, output, services.master_key.checkpoint_key.public_key(), before)
    assert anchor is not None
    return int(anchor.events)


# -- the same number as count(*) ---------------------------------------------------------------------------------------


async def test_the_whole_trail_counts_as_count_star_after_appends(tenant: Tenant) -> None:
    first = await assert_counted_exactly(tenant)
    for _ in range(3):
        await make_patient(tenant)
    assert await assert_counted_exactly(tenant) > first
    # the trail grows by each read of it, and is counted exactly each time
    for _ in range(2):
        await assert_counted_exactly(tenant)


async def test_a_filter_still_counts_its_rows(tenant: Tenant, sql_counter: SqlCounter) -> None:
    await make_patient(tenant)
    nurse_reads = await tenant.call("nurse", "query { patients(first: 5) { nodes { id } } }")
    assert nurse_reads.errors == []
    start = len(sql_counter.statements)
    reply = await tenant.call("compliance_officer", FILTERED, actor=str(tenant.staff_ids["front_desk"]))
    assert reply.errors == []
    assert reply.data["auditEvents"]["totalCount"] == len(
        await tenant.audit_events(actor_id=tenant.staff_ids["front_desk"])) > 0
    assert [s for s in sql_counter.statements[start:] if COUNTS_THE_TRAIL.search(s)], "a filter counts its rows"


async def test_the_whole_trail_is_counted_without_reading_it(tenant: Tenant, sql_counter: SqlCounter) -> None:
    """The statement shape: no COUNT over audit_event; on PostgreSQL the count's plan touches only the chain head
    and the archive anchors, whatever the trail's length."""
    await make_patient(tenant)
    start = len(sql_counter.statements)
    reply = await tenant.call("compliance_officer", WHOLE)
    assert reply.errors == [] and reply.data["auditEvents"]["totalCount"] > 0
    sent = sql_counter.statements[start:]
    assert not [s for s in sent if COUNTS_THE_TRAIL.search(s)], sent
    [held] = [s for s in sent if "audit_chain_head" in s and "audit_archive" in s]
    if is_postgres():
        sql = held.split(": [", 1)[0]  # the logged statement, without its values: the institution's id, each one
        values = [tenant.id] * len(set(re.findall(r"\$\d+", sql)))
        [(plan,)] = [tuple(row.values()) for row in await connection().execute_query_dict(
            f"EXPLAIN (FORMAT JSON) {sql}", values)]
        assert tables_of(json.loads(plan) if isinstance(plan, str) else plan) <= {"audit_chain_head", "audit_archive"}


def tables_of(plan: Any) -> set[str]:
    """Every table a PostgreSQL plan (EXPLAIN's JSON) reads."""
    if isinstance(plan, list):
        return set().union(*map(tables_of, plan)) if plan else set()
    if not isinstance(plan, dict):
        return set()
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    return found.union(*(tables_of(value) for value in plan.values()))


# -- retention: what an archive run took is no longer counted ----------------------------------------------------------


async def test_after_each_archive_run_the_count_is_count_star(client: httpx.AsyncClient, services: Services,
                                                               tmp_path: Path) -> None:
    tenant = await old_trail(client, services, [20, 10])
    before = await assert_counted_exactly(tenant)
    # the older stretch alone, then the rest: the count follows the newest anchor, not the number of runs
    cut = datetime.now(UTC) - LONG_AGO + timedelta(days=15)
    assert await archive_run(services, tenant, tmp_path / "first.ndjson", before=cut) == 20
    after_first = await assert_counted_exactly(tenant)
    assert after_first < before
    assert await archive_run(services, tenant, tmp_path / "second.ndjson") == 10
    assert await assert_counted_exactly(tenant) < after_first
    assert [a.up_to_seq for a in await AuditArchive.filter(institution_id=tenant.id).order_by("up_to_seq")] == [20, 30]
    await assert_counted_exactly(tenant)  # and events appended since


async def test_while_an_archive_run_is_under_way_the_count_is_count_star(
        client: httpx.AsyncClient, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An archive run whose anchor and deletes are not committed yet: the request counts the trail as it was,
    as count(*) does (one statement reads the head and the anchor in one snapshot)."""
    if not is_postgres():
        pytest.skip("SQLite has one writer: a request waits for the archive's transaction to end")
    tenant = await old_trail(client, services, [12])
    before = await assert_counted_exactly(tenant)
    deleted, go = asyncio.Event(), asyncio.Event()
    append = writer.append

    async def held_before_its_record(records: Sequence[AuditRecord]) -> None:
        if records and records[0].action == Action.ARCHIVE_TRAIL:  # anchored and deleted, not committed
            deleted.set()
            await go.wait()
        await append(records)

    monkeypatch.setattr(writer, "append", held_before_its_record)
    run = asyncio.create_task(archive_run(services, tenant, tmp_path / "slow.ndjson"))
    try:
        await asyncio.wait_for(deleted.wait(), timeout=10)
        held = await rows_held(tenant)
        assert held == before + 1  # the read of it above, not the archive's deletes
        assert await asyncio.wait_for(totals(tenant), timeout=10) == (held, held)
    finally:
        go.set()
        assert await run == 12
    await assert_counted_exactly(tenant)


# -- PostgreSQL's inbox: events not linked yet are rows of neither count ---------------------------------------------


async def test_events_waiting_in_the_inbox_or_linked_uncommitted_are_not_counted_as_count_star_does(
        tenant: Tenant, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after the request's seal another transaction links events (holding the head, not committed) and a
    writer posts to the inbox (the head is busy): the count is count(*) of that moment, which holds neither."""
    if not is_postgres():
        pytest.skip("the inbox is PostgreSQL's: SQLite has one writer")
    await assert_counted_exactly(tenant)
    other = await asyncpg.connect(database)
    transaction = other.transaction()
    seen: dict[str, int] = {}
    started: list[bool] = []
    seal = writer.seal

    async def seal_then_write(institution_id: uuid.UUID) -> None:
        await seal(institution_id)
        if seen:
            return
        now = datetime.now(UTC)
        await transaction.start()
        started.append(True)
        await other.execute("SELECT audit_append($1, $2::jsonb)", tenant.id,
                            writer.events_json([read(tenant.id, now) for _ in range(2)]))  # linked, uncommitted
        await writer.append([read(tenant.id, now) for _ in range(3)])  # the head is busy: to the inbox
        seen["held"] = await AuditEvent.filter(institution_id=tenant.id).count()
        seen["waiting"] = await waiting(tenant.id)

    monkeypatch.setattr(writer, "seal", seal_then_write)
    try:
        reply = await asyncio.wait_for(tenant.call("compliance_officer", WHOLE), timeout=10)
        assert reply.errors == [], reply.errors
        assert seen["waiting"] >= 3
        assert reply.data["auditEvents"]["totalCount"] == seen["held"]
    finally:
        if started:
            await transaction.commit()
        await other.close()
    monkeypatch.setattr(writer, "seal", seal)
    assert await waiting_after_seal(tenant) == 0
    await assert_counted_exactly(tenant)  # the committed link and the inbox's events, sealed by the request


async def waiting(institution_id: uuid.UUID) -> int:
    [row] = await connection().execute_query_dict(
        "SELECT count(*) AS n FROM audit_inbox WHERE institution_id = $1", [institution_id])
    return int(row["n"])


async def waiting_after_seal(tenant: Tenant) -> int:
    await writer.seal(tenant.id)
    return await waiting(tenant.id)
