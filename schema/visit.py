"""Visits (FHIR Encounter), their codes, the service history and cohorts by code.

A visit is read under the classes of its patient's file: when and where it happened is identity,
what was done is clinical, the internal note is for staff only. A field your role may not read on
this patient resolves to null with a FORBIDDEN error, as on the patient file.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from policies.fields import VISIT_FIELD_CLASS
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.visit import CodeView, VisitView
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
from schema.patient import Patient, PatientConnection, PatientEdge, PatientSource
from schema.patient import node as patient_node
from schema.staff import CLINICIAN_RULE, StaffSummary


@strawberry.enum(description="What kind of visit or service it was (FHIR Encounter class, simplified).")
class VisitKind(Enum):
    OUTPATIENT = strawberry.enum_value("outpatient", description="An outpatient consultation.")
    INPATIENT = strawberry.enum_value("inpatient", description="A hospital stay (admission to discharge).")
    PROCEDURE = strawberry.enum_value("procedure", description="A procedure or surgery.")
    HOME_CARE = strawberry.enum_value("home_care", description="Care at the patient's home (also what care partners "
                                                               "record).")
    CHECK_UP = strawberry.enum_value("check_up", description="A health check-up.")
    DENTAL = strawberry.enum_value("dental", description="A dental appointment.")
    PHONE = strawberry.enum_value("phone", description="A consultation by telephone.")


@strawberry.enum(description="Where a visit stands (FHIR Encounter.status; NO_SHOW from Appointment). The server "
                             "enforces the order: PLANNED -> ARRIVED -> IN_PROGRESS -> FINISHED; PLANNED or ARRIVED "
                             "-> CANCELLED; PLANNED -> NO_SHOW.")
class VisitStatus(Enum):
    PLANNED = strawberry.enum_value("planned", description="Booked, the patient not yet arrived.")
    ARRIVED = strawberry.enum_value("arrived", description="Checked in at the desk, waiting to be seen.")
    IN_PROGRESS = strawberry.enum_value("in_progress", description="Being seen.")
    FINISHED = strawberry.enum_value("finished", description="Over: the follow-up rules schedule their calls.")
    CANCELLED = strawberry.enum_value("cancelled", description="Called off before it began.")
    NO_SHOW = strawberry.enum_value("no_show", description="The patient did not come; final. FHIR R4 Encounter has "
                                                         "no such code: cancelled (ended before it began) is the "
                                                         "nearest; the code is borrowed from Appointment's noshow.")


@strawberry.enum(description="A condition (ICD-10) or a procedure (the institution's service catalogue).")
class CodeKind(Enum):
    CONDITION = strawberry.enum_value("condition", description="A diagnosis, coded in ICD-10.")
    PROCEDURE = strawberry.enum_value("procedure", description="A procedure or service, coded in the institution's "
                                                               "service catalogue.")


@strawberry.enum(description="The code system: WHO ICD-10, or the institution's service catalogue.")
class CodeSystem(Enum):
    ICD10 = strawberry.enum_value("icd10", description="WHO ICD-10 (2019), in the dotted form (K08.1); for conditions.")
    SERVICE = strawberry.enum_value("service", description="The institution's service catalogue (serviceItems); for "
                                                           "procedures.")


@strawberry.enum(description="Whether a procedure is still to be done (FHIR Procedure: preparation, completed, "
                             "not-done).")
class ProcedureStatus(Enum):
    PENDING = strawberry.enum_value("pending", description="Still to be done (pending treatment).")
    DONE = strawberry.enum_value("done", description="Done.")
    NOT_DONE = strawberry.enum_value("not_done", description="Decided against, or not possible: will not be done.")


_CONVERT: dict[str, Any] = {"kind": VisitKind, "status": VisitStatus}


class VisitSource(FieldSource):
    __slots__ = ()
    fields = frozenset(VISIT_FIELD_CLASS) - {"codes"}

    def read(self, name: str) -> Any:
        value = visits.read_field(self.ctx, self.view, name)
        convert = _CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


def visit_node(ctx: Context, view: VisitView) -> Visit:
    return cast(Visit, VisitSource(ctx, view))


# What a record that names a visit (a follow-up task, a care plan, a survey invitation, a response, an appointment)
# says of its visit
NAMED_VISIT = ("Read as visit(id:) reads it for you: the same fields under the classes of the patient's "
               "file; null with FORBIDDEN (no right to read visits: reason permission, permission visit:read) or "
               "NOT_FOUND (outside your reach, as a missing visit), on the audit trail as visit(id:) records it. "
               "Loaded for a whole page at once: no request per record.")


async def named_visit(ctx: Context, visit_id: uuid.UUID | None) -> Visit | None:
    """``Visit`` of a visit another record names (``visits.named``)."""
    found = await visits.named(ctx, visit_id)
    return None if found is None else visit_node(ctx, found)


class CodeSource(FieldSource):
    __slots__ = ()
    fields = frozenset({"code", "text"})

    def read(self, name: str) -> Any:
        return visits.read_code_field(self.ctx, self.view, name)


def code_node(ctx: Context, view: CodeView) -> VisitCode:
    return cast(VisitCode, CodeSource(ctx, view))


@strawberry.type(description="A condition or procedure recorded on a visit. Clinical: read under the clinical "
                             "class of the patient's file (without it a field is null with a FORBIDDEN error at its "
                             "path); the code is encrypted at rest and found by a blind index.")
class VisitCode:
    view: strawberry.Private[CodeView]

    @strawberry.field(description="The code's id on this visit.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="Condition or procedure.")
    def kind(self) -> CodeKind:
        return CodeKind(self.view.row.kind)

    @strawberry.field(description="ICD-10 or the service catalogue.")
    def system(self) -> CodeSystem:
        return CodeSystem(self.view.row.system)

    @strawberry.field(description="For procedures: pending, done or not done.")
    def status(self) -> ProcedureStatus | None:
        return None if self.view.row.status is None else ProcedureStatus(self.view.row.status)

    code: str = strawberry.field(description="The code, e.g. K08.1 or IMPLANT.")
    text: str | None = strawberry.field(description="Free text beside the code.")

    @strawberry.field(description="Pass back as `version` to visitCodeSetStatus.")
    def version(self) -> int:
        return int(self.view.row.version)


@strawberry.type(description="A visit or service (FHIR Encounter): when, where, who, what was done and what next. "
                             "Read under the classes of its patient's file: when, where and the status are identity; "
                             "reason, what was done, after-visit instructions, feedback and codes clinical; the "
                             "internal note staff only. A field of a class you may not read answers null with a "
                             "FORBIDDEN error at its path (the rest still comes); otherwise null means nothing is "
                             "recorded.")
class Visit:
    view: strawberry.Private[VisitView]

    @strawberry.field(description="The visit's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, as you may see the file.")
    def patient(self, info: Info) -> Patient:
        return cast(Patient, PatientSource(info.context, self.view.patient))

    @strawberry.field(description="Recorded by a care partner (a home-care service it delivered).")
    def recorded_by_partner(self) -> bool:
        return self.view.row.partner_id is not None

    kind: VisitKind | None = strawberry.field(description="What kind of visit.")
    status: VisitStatus | None = strawberry.field(description="Where the visit stands.")
    planned_at: datetime | None = strawberry.field(description="When it was booked for (a walk-in: when it began).")
    arrived_at: datetime | None = strawberry.field(description="Checked in at the desk.")
    started_at: datetime | None = strawberry.field(description="Seen from.")
    ended_at: datetime | None = strawberry.field(description="Finished at.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled; null unless CANCELLED.")
    revisit_on: date | None = strawberry.field(description="The re-visit date of the after-visit instructions.")
    created_at: datetime | None = strawberry.field(description="When it was recorded.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    @strawberry.field(description="The visit's version, 1 when recorded and one more with each change (every visit "
                                  "has one; read, as its id, by whoever sees the visit). Pass it back as `version` "
                                  "when you change it: a stale one is refused with CONFLICT (reason stale_version).")
    def version(self) -> int:
        return self.view.row.version
    reason: str | None = strawberry.field(description="Why the patient came. Clinical, encrypted.")
    summary: str | None = strawberry.field(description="What was done. Clinical, encrypted.")
    outcome: str | None = strawberry.field(description="The outcome. Clinical, encrypted.")
    treatment_plan: str | None = strawberry.field(description="After-visit: the treatment plan. Clinical, encrypted.")
    medication_guidance: str | None = strawberry.field(description="After-visit: medication guidance. Clinical.")
    rehabilitation: str | None = strawberry.field(description="After-visit: rehabilitation. Clinical, encrypted.")
    precautions: str | None = strawberry.field(description="After-visit: precautions. Clinical, encrypted.")
    feedback: str | None = strawberry.field(description="The patient's feedback on the visit. Clinical, encrypted.")
    internal_note: str | None = strawberry.field(description="Staff only; never shown in the portal. Encrypted.")

    @strawberry.field(description="The department the visit belongs to (identity); null when none was named.")
    async def department(self, info: Info) -> Department | None:
        visits.read_field(info.context, self.view, "kind")  # identity of the file: checked and noted
        department_id = self.view.row.department_id
        row = None if department_id is None else await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="The responsible clinician.")
    async def clinician(self, info: Info) -> StaffSummary | None:
        visits.read_field(info.context, self.view, "kind")
        staff_id = self.view.row.clinician_id
        row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="Other staff who took part, at most 10, as staffIds named them (the "
                                  "responsible one is `clinician`); empty for a partner's visit.")
    async def staff(self, info: Info) -> list[StaffSummary] | None:
        staff_ids = await visits.staff_of(info.context, self.view)
        rows = await info.context.require_loaders().staff.load_many(staff_ids)
        return [StaffSummary.of(row) for row in rows if row is not None]

    @strawberry.field(description="Conditions and procedures recorded on the visit (clinical), in the order "
                                  f"recorded, at most {visits.CODES_LIMIT}: page through all of them with visitCodes "
                                  "(its totalCount says how many).")
    async def codes(self, info: Info) -> list[VisitCode] | None:
        return [code_node(info.context, view) for view in await visits.codes_of(info.context, self.view)]


@strawberry.type(description="One code of a page, with its cursor.")
class VisitCodeEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: VisitCode = strawberry.field(description="The condition or procedure.")


@strawberry.type(description="A page of the conditions and procedures recorded on a visit, in the order recorded.")
class VisitCodeConnection:
    edges: list[VisitCodeEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[VisitCode]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="One visit of a page, with its cursor.")
class VisitEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Visit = strawberry.field(description="The visit.")


@strawberry.type(description="A page of visits, newest first unless another order is asked for.")
class VisitConnection:
    edges: list[VisitEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")

    @strawberry.field(description="The visits of this page.")
    def nodes(self) -> list[Visit]:
        return [edge.node for edge in self.edges]


def visit_connection(ctx: Context, page: visits.pagination.Page[VisitView],
                     total: int | None = None) -> VisitConnection:
    return VisitConnection(edges=[VisitEdge(cursor=cursor, node=visit_node(ctx, view)) for cursor, view in page.items],
                           page_info=PageInfo.of(page), total_count=total or 0)


@strawberry.enum(description="What a service history can be sorted by.")
class VisitOrderField(Enum):
    PLANNED_AT = strawberry.enum_value("planned_at", description="By when the visit was booked for (a walk-in: when "
                                                                 "it began); the default, newest first.")
    UPDATED_AT = strawberry.enum_value("updated_at", description="By last change.")


@strawberry.input(description="The order of a service history; ties are broken by id. A cursor works only with the "
                              "order it came from.")
class VisitOrder:
    field: VisitOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


@strawberry.input(description="Narrow a service history. A code filter needs the right to read clinical data.")
class VisitFilter:
    kind: VisitKind | None = strawberry.field(default=None, description="Only visits of this kind.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="Only this department's "
                                                                                     "visits.")
    since: datetime | None = strawberry.field(default=None, description="Visits planned at or after this time.")
    until: datetime | None = strawberry.field(default=None, description="Visits planned before this time.")
    code_system: CodeSystem | None = strawberry.field(default=None, description="The system of `code`; give "
                                                                               "both or neither.")
    code: str | None = strawberry.field(default=None, description="Only visits recording this code (an ICD-10 code "
                                                                  "matches in either spelling, K081 or K08.1).")


@strawberry.input(description="A new visit. PLANNED by default; ARRIVED checks a walk-in in; FINISHED records a "
                              "visit afterwards (startedAt and endedAt required).")
class VisitCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient, in your reach.")
    kind: VisitKind = strawberry.field(description="What kind of visit.")
    status: VisitStatus | None = strawberry.field(
        default=strawberry.UNSET, description="PLANNED (the default), ARRIVED (a walk-in checked in) or FINISHED "
                                              "(recorded afterwards).")
    department_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The department; null: the patient's department.")
    clinician_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"The responsible clinician (staff id). {CLINICIAN_RULE}")
    staff_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description=f"Other staff who took part (at most 10), clinicians too: each refused "
                                              f"at its place (input.staffIds[2]). {CLINICIAN_RULE}")
    planned_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it is booked for, with its offset; null: now.")
    started_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When the patient was seen from (required for FINISHED).")
    ended_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it finished (required for FINISHED); not before startedAt.")
    reason: str | None = strawberry.field(
        default=strawberry.UNSET, description="Why the patient comes, at most 1000 characters. Clinical, encrypted.")
    summary: str | None = strawberry.field(
        default=strawberry.UNSET, description="What was done, at most 4000 characters. Clinical, encrypted.")
    outcome: str | None = strawberry.field(
        default=strawberry.UNSET, description="The outcome, at most 2000 characters. Clinical, encrypted.")
    treatment_plan: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: the treatment plan, at most 2000 characters. Clinical, "
                                              "encrypted.")
    medication_guidance: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: medication guidance, at most 2000 characters. Clinical, "
                                              "encrypted.")
    rehabilitation: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: rehabilitation, at most 2000 characters. Clinical, "
                                              "encrypted.")
    precautions: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: precautions, at most 2000 characters. Clinical, encrypted.")
    revisit_on: date | None = strawberry.field(
        default=strawberry.UNSET, description="The re-visit date of the after-visit instructions.")
    internal_note: str | None = strawberry.field(
        default=strawberry.UNSET, description="A note for staff only (never in the portal), at most 2000 characters. "
                                              "Encrypted.")


@strawberry.input(description="Changes to a visit: fields left out stay as they are, null clears a field.")
class VisitUpdateInput:
    department_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The department the visit belongs to (Department.id); null: none.")
    clinician_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"The responsible clinician (staff id); null: none. {CLINICIAN_RULE}")
    staff_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description=f"Replaces the other staff as a whole; clinicians too, each refused at "
                                              f"its place (input.staffIds[2]). {CLINICIAN_RULE}")
    planned_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it is booked for, with its offset.")
    reason: str | None = strawberry.field(
        default=strawberry.UNSET, description="Why the patient comes, at most 1000 characters. Clinical, encrypted.")
    summary: str | None = strawberry.field(
        default=strawberry.UNSET, description="What was done, at most 4000 characters. Clinical, encrypted.")
    outcome: str | None = strawberry.field(
        default=strawberry.UNSET, description="The outcome, at most 2000 characters. Clinical, encrypted.")
    treatment_plan: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: the treatment plan, at most 2000 characters. Clinical, "
                                              "encrypted.")
    medication_guidance: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: medication guidance, at most 2000 characters. Clinical, "
                                              "encrypted.")
    rehabilitation: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: rehabilitation, at most 2000 characters. Clinical, "
                                              "encrypted.")
    precautions: str | None = strawberry.field(
        default=strawberry.UNSET, description="After-visit: precautions, at most 2000 characters. Clinical, encrypted.")
    revisit_on: date | None = strawberry.field(
        default=strawberry.UNSET, description="The re-visit date of the after-visit instructions.")
    feedback: str | None = strawberry.field(
        default=strawberry.UNSET, description="The patient's feedback on the visit, at most 2000 characters. Clinical, "
                                              "encrypted.")
    internal_note: str | None = strawberry.field(
        default=strawberry.UNSET, description="A note for staff only (never in the portal), at most 2000 characters. "
                                              "Encrypted.")


@strawberry.input(description="A condition (ICD-10, e.g. K08.1) or a procedure (a service catalogue code).")
class VisitCodeInput:
    kind: CodeKind = strawberry.field(description="CONDITION (an ICD-10 code) or PROCEDURE (a service catalogue "
                                                  "code).")
    code: str = strawberry.field(description="The code: ICD-10 with or without its dot (K081 is stored as K08.1), or "
                                             "an active service catalogue code. Encrypted.")
    text: str | None = strawberry.field(default=None, description="Free text beside the code, at most 500 "
                                                                  "characters. Clinical, encrypted.")
    status: ProcedureStatus | None = strawberry.field(default=None, description="Procedures only; DONE by default.")


@strawberry.type(description="How many patients in your reach carry a code.")
class CodeCount:
    code: str = strawberry.field(description="The code as asked (ICD-10 in its dotted form).")
    patients: int = strawberry.field(description="Patients in your reach with the code on at least one visit.")


def _where(filter: VisitFilter | None) -> visits.VisitFilter:
    return visits.VisitFilter(**provided(filter)) if filter is not None else visits.VisitFilter()


def patient_connection(ctx: Context, page: visits.pagination.Page[PatientView],
                       total: int | None = None) -> PatientConnection:
    return PatientConnection(
        edges=[PatientEdge(cursor=cursor, node=cast(Patient, patient_node(ctx, view))) for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=total or 0)


_VISIT_ID = Annotated[strawberry.ID, strawberry.argument(description="The visit's id (NOT_FOUND when missing or its "
                                                                   "patient is outside your reach).")]
_CODE_SYSTEM = Annotated[CodeSystem, strawberry.argument(description="The code system of the codes asked.")]


@strawberry.type
class VisitQuery:
    @strawberry.field(description="One visit. NOT_FOUND when it is missing or its patient is outside your reach.")
    async def visit(self, info: Info, id: _VISIT_ID) -> Visit | None:
        return visit_node(info.context, await visits.get(info.context, uuid_of(id)))

    @strawberry.field(description="The conditions and procedures recorded on a visit (clinical), in the order "
                                  "recorded, a page at a time. Visit.codes lists the first ones.")
    async def visit_codes(
        self, info: Info,
        visit_id: Annotated[strawberry.ID, strawberry.argument(description="The visit, its patient in your reach.")],
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> VisitCodeConnection | None:
        page = await visits.codes_page(info.context, uuid_of(visit_id, "visitId"), first=first, after=after,
                                       count=asks_total(info))
        return VisitCodeConnection(edges=[VisitCodeEdge(cursor=cursor, node=code_node(info.context, view))
                                          for cursor, view in page.items], page_info=PageInfo.of(page),
                                   total_count=page.total)

    @strawberry.field(description="A patient's service history, newest first, 1 to 100 a page.")
    async def visits(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
        filter: Annotated[VisitFilter | None, strawberry.argument(
            description="Narrow the history; null: every visit you may see.")] = None,
        order_by: Annotated[VisitOrder | None, strawberry.argument(
            description="The order; null: newest first (by plannedAt).")] = None,
    ) -> VisitConnection:
        order = None if order_by is None else visits.VisitOrder(str(order_by.field.value),
                                                                str(order_by.direction.value))
        found = await visits.patient_history(info.context, uuid_of(patient_id, "patientId"), first=first, after=after,
                                             where=_where(filter), order=order, count=asks_total(info))
        return visit_connection(info.context, found.page, found.total)

    @strawberry.field(description="Patients in your reach with a condition or procedure code (and, for procedures, "
                                  "a status: PENDING finds treatment still to do). Needs clinical read rights.")
    async def patients_with_code(
        self, info: Info, code_system: _CODE_SYSTEM,
        code: Annotated[str, strawberry.argument(description="The code (ICD-10 with or without its dot).")],
        status: Annotated[ProcedureStatus | None, strawberry.argument(
            description="Procedures: only with this status (PENDING: treatment still to do); null: any.")] = None,
        first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> PatientConnection:
        found = await visits.cohort(info.context, system=str(code_system.value), code=code,
                                    status=None if status is None else str(status.value), first=first, after=after,
                                    count=asks_total(info))
        return patient_connection(info.context, found.page, found.total)

    @strawberry.field(description="How many patients in your reach carry each code: one line per code "
                                  "asked, so at most 50 (aggregates only, no patient named; for report readers).")
    async def code_counts(
        self, info: Info, code_system: _CODE_SYSTEM,
        codes: Annotated[list[str], strawberry.argument(description="The codes to count, 1 to 50.")],
    ) -> list[CodeCount]:
        counted = await visits.cohort_counts(info.context, system=str(code_system.value), codes=codes)
        return [CodeCount(code=code, patients=count) for code, count in counted]


@strawberry.type
class VisitMutation:
    @strawberry.mutation(description="Record a visit: booked (PLANNED), a walk-in checked in (ARRIVED), or one that "
                                     "already happened (FINISHED). Clinical fields need clinical write rights.")
    async def visit_create(self, info: Info, input: Annotated[VisitCreateInput, strawberry.argument(
            description="The visit.")]) -> Visit | None:
        return visit_node(info.context, await visits.create(info.context, provided(input)))

    @strawberry.mutation(description="Change a visit. Pass the version you read: a stale one answers CONFLICT.")
    async def visit_update(
        self, info: Info, id: _VISIT_ID,
        input: Annotated[VisitUpdateInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> Visit | None:
        return visit_node(info.context, await visits.update(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Move a visit on: ARRIVED (check-in: alerts the desk), IN_PROGRESS, FINISHED "
                                     "(schedules the follow-up), CANCELLED or NO_SHOW (cancels pending follow-up).")
    async def visit_transition(
        self, info: Info, id: _VISIT_ID,
        to: Annotated[VisitStatus, strawberry.argument(description="The next status; a move out of order is "
                                                                   "BAD_USER_INPUT, reason illegal_transition.")],
        at: Annotated[datetime | None, strawberry.argument(
            description="When it happened, with its offset (arrival, start, end or cancellation; a NO_SHOW keeps "
                        "no time and refuses one); null: now.")] = None,
        version: Version = None,
    ) -> Visit | None:
        return visit_node(info.context, await visits.transition(info.context, uuid_of(id), str(to.value), at, version))

    @strawberry.mutation(description="Record a condition or procedure on a visit (clinical write rights).")
    async def visit_code_add(
        self, info: Info,
        visit_id: Annotated[strawberry.ID, strawberry.argument(
            description="The visit's id (Visit.id); NOT_FOUND when it does not exist or is outside your reach "
                        "(the same answer).")],
        input: Annotated[VisitCodeInput, strawberry.argument(description="The code to record.")],
    ) -> VisitCode | None:
        return code_node(info.context, await visits.add_code(info.context, uuid_of(visit_id, "visitId"),
                                                             provided(input)))

    @strawberry.mutation(description="Mark a procedure done, not done, or pending again. Pass the version you read: "
                                     "a stale one answers CONFLICT.")
    async def visit_code_set_status(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The procedure code's id (VisitCode.id).")],
        status: Annotated[ProcedureStatus, strawberry.argument(description="The new status.")],
        version: Version = None,
    ) -> VisitCode | None:
        return code_node(info.context, await visits.set_code_status(info.context, uuid_of(id), str(status.value),
                                                                    version))


register_node("visit", visit_node)
