"""Every problem of an input at once, each with its path and reason, and nothing written: staff accounts, SLA
targets and calendar, follow-up rule changes, tasks, attempts and outcomes, partner clients and grants, ticket
attachments and contract signatures."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from models import (
    Attachment,
    BusinessCalendar,
    ContractSignature,
    FollowUpAttempt,
    FollowUpRule,
    FollowUpTask,
    PartnerClient,
    PartnerGrant,
    SlaPolicy,
    Staff,
)
from resolvers import follow_up
from tests.api.test_attachments import new_ticket, upload
from tests.api.test_contract_signatures import drafted, send, sign
from tests.api.test_follow_up import ATTEMPT, COMPLETE, CREATE, NOW, TODAY, owned_task
from tests.api.test_follow_up_rules import CHANGE, a_rule
from tests.api.test_input_errors import problems
from tests.api.test_staff import STAFF_CREATE, STAFF_UPDATE, new_staff
from tests.factories import Tenant, make_patient
from tests.partners import CLIENT_CREATE, GRANT_CREATE, consent, later, make_partner


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The follow-up cases use test_follow_up's fixed day, so its clock too: a real one passes that day."""
    monkeypatch.setattr(follow_up, "_now", lambda: NOW)


async def staff_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await Staff.filter(institution_id=tenant.id).order_by("id").values("id", "name", "is_active", "version")


async def test_a_new_staff_account_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_CREATE, input=new_staff(email="no-at-sign", name="  ", password="short"))

    assert problems(reply) == [("input.email", "invalid"), ("input.name", "required"), ("input.password", "invalid")]
    assert reply.errors[0]["message"].startswith("input.email: ")
    assert reply.data == {"staffCreate": None}
    assert await staff_rows(tenant) == before


async def test_a_staff_update_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    before = await staff_rows(tenant)

    reply = await tenant.call("admin", STAFF_UPDATE, id=str(tenant.staff_ids["admin"]),
                              input={"name": "x" * 101, "active": False})

    assert problems(reply) == [("input.name", "too_long"), ("input.active", "invalid")]
    assert await staff_rows(tenant) == before


LEVEL_SET = """mutation($level: Int!, $first: Int!, $resolution: Int!) {
  slaLevelSet(level: $level, firstResponseMinutes: $first, resolutionMinutes: $resolution, clock: CALENDAR) {
    levels { level } } }"""
CALENDAR_SET = "mutation($input: BusinessCalendarInput!) { businessCalendarSet(input: $input) { levels { level } } }"


async def test_sla_targets_report_every_problem_and_write_nothing(tenant: Tenant) -> None:
    reply = await tenant.call("admin", LEVEL_SET, level=4, first=0, resolution=600_000)

    assert problems(reply) == [("level", "out_of_range"), ("firstResponseMinutes", "out_of_range"),
                               ("resolutionMinutes", "out_of_range")]
    assert await SlaPolicy.filter(institution_id=tenant.id).count() == 0


async def test_a_business_calendar_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    reply = await tenant.call("admin", CALENDAR_SET, input={
        "week": [{"weekday": 8, "intervals": []}],
        "workdayHours": [{"start": "17:00", "end": "09:00"}],
        "holidays": ["2027-01-01"], "workdays": ["2027-01-01"]})

    assert problems(reply) == [("input.week", "invalid"), ("input.workdayHours", "invalid"),
                               ("input.workdays", "invalid")]
    assert await BusinessCalendar.filter(institution_id=tenant.id).count() == 0


async def rule_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await FollowUpRule.filter(institution_id=tenant.id).order_by("id").values()


async def test_a_follow_up_rule_change_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    rule = await a_rule(tenant)
    before = await rule_rows(tenant)

    reply = await tenant.call("admin", CHANGE, id=rule["id"], input={
        "name": "  ", "offsetsDays": [3, 3], "assignee": None, "procedureCode": "x" * 40})

    assert problems(reply) == [("input.name", "required"), ("input.offsetsDays", "duplicate"),
                               ("input.procedureCode", "unknown_code"), ("input.assignee", "required")]
    assert reply.data == {"followUpRuleUpdate": None}
    assert await rule_rows(tenant) == before


async def task_rows(tenant: Tenant) -> tuple[list[dict[str, Any]], int]:
    tasks = await FollowUpTask.filter(institution_id=tenant.id).order_by("id").values()
    return tasks, await FollowUpAttempt.filter(institution_id=tenant.id).count()


async def test_a_follow_up_task_reports_every_reference_that_is_wrong(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await task_rows(tenant)

    reply = await tenant.call("nurse", CREATE, input={
        "patientId": str(pid), "dueOn": TODAY.isoformat(), "departmentId": str(uuid.uuid4()),
        "visitId": str(uuid.uuid4())})

    assert problems(reply) == [("input.departmentId", "invalid"), ("input.visitId", "invalid")]
    assert await task_rows(tenant) == before


async def test_a_call_attempt_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    before = await task_rows(tenant)

    reply = await tenant.call("nurse", ATTEMPT, id=task["id"], input={
        "channel": "PHONE", "outcome": "BUSY", "at": (NOW + timedelta(days=1)).isoformat(),
        "note": "a\x07b"})

    assert problems(reply) == [("input.at", "invalid"), ("input.note", "invalid")]
    assert await task_rows(tenant) == before


async def test_an_outcome_form_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    before = await task_rows(tenant)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input={
        "reached": False, "condition": "SAME", "satisfaction": 3, "notes": "x" * 2001, "openTicket": True})

    assert problems(reply) == [("input.notes", "too_long"), ("input.condition", "invalid"),
                               ("input.satisfaction", "invalid")]
    assert await task_rows(tenant) == before


async def test_a_reached_outcome_reports_its_missing_condition_and_satisfaction(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    before = await task_rows(tenant)

    reply = await tenant.call("nurse", COMPLETE, id=task["id"], input={"reached": True, "satisfaction": 9})

    assert problems(reply) == [("input.condition", "required"), ("input.satisfaction", "out_of_range")]
    assert await task_rows(tenant) == before


async def test_a_partner_client_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    partner_id = await make_partner(tenant)

    reply = await tenant.call("admin", CLIENT_CREATE, input={
        "partnerId": str(partner_id), "name": "x", "scopes": ["audit:read"], "rateLimitPerMinute": 0,
        "trustedDocuments": []})

    assert problems(reply) == [("input.name", "too_short"), ("input.scopes", "invalid"),
                               ("input.rateLimitPerMinute", "out_of_range"), ("input.trustedDocuments", "invalid")]
    assert await PartnerClient.filter(institution_id=tenant.id).count() == 0


async def test_a_partner_grant_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    partner, pid = await make_partner(tenant), await make_patient(tenant)
    assert (await consent(tenant, pid, partner)).errors == []

    reply = await tenant.call("nurse", GRANT_CREATE, input={
        "partnerId": str(partner), "patientId": str(pid), "purpose": "ab", "expiresAt": later(days=400)})

    assert problems(reply) == [("input.purpose", "too_short"), ("input.expiresAt", "out_of_range")]  # beyond a year
    assert await PartnerGrant.filter(institution_id=tenant.id).count() == 0


async def test_an_attachment_reports_its_name_and_type_at_once_and_stores_nothing(tenant: Tenant) -> None:
    tid = await new_ticket(tenant)

    reply = await upload(tenant, "support_agent", tid, b"", "application/x-msdownload", "../run.exe")

    assert reply.status_code == 400
    invalid = reply.json()["errors"][0]["extensions"]["invalid"]
    assert [(p["field"], p["reason"]) for p in invalid] == [("filename", "invalid"), ("file", "invalid"),
                                                            ("contentType", "invalid_choice")]
    assert await Attachment.filter(ticket_id=tid).count() == 0


async def test_a_signature_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    sent = await send(tenant, await drafted(tenant))
    before = await ContractSignature.filter(institution_id=tenant.id).count()

    reply = await sign(tenant, "front_desk", sent, "CLIENT", method="PORTAL", sha="not-a-hash",
                       contactId=str(uuid.uuid4()))

    assert problems(reply) == [("input.method", "method_not_allowed"), ("input.documentSha256", "invalid_hash"),
                               ("input.contactId", "contact_not_allowed")]
    assert await ContractSignature.filter(institution_id=tenant.id).count() == before
