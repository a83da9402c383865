"""Whether the audit trail is intact, for compliance officers: the verification ``careloop audit verify`` runs, a
bounded stretch of the chain per call (``resolvers/audit_chain.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry

from audit.checkpoint import Checkpoint
from audit.verify import Fault
from core.errors import AuditUnrecorded
from resolvers import audit_chain
from resolvers.audit_chain import Verification
from schema.common import Info

_FAULTS = {
    Fault.SEQUENCE_GAP: "An event is missing from the chain: seq is the first event after the gap (detail names the "
                        "one expected).",
    Fault.TRUNCATED: "Events are missing at the end: the chain's head, or a signed checkpoint, covers more than is "
                     "there. seq is the first one missing.",
    Fault.BROKEN_LINK: "The event does not link to the hash of the event before it.",
    Fault.HASH_MISMATCH: "The event's content (or its hash) was changed: they no longer match.",
    Fault.MAC_MISMATCH: "The event's MAC was not made with this deployment's key: a row written by someone without "
                        "it.",
    Fault.MAC_MISSING: "The event carries no MAC, though earlier events of the chain do.",
    Fault.INDEX_MISMATCH: "The per-patient index does not match the event it indexes, or names no event of the "
                          "chain.",
    Fault.CHECKPOINT_SIGNATURE: "A signed checkpoint's signature does not verify with this deployment's key: seq is "
                                "the sequence number it claims to sign.",
    Fault.CHECKPOINT_MISMATCH: "The event at a signed checkpoint does not have the hash it signed: the chain was "
                               "rewritten.",
    Fault.HEAD_MISSING: "The chain's head row is missing, though the chain has begun (it has events, an archive "
                        "anchor or a signed checkpoint): deleted. Nothing more is appended to the chain, so this "
                        "call is not on the trail either (an INTERNAL_SERVER_ERROR, reason audit_unrecorded, says "
                        "so beside the answer).",
    Fault.ARCHIVE_ANCHOR: "The archive anchor (where archived events end) is not what was signed and recorded, or "
                          "events lie under it.",
    Fault.REPLAYED_EVENT: "An event older than what the archive run archived was linked after it: an archived event "
                          "replayed.",
    Fault.INBOX: "A row of PostgreSQL's inbox of events waiting to be linked was not written by careloop, or is an "
                 "event the chain misses (seq is null).",
}
UNRECORDED = ("The audit trail could not record this verification: the chain's head is missing (fault HEAD_MISSING), "
              "and nothing is appended to such a chain. The answer is given so that the fault is known; tell your "
              "administrator.")
strawberry.enum(Fault, name="AuditChainFaultKind", description="What kind of fault a verification of the audit "
                                                               "chain found.")
for _value in cast(Any, Fault).__strawberry_definition__.values:
    _value.description = _FAULTS[Fault(_value.value)]


@strawberry.type(description="The first fault a verification found.")
class AuditChainFault:
    kind: Fault = strawberry.field(description="What kind of fault, for machines.")
    seq: int | None = strawberry.field(description="The first bad sequence number of the chain; null when the fault "
                                                   "is beside the chain (the inbox, a missing head).")
    event_id: strawberry.ID | None = strawberry.field(description="The audit event at seq (AuditEvent.id); null when "
                                                                  "no event is there (a gap, a cut tail) or the "
                                                                  "fault is not an event's.")
    detail: str = strawberry.field(description="The fault in words, as `careloop audit verify` prints it: sequence "
                                               "numbers and hashes, never an event's content.")


@strawberry.type(description="A signed checkpoint of the chain: the head the signer saw, signed with Ed25519.")
class AuditChainCheckpoint:
    last_seq: int = strawberry.field(description="The last event it covers.")
    head_hash: str = strawberry.field(description="That event's hash, as signed.")
    signed_at: datetime = strawberry.field(description="When it was signed.")
    signature_valid: bool = strawberry.field(description="Whether its signature verifies with this deployment's "
                                                         "checkpoint key.")

    @classmethod
    def of(cls, signed: Checkpoint, valid: bool | None) -> AuditChainCheckpoint:
        return cls(last_seq=signed.last_seq, head_hash=signed.head_hash,
                   signed_at=datetime.fromisoformat(signed.created_at), signature_valid=valid is True)


@strawberry.type(description="What one call verified of the institution's audit chain, and whether it held.")
class AuditChainVerification:
    intact: bool = strawberry.field(description="No fault in what was verified (with reachedHead: the whole chain, "
                                                "or the stretch from fromSeq to the head).")
    from_seq: int | None = strawberry.field(description="Where the stretch began: the chain's first event held (after "
                                                        "the archive anchor: events up to archivedThroughSeq are in "
                                                        "archive files), fromSeq, or the event after the cursor; null "
                                                        "when the institution has no chain yet.")
    to_seq: int | None = strawberry.field(description="The last event that verified; null when none did.")
    events_verified: int = strawberry.field(description="Events that verified, fromSeq to toSeq.")
    head_seq: int | None = strawberry.field(description="The chain's last event when the walk ended; null when the "
                                                        "chain has no head (HEAD_MISSING), or no chain yet, or a "
                                                        "checkpoint's signature stopped the walk first.")
    archived_through_seq: int = strawberry.field(description="Events up to this one were archived to files (0: "
                                                             "none); the chain verifies from its archive anchor.")
    reached_head: bool = strawberry.field(
        description="The stretch reached the chain's head, and the checks of the whole chain ran too: the newest "
                    "signed checkpoint's coverage (a cut tail), the archive run's record, stray index rows, and "
                    "events waiting in (or set aside from) PostgreSQL's inbox, their MACs checked. False: more events "
                    "follow (hasMore), or a fault stopped the walk.")
    inbox_sealed: bool = strawberry.field(description="Events waiting in PostgreSQL's inbox were linked into the "
                                                      "chain before the walk, so it covers them; false on SQLite, "
                                                      "which has no inbox.")
    checkpoint: AuditChainCheckpoint | None = strawberry.field(
        description="The newest signed checkpoint the verified events were held against (the chain's newest when "
                    "the head was reached or a fault found, else the newest within the stretch); null when none.")
    fault: AuditChainFault | None = strawberry.field(description="The first fault found; null when intact.")
    has_more: bool = strawberry.field(description="The stretch verified and stopped at its bound before the head: "
                                                  "pass endCursor as `after` for the next one.")
    end_cursor: str | None = strawberry.field(
        description="Goes on after the last event verified: pass it as `after` to verify the next stretch (hasMore), "
                    "or later, once the head is reached, the events recorded since. Null after a fault, and when no "
                    "event verified.")

    @classmethod
    def of(cls, verification: Verification) -> AuditChainVerification:
        report = verification.report
        if report is None:  # no chain yet: nothing to verify, nothing wrong
            return cls(intact=True, from_seq=None, to_seq=None, events_verified=0, head_seq=None,
                       archived_through_seq=0, reached_head=True, inbox_sealed=verification.inbox_sealed,
                       checkpoint=None, fault=None, has_more=False, end_cursor=None)
        fault = None if report.ok or report.kind is None else AuditChainFault(
            kind=report.kind, seq=report.seq, event_id=None if report.event_id is None else strawberry.ID(
                str(report.event_id)), detail=report.problem)
        signed = report.held_against
        return cls(
            intact=report.ok, from_seq=verification.first_seq, to_seq=verification.last_seq,
            events_verified=report.events, head_seq=report.head_seq, archived_through_seq=report.archived,
            reached_head=report.ok and report.complete, inbox_sealed=verification.inbox_sealed,
            checkpoint=None if signed is None else AuditChainCheckpoint.of(signed, report.held_signature_valid),
            fault=fault, has_more=report.ok and not report.complete, end_cursor=verification.cursor)


@strawberry.type
class AuditChainQuery:
    @strawberry.field(description="Verify your institution's audit chain (compliance officers; anyone else is "
                                  "FORBIDDEN, on the record): its hash chain, MACs, signed checkpoints and per-patient "
                                  "index, as `careloop audit verify` does, a bounded stretch per call. Walk the whole "
                                  "chain with `after`; the verification is itself on the trail.")
    async def audit_chain_verification(
        self, info: Info,
        first: Annotated[int, strawberry.argument(
            description=f"At most this many events, 1 to {audit_chain.MAX_EVENTS} (BAD_USER_INPUT outside).")]
        = audit_chain.MAX_EVENTS,
        after: Annotated[str | None, strawberry.argument(
            description="Go on after the previous call's endCursor; null: from the chain's first event "
                        "held (or fromSeq).")] = None,
        from_seq: Annotated[int | None, strawberry.argument(
            description="Start at this sequence number, linked to the event before it as stored (when a signed "
                        "checkpoint is at that event, its hash is held against it: `checkpoint.lastSeq + 1` verifies "
                        "from the newest checkpoint to the head). Not with after.")] = None,
    ) -> AuditChainVerification | None:
        verification = await audit_chain.verify(info.context, first=first, after=after, from_seq=from_seq)
        if not verification.recorded:  # the answer names HEAD_MISSING; the error says the call is not on the trail
            unrecorded = AuditUnrecorded(UNRECORDED)
            unrecorded.path = info.path.as_list()
            info.context.add_error(unrecorded)
        return AuditChainVerification.of(verification)
