"""What a plan is made of: each supported field's reader, and the plan itself, graphql-core's collected fields.

A type is compiled from its Strawberry definition (``readers_of``): a field without a resolver reads its attribute
as Strawberry's default resolver does; a synchronous resolver that takes nothing but ``self`` (and ``info``, of
which resolvers read the context alone) is called as it is, so that ``id``, ``patient`` or ``visitId`` are
computed and checked by the schema's own code. Asynchronous resolvers are supported only where a type's module
says so (``loads``): their coroutines are run where graphql-core runs them (``schema.compiled.run``). Fields read
under a class of the patient's file (``guarded``) are the point of the plan: the class is checked once per object
(``access.require_class`` on the file ``Compiled.patient`` names), then each field is opened by the same access
function the schema type's ``read`` calls after its own check.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter
from typing import Any, TypeAlias, cast

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import Executor

from core.validation import camel_case
from resolvers import access
from resolvers.access import PatientView
from schema.selection import DIRECTIVES


@dataclass(frozen=True, slots=True)
class Batch:
    """An asynchronous resolver split for a page (the fast pass's batched completion, ``fast.Pass.finish``): what it
    checks before it loads, and what it returns for several sources, loaded in one batch (with the fields the plan
    will read of each object it returns, GraphQL names, when it returns objects)."""

    check: Callable[[Any], None]
    # the sources' values, in one statement outside the request's loaders (``fast.Pass.finish`` says why)
    load: Callable[[list[Any], frozenset[str] | None], Awaitable[list[Any]]]
    key: Callable[[Any], Any]  # what the resolver asks its loader for (None: nothing, its value is null)


@dataclass(frozen=True, slots=True)
class Reader:
    read: Callable[[Any], Any] | None = None  # source -> the value a synchronous resolver would return
    field_class: str | None = None  # a class of the patient's file, checked once per object before ``read``
    load: Callable[[Any], Awaitable[Any]] | None = None  # source -> an asynchronous resolver's coroutine
    attribute: bool = False  # ``read`` reads the field's attribute (no resolver): a value, or a source's ``read``
    batch: Batch | None = None  # ``load`` split for a page, when the type's module offers it


@dataclass(frozen=True, slots=True)
class Compiled:
    """What a plan knows of one object type: its supported fields, and the patient's file the classes of its
    guarded fields are checked on."""

    readers: Mapping[str, Reader]
    patient: Callable[[Any], PatientView] | None = None


class _Info:
    """What a resolver reads of its info: the request's context."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


def resolver(cls: type, name: str) -> Callable[[Any], Any] | None:
    """The schema type's own resolver method, called on the source (with an info holding its context); None for a
    resolver that takes anything else (a root, a parent: not supported)."""
    function: Callable[..., Any] = cls.__strawberry_definition__.get_field(  # type: ignore[attr-defined]
        name).base_resolver.wrapped_func
    parameters = list(inspect.signature(function).parameters)
    if parameters == ["self"]:
        return function
    if parameters == ["self", "info"]:
        return lambda source: function(source, _Info(source.ctx))
    return None


def attribute(name: str) -> Reader:
    return Reader(attrgetter(name), attribute=True)


def readers_of(cls: type, readers: Mapping[str, Reader] | None = None, *, loads: Iterable[str] = (),
               batches: Mapping[str, Batch] | None = None) -> dict[str, Compiled]:
    """A type's plan entry from its Strawberry definition: every field without a resolver read as an attribute,
    every synchronous resolver taking no argument called, the asynchronous ``loads`` awaited (or batched, those of
    ``batches``), ``readers`` over these. Fields with arguments, permissions or extensions are left out (not
    supported: the generic path)."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    found: dict[str, Reader] = {}
    for f in definition.fields:
        if f.arguments or f.permission_classes or f.extensions or f.directives:
            continue
        key = f.graphql_name or camel_case(f.python_name)
        if f.base_resolver is None:
            found[key] = attribute(f.python_name)
            continue
        call = resolver(cls, f.python_name)
        if call is not None and f.python_name in loads:
            found[key] = Reader(load=call, batch=(batches or {}).get(f.python_name))
        elif call is not None and not f.base_resolver.is_async:
            found[key] = Reader(call)
    return {definition.name: Compiled({**found, **(readers or {})})}


def guarded(names: Iterable[str], classes: Mapping[str, str], open_field: Callable[[Any, str], Any],
            convert: Mapping[str, Callable[[Any], Any]]) -> dict[str, Reader]:
    """Fields read under a class of the patient's file: ``open_field(source, name)`` once the class is allowed
    (decrypting and noting as the schema type's own ``read`` does after its check), converted as it converts."""

    def reader(name: str) -> Reader:
        to = convert.get(name)
        if to is None:
            return Reader(lambda source: open_field(source, name), classes[name])
        return Reader(lambda source: None if (value := open_field(source, name)) is None else to(value),
                      classes[name])

    return {camel_case(name): reader(name) for name in names}


def with_patient(entries: dict[str, Compiled], patient: Callable[[Any], PatientView]) -> dict[str, Compiled]:
    """``entries`` (one type) with the file its guarded fields are read under."""
    return {name: Compiled(entry.readers, patient) for name, entry in entries.items()}


def journey(cls: type, source: Any, table: str, classes: Mapping[str, str],
            convert: Mapping[str, Callable[[Any], Any]]) -> dict[str, Compiled]:
    """A record of the patient's care journey (a follow-up task, a visit: its source has ``view.row`` and
    ``view.patient``): its ``source.fields`` read under the classes of the patient's file, opened as the source's
    ``read`` opens them (``access.read_journey_field`` is ``require_class`` and ``open_journey_field``)."""

    def open_field(record: Any, name: str) -> Any:
        view = record.view
        return access.open_journey_field(record.ctx, view.patient, table, view.row, name)

    return with_patient(readers_of(cls, guarded(source.fields, classes, open_field, convert)),
                        lambda record: record.view.patient)


# -- the plan: graphql-core's collected fields, each with its reader ----------------------------------------


PyType: TypeAlias = type  # ``Field.type`` is the GraphQL one


@dataclass(slots=True)
class Field:
    key: str  # the response key (alias or name)
    name: str
    parent: str  # the parent type's name (error messages and paths)
    type: GraphQLOutputType
    details: FieldDetailsList
    reader: Reader | None  # None: __typename
    sub: Object | None = None
    leaf: GraphQLLeafType | None = None  # a scalar or enum field's named type: completed in one step (run.Run.field)
    non_null: bool = False  # the field's own type is non-null
    # How a scalar or enum (or a list of them) completes without graphql-core's steps, for the values that allow
    # it; any other value takes graphql-core's way. ``same``: a value of this type is its own serialization (a str
    # for String and ID, a bool for Boolean); ``enum`` and ``names``: the members of an enum's Python class and the
    # names its serialize gives them (asked once, here).
    same: PyType | None = None
    enum: PyType | None = None
    names: Mapping[Any, str] | None = None
    get: Callable[[Any], Any] | None = None  # an attribute reader's read: completed in place (run.Run.object)
    items: bool = False  # the field is a list of its leaves (one level: a list of lists takes graphql-core's way)
    fast: Callable[..., Any] | None = None  # its value's completion in the fast pass (``fast.prepare``)
    selected: frozenset[str] | None = None  # a batched field's: the fields of its objects to be read (Batch.load)


@dataclass(slots=True)
class Object:
    type: GraphQLObjectType
    patient: Callable[[Any], PatientView] | None
    fields: list[Field] = field(default_factory=list)
    batched: bool = False  # (a root's) its one asynchronous field is batched (``batchable``)
    steps: list[Callable[..., None]] | None = None  # its fields' steps in the fast pass (``fast.prepare``)
    flat: Callable[..., dict[str, Any]] | None = None  # its whole completion in one function (``fast.prepare``)


def batchable(root: Object) -> bool:
    """Whether a plan's asynchronous fields are one nullable field, one selection, with a ``Batch``: then graphql-core
    starts its coroutines in document order (one task each, all waiting on one loader's batch) and wakes them by
    key, which the batched completion (``run.complete_root``) does without a task. Two selections (edges and
    nodes, two aliases) interleave by their depth, in an order only graphql-core's own awaiting gives."""
    loads = [f for f in _every_field(root) if f.reader is not None and f.reader.load is not None]
    return (len(loads) == 1 and loads[0].reader is not None and loads[0].reader.batch is not None
            and not loads[0].non_null)  # a failed load is null there, never propagated (``fast.Pass.failed``)


def _every_field(made: Object) -> Iterable[Field]:
    for f in made.fields:
        yield f
        if f.sub is not None:
            yield from _every_field(f.sub)


def plan(executor: Executor[Any], types: Mapping[str, Compiled], object_type: GraphQLObjectType,
         details: FieldDetailsList) -> Object | None:
    """The plan of an object's selection; None when any part of it is not supported."""
    compiled = types.get(object_type.name)
    if compiled is None or object_type.is_type_of is not None:
        return None
    grouped, defer_usages, _forbidden = executor.collect_subfields(object_type, details)
    if defer_usages:
        return None
    made = Object(object_type, compiled.patient)
    for key, field_details in grouped.items():
        if any(d.fragment_variable_values is not None or d.node.arguments
               or any(x.name.value not in DIRECTIVES for x in d.node.directives or ()) for d in field_details):
            return None
        name = field_details[0].node.name.value
        if name == "__typename":
            made.fields.append(Field(key, name, object_type.name, object_type, field_details, None))
            continue
        reader = compiled.readers.get(name)
        if reader is None:
            return None
        return_type = object_type.fields[name].type
        named = get_named_type(return_type)
        sub = None
        if is_object_type(named):
            sub = plan(executor, types, named, field_details)
            if sub is None:
                return None
        elif not is_leaf_type(named):
            return None
        made.fields.append(Field(key, name, object_type.name, return_type, field_details, reader, sub,
                                 *completion(return_type, reader)))
    return made


def completion(return_type: GraphQLOutputType, reader: Reader) -> tuple[
        GraphQLLeafType | None, bool, PyType | None, PyType | None, Mapping[Any, str] | None,
        Callable[[Any], Any] | None, bool]:
    """How a field of this type completes: ``Field.leaf``, ``non_null``, ``same``, ``enum``, ``names``, ``get`` and
    ``items``, in that order."""
    named = get_named_type(return_type)
    nullable = get_nullable_type(return_type)
    non_null = is_non_null_type(return_type)
    if not is_leaf_type(named):
        return None, non_null, None, None, None, None, False
    items = is_list_type(nullable)
    leaf = None if items else cast(GraphQLLeafType, named)
    leaves = items and is_leaf_type(get_nullable_type(cast(GraphQLList[Any], nullable).of_type))  # one level
    enum = getattr(named, "wrapped_cls", None) if isinstance(named, GraphQLEnumType) else None
    names: dict[Any, str] = {}
    if isinstance(enum, type) and issubclass(enum, Enum):
        for member in enum:
            try:
                names[member] = named.serialize(member)
            except Exception:  # noqa: S112 -- a member the enum cannot serialize keeps graphql-core's way (its error)
                continue
    else:
        enum = None
    get = reader.read if reader.attribute and reader.field_class is None and reader.load is None else None
    same = str if named is GraphQLString or named is GraphQLID else bool if named is GraphQLBoolean else None
    return leaf, non_null, same, enum, names or None, get, leaves
