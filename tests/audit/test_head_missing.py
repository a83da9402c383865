"""A chain whose head row was deleted (by someone with the database owner's rights, 0014's triggers dropped).

Verification named it only when a signed checkpoint named the chain; before the first checkpoint it said "no chain
yet", a clean bill. And the writer, finding no head, started the chain again at seq 1: refused by the unique key
while seq 1 is held (the write failed with an unexplained error), but after an archive run (seq 1 in a file) a second
chain forked silently from the genesis hash. Now a chain with any event, archive anchor or checkpoint and no head is
HEAD_MISSING, and the writer refuses to append to it (``writer.ChainHeadMissing``): nothing of the write lands. Only
an institution with none of them starts a chain."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import checkpoint, writer
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import WHOLE, ChainReport, Fault, Stretch, verify_all, verify_stretch
from models import AuditArchive, AuditChainHead, AuditCheckpoint, AuditEvent
from resolvers.context import Services
from tests.audit import test_retention
from tests.audit.test_chain import connection
from tests.audit.test_inbox import head_held, require_postgres, seqs, waiting
from tests.audit.test_retention import Chain, archived_chain
from tests.audit.test_verify_truncation import head_rewind_allowed
from tests.factories import Tenant, make_patient

chain, key, public = test_retention.chain, test_retention.key, test_retention.public


async def delete_the_head(institution_id: uuid.UUID) -> None:
    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{institution_id}'")


def a_record(institution_id: uuid.UUID) -> AuditRecord:
    return AuditRecord(institution_id, Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                       patient_id=uuid.uuid4(), fields_read=frozenset({"phone"}))


async def test_a_deleted_head_before_any_checkpoint_is_head_missing(tenant: Tenant, public: Ed25519PublicKey) -> None:
    await make_patient(tenant)
    last = (await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()).seq  # type: ignore[union-attr]
    assert not await AuditCheckpoint.exists(institution_id=tenant.id)
    await delete_the_head(tenant.id)

    [report] = await verify_all(tenant.id, public=public)

    assert report == ChainReport(tenant.id, 0, f"the chain head is missing: the chain holds events from seq 1 to "
                                               f"{last}")
    assert (report.kind, report.first_seq, report.head_seq, report.complete) == (Fault.HEAD_MISSING, 1, None, True)
    for stretch in (WHOLE, Stretch(limit=3), Stretch(start=2, limit=3)):
        bounded = await verify_stretch(tenant.id, stretch, public=public)
        assert bounded is not None and bounded.kind is Fault.HEAD_MISSING, stretch


async def test_the_writer_refuses_a_chain_without_its_head(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    await make_patient(tenant)
    before = await AuditEvent.filter(institution_id=tenant.id).count()
    await delete_the_head(tenant.id)
    record = a_record(tenant.id)

    with caplog.at_level(logging.ERROR, logger="careloop.audit"), pytest.raises(writer.ChainHeadMissing):
        await writer.append([record])

    assert await AuditEvent.filter(institution_id=tenant.id).count() == before
    assert not await AuditChainHead.exists(institution_id=tenant.id)  # not started again: the deletion stays seen
    [line] = [r.getMessage() for r in caplog.records if "is missing though the chain has" in r.getMessage()]
    assert str(record.patient_id) not in line and str(record.actor.id) not in line


async def test_an_archived_chain_without_its_head_does_not_fork_at_seq_one(chain: Chain, public: Ed25519PublicKey,
                                                                           tmp_path: Path) -> None:
    """Seq 1 is in an archive file: a head started again linked a second chain there, from the genesis hash."""
    await archived_chain(chain, public, tmp_path)
    held = await chain.seqs()
    await delete_the_head(chain.id)

    with pytest.raises(writer.ChainHeadMissing):
        await writer.append([a_record(chain.id)])

    assert await chain.seqs() == held and held[0] > 1
    assert not await AuditChainHead.exists(institution_id=chain.id)
    assert (await chain.report()).kind is Fault.HEAD_MISSING


async def test_an_anchor_or_a_checkpoint_alone_is_a_chain(services: Services) -> None:
    """Every event deleted with the head: what is left (an anchor, a checkpoint) still says a chain was there."""
    anchored, signed = uuid.uuid4(), uuid.uuid4()
    await AuditArchive.create(institution_id=anchored, up_to_seq=3, up_to_hash="a" * 64, archived_at=datetime.now(UTC),
                              events=3, sha256="0" * 64)
    made = checkpoint.sign(services.master_key.checkpoint_key, signed, 3, "b" * 64, datetime.now(UTC))
    await AuditCheckpoint.create(institution_id=signed, last_seq=3, head_hash=made.head_hash,
                                 created_at=datetime.fromisoformat(made.created_at), key_id=made.key_id,
                                 signature=made.signature)

    for institution_id in (anchored, signed):
        [report] = await verify_all(institution_id)
        assert not report.ok
        stretch = await verify_stretch(institution_id, WHOLE)
        assert stretch is not None and not stretch.ok
        with pytest.raises(writer.ChainHeadMissing):
            await writer.append([a_record(institution_id)])
        assert not await AuditEvent.exists(institution_id=institution_id)
    assert (await verify_stretch(signed, WHOLE)).kind is Fault.HEAD_MISSING  # type: ignore[union-attr]


async def test_a_fresh_institution_starts_its_chain(database: str, database_url: str) -> None:
    fresh = uuid.uuid4()
    assert await verify_all(fresh) == [] and await verify_stretch(fresh, WHOLE) is None

    await writer.append([a_record(fresh), a_record(fresh)])

    assert [e.seq for e in await AuditEvent.filter(institution_id=fresh).order_by("seq")] == [1, 2]
    [report] = await verify_all(fresh)
    assert report.ok and report.events == 2


async def test_events_waiting_in_the_inbox_of_a_headless_chain_are_not_linked_to_a_new_one(
        tenant: Tenant, database: str, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL: an event posted to the inbox while another transaction held the head, which then deleted it. No
    seal links it (the readers', the sealing loop's) onto a chain started again; the chain is named HEAD_MISSING."""
    require_postgres()
    before = await seqs(tenant.id)
    last = await AuditChainHead.get(institution_id=tenant.id)
    async with head_rewind_allowed():
        async with head_held(database, tenant.id) as other:
            await writer.append([a_record(tenant.id)])  # the head is busy: posted to the inbox
            await other.execute("DELETE FROM audit_chain_head WHERE institution_id = $1", tenant.id)
            await other.execute("COMMIT")
    assert await waiting(tenant.id) == 1
    try:
        with pytest.raises(writer.ChainHeadMissing):
            await writer.seal(tenant.id)
        await writer.seal_all()  # the service's start-up: the other chains are sealed, this one passed over
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="careloop.audit"):
            await writer.seal_pending(0)  # told in the log once, and the other chains sealed all the same
            await writer.seal_pending(0)  # the loop looks every second: not a line a second

        assert await seqs(tenant.id) == before and await waiting(tenant.id) == 1
        assert not await AuditChainHead.exists(institution_id=tenant.id)
        [report] = await verify_all(tenant.id)
        assert report.kind is Fault.HEAD_MISSING
        told = [r.getMessage() for r in caplog.records if str(tenant.id) in r.getMessage()]
        assert len(told) == 1 and "is missing though the chain has" in told[0]
    finally:  # the operator's repair (the shared database's sealing loop must not meet the chain): the head put back
        await AuditChainHead.create(institution_id=tenant.id, last_seq=last.last_seq, last_hash=last.last_hash)
        await writer.seal(tenant.id)
    assert await seqs(tenant.id) == [*before, last.last_seq + 1] and await waiting(tenant.id) == 0
    assert (await verify_all(tenant.id))[0].ok
