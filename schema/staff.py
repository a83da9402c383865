"""Staff accounts, roles and the signed-in principal."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment

from resolvers import staff as staff_accounts
from resolvers.staff import DirectoryEntry, DirectoryFilter, StaffView
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    After,
    First,
    Info,
    OrderDirection,
    PageInfo,
    Version,
    asks_total,
    provided,
    uuid_of,
)
from schema.department import Department

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
                                                                                 "finds a patient by identity only "
                                                                                 "(name, birth date, ID number), no "
                                                                                 "other patient data.")
    FINANCE = strawberry.enum_value("finance", description="Contract and finance staff: prepares, prices and "
                                    "manages service contracts and reads their commercial terms; no clinical data.")
    ADMIN = strawberry.enum_value("admin", description="Institution admin: staff accounts, roles, departments, "
                                                       "partners, SLA calendars; no patient data.")


# Said by every input that names a clinician (a visit's, a schedule's, a care-team place): who may be one
# (staff.check_clinicians)
CLINICIAN_RULE = ("An active staff member of the institution holding a clinical role (NURSE, DOCTOR, DEPARTMENT_HEAD: "
                  "the roles that read patients' clinical data); anyone else is BAD_USER_INPUT, reason "
                  "not_a_clinician, and an id of no active account here reason invalid.")


def roles_of(values: list[str] | frozenset[str]) -> list[Role]:
    """Role names as the enum, sorted; a name outside the vocabulary (none is stored today) is left out."""
    known = Role._value2member_map_
    return [cast(Role, known[value]) for value in sorted(values) if value in known]


@strawberry.type(description="A staff member as seen on a patient's care team: no contact details.")
class StaffSummary:
    id: strawberry.ID = strawberry.field(description="The staff member's id.")
    name: str = strawberry.field(description="Their name as their account gives it (1 to 100 characters).")

    @classmethod
    def of(cls, row: StaffRow) -> StaffSummary:
        return cls(id=strawberry.ID(str(row.id)), name=row.name)


@strawberry.type(description="A staff account, as its institution's admins see it.")
class Staff:
    id: strawberry.ID = strawberry.field(description="The staff member's id.")
    email: str = strawberry.field(description="The sign-in e-mail, lowercased.")
    name: str = strawberry.field(description="Their name, 1 to 100 characters.")
    active: bool = strawberry.field(description="False: deactivated, cannot sign in.")
    roles: list[Role] = strawberry.field(description="The roles they hold now (roleAssign, roleRevoke; a grant of a "
                                                     "role that reads patient data is reviewed by a compliance "
                                                     "officer).")
    department_ids: list[strawberry.ID] = strawberry.field(description="The departments they belong to: at most "
                                                                       "50.")
    locked_until: datetime | None = strawberry.field(description="Signing in is refused until then after repeated "
                                                                 "failures; null: not locked.")
    totp_enabled: bool = strawberry.field(description="Whether they sign in with a second factor (TOTP); "
                                                      "`staffTotpDisable` turns it off.")
    version: int = strawberry.field(description="Pass back as `version` when you change it.")

    @classmethod
    def of(cls, view: StaffView) -> Staff:
        row = view.row
        return cls(
            id=strawberry.ID(str(row.id)), email=row.email, name=row.name, active=row.is_active,
            roles=[Role(r) for r in view.roles], department_ids=[strawberry.ID(str(d)) for d in view.department_ids],
            locked_until=row.locked_until, totp_enabled=row.totp_enabled_at is not None, version=row.version,
        )


@strawberry.input(description="A new staff account. The password is set by the admin and changed by its owner.")
class StaffCreateInput:
    email: str = strawberry.field(description="The sign-in e-mail, unique across the deployment.")
    name: str = strawberry.field(description="Their name as colleagues see it, 1 to 100 characters.")
    password: str = strawberry.field(description="12 to 256 characters.")
    roles: list[Role] = strawberry.field(default_factory=list, description="Their roles (a role that reads patient "
                                                                           "data waits for a compliance review).")
    department_ids: list[strawberry.ID] = strawberry.field(default_factory=list,
                                                           description="The departments they belong to: at most 50 "
                                                                       "(more is BAD_USER_INPUT, reason too_many).")


@strawberry.input(description="Changes to a staff account; fields left out stay as they are.")
class StaffUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="Their new name, 1 to 100 "
                                                                                 "characters; left out: unchanged "
                                                                                 "(null is refused).")
    active: bool | None = strawberry.field(default=strawberry.UNSET,
                                           description="false deactivates the account and revokes its tokens.")
    department_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                                  description="Their departments (replaces the "
                                                                              "list): at most 50 (more is "
                                                                              "BAD_USER_INPUT, reason too_many).")
    revoke_sessions: bool | None = strawberry.field(default=strawberry.UNSET,
                                                    description="true signs the account out everywhere.")


@strawberry.type(description="A colleague in the staff directory: name, roles and departments, what handover, "
                             "assignment, care teams and role reviews need; never contact details.")
class StaffMember:
    entry: strawberry.Private[DirectoryEntry]

    @strawberry.field(description="The staff member's id (pass it as staffId, assigneeId, toStaffId...).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.entry.row.id))

    @strawberry.field(description="Their name, as the directory sorts it.")
    def name(self) -> str:
        return self.entry.row.name

    @strawberry.field(description="The roles they hold, to choose whom to hand a ticket or a task.")
    def roles(self) -> list[Role]:
        return [Role(r) for r in self.entry.roles]

    @strawberry.field(description="The departments they belong to, by name: at most 50 (an account's cap).")
    def departments(self) -> list[Department]:
        return [Department.of(d) for d in self.entry.departments]

    @strawberry.field(description="The full account (e-mail, active, lock state, version): for whoever may read staff "
                                  "accounts (admins). Asking for it without that right refuses the whole list "
                                  "(FORBIDDEN).")
    def account(self) -> Staff:
        return Staff.of(self.entry.view)


@strawberry.type(description="One colleague of a page, with its cursor.")
class StaffMemberEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: StaffMember = strawberry.field(description="The colleague.")


@strawberry.type(description="A page of the staff directory.")
class StaffMemberConnection:
    edges: list[StaffMemberEdge] = strawberry.field(description=EDGES)
    nodes: list[StaffMember] = strawberry.field(description=NODES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")


@strawberry.input(description="Which colleagues to list; the conditions add up.")
class StaffDirectoryFilter:
    department_id: strawberry.ID | None = strawberry.field(default=None, description="Members of this department.")
    role: Role | None = strawberry.field(default=None, description="Holders of this role.")
    name: str | None = strawberry.field(default=None, description="Part of the name, any case, 1-100 characters.")
    active: bool | None = strawberry.field(
        default=None, description="true: active accounts; false: deactivated ones (admins only, FORBIDDEN "
                                  "otherwise). Null: every account for admins, the active ones for everyone else.")


@strawberry.enum(description="What the staff directory can be sorted by.")
class StaffOrderField(Enum):
    NAME = strawberry.enum_value("name", description="By name (the database's collation), then by id.")


@strawberry.input(description="The order of the staff directory.")
class StaffOrder:
    field: StaffOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


def _asks_node_field(info: Info, name: str) -> bool:
    """Whether the query asks for this field of the connection's nodes (under nodes or edges.node)."""
    def flat(selections: list[Any]) -> list[Any]:
        out: list[Any] = []
        for selection in selections:
            out.extend(flat(selection.selections) if isinstance(selection, FragmentSpread | InlineFragment)
                       else [selection])
        return out

    for connection in info.selected_fields:
        for child in flat(connection.selections):
            nodes = [child] if child.name == "nodes" else [n for n in flat(child.selections) if n.name == "node"] \
                if child.name == "edges" else []
            if any(f.name == name for node in nodes for f in flat(node.selections)):
                return True
    return False


_STAFF_ID = Annotated[strawberry.ID, strawberry.argument(description="The staff member's id.")]
_ROLE = Annotated[Role, strawberry.argument(description="The role to grant or take away (see Role for what each "
                                                       "may do).")]


@strawberry.type
class StaffQuery:
    @strawberry.field(description="One staff account of your institution (admins).")
    async def staff(self, info: Info, id: _STAFF_ID) -> Staff | None:
        return Staff.of(await staff_accounts.get(info.context, uuid_of(id)))

    @strawberry.field(description="Your institution's staff, by name: who can be handed a ticket, assigned a task or "
                                  "put on a care team. Every staff role but finance reads names, roles and "
                                  "departments; admins also the accounts.")
    async def staff_directory(
        self, info: Info,
        filter: Annotated[StaffDirectoryFilter | None, strawberry.argument(
            description="Which colleagues; null: all (active ones unless you are an admin).")] = None,
        order_by: Annotated[StaffOrder | None, strawberry.argument(
            description="The order; null: by name, A to Z. A cursor is valid only in the order it came from.")] = None,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
    ) -> StaffMemberConnection:
        f = filter or StaffDirectoryFilter()
        found = DirectoryFilter(department_id=uuid_of(f.department_id, "filter.departmentId"),
                                role=None if f.role is None else str(f.role.value), name=f.name, active=f.active)
        result = await staff_accounts.directory(
            info.context, found, descending=order_by is not None and order_by.direction is OrderDirection.DESC,
            first=first, after=after, accounts=_asks_node_field(info, "account"), count=asks_total(info))
        edges = [StaffMemberEdge(cursor=c, node=StaffMember(entry=e)) for c, e in result.page.items]
        return StaffMemberConnection(edges=edges, nodes=[e.node for e in edges], page_info=PageInfo.of(result.page),
                                     total_count=result.total or 0)


@strawberry.type
class StaffMutation:
    @strawberry.mutation(description="Create a staff account (admins).")
    async def staff_create(self, info: Info, input: Annotated[StaffCreateInput, strawberry.argument(
            description="The account.")]) -> Staff | None:
        return Staff.of(await staff_accounts.create(info.context, provided(input)))

    @strawberry.mutation(description="Change, deactivate or sign out a staff account (admins; nobody adds a "
                                     "department to themselves). Pass the version you read: a stale one answers "
                                     "CONFLICT.")
    async def staff_update(
        self, info: Info, id: _STAFF_ID,
        input: Annotated[StaffUpdateInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> Staff | None:
        data = provided(input)
        if "active" in data:
            data["is_active"] = data.pop("active")
        return Staff.of(await staff_accounts.update(info.context, uuid_of(id), data, version))

    @strawberry.mutation(description="Give a staff member a role (admins; never to oneself). Takes effect on their "
                                     "next request. A role that reads patient data waits for a compliance review.")
    async def role_assign(self, info: Info, staff_id: _STAFF_ID, role: _ROLE) -> Staff | None:
        return Staff.of(await staff_accounts.assign_role(info.context, uuid_of(staff_id, "staffId"), str(role.value)))

    @strawberry.mutation(description="Take a role away (admins). Takes effect on their next request.")
    async def role_revoke(self, info: Info, staff_id: _STAFF_ID, role: _ROLE) -> Staff | None:
        return Staff.of(await staff_accounts.revoke_role(info.context, uuid_of(staff_id, "staffId"), str(role.value)))
