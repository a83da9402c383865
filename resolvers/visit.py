"""Visits (FHIR Encounter): register, check in, move through the states, record what was done and
the codes of it; a patient's service history; cohorts by code.

A visit is reached through its patient: the patient must be in the caller's reach, and each field
is read under the class of the patient's file it belongs to (``policies.fields.VISIT_FIELD_CLASS``),
so the front desk sees when and where, clinicians what was done, and nobody but staff the internal
note. A partner reads the visits it recorded itself. Every read and write is on the audit trail as
the patient file's are.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput
from core.ids import uuid7
from core.principal import PARTNER
from core.validation import (
    Problems,
    aware_time,
    camel_case,
    check_year,
    clean_text,
    clinical_code,
    happened_time,
    one_of,
    recorded_time,
)
from models import Department, Patient, ServiceItem, Visit, VisitCode, VisitStaff
from models.visit import CODE_KINDS, PROCEDURE_STATUSES, VISIT_KINDS
from policies.fields import CLINICAL, ENCRYPTED_FIELDS, INTERNAL, VISIT_FIELD_CLASS
from policies.guard import Decision
from resolvers import access, follow_up, pagination, staff, survey, writes
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.loaders import newest_per_parent

CURSOR_KIND = "visit"
# The states a visit moves through; finished, cancelled and no-show are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"arrived", "cancelled", "no_show"}),
    "arrived": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"finished"}),
}
INITIAL_STATUSES = frozenset({"planned", "arrived", "finished"})  # finished: a visit recorded afterwards
_STAMP = {"arrived": "arrived_at", "in_progress": "started_at", "finished": "ended_at", "cancelled": "cancelled_at"}
TEXT_LIMITS = {"reason": 1000, "summary": 4000, "outcome": 2000, "treatment_plan": 2000, "medication_guidance": 2000,
               "rehabilitation": 2000, "precautions": 2000, "feedback": 2000, "internal_note": 2000}
CODE_TEXT_LIMIT = 500
MAX_COHORT_CODES = 50
# A visit's codes as ``Visit.codes`` lists them stop here, in the order recorded (found in review: not bounded, on
# a page of up to 100 visits, or 20 recent visits of each of 100 files); every one pages through ``visitCodes``.
CODES_LIMIT = 50
CODE_CURSOR_KIND = "visit-code"


@dataclass(frozen=True)
class VisitView:
    row: Visit
    patient: PatientView


@dataclass(frozen=True)
class VisitFilter:
    kind: str | None = None
    department_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    code_system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class CodeView:
    row: VisitCode
    visit: VisitView


# -- reading -----------------------------------------------------------------------------


def read_field(ctx: Context, view: VisitView, name: str) -> Any:
    """A visit's field under its class on the patient's file; sealed ones opened when asked for."""
    return access.read_journey_field(ctx, view.patient, "visit", view.row, name, VISIT_FIELD_CLASS[name])


def read_code_field(ctx: Context, view: CodeView, name: str) -> Any:
    return access.read_journey_field(ctx, view.visit.patient, "visit_code", view.row, name, CLINICAL)


def in_reach(ctx: Context) -> QuerySet[Visit] | None:
    """Visits of patients the caller's roles that read visits reach (a partner: only those it recorded), as a
    query."""
    return access.records_in_reach(ctx, Visit, "visit")


async def _views(ctx: Context, rows: list[Visit]) -> list[VisitView]:
    return await access.with_files(ctx, rows, VisitView)


async def find(ctx: Context, visit_id: uuid.UUID | None, action: Action, field: str = "id") -> VisitView:
    return await access.find_on_file(ctx, in_reach(ctx), visit_id, VisitView, action=action, resource_type="visit",
                                     field=field)


async def get(ctx: Context, visit_id: uuid.UUID | None) -> VisitView:
    await access.authorize(ctx, "visit", "read", action=Action.READ, resource_type="visit", resource_id=visit_id)
    return await find(ctx, visit_id, Action.READ)


async def named(ctx: Context, visit_id: uuid.UUID | None) -> VisitView | None:
    """The visit another record names (a follow-up task's, a care plan's, a survey invitation's, a response's), read
    as ``get`` reads it for the caller (``access.named_on_files``): the same decision, reach and file, the same
    FORBIDDEN or NOT_FOUND, on the trail as its refusals are. None: the record names none. Batched across a page
    (two statements whatever the number of records; a visit named twice is read once)."""
    if visit_id is None:
        return None

    async def batch(ids: Sequence[uuid.UUID]) -> list[VisitView | Exception]:
        return list(await access.named_on_files(ctx, "visit", in_reach(ctx), ids, VisitView, resource_type="visit"))

    found: VisitView = await ctx.require_loaders().made("named_visit", batch).load(visit_id)
    return found


@dataclass(frozen=True)
class VisitOrder:
    """A history order: by when the visit was planned or happened (the default, newest first) or by last change;
    ties broken by id."""

    field: str = "planned_at"  # or "updated_at"
    direction: str = "desc"

    @property
    def cursor_kind(self) -> str:
        """Each order has its own cursors (the default keeps today's), so one from another is BAD_USER_INPUT."""
        return CURSOR_KIND if self == VisitOrder() else f"{CURSOR_KIND}.{self.field}.{self.direction}"


@dataclass(frozen=True)
class Cohort:
    page: pagination.Page[PatientView]
    total: int | None = None  # counted only when asked for


@dataclass(frozen=True)
class History:
    page: pagination.Page[VisitView]
    total: int | None = None  # counted only when asked for


async def history(ctx: Context, patient: PatientView, *, first: int, after: str | None,
                  where: VisitFilter, order: VisitOrder | None = None, count: bool = False) -> History:
    """A patient's visits, newest first (by when they were planned or happened), or in ``order``."""
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    order = order or VisitOrder()
    query = in_reach(ctx)
    if query is None:
        return History(pagination.Page([], False), await pagination.count_of(None, count))
    query = query.filter(patient_id=patient.row.id).filter(await _conditions(ctx, where, patient))
    total = await pagination.count_of(query, count)
    column = order.field
    rows = await pagination.keyset_rows(query, column, order.direction == "desc", first=first, after=after,
                                        kind=order.cursor_kind, parse=pagination.decode_time)
    views = [VisitView(row, patient) for row in rows[:first]]
    return History(pagination.page_of(views, len(rows) > first, order.cursor_kind,
                                      key=lambda v: f"{getattr(v.row, column).isoformat()}|{v.row.id}"), total)


RECENT_MAX = 20  # a patient page's recent visits; the whole history is paged by ``history``


async def recent_of(ctx: Context, patient: PatientView, count: int) -> list[VisitView]:
    """A patient page's most recent visits the caller may see, newest first (batched across patients)."""
    if not 1 <= count <= RECENT_MAX:
        raise BadUserInput(f"count: 1 to {RECENT_MAX}.", field="count")
    access.require_section(ctx, patient, "visit")

    async def batch(patient_ids: Sequence[uuid.UUID]) -> list[list[Visit]]:
        query = in_reach(ctx)
        found = {} if query is None else await newest_per_parent(query, "patient_id", patient_ids,
                                                                ("-planned_at", "-id"), RECENT_MAX)
        return [found.get(i, []) for i in patient_ids]

    rows = await ctx.require_loaders().made("recent_visits", batch).load(patient.row.id)
    return [VisitView(row, patient) for row in rows[:count]]


async def patient_history(ctx: Context, patient_id: uuid.UUID | None, *, first: int, after: str | None,
                          where: VisitFilter, order: VisitOrder | None = None, count: bool = False) -> History:
    await access.authorize(ctx, "visit", "read", action=Action.READ, resource_type="visit", patient_id=patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, patient, "visit", resource_type="visit")
    return await history(ctx, patient, first=first, after=after, where=where, order=order, count=count)


async def _conditions(ctx: Context, where: VisitFilter, patient: PatientView) -> Q:
    q = Q()
    if where.kind is not None:
        q &= Q(kind=one_of(where.kind, VISIT_KINDS, "filter.kind"))
    if where.department_id is not None:
        q &= Q(department_id=where.department_id)
    if where.since is not None:
        q &= Q(planned_at__gte=aware_time(where.since, "filter.since"))
    if where.until is not None:
        q &= Q(planned_at__lt=aware_time(where.until, "filter.until"))
    if where.since is not None and where.until is not None and where.until <= where.since:
        raise BadUserInput("filter.until: must be after filter.since.", field="filter.until")
    if (where.code is None) != (where.code_system is None):
        raise BadUserInput("filter.code: give codeSystem and code together.", field="filter.code")
    if where.code is not None and where.code_system is not None:
        # A code filter reveals clinical facts: it needs the right to read them, on this file (found in review: a
        # nurse who also works the front desk filtered the history of a file whose clinical class they do not read)
        await access.authorize(ctx, "patient.clinical", "read", action=Action.READ, resource_type="visit")
        access.require_class(ctx, patient, CLINICAL)
        system, code = _checked_code(where.code_system, where.code, "filter.code")
        q &= Q(id__in=Subquery(VisitCode.filter(institution_id=ctx.institution_id,
                                                code_bidx=_code_index(ctx, system, code)).values("visit_id")))
    return q


# -- cohorts -------------------------------------------------------------------------------


def _clinical_reach(ctx: Context) -> Q | None:
    """The patients whose clinical class the caller reads (not every class's reach: a code is a clinical fact), as
    a condition on patients; None when there are none."""
    return access.patient_scope(ctx).filter_for(CLINICAL)


async def cohort(ctx: Context, *, system: str, code: str, status: str | None, first: int,
                 after: str | None, count: bool = False) -> Cohort:
    """Patients in the caller's reach with a code (and a procedure status) on a visit the caller reaches:
    one indexed lookup, nothing decrypted. It reveals clinical facts of visits, so it needs both the visit
    and the clinical read permission, and a partner finds only codes of the visits it recorded."""
    await access.authorize(ctx, "visit", "read", action=Action.READ, resource_type="visit")
    await access.authorize(ctx, "patient.clinical", "read", action=Action.READ, resource_type="patient")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    system, code = _checked_code(system, code, "code")
    clinical = _clinical_reach(ctx)  # pages and count are exact
    query, visits_reached = None if clinical is None else Patient.filter(clinical), in_reach(ctx)
    if query is None or visits_reached is None:
        return Cohort(pagination.Page([], False), await pagination.count_of(None, count))
    codes = VisitCode.filter(institution_id=ctx.institution_id, code_bidx=_code_index(ctx, system, code),
                             visit_id__in=Subquery(visits_reached.values("id")))
    if status is not None:
        codes = codes.filter(status=one_of(status, PROCEDURE_STATUSES, "status"))
    query = query.filter(id__in=Subquery(codes.values("patient_id")))
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(id__gt=pagination.decode_uuid("cohort", after))
    rows = await query.order_by("id").limit(first + 1)
    views = [v for v in await access.views(ctx, rows[:first]) if CLINICAL in v.classes]
    # A file listed carries the code: a clinical fact read (its sealed column compared through the blind index), on
    # the patient's record whatever the page selects, as a search that finds a file reads what it compared (found in
    # review: the lookup noted nothing).
    for view in views:
        access.note_class_read(ctx, ctx.reads, view, CLINICAL)
        ctx.reads.note("patient", view.row.id, view.row.id, field_name="visit_code.code")
    return Cohort(pagination.page_of(views, len(rows) > first, "cohort", key=lambda v: v.row.id), total)


async def cohort_counts(ctx: Context, *, system: str, codes: list[str]) -> list[tuple[str, int]]:
    """How many patients in the caller's reach carry each code: aggregates, for those who read reports."""
    await access.authorize(ctx, "visit_report", "read", action=Action.READ, resource_type="visit_report")
    if not codes or len(codes) > MAX_COHORT_CODES:
        raise BadUserInput(f"codes: give 1 to {MAX_COHORT_CODES} codes.", field="codes")
    visits_reached, clinical = in_reach(ctx), _clinical_reach(ctx)
    checked = [_checked_code(system, code, "codes")[1] for code in codes]
    if visits_reached is None or clinical is None:
        return [(code, 0) for code in checked]
    index = {_code_index(ctx, system, code): code for code in checked}
    # counted on the files whose clinical class the caller reads, as patientsWithCode lists them (found in review:
    # every file reached by any class was counted, so a department head who also works the front desk counted the
    # diagnoses of the whole institution)
    found = await (VisitCode.filter(institution_id=ctx.institution_id, code_bidx__in=list(index),
                                    visit_id__in=Subquery(visits_reached.values("id")),
                                    patient_id__in=Subquery(Patient.filter(clinical).values("id")))
                   .distinct().values_list("code_bidx", "patient_id"))
    counts = dict.fromkeys(checked, 0)
    for digest, _patient in found:
        counts[index[str(digest)]] += 1
    return list(counts.items())


# -- writing -----------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> VisitView:
    decision = await access.authorize(ctx, "visit", "create", action=Action.CREATE, resource_type="visit",
                                      patient_id=data.get("patient_id"))
    principal = ctx.require_principal()
    problems = Problems()
    values = _shape(problems, data)
    status = values.pop("status", "planned")
    if status not in INITIAL_STATUSES and not problems.has("status"):
        problems.add("status", "invalid_choice", "a new visit is PLANNED, ARRIVED or FINISHED.")
    if principal.kind == PARTNER and (values.get("kind") != "home_care" or status != "finished") \
            and not problems.has("kind"):
        problems.add("kind", "partner_home_care", "a partner records home-care services it delivered (FINISHED).")
    if principal.kind == PARTNER:  # its own people deliver it: none of the institution's staff is credited with it
        for name in ("clinician_id", "staff_ids"):  # (their follow-up calls, surveys about them; found in review)
            if values.get(name) and not problems.has(camel_case(name)):
                problems.add(camel_case(name), "partner_visit", "a partner's visit names none of the institution's "
                             "staff.")
    now = _now()
    values.setdefault("planned_at", values.get("started_at") or now)
    if status == "arrived":
        values.setdefault("arrived_at", now)
        with problems.collect("plannedAt"):  # a walk-in arrived now: planned for another day is a typo
            _check_arrival_day(await institutions.zone_of(ctx), values, "plannedAt")
    if status == "finished" and (values.get("started_at") is None or values.get("ended_at") is None) \
            and not (problems.has("startedAt") or problems.has("endedAt")):
        problems.add("endedAt", "required", "a finished visit needs startedAt and endedAt.")
    with problems.collect("endedAt"):
        _check_order(values)
    if values.get("revisit_on") is not None and not problems.has("revisitOn"):
        with problems.collect("revisitOn"):
            await _check_revisit(ctx, values)
    problems.check()  # every problem of the input's shape, before reach and the database are asked
    patient = await access.find_patient(ctx, data.get("patient_id"), action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, patient, "visit", resource_type="visit", act="create")
    await _check_references(ctx, values, data.get("staff_ids"))
    await _check_text_rights(ctx, patient, values, Action.CREATE)
    if patient.row.status != "active":
        raise BadUserInput(f"patientId: the file is {patient.row.status}; visits are for active files.",
                           field="patientId")
    async with access.file_transaction(ctx, patient.row.id, action=Action.CREATE, active="visits"):
        row = await insert(ctx, patient, status, values, decision)
    if status == "arrived":
        ctx.services.visit_changes.notify()  # check-in alerts
    return VisitView(row, patient)


async def insert(ctx: Context, patient: PatientView, status: str, values: dict[str, Any],
                 decision: Decision) -> Visit:
    """Write a checked new visit and its record inside the caller's transaction (``create``, or an appointment's
    arrival); the caller wakes the check-in alerts once it has committed."""
    principal = ctx.require_principal()
    visit_id = uuid7()
    row = await Visit.create(id=visit_id, institution_id=ctx.institution_id, patient_id=patient.row.id,
                             status=status, partner_id=principal.partner_id if principal.kind == PARTNER else None,
                             **_columns(ctx, visit_id, values))
    if values.get("staff_ids"):
        await _set_staff(ctx, visit_id, values["staff_ids"])
    await writer.append([access.write_record(ctx, Action.CREATE, "visit", visit_id, patient_id=patient.row.id,
                                             fields=frozenset({"status", *values}), decision=decision)])
    if status == "finished":
        await follow_up.on_visit_finished(ctx, row)
        await survey.on_visit_finished(ctx, row)
    return row


async def update(ctx: Context, visit_id: uuid.UUID | None, data: dict[str, Any], version: int | None) -> VisitView:
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "visit", "update", action=Action.UPDATE, resource_type="visit",
                                      resource_id=visit_id)
    problems = Problems()
    values = _shape(problems, data)
    with problems.collect("endedAt"):
        _check_order(values)  # the times sent, among themselves; with the visit's own below
    problems.check()
    view = await find(ctx, visit_id, Action.UPDATE)
    await require_changed_here(ctx, view.patient, view.row.id)
    await _check_references(ctx, values, data.get("staff_ids"))
    values.pop("status", None)
    await _check_text_rights(ctx, view.patient, values, Action.UPDATE)
    _check_order({**_times(view.row), **values})
    if values.get("planned_at") is not None:  # not moved to a day after the visit's arrival
        _check_arrival_day(await institutions.zone_of(ctx), {**_times(view.row), **values}, "plannedAt")
    if values.get("revisit_on") is not None:
        await _check_revisit(ctx, {**_times(view.row), **values})
    file = view.patient.row.id
    try:
        async with in_transaction():
            await writes.write_over_version(view.row, version, "visit", _columns(ctx, view.row.id, values), [
                access.write_record(ctx, Action.UPDATE, "visit", view.row.id, patient_id=file,
                                    fields=frozenset(values), decision=decision)], on_file=file)
            if "revisit_on" in values:  # the reminder of the old day is not true (found in review): the sweep
                await communications.cancel_queued(  # queues the new day's
                    ctx.institution_id, communications.cause_prefix("revisit", view.row.id))
            if "staff_ids" in values:
                await _set_staff(ctx, view.row.id, values["staff_ids"])
    except writes.MovedOffFile:
        return await update(ctx, visit_id, data, version)  # found again, on the survivor
    return await find(ctx, view.row.id, Action.READ)


async def transition(ctx: Context, visit_id: uuid.UUID | None, to: str, at: datetime | None,
                     version: int | None) -> VisitView:
    """Move a visit to its next state. Arrival alerts the desk; finishing schedules the follow-up the
    institution's rules ask for; cancelling or a no-show cancels the follow-up still pending."""
    decision = await access.authorize(ctx, "visit", "update", action=Action.UPDATE, resource_type="visit",
                                      resource_id=visit_id)
    view = await find(ctx, visit_id, Action.UPDATE)
    await require_changed_here(ctx, view.patient, view.row.id)
    row = view.row
    if to not in TRANSITIONS.get(row.status, frozenset()):
        raise BadUserInput(f"to: a {row.status.upper()} visit cannot become {to.upper()}.", field="to",
                           reason=ILLEGAL_TRANSITION)
    if to == "no_show" and row.planned_at is not None and _now() < row.planned_at:
        # missed only once it was due, as an appointment's no-show waits for its slot (found in review: a visit planned
        # for tomorrow was marked, its calls cancelled and counted in that month's no-shows)
        raise BadUserInput("to: a no-show is recorded once the visit's planned time has come.", field="to",
                           reason="out_of_order")
    if at is not None and to not in _STAMP:  # found in review: it was checked, then dropped
        raise BadUserInput(f"at: a {to.upper()} visit keeps no time of its own; leave at out.", field="at")
    when = happened_time(at, "at", now=_now()) if at is not None else _now()
    columns: dict[str, Any] = {"status": to}
    if to in _STAMP:
        columns[_STAMP[to]] = when
    _check_order({**_times(row), **columns})
    if to == "arrived":
        _check_arrival_day(await institutions.zone_of(ctx), {**_times(row), **columns}, "at")
    # Finishing adds the follow-up tasks and the survey invitation to the file the visit was read on: locked first,
    # a merge since refused (the visit moved to the survivor, they would have been made for the merged file).
    file = view.patient.row.id
    try:
        async with access.file_transaction(ctx, file if to == "finished" else None, action=Action.UPDATE,
                                           field="id"):
            row = await writes.write_over_version(row, version, "visit", columns, [  # the row as written
                access.write_record(ctx, Action.UPDATE, "visit", row.id, patient_id=file, fields=frozenset(columns),
                                    decision=decision)], on_file=file)
            if to == "finished":
                await follow_up.on_visit_finished(ctx, row)
                await survey.on_visit_finished(ctx, row)
            elif to in ("cancelled", "no_show"):
                await follow_up.cancel_for_visit(ctx, row.id)
    except writes.MovedOffFile:  # finishing locks the file first: merged since, refused (docs/patients.md)
        return await transition(ctx, visit_id, to, at, version)  # found again, on the survivor
    if to == "arrived":
        ctx.services.visit_changes.notify()  # check-in alerts
    return VisitView(row, view.patient)


async def cancel_planned_for_patient(ctx: Context, patient_id: uuid.UUID) -> int:
    """An archived or deceased patient's PLANNED visits are cancelled with the file (inside the caller's transaction),
    as its booked appointments are: nobody is expected any more (found in review: the desk could still check them in
    and finish them). A visit under way stays, documented to its end. Locked as read, as the appointments' cancel
    does: one checked in meanwhile is waited for and then left out."""
    planned = [row.id for row in await Visit.filter(
        institution_id=ctx.institution_id, patient_id=patient_id, status="planned").order_by("id")
        .select_for_update().only("id")]
    if not planned:
        return 0
    now = _now()
    await Visit.filter(id__in=planned, status="planned").update(
        status="cancelled", cancelled_at=now, version=F("version") + 1, updated_at=now)
    await writer.append([access.write_record(ctx, Action.UPDATE, "visit", visit_id, patient_id=patient_id,
                                             fields=frozenset({"status", "cancelled_at"}), decision=access.FILE_CLOSED)
                         for visit_id in planned])
    return len(planned)


async def add_code(ctx: Context, visit_id: uuid.UUID | None, data: dict[str, Any]) -> CodeView:
    """Record a condition (ICD-10) or a procedure (the institution's catalogue) on a visit."""
    decision = await access.authorize(ctx, "visit", "update", action=Action.UPDATE, resource_type="visit",
                                      resource_id=visit_id)
    problems = Problems()  # the input's shape, every problem at once, before the visit is looked up
    kind = one_of(data["kind"], CODE_KINDS, "kind")
    system = "icd10" if kind == "condition" else "service"
    code = ""
    with problems.collect("code"):
        _, code = _checked_code(system, data["code"], "code")
    status = data.get("status")
    if kind == "procedure":
        with problems.collect("status"):
            status = one_of(status or "done", PROCEDURE_STATUSES, "status")
    elif status is not None:
        problems.add("status", "invalid", "only procedures have a status.")
    text = data.get("text")
    if text is not None:
        with problems.collect("text"):
            text = clean_text(text, field="text", max_length=CODE_TEXT_LIMIT)
    problems.check()
    view = await find(ctx, visit_id, Action.UPDATE, field="visitId")
    await require_changed_here(ctx, view.patient, view.row.id)
    await _check_text_rights(ctx, view.patient, {"codes": True}, Action.UPDATE)
    if system == "service" and not await ServiceItem.exists(institution_id=ctx.institution_id, code=code,
                                                            active=True):
        raise BadUserInput("code: not in the institution's service catalogue.", field="code")
    code_id = uuid7()
    # the file as the visit named it when read: locked, and refused when a merge moved the visit meanwhile
    async with access.file_transaction(ctx, view.patient.row.id, action=Action.CREATE, field="visitId"):
        row = await VisitCode.create(
            id=code_id, institution_id=ctx.institution_id, visit_id=view.row.id, patient_id=view.patient.row.id,
            kind=kind, system=system, code=access.seal(ctx, "visit_code", "code", code_id, code),
            code_bidx=_code_index(ctx, system, code), status=status,
            text=access.seal(ctx, "visit_code", "text", code_id, text))
        await writer.append([access.write_record(ctx, Action.CREATE, "visit_code", code_id,
                                                 patient_id=view.patient.row.id,
                                                 fields=frozenset({"kind", "system", "code", "status",
                                                                   *(["text"] if text else [])}),
                                                 decision=decision)])
    return CodeView(row, view)


async def set_code_status(ctx: Context, code_id: uuid.UUID | None, status: str,
                          version: int | None = None) -> CodeView:
    """A pending procedure done (or not done), over the version the caller read (stale: CONFLICT, nothing
    written)."""
    decision = await access.authorize(ctx, "visit", "update", action=Action.UPDATE, resource_type="visit_code",
                                      resource_id=code_id)
    query = in_reach(ctx)  # in the lookup: a code out of reach costs what a missing one does
    row = None if code_id is None or query is None else await VisitCode.get_or_none(
        id=code_id, institution_id=ctx.institution_id, visit_id__in=Subquery(query.values("id")))
    visit = None if row is None or query is None else await query.get_or_none(id=row.visit_id)
    views = [] if visit is None else await _views(ctx, [visit])
    if row is None or not views:
        raise await access.not_found(ctx, Action.UPDATE, "visit_code", code_id)
    await require_changed_here(ctx, views[0].patient, row.id, resource_type="visit_code")
    await _check_text_rights(ctx, views[0].patient, {"codes": True}, Action.UPDATE)
    if row.kind != "procedure":
        raise BadUserInput("id: only procedures have a status.", field="id")
    status = one_of(status, PROCEDURE_STATUSES, "status")
    file = views[0].patient.row.id
    try:
        row = await writes.write_over_version(row, version, "procedure", {"status": status}, [
            access.write_record(ctx, Action.UPDATE, "visit_code", row.id, patient_id=file, fields=frozenset({"status"}),
                                decision=decision)], on_file=file)
    except writes.MovedOffFile:
        return await set_code_status(ctx, code_id, status, version)  # found again, on the survivor
    return CodeView(row, views[0])


async def codes_of(ctx: Context, view: VisitView) -> list[CodeView]:
    """A visit's codes in the order recorded, at most CODES_LIMIT (batched across visits: two statements whatever
    the number of visits and codes)."""
    access.require_class(ctx, view.patient, CLINICAL)

    async def batch(visit_ids: Sequence[uuid.UUID]) -> list[list[VisitCode]]:
        query = VisitCode.filter(institution_id=ctx.institution_id)
        found = await newest_per_parent(query, "visit_id", visit_ids, ("id",), CODES_LIMIT)
        return [found.get(i, []) for i in visit_ids]

    rows = await ctx.require_loaders().made("visit_codes", batch).load(view.row.id)
    return [CodeView(row, view) for row in rows]


async def codes_page(ctx: Context, visit_id: uuid.UUID | None, *, first: int, after: str | None,
                     count: bool = False) -> pagination.Page[CodeView]:
    """A visit's codes in the order recorded, a page at a time: every one ``Visit.codes`` lists, and those past its
    bound. Clinical, as they are there: the permission before the visit is looked up, the class on its file."""
    await access.authorize(ctx, "visit", "read", action=Action.READ, resource_type="visit", resource_id=visit_id)
    await access.authorize(ctx, "patient.clinical", "read", action=Action.READ, resource_type="visit",
                           resource_id=visit_id)
    view = await find(ctx, visit_id, Action.READ, field="visitId")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    access.require_class(ctx, view.patient, CLINICAL)
    query = VisitCode.filter(institution_id=ctx.institution_id, visit_id=view.row.id)
    page = await pagination.by_id(query, first=first, after=after, kind=CODE_CURSOR_KIND, count=count)
    return page.map(lambda row: CodeView(row, view))


# -- validation --------------------------------------------------------------------------


def _now() -> datetime:
    """The present, as the visit's times are stamped and checked (a test sets it, as other modules' ``_now``)."""
    return datetime.now(UTC)


async def require_changed_here(ctx: Context, patient: PatientView, resource_id: uuid.UUID,
                               resource_type: str = "visit") -> None:
    """A visit (or its codes) found in the reach of the roles that read visits is changed only where a role of the
    caller allowed to change visits reaches its file, else FORBIDDEN, recorded (found in review: a support agent who
    is also a nurse of department B moved and edited the visits of every department). Asked again of a visit found
    again on a merge's survivor (``writes.MovedOffFile``). No statement: from what the view holds."""
    await access.require_section_reached(ctx, patient, "visit", resource_type=resource_type, act="update",
                                         resource_id=resource_id)


async def _check_text_rights(ctx: Context, patient: PatientView, values: dict[str, Any], action: Action) -> None:
    """Writing a clinical or internal field needs the right to write that class of this patient's file."""
    for field_class in sorted({VISIT_FIELD_CLASS.get(name, "identity") for name in values} & {CLINICAL, INTERNAL}):
        await access.require_class_write(ctx, patient, field_class, action=action, resource_type="visit")


def _shape(problems: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """The valid values of a visit's fields; each invalid one becomes a problem (the caller checks)."""
    return problems.each({name: value for name, value in data.items() if name != "patient_id"}, _shape_one)


MAX_STAFF = 10


def _shape_one(name: str, value: Any) -> Any:
    field_name = camel_case(name)
    if value is None:
        if name in ("kind", "planned_at"):
            raise BadUserInput(f"{field_name}: must not be null.", field=field_name, reason="required")
        return None
    if name in TEXT_LIMITS:
        return clean_text(value, field=field_name, max_length=TEXT_LIMITS[name], min_length=1)
    if name == "kind":
        return one_of(value, VISIT_KINDS, field_name)
    if name == "planned_at":  # booked ahead, or entered from paper
        return recorded_time(value, field_name)
    if name in ("started_at", "ended_at", "arrived_at"):  # what has happened (found in review: a visit "finished"
        return happened_time(value, field_name, now=_now())  # next year made its calls and survey for then)
    if name == "staff_ids":  # the other staff who took part, each once
        unique = list(dict.fromkeys(value))
        if len(unique) > MAX_STAFF:
            raise BadUserInput(f"staffIds: at most {MAX_STAFF}.", field="staffIds", reason="too_many")
        return unique
    if name == "revisit_on":
        day = value if isinstance(value, date) else date.fromisoformat(value)
        check_year(day, field_name)  # a revisit is in the future: the years of schedules
        return day
    return value


async def _check_references(ctx: Context, values: dict[str, Any], sent_staff: list[uuid.UUID] | None) -> None:
    """The department named is the institution's; the clinician and the other staff who took part are its active
    clinicians (``staff.check_clinicians``: all of them in one statement), each other staff member named at its place
    as sent (``staffIds[2]``). Every problem at once, after the shape checks."""
    problems = Problems()
    if values.get("department_id") is not None and not await Department.exists(
            id=values["department_id"], institution_id=ctx.institution_id):
        problems.add("departmentId", "invalid", "no such department.")
    named = [("clinicianId", values["clinician_id"])] if values.get("clinician_id") is not None else []
    if values.get("staff_ids"):
        named += [(f"staffIds[{index}]", staff_id) for index, staff_id in enumerate(sent_staff or [])]
    await staff.check_clinicians(ctx, problems, named)
    problems.check()


async def _set_staff(ctx: Context, visit_id: uuid.UUID, staff_ids: list[uuid.UUID] | None) -> None:
    """Inside the visit's transaction: the other staff, replaced as a whole."""
    await VisitStaff.filter(institution_id=ctx.institution_id, visit_id=visit_id).delete()
    await VisitStaff.bulk_create([VisitStaff(id=uuid7(), institution_id=ctx.institution_id, visit_id=visit_id,
                                             staff_id=staff_id) for staff_id in staff_ids or []])


async def staff_of(ctx: Context, view: VisitView) -> list[uuid.UUID]:
    read_field(ctx, view, "kind")  # who took part is identity, as the visit's kind: checked and noted
    rows = await ctx.require_loaders().staff_by_visit.load(view.row.id)
    return [row.staff_id for row in rows]


def _columns(ctx: Context, visit_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    return {name: access.seal(ctx, "visit", name, visit_id, value) if name in ENCRYPTED_FIELDS["visit"] else value
            for name, value in values.items() if name != "staff_ids"}


def _times(row: Visit) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ("planned_at", "arrived_at", "started_at", "ended_at")}


async def _check_revisit(ctx: Context, values: dict[str, Any]) -> None:
    """A re-visit comes on or after the day of the visit (its end, start or planned time, the institution's date):
    one before it is a typo whose reminder, queued the day before, is never sent (found in review)."""
    visit_at = values.get("ended_at") or values.get("started_at") or values.get("planned_at")
    if visit_at is not None and values["revisit_on"] < visit_at.astimezone(await institutions.zone_of(ctx)).date():
        raise BadUserInput("revisitOn: must not be before the day of the visit.", field="revisitOn",
                           reason="out_of_order")


def _check_arrival_day(zone: tzinfo, times: dict[str, Any], field: str) -> None:
    """A patient arrives on the day the visit was planned for (the institution's date) or later, as an appointment's
    check-in opens on its day: an arrival before it is a typo of the day, month or year (found in review: an arrival
    `at` a year early was stored, and its whole span to the start counted as waiting time in the month's report).
    A visit booked for another day and come early is moved first (``visitUpdate`` of ``plannedAt``)."""
    arrived, planned = times.get("arrived_at"), times.get("planned_at")
    if arrived is not None and planned is not None and arrived.astimezone(zone).date() < planned.astimezone(
            zone).date():
        raise BadUserInput(f"{field}: the arrival must not be before the day the visit was planned for.",
                           field=field, reason="out_of_order")


def _check_order(values: dict[str, Any]) -> None:
    """Arrival, start and end follow each other; an end never comes before a start."""
    previous: tuple[str, datetime] | None = None
    for name in ("arrived_at", "started_at", "ended_at"):
        value = values.get(name)
        if value is None:
            continue
        if previous is not None and value < previous[1]:
            raise BadUserInput(f"{camel_case(name)}: must not be before {camel_case(previous[0])}.",
                               field=camel_case(name), reason="out_of_order")
        previous = (name, value)


def _checked_code(system: str, code: str, field_name: str) -> tuple[str, str]:
    """A code as stored (``core.validation.clinical_code``): ICD-10 codes in WHO's dotted form, checked against the
    classification; catalogue codes as the catalogue spells them (their existence is checked where they are
    recorded)."""
    return system, clinical_code(system, code, field_name)


def _code_index(ctx: Context, system: str, code: str) -> str:
    digest = access.blind_index(ctx, "code", f"{system}|{code}")
    assert digest is not None
    return digest
