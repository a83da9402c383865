"""On PostgreSQL the service runs as a role that can append to the audit trail and nothing more."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="PostgreSQL roles")
ROOT = Path(__file__).resolve().parents[2]
ROLE_SQL = ROOT / "docs" / "postgres-app-role.sql"
PASSWORD = secrets.token_urlsafe(12) + "'; DROP TABLE patient; --"  # quoted as a literal, never run


async def run_role_script(database_url: str, *variables: str) -> str:
    """The documented command: psql, as the owner, with the role (and password) as psql variables."""
    arguments = [f"--variable={variable}" for variable in ("ON_ERROR_STOP=1", *variables)]
    psql = await asyncio.create_subprocess_exec(
        "psql", database_url, "--quiet", "--no-psqlrc", *arguments, "--file", str(ROLE_SQL),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await psql.communicate()
    assert psql.returncode == 0, err.decode()
    return out.decode() + err.decode()


@pytest_asyncio.fixture
async def role(database: str) -> AsyncIterator[str]:
    """A fresh service role, created by the documented script, dropped with its privileges afterwards."""
    name = f"careloop_app_{secrets.token_hex(4)}"
    await run_role_script(database, f"role={name}", f"password={PASSWORD}")
    yield name
    owner = await asyncpg.connect(database)
    await owner.execute(f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')
    await owner.close()


@pytest_asyncio.fixture
async def app_connection(database: str, role: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the service role."""
    connection = await asyncpg.connect(database, user=role, password=PASSWORD)
    yield connection
    await connection.close()


@pytest.mark.parametrize("statement", [
    "UPDATE audit_event SET reason = 'rewritten'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
    "ALTER TABLE audit_event DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_event_no_update_delete ON audit_event",
    "DROP TABLE audit_event",
    "DELETE FROM tortoise_migrations",
    "INSERT INTO audit_archive VALUES (gen_random_uuid(), gen_random_uuid(), 1, '', now(), 1, '')",
    "DELETE FROM audit_archive",
    "UPDATE audit_inbox SET mac = ''",
    "DELETE FROM audit_inbox",
    "TRUNCATE audit_inbox",
    "INSERT INTO audit_inbox_rejected VALUES (1, gen_random_uuid(), now(), now(), '{}', '', '22000')",
    "DELETE FROM audit_inbox_rejected",
])
async def test_the_service_role_cannot_touch_the_trail(tenant: Tenant, app_connection: asyncpg.Connection,
                                                       statement: str) -> None:
    before = await tenant.audit_count()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_connection.execute(statement)
    assert await tenant.audit_count() == before


async def test_the_service_role_reads_and_writes_the_data(tenant: Tenant, app_connection: asyncpg.Connection
                                                          ) -> None:
    assert await app_connection.fetchval("SELECT count(*) FROM audit_event WHERE institution_id = $1",
                                         tenant.id) == await tenant.audit_count()
    await app_connection.execute("UPDATE department SET name = name WHERE institution_id = $1", tenant.id)
    await app_connection.execute("UPDATE audit_chain_head SET last_seq = last_seq WHERE institution_id = $1",
                                 tenant.id)


async def test_the_service_role_appends_through_the_inbox(tenant: Tenant, app_connection: asyncpg.Connection
                                                          ) -> None:
    """It posts events and seals them (audit_seal removes inbox rows as its owner), though it may not delete."""
    before = await tenant.audit_count()
    record = AuditRecord(tenant.id, Actor("system"), Action.READ, "patient", Outcome.ALLOWED)
    await app_connection.execute("SELECT audit_append($1, $2::jsonb)", tenant.id, writer.events_json([record]))
    await app_connection.execute("SELECT audit_seal($1, true)", tenant.id)
    assert await tenant.audit_count() == before + 1
    assert await app_connection.fetchval("SELECT count(*) FROM audit_inbox WHERE institution_id = $1", tenant.id) == 0


async def test_the_password_is_the_one_given(database: str, role: str) -> None:
    owner = await asyncpg.connect(database)
    try:
        stored = await owner.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
        assert stored and stored.startswith("SCRAM-SHA-256$")  # hashed by the server, never kept in clear
        assert await owner.fetchval("SELECT to_regclass('patient') IS NOT NULL")
    finally:
        await owner.close()


async def test_tables_of_later_migrations_are_covered(database: str, role: str,
                                                      app_connection: asyncpg.Connection) -> None:
    """Default privileges: a table the owner creates after the script ran (a later migration's) is the
    service's to read and write, with no re-run; a re-run after the upgrade changes nothing else."""
    table = f"later_{secrets.token_hex(4)}"
    owner = await asyncpg.connect(database)
    try:
        await owner.execute(f'CREATE TABLE "{table}" (id BIGSERIAL PRIMARY KEY, note TEXT)')
        await app_connection.execute(f'INSERT INTO "{table}" (note) VALUES ($1)', "written by the service")
        await app_connection.execute(f'UPDATE "{table}" SET note = $1', "changed by the service")
        assert await app_connection.fetchval(f'SELECT note FROM "{table}"') == "changed by the service"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_connection.execute(f'DROP TABLE "{table}"')

        await run_role_script(database, f"role={role}")  # after an upgrade: again, without the password
        for statement in ("DELETE FROM audit_event", "TRUNCATE audit_event", "DELETE FROM tortoise_migrations"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app_connection.execute(statement)
        await app_connection.execute(f'DELETE FROM "{table}"')
    finally:
        await owner.execute(f'DROP TABLE "{table}"')
        await owner.close()


async def test_the_service_role_cannot_create_tables(app_connection: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_connection.execute("CREATE TABLE sneaky (id INT)")


async def test_the_documented_owner_creates_the_role_and_reruns_the_script(fresh_database: str) -> None:
    """As docs/operations.md says, in order: an owner that is no superuser (found in review: without CREATEROLE
    the script failed at once, and a re-run failed at ALTER ROLE), migrates its database, runs the script,
    and runs it again after an upgrade, with and without the password."""
    owner, service = f"careloop_owner_{secrets.token_hex(4)}", f"careloop_app_{secrets.token_hex(4)}"
    name = fresh_database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(BACKEND)
    await admin.execute(f"CREATE ROLE \"{owner}\" LOGIN CREATEROLE PASSWORD 'owner-pw'")
    await admin.execute(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')
    as_owner = fresh_database.replace("://postgres@", f"://{owner}:owner-pw@")
    try:
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "migrate", cwd=ROOT, env={**os.environ, "CARELOOP_DATABASE_URL": as_owner},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(migrate.communicate(), timeout=300)
        assert migrate.returncode == 0, err.decode()[-2000:]

        await run_role_script(as_owner, f"role={service}", f"password={PASSWORD}")
        await admin.execute(f'ALTER ROLE "{owner}" NOCREATEROLE')
        await run_role_script(as_owner, f"role={service}")  # after an upgrade: it changes no role, needs no right
        await admin.execute(f'ALTER ROLE "{owner}" CREATEROLE')
        await run_role_script(as_owner, f"role={service}", f"password={PASSWORD}")

        connection = await asyncpg.connect(fresh_database, user=service, password=PASSWORD)
        try:
            assert await connection.fetchval("SELECT count(*) FROM patient") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute("DELETE FROM audit_event")
        finally:
            await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role_name in (service, owner):
            await admin.execute(f'DROP ROLE IF EXISTS "{role_name}"')
        await admin.close()
