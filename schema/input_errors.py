"""Input errors as a form needs them: each names its place as the API spells it, never the value sent.

One path convention everywhere (``extensions.field``): a field of an input-object argument is
``<argument>.<field>`` (``input.phone``, ``filter.phone``, ``input.items[2].quantity``), a top-level
argument is its name (``id``, ``version``). Three sources of input errors meet it here:

- resolvers (``core.errors``): they name fields as the input spells them (``phone``); ``place_in_arguments``
  prefixes the argument the field belongs to, for the error and every entry of ``extensions.invalid``;
- variables graphql-core cannot coerce (a wrong enum value, a bad date, a number for a string): its messages
  echo the value, which may be a phone number or an ID, so ``variable_errors`` validates the variable again
  and words each problem itself, with its path and a ``reason``;
- literals in the document that do not fit their type: ``CodedValuesRule`` does the same during validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    type_from_ast,
)
from graphql.language import Visitor, visit
from graphql.pyutils import did_you_mean, suggestion_list
from graphql.utilities import validate_input_literal, validate_input_value
from graphql.validation import ValuesOfCorrectTypeRule

MAX_VARIABLE_ERRORS = 50  # graphql-core's own cap on variable errors
_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_VARIABLE_ERROR = re.compile(r"Variable '\$([A-Za-z_][A-Za-z0-9_]*)' has invalid value")
_REQUIRED_FIELD = re.compile(r"to include required field '([A-Za-z_][A-Za-z0-9_]*)'")
_UNKNOWN_FIELD = re.compile(r"not to include unknown field '([^']*)'")
_SCALAR_HINTS = {
    "Date": " (YYYY-MM-DD)", "DateTime": " (ISO 8601 with a zone offset, e.g. 2026-12-01T09:00:00+08:00)",
    "Int": " (a whole number)", "Float": " (a number)", "Boolean": " (true or false)",
    "Decimal": " (a decimal number written as a string)", "Time": " (HH:MM or HH:MM:SS)",
}


def coded(message: str, field: str, reason: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": "BAD_USER_INPUT", "field": field, "reason": reason})


def join_path(base: str, path: Iterable[str | int]) -> str:
    out = base
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


# -- resolvers' errors: prefix the argument --------------------------------------------------------------


def _owner(field_def: Any, head: str) -> str | None:
    """The input-object argument whose field ``head`` is, when exactly one is (a top-level argument of that
    name wins: it names itself)."""
    if head in field_def.args:
        return None
    owners = [name for name, argument in field_def.args.items()
              if isinstance(named := get_named_type(argument.type), GraphQLInputObjectType) and head in named.fields]
    return owners[0] if len(owners) == 1 else None


def _sent(node: FieldNode, argument: str, head: str, variables: dict[str, Any] | None) -> bool:
    """Whether the client sent this field of the argument (in a literal object or in its variable)."""
    value = next((a.value for a in node.arguments or () if a.name.value == argument), None)
    if isinstance(value, ObjectValueNode):
        return any(f.name.value == head for f in value.fields)
    if isinstance(value, VariableNode):
        sent = (variables or {}).get(value.name.value)
        return isinstance(sent, dict) and head in sent
    return False


def _prefixed(path: str, field_def: Any, node: FieldNode, variables: dict[str, Any] | None, *,
              input_error: bool) -> str:
    """An input error (BAD_USER_INPUT, CONFLICT) names a field of an argument whether or not it was sent (a
    required one is missing); a refusal (FORBIDDEN, NOT_FOUND...) only when the client sent it: otherwise it
    names the record's own field (a schedule's department), not the input."""
    head = _HEAD.match(path)
    owner = _owner(field_def, head.group(0)) if head else None
    if owner is None or not (input_error or _sent(node, owner, head.group(0), variables)):  # type: ignore[union-attr]
        return path
    return f"{owner}.{path}"


def place_in_arguments(error: GraphQLError, schema: GraphQLSchema, root: GraphQLObjectType | None,
                       variables: dict[str, Any] | None = None) -> GraphQLError:
    """A root field's input error with its paths prefixed by the argument they are in (``input.phone``)."""
    extensions = error.extensions or {}
    field = extensions.get("field")
    if root is None or not isinstance(field, str) or not error.path or len(error.path) != 1 or not error.nodes:
        return error
    node = error.nodes[0]
    field_def = root.fields.get(node.name.value) if isinstance(node, FieldNode) else None
    if field_def is None or not isinstance(node, FieldNode):
        return error
    input_error = extensions.get("code") in ("BAD_USER_INPUT", "CONFLICT")
    placed = _prefixed(field, field_def, node, variables, input_error=input_error)
    invalid = extensions.get("invalid")
    if isinstance(invalid, list):
        invalid = [{**entry, "field": _prefixed(entry["field"], field_def, node, variables, input_error=input_error)}
                   if isinstance(entry, dict) and isinstance(entry.get("field"), str) else entry for entry in invalid]
    if placed == field and invalid == extensions.get("invalid"):
        return error
    message = error.message
    if placed != field and message.startswith(f"{field}: "):
        message = f"{placed}: {message.removeprefix(f'{field}: ')}"
    new_extensions = {**extensions, "field": placed}
    if invalid is not None:
        new_extensions["invalid"] = invalid
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
                        original_error=error.original_error, extensions=new_extensions)


# -- the words for a value that does not fit its type ------------------------------------------------------


def _type_at(type_: GraphQLInputType, path: list[str | int]) -> GraphQLInputType | None:
    current: Any = type_
    for key in path:
        while isinstance(current, GraphQLNonNull):
            current = current.of_type
        if isinstance(key, int) and isinstance(current, GraphQLList):
            current = current.of_type
        elif isinstance(key, str) and isinstance(current, GraphQLInputObjectType) and key in current.fields:
            current = current.fields[key].type
        else:
            return None
    return current


def describe(message: str, type_: GraphQLInputType | None, path: list[str | int], *,
             hide: bool = False) -> tuple[list[str | int], str, str]:
    """(path, reason, words) for graphql-core's message about a value, keeping nothing of the value. With
    ``hide`` (production: no introspection) the words list no enum values and suggest no field names."""
    if "non-null type" in message and ("to be provided" in message or "not to be None" in message):
        return path, "required", "is required (not null)."
    if required := _REQUIRED_FIELD.search(message):
        return [*path, required.group(1)], "required", "is required."
    if unknown := _UNKNOWN_FIELD.search(message):
        name = unknown.group(1)
        named = get_named_type(type_) if type_ is not None else None
        where = f" of {named.name}" if named is not None else ""
        if _NAME.fullmatch(name):
            hint = "" if hide or not isinstance(named, GraphQLInputObjectType) else did_you_mean(
                suggestion_list(name, list(named.fields)))
            return [*path, name], "unknown_field", f"is not a field{where}.{hint}"
        return path, "unknown_field", f"holds a field that is not a field{where}."
    if message.startswith("Within OneOf"):
        return path, "one_of", "give exactly one of its fields, not null."
    named = get_named_type(type_) if type_ is not None else None
    if isinstance(named, GraphQLInputObjectType):
        return path, "invalid_type", f"must be an object ({named.name})."
    if isinstance(named, GraphQLEnumType):
        if hide:
            return path, "invalid_choice", f"is not a value of {named.name}."
        return path, "invalid_choice", f"must be one of {', '.join(named.values)}."
    if named is not None:
        return path, "invalid_value", f"must be a valid {named.name}{_SCALAR_HINTS.get(named.name, '')}."
    return path, "invalid_value", "is not valid for its type."


# -- variables ---------------------------------------------------------------------------------------------


def _operation(document: DocumentNode | None, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in (document.definitions if document else ()) if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)


class _VariableUse(Visitor):
    """Where a variable is first used: the argument and the fields of literal objects around it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.found = name, None  # type: str, str | None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        if self.found is None:
            self.found = _find_in_value(node.value, self.name, node.name.value)
        return self.SKIP


def _find_in_value(value: ValueNode, name: str, at: str) -> str | None:
    if isinstance(value, VariableNode):
        return at if value.name.value == name else None
    if isinstance(value, ObjectValueNode):
        for field in value.fields:
            if (found := _find_in_value(field.value, name, f"{at}.{field.name.value}")) is not None:
                return found
    if isinstance(value, ListValueNode):
        for index, item in enumerate(value.values):
            if (found := _find_in_value(item, name, f"{at}[{index}]")) is not None:
                return found
    return None


def _argument_path(operation: OperationDefinitionNode, name: str) -> str:
    use = _VariableUse(name)
    visit(operation.selection_set, use)
    return use.found or f"${name}"


def variable_errors(errors: list[GraphQLError], schema: GraphQLSchema, document: DocumentNode | None,
                    operation_name: str | None, variables: dict[str, Any] | None, *,
                    hide: bool = False) -> list[GraphQLError]:
    """graphql-core's errors for variables that could not be coerced, replaced by ours: one per problem,
    each with its path from the argument (``input.sex``), a reason and no trace of the value."""
    operation = _operation(document, operation_name)
    if operation is None or not any(_VARIABLE_ERROR.match(e.message) for e in errors):
        return errors
    definitions = {d.variable.name.value: d for d in operation.variable_definitions or ()}
    out: list[GraphQLError] = []
    redone: set[str] = set()
    for error in errors:
        match = _VARIABLE_ERROR.match(error.message)
        name = match.group(1) if match else None
        if name is None or name not in definitions:
            out.append(error)
        elif name not in redone:
            redone.add(name)
            out.extend(_validate_variable(schema, operation, definitions[name], (variables or {}).get(name), hide))
    return out[:MAX_VARIABLE_ERRORS]


def _validate_variable(schema: GraphQLSchema, operation: OperationDefinitionNode,
                       definition: VariableDefinitionNode, value: Any, hide: bool) -> list[GraphQLError]:
    name = definition.variable.name.value
    var_type = type_from_ast(schema, definition.type)
    base = _argument_path(operation, name)
    found: list[GraphQLError] = []

    def on_error(error: GraphQLError, path: list[str | int]) -> None:
        if len(found) < MAX_VARIABLE_ERRORS:
            at, reason, words = describe(error.message, _type_at(var_type, path), path,  # type: ignore[arg-type]
                                         hide=hide)
            field = join_path(base, at)
            found.append(coded(f"{field}: {words}", field, reason, definition))

    if var_type is not None:
        validate_input_value(value, var_type, on_error)  # type: ignore[arg-type]
    return found or [coded(f"{base}: is not valid for its type.", base, "invalid_value", definition)]


# -- literals ----------------------------------------------------------------------------------------------


class CodedValuesRule(ValuesOfCorrectTypeRule):
    """graphql-core's check of literal values, worded without the value and placed by its path."""

    argument: str | None = None
    hide = False  # production: no enum values listed, no field names suggested

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.argument = node.name.value

    def leave_argument(self, *_: Any) -> None:
        self.argument = None

    def is_valid_value_node(self, node: ValueNode, input_type: GraphQLInputType | None) -> Any:
        if input_type:
            base = self.argument or ""

            def on_error(error: GraphQLError, path: list[str | int]) -> None:
                at, reason, words = describe(error.message, _type_at(input_type, path), path,
                                             hide=self.hide or self.context.hide_suggestions)
                field = join_path(base, at) or "value"
                self.report_error(coded(f"{field}: {words}", field, reason, error.nodes or node))

            validate_input_literal(node, input_type, on_error, None, None, self.context.hide_suggestions)
        return self.SKIP


class HiddenCodedValuesRule(CodedValuesRule):
    """The same in production, where introspection is off: the words give no part of the schema away."""

    hide = True
