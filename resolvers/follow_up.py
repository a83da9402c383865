"""Follow-up (随访): the rules that turn a finished visit into calls, and the tasks they create.

A finished visit is matched against the institution's rules in force ("after a procedure in
department D: calls on day 1, 7 and 30"); each match creates one task per offset, due on that local
date in the institution's zone (moved to the next working day when the rule says so), owned by the
patient's responsible nurse or left in the department's pool. A task keeps the rule version it came
from. Deceased and archived patients are never called: nothing is created for them and their open
tasks are cancelled at once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.validation import Problems, aware_time, camel_case, clean_text, one_of
from models import (
    CareTeamMember,
    Department,
    DepartmentMembership,
    FollowUpAttempt,
    FollowUpRule,
    FollowUpTask,
    Patient,
    RoleAssignment,
    ServiceItem,
    Staff,
    Visit,
    VisitCode,
)
from models.fields import tags_from_db, tags_to_db
from models.follow_up import ASSIGNEES, ATTEMPT_CHANNELS, ATTEMPT_OUTCOMES, CONDITIONS, OPEN_TASK_STATUSES
from models.visit import VISIT_KINDS
from policies.fields import CLINICAL, FOLLOW_UP_FIELD_CLASS, IDENTITY
from policies.guard import Decision
from resolvers import access, pagination
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers import sla as slas
from resolvers import survey as surveys
from resolvers import ticket as tickets
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.pagination import keyset_after
from resolvers.versioning import bumped


@dataclass(frozen=True)
class DefaultRule:
    name: str
    visit_kind: str
    offsets_days: tuple[int, ...]


# The seeds' schedule: after surgery calls on day 1, 7 and 30; after outpatient treatment on day 3;
# after an inpatient stay on day 7 and 30.
DEFAULT_RULES = (
    DefaultRule("After surgery or a procedure", "procedure", (1, 7, 30)),
    DefaultRule("After outpatient treatment", "outpatient", (3,)),
    DefaultRule("After discharge from an inpatient stay", "inpatient", (7, 30)),
)
SYSTEM_DECISION = Decision(True, "follow-up rule")


async def ensure_default_rules(ctx: Context) -> None:
    """An institution without any rule gets the defaults once (inside the caller's transaction).

    Two requests that both find no rule (two visits finished at once in a new institution, two first looks at the
    rules) look again one after the other, under a transaction-scoped advisory lock on PostgreSQL (SQLite has one
    writer): the second finds the first's defaults. The defaults' rule keys are random, so no unique key could refuse
    the second set (found in review: both wrote them, and every finished visit after had each call twice)."""
    if await FollowUpRule.exists(institution_id=ctx.institution_id):
        return
    db = FollowUpRule._meta.db  # the caller's transaction's connection
    if db.capabilities.dialect == "postgres":
        await db.execute_query("SELECT pg_advisory_xact_lock(hashtext('careloop.follow_up_rules'), hashtext($1))",
                               [str(ctx.institution_id)])
        if await FollowUpRule.exists(institution_id=ctx.institution_id):
            return
    for default in DEFAULT_RULES:
        rule = await FollowUpRule.create(
            id=uuid7(), institution_id=ctx.institution_id, rule_key=uuid.uuid4(), name=default.name,
            visit_kind=default.visit_kind, offsets_days=tags_to_db([str(d) for d in default.offsets_days]))
        with writer.unkeyed():  # the system's, on the request's way: not what its Idempotency-Key names
            await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_rule", rule.id,
                                                     fields=frozenset({"name", "visit_kind", "offsets_days"}),
                                                     decision=SYSTEM_DECISION)])


def offsets(rule: FollowUpRule) -> list[int]:
    return sorted(int(d) for d in tags_from_db(rule.offsets_days))


async def on_visit_finished(ctx: Context, visit: Visit) -> list[FollowUpTask]:
    """The tasks the rules in force ask for after this visit (inside the visit's transaction)."""
    patient = await Patient.get(id=visit.patient_id, institution_id=ctx.institution_id)
    if patient.status != "active":
        return []
    await ensure_default_rules(ctx)
    rules = [rule for rule in await _rules_in_force(ctx, visit) if await _procedure_matches(ctx, rule, visit)]
    if not rules:
        return []
    zone = await institutions.zone_of(ctx)
    business = (await slas.settings(ctx)).business
    finished_on = (visit.ended_at or datetime.now(UTC)).astimezone(zone).date()
    department_id = visit.department_id or patient.department_id
    owner_id = None
    tasks = []
    for rule in rules:
        if rule.assignee == "responsible_nurse" and owner_id is None:
            owner_id = await responsible_nurse(ctx, patient.id, department_id)
        for days in offsets(rule):
            due = finished_on + timedelta(days=days)
            if rule.skip_closed_days:
                due = business.working_day_from(due)
            tasks.append(FollowUpTask(
                id=uuid7(), institution_id=ctx.institution_id, patient_id=patient.id, visit_id=visit.id,
                rule_id=rule.id, due_on=due, department_id=department_id,
                owner_id=owner_id if rule.assignee == "responsible_nurse" else None))
    await FollowUpTask.bulk_create(tasks)
    with writer.unkeyed():  # the system's, after the visit: its Idempotency-Key names the visit
        await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_task", task.id,
                                                 patient_id=patient.id, fields=frozenset({"due_on", "owner", "rule"}),
                                                 decision=SYSTEM_DECISION) for task in tasks])
    return tasks


async def _rules_in_force(ctx: Context, visit: Visit) -> list[FollowUpRule]:
    query = FollowUpRule.filter(institution_id=ctx.institution_id, active=True)
    query = query.filter(Q(visit_kind__isnull=True) | Q(visit_kind=visit.kind))
    query = query.filter(Q(department_id__isnull=True) | Q(department_id=visit.department_id))
    return list(await query.order_by("id"))


async def _procedure_matches(ctx: Context, rule: FollowUpRule, visit: Visit) -> bool:
    if rule.procedure_code is None:
        return True
    digest = access.blind_index(ctx, "code", f"service|{rule.procedure_code}")
    return await VisitCode.exists(institution_id=ctx.institution_id, visit_id=visit.id, code_bidx=digest)


async def responsible_nurse(ctx: Context, patient_id: uuid.UUID, department_id: uuid.UUID | None) -> uuid.UUID | None:
    """The patient's care-team nurse (the first assigned who is still active: one who left calls nobody, found in
    review); None leaves the task in the department's pool."""
    nurses = Subquery(RoleAssignment.filter(institution_id=ctx.institution_id, role="nurse",
                                            staff__is_active=True).values("staff_id"))
    member = await (CareTeamMember.filter(institution_id=ctx.institution_id, patient_id=patient_id,
                                          staff_id__in=nurses)
                    .order_by("created_at").first())
    return None if member is None else member.staff_id


async def cancel_for_visit(ctx: Context, visit_id: uuid.UUID) -> int:
    """A cancelled visit (or a no-show) is followed up by nobody (inside the caller's transaction)."""
    return await _cancel(ctx, Q(visit_id=visit_id))


async def cancel_for_patient(ctx: Context, patient_id: uuid.UUID) -> int:
    """An archived or deceased patient is never called (inside the caller's transaction)."""
    return await _cancel(ctx, Q(patient_id=patient_id))


async def _cancel(ctx: Context, which: Q) -> int:
    # Locked as read: a task a nurse completes meanwhile is waited for and then left out, never overwritten as
    # cancelled (found in review: an archive turned a completed call into a cancelled one).
    open_tasks = FollowUpTask.filter(which, institution_id=ctx.institution_id, status__in=OPEN_TASK_STATUSES)
    rows = [(row.id, row.patient_id) for row in await open_tasks.select_for_update().only("id", "patient_id")]
    if not rows:
        return 0
    await FollowUpTask.filter(id__in=[task_id for task_id, _ in rows]).update(
        status="cancelled", version=F("version") + 1, updated_at=datetime.now(UTC))
    with writer.unkeyed():  # the system's, after the visit or file closed: its Idempotency-Key names that
        await cancel_announcements(ctx, [task_id for task_id, _ in rows])
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", task_id,
                                                 patient_id=patient_id, fields=frozenset({"status"}),
                                                 decision=SYSTEM_DECISION) for task_id, patient_id in rows])
    return len(rows)


# ==========================================================================================
# The API: the rules in force and their versions, tasks by hand, the pool and its claims, call
# attempts, the outcome form, the worklist. Same door as visits: a task is reached through its
# patient, each field is read under the class of the patient's file (FOLLOW_UP_FIELD_CLASS).

RULE_CURSOR = "follow-up-rule"
TASK_CURSOR = "follow-up-task"
# A file's open tasks as the patient page (``Patient.openFollowUpTasks``) lists them stop here, soonest due first
# (found in review: not bounded, on a page of up to 100 files); every one pages through ``patientFollowUpTasks``.
OPEN_LIMIT = 50
PATIENT_TASK_CURSOR = "follow-up-task.patient"  # a patient's tasks, soonest due first
# A task's attempts as ``FollowUpTask.attempts`` lists them stop here, oldest first (found in review: not bounded, on
# a worklist page of up to 100 tasks); every one pages through ``followUpAttempts``.
ATTEMPTS_LIMIT = 50
ATTEMPT_CURSOR = "follow-up-attempt"
MAX_OFFSETS = 10
MAX_OFFSET_DAYS = 366
MAX_DUE_AHEAD = timedelta(days=366)
MAX_ATTEMPT_AGE = timedelta(days=30)
NAME_LIMIT = 100
NOTES_LIMIT = 2000
WORKLIST_SCOPES = ("mine", "pool", "department")
RULE_COLUMNS = ("name", "visit_kind", "procedure_code", "department_id", "offsets_days", "assignee",
                "skip_closed_days")
_RULE_REQUIRED = frozenset({"name", "offsets_days", "assignee", "skip_closed_days"})  # never null


@dataclass(frozen=True)
class RuleView:
    row: FollowUpRule


@dataclass(frozen=True)
class TaskView:
    row: FollowUpTask
    patient: PatientView


@dataclass(frozen=True)
class AttemptView:
    row: FollowUpAttempt
    task: TaskView


# What a task row read in part holds besides the columns its fields read: its id and institution (what its sealed
# notes are opened under) and its patient (its view's)
TASK_ROW_COLUMNS = ("id", "institution_id", "patient_id")


@dataclass(frozen=True)
class Worklist:
    page: pagination.Page[TaskView]
    today: date  # the institution's local date
    total: int | None = None  # counted only when asked for


@dataclass(frozen=True)
class WorklistOrder:
    """A worklist order: by due date (the default, earliest first) or by last change; ties broken by id."""

    field: str = "due_on"  # or "updated_at"
    direction: str = "asc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors (the default keeps today's), so one from another is BAD_USER_INPUT."""
        return TASK_CURSOR if self == WorklistOrder() else f"{TASK_CURSOR}.{self.field}.{self.direction}"


@dataclass(frozen=True)
class Workload:
    department_id: uuid.UUID
    owner_id: uuid.UUID | None  # None: the department's pool
    overdue: int
    due_today: int


def _now() -> datetime:
    return datetime.now(UTC)


async def local_today(ctx: Context) -> date:
    """Today in the institution's time zone: "due today" and "overdue" are local dates."""
    return await institutions.local_today_of(ctx, _now())


# -- rules ---------------------------------------------------------------------------------


async def rules(ctx: Context, *, first: int, after: str | None, include_retired: bool = False,
                rule_key: uuid.UUID | None = None, count: bool = False) -> pagination.Page[FollowUpRule]:
    """The rules in force (or every version of one rule, oldest first), in creation order."""
    await access.authorize(ctx, "follow_up_rule", "read", action=Action.READ, resource_type="follow_up_rule")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    if not await FollowUpRule.exists(institution_id=ctx.institution_id):
        async with in_transaction():  # the defaults are in force until the institution has rules of its own
            await ensure_default_rules(ctx)
    query = FollowUpRule.filter(institution_id=ctx.institution_id)
    if rule_key is not None:
        query = query.filter(rule_key=rule_key)
    elif not include_retired:
        query = query.filter(active=True)
    return await pagination.by_id(query, first=first, after=after, kind=RULE_CURSOR, count=count)


async def rule_create(ctx: Context, data: dict[str, Any]) -> FollowUpRule:
    decision = await access.authorize(ctx, "follow_up_rule", "update", action=Action.CREATE,
                                      resource_type="follow_up_rule")
    problems = Problems()
    for required in ("name", "offsets_days"):
        if data.get(required) is None:
            problems.add(camel_case(required), "required", "is required.")
    values = _rule_shape({k: v for k, v in data.items() if not problems.has(camel_case(k))}, problems)
    await _check_rule_references(ctx, values)
    await _check_rule_reach(ctx, Action.CREATE, None, {values.get("department_id")})
    rule_id = uuid7()
    async with in_transaction():
        await ensure_default_rules(ctx)  # a first rule of its own joins the defaults, it does not replace them
        row = await FollowUpRule.create(id=rule_id, institution_id=ctx.institution_id, rule_key=uuid7(), version=1,
                                        active=True, author_id=ctx.actor.id, **values)
        await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_rule", rule_id,
                                                 fields=frozenset(values), decision=decision)])
    return row


async def rule_change(ctx: Context, rule_id: uuid.UUID | None, data: dict[str, Any],
                      version: int | None) -> FollowUpRule:
    """A change is a new version: a new row (same rule_key, version + 1) and the old one retired, in one
    transaction. Tasks already created keep pointing at the version they came from."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "follow_up_rule", "update", action=Action.UPDATE,
                                      resource_type="follow_up_rule", resource_id=rule_id)
    values = _rule_shape(data)  # every problem of the changes' shape, before the rule is looked up
    old = await _find_rule(ctx, rule_id)
    await _check_rule_references(ctx, values)
    await _check_rule_reach(ctx, Action.UPDATE, old.id, {old.department_id, values.get("department_id",
                                                                                        old.department_id)})
    _check_current(old, version)
    columns = {**{name: getattr(old, name) for name in RULE_COLUMNS}, **values}
    new_id = uuid7()
    try:
        async with in_transaction():
            if await FollowUpRule.filter(id=old.id, institution_id=ctx.institution_id,
                                         active=True).update(active=False) != 1:
                raise _stale_rule()
            row = await FollowUpRule.create(id=new_id, institution_id=ctx.institution_id, rule_key=old.rule_key,
                                            version=old.version + 1, active=True, author_id=ctx.actor.id, **columns)
            await writer.append([
                access.write_record(ctx, Action.UPDATE, "follow_up_rule", old.id, fields=frozenset({"active"}),
                                    decision=decision),
                access.write_record(ctx, Action.CREATE, "follow_up_rule", new_id,
                                    fields=frozenset(values) | {"version"}, decision=decision)])
    except IntegrityError:  # another change took this version number a moment ago
        raise _stale_rule() from None
    return row


async def rule_retire(ctx: Context, rule_id: uuid.UUID | None, version: int | None) -> FollowUpRule:
    """A retired rule creates no more tasks; the tasks it created stay as they are."""
    decision = await access.authorize(ctx, "follow_up_rule", "update", action=Action.UPDATE,
                                      resource_type="follow_up_rule", resource_id=rule_id)
    old = await _find_rule(ctx, rule_id)
    await _check_rule_reach(ctx, Action.UPDATE, old.id, {old.department_id})
    _check_current(old, version)
    async with in_transaction():
        if await FollowUpRule.filter(id=old.id, institution_id=ctx.institution_id,
                                     active=True).update(active=False) != 1:
            raise _stale_rule()
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_rule", old.id,
                                                 fields=frozenset({"active"}), decision=decision)])
    old.active = False
    return old


async def _find_rule(ctx: Context, rule_id: uuid.UUID | None) -> FollowUpRule:
    return await access.find_in_institution(ctx, FollowUpRule, rule_id, action=Action.UPDATE,
                                            resource_type="follow_up_rule")


def _stale_rule() -> Conflict:
    return Conflict("version: the rule was changed or retired since you read it; read it again.", field="version")


def _check_current(row: FollowUpRule, version: int | None) -> None:
    if not row.active or (version is not None and version != row.version):
        raise _stale_rule()


async def _check_rule_reach(ctx: Context, action: Action, rule_id: uuid.UUID | None,
                            departments: set[uuid.UUID | None]) -> None:
    """Admins set the institution's rules; a department head those of their own departments only (an
    institution-wide rule, with no department, is the admins')."""
    if access.keeps_departments(ctx, departments):
        return
    await access.deny(ctx, action, "follow_up_rule", rule_id, reason="other_department")
    raise Forbidden("departmentId: a department head sets the rules of their own departments; institution-wide "
                    "rules are the admins'.", field="departmentId")


def _rule_shape(data: dict[str, Any], problems: Problems | None = None) -> dict[str, Any]:
    """A rule's values: every problem of their shape reported at once (with those already in ``problems``)."""
    problems = problems or Problems()
    out = problems.each(data, _rule_value)
    problems.check()
    return out


async def _check_rule_references(ctx: Context, values: dict[str, Any]) -> None:
    """The catalogue code and the department named exist (both reported when both are wrong)."""
    problems = Problems()
    if values.get("procedure_code") is not None:
        with problems.collect("procedureCode"):
            await _catalogue_code(ctx, values["procedure_code"])
    if values.get("department_id") is not None and not await Department.exists(id=values["department_id"],
                                                                               institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    problems.check()


def _rule_value(name: str, value: Any) -> Any:
    field_name = camel_case(name)
    if value is None and name in _RULE_REQUIRED:
        raise BadUserInput(f"{field_name}: must not be null.", field=field_name, reason="required")
    if name == "name":
        return clean_text(value, field=field_name, max_length=NAME_LIMIT, min_length=1)
    if name == "visit_kind":
        return None if value is None else one_of(value, VISIT_KINDS, field_name)
    if name == "procedure_code":
        return None if value is None else _code_shape(value)
    if name == "department_id":
        return value
    if name == "offsets_days":
        return tags_to_db([str(days) for days in _checked_offsets(value)])
    if name == "assignee":
        return one_of(value, ASSIGNEES, field_name)
    if name == "skip_closed_days":
        return bool(value)
    raise BadUserInput(f"{field_name}: cannot be set here.", field=field_name)


def _code_shape(value: str) -> str:
    code = value.strip().upper()
    if not code or len(code) > 32 or not code.isprintable():  # no catalogue code holds a control character
        raise BadUserInput("procedureCode: not in the institution's service catalogue.", field="procedureCode",
                           reason="unknown_code")
    return code


async def _catalogue_code(ctx: Context, code: str) -> None:
    if not await ServiceItem.exists(institution_id=ctx.institution_id, code=code, active=True):
        raise BadUserInput("procedureCode: not in the institution's service catalogue.", field="procedureCode",
                           reason="unknown_code")


def _checked_offsets(values: list[int]) -> list[int]:
    if not 1 <= len(values) <= MAX_OFFSETS:
        raise BadUserInput(f"offsetsDays: give 1 to {MAX_OFFSETS} offsets.", field="offsetsDays", reason="item_count")
    if any(not 0 <= days <= MAX_OFFSET_DAYS for days in values):
        raise BadUserInput(f"offsetsDays: each offset is 0 to {MAX_OFFSET_DAYS} days.", field="offsetsDays",
                           reason="out_of_range")
    if len(set(values)) != len(values):
        raise BadUserInput("offsetsDays: give each offset once.", field="offsetsDays", reason="duplicate")
    return sorted(values)


# -- reaching and reading tasks -------------------------------------------------------------


def _reached(ctx: Context) -> QuerySet[FollowUpTask] | None:
    """Tasks of patients the caller's roles that read tasks reach, as a query; None when they reach none."""
    return access.about_reached(access.section_scope(ctx, "follow_up_task"), FollowUpTask)


async def open_of(ctx: Context, patient: PatientView) -> list[TaskView]:
    """A patient page's open follow-up tasks, soonest due first, at most OPEN_LIMIT (batched across patients: two
    statements whatever the number of files and tasks)."""
    access.require_section(ctx, patient, "follow_up_task")

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[FollowUpTask]]:
        query = _reached(ctx)
        found = {} if query is None else await newest_per_parent(
            query.filter(status__in=OPEN_TASK_STATUSES), "patient_id", patient_ids, ("due_on", "id"), OPEN_LIMIT)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("open_follow_up_tasks", batch).load(patient.row.id)
    return [TaskView(row, patient) for row in rows]


async def patient_page(ctx: Context, patient_id: uuid.UUID | None, *, open_only: bool, first: int,
                       after: str | None, count: bool = False) -> pagination.Page[TaskView]:
    """A patient's follow-up tasks (the open ones, by default), soonest due first, a page at a time: every one the
    patient page's ``openFollowUpTasks`` lists, and those past its bound."""
    await access.authorize(ctx, "follow_up_task", "read", action=Action.READ, resource_type="follow_up_task",
                           patient_id=patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, patient, "follow_up_task", resource_type="follow_up_task")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = FollowUpTask.filter(institution_id=ctx.institution_id, patient_id=patient.row.id)
    if open_only:
        query = query.filter(status__in=OPEN_TASK_STATUSES)
    total = await pagination.count_of(query, count)
    if after:  # "" is no cursor: the first page, as null (every list alike)
        due_on, task_id = _decode_task_cursor(WorklistOrder(), after, PATIENT_TASK_CURSOR)
        query = query.filter(keyset_after("due_on", due_on, task_id, False))
    rows = await query.order_by("due_on", "id").limit(first + 1)
    return pagination.page_of([TaskView(row, patient) for row in rows[:first]], len(rows) > first,
                              PATIENT_TASK_CURSOR, key=lambda v: f"{v.row.due_on.isoformat()}|{v.row.id}",
                              total=total)


async def _views(ctx: Context, rows: list[FollowUpTask], columns: Collection[str] | None = None) -> list[TaskView]:
    """Each task with its patient as the caller may see the file (one batched query for a page); ``columns``: the
    patient columns the selection reads (None: whole rows)."""
    return await access.with_files(ctx, rows, TaskView, columns)


async def find(ctx: Context, task_id: uuid.UUID | None, action: Action, field: str = "id") -> TaskView:
    return await access.find_on_file(ctx, _reached(ctx), task_id, TaskView, action=action,
                                     resource_type="follow_up_task", field=field)


async def find_to_change(ctx: Context, task_id: uuid.UUID | None, field: str = "id") -> TaskView:
    """A task to change (claim, assign, an attempt, the outcome, fail, cancel), found as ``find`` finds it, where a
    role of the caller allowed to change tasks reaches its file: FORBIDDEN otherwise, the refusal recorded on the file
    the task is on now (``_deny``). Found in review: the tasks' writes went by the reach of the roles that read tasks,
    a department head's, say, who is also a doctor in a patient's care team outside the department. One role: no
    change, no statement. ``_writing`` asks again of a survivor the task moved to since."""
    view = await find(ctx, task_id, Action.UPDATE, field=field)
    if not access.section_reached(ctx, view.patient, "follow_up_task", "update"):
        await _deny(ctx, view, "forbidden")
        raise Forbidden()
    return view


async def get(ctx: Context, task_id: uuid.UUID | None) -> TaskView:
    await access.authorize(ctx, "follow_up_task", "read", action=Action.READ, resource_type="follow_up_task",
                           resource_id=task_id)
    return await find(ctx, task_id, Action.READ)


def read_field(ctx: Context, view: TaskView, name: str) -> Any:
    """A task's field under its class on the patient's file; the sealed notes opened when asked for."""
    return access.read_journey_field(ctx, view.patient, "follow_up_task", view.row, name,
                                     FOLLOW_UP_FIELD_CLASS[name])


def read_attempt_field(ctx: Context, view: AttemptView, name: str) -> Any:
    return access.read_journey_field(ctx, view.task.patient, "follow_up_attempt", view.row, name,
                                     FOLLOW_UP_FIELD_CLASS["attempts"])


def require_identity(ctx: Context, view: TaskView) -> None:
    """Who owns a task and its department are read like its status (identity of the file)."""
    access.require_class(ctx, view.patient, IDENTITY)


def require_rule(ctx: Context, view: TaskView) -> None:
    """The rule that made a task names the procedure it follows (a code: clinical), so it is read under the
    clinical class of the file (found in review: it was read under identity, and told a nurse who also works the
    front desk which procedure a patient outside their clinical reach had)."""
    access.require_class(ctx, view.patient, CLINICAL)


async def attempts_of(ctx: Context, view: TaskView) -> list[AttemptView]:
    """A task's call attempts, oldest first, at most ATTEMPTS_LIMIT (batched across tasks: two statements whatever
    the number of tasks and attempts)."""
    access.require_class(ctx, view.patient, FOLLOW_UP_FIELD_CLASS["attempts"])

    async def batch(task_ids: Sequence[uuid.UUID]) -> list[list[FollowUpAttempt]]:
        query = FollowUpAttempt.filter(institution_id=ctx.institution_id)
        found = await newest_per_parent(query, "task_id", task_ids, ("id",), ATTEMPTS_LIMIT)
        return [found.get(i, []) for i in task_ids]

    rows = await ctx.require_loaders().made("follow_up_attempts", batch).load(view.row.id)
    return [AttemptView(row, view) for row in rows]


async def attempts_page(ctx: Context, task_id: uuid.UUID | None, *, first: int, after: str | None,
                        count: bool = False) -> pagination.Page[AttemptView]:
    """A task's call attempts, oldest first, a page at a time: every one ``FollowUpTask.attempts`` lists, and those
    past its bound. Clinical, as they are there: the permission before the task is looked up, the class on its
    patient's file."""
    await access.authorize(ctx, "follow_up_task", "read", action=Action.READ, resource_type="follow_up_task",
                           resource_id=task_id)
    await access.authorize(ctx, f"patient.{FOLLOW_UP_FIELD_CLASS['attempts']}", "read", action=Action.READ,
                           resource_type="follow_up_task", resource_id=task_id)
    view = await find(ctx, task_id, Action.READ, field="taskId")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    access.require_class(ctx, view.patient, FOLLOW_UP_FIELD_CLASS["attempts"])
    query = FollowUpAttempt.filter(institution_id=ctx.institution_id, task_id=view.row.id)
    page = await pagination.by_id(query, first=first, after=after, kind=ATTEMPT_CURSOR, count=count)
    return page.map(lambda row: AttemptView(row, view))


# -- the worklist ---------------------------------------------------------------------------


async def worklist(ctx: Context, *, scope: str, department_id: uuid.UUID | None, due_by: date | None,
                   first: int, after: str | None, order: WorklistOrder | None = None,
                   count: bool = False, columns: Collection[str] | None = None,
                   task_columns: Collection[str] | None = None) -> Worklist:
    """Open tasks due by a local date (today by default, so overdue ones too), the earliest first: the
    caller's own (MINE), their departments' pool (POOL), or, for a department head, everything open in
    their departments (DEPARTMENT). Always only tasks of patients the caller reaches. ``columns``: their
    patients' rows with only those (None: whole rows); ``task_columns``: the tasks' rows with only those and what
    the page itself needs (``TASK_ROW_COLUMNS``, the order's column), None: whole rows."""
    await access.authorize(ctx, "follow_up_task", "read", action=Action.READ, resource_type="follow_up_task")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    scope = one_of(scope, WORKLIST_SCOPES, "scope")
    order = order or WorklistOrder()
    cursor = _decode_task_cursor(order, after) if after else None
    departments = None if scope == "mine" else await _departments_for(ctx, scope, department_id)
    today = await local_today(ctx)
    if departments == [] or not access.patient_scope(ctx).reaches_anyone:
        return Worklist(pagination.Page([], False), today, await pagination.count_of(None, count))
    listed: dict[str, Any] = {"due_by": today if due_by is None else due_by, "departments": departments,
                              "owner_id": ctx.require_principal().user_id if departments is None else None,
                              "department_id": department_id if departments is None else None}
    total = await pagination.count_of(_listed(scope, cast(QuerySet[FollowUpTask], _reached(ctx)), **listed), count)
    column, descending = order.field, order.direction == "desc"
    after_value, after_id = cursor or (None, None)
    only = None if task_columns is None else tuple(sorted({*TASK_ROW_COLUMNS, column, *task_columns}))
    rows = await access.reached_select(
        ctx, FollowUpTask, "follow_up_task", ("follow_up.worklist", scope, column, descending, first + 1, only),
        partial(_worklist_page, scope, column, descending, first + 1, only), **listed, after_value=after_value,
        after_id=after_id)
    views = await _views(ctx, rows[:first], columns)
    page = pagination.page_of(views, len(rows) > first, order.cursor_kind,
                              key=lambda v: f"{getattr(v.row, column).isoformat()}|{v.row.id}")
    return Worklist(page, today, total)


def _listed(scope: str, query: QuerySet[FollowUpTask], *, due_by: date, departments: list[uuid.UUID] | None,
            owner_id: uuid.UUID | None, department_id: uuid.UUID | None) -> QuerySet[FollowUpTask]:
    """The open tasks of a worklist due by ``due_by``: the owner's (in one department when ``department_id`` is
    given) when ``departments`` is None, else those of the departments (only the pool's unassigned requests for
    POOL)."""
    query = query.filter(status__in=OPEN_TASK_STATUSES, due_on__lte=due_by)
    if departments is None:
        query = query.filter(owner_id=owner_id)
        if department_id is not None:
            query = query.filter(department_id=department_id)
    else:
        query = query.filter(department_id__in=departments)
    if scope == "pool":
        query = query.filter(owner_id__isnull=True, status="requested")
    return query


def _worklist_page(scope: str, column: str, descending: bool, limit: int, only: tuple[str, ...] | None,
                   query: QuerySet[FollowUpTask], *, after_value: date | datetime | None,
                   after_id: uuid.UUID | None, **listed: Any) -> QuerySet[FollowUpTask]:
    """A page of ``_listed`` in the order, after the cursor's (value, id) when there is one; its SQL is built once
    per shape (``access.reached_select``), so the values pass through unchanged."""
    query = _listed(scope, query, **listed)
    if after_id is not None:
        query = query.filter(keyset_after(column, after_value, after_id, descending))
    sign = "-" if descending else ""
    query = query.order_by(f"{sign}{column}", f"{sign}id").limit(limit)
    return query if only is None else query.only(*only)


async def workload(ctx: Context, department_id: uuid.UUID | None) -> tuple[date, list[Workload]]:
    """For a department head: open tasks overdue and due today, per owner and the pool, per department."""
    await access.authorize(ctx, "follow_up_task", "read", action=Action.READ, resource_type="follow_up_task")
    departments = await _departments_for(ctx, "department", department_id)
    today = await local_today(ctx)
    query = _reached(ctx)
    if query is None or not departments:
        return today, []
    query = query.filter(status__in=OPEN_TASK_STATUSES, department_id__in=departments)
    counts: dict[tuple[uuid.UUID, uuid.UUID | None], list[int]] = {}
    for slot, due in ((0, Q(due_on__lt=today)), (1, Q(due_on=today))):
        grouped = (query.filter(due).annotate(n=Count("id")).group_by("department_id", "owner_id")
                   .values_list("department_id", "owner_id", "n"))
        for dept, owner, n in await grouped:
            key = (_as_uuid(dept), None if owner is None else _as_uuid(owner))
            counts.setdefault(key, [0, 0])[slot] = int(n)
    ordered = sorted(counts.items(), key=lambda item: (str(item[0][0]), item[0][1] is not None, str(item[0][1])))
    return today, [Workload(dept, owner, overdue, due_today) for (dept, owner), (overdue, due_today) in ordered]


async def _departments_for(ctx: Context, scope: str, department_id: uuid.UUID | None) -> list[uuid.UUID]:
    """The departments a pool or department list covers: the caller's own (a department head's for
    DEPARTMENT). Asking for another department's list is refused and recorded."""
    principal = ctx.require_principal()
    allowed = principal.department_ids if scope == "pool" or "department_head" in principal.roles else frozenset()
    if scope == "department" and "department_head" not in principal.roles:
        await access.deny(ctx, Action.READ, "follow_up_task", reason="forbidden")
        raise Forbidden("scope: the department's list is for its department head.", field="scope")
    if department_id is None:
        return sorted(allowed)
    if department_id not in allowed:
        await access.deny(ctx, Action.READ, "follow_up_task", reason="other_department")
        raise Forbidden("departmentId: not one of your departments.", field="departmentId")
    return [department_id]


def _decode_task_cursor(order: WorklistOrder, cursor: str, kind: str | None = None
                        ) -> tuple[date | datetime, uuid.UUID]:
    """The cursor's (value, id); a time in UTC, as it is bound and compared (``core.statements``). ``kind``: the
    cursor's own, when not the order's (a patient's tasks)."""
    return pagination.decode_keyset(kind or order.cursor_kind, cursor,
                                    date.fromisoformat if order.field == "due_on" else pagination.decode_time)


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# -- writing tasks ---------------------------------------------------------------------------


async def create_task(ctx: Context, data: dict[str, Any]) -> TaskView:
    """A call planned by hand for a patient in the caller's reach: owned by a nurse, or in a pool."""
    decision = await access.authorize(ctx, "follow_up_task", "create", action=Action.CREATE,
                                      resource_type="follow_up_task", patient_id=data.get("patient_id"))
    problems = Problems()  # the input's shape first (its one dated field), before reach and the records named
    today = await local_today(ctx)
    due_on = data.get("due_on")
    if not isinstance(due_on, date) or not today <= due_on <= today + MAX_DUE_AHEAD:
        problems.add("dueOn", "out_of_range", "from today (the institution's local date) to a year ahead.")
    problems.check()
    patient = await access.find_patient(ctx, data.get("patient_id"), action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, patient, "follow_up_task", resource_type="follow_up_task", act="create")
    if patient.row.status != "active":
        raise BadUserInput(f"patientId: the file is {patient.row.status}; follow-up calls are for active files.",
                           field="patientId")
    department_id, owner_id, visit_id = await _task_references(ctx, patient, data)
    task_id = uuid7()
    async with access.file_transaction(ctx, patient.row.id, action=Action.CREATE, active="follow-up calls"):
        row = await FollowUpTask.create(id=task_id, institution_id=ctx.institution_id, patient_id=patient.row.id,
                                        visit_id=visit_id, due_on=due_on, department_id=department_id,
                                        owner_id=owner_id, status="requested")
        written = {"due_on", "department", "owner", *(["visit"] if visit_id else [])}
        await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_task", task_id,
                                                 patient_id=patient.row.id, fields=frozenset(written),
                                                 decision=decision)])
    return TaskView(row, patient)


async def _task_references(ctx: Context, patient: PatientView, data: dict[str, Any]
                           ) -> tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]:
    """The department, owner and visit a new task names, every one that is wrong reported at once."""
    problems = Problems()
    department_id = data.get("department_id")
    if department_id is not None and not await Department.exists(id=department_id,
                                                                 institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    department_id = department_id or patient.row.department_id
    owner_id = data.get("owner_id")
    if owner_id is None and department_id is None:
        problems.add("departmentId", "required", "a task nobody owns waits in a department's pool; give one.")
    if owner_id is not None and not problems.has("departmentId"):  # a nurse of that department
        with problems.collect("ownerId"):
            await _check_nurse(ctx, owner_id, department_id, "ownerId")
    visit_id = data.get("visit_id")
    if visit_id is not None and not await Visit.exists(id=visit_id, patient_id=patient.row.id,
                                                       institution_id=ctx.institution_id):
        problems.add("visitId", "invalid", "not a visit of this patient.")
    problems.check()
    return department_id, owner_id, visit_id


async def claim(ctx: Context, task_id: uuid.UUID | None) -> TaskView:
    """A nurse of the task's department takes it from the pool. Two claiming at once: one compare-and-set
    UPDATE wins, the other changes nothing and is answered CONFLICT."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    view = await find_to_change(ctx, task_id)
    principal = ctx.require_principal()
    if "nurse" not in principal.roles or view.row.department_id not in principal.department_ids:
        await _deny(ctx, view, "other_department")
        raise Forbidden("id: a nurse of the task's department claims it from the pool.", field="id")
    if view.row.status != "requested" or view.row.owner_id is not None:
        raise _taken()
    async with _writing(ctx, view) as task:
        won = await FollowUpTask.filter(id=view.row.id, institution_id=ctx.institution_id, status="requested",
                                        owner_id__isnull=True).update(
            owner_id=principal.user_id, status="accepted", version=F("version") + 1, updated_at=_now())
        if won != 1:
            raise _taken()
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", view.row.id,
                                                 patient_id=task.patient.row.id,
                                                 fields=frozenset({"owner", "status"}), decision=decision)])
    return await _reloaded(ctx, task)


def _taken() -> Conflict:
    return Conflict("id: the task is no longer in the pool (someone claimed it first, or it was assigned or "
                    "closed); read it again.", field="id", reason="task_taken")


async def assign(ctx: Context, task_id: uuid.UUID | None, staff_id: uuid.UUID | None,
                 version: int | None) -> TaskView:
    """A department head (re)assigns an open task of their departments to one of its nurses, or puts it back
    in the pool (``staff_id`` None)."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    view = await find_to_change(ctx, task_id)
    principal = ctx.require_principal()
    if "department_head" not in principal.roles or view.row.department_id not in principal.department_ids:
        await _deny(ctx, view, "forbidden")
        raise Forbidden("id: the department head of the task's department assigns it.", field="id")
    _check_open(view.row)
    if staff_id is not None:
        await _check_nurse(ctx, staff_id, view.row.department_id, "staffId")
    async with _writing(ctx, view) as task:
        await _write(ctx, view, version, {"owner_id": staff_id, "status": "requested"})
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", view.row.id,
                                                 patient_id=task.patient.row.id,
                                                 fields=frozenset({"owner", "status"}), decision=decision)])
    return await _reloaded(ctx, task)


async def record_attempt(ctx: Context, task_id: uuid.UUID | None, data: dict[str, Any]) -> AttemptView:
    """A call attempt by the task's owner: when, how, what came of it, a note (clinical, sealed)."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    at, channel, outcome, note = _attempt_shape(data)
    view = await find_to_change(ctx, task_id, field="taskId")
    await _check_worker(ctx, view, "taskId")
    _check_open(view.row, "taskId")
    attempt_id = uuid7()
    me = ctx.require_principal().user_id
    async with _writing(ctx, view, field="taskId", needs=CLINICAL) as task:
        # Still open and still the caller's (not completed or reassigned meanwhile).
        if await FollowUpTask.filter(id=view.row.id, institution_id=ctx.institution_id, owner_id=me,
                                     status__in=OPEN_TASK_STATUSES).update(updated_at=_now()) != 1:
            raise Conflict("taskId: the task changed since you read it; read it again.", field="taskId")
        row = await FollowUpAttempt.create(
            id=attempt_id, institution_id=ctx.institution_id, task_id=view.row.id, staff_id=me, at=at,
            channel=channel, outcome=outcome, note=access.seal(ctx, "follow_up_attempt", "note", attempt_id, note))
        await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_attempt", attempt_id,
                                                 patient_id=task.patient.row.id,
                                                 fields=frozenset({"at", "channel", "outcome",
                                                                   *(["note"] if note else [])}),
                                                 decision=decision)])
    return AttemptView(row, task)


def _attempt_shape(data: dict[str, Any]) -> tuple[datetime, str, str, str | None]:
    """An attempt's time, channel, outcome and note; every problem of them at once."""
    problems = Problems()
    at, channel, outcome = _now(), "", ""
    note: str | None = None
    with problems.collect("at"):
        at = _attempt_time(data.get("at"))
    with problems.collect("channel"):
        channel = one_of(data.get("channel"), ATTEMPT_CHANNELS, "channel")
    with problems.collect("outcome"):
        outcome = one_of(data.get("outcome"), ATTEMPT_OUTCOMES, "outcome")
    with problems.collect("note"):
        note = _notes(data.get("note"), "note")
    problems.check()
    return at, channel, outcome, note


async def complete(ctx: Context, task_id: uuid.UUID | None, data: dict[str, Any], version: int | None) -> TaskView:
    """The outcome form: reached or not, and when reached how the patient is (condition, needs help,
    satisfaction 1 to 5), notes (sealed). ``open_ticket`` opens a ticket about a worse condition or a
    need for help, through the tickets' own create path (SLA, timeline, owner), in the same transaction."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    form = _outcome_form(data)  # every problem of the form at once, before the task is looked up
    open_ticket = bool(data.get("open_ticket"))
    view = await find_to_change(ctx, task_id)
    await _check_worker(ctx, view, "id")
    _check_open(view.row)
    ticket_data = None
    if open_ticket:  # decided (and a refusal recorded) before the transaction opens
        await _require(ctx, view, "ticket", "create", action=Action.CREATE, resource_type="ticket")
        # and on this file, as tickets.create asks it: asked there, inside the transaction, the refusal could not be
        # recorded (found in review: INTERNAL_SERVER_ERROR where the task's reach held the file, the ticket's not);
        # refused as ``_require`` refuses, on the file the task is on now
        if not access.section_reached(ctx, view.patient, "ticket", "create"):
            await access.deny(ctx, Action.CREATE, "ticket", None,
                              await access.file_now(ctx, FollowUpTask, view.row.id), reason="forbidden")
            raise Forbidden()
        ticket_data = await _ticket_data(ctx, view, form)
    columns = {**form, "status": "completed", "completed_at": _now(), "completed_by_id": ctx.actor.id,
               "notes": access.seal(ctx, "follow_up_task", "notes", view.row.id, form["notes"])}
    written = {"status", "reached", "completed_at", "completed_by",
               *(name for name in ("condition", "needs_help", "satisfaction", "notes") if form[name] is not None)}
    # A file merged since the task was read: the task is the survivor's, and so are its record, the invitation and
    # the ticket (_writing); a call that did not reach the patient too (found in review: recorded on the merged file).
    opens = (("ticket", "create"),) if ticket_data is not None else ()
    async with _writing(ctx, view, needs=CLINICAL, also=opens) as task:
        await _write(ctx, view, version, columns)
        if ticket_data is not None:
            # A savepoint of this transaction, on the file the task is on now: the caller named the task, not
            # the file (found in review: opened on the file read before the merge, it was refused there, inside
            # this transaction, and answered INTERNAL_SERVER_ERROR).
            ticket = await tickets.create(ctx, {**ticket_data, "patient_id": task.patient.row.id})
            await FollowUpTask.filter(id=view.row.id, institution_id=ctx.institution_id).update(
                ticket_id=ticket.row.id)
            written.add("ticket")
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", view.row.id,
                                                 patient_id=task.patient.row.id, fields=frozenset(written),
                                                 decision=decision)])
        if form["reached"]:  # a call that reached the patient may ask them for a survey
            await surveys.on_follow_up_completed(ctx, await FollowUpTask.get(id=view.row.id))
    if ticket_data is not None:  # wake the live queues again now that the ticket is committed
        ctx.services.ticket_changes.notify()
        ctx.services.outbox.scheduled.set()
    return await _reloaded(ctx, task)


async def fail(ctx: Context, task_id: uuid.UUID | None, notes: str | None, version: int | None) -> TaskView:
    """Not reached after attempts: the task ends as failed. At least one recorded attempt, none reaching
    the patient (one that did reach them is completed with the outcome form instead)."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    view = await find_to_change(ctx, task_id)
    await _check_worker(ctx, view, "id")
    _check_open(view.row)
    text = _notes(notes, "notes")
    columns = {"status": "failed", "reached": False, "completed_at": _now(), "completed_by_id": ctx.actor.id,
               "notes": access.seal(ctx, "follow_up_task", "notes", view.row.id, text)}
    async with _writing(ctx, view, needs=CLINICAL) as task:
        # The attempts read under the task's lock, which recording an attempt takes too: one reaching the patient
        # meanwhile is seen here (found in review: a task failed beside a reached attempt).
        await FollowUpTask.filter(id=view.row.id).select_for_update().only("id").first()
        outcomes = await FollowUpAttempt.filter(institution_id=ctx.institution_id,
                                                task_id=view.row.id).values_list("outcome", flat=True)
        if not outcomes:
            raise BadUserInput("id: record the call attempts before marking the task failed.", field="id")
        if "reached" in outcomes:
            raise BadUserInput("id: an attempt reached the patient; complete the task with the outcome instead.",
                               field="id")
        await _write(ctx, view, version, columns)
        await writer.append([access.write_record(
            ctx, Action.UPDATE, "follow_up_task", view.row.id, patient_id=task.patient.row.id,
            fields=frozenset({"status", "reached", "completed_at", "completed_by", *(["notes"] if text else [])}),
            decision=decision)])
    return await _reloaded(ctx, task)


async def cancel(ctx: Context, task_id: uuid.UUID | None, version: int | None) -> TaskView:
    """No call is needed after all: by the task's owner, or the department head of its department."""
    decision = await access.authorize(ctx, "follow_up_task", "update", action=Action.UPDATE,
                                      resource_type="follow_up_task", resource_id=task_id)
    view = await find_to_change(ctx, task_id)
    principal = ctx.require_principal()
    head = "department_head" in principal.roles and view.row.department_id in principal.department_ids
    if not head and view.row.owner_id != principal.user_id:
        await _deny(ctx, view, "not_owner")
        raise Forbidden("id: the task's owner or its department head cancels it.", field="id")
    _check_open(view.row)
    async with _writing(ctx, view) as task:
        await _write(ctx, view, version, {"status": "cancelled"})
        await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", view.row.id,
                                                 patient_id=task.patient.row.id, fields=frozenset({"status"}),
                                                 decision=decision)])
    return await _reloaded(ctx, task)


async def _write(ctx: Context, view: TaskView, version: int | None, columns: dict[str, Any]) -> None:
    """Write only over the version the caller saw, and only while the task is open."""
    expected = view.row.version if version is None else version
    changed = await FollowUpTask.filter(id=view.row.id, institution_id=ctx.institution_id, version=expected,
                                        status__in=OPEN_TASK_STATUSES).update(
        **columns, version=bumped(), updated_at=_now())
    if changed != 1:
        raise Conflict("version: the task changed since you read it; read it again.", field="version")
    if "due_on" in columns or columns.get("status", "requested") not in OPEN_TASK_STATUSES:
        await cancel_announcements(ctx, [view.row.id])  # moved or closed: the queued announcement is not true


@asynccontextmanager
async def _writing(ctx: Context, view: TaskView, *, field: str = "id", needs: str | None = None,
                   also: Sequence[tuple[str, str]] = ()) -> AsyncIterator[TaskView]:
    """The transaction of a caller's write to a task it found; yields the task on the file it is on now, which the
    write's records (and a ticket or invitation it opens) name. The file is held first (``access.following_survivor``),
    as a merge locks it before it moves the task: the other way round, a ticket's or invitation's wait for the file
    deadlocked with a merge at that moment (found in review). A file merged since the task was found moved the task
    to the survivor: the caller named the task, not the file, so the write goes on there, if the caller still reaches
    the task (``needs``: and writes that class of it, as ``_check_worker`` asks), as ``find`` would ask after the
    merge; beyond it NOT_FOUND at ``field``, nothing written, the refusal recorded once rolled back (found in review:
    claim, assign, an attempt, fail and cancel recorded on the merged file, without asking); where no role of the
    caller that changes tasks reaches the survivor, FORBIDDEN so, as ``find_to_change`` asks; so too where no role
    holding a right in ``also`` (a ticket the call opens) does."""
    following = access.following_survivor(ctx, Action.UPDATE, "follow_up_task", view.row.id, field=field,
                                          needs=needs, section="follow_up_task", also=also)
    async with following as hold, in_transaction():
        yield TaskView(view.row, await hold(view.patient.row.id) or view.patient)


async def _deny(ctx: Context, view: TaskView, reason: str, field_classes: frozenset[str] = frozenset()) -> None:
    """A write to a task refused, on the trail of the file the task is on now (``access.file_now``: found in review,
    a merge since the task was found left the refusal on the merged file)."""
    await access.deny(ctx, Action.UPDATE, "follow_up_task", view.row.id,
                      await access.file_now(ctx, FollowUpTask, view.row.id), reason=reason, field_classes=field_classes)


async def _require(ctx: Context, view: TaskView, obj: str, act: str, *, action: Action = Action.UPDATE,
                   resource_type: str = "follow_up_task") -> None:
    """A right a write to a task needs on its patient; refused, recorded naming the file the task is on now, as
    ``_deny``."""
    await access.authorize_on_record(ctx, obj, act, action=action, resource_type=resource_type, resource_id=None,
                                     model=FollowUpTask, record_id=view.row.id)


async def cancel_announcements(ctx: Context, task_ids: list[uuid.UUID]) -> int:
    """Cancel the queued announcements of these calls (found in review: a call closed or moved was still
    announced; the sweep queues a moved one again for its new day)."""
    return await communications.cancel_queued(ctx.institution_id,
                                               *(communications.cause_prefix("follow_up", i) for i in task_ids))


async def _reloaded(ctx: Context, view: TaskView) -> TaskView:
    return TaskView(await FollowUpTask.get(id=view.row.id, institution_id=ctx.institution_id), view.patient)


async def _check_worker(ctx: Context, view: TaskView, field: str) -> None:
    """Calls are made and recorded by the task's owner, with the right to write the clinical class of
    this patient's file (the outcome is clinical). A pool task is claimed first."""
    principal = ctx.require_principal()
    if view.row.owner_id is None and view.row.status == "requested":
        raise BadUserInput(f"{field}: the task is in the department's pool; claim it first.", field=field)
    if view.row.owner_id is not None and view.row.owner_id != principal.user_id:
        await _deny(ctx, view, "not_owner")
        raise Forbidden(f"{field}: the task is a colleague's; the department head reassigns it.", field=field)
    await _require(ctx, view, f"patient.{CLINICAL}", "update")
    # read here, and written by a role that reaches the file, as access.require_class_write asks (found in review:
    # the task changed through one role's reach, its outcome written with another's right where it does not reach)
    if CLINICAL not in view.patient.classes or not access.section_reached(ctx, view.patient, f"patient.{CLINICAL}",
                                                                           "update"):
        await _deny(ctx, view, "forbidden", frozenset({CLINICAL}))
        raise Forbidden()


def _check_open(row: FollowUpTask, field: str = "id") -> None:
    if row.status not in OPEN_TASK_STATUSES:
        raise BadUserInput(f"{field}: the task is {row.status}; only open tasks change.", field=field,
                           reason=ILLEGAL_TRANSITION)


async def _check_nurse(ctx: Context, staff_id: uuid.UUID, department_id: uuid.UUID | None, field: str) -> None:
    """An active nurse of the task's department."""
    found = await Staff.exists(id=staff_id, institution_id=ctx.institution_id, is_active=True)
    nurse = found and await RoleAssignment.exists(institution_id=ctx.institution_id, staff_id=staff_id, role="nurse")
    member = department_id is None or await DepartmentMembership.exists(
        institution_id=ctx.institution_id, staff_id=staff_id, department_id=department_id)
    if not (nurse and member):
        raise BadUserInput(f"{field}: not a nurse of the task's department.", field=field)


def _outcome_form(data: dict[str, Any]) -> dict[str, Any]:
    """The outcome form's values; every problem of them at once."""
    problems = Problems()
    reached = data.get("reached")
    form: dict[str, Any] = {"reached": reached, "condition": data.get("condition"),
                            "needs_help": data.get("needs_help"), "satisfaction": data.get("satisfaction"),
                            "notes": None}
    if not isinstance(reached, bool):
        problems.add("reached", "required", "say whether the patient was reached.")
    with problems.collect("notes"):
        form["notes"] = _notes(data.get("notes"), "notes")
    if reached is True:
        if form["condition"] is None:
            problems.add("condition", "required", "say how the patient is (BETTER, SAME or WORSE).")
        else:
            with problems.collect("condition"):
                one_of(form["condition"], CONDITIONS, "condition")
        if form["satisfaction"] is not None and not 1 <= form["satisfaction"] <= 5:
            problems.add("satisfaction", "out_of_range", "from 1 to 5.")
    elif reached is False:
        for name in ("condition", "needs_help", "satisfaction"):
            if form[name] is not None:
                problems.add(camel_case(name), "invalid", "only when the patient was reached.")
    if data.get("open_ticket") and isinstance(reached, bool) and not problems.has("condition") \
            and not (form["condition"] == "worse" or form["needs_help"]):
        problems.add("openTicket", "invalid", "a ticket is opened for a patient who is worse or needs help.")
    problems.check()
    return form


async def _ticket_data(ctx: Context, view: TaskView, form: dict[str, Any]) -> dict[str, Any]:
    """The ticket a worrying call opens. Its subject says why, never what the patient said: the notes are
    clinical and stay on the task, where only clinical readers open them; the ticket links back to it."""
    visit = None if view.row.visit_id is None else await Visit.get_or_none(id=view.row.visit_id,
                                                                          institution_id=ctx.institution_id)
    kind = None if visit is None else visit.kind
    worse = form["condition"] == "worse"
    subject = ("Follow-up call: the patient's condition is worse" if worse
               else "Follow-up call: the patient needs help")
    data: dict[str, Any] = {"patient_id": view.patient.row.id, "channel": "nurse_station", "category": "request",
                            "subject": subject,
                            # worse after a procedure or a stay is the urgent level (bleeding after surgery)
                            "post_operative": worse and kind in ("procedure", "inpatient")}
    if view.row.department_id is not None:
        data["department_id"] = view.row.department_id
    return data


def _attempt_time(value: datetime | None) -> datetime:
    now = _now()
    if value is None:
        return now
    value = aware_time(value, "at")
    if value > now + timedelta(minutes=1) or value < now - MAX_ATTEMPT_AGE:
        raise BadUserInput("at: within the last 30 days, not in the future.", field="at")
    return value


def _notes(value: str | None, field: str) -> str | None:
    return None if value is None else clean_text(value, field=field, max_length=NOTES_LIMIT, min_length=1)
