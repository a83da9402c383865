"""`careloop backup` and `careloop restore` as an operator runs them: a live database and its attachments
copied while the app holds them open, restored into a fresh database (SQLite file or new PostgreSQL
database), `careloop audit verify` passing on it, and a patient's sealed fields and an attachment read back
through the app with a token issued before the backup. The key never enters the backup; another key, a target
holding data, or a damaged file is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from app.backup import manifest_mac
from core.crypto import MasterKey
from core.settings import Settings
from resolvers.context import Services
from tests.api.test_attachments import PNG, new_ticket, upload
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient, make_tenant

pytestmark = pytest.mark.whole_database  # it backs up, restores and verifies the whole shared database
ROOT = Path(__file__).resolve().parents[2]
FAST_HASHING = {"CARELOOP_ARGON2_TIME_COST": "1", "CARELOOP_ARGON2_MEMORY_KIB": "1024",
                "CARELOOP_ARGON2_PARALLELISM": "1"}
READ = "query($id: ID!) { patient(id: $id) { fullName nationalId phone allergies diagnoses } }"
# Through the real app on the restored database, for each token of TOKENS (one process: it costs seconds):
# the GraphQL answer and the attachment's bytes.
READ_BACK = """
import asyncio, hashlib, json, os, sys
import httpx
from app import db
from app.main import create_app
from core.settings import load_settings

async def main() -> None:
    settings = load_settings()
    await db.open_database(settings.database_url)
    try:
        app = create_app(settings, manage_database=False)
        answers = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://restored.test") as http:
            for token in os.environ["TOKENS"].split():
                auth = {"authorization": "Bearer " + token}
                reply = await http.post("/graphql", json={"query": sys.argv[1], "variables": {"id": sys.argv[2]}},
                                        headers=auth)
                got = await http.get("/attachments/" + sys.argv[3], headers=auth)
                answers.append({"graphql": reply.json(), "attachment": got.status_code,
                                "sha256": hashlib.sha256(got.content).hexdigest()})
        print(json.dumps(answers))
    finally:
        await db.close_database()

asyncio.run(main())
"""


def careloop(settings: Settings, database_url: str, attachment_dir: Path, *args: str, key: str | None = None,
             script: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ.get("PATH", ""), "CARELOOP_DATABASE_URL": database_url,
                   "CARELOOP_MASTER_KEY": key or settings.master_key or "",
                   "CARELOOP_ATTACHMENT_DIR": str(attachment_dir), "CARELOOP_LOG_LEVEL": "WARNING",
                   **FAST_HASHING, **env}
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "app.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL, check=False)


async def seeded(tenant: Tenant) -> tuple[str, dict[str, Any], str]:
    """A patient with sealed fields and a ticket attachment, all through the API."""
    tag = secrets.token_hex(4)
    values = {"fullName": f"Backup Patient {tag}", "nationalId": "11010519491231002X", "phone": "13912345678",
              "allergies": f"penicillin {tag}", "diagnoses": f"periodontitis {tag}"}
    patient_id = await make_patient(tenant, "nurse", nationalIdType="RESIDENT_ID", **values)
    ticket_id = await new_ticket(tenant)
    stored = await upload(tenant, "support_agent", ticket_id)
    assert stored.status_code == 201, stored.text
    return str(patient_id), values, stored.json()["id"]


@dataclass(frozen=True)
class Taken:
    tenant: Tenant
    patient_id: str
    backup: Path


@pytest_asyncio.fixture(scope="module")
async def taken(client: httpx.AsyncClient, services: Services, settings: Settings, database: str,
                tmp_path_factory: pytest.TempPathFactory) -> Taken:
    """One backup of the shared database, an institution seeded through the API in it, taken once for the module:
    the tests that alter, swap or refuse a backup each work on a copy of it (``copy_of_backup``), never on it.
    Shared because each backup is a `careloop backup` process copying the whole database (seconds each, a dozen
    tests on each database); test_backup_restores_into_a_fresh_database_that_verifies_and_reads_back takes its own,
    as it tests the taking."""
    tenant = await make_tenant(client, services)
    patient_id, _, _ = await seeded(tenant)
    backup = tmp_path_factory.mktemp("taken") / "backup"
    taking = careloop(settings, database, settings.attachment_dir, "backup", "--output", str(backup))
    assert taking.returncode == 0, taking.stdout + taking.stderr
    return Taken(tenant, patient_id, backup)


def copy_of_backup(taken: Taken, tmp_path: Path) -> Path:
    """The shared backup in ``tmp_path / "backup"``, its files' modes kept (0600, as `careloop backup` writes)."""
    return Path(shutil.copytree(taken.backup, tmp_path / "backup"))


async def test_backup_restores_into_a_fresh_database_that_verifies_and_reads_back(
        tenant: Tenant, settings: Settings, database: str, fresh_database: str, tmp_path: Path) -> None:
    patient_id, values, attachment_id = await seeded(tenant)
    backup = tmp_path / "backup #2?"  # characters a SQLite URI would read as its query or fragment, not the path

    taken = careloop(settings, database, settings.attachment_dir, "backup", "--output", str(backup))
    assert taken.returncode == 0, taken.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["backend"] == ("sqlite" if BACKEND == "sqlite" else "postgres")
    assert manifest["migrations"] and manifest["key_fingerprint"].startswith("ed25519-sha256:")
    assert any(item["path"].startswith("attachments/") for item in manifest["attachments"])
    # The key is nowhere in the backup, in any form the service reads it in.
    raw_key = base64.b64decode(settings.master_key or "")
    for path in backup.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert raw_key not in content and (settings.master_key or "").encode() not in content
            assert path.stat().st_mode & 0o077 == 0

    restored_files = tmp_path / "restored-attachments"
    restored = careloop(settings, fresh_database, restored_files, "restore", "--input", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # This institution's chain (the shared test database also holds other tests' deliberately broken chains)
    verified = careloop(settings, fresh_database, restored_files, "audit", "verify", "--institution", str(tenant.id))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{tenant.id}: " in verified.stdout and "chain intact" in verified.stdout

    # Tokens issued before the backup open the restored service: a nurse's reads the sealed fields decrypted,
    # a support agent's the attachment's bytes.
    read = careloop(settings, fresh_database, restored_files, READ, patient_id, attachment_id, script=READ_BACK,
                    TOKENS=f"{tenant.tokens['nurse']} {tenant.tokens['support_agent']}")
    assert read.returncode == 0, read.stderr
    answer, got = json.loads(read.stdout)
    assert answer["graphql"].get("errors") is None, answer
    patient = answer["graphql"]["data"]["patient"]
    assert patient["fullName"] == values["fullName"] and patient["allergies"] == values["allergies"]
    assert patient["diagnoses"] == values["diagnoses"] and patient["nationalId"] == values["nationalId"]
    assert (got["attachment"], got["sha256"]) == (200, hashlib.sha256(PNG).hexdigest())

    # The backup and the restore are on the restored system chain; a second restore over it is refused.
    again = careloop(settings, fresh_database, tmp_path / "other-files", "restore", "--input", str(backup))
    assert again.returncode == 1 and "holds tables already" in again.stderr


async def test_restore_refuses_another_key_and_a_damaged_backup(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    backup = copy_of_backup(taken, tmp_path)
    files = tmp_path / "restored-attachments"

    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(backup), key=other_key)
    assert refused.returncode == 1 and "not the one this backup was taken with" in refused.stderr

    manifest = json.loads((backup / "manifest.json").read_text())
    damaged = backup / manifest["attachments"][0]["path"]
    damaged.chmod(0o600)
    content = damaged.read_bytes()
    damaged.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # always a change (a sealed file may end in 0x00)
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(backup))
    assert refused.returncode == 1 and "differs from the manifest" in refused.stderr
    assert not files.exists() or not any(files.rglob("*"))  # nothing restored
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(tmp_path / "nowhere"))
    assert refused.returncode == 1 and "not a careloop backup" in refused.stderr


async def test_backup_refuses_a_directory_with_files_and_a_wrong_key(
        tenant: Tenant, settings: Settings, database: str, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "note.txt").write_text("keep me")
    refused = careloop(settings, database, settings.attachment_dir, "backup", "--output", str(busy))
    assert refused.returncode == 1 and "not an empty directory" in refused.stderr
    assert (busy / "note.txt").read_text() == "keep me"

    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = careloop(settings, database, settings.attachment_dir, "backup", "--output", str(tmp_path / "b"),
                       key=other_key)
    assert refused.returncode == 1 and "does not open" in refused.stderr
    assert not (tmp_path / "b" / "manifest.json").exists()


# -- a restore that fails writes nothing (found in review) ------------------------------------------------------

# The restore run as `careloop restore` does, with one step made to fail after the database is written: the
# attachment copy running out of space once it wrote a file, or the key check after the migrations.
FAILING_RESTORE = """
import errno, sys
from app import backup, cli

copy = backup._copy_hashing

def copy_then_fail(source, target, created=None):
    copied = copy(source, target, created)
    if created is None:  # the database's private copy, before anything is written
        return copied
    raise OSError(errno.ENOSPC, "No space left on device", str(target))

async def key_refused(master):
    raise backup.BackupRefused("the master key in use does not open this database's institution keys")

if sys.argv[1] == "attachment-copy":
    backup._copy_hashing = copy_then_fail
else:
    backup._check_key_opens_database = key_refused
sys.exit(cli.main(sys.argv[2:]))
"""


# `careloop restore` with the backup directory written to after the restore checked it (whoever can write the
# backup store swaps a file between the check and the copy): argv[1] names the file to swap, argv[2] its new bytes.
SWAPPING_RESTORE = """
import sys
from pathlib import Path
from app import backup, cli

check_target = backup._check_target

async def check_then_swap(*args):
    await check_target(*args)  # runs after the files were checked, before anything is copied into the target
    swapped = Path(sys.argv[1])
    swapped.chmod(0o600)
    swapped.write_bytes(Path(sys.argv[2]).read_bytes())

backup._check_target = check_then_swap
sys.exit(cli.main(sys.argv[3:]))
"""


def _sqlite_tables(database_url: str) -> int:
    path = Path(database_url.removeprefix("sqlite://"))
    if not path.exists() or not path.stat().st_size:
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return int(connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


async def _target_objects(database_url: str) -> int:
    """What the restore target holds: SQLite's tables, or PostgreSQL's relations and functions in its schema."""
    if database_url.startswith("sqlite://"):
        return _sqlite_tables(database_url)
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(
            "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace)"
            " + (SELECT count(*) FROM pg_proc WHERE pronamespace = current_schema()::regnamespace)"))
    finally:
        await connection.close()


def _one_line_refusal(refused: subprocess.CompletedProcess[str], words: str) -> None:
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr, refused.stderr[-1500:]
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()], refused.stderr
    assert refused.stderr.startswith("careloop: restore refused: ") and words in refused.stderr, refused.stderr


async def test_a_restore_into_an_attachment_directory_that_is_a_file_is_refused_before_anything_is_written(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    """docs/operations.md: restore refuses a bad target "before touching anything". CARELOOP_ATTACHMENT_DIR
    naming a file (a typo) passed the checks: the database was restored, the file copy failed with a traceback,
    and the retry with the right directory was refused, the database holding tables already."""
    backup = copy_of_backup(taken, tmp_path)
    not_a_directory = tmp_path / "attachments-typo"
    not_a_directory.write_text("")

    refused = careloop(settings, fresh_database, not_a_directory, "restore", "--input", str(backup))
    _one_line_refusal(refused, "is not a directory")
    assert "database restored" not in refused.stdout and await _target_objects(fresh_database) == 0
    assert not_a_directory.read_text() == ""
    retried = careloop(settings, fresh_database, tmp_path / "attachments", "restore", "--input", str(backup))
    assert retried.returncode == 0, retried.stdout + retried.stderr


@pytest.mark.parametrize("failing", ["attachment-copy", "key-check"])
async def test_a_restore_that_fails_after_the_database_is_written_empties_the_target_again(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path, failing: str) -> None:
    """A step after the database copy fails (the disk fills while the files are copied; the institution keys do
    not open after the migrations): the restored database and the files already copied are removed, one line
    says why, and the restore runs again into the same target."""
    backup = copy_of_backup(taken, tmp_path)
    files = tmp_path / "files"

    refused = careloop(settings, fresh_database, files, failing, "restore", "--input", str(backup),
                       script=FAILING_RESTORE)
    _one_line_refusal(refused, "No space left on device" if failing == "attachment-copy" else "does not open")
    assert "database restored" in refused.stdout  # it failed after the database copy, and undid it
    assert await _target_objects(fresh_database) == 0
    assert not files.exists() or not any(files.rglob("*")), sorted(files.rglob("*"))
    retried = careloop(settings, fresh_database, files, "restore", "--input", str(backup))
    assert retried.returncode == 0, retried.stdout + retried.stderr


def _rewrite_manifest(backup: Path, manifest: dict[str, Any], sealed_with: Settings | None = None) -> None:
    """Write an edited manifest back; ``sealed_with`` the master key, its MAC made anew (as the key's holder can)."""
    if sealed_with:
        manifest["mac"] = manifest_mac(MasterKey.from_base64(sealed_with.master_key or ""), manifest)
    path = backup / "manifest.json"
    path.chmod(0o600)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("entry", ["not an attachment's name", "absolute path", "database renamed"])
async def test_a_restore_refuses_a_manifest_entry_with_a_wrong_name_before_writing_the_database(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path, entry: str) -> None:
    """Only '..' was refused up front: a manifest entry that is not an attachment's name was refused after the
    database was restored, and an absolute path or a database under another name went through."""
    backup = copy_of_backup(taken, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    extra = backup / "attachments" / "notes.txt"
    extra.write_bytes(b"x")
    listed = {"size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}
    if entry == "not an attachment's name":
        manifest["attachments"].append({"path": "attachments/notes.txt", **listed})
    elif entry == "absolute path":
        manifest["attachments"].append({"path": str(extra), **listed})
    else:
        renamed = backup / f"other-{manifest['database']['path']}"
        (backup / manifest["database"]["path"]).rename(renamed)
        manifest["database"]["path"] = renamed.name
    _rewrite_manifest(backup, manifest, sealed_with=settings)  # the names are checked, not only the MAC

    refused = careloop(settings, fresh_database, tmp_path / "files", "restore", "--input", str(backup))
    _one_line_refusal(refused, "is not the database's name" if entry == "database renamed"
                      else "is not an attachment file's name")
    assert "database restored" not in refused.stdout and await _target_objects(fresh_database) == 0


# -- the manifest is authenticated with the master key (found in review) -----------------------------------------


@pytest.mark.skipif(BACKEND != "sqlite", reason="edits the SQLite file in the backup")
async def test_a_backup_whose_database_was_altered_and_its_sums_recomputed_is_refused(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    """The manifest held plain SHA-256 sums: whoever could write the backup made the support agent an admin,
    renamed a patient, recomputed the sums, and the restore took it (`careloop audit verify` passing too)."""
    tenant, patient_id = taken.tenant, taken.patient_id
    backup = copy_of_backup(taken, tmp_path)
    copy = backup / "database.sqlite3"
    copy.chmod(0o600)
    with closing(sqlite3.connect(copy)) as connection, connection:  # closed: the change is in the file itself
        assert _make_support_agent_admin(connection, tenant, patient_id) == 2
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["database"].update(size=copy.stat().st_size, sha256=hashlib.sha256(copy.read_bytes()).hexdigest())
    _rewrite_manifest(backup, manifest)

    refused = careloop(settings, fresh_database, tmp_path / "files", "restore", "--input", str(backup))
    _one_line_refusal(refused, "was altered after it was written")
    assert refused.stdout == "" and await _target_objects(fresh_database) == 0


def _make_support_agent_admin(connection: sqlite3.Connection, tenant: Tenant, patient_id: str) -> int:
    staff = str(tenant.staff_ids["support_agent"])
    changed = connection.execute("UPDATE role_assignment SET role = 'admin' WHERE staff_id = ?", (staff,)).rowcount
    return changed + connection.execute("UPDATE patient SET full_name = 'Tampered Name' WHERE id = ?",
                                        (patient_id,)).rowcount


@pytest.mark.skipif(BACKEND != "sqlite", reason="a SQLite write-ahead log beside the backup's database")
async def test_a_write_ahead_log_left_beside_the_backup_database_is_not_restored(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    """The copy is in WAL mode: a change written to it by a connection still open lands in database.sqlite3-wal,
    which the manifest neither lists nor hashes, and the restore opened the copy through it, so the change was
    restored with a manifest and a MAC that match. The restore reads only the file the manifest hashed."""
    tenant, patient_id = taken.tenant, taken.patient_id
    backup = copy_of_backup(taken, tmp_path)
    copy = backup / "database.sqlite3"
    copy.chmod(0o600)
    with closing(sqlite3.connect(copy)) as connection:  # open while the restore runs: its log stays beside the copy
        with connection:
            assert _make_support_agent_admin(connection, tenant, patient_id) == 2
        assert (backup / "database.sqlite3-wal").stat().st_size > 0
        restored = careloop(settings, fresh_database, tmp_path / "files", "restore", "--input", str(backup))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with closing(sqlite3.connect(fresh_database.removeprefix("sqlite://"))) as connection:
        roles = connection.execute("SELECT role FROM role_assignment WHERE staff_id = ?",
                                   (str(tenant.staff_ids["support_agent"]),)).fetchall()
    assert roles == [("support_agent",)]


async def test_a_backup_whose_attachment_was_replaced_and_its_sum_recomputed_is_refused(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    backup = copy_of_backup(taken, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    replaced = backup / manifest["attachments"][0]["path"]
    replaced.chmod(0o600)
    replaced.write_bytes(b"another file")
    manifest["attachments"][0].update(size=12, sha256=hashlib.sha256(b"another file").hexdigest())
    _rewrite_manifest(backup, manifest)

    refused = careloop(settings, fresh_database, tmp_path / "files", "restore", "--input", str(backup))
    _one_line_refusal(refused, "was altered after it was written")
    assert refused.stdout == "" and await _target_objects(fresh_database) == 0
    assert not (tmp_path / "files").exists()


async def test_a_backup_without_a_mac_is_restored_only_when_the_operator_accepts_it(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    """A backup taken before manifests carried a MAC (or one whose MAC was removed) is refused, naming the flag;
    with --accept-unauthenticated it is restored, said so on stderr and on the system chain. A MAC that does not
    match is refused whatever the flag."""
    backup = copy_of_backup(taken, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["mac"].startswith("hmac-sha256:")
    files = tmp_path / "files"

    _rewrite_manifest(backup, {**manifest, "created_at": "2020-01-01T00:00:00+00:00"})
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(backup),
                       "--accept-unauthenticated")
    _one_line_refusal(refused, "was altered after it was written")

    del manifest["mac"]
    _rewrite_manifest(backup, manifest)
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(backup))
    _one_line_refusal(refused, "--accept-unauthenticated")
    assert refused.stdout == "" and await _target_objects(fresh_database) == 0

    accepted = careloop(settings, fresh_database, files, "restore", "--input", str(backup),
                        "--accept-unauthenticated")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "not authenticated" in accepted.stderr and "Traceback" not in accepted.stderr
    assert await _last_system_event_reason(fresh_database) == "restored_unauthenticated"


async def _last_system_event_reason(database_url: str) -> str:
    query = "SELECT reason FROM audit_event WHERE institution_id = {} ORDER BY seq DESC LIMIT 1"
    if database_url.startswith("sqlite://"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as connection:
            return str(connection.execute(query.format("?"), (str(uuid.UUID(int=0)),)).fetchone()[0])
    connection = await asyncpg.connect(database_url)
    try:
        return str(await connection.fetchval(query.format("$1"), uuid.UUID(int=0)))
    finally:
        await connection.close()


async def test_a_database_swapped_in_the_backup_after_its_check_is_not_restored(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    """The restore checked the database file's sum, then read the file again to restore it: one swapped in between
    (an altered copy: the support agent an admin) was restored under an intact manifest and MAC. The database is now
    restored from a private copy whose sum is checked as it is made."""
    tenant, patient_id = taken.tenant, taken.patient_id
    backup = copy_of_backup(taken, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    swapped = backup / manifest["database"]["path"]
    altered = tmp_path / "altered"
    if BACKEND == "sqlite":
        altered.write_bytes(swapped.read_bytes())
        with closing(sqlite3.connect(altered)) as connection, connection:
            assert _make_support_agent_admin(connection, tenant, patient_id) == 2
    else:  # a dump that is not the one hashed: any other bytes are another database to pg_restore
        altered.write_bytes(swapped.read_bytes()[: swapped.stat().st_size // 2])

    restored = careloop(settings, fresh_database, tmp_path / "files", str(swapped), str(altered), "restore",
                        "--input", str(backup), script=SWAPPING_RESTORE)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert swapped.read_bytes() == altered.read_bytes()  # the swap happened, during the restore
    if BACKEND == "sqlite":
        with closing(sqlite3.connect(fresh_database.removeprefix("sqlite://"))) as connection:
            roles = connection.execute("SELECT role FROM role_assignment WHERE staff_id = ?",
                                       (str(tenant.staff_ids["support_agent"]),)).fetchall()
        assert roles == [("support_agent",)]


async def test_an_attachment_swapped_in_the_backup_after_its_check_is_refused_and_undone(
        taken: Taken, settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    backup = copy_of_backup(taken, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    other = tmp_path / "other"
    other.write_bytes(b"another file")
    files = tmp_path / "files"

    refused = careloop(settings, fresh_database, files, str(backup / manifest["attachments"][0]["path"]), str(other),
                       "restore", "--input", str(backup), script=SWAPPING_RESTORE)
    _one_line_refusal(refused, "changed while it was restored")
    assert await _target_objects(fresh_database) == 0
    assert not files.exists() or not any(files.rglob("*")), sorted(files.rglob("*"))


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="the PostgreSQL client tools")
def test_a_tool_failure_is_one_line() -> None:
    """The PostgreSQL tools' own messages span several lines (a refused connection: two); the refusal is one line,
    as every other."""
    from app.backup import BackupRefused, run_pg
    with pytest.raises(BackupRefused) as refused:
        run_pg("pg_dump", "postgres://nobody@127.0.0.1:1/none", [])
    assert str(refused.value).startswith("pg_dump failed: pg_dump: error: connection"), refused.value
    assert "\n" not in str(refused.value) and "Is the server running" in str(refused.value)


@pytest.mark.skipif(BACKEND == "sqlite" or shutil.which("pg_restore") is None,
                    reason="a PostgreSQL server and its client tools")
async def test_a_tool_failure_leaves_out_the_lines_that_quote_data_or_sql(fresh_database: str, tmp_path: Path) -> None:
    """pg_restore quotes the row a COPY failed on (DETAIL's failing row, CONTEXT's line of the COPY) and the statement
    that failed ("Command was:" and the statement's further lines): a patient's fields in clear on the operator's
    terminal and in their logs (found in review). The refusal keeps what failed and where, and leaves those out, the
    whole of a quoted value or statement that spans several lines too, a line of it that begins as the server's words
    do included (found in review)."""
    from app.backup import BackupRefused, run_pg
    name, phone = "Zhang Wei\nERROR: Bed 12", "13800138000"  # a field of two lines, the second as the server speaks
    connection = await asyncpg.connect(fresh_database)
    try:
        await connection.execute("CREATE TABLE note (id int PRIMARY KEY, name text, phone text)")
        await connection.execute("INSERT INTO note VALUES (1, $1, $2)", name, phone)
        dump = tmp_path / "note.pgdump"
        run_pg("pg_dump", fresh_database, ["--format=custom", f"--file={dump}"])
        await connection.execute("TRUNCATE note")
        await connection.execute("ALTER TABLE note ADD CONSTRAINT short_phone CHECK (length(phone) < 5)")
    finally:
        await connection.close()
    restore = ["--no-owner", "--no-acl", "--single-transaction", "--exit-on-error"]

    with pytest.raises(BackupRefused) as copy_failed:  # the row breaks the target's constraint
        run_pg("pg_restore", fresh_database, [*restore, "--data-only", str(dump)])
    with pytest.raises(BackupRefused) as statement_failed:  # the table is there already
        run_pg("pg_restore", fresh_database, [*restore, str(dump)])

    assert str(copy_failed.value) == ('pg_restore failed: pg_restore: error: COPY failed for table "note": ERROR:  new '
                                      'row for relation "note" violates check constraint "short_phone"')
    assert str(statement_failed.value) == ('pg_restore failed: pg_restore: error: could not execute query: ERROR:  '
                                           'relation "note" already exists')


@pytest.mark.skipif(BACKEND == "sqlite" or shutil.which("pg_restore") is None,
                    reason="a PostgreSQL server and its client tools")
async def test_a_tool_failure_leaves_out_a_value_the_server_message_quotes(fresh_database: str,
                                                                           tmp_path: Path) -> None:
    """The server's own message may quote the value that failed (a field that does not read as its column's type:
    'invalid input syntax for type integer: "<the field>"'), over several lines when the value has them (found in
    review). The refusal keeps the message and the names of what failed, and leaves the value out."""
    from app.backup import BackupRefused, run_pg
    phone = 'Zhang "Wei"\nBed 12 13800138000'
    connection = await asyncpg.connect(fresh_database)
    try:
        await connection.execute("CREATE TABLE note (id int PRIMARY KEY, phone text)")
        await connection.execute("INSERT INTO note VALUES (1, $1)", phone)
        dump = tmp_path / "note.pgdump"
        run_pg("pg_dump", fresh_database, ["--format=custom", f"--file={dump}"])
        await connection.execute("TRUNCATE note")
        await connection.execute("ALTER TABLE note ALTER phone TYPE integer USING NULL")
    finally:
        await connection.close()

    with pytest.raises(BackupRefused) as refused:
        run_pg("pg_restore", fresh_database, ["--no-owner", "--no-acl", "--single-transaction", "--exit-on-error",
                                               "--data-only", str(dump)])

    assert str(refused.value) == ('pg_restore failed: pg_restore: error: COPY failed for table "note": ERROR:  invalid '
                                  'input syntax for type integer: "…"'), refused.value
    for part in ("Zhang", "Wei", "Bed", "13800138000"):
        assert part not in str(refused.value)
