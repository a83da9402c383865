"""Compliance reports over the audit trail (compliance officers): a patient's access report and
staff who read far more files than their peers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import audit_report as reports
from schema.common import Info, uuid_of


@strawberry.type(description="One person's (or client's) dealings with a patient's file in the period.")
class PatientAccess:
    actor_kind: str = strawberry.field(description="staff, anonymous, system (partners and patients to come).")
    actor_id: strawberry.ID | None
    name: str = strawberry.field(description="The staff member's name (no other personal data).")
    roles: list[str]
    reads: int
    writes: int
    denied: int = strawberry.field(description="Refused attempts.")
    field_classes: list[str] = strawberry.field(description="Field classes returned or written.")
    fields: list[str] = strawberry.field(description="Encrypted fields decrypted, or fields written.")
    policy_rules: list[str] = strawberry.field(description="The policy rules that allowed the access.")
    token_ids: list[strawberry.ID] = strawberry.field(description="Sessions (tokens) used.")
    clients: list[str] = strawberry.field(description="User agents of the requests.")
    first_at: datetime | None
    last_at: datetime | None

    @classmethod
    def of(cls, a: reports.Accessor) -> PatientAccess:
        return cls(actor_kind=a.actor_kind, actor_id=strawberry.ID(str(a.actor_id)) if a.actor_id else None,
                   name=a.name, roles=a.roles, reads=a.reads, writes=a.writes, denied=a.denied,
                   field_classes=sorted(a.field_classes), fields=sorted(a.fields), policy_rules=sorted(a.rules),
                   token_ids=[strawberry.ID(str(t)) for t in sorted(a.tokens)], clients=sorted(a.clients),
                   first_at=a.first_at, last_at=a.last_at)


@strawberry.type(description="A staff member who read far more patient files than colleagues in the same role.")
class AccessAnomaly:
    staff_id: strawberry.ID
    name: str
    role: str
    patients_read: int = strawberry.field(description="Distinct patient files read in the period.")
    role_median: float = strawberry.field(description="The median among active staff holding the role.")
    peers: int
    ratio: float


@strawberry.type
class AuditReportQuery:
    @strawberry.field(description="Who read or changed which field classes of a patient's file, when, under which "
                                  "policy rule, through which token and client (compliance officers). One entry "
                                  "per person; the full events are in auditEvents(filter: {patient}).")
    async def patient_access_report(
        self, info: Info, patient_id: strawberry.ID,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None, to: datetime | None = None,
    ) -> list[PatientAccess]:
        found = await reports.patient_access(info.context, uuid_of(patient_id, "patientId"), from_, to)
        return [PatientAccess.of(a) for a in found]

    @strawberry.field(description="Staff who read more distinct patient files in the period than `factor` times "
                                  "the median of colleagues in the same role, and at least `minimum` (compliance "
                                  "officers).")
    async def access_anomalies(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
        factor: float = 3.0, minimum: int = 20,
    ) -> list[AccessAnomaly]:
        found = await reports.anomalies(info.context, from_, to, factor=factor, minimum=minimum)
        return [AccessAnomaly(staff_id=strawberry.ID(str(a.staff_id)), name=a.name, role=a.role,
                              patients_read=a.patients_read, role_median=a.role_median, peers=a.peers,
                              ratio=round(a.ratio, 2)) for a in found]
