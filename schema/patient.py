"""Patient files: the type, its connection, filters, inputs and operations.

Every field but ``id`` belongs to a field class (identity, contact, clinical, needs, internal). A field
your role may not read on this patient resolves to null with a FORBIDDEN error, so the schema
is the same for every role. Encrypted fields are decrypted only when asked for, and every
read is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from policies.fields import PATIENT_FIELD_CLASS
from resolvers import access
from resolvers import appointment as appointments
from resolvers import care_plan as care_plans
from resolvers import communication as communications
from resolvers import consent as consents
from resolvers import contact as contacts
from resolvers import flag as flags
from resolvers import follow_up as follow_ups
from resolvers import patient as patients
from resolvers import ticket as tickets
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.patient import PatientFilter as PatientWhere
from schema.common import DEFAULT_PAGE_SIZE, FieldSource, Info, PageInfo, node_of, provided, uuid_of
from schema.consent import PartnerConsent
from schema.contact import Contact, contact_node
from schema.department import Department
from schema.staff import StaffSummary

if TYPE_CHECKING:
    # The patient page's sections are types of modules that import this one: Strawberry finds them by
    # strawberry.lazy, and nothing here imports them (see schema.common.node_of).
    from typing import TypeAlias

    Visit: TypeAlias = Any
    Appointment: TypeAlias = Any
    Communication: TypeAlias = Any
    Flag: TypeAlias = Any
    CarePlan: TypeAlias = Any
    FollowUpTask: TypeAlias = Any
    Ticket: TypeAlias = Any


@strawberry.enum(description="Sex as recorded in the file.")
class Sex(Enum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


@strawberry.enum(description="Whether the file is in use.")
class PatientStatus(Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DECEASED = "deceased"


@strawberry.enum(description="A way to reach the patient.")
class Channel(Enum):
    SMS = "sms"
    PHONE = "phone"
    EMAIL = "email"
    WECHAT = "wechat"
    APP = "app"
    POST = "post"


@strawberry.enum(description="What a patient may be contacted for, each consented to separately: CARE "
                             "(appointments, reminders, follow-up), GREETING (birthdays, holidays), CAMPAIGN "
                             "(newsletters).")
class ContactPurpose(Enum):
    CARE = "care"
    GREETING = "greeting"
    CAMPAIGN = "campaign"


@strawberry.enum(description="Segments, reviewed monthly: VIPs are flagged on arrival; others group pending treatment.")
class Segment(Enum):
    VIP = "vip"
    SPECIAL_NEEDS = "special_needs"
    ORTHODONTICS = "orthodontics"
    RESTORATION = "restoration"
    IMPLANT = "implant"
    PERIODONTAL = "periodontal"


@strawberry.enum(description="The kind of identity document.")
class NationalIdType(Enum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"


@strawberry.enum(description="What identified a patient already on file.")
class PatientMatch(Enum):
    NATIONAL_ID = "NATIONAL_ID"
    PHONE = "PHONE"


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "sex": Sex, "national_id_type": NationalIdType, "status": PatientStatus, "preferred_channel": Channel,
    "segments": lambda values: [Segment(v) for v in values],
    "contact_channels": lambda values: [Channel(v) for v in values],
    "contact_purposes": lambda values: [ContactPurpose(v) for v in values],
}


def _field(description: str):
    """A scalar field read straight off a ``PatientSource`` (no resolver: Strawberry's fast path)."""
    return strawberry.field(description=description)


class PatientSource(FieldSource):
    """What a ``Patient`` resolves from (see ``FieldSource``)."""

    __slots__ = ()
    fields = frozenset(PATIENT_FIELD_CLASS)

    def read(self, name: str) -> Any:
        value = access.read_patient_field(self.ctx, self.view, name)
        convert = _CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


def node(ctx: Context, view: PatientView | None) -> Patient | None:
    return None if view is None else cast(Patient, PatientSource(ctx, view))


@strawberry.type(description="A patient file (customer archive). Reading it is audited field class by field class.")
class Patient:
    view: strawberry.Private[PatientView]  # a PatientSource stands in for instances at run time

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    # identity
    full_name: str | None = _field("Full name, as on the identity document.")
    sex: Sex | None = _field("Sex.")
    birth_date: date | None = _field("Date of birth.")
    occupation: str | None = _field("Occupation.")
    national_id_type: NationalIdType | None = _field("Identity document type.")
    national_id: str | None = _field("Identity document number. Encrypted; decryption is audited.")
    status: PatientStatus | None = _field("Active, archived or deceased.")
    segments: list[Segment] | None = _field("Segments (VIP, special needs, pending treatment). Staff only.")
    tags: list[str] | None = _field("Free tags. Staff only.")
    created_at: datetime | None = _field("When the file was opened.")
    updated_at: datetime | None = _field("Last change to the file.")
    # contact
    address: str | None = _field("Postal address. Encrypted.")
    phone: str | None = _field("Main phone, E.164. Encrypted.")
    alt_phone: str | None = _field("Second phone, E.164. Encrypted.")
    email: str | None = _field("E-mail address.")
    preferred_channel: Channel | None = _field("Preferred way to be reached.")
    preferred_language: str | None = _field("Language tag, e.g. zh-CN.")
    contact_consent: bool | None = _field("Consent to be contacted (reminders, greetings).")
    contact_channels: list[Channel] | None = _field("Channels consented to.")
    contact_purposes: list[ContactPurpose] | None = _field("What the patient may be contacted for (care by default; "
                                                           "greetings and campaigns only when they said so).")
    # clinical
    medical_history: str | None = _field("Medical history. Clinical, encrypted.")
    diagnoses: str | None = _field("Diagnoses. Clinical, encrypted.")
    allergies: str | None = _field("Allergies. Clinical, encrypted.")
    current_medication: str | None = _field("Current medication. Clinical, encrypted.")
    # needs and preferences
    diet_preferences: str | None = _field("Diet preferences.")
    activity_preferences: str | None = _field("Activity preferences.")
    special_needs: str | None = _field("Special needs (mobility, hearing...). Encrypted.")

    @strawberry.field(description="The patient's department.")
    async def department(self, info: Info) -> Department | None:
        access.require_class(info.context, self.view, "identity")
        department_id = self.view.row.department_id
        if department_id is None:
            return None
        row = await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="Staff looking after the patient.")
    async def care_team(self, info: Info) -> list[StaffSummary] | None:
        access.require_class(info.context, self.view, "identity")
        members = await info.context.require_loaders().care_team_by_patient.load(self.view.row.id)
        return [StaffSummary.of(staff) for staff in members]

    @strawberry.field(description="Family members and emergency contacts.")
    async def contacts(self, info: Info) -> list[Contact] | None:
        access.require_contacts(info.context, self.view)
        return [contact_node(info.context, view) for view in await contacts.of_patient(info.context, self.view)]

    # -- the patient page: each section as its own query filters it, batched across a list of patients

    @strawberry.field(description="The most recent visits you may see, newest first (1 to 20; the whole history is "
                                  "the `visits` query).")
    async def recent_visits(self, info: Info, count: int = 5
                            ) -> list[Annotated["Visit", strawberry.lazy("schema.visit")]] | None:
        return [node_of("visit", info.context, v) for v in await visits.recent_of(info.context, self.view, count)]

    @strawberry.field(description="The alerts on the file in force today (VIP, special needs, allergy...).")
    async def flags(self, info: Info) -> list[Annotated["Flag", strawberry.lazy("schema.flag")]] | None:
        return [node_of("flag", info.context, v) for v in await flags.in_force_of(info.context, self.view)]

    @strawberry.field(description="Care plans in force (draft or active), newest first.")
    async def care_plans(self, info: Info) -> list[Annotated["CarePlan", strawberry.lazy("schema.care_plan")]] | None:
        return [node_of("care_plan", info.context, v) for v in await care_plans.current_of(info.context, self.view)]

    @strawberry.field(description="Open follow-up tasks, soonest due first.")
    async def open_follow_up_tasks(self, info: Info
                                   ) -> list[Annotated["FollowUpTask", strawberry.lazy("schema.follow_up")]] | None:
        return [node_of("follow_up_task", info.context, v)
                for v in await follow_ups.open_of(info.context, self.view)]

    @strawberry.field(description="Appointments still to come, soonest first (1 to 20; the rest is the "
                                  "`patientAppointments` query).")
    async def upcoming_appointments(self, info: Info, count: int = 5
                                    ) -> list[Annotated["Appointment", strawberry.lazy("schema.appointment")]] | None:
        return [node_of("appointment", info.context, v)
                for v in await appointments.upcoming_of(info.context, self.view, count)]

    @strawberry.field(description="The latest messages and logged calls, newest first (1 to 20; the rest is the "
                                  "`patientCommunications` query).")
    async def recent_communications(
            self, info: Info, count: int = 5
    ) -> list[Annotated["Communication", strawberry.lazy("schema.communication")]] | None:
        return [node_of("communication", info.context, v)
                for v in await communications.recent_of(info.context, self.view, count)]

    @strawberry.field(description="Open tickets about the patient within your ticket reach, newest first.")
    async def open_tickets(self, info: Info) -> list[Annotated["Ticket", strawberry.lazy("schema.ticket")]] | None:
        return [node_of("ticket", info.context, v) for v in await tickets.open_of(info.context, self.view)]

    @strawberry.field(description="Consents to share the file with partners, one per partner asked (contact class).")
    async def partner_consents(self, info: Info) -> list[PartnerConsent] | None:
        return [PartnerConsent.of(row) for row in await consents.of_patient(info.context, self.view)]


@strawberry.type
class PatientEdge:
    cursor: str
    node: Patient


@strawberry.type(description="A page of patients, in the order they were registered.")
class PatientConnection:
    edges: list[PatientEdge]
    page_info: PageInfo

    @strawberry.field(description="The patients of this page.")
    def nodes(self) -> list[Patient]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Narrow a patient list. Phone and ID number match exactly, without decrypting.")
class PatientFilter:
    name_prefix: str | None = None
    phone: str | None = None
    national_id_type: NationalIdType | None = None
    national_id: str | None = None
    segment: Segment | None = None
    tag: str | None = None
    department_id: strawberry.ID | None = None
    status: PatientStatus | None = None


@strawberry.input(description="A new patient file. Only the name is required.")
class PatientCreateInput:
    full_name: str
    sex: Sex | None = strawberry.UNSET
    birth_date: date | None = strawberry.UNSET
    occupation: str | None = strawberry.UNSET
    national_id_type: NationalIdType | None = strawberry.UNSET
    national_id: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    alt_phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    preferred_channel: Channel | None = strawberry.UNSET
    preferred_language: str | None = strawberry.UNSET
    contact_consent: bool | None = strawberry.UNSET
    contact_channels: list[Channel] | None = strawberry.UNSET
    contact_purposes: list[ContactPurpose] | None = strawberry.field(
        default=strawberry.UNSET, description="What the patient may be contacted for (replaces the list).")
    medical_history: str | None = strawberry.UNSET
    diagnoses: str | None = strawberry.UNSET
    allergies: str | None = strawberry.UNSET
    current_medication: str | None = strawberry.UNSET
    diet_preferences: str | None = strawberry.UNSET
    activity_preferences: str | None = strawberry.UNSET
    special_needs: str | None = strawberry.UNSET
    segments: list[Segment] | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input(description="Changes to a patient file: fields left out stay as they are, null clears a field.")
class PatientUpdateInput(PatientCreateInput):
    full_name: str | None = strawberry.UNSET  # type: ignore[assignment]
    status: PatientStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Set DECEASED or ACTIVE here; patientArchive archives.")


@strawberry.type(description="The new file, or the patient on file when the front desk registers someone again.")
class PatientCreatePayload:
    patient: Patient | None = strawberry.field(description="The new file; null when a returning patient was found.")
    returning_patient: Patient | None = strawberry.field(
        description="A patient on file with the same ID number or phone. Pass registerAnyway to create a new file.")
    matched_on: list[PatientMatch] = strawberry.field(description="What matched the returning patient.")


@strawberry.type
class PatientQuery:
    @strawberry.field(description="One patient file. NOT_FOUND when it is missing or outside your scope (the same).")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient | None:
        return node(info.context, await patients.get(info.context, uuid_of(id)))

    @strawberry.field(description="Patients you may see, in registration order, 1 to 100 a page.")
    async def patients(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None, filter: PatientFilter | None = None
    ) -> PatientConnection:
        where = PatientWhere(**provided(filter)) if filter is not None else PatientWhere()
        page = await patients.page(info.context, first=first, after=after, where=where)
        edges = [PatientEdge(cursor=cursor, node=cast(Patient, PatientSource(info.context, view)))
                 for cursor, view in page.items]
        return PatientConnection(edges=edges, page_info=PageInfo(has_next_page=page.has_next_page,
                                                                 end_cursor=page.end_cursor))


@strawberry.type
class PatientMutation:
    @strawberry.mutation(description="Register a patient. A patient already on file (same ID number or phone) is "
                                     "returned as returningPatient instead, unless registerAnyway is true.")
    async def patient_create(
        self, info: Info, input: PatientCreateInput, register_anyway: bool = False
    ) -> PatientCreatePayload | None:
        result = await patients.create(info.context, provided(input), register_anyway=register_anyway)
        ctx = info.context
        return PatientCreatePayload(patient=node(ctx, result.patient),
                                    returning_patient=node(ctx, result.returning_patient),
                                    matched_on=[PatientMatch(m) for m in result.matched_on])

    @strawberry.mutation(description="Change a patient file; each field class changed needs its own permission.")
    async def patient_update(self, info: Info, id: strawberry.ID, input: PatientUpdateInput) -> Patient | None:
        return node(info.context, await patients.update(info.context, uuid_of(id), provided(input)))

    @strawberry.mutation(description="Archive a patient file. Nothing is deleted.")
    async def patient_archive(self, info: Info, id: strawberry.ID) -> Patient | None:
        return node(info.context, await patients.archive(info.context, uuid_of(id)))
