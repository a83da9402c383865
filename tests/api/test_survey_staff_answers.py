"""Staff rating a department (the seeds' doctors rating the nursing service) through the API: a staff
questionnaire answered without an invitation, anonymously (no patient, no staff member on the response), once per
rater, questionnaire, department and month (the response's id is the rater's keyed slot); the report shows the
department's month once min_cell raters answered, with no invitations and no response rate; patient
questionnaires refused; every other role refused and recorded with nothing written; no query or audit record
leads from a rater to their answers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from models import AuditEvent, Questionnaire, QuestionnaireResponse, ResponseAnswer
from resolvers import institution as institutions
from resolvers import questionnaire_response as answering
from resolvers.context import Services
from tests.conftest import BACKEND
from tests.factories import PASSWORD, Tenant, gql, login
from tests.locks import another_transaction, until_waiting
from tests.patients import open_account
from tests.surveys import month_closed, questionnaire, reachable

ADOPT = "mutation { questionnaireAdopt(template: NURSING_BY_DOCTORS) { id status } }"
STAFF_ANSWER = """mutation($q: ID!, $d: ID!, $answers: [SurveyAnswerInput!]!) {
  surveyStaffAnswer(questionnaireId: $q, departmentId: $d, answers: $answers) { anonymous responseId followUp } }"""
REPORT = """query($key: ID!, $month: String!, $dep: ID) {
  surveyReport(questionnaireKey: $key, from: $month, to: $month, departmentId: $dep) { minCell
    rows { departmentId month invited answered responseRate responseCount status score { status responses value } } }
}"""
RESPONSES = """query($q: ID) { questionnaireResponses(questionnaireId: $q) {
  nodes { id anonymous source month departmentId enteredById clinicianId patient { id } } } }"""
ONE = "query($id: ID!) { questionnaireResponse(id: $id) { id source enteredById patient { id } } }"
# the nursing form: four Likert items and the overall CSAT (75 on each: score 75)
RATING: list[dict[str, Any]] = [{"linkId": link, "number": 4} for link in (
    "head_nurse_management", "nurse_competence", "nurse_attitude", "cooperation", "overall")]


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def refused(reply: Any, code: str, field: str | None = None, reason: str | None = None) -> None:
    assert reply.errors, reply.data
    extensions = reply.errors[0]["extensions"]
    assert extensions["code"] == code, reply.errors
    if field is not None:
        assert extensions.get("field") == field, reply.errors
    if reason is not None:
        assert extensions.get("reason") == reason, reply.errors


async def nursing_form(tenant: Tenant) -> Questionnaire:
    adopted = ok(await tenant.call("department_head", ADOPT), "questionnaireAdopt")
    assert adopted["status"] == "ACTIVE"
    return await Questionnaire.get(id=uuid.UUID(adopted["id"]))


async def more_doctors(tenant: Tenant, services: Services, n: int) -> list[str]:
    """n more signed-in doctors of department A: their tokens."""
    found = []
    for _ in range(n):
        email = f"doctor.{uuid.uuid4().hex[:10]}@careloop.test"
        await institutions.create_account(services, tenant.institution, email=email, name="Doctor",
                                          password=PASSWORD, roles=["doctor"], departments=[tenant.departments["A"]])
        found.append(await login(tenant.client, email))
    return found


async def as_doctor(tenant: Tenant, token: str, q: Questionnaire, department: str = "A") -> Any:
    return await gql(tenant.client, STAFF_ANSWER, {"q": str(q.id), "d": str(tenant.departments[department].id),
                                                   "answers": RATING}, token)


async def written(tenant: Tenant) -> tuple[int, int, int]:
    return (await QuestionnaireResponse.filter(institution_id=tenant.id).count(),
            await ResponseAnswer.filter(institution_id=tenant.id).count(),
            await AuditEvent.filter(institution_id=tenant.id, outcome="allowed",
                                    resource_type="questionnaire_response").count())


async def test_doctors_rating_a_department_show_in_its_report_from_min_cell(tenant: Tenant,
                                                                           services: Services) -> None:
    q = await nursing_form(tenant)
    receipt = ok(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(tenant.departments["A"].id),
                                   answers=RATING), "surveyStaffAnswer")
    assert receipt == {"anonymous": True, "responseId": None, "followUp": False}
    [response] = await QuestionnaireResponse.filter(institution_id=tenant.id)
    assert (response.source, response.department_id, response.patient_id, response.entered_by_id,
            response.clinician_id, response.invitation_id, response.score) == (
        "staff", tenant.departments["A"].id, None, None, None, None, 75.0)
    zone = await institutions.zone(tenant.id)
    local = response.created_at.astimezone(zone)  # set back to the month's first instant
    assert (local.strftime("%Y-%m"), local.day, local.hour, local.minute) == (response.month, 1, 0, 0)
    assert await ResponseAnswer.filter(response_id=response.id).count() == 5
    key, dep = str(q.key), str(tenant.departments["A"].id)
    report = ok(await tenant.call("department_head", REPORT, key=key, month=response.month, dep=dep), "surveyReport")
    assert (report["minCell"], report["rows"]) == (5, [])  # an anonymous questionnaire's month shows once closed
    month = await month_closed(tenant)
    [row] = ok(await tenant.call("department_head", REPORT, key=key, month=month, dep=dep), "surveyReport")["rows"]
    # one rater: a hidden row, how many answered not told either (it would say whether the one doctor did)
    assert (row["invited"], row["answered"], row["responseRate"], row["responseCount"], row["status"]) == (
        0, 0, None, None, "TOO_FEW_RESPONSES")
    # the department head and four more doctors: five raters fill the cell
    ok(await tenant.call("department_head", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING), "surveyStaffAnswer")
    for token in await more_doctors(tenant, services, 3):
        ok(await as_doctor(tenant, token, q), "surveyStaffAnswer")
    await month_closed(tenant)
    [row] = ok(await tenant.call("department_head", REPORT, key=key, month=month, dep=dep), "surveyReport")["rows"]
    assert (row["responseCount"], row["status"], row["responseRate"]) == (5, "SHOWN", None)
    assert row["score"] == {"status": "SHOWN", "responses": 5, "value": 75.0}
    admin = ok(await tenant.call("admin", REPORT, key=key, month=month, dep=None), "surveyReport")
    assert [(r["departmentId"], r["responseCount"]) for r in admin["rows"]] == [(dep, 5)]


async def test_a_second_answer_in_the_month_is_a_conflict_another_department_is_not(tenant: Tenant) -> None:
    q = await nursing_form(tenant)
    ok(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(tenant.departments["A"].id), answers=RATING),
       "surveyStaffAnswer")
    before = await written(tenant)
    again = await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(tenant.departments["A"].id),
                              answers=RATING)
    refused(again, "CONFLICT", "questionnaireId", "answered")
    assert await written(tenant) == before
    ok(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(tenant.departments["B"].id), answers=RATING),
       "surveyStaffAnswer")
    # a new version of the same questionnaire is the same key: still answered this month
    ok(await tenant.call("department_head", "mutation($id: ID!) { questionnaireRetire(id: $id) { id } }",
                         id=str(q.id)), "questionnaireRetire")
    v2 = await Questionnaire.create(institution_id=tenant.id, key=q.key, version=2, status="active",
                                    title=q.title, respondent="staff", anonymous=True, items=q.items,
                                    scoring=q.scoring)
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(v2.id), d=str(tenant.departments["A"].id),
                              answers=RATING), "CONFLICT", "questionnaireId")
    assert (await written(tenant))[0] == before[0] + 1


async def test_two_answers_of_one_rater_at_once_write_one(tenant: Tenant) -> None:
    q = await nursing_form(tenant)
    dep = str(tenant.departments["A"].id)
    replies = await asyncio.gather(*(tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING)
                                     for _ in range(2)))
    assert sorted(r.errors[0]["extensions"]["code"] if r.errors else "OK" for r in replies) == ["CONFLICT", "OK"]
    assert await written(tenant) == (1, 5, 1)


async def test_only_a_staff_questionnaires_active_version_is_answered_this_way(tenant: Tenant) -> None:
    patients_form = await questionnaire(tenant, anonymous=True)  # respondent: patient
    dep = str(tenant.departments["A"].id)
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(patients_form.id), d=dep, answers=RATING),
            "BAD_USER_INPUT", "questionnaireId")
    q = await nursing_form(tenant)
    await Questionnaire.filter(id=q.id).update(status="retired")
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING),
            "BAD_USER_INPUT", "questionnaireId")
    await Questionnaire.filter(id=q.id).update(status="active")
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING[:2]),
            "BAD_USER_INPUT")  # required items missing
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(uuid.uuid4()), answers=RATING),
            "NOT_FOUND", "departmentId")
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(uuid.uuid4()), d=dep, answers=RATING),
            "NOT_FOUND", "questionnaireId")
    assert await written(tenant) == (0, 0, 0)


EDIT = """mutation($id: ID!, $input: QuestionnaireUpdateInput!, $revision: Int!) {
  questionnaireUpdate(id: $id, input: $input, revision: $revision) { newVersion questionnaire { respondent } } }"""


async def test_a_rating_checked_before_its_form_was_made_a_patients_one_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The doctors' form, not yet answered, is edited in place to be answered by patients (identified) after a
    doctor's rating was checked against it and before the rating locked the version. Under the lock only the status
    was checked again (found in review): the rating, stored without a rater, landed on the identified questionnaire
    and was listed at once. Now the version is checked again under the lock as at first: BAD_USER_INPUT, nothing
    written."""
    q = await nursing_form(tenant)
    dep = str(tenant.departments["A"].id)
    record = answering._record_staff

    async def edited_meanwhile(ctx: Any, questionnaire: Questionnaire, *args: Any) -> Any:  # checked, not locked
        edited = await tenant.call("department_head", EDIT, id=str(q.id), revision=q.revision,
                                   input={"respondent": "PATIENT", "subject": "VISIT", "anonymous": False})
        assert ok(edited, "questionnaireUpdate") == {"newVersion": False, "questionnaire": {"respondent": "PATIENT"}}
        return await record(ctx, questionnaire, *args)

    monkeypatch.setattr(answering, "_record_staff", edited_meanwhile)
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING),
            "BAD_USER_INPUT", "questionnaireId")
    monkeypatch.undo()
    assert await written(tenant) == (0, 0, 0)
    nodes = ok(await tenant.call("department_head", RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]
    assert nodes == []
    # the twin: a rating of a form that stays the doctors' is written
    other = await nursing_form_anew(tenant, q)
    ok(await tenant.call("doctor", STAFF_ANSWER, q=str(other.id), d=dep, answers=RATING), "surveyStaffAnswer")
    assert await written(tenant) == (1, 5, 1)


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")
async def test_a_rating_waiting_while_its_form_is_made_a_patients_one_is_refused(tenant: Tenant) -> None:
    """The same, by the database alone: another transaction holds the version (as an in-place edit does) while a
    rating comes, and makes it a patients' identified questionnaire; the rating, waiting for the version, is
    refused once it has it (before: written, every run)."""
    q = await nursing_form(tenant)
    dep = str(tenant.departments["A"].id)
    async with another_transaction() as other:
        await other.execute("SELECT 1 FROM questionnaire WHERE id = $1 FOR NO KEY UPDATE", q.id)
        rating = asyncio.create_task(tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING))
        await until_waiting([rating])
        await other.execute("UPDATE questionnaire SET respondent = 'patient', subject = 'visit', "
                            "anonymous = false, revision = revision + 1 WHERE id = $1", q.id)
    reply = await asyncio.wait_for(rating, 10)
    refused(reply, "BAD_USER_INPUT", "questionnaireId")
    assert await written(tenant) == (0, 0, 0)


async def nursing_form_anew(tenant: Tenant, retired: Questionnaire) -> Questionnaire:
    ok(await tenant.call("admin", "mutation($id: ID!) { questionnaireRetire(id: $id) { id } }", id=str(retired.id)),
       "questionnaireRetire")
    return await nursing_form(tenant)


async def test_other_tenants_questionnaires_and_departments_are_not_found(tenant: Tenant,
                                                                         other_tenant: Tenant) -> None:
    q, theirs = await nursing_form(tenant), await nursing_form(other_tenant)
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(theirs.id), d=str(tenant.departments["A"].id),
                              answers=RATING), "NOT_FOUND", "questionnaireId")
    refused(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=str(other_tenant.departments["A"].id),
                              answers=RATING), "NOT_FOUND", "departmentId")
    assert await written(tenant) == (0, 0, 0) and await written(other_tenant) == (0, 0, 0)


async def test_roles_without_the_right_are_refused_and_recorded_with_nothing_written(tenant: Tenant) -> None:
    q = await nursing_form(tenant)
    dep = str(tenant.departments["A"].id)
    for role in ("nurse", "front_desk", "support_agent", "compliance_officer", "admin"):
        refused(await tenant.call(role, STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING), "FORBIDDEN")
        [denial] = await AuditEvent.filter(institution_id=tenant.id, actor_id=tenant.staff_ids[role],
                                           outcome="denied", resource_type="questionnaire_response")
        assert (denial.action, denial.reason) == ("create", "forbidden")
    patient = await open_account(tenant, await reachable(tenant))
    refused(await patient.call(STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING), "FORBIDDEN")
    assert await AuditEvent.filter(institution_id=tenant.id, actor_kind="patient", outcome="denied",
                                   resource_type="questionnaire_response").count() == 1
    assert await written(tenant) == (0, 0, 0)


async def test_no_query_or_audit_record_leads_to_the_rater(tenant: Tenant, services: Services) -> None:
    ok(await tenant.call("admin", "mutation { surveySettingsUpdate(input: {minCell: 3}) { minCell } }"),
       "surveySettingsUpdate")
    q = await nursing_form(tenant)
    dep = str(tenant.departments["A"].id)
    mark = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    ok(await tenant.call("doctor", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING), "surveyStaffAnswer")
    ok(await tenant.call("department_head", STAFF_ANSWER, q=str(q.id), d=dep, answers=RATING), "surveyStaffAnswer")
    new = await AuditEvent.filter(seq__gt=mark.seq if mark else 0, institution_id=tenant.id).order_by("seq")
    assert [(e.actor_id, e.action, e.resource_type, e.resource_id, e.patient_id, e.reason, e.request_id)
            for e in new] == [(tenant.staff_ids[r], "create", "questionnaire_response", None, None,
                               "anonymous staff", "") for r in ("doctor", "department_head")]
    [third] = await more_doctors(tenant, services, 1)
    ok(await as_doctor(tenant, third, q), "surveyStaffAnswer")  # min_cell 3: the list shows the cell once closed
    await month_closed(tenant)
    ids = {str(r.id) for r in await QuestionnaireResponse.filter(institution_id=tenant.id)}
    assert len(ids) == 3
    raters = {str(tenant.staff_ids["doctor"]), str(tenant.staff_ids["department_head"])}
    # nothing on the trail names a response's id (until someone reads them), so nothing leads from a rater to
    # their answers
    trail = await AuditEvent.filter(institution_id=tenant.id)
    assert not {str(e.resource_id) for e in trail} & ids
    for role in ("admin", "department_head"):
        nodes = ok(await tenant.call(role, RESPONSES, q=str(q.id)), "questionnaireResponses")["nodes"]
        assert {n["id"] for n in nodes} == ids
        assert all((n["anonymous"], n["source"], n["enteredById"], n["clinicianId"], n["patient"]) ==
                   (True, "STAFF", None, None, None) for n in nodes)
        assert not raters & set(str(nodes).replace("'", " ").split())
        for response_id in ids:
            one = ok(await tenant.call(role, ONE, id=response_id), "questionnaireResponse")
            assert (one["enteredById"], one["patient"]) == (None, None)
