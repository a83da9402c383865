"""The audit trail in the API's spelling (resolvers/audit_spelling.py): beside the stored codes, now deprecated,
``AuditEvent.resourceTypeName`` (``Patient``), ``fieldNames`` (``Patient.specialNeeds``, ``Contact.phone``) and
``reasonCode`` (``FORBIDDEN_FIELD``), and ``PatientAccess.fieldNames``; the filter ``resourceTypeName``. Names of
fields, never values; for compliance officers only; no statement more than the stored spellings cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models import AuditEvent
from resolvers import communication
from resolvers.context import Services
from tests.api.test_attachments import new_ticket, upload
from tests.api.test_improvement_items import CREATE as IMPROVEMENT
from tests.api.test_improvement_items import item as improvement_item
from tests.conftest import SqlCounter
from tests.factories import Response, Tenant, make_patient
from tests.patients import make_contact

EVENTS = """query($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) {
  nodes { seq action outcome resourceType resourceTypeName fieldsRead fieldNames reason reasonCode } } }"""
EVENTS_COUNTED = """query($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) { totalCount
  nodes { seq action outcome resourceType resourceTypeName fieldsRead fieldNames reason reasonCode } } }"""
REPORT = """query($id: ID!) { patientAccessReportConnection(patientId: $id) { nodes { name fields fieldNames } } }"""
READ = "query($id: ID!) { patient(id: $id) { fullName phone specialNeeds contacts { name phone } } }"
CLINICAL = "query($id: ID!) { patient(id: $id) { allergies } }"
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
VALUES = ("Kinsley Moore", "13800001111", "Wheelchair user", "Bo Moore", "13600005555", "Penicillin")
LEVEL_SET = """mutation($level: Int!, $first: Int!, $resolution: Int!) {
  slaLevelSet(level: $level, firstResponseMinutes: $first, resolutionMinutes: $resolution, clock: CALENDAR) {
    levels { level } } }"""
NOON = datetime(2030, 3, 12, 4, 0, tzinfo=UTC)


class _Sender:
    async def send(self, message: Any) -> str | None:
        return None


async def _file(tenant: Tenant) -> uuid.UUID:
    """A file read whole by a nurse (its contact's phone too), refused in part to the front desk, its consent to be
    contacted changed."""
    pid = await make_patient(tenant, "nurse", fullName=VALUES[0], phone=VALUES[1], specialNeeds=VALUES[2],
                             allergies=VALUES[5])
    await make_contact(tenant, pid, VALUES[3], phone=VALUES[4])
    assert (await tenant.call("nurse", READ, id=str(pid))).errors == []
    assert (await tenant.call("front_desk", CLINICAL, id=str(pid))).codes == ["FORBIDDEN"]
    assert (await tenant.call("front_desk", UPDATE, id=str(pid),
                              input={"contactConsent": True, "contactChannels": ["SMS"]})).errors == []
    return pid


def _nodes(reply: Response, root: str = "auditEvents") -> list[dict[str, Any]]:
    assert reply.errors == [], reply.errors
    return list(reply.data[root]["nodes"])


def _no_values(reply: Response) -> None:
    assert not any(value in str(reply.body) for value in VALUES)


async def _schema_fields(tenant: Tenant, type_name: str) -> set[str]:
    reply = await tenant.call("compliance_officer", "query($t: String!) { __type(name: $t) { fields { name } } }",
                              t=type_name)
    return {f["name"] for f in reply.data["__type"]["fields"]}


async def test_an_event_names_its_kind_fields_and_reason_as_the_api_does(tenant: Tenant) -> None:
    pid = await _file(tenant)

    reply = await tenant.call("compliance_officer", EVENTS, filter={"patient": str(pid)})

    events = _nodes(reply)
    _no_values(reply)
    [created] = [e for e in events if e["action"] == "CREATE" and e["resourceType"] == "patient"]
    [read] = [e for e in events if e["action"] == "READ" and "contact.phone" in e["fieldsRead"]]
    [refused] = [e for e in events if e["outcome"] == "DENIED"]
    [consent] = [e for e in events if e["action"] == "CONSENT"]
    assert (created["resourceTypeName"], read["resourceTypeName"]) == ("Patient", "Patient")
    assert "department_id" in created["fieldsRead"] and "full_name" in created["fieldsRead"]
    assert {"Patient.department", "Patient.fullName", "Patient.specialNeeds"} <= set(created["fieldNames"])
    assert read["fieldsRead"] == ["contact.phone", "phone", "special_needs"]  # the stored spelling, as before
    assert read["fieldNames"] == ["Contact.phone", "Patient.phone", "Patient.specialNeeds"]  # one each, in order
    assert (refused["reason"], refused["reasonCode"], refused["fieldNames"]) == ("forbidden_field",
                                                                                "FORBIDDEN_FIELD", [])
    assert (read["reason"], read["reasonCode"]) == ("", "")
    # a consent to be contacted names the file's own fields, although its record is another kind
    assert (consent["resourceType"], consent["resourceTypeName"]) == ("contact_consent", "ContactConsent")
    assert consent["fieldNames"] == ["Patient.contactChannels", "Patient.contactConsent"]
    # every name is a field of the API
    named = {name for e in events for name in e["fieldNames"]}
    for type_name in ("Patient", "Contact"):
        fields = await _schema_fields(tenant, type_name)
        assert {n.split(".")[1] for n in named if n.startswith(f"{type_name}.")} <= fields


async def test_a_disclosure_names_the_patients_field(tenant: Tenant, services: Services) -> None:
    pid = await make_patient(tenant, fullName="Li Na", contactConsent=True, contactChannels=["SMS"], phone=VALUES[1])
    async with in_transaction():
        await communication.schedule(tenant.id, key=f"test:{uuid.uuid4()}", cause="appointment_reminder",
                                     patient_id=pid, due_at=NOON - timedelta(minutes=1),
                                     variables={"patient_name": "Li Na", "date": "2030-03-13"})
    await communication.deliver_due(services, {"sms": _Sender()}, now=NOON)

    reply = await tenant.call("compliance_officer", EVENTS, filter={"patient": str(pid), "action": "DISCLOSE"})

    [disclosed] = _nodes(reply)
    _no_values(reply)
    assert (disclosed["resourceTypeName"], disclosed["fieldsRead"], disclosed["fieldNames"], disclosed["reasonCode"]) \
        == ("Communication", ["appointment.slot_start", "full_name", "phone"],
            ["Appointment.slotStart", "Patient.fullName", "Patient.phone"], "SENT_SMS")


async def test_the_access_report_names_the_fields_as_the_api_does(tenant: Tenant) -> None:
    pid = await _file(tenant)

    reply = await tenant.call("compliance_officer", REPORT, id=str(pid))

    people = {p["name"].split()[0]: p for p in _nodes(reply, "patientAccessReportConnection")}
    _no_values(reply)
    nurse, desk = people["nurse"], people["front_desk"]
    assert {"contact.phone", "department_id", "special_needs"} <= set(nurse["fields"])
    assert {"Contact.phone", "Patient.department", "Patient.specialNeeds"} <= set(nurse["fieldNames"])
    assert nurse["fieldNames"] == sorted(nurse["fieldNames"]) and len(nurse["fieldNames"]) == len(nurse["fields"])
    assert not any("_" in name for name in nurse["fieldNames"] + desk["fieldNames"])
    assert {"Patient.contactChannels", "Patient.contactConsent"} <= set(desk["fieldNames"])


async def test_the_filter_takes_the_kind_in_either_spelling(tenant: Tenant) -> None:
    pid = await _file(tenant)
    stored = _nodes(await tenant.call("compliance_officer", EVENTS,
                                      filter={"patient": str(pid), "resourceType": "contact_consent"}))
    named = _nodes(await tenant.call("compliance_officer", EVENTS,
                                     filter={"patient": str(pid), "resourceTypeName": "ContactConsent"}))
    both = _nodes(await tenant.call("compliance_officer", EVENTS, filter={
        "patient": str(pid), "resourceType": "contact_consent", "resourceTypeName": "ContactConsent"}))

    assert stored and named == stored == both
    assert {e["resourceTypeName"] for e in named} == {"ContactConsent"}
    differ = await tenant.call("compliance_officer", EVENTS,
                               filter={"resourceType": "patient", "resourceTypeName": "ContactConsent"})
    assert differ.codes == ["BAD_USER_INPUT"] and differ.errors[0]["extensions"]["field"] == "filter.resourceTypeName"


async def test_a_kind_whose_type_has_another_name_is_named_and_filtered_by_that_type(tenant: Tenant) -> None:
    """An improvement item, a ticket's attachment and an SLA level are stored as ``improvement``, ``attachment`` and
    ``sla_policy``; their GraphQL types are ImprovementItem, TicketAttachment and SlaLevel (found in review: they
    were named Improvement, Attachment and SlaPolicy, no type of the schema, and a filter by the type's name, as
    documented, answered no events and a totalCount of 0)."""
    tid = await new_ticket(tenant)
    assert (await upload(tenant, "support_agent", tid)).status_code == 201
    created = await tenant.call("department_head", IMPROVEMENT, input=improvement_item(tenant))
    assert created.errors == [], created.errors
    assert (await tenant.call("admin", LEVEL_SET, level=3, first=240, resolution=1440)).errors == []
    types = "query($t: String!) { __type(name: $t) { fields { name } } }"

    for kind, name in (("improvement", "ImprovementItem"), ("attachment", "TicketAttachment"),
                       ("sla_policy", "SlaLevel")):
        reply = await tenant.call("compliance_officer", EVENTS_COUNTED, filter={"resourceTypeName": name})
        named, count = _nodes(reply), reply.data["auditEvents"]["totalCount"]
        stored = _nodes(await tenant.call("compliance_officer", EVENTS, filter={"resourceType": kind}))
        assert named and named == stored and count == len(named), name
        assert {e["resourceTypeName"] for e in named} == {name}
        fields = {f["name"] for f in (await tenant.call("compliance_officer", types, t=name)).data["__type"]["fields"]}
        written = {f.partition(".")[2] for e in named for f in e["fieldNames"] if f.startswith(f"{name}.")}
        assert written & fields, (name, written)  # its fields under its type's name


async def test_a_role_that_may_not_read_the_trail_gets_none_of_it(tenant: Tenant) -> None:
    pid = await _file(tenant)
    before = await _last_seq(tenant)

    for query, variables in ((EVENTS, {"filter": {"patient": str(pid), "resourceTypeName": "Patient"}}),
                             (REPORT, {"id": str(pid)})):
        reply = await tenant.call("nurse", query, **variables)
        assert not any((reply.data or {}).values()) and reply.codes == ["FORBIDDEN"]  # null (the report's nullable)
        _no_values(reply)
        assert "Patient." not in str(reply.body)

    refusals = await tenant.audit_events(seq__gt=before)
    assert [(e.action, e.outcome, e.reason, e.resource_type, e.actor_id, e.fields_read) for e in refusals] == [
        ("read", "denied", "forbidden", kind, tenant.staff_ids["nurse"], "")
        for kind in ("audit_event", "audit_report")]  # the refusals, and nothing else


async def test_the_spellings_cost_no_statement(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pid = await _file(tenant)
    trail = "query($p: ID!) {{ auditEvents(first: 50, filter: {{patient: $p}}) {{ nodes {{ seq {} }} }} }}"
    report = "query($p: ID!) {{ patientAccessReportConnection(patientId: $p) {{ nodes {{ name {} }} }} }}"

    async def statements(query: str) -> int:
        start = len(sql_counter.statements)
        reply = await tenant.call("compliance_officer", query, p=str(pid))
        assert reply.errors == [], reply.errors
        return len(sql_counter.statements) - start

    assert await statements(trail.format("resourceType fieldsRead reason")) == await statements(
        trail.format("resourceType fieldsRead reason resourceTypeName fieldNames reasonCode"))
    assert await statements(report.format("fields")) == await statements(report.format("fields fieldNames"))


async def _last_seq(tenant: Tenant) -> int:
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    assert last is not None
    return last.seq
