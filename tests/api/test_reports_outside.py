"""The reporting queries probed from outside the institution's staff: a partner's token (every scope) and a patient
signed in to the portal are refused each report, with the refusal on the trail and nothing of the figures answered
(found sound in review: no fix needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import Tenant
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import open_account

QUERIES: dict[str, str] = {
    "visitReport": "query($dep: ID!) { visitReport(month: \"2026-11\", departmentId: $dep) { patientsSeen } }",
    "ticketReport": "query($dep: ID!) { ticketReport(month: \"2026-11\", departmentId: $dep) { tickets } }",
    "complaintPareto": "query($dep: ID) { complaintPareto(from: \"2026-11-01\", to: \"2026-11-30\", "
                       "departmentId: $dep) { cause } }",
    "contractReport": "query($dep: ID) { contractReport(from: \"2026-11\", to: \"2026-11\", departmentId: $dep) "
                      "{ months { active } } }",
    "accessAnomalies": "query($from: DateTime!, $to: DateTime!) { accessAnomalies(from: $from, to: $to) "
                       "{ staffId } }",
}


def _variables(tenant: Tenant, name: str) -> dict[str, Any]:
    if name == "accessAnomalies":
        now = datetime.now(UTC)
        return {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
    return {"dep": str(tenant.departments["A"].id)}


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_a_partner_and_a_patient_are_refused_every_report_on_the_trail(tenant: Tenant, name: str) -> None:
    query = QUERIES[name]
    partnership = await make_partnership(tenant, ALL_SCOPES)
    patient = await open_account(tenant)
    for call in (lambda: partnership.call(query, **_variables(tenant, name)),
                 lambda: patient.call(query, **_variables(tenant, name))):
        events = await tenant.audit_count()
        reply = await call()
        assert reply.codes == ["FORBIDDEN"], (name, reply.errors)
        assert reply.data is None or all(v is None for v in reply.data.values()), reply.data
        assert await tenant.audit_count() == events + 1, name
