"""Institutions and their first accounts: set up from the CLI, by the system, not through the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core import statements
from core.errors import BadUserInput
from core.principal import ROLES
from core.validation import clean_text, normalize_email
from models import Department, DepartmentMembership, Institution, RoleAssignment, Staff
from models.institution import INSTITUTION_KINDS
from resolvers.context import Context, Services
from resolvers.staff import check_password

SYSTEM = Actor("system")


def check_new(name: str, kind: str, time_zone: str) -> str:
    """A new institution's name (cleaned), kind and time zone, checked without the database: ``careloop init``
    refuses a mistake here before it migrates anything."""
    name = clean_text(name, field="name", max_length=200, min_length=1)
    if kind not in INSTITUTION_KINDS:
        raise BadUserInput(f"kind: must be one of {', '.join(INSTITUTION_KINDS)}.", field="kind")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadUserInput("timeZone: not a known time zone.", field="timeZone") from None
    return name


def check_new_account(email: str, password: str) -> str:
    """A new account's email (normalised as stored) and password, checked without the database."""
    email = normalize_email(email).lower()
    check_password(password)
    return email


async def create(services: Services, name: str, kind: str, time_zone: str = "Asia/Shanghai") -> Institution:
    name = check_new(name, kind, time_zone)
    async with in_transaction():
        institution = await Institution.create(name=name, kind=kind, time_zone=time_zone)
        await services.keyring.create(institution.id)
        await writer.start_chain(institution.id)
        await writer.append([AuditRecord(institution.id, SYSTEM, Action.CREATE, "institution", Outcome.ALLOWED,
                                         resource_id=institution.id)])
    return institution


async def rotate_key(services: Services, institution_id: uuid.UUID) -> int:
    """A new data key version for the institution, recorded on its audit trail; the new version seals
    new data once every worker knows it, and older versions keep opening what they sealed."""
    if not await Institution.exists(id=institution_id):
        raise BadUserInput("institution: not found.", field="institution")
    try:
        async with in_transaction():
            row = await services.keyring.rotate(institution_id)
            await writer.append([AuditRecord(institution_id, SYSTEM, Action.KEY_ROTATION, "institution_key",
                                             Outcome.ALLOWED, resource_id=row.id,
                                             fields_read=frozenset({"version"}))])
    except IntegrityError:  # another rotation took the same version number a moment ago
        raise BadUserInput("institution: a rotation is running; try again.", field="institution") from None
    return row.version


async def zone(institution_id: uuid.UUID) -> ZoneInfo:
    """The institution's time zone (days, months and working hours are local to it). Read on every request that
    counts days, so its SQL is built once (``core.statements``)."""
    rows = await statements.select(Institution, "institution.zone", _zone_query, institution_id=institution_id)
    if not rows:
        raise DoesNotExist(Institution)
    return ZoneInfo(rows[0].time_zone)


def _zone_query(institution_id: uuid.UUID) -> QuerySet[Institution]:
    return Institution.filter(id=institution_id).only("id", "time_zone")


async def zone_of(ctx: Context) -> ZoneInfo:
    """The caller's institution's time zone: as the sign-in read it (``Principal.time_zone``; the principal cache
    forgets everyone when it changes, migration 0029), else read now."""
    known = ctx.require_principal().time_zone
    return ZoneInfo(known) if known is not None else await zone(ctx.institution_id)


async def local_today_of(ctx: Context, now: datetime | None = None) -> date:
    """The caller's institution's date at ``now`` (the present by default): ``local_today`` by ``zone_of``."""
    return (now or datetime.now(UTC)).astimezone(await zone_of(ctx)).date()


async def local_today(institution_id: uuid.UUID, now: datetime | None = None) -> date:
    """The institution's date at ``now`` (the present by default): "today", "due", "overdue", a birth date in
    the future are all by its calendar, not the server's."""
    return (now or datetime.now(UTC)).astimezone(await zone(institution_id)).date()


async def create_department(institution: Institution, name: str) -> Department:
    async with in_transaction():
        department = await Department.create(institution_id=institution.id, name=name)
        await writer.append([AuditRecord(institution.id, SYSTEM, Action.CREATE, "department", Outcome.ALLOWED,
                                         resource_id=department.id)])
    return department


async def create_account(
    services: Services,
    institution: Institution,
    *,
    email: str,
    name: str,
    password: str,
    roles: Iterable[str],
    departments: Iterable[Department] = (),
    is_demo: bool = False,
) -> Staff:
    email = normalize_email(email).lower()
    roles = sorted(set(roles))
    if not set(roles) <= set(ROLES):
        raise BadUserInput("roles: unknown role.", field="roles")
    password_hash = await services.passwords.hash(check_password(password))
    async with in_transaction():
        staff = await Staff.create(institution_id=institution.id, email=email, name=name,
                                   password_hash=password_hash, is_demo=is_demo)
        for role in roles:
            await RoleAssignment.create(institution_id=institution.id, staff_id=staff.id, role=role)
        for department in departments:
            await DepartmentMembership.create(institution_id=institution.id, staff_id=staff.id,
                                              department_id=department.id)
        await writer.append([AuditRecord(institution.id, SYSTEM, Action.CREATE, "staff", Outcome.ALLOWED,
                                         resource_id=staff.id, fields_read=frozenset({"roles"}))])
    return staff
