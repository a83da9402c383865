"""The compiled path's in-place leaves (``schema.compiled.run._in_place``) against graphql-core itself: for every
kind of leaf field (String, ID, Boolean, Int, an enum; nullable or not; lists of them) and values a source might
hold (right, wrong, null, a subclass, a str where a list is due), whatever the shortcut completes must be exactly what
graphql-core answers, with no error; anything else it must leave to graphql-core. No database."""

from __future__ import annotations

import enum
from typing import Any

import pytest
from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    graphql_sync,
    is_non_null_type,
)
from graphql.pyutils import Path

from core.settings import Limits
from schema.compiled import fast
from schema.compiled.plan import Field, Object, Reader, completion
from schema.compiled.run import _in_place
from schema.root import build_schema

CARELOOP = build_schema(Limits(), production=False)._schema
ACTION = CARELOOP.type_map["AuditEvent"].fields["action"].type.of_type  # a Strawberry enum (CustomGraphQLEnumType)
ACTION_CLASS = ACTION.wrapped_cls


class Text(str):
    pass


class Stranger(enum.Enum):
    READ = "read"


TYPES: list[GraphQLOutputType] = [
    t for leaf in (GraphQLString, GraphQLID, GraphQLBoolean, GraphQLInt, ACTION)
    for t in (leaf, GraphQLNonNull(leaf), GraphQLList(GraphQLNonNull(leaf)), GraphQLNonNull(GraphQLList(leaf)),
              GraphQLNonNull(GraphQLList(GraphQLNonNull(leaf))), GraphQLList(GraphQLList(leaf)))]
VALUES: list[Any] = [None, "text", "", Text("sub"), True, False, 0, 7, 2**40, 1.5, "read", next(iter(ACTION_CLASS)),
                     Stranger.READ, [], ["a", "b"], ["a", None], [True], [next(iter(ACTION_CLASS))], ("a",), [["a"]],
                     {"a"}, object()]


def graphql_core(field_type: GraphQLOutputType, value: Any) -> dict[str, Any]:
    query = GraphQLObjectType("Query", {"f": GraphQLField(field_type, resolve=lambda *_: value)})
    result = graphql_sync(GraphQLSchema(query), "{ f }")
    return {"data": result.data, "errors": [e.message for e in result.errors or []]}


def field_of(field_type: GraphQLOutputType) -> Field:
    reader = Reader(lambda source: source, attribute=True)
    return Field("f", "f", "Query", field_type, [], reader, None, *completion(field_type, reader))


@pytest.mark.parametrize("field_type", TYPES, ids=str)
def test_a_leaf_completed_in_place_is_what_graphql_core_answers(field_type: GraphQLOutputType) -> None:
    field = field_of(field_type)
    in_place = 0
    for value in VALUES:
        out: dict[str, Any] = {}
        if _in_place(field, value, out):
            in_place += 1
            assert graphql_core(field_type, value) == {"data": out, "errors": []}, (field_type, value)
    # each type has values the shortcut takes (a null where one may be, or the right kind)
    assert in_place > 0 or (field.same is None and field.enum is None and is_non_null_type(field_type))


@pytest.mark.parametrize("field_type", TYPES, ids=str)
def test_a_leaf_the_fast_pass_completes_is_what_graphql_core_answers(field_type: GraphQLOutputType) -> None:
    """The fast pass (``schema.compiled.fast``) completes a value exactly as graphql-core answers it, with no error,
    or raises, and the root field is then completed again the plain way; it never answers otherwise. (A str where a
    list of strings is due was once taken as it was: found in review.)"""
    made = Object(GraphQLObjectType("Query", {"f": GraphQLField(field_type)}), None, [field_of(field_type)])
    if not fast.prepare(made):  # a list of lists: the plain way only
        return
    # an object of leaves under no file is completed by the function written for it (``fast._flat``), and its
    # steps complete it wherever it is the root
    assert made.flat is not None
    for way in (lambda value: fast.Pass(None).object(made, value, Path(None, "f", "Query")),  # type: ignore[arg-type]
                lambda value: made.flat(fast.Pass(None), made, value, Path(None, "f", "Query"))):  # type: ignore[arg-type]
        completed = 0
        for value in VALUES:
            try:
                out = way(value)
            except Exception:  # noqa: S112 -- the plain pass's to answer
                continue
            completed += 1
            assert graphql_core(field_type, value) == {"data": out, "errors": []}, (field_type, value)
        assert completed > 0
