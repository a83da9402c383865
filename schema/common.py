"""What every schema module shares: ids, paging types and turning inputs into plain dicts."""

from __future__ import annotations

import dataclasses
import uuid
from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.types import Info as StrawberryInfo

from core.errors import BadUserInput
from core.ids import parse_uuid
from resolvers.context import Context

if TYPE_CHECKING:
    Info = StrawberryInfo[Context, None]
else:
    Info = StrawberryInfo

DEFAULT_PAGE_SIZE = 20


def uuid_of(value: strawberry.ID | str | None, field: str = "id") -> uuid.UUID | None:
    """A client-supplied id as a UUID; malformed ids are bad input, never a server error."""
    if value is None:
        return None
    parsed = parse_uuid(str(value)) if len(str(value)) <= 64 else None
    if parsed is None:
        raise BadUserInput(f"{field}: not a valid id.", field=field)
    return parsed


def provided(data: Any) -> dict[str, Any]:
    """The fields a client actually sent (UNSET left out), with enums and ids made plain.

    Fields named ``*_id``/``*_ids`` are parsed as UUIDs.
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if value is strawberry.UNSET:
            continue
        if f.name.endswith("_ids") and value is not None:
            value = [uuid_of(v, _camel(f.name)) for v in value]
        elif f.name.endswith("_id"):
            value = uuid_of(value, _camel(f.name))
        out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@strawberry.type(description="Where a page ends and whether another follows (keyset pagination).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether a page follows this one.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to fetch the next page.")
