"""The one door to patient data: authorize, scope, load or write, reveal, audit.

Every resolver that touches patient data goes through here:
- ``authorize`` decides with the guard and records a denial before refusing;
- ``patient_scope`` and ``scoped_patients`` put the row scope inside the SQL, so a row
  out of scope is never fetched and looks exactly like a missing one (``not_found``); a record of the
  institution on no file (a department, a schedule, a partner) is found by id with ``find_in_institution``,
  another institution's answering as a missing one;
- rows load with their encrypted columns sealed; ``read_patient_field`` and
  ``read_contact_field`` check the field class, decrypt at the point of use and note the
  read, so only fields a client asked for are decrypted and audited;
- ``flush_reads`` writes what an operation read when it ends; writes add their own record
  inside their transaction (``write_record``); a refusal found inside a write's transaction is raised there as a
  ``Refusal`` and recorded once it has rolled back (``refusals_recorded``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar, cast

from strawberry.dataloader import DataLoader
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.connection import connections
from tortoise.expressions import Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, AuditRecord, Outcome
from audit.reads import EMERGENCY_ACCESS, PARTNER_GRANT, ReadLog, grant_line, rule_text
from core import statements
from core.crypto import field_aad
from core.errors import BadUserInput, CareloopError, Conflict, Forbidden, NotFound
from core.principal import PARTNER
from models import Contact, Patient
from models.fields import tags_from_db
from policies.fields import ENCRYPTED_FIELDS, PATIENT_CLASSES, PATIENT_FIELD_CLASS
from policies.guard import Decision
from policies.scopes import IN_CARE_TEAM, IN_EMERGENCY, ROLE_REACH, SCOPE_VALUES, PatientScope, Reach
from policies.scopes import patient_scope as build_patient_scope
from resolvers.context import Context

M = TypeVar("M", bound=Model)
V = TypeVar("V")


class OnFile(Protocol):
    """A record on a patient's file: a visit, an appointment, a follow-up task."""

    patient_id: uuid.UUID


R = TypeVar("R", bound=OnFile)

MERGED = "merged"  # a duplicate file kept as it was merged (models.patient.PATIENT_STATUSES)
# ``extensions.reason`` of a field-level FORBIDDEN (docs/architecture.md, Field-level FORBIDDEN): a field of a class
# of the file the caller may not read; a field under a right that is not a class (a section of the file, its contacts,
# commercial terms), named as ``object:action``
FIELD_CLASS, PERMISSION = "field_class", "permission"
FIELD_REFUSED = "Not allowed to read this field."  # the one message: the path names the field, nothing else is said
# Actions that add to or change a patient's file: a merged file takes none, its survivor does.
_WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.ARCHIVE, Action.DELETE, Action.CONSENT, Action.GRANT})

MAX_MERGE_HOPS = 8  # a survivor merged on into another, and so on: followed this many times at most

TAG_FIELDS = frozenset({"segments", "tags", "contact_channels", "contact_purposes"})


class MergedFile(Conflict):
    """A write to a file merged into another: CONFLICT, reason ``merged``, at the field naming the file."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: the file was merged into another; use that one (mergedInto).", field=field,
                         reason=MERGED)


@dataclass(frozen=True)
class PatientView:
    """A patient row in scope, with the field classes the caller may read on it."""

    row: Patient
    classes: frozenset[str]
    # The grant this file is open under, named in every read's record (``audit.reads.grant_line``): break-glass's,
    # or a partner's (the accounting of disclosures reads it).
    grant: str = ""
    # The reaches that hold for the file (``PatientScope.reached_for``): a role reaches it when its reach meets these
    # (``section_reached``).
    reached: frozenset[Reach] = frozenset()


@dataclass(frozen=True)
class ContactView:
    row: Contact
    patient: PatientView


# -- decisions ---------------------------------------------------------------------------


async def authorize(
    ctx: Context,
    obj: str,
    act: str,
    *,
    action: Action,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> Decision:
    decision = ctx.decide(obj, act)
    if not decision.allowed:
        await deny(ctx, action, resource_type, resource_id, await named_file(ctx, patient_id), reason="forbidden",
                   field_classes=refused_class(obj))
        raise Forbidden()
    return decision


async def named_file(ctx: Context, patient_id: uuid.UUID | None) -> uuid.UUID | None:
    """The file a refusal by role names for the ``patient_id`` the caller sent, before any row was read: the id when
    it is one of the institution's files, so the attempt shows in that patient's access report; None otherwise
    (another institution's file, none at all), as a missing file's refusal names none (``find_patient``), so no
    other institution's patient enters this trail or its per-patient index (found in review: every refusal by role
    named the id as sent; fixed for merges first, ``patient_merge._refused_on_both``). A partner reads its own trail
    (``partnerAccessLog``): for it, only a file its grant in force opens, which it knows already
    (``partnerOwnGrants``), so an id out of its grant, another institution's and a made-up one are recorded alike.
    One indexed statement, on a refusal only."""
    if patient_id is None:
        return None
    if ctx.require_principal().kind == PARTNER:
        found = await patient_scope(ctx).partner_grants().filter(patient_id=patient_id).exists()
    else:
        found = await Patient.exists(id=patient_id, institution_id=ctx.institution_id)
    return patient_id if found else None


def refused_class(obj: str) -> frozenset[str]:
    """The field class a refusal of ``obj`` names on the trail: ``patient.<class>`` names its class, as a refused
    read of a field does (its class, never a field or a value; found in review: a refused class write, such as the
    front desk sending a patient's allergies, named no class, so the trail did not say which was attempted)."""
    prefix, _, field_class = obj.partition(".")
    return frozenset({field_class}) if prefix == "patient" and field_class in PATIENT_CLASSES else frozenset()


async def is_patient_contact(ctx: Context, action: Action, contact_id: uuid.UUID, patient_id: uuid.UUID | None,
                             contacts: QuerySet[Contact] | None = None) -> bool:
    """Whether a contact a write names is one of the patient's (one of ``contacts`` if given); when not (another
    patient's, another institution's, none: alike), the refusal is recorded. The caller answers as it answers a
    missing contact (found in review: a ticket recorded it, a logged call and a contract's guarantor did not)."""
    if contacts is None:
        contacts = Contact.filter(institution_id=ctx.institution_id, patient_id=patient_id)
    if patient_id is not None and await contacts.filter(id=contact_id).exists():
        return True
    await deny(ctx, action, "contact", contact_id, patient_id, reason="not_found")
    return False


async def contact_deleted_meanwhile(ctx: Context, action: Action, contact_id: uuid.UUID | None,
                                    patient_id: uuid.UUID | None) -> bool:
    """After a write the database refused (an IntegrityError, its transaction rolled back): whether the contact it
    named was deleted since the write checked it (its foreign key refused it), the refusal then recorded as for a
    missing contact. The caller answers as it answers a contact that is not the patient's (found in review, on
    PostgreSQL: tickets, logged calls and contract guarantors answered INTERNAL_SERVER_ERROR)."""
    if contact_id is None or await Contact.exists(id=contact_id, institution_id=ctx.institution_id):
        return False
    await deny(ctx, action, "contact", contact_id, patient_id, reason="not_found")
    return True


async def deny(
    ctx: Context,
    action: Action,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    *,
    reason: str,
    field_classes: frozenset[str] = frozenset(),
    subjects: frozenset[tuple[uuid.UUID | None, uuid.UUID | None]] = frozenset(),
) -> None:
    """Record a refusal at once, in its own transaction: no rollback can erase it. ``subjects``: the records and
    files of a refusal about several (``AuditRecord.subjects``), with no ``resource_id`` or ``patient_id`` then.

    Called inside a write's transaction it would be a savepoint of that transaction, and the
    refusal's rollback would erase it: resolvers check before they open one, and this refuses
    to be called there.
    """
    if isinstance(connections.get("default"), TransactionalDBClient):
        raise RuntimeError("a refusal must be recorded before the write's transaction opens")
    ctx.recorded = True
    record = AuditRecord(
        institution_id=ctx.institution_id,
        actor=ctx.actor,
        action=action,
        resource_type=resource_type,
        outcome=Outcome.DENIED,
        request=ctx.request,
        resource_id=resource_id,
        patient_id=patient_id,
        field_classes=field_classes,
        reason=reason,
        subjects=subjects,
    )
    # When a field fails, graphql-core cancels its siblings: a sibling refused meanwhile still records its refusal
    # before the response leaves.
    await writer.append_before_giving_way([record])


class Refusal(Exception):
    """A refusal found inside a write's transaction (a count reached, a right lost or a record moved out of reach
    under the lock): raised there, so that the transaction rolls back, and recorded once it has, by the context
    that wraps it (``refusals_recorded``; ``file_transaction``, ``merge_refusal_recorded`` and
    ``following_survivor`` record it themselves). A refusal recorded inside the write's transaction would roll back
    with it (``deny`` refuses to be called there), and one left unrecorded is missing from the trail: found in
    review more than once, so the record is carried with the refusal and written by one piece of code.

    ``error``: what the client is answered, raised as it is; the rest is what ``deny`` records (outcome DENIED),
    ``reason`` the error's own unless given (a NOT_FOUND or FORBIDDEN carries none: ``not_found``, ``forbidden``)."""

    def __init__(self, error: CareloopError, action: Action, resource_type: str,
                 resource_id: uuid.UUID | None = None, patient_id: uuid.UUID | None = None, *,
                 reason: str | None = None) -> None:
        recorded = reason or error.reason
        if recorded is None:
            raise ValueError("a refusal on the trail needs a reason: the error carries none")
        super().__init__(error.message)
        self.error = error
        self.action = action
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.patient_id = patient_id
        self.reason = recorded

    @classmethod
    def not_found(cls, action: Action, resource_type: str, resource_id: uuid.UUID | None,
                  field: str = "id") -> Refusal:
        """NOT_FOUND at ``field``, recorded as ``not_found`` records a missing record: one that left the caller's
        reach under the lock answers as a missing one."""
        return cls(NotFound(field=field), action, resource_type, resource_id, reason="not_found")


@asynccontextmanager
async def refusals_recorded(ctx: Context, *, recorded: bool = True) -> AsyncIterator[None]:
    """Around a write's transaction (outside it): a ``Refusal`` raised inside is recorded (``deny``) once the
    transaction has rolled back, then its error raised. Outside, because a refusal recorded inside the transaction
    would roll back with it. ``recorded`` False (a write that is not the principal's: see ``merge_refusal_recorded``):
    only its error raised."""
    try:
        yield
    except Refusal as refusal:
        if recorded:
            await deny(ctx, refusal.action, refusal.resource_type, refusal.resource_id, refusal.patient_id,
                       reason=refusal.reason)
        raise refusal.error from None


async def require_class_write(ctx: Context, view: PatientView, field_class: str, *, action: Action,
                              resource_type: str, resource_id: uuid.UUID | None = None) -> Decision:
    """The right to write a field class of this patient's file: by role (``patient.<class>: update``), and on this
    file, where the caller must read the class and a role of theirs allowed to update it must reach the file
    (``section_reached``; found in review: a nurse of department B who also works in finance, which reads the
    identity of every file, renamed and moved files of every department); otherwise FORBIDDEN, recorded with the
    class."""
    obj = f"patient.{field_class}"
    decision = await authorize(ctx, obj, "update", action=action, resource_type=resource_type,
                               resource_id=resource_id, patient_id=view.row.id)
    if field_class not in view.classes or not section_reached(ctx, view, obj, "update"):
        await deny(ctx, action, resource_type, resource_id, view.row.id, reason="forbidden",
                   field_classes=frozenset({field_class}))
        raise Forbidden()
    return decision


async def not_found(
    ctx: Context, action: Action, resource_type: str, resource_id: uuid.UUID | None, field: str = "id"
) -> NotFound:
    """Missing and out of scope answer alike; the attempt is on record either way."""
    await deny(ctx, action, resource_type, resource_id, reason="not_found")
    return NotFound(field=field)


async def find_in_institution(ctx: Context, rows: type[M] | QuerySet[M], record_id: uuid.UUID | None, *,
                              action: Action, resource_type: str, field: str = "id") -> M:
    """The row of ``rows`` (a model, or a query narrowing it: active ones only, with a related row) with this id in
    the caller's institution, or NOT_FOUND at ``field`` with the refusal recorded (``not_found``): another
    institution's row, or no id at all, answers as a missing one."""
    row = None if record_id is None else await rows.get_or_none(id=record_id, institution_id=ctx.institution_id)
    if row is None:
        raise await not_found(ctx, action, resource_type, record_id, field)
    return row


def write_record(
    ctx: Context,
    action: Action,
    resource_type: str,
    resource_id: uuid.UUID,
    *,
    patient_id: uuid.UUID | None = None,
    fields: frozenset[str] = frozenset(),
    decision: Decision,
) -> AuditRecord:
    """The record of a write; append it inside the write's transaction."""
    ctx.recorded = True
    return AuditRecord(
        institution_id=ctx.institution_id,
        actor=ctx.actor,
        action=action,
        resource_type=resource_type,
        outcome=Outcome.ALLOWED,
        request=ctx.request,
        resource_id=resource_id,
        patient_id=patient_id,
        field_classes=frozenset(PATIENT_FIELD_CLASS[f] for f in fields if f in PATIENT_FIELD_CLASS)
        if resource_type == "patient"
        else frozenset(),
        fields_read=fields,  # for writes: the names of the fields written, never their values
        policy_rule=_write_rule(ctx, patient_id, decision),
    )


def _write_rule(ctx: Context, patient_id: uuid.UUID | None, decision: Decision) -> str:
    """The rule a write's record names, and the grant its file was open under, as the file's reads name it (found
    in review: a write under break-glass named the role's rule alone, not the access it was made under)."""
    grant = ctx.file_grants.get(patient_id) if patient_id is not None else None
    return rule_text((decision.rule, grant)) if grant else decision.rule


async def flush_reads(ctx: Context) -> None:
    """Write what the operation read; returns once it is durable (group-committed with other requests)."""
    if ctx.principal is not None and ctx.reads:
        await ctx.services.audit.append(ctx.reads.drain(ctx.principal.institution_id, ctx.actor, ctx.request))
        ctx.recorded = True


async def record_request(ctx: Context) -> None:
    """Put a request that left no other record on the trail (every partner request is audited)."""
    if ctx.principal is not None and not ctx.recorded:
        await ctx.services.audit.append([AuditRecord(ctx.principal.institution_id, ctx.actor, Action.READ, "request",
                                                     Outcome.ALLOWED, ctx.request)])
        ctx.recorded = True


# -- departments kept ---------------------------------------------------------------------


def departments_kept(ctx: Context) -> frozenset[uuid.UUID] | None:
    """The departments whose records the caller keeps, where the policy lets admins and department heads keep them
    (care teams, schedules, follow-up rules, survey triggers and invitations, campaigns, survey reports): None for
    every department of the institution (an admin), a department head's own otherwise. The one place that says so:
    the policy says who may act at all, this how far."""
    principal = ctx.require_principal()
    return None if "admin" in principal.roles else principal.department_ids


def keeps_departments(ctx: Context, departments: Collection[uuid.UUID | None]) -> bool:
    """Whether the caller keeps records of every one of ``departments`` (``departments_kept``); None, no department
    (the institution's own record), is kept only by whoever keeps them all."""
    kept = departments_kept(ctx)
    return kept is None or all(department is not None and department in kept for department in departments)


# -- patients in scope -------------------------------------------------------------------


def patient_scope(ctx: Context) -> PatientScope:
    if ctx.patient_scope is None:
        p = ctx.require_principal()
        ctx.patient_scope = build_patient_scope(
            ctx.services.guard,
            ctx.decide,
            institution_id=p.institution_id,
            staff_id=p.user_id,
            roles=p.roles,
            department_ids=p.department_ids,
            partner_id=p.partner_id,
            patient_id=p.patient_id,
        )
    return ctx.patient_scope


def scoped_patients(ctx: Context) -> QuerySet[Patient] | None:
    """Patients the caller reaches, as a query; None when it reaches none."""
    condition = patient_scope(ctx).filter()
    return None if condition is None else Patient.filter(condition)


def checked_patients(ctx: Context) -> QuerySet[Patient] | None:
    """``scoped_patients`` with the row checks ``views`` needs as columns (``PatientScope.check_columns``): the rows
    and what decides their field classes come in one statement."""
    return _checked(patient_scope(ctx))


def _checked(scope: PatientScope) -> QuerySet[Patient] | None:
    condition = scope.filter()
    if condition is None:
        return None
    checks = scope.check_columns()
    return Patient.filter(condition).annotate(**checks) if checks else Patient.filter(condition)


async def checked_rows(ctx: Context, ids: Collection[uuid.UUID],
                       columns: Collection[str] | None = None) -> list[Patient]:
    """The rows of ``checked_patients`` among ``ids``, with only ``columns`` (None: whole rows)."""
    if not ids:
        return []
    only = None if columns is None else tuple(columns)
    return await checked_select(ctx, ("checked_rows", only), partial(_among, only), ids=statements.id_list(ids))


def _among(only: tuple[str, ...] | None, query: QuerySet[Patient], ids: list[uuid.UUID]) -> QuerySet[Patient]:
    return (query if only is None else query.only(*only)).filter(id__in=ids)


async def checked_select(ctx: Context, shape: Hashable, refine: Callable[..., QuerySet[Patient]],
                         **values: Any) -> list[Patient]:
    """The rows of ``refine(checked_patients(ctx), **values)``. Its SQL, the costliest of a request to build, is
    built once per ``shape`` (the same ``refine`` for one) and reach of scope, then bound with the values of the
    scope and ``values`` (``core.statements``)."""
    scope = patient_scope(ctx)
    if not scope.reaches_anyone:
        return []
    key, build = checked_statement(scope, shape, refine)
    return await statements.select(Patient, key, build, **values, **scope.values())


def about_reached(scope: PatientScope, model: type[M]) -> QuerySet[M] | None:
    """Rows of ``model`` (by its ``patient_id``) about patients the scope reaches, as a query; None when it reaches
    none. The one definition of that reach for such records: ``reached_select``'s, and the lists and counts built
    by Tortoise. It does not narrow a partner to the records it made (``records_in_reach`` does)."""
    condition = scope.filter()
    if condition is None:
        return None
    patients = Patient.filter(condition).values("id")
    return model.filter(institution_id=scope.institution_id, patient_id__in=Subquery(patients))


async def reached_select(ctx: Context, model: type[M], section: str, shape: Hashable,
                         refine: Callable[..., QuerySet[M]], **values: Any) -> list[M]:
    """The rows of ``refine(about_reached(the caller's scope for the section, model), **values)`` (a follow-up
    task's, say: ``section_scope``), their SQL built once per ``shape`` and reach of scope as ``checked_select``'s."""
    scope = section_scope(ctx, section)
    if not scope.reaches_anyone:
        return []
    key, build = reached_statement(scope, model, shape, refine)
    return await statements.select(model, key, build, **values, **scope.values())


def reached_statement(scope: PatientScope, model: type[M], shape: Hashable, refine: Callable[..., QuerySet[M]],
                      ) -> tuple[Hashable, Callable[..., QuerySet[M]]]:
    """``reached_select``'s query as a key and a function of the scope's values and ``refine``'s."""
    def build(**values: Any) -> QuerySet[M]:
        reached = scope.with_values(**{name: values.pop(name) for name in SCOPE_VALUES})
        return refine(cast(QuerySet[M], about_reached(reached, model)), **values)

    return (shape, model, scope.reach), build


def checked_statement(scope: PatientScope, shape: Hashable, refine: Callable[..., QuerySet[Patient]],
                      ) -> tuple[Hashable, Callable[..., QuerySet[Patient]]]:
    """``checked_select``'s query as a key and a function of the scope's values and ``refine``'s."""
    def build(**values: Any) -> QuerySet[Patient]:
        scoped = {name: values.pop(name) for name in SCOPE_VALUES}
        return refine(cast(QuerySet[Patient], _checked(scope.with_values(**scoped))), **values)

    return (shape, scope.reach), build


def section_scope(ctx: Context, section: str, act: str = "read") -> PatientScope:
    """The caller's patient scope narrowed to the files that a role of theirs allowed to ``act`` on ``section`` (a
    part of the record under its own permission: visits, alerts, plans, tasks, appointments, the communication log,
    a contract's clauses) reaches (``ROLE_REACH``): the permission is the account's, the reach the roles' that hold
    it. Found in review: a nurse who also works in finance, whose reach is the institution's and who reads no
    section, read the visits, alerts... of every patient (and created them: ``act`` "create"). The scope itself for
    an account whose allowed roles reach every file it reaches (one role): nothing is narrowed, no statement
    changes."""
    principal = ctx.require_principal()
    guard = ctx.services.guard
    reach = frozenset[Reach]().union(*(ROLE_REACH.get(role, frozenset()) for role in principal.roles
                                       if guard.role_allows(role, principal.institution_id, section, act)))
    return patient_scope(ctx).narrowed_to(reach)


def section_reached(ctx: Context, view: PatientView, section: str, act: str = "read") -> bool:
    """Whether a role of the caller allowed to ``act`` on ``section`` reaches this file (``section_scope``), from
    what the view holds: no statement."""
    scope = section_scope(ctx, section, act)
    return scope is patient_scope(ctx) or bool(scope.reach & view.reached)


_SECTION_ACTIONS = {"read": Action.READ, "create": Action.CREATE, "update": Action.UPDATE,
                    "delete": Action.DELETE, "archive": Action.ARCHIVE}


async def require_section_reached(ctx: Context, view: PatientView, section: str, *, resource_type: str,
                                  act: str = "read", resource_id: uuid.UUID | None = None,
                                  action: Action | None = None) -> None:
    """For a list of one patient's ``section`` (their visits, alerts...), a record added to it (``act`` "create")
    or one changed (``act`` "update": edits and transitions), the file found in reach: FORBIDDEN, the refusal
    recorded, when no role of the caller allowed to ``act`` on the section reaches the file (``section_reached``).
    ``resource_id``: the record changed, named by the refusal; ``action``: the refusal's, where the write records
    another than ``act``'s (a consent, a grant)."""
    if not section_reached(ctx, view, section, act):
        await deny(ctx, action or _SECTION_ACTIONS[act], resource_type, resource_id, view.row.id, reason="forbidden")
        raise Forbidden()


def records_in_reach(ctx: Context, model: type[M], section: str) -> QuerySet[M] | None:
    """A section's records (visits, appointments) of patients the caller reaches through the roles that read
    ``section`` (``section_scope``), as a query; a partner reaches only those it made (``partner_id``). None when the
    caller reaches no patient."""
    query = about_reached(section_scope(ctx, section), model)
    if query is None:
        return None
    principal = ctx.require_principal()
    if principal.kind == PARTNER:
        query = query.filter(partner_id=principal.partner_id)
    return query


async def with_files(ctx: Context, rows: Sequence[R], view: Callable[[R, PatientView], V],
                     columns: Collection[str] | None = None) -> list[V]:
    """Each record made ``view(row, patient)`` with its patient as the caller may see the file (one batched read
    for a page); a record whose file is out of sight is left out. ``columns``: as ``visible_patients``."""
    patients = await visible_patients(ctx, [row.patient_id for row in rows], columns)
    return [view(row, patient) for row, patient in zip(rows, patients, strict=True) if patient is not None]


async def find_on_file(ctx: Context, query: QuerySet[Any] | None, record_id: uuid.UUID | None,
                       view: Callable[[R, PatientView], V], *, action: Action, resource_type: str,
                       field: str = "id") -> V:
    """One record of ``query`` (the records in reach, None: none) with its file as ``with_files`` makes it, or
    NOT_FOUND (the refusal recorded) when it is missing, out of reach, or its file out of sight."""
    row = None if query is None or record_id is None else await query.get_or_none(id=record_id)
    views = [] if row is None else await with_files(ctx, [row], view)
    if not views:
        raise await not_found(ctx, action, resource_type, record_id, field)
    return views[0]


async def named_on_files(ctx: Context, obj: str, query: QuerySet[Any] | None, record_ids: Sequence[uuid.UUID],
                         view: Callable[[Any, PatientView], V], *, resource_type: str) -> list[V | CareloopError]:
    """Records that other records name (a follow-up task's visit), each read as ``authorize`` (``obj: read``) then
    ``find_on_file`` read it by its id, for a page at once: the record with its file, or the error they raise,
    NOT_FOUND at ``id`` as a missing record, or the field-level FORBIDDEN of the right to read them (reason
    ``permission``, as every refused field says why; the record's own query says plain FORBIDDEN). Each refusal is
    on the operation's record of reads as they record it (action, resource, reason; a page's alike refusals one
    record naming each, as ``ReadLog`` groups reads), not appended one by one: a page of refusals costs no statement.
    ``query``: the records in reach, as for ``find_on_file``. Two statements whatever the number of records (the
    records, their files)."""
    if not ctx.decide(obj, "read").allowed:
        field_class = next(iter(refused_class(obj)), None)
        return [_read_refused(ctx, resource_type, i, "forbidden", permission_refused(ctx, obj), field_class)
                for i in record_ids]
    rows = [] if query is None or not record_ids else await query.filter(id__in=list(record_ids))
    found = dict(await with_files(ctx, rows, lambda row, patient: (row.id, view(row, patient))))
    return [found[i] if i in found else _read_refused(ctx, resource_type, i, "not_found", NotFound(field="id"))
            for i in record_ids]


def _read_refused(ctx: Context, resource_type: str, record_id: uuid.UUID, reason: str, error: CareloopError,
                  field_class: str | None = None) -> CareloopError:
    ctx.reads.note(resource_type, record_id, None, field_class=field_class, outcome=Outcome.DENIED, reason=reason)
    return error


async def views(ctx: Context, rows: list[Patient]) -> list[PatientView]:
    scope = patient_scope(ctx)
    in_team: set[uuid.UUID] = set()
    emergency: dict[uuid.UUID, str] = {}
    partner: dict[uuid.UUID, str] = {}
    ids = [r.id for r in rows]
    if scope.uses_care_team and rows:
        if all(hasattr(row, IN_CARE_TEAM) for row in rows):  # loaded with the rows (checked_patients)
            in_team = {row.id for row in rows if getattr(row, IN_CARE_TEAM) == "1"}
        else:
            team = scope.care_team().filter(patient_id__in=ids)
            in_team = set(cast(list[uuid.UUID], await team.values_list("patient_id", flat=True)))
    if scope.uses_emergency and rows:
        opened = ids
        if all(hasattr(row, IN_EMERGENCY) for row in rows):  # then the grants' ids only of files one opens
            opened = [row.id for row in rows if getattr(row, IN_EMERGENCY) == "1"]
        emergency = await _emergency_grants(scope, opened) if opened else {}
    if scope.uses_grants and rows:
        partner = await _partner_grants(scope, ids)
    if emergency or partner:
        ctx.file_grants.update(partner)
        ctx.file_grants.update(emergency)  # a file open under both: break-glass, as its views name it
    made = []
    for row in rows:
        classes, reached = scope.reached_for(row.department_id, row.id in in_team, row.id in emergency,
                                             row.id in partner, row.id)
        made.append(PatientView(row, classes, emergency.get(row.id) or partner.get(row.id, ""), reached))
    return made


async def load_file_grants(ctx: Context, patient_ids: Collection[uuid.UUID]) -> None:
    """The grants the files among ``patient_ids`` are open under (break-glass, a partner's), into ``ctx.file_grants``
    as ``views`` puts them, for a record of those files read without a view of the file (a contract): its read names
    the grant as every read of the file does (found in review: a partner's read of a contract named the role's rule
    alone, so the accounting of disclosures listed it without its grant and purpose). One statement a kind of grant
    the caller's scope uses, whatever the number of files; none for files already known."""
    scope = patient_scope(ctx)
    ids = sorted(set(patient_ids) - ctx.file_grants.keys())
    if not ids or not (scope.uses_grants or scope.uses_emergency):
        return
    if scope.uses_grants:
        ctx.file_grants.update(await _partner_grants(scope, ids))
    if scope.uses_emergency:  # break-glass, as its views name it, over a partner's grant
        ctx.file_grants.update(await _emergency_grants(scope, ids))


async def _partner_grants(scope: PatientScope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The partner grant each of the files ``ids`` is open under, as a read's record names it; one statement."""
    found = await scope.partner_grants().filter(patient_id__in=ids).order_by("id").values_list("patient_id", "id")
    return {cast(uuid.UUID, patient): grant_line(PARTNER_GRANT, grant) for patient, grant in found}


async def _emergency_grants(scope: PatientScope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The break-glass access each of the files ``ids`` is open under, as a read's record names it; one statement."""
    found = await scope.emergency_grants().filter(patient_id__in=ids).values_list("patient_id", "id")
    return {cast(uuid.UUID, patient): grant_line(EMERGENCY_ACCESS, grant) for patient, grant in found}


# The columns every patient view needs whatever a query asks: the row's scope and field classes (department),
# the key of its encrypted fields (institution), its version and status (cheap, and read by checks).
VIEW_COLUMNS = ("id", "institution_id", "department_id", "version", "status")


def view_columns(columns: Collection[str] | None, *more: str) -> tuple[str, ...]:
    """``columns`` with what every view needs (``VIEW_COLUMNS``) and ``more``: what a pruned row is loaded with."""
    return tuple(sorted({*VIEW_COLUMNS, *(columns or ()), *more}))


async def visible_patient(ctx: Context, patient_id: uuid.UUID,
                          columns: Collection[str] | None = None) -> PatientView | None:
    """A patient in the caller's scope, batched across a request (a page of tickets shows its
    patients in one statement); None when out of scope. Not a refusal: a ticket's patient the
    caller may not see is simply not shown. ``columns``: rows with only those (and ``VIEW_COLUMNS``),
    batched apart from the whole rows other fields of the request may load; None: whole rows."""
    return await _patient_loader(ctx, columns).load(patient_id)


async def visible_patients(ctx: Context, patient_ids: Sequence[uuid.UUID],
                           columns: Collection[str] | None = None) -> list[PatientView | None]:
    """``visible_patient`` of each id, for a page of records: one batch, without a task per record."""
    return await _patient_loader(ctx, columns).load_many(patient_ids)


def _patient_loader(ctx: Context, columns: Collection[str] | None) -> DataLoader[uuid.UUID, PatientView | None]:
    key = None if columns is None else view_columns(columns)
    loaders: dict[tuple[str, ...] | None, DataLoader[uuid.UUID, PatientView | None]]
    loaders = ctx.patient_views = ctx.patient_views or {}
    loader = loaders.get(key)
    if loader is None:
        async def batch(ids: list[uuid.UUID]) -> list[PatientView | None]:
            return await visible_patients_once(ctx, ids, key)

        loader = loaders[key] = DataLoader(batch)
    return loader


async def visible_patients_once(ctx: Context, patient_ids: Sequence[uuid.UUID],
                                columns: Collection[str] | None = None) -> list[PatientView | None]:
    """``visible_patients`` in one statement outside the request's loaders (a batched completion's, which must
    leave them as it found them: ``schema.compiled.fast``); an id asked twice is the same view twice. ``columns``:
    rows with only those and what views need (``view_columns``); None: whole rows."""
    rows = await checked_rows(ctx, patient_ids, None if columns is None else view_columns(columns))
    found = {view.row.id: view for view in await views(ctx, rows)}
    return [found.get(i) for i in patient_ids]


async def find_patient(ctx: Context, patient_id: uuid.UUID | None, *, action: Action, field: str = "id",
                       columns: Collection[str] | None = None) -> PatientView:
    """A patient in the caller's reach, or NOT_FOUND (the refusal recorded); ``columns``: load only those (they
    must hold what views and checks read: ``view_columns``), None: the whole row."""
    rows = [] if patient_id is None else await checked_rows(ctx, [patient_id], columns)
    row = rows[0] if rows else None
    if row is None:
        # The refusal names the file when it exists in the institution, so the attempt shows in the patient's
        # access report; the answer stays that of a missing file. Not a partner's: it reads its own trail.
        on_file = (patient_id is not None and ctx.require_principal().kind != PARTNER
                   and await Patient.exists(id=patient_id, institution_id=ctx.institution_id))
        await deny(ctx, action, "patient", patient_id, patient_id if on_file else None, reason="not_found")
        raise NotFound(field=field)
    if action in _WRITES and row.status == MERGED:
        raise await refuse_merged(ctx, action, row.id, field)
    return (await views(ctx, [row]))[0]


async def refuse_merged(ctx: Context, action: Action, patient_id: uuid.UUID, field: str = "patientId") -> MergedFile:
    """A write to a merged file refused, on the trail as every refusal is (its record names the file)."""
    await deny(ctx, action, "patient", patient_id, patient_id, reason=MERGED)
    return MergedFile(field)


# -- writing to a patient's file -----------------------------------------------------------


async def lock_file(patient_id: uuid.UUID, field: str = "patientId") -> str:
    """Inside a write's transaction, before it adds to the file: the patient's row locked until it commits, as
    ``patient_merge`` locks both files first. A merge under way finishes first and the write then finds the file
    merged (MergedFile); one that begins later waits and moves what the write added. Without it a row written
    during a merge could stay on the merged file, out of every list (found in review). Returns the file's status
    as locked (a booking wants an active file). FOR NO KEY UPDATE, which the merge's FOR UPDATE waits for but a
    row being inserted meanwhile that references the patient (its foreign key's FOR KEY SHARE) does not: with FOR
    UPDATE a check-in (file, then appointment) and a cancel (appointment, then its message to the patient)
    deadlocked (found in review)."""
    row = await Patient.filter(id=patient_id).select_for_update(no_key=True).only("id", "status").first()
    if row is not None and row.status == MERGED:
        raise MergedFile(field)
    return "" if row is None else str(row.status)


@asynccontextmanager
async def merge_refusal_recorded(ctx: Context, action: Action, patient_id: uuid.UUID | None, *,
                                 recorded: bool = True) -> AsyncIterator[None]:
    """Around a write's transaction that calls ``lock_file``: a file found merged there is refused on the trail as
    ``find_patient`` refuses one, once the transaction has rolled back (a refusal recorded inside it would roll
    back with it). A caller without a principal, or a write that is not the principal's (``recorded`` False: a
    survey link, which a browser signed in anywhere may follow), has no institution to record it in: it handles the
    refusal itself (found in review: a link answered during a merge, in a browser signed in at another institution,
    recorded a denial naming the merged file on that institution's trail). A ``Refusal`` raised inside is recorded
    too (``refusals_recorded``) under the same condition, else only its error raised (found in review: it was
    recorded whatever ``recorded`` said, on the trail of whichever institution the browser was signed in at)."""
    recording = recorded and ctx.principal is not None
    try:
        async with refusals_recorded(ctx, recorded=recording):
            yield
    except MergedFile as refused:
        if patient_id is not None and ctx.principal is not None and recorded:
            raise await refuse_merged(ctx, action, patient_id, refused.field or "patientId") from None
        raise


@asynccontextmanager
async def file_transaction(ctx: Context, patient_id: uuid.UUID | None, *, action: Action,
                           field: str = "patientId", recorded: bool = True,
                           active: str | None = None) -> AsyncIterator[None]:
    """The transaction of a write that adds to a patient's file (``lock_file`` first; a merged file refused and
    recorded, unless ``recorded`` is False: see ``merge_refusal_recorded``); None, a write about no file: a plain
    transaction. Not to be opened inside another transaction. A ``Refusal`` raised inside is recorded once the
    transaction has rolled back, and its error raised (``refusals_recorded``).
    ``active`` (what is for active files only) refuses a file no longer active once locked: the write read it
    active, and an archive or a death committed since cancelled what the file had (found in review: the write went
    on, and an archived file kept an open call, a plan, an alert or a visit)."""
    async with merge_refusal_recorded(ctx, action, patient_id, recorded=recorded), in_transaction():
        if patient_id is not None:
            status = await lock_file(patient_id, field)
            if active is not None:
                require_active(status, field, active)
        yield


# The rule a file's closing (archive, death) names on what it cancels: the closer's write, by the fact of it.
FILE_CLOSED = Decision(True, "file archived or deceased")


def require_active(status: str, field: str, what: str) -> None:
    """A write for active files only (``what``: the writes, plural) refused on a closed one (archived, deceased):
    BAD_USER_INPUT at ``field``, the field naming the file or the record on it."""
    if status != "active":
        raise BadUserInput(f"{field}: the file is {status}; {what} are for active files.", field=field)


# FOR KEY SHARE, which Tortoise does not write: what a row's foreign key takes on the row it references. The files
# asked for and every file their merges lead to (the chains as the statement begins), locked in one statement in id
# order, as the merge locks its two.
_HOLD_FILES = """WITH RECURSIVE "chain"("id") AS (
    SELECT unnest($1::uuid[])
    UNION SELECT "patient"."merged_into_id" FROM "patient" JOIN "chain" ON "patient"."id" = "chain"."id"
    WHERE "patient"."merged_into_id" IS NOT NULL)
SELECT "id", "merged_into_id" FROM "patient" WHERE "id" IN (SELECT "id" FROM "chain") ORDER BY "id" FOR KEY SHARE"""


async def current_files(patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Inside a transaction that queues messages for files read earlier: each file as it is now, a merged one's
    survivor in its place (the merge moved the message's cause there, and what was queued before it), followed on
    as a survivor may be merged on; each held until the transaction ends, so a merge under way is waited for and
    one beginning later waits and moves what was queued. The hold is FOR KEY SHARE on PostgreSQL, what the rows'
    foreign keys take anyway: only a merge (FOR UPDATE) waits for it, so a batch of messages holds up no other
    write to those files (FOR NO KEY UPDATE would, and deadlocked a cancel holding its appointment against a
    check-in holding the file). SQLite runs one write at a time.

    The files and their survivors are locked in one statement in id order, as a merge locks its two (found in
    review: the files were held first and a survivor after them, out of id order, so a writer holding a merged file
    and waiting for its survivor deadlocked with a second merge of the two holding the survivor). A merge that
    commits while the statement waits for it can lead a chain past what it locked: that try is rolled back to its
    savepoint, letting go of what it locked, and the files are locked again, in order, with the new survivor."""
    if not patient_ids:
        return {}
    wanted = sorted(set(patient_ids))
    db = Patient._meta.db  # the caller's transaction's connection
    if db.capabilities.dialect == "postgres":
        survivors = await _held_in_order(wanted)
    else:
        survivors = await _read_chains(wanted)
    return {patient_id: _followed(patient_id, survivors) for patient_id in patient_ids}


class _ChainMoved(Exception):
    """A merge committed while the hold waited for it led a chain to a file it had not locked."""


async def _held_in_order(patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each file's ``merged_into`` (None: not merged) for the files and their chains, all held, locked in id order
    (PostgreSQL). Each try in a savepoint of the caller's transaction: one whose chains moved meanwhile lets go of
    its locks before the next locks them again with the new survivors."""
    for _ in range(MAX_MERGE_HOPS):
        try:
            async with in_transaction() as savepoint:
                rows = await savepoint.execute_query_dict(_HOLD_FILES, [patient_ids])
                survivors = _survivors_of(rows)
                if _beyond(survivors):
                    raise _ChainMoved()
                return survivors
        except _ChainMoved:
            continue  # read again from the start: the chains as they are now
    # Chains moving on every try (a merge after a merge, MAX_MERGE_HOPS times): the last held as found and what it
    # leads to after it, so the files are still held, if out of order.
    survivors = _survivors_of(await Patient._meta.db.execute_query_dict(_HOLD_FILES, [patient_ids]))
    for _ in range(MAX_MERGE_HOPS):
        missing = sorted(_beyond(survivors))
        if not missing:
            break
        survivors |= _survivors_of(await Patient._meta.db.execute_query_dict(_HOLD_FILES, [missing]))
    return survivors


def _survivors_of(rows: list[dict[str, Any]]) -> dict[uuid.UUID, uuid.UUID | None]:
    return {uuid.UUID(str(row["id"])): None if row["merged_into_id"] is None else uuid.UUID(str(row["merged_into_id"]))
            for row in rows}


def _beyond(survivors: dict[uuid.UUID, uuid.UUID | None]) -> set[uuid.UUID]:
    """The survivors named by the files held that are not held themselves."""
    return {survivor for survivor in survivors.values() if survivor is not None and survivor not in survivors}


async def _read_chains(patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """SQLite: each file's ``merged_into`` for the files and their chains (one write at a time: nothing to order)."""
    survivors: dict[uuid.UUID, uuid.UUID | None] = {}
    missing = patient_ids
    for _ in range(MAX_MERGE_HOPS):
        if not missing:
            break
        survivors |= _survivors_of(await Patient.filter(id__in=missing).values("id", "merged_into_id"))
        missing = sorted(_beyond(survivors))
    return survivors


async def file_now(ctx: Context, model: type[Model], record_id: uuid.UUID) -> uuid.UUID:
    """The file a record found earlier is on now, for a refusal's record: a merge since it was found moved the record
    to the survivor, whose trail the refusal belongs on (found in review: refusals of a contract's terms and of a
    follow-up task's writes named the merged file). Nothing is written after a refusal, so no file is held for it."""
    patient_id = await model.filter(id=record_id, institution_id=ctx.institution_id).get().values_list(
        "patient_id", flat=True)
    return uuid.UUID(str(patient_id))


async def authorize_on_record(ctx: Context, obj: str, act: str, *, action: Action, resource_type: str,
                              resource_id: uuid.UUID | None, model: type[Model], record_id: uuid.UUID) -> Decision:
    """``authorize`` for a right a write needs on a record found earlier: a refusal names the file the record is on
    now (``file_now``), read only for a refusal, so an allowed write costs no statement more."""
    decision = ctx.decide(obj, act)
    if not decision.allowed:
        await deny(ctx, action, resource_type, resource_id, await file_now(ctx, model, record_id), reason="forbidden",
                   field_classes=refused_class(obj))
        raise Forbidden()
    return decision


FileHold = Callable[[uuid.UUID], Awaitable[PatientView | None]]


@asynccontextmanager
async def following_survivor(ctx: Context, action: Action, resource_type: str, resource_id: uuid.UUID, *,
                             field: str = "id", needs: str | None = None, section: str | None = None,
                             also: Sequence[tuple[str, str]] = ()) -> AsyncIterator[FileHold]:
    """Around the transaction of a caller's write that names a record a merge moves (an appointment, a task), not
    its file, and writes on that file (a message, an invitation, a ticket). Inside the transaction ``hold(file)``
    holds the file the record was read on (``current_files``, before the record, as the merge locks them) and
    answers None while it is not merged; merged since, the record is the survivor's and so is the write: answers the
    survivor as the caller may see it, checked as a read of the record after the merge would check it: in the
    caller's reach and, with ``needs``, that field class of it. A survivor beyond that rolls the transaction back
    and answers NOT_FOUND for the record the caller named, recorded once the transaction has rolled back (a refusal
    recorded inside it would roll back with it), as the record then answers: found in review, the writes followed
    the survivor without asking, and a caller could write on a file out of their reach. With ``section`` (the
    record's: its appointments, its tasks), a change to the record: a role of the caller allowed to change that
    section must reach the survivor too (``section_reached``, from the view: no statement), else FORBIDDEN, the
    refusal recorded on the survivor once rolled back, as the change asked after the merge answers. ``also``: other
    (section, act) rights the write uses on the file (a ticket a call opens), asked of the survivor the same way
    (found in review: asked inside the transaction by the write itself, the refusal could not be recorded there and
    the call answered INTERNAL_SERVER_ERROR). A ``Refusal`` the write raises inside is recorded the same way, once
    rolled back (``refusals_recorded``)."""

    async def hold(patient_id: uuid.UUID) -> PatientView | None:
        now_on = (await current_files([patient_id]))[patient_id]
        if now_on == patient_id:
            return None
        survivor = (await visible_patients_once(ctx, [now_on]))[0]
        if survivor is None or (needs is not None and needs not in survivor.classes):
            raise Refusal.not_found(action, resource_type, resource_id, field)
        wanted = ([(section, "update")] if section is not None else []) + list(also)
        if any(not section_reached(ctx, survivor, name, act) for name, act in wanted):
            raise Refusal(Forbidden(), action, resource_type, resource_id, survivor.row.id, reason="forbidden")
        return survivor

    async with refusals_recorded(ctx):
        yield hold


FileNow = Callable[[uuid.UUID], Awaitable[uuid.UUID]]


@asynccontextmanager
async def following_record(ctx: Context, action: Action, resource_type: str, resource_id: uuid.UUID, *,
                           reached: Callable[[], Awaitable[bool]], field: str = "id") -> AsyncIterator[FileNow]:
    """``following_survivor`` for a record reached through its own rule rather than its file's visibility (a
    contract: admin and finance reach every one and read no file). Inside the transaction ``hold(file)`` holds the
    file the record was read on and answers the file it is on now, its survivor when merged since; then
    ``reached()``, asked after the hold (the record moved already), must say the caller reaches the record there, as
    a read of it after the merge would, else NOT_FOUND for the record as ``following_survivor`` answers."""

    async def hold(patient_id: uuid.UUID) -> uuid.UUID:
        now_on = (await current_files([patient_id]))[patient_id]
        if now_on != patient_id and not await reached():
            raise Refusal.not_found(action, resource_type, resource_id, field)
        return now_on

    async with refusals_recorded(ctx):
        yield hold


def _followed(patient_id: uuid.UUID, survivors: dict[uuid.UUID, uuid.UUID | None]) -> uuid.UUID:
    current = patient_id
    for _ in range(MAX_MERGE_HOPS):
        survivor = survivors.get(current)
        if survivor is None:
            break
        current = survivor
    return current


# -- reading fields ----------------------------------------------------------------------


def require_class(ctx: Context, view: PatientView, field_class: str) -> None:
    """Note a read of a field class on a patient, or note the refusal and raise FORBIDDEN (``class_refused``)."""
    if not note_class_read(ctx, ctx.reads, view, field_class):
        raise class_refused(ctx, field_class)


def class_refused(ctx: Context, field_class: str) -> Forbidden:
    """The FORBIDDEN of a field whose class of the file the caller may not read: reason ``field_class``, the class as
    ``PatientFieldClass`` spells it (``fieldClass: "CLINICAL"``, which the field's path tells anyway), and for a
    partner's token that lacks the scope the policy would grant, that scope (``scope: "patient.clinical:read"``: its
    own client's; found in review: the error had its path only, nothing a portal could branch on)."""
    return field_refused(FIELD_CLASS, fieldClass=field_class.upper(),
                         scope=ctx.missing_scope(f"patient.{field_class}", "read"))


def permission_refused(ctx: Context, obj: str, act: str = "read") -> Forbidden:
    """The FORBIDDEN of a field under a right that is not a class of the file (a section of it, its contacts,
    commercial terms, a response's free text), as ``class_refused`` for a class: reason ``permission``, the right as
    ``me { permissions { allowed } }`` names it (``permission: "visit:read"``; also when the caller holds it only
    through a role that does not reach this file), and for a partner's token that lacks the scope the policy would
    grant, that scope (found in review: these refusals had their path only)."""
    return field_refused(PERMISSION, permission=f"{obj}:{act}", scope=ctx.missing_scope(obj, act))


def field_refused(reason: str, **named: str | None) -> Forbidden:
    """A field-level FORBIDDEN: the one message, ``reason`` and what it names (``None`` left out); no ``field``, the
    error's path is the place."""
    error = Forbidden(FIELD_REFUSED, reason=reason)
    error.extensions = {**(error.extensions or {}), **{name: value for name, value in named.items() if value}}
    return error


def note_class_read(ctx: Context, log: ReadLog, view: PatientView, field_class: str) -> bool:
    """Note in ``log`` a read of a field class on a patient, or its refusal; whether it is allowed."""
    pid = view.row.id
    if field_class not in view.classes:
        log.note("patient", pid, pid, field_class=field_class, outcome=Outcome.DENIED, reason="forbidden_field")
        return False
    log.note("patient", pid, pid, field_class=field_class, rule=patient_scope(ctx).rules.get(field_class, ""))
    if view.grant:  # the record says which grant the file was open under (break-glass, a partner's)
        log.note("patient", pid, pid, rule=view.grant)
    return True


def note_patient_reads(ctx: Context, log: ReadLog, view: PatientView, names: Collection[str]) -> None:
    """Note in ``log`` what reading ``names`` of the patient once written would note as they resolve
    (``read_patient_field``), for the write to append with itself; a refused class is left out, for its field to
    note as it fails."""
    for name in sorted(set(names) & PATIENT_FIELD_CLASS.keys()):
        field_class = PATIENT_FIELD_CLASS[name]
        if field_class in view.classes and note_class_read(ctx, log, view, field_class):
            note_sealed_read(log, view, name)


def read_patient_field(ctx: Context, view: PatientView, name: str) -> Any:
    require_class(ctx, view, PATIENT_FIELD_CLASS[name])
    return open_patient_field(ctx, view, name)


def open_patient_field(ctx: Context, view: PatientView, name: str) -> Any:
    """A field whose class ``require_class`` allowed on this patient: decrypted if sealed, the column noted.
    The compiled read path (schema/compiled) checks each class once per patient, then calls this per field."""
    value = getattr(view.row, name)
    if name in TAG_FIELDS:
        return tags_from_db(value)
    if note_sealed_read(ctx.reads, view, name) and value is not None:
        value = ctx.require_keys().open(value, field_aad(view.row.institution_id, "patient", name, view.row.id))
    return value


def note_sealed_read(log: ReadLog, view: PatientView, name: str) -> bool:
    """Note the read of a sealed column of the patient, empty or not (that a patient has no allergies on file is
    theirs as much as their allergies are, and a contact's sealed columns are named the same way); whether the
    column is sealed, that is, whether a value in it is to be decrypted."""
    if name not in ENCRYPTED_FIELDS["patient"]:
        return False
    log.note("patient", view.row.id, view.row.id, field_name=name)
    return True


def read_contact_field(ctx: Context, view: ContactView, name: str) -> Any:
    contact = view.row
    value = getattr(contact, name)
    if name in ENCRYPTED_FIELDS["contact"] and value is not None:
        value = ctx.require_keys().open(value, field_aad(contact.institution_id, "contact", name, contact.id))
    note_contact_read(ctx, ctx.reads, view.patient, name)
    return value


def note_contact_read(ctx: Context, log: ReadLog, patient: PatientView, name: str) -> None:
    """Recorded on the patient's read record: one event per operation and patient touched, however many
    contacts a page shows (the decrypted columns are named "contact.phone", "contact.notes"), with the grant the
    file is open under (break-glass, a partner's), as ``note_class_read`` records it."""
    pid = patient.row.id
    encrypted = name in ENCRYPTED_FIELDS["contact"]
    log.note("patient", pid, pid, field_class="contact", field_name=f"contact.{name}" if encrypted else None,
             rule=ctx.decide("contact", "read").rule)
    if patient.grant:
        log.note("patient", pid, pid, rule=patient.grant)


def read_journey_field(ctx: Context, patient: PatientView, table: str, row: Any, name: str, field_class: str) -> Any:
    """A field of a record of the patient's care journey (a visit, a code, a plan, a task...): read under the
    class of the patient's file it belongs to, opened when sealed, the decrypted column noted on the
    patient's read record (``visit.summary``), never its value."""
    require_class(ctx, patient, field_class)
    return open_journey_field(ctx, patient, table, row, name)


def open_journey_field(ctx: Context, patient: PatientView, table: str, row: Any, name: str) -> Any:
    """A care-journey field whose class ``require_class`` allowed on the patient's file: opened when sealed, the
    sealed column noted, empty or not (as ``note_sealed_read``). The compiled read path (schema/compiled) checks
    each class once per record, then calls this."""
    value = getattr(row, name)
    if name in ENCRYPTED_FIELDS[table]:
        ctx.reads.note("patient", patient.row.id, patient.row.id, field_name=f"{table}.{name}")
        if value is not None:
            value = open_sealed(ctx, table, name, row.id, value)
    return value


def require_section(ctx: Context, view: PatientView, obj: str, *, own_reach: bool = False) -> None:
    """A section of the patient's page (visits, alerts, plans, tasks, tickets) needs its own read permission, and a
    role holding it that reaches the file (``section_reached``; ``own_reach``: the section's records are reached by
    a rule of their own, as tickets are); without them the section is a null field with FORBIDDEN, and the refusal
    is noted."""
    if not ctx.decide(obj, "read").allowed or not (own_reach or section_reached(ctx, view, obj)):
        ctx.reads.note(obj, None, view.row.id, outcome=Outcome.DENIED, reason="forbidden_field")
        raise permission_refused(ctx, obj)


def require_contacts(ctx: Context, view: PatientView) -> None:
    """Contacts are read with the ``contact: read`` permission and the patient's contact class (checked
    in that order, so that a refusal is not noted as a read of the class)."""
    if not ctx.decide("contact", "read").allowed:
        ctx.reads.note("contact", None, view.row.id, outcome=Outcome.DENIED, reason="forbidden_field")
        raise permission_refused(ctx, "contact")
    require_class(ctx, view, "contact")


# -- sealing -----------------------------------------------------------------------------


def seal(ctx: Context, table: str, column: str, row_id: uuid.UUID, plaintext: str | None) -> bytes | None:
    if plaintext is None:
        return None
    return ctx.require_keys().seal(plaintext, field_aad(ctx.institution_id, table, column, row_id))


def open_sealed(ctx: Context, table: str, column: str, row_id: uuid.UUID, envelope: bytes) -> str:
    """Decrypt a sealed column of a row the caller was already allowed to read."""
    return ctx.require_keys().open(envelope, field_aad(ctx.institution_id, table, column, row_id))


def blind_index(ctx: Context, kind: str, normalized: str | None) -> str | None:
    return None if normalized is None else ctx.require_keys().blind_index(kind, normalized)
