"""The fast pass: a plan completed on the assumption that nothing errs, by steps made once per plan.

``run.Run`` is graphql-core's completion for a plan's types, with everything graphql-core does per field: error
handling at each field, null propagation, awaitables shaped as graphql-core shapes them. Most requests meet no
error, and for them that care is spent for nothing: a W1 page completes ~700 fields. So a plan whose asynchronous
part is at most one batched field (``plan.Object.batched``; most are) gets steps (``prepare``): one closure per
field, its reader, class check and completion chosen when the plan is made, bound as locals. ``Pass`` runs them.
Anything out of the ordinary (an error, a refused class, a null where the schema promises a value, a value only
graphql-core's completion knows what to do with) raises, and ``run.complete_root`` completes the root field again
the plain way. That is exact: the fast pass reads what the plain pass reads, in the same order, so its audit notes
are a prefix of the plain pass's own, and it records no error and keeps nothing else. The plan's one batched field
(a page's contacts) is left out of the synchronous part and completed by ``Pass.finish``.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any, TypeAlias, cast

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLError,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLOutputType,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.executor import Executor
from graphql.pyutils import Path, is_iterable

from resolvers import access
from resolvers.access import PatientView
from schema.compiled.plan import Field, Object

Step: TypeAlias = Callable[["Pass", Any, dict[str, Any], PatientView | None, set[str], Path], None]
Completion: TypeAlias = Callable[["Pass", Any, Path], Any]  # (pass, value, the value's own path) -> completed
_Place: TypeAlias = tuple[dict[str, Any], Field, Any, Path]  # a batched field's place: (object, field, source, parent)


class Pass:
    """One fast completion of a plan (``prepare`` made its steps). The batched field is left out of the synchronous
    part and completed by ``finish``."""

    def __init__(self, executor: Executor[Any]) -> None:
        self.executor = executor
        # the classes already allowed on each patient's file (by the view's identity), as ``run.Run`` keeps them
        self.allowed: dict[int, tuple[PatientView, set[str]]] = {}
        self.deferred: list[_Place] = []  # the batched field's places, in document order
        self.no_file: set[str] = set()  # an object read under no patient's file: no guarded field, nothing added

    def object(self, plan: Object, source: Any, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if plan.patient is None:
            view, allowed = None, self.no_file
        else:
            view = plan.patient(source)
            held = self.allowed.get(id(view))
            if held is None:
                held = self.allowed[id(view)] = (view, set())
            allowed = held[1]
        for step in plan.steps:  # type: ignore[union-attr]  # (``prepare`` gave every object of the plan its steps)
            step(self, source, out, view, allowed, path)
        return out

    async def finish(self, completed: dict[str, Any], again: Callable[[], Any]) -> Any:
        """The batched field's values: each source checked, in document order; all loaded in one batch (outside
        the request's loaders, so that a plain pass after it finds them as graphql-core would: cold); each
        completed in place, in document order (graphql-core's tasks: started, and woken by the loader, in order).
        A load that fails is reported at each place, as graphql-core reports it, and not tried again."""
        places = self.deferred
        field = places[0][1]
        batch = field.reader.batch  # type: ignore[union-attr]
        assert batch is not None and field.fast is not None
        try:
            for _, _, source, _ in places:
                batch.check(source)
        except Exception:
            return await _settled(again())
        try:
            values = await batch.load([source for _, _, source, _ in places], field.selected)
        except Exception as raw:
            self.failed(raw, places, batch.key)
            return completed
        complete, key, parent_type = field.fast, field.key, field.parent
        try:
            for (out, _, _, parent), value in zip(places, values, strict=True):
                out[key] = complete(self, value, Path(parent, key, parent_type))
        except Exception:
            return await _settled(again())
        return completed

    def failed(self, raw: Exception, places: list[_Place], key: Callable[[Any], Any]) -> None:
        """A failed batch reported where graphql-core's tasks report it, in the order they wake: by the loader's
        key, in the order each was first asked for (the tasks waiting on one key's future wake together); a place
        without a key (``key`` None: nothing to load) answered null before the load, without an error."""
        order: dict[Any, list[tuple[Field, Path]]] = {}
        for _, f, source, parent in places:
            wanted = key(source)
            if wanted is not None:
                order.setdefault(wanted, []).append((f, Path(parent, f.key, f.parent)))
        for waiting in order.values():
            for f, path in waiting:  # the field is nullable (``plan.batchable``): null, and the error recorded
                self.executor.handle_field_error(raw, f.type, f.details, path)


async def _settled(result: Any) -> Any:
    """A plain pass's result, awaited when it is pending."""
    return await result if isawaitable(result) else result


def prepare(plan: Object) -> bool:
    """Give every object of ``plan`` its steps, and the batched field its completion; False (and no steps kept)
    when some part is not for the fast pass: an asynchronous field not batched, a list of lists."""
    if not _prepared(plan, plan.batched):
        _forget(plan)
        return False
    return True


def _prepared(made: Object, batched: bool) -> bool:
    steps: list[Step] = []
    for f in made.fields:
        if f.sub is not None and not _prepared(f.sub, batched):
            return False
        if f.reader is not None and f.reader.load is not None and not batched:
            return False
        completion = None if f.reader is None else _completion(f, f.type)
        if f.reader is not None and completion is None:
            return False
        f.fast = completion
        if f.reader is not None and f.reader.load is not None and f.sub is not None:
            f.selected = frozenset(sub.name for sub in f.sub.fields)
        steps.append(_step(f))
    made.steps = steps
    made.flat = _flat(made)
    return True


def _forget(made: Object) -> None:
    made.steps, made.flat = None, None
    for f in made.fields:
        f.fast, f.selected = None, None
        if f.sub is not None:
            _forget(f.sub)


def _step(f: Field) -> Step:
    """The field's step: its value read (its class checked first, once per file) and completed into ``out``."""
    key, parent = f.key, f.parent
    if f.reader is None:
        def typename(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                     path: Path) -> None:
            out[key] = parent

        return typename
    if f.reader.load is not None:
        def batched(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                    path: Path) -> None:
            run.deferred.append((out, f, source, path))
            out[key] = None  # until ``Pass.finish``

        return batched
    read = f.get or f.reader.read
    field_class, complete = f.reader.field_class, f.fast
    same = f.same if f.leaf is not None else None  # a list of strings' str is not its list (graphql-core: an error)
    assert read is not None and complete is not None
    if f.sub is not None:  # an object or a list of them: completed at the field's own path
        if field_class is not None:
            return _guarded_object(f, read, field_class, complete)

        def object_step(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                        path: Path) -> None:
            out[key] = complete(run, read(source), Path(path, key, parent))

        return object_step
    if field_class is None:
        def step(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                 path: Path) -> None:
            value = read(source)
            out[key] = value if type(value) is same else complete(run, value, path)  # a leaf: no path

        return step

    def guarded(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                path: Path) -> None:
        if field_class not in allowed:
            access.require_class(source.ctx, view, field_class)  # type: ignore[arg-type]  # raises when refused
            allowed.add(field_class)
        value = read(source)
        out[key] = value if type(value) is same else complete(run, value, path)

    return guarded


def _guarded_object(f: Field, read: Callable[[Any], Any], field_class: str, complete: Completion) -> Step:
    key, parent = f.key, f.parent

    def guarded_object(run: Pass, source: Any, out: dict[str, Any], view: PatientView | None, allowed: set[str],
                       path: Path) -> None:
        if field_class not in allowed:
            access.require_class(source.ctx, view, field_class)  # type: ignore[arg-type]  # raises when refused
            allowed.add(field_class)
        out[key] = complete(run, read(source), Path(path, key, parent))

    return guarded_object


def _completion(f: Field, return_type: GraphQLOutputType) -> Completion | None:
    """How a value of the field's type completes, or None when the fast pass does not know (a list of lists)."""
    non_null = is_non_null_type(return_type)
    nullable = get_nullable_type(return_type)
    if is_list_type(nullable):
        item_type = nullable.of_type
        if is_list_type(get_nullable_type(item_type)):
            return None
        item = _completion(f, item_type)
        return None if item is None else _list(non_null, item, objects=f.sub is not None)
    if is_leaf_type(nullable):
        return _leaf(f, non_null, get_named_type(nullable))  # type: ignore[arg-type]
    assert f.sub is not None
    return _object(f, non_null, f.sub)


def _leaf(f: Field, non_null: bool, leaf: GraphQLLeafType) -> Completion:
    same, enum = f.same, f.enum
    # an enum's members by identity: a plain Enum member hashes in Python, twice per value by ``value in names``
    names = {id(member): name for member, name in (f.names or {}).items()}
    whole = leaf is GraphQLInt  # an int in Int's 32 bits serializes as itself (graphql-core's serialize_int)

    def complete(run: Pass, value: Any, path: Path) -> Any:
        if value is None:
            if non_null:
                raise TypeError("null where the schema promises a value")
            return None
        kind = type(value)
        if kind is same:
            return value
        if kind is enum:
            name = names.get(id(value))
            if name is not None:
                return name
        if whole and kind is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
            return value
        if isinstance(value, Exception):
            raise value
        return Executor.complete_leaf_value(leaf, value)

    return complete


def _list(non_null: bool, item: Completion, *, objects: bool) -> Completion:
    """A list's items completed in order (each object at its own path; leaves need none). A ``list`` is iterable
    without asking ``is_iterable``, whose two ABC checks cost more than the rest of a short list's completion."""
    def complete(run: Pass, value: Any, path: Path) -> Any:
        if value is None:
            if non_null:
                raise TypeError("null where the schema promises a value")
            return None
        if type(value) is not list and (isinstance(value, Exception) or not is_iterable(value)):
            raise GraphQLError("not a list")
        if not objects:
            return [item(run, one, path) for one in value]
        return [item(run, one, path.add_key(index, None)) for index, one in enumerate(value)]

    return complete


def _object(f: Field, non_null: bool, sub: Object) -> Completion:
    finish = sub.flat or Pass.object  # the object's own function when it has one (``_flat``), else its steps

    def complete(run: Pass, value: Any, path: Path) -> Any:
        if value is None:
            if non_null:
                raise TypeError("null where the schema promises a value")
            return None
        if isinstance(value, Exception):
            raise value
        return finish(run, sub, value, path)

    return complete


def _flat(made: Object) -> Callable[[Pass, Object, Any, Path], dict[str, Any]] | None:
    """An object of leaves only, under no patient's file (an audit event: twenty fields, fifty to a page), completed
    by one function written for it, as ``dataclasses`` writes ``__init__``: each field's read and completion in
    order, without a step's call per field. Its reads, checks and errors are the steps' own; None for any other
    object."""
    if made.patient is not None:
        return None
    bound: dict[str, Any] = {}
    lines = ["def flat(run, plan, source, path):", "    out = {}"]  # ``Pass.object``'s arguments
    for number, f in enumerate(made.fields):
        if f.reader is None:  # __typename
            lines.append(f"    out[{f.key!r}] = {f.parent!r}")
            continue
        if f.sub is not None or f.reader.load is not None or f.reader.field_class is not None or f.fast is None:
            return None
        bound[f"read{number}"], bound[f"complete{number}"] = f.get or f.reader.read, f.fast
        lines.append(f"    value = read{number}(source)")
        if f.leaf is not None and f.same is not None:
            bound[f"same{number}"] = f.same
            lines.append(f"    out[{f.key!r}] = value if type(value) is same{number} else "
                         f"complete{number}(run, value, path)")
        else:
            lines.append(f"    out[{f.key!r}] = complete{number}(run, value, path)")
    lines.append("    return out")
    exec("\n".join(lines), bound)  # noqa: S102 -- our own text: response keys (GraphQL names) as literals
    return cast(Callable[[Pass, Object, Any, Path], dict[str, Any]], bound["flat"])
