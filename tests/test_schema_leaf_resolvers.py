"""Scalar and enum fields below the root resolve without awaiting: an async resolver costs graphql-core a coroutine
and a completion step per field per row (a page of 50 patients completes hundreds of leaf fields), so a leaf that
needs data the row does not hold batches it in a loader of the request, and only those are listed here."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import strawberry
from graphql import GraphQLObjectType, get_named_type, is_leaf_type

from core.settings import Limits
from schema.root import build_schema

ROOTS = ("Query", "Mutation", "Subscription")
# Leaves that load what the row does not hold, batched across the rows of a request (a DataLoader per request).
BATCHED_LEAVES = frozenset({
    "Ticket.allowedTransitions",  # a complaint's logged attempts, for the tickets of a page at once
    "Questionnaire.responseCount",  # one grouped count for a page of questionnaires
    "ContractVersion.clauses",  # whether a role reading clauses reaches the client, for the contracts of a request
})


def async_leaves(schema: strawberry.Schema) -> Iterator[str]:
    """``Type.field`` of each scalar or enum field below the root whose resolver is a coroutine function."""
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__") or name in ROOTS or not isinstance(type_, GraphQLObjectType):
            continue
        for field_name, field in type_.fields.items():
            if not is_leaf_type(get_named_type(field.type)):
                continue
            definition = schema.get_field_for_type(field_name, name)
            resolver = definition.base_resolver if definition is not None else None
            if resolver is not None and inspect.iscoroutinefunction(resolver.wrapped_func):
                yield f"{name}.{field_name}"


def test_leaves_below_the_root_resolve_without_awaiting() -> None:
    assert set(async_leaves(build_schema(Limits(), production=False))) == BATCHED_LEAVES


@strawberry.type
class _Row:
    @strawberry.field
    async def slow(self) -> int:
        return 1

    @strawberry.field
    def quick(self) -> int:
        return 1


@strawberry.type
class _Query:
    @strawberry.field
    def row(self) -> _Row:
        return _Row()


def test_the_walk_finds_an_async_leaf() -> None:
    # Strawberry names the type without its leading underscore
    assert list(async_leaves(strawberry.Schema(query=_Query))) == ["Row.slow"]
