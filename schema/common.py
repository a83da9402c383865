"""What every schema module shares: ids, paging types and turning inputs into plain dicts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import strawberry
from strawberry.types import Info as StrawberryInfo
from strawberry.types.nodes import FragmentSpread, InlineFragment

from core.errors import BadUserInput
from core.ids import parse_uuid
from core.validation import camel_case
from resolvers.context import Context
from resolvers.pagination import Page

E = TypeVar("E", bound=Enum)

if TYPE_CHECKING:
    Info = StrawberryInfo[Context, None]
else:
    Info = StrawberryInfo

DEFAULT_PAGE_SIZE = 20


def optional_id(value: object) -> strawberry.ID | None:
    """A nullable id column as the API shows it."""
    return None if value is None else strawberry.ID(str(value))

# What every paged list and every connection says about its paging, written once.
First = Annotated[int, strawberry.argument(
    description="How many items the page holds: 1 to the server's page limit (100 unless configured); "
                "BAD_USER_INPUT outside.")]
After = Annotated[str | None, strawberry.argument(
    description="Fetch the items after this cursor (the previous page's pageInfo.endCursor); null: the first "
                "page. A cursor from another list is BAD_USER_INPUT.")]
Version = Annotated[int | None, strawberry.argument(
    description="The version you read: a record changed since answers CONFLICT (read it again). Null: whatever "
                "version is current when the change is made.")]
# A period of time: ``from`` inclusive, ``to`` exclusive, both with a zone offset (BAD_USER_INPUT without one).
PeriodFrom = Annotated[datetime, strawberry.argument(
    name="from", description="The period's start, inclusive, with its zone offset.")]
PeriodTo = Annotated[datetime, strawberry.argument(
    description="The period's end, exclusive, with its zone offset; after `from`.")]
OpenFrom = Annotated[datetime | None, strawberry.argument(
    name="from", description="From this time on, inclusive, with its zone offset; null: from the beginning.")]
OpenTo = Annotated[datetime | None, strawberry.argument(
    description="Before this time, exclusive, with its zone offset; null: up to now.")]
CURSOR = "This item's place in the list: pass it as `after` to fetch the items that follow it."
EDGES = "The items of this page, each with its cursor."
PAGE_INFO = "Whether another page follows, and the cursor to fetch it with."
NODES = "The items of this page without their cursors (the nodes of `edges`)."
TOTAL_COUNT = ("How many items the whole list holds, all its pages together: the items in your reach that match the "
               "list's arguments, exactly as its pages show them (never one you may not see). Counted only when you "
               "select it, at a fixed cost whatever the page size, and then never null.")


@strawberry.enum(description="The direction of a list's order.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("asc", description="Smallest first (A to Z, oldest first).")
    DESC = strawberry.enum_value("desc", description="Largest first (Z to A, newest first).")


def selects(info: Info, name: str) -> bool:
    """Whether the query asks for this field of the resolved object (fragments included), e.g. ``totalCount``:
    a list counts its items only when asked to, in its own resolver, never in an async scalar resolver."""
    def within(selections: list[Any]) -> bool:
        return any(within(selection.selections) if isinstance(selection, FragmentSpread | InlineFragment)
                   else selection.name == name for selection in selections)
    return any(within(field.selections) for field in info.selected_fields)


def asks_total(info: Info) -> bool:
    """Whether the query asks for the list's ``totalCount`` (its resolver then counts: ``pagination.count_of``)."""
    return selects(info, "totalCount")


def uuid_of(value: strawberry.ID | str | None, field: str = "id") -> uuid.UUID | None:
    """A client-supplied id as a UUID; malformed ids are bad input, never a server error."""
    if value is None:
        return None
    parsed = parse_uuid(str(value)) if len(str(value)) <= 64 else None
    if parsed is None:
        raise BadUserInput(f"{field}: not a valid id.", field=field)
    return parsed


# An input field whose value can never be empty (a name, a consent flag): an explicit null means "not given"
# (left as it is on an update, the default on a create), never "clear"; a field that may be empty (a phone,
# notes) is cleared by null. Mark the first kind with ``strawberry.field(..., metadata=NULL_KEEPS)``.
NULL_KEEPS: dict[str, bool] = {"null_keeps": True}


def provided(data: Any) -> dict[str, Any]:
    """The fields a client actually sent (UNSET left out, and null on a NULL_KEEPS field), with enums made
    plain and IDs parsed."""
    out: dict[str, Any] = {}
    for f in type(data).__strawberry_definition__.fields:
        value = getattr(data, f.python_name)
        if value is strawberry.UNSET or (value is None and (f.metadata or {}).get("null_keeps")):
            continue
        if _is_id(f.type) and value is not None:
            name = camel_case(f.python_name)
            value = [uuid_of(v, name) for v in value] if isinstance(value, list) else uuid_of(value, name)
        out[f.python_name] = _plain(value)
    return out


def _is_id(field_type: Any) -> bool:
    while hasattr(field_type, "of_type"):  # Optional[...] and list[...]
        field_type = field_type.of_type
    return field_type is strawberry.ID


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def by_value(enum: type[E]) -> Callable[[Any], E]:
    """``enum(value)`` by a dict of its members made once: Enum's own call costs a few times a dict lookup, paid per
    row and field of a page. A value no member has gets Enum's own error."""
    members = {member.value: member for member in enum}

    def member(value: Any) -> E:
        found = members.get(value)
        return enum(value) if found is None else found

    return member


class FieldSource:
    """What a type with guarded fields resolves from: its scalar fields are basic Strawberry fields
    (plain attribute reads, no resolver wrapper), and each read goes through ``read``, which checks
    the field's class, decrypts and notes the read, only for the fields a query asks for. A refused
    field raises FORBIDDEN, which graphql-core turns into null and an error for that field alone."""

    __slots__ = ("ctx", "view")
    fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ctx: Context, view: Any) -> None:
        self.ctx, self.view = ctx, view

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each of ``fields`` becomes a property that calls ``read``: a plain attribute lookup then finds it, where a
        ``__getattr__`` fallback first fails a lookup (an AttributeError made and caught on every field read)."""
        super().__init_subclass__(**kwargs)
        for name in cls.fields:
            if hasattr(cls, name):  # a method or slot of that name would be replaced without a word
                raise TypeError(f"{cls.__name__}.{name} is both a field and an attribute")
            setattr(cls, name, property(_reading(name)))

    def read(self, name: str) -> Any:
        raise NotImplementedError


def _reading(name: str) -> Callable[[FieldSource], Any]:
    def read(source: FieldSource) -> Any:
        return source.read(name)

    return read


# The patient's page names the care journey's types lazily (strawberry.lazy) and builds their objects
# through here: the module that defines a type registers its builder at import (schema.root imports them
# all), so schema.patient depends on no module that depends on it.
_NODES: dict[str, Callable[[Context, Any], Any]] = {}


def register_node(kind: str, build: Callable[[Context, Any], Any]) -> None:
    _NODES[kind] = build


def node_of(kind: str, ctx: Context, view: Any) -> Any:
    return _NODES[kind](ctx, view)


@strawberry.type(description="Where a page starts and ends and whether another follows (keyset pagination, as "
                             "the Relay connection specification describes it).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether a page follows this one.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to fetch the next page; null when this "
                                                          "page is empty.")
    start_cursor: str | None = strawberry.field(description="The cursor of this page's first item; null on an "
                                                            "empty page.")
    has_previous_page: bool = strawberry.field(
        description="Always false: careloop lists page forward only (`first`/`after`), and the Relay specification "
                    "lets a forward-paging server answer false rather than count the items before `after`.")

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next_page, end_cursor=page.end_cursor,
                   start_cursor=page.items[0][0] if page.items else None, has_previous_page=False)
