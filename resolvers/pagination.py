"""Keyset cursors: opaque to clients, validated strictly, stable while rows are inserted. A cursor whose key may
hold personal data (a name) is sealed (``seal``); one of ids, numbers and times is base64 only (``encode``)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from core.crypto import DecryptionError, InstitutionKeys, cursor_aad
from core.errors import BadUserInput

INT_MAX = 2**31 - 1  # an integer column's largest value (PostgreSQL's integer; a bigint's is past 18 digits)

T = TypeVar("T")
U = TypeVar("U")
M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool
    total: int | None = None  # the whole list's size (``count_of``), when the query asked for totalCount

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None

    def map(self, view: Callable[[T], U]) -> Page[U]:
        """The same page, each item made into ``view(item)`` under its cursor."""
        return Page([(cursor, view(item)) for cursor, item in self.items], self.has_next_page, self.total)


def encode(kind: str, key: str) -> str:
    return _text(f"{kind}:{key}".encode())


def seal(keys: InstitutionKeys, kind: str, key: str) -> str:
    """A cursor whose key may hold personal data (a patient's name), which a portal's URL, a proxy's log or
    analytics may keep: sealed under the institution's key as a field is, its AAD naming the institution and the
    list's kind (``cursor_aad``), so it shows nothing of its key and opens for that list of that institution only.
    The same position gives the same cursor (``InstitutionKeys.seal_stable``)."""
    return _text(keys.seal_stable(key.encode(), cursor_aad(keys.institution_id, kind)))


def open_sealed(keys: InstitutionKeys, kind: str, cursor: str, max_length: int) -> str:
    """A ``seal``ed cursor's key. One that does not open (another list's or institution's, altered, forged, or
    longer than ``max_length``) is not a valid cursor, as any forged one is: nothing says why."""
    try:
        if len(cursor) > max_length:
            raise ValueError
        return keys.open_bytes(_bytes(cursor), cursor_aad(keys.institution_id, kind)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError, DecryptionError):
        raise BadUserInput("after: not a valid cursor.", field="after") from None


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bytes(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _decode(kind: str, cursor: str) -> str:
    try:
        if len(cursor) > 200:
            raise ValueError
        found, key = _bytes(cursor).decode().split(":", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput("after: not a valid cursor.", field="after") from None
    if found != kind or "\x00" in key:  # no list writes a NUL, and PostgreSQL cannot compare text holding one
        raise BadUserInput("after: not a valid cursor.", field="after")
    return key


def decode_text(kind: str, cursor: str) -> str:
    return _decode(kind, cursor)


def decode_uuid(kind: str, cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(_decode(kind, cursor))
    except ValueError:
        raise BadUserInput("after: not a valid cursor.", field="after") from None


def decode_keyset(kind: str, cursor: str, parse: Callable[[str], T]) -> tuple[T, uuid.UUID]:
    """A keyset cursor's (value, id), its key written ``value|id``; ``parse`` reads the value. A key that does not
    read (``parse``'s ValueError too) is not a valid cursor."""
    key = _decode(kind, cursor)
    try:
        value, row_id = key.split("|", 1)
        return parse(value), uuid.UUID(row_id)
    except ValueError:
        raise BadUserInput("after: not a valid cursor.", field="after") from None


def decode_int(kind: str, cursor: str, maximum: int = 10**18 - 1) -> int:
    """A cursor whose key is a whole number up to ``maximum`` (``INT_MAX`` for an integer column: PostgreSQL refuses
    to bind a larger one to it)."""
    key = _decode(kind, cursor)
    if not key.isascii() or not key.isdigit() or len(key) > 18 or int(key) > maximum:
        raise BadUserInput("after: not a valid cursor.", field="after")
    return int(key)


def decode_int_pair(kind: str, cursor: str) -> tuple[int, int]:
    """A cursor whose key is two whole numbers, ``a.b``."""
    first, _, second = _decode(kind, cursor).partition(".")
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in (first, second)):
        raise BadUserInput("after: not a valid cursor.", field="after")
    return int(first), int(second)


def decode_time(text: str) -> datetime:
    """A cursor's time, in UTC as the databases bind and compare it. A cursor is the client's to forge: a time
    without its offset, or one that leaves the calendar once in UTC, is BAD_USER_INPUT (not an OverflowError
    here, nor the driver's error on PostgreSQL)."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has its offset")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadUserInput("after: not a valid cursor.", field="after") from None


def check_page_size(first: int, maximum: int) -> int:
    if first < 1 or first > maximum:
        raise BadUserInput(f"first: must be between 1 and {maximum}.", field="first", reason="out_of_range")
    return first


def page_of(items: list[T], has_next_page: bool, kind: str, key: Callable[[T], object],
            total: int | None = None, sealed_with: InstitutionKeys | None = None) -> Page[T]:
    """A page of items; ``key`` gives an item's cursor key; ``total`` the whole list's size (``count_of``);
    ``sealed_with``: the cursors sealed under these keys (``seal``: a key that may hold personal data)."""
    def cursor(item: T) -> str:
        return encode(kind, str(key(item))) if sealed_with is None else seal(sealed_with, kind, str(key(item)))
    return Page([(cursor(item), item) for item in items], has_next_page, total)


async def by_id(query: QuerySet[M], *, first: int, after: str | None, kind: str, count: bool,
                newest_first: bool = False) -> Page[M]:
    """A page of ``query`` in id order (``newest_first``: descending), the id its cursor: its totalCount when asked
    (``count_of``), then the ``first`` rows after the cursor (one more read tells whether a next page follows)."""
    total = await count_of(query, count)
    if after:
        last_id = decode_uuid(kind, after)
        query = query.filter(id__lt=last_id) if newest_first else query.filter(id__gt=last_id)
    rows = list(await query.order_by("-id" if newest_first else "id").limit(first + 1))
    return page_of(rows[:first], len(rows) > first, kind, key=lambda row: row.pk, total=total)


async def keyset_rows(query: QuerySet[M], column: str, descending: bool, *, first: int, after: str | None, kind: str,
                      parse: Callable[[str], Any]) -> list[M]:
    """The ``first`` rows (and one more, which tells whether a next page follows) in ``column``'s order then the
    id's, after the cursor (``decode_keyset``, its value read by ``parse``)."""
    sign = "-" if descending else ""
    if after:
        value, last_id = decode_keyset(kind, after, parse)
        query = query.filter(keyset_after(column, value, last_id, descending))
    return list(await query.order_by(f"{sign}{column}", f"{sign}id").limit(first + 1))


async def count_of(query: QuerySet[Any] | None, asked: bool) -> int | None:
    """A list's totalCount: one COUNT of the page's own query, taken before the cursor, the order and the limit
    narrow it, so it counts exactly the rows the pages show (the caller's scope and the list's filter, nothing
    out of reach). Run only when the query asks for it (None otherwise), so a page's statements stay fixed; 0
    when nothing is in reach (``query`` None)."""
    if not asked:
        return None
    return 0 if query is None else int(await query.count())


def keyset_after(column: str, value: Any, row_id: uuid.UUID, descending: bool, *, nulls_last: bool = False) -> Q:
    """Keyset: the rows after (column value, id) in the order, descending or not. With ``nulls_last`` the
    rows without a value follow all the others in either direction (by id), and ``value`` may be None."""
    beyond = "lt" if descending else "gt"
    if nulls_last and value is None:  # a cursor among the valueless rows: only those further on by id
        valueless_further: dict[str, Any] = {f"{column}__isnull": True, f"id__{beyond}": row_id}
        return Q(**valueless_further)
    further: dict[str, Any] = {f"{column}__{beyond}": value}
    tie: dict[str, Any] = {column: value, f"id__{beyond}": row_id}
    valueless: dict[str, Any] = {f"{column}__isnull": True}
    after = Q(**further) | Q(**tie)
    return after | Q(**valueless) if nulls_last else after
