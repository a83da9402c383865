"""Schedules of clinicians and resources (FHIR Schedule), their exceptions, and free slots (FHIR Slot).

A schedule's week gives sessions per weekday in the institution's local time, cut into slots of
``slotMinutes`` with ``capacity`` places each; the institution's business calendar closes holidays
and opens make-up working days (with Monday's sessions). Slots are computed, never stored: a leave
removes the slots it overlaps, an extra session adds its own.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from core.principal import STAFF
from resolvers import schedule as schedules
from resolvers.schedule import SlotView
from schema.common import DEFAULT_PAGE_SIZE, TOTAL_COUNT, First, Info, PageInfo, Version, asks_total, provided, uuid_of
from schema.department import Department
from schema.staff import CLINICIAN_RULE, StaffSummary

if TYPE_CHECKING:
    from models import Schedule as ScheduleRow
    from models import ScheduleException as ScheduleExceptionRow
    from resolvers.pagination import Page


@strawberry.enum(description="Whose time a schedule offers.")
class ScheduleKind(Enum):
    CLINICIAN = strawberry.enum_value("clinician", description="A clinician's (a doctor, a nurse, a department "
                                                                "head).")
    RESOURCE = strawberry.enum_value("resource", description="A resource's: a dental chair, a room, a home-care "
                                                             "team.")


@strawberry.enum(description="What an exception does to a schedule's slots.")
class ScheduleExceptionKind(Enum):
    LEAVE = strawberry.enum_value("leave", description="No slots: every slot it overlaps is removed.")
    EXTRA = strawberry.enum_value("extra", description="An extra session: slots of the schedule's length from its "
                                                       "start to its end (replacing the regular slots it overlaps).")


@strawberry.type(description="A session: local times in the institution's zone; an end of 00:00 is midnight.")
class ScheduleSession:
    start: time = strawberry.field(description="When the first slot starts (local time).")
    end: time = strawberry.field(description="When the session ends (local time); a last slot that would run past "
                                             "it is not offered.")


@strawberry.type(description="The sessions of one weekday.")
class ScheduleDay:
    weekday: int = strawberry.field(description="ISO weekday: 1 = Monday ... 7 = Sunday.")
    sessions: list[ScheduleSession] = strawberry.field(description="The day's sessions, in order.")


@strawberry.type(description="A leave or an extra session of a schedule.")
class ScheduleException:
    stored: strawberry.Private[Any]  # the row (models are for type hints only here)
    staff_view: strawberry.Private[bool]

    @property
    def row(self) -> ScheduleExceptionRow:
        return self.stored

    @strawberry.field(description="The exception's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The schedule it changes.")
    def schedule_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.schedule_id))

    @strawberry.field(description="Leave or extra session.")
    def kind(self) -> ScheduleExceptionKind:
        return ScheduleExceptionKind(self.row.kind)

    @strawberry.field(description="When it starts: sessions from then until endsAt are taken off (leave) or added "
                                  "(an extra session).")
    def starts_at(self) -> datetime:
        return self.row.starts_at

    @strawberry.field(description="When it ends (exclusive).")
    def ends_at(self) -> datetime:
        return self.row.ends_at

    @strawberry.field(description="An extra session's places per slot; null: the schedule's capacity.")
    def capacity(self) -> int | None:
        return self.row.capacity

    @strawberry.field(description="Why (organisational, e.g. a training day). Staff only: null with FORBIDDEN for "
                                  "patients and partners.")
    def reason(self, info: Info) -> str | None:
        if not self.staff_view:
            raise schedules.refuse_exception_reason(info.context)
        return self.row.reason

    @strawberry.field(description="When it was cancelled; null while it is in force.")
    def cancelled_at(self) -> datetime | None:
        return self.row.cancelled_at

    @strawberry.field(description="Pass back as `version` to scheduleExceptionCancel.")
    def version(self) -> int:
        return int(self.row.version)


@strawberry.type(description="A clinician's or a resource's schedule (FHIR Schedule): weekly sessions cut into "
                             "slots with a number of places each, on the institution's business calendar.")
class Schedule:
    stored: strawberry.Private[Any]  # the row (models are for type hints only here)

    @classmethod
    def of(cls, row: ScheduleRow) -> Schedule:
        return cls(stored=row)

    @property
    def row(self) -> ScheduleRow:
        return self.stored

    @strawberry.field(description="The schedule's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="A name patients and staff recognise (e.g. Dr Wang, orthodontics; Chair 3).")
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="A clinician's or a resource's.")
    def kind(self) -> ScheduleKind:
        return ScheduleKind(self.row.kind)

    @strawberry.field(description="The clinician, for a clinician's schedule; null for a resource.")
    async def clinician(self, info: Info) -> StaffSummary | None:
        staff_id = self.row.clinician_id
        row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="The department it belongs to; never null (a department is never deleted).")
    async def department(self, info: Info) -> Department | None:
        row = await info.context.require_loaders().department.load(self.row.department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="The weekly sessions, by weekday (days without sessions left out).")
    def week(self) -> list[ScheduleDay]:
        return [ScheduleDay(weekday=int(day), sessions=[
            ScheduleSession(start=time.fromisoformat(start), end=time.fromisoformat(end))
            for start, end in sessions]) for day, sessions in sorted(self.row.week.items()) if sessions]

    @strawberry.field(description="Length of a slot in minutes (5 to 240).")
    def slot_minutes(self) -> int:
        return self.row.slot_minutes

    @strawberry.field(description="Places per slot (1 to 50).")
    def capacity(self) -> int:
        return self.row.capacity

    @strawberry.field(description="False once deactivated: no more slots.")
    def active(self) -> bool:
        return self.row.active

    @strawberry.field(description="Pass back when you change or deactivate it: a stale one answers CONFLICT.")
    def version(self) -> int:
        return self.row.version

    @strawberry.field(description="Exceptions not over yet, soonest first (at most 100).")
    async def exceptions(
        self, info: Info,
        include_cancelled: Annotated[bool, strawberry.argument(description="Also the cancelled ones.")] = False,
    ) -> list[ScheduleException]:
        rows = await schedules.upcoming_exceptions(info.context, self.row, include_cancelled=include_cancelled)
        staff_view = _staff_view(info)
        return [ScheduleException(stored=row, staff_view=staff_view) for row in rows]


@strawberry.type(description="A slot (FHIR Slot) of a schedule, with its places.")
class Slot:
    # plain fields: a department's week is thousands of slots, each field read off the object
    schedule_id: strawberry.ID = strawberry.field(description="The schedule it belongs to.")
    start: datetime = strawberry.field(description="When it starts (pass as slotStart to book it).")
    end: datetime = strawberry.field(description="When it ends (exclusive): start plus the schedule's slot length.")
    capacity: int = strawberry.field(description="Places in the slot.")
    booked: int = strawberry.field(description="Places booked (appointments booked or arrived).")
    free: int = strawberry.field(description="Places still free: capacity - booked, never below 0. There is no "
                                             "status field: as FHIR Slot.status it is free while free > 0, else "
                                             "busy.")
    stored: strawberry.Private[Any]  # the schedule's row

    @classmethod
    def of(cls, view: SlotView) -> Slot:
        return cls(schedule_id=strawberry.ID(str(view.schedule.id)), start=view.slot.start, end=view.slot.end,
                   capacity=view.slot.capacity, booked=view.booked, free=view.free, stored=view.schedule)

    @strawberry.field(description="The schedule (name, kind, clinician...).")
    def schedule(self) -> Schedule:
        return Schedule.of(self.stored)


@strawberry.type(description="One schedule of a page and its cursor.")
class ScheduleEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the schedules after this one.")
    node: Schedule = strawberry.field(description="The schedule.")


@strawberry.type(description="A page of schedules, in creation order.")
class ScheduleConnection:
    edges: list[ScheduleEdge] = strawberry.field(description="The schedules with their cursors.")
    page_info: PageInfo = strawberry.field(description="Whether another page follows.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The schedules of this page.")
    def nodes(self) -> list[Schedule]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="A session: local times, whole minutes; an end of 00:00 is midnight.")
class ScheduleSessionInput:
    start: time = strawberry.field(description="Start (local time).")
    end: time = strawberry.field(description="End (local time), after the start.")


@strawberry.input(description="The sessions of one weekday, ordered, without overlap (at most 6).")
class ScheduleDayInput:
    weekday: int = strawberry.field(description="ISO weekday: 1 = Monday ... 7 = Sunday; each at most once.")
    sessions: list[ScheduleSessionInput] = strawberry.field(description="The day's sessions; each holds at least "
                                                                        "one slot.")


@strawberry.input(description="A new schedule.")
class ScheduleCreateInput:
    name: str = strawberry.field(description="1 to 100 characters.")
    kind: ScheduleKind = strawberry.field(description="A clinician's or a resource's.")
    department_id: strawberry.ID = strawberry.field(description="A department of the institution (a department "
                                                                "head's own).")
    week: list[ScheduleDayInput] = strawberry.field(description="Sessions per weekday (make-up working days use "
                                                                "Monday's).")
    slot_minutes: int = strawberry.field(description="Length of a slot, 5 to 240 minutes.")
    capacity: int = strawberry.field(default=1, description="Places per slot, 1 to 50.")
    clinician_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"Required for a clinician's schedule, and only for one. {CLINICIAN_RULE}")


@strawberry.input(description="Changes to a schedule: fields left out stay as they are. Appointments already "
                              "booked keep their slot.")
class ScheduleUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="1 to 100 characters.")
    kind: ScheduleKind | None = strawberry.field(default=strawberry.UNSET, description="A clinician's or a "
                                                                                       "resource's.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET, description="Move it to "
                                                                                                 "another "
                                                                                                 "department.")
    week: list[ScheduleDayInput] | None = strawberry.field(default=strawberry.UNSET, description="Replaces the "
                                                                                                "week as a whole.")
    slot_minutes: int | None = strawberry.field(default=strawberry.UNSET, description="5 to 240 minutes.")
    capacity: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 50 places.")
    clinician_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"The clinician; null for a resource. {CLINICIAN_RULE}")


@strawberry.input(description="A leave or an extra session.")
class ScheduleExceptionInput:
    kind: ScheduleExceptionKind = strawberry.field(description="Leave or extra session.")
    starts_at: datetime = strawberry.field(description="Start, with its offset.")
    ends_at: datetime = strawberry.field(description="End (exclusive), with its offset: after the start, at most "
                                                     "366 days later (a leave), a day of 25 hours (an extra "
                                                     "session).")
    capacity: int | None = strawberry.field(default=None, description="An extra session's places per slot (1 to "
                                                                      "50); null: the schedule's.")
    reason: str = strawberry.field(default="", description="Why, organisational (at most 200 characters; no health "
                                                           "details).")


def _staff_view(info: Info) -> bool:
    principal = info.context.principal
    return principal is not None and principal.kind == STAFF


def _input(data: Any) -> dict[str, Any]:
    values = provided(data)
    if values.get("week") is not None:
        values["week"] = [{"weekday": day.weekday, "sessions": [(s.start, s.end) for s in day.sessions]}
                          for day in values["week"]]
    return values


def _connection(page: Page[ScheduleRow]) -> ScheduleConnection:
    return ScheduleConnection(
        edges=[ScheduleEdge(cursor=cursor, node=Schedule.of(row)) for cursor, row in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type
class ScheduleQuery:
    @strawberry.field(description="The institution's active schedules (of one department), in creation order; 1 "
                                  "to 100 a page.")
    async def schedules(
        self, info: Info,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only this department's.")] = None,
        first: First = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description="The endCursor of the previous page.")] = None,
        include_inactive: Annotated[bool, strawberry.argument(description="Also deactivated ones.")] = False,
    ) -> ScheduleConnection:
        page = await schedules.page(info.context, department_id=uuid_of(department_id, "departmentId"), first=first,
                                    after=after, include_inactive=include_inactive, count=asks_total(info))
        return _connection(page)

    @strawberry.field(description="One schedule, active or not. NOT_FOUND when it is not your institution's.")
    async def schedule(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The schedule's id.")],
    ) -> Schedule | None:
        return Schedule.of(await schedules.one(info.context, uuid_of(id)))

    @strawberry.field(description="Slots still to come of a department's, a schedule's or a clinician's active "
                                  "schedules (given together they narrow each other), from one local date to "
                                  "another (at most 31 days), by start, with places booked and free.")
    async def free_slots(
        self, info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="First local date.")],
        to: Annotated[date, strawberry.argument(description="Last local date (included).")],
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="A department's schedules.")] = None,
        schedule_id: Annotated[strawberry.ID | None, strawberry.argument(description="One schedule.")] = None,
        clinician_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="A clinician's schedules.")] = None,
        only_free: Annotated[bool, strawberry.argument(
            description="Leave out slots without a free place.")] = True,
    ) -> list[Slot]:
        views = await schedules.free_slots(
            info.context, department_id=uuid_of(department_id, "departmentId"),
            schedule_id=uuid_of(schedule_id, "scheduleId"), clinician_id=uuid_of(clinician_id, "clinicianId"),
            from_date=from_, to_date=to, only_free=only_free)
        return [Slot.of(view) for view in views]


@strawberry.type
class ScheduleMutation:
    @strawberry.mutation(description="A new schedule (admins; department heads in their own departments).")
    async def schedule_create(
        self, info: Info, input: Annotated[ScheduleCreateInput, strawberry.argument(description="The schedule.")],
    ) -> Schedule | None:
        return Schedule.of(await schedules.create(info.context, _input(input)))

    @strawberry.mutation(description="Change a schedule. Pass the version you read: a stale one (or a deactivated "
                                     "schedule) answers CONFLICT.")
    async def schedule_update(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The schedule's id.")],
        input: Annotated[ScheduleUpdateInput, strawberry.argument(description="What changes.")],
        version: Annotated[int, strawberry.argument(description="The version you read.")],
    ) -> Schedule | None:
        return Schedule.of(await schedules.update(info.context, uuid_of(id), _input(input), version))

    @strawberry.mutation(description="Deactivate a schedule: it offers no more slots; appointments already booked "
                                     "stay.")
    async def schedule_deactivate(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The schedule's id.")],
        version: Annotated[int, strawberry.argument(description="The version you read.")],
    ) -> Schedule | None:
        return Schedule.of(await schedules.deactivate(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Add a leave or an extra session to an active schedule. Extra sessions of one "
                                     "schedule may not overlap. Appointments already booked stay. A schedule holds "
                                     "at most 200 exceptions not yet over: one more is BAD_USER_INPUT, reason "
                                     "item_count.")
    async def schedule_exception_add(
        self, info: Info,
        schedule_id: Annotated[strawberry.ID, strawberry.argument(description="The schedule's id.")],
        input: Annotated[ScheduleExceptionInput, strawberry.argument(description="The exception.")],
    ) -> ScheduleException | None:
        row = await schedules.exception_add(info.context, uuid_of(schedule_id, "scheduleId"), provided(input))
        return ScheduleException(stored=row, staff_view=True)

    @strawberry.mutation(description="Cancel an exception: the schedule's slots are as without it. Pass the version "
                                     "you read: a stale one answers CONFLICT.")
    async def schedule_exception_cancel(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The exception's id.")],
        version: Version = None,
    ) -> ScheduleException | None:
        return ScheduleException(stored=await schedules.exception_cancel(info.context, uuid_of(id), version),
                                 staff_view=True)
