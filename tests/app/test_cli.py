"""The CLI as an operator runs it: a fresh SQLite file, environment settings, exit codes."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import argon2
import pytest

from core.principal import ROLES

ROOT = Path(__file__).resolve().parents[2]
STRONG_HASHING = {"CARELOOP_ARGON2_TIME_COST": "3", "CARELOOP_ARGON2_MEMORY_KIB": "65536"}
FAST_HASHING = {"CARELOOP_ARGON2_TIME_COST": "1", "CARELOOP_ARGON2_MEMORY_KIB": "1024",
                "CARELOOP_ARGON2_PARALLELISM": "1"}


def environment(tmp: Path, **env: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CARELOOP_DATABASE_URL": f"sqlite://{tmp / 'careloop.sqlite3'}",
        "CARELOOP_KEY_FILE": str(tmp / "master.key"),
        **FAST_HASHING,
        **env,
    }


def careloop(tmp: Path, *args: str, timeout: int = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=environment(tmp, **env),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


# Migrating a new database costs seconds of CPU (a copy of the file nothing): the module migrates one with
# `careloop migrate`, runs `careloop init` and `careloop demo` once each on copies of it, and every test that
# changes a database works on a copy of theirs in its own folder (the database and the key file).
Ran = tuple[Path, subprocess.CompletedProcess[str]]
SETUP_TIMEOUT = 600  # seconds: the shared set-ups are the slowest commands, and they run once


def copy_of(template: Path, folder: Path) -> Path:
    """The template's database (with any -wal/-shm) and key file in ``folder``, modes kept (0600)."""
    for file in (*template.glob("careloop.sqlite3*"), *template.glob("master.key")):
        shutil.copy2(file, folder / file.name)
    return folder


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """A new database file migrated by `careloop migrate` (no key file: migrate needs none) as `make run` makes it on
    a fresh clone: the default settings, in a var/ folder not there yet (found in review: `make run` failed on a
    fresh clone, the database file's folder missing). That folder is the template the other set-ups copy."""
    folder = tmp_path_factory.mktemp("migrated")
    made = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=folder, capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
                          timeout=SETUP_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    return folder / "var", made


@pytest.fixture(scope="module")
def initialised(migrated: Ran, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """`careloop init` on a copy of the migrated database: the key file, Riverside Clinic and its admin."""
    assert migrated[1].returncode == 0, migrated[1].stderr
    folder = copy_of(migrated[0], tmp_path_factory.mktemp("initialised"))
    return folder, careloop(folder, "init", "--name", "Riverside Clinic", "--admin-email", "boss@riverside.test",
                            CARELOOP_ADMIN_PASSWORD="a long admin password", timeout=SETUP_TIMEOUT)


@pytest.fixture(scope="module")
def demo(migrated: Ran, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """`careloop demo --patients 12` on a copy of the migrated database, its output as it was printed."""
    assert migrated[1].returncode == 0, migrated[1].stderr
    folder = copy_of(migrated[0], tmp_path_factory.mktemp("demo"))
    return folder, careloop(folder, "demo", "--patients", "12", timeout=SETUP_TIMEOUT)


def initialised_copy(initialised: Ran, folder: Path) -> Path:
    assert initialised[1].returncode == 0, initialised[1].stderr
    return copy_of(initialised[0], folder)


def demo_copy(demo: Ran, folder: Path) -> Path:
    assert demo[1].returncode == 0, demo[1].stderr
    return copy_of(demo[0], folder)


def test_init_creates_key_institution_and_admin(initialised: Ran) -> None:
    folder, result = initialised
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((folder / "master.key").stat().st_mode) == 0o600
    with sqlite3.connect(folder / "careloop.sqlite3") as db:
        assert db.execute("select name from institution").fetchall() == [("Riverside Clinic",)]
        assert db.execute("select email from staff").fetchall() == [("boss@riverside.test",)]
        (password_hash,) = db.execute("select password_hash from staff").fetchone()
    assert password_hash.startswith("$argon2id$")
    assert "a long admin password" not in result.stdout + result.stderr


def test_init_without_a_password_refuses(tmp_path: Path) -> None:
    result = careloop(tmp_path, "init", "--name", "Riverside Clinic", "--admin-email", "boss@riverside.test")
    assert result.returncode == 2
    assert "CARELOOP_ADMIN_PASSWORD" in result.stderr
    assert not (tmp_path / "careloop.sqlite3").exists()


def test_init_makes_no_new_key_for_a_database_sealed_under_a_lost_one(initialised: Ran, tmp_path: Path) -> None:
    """As `careloop demo` (found in the last session's notes): init with the key file gone made a new key and a
    second institution under it, beside one sealed under the lost key; restoring that key would then lose the new
    one's data."""
    initialised_copy(initialised, tmp_path)
    (tmp_path / "master.key").unlink()
    again = careloop(tmp_path, "init", "--name", "Hillside Clinic", "--admin-email", "boss@hillside.test",
                     CARELOOP_ADMIN_PASSWORD="a long admin password")
    assert again.returncode == 2, again.stdout + again.stderr
    assert "master.key is missing" in again.stderr
    assert not (tmp_path / "master.key").exists()
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        assert db.execute("select name from institution").fetchall() == [("Riverside Clinic",)]


def test_demo_seeds_once_and_verifies(demo: Ran, tmp_path: Path) -> None:
    first = demo[1]
    assert first.returncode == 0, first.stderr
    copy_of(demo[0], tmp_path)
    assert "front_desk@demo.careloop.test" in first.stdout
    assert "shown only now" in first.stdout  # a generated password, printed once
    second = careloop(tmp_path, "demo", "--patients", "12")
    assert second.returncode == 0
    assert "exists already" in second.stdout and "shown only now" not in second.stdout
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        assert db.execute("select count(*) from patient").fetchone() == (12,)
        # one a role, the second admin who approves the campaign, and the compliance desk's four more nurses
        # (app/demo_compliance.py)
        assert db.execute("select count(*) from staff where is_demo").fetchone() == (len(ROLES) + 5,)
        assert db.execute("select email from patient_account").fetchall() == [("patient@demo.careloop.test",)]
        assert db.execute("select count(*) from partner_grant").fetchone() == (10,)
        (client_id,) = db.execute("select id from partner_client").fetchone()
    assert f"id {client_id}, secret, shown only now: cls_" in first.stdout
    verify = careloop(tmp_path, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout
    assert "events checked" not in verify.stderr  # progress is for a terminal, not a captured log
    patients_reindex_fills_the_search_columns_of_older_files(tmp_path)


def test_a_demo_password_refused_leaves_nothing_and_the_next_run_makes_it(migrated: Ran, tmp_path: Path) -> None:
    """A password too short was refused once the institution existed: the next run found the half-made demo
    "exists already", with no account anybody could sign in to. It is refused before anything is written."""
    assert migrated[1].returncode == 0, migrated[1].stderr
    copy_of(migrated[0], tmp_path)
    refused = careloop(tmp_path, "demo", "--password", "too short", "--patients", "2")
    assert refused.returncode != 0 and "12 to 256 characters" in refused.stderr
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        assert db.execute("select count(*) from institution").fetchone() == (0,)
        assert db.execute("select count(*) from staff").fetchone() == (0,)
    again = careloop(tmp_path, "demo", "--patients", "2", timeout=SETUP_TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert "Their password, shown only now" in again.stdout


def test_a_demo_build_cut_short_has_shown_its_password(migrated: Ran, tmp_path: Path) -> None:
    """Found in the last session's notes: the generated password was printed at the end of the build, so Ctrl-C
    during the minutes of patients left a demo that the next run finds existing (its accounts unchanged) and nobody
    can sign in to. It is printed as soon as the accounts exist."""
    assert migrated[1].returncode == 0, migrated[1].stderr
    copy_of(migrated[0], tmp_path)
    build = subprocess.Popen([sys.executable, "-m", "app.cli", "demo", "--patients", "200"], cwd=ROOT,
                             env=environment(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             # Ctrl-C reaches it even when pytest was started with SIGINT ignored (a shell's
                             # background job), which the child would inherit (found running the suite so)
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    try:
        while build.poll() is None and not _patients_in(tmp_path / "careloop.sqlite3"):
            time.sleep(0.1)  # polling a condition, not timing anything
        assert build.poll() is None, "the build ended before its patients: nothing to cut short"
        build.send_signal(signal.SIGINT)
        out, _ = build.communicate(timeout=120)
    finally:
        build.kill()
    assert "created." not in out, out  # cut short indeed
    shown = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Their password, shown only now")]
    assert len(shown) == 1, out
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        (password_hash,) = db.execute("select password_hash from staff where email = 'nurse@demo.careloop.test'"
                                      ).fetchone()
    assert argon2.PasswordHasher().verify(password_hash, shown[0])
    again = careloop(tmp_path, "demo", "--patients", "2")
    assert again.returncode == 0 and "exists already" in again.stdout, again.stdout + again.stderr


def _patients_in(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("select count(*) from patient").fetchone()[0])
    except sqlite3.OperationalError:  # the build holds a write lock for a moment
        return 0


def test_make_run_hands_the_chosen_demo_password_over_unechoed(migrated: Ran, tmp_path: Path) -> None:
    """`make run DEMO_PASSWORD=...` echoed `careloop demo --password "..."` (the terminal, CI logs, ps): the
    password now goes by CARELOOP_DEMO_PASSWORD, which `careloop demo` takes and never prints."""
    chosen = "the chosen demo password"
    make = shutil.which("make")
    assert make is not None, "README's two commands need make"
    dry_run = subprocess.run([make, "-n", "run", f"DEMO_PASSWORD={chosen}"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=False)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "careloop demo" in dry_run.stdout and chosen not in dry_run.stdout
    assert migrated[1].returncode == 0, migrated[1].stderr
    copy_of(migrated[0], tmp_path)
    seeded = careloop(tmp_path, "demo", "--patients", "2", timeout=SETUP_TIMEOUT, CARELOOP_DEMO_PASSWORD=chosen)
    assert seeded.returncode == 0, seeded.stderr
    assert chosen not in seeded.stdout + seeded.stderr and "Their password" not in seeded.stdout
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        (password_hash,) = db.execute("select password_hash from staff where email = 'nurse@demo.careloop.test'"
                                      ).fetchone()
    assert argon2.PasswordHasher().verify(password_hash, chosen)


def test_demo_makes_no_new_key_for_a_database_sealed_under_a_lost_one(demo: Ran, tmp_path: Path) -> None:
    """`make run` again after var/master.key went missing made a new key, said the demo exists and served a
    database none of whose sealed fields the new key opens (every read of a file: an internal error)."""
    demo_copy(demo, tmp_path)
    (tmp_path / "master.key").unlink()
    again = careloop(tmp_path, "demo", "--patients", "12")
    assert again.returncode == 2, again.stdout + again.stderr
    assert "master.key is missing" in again.stderr and "exists already" not in again.stdout
    assert not (tmp_path / "master.key").exists()


def test_demo_is_refused_in_production(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    result = careloop(tmp_path, "demo", CARELOOP_ENV="production", CARELOOP_MASTER_KEY=key)
    assert result.returncode == 2
    assert "refused in production" in result.stderr


def test_migrate_is_idempotent(migrated: Ran, tmp_path: Path) -> None:
    folder, first = migrated
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE((folder / "careloop.sqlite3").stat().st_mode) == 0o600  # private, like the key file
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # var/, made for it
    again = careloop(copy_of(folder, tmp_path), "migrate")
    assert again.returncode == 0 and "up to date" in again.stdout


def test_schema_export_matches_the_committed_sdl(tmp_path: Path) -> None:
    result = careloop(tmp_path, "schema", "export")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schema.graphql").read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CARELOOP_MASTER_KEY": base64.b64encode(b"\x00" * 32).decode()}, "placeholder"),
        ({"CARELOOP_MASTER_KEY": "not base64!"}, "base64"),
        ({}, "No master key"),
        ({"CARELOOP_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(), "CARELOOP_ARGON2_MEMORY_KIB": "1024"},
         "OWASP"),
    ],
)
def test_production_refuses_unsafe_configuration(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = careloop(tmp_path, "serve", CARELOOP_ENV="production", **{**STRONG_HASHING, **env})
    assert result.returncode == 2
    assert message in result.stderr


def test_production_refuses_to_start_with_demo_accounts(demo: Ran, tmp_path: Path) -> None:
    demo_copy(demo, tmp_path)
    key = (tmp_path / "master.key").read_text().strip()
    result = careloop(tmp_path, "serve", CARELOOP_ENV="production", CARELOOP_MASTER_KEY=key, CARELOOP_PORT="0",
                      **STRONG_HASHING)
    assert result.returncode == 2
    assert result.stderr.startswith("careloop: Demo accounts exist"), result.stderr
    assert "Traceback" not in result.stderr  # one line for the operator, before the port is bound


def test_an_auditor_checks_an_export_offline(demo: Ran, tmp_path: Path) -> None:
    """Export, checkpoints and public key out of the database; verify with the three files only."""
    demo_copy(demo, tmp_path)
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        (institution,) = db.execute("select id from institution").fetchone()
    signed = careloop(tmp_path, "audit", "checkpoint")
    assert signed.returncode == 0 and "signed at seq" in signed.stdout, signed.stderr
    files = {name: tmp_path / name for name in ("trail.ndjson", "checkpoints.ndjson", "key.pem")}
    for args in (("export", "--format", "ndjson", "--output", str(files["trail.ndjson"])),
                 ("checkpoints", "--output", str(files["checkpoints.ndjson"]))):
        done = careloop(tmp_path, "audit", *args, "--institution", institution)
        assert done.returncode == 0, done.stderr
    assert "events exported" in careloop(tmp_path, "audit", "export", "--institution", institution, "--format",
                                         "fhir", "--output", str(tmp_path / "fhir.ndjson")).stderr
    assert careloop(tmp_path, "audit", "public-key", "--output", str(files["key.pem"])).returncode == 0
    assert files["key.pem"].read_text().startswith("-----BEGIN PUBLIC KEY-----")

    offline = ("audit", "verify", "--export", str(files["trail.ndjson"]), "--checkpoint",
               str(files["checkpoints.ndjson"]), "--public-key", str(files["key.pem"]))
    ok = careloop(tmp_path, *offline, CARELOOP_DATABASE_URL="sqlite:///nonexistent/no.sqlite3")
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stdout + ok.stderr

    assert "its end, seq" in ok.stdout and "is signed" in ok.stdout

    # The documented sequence verifies although the trail went on (the export is on it, checkpoints follow).
    assert careloop(tmp_path, "audit", "checkpoint").returncode == 0
    later = careloop(tmp_path, "audit", "checkpoints", "--institution", institution, "--output",
                     str(files["checkpoints.ndjson"]))
    assert later.returncode == 0
    again = careloop(tmp_path, *offline)
    assert again.returncode == 0 and "later checkpoints cover events recorded after this export" in again.stdout

    # An event cut from under the export's signed end is found.
    lines = files["trail.ndjson"].read_text().splitlines(keepends=True)
    files["trail.ndjson"].write_text("".join(lines[:-2] + lines[-1:]))
    cut = careloop(tmp_path, *offline)
    assert cut.returncode == 1 and "truncated: the export's signed end is seq" in cut.stdout, cut.stdout
    # Without its signed end, a checkpoint beyond the export's end may mark a cut: it is truncated.
    files["trail.ndjson"].write_text("".join(lines[:-2]))
    cut_end = careloop(tmp_path, *offline)
    assert cut_end.returncode == 1 and "truncated: a signed checkpoint covers seq" in cut_end.stdout

    # CSV and FHIR are for reading: the evidence is written beside them and verifies.
    evidence = tmp_path / "trail.csv.evidence.ndjson"
    assert careloop(tmp_path, "audit", "export", "--institution", institution, "--format", "csv", "--output",
                    str(tmp_path / "trail.csv")).returncode == 0
    beside = careloop(tmp_path, "audit", "verify", "--export", str(evidence), "--checkpoint",
                      str(files["checkpoints.ndjson"]), "--public-key", str(files["key.pem"]))
    assert beside.returncode == 0 and "is signed" in beside.stdout, beside.stdout

    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        exports = db.execute("select count(*) from audit_event where action = 'export'").fetchone()
    assert exports == (3,)  # each export is on the trail
    assert careloop(tmp_path, "audit", "verify").returncode == 0


OLD_EVENTS = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from app import db
from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from models import Institution

async def main() -> None:
    await db.open_database(sys.argv[1])
    institution = await Institution.create(name="Old Clinic", kind="clinic")
    then = datetime.now(UTC) - timedelta(days=8 * 365)
    await writer.append([AuditRecord(institution.id, Actor("system"), Action.READ, "patient", Outcome.ALLOWED,
                                     occurred_at=then) for _ in range(5)])
    print(institution.id)
    await db.close_database()

asyncio.run(main())
"""


def test_retention_and_archiving(initialised: Ran, tmp_path: Path) -> None:
    """Set the retention period, archive what is past it, verify the rest and the file offline."""
    initialised_copy(initialised, tmp_path)
    seeded = subprocess.run([sys.executable, "-c", OLD_EVENTS, f"sqlite://{tmp_path / 'careloop.sqlite3'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    institution = seeded.stdout.strip()
    archive_file, signed, key = tmp_path / "archive.ndjson", tmp_path / "signed.ndjson", tmp_path / "key.pem"

    unsigned = careloop(tmp_path, "audit", "archive", "--institution", institution, "--output", str(archive_file))
    assert unsigned.returncode == 0 and "nothing to archive" in unsigned.stdout and not archive_file.exists()
    assert careloop(tmp_path, "audit", "checkpoint").returncode == 0  # signs seq 5
    too_short = careloop(tmp_path, "audit", "retention", "--institution", institution, "--months", "5")
    assert too_short.returncode == 2 and "6 to 1200 months" in too_short.stderr
    assert careloop(tmp_path, "audit", "retention", "--institution", institution, "--months", "84").returncode == 0
    shown = careloop(tmp_path, "audit", "retention", "--institution", institution)
    assert "kept 84 months" in shown.stdout

    done = careloop(tmp_path, "audit", "archive", "--institution", institution, "--output", str(archive_file))
    assert done.returncode == 0 and "5 events up to seq 5 archived" in done.stdout, done.stdout + done.stderr
    again = careloop(tmp_path, "audit", "archive", "--institution", institution, "--output", str(archive_file))
    assert again.returncode == 0 and "nothing to archive" in again.stdout  # the rest is inside the period

    verify = careloop(tmp_path, "audit", "verify", "--institution", institution)
    assert verify.returncode == 0 and "2 events (after 5 archived), chain intact" in verify.stdout, verify.stdout
    for args in (("checkpoints", "--institution", institution, "--to-seq", "5", "--output", str(signed)),
                 ("public-key", "--output", str(key))):
        assert careloop(tmp_path, "audit", *args).returncode == 0
    offline = careloop(tmp_path, "audit", "verify", "--export", str(archive_file), "--checkpoint", str(signed),
                       "--public-key", str(key))
    assert offline.returncode == 0 and "5 events, chain intact" in offline.stdout, offline.stdout
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        actions = db.execute("select action from audit_event where institution_id = ? order by seq",
                             (institution,)).fetchall()
    assert actions == [("retention",), ("archive_trail",)]


def test_keys_rotate_adds_a_version_on_the_record(demo: Ran, tmp_path: Path) -> None:
    demo_copy(demo, tmp_path)
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        (institution,) = db.execute("select id from institution").fetchone()

    result = careloop(tmp_path, "keys", "rotate", "--institution", institution)

    assert result.returncode == 0, result.stderr
    assert "data key version 2 added" in result.stdout
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        assert db.execute("select version from institution_key order by version").fetchall() == [(1,), (2,)]
        assert db.execute("select count(*) from audit_event where action = 'key_rotation'").fetchone() == (1,)
    assert careloop(tmp_path, "audit", "verify").returncode == 0
    unknown = careloop(tmp_path, "keys", "rotate", "--institution", "00000000-0000-0000-0000-000000000001")
    assert unknown.returncode != 0 and "no institution" in unknown.stderr


def test_init_in_production_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    result = careloop(tmp_path, "init", "--name", "Riverside Clinic", "--admin-email", "boss@riverside.test",
                      CARELOOP_ENV="production", CARELOOP_ADMIN_PASSWORD="a long admin password", **STRONG_HASHING)
    assert result.returncode == 2
    assert "openssl rand -base64 32" in result.stderr and "CARELOOP_MASTER_KEY" in result.stderr
    assert not (tmp_path / "master.key").exists()
    assert not (tmp_path / "careloop.sqlite3").exists()  # told before migrating: no database made for nothing


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"CARELOOP_ADMIN_PASSWORD": "too short"}, "password: must be 12 to 256 characters"),
        (("--admin-email", "not an address"), {}, "email: must contain exactly one @"),
        (("--time-zone", "Mars/Olympus Mons"), {}, "timeZone: not a known time zone"),
        ((), {"CARELOOP_MASTER_KEY": "not base64!"}, "CARELOOP_MASTER_KEY"),
    ],
)
def test_init_refuses_a_mistake_before_making_a_database(tmp_path: Path, args: tuple[str, ...], env: dict[str, str],
                                                          message: str) -> None:
    """Found while timing the suite: init migrated a new database (seconds), then made the key file and the
    institution, and only then refused the admin's password or address: an institution without an admin, and the
    next run made a second one. What migrating cannot put right is now told first, and nothing is written."""
    result = careloop(tmp_path, "init", "--name", "Riverside Clinic", "--admin-email", "boss@riverside.test", *args,
                      **{"CARELOOP_ADMIN_PASSWORD": "a long admin password", **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not (tmp_path / "careloop.sqlite3").exists() and not (tmp_path / "master.key").exists()


def test_demo_refuses_a_password_too_short_before_making_a_database(tmp_path: Path) -> None:
    refused = careloop(tmp_path, "demo", "--password", "too short", "--patients", "2")
    assert refused.returncode == 2 and "12 to 256 characters" in refused.stderr
    assert not (tmp_path / "careloop.sqlite3").exists() and not (tmp_path / "master.key").exists()


def test_a_command_on_a_database_not_set_up_says_so_and_makes_none(tmp_path: Path) -> None:
    """Found in review: `careloop audit verify` with a mistyped SQLite path made an empty database file there and
    answered a traceback (no such table); a database not migrated answered the same."""
    key = base64.b64encode(os.urandom(32)).decode()
    database = tmp_path / "careloop.sqlite3"
    for command in (["audit", "verify"], ["patients", "reindex"],
                    ["keys", "rotate", "--institution", "00000000-0000-7000-8000-000000000001"]):
        missing = careloop(tmp_path, *command, CARELOOP_MASTER_KEY=key)
        assert missing.returncode == 2, missing.stdout + missing.stderr
        assert f"no database at {database}" in missing.stderr and "Traceback" not in missing.stderr
        assert not database.exists()
    database.touch()  # a database nothing migrated
    not_migrated = careloop(tmp_path, "audit", "verify", CARELOOP_MASTER_KEY=key)
    assert not_migrated.returncode == 2, not_migrated.stdout + not_migrated.stderr
    assert "not up to date" in not_migrated.stderr and "careloop migrate" in not_migrated.stderr
    with sqlite3.connect(database) as db:  # nothing made in it
        assert db.execute("select count(*) from sqlite_master").fetchone() == (0,)


def test_an_unknown_institution_is_an_error_not_an_empty_answer(initialised: Ran, tmp_path: Path) -> None:
    initialised_copy(initialised, tmp_path)
    unknown = "00000000-0000-7000-8000-000000000001"
    for command in (["audit", "export", "--output", "trail.ndjson"],
                    ["audit", "checkpoints", "--output", "checkpoints.ndjson"],
                    ["audit", "retention"], ["keys", "rotate"], ["patients", "reindex"]):
        output = [str(tmp_path / part) if part.endswith("ndjson") else part for part in command]
        result = careloop(tmp_path, *output, "--institution", unknown)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"no institution {unknown}" in result.stderr
        assert not list(tmp_path.glob("*.ndjson"))  # no empty file that looks like an answer


def patients_reindex_fills_the_search_columns_of_older_files(tmp_path: Path) -> None:
    """After ``careloop demo`` (test_demo_seeds_once_and_verifies runs it: a demo costs seconds)."""
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:  # as files written before migration 0020 were
        db.execute("update patient set name_search = '', phone_last4_bidx = null")
    done = careloop(tmp_path, "patients", "reindex")
    assert done.returncode == 0 and "patient files reindexed" in done.stdout, done.stderr
    with sqlite3.connect(tmp_path / "careloop.sqlite3") as db:
        assert db.execute("select count(*) from patient where name_search = ''").fetchone() == (0,)
        assert db.execute("select count(*) from patient where phone is not null and phone_last4_bidx is null"
                          ).fetchone() == (0,)
    again = careloop(tmp_path, "patients", "reindex")
    assert again.returncode == 0 and ": 0 patient files reindexed" in again.stdout
