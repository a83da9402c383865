"""A record of the institution found by id (resolvers.access.find_in_institution): another institution's record and
a random id answer alike, NOT_FOUND at the argument that named it, nothing written, and the attempt on the trail
as one refusal naming the record and no patient."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.factories import Tenant
from tests.patients import denials_since, mark, stored, without_place


@dataclass(frozen=True)
class Lookup:
    name: str
    role: str
    query: str
    field: str  # where the refusal points (extensions.field)
    audited: tuple[str, str]  # the refusal's (action, resource_type)
    theirs: Callable[[Tenant], uuid.UUID] | None = None  # a record of the other institution, when one is at hand


def _their_department(tenant: Tenant) -> uuid.UUID:
    return tenant.departments["B"].id


def _their_nurse(tenant: Tenant) -> uuid.UUID:
    return tenant.staff_ids["nurse"]


LOOKUPS = [
    Lookup("departmentUpdate", "admin", 'mutation($id: ID!) { departmentUpdate(id: $id, name: "Department C") { id } }',
           "id", ("update", "department"), _their_department),
    Lookup("emergencyAccessReview", "compliance_officer",
           "mutation($id: ID!) { emergencyAccessReview(id: $id, outcome: JUSTIFIED) { id } }",
           "id", ("update", "emergency_access")),
    Lookup("roleGrantReview", "compliance_officer",
           "mutation($id: ID!) { roleGrantReview(id: $id, outcome: JUSTIFIED) { id } }",
           "id", ("update", "role_grant")),
    Lookup("surveyTriggerUpdate", "admin",
           "mutation($id: ID!) { surveyTriggerUpdate(id: $id, input: {delayHours: 48}) { id } }",
           "id", ("update", "survey_trigger")),
    Lookup("staff", "admin", "query($id: ID!) { staff(id: $id) { id } }", "id", ("read", "staff"), _their_nurse),
    Lookup("staffUnlock", "admin", "mutation($id: ID!) { staffUnlock(staffId: $id) }", "staffId",
           ("update", "staff"), _their_nurse),
    Lookup("staffPasswordReset", "admin", "mutation($id: ID!) { staffPasswordResetIssue(staffId: $id) { code } }",
           "staffId", ("create", "password_reset"), _their_nurse),
    Lookup("scheduleDay", "front_desk",
           'query($id: ID!) { scheduleDay(scheduleId: $id, date: "2026-12-07") { nodes { id } } }',
           "scheduleId", ("read", "schedule")),
    Lookup("scheduleExceptionCancel", "admin", "mutation($id: ID!) { scheduleExceptionCancel(id: $id) { id } }",
           "id", ("update", "schedule_exception")),
    Lookup("partnerClientRevoke", "admin", "mutation($id: ID!) { partnerClientRevoke(id: $id) { id } }",
           "id", ("update", "partner_client")),
    Lookup("serviceItemPriceAdd", "admin",
           'mutation($id: ID!) { serviceItemPriceAdd(itemId: $id, price: {amount: "120.00", currency: "CNY"}, '
           'effectiveFrom: "2026-01-01") { number } }', "itemId", ("create", "service_item")),
    Lookup("questionnaire", "admin", "query($id: ID!) { questionnaire(id: $id) { id } }", "id",
           ("read", "questionnaire")),
    Lookup("campaign", "admin", "query($id: ID!) { campaign(id: $id) { id } }", "id", ("read", "campaign")),
    Lookup("surveyInvite", "admin", "mutation($id: ID!) { surveyInvite(questionnaireId: $id) { invited } }",
           "questionnaireId", ("create", "questionnaire")),
]


@pytest.mark.parametrize("lookup", LOOKUPS, ids=lambda lookup: lookup.name)
async def test_a_record_out_of_the_institution_is_not_found_and_on_the_trail(
        tenant: Tenant, other_tenant: Tenant, lookup: Lookup) -> None:
    ids = [uuid.uuid4()] + ([lookup.theirs(other_tenant)] if lookup.theirs else [])
    answers = []
    for record_id in ids:
        before, seq = await stored(tenant), await mark(tenant.id)
        reply = await tenant.call(lookup.role, lookup.query, id=str(record_id))
        assert reply.codes == ["NOT_FOUND"], reply.errors
        assert reply.errors[0]["extensions"]["field"] == lookup.field
        assert reply.errors[0]["message"] == "Not found."
        assert reply.data is None or all(value is None for value in reply.data.values())
        assert await stored(tenant) == before
        assert await denials_since(tenant.id, seq) == [(*lookup.audited, "not_found", record_id, None)]
        answers.append(without_place(reply))
    assert all(answer == answers[0] for answer in answers)  # another institution's record looks missing
