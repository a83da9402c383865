"""A file's lifecycle against the writes that add to it: archived or deceased, nothing more is added (docs/patients.md,
docs/care-journey.md), and the patient's copy of their data (docs/partners-and-patients.md)."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from models import CarePlan, Flag, FollowUpTask, Visit
from resolvers import access
from tests.factories import Tenant, make_patient
from tests.locks import held, pause_before_entering

ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id status } }"
DECEASED = "mutation($id: ID!) { patientUpdate(id: $id, input: {status: DECEASED}) { id status } }"
TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"


def _writes(today: date) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each write that adds to a file: who makes it, the mutation, its input besides the patient."""
    return {
        "followUpTaskCreate": ("nurse", TASK, {"dueOn": (today + timedelta(days=2)).isoformat()}),
        "carePlanCreate": ("doctor", PLAN, {"title": "After the implant", "startsOn": today.isoformat(),
                                            "activities": [{"kind": "CALL", "afterDays": 7}]}),
        "flagCreate": ("nurse", FLAG, {"kind": "FALL_RISK"}),
        "visitCreate": ("nurse", VISIT, {"kind": "OUTPATIENT"}),
    }


async def _added(pid: Any) -> tuple[int, int, int, int]:
    return (await FollowUpTask.filter(patient_id=pid).count(), await CarePlan.filter(patient_id=pid).count(),
            await Flag.filter(patient_id=pid).count(), await Visit.filter(patient_id=pid).count())


# -- nothing is added to a file archived or deceased while the write was under way ---------------------------------


@pytest.mark.parametrize("write", ["followUpTaskCreate", "carePlanCreate", "flagCreate", "visitCreate"])
@pytest.mark.parametrize("end", ["archived", "deceased"])
async def test_a_file_closed_as_a_write_adds_to_it_takes_nothing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, write: str, end: str) -> None:
    """The write read the file active, then the file was archived (or the death recorded), cancelling what the file
    had, before the write's transaction locked it. Found in review: the write went on, and the archived file kept an
    open call (a plan and its calls, an alert, a visit) that the archive never cancelled and nothing ever would."""
    pid = await make_patient(tenant)
    role, mutation, fields = _writes(date.today())[write]
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call(role, mutation, input={"patientId": str(pid), **fields}), pause) as writing:
        closed = await tenant.call("front_desk" if end == "archived" else "nurse",
                                   ARCHIVE if end == "archived" else DECEASED, id=str(pid))
        assert closed.errors == [], closed.errors
    reply = await writing

    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await _added(pid) == (0, 0, 0, 0)
    created = await tenant.audit_events(patient_id=pid, action="create", outcome="allowed")
    assert [e.resource_type for e in created] == ["patient"]  # the registration only


@pytest.mark.parametrize("write", ["followUpTaskCreate", "carePlanCreate", "flagCreate", "visitCreate"])
async def test_an_active_file_takes_the_write(tenant: Tenant, write: str) -> None:
    """The allowed twin: the same write on an active file."""
    pid = await make_patient(tenant)
    role, mutation, fields = _writes(date.today())[write]
    reply = await tenant.call(role, mutation, input={"patientId": str(pid), **fields})
    assert reply.errors == [], reply.errors
    assert sum(await _added(pid)) >= 1

