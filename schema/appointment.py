"""Appointments (FHIR Appointment): a patient's place in a slot of a schedule, booked from any channel, moved,
cancelled, checked in (it becomes a visit) or recorded as a no-show.

An appointment is read under the classes of its patient's file: when, where and its state are identity, why the
patient comes is clinical. A field your role may not read on this patient resolves to null with a FORBIDDEN
error; an appointment whose patient is outside your reach answers NOT_FOUND, as a random id does.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from policies.fields import APPOINTMENT_FIELD_CLASS
from resolvers import appointment as appointments
from resolvers.appointment import AppointmentPage, AppointmentView
from resolvers.context import Context
from resolvers.pagination import Page
from schema.common import (
    DEFAULT_PAGE_SIZE,
    FieldSource,
    First,
    Info,
    OrderDirection,
    PageInfo,
    asks_total,
    provided,
    register_node,
    uuid_of,
)
from schema.patient import Patient, PatientSource
from schema.schedule import Schedule
from schema.visit import NAMED_VISIT, Visit, visit_node


@strawberry.enum(description="Where an appointment stands (FHIR Appointment.status). BOOKED holds a place; ARRIVED "
                             "(checked in: it became a visit) keeps it; CANCELLED frees it; NO_SHOW is recorded once "
                             "the slot passed without an arrival.")
class AppointmentStatus(Enum):
    BOOKED = strawberry.enum_value("booked", description="A place is held in the slot.")
    ARRIVED = strawberry.enum_value("arrived", description="Checked in: the visit of the care journey began.")
    CANCELLED = strawberry.enum_value("cancelled", description="Cancelled or moved; the place is free again.")
    NO_SHOW = strawberry.enum_value("noshow", description="The slot passed without the patient (FHIR noshow; "
                                                        "recorded by staff or by the no-show sweep).")


@strawberry.enum(description="How the appointment was booked.")
class BookingChannel(Enum):
    FRONT_DESK = strawberry.enum_value("front_desk", description="At the front desk, in person.")
    PHONE = strawberry.enum_value("phone", description="By telephone, entered by staff.")
    WEB = strawberry.enum_value("web", description="On the institution's web site, entered by staff.")
    APP = strawberry.enum_value("app", description="In the institution's app, entered by staff.")
    KIOSK = strawberry.enum_value("kiosk", description="At a self-service kiosk.")
    PORTAL = strawberry.enum_value("portal", description="By the patient in the self-service portal (set by the "
                                                         "server).")
    PARTNER = strawberry.enum_value("partner", description="By a care partner through its API (set by the server).")


@strawberry.enum(description="Why an appointment was cancelled.")
class CancellationReason(Enum):
    PATIENT = strawberry.enum_value("patient", description="The patient cancelled (always, from the portal).")
    INSTITUTION = strawberry.enum_value("institution", description="The institution cancelled (e.g. the clinician "
                                                                   "is away).")
    RESCHEDULED = strawberry.enum_value("rescheduled", description="Moved to another slot (set by "
                                                                   "appointmentReschedule, never given).")
    OTHER = strawberry.enum_value("other", description="Another reason.")


_CONVERT: dict[str, Any] = {"status": AppointmentStatus, "channel": BookingChannel,
                            "cancellation_reason": CancellationReason}


class AppointmentSource(FieldSource):
    __slots__ = ()
    fields = frozenset(APPOINTMENT_FIELD_CLASS) - {"schedule", "visit", "rescheduled_from"}

    def read(self, name: str) -> Any:
        value = appointments.read_field(self.ctx, self.view, name)
        convert = _CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


def appointment_node(ctx: Context, view: AppointmentView) -> Appointment:
    return cast(Appointment, AppointmentSource(ctx, view))


@strawberry.type(description="A patient's place in a slot of a schedule (FHIR Appointment). Read like a visit, under "
                             "the classes of the patient's file: when, where and the status are identity; the reason "
                             "clinical. A field of a class you may not read answers null with a FORBIDDEN error at "
                             "its path (the rest still comes); otherwise null means nothing is recorded.")
class Appointment:
    view: strawberry.Private[AppointmentView]  # an AppointmentSource stands in for instances at run time

    @strawberry.field(description="The appointment's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, as you may see the file.")
    def patient(self, info: Info) -> Patient:
        return cast(Patient, PatientSource(info.context, self.view.patient))

    slot_start: datetime | None = strawberry.field(description="When the booked slot starts (identity class of the "
                                                              "file, as the status).")
    slot_end: datetime | None = strawberry.field(description="When the booked slot ends; slotStart to slotEnd "
                                                            "is the appointment's time.")
    status: AppointmentStatus | None = strawberry.field(description="Where the appointment stands.")
    channel: BookingChannel | None = strawberry.field(description="How it was booked.")
    reason: str | None = strawberry.field(description="Why the patient comes, in their words. Clinical, encrypted.")
    cancellation_reason: CancellationReason | None = strawberry.field(
        description="Why it was cancelled (RESCHEDULED when it was moved); null unless CANCELLED.")
    arrived_at: datetime | None = strawberry.field(description="When the patient was checked in.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled or moved.")
    created_at: datetime | None = strawberry.field(description="When it was booked.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    @strawberry.field(description="The appointment's version, 1 when booked and one more with each change (every "
                                  "appointment has one; read, as its id, by whoever sees the appointment). Pass it "
                                  "back as `version` when you change it: a stale one is refused with CONFLICT "
                                  "(reason stale_version).")
    def version(self) -> int:
        return self.view.row.version

    @strawberry.field(description="The schedule (clinician or resource, department) the slot belongs to.")
    async def schedule(self, info: Info) -> Schedule | None:
        row = await appointments.schedule_of(info.context, self.view)
        return None if row is None else Schedule.of(row)

    @strawberry.field(description=f"The visit the check-in opened; null before the check-in. {NAMED_VISIT}")
    async def visit(self, info: Info) -> Visit | None:
        found = await appointments.visit_of(info.context, self.view)
        return None if found is None else visit_node(info.context, found)

    @strawberry.field(description="The appointment this one replaced when it was moved.")
    async def rescheduled_from(self, info: Info) -> Appointment | None:
        found = await appointments.rescheduled_from(info.context, self.view)
        return None if found is None else appointment_node(info.context, found)


@strawberry.type(description="One appointment of a page, with its cursor.")
class AppointmentEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the page after this appointment.")
    node: Appointment = strawberry.field(description="The appointment.")


@strawberry.type(description="A page of appointments.")
class AppointmentConnection:
    edges: list[AppointmentEdge] = strawberry.field(description="The appointments of this page, with cursors.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")

    @strawberry.field(description="The appointments of this page.")
    def nodes(self) -> list[Appointment]:
        return [edge.node for edge in self.edges]


def connection(ctx: Context, found: AppointmentPage) -> AppointmentConnection:
    page: Page[AppointmentView] = found.page
    return AppointmentConnection(
        edges=[AppointmentEdge(cursor=cursor, node=appointment_node(ctx, view)) for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=found.total or 0)


@strawberry.enum(description="What a patient's appointments can be sorted by.")
class AppointmentOrderField(Enum):
    START = strawberry.enum_value("slot_start", description="By the start of the slot (the default: upcoming ones "
                                                            "soonest first, the whole history latest first).")
    UPDATED_AT = strawberry.enum_value("updated_at", description="By last change.")


@strawberry.input(description="The order of a patient's appointments; ties are broken by id. A cursor works only "
                              "with the order it came from.")
class AppointmentOrder:
    field: AppointmentOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


_ORDER = Annotated[AppointmentOrder | None, strawberry.argument(
    description="The order; null: upcoming ones soonest first, the whole history latest first.")]


def _order(order_by: AppointmentOrder | None) -> appointments.AppointmentOrder | None:
    return None if order_by is None else appointments.AppointmentOrder(str(order_by.field.value),
                                                                       str(order_by.direction.value))


@strawberry.input(description="A place in a slot for a patient.")
class AppointmentBookInput:
    schedule_id: strawberry.ID = strawberry.field(description="The schedule whose slot is booked.")
    slot_start: datetime = strawberry.field(description="The slot's start, with its offset, as the free slots give "
                                                        "it.")
    patient_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The patient. Patients book for themselves: leave it out.")
    reason: str | None = strawberry.field(default=strawberry.UNSET,
                                          description="Why the patient comes (at most 1000 characters). Clinical.")
    channel: BookingChannel | None = strawberry.field(
        default=strawberry.UNSET, description="How the patient asked (staff; FRONT_DESK by default). Patients book "
                                              "through the PORTAL and partners as PARTNER, whatever is sent.")


_UPCOMING = Annotated[bool, strawberry.argument(description="Only appointments still to come (booked, the slot not "
                                                            "over), soonest first; false: all, latest slot first.")]
_AFTER = Annotated[str | None, strawberry.argument(description="The cursor of the previous page's end.")]
_CANCELLED = Annotated[bool, strawberry.argument(description="Also the cancelled (and moved) appointments.")]
_VERSION = Annotated[int | None, strawberry.argument(description="The version you read; a stale one answers "
                                                                 "CONFLICT.")]
_APPOINTMENT_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The appointment's id (NOT_FOUND when missing or its patient is outside your reach).")]


@strawberry.type
class AppointmentQuery:
    @strawberry.field(description="One appointment. NOT_FOUND when it is missing or its patient is outside your "
                                  "reach.")
    async def appointment(self, info: Info, id: _APPOINTMENT_ID) -> Appointment | None:
        return appointment_node(info.context, await appointments.get(info.context, uuid_of(id)))

    @strawberry.field(description="A patient's appointments.")
    async def patient_appointments(self, info: Info, patient_id: Annotated[strawberry.ID, strawberry.argument(
                                       description="The patient, in your reach.")], upcoming_only: _UPCOMING = True,
                                   first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
                                   order_by: _ORDER = None) -> AppointmentConnection:
        page = await appointments.of_patient(info.context, uuid_of(patient_id, "patientId"),
                                             upcoming_only=upcoming_only, first=first, after=after,
                                             order=_order(order_by), count=asks_total(info))
        return connection(info.context, page)

    @strawberry.field(description="Your own appointments (patients, in the portal).")
    async def my_appointments(self, info: Info, upcoming_only: _UPCOMING = True, first: First = DEFAULT_PAGE_SIZE,
                              after: _AFTER = None, order_by: _ORDER = None) -> AppointmentConnection:
        page = await appointments.mine(info.context, upcoming_only=upcoming_only, first=first, after=after,
                                       order=_order(order_by), count=asks_total(info))
        return connection(info.context, page)

    @strawberry.field(description="A schedule's appointments on a day (the institution's local date), in slot "
                                  "order: those of the patients in your reach.")
    async def schedule_day(
        self, info: Info,
        schedule_id: Annotated[strawberry.ID, strawberry.argument(
            description="The schedule's id (Schedule.id); NOT_FOUND for another institution's.")],
        date: Annotated[date, strawberry.argument(description="The local date.")],
        include_cancelled: _CANCELLED = False, first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
    ) -> AppointmentConnection:
        page = await appointments.schedule_day(info.context, uuid_of(schedule_id, "scheduleId"), date,
                                               include_cancelled=include_cancelled, first=first, after=after,
                                               count=asks_total(info))
        return connection(info.context, page)

    @strawberry.field(description="A clinician's day: their appointments across their schedules on a local date, "
                                  "in slot order (the patients in your reach).")
    async def clinician_day(
        self, info: Info,
        clinician_id: Annotated[strawberry.ID, strawberry.argument(description="The clinician (staff id).")],
        date: Annotated[date, strawberry.argument(description="The local date.")],
        include_cancelled: _CANCELLED = False, first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
    ) -> AppointmentConnection:
        page = await appointments.clinician_day(info.context, uuid_of(clinician_id, "clinicianId"), date,
                                                include_cancelled=include_cancelled, first=first, after=after,
                                                count=asks_total(info))
        return connection(info.context, page)


@strawberry.type
class AppointmentMutation:
    @strawberry.mutation(description="Book a place in a slot. A full slot answers CONFLICT (field slotStart); of two "
                                     "bookings of the last place exactly one wins. Patients and partners book within "
                                     "the institution's portal rules (FORBIDDEN naming the rule), for a patient "
                                     "holding fewer than 10 upcoming appointments booked by the portal or a "
                                     "partner (BAD_USER_INPUT, reason item_count).")
    async def appointment_book(self, info: Info, input: Annotated[AppointmentBookInput, strawberry.argument(
            description="The booking.")]) -> Appointment | None:
        return appointment_node(info.context, await appointments.book(info.context, provided(input)))

    @strawberry.mutation(description="Move a booked appointment to another slot of its schedule: it is cancelled "
                                     "(RESCHEDULED) and the new appointment, returned, names it in rescheduledFrom.")
    async def appointment_reschedule(
        self, info: Info, id: _APPOINTMENT_ID,
        slot_start: Annotated[datetime, strawberry.argument(description="The new slot's start, with its offset.")],
        version: _VERSION = None,
    ) -> Appointment | None:
        return appointment_node(info.context, await appointments.reschedule(info.context, uuid_of(id), slot_start,
                                                                            version))

    @strawberry.mutation(description="Cancel a booked appointment: its place is free again.")
    async def appointment_cancel(
        self, info: Info, id: _APPOINTMENT_ID,
        reason: Annotated[CancellationReason, strawberry.argument(
            description="Why (not RESCHEDULED). Patients always cancel for PATIENT.")] = CancellationReason.PATIENT,
        version: _VERSION = None,
    ) -> Appointment | None:
        return appointment_node(info.context, await appointments.cancel(info.context, uuid_of(id), str(reason.value),
                                                                        version))

    @strawberry.mutation(description="The patient arrived (staff, on the day): the appointment opens its visit, "
                                     "ARRIVED now, in the schedule's department with its clinician; the waiting time "
                                     "starts here. Needs the right to create visits too.")
    async def appointment_check_in(self, info: Info, id: _APPOINTMENT_ID, version: _VERSION = None
                                   ) -> Appointment | None:
        return appointment_node(info.context, await appointments.check_in(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Record that the patient did not come (staff, once the slot has started). The "
                                     "server also records it on its own 30 minutes after the slot's end.")
    async def appointment_no_show(self, info: Info, id: _APPOINTMENT_ID, version: _VERSION = None
                                  ) -> Appointment | None:
        return appointment_node(info.context, await appointments.no_show(info.context, uuid_of(id), version))


register_node("appointment", appointment_node)
