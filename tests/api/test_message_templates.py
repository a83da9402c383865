"""Message templates through the API: a default for every cause and language, an institution's own
(set, overridden per channel, replaced with a version, reset), the refusal of clinical variables and
hostile templates, the preview, who may do what (each refusal audited, nothing written), and tenants
kept apart. ``pick`` and ``render``, which the outbox uses, are checked against what the API wrote."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from models import AuditEvent, MessageTemplate
from models.communication import CAUSES
from resolvers import message_template as templates
from tests.conftest import BACKEND, SqlCounter
from tests.factories import Tenant
from tests.locks import another_transaction, until_waiting
from tests.patients import open_account

LIST = """query($cause: TemplateCause, $first: Int, $after: String) {
  messageTemplates(cause: $cause, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } variables
    edges { cursor node { cause channel language subject body isDefault version updatedAt } } } }"""
SET = """mutation($input: MessageTemplateInput!, $version: Int) { messageTemplateSet(input: $input, version: $version) {
  cause channel language subject body isDefault version updatedAt } }"""
RESET = """mutation($cause: TemplateCause!, $channel: TemplateChannel!, $language: TemplateLanguage!) {
  messageTemplateReset(cause: $cause, channel: $channel, language: $language) {
    cause channel language subject body isDefault version } }"""
PREVIEW = """query($cause: TemplateCause!, $channel: TemplateChannel!, $language: TemplateLanguage!,
                  $subject: String, $body: String) {
  messageTemplatePreview(cause: $cause, channel: $channel, language: $language, subject: $subject, body: $body) {
    subject body length smsParts template { channel isDefault version } } }"""
SETTINGS = """mutation($input: MessagingSettingsInput!) { messagingSettingsUpdate(input: $input) { version } }"""

STAFF_READERS = ("admin", "department_head")
STAFF_OTHERS = ("front_desk", "nurse", "doctor", "support_agent", "compliance_officer")
CONFIRMATION = "{patient_name}，您已预约{date} {time}{department_name}的门诊。请致电{institution_phone}。"


def a_template(**fields: Any) -> dict[str, Any]:
    return {"cause": "APPOINTMENT_CONFIRMATION", "channel": "SMS", "language": "ZH_CN", "subject": "预约",
            "body": CONFIRMATION, **fields}


async def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def every_template(tenant: Tenant, role: str = "admin") -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        page = await ok(await tenant.call(role, LIST, first=7, after=after), "messageTemplates")
        found += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def rows(tenant: Tenant) -> list[tuple[Any, ...]]:
    return list(await MessageTemplate.filter(institution_id=tenant.id).order_by("id").values_list(
        "id", "cause", "channel", "language", "subject", "body", "version"))


# -- the defaults -------------------------------------------------------------------------------------


async def test_a_default_exists_for_every_cause_and_language(tenant: Tenant) -> None:
    found = await every_template(tenant)
    assert {(t["cause"].lower(), t["language"]) for t in found} == {
        (cause, language) for cause in CAUSES for language in ("ZH_CN", "EN")}
    assert len(found) == 2 * len(CAUSES)
    assert all(t["isDefault"] and t["version"] == 0 and t["updatedAt"] is None and t["channel"] == "ANY"
               and t["body"] for t in found)
    for t in found:  # each default passes the checks a template of the institution must pass
        templates.checked_text(t["cause"].lower(), "sms", t["subject"], t["body"])
    page = await ok(await tenant.call("department_head", LIST, cause="BIRTHDAY_GREETING"), "messageTemplates")
    assert [(e["node"]["language"], "{unsubscribe_url}" in e["node"]["body"]) for e in page["edges"]] == [
        ("EN", True), ("ZH_CN", True)]
    assert "patient_name" in page["variables"] and "diagnosis" not in page["variables"]


async def test_pick_falls_back_from_the_channel_to_any_to_the_default_and_to_chinese(tenant: Tenant) -> None:
    default_zh = templates.DEFAULTS[("appointment_confirmation", "zh-CN")]
    assert await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN") == default_zh
    assert await templates.pick(tenant.id, "appointment_confirmation", "sms", "fr") == default_zh
    assert await templates.pick(tenant.id, "appointment_confirmation", "email", "en-GB") == templates.DEFAULTS[
        ("appointment_confirmation", "en")]
    await ok(await tenant.call("admin", SET, input=a_template(channel="ANY", body="ANY {patient_name}")),
             "messageTemplateSet")
    await ok(await tenant.call("admin", SET, input=a_template(body="SMS {patient_name}")), "messageTemplateSet")
    assert (await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN"))[1] == "SMS {patient_name}"
    assert (await templates.pick(tenant.id, "appointment_confirmation", "wechat", None))[1] == "ANY {patient_name}"
    assert await templates.pick(tenant.id, "appointment_confirmation", "sms", "en") == templates.DEFAULTS[
        ("appointment_confirmation", "en")]
    with pytest.raises(LookupError):
        await templates.pick(tenant.id, "logged_call", "sms", "zh-CN")


def test_render_fills_slots_once_and_leaves_missing_ones_empty() -> None:
    text = "{patient_name}|{date}|{unknown}|{diagnosis}|{{patient_name}}"
    out = templates.render(text, {"patient_name": "{date} {x.__class__}", "date": "2026-12-01",
                                  "diagnosis": "secret"})
    assert out == "{date} {x.__class__}|2026-12-01|||{{date} {x.__class__}}"  # only allowed slots are filled
    assert templates.render("{time}", {}) == ""


# -- the institution's own --------------------------------------------------------------------------------


async def test_set_override_replace_with_a_version_and_reset(tenant: Tenant) -> None:
    first = await ok(await tenant.call("admin", SET, input=a_template(), version=0), "messageTemplateSet")
    assert (first["channel"], first["isDefault"], first["version"], first["body"]) == ("SMS", False, 1, CONFIRMATION)
    [event] = await tenant.audit_events(resource_type="message_template", action="create")
    assert event.outcome == "allowed" and set(event.fields_read.split(",")) == {"subject", "body"}
    assert "预约" not in str(event.__dict__)  # the text itself is not on the trail
    listed = {(t["cause"], t["channel"], t["language"]): t for t in await every_template(tenant)}
    assert listed[("APPOINTMENT_CONFIRMATION", "SMS", "ZH_CN")]["isDefault"] is False
    assert listed[("APPOINTMENT_CONFIRMATION", "ANY", "ZH_CN")]["isDefault"] is True  # the default still serves
    assert len(listed) == 2 * len(CAUSES) + 1

    second = await ok(await tenant.call("admin", SET, input=a_template(body="改：" + CONFIRMATION), version=1),
                      "messageTemplateSet")
    assert second["version"] == 2
    before = await rows(tenant)
    stale = await tenant.call("admin", SET, input=a_template(body="旧"), version=1)
    assert stale.codes == ["CONFLICT"] and await rows(tenant) == before
    stale = await tenant.call("admin", SET, input=a_template(body="旧"), version=0)  # "replacing the default"
    assert stale.codes == ["CONFLICT"] and await rows(tenant) == before
    third = await ok(await tenant.call("admin", SET, input=a_template(body="后写：" + CONFIRMATION)),
                     "messageTemplateSet")
    assert third["version"] == 3  # without a version the last write wins

    back = await ok(await tenant.call("admin", RESET, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                      language="ZH_CN"), "messageTemplateReset")
    assert (back["isDefault"], back["channel"], back["version"]) == (True, "ANY", 0)
    assert back["body"] == templates.DEFAULTS[("appointment_confirmation", "zh-CN")][1]
    # the text is gone; the row stays as a tombstone that keeps the key's count (3 written, 4 reset)
    assert [row[1:] for row in await rows(tenant)] == [("appointment_confirmation", "sms", "zh-CN", "", "", 4)]
    assert len(await tenant.audit_events(resource_type="message_template", action="delete")) == 1
    again = await ok(await tenant.call("admin", RESET, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                       language="ZH_CN"), "messageTemplateReset")
    assert again["isDefault"] is True  # nothing to drop: nothing written


async def test_a_channel_reset_falls_back_to_the_institutions_any_template(tenant: Tenant) -> None:
    await ok(await tenant.call("admin", SET, input=a_template(channel="ANY", language="EN", body="Any {date}")),
             "messageTemplateSet")
    await ok(await tenant.call("admin", SET, input=a_template(channel="EMAIL", language="EN", body="Mail {date}")),
             "messageTemplateSet")
    back = await ok(await tenant.call("admin", RESET, cause="APPOINTMENT_CONFIRMATION", channel="EMAIL",
                                      language="EN"), "messageTemplateReset")
    assert (back["channel"], back["body"], back["isDefault"], back["version"]) == ("ANY", "Any {date}", False, 1)


CLINICAL = ["{diagnosis}", "{reason}", "{national_id}", "{allergies}", "{Patient_Name}"]
HOSTILE = [(text, "input.body") for text in (
    "{patient_name!r}", "{patient_name:>99999}", "{x.__class__}", "{0}", "{}", "{patient_name[0]}", "{patient_name",
    "patient_name}", "{{patient_name}}", "{ patient_name }", "hello\u202e{patient_name}", "zero\u200bwidth", "bell\x07",
    "", "x" * 501,
)]


@pytest.mark.parametrize("slot", CLINICAL)
async def test_a_template_naming_clinical_detail_is_refused(tenant: Tenant, slot: str) -> None:
    for field in ("body", "subject"):
        data = a_template(**{field: f"{{patient_name}}：{slot}"})
        reply = await tenant.call("admin", SET, input=data)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == f"input.{field}"
        assert "may not be filled in" in reply.errors[0]["message"]
    assert await rows(tenant) == []


@pytest.mark.parametrize(("text", "field"), HOSTILE)
async def test_hostile_templates_are_refused(tenant: Tenant, text: str, field: str) -> None:
    reply = await tenant.call("admin", SET, input=a_template(body=text))
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    preview = await tenant.call("admin", PREVIEW, cause="APPOINTMENT_CONFIRMATION", channel="SMS", language="ZH_CN",
                                body=text)
    assert preview.codes == ["BAD_USER_INPUT"]
    assert await rows(tenant) == []


async def test_a_greeting_must_carry_its_unsubscribe_link(tenant: Tenant) -> None:
    reply = await tenant.call("admin", SET, input=a_template(cause="HOLIDAY_GREETING", body="{holiday_name}快乐"))
    assert reply.codes == ["BAD_USER_INPUT"] and "unsubscribe_url" in reply.errors[0]["message"]
    done = await ok(await tenant.call("admin", SET, input=a_template(
        cause="HOLIDAY_GREETING", body="{holiday_name}快乐 退订{unsubscribe_url}")), "messageTemplateSet")
    assert done["version"] == 1


async def test_an_email_template_may_be_longer_than_an_sms(tenant: Tenant) -> None:
    body = "{patient_name}" + "。" * 600
    assert (await tenant.call("admin", SET, input=a_template(body=body))).codes == ["BAD_USER_INPUT"]
    await ok(await tenant.call("admin", SET, input=a_template(channel="EMAIL", body=body)), "messageTemplateSet")
    assert (await tenant.call("admin", SET, input=a_template(channel="EMAIL", body=body + "x" * 500))).codes == [
        "BAD_USER_INPUT"]


async def test_an_any_template_is_held_to_the_sms_limit_since_it_goes_out_by_sms(tenant: Tenant) -> None:
    """Found in review: an ANY template, sent by text message wherever there is no SMS one, took 1,000 characters,
    so a text message went out twice as long as an SMS template may be (15 parts in Chinese)."""
    body = "{patient_name}" + "。" * 600
    before = await rows(tenant)
    refused = await tenant.call("admin", SET, input=a_template(channel="ANY", body=body))
    assert refused.codes == ["BAD_USER_INPUT"] and refused.errors[0]["extensions"]["field"] == "input.body"
    assert await rows(tenant) == before
    fits = "{patient_name}" + "。" * (500 - len("{patient_name}"))
    written = await ok(await tenant.call("admin", SET, input=a_template(channel="ANY", body=fits)),
                       "messageTemplateSet")
    assert written["body"] == fits
    assert await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN") == ("预约", fits)


# -- the preview ----------------------------------------------------------------------------------------------


async def test_the_preview_renders_sample_values_and_the_institutions_name_and_phone(tenant: Tenant) -> None:
    await ok(await tenant.call("admin", SETTINGS, input={"institutionPhone": "0755-8888 6666"}),
             "messagingSettingsUpdate")
    shown = await ok(await tenant.call("department_head", PREVIEW, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                       language="ZH_CN"), "messageTemplatePreview")
    assert shown["template"] == {"channel": "ANY", "isDefault": True, "version": 0}
    assert shown["body"].startswith("张三，您已预约2026-12-01 09:30") and "0755-8888 6666" in shown["body"]
    assert tenant.institution.name in shown["body"] and "{" not in shown["body"]
    assert (shown["length"], shown["smsParts"]) == (len(shown["body"]), 1 if len(shown["body"]) <= 70 else 2)
    draft = await ok(await tenant.call("admin", PREVIEW, cause="BIRTHDAY_GREETING", channel="SMS", language="EN",
                                       body="Happy birthday {patient_name}! {unsubscribe_url}", subject="Hi"),
                     "messageTemplatePreview")
    assert draft["body"].startswith("Happy birthday Alex Chen! https://") and draft["subject"] == "Hi"
    assert await rows(tenant) == []  # a draft is not saved
    [read] = await tenant.audit_events(resource_type="message_template", action="read", outcome="allowed",
                                       actor_id=tenant.staff_ids["department_head"])
    assert read.policy_rule


async def test_a_drafts_preview_answers_the_version_of_the_key_it_would_be_saved_as(tenant: Tenant) -> None:
    """Found in review: a draft previewed for a channel without a template of its own (its ANY template in force)
    was answered as that channel's template with the ANY template's version, so a client passing it back to
    messageTemplateSet, as the field says, got a CONFLICT; the version of the key it previews is 0 there."""
    await ok(await tenant.call("admin", SET, input=a_template(channel="ANY")), "messageTemplateSet")
    draft = "{patient_name}：短信草稿，{date} {time}。"
    shown = await ok(await tenant.call("admin", PREVIEW, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                       language="ZH_CN", body=draft), "messageTemplatePreview")
    assert shown["template"]["channel"] == "SMS" and shown["template"]["version"] == 0
    saved = await ok(await tenant.call("admin", SET, input=a_template(body=draft),
                                       version=shown["template"]["version"]), "messageTemplateSet")
    assert (saved["channel"], saved["version"], saved["body"]) == ("SMS", 1, draft)
    # the twin: a draft over the channel's own template answers its version, and that version goes stale once used
    again = await ok(await tenant.call("admin", PREVIEW, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                       language="ZH_CN", body=draft + "!"), "messageTemplatePreview")
    assert again["template"] == {"channel": "SMS", "isDefault": False, "version": 1}
    await ok(await tenant.call("admin", SET, input=a_template(body=draft + "!"), version=1), "messageTemplateSet")
    before = await rows(tenant)
    stale = await tenant.call("admin", SET, input=a_template(body=draft + "?"), version=1)
    assert stale.codes == ["CONFLICT"] and await rows(tenant) == before


# -- who may -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", (*STAFF_OTHERS, "department_head"))
async def test_only_admins_write_templates(tenant: Tenant, role: str) -> None:
    for query, variables, resource in (
            (SET, {"input": a_template()}, "message_template"),
            (RESET, {"cause": "CAMPAIGN", "channel": "ANY", "language": "EN"}, "message_template")):
        before = await tenant.audit_count()
        reply = await tenant.call(role, query, **variables)
        assert reply.codes == ["FORBIDDEN"] and not any((reply.data or {}).values())
        assert await rows(tenant) == []
        events = await AuditEvent.filter(institution_id=tenant.id).order_by("seq").offset(before)
        assert [(e.outcome, e.resource_type, e.reason) for e in events] == [("denied", resource, "forbidden")]


@pytest.mark.parametrize("role", STAFF_OTHERS)
async def test_only_admins_and_department_heads_read_templates(tenant: Tenant, role: str) -> None:
    for query, variables in ((LIST, {}), (PREVIEW, {"cause": "CAMPAIGN", "channel": "ANY", "language": "EN"})):
        before = await tenant.audit_count()
        reply = await tenant.call(role, query, **variables)
        assert reply.codes == ["FORBIDDEN"]
        events = await AuditEvent.filter(institution_id=tenant.id).order_by("seq").offset(before)
        assert [(e.outcome, e.resource_type, e.reason) for e in events] == [
            ("denied", "message_template", "forbidden")]


async def test_a_patient_neither_reads_nor_writes_templates(tenant: Tenant) -> None:
    user = await open_account(tenant)
    for query, variables in ((LIST, {}), (SET, {"input": a_template()}),
                             (PREVIEW, {"cause": "CAMPAIGN", "channel": "ANY", "language": "EN"})):
        before = await tenant.audit_count()
        assert (await user.call(query, **variables)).codes == ["FORBIDDEN"]
        events = await AuditEvent.filter(institution_id=tenant.id).order_by("seq").offset(before)
        assert [(e.outcome, e.resource_type) for e in events] == [("denied", "message_template")]
    assert await rows(tenant) == []


@pytest.mark.parametrize("role", STAFF_READERS)
async def test_listing_reads_are_audited(tenant: Tenant, role: str) -> None:
    await every_template(tenant, role)
    events = await tenant.audit_events(resource_type="message_template", action="read",
                                       actor_id=tenant.staff_ids[role])
    assert events and all(e.outcome == "allowed" and e.policy_rule for e in events)


async def test_bad_paging_and_causes_are_refused(tenant: Tenant) -> None:
    assert (await tenant.call("admin", LIST, first=0)).codes == ["BAD_USER_INPUT"]
    assert (await tenant.call("admin", LIST, first=101)).codes == ["BAD_USER_INPUT"]
    assert (await tenant.call("admin", LIST, after="nonsense")).codes == ["BAD_USER_INPUT"]
    assert (await tenant.call("admin", LIST, cause="LOGGED_CALL")).codes == ["BAD_USER_INPUT"]  # not a cause here


async def test_the_list_costs_the_same_sql_whatever_the_page(tenant: Tenant, sql_counter: SqlCounter) -> None:
    for channel in ("SMS", "EMAIL", "WECHAT"):
        await ok(await tenant.call("admin", SET, input=a_template(channel=channel)), "messageTemplateSet")
    counts = []
    for first in (2, 25):
        sql_counter.statements.clear()
        page = await ok(await tenant.call("admin", LIST, first=first), "messageTemplates")
        assert len(page["edges"]) == first
        counts.append(len(sql_counter.statements))
    assert counts[0] == counts[1]


# -- tenants ---------------------------------------------------------------------------------------------------------


async def test_an_institutions_templates_are_its_own(tenant: Tenant, other_tenant: Tenant) -> None:
    await ok(await tenant.call("admin", SET, input=a_template(body="甲 {patient_name}")), "messageTemplateSet")
    theirs = await every_template(other_tenant)
    assert all(t["isDefault"] for t in theirs) and len(theirs) == 2 * len(CAUSES)
    assert (await templates.pick(other_tenant.id, "appointment_confirmation", "sms", "zh-CN")) == templates.DEFAULTS[
        ("appointment_confirmation", "zh-CN")]
    # the other institution writes its own for the same key: no clash, and ours is untouched
    await ok(await other_tenant.call("admin", SET, input=a_template(body="乙 {patient_name}"), version=0),
             "messageTemplateSet")
    assert (await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN"))[1] == "甲 {patient_name}"
    await ok(await other_tenant.call("admin", RESET, cause="APPOINTMENT_CONFIRMATION", channel="SMS",
                                     language="ZH_CN"), "messageTemplateReset")
    assert (await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN"))[1] == "甲 {patient_name}"


# -- versions across a reset: never repeated --------------------------------------------------------------------


RESET_AT = """mutation($cause: TemplateCause!, $channel: TemplateChannel!, $language: TemplateLanguage!,
                       $version: Int) {
  messageTemplateReset(cause: $cause, channel: $channel, language: $language, version: $version) {
    cause channel language subject body isDefault version } }"""
SMS_KEY = {"cause": "APPOINTMENT_CONFIRMATION", "channel": "SMS", "language": "ZH_CN"}
ANY_KEY = {**SMS_KEY, "channel": "ANY"}


async def writes(tenant: Tenant) -> list[str]:
    """The actions of the template writes on the trail, in order (reads left out)."""
    return [event.action for event in await tenant.audit_events(resource_type="message_template", outcome="allowed")
            if event.action != "read"]


async def test_a_stale_version_from_before_a_reset_and_a_new_template_is_a_conflict(tenant: Tenant) -> None:
    """ABA: A reads version 1 of a template; B resets it and writes a new one; A's write stating version 1 must
    not overwrite B's text."""
    await ok(await tenant.call("admin", SET, input=a_template(body="甲 {patient_name}"), version=0),
             "messageTemplateSet")
    read_by_a = await ok(await tenant.call("admin", PREVIEW, **SMS_KEY), "messageTemplatePreview")
    assert read_by_a["template"] == {"channel": "SMS", "isDefault": False, "version": 1}
    # B: reset, read again (the default, version 0) and write a new text with the version read
    await ok(await tenant.call("admin", RESET_AT, **SMS_KEY, version=1), "messageTemplateReset")
    read_by_b = await ok(await tenant.call("admin", PREVIEW, **SMS_KEY), "messageTemplatePreview")
    assert read_by_b["template"] == {"channel": "ANY", "isDefault": True, "version": 0}
    b_wrote = await ok(await tenant.call("admin", SET, input=a_template(body="乙 {patient_name}"),
                                         version=read_by_b["template"]["version"]), "messageTemplateSet")
    assert b_wrote["version"] > 1
    before, events = await rows(tenant), await tenant.audit_count()

    stale = await tenant.call("admin", SET, input=a_template(body="甲改 {patient_name}"),
                              version=read_by_a["template"]["version"])

    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["field"] == "version"
    assert await rows(tenant) == before and await tenant.audit_count() == events
    assert (await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN"))[1] == "乙 {patient_name}"
    stale = await tenant.call("admin", RESET_AT, **SMS_KEY, version=read_by_a["template"]["version"])
    assert stale.codes == ["CONFLICT"] and await rows(tenant) == before


async def test_versions_keep_increasing_across_resets(tenant: Tenant) -> None:
    """read -> reset -> read -> set with the version read works, and no version of the key comes back."""
    seen: list[int] = []
    for round_ in range(3):
        listed = {(t["cause"], t["channel"], t["language"]): t for t in await every_template(tenant)}
        read = listed[("APPOINTMENT_CONFIRMATION", "ANY", "ZH_CN")]
        assert read["isDefault"] is True and read["version"] == 0 and read["updatedAt"] is None
        written = await ok(await tenant.call("admin", SET, input=a_template(
            channel="ANY", body=f"第{round_}版 {{patient_name}}"), version=read["version"]), "messageTemplateSet")
        changed = await ok(await tenant.call("admin", SET, input=a_template(
            channel="ANY", body=f"第{round_}版改 {{patient_name}}"), version=written["version"]), "messageTemplateSet")
        seen += [written["version"], changed["version"]]
        back = await ok(await tenant.call("admin", RESET_AT, **ANY_KEY, version=changed["version"]),
                        "messageTemplateReset")
        assert (back["isDefault"], back["channel"], back["version"]) == (True, "ANY", 0)
    assert seen == [1, 2, 4, 5, 7, 8]  # each reset took a version too: none comes back
    assert await writes(tenant) == ["create", "update", "delete"] * 3


async def test_after_a_reset_the_listing_preview_and_outbox_show_the_default(tenant: Tenant) -> None:
    default_zh = templates.DEFAULTS[("appointment_confirmation", "zh-CN")]
    await ok(await tenant.call("admin", SET, input=a_template(channel="ANY", subject="自", body="自 {date}")),
             "messageTemplateSet")
    await ok(await tenant.call("admin", SET, input=a_template(channel="SMS", body="短信 {date}")), "messageTemplateSet")
    await ok(await tenant.call("admin", RESET_AT, **ANY_KEY, version=1), "messageTemplateReset")
    # the SMS template stays; every other channel falls back past the dropped ANY template to the default
    assert (await templates.pick(tenant.id, "appointment_confirmation", "sms", "zh-CN"))[1] == "短信 {date}"
    assert await templates.pick(tenant.id, "appointment_confirmation", "email", "zh-CN") == default_zh
    email = await ok(await tenant.call("admin", PREVIEW, cause="APPOINTMENT_CONFIRMATION", channel="EMAIL",
                                       language="ZH_CN"), "messageTemplatePreview")
    assert email["template"] == {"channel": "ANY", "isDefault": True, "version": 0}
    assert email["subject"] == default_zh[0]
    back = await ok(await tenant.call("admin", RESET_AT, **SMS_KEY, version=1), "messageTemplateReset")
    assert (back["channel"], back["isDefault"], back["version"], back["subject"], back["body"]) == (
        "ANY", True, 0, *default_zh)
    listed = await every_template(tenant)
    assert len(listed) == 2 * len(CAUSES) and all(t["isDefault"] and t["version"] == 0 for t in listed)
    only = await ok(await tenant.call("admin", LIST, cause="APPOINTMENT_CONFIRMATION"), "messageTemplates")
    assert [(e["node"]["channel"], e["node"]["body"]) for e in only["edges"]] == [
        ("ANY", templates.DEFAULTS[("appointment_confirmation", "en")][1]), ("ANY", default_zh[1])]
    for key in (SMS_KEY, ANY_KEY):
        shown = await ok(await tenant.call("department_head", PREVIEW, **key), "messageTemplatePreview")
        assert shown["template"] == {"channel": "ANY", "isDefault": True, "version": 0}
        assert shown["body"].startswith("张三，您已预约")
    # a reset dropped nothing more than the text: a second one (of a key reset already) changes nothing
    before, written = await rows(tenant), await writes(tenant)
    again = await ok(await tenant.call("admin", RESET_AT, **SMS_KEY, version=0), "messageTemplateReset")
    assert (again["isDefault"], again["version"]) == (True, 0)
    assert await rows(tenant) == before and await writes(tenant) == written
    assert written == ["create", "create", "delete", "delete"]


async def test_a_reset_of_a_key_never_written_changes_nothing(tenant: Tenant) -> None:
    stale = await tenant.call("admin", RESET_AT, **SMS_KEY, version=1)
    assert stale.codes == ["CONFLICT"]
    back = await ok(await tenant.call("admin", RESET_AT, **SMS_KEY, version=0), "messageTemplateReset")
    assert (back["channel"], back["isDefault"], back["version"]) == ("ANY", True, 0)
    back = await ok(await tenant.call("admin", RESET_AT, **ANY_KEY), "messageTemplateReset")
    assert (back["channel"], back["isDefault"], back["version"]) == ("ANY", True, 0)
    assert await rows(tenant) == [] and await writes(tenant) == []
    first = await ok(await tenant.call("admin", SET, input=a_template(), version=0), "messageTemplateSet")
    assert first["version"] == 1


# -- two first writes of one key at once (PostgreSQL) ----------------------------------------------------------------


async def _first_write_racing(tenant: Tenant, version: int | None) -> Any:
    """Another admin's first write of the key under way (inserted, not committed) when this one, finding no row to
    lock, inserts too and waits on the key; the other then commits."""
    async with another_transaction() as other:
        await other.execute(
            'INSERT INTO "message_template" ("id", "institution_id", "created_at", "cause", "channel", "language", '
            '"subject", "body", "version", "updated_at") VALUES ($1, $2, now(), $3, $4, $5, $6, $7, 1, now())',
            uuid.uuid4(), tenant.id, "appointment_confirmation", "sms", "zh-CN", "Theirs", "Theirs {patient_name}")
        answer = asyncio.ensure_future(tenant.call("admin", SET, input=a_template(body="Mine {patient_name}"),
                                                   version=version))
        await until_waiting([answer])
    return await asyncio.wait_for(answer, 30)


@pytest.mark.skipif(BACKEND == "sqlite", reason="concurrent transactions: PostgreSQL")
async def test_a_write_without_a_version_replaces_a_first_write_racing_it(tenant: Tenant) -> None:
    """Found in review: "leave it out to write regardless", yet a first write racing another one of the same key was
    answered CONFLICT (the unique key refused its insert). The last write wins, on the trail as an update."""
    written = await ok(await _first_write_racing(tenant, None), "messageTemplateSet")
    assert (written["body"], written["version"], written["isDefault"]) == ("Mine {patient_name}", 2, False)
    [row] = await MessageTemplate.filter(institution_id=tenant.id)
    assert (row.body, row.version) == ("Mine {patient_name}", 2)
    events = await tenant.audit_events(resource_type="message_template", outcome="allowed")
    assert [(e.action, e.resource_id) for e in events] == [("update", row.id)]


@pytest.mark.skipif(BACKEND == "sqlite", reason="concurrent transactions: PostgreSQL")
async def test_a_write_stating_version_0_loses_to_a_first_write_racing_it(tenant: Tenant) -> None:
    """The twin: the writer stated it read no template of the institution's own; one was written meanwhile."""
    stale = await _first_write_racing(tenant, 0)
    assert stale.codes == ["CONFLICT"] and stale.errors[0]["extensions"]["field"] == "version"
    [row] = await MessageTemplate.filter(institution_id=tenant.id)
    assert (row.body, row.version) == ("Theirs {patient_name}", 1)
    assert await tenant.audit_events(resource_type="message_template", outcome="allowed") == []
