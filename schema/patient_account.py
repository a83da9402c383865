"""Patients' self-service: invitation, account, sign-in, my file, who viewed it, a copy of my data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from core.validation import camel_case
from resolvers import audit_spelling
from resolvers import patient as patients
from resolvers import patient_account as accounts
from resolvers import ticket as ticket_reads
from resolvers.patient_account import AccessEntry as AccessEntryView
from resolvers.ticket import TicketView
from schema.account import PasswordResetCode
from schema.audit_event import AccessorKind, Action, AuditFieldClass, field_classes_of
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    asks_total,
    provided,
    uuid_of,
)
from schema.patient import Patient, node
from schema.session import LoginPayload
from schema.staff import Role, roles_of
from schema.ticket import MyTicketCreateInput, TicketCategory, TicketStatus

# Keys of the data export whose values come from a closed vocabulary: written as the API's enums are.
_EXPORT_CODES = frozenset({"sex", "status", "category", "relationship", "preferred_channel", "contact_channels",
                           "contact_purposes", "segments", "national_id_type", "cause", "purpose", "direction",
                           "channel", "refusal", "source", "kind", "cancellation_reason",
                           "billing_period", "frequency"})


def api_style(value: Any, key: str | None = None) -> Any:
    """The data export in the API's one style: camelCase keys, UPPER_CASE codes (free text left as it is)."""
    if isinstance(value, dict):
        return {camel_case(k): api_style(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [api_style(v, key) for v in value]
    if key in _EXPORT_CODES and isinstance(value, str):
        return value.upper()
    return value


@strawberry.type(description="A one-time code for a patient to open their account: shown once, valid a week.")
class PatientInvitation:
    code: str = strawberry.field(description="The code to hand to the patient (in person or on paper); it is not "
                                             "stored in clear and cannot be shown again.")
    expires_at: datetime = strawberry.field(description="When the code stops working (a week after it was made).")


@strawberry.type(description="Someone who viewed or changed your file: a name and role, no contact details.")
class Accessor:
    kind: AccessorKind = strawberry.field(description="What kind of accessor.")
    name: str = strawberry.field(description="A staff member's name or a partner's; empty for yourself.")
    roles: list[Role] = strawberry.field(description="A staff member's roles; empty for others.")


@strawberry.type(description="One access to your file.")
class AccessEntry:
    occurred_at: datetime = strawberry.field(description="When.")
    action: Action = strawberry.field(description="What was done (READ, UPDATE, EXPORT...).")
    field_classes: list[AuditFieldClass] = strawberry.field(description="Which parts of the file (IDENTITY, "
                                                                        "CONTACT...).")
    accessor: Accessor = strawberry.field(description="Who.")
    refused: bool = strawberry.field(description="True for an attempt that was refused: someone tried to open your "
                                                 "file (or a part of it) and was turned away.")
    resource_type_name: str = strawberry.field(description="Which kind of record of your file it was about, as the "
                                                           "API names its type (Patient, Contact, Appointment, "
                                                           "Contract...): a creation touches no part of the file "
                                                           "but is one of its records. Never the record itself.")

    @classmethod
    def of(cls, entry: AccessEntryView) -> AccessEntry:
        who = entry.accessor
        kind = AccessorKind(who.kind) if who.kind in AccessorKind._value2member_map_ else AccessorKind.SYSTEM
        return cls(occurred_at=entry.occurred_at, action=Action(entry.action),
                   field_classes=field_classes_of(entry.field_classes),
                   accessor=Accessor(kind=kind, name=who.name, roles=roles_of(who.roles)), refused=entry.refused,
                   resource_type_name=audit_spelling.type_name(entry.resource_type))


@strawberry.type(description="One access of a page, with its cursor.")
class AccessEntryEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: AccessEntry = strawberry.field(description="The access.")


@strawberry.type(description="A page of accesses to your file, newest first.")
class AccessEntryConnection:
    edges: list[AccessEntryEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(
        default=None, description=TOTAL_COUNT + " Here: the accesses recorded when the page was read (reading your "
                                                "log is one).")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[AccessEntry]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A reply on one of your tickets.")
class MyTicketReply:
    occurred_at: datetime = strawberry.field(description="When it was sent.")
    message: str | None = strawberry.field(description="What you were told; never null (a reply always has "
                                                        "its text).")


@strawberry.type(description="One reply of a page, with its cursor.")
class MyTicketReplyEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: MyTicketReply = strawberry.field(description="The reply.")


@strawberry.type(description="A page of the replies on one of your tickets, oldest first.")
class MyTicketReplyConnection:
    edges: list[MyTicketReplyEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[MyTicketReply]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="One of your tickets, as you see it: what you asked and what you were told.")
class MyTicket:
    view: strawberry.Private[TicketView]

    @strawberry.field(description="The ticket's id, to quote when you contact the institution.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="Enquiry, request, complaint or suggestion.")
    def category(self) -> TicketCategory:
        return TicketCategory(self.view.row.category)

    @strawberry.field(description="Where it stands.")
    def status(self) -> TicketStatus:
        return TicketStatus(self.view.row.status)

    @strawberry.field(description="When you can expect a first answer; null once answered, or while the "
                                  "institution waits on you (PAUSED status WAITING_ON_PATIENT).")
    def response_due_at(self) -> datetime | None:
        return ticket_reads.due_for_patient(self.view, "response")

    @strawberry.field(description="When it should be resolved; null once resolved, or while the institution "
                                  "waits on you.")
    def resolution_due_at(self) -> datetime | None:
        return ticket_reads.due_for_patient(self.view, "resolution")

    @strawberry.field(description="When the institution received it.")
    def received_at(self) -> datetime:
        return self.view.row.received_at

    @strawberry.field(description="When it was resolved; null while it is not.")
    def resolved_at(self) -> datetime | None:
        return self.view.row.resolved_at

    @strawberry.field(description="What it is about, in one line.")
    def subject(self, info: Info) -> str:
        return str(ticket_reads.read_field(info.context, self.view, "subject"))

    @strawberry.field(description="The details you gave; null when none.")
    def description(self, info: Info) -> str | None:
        return ticket_reads.read_field(info.context, self.view, "description")

    @strawberry.field(description="How it was resolved; null until it is (a reopened ticket keeps its last "
                                  "one).")
    def resolution(self, info: Info) -> str | None:
        return ticket_reads.read_field(info.context, self.view, "resolution")

    @strawberry.field(description="The replies you were sent, oldest first, at most "
                                  f"{accounts.REPLIES_LIMIT} (never the staff's internal notes).",
                      deprecation_reason=f"Stops at {accounts.REPLIES_LIMIT} replies: page through "
                                         "repliesConnection.")
    async def replies(self, info: Info) -> list[MyTicketReply]:
        return [reply_of(info, self.view, event) for event in await accounts.replies(info.context, self.view)]

    @strawberry.field(description="The replies you were sent, oldest first, a page at a time (never the staff's "
                                  "internal notes). Null only with an error (a bad first or after: "
                                  "BAD_USER_INPUT).")
    async def replies_connection(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                                 ) -> MyTicketReplyConnection | None:
        page = await accounts.replies_page(info.context, self.view, first=first, after=after, count=asks_total(info))
        return MyTicketReplyConnection(
            edges=[MyTicketReplyEdge(cursor=cursor, node=reply_of(info, self.view, event))
                   for cursor, event in page.items], page_info=PageInfo.of(page), total_count=page.total)


def reply_of(info: Info, view: TicketView, event: Any) -> MyTicketReply:
    return MyTicketReply(occurred_at=event.occurred_at, message=ticket_reads.read_event_note(info.context, view, event))


@strawberry.type(description="One of your tickets in a page, with its cursor.")
class MyTicketEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: MyTicket = strawberry.field(description="The ticket.")


@strawberry.type(description="A page of your tickets, newest first.")
class MyTicketConnection:
    edges: list[MyTicketEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[MyTicket]:
        return [edge.node for edge in self.edges]


@strawberry.type
class PatientAccountQuery:
    @strawberry.field(description="Your own file (patients).")
    async def my_file(self, info: Info) -> Patient | None:
        return node(info.context, await patients.get(info.context, accounts.own_patient_id(info.context)))

    @strawberry.field(description="Who viewed or changed your file, and when (patients).")
    async def my_access_log(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                            ) -> AccessEntryConnection:
        page = await accounts.access_log(info.context, first=first, after=after, count=asks_total(info))
        return AccessEntryConnection(edges=[AccessEntryEdge(cursor=c, node=AccessEntry.of(e)) for c, e in page.items],
                                     page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="Your tickets, newest first: what you asked and the replies you were sent "
                                  "(patients).")
    async def my_tickets(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                         ) -> MyTicketConnection:
        page = await accounts.tickets(info.context, first=first, after=after, count=asks_total(info))
        return MyTicketConnection(edges=[MyTicketEdge(cursor=c, node=MyTicket(view=v)) for c, v in page.items],
                                  page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="A copy of your data as JSON: your file, contacts, consents, visits, care plans, "
                                  "appointments, contracts, tickets, messages and identified survey answers "
                                  "(patients). Keys are camelCase and codes UPPER_CASE, as everywhere else in the API "
                                  "(`fullName`, `sex: \"FEMALE\"`).")
    async def my_data_export(self, info: Info) -> JSON | None:
        return cast(JSON, api_style(await accounts.export(info.context)))


_PATIENT_ID = Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")]
_EMAIL = Annotated[str, strawberry.argument(description="The e-mail address that signs the account in.")]
_PASSWORD = Annotated[str, strawberry.argument(description="The password, 12 to 256 characters.")]


@strawberry.type
class PatientAccountMutation:
    @strawberry.mutation(description="Invite a patient to the self-service portal: a one-time code (staff).")
    async def patient_invite(self, info: Info, patient_id: _PATIENT_ID) -> PatientInvitation | None:
        found = await accounts.invite(info.context, uuid_of(patient_id, "patientId"))
        return PatientInvitation(code=found.code, expires_at=found.expires_at)

    @strawberry.mutation(description="Open your account with the invitation code, and sign in.")
    async def patient_account_activate(
        self, info: Info,
        code: Annotated[str, strawberry.argument(description="The invitation code, while it is valid; it works "
                                                             "once.")],
        email: _EMAIL, password: _PASSWORD,
    ) -> LoginPayload | None:
        result = await accounts.activate(info.context, code, email, password)
        return LoginPayload(token=result.token, expires_at=result.expires_at)

    @strawberry.mutation(description="Sign in to the self-service portal. Repeated failures lock the account "
                                     "(RATE_LIMITED, with `extensions.retryAfter` in seconds), as too many sign-ins "
                                     "from one address in a minute are refused.")
    async def patient_login(
        self, info: Info, email: _EMAIL,
        password: Annotated[str, strawberry.argument(description="The account's password.")],
    ) -> LoginPayload | None:
        result = await accounts.login(info.context, email, password)
        return LoginPayload(token=result.token, expires_at=result.expires_at)

    @strawberry.mutation(description="Open a request, complaint, enquiry or suggestion about yourself (patients). "
                                     "It is answered within the institution's times, shown on `myTickets`.")
    async def my_ticket_create(self, info: Info, input: Annotated[MyTicketCreateInput, strawberry.argument(
            description="What you ask or report.")]) -> MyTicket | None:
        return MyTicket(view=await ticket_reads.create_mine(info.context, provided(input)))

    @strawberry.mutation(description="Issue a one-time code for a patient who forgot their password (staff, for a "
                                     "patient in your reach with an open account): hand it over in person or on "
                                     "paper; the patient sets a new password with `passwordResetComplete`.")
    async def patient_password_reset_issue(self, info: Info, patient_id: _PATIENT_ID) -> PasswordResetCode | None:
        return PasswordResetCode.of(await accounts.issue_reset(info.context, uuid_of(patient_id, "patientId")))

    @strawberry.mutation(description="Close a patient's self-service account; its sessions stop (staff). "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def patient_account_deactivate(self, info: Info, patient_id: _PATIENT_ID) -> bool | None:
        return await accounts.deactivate(info.context, uuid_of(patient_id, "patientId"))
