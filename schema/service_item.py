"""The institution's catalogue of procedures and services."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from resolvers import service_item as service_items
from schema.common import Info, uuid_of

if TYPE_CHECKING:
    from models import ServiceItem as ServiceItemRow


@strawberry.type(description="A procedure or service of the institution's catalogue (orthodontics, implant...). "
                             "Visits record procedures with these codes.")
class ServiceItem:
    id: strawberry.ID
    code: str
    name: str
    active: bool

    @classmethod
    def of(cls, row: ServiceItemRow) -> ServiceItem:
        return cls(id=strawberry.ID(str(row.id)), code=row.code, name=row.name, active=row.active)


@strawberry.type
class ServiceItemQuery:
    @strawberry.field(description="The service catalogue, by code (at most 500 items).")
    async def service_items(self, info: Info, include_retired: bool = False) -> list[ServiceItem]:
        rows = await service_items.catalogue(info.context, include_retired=include_retired)
        return [ServiceItem.of(row) for row in rows]


@strawberry.type
class ServiceItemMutation:
    @strawberry.mutation(description="Add a procedure or service to the catalogue (admins).")
    async def service_item_create(self, info: Info, code: str, name: str) -> ServiceItem | None:
        return ServiceItem.of(await service_items.create(info.context, code, name))

    @strawberry.mutation(description="Retire a catalogue item (visits keep their codes) or bring it back (admins).")
    async def service_item_set_active(self, info: Info, id: strawberry.ID, active: bool) -> ServiceItem | None:
        return ServiceItem.of(await service_items.set_active(info.context, uuid_of(id), active))
