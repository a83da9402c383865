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
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings
from tests.api.test_attachments import PNG, new_ticket, upload
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient

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


async def test_backup_restores_into_a_fresh_database_that_verifies_and_reads_back(
        tenant: Tenant, settings: Settings, database: str, fresh_database: str, tmp_path: Path) -> None:
    patient_id, values, attachment_id = await seeded(tenant)
    backup = tmp_path / "backup"

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
        tenant: Tenant, settings: Settings, database: str, fresh_database: str, tmp_path: Path) -> None:
    await seeded(tenant)
    backup = tmp_path / "backup"
    assert careloop(settings, database, settings.attachment_dir, "backup", "--output", str(backup)).returncode == 0
    files = tmp_path / "restored-attachments"

    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = careloop(settings, fresh_database, files, "restore", "--input", str(backup), key=other_key)
    assert refused.returncode == 1 and "not the one this backup was taken with" in refused.stderr

    manifest = json.loads((backup / "manifest.json").read_text())
    damaged = backup / manifest["attachments"][0]["path"]
    damaged.chmod(0o600)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
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
