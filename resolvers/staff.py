"""Staff accounts, their roles and their departments: the admin's work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import EMAIL_UNAVAILABLE, LAST_ADMIN, SELF_DEACTIVATION, Action
from core.errors import BadUserInput
from core.passwords import password_problem
from core.principal import ROLES
from core.validation import Problems, clean_text, normalize_email
from models import Department, DepartmentMembership, Institution, RoleAssignment, Session, Staff
from policies.guard import Decision
from resolvers import access, emergency_access, pagination, role_grant, versioning
from resolvers import account as accounts
from resolvers import session as sessions
from resolvers.context import Context

# An account's departments, at most (found in review: any number, and every request of the account loads them all into
# its principal). A department is a ward or a service line: a head nurse covering several reaches a handful.
MAX_DEPARTMENTS = 50
# extensions.reason: a staff member named as a clinician (of a visit, a schedule) holds no clinical role
NOT_A_CLINICIAN = "not_a_clinician"


@dataclass(frozen=True)
class StaffView:
    row: Staff
    roles: list[str]
    department_ids: list[uuid.UUID]


async def get(ctx: Context, staff_id: uuid.UUID | None) -> StaffView:
    await access.authorize(ctx, "staff", "read", action=Action.READ, resource_type="staff", resource_id=staff_id)
    return await _find(ctx, staff_id, Action.READ)


async def create(ctx: Context, data: dict[str, Any]) -> StaffView:
    decision = await access.authorize(ctx, "staff", "create", action=Action.CREATE, resource_type="staff")
    problems = Problems()  # every problem of the account's shape at once, before the departments are looked up
    with problems.collect("email"):
        email = normalize_email(data["email"]).lower()
    with problems.collect("name"):
        name = clean_text(data["name"], field="name", max_length=100, min_length=1)
    with problems.collect("password"):
        password = check_password(data["password"])
    with problems.collect("roles"):
        roles = _roles(data.get("roles") or [])
    problems.check()
    department_ids = await _departments(ctx, data.get("department_ids") or [])
    # Logins are by e-mail, so an address is unique across the deployment. Whether it is taken in this
    # institution or in another, the answer is the same and does not say which: an admin learns no more
    # than that this address cannot be used, and the attempt is on the trail (probing shows there).
    if await Staff.exists(email=email):
        raise await _email_unavailable(ctx)
    password_hash = await ctx.services.passwords.hash(password)
    try:
        async with in_transaction():
            staff = await Staff.create(institution_id=ctx.institution_id, email=email, name=name,
                                       password_hash=password_hash)
            await _set_roles(ctx, staff.id, roles)
            await _set_departments(ctx, staff.id, department_ids)
            await writer.append([access.write_record(ctx, Action.CREATE, "staff", staff.id,
                                                     fields=frozenset({"email", "name", "roles", "departments"}),
                                                     decision=decision)])
            await role_grant.record_grants(ctx, staff.id, roles, decision)
    except IntegrityError:  # a concurrent request took the address a moment ago
        if not await Staff.exists(email=email):
            raise
        raise await _email_unavailable(ctx) from None
    return await _find(ctx, staff.id, Action.READ)


async def _email_unavailable(ctx: Context) -> BadUserInput:
    await access.deny(ctx, Action.CREATE, "staff", reason=EMAIL_UNAVAILABLE)
    return BadUserInput("email: this address cannot be used for a new account.", field="email")


async def update(ctx: Context, staff_id: uuid.UUID | None, data: dict[str, Any],
                 version: int | None = None) -> StaffView:
    """Change an account over the version the caller read (stale: CONFLICT, nothing written)."""
    decision = await access.authorize(ctx, "staff", "update", action=Action.UPDATE, resource_type="staff",
                                      resource_id=staff_id)
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    if staff_id is not None and staff_id == ctx.actor.id and data.get("is_active") is False:
        await access.deny(ctx, Action.UPDATE, "staff", staff_id, reason=SELF_DEACTIVATION)  # _update_shape refuses it
    changes = _update_shape(ctx, staff_id, data)
    view = await _find(ctx, staff_id, Action.UPDATE)
    department_ids = await _departments(ctx, data["department_ids"] or []) if "department_ids" in data else None
    if view.row.id == ctx.actor.id and department_ids is not None and set(department_ids) - set(view.department_ids):
        # A department is reach in waiting: it widens what any clinical role reaches, now or once granted.
        raise await role_grant.refuse_self_grant(ctx, Action.UPDATE, "staff", view.row.id, field="departmentIds",
                                                 what="a department")
    revoke = bool(data.get("revoke_sessions")) or changes.get("is_active") is False
    async with access.refusals_recorded(ctx), in_transaction():
        if changes.get("is_active") is False and "admin" in view.roles:
            await _keep_an_admin(ctx, view.row.id, "active", "stays active", Action.UPDATE, "staff")
        await versioning.update_versioned(view.row, version, "staff member", **changes)  # departments too
        if department_ids is not None:
            await DepartmentMembership.filter(staff_id=view.row.id).delete()
            await _set_departments(ctx, view.row.id, department_ids)
        if revoke:
            await Session.filter(staff_id=view.row.id, revoked_at=None).update(revoked_at=datetime.now(UTC))
        if changes.get("is_active") is False:
            await emergency_access.end_open(ctx, view.row.id, decision)
        # a deactivation voids the account's open reset codes: reactivated, it must not bring one back
        voided = changes.get("is_active") is False and await accounts.void_reset_codes(
            sessions.STAFF_ACCOUNTS, view.row.id, datetime.now(UTC))
        fields = set(changes) | ({"departments"} if department_ids is not None else set()) | (
            {"sessions"} if revoke else set()) | ({"password_resets"} if voided else set())
        await writer.append([access.write_record(ctx, Action.UPDATE, "staff", view.row.id,
                                                 fields=frozenset(fields), decision=decision)])
    return await _find(ctx, view.row.id, Action.READ)


def _update_shape(ctx: Context, staff_id: uuid.UUID | None, data: dict[str, Any]) -> dict[str, Any]:
    """The changed name and active flag, every problem of them at once (before the account is looked up)."""
    problems = Problems()
    changes: dict[str, Any] = {}
    if "name" in data:
        with problems.collect("name"):
            changes["name"] = clean_text(data["name"] or "", field="name", max_length=100, min_length=1)
    if "is_active" in data:
        if data["is_active"] is None:
            problems.add("active", "required", "must not be null.")
        elif staff_id == ctx.actor.id and not data["is_active"]:
            problems.add("active", "invalid", "you cannot deactivate your own account.")
        else:
            changes["is_active"] = data["is_active"]
    problems.check()
    return changes


async def assign_role(ctx: Context, staff_id: uuid.UUID | None, role: str) -> StaffView:
    decision = await access.authorize(ctx, "role", "create", action=Action.CREATE, resource_type="role",
                                      resource_id=staff_id)
    view = await _find(ctx, staff_id, Action.CREATE)
    (role,) = _roles([role])
    if view.row.id == ctx.actor.id:  # separation of duties: another admin grants it, or nobody does
        raise await role_grant.refuse_self_grant(ctx, Action.CREATE, "role", view.row.id, field="staffId",
                                                 what="a role")
    if role not in view.roles:
        try:
            async with in_transaction():
                await RoleAssignment.create(institution_id=ctx.institution_id, staff_id=view.row.id, role=role)
                await role_grant.record_grants(ctx, view.row.id, [role], decision)
                await _end_sessions_without_a_factor(ctx, view.row.id, role, decision)
        except IntegrityError:  # the same grant sent twice at once: it is held, recorded once (found in review)
            if not await RoleAssignment.exists(staff_id=view.row.id, role=role):
                raise
    return await _find(ctx, view.row.id, Action.READ)


async def _end_sessions_without_a_factor(ctx: Context, staff_id: uuid.UUID, role: str, decision: Decision) -> None:
    """Where the institution requires a second factor of roles that read clinical data, a grant of such a role to
    an account that has none ends its sessions (inside the grant's transaction), as switching the rule on does:
    they were opened without a code, and would read clinical data without one (found in review: the desk, given
    NURSE, read clinical data on its codeless session). The next sign-in asks for enrolment."""
    if not sessions.reads_clinical_data(ctx, ctx.institution_id, [role]):
        return
    await sessions.lock_accounts([staff_id])  # a sign-in opening a codeless session now: one waits for the other
    # one statement: the account's open sessions, where it has no factor and its institution requires one
    codeless = Staff.filter(id=staff_id, totp_enabled_at__isnull=True, institution__totp_required=True).values("id")
    if await Session.filter(staff_id__in=Subquery(codeless), revoked_at=None).update(revoked_at=datetime.now(UTC)):
        await writer.append([access.write_record(ctx, Action.UPDATE, "staff", staff_id, fields=frozenset({"sessions"}),
                                                 decision=decision)])


async def revoke_role(ctx: Context, staff_id: uuid.UUID | None, role: str) -> StaffView:
    decision = await access.authorize(ctx, "role", "delete", action=Action.DELETE, resource_type="role",
                                      resource_id=staff_id)
    view = await _find(ctx, staff_id, Action.DELETE)
    (role,) = _roles([role])
    if role in view.roles:
        async with access.refusals_recorded(ctx), in_transaction():
            if role == "admin":
                await _keep_an_admin(ctx, view.row.id, "role", "keeps the role", Action.DELETE, "role")
            await sessions.lock_accounts([view.row.id])  # a break-glass opening now: one waits for the other
            # Recorded only when it removed something: the same revocation sent twice is one (found in review).
            if await RoleAssignment.filter(staff_id=view.row.id, role=role).delete():
                await writer.append([access.write_record(ctx, Action.DELETE, "role", view.row.id,
                                                         fields=frozenset({role}), decision=decision)])
                held = await RoleAssignment.filter(staff_id=view.row.id).values_list("role", flat=True)
                if not emergency_access.may_break_glass(ctx, [str(held_role) for held_role in held]):
                    await emergency_access.end_open(ctx, view.row.id, decision)
    return await _find(ctx, view.row.id, Action.READ)


async def _keep_an_admin(ctx: Context, losing: uuid.UUID, field: str, what: str, action: Action,
                         resource_type: str) -> None:
    """Refuse to leave the institution without an active admin, counted under the institution's lock (inside the
    caller's transaction): two admins revoking or deactivating each other at once wait in turn, and the second
    finds itself the last (found in review: both won, leaving none). The refusal (``action`` on ``resource_type``,
    the account losing it, reason ``last_admin``) is recorded once the caller's transaction has rolled back
    (``access.refusals_recorded``): a refusal recorded inside it would be rolled back with it."""
    await Institution.filter(id=ctx.institution_id).select_for_update().only("id").first()
    others = await RoleAssignment.filter(institution_id=ctx.institution_id, role="admin", staff__is_active=True) \
        .exclude(staff_id=losing).count()
    if not others:
        raise access.Refusal(BadUserInput(f"{field}: the institution's last active admin {what}.", field=field),
                             action, resource_type, losing, reason=LAST_ADMIN)


# -- the directory: colleagues' names, roles and departments -----------------------------------------


@dataclass(frozen=True)
class DirectoryFilter:
    department_id: uuid.UUID | None = None
    role: str | None = None
    name: str | None = None
    active: bool | None = None  # null: admins see every account, other roles the active ones


@dataclass(frozen=True)
class DirectoryEntry:
    row: Staff
    roles: list[str]
    departments: list[Department]

    @property
    def view(self) -> StaffView:
        """The full account, for those who may read it (admins)."""
        return StaffView(self.row, self.roles, [d.id for d in self.departments])


@dataclass(frozen=True)
class Directory:
    page: pagination.Page[DirectoryEntry]
    total: int | None  # counted only when asked for


async def directory(ctx: Context, found: DirectoryFilter, *, descending: bool = False, first: int,
                    after: str | None, accounts: bool = False, count: bool = False) -> Directory:
    """The institution's staff by name: who may be handed a ticket, assigned a task or put on a care team.

    Every colleague role reads names, roles and departments; the account itself (e-mail, active, lock state)
    only whoever may read staff accounts (``accounts``: asked for). Others see active accounts only. A page
    costs the page, its roles and its departments (three statements), plus the cursor's row and the count
    when asked for, whatever its size.
    """
    await access.authorize(ctx, "staff.directory", "read", action=Action.READ, resource_type="staff")
    admin = ctx.decide("staff", "read").allowed
    if accounts or found.active is False:  # the account's state is the admin's to read
        await access.authorize(ctx, "staff", "read", action=Action.READ, resource_type="staff")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Staff.filter(institution_id=ctx.institution_id)
    active = found.active if admin else True
    if active is not None:
        query = query.filter(is_active=active)
    if found.name is not None:
        query = query.filter(name__icontains=clean_text(found.name, field="filter.name", max_length=100,
                                                        min_length=1))
    if found.role is not None:
        query = query.filter(id__in=Subquery(RoleAssignment.filter(
            institution_id=ctx.institution_id, role=found.role).values("staff_id")))
    if found.department_id is not None:
        query = query.filter(id__in=Subquery(DepartmentMembership.filter(
            institution_id=ctx.institution_id, department_id=found.department_id).values("staff_id")))
    total = await pagination.count_of(query, count)
    kind = f"staff.name.{'desc' if descending else 'asc'}"
    if after:
        query = query.filter(await _after_name(ctx, pagination.decode_uuid(kind, after), descending))
    order = ("-name", "-id") if descending else ("name", "id")
    rows = await query.order_by(*order).limit(first + 1)
    entries = await _entries(ctx, rows[:first])
    return Directory(pagination.page_of(entries, len(rows) > first, kind, lambda e: e.row.id), total)


async def _after_name(ctx: Context, staff_id: uuid.UUID, descending: bool) -> Q:
    """Where the page resumes: after the cursor's account in name order (its name as it is now)."""
    name = await Staff.filter(id=staff_id, institution_id=ctx.institution_id).values_list("name", flat=True)
    if not name:
        raise BadUserInput("after: not a valid cursor.", field="after")
    if descending:
        return Q(name__lt=name[0]) | (Q(name=name[0]) & Q(id__lt=staff_id))
    return Q(name__gt=name[0]) | (Q(name=name[0]) & Q(id__gt=staff_id))


async def _entries(ctx: Context, rows: list[Staff]) -> list[DirectoryEntry]:
    """The page's roles and departments, one statement each."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    roles: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for staff_id, role in await RoleAssignment.filter(staff_id__in=ids).order_by("role").values_list("staff_id",
                                                                                                      "role"):
        roles[staff_id].append(role)
    departments: dict[uuid.UUID, list[Department]] = {i: [] for i in ids}
    for membership in await DepartmentMembership.filter(
            institution_id=ctx.institution_id, staff_id__in=ids).select_related("department").order_by(
            "department__name"):
        departments[membership.staff_id].append(membership.department)
    return [DirectoryEntry(row, roles[row.id], departments[row.id]) for row in rows]


def clinical_roles(ctx: Context) -> frozenset[str]:
    """The staff roles that make a clinician: those the policy lets read a file's clinical class (nurse, doctor and
    department head in policy.csv; the same roles break the glass). Finance, admins, the front desk, support agents
    and compliance officers see no chart, so none of them is anyone's clinician (docs/care-journey.md)."""
    guard = ctx.services.guard
    return frozenset(role for role in ROLES if guard.role_allows(role, ctx.institution_id, "patient.clinical", "read"))


async def check_clinicians(ctx: Context, problems: Problems, named: Sequence[tuple[str, uuid.UUID]]) -> None:
    """Each staff member named, at its field, is an active clinician of the institution: all of them and their roles
    read in one statement. One that is no active account here is ``invalid`` (no such staff member), one holding no
    clinical role ``not_a_clinician`` (found in review: a finance clerk was taken as a visit's clinician and shown to
    the patient as theirs). Adds the problems; the caller checks."""
    if not named:
        return
    clinical = clinical_roles(ctx)
    rows = await Staff.filter(id__in=sorted({staff_id for _, staff_id in named}), institution_id=ctx.institution_id,
                              is_active=True).values_list("id", "role_assignments__role")  # LEFT JOIN: role-less too
    found = {uuid.UUID(str(staff_id)) for staff_id, _ in rows}
    clinicians = {uuid.UUID(str(staff_id)) for staff_id, role in rows if role in clinical}
    for field, staff_id in named:
        if staff_id not in found:
            problems.add(field, "invalid", "no such staff member.")
        elif staff_id not in clinicians:
            problems.add(field, NOT_A_CLINICIAN, "not a clinician: name a staff member holding a clinical role "
                                                 "(one that reads patients' clinical data).")


def check_password(password: str) -> str:
    """A new account's password, under the same rules as a changed one (``core.passwords``)."""
    problem = password_problem(password)
    if problem is not None:
        raise BadUserInput(f"password: {problem}.", field="password")
    return password


async def _find(ctx: Context, staff_id: uuid.UUID | None, action: Action) -> StaffView:
    row = await access.find_in_institution(ctx, Staff, staff_id, action=action, resource_type="staff")
    roles = await RoleAssignment.filter(staff_id=row.id).order_by("role").values_list("role", flat=True)
    departments = await DepartmentMembership.filter(staff_id=row.id).values_list("department_id", flat=True)
    return StaffView(row, [str(r) for r in roles], cast(list[uuid.UUID], departments))


def _roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise BadUserInput(f"roles: must be among {', '.join(ROLES)}.", field="roles")
    return sorted(set(roles))


async def _departments(ctx: Context, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(ids) > MAX_DEPARTMENTS:  # before any lookup: nothing read or written for an input refused by its length
        raise BadUserInput(f"departmentIds: at most {MAX_DEPARTMENTS}.", field="departmentIds", reason="too_many")
    wanted = set(ids)
    found = await Department.filter(institution_id=ctx.institution_id, id__in=list(wanted)).count() if wanted else 0
    if found != len(wanted):
        raise BadUserInput("departmentIds: no such department.", field="departmentIds")
    return sorted(wanted)


async def _set_roles(ctx: Context, staff_id: uuid.UUID, roles: list[str]) -> None:
    for role in roles:
        await RoleAssignment.create(institution_id=ctx.institution_id, staff_id=staff_id, role=role)


async def _set_departments(ctx: Context, staff_id: uuid.UUID, department_ids: list[uuid.UUID]) -> None:
    for department_id in department_ids:
        await DepartmentMembership.create(institution_id=ctx.institution_id, staff_id=staff_id,
                                          department_id=department_id)
