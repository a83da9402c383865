"""Every read and write leaves exactly the audit events it should, and none of them holds a value."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tortoise import Tortoise

from audit.chain import parse_subjects
from audit.writer import SYSTEM_CHAIN
from models import AuditEvent, AuditPatientIndex, Contact, Patient, Session
from tests.factories import LOGIN, PASSWORD, Tenant, gql, login, make_patient

CLIENT_ADDRESS = "203.0.113.7"  # the address the test client connects from (conftest)

READ_ONE = "query($id: ID!) { patient(id: $id) { fullName phone diagnoses } }"
READ_PAGE = "query($first: Int!) { patients(first: $first) { nodes { id fullName } } }"
CREATE_PATIENT = """
mutation($input: PatientCreateInput!) { patientCreate(input: $input, registerAnyway: true) { patient { id } } }"""
UPDATE_PATIENT = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
CREATE_CONTACT = """
mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) { id } }"""
DELETE_CONTACT = "mutation($id: ID!) { contactDelete(id: $id) }"
LOGOUT = "mutation { logout }"


# -- helpers -----------------------------------------------------------------------------


async def last_seq(chain: uuid.UUID) -> int:
    last = await AuditEvent.filter(institution_id=chain).order_by("-seq").first()
    return 0 if last is None else last.seq


async def events_since(chain: uuid.UUID, seq: int) -> list[AuditEvent]:
    return await AuditEvent.filter(institution_id=chain, seq__gt=seq).order_by("seq")


async def snapshot(tenant: Tenant) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every patient and contact row of the institution, column by column."""
    patients = await Patient.filter(institution_id=tenant.id).order_by("id").values()
    contacts = await Contact.filter(institution_id=tenant.id).order_by("id").values()
    return patients, contacts


async def add_contact(tenant: Tenant, patient_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    data = {"name": "Wang Fang", "relationship": "SPOUSE", **fields}
    reply = await tenant.call("front_desk", CREATE_CONTACT, pid=str(patient_id), input=data)
    assert reply.errors == []
    return uuid.UUID(reply.data["contactCreate"]["id"])


@asynccontextmanager
async def audit_refuses_inserts() -> AsyncIterator[None]:
    """The audit store fails every append, at the database level, until the block ends."""
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "postgres":
        create = [
            """CREATE FUNCTION test_audit_refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$""",
            """CREATE TRIGGER test_audit_refuse_insert BEFORE INSERT ON audit_event
               FOR EACH ROW EXECUTE FUNCTION test_audit_refuse_insert()""",
        ]
        drop = ["DROP TRIGGER test_audit_refuse_insert ON audit_event", "DROP FUNCTION test_audit_refuse_insert()"]
    else:
        create = ["""CREATE TRIGGER test_audit_refuse_insert BEFORE INSERT ON audit_event
                     BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END"""]
        drop = ["DROP TRIGGER test_audit_refuse_insert"]
    for statement in create:
        await conn.execute_script(statement)
    try:
        yield
    finally:
        for statement in drop:
            await conn.execute_script(statement)


# -- reads -------------------------------------------------------------------------------


async def test_reading_one_patient_leaves_one_read_event(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Lin Xiaomei", phone="13912345678", diagnoses="Gingivitis")
    before = await last_seq(tenant.id)

    reply = await tenant.client.post("/graphql", json={"query": READ_ONE, "variables": {"id": str(pid)}},
                                     headers={"authorization": f"Bearer {tenant.tokens['nurse']}"})

    assert reply.json() == {"data": {"patient": {
        "fullName": "Lin Xiaomei", "phone": "+8613912345678", "diagnoses": "Gingivitis"}}}
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.reason) == ("read", "allowed", "")
    assert (event.resource_type, event.resource_id, event.patient_id) == ("patient", pid, pid)
    assert (event.actor_kind, event.actor_id) == ("staff", tenant.staff_ids["nurse"])
    assert event.token_id is not None
    assert event.field_classes == "clinical,contact,identity"
    assert event.fields_read == "diagnoses,phone"  # decrypted fields only: fullName is not encrypted
    for rule in ("patient.clinical, read, allow", "patient.contact, read, allow", "patient.identity, read, allow"):
        assert rule in event.policy_rule
    assert event.request_id != ""
    assert event.request_id == reply.headers["x-request-id"]
    assert event.client_address == CLIENT_ADDRESS
    assert event.user_agent.startswith("python-httpx/")


async def test_an_encrypted_field_left_empty_is_named_as_returned(tenant: Tenant) -> None:
    """That a patient has no phone (or no allergies) on file is theirs too: the field is on the record as read,
    as a contact's empty phone is; so a page whose patients fill different fields is still one kind of read."""
    pid = await make_patient(tenant, "nurse", diagnoses="Gingivitis")  # no phone on file
    before = await last_seq(tenant.id)

    reply = await tenant.call("nurse", READ_ONE, id=str(pid))

    assert reply.errors == []
    assert reply.data["patient"]["phone"] is None
    [event] = await events_since(tenant.id, before)
    assert event.field_classes == "clinical,contact,identity"
    assert event.fields_read == "diagnoses,phone"


async def test_a_page_of_patients_leaves_one_read_event_naming_each_patient(tenant: Tenant) -> None:
    """Issue 17: the alike reads of a page are one event whose subjects (hashed) name each patient, and the
    per-patient index has a row for each (the page used to append one event per patient)."""
    pids = [await make_patient(tenant, "nurse") for _ in range(3)]
    await make_patient(tenant, departmentId=str(tenant.departments["B"].id))  # outside the nurse's reach
    before = await last_seq(tenant.id)

    reply = await tenant.call("nurse", READ_PAGE, first=10)

    assert reply.errors == []
    assert [node["id"] for node in reply.data["patients"]["nodes"]] == [str(p) for p in pids]
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("read", "allowed", "patient")
    assert (event.resource_id, event.patient_id) == (None, None)
    assert parse_subjects(event.subjects) == sorted((p, p) for p in pids)
    assert (event.field_classes, event.fields_read) == ("identity", "")
    assert event.actor_id == tenant.staff_ids["nurse"]
    indexed = await AuditPatientIndex.filter(institution_id=tenant.id, seq=event.seq).values_list("patient_id",
                                                                                                   flat=True)
    assert sorted(indexed) == sorted(pids)


async def test_a_page_whose_patients_fill_different_sealed_fields_is_one_read_event(tenant: Tenant) -> None:
    """Issue 17's one audit event per page: an empty sealed field is named as one with a value is, so patients
    with and without a phone or allergies on file read alike (it took one event per combination)."""
    pids = [await make_patient(tenant, "nurse", phone="13912345678", allergies="Penicillin"),
            await make_patient(tenant, "nurse", phone="13912345679"),
            await make_patient(tenant, "nurse")]
    before = await last_seq(tenant.id)

    reply = await tenant.call("nurse", "query($first: Int!) { patients(first: $first) { nodes { id phone allergies "
                                       "contacts { name phone } } } }", first=10)

    assert reply.errors == []
    assert [node["phone"] is None for node in reply.data["patients"]["nodes"]] == [False, False, True]
    [event] = await events_since(tenant.id, before)
    assert parse_subjects(event.subjects) == sorted((p, p) for p in pids)
    assert (event.field_classes, event.fields_read) == ("clinical,contact", "allergies,phone")


async def test_a_field_refused_to_the_front_desk_leaves_a_denied_read_event(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Lin Xiaomei", diagnoses="Gingivitis")
    before = await last_seq(tenant.id)

    reply = await tenant.call("front_desk", "query($id: ID!) { patient(id: $id) { fullName diagnoses } }",
                              id=str(pid))

    assert reply.data == {"patient": {"fullName": "Lin Xiaomei", "diagnoses": None}}
    assert reply.codes == ["FORBIDDEN"]
    events = await events_since(tenant.id, before)
    summary = {(e.action, e.outcome, e.reason, e.field_classes, e.fields_read, e.resource_id) for e in events}
    assert summary == {
        ("read", "allowed", "", "identity", "", pid),
        ("read", "denied", "forbidden_field", "clinical", "", pid),
    }
    [denied] = [e for e in events if e.outcome == "denied"]
    assert denied.policy_rule == ""
    assert denied.actor_id == tenant.staff_ids["front_desk"]


# -- writes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "written"), [
    pytest.param({}, "department_id,full_name,phone", id="phone"),
    pytest.param({"nationalIdType": "RESIDENT_ID", "nationalId": "11010519491231002X"},
                 "department_id,full_name,national_id,national_id_type,phone", id="national-id"),
])
async def test_patient_create_leaves_one_create_event_naming_the_fields(
    tenant: Tenant, extra: dict[str, str], written: str
) -> None:
    before = await last_seq(tenant.id)
    data = {"fullName": "Lin Xiaomei", "phone": "13912345678", "departmentId": str(tenant.departments["A"].id),
            **extra}

    reply = await tenant.call("front_desk", CREATE_PATIENT, input=data)

    assert reply.errors == []
    pid = uuid.UUID(reply.data["patientCreate"]["patient"]["id"])
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("create", "allowed", "patient")
    assert (event.resource_id, event.patient_id) == (pid, pid)
    assert event.fields_read == written
    assert event.field_classes == "contact,identity"
    assert event.actor_id == tenant.staff_ids["front_desk"]
    assert event.policy_rule != ""


async def test_patient_update_leaves_one_update_event_naming_the_fields(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", diagnoses="Gingivitis")
    before = await last_seq(tenant.id)

    reply = await tenant.call("nurse", UPDATE_PATIENT, id=str(pid),
                              input={"diagnoses": "Periodontitis", "phone": "13912345678"})

    assert reply.data == {"patientUpdate": {"id": str(pid)}}
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("update", "allowed", "patient")
    assert (event.resource_id, event.patient_id) == (pid, pid)
    assert event.fields_read == "diagnoses,phone"
    assert event.field_classes == "clinical,contact"
    assert event.actor_id == tenant.staff_ids["nurse"]
    assert event.policy_rule != ""


async def test_contact_create_leaves_one_create_event_naming_the_fields(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await last_seq(tenant.id)

    reply = await tenant.call("front_desk", CREATE_CONTACT, pid=str(pid),
                              input={"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13712345678"})

    assert reply.errors == []
    cid = uuid.UUID(reply.data["contactCreate"]["id"])
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("create", "allowed", "contact")
    assert (event.resource_id, event.patient_id) == (cid, pid)
    # The input's defaults (isEmergency, mayReceiveInformation, notes) are written too.
    assert event.fields_read == "is_emergency,may_receive_information,name,notes,phone,relationship"
    assert event.actor_id == tenant.staff_ids["front_desk"]
    assert event.policy_rule != ""


async def test_contact_delete_leaves_one_delete_event(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)
    before = await last_seq(tenant.id)

    reply = await tenant.call("front_desk", DELETE_CONTACT, id=str(cid))

    assert reply.data == {"contactDelete": str(cid)}
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("delete", "allowed", "contact")
    assert (event.resource_id, event.patient_id) == (cid, pid)
    assert event.fields_read == ""
    assert await Contact.exists(id=cid) is False


# Denied writes: (role, query, variables(pid, cid, tenant), action, reason, resource id "patient"/"contact"/None)
DENIED_WRITES = {
    "front desk writes a diagnosis": (
        "front_desk", UPDATE_PATIENT, lambda pid, cid, t: {"id": str(pid), "input": {"diagnoses": "Flu"}},
        "update", "forbidden", "patient"),
    "support agent registers a patient": (
        "support_agent", CREATE_PATIENT, lambda pid, cid, t: {"input": {"fullName": "Lin Xiaomei"}},
        "create", "forbidden", None),
    "admin deletes a contact": (
        "admin", DELETE_CONTACT, lambda pid, cid, t: {"id": str(cid)},
        "delete", "forbidden", "contact"),
    "nurse updates a patient outside her department": (
        "nurse", UPDATE_PATIENT, lambda pid, cid, t: {"id": str(pid), "input": {"fullName": "Lin Xiaomei"}},
        "update", "not_found", "patient"),
}


@pytest.mark.parametrize("case", list(DENIED_WRITES))
async def test_a_denied_write_leaves_one_denied_event_and_writes_nothing(tenant: Tenant, case: str) -> None:
    role, query, variables, action, reason, resource = DENIED_WRITES[case]
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    cid = await add_contact(tenant, pid)
    rows = await snapshot(tenant)
    before = await last_seq(tenant.id)

    reply = await tenant.call(role, query, **variables(pid, cid, tenant))

    assert reply.codes == ["NOT_FOUND" if reason == "not_found" else "FORBIDDEN"]
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.reason) == (action, "denied", reason)
    assert event.resource_id == {"patient": pid, "contact": cid, None: None}[resource]
    assert event.actor_id == tenant.staff_ids[role]
    assert (event.fields_read, event.policy_rule) == ("", "")
    assert await snapshot(tenant) == rows


# -- no values on the trail --------------------------------------------------------------


@pytest.mark.parametrize("with_national_id", [False, True])
async def test_no_audit_row_holds_a_value(tenant: Tenant, with_national_id: bool) -> None:
    secrets = ["Lin Xiaomei", "13912345678", "11010519491231002X", "Chronic periodontitis", "Wang Fang",
               "13712345678", "Allergic to penicillin", "nobody.here@example.org"]
    system_before = await last_seq(SYSTEM_CHAIN)
    before = await last_seq(tenant.id)
    identity = {"nationalIdType": "RESIDENT_ID", "nationalId": secrets[2]} if with_national_id else {}
    pid = await make_patient(tenant, "nurse", fullName=secrets[0], phone=secrets[1], diagnoses=secrets[3],
                             **identity)
    cid = await add_contact(tenant, pid, name=secrets[4], phone=secrets[5], notes=secrets[6])
    full = """query($id: ID!) { patient(id: $id) {
        fullName phone nationalIdType nationalId diagnoses contacts { name phone notes } } }"""
    assert (await tenant.call("nurse", full, id=str(pid))).errors == []
    assert (await tenant.call("front_desk", full, id=str(pid))).codes == ["FORBIDDEN"]
    reply = await tenant.call("nurse", UPDATE_PATIENT, id=str(pid), input={"fullName": secrets[0] + " Jr",
                                                                          "diagnoses": secrets[3] + " II"})
    assert reply.errors == []
    assert (await tenant.call("front_desk", DELETE_CONTACT, id=str(cid))).errors == []
    failed = await gql(tenant.client, LOGIN, {"email": secrets[7], "password": secrets[3]})
    assert failed.codes == ["UNAUTHENTICATED"]

    conn = Tortoise.get_connection("default")
    rows = await conn.execute_query_dict(  # raw rows: every column as stored
        "SELECT * FROM audit_event WHERE (institution_id = ? AND seq > ?) OR (institution_id = ? AND seq > ?)"
        if conn.capabilities.dialect != "postgres" else
        "SELECT * FROM audit_event WHERE (institution_id = $1 AND seq > $2) OR (institution_id = $3 AND seq > $4)",
        [str(tenant.id), before, str(SYSTEM_CHAIN), system_before],
    )
    assert len(rows) >= 8  # create, contact create, reads, denied read, update, delete, failed login
    for row in rows:
        for column, value in row.items():
            for secret in secrets:
                assert secret.lower() not in str(value).lower(), f"{column} of seq {row['seq']} holds a value"
                assert secret.lower() not in str(value).replace("+86", "").lower()


# -- sessions ----------------------------------------------------------------------------


async def test_a_login_is_audited_with_its_session(tenant: Tenant) -> None:
    before = await last_seq(tenant.id)

    await login(tenant.client, tenant.emails["doctor"])

    [event] = await events_since(tenant.id, before)
    session = await Session.filter(staff_id=tenant.staff_ids["doctor"]).order_by("-created_at", "-id").first()
    assert session is not None
    assert (event.action, event.outcome, event.resource_type, event.reason) == ("login", "allowed", "session", "")
    assert (event.actor_kind, event.actor_id, event.resource_id) == (
        "staff", tenant.staff_ids["doctor"], tenant.staff_ids["doctor"])
    assert event.token_id == session.id
    assert event.client_address == CLIENT_ADDRESS


async def test_a_logout_is_audited(tenant: Tenant) -> None:
    token = await login(tenant.client, tenant.emails["doctor"])
    before = await last_seq(tenant.id)

    reply = await gql(tenant.client, LOGOUT, token=token)

    assert reply.data == {"logout": True}
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.resource_type) == ("logout", "allowed", "session")
    assert event.actor_id == tenant.staff_ids["doctor"]
    assert event.resource_id == event.token_id


async def test_a_failed_login_is_audited_on_the_institution_chain(tenant: Tenant) -> None:
    before = await last_seq(tenant.id)

    reply = await gql(tenant.client, LOGIN, {"email": tenant.emails["doctor"], "password": "wrong password"})

    assert reply.codes == ["UNAUTHENTICATED"]
    [event] = await events_since(tenant.id, before)
    assert (event.action, event.outcome, event.reason) == ("login", "denied", "bad_credentials")
    assert (event.actor_kind, event.actor_id, event.resource_id) == (
        "staff", tenant.staff_ids["doctor"], tenant.staff_ids["doctor"])
    assert event.token_id is None


async def test_repeated_failures_lock_the_account_and_are_audited(tenant: Tenant) -> None:
    before = await last_seq(tenant.id)

    for _ in range(5):  # Limits.login_max_failures
        failed = await gql(tenant.client, LOGIN, {"email": tenant.emails["doctor"], "password": "wrong password"})
        assert failed.codes == ["UNAUTHENTICATED"]
    locked = await gql(tenant.client, LOGIN, {"email": tenant.emails["doctor"], "password": PASSWORD})

    assert locked.codes == ["RATE_LIMITED"]
    events = await events_since(tenant.id, before)
    assert [(e.action, e.outcome, e.reason) for e in events] == [
        *[("login", "denied", "bad_credentials")] * 5,
        ("lockout", "denied", "too_many_failures"),
        ("login", "denied", "locked"),
    ]
    assert {e.actor_id for e in events} == {tenant.staff_ids["doctor"]}


async def test_a_login_with_an_unknown_email_is_audited_on_the_system_chain(tenant: Tenant) -> None:
    before, system_before = await last_seq(tenant.id), await last_seq(SYSTEM_CHAIN)

    reply = await gql(tenant.client, LOGIN, {"email": "nobody.here@example.org", "password": "whatever it is"})

    assert reply.codes == ["UNAUTHENTICATED"]
    assert await events_since(tenant.id, before) == []
    [event] = await events_since(SYSTEM_CHAIN, system_before)
    assert (event.action, event.outcome, event.reason, event.resource_type) == (
        "login", "denied", "bad_credentials", "session")
    assert (event.actor_kind, event.actor_id, event.resource_id) == ("anonymous", None, None)
    assert event.client_address == CLIENT_ADDRESS


# -- no record, no result ----------------------------------------------------------------


async def test_a_read_returns_no_data_when_the_audit_append_fails(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Lin Xiaomei", phone="13912345678", diagnoses="Gingivitis")
    before = await last_seq(tenant.id)

    async with audit_refuses_inserts():
        reply = await tenant.call("nurse", READ_ONE, id=str(pid))

    assert reply.data is None
    assert reply.codes == ["INTERNAL_SERVER_ERROR"]
    for value in ("Lin Xiaomei", "13912345678", "Gingivitis"):
        assert value not in str(reply.body)
    assert await events_since(tenant.id, before) == []
    assert (await tenant.call("nurse", READ_ONE, id=str(pid))).errors == []  # the store is back


async def _write_create_patient(tenant: Tenant, pid: uuid.UUID, cid: uuid.UUID) -> Any:
    return await tenant.call("front_desk", CREATE_PATIENT, input={"fullName": "Lin Xiaomei"})


async def _write_update_patient(tenant: Tenant, pid: uuid.UUID, cid: uuid.UUID) -> Any:
    return await tenant.call("nurse", UPDATE_PATIENT, id=str(pid), input={"diagnoses": "Periodontitis"})


async def _write_create_contact(tenant: Tenant, pid: uuid.UUID, cid: uuid.UUID) -> Any:
    return await tenant.call("front_desk", CREATE_CONTACT, pid=str(pid),
                             input={"name": "Li Na", "relationship": "CHILD"})


async def _write_delete_contact(tenant: Tenant, pid: uuid.UUID, cid: uuid.UUID) -> Any:
    return await tenant.call("front_desk", DELETE_CONTACT, id=str(cid))


WRITES: dict[str, Callable[[Tenant, uuid.UUID, uuid.UUID], Awaitable[Any]]] = {
    "patientCreate": _write_create_patient,
    "patientUpdate": _write_update_patient,
    "contactCreate": _write_create_contact,
    "contactDelete": _write_delete_contact,
}


@pytest.mark.parametrize("mutation", list(WRITES))
async def test_a_write_rolls_back_when_its_audit_append_fails(tenant: Tenant, mutation: str) -> None:
    pid = await make_patient(tenant, "nurse", diagnoses="Gingivitis")
    cid = await add_contact(tenant, pid)
    rows = await snapshot(tenant)
    before = await last_seq(tenant.id)

    async with audit_refuses_inserts():
        reply = await WRITES[mutation](tenant, pid, cid)

    assert reply.codes == ["INTERNAL_SERVER_ERROR"]
    assert reply.data is None or reply.data == {mutation: None}
    assert await snapshot(tenant) == rows  # the write went with its audit record
    assert await events_since(tenant.id, before) == []
