"""Writers that name the file of a row they read earlier (a contract's, a visit's) rather than a patient they
found: a merge between that read and the write moved the row to the survivor, and the write added to the merged
file (found in review). They lock the file as every write to it does and refuse a merged one (CONFLICT
``merged``, recorded). The race made sequential as test_patient_merge does it; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from audit.events import Action
from models import Contract, FollowUpTask, Patient, SurveyInvitation, Visit, VisitCode
from resolvers import contract as contracts
from resolvers import visit as visits
from resolvers.context import Services
from tests import surveys
from tests.api.test_contract_renewal import RENEW
from tests.api.test_patient_merge import merge, merged_refusals
from tests.api.test_survey_invitations import VISIT_CREATE_PLANNED, VISIT_MOVE
from tests.api.test_visits import ADD_CODE
from tests.contracts import active_contract, create, draft_input, item_input, make_item, today
from tests.factories import Tenant, make_patient


def merged_around(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, tenant: Tenant, survivor: uuid.UUID,
                  duplicate: uuid.UUID, *, after: bool = False, action: Action | None = None) -> None:
    """The file is merged once, right before (``after``: right after) ``module.name`` runs (called with ``action``,
    when given): after the write read what names the file, before its transaction opens."""
    original = getattr(module, name)

    async def with_merge(*args: Any, **kwargs: Any) -> Any:
        if action is not None and action not in args and kwargs.get("action") is not action:
            return await original(*args, **kwargs)
        monkeypatch.setattr(module, name, original)
        result = await original(*args, **kwargs) if after else None
        assert (await merge(tenant, survivor, duplicate)).errors == []
        return result if after else await original(*args, **kwargs)

    monkeypatch.setattr(module, name, with_merge)


def refused_as_merged(reply: Any, field: str) -> None:
    assert reply.codes == ["CONFLICT"], reply.errors or "answered as done"
    assert reply.errors[0]["extensions"]["reason"] == "merged"
    assert reply.errors[0]["extensions"]["field"] == field


@pytest.mark.parametrize("how", ["contractCreate", "contractRenew"])
async def test_a_contract_drafted_while_the_file_is_merged_is_not_left_on_the_merged_file(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """contractCreate checks the patient it read is active, contractRenew copies the renewed contract's patient:
    a merge in between put the new draft on the merged file, out of the survivor's contracts."""
    item = await make_item(tenant)
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    renewed = await active_contract(tenant, services, patient_id=duplicate, items=[item_input(item)]) \
        if how == "contractRenew" else None
    merged_around(monkeypatch, contracts, "_insert_contract", tenant, survivor, duplicate)

    if renewed is None:
        reply = await create(tenant, "front_desk", draft_input(duplicate, [item_input(item)]))
    else:
        reply = await tenant.call("admin", RENEW, id=renewed["id"],
                                  input={"endOn": (today() + timedelta(days=366 + 180)).isoformat()})

    assert (await Patient.get(id=duplicate)).status == "merged"
    on_merged = await Contract.filter(patient_id=duplicate).count()
    assert on_merged == 0, f"a contract was drafted on the merged file ({reply.errors or 'no error answered'})"
    refused_as_merged(reply, "input.patientId" if renewed is None else "contractId")
    assert await merged_refusals(tenant, duplicate) == 1


async def test_a_visit_finished_while_the_file_is_merged_does_not_lose_its_invitation(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """visitTransition to FINISHED creates the survey invitation and the follow-up tasks for the patient of the
    visit as it read it: after a merge in between (the visit moved to the survivor) they were made for the merged
    file, which skips them (not active) or, the merge running at the same moment on PostgreSQL, holds them; the
    visit was answered FINISHED and the survivor was never invited nor called back. Now it is refused, nothing
    written, and finished again it is the survivor's."""
    await surveys.trigger(tenant, await surveys.questionnaire(tenant))
    survivor, duplicate = await surveys.reachable(tenant), await surveys.reachable(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE_PLANNED, input={
        "patientId": str(duplicate), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "status": "ARRIVED"})
    visit_id = reply.data["visitCreate"]["id"]
    assert (await tenant.call("nurse", VISIT_MOVE, id=visit_id, to="IN_PROGRESS")).errors == []
    merged_around(monkeypatch, visits, "find", tenant, survivor, duplicate, after=True, action=Action.UPDATE)

    reply = await tenant.call("nurse", VISIT_MOVE, id=visit_id, to="FINISHED")

    assert (await Patient.get(id=duplicate)).status == "merged"
    invited = await SurveyInvitation.filter(institution_id=tenant.id).values_list("patient_id", flat=True)
    assert reply.errors or invited == [survivor], f"finished, and the invitation went to {invited}, not the survivor"
    refused_as_merged(reply, "id")
    assert await merged_refusals(tenant, duplicate) == 1
    assert (await Visit.get(id=visit_id)).status == "in_progress"  # nothing of the transition was written
    assert invited == [] and await FollowUpTask.filter(patient_id=duplicate).count() == 0
    finished = await tenant.call("nurse", VISIT_MOVE, id=visit_id, to="FINISHED")  # again: on the survivor
    assert finished.errors == [], finished.errors
    assert await SurveyInvitation.filter(patient_id=survivor, visit_id=visit_id).count() == 1


async def test_a_code_added_while_the_file_is_merged_is_not_left_on_the_merged_file(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """visitCodeAdd names the file of the visit it read: a merge in between (the visit moved to the survivor)
    left the code on the merged file, out of the survivor's conditions and procedures."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE_PLANNED, input={
        "patientId": str(duplicate), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "status": "ARRIVED"})
    visit_id = reply.data["visitCreate"]["id"]
    merged_around(monkeypatch, visits, "find", tenant, survivor, duplicate, after=True, action=Action.UPDATE)

    reply = await tenant.call("doctor", ADD_CODE, id=visit_id, input={"kind": "CONDITION", "code": "K05.3"})

    assert (await Patient.get(id=duplicate)).status == "merged"
    assert await VisitCode.filter(patient_id=duplicate).count() == 0, reply.errors or "answered as done"
    refused_as_merged(reply, "visitId")
    assert await merged_refusals(tenant, duplicate) == 1
    again = await tenant.call("doctor", ADD_CODE, id=visit_id, input={"kind": "CONDITION", "code": "K05.3"})
    assert again.errors == [] and await VisitCode.filter(patient_id=survivor).count() == 1


async def test_a_contract_for_a_file_merged_before_is_refused_as_merged(tenant: Tenant) -> None:
    """contractCreate on a file merged before the request answered BAD_USER_INPUT patient_not_active, unlike every
    other write to a merged file (CONFLICT merged, recorded, which tells the desk to use the survivor)."""
    item = await make_item(tenant)
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    assert (await merge(tenant, survivor, duplicate)).errors == []

    reply = await create(tenant, "front_desk", draft_input(duplicate, [item_input(item)]))

    refused_as_merged(reply, "input.patientId")
    assert await Contract.filter(patient_id=duplicate).count() == 0
    assert await merged_refusals(tenant, duplicate) == 1
