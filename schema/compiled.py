"""The compiled read path for the patient list and the single patient (issue 17, item 1).

graphql-core completes a page of 50 patients field by field: ~800 resolver calls, each with its resolve info,
path, awaitable checks and a field-class check. Here the executor recognises the root ``patients`` and
``patient`` of a query and completes their whole subtree in one pass from a plan (the selection collected by
graphql-core itself, so fragments, aliases, variables and @skip/@include mean what they always mean):

- each field class is checked once per patient (``access.require_class``), then the fields of that class are
  opened with ``access.open_patient_field``: the same calls, the same audit notes as the generic path;
- errors go through graphql-core's own ``handle_field_error`` (same message, code, path, locations, and null
  propagation), and leaves through its own ``complete_leaf_value``;
- ``contacts`` are coroutines shaped as graphql-core shapes its awaitables (one awaited directly, several
  gathered as tasks), so that their checks, errors and audit notes come in the generic path's order; their
  loads are batched across the page by the loader, as in the generic path.

A plan is made once per document, like parsing and validation: ``DocumentCache`` keeps it per operation node
(the parser cache hands back the same one for the same text) and per value of the variables @skip/@include read,
the only request values that change which fields graphql-core collects. A plan holds the document's field nodes,
the schema's types and the readers, nothing of a request. The same cache keeps the columns a root field's
selection reads (``patient_columns``), which the root resolvers load instead of whole rows, on both paths.

Anything the plan does not know (another field, a directive other than @skip/@include, @defer, an operation
with several root fields, a mutation) falls back to graphql-core for the whole root field: never a different
answer. The generic path stays the reference; tests/api/test_compiled_reads.py runs a corpus of queries
through both (``CARELOOP_COMPILED_READS=0`` switches this path off) and compares answers and audit records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationType,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import Executor
from graphql.pyutils import Path, gather_with_cancel, is_iterable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from policies.fields import PATIENT_FIELD_CLASS
from resolvers import access
from resolvers import contact as contacts
from schema.contact import Contact, ContactSource, contact_node
from schema.patient import _CONVERT, Patient, PatientConnection, PatientSource
from schema.selection import CACHE, DIRECTIVES, camel

log = logging.getLogger("careloop.compiled")
planned = logging.getLogger("careloop.compiled.plan")  # one debug line per plan made (tests count cache misses)

SWITCH = "CARELOOP_COMPILED_READS"  # "0": every field through graphql-core (the reference path)


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


# -- what each supported field reads -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    read: Callable[[Any], Any] | None = None  # source -> the value a resolver would return
    field_class: str | None = None  # a patient field class, checked once per patient before ``read``
    deferred: bool = False  # contacts: checked and loaded after the synchronous fields


def _resolver_of(cls: type, name: str) -> Callable[[Any], Any]:
    """The schema type's own resolver method, so that ``id`` and ``version`` are computed by the same code."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    resolver = definition.get_field(name).base_resolver
    assert resolver is not None
    return resolver.wrapped_func


def _patient_field(name: str) -> _Reader:
    convert = _CONVERT.get(name)

    def read(source: PatientSource) -> Any:
        value = access.open_patient_field(source.ctx, source.view, name)
        return value if convert is None or value is None else convert(value)

    return _Reader(read, PATIENT_FIELD_CLASS[name])


def _contact_field(name: str) -> _Reader:
    return _Reader(lambda source: source.read(name))


def _attribute(name: str) -> _Reader:
    return _Reader(lambda source: getattr(source, name))


_READERS: dict[str, dict[str, _Reader]] = {
    "PatientConnection": {
        "edges": _attribute("edges"),
        "nodes": _Reader(lambda source: [edge.node for edge in source.edges]),
        "pageInfo": _attribute("page_info"),
        "totalCount": _attribute("total_count"),
    },
    "PatientEdge": {"cursor": _attribute("cursor"), "node": _attribute("node")},
    "PageInfo": {camel(n): _attribute(n) for n in ("has_next_page", "end_cursor", "start_cursor",
                                                     "has_previous_page")},
    "Patient": {
        "id": _Reader(_resolver_of(Patient, "id")),
        "version": _Reader(_resolver_of(Patient, "version")),
        "mergedInto": _Reader(lambda s: None if s.view.row.merged_into_id is None else str(s.view.row.merged_into_id),
                              "identity"),
        "mergedAt": _Reader(lambda s: s.view.row.merged_at, "identity"),
        "contacts": _Reader(deferred=True),
        **{camel(name): _patient_field(name) for name in PatientSource.fields},
    },
    "Contact": {
        "id": _Reader(_resolver_of(Contact, "id")),
        "patientId": _Reader(_resolver_of(Contact, "patient_id")),
        "version": _Reader(_resolver_of(Contact, "version")),
        **{camel(name): _contact_field(name) for name in ContactSource.fields},
    },
}
_ROOTS = {PatientConnection: "PatientConnection", PatientSource: "Patient"}


# -- the plan: graphql-core's collected fields, each with its reader ----------------------------------------


@dataclass(slots=True)
class _Field:
    key: str  # the response key (alias or name)
    name: str
    parent: str  # the parent type's name (error messages and paths)
    type: GraphQLOutputType
    details: FieldDetailsList
    reader: _Reader | None  # None: __typename
    sub: _Object | None = None


@dataclass(slots=True)
class _Object:
    type: GraphQLObjectType
    fields: list[_Field] = field(default_factory=list)


def _plan(executor: Executor[Any], object_type: GraphQLObjectType, details: FieldDetailsList) -> _Object | None:
    """The plan of an object's selection; None when any part of it is not supported."""
    readers = _READERS.get(object_type.name)
    if readers is None or object_type.is_type_of is not None:
        return None
    grouped, defer_usages, _forbidden = executor.collect_subfields(object_type, details)
    if defer_usages:
        return None
    plan = _Object(object_type)
    for key, field_details in grouped.items():
        if any(d.fragment_variable_values is not None or d.node.arguments
               or any(x.name.value not in DIRECTIVES for x in d.node.directives or ()) for d in field_details):
            return None
        name = field_details[0].node.name.value
        if name == "__typename":
            plan.fields.append(_Field(key, name, object_type.name, object_type, field_details, None))
            continue
        reader = readers.get(name)
        if reader is None:
            return None
        return_type = object_type.fields[name].type
        named = get_named_type(return_type)
        sub = None
        if is_object_type(named):
            sub = _plan(executor, named, field_details)
            if sub is None:
                return None
        elif not is_leaf_type(named):
            return None
        plan.fields.append(_Field(key, name, object_type.name, return_type, field_details, reader, sub))
    return plan


# -- running a plan ------------------------------------------------------------------------------------------


class _Run:
    """Completes a plan depth first as graphql-core does, and shapes the asynchronous part (contacts) as graphql-core
    shapes it: an object or list with one pending value awaits it directly, with several gathers them as tasks. The
    tasks' order decides the order of the contact checks, so of their errors: deferring every contact to one pass in
    document order answered differently as soon as one branch had two contact fields and another one."""

    def __init__(self, executor: Executor[Any]) -> None:
        self.executor = executor
        self.is_awaitable = executor.is_awaitable

    def object(self, plan: _Object, source: Any, path: Path) -> Any:
        """graphql-core's execute_fields: a dict, or an awaitable of it when some field is pending."""
        out: dict[str, Any] = {}
        pending: list[str] = []
        allowed: set[str] = set()  # the patient field classes already checked on this object
        try:
            for f in plan.fields:
                reader = f.reader
                if reader is None:
                    value: Any = plan.type.name
                elif reader.deferred:
                    value = self.contacts(f, source, Path(path, f.key, f.parent))
                else:
                    value = self.field(f, reader, source, path, allowed)
                out[f.key] = value
                if self.is_awaitable(value):
                    pending.append(f.key)
        except Exception:
            if pending:  # as graphql-core: the contacts already started still run (and note) in the background
                self.executor.settle_in_background([out[key] for key in pending])
            raise
        return _awaited(out, pending) if pending else out

    def field(self, f: _Field, reader: _Reader, source: Any, parent: Path, allowed: set[str]) -> Any:
        """graphql-core's execute_field for a synchronous resolver."""
        try:
            if reader.field_class is not None and reader.field_class not in allowed:
                access.require_class(source.ctx, source.view, reader.field_class)  # notes, or raises FORBIDDEN
                allowed.add(reader.field_class)
            assert reader.read is not None
            completed = self.complete(f, f.type, reader.read(source), parent, True)
        except Exception as raw:
            # graphql-core's own handling: located at the field, null, or propagated when non-null
            self.executor.handle_field_error(raw, f.type, f.details, Path(parent, f.key, f.parent))
            return None
        if self.is_awaitable(completed):
            return self.guarded(completed, f.type, f.details, Path(parent, f.key, f.parent))
        return completed

    async def guarded(self, completed: Any, return_type: GraphQLOutputType, details: FieldDetailsList,
                      path: Path) -> Any:
        """An awaited completion, its error handled at ``path`` (graphql-core's await_completed)."""
        try:
            return await completed
        except Exception as raw:
            self.executor.handle_field_error(raw, return_type, details, path)
            return None

    def complete(self, f: _Field, return_type: GraphQLOutputType, value: Any, path: Path, at_field: bool) -> Any:
        """graphql-core's complete_value for the types of a plan (``path`` is the parent's when ``at_field``)."""
        if isinstance(value, Exception):
            raise value
        if is_non_null_type(return_type):
            assert isinstance(return_type, GraphQLNonNull)
            completed = self.complete(f, return_type.of_type, value, path, at_field)
            if completed is None:
                raise TypeError(f"Cannot return null for non-nullable field {f.parent}.{f.name}.")
            return completed
        if value is None:
            return None
        if is_leaf_type(return_type):
            return Executor.complete_leaf_value(return_type, value)
        here = Path(path, f.key, f.parent) if at_field else path
        if is_list_type(return_type):
            assert isinstance(return_type, GraphQLList)
            if not is_iterable(value):
                raise GraphQLError(f"Expected Iterable, but did not find one for field '{f.parent}.{f.name}'.")
            return self.items(f, return_type.of_type, value, here)
        assert f.sub is not None
        return self.object(f.sub, value, here)

    def items(self, f: _Field, item_type: GraphQLOutputType, values: Any, path: Path) -> Any:
        """graphql-core's complete_iterable_value: a list, or an awaitable of it when some item is pending."""
        out: list[Any] = []
        pending: list[int] = []
        try:
            for index, value in enumerate(values):
                completed = self.item(f, item_type, value, path.add_key(index, None))
                if self.is_awaitable(completed):
                    pending.append(index)
                out.append(completed)
        except Exception:
            if pending:
                self.executor.settle_in_background([out[index] for index in pending])
            raise
        return _awaited(out, pending) if pending else out

    def item(self, f: _Field, item_type: GraphQLOutputType, value: Any, path: Path) -> Any:
        """graphql-core's complete_list_item_value."""
        try:
            completed = self.complete(f, item_type, value, path, False)
        except Exception as raw:
            self.executor.handle_field_error(raw, item_type, f.details, path)
            return None
        if self.is_awaitable(completed):
            return self.guarded(completed, item_type, f.details, path)
        return completed

    async def contacts(self, f: _Field, source: PatientSource, path: Path) -> Any:
        """``Patient.contacts`` as its resolver and graphql-core's complete_awaitable_value run it: the coroutine
        is made in the synchronous pass and started where graphql-core starts the resolver's."""
        ctx = source.ctx
        try:
            access.require_contacts(ctx, source.view)
            nodes = [contact_node(ctx, view) for view in await contacts.of_patient(ctx, source.view)]
            completed = self.complete(f, f.type, nodes, path, False)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            self.executor.handle_field_error(raw, f.type, f.details, path)
            return None
        return completed


async def _awaited(out: Any, pending: list[Any]) -> Any:
    """``out`` (a dict or a list) with its pending values awaited in place: one directly, several gathered as
    tasks, as graphql-core awaits an object's fields and a list's items."""
    if len(pending) == 1:
        out[pending[0]] = await out[pending[0]]
    else:
        for key, value in zip(pending, await gather_with_cancel(*(out[k] for k in pending)), strict=True):
            out[key] = value
    return out


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with the root ``patients`` and ``patient`` of a query completed from a plan."""

    def complete_value(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList, info: Any,
                       path: Path, result: Any, position_context: Any) -> Any:
        if path.prev is None and type(result) in _ROOTS:
            compiled = self._compiled(return_type, field_details_list, path, result)
            if compiled is not None:
                return compiled
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def _compiled(self, return_type: GraphQLOutputType, details: FieldDetailsList, path: Path, result: Any) -> Any:
        if (not enabled() or self.operation.operation != OperationType.QUERY
                or len(self.operation.selection_set.selections) != 1
                or not isinstance(self.operation.selection_set.selections[0], FieldNode)):
            return None  # several root fields interleave their errors and notes: graphql-core's order only
        object_type = get_named_type(return_type)
        if not isinstance(object_type, GraphQLObjectType) or object_type.name != _ROOTS[type(result)]:
            return None
        plan = CACHE.get(self.schema, self.operation, self.fragment_definitions, self.variable_values.coerced,
                         ("plan", object_type.name), lambda: self._planned(object_type, details))
        if plan is None:
            return None
        log.debug("compiled %s", path.key)  # the differential tests check that the plan ran
        return _Run(self).object(plan, result, path)

    def _planned(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> _Object | None:
        planned.debug("planned %s", object_type.name)
        return _plan(self, object_type, details)
