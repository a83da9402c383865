"""Institution data keys: created wrapped by the master key, unwrapped once per process.

A rotation adds a key version. Every worker reloads an institution's versions at least every
``REFRESH`` seconds, and a new version seals only ``SEALS_AFTER`` its creation: by then every
worker knows it and can open what it seals. Older versions keep opening what they sealed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from core.crypto import InstitutionKeys, MasterKey, new_data_key
from models.institution import InstitutionKey

REFRESH = 30.0  # seconds a worker trusts its copy of an institution's key versions
SEALS_AFTER = timedelta(seconds=2 * REFRESH)


class KeyRing:
    def __init__(self, master: MasterKey) -> None:
        self.master = master
        self._cache: dict[uuid.UUID, tuple[float, InstitutionKeys]] = {}
        self._loading: dict[uuid.UUID, asyncio.Lock] = {}  # one reload at a time per institution

    async def create(self, institution_id: uuid.UUID) -> InstitutionKeys:
        wrapped = self.master.wrap(new_data_key(), institution_id, 1)
        await InstitutionKey.create(institution_id=institution_id, version=1, wrapped_key=wrapped)
        self._cache.pop(institution_id, None)
        return await self.get(institution_id)

    async def rotate(self, institution_id: uuid.UUID) -> InstitutionKey:
        """A new data key version (call inside the transaction that records the rotation)."""
        newest = await InstitutionKey.filter(institution_id=institution_id).order_by("-version").first()
        version = 1 if newest is None else newest.version + 1
        wrapped = self.master.wrap(new_data_key(), institution_id, version)
        row = await InstitutionKey.create(institution_id=institution_id, version=version, wrapped_key=wrapped)
        self._cache.pop(institution_id, None)
        return row

    async def get(self, institution_id: uuid.UUID) -> InstitutionKeys:
        fresh = self._fresh(institution_id)
        if fresh is not None:
            return fresh
        async with self._loading.setdefault(institution_id, asyncio.Lock()):
            return self._fresh(institution_id) or await self._load(institution_id)

    def _fresh(self, institution_id: uuid.UUID) -> InstitutionKeys | None:
        cached = self._cache.get(institution_id)
        return cached[1] if cached is not None and time.monotonic() - cached[0] < REFRESH else None

    async def _load(self, institution_id: uuid.UUID) -> InstitutionKeys:
        keys = InstitutionKeys(institution_id)
        sealing_from = datetime.now(UTC) - SEALS_AFTER
        for row in await InstitutionKey.filter(institution_id=institution_id).order_by("version"):
            keys.add(row.version, self.master.unwrap(bytes(row.wrapped_key), institution_id, row.version),
                     seals=row.version == 1 or row.created_at <= sealing_from)
        if not keys.versions:
            raise LookupError("the institution has no data key")
        self._cache[institution_id] = (time.monotonic(), keys)
        return keys
