"""The audit trail is append-only in the database, and verification finds any tampering with it."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise import Tortoise
from tortoise.exceptions import IntegrityError, OperationalError

from audit import verify
from audit.verify import ChainReport, verify_all
from core.settings import Settings
from models import AuditEvent
from tests.factories import Tenant, make_patient

ROOT = Path(__file__).resolve().parents[2]
append_only = importlib.import_module("migrations.0002_audit_append_only")
retention = importlib.import_module("migrations.0011_audit_retention")
REFUSED = (IntegrityError, OperationalError, asyncpg.exceptions.RaiseError)  # SQLite, PostgreSQL


# -- helpers -----------------------------------------------------------------------------


def connection() -> Any:
    return Tortoise.get_connection("default")


def is_postgres() -> bool:
    return connection().capabilities.dialect == "postgres"


async def raw_rows(tenant: Tenant) -> list[dict[str, Any]]:
    """The institution's audit rows as the database holds them."""
    return await connection().execute_query_dict(
        f"SELECT * FROM audit_event WHERE institution_id = '{tenant.id}' ORDER BY seq")


async def event(tenant: Tenant, seq: int) -> AuditEvent:
    return await AuditEvent.get(institution_id=tenant.id, seq=seq)


@asynccontextmanager
async def append_only_lifted() -> AsyncIterator[None]:
    """An attacker with the database owner's rights drops the triggers; they are put back afterwards."""
    if is_postgres():
        drop = ["DROP TRIGGER audit_event_no_update_delete ON audit_event",
                "DROP TRIGGER audit_event_no_truncate ON audit_event"]
    else:
        drop = ["DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete"]
    for statement in drop:
        await connection().execute_script(statement)
    try:
        yield
    finally:  # as the migrations left them: 0002's triggers, then 0011's (deletes of archived events only)
        for migration in (append_only, retention):
            for statement in migration.POSTGRES if is_postgres() else migration.SQLITE:
                await connection().execute_script(statement)


def flip(text: str) -> str:
    """The same text with one bit of its last character flipped."""
    return text[:-1] + chr(ord(text[-1]) ^ 1)


# -- the database refuses changes --------------------------------------------------------


async def test_the_database_refuses_to_update_an_audit_row(tenant: Tenant) -> None:
    rows = await raw_rows(tenant)
    target = rows[4]["id"]

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(f"UPDATE audit_event SET reason = 'nothing happened' WHERE id = '{target}'")
    with pytest.raises(REFUSED, match="append-only"):
        await AuditEvent.filter(institution_id=tenant.id).update(outcome="allowed")

    assert await raw_rows(tenant) == rows


async def test_the_database_refuses_to_delete_audit_rows(tenant: Tenant) -> None:
    rows = await raw_rows(tenant)
    target = rows[4]["id"]

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(f"DELETE FROM audit_event WHERE id = '{target}'")
    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(f"DELETE FROM audit_event WHERE institution_id = '{tenant.id}'")
    with pytest.raises(REFUSED, match="append-only"):
        await (await event(tenant, 5)).delete()

    assert await raw_rows(tenant) == rows


async def test_the_database_refuses_to_truncate_the_audit_table(tenant: Tenant) -> None:
    if not is_postgres():
        pytest.skip("SQLite has no TRUNCATE; an unqualified DELETE is refused above")
    rows = await raw_rows(tenant)

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_script("TRUNCATE audit_event")

    assert await raw_rows(tenant) == rows


async def test_the_database_refuses_to_overwrite_an_audit_row_with_an_upsert(tenant: Tenant) -> None:
    rows = await raw_rows(tenant)
    forged = {**rows[4], "reason": "nothing happened"}
    columns = ", ".join(forged)
    placeholders = ", ".join(f"${n}" for n in range(1, len(forged) + 1)) if is_postgres() else ", ".join(
        "?" for _ in forged)

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(
            f"INSERT INTO audit_event ({columns}) VALUES ({placeholders}) ON CONFLICT (id) DO UPDATE SET reason = "
            "excluded.reason", list(forged.values()))

    assert await raw_rows(tenant) == rows


async def test_the_database_refuses_to_overwrite_an_audit_row_with_insert_or_replace(tenant: Tenant) -> None:
    if is_postgres():
        pytest.skip("INSERT OR REPLACE is SQLite syntax")
    rows = await raw_rows(tenant)
    forged = {**rows[4], "reason": "nothing happened"}

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(
            f"INSERT OR REPLACE INTO audit_event ({', '.join(forged)}) VALUES ({', '.join('?' for _ in forged)})",
            list(forged.values()))

    assert await raw_rows(tenant) == rows


# -- verification ------------------------------------------------------------------------


async def test_a_fresh_chain_verifies(tenant: Tenant) -> None:
    count = await tenant.audit_count()

    assert await verify_all(tenant.id) == [ChainReport(tenant.id, count)]


async def test_a_busy_chain_verifies(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", phone="13912345678", diagnoses="Gingivitis")
    read = "query($id: ID!) { patient(id: $id) { fullName phone diagnoses } }"
    assert (await tenant.call("front_desk", read, id=str(pid))).codes == ["FORBIDDEN"]
    archive = "mutation($id: ID!) { patientArchive(id: $id) { id } }"
    assert (await tenant.call("support_agent", archive, id=str(pid))).codes == ["FORBIDDEN"]
    replies = await asyncio.gather(*(tenant.call("nurse", read, id=str(pid)) for _ in range(10)))  # concurrent
    assert [reply.errors for reply in replies] == [[]] * 10
    count = await tenant.audit_count()

    [report] = await verify_all(tenant.id)

    assert report == ChainReport(tenant.id, count)
    assert [e.seq for e in await tenant.audit_events()] == list(range(1, count + 1))


async def test_verification_reads_the_chain_in_batches(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "BATCH", 4)
    count = await tenant.audit_count()
    assert count > 8

    assert await verify_all(tenant.id) == [ChainReport(tenant.id, count)]
    doomed = await event(tenant, 9)  # the first row of the third batch
    async with append_only_lifted():
        await AuditEvent.filter(id=doomed.id).delete()
    [report] = await verify_all(tenant.id)

    assert (report.problem, report.seq, report.events) == ("sequence gap: expected 9", 10, 8)


def _later(value: Any) -> Any:
    return value + timedelta(microseconds=1)


def _other_uuid(value: Any) -> Any:
    return uuid.UUID(int=value.int ^ 1)


# column -> how an attacker changes it in the first login event
TAMPERING: dict[str, Callable[[Any], Any]] = {
    "occurred_at": _later,
    "actor_id": _other_uuid,
    "token_id": _other_uuid,
    "action": lambda value: "logout",
    "resource_type": flip,
    "outcome": lambda value: "denied",
    "reason": lambda value: "locked",
    "fields_read": lambda value: "diagnoses",
    "client_address": flip,
    "request_id": flip,
}


@pytest.mark.parametrize("column", list(TAMPERING))
async def test_verification_names_a_row_whose_content_changed(tenant: Tenant, other_tenant: Tenant,
                                                               column: str) -> None:
    [target] = (await tenant.audit_events(action="login"))[:1]
    new_value = TAMPERING[column](getattr(target, column))
    assert new_value != getattr(target, column)

    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(**{column: new_value})
    [report] = await verify_all(tenant.id)

    assert report == ChainReport(tenant.id, target.seq - 1, "content does not match its hash", target.seq, target.id)
    assert not report.ok
    assert (await verify_all(other_tenant.id))[0].ok  # other chains are not affected


async def test_verification_names_a_row_missing_from_the_middle(tenant: Tenant) -> None:
    doomed, successor = await event(tenant, 5), await event(tenant, 6)

    async with append_only_lifted():
        await AuditEvent.filter(id=doomed.id).delete()
    [report] = await verify_all(tenant.id)

    assert report == ChainReport(tenant.id, 4, "sequence gap: expected 5", 6, successor.id)


async def test_verification_notices_the_last_row_missing(tenant: Tenant) -> None:
    count = await tenant.audit_count()
    doomed = await event(tenant, count)

    async with append_only_lifted():
        await AuditEvent.filter(id=doomed.id).delete()
    [report] = await verify_all(tenant.id)

    assert report == ChainReport(tenant.id, count - 1, "rows missing after the last event", count, None)


CONTENT = ("occurred_at", "actor_kind", "actor_id", "token_id", "action", "resource_type", "resource_id",
           "patient_id", "field_classes", "fields_read", "outcome", "reason", "policy_rule", "request_id",
           "client_address", "user_agent")


@pytest.mark.parametrize(("moved", "problem"), [
    pytest.param(CONTENT, "content does not match its hash", id="content"),
    pytest.param((*CONTENT, "hash", "prev_hash"), "does not link to the previous event", id="content-and-hashes"),
])
async def test_verification_names_two_rows_whose_contents_were_swapped(
    tenant: Tenant, moved: tuple[str, ...], problem: str
) -> None:
    first, second = await event(tenant, 4), await event(tenant, 5)  # a staff creation and a login
    assert first.action != second.action

    async with append_only_lifted():
        await AuditEvent.filter(id=first.id).update(**{c: getattr(second, c) for c in moved})
        await AuditEvent.filter(id=second.id).update(**{c: getattr(first, c) for c in moved})
    [report] = await verify_all(tenant.id)

    assert report == ChainReport(tenant.id, 3, problem, 4, first.id)


# -- the command line --------------------------------------------------------------------


async def careloop(*args: str) -> tuple[int, str, str]:
    """Run the CLI as an operator does, in its own process (it opens and closes its own database).

    The CLI calls asyncio.run and closes Tortoise's connections, so it cannot run inside this test process.
    On SQLite this process first lets go of its connection (reopened on next use): tests that read the
    database file directly close a descriptor of it, which drops every SQLite lock this process holds,
    and a second process must not meet a connection in that state.
    """
    if not is_postgres():
        await connection().close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, cwd=ROOT, env=dict(os.environ),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
def cli_environment(monkeypatch: pytest.MonkeyPatch, database_url: str, settings: Settings) -> None:
    monkeypatch.setenv("CARELOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("CARELOOP_MASTER_KEY", settings.master_key or "")
    monkeypatch.delenv("CARELOOP_ENV", raising=False)


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_passes_a_good_chain(tenant: Tenant) -> None:
    count = await tenant.audit_count()

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 0, stdout + stderr
    assert stdout == f"{tenant.id}: {count} events, chain intact\n", stderr


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_fails_naming_the_first_bad_row(tenant: Tenant) -> None:
    first_bad, later = await event(tenant, 6), await event(tenant, 9)
    async with append_only_lifted():
        for row in (first_bad, later):
            await AuditEvent.filter(id=row.id).update(reason="nothing happened")

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 1, stdout + stderr
    assert stdout == f"{tenant.id}: FIRST BAD ROW seq 6 (id {first_bad.id}): content does not match its hash\n", stderr


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_fails_for_an_institution_without_a_chain() -> None:
    nobody = uuid.uuid4()

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(nobody))

    assert code == 1
    assert stdout == ""
    assert f"{nobody}: no audit chain" in stderr
