"""The audit chain's verification for compliance officers (``audit: read``): whether their institution's trail is
intact, answered by ``audit.verify``'s walk (the one ``careloop audit verify`` runs: hash chain, MACs, signed
checkpoints, the per-patient index, PostgreSQL's inbox), over a bounded stretch per call.

A call verifies at most ``MAX_EVENTS`` events (about a second: bench/README.md, "audit verify events/s"), from the
chain's first event held, from a sequence number, or after the previous call's cursor, so that a portal walks a chain
of millions of events a call at a time, and a request never runs unbounded. The cursor holds the last event verified
and its hash: the next call links to that event as stored, and names it if its hash changed in between. It is sealed
under the institution's key (``pagination.seal``): the server's word on its own chain, which a client cannot write,
edit, or bring from another institution (found in review: base64 only, a cursor written by hand made the answer and the
trail blame a sound event, or a sequence number no GraphQL Int holds). At most
``VERIFYING_AT_ONCE`` calls run at once per institution (``RATE_LIMITED`` beyond).

The verification is on the trail itself (action read, resource ``audit_chain``), after the walk and before the answer
leaves: which stretch, and whether it held (the fault's kind and sequence number). The answer and the record hold
sequence numbers, hashes and the event's id, never an event's content.

One fault keeps the verification's own record off the trail: a chain whose head row was deleted (HEAD_MISSING), to
which the writer appends nothing (``writer.ChainHeadMissing``). Refusing the answer then, as any operation whose record
cannot be written is refused, would hide the fault from the officer who asked for it; so the answer is given, naming
the fault, and ``recorded`` is false: the schema adds an error (INTERNAL_SERVER_ERROR, reason ``audit_unrecorded``)
saying that the call could not be recorded (docs/compliance.md). Any other failure to record withholds the answer.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from audit import writer
from audit.events import Action, AuditRecord, Outcome
from audit.verify import ChainReport, Fault, Stretch, verify_stretch
from core.errors import BadUserInput
from models import AuditChainHead, AuditEvent
from resolvers import access, pagination
from resolvers.context import Context

MAX_EVENTS = 50_000  # a call's bound, and its default
CURSOR_KIND = "audit_chain"
MAX_CURSOR = 200  # a sealed cursor's length: 18 digits, a bar and a hash, sealed, in base64 (about 150)
RESOURCE_TYPE = "audit_chain"
log = logging.getLogger("careloop.audit")


@dataclass(frozen=True)
class Verification:
    report: ChainReport | None  # None: the institution has no chain yet
    start: int | None  # where the stretch began (the chain's first event held unless asked otherwise)
    inbox_sealed: bool  # events waiting in PostgreSQL's inbox were linked into the chain before the walk
    cursor: str | None  # to go on after the last event verified; None after a fault, or when none was verified
    recorded: bool = True  # False: the chain's head is missing (the fault named), so the call is not on the trail

    @property
    def first_seq(self) -> int | None:
        return self.report.first_seq if self.report is not None and self.report.first_seq else self.start

    @property
    def last_seq(self) -> int | None:
        """The last event that verified: the stretch is walked in order, so its first plus those checked."""
        if self.report is None or not self.report.events or self.first_seq is None:
            return None
        return self.first_seq + self.report.events - 1


async def verify(ctx: Context, *, first: int, after: str | None, from_seq: int | None) -> Verification:
    decision = await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type=RESOURCE_TYPE)
    if not 1 <= first <= MAX_EVENTS:
        raise BadUserInput(f"first: must be between 1 and {MAX_EVENTS}.", field="first", reason="out_of_range")
    institution_id = ctx.institution_id
    stretch = await _stretch(ctx, first, after, from_seq)
    keys = ctx.services.master_key
    with ctx.services.verifications.slot(institution_id):
        try:
            await writer.seal(institution_id)
        except writer.ChainHeadMissing:  # events wait in the inbox of a chain without its head: the walk names it
            pass
        report = await verify_stretch(institution_id, stretch, public=keys.checkpoint_key.public_key(),
                                      mac_key=keys.audit_mac_key)
    sealed = AuditEvent._meta.db.capabilities.dialect == "postgres"  # SQLite has no inbox: its appends link at once
    verification = Verification(report, stretch.start or 1, sealed, _cursor(ctx, report))
    if not await _record(ctx, decision.rule, verification):
        return dataclasses.replace(verification, recorded=False)
    return verification


async def _stretch(ctx: Context, first: int, after: str | None, from_seq: int | None) -> Stretch:
    if after is not None and from_seq is not None:
        raise BadUserInput("fromSeq: not with after, which goes on where the previous call ended.", field="fromSeq")
    if after is not None:
        seq, hash_ = _opened(ctx, after)
        return Stretch(start=seq + 1, limit=first, start_hash=hash_)
    if from_seq is None:
        return Stretch(limit=first)
    head = await AuditChainHead.get_or_none(institution_id=ctx.institution_id)
    last = head.last_seq if head is not None else 0
    if not 1 <= from_seq <= last + 1:
        raise BadUserInput(f"fromSeq: must be between 1 and the chain's head plus one ({last + 1}).",
                           field="fromSeq", reason="out_of_range")
    return Stretch(start=from_seq, limit=first)


def _opened(ctx: Context, cursor: str) -> tuple[int, str]:
    """A cursor's last event verified: its sequence number and its hash then."""
    key = pagination.open_sealed(ctx.require_keys(), CURSOR_KIND, cursor, MAX_CURSOR)
    seq, _, hash_ = key.partition("|")
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 18 and len(hash_) == 64
            and all(c in "0123456789abcdef" for c in hash_)):
        raise BadUserInput("after: not a valid cursor.", field="after")
    return int(seq), hash_


def _cursor(ctx: Context, report: ChainReport | None) -> str | None:
    if report is None or not report.ok or report.last_seq is None:
        return None
    return pagination.seal(ctx.require_keys(), CURSOR_KIND, f"{report.last_seq}|{report.last_hash}")


async def _record(ctx: Context, rule: str, verification: Verification) -> bool:
    """The verification on the trail: the stretch and its outcome, never an event's content. False when the chain's
    head is missing, as the verification found it: the writer appends nothing to such a chain, and the answer names
    the fault all the same."""
    report = verification.report
    details = {f"from_seq:{verification.first_seq}"}
    if verification.last_seq is not None:
        details.add(f"to_seq:{verification.last_seq}")
    details.add(f"intact:{'true' if report is None or report.ok else 'false'}")
    if report is not None and report.kind is not None:
        details.add(f"fault:{report.kind.value}")
    if report is not None and report.seq is not None:
        details.add(f"fault_seq:{report.seq}")
    try:
        await ctx.services.audit.append([AuditRecord(
            ctx.institution_id, ctx.actor, Action.READ, RESOURCE_TYPE, Outcome.ALLOWED, ctx.request,
            field_classes=frozenset({"audit"}), fields_read=frozenset(details), policy_rule=rule)])
    except writer.ChainHeadMissing:
        if report is None or report.kind is not Fault.HEAD_MISSING:  # lost after the walk: nothing says so, refuse
            raise
        log.error("an audit chain verification found the chain head missing and could not be recorded; its answer "
                  "names the fault, request %s", ctx.request.request_id)
        return False
    ctx.recorded = True
    return True
