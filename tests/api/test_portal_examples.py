"""Every GraphQL example of docs/portals.md, proven against the running schema and the real API.

The page is read as it is: each ```graphql block, the ```json blocks after it (before the next example or
heading) being its variables (an object without "data" or "errors") and its abridged answer (with "data" and/or
"errors"). Each example must validate against the schema; then each section's examples run in page order, as the
role its heading names (ROLE_OF), against a new institution set up through the API with what the examples name:
a variable written "$NAME" is replaced by the value the section's set-up put under NAME. The answer must have the
documented shape: every key documented is there, objects where objects are documented, lists at least as long,
and a documented error's code, field, reason (fieldClass, scope) and path are the answer's. A subscription runs over
graphql-transport-ws against the served app, its answer being its first event's payload. A change to the page that
breaks an example (a field renamed, an argument dropped, an error that no longer happens) fails here.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import websockets
from graphql import GraphQLSchema, parse, validate

from app.main import create_app
from audit import checkpoint
from core.settings import Limits, Settings
from models import SurveyInvitation
from resolvers import appointment as appointments
from resolvers import schedule as schedules
from resolvers.context import Services
from schema.root import build_schema
from tests.app.conftest import serve
from tests.contracts import draft, item_input, make_item
from tests.factories import PASSWORD, Tenant, gql, make_patient, make_tenant
from tests.partners import CONTACT_CREATE, consent_and_grant, make_client, make_partner, token_for
from tests.patients import PATIENT_PASSWORD, open_account
from tests.surveys import finished_visit, questionnaire, trigger

PAGE = Path(__file__).resolve().parents[2] / "docs" / "portals.md"
ZONE = ZoneInfo("Asia/Shanghai")  # the test institutions' zone
# Monday 1 March 2027, 08:00 in Shanghai, for the appointment examples: the dates on the page stay true.
NOW = datetime(2027, 3, 1, 8, 0, tzinfo=ZONE).astimezone(UTC)

# Each section of the page that holds examples, and the principal its examples run as.
ROLE_OF = {
    "Rules every client follows": "front_desk",
    "Front desk": "front_desk",
    "Nurse tablet": "nurse",
    "Patient app": "patient",
    "Partner portal": "partner",
    "Support desk": "support_agent",
    "Compliance desk": "compliance_officer",
}


@dataclass
class Example:
    section: str
    line: int
    document: str
    variables: dict[str, Any]
    answer: dict[str, Any] | None

    @property
    def subscribes(self) -> bool:
        """A subscription runs over the WebSocket (test_the_live_queue_sends_what_the_page_shows)."""
        return self.document.lstrip().startswith("subscription")

    def __str__(self) -> str:
        return f"docs/portals.md:{self.line} ({self.section})"


def examples(text: str) -> list[Example]:
    """The page's examples in page order, each with the json blocks that follow it within its section."""
    found: list[Example] = []
    section, lines, index = "", text.splitlines(), 0
    current: Example | None = None  # the example the next json block belongs to
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line[3:].strip() if line.startswith("## ") else section
            current = None
        fence = re.fullmatch(r"```(\w*)\s*", line)
        if fence is None:
            index += 1
            continue
        end = lines.index("```", index + 1)  # a block is read whole: a "#" in it is no heading
        body = "\n".join(lines[index + 1:end])
        if fence.group(1) == "graphql":
            current = Example(section, index + 1, body, {}, None)
            found.append(current)
        elif fence.group(1) == "json" and current is not None:
            value = json.loads(body)
            if "data" in value or "errors" in value:
                current.answer = value
            else:
                current.variables = value
        index = end + 1
    return found


EXAMPLES = examples(PAGE.read_text())


def test_the_page_has_examples_for_every_portal() -> None:
    sections = {example.section for example in EXAMPLES}
    assert sections == set(ROLE_OF), "each section with examples needs its role in ROLE_OF, and each role examples"
    assert set(SETUPS) == set(ROLE_OF)
    assert [str(example) for example in EXAMPLES if example.answer is None] == []


@functools.cache
def running_schema() -> GraphQLSchema:
    return build_schema(Limits(), production=False)._schema


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_each_example_is_valid_against_the_schema(example: Example) -> None:
    assert validate(running_schema(), parse(example.document)) == []


# -- the answer's shape -----------------------------------------------------------------------------------------


def assert_shape(documented: Any, real: Any, path: str = "") -> None:
    if isinstance(documented, dict):
        assert isinstance(real, dict), f"{path}: an object documented, {real!r} answered"
        for key, value in documented.items():
            assert key in real, f"{path}.{key}: documented, not answered"
            assert_shape(value, real[key], f"{path}.{key}")
    elif isinstance(documented, list):
        assert isinstance(real, list) and len(real) >= len(documented), f"{path}: {len(documented)} items documented"
        for index, (one, other) in enumerate(zip(documented, real, strict=False)):
            assert_shape(one, other, f"{path}[{index}]")
    elif documented is not None:
        assert real is not None and not isinstance(real, (dict, list)), f"{path}: a value documented, {real!r}"


def what_went_wrong(error: dict[str, Any]) -> tuple[Any, ...]:
    """What a client branches on: where, the code, the field, the reason (and each problem listed; the class and
    scope of a field refused)."""
    extensions = error.get("extensions", {})
    return (error.get("path"), extensions.get("code"), extensions.get("field"), extensions.get("reason"),
            [(problem["field"], problem["reason"]) for problem in extensions.get("invalid", [])],
            extensions.get("fieldClass"), extensions.get("scope"))


def assert_answer(example: Example, answer: dict[str, Any]) -> None:
    documented = example.answer or {}
    said = [what_went_wrong(error) for error in documented.get("errors", [])]
    got = [what_went_wrong(error) for error in answer.get("errors", [])]
    assert got == said, f"{example}: {answer.get('errors')}"
    if "data" in documented:
        assert_shape(documented["data"], answer.get("data"), "data")


def filled(value: Any, values: dict[str, Any], example: Example) -> Any:
    """The variables with each "$NAME" replaced by what the set-up made."""
    if isinstance(value, dict):
        return {key: filled(item, values, example) for key, item in value.items()}
    if isinstance(value, list):
        return [filled(item, values, example) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\$[A-Z_0-9]+", value):
        assert value[1:] in values, f"{example}: nothing set up for {value}"
        return values[value[1:]]
    return value


# -- the set-up each section's examples need, through the API --------------------------------------------------------

SetUp = Callable[[Tenant, Services], Awaitable[dict[str, Any]]]
SCHEDULE_CREATE = "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }"
BOOK = "mutation($input: AppointmentBookInput!) { appointmentBook(input: $input) { id version } }"
WEEK = [{"weekday": day, "sessions": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]}
        for day in range(1, 8)]


def at(day: int, hour: int, minute: int = 0) -> str:
    """A slot start in March 2027, Shanghai time."""
    return datetime(2027, 3, day, hour, minute, tzinfo=ZONE).isoformat()


def ok(reply: Any) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


async def a_schedule(tenant: Tenant) -> str:
    data = {"name": "Dr Chen's chair", "kind": "CLINICIAN", "departmentId": str(tenant.departments["A"].id),
            "clinicianId": str(tenant.staff_ids["doctor"]), "week": WEEK, "slotMinutes": 30, "capacity": 1}
    return str(ok(await tenant.call("admin", SCHEDULE_CREATE, input=data))["scheduleCreate"]["id"])


async def booked(tenant: Tenant, role: str, schedule: str, start: str, patient: uuid.UUID | None = None) -> str:
    data = {"scheduleId": schedule, "slotStart": start, **({"patientId": str(patient)} if patient else {})}
    return str(ok(await tenant.call(role, BOOK, input=data))["appointmentBook"]["id"])


FIRST_PAGE = "{ patients(first: 1, orderBy: {field: NAME}) { pageInfo { endCursor } } }"


async def rules(tenant: Tenant, services: Services) -> dict[str, Any]:
    pid = await make_patient(tenant, fullName="王秀兰", phone="13800135678")
    await make_patient(tenant, fullName="Li Wei")
    first = ok(await tenant.call("front_desk", FIRST_PAGE))
    return {"EMAIL": tenant.emails["front_desk"], "PASSWORD": PASSWORD, "PATIENT_ID": str(pid),
            "CURSOR": first["patients"]["pageInfo"]["endCursor"]}


async def front_desk(tenant: Tenant, services: Services) -> dict[str, Any]:
    pid = await make_patient(tenant, fullName="王秀兰", sex="FEMALE", birthDate="1956-04-12", phone="13800135678")
    schedule = await a_schedule(tenant)
    return {"DEPARTMENT_ID": str(tenant.departments["A"].id), "PATIENT_ID": str(pid), "SCHEDULE_ID": schedule,
            "OTHER_PATIENT_ID": str(await make_patient(tenant, fullName="Li Wei")),
            "TODAY_APPOINTMENT_ID": await booked(tenant, "front_desk", schedule, at(1, 10), pid)}


TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
CODE_ADD = "mutation($id: ID!, $input: VisitCodeInput!) { visitCodeAdd(visitId: $id, input: $input) { id } }"


def today() -> str:
    return datetime.now(UTC).astimezone(ZONE).date().isoformat()


async def nurse_tablet(tenant: Tenant, services: Services) -> dict[str, Any]:
    pid = await make_patient(tenant, "nurse", fullName="刘建国", phone="13700001234")
    ended = datetime.now(UTC) - timedelta(days=1)
    visit = ok(await tenant.call("doctor", VISIT_CREATE, input={
        "patientId": str(pid), "kind": "DENTAL", "status": "FINISHED", "clinicianId": str(tenant.staff_ids["doctor"]),
        "departmentId": str(tenant.departments["A"].id), "startedAt": (ended - timedelta(minutes=45)).isoformat(),
        "endedAt": ended.isoformat(), "reason": "Loose crown", "summary": "Crown re-cemented",
        "treatmentPlan": "Review in four weeks", "medicationGuidance": "Ibuprofen 200 mg if needed",
        "precautions": "No hard food for 24 hours", "revisitOn": (ended + timedelta(days=30)).date().isoformat()}
    ))["visitCreate"]["id"]
    ok(await tenant.call("doctor", CODE_ADD, id=visit, input={"kind": "CONDITION", "code": "K08.1"}))
    task = ok(await tenant.call("doctor", TASK_CREATE, input={
        "patientId": str(pid), "dueOn": today(), "visitId": visit, "ownerId": str(tenant.staff_ids["nurse"])}))
    other = await make_patient(tenant, "nurse", fullName="陈美玲")
    pool = ok(await tenant.call("doctor", TASK_CREATE, input={
        "patientId": str(other), "dueOn": today(), "departmentId": str(tenant.departments["A"].id)}))
    return {"TASK_ID": task["followUpTaskCreate"]["id"], "POOL_TASK_ID": pool["followUpTaskCreate"]["id"]}


CONTRACT_SEND = """mutation($id: ID!, $expectedVersion: Int!) {
  contractSend(contractId: $id, expectedVersion: $expectedVersion) { id } }"""


async def patient_app(tenant: Tenant, services: Services) -> dict[str, Any]:
    q = await questionnaire(tenant)
    await trigger(tenant, q)
    pid = await make_patient(tenant, "nurse", fullName="陈美玲", contactConsent=True, contactChannels=["SMS"],
                             contactPurposes=["CARE"], email="chen@example.com")
    await finished_visit(tenant, pid)  # which invites the patient to the questionnaire
    user = await open_account(tenant, pid)
    tenant.tokens["patient"] = user.token
    schedule = await a_schedule(tenant)
    await booked(tenant, "front_desk", schedule, at(2, 9), pid)
    made = await draft(tenant, pid, [item_input(await make_item(tenant))])
    ok(await tenant.call("front_desk", CONTRACT_SEND, id=made["id"], expectedVersion=made["version"]))
    document = await tenant.client.get(f"/contracts/{made['id']}/versions/1/document",
                                       headers={"authorization": f"Bearer {user.token}"})
    assert document.status_code == 200, document.text
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    return {"EMAIL": user.email, "PASSWORD": PATIENT_PASSWORD, "SCHEDULE_ID": schedule,
            "DEPARTMENT_ID": str(tenant.departments["A"].id),
            "APPOINTMENT_ID": await booked(tenant, "patient", schedule, at(4, 9)), "INVITATION_ID": str(invitation.id),
            "CONTRACT_ID": made["id"], "DOCUMENT_SHA256": hashlib.sha256(document.content).hexdigest()}


async def partner_portal(tenant: Tenant, services: Services) -> dict[str, Any]:
    partner = await make_partner(tenant)
    client = await make_client(tenant, partner, ["patient.identity:read", "patient.contact:read", "contact:read",
                                                 "partner_own_grant:read"])
    granted = await make_patient(tenant, "nurse", fullName="赵桂芳", phone="13800002222", address="Garden Road 5",
                                 allergies="Penicillin")
    contact = {"name": "赵强", "relationship": "CHILD", "phone": "13600004444"}
    ok(await tenant.call("front_desk", CONTACT_CREATE, patientId=str(granted), input=contact))
    await consent_and_grant(tenant, partner, granted)
    tenant.tokens["partner"] = await token_for(tenant.client, client)
    return {"PATIENT_ID": str(granted), "OTHER_PATIENT_ID": str(await make_patient(tenant, fullName="钱伟"))}


TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id version } }"
TICKET_MOVE = """mutation($id: ID!, $to: TicketStatus!, $version: Int) {
  ticketTransition(id: $id, to: $to, version: $version) { version } }"""


async def support_desk(tenant: Tenant, services: Services) -> dict[str, Any]:
    pid = await make_patient(tenant, fullName="孙丽")
    made = ok(await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "EMAIL", "category": "REQUEST", "subject": "Bill sent twice", "patientId": str(pid)}))
    worked = ok(await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "APP", "category": "ENQUIRY", "subject": "Parking for wheelchairs", "patientId": str(pid)}))
    ticket, version = worked["ticketCreate"]["id"], worked["ticketCreate"]["version"]
    for status in ("ACKNOWLEDGED", "INVESTIGATING"):
        version = ok(await tenant.call("support_agent", TICKET_MOVE, id=ticket, to=status,
                                       version=version))["ticketTransition"]["version"]
    return {"PATIENT_ID": str(pid), "TICKET_ID": made["ticketCreate"]["id"], "INVESTIGATING_TICKET_ID": ticket,
            "INVESTIGATING_VERSION": version, "DEPARTMENT_ID": str(tenant.departments["B"].id)}


READ_FILE = "query($id: ID!) { patient(id: $id) { fullName phone } }"


async def compliance_desk(tenant: Tenant, services: Services) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(minutes=1)
    pid = await make_patient(tenant, "nurse", fullName="周杰")
    partner = await make_partner(tenant, "Sunrise Home Care")
    await consent_and_grant(tenant, partner, pid)
    token = await token_for(tenant.client, await make_client(tenant, partner, ["patient.identity:read"]))
    assert (await gql(tenant.client, "query($id: ID!) { patient(id: $id) { fullName } }", {"id": str(pid)},
                      token)).errors == []
    ok(await tenant.call("front_desk", READ_FILE, id=str(pid)))
    assert await checkpoint.take(services.master_key.checkpoint_key, tenant.id) is not None  # the chain's head signed
    return {"PATIENT_ID": str(pid), "FROM": since.isoformat(),
            "TO": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}


SETUPS: dict[str, SetUp] = {"Rules every client follows": rules, "Front desk": front_desk,
                            "Nurse tablet": nurse_tablet, "Patient app": patient_app, "Partner portal": partner_portal,
                            "Support desk": support_desk, "Compliance desk": compliance_desk}


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appointments, "_now", lambda: NOW)
    monkeypatch.setattr(schedules, "_now", lambda: NOW)


@pytest.mark.parametrize("section", list(ROLE_OF))
async def test_the_examples_of_each_portal_run_as_documented(section: str, client: httpx.AsyncClient,
                                                             services: Services, frozen_now: None) -> None:
    tenant = await make_tenant(client, services)
    values = await SETUPS[section](tenant, services)
    token = tenant.tokens[ROLE_OF[section]]
    for example in [e for e in EXAMPLES if e.section == section and not e.subscribes]:
        reply = await gql(client, example.document, filled(example.variables, values, example), token)
        assert_answer(example, reply.body)


OPEN_TICKET = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.subscribes], ids=str)
async def test_the_live_queue_sends_what_the_page_shows(example: Example, client: httpx.AsyncClient,
                                                       settings: Settings, services: Services) -> None:
    """Over graphql-transport-ws against the app served by uvicorn: the first event after the front desk opens a
    ticket is the page's answer (the only subscription on the page is the live queue)."""
    assert "ticketChanges" in example.document, f"{example}: only the live queue has its trigger here"
    tenant = await make_tenant(client, services)
    patient = await make_patient(tenant)
    async with serve(create_app(settings, services, manage_database=False)) as url:
        connection = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
        token = tenant.tokens[ROLE_OF[example.section]]
        await connection.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await asyncio.wait_for(connection.recv(), 5))["type"] == "connection_ack"
        await connection.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": example.document}}))
        await asyncio.sleep(0.2)  # let the subscription take its starting point
        ok(await tenant.call("front_desk", OPEN_TICKET, input={
            "channel": "FRONT_DESK", "category": "REQUEST", "subject": "Wheelchair at the entrance",
            "patientId": str(patient)}))
        message = json.loads(await asyncio.wait_for(connection.recv(), 5))
        await connection.close()
    assert message["type"] == "next", message
    assert_answer(example, message["payload"])
