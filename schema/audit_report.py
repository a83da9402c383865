"""Compliance reports over the audit trail (compliance officers): a patient's access report and
staff who read far more files than their peers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import audit_report as reports
from resolvers import audit_words
from schema.audit_event import FIELD_NAMES, AccessorKind, AuditFieldClass, field_classes_of
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    OpenFrom,
    OpenTo,
    PageInfo,
    PeriodFrom,
    PeriodTo,
    asks_total,
    uuid_of,
)
from schema.staff import Role, roles_of


@strawberry.enum(description="The language a report's words are in.")
class ReportLanguage(Enum):
    EN = strawberry.enum_value(audit_words.EN, description="English.")
    ZH_CN = strawberry.enum_value(audit_words.ZH_CN, description="Simplified Chinese.")


@strawberry.type(description="Who dealt with a file, as a person reads it: no identifiers, no codes.")
class AccessWho:
    name: str = strawberry.field(description="A staff member's or partner's name (\"Partner (client)\" for an API "
                                             "client); \"the patient (portal)\", \"anonymous\" or \"the system\" "
                                             "for others.")
    role_in_words: str = strawberry.field(description="Their roles in words (\"front desk, nurse\"), or what they are "
                                             "(\"care partner\", \"the patient (portal)\").")
    partner: str = strawberry.field(description="The care partner an API client belongs to; empty for others.")


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
    field_classes: list[AuditFieldClass] = strawberry.field(description="Field classes returned or written.")
    fields: list[str] = strawberry.field(
        description="Encrypted fields returned (a patient's, contact's or care-journey column empty or not), or "
                    "fields written, by their column names.",
        deprecation_reason="Storage column names: use fieldNames (the API's names), and show fieldsInWords to "
                           "people.")
    field_names: list[str] = strawberry.field(
        description="Encrypted fields returned (a patient's, contact's or care-journey field empty or not), or fields "
                    "written, sorted. " + FIELD_NAMES)
    policy_rules: list[str] = strawberry.field(
        description="The policy lines that allowed the access, as written in the policy.",
        deprecation_reason="Raw policy lines are for machines: show allowedBy to people.")
    token_ids: list[strawberry.ID] = strawberry.field(description="Sessions (tokens) used.")
    clients: list[str] = strawberry.field(description="User agents of the requests.")
    first_at: datetime | None = strawberry.field(description="Their first dealing with the file in the period; "
                                                             "never null (whoever is listed dealt with it).")
    last_at: datetime | None = strawberry.field(description="Their last dealing with the file in the period; "
                                                            "never null (whoever is listed dealt with it).")
    who: AccessWho = strawberry.field(description="Who, in words: name, role and partner.")
    what: list[str] = strawberry.field(description="What they did in words (\"read 2 times: identity details, "
                                                   "health information\", \"refused read 1 time\").")
    allowed_by: list[str] = strawberry.field(description="The rules that allowed it, in words (\"allowed by the "
                                                         "front desk's rule to read contact details\").")
    fields_in_words: list[str] = strawberry.field(description="The fields read or written, in words with their "
                                                              "class (\"allergies (health information)\").")
    first_at_local: str = strawberry.field(description="firstAt in the institution's time zone, "
                                                       "\"YYYY-MM-DD HH:MM:SS\"; empty when none.")
    last_at_local: str = strawberry.field(description="lastAt in the institution's time zone, "
                                                      "\"YYYY-MM-DD HH:MM:SS\"; empty when none.")
    time_zone: str = strawberry.field(description="The institution's time zone the local times are in "
                                                  "(e.g. Asia/Shanghai).")

    @classmethod
    def of(cls, a: reports.Accessor, language: str = audit_words.EN) -> PatientAccess:
        who = AccessWho(name=a.display_name(language), role_in_words=a.role_words(language), partner=a.partner)
        return cls(who=who,
                   what=a.what(language), allowed_by=a.allowed_by(language),
                   fields_in_words=a.fields_in_words(language), first_at_local=a.local(a.first_at),
                   last_at_local=a.local(a.last_at), time_zone=str(a.zone.key),
                   actor_kind=AccessorKind(a.actor_kind), actor_id=strawberry.ID(str(a.actor_id)) if a.actor_id
                   else None, name=a.name, roles=roles_of(a.roles), reads=a.reads, writes=a.writes, denied=a.denied,
                   field_classes=field_classes_of(sorted(a.field_classes)), fields=sorted(a.fields),
                   field_names=sorted(a.field_names),
                   policy_rules=sorted(a.rules),
                   token_ids=[strawberry.ID(str(t)) for t in sorted(a.tokens)], clients=sorted(a.clients),
                   first_at=a.first_at, last_at=a.last_at)


@strawberry.type(description="One person of an access report's page, with its cursor.")
class PatientAccessEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: PatientAccess = strawberry.field(description="One person's dealings with the file.")


@strawberry.type(description="A page of a patient's access report: the people whose last dealing with the file is "
                             "the most recent first.")
class PatientAccessConnection:
    edges: list[PatientAccessEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(
        default=None, description=TOTAL_COUNT + " Here: the people, counted up to the first page's latest event, as "
                                                "the pages are.")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[PatientAccess]:
        return [edge.node for edge in self.edges]


_REPORT_PATIENT = Annotated[strawberry.ID, strawberry.argument(description="The patient (any of the institution's).")]
_REPORT_LANGUAGE = Annotated[ReportLanguage, strawberry.argument(
    description="The language of the words (who, what, allowedBy, fieldsInWords).")]


@strawberry.type(description="A staff member who read far more patient files than colleagues in the same role.")
class AccessAnomaly:
    staff_id: strawberry.ID = strawberry.field(description="The staff member.")
    name: str = strawberry.field(description="The staff member's name (empty if the account is gone).")
    role: Role = strawberry.field(description="The role compared (a member with several roles is compared in each).")
    patients_read: int = strawberry.field(description="Distinct patient files read in the period.")
    role_median: float = strawberry.field(description="The median among the role's holders (`peers`).")
    peers: int = strawberry.field(description="Staff holding the role, this member included: the active ones, and "
                                              "those who read files in the period and were deactivated or lost the "
                                              "role since.")
    ratio: float = strawberry.field(description="patientsRead over the role median (a median under 1 counts as "
                                                "1), to 2 decimals; the list is sorted by it, highest first.")


@strawberry.type
class AuditReportQuery:
    @strawberry.field(description="Who read or changed which field classes of a patient's file, when, under which "
                                  "policy rule, through which token and client (compliance officers). One entry "
                                  "per person, the most recent first, at most 500; also in words and local time "
                                  "(who, what, allowedBy, fieldsInWords, firstAtLocal); the full events are in "
                                  "auditEvents(filter: {patient}); a PDF or CSV for people at GET "
                                  "/compliance/exports/patient-access/{patientId}.pdf|.csv.",
                      deprecation_reason="Stops at 500 people: page through patientAccessReportConnection.")
    async def patient_access_report(
        self, info: Info, patient_id: _REPORT_PATIENT, from_: OpenFrom = None, to: OpenTo = None,
        language: _REPORT_LANGUAGE = ReportLanguage.EN,
    ) -> list[PatientAccess]:
        found = await reports.patient_access(info.context, uuid_of(patient_id, "patientId"), from_, to)
        return [PatientAccess.of(a, str(language.value)) for a in found]

    @strawberry.field(description="Who read or changed which field classes of a patient's file, when, under which "
                                  "policy rule, through which token and client (compliance officers), a page of "
                                  "people at a time: whoever dealt with the file last comes first, and the pages "
                                  "after the first count the events up to the first page's, so nobody moves "
                                  "between pages. One entry per person, also in words and local time (who, what, "
                                  "allowedBy, fieldsInWords, firstAtLocal); the full events are in "
                                  "auditEvents(filter: {patient}); the whole report for people, a PDF or CSV, at "
                                  "GET /compliance/exports/patient-access/{patientId}.pdf|.csv.")
    async def patient_access_report_connection(
        self, info: Info, patient_id: _REPORT_PATIENT, from_: OpenFrom = None, to: OpenTo = None,
        language: _REPORT_LANGUAGE = ReportLanguage.EN, first: First = DEFAULT_PAGE_SIZE, after: After = None,
    ) -> PatientAccessConnection | None:
        page = await reports.patient_access_page(info.context, uuid_of(patient_id, "patientId"), from_, to,
                                                 first=first, after=after, count=asks_total(info))
        return PatientAccessConnection(
            edges=[PatientAccessEdge(cursor=cursor, node=PatientAccess.of(a, str(language.value)))
                   for cursor, a in page.items], page_info=PageInfo.of(page), total_count=page.total)

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
