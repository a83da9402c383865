"""Compliance reports over the audit trail (compliance officers): a patient's access report and
staff who read far more files than their peers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import audit_report as reports
from schema.audit_event import AccessorKind
from schema.common import Info, OpenFrom, OpenTo, PeriodFrom, PeriodTo, uuid_of
from schema.staff import Role, roles_of


@strawberry.type(description="One person's (or client's) dealings with a patient's file in the period.")
class PatientAccess:
    actor_kind: AccessorKind = strawberry.field(description="STAFF, PATIENT (the patient through the portal), "
                                                            "PARTNER (an API client), ANONYMOUS or SYSTEM.")
    actor_id: strawberry.ID | None = strawberry.field(description="The staff member, patient account or partner "
                                                                  "client; null for anonymous and system.")
    name: str = strawberry.field(description="A staff member's name, or a partner's with its client's: \"Partner "
                                             "(client)\"; empty for a patient; \"anonymous\" or \"system\" for those. "
                                             "No other personal data.")
    roles: list[Role] = strawberry.field(description="A staff member's roles; empty for others.")
    reads: int = strawberry.field(description="Allowed reads of the file in the period.")
    writes: int = strawberry.field(description="Allowed changes (creations, updates, exports...) in the period.")
    denied: int = strawberry.field(description="Refused attempts.")
    field_classes: list[str] = strawberry.field(description="Field classes returned or written.")
    fields: list[str] = strawberry.field(description="Encrypted fields decrypted, or fields written.")
    policy_rules: list[str] = strawberry.field(description="The policy rules that allowed the access.")
    token_ids: list[strawberry.ID] = strawberry.field(description="Sessions (tokens) used.")
    clients: list[str] = strawberry.field(description="User agents of the requests.")
    first_at: datetime | None = strawberry.field(description="Their first dealing with the file in the period.")
    last_at: datetime | None = strawberry.field(description="Their last dealing with the file in the period.")

    @classmethod
    def of(cls, a: reports.Accessor) -> PatientAccess:
        return cls(actor_kind=AccessorKind(a.actor_kind), actor_id=strawberry.ID(str(a.actor_id)) if a.actor_id
                   else None, name=a.name, roles=roles_of(a.roles), reads=a.reads, writes=a.writes, denied=a.denied,
                   field_classes=sorted(a.field_classes), fields=sorted(a.fields),
                   policy_rules=sorted(a.rules),
                   token_ids=[strawberry.ID(str(t)) for t in sorted(a.tokens)], clients=sorted(a.clients),
                   first_at=a.first_at, last_at=a.last_at)


@strawberry.type(description="A staff member who read far more patient files than colleagues in the same role.")
class AccessAnomaly:
    staff_id: strawberry.ID = strawberry.field(description="The staff member.")
    name: str = strawberry.field(description="Their name.")
    role: Role = strawberry.field(description="The role compared (a member with several roles is compared in each).")
    patients_read: int = strawberry.field(description="Distinct patient files read in the period.")
    role_median: float = strawberry.field(description="The median among active staff holding the role.")
    peers: int = strawberry.field(description="Active staff holding the role, this member included.")
    ratio: float = strawberry.field(description="patientsRead over the role median (a median under 1 counts as "
                                                "1), to 2 decimals; the list is sorted by it, highest first.")


@strawberry.type
class AuditReportQuery:
    @strawberry.field(description="Who read or changed which field classes of a patient's file, when, under which "
                                  "policy rule, through which token and client (compliance officers). One entry "
                                  "per person; the full events are in auditEvents(filter: {patient}).")
    async def patient_access_report(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(
            description="The patient (any of the institution's).")],
        from_: OpenFrom = None, to: OpenTo = None,
    ) -> list[PatientAccess]:
        found = await reports.patient_access(info.context, uuid_of(patient_id, "patientId"), from_, to)
        return [PatientAccess.of(a) for a in found]

    @strawberry.field(description="Staff who read more distinct patient files in the period than `factor` times "
                                  "the median of colleagues in the same role, and at least `minimum` (compliance "
                                  "officers).")
    async def access_anomalies(
        self, info: Info, from_: PeriodFrom, to: PeriodTo,
        factor: Annotated[float, strawberry.argument(
            description="How many times the role median counts as far more: above 1, at most 100.")] = 3.0,
        minimum: Annotated[int, strawberry.argument(
            description="The fewest distinct files read that can count as an anomaly, at least 1.")] = 20,
    ) -> list[AccessAnomaly]:
        found = await reports.anomalies(info.context, from_, to, factor=factor, minimum=minimum)
        return [AccessAnomaly(staff_id=strawberry.ID(str(a.staff_id)), name=a.name, role=Role(a.role),
                              patients_read=a.patients_read, role_median=a.role_median, peers=a.peers,
                              ratio=round(a.ratio, 2)) for a in found]
