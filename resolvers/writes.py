"""Writes as SQL with their parameters, for ``audit.writer.append_with`` to send with their audit records.

Built by Tortoise's executor for the model and the current dialect, with each value converted by its
field's own ``to_db_value`` (validation, ``auto_now`` timestamps, UUIDs and booleans as the dialect takes
them), as ``Model.save`` would: values are never put into the SQL text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from tortoise.models import Model

from audit import writer
from audit.events import AuditRecord
from core.db import placeholders
from resolvers import access, versioning

M = TypeVar("M", bound=Model)

_INSERTS: dict[tuple[type[Model], type], tuple[str, tuple[str, ...]]] = {}


def insert_returning_id(row: Model) -> tuple[str, list[Any]]:
    """The INSERT of a new row (every column, as ``Model.create`` sends for an application-made id), returning
    its id."""
    model, db = type(row), row._meta.db
    key = (model, db.executor_class)
    if key not in _INSERTS:  # once per model and dialect
        executor = db.executor_class(model=model, db=db)
        pk = model._meta.fields_db_projection[model._meta.pk_attr]
        _INSERTS[key] = (f'{executor.insert_query_all} RETURNING "{pk}"', tuple(executor.regular_columns_all))
    sql, columns = _INSERTS[key]
    fields_map = model._meta.fields_map
    return sql, [fields_map[name].to_db_value(getattr(row, name), row) for name in columns]


_ON_OPEN_FILE: dict[tuple[type[Model], type, bool], str] = {}
# A table's rows on one file counted as of now, for a write bounded per file (migration 0038's function on
# PostgreSQL): a VOLATILE function takes its own snapshot after the file's lock, so it counts what a writer that held
# the lock first committed; a count written into the statement read the statement's first snapshot, and two writers
# at the bound both went in (found while testing).
_COUNT_ON_FILE = {"contact": "contacts_on_file"}


def insert_on_open_file(row: Model, fewer_than: int | None = None) -> tuple[str, list[Any]]:
    """``insert_returning_id``'s INSERT of a row of a patient's file (its ``patient_id``), written only while the
    file is not merged, with the file's row locked as ``access.lock_file`` locks it (FOR NO KEY UPDATE on PostgreSQL;
    SQLite runs one write at a time): in the same statement, so no round trip is added. A merge under way is
    waited for; nothing is written, and nothing returned, when the file is merged (``access.refuse_merged``).
    ``fewer_than``: nor when the file holds that many rows of the table already, counted once the file is locked
    (a table of ``_COUNT_ON_FILE``)."""
    sql, params = insert_returning_id(row)
    model, db = type(row), row._meta.db
    key = (model, db.executor_class, fewer_than is not None)
    if key not in _ON_OPEN_FILE:  # once per model, dialect and whether bounded
        _ON_OPEN_FILE[key] = _on_open_file(sql, len(params), row, bounded=fewer_than is not None)
    columns = _INSERTS[key[:2]][1]
    patient = params[columns.index("patient_id")]  # as the INSERT binds it
    bound = [] if fewer_than is None else [params[columns.index("institution_id")], fewer_than, fewer_than]
    return _ON_OPEN_FILE[key], [*params, patient, access.MERGED, *bound]


def _on_open_file(sql: str, count: int, row: Model, *, bounded: bool) -> str:
    """The text of ``insert_on_open_file``'s statement; its parameters follow the INSERT's: the file, the merged
    status, then, when ``bounded``, the institution and the bound twice (what is counted at most, and compared)."""
    insert, _, rest = sql.rpartition(" VALUES (")
    values, _, returning = rest.partition(") RETURNING ")
    db, table = row._meta.db, row._meta.db_table
    postgres = db.capabilities.dialect == "postgres"
    file, status, institution, up_to, most = placeholders(db, 5, first=count + 1)
    if not bounded:
        lock = " FOR NO KEY UPDATE" if postgres else ""
        return (f'{insert} SELECT {values} FROM "patient" WHERE "id" = {file} '  # noqa: S608
                f'AND "status" <> {status}{lock} RETURNING {returning}')
    if postgres:  # counted above the lock: OFFSET 0 keeps the condition from being pushed below it, into the scan
        return (f'{insert} SELECT {values} FROM (SELECT "id" FROM "patient" WHERE "id" = {file} '  # noqa: S608
                f'AND "status" <> {status} OFFSET 0 FOR NO KEY UPDATE) AS "file" '
                f'WHERE {_COUNT_ON_FILE[table]}({institution}, "file"."id", {up_to}) < {most} RETURNING {returning}')
    return (f'{insert} SELECT {values} FROM "patient" WHERE "id" = {file} AND "status" <> {status} '  # noqa: S608
            f'AND (SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE "institution_id" = {institution} '
            f'AND "patient_id" = "patient"."id" LIMIT {up_to})) < {most} RETURNING {returning}')


def update_over_version(row: Model, expected: int, values: dict[str, Any],
                        on_file: uuid.UUID | None = None) -> tuple[str, list[Any]]:
    """``versioning.update_versioned``'s compare-and-set UPDATE (``values`` over the version ``expected``, the
    version bumped, ``updated_at`` set), returning the row as written; it returns nothing when the version is
    stale, or (``on_file``) when the row is no longer on that patient's file."""
    still = {} if on_file is None else {"patient_id": on_file}
    query = type(row).filter(id=row.pk, version=expected, **still).update(
        **versioning.next_version(row, expected, values))
    query._choose_db_if_not_chosen(True)  # what awaiting the query does before it sends it
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return f"{sql} RETURNING *", list(params)


class MovedOffFile(Exception):
    """Nothing was written: the row is no longer on the patient's file it was found on. A merge moves a file's rows to
    the survivor with their versions as they were (found in review: written there without asking, recorded on the
    merged file); the caller, who named the row, finds it again: on the survivor in their reach, else NOT_FOUND."""


async def write_over_version(row: M, version: int | None, noun: str, columns: dict[str, Any],
                             records: Sequence[AuditRecord], *, on_file: uuid.UUID | None = None) -> M:
    """``columns`` over the version the caller read (or the one ``row`` has) and the write's records, in one
    statement on PostgreSQL; returns the row as written. Stale: CONFLICT, nothing written or appended. ``on_file``:
    the patient's file the caller found the row on, which the records name: nothing is written either once the row
    is no longer on it (a merge moves a file's rows to the survivor with their versions as they were, found in
    review): ``MovedOffFile``, for the caller to find the row again."""
    expected = versioning.check_version(row, version, noun)
    written = await writer.append_with(*update_over_version(row, expected, columns, on_file), records)
    if not written:
        if on_file is not None and not await type(row).filter(id=row.pk, patient_id=on_file).exists():
            raise MovedOffFile()
        raise versioning.stale(noun)
    return type(row)._init_from_db(**written[0])
