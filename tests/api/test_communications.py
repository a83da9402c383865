"""The communication log through the API: a patient's messages and logged calls for staff who read the log
through the patient's reach (newest first, paged at a fixed SQL cost), the portal's own log and contact
preferences, the staff's logged calls, the patient's data export; every refusal leaves nothing written but
its record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from models import AuditEvent, Communication, Patient
from resolvers import communication
from resolvers.context import Services
from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, events_since, mark, open_account

FIELDS = "id cause purpose direction channel status refusal dueAt sentAt contactId staffId subject body note"
LOG = f"""query($id: ID!, $first: Int, $after: String) {{ patientCommunications(patientId: $id, first: $first,
  after: $after) {{ edges {{ cursor node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
MINE = f"query($first: Int) {{ myCommunications(first: $first) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
CALL = f"""mutation($input: CommunicationLogCallInput!) {{ communicationLogCall(input: $input) {{ {FIELDS} }} }}"""
PREFERENCES = "query { myContactPreferences { consent channels preferredChannel purposes } }"
SET_PREFERENCES = """mutation($input: ContactPreferencesInput!) { myContactPreferencesUpdate(input: $input) {
  consent channels preferredChannel purposes } }"""
EXPORT = "query { myDataExport }"
NOON = datetime(2030, 3, 12, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


async def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def messages(tenant: Tenant, pid: uuid.UUID, count: int, start: datetime = NOON) -> list[Communication]:
    """``count`` reminders queued for the patient, an hour apart (the patient's name is the file's when sent: the
    files of these tests are Li Na's)."""
    async with in_transaction():
        return [await communication.schedule(tenant.id, key=f"test:{uuid.uuid4()}", cause="appointment_reminder",
                                             patient_id=pid, due_at=start + timedelta(hours=n),
                                             variables={"patient_name": "Li Na", "date": "2030-03-13"})
                for n in range(count)]


async def reachable(tenant: Tenant, department: str = "A") -> uuid.UUID:
    return await make_patient(tenant, fullName="Li Na", contactConsent=True, contactChannels=["SMS"],
                              phone="13800138000", departmentId=str(tenant.departments[department].id))


# -- the staff's log ----------------------------------------------------------------------------------------


async def test_the_log_lists_a_patients_messages_newest_first_in_pages(tenant: Tenant, services: Services) -> None:
    pid = await reachable(tenant)
    queued = await messages(tenant, pid, 3)
    await communication.deliver_due(services, {"sms": _Sender()}, now=NOON)  # the first goes out

    first = await ok(await tenant.call("nurse", LOG, id=str(pid), first=2), "patientCommunications")
    rest = await ok(await tenant.call("nurse", LOG, id=str(pid), first=2, after=first["pageInfo"]["endCursor"]),
                    "patientCommunications")

    nodes = [e["node"] for e in first["edges"] + rest["edges"]]
    assert [n["id"] for n in nodes] == [str(m.id) for m in reversed(queued)]
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)
    assert [n["status"] for n in nodes] == ["QUEUED", "QUEUED", "SENT"]
    sent = nodes[2]
    assert (sent["cause"], sent["purpose"], sent["channel"], sent["direction"]) == (
        "APPOINTMENT_REMINDER", "CARE", "SMS", "OUTBOUND")
    assert "Li Na" in sent["body"] and sent["subject"]
    # a care message carries its way out too; staff read a marker in its place (the link withdraws consent)
    assert "退订：[unsubscribe link: sent to the recipient only]" in sent["body"] and "token=" not in sent["body"]
    assert nodes[0]["body"] is None and nodes[0]["channel"] is None  # rendered only when sent
    reads = await AuditEvent.filter(institution_id=tenant.id, patient_id=pid, action="read",
                                    actor_id=tenant.staff_ids["nurse"])
    assert any("contact" in e.field_classes and "communication.body" in e.fields_read for e in reads)


async def test_a_log_page_costs_the_same_sql_whatever_its_size(tenant: Tenant, services: Services,
                                                              sql_counter: SqlCounter) -> None:
    pid = await reachable(tenant)
    await messages(tenant, pid, 6)
    await communication.deliver_due(services, {"sms": _Sender()}, now=NOON + timedelta(hours=6))

    costs = []
    for first in (2, 6):
        start = len(sql_counter.statements)
        page = await ok(await tenant.call("front_desk", LOG, id=str(pid), first=first), "patientCommunications")
        assert len(page["edges"]) == first and all(e["node"]["body"] for e in page["edges"])
        costs.append(len(sql_counter.statements) - start)
    assert costs[0] == costs[1]


@pytest.mark.parametrize("role", ["admin", "compliance_officer"])
async def test_roles_without_the_log_are_refused_and_recorded(tenant: Tenant, role: str) -> None:
    pid = await reachable(tenant)
    await messages(tenant, pid, 1)
    before = await mark(tenant.id)

    reply = await tenant.call(role, LOG, id=str(pid))

    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert await denials_since(tenant.id, before) == [("read", "communication", "forbidden", None, pid)]


async def test_a_patient_out_of_reach_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    elsewhere = await reachable(tenant, "B")  # the doctor works in department A
    foreign = await reachable(other_tenant)
    for pid in (elsewhere, foreign, uuid.uuid4()):
        before = await mark(tenant.id)
        reply = await tenant.call("doctor", LOG, id=str(pid))
        assert reply.codes == ["NOT_FOUND"]
        named = pid if pid == elsewhere else None  # a file of this institution is named; foreign or missing: not
        assert await denials_since(tenant.id, before) == [("read", "patient", "not_found", pid, named)]


# -- logged calls ------------------------------------------------------------------------------------------


async def test_staff_log_a_call_with_its_note_sealed(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    before = await mark(tenant.id)
    at = datetime.now(UTC) - timedelta(minutes=10)

    call = await ok(await tenant.call("support_agent", CALL, input={
        "patientId": str(pid), "direction": "INBOUND", "occurredAt": at.isoformat(),
        "note": "Asked to move Friday's visit"}), "communicationLogCall")

    assert (call["cause"], call["status"], call["direction"], call["channel"], call["note"], call["staffId"]) == (
        "LOGGED_CALL", "SENT", "INBOUND", "PHONE", "Asked to move Friday's visit",
        str(tenant.staff_ids["support_agent"]))
    assert datetime.fromisoformat(call["sentAt"]) == at
    row = await Communication.get(id=call["id"])
    assert b"Friday" not in bytes(row.note or b"") and row.key == f"logged_call:{row.id}"
    (write,) = await events_since(tenant.id, before, action="create", resource_type="communication")
    assert (write.patient_id, write.outcome, write.fields_read) == (pid, "allowed",
                                                                     "contact,direction,note,occurred_at")
    (entry,) = [e["node"] for e in (await ok(await tenant.call("nurse", LOG, id=str(pid)),
                                             "patientCommunications"))["edges"]]
    assert entry["note"] == "Asked to move Friday's visit"


async def test_a_doctor_may_not_log_a_call_and_nothing_is_written(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    before = await mark(tenant.id)

    reply = await tenant.call("doctor", CALL, input={"patientId": str(pid), "note": "Called"})

    assert reply.codes == ["FORBIDDEN"]
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid).count() == 0
    assert await denials_since(tenant.id, before) == [("create", "communication", "forbidden", None, pid)]


async def test_a_logged_call_checks_its_input(tenant: Tenant, other_tenant: Tenant) -> None:
    pid, other = await reachable(tenant), await reachable(tenant)
    contact = await _contact(tenant, other)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for data, field in (({"occurredAt": future}, "input.occurredAt"), ({"contactId": contact}, "input.contactId"),
                        ({"note": "x" * 2001}, "input.note")):
        reply = await tenant.call("front_desk", CALL, input={"patientId": str(pid), **data})
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == field
    before = await mark(tenant.id)
    reply = await tenant.call("front_desk", CALL, input={"patientId": str(await reachable(other_tenant))})
    assert reply.codes == ["NOT_FOUND"] and len(await denials_since(tenant.id, before)) == 1
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid).count() == 0


async def test_a_logged_call_naming_another_patients_contact_is_a_recorded_refusal(
        tenant: Tenant, other_tenant: Tenant) -> None:
    """Found in review: the refusal was answered but not on the trail (a ticket naming one recorded it). Another
    patient's contact, another institution's and none at all are refused alike, each recorded; the patient's own is
    logged."""
    pid = await reachable(tenant)
    neighbours = await _contact(tenant, await reachable(tenant))
    theirs = await _contact(other_tenant, await reachable(other_tenant))
    for contact in (neighbours, theirs, str(uuid.uuid4())):
        before = await mark(tenant.id)
        reply = await tenant.call("front_desk", CALL, input={"patientId": str(pid), "contactId": contact})
        assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.contactId"
        assert await denials_since(tenant.id, before) == [("create", "contact", "not_found", uuid.UUID(contact), pid)]
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid).count() == 0
    own = await _contact(tenant, pid)
    await ok(await tenant.call("front_desk", CALL, input={"patientId": str(pid), "contactId": own}),
             "communicationLogCall")


# -- the portal -----------------------------------------------------------------------------------------------


async def test_a_patient_reads_their_own_messages_never_the_staffs_note(tenant: Tenant, services: Services) -> None:
    me = await open_account(tenant, fullName="Li Na", contactConsent=True, contactChannels=["SMS"],
                            phone="13800138000")
    someone = await reachable(tenant)
    await messages(tenant, me.patient_id, 1)
    await messages(tenant, someone, 1)
    await communication.deliver_due(services, {"sms": _Sender()}, now=NOON)
    await ok(await tenant.call("front_desk", CALL, input={"patientId": str(me.patient_id), "note": "Rude"}),
             "communicationLogCall")

    nodes = [e["node"] for e in (await ok(await me.call(MINE, first=10), "myCommunications"))["edges"]]

    assert [n["cause"] for n in nodes] == ["APPOINTMENT_REMINDER", "LOGGED_CALL"]
    assert "Li Na" in nodes[0]["body"] and nodes[1]["note"] is None


async def test_staff_have_no_own_log_and_a_patient_reaches_only_their_own(tenant: Tenant) -> None:
    me = await open_account(tenant)
    other = await reachable(tenant)
    await messages(tenant, other, 1)
    before = await mark(tenant.id)

    assert (await tenant.call("front_desk", MINE)).codes == ["NOT_FOUND"]
    assert (await me.call(LOG, id=str(other))).codes == ["NOT_FOUND"]
    assert (await ok(await me.call(LOG, id=str(me.patient_id)), "patientCommunications"))["edges"] == []
    assert await denials_since(tenant.id, before) == [("read", "patient", "not_found", None, None),
                                                      ("read", "patient", "not_found", other, other)]


async def test_a_patient_sets_their_contact_preferences_recorded_as_consent(tenant: Tenant) -> None:
    me = await open_account(tenant)
    assert await ok(await me.call(PREFERENCES), "myContactPreferences") == {
        "consent": False, "channels": [], "preferredChannel": None, "purposes": ["CARE"]}
    before = await mark(tenant.id)

    updated = await ok(await me.call(SET_PREFERENCES, input={
        "consent": True, "channels": ["EMAIL", "SMS"], "preferredChannel": "EMAIL",
        "purposes": ["CARE", "GREETING"]}), "myContactPreferencesUpdate")

    assert updated == {"consent": True, "channels": ["EMAIL", "SMS"], "preferredChannel": "EMAIL",
                       "purposes": ["CARE", "GREETING"]}
    row = await Patient.get(id=me.patient_id)
    assert (row.contact_consent, row.contact_channels, row.preferred_channel, row.contact_purposes) == (
        True, "|email|sms|", "email", "|care|greeting|")
    written = await events_since(tenant.id, before, outcome="allowed", patient_id=me.patient_id)
    assert {(e.action, e.resource_type, e.fields_read) for e in written if e.action != "read"} == {
        ("update", "patient", "contact_channels,contact_consent,contact_purposes,preferred_channel"),
        ("consent", "contact_consent", "contact_channels,contact_consent,contact_purposes,preferred_channel")}

    await ok(await me.call(SET_PREFERENCES, input={"purposes": []}), "myContactPreferencesUpdate")
    assert (await Patient.get(id=me.patient_id)).contact_purposes == "|"  # none: not even care


async def test_staff_record_the_purposes_a_patient_agreed_to_on_the_file(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    before = await mark(tenant.id)
    update = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
    read = "query($id: ID!) { patient(id: $id) { contactPurposes } }"

    await ok(await tenant.call("front_desk", update, id=str(pid), input={"contactPurposes": ["GREETING", "CARE"]}),
             "patientUpdate")

    assert await ok(await tenant.call("nurse", read, id=str(pid)), "patient") == {
        "contactPurposes": ["CARE", "GREETING"]}
    consent = await events_since(tenant.id, before, action="consent")
    assert [(e.resource_type, e.fields_read) for e in consent] == [("contact_consent", "contact_purposes")]
    reply = await tenant.call("front_desk", update, id=str(pid), input={"contactPurposes": ["SPAM"]})
    assert reply.codes == ["BAD_USER_INPUT"]
    assert (await tenant.call("doctor", update, id=str(pid), input={"contactPurposes": []})).codes == ["FORBIDDEN"]
    assert (await Patient.get(id=pid)).contact_purposes == "|care|greeting|"


async def test_staff_cannot_use_the_portals_preferences(tenant: Tenant) -> None:
    pid = await reachable(tenant)
    before = await mark(tenant.id)

    reply = await tenant.call("front_desk", SET_PREFERENCES, input={"purposes": ["CAMPAIGN"]})

    assert reply.codes == ["NOT_FOUND"]
    assert (await Patient.get(id=pid)).contact_purposes == "|care|"
    assert len(await denials_since(tenant.id, before)) == 1
    assert (await tenant.call("doctor", SET_PREFERENCES, input={"purposes": []})).codes == ["FORBIDDEN"]


async def test_the_data_export_holds_my_communications(tenant: Tenant, services: Services) -> None:
    me = await open_account(tenant, fullName="Li Na", contactConsent=True, contactChannels=["SMS"],
                            phone="13800138000")
    await messages(tenant, me.patient_id, 1)
    await communication.deliver_due(services, {"sms": _Sender()}, now=NOON)

    export = await ok(await me.call(EXPORT), "myDataExport")

    (sent,) = export["communications"]
    assert (sent["cause"], sent["status"], sent["channel"]) == ("APPOINTMENT_REMINDER", "SENT", "SMS")
    assert "Li Na" in sent["body"]


# -- helpers -----------------------------------------------------------------------------------------------


class _Sender:
    async def send(self, message: Any) -> str | None:
        return None


async def _contact(tenant: Tenant, pid: uuid.UUID) -> str:
    reply = await tenant.call("front_desk", """mutation($p: ID!, $i: ContactCreateInput!) {
      contactCreate(patientId: $p, input: $i) { id } }""", p=str(pid), i={"name": "Wang", "relationship": "SPOUSE"})
    return str(await ok(reply, "contactCreate") and reply.data["contactCreate"]["id"])
