"""Heavy work under way per institution in this process: a cheap bound on what one institution can ask of the
database at once (``RATE_LIMITED`` beyond it). The compliance exports (``app/compliance.py``) and the audit chain's
verification (``resolvers/audit_chain.py``) each have theirs."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import RateLimited


class Running:
    def __init__(self, limit: int, busy: str) -> None:
        self.limit = limit
        self._busy = busy  # the RATE_LIMITED error's message: what is under way
        self._running: Counter[uuid.UUID] = Counter()

    def take(self, institution_id: uuid.UUID) -> None:
        if self._running[institution_id] >= self.limit:
            raise RateLimited(self._busy)
        self._running[institution_id] += 1

    def give_back(self, institution_id: uuid.UUID) -> None:
        self._running[institution_id] -= 1
        if self._running[institution_id] <= 0:
            del self._running[institution_id]

    def under_way(self, institution_id: uuid.UUID) -> int:
        return self._running[institution_id]

    @contextmanager
    def slot(self, institution_id: uuid.UUID) -> Iterator[None]:
        """A slot for the work in the block, given back however it ends."""
        self.take(institution_id)
        try:
            yield
        finally:
            self.give_back(institution_id)
