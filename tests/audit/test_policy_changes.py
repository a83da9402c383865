"""A change of the enforced policy is an event on every institution's audit trail."""

from __future__ import annotations

from pathlib import Path

from policies.guard import MODEL_PATH, POLICY_PATH, Guard
from resolvers import policy
from resolvers.context import Services
from tests.factories import Tenant


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
