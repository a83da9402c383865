"""Follow-up (随访, FHIR Task): the rules that schedule calls after a visit, the tasks, call attempts,
the outcome form and the nurses' worklist.

A task is read under the classes of its patient's file: when it is due and where it stands is
identity, what the call found (reached, condition, needs help, satisfaction, notes, attempts) is
clinical. A field your role may not read on this patient resolves to null with a FORBIDDEN error.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from core.validation import camel_case
from policies.fields import FOLLOW_UP_FIELD_CLASS
from resolvers import follow_up as follow_ups
from resolvers.context import Context
from resolvers.follow_up import AttemptView, RuleView, TaskView
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    FieldSource,
    First,
    Info,
    OrderDirection,
    PageInfo,
    Version,
    asks_total,
    provided,
    register_node,
    uuid_of,
)
from schema.department import Department
from schema.patient import Patient, PatientSource
from schema.selection import columns_of, patient_columns
from schema.staff import StaffSummary
from schema.visit import NAMED_VISIT, Visit, VisitKind, named_visit

if TYPE_CHECKING:
    from models import FollowUpRule as FollowUpRuleRow


@strawberry.enum(description="Where a follow-up task stands (FHIR Task.status): REQUESTED is due (in the pool or "
                             "assigned), ACCEPTED claimed by a nurse, COMPLETED done, FAILED the patient was not "
                             "reached after attempts, CANCELLED no call needed.")
class FollowUpTaskStatus(Enum):
    REQUESTED = strawberry.enum_value("requested", description="Due: in the department's pool, or given to a nurse who "
                                                               "has not claimed it.")
    ACCEPTED = strawberry.enum_value("accepted", description="Claimed by (or assigned to) a nurse who will call.")
    COMPLETED = strawberry.enum_value("completed", description="Done: the outcome form is filled in.")
    FAILED = strawberry.enum_value("failed", description="The patient was not reached after the attempts recorded.")
    CANCELLED = strawberry.enum_value("cancelled", description="No call needed any more.")


@strawberry.enum(description="Who a rule's tasks go to: the patient's responsible (care-team) nurse, or the "
                             "department's pool, where a nurse of the department claims them.")
class FollowUpAssignee(Enum):
    RESPONSIBLE_NURSE = strawberry.enum_value("responsible_nurse", description="The nurse on the patient's care "
                                                                               "team (the pool when there is none).")
    DEPARTMENT_POOL = strawberry.enum_value(
        "department_pool", description="The department's pool, for any of its nurses to claim.")


@strawberry.enum(description="How the patient is, by their own account on the call.")
class PatientCondition(Enum):
    BETTER = strawberry.enum_value("better", description="Better than at the visit.")
    SAME = strawberry.enum_value("same", description="No change since the visit.")
    WORSE = strawberry.enum_value("worse", description="Worse than at the visit: consider opening a ticket "
                                                       "(openTicket).")


@strawberry.enum(description="How a call attempt was made.")
class CallChannel(Enum):
    PHONE = strawberry.enum_value("phone", description="A telephone call.")
    SMS = strawberry.enum_value("sms", description="A text message.")
    WECHAT = strawberry.enum_value("wechat", description="A WeChat message or call.")
    VISIT = strawberry.enum_value("visit", description="In person (a home visit, or when the patient came by).")
    VIDEO = strawberry.enum_value("video", description="A video call.")


@strawberry.enum(description="What came of a call attempt.")
class CallOutcome(Enum):
    REACHED = strawberry.enum_value("reached", description="The patient (or their contact) was reached.")
    NO_ANSWER = strawberry.enum_value("no_answer", description="Nobody answered.")
    BUSY = strawberry.enum_value("busy", description="The line was busy.")
    WRONG_NUMBER = strawberry.enum_value("wrong_number", description="The number is not the patient's.")
    DECLINED = strawberry.enum_value("declined", description="Reached, but the patient did not want to talk.")


@strawberry.enum(description="Which worklist: your own tasks, your departments' pool, or (department heads) "
                             "everything open in your departments.")
class FollowUpScope(Enum):
    MINE = strawberry.enum_value("mine", description="Tasks you own.")
    POOL = strawberry.enum_value("pool", description="Unowned tasks waiting in your departments' pools.")
    DEPARTMENT = strawberry.enum_value("department", description="Department heads: every open task in your "
                                                                 "departments, owned or not.")


# -- rules ---------------------------------------------------------------------------------


@strawberry.type(description="A follow-up rule: after a finished visit matching it (kind, procedure, department), "
                             "calls due so many days later. Versioned: a change is a new version with the same "
                             "ruleKey, and tasks keep the version they came from.")
class FollowUpRule:
    view: strawberry.Private[RuleView]

    @classmethod
    def of(cls, row: FollowUpRuleRow) -> FollowUpRule:
        return cls(view=RuleView(row))

    @property
    def row(self) -> FollowUpRuleRow:
        return self.view.row

    @strawberry.field(description="This version's id (each version has its own).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The same across a rule's versions.")
    def rule_key(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.rule_key))

    @strawberry.field(description="1 for a new rule, one more for each change.")
    def version(self) -> int:
        return self.row.version

    @strawberry.field(description="Whether this version is in force (false: changed since, or retired).")
    def active(self) -> bool:
        return self.row.active

    @strawberry.field(description="What the rule is for, as staff see it in lists (e.g. \"Day 3 after surgery\").")
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="The kind of visit it follows; null: any kind.")
    def visit_kind(self) -> VisitKind | None:
        return None if self.row.visit_kind is None else VisitKind(self.row.visit_kind)

    @strawberry.field(description="A service catalogue code the visit must record; null: any.")
    def procedure_code(self) -> str | None:
        return self.row.procedure_code

    @strawberry.field(description="Days after the visit's (local) end date, one call each.")
    def offsets_days(self) -> list[int]:
        return follow_ups.offsets(self.row)

    @strawberry.field(description="Who its tasks go to.")
    def assignee(self) -> FollowUpAssignee:
        return FollowUpAssignee(self.row.assignee)

    @strawberry.field(description="A call due on a closed day (weekend, holiday) moves to the next working day.")
    def skip_closed_days(self) -> bool:
        return self.row.skip_closed_days

    @strawberry.field(description="When this version was written.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="The department whose visits it follows; null: every department.")
    async def department(self, info: Info) -> Department | None:
        department_id = self.row.department_id
        row = None if department_id is None else await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="Who wrote this version (null: the institution's defaults).")
    async def author(self, info: Info) -> StaffSummary | None:
        staff_id: uuid.UUID | None = getattr(self.row, "author_id", None)  # not declared on the model for mypy
        row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
        return None if row is None else StaffSummary.of(row)


@strawberry.type(description="One follow-up rule version of a page, with its cursor.")
class FollowUpRuleEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: FollowUpRule = strawberry.field(description="The rule version.")


@strawberry.type(description="A page of follow-up rules, in creation order.")
class FollowUpRuleConnection:
    edges: list[FollowUpRuleEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[FollowUpRule]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="A new follow-up rule. Offsets: 1 to 10, each 0 to 366 days.")
class FollowUpRuleCreateInput:
    name: str = strawberry.field(description="What the rule is for, 1-100 characters.")
    offsets_days: list[int] = strawberry.field(description="Days after the visit's local end date, one call each: "
                                                           "1 to 10 offsets, each 0 to 366.")
    visit_kind: VisitKind | None = strawberry.field(default=None, description="Follow only visits of this kind; "
                                                                              "null: any kind.")
    procedure_code: str | None = strawberry.field(default=None, description="A code of the service catalogue.")
    department_id: strawberry.ID | None = strawberry.field(default=None,
                                                           description="Follow only this department's visits; "
                                                                       "null: every department (admins).")
    assignee: FollowUpAssignee = strawberry.field(default=FollowUpAssignee.RESPONSIBLE_NURSE,
                                                  description="Who the tasks go to.")
    skip_closed_days: bool = strawberry.field(default=True, description="Move a call due on a closed day (weekend, "
                                                                        "holiday) to the next working day.")


@strawberry.input(description="Changes to a rule (a new version): fields left out stay as they are; null clears "
                              "visitKind, procedureCode or departmentId.")
class FollowUpRuleChangeInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="A new name, 1-100 characters.")
    offsets_days: list[int] | None = strawberry.field(default=strawberry.UNSET,
                                                      description="New offsets (replaces the list): 1 to 10, each 0 "
                                                                  "to 366 days.")
    visit_kind: VisitKind | None = strawberry.field(default=strawberry.UNSET,
                                                    description="The kind of visit followed; null: any kind.")
    procedure_code: str | None = strawberry.field(default=strawberry.UNSET,
                                                  description="A service catalogue code the visit must record; "
                                                              "null: any.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="The department whose visits it follows; "
                                                                       "null: every department.")
    assignee: FollowUpAssignee | None = strawberry.field(default=strawberry.UNSET,
                                                         description="Who the tasks go to.")
    skip_closed_days: bool | None = strawberry.field(default=strawberry.UNSET,
                                                     description="Move a call due on a closed day to the next "
                                                                 "working day.")


# -- tasks ----------------------------------------------------------------------------------


_CONVERT: dict[str, Any] = {"status": FollowUpTaskStatus, "condition": PatientCondition}


class TaskSource(FieldSource):
    __slots__ = ()
    fields = frozenset(FOLLOW_UP_FIELD_CLASS) - {"attempts"}

    def read(self, name: str) -> Any:
        value = follow_ups.read_field(self.ctx, self.view, name)
        convert = _CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


# What each FollowUpTask field reads off the task's row (besides follow_ups.TASK_ROW_COLUMNS)
TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "patient": (), "attempts": (), "owner": ("owner_id",),
    "department": ("department_id",), "rule": ("rule_id",), "visitId": ("visit_id",), "visit": ("visit_id",),
    "ticketId": ("ticket_id",), "version": ("version",),
    **{camel_case(name): (name,) for name in TaskSource.fields},
}


def task_node(ctx: Context, view: TaskView) -> FollowUpTask:
    return cast(FollowUpTask, TaskSource(ctx, view))


_ATTEMPT_CONVERT: dict[str, Any] = {"channel": CallChannel, "outcome": CallOutcome}


class AttemptSource(FieldSource):
    __slots__ = ()
    fields = frozenset({"at", "channel", "outcome", "note"})

    def read(self, name: str) -> Any:
        value = follow_ups.read_attempt_field(self.ctx, self.view, name)
        convert = _ATTEMPT_CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


def attempt_node(ctx: Context, view: AttemptView) -> FollowUpAttempt:
    return cast(FollowUpAttempt, AttemptSource(ctx, view))


@strawberry.type(description="A call attempt on a follow-up task. Clinical: read under the clinical class of the "
                             "patient's file; without it a field is null with a FORBIDDEN error at its path.")
class FollowUpAttempt:
    view: strawberry.Private[AttemptView]

    @strawberry.field(description="The attempt's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    at: datetime | None = strawberry.field(description="When the call was made.")
    channel: CallChannel | None = strawberry.field(description="How.")
    outcome: CallOutcome | None = strawberry.field(description="What came of it.")
    note: str | None = strawberry.field(description="A note on the attempt. Clinical, encrypted.")

    @strawberry.field(description="Who made the call.")
    async def staff(self, info: Info) -> StaffSummary | None:
        follow_ups.read_attempt_field(info.context, self.view, "at")
        row = await info.context.require_loaders().staff.load(self.view.row.staff_id)
        return None if row is None else StaffSummary.of(row)


@strawberry.type(description="A follow-up call to make (FHIR Task), from a rule after a visit or planned by hand. "
                             "Read under the classes of the patient's file: due date, status, times, owner and "
                             "department are identity; the outcome form and the attempts clinical. A field of a class "
                             "you may not read answers null with a FORBIDDEN error at its path (the rest still "
                             "comes); otherwise null means nothing is recorded.")
class FollowUpTask:
    view: strawberry.Private[TaskView]

    @strawberry.field(description="The task's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, as you may see the file (name, phone...).")
    def patient(self, info: Info) -> Patient:
        return cast(Patient, PatientSource(info.context, self.view.patient))

    due_on: date | None = strawberry.field(description="The local date the call is due.")
    status: FollowUpTaskStatus | None = strawberry.field(description="Where the task stands.")
    completed_at: datetime | None = strawberry.field(description="When it was completed or marked failed.")
    created_at: datetime | None = strawberry.field(description="When it was created.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    @strawberry.field(description="The task's version, 1 when created and one more with each change (every task "
                                  "has one; read, as its id, by whoever sees the task). Pass it back as `version` "
                                  "when you change it: a stale one is refused with CONFLICT (reason stale_version).")
    def version(self) -> int:
        return self.view.row.version
    reached: bool | None = strawberry.field(description="Whether the patient was reached. Clinical.")
    condition: PatientCondition | None = strawberry.field(description="How the patient is. Clinical.")
    needs_help: bool | None = strawberry.field(description="Whether the patient needs help. Clinical.")
    satisfaction: int | None = strawberry.field(description="The patient's satisfaction, 1 to 5. Clinical.")
    notes: str | None = strawberry.field(description="Notes on the call. Clinical, encrypted.")

    @strawberry.field(description="The nurse who owns it; null: it waits in the department's pool.")
    async def owner(self, info: Info) -> StaffSummary | None:
        follow_ups.require_identity(info.context, self.view)
        staff_id = self.view.row.owner_id
        row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="The department whose pool and head it belongs to.")
    async def department(self, info: Info) -> Department | None:
        follow_ups.require_identity(info.context, self.view)
        department_id = self.view.row.department_id
        row = None if department_id is None else await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="The rule version that created it (null: planned by hand). Clinical: a rule "
                                  "names the procedure it follows.")
    async def rule(self, info: Info) -> FollowUpRule | None:
        follow_ups.require_rule(info.context, self.view)
        rule_id = self.view.row.rule_id
        row = None if rule_id is None else await info.context.require_loaders().follow_up_rule.load(rule_id)
        return None if row is None else FollowUpRule.of(row)

    @strawberry.field(description="The visit it follows, if any.")
    def visit_id(self, info: Info) -> strawberry.ID | None:
        follow_ups.require_identity(info.context, self.view)
        visit_id = self.view.row.visit_id
        return None if visit_id is None else strawberry.ID(str(visit_id))

    @strawberry.field(description=f"The visit it follows; null when it follows none. {NAMED_VISIT}")
    async def visit(self, info: Info) -> Visit | None:
        follow_ups.require_identity(info.context, self.view)  # which visit it follows: as visitId
        return await named_visit(info.context, self.view.row.visit_id)

    @strawberry.field(description="The ticket opened from its outcome, if any.")
    def ticket_id(self, info: Info) -> strawberry.ID | None:
        follow_ups.require_identity(info.context, self.view)
        ticket_id = self.view.row.ticket_id
        return None if ticket_id is None else strawberry.ID(str(ticket_id))

    @strawberry.field(description=f"The call attempts, oldest first, at most {follow_ups.ATTEMPTS_LIMIT}: page "
                                  "through all of them with followUpAttempts (its totalCount says how many). "
                                  "Clinical.")
    async def attempts(self, info: Info) -> list[FollowUpAttempt] | None:
        return [attempt_node(info.context, view) for view in await follow_ups.attempts_of(info.context, self.view)]


@strawberry.type(description="One task of a page (a worklist, a patient's tasks), with its cursor.")
class FollowUpTaskEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: FollowUpTask = strawberry.field(description="The task.")


@strawberry.type(description="A worklist page: open tasks due by a date, the earliest first unless another order "
                             "is asked for.")
class FollowUpWorklist:
    edges: list[FollowUpTaskEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    today: date = strawberry.field(description="Today in the institution's time zone: tasks due before it are "
                                               "overdue.")
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[FollowUpTask]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="One call attempt of a page, with its cursor.")
class FollowUpAttemptEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: FollowUpAttempt = strawberry.field(description="The attempt.")


@strawberry.type(description="A page of a follow-up task's call attempts, oldest first.")
class FollowUpAttemptConnection:
    edges: list[FollowUpAttemptEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[FollowUpAttempt]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A page of a patient's follow-up tasks, soonest due first.")
class FollowUpTaskConnection:
    edges: list[FollowUpTaskEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[FollowUpTask]:
        return [edge.node for edge in self.edges]


@strawberry.enum(description="What a worklist can be sorted by.")
class FollowUpTaskOrderField(Enum):
    DUE_ON = strawberry.enum_value("due_on", description="By due date (the default, earliest first).")
    UPDATED_AT = strawberry.enum_value("updated_at", description="By last change.")


@strawberry.input(description="The order of a worklist; ties are broken by id. A cursor works only with the order "
                              "it came from.")
class FollowUpTaskOrder:
    field: FollowUpTaskOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


@strawberry.type(description="Open tasks of one owner (or the pool) in one department.")
class FollowUpLoad:
    department_id: strawberry.Private[uuid.UUID]
    owner_id: strawberry.Private[uuid.UUID | None]
    overdue: int = strawberry.field(description="Due before today (local date).")
    due_today: int = strawberry.field(description="Due today (local date).")

    @strawberry.field(description="The department whose tasks are counted on this line; never null (a "
                                  "department is never deleted).")
    async def department(self, info: Info) -> Department | None:
        row = await info.context.require_loaders().department.load(self.department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="The nurse; null: the department's pool.")
    async def owner(self, info: Info) -> StaffSummary | None:
        row = None if self.owner_id is None else await info.context.require_loaders().staff.load(self.owner_id)
        return None if row is None else StaffSummary.of(row)


@strawberry.type(description="A department's follow-up load, for its head.")
class FollowUpWorkload:
    today: date = strawberry.field(description="Today in the institution's time zone.")
    lines: list[FollowUpLoad] = strawberry.field(description="One line per nurse with open tasks and per "
                                                             "department pool.")


@strawberry.input(description="A follow-up call planned by hand. Without an owner it waits in the department's "
                              "pool (the patient's department unless you name one).")
class FollowUpTaskCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient to call, in your reach.")
    due_on: date = strawberry.field(description="From today (the institution's local date) to a year ahead.")
    department_id: strawberry.ID | None = strawberry.field(default=None,
                                                           description="The department whose pool it joins; null: "
                                                                       "the patient's department.")
    owner_id: strawberry.ID | None = strawberry.field(default=None, description="A nurse of the department.")
    visit_id: strawberry.ID | None = strawberry.field(default=None, description="A visit of this patient it follows.")


@strawberry.input(description="A call attempt.")
class FollowUpAttemptInput:
    channel: CallChannel = strawberry.field(description="How the call was made.")
    outcome: CallOutcome = strawberry.field(description="What came of it.")
    at: datetime | None = strawberry.field(default=None, description="When (with its offset); now by default. "
                                                                     "Within the last 30 days.")
    note: str | None = strawberry.field(default=None, description="Clinical, encrypted. At most 2,000 characters.")


@strawberry.input(description="The outcome form. When the patient was reached, say how they are; otherwise leave "
                              "condition, needsHelp and satisfaction out.")
class FollowUpOutcomeInput:
    reached: bool = strawberry.field(description="Whether the patient was reached.")
    condition: PatientCondition | None = strawberry.field(default=None, description="How the patient is; only when "
                                                                                    "reached.")
    needs_help: bool | None = strawberry.field(default=None, description="Whether the patient needs help from the "
                                                                         "institution; only when reached.")
    satisfaction: int | None = strawberry.field(default=None, description="1 to 5.")
    notes: str | None = strawberry.field(default=None, description="Clinical, encrypted. At most 2,000 characters.")
    open_ticket: bool = strawberry.field(default=False, description="Open a ticket (linked to the task) for a "
                                                                    "patient who is WORSE or needs help; needs the "
                                                                    "right to create tickets.")


def rule_connection(page: follow_ups.pagination.Page[FollowUpRuleRow]) -> FollowUpRuleConnection:
    return FollowUpRuleConnection(
        edges=[FollowUpRuleEdge(cursor=cursor, node=FollowUpRule.of(row)) for cursor, row in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


_TASK_ID = Annotated[strawberry.ID, strawberry.argument(description="The task's id (NOT_FOUND when missing or its "
                                                                  "patient is outside your reach).")]
_RULE_ID = Annotated[strawberry.ID, strawberry.argument(description="The id of the rule version you read.")]
_DEPARTMENT = Annotated[strawberry.ID | None, strawberry.argument(
    description="One of your departments; null: all of them.")]


@strawberry.type
class FollowUpQuery:
    @strawberry.field(description="One follow-up task. NOT_FOUND when it is missing or its patient is outside your "
                                  "reach.")
    async def follow_up_task(self, info: Info, id: _TASK_ID) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.get(info.context, uuid_of(id)))

    @strawberry.field(description="Open tasks due by a local date (today by default, so overdue ones too), the "
                                  "earliest first, each with its patient: MINE, your departments' POOL, or a "
                                  "department head's DEPARTMENT. 1 to 100 a page.")
    async def follow_up_worklist(
        self, info: Info,
        scope: Annotated[FollowUpScope, strawberry.argument(description="Which worklist.")] = FollowUpScope.MINE,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="POOL and DEPARTMENT: one of your departments; null: all of them. MINE: only tasks of "
                        "this department.")] = None,
        due_by: Annotated[date | None, strawberry.argument(
            description="The last local due date included; null: today (so overdue tasks too).")] = None,
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
        order_by: Annotated[FollowUpTaskOrder | None, strawberry.argument(
            description="The order; null: earliest due first.")] = None,
    ) -> FollowUpWorklist:
        order = None if order_by is None else follow_ups.WorklistOrder(str(order_by.field.value),
                                                                       str(order_by.direction.value))
        found = await follow_ups.worklist(info.context, scope=str(scope.value),
                                          department_id=uuid_of(department_id, "departmentId"), due_by=due_by,
                                          first=first, after=after, order=order, count=asks_total(info),
                                          columns=patient_columns(info),
                                          task_columns=columns_of(info, "FollowUpTask", TASK_COLUMNS))
        ctx = info.context
        return FollowUpWorklist(
            edges=[FollowUpTaskEdge(cursor=cursor, node=task_node(ctx, view)) for cursor, view in found.page.items],
            page_info=PageInfo.of(found.page),
            today=found.today, total_count=found.total or 0)

    @strawberry.field(description="A patient's follow-up tasks, soonest due first, a page at a time; openOnly: "
                                  "false lists every task, done and cancelled ones too. The patient page's "
                                  "openFollowUpTasks lists the first open ones.")
    async def patient_follow_up_tasks(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        open_only: Annotated[bool, strawberry.argument(
            description="Only the tasks still open (requested or accepted).")] = True,
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> FollowUpTaskConnection | None:
        page = await follow_ups.patient_page(info.context, uuid_of(patient_id, "patientId"), open_only=open_only,
                                             first=first, after=after, count=asks_total(info))
        return FollowUpTaskConnection(
            edges=[FollowUpTaskEdge(cursor=cursor, node=task_node(info.context, view)) for cursor, view in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="A follow-up task's call attempts, oldest first, a page at a time (clinical). "
                                  "FollowUpTask.attempts lists the first ones.")
    async def follow_up_attempts(self, info: Info, task_id: _TASK_ID, first: First = DEFAULT_PAGE_SIZE,
                                 after: After = None) -> FollowUpAttemptConnection | None:
        page = await follow_ups.attempts_page(info.context, uuid_of(task_id, "taskId"), first=first, after=after,
                                              count=asks_total(info))
        return FollowUpAttemptConnection(
            edges=[FollowUpAttemptEdge(cursor=cursor, node=attempt_node(info.context, view))
                   for cursor, view in page.items], page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="Department heads: open tasks overdue and due today per nurse and pool in your "
                                  "departments (or one of them).")
    async def follow_up_workload(self, info: Info, department_id: _DEPARTMENT = None) -> FollowUpWorkload:
        today, lines = await follow_ups.workload(info.context, uuid_of(department_id, "departmentId"))
        return FollowUpWorkload(today=today, lines=[
            FollowUpLoad(department_id=line.department_id, owner_id=line.owner_id, overdue=line.overdue,
                         due_today=line.due_today) for line in lines])

    @strawberry.field(description="The follow-up rules in force (includeRetired: every version), or every version "
                                  "of one rule (ruleKey), in creation order.")
    async def follow_up_rules(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        include_retired: Annotated[bool, strawberry.argument(
            description="Also the versions replaced or retired.")] = False,
        rule_key: Annotated[strawberry.ID | None, strawberry.argument(
            description="Every version of this rule (its ruleKey), retired ones included.")] = None,
    ) -> FollowUpRuleConnection:
        page = await follow_ups.rules(info.context, first=first, after=after, include_retired=include_retired,
                                      rule_key=uuid_of(rule_key, "ruleKey"), count=asks_total(info))
        return rule_connection(page)


@strawberry.type
class FollowUpMutation:
    @strawberry.mutation(description="A new follow-up rule (department heads for their departments, admins).")
    async def follow_up_rule_create(self, info: Info, input: Annotated[FollowUpRuleCreateInput, strawberry.argument(
            description="The new rule.")]) -> FollowUpRule | None:
        return FollowUpRule.of(await follow_ups.rule_create(info.context, provided(input)))

    @strawberry.mutation(description="Change a rule: a new version replaces this one. Pass the version you read: a "
                                     "stale one (or a retired rule) answers CONFLICT.")
    async def follow_up_rule_update(
        self, info: Info, id: _RULE_ID,
        input: Annotated[FollowUpRuleChangeInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> FollowUpRule | None:
        return FollowUpRule.of(await follow_ups.rule_change(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Retire a rule: it creates no more tasks; those it created stay.")
    async def follow_up_rule_retire(self, info: Info, id: _RULE_ID, version: Version = None) -> FollowUpRule | None:
        return FollowUpRule.of(await follow_ups.rule_retire(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Plan a follow-up call by hand (nurses, doctors) for a patient in your reach.")
    async def follow_up_task_create(self, info: Info, input: Annotated[FollowUpTaskCreateInput, strawberry.argument(
            description="The call to plan.")]) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.create_task(info.context, provided(input)))

    @strawberry.mutation(description="Claim a task from your department's pool. If a colleague claimed it first: "
                                     "CONFLICT.")
    async def follow_up_task_claim(self, info: Info, id: _TASK_ID) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.claim(info.context, uuid_of(id)))

    @strawberry.mutation(description="Department heads: give an open task to a nurse of its department, or back to "
                                     "the pool (staffId null).")
    async def follow_up_task_assign(
        self, info: Info, id: _TASK_ID,
        staff_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="A nurse of the task's department; null: back to the pool.")] = None,
        version: Version = None,
    ) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.assign(info.context, uuid_of(id),
                                                               uuid_of(staff_id, "staffId"), version))

    @strawberry.mutation(description="Record a call attempt on your task.")
    async def follow_up_attempt_record(
        self, info: Info,
        task_id: Annotated[strawberry.ID, strawberry.argument(description="Your open task.")],
        input: Annotated[FollowUpAttemptInput, strawberry.argument(description="The attempt.")],
    ) -> FollowUpAttempt | None:
        return attempt_node(info.context, await follow_ups.record_attempt(info.context, uuid_of(task_id, "taskId"),
                                                                          provided(input)))

    @strawberry.mutation(description="Complete your task with the outcome form (openTicket: a ticket for a patient "
                                     "who is worse or needs help, linked to the task).")
    async def follow_up_task_complete(
        self, info: Info, id: _TASK_ID,
        input: Annotated[FollowUpOutcomeInput, strawberry.argument(description="The outcome form.")],
        version: Version = None,
    ) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.complete(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Mark your task failed: the patient was not reached after the attempts recorded.")
    async def follow_up_task_fail(
        self, info: Info, id: _TASK_ID,
        notes: Annotated[str | None, strawberry.argument(
            description="Why, at most 2,000 characters. Clinical, encrypted.")] = None,
        version: Version = None,
    ) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.fail(info.context, uuid_of(id), notes, version))

    @strawberry.mutation(description="Cancel a task (its owner, or the head of its department).")
    async def follow_up_task_cancel(self, info: Info, id: _TASK_ID, version: Version = None) -> FollowUpTask | None:
        return task_node(info.context, await follow_ups.cancel(info.context, uuid_of(id), version))


register_node("follow_up_task", task_node)
