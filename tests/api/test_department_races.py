"""Two departments under one name at once (found in review: a double tap on "create", or two admins): both passed
the check for the name, the second hit the unique (institution, name) key and answered INTERNAL_SERVER_ERROR. The
key's refusal answers as the check does: BAD_USER_INPUT at name, nothing written, one department and one record."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from models import Department
from tests.conftest import BACKEND
from tests.factories import Response, Tenant
from tests.locks import another_transaction, until_waiting
from tests.patients import events_since, mark

CREATE = "mutation($n: String!) { departmentCreate(name: $n) { id name } }"
RENAME = "mutation($id: ID!, $n: String!) { departmentUpdate(id: $id, name: $n) { id name } }"
TAKEN = ("BAD_USER_INPUT", "name", "name: a department with this name exists.")


def outcome(reply: Response, root: str) -> tuple[str, ...]:
    if not reply.errors:
        return ("ok", reply.data[root]["name"])
    [error] = reply.errors
    return error["extensions"]["code"], error["extensions"].get("field"), error["message"]


async def named(tenant: Tenant, name: str) -> int:
    return await Department.filter(institution_id=tenant.id, name=name).count()


async def test_the_same_department_created_three_times_at_once_is_created_once(tenant: Tenant) -> None:
    seq = await mark(tenant.id)

    replies = await asyncio.gather(*(tenant.call("admin", CREATE, n="Orthodontics") for _ in range(3)))

    assert sorted(outcome(r, "departmentCreate") for r in replies) == sorted([("ok", "Orthodontics"), TAKEN, TAKEN])
    assert await named(tenant, "Orthodontics") == 1
    assert [(e.action, e.resource_type) for e in await events_since(tenant.id, seq, outcome="allowed")] == [
        ("create", "department")]


async def test_two_departments_renamed_to_one_name_at_once_take_it_once(tenant: Tenant) -> None:
    seq = await mark(tenant.id)

    replies = await asyncio.gather(
        *(tenant.call("admin", RENAME, id=str(tenant.departments[key].id), n="Implants") for key in "AB"),
        tenant.call("admin", CREATE, n="Implants"))

    outcomes = [outcome(r, root) for r, root in zip(replies, ("departmentUpdate",) * 2 + ("departmentCreate",),
                                                    strict=True)]
    assert sorted(outcomes) == sorted([("ok", "Implants"), TAKEN, TAKEN])
    assert await named(tenant, "Implants") == 1
    assert len(await events_since(tenant.id, seq, outcome="allowed")) == 1


@pytest.mark.skipif(BACKEND == "sqlite", reason="concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("root", ["departmentCreate", "departmentUpdate"])
async def test_a_name_taken_by_a_writer_not_yet_committed_is_refused_as_taken(tenant: Tenant,
                                                                              root: str) -> None:
    """Another admin's department of that name written but not committed: the check does not see it, the write
    waits on the unique key and is refused once the other commits (every run; the gathers above only some)."""
    async with another_transaction() as other:
        await other.execute("INSERT INTO department (id, institution_id, name, version, created_at) "
                            "VALUES ($1, $2, 'Geriatrics', 1, now())", uuid.uuid4(), tenant.id)
        seq = await mark(tenant.id)
        writing = asyncio.create_task(
            tenant.call("admin", CREATE, n="Geriatrics") if root == "departmentCreate"
            else tenant.call("admin", RENAME, id=str(tenant.departments["B"].id), n="Geriatrics"))
        await until_waiting([writing])
    reply = await asyncio.wait_for(writing, 10)

    assert outcome(reply, root) == TAKEN
    assert await named(tenant, "Geriatrics") == 1
    assert await named(tenant, "Department B") == 1
    assert await events_since(tenant.id, seq, outcome="allowed") == []
