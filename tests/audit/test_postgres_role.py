"""On PostgreSQL the service runs as a role that can append to the audit trail and nothing more."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.conftest import BACKEND
from tests.factories import Tenant

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="PostgreSQL roles")
ROLE_SQL = Path(__file__).resolve().parents[2] / "docs" / "postgres-app-role.sql"


@pytest_asyncio.fixture
async def app_connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as a fresh service role, created by the documented SQL."""
    role = f"careloop_app_{secrets.token_hex(4)}"
    owner = await asyncpg.connect(database_url)
    await owner.execute(ROLE_SQL.read_text().replace("careloop_app", role))
    connection = await asyncpg.connect(database_url, user=role)
    yield connection
    await connection.close()
    await owner.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
    await owner.close()


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
