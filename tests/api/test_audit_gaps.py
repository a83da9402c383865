"""Gaps in the audit trail and leaks of patient data, identifiers or secrets found by a fresh review: each test
failed before its fix (docs/security.md, Audit; docs/architecture.md, Errors for front-end teams)."""

from __future__ import annotations

import json
import uuid

import pytest

from resolvers.context import Services
from tests.api.test_questionnaire_response_fhir import answered, export
from tests.api.test_visits import ADD_CODE, a_visit
from tests.audit.test_search_reads import about, last_seq, reads_since
from tests.factories import Tenant, make_patient
from tests.surveys import questionnaire

SECRET_PHONE = "13812345678"
SECRET_NAME = "Zelda Quokkafield"


# -- syntax errors never echo a value of the document ------------------------------------------------------


@pytest.mark.parametrize("document", [
    f'query {{ patients(first: 5, filter: {{phone: "a" "{SECRET_PHONE}"}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5, filter: {{phone: "a" {SECRET_PHONE}}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5, filter: {{name: "a" """{SECRET_NAME}"""}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5 "{SECRET_NAME}") {{ nodes {{ id }} }} }}',
])
async def test_a_syntax_error_does_not_echo_a_value_of_the_document(tenant: Tenant, document: str) -> None:
    """graphql-core's parser names the token it did not expect with its value (`found String '13812345678'`):
    a phone, a name or an ID the client sent came back in the error (and on to whatever records errors), where
    every other input error names the place and the rule only."""
    reply = await tenant.call("front_desk", document)

    assert reply.codes == ["BAD_USER_INPUT"]
    (error,) = reply.errors
    assert error["message"].startswith("Syntax Error: ") and error["locations"]
    text = json.dumps(reply.body, ensure_ascii=False)
    assert SECRET_PHONE not in text and SECRET_NAME not in text


# -- a cohort lookup reads the clinical fact it matched -----------------------------------------------------

COHORT = """query($code: String!, $status: ProcedureStatus) {
  patientsWithCode(codeSystem: ICD10, code: $code, status: $status) { nodes { id } } }"""


async def test_a_cohort_lookup_is_a_read_of_the_code_on_each_file_it_lists(tenant: Tenant) -> None:
    """`patientsWithCode` tells that each file it lists carries a diagnosis code, a clinical fact, even when the page
    shows only ids: that is on each listed patient's read record (the clinical class, `visit_code.code`), as a
    search that finds a file by its phone is (tests/audit/test_search_reads.py). Before, the lookup left no event
    at all: a nurse could list who has a diagnosis without a trace in those patients' reports."""
    with_code, without = await make_patient(tenant, "nurse"), await make_patient(tenant, "nurse")
    for pid, code in ((with_code, "K08.1"), (without, "K02.1")):
        visit = (await a_visit(tenant, pid, role="nurse"))["id"]
        assert (await tenant.call("nurse", ADD_CODE, id=visit, input={"kind": "CONDITION", "code": code})).errors == []
    before = await last_seq(tenant)

    reply = await tenant.call("nurse", COHORT, code="K08.1")

    assert reply.data["patientsWithCode"]["nodes"] == [{"id": str(with_code)}], reply.errors
    [read] = about(await reads_since(tenant, before), with_code)
    assert (read.outcome, read.actor_id) == ("allowed", tenant.staff_ids["nurse"])
    assert "clinical" in read.field_classes.split(",") and "visit_code.code" in read.fields_read.split(",")
    assert not about(await reads_since(tenant, before), without)


async def test_a_refused_cohort_lookup_lists_nobody_and_is_recorded(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse")
    visit = (await a_visit(tenant, pid, role="nurse"))["id"]
    assert (await tenant.call("nurse", ADD_CODE, id=visit, input={"kind": "CONDITION", "code": "K08.1"})).errors == []
    before = await last_seq(tenant)

    reply = await tenant.call("front_desk", COHORT, code="K08.1")

    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    events = [e for e in await tenant.audit_events() if e.seq > before]
    assert [(e.action, e.outcome, e.actor_id) for e in events] == [("read", "denied", tenant.staff_ids["front_desk"])]
    assert not about(events, pid)


# -- a FHIR export that withholds free text records the refusal ----------------------------------------------


async def test_free_text_a_fhir_export_withholds_is_a_refused_read_on_the_record(tenant: Tenant,
                                                                                 services: Services) -> None:
    """`questionnaireResponseExportFhir` marks a free-text answer withheld for a role without
    `questionnaire_response.text: read` (an admin): the same refusal the `comments` and `answers { text }` fields
    note (FORBIDDEN, recorded) was recorded nowhere, so the trail said the admin read the response and nothing
    else. Now a denied read (`forbidden_field`) of the response, naming its patient, is on the trail with it."""
    q = await questionnaire(tenant)
    pid, response_id = await answered(tenant, services, q)
    before = await last_seq(tenant)

    resource = await export(tenant, "admin", response_id)

    assert "gums" not in json.dumps(resource)
    events = [e for e in await tenant.audit_events(resource_type="questionnaire_response") if e.seq > before]
    assert sorted((e.outcome, e.reason) for e in events) == [("allowed", ""), ("denied", "forbidden_field")]
    for event in events:
        assert (event.resource_id, event.patient_id, event.actor_id) == (uuid.UUID(response_id), pid,
                                                                          tenant.staff_ids["admin"])
        assert "response_answer.text" not in event.fields_read


async def test_an_export_with_the_text_read_records_no_refusal(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    _, response_id = await answered(tenant, services, q)
    before = await last_seq(tenant)

    await export(tenant, "department_head", response_id)

    events = [e for e in await tenant.audit_events(resource_type="questionnaire_response") if e.seq > before]
    assert [(e.outcome, "response_answer.text" in e.fields_read) for e in events] == [("allowed", True)]
