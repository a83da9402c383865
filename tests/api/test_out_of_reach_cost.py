"""Out of reach costs exactly what missing costs: the same answer, and the same SQL statements (no query that only
runs when the record exists), so timing cannot tell them apart. Each test asks for a record that exists in the
caller's institution but is out of its reach, and for a random id (found in review: each of these looked the
record up by institution and checked the reach in a second statement; the reach is now in the lookup).

Not held to it: a patient id (``access.find_patient``), whose refusal names the file when it is on file, so that
the attempt shows in the patient's access report (one more index row written, inside the same append on
PostgreSQL): a documented choice (docs/security.md)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from models import Patient
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.factories import Response, Tenant, make_patient
from tests.surveys import GOOD, invited, questionnaire

FLAG_CREATE = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
FLAG_UPDATE = """mutation($id: ID!, $input: FlagUpdateInput!) { flagUpdate(id: $id, input: $input) { id } }"""
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
CATALOGUE = 'mutation($code: String!) { serviceItemCreate(code: $code, name: "Dental implant") { id code } }'
ADD_CODE = """mutation($id: ID!, $input: VisitCodeInput!) { visitCodeAdd(visitId: $id, input: $input) { id } }"""
CODE_STATUS = """mutation($id: ID!, $status: ProcedureStatus!) {
  visitCodeSetStatus(id: $id, status: $status) { id status } }"""
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { responseId } }"""
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"review" * 10


def shape(sql: str) -> str:
    """A statement without its bound values: what it does, not for whom."""
    return re.sub(r"'[^']*'|\b[0-9a-f]{32}\b|\b\d+\b", "?", sql)[:160]


async def costed(sql_counter: SqlCounter, call: Any) -> tuple[Any, list[str]]:
    start = len(sql_counter.statements)
    answer = await call()
    return answer, [shape(s) for s in sql_counter.statements[start:]]


def without_place(reply: Response) -> dict[str, Any]:
    return {"data": reply.data, "errors": [{k: v for k, v in e.items() if k not in ("path", "locations")}
                                           for e in reply.errors]}


async def compare(sql_counter: SqlCounter, hidden: Any, missing: Any, unwrap: Any = without_place) -> None:
    await missing()  # warm up what a first call does once (decisions, statement plans)
    hidden_answer, hidden_sql = await costed(sql_counter, hidden)
    missing_answer, missing_sql = await costed(sql_counter, missing)
    assert unwrap(hidden_answer) == unwrap(missing_answer)  # the answer is alike (holds today)
    extra = [s for s in hidden_sql if s not in missing_sql]
    assert len(hidden_sql) == len(missing_sql), (
        f"out of reach ran {len(hidden_sql)} statements, missing {len(missing_sql)}; only when it exists: {extra}")


async def test_flag_update_out_of_reach_costs_what_missing_costs(tenant: Tenant, sql_counter: SqlCounter) -> None:
    """A nurse of department A, a flag on a patient of department B (outside her department and care team)."""
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    reply = await tenant.call("front_desk", FLAG_CREATE, input={"patientId": str(pid), "kind": "SPECIAL_NEEDS",
                                                                "detail": "Large print"})
    assert reply.errors == [], reply.errors
    flag_id = reply.data["flagCreate"]["id"]

    async def call(fid: str) -> Response:
        return await tenant.call("nurse", FLAG_UPDATE, id=fid, input={"status": "INACTIVE"})

    await compare(sql_counter, lambda: call(flag_id), lambda: call(str(uuid.uuid4())))


async def test_code_status_out_of_reach_costs_what_missing_costs(tenant: Tenant, sql_counter: SqlCounter) -> None:
    """A procedure recorded by the nurse on a patient of department A; the patient then moves to department B, out
    of the nurse's reach."""
    assert (await tenant.call("admin", CATALOGUE, code="IMPLANT")).errors == []
    pid = await make_patient(tenant)
    reply = await tenant.call("nurse", VISIT_CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT",
                                                            "departmentId": str(tenant.departments["A"].id)})
    assert reply.errors == [], reply.errors
    reply = await tenant.call("nurse", ADD_CODE, id=reply.data["visitCreate"]["id"],
                              input={"kind": "PROCEDURE", "code": "IMPLANT", "status": "PENDING"})
    assert reply.errors == [], reply.errors
    code_id = reply.data["visitCodeAdd"]["id"]
    await Patient.filter(id=pid).update(department_id=tenant.departments["B"].id)  # transferred

    async def call(cid: str) -> Response:
        return await tenant.call("nurse", CODE_STATUS, id=cid, status="DONE")

    await compare(sql_counter, lambda: call(code_id), lambda: call(str(uuid.uuid4())))


async def test_survey_entry_out_of_reach_costs_what_missing_costs(tenant: Tenant, services: Services,
                                                                  sql_counter: SqlCounter) -> None:
    """An invitation of a patient of department B, entered by a nurse of department A."""
    q = await questionnaire(tenant)
    _, in_b, _ = await invited(tenant, services, q, department="B")

    async def call(iid: str) -> Response:
        return await tenant.call("nurse", ENTER, id=iid, answers=GOOD, source="PHONE")

    await compare(sql_counter, lambda: call(str(in_b.id)), lambda: call(str(uuid.uuid4())))


async def test_attachment_download_out_of_reach_costs_what_missing_costs(tenant: Tenant,
                                                                         sql_counter: SqlCounter) -> None:
    """A ticket the support agent opened and attached a file to; the nurse neither owns nor is assigned it."""
    pid = await make_patient(tenant)
    reply = await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "APP", "category": "REQUEST", "subject": "Reprint my report", "patientId": str(pid)})
    assert reply.errors == [], reply.errors
    ticket_id = reply.data["ticketCreate"]["id"]
    uploaded = await tenant.client.post(f"/tickets/{ticket_id}/attachments", content=PNG, headers={
        "content-type": "image/png", "x-filename": "scan.png",
        "authorization": f"Bearer {tenant.tokens['support_agent']}"})
    assert uploaded.status_code == 201, uploaded.text
    attachment_id = uploaded.json()["id"]

    async def call(aid: str) -> httpx.Response:
        return await tenant.client.get(f"/attachments/{aid}",
                                       headers={"authorization": f"Bearer {tenant.tokens['nurse']}"})

    await compare(sql_counter, lambda: call(attachment_id), lambda: call(str(uuid.uuid4())),
                  unwrap=lambda r: (r.status_code, r.json()))
