"""Retention and archiving of the audit trail.

Each institution keeps its audit events for its retention period (``audit_retention_months``:
default 72, at least 6). An archive run (``careloop audit archive``, run by an operator as the
database's owner) moves the oldest stretch of a chain that is past that period to an NDJSON file
in the format of ``careloop audit export``, leaves an anchor (``AuditArchive``) where the stretch
ends, and deletes exactly those events and their per-patient index rows. Verification then starts
from the newest anchor.

Why a stretch always ends at a signed checkpoint: the file's last hash is then signed, so the
file verifies offline against the checkpoints up to its end, and the first event left in the
database links to a signed head hash, so an export of what remains verifies too. At most one
checkpoint interval of old events waits for the next run.

Why the file is written and checked before the transaction: the events of a stretch can no longer
change, and holding a transaction open while streaming millions of rows to disk would stall the
institution's audit writes. The transaction only anchors, deletes and records; a concurrent run
over the same events makes the anchor clash or the deleted count differ, and rolls back.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from audit import export, offline, verify, writer
from audit.checkpoint import Checkpoint
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from core.db import placeholders
from core.errors import BadUserInput, NotFound
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent, AuditPatientIndex, Institution
from models.institution import AUDIT_RETENTION_DEFAULT_MONTHS, AUDIT_RETENTION_MIN_MONTHS

MAX_MONTHS = 1200  # a century: beyond it the cut-off date leaves the calendar
OPERATOR = Actor("system")  # the CLI, run by an operator
RETENTION_BY_CLI = RequestMeta(request_id="cli-retention", user_agent="careloop audit retention")
ARCHIVE_BY_CLI = RequestMeta(request_id="cli-archive", user_agent="careloop audit archive")


class ArchiveRefused(Exception):
    """The archive file did not verify, or another run archived the same events: nothing was deleted."""


@dataclass(frozen=True)
class Stretch:
    """The events an archive run takes: ``after_seq`` < seq <= ``up_to_seq``, all older than ``cutoff``."""

    institution_id: uuid.UUID
    after_seq: int
    up_to_seq: int
    up_to_hash: str  # the signed head hash of the checkpoint at up_to_seq
    cutoff: datetime

    @property
    def events(self) -> int:
        return self.up_to_seq - self.after_seq


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` less whole calendar months, in UTC, the day capped at the month's last
    (31 August less 6 months is 28 or 29 February), as the database triggers count."""
    moment = moment.astimezone(UTC)
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


async def retention_months(institution_id: uuid.UUID) -> int:
    if institution_id == writer.SYSTEM_CHAIN:  # no institution row: the default applies
        return AUDIT_RETENTION_DEFAULT_MONTHS
    institution = await Institution.get_or_none(id=institution_id)
    if institution is None:
        raise NotFound("No such institution.")
    return institution.audit_retention_months


async def set_retention(institution_id: uuid.UUID, months: int, *, actor: Actor = OPERATOR,
                        request: RequestMeta = RETENTION_BY_CLI) -> int:
    """Change an institution's retention period, on its audit chain; returns the previous one."""
    if not AUDIT_RETENTION_MIN_MONTHS <= months <= MAX_MONTHS:
        raise BadUserInput(f"The audit retention period must be {AUDIT_RETENTION_MIN_MONTHS} to {MAX_MONTHS} "
                           "months.", field="months")
    async with in_transaction():
        institution = await Institution.select_for_update().get_or_none(id=institution_id)
        if institution is None:
            raise NotFound("No such institution.")
        previous = institution.audit_retention_months
        await Institution.filter(id=institution_id).update(audit_retention_months=months, version=F("version") + 1)
        await writer.append([AuditRecord(institution_id, actor, Action.RETENTION, "institution", Outcome.ALLOWED,
                                         request, resource_id=institution_id,
                                         fields_read=frozenset({f"from:{previous}", f"to:{months}"}))])
    return previous


async def plan(institution_id: uuid.UUID, before: datetime | None = None) -> Stretch | None:
    """What an archive run would take now: the longest stretch after the newest anchor that is older
    than the retention period (and than ``before``) and ends at a signed checkpoint; None if none."""
    months = await retention_months(institution_id)
    cutoff = months_before(datetime.now(UTC), months)
    if before is not None:
        if before > cutoff:
            raise BadUserInput(f"Only events older than the retention period ({months} months) may be archived: "
                               f"choose a time before {cutoff.isoformat(timespec='seconds')}.", field="before")
        cutoff = before
    after_seq = await archived_up_to(institution_id)
    await writer.seal(institution_id)
    young = await AuditEvent.filter(institution_id=institution_id, seq__gt=after_seq, occurred_at__gte=cutoff
                                    ).order_by("seq").limit(1).values_list("seq", flat=True)
    signed = AuditCheckpoint.filter(institution_id=institution_id, last_seq__gt=after_seq)
    if young:
        signed = signed.filter(last_seq__lt=young[0])
    end = await signed.order_by("-last_seq").first()
    return None if end is None else Stretch(institution_id, after_seq, end.last_seq, end.head_hash, cutoff)


async def archived_up_to(institution_id: uuid.UUID) -> int:
    """The last sequence number archived so far (0 when nothing was)."""
    newest = await AuditArchive.filter(institution_id=institution_id).order_by("-up_to_seq").first()
    return newest.up_to_seq if newest else 0


# The head by its primary key, the newest anchor by the anchors' unique (institution_id, up_to_seq): two index
# lookups whatever the trail's length. Both values are the chain's id.
_HELD = ('SELECT "last_seq" - coalesce((SELECT max("up_to_seq") FROM "audit_archive" WHERE "institution_id" = {0}), 0)'
         ' AS "held" FROM "audit_chain_head" WHERE "institution_id" = {1}')


async def events_held(institution_id: uuid.UUID) -> int:
    """How many of the chain's events the database holds, as ``count(*)`` would say, without reading them: the
    head's sequence number less the newest anchor's.

    The rows held are always seq newest anchor + 1 to head, each once. The writer links events at head + 1, + 2, ...
    and moves the head to the last in the same transaction (``_append_to_chain``, PostgreSQL's ``audit_link``; a link
    that fails leaves neither), and seq is unique per chain. A row may go only once an anchor covers it (0011), and
    an archive run deletes all of (newest anchor, its own] in the transaction that adds its anchor, or rolls back
    (``_anchor_and_delete``); the head never moves back (0014), and the service role adds no anchor. One statement
    reads the head and the anchor in one snapshot, so no commit falls between them. Events waiting in PostgreSQL's
    inbox are no rows yet, and counted by neither. ``careloop audit verify`` checks this very equation (head =
    archived + events): a trail edited by hand may break it, and fails verification."""
    db = AuditChainHead._meta.db
    chain = str(institution_id)  # as both drivers bind a UUID column
    rows = await db.execute_query_dict(_HELD.format(*placeholders(db, 2)), [chain, chain])
    return int(rows[0]["held"]) if rows else 0  # no head yet: no events either


async def archive(institution_id: uuid.UUID, output: Path, public: Ed25519PublicKey,
                  before: datetime | None = None) -> AuditArchive | None:
    """Archive the stretch ``plan`` finds to a new file ``output``; None (and no file) if there is none."""
    stretch = await plan(institution_id, before)
    if stretch is None:
        return None
    macs_from = await _macs_from(stretch)
    await _check_macs(stretch, macs_from)
    sha256 = await _write_and_check(stretch, output, public)
    return await _anchor_and_delete(stretch, sha256, macs_from)


async def _macs_from(stretch: Stretch) -> int | None:
    """Where the chain's MACs began: as the previous run recorded it, else the first event still held that carries
    one; None if none does yet. The run records it on the chain, so that verify asks a MAC of every event after the
    anchor from there, the events that carried them being in a file without their MACs."""
    previous = await AuditArchive.filter(institution_id=stretch.institution_id, up_to_seq=stretch.after_seq).first()
    recorded = verify.macs_from_record(await verify.record_of(previous)) if previous else None
    if recorded is not None:
        return recorded
    first = await (AuditEvent.filter(institution_id=stretch.institution_id, seq__gt=stretch.after_seq)
                   .exclude(mac="").order_by("seq").first())
    return first.seq if first else None


async def _check_macs(stretch: Stretch, macs_from: int | None) -> None:
    """Each event of the stretch must carry a valid MAC once MACs began, as verify asks (checked with the key this
    process appends with, the master key's): the file holds no MACs, so a stretch holding an event posted without
    the key is not archived, and verify keeps naming it. Checked before the file is written: nothing is left."""
    key = writer.current_mac_key()
    if key is None:
        return
    found = await verify.stretch_mac_problem(stretch.institution_id, stretch.after_seq, stretch.up_to_seq, key,
                                             macs_from)
    if found is not None:
        seq, problem = found
        raise ArchiveRefused(f"seq {seq}: {problem}; nothing was written or deleted")


async def _write_and_check(stretch: Stretch, output: Path, public: Ed25519PublicKey) -> str:
    """Write the stretch to a new file, make it durable, read it back and verify it against the
    signed checkpoints as an auditor would. Returns the file's SHA-256."""
    with output.open("x", encoding="utf-8", newline="") as out:  # never overwrite an earlier archive
        await export.write(stretch.institution_id, "ndjson", out, after_seq=stretch.after_seq,
                           up_to_seq=stretch.up_to_seq)
        out.flush()
        os.fsync(out.fileno())
    _fsync_directory(output.parent)
    # Those inside the stretch, and the one it starts after, which its first event must link to.
    signed = [Checkpoint.of(row) for row in await AuditCheckpoint.filter(
        institution_id=stretch.institution_id, last_seq__gte=stretch.after_seq, last_seq__lte=stretch.up_to_seq)]
    digest = hashlib.sha256()
    report = offline.verify(_hashed_lines(output, digest.update), signed, public)
    if not report.ok or report.events != stretch.events:
        problem = report.problem or f"{report.events} events instead of {stretch.events}"
        raise ArchiveRefused(f"{output} does not verify ({problem}); nothing was deleted")
    return digest.hexdigest()


def _hashed_lines(path: Path, update: Callable[[bytes], None]) -> Iterator[str]:
    """The file's lines, fed to a digest as they are read: one pass over a large archive."""
    with path.open("rb") as lines:
        for line in lines:
            update(line)
            yield line.decode()


def _fsync_directory(path: Path) -> None:
    """The new file's directory entry must survive a crash too."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _anchor_and_delete(stretch: Stretch, sha256: str, macs_from: int | None) -> AuditArchive:
    """Anchor, delete and record the run in one transaction. The record is appended at the head,
    after the stretch, so a run never archives its own record."""
    async with in_transaction():
        try:
            anchor = await AuditArchive.create(
                institution_id=stretch.institution_id, up_to_seq=stretch.up_to_seq, up_to_hash=stretch.up_to_hash,
                archived_at=datetime.now(UTC), events=stretch.events, sha256=sha256)
        except IntegrityError:  # another run anchored at the same event meanwhile (or the trigger refused)
            raise ArchiveRefused("another run archived these events meanwhile; nothing was deleted") from None
        deleted = await AuditEvent.filter(institution_id=stretch.institution_id, seq__gt=stretch.after_seq,
                                          seq__lte=stretch.up_to_seq).delete()
        if deleted != stretch.events:  # another run took some of them meanwhile
            raise ArchiveRefused(f"{deleted} of {stretch.events} events were still there; nothing was deleted")
        # Their index rows go with them (the index's trigger lets only rows of archived, deleted events go).
        await AuditPatientIndex.filter(institution_id=stretch.institution_id, seq__gt=stretch.after_seq,
                                       seq__lte=stretch.up_to_seq).delete()
        await writer.append([AuditRecord(
            stretch.institution_id, OPERATOR, Action.ARCHIVE_TRAIL, "audit_archive", Outcome.ALLOWED,
            ARCHIVE_BY_CLI, resource_id=anchor.id,
            fields_read=frozenset({f"up_to_seq:{stretch.up_to_seq}", f"events:{stretch.events}",
                                   f"before:{stretch.cutoff.isoformat()}", f"sha256:{sha256}",
                                   *([f"{verify.MACS_FROM}{macs_from}"] if macs_from is not None else [])}))])
    return anchor
