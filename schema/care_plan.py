"""Care plans (FHIR CarePlan): goals and planned activities; calls and re-visits become follow-up tasks."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, cast

import strawberry

from policies.fields import CARE_PLAN_FIELD_CLASS
from resolvers import care_plan as care_plans
from resolvers.care_plan import ActivityView, CarePlanView
from resolvers.context import Context
from schema.common import DEFAULT_PAGE_SIZE, FieldSource, Info, PageInfo, provided, register_node, uuid_of


@strawberry.enum(description="Where a plan stands (FHIR CarePlan.status).")
class CarePlanStatus(Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    REVOKED = "revoked"


@strawberry.enum(description="What a planned activity is. CALL and REVISIT become follow-up tasks on their date.")
class CarePlanActivityKind(Enum):
    CALL = "call"
    REVISIT = "revisit"
    EDUCATION = "education"
    MEDICATION = "medication"
    REHABILITATION = "rehabilitation"
    OTHER = "other"


@strawberry.enum(description="Where an activity stands.")
class CarePlanActivityStatus(Enum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


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


@strawberry.type(description="A planned activity of a care plan (clinical).")
class CarePlanActivity:
    view: strawberry.Private[ActivityView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="What it is.")
    def kind(self) -> CarePlanActivityKind:
        return CarePlanActivityKind(self.view.row.kind)

    @strawberry.field(description="When it is due.")
    def due_on(self) -> date:
        return self.view.row.due_on

    @strawberry.field(description="Where it stands.")
    def status(self) -> CarePlanActivityStatus:
        return CarePlanActivityStatus(self.view.row.status)

    description: str | None = strawberry.field(description="What to do. Clinical, encrypted.")


@strawberry.type(description="A care plan (FHIR CarePlan) for a patient: goals and planned activities.")
class CarePlan:
    view: strawberry.Private[CarePlanView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    status: CarePlanStatus | None = strawberry.field(description="Draft, active, completed or revoked.")
    starts_on: date | None = strawberry.field(description="First day of the plan.")
    ends_on: date | None = strawberry.field(description="Last day of the plan; open-ended when null.")
    created_at: datetime | None = strawberry.field(description="When it was made.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    version: int | None = strawberry.field(description="Pass back when you change the plan (CONFLICT if stale).")
    title: str | None = strawberry.field(description="What the plan is for. Clinical, encrypted.")
    goals: str | None = strawberry.field(description="The goals. Clinical, encrypted.")

    @strawberry.field(description="The planned activities, by due date (clinical).")
    async def activities(self, info: Info) -> list[CarePlanActivity] | None:
        views = await care_plans.activities_of(info.context, self.view)
        return [cast(CarePlanActivity, ActivitySource(info.context, v))
                for v in sorted(views, key=lambda v: v.row.due_on)]


@strawberry.type
class CarePlanEdge:
    cursor: str
    node: CarePlan


@strawberry.type(description="A page of care plans, newest first.")
class CarePlanConnection:
    edges: list[CarePlanEdge]
    page_info: PageInfo

    @strawberry.field(description="The plans of this page.")
    def nodes(self) -> list[CarePlan]:
        return [edge.node for edge in self.edges]


def care_plan_connection(ctx: Context, page: care_plans.pagination.Page[CarePlanView]) -> CarePlanConnection:
    return CarePlanConnection(
        edges=[CarePlanEdge(cursor=cursor, node=care_plan_node(ctx, view)) for cursor, view in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


@strawberry.input(description="A planned activity: give its date (dueOn) or its distance from the plan's start "
                              "(afterDays).")
class CarePlanActivityInput:
    kind: CarePlanActivityKind
    due_on: date | None = strawberry.UNSET
    after_days: int | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


@strawberry.input(description="A new care plan. Calls and re-visits become follow-up tasks for the patient's "
                              "responsible nurse (or the department's pool).")
class CarePlanCreateInput:
    patient_id: strawberry.ID
    title: str
    goals: str | None = strawberry.UNSET
    visit_id: strawberry.ID | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    starts_on: date | None = strawberry.UNSET
    ends_on: date | None = strawberry.UNSET
    activities: list[CarePlanActivityInput] | None = strawberry.UNSET


@strawberry.type
class CarePlanQuery:
    @strawberry.field(description="One care plan. NOT_FOUND when missing or its patient is outside your reach.")
    async def care_plan(self, info: Info, id: strawberry.ID) -> CarePlan | None:
        return care_plan_node(info.context, await care_plans.get(info.context, uuid_of(id)))

    @strawberry.field(description="A patient's care plans, newest first, 1 to 100 a page.")
    async def care_plans(self, info: Info, patient_id: strawberry.ID, first: int = DEFAULT_PAGE_SIZE,
                         after: str | None = None) -> CarePlanConnection:
        page = await care_plans.patient_plans(info.context, uuid_of(patient_id, "patientId"), first=first, after=after)
        return care_plan_connection(info.context, page)


@strawberry.type
class CarePlanMutation:
    @strawberry.mutation(description="Make a care plan (clinicians with clinical write rights on the patient).")
    async def care_plan_create(self, info: Info, input: CarePlanCreateInput) -> CarePlan | None:
        data = provided(input)
        data["activities"] = [provided(a) for a in input.activities or []]
        return care_plan_node(info.context, await care_plans.create(info.context, data))

    @strawberry.mutation(description="Activate, complete or revoke a plan; ending it cancels the follow-up tasks it "
                                     "created that are still open.")
    async def care_plan_transition(self, info: Info, id: strawberry.ID, to: CarePlanStatus,
                                   version: int | None = None) -> CarePlan | None:
        return care_plan_node(info.context, await care_plans.transition(info.context, uuid_of(id), to.value, version))


register_node("care_plan", care_plan_node)
