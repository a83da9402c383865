"""Input errors as a form needs them, through the API: every invalid field of an input in one answer, each
with its path (`input.phone`, `filter.phone`) and reason; the GraphQL layer's own errors (a wrong enum value,
a bad date, a number for a string) coded and placed the same way, never echoing the value sent; and an
explicit null accepted on every nullable input field."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from models import Appointment, Contact, FollowUpRule, FollowUpTask, Patient, Ticket, Visit
from tests.api.test_ticket_portal import portal_token
from tests.factories import Tenant, gql, make_patient

CREATE = """mutation($input: PatientCreateInput!) {
  patientCreate(input: $input, registerAnyway: true) { patient { id } }
}"""
UPDATE = """mutation($id: ID!, $input: PatientUpdateInput!) {
  patientUpdate(id: $id, input: $input) { id fullName sex contactConsent preferredLanguage phone email }
}"""
CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id }
}"""
CONTACT_UPDATE = """mutation($id: ID!, $input: ContactUpdateInput!) {
  contactUpdate(id: $id, input: $input) { id name relationship phone isEmergency notes }
}"""
LIST = "query($filter: PatientFilter) { patients(first: 5, filter: $filter) { nodes { id } } }"
TOMORROW = (date.today() + timedelta(days=2)).isoformat()
SECRET_PHONE = "13812345678"


async def patient_count(tenant: Tenant) -> int:
    return await Patient.filter(institution_id=tenant.id).count()


def problems(reply: Any) -> list[tuple[str, str]]:
    """The (field, reason) of every problem the one error lists."""
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    return [(p["field"], p["reason"]) for p in reply.errors[0]["extensions"]["invalid"]]


def request_errors(reply: Any) -> list[tuple[str, str, str]]:
    """(code, field, reason) of each error of a request refused before it ran."""
    assert "data" not in reply.body or reply.data is None, reply.body
    return [(e["extensions"]["code"], e["extensions"].get("field"), e["extensions"].get("reason"))
            for e in reply.errors]


# -- resolvers: every problem at once, with its path -----------------------------------------------------


async def test_every_invalid_field_of_a_new_patient_is_reported_at_once(tenant: Tenant) -> None:
    before = await patient_count(tenant)

    reply = await tenant.call("front_desk", CREATE, input={
        "fullName": "Li Lei", "phone": "12", "email": "no-at-sign", "birthDate": TOMORROW})

    assert sorted(problems(reply)) == [("input.birthDate", "in_future"), ("input.email", "invalid"),
                                       ("input.phone", "invalid")]
    error = reply.errors[0]
    assert error["extensions"]["field"] == error["extensions"]["invalid"][0]["field"]
    assert error["message"].startswith(f"{error['extensions']['field']}: ")
    assert "(and 2 more: see extensions.invalid)" in error["message"]
    assert reply.data == {"patientCreate": None}
    assert await patient_count(tenant) == before


async def test_one_invalid_field_is_listed_too(tenant: Tenant) -> None:
    reply = await tenant.call("front_desk", CREATE, input={"fullName": "Li Lei", "phone": "12"})

    assert problems(reply) == [("input.phone", "invalid")]
    assert reply.errors[0]["extensions"]["field"] == "input.phone"


async def test_patient_update_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    before = await Patient.get(id=pid).values()

    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={
        "fullName": "   ", "occupation": "x" * 101, "tags": ["ok", "no%"], "nationalIdType": "RESIDENT_ID",
        "nationalId": "110105194912310021"})

    assert sorted(problems(reply)) == [("input.fullName", "required"), ("input.nationalId", "invalid"),
                                       ("input.occupation", "too_long"), ("input.tags", "invalid")]
    assert await Patient.get(id=pid).values() == before


async def test_contact_input_reports_every_problem(tenant: Tenant) -> None:
    pid = await make_patient(tenant)

    reply = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid), input={
        "name": "   ", "relationship": "SPOUSE", "phone": "12", "notes": "x" * 501})

    assert sorted(problems(reply)) == [("input.name", "required"), ("input.notes", "too_long"),
                                       ("input.phone", "invalid")]
    assert await Contact.filter(patient_id=pid).count() == 0


async def test_filter_and_top_level_arguments_keep_their_own_names(tenant: Tenant) -> None:
    by_filter = await tenant.call("front_desk", LIST, filter={"phone": "12"})
    by_id = await tenant.call("front_desk", UPDATE, id="nope", input={"occupation": "Teacher"})

    assert by_filter.errors[0]["extensions"]["field"] == "filter.phone"
    assert by_id.errors[0]["extensions"]["field"] == "id"


# -- the GraphQL layer's own errors: coded, placed, the value never echoed -----------------------------


async def test_variables_of_the_wrong_type_are_all_reported_with_paths_and_no_values(tenant: Tenant) -> None:
    before = await patient_count(tenant)

    reply = await tenant.call("front_desk", CREATE, input={
        "fullName": "Li Lei", "sex": "FEMALE_" + SECRET_PHONE, "birthDate": "2020-13-45",
        "phone": int(SECRET_PHONE), "segments": ["VIP", "NOT_A_SEGMENT"]})

    assert request_errors(reply) == [
        ("BAD_USER_INPUT", "input.sex", "invalid_choice"),
        ("BAD_USER_INPUT", "input.birthDate", "invalid_value"),
        ("BAD_USER_INPUT", "input.phone", "invalid_value"),
        ("BAD_USER_INPUT", "input.segments[1]", "invalid_choice"),
    ]
    text = json.dumps(reply.body)
    assert SECRET_PHONE not in text and "2020-13-45" not in text and "NOT_A_SEGMENT" not in text
    assert reply.errors[0]["message"].startswith("input.sex: must be one of FEMALE, MALE, OTHER, UNKNOWN")
    assert reply.errors[1]["message"] == "input.birthDate: must be a valid Date (YYYY-MM-DD)."
    assert await patient_count(tenant) == before


async def test_missing_and_unknown_fields_of_a_variable_are_placed(tenant: Tenant) -> None:
    reply = await tenant.call("front_desk", CREATE, input={"fullNam": "Li Lei", SECRET_PHONE: 1})

    assert sorted(request_errors(reply)) == [("BAD_USER_INPUT", "input", "unknown_field"),
                                             ("BAD_USER_INPUT", "input.fullNam", "unknown_field"),
                                             ("BAD_USER_INPUT", "input.fullName", "required")]
    assert SECRET_PHONE not in json.dumps(reply.body)


async def test_a_variable_inside_a_literal_is_placed_from_the_argument(tenant: Tenant) -> None:
    query = """mutation($sex: Sex) { patientCreate(input: {fullName: "Li Lei", sex: $sex}) { patient { id } } }"""

    reply = await tenant.call("front_desk", query, sex="NEITHER")

    assert request_errors(reply) == [("BAD_USER_INPUT", "input.sex", "invalid_choice")]


async def test_literals_of_the_wrong_type_are_all_reported_with_paths_and_no_values(tenant: Tenant) -> None:
    query = (f'mutation {{ patientCreate(input: {{fullName: "Li Lei", sex: FOO, birthDate: "2020-13-45", '
             f'phone: {SECRET_PHONE}}}) {{ patient {{ id }} }} }}')

    reply = await tenant.call("front_desk", query)

    assert sorted(request_errors(reply)) == [("BAD_USER_INPUT", "input.birthDate", "invalid_value"),
                                             ("BAD_USER_INPUT", "input.phone", "invalid_value"),
                                             ("BAD_USER_INPUT", "input.sex", "invalid_choice")]
    text = json.dumps(reply.body)
    assert SECRET_PHONE not in text and "2020-13-45" not in text and "FOO" not in text
    assert all(e.get("locations") for e in reply.errors)


async def test_a_wrong_literal_in_a_filter_is_placed_under_filter(tenant: Tenant) -> None:
    reply = await tenant.call("front_desk", "query { patients(first: 5, filter: {phone: 5}) { nodes { id } } }")

    assert request_errors(reply) == [("BAD_USER_INPUT", "filter.phone", "invalid_value")]


# -- explicit null ---------------------------------------------------------------------------------------


async def test_explicit_null_on_a_field_that_is_never_empty_leaves_it_as_it_is(tenant: Tenant) -> None:
    pid = await make_patient(tenant, fullName="Wang Fang", sex="FEMALE", contactConsent=True, phone="13800138000")

    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={
        "fullName": None, "sex": None, "contactConsent": None, "preferredLanguage": None, "phone": None,
        "email": "wang@example.com"})

    assert reply.errors == []
    assert reply.data["patientUpdate"] == {"id": str(pid), "fullName": "Wang Fang", "sex": "FEMALE",
                                           "contactConsent": True, "preferredLanguage": "zh-CN", "phone": None,
                                           "email": "wang@example.com"}


async def test_explicit_null_at_registration_takes_the_default(tenant: Tenant) -> None:
    reply = await tenant.call("front_desk", CREATE, input={"fullName": "Li Lei", "contactConsent": None,
                                                           "sex": None, "phone": None})

    assert reply.errors == []
    row = await Patient.get(id=uuid.UUID(reply.data["patientCreate"]["patient"]["id"]))
    assert (row.contact_consent, row.sex) == (False, "unknown")


@pytest.mark.parametrize("field", ["name", "relationship", "isEmergency", "mayReceiveInformation"])
async def test_explicit_null_on_a_contact_field_that_is_never_empty_leaves_it(tenant: Tenant, field: str) -> None:
    pid = await make_patient(tenant)
    created = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid), input={
        "name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000", "isEmergency": True, "notes": "n"})
    cid = created.data["contactCreate"]["id"]

    reply = await tenant.call("front_desk", CONTACT_UPDATE, id=cid, input={field: None, "notes": None})

    assert reply.errors == []
    assert reply.data["contactUpdate"] == {"id": cid, "name": "Wang Fang", "relationship": "SPOUSE",
                                           "phone": "+8613900139000", "isEmergency": True, "notes": None}


# -- tickets, visits, appointments, follow-ups: every problem at once as well -------------------------------

TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
TICKET_UPDATE = """mutation($id: ID!, $input: TicketUpdateInput!) {
  ticketUpdate(id: $id, input: $input) { id level subcategory } }"""


async def ticket_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await Ticket.filter(institution_id=tenant.id).order_by("id").values()


async def test_a_new_ticket_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    before = await ticket_rows(tenant)

    reply = await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "  ", "callerPhone": "call me", "level": 7,
        "receivedAt": (datetime.now(UTC) + timedelta(hours=2)).isoformat()})

    assert problems(reply) == [("input.subject", "required"), ("input.callerPhone", "invalid"),
                               ("input.level", "out_of_range"), ("input.callerName", "required"),
                               ("input.receivedAt", "out_of_range")]
    assert reply.errors[0]["extensions"]["field"] == "input.subject"
    assert reply.data == {"ticketCreate": None}
    assert await ticket_rows(tenant) == before


async def test_a_ticket_update_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    created = await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Change my appointment", "patientId": str(pid)})
    tid = created.data["ticketCreate"]["id"]
    before = await ticket_rows(tenant)

    reply = await tenant.call("support_agent", TICKET_UPDATE, id=tid, input={
        "level": None, "subcategory": "x" * 65, "rootCause": "a\x07b", "note": "fine"})

    assert problems(reply) == [("input.level", "required"), ("input.subcategory", "too_long"),
                               ("input.rootCause", "invalid")]
    assert await ticket_rows(tenant) == before


VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
VISIT_UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!) { visitUpdate(id: $id, input: $input) { id } }"""
ELEVEN_STAFF = [str(uuid.uuid4()) for _ in range(11)]


async def visit_rows(tenant: Tenant) -> list[dict[str, Any]]:
    return await Visit.filter(institution_id=tenant.id).order_by("id").values()


async def test_a_new_visit_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await visit_rows(tenant)

    reply = await tenant.call("front_desk", VISIT_CREATE, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "staffIds": ELEVEN_STAFF,
        "reason": "x" * 1001})

    assert problems(reply) == [("input.staffIds", "too_many"), ("input.reason", "too_long"),
                               ("input.endedAt", "required")]
    assert reply.data == {"visitCreate": None}
    assert await visit_rows(tenant) == before


async def test_a_visit_update_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    created = await tenant.call("front_desk", VISIT_CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    vid = created.data["visitCreate"]["id"]
    before = await visit_rows(tenant)

    reply = await tenant.call("front_desk", VISIT_UPDATE, id=vid, input={
        "staffIds": ELEVEN_STAFF, "plannedAt": None, "summary": "  "})

    assert problems(reply) == [("input.staffIds", "too_many"), ("input.plannedAt", "required"),
                               ("input.summary", "required")]
    assert await visit_rows(tenant) == before


APPOINTMENT_BOOK = "mutation($input: AppointmentBookInput!) { appointmentBook(input: $input) { id } }"


EDGES_OF_TIME = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]  # outside the calendar once in UTC


@pytest.mark.parametrize("at", EDGES_OF_TIME)
async def test_a_time_the_databases_cannot_hold_is_bad_input(tenant: Tenant, at: str) -> None:
    """Every moment is compared and stored in UTC: a DateTime that leaves the calendar there is refused with its
    place, as a variable or a literal, in a filter or a mutation (schema/scalars.py), never an unexpected error."""
    pid = await make_patient(tenant, "nurse")
    audit = "query($t: DateTime) { auditEvents(first: 2, filter: {from: $t}) { nodes { id } } }"
    assert request_errors(await tenant.call("compliance_officer", audit, t=at)) == [
        ("BAD_USER_INPUT", "filter.from", "invalid_value")]
    visits = f'query($p: ID!) {{ visits(first: 2, patientId: $p, filter: {{since: "{at}"}}) {{ nodes {{ id }} }} }}'
    assert request_errors(await tenant.call("nurse", visits, p=str(pid))) == [
        ("BAD_USER_INPUT", "filter.since", "invalid_value")]
    reply = await tenant.call("front_desk", VISIT_CREATE, input={"patientId": str(pid), "kind": "OUTPATIENT",
                                                                 "plannedAt": at})
    assert request_errors(reply) == [("BAD_USER_INPUT", "input.plannedAt", "invalid_value")]
    assert at not in json.dumps(reply.body)
    assert await Visit.filter(patient_id=pid).count() == 0


async def test_a_booking_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)

    reply = await tenant.call("front_desk", APPOINTMENT_BOOK, input={
        "scheduleId": str(uuid.uuid4()), "slotStart": "2020-03-02T09:00:00+08:00", "patientId": str(pid),
        "reason": "x" * 1001, "channel": "PORTAL"})

    assert problems(reply) == [("input.slotStart", "in_past"), ("input.reason", "too_long"),
                               ("input.channel", "invalid_choice")]
    assert reply.data == {"appointmentBook": None}
    assert await Appointment.filter(institution_id=tenant.id).count() == 0


RULE_CREATE = "mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) { id } }"


async def test_a_new_follow_up_rule_reports_every_problem_and_writes_nothing(tenant: Tenant) -> None:
    before = await FollowUpRule.filter(institution_id=tenant.id).count()

    reply = await tenant.call("department_head", RULE_CREATE, input={
        "name": "  ", "offsetsDays": [1, 400], "procedureCode": "x" * 40})

    assert problems(reply) == [("input.name", "required"), ("input.offsetsDays", "out_of_range"),
                               ("input.procedureCode", "unknown_code")]
    assert reply.data == {"followUpRuleCreate": None}
    assert await FollowUpRule.filter(institution_id=tenant.id).count() == before


MY_TICKET_CREATE = "mutation($input: MyTicketCreateInput!) { myTicketCreate(input: $input) { id } }"


async def test_a_portal_ticket_reports_every_problem_and_writes_nothing(tenant: Tenant,
                                                                       client: httpx.AsyncClient) -> None:
    token = await portal_token(tenant, client, await make_patient(tenant))

    reply = await gql(client, MY_TICKET_CREATE, {"input": {
        "category": "COMPLAINT", "subject": "x" * 201, "description": "a\x07b", "channel": "APP"}}, token)

    assert problems(reply) == [("input.subject", "too_long"), ("input.description", "invalid")]
    assert await Ticket.filter(institution_id=tenant.id).count() == 0


TASK_CREATE = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"


async def test_a_follow_up_task_reports_its_date_before_the_patient_is_looked_up(tenant: Tenant) -> None:
    reply = await tenant.call("nurse", TASK_CREATE, input={
        "patientId": str(uuid.uuid4()), "dueOn": (date.today() - timedelta(days=3)).isoformat()})

    assert problems(reply) == [("input.dueOn", "out_of_range")]
    assert await FollowUpTask.filter(institution_id=tenant.id).count() == 0
