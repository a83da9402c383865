"""A Tortoise query's SQL built once per shape, then bound again with each call's values.

Tortoise builds a query's SQL (Q objects resolved into a pypika tree, rendered to text) every time it is awaited.
For the scoped patient query, with its care-team and break-glass subqueries, that building was about a third of a
one-patient request's CPU. Yet the text is the same for every call of one shape (the same query with other
values); only the parameters differ. So a query of a shape is built twice, with two sets of stand-in values, by
Tortoise itself: the text must come out the same, and every parameter that differs between the two builds must be
one of the stand-ins (as it is, or as its text), which says where each value goes. Later calls bind their values
there and run the kept text. The query is still written once, with Tortoise; nothing of its meaning is copied by
hand. A shape whose parameters cannot be placed that way (a value transformed, say into a LIKE pattern) is simply
built each time, as before.

Values may be None, UUIDs, datetimes, dates, ints or sorted lists of UUIDs (IN lists: bound in sorted order, so a list
is used as a set). None, a list's length and whether a datetime has a zone are part of the shape, since they change the
text or what Tortoise binds (a naive datetime is made aware).

A value the query transforms so that both stand-ins give the same parameter (a datetime truncated to the second or
the day, an int clamped to a maximum) would be taken for a constant and bound as the stand-in's for every later
call. So a datetime's two stand-ins lie years apart and differ in their hours, seconds and microseconds too, and
the template is checked once against the first call's own values as Tortoise builds them. That narrows the risk
without closing it (a clamp that the first call's value also reaches passes both): a build must pass its values on
as they are.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import count
from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.router import router

M = TypeVar("M", bound=Model)

_SIZE = 512  # shapes kept; a role mix, column sets and list lengths are few
_serial = count(1)


@dataclass(frozen=True)
class _Slot:
    position: int  # in the parameters
    name: str
    element: int | None  # in a list value
    as_text: bool  # bound as str(value), as Tortoise bound the stand-in


@dataclass(frozen=True)
class _Template:
    sql: str
    constants: tuple[Any, ...]  # the parameters of the first build; slots are overwritten
    slots: tuple[_Slot, ...]
    annotations: tuple[str, ...]


_templates: OrderedDict[Hashable, _Template | None] = OrderedDict()


async def select(model: type[M], shape: Hashable, build: Callable[..., QuerySet[M]], **values: Any) -> list[M]:
    """The rows of ``build(**values)``, a plain QuerySet of ``model`` (no prefetch, no select_related), the same
    function for one ``shape`` (what the text depends on beyond the values: a caller's role mix, the columns)."""
    db = router.db_for_read(model) or model._meta.db  # as the QuerySet would choose it now (a transaction's)
    template = _template(shape, build, values, db.capabilities.dialect)
    if template is None:
        return await build(**values)
    sql, params = _bind(template, values)
    _, rows = await db.execute_query(sql, params)
    if not rows:
        return []
    make = _hydrator(model, tuple(rows[0].keys()), template.annotations)
    return [make(row) for row in rows]


async def select_rows(model: type[M], shape: Hashable, build: Callable[..., QuerySet[M]], **values: Any) -> list[Any]:
    """``select``'s rows as the driver gives them, with no model instance per row: mappings of column name to the
    driver's value (a SQLite timestamp or UUID is text), for a page whose reader converts only what it shows (a
    model per row was a tenth of the audit trail's page, W4)."""
    db = router.db_for_read(model) or model._meta.db
    template = _template(shape, build, values, db.capabilities.dialect)
    if template is None:
        return await rows_of(build(**values))
    sql, params = _bind(template, values)
    _, rows = await db.execute_query(sql, params)
    return list(rows)


async def rows_of(query: QuerySet[M]) -> list[Any]:
    """The rows of a plain QuerySet (no prefetch, no select_related) as the driver gives them (see ``select_rows``),
    built by Tortoise this once."""
    assert not (query._prefetch_map or query._prefetch_queries or query._select_related), "a plain query only"
    sql, params = _rendered(query)
    _, rows = await query._db.execute_query(sql, params)
    return list(rows)


def models_of(model: type[M], rows: Sequence[Any]) -> list[M]:
    """Model instances from the driver's rows of a hand-written statement (each a whole row of ``model``'s table,
    as ``SELECT "t".*`` gives it, or some of its columns: a partial instance, as ``only`` makes one), made as
    ``select`` makes them."""
    if not rows:
        return []
    make = _hydrator(model, tuple(rows[0].keys()), ())
    return [make(row) for row in rows]


def id_list(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Ids for an IN list of a shape: sorted, each once, padded with the last to a power of two, since a list's
    length shapes the text (a batch of 37 and one of 50 share the shape of 64)."""
    unique = sorted(set(ids))
    size = 1 << max(len(unique) - 1, 0).bit_length()
    return unique + unique[-1:] * (size - len(unique))


def bound(shape: Hashable, build: Callable[..., QuerySet[M]], dialect: str, **values: Any) -> tuple[str, list[Any]]:
    """The text and parameters ``select`` would run (for tests: they must be what Tortoise builds)."""
    template = _template(shape, build, values, dialect)
    if template is None:
        raise ValueError("this shape is built by Tortoise on every call")
    return _bind(template, values)


def _template(shape: Hashable, build: Callable[..., QuerySet[M]], values: dict[str, Any],
              dialect: str) -> _Template | None:
    key = (shape, dialect, _signature(values))
    if key in _templates:
        _templates.move_to_end(key)
        return _templates[key]
    template = _learn(build, values)
    _templates[key] = template
    if len(_templates) > _SIZE:
        _templates.popitem(last=False)
    return template


def _signature(values: dict[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """What of the values changes the text or the binding: which are None, their types, a list's length, whether a
    datetime is naive (Tortoise makes it aware)."""
    return tuple(sorted((name, _kind(value), len(value) if isinstance(value, list) else 0)
                        for name, value in values.items()))


def _kind(value: Any) -> str:
    if isinstance(value, datetime) and value.tzinfo is None:
        return "naive datetime"
    return type(value).__name__


def _learn(build: Callable[..., QuerySet[M]], values: dict[str, Any]) -> _Template | None:
    if not all(_replaceable(value) for value in values.values()):
        return None
    try:
        return _learned(build, values)
    except Exception:  # a stand-in a field refuses (a validator, a narrow column): built by Tortoise each time
        return None


def _learned(build: Callable[..., QuerySet[M]], values: dict[str, Any]) -> _Template | None:
    first, second = _stand_ins(values), _stand_ins(values)
    query = build(**first)
    if query._prefetch_map or query._prefetch_queries or query._select_related:
        return None
    sql, params = _rendered(query)
    sql_again, params_again = _rendered(build(**second))
    if sql != sql_again or len(params) != len(params_again):
        return None
    slots = []
    for position, (one, other) in enumerate(zip(params, params_again, strict=True)):
        if one == other:
            continue
        slot = _place(position, one, other, first, second)
        if slot is None:
            return None
        slots.append(slot)
    template = _Template(sql, tuple(params), tuple(slots), tuple(query._annotations))
    # a parameter the stand-ins could not tell from a constant (the value transformed) shows with the real values
    return template if _bind(template, values) == _rendered(build(**values)) else None


def _rendered(query: QuerySet[M]) -> tuple[str, list[Any]]:
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return sql, list(params)


def _place(position: int, one: Any, other: Any, first: dict[str, Any], second: dict[str, Any]) -> _Slot | None:
    """Which stand-in a parameter is, in both builds, as the value itself or as its text; None: none is."""
    for name, value in first.items():
        elements = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for element, stand_in in elements:
            again = second[name] if element is None else second[name][element]
            for as_text in (False, True):
                if (one, other) == ((str(stand_in), str(again)) if as_text else (stand_in, again)):
                    return _Slot(position, name, element, as_text)
    return None


def _replaceable(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, uuid.UUID) for v in value)
    return value is None or (isinstance(value, (uuid.UUID, date, int)) and not isinstance(value, bool))


def _stand_ins(values: dict[str, Any]) -> dict[str, Any]:
    """Values of the same kinds that occur nowhere else (None stays None: it changes the text)."""
    return {name: _stand_in(value) for name, value in values.items()}


def _stand_in(value: Any) -> Any:
    serial = next(_serial)
    if value is None:
        return None
    if isinstance(value, list):
        return sorted(uuid.uuid4() for _ in value)
    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    if isinstance(value, datetime):  # years apart between two builds, and in the hour, second and microsecond:
        step = serial % 5000  # a truncation does not make them one (1901 to about 7400; naive stays naive)
        return datetime(1901, 1, 1, tzinfo=value.tzinfo) + timedelta(days=397 * step, seconds=3661 * step + 1,
                                                                      microseconds=step + 1)
    if isinstance(value, date):  # a day apart at least, and years apart from most
        return date(1901, 1, 1) + timedelta(days=397 * (serial % 5000) + 1)
    return 1_000_000_007 + serial  # an int


def _bind(template: _Template, values: dict[str, Any]) -> tuple[str, list[Any]]:
    params = list(template.constants)
    lists = {name: sorted(value) for name, value in values.items() if isinstance(value, list)}
    for slot in template.slots:
        value = values[slot.name] if slot.element is None else lists[slot.name][slot.element]
        params[slot.position] = str(value) if slot.as_text else value
    return template.sql, params


@lru_cache(maxsize=256)
def _hydrator(model: type[M], keys: tuple[str, ...], annotations: tuple[str, ...]) -> Callable[[Any], M]:
    """Model instances from rows with these columns, as ``Model._init_from_db`` makes them, the per-column work
    decided once: Tortoise decides it again for every row of a partial (``only``) query, a fifth of a page's model
    building. ``annotations`` are set as they are, as Tortoise sets a query's annotations."""
    meta = model._meta
    native = {key for key, _, _ in meta.db_native_fields}
    default = {key: field.field_type for key, _, field in meta.db_default_fields}
    plan: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    for key in keys:
        if key in annotations:
            plan.append((key, key, None))
        elif key in meta.fields_map:
            field = meta.fields_map[key]
            convert = None if key in native else _or_none(default[key]) if key in default else field.to_python_value
            plan.append((key, meta.fields_db_projection_reverse.get(key, key), convert))
    partial = not all(key in keys for key, _, _ in (*meta.db_native_fields, *meta.db_default_fields,
                                                     *meta.db_complex_fields))
    custom_pk = meta.db_pk_column not in meta.generated_db_fields
    new, put = model.__new__, object.__setattr__
    if any(hasattr(getattr(model, attribute, None), "__set__") for _, attribute, _ in plan):
        def make(row: Any) -> M:  # an attribute the class sets itself (a descriptor): set as Tortoise sets it
            instance = new(model)
            put(instance, "_partial", partial)
            put(instance, "_saved_in_db", True)
            put(instance, "_custom_generated_pk", custom_pk)
            put(instance, "_await_when_save", {})
            for key, attribute, convert in plan:
                value = row[key]
                put(instance, attribute, value if convert is None else convert(value))
            return instance

        return make

    def make_plain(row: Any) -> M:  # plain attributes: the instance's dict filled directly (half the time)
        instance = new(model)
        attributes = instance.__dict__
        attributes.update(_partial=partial, _saved_in_db=True, _custom_generated_pk=custom_pk, _await_when_save={})
        for key, attribute, convert in plan:
            value = row[key]
            attributes[attribute] = value if convert is None else convert(value)
        return instance

    return make_plain


def _or_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def dialect_of(model: type[Model]) -> str:
    """The dialect a read of ``model`` runs in now (for ``bound``)."""
    return str((router.db_for_read(model) or model._meta.db).capabilities.dialect)
