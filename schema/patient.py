"""Patient files: the type, its connection, filters, inputs and operations.

Every field but ``id`` belongs to a field class (identity, contact, clinical, needs, internal). A field
your role may not read on this patient resolves to null with a FORBIDDEN error, so the schema
is the same for every role. Encrypted fields are decrypted only when asked for, and every
read is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from policies.fields import PATIENT_FIELD_CLASS
from resolvers import access, care_team
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
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NULL_KEEPS,
    PAGE_INFO,
    After,
    FieldSource,
    First,
    Info,
    OrderDirection,
    PageInfo,
    Version,
    asks_total,
    node_of,
    provided,
    uuid_of,
)
from schema.consent import PartnerConsent
from schema.contact import Contact, contact_columns, contact_nodes
from schema.department import Department
from schema.selection import patient_columns, selected_fields
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
    FEMALE = strawberry.enum_value("female", description="Female.")
    MALE = strawberry.enum_value("male", description="Male.")
    OTHER = strawberry.enum_value("other", description="Recorded as neither female nor male.")
    UNKNOWN = strawberry.enum_value("unknown", description="Not recorded (a new file's default).")


@strawberry.enum(description="Whether the file is in use.")
class PatientStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="In use: the patient is cared for and may be contacted.")
    ARCHIVED = strawberry.enum_value("archived", description="Archived by patientArchive: kept, nothing deleted, no "
                                                             "messages sent.")
    DECEASED = strawberry.enum_value("deceased", description="The patient died: kept, no messages sent; recording "
                                                             "the death ends their service contracts (TERMINATED "
                                                             "that day, or REVOKED if not started or never "
                                                             "signed).")
    MERGED = strawberry.enum_value("merged", description="A duplicate merged into another file by patientMerge "
                                                         "(see mergedInto): kept as it was, read-only, left out of "
                                                         "lists unless asked for.")


@strawberry.enum(description="A way to reach the patient.")
class Channel(Enum):
    SMS = strawberry.enum_value("sms", description="Text message to the main phone.")
    PHONE = strawberry.enum_value("phone", description="A call to the main phone (staff).")
    EMAIL = strawberry.enum_value("email", description="E-mail.")
    WECHAT = strawberry.enum_value("wechat", description="The institution's WeChat official account.")
    APP = strawberry.enum_value("app", description="The institution's app.")
    POST = strawberry.enum_value("post", description="Letter to the postal address.")


@strawberry.enum(description="What a patient may be contacted for, each consented to separately: CARE "
                             "(appointments, reminders, follow-up), GREETING (birthdays, holidays), CAMPAIGN "
                             "(newsletters).")
class ContactPurpose(Enum):
    CARE = strawberry.enum_value("care", description="Appointments, reminders and follow-up calls (consented by "
                                                     "default).")
    GREETING = strawberry.enum_value("greeting", description="Birthday and holiday greetings.")
    CAMPAIGN = strawberry.enum_value("campaign", description="Newsletters, health education and service news.")


@strawberry.enum(description="Segments, reviewed monthly: VIPs are flagged on arrival; others group pending treatment.")
class Segment(Enum):
    VIP = strawberry.enum_value("vip", description="A VIP: flagged on arrival, answered by a health adviser within 30 "
                                                   "minutes.")
    SPECIAL_NEEDS = strawberry.enum_value("special_needs", description="Needs special attention (mobility, hearing, "
                                                                       "language...).")
    ORTHODONTICS = strawberry.enum_value("orthodontics", description="Orthodontic treatment pending or under way.")
    RESTORATION = strawberry.enum_value("restoration", description="Restorative treatment pending or under way.")
    IMPLANT = strawberry.enum_value("implant", description="Implant treatment pending or under way.")
    PERIODONTAL = strawberry.enum_value("periodontal", description="Periodontal treatment pending or under way.")


@strawberry.enum(description="The kind of identity document.")
class NationalIdType(Enum):
    RESIDENT_ID = strawberry.enum_value("resident_id", description="Mainland resident identity card: 18 characters, "
                                                                   "the last a check digit or X.")
    PASSPORT = strawberry.enum_value("passport", description="A passport.")
    HK_MACAO_PERMIT = strawberry.enum_value(
        "hk_macao_permit", description="Mainland travel permit for Hong Kong and Macao residents.")
    TAIWAN_PERMIT = strawberry.enum_value("taiwan_permit", description="Mainland travel permit for Taiwan residents.")
    FOREIGN_PERMANENT_RESIDENT = strawberry.enum_value("foreign_permanent_resident",
                                                       description="Foreign permanent resident ID card: 3 letters and "
                                                                   "12 digits, or 18 characters starting with 9.")


@strawberry.enum(description="What identified a patient already on file.")
class PatientMatch(Enum):
    NATIONAL_ID = strawberry.enum_value("NATIONAL_ID", description="The same identity document type and number.")
    PHONE = strawberry.enum_value("PHONE", description="The same phone number (main or second).")
    NAME_AND_BIRTH_DATE = strawberry.enum_value(
        "NAME_AND_BIRTH_DATE", description="The same name (case, spaces and accents aside) and the same birth date.")


@strawberry.enum(description="What a patient list can be sorted by (the id breaks ties).")
class PatientOrderField(Enum):
    NAME = strawberry.enum_value("name", description="The full name, in the database's collation.")
    UPDATED_AT = strawberry.enum_value("updated_at", description="When the file last changed.")
    CREATED_AT = strawberry.enum_value("created_at", description="When the file was opened.")


@strawberry.input(description="The order of a patient list.")
class PatientOrder:
    field: PatientOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending (the "
                                                 "default) or descending.")


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


def contacts_checked(source: PatientSource) -> None:
    """What ``Patient.contacts`` checks before it loads: the compiled path checks a page's patients so, in order,
    then loads their contacts in one batch (``contacts_of_page``)."""
    access.require_contacts(source.ctx, source.view)


async def contacts_of_page(sources: list[PatientSource], selected: frozenset[str] | None = None
                           ) -> list[list[Contact]]:
    """What ``Patient.contacts`` returns for each of ``sources`` (checked), in one statement outside the request's
    loaders (the batched completion's, ``schema.compiled.fast``); ``selected``: the Contact fields that will be
    read (GraphQL names), and so the columns loaded; None: whole rows."""
    ctx = sources[0].ctx
    columns = None if selected is None else contact_columns(selected)
    found = await contacts.of_patients(ctx, [source.view for source in sources], columns)
    return [contact_nodes(ctx, views) for views in found]


def contacts_asked(source: PatientSource) -> uuid.UUID:
    """The patient ``Patient.contacts`` asks its loader for."""
    return cast(uuid.UUID, source.view.row.id)


def node(ctx: Context, view: PatientView | None) -> Patient | None:
    return None if view is None else cast(Patient, PatientSource(ctx, view))


_COUNT = Annotated[int, strawberry.argument(description="How many, 1 to 20; BAD_USER_INPUT outside.")]


@strawberry.type(description="A patient file (customer archive). Reading it is audited field class by field class. "
                             "Each field belongs to a class of the file (PatientFieldClass; me { permissions } says "
                             "which you may read). A field of a class you may not read answers null with a FORBIDDEN "
                             "error at its path (the rest still comes); otherwise null means nothing is recorded.")
class Patient:
    view: strawberry.Private[PatientView]  # a PatientSource stands in for instances at run time

    @strawberry.field(description="The file's id; readable by whoever reaches the file.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The file's version: pass it back as `version` when you change it (a file "
                                  "changed since answers CONFLICT).")
    def version(self) -> int:
        return int(self.view.row.version)

    @strawberry.field(description="For a MERGED file: the id of the file it was merged into, where its records now "
                                  "are; null for any other status.")
    def merged_into(self, info: Info) -> strawberry.ID | None:
        access.require_class(info.context, self.view, "identity")
        target = self.view.row.merged_into_id
        return None if target is None else strawberry.ID(str(target))

    @strawberry.field(description="For a MERGED file: when it was merged.")
    def merged_at(self, info: Info) -> datetime | None:
        access.require_class(info.context, self.view, "identity")
        return self.view.row.merged_at

    # identity
    full_name: str | None = _field("Full name, as on the identity document.")
    sex: Sex | None = _field("Sex as recorded (identity); never empty on a file, so null only with a "
                                  "FORBIDDEN error.")
    birth_date: date | None = _field("Date of birth, a plain date (identity); null when not recorded.")
    occupation: str | None = _field("Occupation as the patient gave it, at most 100 characters (identity); "
                                         "null when not recorded.")
    national_id_type: NationalIdType | None = _field("Identity document type.")
    national_id: str | None = _field("Identity document number. Encrypted; decryption is audited.")
    status: PatientStatus | None = _field("Active, archived, deceased, or merged into another file (see mergedInto).")
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
    diet_preferences: str | None = _field("Diet preferences, at most 200 characters (needs class); null "
                                               "when none recorded.")
    activity_preferences: str | None = _field("Activity preferences, at most 200 characters (needs class); "
                                                   "null when none recorded.")
    special_needs: str | None = _field("Special needs (mobility, hearing...). Encrypted.")

    @strawberry.field(description="The patient's department.")
    async def department(self, info: Info) -> Department | None:
        access.require_class(info.context, self.view, "identity")
        department_id = self.view.row.department_id
        if department_id is None:
            return None
        row = await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description=f"Staff looking after the patient: at most {care_team.MAX_MEMBERS} are put on a "
                                  "team (a merge keeps both files' teams).")
    async def care_team(self, info: Info) -> list[StaffSummary] | None:
        access.require_class(info.context, self.view, "identity")
        members = await info.context.require_loaders().care_team_by_patient.load(self.view.row.id)
        return [StaffSummary.of(staff) for staff in members]

    @strawberry.field(description=f"Family members and emergency contacts: at most {contacts.MAX_CONTACTS} are added "
                                  "to a file (a merge keeps both files' contacts).")
    async def contacts(self, info: Info) -> list[Contact] | None:
        contacts_checked(PatientSource(info.context, self.view))
        return contact_nodes(info.context, await contacts.of_patient(info.context, self.view))

    # -- the patient page: each section as its own query filters it, batched across a list of patients

    @strawberry.field(description="The most recent visits you may see, newest first (1 to 20; the whole history is "
                                  "the `visits` query).")
    async def recent_visits(self, info: Info, count: _COUNT = 5
                            ) -> list[Annotated["Visit", strawberry.lazy("schema.visit")]] | None:
        return [node_of("visit", info.context, v) for v in await visits.recent_of(info.context, self.view, count)]

    @strawberry.field(description="The alerts on the file in force today (VIP, special needs, allergy...), oldest "
                                  f"first, at most {flags.IN_FORCE_LIMIT}: page through all of them with "
                                  "patientFlagsConnection (its totalCount says how many).")
    async def flags(self, info: Info) -> list[Annotated["Flag", strawberry.lazy("schema.flag")]] | None:
        return [node_of("flag", info.context, v) for v in await flags.in_force_of(info.context, self.view)]

    @strawberry.field(description="Care plans in force (draft or active), newest first, at most "
                                  f"{care_plans.IN_FORCE_LIMIT}: every plan of the file, ended ones too, pages "
                                  "through the carePlans query.")
    async def care_plans(self, info: Info) -> list[Annotated["CarePlan", strawberry.lazy("schema.care_plan")]] | None:
        return [node_of("care_plan", info.context, v) for v in await care_plans.current_of(info.context, self.view)]

    @strawberry.field(description="Open follow-up tasks, soonest due first, at most "
                                  f"{follow_ups.OPEN_LIMIT}: page through all of them with patientFollowUpTasks (its "
                                  "totalCount says how many).")
    async def open_follow_up_tasks(self, info: Info
                                   ) -> list[Annotated["FollowUpTask", strawberry.lazy("schema.follow_up")]] | None:
        return [node_of("follow_up_task", info.context, v)
                for v in await follow_ups.open_of(info.context, self.view)]

    @strawberry.field(description="Appointments still to come, soonest first (1 to 20; the rest is the "
                                  "`patientAppointments` query).")
    async def upcoming_appointments(self, info: Info, count: _COUNT = 5
                                    ) -> list[Annotated["Appointment", strawberry.lazy("schema.appointment")]] | None:
        return [node_of("appointment", info.context, v)
                for v in await appointments.upcoming_of(info.context, self.view, count)]

    @strawberry.field(description="The latest messages and logged calls, newest first (1 to 20; the rest is the "
                                  "`patientCommunications` query).")
    async def recent_communications(
            self, info: Info, count: _COUNT = 5
    ) -> list[Annotated["Communication", strawberry.lazy("schema.communication")]] | None:
        return [node_of("communication", info.context, v)
                for v in await communications.recent_of(info.context, self.view, count)]

    @strawberry.field(description="Open tickets about the patient within your ticket reach, newest first, at most "
                                  f"{tickets.OPEN_LIMIT}: every ticket about the patient pages through "
                                  "tickets(filter: {patientId}).")
    async def open_tickets(self, info: Info) -> list[Annotated["Ticket", strawberry.lazy("schema.ticket")]] | None:
        return [node_of("ticket", info.context, v) for v in await tickets.open_of(info.context, self.view)]

    @strawberry.field(description="Consents to share the file with partners, one per partner asked (contact class).")
    async def partner_consents(self, info: Info) -> list[PartnerConsent] | None:
        return [PartnerConsent.of(row) for row in await consents.of_patient(info.context, self.view)]


@strawberry.type(description="One patient of a page, with its cursor.")
class PatientEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Patient = strawberry.field(description="The patient's file.")


@strawberry.type(description="A page of patients, in the order asked for (registration order by default).")
class PatientConnection:
    edges: list[PatientEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(description="The number of patients that match the filter in your reach, "
                                                    "counted when asked for.")

    @strawberry.field(description="The patients of this page.")
    def nodes(self) -> list[Patient]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Narrow a patient list (criteria combine with AND). Phones and ID number match "
                             "exactly, without decrypting. MERGED files are left out unless status or mergedIntoId "
                             "asks for them.")
class PatientFilter:
    name_prefix: str | None = strawberry.field(default=None, description="Full names starting with this text "
                                                                         "(case-sensitive), 1-100 characters. "
                                                                         "Prefer name.")
    name: str | None = strawberry.field(default=None, description="Names containing this text anywhere, case, "
                                                                  "spaces and accents aside (\"smith\" finds John "
                                                                  "Smith); a Chinese name also by its pinyin without "
                                                                  "tones (zhangxiaoming, xiaoming), its initials (zxm) "
                                                                  "or surname and initials (zhangxm). 1-100 "
                                                                  "characters.")
    phone: str | None = strawberry.field(default=None, description="The main or second phone, in any accepted "
                                                                   "spelling (compared as E.164).")
    phone_last4: str | None = strawberry.field(default=None, description="The last 4 digits of the main or second "
                                                                         "phone: exactly 4 digits (a keyed index; "
                                                                         "see docs/security.md).")
    contact_phone: str | None = strawberry.field(default=None, description="Patients with a family or emergency "
                                                                           "contact on this phone (any accepted "
                                                                           "spelling); needs the right to read "
                                                                           "contacts.")
    national_id_type: NationalIdType | None = strawberry.field(default=None, description="The document type; give "
                                                                                        "it with nationalId.")
    national_id: str | None = strawberry.field(default=None, description="The document number; give it with "
                                                                         "nationalIdType.")
    birth_date: date | None = strawberry.field(default=None, description="Patients born on this day (identity "
                                                                         "class: a lookup by birth date).")
    segment: Segment | None = strawberry.field(default=None, description="Only patients in this segment "
                                                                      "(segments are staff-only labels).")
    tag: str | None = strawberry.field(default=None, description="Patients with this tag (compared lowercased, "
                                                                 "words joined by hyphens).")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="Only patients of this "
                                                                                "department (Department.id).")
    status: PatientStatus | None = strawberry.field(default=None, description="Patients whose file has this status.")
    merged_into_id: strawberry.ID | None = strawberry.field(default=None, description="The files merged into this "
                                                                                     "one (to review a merge).")


@strawberry.input(description="A new patient file. Only the name is required.")
class PatientCreateInput:
    full_name: str = strawberry.field(description="Full name as on the identity document, 1-100 characters.")
    sex: Sex | None = strawberry.field(default=strawberry.UNSET, metadata=NULL_KEEPS,
                                       description="Sex; UNKNOWN when left out. Never empty: null leaves it as it is.")
    birth_date: date | None = strawberry.field(default=strawberry.UNSET, description="Date of birth; not in the "
                                                                                     "future.")
    occupation: str | None = strawberry.field(default=strawberry.UNSET, description="Occupation, at most 100 "
                                                                                    "characters.")
    national_id_type: NationalIdType | None = strawberry.field(default=strawberry.UNSET,
                                                               description="The identity document's type; required "
                                                                           "with nationalId.")
    national_id: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The identity document's number, checked against its "
                                                           "type (a resident ID's check digit and birth date); "
                                                           "spaces removed, letters uppercased. Encrypted.")
    address: str | None = strawberry.field(default=strawberry.UNSET, description="Postal address, at most 300 "
                                                                                 "characters. Encrypted.")
    phone: str | None = strawberry.field(default=strawberry.UNSET,
                                         description="Main phone: +country code, or a bare 11-digit mainland mobile; "
                                                     "stored as E.164. Encrypted.")
    alt_phone: str | None = strawberry.field(default=strawberry.UNSET, description="Second phone, written like "
                                                                                   "phone. Encrypted.")
    email: str | None = strawberry.field(default=strawberry.UNSET, description="E-mail address.")
    preferred_channel: Channel | None = strawberry.field(default=strawberry.UNSET,
                                                         description="The channel to try first.")
    preferred_language: str | None = strawberry.field(default=strawberry.UNSET, metadata=NULL_KEEPS,
                                                      description="A language tag such as zh-CN (the default) or en. "
                                                                  "Never empty: null leaves it as it is.")
    contact_consent: bool | None = strawberry.field(default=strawberry.UNSET, metadata=NULL_KEEPS,
                                                    description="Whether the patient agrees to be contacted at all; "
                                                                "false when left out. Never empty: null leaves it "
                                                                "as it is.")
    contact_channels: list[Channel] | None = strawberry.field(default=strawberry.UNSET,
                                                              description="The channels the patient consented to "
                                                                          "(replaces the list).")
    contact_purposes: list[ContactPurpose] | None = strawberry.field(
        default=strawberry.UNSET, description="What the patient may be contacted for (replaces the list).")
    medical_history: str | None = strawberry.field(default=strawberry.UNSET,
                                                   description="Medical history, at most 4000 characters. Clinical, "
                                                               "encrypted.")
    diagnoses: str | None = strawberry.field(default=strawberry.UNSET, description="Diagnoses, at most 2000 "
                                                                                   "characters. Clinical, encrypted.")
    allergies: str | None = strawberry.field(default=strawberry.UNSET, description="Allergies, at most 1000 "
                                                                                   "characters. Clinical, encrypted.")
    current_medication: str | None = strawberry.field(default=strawberry.UNSET,
                                                      description="Current medication, at most 2000 characters. "
                                                                  "Clinical, encrypted.")
    diet_preferences: str | None = strawberry.field(default=strawberry.UNSET,
                                                    description="Diet preferences, at most 200 characters.")
    activity_preferences: str | None = strawberry.field(default=strawberry.UNSET,
                                                        description="Activity preferences, at most 200 characters.")
    special_needs: str | None = strawberry.field(default=strawberry.UNSET,
                                                 description="Special needs (mobility, hearing...), at most 500 "
                                                             "characters. Encrypted.")
    segments: list[Segment] | None = strawberry.field(default=strawberry.UNSET,
                                                      description="Segments (replaces the list).")
    tags: list[str] | None = strawberry.field(default=strawberry.UNSET,
                                              description="Free tags, at most 20 (replaces the list): letters, digits "
                                                          "and hyphens; lowercased, spaces become hyphens.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="The patient's department (of your "
                                                                       "institution).")


@strawberry.input(description="Changes to a patient file: fields left out stay as they are; null clears a field "
                             "that may be empty and leaves one that may not (name, sex, language, consent, status) as "
                             "it is.")
class PatientUpdateInput(PatientCreateInput):
    full_name: str | None = strawberry.field(  # type: ignore[assignment]
        default=strawberry.UNSET, metadata=NULL_KEEPS,
        description="Full name, 1-100 characters. Never empty: null leaves it as it is.")
    status: PatientStatus | None = strawberry.field(
        default=strawberry.UNSET, metadata=NULL_KEEPS,
        description="Set DECEASED or ACTIVE here; patientArchive archives. Moving an archived file's status needs the "
                    "right to archive (else FORBIDDEN; patientUnarchive takes it back). Null leaves it as it is.")


@strawberry.type(description="The new file, or the patient on file when the front desk registers someone again.")
class PatientCreatePayload:
    patient: Patient | None = strawberry.field(description="The new file; null when a returning patient was found.")
    returning_patient: Patient | None = strawberry.field(
        description="A patient on file with the same ID number, phone, or name and birth date. Pass registerAnyway "
                    "to create a new file. Null when none matched (the new file is in patient).")
    matched_on: list[PatientMatch] = strawberry.field(description="What matched the returning patient.")


@strawberry.type
class PatientQuery:
    @strawberry.field(description="One patient file. NOT_FOUND when it is missing or outside your scope (the same).")
    async def patient(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The patient's id.")]) -> Patient | None:
        # only the columns the selection reads, from the fields the generic and compiled paths both collect
        return node(info.context, await patients.get(info.context, uuid_of(id), patient_columns(info)))

    @strawberry.field(description="Patients you may see, in registration order, 1 to 100 a page.")
    async def patients(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        filter: Annotated[PatientFilter | None, strawberry.argument(
            description="Narrow the list (each criterion needs the right to read its field); null: every patient "
                        "you may see.")] = None,
        order_by: Annotated[PatientOrder | None, strawberry.argument(
            description="The order; null: registration order. A cursor is valid only with the order it came "
                        "from.")] = None,
    ) -> PatientConnection:
        where = PatientWhere(**provided(filter)) if filter is not None else PatientWhere()
        order = None if order_by is None else patients.PatientOrder(str(order_by.field.value),
                                                                    str(order_by.direction.value))
        found = await patients.page(info.context, first=first, after=after, where=where, order=order,
                                    count=asks_total(info), columns=patient_columns(info))
        edges = [PatientEdge(cursor=cursor, node=cast(Patient, PatientSource(info.context, view)))
                 for cursor, view in found.page.items]
        return PatientConnection(edges=edges, page_info=PageInfo.of(found.page), total_count=found.total_count or 0)


_PATIENT_ID = Annotated[strawberry.ID, strawberry.argument(description="The patient's id (NOT_FOUND when missing "
                                                                        "or outside your reach).")]


@strawberry.type
class PatientMutation:
    @strawberry.mutation(description="Register a patient. A patient already on file (same ID number, phone, or "
                                     "name and birth date) is "
                                     "returned as returningPatient instead, unless registerAnyway is true.")
    async def patient_create(
        self, info: Info, input: Annotated[PatientCreateInput, strawberry.argument(description="The new file.")],
        register_anyway: Annotated[bool, strawberry.argument(
            description="True: create a new file even when a patient with the same ID number, phone, or name and "
                        "birth date is on file "
                        "(after checking returningPatient).")] = False,
    ) -> PatientCreatePayload | None:
        result = await patients.create(info.context, provided(input), register_anyway=register_anyway)
        ctx = info.context
        return PatientCreatePayload(patient=node(ctx, result.patient),
                                    returning_patient=node(ctx, result.returning_patient),
                                    matched_on=[PatientMatch(m) for m in result.matched_on])

    @strawberry.mutation(description="Change a patient file; each field class changed needs its own permission.")
    async def patient_update(
        self, info: Info, id: _PATIENT_ID,
        input: Annotated[PatientUpdateInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> Patient | None:
        return node(info.context, await patients.update(info.context, uuid_of(id), provided(input), version,
                                                        returned=selected_fields(info)))

    @strawberry.mutation(description="Archive a patient file. Nothing is deleted. Pass the version you read: a stale "
                                     "one answers CONFLICT. Refused (CONFLICT contracts_running, nothing written) "
                                     "while the client has a contract not ended (DRAFT, SENT, ACTIVE, SUSPENDED): "
                                     "admins or finance end it first. A file archived already answers "
                                     "BAD_USER_INPUT (illegal_transition).")
    async def patient_archive(self, info: Info, id: _PATIENT_ID, version: Version = None) -> Patient | None:
        return node(info.context, await patients.archive(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Take an archived file back: ACTIVE again, with the right to archive (as "
                                     "patientArchive). Nothing the archive cancelled or ended comes back "
                                     "(appointments, follow-up tasks, partner grants). A file not archived answers "
                                     "BAD_USER_INPUT. Pass the version you read: a stale one answers CONFLICT.")
    async def patient_unarchive(self, info: Info, id: _PATIENT_ID, version: Version = None) -> Patient | None:
        return node(info.context, await patients.unarchive(info.context, uuid_of(id), version))
