"""Input values built from a plan made once per input type (Strawberry's ``from_input`` hook).

Strawberry builds an input value field by field on every request, and for each field resolves its type, converts
its name and walks its type again: about 3 % of a contactCreate's CPU. Most fields of careloop's inputs are
scalars or enums, optional or not, which graphql-core has already coerced to their Python values, so Strawberry
hands them on as they are. Here each input type decides that once per field; every other field (a list, a nested
input) is converted by Strawberry itself (``InputContext.convert``), so it means what it always meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryMaybe, StrawberryObjectDefinition, StrawberryOptional, StrawberryType
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

# (GraphQL name, Python name, the field's type when Strawberry converts it; None: the value as it is)
_Field = tuple[str, str, StrawberryType | type | None]


class InputPlan:
    """``from_input`` of one input type: the value's fields, each passed on as it is or converted by Strawberry."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self.definition = definition
        self.fields: list[_Field] | None = None  # made at the first value (it needs the schema's scalars)
        # what Strawberry passes for a field without a default the client left out
        self.implicit = {field.python_name: None for field in definition.fields
                         if field.default_value is MISSING and field.default_factory is MISSING}

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        fields = self.fields if self.fields is not None else self._plan(context)
        kwargs: dict[str, Any] = dict(self.implicit)
        for graphql_name, python_name, converted in fields:
            if graphql_name in value:
                item = value[graphql_name]
                kwargs[python_name] = item if converted is None else context.convert(item, converted, graphql_name)
        return cls(**kwargs)

    def _plan(self, context: InputContext) -> list[_Field]:
        fields = []
        for field in self.definition.fields:
            field_type = field.resolve_type(type_definition=self.definition)
            as_is = _passed_as_is(field_type, context)
            fields.append((context.config.name_converter.from_field(field), field.python_name,
                           None if as_is else field_type))
        self.fields = fields
        return fields


def _passed_as_is(field_type: Any, context: InputContext) -> bool:
    """Whether Strawberry's ``convert_argument`` returns a value of this type unchanged: a scalar (not a
    ``GlobalID``, which it parses) or an enum, optional or not."""
    while isinstance(field_type, StrawberryOptional) and not isinstance(field_type, StrawberryMaybe):
        field_type = field_type.of_type
    if field_type is GlobalID:
        return False
    if isinstance(field_type, StrawberryEnumDefinition) or has_enum_definition(field_type):
        return True
    return is_scalar(field_type, context.scalar_registry)


def install(schema: strawberry.Schema) -> None:
    """Give every input type of ``schema`` its plan, except a type with a ``Maybe`` field (Strawberry validates
    those fields' nulls only for types without ``from_input``) or one that builds its own value already."""
    for definition in _input_definitions(schema):
        if definition.from_input is None and not any(
                isinstance(field.type, StrawberryMaybe) for field in definition.fields):
            definition.from_input = InputPlan(definition)


def _input_definitions(schema: strawberry.Schema) -> list[StrawberryObjectDefinition]:
    found = []
    for item in schema.schema_converter.type_map.values():
        definition = item.definition
        if isinstance(definition, StrawberryObjectDefinition) and definition.is_input:
            found.append(definition)
    return found
