"""Alerts on a patient's file (FHIR Flag) and the check-in alert.

A flag is reached through its patient: the patient must be in the caller's reach (out of reach looks
missing), its kind, status and period are read under the identity class of the file, and its detail
under the class of what it says (``policies.fields.FLAG_DETAIL_CLASS``): the front desk reads
"large print, accompanied" on a special-needs flag, never the text of an allergy. Writing a detail
needs the right to write that class of this patient's file. Flags of the internal kinds (VIP,
difficult payer) are staff-only labels like the segments: whoever may not read the internal class
on the file (a partner) is not shown them at all, since their kind alone says it.

The check-in alert (``watch_check_ins``) follows the live ticket queue: before each look the
subscriber signs in again and its rights are decided afresh; it is woken by check-ins in this
process and polls the database for other workers'. What it sends is read through the same doors and
noted on the audit trail like any read.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput
from core.ids import uuid7
from core.principal import STAFF
from core.validation import EARLIEST_RECORD_YEAR, Problems, camel_case, check_year, clean_text, one_of
from models import Flag, Visit
from models.fields import tags_from_db
from models.flag import FLAG_KINDS, FLAG_STATUSES
from policies.fields import ENCRYPTED_FIELDS, FLAG_DETAIL_CLASS, IDENTITY, INTERNAL
from resolvers import access, loaders, pagination, session, versioning
from resolvers import institution as institutions
from resolvers import visit as visits
from resolvers.access import PatientView
from resolvers.context import Context
from resolvers.visit import VisitView

DETAIL_LIMIT = 500
LEGACY_LIMIT = 500  # the unpaged ``patientFlags`` list (deprecated) stops here
# A file's alerts in force as the patient page (``Patient.flags``) and a check-in alert list them stop here, oldest
# first (found in review: neither was bounded, on a page of up to 100 files); every one pages through
# ``patientFlagsConnection``.
IN_FORCE_LIMIT = 50
CURSOR = "flag"
# The kinds that alert the desk when their patient checks in (a difficult payer does not, but is shown
# with the others when a check-in alerts).
ALERT_KINDS = frozenset({"vip", "special_needs", "fall_risk", "allergy", "clinical_alert"})
# A flag's fields other than the detail: identity of the file.
IDENTITY_FIELDS = frozenset({"kind", "status", "starts_on", "ends_on", "created_at", "updated_at"})
# FHIR Flag statuses: entered in error is final; active and inactive go back and forth.
STATUS_MOVES: dict[str, frozenset[str]] = {
    "active": frozenset({"active", "inactive", "entered_in_error"}),
    "inactive": frozenset({"active", "inactive", "entered_in_error"}),
    "entered_in_error": frozenset({"entered_in_error"}),
}


@dataclass(frozen=True)
class FlagView:
    row: Flag
    patient: PatientView


# -- reading -----------------------------------------------------------------------------------


def detail_class(row: Flag) -> str:
    return FLAG_DETAIL_CLASS[row.kind]


def read_field(ctx: Context, view: FlagView, name: str) -> Any:
    """A flag's field under its class on the patient's file; the detail opened only when asked for."""
    if name == "detail":
        return access.read_journey_field(ctx, view.patient, "flag", view.row, "detail", detail_class(view.row))
    if name not in IDENTITY_FIELDS:
        raise AttributeError(name)
    access.require_class(ctx, view.patient, IDENTITY)
    return getattr(view.row, name)


INTERNAL_KINDS = tuple(sorted(kind for kind, field_class in FLAG_DETAIL_CLASS.items() if field_class == INTERNAL))


def shown(view: PatientView, row: Flag) -> bool:
    """Internal flags are listed only to those who read the internal class on the file."""
    return detail_class(row) != INTERNAL or INTERNAL in view.classes


def in_force(today: date) -> Q:
    """Active flags whose period holds ``today`` (the institution's local date)."""
    return (Q(status="active") & (Q(starts_on=None) | Q(starts_on__lte=today))
            & (Q(ends_on=None) | Q(ends_on__gte=today)))


async def of_patient(ctx: Context, patient_id: uuid.UUID | None, *, in_force_only: bool = True) -> list[FlagView]:
    """A patient's flags (in force today, by default), oldest first, at most LEGACY_LIMIT (the deprecated
    unpaged list)."""
    patient = await _patient(ctx, patient_id)
    rows = await (await _of(ctx, patient, in_force_only)).limit(LEGACY_LIMIT)
    access.require_class(ctx, patient, IDENTITY)  # the list says which alerts stand: noted even when empty
    return [FlagView(row, patient) for row in rows]


async def page_of_patient(ctx: Context, patient_id: uuid.UUID | None, *, in_force_only: bool = True, first: int,
                          after: str | None, count: bool = False) -> pagination.Page[FlagView]:
    """A patient's flags (in force today, by default), oldest first, a page at a time: the flags hidden from the
    caller are left out in SQL, so a page is never short of them."""
    patient = await _patient(ctx, patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = await _of(ctx, patient, in_force_only)
    total = await pagination.count_of(query, count)  # the flags hidden from the caller left out, as from its pages
    if after:  # "" is no cursor: the first page, as null (every list alike)
        query = query.filter(id__gt=pagination.decode_uuid(CURSOR, after))
    rows = await query.limit(first + 1)
    access.require_class(ctx, patient, IDENTITY)  # the list says which alerts stand: noted even when empty
    views = [FlagView(row, patient) for row in rows[:first]]
    return pagination.page_of(views, len(rows) > first, CURSOR, lambda view: view.row.id, total)


async def _patient(ctx: Context, patient_id: uuid.UUID | None) -> PatientView:
    await access.authorize(ctx, "flag", "read", action=Action.READ, resource_type="flag", patient_id=patient_id)
    patient = await access.find_patient(ctx, patient_id, action=Action.READ, field="patientId")
    await access.require_section_reached(ctx, patient, "flag", resource_type="flag")
    return patient


async def _of(ctx: Context, patient: PatientView, in_force_only: bool) -> QuerySet[Flag]:
    """The patient's flags the caller is shown (``shown``, in SQL), oldest first."""
    query = Flag.filter(institution_id=ctx.institution_id, patient_id=patient.row.id)
    if INTERNAL not in patient.classes:
        query = query.exclude(kind__in=INTERNAL_KINDS)
    if in_force_only:
        query = query.filter(in_force(await institutions.local_today_of(ctx)))
    return query.order_by("id")


async def in_force_of(ctx: Context, patient: PatientView) -> list[FlagView]:
    """A patient page's alerts in force (batched across patients), oldest first, at most IN_FORCE_LIMIT."""
    access.require_section(ctx, patient, "flag")

    async def batch(files: Sequence[tuple[uuid.UUID, bool]]) -> list[Standing]:
        found = await _standing(ctx, files, await institutions.local_today_of(ctx))
        return [found[patient_id] for patient_id, _ in files]

    standing = await ctx.require_loaders().made("flags_in_force", batch).load(
        (patient.row.id, INTERNAL in patient.classes))
    access.require_class(ctx, patient, IDENTITY)
    return [FlagView(row, patient) for row in standing.flags]


@dataclass(frozen=True)
class Standing:
    """A file's alerts in force that its reader is shown."""

    flags: list[Flag]  # the first IN_FORCE_LIMIT, oldest first
    kinds: frozenset[str]  # of all of them, the bound aside


async def _standing(ctx: Context, files: Sequence[tuple[uuid.UUID, bool]], today: date) -> dict[uuid.UUID, Standing]:
    """The alerts in force on each file (its id, and whether its reader reads the internal class: ``shown``, in
    SQL), two statements whatever the number of files and alerts (``loaders.newest_per_parent_noting``): the ids
    and kinds of them all, then the rows of the first IN_FORCE_LIMIT of each file."""
    if not files:
        return {}
    shown_internal = sorted({patient_id for patient_id, internal in files if internal})
    no_internal = sorted({patient_id for patient_id, internal in files if not internal})
    reach = [Q(patient_id__in=shown_internal)] if shown_internal else []
    if no_internal:
        reach.append(Q(patient_id__in=no_internal) & ~Q(kind__in=INTERNAL_KINDS))
    query = Flag.filter(in_force(today), Q(*reach, join_type=Q.OR), institution_id=ctx.institution_id)
    found = await loaders.newest_per_parent_noting(query, "patient_id", sorted({pid for pid, _ in files}), ("id",),
                                                   IN_FORCE_LIMIT, "kind")
    return {patient_id: Standing(found.rows.get(patient_id, []), frozenset(found.noted.get(patient_id, ())))
            for patient_id, _ in files}


async def find(ctx: Context, flag_id: uuid.UUID | None, action: Action) -> FlagView:
    """A flag of a patient in reach; NOT_FOUND (recorded) when missing, out of reach or another institution's."""
    # The reach is in the lookup: a flag out of reach costs what a missing one does (no statement more).
    query = None if flag_id is None else access.about_reached(access.section_scope(ctx, "flag"), Flag)
    row = None if query is None else await query.get_or_none(id=flag_id)
    patient = None if row is None else await access.visible_patient(ctx, row.patient_id)
    if row is None or patient is None or not shown(patient, row):
        raise await access.not_found(ctx, action, "flag", flag_id)
    return FlagView(row, patient)


# -- writing -----------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> FlagView:
    decision = await access.authorize(ctx, "flag", "create", action=Action.CREATE, resource_type="flag",
                                      patient_id=data.get("patient_id"))
    problems = Problems()  # every problem of the input at once, before the patient is looked up
    with problems.collect("kind"):
        kind = one_of(data.get("kind"), FLAG_KINDS, "kind")
    values = problems.each({name: value for name, value in data.items() if name not in ("patient_id", "kind")}, _value)
    values.pop("status", None)
    values.setdefault("starts_on", await institutions.local_today_of(ctx))
    _check_period(problems, values.get("starts_on"), values.get("ends_on"))
    problems.check()
    patient = await access.find_patient(ctx, data.get("patient_id"), action=Action.CREATE, field="patientId")
    await access.require_section_reached(ctx, patient, "flag", resource_type="flag", act="create")
    if values.get("detail") is not None:
        await _check_detail_rights(ctx, patient, kind, Action.CREATE)
    if patient.row.status != "active":
        raise BadUserInput(f"patientId: the file is {patient.row.status}; alerts are for active files.",
                           field="patientId")
    principal = ctx.require_principal()
    flag_id = uuid7()
    async with access.file_transaction(ctx, patient.row.id, action=Action.CREATE, active="alerts"):
        row = await Flag.create(id=flag_id, institution_id=ctx.institution_id, patient_id=patient.row.id, kind=kind,
                                status="active", author_id=principal.user_id if principal.kind == STAFF else None,
                                **_columns(ctx, flag_id, values))
        await writer.append([access.write_record(ctx, Action.CREATE, "flag", flag_id, patient_id=patient.row.id,
                                                 fields=frozenset({"kind", "status", *_written(values)}),
                                                 decision=decision)])
    return FlagView(row, patient)


async def update(ctx: Context, flag_id: uuid.UUID | None, data: dict[str, Any],
                 version: int | None = None) -> FlagView:
    """Change a flag's detail or period, or its status (INACTIVE to deactivate it, ENTERED_IN_ERROR
    when it should never have been raised). Its kind never changes: raise another flag."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "flag", "update", action=Action.UPDATE, resource_type="flag",
                                      resource_id=flag_id)
    view = await find(ctx, flag_id, Action.UPDATE)
    # changed where a role allowed to change alerts reaches the file, not wherever one reading them does (found in
    # review: a support agent who is also a nurse of department B closed the alerts of every department)
    await access.require_section_reached(ctx, view.patient, "flag", resource_type="flag", act="update",
                                         resource_id=view.row.id)
    row = view.row
    problems = Problems()
    values = problems.each(data, _value)
    if values.get("status") is not None and values["status"] not in STATUS_MOVES[row.status]:
        problems.add("status", ILLEGAL_TRANSITION,
                     f"a flag {row.status.upper()} cannot become {values['status'].upper()}.")
    _check_period(problems, values.get("starts_on", row.starts_on), values.get("ends_on", row.ends_on))
    problems.check()
    if row.status == "entered_in_error" and data.keys() - {"status"}:  # its status named again changes nothing else
        raise BadUserInput("id: a flag entered in error is not changed any more.", field="id",
                           reason=ILLEGAL_TRANSITION)
    if "detail" in values:
        await _check_detail_rights(ctx, view.patient, row.kind, Action.UPDATE)
    columns = _columns(ctx, row.id, values)
    # The file held first, as a merge locks it before it moves the flag: merged since the flag was found, the change
    # goes on the survivor's trail if the caller still reaches the flag there, as ``find`` would ask after the merge
    # (found in review: recorded on the merged file, without asking), as a follow-up task's writes do.
    needs = detail_class(row) if "detail" in values or detail_class(row) == INTERNAL else IDENTITY
    following = access.following_survivor(ctx, Action.UPDATE, "flag", row.id, needs=needs, section="flag")
    async with following as hold, in_transaction():
        patient = await hold(view.patient.row.id) or view.patient
        await versioning.update_versioned(row, version, "flag", **columns)
        await writer.append([access.write_record(ctx, Action.UPDATE, "flag", row.id, patient_id=patient.row.id,
                                                 fields=frozenset(_written(values)), decision=decision)])
    fresh = await Flag.get(id=row.id, institution_id=ctx.institution_id)
    return FlagView(fresh, patient)


async def _check_detail_rights(ctx: Context, patient: PatientView, kind: str, action: Action) -> None:
    """Writing a flag's detail needs the right to write its class on this patient's file (and to read it there)."""
    await access.require_class_write(ctx, patient, FLAG_DETAIL_CLASS[kind], action=action, resource_type="flag")


def _value(name: str, value: Any) -> Any:
    field_name = camel_case(name)
    if name == "detail":
        return None if value is None else clean_text(value, field=field_name, max_length=DETAIL_LIMIT, min_length=1)
    if name == "status":
        if value is None:
            raise BadUserInput("status: must not be null.", field="status", reason="required")
        return one_of(value, FLAG_STATUSES, field_name)
    if name in ("starts_on", "ends_on"):
        if value is not None:  # a flag may record a long-standing condition, as far back as a visit
            check_year(value, field_name, first=EARLIEST_RECORD_YEAR)
        return value
    raise BadUserInput(f"{field_name}: cannot be changed.", field=field_name)


def _check_period(problems: Problems, starts_on: date | None, ends_on: date | None) -> None:
    if starts_on is not None and ends_on is not None and ends_on < starts_on and not problems.has("endsOn"):
        problems.add("endsOn", "invalid", "must not be before startsOn.")


def _columns(ctx: Context, flag_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    return {name: access.seal(ctx, "flag", name, flag_id, value) if name in ENCRYPTED_FIELDS["flag"] else value
            for name, value in values.items()}


def _written(values: dict[str, Any]) -> set[str]:
    return set(values)



# -- the check-in alert ------------------------------------------------------------------------

WATCH_POLL_SECONDS = 2.0
WATCH_BATCH = 100
# Each look goes back this far, so that a check-in committed a little after a later one is not
# skipped; what was already looked at is remembered (up to REMEMBERED visits) and not sent twice.
LOOKBACK = timedelta(seconds=10)
REMEMBERED = 10_000


@dataclass(frozen=True)
class CheckInAlert:
    visit: VisitView
    patient: PatientView
    flags: list[FlagView]
    vip_segment: bool


async def watch_check_ins(ctx: Context, department_id: uuid.UUID | None,
                          poll_seconds: float = WATCH_POLL_SECONDS) -> AsyncIterator[CheckInAlert]:
    """Check-ins (a visit becoming ARRIVED) of patients with an alert in force or in the VIP segment,
    from now on, in the caller's reach (and the department, when given).

    Needs ``visit: read`` and ``flag: read``, decided again before each look after signing in again:
    a revoked token or a lost role ends the subscription.
    """
    started = datetime.now(UTC)
    since = started
    seen: OrderedDict[uuid.UUID, None] = OrderedDict()
    while True:
        await session.sign_in(ctx)
        ctx.forget_decisions()
        await access.authorize(ctx, "visit", "read", action=Action.READ, resource_type="visit")
        await access.authorize(ctx, "flag", "read", action=Action.READ, resource_type="flag")
        reached = visits.in_reach(ctx)
        if reached is not None:
            query = reached.filter(status="arrived")
            if department_id is not None:
                query = query.filter(department_id=department_id)
            key: tuple[datetime, uuid.UUID] = (max(started, since - LOOKBACK), uuid.UUID(int=0))
            local_today = await institutions.local_today_of(ctx)
            while True:
                rows = await (query.filter(Q(updated_at__gt=key[0]) | Q(updated_at=key[0], id__gt=key[1]))
                              .order_by("updated_at", "id").limit(WATCH_BATCH))
                fresh = [row for row in rows if row.id not in seen]
                for row in fresh:
                    seen[row.id] = None
                while len(seen) > REMEMBERED:
                    seen.popitem(last=False)
                for alert in await _alerts(ctx, fresh, local_today):
                    yield alert
                if rows:
                    key = (rows[-1].updated_at, rows[-1].id)
                    since = max(since, rows[-1].updated_at)
                if len(rows) < WATCH_BATCH:
                    break
            await access.flush_reads(ctx)
        await ctx.services.visit_changes.wait(poll_seconds)


async def _alerts(ctx: Context, rows: list[Visit], local_today: date) -> list[CheckInAlert]:
    """The check-ins among ``rows`` that alert the caller: one statement for their patients in reach and
    two for the flags of all of them (at most IN_FORCE_LIMIT each; whether one alerts counts them all)."""
    patients = access.scoped_patients(ctx)
    if not rows or patients is None:
        return []
    patient_ids = sorted({row.patient_id for row in rows})
    found = {view.row.id: view for view in await access.views(ctx, await patients.filter(id__in=patient_ids))
             if access.section_reached(ctx, view, "flag")}  # their alerts read where a role reading alerts reaches
    flags = await _standing(ctx, [(view.row.id, INTERNAL in view.classes) for view in found.values()], local_today)
    alerts = []
    for row in rows:
        patient = found.get(row.patient_id)
        if patient is None or IDENTITY not in patient.classes:
            continue
        standing = flags[row.patient_id]
        vip = "vip" in tags_from_db(patient.row.segments)
        if not (standing.kinds & ALERT_KINDS or (vip and INTERNAL in patient.classes)):
            continue
        # The event itself says that this patient has just checked in: an identity read of the file.
        access.require_class(ctx, patient, IDENTITY)
        alerts.append(CheckInAlert(VisitView(row, patient), patient,
                                   [FlagView(flag, patient) for flag in standing.flags], vip))
    return alerts


def read_vip_segment(ctx: Context, alert: CheckInAlert) -> bool:
    """Whether the patient is in the VIP segment: the internal class of the file."""
    access.require_class(ctx, alert.patient, INTERNAL)
    return alert.vip_segment
