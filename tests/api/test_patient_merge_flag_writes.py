"""A flag changed while its file is merged, between the flag's read and the write (found in review): flagUpdate held
no file and recorded the change on the file it had read, the merged one, though the merge had moved the flag to the
survivor, and did not ask whether the caller reaches it there. Now it does as a follow-up task's writes do
(test_patient_merge_follow_up_writes): recorded on the survivor's trail if the caller still reaches the flag there;
beyond it NOT_FOUND, nothing written, the refusal on the trail. The merge made right before the write's transaction
opens, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from models import Flag
from resolvers import flag as flags
from tests.api.test_flags import SET_STATUS, raise_flag
from tests.api.test_patient_merge_follow_up_writes import two_files
from tests.api.test_patient_merge_messages import merged_before_transaction
from tests.factories import Tenant
from tests.patients import denials_since, mark


async def test_a_flag_changed_as_its_file_is_merged_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate = await two_files(tenant)
    flag = await raise_flag(tenant, duplicate, "FALL_RISK")
    merged_before_transaction(monkeypatch, flags, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", SET_STATUS, id=flag["id"], status="INACTIVE")

    assert reply.errors == [], reply.errors
    assert (await Flag.get(id=flag["id"])).status == "inactive"
    written = [(e.resource_type, e.patient_id) for e in await tenant.audit_events(outcome="allowed")
               if e.seq > before and e.action == "update" and e.resource_type == "flag"]
    assert written == [("flag", survivor)]


async def test_a_flag_changed_as_its_file_is_merged_out_of_reach_is_missing(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The denied twin: the survivor is in department B, which the nurse of A does not reach."""
    survivor, duplicate = await two_files(tenant, survivor_department="B")
    flag = await raise_flag(tenant, duplicate, "FALL_RISK")
    merged_before_transaction(monkeypatch, flags, tenant, survivor, duplicate)
    before = await mark(tenant.id)

    reply = await tenant.call("nurse", SET_STATUS, id=flag["id"], status="INACTIVE")

    assert reply.codes == ["NOT_FOUND"], reply.errors
    row = await Flag.get(id=flag["id"])
    assert (row.patient_id, row.status, row.version) == (survivor, "active", 1)
    assert [d[:4] for d in await denials_since(tenant.id, before)] == [
        ("update", "flag", "not_found", uuid.UUID(flag["id"]))]
