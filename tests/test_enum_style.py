"""One style over the SDL: a value from a closed set is an enum (UPPER_CASE values), never a plain String,
and every connection offers `edges`, `nodes` and `pageInfo`.

A closed-set field is recognised by its name (``status``, ``kind``, ``roles``...). The few String fields
with such a name that hold open vocabularies are listed below with the reason; a new one fails here until
it is made an enum or listed with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)

from core.settings import Limits
from schema.root import build_schema

CLOSED_SET_NAMES = frozenset({
    "status", "state", "action", "role", "roles", "kind", "actorKind", "outcome", "direction", "channel",
    "channels", "category", "sex", "segments", "relationship", "respondent", "method", "source", "cause",
    "fieldClasses", "segment", "codeSystem", "resourceType", "reason",
})
# String fields named like a closed set whose values are open (or not yet an enum, with why).
FREE_TEXT = "free text written by people, not a code"
OPEN_VOCABULARIES = {
    "Visit.outcome": "free clinical text (the visit's outcome), not a code",
    "VisitCreateInput.outcome": FREE_TEXT, "VisitUpdateInput.outcome": FREE_TEXT,
    "Visit.reason": FREE_TEXT, "VisitCreateInput.reason": FREE_TEXT, "VisitUpdateInput.reason": FREE_TEXT,
    "Appointment.reason": FREE_TEXT, "AppointmentBookInput.reason": FREE_TEXT,
    "ScheduleException.reason": FREE_TEXT, "ScheduleExceptionInput.reason": FREE_TEXT,
    "EmergencyAccess.reason": FREE_TEXT,
    # The audit trail is append-only and kept for years: it reads back every word any version of the code wrote,
    # including words since retired, and an enum would turn such an old record into an error in the one place that
    # must always read. Nor is either set one table: the words are passed positionally to write_record, deny,
    # not_found, reads.note and AuditRecord all over the resolvers (60 resource types, more reasons).
    "AuditEvent.resourceType": "the audit trail's record kinds: open, kept as written (see above)",
    "AuditEventFilter.resourceType": "filters AuditEvent.resourceType, an open vocabulary (see above)",
    "AuditEvent.reason": "the audit trail's reasons (forbidden, withdrawn, stale_version...): open, kept as written",
}


def _schema() -> GraphQLSchema:
    return build_schema(Limits(), production=False)._schema


def test_closed_set_fields_are_enums() -> None:
    strings = []
    for name, type_ in _schema().type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLObjectType | GraphQLInputObjectType):
            continue
        for field_name, field in type_.fields.items():
            named = get_named_type(field.type)
            if field_name in CLOSED_SET_NAMES and isinstance(named, GraphQLScalarType) and named.name == "String":
                strings.append(f"{name}.{field_name}")
    assert sorted(set(strings) - set(OPEN_VOCABULARIES)) == []


def test_the_fields_the_issue_named_are_enums() -> None:
    types = _schema().type_map
    for type_name, field_name in (("AccessEntry", "action"), ("Accessor", "roles"), ("PatientAccess", "roles"),
                                  ("PatientAccess", "actorKind"), ("AccessAnomaly", "role"),
                                  ("AccessEntry", "fieldClasses"), ("AuditEvent", "fieldClasses"),
                                  ("PatientAccess", "fieldClasses"), ("Campaign", "segment"),
                                  ("CampaignAudienceInput", "codeSystem"), ("RefusalCount", "reason")):
        field = types[type_name].fields[field_name]  # type: ignore[attr-defined]
        assert isinstance(get_named_type(field.type), GraphQLEnumType), f"{type_name}.{field_name}"


def test_enum_values_are_upper_case() -> None:
    lower = [f"{name}.{value}" for name, type_ in _schema().type_map.items()
             if isinstance(type_, GraphQLEnumType) and not name.startswith("__")
             for value in type_.values if value != value.upper()]
    assert lower == []


def test_every_connection_has_edges_nodes_and_page_info() -> None:
    missing = [f"{name}.{field}" for name, type_ in _schema().type_map.items()
               if name.endswith("Connection") and isinstance(type_, GraphQLObjectType)
               for field in ("edges", "nodes", "pageInfo") if field not in type_.fields]
    assert missing == []


def test_every_field_class_the_code_writes_has_its_enum_value() -> None:
    """AuditFieldClass must name every class an audit record is written with: the patient file's classes and the
    words passed to ``field_class=`` / ``field_classes=`` in the code (a new one fails here, not on a read)."""
    from policies import fields
    from schema.audit_event import AuditFieldClass
    from schema.permission import PatientFieldClass

    root = Path(__file__).resolve().parents[1]
    written = {fields.IDENTITY, fields.CONTACT, fields.CLINICAL, fields.NEEDS, fields.INTERNAL}
    pattern = re.compile(r"field_class(?:es)?=(?:frozenset\(\{)?((?:\"[a-z_.]+\"(?:, )?)+)")
    for package in ("resolvers", "audit", "app", "policies"):
        for path in (root / package).rglob("*.py"):
            for found in pattern.findall(path.read_text()):
                written |= set(re.findall(r'"([a-z_.]+)"', found))
    assert "ticket" in written and "audit" in written  # the scan finds them
    assert sorted(written - {c.value for c in AuditFieldClass}) == []
    assert {c.value for c in PatientFieldClass} <= {c.value for c in AuditFieldClass}
