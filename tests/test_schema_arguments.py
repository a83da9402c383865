"""Every nullable argument and nullable input field has a Python default.

Strawberry calls a resolver with only the arguments a client sent: a nullable argument declared
without a default (``x: ID | None``) makes a call that omits it raise TypeError inside the
resolver call, masked as INTERNAL_SERVER_ERROR, although the SDL (and the TypeScript generated
from it) says it may be left out. The rule: a nullable argument gets ``= None`` (or is made
required when null means nothing). Input fields get an implicit None from Strawberry today; the
rule holds for them too, so that the meaning of an omitted field is written where it is declared.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator

import strawberry
from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLNamedType, GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

from core.settings import Limits
from schema.root import build_schema

BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


def named_types(schema: strawberry.Schema | None = None) -> Iterator[GraphQLNamedType]:
    built = schema or build_schema(Limits(), production=False)
    for name, type_ in built._schema.type_map.items():
        if not name.startswith("__"):
            yield type_


def arguments_without_default(schema: strawberry.Schema | None = None) -> Iterator[str]:
    """``Type.field(argument)`` for each nullable argument whose resolver parameter has no default."""
    for type_ in named_types(schema):
        if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            continue
        for field_name, field in type_.fields.items():
            for arg_name, arg in field.args.items():
                argument = arg.extensions[BACKREF]
                assert isinstance(argument, StrawberryArgument)
                if not isinstance(argument.type, StrawberryOptional):
                    continue
                strawberry_field = field.extensions[BACKREF]
                assert isinstance(strawberry_field, StrawberryField) and strawberry_field.base_resolver
                parameter = strawberry_field.base_resolver.signature.parameters[argument.python_name]
                if parameter.default is inspect.Parameter.empty:
                    yield f"{type_.name}.{field_name}({arg_name})"


def input_fields_without_default(schema: strawberry.Schema | None = None) -> Iterator[str]:
    for type_ in named_types(schema):
        if not isinstance(type_, GraphQLInputObjectType):
            continue
        for field_name, field in type_.fields.items():
            definition = field.extensions[BACKREF]
            assert isinstance(definition, StrawberryField)
            if (isinstance(definition.type, StrawberryOptional) and definition.default is dataclasses.MISSING
                    and definition.default_factory is dataclasses.MISSING):
                yield f"{type_.name}.{field_name}"


def test_the_walk_sees_arguments_and_input_fields() -> None:
    """The control: the walk below reaches nullable arguments and input fields that do have defaults."""
    seen_args = sum(len(f.args) for t in named_types() if isinstance(t, GraphQLObjectType) for f in t.fields.values())
    seen_inputs = sum(len(t.fields) for t in named_types() if isinstance(t, GraphQLInputObjectType))
    assert seen_args > 100 and seen_inputs > 100


def test_every_nullable_argument_has_a_default() -> None:
    assert list(arguments_without_default()) == [], (
        "nullable arguments without a Python default: a call that omits one is a server error. "
        "Give each `= None`, or make it required if null means nothing")


def test_every_nullable_input_field_has_a_default() -> None:
    assert list(input_fields_without_default()) == []


@strawberry.input
class TrapFilter:
    kept: str | None = None
    bare: str | None


@strawberry.type
class TrapQuery:
    @strawberry.field
    def pick(self, a: strawberry.ID, filter: TrapFilter, b: strawberry.ID | None,
             c: strawberry.ID | None = None) -> str:
        return "x"


def test_the_walk_finds_the_trap() -> None:
    """The check itself, on a small schema with one argument and one input field of each kind."""
    schema = strawberry.Schema(query=TrapQuery)
    assert list(arguments_without_default(schema)) == ["TrapQuery.pick(b)"]
    assert list(input_fields_without_default(schema)) == ["TrapFilter.bare"]
