"""Chain verification: recompute every chain and name the first row that does not fit.

A chain whose start was archived (``audit/archive.py``) is walked from its newest archive anchor:
the first event left must link to the anchor's hash, itself a signed checkpoint's head hash.

The chain head row says where a chain ends, but nothing signs it: whoever can delete the last
events can move it back with them. So every chain is also held against its newest signed
checkpoint, as the offline check holds an export (``audit/offline.py``): a checkpoint beyond the
last event means the tail was cut off, and another hash at its sequence number means the chain
was rewritten. A chain without a head row is reported (HEAD_MISSING) whenever it has begun: an event, an archive
anchor or a signed checkpoint (the writer refuses to append to it, ``writer.ChainHeadMissing``); only an institution
with none of them has no chain yet.

The per-patient index (``AuditPatientIndex``) is held against the events it indexes: each event's patients,
which its hash covers, must be exactly its index rows, and no index row may name an event that is not there.
Each event is checked whole (its link and hash, then its index rows) before the next, so the first bad row
is named whichever of the two went wrong.

Each event's MAC (``audit.writer.mac``, under a key derived from the master key) is checked when the key is given:
a row posted by someone who could insert but holds no key is named, and once a chain's events carry MACs a later
event without one is named too, also after an archive anchor: the run records where the MACs began (``macs_from``
in its own event), so the first events after the anchor cannot go without one. Events still waiting in PostgreSQL's
inbox to be sealed are checked the same way (``inbox_problem``): their hash does not exist yet, their MAC does.

The walk can also be bounded (``Stretch``, ``verify_stretch``): at most so many events from a sequence number, linked to
the event before them as stored, for a request that must end in time (``resolvers/audit_chain.py``). Its checkpoints
are those within the stretch; the chain-wide checks (the newest checkpoint's coverage, the archive run's record, stray
index rows, PostgreSQL's inbox) run when a stretch reaches the head. Every fault has a kind (``Fault``) besides its
words: the same walk, the same names, for the CLI and the API.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.queryset import QuerySet

from audit import offline, writer
from audit.chain import GENESIS_HASH, HASHED_COLUMNS, body_around, canonical, hash_of_pieces, patients_of
from audit.checkpoint import Checkpoint
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent, AuditPatientIndex

BATCH = 2000
# Told each chain's events checked so far, after every batch; it may return an awaitable, awaited before the next.
Progress = Callable[[uuid.UUID, int], Awaitable[None] | None]


class Fault(enum.StrEnum):
    """What kind of fault a report names: for machines (the API), beside its words (``ChainReport.problem``)."""

    SEQUENCE_GAP = "sequence_gap"  # an event is missing: the next one there is named
    TRUNCATED = "truncated"  # events are missing at the end: the head, or a signed checkpoint, says more
    BROKEN_LINK = "broken_link"  # an event does not link to the hash of the one before it
    HASH_MISMATCH = "hash_mismatch"  # an event's content does not match its hash
    MAC_MISMATCH = "mac_mismatch"  # an event's MAC was not made with this deployment's key
    MAC_MISSING = "mac_missing"  # an event carries no MAC, though earlier events of the chain do
    INDEX_MISMATCH = "index_mismatch"  # the per-patient index does not match the events it indexes
    CHECKPOINT_SIGNATURE = "checkpoint_signature"  # a signed checkpoint's signature does not verify
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # the event at a signed checkpoint has another hash than it signed
    HEAD_MISSING = "head_missing"  # a chain that has begun (an event, an anchor, a checkpoint) has no head
    ARCHIVE_ANCHOR = "archive_anchor"  # the archive anchor is not what was signed and recorded, or events lie under it
    REPLAYED_EVENT = "replayed_event"  # an event older than what was archived was linked after the archive run
    INBOX = "inbox"  # a row of PostgreSQL's inbox is not careloop's writer's, or one the chain misses


@dataclasses.dataclass(frozen=True)
class ChainReport:
    institution_id: uuid.UUID
    events: int  # checked: those in the database, after the newest archive anchor
    problem: str = ""  # empty when the chain verifies
    seq: int | None = None  # the first bad row's sequence number
    event_id: uuid.UUID | None = None
    archived: int = 0  # events before them, archived to files (seq 1 to this)
    # What was verified, beside what the CLI has always compared and printed (left out of equality and repr): the
    # fault's kind; the first event checked, the last that verified and its hash; the chain's head as the walk ended;
    # whether the walk reached it (False: a bounded stretch stopped short, the chain-wide checks did not run); the
    # newest signed checkpoint the events checked were held against, and whether its signature verified.
    kind: Fault | None = dataclasses.field(default=None, compare=False, repr=False)
    first_seq: int | None = dataclasses.field(default=None, compare=False, repr=False)
    last_seq: int | None = dataclasses.field(default=None, compare=False, repr=False)
    last_hash: str = dataclasses.field(default="", compare=False, repr=False)
    head_seq: int | None = dataclasses.field(default=None, compare=False, repr=False)
    complete: bool = dataclasses.field(default=True, compare=False, repr=False)
    held_against: Checkpoint | None = dataclasses.field(default=None, compare=False, repr=False)
    held_signature_valid: bool | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problem

    def failed(self, problem: str, kind: Fault = Fault.INBOX) -> ChainReport:
        """The report of a chain that verified up to its head, with a problem found beside it (the inbox)."""
        return dataclasses.replace(self, problem=problem, seq=None, event_id=None, kind=kind)

    def fault(self, problem: str, kind: Fault, seq: int | None, event_id: uuid.UUID | None = None) -> ChainReport:
        return dataclasses.replace(self, problem=problem, kind=kind, seq=seq, event_id=event_id)


@dataclasses.dataclass(frozen=True)
class Stretch:
    """The part of a chain one walk checks: from ``start`` (None: the chain's first event held, after the newest
    archive anchor), at most ``limit`` events (None: up to the head). A stretch starting later links to the event
    before it as stored; ``start_hash``, when given, is the hash that event had when a previous stretch verified it
    (a cursor's): another one now names it."""

    start: int | None = None
    limit: int | None = None
    start_hash: str | None = None


WHOLE = Stretch()


async def verify_all(
    institution_id: uuid.UUID | None = None, progress: Progress | None = None, *,
    public: Ed25519PublicKey | None = None, mac_key: bytes | None = None,
) -> list[ChainReport]:
    """Every chain with a head, and every chain an event, an archive anchor or a signed checkpoint names (a deleted
    head must not hide a chain). ``public`` is the checkpoint key's public half (the CLI derives it from the master
    key): the signatures of the checkpoints a chain is held against must verify with it. Without it
    only their sequence numbers and hashes are compared. ``mac_key`` (``MasterKey.audit_mac_key``) checks each
    event's MAC, and those of the events waiting in the inbox."""
    heads = AuditChainHead.all()
    if institution_id is not None:
        heads = heads.filter(institution_id=institution_id)
    chains: dict[uuid.UUID, AuditChainHead | None] = {head.institution_id: head for head in await heads}
    if institution_id is not None:
        if institution_id not in chains and await writer.chain_started(institution_id):
            chains[institution_id] = None
    else:  # the chains without a head, by what names them (each a scan of an index on institution_id first)
        for model in (AuditCheckpoint, AuditArchive, AuditEvent):
            for chain in await model.all().distinct().values_list("institution_id", flat=True):
                chains.setdefault(uuid.UUID(str(chain)), None)
    reports = [await verify_chain(chain, chains[chain], progress, public=public, mac_key=mac_key)
               for chain in sorted(chains)]
    return [await _beside_the_chain(report, mac_key) for report in reports]


async def verify_stretch(institution_id: uuid.UUID, stretch: Stretch, *, public: Ed25519PublicKey | None = None,
                         mac_key: bytes | None = None) -> ChainReport | None:
    """One chain's ``stretch`` (``verify_all``'s checks, bounded), then its inbox when the stretch reached the head;
    None when the institution has no chain yet (no head, no event, no archive anchor, no checkpoint)."""
    head = await AuditChainHead.get_or_none(institution_id=institution_id)
    if head is None and not await writer.chain_started(institution_id):
        return None
    report = await verify_chain(institution_id, head, public=public, mac_key=mac_key, stretch=stretch)
    return await _beside_the_chain(report, mac_key) if report.complete else report


async def _beside_the_chain(report: ChainReport, mac_key: bytes | None) -> ChainReport:
    """A chain that verified, held against PostgreSQL's inbox: the rows set aside, and (with the key) those
    waiting."""
    if report.ok:
        report = await rejected_problem(report, mac_key)
    if report.ok and mac_key is not None:
        report = await inbox_problem(report, mac_key)
    return report


async def verify_chain(institution_id: uuid.UUID, head: AuditChainHead | None,
                       progress: Progress | None = None, *,
                       public: Ed25519PublicKey | None = None, mac_key: bytes | None = None,
                       stretch: Stretch = WHOLE) -> ChainReport:
    """Walk the chain from the newest archive anchor (from the genesis hash at seq 1 if none), or from where
    ``stretch`` starts, to the head (at most ``stretch.limit`` events), then hold it against its newest signed
    checkpoint."""
    anchor = await AuditArchive.filter(institution_id=institution_id).order_by("-up_to_seq").first()
    archived, prev_hash = (anchor.up_to_seq, anchor.up_to_hash) if anchor else (0, GENESIS_HASH)
    newest_row = await AuditCheckpoint.filter(institution_id=institution_id).order_by("-last_seq").first()
    newest = Checkpoint.of(newest_row) if newest_row else None
    said = _Sayer(institution_id, archived, newest, public)
    if newest is not None and public is not None and offline.first_forged([newest], public) is not None:
        return said.fault(0, offline.forged_problem(newest), Fault.CHECKPOINT_SIGNATURE, newest.last_seq)
    bad_anchor = await _anchor_problem(anchor, public) if anchor else await _below_genesis(said)
    if bad_anchor:
        return bad_anchor
    if head is None:  # verify_all and verify_stretch pass none only for a chain that has begun
        return await _head_missing(said, newest, stretch)
    said.head_seq = head.last_seq
    expected_seq, checked, macs_began = archived + 1, 0, False
    if stretch.start is not None and stretch.start > expected_seq:
        linked = await _event_before(institution_id, stretch.start)
        if linked is None and head.last_seq < stretch.start - 1:  # the head went back below what was verified
            return said.fault(0, f"rows missing after the last event: a previous stretch verified seq "
                                 f"{stretch.start - 1}", Fault.TRUNCATED, head.last_seq + 1)
        if linked is None:
            return said.fault(0, f"sequence gap: expected {stretch.start - 1}", Fault.SEQUENCE_GAP,
                              stretch.start - 1)
        if stretch.start_hash is not None and linked["hash"] != stretch.start_hash:
            return said.fault(0, "the event's hash changed since a previous stretch verified it", Fault.HASH_MISMATCH,
                              stretch.start - 1, linked["id"])
        expected_seq, prev_hash, macs_began = stretch.start, linked["hash"], bool(linked["mac"])
    said.first_seq = expected_seq
    signed_seq = newest.last_seq if newest else None
    # The hash (and row id) at the checkpoint's sequence number: the anchor's (or the event's before the stretch)
    # when the walk starts right after it.
    at_signed: tuple[str, uuid.UUID | None] | None = (prev_hash, None) if signed_seq == expected_seq - 1 else None
    # The run that cut the anchor appended its archive_trail event after it, saying from which event on the chain
    # carries MACs: every event after the anchor from there must carry one, though the stretch went to a file.
    record = await record_of(anchor) if anchor else None
    macs_from = macs_from_record(record)
    walked = 0  # the stretch's bound counts every event walked, those an archive run took mid-walk too
    while True:
        size = BATCH if stretch.limit is None else min(BATCH, stretch.limit - walked)
        rows = (
            await AuditEvent.filter(institution_id=institution_id, seq__gte=expected_seq)
            .order_by("seq")
            .limit(size)
            .values(*HASHED_COLUMNS, "hash", "mac")
        )
        indexed = await _indexed(institution_id, rows)
        for row in rows:
            newer = await _newer_anchor(institution_id, archived, expected_seq) if row["seq"] > expected_seq else None
            if newer is not None:
                # An archive run committed during the walk and deleted the events ahead of it: walk on from its
                # anchor, held to its signed checkpoint and its record as the first one was.
                bad_anchor = await _anchor_problem(newer, public)
                if bad_anchor:
                    return bad_anchor
                anchor, archived, prev_hash = newer, newer.up_to_seq, newer.up_to_hash
                expected_seq, checked = archived + 1, 0
                said.archived, said.first_seq = archived, expected_seq
                record = await record_of(anchor)
                macs_from = macs_from_record(record)
                if signed_seq == archived:
                    at_signed = (prev_hash, None)
            before, between = body_around(row)  # the body, once, for its hash and its MAC
            content_hash = hash_of_pieces(before, between, row["seq"], row["prev_hash"])
            macs_began = macs_began or (macs_from is not None and row["seq"] >= macs_from)
            fault = (_problem(row, expected_seq, prev_hash, content_hash) or _index_problem(row, indexed)
                     or _mac_problem(row, mac_key, macs_began, before, between))
            macs_began = macs_began or bool(row["mac"])
            if fault:
                return said.fault(checked, fault[1], fault[0], row["seq"], row["id"])
            if row["seq"] == signed_seq:
                at_signed = (row["hash"], row["id"])
            prev_hash, expected_seq, checked, walked = row["hash"], expected_seq + 1, checked + 1, walked + 1
        if progress:
            told = progress(institution_id, checked)
            if inspect.isawaitable(told):
                await told
        said.last_seq, said.last_hash = expected_seq - 1, prev_hash
        bounded = stretch.limit is not None and walked >= stretch.limit
        if len(rows) == size and not bounded:
            continue
        if head.last_seq == expected_seq - 1 and head.last_hash == prev_hash:
            break
        if bounded:  # stopped short of the head: what this stretch holds, and no more
            return await _stopped_short(said, checked, public)
        # The head was read before the walk (``verify_all`` reads every chain's first): events appended since
        # moved it on, walked past it or landing after the last batch. Read again, a head that moved says where
        # the chain ends now (walk on to it); one that did not means rows are missing (or were added past it).
        moved = await AuditChainHead.get_or_none(institution_id=institution_id)
        if moved is None or moved.last_seq <= head.last_seq:
            return said.fault(checked, "rows missing after the last event", Fault.TRUNCATED, expected_seq)
        head = moved
        said.head_seq = head.last_seq
    end = expected_seq - 1
    if newest is not None:
        if at_signed is None and newest.last_seq < (said.first_seq or 0):  # signed before the stretch
            at_signed = (anchor.up_to_hash, None) if anchor is not None and newest.last_seq == archived \
                else await _stored_at(institution_id, newest.last_seq)
        signed_hash, signed_id = at_signed or (None, None)
        problem = offline.coverage_problem(newest, end, signed_hash, "the chain")
        if problem:
            cut = newest.last_seq > end
            return said.fault(checked, problem, Fault.TRUNCATED if cut else Fault.CHECKPOINT_MISMATCH,
                              end + 1 if cut else newest.last_seq, None if cut else signed_id)
        found = await _checkpoint_problem(institution_id, archived, end, public, low=_low(said))
        if found is not None:
            return said.fault(checked, found[1], found[3], found[0], found[2])
    if anchor is not None and record is None:
        return said.fault(checked, f"no archive_trail event records the archive anchor at seq {archived}: events "
                                   "were deleted under an anchor written by hand", Fault.ARCHIVE_ANCHOR, archived)
    if anchor is not None and record is not None and (unlike := _unlike_its_record(anchor, record)):
        return said.fault(checked, unlike, Fault.ARCHIVE_ANCHOR, archived)
    replayed = await _replayed_after(anchor, record) if anchor is not None and record is not None else None
    if replayed is not None:
        return said.fault(checked, "an event stamped before the archive run's cutoff was linked after the run: an "
                                   "archived event replayed", Fault.REPLAYED_EVENT, replayed.seq, replayed.id)
    # after the cut checks: a cut tail leaves its index rows behind, and the cut is what to name
    stray = await _stray_index_row(institution_id, archived, end)
    if stray is not None:
        return said.fault(checked, "a patient index row names no event of the chain", Fault.INDEX_MISMATCH, stray)
    return said.report(checked, newest)


@dataclasses.dataclass
class _Sayer:
    """What a walk has verified so far, for the report it ends with, whichever way it ends."""

    institution_id: uuid.UUID
    archived: int
    newest: Checkpoint | None
    public: Ed25519PublicKey | None
    head_seq: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = ""

    def report(self, checked: int, held_against: Checkpoint | None, *, complete: bool = True) -> ChainReport:
        valid = None if held_against is None or self.public is None else held_against.signed_by(self.public)
        return ChainReport(self.institution_id, checked, archived=self.archived, first_seq=self.first_seq,
                           last_seq=self.last_seq if checked else None, last_hash=self.last_hash if checked else "",
                           head_seq=self.head_seq, complete=complete, held_against=held_against,
                           held_signature_valid=valid)

    def fault(self, checked: int, problem: str, kind: Fault, seq: int | None,
              event_id: uuid.UUID | None = None) -> ChainReport:
        """A fault: the chain is held against its newest checkpoint, whose signature the report tells."""
        return self.report(checked, self.newest).fault(problem, kind, seq, event_id)


async def _head_missing(said: _Sayer, newest: Checkpoint | None, stretch: Stretch) -> ChainReport:
    """A chain that has begun without its head row: named by what says it was there, the newest signed checkpoint or
    else its events (or its archive anchor), from the chain's first event held (or the stretch's start). Nothing is
    walked: without the head there is no end to hold the events to."""
    said.first_seq = max(stretch.start or 0, said.archived + 1)
    if newest is not None:
        said_by = f"a signed checkpoint covers seq {newest.last_seq}"
    else:
        held = AuditEvent.filter(institution_id=said.institution_id)
        first, last = await held.order_by("seq").first(), await held.order_by("-seq").first()
        said_by = (f"the chain holds events from seq {first.seq} to {last.seq}"
                   if first is not None and last is not None else f"an archive anchor covers seq {said.archived}")
    return said.fault(0, f"the chain head is missing: {said_by}", Fault.HEAD_MISSING, None)


def _low(said: _Sayer) -> int | None:
    """The lowest checkpoint a stretch holds: the one at the event before it, when it starts after the anchor
    (None: every checkpoint, as the whole chain's walk holds them)."""
    start = said.first_seq
    return None if start is None or start - 1 <= said.archived else start - 1


async def _stopped_short(said: _Sayer, checked: int, public: Ed25519PublicKey | None) -> ChainReport:
    """A bounded stretch that ended before the head: held against the checkpoints within it only."""
    end = said.last_seq if said.last_seq is not None else said.archived
    found = await _checkpoint_problem(said.institution_id, said.archived, end, public, low=_low(said), high=end)
    if found is not None:
        return said.fault(checked, found[1], found[3], found[0], found[2])
    low = _low(said) if _low(said) is not None else said.archived
    within = await AuditCheckpoint.filter(institution_id=said.institution_id, last_seq__gte=low,
                                          last_seq__lte=end).order_by("-last_seq").first()
    return said.report(checked, Checkpoint.of(within) if within else None, complete=False)


async def _event_before(institution_id: uuid.UUID, start: int) -> dict | None:
    """The event a stretch starting at ``start`` links to: its hash, its id, its MAC (MACs began if it carries
    one); None when it is missing."""
    rows = await AuditEvent.filter(institution_id=institution_id, seq=start - 1).limit(1).values("id", "hash", "mac")
    return rows[0] if rows else None


async def _stored_at(institution_id: uuid.UUID, seq: int) -> tuple[str, uuid.UUID | None] | None:
    found = await AuditEvent.filter(institution_id=institution_id, seq=seq).limit(1).values_list("hash", "id")
    return (str(found[0][0]), found[0][1]) if found else None


async def _checkpoint_problem(institution_id: uuid.UUID, archived: int, end: int, public: Ed25519PublicKey | None, *,
                              low: int | None = None, high: int | None = None
                              ) -> tuple[int, str, uuid.UUID | None, Fault] | None:
    """The first of the chain's checkpoints (seq, problem, event id, kind) that does not hold, as the offline check
    would find it given them all: its signature (with ``public``), and, within the events held (``archived`` < seq <=
    ``end``), its head hash against its event's. The newest is held by the walk; those below it were not, so one
    inserted or altered by hand failed the auditor's check only. ``BATCH`` checkpoints and their events at a time.
    A stretch holds those from ``low`` to ``high`` only (None: no bound)."""
    after = -1 if low is None else low - 1
    while True:
        within = AuditCheckpoint.filter(institution_id=institution_id, last_seq__gt=after)
        if high is not None:
            within = within.filter(last_seq__lte=high)
        batch = [Checkpoint.of(row) for row in await within.order_by("last_seq").limit(BATCH)]
        if not batch:
            return None
        held = {int(seq): (str(hash_), event_id) for seq, hash_, event_id in await AuditEvent.filter(
            institution_id=institution_id, seq__in=[c.last_seq for c in batch if archived < c.last_seq <= end]
        ).values_list("seq", "hash", "id")}
        for signed in batch:
            if public is not None and not signed.signed_by(public):
                return signed.last_seq, offline.forged_problem(signed), None, Fault.CHECKPOINT_SIGNATURE
            if archived < signed.last_seq <= end:
                hash_at, event_id = held.get(signed.last_seq, (None, None))
                problem = offline.coverage_problem(signed, end, hash_at, "the chain")
                if problem:
                    return signed.last_seq, problem, event_id, Fault.CHECKPOINT_MISMATCH
        after = batch[-1].last_seq


async def _newer_anchor(institution_id: uuid.UUID, archived: int, expected_seq: int) -> AuditArchive | None:
    """The newest anchor, when one newer than the walk's covers every event the walk has yet to check before a gap
    (up to ``expected_seq`` - 1 at least): an archive run committed during the walk. The walk reads it once at its
    start and then a batch at a time, so a run committing between two batches (or between the anchor and the first)
    deleted events the walk had not reached; a gap no newer anchor covers is a gap."""
    newest = await AuditArchive.filter(institution_id=institution_id).order_by("-up_to_seq").first()
    if newest is None or newest.up_to_seq <= archived or newest.up_to_seq < expected_seq - 1:
        return None
    return newest


async def _anchor_problem(anchor: AuditArchive, public: Ed25519PublicKey | None) -> ChainReport | None:
    """An anchor must match the signed checkpoint it was cut at, and nothing may remain (or have
    been inserted) at or below it: such rows would escape verification."""
    institution_id, seq = anchor.institution_id, anchor.up_to_seq
    signed = await AuditCheckpoint.filter(institution_id=institution_id, last_seq=seq).first()
    if signed is None or signed.head_hash != anchor.up_to_hash:
        return ChainReport(institution_id, 0, "the archive anchor does not match a signed checkpoint", seq,
                           None, seq, kind=Fault.ARCHIVE_ANCHOR)
    if public is not None and offline.first_forged([Checkpoint.of(signed)], public) is not None:
        return ChainReport(institution_id, 0, offline.forged_problem(Checkpoint.of(signed)), seq, None, seq,
                           kind=Fault.CHECKPOINT_SIGNATURE)
    below = await AuditEvent.filter(institution_id=institution_id, seq__lte=seq).order_by("seq").first()
    if below is not None:
        return ChainReport(institution_id, 0, f"an event at or below the archive anchor (seq {seq})", below.seq,
                           below.id, seq, kind=Fault.ARCHIVE_ANCHOR)
    return None


async def _below_genesis(said: _Sayer) -> ChainReport | None:
    """A chain with nothing archived begins at seq 1: an event below it (inserted by hand at seq 0, or below) is
    walked by nothing, yet the trail's readers list it, so it is named as the anchor's check names one under it."""
    below = await AuditEvent.filter(institution_id=said.institution_id, seq__lt=1).order_by("seq").first()
    if below is None:
        return None
    return said.fault(0, f"an event below seq 1, where the chain begins (seq {below.seq})", Fault.SEQUENCE_GAP,
                      below.seq, below.id)


def _run_event(anchor: AuditArchive) -> QuerySet[AuditEvent]:
    """The archive run's own event naming ``anchor``, on the chain after it."""
    return AuditEvent.filter(institution_id=anchor.institution_id, actor_kind="system", seq__gt=anchor.up_to_seq,
                             action="archive_trail", resource_type="audit_archive", resource_id=anchor.id)


MACS_FROM = "macs_from:"  # in an archive run's fields: the first event of the chain to carry a MAC


async def record_of(anchor: AuditArchive) -> str | None:
    """The fields (``fields_read``) of the archive run's own event naming ``anchor``
    (``audit.archive._anchor_and_delete``), after the anchor on the chain or still waiting in PostgreSQL's inbox
    (its run found the head busy: its MAC is checked there with the others', ``inbox_problem``); None if there is
    none. On the chain the walk checks it (its hash, its MAC) like every event after the anchor."""
    found = await _run_event(anchor).limit(1).values_list("fields_read", flat=True)
    if found:
        return str(found[0] or "")
    db = AuditEvent._meta.db
    if db.capabilities.dialect != "postgres":
        return None
    rows = await db.execute_query_dict(
        "SELECT coalesce(event->'row'->>'fields_read', '') AS fields FROM audit_inbox WHERE institution_id = $1 "
        "AND event->'row'->>'action' = 'archive_trail' AND event->'row'->>'resource_id' = $2 LIMIT 1",
        [anchor.institution_id, str(anchor.id)])
    return str(rows[0]["fields"]) if rows else None


_RECORDED = ("up_to_seq", "events", "sha256")  # what an archive run's event says of its anchor (and its file)


def _unlike_its_record(anchor: AuditArchive, fields: str) -> str:
    """An anchor must be the one its run recorded (``fields``: the run's event's fields): the anchor is a row its
    owner could move on to a later signed checkpoint, keeping its id so that the run's event still names it, and
    then delete the events in between, which are in no file; the event is hashed and MACed."""
    recorded = dict(item.partition(":")[::2] for item in fields.split(",") if item.partition(":")[0] in _RECORDED)
    if recorded == {"up_to_seq": str(anchor.up_to_seq), "events": str(anchor.events), "sha256": anchor.sha256}:
        return ""
    said = ", ".join(f"{name}:{recorded[name]}" for name in _RECORDED[:2] if name in recorded)
    return f"the archive anchor at seq {anchor.up_to_seq} is not what its archive_trail event records ({said})"


# How far the clocks of the nodes that stamp events and sign checkpoints may differ.
CLOCK_SKEW = timedelta(hours=1)


async def _replayed_after(anchor: AuditArchive, fields: str) -> AuditEvent | None:
    """The first event linked after the archive run's own (its ``fields``) but stamped before what the run archived.

    An event's MAC leaves out its sequence number and previous hash, and its id is unique only among the rows held:
    an archived event, read earlier with its MAC, can be linked again at the head without the key. Events are stamped
    when they happen (never back-dated) and linked within moments, so every event linked after the run is younger
    than its cutoff (``before:``, every archived event older) and than the signed checkpoint the anchor is cut at (an
    earlier run's events, under a longer retention period then, too)."""
    institution_id = anchor.institution_id
    ran = await _run_event(anchor).limit(1).values_list("seq", flat=True)
    signed = await AuditCheckpoint.filter(institution_id=institution_id, last_seq=anchor.up_to_seq).first()
    if not ran or signed is None:  # the run's event waits in the inbox: nothing is linked after it yet
        return None
    cutoff = _recorded_cutoff(fields)
    stamped_before = max(signed.created_at - CLOCK_SKEW, *([cutoff] if cutoff is not None else []))
    return await AuditEvent.filter(institution_id=institution_id, seq__gt=ran[0],
                                   occurred_at__lt=stamped_before.astimezone(UTC)).order_by("seq").first()


def _recorded_cutoff(fields: str) -> datetime | None:
    """The cutoff an archive run's fields name (``before:``): every event it archived is older."""
    for item in fields.split(","):
        name, _, value = item.partition(":")
        if name == "before":
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return None
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def macs_from_record(fields: str | None) -> int | None:
    """The sequence number an archive run's fields name as the first event to carry a MAC; None when they name
    none (no event carried one yet, or a run from before runs recorded it). The fields are hashed and MACed with
    the run's event: whoever lacks the key can take the claim out only by rewriting the event, which leaves it
    without a valid MAC, and once a signed checkpoint covers the event not at all."""
    for item in (fields or "").split(","):
        if item.startswith(MACS_FROM) and item[len(MACS_FROM):].isdigit():
            return int(item[len(MACS_FROM):])
    return None


# The event columns an index row repeats: its readers filter on them (disclosures, the snooping alert).
_REPEATED = ("occurred_at", "actor_kind", "actor_id", "action", "outcome")
_IndexRow = tuple[str, ...]


def _index_row(patient_id: object, columns: dict) -> _IndexRow:
    return (canonical(uuid.UUID(str(patient_id))), *(canonical(columns[name]) for name in _REPEATED))


async def _indexed(institution_id: uuid.UUID, rows: list[dict]) -> dict[int, set[_IndexRow]]:
    """The index rows of a batch of events, by sequence number."""
    if not rows:
        return {}
    indexed: dict[int, set[_IndexRow]] = {}
    for row in await AuditPatientIndex.filter(
            institution_id=institution_id, seq__gte=rows[0]["seq"], seq__lte=rows[-1]["seq"]
    ).values("seq", "patient_id", *_REPEATED):
        indexed.setdefault(int(row["seq"]), set()).add(_index_row(row["patient_id"], row))
    return indexed


def _index_problem(event: dict, indexed: dict[int, set[_IndexRow]]) -> tuple[Fault, str] | None:
    """An event's index rows must be one per patient it is about, each repeating its columns as they are."""
    try:
        patients = patients_of(event)
    except ValueError:  # the writer's subjects are record/patient ids: a row it did not write, named, not a crash
        return Fault.INDEX_MISMATCH, "the event's subjects are not record/patient ids: the patient index cannot match"
    if indexed.get(event["seq"], set()) != {_index_row(patient, event) for patient in patients}:
        return Fault.INDEX_MISMATCH, "the patient index does not match the event"
    return None


async def _stray_index_row(institution_id: uuid.UUID, after_seq: int, last_seq: int) -> int | None:
    """The sequence number of an index row outside the chain's events: before the archive anchor, or after the
    last event walked with no event of its own (an append landing after the walk has one: not a stray row)."""
    below = await AuditPatientIndex.filter(institution_id=institution_id, seq__lte=after_seq).order_by("seq").first()
    if below is not None:
        return below.seq
    rows = await AuditPatientIndex.filter(institution_id=institution_id, seq__gt=last_seq).order_by("seq").limit(BATCH)
    beyond = sorted({row.seq for row in rows})
    present = {event.seq for event in await AuditEvent.filter(institution_id=institution_id, seq__in=beyond)}
    return next((seq for seq in beyond if seq not in present), None)


async def stretch_mac_problem(institution_id: uuid.UUID, after_seq: int, up_to_seq: int, key: bytes,
                              macs_from: int | None) -> tuple[int, str] | None:
    """The first event of ``after_seq`` < seq <= ``up_to_seq`` whose MAC does not hold, as the walk would name it
    (seq, problem), given where MACs began (``macs_from``: earlier events, or an earlier archive run's record);
    None if every one holds. An archive run checks the stretch it is about to delete: its file holds no MACs."""
    began, after = False, after_seq
    while after < up_to_seq:
        rows = await (AuditEvent.filter(institution_id=institution_id, seq__gt=after, seq__lte=up_to_seq)
                      .order_by("seq").limit(BATCH).values(*HASHED_COLUMNS, "mac"))
        if not rows:
            return None
        for row in rows:
            began = began or (macs_from is not None and row["seq"] >= macs_from)
            fault = _mac_problem(row, key, began, *body_around(row))
            if fault:
                return row["seq"], fault[1]
            began = began or bool(row["mac"])
        after = rows[-1]["seq"]
    return None


def _mac_problem(row: dict, key: bytes | None, macs_began: bool, head: str,
                 middle: str) -> tuple[Fault, str] | None:
    """``head`` and ``middle``: the row's body around its sequence number and previous hash (``body_around``)."""
    if key is None:
        return None
    if not row["mac"]:
        return (Fault.MAC_MISSING, "the event carries no MAC, though earlier events of the chain do") if macs_began \
            else None
    if not hmac.compare_digest(row["mac"], writer.mac_of_body(key, head, middle)):
        return Fault.MAC_MISMATCH, "the event's MAC does not match: it was not written with this deployment's key"
    return None


async def rejected_problem(report: ChainReport, key: bytes | None = None) -> ChainReport:
    """A row of PostgreSQL's inbox that could not be linked into the chain (migration 0027 sets it aside so that
    the chain goes on). The writer never posts one that cannot be linked, so it is evidence of a hand-made row,
    named whatever the key; with the key, one that carries a valid MAC (an event careloop wrote, set aside) is named
    as the chain missing it."""
    first = None
    async for row in _inbox_rows(SET_ASIDE, report.institution_id):
        first = first or row
        if key is None:
            break
        if _inbox_mac_holds(key, row):
            return report.failed(f"an inbox row with a valid MAC was set aside (inbox row {row['id']}, SQLSTATE "
                                 f"{row['sqlstate']}): an event replayed, or one the chain misses")
    if first is None:
        return report
    return report.failed(f"inbox row {first['id']} could not be sealed into the chain (SQLSTATE {first['sqlstate']}):"
                         " it was not posted by careloop's writer")


async def inbox_problem(report: ChainReport, key: bytes) -> ChainReport:
    """The chain's events waiting in PostgreSQL's inbox must each carry the MAC of the body it will be hashed from
    (whoever posts without the key is found before and after the event is sealed)."""
    async for row in _inbox_rows(WAITING, report.institution_id):
        if not _inbox_mac_holds(key, row):
            return report.failed(f"an event waiting to be sealed (inbox row {row['id']}) has no valid MAC")
    return report


# A chain's rows waiting in PostgreSQL's inbox, and those set aside from it, after an id, in order.
WAITING = ("SELECT id, event->>'body_head' AS head, event->>'body_middle' AS middle, mac FROM audit_inbox "
           "WHERE institution_id = $1 AND id > $2 ORDER BY id LIMIT $3")
SET_ASIDE = ("SELECT id, event->>'body_head' AS head, event->>'body_middle' AS middle, mac, sqlstate "
             "FROM audit_inbox_rejected WHERE institution_id = $1 AND id > $2 ORDER BY id LIMIT $3")


async def _inbox_rows(query: str, institution_id: uuid.UUID) -> AsyncIterator[dict]:
    """The rows ``query`` (``WAITING`` or ``SET_ASIDE``) finds, ``BATCH`` at a time; none on SQLite."""
    db = AuditEvent._meta.db
    if db.capabilities.dialect != "postgres":
        return
    after = 0
    while True:
        rows = await db.execute_query_dict(query, [institution_id, after, BATCH])
        for row in rows:
            yield row
        if len(rows) < BATCH:
            return
        after = rows[-1]["id"]


def _inbox_mac_holds(key: bytes, row: dict) -> bool:
    """Whether an inbox row carries the MAC of the body it would be hashed from."""
    made = writer.mac_of_body(key, row["head"] or "", row["middle"] or "")
    return bool(row["mac"]) and hmac.compare_digest(row["mac"], made)


def _problem(row: dict, expected_seq: int, prev_hash: str, content_hash: str) -> tuple[Fault, str] | None:
    """``content_hash``: the row's ``row_hash``, made from the pieces its MAC is checked against too."""
    if row["seq"] != expected_seq:
        return Fault.SEQUENCE_GAP, f"sequence gap: expected {expected_seq}"
    if row["prev_hash"] != prev_hash:
        return Fault.BROKEN_LINK, "does not link to the previous event"
    if content_hash != row["hash"]:
        return Fault.HASH_MISMATCH, "content does not match its hash"
    return None
