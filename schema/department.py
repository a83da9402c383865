"""Departments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import department as departments
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    Version,
    asks_total,
    uuid_of,
)

if TYPE_CHECKING:
    from models import Department as DepartmentRow


@strawberry.type(description="A department of the institution (for example Orthodontics, Ward 3).")
class Department:
    id: strawberry.ID = strawberry.field(description="The department's id.")
    name: str = strawberry.field(description="Its name, 1 to 100 characters, unique in the institution.")
    version: int = strawberry.field(description="Pass back as `version` when you change it.")

    @classmethod
    def of(cls, row: DepartmentRow) -> Department:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, version=row.version)


@strawberry.type(description="One department of a page, with its cursor.")
class DepartmentEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Department = strawberry.field(description="The department.")


@strawberry.type(description="A page of departments, by name.")
class DepartmentConnection:
    edges: list[DepartmentEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Department]:
        return [edge.node for edge in self.edges]


@strawberry.type
class DepartmentQuery:
    @strawberry.field(description="Your institution's departments, by name (at most 500).",
                      deprecation_reason="Stops at 500 departments: page through departmentsConnection.")
    async def departments(self, info: Info) -> list[Department]:
        return [Department.of(row) for row in await departments.all_(info.context)]

    @strawberry.field(description="Your institution's departments, by name, a page at a time.")
    async def departments_connection(self, info: Info, first: First = DEFAULT_PAGE_SIZE,
                                     after: After = None) -> DepartmentConnection | None:
        page = await departments.page(info.context, first=first, after=after, count=asks_total(info))
        return DepartmentConnection(
            edges=[DepartmentEdge(cursor=cursor, node=Department.of(row)) for cursor, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)


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
