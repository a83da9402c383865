"""Visits (FHIR Encounter), their codes, the service history and cohorts by code.

A visit is read under the classes of its patient's file: when and where it happened is identity,
what was done is clinical, the internal note is for staff only. A field your role may not read on
this patient resolves to null with a FORBIDDEN error, as on the patient file.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, cast

import strawberry

from policies.fields import VISIT_FIELD_CLASS
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.visit import CodeView, VisitView
from schema.common import DEFAULT_PAGE_SIZE, FieldSource, Info, PageInfo, provided, register_node, uuid_of
from schema.department import Department
from schema.patient import Patient, PatientConnection, PatientEdge, PatientSource
from schema.patient import node as patient_node
from schema.staff import StaffSummary


@strawberry.enum(description="What kind of visit or service it was (FHIR Encounter class, simplified).")
class VisitKind(Enum):
    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    PROCEDURE = "procedure"
    HOME_CARE = "home_care"
    CHECK_UP = "check_up"
    DENTAL = "dental"
    PHONE = "phone"


@strawberry.enum(description="Where a visit stands (FHIR Encounter.status; NO_SHOW from Appointment). The server "
                             "enforces the order: PLANNED -> ARRIVED -> IN_PROGRESS -> FINISHED; PLANNED or ARRIVED "
                             "-> CANCELLED; PLANNED -> NO_SHOW.")
class VisitStatus(Enum):
    PLANNED = "planned"
    ARRIVED = "arrived"
    IN_PROGRESS = "in_progress"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


@strawberry.enum(description="A condition (ICD-10) or a procedure (the institution's service catalogue).")
class CodeKind(Enum):
    CONDITION = "condition"
    PROCEDURE = "procedure"


@strawberry.enum(description="The code system: WHO ICD-10, or the institution's service catalogue.")
class CodeSystem(Enum):
    ICD10 = "icd10"
    SERVICE = "service"


@strawberry.enum(description="Whether a procedure is still to be done (FHIR Procedure: preparation, completed, "
                             "not-done).")
class ProcedureStatus(Enum):
    PENDING = "pending"
    DONE = "done"
    NOT_DONE = "not_done"


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


class CodeSource(FieldSource):
    __slots__ = ()
    fields = frozenset({"code", "text"})

    def read(self, name: str) -> Any:
        return visits.read_code_field(self.ctx, self.view, name)


def code_node(ctx: Context, view: CodeView) -> VisitCode:
    return cast(VisitCode, CodeSource(ctx, view))


@strawberry.type(description="A condition or procedure recorded on a visit. Clinical: read under the clinical "
                             "class; the code is encrypted at rest and found by a blind index.")
class VisitCode:
    view: strawberry.Private[CodeView]

    @strawberry.field
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


@strawberry.type(description="A visit or service (FHIR Encounter): when, where, who, what was done and what next.")
class Visit:
    view: strawberry.Private[VisitView]

    @strawberry.field
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
    cancelled_at: datetime | None = strawberry.field(description="Cancelled at.")
    revisit_on: date | None = strawberry.field(description="The re-visit date of the after-visit instructions.")
    created_at: datetime | None = strawberry.field(description="When it was recorded.")
    updated_at: datetime | None = strawberry.field(description="Last change.")
    version: int | None = strawberry.field(description="Pass back when you change the visit: a stale one is refused "
                                                       "with CONFLICT.")
    reason: str | None = strawberry.field(description="Why the patient came. Clinical, encrypted.")
    summary: str | None = strawberry.field(description="What was done. Clinical, encrypted.")
    outcome: str | None = strawberry.field(description="The outcome. Clinical, encrypted.")
    treatment_plan: str | None = strawberry.field(description="After-visit: the treatment plan. Clinical, encrypted.")
    medication_guidance: str | None = strawberry.field(description="After-visit: medication guidance. Clinical.")
    rehabilitation: str | None = strawberry.field(description="After-visit: rehabilitation. Clinical, encrypted.")
    precautions: str | None = strawberry.field(description="After-visit: precautions. Clinical, encrypted.")
    feedback: str | None = strawberry.field(description="The patient's feedback on the visit. Clinical, encrypted.")
    internal_note: str | None = strawberry.field(description="Staff only; never shown in the portal. Encrypted.")

    @strawberry.field(description="The department.")
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

    @strawberry.field(description="Other staff who took part.")
    async def staff(self, info: Info) -> list[StaffSummary] | None:
        staff_ids = await visits.staff_of(info.context, self.view)
        rows = await info.context.require_loaders().staff.load_many(staff_ids)
        return [StaffSummary.of(row) for row in rows if row is not None]

    @strawberry.field(description="Conditions and procedures recorded on the visit (clinical).")
    async def codes(self, info: Info) -> list[VisitCode] | None:
        return [code_node(info.context, view) for view in await visits.codes_of(info.context, self.view)]


@strawberry.type
class VisitEdge:
    cursor: str
    node: Visit


@strawberry.type(description="A page of visits, newest first.")
class VisitConnection:
    edges: list[VisitEdge]
    page_info: PageInfo

    @strawberry.field(description="The visits of this page.")
    def nodes(self) -> list[Visit]:
        return [edge.node for edge in self.edges]


def visit_connection(ctx: Context, page: visits.pagination.Page[VisitView]) -> VisitConnection:
    return VisitConnection(edges=[VisitEdge(cursor=cursor, node=visit_node(ctx, view)) for cursor, view in page.items],
                           page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


@strawberry.input(description="Narrow a service history. A code filter needs the right to read clinical data.")
class VisitFilter:
    kind: VisitKind | None = None
    department_id: strawberry.ID | None = None
    since: datetime | None = strawberry.field(default=None, description="Visits planned at or after this time.")
    until: datetime | None = strawberry.field(default=None, description="Visits planned before this time.")
    code_system: CodeSystem | None = None
    code: str | None = None


@strawberry.input(description="A new visit. PLANNED by default; ARRIVED checks a walk-in in; FINISHED records a "
                              "visit afterwards (startedAt and endedAt required).")
class VisitCreateInput:
    patient_id: strawberry.ID
    kind: VisitKind
    status: VisitStatus | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    clinician_id: strawberry.ID | None = strawberry.UNSET
    staff_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                             description="Other staff who took part (at most 10).")
    planned_at: datetime | None = strawberry.UNSET
    started_at: datetime | None = strawberry.UNSET
    ended_at: datetime | None = strawberry.UNSET
    reason: str | None = strawberry.UNSET
    summary: str | None = strawberry.UNSET
    outcome: str | None = strawberry.UNSET
    treatment_plan: str | None = strawberry.UNSET
    medication_guidance: str | None = strawberry.UNSET
    rehabilitation: str | None = strawberry.UNSET
    precautions: str | None = strawberry.UNSET
    revisit_on: date | None = strawberry.UNSET
    internal_note: str | None = strawberry.UNSET


@strawberry.input(description="Changes to a visit: fields left out stay as they are, null clears a field.")
class VisitUpdateInput:
    department_id: strawberry.ID | None = strawberry.UNSET
    clinician_id: strawberry.ID | None = strawberry.UNSET
    staff_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                             description="Replaces the other staff as a whole.")
    planned_at: datetime | None = strawberry.UNSET
    reason: str | None = strawberry.UNSET
    summary: str | None = strawberry.UNSET
    outcome: str | None = strawberry.UNSET
    treatment_plan: str | None = strawberry.UNSET
    medication_guidance: str | None = strawberry.UNSET
    rehabilitation: str | None = strawberry.UNSET
    precautions: str | None = strawberry.UNSET
    revisit_on: date | None = strawberry.UNSET
    feedback: str | None = strawberry.UNSET
    internal_note: str | None = strawberry.UNSET


@strawberry.input(description="A condition (ICD-10, e.g. K08.1) or a procedure (a service catalogue code).")
class VisitCodeInput:
    kind: CodeKind
    code: str
    text: str | None = None
    status: ProcedureStatus | None = strawberry.field(default=None, description="Procedures only; DONE by default.")


@strawberry.type(description="How many patients in your reach carry a code.")
class CodeCount:
    code: str
    patients: int


def _where(filter: VisitFilter | None) -> visits.VisitFilter:
    return visits.VisitFilter(**provided(filter)) if filter is not None else visits.VisitFilter()


def patient_connection(ctx: Context, page: visits.pagination.Page[PatientView]) -> PatientConnection:
    return PatientConnection(
        edges=[PatientEdge(cursor=cursor, node=cast(Patient, patient_node(ctx, view))) for cursor, view in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


@strawberry.type
class VisitQuery:
    @strawberry.field(description="One visit. NOT_FOUND when it is missing or its patient is outside your reach.")
    async def visit(self, info: Info, id: strawberry.ID) -> Visit | None:
        return visit_node(info.context, await visits.get(info.context, uuid_of(id)))

    @strawberry.field(description="A patient's service history, newest first, 1 to 100 a page.")
    async def visits(self, info: Info, patient_id: strawberry.ID, first: int = DEFAULT_PAGE_SIZE,
                     after: str | None = None, filter: VisitFilter | None = None) -> VisitConnection:
        page = await visits.patient_history(info.context, uuid_of(patient_id, "patientId"), first=first, after=after,
                                            where=_where(filter))
        return visit_connection(info.context, page)

    @strawberry.field(description="Patients in your reach with a condition or procedure code (and, for procedures, "
                                  "a status: PENDING finds treatment still to do). Needs clinical read rights.")
    async def patients_with_code(self, info: Info, code_system: CodeSystem, code: str,
                                 status: ProcedureStatus | None = None, first: int = DEFAULT_PAGE_SIZE,
                                 after: str | None = None) -> PatientConnection:
        page = await visits.cohort(info.context, system=code_system.value, code=code,
                                   status=None if status is None else status.value, first=first, after=after)
        return patient_connection(info.context, page)

    @strawberry.field(description="How many patients in your reach carry each code (aggregates, for report readers).")
    async def code_counts(self, info: Info, code_system: CodeSystem, codes: list[str]) -> list[CodeCount]:
        counted = await visits.cohort_counts(info.context, system=code_system.value, codes=codes)
        return [CodeCount(code=code, patients=count) for code, count in counted]


@strawberry.type
class VisitMutation:
    @strawberry.mutation(description="Record a visit: booked (PLANNED), a walk-in checked in (ARRIVED), or one that "
                                     "already happened (FINISHED). Clinical fields need clinical write rights.")
    async def visit_create(self, info: Info, input: VisitCreateInput) -> Visit | None:
        return visit_node(info.context, await visits.create(info.context, provided(input)))

    @strawberry.mutation(description="Change a visit. Pass the version you read: a stale one answers CONFLICT.")
    async def visit_update(self, info: Info, id: strawberry.ID, input: VisitUpdateInput,
                           version: int | None = None) -> Visit | None:
        return visit_node(info.context, await visits.update(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Move a visit on: ARRIVED (check-in: alerts the desk), IN_PROGRESS, FINISHED "
                                     "(schedules the follow-up), CANCELLED or NO_SHOW (cancels pending follow-up).")
    async def visit_transition(self, info: Info, id: strawberry.ID, to: VisitStatus, at: datetime | None = None,
                               version: int | None = None) -> Visit | None:
        return visit_node(info.context, await visits.transition(info.context, uuid_of(id), to.value, at, version))

    @strawberry.mutation(description="Record a condition or procedure on a visit (clinical write rights).")
    async def visit_code_add(self, info: Info, visit_id: strawberry.ID, input: VisitCodeInput) -> VisitCode | None:
        return code_node(info.context, await visits.add_code(info.context, uuid_of(visit_id, "visitId"),
                                                             provided(input)))

    @strawberry.mutation(description="Mark a procedure done, not done, or pending again.")
    async def visit_code_set_status(self, info: Info, id: strawberry.ID, status: ProcedureStatus) -> VisitCode | None:
        return code_node(info.context, await visits.set_code_status(info.context, uuid_of(id), status.value))


register_node("visit", visit_node)
