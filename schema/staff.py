"""Staff accounts, roles and the signed-in principal."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import staff as staff_accounts
from resolvers.staff import StaffView
from schema.common import Info, provided, uuid_of

if TYPE_CHECKING:
    from models import Staff as StaffRow


@strawberry.enum(description="What a staff member does; each role has least privilege (see docs/security.md).")
class Role(Enum):
    FRONT_DESK = strawberry.enum_value("front_desk", description="Front desk and customer service: registers and "
                                                                 "books patients, contact data, no clinical detail.")
    NURSE = strawberry.enum_value("nurse", description="Responsible nurse: follow-up calls, health education, the "
                                                       "files of the patients in her care or department.")
    DOCTOR = strawberry.enum_value("doctor", description="Reads and writes the clinical part of the file for "
                                                         "patients of their care team or department.")
    DEPARTMENT_HEAD = strawberry.enum_value("department_head", description="Department head or head nurse: their "
                                                                           "departments' patients, tickets, reports "
                                                                           "and follow-up.")
    SUPPORT_AGENT = strawberry.enum_value("support_agent", description="Works the ticket queue and the improvement "
                                                                       "list; no clinical data.")
    COMPLIANCE_OFFICER = strawberry.enum_value("compliance_officer", description="Reads the audit trail, reviews "
                                                                                 "emergency accesses and role grants; "
                                                                                 "no patient data.")
    FINANCE = strawberry.enum_value("finance", description="Contract and finance staff: prepares, prices and "
                                    "manages service contracts and reads their commercial terms; no clinical data.")
    ADMIN = strawberry.enum_value("admin", description="Institution admin: staff accounts, roles, departments, "
                                                       "partners, SLA calendars; no patient data.")


@strawberry.type(description="A staff member as seen on a patient's care team: no contact details.")
class StaffSummary:
    id: strawberry.ID = strawberry.field(description="The staff member's id.")
    name: str = strawberry.field(description="Their name.")

    @classmethod
    def of(cls, row: StaffRow) -> StaffSummary:
        return cls(id=strawberry.ID(str(row.id)), name=row.name)


@strawberry.type(description="A staff account, as its institution's admins see it.")
class Staff:
    id: strawberry.ID = strawberry.field(description="The staff member's id.")
    email: str = strawberry.field(description="The sign-in e-mail, lowercased.")
    name: str = strawberry.field(description="Their name.")
    active: bool = strawberry.field(description="False: deactivated, cannot sign in.")
    roles: list[Role] = strawberry.field(description="Their roles.")
    department_ids: list[strawberry.ID] = strawberry.field(description="The departments they belong to.")
    locked_until: datetime | None = strawberry.field(description="Signing in is refused until then after repeated "
                                                                 "failures; null: not locked.")

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
    email: str = strawberry.field(description="The sign-in e-mail, unique across the deployment.")
    name: str = strawberry.field(description="Their name.")
    password: str = strawberry.field(description="12 to 256 characters.")
    roles: list[Role] = strawberry.field(default_factory=list, description="Their roles (a role that reads patient "
                                                                           "data waits for a compliance review).")
    department_ids: list[strawberry.ID] = strawberry.field(default_factory=list,
                                                           description="The departments they belong to.")


@strawberry.input(description="Changes to a staff account; fields left out stay as they are.")
class StaffUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Their name.")
    active: bool | None = strawberry.field(default=strawberry.UNSET,
                                           description="false deactivates the account and revokes its tokens.")
    department_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                                  description="Their departments (replaces the "
                                                                              "list).")
    revoke_sessions: bool | None = strawberry.field(default=strawberry.UNSET,
                                                    description="true signs the account out everywhere.")


_STAFF_ID = Annotated[strawberry.ID, strawberry.argument(description="The staff member's id.")]
_ROLE = Annotated[Role, strawberry.argument(description="The role.")]


@strawberry.type
class StaffQuery:
    @strawberry.field(description="One staff account of your institution (admins).")
    async def staff(self, info: Info, id: _STAFF_ID) -> Staff | None:
        return Staff.of(await staff_accounts.get(info.context, uuid_of(id)))


@strawberry.type
class StaffMutation:
    @strawberry.mutation(description="Create a staff account (admins).")
    async def staff_create(self, info: Info, input: Annotated[StaffCreateInput, strawberry.argument(
            description="The account.")]) -> Staff | None:
        return Staff.of(await staff_accounts.create(info.context, provided(input)))

    @strawberry.mutation(description="Change, deactivate or sign out a staff account (admins; nobody adds a "
                                     "department to themselves).")
    async def staff_update(
        self, info: Info, id: _STAFF_ID,
        input: Annotated[StaffUpdateInput, strawberry.argument(description="The changes.")],
    ) -> Staff | None:
        data = provided(input)
        if "active" in data:
            data["is_active"] = data.pop("active")
        return Staff.of(await staff_accounts.update(info.context, uuid_of(id), data))

    @strawberry.mutation(description="Give a staff member a role (admins; never to oneself). Takes effect on their "
                                     "next request. A role that reads patient data waits for a compliance review.")
    async def role_assign(self, info: Info, staff_id: _STAFF_ID, role: _ROLE) -> Staff | None:
        return Staff.of(await staff_accounts.assign_role(info.context, uuid_of(staff_id, "staffId"), str(role.value)))

    @strawberry.mutation(description="Take a role away (admins). Takes effect on their next request.")
    async def role_revoke(self, info: Info, staff_id: _STAFF_ID, role: _ROLE) -> Staff | None:
        return Staff.of(await staff_accounts.revoke_role(info.context, uuid_of(staff_id, "staffId"), str(role.value)))
