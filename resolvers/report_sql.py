"""Hand-written aggregate statements for the monthly reports, on SQLite and PostgreSQL alike.

The reports count, add up and rank in the database, so a department's month costs the same few statements and
rows whatever its number of visits, tasks or tickets (they used to load every row into Python). Times are compared
and subtracted as whole microseconds since 1970 (``micros``): exact on both databases, whatever offset a stored
time was written with, as Python's aware datetimes compare; SQLite has no time arithmetic below the millisecond.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import BaseDBAsyncClient

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# the nearest ranks a report shows: the median and the 90th percentile
SHARES = (0.5, 0.9)


def micros_of(moment: datetime) -> int:
    """A moment as microseconds since 1970, as ``Statement.micros`` reads a stored one."""
    return (moment - EPOCH) // MICROSECOND


class Statement:
    """One hand-written statement: its parameters, numbered as they are bound (``$n`` on PostgreSQL, ``?n`` on
    SQLite), so a marker may stand anywhere in the text, in any order."""

    def __init__(self, db: BaseDBAsyncClient) -> None:
        self.db = db
        self.postgres = db.capabilities.dialect == "postgres"
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(str(value) if isinstance(value, uuid.UUID) and not self.postgres else value)
        return f"${len(self.values)}" if self.postgres else f"?{len(self.values)}"

    def integer(self, value: int) -> str:
        """A bound integer typed as one (PostgreSQL cannot tell the type of a parameter in a CASE's result)."""
        return f"CAST({self.bind(value)} AS BIGINT)"

    def micros(self, name: str, table: str = "") -> str:
        """The stored time in column ``name`` (of ``table``, an alias, if given) as whole microseconds since 1970
        (NULL for NULL). PostgreSQL's epoch is
        exact (numeric); SQLite keeps times as ISO text (``YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM``): its seconds come
        from strftime on the text without the fraction (strftime rounds to milliseconds), the six digits after
        it are added as they are."""
        column = f'"{table}"."{name}"' if table else f'"{name}"'
        if self.postgres:
            return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"
        dot = f"instr({column}, '.')"
        whole = f"CASE WHEN {dot} > 0 THEN substr({column}, 1, 19) || substr({column}, {dot} + 7) ELSE {column} END"
        fraction = f"CASE WHEN {dot} > 0 THEN CAST(substr({column}, {dot} + 1, 6) AS INTEGER) ELSE 0 END"
        return f"(CAST(strftime('%s', {whole}) AS INTEGER) * 1000000 + {fraction})"

    def in_month(self, institution_id: uuid.UUID, department_id: uuid.UUID, column: str, since: datetime,
                 until: datetime) -> str:
        """The condition on a department's rows whose ``column`` falls in ``[since, until)``."""
        return (f'"institution_id" = {self.bind(institution_id)} AND "department_id" = {self.bind(department_id)} '
                f'AND "{column}" >= {self.bind(since)} AND "{column}" < {self.bind(until)}')

    async def rows(self, sql: str) -> list[Any]:
        """The rows (read by column name) of ``sql`` run with the bound values."""
        _, rows = await self.db.execute_query(sql, self.values)
        return list(rows)


def ranked(spans: str, name: str) -> str:
    """The rows of ``spans`` (a SELECT of one column ``span``: microseconds) that a nearest-rank median or 90th
    percentile can fall on, with their rank and the number of spans: a few rows, whatever their number. The rank
    itself is chosen in Python (``nearest_ranks``), with the float arithmetic the reports always used; the band
    of ranks around the exact ones (ceil(n/2), ceil(9n/10)) covers any rounding of it."""
    return (f"SELECT '{name}' AS \"measure\", \"n\", \"place\", \"span\" FROM (SELECT \"span\", "  # noqa: S608
            f"COUNT(*) OVER () AS \"n\", ROW_NUMBER() OVER (ORDER BY \"span\") AS \"place\" FROM ({spans}) AS \"s\") "
            f"AS \"r\" WHERE \"place\" = (\"n\" + 1) / 2 OR \"place\" BETWEEN (9 * \"n\" + 9) / 10 - 1 "
            f"AND (9 * \"n\" + 9) / 10 + 1")


def nearest_ranks(rows: list[Any]) -> tuple[int, list[float | None]]:
    """How many spans, and the median and p90 in minutes to a tenth (None without spans), from ``ranked`` rows of
    one measure: the value at rank ceil(share * n) (at least the first), as ``report.durations`` defined them."""
    if not rows:
        return 0, [None for _ in SHARES]
    n = int(rows[0]["n"])
    by_place = {int(row["place"]): int(row["span"]) for row in rows}
    figures: list[float | None] = []
    for share in SHARES:
        span = by_place[max(0, math.ceil(share * n) - 1) + 1]
        figures.append(round(timedelta(microseconds=span).total_seconds() / 60, 1))
    return n, figures
