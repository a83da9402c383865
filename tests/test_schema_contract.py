"""The schema as the front-end teams' contract, beyond descriptions (``test_schema_descriptions.py``), defaults
(``test_schema_arguments.py``) and enum style (``test_enum_style.py``):

- a description says more than the name it describes ("Cancelled at." on cancelledAt does not), a rate or
  share says whether it is a fraction or a percent, a mutation answering a Boolean says what true means;
- a nullable output field (but a root one) says what null means, or its type says it for all its fields;
- a deprecated field, argument, input field or enum value says what replaces it, by name;
- a list of records is a connection or documents its cap ("at most 50"); a connection has ``edges``, ``nodes``,
  ``totalCount`` and is asked for with ``first`` (Int) and ``after`` (String);
- names follow the codebase: mutations noun + Verb (``patientCreate``, ``contractRenew``), inputs end in
  ``Input`` (or ``Filter``/``Order``, the list arguments' GitHub-style inputs), an ``...Id`` is an ``ID`` and an
  ``ID`` is named ``id``, ``...Id(s)`` or ``...Key``;
- the enums the docs say follow a FHIR R4 resource use its status codes, or name the code they map to.

Each walk takes a graphql-core schema and answers the places that break its rule, so that it is tried on a small
schema made to break each rule once (the trap at the end) as well as on the real one. Names can never change (the
schema is a contract): a published name that breaks a rule is listed below with why, and the lists may only shrink.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    get_nullable_type,
)

from core.settings import Limits
from schema.root import build_schema

ROOT = Path(__file__).resolve().parents[1]


def _schema() -> GraphQLSchema:
    return build_schema(Limits(), production=False)._schema


def _types(schema: GraphQLSchema) -> Iterator[GraphQLNamedType]:
    return (t for name, t in schema.type_map.items() if not name.startswith("__"))


def _with_fields(schema: GraphQLSchema) -> Iterator[GraphQLObjectType | GraphQLInterfaceType]:
    return (t for t in _types(schema) if isinstance(t, GraphQLObjectType | GraphQLInterfaceType))


def _words(name: str) -> list[str]:
    """``patientCreate`` -> ``["patient", "Create"]``; ``appointmentCheckIn`` -> ``[..., "Check", "In"]``."""
    return re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)


# --- Descriptions that say something --------------------------------------------------------------------------

# Words that carry nothing: a description made of the element's own name and these says nothing more than the name.
FILLER = frozenset("a an and by for in is it its my of on or that the their this to when which with your".split())


def _stem(words: set[str]) -> set[str]:
    return words | {w + "s" for w in words} | {w[:-1] for w in words if w.endswith("s")}


def _restates(description: str | None, *names: str) -> bool:
    """Whether ``description`` only repeats ``names`` ("Cancelled at." on ``cancelledAt``, "The contract." on
    ``contractId``). One with a number says something (a range, a unit, a bound)."""
    text = description or ""
    if re.search(r"\d", text):
        return False
    said = {w.lower() for w in re.findall(r"[A-Za-z]+", text)} - FILLER
    named = _stem({w.lower() for name in names for w in _words(name)} | {"id", "ids"})
    return bool(said) and said <= named


def restated_names(schema: GraphQLSchema) -> Iterator[str]:
    """Fields, arguments and input fields whose description only restates their name (and their type's): a
    front-end developer needs what the name cannot say (units, zone, who may read it, what null means). Enum values
    are left out ("Female." on FEMALE is all there is to say), and so is an edge's ``node``, which is the item."""
    for type_ in _types(schema):
        if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            continue
        for name, field in type_.fields.items():
            edge_node = type_.name.endswith("Edge") and name == "node"
            if not edge_node and _restates(field.description, name, type_.name):
                yield f"{type_.name}.{name}"
            for arg_name, arg in (field.args.items() if isinstance(field, GraphQLField) else ()):
                if _restates(arg.description, arg_name):
                    yield f"{type_.name}.{name}({arg_name})"


SCALE = re.compile(r"\b0 to 1\b|\b0 to 100\b|0-100|[Pp]ercent|per 1,000|fraction")


def rates_without_scale(schema: GraphQLSchema) -> Iterator[str]:
    """A Float named as a rate or share (``...Rate``, ``...Share``, ``share``, ``percent...``) says its scale: the
    reports mix fractions (0 to 1) and percents (0 to 100), and a chart that guesses wrong is off by 100."""
    for type_ in _with_fields(schema):
        for name, field in type_.fields.items():
            rate = re.search(r"(Rate|Share)(Per\d+)?$", name) or name in ("rate", "share") or name.startswith("percent")
            if rate and get_named_type(field.type).name == "Float" and not SCALE.search(field.description or ""):
                yield f"{type_.name}.{name}"


def unexplained_boolean_answers(schema: GraphQLSchema) -> Iterator[str]:
    """A mutation that answers a Boolean says what ``true`` (and ``false``, if it can be) means: a generated client
    types it ``boolean | null`` and cannot tell a refusal from a no-op otherwise."""
    assert schema.mutation_type is not None
    for name, field in schema.mutation_type.fields.items():
        if get_named_type(field.type).name == "Boolean" and "true" not in (field.description or ""):
            yield name


def scalars_described_by_default(schema: GraphQLSchema) -> Iterator[str]:
    """Strawberry describes Date, DateTime and Time as "... (isoformat)": nothing of the zone a client must know."""
    for type_ in _types(schema):
        if isinstance(type_, GraphQLScalarType) and "(isoformat)" in (type_.description or ""):
            yield type_.name


# --- What null means --------------------------------------------------------------------------------------------

# Words that say what a null stands for: "null: not set", "null when fewer than 5 answers", "never null", "null with
# FORBIDDEN", "not recorded", "none", "if any" (there is none), "if one was".
SAYS_NULL = re.compile(r"\b[Nn]ull\b|\bnot recorded\b|\bFORBIDDEN\b|\b[Nn]one\b|\bif any\b|\bif one was\b")


def unexplained_nulls(schema: GraphQLSchema) -> Iterator[str]:
    """``Type.field`` of each nullable output field whose description, and its type's (for a whole type read under a
    field class, "a field you may not read is null with FORBIDDEN"), say nothing of what null means: a generated
    client types it ``T | null`` and the screen must show something for it (not set? hidden? not computed?). Root
    fields are left out: nullable by rule so that one refused root field nulls only itself (docs/architecture.md),
    they are null only with their error."""
    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    for type_ in _with_fields(schema):
        if type_ in roots or SAYS_NULL.search(type_.description or ""):
            continue
        for name, field in type_.fields.items():
            nullable = not isinstance(field.type, GraphQLNonNull)
            if nullable and not SAYS_NULL.search(f"{field.description or ''} {field.deprecation_reason or ''}"):
                yield f"{type_.name}.{name}"


# --- Deprecations ------------------------------------------------------------------------------------------------

def _names_one_of(reason: str, names: set[str]) -> bool:
    return bool(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", reason)) & names)


def deprecations_without_replacement(schema: GraphQLSchema) -> Iterator[str]:
    """A deprecation's reason names its replacement: a field of the same type or a root field (a field), another
    argument of the field (an argument), another field of the input or another value (an input field, a value).
    The replacement must itself be current, or the client is sent from one deprecated name to another."""
    roots = {name for root in (schema.query_type, schema.mutation_type) if root
             for name, f in root.fields.items() if not f.deprecation_reason}
    for type_ in _types(schema):
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            current = {name for name, f in type_.fields.items() if not f.deprecation_reason}
            for name, field in type_.fields.items():
                if field.deprecation_reason and not _names_one_of(field.deprecation_reason, (current | roots) - {name}):
                    yield f"{type_.name}.{name}"
                args = {a for a, arg in field.args.items() if not arg.deprecation_reason}
                for arg_name, arg in field.args.items():
                    if arg.deprecation_reason and not _names_one_of(arg.deprecation_reason, args | current):
                        yield f"{type_.name}.{name}({arg_name})"
        elif isinstance(type_, GraphQLInputObjectType):
            current = {name for name, f in type_.fields.items() if not f.deprecation_reason}
            for name, input_field in type_.fields.items():
                if input_field.deprecation_reason and not _names_one_of(input_field.deprecation_reason,
                                                                        current - {name}):
                    yield f"{type_.name}.{name}"
        elif isinstance(type_, GraphQLEnumType):
            current = {name for name, v in type_.values.items() if not v.deprecation_reason}
            for name, value in type_.values.items():
                if value.deprecation_reason and not _names_one_of(value.deprecation_reason, current - {name}):
                    yield f"{type_.name}.{name}"


# --- Lists -------------------------------------------------------------------------------------------------------

# A documented cap in a list field's description (or its deprecation reason): "at most 50", "(1 to 20; ...", or
# "one bar per RootCause value" (as many as an enum has values).
CAP = re.compile(r"\bat most \d+|\b1 to \d+\b|\b[Oo]ne (?:\w+ )?per [A-Z][A-Za-z]+ value\b")
# Lists of records without a cap, each with why it may stay so. The list may only shrink.
UNCAPPED = {
    # An aggregate of the audit trail: one line per staff member and role far above their role's median, so bounded
    # by the institution's staff and, by its definition, a few of them.
    "Query.accessAnomalies": "the outliers among the institution's staff",
}


def _is_connection(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLObjectType) and "pageInfo" in type_.fields


def _is_record(type_: GraphQLNamedType) -> bool:
    return isinstance(type_, GraphQLObjectType | GraphQLInterfaceType) and "id" in type_.fields


def uncapped_lists(schema: GraphQLSchema) -> Iterator[str]:
    """``Type.field`` of each list of records (objects with an ``id``; at the root, of any object) that is not a
    connection's page and whose description does not say how long it can be."""
    for type_ in _with_fields(schema):
        if _is_connection(type_):
            continue  # edges and nodes: one page, at most `first`
        at_root = type_ is schema.query_type
        for name, field in type_.fields.items():
            if not isinstance(get_nullable_type(field.type), GraphQLList):  # type: ignore[arg-type]
                continue
            item = get_named_type(field.type)
            if not (_is_record(item) or (at_root and isinstance(item, GraphQLObjectType))):
                continue
            said = f"{field.description or ''} {field.deprecation_reason or ''}"
            if not CAP.search(said):
                yield f"{type_.name}.{name}"


def malformed_connections(schema: GraphQLSchema) -> Iterator[str]:
    """A connection (a type with ``pageInfo``) is named ``...Connection`` and has ``edges``, ``nodes`` and
    ``totalCount``; a field that answers one takes ``first`` (an Int) and ``after`` (a String cursor)."""
    for type_ in _with_fields(schema):
        if _is_connection(type_):
            if not type_.name.endswith("Connection") and type_.name not in CONNECTION_NAMES:
                yield f"{type_.name}: not named ...Connection"
            for needed in ("edges", "nodes", "totalCount"):
                if needed not in type_.fields:
                    yield f"{type_.name}.{needed}: missing"
        for name, field in type_.fields.items():
            if _is_connection(get_named_type(field.type)):
                for needed, of in (("first", "Int"), ("after", "String")):
                    if needed not in field.args:
                        yield f"{type_.name}.{name}({needed}): missing"
                    elif get_named_type(field.args[needed].type).name != of:
                        yield f"{type_.name}.{name}({needed}): not {of}"


# Connections published under another name (a rename breaks every client's fragments on the type).
CONNECTION_NAMES = {
    "FollowUpWorklist": "the worklist's connection, named after the screen it feeds; published so",
}


# --- Names -------------------------------------------------------------------------------------------------------

# Verbs a mutation name must not begin with: the codebase writes noun + Verb (patientCreate, contractRenew), so a
# client's list of mutations sorts by the thing they act on.
LEADING_VERBS = frozenset({
    "add", "archive", "assign", "book", "break", "cancel", "change", "create", "delete", "disable", "enable", "get",
    "import", "invite", "log", "login", "logout", "mark", "remove", "renew", "reset", "retire",
    "revoke", "send", "set", "sign", "start", "update", "upsert",
})
# Published mutations that do not read noun + Verb, with why they stay.
MUTATION_NAMES = {
    "login": "the staff sign-in: the conventional word, before the noun + Verb rule (patientLogin follows it)",
    "logout": "the sign-out of any session: the conventional word",
    "breakGlass": "the domain's name for the act (break-glass access); what it opens is an emergencyAccess",
}
# Input types end in Input; a list argument's filter and order follow GitHub's API: `filter: XFilter`,
# `orderBy: XOrder` (docs/architecture.md, "Lists").
INPUT_SUFFIX_ARGUMENTS = {"Filter": "filter", "Order": "orderBy"}
# Fields and arguments named ...Id whose value is not one of careloop's record ids, so rightly not ID.
NOT_RECORD_IDS = {
    "nationalId": "the number on a national identity document (a String: letters and leading zeros matter)",
    "requestId": "the X-Request-ID of an HTTP request, quoted to support",
    "linkId": "FHIR's Questionnaire.item.linkId: an item's key within one questionnaire, a String in FHIR",
    "itemLinkId": "the linkId of a questionnaire item (above)",
}


def misnamed_mutations(schema: GraphQLSchema) -> Iterator[str]:
    assert schema.mutation_type is not None
    for name in schema.mutation_type.fields:
        words = _words(name)
        if (len(words) < 2 or words[0] in LEADING_VERBS) and name not in MUTATION_NAMES:
            yield name


def misnamed_inputs(schema: GraphQLSchema) -> Iterator[str]:
    """An input type ends in Input, or in Filter/Order and is then only the list arguments' ``filter``/``orderBy``;
    no output type or enum ends in Input."""
    inputs = [t for t in _types(schema) if isinstance(t, GraphQLInputObjectType)]
    for type_ in _types(schema):
        if not isinstance(type_, GraphQLInputObjectType) and type_.name.endswith("Input"):
            yield f"{type_.name}: an output type named like an input"
    for type_ in inputs:
        if type_.name.endswith("Input"):
            continue
        suffix = next((s for s in INPUT_SUFFIX_ARGUMENTS if type_.name.endswith(s)), None)
        if suffix is None:
            yield f"{type_.name}: an input type not named ...Input"
    for holder in _with_fields(schema):
        for name, field in holder.fields.items():
            for arg_name, arg in field.args.items():
                arg_type = get_named_type(arg.type)
                for suffix, expected in INPUT_SUFFIX_ARGUMENTS.items():
                    if isinstance(arg_type, GraphQLInputObjectType) and arg_type.name.endswith(suffix) \
                            and arg_name != expected:
                        yield f"{holder.name}.{name}({arg_name}): a ...{suffix} input is the `{expected}` argument"
    for type_ in inputs:  # a Filter or Order nested in another input would be neither argument
        for name, input_field in type_.fields.items():
            nested = get_named_type(input_field.type)
            if isinstance(nested, GraphQLInputObjectType) and not nested.name.endswith("Input"):
                yield f"{type_.name}.{name}: {nested.name} is a list argument's input, not an input's field"


# ID-typed fields named neither id, ...Id(s) nor ...Key (a key shared by versions), with why they stay so. Root fields
# are left out: a mutation's name says what it answers (contactDelete answers the id it deleted).
ID_NAMES = {
    "Patient.mergedInto": "published before the ...Id rule (PatientFilter says mergedIntoId); a rename breaks clients",
    "AuditEventFilter.actor": "the trail's filters, published so: the actor's id",
    "AuditEventFilter.patient": "the trail's filters, published so: the patient file's id",
    "AuditEventFilter.resource": "the trail's filters, published so: the record's id",
}


def _id_like(name: str) -> bool:
    return (name == "id" or name.endswith(("Id", "Ids"))) and name not in NOT_RECORD_IDS


def ids_not_typed_id(schema: GraphQLSchema) -> Iterator[str]:
    """A field, argument or input field named ``id``, ``...Id`` or ``...Ids`` is an ``ID`` (a list of them)."""
    def wrong(name: str, of: object) -> bool:
        return _id_like(name) and get_named_type(of).name != "ID"  # type: ignore[arg-type]

    for type_ in _types(schema):
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for name, field in type_.fields.items():
                if wrong(name, field.type):
                    yield f"{type_.name}.{name}"
                for arg_name, arg in (field.args.items() if isinstance(field, GraphQLField) else ()):
                    if wrong(arg_name, arg.type):
                        yield f"{type_.name}.{name}({arg_name})"


def ids_named_otherwise(schema: GraphQLSchema) -> Iterator[str]:
    """``Type.field`` (or ``(argument)``) typed ``ID`` but not named ``id``, ``...Id(s)`` or ``...Key``: a codegen
    user reads ``patient: ID`` as the patient itself."""
    def named_otherwise(name: str, of: object) -> bool:
        return get_named_type(of).name == "ID" and not (  # type: ignore[arg-type]
            name in ("id", "key") or name.endswith(("Id", "Ids", "Key")))

    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    for type_ in _types(schema):
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for name, field in type_.fields.items():
                if type_ not in roots and named_otherwise(name, field.type):
                    yield f"{type_.name}.{name}"
                for arg_name, arg in (field.args.items() if isinstance(field, GraphQLField) else ()):
                    if named_otherwise(arg_name, arg.type):
                        yield f"{type_.name}.{name}({arg_name})"


# --- FHIR --------------------------------------------------------------------------------------------------------

# FHIR R4 (4.0.1) code sets, from hl7.org/fhir/R4/valueset-*.html.
ENCOUNTER_STATUS = {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
                    "entered-in-error", "unknown"}
FLAG_STATUS = {"active", "inactive", "entered-in-error"}
REQUEST_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
TASK_STATUS = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
               "on-hold", "failed", "completed", "entered-in-error"}
APPOINTMENT_STATUS = {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                      "entered-in-error", "checked-in", "waitlist"}
SLOT_STATUS = {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"}
EVENT_STATUS = {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error",
                "unknown"}
PUBLICATION_STATUS = {"draft", "active", "retired", "unknown"}
QUESTIONNAIRE_RESPONSE_STATUS = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
CONTRACT_STATUS = {"amended", "appended", "cancelled", "disputed", "entered-in-error", "executable", "executed",
                   "negotiable", "offered", "policy", "rejected", "renewed", "revoked", "resolved", "terminated"}

# The enums the docs say follow a FHIR resource (docs/care-journey.md, docs/messages.md, docs/surveys.md,
# docs/contracts.md), with the code set of that resource's status. Slot and QuestionnaireResponse have no status
# enum here: a slot answers its free places as a number, a response has no status (each one is completed).
FHIR_ENUMS: dict[str, set[str]] = {
    "VisitStatus": ENCOUNTER_STATUS,  # Encounter.status
    "FlagStatus": FLAG_STATUS,  # Flag.status
    "CarePlanStatus": REQUEST_STATUS,  # CarePlan.status
    "FollowUpTaskStatus": TASK_STATUS,  # Task.status
    "AppointmentStatus": APPOINTMENT_STATUS,  # Appointment.status
    # docs/messages.md: a row is a CommunicationRequest while it waits, a Communication once settled.
    "CommunicationStatus": REQUEST_STATUS | EVENT_STATUS,
    "QuestionnaireStatus": PUBLICATION_STATUS,  # Questionnaire.status
    "ContractStatus": CONTRACT_STATUS,  # Contract.status
}


def _fhir_code(value_name: str) -> str:
    """The FHIR spelling of a GraphQL enum value: ``IN_PROGRESS`` -> ``in-progress``."""
    return value_name.lower().replace("_", "-")


def _codes_named_after_fhir(description: str, codes: set[str]) -> set[str]:
    at = description.find("FHIR")
    return set() if at < 0 else set(re.findall(r"[a-z]+(?:-[a-z]+)*", description[at:])) & codes


def fhir_divergences(schema: GraphQLSchema, enums: dict[str, set[str]]) -> Iterator[str]:
    """``Enum.VALUE`` of each value that is not its FHIR code (spelled as FHIR spells it) and whose description does
    not name the FHIR code it maps to ("(FHIR offered)", "FHIR R4 has no draft code: negotiable is the nearest")."""
    for enum_name, codes in enums.items():
        type_ = schema.type_map.get(enum_name)
        if not isinstance(type_, GraphQLEnumType):
            yield f"{enum_name}: no such enum"
            continue
        for name, value in type_.values.items():
            if _fhir_code(name) not in codes and not _codes_named_after_fhir(value.description or "", codes):
                yield f"{enum_name}.{name}"


def contract_doc_divergences(text: str) -> Iterator[str]:
    """docs/contracts.md maps each contract status to FHIR in its lifecycle table: each code it gives (in brackets
    where it is only the nearest) is an R4 contract-status code."""
    rows = re.findall(r"^\| ([A-Z_]+) \| \(?([a-z-]+)\)? \|", text, flags=re.MULTILINE)
    assert len(rows) >= 8, "the lifecycle table of docs/contracts.md moved: update this test"
    for status, code in rows:
        if code not in CONTRACT_STATUS:
            yield f"{status}: {code}"


# --- The tests ---------------------------------------------------------------------------------------------------

def test_descriptions_say_more_than_the_name() -> None:
    assert list(restated_names(_schema())) == [], (
        "say what the name cannot: units, time zone, who may read it, what null means, the bound")
    assert list(scalars_described_by_default(_schema())) == []
    assert list(rates_without_scale(_schema())) == [], "say whether it is a fraction (0 to 1) or a percent"
    assert list(unexplained_boolean_answers(_schema())) == []


def test_every_nullable_field_says_what_null_means() -> None:
    assert list(unexplained_nulls(_schema())) == [], (
        "say when it is null: \"null: not set\", \"null when fewer than 5 answers\", \"null with FORBIDDEN without "
        "...\", \"never null (...)\"")


def test_every_deprecation_names_its_replacement() -> None:
    assert list(deprecations_without_replacement(_schema())) == []


def test_every_list_of_records_is_paged_or_capped() -> None:
    found = list(uncapped_lists(_schema()))
    assert sorted(set(found) - set(UNCAPPED)) == [], (
        "a list of records is unbounded: page it (a ...Connection with first/after and totalCount) or bound it "
        "and say so in its description (\"at most 50\")")
    assert sorted(set(UNCAPPED) - set(found)) == [], "capped or paged since: take it off UNCAPPED"


def test_every_connection_has_its_shape() -> None:
    assert list(malformed_connections(_schema())) == []


def test_mutations_are_named_noun_verb() -> None:
    assert list(misnamed_mutations(_schema())) == []
    assert set(MUTATION_NAMES) <= set(_schema().mutation_type.fields)  # type: ignore[union-attr]


def test_inputs_are_named_for_what_they_are() -> None:
    assert list(misnamed_inputs(_schema())) == []


def test_ids_are_typed_id() -> None:
    assert list(ids_not_typed_id(_schema())) == []


def test_ids_are_named_as_ids() -> None:
    assert sorted(ids_named_otherwise(_schema())) == sorted(ID_NAMES)


def test_fhir_enums_use_the_fhir_codes_or_name_them() -> None:
    assert list(fhir_divergences(_schema(), FHIR_ENUMS)) == []


def test_the_contract_lifecycle_table_names_fhir_codes() -> None:
    assert list(contract_doc_divergences((ROOT / "docs" / "contracts.md").read_text())) == []


def test_the_walks_reach_the_real_schema() -> None:
    """The control: the real schema holds what each walk looks at, so an empty answer means something."""
    schema = _schema()
    fields = [f for t in _with_fields(schema) for f in t.fields.values()]
    assert sum(1 for f in fields if f.deprecation_reason) >= 10
    assert sum(1 for f in fields if isinstance(get_nullable_type(f.type), GraphQLList)  # type: ignore[arg-type]
               and _is_record(get_named_type(f.type))) >= 20
    assert sum(1 for t in _types(schema) if _is_connection(t)) >= 20
    assert len(schema.mutation_type.fields) >= 100  # type: ignore[union-attr]
    assert sum(1 for t in _types(schema) if isinstance(t, GraphQLInputObjectType)) >= 50
    roots = {schema.query_type, schema.mutation_type}
    assert sum(1 for t in _with_fields(schema) if t not in roots for f in t.fields.values()
               if not isinstance(f.type, GraphQLNonNull)) >= 100


# --- The trap: a small schema that breaks each rule once, beside a twin that keeps it ----------------------------

@strawberry.enum(description="Described.")
class TrapVisitStatus(Enum):
    PLANNED = strawberry.enum_value("planned", description="Mechanically FHIR's own.")
    NO_SHOW = strawberry.enum_value("no_show", description="Not a FHIR Encounter code, and names none.")
    GONE = strawberry.enum_value("gone", description="Left early (FHIR has no code: cancelled is the nearest).")
    OLD = strawberry.enum_value("old", description="D.", deprecation_reason="Use PLANNED.")
    OLDER = strawberry.enum_value("older", description="D.", deprecation_reason="Do not use.")


@strawberry.type(description="D. A field you may not read is null with FORBIDDEN.")
class TrapGuarded:
    """Its type says what null means, for every field of it."""
    secret: str | None = strawberry.field(description="D.")


@strawberry.type(description="D.")
class TrapRecord:
    id: strawberry.ID = strawberry.field(description="D.")
    owner_id: str = strawberry.field(description="D. Should be an ID.")
    closed_at: str = strawberry.field(description="Closed at.")
    opened_at: str = strawberry.field(description="When it was opened, in UTC: says more than its name.")
    opened_on: date = strawberry.field(description="The local date it was opened (a Date: Strawberry's own).")
    reopen_rate: float = strawberry.field(description="Reopened / closed.")
    close_rate: float = strawberry.field(description="Closed / opened, a fraction 0 to 1.")
    national_id: str = strawberry.field(description="D. Rightly a String.")
    owner: strawberry.ID = strawberry.field(description="D. An id not named as one.")
    closed_by: str | None = strawberry.field(description="Who closed it (says nothing of when it is empty).")
    reopened_at: str | None = strawberry.field(description="When it was reopened; null while it is not.")
    guarded: TrapGuarded = strawberry.field(description="D.")


@strawberry.type(description="D.")
class TrapPageInfo:
    has_next_page: bool = strawberry.field(description="D.")


@strawberry.type(description="D.")
class TrapRecordConnection:
    edges: list[TrapRecord] = strawberry.field(description="D. (Not edges of its own: the walks look at names.)")
    nodes: list[TrapRecord] = strawberry.field(description="D.")
    page_info: TrapPageInfo = strawberry.field(description="D.")
    total_count: int = strawberry.field(description="D.")


@strawberry.type(description="D.")
class TrapRecordPage:
    """Named unlike a connection and missing its edges."""
    nodes: list[TrapRecord] = strawberry.field(description="D.")
    page_info: TrapPageInfo = strawberry.field(description="D.")
    total_count: int = strawberry.field(description="D.")


@strawberry.input(description="D.")
class TrapRecordFilter:
    status: TrapVisitStatus | None = strawberry.field(default=None, description="D.")


@strawberry.input(description="D.")
class TrapRecordCreateInput:
    owner_id: strawberry.ID = strawberry.field(description="D.")


@strawberry.input(description="D.")
class TrapRecordBody:
    """An input type not named ...Input."""
    owner_id: strawberry.ID = strawberry.field(description="D.")


@strawberry.type(description="D.")
class TrapQuery:
    @strawberry.field(description="Every record, capped: at most 50.")
    def capped(self) -> list[TrapRecord]:
        return []

    @strawberry.field(description="Every record, however many.")
    def every(self) -> list[TrapRecord]:
        return []

    @strawberry.field(description="D.", deprecation_reason="Page through the list instead.")
    def old_list(self) -> list[TrapRecord]:
        return []

    @strawberry.field(description="D.")
    def records(self, first: Annotated[int, strawberry.argument(description="D.")] = 20,
                after: Annotated[str | None, strawberry.argument(description="D.")] = None,
                filter: Annotated[TrapRecordFilter | None, strawberry.argument(description="D.")] = None
                ) -> TrapRecordConnection:
        raise NotImplementedError

    @strawberry.field(description="D.")
    def pages(self, where: Annotated[TrapRecordFilter | None, strawberry.argument(description="D.")] = None
              ) -> TrapRecordPage:
        raise NotImplementedError

    @strawberry.field(description="One record (a root field: null only with its error).")
    def lookup(self) -> TrapRecord | None:
        return None

    @strawberry.field(description="D.", deprecation_reason="Use records.")
    def all_records(self, record_id: Annotated[str, strawberry.argument(description="D.")]) -> str:
        return "x"


@strawberry.type(description="D.")
class TrapMutation:
    @strawberry.mutation(description="D.")
    def record_create(self, input: Annotated[TrapRecordCreateInput, strawberry.argument(description="D.")]) -> str:
        return "x"

    @strawberry.mutation(description="Marks the record done, for good.")
    def record_close(self) -> bool:
        return True

    @strawberry.mutation(description="Open a record: answers true, or false when it was open already.")
    def record_open(self) -> bool:
        return True

    @strawberry.mutation(description="D.")
    def create_record(self, input: Annotated[TrapRecordBody, strawberry.argument(description="D.")]) -> str:
        return "x"


def test_the_walks_find_the_trap() -> None:
    """Each check, on a schema that breaks its rule once next to a twin that keeps it: found, and only that."""
    schema = strawberry.Schema(query=TrapQuery, mutation=TrapMutation)._schema
    assert list(restated_names(schema)) == ["TrapRecord.closedAt"]
    assert list(scalars_described_by_default(schema)) == ["Date"]
    assert list(rates_without_scale(schema)) == ["TrapRecord.reopenRate"]
    assert list(unexplained_boolean_answers(schema)) == ["recordClose"]
    assert list(unexplained_nulls(schema)) == ["TrapRecord.closedBy"]
    assert sorted(deprecations_without_replacement(schema)) == ["TrapQuery.oldList", "TrapVisitStatus.OLDER"]
    assert sorted(uncapped_lists(schema)) == ["TrapQuery.every", "TrapQuery.oldList"]
    assert sorted(malformed_connections(schema)) == [
        "TrapQuery.pages(after): missing", "TrapQuery.pages(first): missing",
        "TrapRecordPage.edges: missing", "TrapRecordPage: not named ...Connection",
    ]
    assert list(misnamed_mutations(schema)) == ["createRecord"]
    assert sorted(misnamed_inputs(schema)) == [
        "TrapQuery.pages(where): a ...Filter input is the `filter` argument",
        "TrapRecordBody: an input type not named ...Input",
    ]
    assert sorted(ids_not_typed_id(schema)) == ["TrapQuery.allRecords(recordId)", "TrapRecord.ownerId"]
    assert list(ids_named_otherwise(schema)) == ["TrapRecord.owner"]
    assert sorted(fhir_divergences(schema, {"TrapVisitStatus": ENCOUNTER_STATUS, "Missing": FLAG_STATUS})) == [
        "Missing: no such enum", "TrapVisitStatus.NO_SHOW", "TrapVisitStatus.OLD", "TrapVisitStatus.OLDER"]
    assert list(contract_doc_divergences("| A | executed | x |\n" * 7 + "| EXPIRED | (expired) | x |\n")) == [
        "EXPIRED: expired"]
