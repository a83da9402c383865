"""The audit trail, for compliance officers: identifiers and field names, never values."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from audit.events import Action, Outcome
from resolvers import audit_event as audit_events
from resolvers import audit_spelling
from resolvers.audit_event import AuditFilter, EventRow, occurred_at
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
    PageInfo,
    asks_total,
    by_value,
    uuid_of,
)

# The audit vocabulary's own enums, exposed as they are; their values are described here, in the layer
# that shows them (a new action without a line below leaves its value undescribed, which
# tests/test_schema_descriptions.py reports).
_ACTIONS = {
    Action.READ: "Data was read (the encrypted fields returned are in fieldNames).",
    Action.CREATE: "A record was created.",
    Action.UPDATE: "A record was changed (the fields written are in fieldNames).",
    Action.DELETE: "A record or link was removed (a contact, a role, a care-team membership...).",
    Action.ARCHIVE: "A record was archived (a patient file; nothing deleted).",
    Action.LOGIN: "A sign-in (allowed, or denied with its reason).",
    Action.LOGOUT: "A sign-out: the session's token was revoked.",
    Action.LOCKOUT: "An account was locked after repeated failed sign-ins.",
    Action.EXPORT: "Data left the system as a whole (a patient's copy of their data, an audit trail export).",
    Action.BREAK_GLASS: "Emergency access to a file outside the actor's usual reach was opened.",
    Action.RETENTION: "The audit trail's retention period changed.",
    Action.ARCHIVE_TRAIL: "The oldest signed stretch of the audit trail moved to an archive file.",
    Action.CONSENT: "A patient's consent was given or withdrawn (reason: given, withdrawn).",
    Action.GRANT: "A partner's access to a patient was granted or revoked (reason: revoked).",
    Action.KEY_ROTATION: "A new version of the institution's data key was made.",
    Action.DISCLOSE: "Patient data was handed outside by the system: a message's address given to its gateway "
                     "(fieldNames names the field, never its value).",
    Action.TOKEN: "A partner client's access token was issued, or refused (e.g. rate limited).",
}
_OUTCOMES = {
    Outcome.ALLOWED: "It was allowed and done.",
    Outcome.DENIED: "It was refused (see reason); nothing was read or written.",
    Outcome.ERROR: "It was allowed but failed.",
}
for _enum, _name, _description, _values in ((Action, "AuditAction", "What was done.", _ACTIONS),
                                             (Outcome, "AuditOutcome", "How it ended.", _OUTCOMES)):
    strawberry.enum(_enum, name=_name, description=_description)
    for _value in cast(Any, _enum).__strawberry_definition__.values:
        _value.description = cast(dict[Any, str], _values).get(_enum(_value.value))


@strawberry.enum(description="Who touched a file (who acted).")
class AccessorKind(Enum):
    STAFF = strawberry.enum_value("staff", description="A staff member of the institution.")
    PARTNER = strawberry.enum_value("partner", description="A care partner's API client.")
    PATIENT = strawberry.enum_value("patient", description="The patient, through the portal.")
    ANOTHER_PATIENT = strawberry.enum_value(
        "another_patient", description="In your own access log: another patient's portal account, never named (an "
                                       "attempt on your file, refused).")
    SYSTEM = strawberry.enum_value("system", description="The system itself (reminders, messages, scheduled work).")
    ANONYMOUS = strawberry.enum_value("anonymous", description="Someone not signed in (e.g. a refused request).")


@strawberry.enum(description="A class of fields an audit record names: what part of the data was read or written. "
                             "The first five are the classes of a patient's file (as PatientFieldClass).")
class AuditFieldClass(Enum):
    IDENTITY = strawberry.enum_value("identity", description="The file's identity: name, sex, birth date, national "
                                                             "id, status, department; and what the journey shows "
                                                             "of it (when, where, who).")
    CONTACT = strawberry.enum_value("contact", description="Address, phones, e-mail, contacts, contact consent and "
                                                           "the messages sent.")
    CLINICAL = strawberry.enum_value("clinical", description="Health information: history, diagnoses, allergies, "
                                                             "medication, the clinical part of visits and plans.")
    NEEDS = strawberry.enum_value("needs", description="Diet and activity preferences, special needs.")
    INTERNAL = strawberry.enum_value("internal", description="Staff-only labels (segments, tags) and internal "
                                                             "notes.")
    TICKET = strawberry.enum_value("ticket", description="A ticket's text: subject, description, timeline, "
                                                         "attachments.")
    TERMS = strawberry.enum_value("terms", description="Commercial terms: a contract's amounts, catalogue prices.")
    CLAUSES = strawberry.enum_value("clauses", description="A contract's clauses.")
    DOCUMENT = strawberry.enum_value("document", description="A signed contract's document.")
    AGGREGATE = strawberry.enum_value("aggregate", description="Counts of a report, no single record's data.")
    AUDIT = strawberry.enum_value("audit", description="The audit trail itself: an access report, a disclosure "
                                                       "log.")


# Field classes written by earlier versions under another name (the trail keeps them as written).
_FORMER_FIELD_CLASSES = {"contract.terms": "terms"}


def field_classes_of(values: Iterable[str]) -> list[AuditFieldClass]:
    """The field classes an audit record names, in the order given, as the API shows them."""
    return [_FIELD_CLASS(_FORMER_FIELD_CLASSES.get(value, value)) for value in values]


# A page's events are made from rows: their enums by a dict, not Enum's call, per row
_FIELD_CLASS, _ACCESSOR, _ACTION, _OUTCOME = by_value(AuditFieldClass), by_value(AccessorKind), by_value(Action), \
    by_value(Outcome)


def _ids(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _resource_ids(self: AuditEvent) -> list[strawberry.ID]:
    if not self.subjects:
        return [] if self.resource_id is None else [self.resource_id]
    return _subject_parts(self.subjects, 0)


def _patient_ids(self: AuditEvent) -> list[strawberry.ID]:
    if not self.subjects:
        return [] if self.patient_id is None else [self.patient_id]
    return _subject_parts(self.subjects, 2)


def _subject_parts(subjects: str, part: int) -> list[strawberry.ID]:
    """The records (part 0) or patients (part 2) of ``subjects`` ("record/patient" items as
    ``audit.chain.subjects_text`` writes them, "-" for none), sorted, each once: read as the text they are."""
    return sorted({strawberry.ID(found) for item in subjects.split() if (found := item.partition("/")[part]) != "-"})


# The API's spelling of the stored codes (resolvers.audit_spelling), spelled only when asked for: computed from the
# row already read, on the compiled path (schema/compiled/audit_event.py) as on the generic one.
def _resource_type_name(self: AuditEvent) -> str:
    return audit_spelling.type_name(self.resource_type)


def _field_names(self: AuditEvent) -> list[str]:
    return [audit_spelling.field_name(self.resource_type, self.action, stored) for stored in self.fields_read]


def _reason_code(self: AuditEvent) -> str:
    return audit_spelling.reason_code(self.reason)


FIELD_NAMES = ("Each as the API names the field: `Type.field` (`Patient.specialNeeds`, `Contact.phone`, "
               "`Visit.summary`); a system event's detail, which names no field, as `key:value` (`format:csv`, "
               "`upToSeq:120`). Names, never values.")


@strawberry.type(description="One event of the append-only, hash-chained audit trail.")
class AuditEvent:
    id: strawberry.ID = strawberry.field(description="The event's id.")
    seq: int = strawberry.field(description="Position in the institution's chain, gap-free from 1.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    actor_kind: AccessorKind = strawberry.field(description="Who acted.")
    actor_id: strawberry.ID | None = strawberry.field(description="The staff member, patient account or partner "
                                                                  "client; null for anonymous and system.")
    token_id: strawberry.ID | None = strawberry.field(description="The session or access token used; null when "
                                                                  "there was none.")
    action: Action = strawberry.field(description="What was done.")
    resource_type: str = strawberry.field(
        description="The kind of record acted on, as the trail stores it: patient, follow_up_task, session...",
        deprecation_reason="The trail's stored code: use resourceTypeName, the API's spelling.")
    resource_type_name: str = strawberry.field(
        resolver=_resource_type_name,
        description="The kind of record acted on, by the name of its GraphQL type: Patient, FollowUpTask, "
                    "AuditEvent...; a kind the API has no type for is spelled the same way (Request, Session).")
    resource_id: strawberry.ID | None = strawberry.field(description="The record acted on; null for lists and "
                                                                     "reports, and when the event stands for "
                                                                     "several alike reads (see resourceIds).")
    patient_id: strawberry.ID | None = strawberry.field(description="The patient whose data it touched; null when "
                                                                    "none, and when the event stands for several "
                                                                    "alike reads (see patientIds).")
    resource_ids: list[strawberry.ID] = strawberry.field(
        resolver=_resource_ids,
        description="Every record the event is about: resourceId, or each record of the alike reads one event "
                    "stands for (a page of patients is one event). Covered by the hash.")
    patient_ids: list[strawberry.ID] = strawberry.field(
        resolver=_patient_ids,
        description="Every patient whose data the event touched: patientId, or each patient of the alike reads "
                    "it stands for. The trail's per-patient index holds one row for each.")
    field_classes: list[AuditFieldClass] = strawberry.field(description="Field classes returned or written.")
    fields_read: list[str] = strawberry.field(
        description="For reads, the encrypted fields returned: a patient's, contact's or care-journey column empty "
                    "or not (that a field is empty is the patient's too), other records' (tickets, answers) when "
                    "they held a value; for writes, the fields written. Names, not values, as the trail stores "
                    "them (columns: special_needs, contact.phone).",
        deprecation_reason="Storage column names: use fieldNames, the same fields as the API names them.")
    field_names: list[str] = strawberry.field(
        resolver=_field_names,
        description="For reads, the encrypted fields returned: a patient's, contact's or care-journey field empty or "
                    "not (that a field is empty is the patient's too), other records' (tickets, answers) when they "
                    "held a value; for writes, the fields written. One for each of fieldsRead, in its order. "
                    + FIELD_NAMES)
    outcome: Outcome = strawberry.field(description="How it ended.")
    reason: str = strawberry.field(
        description="Why it was denied (forbidden, not_found, forbidden_field...), or what an allowed event was "
                    "(given, withdrawn...), as the trail stores it; empty when none.",
        deprecation_reason="The trail's stored code: use reasonCode, the API's spelling.")
    reason_code: str = strawberry.field(
        resolver=_reason_code,
        description="Why it was denied (FORBIDDEN, NOT_FOUND, FORBIDDEN_FIELD...), or what an allowed event was "
                    "(GIVEN, WITHDRAWN...), spelled as the API's codes are; empty when none.")
    policy_rule: str = strawberry.field(description="The policy rule that allowed it.")
    request_id: str = strawberry.field(description="The HTTP request's id (the X-Request-ID header, and the "
                                                   "requestId of an unexpected error); empty for background work.")
    client_address: str = strawberry.field(description="The client's IP address; empty for background work.")
    user_agent: str = strawberry.field(description="The client's User-Agent header, at most 200 characters.")
    hash: str = strawberry.field(description="SHA-256 (hex) over this event's content and prevHash: the chain that "
                                             "makes tampering evident.")
    prev_hash: str = strawberry.field(description="The hash of the event before it in the chain.")
    # The "record/patient" items of an event that stands for several alike reads, parsed only when resourceIds or
    # patientIds are asked for: a page's subjects can name a hundred records each.
    subjects: strawberry.Private[str]

    @classmethod
    def of(cls, row: EventRow) -> AuditEvent:
        """An event from its row as the driver gives it (``resolvers.audit_event.EventRow``): ids as their text."""
        def ident(value: object) -> strawberry.ID | None:
            return None if value is None else strawberry.ID(str(value))

        return cls(
            id=strawberry.ID(str(row["id"])), seq=row["seq"], occurred_at=occurred_at(row),
            actor_kind=_ACCESSOR(row["actor_kind"]),
            actor_id=ident(row["actor_id"]), token_id=ident(row["token_id"]), action=_ACTION(row["action"]),
            resource_type=row["resource_type"], resource_id=ident(row["resource_id"]),
            patient_id=ident(row["patient_id"]), subjects=row["subjects"] or "",
            field_classes=field_classes_of(_ids(row["field_classes"])), fields_read=_ids(row["fields_read"]),
            outcome=_OUTCOME(row["outcome"]), reason=row["reason"], policy_rule=row["policy_rule"],
            request_id=row["request_id"], client_address=row["client_address"], user_agent=row["user_agent"],
            hash=row["hash"], prev_hash=row["prev_hash"],
        )


@strawberry.type(description="One audit event of a page, with its cursor.")
class AuditEventEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: AuditEvent = strawberry.field(description="The event.")


@strawberry.type(description="A page of audit events, newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(
        default=None, description=TOTAL_COUNT + " Here: the events recorded when the page was read (the trail grows "
                                                "at the top, reading it is recorded too).")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[AuditEvent]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Narrow the audit trail. `from` is inclusive, `to` exclusive.")
class AuditEventFilter:
    actor: strawberry.ID | None = strawberry.field(default=None, description="Only this actor's events: the id "
                                                                             "an event's actorId holds.")
    patient: strawberry.ID | None = strawberry.field(default=None, description="Only events touching this patient "
                                                                               "file: its id (Patient.id).")
    resource_type: str | None = strawberry.field(default=None, description="Only this kind of record, as the trail "
                                                                           "stores it (patient, follow_up_task...).")
    resource_type_name: str | None = strawberry.field(
        default=None, description="Only this kind of record, by its GraphQL type's name, as resourceTypeName spells "
                                  "it (Patient, FollowUpTask...). With resourceType, both must name the same kind.")
    resource: strawberry.ID | None = strawberry.field(
        default=None, description="One record, e.g. a ticket's id: its own events and the pages that listed it. "
                                  "Not indexed: add patient (indexed) or from/to on a long trail.")
    action: Action | None = strawberry.field(default=None, description="Only this action.")
    outcome: Outcome | None = strawberry.field(default=None, description="Only this outcome (DENIED: refusals).")
    from_: datetime | None = strawberry.field(default=None, name="from",
                                              description="From this time on, inclusive, with its zone offset.")
    to: datetime | None = strawberry.field(default=None, description="Before this time, exclusive, with its zone "
                                                                     "offset.")


@strawberry.type
class AuditEventQuery:
    @strawberry.field(description="The audit trail of your institution (compliance officers). Reading it is audited.")
    async def audit_events(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        filter: Annotated[AuditEventFilter | None, strawberry.argument(
            description="Narrow the trail; null: every event.")] = None,
    ) -> AuditEventConnection:
        f = filter or AuditEventFilter()
        where = AuditFilter(
            actor_id=uuid_of(f.actor, "filter.actor"), patient_id=uuid_of(f.patient, "filter.patient"),
            resource_type=f.resource_type, resource_id=uuid_of(f.resource, "filter.resource"),
            action=f.action.value if f.action else None,
            outcome=f.outcome.value if f.outcome else None, since=f.from_, until=f.to,
            resource_type_name=f.resource_type_name,
        )
        page = await audit_events.page(info.context, first=first, after=after, where=where, count=asks_total(info))
        return AuditEventConnection(
            edges=[AuditEventEdge(cursor=cursor, node=AuditEvent.of(row)) for cursor, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total,
        )
