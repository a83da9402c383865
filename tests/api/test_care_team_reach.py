"""Whose care team a caller sets (found in review): an admin any file's of the institution, a department head the
files of their own departments only. careTeamAssign and careTeamUnassign put a department head's file of another
department was answered and written (the head put a nurse on any file's team, which opened the file to her, and
learnt which ids were files of the institution); it now answers as a random id: NOT_FOUND at patientId in the same
words and as many statements, nothing written, one refusal naming the id and no patient."""

from __future__ import annotations

import uuid

import pytest

from models import CareTeamMember
from tests.conftest import SqlCounter
from tests.factories import Response, Tenant, make_patient
from tests.patients import denials_since, mark, without_place

ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"
UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"
READ = "query($id: ID!) { patient(id: $id) { id } }"


async def team_of(patient: uuid.UUID) -> list[uuid.UUID]:
    return sorted(await CareTeamMember.filter(patient_id=patient).values_list("staff_id", flat=True))


async def probe(tenant: Tenant, sql_counter: SqlCounter, query: str, patient: uuid.UUID) -> tuple[Response, int]:
    sql_counter.statements.clear()
    reply = await tenant.call("department_head", query, pid=str(patient), sid=str(tenant.staff_ids["nurse"]))
    return reply, len(sql_counter.statements)


@pytest.mark.parametrize("query", [ASSIGN, UNASSIGN])
async def test_a_department_heads_file_of_another_department_answers_as_a_random_id(
        tenant: Tenant, sql_counter: SqlCounter, query: str) -> None:
    in_b = await make_patient(tenant, "front_desk", departmentId=str(tenant.departments["B"].id))
    if query == UNASSIGN:  # someone to take off: put there by an admin, who keeps every department's teams
        assert (await tenant.call("admin", ASSIGN, pid=str(in_b), sid=str(tenant.staff_ids["nurse"]))).errors == []
    team, seq = await team_of(in_b), await mark(tenant.id)
    random_id = uuid.uuid4()

    hidden, hidden_statements = await probe(tenant, sql_counter, query, in_b)
    missing, missing_statements = await probe(tenant, sql_counter, query, random_id)

    assert hidden.codes == ["NOT_FOUND"] and hidden.errors[0]["extensions"]["field"] == "patientId"
    assert without_place(hidden) == without_place(missing)
    assert hidden_statements == missing_statements
    assert await team_of(in_b) == team  # nothing written
    assert await denials_since(tenant.id, seq) == [("create" if query == ASSIGN else "delete", "patient", "not_found",
                                                    pid, None) for pid in (in_b, random_id)]
    # the nurse still does not reach the file
    assert (await tenant.call("nurse", READ, id=str(in_b))).codes == (["NOT_FOUND"] if query == ASSIGN else [])


@pytest.mark.parametrize("role", ["department_head", "admin"])
async def test_a_file_of_the_department_heads_own_department_takes_and_loses_members(tenant: Tenant,
                                                                                      role: str) -> None:
    in_a = await make_patient(tenant, "front_desk")
    team = {"pid": str(in_a), "sid": str(tenant.staff_ids["doctor"])}

    assert (await tenant.call(role, ASSIGN, **team)).data == {"careTeamAssign": True}
    assert await team_of(in_a) == [tenant.staff_ids["doctor"]]
    assert (await tenant.call(role, UNASSIGN, **team)).data == {"careTeamUnassign": True}
    assert await team_of(in_a) == []
