"""A survey trigger's reminder goes while the invitation's link is still open, so a trigger that reminds no sooner than
the links close is refused, and so are links shortened to close before a trigger's reminder (found by a review of
input validation: a trigger reminding after 20 days was saved with the default 14 days' links, and the reminder sweep,
which passes over a closed link, never sent one; nothing said so)."""

from __future__ import annotations

from typing import Any

from models import SurveySettings, SurveyTrigger
from tests.api.test_input_errors import problems
from tests.factories import Tenant
from tests.surveys import questionnaire, trigger

TRIGGER_CREATE = "mutation($input: SurveyTriggerCreateInput!) { surveyTriggerCreate(input: $input) { id } }"
TRIGGER_UPDATE = """mutation($id: ID!, $input: SurveyTriggerUpdateInput!, $version: Int) {
  surveyTriggerUpdate(id: $id, input: $input, version: $version) { id reminderAfterDays version } }"""
DEACTIVATE = "mutation($id: ID!) { surveyTriggerDeactivate(id: $id) { id active } }"
SETTINGS_UPDATE = """mutation($input: SurveySettingsInput!) {
  surveySettingsUpdate(input: $input) { linkValidDays version } }"""


async def triggers(tenant: Tenant) -> list[tuple[Any, ...]]:
    return await SurveyTrigger.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "reminder_after_days", "version")


async def test_a_trigger_reminding_once_the_links_have_closed_is_refused(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    data = {"event": "VISIT_FINISHED", "questionnaireKey": str(q.key)}
    for days in (14, 30):  # the default links hold 14 days
        reply = await tenant.call("admin", TRIGGER_CREATE, input={**data, "reminderAfterDays": days})
        assert problems(reply) == [("input.reminderAfterDays", "reminder_after_link")]
    assert await triggers(tenant) == []
    made = await trigger(tenant, q, reminderAfterDays=13)  # the twin: a day before the links close
    before = await triggers(tenant)
    reply = await tenant.call("admin", TRIGGER_UPDATE, id=made["id"], input={"reminderAfterDays": 20}, version=1)
    assert problems(reply) == [("input.reminderAfterDays", "reminder_after_link")]
    assert await triggers(tenant) == before
    moved = await tenant.call("admin", TRIGGER_UPDATE, id=made["id"], input={"reminderAfterDays": 10}, version=1)
    assert moved.data["surveyTriggerUpdate"]["reminderAfterDays"] == 10, moved.errors


async def test_the_institutions_own_link_validity_is_the_bound(tenant: Tenant) -> None:
    assert (await tenant.call("admin", SETTINGS_UPDATE, input={"linkValidDays": 5})).errors == []
    q = await questionnaire(tenant)
    reply = await tenant.call("admin", TRIGGER_CREATE, input={"event": "TICKET_CLOSED", "questionnaireKey": str(q.key),
                                                              "reminderAfterDays": 5})
    assert problems(reply) == [("input.reminderAfterDays", "reminder_after_link")]
    assert await triggers(tenant) == []
    await trigger(tenant, q, event="TICKET_CLOSED", reminderAfterDays=4)


async def test_links_shortened_past_an_active_triggers_reminder_are_refused(tenant: Tenant) -> None:
    made = await trigger(tenant, await questionnaire(tenant), reminderAfterDays=3)
    reply = await tenant.call("admin", SETTINGS_UPDATE, input={"linkValidDays": 3, "fatigueDays": 10})
    assert problems(reply) == [("input.linkValidDays", "reminder_after_link")]
    assert not await SurveySettings.exists(institution_id=tenant.id)  # the defaults stand, nothing written
    assert (await tenant.call("admin", SETTINGS_UPDATE, input={"linkValidDays": 4})).errors == []  # the twin
    assert (await tenant.call("admin", DEACTIVATE, id=made["id"])).errors == []
    # an inactive trigger reminds of the invitations it made, whose links keep the validity they were made with
    reply = await tenant.call("admin", SETTINGS_UPDATE, input={"linkValidDays": 1})
    assert reply.data["surveySettingsUpdate"]["linkValidDays"] == 1, reply.errors
