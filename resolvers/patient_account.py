"""Patients' self-service: invitation, account, sign-in, their own file, who viewed it, a copy.

Staff invite a patient with a one-time code (only its keyed hash is stored); the patient opens an
account linked to exactly that file and signs in as staff do. The patient principal reaches
their own file and nothing else (``policies.scopes``: Reach.SELF), never the staff-only labels.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.errors import BadUserInput
from core.money import format_amount
from core.principal import PATIENT
from core.tokens import INVITATION_PREFIX, looks_like_invitation, new_token, token_digest
from core.validation import Problems, normalize_email
from models import (
    AuditEvent,
    CarePlan,
    CarePlanActivity,
    PatientAccount,
    PatientInvitation,
    PatientSession,
    Ticket,
    TicketEvent,
    VisitCode,
)
from policies.fields import APPOINTMENT_FIELD_CLASS, CARE_PLAN_FIELD_CLASS, PATIENT_FIELD_CLASS, VISIT_FIELD_CLASS
from resolvers import access, pagination, sign_in_limit
from resolvers import account as accounts
from resolvers import appointment as appointments
from resolvers import care_plan as care_plans
from resolvers import communication as communications
from resolvers import consent as consents
from resolvers import contact as contacts
from resolvers import contract as contracts
from resolvers import questionnaire_response as questionnaire_responses
from resolvers import session as sessions
from resolvers import survey as surveys
from resolvers import ticket as ticket_reads
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.audit_event import about_person, files_of_person, who
from resolvers.context import Context
from resolvers.loaders import newest_per_parent
from resolvers.staff import check_password
from resolvers.ticket import TicketView

INVITATION_LIFETIME = timedelta(days=7)
LOG_CURSOR_KIND = "access-log"
ANOTHER_PATIENT = "another_patient"  # an accessor kind of the access log only (``_accessors``)
TICKET_CURSOR_KIND = "my-ticket"
REPLY_CURSOR_KIND = "my-ticket-reply"
# The deprecated unpaged ``MyTicket.replies`` stops here, oldest first (found in review: not bounded, on a page of up
# to 100 tickets); every reply pages through ``MyTicket.repliesConnection``.
REPLIES_LIMIT = 50


@dataclass(frozen=True)
class Invitation:
    code: str  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class Accessor:
    """Who touched the file, as the patient may see them: a name and a role, no contact details."""

    kind: str  # staff, partner, patient (yourself), system
    name: str
    roles: list[str]


@dataclass(frozen=True)
class AccessEntry:
    occurred_at: datetime
    action: str
    field_classes: list[str]
    accessor: Accessor
    refused: bool = False  # an attempt that was turned away
    resource_type: str = "patient"  # the kind of record of the file it was about, as the trail stores it


# -- invitation and account -------------------------------------------------------------------


async def invite(ctx: Context, patient_id: uuid.UUID | None) -> Invitation:
    """A one-time code for the patient to open their account, or reopen a closed one (a week to use
    it); a newer invitation does not cancel an older one, and a file with an open account takes none."""
    decision = await access.authorize(ctx, "patient_account", "create", action=Action.CREATE,
                                      resource_type="patient_invitation", patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.CREATE, field="patientId")
    await _require_keeper(ctx, view, "create", Action.CREATE, "patient_invitation")
    if await PatientAccount.exists(patient_id=view.row.id, is_active=True):
        raise BadUserInput("patientId: this patient has an account already.", field="patientId")
    code = new_token(INVITATION_PREFIX)
    expires_at = datetime.now(UTC) + INVITATION_LIFETIME
    async with access.file_transaction(ctx, view.row.id, action=Action.CREATE):
        row = await PatientInvitation.create(institution_id=ctx.institution_id, patient_id=view.row.id,
                                             code_hash=token_digest(ctx.services.master_key.token_key, code),
                                             expires_at=expires_at, created_by_id=ctx.actor.id)
        await writer.append([access.write_record(ctx, Action.CREATE, "patient_invitation", row.id,
                                                 patient_id=view.row.id, decision=decision)])
    return Invitation(code, expires_at)


async def activate(ctx: Context, code: str, email: str, password: str) -> sessions.LoginResult:
    """Open the account an invitation is for (or reopen the file's closed one), and sign in. The code
    works once. Every refusal of a code is recorded, on the invited file's trail when the code is real."""
    problems = Problems()  # the form's shape, every problem at once; the code's check follows, one answer for all
    address = secret = ""
    with problems.collect("email"):
        address = normalize_email(email).lower()  # sign-in looks addresses up in lower case
    with problems.collect("password"):
        secret = check_password(password)
    problems.check()
    invitation = None
    if looks_like_invitation(code.strip()):
        digest = token_digest(ctx.services.master_key.token_key, code.strip())
        invitation = await PatientInvitation.get_or_none(code_hash=digest, used_at=None,
                                                         expires_at__gt=datetime.now(UTC))
    closed = None if invitation is None else await PatientAccount.get_or_none(patient_id=invitation.patient_id)
    if invitation is None or (closed is not None and closed.is_active):
        await _refuse(ctx, invitation, "bad_invitation")
        raise _bad_code()
    if await PatientAccount.filter(email=address).exclude(id=closed.id if closed else None).exists():
        await _refuse(ctx, invitation, "email_in_use")  # probing e-mails takes a real code, and is on record
        raise _email_taken()
    password_hash = await ctx.services.passwords.hash(secret)
    file = invitation.patient_id
    try:
        async with in_transaction():
            # The invited file held first, as a merge locks it before it moves the invitation (and the account to
            # be): merged since the invitation was read, both are the survivor's, and the code is read again there
            # (found in review: the account was opened on the merged file, the invitation, moved, used anyway).
            if (await access.current_files([file]))[file] != file:
                raise _Moved()
            if not await PatientInvitation.filter(id=invitation.id, used_at=None, patient_id=file).update(
                    used_at=datetime.now(UTC)):
                raise _bad_code()  # used by a concurrent activation a moment ago
            account = await _open(invitation, closed, address, password_hash)
            await writer.append([AuditRecord(account.institution_id, Actor(PATIENT, account.id),
                                             Action.CREATE if closed is None else Action.UPDATE, "patient_account",
                                             Outcome.ALLOWED, ctx.request, resource_id=account.id,
                                             patient_id=account.patient_id,
                                             fields_read=frozenset({"email"} if closed is None else
                                                                   {"email", "password_hash", "is_active"}))])
            return await sessions.open_session(ctx, sessions.PATIENT_ACCOUNTS, account)
    except IntegrityError:  # a concurrent activation took the e-mail or opened the file's account first
        raise (_email_taken() if await PatientAccount.exists(email=address) else _bad_code()) from None
    except _Moved:
        return await activate(ctx, code, email, password)


class _Moved(Exception):
    """The file was merged since the invitation (or account) was read on it: that row is the survivor's now."""


async def _open(invitation: PatientInvitation, closed: PatientAccount | None, address: str,
                password_hash: str) -> PatientAccount:
    if closed is None:
        return await PatientAccount.create(institution_id=invitation.institution_id,
                                           patient_id=invitation.patient_id, email=address,
                                           password_hash=password_hash)
    reopened = await PatientAccount.filter(id=closed.id, is_active=False).update(
        email=address, password_hash=password_hash, is_active=True, failed_logins=0, locked_until=None)
    if not reopened:
        raise _bad_code()
    return await PatientAccount.get(id=closed.id)


async def _refuse(ctx: Context, invitation: PatientInvitation | None, reason: str) -> None:
    """The refusal on the trail, once it has counted against the caller's address (``sign_in_limit``)."""
    await sign_in_limit.admit_link(ctx, Action.CREATE, "patient_account")
    await writer.append([AuditRecord(invitation.institution_id if invitation else writer.SYSTEM_CHAIN,
                                     Actor("anonymous"), Action.CREATE, "patient_account", Outcome.DENIED,
                                     ctx.request, patient_id=invitation.patient_id if invitation else None,
                                     reason=reason)])


def _bad_code() -> BadUserInput:
    return BadUserInput("code: not a valid invitation (unknown, used or expired).", field="code")


def _email_taken() -> BadUserInput:
    return BadUserInput("email: already in use.", field="email")


async def login(ctx: Context, email: str, password: str) -> sessions.LoginResult:
    return await sessions.login(ctx, email, password, sessions.PATIENT_ACCOUNTS)


async def deactivate(ctx: Context, patient_id: uuid.UUID | None) -> bool:
    """Staff close a patient's account: its sessions stop on the next request."""
    decision = await access.authorize(ctx, "patient_account", "update", action=Action.UPDATE,
                                      resource_type="patient_account", patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.UPDATE, field="patientId")
    await _require_keeper(ctx, view, "update", Action.UPDATE, "patient_account")
    account = await PatientAccount.get_or_none(patient_id=view.row.id, institution_id=ctx.institution_id)
    if account is None:
        raise await access.not_found(ctx, Action.UPDATE, "patient_account", None, "patientId")
    try:
        async with in_transaction():
            # only while the account is on the file named (the on_file pattern of writes.write_over_version): a merge
            # since moved it to the survivor, and the file named is then refused as merged (found in review: the
            # survivor's account was closed, recorded on the merged file)
            if not await PatientAccount.filter(id=account.id, patient_id=view.row.id).update(is_active=False):
                raise _Moved()
            # revoked, not just suspended: a reopened account must not bring old tokens back
            await PatientSession.filter(account_id=account.id, revoked_at=None).update(revoked_at=datetime.now(UTC))
            # and its open reset codes void: reopened by an invitation, it must not bring one back
            voided = await accounts.void_reset_codes(sessions.PATIENT_ACCOUNTS, account.id, datetime.now(UTC))
            await writer.append([access.write_record(ctx, Action.UPDATE, "patient_account", account.id,
                                                     patient_id=view.row.id,
                                                     fields=frozenset({"is_active"} | ({"password_resets"} if voided
                                                                                       else set())),
                                                     decision=decision)])
    except _Moved:
        return await deactivate(ctx, patient_id)  # the file named, merged: refused there
    return True


async def issue_reset(ctx: Context, patient_id: uuid.UUID | None) -> accounts.ResetCode:
    """A one-time code for a patient who forgot their password (staff of the patient's reach, after checking who
    asks, as for an invitation): a day to use it with ``passwordResetComplete``, which also unlocks the account."""
    decision = await access.authorize(ctx, "patient_account", "update", action=Action.CREATE,
                                      resource_type="password_reset", patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.CREATE, field="patientId")
    await _require_keeper(ctx, view, "update", Action.CREATE, "password_reset")
    account = await PatientAccount.get_or_none(patient_id=view.row.id, institution_id=ctx.institution_id,
                                               is_active=True)
    if account is None:
        raise await access.not_found(ctx, Action.CREATE, "patient_account", None, "patientId")
    return await accounts.issue_code(ctx, decision, sessions.PATIENT_ACCOUNTS, account)


async def _require_keeper(ctx: Context, view: PatientView, act: str, action: Action, resource_type: str) -> None:
    """A role of the caller allowed to ``act`` on patients' accounts reaches the file, not only another role of the
    account (found in review: a nurse of department B who also works in finance, which finds every client, issued
    the patients of every department invitations and reset codes, keys to their accounts and so to their files)."""
    await access.require_section_reached(ctx, view, "patient_account", act=act, action=action,
                                         resource_type=resource_type)


# -- the patient's own file -------------------------------------------------------------------


def own_patient_id(ctx: Context) -> uuid.UUID | None:
    """The file of a signed-in patient; None for anyone else (who then finds nothing)."""
    return ctx.require_principal().patient_id


async def access_log(ctx: Context, *, first: int, after: str | None,
                     count: bool = False) -> pagination.Page[AccessEntry]:
    """Who viewed or changed my file and when, and who tried and was refused, newest first: names and roles, never
    staff contact details."""
    decision = await access.authorize(ctx, "access_log", "read", action=Action.READ, resource_type="access_log")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    view = await access.find_patient(ctx, own_patient_id(ctx), action=Action.READ)
    await writer.seal(ctx.institution_id)
    files = files_of_person(ctx.institution_id, view.row.id)
    query = AuditEvent.filter(about_person(ctx.institution_id, view.row.id)).filter(
        ~surveys.family_records(ctx.institution_id, files))
    hidden = await surveys.family_lists(ctx.institution_id, files, query)
    if hidden:
        query = query.filter(seq__not_in=hidden)
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(seq__lt=pagination.decode_int(LOG_CURSOR_KIND, after))
    rows = await query.order_by("-seq").limit(first + 1).values(
        "seq", "occurred_at", "action", "field_classes", "actor_kind", "actor_id", "outcome", "resource_type")
    accessors = await _accessors(ctx, view, rows[:first])
    ctx.reads.note("access_log", None, view.row.id, rule=decision.rule)
    entries = [(row["seq"], AccessEntry(row["occurred_at"], row["action"],
                                        [c for c in row["field_classes"].split(",") if c],
                                        accessors.get((row["actor_kind"], row["actor_id"]),
                                                      Accessor(row["actor_kind"], "", [])),
                                        refused=row["outcome"] != "allowed", resource_type=row["resource_type"]))
               for row in rows[:first]]
    return pagination.Page([(pagination.encode(LOG_CURSOR_KIND, str(seq)), entry) for seq, entry in entries],
                           len(rows) > first, total)


async def _accessors(ctx: Context, view: PatientView, rows: list[dict[str, Any]]
                     ) -> dict[tuple[str, Any], Accessor]:
    """Names and roles of a page's staff and partners, three statements whatever the page size; and another
    patient's account, never named, as ``another_patient``: its attempt on the file (refused, on the file's trail as
    any attempt on an existing file is) is not the patient's own, which the portal shows as "you" (found in review).
    The person's own accounts are those of their files (a file merged into theirs kept its closed account): one
    statement more, only for a page with a patient's record not made by the caller's account."""
    found = await who(ctx.institution_id, ((row["actor_kind"], row["actor_id"]) for row in rows))
    accessors = {(kind, actor): Accessor(kind, known.name, known.roles) for (kind, actor), known in found.items()}
    account_id = ctx.require_principal().user_id
    others = {row["actor_id"] for row in rows
              if row["actor_kind"] == PATIENT and str(row["actor_id"]) != str(account_id)}
    if others:
        own = {str(account) for account in await PatientAccount.filter(
            institution_id=ctx.institution_id, id__in=[str(actor) for actor in others],
            patient_id__in=files_of_person(ctx.institution_id, view.row.id)).values_list("id", flat=True)}
        accessors.update({(PATIENT, actor): Accessor(ANOTHER_PATIENT, "", []) for actor in others
                          if str(actor) not in own})
    return accessors


async def tickets(ctx: Context, *, first: int, after: str | None, count: bool = False) -> pagination.Page[TicketView]:
    """My tickets, newest first: a patient's own, never another's (the staff queue is staff's)."""
    await access.authorize(ctx, "my_ticket", "read", action=Action.READ, resource_type="ticket")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Ticket.filter(institution_id=ctx.institution_id, patient_id=own_patient_id(ctx)).exclude(
        id__in=questionnaire_responses.family_tickets(ctx.institution_id))
    page = await pagination.by_id(query, first=first, after=after, kind=TICKET_CURSOR_KIND, count=count,
                                  newest_first=True)
    return page.map(TicketView)


async def replies(ctx: Context, view: TicketView) -> list[TicketEvent]:
    """What the patient was told (the deprecated unpaged list): the replies on the timeline, oldest first, at most
    REPLIES_LIMIT; never an internal note."""
    return await _replies(ctx, view, None, REPLIES_LIMIT)


async def replies_page(ctx: Context, view: TicketView, *, first: int, after: str | None,
                       count: bool = False) -> pagination.Page[TicketEvent]:
    """What the patient was told, oldest first, a page at a time. A cursor fits any ticket of the list (a reply's
    id), so the pages of a list of tickets load together: two statements (three with ``count``) whatever the number
    of tickets and replies."""
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    # "" is no cursor: the first page, as null (every list alike)
    since = pagination.decode_uuid(REPLY_CURSOR_KIND, after) if after else None
    rows = await _replies(ctx, view, since, first + 1)
    total = None
    if count:
        total = await ctx.require_loaders().made("ticket_reply_counts", partial(_reply_counts, ctx)).load(view.row.id)
    return pagination.page_of(rows[:first], len(rows) > first, REPLY_CURSOR_KIND, key=lambda event: event.id,
                              total=total)


async def _replies(ctx: Context, view: TicketView, since: uuid.UUID | None, limit: int) -> list[TicketEvent]:
    """The first ``limit`` replies of the ticket after ``since``, batched across the tickets of a request: the
    internal notes are left out in SQL, before the bound, so they take no place."""
    async def batch(ticket_ids: Sequence[uuid.UUID]) -> list[list[TicketEvent]]:
        query = TicketEvent.filter(institution_id=ctx.institution_id, internal=False)
        if since is not None:
            query = query.filter(id__gt=since)
        found = await newest_per_parent(query, "ticket_id", ticket_ids, ("id",), limit)
        return [found.get(i, []) for i in ticket_ids]

    loader = ctx.require_loaders().made(f"ticket_replies.{since}.{limit}", batch)
    return list(await loader.load(view.row.id))


async def _reply_counts(ctx: Context, ticket_ids: Sequence[uuid.UUID]) -> list[int]:
    """How many replies each ticket holds (one statement for a batch)."""
    grouped = (TicketEvent.filter(institution_id=ctx.institution_id, internal=False, ticket_id__in=list(ticket_ids))
               .annotate(n=Count("id")).group_by("ticket_id").values_list("ticket_id", "n"))
    counts = {uuid.UUID(str(ticket_id)): int(n) for ticket_id, n in await grouped}
    return [counts.get(i, 0) for i in ticket_ids]


async def export(ctx: Context) -> dict[str, Any]:
    """A copy of my data (PIPL's right to a copy): every field of my file I may read, my family and
    emergency contacts, my consents, my visits (with their codes and after-visit instructions), my care plans, my
    appointments, my contracts, my tickets, the messages sent to me and my (identified) survey answers, as JSON.
    Recorded as an export of the file."""
    decision = await access.authorize(ctx, "patient", "export", action=Action.EXPORT, resource_type="patient")
    view = await access.find_patient(ctx, own_patient_id(ctx), action=Action.EXPORT)
    record = _readable(ctx, view)
    access.require_contacts(ctx, view)
    family = [{name: _plain(access.read_contact_field(ctx, contact, name)) for name in
               ("name", "relationship", "phone", "is_emergency", "may_receive_information", "notes")}
              for contact in await contacts.of_patient(ctx, view)]
    shared = [{"partner_id": str(c.partner_id), "granted": c.granted, "changed_at": c.updated_at.isoformat()}
              for c in await consents.of_patient(ctx, view)]
    journey = {"visits": await _visits_copy(ctx, view), "care_plans": await _care_plans_copy(ctx, view),
               "appointments": await _appointments_copy(ctx, view), "contracts": await _contracts_copy(ctx)}
    own_tickets = await _tickets_copy(ctx, view.row.id)
    messages = await communications.export_copy(ctx, view)
    surveys = await questionnaire_responses.export_copy(ctx, view)
    await writer.append([AuditRecord(ctx.institution_id, ctx.actor, Action.EXPORT, "patient", Outcome.ALLOWED,
                                     ctx.request, resource_id=view.row.id, patient_id=view.row.id,
                                     field_classes=frozenset(view.classes), policy_rule=decision.rule)])
    return {"patient": {"id": str(view.row.id), **record}, "contacts": family, "partner_consents": shared,
            **journey, "tickets": own_tickets, "communications": messages, "survey_responses": surveys,
            "exported_at": datetime.now(UTC).isoformat()}


# What of a record of my care journey the copy holds: its fields as the portal reads them (under their class of my
# file; the staff-only internal note never), not its version nor the staff who wrote it.
_VISIT_COPY = tuple(name for name in VISIT_FIELD_CLASS if name != "codes")
_PLAN_COPY = tuple(CARE_PLAN_FIELD_CLASS)
_APPOINTMENT_COPY = tuple(name for name in APPOINTMENT_FIELD_CLASS if name not in ("schedule", "visit",
                                                                                   "rescheduled_from"))


def _journey_fields(ctx: Context, view: PatientView, names: Sequence[str], classes: dict[str, str],
                    read: Any, record: Any) -> dict[str, Any]:
    return {name: _plain(read(ctx, record, name)) for name in names if classes[name] in view.classes}


async def _visits_copy(ctx: Context, view: PatientView) -> list[dict[str, Any]]:
    """My visits, oldest first, with their codes: two statements."""
    query = visits.in_reach(ctx)
    rows = [] if query is None else await query.filter(patient_id=view.row.id).order_by("planned_at", "id")
    coded: dict[Any, list[VisitCode]] = defaultdict(list)
    if rows and "clinical" in view.classes:
        for code in await VisitCode.filter(institution_id=ctx.institution_id,
                                           visit_id__in=[r.id for r in rows]).order_by("id"):
            coded[code.visit_id].append(code)
    copies = []
    for row in rows:
        visit = visits.VisitView(row, view)
        copy = {"id": str(row.id), "department_id": _plain(row.department_id),
                **_journey_fields(ctx, view, _VISIT_COPY, VISIT_FIELD_CLASS, visits.read_field, visit)}
        if "clinical" in view.classes:
            copy["codes"] = [{name: _plain(visits.read_code_field(ctx, visits.CodeView(code, visit), name))
                              for name in ("kind", "system", "code", "text", "status")} for code in coded[row.id]]
        copies.append(copy)
    return copies


async def _care_plans_copy(ctx: Context, view: PatientView) -> list[dict[str, Any]]:
    """My care plans, oldest first, with their activities (clinical): two statements, one without the class."""
    query = access.records_in_reach(ctx, CarePlan, "care_plan")
    rows = [] if query is None else await query.filter(patient_id=view.row.id).order_by("id")
    planned: dict[Any, list[CarePlanActivity]] = defaultdict(list)
    if rows and "clinical" in view.classes:  # the activities are copied under the clinical class only
        for activity in await CarePlanActivity.filter(institution_id=ctx.institution_id,
                                                      plan_id__in=[r.id for r in rows]).order_by("due_on", "id"):
            planned[activity.plan_id].append(activity)
    copies = []
    for row in rows:
        plan = care_plans.CarePlanView(row, view)
        copy = {"id": str(row.id), "visit_id": _plain(row.visit_id),
                **_journey_fields(ctx, view, _PLAN_COPY, CARE_PLAN_FIELD_CLASS, care_plans.read_field, plan)}
        if "clinical" in view.classes:
            copy["activities"] = [
                {"kind": a.kind, "due_on": _plain(a.due_on), "status": a.status,
                 "description": care_plans.read_activity_description(ctx, care_plans.ActivityView(a, plan))}
                for a in planned[row.id]]
        copies.append(copy)
    return copies


async def _appointments_copy(ctx: Context, view: PatientView) -> list[dict[str, Any]]:
    """My appointments, oldest slot first: one statement."""
    query = appointments.in_reach(ctx)
    rows = [] if query is None else await query.filter(patient_id=view.row.id).order_by("slot_start", "id")
    return [{"id": str(row.id), "visit_id": _plain(row.visit_id),
             **_journey_fields(ctx, view, _APPOINTMENT_COPY, APPOINTMENT_FIELD_CLASS, appointments.read_field,
                               appointments.AppointmentView(row, view))} for row in rows]


async def _contracts_copy(ctx: Context) -> list[dict[str, Any]]:
    """The contracts I am party to as the portal shows them: each version's terms, fees, clauses and items (never
    who drafted it); three statements whatever their number (the versions and items batched)."""
    query = contracts.in_reach(ctx)
    rows = [] if query is None else await query.order_by("start_on", "id")
    views = [contracts.ContractView(row) for row in rows]
    versions = await asyncio.gather(*(contracts.versions_of(ctx, view) for view in views))
    items = await asyncio.gather(*(contracts.items_of(ctx, v) for found in versions for v in found))
    listed = iter(items)
    copies = []
    for view, found in zip(views, versions, strict=True):
        row = view.row
        contracts.note_read(ctx, view)
        money = contracts.may_read_terms(ctx, view)
        if money:
            contracts.require_terms(ctx, view)
        copy = {"id": str(row.id), "number": row.number, "title": row.title, "status": row.status,
                "start_on": _plain(row.start_on), "end_on": _plain(row.end_on), "currency": row.currency,
                "status_reason": row.status_reason, "versions": []}
        for version in found:
            v = version.row
            copy["versions"].append({
                "number": v.number, "status": v.status, "effective_on": _plain(v.effective_on),
                "end_on": _plain(v.end_on), "billing_period": v.billing_period, "notice_days": v.notice_days,
                "auto_renew": v.auto_renew, "rights_duties": v.rights_duties, "change_summary": v.change_summary,
                "clauses": await contracts.read_clauses(ctx, version), "signed_at": _plain(v.signed_at),
                **({"deposit": format_amount(v.deposit, row.currency),
                    "period_total": format_amount(v.period_total, row.currency)} if money else {}),
                "items": [{"code": i.row.code, "name": i.row.name, "quantity": i.row.quantity,
                           "frequency": i.row.frequency,
                           **({"unit_price": format_amount(i.row.unit_price, row.currency),
                               "period_total": format_amount(i.row.period_total, row.currency)} if money else {})}
                          for i in next(listed)]})
        copies.append(copy)
    return copies


async def _tickets_copy(ctx: Context, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    """My tickets as I see them in the portal (what I asked, what I was told), two statements in all."""
    rows = await Ticket.filter(institution_id=ctx.institution_id, patient_id=patient_id).exclude(
        id__in=questionnaire_responses.family_tickets(ctx.institution_id)).order_by("id")
    said: dict[Any, list[TicketEvent]] = defaultdict(list)
    for event in await TicketEvent.filter(institution_id=ctx.institution_id, ticket_id__in=[r.id for r in rows],
                                          internal=False).order_by("id"):
        said[event.ticket_id].append(event)
    copies = []
    for row in rows:
        view = TicketView(row)
        copies.append({"id": str(row.id), "category": row.category, "status": row.status,
                       "received_at": _plain(row.received_at), "resolved_at": _plain(row.resolved_at),
                       **{name: ticket_reads.read_field(ctx, view, name) for name in ("subject", "description",
                                                                                     "resolution")},
                       "replies": [{"occurred_at": _plain(e.occurred_at),
                                    "message": ticket_reads.read_event_note(ctx, view, e)} for e in said[row.id]]})
    return copies


def _readable(ctx: Context, view: PatientView) -> dict[str, Any]:
    """Every field of the file in a class the caller may read, decrypted (and noted) one by one."""
    return {name: _plain(access.read_patient_field(ctx, view, name))
            for name, field_class in PATIENT_FIELD_CLASS.items() if field_class in view.classes}


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value
