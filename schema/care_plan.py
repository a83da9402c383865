"""Care plans (FHIR CarePlan): goals and planned activities; calls and re-visits become follow-up tasks."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from policies.fields import CARE_PLAN_FIELD_CLASS
from resolvers import care_plan as care_plans
from resolvers.care_plan import ActivityView, CarePlanView
from resolvers.context import Context
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    FieldSource,
    First,
    Info,
    PageInfo,
    Version,
    asks_total,
    optional_id,
    provided,
    register_node,
    uuid_of,
)
from schema.patient import Patient, PatientSource
from schema.visit import NAMED_VISIT, Visit, named_visit


@strawberry.enum(description="Where a plan stands (FHIR CarePlan.status).")
class CarePlanStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Written, not yet in force; it may be activated or revoked.")
    ACTIVE = strawberry.enum_value("active", description="In force (a new plan starts here): its calls and re-visits "
                                                         "are follow-up tasks.")
    COMPLETED = strawberry.enum_value("completed", description="Carried out; its open follow-up tasks were cancelled.")
    REVOKED = strawberry.enum_value("revoked", description="Withdrawn; its open follow-up tasks were cancelled.")


@strawberry.enum(description="What a planned activity is. CALL and REVISIT become follow-up tasks on their date.")
class CarePlanActivityKind(Enum):
    CALL = strawberry.enum_value("call", description="A follow-up call (becomes a follow-up task).")
    REVISIT = strawberry.enum_value("revisit", description="A re-visit to check on (becomes a follow-up task).")
    EDUCATION = strawberry.enum_value("education", description="Health education for the patient or family.")
    MEDICATION = strawberry.enum_value("medication", description="Taking or reviewing medication.")
    REHABILITATION = strawberry.enum_value("rehabilitation", description="Rehabilitation exercise or therapy.")
    OTHER = strawberry.enum_value("other", description="Anything else; say what in the description.")


@strawberry.enum(description="Where an activity stands.")
class CarePlanActivityStatus(Enum):
    SCHEDULED = strawberry.enum_value("scheduled", description="Planned for its due date.")
    COMPLETED = strawberry.enum_value("completed", description="Done.")
    CANCELLED = strawberry.enum_value("cancelled", description="Will not be done (e.g. the plan ended first).")


class CarePlanSource(FieldSource):
    __slots__ = ()
    fields = frozenset(CARE_PLAN_FIELD_CLASS) - {"activities"}

    def read(self, name: str) -> Any:
        value = care_plans.read_field(self.ctx, self.view, name)
        return CarePlanStatus(value) if name == "status" else value


def care_plan_node(ctx: Context, view: CarePlanView) -> CarePlan:
    return cast(CarePlan, CarePlanSource(ctx, view))


class ActivitySource(FieldSource):
    __slots__ = ()
    fields = frozenset({"description"})

    def read(self, name: str) -> Any:
        return care_plans.read_activity_description(self.ctx, self.view)


@strawberry.type(description="A planned activity of a care plan. Clinical: read under the clinical class of the "
                             "patient's file; without it a field is null with a FORBIDDEN error at its path.")
class CarePlanActivity:
    view: strawberry.Private[ActivityView]

    @strawberry.field(description="The activity's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="What it is.")
    def kind(self) -> CarePlanActivityKind:
        return CarePlanActivityKind(self.view.row.kind)

    @strawberry.field(description="The local date it is due (the institution's zone); a call or re-visit becomes a "
                                  "follow-up task due that day.")
    def due_on(self) -> date:
        return self.view.row.due_on

    @strawberry.field(description="Where it stands.")
    def status(self) -> CarePlanActivityStatus:
        return CarePlanActivityStatus(self.view.row.status)

    description: str | None = strawberry.field(description="What to do. Clinical, encrypted.")


@strawberry.type(description="A care plan (FHIR CarePlan) for a patient: goals and planned activities. Read under the "
                             "classes of the patient's file: status, period, department and visit are identity; "
                             "title, goals and activities clinical. A field of a class you may not read answers null "
                             "with a FORBIDDEN error at its path (the rest still comes); otherwise null means nothing "
                             "is recorded.")
class CarePlan:
    view: strawberry.Private[CarePlanView]

    @strawberry.field(description="The plan's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, as you may see the file.")
    def patient(self, info: Info) -> Patient:
        return cast(Patient, PatientSource(info.context, self.view.patient))

    @strawberry.field(description="The visit the plan was made after; null when none was named.")
    def visit_id(self, info: Info) -> strawberry.ID | None:
        care_plans.require_identity(info.context, self.view)
        return optional_id(self.view.row.visit_id)

    @strawberry.field(description=f"The visit the plan was made after; null when none was named. {NAMED_VISIT}")
    async def visit(self, info: Info) -> Visit | None:
        care_plans.require_identity(info.context, self.view)  # which visit it follows: as visitId
        return await named_visit(info.context, self.view.row.visit_id)

    @strawberry.field(description="The department whose pool gets its tasks (the patient's, unless another was "
                                  "named).")
    def department_id(self, info: Info) -> strawberry.ID | None:
        care_plans.require_identity(info.context, self.view)
        return optional_id(self.view.row.department_id)

    status: CarePlanStatus | None = strawberry.field(description="Draft, active, completed or revoked.")
    starts_on: date | None = strawberry.field(description="First day of the plan.")
    ends_on: date | None = strawberry.field(description="Last day of the plan; open-ended when null.")
    created_at: datetime | None = strawberry.field(description="When it was made.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    @strawberry.field(description="The plan's version, 1 when made and one more with each change (every plan has "
                                  "one; read, as its id, by whoever sees the plan). Pass it back as `version` when "
                                  "you change it: a stale one is refused with CONFLICT (reason stale_version).")
    def version(self) -> int:
        return self.view.row.version
    title: str | None = strawberry.field(description="What the plan is for. Clinical, encrypted.")
    goals: str | None = strawberry.field(description="The goals. Clinical, encrypted.")

    @strawberry.field(description="The planned activities, by due date, at most 30 (a plan is refused "
                                  "past that: reason item_count). Clinical.")
    async def activities(self, info: Info) -> list[CarePlanActivity] | None:
        views = await care_plans.activities_of(info.context, self.view)
        return [cast(CarePlanActivity, ActivitySource(info.context, v))
                for v in sorted(views, key=lambda v: v.row.due_on)]


@strawberry.type(description="One care plan of a page, with its cursor.")
class CarePlanEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: CarePlan = strawberry.field(description="The care plan.")


@strawberry.type(description="A page of care plans, newest first.")
class CarePlanConnection:
    edges: list[CarePlanEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The plans of this page.")
    def nodes(self) -> list[CarePlan]:
        return [edge.node for edge in self.edges]


def care_plan_connection(ctx: Context, page: care_plans.pagination.Page[CarePlanView]) -> CarePlanConnection:
    return CarePlanConnection(
        edges=[CarePlanEdge(cursor=cursor, node=care_plan_node(ctx, view)) for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.input(description="A planned activity: give its date (dueOn) or its distance from the plan's start "
                              "(afterDays).")
class CarePlanActivityInput:
    kind: CarePlanActivityKind = strawberry.field(description="What it is.")
    due_on: date | None = strawberry.field(default=strawberry.UNSET,
                                           description="Its date, within the plan's period; or give afterDays.")
    after_days: int | None = strawberry.field(default=strawberry.UNSET,
                                              description="Days after the plan's start, 0 to 1098; or give dueOn.")
    description: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="What to do, at most 1000 characters. Clinical, encrypted.")


@strawberry.input(description="A new care plan. Calls and re-visits become follow-up tasks for the patient's "
                              "responsible nurse (or the department's pool).")
class CarePlanCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient, in your reach.")
    title: str = strawberry.field(description="What the plan is for, 1-200 characters. Clinical, encrypted.")
    goals: str | None = strawberry.field(default=strawberry.UNSET,
                                         description="The goals, at most 4000 characters. Clinical, encrypted.")
    visit_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                      description="The visit of this patient it follows, if any.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="The department whose pool gets its tasks; "
                                                                       "null: the patient's department.")
    starts_on: date | None = strawberry.field(default=strawberry.UNSET, description="First day; null: today.")
    ends_on: date | None = strawberry.field(default=strawberry.UNSET,
                                            description="Last day, not before startsOn; null: open-ended.")
    activities: list[CarePlanActivityInput] | None = strawberry.field(default=strawberry.UNSET,
                                                                      description="The planned activities, at most "
                                                                                  "30.")


_PLAN_ID = Annotated[strawberry.ID, strawberry.argument(description="The care plan's id (NOT_FOUND when missing or "
                                                                  "its patient is outside your reach).")]


@strawberry.type
class CarePlanQuery:
    @strawberry.field(description="One care plan. NOT_FOUND when missing or its patient is outside your reach.")
    async def care_plan(self, info: Info, id: _PLAN_ID) -> CarePlan | None:
        return care_plan_node(info.context, await care_plans.get(info.context, uuid_of(id)))

    @strawberry.field(description="A patient's care plans, newest first, 1 to 100 a page.")
    async def care_plans(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> CarePlanConnection:
        page = await care_plans.patient_plans(info.context, uuid_of(patient_id, "patientId"), first=first, after=after,
                                              count=asks_total(info))
        return care_plan_connection(info.context, page)


@strawberry.type
class CarePlanMutation:
    @strawberry.mutation(description="Make a care plan (clinicians with clinical write rights on the patient).")
    async def care_plan_create(self, info: Info, input: Annotated[CarePlanCreateInput, strawberry.argument(
            description="The plan; it starts ACTIVE.")]) -> CarePlan | None:
        data = provided(input)
        data["activities"] = [provided(a) for a in input.activities or []]
        return care_plan_node(info.context, await care_plans.create(info.context, data))

    @strawberry.mutation(description="Activate, complete or revoke a plan; ending it cancels the follow-up tasks it "
                                     "created that are still open.")
    async def care_plan_transition(
        self, info: Info, id: _PLAN_ID,
        to: Annotated[CarePlanStatus, strawberry.argument(
            description="DRAFT -> ACTIVE or REVOKED; ACTIVE -> COMPLETED or REVOKED. Other moves: BAD_USER_INPUT.")],
        version: Version = None,
    ) -> CarePlan | None:
        view = await care_plans.transition(info.context, uuid_of(id), str(to.value), version)
        return care_plan_node(info.context, view)


register_node("care_plan", care_plan_node)
