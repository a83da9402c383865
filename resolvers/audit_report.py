"""Compliance reports over the audit trail: who accessed a patient's file, and who reads far more
files than their peers. For compliance officers (``audit: read``); aggregates of the trail, so
they show field classes and names, never patient data. The access report also reads in words
(``resolvers.audit_words``) and in the institution's time zone, and exports for people (PDF, CSV)
and the institution's trail (NDJSON with its signed end) go out over HTTP (``app/compliance.py``).
"""

from __future__ import annotations

import operator
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from tortoise.expressions import Q, Subquery
from tortoise.functions import Max
from tortoise.queryset import QuerySet

from audit import checkpoint, export, writer
from audit.events import Action, AuditRecord, Outcome
from core import access_report_document as documents
from core.errors import BadUserInput
from core.validation import check_year
from models import AuditChainHead, AuditEvent, Institution, Patient, Staff
from policies.guard import Decision
from resolvers import access, audit_spelling, audit_words, compliance_alert, pagination
from resolvers.audit_event import about_person, check_period, who, within
from resolvers.context import Context

MAX_FACTOR = 100.0
LEGACY_LIMIT = 500  # the unpaged ``patientAccessReport`` list (deprecated) stops here
REPORT_CURSOR = "audit_report"
MAX_EXPORT_DAYS = 366  # the longest period one export covers: a year, leap day included
REPORT_FORMATS = ("pdf", "csv")


@dataclass
class Accessor:
    """One person's (or client's) dealings with one patient's file in a period."""

    actor_kind: str
    actor_id: uuid.UUID | None
    name: str
    roles: list[str]
    reads: int = 0
    writes: int = 0
    denied: int = 0
    field_classes: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    field_names: set[str] = field(default_factory=set)  # ``fields`` in the API's spelling (``audit_spelling``)
    rules: set[str] = field(default_factory=set)
    tokens: set[uuid.UUID] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    first_at: datetime | None = None
    last_at: datetime | None = None
    last_seq: int = 0  # their last event's place on the trail: the order of the report's pages
    person: str = ""  # a staff member's or partner's own name, without the client
    partner: str = ""  # a partner client's partner
    client: str = ""  # a partner's API client
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # the institution's
    actions: Counter[str] = field(default_factory=Counter)  # allowed actions, by action
    refused: Counter[str] = field(default_factory=Counter)  # refused attempts, by action

    def role_words(self, language: str = audit_words.EN) -> str:
        """Their roles in words; for others what they are (the patient, a care partner, the system)."""
        if self.roles:
            return ", ".join(audit_words.role(r, language) for r in self.roles)
        return audit_words.kind(self.actor_kind, language)

    def display_name(self, language: str = audit_words.EN) -> str:
        if self.person:
            return self.person + (f" ({self.client})" if self.client else "")
        return audit_words.kind(self.actor_kind, language)

    def what(self, language: str = audit_words.EN) -> list[str]:
        """What they did, in words: "read 2 times: identity details, health information", "refused 1 time"."""
        classes = ", ".join(audit_words.field_class(c, language) for c in sorted(self.field_classes))
        said = [_times(audit_words.action(a, language), n, language) for a, n in sorted(self.actions.items())]
        said += [_times(audit_words.outcome("denied", language) + " " + audit_words.action(a, language), n, language)
                 for a, n in sorted(self.refused.items())]
        if classes and said:
            said[0] += ("：" if language == audit_words.ZH_CN else ": ") + classes
        return said

    def allowed_by(self, language: str = audit_words.EN) -> list[str]:
        return sorted({words for line in self.rules for words in audit_words.rules(line, language)})

    def fields_in_words(self, language: str = audit_words.EN) -> list[str]:
        return sorted(audit_words.field(f, language) for f in self.fields)

    def local(self, moment: datetime | None) -> str:
        return local_time(moment, self.zone)


@dataclass(frozen=True)
class Export:
    """A document for people, ready to go out."""

    filename: str
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Anomaly:
    staff_id: uuid.UUID
    name: str
    role: str
    patients_read: int
    role_median: float
    peers: int

    @property
    def ratio(self) -> float:
        return self.patients_read / max(self.role_median, 1.0)


async def patient_access(ctx: Context, patient_id: uuid.UUID | None, since: datetime | None,
                         until: datetime | None) -> list[Accessor]:
    """Who read or changed which field classes of a patient's file, when, under which rule, through
    which token and client; most recent first, at most LEGACY_LIMIT people (the deprecated unpaged list)."""
    found = await _check_report(ctx, patient_id)
    _check_open_period(since, until)
    page = await _accessors(ctx, found, since, until, limit=LEGACY_LIMIT, after=None)
    return [person for _, person in page.items]


async def patient_access_page(ctx: Context, patient_id: uuid.UUID | None, since: datetime | None,
                              until: datetime | None, *, first: int, after: str | None,
                              count: bool = False) -> pagination.Page[Accessor]:
    """``patient_access`` a page of people at a time, whose last dealing with the file is the most recent
    first. The first page fixes the trail's events the report counts (up to the latest one it shows): later
    pages count no newer event (reading the report is one), so nobody moves between pages while they are
    read. A page costs the same statements whatever its size: its people, their events, their names (and with
    ``count``, the people the report counts, up to the same event)."""
    found = await _check_report(ctx, patient_id)
    _check_open_period(since, until)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    return await _accessors(ctx, found, since, until, limit=first, after=after, count=count)


async def _check_report(ctx: Context, patient_id: uuid.UUID | None) -> uuid.UUID:
    """The patient whose report a compliance officer asks for: any of the institution's."""
    await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="audit_report",
                           resource_id=patient_id, patient_id=patient_id)  # a refusal is on the file's record too
    if patient_id is None or not await Patient.exists(id=patient_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "patient", patient_id, "patientId")
    return patient_id


def _check_open_period(since: datetime | None, until: datetime | None) -> None:
    """A report's period, either end open: given both, it must end after it starts (found in review: a period the
    wrong way round answered an empty report, "nobody dealt with the file", where every other reading of the trail
    refuses it)."""
    if since is not None and until is not None:
        check_period(since, until)


async def _accessors(ctx: Context, patient_id: uuid.UUID, since: datetime | None, until: datetime | None, *,
                     limit: int, after: str | None, count: bool = False) -> pagination.Page[Accessor]:
    """A page of the people who dealt with the file, in the order of their last event on the trail, newest
    first; a cursor holds the last event the report counts and the last event of the page's last person."""
    counted, before = pagination.decode_int_pair(REPORT_CURSOR, after) if after else (None, None)  # "": first
    await writer.seal(ctx.institution_id)
    events = within(AuditEvent.filter(about_person(ctx.institution_id, patient_id)), since, until)
    actors = events.annotate(last_seq=Max("seq")).group_by("actor_kind", "actor_id")
    if counted is not None:
        actors = actors.filter(seq__lte=counted, last_seq__lt=before)
    keys = await actors.order_by("-last_seq").limit(limit + 1).values("actor_kind", "actor_id", "last_seq")
    shown = keys[:limit]
    if counted is None:  # the first page: its newest event bounds every page, events written since not counted
        counted = int(shown[0]["last_seq"]) if shown else 0
    # the people of every page: those with an event up to the same one, each counted once by its last event (a
    # grouped query's count() counts its rows, not its groups: found in review)
    upto = events.filter(seq__lte=counted)
    last_events = upto.annotate(last_seq=Max("seq")).group_by("actor_kind", "actor_id").values("last_seq")
    total = await pagination.count_of(upto.filter(seq__in=Subquery(last_events)), count)
    rows = await _rows(events.filter(_any_of(shown), seq__lte=counted)) if shown else []
    people = await _people(ctx, rows) if rows else []
    people.sort(key=lambda person: person.last_seq, reverse=True)
    ctx.reads.note("audit_report", patient_id, patient_id, field_class="audit", rule=ctx.decide("audit", "read").rule)
    return pagination.page_of(people, len(keys) > limit, REPORT_CURSOR, lambda p: f"{counted}.{p.last_seq}", total)


def _any_of(actors: list[dict[str, Any]]) -> Q:
    """The events of these actors (an anonymous or system actor has no id)."""
    return reduce(operator.or_, (Q(actor_kind=a["actor_kind"], actor_id=a["actor_id"]) if a["actor_id"] is not None
                                 else Q(actor_kind=a["actor_kind"], actor_id__isnull=True) for a in actors))


async def authorize_export(ctx: Context, resource_type: str, patient_id: uuid.UUID | None = None) -> Decision:
    """The right to export the trail (``audit_event``) or a patient's report (``audit_report``): a refusal is
    recorded and FORBIDDEN, on the patient's record for a report, as the allowed export and ``_check_report`` are."""
    return await access.authorize(ctx, "audit", "read", action=Action.EXPORT, resource_type=resource_type,
                                  resource_id=patient_id, patient_id=patient_id)


async def patient_access_export(ctx: Context, patient_id: uuid.UUID | None, since_text: str | None,
                                until_text: str | None, fmt: str, language: str) -> Export:
    """A patient's access report as a PDF or a CSV for people: names, roles, partners, local times and plain
    actions. The period comes as the URL's text, checked once the caller is known to be allowed. The export is
    on the trail (action export, on the patient's report) before a byte leaves."""
    decision = await authorize_export(ctx, "audit_report", patient_id)
    if patient_id is None or not await Patient.exists(id=patient_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.EXPORT, "patient", patient_id, "patientId")
    if fmt not in REPORT_FORMATS:
        raise BadUserInput("format: pdf or csv.", field="format")
    if language not in audit_words.LANGUAGES:
        raise BadUserInput("language: en or zh-CN.", field="language")
    since, until = export_period(_moment(since_text, "from"), _moment(until_text, "to"))
    rows = await _events(ctx, patient_id, since, until)
    people = await _people(ctx, rows)
    institution = await Institution.get(id=ctx.institution_id)
    zone = ZoneInfo(institution.time_zone)
    by_actor = {(p.actor_kind, p.actor_id): p for p in people}
    document = documents.AccessReportDocument(
        institution=institution.name, patient_id=str(patient_id),
        period=f"{local_time(since, zone)} – {local_time(until, zone)}", zone=institution.time_zone,
        made=local_time(datetime.now(UTC), zone), language=language,
        people=tuple(_person_line(p, language) for p in people),
        events=tuple(_event_line(row, by_actor, zone, language) for row in rows))
    # Rendering a year of accesses takes a while: off the event loop, so other requests go on meanwhile.
    if fmt == "pdf":
        body = await anyio.to_thread.run_sync(documents.render_pdf, document)
    else:
        body = documents.render_csv(document).encode("utf-8")
    await _record_export(ctx, "audit_report", patient_id, decision.rule, fmt, since, until, events=len(rows))
    return Export(f"access-report-{patient_id}.{fmt}", "application/pdf" if fmt == "pdf" else
                  "text/csv; charset=utf-8", body)


async def trail_export(ctx: Context, since_text: str | None, until_text: str | None) -> AsyncIterator[str]:
    """The institution's trail of a period as NDJSON, the evidence ``careloop audit verify --export`` checks:
    the events up to the chain's head when the export began, then a checkpoint signed at its last event (so it
    verifies on its own however many checkpoints are signed after it). Authorized, checked and on the trail
    before the first line; the lines are read in batches as they are sent."""
    decision = await authorize_export(ctx, "audit_event")
    since, until = export_period(_moment(since_text, "from"), _moment(until_text, "to"))
    institution_id = ctx.institution_id
    await writer.seal(institution_id)
    head = await AuditChainHead.filter(institution_id=institution_id).first()
    up_to_seq = head.last_seq if head is not None else 0
    await _record_export(ctx, "audit_event", None, decision.rule, export.EVIDENCE, since, until,
                         through_seq=up_to_seq)
    key = ctx.services.master_key.checkpoint_key
    return _trail_lines(institution_id, since, until, up_to_seq, key)


async def _trail_lines(institution_id: uuid.UUID, since: datetime, until: datetime, up_to_seq: int,
                       key: Any) -> AsyncIterator[str]:
    first_seq, last_seq, last_hash = 0, 0, ""
    async for row in export.rows(institution_id, since.astimezone(UTC), until.astimezone(UTC),
                                 up_to_seq=up_to_seq):
        last_seq, last_hash = int(row["seq"]), str(row["hash"])
        first_seq = first_seq or last_seq
        yield export.line(export.EVIDENCE, row)
    if last_seq:
        yield export.end_line(checkpoint.sign(key, institution_id, last_seq, last_hash, datetime.now(UTC),
                                              first_seq=first_seq))


def export_period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """An export's period: up to now and the year before when not given; zoned, at most a year long."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=MAX_EXPORT_DAYS)
    check_period(since, until)
    if until - since > timedelta(days=MAX_EXPORT_DAYS):
        raise BadUserInput(f"from: an export covers at most {MAX_EXPORT_DAYS} days; split the period.", field="from")
    return since, until


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace(" ", "+"))  # a "+" left unencoded in a URL reads as a space
    except ValueError:
        raise BadUserInput(f"{name}: an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00+08:00.",
                           field=name) from None
    check_year(moment, name)  # the period is counted back a year from it
    return moment


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time as a person there reads it: "2026-12-03 03:30:12" in the institution's zone."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(zone):%Y-%m-%d %H:%M:%S}"


async def _record_export(ctx: Context, resource_type: str, patient_id: uuid.UUID | None, rule: str, fmt: str,
                         since: datetime, until: datetime, **counts: int) -> None:
    """The export on the trail, durable before a byte leaves: who, what, which period (never its content)."""
    details = {f"format:{fmt}", f"from:{since.astimezone(UTC).isoformat()}", f"to:{until.astimezone(UTC).isoformat()}",
               *(f"{name}:{n}" for name, n in counts.items())}
    await ctx.services.audit.append([AuditRecord(
        ctx.institution_id, ctx.actor, Action.EXPORT, resource_type, Outcome.ALLOWED, ctx.request,
        resource_id=patient_id, patient_id=patient_id, field_classes=frozenset({"audit"}),
        fields_read=frozenset(details), policy_rule=rule)])
    ctx.recorded = True


async def _events(ctx: Context, patient_id: uuid.UUID, since: datetime | None,
                  until: datetime | None) -> list[dict[str, Any]]:
    await writer.seal(ctx.institution_id)
    return await _rows(within(AuditEvent.filter(about_person(ctx.institution_id, patient_id)), since, until))


async def _rows(events: QuerySet[AuditEvent]) -> list[dict[str, Any]]:
    """What the report says of each event, in the trail's order."""
    return list(await events.order_by("seq").values("seq", "actor_kind", "actor_id", "token_id", "action",
                                                    "outcome", "field_classes", "fields_read", "policy_rule",
                                                    "resource_type", "user_agent", "occurred_at"))


async def _people(ctx: Context, rows: list[dict[str, Any]]) -> list[Accessor]:
    zones = await Institution.filter(id=ctx.institution_id).values_list("time_zone", flat=True)
    zone = ZoneInfo(str(zones[0]) if zones else "UTC")
    people: dict[tuple[str, Any], Accessor] = {}
    for row in rows:
        key = (row["actor_kind"], row["actor_id"])
        if key not in people:
            people[key] = Accessor(row["actor_kind"], row["actor_id"], "", [], zone=zone)
        _count(people[key], row)
    await _name(ctx, list(people.values()))
    return sorted(people.values(), key=lambda p: p.last_at or datetime.min, reverse=True)


def _times(what: str, n: int, language: str) -> str:
    if language == audit_words.ZH_CN:
        return f"{what} {n} 次"
    return f"{what} {n} time{'' if n == 1 else 's'}"


def _person_line(person: Accessor, language: str) -> documents.PersonLine:
    return documents.PersonLine(who=person.display_name(language), role=person.role_words(language),
                                partner=person.partner, summary="; ".join(person.what(language)),
                                first=person.local(person.first_at), last=person.local(person.last_at))


def _event_line(row: dict[str, Any], people: dict[tuple[str, Any], Accessor], zone: ZoneInfo,
                language: str) -> documents.EventLine:
    person = people[(row["actor_kind"], row["actor_id"])]
    classes = [c for c in str(row["field_classes"]).split(",") if c]
    fields = [f for f in str(row["fields_read"]).split(",") if f]
    return documents.EventLine(
        time=local_time(row["occurred_at"], zone), who=person.display_name(language),
        role=person.role_words(language), partner=person.partner,
        action=audit_words.action(str(row["action"]), language),
        outcome=audit_words.outcome(str(row["outcome"]), language),
        what=", ".join(audit_words.field_class(c, language) for c in sorted(classes)),
        fields=", ".join(sorted(audit_words.field(f, language) for f in fields)),
        allowed_by="; ".join(audit_words.rules(str(row["policy_rule"]), language)))


async def anomalies(ctx: Context, since: datetime, until: datetime, *, factor: float,
                    minimum: int) -> list[Anomaly]:
    """Staff who read more distinct patient files in the period than ``factor`` times the median of
    the colleagues holding the same role (and at least ``minimum``), most unusual first."""
    await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="audit_report")
    if not 1.0 < factor <= MAX_FACTOR:
        raise BadUserInput(f"factor: between 1 and {MAX_FACTOR:g}.", field="factor")
    if minimum < 1:
        raise BadUserInput("minimum: at least 1.", field="minimum")
    check_period(since, until)
    # the alert sweep's calculation, on this institution's reads; times in UTC (SQLite keeps them as text)
    found = await compliance_alert.anomalies(since.astimezone(UTC), until.astimezone(UTC), factor=factor,
                                             minimum=minimum, institution_id=ctx.institution_id)
    names = {s.id: s.name for s in await Staff.filter(institution_id=ctx.institution_id,
                                                      id__in=[a.staff_id for a in found])}
    ctx.reads.note("audit_report", None, None, field_class="audit", rule=ctx.decide("audit", "read").rule)
    return sorted((Anomaly(a.staff_id, names.get(a.staff_id, ""), a.role, a.patients_read, a.role_median, a.peers)
                   for a in found), key=lambda a: (-a.ratio, a.name))


def _count(person: Accessor, row: dict[str, Any]) -> None:
    if row["outcome"] != "allowed":
        person.denied += 1
        person.refused[str(row["action"])] += 1
    elif row["action"] == "read":
        person.reads += 1
        person.actions["read"] += 1
    else:
        person.writes += 1
        person.actions[str(row["action"])] += 1
    person.field_classes.update(c for c in str(row["field_classes"]).split(",") if c)
    fields = [f for f in str(row["fields_read"]).split(",") if f]
    person.fields.update(fields)
    person.field_names.update(audit_spelling.field_name(str(row["resource_type"]), str(row["action"]), f)
                              for f in fields)
    person.rules.update(r for r in str(row["policy_rule"]).split("; ") if r)
    if row["token_id"]:
        person.tokens.add(row["token_id"])
    if row["user_agent"]:
        person.clients.add(str(row["user_agent"]))
    person.first_at = person.first_at or row["occurred_at"]
    person.last_at = row["occurred_at"]
    person.last_seq = row["seq"]


async def _name(ctx: Context, people: list[Accessor]) -> None:
    """Staff names and roles, and a partner client's partner (a compliance officer sees colleagues' and
    partners' names, not patients')."""
    found = await who(ctx.institution_id, ((person.actor_kind, person.actor_id) for person in people))
    for person in people:
        known = found.get((person.actor_kind, person.actor_id))
        if known is None:
            person.name, person.roles = ("" if person.actor_id else person.actor_kind), []
        else:
            person.name = f"{known.name} ({known.client})" if known.client else known.name
            person.roles = known.roles
            person.person, person.client = known.name, known.client
            person.partner = known.name if known.client else ""
