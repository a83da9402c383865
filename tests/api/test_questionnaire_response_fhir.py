"""Survey responses as FHIR R4 QuestionnaireResponse resources through the API (questionnaireResponseExportFhir):
valid as R4 (fhir.resources), the version's canonical, every item kind's answer type, free text only under its
own permission, an anonymous response without subject, identifier or time finer than its month, the read
audited, and its denied twins (a role without the read, a response outside reach, an unknown id)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirResponse

from core.questionnaire_fhir import RESPONSE_MONTH, WITHHELD
from models import AuditEvent, QuestionnaireResponse, SurveySettings
from resolvers.context import Services
from tests.factories import Tenant
from tests.surveys import GOOD, invited, month_closed, questionnaire

EXPORT = "query($id: ID!) { questionnaireResponseExportFhir(id: $id) }"
BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { anonymous responseId } }"""
R4_STATUSES = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def export(tenant: Tenant, role: str, response_id: str) -> dict[str, Any]:
    resource = dict(json.loads(ok(await tenant.call(role, EXPORT, id=response_id),
                                  "questionnaireResponseExportFhir")))
    FhirResponse.model_validate(resource)  # R4B's QuestionnaireResponse has R4's structure
    assert resource["status"] in R4_STATUSES
    return resource


def by_link(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every item (nested ones too) by its linkId."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found[item["linkId"]] = item
            walk(item.get("item") or [])

    walk(resource["item"])
    return found


async def answered(tenant: Tenant, services: Services, q: Any, department: str = "A") -> tuple[uuid.UUID, str]:
    pid, _, token = await invited(tenant, services, q, department=department)
    receipt = ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    return pid, receipt["responseId"]


async def test_an_identified_response_exports_as_a_valid_r4_questionnaire_response(tenant: Tenant,
                                                                                   services: Services) -> None:
    q = await questionnaire(tenant)
    pid, response_id = await answered(tenant, services, q)
    resource = await export(tenant, "department_head", response_id)
    url = f"urn:uuid:{q.key}"
    assert (resource["resourceType"], resource["id"], resource["questionnaire"], resource["status"]) == (
        "QuestionnaireResponse", response_id, f"{url}|{q.version}", "completed")
    assert resource["subject"] == {"reference": f"Patient/{pid}"} and "authored" in resource
    month = (await QuestionnaireResponse.get(id=response_id)).month
    assert {"url": RESPONSE_MONTH, "valueString": month} in resource["extension"]
    items = by_link(resource)
    assert [i["linkId"] for i in resource["item"]] == ["q1", "s1", "q5", "q6", "q7", "q8"]  # q2 hidden, unanswered
    assert [i["linkId"] for i in items["s1"]["item"]] == ["q3", "q4"] and "answer" not in items["s1"]
    assert items["q1"]["answer"] == [{"valueInteger": 5}]
    assert items["q3"]["answer"] == [{"valueInteger": 4}]
    assert items["q4"]["answer"] == [{"valueBoolean": True}]
    assert items["q5"]["answer"] == [{"valueCoding": {"system": url, "code": "web", "display": "网络"}}]
    assert sorted(a["valueCoding"]["code"] for a in items["q6"]["answer"]) == ["clean", "xray"]
    assert items["q7"]["answer"] == [{"valueInteger": 9}]
    assert items["q8"]["answer"] == [{"valueString": "Friendly nurses, my gums bled a little"}]
    read = await AuditEvent.filter(institution_id=tenant.id, action="read", resource_type="questionnaire_response",
                                   actor_id=tenant.staff_ids["department_head"]).first()
    assert read is not None and read.resource_id == uuid.UUID(response_id) and read.patient_id == pid
    assert "response_answer.text" in read.fields_read


async def test_free_text_is_withheld_without_the_text_permission(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, response_id = await answered(tenant, services, q)
    resource = await export(tenant, "admin", response_id)  # admins read scores and choices, not what was written
    q8 = by_link(resource)["q8"]
    assert "answer" not in q8 and q8["extension"] == [{"url": WITHHELD, "valueBoolean": True}]
    assert "gums" not in json.dumps(resource)
    assert by_link(resource)["q1"]["answer"] == [{"valueInteger": 5}]
    read = await AuditEvent.filter(institution_id=tenant.id, action="read", resource_type="questionnaire_response",
                                   actor_id=tenant.staff_ids["admin"]).first()
    assert read is not None and "response_answer.text" not in read.fields_read


async def test_an_anonymous_response_exports_without_subject_identifier_or_time(tenant: Tenant,
                                                                                services: Services) -> None:
    await SurveySettings.create(institution_id=tenant.id, min_cell=1)
    q = await questionnaire(tenant, anonymous=True)
    pid, row, token = await invited(tenant, services, q)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD), "surveyAnswerByLink")
    await month_closed(tenant)  # read once its month has closed
    [response] = await QuestionnaireResponse.filter(institution_id=tenant.id)
    resource = await export(tenant, "department_head", str(response.id))
    assert not {"subject", "identifier", "authored", "source", "author", "encounter", "basedOn"} & set(resource)
    assert {"url": RESPONSE_MONTH, "valueString": response.month} in resource["extension"]
    text = json.dumps(resource)
    assert str(pid) not in text and str(row.id) not in text and "Patient/" not in text
    assert by_link(resource)["q8"]["answer"] == [{"valueString": "Friendly nurses, my gums bled a little"}]


async def test_the_export_is_denied_as_reading_the_response_is(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, in_b = await answered(tenant, services, q, "B")
    for role in ("nurse", "front_desk", "doctor"):
        reply = await tenant.call(role, EXPORT, id=in_b)
        assert reply.codes == ["FORBIDDEN"] and reply.data == {"questionnaireResponseExportFhir": None}
    assert (await tenant.call("department_head", EXPORT, id=in_b)).codes == ["NOT_FOUND"]  # not their department
    assert (await tenant.call("admin", EXPORT, id=str(uuid.uuid4()))).codes == ["NOT_FOUND"]
    denied = await tenant.audit_events(outcome="denied", resource_type="questionnaire_response")
    assert [e.actor_id for e in denied] == [tenant.staff_ids[r] for r in ("nurse", "front_desk", "doctor",
                                                                          "department_head", "admin")]
    allowed_reads = await AuditEvent.filter(institution_id=tenant.id, action="read", outcome="allowed",
                                            resource_type="questionnaire_response")
    assert allowed_reads == []
