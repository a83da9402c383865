"""Institution data keys: created wrapped by the master key, unwrapped once per process."""

from __future__ import annotations

import uuid

from core.crypto import InstitutionKeys, MasterKey, new_data_key
from models.institution import InstitutionKey


class KeyRing:
    def __init__(self, master: MasterKey) -> None:
        self.master = master
        self._cache: dict[uuid.UUID, InstitutionKeys] = {}

    async def create(self, institution_id: uuid.UUID) -> InstitutionKeys:
        wrapped = self.master.wrap(new_data_key(), institution_id, 1)
        await InstitutionKey.create(institution_id=institution_id, version=1, wrapped_key=wrapped)
        self._cache.pop(institution_id, None)
        return await self.get(institution_id)

    async def get(self, institution_id: uuid.UUID) -> InstitutionKeys:
        keys = self._cache.get(institution_id)
        if keys is None:
            keys = InstitutionKeys(institution_id)
            for row in await InstitutionKey.filter(institution_id=institution_id).order_by("version"):
                keys.add(row.version, self.master.unwrap(bytes(row.wrapped_key), institution_id, row.version))
            if not keys.versions:
                raise LookupError("the institution has no data key")
            self._cache[institution_id] = keys
        return keys
