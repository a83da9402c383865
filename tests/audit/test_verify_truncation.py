"""Issue 11, finding 5: a tail cut past a signed checkpoint.

The attack: sign a checkpoint, drop the append-only trigger on ``audit_event``, delete the last
events and move ``audit_chain_head`` back with them. The head now only moves forward (migration
0014), and ``careloop audit verify`` holds every chain against its newest signed checkpoint, whose
signature must verify with the public key derived from the master key: when the attacker drops the
head's triggers too, the signed checkpoint still names the cut.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import checkpoint, export, writer
from audit.checkpoint import Checkpoint
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from audit.verify import ChainReport, verify_all, verify_chain
from core.crypto import public_key_pem
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent
from resolvers.context import Services
from tests.audit import test_chain, test_retention
from tests.audit.test_chain import REFUSED, append_only_lifted, careloop, connection, event, is_postgres
from tests.audit.test_retention import Chain, archived_chain
from tests.factories import Tenant, make_patient

pytestmark = pytest.mark.whole_database  # verify walks every institution's chain
head_forward = importlib.import_module("migrations.0014_audit_head_forward")
# Fixtures shared with those modules: the CLI's environment, an institution built event by event, the key.
cli_environment = test_chain.cli_environment
chain, key, public = test_retention.chain, test_retention.key, test_retention.public
FORWARD = "only moves forward"


# -- helpers -----------------------------------------------------------------------------


@asynccontextmanager
async def head_rewind_allowed() -> AsyncIterator[None]:
    """The attacker, as the database's owner, drops 0014's triggers too; they are put back afterwards."""
    if is_postgres():
        drop = ["DROP TRIGGER audit_chain_head_forward ON audit_chain_head",
                "DROP TRIGGER audit_chain_head_no_truncate ON audit_chain_head"]
    else:
        drop = ["DROP TRIGGER audit_chain_head_forward", "DROP TRIGGER audit_chain_head_no_delete",
                "DROP TRIGGER audit_chain_head_no_replace"]
    for statement in drop:
        await connection().execute_script(statement)
    try:
        yield
    finally:
        for statement in head_forward.POSTGRES if is_postgres() else head_forward.SQLITE:
            await connection().execute_script(statement)


async def head(institution_id: uuid.UUID) -> tuple[int, str]:
    row = await AuditChainHead.get(institution_id=institution_id)
    return row.last_seq, row.last_hash


async def signed_then_busy(tenant: Tenant, services: Services) -> int:
    """A checkpoint over the tenant's chain, then more events after it; returns the signed seq."""
    await make_patient(tenant)
    signed = await checkpoint.take(services.master_key.checkpoint_key, tenant.id)
    assert signed is not None
    await make_patient(tenant)
    assert (await head(tenant.id))[0] > signed.last_seq
    return signed.last_seq


async def cut_tail(institution_id: uuid.UUID, keep: int) -> None:
    """The attack, in raw SQL: delete every event after ``keep`` and move the head back to it."""
    kept = await AuditEvent.get(institution_id=institution_id, seq=keep)
    await connection().execute_query(
        f"DELETE FROM audit_event WHERE institution_id = '{institution_id}' AND seq > {keep}")
    await connection().execute_query(
        f"UPDATE audit_chain_head SET last_seq = {keep}, last_hash = '{kept.hash}' "
        f"WHERE institution_id = '{institution_id}'")


async def forge(institution_id: uuid.UUID, last_seq: int, head_hash: str, signer: Ed25519PrivateKey) -> None:
    """A checkpoint row signed with a key that is not careloop's (checkpoints may be inserted)."""
    fake = checkpoint.sign(signer, institution_id, last_seq, head_hash, datetime.now(UTC))
    await AuditCheckpoint.create(institution_id=institution_id, last_seq=last_seq, head_hash=head_hash,
                                 created_at=datetime.fromisoformat(fake.created_at), key_id=fake.key_id,
                                 signature=fake.signature)


# -- the head only moves forward -----------------------------------------------------------


async def test_the_database_refuses_to_move_the_chain_head_back(tenant: Tenant, services: Services,
                                                                public: Ed25519PublicKey) -> None:
    signed = await signed_then_busy(tenant, services)
    last_seq, last_hash = await head(tenant.id)
    keep = signed - 2
    kept = await event(tenant, keep)
    async with append_only_lifted():  # the events' trigger is gone, the head's is not
        await connection().execute_query(
            f"DELETE FROM audit_event WHERE institution_id = '{tenant.id}' AND seq > {keep}")

    where = f"WHERE institution_id = '{tenant.id}'"
    for statement in (f"UPDATE audit_chain_head SET last_seq = {keep}, last_hash = '{kept.hash}' {where}",
                      f"UPDATE audit_chain_head SET last_seq = {keep} {where}",
                      f"UPDATE audit_chain_head SET last_hash = '{kept.hash}' {where}",  # same seq, other hash
                      f"UPDATE audit_chain_head SET last_seq = 0 {where}",
                      f"DELETE FROM audit_chain_head {where}"):
        with pytest.raises(REFUSED, match=FORWARD):
            await connection().execute_query(statement)
    with pytest.raises(REFUSED, match=FORWARD):
        await AuditChainHead.filter(institution_id=tenant.id).update(last_seq=keep, last_hash=kept.hash)
    if is_postgres():
        with pytest.raises(REFUSED, match=FORWARD):
            await connection().execute_script("TRUNCATE audit_chain_head")
        with pytest.raises(REFUSED, match=FORWARD):  # an upsert is an UPDATE
            await connection().execute_query(
                f"INSERT INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES ('{tenant.id}', "
                f"{keep}, '{kept.hash}') ON CONFLICT (institution_id) DO UPDATE SET last_seq = excluded.last_seq, "
                "last_hash = excluded.last_hash")
    else:  # INSERT OR REPLACE deletes the clashing row without a DELETE trigger: the insert is skipped
        await connection().execute_query(
            f"INSERT OR REPLACE INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES ('{tenant.id}', "
            f"{keep}, '{kept.hash}')")
    await writer.start_chain(tenant.id)  # still safe on a chain that has a head
    assert await head(tenant.id) == (last_seq, last_hash)

    # The head stayed where it was, so verification sees the rows missing.
    [report] = await verify_all(tenant.id, public=public)
    assert report == ChainReport(tenant.id, keep, "rows missing after the last event", keep + 1, None)


async def test_the_writer_and_an_unchanged_head_still_pass(tenant: Tenant, services: Services,
                                                           public: Ed25519PublicKey) -> None:
    """Appends move the head forward; an update that leaves it as it is passes (the service role's
    no-op update in test_postgres_role). Fails without 0014: the rewind at the end goes through."""
    before = await head(tenant.id)
    await make_patient(tenant)
    after = await head(tenant.id)
    assert after[0] > before[0]
    await connection().execute_query(
        f"UPDATE audit_chain_head SET last_seq = last_seq, last_hash = last_hash WHERE institution_id = '{tenant.id}'")
    assert await head(tenant.id) == after
    with pytest.raises(REFUSED, match=FORWARD):
        await AuditChainHead.filter(institution_id=tenant.id).update(last_seq=before[0], last_hash=before[1])
    [report] = await verify_all(tenant.id, public=public)
    assert report.ok, report.problem


# -- verification holds every chain against its newest signed checkpoint ----------------------


async def test_a_tail_cut_past_a_checkpoint_is_named(tenant: Tenant, services: Services,
                                                     public: Ed25519PublicKey) -> None:
    signed = await signed_then_busy(tenant, services)
    keep = signed - 3

    async with append_only_lifted(), head_rewind_allowed():
        await cut_tail(tenant.id, keep)
    assert await head(tenant.id) == (keep, (await event(tenant, keep)).hash)  # consistent in itself
    [report] = await verify_all(tenant.id, public=public)

    assert report == ChainReport(tenant.id, keep, f"truncated: a signed checkpoint covers seq {signed}, the chain "
                                                  f"ends at {keep}", keep + 1, None)
    [unkeyed] = await verify_all(tenant.id)  # without the key the position is still compared
    assert unkeyed == report


async def test_a_chain_rewritten_under_a_checkpoint_is_named(tenant: Tenant, services: Services,
                                                             public: Ed25519PublicKey) -> None:
    """Every hash recomputed from an edited row on, and the head set to match: consistent in itself,
    but the event at the signed sequence number no longer has the signed hash."""
    from audit.chain import HASHED_COLUMNS, row_hash

    signed = await signed_then_busy(tenant, services)
    rows = await AuditEvent.filter(institution_id=tenant.id, seq__gte=3).order_by("seq").values(
        *HASHED_COLUMNS, "hash")
    prev_hash = (await event(tenant, 2)).hash
    async with append_only_lifted(), head_rewind_allowed():
        for row in rows:
            row["reason"] = "nothing happened" if row["seq"] == 3 else row["reason"]
            row["prev_hash"], row["hash"] = prev_hash, row_hash({**row, "prev_hash": prev_hash})
            prev_hash = row["hash"]
            await AuditEvent.filter(id=row["id"]).update(reason=row["reason"], prev_hash=row["prev_hash"],
                                                          hash=row["hash"])
        await AuditChainHead.filter(institution_id=tenant.id).update(last_hash=prev_hash)
    target = await event(tenant, signed)
    [report] = await verify_all(tenant.id, public=public)

    assert report == ChainReport(tenant.id, len(rows) + 2, f"rewritten: seq {signed} does not have the signed "
                                                          "head hash", signed, target.id)


async def test_a_deleted_head_does_not_hide_a_chain(tenant: Tenant, services: Services,
                                                    public: Ed25519PublicKey) -> None:
    signed = await signed_then_busy(tenant, services)

    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{tenant.id}'")
    [report] = await verify_all(tenant.id, public=public)
    assert report == ChainReport(tenant.id, 0, f"the chain head is missing: a signed checkpoint covers seq {signed}")
    assert tenant.id in {r.institution_id for r in await verify_all() if not r.ok}  # found without --institution


async def test_a_forged_checkpoint_fails(tenant: Tenant, services: Services, public: Ed25519PublicKey) -> None:
    await signed_then_busy(tenant, services)
    last_seq, last_hash = await head(tenant.id)

    # The newest checkpoint, with the right position and hash, but not signed by careloop's key.
    await forge(tenant.id, last_seq, last_hash, Ed25519PrivateKey.generate())
    [report] = await verify_all(tenant.id, public=public)

    assert report == ChainReport(tenant.id, 0, f"checkpoint at seq {last_seq}: the signature does not verify with "
                                               "this public key", last_seq)


async def test_every_checkpoint_is_held_not_only_the_newest(tenant: Tenant, services: Services,
                                                             public: Ed25519PublicKey) -> None:
    """Verify checked the newest checkpoint alone: one inserted below it (the service role may insert checkpoints),
    or one altered by the owner, passed verify, while the auditor's offline check, given every checkpoint, failed
    on it, and the operator had nothing naming the row (found in review). Each is held now: its signature, and
    the hash of its event while the event is held."""
    signed = await signed_then_busy(tenant, services)
    assert signed > 3 and await checkpoint.take(services.master_key.checkpoint_key, tenant.id) is not None
    third = await event(tenant, 3)
    [intact] = await verify_all(tenant.id, public=public)
    assert intact.ok, intact.problem

    await forge(tenant.id, 3, third.hash, Ed25519PrivateKey.generate())
    [forged] = await verify_all(tenant.id, public=public)

    assert forged == ChainReport(tenant.id, intact.events, "checkpoint at seq 3: the signature does not verify with "
                                                           "this public key", 3)
    # careloop's key, another hash: as if the chain were rewritten under it (named first: seq 2 comes before 3)
    await forge(tenant.id, 2, "f" * 64, services.master_key.checkpoint_key)
    [rewritten] = await verify_all(tenant.id, public=public)
    assert rewritten == ChainReport(tenant.id, intact.events, "rewritten: seq 2 does not have the signed head hash",
                                    2, (await event(tenant, 2)).id)


async def test_a_forged_checkpoint_under_an_archive_anchor_fails(chain: Chain, public: Ed25519PublicKey) -> None:
    """An anchor written by hand at a forged checkpoint: the signature is checked before anything else."""
    await chain.add(5)
    await chain.sign()  # careloop's, at 5
    third = await AuditEvent.get(institution_id=chain.id, seq=3)
    await forge(chain.id, 3, third.hash, Ed25519PrivateKey.generate())
    await AuditArchive.create(institution_id=chain.id, up_to_seq=3, up_to_hash=third.hash,
                              archived_at=datetime.now(UTC), events=3, sha256="0" * 64)

    [report] = await verify_all(chain.id, public=public)
    assert report == ChainReport(chain.id, 0, "checkpoint at seq 3: the signature does not verify with this public "
                                              "key", 3, None, 3)


async def test_an_intact_chain_with_checkpoints_verifies(tenant: Tenant, services: Services,
                                                        public: Ed25519PublicKey) -> None:
    await signed_then_busy(tenant, services)  # events after the newest checkpoint are fine
    count = await tenant.audit_count()
    assert await verify_all(tenant.id, public=public) == [ChainReport(tenant.id, count)]

    newest = await checkpoint.take(services.master_key.checkpoint_key, tenant.id)  # at the head itself
    assert newest is not None and newest.last_seq == count
    assert await verify_all(tenant.id, public=public) == [ChainReport(tenant.id, count)]

    # The verdict rests on the signature: with any other key the same intact chain is not vouched for.
    stranger = Ed25519PrivateKey.generate().public_key()
    assert await verify_all(tenant.id, public=stranger) == [ChainReport(
        tenant.id, 0, f"checkpoint at seq {count}: the signature does not verify with this public key", count)]


# -- a live trail ------------------------------------------------------------------------------


async def test_events_appended_after_the_head_was_read_are_walked_not_missing(chain: Chain) -> None:
    """``verify_all`` reads every chain's head, then walks the chains one after the other: on a live trail events
    are appended meanwhile, their rows walked past the head read (found in review: "rows missing after the last
    event" on an intact chain)."""
    await chain.add(3)
    read_before = await AuditChainHead.get(institution_id=chain.id)
    await chain.add(2)  # appended while another chain was walked

    assert await verify_chain(chain.id, read_before) == ChainReport(chain.id, 5)

    # A tail cut is still named when the head moved on meanwhile: the head read again does not hold the rows.
    last = await AuditEvent.get(institution_id=chain.id, seq=5)
    async with append_only_lifted():
        await AuditEvent.filter(id=last.id).delete()
    assert await verify_chain(chain.id, read_before) == ChainReport(
        chain.id, 4, "rows missing after the last event", 5, None)


# -- after archiving ------------------------------------------------------------------------


async def test_a_chain_after_archiving_verifies_and_a_cut_is_still_named(chain: Chain, public: Ed25519PublicKey,
                                                                         tmp_path: Path) -> None:
    """Seq 1-7 archived (signed at 4, 7 and 11), 8-12 left (12: the archive's record)."""
    await archived_chain(chain, public, tmp_path)
    assert await verify_all(chain.id, public=public) == [ChainReport(chain.id, 5, archived=7)]
    assert await chain.sign() == 12
    assert await verify_all(chain.id, public=public) == [ChainReport(chain.id, 5, archived=7)]

    async with append_only_lifted(), head_rewind_allowed():
        await cut_tail(chain.id, 9)
    assert await verify_all(chain.id, public=public) == [ChainReport(
        chain.id, 2, "truncated: a signed checkpoint covers seq 12, the chain ends at 9", 10, None, 7)]


async def test_a_chain_archived_up_to_its_newest_checkpoint_verifies(chain: Chain, public: Ed25519PublicKey,
                                                                     tmp_path: Path) -> None:
    """The newest checkpoint is the anchor's: its hash is the anchor's, no event left holds it."""
    from audit import archive

    await chain.add(3)
    await chain.sign()
    anchor = await archive.archive(chain.id, tmp_path / "a.ndjson", public)
    assert anchor is not None and anchor.up_to_seq == 3
    assert await verify_all(chain.id, public=public) == [ChainReport(chain.id, 1, archived=3)]

    await chain.sign()  # the archive's record, at 4
    async with append_only_lifted(), head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_event WHERE institution_id = '{chain.id}' AND seq = 4")
        await connection().execute_query(f"UPDATE audit_chain_head SET last_seq = 3, last_hash = "
                                         f"'{anchor.up_to_hash}' WHERE institution_id = '{chain.id}'")
    assert await verify_all(chain.id, public=public) == [ChainReport(
        chain.id, 0, "truncated: a signed checkpoint covers seq 4, the chain ends at 3", 4, None, 3)]


# -- the command line, as an operator runs it -------------------------------------------------


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_names_a_tail_cut_past_a_checkpoint(tenant: Tenant, services: Services) -> None:
    signed = await signed_then_busy(tenant, services)
    count = await tenant.audit_count()
    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))
    assert (code, stdout) == (0, f"{tenant.id}: {count} events, chain intact\n"), stderr
    keep = signed - 3

    # Server stopped; the owner drops the events' trigger, deletes the tail, moves the head back.
    async with append_only_lifted():
        await connection().execute_query(
            f"DELETE FROM audit_event WHERE institution_id = '{tenant.id}' AND seq > {keep}")
        with pytest.raises(REFUSED, match=FORWARD):  # the head does not follow
            await cut_tail(tenant.id, keep)
        code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))
        assert code == 1, stdout + stderr
        assert stdout == f"{tenant.id}: FIRST BAD ROW seq {keep + 1} (id -): rows missing after the last event\n"

        async with head_rewind_allowed():  # so the owner drops the head's triggers too
            await cut_tail(tenant.id, keep)
    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 1, stdout + stderr
    assert stdout == (f"{tenant.id}: FIRST BAD ROW seq {keep + 1} (id -): truncated: a signed checkpoint covers seq "
                      f"{signed}, the chain ends at {keep}\n"), stderr


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_refuses_a_forged_checkpoint(tenant: Tenant, services: Services) -> None:
    await signed_then_busy(tenant, services)
    last_seq, last_hash = await head(tenant.id)
    await forge(tenant.id, last_seq, last_hash, Ed25519PrivateKey.generate())

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 1, stdout + stderr
    assert stdout == (f"{tenant.id}: FIRST BAD ROW seq {last_seq} (id -): checkpoint at seq {last_seq}: the "
                      "signature does not verify with this public key\n"), stderr


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_finds_a_chain_whose_head_was_deleted(tenant: Tenant, services: Services) -> None:
    signed = await signed_then_busy(tenant, services)
    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{tenant.id}'")

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 1, stdout + stderr
    assert stdout == (f"{tenant.id}: FIRST BAD ROW seq - (id -): the chain head is missing: a signed checkpoint "
                      f"covers seq {signed}\n"), stderr


async def offline_files(tenant: Tenant, services: Services,
                        tmp_path: Path) -> tuple[Checkpoint, tuple[Path, Path, Path]]:
    """The three files of the offline check, as an auditor is given them: the trail exported as NDJSON, a checkpoint
    signed at its head, the public key."""
    key = services.master_key.checkpoint_key
    signed = await checkpoint.take(key, tenant.id)
    assert signed is not None
    trail, signatures, pem = tmp_path / "trail.ndjson", tmp_path / "checkpoints.ndjson", tmp_path / "careloop.pub"
    with trail.open("w", encoding="utf-8") as out:
        await export.write(tenant.id, "ndjson", out)
    signatures.write_text(json.dumps(signed.to_json()) + "\n", encoding="utf-8")
    pem.write_bytes(public_key_pem(key))
    return signed, (trail, signatures, pem)


@pytest.mark.usefixtures("cli_environment")
async def test_cli_checks_an_export_offline_whatever_the_locale(tenant: Tenant, services: Services, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An export is UTF-8 and keeps other scripts as they are (a user agent is any request's header). The offline
    check read it in the machine's locale encoding, so on an auditor's machine that is not UTF-8 (Windows' cp1252,
    a bare C locale) an intact export did not verify (found in review)."""
    await writer.append([AuditRecord(tenant.id, Actor("anonymous"), Action.LOGIN, "session", Outcome.DENIED,
                                     RequestMeta(user_agent="Mozilla/5.0 MicroMessenger 微信 café"))])
    signed, (trail, signatures, pem) = await offline_files(tenant, services, tmp_path)
    for name, value in (("LC_ALL", "C"), ("PYTHONUTF8", "0"), ("PYTHONCOERCECLOCALE", "0")):  # not UTF-8
        monkeypatch.setenv(name, value)

    code, stdout, stderr = await careloop("audit", "verify", "--export", str(trail), "--checkpoint", str(signatures),
                                          "--public-key", str(pem))

    assert code == 0, stdout + stderr
    assert stdout.startswith(f"{signed.last_seq} events, chain intact"), stdout


@pytest.mark.usefixtures("cli_environment")
async def test_bad_input_to_the_audit_commands_is_told_in_a_line(tenant: Tenant, services: Services,
                                                                 tmp_path: Path) -> None:
    """A damaged file given to the offline check, or a time the operator mistyped, ended in a Python traceback
    (found in review): a byte that is not UTF-8 in an export (UnicodeDecodeError), a checkpoint file with a line that
    is none (KeyError, JSONDecodeError), a file that is not a public key, `--from yesterday` or a time whose UTC
    falls before year 1. Now a damaged export is NOT VERIFIED at its line (exit 1), and bad input is one line
    naming the option (exit 2)."""
    _, (trail, signatures, pem) = await offline_files(tenant, services, tmp_path)
    lines = trail.read_bytes().splitlines(keepends=True)
    trail.write_bytes(b"".join([*lines[:1], lines[1].replace(b'"seq"', b'"s\xe9q"', 1), *lines[2:]]))
    offline = ("audit", "verify", "--export", str(trail), "--checkpoint", str(signatures), "--public-key", str(pem))

    damaged = await careloop(*offline)

    assert damaged[:2] == (1, "NOT VERIFIED: line 2: not an exported audit event\n"), damaged
    refusals: dict[tuple[str, object], tuple[int, str, str]] = {}
    for option, wrong in (("--checkpoint", b'{"seq": 1}\n'), ("--checkpoint", b"\xff\n"), ("--checkpoint", b"[" * 9999),
                          ("--public-key", b"-----BEGIN PUBLIC KEY-----\n"), ("--export", None)):
        place = tmp_path / "wrong"
        place.unlink(missing_ok=True)
        if wrong is not None:  # else a file that is not there
            place.write_bytes(wrong)
        args = list(offline)
        args[args.index(option) + 1] = str(place)
        refusals[option, wrong] = await careloop(*args)
    institution = ("--institution", str(tenant.id))
    for when in ("yesterday", "0001-01-01T00:00:00+05:00"):
        refusals["--from", when] = await careloop("audit", "export", *institution, "--from", when, "--output",
                                                   str(tmp_path / "out.ndjson"))
        refusals["--before", when] = await careloop("audit", "archive", *institution, "--before", when, "--output",
                                                     str(tmp_path / "archive.ndjson"))
        refusals["--to", when] = await careloop("audit", "checkpoints", *institution, "--to", when, "--output",
                                                 str(tmp_path / "signed.ndjson"))

    for (option, _), (code, stdout, stderr) in refusals.items():
        assert code == 2 and stderr.startswith(f"careloop: {option}: ") and stderr.count("\n") == 1, (
            option, stdout + stderr)
    assert not any((tmp_path / name).exists() for name in ("out.ndjson", "archive.ndjson", "signed.ndjson"))


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_finds_a_chain_whose_head_was_deleted_before_any_checkpoint(tenant: Tenant) -> None:
    """No signed checkpoint names the chain yet: its events do (verify said nothing of it, a clean bill)."""
    await make_patient(tenant)
    last = max(e.seq for e in await tenant.audit_events())
    assert not await AuditCheckpoint.exists(institution_id=tenant.id)
    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{tenant.id}'")

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(tenant.id))

    assert code == 1, stdout + stderr
    assert stdout == (f"{tenant.id}: FIRST BAD ROW seq - (id -): the chain head is missing: the chain holds events "
                      f"from seq 1 to {last}\n"), stderr
    [report] = await verify_all(tenant.id)
    assert report.kind is not None and report.kind.value == "head_missing"
