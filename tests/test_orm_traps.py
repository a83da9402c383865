"""Traps of the ORM that pass every functional test on SQLite and fail only under concurrency, caught in the source.

Tortoise builds a ``values()``/``values_list()`` query afresh and leaves ``select_for_update()`` out of it without
a word: ``X.filter(...).select_for_update().values_list("id")`` runs as a plain SELECT, no row locked, no SKIP LOCKED
(found twice in review: the outbox's reschedule check and the no-show sweep). Lock with ``.only(...)`` instead."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "schema", "resolvers", "policies", "audit", "models", "core")
DROPS_THE_LOCK = {"values", "values_list"}


def _receivers(call: ast.Call) -> list[str]:
    """The methods called along a chain, outermost first: ``a.b().c().d()`` gives d, c, b."""
    names, node = [], call
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        names.append(node.func.attr)
        node = node.func.value
        while isinstance(node, ast.Await):
            node = node.value
    return names


def locks_dropped(source: str) -> list[int]:
    """Lines where a chain calls values()/values_list() after select_for_update()."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            chain = _receivers(node)
            if chain and chain[0] in DROPS_THE_LOCK and "select_for_update" in chain[1:]:
                found.append(node.lineno)
    return found


def test_the_check_finds_a_dropped_lock() -> None:
    assert locks_dropped('rows = await (A.filter(x=1).select_for_update(skip_locked=True)\n.values_list("id"))') == [1]
    assert locks_dropped('rows = await A.filter(x=1).select_for_update().only("id")') == []
    assert locks_dropped('ids = await A.filter(x=1).values_list("id", flat=True)') == []


def test_no_query_locks_rows_and_reads_values() -> None:
    paths = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    dropped = [f"{path.relative_to(ROOT)}:{line}" for path in paths for line in locks_dropped(path.read_text())]
    assert dropped == []
