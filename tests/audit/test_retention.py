"""Retention and archiving: nothing younger than the retention period leaves the database, and every
chain still verifies (in the database and offline) after its oldest stretch went to a file."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import archive, checkpoint, export, offline, verify, writer
from audit.chain import HASHED_COLUMNS, row_hash
from audit.checkpoint import Checkpoint
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import ChainReport, verify_all
from core.errors import BadUserInput, NotFound
from models import AuditArchive, AuditChainHead, AuditEvent, AuditPatientIndex, Institution
from resolvers.context import Services
from tests.audit import test_chain
from tests.audit.test_chain import REFUSED, append_only_lifted, careloop, connection, is_postgres
from tests.audit.test_inbox import head_held, mac_key

retention = importlib.import_module("migrations.0011_audit_retention")
LONG_AGO = timedelta(days=7 * 365)  # past the default 72 months
cli_environment = test_chain.cli_environment  # the CLI's environment, as an operator runs it


@pytest.fixture
def key(services: Services) -> Ed25519PrivateKey:
    return services.master_key.checkpoint_key


@pytest.fixture
def public(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key()


class Chain:
    """An institution whose audit chain is built event by event, with old or recent times."""

    def __init__(self, institution: Institution, key: Ed25519PrivateKey) -> None:
        self.id, self.key = institution.id, key

    async def add(self, count: int, age: timedelta = LONG_AGO) -> None:
        when = datetime.now(UTC) - age
        await writer.append([AuditRecord(self.id, Actor("staff", uuid.uuid4()), Action.READ, "patient",
                                         Outcome.ALLOWED, patient_id=uuid.uuid4(), fields_read=frozenset({"phone"}),
                                         occurred_at=when + timedelta(seconds=n)) for n in range(count)])

    async def sign(self) -> int:
        signed = await checkpoint.take(self.key, self.id)
        assert signed is not None
        return signed.last_seq

    async def seqs(self) -> list[int]:
        return [e.seq for e in await AuditEvent.filter(institution_id=self.id).order_by("seq")]

    async def checkpoints(self, up_to_seq: int | None = None) -> list[Checkpoint]:
        return [c for c in await checkpoint.of_institution(self.id) if up_to_seq is None or c.last_seq <= up_to_seq]

    async def export(self) -> list[str]:
        out = io.StringIO()
        await export.write(self.id, "ndjson", out)
        return out.getvalue().splitlines()

    async def report(self) -> ChainReport:
        [report] = await verify_all(self.id)
        return report


@pytest_asyncio.fixture
async def chain(database: str, key: Ed25519PrivateKey) -> Chain:
    return Chain(await Institution.create(name=f"Archive Clinic {uuid.uuid4().hex[:6]}", kind="clinic"), key)


async def archived_chain(chain: Chain, public: Ed25519PublicKey, tmp_path: Path) -> tuple[AuditArchive, Path]:
    """Seq 1-7 old and signed (at 4 and 7), 8-9 old but signed only with 10-11, which are recent:
    an archive run takes 1-7, and appends its own record at 12."""
    await chain.add(4)
    await chain.sign()
    await chain.add(3)
    await chain.sign()
    await chain.add(2)
    await chain.add(2, timedelta(days=1))
    await chain.sign()
    anchor = await archive.archive(chain.id, tmp_path / "archive.ndjson", public)
    assert anchor is not None
    return anchor, tmp_path / "archive.ndjson"


def rows(lines: list[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in lines]


# -- the retention period -----------------------------------------------------------------


async def test_the_retention_period_is_72_months_and_never_less_than_6(chain: Chain) -> None:
    assert await archive.retention_months(chain.id) == 72
    for months in (5, 0, -1, archive.MAX_MONTHS + 1):
        with pytest.raises(BadUserInput, match="6 to 1200 months"):
            await archive.set_retention(chain.id, months)
    assert await archive.retention_months(chain.id) == 72
    assert await chain.seqs() == []  # a refused change is no change

    assert await archive.set_retention(chain.id, 6) == 72
    assert await archive.retention_months(chain.id) == 6
    with pytest.raises(NotFound):
        await archive.set_retention(uuid.uuid4(), 12)


async def test_a_change_of_the_retention_period_is_on_the_chain(chain: Chain) -> None:
    await archive.set_retention(chain.id, 120)

    [event] = await AuditEvent.filter(institution_id=chain.id)
    assert (event.action, event.resource_type, event.resource_id) == ("retention", "institution", chain.id)
    assert (event.fields_read, event.actor_kind) == ("from:72,to:120", "system")
    assert (await chain.report()).ok


def test_months_are_counted_on_the_calendar_capped_at_the_months_end() -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    assert archive.months_before(at("2025-08-31 10:00"), 6) == at("2025-02-28 10:00")
    assert archive.months_before(at("2024-08-31 10:00"), 6) == at("2024-02-29 10:00")
    assert archive.months_before(at("2025-03-15 23:59"), 1) == at("2025-02-15 23:59")
    assert archive.months_before(at("2025-01-10 00:00"), 72) == at("2019-01-10 00:00")
    assert archive.months_before(at("2025-01-31 00:00"), 13) == at("2023-12-31 00:00")


# -- nothing young, nothing unsigned -------------------------------------------------------


async def test_events_inside_the_retention_period_stay(chain: Chain, public: Ed25519PublicKey,
                                                       tmp_path: Path) -> None:
    await chain.add(3, timedelta(days=5 * 365))
    await chain.sign()
    output = tmp_path / "none.ndjson"

    assert await archive.archive(chain.id, output, public) is None
    assert not output.exists() and await chain.seqs() == [1, 2, 3]
    with pytest.raises(BadUserInput, match="older than the retention period"):
        await archive.plan(chain.id, before=datetime.now(UTC) - timedelta(days=30))

    await archive.set_retention(chain.id, 48)  # now they are past it
    anchor = await archive.archive(chain.id, output, public)
    assert anchor is not None and anchor.up_to_seq == 3


async def test_events_no_checkpoint_covers_are_not_archived(chain: Chain, public: Ed25519PublicKey,
                                                            tmp_path: Path) -> None:
    await chain.add(3)
    assert await archive.plan(chain.id) is None  # old, but nothing signed yet
    await chain.sign()
    await chain.add(3)  # old, unsigned

    anchor = await archive.archive(chain.id, tmp_path / "a.ndjson", public)

    assert anchor is not None and (anchor.up_to_seq, anchor.events) == (3, 3)
    assert await chain.seqs() == [4, 5, 6, 7]  # 7: the archive's own record


async def test_the_database_deletes_only_archived_events_past_their_retention(chain: Chain) -> None:
    """Raw DELETEs, as the database's owner would send them: the trigger decides."""
    await chain.add(2)
    await chain.add(2, timedelta(days=90))
    await chain.sign()

    for seq in (1, 3):  # old and young, neither archived
        with pytest.raises(REFUSED, match="append-only"):
            await connection().execute_query(f"DELETE FROM audit_event WHERE institution_id = '{chain.id}' "
                                             f"AND seq = {seq}")
    # An anchor over all four, written by hand, and the retention period lowered behind the
    # service's back: still nothing younger than 6 months may go.
    head = (await chain.export())[-1]
    await AuditArchive.create(institution_id=chain.id, up_to_seq=4, up_to_hash=json.loads(head)["hash"],
                              archived_at=datetime.now(UTC), events=4, sha256="0" * 64)
    await connection().execute_query(f"UPDATE institution SET audit_retention_months = 1 WHERE id = '{chain.id}'")
    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(f"DELETE FROM audit_event WHERE institution_id = '{chain.id}'")
    assert await chain.seqs() == [1, 2, 3, 4]

    await connection().execute_query(f"DELETE FROM audit_event WHERE institution_id = '{chain.id}' AND seq <= 2")
    assert await chain.seqs() == [3, 4]  # archived and old: the only rows that may go
    with pytest.raises(REFUSED, match="append-only"):
        await AuditEvent.filter(institution_id=chain.id).update(reason="rewritten")


async def test_anchors_are_append_only(chain: Chain, public: Ed25519PublicKey, tmp_path: Path) -> None:
    anchor, _ = await archived_chain(chain, public, tmp_path)

    for attempt in (AuditArchive.filter(id=anchor.id).update(up_to_seq=1), AuditArchive.filter(id=anchor.id).delete()):
        with pytest.raises(REFUSED, match="append-only"):
            await attempt
    if is_postgres():
        with pytest.raises(REFUSED, match="append-only"):
            await connection().execute_script("TRUNCATE audit_archive")
    assert await AuditArchive.filter(institution_id=chain.id).count() == 1


# -- archiving -----------------------------------------------------------------------------


async def test_an_archive_run_moves_the_oldest_signed_stretch_to_a_file(chain: Chain, public: Ed25519PublicKey,
                                                                        tmp_path: Path) -> None:
    anchor, path = await archived_chain(chain, public, tmp_path)

    assert (anchor.up_to_seq, anchor.events) == (7, 7)
    assert anchor.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [row["seq"] for row in rows(path.read_text().splitlines())] == [str(n) for n in range(1, 8)]
    assert await chain.seqs() == [8, 9, 10, 11, 12]
    record = await AuditEvent.get(institution_id=chain.id, seq=12)
    assert (record.action, record.resource_type, record.resource_id) == ("archive_trail", "audit_archive", anchor.id)
    assert {"up_to_seq:7", "events:7", f"sha256:{anchor.sha256}"} <= set(record.fields_read.split(","))
    assert await chain.report() == ChainReport(chain.id, 5, archived=7)


async def test_the_archive_file_verifies_offline_against_the_checkpoints(chain: Chain, public: Ed25519PublicKey,
                                                                         tmp_path: Path) -> None:
    anchor, path = await archived_chain(chain, public, tmp_path)
    lines = path.read_text().splitlines()

    report = offline.verify(lines, await chain.checkpoints(anchor.up_to_seq), public)
    assert report.ok and (report.events, report.first_seq, report.start_vouched) == (7, 1, True)
    # Later checkpoints are beyond its end: checked against them, an archive reads as truncated.
    assert offline.verify(lines, await chain.checkpoints(), public).problem.startswith("truncated")
    cut = offline.verify(lines[:-1], await chain.checkpoints(anchor.up_to_seq), public)
    assert cut.problem.startswith("truncated")


async def test_what_is_left_verifies_offline_and_links_to_the_archive(chain: Chain, public: Ed25519PublicKey,
                                                                      tmp_path: Path) -> None:
    await archived_chain(chain, public, tmp_path)
    await chain.sign()  # the archive's record
    lines, signed = await chain.export(), await chain.checkpoints()

    report = offline.verify(lines, signed, public)
    assert report.ok and (report.events, report.first_seq, report.start_vouched) == (5, 8, True)
    assert offline.verify(lines[:-1], signed, public).problem.startswith("truncated")

    # Rewritten from the anchor on: consistent in itself, but no longer the signed chain.
    forged = rows(lines)
    forged[0]["reason"] = "nothing to see"
    for i, row in enumerate(forged):
        if i:
            row["prev_hash"] = forged[i - 1]["hash"]
        row["hash"] = row_hash(row)
    assert offline.verify([json.dumps(r) for r in forged], signed, public).problem.startswith("rewritten")

    # A different first event in front of the rest no longer links to the signed head before it.
    relinked = rows(lines)
    relinked[0]["prev_hash"] = "f" * 64
    relinked[0]["hash"] = row_hash(relinked[0])
    problem = offline.verify([json.dumps(r) for r in relinked[:1]], signed[:2], public).problem
    assert problem == "rewritten: seq 8 does not link to the signed head at seq 7"

    # Without the checkpoint before it, an export's start is not vouched for (a period export).
    headless = offline.verify(lines[1:], signed, public)
    assert headless.ok and not headless.start_vouched


async def test_a_second_run_continues_from_the_first_anchor(chain: Chain, public: Ed25519PublicKey,
                                                            tmp_path: Path) -> None:
    await chain.add(3, LONG_AGO + timedelta(days=30))
    await chain.sign()
    await chain.add(3)
    await chain.sign()
    await chain.add(1, timedelta(0))
    fourth = (await AuditEvent.get(institution_id=chain.id, seq=4)).occurred_at

    first = await archive.archive(chain.id, tmp_path / "1.ndjson", public, before=fourth)
    assert first is not None and (first.up_to_seq, first.events) == (3, 3)
    second = await archive.archive(chain.id, tmp_path / "2.ndjson", public)
    assert second is not None and (second.up_to_seq, second.events) == (6, 3)
    assert await archive.archive(chain.id, tmp_path / "3.ndjson", public) is None

    lines = (tmp_path / "2.ndjson").read_text().splitlines()
    report = offline.verify(lines, await chain.checkpoints(6), public)
    assert report.ok and (report.first_seq, report.start_vouched) == (4, True)  # linked to the first archive
    assert await chain.seqs() == [7, 8, 9]  # the recent event and the two runs' records
    assert await chain.report() == ChainReport(chain.id, 3, archived=6)
    actions = [e.action for e in await AuditEvent.filter(institution_id=chain.id).order_by("seq")]
    assert actions == ["read", "archive_trail", "archive_trail"]


async def test_a_run_beaten_to_the_same_stretch_is_refused_and_deletes_nothing(chain: Chain, public: Ed25519PublicKey,
                                                                              tmp_path: Path) -> None:
    """Two runs over the same events, both past their file check: the second's anchor clashes with the first's. It
    is refused as the command reports a refusal (found in review: an IntegrityError and a traceback)."""
    await chain.add(3)
    await chain.sign()
    await chain.add(1, timedelta(0))
    second = await archive.plan(chain.id)
    assert second is not None
    sha256 = await archive._write_and_check(second, tmp_path / "second.ndjson", public)
    first = await archive.archive(chain.id, tmp_path / "first.ndjson", public)  # it commits in between
    assert first is not None and first.up_to_seq == second.up_to_seq == 3

    with pytest.raises(archive.ArchiveRefused, match="nothing was deleted"):
        await archive._anchor_and_delete(second, sha256, None)
    assert [a.id for a in await AuditArchive.filter(institution_id=chain.id)] == [first.id]
    assert await chain.seqs() == [4, 5]  # the recent event and the first run's record only
    assert (await chain.report()).ok


async def test_an_archive_that_does_not_verify_deletes_nothing(chain: Chain, tmp_path: Path) -> None:
    await chain.add(3)
    await chain.sign()
    stranger = Ed25519PrivateKey.generate().public_key()  # not the key the checkpoints were signed with

    with pytest.raises(archive.ArchiveRefused, match="does not verify"):
        await archive.archive(chain.id, tmp_path / "a.ndjson", stranger)
    assert await chain.seqs() == [1, 2, 3] and not await AuditArchive.exists(institution_id=chain.id)


async def test_an_archive_file_is_never_overwritten(chain: Chain, public: Ed25519PublicKey, tmp_path: Path) -> None:
    await chain.add(3)
    await chain.sign()
    earlier = tmp_path / "a.ndjson"
    earlier.write_text("an earlier archive\n")

    with pytest.raises(FileExistsError):
        await archive.archive(chain.id, earlier, public)
    assert earlier.read_text() == "an earlier archive\n" and await chain.seqs() == [1, 2, 3]


@pytest.mark.usefixtures("cli_environment")
async def test_a_cli_time_in_another_zone_is_the_same_moment(chain: Chain, tmp_path: Path) -> None:
    """``--before`` with an offset, as an operator in Shanghai types it: the moment it names, whatever the zone
    (found in review: SQLite compares times as text, so ``18:00+08:00`` fell after ``14:00+00:00`` and the run took
    events recorded after the time given)."""
    await chain.add(3)  # seq 1-3, long ago
    await chain.sign()
    await chain.add(3, LONG_AGO - timedelta(hours=4))  # seq 4-6, four hours later
    await chain.sign()
    await chain.add(1, timedelta(0))
    first = (await AuditEvent.get(institution_id=chain.id, seq=1)).occurred_at
    before = (first + timedelta(hours=2)).astimezone(timezone(timedelta(hours=8))).isoformat()

    code, stdout, stderr = await careloop("audit", "archive", "--institution", str(chain.id), "--output",
                                          str(tmp_path / "archive.ndjson"), "--before", before)

    assert code == 0, stdout + stderr
    assert [a.up_to_seq for a in await AuditArchive.filter(institution_id=chain.id)] == [3]
    assert await chain.seqs() == [4, 5, 6, 7, 8]  # 8: the run's own record


# -- verification after archiving ---------------------------------------------------------


async def test_an_edited_remaining_row_is_found(chain: Chain, public: Ed25519PublicKey, tmp_path: Path) -> None:
    await archived_chain(chain, public, tmp_path)
    target = await AuditEvent.get(institution_id=chain.id, seq=9)

    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(reason="nothing happened")

    assert await chain.report() == ChainReport(chain.id, 1, "content does not match its hash", 9, target.id, 7)


async def test_a_missing_tail_or_first_row_after_the_anchor_is_found(chain: Chain, public: Ed25519PublicKey,
                                                                     tmp_path: Path) -> None:
    await archived_chain(chain, public, tmp_path)
    tail = await AuditEvent.get(institution_id=chain.id, seq=12)
    first = await AuditEvent.get(institution_id=chain.id, seq=8)

    async with append_only_lifted():
        await AuditEvent.filter(id=tail.id).delete()
    assert await chain.report() == ChainReport(chain.id, 4, "rows missing after the last event", 12, None, 7)

    async with append_only_lifted():
        await AuditEvent.filter(id=first.id).delete()
    assert (await chain.report()).problem == "sequence gap: expected 8"


async def test_events_slipped_in_below_the_anchor_are_found(chain: Chain, public: Ed25519PublicKey,
                                                            tmp_path: Path) -> None:
    await archived_chain(chain, public, tmp_path)
    forged = await AuditEvent.create(institution_id=chain.id, seq=3, occurred_at=datetime.now(UTC),
                                     actor_kind="staff", action="read", resource_type="patient", outcome="allowed",
                                     prev_hash="0" * 64, hash="0" * 64)

    report = await chain.report()
    assert (report.problem, report.seq, report.event_id) == ("an event at or below the archive anchor (seq 7)", 3,
                                                             forged.id)


async def test_events_deleted_under_an_anchor_written_by_hand_are_found(chain: Chain) -> None:
    """The database lets events past their retention go once an anchor covers them, and its owner may add anchors:
    one written by hand at a signed checkpoint, then a DELETE, left a chain that verified as archived, its events in
    no file (found in review). An archive run records its anchor on the chain (``archive_trail``, with its MAC):
    an anchor no event records is named."""
    await chain.add(3)
    await chain.sign()
    await chain.add(2)
    hashes = {int(row["seq"]): row["hash"] for row in rows(await chain.export())}
    await AuditArchive.create(institution_id=chain.id, up_to_seq=3, up_to_hash=hashes[3],
                              archived_at=datetime.now(UTC), events=3, sha256="0" * 64)
    for table in ("audit_event", "audit_patient_index"):  # no trigger dropped: the anchor lets them go
        await connection().execute_query(f"DELETE FROM {table} WHERE institution_id = '{chain.id}' AND seq <= 3")

    assert await chain.seqs() == [4, 5]
    assert await chain.report() == ChainReport(
        chain.id, 2, "no archive_trail event records the archive anchor at seq 3: events were deleted under an "
                     "anchor written by hand", 3, None, 3)


async def test_an_anchor_moved_past_what_its_run_recorded_is_found(chain: Chain, public: Ed25519PublicKey,
                                                                    tmp_path: Path) -> None:
    """An anchor is held to its run's record: the owner who moved a real anchor on to a later signed checkpoint
    (its id kept, so the run's archive_trail event still named it) and deleted the events in between, young ones
    included and in no file, left a chain that verified as archived (found in review). The record, hashed and
    MACed, says up to which seq, how many events and which file's hash the run archived."""
    anchor, _ = await archived_chain(chain, public, tmp_path)  # 1-7 archived, 8-9 old, 10-11 recent, the run at 12
    hashes = {int(row["seq"]): row["hash"] for row in rows(await chain.export())}
    archive_update = "audit_archive_no_update_delete ON audit_archive" if is_postgres() else "audit_archive_no_update"
    async with append_only_lifted():  # put back with 0011's triggers, the anchors' among them
        await connection().execute_script(f"DROP TRIGGER {archive_update}")
        await connection().execute_query(f"UPDATE audit_archive SET up_to_seq = 11, up_to_hash = '{hashes[11]}' "
                                         f"WHERE id = '{anchor.id}'")
        for table in ("audit_event", "audit_patient_index"):
            await connection().execute_query(f"DELETE FROM {table} WHERE institution_id = '{chain.id}' "
                                              f"AND seq BETWEEN 8 AND 11")

    assert await chain.seqs() == [12]
    assert await chain.report() == ChainReport(
        chain.id, 1, "the archive anchor at seq 11 is not what its archive_trail event records (up_to_seq:7, "
                     "events:7)", 11, None, 11)


async def test_an_archived_event_replayed_at_the_head_is_named(chain: Chain, public: Ed25519PublicKey,
                                                               tmp_path: Path, services: Services) -> None:
    """An event's MAC leaves out its place in the chain, and its id is unique only among the rows held: once archived,
    an event read earlier with its MAC (the service role reads the trail; a backup holds it) could be linked again
    at the head by whoever may insert rows, without the key, and verify took it for a new event, counted in the
    database and in the archive file both (found in review). Every event linked after an archive run is stamped after
    its cutoff: one stamped before it is named."""
    await chain.add(3)
    await chain.sign()
    await chain.add(1, timedelta(days=1))
    [copied] = await AuditEvent.filter(institution_id=chain.id, seq=2).values(*HASHED_COLUMNS, "mac")
    assert await archive.archive(chain.id, tmp_path / "a.ndjson", public) is not None  # 1-3 archived, the run at 5
    assert await keyed_report(chain, services) == ChainReport(chain.id, 2, archived=3)

    head = await AuditChainHead.get(institution_id=chain.id)  # the INSERTs and the head's move the service role has
    replayed = {**copied, "seq": head.last_seq + 1, "prev_hash": head.last_hash}
    replayed["hash"] = row_hash(replayed)
    await AuditEvent.create(**replayed)
    for entry in writer.index_rows(replayed):
        await AuditPatientIndex.create(**entry)
    await AuditChainHead.filter(institution_id=chain.id).update(last_seq=replayed["seq"], last_hash=replayed["hash"])

    assert await keyed_report(chain, services) == ChainReport(
        chain.id, 3, "an event stamped before the archive run's cutoff was linked after the run: an archived event "
                     "replayed", 6, replayed["id"], 3)


async def test_an_archive_whose_record_waits_in_the_inbox_verifies(chain: Chain, public: Ed25519PublicKey,
                                                                    tmp_path: Path, database: str) -> None:
    """On PostgreSQL a run that finds the chain head busy posts its record to the inbox, to be sealed later: until
    then the anchor is recorded there."""
    if not is_postgres():
        pytest.skip("the inbox is PostgreSQL's: SQLite has one writer")
    await chain.add(3)
    await chain.sign()
    async with head_held(database, chain.id):
        anchor = await archive.archive(chain.id, tmp_path / "a.ndjson", public)
        assert anchor is not None and await chain.seqs() == []  # the run's record waits in the inbox
        assert await chain.report() == ChainReport(chain.id, 0, archived=3)
    assert await chain.report() == ChainReport(chain.id, 0, archived=3)


async def keyed_report(chain: Chain, services: Services) -> ChainReport:
    [report] = await verify_all(chain.id, mac_key=services.master_key.audit_mac_key)
    return report


async def test_an_event_without_a_mac_right_after_the_anchor_is_named(chain: Chain, public: Ed25519PublicKey,
                                                                       tmp_path: Path, services: Services) -> None:
    """Verify asked a MAC of an event only once an earlier one of the walk carried one, and the walk starts after
    the anchor: an event without a MAC right after it passed, though the archived events carried MACs (found in
    review). The run records on the chain where MACs began (``macs_from``, in its own hashed, MACed event), and
    verify asks a MAC of every event after the anchor from there."""
    await archived_chain(chain, public, tmp_path)
    record = await AuditEvent.get(institution_id=chain.id, seq=12)
    assert "macs_from:1" in record.fields_read.split(",")
    assert await keyed_report(chain, services) == ChainReport(chain.id, 5, archived=7)
    first = await AuditEvent.get(institution_id=chain.id, seq=8)

    async with append_only_lifted():  # the database's owner strips its MAC (not hashed: the chain still holds)
        await AuditEvent.filter(id=first.id).update(mac="")

    assert await keyed_report(chain, services) == ChainReport(
        chain.id, 0, "the event carries no MAC, though earlier events of the chain do", 8, first.id, 7)
    assert (await chain.report()).ok  # without the key only the hashes are checked


async def test_an_event_posted_without_the_key_is_not_laundered_by_an_archive(
        chain: Chain, public: Ed25519PublicKey, tmp_path: Path, services: Services) -> None:
    """An event posted without the key just after a signed stretch is named before the run, and still after it,
    when it is the first event after the anchor; one inside the stretch stops the run, which writes and deletes
    nothing (the file holds no MACs)."""
    await chain.add(3)
    await chain.sign()
    with mac_key(None):  # someone who can post events but holds no key
        await chain.add(1, LONG_AGO - timedelta(days=1))
    await chain.add(1)
    await chain.sign()
    problem = "the event carries no MAC, though earlier events of the chain do"
    forged = await AuditEvent.get(institution_id=chain.id, seq=4)
    assert await keyed_report(chain, services) == ChainReport(chain.id, 3, problem, 4, forged.id)

    output = tmp_path / "a.ndjson"
    with pytest.raises(archive.ArchiveRefused, match=f"seq 4: {problem}; nothing was written or deleted"):
        await archive.archive(chain.id, output, public)  # 1-5, the forged event inside
    assert not output.exists() and await chain.seqs() == [1, 2, 3, 4, 5]
    assert await AuditArchive.filter(institution_id=chain.id).count() == 0

    before = datetime.now(UTC) - LONG_AGO + timedelta(hours=12)  # the forged event is younger: 1-3 go
    anchor = await archive.archive(chain.id, output, public, before)
    assert anchor is not None and anchor.up_to_seq == 3
    assert await keyed_report(chain, services) == ChainReport(chain.id, 0, problem, 4, forged.id, 3)


async def test_macs_begun_after_the_stretch_are_asked_from_where_they_began(
        chain: Chain, public: Ed25519PublicKey, tmp_path: Path, services: Services) -> None:
    """A stretch from before 0023 (no MACs) archives, the events after it that carry none still verify, and the
    run records where the MACs began: from there each event must carry one."""
    with mac_key(None):
        await chain.add(3)
        await chain.sign()
        await chain.add(1)
    await chain.add(2)
    assert await archive.archive(chain.id, tmp_path / "a.ndjson", public) is not None
    record = await AuditEvent.get(institution_id=chain.id, seq=7)
    assert "macs_from:5" in record.fields_read.split(",")
    assert await keyed_report(chain, services) == ChainReport(chain.id, 4, archived=3)
    first = await AuditEvent.get(institution_id=chain.id, seq=5)

    async with append_only_lifted():
        await AuditEvent.filter(id=first.id).update(mac="")
    assert await keyed_report(chain, services) == ChainReport(
        chain.id, 1, "the event carries no MAC, though earlier events of the chain do", 5, first.id, 3)


async def test_a_run_before_any_mac_records_no_start(chain: Chain, public: Ed25519PublicKey, tmp_path: Path,
                                                     services: Services) -> None:
    with mac_key(None):  # a deployment from before 0023
        await chain.add(3)
        await chain.sign()
        await chain.add(1)
        assert await archive.archive(chain.id, tmp_path / "a.ndjson", public) is not None
    record = await AuditEvent.get(institution_id=chain.id, seq=5)
    assert not any(item.startswith("macs_from:") for item in record.fields_read.split(","))
    await chain.add(2, timedelta(0))  # the MACs begin after it (events are stamped when linked, not back-dated)
    assert await keyed_report(chain, services) == ChainReport(chain.id, 4, archived=3)


ArchiveOnce = Callable[[uuid.UUID, int], Awaitable[None]]


async def archived_mid_walk(chain: Chain, public: Ed25519PublicKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                            ) -> tuple[list[AuditArchive | None], ArchiveOnce]:
    """Twelve events (signed at 4, 7 and 11, the last two a day later) walked three at a time, and a progress call
    that runs an archive (of 1-7) after the walk's first batch: the runs made, and that call."""
    await chain.add(4)
    await chain.sign()
    await chain.add(3)
    await chain.sign()
    await chain.add(2)
    await chain.add(2, timedelta(days=1))
    await chain.sign()
    monkeypatch.setattr(verify, "BATCH", 3)
    runs: list[AuditArchive | None] = []

    async def archive_once(institution_id: uuid.UUID, checked: int) -> None:
        if not runs:
            runs.append(await archive.archive(chain.id, tmp_path / "archive.ndjson", public))

    return runs, archive_once


async def test_an_archive_committing_during_the_walk_is_no_gap(chain: Chain, public: Ed25519PublicKey,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Verify read the newest anchor once, at its start, then the events a batch at a time: an archive run
    committing between two batches deleted events ahead of the walk, which named a sequence gap in an intact chain
    (found in review). The run here commits after the walk's first batch of three (its progress call), every time."""
    runs, archive_once = await archived_mid_walk(chain, public, tmp_path, monkeypatch)
    [report] = await verify_all(chain.id, archive_once)

    assert runs and runs[0] is not None and runs[0].up_to_seq == 7 and await chain.seqs() == [8, 9, 10, 11, 12]
    assert report == ChainReport(chain.id, 5, archived=7)

    first = await AuditEvent.get(institution_id=chain.id, seq=8)  # a real gap after the new anchor is still one
    async with append_only_lifted():
        await AuditEvent.filter(id=first.id).delete()
    assert (await chain.report()).problem == "sequence gap: expected 8"


async def test_a_bounded_stretch_stays_within_its_bound_across_an_archive_committing_during_the_walk(
        chain: Chain, public: Ed25519PublicKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk starts again from an anchor committed mid-walk; its count started again too, so a stretch of at most
    five events walked eight (left in the last session's note): auditChainVerification's bound per call."""
    runs, archive_once = await archived_mid_walk(chain, public, tmp_path, monkeypatch)
    head = await AuditChainHead.get(institution_id=chain.id)
    report = await verify.verify_chain(chain.id, head, archive_once, public=public, stretch=verify.Stretch(limit=5))

    assert runs and runs[0] is not None and runs[0].up_to_seq == 7
    assert report.ok and not report.complete, report
    assert (report.archived, report.first_seq, report.last_seq, report.events) == (7, 8, 9, 2)


async def test_a_forged_anchor_is_found(chain: Chain) -> None:
    await chain.add(3)
    await chain.sign()
    await chain.add(2)
    hashes = {int(row["seq"]): row["hash"] for row in rows(await chain.export())}
    await AuditArchive.create(institution_id=chain.id, up_to_seq=4, up_to_hash=hashes[4],
                              archived_at=datetime.now(UTC), events=4, sha256="0" * 64)

    report = await chain.report()
    assert (report.problem, report.seq) == ("the archive anchor does not match a signed checkpoint", 4)


# -- bounded stretches (the API's auditChainVerification) -----------------------------------


async def test_stretches_after_an_anchor_walk_from_it_and_hold_their_checkpoints(chain: Chain, public: Ed25519PublicKey,
                                                                                 tmp_path: Path) -> None:
    await archived_chain(chain, public, tmp_path)  # anchor at 7, signed at 11, the run's record at 12
    first = await verify.verify_stretch(chain.id, verify.Stretch(start=1, limit=2), public=public)
    assert first is not None and first.ok and not first.complete
    assert (first.archived, first.first_seq, first.last_seq, first.events) == (7, 8, 9, 2)
    assert first.held_against is not None and first.held_against.last_seq == 7  # the anchor's
    second = await verify.verify_stretch(chain.id, verify.Stretch(start=10, limit=2, start_hash=first.last_hash),
                                         public=public)
    assert second is not None and second.ok and not second.complete
    assert (second.first_seq, second.last_seq, second.held_against and second.held_against.last_seq) == (10, 11, 11)
    last = await verify.verify_stretch(chain.id, verify.Stretch(start=12, limit=2, start_hash=second.last_hash),
                                       public=public)
    assert last is not None and last.ok and last.complete and (last.first_seq, last.last_seq) == (12, 12)
    stale = await verify.verify_stretch(chain.id, verify.Stretch(start=10, start_hash="0" * 64), public=public)
    assert stale is not None and (stale.kind, stale.seq) == (verify.Fault.HASH_MISMATCH, 9)


async def test_a_stretch_after_an_anchor_cut_at_the_newest_checkpoint_holds_it(chain: Chain, public: Ed25519PublicKey,
                                                                               tmp_path: Path) -> None:
    await chain.add(4)
    await chain.sign()
    await chain.add(3)
    await chain.sign()
    await chain.add(2, timedelta(days=1))  # recent, unsigned: the run takes 1-7, its record at 10
    assert await archive.archive(chain.id, tmp_path / "archive.ndjson", public) is not None

    report = await verify.verify_stretch(chain.id, verify.Stretch(start=9), public=public)

    assert report is not None and report.ok and report.complete, report
    assert (report.first_seq, report.last_seq, report.held_against and report.held_against.last_seq) == (9, 10, 7)
