"""Every element of the schema carries a description: the SDL is the front-end teams' only manual.

The walk covers each user-defined type (object, interface, union, input, enum, custom scalar), its
fields and their arguments, input fields and enum values, and our own directives; it skips the
introspection types (``__Type``...), the built-in scalars (String, Int, Float, Boolean, ID) and the
built-in directives, whose descriptions are GraphQL's. A description of only whitespace is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Annotated

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    specified_directives,
    specified_scalar_types,
)

from core.settings import Limits
from schema.root import build_schema


def _missing(description: str | None) -> bool:
    return not (description or "").strip()


def undescribed(schema: strawberry.Schema | None = None) -> Iterator[str]:
    """``Type``, ``Type.field``, ``Type.field(argument)``, ``Input.field``, ``Enum.VALUE`` and
    ``@directive(argument)`` for each element without a description, in schema order."""
    built = (schema or build_schema(Limits(), production=False))._schema
    for name, type_ in built.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if _missing(type_.description):
            yield name
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                if _missing(field.description):
                    yield f"{name}.{field_name}"
                for arg_name, arg in field.args.items():
                    if _missing(arg.description):
                        yield f"{name}.{field_name}({arg_name})"
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                if _missing(input_field.description):
                    yield f"{name}.{field_name}"
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if _missing(value.description):
                    yield f"{name}.{value_name}"
    builtin = {directive.name for directive in specified_directives}
    for directive in built.directives:
        if directive.name in builtin:
            continue
        if _missing(directive.description):
            yield f"@{directive.name}"
        for arg_name, arg in directive.args.items():
            if _missing(arg.description):
                yield f"@{directive.name}({arg_name})"


def test_every_schema_element_has_a_description() -> None:
    missing = list(undescribed())
    assert missing == [], (
        f"{len(missing)} schema elements without a description (types: description=; fields: "
        "strawberry.field(description=...); arguments: Annotated[T, strawberry.argument(description=...)]; "
        "enum values: strawberry.enum_value(value, description=...)):\n  " + "\n  ".join(missing))


def test_the_walk_reaches_every_kind_of_element() -> None:
    """The control: the real schema has elements of each kind the walk looks at, all described."""
    built = build_schema(Limits(), production=False)._schema
    types = [t for name, t in built.type_map.items() if not name.startswith("__")]
    objects = [t for t in types if isinstance(t, GraphQLObjectType)]
    assert sum(len(t.fields) for t in objects) > 500
    assert sum(len(f.args) for t in objects for f in t.fields.values()) > 200
    assert sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)) > 200
    assert sum(len(t.values) for t in types if isinstance(t, GraphQLEnumType)) > 200


# A small schema with one undescribed element of each kind next to a described twin.

@strawberry.enum(description="Described.")
class TrapColour(Enum):
    RED = strawberry.enum_value("red", description="Described.")
    BLUE = "blue"


@strawberry.input
class TrapInput:
    kept: str | None = strawberry.field(default=None, description="Described.")
    bare: str | None = None
    blank: str | None = strawberry.field(default=None, description="  ")


@strawberry.type(description="Described.")
class TrapItem:
    colour: TrapColour = strawberry.field(description="Described.")
    bare: str


@strawberry.type
class TrapQuery:
    @strawberry.field(description="Described.")
    def pick(self, filter: Annotated[TrapInput, strawberry.argument(description="Described.")],
             bare: str | None = None) -> TrapItem:
        return TrapItem(colour=TrapColour.RED, bare="x")

    @strawberry.field
    def other(self) -> str:
        return "x"


def test_the_walk_finds_the_trap() -> None:
    """The check itself, on a small schema: each kind of element found when bare, and only then."""
    schema = strawberry.Schema(query=TrapQuery)
    assert sorted(undescribed(schema)) == sorted([
        "TrapQuery", "TrapQuery.pick(bare)", "TrapQuery.other",
        "TrapInput", "TrapInput.bare", "TrapInput.blank",
        "TrapItem.bare",
        "TrapColour.BLUE",
    ])
