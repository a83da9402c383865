"""Support tickets: the type, its timeline and SLA clocks, the queue, and the lifecycle mutations.

A ticket's text (subject, description, root cause, resolution, feedback, timeline notes) is
encrypted at rest and decrypted only when asked for; every read and write is audited on the
ticket's record. Internal notes never appear to whoever may not read ``ticket.internal``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from resolvers import access
from resolvers import attachment as attachments
from resolvers import sla as slas
from resolvers import ticket as tickets
from resolvers.attachment import AttachmentView
from resolvers.context import Context
from resolvers.ticket import TicketFilter as TicketWhere
from resolvers.ticket import TicketView
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
from schema.patient import Patient
from schema.patient import node as patient_node
from schema.selection import patient_columns_of
from schema.staff import StaffSummary


@strawberry.enum(description="Where the ticket came in.")
class TicketChannel(Enum):
    HOTLINE = strawberry.enum_value("hotline", description="A call to the (24x7) hotline.")
    FRONT_DESK = strawberry.enum_value("front_desk", description="In person at the front desk.")
    NURSE_STATION = strawberry.enum_value("nurse_station", description="In person at a ward's nurse station.")
    WEB_FORM = strawberry.enum_value("web_form", description="The institution's web form.")
    APP = strawberry.enum_value("app", description="A message in the institution's app.")
    WECHAT = strawberry.enum_value("wechat", description="A message to the WeChat official account.")
    EMAIL = strawberry.enum_value("email", description="An e-mail.")
    VIP_ADVISER = strawberry.enum_value("vip_adviser", description="A VIP patient's health adviser: first response "
                                                                   "within 30 minutes.")
    PARTNER = strawberry.enum_value("partner", description="Reported by a care partner's API client "
                                                           "(partnerTicketCreate); set by the server.")
    SURVEY = strawberry.enum_value("survey", description="Opened by the system for a survey answer under its "
                                                         "questionnaire's threshold; set by the server.")


@strawberry.enum(description="What the ticket is.")
class TicketCategory(Enum):
    ENQUIRY = strawberry.enum_value("enquiry", description="A question: visit process, insurance, exam "
                                                           "preparation...")
    REQUEST = strawberry.enum_value("request", description="Something to do: change an appointment, reprint a "
                                                           "report, a refund...")
    COMPLAINT = strawberry.enum_value("complaint", description="Dissatisfaction (staff attitude, treatment result, "
                                                               "billing...). Closes only after the patient's "
                                                               "feedback or a failed attempt to reach them.")
    SUGGESTION = strawberry.enum_value("suggestion", description="An improvement idea; level 3 unless another is "
                                                                 "given.")


@strawberry.enum(description="Where the ticket is in its closed loop.")
class TicketStatus(Enum):
    NEW = strawberry.enum_value("new", description="Received, not yet answered.")
    ACKNOWLEDGED = strawberry.enum_value("acknowledged", description="The first response was given (this, or the "
                                                                     "first reply to the patient, meets the "
                                                                     "first-response target).")
    INVESTIGATING = strawberry.enum_value("investigating", description="Being worked on; also where a reopened "
                                                                       "ticket goes.")
    WAITING_ON_PATIENT = strawberry.enum_value("waiting_on_patient",
                                               description="The SLA clocks pause until the patient answers.")
    RESOLVED = strawberry.enum_value("resolved", description="A resolution was given (required to get here); the "
                                                             "clocks pause until it is reopened.")
    FEEDBACK_RECORDED = strawberry.enum_value("feedback_recorded", description="The patient's feedback on the "
                                                                               "resolution is recorded "
                                                                               "(ticketRecordFeedback).")
    CLOSED = strawberry.enum_value("closed", description="Archived. Reopen by moving it to INVESTIGATING.")


@strawberry.enum(description="Root-cause category (fishbone).")
class RootCause(Enum):
    PEOPLE = strawberry.enum_value("people", description="Staff: attitude, skill, communication.")
    PROCESS = strawberry.enum_value("process", description="How the work is organised: procedures, waiting, "
                                                           "hand-offs.")
    PLACE = strawberry.enum_value("place", description="The premises and environment.")
    EQUIPMENT = strawberry.enum_value("equipment", description="Devices, systems and supplies.")
    OTHER = strawberry.enum_value("other", description="None of the above.")


@strawberry.enum(description="Where an SLA clock stands.")
class SlaState(Enum):
    ON_TRACK = strawberry.enum_value("on_track", description="Running, less than 80 % of the target's time used.")
    AT_RISK = strawberry.enum_value("at_risk", description="80 % of the target's time is used.")
    BREACHED = strawberry.enum_value("breached", description="Running past its due time: the target will be "
                                                             "missed.")
    PAUSED = strawberry.enum_value("paused", description="Waiting on the patient.")
    MET = strawberry.enum_value("met", description="Stopped (responded or resolved) before the due time.")
    MISSED = strawberry.enum_value("missed", description="Stopped after the due time.")


@strawberry.enum(description="What happened on a ticket's timeline.")
class TicketEventKind(Enum):
    CREATED = strawberry.enum_value("created", description="The ticket was opened.")
    TRANSITION = strawberry.enum_value("transition", description="The status changed: from and to are statuses.")
    REPLY = strawberry.enum_value("reply", description="A reply to the patient.")
    INTERNAL_NOTE = strawberry.enum_value("internal_note", description="A note for staff only, never shown to the "
                                                                       "patient.")
    HANDOVER = strawberry.enum_value("handover", description="Handed over to a person or a department (toStaff, "
                                                             "toDepartment).")
    ASSIGNMENT = strawberry.enum_value("assignment", description="The assignee changed (toStaff; null: nobody).")
    LEVEL_CHANGE = strawberry.enum_value("level_change", description="The level changed: from and to are levels.")
    FEEDBACK = strawberry.enum_value("feedback", description="The patient's feedback was recorded.")
    CONTACT_ATTEMPT = strawberry.enum_value("contact_attempt",
                                            description="An attempt to reach the patient; to: reached or unreachable.")
    ATTACHMENT = strawberry.enum_value("attachment", description="A file was attached (see `attachments`).")


_ENUMS: dict[str, type[Enum]] = {"channel": TicketChannel, "category": TicketCategory, "status": TicketStatus,
                                 "root_cause_category": RootCause}


@strawberry.type(description="One SLA target of a ticket: first response or resolution.")
class SlaClock:
    state: SlaState = strawberry.field(description="Where the clock stands now.")
    due_at: datetime | None = strawberry.field(description="Null while the clock is paused.")
    at_risk_at: datetime | None = strawberry.field(description="When 80 % of the target's time is used (the clock "
                                                               "turns AT_RISK); null while paused.")
    time_left_seconds: int | None = strawberry.field(
        description="Working time left before the due time, in seconds; negative once breached, null when paused "
                    "or stopped.")


@strawberry.type(description="An entry of a ticket's timeline.")
class TicketEvent:
    view: strawberry.Private[TicketView]
    row: strawberry.Private[Any]

    @strawberry.field(description="The timeline entry's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="What happened.")
    def kind(self) -> TicketEventKind:
        return TicketEventKind(self.row.kind)

    @strawberry.field(description="When it happened.")
    def occurred_at(self) -> datetime:
        return cast(datetime, self.row.occurred_at)

    @strawberry.field(description="False for a reply the patient sees.")
    def internal(self) -> bool:
        return bool(self.row.internal)

    @strawberry.field(name="from", description="The status before a TRANSITION or FEEDBACK; null for other kinds.")
    def from_(self) -> TicketStatus | None:
        return _status(self.row.kind, self.row.from_status)

    @strawberry.field(description="The status after a CREATED, TRANSITION or FEEDBACK; null for other kinds.")
    def to(self) -> TicketStatus | None:
        return _status(self.row.kind, self.row.to_status)

    @strawberry.field(description="The level before a LEVEL_CHANGE (1-3); null for other kinds.")
    def from_level(self) -> int | None:
        return _level(self.row.kind, self.row.from_status)

    @strawberry.field(description="The level after a LEVEL_CHANGE (1-3); null for other kinds.")
    def to_level(self) -> int | None:
        return _level(self.row.kind, self.row.to_status)

    @strawberry.field(description="Whether a CONTACT_ATTEMPT reached the patient; null for other kinds.")
    def reached(self) -> bool | None:
        return self.row.to_status == "reached" if self.row.kind == "contact_attempt" else None

    @strawberry.field(description="The note or reply (encrypted at rest; reading it is audited); null for an "
                                  "event without one (a transition, a level change...).")
    def note(self, info: Info) -> str | None:
        return tickets.read_event_note(info.context, self.view, self.row)

    @strawberry.field(description="The staff member who did it; null when no staff member did (the patient, a "
                                  "partner, the system).")
    async def actor(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.row.actor_id)

    @strawberry.field(description="Handed over or assigned to this person; null unless the event did that.")
    async def to_staff(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.row.to_staff_id)

    @strawberry.field(description="Handed over to this department; null unless the event did that.")
    async def to_department(self, info: Info) -> Department | None:
        return await _department(info, self.row.to_department_id)


@strawberry.type(description="A file attached to a ticket. Download it from `downloadUrl` (no token needed, for "
                               "`<img src>` and `<a href>`), or from `downloadPath` with your token.")
class TicketAttachment:
    view: strawberry.Private[AttachmentView]

    @strawberry.field(description="The attachment's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The file's name (encrypted at rest; reading it is audited).")
    def filename(self, info: Info) -> str:
        return attachments.read_filename(info.context, self.view)

    @strawberry.field(description="The file's media type: image/jpeg, image/png, application/pdf, audio/mpeg, "
                                  "audio/amr or text/plain.")
    def content_type(self) -> str:
        return str(self.view.row.content_type)

    @strawberry.field(description="Bytes.")
    def size(self) -> int:
        return int(self.view.row.size)

    @strawberry.field(description="SHA-256 of the content, hex.")
    def sha256(self) -> str:
        return str(self.view.row.sha256)

    @strawberry.field(description="When it was attached.")
    def uploaded_at(self) -> datetime:
        return cast(datetime, self.view.row.created_at)

    @strawberry.field(description="Where to GET the file, relative to the API's base URL, with your bearer token "
                                  "(ticket read rights); always sent as a download.")
    def download_path(self) -> str:
        return f"/attachments/{self.view.row.id}"

    @strawberry.field(description="A short-lived signed link to GET the file without an Authorization header, "
                                  "relative to the API's base URL: valid 5 minutes, for you only (it names your "
                                  "session: signing out or a revoked session stops it), your rights checked again "
                                  "and the download audited in your name. Ask for a new one when it expires.")
    def download_url(self, info: Info) -> str:
        return attachments.signed_path(info.context, self.view)


@strawberry.type(description="One entry of a ticket's timeline page, with its cursor.")
class TicketEventEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: TicketEvent = strawberry.field(description="The timeline entry.")


@strawberry.type(description="A page of a ticket's timeline, oldest first.")
class TicketEventConnection:
    edges: list[TicketEventEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(
        default=None, description=TOTAL_COUNT + " Here: the entries you are shown (with includeInternal false or "
                                                "without the right to read them, no internal notes).")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[TicketEvent]:
        return [edge.node for edge in self.edges]


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


async def patients_of_page(sources: list[TicketSource], selected: frozenset[str] | None = None
                           ) -> list[Patient | None]:
    """What ``Ticket.patient`` returns for each of ``sources`` (the file, or null without one or out of reach),
    in one statement outside the request's loaders (the batched completion's, ``schema.compiled.fast``);
    ``selected``: the Patient fields that will be read (GraphQL names), and so the columns loaded; None: whole
    rows, as the resolver loads them."""
    ctx = sources[0].ctx
    ids = [patient_asked(source) for source in sources]
    columns = None if selected is None else patient_columns_of(selected)
    views = iter(await access.visible_patients_once(ctx, [i for i in ids if i is not None], columns))
    return [None if i is None else patient_node(ctx, next(views)) for i in ids]


def no_check(source: TicketSource) -> None:
    """``Ticket.patient`` checks nothing before it loads: out of reach is null."""


def patient_asked(source: TicketSource | Ticket) -> uuid.UUID | None:
    """The file ``Ticket.patient`` asks its loader for; None: none, the ticket has no patient."""
    return cast(uuid.UUID | None, source.view.row.patient_id)


def ticket_node(ctx: Context, view: TicketView) -> Ticket:
    return cast(Ticket, TicketSource(ctx, view))


@strawberry.type(description="A support ticket: enquiry, request, complaint or suggestion, under a tiered SLA.")
class Ticket:
    view: strawberry.Private[TicketView]

    @strawberry.field(description="The ticket's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, when on file (query `patient(id)` for the file itself); null: "
                                  "no patient on file (a caller).")
    def patient_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.view.row.patient_id)) if self.view.row.patient_id else None

    @strawberry.field(description="The patient's file, with the fields your role may read on it; null when the "
                                  "ticket has no patient or the file is outside your reach.")
    async def patient(self, info: Info) -> Patient | None:
        patient_id = patient_asked(self)
        if patient_id is None:
            return None
        return patient_node(info.context, await access.visible_patient(info.context, patient_id))

    @strawberry.field(description="The patient's contact who raised it, if any.")
    def contact_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.view.row.contact_id)) if self.view.row.contact_id else None

    caller_name: str | None = strawberry.field(description="The caller, when not on file. Encrypted. Null when "
                                                            "none was given (a ticket naming a patient on file "
                                                            "needs none).")
    caller_phone: str | None = strawberry.field(description="The caller's phone, E.164. Encrypted. Null when "
                                                             "none was given.")
    channel: TicketChannel = strawberry.field(description="Where it came in.")
    category: TicketCategory = strawberry.field(description="Enquiry, request, complaint or suggestion.")
    subcategory: str = strawberry.field(description="The institution's own finer label (e.g. \"billing\"); empty "
                                                    "when none was given.")
    level: int = strawberry.field(description="1 urgent, 2 normal, 3 suggestion.")
    vip: bool = strawberry.field(description="A VIP patient: the adviser answers within 30 minutes.")
    subject: str = strawberry.field(description="Encrypted.")
    description: str | None = strawberry.field(description="The details as told, up to 4,000 characters. "
                                                            "Encrypted. Null when none were given.")
    status: TicketStatus = strawberry.field(description="Where it is in its closed loop.")
    root_cause_category: RootCause | None = strawberry.field(description="The fishbone category of the root "
                                                                          "cause; null until analysed.")
    root_cause: str | None = strawberry.field(description="The root cause as analysed, up to 2,000 "
                                                           "characters. Encrypted. Null until analysed.")
    resolution: str | None = strawberry.field(description="How it was resolved, up to 4,000 characters. "
                                                           "Encrypted. Null until first resolved (a reopened "
                                                           "ticket keeps its last one).")
    feedback: str | None = strawberry.field(description="The patient's feedback. Encrypted. Null until "
                                                         "recorded.")
    received_at: datetime = strawberry.field(description="When it came in: the SLA clocks start here.")
    first_responded_at: datetime | None = strawberry.field(description="When it was first acknowledged or "
                                                                       "answered; null before.")
    resolved_at: datetime | None = strawberry.field(description="When it was last resolved; null while it is not.")
    closed_at: datetime | None = strawberry.field(description="When it was closed; null while it is open.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @strawberry.field(description="Pass back as `version` when you change it (ticketUpdate, ticketTransition, "
                                  "ticketHandover, ticketAssign): a ticket changed since answers CONFLICT.")
    def version(self) -> int:
        return int(self.view.row.version)

    @strawberry.field(description="Waiting on the patient: its clocks stand still (SLA state PAUSED, no time "
                                  "left counting down) and the queue lists it after the running tickets.")
    def paused(self) -> bool:
        return slas.waiting_on_patient(self.view.row)

    @strawberry.field(description="Who received it and owns it until an explicit handover (first-contact "
                                  "responsibility); null when handed to a department.")
    async def owner(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.view.row.owner_id)

    @strawberry.field(description="Who works on it now; null while nobody is assigned.")
    async def assignee(self, info: Info) -> StaffSummary | None:
        return await _staff(info, self.view.row.assignee_id)

    @strawberry.field(description="The department responsible for it; null when the institution has none on it.")
    async def department(self, info: Info) -> Department | None:
        return await _department(info, self.view.row.department_id)

    @strawberry.field(description="The first-response target.")
    async def response_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "response")

    @strawberry.field(description="The resolution target.")
    async def resolution_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "resolution")

    @strawberry.field(description="The statuses ticketTransition would accept for this ticket from you now, in "
                                  "lifecycle order: computed from the rules the mutation applies (the lifecycle, "
                                  "your `ticket:update` permission, your reach, and a complaint's closed loop). "
                                  "Empty when you may not move it. FEEDBACK_RECORDED is never listed: "
                                  "ticketRecordFeedback reaches it.")
    async def allowed_transitions(self, info: Info) -> list[TicketStatus]:
        return [TicketStatus(s) for s in await tickets.allowed_transitions(info.context, self.view)]

    @strawberry.field(description="Files attached to the ticket, oldest first: at most 20 by default (the server's "
                                  "CARELOOP_LIMIT_MAX_ATTACHMENTS_PER_TICKET; an upload past it is refused).")
    async def attachments(self, info: Info) -> list[TicketAttachment]:
        return [TicketAttachment(view=v) for v in await attachments.of_ticket(info.context, self.view)]

    @strawberry.field(description="The timeline, oldest first. Internal notes only for staff who may read them.")
    async def timeline(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
                       include_internal: Annotated[bool, strawberry.argument(
                           description="False: only what the patient may see (no internal notes).")] = True,
                       ) -> TicketEventConnection:
        page = await tickets.timeline(info.context, self.view, first=first, after=after,
                                      include_internal=include_internal, count=asks_total(info))
        return TicketEventConnection(
            edges=[TicketEventEdge(cursor=c, node=TicketEvent(view=self.view, row=row)) for c, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type(description="One ticket of a page, with its cursor.")
class TicketEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Ticket = strawberry.field(description="The ticket.")


@strawberry.type(description="A page of tickets.")
class TicketConnection:
    edges: list[TicketEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(default=0, description="The number of tickets that match the filter in "
                                                               "your reach, counted when asked for.")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Ticket]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Narrow a ticket list.")
class TicketFilter:
    status: TicketStatus | None = strawberry.field(default=None, description="Only tickets in this status.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="Only this department's "
                                                                                     "tickets.")
    category: TicketCategory | None = strawberry.field(default=None, description="Only this category.")
    level: int | None = strawberry.field(default=None, description="Only this level (1-3).")
    mine: bool = strawberry.field(default=False, description="Only tickets you own or are assigned to.")
    patient_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this patient's tickets (the desk finding a caller's tickets). The patient "
                                  "must be in your reach: NOT_FOUND (field filter.patientId) otherwise.")


@strawberry.enum(description="What a ticket list is sorted by.")
class TicketOrderField(Enum):
    DUE = strawberry.enum_value("due", description="The due time of the pending SLA target; tickets without a "
                                                   "running clock (paused, resolved, closed) come last.")
    UPDATED_AT = strawberry.enum_value("updated_at", description="When the ticket last changed.")
    CREATED_AT = strawberry.enum_value("created_at", description="When the ticket was opened in careloop.")


@strawberry.input(description="The order of a ticket list; ties are broken by id. A cursor works only with the "
                              "order it came from.")
class TicketOrder:
    field: TicketOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Smallest first or "
                                                                                          "largest first.")


@strawberry.input(description="A new ticket. Give the patient, or the caller's name when they are not on file.")
class TicketCreateInput:
    channel: TicketChannel = strawberry.field(description="Where it came in (PARTNER and SURVEY are set by the "
                                                          "server, not here).")
    category: TicketCategory = strawberry.field(description="Enquiry, request, complaint or suggestion.")
    subject: str = strawberry.field(description="A one-line summary, 1-200 characters. Encrypted.")
    patient_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                        description="The patient, when on file (in your reach).")
    contact_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                        description="The patient's contact who raised it.")
    caller_name: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The caller's name when not on file, at most 100 "
                                                           "characters. Encrypted.")
    caller_phone: str | None = strawberry.field(default=strawberry.UNSET,
                                                description="The caller's phone when not on file; stored as E.164. "
                                                            "Encrypted.")
    subcategory: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The institution's finer label, at most 64 characters.")
    level: int | None = strawberry.field(default=strawberry.UNSET,
                                         description="1-3; default 2, 3 for suggestions.")
    post_operative: bool | None = strawberry.field(default=strawberry.UNSET,
                                                   description="A problem after surgery: level 1.")
    dispute: bool | None = strawberry.field(default=strawberry.UNSET,
                                            description="A complaint escalating to a dispute: level 1.")
    description: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The details, at most 4000 characters. Encrypted.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="Default: the patient's department.")
    received_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it came in, if logged later (up to 7 days back). Default: now.")


@strawberry.input(description="Changes to a ticket's classification; a new level recomputes its due times.")
class TicketUpdateInput:
    level: int | None = strawberry.field(default=strawberry.UNSET,
                                         description="1 urgent, 2 normal, 3 suggestion; not null. Recomputes the due "
                                                     "times.")
    subcategory: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The institution's finer label, at most 64 characters.")
    root_cause_category: RootCause | None = strawberry.field(default=strawberry.UNSET,
                                                             description="The fishbone category of the root cause.")
    root_cause: str | None = strawberry.field(default=strawberry.UNSET,
                                              description="The root cause found, at most 2000 characters. "
                                                          "Encrypted.")
    note: str | None = strawberry.field(default=strawberry.UNSET, description="Why (kept on the timeline).")


_TICKET_ID = Annotated[strawberry.ID, strawberry.argument(description="The ticket's id (NOT_FOUND when missing or "
                                                                      "outside your reach).")]


@strawberry.type
class TicketQuery:
    @strawberry.field(description="One ticket. NOT_FOUND when it is missing or outside your reach (the same).")
    async def ticket(self, info: Info, id: _TICKET_ID) -> Ticket | None:
        return ticket_node(info.context, await tickets.get(info.context, uuid_of(id)))

    @strawberry.field(description="Tickets you reach, newest first, 1 to 100 a page.")
    async def tickets(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
                      filter: Annotated[TicketFilter | None, strawberry.argument(
                          description="Narrow the list; null: every ticket you reach.")] = None,
                      order_by: Annotated[TicketOrder | None, strawberry.argument(
                          description="The order; null: newest first.")] = None) -> TicketConnection:
        ctx = info.context
        where = _where(filter)
        order = None if order_by is None else tickets.TicketOrder(str(order_by.field.value),
                                                                  str(order_by.direction.value))
        connection = _connection(ctx, await tickets.page(ctx, first=first, after=after, where=where, order=order))
        if asks_total(info):
            connection.total_count = await tickets.count(ctx, where)
        return connection

    @strawberry.field(description="Tickets you opened, newest first, wherever they went since: after a handover "
                                  "you still see where each stands (status, level, SLA times, department), never "
                                  "its timeline or internal notes. Staff who read tickets; each look is audited.")
    async def my_opened_tickets(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        patient_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only the tickets you opened about this patient; null: all.")] = None,
    ) -> OpenedTicketConnection:
        ctx = info.context
        page = await tickets.opened_page(ctx, first=first, after=after, patient_id=uuid_of(patient_id, "patientId"),
                                         count=asks_total(info))
        return OpenedTicketConnection(
            edges=[OpenedTicketEdge(cursor=c, node=OpenedTicket(view=v)) for c, v in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="The tickets your partner opened (partnerTicketCreate), newest first: where "
                                  "each stands and what you wrote (care partners, scope partner_ticket:read).")
    async def partner_tickets(self, info: Info, first: First = DEFAULT_PAGE_SIZE,
                              after: After = None) -> PartnerTicketConnection:
        page = await tickets.partner_page(info.context, first=first, after=after, count=asks_total(info))
        return PartnerTicketConnection(
            edges=[PartnerTicketEdge(cursor=c, node=PartnerTicket(view=v)) for c, v in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="The work queue: open tickets whose clock runs, soonest due first, then the "
                                  "tickets waiting on the patient (paused), oldest first. slaState "
                                  "AT_RISK, BREACHED or PAUSED narrows it.")
    async def ticket_queue(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
                           department_id: Annotated[strawberry.ID | None, strawberry.argument(
                               description="Only this department's tickets; null: all you reach.")] = None,
                           sla_state: Annotated[SlaState | None, strawberry.argument(
                               description="AT_RISK or BREACHED: only running tickets whose pending target is "
                                           "in that state; PAUSED: only those waiting on the patient; null: "
                                           "all.")] = None) -> TicketConnection:
        department, state = uuid_of(department_id, "departmentId"), str(sla_state.value) if sla_state else None
        page = await tickets.queue(info.context, first=first, after=after, department_id=department, sla_state=state)
        connection = _connection(info.context, page)
        if asks_total(info):
            connection.total_count = await tickets.queue_count(info.context, department, state)
        return connection


@strawberry.input(description="A care partner's report about a patient granted to it.")
class PartnerTicketCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient, granted to your partner.")
    category: TicketCategory = strawberry.field(description="Enquiry, request, complaint or suggestion.")
    subject: str = strawberry.field(description="A one-line summary, 1-200 characters.")
    description: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The details, at most 4000 characters.")
    post_operative: bool | None = strawberry.field(default=strawberry.UNSET,
                                                   description="A problem after surgery: level 1.")


class _TicketAtAGlance:
    """What the opener's and the partner's views both show of a ticket. Each view declares these fields itself
    (``strawberry.field(resolver=...)``): its own words, in its own place in the schema."""

    view: TicketView

    def shown_status(self, info: Info) -> TicketStatus:
        tickets.note_status_read(info.context, self.view)
        return TicketStatus(self.view.row.status)

    def shown_level(self) -> int:
        return int(self.view.row.level)

    def shown_category(self) -> TicketCategory:
        return TicketCategory(self.view.row.category)

    def shown_received_at(self) -> datetime:
        return cast(datetime, self.view.row.received_at)


@strawberry.type(description="The ticket a care partner opened: what it needs to follow it up with the institution "
                               "(where it stands and what the partner wrote; nothing the institution wrote).")
class PartnerTicket(_TicketAtAGlance):
    view: strawberry.Private[TicketView]

    @strawberry.field(description="The ticket's id, to quote to the institution.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    status = strawberry.field(resolver=_TicketAtAGlance.shown_status,
                              description="Where it stands (NEW when just opened).")
    level = strawberry.field(resolver=_TicketAtAGlance.shown_level, description="1 urgent, 2 normal, 3 suggestion.")
    category = strawberry.field(resolver=_TicketAtAGlance.shown_category,
                                description="Enquiry, request, complaint or suggestion.")
    received_at = strawberry.field(resolver=_TicketAtAGlance.shown_received_at,
                                   description="When the institution received it.")

    @strawberry.field(description="What you reported, in one line (encrypted at rest; reading it is audited).")
    def subject(self, info: Info) -> str:
        return str(tickets.read_field(info.context, self.view, "subject"))

    @strawberry.field(description="The details you gave; null when none (encrypted at rest; reading it is "
                                  "audited).")
    def description(self, info: Info) -> str | None:
        return cast(str | None, tickets.read_field(info.context, self.view, "description"))


@strawberry.type(description="One of your partner's tickets in a page, with its cursor.")
class PartnerTicketEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: PartnerTicket = strawberry.field(description="The ticket.")


@strawberry.type(description="A page of your partner's tickets, newest first.")
class PartnerTicketConnection:
    edges: list[PartnerTicketEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[PartnerTicket]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A ticket you opened, as its opener keeps seeing it after a handover: where it "
                             "stands, never its timeline or internal notes. Open it with `ticket(id)` while "
                             "`inReach` is true.")
class OpenedTicket(_TicketAtAGlance):
    view: strawberry.Private[TicketView]

    @strawberry.field(description="The ticket's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient, when on file; null: no patient on file (a caller).")
    def patient_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.view.row.patient_id)) if self.view.row.patient_id else None

    @strawberry.field(description="What you wrote as its one-line summary (encrypted at rest; reading it is "
                                  "audited).")
    def subject(self, info: Info) -> str:
        return str(tickets.read_field(info.context, self.view, "subject"))

    category = strawberry.field(resolver=_TicketAtAGlance.shown_category,
                                description="Enquiry, request, complaint or suggestion.")
    status = strawberry.field(resolver=_TicketAtAGlance.shown_status,
                              description="Where it stands in its closed loop.")
    level = strawberry.field(resolver=_TicketAtAGlance.shown_level, description="1 urgent, 2 normal, 3 suggestion.")

    @strawberry.field(description="Waiting on the patient: its clocks stand still.")
    def paused(self) -> bool:
        return slas.waiting_on_patient(self.view.row)

    received_at = strawberry.field(resolver=_TicketAtAGlance.shown_received_at, description="When it came in.")

    @strawberry.field(description="When it last changed.")
    def updated_at(self) -> datetime:
        return cast(datetime, self.view.row.updated_at)

    @strawberry.field(description="The first-response target.")
    async def response_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "response")

    @strawberry.field(description="The resolution target.")
    async def resolution_sla(self, info: Info) -> SlaClock:
        return await _clock(info, self.view, "resolution")

    @strawberry.field(description="The department responsible for it now; null when none.")
    async def department(self, info: Info) -> Department | None:
        return await _department(info, self.view.row.department_id)

    @strawberry.field(description="Whether it is still in your reach (you own or work on it, or its department "
                                  "is yours): then `ticket(id)` shows all of it.")
    def in_reach(self, info: Info) -> bool:
        return tickets.in_reach(info.context, self.view.row)


@strawberry.type(description="One ticket you opened, with its cursor.")
class OpenedTicketEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: OpenedTicket = strawberry.field(description="The ticket.")


@strawberry.type(description="A page of the tickets you opened, newest first.")
class OpenedTicketConnection:
    edges: list[OpenedTicketEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[OpenedTicket]:
        return [edge.node for edge in self.edges]


@strawberry.enum(description="Where a patient opens a ticket themselves.")
class PortalChannel(Enum):
    APP = strawberry.enum_value("app", description="The institution's app.")
    WEB_FORM = strawberry.enum_value("web_form", description="The institution's web form.")


@strawberry.input(description="A request, complaint, enquiry or suggestion a patient opens about themselves.")
class MyTicketCreateInput:
    category: TicketCategory = strawberry.field(description="Request, complaint, enquiry or suggestion.")
    subject: str = strawberry.field(description="A one-line summary, 1-200 characters.")
    description: str | None = strawberry.field(default=strawberry.UNSET,
                                               description="The details, at most 4000 characters.")
    channel: PortalChannel = strawberry.field(default=PortalChannel.APP, description="Where you are writing from.")


_NOTE = Annotated[str | None, strawberry.argument(description="Why, or what was done, kept on the timeline; at most "
                                                              "4000 characters.")]


@strawberry.type
class TicketMutation:
    @strawberry.mutation(description="Open a ticket. You own it until you hand it over.")
    async def ticket_create(self, info: Info, input: Annotated[TicketCreateInput, strawberry.argument(
            description="The new ticket.")]) -> Ticket | None:
        return ticket_node(info.context, await tickets.create(info.context, provided(input)))

    @strawberry.mutation(description="Report a problem about a patient granted to your partner (care partners, "
                                     "scope ticket:create). It waits in the patient's department's queue.")
    async def partner_ticket_create(self, info: Info, input: Annotated[PartnerTicketCreateInput, strawberry.argument(
            description="The report.")]) -> PartnerTicket | None:
        return PartnerTicket(view=await tickets.create(info.context, provided(input), by_partner=True))

    @strawberry.mutation(description="Move a ticket along its lifecycle. RESOLVED needs a resolution; a complaint "
                                     "closes only after feedback or a failed attempt to reach the patient.")
    async def ticket_transition(
        self, info: Info, id: _TICKET_ID,
        to: Annotated[TicketStatus, strawberry.argument(description="The status to move to; a move the lifecycle does "
                                                                    "not allow is BAD_USER_INPUT, reason "
                                                                    "illegal_transition.")],
        note: _NOTE = None,
        resolution: Annotated[str | None, strawberry.argument(description="What was done: required to move to "
                                                                          "RESOLVED (read with that move only: "
                                                                          "with any other it is not stored), at "
                                                                          "most 4000 characters. "
                                                                          "Encrypted.")] = None,
        version: Version = None,
    ) -> Ticket | None:
        view = await tickets.transition(info.context, uuid_of(id), str(to.value), note=note, resolution=resolution,
                                        version=version)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Reply to the patient (the first reply is the first response) or, with "
                                     "internal: true, add an internal note.")
    async def ticket_reply(
        self, info: Info, id: _TICKET_ID,
        body: Annotated[str, strawberry.argument(description="The text, 1-4000 characters. Encrypted.")],
        internal: Annotated[bool, strawberry.argument(description="True: a note for staff only; false: a reply to "
                                                                  "the patient.")] = False,
    ) -> Ticket | None:
        return ticket_node(info.context, await tickets.reply(info.context, uuid_of(id), body, internal=internal))

    @strawberry.mutation(description="Record the patient's feedback on a resolved ticket.")
    async def ticket_record_feedback(
        self, info: Info, id: _TICKET_ID,
        feedback: Annotated[str, strawberry.argument(description="What the patient said about the resolution, "
                                                                 "1-2000 characters. Encrypted.")],
    ) -> Ticket | None:
        return ticket_node(info.context, await tickets.record_feedback(info.context, uuid_of(id), feedback))

    @strawberry.mutation(description="Log an attempt to reach the patient for feedback.")
    async def ticket_log_contact_attempt(
        self, info: Info, id: _TICKET_ID,
        reached: Annotated[bool, strawberry.argument(description="Whether the patient was reached. An unreached "
                                                                 "attempt after resolution lets a complaint close "
                                                                 "without feedback.")],
        note: _NOTE = None,
    ) -> Ticket | None:
        view = await tickets.log_contact_attempt(info.context, uuid_of(id), reached=reached, note=note)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Change level, subcategory or root cause.")
    async def ticket_update(self, info: Info, id: _TICKET_ID, input: Annotated[TicketUpdateInput, strawberry.argument(
            description="The changes; fields left out stay as they are.")], version: Version = None) -> Ticket | None:
        return ticket_node(info.context, await tickets.update(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Hand a ticket over to a named person or a department (first-contact "
                                     "responsibility moves with it).")
    async def ticket_handover(
        self, info: Info, id: _TICKET_ID,
        to_staff_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="The staff member who becomes the owner; give this or toDepartmentId.")] = None,
        to_department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="The department the ticket moves to, without an owner until someone takes it.")] = None,
        note: _NOTE = None,
        version: Version = None,
    ) -> Ticket | None:
        view = await tickets.handover(info.context, uuid_of(id), to_staff_id=uuid_of(to_staff_id, "toStaffId"),
                                      to_department_id=uuid_of(to_department_id, "toDepartmentId"), note=note,
                                      version=version)
        return ticket_node(info.context, view)

    @strawberry.mutation(description="Choose who works a ticket (null: nobody).")
    async def ticket_assign(
        self, info: Info, id: _TICKET_ID,
        assignee_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="The staff member who works it; null: nobody.")] = None,
        version: Version = None,
    ) -> Ticket | None:
        view = await tickets.assign(info.context, uuid_of(id), uuid_of(assignee_id, "assigneeId"), version)
        return ticket_node(info.context, view)


@strawberry.type
class TicketSubscription:
    @strawberry.subscription(description="Your live queue: every ticket you reach, each time it changes (created, "
                                         "moved, answered, reassigned, new due times), from the moment you subscribe. "
                                         "Over graphql-transport-ws; sign in with the connection_init payload "
                                         "{authorization: \"Bearer cl_...\"}. Rights are checked again before "
                                         "each event.")
    async def ticket_changes(
        self, info: Info,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only this department's tickets; null: every ticket you reach.")] = None,
    ) -> AsyncGenerator[Ticket, None]:
        ctx = info.context
        async for view in tickets.watch(ctx, uuid_of(department_id, "departmentId")):
            yield ticket_node(ctx, view)


def _where(filter: TicketFilter | None) -> TicketWhere:
    return TicketWhere(**provided(filter)) if filter is not None else TicketWhere()


def _status(kind: str, value: str | None) -> TicketStatus | None:
    """A timeline entry's status, for the kinds whose from/to are statuses."""
    return TicketStatus(value) if kind in _STATUS_KINDS and value is not None else None


def _level(kind: str, value: str | None) -> int | None:
    return int(value) if kind == "level_change" and value is not None else None


_STATUS_KINDS = frozenset({"created", "transition", "feedback"})


def _connection(ctx: Context, page: Any) -> TicketConnection:
    return TicketConnection(edges=[TicketEdge(cursor=c, node=ticket_node(ctx, view)) for c, view in page.items],
                            page_info=PageInfo.of(page))


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
