"""Survey instruments through the API: questionnaires of every item kind written and read back typed,
definition errors naming their place with nothing written, edits in place (revision compare-and-set),
versions immutable once answered (the edit is the next version, the answered one untouched), one active
version per key, the shipped templates adopted in one call, FHIR R4 export validated by fhir.resources and
the import -> export round trip, imports refused where careloop cannot represent them, every role's denied
twin (nothing written, one denial on record), tenant isolation, and a page at a fixed SQL cost."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

from core.questionnaire_fhir import EXTENSION
from models import AuditEvent, Questionnaire, QuestionnaireResponse
from resolvers import questionnaire as questionnaire_resolver
from resolvers.questionnaire_templates import TEMPLATES
from tests.conftest import BACKEND, SqlCounter
from tests.factories import Response, Tenant, gql
from tests.locks import another_transaction, until_waiting
from tests.partners import make_partnership
from tests.patients import open_account

Arm = Callable[[], None]
TEXT = "{ zhCN en }"
ITEM = f"""linkId kind text {TEXT} required counts anchors {{ value text {TEXT} }} options {{ code text {TEXT} }}
           enableWhen {{ linkId operator answerNumber answerBoolean answerCode }}"""
FIELDS = f"""id key version revision status title {TEXT} purpose {TEXT} respondent subject anonymous template
  responseCount author {{ id }}
  items {{ {ITEM} items {{ {ITEM} }} }}
  scoring {{ method satisfiedAt npsItem csatItem low {{ anyItemAtMost npsAtMost }} }}"""
CREATE = f"mutation($input: QuestionnaireCreateInput!) {{ questionnaireCreate(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $input: QuestionnaireUpdateInput!, $revision: Int!) {{
  questionnaireUpdate(id: $id, input: $input, revision: $revision) {{ newVersion questionnaire {{ {FIELDS} }} }} }}"""
ACTIVATE = "mutation($id: ID!) { questionnaireActivate(id: $id) { id status version } }"
RETIRE = "mutation($id: ID!) { questionnaireRetire(id: $id) { id status version } }"
ADOPT = f"mutation($t: QuestionnaireTemplateCode!) {{ questionnaireAdopt(template: $t) {{ {FIELDS} }} }}"
IMPORT = f"mutation($json: String!) {{ questionnaireImportFhir(json: $json) {{ {FIELDS} }} }}"
EXPORT = "query($id: ID!) { questionnaireExportFhir(id: $id) }"
ONE = f"query($id: ID!) {{ questionnaire(id: $id) {{ {FIELDS} }} }}"
LIST = """query($status: QuestionnaireStatus, $key: ID, $first: Int, $after: String) {
  questionnaires(status: $status, key: $key, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { id version status responseCount author { name } } } }"""
TEMPLATE_LIST = (f"{{ questionnaireTemplates {{ code title {TEXT} respondent subject anonymous "
                 "items { linkId kind } scoring { method csatItem npsItem } } }")


def t(zh: str, en: str | None = None) -> dict[str, Any]:
    return {"zhCN": zh, "en": en}


ANCHORS = [{"value": 1, "text": t("很不满意", "Very dissatisfied")},
           {"value": 5, "text": t("很满意", "Very satisfied")}]
OPTIONS = [{"code": "phone", "text": t("电话", "Phone")}, {"code": "mail", "text": t("信件", "Letter")}]

# every kind: Likert, a conditional text, a section of yes/no, choice and a conditional multiple choice,
# NPS, CSAT
ITEMS: list[dict[str, Any]] = [
    {"linkId": "reception", "kind": "LIKERT", "text": t("前台接诊", "Reception"), "required": True,
     "anchors": ANCHORS},
    {"linkId": "why", "kind": "TEXT", "text": t("哪里做得不好？", "What went wrong?"),
     "enableWhen": {"linkId": "reception", "operator": "LESS_OR_EQUAL", "answerNumber": 2}},
    {"linkId": "more", "kind": "SECTION", "text": t("其他", "More"), "items": [
        {"linkId": "again", "kind": "YES_NO", "text": t("会再来吗？"), "counts": True},
        {"linkId": "channel", "kind": "CHOICE", "text": t("怎么联系您？"), "options": OPTIONS},
        {"linkId": "topics", "kind": "MULTI_CHOICE", "text": t("关心的话题"), "options": [
            {"code": "diet", "text": t("饮食")}, {"code": "care", "text": t("护理")},
            {"code": "cost", "text": t("费用")}],
         "enableWhen": {"linkId": "channel", "operator": "EQUAL", "answerCode": "mail"}},
    ]},
    {"linkId": "nps", "kind": "NPS", "text": t("推荐可能性", "Would you recommend us?"), "required": True},
    {"linkId": "overall", "kind": "CSAT", "text": t("总体满意度", "Overall"), "anchors": ANCHORS},
]
SCORING = {"method": "MEAN", "satisfiedAt": 75, "npsItem": "nps", "csatItem": "overall",
           "low": {"anyItemAtMost": 2, "npsAtMost": 6}}


def ok(reply: Response, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def a_questionnaire(**fields: Any) -> dict[str, Any]:
    return {"title": t("门诊满意度", "Outpatient satisfaction"), "purpose": t("每月通报"), "items": ITEMS,
            "scoring": SCORING, **fields}


async def create(tenant: Tenant, role: str = "admin", **fields: Any) -> dict[str, Any]:
    return dict(ok(await tenant.call(role, CREATE, input=a_questionnaire(**fields)), "questionnaireCreate"))


async def written(tenant: Tenant) -> tuple[Any, ...]:
    """Every questionnaire column, to prove a refusal wrote nothing."""
    return tuple(await Questionnaire.filter(institution_id=tenant.id).order_by("id").values())


async def denials(tenant: Tenant) -> int:
    return await AuditEvent.filter(institution_id=tenant.id, outcome="denied").count()


async def answered(tenant: Tenant, questionnaire_id: str) -> None:
    """A response straight into the table, as if someone had answered (answering has its own API and tests): with
    neither patient nor invitation, so filed under a closed month, where responseCount counts an anonymous one."""
    await QuestionnaireResponse.create(institution_id=tenant.id, questionnaire_id=uuid.UUID(questionnaire_id),
                                       source="paper", month="2020-01", score=75.0, satisfied=True)


# -- writing and reading -----------------------------------------------------------------------------


async def test_an_admin_writes_a_questionnaire_of_every_kind_and_staff_read_it_typed(tenant: Tenant) -> None:
    created = await create(tenant)
    assert (created["version"], created["revision"], created["status"], created["respondent"], created["subject"],
            created["anonymous"], created["template"], created["responseCount"]) == (
        1, 1, "DRAFT", "PATIENT", "VISIT", False, None, 0)
    assert created["author"] == {"id": str(tenant.staff_ids["admin"])}
    assert created["title"] == {"zhCN": "门诊满意度", "en": "Outpatient satisfaction"}
    assert created["purpose"] == {"zhCN": "每月通报", "en": None}
    reception, why, more, nps, overall = created["items"]
    assert (reception["kind"], reception["required"], reception["counts"], reception["options"]) == (
        "LIKERT", True, True, [])
    assert reception["anchors"] == [{"value": 1, "text": {"zhCN": "很不满意", "en": "Very dissatisfied"}},
                                    {"value": 5, "text": {"zhCN": "很满意", "en": "Very satisfied"}}]
    assert why["enableWhen"] == {"linkId": "reception", "operator": "LESS_OR_EQUAL", "answerNumber": 2,
                                 "answerBoolean": None, "answerCode": None}
    assert (why["required"], why["counts"]) == (False, False)
    assert more["kind"] == "SECTION" and [i["kind"] for i in more["items"]] == ["YES_NO", "CHOICE", "MULTI_CHOICE"]
    assert more["items"][0]["counts"] is True and more["items"][1]["options"][1] == {
        "code": "mail", "text": {"zhCN": "信件", "en": "Letter"}}
    assert more["items"][2]["enableWhen"]["answerCode"] == "mail"
    assert (nps["kind"], nps["counts"], overall["kind"], overall["counts"]) == ("NPS", False, "CSAT", True)
    assert created["scoring"] == {"method": "MEAN", "satisfiedAt": 75.0, "npsItem": "nps", "csatItem": "overall",
                                  "low": {"anyItemAtMost": 2, "npsAtMost": 6}}
    [event] = await tenant.audit_events(resource_type="questionnaire", action="create")
    assert (str(event.resource_id), event.outcome, event.patient_id) == (created["id"], "allowed", None)
    assert {"items", "scoring", "title"} <= set(event.fields_read.split(","))

    for role in ("nurse", "front_desk", "department_head"):
        assert ok(await tenant.call(role, ONE, id=created["id"]), "questionnaire") == created
    reads = await tenant.audit_events(resource_type="questionnaire", action="read", resource_id=created["id"])
    assert [e.actor_id for e in reads] == [tenant.staff_ids[r] for r in ("nurse", "front_desk", "department_head")]


async def test_lists_filter_by_status_and_key_in_pages(tenant: Tenant) -> None:
    first = await create(tenant)
    second = await create(tenant, "department_head")
    ok(await tenant.call("admin", ACTIVATE, id=second["id"]), "questionnaireActivate")
    page = ok(await tenant.call("nurse", LIST, first=1), "questionnaires")
    assert [n["id"] for n in page["nodes"]] == [first["id"]] and page["pageInfo"]["hasNextPage"]
    rest = ok(await tenant.call("nurse", LIST, first=1, after=page["pageInfo"]["endCursor"]), "questionnaires")
    assert [n["id"] for n in rest["nodes"]] == [second["id"]] and not rest["pageInfo"]["hasNextPage"]
    assert [n["id"] for n in ok(await tenant.call("nurse", LIST, status="ACTIVE"), "questionnaires")["nodes"]] == [
        second["id"]]
    assert [n["id"] for n in ok(await tenant.call("nurse", LIST, key=first["key"]), "questionnaires")["nodes"]] == [
        first["id"]]
    assert (await tenant.audit_events(resource_type="questionnaire", action="read", actor_id=tenant.staff_ids["nurse"]))
    for variables, field in (({"first": 0}, "first"), ({"first": 101}, "first"), ({"after": "nope"}, "after"),
                             ({"key": "nope"}, "key")):
        reply = await tenant.call("nurse", LIST, **variables)
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field


def _item(index: int, **changes: Any) -> list[dict[str, Any]]:
    items = copy.deepcopy(ITEMS)
    items[index] = {**items[index], **changes}
    return items


def _in_section(index: int, **changes: Any) -> list[dict[str, Any]]:
    items = copy.deepcopy(ITEMS)
    section = items[2]["items"]
    section[index] = {**section[index], **changes}
    return items


BAD_DEFINITIONS = [
    # Likert
    ({"items": _item(0, anchors=[{"value": 6, "text": t("六")}])}, "input.items[0].anchors"),
    ({"items": _item(0, anchors=[ANCHORS[0], ANCHORS[0]])}, "input.items[0].anchors"),
    ({"items": _item(0, text=t(""))}, "input.items[0].text.zhCN"),
    ({"items": _item(0, text=t("x" * 501))}, "input.items[0].text.zhCN"),
    ({"items": _item(0, text=t("题", "x" * 501))}, "input.items[0].text.en"),
    ({"items": _item(0, options=OPTIONS)}, "input.items[0].options"),
    ({"items": _item(0, linkId="1st")}, "input.items[0].linkId"),
    ({"items": _item(4, linkId="nps")}, "input.items[4].linkId"),
    # text
    ({"items": _item(1, counts=True)}, "input.items[1].counts"),
    ({"items": _item(1, anchors=ANCHORS)}, "input.items[1].anchors"),
    ({"items": _item(1, enableWhen={"linkId": "nps", "operator": "LESS", "answerNumber": 2})},
     "input.items[1].enableWhen.linkId"),  # a later item
    ({"items": _item(1, enableWhen={"linkId": "reception", "operator": "LESS", "answerNumber": 9})},
     "input.items[1].enableWhen.answer"),
    ({"items": _item(1, enableWhen={"linkId": "reception", "operator": "LESS"})}, "input.items[1].enableWhen.answer"),
    ({"items": _item(1, enableWhen={"linkId": "reception", "operator": "LESS", "answerNumber": 2,
                                    "answerBoolean": True})}, "input.items[1].enableWhen.answer"),
    # section
    ({"items": _item(2, items=[])}, "input.items[2].items"),
    ({"items": _item(2, required=True)}, "input.items[2].required"),
    # yes/no
    ({"items": _in_section(0, options=OPTIONS)}, "input.items[2].items[0].options"),
    ({"items": _in_section(2, enableWhen={"linkId": "again", "operator": "GREATER", "answerBoolean": True})},
     "input.items[2].items[2].enableWhen.operator"),
    # choice and multiple choice
    ({"items": _in_section(1, options=OPTIONS[:1])}, "input.items[2].items[1].options"),
    ({"items": _in_section(1, options=[*OPTIONS, OPTIONS[0]])}, "input.items[2].items[1].options[2].code"),
    ({"items": _in_section(1, options=[{"code": "a b", "text": t("甲")}, OPTIONS[0]])},
     "input.items[2].items[1].options[0].code"),
    ({"items": _in_section(1, options=[{"code": f"o{n}", "text": t("甲")} for n in range(21)])},
     "input.items[2].items[1].options"),
    ({"items": _in_section(2, options=None)}, "input.items[2].items[2].options"),
    ({"items": _in_section(2, enableWhen={"linkId": "channel", "operator": "EQUAL", "answerCode": "fax"})},
     "input.items[2].items[2].enableWhen.answer"),
    ({"items": _in_section(2, enableWhen={"linkId": "topics", "operator": "EQUAL", "answerCode": "diet"})},
     "input.items[2].items[2].enableWhen.linkId"),  # itself, not earlier
    # NPS and CSAT
    ({"items": _item(3, anchors=ANCHORS)}, "input.items[3].anchors"),
    ({"items": _item(4, anchors=[{"value": 0, "text": t("零")}])}, "input.items[4].anchors"),
    # the whole
    ({"items": []}, "input.items"),
    ({"items": [{"linkId": f"q{n}", "kind": "LIKERT", "text": t("题")} for n in range(101)]}, "input.items"),
    ({"title": t(" ")}, "input.title.zhCN"),
    ({"title": t("标\u202e题")}, "input.title.zhCN"),
    ({"purpose": t("x" * 1001)}, "input.purpose.zhCN"),
    # scoring
    ({"scoring": {**SCORING, "satisfiedAt": 101}}, "input.scoring.satisfiedAt"),
    ({"scoring": {**SCORING, "npsItem": "reception"}}, "input.scoring.npsItem"),
    ({"scoring": {**SCORING, "csatItem": "gone"}}, "input.scoring.csatItem"),
    ({"scoring": {**SCORING, "low": {"anyItemAtMost": 5}}}, "input.scoring.low.anyItemAtMost"),
    ({"scoring": {**SCORING, "low": {"npsAtMost": 10}}}, "input.scoring.low.npsAtMost"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_DEFINITIONS)
async def test_bad_definitions_name_their_place_and_write_nothing(tenant: Tenant, fields: dict[str, Any],
                                                                  field: str) -> None:
    before, events = await written(tenant), await tenant.audit_count()
    reply = await tenant.call("admin", CREATE, input=a_questionnaire(**fields))
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await written(tenant) == before and await tenant.audit_count() == events


# -- edits and versions --------------------------------------------------------------------------------


async def test_an_edit_without_responses_is_in_place_with_the_revision_read(tenant: Tenant) -> None:
    created = await create(tenant)
    edited = ok(await tenant.call("department_head", UPDATE, id=created["id"], revision=1,
                                  input={"title": t("门诊患者满意度"), "anonymous": True}), "questionnaireUpdate")
    assert edited["newVersion"] is False
    mine = edited["questionnaire"]
    assert (mine["id"], mine["version"], mine["revision"], mine["title"], mine["anonymous"]) == (
        created["id"], 1, 2, {"zhCN": "门诊患者满意度", "en": None}, True)
    assert mine["items"] == created["items"]
    [event] = await tenant.audit_events(resource_type="questionnaire", action="update")
    assert set(event.fields_read.split(",")) == {"title", "anonymous"}

    before = await written(tenant)
    for revision, variables, code, field in (
            (1, {"anonymous": False}, "CONFLICT", "revision"),  # stale
            (2, {}, "BAD_USER_INPUT", "input"),
            (2, {"items": ITEMS[:1]}, "BAD_USER_INPUT", "input.scoring.npsItem"),  # items and scoring checked together
            (2, {"title": None}, "BAD_USER_INPUT", "input.title")):
        reply = await tenant.call("admin", UPDATE, id=created["id"], revision=revision, input=variables)
        assert reply.codes == [code] and reply.errors[0]["extensions"]["field"] == field, reply.errors
        assert code != "CONFLICT" or reply.errors[0]["extensions"]["reason"] == "stale_version"
    assert await written(tenant) == before

    # items and scoring replaced together; purpose dropped
    again = ok(await tenant.call("admin", UPDATE, id=created["id"], revision=2, input={
        "items": ITEMS[:1], "scoring": {"method": "TOP_TWO_BOX", "satisfiedAt": 100}, "purpose": None}),
        "questionnaireUpdate")["questionnaire"]
    assert ([i["linkId"] for i in again["items"]], again["scoring"]["method"], again["purpose"], again["revision"]) == (
        ["reception"], "TOP_TWO_BOX", None, 3)


async def test_an_answered_version_never_changes_the_edit_is_the_next_version(tenant: Tenant) -> None:
    created = await create(tenant)
    ok(await tenant.call("admin", ACTIVATE, id=created["id"]), "questionnaireActivate")
    await answered(tenant, created["id"])
    answered_row = await Questionnaire.get(id=created["id"]).values()

    edited = ok(await tenant.call("department_head", UPDATE, id=created["id"], revision=2,  # activated: 2
                                  input={"items": ITEMS[:1] + ITEMS[3:]}), "questionnaireUpdate")
    assert edited["newVersion"] is True
    new = edited["questionnaire"]
    assert (new["key"], new["version"], new["revision"], new["status"], new["responseCount"]) == (
        created["key"], 2, 1, "DRAFT", 0)
    assert new["id"] != created["id"] and [i["linkId"] for i in new["items"]] == ["reception", "nps", "overall"]
    assert new["title"] == created["title"] and new["author"] == {"id": str(tenant.staff_ids["department_head"])}
    assert await Questionnaire.get(id=created["id"]).values() == answered_row  # untouched
    old = ok(await tenant.call("admin", ONE, id=created["id"]), "questionnaire")
    assert (old["status"], old["responseCount"], old["items"]) == ("ACTIVE", 1, created["items"])
    [event] = await tenant.audit_events(resource_type="questionnaire", action="create", resource_id=new["id"])
    assert "version" in event.fields_read.split(",")

    # the old version cannot be edited again (a newer one exists); the new one is edited in place
    before = await written(tenant)
    older = await tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True})
    assert older.codes == ["CONFLICT"] and older.errors[0]["extensions"]["field"] == "id"
    assert older.errors[0]["extensions"]["reason"] == "newer_version_exists"
    assert await written(tenant) == before
    in_place = ok(await tenant.call("admin", UPDATE, id=new["id"], revision=1, input={"anonymous": True}),
                  "questionnaireUpdate")
    assert (in_place["newVersion"], in_place["questionnaire"]["id"], in_place["questionnaire"]["revision"]) == (
        False, new["id"], 2)

    # activating the new version retires the answered one
    active = ok(await tenant.call("admin", ACTIVATE, id=new["id"]), "questionnaireActivate")
    assert (active["status"], active["version"]) == ("ACTIVE", 2)
    versions = ok(await tenant.call("admin", LIST, key=created["key"]), "questionnaires")["nodes"]
    assert [(n["version"], n["status"], n["responseCount"]) for n in versions] == [(1, "RETIRED", 1),
                                                                                  (2, "ACTIVE", 0)]
    retired = await tenant.audit_events(resource_type="questionnaire", action="update", resource_id=created["id"])
    assert [e.fields_read for e in retired] == ["status", "status"]  # activated, then retired


async def test_two_versions_made_from_the_same_answered_one_one_conflicts(tenant: Tenant) -> None:
    created = await create(tenant)
    await answered(tenant, created["id"])
    ok(await tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True}),
       "questionnaireUpdate")
    # an edit of version 1 made from a stale read: version 2 exists
    again = await tenant.call("department_head", UPDATE, id=created["id"], revision=1, input={"anonymous": False})
    assert again.codes == ["CONFLICT"] and again.errors[0]["extensions"]["reason"] == "newer_version_exists"
    assert await Questionnaire.filter(institution_id=tenant.id, key=created["key"]).count() == 2


async def test_one_active_version_per_key_and_retiring(tenant: Tenant) -> None:
    created = await create(tenant)
    active = ok(await tenant.call("department_head", ACTIVATE, id=created["id"]), "questionnaireActivate")
    assert active["status"] == "ACTIVE"
    before = await written(tenant)
    twice = await tenant.call("admin", ACTIVATE, id=created["id"])
    assert twice.codes == ["CONFLICT"] and await written(tenant) == before
    other = await create(tenant)  # another questionnaire: its activation leaves this one alone
    ok(await tenant.call("admin", ACTIVATE, id=other["id"]), "questionnaireActivate")
    assert ok(await tenant.call("admin", ONE, id=created["id"]), "questionnaire")["status"] == "ACTIVE"

    retired = ok(await tenant.call("department_head", RETIRE, id=created["id"]), "questionnaireRetire")
    assert retired["status"] == "RETIRED"
    before = await written(tenant)
    twice = await tenant.call("admin", RETIRE, id=created["id"])
    assert twice.codes == ["CONFLICT"] and twice.errors[0]["extensions"]["reason"] == "illegal_transition"
    edit = await tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True})
    assert edit.codes == ["CONFLICT"] and edit.errors[0]["extensions"]["field"] == "id"
    assert edit.errors[0]["extensions"]["reason"] == "illegal_transition"
    assert await written(tenant) == before
    # a retired version can be put back in use
    assert ok(await tenant.call("admin", ACTIVATE, id=created["id"]), "questionnaireActivate")["status"] == "ACTIVE"
    draft = await create(tenant)
    assert ok(await tenant.call("admin", RETIRE, id=draft["id"]), "questionnaireRetire")["status"] == "RETIRED"
    events = await tenant.audit_events(resource_type="questionnaire", action="update", resource_id=created["id"])
    assert [e.fields_read for e in events] == ["status", "status", "status"]


# -- at the same time ---------------------------------------------------------------------------------


@pytest.fixture
def both_read_first(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Once armed, the next two lookups of a questionnaire wait for each other: both requests have read it before
    either writes, so only the database decides."""
    def arm() -> None:
        barrier, found = asyncio.Barrier(2), [0]
        find = questionnaire_resolver._find

        async def find_then_wait(*args: Any) -> Any:
            row = await find(*args)
            found[0] += 1
            if found[0] <= 2:
                await asyncio.wait_for(barrier.wait(), timeout=10)
            return row

        monkeypatch.setattr(questionnaire_resolver, "_find", find_then_wait)

    return arm


async def test_two_edits_of_an_answered_version_at_once_make_one_new_version(tenant: Tenant,
                                                                             both_read_first: Arm) -> None:
    created = await create(tenant)
    await answered(tenant, created["id"])
    both_read_first()
    replies = await asyncio.gather(
        tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True}),
        tenant.call("department_head", UPDATE, id=created["id"], revision=1, input={"respondent": "FAMILY"}))
    assert sorted(tuple(r.codes) for r in replies) == [(), ("CONFLICT",)], [r.body for r in replies]
    assert await Questionnaire.filter(institution_id=tenant.id, key=created["key"]).count() == 2


async def test_two_edits_in_place_at_once_one_conflicts(tenant: Tenant, both_read_first: Arm) -> None:
    created = await create(tenant)
    both_read_first()
    replies = await asyncio.gather(
        tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True}),
        tenant.call("department_head", UPDATE, id=created["id"], revision=1, input={"respondent": "FAMILY"}))
    assert sorted(tuple(r.codes) for r in replies) == [(), ("CONFLICT",)], [r.body for r in replies]
    row = await Questionnaire.get(id=created["id"])
    assert row.revision == 2 and (row.anonymous, row.respondent) in ((True, "patient"), (False, "family"))


async def test_an_answer_saved_while_an_edit_runs_makes_the_edit_a_new_version(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    created = await create(tenant)
    check = questionnaire_resolver._check_editable

    async def answered_meanwhile(*args: Any) -> None:  # after the edit read the version, before it writes
        await check(*args)
        await answered(tenant, created["id"])

    monkeypatch.setattr(questionnaire_resolver, "_check_editable", answered_meanwhile)
    edited = ok(await tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True}),
                "questionnaireUpdate")
    assert (edited["newVersion"], edited["questionnaire"]["version"]) == (True, 2)
    assert (await Questionnaire.get(id=created["id"])).anonymous is False


async def test_two_versions_activated_at_once_leave_one_active(tenant: Tenant, both_read_first: Arm) -> None:
    created = await create(tenant)
    await answered(tenant, created["id"])
    second = await tenant.call("admin", UPDATE, id=created["id"], revision=1, input={"anonymous": True})
    new_id = second.data["questionnaireUpdate"]["questionnaire"]["id"]
    both_read_first()
    replies = await asyncio.gather(tenant.call("admin", ACTIVATE, id=created["id"]),
                                   tenant.call("department_head", ACTIVATE, id=new_id))
    assert [r.errors for r in replies] == [[], []]
    statuses = await Questionnaire.filter(institution_id=tenant.id, key=created["key"]).values_list("status",
                                                                                                   flat=True)
    assert sorted(statuses) == ["active", "retired"]


# -- templates ------------------------------------------------------------------------------------------


async def test_the_shipped_templates_are_listed(tenant: Tenant) -> None:
    shipped = ok(await tenant.call("front_desk", TEMPLATE_LIST), "questionnaireTemplates")
    assert [s["code"] for s in shipped] == ["OUTPATIENT_SATISFACTION", "NURSING_BY_DOCTORS", "NPS", "CSAT"]
    outpatient, doctors, nps, csat = shipped
    assert [i["kind"] for i in outpatient["items"]] == ["LIKERT"] * 6 + ["CSAT", "TEXT"]
    assert outpatient["title"] == {"zhCN": "门诊患者满意度调查", "en": "Outpatient satisfaction survey"}
    assert (doctors["respondent"], doctors["subject"], doctors["anonymous"]) == ("STAFF", "DEPARTMENT", True)
    assert [i["kind"] for i in doctors["items"]] == ["LIKERT"] * 4 + ["CSAT", "TEXT"]
    assert (nps["scoring"]["npsItem"], [i["kind"] for i in nps["items"]]) == ("recommend", ["NPS", "TEXT"])
    assert (csat["scoring"], [i["kind"] for i in csat["items"]]) == (
        {"method": "TOP_TWO_BOX", "csatItem": "satisfaction", "npsItem": None}, ["CSAT", "TEXT"])
    assert await tenant.audit_events(resource_type="questionnaire_template", action="read")


@pytest.mark.parametrize("code", sorted(TEMPLATES))
async def test_each_template_is_adopted_in_one_call(tenant: Tenant, code: str) -> None:
    adopted = ok(await tenant.call("department_head", ADOPT, t=code.upper()), "questionnaireAdopt")
    template = TEMPLATES[code]
    assert (adopted["status"], adopted["version"], adopted["template"], adopted["anonymous"]) == (
        "ACTIVE", 1, code.upper(), template.anonymous)
    assert [i["linkId"] for i in adopted["items"]] == [i["link_id"] for i in template.items]
    assert adopted["title"] == {"zhCN": template.title["zh-CN"], "en": template.title["en"]}
    before = await written(tenant)
    again = await tenant.call("admin", ADOPT, t=code.upper())
    assert again.codes == ["CONFLICT"] and again.errors[0]["extensions"]["field"] == "template"
    assert again.errors[0]["extensions"]["reason"] == "template_in_use"
    assert await written(tenant) == before
    # once retired, it can be adopted anew (a new questionnaire)
    ok(await tenant.call("admin", RETIRE, id=adopted["id"]), "questionnaireRetire")
    anew = ok(await tenant.call("admin", ADOPT, t=code.upper()), "questionnaireAdopt")
    assert anew["key"] != adopted["key"] and anew["status"] == "ACTIVE"


async def _one_copy_adopted(tenant: Tenant, replies: list[Response], seq: int) -> None:
    """One adopt answered, every other a CONFLICT on the template (never INTERNAL_SERVER_ERROR), one copy and one
    record written."""
    assert sorted(tuple(r.codes) for r in replies) == [()] + [("CONFLICT",)] * (len(replies) - 1), [
        r.body for r in replies]
    assert all(r.errors[0]["extensions"]["field"] == "template" for r in replies if r.errors)
    rows = await Questionnaire.filter(institution_id=tenant.id, template="nps")
    assert [(r.status, r.version) for r in rows] == [("active", 1)]
    created = await AuditEvent.filter(institution_id=tenant.id, seq__gt=seq, resource_type="questionnaire")
    assert [(e.action, e.outcome, str(e.resource_id)) for e in created] == [("create", "allowed", str(rows[0].id))]


async def _seq(tenant: Tenant) -> int:
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    return last.seq if last else 0


async def test_a_template_adopted_three_times_at_once_is_one_copy(tenant: Tenant) -> None:
    """Found in review: each adopt looked for a live copy before writing, outside any lock, so adopts at once
    each found none and wrote one: several live copies of one template."""
    seq = await _seq(tenant)
    replies = await asyncio.gather(*(tenant.call(role, ADOPT, t="NPS")
                                     for role in ("admin", "department_head", "admin")))
    await _one_copy_adopted(tenant, list(replies), seq)


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_two_adopts_waiting_for_the_templates_lock_make_one_copy(tenant: Tenant) -> None:
    """Both adopts start while another transaction holds what adopting locks (the institution's row, FOR NO KEY
    UPDATE), so both wait, then look for a live copy one after the other: the second finds the first's (before:
    neither waited, and both wrote a copy, every run)."""
    seq = await _seq(tenant)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM institution WHERE id = $1 FOR NO KEY UPDATE", tenant.id)
        adopting = [asyncio.create_task(tenant.call(role, ADOPT, t="NPS")) for role in ("admin", "department_head")]
        await until_waiting(adopting, sessions=len(adopting))
    replies = await asyncio.wait_for(asyncio.gather(*adopting), 10)
    await _one_copy_adopted(tenant, list(replies), seq)


async def test_a_retired_copy_is_not_put_back_beside_the_copy_adopted_since(tenant: Tenant) -> None:
    """Found in review: questionnaireActivate put a retired copy of a template back in use while the copy adopted
    since was live, two live copies of one template. It is a CONFLICT now, nothing written; once the newer copy is
    retired, the old one is put back."""
    first = ok(await tenant.call("admin", ADOPT, t="NPS"), "questionnaireAdopt")
    ok(await tenant.call("admin", RETIRE, id=first["id"]), "questionnaireRetire")
    second = ok(await tenant.call("admin", ADOPT, t="NPS"), "questionnaireAdopt")
    for live in ("ACTIVE", "DRAFT"):
        if live == "DRAFT":  # the newer copy answered, then edited: its next version, a draft, is live too
            await answered(tenant, second["id"])
            edited = ok(await tenant.call("admin", UPDATE, id=second["id"], revision=second["revision"],
                                          input={"anonymous": True}), "questionnaireUpdate")
            ok(await tenant.call("admin", RETIRE, id=second["id"]), "questionnaireRetire")
            assert edited["questionnaire"]["status"] == "DRAFT"
        before, events = await written(tenant), await tenant.audit_count()
        refused = await tenant.call("department_head", ACTIVATE, id=first["id"])
        assert refused.codes == ["CONFLICT"] and refused.errors[0]["extensions"]["field"] == "id", refused.errors
        assert await written(tenant) == before and await tenant.audit_count() == events
    # the twin: the newer copy's live version retired, the old copy is put back in use
    ok(await tenant.call("admin", RETIRE, id=edited["questionnaire"]["id"]), "questionnaireRetire")
    assert ok(await tenant.call("department_head", ACTIVATE, id=first["id"]), "questionnaireActivate")["status"] == \
        "ACTIVE"
    # the copy in use's own next version is activated (it retires the active one)
    await answered(tenant, first["id"])
    following = ok(await tenant.call("admin", UPDATE, id=first["id"], revision=first["revision"] + 2,
                                     input={"anonymous": True}), "questionnaireUpdate")["questionnaire"]
    assert ok(await tenant.call("admin", ACTIVATE, id=following["id"]), "questionnaireActivate")["status"] == "ACTIVE"
    assert ok(await tenant.call("admin", ONE, id=first["id"]), "questionnaire")["status"] == "RETIRED"


# -- FHIR ---------------------------------------------------------------------------------------------


async def export(tenant: Tenant, questionnaire_id: str, role: str = "admin") -> dict[str, Any]:
    return dict(json.loads(ok(await tenant.call(role, EXPORT, id=questionnaire_id), "questionnaireExportFhir")))


R4_ITEM_TYPES = {"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time", "string", "text",
                 "url", "choice", "open-choice", "attachment", "reference", "quantity"}


def check_r4(resource: dict[str, Any]) -> None:
    """Valid as FHIR R4 (fhir.resources' R4B model, the same Questionnaire structure) with R4's item types."""
    FhirQuestionnaire.model_validate(resource)

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            assert item["type"] in R4_ITEM_TYPES
            walk(item.get("item") or [])

    walk(resource["item"])
    assert resource["status"] in ("draft", "active", "retired", "unknown")


async def test_the_fhir_export_is_a_valid_r4_questionnaire(tenant: Tenant) -> None:
    created = await create(tenant)
    resource = await export(tenant, created["id"], "nurse")
    check_r4(resource)
    assert (resource["id"], resource["url"], resource["version"], resource["status"], resource["language"]) == (
        created["id"], f"urn:uuid:{created['key']}", "1", "draft", "zh-CN")
    assert resource["title"] == "门诊满意度"
    assert resource["_title"]["extension"][0]["extension"] == [
        {"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": "Outpatient satisfaction"}]
    reception, why, more, nps, overall = resource["item"]
    assert (reception["type"], reception["required"], nps["type"], overall["type"]) == (
        "integer", True, "integer", "integer")
    assert {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 10} in nps["extension"]
    assert why["enableWhen"] == [{"question": "reception", "operator": "<=", "answerInteger": 2}]
    assert (why["type"], more["type"]) == ("text", "group")
    again, channel, topics = more["item"]
    assert (again["type"], channel["type"], topics["type"], topics["repeats"]) == ("boolean", "choice", "choice", True)
    assert channel["answerOption"][1]["valueCoding"]["code"] == "mail"
    assert topics["enableWhen"] == [{"question": "channel", "operator": "=", "answerCoding": {"code": "mail"}}]
    assert await tenant.audit_events(resource_type="questionnaire", action="read", resource_id=created["id"])


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without what names the stored version (id, canonical URL, version, status)."""
    return {k: v for k, v in resource.items() if k not in ("id", "url", "version", "status")}


async def test_import_then_export_gives_the_same_resource(tenant: Tenant) -> None:
    created = await create(tenant)
    adopted = [ok(await tenant.call("admin", ADOPT, t=code.upper()), "questionnaireAdopt") for code in TEMPLATES]
    for original in (created, *adopted):
        resource = await export(tenant, original["id"])
        imported = ok(await tenant.call("department_head", IMPORT, json=json.dumps(resource)),
                      "questionnaireImportFhir")
        assert (imported["status"], imported["version"], imported["template"]) == ("DRAFT", 1, None)
        assert imported["key"] != original["key"]
        for same in ("title", "purpose", "items", "scoring", "respondent", "subject", "anonymous"):
            assert imported[same] == original[same], same
        again = await export(tenant, imported["id"])
        check_r4(again)
        assert _comparable(again) == _comparable(resource)


async def test_not_equal_exports_as_fhir_means_it_and_imports_back(tenant: Tenant) -> None:
    """Ours hides an item whose question is unanswered (or hidden); R4's bare != shows it, since no answer equals
    the value (found in review: the export said something else to other FHIR tools, and an imported != behaved
    otherwise here). Ours goes out as exists true and != on the question, enableBehavior all, and comes back as !=;
    every other operator is one enableWhen, as before."""
    items = [*ITEMS[:2], {"linkId": "better", "kind": "TEXT", "text": t("还能做得更好吗？"),
                          "enableWhen": {"linkId": "reception", "operator": "NOT_EQUAL", "answerNumber": 5}},
             *ITEMS[2:]]
    created = await create(tenant, items=items)
    resource = await export(tenant, created["id"])
    check_r4(resource)
    why, better = resource["item"][1], resource["item"][2]
    assert (why["enableWhen"], "enableBehavior" in why) == (
        [{"question": "reception", "operator": "<=", "answerInteger": 2}], False)
    assert (better["enableWhen"], better["enableBehavior"]) == ([
        {"question": "reception", "operator": "exists", "answerBoolean": True},
        {"question": "reception", "operator": "!=", "answerInteger": 5}], "all")
    imported = ok(await tenant.call("admin", IMPORT, json=json.dumps(resource)), "questionnaireImportFhir")
    assert imported["items"] == created["items"]
    assert imported["items"][2]["enableWhen"] == {"linkId": "reception", "operator": "NOT_EQUAL", "answerNumber": 5,
                                                  "answerBoolean": None, "answerCode": None}
    assert _comparable(await export(tenant, imported["id"])) == _comparable(resource)


def _plain_fhir(**changes: Any) -> dict[str, Any]:
    """A FHIR questionnaire from elsewhere: no careloop extensions, English as the primary language."""
    return {"resourceType": "Questionnaire", "status": "active", "language": "en", "title": "Stay",
            "_title": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/translation", "extension": [
                {"url": "lang", "valueCode": "zh-CN"}, {"url": "content", "valueString": "住院"}]}]},
            "item": [{"linkId": "rate", "type": "integer", "text": "Rate us", "_text": {"extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/translation", "extension": [
                    {"url": "lang", "valueCode": "zh"}, {"url": "content", "valueString": "请评分"}]}]},
                "required": True, "extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 1},
                    {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 5}]}], **changes}


async def test_a_questionnaire_from_elsewhere_imports_with_defaults(tenant: Tenant) -> None:
    imported = ok(await tenant.call("admin", IMPORT, json=json.dumps(_plain_fhir())), "questionnaireImportFhir")
    assert imported["title"] == {"zhCN": "住院", "en": "Stay"}
    [item] = imported["items"]
    assert (item["kind"], item["text"], item["required"], item["counts"]) == (
        "LIKERT", {"zhCN": "请评分", "en": "Rate us"}, True, True)
    assert (imported["scoring"]["method"], imported["scoring"]["satisfiedAt"], imported["respondent"]) == (
        "MEAN", 75.0, "PATIENT")


def _with_item(**changes: Any) -> dict[str, Any]:
    resource = _plain_fhir()
    resource["item"][0] = {**resource["item"][0], **changes}
    return resource


def _second(item: dict[str, Any]) -> dict[str, Any]:
    resource = _plain_fhir()
    resource["item"].append({"linkId": "next", "text": "Next", "_text": resource["item"][0]["_text"], **item})
    return resource


def _a_question(link_id: str) -> dict[str, Any]:
    """A yes/no question with its Chinese text, as a group's item."""
    return {"linkId": link_id, "type": "boolean", "text": "Again?", "_text": _plain_fhir()["item"][0]["_text"]}


def _anchor(point: int, label: str) -> dict[str, Any]:
    return {"url": f"{EXTENSION}questionnaire-item-anchor", "extension": [{"url": "value", "valueInteger": point},
                                                                          {"url": "zh-CN", "valueString": label}]}


REFUSED_IMPORTS = [
    ("not json", "json"),
    (json.dumps([1]), "json.resourceType"),
    (json.dumps({"resourceType": "Patient"}), "json.resourceType"),
    (json.dumps(_plain_fhir(language="fr")), "json.language"),
    (json.dumps(_plain_fhir(item=[])), "json.item"),
    (json.dumps(_plain_fhir(modifierExtension=[{"url": "x", "valueBoolean": True}])), "json.modifierExtension"),
    (json.dumps(_second({"type": "display"})), "json.item[1].type"),
    (json.dumps(_second({"type": "open-choice", "answerOption": [{"valueCoding": {"code": "a"}}]})),
     "json.item[1].type"),
    (json.dumps(_second({"type": "date"})), "json.item[1].type"),
    (json.dumps(_second({"type": "integer"})), "json.item[1].type"),  # no range we know
    (json.dumps(_second({"type": "choice", "answerValueSet": "http://example.org/vs"})), "json.item[1].answerValueSet"),
    (json.dumps(_second({"type": "choice", "answerOption": [{"valueString": "a"}, {"valueString": "b"}]})),
     "json.item[1].answerOption[0]"),
    (json.dumps(_second({"type": "text", "repeats": True})), "json.item[1].repeats"),
    (json.dumps(_second({"type": "text", "initial": [{"valueString": "x"}]})), "json.item[1].initial"),
    (json.dumps(_second({"type": "text", "readOnly": True})), "json.item[1].readOnly"),
    (json.dumps(_second({"type": "text", "enableWhen": [
        {"question": "rate", "operator": "<", "answerInteger": 3},
        {"question": "rate", "operator": ">", "answerInteger": 1}], "enableBehavior": "all"})),
     "json.item[1].enableWhen"),
    (json.dumps(_second({"type": "text", "enableWhen": [{"question": "rate", "operator": "exists",
                                                         "answerBoolean": True}]})),
     "json.item[1].enableWhen[0].operator"),
    (json.dumps(_second({"type": "text", "enableWhen": [{"question": "rate", "operator": "<",
                                                         "answerDecimal": 2.5}]})), "json.item[1].enableWhen[0]"),
    # R4's bare != shows its item while the question is unanswered, ours hides it: only the pair ours exports as
    # (found in review)
    (json.dumps(_second({"type": "text", "enableWhen": [{"question": "rate", "operator": "!=", "answerInteger": 3}]})),
     "json.item[1].enableWhen[0].operator"),
    (json.dumps(_second({"type": "text", "enableBehavior": "any", "enableWhen": [
        {"question": "rate", "operator": "exists", "answerBoolean": True},
        {"question": "rate", "operator": "!=", "answerInteger": 3}]})), "json.item[1].enableBehavior"),
    (json.dumps(_second({"type": "text", "enableWhen": [
        {"question": "rate", "operator": "exists", "answerBoolean": True},
        {"question": "rate", "operator": "!=", "answerInteger": 3}]})), "json.item[1].enableBehavior"),
    (json.dumps(_second({"type": "text", "enableBehavior": "all", "enableWhen": [
        {"question": "rate", "operator": "exists", "answerBoolean": True},
        {"question": "other", "operator": "!=", "answerInteger": 3}]})), "json.item[1].enableWhen[1].question"),
    (json.dumps(_second({"type": "text", "enableBehavior": "all", "enableWhen": [
        {"question": "rate", "operator": "exists", "answerBoolean": False},
        {"question": "rate", "operator": "!=", "answerInteger": 3}]})), "json.item[1].enableWhen"),
    (json.dumps(_second({"type": "text", "enableBehavior": "all", "enableWhen": [
        {"question": "rate", "operator": "exists", "answerBoolean": True},
        {"question": "rate", "operator": "!=", "answerDecimal": 3.5}]})), "json.item[1].enableWhen[1]"),
    (json.dumps(_second({"type": "group", "item": [{"linkId": "g", "type": "group", "text": "G", "item": [
        {"linkId": "h", "type": "text", "text": "H"}]}]})), "json.item[1].item[0].type"),
    (json.dumps(_with_item(modifierExtension=[{"url": "x", "valueBoolean": True}])), "json.item[0].modifierExtension"),
    # checked like a draft typed in, named inside the JSON
    (json.dumps(_plain_fhir(title="Stay", _title=None)), "json.title.zhCN"),
    (json.dumps(_second({"type": "text", "linkId": "rate"})), "json.items[1].linkId"),
    (json.dumps(_second({"type": "text", "enableWhen": [{"question": "rate", "operator": "<",
                                                         "answerInteger": 7}]})), "json.items[1].enableWhen.answer"),
    ("[" * 20_000 + "]" * 20_000, "json"),  # deeper than the JSON parser goes
    # a flag that is no boolean is refused, not read by its truthiness (found in review: "false" made the item
    # required, a multiple choice)
    (json.dumps(_with_item(required="false")), "json.item[0].required"),
    (json.dumps(_second({"type": "choice", "repeats": "false", "answerOption": [
        {"valueCoding": {"code": code, "display": code, "_display": _plain_fhir()["item"][0]["_text"]}}
        for code in ("a", "b")]})), "json.item[1].repeats"),
    (json.dumps(_second({"type": "text", "readOnly": "false"})), "json.item[1].readOnly"),
    # a constraint on answers we do not hold is refused, not replaced by ours (found in review: a 0-10 item declared
    # Likert imported as 1-5, and free text of at most 100 characters took 2,000; both exported so)
    (json.dumps(_with_item(extension=[{"url": f"{EXTENSION}questionnaire-item-kind", "valueCode": "likert"},
                                      {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                                      {"url": "http://hl7.org/fhir/StructureDefinition/maxValue",
                                       "valueInteger": 10}])), "json.item[0].extension"),
    (json.dumps(_second({"type": "text", "maxLength": 100})), "json.item[1].maxLength"),
    (json.dumps(_with_item(maxLength=1)), "json.item[0].maxLength"),
    # a group takes no answer: required (R4: one of its items answered) or counted is refused, as a section typed in
    # is, not dropped (found in review: both imported as a plain section, exported so)
    (json.dumps(_second({"type": "group", "required": True, "item": [_a_question("h")]})), "json.item[1].required"),
    (json.dumps(_second({"type": "group", "extension": [{"url": f"{EXTENSION}questionnaire-item-counts",
                                                         "valueBoolean": True}], "item": [_a_question("h")]})),
     "json.item[1].extension"),
    # a scale point labelled twice is refused, as questionnaireCreate refuses it, not one label kept (found in review)
    (json.dumps(_with_item(extension=[*_plain_fhir()["item"][0]["extension"], _anchor(1, "很差"), _anchor(1, "差")])),
     "json.item[0].extension"),
    # so are anchors on an item without a scale to label (found in review: dropped without a word)
    (json.dumps(_second({"type": "choice", "extension": [_anchor(1, "差")], "answerOption": [
        {"valueCoding": {"code": code, "display": code, "_display": _plain_fhir()["item"][0]["_text"]}}
        for code in ("a", "b")]})), "json.items[1].anchors"),
]


@pytest.mark.parametrize(("text", "field"), REFUSED_IMPORTS)
async def test_imports_careloop_cannot_represent_are_refused(tenant: Tenant, text: str, field: str) -> None:
    before, events = await written(tenant), await tenant.audit_count()
    reply = await tenant.call("admin", IMPORT, json=text)
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await written(tenant) == before and await tenant.audit_count() == events


# -- who may ------------------------------------------------------------------------------------------


WRITES: dict[str, tuple[str, Any]] = {
    "questionnaireCreate": (CREATE, lambda d: {"input": a_questionnaire()}),
    "questionnaireUpdate": (UPDATE, lambda d: {"id": d["id"], "revision": 1, "input": {"anonymous": True}}),
    "questionnaireActivate": (ACTIVATE, lambda d: {"id": d["id"]}),
    "questionnaireRetire": (RETIRE, lambda d: {"id": d["id"]}),
    "questionnaireAdopt": (ADOPT, lambda d: {"t": "NPS"}),
    "questionnaireImportFhir": (IMPORT, lambda d: {"json": json.dumps(_plain_fhir())}),
}
READS: dict[str, tuple[str, Any]] = {
    "questionnaire": (ONE, lambda d: {"id": d["id"]}),
    "questionnaires": (LIST, lambda d: {}),
    "questionnaireTemplates": (TEMPLATE_LIST, lambda d: {}),
    "questionnaireExportFhir": (EXPORT, lambda d: {"id": d["id"]}),
}


async def _caller(tenant: Tenant, role: str) -> Any:
    """``call(query, **variables)`` as a staff role, a patient in the portal or a partner client."""
    if role == "patient":
        return (await open_account(tenant)).call
    if role == "partner":
        return (await make_partnership(tenant)).call  # every scope a partner may hold

    async def call(query: str, **variables: Any) -> Response:
        return await gql(tenant.client, query, variables, tenant.tokens[role])

    return call


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "support_agent", "compliance_officer", "patient",
                                  "partner"])
@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_who_may_not_write_questionnaires(tenant: Tenant, role: str, operation: str) -> None:
    draft = await create(tenant)
    call = await _caller(tenant, role)
    query, variables = WRITES[operation]
    before, refused = await written(tenant), await denials(tenant)
    reply = await call(query, **variables(draft))
    assert reply.codes == ["FORBIDDEN"] and reply.data == {operation: None}, reply.errors
    assert await written(tenant) == before
    assert await denials(tenant) == refused + 1


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "patient", "partner"])
async def test_an_empty_edit_by_one_who_may_not_edit_is_forbidden_and_audited(tenant: Tenant, role: str) -> None:
    """Found in review: an empty input was answered BAD_USER_INPUT before the caller's rights were checked, so one
    without the right (a patient's or partner's token too) got an answer other than FORBIDDEN and no denial reached
    the trail. Its allowed twin: an admin's empty edit is BAD_USER_INPUT on input, nothing written."""
    draft = await create(tenant)
    call = await _caller(tenant, role)
    before, refused = await written(tenant), await denials(tenant)
    reply = await call(UPDATE, id=draft["id"], revision=1, input={})
    assert reply.codes == ["FORBIDDEN"] and reply.data == {"questionnaireUpdate": None}, reply.errors
    assert await written(tenant) == before
    assert await denials(tenant) == refused + 1
    kept = await tenant.call("admin", UPDATE, id=draft["id"], revision=1, input={})
    assert kept.codes == ["BAD_USER_INPUT"] and kept.errors[0]["extensions"]["field"] == "input"
    assert await written(tenant) == before and await denials(tenant) == refused + 1


@pytest.mark.parametrize("role", ["doctor", "support_agent", "compliance_officer", "patient", "partner"])
@pytest.mark.parametrize("operation", sorted(READS))
async def test_who_may_not_read_questionnaires(tenant: Tenant, role: str, operation: str) -> None:
    draft = await create(tenant)
    call = await _caller(tenant, role)
    query, variables = READS[operation]
    refused = await denials(tenant)
    reply = await call(query, **variables(draft))
    assert reply.codes == ["FORBIDDEN"] and reply.data in (None, {operation: None}), reply.errors
    assert await denials(tenant) == refused + 1


async def test_another_institutions_questionnaire_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = await create(other_tenant)
    before, mine = await written(other_tenant), await written(tenant)
    for query, variables in ((ONE, {"id": theirs["id"]}), (EXPORT, {"id": theirs["id"]}),
                             (UPDATE, {"id": theirs["id"], "revision": 1, "input": {"anonymous": True}}),
                             (ACTIVATE, {"id": theirs["id"]}), (RETIRE, {"id": theirs["id"]}),
                             (ONE, {"id": str(uuid.uuid4())})):
        refused = await denials(tenant)
        reply = await tenant.call("admin", query, **variables)
        assert reply.codes == ["NOT_FOUND"], reply.errors
        assert await denials(tenant) == refused + 1
    assert await written(other_tenant) == before and await written(tenant) == mine
    assert ok(await tenant.call("admin", LIST), "questionnaires")["nodes"] == []
    assert ok(await tenant.call("admin", LIST, key=theirs["key"]), "questionnaires")["nodes"] == []
    # adopting a template another institution adopted is fine
    ok(await other_tenant.call("admin", ADOPT, t="NPS"), "questionnaireAdopt")
    ok(await tenant.call("admin", ADOPT, t="NPS"), "questionnaireAdopt")


# -- cost ---------------------------------------------------------------------------------------------


async def test_a_page_costs_the_same_sql_whatever_its_size(tenant: Tenant, sql_counter: SqlCounter) -> None:
    made = [await create(tenant, "admin" if n % 2 else "department_head") for n in range(6)]
    for row in made[:3]:
        await answered(tenant, row["id"])
    counts = []
    for first in (2, 6):
        start = len(sql_counter.statements)
        page = ok(await tenant.call("nurse", LIST, first=first), "questionnaires")
        counts.append(len(sql_counter.statements) - start)
        assert len(page["nodes"]) == first
    assert counts[0] == counts[1]
    assert [n["responseCount"] for n in page["nodes"]] == [1, 1, 1, 0, 0, 0]
    assert len({n["author"]["name"] for n in page["nodes"]}) == 2


COUNTED = "{ questionnaires(first: 10) { nodes { id responseCount } } }"
UNCOUNTED = "{ questionnaires(first: 10) { nodes { id } } }"


async def test_response_count_reads_the_settings_only_for_an_anonymous_version(tenant: Tenant,
                                                                               sql_counter: SqlCounter) -> None:
    """responseCount read which versions of the page name nobody, though each row says it, and the survey settings
    for every page (found in review): it costs its grouped count alone now, and the settings when an anonymous
    version is on the page; the counts are the same. Its denied twin (a doctor may not read questionnaires) counts
    nothing and is on record."""
    made = [await create(tenant) for _ in range(3)]
    for row in made:
        await answered(tenant, row["id"])

    async def cost(query: str) -> tuple[int, dict[str, int]]:
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("nurse", query), "questionnaires")["nodes"]
        return len(sql_counter.statements) - start, {n["id"]: n.get("responseCount") for n in nodes}

    await cost(UNCOUNTED)  # the nurse signed in
    (counted, counts), (uncounted, _) = await cost(COUNTED), await cost(UNCOUNTED)
    assert counted - uncounted == 1 and counts == {row["id"]: 1 for row in made}
    await Questionnaire.filter(id=made[0]["id"]).update(anonymous=True)
    (counted, counts), (uncounted, _) = await cost(COUNTED), await cost(UNCOUNTED)
    assert counted - uncounted == 2  # the settings: one response is a cell smaller than min_cell (5)
    assert counts == {made[0]["id"]: 0, made[1]["id"]: 1, made[2]["id"]: 1}

    refused_before, start = await denials(tenant), len(sql_counter.statements)
    refused = await tenant.call("doctor", COUNTED)
    assert refused.codes == ["FORBIDDEN"] and await denials(tenant) == refused_before + 1
    assert [s for s in sql_counter.statements[start:] if "questionnaire_response" in s or "survey_settings" in s] == []
