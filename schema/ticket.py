"""Support tickets: the type, its timeline and SLA clocks, the queue, and the lifecycle mutations.

A ticket's text (subject, description, root cause, resolution, feedback, timeline notes) is
encrypted at rest and decrypted only when asked for; every read and write is audited on the
ticket's record. Internal notes never appear to whoever may not read ``ticket.internal``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import strawberry

from resolvers import access
from resolvers import attachment as attachments
from resolvers import sla as slas
from resolvers import ticket as tickets
from resolvers.attachment import AttachmentView
from resolvers.context import Context
from resolvers.ticket import TicketFilter as TicketWhere
from resolvers.ticket import TicketView
from schema.common import DEFAULT_PAGE_SIZE, FieldSource, Info, PageInfo, provided, register_node, uuid_of
from schema.department import Department
from schema.patient import Patient
from schema.patient import node as patient_node
from schema.staff import StaffSummary


@strawberry.enum(description="Where the ticket came in.")
class TicketChannel(Enum):
    HOTLINE = "hotline"
    FRONT_DESK = "front_desk"
    NURSE_STATION = "nurse_station"
    WEB_FORM = "web_form"
    APP = "app"
    WECHAT = "wechat"
    EMAIL = "email"
    VIP_ADVISER = "vip_adviser"
    PARTNER = "partner"  # reported by a care partner's API client (scope ticket:create)
    SURVEY = "survey"  # opened by a survey answer under its questionnaire's threshold


@strawberry.enum(description="What the ticket is.")
class TicketCategory(Enum):
    ENQUIRY = "enquiry"
    REQUEST = "request"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"


@strawberry.enum(description="Where the ticket is in its closed loop.")
class TicketStatus(Enum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    WAITING_ON_PATIENT = strawberry.enum_value("waiting_on_patient",
                                               description="The SLA clocks pause until the patient answers.")
    RESOLVED = "resolved"
    FEEDBACK_RECORDED = "feedback_recorded"
    CLOSED = strawberry.enum_value("closed", description="Archived. Reopen by moving it to INVESTIGATING.")


@strawberry.enum(description="Root-cause category (fishbone).")
class RootCause(Enum):
    PEOPLE = "people"
    PROCESS = "process"
    PLACE = "place"
    EQUIPMENT = "equipment"
    OTHER = "other"


@strawberry.enum(description="Where an SLA clock stands.")
class SlaState(Enum):
    ON_TRACK = "on_track"
    AT_RISK = strawberry.enum_value("at_risk", description="80 % of the target's time is used.")
    BREACHED = "breached"
    PAUSED = strawberry.enum_value("paused", description="Waiting on the patient.")
    MET = "met"
    MISSED = "missed"


@strawberry.enum(description="What happened on a ticket's timeline.")
class TicketEventKind(Enum):
    CREATED = "created"
    TRANSITION = "transition"
    REPLY = strawberry.enum_value("reply", description="A reply to the patient.")
    INTERNAL_NOTE = "internal_note"
    HANDOVER = "handover"
    ASSIGNMENT = "assignment"
    LEVEL_CHANGE = "level_change"
    FEEDBACK = "feedback"
    CONTACT_ATTEMPT = strawberry.enum_value("contact_attempt",
                                            description="An attempt to reach the patient; to: reached or unreachable.")
    ATTACHMENT = strawberry.enum_value("attachment", description="A file was attached (see `attachments`).")


_ENUMS: dict[str, type[Enum]] = {"channel": TicketChannel, "category": TicketCategory, "status": TicketStatus,
                                 "root_cause_category": RootCause}


@strawberry.type(description="One SLA target of a ticket: first response or resolution.")
class SlaClock:
    state: SlaState
    due_at: datetime | None = strawberry.field(description="Null while the clock is paused.")
    at_risk_at: datetime | None
    time_left_seconds: int | None = strawberry.field(
        description="Working time left before the due time, in seconds; negative once breached, null when paused "
                    "or stopped.")


@strawberry.type(description="An entry of a ticket's timeline.")
class TicketEvent:
    view: strawberry.Private[TicketView]
    row: strawberry.Private[Any]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def kind(self) -> TicketEventKind:
        return TicketEventKind(self.row.kind)

    @strawberry.field
    def occurred_at(self) -> datetime:
        return cast(datetime, self.row.occurred_at)

    @strawberry.field(description="False for a reply the patient sees.")
    def internal(self) -> bool:
        return bool(self.row.internal)

    @strawberry.field(name="from", description="The status (or level) before.")
    def from_(self) -> str | None:
        return cast(str | None, self.row.from_status)

    @strawberry.field(description="The status (or level, or contact-attempt outcome) after.")
    def to(self) -> str | None:
        return cast(str | None, self.row.to_status)

    @strawberry.field(description="The note or reply (encrypted at rest; reading it is audited).")
    def note(self, info: Info) -> str | None:
        return tickets.read_event_note(info.context, self.view, self.row)

    @strawberry.field(description="Who did it.")
    async def actor(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.row.actor_id)

    @strawberry.field(description="Handed over or assigned to this person.")
    async def to_staff(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.row.to_staff_id)

    @strawberry.field(description="Handed over to this department.")
    async def to_department(self, info: Info) -> Department | None:
        return await _department(info, self.row.to_department_id)


@strawberry.type(description="A file attached to a ticket. Download it from `downloadPath` with your token.")
class TicketAttachment:
    view: strawberry.Private[AttachmentView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The file's name (encrypted at rest; reading it is audited).")
    def filename(self, info: Info) -> str:
        return attachments.read_filename(info.context, self.view)

    @strawberry.field
    def content_type(self) -> str:
        return str(self.view.row.content_type)

    @strawberry.field(description="Bytes.")
    def size(self) -> int:
        return int(self.view.row.size)

    @strawberry.field(description="SHA-256 of the content, hex.")
    def sha256(self) -> str:
        return str(self.view.row.sha256)

    @strawberry.field
    def uploaded_at(self) -> datetime:
        return cast(datetime, self.view.row.created_at)

    @strawberry.field
    def download_path(self) -> str:
        return f"/attachments/{self.view.row.id}"


@strawberry.type
class TicketEventEdge:
    cursor: str
    node: TicketEvent


@strawberry.type(description="A page of a ticket's timeline, oldest first.")
class TicketEventConnection:
    edges: list[TicketEventEdge]
    page_info: PageInfo


class TicketSource(FieldSource):
    """What a ``Ticket`` resolves from (see ``FieldSource``)."""

    __slots__ = ()
    fields = frozenset({"caller_name", "caller_phone", "channel", "category", "subcategory", "level", "vip",
                        "subject", "description", "status", "root_cause_category", "root_cause", "resolution",
                        "feedback", "received_at", "first_responded_at", "resolved_at", "closed_at", "updated_at"})

    def read(self, name: str) -> Any:
        value = tickets.read_field(self.ctx, self.view, name)
        enum = _ENUMS.get(name)
        return enum(value) if enum is not None and value is not None else value


def ticket_node(ctx: Context, view: TicketView) -> Ticket:
    return cast(Ticket, TicketSource(ctx, view))


@strawberry.type(description="A support ticket: enquiry, request, complaint or suggestion, under a tiered SLA.")
class Ticket:
    view: strawberry.Private[TicketView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, when on file (query `patient(id)` for the file itself).")
    def patient_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.view.row.patient_id)) if self.view.row.patient_id else None

    @strawberry.field(description="The patient's file, with the fields your role may read on it; null when the "
                                  "ticket has no patient or the file is outside your reach.")
    async def patient(self, info: Info) -> Patient | None:
        patient_id = self.view.row.patient_id
        if patient_id is None:
            return None
        view = await access.visible_patient(info.context, patient_id)
        return patient_node(info.context, view)

    @strawberry.field(description="The patient's contact who raised it, if any.")
    def contact_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.view.row.contact_id)) if self.view.row.contact_id else None

    caller_name: str | None = strawberry.field(description="The caller, when not on file. Encrypted.")
    caller_phone: str | None = strawberry.field(description="The caller's phone, E.164. Encrypted.")
    channel: TicketChannel
    category: TicketCategory
    subcategory: str
    level: int = strawberry.field(description="1 urgent, 2 normal, 3 suggestion.")
    vip: bool = strawberry.field(description="A VIP patient: the adviser answers within 30 minutes.")
    subject: str = strawberry.field(description="Encrypted.")
    description: str | None = strawberry.field(description="Encrypted.")
    status: TicketStatus
    root_cause_category: RootCause | None
    root_cause: str | None = strawberry.field(description="Encrypted.")
    resolution: str | None = strawberry.field(description="Encrypted.")
    feedback: str | None = strawberry.field(description="The patient's feedback. Encrypted.")
    received_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime

    @strawberry.field(description="Who received it and owns it until an explicit handover (first-contact "
                                  "responsibility); null when handed to a department.")
    async def owner(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.view.row.owner_id)

    @strawberry.field(description="Who works on it.")
    async def assignee(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.view.row.assignee_id)

    @strawberry.field
    async def department(self, info: Info) -> Department | None:
        return await _department(info, self.view.row.department_id)

    @strawberry.field(description="The first-response target.")
    async def response_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "response")

    @strawberry.field(description="The resolution target.")
    async def resolution_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "resolution")

    @strawberry.field(description="Files attached to the ticket, oldest first.")
    async def attachments(self, info: Info) -> list[TicketAttachment]:
        return [TicketAttachment(view=v) for v in await attachments.of_ticket(info.context, self.view)]

    @strawberry.field(description="The timeline, oldest first. Internal notes only for staff who may read them.")
    async def timeline(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                       include_internal: bool = True) -> TicketEventConnection:
        page = await tickets.timeline(info.context, self.view, first=first, after=after,
                                      include_internal=include_internal)
        return TicketEventConnection(
            edges=[TicketEventEdge(cursor=c, node=TicketEvent(view=self.view, row=row)) for c, row in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


@strawberry.type
class TicketEdge:
    cursor: str
    node: Ticket


@strawberry.type(description="A page of tickets.")
class TicketConnection:
    edges: list[TicketEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Ticket]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Narrow a ticket list.")
class TicketFilter:
    status: TicketStatus | None = None
    department_id: strawberry.ID | None = None
    category: TicketCategory | None = None
    level: int | None = None
    mine: bool = strawberry.field(default=False, description="Only tickets you own or are assigned to.")


@strawberry.input(description="A new ticket. Give the patient, or the caller's name when they are not on file.")
class TicketCreateInput:
    channel: TicketChannel
    category: TicketCategory
    subject: str
    patient_id: strawberry.ID | None = strawberry.UNSET
    contact_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                        description="The patient's contact who raised it.")
    caller_name: str | None = strawberry.UNSET
    caller_phone: str | None = strawberry.UNSET
    subcategory: str | None = strawberry.UNSET
    level: int | None = strawberry.field(default=strawberry.UNSET,
                                         description="1-3; default 2, 3 for suggestions.")
    post_operative: bool | None = strawberry.field(default=strawberry.UNSET,
                                                   description="A problem after surgery: level 1.")
    dispute: bool | None = strawberry.field(default=strawberry.UNSET,
                                            description="A complaint escalating to a dispute: level 1.")
    description: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="Default: the patient's department.")
    received_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it came in, if logged later (up to 7 days back). Default: now.")


@strawberry.input(description="Changes to a ticket's classification; a new level recomputes its due times.")
class TicketUpdateInput:
    level: int | None = strawberry.UNSET
    subcategory: str | None = strawberry.UNSET
    root_cause_category: RootCause | None = strawberry.UNSET
    root_cause: str | None = strawberry.UNSET
    note: str | None = strawberry.field(default=strawberry.UNSET, description="Why (kept on the timeline).")


@strawberry.type
class TicketQuery:
    @strawberry.field(description="One ticket. NOT_FOUND when it is missing or outside your reach (the same).")
    async def ticket(self, info: Info, id: strawberry.ID) -> Ticket | None:
        return ticket_node(info.context, await tickets.get(info.context, uuid_of(id)))

    @strawberry.field(description="Tickets you reach, newest first, 1 to 100 a page.")
    async def tickets(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                      filter: TicketFilter | None = None) -> TicketConnection:
        where = TicketWhere(**provided(filter)) if filter is not None else TicketWhere()
        return _connection(info.context, await tickets.page(info.context, first=first, after=after, where=where))

    @strawberry.field(description="The work queue: open tickets whose clock runs, soonest due first. slaState "
                                  "AT_RISK or BREACHED narrows it.")
    async def ticket_queue(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                           department_id: strawberry.ID | None = None,
                           sla_state: SlaState | None = None) -> TicketConnection:
        page = await tickets.queue(info.context, first=first, after=after,
                                   department_id=uuid_of(department_id, "departmentId"),
                                   sla_state=sla_state.value if sla_state else None)
        return _connection(info.context, page)


@strawberry.input(description="A care partner's report about a patient granted to it.")
class PartnerTicketCreateInput:
    patient_id: strawberry.ID
    category: TicketCategory
    subject: str
    description: str | None = strawberry.UNSET
    post_operative: bool | None = strawberry.field(default=strawberry.UNSET,
                                                   description="A problem after surgery: level 1.")


@strawberry.type(description="The ticket a care partner opened: what it needs to follow it up with the institution.")
class PartnerTicket:
    id: strawberry.ID
    status: TicketStatus
    level: int = strawberry.field(description="1 urgent, 2 normal, 3 suggestion.")
    received_at: datetime


@strawberry.type
class TicketMutation:
    @strawberry.mutation(description="Open a ticket. You own it until you hand it over.")
    async def ticket_create(self, info: Info, input: TicketCreateInput) -> Ticket | None:
        return ticket_node(info.context, await tickets.create(info.context, provided(input)))

    @strawberry.mutation(description="Report a problem about a patient granted to your partner (care partners, "
                                     "scope ticket:create). It waits in the patient's department's queue.")
    async def partner_ticket_create(self, info: Info, input: PartnerTicketCreateInput) -> PartnerTicket | None:
        view = await tickets.create(info.context, provided(input), by_partner=True)
        row = view.row
        return PartnerTicket(id=strawberry.ID(str(row.id)), status=TicketStatus(row.status), level=row.level,
                             received_at=row.received_at)

    @strawberry.mutation(description="Move a ticket along its lifecycle. RESOLVED needs a resolution; a complaint "
                                     "closes only after feedback or a failed attempt to reach the patient.")
    async def ticket_transition(self, info: Info, id: strawberry.ID, to: TicketStatus, note: str | None = None,
                                resolution: str | None = None) -> Ticket | None:
        view = await tickets.transition(info.context, uuid_of(id), to.value, note=note, resolution=resolution)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Reply to the patient (the first reply is the first response) or, with "
                                     "internal: true, add an internal note.")
    async def ticket_reply(self, info: Info, id: strawberry.ID, body: str, internal: bool = False) -> Ticket | None:
        return ticket_node(info.context, await tickets.reply(info.context, uuid_of(id), body, internal=internal))

    @strawberry.mutation(description="Record the patient's feedback on a resolved ticket.")
    async def ticket_record_feedback(self, info: Info, id: strawberry.ID, feedback: str) -> Ticket | None:
        return ticket_node(info.context, await tickets.record_feedback(info.context, uuid_of(id), feedback))

    @strawberry.mutation(description="Log an attempt to reach the patient for feedback.")
    async def ticket_log_contact_attempt(self, info: Info, id: strawberry.ID, reached: bool,
                                         note: str | None = None) -> Ticket | None:
        view = await tickets.log_contact_attempt(info.context, uuid_of(id), reached=reached, note=note)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Change level, subcategory or root cause.")
    async def ticket_update(self, info: Info, id: strawberry.ID, input: TicketUpdateInput) -> Ticket | None:
        return ticket_node(info.context, await tickets.update(info.context, uuid_of(id), provided(input)))

    @strawberry.mutation(description="Hand a ticket over to a named person or a department (first-contact "
                                     "responsibility moves with it).")
    async def ticket_handover(self, info: Info, id: strawberry.ID, to_staff_id: strawberry.ID | None = None,
                              to_department_id: strawberry.ID | None = None, note: str | None = None) -> Ticket | None:
        view = await tickets.handover(info.context, uuid_of(id), to_staff_id=uuid_of(to_staff_id, "toStaffId"),
                                      to_department_id=uuid_of(to_department_id, "toDepartmentId"), note=note)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Choose who works a ticket (null: nobody).")
    async def ticket_assign(self, info: Info, id: strawberry.ID,
                            assignee_id: strawberry.ID | None = None) -> Ticket | None:
        view = await tickets.assign(info.context, uuid_of(id), uuid_of(assignee_id, "assigneeId"))
        return ticket_node(info.context, view)


@strawberry.type
class TicketSubscription:
    @strawberry.subscription(description="Your live queue: every ticket you reach, each time it changes (created, "
                                         "moved, answered, reassigned, new due times), from the moment you subscribe. "
                                         "Over graphql-transport-ws; sign in with the connection_init payload "
                                         "{authorization: \"Bearer cl_...\"}. Rights are checked again before "
                                         "each event.")
    async def ticket_changes(self, info: Info,
                             department_id: strawberry.ID | None = None) -> AsyncGenerator[Ticket, None]:
        ctx = info.context
        async for view in tickets.watch(ctx, uuid_of(department_id, "departmentId")):
            yield ticket_node(ctx, view)


def _connection(ctx: Context, page: Any) -> TicketConnection:
    return TicketConnection(edges=[TicketEdge(cursor=c, node=ticket_node(ctx, view)) for c, view in page.items],
                            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


async def _clock(info: Info, view: TicketView, target: str) -> SlaClock:
    clock = slas.view(view.row, target, await slas.settings(info.context), datetime.now(UTC))
    return SlaClock(state=SlaState(clock.state.value), due_at=clock.due_at, at_risk_at=clock.at_risk_at,
                    time_left_seconds=clock.time_left_seconds)


async def _staff(info: Info, staff_id: Any) -> StaffSummary | None:
    if staff_id is None:
        return None
    row = await info.context.require_loaders().staff.load(staff_id)
    return None if row is None else StaffSummary.of(row)


async def _department(info: Info, department_id: Any) -> Department | None:
    if department_id is None:
        return None
    row = await info.context.require_loaders().department.load(department_id)
    return None if row is None else Department.of(row)


register_node("ticket", ticket_node)
