"""Writes as SQL with their parameters, for ``audit.writer.append_with`` to send with their audit records.

Built by Tortoise's executor for the model and the current dialect, with each value converted by its
field's own ``to_db_value`` (validation, ``auto_now`` timestamps, UUIDs and booleans as the dialect takes
them), as ``Model.save`` would: values are never put into the SQL text.
"""

from __future__ import annotations

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


_ON_OPEN_FILE: dict[tuple[type[Model], type], str] = {}


def insert_on_open_file(row: Model) -> tuple[str, list[Any]]:
    """``insert_returning_id``'s INSERT of a row of a patient's file (its ``patient_id``), written only while the
    file is not merged, with the file's row locked as ``access.lock_file`` locks it (FOR NO KEY UPDATE on PostgreSQL;
    SQLite runs one write at a time): in the same statement, so no round trip is added. A merge under way is
    waited for; nothing is written, and nothing returned, when the file is merged (``access.refuse_merged``)."""
    sql, params = insert_returning_id(row)
    model, db = type(row), row._meta.db
    key = (model, db.executor_class)
    if key not in _ON_OPEN_FILE:  # once per model and dialect
        insert, _, rest = sql.rpartition(" VALUES (")
        values, _, returning = rest.partition(") RETURNING ")
        postgres = db.capabilities.dialect == "postgres"
        file, status = placeholders(db, 2, first=len(params) + 1)
        lock = " FOR NO KEY UPDATE" if postgres else ""
        _ON_OPEN_FILE[key] = (f'{insert} SELECT {values} FROM "patient" WHERE "id" = {file} '  # noqa: S608
                              f'AND "status" <> {status}{lock} RETURNING {returning}')
    patient = params[_INSERTS[key][1].index("patient_id")]  # as the INSERT binds it
    return _ON_OPEN_FILE[key], [*params, patient, access.MERGED]


def update_over_version(row: Model, expected: int, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """``versioning.update_versioned``'s compare-and-set UPDATE (``values`` over the version ``expected``, the
    version bumped, ``updated_at`` set), returning the row as written; it returns nothing when the version is
    stale."""
    query = type(row).filter(id=row.pk, version=expected).update(**versioning.next_version(row, expected, values))
    query._choose_db_if_not_chosen(True)  # what awaiting the query does before it sends it
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return f"{sql} RETURNING *", list(params)


async def write_over_version(row: M, version: int | None, noun: str, columns: dict[str, Any],
                             records: Sequence[AuditRecord]) -> M:
    """``columns`` over the version the caller read (or the one ``row`` has) and the write's records, in one
    statement on PostgreSQL; returns the row as written. Stale: CONFLICT, nothing written or appended."""
    expected = versioning.check_version(row, version, noun)
    written = await writer.append_with(*update_over_version(row, expected, columns), records)
    if not written:
        raise versioning.stale(noun)
    return type(row)._init_from_db(**written[0])
