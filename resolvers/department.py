"""Departments of an institution."""

from __future__ import annotations

import uuid

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput
from core.validation import clean_text
from models import Department
from resolvers import access, pagination, versioning
from resolvers.context import Context

LEGACY_LIMIT = 500  # the unpaged ``departments`` list (deprecated) stops here
CURSOR = "department.name"


async def all_(ctx: Context) -> list[Department]:
    """The caller's institution's departments by name, at most LEGACY_LIMIT (the deprecated unpaged list)."""
    await access.authorize(ctx, "department", "read", action=Action.READ, resource_type="department")
    return await Department.filter(institution_id=ctx.institution_id).order_by("name").limit(LEGACY_LIMIT)


async def page(ctx: Context, *, first: int, after: str | None, count: bool = False) -> pagination.Page[Department]:
    """The caller's institution's departments by name, a page at a time: one statement, and the cursor's row
    after a cursor, whatever the page's size. A cursor holds the department's id (a name may be longer than a
    cursor may be) and resumes after its current name, as the staff directory's does."""
    await access.authorize(ctx, "department", "read", action=Action.READ, resource_type="department")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Department.filter(institution_id=ctx.institution_id)
    total = await pagination.count_of(query, count)
    if after:  # "" is no cursor: the first page, as null (every list alike)
        query = query.filter(await _after_name(ctx, pagination.decode_uuid(CURSOR, after)))
    rows = await query.order_by("name", "id").limit(first + 1)
    return pagination.page_of(rows[:first], len(rows) > first, CURSOR, lambda row: row.id, total)


async def _after_name(ctx: Context, department_id: uuid.UUID) -> Q:
    name = await Department.filter(id=department_id, institution_id=ctx.institution_id).values_list("name",
                                                                                                   flat=True)
    if not name:
        raise BadUserInput("after: not a valid cursor.", field="after")
    return Q(name__gt=name[0]) | (Q(name=name[0]) & Q(id__gt=department_id))


async def update(ctx: Context, department_id: uuid.UUID | None, name: str, version: int | None = None) -> Department:
    """Rename a department over the version the caller read (stale: CONFLICT, nothing written)."""
    decision = await access.authorize(ctx, "department", "update", action=Action.UPDATE, resource_type="department",
                                      resource_id=department_id)
    row = await access.find_in_institution(ctx, Department, department_id, action=Action.UPDATE,
                                           resource_type="department")
    name = clean_text(name, field="name", max_length=100, min_length=1)
    if await Department.filter(institution_id=ctx.institution_id, name=name).exclude(id=row.id).exists():
        raise _taken()
    try:
        async with in_transaction():
            await versioning.update_versioned(row, version, "department", name=name)
            await writer.append([access.write_record(ctx, Action.UPDATE, "department", row.id,
                                                     fields=frozenset({"name"}), decision=decision)])
    except IntegrityError:  # another department took the name a moment ago
        raise _taken() from None
    return row


async def create(ctx: Context, name: str) -> Department:
    decision = await access.authorize(ctx, "department", "create", action=Action.CREATE, resource_type="department")
    name = clean_text(name, field="name", max_length=100, min_length=1)
    if await Department.exists(institution_id=ctx.institution_id, name=name):
        raise _taken()
    try:
        async with in_transaction():
            department = await Department.create(institution_id=ctx.institution_id, name=name)
            await writer.append([access.write_record(ctx, Action.CREATE, "department", department.id,
                                                     fields=frozenset({"name"}), decision=decision)])
    except IntegrityError:  # created concurrently under the same name (found in review: INTERNAL_SERVER_ERROR)
        raise _taken() from None
    return department


def _taken() -> BadUserInput:
    """The name is another department's: as the check before the write answers, and the unique key after it."""
    return BadUserInput("name: a department with this name exists.", field="name")
