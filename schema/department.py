"""Departments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import department as departments
from schema.common import Info, Version, uuid_of

if TYPE_CHECKING:
    from models import Department as DepartmentRow


@strawberry.type(description="A department of the institution (for example Orthodontics, Ward 3).")
class Department:
    id: strawberry.ID = strawberry.field(description="The department's id.")
    name: str = strawberry.field(description="Its name.")
    version: int = strawberry.field(description="Pass back as `version` when you change it.")

    @classmethod
    def of(cls, row: DepartmentRow) -> Department:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, version=row.version)


@strawberry.type
class DepartmentQuery:
    @strawberry.field(description="Every department of your institution, by name.")
    async def departments(self, info: Info) -> list[Department]:
        return [Department.of(row) for row in await departments.all_(info.context)]


@strawberry.type
class DepartmentMutation:
    @strawberry.mutation(description="Create a department (admins).")
    async def department_create(self, info: Info, name: Annotated[str, strawberry.argument(
            description="Its name, 1-100 characters, unique in the institution.")]) -> Department | None:
        return Department.of(await departments.create(info.context, name))

    @strawberry.mutation(description="Rename a department (admins). Pass the version you read: a stale one answers "
                                     "CONFLICT.")
    async def department_update(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The department's id.")],
        name: Annotated[str, strawberry.argument(description="Its new name, 1-100 characters, unique in the "
                                                             "institution.")],
        version: Version = None,
    ) -> Department | None:
        return Department.of(await departments.update(info.context, uuid_of(id), name, version))
