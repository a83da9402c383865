"""What is computed from a query's selection alone, once per document: the compiled read path's plans and the
patient columns a root field reads (issue 17, item 1).

``DocumentCache`` keeps results as parsing and validation are kept: per operation node (the parser cache hands
back the same one for the same text) and per value of the variables @skip/@include read, the only request values
that change which fields graphql-core collects. ``patient_columns`` is the set of patient columns the selection
under a root ``patient`` or ``patients`` reads, which their resolvers load instead of whole rows, on the generic
and the compiled path alike (``schema.compiled`` runs the plans; this module imports no schema type, so the
patient resolvers can use it without a circle).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from graphql import (
    FragmentDefinitionNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, FieldDetailsList, FragmentDetails, collect_subfields
from graphql.execution.values import VariableValues
from strawberry.utils.str_converters import to_snake_case

from core.validation import camel_case
from policies.fields import PATIENT_FIELD_CLASS

T = TypeVar("T")
DIRECTIVES = frozenset({"skip", "include"})  # applied by graphql-core's field collection


# -- caching by document -------------------------------------------------------------------------------------

_ABSENT = object()  # a switch variable without a value (distinct from null)


def _switch_variables(operation: OperationDefinitionNode,
                      fragments: Iterable[FragmentDefinitionNode]) -> tuple[str, ...] | None:
    """The variables @skip/@include read anywhere in the document: with the document, their values decide which
    fields graphql-core collects, and no other variable does. None when a fragment declares variables of its own
    (experimental fragment arguments, off in the parser): what it collects then depends on more, so not cached."""
    names: set[str] = set()

    def visit(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set is not None else ():
            for directive in selection.directives or ():
                if directive.name.value in DIRECTIVES:
                    names.update(argument.value.name.value for argument in directive.arguments or ()
                                 if isinstance(argument.value, VariableNode))
            visit(getattr(selection, "selection_set", None))

    visit(operation.selection_set)
    for fragment in fragments:
        if fragment.variable_definitions:
            return None
        visit(fragment.selection_set)
    return tuple(sorted(names))


@dataclass(slots=True)
class _Document:
    operation: OperationDefinitionNode  # held, so that its id is not reused while the entry lives
    switches: tuple[str, ...] | None
    results: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)


class DocumentCache:
    """What is computed from an operation's selection alone, kept as parsing and validation are: per schema, per
    operation node (its identity: the parser cache returns the same node for the same text, and hashing a node
    walks the whole tree), then per ``key`` and values of the @skip/@include variables. Bounded: the least
    recently used documents go first, and a document keeps ``per_document`` results (one per combination of
    switch values asked for)."""

    def __init__(self, maxsize: int = 256, per_document: int = 16) -> None:
        self.maxsize, self.per_document = maxsize, per_document
        self._schemas: WeakKeyDictionary[GraphQLSchema, OrderedDict[int, _Document]] = WeakKeyDictionary()

    def get(self, schema: GraphQLSchema, operation: OperationDefinitionNode,
            fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any], key: Hashable,
            make: Callable[[], T]) -> T:
        documents = self._schemas.get(schema)
        if documents is None:
            documents = self._schemas[schema] = OrderedDict()
        document = documents.get(id(operation))
        if document is None or document.operation is not operation:
            document = documents[id(operation)] = _Document(operation,
                                                            _switch_variables(operation, fragments.values()))
            if len(documents) > self.maxsize:
                documents.popitem(last=False)
        documents.move_to_end(id(operation))
        if document.switches is None:
            return make()
        full = (key, tuple(variables.get(name, _ABSENT) for name in document.switches))
        try:
            found = document.results.get(full, _ABSENT)
        except TypeError:  # a switch variable's value is not hashable (not a Boolean): not worth keeping
            return make()
        if found is not _ABSENT:
            document.results.move_to_end(full)
            return found
        made = document.results[full] = make()
        if len(document.results) > self.per_document:
            document.results.popitem(last=False)
        return made


CACHE = DocumentCache()


# -- the columns a root field's selection reads --------------------------------------------------------------

# What each Patient field reads off the row besides what every view needs (resolvers.access.VIEW_COLUMNS). A field
# not here (a section of the patient's page, whose nodes hold the view and may hand it back) loads the whole row.
PATIENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (), "id": (), "version": ("version",), "mergedInto": ("merged_into_id",),
    "mergedAt": ("merged_at",), "contacts": (), "careTeam": (), "department": ("department_id",),
    **{camel_case(name): (name,) for name in PATIENT_FIELD_CLASS},
}


@lru_cache(maxsize=128)  # a plan's selection: the same few sets, asked on every request
def patient_columns_of(selected: frozenset[str]) -> frozenset[str] | None:
    """The patient columns reading the Patient fields ``selected`` (GraphQL names) needs besides what every view
    needs; None (whole rows) when one is not known here."""
    return columns_read(selected, PATIENT_COLUMNS)


def columns_read(selected: Iterable[str], reads: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    """The columns reading the fields ``selected`` (GraphQL names) needs, by ``reads`` (what each field reads off
    its row); None (whole rows) when ``reads`` does not know one."""
    columns: set[str] = set()
    for name in selected:
        read = reads.get(name)
        if read is None:
            return None
        columns.update(read)
    return frozenset(columns)


def patient_columns(info: Any) -> frozenset[str] | None:
    """The patient columns the selection under a root field reads (graphql-core's collected fields, so that
    fragments and @skip/@include count as in execution), cached per document; None: the whole row."""
    return columns_of(info, "Patient", PATIENT_COLUMNS)


def columns_of(info: Any, type_name: str, reads: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    """The columns of ``type_name``'s rows the selection under a root field reads, by ``reads`` (what each of its
    fields reads off the row), cached per document; None: the whole row (a field ``reads`` does not know)."""
    raw = info._raw_info
    # Strawberry's resolve info carries the coerced values alone (graphql-core's carries them with their sources)
    coerced = getattr(raw.variable_values, "coerced", raw.variable_values)
    return CACHE.get(raw.schema, raw.operation, raw.fragments, coerced, ("columns", type_name, raw.path.key),
                     lambda: _columns_under(raw, VariableValues({}, coerced), type_name, reads))


def _columns_under(raw: Any, variables: VariableValues, type_name: str,
                   reads: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    if any(definition.variable_definitions for definition in raw.fragments.values()):
        return None  # fragment arguments (off in the parser): the whole row rather than a guess
    fragments = {name: FragmentDetails(definition) for name, definition in raw.fragments.items()}
    details = [FieldDetails(node, None) for node in raw.field_nodes]
    named = get_named_type(raw.return_type)
    if not isinstance(named, GraphQLObjectType):
        return None
    return _columns(raw, fragments, variables, named, details, type_name, reads)


def _columns(raw: Any, fragments: dict[str, FragmentDetails], variables: VariableValues,
             object_type: GraphQLObjectType, details: FieldDetailsList, type_name: str,
             reads: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    grouped = collect_subfields(raw.schema, fragments, variables, raw.operation, object_type,
                                details).grouped_field_set
    columns: set[str] = set()
    for field_details in grouped.values():
        name = field_details[0].node.name.value
        if object_type.name == type_name:
            read = reads.get(name)
            if read is None:
                return None
            columns.update(read)
        elif name != "__typename":
            named = get_named_type(object_type.fields[name].type)
            if isinstance(named, GraphQLObjectType):
                below = _columns(raw, fragments, variables, named, field_details, type_name, reads)
                if below is None:
                    return None
                columns.update(below)
            elif not is_leaf_type(named):
                return None
    return frozenset(columns)


# -- the fields a mutation's caller reads back ---------------------------------------------------------------


def selected_fields(info: Any) -> frozenset[str]:
    """The fields (snake_case) the selection reads directly on the object a root field returns, as graphql-core
    collects them (fragments, aliases and @skip/@include as in execution), cached per document: a write appends
    the read of what it returns with itself."""
    raw = info._raw_info
    coerced = getattr(raw.variable_values, "coerced", raw.variable_values)
    return CACHE.get(raw.schema, raw.operation, raw.fragments, coerced, ("fields", raw.path.key),
                     lambda: _fields_under(raw, VariableValues({}, coerced)))


def _fields_under(raw: Any, variables: VariableValues) -> frozenset[str]:
    named = get_named_type(raw.return_type)
    if not isinstance(named, GraphQLObjectType) or any(d.variable_definitions for d in raw.fragments.values()):
        return frozenset()  # (fragment arguments, off in the parser: the fields note their reads as they resolve)
    fragments = {name: FragmentDetails(definition) for name, definition in raw.fragments.items()}
    grouped = collect_subfields(raw.schema, fragments, variables, raw.operation, named,
                                [FieldDetails(node, None) for node in raw.field_nodes]).grouped_field_set
    return frozenset(to_snake_case(details[0].node.name.value) for details in grouped.values())
