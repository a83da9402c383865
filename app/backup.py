"""Backups that can be restored: the database, the attachments and a manifest tying both to the master key.

A backup is a directory:
- ``manifest.json``, written last (a directory without one is an unfinished backup): the format, the careloop
  version and migration level, the key's fingerprint, and the size and SHA-256 of every file; and ``mac``, an
  HMAC of all that under a key derived from the master key, so that whoever holds the backup but not the key
  cannot alter a file and its sum unseen (checked first on restore);
- ``database.sqlite3`` (SQLite's online backup API: a consistent copy while the service runs) or
  ``database.pgdump`` (``pg_dump -Fc``: one snapshot, consistent while the service runs);
- ``attachments/``: the sealed attachment and contract files, copied after the database snapshot. Files are
  written before the row that names them and never deleted, so every file the snapshot names is there.

The master key is never in a backup: only its fingerprint, the SHA-256 of the public half of the checkpoint
signing key derived from it (public anyway; its first 16 hex digits are the checkpoints' ``key_id``). The key is
kept apart, in the secret store; a restore refuses a key whose fingerprint differs, and refuses a target that
holds data already.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.metadata
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
from cryptography.hazmat.primitives import serialization
from tortoise.connection import get_connection
from tortoise.exceptions import BaseORMException

from app import db
from app.leader import LIBPQ_OPTIONS, libpq_dsn
from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core.crypto import MasterKey
from core.db import backend_of as backend_named
from models import Attachment, ContractVersion, InstitutionKey

FORMAT = "careloop-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
ATTACHMENTS = "attachments"
MAC_SCHEME = "hmac-sha256:"
_STORED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")  # core.storage.LocalDirectory's layout
_CHUNK = 1 << 20


class BackupRefused(Exception):
    """A backup or restore that must not go on; the message says why (no patient data in it)."""


# What the file system and the databases raise when a step cannot be done (no space, no permission, no server):
# a restore answers them as a refusal in one line, never a traceback.
_OPERATIONAL = (OSError, sqlite3.Error, asyncpg.PostgresError, BaseORMException)


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the backup directory
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    created_at: str
    careloop_version: str
    backend: str  # "sqlite" or "postgres"
    migrations: list[str]
    key_fingerprint: str
    database: StoredFile
    attachments: list[StoredFile] = field(default_factory=list)
    format: str = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(created_at=str(data["created_at"]), careloop_version=str(data["careloop_version"]),
                   backend=str(data["backend"]), migrations=[str(m) for m in data["migrations"]],
                   key_fingerprint=str(data["key_fingerprint"]), database=StoredFile(**data["database"]),
                   attachments=[StoredFile(**item) for item in data["attachments"]], format=str(data["format"]))


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    institutions: int
    missing_files: int  # files the restored database names that the attachment directory lacks
    authenticated: bool  # False: a manifest without a MAC, restored because the operator accepted it


def manifest_mac(master: MasterKey, content: dict[str, Any]) -> str:
    """The MAC of a manifest: HMAC-SHA256, under the master key's backup key, of its canonical JSON (every field
    but ``mac`` itself: the format, the key's fingerprint, every file's path, size and SHA-256, ...)."""
    canonical = json.dumps({name: value for name, value in content.items() if name != "mac"}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True).encode()
    return MAC_SCHEME + hmac.new(master.backup_mac_key, canonical, hashlib.sha256).hexdigest()


def key_fingerprint(master: MasterKey) -> str:
    raw = master.checkpoint_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-sha256:" + hashlib.sha256(raw).hexdigest()


def backend_of(database_url: str) -> str:
    try:
        return backend_named(database_url)
    except ValueError:
        raise BackupRefused("the database URL is neither sqlite:// nor postgres://") from None


# -- backup -----------------------------------------------------------------------------------------


async def backup(database_url: str, attachment_dir: Path, master: MasterKey, output: Path) -> Manifest:
    """Write a backup of the database and the attachments to ``output`` (a new or empty directory)."""
    backend = backend_of(database_url)
    _new_private_directory(output)
    await db.open_database(database_url)
    try:
        await _check_key_opens_database(master)
        migrations = await _applied_migrations()
        named = await _named_files()
        # On the trail of the copy itself: whoever restores it sees when it was taken.
        await writer.append([AuditRecord(writer.SYSTEM_CHAIN, Actor("system"), Action.EXPORT, "backup",
                                         Outcome.ALLOWED, RequestMeta("cli-backup", "", "careloop backup"))])
    finally:
        await db.close_database()
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    database = await asyncio.to_thread(_dump_sqlite if backend == "sqlite" else _dump_postgres, database_url, output)
    attachments = await asyncio.to_thread(_copy_attachments, attachment_dir, output)
    missing = named - {Path(item.path).name for item in attachments}
    if missing:
        raise BackupRefused(f"the attachment directory {attachment_dir} lacks {len(missing)} files the database "
                            "names: this backup is incomplete (is CARELOOP_ATTACHMENT_DIR the service's?)")
    manifest = Manifest(created_at, _version(), backend, migrations, key_fingerprint(master), database, attachments)
    content = manifest.to_json()
    content["mac"] = manifest_mac(master, content)
    _write_private(output / MANIFEST, (json.dumps(content, indent=1) + "\n").encode())
    return manifest


def _new_private_directory(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupRefused(f"{path} exists and is not an empty directory; a backup never overwrites one")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


async def _check_key_opens_database(master: MasterKey) -> None:
    """The key in use must open the institutions' data keys: a backup tied to a wrong key is no backup."""
    for row in await InstitutionKey.all():
        try:
            master.unwrap(bytes(row.wrapped_key), row.institution_id, row.version)
        except Exception:
            raise BackupRefused("the master key in use does not open this database's institution keys") from None


async def _applied_migrations() -> list[str]:
    rows = await get_connection("default").execute_query_dict("SELECT name FROM tortoise_migrations")
    return sorted({str(row["name"]) for row in rows} & db.known_migrations())


async def _named_files() -> set[str]:
    keys = set(await Attachment.all().values_list("storage_key", flat=True))
    keys |= set(await ContractVersion.filter(document_key__isnull=False).values_list("document_key", flat=True))
    return {str(key) for key in keys}


def _dump_sqlite(database_url: str, output: Path) -> StoredFile:
    target = output / SQLITE_FILE
    _copy_sqlite(_sqlite_path(database_url), target, backup_copy=False)
    return _stored(output, target)


def _dump_postgres(database_url: str, output: Path) -> StoredFile:
    target = output / POSTGRES_FILE
    os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    run_pg("pg_dump", database_url, ["--format=custom", f"--file={target}"])
    return _stored(output, target)


def _copy_attachments(source: Path, output: Path) -> list[StoredFile]:
    copied = []
    for relative in _stored_files(source):
        target = output / ATTACHMENTS / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        copied.append(StoredFile(f"{ATTACHMENTS}/{relative}", *_copy_hashing(source / relative, target)))
    return copied


def _stored_files(root: Path) -> Iterator[str]:
    """The attachment store's files (never the temporary ``.part`` ones), in a stable order."""
    if not root.is_dir():
        return
    for path in sorted(root.glob("??/*")):
        relative = path.relative_to(root).as_posix()
        if _STORED.fullmatch(relative) and path.is_file():
            yield relative


# -- restore ----------------------------------------------------------------------------------------


async def restore(database_url: str, attachment_dir: Path, master: MasterKey, source: Path,
                  progress: Callable[[str], None] = lambda _: None, *,
                  accept_unauthenticated: bool = False) -> Restored:
    """Restore the backup in ``source`` into an empty database and an empty attachment directory. Its manifest's
    MAC is checked first (a manifest without one, from a careloop before MACs, only if ``accept_unauthenticated``);
    everything that can be checked is checked before anything is written; a step that fails after the database
    was written empties the target again, so that the restore can simply be run again."""
    with tempfile.TemporaryDirectory(prefix="careloop-restore-") as staging:
        try:
            manifest, authenticated = read_manifest(source, master, accept_unauthenticated=accept_unauthenticated)
            _check_compatible(manifest, database_url, master)
            _check_names(manifest)
            await asyncio.to_thread(_check_files, source, manifest)
            # The database is restored from a private copy whose sum was checked as it was copied: a file swapped
            # in the backup directory after the check above is never read (attachments: see _restore_attachments).
            database = await asyncio.to_thread(_staged, source, manifest.database, Path(staging))
            await _check_target(database_url, attachment_dir, manifest)
            written = await _Written.before(database_url)
        except _OPERATIONAL as exc:
            raise BackupRefused(f"the backup or the target could not be checked: {_why(exc)}") from None
        manifest_state = "manifest authenticated" if authenticated else "manifest NOT authenticated (accepted)"
        progress(f"backup checked: {manifest_state}, files intact, key matches, target empty")
        return await _restore_undoing(database_url, attachment_dir, master, source, database, manifest, written,
                                      progress, authenticated=authenticated)


async def _restore_undoing(database_url: str, attachment_dir: Path, master: MasterKey, source: Path, database: Path,
                           manifest: Manifest, written: _Written, progress: Callable[[str], None], *,
                           authenticated: bool) -> Restored:
    """``_restore_into``, emptying the target again if it fails."""
    try:
        return await _restore_into(database_url, attachment_dir, master, source, database, manifest, written,
                                   progress, authenticated=authenticated)
    except BaseException as exc:
        leftovers = await written.undo()
        if leftovers:
            raise BackupRefused(f"the restore failed ({_why(exc)}) and could not empty its target again: remove "
                                f"{', '.join(leftovers)} by hand before restoring again") from None
        if isinstance(exc, (BackupRefused, *_OPERATIONAL)):
            raise BackupRefused(f"the restore failed after the database was written ({_why(exc)}); the database "
                                "and the attachment directory are empty again: restore again once that is put "
                                "right") from None
        raise


async def _restore_into(database_url: str, attachment_dir: Path, master: MasterKey, source: Path, database: Path,
                        manifest: Manifest, written: _Written, progress: Callable[[str], None], *,
                        authenticated: bool) -> Restored:
    if manifest.backend == "sqlite":
        db.create_private_sqlite_file(database_url)
        await asyncio.to_thread(_copy_sqlite, database, _sqlite_path(database_url), backup_copy=True)
    else:
        await asyncio.to_thread(run_pg, "pg_restore", database_url,
                                ["--no-owner", "--no-acl", "--single-transaction", "--exit-on-error", str(database)])
    progress("database restored")
    await asyncio.to_thread(_restore_attachments, source, manifest, attachment_dir, written.paths)
    progress(f"{len(manifest.attachments)} attachment files restored")
    await db.migrate(database_url, progress=progress)  # a backup of an older version comes up to this one
    await db.open_database(database_url)
    try:
        await _check_key_opens_database(master)
        missing = len(await asyncio.to_thread(_absent, attachment_dir, await _named_files()))
        institutions = len({row.institution_id for row in await InstitutionKey.all()})
        await writer.append([AuditRecord(writer.SYSTEM_CHAIN, Actor("system"), Action.CREATE, "backup",
                                         Outcome.ALLOWED, RequestMeta("cli-restore", "", "careloop restore"),
                                         fields_read=frozenset({f"created_at:{manifest.created_at}"}),
                                         reason="restored" if authenticated else "restored_unauthenticated")])
    finally:
        await db.close_database()
    return Restored(manifest, institutions, missing, authenticated)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _absent(attachment_dir: Path, keys: set[str]) -> set[str]:
    return {key for key in keys if not (attachment_dir / key[:2] / key).is_file()}


def read_manifest(source: Path, master: MasterKey, *, accept_unauthenticated: bool = False) -> tuple[Manifest, bool]:
    """The backup's manifest, its MAC checked before anything in it is used; and whether it carried one."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{source} holds no {MANIFEST}: not a careloop backup, or an unfinished one")
    try:
        content = json.loads(path.read_text())
        authenticated = _check_mac(path, content, master, accept_unauthenticated=accept_unauthenticated)
        manifest = Manifest.from_json(content)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupRefused(f"{path} is not a careloop backup manifest") from None
    if manifest.format != FORMAT:
        raise BackupRefused(f"{path}: format {manifest.format!r}, this careloop reads {FORMAT!r}")
    return manifest, authenticated


def _check_mac(path: Path, content: dict[str, Any], master: MasterKey, *, accept_unauthenticated: bool) -> bool:
    if "mac" not in content:
        if accept_unauthenticated:
            return False
        raise BackupRefused(f"{path} carries no MAC: the backup was taken by a careloop before manifests were "
                            "authenticated, or its MAC was removed. If it was kept where no one could alter it, "
                            "restore it with --accept-unauthenticated")
    if hmac.compare_digest(str(content["mac"]).encode(), manifest_mac(master, content).encode()):
        return True
    if content.get("key_fingerprint") != key_fingerprint(master):
        raise BackupRefused(f"the master key in use is not the one this backup was taken with (the backup's key "
                            f"has fingerprint {str(content.get('key_fingerprint'))[:100]}); set CARELOOP_MASTER_KEY "
                            "or CARELOOP_KEY_FILE to that key")
    raise BackupRefused(f"{path} does not match its MAC under this master key: the backup was altered after it was "
                        "written; restore another one")


def _check_compatible(manifest: Manifest, database_url: str, master: MasterKey) -> None:
    if manifest.backend != backend_of(database_url):
        raise BackupRefused(f"a {manifest.backend} backup restores into {manifest.backend}, and "
                            f"CARELOOP_DATABASE_URL names {backend_of(database_url)}")
    if manifest.key_fingerprint != key_fingerprint(master):
        raise BackupRefused(f"the master key in use is not the one this backup was taken with (the backup's key "
                            f"has fingerprint {manifest.key_fingerprint}); set CARELOOP_MASTER_KEY or "
                            "CARELOOP_KEY_FILE to that key")
    newer = set(manifest.migrations) - db.known_migrations()
    if newer:
        raise BackupRefused(f"the backup was taken by a newer careloop ({manifest.careloop_version}, "
                            f"{len(newer)} migrations this one does not know): restore with that version")


def _check_names(manifest: Manifest) -> None:
    """Every path the manifest names is one a backup writes: nothing is read from, or written to, elsewhere."""
    expected = SQLITE_FILE if manifest.backend == "sqlite" else POSTGRES_FILE
    if manifest.database.path != expected:
        raise BackupRefused(f"{manifest.database.path[:100]!r} is not the database's name in a backup ({expected})")
    seen = set()
    for item in manifest.attachments:
        relative = _attachment_name(item)
        if not _STORED.fullmatch(relative) or relative == item.path:
            raise BackupRefused(f"{item.path[:100]!r} is not an attachment file's name")
        if relative in seen:
            raise BackupRefused(f"{item.path!r} is listed twice in the manifest")
        seen.add(relative)


def _attachment_name(item: StoredFile) -> str:
    return item.path.removeprefix(f"{ATTACHMENTS}/")


def _check_files(source: Path, manifest: Manifest) -> None:
    """Every file present; the attachments' sums (the database's is checked as it is staged: ``_staged``)."""
    for item in (manifest.database, *manifest.attachments):
        path = source / item.path
        if not path.is_file():
            raise BackupRefused(f"{item.path} is missing from the backup")
        if item is not manifest.database and (path.stat().st_size, _sha256(path)) != (item.size, item.sha256):
            raise BackupRefused(f"{item.path} differs from the manifest (size or SHA-256): the backup is damaged")


def _staged(source: Path, item: StoredFile, staging: Path) -> Path:
    """A private copy of one of the backup's files, refused unless the bytes copied are the manifest's."""
    copy = staging / Path(item.path).name
    if _copy_hashing(source / item.path, copy) != (item.size, item.sha256):
        raise BackupRefused(f"{item.path} differs from the manifest (size or SHA-256): the backup is damaged")
    return copy


def _check_copied(item: StoredFile, copied: tuple[int, str]) -> None:
    """The bytes copied are those the manifest hashed: a file changed after ``_check_files`` read it is refused."""
    if copied != (item.size, item.sha256):
        raise BackupRefused(f"{item.path} changed while it was restored (size or SHA-256 no longer the manifest's): "
                            "restore from storage only you can write to")


async def _check_target(database_url: str, attachment_dir: Path, manifest: Manifest) -> None:
    """The target is empty and can be written: a database without tables, an attachment directory that is one
    (or can be created) and holds none of the backup's files."""
    await asyncio.to_thread(_check_attachment_directory, attachment_dir, manifest)
    if backend_of(database_url) == "sqlite":
        await asyncio.to_thread(_check_sqlite_target, _sqlite_path(database_url))
        return
    connection = await asyncpg.connect(libpq_dsn(database_url))
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
    finally:
        await connection.close()
    if tables:
        raise BackupRefused("the target database holds tables already; create an empty one (createdb) and point "
                            "CARELOOP_DATABASE_URL at it")


def _check_attachment_directory(attachment_dir: Path, manifest: Manifest) -> None:
    if not attachment_dir.exists():
        _check_writable(next(parent for parent in attachment_dir.absolute().parents if parent.exists()),
                        f"the attachment directory {attachment_dir} cannot be created")
        return
    if not attachment_dir.is_dir():
        raise BackupRefused(f"the attachment directory {attachment_dir} is not a directory (CARELOOP_ATTACHMENT_DIR)")
    _check_writable(attachment_dir, f"the attachment directory {attachment_dir} cannot be written")
    if any(_stored_files(attachment_dir)):
        raise BackupRefused(f"the attachment directory {attachment_dir} holds files already; restore into an empty "
                            "one")
    for item in manifest.attachments:
        target = attachment_dir / _attachment_name(item)
        if os.path.lexists(target) or (target.parent.exists() and not target.parent.is_dir()):
            raise BackupRefused(f"{target} is in the way of the backup's file of that name")


def _check_sqlite_target(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise BackupRefused(f"the database {path} is not a file")
    if path.exists() and path.stat().st_size and _sqlite_tables(path):
        raise BackupRefused(f"the database {path} holds tables already; restore into a new file")
    # SQLite writes its journal beside the file.
    _check_writable(path.absolute().parent, f"the database {path} cannot be written")


def _check_writable(directory: Path, what: str) -> None:
    if not directory.is_dir():
        raise BackupRefused(f"{what}: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackupRefused(f"{what}: {directory} is not writable by this user")


# (keyword of DROP, name) of what the current schema holds; relations' own types, indexes and triggers go with them
_POSTGRES_OBJECTS = """
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::regclass::text
FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
       p.oid::regprocedure::text
FROM pg_proc p WHERE p.pronamespace = to_regnamespace(current_schema())
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text
FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typnamespace = to_regnamespace(current_schema()) AND (t.typtype IN ('e', 'd', 'r', 'm') OR c.relkind = 'c')
"""


@dataclass
class _Written:
    """What a restore writes, so that one failing half-way leaves its target as empty as it found it: the
    SQLite file (or, on PostgreSQL, every object of the schema that was not there before), and the attachment
    directories and files it created."""
    database_url: str
    sqlite_existed: bool = False
    postgres_objects: set[tuple[str, str]] = field(default_factory=set)
    paths: list[Path] = field(default_factory=list)  # created, in order

    @classmethod
    async def before(cls, database_url: str) -> _Written:
        if backend_of(database_url) == "sqlite":
            return cls(database_url, sqlite_existed=_sqlite_path(database_url).exists())
        return cls(database_url, postgres_objects=await _postgres_objects(database_url))

    async def undo(self) -> list[str]:
        """Remove what was written; answer what could not be."""
        leftovers = await asyncio.to_thread(self._remove_paths)
        try:
            if backend_of(self.database_url) == "sqlite":
                await asyncio.to_thread(self._empty_sqlite)
            else:
                await self._empty_postgres()
        except (OSError, asyncpg.PostgresError) as exc:
            leftovers.append(f"what the restore wrote to the database ({_why(exc)})")
        return leftovers

    def _remove_paths(self) -> list[str]:
        leftovers = []
        for path in reversed(self.paths):
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                leftovers.append(str(path))
        return leftovers

    def _empty_sqlite(self) -> None:
        path = _sqlite_path(self.database_url)
        for journal in ("-wal", "-shm", "-journal"):
            Path(f"{path}{journal}").unlink(missing_ok=True)
        if self.sqlite_existed:  # the operator's empty file: empty again, its owner and mode kept
            os.truncate(path, 0)
        else:
            path.unlink(missing_ok=True)

    async def _empty_postgres(self) -> None:
        await db.close_database()
        connection = await asyncpg.connect(libpq_dsn(self.database_url))
        try:
            async with connection.transaction():
                for keyword, name in await _postgres_object_rows(connection):
                    if (keyword, name) not in self.postgres_objects:
                        await connection.execute(f"DROP {keyword} IF EXISTS {name} CASCADE")
        finally:
            await connection.close()


async def _postgres_objects(database_url: str) -> set[tuple[str, str]]:
    connection = await asyncpg.connect(libpq_dsn(database_url))
    try:
        return set(await _postgres_object_rows(connection))
    finally:
        await connection.close()


async def _postgres_object_rows(connection: asyncpg.Connection) -> list[tuple[str, str]]:
    return [(str(row[0]), str(row[1])) for row in await connection.fetch(_POSTGRES_OBJECTS)]


def _restore_attachments(source: Path, manifest: Manifest, attachment_dir: Path, created: list[Path]) -> None:
    """Copy the backup's files (their names checked by ``_check_names``), noting each directory and file created."""
    missing = [path for path in (attachment_dir.absolute(), *attachment_dir.absolute().parents) if not path.exists()]
    attachment_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    created.extend(reversed(missing))
    for item in manifest.attachments:
        target = attachment_dir / _attachment_name(item)
        if not target.parent.exists():
            target.parent.mkdir(mode=0o700)
            created.append(target.parent)
        _check_copied(item, _copy_hashing(source / item.path, target, created))


# -- the pieces -------------------------------------------------------------------------------------


def _sqlite_path(database_url: str) -> Path:
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if path in ("", ":memory:"):
        raise BackupRefused("an in-memory SQLite database has nothing to back up or restore into")
    return Path(path)


def _copy_sqlite(source: Path, target: Path, *, backup_copy: bool) -> None:
    """SQLite's online backup: pages copied under a read transaction, restarted if a writer changes them. A
    backup's copy is read as immutable: its file alone, the bytes the manifest hashed, never a write-ahead log
    someone left beside it (and nothing written to the backup)."""
    if not target.exists():
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    origin = sqlite3.connect(_read_only(source, immutable=backup_copy), uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            origin.backup(copy)
        finally:
            copy.close()
    finally:
        origin.close()


def _read_only(path: Path, *, immutable: bool = False) -> str:
    """A SQLite URI opening ``path`` read-only; the path percent-encoded, so a ``?``, ``#`` or ``%`` in a directory's
    name is part of it, not the URI's query (a backup under "backup #2" opened another file)."""
    return f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"


def _sqlite_tables(path: Path) -> int:
    with sqlite3.connect(_read_only(path), uri=True) as connection:
        return int(connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


def _pg_parameters(database_url: str) -> dict[str, Any]:
    """Host, port, user, password and database of a postgres:// URL."""
    url = urlsplit(database_url)
    return {"host": url.hostname or "localhost", "port": url.port or 5432, "user": unquote(url.username or ""),
            "password": unquote(url.password or "") or None, "database": unquote(url.path.lstrip("/"))}


def run_pg(tool: str, database_url: str, arguments: list[str]) -> None:
    """``pg_dump`` or ``pg_restore`` with the URL's parameters; the password goes in the environment, never
    on a command line others can read; the URL's TLS options become libpq's variables (``PGSSLMODE``, ...), and
    those already set pass through."""
    program = shutil.which(tool)
    if program is None:
        raise BackupRefused(f"{tool} is not on PATH: install the PostgreSQL client tools of the server's version")
    target = _pg_parameters(database_url)
    environment = {**os.environ, **({"PGPASSWORD": target["password"]} if target["password"] else {}),
                   **{f"PG{key.upper()}": value for key, value in parse_qsl(urlsplit(database_url).query)
                      if key in LIBPQ_OPTIONS}}
    command = [program, f"--host={target['host']}", f"--port={target['port']}", f"--dbname={target['database']}",
               *([f"--username={target['user']}"] if target["user"] else []), "--no-password", *arguments]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupRefused(f"{tool} failed: {_unquoted(tool, result.stderr)[-2000:]}")


_QUOTING = ("Command was:", "CONTEXT:", "DETAIL:", "LINE ", "QUERY:", "^")
_SAYING = ("ERROR:", "FATAL:", "PANIC:", "WARNING:", "NOTICE:", "HINT:")  # the server's own words
# A quote the server's message puts after one of these words names an object of the schema; any other quotes a
# value ('invalid input syntax for type integer: "..."', 'value "..." is out of range'). The tool's own messages
# quote a server, a user or a file the operator gave.
_OBJECT = (r"(?:relation|table|column|constraint|index|schema|sequence|view|function|type|trigger|extension|role"
           r"|database|user|file|directory|server at)")
_QUOTE = re.compile(rf'(?P<object>\b{_OBJECT}\s+"[^"\n]*")|"')


def _unquoted(tool: str, said: str) -> str:
    """The tool's messages on one line, as every refusal, without what quotes the data or the SQL (a COPY's CONTEXT
    with a row's values, DETAIL with a row's or a key's, "Command was:"): they can hold a patient's fields in clear
    (found in review). A quote runs on to the tool's next message: a value or a statement of several lines goes on
    over them (found in review: the second line of a failing row's field was kept), and a line of it may begin as
    the server's words do (a field's second line "ERROR: ...": found in review), so only the tool's own prefix ends
    it. A message's own line may quote a value too (a field that does not read as its column's type): that value is
    left out, and the lines after it up to the tool's next message with it."""
    kept, quoting = [], False
    for line in (line.strip() for line in said.splitlines()):
        if line.startswith(_QUOTING):
            quoting = True
        elif line.startswith(f"{tool}:") or (not quoting and line.startswith(_SAYING)):
            line, quoting = _without_values(line)  # a message's own line is kept, a value it quotes is not
            kept.append(line)
            continue
        if line and not quoting:
            kept.append(line)
    return " | ".join(kept)


def _without_values(line: str) -> tuple[str, bool]:
    """The line with its first quoted value and everything after it cut to "…" (a value may hold quotes and go on
    over lines, so where it ends cannot be told), and whether it was cut; the schema's names it quotes before that
    are kept (what failed, and where)."""
    for match in _QUOTE.finditer(line):
        if match.group("object") is None:
            return line[:match.start()] + '"…"', True
    return line, False


def _copy_hashing(source: Path, target: Path, created: list[Path] | None = None) -> tuple[int, str]:
    """Copy a file (mode 0600, fsynced) and answer its size and SHA-256 as written; ``created`` notes the new
    file once it exists."""
    digest, size = hashlib.sha256(), 0
    descriptor = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    if created is not None:
        created.append(target)
    with source.open("rb") as reading, os.fdopen(descriptor, "wb") as writing:
        while chunk := reading.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    return size, digest.hexdigest()


def _stored(output: Path, path: Path) -> StoredFile:
    return StoredFile(path.relative_to(output).as_posix(), path.stat().st_size, _sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reading:
        while chunk := reading.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as writing:
        writing.write(data)
        writing.flush()
        os.fsync(writing.fileno())


def _version() -> str:
    try:
        return importlib.metadata.version("careloop")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"

