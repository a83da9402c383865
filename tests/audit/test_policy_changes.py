"""A change of the enforced policy is an event on every institution's audit trail."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import policy
from resolvers.context import Services
from tests.api.test_list_indexes import plan
from tests.audit.test_chain import connection
from tests.audit.test_verify_truncation import head_rewind_allowed
from tests.conftest import SqlCounter
from tests.factories import Tenant, gql, login, make_tenant

pytestmark = pytest.mark.whole_database  # a change is recorded on every institution's trail


async def policy_events(tenant: Tenant) -> list[str]:
    return [e.fields_read for e in await tenant.audit_events(resource_type="policy")]


async def test_policy_changes_are_recorded_once(tenant: Tenant, services: Services, tmp_path: Path) -> None:
    await policy.record_change(services)
    first = await policy_events(tenant)
    assert first == [f"sha256:{services.guard.digest}"]
    assert await policy.record_change(services) == 0  # unchanged: nothing more anywhere
    assert await policy_events(tenant) == first

    changed = tmp_path / "policy.csv"
    changed.write_text(POLICY_PATH.read_text() + "p, front_desk, *, ticket_report, read, allow\n")
    other = Services(settings=services.settings, master_key=services.master_key, keyring=services.keyring,
                     guard=Guard(MODEL_PATH, changed), passwords=services.passwords, storage=services.storage)
    assert other.guard.digest != services.guard.digest
    await policy.record_change(other)
    events = await tenant.audit_events(resource_type="policy")
    assert [e.fields_read for e in events] == [*first, f"sha256:{other.guard.digest}"]
    assert events[-1].actor_kind == "system" and events[-1].reason == "policy_loaded"


SECURITY = "mutation { institutionSecurityUpdate(totpRequired: true) { totpRequired } }"
ME = "{ me { id } }"


def loaded(services: Services, policy_file: Path) -> Services:
    """The services of a process started with this policy file."""
    return Services(settings=services.settings, master_key=services.master_key, keyring=services.keyring,
                    guard=Guard(MODEL_PATH, policy_file), passwords=services.passwords, storage=services.storage)


async def test_a_policy_that_lets_a_role_read_clinical_data_ends_its_codeless_sessions(
        tenant: Tenant, other_tenant: Tenant, services: Services, tmp_path: Path) -> None:
    """Found in review: a grant of a role that reads clinical data ends the grantee's sessions opened without a code
    where the institution requires one, but a policy change that made a role read clinical data left its holders'
    codeless sessions running. At start-up with a changed policy they end, each on the trail; an institution that
    requires no factor, a role that still reads no clinical data and an unchanged policy end nothing."""
    await policy.record_change(services)
    assert (await tenant.call("admin", SECURITY)).errors == []
    assert (await tenant.call("support_agent", ME)).errors == []  # reads no clinical data: no code asked for
    changed = tmp_path / "policy.csv"
    changed.write_text(POLICY_PATH.read_text() + "p, support_agent, *, patient.clinical, read, allow\n")
    started = loaded(services, changed)
    seq = (await tenant.audit_events())[-1].seq

    assert await policy.record_change(started) > 0

    assert (await tenant.call("support_agent", ME)).codes == ["UNAUTHENTICATED"]
    assert (await tenant.call("front_desk", ME)).errors == []
    assert (await tenant.call("admin", ME)).errors == []
    assert (await other_tenant.call("support_agent", ME)).errors == []  # requires no second factor
    events = [e for e in await tenant.audit_events() if e.seq > seq]
    assert [(e.actor_kind, e.action, e.resource_type, e.resource_id, e.fields_read, e.reason) for e in events
            if e.reason != "used_after_end"] == [
        ("system", "update", "policy", None, f"sha256:{started.guard.digest}", "policy_loaded"),
        ("system", "update", "staff", tenant.staff_ids["support_agent"], "sessions", "policy_loaded")]
    # the ended session's token, tried above, is on the trail once (docs/security.md)
    assert [e.actor_id for e in events if e.reason == "used_after_end"] == [tenant.staff_ids["support_agent"]]
    assert [e.resource_type for e in await other_tenant.audit_events() if e.actor_kind == "system"][-1] == "policy"

    again = await login(tenant.client, tenant.emails["support_agent"])  # a process still on the old policy
    seq = (await tenant.audit_events())[-1].seq
    assert await policy.record_change(started) == 0  # the same policy started again: nothing ends
    assert (await gql(tenant.client, ME, token=again)).errors == []
    assert [e for e in await tenant.audit_events() if e.seq > seq] == []


async def test_a_damaged_chain_does_not_keep_the_policy_from_the_other_institutions(
        tenant: Tenant, other_tenant: Tenant, services: Services, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Found in review: an institution whose chain head was deleted (by someone with the owner's rights) refused the
    start-up's policy event, and the service did not start for anyone. The event goes to the others, the damaged
    chain is named in the log by its institution and the error's kind, and its trail takes nothing."""
    await policy.record_change(services)
    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{tenant.id}'")
    damaged = await tenant.audit_count()
    changed = tmp_path / "policy.csv"
    changed.write_text(POLICY_PATH.read_text() + "p, front_desk, *, ticket_report, read, allow\n")
    started = loaded(services, changed)

    with caplog.at_level(logging.ERROR, logger="resolvers.policy"):
        assert await policy.record_change(started) > 0

    assert (await policy_events(other_tenant))[-1] == f"sha256:{started.guard.digest}"
    assert await tenant.audit_count() == damaged
    # (the shared database may hold other tests' damaged chains: each is a line of its own)
    [logged] = [m for r in caplog.records if r.name == "resolvers.policy" and str(tenant.id) in (m := r.getMessage())]
    assert "ChainHeadMissing" in logged and "Traceback" not in logged and not caplog.records[0].exc_info


async def test_a_start_with_the_same_policy_reads_the_trails_in_a_fixed_number_of_statements(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, sql_counter: SqlCounter) -> None:
    """Found in review: each worker's start read every institution's last policy event with two statements of its
    own (seconds with thousands of institutions). The statements of a start with the policy already recorded do not
    grow with the institutions, and none walks a trail."""
    await policy.record_change(services)
    sql_counter.statements.clear()
    assert await policy.record_change(services) == 0
    before = list(sql_counter.statements)

    await make_tenant(client, services, name="Third Clinic")
    await make_tenant(client, services, name="Fourth Clinic")
    await policy.record_change(services)  # the two new trails take the policy event
    sql_counter.statements.clear()
    assert await policy.record_change(services) == 0

    assert len(sql_counter.statements) == len(before) <= 3


async def test_the_last_recorded_policy_is_each_institutions_newest(
        tenant: Tenant, other_tenant: Tenant, services: Services, tmp_path: Path) -> None:
    """One statement reads every institution's newest policy event, not an older one nor another institution's."""
    await policy.record_change(services)
    changed = tmp_path / "policy.csv"
    changed.write_text(POLICY_PATH.read_text() + "p, front_desk, *, ticket_report, read, allow\n")
    started = loaded(services, changed)
    await policy.record_change(started)
    await tenant.call("admin", ME)  # later events that are not policy events
    last = await policy.last_recorded()
    assert last[tenant.id] == last[other_tenant.id] == f"sha256:{started.guard.digest}"
    assert (await policy_events(tenant))[-1] == last[tenant.id]


async def test_the_last_recorded_policies_are_read_from_the_policy_index(tenant: Tenant, services: Services) -> None:
    """The statement reads the policy events from their partial index, not every institution's trail."""
    await policy.record_change(services)
    assert "audit_event_policy" in await plan(policy.LAST_RECORDED, [])
