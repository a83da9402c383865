"""The audit trail for compliance officers: identifiers and field names, never values."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from audit import archive, patient_index, writer
from audit.events import Action, Outcome
from core import statements
from core.errors import BadUserInput
from core.principal import PARTNER, STAFF
from core.validation import aware_time, clean_text
from models import AuditEvent, AuditPatientIndex, PartnerClient, Patient, RoleAssignment, Staff
from resolvers import access, audit_spelling, pagination
from resolvers.context import Context

CURSOR_KIND = "audit"


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    resource_type_name: str | None = None  # resource_type in the API's spelling (``FollowUpTask``)


# A page's events are the driver's rows (``statements.select_rows``), mappings of column name to value: a model
# instance per row was a tenth of a page's CPU (W4), and the schema reads each column once.
EventRow = Mapping[str, Any]
_OCCURRED_AT = AuditEvent._meta.fields_map["occurred_at"]


def occurred_at(row: EventRow) -> datetime:
    """An event row's time, aware: asyncpg gives it in UTC; SQLite's driver gives the text it keeps, parsed as the
    model parses it, in Tortoise's zone, which ``core.db`` sets to UTC (so both databases answer the same)."""
    value = row["occurred_at"]
    return value if isinstance(value, datetime) else cast(datetime, _OCCURRED_AT.to_python_value(value))


async def page(ctx: Context, *, first: int, after: str | None, where: AuditFilter,
               count: bool = False) -> pagination.Page[EventRow]:
    """Newest first, keyset-paged on the chain's sequence number; ``count``: also every event that matches the filter
    now (a later page counts those written since, which come before its first page: reading the trail is one)."""
    # A look at one patient's trail (who dealt with the file) is about that patient, as their access report is: on
    # their record, refused or not.
    decision = await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="audit_event",
                                      patient_id=where.patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    values = _filter_values(where)
    before = pagination.decode_int(CURSOR_KIND, after) if after else None
    await writer.seal(ctx.institution_id)
    # the page's SQL is built once per page size and filter shape (core.statements; W4 read the trail's newest page
    # with Tortoise building the same text each time)
    rows = await statements.select_rows(AuditEvent, ("audit_event.page", first), partial(_page_query, first + 1),
                                        institution_id=ctx.institution_id, before=before, **values)
    total = await _total(ctx.institution_id, values) if count else None
    ctx.reads.note("audit_event", None, where.patient_id, field_class="audit" if where.patient_id else None,
                   rule=decision.rule)  # reading the trail is itself on the trail
    return pagination.page_of(rows[:first], len(rows) > first, CURSOR_KIND, key=seq_of, total=total)


async def _total(institution_id: uuid.UUID, values: dict[str, Any]) -> int:
    """Every event that matches the filter now. The whole trail is not counted row by row (seconds on millions of
    events, for every portal that shows "N events"): the chain's head and archive anchor say how many rows it holds
    (``archive.events_held``, the same number). A filter counts the rows of the page's own condition, as
    ``pagination.count_of`` does."""
    if all(value is None for value in values.values()):
        return await archive.events_held(institution_id)
    return await AuditEvent.filter(_matching(institution_id=institution_id, **values)).count()


def seq_of(row: EventRow) -> int:
    """An event row's place in its chain: a page's cursor key."""
    return int(row["seq"])


def _filter_values(where: AuditFilter) -> dict[str, Any]:
    """The filter as the page's query binds it: checked, each value as it is compared (``_page_query`` passes them
    on unchanged, as core.statements requires)."""
    # A control character names no resource type, and PostgreSQL cannot compare with a NUL (issue 11). Checked
    # before the period, as the filter always checked them (its first error is the one answered).
    resource_type = _resource_type(where)
    # Compared as UTC (SQLite keeps timestamps as text, so an offset would compare as characters); a time without
    # its offset is refused, as the reports refuse it, rather than read as UTC: a Shanghai officer's wall time
    # taken as UTC was a window eight hours off, answered without a word.
    since = None if where.since is None else aware_time(where.since, "filter.from")
    until = None if where.until is None else aware_time(where.until, "filter.to")
    if since is not None and until is not None and since > until:
        raise BadUserInput("filter.from: must not be after filter.to.", field="filter.from")
    return {
        "actor_id": where.actor_id, "patient_id": where.patient_id, "resource_id": where.resource_id,
        "resource_type": resource_type,
        "action": None if where.action is None else Action(where.action).value,
        "outcome": None if where.outcome is None else Outcome(where.outcome).value,
        "since": since, "until": until,
    }


def _resource_type(where: AuditFilter) -> str | None:
    """The stored resource type the filter names, in either spelling; both must name the same."""
    stored = None if where.resource_type is None else clean_text(
        where.resource_type, field="filter.resourceType", max_length=1000)[:32]
    if where.resource_type_name is None:
        return stored
    named = audit_spelling.resource_type_of(clean_text(where.resource_type_name, field="filter.resourceTypeName",
                                                       max_length=1000))[:32]
    if stored is not None and stored != named:
        raise BadUserInput("filter.resourceTypeName: names another kind of record than filter.resourceType.",
                           field="filter.resourceTypeName")
    return named


def _page_query(limit: int, *, institution_id: uuid.UUID, before: int | None, **values: Any) -> QuerySet[AuditEvent]:
    """The institution's events before sequence number ``before`` that match the filter, newest first."""
    q = _matching(institution_id=institution_id, **values)
    if before is not None:
        q &= Q(seq__lt=before)
    return AuditEvent.filter(q).order_by("-seq").limit(limit)


def _matching(*, institution_id: uuid.UUID, actor_id: uuid.UUID | None, patient_id: uuid.UUID | None,
              resource_id: uuid.UUID | None, resource_type: str | None, action: str | None, outcome: str | None,
              since: datetime | None, until: datetime | None) -> Q:
    """The institution's events that match the filter (``_filter_values``): the page's condition and the count's."""
    q = Q(institution_id=institution_id)
    if actor_id is not None:
        q &= Q(actor_id=actor_id)
    if patient_id is not None:
        q &= patient_index.about_patient(institution_id, patient_id)
    if resource_type is not None:
        q &= Q(resource_type=resource_type)
    if resource_id is not None:
        q &= patient_index.about_record(resource_id)
    if action is not None:
        q &= Q(action=action)
    if outcome is not None:
        q &= Q(outcome=outcome)
    if since is not None:
        q &= Q(occurred_at__gte=since)
    if until is not None:
        q &= Q(occurred_at__lt=until)
    return q


def files_of_person(institution_id: uuid.UUID, patient_id: uuid.UUID) -> Subquery:
    """The ids of a patient's file and of the files merged into it (a merge points every file merged before at the
    survivor): one person's files, whose trail a report about that person reads whole."""
    return Subquery(Patient.filter(Q(id=patient_id) | Q(merged_into_id=patient_id),
                                   institution_id=institution_id).values("id"))


def about_person(institution_id: uuid.UUID, patient_id: uuid.UUID) -> Q:
    """The condition on ``AuditEvent`` rows about a patient's file or a file merged into it (found in review: after a
    merge, the survivor's access report, its disclosures and the patient's own "who viewed my record" left out
    every read of the merged file, a partner's included)."""
    sequence_numbers = AuditPatientIndex.filter(institution_id=institution_id,
                                                patient_id__in=files_of_person(institution_id, patient_id))
    return Q(institution_id=institution_id) & Q(seq__in=Subquery(sequence_numbers.values("seq")))


def within(query: Any, since: datetime | None, until: datetime | None, column: str = "occurred_at") -> Any:
    """Rows of a period (``since`` inclusive, ``until`` exclusive); times must carry a zone and are
    compared in UTC (SQLite keeps them as text)."""
    _zoned(since, until)
    if since is not None:
        query = query.filter(**{f"{column}__gte": since.astimezone(UTC)})
    if until is not None:
        query = query.filter(**{f"{column}__lt": until.astimezone(UTC)})
    return query


def check_period(since: datetime, until: datetime) -> None:
    """A period a report must have: both ends with a zone (a naive and an aware time do not even
    compare), the end after the start."""
    _zoned(since, until)
    if until <= since:
        raise BadUserInput("to: the period must end after it starts.", field="to")


def _zoned(since: datetime | None, until: datetime | None) -> None:
    for moment, name in ((since, "from"), (until, "to")):
        if moment is not None:
            aware_time(moment, name)


@dataclass(frozen=True)
class Who:
    """Who did something, as the trail's readers may see them: no contact details."""

    name: str  # a staff member's name, or a partner's
    roles: list[str]  # a staff member's roles
    client: str = ""  # a partner's API client


async def who(institution_id: uuid.UUID, actors: Iterable[tuple[str, Any]]) -> dict[tuple[str, Any], Who]:
    """The institution's staff by name and roles, its partner clients by their partner's name: three statements for
    any number of (actor kind, actor id) pairs. An actor of another institution on its trail stays unnamed (found
    in review: a reset code refused there named the signed-in staff member of another institution who sent it)."""
    wanted = {(kind, actor) for kind, actor in actors if actor is not None}
    staff = [actor for kind, actor in wanted if kind == STAFF]
    clients = [actor for kind, actor in wanted if kind == PARTNER]
    roles: dict[Any, list[str]] = defaultdict(list)
    ours = {"institution_id": institution_id}
    for staff_id, role in await RoleAssignment.filter(**ours, staff_id__in=staff).order_by("role").values_list(
            "staff_id", "role"):
        roles[staff_id].append(str(role))
    found = {(STAFF, staff_id): Who(str(name), roles.get(staff_id, []))
             for staff_id, name in await Staff.filter(**ours, id__in=staff).values_list("id", "name")}
    found |= {(PARTNER, client_id): Who(str(partner), [], str(client)) for client_id, client, partner in
              await PartnerClient.filter(**ours, id__in=clients).values_list("id", "name", "partner__name")}
    return found
