"""One database per test process, built by the real migrations; every test builds its own institution.

The backend comes from CARELOOP_TEST_DATABASE: unset (or "sqlite") runs on a fresh SQLite
file; a postgres:// URL runs on a fresh database created on that server and dropped at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from tortoise import connections

from app import db
from app.main import create_app, settle_garbage_collection
from app.services import build_services
from core.settings import Limits, Settings
from resolvers.context import Services
from tests import upgrade
from tests.factories import CLIENT_ADDRESS, TEST_HASHING, Tenant, make_tenant

BACKEND = os.environ.get("CARELOOP_TEST_DATABASE", "sqlite")
ROOT = Path(__file__).resolve().parents[1]


def pytest_report_header() -> str:
    return f"careloop test database: {'sqlite' if BACKEND == 'sqlite' else 'postgres'}"


def in_memory_folder() -> Path | None:
    """The machine's shared-memory tmpfs when it has one: nothing stored there waits for the disk."""
    folder = Path("/dev/shm")  # noqa: S108 (a private folder is made in it with mkdtemp)
    return folder if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else None


def remove_orphans(memory: Path) -> None:
    """The databases of earlier runs that were killed before their cleanup: they would hold memory until reboot."""
    for folder in memory.glob("careloop-test-*-*"):
        pid = folder.name.split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


@pytest_asyncio.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The test database. Its commits do not wait for the disk (SQLite: the file is in memory; PostgreSQL:
    synchronous_commit off for this database): the same statements, locks, isolation and visibility, only
    durability across a crash differs, which no test database needs. Every test commits a few dozen
    times, and each flush to the disk cost a few milliseconds (a third of the SQLite suite's time)."""
    if BACKEND == "sqlite":
        memory = in_memory_folder()
        if memory is None:
            yield "sqlite://" + str(tmp_path_factory.mktemp("db") / "careloop.sqlite3")
            return
        remove_orphans(memory)
        with tempfile.TemporaryDirectory(prefix=f"careloop-test-{os.getpid()}-", dir=memory) as folder:
            yield "sqlite://" + str(Path(folder) / "careloop.sqlite3")
            await db.close_database()
        return
    # A fresh database on the given server, dropped at the end.
    server = BACKEND.rsplit("/", 1)[0]
    name = f"careloop_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(BACKEND)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        yield f"{server}/{name}"
    finally:
        await db.close_database()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture
async def fresh_database(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database beside the test database, for what migrates, restores or upgrades one itself: a new
    SQLite file, or a new database on the test server, dropped afterwards."""
    if BACKEND == "sqlite":
        yield f"sqlite://{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"careloop_fresh_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(BACKEND)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{BACKEND.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def upgraded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """What tests/upgrade.py's script found in a new database upgraded from 0018 (a catalogue) through 0021 (audit
    events of 0021's writer) to the newest migration, and (``url``) the database, migrated step by step: run once a
    suite for the upgrade tests of test_migrations.py and test_patient_index.py (see tests/upgrade.py). In a process
    of its own: this one's Tortoise holds the test database."""
    if BACKEND == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('upgraded') / 'upgraded.sqlite3'}"
    else:
        name = f"careloop_upgraded_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(BACKEND)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{BACKEND.rsplit('/', 1)[0]}/{name}"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", upgrade.UPGRADE, url, json.dumps(upgrade.OLD_HASHED), cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
        assert process.returncode == 0, stderr.decode()[-3000:]
        yield {**json.loads(stdout.decode().strip().splitlines()[-1]), "url": url}
    finally:
        if BACKEND != "sqlite":
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        environment="development",
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        key_file=Path(tmp_path_factory.mktemp("keys")) / "unused.key",
        attachment_dir=Path(tmp_path_factory.mktemp("attachments")),
        # Every test signs in from one address (CLIENT_ADDRESS): the per-address limit would refuse the suite's
        # sign-ins; it is tested with a small limit of its own (tests/api/test_sign_in_address_limit.py).
        limits=Limits(login_per_address_per_minute=1_000_000),
        password_hashing=TEST_HASHING,
    )


@pytest_asyncio.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    await db.migrate(settings.database_url)
    await db.open_database(settings.database_url)
    # As a serving worker settles once started: what lives now is frozen out of every full collection, which
    # otherwise traversed it again and again (a fifth of the tests' own time, measured, when a step-by-step migration's
    # thousands of model states lived here), and the tests run under the server's collector settings.
    settle_garbage_collection()
    yield settings.database_url
    await db.close_database()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Services:
    return build_services(settings)


@pytest_asyncio.fixture(scope="session")
async def client(database: str, settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services, manage_database=False)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://careloop.test") as http:
        yield http


@pytest_asyncio.fixture
async def tenant(client: httpx.AsyncClient, services: Services) -> Tenant:
    return await make_tenant(client, services)


@pytest_asyncio.fixture
async def other_tenant(client: httpx.AsyncClient, services: Services) -> Tenant:
    return await make_tenant(client, services, name="Other Clinic")


class SqlCounter(logging.Handler):
    """Counts the SQL statements Tortoise sends (its db_client logger logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())


@pytest.fixture
def sql_counter() -> Iterator[SqlCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter, level = SqlCounter(), logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(level)


class RowsRead:
    """The rows each SELECT of a table returned, seen on the database client as the driver hands them over."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows: list[int] = []
        self.queries: list[str] = []  # each SELECT's text, in the same order


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], RowsRead]:
    """``rows_read("table")``: from now on, the rows of each SELECT that reads ``table`` (a spy on Tortoise's client:
    what it runs and returns is unchanged), inside transactions too."""
    # the class that defines it, which the transactions' client classes inherit it from as well
    client = next(klass for klass in type(connections.get("default")).__mro__ if "execute_query" in vars(klass))
    run = client.execute_query
    watched: list[RowsRead] = []

    async def counted(self: Any, query: str, values: list[Any] | None = None) -> Any:
        found = await run(self, query, values)
        for watch in watched:
            if query.lstrip().upper().startswith("SELECT") and f'"{watch.table}"' in query:
                watch.rows.append(len(found[1]))
                watch.queries.append(query)
        return found

    monkeypatch.setattr(client, "execute_query", counted)

    def watch(table: str) -> RowsRead:
        watched.append(RowsRead(table))
        return watched[-1]
    return watch


DATABASE_FIXTURES = {"database_url", "fresh_database", "upgraded"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules marked ``whole_database`` run first (in their order, each whole): they back up, verify or write
    to every institution of the shared database, which holds a few then and thousands at the end of a suite (they
    took about two minutes more there, each suite). On PostgreSQL, the tests that touch no database (no
    ``database_url``, ``fresh_database`` or ``upgraded`` among their fixtures, and no look at which database
    the run is on) are left to the SQLite run: they would only run the same code twice. (The last two are named:
    they need no ``database_url``, and the upgrade tests were left out of the PostgreSQL run, found while timing it.)"""
    # a stable sort: collection order within, so test_policy_changes still writes to every chain before
    # test_verify_truncation leaves some deliberately broken
    items.sort(key=lambda item: item.get_closest_marker("whole_database") is None)
    if BACKEND == "sqlite":
        return
    keep, leave = [], []
    for item in items:
        module = getattr(item, "module", None)
        fixtures = getattr(item, "fixturenames", ())
        touches = bool(DATABASE_FIXTURES & set(fixtures)) or hasattr(module, "BACKEND")
        (keep if touches else leave).append(item)
    if leave:
        config.hook.pytest_deselected(items=leave)
        items[:] = keep
