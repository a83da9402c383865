"""``careloop``: set up, seed, serve, migrate, verify the audit trail, export the schema."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app import db
from app.logs import configure_logging
from app.services import StartupError, build_services
from core.errors import BadUserInput, CareloopError
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from audit.checkpoint import Checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return int(args.run(settings, args) or 0)
    except StartupError as exc:
        print(f"careloop: {exc}", file=sys.stderr)
        return 2
    except CareloopError as exc:
        print(f"careloop: {exc.message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="careloop", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")

    init = commands.add_parser("init", help="migrate, create the key file, the first institution and its admin")
    init.add_argument("--name", required=True, help="the institution's name")
    init.add_argument("--kind", default="clinic",
                      choices=("hospital", "clinic", "dental", "checkup", "nursing", "eldercare"))
    init.add_argument("--time-zone", default="Asia/Shanghai")
    init.add_argument("--admin-email", required=True)
    init.add_argument("--admin-name", default="Administrator")
    init.set_defaults(run=_init)

    demo = commands.add_parser("demo", help="create the demo institution (refused in production)")
    demo.add_argument("--password", help="password of every demo account (default: CARELOOP_DEMO_PASSWORD, else "
                                         "generated and shown once)")
    demo.add_argument("--patients", type=int, default=200)
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(required=True, metavar="action")
    verify = audit.add_parser("verify", help="check every hash chain; exit 1 naming the first bad row. With "
                              "--export, --checkpoint and --public-key: check an export offline, no database")
    verify.add_argument("--institution", type=uuid.UUID)
    verify.add_argument("--export", type=Path, help="an NDJSON export (careloop audit export --format ndjson)")
    verify.add_argument("--checkpoint", type=Path, help="signed checkpoints (careloop audit checkpoints)")
    verify.add_argument("--public-key", type=Path, help="the checkpoint signing key (careloop audit public-key)")
    verify.set_defaults(run=_verify)
    trail = audit.add_parser("export", help="stream an institution's audit trail for a period to a file")
    trail.add_argument("--institution", type=uuid.UUID, required=True)
    trail.add_argument("--format", choices=("ndjson", "csv", "fhir"), default="ndjson")
    trail.add_argument("--from", dest="since", help="ISO 8601 time, inclusive (UTC when no offset)")
    trail.add_argument("--to", dest="until", help="ISO 8601 time, exclusive")
    trail.add_argument("--output", type=Path, required=True)
    trail.set_defaults(run=_audit_export)
    checkpoints = audit.add_parser("checkpoints", help="write an institution's signed checkpoints (NDJSON)")
    checkpoints.add_argument("--institution", type=uuid.UUID, required=True)
    checkpoints.add_argument("--to", dest="until", help="only checkpoints signed before this time")
    checkpoints.add_argument("--to-seq", type=int, help="only checkpoints up to this sequence number (what an "
                             "archive file is checked against: later ones would call it truncated)")
    checkpoints.add_argument("--output", type=Path, required=True)
    checkpoints.set_defaults(run=_audit_checkpoints)
    checkpoint = audit.add_parser("checkpoint", help="sign every chain's head now")
    checkpoint.set_defaults(run=_audit_checkpoint)
    retention = audit.add_parser("retention", help="show an institution's audit retention period, or set it "
                                 "with --months (at least 6); a change is audited")
    retention.add_argument("--institution", type=uuid.UUID, required=True)
    retention.add_argument("--months", type=int)
    retention.set_defaults(run=_audit_retention)
    archive = audit.add_parser("archive", help="move an institution's audit events older than its retention "
                               "period and covered by a signed checkpoint to a new NDJSON file, then delete them "
                               "from the database (run as the database's owner); audited")
    archive.add_argument("--institution", type=uuid.UUID, required=True)
    archive.add_argument("--output", type=Path, required=True, help="a new file (never overwritten)")
    archive.add_argument("--before", help="archive only events before this ISO 8601 time (UTC when no offset)")
    archive.set_defaults(run=_audit_archive)
    public_key = audit.add_parser("public-key", help="print the checkpoint signing key's public half (PEM)")
    public_key.add_argument("--output", type=Path)
    public_key.set_defaults(run=_audit_public_key)

    patients = commands.add_parser("patients", help="patient files").add_subparsers(required=True, metavar="action")
    reindex = patients.add_parser("reindex", help="fill the name search and last-4 phone indexes of files written "
                                  "before they existed (once after upgrading to migration 0020; idempotent)")
    reindex.add_argument("--institution", type=uuid.UUID, help="only this institution (default: every one)")
    reindex.set_defaults(run=_patients_reindex)
    keys = commands.add_parser("keys", help="institution data keys").add_subparsers(required=True, metavar="action")
    rotate = keys.add_parser("rotate", help="add a new data key version for an institution; it seals new data once "
                             "every worker knows it (within about 90 s), older versions keep opening; audited")
    rotate.add_argument("--institution", type=uuid.UUID, required=True)
    rotate.set_defaults(run=_keys_rotate)

    backup = commands.add_parser("backup", help="copy the database (consistent while serving) and the attachments "
                                 "to a new directory, with a manifest naming the master key's fingerprint (never "
                                 "the key: keep it in your secret store); audited")
    backup.add_argument("--output", type=Path, required=True, help="a new or empty directory")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty database and attachment "
                                  "directory; refused with another master key than the backup's")
    restore.add_argument("--input", type=Path, required=True, help="a directory written by careloop backup")
    restore.add_argument("--accept-unauthenticated", action="store_true",
                         help="restore a backup whose manifest carries no MAC (taken by a careloop before manifests "
                         "were authenticated): only one kept where no one could alter it")
    restore.set_defaults(run=_restore)

    schema = commands.add_parser("schema", help="the GraphQL schema").add_subparsers(required=True, metavar="action")
    export = schema.add_parser("export", help="print the SDL (or write it with --output)")
    export.add_argument("--output", type=Path)
    export.set_defaults(run=_export)
    return parser


def _with_database(settings: Settings, work: Callable[[], Awaitable[int]], *, up_to_date: bool = True) -> int:
    """``work`` on a database set up and (``up_to_date``) migrated. A mistyped SQLite path, or a database not
    migrated, is told in a line (exit 2) and left as it was (found in review: `careloop audit verify` with a mistyped
    path made an empty database file there and answered a traceback)."""
    missing = db.sqlite_file_missing(settings.database_url)
    if missing is not None:
        raise StartupError(f"no database at {missing}: check CARELOOP_DATABASE_URL (careloop init sets up a new "
                           "installation)")

    async def run() -> int:
        await db.open_database(settings.database_url)
        try:
            if up_to_date and (pending := await db.pending_migrations()):
                raise StartupError(f"the database is not up to date ({len(pending)} migration(s) to apply): run "
                                   "careloop migrate (careloop init sets up a new installation)")
            return await work()
        finally:
            await db.close_database()

    return asyncio.run(run())


def _with_institution(settings: Settings, institution_id: uuid.UUID, work: Callable[[], Awaitable[int]]) -> int:
    """``work`` on an institution that exists: a mistyped id is an error (exit 2), never an empty export."""
    from models import Institution

    async def checked() -> int:
        if not await Institution.exists(id=institution_id):
            print(f"careloop: no institution {institution_id} in this database", file=sys.stderr)
            return 2
        return await work()

    return _with_database(settings, checked)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(db.migrate(settings.database_url, progress=print))
    print("database is up to date")
    return 0


def _init(settings: Settings, args: argparse.Namespace) -> int:
    from resolvers import institution as institutions

    password = os.environ.get("CARELOOP_ADMIN_PASSWORD") or _prompt_password()
    # Every mistake that migrating cannot put right is told before a database is made or changed.
    _check_configuration(settings)
    institutions.check_new(args.name, args.kind, args.time_zone)
    institutions.check_new_account(args.admin_email, password)
    _migrate(settings, args)
    _refuse_a_new_key_for_sealed_data(settings)
    services = build_services(settings, create_key=True)

    async def work() -> int:
        institution = await institutions.create(services, args.name, args.kind, args.time_zone)
        await institutions.create_account(services, institution, email=args.admin_email, name=args.admin_name,
                                          password=password, roles=["admin"])
        print(f"institution {institution.id} created; admin {args.admin_email} can sign in")
        return 0

    return _with_database(settings, work)


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        raise StartupError("set CARELOOP_ADMIN_PASSWORD or run init in a terminal to type the admin password")
    password = getpass.getpass("Admin password (12+ characters): ")
    if password != getpass.getpass("Again: "):
        raise StartupError("the passwords differ")
    return password


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo import DEMO_NAME, demo_email, seed
    from resolvers.staff import check_password

    if settings.is_production:
        raise StartupError("demo data is refused in production")
    chosen = args.password or os.environ.get("CARELOOP_DEMO_PASSWORD") or None
    _check_configuration(settings)  # and a chosen password, before a database is made or changed
    if chosen is not None:
        check_password(chosen)
    _migrate(settings, args)
    _refuse_a_new_key_for_sealed_data(settings)
    services = build_services(settings, create_key=True)

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            print(f"\rdemo patients: {done}/{total}", end="\n" if done == total else "", flush=True)

    def accounts_ready(password: str | None) -> None:
        print(f"{DEMO_NAME}: accounts " + ", ".join(demo_email(r) for r in _roles()))
        print(f"The patient portal's demo account: {demo_email('patient')} (same password)")
        if password:
            print(f"Their password, shown only now: {password}")
        print("Building its patients and records...", flush=True)

    async def work() -> int:
        result = await seed(services, password=chosen, patients_count=args.patients, progress=progress,
                            accounts_ready=accounts_ready)
        if not result.created:
            print(f"{DEMO_NAME} exists already; its accounts are unchanged")
            return 0
        print(f"{DEMO_NAME} created.")
        print(f"Demo partner API client (POST /oauth/token, client credentials): id {result.partner_client_id}, "
              f"secret, shown only now: {result.partner_secret}")
        return 0

    return _with_database(settings, work)


def _check_configuration(settings: Settings) -> None:
    """Before init or demo migrate: what no migration puts right is refused in a second, leaving no database file
    behind. Production's password hashing parameters and master key (init creates none there: it says how to make
    one), a CARELOOP_MASTER_KEY that does not parse, a key file readable by others or not a key. A development
    machine without a key file gets one later, once the database is known to hold nothing sealed under a lost one
    (_refuse_a_new_key_for_sealed_data)."""
    if settings.is_production or settings.master_key or settings.key_file.exists():
        build_services(settings, create_key=True)  # writes no key file: one exists, or production makes none


def _refuse_a_new_key_for_sealed_data(settings: Settings) -> None:
    """A key file made afresh for a database whose institutions are sealed under the one that went missing would
    open none of their data: `make run` would say the demo exists, then answer every read with an error."""
    from models import Institution

    async def holds_institutions() -> int:
        return int(await Institution.exists())

    if settings.master_key or settings.key_file.exists() or not _with_database(settings, holds_institutions):
        return
    raise StartupError(f"No master key: {settings.key_file} is missing, and this database holds institutions sealed "
                       "under the key that was there. Restore it (or set CARELOOP_MASTER_KEY to it): a new key would "
                       "open none of their data.")


def _roles() -> tuple[str, ...]:
    from core.principal import ROLES

    return ROLES


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    # A bad configuration is refused before the port is bound, and before the app is imported: building the GraphQL
    # schema takes seconds (tens on a busy machine), which an operator's typo in the key should not wait for.
    build_services(settings)

    import logging.config

    import uvicorn

    from app import metrics
    from app.logs import uvicorn_log_config

    async def refuse_demo_data() -> int:
        from app.main import refuse_demo_accounts

        await refuse_demo_accounts(settings)
        return 0

    if settings.is_production:
        # a server may start before a deployment's new migrations are applied: /readyz answers 503 until they are
        _with_database(settings, refuse_demo_data, up_to_date=False)
    log_config = uvicorn_log_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(log_config)  # this process's lines too, before uvicorn's own
    if settings.metrics_port:  # before the workers start: they count into what this process serves
        metrics.serve(settings.metrics_host, settings.metrics_port, workers=args.workers)
    # proxy_headers off: the app itself takes the client's address from CARELOOP_TRUSTED_PROXIES only.
    # "auto" takes uvloop and httptools (dependencies: the event loop and HTTP parser in C) where they install,
    # and asyncio's loop and h11 where they do not (uvloop has no Windows build).
    uvicorn.run("app.asgi:app", host=args.host or settings.host, port=args.port or settings.port,
                workers=args.workers, loop="auto", http="auto", proxy_headers=False,
                log_level=settings.log_level.lower(),
                log_config=log_config,
                ws_max_size=settings.limits.max_body_bytes,  # a WebSocket message is held to the body limit
                timeout_worker_healthcheck=30)  # a worker still importing under load is not a dead one
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from app.services import load_master_key
    from audit.verify import verify_all

    if args.export or args.checkpoint or args.public_key:
        return _verify_offline(args)
    # Each chain is held against its newest signed checkpoint, whose signature must verify.
    master = load_master_key(settings)
    public = master.checkpoint_key.public_key()

    on_a_terminal = sys.stderr.isatty()  # progress on one line, rewritten; nothing of it in a captured log

    def progress(institution_id: uuid.UUID, checked: int) -> None:
        if on_a_terminal:
            print(f"\r{institution_id}: {checked} events checked", end="", file=sys.stderr, flush=True)

    async def work() -> int:
        reports = await verify_all(args.institution, progress, public=public, mac_key=master.audit_mac_key)
        if on_a_terminal:
            print(file=sys.stderr)
        bad = [r for r in reports if not r.ok]
        for report in reports:
            archived = f" (after {report.archived} archived)" if report.archived else ""
            if report.ok:
                print(f"{report.institution_id}: {report.events} events{archived}, chain intact")
            else:
                print(f"{report.institution_id}: FIRST BAD ROW seq {report.seq or '-'} "
                      f"(id {report.event_id or '-'}): {report.problem}")
        if args.institution is not None and not reports:
            print(f"{args.institution}: no audit chain", file=sys.stderr)
            return 1
        return 1 if bad else 0

    return _with_database(settings, work)


def _verify_offline(args: argparse.Namespace) -> int:
    """An export against signed checkpoints, with nothing but the three files."""
    from audit import offline
    from core.crypto import load_public_key

    if not (args.export and args.checkpoint and args.public_key):
        raise StartupError("offline verification needs --export, --checkpoint and --public-key")
    try:
        public = load_public_key(_read(args.public_key, "--public-key"))
    except ValueError:  # not PEM, or not an Ed25519 key
        raise BadUserInput(f"--public-key: {args.public_key} is not the checkpoint key's public half "
                           "(careloop audit public-key writes it).", field="--public-key") from None
    checkpoints = _checkpoints_of(args.checkpoint)
    # As bytes, each line decoded as UTF-8 by the check, as they are written, whatever the machine's locale (an
    # auditor's may be cp1252): an export keeps other scripts as they are, and one character read otherwise no longer
    # matches its hash; a line that is not UTF-8 is named, not a traceback.
    try:
        with args.export.open("rb") as lines:
            report = offline.verify(lines, checkpoints, public)
    except OSError:
        raise BadUserInput(f"--export: {args.export} cannot be read.", field="--export") from None
    if not report.ok:
        print(f"NOT VERIFIED: {report.problem}")
        return 1
    start = ("it starts at the chain's beginning" if report.first_seq == 1 else
             f"it starts at seq {report.first_seq}, linked to the signed head before it" if report.start_vouched
             else f"it starts at seq {report.first_seq}: no checkpoint vouches for what came before")
    print(f"{report.events} events, chain intact, {report.checkpoints} signed checkpoints match; {start}")
    tail = report.unverified_tail
    if report.signed_start:
        print(f"its end, seq {report.last_seq}, is signed, and its start, seq {report.first_seq}: nothing was cut "
              "from it")
    elif report.signed_end:  # an export made before the signed end named its start
        print(f"its end, seq {report.last_seq}, is signed: nothing was cut from its end")
    elif tail is None:
        print(f"its end, seq {report.last_seq}, is covered by a signed checkpoint")
    else:
        print(f"verified up to seq {report.vouched_to}; seq {tail[0]} to {tail[1]} are an unverified tail (no "
              "signed checkpoint covers them: export again, or fetch later checkpoints)")
    if report.later_checkpoints:
        print(f"{report.later_checkpoints} later checkpoints cover events recorded after this export")
    return 0


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise BadUserInput(f"{option}: {path} cannot be read.", field=option) from None


def _checkpoints_of(path: Path) -> list[Checkpoint]:
    """The signed checkpoints of a file ``careloop audit checkpoints`` wrote; a line that is none is named."""
    from audit.checkpoint import Checkpoint

    checkpoints = []
    for number, line in enumerate(_read(path, "--checkpoint").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            checkpoints.append(Checkpoint.from_json(json.loads(line.decode("utf-8"))))
        except (ValueError, KeyError, TypeError, RecursionError):  # UnicodeDecodeError and JSON's are ValueErrors
            raise BadUserInput(f"--checkpoint: line {number} of {path} is not a signed checkpoint (careloop audit "
                               "checkpoints writes them).", field="--checkpoint") from None
    return checkpoints


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    from audit import checkpoint, export, writer
    from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta

    since, until = export.parse_time(args.since, "--from"), export.parse_time(args.until, "--to")
    key = build_services(settings).master_key.checkpoint_key
    evidence = args.output if args.format == export.EVIDENCE else Path(f"{args.output}.evidence.ndjson")

    def progress(count: int) -> None:
        print(f"\r{count} events exported", end="", file=sys.stderr, flush=True)

    async def write_evidence(up_to_seq: int | None) -> export.Written:
        """The NDJSON export ended by a checkpoint signed at its last event: it verifies offline on its own."""
        with evidence.open("w", encoding="utf-8") as out:
            written = await export.write(args.institution, export.EVIDENCE, out, since=since, until=until,
                                         up_to_seq=up_to_seq, progress=progress)
            if written.count:
                out.write(export.end_line(checkpoint.sign(key, args.institution, written.last_seq,
                                                          written.last_hash, datetime.now(UTC),
                                                          first_seq=written.first_seq)))
        return written

    async def work() -> int:
        if args.format == export.EVIDENCE:
            written = await write_evidence(None)
        else:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                written = await export.write(args.institution, args.format, out, since=since, until=until,
                                             progress=progress)
            await write_evidence(written.last_seq)  # the same events, as the evidence
        print(file=sys.stderr)
        # The export is itself on the trail: who (the operator's CLI), what, which period.
        await writer.append([AuditRecord(
            args.institution, Actor("system"), Action.EXPORT, "audit_event", Outcome.ALLOWED,
            RequestMeta(request_id="cli-export", user_agent="careloop audit export"),
            fields_read=frozenset({f"format:{args.format}", f"from:{args.since or '-'}", f"to:{args.until or '-'}",
                                   f"events:{written.count}"}))])
        print(f"{written.count} events written to {args.output}")
        if evidence != args.output:
            print(f"the evidence (NDJSON, verifiable offline) written to {evidence}")
        if written.count:
            print(f"its end, seq {written.last_seq}, is signed in the evidence's last line")
        return 0

    return _with_institution(settings, args.institution, work)


def _patients_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from models import Institution
    from resolvers import patient

    services = build_services(settings)

    async def work() -> int:
        ids = [args.institution] if args.institution else [row.id for row in await Institution.all().only("id")]
        for institution_id in ids:
            print(f"{institution_id}: {await patient.reindex(services, institution_id)} patient files reindexed")
        return 0

    if args.institution:
        return _with_institution(settings, args.institution, work)
    return _with_database(settings, work)


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from resolvers import institution

    services = build_services(settings)

    async def work() -> int:
        version = await institution.rotate_key(services, args.institution)
        print(f"{args.institution}: data key version {version} added; it seals new data within about 90 s")
        return 0

    return _with_institution(settings, args.institution, work)


def _audit_retention(settings: Settings, args: argparse.Namespace) -> int:
    from audit import archive

    async def work() -> int:
        if args.months is None:
            print(f"{args.institution}: audit events are kept {await archive.retention_months(args.institution)} "
                  "months")
            return 0
        previous = await archive.set_retention(args.institution, args.months)
        print(f"{args.institution}: audit events are kept {args.months} months (were {previous})")
        return 0

    return _with_institution(settings, args.institution, work)


def _audit_archive(settings: Settings, args: argparse.Namespace) -> int:
    from audit import archive, export

    before = export.parse_time(args.before, "--before")  # before the key and the database: a typo is told at once
    public = build_services(settings).master_key.checkpoint_key.public_key()

    async def work() -> int:
        try:
            anchor = await archive.archive(args.institution, args.output, public, before)
        except FileExistsError:
            print(f"careloop: {args.output} exists; an archive never overwrites a file", file=sys.stderr)
            return 1
        except archive.ArchiveRefused as exc:
            print(f"careloop: archive refused: {exc}", file=sys.stderr)
            return 1
        if anchor is None:
            print(f"{args.institution}: nothing to archive (no event past the retention period up to a signed "
                  "checkpoint); no file written")
            return 0
        print(f"{anchor.events} events up to seq {anchor.up_to_seq} archived to {args.output} (sha256 "
              f"{anchor.sha256}) and removed from the database. Verify the file offline with the checkpoints up "
              f"to that seq: careloop audit checkpoints --institution {args.institution} --to-seq "
              f"{anchor.up_to_seq} --output FILE")
        return 0

    return _with_institution(settings, args.institution, work)


def _audit_checkpoints(settings: Settings, args: argparse.Namespace) -> int:
    from audit import checkpoint, export

    until = export.parse_time(args.until, "--to")

    async def work() -> int:
        found = [c for c in await checkpoint.of_institution(args.institution, until)
                 if args.to_seq is None or c.last_seq <= args.to_seq]
        with args.output.open("w", encoding="utf-8") as out:
            for item in found:
                out.write(json.dumps(item.to_json(), separators=(",", ":")) + "\n")
        print(f"{len(found)} checkpoints written to {args.output}")
        return 0

    return _with_institution(settings, args.institution, work)


def _audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    from audit import checkpoint

    services = build_services(settings)

    async def work() -> int:
        taken = await checkpoint.take_due(services.master_key.checkpoint_key, every_events=1, every_seconds=0)
        for item in taken:
            print(f"{item.institution_id}: signed at seq {item.last_seq}")
        return 0

    return _with_database(settings, work)


def _audit_public_key(settings: Settings, args: argparse.Namespace) -> int:
    from core.crypto import public_key_pem

    pem = public_key_pem(build_services(settings).master_key.checkpoint_key)
    if args.output:
        args.output.write_bytes(pem)
    else:
        sys.stdout.write(pem.decode())
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from app import backup

    master = build_services(settings).master_key
    try:
        manifest = asyncio.run(backup.backup(settings.database_url, settings.attachment_dir, master, args.output))
    except backup.BackupRefused as exc:
        print(f"careloop: backup refused: {exc}", file=sys.stderr)
        return 1
    print(f"backup written to {args.output}: the {manifest.backend} database at migration "
          f"{manifest.migrations[-1] if manifest.migrations else '-'}, {len(manifest.attachments)} attachment files. "
          f"It holds no master key: restoring needs the key with fingerprint {manifest.key_fingerprint}")
    return 0


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from app import backup

    master = build_services(settings).master_key
    try:
        restored = asyncio.run(backup.restore(settings.database_url, settings.attachment_dir, master, args.input,
                                              progress=print, accept_unauthenticated=args.accept_unauthenticated))
    except backup.BackupRefused as exc:
        print(f"careloop: restore refused: {exc}", file=sys.stderr)
        return 1
    if not restored.authenticated:
        print("careloop: the backup's manifest is not authenticated (no MAC): restored as you accepted, and "
              "recorded so on the system chain", file=sys.stderr)
    print(f"restored the backup of {restored.manifest.created_at}: {restored.institutions} institutions, their keys "
          "open with this master key. Check the audit trail next: careloop audit verify")
    if restored.missing_files:
        print(f"careloop: {restored.missing_files} files the database names are missing from "
              f"{settings.attachment_dir}", file=sys.stderr)
        return 1
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from schema.root import build_schema

    sdl = str(build_schema(settings.limits, production=False)) + "\n"
    if args.output:
        args.output.write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
