"""Scalars whose input rules are ours: DateTime is Strawberry's, but a time must also be one the databases can
hold. Every moment is compared and stored in UTC, so a time that leaves the calendar once in UTC
(``9999-12-31T23:59:59-05:00``, ``0001-01-01T00:00:00+05:00``) is an input error here, where graphql-core reports
it with its place (BAD_USER_INPUT), rather than an OverflowError or the driver's error deep in a resolver."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import cast

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, TimeDefinition
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


# Strawberry describes these three as "(isoformat)": what a client must know about zones is said here once, for
# every field of the type.
DATE_TIME: ScalarDefinition = dataclasses.replace(
    DateTimeDefinition, parse_value=_parse_date_time,
    description="An instant: an ISO 8601 date and time with its offset from UTC, e.g. 2026-03-04T05:06:07+00:00 "
                "(the seconds may carry a fraction). What the server stores comes back in UTC; compare values as "
                "instants and show them in the reader's zone (the institution's for staff). Send one with its "
                "offset: a time without one is refused where it is compared, and every moment is stored in UTC.")
DATE: ScalarDefinition = dataclasses.replace(
    DateDefinition,
    description="A calendar date, ISO 8601 (2026-03-04), without a time or zone. Where the server counts days "
                "(today, due dates, periods, report months) it counts them in the institution's time zone; a birth "
                "date is a plain date.")
TIME: ScalarDefinition = dataclasses.replace(
    TimeDefinition,
    description="A wall-clock time of day, ISO 8601 (08:30:00), without a zone: the institution's local time "
                "(schedule sessions, working hours, quiet hours).")
SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATE_TIME, date: DATE, time: TIME}
