"""The demo seed's clock: the resolvers a story replays read the present through their module's ``_now``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from types import ModuleType

CLOCK = "_now"


@contextlib.contextmanager
def clocked(modules: Iterable[ModuleType], moment: datetime) -> Iterator[None]:
    """``modules`` read ``moment`` as the present until the block ends (the seed runs alone in its process)."""
    modules = tuple(modules)
    saved = [(module, getattr(module, CLOCK)) for module in modules]
    for module in modules:
        setattr(module, CLOCK, lambda: moment)
    try:
        yield
    finally:
        for module, now in saved:
            setattr(module, CLOCK, now)
