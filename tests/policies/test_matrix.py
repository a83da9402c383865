"""Role x operation matrix: every role against every operation the policy guards.

The expected outcome of each case is derived from the reviewed policy (``policy.csv`` through
``Guard``) and the row reach of ``policies.scopes`` (``ROLE_REACH`` for patients, and for the records
of the care journey through their patient; ``TICKET_REACH`` for tickets); nothing here copies a rule
by hand. A denied case must answer FORBIDDEN (NOT_FOUND when the role does not reach the patient or
ticket), write nothing, and leave exactly one denied audit event.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import graphql
import pytest
from tortoise import connections

from core.principal import ROLES
from models import (
    Appointment,
    AuditEvent,
    BusinessCalendar,
    Campaign,
    CarePlan,
    CarePlanActivity,
    CareTeamMember,
    Communication,
    Contact,
    Contract,
    ContractItem,
    ContractSignature,
    ContractVersion,
    Department,
    DepartmentMembership,
    EmergencyAccess,
    Flag,
    FollowUpAttempt,
    FollowUpRule,
    FollowUpTask,
    ImprovementItem,
    ImprovementTicket,
    MessageGateway,
    MessageTemplate,
    MessagingSettings,
    Notification,
    Partner,
    PartnerClient,
    PartnerConsent,
    PartnerGrant,
    PasswordReset,
    Patient,
    PatientAccount,
    PatientInvitation,
    Questionnaire,
    QuestionnaireResponse,
    ResponseAnswer,
    RoleAssignment,
    RoleGrant,
    Schedule,
    ScheduleException,
    ServiceItem,
    ServiceItemPrice,
    Session,
    SlaPolicy,
    Staff,
    SurveyInvitation,
    SurveySettings,
    SurveyTrigger,
    Ticket,
    TicketEvent,
    Visit,
    VisitCode,
    VisitStaff,
)
from policies.fields import CLINICAL, FLAG_DETAIL_CLASS, IDENTITY, PATIENT_CLASSES
from policies.guard import Guard
from policies.scopes import ROLE_REACH, TICKET_REACH, Reach
from resolvers import institution as institutions
from tests.conftest import BACKEND
from tests.contracts import draft, draft_input, item_input, make_item, today
from tests.factories import PASSWORD, Tenant, make_patient

GUARD = Guard()
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
TENANT_TABLES = (Patient, Contact, CareTeamMember, Staff, RoleAssignment, DepartmentMembership, Department, Session,
                 EmergencyAccess, Ticket, TicketEvent, SlaPolicy, BusinessCalendar, Notification, ImprovementItem,
                 ImprovementTicket, Partner, PartnerClient, PartnerConsent, PartnerGrant, PatientInvitation,
                 PatientAccount, RoleGrant, Visit, VisitCode, VisitStaff, ServiceItem, CarePlan, CarePlanActivity,
                 FollowUpRule, FollowUpTask, FollowUpAttempt, Flag, Schedule, ScheduleException, MessageTemplate,
                 MessagingSettings, MessageGateway, Communication, Appointment, Campaign, Questionnaire,
                 SurveySettings, SurveyTrigger, SurveyInvitation, QuestionnaireResponse, ResponseAnswer,
                 ServiceItemPrice, Contract, ContractVersion, ContractItem, ContractSignature,
                 PasswordReset)

# What the matrix patient holds, one field per class (the nurse registers it: she may write every class).
PATIENT_VALUES = {
    "fullName": "Matrix Patient",
    "phone": "+8613800138000",
    "diagnoses": "Caries on 36",
    "specialNeeds": "Wheelchair user",
    "tags": ["matrix-tag"],
}
CLASS_FIELD = {"identity": "fullName", "contact": "phone", "clinical": "diagnoses", "needs": "specialNeeds",
               "internal": "tags"}
UPDATE_INPUT: dict[str, dict[str, Any]] = {
    "identity": {"fullName": "Renamed Patient"},
    "contact": {"email": "renamed@example.com"},
    "clinical": {"diagnoses": "Pulpitis"},
    "needs": {"dietPreferences": "Vegetarian"},
    "internal": {"tags": ["renamed-tag"]},
}


# -- what the policy says ----------------------------------------------------------------------


def allows(role: str, institution_id: uuid.UUID, obj: str, act: str) -> bool:
    return GUARD.role_allows(role, institution_id, obj, act)


def reach(role: str, institution_id: uuid.UUID) -> frozenset[Reach]:
    """The rows a role reaches: its reach, if the policy lets it read any patient class at all."""
    if any(allows(role, institution_id, f"patient.{cls}", "read") for cls in PATIENT_CLASSES):
        return ROLE_REACH.get(role, frozenset())
    return frozenset()


def reaches_department_a(role: str, institution_id: uuid.UUID) -> bool:
    """Nurse, doctor and department head of the factory belong to department A."""
    return bool(reach(role, institution_id) & {Reach.INSTITUTION, Reach.DEPARTMENT})


def reaches_department_b(role: str, institution_id: uuid.UUID) -> bool:
    """No account of the factory belongs to department B."""
    return Reach.INSTITUTION in reach(role, institution_id)


# -- the operations --------------------------------------------------------------------------

Denial = tuple[str, str]  # (error code, audit reason)


class Lookup(Protocol):
    """What an operation looks up once its permission is checked, and how the caller stands to it."""

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        """Put the caller in its place (after ``prepare``, before the call)."""

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None: ...


@dataclass(frozen=True)
class Op:
    name: str
    root: str  # the top-level field
    query: str
    prepare: Callable[[Tenant], Awaitable[dict[str, Any]]]
    requires: tuple[tuple[str, str], ...]  # every (object, action) the operation needs
    writes: bool = True
    row_scoped: bool = False  # finds the patient in the caller's scope before checking the permission
    field: str | None = None  # a field read: denied as a null field with FORBIDDEN (by ``requires``, or by the
    # lookup when the field belongs to a record of the journey: then ``requires`` guards the operation)
    expect: Callable[[Any], None] | None = None  # checks the data of an allowed reply
    lookup: Lookup | None = None  # found after the permission check: a ticket, its patient, a department
    # rights without which an allowed reply withholds a part, the refusal recorded (forbidden_field) and no error
    withheld_without: tuple[tuple[str, str], ...] = ()

    def allowed(self, role: str, institution_id: uuid.UUID) -> bool:
        return self.denial(role, institution_id) is None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        """(error code, audit reason) of a denied case; None when the role is allowed."""
        if self.row_scoped and not reaches_department_a(role, institution_id):
            return "NOT_FOUND", "not_found"
        if not all(allows(role, institution_id, obj, act) for obj, act in self.requires):
            return "FORBIDDEN", "forbidden_field" if self.field and self.lookup is None else "forbidden"
        return None if self.lookup is None else self.lookup.denial(role, institution_id)


async def matrix_patient(tenant: Tenant) -> uuid.UUID:
    """A patient of department A with a value in every class."""
    return await make_patient(tenant, "nurse", **PATIENT_VALUES)


async def patient_of_a(tenant: Tenant) -> uuid.UUID:
    """A file of department A registered by the front desk: on no one's care team."""
    return await make_patient(tenant, "front_desk")


async def patient_of_b(tenant: Tenant) -> uuid.UUID:
    """Registered by the front desk: a nurse registering it would join its care team."""
    return await make_patient(tenant, "front_desk", departmentId=str(tenant.departments["B"].id))


CARE_ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"
CARE_UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"


CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id name phone }
}"""


async def matrix_contact(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID]:
    pid = await matrix_patient(tenant)
    reply = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid),
                              input={"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"})
    assert reply.errors == [], reply.errors
    return pid, uuid.UUID(reply.data["contactCreate"]["id"])


async def with_patient(tenant: Tenant) -> dict[str, Any]:
    return {"id": str(await matrix_patient(tenant))}


async def with_archived_patient(tenant: Tenant) -> dict[str, Any]:
    """A file of department A, archived (by the front desk): to take back."""
    pid = await matrix_patient(tenant)
    reply = await tenant.call("front_desk", "mutation($id: ID!) { patientArchive(id: $id) { id } }", id=str(pid))
    assert reply.errors == [], reply.errors
    return {"id": str(pid)}


async def with_two_files(tenant: Tenant) -> dict[str, Any]:
    """Two files of department A, one to merge into the other."""
    return {"s": str(await matrix_patient(tenant)), "d": str(await make_patient(tenant, "front_desk"))}


async def with_contact(tenant: Tenant) -> dict[str, Any]:
    _, contact_id = await matrix_contact(tenant)
    return {"id": str(contact_id)}


async def with_care_team_member(tenant: Tenant) -> dict[str, Any]:
    pid = await patient_of_a(tenant)
    variables = {"pid": str(pid), "sid": str(tenant.staff_ids["nurse"])}
    reply = await tenant.call("admin", CARE_ASSIGN, **variables)
    assert reply.data == {"careTeamAssign": True}, reply.body
    return variables


async def with_patient_a_and_nurse(tenant: Tenant) -> dict[str, Any]:
    """A file of department A, whose care team the department head sets (no one's file: a nurse registering it would
    join its team)."""
    return {"pid": str(await patient_of_a(tenant)), "sid": str(tenant.staff_ids["nurse"])}


async def with_patient_of_b(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str(await patient_of_b(tenant))}


async def with_role_grant(tenant: Tenant) -> dict[str, Any]:
    """A role that reads patient data, granted to the nurse by the admin: in the review queue."""
    reply = await tenant.call("admin", "mutation($id: ID!) { roleAssign(staffId: $id, role: FRONT_DESK) { roles } }",
                              id=str(tenant.staff_ids["nurse"]))
    assert reply.errors == [], reply.errors
    (grant,) = await RoleGrant.filter(institution_id=tenant.id)
    return {"id": str(grant.id)}


async def with_emergency_access(tenant: Tenant) -> dict[str, Any]:
    patient = str(await patient_of_b(tenant))
    reply = await tenant.call("nurse", "mutation($pid: ID!) { breakGlass(patientId: $pid, reason: "
                                       "\"Unconscious, allergies needed\") { id } }", pid=patient)
    assert reply.errors == [], reply.errors
    return {"id": reply.data["breakGlass"]["id"]}


async def with_nurse(tenant: Tenant) -> dict[str, Any]:
    return {"id": str(tenant.staff_ids["nurse"])}


async def nothing(tenant: Tenant) -> dict[str, Any]:
    return {}


def create_op(cls: str) -> Op:
    """Registering with a field of a class: besides ``patient: create``, writing any class but identity."""
    async def prepare(tenant: Tenant) -> dict[str, Any]:
        fields = {"fullName": "New Patient", "departmentId": str(tenant.departments["A"].id)}
        return {"input": {**fields, **UPDATE_INPUT[cls]}}

    requires = (("patient", "create"),) + ((f"patient.{cls}", "update"),) * (cls != "identity")
    return Op(
        name=f"patientCreate.{cls}", root="patientCreate",
        query="mutation($input: PatientCreateInput!) { patientCreate(input: $input) { patient { id } } }",
        prepare=prepare, requires=requires,
    )


def update_op(cls: str) -> Op:
    async def prepare(tenant: Tenant) -> dict[str, Any]:
        return {"id": str(await matrix_patient(tenant)), "input": UPDATE_INPUT[cls]}

    return Op(
        name=f"patientUpdate.{cls}", root="patientUpdate",
        query="mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }",
        prepare=prepare, requires=((f"patient.{cls}", "update"),), row_scoped=True,
    )


def read_op(cls: str) -> Op:
    field = CLASS_FIELD[cls]

    def expect(data: Any) -> None:
        assert data["patient"][field] == PATIENT_VALUES[field]

    return Op(
        name=f"patient.{cls}", root="patient", query=f"query($id: ID!) {{ patient(id: $id) {{ id {field} }} }}",
        prepare=with_patient, requires=((f"patient.{cls}", "read"),), writes=False, row_scoped=True, field=field,
        expect=expect,
    )


def expect_contacts(data: Any) -> None:
    assert data["patient"]["contacts"] == [{"name": "Wang Fang", "phone": "+8613900139000"}]


async def with_patient_and_contact(tenant: Tenant) -> dict[str, Any]:
    pid, _ = await matrix_contact(tenant)
    return {"id": str(pid)}


def expect_departments(data: Any) -> None:
    assert [d["name"] for d in data["departments"]] == ["Department A", "Department B"]


def expect_department_page(data: Any) -> None:
    expect_departments({"departments": data["departmentsConnection"]["nodes"]})


async def new_contact(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str(await matrix_patient(tenant)), "input": {"name": "Li Na", "relationship": "CHILD"}}


async def contact_renamed(tenant: Tenant) -> dict[str, Any]:
    return {**await with_contact(tenant), "input": {"name": "Wang Li"}}


async def staff_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"email": f"new.{uuid.uuid4().hex[:8]}@careloop.test", "name": "New Nurse",
                      "password": PASSWORD, "roles": ["NURSE"]}}


async def nurse_renamed(tenant: Tenant) -> dict[str, Any]:
    return {**await with_nurse(tenant), "input": {"name": "Renamed Nurse"}}


# -- tickets -----------------------------------------------------------------------------------

TICKET_OPENER = "support_agent"  # opens the matrix tickets, so owns them unless it hands them over
TICKET_SUBJECT = "Matrix ticket"
INTERNAL_NOTE = "Patient sounded upset"
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
TICKET_ASSIGN = "mutation($id: ID!, $sid: ID) { ticketAssign(id: $id, assigneeId: $sid) { id } }"
TICKET_HAND_TO_STAFF = "mutation($id: ID!, $sid: ID!) { ticketHandover(id: $id, toStaffId: $sid) { id } }"
TICKET_HAND_TO_DEPARTMENT = "mutation($id: ID!, $did: ID!) { ticketHandover(id: $id, toDepartmentId: $did) { id } }"
TICKET_MOVE = """mutation($id: ID!, $to: TicketStatus!, $resolution: String) {
  ticketTransition(id: $id, to: $to, resolution: $resolution) { id status }
}"""
TICKET_REPLY = """mutation($id: ID!, $body: String!, $internal: Boolean!) {
  ticketReply(id: $id, body: $body, internal: $internal) { id status }
}"""
TICKET_READ = "query($id: ID!) { ticket(id: $id) { id subject status } }"
TICKET_TIMELINE = "query($id: ID!) { ticket(id: $id) { id timeline { edges { node { kind internal note } } } } }"
TICKET_LISTS = {"tickets": "{ tickets(first: 100) { nodes { id } } }",
                "ticketQueue": "{ ticketQueue(first: 100) { nodes { id } } }"}


def ticket_reach(role: str, institution_id: uuid.UUID) -> frozenset[Reach]:
    """The tickets a role reaches besides those it owns or works on: its reach, if it may read tickets."""
    if allows(role, institution_id, "ticket", "read"):
        return TICKET_REACH.get(role, frozenset())
    return frozenset()


def supervises(role: str, institution_id: uuid.UUID, department: str) -> bool:
    """Whether a role reaches a department's tickets whoever owns them, and so may assign them or hand them
    over. As for patients: the factory puts every role with department reach in department A, none in B."""
    through = {Reach.INSTITUTION, Reach.DEPARTMENT} if department == "A" else {Reach.INSTITUTION}
    return bool(ticket_reach(role, institution_id) & through)


def new_ticket_input(patient_id: uuid.UUID) -> dict[str, Any]:
    return {"channel": "HOTLINE", "category": "COMPLAINT", "subject": TICKET_SUBJECT, "patientId": str(patient_id)}


async def as_opener(tenant: Tenant, query: str, **variables: Any) -> None:
    reply = await tenant.call(TICKET_OPENER, query, **variables)
    assert reply.errors == [], reply.errors


async def open_ticket(tenant: Tenant, department: str = "A") -> uuid.UUID:
    """A ticket of the department (its patient's), owned by its opener and assigned to nobody."""
    patient_id = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
    reply = await tenant.call(TICKET_OPENER, TICKET_CREATE, input=new_ticket_input(patient_id))
    assert reply.errors == [], reply.errors
    return uuid.UUID(reply.data["ticketCreate"]["id"])


class Stand(StrEnum):
    """How the caller stands to the matrix ticket, besides the reach of its roles."""

    STRANGER = "stranger"  # neither owner nor assignee (unless it is the opener: then it owns the ticket)
    ASSIGNEE = "assignee"  # the opener assigned the ticket to the caller
    OWNER = "owner"  # the opener handed the ticket over to the caller


def placed(role: str, institution_id: uuid.UUID, stand: Stand) -> Stand:
    """Where the caller ends up: tickets go only to people who work on them (may read them)."""
    return stand if allows(role, institution_id, "ticket", "read") else Stand.STRANGER


async def place(tenant: Tenant, ticket_id: uuid.UUID, role: str, stand: Stand) -> None:
    staff_id = str(tenant.staff_ids[role])
    stand = placed(role, tenant.id, stand)
    if stand is Stand.ASSIGNEE:
        await as_opener(tenant, TICKET_ASSIGN, id=str(ticket_id), sid=staff_id)
    elif stand is Stand.OWNER:
        await as_opener(tenant, TICKET_HAND_TO_STAFF, id=str(ticket_id), sid=staff_id)


class Must(StrEnum):
    """What an operation asks of the caller once it found the ticket; the value is the audit reason."""

    OWN_OR_SUPERVISE = "not_owner"  # hand over: the owner, or whoever reaches the ticket's department
    SUPERVISE = "outside_department"  # assign: whoever reaches the ticket's department


@dataclass(frozen=True)
class TicketLookup:
    """A ticket of ``department``, found in the caller's ticket reach: its roles' reach, or owning or working on it."""

    stand: Stand
    department: str
    must: Must | None = None

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        await place(tenant, uuid.UUID(variables["id"]), role, self.stand)

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        supervising = supervises(role, institution_id, self.department)
        stand = placed(role, institution_id, self.stand)
        owns = stand is Stand.OWNER or role == TICKET_OPENER
        if not (supervising or owns or stand is Stand.ASSIGNEE):
            return "NOT_FOUND", "not_found"
        if (self.must is Must.OWN_OR_SUPERVISE and not (owns or supervising)) or (
                self.must is Must.SUPERVISE and not supervising):
            return "FORBIDDEN", self.must.value
        return None


@dataclass(frozen=True)
class PatientLookup:
    """A patient named by the input, found in the caller's patient scope."""

    reached: Callable[[str, uuid.UUID], bool]

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return None if self.reached(role, institution_id) else ("NOT_FOUND", "not_found")


async def new_ticket(tenant: Tenant) -> dict[str, Any]:
    return {"input": new_ticket_input(await matrix_patient(tenant))}


async def new_ticket_of_b(tenant: Tenant) -> dict[str, Any]:
    return {"input": new_ticket_input(await patient_of_b(tenant))}


async def with_ticket_on_file(tenant: Tenant) -> dict[str, Any]:
    """For the lists: a ticket to show (which role sees which is tested below), no variables."""
    await open_ticket(tenant)
    return {}


def expect_status(root: str, status: str) -> Callable[[Any], None]:
    return lambda data: _equal(data[root]["status"], status)


def expect_internal_note(data: Any) -> None:
    entries = [(e["node"]["internal"], e["node"]["note"]) for e in data["ticket"]["timeline"]["edges"]]
    assert (True, INTERNAL_NOTE) in entries


def ticket_ops(stand: Stand, department: str, only: frozenset[str] | None = None) -> tuple[Op, ...]:
    """The operations on one ticket of ``department`` (``only`` those named so), the caller standing to it
    as ``stand`` says."""
    suffix = "".join(("" if department == "A" else f".of_{department.lower()}",
                      "" if stand is Stand.STRANGER else f".{stand}"))
    other_department = "B" if department == "A" else "A"

    async def ticket(tenant: Tenant) -> dict[str, Any]:
        return {"id": str(await open_ticket(tenant, department))}

    async def with_internal_note(tenant: Tenant) -> dict[str, Any]:
        variables = await ticket(tenant)
        await as_opener(tenant, TICKET_REPLY, body=INTERNAL_NOTE, internal=True, **variables)
        return variables

    async def resolved(tenant: Tenant) -> dict[str, Any]:
        variables = await ticket(tenant)
        for to in ("ACKNOWLEDGED", "INVESTIGATING", "RESOLVED"):
            await as_opener(tenant, TICKET_MOVE, to=to, resolution="Apologised.", **variables)
        return {**variables, "feedback": "Satisfied."}

    async def to_acknowledge(tenant: Tenant) -> dict[str, Any]:
        return {**await ticket(tenant), "to": "ACKNOWLEDGED"}

    async def to_answer(tenant: Tenant) -> dict[str, Any]:
        return {**await ticket(tenant), "body": "We are looking into it.", "internal": False}

    async def to_classify(tenant: Tenant) -> dict[str, Any]:
        return {**await ticket(tenant), "input": {"subcategory": "Waiting time"}}

    async def to_hand_over(tenant: Tenant) -> dict[str, Any]:
        return {**await ticket(tenant), "did": str(tenant.departments[other_department].id)}

    async def to_assign(tenant: Tenant) -> dict[str, Any]:
        """To someone of department A: a department head assigns within the ticket's department."""
        return {**await ticket(tenant), "sid": str(tenant.staff_ids["nurse"])}

    find = TicketLookup(stand, department)
    read, update, assign = (("ticket", "read"),), (("ticket", "update"),), (("ticket", "assign"),)
    ops = (
        Op("ticket", "ticket", TICKET_READ, ticket, read, writes=False, lookup=find,
           expect=lambda data: _equal(data["ticket"]["subject"], TICKET_SUBJECT)),
        Op("ticket.timeline", "ticket", TICKET_TIMELINE, with_internal_note,
           (*read, ("ticket.internal", "read")), writes=False, lookup=find, expect=expect_internal_note),
        Op("ticketTransition", "ticketTransition", TICKET_MOVE, to_acknowledge, update,
           lookup=find, expect=expect_status("ticketTransition", "ACKNOWLEDGED")),
        Op("ticketReply", "ticketReply", TICKET_REPLY, to_answer, update, lookup=find,
           expect=expect_status("ticketReply", "ACKNOWLEDGED")),
        Op("ticketRecordFeedback", "ticketRecordFeedback",
           "mutation($id: ID!, $feedback: String!) { ticketRecordFeedback(id: $id, feedback: $feedback) { status } }",
           resolved, update, lookup=find, expect=expect_status("ticketRecordFeedback", "FEEDBACK_RECORDED")),
        Op("ticketLogContactAttempt", "ticketLogContactAttempt",
           "mutation($id: ID!) { ticketLogContactAttempt(id: $id, reached: false) { id } }",
           ticket, update, lookup=find),
        Op("ticketUpdate", "ticketUpdate",
           "mutation($id: ID!, $input: TicketUpdateInput!) { ticketUpdate(id: $id, input: $input) { subcategory } }",
           to_classify, update, lookup=find,
           expect=lambda data: _equal(data["ticketUpdate"]["subcategory"], "Waiting time")),
        Op("ticketHandover", "ticketHandover", TICKET_HAND_TO_DEPARTMENT, to_hand_over, assign,
           lookup=TicketLookup(stand, department, Must.OWN_OR_SUPERVISE)),
        Op("ticketAssign", "ticketAssign", TICKET_ASSIGN, to_assign, assign,
           lookup=TicketLookup(stand, department, Must.SUPERVISE)),
    )
    return tuple(replace(op, name=op.name + suffix) for op in ops if only is None or op.name in only)


# A ticket of department B: a department head (of A) reaches it only as its owner or assignee, hands it
# over only as its owner and never assigns it. The lookup, one write, and the two operations that check more.
DEPARTMENT_B_OPS = frozenset({"ticket", "ticketTransition", "ticketHandover", "ticketAssign"})


CALENDAR = {"week": [{"weekday": day, "intervals": [{"start": "09:00:00", "end": "17:00:00"}]} for day in range(1, 6)],
            "holidays": ["2030-01-01"]}


async def calendar_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": CALENDAR}


def expect_levels(root: str) -> Callable[[Any], None]:
    return lambda data: _equal([level["level"] for level in data[root]["levels"]], [1, 2, 3])


TICKET_AND_SLA_OPS: tuple[Op, ...] = (
    Op("ticketCreate", "ticketCreate", TICKET_CREATE, new_ticket, (("ticket", "create"),),
       lookup=PatientLookup(reaches_department_a)),
    Op("ticketCreate.of_b", "ticketCreate", TICKET_CREATE, new_ticket_of_b, (("ticket", "create"),),
       lookup=PatientLookup(reaches_department_b)),
    *(op for stand in Stand for op in ticket_ops(stand, "A")),
    *(op for stand in Stand for op in ticket_ops(stand, "B", DEPARTMENT_B_OPS)),
    *(Op(root, root, query, with_ticket_on_file, (("ticket", "read"),), writes=False)
      for root, query in TICKET_LISTS.items()),
    Op("slaSettings", "slaSettings", "{ slaSettings { levels { level } calendar { timeZone } } }", nothing,
       (("sla", "read"),), writes=False, expect=expect_levels("slaSettings")),
    Op("slaLevelSet", "slaLevelSet", """mutation {
  slaLevelSet(level: 2, firstResponseMinutes: 60, resolutionMinutes: 480, clock: BUSINESS) { levels { level } }
}""", nothing, (("sla", "update"),), expect=expect_levels("slaLevelSet")),
    Op("businessCalendarSet", "businessCalendarSet",
       "mutation($input: BusinessCalendarInput!) { businessCalendarSet(input: $input) { levels { level } } }",
       calendar_input, (("sla", "update"),), expect=expect_levels("businessCalendarSet")),
)


# -- ticket reports and the improvement list ---------------------------------------------------

IMPROVEMENT_KEEPER = "support_agent"  # puts the matrix items on the list, whatever their department
IMPROVEMENT_CREATE = "mutation($input: ImprovementCreateInput!) { improvementCreate(input: $input) { id } }"
IMPROVEMENT_ITEMS = "{ improvementItems(first: 100) { edges { node { id } } } }"


@dataclass(frozen=True)
class DepartmentLookup:
    """A department's report or improvement item: only the roles reaching the department's tickets get it."""

    department: str
    denied: Denial = ("FORBIDDEN", "outside_department")

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return None if supervises(role, institution_id, self.department) else self.denied


def improvement_input(tenant: Tenant, department: str, deadline: str = "2030-01-01") -> dict[str, Any]:
    return {"problem": "Long waits at the reception desk", "departmentId": str(tenant.departments[department].id),
            "deadline": deadline}


async def improvement_item(tenant: Tenant, department: str, deadline: str = "2030-01-01") -> str:
    reply = await tenant.call(IMPROVEMENT_KEEPER, IMPROVEMENT_CREATE,
                              input=improvement_input(tenant, department, deadline))
    assert reply.errors == [], reply.errors
    return str(reply.data["improvementCreate"]["id"])


def department_ops(department: str) -> tuple[Op, ...]:
    """The reports and the improvement items of one department."""
    suffix = "" if department == "A" else f".of_{department.lower()}"

    async def pareto(tenant: Tenant) -> dict[str, Any]:
        return {"from": "2020-01-01", "to": "2020-12-31", "dep": str(tenant.departments[department].id)}

    async def report(tenant: Tenant) -> dict[str, Any]:
        return {"month": "2020-01", "dep": str(tenant.departments[department].id)}

    async def new_item(tenant: Tenant) -> dict[str, Any]:
        return {"input": improvement_input(tenant, department)}

    async def item_to_start(tenant: Tenant) -> dict[str, Any]:
        return {"id": await improvement_item(tenant, department), "input": {"status": "IN_PROGRESS"}}

    reaches = DepartmentLookup(department)
    return (
        Op(f"complaintPareto{suffix}", "complaintPareto", """query($from: Date!, $to: Date!, $dep: ID) {
  complaintPareto(from: $from, to: $to, departmentId: $dep) { cause complaints }
}""", pareto, (("ticket_report", "read"),), writes=False, lookup=reaches,
           expect=lambda data: _equal(data["complaintPareto"], [])),
        Op(f"ticketReport{suffix}", "ticketReport",
           "query($month: String!, $dep: ID!) { ticketReport(month: $month, departmentId: $dep) { month tickets } }",
           report, (("ticket_report", "read"),), writes=False, lookup=reaches,
           expect=lambda data: _equal(data["ticketReport"], {"month": "2020-01", "tickets": 0})),
        Op(f"improvementCreate{suffix}", "improvementCreate", IMPROVEMENT_CREATE, new_item,
           (("improvement", "create"),), lookup=reaches),
        Op(f"improvementUpdate{suffix}", "improvementUpdate",
           "mutation($id: ID!, $input: ImprovementUpdateInput!) {"
           " improvementUpdate(id: $id, input: $input) { status } }",
           item_to_start, (("improvement", "update"),),
           lookup=DepartmentLookup(department, ("NOT_FOUND", "not_found")),
           expect=lambda data: _equal(data["improvementUpdate"]["status"], "IN_PROGRESS")),
    )


REPORT_AND_IMPROVEMENT_OPS: tuple[Op, ...] = (
    *department_ops("A"),
    *department_ops("B"),
    Op("improvementItems", "improvementItems", IMPROVEMENT_ITEMS, nothing, (("improvement", "read"),), writes=False),
)


# -- partners, grants, consent, patients' accounts -----------------------------------------------

GRANT_CREATE = """mutation($input: PartnerGrantCreateInput!) { partnerGrantCreate(input: $input) { id standing } }"""
CONSENT_SET = """mutation($pid: ID!, $partner: ID!, $granted: Boolean!) {
  partnerConsentSet(patientId: $pid, partnerId: $partner, granted: $granted) { granted }
}"""
GRANT_EXPIRES = (datetime.now(UTC) + timedelta(days=90)).isoformat()  # a grant lasts at most a year


async def make_partner(tenant: Tenant) -> str:
    reply = await tenant.call("admin", "mutation { partnerCreate(name: \"Matrix Home Care\") { id } }")
    assert reply.errors == [], reply.errors
    return str(reply.data["partnerCreate"]["id"])


async def with_partner(tenant: Tenant) -> dict[str, Any]:
    return {"id": await make_partner(tenant)}


async def new_client(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"partnerId": await make_partner(tenant), "name": "Matrix app",
                      "scopes": ["patient.identity:read"]}}


async def with_client(tenant: Tenant) -> dict[str, Any]:
    variables = await new_client(tenant)
    reply = await tenant.call("admin", PARTNER_CLIENT_CREATE, **variables)
    assert reply.errors == [], reply.errors
    return {"id": reply.data["partnerClientCreate"]["client"]["id"]}


async def consenting_patient(tenant: Tenant) -> dict[str, Any]:
    """A patient of department A who consented to share with a partner (recorded by the front desk)."""
    pid, partner = str(await matrix_patient(tenant)), await make_partner(tenant)
    reply = await tenant.call("front_desk", CONSENT_SET, pid=pid, partner=partner, granted=True)
    assert reply.errors == [], reply.errors
    return {"input": {"partnerId": partner, "patientId": pid, "purpose": "Home care visits",
                      "expiresAt": GRANT_EXPIRES}}


async def with_grant(tenant: Tenant) -> dict[str, Any]:
    variables = await consenting_patient(tenant)
    reply = await tenant.call("front_desk", GRANT_CREATE, **variables)
    assert reply.errors == [], reply.errors
    return {"id": reply.data["partnerGrantCreate"]["id"], "pid": variables["input"]["patientId"]}


async def patient_and_partner(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str(await matrix_patient(tenant)), "partner": await make_partner(tenant), "granted": True}


async def with_patient_account(tenant: Tenant) -> dict[str, Any]:
    pid = str(await matrix_patient(tenant))
    reply = await tenant.call("front_desk", "mutation($pid: ID!) { patientInvite(patientId: $pid) { code } }",
                              pid=pid)
    assert reply.errors == [], reply.errors
    activate = await tenant.call(None, "mutation($code: String!, $email: String!) { patientAccountActivate("
                                       "code: $code, email: $email, password: \"a long patient secret\") { token } }",
                                 code=reply.data["patientInvite"]["code"], email=f"{uuid.uuid4().hex}@example.com")
    assert activate.errors == [], activate.errors
    return {"pid": pid}


PARTNER_CLIENT_CREATE = """mutation($input: PartnerClientCreateInput!) {
  partnerClientCreate(input: $input) { client { id } clientSecret }
}"""
A_PERIOD = "from: \"2020-01-01T00:00:00Z\", to: \"2025-01-01T00:00:00Z\""

class PartnersDoor:
    """Whatever a staff member holds, the partners' door refuses them (after the permission check)."""

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return "FORBIDDEN", "forbidden"


async def _partner_report(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"patientId": str(await matrix_patient(tenant)), "category": "COMPLAINT", "subject": "Pain"}}


PARTNER_AND_PATIENT_OPS: tuple[Op, ...] = (
    Op("partnerCreate", "partnerCreate", "mutation { partnerCreate(name: \"Home Care\") { id } }", nothing,
       (("partner", "create"),)),
    Op("partnerSetActive", "partnerSetActive",
       "mutation($id: ID!) { partnerSetActive(id: $id, active: false) { id active } }", with_partner,
       (("partner", "update"),)),
    Op("partnerClientCreate", "partnerClientCreate", PARTNER_CLIENT_CREATE, new_client, (("partner", "update"),)),
    Op("partnerClientRevoke", "partnerClientRevoke", "mutation($id: ID!) { partnerClientRevoke(id: $id) { id } }",
       with_client, (("partner", "update"),)),
    Op("partners", "partners", "{ partners { edges { node { name } } } }", with_partner, (("partner", "read"),),
       writes=False, expect=lambda data: _equal(data["partners"]["edges"], [{"node": {"name": "Matrix Home Care"}}])),
    Op("partnerGrantCreate", "partnerGrantCreate", GRANT_CREATE, consenting_patient, (("partner_grant", "create"),)),
    Op("partnerGrantRevoke", "partnerGrantRevoke",
       "mutation($id: ID!) { partnerGrantRevoke(id: $id) { id standing } }",
       lambda tenant: _only(with_grant(tenant), "id"), (("partner_grant", "delete"),)),
    Op("partnerGrants", "partnerGrants",
       "query($pid: ID!) { partnerGrants(patientId: $pid) { edges { node { purpose standing } } } }",
       lambda tenant: _only(with_grant(tenant), "pid"), (("partner_grant", "read"),), writes=False,
       expect=lambda data: _equal(data["partnerGrants"]["edges"],
                                  [{"node": {"purpose": "Home care visits", "standing": True}}])),
    Op("partnerConsentSet", "partnerConsentSet", CONSENT_SET, patient_and_partner, (("consent", "update"),)),
    Op("patientInvite", "patientInvite", "mutation($pid: ID!) { patientInvite(patientId: $pid) { expiresAt } }",
       lambda tenant: _only(with_grant(tenant), "pid"), (("patient_account", "create"),)),
    Op("patientAccountDeactivate", "patientAccountDeactivate",
       "mutation($pid: ID!) { patientAccountDeactivate(patientId: $pid) }", with_patient_account,
       (("patient_account", "update"),)),
    Op("disclosures", "disclosures", f"{{ disclosures({A_PERIOD}) {{ edges {{ node {{ purpose }} }} }} }}", nothing,
       (("audit", "read"),), writes=False, expect=lambda data: _equal(data["disclosures"]["edges"], [])),
    # Only patients and partners hold these: every staff role is refused.
    Op("myAccessLog", "myAccessLog", "{ myAccessLog { edges { node { action } } } }", nothing,
       (("access_log", "read"),), writes=False),
    Op("myDataExport", "myDataExport", "{ myDataExport }", nothing, (("patient", "export"),), writes=False),
    Op("myTickets", "myTickets", "{ myTickets { edges { node { subject } } } }", nothing, (("my_ticket", "read"),),
       writes=False),
    Op("partnerAccessLog", "partnerAccessLog", "{ partnerAccessLog { edges { node { seq } } } }", nothing,
       (("partner_log", "read"),), writes=False),
    Op("partnerUsage", "partnerUsage", f"{{ partnerUsage({A_PERIOD}) {{ requests }} }}", nothing,
       (("partner_log", "read"),), writes=False),
    Op("partnerOwnGrants", "partnerOwnGrants", "{ partnerOwnGrants { nodes { purpose } } }", nothing,
       (("partner_own_grant", "read"),), writes=False),
    # Staff who may open tickets are refused at the partners' door after the permission: their own
    # door is ticketCreate.
    Op("partnerTicketCreate", "partnerTicketCreate",
       "mutation($input: PartnerTicketCreateInput!) { partnerTicketCreate(input: $input) { id } }",
       lambda tenant: _partner_report(tenant), (("ticket", "create"),), lookup=PartnersDoor()),
)

NOT_FOR_STAFF = {"myAccessLog", "myDataExport", "myTickets", "partnerAccessLog", "partnerUsage",
                 "partnerTicketCreate", "partnerOwnGrants"}


async def _only(variables: Awaitable[dict[str, Any]], name: str) -> dict[str, Any]:
    return {name: (await variables)[name]}


# -- the care journey (issue 12): visits, their codes, the service catalogue, care plans ----------
#
# Every record of the journey is reached through its patient (NOT_FOUND when the patient is out of
# reach, as for a random id) and each of its fields is read under a class of the patient's file
# (policies.fields); an operation that writes a clinical or internal part needs, besides its own
# permission, ``patient.<class>: update`` and that class readable on the patient. The resolvers check
# the operation's permission, then find the patient, then the class: the model checks every permission
# before the lookup, which gives the same outcome as long as whoever holds the operation's permission
# without the class write reaches the patient (``test_class_writes_are_refused_within_reach`` holds
# the policy to it).

VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id status version } }"
VISIT_CODE_ADD = """mutation($id: ID!, $input: VisitCodeInput!) {
  visitCodeAdd(visitId: $id, input: $input) { id code status }
}"""
VISIT_MOVE = """mutation($id: ID!, $to: VisitStatus!, $version: Int) {
  visitTransition(id: $id, to: $to, version: $version) { id status version }
}"""
VISIT_UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!, $version: Int) {
  visitUpdate(id: $id, input: $input, version: $version) { id version }
}"""
SERVICE_ITEM_CREATE = "mutation($code: String!) { serviceItemCreate(code: $code, name: \"Dental implant\") { id } }"
CARE_PLAN_CREATE = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id status } }"
VISIT_SUMMARY = "Implant placed"
VISIT_NOTE = "Nervous patient"
CONDITION = "K08.1"
PROCEDURE = "MATRIX-IMPLANT"
PLAN_GOALS = "Healed by March"
# What a nurse of department A writes on the matrix visit: when and where, what was done, a staff note.
VISIT_VALUES = {"kind": "OUTPATIENT", "plannedAt": "2026-12-01T09:00:00+08:00", "summary": VISIT_SUMMARY,
                "internalNote": VISIT_NOTE}
# One field of each class a visit write may carry.
VISIT_INPUT = {"identity": {"revisitOn": "2027-01-15"}, "clinical": {"summary": "Scaling done"},
               "internal": {"internalNote": "Prefers mornings"}}


@dataclass(frozen=True)
class ThroughPatient:
    """A record of the journey (``model``: a visit, a care plan) found through its patient in the caller's
    reach, NOT_FOUND otherwise; its ``field_class`` (if it reads one) read under that class of the
    patient's file, a null field with FORBIDDEN (a denied read of the class) when the role may not."""

    model: type[Visit] | type[CarePlan] | type[Flag] | type[FollowUpTask] | type[Appointment]
    field_class: str | None = None
    reached: Callable[[str, uuid.UUID], bool] = reaches_department_a

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if not self.reached(role, institution_id):
            return "NOT_FOUND", "not_found"
        if self.field_class is not None and not allows(role, institution_id, f"patient.{self.field_class}", "read"):
            return "FORBIDDEN", "forbidden_field"
        return None

    async def patient_of(self, variables: dict[str, Any]) -> uuid.UUID:
        return (await self.model.get(id=variables["id"])).patient_id


async def matrix_visit(tenant: Tenant, department: str = "A") -> tuple[uuid.UUID, str]:
    """A planned visit of a patient of ``department``, with a clinical summary, a staff note and an ICD-10
    condition (recorded by the nurse; the front desk books it in department B, out of her reach)."""
    pid = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
    booker = "nurse" if department == "A" else "front_desk"
    values = VISIT_VALUES if department == "A" else {"kind": "OUTPATIENT"}
    reply = await tenant.call(booker, VISIT_CREATE, input={
        "patientId": str(pid), "departmentId": str(tenant.departments[department].id), **values})
    assert reply.errors == [], reply.errors
    visit_id = reply.data["visitCreate"]["id"]
    if department == "A":
        added = await tenant.call("nurse", VISIT_CODE_ADD, id=visit_id, input={"kind": "CONDITION", "code": CONDITION})
        assert added.errors == [], added.errors
    return pid, visit_id


async def catalogue_item(tenant: Tenant, code: str = PROCEDURE) -> str:
    reply = await tenant.call("admin", SERVICE_ITEM_CREATE, code=code)
    assert reply.errors == [], reply.errors
    return str(reply.data["serviceItemCreate"]["id"])


def journey_ops(department: str) -> tuple[Op, ...]:
    """The visit operations on a patient of ``department``: all of them in department A, the lookup, one
    write and registering in department B (which only roles of the whole institution reach)."""
    reached = reaches_department_a if department == "A" else reaches_department_b
    suffix = "" if department == "A" else f".of_{department.lower()}"

    async def new_visit(tenant: Tenant, extra: dict[str, Any]) -> dict[str, Any]:
        pid = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
        return {"input": {"patientId": str(pid), "kind": "OUTPATIENT",
                          "departmentId": str(tenant.departments[department].id), **extra}}

    def create_visit(cls: str) -> Op:
        async def prepare(tenant: Tenant) -> dict[str, Any]:
            return await new_visit(tenant, {} if cls == "identity" else VISIT_INPUT[cls])

        requires = (("visit", "create"),) + ((f"patient.{cls}", "update"),) * (cls != "identity")
        return Op(f"visitCreate.{cls}", "visitCreate", VISIT_CREATE, prepare, requires, lookup=PatientLookup(reached),
                  expect=lambda data: _equal(data["visitCreate"]["status"], "PLANNED"))

    async def visit_only(tenant: Tenant) -> dict[str, Any]:
        return {"id": (await matrix_visit(tenant, department))[1]}

    def update_visit(cls: str) -> Op:
        async def prepare(tenant: Tenant) -> dict[str, Any]:
            return {**await visit_only(tenant), "input": VISIT_INPUT[cls], "version": 1}

        requires = (("visit", "update"),) + ((f"patient.{cls}", "update"),) * (cls != "identity")
        return Op(f"visitUpdate.{cls}", "visitUpdate", VISIT_UPDATE, prepare, requires,
                  lookup=ThroughPatient(Visit, reached=reached),
                  expect=lambda data: _equal(data["visitUpdate"]["version"], 2))

    def read_visit(cls: str, field: str, selection: str, expected: Any) -> Op:
        return Op(f"visit.{cls}" if field != "codes" else "visit.codes", "visit",
                  f"query($id: ID!) {{ visit(id: $id) {{ id {selection} }} }}", visit_only, (("visit", "read"),),
                  writes=False, field=field, lookup=ThroughPatient(Visit, cls, reached),
                  expect=lambda data: _equal(data["visit"][field], expected))

    async def visit_to_check_in(tenant: Tenant) -> dict[str, Any]:
        return {**await visit_only(tenant), "to": "ARRIVED", "version": 1}

    async def with_code(tenant: Tenant) -> dict[str, Any]:
        return {**await visit_only(tenant), "input": {"kind": "CONDITION", "code": "K05.1"}}

    async def pending_procedure(tenant: Tenant) -> dict[str, Any]:
        visit_id = (await visit_only(tenant))["id"]
        await catalogue_item(tenant)
        reply = await tenant.call("nurse", VISIT_CODE_ADD, id=visit_id,
                                  input={"kind": "PROCEDURE", "code": PROCEDURE, "status": "PENDING"})
        assert reply.errors == [], reply.errors
        return {"id": reply.data["visitCodeAdd"]["id"]}

    async def history(tenant: Tenant) -> dict[str, Any]:
        return {"pid": str((await matrix_visit(tenant, department))[0])}

    clinical_update = ("patient.clinical", "update")
    ops = (
        *(create_visit(cls) for cls in VISIT_INPUT),
        *(update_visit(cls) for cls in VISIT_INPUT),
        Op("visitTransition", "visitTransition", VISIT_MOVE, visit_to_check_in, (("visit", "update"),),
           lookup=ThroughPatient(Visit, reached=reached),
           expect=lambda data: _equal(data["visitTransition"]["status"], "ARRIVED")),
        Op("visitCodeAdd", "visitCodeAdd", VISIT_CODE_ADD, with_code, (("visit", "update"), clinical_update),
           lookup=ThroughPatient(Visit, reached=reached),
           expect=lambda data: _equal(data["visitCodeAdd"]["code"], "K05.1")),
        Op("visitCodeSetStatus", "visitCodeSetStatus",
           "mutation($id: ID!) { visitCodeSetStatus(id: $id, status: DONE) { id status } }", pending_procedure,
           (("visit", "update"), clinical_update), lookup=PatientLookup(reached),
           expect=lambda data: _equal(data["visitCodeSetStatus"]["status"], "DONE")),
        read_visit("identity", "kind", "kind", "OUTPATIENT"),
        read_visit("clinical", "summary", "summary", VISIT_SUMMARY),
        read_visit("internal", "internalNote", "internalNote", VISIT_NOTE),
        read_visit("clinical", "codes", "codes { code }", [{"code": CONDITION}]),
        Op("visitCodes", "visitCodes", "query($id: ID!) { visitCodes(visitId: $id) { nodes { code } } }", visit_only,
           (("visit", "read"), ("patient.clinical", "read")), writes=False,
           lookup=ThroughPatient(Visit, reached=reached),
           expect=lambda data: _equal(data["visitCodes"]["nodes"], [{"code": CONDITION}])),
        Op("visits", "visits", "query($pid: ID!) { visits(patientId: $pid) { nodes { kind } } }", history,
           (("visit", "read"),), writes=False, lookup=PatientLookup(reached),
           expect=lambda data: _equal(data["visits"]["nodes"], [{"kind": "OUTPATIENT"}])),
        # A code filter says what the patient has: it needs the clinical read permission too.
        Op("visits.by_code", "visits", f"""query($pid: ID!) {{
  visits(patientId: $pid, filter: {{codeSystem: ICD10, code: "{CONDITION}"}}) {{ nodes {{ kind }} }}
}}""", history, (("visit", "read"), ("patient.clinical", "read")), writes=False, lookup=PatientLookup(reached),
           expect=lambda data: _equal(data["visits"]["nodes"], [{"kind": "OUTPATIENT"}])),
    )
    if department != "A":
        ops = tuple(op for op in ops if op.name in ("visitCreate.identity", "visitTransition", "visit.identity"))
    return tuple(replace(op, name=op.name + suffix) for op in ops)


async def with_condition_on_file(tenant: Tenant) -> dict[str, Any]:
    """For the cohorts: the matrix patient carries the condition."""
    await matrix_visit(tenant)
    return {}


async def with_catalogue_item(tenant: Tenant) -> dict[str, Any]:
    return {"id": await catalogue_item(tenant)}


async def with_care_plan(tenant: Tenant) -> dict[str, Any]:
    """A plan for the matrix patient, made by the doctor, with a call that became a follow-up task."""
    variables = await new_care_plan(tenant)
    reply = await tenant.call("doctor", CARE_PLAN_CREATE, **variables)
    assert reply.errors == [], reply.errors
    return {"id": reply.data["carePlanCreate"]["id"], "pid": variables["input"]["patientId"]}


async def new_care_plan(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"patientId": str(await matrix_patient(tenant)), "title": "After the implant",
                      "goals": PLAN_GOALS, "activities": [{"kind": "CALL", "afterDays": 1}]}}


def read_care_plan(cls: str, field: str, expected: Any) -> Op:
    return Op(f"carePlan.{cls}", "carePlan", f"query($id: ID!) {{ carePlan(id: $id) {{ id {field} }} }}",
              lambda tenant: _only(with_care_plan(tenant), "id"), (("care_plan", "read"),), writes=False,
              field=field, lookup=ThroughPatient(CarePlan, cls), expect=lambda data: _equal(data["carePlan"][field],
                                                                                             expected))


CARE_JOURNEY_OPS: tuple[Op, ...] = (
    *journey_ops("A"),
    *journey_ops("B"),
    Op("patientsWithCode", "patientsWithCode",
       f"{{ patientsWithCode(codeSystem: ICD10, code: \"{CONDITION}\") {{ nodes {{ fullName }} }} }}",
       with_condition_on_file, (("patient.clinical", "read"),), writes=False,
       expect=lambda data: _equal(data["patientsWithCode"]["nodes"], [{"fullName": PATIENT_VALUES["fullName"]}])),
    Op("codeCounts", "codeCounts",
       f"{{ codeCounts(codeSystem: ICD10, codes: [\"{CONDITION}\", \"K05.1\"]) {{ code patients }} }}",
       with_condition_on_file, (("visit_report", "read"),), writes=False,
       expect=lambda data: _equal(data["codeCounts"], [{"code": CONDITION, "patients": 1},
                                                       {"code": "K05.1", "patients": 0}])),
    Op("serviceItems", "serviceItems", "{ serviceItems { code } }", with_catalogue_item,
       (("service_item", "read"),), writes=False,
       expect=lambda data: _equal(data["serviceItems"], [{"code": PROCEDURE}])),
    Op("serviceItemsConnection", "serviceItemsConnection", "{ serviceItemsConnection { nodes { code } } }",
       with_catalogue_item, (("service_item", "read"),), writes=False,
       expect=lambda data: _equal(data["serviceItemsConnection"]["nodes"], [{"code": PROCEDURE}])),
    Op("serviceItemCreate", "serviceItemCreate", SERVICE_ITEM_CREATE, lambda tenant: _value(code=PROCEDURE),
       (("service_item", "create"),)),
    Op("serviceItemSetActive", "serviceItemSetActive",
       "mutation($id: ID!) { serviceItemSetActive(id: $id, active: false) { active } }", with_catalogue_item,
       (("service_item", "update"),), expect=lambda data: _equal(data["serviceItemSetActive"]["active"], False)),
    Op("serviceItem", "serviceItem", "query($id: ID!) { serviceItem(id: $id) { code } }", with_catalogue_item,
       (("service_item", "read"),), writes=False, expect=lambda data: _equal(data["serviceItem"]["code"], PROCEDURE)),
    Op("serviceItemUpdate", "serviceItemUpdate",
       'mutation($id: ID!) { serviceItemUpdate(id: $id, input: {standard: "By a nurse"}, expectedVersion: 1) '
       '{ version } }', with_catalogue_item, (("service_item", "update"),),
       expect=lambda data: _equal(data["serviceItemUpdate"]["version"], 2)),
    Op("serviceItemPriceAdd", "serviceItemPriceAdd",
       'mutation($id: ID!) { serviceItemPriceAdd(itemId: $id, price: {amount: "120.00", currency: "CNY"}, '
       'effectiveFrom: "2026-01-01") { number unitPrice { amount } } }', with_catalogue_item,
       (("contract.terms", "update"),),
       expect=lambda data: _equal(data["serviceItemPriceAdd"], {"number": 1, "unitPrice": {"amount": "120.00"}})),
    Op("carePlanCreate", "carePlanCreate", CARE_PLAN_CREATE, new_care_plan,
       (("care_plan", "create"), ("patient.clinical", "update")), lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["carePlanCreate"]["status"], "ACTIVE")),
    Op("carePlanTransition", "carePlanTransition",
       "mutation($id: ID!) { carePlanTransition(id: $id, to: REVOKED, version: 1) { status } }",
       lambda tenant: _only(with_care_plan(tenant), "id"), (("care_plan", "update"), ("patient.clinical", "update")),
       lookup=ThroughPatient(CarePlan), expect=lambda data: _equal(data["carePlanTransition"]["status"], "REVOKED")),
    read_care_plan("identity", "status", "ACTIVE"),
    read_care_plan("clinical", "goals", PLAN_GOALS),
    Op("carePlans", "carePlans", "query($pid: ID!) { carePlans(patientId: $pid) { nodes { status } } }",
       lambda tenant: _only(with_care_plan(tenant), "pid"), (("care_plan", "read"),), writes=False,
       lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["carePlans"]["nodes"], [{"status": "ACTIVE"}])),
)


async def _value(**variables: Any) -> dict[str, Any]:
    return variables


# -- alerts on the file (flags) ------------------------------------------------------------------
#
# A flag's kind, status and period are identity; its detail is read, and written, under the class of
# what it says (policies.fields.FLAG_DETAIL_CLASS): one kind of each class besides a detail-less flag.

FLAG_CREATE = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id kind status } }"
FLAG_KIND = {cls: next(kind for kind, of in FLAG_DETAIL_CLASS.items() if of == cls)
             for cls in sorted(set(FLAG_DETAIL_CLASS.values()))}
FLAG_DETAIL = "Matrix alert detail"


def flag_kind(cls: str) -> str:
    """The kind of the matrix flag whose detail is of ``cls`` (identity: a flag without a detail)."""
    return FLAG_KIND.get(cls, FLAG_KIND[CLINICAL]).upper()


async def matrix_flag(tenant: Tenant, cls: str, department: str = "A") -> tuple[uuid.UUID, str]:
    """A flag in force on a patient of ``department`` with a detail of ``cls`` (raised by the nurse, who
    writes every class; the front desk raises a detail-less one on a patient of B, out of her reach)."""
    pid = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
    author, detail = ("nurse", {"detail": FLAG_DETAIL}) if department == "A" else ("front_desk", {})
    reply = await tenant.call(author, FLAG_CREATE, input={"patientId": str(pid), "kind": flag_kind(cls), **detail})
    assert reply.errors == [], reply.errors
    return pid, str(reply.data["flagCreate"]["id"])


def flag_ops(cls: str) -> tuple[Op, ...]:
    """Raising, changing and reading a flag: the detail-less part (identity) or a detail of ``cls``."""
    kind = flag_kind(cls)
    detail = {} if cls == IDENTITY else {"detail": "Changed alert detail"}

    async def new_flag(tenant: Tenant) -> dict[str, Any]:
        return {"input": {"patientId": str(await matrix_patient(tenant)), "kind": kind, **detail}}

    async def flag_change(tenant: Tenant) -> dict[str, Any]:
        _, flag_id = await matrix_flag(tenant, cls)
        return {"id": flag_id, "input": detail or {"status": "INACTIVE"}}

    async def flag_list(tenant: Tenant) -> dict[str, Any]:
        """The patient's flags (one), and the flag's id to check a refused field against (the query does not
        declare it: the server ignores it)."""
        pid, flag_id = await matrix_flag(tenant, cls)
        return {"pid": str(pid), "id": flag_id}

    writes = () if cls == IDENTITY else ((f"patient.{cls}", "update"),)
    read = (Op(f"patientFlags.{cls}", "patientFlags", "query($pid: ID!) { patientFlags(patientId: $pid) { id kind } }",
               flag_list, (("flag", "read"),), writes=False, lookup=ThroughPatient(Flag),
               expect=lambda data: _equal([f["kind"] for f in data["patientFlags"]], [kind]))
            if cls == IDENTITY else
            Op(f"patientFlags.{cls}", "patientFlags",
               "query($pid: ID!) { patientFlags(patientId: $pid) { id detail } }", flag_list, (("flag", "read"),),
               writes=False, field="detail", lookup=ThroughPatient(Flag, cls),
               expect=lambda data: _equal([f["detail"] for f in data["patientFlags"]], [FLAG_DETAIL])))
    return (
        Op(f"flagCreate.{cls}", "flagCreate", FLAG_CREATE, new_flag, (("flag", "create"), *writes),
           lookup=PatientLookup(reaches_department_a),
           expect=lambda data: _equal((data["flagCreate"]["kind"], data["flagCreate"]["status"]), (kind, "ACTIVE"))),
        Op(f"flagUpdate.{cls}", "flagUpdate",
           "mutation($id: ID!, $input: FlagUpdateInput!) { flagUpdate(id: $id, input: $input) { id status } }",
           flag_change, (("flag", "update"), *writes), lookup=ThroughPatient(Flag),
           expect=lambda data: _equal(data["flagUpdate"]["status"], "ACTIVE" if detail else "INACTIVE")),
        read,
    )


async def flag_list_of_b(tenant: Tenant) -> dict[str, Any]:
    pid, _ = await matrix_flag(tenant, IDENTITY, "B")
    return {"pid": str(pid)}


async def flag_page(tenant: Tenant) -> dict[str, Any]:
    pid, flag_id = await matrix_flag(tenant, IDENTITY)
    return {"pid": str(pid), "id": flag_id}


FLAG_OPS: tuple[Op, ...] = (
    *(op for cls in (IDENTITY, *FLAG_KIND) for op in flag_ops(cls)),
    Op("patientFlagsConnection.identity", "patientFlagsConnection",
       "query($pid: ID!) { patientFlagsConnection(patientId: $pid) { nodes { id kind } } }", flag_page,
       (("flag", "read"),), writes=False, lookup=ThroughPatient(Flag),
       expect=lambda data: _equal([f["kind"] for f in data["patientFlagsConnection"]["nodes"]],
                                  [flag_kind(IDENTITY)])),
    Op("patientFlags.identity.of_b", "patientFlags", "query($pid: ID!) { patientFlags(patientId: $pid) { kind } }",
       flag_list_of_b, (("flag", "read"),), writes=False, lookup=PatientLookup(reaches_department_b),
       expect=lambda data: _equal(data["patientFlags"], [{"kind": flag_kind(IDENTITY)}])),
)


# -- follow-up: rules, tasks, the worklists -------------------------------------------------------
#
# Besides the policy, the follow-up resolvers name two roles and the departments of the caller: a
# nurse of the task's department claims it from the pool, the head of its department assigns it and
# reads the department's lists, admins set any rule and a department head those of their own
# departments. The factory puts the roles reaching patients by department (nurse, doctor, department
# head) in department A, none in B.

TASK_OWNER = "nurse"  # owns the matrix tasks that are not in the pool (tasks go to nurses only)
DEPARTMENT_HEAD = "department_head"  # assigns the tasks of their departments and reads their lists
RULE_KEEPER = "admin"  # sets every rule, institution-wide ones too
TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id status } }"
TASK_ATTEMPT = """mutation($id: ID!, $input: FollowUpAttemptInput!) {
  followUpAttemptRecord(taskId: $id, input: $input) { id outcome }
}"""
RULES = "{ followUpRules { nodes { id name } } }"
RULE_CREATE = "mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) { id version } }"
NO_ANSWER = {"channel": "PHONE", "outcome": "NO_ANSWER"}


def in_department_a(role: str, institution_id: uuid.UUID) -> bool:
    """Whether the factory put the role's account in department A."""
    return Reach.DEPARTMENT in ROLE_REACH.get(role, frozenset())


class Work(StrEnum):
    """What a task operation asks of the caller once it found the task; the value is the audit reason."""

    CLAIM = "other_department"  # a nurse of the task's department
    ASSIGN = "forbidden"  # the head of the task's department
    OWN = "not_owner"  # its owner, who writes the clinical class of the patient's file (attempts, the outcome)
    OWN_OR_HEAD = "own_or_head"  # its owner or the head of its department (refused as not_owner)


@dataclass(frozen=True)
class TaskLookup:
    """A task of department A, reached through its patient (NOT_FOUND otherwise), then what ``work`` asks,
    then the permissions ``then`` names (decided last, as the outcome form decides its ticket)."""

    work: Work
    then: tuple[tuple[str, str], ...] = ()

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if not reaches_department_a(role, institution_id):
            return "NOT_FOUND", "not_found"
        head = role == DEPARTMENT_HEAD and in_department_a(role, institution_id)
        if self.work is Work.CLAIM and not (role == TASK_OWNER and in_department_a(role, institution_id)):
            return "FORBIDDEN", self.work.value
        if self.work is Work.ASSIGN and not head:
            return "FORBIDDEN", self.work.value
        if self.work is Work.OWN_OR_HEAD and not (role == TASK_OWNER or head):
            return "FORBIDDEN", Work.OWN.value
        if self.work is Work.OWN:
            if role != TASK_OWNER:
                return "FORBIDDEN", self.work.value
            if not all(allows(role, institution_id, "patient.clinical", act) for act in ("update", "read")):
                return "FORBIDDEN", "forbidden"
        if not all(allows(role, institution_id, obj, act) for obj, act in self.then):
            return "FORBIDDEN", "forbidden"
        return None


@dataclass(frozen=True)
class HeadsOnly:
    """The department's lists are for its head (refused and recorded for anyone else who reads tasks)."""

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return None if role == DEPARTMENT_HEAD else ("FORBIDDEN", "forbidden")


@dataclass(frozen=True)
class RuleLookup:
    """A rule of department A, or an institution-wide one (``department`` None): admins set any rule, a
    department head those of their own departments (refused and recorded as other_department)."""

    department: str | None

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if role == RULE_KEEPER or (self.department == "A" and in_department_a(role, institution_id)):
            return None
        return "FORBIDDEN", "other_department"


async def due_tomorrow(tenant: Tenant) -> str:
    """A due date the API takes (from the institution's today), whichever side of midnight it is there."""
    return (datetime.now(UTC).astimezone(await institutions.zone(tenant.id)).date() + timedelta(days=1)).isoformat()


async def new_task_input(tenant: Tenant, owned: bool) -> dict[str, Any]:
    owner = {"ownerId": str(tenant.staff_ids[TASK_OWNER])} if owned else {}
    return {"patientId": str(await matrix_patient(tenant)), "dueOn": await due_tomorrow(tenant), **owner}


async def matrix_task(tenant: Tenant, owned: bool = True, attempted: bool = False) -> str:
    """A follow-up call for the matrix patient (department A), planned by the doctor: the nurse's, or in the
    department's pool; with a call attempt that did not reach the patient if ``attempted``."""
    reply = await tenant.call("doctor", TASK_CREATE, input=await new_task_input(tenant, owned))
    assert reply.errors == [], reply.errors
    task_id = str(reply.data["followUpTaskCreate"]["id"])
    if attempted:
        tried = await tenant.call(TASK_OWNER, TASK_ATTEMPT, id=task_id, input=NO_ANSWER)
        assert tried.errors == [], tried.errors
    return task_id


async def with_task(tenant: Tenant) -> dict[str, Any]:
    return {"id": await matrix_task(tenant)}


async def with_pool_task(tenant: Tenant) -> dict[str, Any]:
    return {"id": await matrix_task(tenant, owned=False)}


async def with_tried_task(tenant: Tenant) -> dict[str, Any]:
    return {"id": await matrix_task(tenant, attempted=True)}


async def with_patients_task(tenant: Tenant) -> dict[str, Any]:
    """The matrix patient, with one open task (the nurse's)."""
    task = await FollowUpTask.get(id=await matrix_task(tenant))
    return {"pid": str(task.patient_id)}


async def with_rules_in_force(tenant: Tenant) -> list[dict[str, Any]]:
    """The institution's rules (its defaults are written on the first look, by the admin here)."""
    reply = await tenant.call(RULE_KEEPER, RULES)
    assert reply.errors == [], reply.errors
    return list(reply.data["followUpRules"]["nodes"])


def rule_input(tenant: Tenant, department: str | None) -> dict[str, Any]:
    where = {} if department is None else {"departmentId": str(tenant.departments[department].id)}
    return {"name": "Matrix rule", "offsetsDays": [2], **where}


def rule_ops(department: str | None) -> tuple[Op, ...]:
    """Writing a rule of department A, or an institution-wide one (one of the defaults, for the changes)."""
    suffix = "" if department is None else f".of_{department.lower()}"

    async def new_rule(tenant: Tenant) -> dict[str, Any]:
        await with_rules_in_force(tenant)
        return {"input": rule_input(tenant, department)}

    async def a_rule(tenant: Tenant) -> dict[str, Any]:
        rules = await with_rules_in_force(tenant)
        if department is None:
            return {"id": rules[0]["id"]}
        reply = await tenant.call(RULE_KEEPER, RULE_CREATE, input=rule_input(tenant, department))
        assert reply.errors == [], reply.errors
        return {"id": reply.data["followUpRuleCreate"]["id"]}

    async def rule_change(tenant: Tenant) -> dict[str, Any]:
        return {**await a_rule(tenant), "input": {"offsetsDays": [2, 14]}}

    keeps = RuleLookup(department)
    update = (("follow_up_rule", "update"),)
    return tuple(replace(op, name=op.name + suffix) for op in (
        Op("followUpRuleCreate", "followUpRuleCreate", RULE_CREATE, new_rule, update, lookup=keeps,
           expect=lambda data: _equal(data["followUpRuleCreate"]["version"], 1)),
        Op("followUpRuleUpdate", "followUpRuleUpdate", """mutation($id: ID!, $input: FollowUpRuleChangeInput!) {
  followUpRuleUpdate(id: $id, input: $input, version: 1) { version offsetsDays }
}""", rule_change, update, lookup=keeps,
           expect=lambda data: _equal(data["followUpRuleUpdate"], {"version": 2, "offsetsDays": [2, 14]})),
        Op("followUpRuleRetire", "followUpRuleRetire",
           "mutation($id: ID!) { followUpRuleRetire(id: $id, version: 1) { active } }", a_rule, update, lookup=keeps,
           expect=lambda data: _equal(data["followUpRuleRetire"]["active"], False)),
    ))


async def with_seeded_rules(tenant: Tenant) -> dict[str, Any]:
    await with_rules_in_force(tenant)
    return {}


def read_task(cls: str, selection: str, field: str, expected: Any) -> Op:
    return Op(f"followUpTask.{cls}", "followUpTask",
              f"query($id: ID!) {{ followUpTask(id: $id) {{ id {selection} }} }}", with_tried_task,
              (("follow_up_task", "read"),), writes=False, field=field, lookup=ThroughPatient(FollowUpTask, cls),
              expect=lambda data: _equal(data["followUpTask"][field], expected))


WORKLIST = "{ followUpWorklist(scope: %s) { today edges { node { id } } } }"
update_task = (("follow_up_task", "update"),)

FOLLOW_UP_OPS: tuple[Op, ...] = (
    Op("followUpRules", "followUpRules", RULES, with_seeded_rules, (("follow_up_rule", "read"),), writes=False,
       expect=lambda data: _equal(len(data["followUpRules"]["nodes"]), 3)),
    *rule_ops("A"),
    *rule_ops(None),
    Op("followUpTaskCreate", "followUpTaskCreate", TASK_CREATE,
       lambda tenant: _as_input(new_task_input(tenant, owned=False)), (("follow_up_task", "create"),),
       lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["followUpTaskCreate"]["status"], "REQUESTED")),
    read_task("identity", "status", "status", "REQUESTED"),
    read_task("clinical", "attempts { outcome }", "attempts", [{"outcome": "NO_ANSWER"}]),
    Op("followUpAttempts", "followUpAttempts",
       "query($id: ID!) { followUpAttempts(taskId: $id) { nodes { outcome } } }", with_tried_task,
       (("follow_up_task", "read"), ("patient.clinical", "read")), writes=False, lookup=ThroughPatient(FollowUpTask),
       expect=lambda data: _equal(data["followUpAttempts"]["nodes"], [{"outcome": "NO_ANSWER"}])),
    Op("followUpWorklist", "followUpWorklist", WORKLIST % "MINE", lambda tenant: _nothing_after(with_task(tenant)),
       (("follow_up_task", "read"),), writes=False),
    Op("followUpWorklist.pool", "followUpWorklist", WORKLIST % "POOL",
       lambda tenant: _nothing_after(with_pool_task(tenant)), (("follow_up_task", "read"),), writes=False),
    Op("followUpWorklist.department", "followUpWorklist", WORKLIST % "DEPARTMENT",
       lambda tenant: _nothing_after(with_task(tenant)), (("follow_up_task", "read"),), writes=False,
       lookup=HeadsOnly()),
    Op("followUpWorkload", "followUpWorkload", "{ followUpWorkload { today lines { overdue dueToday } } }",
       lambda tenant: _nothing_after(with_task(tenant)), (("follow_up_task", "read"),), writes=False,
       lookup=HeadsOnly()),
    Op("patientFollowUpTasks", "patientFollowUpTasks",
       "query($pid: ID!) { patientFollowUpTasks(patientId: $pid) { nodes { status } } }", with_patients_task,
       (("follow_up_task", "read"),), writes=False, lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["patientFollowUpTasks"]["nodes"], [{"status": "REQUESTED"}])),
    Op("followUpTaskClaim", "followUpTaskClaim", "mutation($id: ID!) { followUpTaskClaim(id: $id) { status } }",
       with_pool_task, update_task, lookup=TaskLookup(Work.CLAIM),
       expect=lambda data: _equal(data["followUpTaskClaim"]["status"], "ACCEPTED")),
    Op("followUpTaskAssign", "followUpTaskAssign",
       "mutation($id: ID!, $sid: ID) { followUpTaskAssign(id: $id, staffId: $sid, version: 1) { status } }",
       lambda tenant: _with_nurse_to_assign(tenant), update_task, lookup=TaskLookup(Work.ASSIGN),
       expect=lambda data: _equal(data["followUpTaskAssign"]["status"], "REQUESTED")),
    Op("followUpAttemptRecord", "followUpAttemptRecord", TASK_ATTEMPT,
       lambda tenant: _with_input(with_task(tenant), NO_ANSWER), update_task, lookup=TaskLookup(Work.OWN),
       expect=lambda data: _equal(data["followUpAttemptRecord"]["outcome"], "NO_ANSWER")),
    Op("followUpTaskComplete", "followUpTaskComplete", """mutation($id: ID!, $input: FollowUpOutcomeInput!) {
  followUpTaskComplete(id: $id, input: $input, version: 1) { status condition }
}""", lambda tenant: _with_input(with_task(tenant), {"reached": True, "condition": "BETTER"}), update_task,
       lookup=TaskLookup(Work.OWN),
       expect=lambda data: _equal(data["followUpTaskComplete"], {"status": "COMPLETED", "condition": "BETTER"})),
    # A patient who is worse: the outcome opens a ticket, which needs the right to open tickets too.
    Op("followUpTaskComplete.ticket", "followUpTaskComplete", """mutation($id: ID!, $input: FollowUpOutcomeInput!) {
  followUpTaskComplete(id: $id, input: $input, version: 1) { status ticketId }
}""", lambda tenant: _with_input(with_task(tenant), {"reached": True, "condition": "WORSE", "openTicket": True}),
       update_task, lookup=TaskLookup(Work.OWN, then=(("ticket", "create"),)),
       expect=lambda data: _equal(data["followUpTaskComplete"]["ticketId"] is not None, True)),
    Op("followUpTaskFail", "followUpTaskFail", "mutation($id: ID!) { followUpTaskFail(id: $id) { status } }",
       with_tried_task, update_task, lookup=TaskLookup(Work.OWN),
       expect=lambda data: _equal(data["followUpTaskFail"]["status"], "FAILED")),
    Op("followUpTaskCancel", "followUpTaskCancel",
       "mutation($id: ID!) { followUpTaskCancel(id: $id, version: 1) { status } }", with_task, update_task,
       lookup=TaskLookup(Work.OWN_OR_HEAD), expect=lambda data: _equal(data["followUpTaskCancel"]["status"],
                                                                        "CANCELLED")),
)


@dataclass(frozen=True)
class DepartmentMember:
    """A department's care-journey report: for members of that department only (refused and recorded)."""

    department: str

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if self.department == "A" and in_department_a(role, institution_id):
            return None
        return "FORBIDDEN", "outside_department"


def visit_report_op(department: str) -> Op:
    async def month(tenant: Tenant) -> dict[str, Any]:
        return {"month": "2020-01", "dep": str(tenant.departments[department].id)}

    return Op(f"visitReport{'' if department == 'A' else '.of_' + department.lower()}", "visitReport",
              "query($month: String!, $dep: ID!) { visitReport(month: $month, departmentId: $dep) { month noShows } }",
              month, (("visit_report", "read"),), writes=False, lookup=DepartmentMember(department),
              expect=lambda data: _equal(data["visitReport"], {"month": "2020-01", "noShows": 0}))


VISIT_REPORT_OPS = (visit_report_op("A"), visit_report_op("B"))
IN_NO_ROLES_DEPARTMENT = {"visitReport.of_b"}  # no account of the factory belongs to department B


# -- the patient page (patient 360): each section of the journey under its own read permission ----


def page_section(field: str, selection: str, obj: str, prepare: Callable[[Tenant], Awaitable[str]],
                 expected: Any = None) -> Op:
    """``patient(id) { <field> }`` for the matrix patient, once ``prepare`` put a record there: a null field
    with FORBIDDEN for whoever reaches the patient without ``<obj>: read``."""
    async def with_section(tenant: Tenant) -> dict[str, Any]:
        await prepare(tenant)
        (patient,) = await Patient.filter(institution_id=tenant.id).values_list("id", flat=True)
        return {"id": str(patient)}

    def expect(data: Any) -> None:
        if expected is not None:
            assert data["patient"][field] == expected

    return Op(f"patient.{field}", "patient",
              f"query($id: ID!) {{ patient(id: $id) {{ id {field} {{ {selection} }} }} }}", with_section,
              ((obj, "read"),), writes=False, row_scoped=True, field=field, expect=expect)


async def _visit_id(tenant: Tenant) -> str:
    return (await matrix_visit(tenant))[1]


async def _flag_id(tenant: Tenant) -> str:
    return (await matrix_flag(tenant, IDENTITY))[1]


async def _plan_id(tenant: Tenant) -> str:
    return str((await with_care_plan(tenant))["id"])


async def _ticket_id(tenant: Tenant) -> str:
    return str(await open_ticket(tenant))


PATIENT_PAGE_OPS: tuple[Op, ...] = (
    page_section("recentVisits", "kind", "visit", _visit_id, [{"kind": "OUTPATIENT"}]),
    page_section("flags", "kind", "flag", _flag_id, [{"kind": flag_kind(IDENTITY)}]),
    page_section("carePlans", "status", "care_plan", _plan_id, [{"status": "ACTIVE"}]),
    page_section("openFollowUpTasks", "status", "follow_up_task", matrix_task, [{"status": "REQUESTED"}]),
    page_section("openTickets", "id", "ticket", _ticket_id),  # which tickets: the ticket reach, tested above
)


async def _as_input(value: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    return {"input": await value}


async def _with_input(variables: Awaitable[dict[str, Any]], value: dict[str, Any]) -> dict[str, Any]:
    return {**await variables, "input": value}


async def _nothing_after(variables: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """For the lists: the task exists, nothing is passed."""
    await variables
    return {}


# -- schedules and free slots (issue 13) ------------------------------------------------------------

SCHEDULE_KEEPER = "admin"  # makes the matrix schedules, whatever their department
SCHEDULE_CREATE = "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id version } }"
SCHEDULE_EXCEPTION_ADD = """mutation($id: ID!, $input: ScheduleExceptionInput!) {
  scheduleExceptionAdd(scheduleId: $id, input: $input) { id kind } }"""
SCHEDULE_WEEK = [{"weekday": day, "sessions": [{"start": "08:00", "end": "12:00"}]} for day in range(1, 6)]


def schedule_input(tenant: Tenant, department: str) -> dict[str, Any]:
    return {"name": "Matrix chair", "kind": "RESOURCE", "departmentId": str(tenant.departments[department].id),
            "week": SCHEDULE_WEEK, "slotMinutes": 30, "capacity": 2}


def leave_input() -> dict[str, Any]:
    """A leave a month ahead (outside the week of free slots the matrix asks for)."""
    starts = datetime.now(UTC) + timedelta(days=30)
    return {"kind": "LEAVE", "startsAt": starts.isoformat(), "endsAt": (starts + timedelta(hours=1)).isoformat()}


async def matrix_schedule(tenant: Tenant, department: str = "A") -> str:
    reply = await tenant.call(SCHEDULE_KEEPER, SCHEDULE_CREATE, input=schedule_input(tenant, department))
    assert reply.errors == [], reply.errors
    return str(reply.data["scheduleCreate"]["id"])


async def matrix_schedule_exception(tenant: Tenant, department: str = "A") -> tuple[str, str]:
    schedule_id = await matrix_schedule(tenant, department)
    reply = await tenant.call(SCHEDULE_KEEPER, SCHEDULE_EXCEPTION_ADD, id=schedule_id, input=leave_input())
    assert reply.errors == [], reply.errors
    return schedule_id, str(reply.data["scheduleExceptionAdd"]["id"])


@dataclass(frozen=True)
class ScheduleLookup:
    """A schedule of department A or B: admins keep any, a department head those of their own departments
    (refused and recorded as other_department)."""

    department: str

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if role == SCHEDULE_KEEPER or (self.department == "A" and in_department_a(role, institution_id)):
            return None
        return "FORBIDDEN", "other_department"


def schedule_write_ops(department: str) -> tuple[Op, ...]:
    suffix = "" if department == "A" else f".of_{department.lower()}"

    async def new_schedule(tenant: Tenant) -> dict[str, Any]:
        return {"input": schedule_input(tenant, department)}

    async def a_schedule(tenant: Tenant) -> dict[str, Any]:
        return {"id": await matrix_schedule(tenant, department)}

    async def a_schedule_and_leave(tenant: Tenant) -> dict[str, Any]:
        return {**await a_schedule(tenant), "input": leave_input()}

    async def an_exception(tenant: Tenant) -> dict[str, Any]:
        return {"id": (await matrix_schedule_exception(tenant, department))[1]}

    keeps = ScheduleLookup(department)
    update = (("schedule", "update"),)
    return tuple(replace(op, name=op.name + suffix) for op in (
        Op("scheduleCreate", "scheduleCreate", SCHEDULE_CREATE, new_schedule, (("schedule", "create"),),
           lookup=keeps, expect=lambda data: _equal(data["scheduleCreate"]["version"], 1)),
        Op("scheduleUpdate", "scheduleUpdate", """mutation($id: ID!) {
  scheduleUpdate(id: $id, input: {capacity: 3}, version: 1) { version capacity } }""", a_schedule, update,
           lookup=keeps, expect=lambda data: _equal(data["scheduleUpdate"], {"version": 2, "capacity": 3})),
        Op("scheduleDeactivate", "scheduleDeactivate",
           "mutation($id: ID!) { scheduleDeactivate(id: $id, version: 1) { active } }", a_schedule, update,
           lookup=keeps, expect=lambda data: _equal(data["scheduleDeactivate"]["active"], False)),
        Op("scheduleExceptionAdd", "scheduleExceptionAdd", SCHEDULE_EXCEPTION_ADD, a_schedule_and_leave, update,
           lookup=keeps, expect=lambda data: _equal(data["scheduleExceptionAdd"]["kind"], "LEAVE")),
        Op("scheduleExceptionCancel", "scheduleExceptionCancel",
           "mutation($id: ID!) { scheduleExceptionCancel(id: $id) { cancelledAt } }", an_exception, update,
           lookup=keeps, expect=lambda data: _equal(data["scheduleExceptionCancel"]["cancelledAt"] is not None, True)),
    ))


async def with_schedule(tenant: Tenant) -> dict[str, Any]:
    schedule_id, _ = await matrix_schedule_exception(tenant)
    return {"id": schedule_id}


async def with_next_weeks_slots(tenant: Tenant) -> dict[str, Any]:
    await matrix_schedule(tenant)
    today = datetime.now(UTC).astimezone(await institutions.zone(tenant.id)).date()
    return {"dep": str(tenant.departments["A"].id), "from": str(today + timedelta(days=7)),
            "to": str(today + timedelta(days=13))}


read_schedule = (("schedule", "read"),)

SCHEDULE_OPS: tuple[Op, ...] = (
    Op("schedules", "schedules", "{ schedules(first: 10) { nodes { name } } }",
       lambda tenant: _nothing_after(with_schedule(tenant)), read_schedule, writes=False,
       expect=lambda data: _equal(data["schedules"]["nodes"], [{"name": "Matrix chair"}])),
    Op("schedule", "schedule", "query($id: ID!) { schedule(id: $id) { name exceptions { kind } } }", with_schedule,
       read_schedule, writes=False,
       expect=lambda data: _equal(data["schedule"], {"name": "Matrix chair", "exceptions": [{"kind": "LEAVE"}]})),
    # five mornings of eight slots, two places each
    Op("freeSlots", "freeSlots", """query($dep: ID!, $from: Date!, $to: Date!) {
  freeSlots(departmentId: $dep, from: $from, to: $to) { free } }""", with_next_weeks_slots, read_schedule,
       writes=False, expect=lambda data: _equal(data["freeSlots"], [{"free": 2}] * 40)),
    *schedule_write_ops("A"),
    *schedule_write_ops("B"),
)


async def _with_nurse_to_assign(tenant: Tenant) -> dict[str, Any]:
    return {**await with_pool_task(tenant), "sid": str(tenant.staff_ids[TASK_OWNER])}


# -- message templates and the institution's messaging settings and gateways (issue 13) -----------------

TEMPLATE_SET = """mutation($input: MessageTemplateInput!) { messageTemplateSet(input: $input) { cause isDefault } }"""
CAMPAIGN_TEMPLATE = {"cause": "CAMPAIGN", "channel": "SMS", "language": "EN", "subject": "",
                     "body": "{patient_name}, news from {institution_name}. Unsubscribe: {unsubscribe_url}"}


async def template_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": CAMPAIGN_TEMPLATE}


async def with_template(tenant: Tenant) -> dict[str, Any]:
    """The institution's own campaign template (written by an admin), for a reset to drop."""
    reply = await tenant.call("admin", TEMPLATE_SET, input=CAMPAIGN_TEMPLATE)
    assert reply.errors == [], reply.errors
    return {}


async def settings_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"nonCareCap": 3, "quietStart": "22:00"}}


async def gateway_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"channel": "SMS", "url": "https://sms.example.com/send", "secret": "matrix-gateway-secret-1"}}


TEMPLATE_OPS: tuple[Op, ...] = (
    Op("messageTemplates", "messageTemplates", "{ messageTemplates(first: 2) { nodes { cause isDefault } } }",
       nothing, (("message_template", "read"),), writes=False,
       expect=lambda data: _equal(data["messageTemplates"]["nodes"], [
           {"cause": "APPOINTMENT_CONFIRMATION", "isDefault": True}] * 2)),
    Op("messageTemplatePreview", "messageTemplatePreview",
       "{ messageTemplatePreview(cause: BIRTHDAY_GREETING, channel: SMS, language: EN) { body } }", nothing,
       (("message_template", "read"),), writes=False,
       expect=lambda data: _equal(data["messageTemplatePreview"]["body"].startswith("Happy birthday, Alex"), True)),
    Op("messageTemplateSet", "messageTemplateSet", TEMPLATE_SET, template_input, (("message_template", "update"),),
       expect=lambda data: _equal(data["messageTemplateSet"], {"cause": "CAMPAIGN", "isDefault": False})),
    Op("messageTemplateReset", "messageTemplateReset",
       "mutation { messageTemplateReset(cause: CAMPAIGN, channel: SMS, language: EN) { channel isDefault } }",
       with_template, (("message_template", "update"),),
       expect=lambda data: _equal(data["messageTemplateReset"], {"channel": "ANY", "isDefault": True})),
    Op("messagingSettings", "messagingSettings", "{ messagingSettings { nonCareCap version gateways { channel } } }",
       nothing, (("messaging", "read"),), writes=False,
       expect=lambda data: _equal(data["messagingSettings"], {"nonCareCap": 2, "version": 0, "gateways": []})),
    Op("messagingSettingsUpdate", "messagingSettingsUpdate",
       "mutation($input: MessagingSettingsInput!) { messagingSettingsUpdate(input: $input) { nonCareCap version } }",
       settings_input, (("messaging", "update"), ("messaging", "read")),
       expect=lambda data: _equal(data["messagingSettingsUpdate"], {"nonCareCap": 3, "version": 1})),
    Op("messageGatewaySet", "messageGatewaySet",
       "mutation($input: MessageGatewayInput!) { messageGatewaySet(input: $input) { channel urlHost secretSet } }",
       gateway_input, (("messaging", "update"),),
       expect=lambda data: _equal(data["messageGatewaySet"], {"channel": "SMS", "urlHost": "sms.example.com",
                                                              "secretSet": True})),
)


# -- the communication log and the portal's contact preferences (issue 13) --------------------------------

LOG_CALL = """mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { cause status } }"""


async def with_logged_call(tenant: Tenant, department: str = "A") -> dict[str, Any]:
    """A patient of the department with one call on the log (the front desk logged it)."""
    pid = str(await matrix_patient(tenant) if department == "A" else await patient_of_b(tenant))
    reply = await tenant.call("front_desk", LOG_CALL, input={"patientId": pid, "note": "Called back"})
    assert reply.errors == [], reply.errors
    return {"pid": pid}


async def call_input(tenant: Tenant, department: str = "A") -> dict[str, Any]:
    pid = str(await matrix_patient(tenant) if department == "A" else await patient_of_b(tenant))
    return {"input": {"patientId": pid, "direction": "INBOUND", "note": "Asked about parking"}}


class PortalOnly:
    """A patient's own operation: staff holding its permission find no file of their own (NOT_FOUND)."""

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return "NOT_FOUND", "not_found"


def communication_ops(department: str) -> tuple[Op, ...]:
    reached = reaches_department_a if department == "A" else reaches_department_b
    suffix = "" if department == "A" else f".{department}"
    return (
        Op(f"patientCommunications{suffix}", "patientCommunications",
           "query($pid: ID!) { patientCommunications(patientId: $pid) { nodes { cause note } } }",
           lambda tenant: with_logged_call(tenant, department), (("communication", "read"),), writes=False,
           lookup=PatientLookup(reached), expect=lambda data: _equal(
               data["patientCommunications"]["nodes"], [{"cause": "LOGGED_CALL", "note": "Called back"}])),
        Op(f"communicationLogCall{suffix}", "communicationLogCall", LOG_CALL,
           lambda tenant: call_input(tenant, department), (("communication", "create"),),
           lookup=PatientLookup(reached),
           expect=lambda data: _equal(data["communicationLogCall"], {"cause": "LOGGED_CALL", "status": "SENT"})),
    )


async def _logged_call_patient(tenant: Tenant) -> str:
    return str((await with_logged_call(tenant))["pid"])


COMMUNICATION_OPS: tuple[Op, ...] = (
    *communication_ops("A"),
    *communication_ops("B"),
    page_section("recentCommunications", "cause", "communication", _logged_call_patient, [{"cause": "LOGGED_CALL"}]),
    # The portal's own: staff are refused (FORBIDDEN without the permission, NOT_FOUND with it).
    Op("myCommunications", "myCommunications", "{ myCommunications { nodes { cause } } }", nothing,
       (("communication", "read"),), writes=False, lookup=PortalOnly()),
    Op("myContactPreferences", "myContactPreferences", "{ myContactPreferences { purposes } }", nothing,
       (("patient.contact", "read"),), writes=False, lookup=PortalOnly()),
    Op("myContactPreferencesUpdate", "myContactPreferencesUpdate",
       "mutation { myContactPreferencesUpdate(input: {purposes: [CARE, GREETING]}) { purposes } }", nothing,
       (("patient.contact", "update"),), lookup=PortalOnly()),
)
NOT_FOR_STAFF.update({"myCommunications", "myContactPreferences", "myContactPreferencesUpdate"})


# -- appointments (issue 13) ----------------------------------------------------------------------
#
# Booked by the front desk in a slot of the matrix schedule two weeks ahead, for a patient of department A
# (or B): every appointment is reached through its patient, its state read as identity and its reason as
# clinical, like a visit. Check-in and no-shows need a slot under way: the matrix moves the booked slot to
# the present before the call (patients' and partners' own rules are tested in tests/api/test_appointments.py).

APPOINTMENT_BOOKER = "front_desk"  # reaches every patient of the institution
APPOINTMENT_BOOK = "mutation($input: AppointmentBookInput!) { appointmentBook(input: $input) { id status } }"
APPOINTMENT_REASON = "Matrix toothache"


async def matrix_slot(tenant: Tenant, later: int = 0) -> str:
    """09:00 (plus ``later`` slots) on a Monday at least two weeks ahead, local time: a slot of the matrix
    schedule."""
    zone = await institutions.zone(tenant.id)
    day = datetime.now(UTC).astimezone(zone).date() + timedelta(days=14)
    day += timedelta(days=(7 - day.weekday()) % 7)
    return datetime.combine(day, datetime.min.time(), zone).replace(hour=9, minute=30 * later).isoformat()


async def matrix_appointment(tenant: Tenant, department: str = "A", *, under_way: bool = False
                             ) -> tuple[uuid.UUID, str, str]:
    """(patient, appointment, schedule): booked by the front desk with a reason; ``under_way``: its slot moved
    to the present, as if the day had come."""
    pid = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
    schedule_id = await matrix_schedule(tenant)
    reply = await tenant.call(APPOINTMENT_BOOKER, APPOINTMENT_BOOK, input={
        "patientId": str(pid), "scheduleId": schedule_id, "slotStart": await matrix_slot(tenant),
        "reason": APPOINTMENT_REASON})
    assert reply.errors == [], reply.errors
    appointment_id = str(reply.data["appointmentBook"]["id"])
    if under_way:
        now = datetime.now(UTC)
        await Appointment.filter(id=appointment_id).update(slot_start=now - timedelta(minutes=10),
                                                           slot_end=now + timedelta(minutes=20))
    return pid, appointment_id, schedule_id


def appointment_ops(department: str) -> tuple[Op, ...]:
    """Every appointment operation on a patient of department A; the lookups and two writes in department B."""
    reached = reaches_department_a if department == "A" else reaches_department_b
    suffix = "" if department == "A" else f".of_{department.lower()}"
    through = ThroughPatient(Appointment, reached=reached)
    update = (("appointment", "update"),)

    async def new_booking(tenant: Tenant) -> dict[str, Any]:
        pid = await (matrix_patient(tenant) if department == "A" else patient_of_b(tenant))
        return {"input": {"patientId": str(pid), "scheduleId": await matrix_schedule(tenant),
                          "slotStart": await matrix_slot(tenant), "reason": APPOINTMENT_REASON}}

    async def booked(tenant: Tenant) -> dict[str, Any]:
        return {"id": (await matrix_appointment(tenant, department))[1]}

    async def to_move(tenant: Tenant) -> dict[str, Any]:
        return {**await booked(tenant), "slotStart": await matrix_slot(tenant, later=1)}

    async def under_way(tenant: Tenant) -> dict[str, Any]:
        return {"id": (await matrix_appointment(tenant, department, under_way=True))[1]}

    async def patients_list(tenant: Tenant) -> dict[str, Any]:
        return {"pid": str((await matrix_appointment(tenant, department))[0])}

    def read(cls: str, field: str, expected: str) -> Op:
        return Op(f"appointment.{cls}", "appointment", f"query($id: ID!) {{ appointment(id: $id) {{ id {field} }} }}",
                  booked, (("appointment", "read"),), writes=False, field=field,
                  lookup=ThroughPatient(Appointment, cls, reached),
                  expect=lambda data: _equal(data["appointment"][field], expected))

    def status_is(root: str, status: str) -> Callable[[Any], None]:
        return lambda data: _equal(data[root]["status"], status)

    ops: tuple[Op, ...] = (
        Op("appointmentBook", "appointmentBook", APPOINTMENT_BOOK, new_booking, (("appointment", "create"),),
           lookup=PatientLookup(reached), expect=status_is("appointmentBook", "BOOKED")),
        Op("appointmentReschedule", "appointmentReschedule", """mutation($id: ID!, $slotStart: DateTime!) {
  appointmentReschedule(id: $id, slotStart: $slotStart, version: 1) { id status } }""", to_move, update,
           lookup=through, expect=status_is("appointmentReschedule", "BOOKED")),
        Op("appointmentCancel", "appointmentCancel",
           "mutation($id: ID!) { appointmentCancel(id: $id, reason: INSTITUTION, version: 1) { id status } }",
           booked, update, lookup=through, expect=status_is("appointmentCancel", "CANCELLED")),
        Op("appointmentCheckIn", "appointmentCheckIn",
           "mutation($id: ID!) { appointmentCheckIn(id: $id, version: 1) { id status visit { status } } }",
           under_way, (*update, ("visit", "create")), lookup=through,
           expect=lambda data: _equal(data["appointmentCheckIn"], {"id": data["appointmentCheckIn"]["id"],
                                                                   "status": "ARRIVED",
                                                                   "visit": {"status": "ARRIVED"}})),
        Op("appointmentNoShow", "appointmentNoShow",
           "mutation($id: ID!) { appointmentNoShow(id: $id, version: 1) { id status } }", under_way, update,
           lookup=through, expect=status_is("appointmentNoShow", "NO_SHOW")),
        read("identity", "status", "BOOKED"),
        read("clinical", "reason", APPOINTMENT_REASON),
        Op("patientAppointments", "patientAppointments",
           "query($pid: ID!) { patientAppointments(patientId: $pid) { nodes { status } } }", patients_list,
           (("appointment", "read"),), writes=False, lookup=PatientLookup(reached),
           expect=lambda data: _equal(data["patientAppointments"]["nodes"], [{"status": "BOOKED"}])),
    )
    if department != "A":
        ops = tuple(op for op in ops if op.name in ("appointmentBook", "appointmentCancel", "appointment.identity",
                                                    "patientAppointments"))
    return tuple(replace(op, name=op.name + suffix) for op in ops)


async def a_booked_day(tenant: Tenant) -> dict[str, Any]:
    """The matrix schedule's day with one appointment on it (which ones a role sees: tests/api)."""
    _, _, schedule_id = await matrix_appointment(tenant)
    return {"sid": schedule_id, "date": (await matrix_slot(tenant))[:10]}


async def _appointment_id(tenant: Tenant) -> str:
    return (await matrix_appointment(tenant))[1]


async def a_clinicians_day(tenant: Tenant) -> dict[str, Any]:
    return {"cid": str(tenant.staff_ids["doctor"]), "date": (await matrix_slot(tenant))[:10]}


APPOINTMENT_OPS: tuple[Op, ...] = (
    *appointment_ops("A"),
    *appointment_ops("B"),
    Op("scheduleDay", "scheduleDay",
       "query($sid: ID!, $date: Date!) { scheduleDay(scheduleId: $sid, date: $date) { nodes { status } } }",
       a_booked_day, (("appointment", "read"),), writes=False),
    Op("clinicianDay", "clinicianDay",
       "query($cid: ID!, $date: Date!) { clinicianDay(clinicianId: $cid, date: $date) { nodes { status } } }",
       a_clinicians_day, (("appointment", "read"),), writes=False,
       expect=lambda data: _equal(data["clinicianDay"]["nodes"], [])),
    page_section("upcomingAppointments", "status", "appointment", _appointment_id, [{"status": "BOOKED"}]),
    # The portal's own: staff are refused (FORBIDDEN without the permission, NOT_FOUND with it).
    Op("myAppointments", "myAppointments", "{ myAppointments { nodes { status } } }", nothing,
       (("appointment", "read"),), writes=False, lookup=PortalOnly()),
)
NOT_FOR_STAFF.add("myAppointments")


# -- campaigns (issue 13) ------------------------------------------------------------------------------------

CAMPAIGN_FIELDS = "status purpose recipients"
CAMPAIGN_BODY = "{patient_name}, news from {institution_name}. Unsubscribe: {unsubscribe_url}"


async def with_draft_campaign(tenant: Tenant) -> dict[str, Any]:
    """A draft addressed to department A (its head and the admins may start or cancel it)."""
    row = await Campaign.create(institution_id=tenant.id, name="Spring", purpose="campaign", cause="campaign",
                                body=CAMPAIGN_BODY, audience={"department_ids": [str(tenant.departments["A"].id)]},
                                author_id=tenant.staff_ids["admin"])
    return {"id": str(row.id)}


async def with_campaign_to_approve(tenant: Tenant) -> dict[str, Any]:
    """A draft to department A written by an account that approves nothing (the matrix signs in one account per role,
    and an admin or a head approving a campaign of their own is refused: tests/api/test_campaign_approval.py)."""
    row = await Campaign.create(institution_id=tenant.id, name="Spring", purpose="campaign", cause="campaign",
                                body=CAMPAIGN_BODY, audience={"department_ids": [str(tenant.departments["A"].id)]},
                                author_id=tenant.staff_ids["doctor"])
    return {"id": str(row.id)}


async def with_approved_campaign(tenant: Tenant) -> dict[str, Any]:
    """A draft to department A written by the admin and approved by the department's head: it may be started."""
    row = await Campaign.create(institution_id=tenant.id, name="Spring", purpose="campaign", cause="campaign",
                                body=CAMPAIGN_BODY, audience={"department_ids": [str(tenant.departments["A"].id)]},
                                author_id=tenant.staff_ids["admin"],
                                approved_by_id=tenant.staff_ids["department_head"], approved_at=datetime.now(UTC))
    return {"id": str(row.id)}


async def campaign_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": {"name": "Spring", "purpose": "CAMPAIGN", "body": CAMPAIGN_BODY}}


CAMPAIGN_OPS: tuple[Op, ...] = (
    Op("campaigns", "campaigns", "{ campaigns(first: 5) { nodes { status } } }",
       lambda tenant: _nothing_after(with_draft_campaign(tenant)), (("campaign", "read"),), writes=False,
       expect=lambda data: _equal(data["campaigns"]["nodes"], [{"status": "DRAFT"}])),
    Op("campaign", "campaign", f"query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN_FIELDS} }} }}",
       with_draft_campaign, (("campaign", "read"),), writes=False,
       expect=lambda data: _equal(data["campaign"]["status"], "DRAFT")),
    Op("campaignPreview", "campaignPreview", "{ campaignPreview(purpose: GREETING) { audience recipients } }",
       nothing, (("campaign", "read"),), writes=False),
    Op("campaignCreate", "campaignCreate",
       f"mutation($input: CampaignCreateInput!) {{ campaignCreate(input: $input) {{ {CAMPAIGN_FIELDS} }} }}",
       campaign_input, (("campaign", "create"),),
       expect=lambda data: _equal(data["campaignCreate"]["status"], "DRAFT")),
    Op("campaignApprove", "campaignApprove",
       f"mutation($id: ID!) {{ campaignApprove(id: $id) {{ {CAMPAIGN_FIELDS} approvedAt }} }}",
       with_campaign_to_approve, (("campaign", "approve"),),
       expect=lambda data: _equal(data["campaignApprove"]["approvedAt"] is not None, True)),
    Op("campaignStart", "campaignStart", f"mutation($id: ID!) {{ campaignStart(id: $id) {{ {CAMPAIGN_FIELDS} }} }}",
       with_approved_campaign, (("campaign", "update"),),
       expect=lambda data: _equal(data["campaignStart"]["status"], "SENDING")),
    Op("campaignCancel", "campaignCancel", f"mutation($id: ID!) {{ campaignCancel(id: $id) {{ {CAMPAIGN_FIELDS} }} }}",
       with_draft_campaign, (("campaign", "update"),),
       expect=lambda data: _equal(data["campaignCancel"]["status"], "CANCELLED")),
)


# -- questionnaires (issue 14) --------------------------------------------------------------------------
#
# The institution's, in no department: the policy alone decides. The matrix questionnaire is a draft the admin
# wrote (one Likert item); the FHIR import is a one-item questionnaire from elsewhere.

QUESTIONNAIRE_KEEPER = "admin"
QUESTIONNAIRE_CREATE = """mutation($input: QuestionnaireCreateInput!) {
  questionnaireCreate(input: $input) { id status } }"""
QUESTIONNAIRE_INPUT = {"title": {"zhCN": "矩阵问卷"}, "scoring": {"method": "MEAN", "satisfiedAt": 75},
                       "items": [{"linkId": "q1", "kind": "LIKERT", "text": {"zhCN": "满意吗？"}, "required": True}]}
QUESTIONNAIRE_FHIR = ('{"resourceType": "Questionnaire", "status": "draft", "title": "矩阵问卷", "item": [{"linkId": '
                      '"q1", "type": "boolean", "text": "满意吗？"}]}')


async def matrix_questionnaire(tenant: Tenant) -> dict[str, Any]:
    reply = await tenant.call(QUESTIONNAIRE_KEEPER, QUESTIONNAIRE_CREATE, input=QUESTIONNAIRE_INPUT)
    assert reply.errors == [], reply.errors
    return {"id": str(reply.data["questionnaireCreate"]["id"])}


async def questionnaire_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": QUESTIONNAIRE_INPUT}


async def questionnaire_fhir(tenant: Tenant) -> dict[str, Any]:
    return {"json": QUESTIONNAIRE_FHIR}


read_questionnaire = (("questionnaire", "read"),)
update_questionnaire = (("questionnaire", "update"),)

QUESTIONNAIRE_OPS: tuple[Op, ...] = (
    Op("questionnaires", "questionnaires", "{ questionnaires(first: 5) { nodes { version status } } }",
       lambda tenant: _nothing_after(matrix_questionnaire(tenant)), read_questionnaire, writes=False,
       expect=lambda data: _equal(data["questionnaires"]["nodes"], [{"version": 1, "status": "DRAFT"}])),
    Op("questionnaire", "questionnaire", "query($id: ID!) { questionnaire(id: $id) { title { zhCN } } }",
       matrix_questionnaire, read_questionnaire, writes=False,
       expect=lambda data: _equal(data["questionnaire"], {"title": {"zhCN": "矩阵问卷"}})),
    Op("questionnaireTemplates", "questionnaireTemplates", "{ questionnaireTemplates { code } }", nothing,
       read_questionnaire, writes=False, expect=lambda data: _equal(len(data["questionnaireTemplates"]), 4)),
    Op("questionnaireExportFhir", "questionnaireExportFhir", "query($id: ID!) { questionnaireExportFhir(id: $id) }",
       matrix_questionnaire, read_questionnaire, writes=False, expect=lambda data: _equal(
           data["questionnaireExportFhir"].startswith('{"resourceType": "Questionnaire"'), True)),
    Op("questionnaireCreate", "questionnaireCreate", QUESTIONNAIRE_CREATE, questionnaire_input,
       (("questionnaire", "create"),), expect=lambda data: _equal(data["questionnaireCreate"]["status"], "DRAFT")),
    Op("questionnaireImportFhir", "questionnaireImportFhir",
       "mutation($json: String!) { questionnaireImportFhir(json: $json) { status items { kind } } }",
       questionnaire_fhir, (("questionnaire", "create"),), expect=lambda data: _equal(
           data["questionnaireImportFhir"], {"status": "DRAFT", "items": [{"kind": "YES_NO"}]})),
    Op("questionnaireAdopt", "questionnaireAdopt",
       "mutation { questionnaireAdopt(template: CSAT) { status template } }", nothing,
       (("questionnaire", "create"),),
       expect=lambda data: _equal(data["questionnaireAdopt"], {"status": "ACTIVE", "template": "CSAT"})),
    Op("questionnaireUpdate", "questionnaireUpdate", """mutation($id: ID!) {
  questionnaireUpdate(id: $id, revision: 1, input: {anonymous: true}) { newVersion questionnaire { revision } } }""",
       matrix_questionnaire, update_questionnaire, expect=lambda data: _equal(
           data["questionnaireUpdate"], {"newVersion": False, "questionnaire": {"revision": 2}})),
    Op("questionnaireActivate", "questionnaireActivate",
       "mutation($id: ID!) { questionnaireActivate(id: $id) { status } }", matrix_questionnaire,
       update_questionnaire, expect=lambda data: _equal(data["questionnaireActivate"]["status"], "ACTIVE")),
    Op("questionnaireRetire", "questionnaireRetire", "mutation($id: ID!) { questionnaireRetire(id: $id) { status } }",
       matrix_questionnaire, update_questionnaire,
       expect=lambda data: _equal(data["questionnaireRetire"]["status"], "RETIRED")),
)


# -- survey reports (issue 14) ----------------------------------------------------------------------------
#
# Aggregates of a department's survey responses (none here: the figures are empty): department heads read their
# own departments', admins every department; another department is refused and recorded as other_department.

SURVEY_REPORT_READER_ALL = "admin"
SURVEY_PERIOD = 'from: "2020-01", to: "2020-02"'


@dataclass(frozen=True)
class SurveyReportReach:
    """The department asked about: a department head's own, or any for an admin."""

    department: str

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if role == SURVEY_REPORT_READER_ALL or (self.department == "A" and in_department_a(role, institution_id)):
            return None
        return "FORBIDDEN", "other_department"


def survey_report_ops(department: str) -> tuple[Op, ...]:
    async def asked(tenant: Tenant) -> dict[str, Any]:
        row = await Questionnaire.create(
            institution_id=tenant.id, key=uuid.uuid4(), status="active", title={"zh-CN": "矩阵问卷"},
            items=[{"link_id": "q1", "kind": "likert", "text": {"zh-CN": "满意吗？"}, "required": True}],
            scoring={"method": "mean", "satisfied_at": 75})
        return {"key": str(row.key), "dep": str(tenant.departments[department].id)}

    reach, read = SurveyReportReach(department), (("survey_report", "read"),)
    suffix = "" if department == "A" else f".of_{department.lower()}"
    return tuple(replace(op, name=op.name + suffix) for op in (
        Op("surveyReport", "surveyReport", f"""query($key: ID!, $dep: ID!) {{
  surveyReport(questionnaireKey: $key, departmentId: $dep, {SURVEY_PERIOD}) {{ from rows {{ month }} }} }}""",
           asked, read, writes=False, lookup=reach,
           expect=lambda data: _equal(data["surveyReport"], {"from": "2020-01", "rows": []})),
        Op("surveyComparison", "surveyComparison", """query($key: ID!, $dep: ID!) {
  surveyComparison(questionnaireKey: $key, groupA: {from: "2020-01", to: "2020-01"},
                   groupB: {from: "2020-02", to: "2020-02", departmentId: $dep}) { test status } }""",
           asked, read, writes=False, lookup=reach,
           expect=lambda data: _equal(data["surveyComparison"], {"test": "WELCH_T", "status": "TOO_FEW_RESPONSES"})),
        Op("surveyControlChart", "surveyControlChart", f"""query($key: ID!, $dep: ID!) {{
  surveyControlChart(questionnaireKey: $key, departmentId: $dep, {SURVEY_PERIOD}) {{ centreLine points {{ month }} }}
}}""", asked, read, writes=False, lookup=reach, expect=lambda data: _equal(
            data["surveyControlChart"], {"centreLine": None, "points": [{"month": "2020-01"}, {"month": "2020-02"}]})),
    ))


SURVEY_REPORT_OPS = (*survey_report_ops("A"), *survey_report_ops("B"))


# -- survey distribution and answering (issue 14) ---------------------------------------------------------
#
# Settings and triggers (survey: read, update), a patient's invitations and the portal's own (survey_invitation:
# read), a one-off survey campaign (survey_invitation: create), answers entered by staff or given in the portal
# (questionnaire_response: create), responses (questionnaire_response: read) and their free text
# (questionnaire_response.text: read). The link's two operations need no sign-in: not guarded, tested in
# tests/api/test_questionnaire_responses.py. The matrix patient is invited to a one-item questionnaire.

SURVEY_ANSWERS = [{"linkId": "q1", "number": 1}, {"linkId": "q2", "text": "Waited an hour"}]
SURVEY_ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: PHONE) { anonymous followUp } }"""


async def survey_questionnaire(tenant: Tenant) -> Questionnaire:
    return await Questionnaire.create(
        institution_id=tenant.id, key=uuid.uuid4(), status="active", title={"zh-CN": "矩阵问卷"},
        items=[{"link_id": "q1", "kind": "likert", "text": {"zh-CN": "满意吗？"}, "required": True, "counts": True},
               {"link_id": "q2", "kind": "text", "text": {"zh-CN": "意见"}, "required": False, "counts": False}],
        scoring={"method": "mean", "satisfied_at": 75, "nps_item": None, "csat_item": None,
                 "low": {"any_item_at_most": 2, "nps_at_most": None}})


async def matrix_survey_trigger(tenant: Tenant) -> dict[str, Any]:
    q = await survey_questionnaire(tenant)
    row = await SurveyTrigger.create(institution_id=tenant.id, questionnaire_key=q.key, event="visit_finished",
                                     department_id=tenant.departments["A"].id)
    return {"id": str(row.id)}


async def survey_trigger_input(tenant: Tenant) -> dict[str, Any]:
    q = await survey_questionnaire(tenant)
    return {"input": {"event": "TICKET_CLOSED", "questionnaireKey": str(q.key),
                      "departmentId": str(tenant.departments["A"].id)}}


async def matrix_survey_invitation(tenant: Tenant) -> SurveyInvitation:
    """The matrix patient (department A) invited to answer."""
    q, pid, now = await survey_questionnaire(tenant), await matrix_patient(tenant), datetime.now(UTC)
    return await SurveyInvitation.create(institution_id=tenant.id, questionnaire_id=q.id, cause_key="matrix",
                                         patient_id=pid, department_id=tenant.departments["A"].id, send_at=now,
                                         expires_at=now + timedelta(days=14))


async def with_survey_invitation(tenant: Tenant) -> dict[str, Any]:
    return {"id": str((await matrix_survey_invitation(tenant)).id), "answers": SURVEY_ANSWERS}


async def with_invited_patient(tenant: Tenant) -> dict[str, Any]:
    return {"pid": str((await matrix_survey_invitation(tenant)).patient_id)}


async def with_survey_response(tenant: Tenant) -> dict[str, Any]:
    """A low answer the nurse took by phone: its complaint ticket is assigned to the support agent, so every
    role that reads responses reaches it (admins the institution's, the head department A's, the agent its
    ticket's)."""
    invitation = await matrix_survey_invitation(tenant)
    reply = await tenant.call("nurse", SURVEY_ENTER, id=str(invitation.id), answers=SURVEY_ANSWERS)
    assert reply.errors == [], reply.errors
    response = await QuestionnaireResponse.get(invitation_id=invitation.id)
    await Ticket.filter(id=response.follow_up_ticket_id).update(assignee_id=tenant.staff_ids["support_agent"])
    return {"id": str(response.id)}


async def staff_rating_input(tenant: Tenant) -> dict[str, Any]:
    """A staff questionnaire (anonymous) to rate department A with."""
    q = await survey_questionnaire(tenant)
    await Questionnaire.filter(id=q.id).update(respondent="staff", anonymous=True)
    return {"qid": str(q.id), "dep": str(tenant.departments["A"].id), "answers": [{"linkId": "q1", "number": 4}]}


async def survey_invite_input(tenant: Tenant) -> dict[str, Any]:
    await matrix_patient(tenant)
    return {"qid": str((await survey_questionnaire(tenant)).id)}


read_responses = (("questionnaire_response", "read"),)
SURVEY_OPS: tuple[Op, ...] = (
    Op("surveySettings", "surveySettings", "{ surveySettings { fatigueDays minCell version } }", nothing,
       (("survey", "read"),), writes=False,
       expect=lambda data: _equal(data["surveySettings"], {"fatigueDays": 30, "minCell": 5, "version": 0})),
    Op("surveySettingsUpdate", "surveySettingsUpdate",
       "mutation { surveySettingsUpdate(input: {fatigueDays: 60}) { fatigueDays version } }", nothing,
       (("survey", "update"),),
       expect=lambda data: _equal(data["surveySettingsUpdate"], {"fatigueDays": 60, "version": 1})),
    Op("surveyTriggers", "surveyTriggers", "{ surveyTriggers { nodes { event active } } }",
       lambda tenant: _nothing_after(matrix_survey_trigger(tenant)), (("survey", "read"),), writes=False,
       expect=lambda data: _equal(data["surveyTriggers"]["nodes"], [{"event": "VISIT_FINISHED", "active": True}])),
    Op("surveyTriggerCreate", "surveyTriggerCreate",
       "mutation($input: SurveyTriggerCreateInput!) { surveyTriggerCreate(input: $input) { event } }",
       survey_trigger_input, (("survey", "update"),),
       expect=lambda data: _equal(data["surveyTriggerCreate"], {"event": "TICKET_CLOSED"})),
    Op("surveyTriggerUpdate", "surveyTriggerUpdate",
       "mutation($id: ID!) { surveyTriggerUpdate(id: $id, input: {delayHours: 48}, version: 1) { delayHours } }",
       matrix_survey_trigger, (("survey", "update"),),
       expect=lambda data: _equal(data["surveyTriggerUpdate"], {"delayHours": 48})),
    Op("surveyTriggerDeactivate", "surveyTriggerDeactivate",
       "mutation($id: ID!) { surveyTriggerDeactivate(id: $id, version: 1) { active } }", matrix_survey_trigger,
       (("survey", "update"),), expect=lambda data: _equal(data["surveyTriggerDeactivate"], {"active": False})),
    Op("surveyInvite", "surveyInvite", "mutation($qid: ID!) { surveyInvite(questionnaireId: $qid) { invited } }",
       survey_invite_input, (("survey_invitation", "create"),),
       expect=lambda data: _equal(data["surveyInvite"], {"invited": 1})),
    Op("patientSurveyInvitations", "patientSurveyInvitations",
       "query($pid: ID!) { patientSurveyInvitations(patientId: $pid) { nodes { status } } }", with_invited_patient,
       (("survey_invitation", "read"),), writes=False, lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["patientSurveyInvitations"]["nodes"], [{"status": "REQUESTED"}])),
    Op("mySurveyInvitations", "mySurveyInvitations", "{ mySurveyInvitations { nodes { status } } }", nothing,
       (("survey_invitation", "read"),), writes=False, lookup=PortalOnly()),
    Op("surveyAnswer", "surveyAnswer", """mutation($id: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswer(invitationId: $id, answers: $answers) { anonymous } }""", with_survey_invitation,
       (("questionnaire_response", "create"),), lookup=PortalOnly()),
    Op("surveyResponseEnter", "surveyResponseEnter", SURVEY_ENTER, with_survey_invitation,
       (("questionnaire_response", "create"),), lookup=PatientLookup(reaches_department_a),
       expect=lambda data: _equal(data["surveyResponseEnter"], {"anonymous": False, "followUp": True})),
    Op("questionnaireResponses", "questionnaireResponses", "{ questionnaireResponses { nodes { source low } } }",
       lambda tenant: _nothing_after(with_survey_response(tenant)), read_responses, writes=False,
       expect=lambda data: _equal(data["questionnaireResponses"]["nodes"], [{"source": "PHONE", "low": True}])),
    Op("questionnaireResponse", "questionnaireResponse",
       "query($id: ID!) { questionnaireResponse(id: $id) { score answers { linkId number } } }",
       with_survey_response, read_responses, writes=False,
       expect=lambda data: _equal(data["questionnaireResponse"], {"score": 0.0, "answers": [
           {"linkId": "q1", "number": 1.0}, {"linkId": "q2", "number": None}]})),
    Op("questionnaireResponseExportFhir", "questionnaireResponseExportFhir",
       "query($id: ID!) { questionnaireResponseExportFhir(id: $id) }", with_survey_response, read_responses,
       writes=False, expect=lambda data: _equal(
           data["questionnaireResponseExportFhir"].startswith('{"resourceType": "QuestionnaireResponse"'), True),
       withheld_without=(("questionnaire_response.text", "read"),)),
    Op("surveyStaffAnswer", "surveyStaffAnswer", """mutation($qid: ID!, $dep: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyStaffAnswer(questionnaireId: $qid, departmentId: $dep, answers: $answers) { anonymous responseId } }""",
       staff_rating_input, (("questionnaire_response.staff", "create"),),
       expect=lambda data: _equal(data["surveyStaffAnswer"], {"anonymous": True, "responseId": None})),
    Op("questionnaireResponseComments", "questionnaireResponseComments",
       "{ questionnaireResponseComments { nodes { comments { text } } } }",
       lambda tenant: _nothing_after(with_survey_response(tenant)),
       (*read_responses, ("questionnaire_response.text", "read")), writes=False,
       expect=lambda data: _equal(data["questionnaireResponseComments"]["nodes"],
                                  [{"comments": [{"text": "Waited an hour"}]}])),
)
NOT_FOR_STAFF.update({"mySurveyInvitations", "surveyAnswer"})


# -- service contracts (issue 15) --------------------------------------------------------------------------------
#
# A contract of the matrix patient (department A), drafted by the front desk with one weekly catalogue item; sent
# by an admin; made active through the real signatures (the institution's by an admin, the client's in person
# recorded by the front desk). Every role allowed by the policy reaches a department-A patient, so these rows are
# decided by the permissions alone; reach, the patient's portal, partners and the field classes of commercial
# terms and clauses are tested in tests/api/test_contract*.py. Delivery and the report: the report helper's rows.

CONTRACT_GET = "query($id: ID!) { contract(id: $id) { version versions { number documentSha256 } } }"
CONTRACT_SEND = "mutation($id: ID!, $v: Int!) { contractSend(contractId: $id, expectedVersion: $v) { status } }"
CONTRACT_SIGN = """mutation($input: ContractSignInput!) { contractSign(input: $input) { party } }"""


async def _contract_state(tenant: Tenant, contract_id: str) -> dict[str, Any]:
    reply = await tenant.call("admin", CONTRACT_GET, id=contract_id)
    assert not reply.errors, reply.errors
    return dict(reply.data["contract"])


async def with_drafted_contract(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """A draft contract of the matrix patient (department A): nothing signed, no billing period yet."""
    made = await draft(tenant, await matrix_patient(tenant), [item_input(await make_item(tenant))], **fields)
    return {"id": made["id"], "v": made["version"]}


async def with_sent_contract(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    made = await with_drafted_contract(tenant, **fields)
    reply = await tenant.call("admin", CONTRACT_SEND, id=made["id"], v=made["v"])
    assert not reply.errors, reply.errors
    state = await _contract_state(tenant, made["id"])
    return {"id": made["id"], "v": state["version"], "sha": state["versions"][-1]["documentSha256"]}


def _sign_input(made: dict[str, Any], party: str) -> dict[str, Any]:
    return {"contractId": made["id"], "versionNumber": 1, "party": party, "method": "IN_PERSON",
            "documentSha256": made["sha"]}


async def with_active_contract(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    made = await with_sent_contract(tenant, **fields)
    for role, party in (("admin", "INSTITUTION"), ("front_desk", "CLIENT")):
        reply = await tenant.call(role, CONTRACT_SIGN, input=_sign_input(made, party))
        assert not reply.errors, reply.errors
    return {"id": made["id"], "v": (await _contract_state(tenant, made["id"]))["version"]}


async def with_started_contract(tenant: Tenant) -> dict[str, Any]:
    """An ACTIVE contract whose term started today: terminated, not revoked (a term not started is REVOKED)."""
    return await with_active_contract(tenant, startOn=today().isoformat())


async def with_suspended_contract(tenant: Tenant) -> dict[str, Any]:
    made = await with_active_contract(tenant)
    reply = await tenant.call("admin", CONTRACT_STATUS.format(op="contractSuspend", reason=', reason: "Unpaid"'),
                              id=made["id"], v=made["v"])
    assert not reply.errors, reply.errors
    return {"id": made["id"], "v": (await _contract_state(tenant, made["id"]))["version"]}


async def with_amended_contract(tenant: Tenant) -> dict[str, Any]:
    made = await with_active_contract(tenant)
    reply = await tenant.call("admin", CONTRACT_AMEND, id=made["id"], v=made["v"])
    assert not reply.errors, reply.errors
    return {"id": made["id"]}


async def with_contract_input(tenant: Tenant) -> dict[str, Any]:
    return {"input": draft_input(await matrix_patient(tenant), [item_input(await make_item(tenant))])}


async def with_sign_input(tenant: Tenant, party: str) -> dict[str, Any]:
    return {"input": _sign_input(await with_sent_contract(tenant), party)}


CONTRACT_STATUS = "mutation($id: ID!, $v: Int!) {{ {op}(contractId: $id, expectedVersion: $v{reason}) {{ status }} }}"
AMEND_ON = (date.today() + timedelta(days=30)).isoformat()
RENEW_TO = (date.today() + timedelta(days=800)).isoformat()
CONTRACT_AMEND = ("mutation($id: ID!, $v: Int!) { contractAmend(contractId: $id, expectedVersion: $v, "
                  f'input: {{effectiveOn: "{AMEND_ON}", changeSummary: "One more visit a week"}}) '
                  "{ currentVersion } }")


def _status_is(root: str, status: str) -> Callable[[Any], None]:
    return lambda data: _equal(data[root]["status"], status)


CONTRACT_OPS = (
    Op("contract", "contract", "query($id: ID!) { contract(id: $id) { status } }", with_drafted_contract,
       (("contract", "read"),), writes=False, expect=_status_is("contract", "DRAFT")),
    Op("contracts", "contracts", "query { contracts(first: 5) { nodes { status } } }", with_drafted_contract,
       (("contract", "read"),), writes=False,
       expect=lambda data: _equal(data["contracts"]["nodes"], [{"status": "DRAFT"}])),
    Op("contractCreate", "contractCreate",
       "mutation($input: ContractCreateInput!) { contractCreate(input: $input) { status } }", with_contract_input,
       (("contract", "create"),), expect=_status_is("contractCreate", "DRAFT")),
    Op("contractDraftUpdate", "contractDraftUpdate",
       'mutation($id: ID!, $v: Int!) { contractDraftUpdate(contractId: $id, expectedVersion: $v, '
       'input: {title: "Home care, revised"}) { title } }', with_drafted_contract, (("contract", "update"),),
       expect=lambda data: _equal(data["contractDraftUpdate"]["title"], "Home care, revised")),
    Op("contractSend", "contractSend", CONTRACT_SEND, with_drafted_contract, (("contract", "update"),),
       expect=_status_is("contractSend", "SENT")),
    Op("contractWithdraw", "contractWithdraw",
       "mutation($id: ID!, $v: Int!) { contractWithdraw(contractId: $id, versionNumber: 1, expectedVersion: $v) "
       "{ status } }", lambda tenant: _without(with_sent_contract(tenant), "sha"), (("contract", "update"),),
       expect=_status_is("contractWithdraw", "DRAFT")),
    Op("contractSign", "contractSign", CONTRACT_SIGN, lambda tenant: with_sign_input(tenant, "CLIENT"),
       (("contract_signature", "create"),), expect=lambda data: _equal(data["contractSign"]["party"], "CLIENT")),
    Op("contractSign.institution", "contractSign", CONTRACT_SIGN,
       lambda tenant: with_sign_input(tenant, "INSTITUTION"),
       (("contract_signature", "create"), ("contract.status", "update")),
       expect=lambda data: _equal(data["contractSign"]["party"], "INSTITUTION")),
    Op("contractSignatures", "contractSignatures",
       "query($id: ID!) { contractSignatures(contractId: $id, versionNumber: 1) { party } }",
       lambda tenant: _without(with_sent_contract(tenant), "sha", "v"), (("contract", "read"),), writes=False,
       expect=lambda data: _equal(data["contractSignatures"], [])),
    Op("contractSuspend", "contractSuspend",
       CONTRACT_STATUS.format(op="contractSuspend", reason=', reason: "Unpaid"'), with_active_contract,
       (("contract.status", "update"),), expect=_status_is("contractSuspend", "SUSPENDED")),
    Op("contractResume", "contractResume", CONTRACT_STATUS.format(op="contractResume", reason=""),
       with_suspended_contract, (("contract.status", "update"),), expect=_status_is("contractResume", "ACTIVE")),
    Op("contractTerminate", "contractTerminate",
       CONTRACT_STATUS.format(op="contractTerminate", reason=', reason: "Moved away"'), with_started_contract,
       (("contract.status", "update"),), expect=_status_is("contractTerminate", "TERMINATED")),
    Op("contractAmend", "contractAmend", CONTRACT_AMEND, with_active_contract, (("contract", "update"),)),
    Op("contractRenew", "contractRenew",
       f'mutation($id: ID!) {{ contractRenew(contractId: $id, input: {{endOn: "{RENEW_TO}"}}) {{ status }} }}',
       lambda tenant: _without(with_active_contract(tenant), "v"),
       (("contract", "update"),), expect=_status_is("contractRenew", "DRAFT")),
    Op("contractVersions", "contractVersions",
       "query($id: ID!) { contractVersions(contractId: $id) { nodes { number status } } }", with_drafted_contract,
       (("contract", "read"),), writes=False,
       expect=lambda data: _equal(data["contractVersions"]["nodes"], [{"number": 1, "status": "DRAFT"}])),
    Op("contractVersionDiff", "contractVersionDiff",
       "query($id: ID!) { contractVersionDiff(contractId: $id, fromVersion: 1, toVersion: 2) { __typename } }",
       with_amended_contract, (("contract", "read"),), writes=False),
)


@dataclass(frozen=True)
class PatientsOwn:
    """A patient's own operation that staff are refused outright (FORBIDDEN), whatever they may do for others."""

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        return "FORBIDDEN", "forbidden"


async def with_my_sign_input(tenant: Tenant) -> dict[str, Any]:
    made = await with_sent_contract(tenant)
    return {"input": {"contractId": made["id"], "versionNumber": 1, "documentSha256": made["sha"]}}


CONTRACT_OPS = (*CONTRACT_OPS, Op(
    "myContractSign", "myContractSign",
    "mutation($input: MyContractSignInput!) { myContractSign(input: $input) { party } }", with_my_sign_input,
    (("contract_signature", "create"),), lookup=PatientsOwn()))
NOT_FOR_STAFF.add("myContractSign")
# Field classes read inside a contract (null + FORBIDDEN at the field's path, the contract itself returned) do not
# fit the rows above, which refuse a whole root field: tests/api/test_contracts.py
# test_commercial_terms_and_clauses_follow_their_field_classes checks them for every role.
FIELD_RULES_TESTED_ELSEWHERE = {("contract.terms", "read"), ("contract.clauses", "read")}


async def _without(variables: Awaitable[dict[str, Any]], *names: str) -> dict[str, Any]:
    return {key: value for key, value in (await variables).items() if key not in names}


CONTRACT_REPORT_READERS_ALL = frozenset({"admin", "finance"})


@dataclass(frozen=True)
class ContractReportReach:
    """The department asked about: a department head's own, or any for admins and finance."""

    department: str

    async def arrange(self, tenant: Tenant, role: str, variables: dict[str, Any]) -> None:
        return None

    def denial(self, role: str, institution_id: uuid.UUID) -> Denial | None:
        if role in CONTRACT_REPORT_READERS_ALL or (self.department == "A" and in_department_a(role, institution_id)):
            return None
        return "FORBIDDEN", "other_department"


def contract_report_op(department: str) -> Op:
    async def asked(tenant: Tenant) -> dict[str, Any]:
        return {"dep": str(tenant.departments[department].id)}

    return Op(f"contractReport{'' if department == 'A' else '.of_' + department.lower()}", "contractReport",
              """query($dep: ID) { contractReport(from: "2020-01", to: "2020-02", departmentId: $dep) {
  months { month active deliveryRate } } }""", asked, (("contract_report", "read"),), writes=False,
              lookup=ContractReportReach(department),
              expect=lambda data: _equal(data["contractReport"]["months"], [
                  {"month": "2020-01", "active": 0, "deliveryRate": None},
                  {"month": "2020-02", "active": 0, "deliveryRate": None}]))


CONTRACT_REPORT_OPS = (
    Op("contractDelivery", "contractDelivery",
       "query($id: ID!) { contractDelivery(contractId: $id) { contractId periods { start } } }",
       lambda tenant: _without(with_drafted_contract(tenant), "v"), (("contract_report", "read"),), writes=False,
       expect=lambda data: _equal(data["contractDelivery"]["periods"], [])),
    contract_report_op("A"),
    contract_report_op("B"),
)


# Accounts (issue 16): an admin's actions on staff credentials and the institution's sign-in rule; a patient's
# reset code. One's own password and second factor are every signed-in user's (unguarded, below).
async def with_locked_nurse(tenant: Tenant) -> dict[str, Any]:
    await Staff.filter(id=tenant.staff_ids["nurse"]).update(failed_logins=0,
                                                            locked_until=datetime.now(UTC) + timedelta(minutes=15))
    return await with_nurse(tenant)


async def with_enrolling_nurse(tenant: Tenant) -> dict[str, Any]:
    reply = await tenant.call("nurse", "mutation { totpEnroll { uri } }")
    assert reply.errors == [], reply.errors
    return await with_nurse(tenant)


ACCOUNT_OPS: tuple[Op, ...] = (
    Op("staffPasswordResetIssue", "staffPasswordResetIssue",
       "mutation($id: ID!) { staffPasswordResetIssue(staffId: $id) { expiresAt } }", with_nurse,
       (("staff_credential", "update"),)),
    Op("staffUnlock", "staffUnlock", "mutation($id: ID!) { staffUnlock(staffId: $id) }", with_locked_nurse,
       (("staff_credential", "update"),)),
    Op("staffTotpDisable", "staffTotpDisable", "mutation($id: ID!) { staffTotpDisable(staffId: $id) }",
       with_enrolling_nurse, (("staff_credential", "update"),)),
    # Switched on, it ends the sessions of the nurse, the doctor and the department head (no second factor yet).
    Op("institutionSecurityUpdate", "institutionSecurityUpdate",
       "mutation { institutionSecurityUpdate(totpRequired: true) { totpRequired } }", nothing,
       (("institution_security", "update"),)),
    Op("patientPasswordResetIssue", "patientPasswordResetIssue",
       "mutation($pid: ID!) { patientPasswordResetIssue(patientId: $pid) { expiresAt } }", with_patient_account,
       (("patient_account", "update"),)),
)


# Tickets in the portals (issue 16): the tickets one opened (staff who read tickets), a patient's own new ticket,
# the tickets a partner opened.
TICKET_PORTAL_OPS: tuple[Op, ...] = (
    Op("myOpenedTickets", "myOpenedTickets", "{ myOpenedTickets { nodes { id status } } }", nothing,
       (("ticket", "read"),), writes=False, expect=lambda data: _equal(data["myOpenedTickets"]["nodes"], [])),
    Op("myTicketCreate", "myTicketCreate",
       "mutation { myTicketCreate(input: {category: REQUEST, subject: \"Reprint\", channel: APP}) { id } }",
       nothing, (("my_ticket", "create"),)),
    Op("partnerTickets", "partnerTickets", "{ partnerTickets { nodes { id } } }", nothing,
       (("partner_ticket", "read"),), writes=False),
)
NOT_FOR_STAFF.update({"myTicketCreate", "partnerTickets"})


OPS: tuple[Op, ...] = (
    *TICKET_PORTAL_OPS,
    *CONTRACT_OPS,
    *CONTRACT_REPORT_OPS,
    *(create_op(cls) for cls in PATIENT_CLASSES),
    *(update_op(cls) for cls in PATIENT_CLASSES),
    Op("patientArchive", "patientArchive", "mutation($id: ID!) { patientArchive(id: $id) { id } }",
       with_patient, (("patient", "archive"),)),
    Op("patientUnarchive", "patientUnarchive", "mutation($id: ID!) { patientUnarchive(id: $id) { id } }",
       with_archived_patient, (("patient", "archive"),)),
    Op("patientMerge", "patientMerge",
       "mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) { merged { id status } } }",
       with_two_files, (("patient", "merge"),)),
    *(read_op(cls) for cls in PATIENT_CLASSES),
    Op("patient.contacts", "patient", "query($id: ID!) { patient(id: $id) { id contacts { name phone } } }",
       with_patient_and_contact, (("patient.contact", "read"), ("contact", "read")), writes=False,
       row_scoped=True, field="contacts", expect=expect_contacts),
    Op("contactCreate", "contactCreate", CONTACT_CREATE, new_contact, (("contact", "create"),)),
    Op("contactUpdate", "contactUpdate",
       "mutation($id: ID!, $input: ContactUpdateInput!) { contactUpdate(id: $id, input: $input) { id } }",
       contact_renamed, (("contact", "update"),)),
    Op("contactDelete", "contactDelete", "mutation($id: ID!) { contactDelete(id: $id) }",
       with_contact, (("contact", "delete"),)),
    Op("staffCreate", "staffCreate", "mutation($input: StaffCreateInput!) { staffCreate(input: $input) { id } }",
       staff_input, (("staff", "create"),)),
    Op("staffUpdate", "staffUpdate",
       "mutation($id: ID!, $input: StaffUpdateInput!) { staffUpdate(id: $id, input: $input) { id name } }",
       nurse_renamed, (("staff", "update"),)),
    Op("staff", "staff", "query($id: ID!) { staff(id: $id) { id roles } }", with_nurse, (("staff", "read"),),
       writes=False, expect=lambda data: _equal(data["staff"]["roles"], ["NURSE"])),
    Op("roleAssign", "roleAssign", "mutation($id: ID!) { roleAssign(staffId: $id, role: FRONT_DESK) { roles } }",
       with_nurse, (("role", "create"),)),
    Op("roleRevoke", "roleRevoke", "mutation($id: ID!) { roleRevoke(staffId: $id, role: NURSE) { roles } }",
       with_nurse, (("role", "delete"),)),
    Op("careTeamAssign", "careTeamAssign", CARE_ASSIGN, with_patient_a_and_nurse, (("care_team", "create"),)),
    Op("careTeamUnassign", "careTeamUnassign", CARE_UNASSIGN, with_care_team_member, (("care_team", "delete"),)),
    Op("departmentCreate", "departmentCreate", "mutation { departmentCreate(name: \"Department C\") { id } }",
       nothing, (("department", "create"),)),
    Op("departmentUpdate", "departmentUpdate",
       "mutation($id: ID!) { departmentUpdate(id: $id, name: \"Department C\", version: 1) { id version } }",
       lambda tenant: _value(id=str(tenant.departments["B"].id)), (("department", "update"),)),
    Op("staffDirectory", "staffDirectory", "{ staffDirectory(first: 100) { totalCount nodes { id name roles } } }",
       nothing, (("staff.directory", "read"),), writes=False,
       expect=lambda data: _equal(data["staffDirectory"]["totalCount"], len(ROLES))),
    Op("departments", "departments", "{ departments { name } }", nothing, (("department", "read"),),
       writes=False, expect=expect_departments),
    Op("departmentsConnection", "departmentsConnection", "{ departmentsConnection { nodes { name } } }", nothing,
       (("department", "read"),), writes=False, expect=expect_department_page),
    Op("auditEvents", "auditEvents", "{ auditEvents(first: 3) { edges { node { seq } } } }", nothing,
       (("audit", "read"),), writes=False, expect=lambda data: _equal(len(data["auditEvents"]["edges"]), 3)),
    Op("auditChainVerification", "auditChainVerification",
       "{ auditChainVerification { intact fault { kind } } }", nothing, (("audit", "read"),), writes=False,
       expect=lambda data: _equal(data["auditChainVerification"], {"intact": True, "fault": None})),
    Op("patientAccessReport", "patientAccessReport",
       "query($id: ID!) { patientAccessReport(patientId: $id) { actorId reads fieldClasses } }", with_patient,
       (("audit", "read"),), writes=False,
       expect=lambda data: _equal(data["patientAccessReport"][0]["fieldClasses"], ["CLINICAL", "CONTACT", "IDENTITY",
                                                                                  "INTERNAL", "NEEDS"])),
    Op("patientAccessReportConnection", "patientAccessReportConnection",
       "query($id: ID!) { patientAccessReportConnection(patientId: $id) { nodes { actorId reads fieldClasses } } }",
       with_patient, (("audit", "read"),), writes=False,
       expect=lambda data: _equal(data["patientAccessReportConnection"]["nodes"][0]["fieldClasses"],
                                  ["CLINICAL", "CONTACT", "IDENTITY", "INTERNAL", "NEEDS"])),
    Op("accessAnomalies", "accessAnomalies",
       "{ accessAnomalies(from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\") { staffId } }", nothing,
       (("audit", "read"),), writes=False, expect=lambda data: _equal(data["accessAnomalies"], [])),
    Op("breakGlass", "breakGlass",
       "mutation($pid: ID!) { breakGlass(patientId: $pid, reason: \"Unconscious, allergies needed\") { id } }",
       with_patient_of_b, (("patient.emergency", "create"),)),
    Op("emergencyAccesses", "emergencyAccesses", "{ emergencyAccesses { edges { node { id reason } } } }",
       with_emergency_access, (("emergency_access", "read"),), writes=False,
       expect=lambda data: _equal(len(data["emergencyAccesses"]["edges"]), 1)),
    Op("emergencyAccessUnreviewedCount", "emergencyAccessUnreviewedCount", "{ emergencyAccessUnreviewedCount }",
       with_emergency_access, (("emergency_access", "read"),), writes=False,
       expect=lambda data: _equal(data["emergencyAccessUnreviewedCount"], 1)),
    Op("emergencyAccessReview", "emergencyAccessReview",
       "mutation($id: ID!) { emergencyAccessReview(id: $id, outcome: JUSTIFIED) { id outcome } }",
       with_emergency_access, (("emergency_access", "update"),)),
    Op("roleGrants", "roleGrants", "{ roleGrants { edges { node { id role } } } }", with_role_grant,
       (("role_grant", "read"),), writes=False,
       expect=lambda data: _equal([e["node"]["role"] for e in data["roleGrants"]["edges"]], ["FRONT_DESK"])),
    Op("roleGrantUnreviewedCount", "roleGrantUnreviewedCount", "{ roleGrantUnreviewedCount }", with_role_grant,
       (("role_grant", "read"),), writes=False, expect=lambda data: _equal(data["roleGrantUnreviewedCount"], 1)),
    Op("roleGrantReview", "roleGrantReview",
       "mutation($id: ID!) { roleGrantReview(id: $id, outcome: JUSTIFIED) { id outcome } }", with_role_grant,
       (("role_grant", "update"),)),
    *TICKET_AND_SLA_OPS,
    *REPORT_AND_IMPROVEMENT_OPS,
    *PARTNER_AND_PATIENT_OPS,
    *CARE_JOURNEY_OPS,
    *FLAG_OPS,
    *FOLLOW_UP_OPS,
    *VISIT_REPORT_OPS,
    *PATIENT_PAGE_OPS,
    *SCHEDULE_OPS,
    *TEMPLATE_OPS,
    *COMMUNICATION_OPS,
    *APPOINTMENT_OPS,
    *CAMPAIGN_OPS,
    *QUESTIONNAIRE_OPS,
    *SURVEY_REPORT_OPS,
    *SURVEY_OPS,
    *ACCOUNT_OPS,
)


def _equal(actual: Any, expected: Any) -> None:
    assert actual == expected


# -- observing the database ------------------------------------------------------------------


async def snapshot(tenant: Tenant) -> list[tuple[str, str | None]]:
    """Every row of the institution but the audit trail, each table's rows as one text, in one statement (53
    statements, twice a case, were a good part of the matrix's time): equal snapshots, equal rows."""
    db = connections.get("default")
    rows = await db.execute_query_dict(_snapshot_sql(db.capabilities.dialect), [str(tenant.id)])
    return [(row["t"], row["rows"]) for row in rows]


def _snapshot_sql(dialect: str) -> str:
    if dialect == "postgres":
        parts = [f"SELECT '{table}' AS t, (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM \"{table}\" r "
                 f"WHERE r.institution_id = $1::uuid) AS rows" for table in _tables()]
    else:
        parts = [f"SELECT '{table}' AS t, (SELECT group_concat({_sqlite_row(model)}, ',') FROM (SELECT * FROM "
                 f"\"{table}\" WHERE institution_id = ?1 ORDER BY id)) AS rows"
                 for model, table in zip(TENANT_TABLES, _tables(), strict=True)]
    return " UNION ALL ".join(parts)


def _tables() -> list[str]:
    return [model._meta.db_table for model in TENANT_TABLES]


def _sqlite_row(model: Any) -> str:
    return " || '|' || ".join(f'quote("{column}")' for column in sorted(model._meta.fields_db_projection.values()))


async def denied_events(tenant: Tenant) -> list[AuditEvent]:
    return await tenant.audit_events(outcome="denied")


# -- the matrix ------------------------------------------------------------------------------


def cases_on_this_database() -> list[Any]:
    """Every (operation, role) case runs on one of the two databases, in a checkerboard, so that each operation
    meets both with half the roles and each role both with half the operations, and the matrix costs each suite
    half its time (2,448 cases, each with a new institution: a third of a suite). CARELOOP_TEST_MATRIX=full runs
    every case on the database at hand."""
    half = 0 if BACKEND == "sqlite" else 1
    full = os.environ.get("CARELOOP_TEST_MATRIX") == "full"
    return [pytest.param(op, role, id=f"{op.name}-{role}") for i, op in enumerate(OPS)
            for j, role in enumerate(ROLES) if full or (i + j) % 2 == half]


@pytest.mark.parametrize(("op", "role"), cases_on_this_database())
async def test_role_operation(tenant: Tenant, op: Op, role: str) -> None:
    variables = await op.prepare(tenant)
    if op.lookup is not None:
        await op.lookup.arrange(tenant, role, variables)
    before, denied_before = await snapshot(tenant), await denied_events(tenant)

    reply = await tenant.call(role, op.query, **variables)

    after, denied_after = await snapshot(tenant), await denied_events(tenant)
    new_denials = [e for e in denied_after if e.id not in {d.id for d in denied_before}]
    denial = op.denial(role, tenant.id)
    if denial is None:
        assert reply.errors == []
        assert reply.data[op.root] is not None
        if op.expect is not None:
            op.expect(reply.data)
        assert (after != before) is op.writes
        withheld = not all(allows(role, tenant.id, obj, act) for obj, act in op.withheld_without)
        assert [(e.actor_id, e.outcome, e.reason) for e in new_denials] == (
            [(tenant.staff_ids[role], "denied", "forbidden_field")] if withheld else [])
        return
    code, reason = denial
    assert reply.codes == [code], reply.errors
    if reason == "forbidden_field":  # a field-level denial: the row comes back (alone in a list), the field null
        row = {"id": variables["id"], op.field: None}
        assert reply.data[op.root] == ([row] if isinstance(reply.data[op.root], list) else row)
    else:
        assert (reply.data or {}).get(op.root) is None
    assert after == before
    assert [(e.actor_id, e.outcome, e.reason) for e in new_denials] == [(tenant.staff_ids[role], "denied", reason)]
    if reason == "forbidden_field":  # a denied read of the class, on the patient's file
        patient = (await op.lookup.patient_of(variables) if isinstance(op.lookup, ThroughPatient)
                   else uuid.UUID(variables["id"]))
        assert new_denials[0].patient_id == patient


# -- the list follows the same row reach -----------------------------------------------------

PATIENT_IDS = "{ patients(first: 100) { nodes { id } } }"


@pytest.mark.parametrize("role", ROLES)
async def test_patient_list_follows_row_reach(tenant: Tenant, role: str) -> None:
    in_a = await matrix_patient(tenant)
    in_b = await patient_of_b(tenant)
    roles_reach = reach(role, tenant.id)
    expected = [str(pid) for pid, visible in (
        (in_a, bool(roles_reach & {Reach.INSTITUTION, Reach.DEPARTMENT})),
        (in_b, Reach.INSTITUTION in roles_reach),
    ) if visible]

    reply = await tenant.call(role, PATIENT_IDS)

    assert reply.errors == []
    assert [node["id"] for node in reply.data["patients"]["nodes"]] == expected


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("root", TICKET_LISTS)
async def test_ticket_lists_follow_ticket_reach(tenant: Tenant, root: str, role: str) -> None:
    """Tickets the caller's roles reach, and those it owns or works on: nothing else, whatever the department."""
    in_a, in_b, assigned, handed = [await open_ticket(tenant, department) for department in "ABBB"]
    await place(tenant, assigned, role, Stand.ASSIGNEE)
    await place(tenant, handed, role, Stand.OWNER)
    opened = role == TICKET_OPENER
    expected = [str(tid) for tid, visible in (
        (in_a, opened or supervises(role, tenant.id, "A")),
        (in_b, opened or supervises(role, tenant.id, "B")),
        (assigned, opened or placed(role, tenant.id, Stand.ASSIGNEE) is Stand.ASSIGNEE),
        (handed, opened or placed(role, tenant.id, Stand.OWNER) is Stand.OWNER),
    ) if visible]

    reply = await tenant.call(role, TICKET_LISTS[root])

    if not allows(role, tenant.id, "ticket", "read"):
        assert reply.codes == ["FORBIDDEN"]
        return
    assert reply.errors == []
    # tickets: newest first; the queue: soonest due first, the same order here (one level, one clock).
    assert [node["id"] for node in reply.data[root]["nodes"]] == (expected[::-1] if root == "tickets" else expected)


@pytest.mark.parametrize("role", ROLES)
async def test_improvement_list_follows_department_reach(tenant: Tenant, role: str) -> None:
    in_a = await improvement_item(tenant, "A", deadline="2030-01-01")
    in_b = await improvement_item(tenant, "B", deadline="2030-02-01")
    expected = [item for item, department in ((in_a, "A"), (in_b, "B")) if supervises(role, tenant.id, department)]

    reply = await tenant.call(role, IMPROVEMENT_ITEMS)

    if not allows(role, tenant.id, "improvement", "read"):
        assert reply.codes == ["FORBIDDEN"]
        return
    assert reply.errors == []
    # soonest deadline first
    assert [edge["node"]["id"] for edge in reply.data["improvementItems"]["edges"]] == expected


# -- the matrix is complete and meaningful ---------------------------------------------------


def test_every_policy_rule_is_exercised() -> None:
    covered = {requirement for op in OPS for requirement in op.requires} | FIELD_RULES_TESTED_ELSEWHERE
    assert {(rule.obj, rule.act) for rule in GUARD.rules()} <= covered


def test_every_guarded_operation_of_the_schema_is_in_the_matrix() -> None:
    schema = graphql.build_schema(SCHEMA_FILE.read_text())
    assert schema.query_type is not None and schema.mutation_type is not None
    operations = set(schema.query_type.fields) | set(schema.mutation_type.fields)
    # sessions, the list (row reach only, tested above) and a patient's own file (tests/api/test_patient_*.py)
    unguarded = {"me", "login", "logout", "patients", "patientLogin", "patientAccountActivate", "myFile",
                 "surveyByLink", "surveyAnswerByLink",  # a survey link's token is the right to answer once
                 # one's own credentials: every signed-in staff member's and patient's; a reset code is the right
                 "passwordChange", "passwordResetComplete", "totpEnroll", "totpEnrollForLogin", "totpConfirm",
                 "totpDisable"}
    assert operations - unguarded == {op.root for op in OPS}


def test_class_writes_are_refused_within_reach() -> None:
    """An operation that also needs a class of the file checks it after finding the patient; the model checks
    every permission before its lookup. Both give the same outcome while every role holding the operation's
    own permission but not the class reaches the patient (else the resolver would answer NOT_FOUND)."""
    domain = uuid.uuid4()
    for op in OPS:
        own = [r for r in op.requires if not r[0].startswith("patient.")]
        classes = [r for r in op.requires if r[0].startswith("patient.")]
        if op.lookup is None or not own or not classes:
            continue
        for role in ROLES:
            if all(allows(role, domain, *r) for r in own) and not all(allows(role, domain, *r) for r in classes):
                assert op.lookup.denial(role, domain) != ("NOT_FOUND", "not_found"), (op.name, role)


def test_whoever_reads_flags_reads_the_internal_kinds() -> None:
    """Flags of the internal kinds are not shown at all to whoever may not read the internal class (no
    denial: the matrix does not model it), and no staff role that reads flags is such a one."""
    domain = uuid.uuid4()
    assert [role for role in ROLES if allows(role, domain, "flag", "read")
            and not allows(role, domain, "patient.internal", "read")] == []


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_some_role_is_allowed_and_some_denied(op: Op) -> None:
    domain = uuid.uuid4()
    outcomes = {op.allowed(role, domain) for role in ROLES}
    assert outcomes == ({False} if op.name in NOT_FOR_STAFF | IN_NO_ROLES_DEPARTMENT else {True, False})
