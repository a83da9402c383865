"""Care plans (FHIR CarePlan): a clinician's goals and planned activities for a patient.

"After an implant: calls on day 1, 7 and 30, a re-visit at 3 months." Each planned call or re-visit
becomes a follow-up task due on its date, owned by the patient's responsible nurse or left in the
department's pool; revoking or completing a plan cancels the tasks still open. A plan is read under
the classes of its patient's file: its dates and status are identity, its title, goals and activities
clinical.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict
from core.ids import uuid7
from core.validation import Problems, check_year, clean_text
from models import CarePlan, CarePlanActivity, Department, FollowUpTask, Visit
from models.care_plan import ACTIVITY_KINDS
from models.follow_up import OPEN_TASK_STATUSES
from policies.fields import CARE_PLAN_FIELD_CLASS, CLINICAL, IDENTITY
from resolvers import access, follow_up, pagination
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.versioning import bumped

CURSOR_KIND = "care_plan"
MAX_ACTIVITIES = 30
MAX_DAYS_AHEAD = 3 * 366
# A file's plans in force as the patient page (``Patient.carePlans``) lists them stop here, newest first (found in
# review: not bounded, on a page of up to 100 files); every plan pages through the ``carePlans`` query.
IN_FORCE_LIMIT = 50
IN_FORCE = ("draft", "active")
TASK_KINDS = frozenset({"call", "revisit"})  # the activities someone must act on at a date
# A plan ends one way or the other; a draft becomes active.
TRANSITIONS = {"draft": frozenset({"active", "revoked"}), "active": frozenset({"completed", "revoked"})}


@dataclass(frozen=True)
class CarePlanView:
    row: CarePlan
    patient: PatientView


@dataclass(frozen=True)
class ActivityView:
    row: CarePlanActivity
    plan: CarePlanView


def read_field(ctx: Context, view: CarePlanView, name: str) -> Any:
    return access.read_journey_field(ctx, view.patient, "care_plan", view.row, name, CARE_PLAN_FIELD_CLASS[name])


def require_identity(ctx: Context, view: CarePlanView) -> None:
    """The department a plan's tasks go to and the visit it follows are read like its status (identity of the file),
    as a follow-up task's are."""
    access.require_class(ctx, view.patient, IDENTITY)


def read_activity_description(ctx: Context, view: ActivityView) -> str | None:
    return access.read_journey_field(ctx, view.plan.patient, "care_plan_activity", view.row, "description",
                                     CLINICAL)


async def activities_of(ctx: Context, view: CarePlanView) -> list[ActivityView]:
    access.require_class(ctx, view.patient, CLINICAL)
    rows = await ctx.require_loaders().activities_by_plan.load(view.row.id)
    return [ActivityView(row, view) for row in rows]


# -- reading -------------------------------------------------------------------------------


async def of_patient(ctx: Context, patient: PatientView, *, first: int, after: str | None, count: bool = False
                     ) -> pagination.Page[CarePlanView]:
    """A patient's plans, newest first."""
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = CarePlan.filter(institution_id=ctx.institution_id, patient_id=patient.row.id)
    page = await pagination.by_id(query, first=first, after=after, kind=CURSOR_KIND, count=count, newest_first=True)
    return page.map(lambda row: CarePlanView(row, patient))


async def current_of(ctx: Context, patient: PatientView) -> list[CarePlanView]:
    """A patient page's plans in force (draft or active), newest first, at most IN_FORCE_LIMIT (batched across
    patients: two statements whatever the number of files and plans)."""
    access.require_section(ctx, patient, "care_plan")

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[CarePlan]]:
        query = CarePlan.filter(institution_id=ctx.institution_id, status__in=IN_FORCE)
        found = await newest_per_parent(query, "patient_id", patient_ids, ("-id",), IN_FORCE_LIMIT)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("current_care_plans", batch).load(patient.row.id)
    return [CarePlanView(row, patient) for row in rows]


async def patient_plans(ctx: Context, patient_id: uuid.UUID | None, *, first: int, after: str | None,
                        count: bool = False) -> pagination.Page[CarePlanView]:
    await access.authorize(ctx, "care_plan", "read", action=Action.READ, resource_type="care_plan",
                           patient_id=patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, patient, "care_plan", resource_type="care_plan")
    return await of_patient(ctx, patient, first=first, after=after, count=count)


async def find(ctx: Context, plan_id: uuid.UUID | None, action: Action) -> CarePlanView:
    reached = access.about_reached(access.section_scope(ctx, "care_plan"), CarePlan)
    row = None
    if reached is not None and plan_id is not None:
        row = await reached.get_or_none(id=plan_id)
    patient = None if row is None else await access.visible_patient(ctx, row.patient_id)
    if row is None or patient is None:
        raise await access.not_found(ctx, action, "care_plan", plan_id)
    return CarePlanView(row, patient)


async def get(ctx: Context, plan_id: uuid.UUID | None) -> CarePlanView:
    await access.authorize(ctx, "care_plan", "read", action=Action.READ, resource_type="care_plan",
                           resource_id=plan_id)
    return await find(ctx, plan_id, Action.READ)


# -- writing -------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> CarePlanView:
    decision = await access.authorize(ctx, "care_plan", "create", action=Action.CREATE, resource_type="care_plan",
                                      patient_id=data.get("patient_id"))
    # every problem of the input's shape at once, before the records it names; "today" is the institution's
    values = _shape(data, today=await institutions.local_today_of(ctx))
    patient = await access.find_patient(ctx, data.get("patient_id"), action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, patient, "care_plan", resource_type="care_plan", act="create")
    await _require_clinical_write(ctx, patient)
    if patient.row.status != "active":
        raise BadUserInput(f"patientId: the file is {patient.row.status}; plans are for active files.",
                           field="patientId")
    await _check_references(ctx, patient, values)
    activities = values.pop("activities")
    plan_id = uuid7()
    owner_id = await follow_up.responsible_nurse(ctx, patient.row.id, values.get("department_id"))
    async with access.file_transaction(ctx, patient.row.id, action=Action.CREATE, active="plans"):
        row = await CarePlan.create(
            id=plan_id, institution_id=ctx.institution_id, patient_id=patient.row.id, author_id=ctx.actor.id,
            title=access.seal(ctx, "care_plan", "title", plan_id, values.pop("title")),
            goals=access.seal(ctx, "care_plan", "goals", plan_id, values.pop("goals", None)), **values)
        tasks = []
        for activity in activities:
            activity_id = uuid7()
            await CarePlanActivity.create(
                id=activity_id, institution_id=ctx.institution_id, plan_id=plan_id, kind=activity["kind"],
                due_on=activity["due_on"],
                description=access.seal(ctx, "care_plan_activity", "description", activity_id,
                                        activity.get("description")))
            if activity["kind"] in TASK_KINDS:
                tasks.append(FollowUpTask(id=uuid7(), institution_id=ctx.institution_id, patient_id=patient.row.id,
                                          visit_id=row.visit_id, activity_id=activity_id, due_on=activity["due_on"],
                                          department_id=row.department_id, owner_id=owner_id))
        await FollowUpTask.bulk_create(tasks)
        await writer.append([
            access.write_record(ctx, Action.CREATE, "care_plan", plan_id, patient_id=patient.row.id,
                                fields=frozenset({"title", "goals", "starts_on", "ends_on", "activities"}),
                                decision=decision),
            *(access.write_record(ctx, Action.CREATE, "follow_up_task", task.id, patient_id=patient.row.id,
                                  fields=frozenset({"due_on", "owner", "activity"}), decision=decision)
              for task in tasks)])
    return CarePlanView(row, patient)


async def transition(ctx: Context, plan_id: uuid.UUID | None, to: str, version: int | None) -> CarePlanView:
    """Activate a draft, complete or revoke a plan; the tasks it created that are still open are cancelled
    when it ends."""
    decision = await access.authorize(ctx, "care_plan", "update", action=Action.UPDATE, resource_type="care_plan",
                                      resource_id=plan_id)
    view = await find(ctx, plan_id, Action.UPDATE)
    # changed (and its tasks with it) where a role allowed to change plans reaches the file, not wherever one reading
    # them does, as a new plan is added
    await access.require_section_reached(ctx, view.patient, "care_plan", resource_type="care_plan", act="update",
                                         resource_id=view.row.id)
    await _require_clinical_write(ctx, view.patient)
    row = view.row
    if to not in TRANSITIONS.get(row.status, frozenset()):
        raise BadUserInput(f"to: a {row.status.upper()} plan cannot become {to.upper()}.", field="to",
                           reason=ILLEGAL_TRANSITION)
    expected, now = row.version if version is None else version, datetime.now(UTC)
    # The file held first, as a merge locks it before it moves the plan and its tasks: merged since the plan was
    # found, the write goes on the survivor's trail if the caller reaches the plan there (found in review: recorded
    # on the merged file, without asking), as a follow-up task's writes do.
    following = access.following_survivor(ctx, Action.UPDATE, "care_plan", row.id, needs=CLINICAL,
                                          section="care_plan")
    async with following as hold, in_transaction():
        patient = await hold(view.patient.row.id) or view.patient
        changed = await CarePlan.filter(id=row.id, institution_id=ctx.institution_id, version=expected,
                                        status=row.status).update(status=to, version=bumped(), updated_at=now)
        if changed != 1:
            raise Conflict("version: the plan changed since you read it; read it again.", field="version")
        records = [access.write_record(ctx, Action.UPDATE, "care_plan", row.id, patient_id=patient.row.id,
                                       fields=frozenset({"status"}), decision=decision)]
        if to in ("completed", "revoked"):
            activity_ids = CarePlanActivity.filter(institution_id=ctx.institution_id, plan_id=row.id).values("id")
            open_tasks = FollowUpTask.filter(institution_id=ctx.institution_id, status__in=OPEN_TASK_STATUSES,
                                             activity_id__in=Subquery(activity_ids))
            # Locked as read, as ``follow_up.cancel_for_patient`` does: a call the nurse completes meanwhile is waited
            # for and then left out, never overwritten as cancelled (found in review); the version moves like any write.
            task_ids = [task.id for task in await open_tasks.select_for_update().only("id")]
            await FollowUpTask.filter(id__in=task_ids).update(status="cancelled", version=bumped(),
                                                              updated_at=datetime.now(UTC))
            await follow_up.cancel_announcements(ctx, list(task_ids))
            scheduled = CarePlanActivity.filter(institution_id=ctx.institution_id, plan_id=row.id, status="scheduled")
            reminded = cast(list[uuid.UUID], await scheduled.values_list("id", flat=True))
            await scheduled.update(status="cancelled")
            await communications.cancel_queued(ctx.institution_id, *(
                communications.cause_prefix("care_plan_activity", a) for a in reminded))  # (found in review)
            records += [access.write_record(ctx, Action.UPDATE, "follow_up_task", task_id,
                                            patient_id=patient.row.id, fields=frozenset({"status"}),
                                            decision=decision) for task_id in task_ids]
        await writer.append(records)
    row.status, row.version, row.updated_at, row.patient_id = to, expected + 1, now, patient.row.id  # as written
    return CarePlanView(row, patient)


async def _require_clinical_write(ctx: Context, patient: PatientView) -> None:
    """A plan is clinical: writing one needs the right to write this patient's clinical class."""
    await access.require_class_write(ctx, patient, CLINICAL, action=Action.UPDATE, resource_type="care_plan")


def _shape(data: dict[str, Any], *, today: date) -> dict[str, Any]:
    """A plan's values from the input, every problem of their shape reported at once; no start is ``today``."""
    problems = Problems()
    out: dict[str, Any] = {"status": "active"}
    with problems.collect("title"):
        out["title"] = clean_text(data.get("title") or "", field="title", max_length=200, min_length=1)
    if data.get("goals") is not None:
        with problems.collect("goals"):
            out["goals"] = clean_text(data["goals"], field="goals", max_length=4000, min_length=1)
    starts_on: date = data.get("starts_on") or today
    ends_on: date | None = data.get("ends_on")
    for name, day in (("startsOn", starts_on), ("endsOn", ends_on)):
        if day is not None:
            with problems.collect(name):
                check_year(day, name)  # its activities fall due on days counted from it
    if ends_on is not None and ends_on < starts_on and not problems.has("endsOn"):
        problems.add("endsOn", "invalid", "must not be before startsOn.")
    out.update(starts_on=starts_on, ends_on=ends_on, department_id=data.get("department_id"),
               visit_id=data.get("visit_id"))
    activities = data.get("activities") or []
    out["activities"] = []
    if len(activities) > MAX_ACTIVITIES:
        problems.add("activities", "item_count", f"at most {MAX_ACTIVITIES}.")
    else:
        for index, activity in enumerate(activities):
            out["activities"].append(_activity(problems, activity, starts_on, ends_on, f"activities[{index}]"))
    problems.check()
    return out


async def _check_references(ctx: Context, patient: PatientView, values: dict[str, Any]) -> None:
    """The department (the patient's when none is named) and the visit of this patient, both looked up and
    refused together."""
    problems = Problems()
    if values["department_id"] is None:
        values["department_id"] = patient.row.department_id
    elif not await Department.exists(id=values["department_id"], institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    if values["visit_id"] is None:
        del values["visit_id"]
    elif not await Visit.exists(id=values["visit_id"], institution_id=ctx.institution_id, patient_id=patient.row.id):
        problems.add("visitId", "invalid", "no such visit of this patient.")
    problems.check()


def _activity(problems: Problems, data: dict[str, Any], starts_on: date, ends_on: date | None,
              where: str) -> dict[str, Any]:
    """One planned activity, its problems added at ``activities[i].field``."""
    out: dict[str, Any] = {"kind": data.get("kind"), "description": None}
    if data.get("kind") not in ACTIVITY_KINDS:
        problems.add(f"{where}.kind", "invalid_choice", f"must be one of {', '.join(ACTIVITY_KINDS)}.")
    after_days = data.get("after_days")
    if (data.get("due_on") is None) == (after_days is None):
        problems.add(f"{where}.dueOn", "one_of", "give dueOn or afterDays (one of them).")
    elif after_days is not None and not 0 <= after_days <= MAX_DAYS_AHEAD:
        problems.add(f"{where}.afterDays", "out_of_range", f"0 to {MAX_DAYS_AHEAD}.")
    elif data.get("due_on") is None and starts_on > date.max - timedelta(days=after_days or 0):
        problems.add(f"{where}.afterDays", "out_of_range", "the due date would fall after the calendar's end.")
    else:
        out["due_on"] = data.get("due_on") or starts_on + timedelta(days=after_days or 0)
        if out["due_on"] < starts_on or (ends_on is not None and out["due_on"] > ends_on):
            problems.add(f"{where}.dueOn", "out_of_range", "within the plan's period.")
        else:  # an open-ended plan's period bounds it no further than its start's years
            name = f"{where}.dueOn" if data.get("due_on") is not None else f"{where}.afterDays"
            with problems.collect(name):
                check_year(out["due_on"], name)
    if data.get("description") is not None:
        with problems.collect(f"{where}.description"):
            out["description"] = clean_text(data["description"], field=f"{where}.description", max_length=1000,
                                            min_length=1)
    return out
