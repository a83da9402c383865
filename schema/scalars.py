"""Scalars whose input rules are ours: DateTime is Strawberry's, but a time must also be one the databases can
hold. Every moment is compared and stored in UTC, so a time that leaves the calendar once in UTC
(``9999-12-31T23:59:59-05:00``, ``0001-01-01T00:00:00+05:00``) is an input error here, where graphql-core reports
it with its place (BAD_USER_INPUT), rather than an OverflowError or the driver's error deep in a resolver."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

_strawberry_parse = cast(Callable[[object], object], DateTimeDefinition.parse_value)


def _parse_date_time(value: object) -> object:
    moment = _strawberry_parse(value)  # Strawberry's parse and its errors
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise StrawberryInputCoercionError(
                f'Value cannot represent a DateTime: "{value}". It lies outside the calendar in UTC.') from None
    return moment


DATE_TIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, parse_value=_parse_date_time)
SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATE_TIME}
