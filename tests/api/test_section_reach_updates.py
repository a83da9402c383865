"""Changes to existing visits, visit codes, alerts and care plans go where a role of the caller allowed to change them
reaches the file, not wherever a role that reads them does (test_section_reach.py: reads and new records). Found in
review: a support agent, who reads every visit and alert of the institution, who is also a nurse of department B (who
changes them) moved, edited and closed the visits and alerts of any department's patient. Refused now: FORBIDDEN,
the refusal recorded as an update, nothing written; on her own department's records each change goes through.

Visit codes and care plans also need the right to write the clinical class of the file, which no role reading them
farther than it changes them holds under the shipped policy; an institution's policy can give one (here the support
agents read care plans and write the clinical class), and then the same holds. A record found on a file its changing
role reaches, whose file is merged meanwhile into one it does not, is refused the same way on the survivor."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import CarePlan, Flag, FollowUpTask, Visit, VisitCode
from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import care_plan as care_plans
from resolvers import flag as flags
from resolvers import institution as institutions
from resolvers import visit as visits
from resolvers.context import Services
from tests.api.test_care_plans import MOVE as PLAN_MOVE
from tests.api.test_care_plans import a_plan
from tests.api.test_flags import SET_STATUS, raise_flag
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.api.test_patient_merge_versioned_writes import SET_CODE_STATUS, merged_once_found
from tests.api.test_visits import ADD_CODE, CATALOGUE, MOVE, UPDATE, a_visit
from tests.factories import PASSWORD, Tenant, login, make_patient
from tests.patients import events_since, mark

WHO = "agent_nurse"


async def agent_and_nurse_of_b(tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """A support agent (every visit and alert of the institution, read only) who is also a nurse of department B."""
    email = f"agent-nurse.{uuid.uuid4().hex[:8]}@careloop.test"
    staff = await institutions.create_account(services, tenant.institution, email=email, name="agent and nurse",
                                              password=PASSWORD, roles=["support_agent", "nurse"],
                                              departments=[tenant.departments["B"]])
    tenant.staff_ids[WHO], tenant.tokens[WHO] = staff.id, await login(client, email)


def agents_write_clinical_notes(tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    """This institution's policy lets its support agents read care plans and read and write the clinical class."""
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + "".join(
        f"p, support_agent, {tenant.id}, {obj}, {act}, allow\n"
        for obj, act in (("care_plan", "read"), ("patient.clinical", "read"), ("patient.clinical", "update"))))
    monkeypatch.setattr(services, "guard", Guard(MODEL_PATH, policy))


@dataclass(frozen=True)
class Records:
    """A patient of a department and one record of each kind on their file."""

    patient: uuid.UUID
    visit: str
    code: str  # a pending procedure on a visit of its own
    flag: str
    plan: str


async def records(tenant: Tenant, department: str, role: str) -> Records:
    """``role`` (a nurse of ``department``) records them."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments[department].id))
    in_department = {"departmentId": str(tenant.departments[department].id)}
    visit = (await a_visit(tenant, pid, role=role, **in_department))["id"]
    coded = (await a_visit(tenant, pid, role=role, **in_department))["id"]
    code = await tenant.call(role, ADD_CODE, id=coded, input={"kind": "PROCEDURE", "code": "IMPLANT",
                                                              "status": "PENDING"})
    assert code.errors == [], code.errors
    flag, plan = await raise_flag(tenant, pid, "FALL_RISK", role), await a_plan(tenant, pid, role=role)
    return Records(pid, visit, code.data["visitCodeAdd"]["id"], flag["id"], plan["id"])


Change = Callable[[Tenant, Records], Awaitable[Any]]


@dataclass(frozen=True)
class Mutation:
    change: Change
    resource_type: str  # as the refusal is recorded
    clinical: bool  # needs the clinical class of the file: shown with the institution's policy above
    named: Callable[[Records], str]  # the record the refusal names


MUTATIONS: dict[str, Mutation] = {
    "visitUpdate": Mutation(lambda t, r: t.call(WHO, UPDATE, id=r.visit, input={"revisitOn": "2027-03-01"}),
                            "visit", clinical=False, named=lambda r: r.visit),
    "visitTransition": Mutation(lambda t, r: t.call(WHO, MOVE, id=r.visit, to="ARRIVED"), "visit", clinical=False,
                                named=lambda r: r.visit),
    "flagUpdate": Mutation(lambda t, r: t.call(WHO, SET_STATUS, id=r.flag, status="INACTIVE"), "flag",
                           clinical=False, named=lambda r: r.flag),
    "visitCodeAdd": Mutation(lambda t, r: t.call(WHO, ADD_CODE, id=r.visit, input={"kind": "CONDITION",
                                                                                   "code": "K08.1"}),
                             "visit", clinical=True, named=lambda r: r.visit),
    "visitCodeSetStatus": Mutation(lambda t, r: t.call(WHO, SET_CODE_STATUS, id=r.code, status="DONE"),
                                   "visit_code", clinical=True, named=lambda r: r.code),
    "carePlanTransition": Mutation(lambda t, r: t.call(WHO, PLAN_MOVE, id=r.plan, to="REVOKED", version=1),
                                   "care_plan", clinical=True, named=lambda r: r.plan),
}


async def stored(tenant: Tenant) -> dict[str, Any]:
    """The records a refused change must leave as they were, but for the file each is on (a merge's own move)."""
    where = {"institution_id": tenant.id}
    return {name: await model.filter(**where).order_by("id").values(*columns) for name, model, columns in (
        ("visits", Visit, ("id", "status", "version", "revisit_on", "arrived_at")),
        ("codes", VisitCode, ("id", "status", "version")),
        ("flags", Flag, ("id", "status", "version")),
        ("plans", CarePlan, ("id", "status", "version")),
        ("tasks", FollowUpTask, ("id", "status", "version")))}


async def refusals_since(tenant: Tenant, seq: int) -> list[tuple[str, str, str, str, uuid.UUID | None, str]]:
    return [(e.action, e.resource_type, str(e.resource_id), e.reason, e.patient_id, e.field_classes)
            for e in await events_since(tenant.id, seq, outcome="denied")]


RECORD_TYPES = ("visit", "visit_code", "flag", "care_plan", "follow_up_task")


async def changes_since(tenant: Tenant, seq: int) -> list[tuple[str, uuid.UUID | None]]:
    """The records written since the mark (the merge's own records of the files left out), and on which file."""
    return [(e.resource_type, e.patient_id) for e in await events_since(tenant.id, seq, outcome="allowed")
            if e.action in ("create", "update") and e.resource_type in RECORD_TYPES]


@pytest.fixture
async def agent_nurse(tenant: Tenant, services: Services, client: httpx.AsyncClient) -> Tenant:
    await agent_and_nurse_of_b(tenant, services, client)
    assert (await tenant.call("admin", CATALOGUE, code="IMPLANT")).errors == []
    return tenant


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_a_record_is_changed_only_where_a_role_that_changes_it_reaches(
        agent_nurse: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    tenant, mutation = agent_nurse, MUTATIONS[name]
    if mutation.clinical:
        agents_write_clinical_notes(tenant, services, monkeypatch, tmp_path)
    of_a, of_b = await records(tenant, "A", "nurse"), await records(tenant, "B", WHO)
    as_found, seq = await stored(tenant), await mark(tenant.id)

    refused = await mutation.change(tenant, of_a)

    assert refused.codes == ["FORBIDDEN"], refused.errors
    assert await stored(tenant) == as_found
    assert await changes_since(tenant, seq) == []
    assert await refusals_since(tenant, seq) == [
        ("update", mutation.resource_type, mutation.named(of_a), "forbidden", of_a.patient, "")]

    changed = await mutation.change(tenant, of_b)  # the twin: her department's record

    assert changed.errors == [], changed.errors
    assert await stored(tenant) != as_found
    assert {file for _, file in await changes_since(tenant, seq)} == {of_b.patient}


# A change found on the duplicate (department B, her nurse's reach) and written once the merge moved it to the survivor
MERGED: dict[str, Callable[[pytest.MonkeyPatch, Tenant, uuid.UUID, uuid.UUID], None]] = {
    "visitUpdate": lambda m, t, s, d: merged_once_found(t, m, visits, "find", s, d),
    "visitTransition": lambda m, t, s, d: merged_once_found(t, m, visits, "find", s, d),
    "visitCodeSetStatus": lambda m, t, s, d: merged_once_found(t, m, visits, "_check_text_rights", s, d),
    "flagUpdate": lambda m, t, s, d: merged_before_transaction(m, flags, t, s, d),
    "carePlanTransition": lambda m, t, s, d: merged_before_transaction(m, care_plans, t, s, d),
}


@pytest.mark.parametrize("survivor_in", ["A", "B"], ids=["survivor_out_of_her_reach", "survivor_in_her_reach"])
@pytest.mark.parametrize("name", sorted(MERGED))
async def test_a_record_moved_by_a_merge_is_changed_only_where_a_role_that_changes_it_reaches(
        agent_nurse: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str,
        survivor_in: str) -> None:
    """Found again on the survivor, or followed there, the record is checked there: in department A (read as a
    support agent) FORBIDDEN, recorded on the survivor's trail, nothing written; in B it goes through."""
    tenant, mutation = agent_nurse, MUTATIONS[name]
    agents_write_clinical_notes(tenant, services, monkeypatch, tmp_path)  # the survivor's plan and codes are read
    survivor = await make_patient(tenant, departmentId=str(tenant.departments[survivor_in].id))
    on_duplicate = await records(tenant, "B", WHO)
    MERGED[name](monkeypatch, tenant, survivor, on_duplicate.patient)
    as_found, seq = await stored(tenant), await mark(tenant.id)

    reply = await mutation.change(tenant, on_duplicate)

    if survivor_in == "B":
        assert reply.errors == [], reply.errors
        assert await stored(tenant) != as_found
        assert {file for _, file in await changes_since(tenant, seq)} == {survivor}
        return
    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert await stored(tenant) == as_found
    assert await changes_since(tenant, seq) == []
    assert await refusals_since(tenant, seq) == [
        ("update", mutation.resource_type, mutation.named(on_duplicate), "forbidden", survivor, "")]
