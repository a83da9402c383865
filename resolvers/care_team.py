"""Care teams: which staff look after which patient (the row scope of nurses and doctors).

Care-team changes find the staff member within the institution and the patient within the caller's reach for
teams, not their read scope: an admin assigns care teams across the institution without reading files; a department
head the teams of their own departments' patients only (found in review: a head put a nurse on the team of any file
of the institution, which opened it to her, and learnt which ids were files there). A patient out of that reach
answers NOT_FOUND as a missing one, recorded alike.
"""

from __future__ import annotations

import uuid

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput
from core.validation import Problems
from models import CareTeamMember, Patient, Staff
from resolvers import access, role_grant, staff
from resolvers.context import Context

# A care team holds at most this many staff (found in review: Patient.careTeam, on a page of up to 100 files, had no
# bound). A bound on writes, as a file's contacts are bounded: careTeamAssign refuses one more (BAD_USER_INPUT, reason
# ``item_count``); a merge keeps both teams, so a survivor's may hold more, and takes no one new until it holds fewer.
MAX_MEMBERS = 50
ITEM_COUNT = "item_count"  # refused: the team is full (extensions.reason, audit reason)


async def assign(ctx: Context, patient_id: uuid.UUID | None, staff_id: uuid.UUID | None) -> bool:
    decision = await access.authorize(ctx, "care_team", "create", action=Action.CREATE, resource_type="care_team",
                                      patient_id=patient_id)
    await _check(ctx, patient_id, staff_id, Action.CREATE)
    if staff_id is not None and staff_id == ctx.actor.id:  # a care team is reach: someone else puts you on it
        raise await role_grant.refuse_self_grant(ctx, Action.CREATE, "care_team", staff_id, field="staffId",
                                                 what="a place on a patient's care team")
    await _check_clinician(ctx, patient_id, staff_id)
    if not await CareTeamMember.exists(patient_id=patient_id, staff_id=staff_id):
        # the file locked and refused when merged, as every write adding to it: a place on a merged file's team
        # reaches nothing (its records moved to the survivor), and a merge meanwhile would not move it. Counted
        # with the file locked: two assignments count one after the other.
        async with access.file_transaction(ctx, patient_id, action=Action.CREATE):
            # looked for again with the file locked: the same place asked twice at once (a double tap) found
            # none before, and the second would hit the unique (patient, staff) key (INTERNAL_SERVER_ERROR)
            if await CareTeamMember.exists(patient_id=patient_id, staff_id=staff_id):
                return True
            if await CareTeamMember.filter(institution_id=ctx.institution_id,
                                           patient_id=patient_id).count() >= MAX_MEMBERS:
                raise access.Refusal(BadUserInput(
                    f"patientId: a care team has at most {MAX_MEMBERS} members; take one off before adding "
                    "another.", field="patientId", reason=ITEM_COUNT), Action.CREATE, "care_team", staff_id, patient_id)
            member = await CareTeamMember.create(institution_id=ctx.institution_id, patient_id=patient_id,
                                                 staff_id=staff_id)
            await writer.append([access.write_record(ctx, Action.CREATE, "care_team", member.id,
                                                     patient_id=patient_id, decision=decision)])
    return True


async def unassign(ctx: Context, patient_id: uuid.UUID | None, staff_id: uuid.UUID | None) -> bool:
    decision = await access.authorize(ctx, "care_team", "delete", action=Action.DELETE, resource_type="care_team",
                                      patient_id=patient_id)
    await _check(ctx, patient_id, staff_id, Action.DELETE)
    member = await CareTeamMember.get_or_none(patient_id=patient_id, staff_id=staff_id,
                                              institution_id=ctx.institution_id)
    if member is not None:
        async with in_transaction():
            # only the request that took the place off records it: the same place taken off twice at once (a double
            # tap) was two deletions on the trail (found in review); and only while it is on the file named, as
            # contactUpdate writes (``write_over_version(on_file=)``): a merge since moved it to the survivor's team,
            # which the caller did not name (found in review: taken off there, recorded on the merged file)
            if await CareTeamMember.filter(id=member.id, patient_id=patient_id).delete():
                await writer.append([access.write_record(ctx, Action.DELETE, "care_team", member.id,
                                                         patient_id=patient_id, decision=decision)])
    return True


async def _check(ctx: Context, patient_id: uuid.UUID | None, staff_id: uuid.UUID | None, action: Action) -> None:
    tenant = ctx.institution_id
    if patient_id is None or not await _teams_in_reach(ctx).filter(id=patient_id).exists():
        raise await access.not_found(ctx, action, "patient", patient_id, "patientId")
    if staff_id is None or not await Staff.exists(id=staff_id, institution_id=tenant):
        raise await access.not_found(ctx, action, "staff", staff_id, "staffId")


async def _check_clinician(ctx: Context, patient_id: uuid.UUID | None, staff_id: uuid.UUID | None) -> None:
    """A place is given to a clinician only (``staff.check_clinicians``, as a visit's clinician): the team is shown to
    the patient and to staff as the people caring for the patient (found in review: a finance clerk or an admin was
    taken). Checked when the place is given, one already held included; recorded as the other refusals here."""
    problems = Problems()
    await staff.check_clinicians(ctx, problems, [("staffId", staff_id)] if staff_id is not None else [])
    if problems.found:
        await access.deny(ctx, Action.CREATE, "care_team", staff_id, patient_id, reason=problems.found[0][1])
        problems.check()


def _teams_in_reach(ctx: Context) -> QuerySet[Patient]:
    """The files whose care team the caller sets: the institution's for an admin, else (a department head) those of
    the caller's departments, as the department head's row reach (``policies.scopes``) and the schedules they keep
    (``resolvers.schedule``)."""
    files = Patient.filter(institution_id=ctx.institution_id)
    kept = access.departments_kept(ctx)
    if kept is None:
        return files
    return files.filter(department_id__in=sorted(kept) or [uuid.UUID(int=0)])
