"""Patient files: look up, list (search, sort, count), register, update, archive."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from typing import Any, cast

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.reads import ReadLog
from core.crypto import field_aad
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.validation import (
    Problems,
    camel_case,
    clean_text,
    name_key,
    name_search_term,
    name_search_text,
    normalize_email,
    normalize_national_id,
    normalize_phone,
    normalize_tag,
    phone_last4,
    validate_birth_date,
)
from models import CareTeamMember, Contact, Department, Patient
from models.communication import PURPOSES
from models.fields import tags_to_db
from models.patient import CHANNELS, PATIENT_STATUSES, SEGMENTS, SEXES
from policies.fields import CONTACT, ENCRYPTED_FIELDS, PATIENT_FIELD_CLASS
from policies.guard import Decision
from resolvers import access, follow_up, pagination, versioning, writes
from resolvers import appointment as appointments
from resolvers import consent as consents
from resolvers import contract as contracts
from resolvers import institution as institutions
from resolvers import partner_grant as partner_grants
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context, Services

CURSOR_KIND = "patient"
MAX_TAGS = 20
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")
_TEXT_LIMITS = {
    "full_name": 100, "occupation": 100, "address": 300, "medical_history": 4000, "diagnoses": 2000,
    "allergies": 1000, "current_medication": 2000, "diet_preferences": 200, "activity_preferences": 200,
    "special_needs": 500,
}
_BLIND_INDEXED = {"phone": "phone_bidx", "alt_phone": "alt_phone_bidx", "national_id": "national_id_bidx"}
# The last four digits of each phone, indexed under their own kind (docs/security.md, "Last-4 phone search")
_LAST4_INDEXED = {"phone": "phone_last4_bidx", "alt_phone": "alt_phone_last4_bidx"}
LAST4_KIND = "phone_last4"
MERGED = access.MERGED
ARCHIVED = "archived"
CONTRACTS_RUNNING = "contracts_running"  # an archive refused: the client has a contract not ended
# Sort orders: the column each sorts by (the id breaks ties and is the default order, registration order)
ORDER_COLUMNS = {"name": "full_name", "updated_at": "updated_at", "created_at": "created_at"}
_MAX_CURSOR = 1000  # a name order's sealed cursor: a name of up to 100 characters (400 bytes), the id, the envelope


@dataclass(frozen=True)
class PatientFilter:
    name_prefix: str | None = None
    name: str | None = None
    phone: str | None = None
    phone_last4: str | None = None
    contact_phone: str | None = None
    national_id_type: str | None = None
    national_id: str | None = None
    birth_date: date | None = None
    segment: str | None = None
    tag: str | None = None
    department_id: uuid.UUID | None = None
    status: str | None = None
    merged_into_id: uuid.UUID | None = None


@dataclass(frozen=True)
class PatientOrder:
    field: str = "name"  # a key of ORDER_COLUMNS
    direction: str = "asc"  # or "desc"

    @property
    def cursor_kind(self) -> str:
        return f"patient.{self.field}.{self.direction}"

    @property
    def sealed(self) -> bool:
        """Whether its cursors are sealed (``pagination.seal``): they hold a name, and portals keep cursors in URLs."""
        return self.field == "name"


@dataclass(frozen=True)
class PatientPage:
    page: pagination.Page[PatientView]
    total_count: int | None  # counted only when asked for


@dataclass(frozen=True)
class CreateResult:
    patient: PatientView | None
    returning_patient: PatientView | None = None
    matched_on: list[str] = field(default_factory=list)


# -- reads -------------------------------------------------------------------------------


async def get(ctx: Context, patient_id: uuid.UUID | None, columns: Collection[str] | None = None) -> PatientView:
    """A patient in reach; ``columns``: load only those (and ``access.VIEW_COLUMNS``), so that the encrypted columns
    a query does not ask for are not fetched (None: the whole row)."""
    return await access.find_patient(ctx, patient_id, action=Action.READ,
                                     columns=None if columns is None else access.view_columns(columns))


async def page(ctx: Context, *, first: int, after: str | None, where: PatientFilter,
               order: PatientOrder | None = None, count: bool = False,
               columns: Collection[str] | None = None) -> PatientPage:
    """A page of patients in reach matching ``where``; ``count``: also the number that match (one COUNT);
    ``columns``: the rows with only those (and what scope and cursors need), None: whole rows."""
    ctx.require_principal()
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    after_id = pagination.decode_uuid(CURSOR_KIND, after) if after and order is None else None
    after_key = _after_condition(ctx, order, after, after_id) if after else None
    await _check_filter(ctx, where, order)
    if not access.patient_scope(ctx).reaches_anyone:
        return PatientPage(pagination.Page([], False), await pagination.count_of(None, count))
    today = await institutions.local_today_of(ctx) if where.national_id is not None else None
    plain = order is None and where == PatientFilter()  # the plain list: its SQL built once (checked_select)
    compared = _compared(ctx, where, order)
    if compared is None:
        return PatientPage(pagination.Page([], False), await pagination.count_of(None, count))
    query = None if plain and not count else _in_reach(ctx).filter(_conditions(ctx, where, today), *compared)
    total = await pagination.count_of(query, count)
    only = None if columns is None else access.view_columns(
        columns, *([] if order is None else [ORDER_COLUMNS[order.field]]))
    if plain:
        rows = await access.checked_select(ctx, ("patient_page", only), partial(_plain_page, only),
                                           after=after_id, limit=first + 1)
    else:
        assert query is not None  # made above for every list but the plain one
        rows = await _rows(query, after_key, only, order).limit(first + 1)
    views = await access.views(ctx, rows[:first])
    _note_matches(ctx, views, where)
    if order is None:
        return PatientPage(pagination.page_of(views, len(rows) > first, CURSOR_KIND, key=lambda v: v.row.id), total)
    column = ORDER_COLUMNS[order.field]
    return PatientPage(pagination.page_of(views, len(rows) > first, order.cursor_kind,
                                          key=lambda v: _cursor_key(v.row.id, getattr(v.row, column)),
                                          sealed_with=ctx.require_keys() if order.sealed else None),
                       total)


def _in_reach(ctx: Context) -> QuerySet[Patient]:
    """``access.checked_patients`` of a caller known to reach some patient."""
    return cast(QuerySet[Patient], access.checked_patients(ctx))


def _rows(query: QuerySet[Patient], after: Q | None, only: Collection[str] | None,
          order: PatientOrder | None) -> QuerySet[Patient]:
    """A page's rows of ``query`` (the files matching the filter) after the cursor, in the order."""
    query = query if after is None else query.filter(after)
    return (query if only is None else query.only(*only)).order_by(*_order_by(order))


def _plain_page(only: Collection[str] | None, query: QuerySet[Patient], after: uuid.UUID | None,
                limit: int) -> QuerySet[Patient]:
    """The list without filter or order (a fixed shape, so its SQL is built once): the files not merged away."""
    return _rows(query.filter(~Q(status=MERGED)), None if after is None else Q(id__gt=after), only, None).limit(limit)


def _order_by(order: PatientOrder | None) -> tuple[str, ...]:
    if order is None:
        return ("id",)
    sign = "-" if order.direction == "desc" else ""
    return (f"{sign}{ORDER_COLUMNS[order.field]}", f"{sign}id")


def _cursor_key(row_id: uuid.UUID, value: Any) -> str:
    """The id (fixed length) then the sort key: a name may hold any character."""
    return f"{row_id}|{value.isoformat() if isinstance(value, datetime) else value}"


def _after_condition(ctx: Context, order: PatientOrder | None, cursor: str, after_id: uuid.UUID | None) -> Q:
    """Rows after the cursor in the order (``after_id``: the default order's cursor, decoded); a cursor of another
    order (or list, or institution) is BAD_USER_INPUT."""
    if order is None:
        return Q(id__gt=after_id)
    row_id, value = _decode_cursor(ctx, order, cursor)
    return pagination.keyset_after(ORDER_COLUMNS[order.field], value, row_id, order.direction == "desc")


def _decode_cursor(ctx: Context, order: PatientOrder, cursor: str) -> tuple[uuid.UUID, Any]:
    """The cursor's (id, value): the name order's sealed, a time order's base64 only."""
    if order.sealed:
        key = pagination.open_sealed(ctx.require_keys(), order.cursor_kind, cursor, _MAX_CURSOR)
    else:
        key = pagination.decode_text(order.cursor_kind, cursor)
    try:
        text_id, value = key.split("|", 1)
        row_id = uuid.UUID(text_id)
    except ValueError:
        raise BadUserInput("after: not a valid cursor.", field="after") from None
    return row_id, value if order.sealed else pagination.decode_time(value)


# A filter reveals what it matches: each needs the right to read the class of its field.
_FILTER_FIELD = {"name_prefix": "full_name", "name": "full_name", "phone": "phone", "phone_last4": "phone",
                 "contact_phone": "phone", "national_id_type": "national_id_type", "national_id": "national_id",
                 "segment": "segments", "tag": "tags", "department_id": "department_id", "status": "status",
                 "merged_into_id": "status", "birth_date": "birth_date"}


def _compared_columns(where: PatientFilter, order: PatientOrder | None) -> set[str]:
    """The columns a list compares: its filter's, and the column it is ordered by (an order tells which of two files'
    names, or registration or last change times, comes first, and a time order's cursor, which is not sealed, can be
    written to compare them with any time: found in review, a partner token without patient.identity:read listed
    its granted patients in their names' order)."""
    columns = {column for name, column in _FILTER_FIELD.items() if getattr(where, name) is not None}
    if order is not None:
        columns.add(ORDER_COLUMNS[order.field])
    return columns


async def _check_filter(ctx: Context, where: PatientFilter, order: PatientOrder | None = None) -> None:
    for name, column in _FILTER_FIELD.items():
        if getattr(where, name) is not None:
            await access.authorize(ctx, f"patient.{PATIENT_FIELD_CLASS[column]}", "read", action=Action.READ,
                                   resource_type="patient")
    if order is not None:
        await access.authorize(ctx, f"patient.{PATIENT_FIELD_CLASS[ORDER_COLUMNS[order.field]]}", "read",
                               action=Action.READ, resource_type="patient")
    if where.contact_phone is not None:  # it reveals a family member's phone: read as contacts are
        await access.authorize(ctx, "contact", "read", action=Action.READ, resource_type="patient")


def _compared(ctx: Context, where: PatientFilter, order: PatientOrder | None = None) -> list[Q] | None:
    """The files a filter may compare: for each class whose values it compares, those whose class the caller reads
    (found in review: a nurse who also works in finance, who reads the identity of every file but the contact class
    of their care team's and department's only, found any file by its phone, and counted them); None when a class
    compared is read on no file."""
    scope = access.patient_scope(ctx)
    classes = {PATIENT_FIELD_CLASS[column] for column in _compared_columns(where, order)}
    # a class read on every file the caller reaches adds nothing (one role's classes, most often)
    narrower = sorted(c for c in classes if scope.reach_by_class.get(c, frozenset()) != scope.reach)
    conditions = [scope.filter_for(field_class) for field_class in narrower]
    return None if None in conditions else [condition for condition in conditions if condition is not None]


def _note_matches(ctx: Context, views: list[PatientView], where: PatientFilter) -> None:
    """Each patient a filter returns is a read of what the filter compared (a phone search that finds a file says
    the file holds that phone): noted on the patient's read record as reading those fields would note them,
    whatever the page selects. The plain list notes nothing more."""
    columns = {column for name, column in _FILTER_FIELD.items() if getattr(where, name) is not None}
    if not columns:  # the plain list (W1): nothing to walk
        return
    for view in views:
        access.note_patient_reads(ctx, ctx.reads, view, columns)
        if where.contact_phone is not None:
            access.note_contact_read(ctx, ctx.reads, view, "phone")


def _conditions(ctx: Context, where: PatientFilter, today: date | None = None) -> Q:
    q = Q()
    if where.name_prefix is not None:
        prefix = clean_text(where.name_prefix, field="filter.namePrefix", max_length=100, min_length=1)
        q &= Q(full_name__startswith=prefix)
    if where.name is not None:
        q &= Q(name_search__contains=name_search_term(where.name, field="filter.name"))
    if where.phone is not None:
        digest = access.blind_index(ctx, "phone", normalize_phone(where.phone, field="filter.phone"))
        q &= Q(phone_bidx=digest) | Q(alt_phone_bidx=digest)
    if where.phone_last4 is not None:
        digest = access.blind_index(ctx, LAST4_KIND, phone_last4(where.phone_last4, field="filter.phoneLast4"))
        q &= Q(phone_last4_bidx=digest) | Q(alt_phone_last4_bidx=digest)
    if where.contact_phone is not None:
        digest = access.blind_index(ctx, "phone", normalize_phone(where.contact_phone, field="filter.contactPhone"))
        families = Contact.filter(institution_id=ctx.institution_id, phone_bidx=digest)
        q &= Q(id__in=Subquery(families.values("patient_id")))
    if where.national_id is not None or where.national_id_type is not None:
        if where.national_id is None or where.national_id_type is None:
            raise BadUserInput("filter.nationalId: give the document type and number together.",
                               field="filter.nationalId")
        number = normalize_national_id(where.national_id_type, where.national_id, today=today,
                                       field="filter.nationalId")
        q &= Q(national_id_bidx=access.blind_index(ctx, "national_id", f"{where.national_id_type}:{number}"))
    if where.birth_date is not None:
        q &= Q(birth_date=where.birth_date)
    if where.segment is not None:
        q &= Q(segments__contains=f"|{_one_of(where.segment, SEGMENTS, 'filter.segment')}|")
    if where.tag is not None:
        q &= Q(tags__contains=f"|{normalize_tag(where.tag, field='filter.tag')}|")
    if where.department_id is not None:
        q &= Q(department_id=where.department_id)
    if where.status is not None:
        q &= Q(status=_one_of(where.status, PATIENT_STATUSES, "filter.status"))
    if where.merged_into_id is not None:
        q &= Q(merged_into_id=where.merged_into_id)
    if where.status is None and where.merged_into_id is None:  # a merged file is found only when asked for
        q &= ~Q(status=MERGED)
    return q


# -- writes ------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any], *, register_anyway: bool = False) -> CreateResult:
    decision = await access.authorize(ctx, "patient", "create", action=Action.CREATE, resource_type="patient")
    for field_class in _classes(data):
        if field_class != "identity":
            await access.authorize(ctx, f"patient.{field_class}", "update", action=Action.CREATE,
                                   resource_type="patient")
    values = await _normalize(ctx, data)
    if "full_name" not in values:
        raise BadUserInput("fullName: is required.", field="fullName")
    patient_id = uuid7()
    columns = _columns(ctx, patient_id, values)
    if not register_anyway:
        returning, matched_on = await _returning_patient(ctx, columns)
        if returning is not None:
            return CreateResult(None, returning, matched_on)
    async with in_transaction():
        if not register_anyway:  # again, under a lock of what identifies the person: a double click registers once
            await _lock_identities(ctx, columns)
            returning, matched_on = await _returning_patient(ctx, columns)
            if returning is not None:
                return CreateResult(None, returning, matched_on)
        row = await Patient.create(id=patient_id, institution_id=ctx.institution_id, **columns)
        if _outside_reach(ctx, row):  # a nurse registering a patient joins the patient's care team
            await CareTeamMember.create(institution_id=ctx.institution_id, patient_id=row.id, staff_id=ctx.actor.id)
        await writer.append([access.write_record(
            ctx, Action.CREATE, "patient", row.id, patient_id=row.id, fields=frozenset(values), decision=decision)])
    return CreateResult((await access.views(ctx, [row]))[0])  # the row as written: no need to look it up again


async def update(ctx: Context, patient_id: uuid.UUID | None, data: dict[str, Any],
                 version: int | None = None, returned: frozenset[str] = frozenset()) -> PatientView:
    """Change a file over the version the caller read (stale: CONFLICT, nothing written). ``returned`` names the
    fields the caller's selection reads back: their read is appended with the write, in its statement."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    if data.get("status") == MERGED:
        raise BadUserInput("input.status: a file is merged by patientMerge.", field="input.status")
    if data.get("status") == ARCHIVED:  # under ``patient: archive``, which cancels what the file has booked
        raise BadUserInput("input.status: a file is archived by patientArchive.", field="input.status")
    view = await access.find_patient(ctx, patient_id, action=Action.UPDATE)
    decisions = [await access.require_class_write(ctx, view, field_class, action=Action.UPDATE,
                                                  resource_type="patient", resource_id=view.row.id)
                 for field_class in sorted(_classes(data))]
    if "status" in data and view.row.status == ARCHIVED:  # written over the version read: an archive since is stale
        decisions.append(await _require_archive_right(ctx, view))
    values = await _normalize(ctx, data)
    columns = _columns(ctx, view.row.id, values)
    decision = Decision(True, "; ".join(d.rule for d in decisions))
    records = [access.write_record(ctx, Action.UPDATE, "patient", view.row.id, patient_id=view.row.id,
                                   fields=frozenset(values), decision=decision),
               consents.contact_consent_record(ctx, view.row.id, frozenset(values), decision.rule)]
    appended = [record for record in records if record is not None]
    if values.get("status") == "deceased":  # a deceased patient is never called, nor keeps a place
        async with in_transaction():
            await versioning.update_versioned(view.row, version, "patient", **columns)
            await writer.append(appended)
            with writer.unkeyed():  # what the death ends: the request's Idempotency-Key names the file
                await follow_up.cancel_for_patient(ctx, view.row.id)
                await appointments.cancel_for_patient(ctx, view.row.id)
                await visits.cancel_planned_for_patient(ctx, view.row.id)
                await _end_grants(ctx, view.row.id, decision)
                await contracts.end_for_deceased(ctx, view.row.id, decision)  # by the fact of the death
        return await access.find_patient(ctx, view.row.id, action=Action.READ)
    if "department_id" in columns:  # the file may leave the caller's reach, or change its classes
        row = await writes.write_over_version(view.row, version, "patient", columns, appended)
        return await access.find_patient(ctx, row.id, action=Action.READ)
    read_back = ReadLog()
    access.note_patient_reads(ctx, read_back, view, returned)
    row = await writes.write_over_version(view.row, version, "patient", columns,
                                          [*appended, *read_back.records(ctx.institution_id, ctx.actor, ctx.request)])
    ctx.reads.mark_recorded(read_back)
    return PatientView(row, view.classes, view.grant, view.reached)  # the row as written: no need to read it again


async def archive(ctx: Context, patient_id: uuid.UUID | None, version: int | None = None) -> PatientView:
    """Archive a file over the version the caller read (stale: CONFLICT, nothing written or cancelled). Refused while
    the client has a contract not ended (CONFLICT ``contracts_running``, recorded): archiving is the front desk's,
    ending a contract admin's or finance's, so an archive ends none (found in review: they ran on, reminded and
    renewed themselves, on an archived file). A file archived already is BAD_USER_INPUT ``illegal_transition``,
    recorded; one archived meanwhile bumped the version read, so the write over it is CONFLICT: archived once."""
    decision = await access.authorize(ctx, "patient", "archive", action=Action.ARCHIVE, resource_type="patient",
                                      resource_id=patient_id, patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.ARCHIVE)
    # by a role that archives, on a file it reaches (found in review: a head of department B who also works in
    # finance, which finds every client, archived files of every department)
    await access.require_section_reached(ctx, view, "patient", act="archive", resource_type="patient",
                                         resource_id=view.row.id)
    if view.row.status == ARCHIVED:  # found in review: archived again, a record and a version for nothing
        await access.deny(ctx, Action.ARCHIVE, "patient", view.row.id, view.row.id, reason=ILLEGAL_TRANSITION)
        raise BadUserInput("id: the file is archived already.", field="id", reason=ILLEGAL_TRANSITION)
    # The file locked before its contracts are read: a contract drafted or renewed meanwhile (which lock it too)
    # is either seen here or refused as the file is archived.
    async with access.file_transaction(ctx, view.row.id, action=Action.ARCHIVE, field="id"):
        if await contracts.running_on_file(ctx, view.row.id):  # the archive rolls back, the refusal then recorded
            raise access.Refusal(Conflict(
                "id: the client has a contract not ended (draft, sent, running or signed ahead); admins or finance "
                "end it (contractTerminate) before the file is archived.", field="id", reason=CONTRACTS_RUNNING),
                Action.ARCHIVE, "patient", view.row.id, view.row.id)
        await versioning.update_versioned(view.row, version, "patient", status=ARCHIVED)
        await writer.append([access.write_record(
            ctx, Action.ARCHIVE, "patient", view.row.id, patient_id=view.row.id, fields=frozenset({"status"}),
            decision=decision)])
        with writer.unkeyed():  # what the archive ends: the request's Idempotency-Key names the file
            await follow_up.cancel_for_patient(ctx, view.row.id)
            await appointments.cancel_for_patient(ctx, view.row.id)
            await visits.cancel_planned_for_patient(ctx, view.row.id)
            await _end_grants(ctx, view.row.id, decision)
    return await access.find_patient(ctx, view.row.id, action=Action.READ)


async def unarchive(ctx: Context, patient_id: uuid.UUID | None, version: int | None = None) -> PatientView:
    """Take an archived file back (ACTIVE) over the version the caller read (stale: CONFLICT, nothing written): the
    archive's own right, on a file the role reaches. Nothing the archive cancelled or ended comes back by itself (the
    calls and bookings stay cancelled, the partners' grants ended): staff book and grant again where needed."""
    decision = await access.authorize(ctx, "patient", "archive", action=Action.UPDATE, resource_type="patient",
                                      resource_id=patient_id, patient_id=patient_id)
    view = await access.find_patient(ctx, patient_id, action=Action.UPDATE)
    await access.require_section_reached(ctx, view, "patient", act="archive", action=Action.UPDATE,
                                         resource_type="patient", resource_id=view.row.id)
    if view.row.status != ARCHIVED:  # on the trail, as the archive of an archived file is
        await access.deny(ctx, Action.UPDATE, "patient", view.row.id, view.row.id, reason=ILLEGAL_TRANSITION)
        raise BadUserInput(f"id: the file is {view.row.status}, not archived.", field="id", reason=ILLEGAL_TRANSITION)
    async with in_transaction():
        await versioning.update_versioned(view.row, version, "patient", status="active")
        record = access.write_record(ctx, Action.UPDATE, "patient", view.row.id, patient_id=view.row.id,
                                     fields=frozenset({"status"}), decision=decision)
        await writer.append([replace(record, reason="unarchived")])
    return await access.find_patient(ctx, view.row.id, action=Action.READ)


async def _require_archive_right(ctx: Context, view: PatientView) -> Decision:
    """A status moved off an archived file takes it out of the archive: the archive's right (``patient: archive``, by
    a role that reaches the file), not the identity class's alone (found in review: a nurse, who may not archive,
    un-archived files through patientUpdate, also in two steps, DECEASED then ACTIVE). FORBIDDEN at input.status,
    the refusal recorded."""
    decision = ctx.decide("patient", "archive")
    if not decision.allowed or not access.section_reached(ctx, view, "patient", "archive"):
        await access.deny(ctx, Action.UPDATE, "patient", view.row.id, view.row.id, reason="forbidden")
        raise Forbidden("input.status: a file leaves the archive by a role that archives files (patient: archive).",
                        field="input.status")
    return decision


async def _end_grants(ctx: Context, patient_id: uuid.UUID, decision: Decision) -> None:
    """A file closed (archived, or its patient deceased) ends its partners' grants, recorded as a change of the file
    by whoever closed it (``partner_grant.end_for_patient``)."""
    if await partner_grants.end_for_patient(ctx, patient_id):
        record = access.write_record(ctx, Action.UPDATE, "patient", patient_id, patient_id=patient_id,
                                     fields=frozenset({"partner_grant.revoked_at"}), decision=decision)
        await writer.append([replace(record, reason="file_closed")])


async def reindex(services: Services, institution_id: uuid.UUID) -> int:
    """Fill the search columns of an institution's files written before they existed (``careloop patients
    reindex``): the name as searched, and the last-4 blind indexes (which need the phones decrypted, hence
    not a migration). Idempotent; returns how many files it changed. Writes no patient data anywhere else."""
    keys = await services.keyring.get(institution_id)
    stale = Patient.filter(institution_id=institution_id).filter(
        Q(name_search="") | Q(phone__not_isnull=True, phone_last4_bidx=None)
        | Q(alt_phone__not_isnull=True, alt_phone_last4_bidx=None))
    rows = await stale.only("id", "institution_id", "full_name", "phone", "alt_phone")
    if not rows:
        return 0
    async with in_transaction():
        for row in rows:
            values: dict[str, Any] = {"name_search": name_search_text(row.full_name)}
            for name, column in _LAST4_INDEXED.items():
                sealed = getattr(row, name)
                if sealed is not None:
                    phone = keys.open(bytes(sealed), field_aad(institution_id, "patient", name, row.id))
                    values[column] = keys.blind_index(LAST4_KIND, phone[-4:])
            await Patient.filter(id=row.id, institution_id=institution_id).update(**values)
        # one record for the run: the system opened phones to index them (names the columns, never values)
        await writer.append([AuditRecord(institution_id, Actor("system"), Action.UPDATE, "patient", Outcome.ALLOWED,
                                         field_classes=frozenset({"identity", "contact"}), reason="reindex",
                                         fields_read=frozenset({"name_search", *_LAST4_INDEXED.values()}))])
    return len(rows)


def _classes(data: dict[str, Any]) -> set[str]:
    return {PATIENT_FIELD_CLASS.get(name, "identity") for name in data}


def _outside_reach(ctx: Context, row: Patient) -> bool:
    """Whether the file is beyond the reach of the caller's roles that register patients (found in review: a nurse
    of department B who also works in finance, which finds every client, registering a patient in department A did
    not join the care team as a nurse alone does, and lost sight of the clinical data she had just entered)."""
    scope = access.section_scope(ctx, "patient", act="create")
    return not scope.classes_for(row.department_id, in_care_team=False)


async def _lock_identities(ctx: Context, columns: dict[str, Any]) -> None:
    """Transaction locks on what the returning-patient check matches (ID number, phones, name and birth date), in
    one order: two registrations of one person at once check in turn (found in review: a double click made two
    files). PostgreSQL's advisory locks; SQLite runs one write transaction at a time already."""
    db = Patient._meta.db
    if db.capabilities.dialect != "postgres":
        return
    born = columns.get("birth_date")
    named = f"{name_key(columns['full_name'])}|{born}" if born is not None else None
    keys = sorted({f"{ctx.institution_id}:{key}" for key in (columns.get("national_id_bidx"),
                   columns.get("phone_bidx"), columns.get("alt_phone_bidx"), named) if key})
    for key in keys:
        await db.execute_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [key])


_MATCHED_COLUMNS = {"NATIONAL_ID": ("national_id",), "PHONE": ("phone",),
                    "NAME_AND_BIRTH_DATE": ("full_name", "birth_date")}
_MATCHED_CLASS = {kind: PATIENT_FIELD_CLASS[names[0]] for kind, names in _MATCHED_COLUMNS.items()}


async def _returning_patient(ctx: Context, columns: dict[str, Any]) -> tuple[PatientView | None, list[str]]:
    """A patient on file (within the caller's reach, not merged) with the same national ID, phone, or name and
    birth date."""
    query = access.scoped_patients(ctx)
    if query is None:
        return None, []
    query = query.exclude(status=MERGED)
    scope = access.patient_scope(ctx)
    checks = [("NATIONAL_ID", Q(national_id_bidx=columns.get("national_id_bidx")), columns.get("national_id_bidx"))]
    for column in ("phone_bidx", "alt_phone_bidx"):
        digest = columns.get(column)
        checks.append(("PHONE", Q(phone_bidx=digest) | Q(alt_phone_bidx=digest), digest))
    born = columns.get("birth_date")
    same_name = Q(name_search__startswith=f"{name_key(columns['full_name'])}|", birth_date=born)
    checks.append(("NAME_AND_BIRTH_DATE", same_name, born))
    for kind, condition, digest in checks:
        # compared only on the files whose class of what matches the caller reads, as a search is (found in
        # review: a nurse who also works in finance registered a phone and was told which department-B file holds it)
        reach = scope.filter_for(_MATCHED_CLASS[kind])
        if digest is None or reach is None:
            continue
        found = await query.filter(condition, reach).order_by("id").first()
        if found is not None:
            view = (await access.views(ctx, [found]))[0]
            same_phone = kind == "NATIONAL_ID" and CONTACT in view.classes and _same_phone(found, columns)
            matched = ["NATIONAL_ID", "PHONE"] if same_phone else [kind]
            # Answering "this person is on file" reveals what matched: a read of those fields of the file.
            access.note_patient_reads(ctx, ctx.reads, view,
                                      [column for kind in matched for column in _MATCHED_COLUMNS[kind]])
            return view, matched
    return None, []


def _same_phone(found: Patient, columns: dict[str, Any]) -> bool:
    mine = {columns.get("phone_bidx"), columns.get("alt_phone_bidx")} - {None}
    return bool(mine & {found.phone_bidx, found.alt_phone_bidx})


# -- validation --------------------------------------------------------------------------


def _one_of(value: str, allowed: tuple[str, ...], field_name: str) -> str:
    if value not in allowed:
        raise BadUserInput(f"{field_name}: must be one of {', '.join(allowed)}.", field=field_name)
    return value



async def _normalize(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Validated, canonical values; every invalid field is reported at once (``core.validation.Problems``),
    before anything is written."""
    problems = Problems()
    if ("national_id" in data) != ("national_id_type" in data):
        problems.add("nationalId", "required_together", "give nationalIdType and nationalId together.")
    dated = data.get("birth_date") is not None or data.get("national_id") is not None
    today = await institutions.local_today_of(ctx) if dated else None
    out = problems.each(data, lambda name, value: None if value is None else _normalize_one(name, value, today))
    if data.get("national_id") is not None and not problems.has("nationalId"):
        if data.get("national_id_type") is None:
            problems.add("nationalIdType", "required", "is required with nationalId.")
        else:
            with problems.collect("nationalId"):
                out["national_id"] = normalize_national_id(data["national_id_type"], data["national_id"], today=today)
    elif "national_id" in data:
        out["national_id_type"] = None
    if out.get("department_id") is not None:
        exists = await Department.exists(id=out["department_id"], institution_id=ctx.institution_id)
        if not exists:
            problems.add("departmentId", "unknown_department", "no such department.")
    for required in ("full_name", "sex", "contact_consent", "preferred_language", "status"):
        if required in out and out[required] is None:  # the schema drops these nulls (provided): a safety net
            problems.add(camel_case(required), "required", "must not be null.")
    problems.check()
    return out


def _normalize_one(name: str, value: Any, today: date | None) -> Any:
    field_name = camel_case(name)
    if name in _TEXT_LIMITS:
        return clean_text(value, field=field_name, max_length=_TEXT_LIMITS[name], min_length=1)
    if name in ("phone", "alt_phone"):
        return normalize_phone(value, field=field_name)
    if name == "email":
        return normalize_email(value, field=field_name)
    if name == "birth_date":
        return validate_birth_date(value if isinstance(value, date) else date.fromisoformat(value), today=today,
                                   field=field_name)
    if name == "sex":
        return _one_of(value, SEXES, field_name)
    if name == "status":
        return _one_of(value, PATIENT_STATUSES, field_name)
    if name == "preferred_channel":
        return _one_of(value, CHANNELS, field_name)
    if name == "preferred_language":
        if not _LANGUAGE.fullmatch(value):
            raise BadUserInput("preferredLanguage: must be a language tag such as zh-CN or en.", field=field_name)
        return value
    if name == "contact_channels":
        return sorted({_one_of(c, CHANNELS, field_name) for c in value})
    if name == "contact_purposes":
        return sorted({_one_of(p, PURPOSES, field_name) for p in value})
    if name == "segments":
        return sorted({_one_of(s, SEGMENTS, field_name) for s in value})
    if name == "tags":
        tags = sorted({normalize_tag(t, field=field_name) for t in value})
        if len(tags) > MAX_TAGS:
            raise BadUserInput(f"tags: at most {MAX_TAGS} tags.", field=field_name)
        return tags
    return value  # booleans, ids and the document type (checked with the number)


def _columns(ctx: Context, patient_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    """Model columns from validated values: sealed where encrypted, with blind indexes."""
    columns: dict[str, Any] = {}
    for name, value in values.items():
        if name in ENCRYPTED_FIELDS["patient"]:
            columns[name] = access.seal(ctx, "patient", name, patient_id, value)
        elif name in access.TAG_FIELDS:
            columns[name] = tags_to_db(value or [])
        else:
            columns[name] = value
        if name in _BLIND_INDEXED:
            kind, key = ("phone", value) if name != "national_id" else (
                "national_id", value and f"{values['national_id_type']}:{value}")
            columns[_BLIND_INDEXED[name]] = access.blind_index(ctx, kind, key)
        if name in _LAST4_INDEXED:
            columns[_LAST4_INDEXED[name]] = access.blind_index(ctx, LAST4_KIND, value and value[-4:])
        if name == "full_name":
            columns["name_search"] = name_search_text(value)
    return columns
