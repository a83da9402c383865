"""The work a document asks for, measured before it runs, in time linear in the document.

Depth, aliases and fields are counted over the selection as it expands: a fragment spread counts
the fragment's whole selection each time it is spread, so ``fragment F1 { ...F0 ...F0 }`` doubles
the count as it would double the work. Each fragment is measured once and its totals reused, which
keeps the measuring linear however the spreads multiply. Introspection fields count like any other;
the standard introspection document (what GraphiQL and code generators send, deeper than any query
of ours) is the one exception to the depth limit, recognised by its shape, never by its name.

graphql-core's own check that fields sharing a response name can be merged compares them pair by pair, in the
same validation: a document within every limit above (one field asked 220 times, 12 KiB) made it compare 24,090
pairs, half a second of a worker per anonymous request. Its budget (``MAX_COMPLEXITY_BUDGET``, meant to be set by
its users) is ours: ``OVERLAP_BUDGET`` steps, then the document is refused ("Validation aborted.").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    get_introspection_query,
    parse,
    print_ast,
)
from graphql.validation.rules import overlapping_fields_can_be_merged

from core.settings import Limits

# Steps of graphql-core's comparison of fields that share a response name (two or more for each pair compared).
# The documents of the API tests take at most about 1,100; a client's document spreading 40 fragments side by
# side, each asking __typename and id, about 6,600 (the steps grow with the square of the spreads: 110 of them reach
# the budget). At the budget a document costs about 0.1 s; graphql-core's default, 500,000, let one anonymous
# document of a few hundred copies of a field keep a worker busy for half a second or more.
OVERLAP_BUDGET = 50_000
overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_BUDGET


@dataclass(frozen=True)
class Work:
    depth: int = 0  # nested selection sets below the operation
    fields: int = 0  # fields selected, fragments expanded
    aliases: int = 0

    def beside(self, other: Work) -> Work:
        return Work(max(self.depth, other.depth), self.fields + other.fields, self.aliases + other.aliases)

    def below(self) -> Work:
        return Work(self.depth + 1, self.fields, self.aliases)


class _Measure:
    """Measures selection sets of one document; each fragment once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, Work] = {}
        self.open: set[str] = set()  # a cycle is another rule's error (NoFragmentCycles); it counts nothing here

    def selection_set(self, node: SelectionSetNode) -> Work:
        work = Work()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                own = Work(0, 1, 1 if selection.alias else 0)
                if selection.selection_set is not None:
                    own = own.beside(self.selection_set(selection.selection_set).below())
                work = work.beside(own)
            elif isinstance(selection, InlineFragmentNode):
                work = work.beside(self.selection_set(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                work = work.beside(self.fragment(selection.name.value))
        return work

    def fragment(self, name: str) -> Work:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return Work()
        self.open.add(name)
        self.measured[name] = self.selection_set(definition.selection_set)
        self.open.discard(name)
        return self.measured[name]


def limits_rule(limits: Limits, *, production: bool = False) -> type[ASTValidationRule]:
    """One validation rule for depth, aliases and fields, built once (the validation cache keys on it). The
    standard introspection document may go deeper, but only in development: production refuses introspection
    anyway, so it never spends the shapes' first build (about 1.8 s of a worker's CPU) on a request."""
    exempt = (lambda node, measure, work: False) if production else _is_standard_introspection

    class DocumentWork(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = {d.name.value: d for d in context.document.definitions
                         if isinstance(d, FragmentDefinitionNode)}
            self.measure = _Measure(fragments)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> bool:
            work = self.measure.selection_set(node.selection_set)
            name = node.name.value if node.name else "anonymous"
            if work.depth > limits.max_depth and not exempt(node, self.measure, work):
                self.report_error(GraphQLError(f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                                               node))
            if work.aliases > limits.max_aliases:
                self.report_error(GraphQLError(f"{work.aliases} aliases found. Allowed: {limits.max_aliases}", node))
            if work.fields > limits.max_fields:
                self.report_error(GraphQLError(
                    f"'{name}' selects {work.fields} fields with its fragments expanded. Allowed: {limits.max_fields}",
                    node))
            return False  # nothing below needs visiting: the measure walked it

    return DocumentWork


# -- the standard introspection document -------------------------------------------------------

_INTROSPECTION_ROOTS = frozenset({"__schema", "__type", "__typename"})


def _shape(node: SelectionSetNode, measure: _Measure, within: frozenset[str] = frozenset()) -> str:
    """The selection with fragments expanded and every selection set sorted: equal for documents that ask
    for the same thing however they order or name their fragments. A fragment spread inside itself is left out
    (NoFragmentCycles refuses the document; found in review: it recursed to Python's limit)."""
    parts: list[str] = []
    for selection in node.selections:
        if isinstance(selection, FieldNode):
            arguments = ",".join(sorted(print_ast(a) for a in selection.arguments or ()))
            below = _shape(selection.selection_set, measure, within) if selection.selection_set else ""
            parts.append(f"{selection.name.value}({arguments}){below}")
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else ""
            parts.append(f"...on {condition}{_shape(selection.selection_set, measure, within)}")
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            definition = measure.fragments.get(name)
            if definition is not None and name not in within:
                parts.append(_shape(definition.selection_set, measure, within | {name}).strip("{}"))
    return "{" + " ".join(sorted(p for p in parts if p)) + "}"


@cache
def _standard_introspection() -> tuple[frozenset[str], int]:
    """The shapes of every variant of the standard introspection query, and the most fields any has."""
    shapes, most = set(), 0
    for flags in itertools.product((False, True), repeat=7):
        for type_depth in (7, 8, 9):  # graphql-js 16, which GraphiQL runs, nests 7 or 8; graphql-core 9
            text = get_introspection_query(*flags, type_depth=type_depth)  # type: ignore[misc]
            # graphql-js 16 (GraphiQL 3, graphql-codegen, most clients) asks the root types' name only;
            # graphql-core, like graphql-js 17, their kind too.
            for variant in (text, text.replace("Type { name kind }", "Type { name }")):
                document = parse(variant)
                measure = _Measure({d.name.value: d for d in document.definitions
                                    if isinstance(d, FragmentDefinitionNode)})
                for operation in document.definitions:
                    if isinstance(operation, OperationDefinitionNode):
                        shapes.add(_shape(operation.selection_set, measure))
                        most = max(most, measure.selection_set(operation.selection_set).fields)
    return frozenset(shapes), most


def _is_standard_introspection(node: OperationDefinitionNode, measure: _Measure, work: Work) -> bool:
    roots = node.selection_set.selections
    if not all(isinstance(s, FieldNode) and s.name.value in _INTROSPECTION_ROOTS for s in roots):
        return False
    shapes, most = _standard_introspection()
    if work.fields > most:  # bounds the work of shaping the document: larger cannot match
        return False
    return _shape(node.selection_set, measure) in shapes
