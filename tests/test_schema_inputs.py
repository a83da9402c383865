"""Every input type's value, built from its plan (``schema.inputs``), is what Strawberry builds field by field.

Each input type of the schema gets values as graphql-core hands them over (coerced from a JSON sample by
graphql-core itself): every field given, only the required ones, and every nullable field null. Each is built
twice with Strawberry's ``convert_argument``: with the plans (what the service runs) and with every plan taken
away (Strawberry's own conversion, the reference). The two must be equal, type by type and field by field.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    coerce_input_value,
    is_non_null_type,
)
from graphql.pyutils import Undefined
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import StrawberryObjectDefinition

from core.settings import Limits
from schema.inputs import InputPlan
from schema.root import build_schema

SCHEMA = build_schema(Limits(), production=False)
INPUTS: dict[str, StrawberryObjectDefinition] = {
    name: item.definition for name, item in SCHEMA.schema_converter.type_map.items()
    if isinstance(item.definition, StrawberryObjectDefinition) and item.definition.is_input}
# A JSON sample of each scalar, as a client sends it (a new scalar fails here until it has one).
SCALARS = {"String": "text", "ID": "0193a7c2-5b1e-7000-8000-000000000001", "Int": 3, "Float": 1.5,
           "Boolean": True, "Date": "2026-03-04", "DateTime": "2026-03-04T05:06:07+00:00", "Time": "08:30:00",
           "JSON": {"a": [1, "b"]}}


def sample(of: GraphQLInputType, *, shape: str, depth: int = 0) -> Any:
    """A JSON value of ``of``: ``shape`` "all" gives every field, "required" only the non-null ones without a
    default, "nulls" every nullable field null."""
    if isinstance(of, GraphQLNonNull):
        return sample(of.of_type, shape=shape, depth=depth)
    if isinstance(of, GraphQLList):
        return [sample(of.of_type, shape=shape, depth=depth)]
    if isinstance(of, GraphQLEnumType):
        return next(iter(of.values))
    if isinstance(of, GraphQLScalarType):
        return SCALARS[of.name]
    assert isinstance(of, GraphQLInputObjectType)
    value = {}
    for name, field in of.fields.items():
        required = is_non_null_type(field.type) and field.default_value is Undefined  # (no cycle: GraphQL forbids)
        if required or (shape == "all" and depth < 3):
            value[name] = sample(field.type, shape=shape, depth=depth + 1)
        elif shape == "nulls" and not is_non_null_type(field.type):
            value[name] = None
    return value


def plain(value: Any) -> Any:
    """A built value as nested tuples: its type and each field, so that equality means the same everywhere."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value), tuple((f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, list):
        return list, [plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return type(value), value.value
    return type(value), value


@contextmanager
def strawberry_only() -> Iterator[None]:
    plans = {name: definition.from_input for name, definition in INPUTS.items()}
    for definition in INPUTS.values():
        definition.from_input = None
    try:
        yield
    finally:
        for name, definition in INPUTS.items():
            definition.from_input = plans[name]


def build(name: str, coerced: dict[str, Any]) -> Any:
    return convert_argument(coerced, INPUTS[name].origin, SCHEMA.schema_converter.scalar_registry, SCHEMA.config,
                            path=("input",))


def test_every_input_type_has_a_plan() -> None:
    assert len(INPUTS) > 50
    assert all(isinstance(definition.from_input, InputPlan) for definition in INPUTS.values())


@pytest.mark.parametrize("shape", ["all", "required", "nulls"])
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_input_built_from_its_plan_is_what_strawberry_builds(name: str, shape: str) -> None:
    graphql_type = SCHEMA._schema.type_map[name]
    assert isinstance(graphql_type, GraphQLInputObjectType)
    coerced = coerce_input_value(sample(graphql_type, shape=shape), graphql_type)
    planned = build(name, coerced)
    with strawberry_only():
        reference = build(name, coerced)
    assert plain(planned) == plain(reference)
    assert type(planned) is INPUTS[name].origin


def test_a_list_default_is_copied_for_each_request() -> None:
    """graphql-core hands every request that leaves a list out the schema's one default list: a value built
    from a plan holds its own copy, as Strawberry's does, so a resolver that changes it changes nothing else."""
    with_lists = [(name, field) for name, definition in INPUTS.items() for field in definition.fields
                  if isinstance(field.default_value, list)]
    for name, field in with_lists:
        graphql_type = SCHEMA._schema.type_map[name]
        assert isinstance(graphql_type, GraphQLInputObjectType)
        coerced = coerce_input_value(sample(graphql_type, shape="required"), graphql_type)
        given = coerced.get(SCHEMA.config.name_converter.from_field(field))
        built = getattr(build(name, coerced), field.python_name)
        assert given is None or built is not given


@strawberry.input
class _Bare:
    """A nullable field without a default: no careloop input has one today."""
    note: str | None
    count: int = 2


def test_a_nullable_field_without_a_default_left_out_is_null_as_strawberry_makes_it() -> None:
    definition = _Bare.__strawberry_definition__  # type: ignore[attr-defined]
    context = InputContext(info=None, config=SCHEMA.config, scalar_registry=SCHEMA.schema_converter.scalar_registry,
                           path=("input",))
    reference = convert_argument({}, _Bare, context.scalar_registry, context.config)
    assert plain(InputPlan(definition)(_Bare, {}, context)) == plain(reference) == plain(_Bare(note=None, count=2))
