"""Departments of an institution."""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput
from core.validation import clean_text
from models import Department
from resolvers import access, versioning
from resolvers.context import Context


async def all_(ctx: Context) -> list[Department]:
    """Every department of the caller's institution (a short list: not paged)."""
    await access.authorize(ctx, "department", "read", action=Action.READ, resource_type="department")
    return await Department.filter(institution_id=ctx.institution_id).order_by("name").limit(500)


async def update(ctx: Context, department_id: uuid.UUID | None, name: str, version: int | None = None) -> Department:
    """Rename a department over the version the caller read (stale: CONFLICT, nothing written)."""
    decision = await access.authorize(ctx, "department", "update", action=Action.UPDATE, resource_type="department",
                                      resource_id=department_id)
    row = None if department_id is None else await Department.get_or_none(id=department_id,
                                                                           institution_id=ctx.institution_id)
    if row is None:
        raise await access.not_found(ctx, Action.UPDATE, "department", department_id)
    name = clean_text(name, field="name", max_length=100, min_length=1)
    if await Department.filter(institution_id=ctx.institution_id, name=name).exclude(id=row.id).exists():
        raise BadUserInput("name: a department with this name exists.", field="name")
    async with in_transaction():
        await versioning.update_versioned(row, version, "department", name=name)
        await writer.append([access.write_record(ctx, Action.UPDATE, "department", row.id,
                                                 fields=frozenset({"name"}), decision=decision)])
    return row


async def create(ctx: Context, name: str) -> Department:
    decision = await access.authorize(ctx, "department", "create", action=Action.CREATE, resource_type="department")
    name = clean_text(name, field="name", max_length=100, min_length=1)
    if await Department.exists(institution_id=ctx.institution_id, name=name):
        raise BadUserInput("name: a department with this name exists.", field="name")
    async with in_transaction():
        department = await Department.create(institution_id=ctx.institution_id, name=name)
        await writer.append([access.write_record(ctx, Action.CREATE, "department", department.id,
                                                 fields=frozenset({"name"}), decision=decision)])
    return department
