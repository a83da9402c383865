"""Every problem of a messaging, campaign, template, communication, survey or questionnaire input in one answer
(issue 16): each with its path in the input and its reason, and nothing written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models import (
    Campaign,
    Communication,
    MessageGateway,
    MessageTemplate,
    MessagingSettings,
    SurveySettings,
    SurveyTrigger,
)
from tests.api.test_campaigns import CREATE as CAMPAIGN_CREATE
from tests.api.test_campaigns import draft
from tests.api.test_communications import CALL, reachable
from tests.api.test_input_errors import problems
from tests.api.test_message_templates import SET as TEMPLATE_SET
from tests.api.test_message_templates import a_template
from tests.api.test_messaging_settings import GATEWAY
from tests.api.test_messaging_settings import UPDATE as MESSAGING_UPDATE
from tests.api.test_questionnaires import CREATE as QUESTIONNAIRE_CREATE
from tests.api.test_questionnaires import UPDATE as QUESTIONNAIRE_UPDATE
from tests.api.test_questionnaires import a_questionnaire, create, t, written
from tests.api.test_survey_invitations import SETTINGS_UPDATE, TRIGGER_UPDATE
from tests.factories import Tenant
from tests.surveys import TRIGGER_CREATE, questionnaire, trigger


async def test_messaging_settings_report_every_bad_setting(tenant: Tenant) -> None:
    reply = await tenant.call("admin", MESSAGING_UPDATE, input={
        "reminderHoursBefore": 0, "quietStart": "22:00:30", "nonCareCap": None, "institutionPhone": "call us",
        "emailFrom": "a@b"})

    assert problems(reply) == [("input.reminderHoursBefore", "out_of_range"), ("input.quietStart", "invalid"),
                               ("input.nonCareCap", "required"), ("input.institutionPhone", "invalid"),
                               ("input.emailFrom", "invalid")]
    assert not await MessagingSettings.exists(institution_id=tenant.id)


async def test_quiet_hours_given_together_are_checked_with_the_other_settings(tenant: Tenant) -> None:
    reply = await tenant.call("admin", MESSAGING_UPDATE, input={"quietStart": "06:00", "quietEnd": "06:00",
                                                                "portalHorizonDays": 366})

    assert problems(reply) == [("input.portalHorizonDays", "out_of_range"), ("input.quietEnd", "invalid")]
    assert not await MessagingSettings.exists(institution_id=tenant.id)


async def test_a_gateway_reports_every_bad_field(tenant: Tenant) -> None:
    reply = await tenant.call("admin", GATEWAY, input={"channel": "SMS", "url": "ftp://sms.example.com",
                                                       "secret": "short", "timeoutMs": 99, "active": None})

    assert problems(reply) == [("input.url", "invalid"), ("input.secret", "invalid"),
                               ("input.timeoutMs", "out_of_range"), ("input.active", "required")]
    assert not await MessageGateway.exists(institution_id=tenant.id)


async def test_a_template_reports_its_subject_and_body(tenant: Tenant) -> None:
    reply = await tenant.call("admin", TEMPLATE_SET, input=a_template(subject="{diagnosis}", body="x" * 501))

    assert problems(reply) == [("input.subject", "invalid"), ("input.body", "too_long")]
    assert not await MessageTemplate.exists(institution_id=tenant.id)


async def test_a_campaign_reports_its_text_and_its_audience(tenant: Tenant) -> None:
    data = {**draft(code="X" * 33), "name": "   ", "body": "{patient_name}, spring lecture."}

    reply = await tenant.call("admin", CAMPAIGN_CREATE, input=data)

    assert problems(reply) == [("input.name", "required"), ("input.body", "invalid"),
                               ("input.audience.code", "too_long")]
    assert await Campaign.filter(institution_id=tenant.id).count() == 0


async def test_a_logged_call_reports_its_time_and_note_before_the_patient_is_looked_up(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    for patient in (str(pid), str(uuid.uuid4())):  # an unknown patient too: the input's shape comes first
        reply = await tenant.call("front_desk", CALL, input={"patientId": patient, "occurredAt": future,
                                                             "note": "x" * 2001})
        assert problems(reply) == [("input.occurredAt", "in_future"), ("input.note", "too_long")]
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid).count() == 0


async def test_survey_settings_report_every_setting_out_of_range(tenant: Tenant) -> None:
    reply = await tenant.call("admin", SETTINGS_UPDATE, input={"fatigueDays": 366, "minCell": 2,
                                                               "linkValidDays": None})

    assert problems(reply) == [("input.fatigueDays", "out_of_range"), ("input.minCell", "out_of_range"),
                               ("input.linkValidDays", "out_of_range")]
    assert not await SurveySettings.exists(institution_id=tenant.id)


@pytest.mark.parametrize(("change", "expected"), [
    ({"event": "TICKET_CLOSED", "visitKind": "OUTPATIENT", "delayHours": 721, "reminderAfterDays": 0},
     [("input.delayHours", "out_of_range"), ("input.reminderAfterDays", "out_of_range"),
      ("input.visitKind", "invalid")]),  # the rule across fields after the fields
    ({"questionnaireKey": "draft", "departmentId": "unknown"},  # both looked up, both reported
     [("input.departmentId", "invalid"), ("input.questionnaireKey", "invalid")]),
])
async def test_a_new_trigger_reports_every_problem(tenant: Tenant, change: dict[str, Any],
                                                   expected: list[tuple[str, str]]) -> None:
    q = await questionnaire(tenant)
    data = {"event": "VISIT_FINISHED", "questionnaireKey": str(q.key), **change}
    if change.get("questionnaireKey") == "draft":
        data["questionnaireKey"] = str((await questionnaire(tenant, status="draft")).key)
    if change.get("departmentId") == "unknown":
        data["departmentId"] = str(uuid.uuid4())

    reply = await tenant.call("admin", TRIGGER_CREATE, input=data)

    assert problems(reply) == expected
    assert not await SurveyTrigger.exists(institution_id=tenant.id)


async def test_a_trigger_update_reports_every_problem(tenant: Tenant) -> None:
    made = await trigger(tenant, await questionnaire(tenant))
    before = await SurveyTrigger.filter(institution_id=tenant.id).values()

    reply = await tenant.call("admin", TRIGGER_UPDATE, id=made["id"], input={
        "event": "FOLLOW_UP_COMPLETED", "visitKind": "INPATIENT", "delayHours": -1, "reminderAfterDays": 31})

    assert problems(reply) == [("input.delayHours", "out_of_range"), ("input.reminderAfterDays", "out_of_range"),
                               ("input.visitKind", "invalid")]
    assert await SurveyTrigger.filter(institution_id=tenant.id).values() == before


BAD_QUESTIONNAIRE = {"title": t("   "), "purpose": t("x" * 1001),
                     "items": [{"linkId": "a", "kind": "YES_NO", "text": t("甲")},
                               {"linkId": "a", "kind": "YES_NO", "text": t("乙")}]}
BAD_QUESTIONNAIRE_PROBLEMS = [("input.title.zhCN", "invalid"), ("input.purpose.zhCN", "too_long"),
                              ("input.items[1].linkId", "invalid")]


async def test_a_new_questionnaire_reports_its_texts_and_its_definition(tenant: Tenant) -> None:
    before = await written(tenant)

    reply = await tenant.call("admin", QUESTIONNAIRE_CREATE, input=a_questionnaire(
        **BAD_QUESTIONNAIRE, scoring={"method": "MEAN", "satisfiedAt": 75}))

    assert problems(reply) == BAD_QUESTIONNAIRE_PROBLEMS
    assert await written(tenant) == before


async def test_a_questionnaire_update_reports_its_texts_and_its_definition(tenant: Tenant) -> None:
    made = await create(tenant)
    before = await written(tenant)

    reply = await tenant.call("admin", QUESTIONNAIRE_UPDATE, id=made["id"], revision=made["revision"],
                              input={**BAD_QUESTIONNAIRE, "scoring": {"method": "MEAN", "satisfiedAt": 75}})

    assert problems(reply) == BAD_QUESTIONNAIRE_PROBLEMS
    assert await written(tenant) == before
