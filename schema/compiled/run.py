"""Running a plan: graphql-core's completion, for the types and fields a plan holds, in one pass."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLOutputType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import Executor
from graphql.pyutils import Path, gather_with_cancel, is_iterable

from resolvers import access
from resolvers.access import PatientView
from schema.compiled.fast import Pass
from schema.compiled.plan import Field, Object, Reader

log = logging.getLogger("careloop.compiled")

_UNREAD = object()  # an attribute not read yet (or whose read raised); a serialization not known beforehand


def complete_root(executor: Executor[Any], plan: Object, source: Any, path: Path) -> Any:
    """A compiled root field's result: by the fast pass when the plan has its steps (``fast.prepare``), which
    leaves the plan's one batched field (a page's contacts) to be checked, loaded in one batch and completed in
    document order, as graphql-core's tasks would run them, with no task, coroutine or gather per object. At the
    first error the whole root field is completed again by the plain ``Run``, before anything of the fast pass is
    kept: its notes are a prefix of the plain pass's own (the same reads, in the same order), and no error was
    recorded yet. Only errors make the orders differ (an error null-propagating across a pending field settles it
    in the background)."""
    if plan.steps is None:
        return Run(executor).object(plan, source, path)

    def again() -> Any:
        log.debug("fast pass met an error: completed again")  # (tests check which way ran)
        return Run(executor).object(plan, source, path)

    log.debug("batched" if plan.batched else "fast")
    run = Pass(executor)
    try:
        completed = run.object(plan, source, path)
    except Exception:
        return again()
    return run.finish(completed, again) if run.deferred else completed


class Run:
    """Completes a plan depth first as graphql-core does, and shapes the asynchronous part (contacts) as graphql-core
    shapes it: an object or list with one pending value awaits it directly, with several gathers them as tasks. The
    tasks' order decides the order of the contact checks, so of their errors: deferring every contact to one pass in
    document order answered differently as soon as one branch had two contact fields and another one."""

    def __init__(self, executor: Executor[Any]) -> None:
        self.executor = executor
        self.is_awaitable = executor.is_awaitable
        # the classes already allowed on each patient's file (by the view's identity): a task and its patient, or a
        # patient under edges and nodes, check a class once. Checking it again would note nothing new; a refused
        # class is never kept, so each of its fields is refused (and noted) as on the generic path
        self.allowed: dict[int, tuple[PatientView, set[str]]] = {}  # (the view held, so that its id stays its own)

    def object(self, plan: Object, source: Any, path: Path) -> Any:
        """graphql-core's execute_fields: a dict, or an awaitable of it when some field is pending."""
        out: dict[str, Any] = {}
        pending: list[str] = []
        view = None if plan.patient is None else plan.patient(source)
        allowed = set() if view is None else self.allowed.setdefault(id(view), (view, set()))[1]
        try:
            for f in plan.fields:
                read: Any = _UNREAD
                if f.get is not None:
                    read = _attribute(f.get, source)
                    if read is not _UNREAD and _in_place(f, read, out):
                        continue
                reader = f.reader
                if reader is None:
                    value: Any = plan.type.name
                elif reader.load is not None:
                    value = self.loaded(f, reader, source, Path(path, f.key, f.parent))
                else:
                    value = self.field(f, reader, source, path, view, allowed, read)
                out[f.key] = value
                if self.is_awaitable(value):
                    pending.append(f.key)
        except Exception:
            if pending:  # as graphql-core: the contacts already started still run (and note) in the background
                self.executor.settle_in_background([out[key] for key in pending])
            raise
        return awaited(out, pending) if pending else out

    def field(self, f: Field, reader: Reader, source: Any, parent: Path, view: PatientView | None,
              allowed: set[str], read: Any = _UNREAD) -> Any:
        """graphql-core's execute_field for a synchronous resolver (``read``: the value, when already read)."""
        try:
            if reader.field_class is not None and reader.field_class not in allowed:
                assert view is not None
                # notes the read of the class, or notes the refusal and raises FORBIDDEN (each field of the class)
                access.require_class(source.ctx, view, reader.field_class)
                allowed.add(reader.field_class)
            assert reader.read is not None
            value = reader.read(source) if read is _UNREAD else read
            if f.leaf is None or isinstance(value, Exception):
                completed = self.complete(f, f.type, value, parent, True)
            elif value is not None:  # complete's steps for a scalar, in one
                completed = _leaf_value(f, value)
            elif f.non_null:
                raise _null_in_non_null(f)
            else:
                completed = None
        except Exception as raw:
            # graphql-core's own handling: located at the field, null, or propagated when non-null
            self.executor.handle_field_error(raw, f.type, f.details, Path(parent, f.key, f.parent))
            return None
        if self.is_awaitable(completed):
            return self.guarded(completed, f.type, f.details, Path(parent, f.key, f.parent))
        return completed

    async def guarded(self, completed: Any, return_type: GraphQLOutputType, details: FieldDetailsList,
                      path: Path) -> Any:
        """An awaited completion, its error handled at ``path`` (graphql-core's await_completed)."""
        try:
            return await completed
        except Exception as raw:
            self.executor.handle_field_error(raw, return_type, details, path)
            return None

    def complete(self, f: Field, return_type: GraphQLOutputType, value: Any, path: Path, at_field: bool) -> Any:
        """graphql-core's complete_value for the types of a plan (``path`` is the parent's when ``at_field``)."""
        if isinstance(value, Exception):
            raise value
        if is_non_null_type(return_type):
            assert isinstance(return_type, GraphQLNonNull)
            completed = self.complete(f, return_type.of_type, value, path, at_field)
            if completed is None:
                raise _null_in_non_null(f)
            return completed
        if value is None:
            return None
        if is_leaf_type(return_type):
            return Executor.complete_leaf_value(return_type, value)
        here = Path(path, f.key, f.parent) if at_field else path
        if is_list_type(return_type):
            assert isinstance(return_type, GraphQLList)
            if not is_iterable(value):
                raise GraphQLError(f"Expected Iterable, but did not find one for field '{f.parent}.{f.name}'.")
            return self.items(f, return_type.of_type, value, here)
        assert f.sub is not None
        return self.object(f.sub, value, here)

    def items(self, f: Field, item_type: GraphQLOutputType, values: Any, path: Path) -> Any:
        """graphql-core's complete_iterable_value: a list, or an awaitable of it when some item is pending."""
        out: list[Any] = []
        pending: list[int] = []
        try:
            for index, value in enumerate(values):
                completed = self.item(f, item_type, value, path.add_key(index, None))
                if self.is_awaitable(completed):
                    pending.append(index)
                out.append(completed)
        except Exception:
            if pending:
                self.executor.settle_in_background([out[index] for index in pending])
            raise
        return awaited(out, pending) if pending else out

    def item(self, f: Field, item_type: GraphQLOutputType, value: Any, path: Path) -> Any:
        """graphql-core's complete_list_item_value."""
        try:
            completed = self.complete(f, item_type, value, path, False)
        except Exception as raw:
            self.executor.handle_field_error(raw, item_type, f.details, path)
            return None
        if self.is_awaitable(completed):
            return self.guarded(completed, item_type, f.details, path)
        return completed

    async def loaded(self, f: Field, reader: Reader, source: Any, path: Path) -> Any:
        """An asynchronous resolver as graphql-core's complete_awaitable_value runs it (``Patient.contacts``): the
        coroutine is made in the synchronous pass and started where graphql-core starts the resolver's."""
        try:
            assert reader.load is not None
            completed = self.complete(f, f.type, await reader.load(source), path, False)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            self.executor.handle_field_error(raw, f.type, f.details, path)
            return None
        return completed


def _attribute(get: Callable[[Any], Any], source: Any) -> Any:
    """An attribute's value, or ``_UNREAD`` when reading it raised: the field then takes the general way, which
    reads it again inside graphql-core's error handling (a source's read notes what it reads, and noting twice
    adds nothing)."""
    try:
        return get(source)
    except Exception:
        return _UNREAD


def _in_place(f: Field, value: Any, out: dict[str, Any]) -> bool:
    """Whether an attribute's value was completed into ``out`` without graphql-core's steps (a str where String is
    due, an enum member, a null where one may be, a list of such leaves); when not, the field takes the general
    way with the value read."""
    kind = type(value)
    if value is None:
        if f.non_null:
            return False
        out[f.key] = None
    elif f.leaf is not None:  # a scalar or an enum (a list field's str is not its list)
        known = _known(f, value)
        if known is _UNREAD:
            return False
        out[f.key] = known
    elif kind is list and f.items:
        completed = _leaf_items(f, value)
        if completed is None:
            return False
        out[f.key] = completed
    else:
        return False
    return True


def _leaf_items(f: Field, values: list[Any]) -> list[Any] | None:
    """A list of leaves completed without graphql-core's steps, or None when some item needs them."""
    if f.same is not None and all(type(value) is f.same for value in values):
        return list(values)
    names = f.names
    if names is not None and all(type(value) is f.enum and value in names for value in values):
        return [names[value] for value in values]
    return None


def _leaf_value(f: Field, value: Any) -> Any:
    """graphql-core's complete_leaf_value, with its result for a str or an enum member known beforehand."""
    known = _known(f, value)
    if known is not _UNREAD:
        return known
    assert f.leaf is not None
    return Executor.complete_leaf_value(f.leaf, value)


def _known(f: Field, value: Any) -> Any:
    """A scalar's serialization known beforehand (a str for String or ID, a bool, an enum member's name), or
    ``_UNREAD``: graphql-core's to work out."""
    kind = type(value)
    if kind is f.same:
        return value
    if kind is f.enum and f.names is not None and value in f.names:
        return f.names[value]
    return _UNREAD


def _null_in_non_null(f: Field) -> TypeError:
    """graphql-core's error for a null where the schema promises a value."""
    return TypeError(f"Cannot return null for non-nullable field {f.parent}.{f.name}.")


async def awaited(out: Any, pending: list[Any]) -> Any:
    """``out`` (a dict or a list) with its pending values awaited in place: one directly, several gathered as
    tasks, as graphql-core awaits an object's fields and a list's items."""
    if len(pending) == 1:
        out[pending[0]] = await out[pending[0]]
    else:
        for key, value in zip(pending, await gather_with_cancel(*(out[k] for k in pending)), strict=True):
            out[key] = value
    return out
