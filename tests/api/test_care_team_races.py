"""A care team's place asked for or taken off twice at once (found in review: a double tap, or two colleagues).
careTeamAssign: both found no place and wrote one, the second hit the unique (patient, staff) key and answered
INTERNAL_SERVER_ERROR; the place is looked for again once the file is locked: one place, recorded once.
careTeamUnassign: both deleted and both recorded a deletion; only the one that deleted the row records it."""

from __future__ import annotations

import asyncio

import pytest

from models import CareTeamMember
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient
from tests.locks import another_transaction, until_waiting
from tests.patients import events_since, mark

ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"


async def test_the_same_place_asked_twice_at_once_is_written_once(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "front_desk")
    doctor, seq = tenant.staff_ids["doctor"], await mark(tenant.id)

    replies = await asyncio.gather(*(tenant.call(role, ASSIGN, pid=str(pid), sid=str(doctor))
                                     for role in ("admin", "department_head", "admin")))

    assert [(reply.data, reply.errors) for reply in replies] == [({"careTeamAssign": True}, [])] * 3
    assert await CareTeamMember.filter(patient_id=pid).values_list("staff_id", flat=True) == [doctor]
    assert [(e.action, e.resource_type, e.outcome) for e in await events_since(tenant.id, seq)] == [
        ("create", "care_team", "allowed")]


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_two_assignments_waiting_for_the_file_write_the_place_once(tenant: Tenant) -> None:
    """Both past the first look while another writer holds the file, so both wait for its lock: the second finds
    the first's place there and writes nothing (before: INTERNAL_SERVER_ERROR on the unique key)."""
    pid = await make_patient(tenant, "front_desk")
    doctor, seq = tenant.staff_ids["doctor"], await mark(tenant.id)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM patient WHERE id = $1 FOR NO KEY UPDATE", pid)
        writing = [asyncio.create_task(tenant.call(role, ASSIGN, pid=str(pid), sid=str(doctor)))
                   for role in ("admin", "department_head")]
        await until_waiting(writing, sessions=len(writing))
    replies = await asyncio.wait_for(asyncio.gather(*writing), 10)

    assert [(reply.data, reply.errors) for reply in replies] == [({"careTeamAssign": True}, [])] * 2
    assert await CareTeamMember.filter(patient_id=pid).values_list("staff_id", flat=True) == [doctor]
    assert [(e.action, e.resource_type, e.outcome) for e in await events_since(tenant.id, seq)] == [
        ("create", "care_team", "allowed")]


UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"


async def test_the_same_place_taken_off_twice_at_once_is_recorded_once(tenant: Tenant) -> None:
    """Both found the place and deleted it, and the trail held two deletions of one place (found in review): only
    the request that deleted the row records it; both answer true."""
    pid = await make_patient(tenant, "front_desk")
    doctor = tenant.staff_ids["doctor"]
    assert (await tenant.call("admin", ASSIGN, pid=str(pid), sid=str(doctor))).errors == []
    seq = await mark(tenant.id)

    replies = await asyncio.gather(*(tenant.call(role, UNASSIGN, pid=str(pid), sid=str(doctor))
                                     for role in ("admin", "department_head", "admin")))

    assert [(reply.data, reply.errors) for reply in replies] == [({"careTeamUnassign": True}, [])] * 3
    assert await CareTeamMember.filter(patient_id=pid).count() == 0
    assert [(e.action, e.resource_type, e.outcome) for e in await events_since(tenant.id, seq)] == [
        ("delete", "care_team", "allowed")]


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_two_removals_waiting_for_the_place_record_one(tenant: Tenant) -> None:
    """Both found the place while another transaction held its row, so both delete once it lets go: one deletes it,
    the other nothing, and only the first is on the trail (before: two deletions recorded, every run)."""
    pid = await make_patient(tenant, "front_desk")
    doctor = tenant.staff_ids["doctor"]
    assert (await tenant.call("admin", ASSIGN, pid=str(pid), sid=str(doctor))).errors == []
    seq = await mark(tenant.id)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM care_team_member WHERE patient_id = $1 FOR UPDATE", pid)
        removing = [asyncio.create_task(tenant.call(role, UNASSIGN, pid=str(pid), sid=str(doctor)))
                    for role in ("admin", "department_head")]
        await until_waiting(removing, sessions=len(removing))
    replies = await asyncio.wait_for(asyncio.gather(*removing), 10)

    assert [(reply.data, reply.errors) for reply in replies] == [({"careTeamUnassign": True}, [])] * 2
    assert await CareTeamMember.filter(patient_id=pid).count() == 0
    assert [(e.action, e.resource_type, e.outcome) for e in await events_since(tenant.id, seq)] == [
        ("delete", "care_team", "allowed")]
