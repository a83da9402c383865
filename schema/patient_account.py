"""Patients' self-service: invitation, account, sign-in, my file, who viewed it, a copy of my data."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from resolvers import patient as patients
from resolvers import patient_account as accounts
from resolvers import ticket as ticket_reads
from resolvers.patient_account import AccessEntry as AccessEntryView
from resolvers.ticket import TicketView
from schema.common import CURSOR, DEFAULT_PAGE_SIZE, EDGES, PAGE_INFO, After, First, Info, PageInfo, uuid_of
from schema.patient import Patient, node
from schema.session import LoginPayload


@strawberry.type(description="A one-time code for a patient to open their account: shown once, valid a week.")
class PatientInvitation:
    code: str = strawberry.field(description="The code to hand to the patient (in person or on paper); it is not "
                                             "stored in clear and cannot be shown again.")
    expires_at: datetime = strawberry.field(description="When the code stops working (a week after it was made).")


@strawberry.enum(description="Who touched a file.")
class AccessorKind(Enum):
    STAFF = strawberry.enum_value("staff", description="A staff member of the institution.")
    PARTNER = strawberry.enum_value("partner", description="A care partner's API client.")
    PATIENT = strawberry.enum_value("patient", description="You, through the portal.")
    SYSTEM = strawberry.enum_value("system", description="The system itself (reminders, messages, scheduled work).")
    ANONYMOUS = strawberry.enum_value("anonymous", description="Someone not signed in (e.g. a refused request).")


@strawberry.type(description="Someone who viewed or changed your file: a name and role, no contact details.")
class Accessor:
    kind: AccessorKind = strawberry.field(description="What kind of accessor.")
    name: str = strawberry.field(description="A staff member's name or a partner's; empty for yourself.")
    roles: list[str] = strawberry.field(description="A staff member's roles.")


@strawberry.type(description="One access to your file.")
class AccessEntry:
    occurred_at: datetime = strawberry.field(description="When.")
    action: str = strawberry.field(description="read, update, export...")
    field_classes: list[str] = strawberry.field(description="Which parts of the file (identity, contact...).")
    accessor: Accessor = strawberry.field(description="Who.")

    @classmethod
    def of(cls, entry: AccessEntryView) -> AccessEntry:
        who = entry.accessor
        kind = AccessorKind(who.kind) if who.kind in AccessorKind._value2member_map_ else AccessorKind.SYSTEM
        return cls(occurred_at=entry.occurred_at, action=entry.action, field_classes=entry.field_classes,
                   accessor=Accessor(kind=kind, name=who.name, roles=who.roles))


@strawberry.type(description="One access of a page, with its cursor.")
class AccessEntryEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: AccessEntry = strawberry.field(description="The access.")


@strawberry.type(description="A page of accesses to your file, newest first.")
class AccessEntryConnection:
    edges: list[AccessEntryEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)


@strawberry.type(description="A reply on one of your tickets.")
class MyTicketReply:
    occurred_at: datetime = strawberry.field(description="When it was sent.")
    message: str | None = strawberry.field(description="What you were told.")


@strawberry.type(description="One of your tickets, as you see it: what you asked and what you were told.")
class MyTicket:
    view: strawberry.Private[TicketView]

    @strawberry.field(description="The ticket's id, to quote when you contact the institution.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="enquiry, request, complaint or suggestion.")
    def category(self) -> str:
        return str(self.view.row.category)

    @strawberry.field(description="new, acknowledged, investigating, waiting_on_patient, resolved, "
                                  "feedback_recorded or closed.")
    def status(self) -> str:
        return str(self.view.row.status)

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

    @strawberry.field(description="How it was resolved.")
    def resolution(self, info: Info) -> str | None:
        return ticket_reads.read_field(info.context, self.view, "resolution")

    @strawberry.field(description="The replies you were sent, oldest first (never the staff's internal notes).")
    async def replies(self, info: Info) -> list[MyTicketReply]:
        return [MyTicketReply(occurred_at=event.occurred_at,
                              message=ticket_reads.read_event_note(info.context, self.view, event))
                for event in await accounts.replies(info.context, self.view)]


@strawberry.type(description="One of your tickets in a page, with its cursor.")
class MyTicketEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: MyTicket = strawberry.field(description="The ticket.")


@strawberry.type(description="A page of your tickets, newest first.")
class MyTicketConnection:
    edges: list[MyTicketEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)


@strawberry.type
class PatientAccountQuery:
    @strawberry.field(description="Your own file (patients).")
    async def my_file(self, info: Info) -> Patient | None:
        return node(info.context, await patients.get(info.context, accounts.own_patient_id(info.context)))

    @strawberry.field(description="Who viewed or changed your file, and when (patients).")
    async def my_access_log(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                            ) -> AccessEntryConnection:
        page = await accounts.access_log(info.context, first=first, after=after)
        return AccessEntryConnection(edges=[AccessEntryEdge(cursor=c, node=AccessEntry.of(e)) for c, e in page.items],
                                     page_info=PageInfo.of(page))

    @strawberry.field(description="Your tickets, newest first: what you asked and the replies you were sent "
                                  "(patients).")
    async def my_tickets(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                         ) -> MyTicketConnection:
        page = await accounts.tickets(info.context, first=first, after=after)
        return MyTicketConnection(edges=[MyTicketEdge(cursor=c, node=MyTicket(view=v)) for c, v in page.items],
                                  page_info=PageInfo.of(page))

    @strawberry.field(description="A copy of your data as JSON: your file, contacts and consents (patients).")
    async def my_data_export(self, info: Info) -> JSON | None:
        return cast(JSON, await accounts.export(info.context))


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

    @strawberry.mutation(description="Sign in to the self-service portal. Repeated failures lock the account.")
    async def patient_login(
        self, info: Info, email: _EMAIL,
        password: Annotated[str, strawberry.argument(description="The account's password.")],
    ) -> LoginPayload | None:
        result = await accounts.login(info.context, email, password)
        return LoginPayload(token=result.token, expires_at=result.expires_at)

    @strawberry.mutation(description="Close a patient's self-service account; its sessions stop (staff).")
    async def patient_account_deactivate(self, info: Info, patient_id: _PATIENT_ID) -> bool | None:
        return await accounts.deactivate(info.context, uuid_of(patient_id, "patientId"))
