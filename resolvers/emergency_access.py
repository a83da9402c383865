"""Break-glass: a clinician opens a file outside their reach by stating a reason.

The access lasts a few hours (default and maximum 4; it ends at once when the account is deactivated or loses
its last role that may break the glass), opens the file as the clinician's care team
would see it, is recorded as emergency access (the grant, and every read under it, name the
grant), and waits in a review queue until a compliance officer records a review.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from audit import writer
from audit.events import Action
from core.errors import BadUserInput, Forbidden
from core.ids import uuid7
from core.validation import Problems, clean_text
from models import EmergencyAccess, Patient, RoleAssignment, Staff
from models.emergency_access import REVIEW_OUTCOMES, UNJUSTIFIED
from policies.guard import Decision
from resolvers import access, pagination
from resolvers.context import Context
from resolvers.review_queue import ReviewQueue
from resolvers.writes import MovedOffFile

MAX_HOURS = 4
MAX_MERGE_HOPS = 8
CURSOR_KIND = "emergency-access"
QUEUE = ReviewQueue(EmergencyAccess, "emergency_access", CURSOR_KIND, "access")


@dataclass(frozen=True)
class EmergencyView:
    row: EmergencyAccess

    @property
    def active(self) -> bool:
        return self.row.expires_at > datetime.now(UTC)


async def open_file(ctx: Context, patient_id: uuid.UUID | None, reason: str, hours: int = MAX_HOURS) -> EmergencyView:
    decision = await access.authorize(ctx, "patient.emergency", "create", action=Action.BREAK_GLASS,
                                      resource_type="emergency_access", patient_id=patient_id)
    problems = Problems()  # the input's shape, every problem at once, before the patient is looked up
    text = ""
    with problems.collect("reason"):
        text = clean_text(reason, field="reason", max_length=500, min_length=10)
    if not 1 <= hours <= MAX_HOURS:
        problems.add("hours", "out_of_range", f"between 1 and {MAX_HOURS}.")
    problems.check()
    patient_id = await _file_in_use(ctx, patient_id)
    grant_id = uuid7()
    async with access.file_transaction(ctx, patient_id, action=Action.BREAK_GLASS):
        # The account deactivated, or its last role that may break the glass lost, since the request began:
        # FORBIDDEN, recorded once the transaction has rolled back.
        if not await _still_allowed(ctx):
            raise access.Refusal(Forbidden(), Action.BREAK_GLASS, "emergency_access", patient_id=patient_id,
                                 reason="forbidden")
        row = await EmergencyAccess.create(
            id=grant_id, institution_id=ctx.institution_id, staff_id=ctx.actor.id, patient_id=patient_id,
            reason=access.seal(ctx, "emergency_access", "reason", grant_id, text),
            expires_at=datetime.now(UTC) + timedelta(hours=hours))
        await writer.append([access.write_record(ctx, Action.BREAK_GLASS, "emergency_access", grant_id,
                                                 patient_id=patient_id, fields=frozenset({"reason"}),
                                                 decision=decision)])
    ctx.patient_scope = None  # the grant widens this request's reach too
    return EmergencyView(row)


async def _still_allowed(ctx: Context) -> bool:
    """Inside the opening's transaction: whether the account is still active and holds a role that may break the
    glass, under its row's lock, which a deactivation (its update) and a revocation (``end_open``'s caller) take too:
    one waits for the other, so either this sees the change or the change sees the access and ends it (found in
    review: an opening checked before a deactivation wrote after it, and the access outlived it)."""
    # .only, not .exists or values_list: Tortoise leaves FOR UPDATE out of those
    if not await Staff.filter(id=ctx.actor.id, is_active=True).select_for_update(no_key=True).only("id"):
        return False
    roles = await RoleAssignment.filter(staff_id=ctx.actor.id).values_list("role", flat=True)
    return may_break_glass(ctx, [str(role) for role in roles])


async def _file_in_use(ctx: Context, patient_id: uuid.UUID | None) -> uuid.UUID:
    """The file to open: a merged one's survivor, as a link sent before a merge follows it (found in review: a grant
    on a merged file reached nothing, its records moved, and in an emergency the clinician may not read where)."""
    current = patient_id
    for _ in range(MAX_MERGE_HOPS):  # a survivor merged later into another: followed on, a few times at most
        row = None if current is None else await Patient.filter(
            id=current, institution_id=ctx.institution_id).only("id", "merged_into_id").first()
        if row is None:
            break
        if row.merged_into_id is None:
            return row.id
        current = row.merged_into_id
    raise await access.not_found(ctx, Action.BREAK_GLASS, "patient", patient_id, "patientId")


async def end_open(ctx: Context, staff_id: uuid.UUID, decision: Decision) -> None:
    """Inside the transaction that deactivates an account or takes away its last role that may break the glass: its
    accesses still open end now, each ending recorded on its file (found in review: they outlived it, and the
    account reactivated or the role given back within their hours read the files again on the old reasons)."""
    now = datetime.now(UTC)
    open_ = await EmergencyAccess.filter(institution_id=ctx.institution_id, staff_id=staff_id,
                                         expires_at__gt=now).values_list("id", "patient_id")
    if not open_:
        return
    await EmergencyAccess.filter(id__in=[grant_id for grant_id, _ in open_]).update(expires_at=now)
    await writer.append([access.write_record(ctx, Action.UPDATE, "emergency_access", grant_id, patient_id=patient_id,
                                             fields=frozenset({"expires_at"}), decision=decision)
                         for grant_id, patient_id in open_])


def may_break_glass(ctx: Context, roles: Iterable[str]) -> bool:
    """Whether one of the roles may open a file by break-glass (``patient.emergency: create``)."""
    return any(ctx.services.guard.role_allows(role, ctx.institution_id, "patient.emergency", "create")
               for role in roles)


async def page(ctx: Context, *, first: int, after: str | None, unreviewed_only: bool,
               count: bool = False) -> pagination.Page[EmergencyView]:
    """The review queue (compliance officers), oldest first."""
    page = await QUEUE.page(ctx, first=first, after=after, unreviewed_only=unreviewed_only, count=count)
    return page.map(EmergencyView)


async def unreviewed(ctx: Context) -> int:
    return await QUEUE.unreviewed(ctx)


async def review(ctx: Context, grant_id: uuid.UUID | None, outcome: str, note: str | None) -> EmergencyView:
    decision = await access.authorize(ctx, "emergency_access", "update", action=Action.UPDATE,
                                      resource_type="emergency_access", resource_id=grant_id)
    if outcome not in REVIEW_OUTCOMES:
        raise BadUserInput("outcome: justified or unjustified.", field="outcome")
    text = clean_text(note, field="note", max_length=1000, min_length=1) if note is not None else None
    found = await access.find_in_institution(ctx, EmergencyAccess, grant_id, action=Action.UPDATE,
                                             resource_type="emergency_access")
    await QUEUE.refuse_a_party(ctx, found.id, (found.staff_id,),
                               "id: nobody reviews a break-glass access of their own.", patient_id=found.patient_id)
    if found.reviewed_at is not None:
        raise QUEUE.reviewed_already()
    sealed = access.seal(ctx, "emergency_access", "review_note", found.id, text)
    try:
        reviewed = await QUEUE.record_review(ctx, found, outcome, sealed, decision, patient_id=found.patient_id,
                                             consequence=_ending(found) if outcome == UNJUSTIFIED else None)
    except MovedOffFile:
        return await review(ctx, grant_id, outcome, note)  # found again, on the file it is on now
    return EmergencyView(reviewed)


def _ending(found: EmergencyAccess) -> Callable[[], Awaitable[frozenset[str]]]:
    """An access found unjustified while still open ends with the finding (found in review: it went on reading the
    file for the rest of its hours)."""
    async def end() -> frozenset[str]:
        now = datetime.now(UTC)
        ended = await EmergencyAccess.filter(id=found.id, expires_at__gt=now).update(expires_at=now)
        return frozenset({"expires_at"}) if ended else frozenset()
    return end


def reason(ctx: Context, view: EmergencyView) -> str:
    """The stated reason: the clinician's justification, which the reviewer must read (audited)."""
    _note_read(ctx, view, "reason")
    return access.open_sealed(ctx, "emergency_access", "reason", view.row.id, view.row.reason)


def review_note(ctx: Context, view: EmergencyView) -> str | None:
    """The reviewer's note, sealed like the reason and read on the record the same way (found in review: it was
    not recorded, though the schema said it was)."""
    if view.row.review_note is None:
        return None
    _note_read(ctx, view, "review_note")
    return access.open_sealed(ctx, "emergency_access", "review_note", view.row.id, view.row.review_note)


def _note_read(ctx: Context, view: EmergencyView, field_name: str) -> None:
    ctx.reads.note("emergency_access", view.row.id, view.row.patient_id, field_name=field_name,
                   rule=ctx.decide("emergency_access", "read").rule or ctx.decide("patient.emergency", "create").rule)
