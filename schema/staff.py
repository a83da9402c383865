"""Staff accounts, roles and the signed-in principal."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

import strawberry

from resolvers import staff as staff_accounts
from resolvers.staff import StaffView
from schema.common import Info, provided, uuid_of

if TYPE_CHECKING:
    from models import Staff as StaffRow


@strawberry.enum(description="What a staff member does; each role has least privilege (see docs/security.md).")
class Role(Enum):
    FRONT_DESK = "front_desk"
    NURSE = "nurse"
    DOCTOR = "doctor"
    DEPARTMENT_HEAD = "department_head"
    SUPPORT_AGENT = "support_agent"
    COMPLIANCE_OFFICER = "compliance_officer"
    FINANCE = strawberry.enum_value("finance", description="Contract and finance staff: prepares, prices and "
                                    "manages service contracts and reads their commercial terms; no clinical data.")
    ADMIN = "admin"


@strawberry.type(description="A staff member as seen on a patient's care team: no contact details.")
class StaffSummary:
    id: strawberry.ID
    name: str

    @classmethod
    def of(cls, row: StaffRow) -> StaffSummary:
        return cls(id=strawberry.ID(str(row.id)), name=row.name)


@strawberry.type(description="A staff account, as its institution's admins see it.")
class Staff:
    id: strawberry.ID
    email: str
    name: str
    active: bool
    roles: list[Role]
    department_ids: list[strawberry.ID]
    locked_until: datetime | None

    @classmethod
    def of(cls, view: StaffView) -> Staff:
        row = view.row
        return cls(
            id=strawberry.ID(str(row.id)), email=row.email, name=row.name, active=row.is_active,
            roles=[Role(r) for r in view.roles], department_ids=[strawberry.ID(str(d)) for d in view.department_ids],
            locked_until=row.locked_until,
        )


@strawberry.input(description="A new staff account. The password is set by the admin and changed by its owner.")
class StaffCreateInput:
    email: str
    name: str
    password: str = strawberry.field(description="12 to 256 characters.")
    roles: list[Role] = strawberry.field(default_factory=list)
    department_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input(description="Changes to a staff account; fields left out stay as they are.")
class StaffUpdateInput:
    name: str | None = strawberry.UNSET
    active: bool | None = strawberry.field(default=strawberry.UNSET,
                                           description="false deactivates the account and revokes its tokens.")
    department_ids: list[strawberry.ID] | None = strawberry.UNSET
    revoke_sessions: bool | None = strawberry.field(default=strawberry.UNSET,
                                                    description="true signs the account out everywhere.")


@strawberry.type
class StaffQuery:
    @strawberry.field(description="One staff account of your institution (admins).")
    async def staff(self, info: Info, id: strawberry.ID) -> Staff | None:
        return Staff.of(await staff_accounts.get(info.context, uuid_of(id)))


@strawberry.type
class StaffMutation:
    @strawberry.mutation(description="Create a staff account (admins).")
    async def staff_create(self, info: Info, input: StaffCreateInput) -> Staff | None:
        return Staff.of(await staff_accounts.create(info.context, provided(input)))

    @strawberry.mutation(description="Change, deactivate or sign out a staff account (admins; nobody adds a "
                                     "department to themselves).")
    async def staff_update(self, info: Info, id: strawberry.ID, input: StaffUpdateInput) -> Staff | None:
        data = provided(input)
        if "active" in data:
            data["is_active"] = data.pop("active")
        return Staff.of(await staff_accounts.update(info.context, uuid_of(id), data))

    @strawberry.mutation(description="Give a staff member a role (admins; never to oneself). Takes effect on their "
                                     "next request. A role that reads patient data waits for a compliance review.")
    async def role_assign(self, info: Info, staff_id: strawberry.ID, role: Role) -> Staff | None:
        return Staff.of(await staff_accounts.assign_role(info.context, uuid_of(staff_id, "staffId"), role.value))

    @strawberry.mutation(description="Take a role away (admins). Takes effect on their next request.")
    async def role_revoke(self, info: Info, staff_id: strawberry.ID, role: Role) -> Staff | None:
        return Staff.of(await staff_accounts.revoke_role(info.context, uuid_of(staff_id, "staffId"), role.value))
