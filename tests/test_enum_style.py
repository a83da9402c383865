"""One style over the SDL: a value from a closed set is an enum (UPPER_CASE values), never a plain String,
and every connection offers `edges`, `nodes` and `pageInfo`.

A closed-set field is recognised by its name (``status``, ``kind``, ``roles``...). The few String fields
with such a name that hold open vocabularies are listed below with the reason; a new one fails here until
it is made an enum or listed with its reason.
"""

from __future__ import annotations

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLScalarType, GraphQLSchema, get_named_type

from core.settings import Limits
from schema.root import build_schema

CLOSED_SET_NAMES = frozenset({
    "status", "state", "action", "role", "roles", "kind", "actorKind", "outcome", "direction", "channel",
    "channels", "category", "sex", "segments", "relationship", "respondent", "method", "source", "cause",
})
# String fields named like a closed set whose values are open (or not yet an enum, with why).
OPEN_VOCABULARIES = {
    "Visit.outcome": "free clinical text (the visit's outcome), not a code",
}


def _schema() -> GraphQLSchema:
    return build_schema(Limits(), production=False)._schema


def test_closed_set_fields_are_enums() -> None:
    strings = []
    for name, type_ in _schema().type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLObjectType):
            continue
        for field_name, field in type_.fields.items():
            named = get_named_type(field.type)
            if field_name in CLOSED_SET_NAMES and isinstance(named, GraphQLScalarType) and named.name == "String":
                strings.append(f"{name}.{field_name}")
    assert sorted(set(strings) - set(OPEN_VOCABULARIES)) == []


def test_the_fields_the_issue_named_are_enums() -> None:
    types = _schema().type_map
    for type_name, field_name in (("AccessEntry", "action"), ("Accessor", "roles"), ("PatientAccess", "roles"),
                                  ("PatientAccess", "actorKind"), ("AccessAnomaly", "role")):
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
