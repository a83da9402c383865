"""Compliance reports over the audit trail: who accessed a patient's file, and who reads far more
files than their peers. For compliance officers (``audit: read``); aggregates of the trail, so
they show field classes and names, never patient data.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.functions import Count

from audit.events import Action
from core.errors import BadUserInput
from models import AuditEvent, Patient, RoleAssignment, Staff
from resolvers import access
from resolvers.audit_event import check_period, who, within
from resolvers.context import Context

MAX_FACTOR = 100.0


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
    rules: set[str] = field(default_factory=set)
    tokens: set[uuid.UUID] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    first_at: datetime | None = None
    last_at: datetime | None = None


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
    which token and client; most recent first."""
    await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="audit_report",
                           resource_id=patient_id)
    if patient_id is None or not await Patient.exists(id=patient_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "patient", patient_id, "patientId")
    query = AuditEvent.filter(institution_id=ctx.institution_id, patient_id=patient_id)
    query = within(query, since, until)
    rows = await query.order_by("seq").values("actor_kind", "actor_id", "token_id", "action", "outcome",
                                              "field_classes", "fields_read", "policy_rule", "user_agent",
                                              "occurred_at")
    people: dict[tuple[str, Any], Accessor] = {}
    for row in rows:
        key = (row["actor_kind"], row["actor_id"])
        if key not in people:
            people[key] = Accessor(row["actor_kind"], row["actor_id"], "", [])
        _count(people[key], row)
    await _name(list(people.values()))
    ctx.reads.note("audit_report", patient_id, patient_id, field_class="audit", rule=ctx.decide("audit", "read").rule)
    return sorted(people.values(), key=lambda p: p.last_at or datetime.min, reverse=True)


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
    reads = within(AuditEvent.filter(institution_id=ctx.institution_id, actor_kind="staff", action="read",
                                      outcome="allowed", patient_id__isnull=False), since, until)
    counted = await reads.annotate(n=Count("patient_id", distinct=True)).group_by("actor_id").values_list(
        "actor_id", "n")
    patients_read = {uuid.UUID(str(actor)): int(n) for actor, n in counted}
    holders: dict[str, list[uuid.UUID]] = defaultdict(list)
    active = Staff.filter(institution_id=ctx.institution_id, is_active=True).values_list("id", flat=True)
    for staff_id, role in await RoleAssignment.filter(institution_id=ctx.institution_id,
                                                      staff_id__in=await active).values_list("staff_id", "role"):
        holders[str(role)].append(uuid.UUID(str(staff_id)))
    found = []
    for role, staff_ids in holders.items():
        median = statistics.median(patients_read.get(s, 0) for s in staff_ids)
        for staff_id in staff_ids:
            n = patients_read.get(staff_id, 0)
            if n >= minimum and n > factor * max(median, 1.0):
                found.append(Anomaly(staff_id, "", role, n, float(median), len(staff_ids)))
    names = {s.id: s.name for s in await Staff.filter(id__in=[a.staff_id for a in found])}
    ctx.reads.note("audit_report", None, None, field_class="audit", rule=ctx.decide("audit", "read").rule)
    return sorted((Anomaly(a.staff_id, names.get(a.staff_id, ""), a.role, a.patients_read, a.role_median, a.peers)
                   for a in found), key=lambda a: (-a.ratio, a.name))


def _count(person: Accessor, row: dict[str, Any]) -> None:
    if row["outcome"] != "allowed":
        person.denied += 1
    elif row["action"] == "read":
        person.reads += 1
    else:
        person.writes += 1
    person.field_classes.update(c for c in str(row["field_classes"]).split(",") if c)
    person.fields.update(f for f in str(row["fields_read"]).split(",") if f)
    person.rules.update(r for r in str(row["policy_rule"]).split("; ") if r)
    if row["token_id"]:
        person.tokens.add(row["token_id"])
    if row["user_agent"]:
        person.clients.add(str(row["user_agent"]))
    person.first_at = person.first_at or row["occurred_at"]
    person.last_at = row["occurred_at"]


async def _name(people: list[Accessor]) -> None:
    """Staff names and roles, and a partner client's partner (a compliance officer sees colleagues' and
    partners' names, not patients')."""
    found = await who((person.actor_kind, person.actor_id) for person in people)
    for person in people:
        known = found.get((person.actor_kind, person.actor_id))
        if known is None:
            person.name, person.roles = ("" if person.actor_id else person.actor_kind), []
        else:
            person.name = f"{known.name} ({known.client})" if known.client else known.name
            person.roles = known.roles
