"""An improvement item found in surveys cites its finding through the API: a questionnaire of the institution
(its key) and a month, aggregates only (no response can be cited). A survey item needs its citation and no
other item has one; bad input, an unknown or foreign questionnaire, and roles or departments outside reach
write nothing and the refusals are on record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models import AuditEvent, ImprovementItem, Questionnaire
from tests.conftest import SqlCounter
from tests.factories import Tenant
from tests.surveys import questionnaire

CITATION = "surveyCitation { questionnaireKey month version title { zhCN en } }"
CREATE = f"""mutation($input: ImprovementCreateInput!) {{ improvementCreate(input: $input) {{
  id source departmentId {CITATION} }} }}"""
LIST = f"""query($first: Int) {{ improvementItems(first: $first) {{ edges {{ node {{ id source {CITATION} }} }} }} }}"""
THIS_MONTH = datetime.now(UTC).strftime("%Y-%m")  # the institution's zone is a few hours from UTC at most
LAST_YEAR = f"{int(THIS_MONTH[:4]) - 1}-{THIS_MONTH[5:]}"


def item(tenant: Tenant, department: str = "A", **fields: Any) -> dict[str, Any]:
    return {"problem": "Patients rate the waiting times low", "departmentId": str(tenant.departments[department].id),
            "deadline": str(date.today() + timedelta(days=30)), **fields}


def cites(key: Any, month: str = LAST_YEAR) -> dict[str, Any]:
    return {"questionnaireKey": str(key), "month": month}


async def rows(tenant: Tenant) -> list[dict[str, Any]]:
    return list(await ImprovementItem.filter(institution_id=tenant.id).order_by("id").values())


async def test_a_survey_item_cites_a_questionnaire_and_month(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    reply = await tenant.call("department_head", CREATE, input=item(tenant, source="SURVEY",
                                                                     surveyCitation=cites(q.key)))
    assert reply.errors == [], reply.errors
    created = reply.data["improvementCreate"]
    assert created["source"] == "SURVEY" and created["surveyCitation"] == {
        "questionnaireKey": str(q.key), "month": LAST_YEAR, "version": q.version,
        "title": {"zhCN": "门诊满意度调查", "en": q.title.get("en")}}
    [row] = await rows(tenant)
    assert (row["survey_questionnaire_key"], row["survey_month"]) == (q.key, LAST_YEAR)
    [record] = await tenant.audit_events(action="create", resource_type="improvement")
    assert {"survey_questionnaire_key", "survey_month"} <= set(record.fields_read.split(","))
    listed = (await tenant.call("support_agent", LIST)).data["improvementItems"]["edges"]
    assert [e["node"]["surveyCitation"] for e in listed] == [created["surveyCitation"]]
    plain = await tenant.call("department_head", CREATE, input=item(tenant))  # a ticket item cites nothing
    assert plain.errors == [] and plain.data["improvementCreate"]["surveyCitation"] is None


async def test_the_current_month_may_be_cited(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    reply = await tenant.call("support_agent", CREATE, input=item(tenant, source="SURVEY",
                                                                   surveyCitation=cites(q.key, THIS_MONTH)))
    assert reply.errors == [] and reply.data["improvementCreate"]["surveyCitation"]["month"] == THIS_MONTH


async def test_bad_citations_write_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    foreign = await questionnaire(other_tenant)
    next_year = f"{int(THIS_MONTH[:4]) + 1}-{THIS_MONTH[5:]}"
    cases = [
        (item(tenant, source="SURVEY"), "BAD_USER_INPUT", "input.surveyCitation"),
        (item(tenant, source="SURVEY", surveyCitation=None), "BAD_USER_INPUT", "input.surveyCitation"),
        (item(tenant, source="TICKET", surveyCitation=cites(q.key)), "BAD_USER_INPUT", "input.surveyCitation"),
        (item(tenant, source="INTERNAL_CHECK", surveyCitation=cites(q.key)), "BAD_USER_INPUT", "input.surveyCitation"),
        (item(tenant, surveyCitation=cites(q.key)), "BAD_USER_INPUT", "input.surveyCitation"),  # the default source
        *((item(tenant, source="SURVEY", surveyCitation=cites(q.key, month)), "BAD_USER_INPUT",
           "input.surveyCitation.month")
          for month in ("2026-13", "2026-1", "26-01", "2026-00", "2026-01-01", "", "十二月", next_year)),
        (item(tenant, source="SURVEY", surveyCitation=cites("not-an-id")), "BAD_USER_INPUT",
         "input.surveyCitation.questionnaireKey"),
        (item(tenant, source="SURVEY", surveyCitation=cites(uuid.uuid4())), "NOT_FOUND",
         "input.surveyCitation.questionnaireKey"),
        (item(tenant, source="SURVEY", surveyCitation=cites(foreign.key)), "NOT_FOUND",
         "input.surveyCitation.questionnaireKey"),
        (item(tenant, source="SURVEY", surveyCitation=cites(q.id)), "NOT_FOUND",  # a version's id is no key
         "input.surveyCitation.questionnaireKey"),
    ]
    for data, code, field in cases:
        reply = await tenant.call("department_head", CREATE, input=data)
        assert reply.codes == [code], (data, reply.errors)
        assert reply.errors[0]["extensions"].get("field") == field, (data, reply.errors)
    assert await rows(tenant) == []
    denied = await tenant.audit_events(outcome="denied", resource_type="questionnaire")
    assert [(e.actor_id, e.reason, e.resource_id) for e in denied] == [
        (tenant.staff_ids["department_head"], "not_found", None)] * 3


async def test_citing_is_denied_where_keeping_the_list_is(tenant: Tenant) -> None:
    q = await questionnaire(tenant)
    for role in ("nurse", "front_desk", "doctor", "admin", "compliance_officer"):
        reply = await tenant.call(role, CREATE, input=item(tenant, source="SURVEY", surveyCitation=cites(q.key)))
        assert reply.codes == ["FORBIDDEN"], role
    other_department = await tenant.call("department_head", CREATE, input=item(
        tenant, "B", source="SURVEY", surveyCitation=cites(q.key)))
    assert other_department.codes == ["FORBIDDEN"]
    assert await rows(tenant) == []
    denied = [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]
    assert (tenant.staff_ids["admin"], "forbidden") in denied and (tenant.staff_ids["nurse"], "forbidden") in denied
    assert (tenant.staff_ids["department_head"], "outside_department") in denied
    assert await AuditEvent.filter(institution_id=tenant.id, outcome="allowed", resource_type="improvement",
                                   action="create").count() == 0


async def test_a_page_of_cited_items_costs_the_same_whatever_its_size(tenant: Tenant,
                                                                      sql_counter: SqlCounter) -> None:
    keys = [(await questionnaire(tenant)).key for _ in range(3)]
    for n in range(6):
        reply = await tenant.call("support_agent", CREATE, input=item(tenant, source="SURVEY",
                                                                       surveyCitation=cites(keys[n % 3])))
        assert reply.errors == [], reply.errors
    counts = []
    for first in (2, 6):
        sql_counter.statements.clear()
        edges = (await tenant.call("support_agent", LIST, first=first)).data["improvementItems"]["edges"]
        assert len(edges) == first and all(e["node"]["surveyCitation"]["version"] == 1 for e in edges)
        counts.append(len(sql_counter.statements))
    assert counts[0] == counts[1]


async def test_a_new_cited_item_reads_its_questionnaire_once(tenant: Tenant, sql_counter: SqlCounter) -> None:
    """improvementCreate checked the cited questionnaire, then read it again for its answer (found in review): it
    now answers with the newest version it read as it checked, the one a read of the item shows."""
    first = await questionnaire(tenant)
    await Questionnaire.create(institution_id=tenant.id, key=first.key, version=2, status="active",
                               title={**first.title, "en": "Outpatient satisfaction, revised"},
                               anonymous=False, respondent="patient", items=first.items, scoring=first.scoring)
    sql_counter.statements.clear()
    reply = await tenant.call("support_agent", CREATE, input=item(tenant, source="SURVEY",
                                                                   surveyCitation=cites(first.key)))
    assert reply.errors == [], reply.errors
    reads = [s for s in sql_counter.statements if 'FROM "questionnaire"' in s]
    assert len(reads) == 1, reads
    created = reply.data["improvementCreate"]["surveyCitation"]
    assert (created["version"], created["title"]["en"]) == (2, "Outpatient satisfaction, revised")
    listed = (await tenant.call("support_agent", LIST)).data["improvementItems"]["edges"]
    assert [e["node"]["surveyCitation"] for e in listed] == [created]


async def test_a_month_before_the_years_reports_deal_in_is_refused(tenant: Tenant) -> None:
    """Found in review: the month was checked for its shape and for having begun, not for its year, so "0001-01" or
    "1999-12" was cited, a month no survey report can show (surveyReport and ticketReport take the years from
    2000 on)."""
    q = await questionnaire(tenant)
    for month in ("0000-01", "0001-01", "1999-12"):
        reply = await tenant.call("support_agent", CREATE, input=item(tenant, source="SURVEY",
                                                                       surveyCitation=cites(q.key, month)))
        assert reply.codes == ["BAD_USER_INPUT"], month
        assert reply.errors[0]["extensions"]["field"] == "input.surveyCitation.month"
        assert reply.errors[0]["extensions"]["reason"] == "out_of_range"
    assert await rows(tenant) == []
    first = await tenant.call("support_agent", CREATE, input=item(tenant, source="SURVEY",
                                                                   surveyCitation=cites(q.key, "2000-01")))
    assert first.errors == [], first.errors
