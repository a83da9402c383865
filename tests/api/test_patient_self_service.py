"""The patient principal through the API: their own file and nothing else.

A signed-in patient reads their file (never the staff-only labels), changes their contact details,
preferences and family contacts, manages their consents, sees who viewed their file, and takes a
copy of their data. Any other patient, of their institution or another, answers exactly like a
missing one; staff operations are refused. Every refusal writes nothing and is recorded once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from models import Contact, PartnerConsent, PartnerGrant, Patient
from tests.factories import Response, Tenant, gql, make_patient
from tests.patients import (
    NOT_ALLOWED,
    PatientUser,
    denials_since,
    errors_by_path,
    events_since,
    make_contact,
    make_partner,
    mark,
    open_account,
    stored,
    without_place,
)

VALID_RESIDENT_ID = "11010519491231002X"
NEIGHBOUR_RESIDENT_ID = "110105195001010039"

MY_FILE_FIELDS = """
  id fullName sex birthDate occupation nationalIdType nationalId status createdAt updatedAt
  address phone altPhone email preferredChannel preferredLanguage contactConsent contactChannels
  medicalHistory diagnoses allergies currentMedication dietPreferences activityPreferences specialNeeds
  department { id name } careTeam { id name }
  contacts { id patientId name relationship phone isEmergency mayReceiveInformation notes }
  partnerConsents { partnerId granted partner { id name } }
"""
MY_FILE = f"{{ myFile {{ {MY_FILE_FIELDS} }} }}"
PATIENT = f"query($id: ID!) {{ patient(id: $id) {{ {MY_FILE_FIELDS} }} }}"
PATIENT_IDS = "query($filter: PatientFilter) { patients(first: 100, filter: $filter) { nodes { id } } }"
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id %s } }"
CONSENT = """mutation($patientId: ID!, $partnerId: ID!, $granted: Boolean!) {
  partnerConsentSet(patientId: $patientId, partnerId: $partnerId, granted: $granted) {
    partnerId granted changedAt partner { id name } } }"""
CONTACT_CREATE = """mutation($patientId: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $patientId, input: $input) { id patientId name relationship phone isEmergency notes } }"""
CONTACT_UPDATE = """mutation($id: ID!, $input: ContactUpdateInput!) {
  contactUpdate(id: $id, input: $input) { id name phone notes } }"""
CONTACT_DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"
ACCESS_LOG = """query($first: Int! = 100, $after: String) { myAccessLog(first: $first, after: $after) {
  edges { cursor node { occurredAt action fieldClasses accessor { kind name roles } refused } }
  pageInfo { hasNextPage endCursor } } }"""
EXPORT = "{ myDataExport }"
TICKET_REPLY = """mutation($id: ID!, $body: String!, $internal: Boolean!) {
  ticketReply(id: $id, body: $body, internal: $internal) { id } }"""
GRANT = """mutation($input: PartnerGrantCreateInput!) { partnerGrantCreate(input: $input) { id revokedAt } }"""


@dataclass
class World:
    """Institution A with my file (and my account), a neighbour's file; institution B with a file."""

    a: Tenant
    b: Tenant
    me: PatientUser
    my_name: str
    my_contact: uuid.UUID
    neighbour: uuid.UUID
    neighbour_name: str
    neighbour_contact: uuid.UUID
    theirs: uuid.UUID
    their_name: str
    their_contact: uuid.UUID
    partner: uuid.UUID
    partner_name: str
    their_partner: uuid.UUID
    ticket: uuid.UUID

    @property
    def pid(self) -> str:
        return str(self.me.patient_id)

    def foreign_markers(self) -> list[str]:
        """Every string of other patients and of B that must never reach me."""
        ids = [self.neighbour, self.neighbour_contact, self.theirs, self.their_contact, self.b.id,
               self.their_partner, *self.b.staff_ids.values(), *(d.id for d in self.b.departments.values())]
        return [str(i) for i in ids] + [self.neighbour_name, self.their_name, "+8613700001111", "+8613500005555",
                                        NEIGHBOUR_RESIDENT_ID, "Neighbour street", "Their street",
                                        self.b.institution.name, "neighbour's spouse", "their spouse", "Other Lab"]


def staff_name(tenant: Tenant, role: str) -> str:
    return f"{role} {tenant.institution.name.rsplit(' ', 1)[-1]}"


async def ok(reply_coro: Any) -> Any:
    reply = await reply_coro
    assert reply.errors == [], reply.errors
    return reply.data


@pytest.fixture
async def world(tenant: Tenant, other_tenant: Tenant) -> World:
    tag = uuid.uuid4().hex[:8]
    my_name, neighbour_name, their_name = f"Me {tag}", f"Neighbour {tag}", f"Their {tag}"
    pid = await make_patient(
        tenant, fullName=my_name, sex="FEMALE", birthDate="1949-12-31", occupation="Retired teacher",
        nationalIdType="RESIDENT_ID", nationalId=VALID_RESIDENT_ID, address="1 My Road", phone="13800138000",
        altPhone="13800138001", email="me.home@example.com", preferredChannel="SMS", preferredLanguage="zh-CN",
        contactConsent=True, contactChannels=["SMS", "WECHAT"], dietPreferences="Soft food",
        activityPreferences="Tai chi", specialNeeds="Hard of hearing", segments=["VIP"], tags=["Needs Call"])
    await ok(tenant.call("nurse", UPDATE % "id", id=str(pid), input={
        "medicalHistory": "Hypertension", "diagnoses": "Caries", "allergies": "Penicillin",
        "currentMedication": "Amlodipine"}))
    await ok(tenant.call("admin", "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }",
                         p=str(pid), s=str(tenant.staff_ids["nurse"])))
    my_contact = await make_contact(tenant, pid, "my daughter", "13600006666", "Call after 6pm")
    neighbour = await make_patient(tenant, fullName=neighbour_name, phone="13700001111", address="Neighbour street",
                                   nationalIdType="RESIDENT_ID", nationalId=NEIGHBOUR_RESIDENT_ID,
                                   segments=["VIP"])
    neighbour_contact = await make_contact(tenant, neighbour, "neighbour's spouse", "13700002222")
    theirs = await make_patient(other_tenant, fullName=their_name, phone="13500005555", address="Their street")
    their_contact = await make_contact(other_tenant, theirs, "their spouse", "13500006666")
    partner_name = f"Sunrise Home Care {tag}"
    partner = await make_partner(tenant, partner_name)
    their_partner = await make_partner(other_tenant, f"Other Lab {tag}")
    ticket = await ok(tenant.call("front_desk", """mutation($input: TicketCreateInput!) {
        ticketCreate(input: $input) { id } }""", input={"channel": "HOTLINE", "category": "COMPLAINT",
                                                      "subject": "Waited too long", "patientId": str(pid)}))
    ticket_id = ticket["ticketCreate"]["id"]
    await ok(tenant.call("front_desk", "mutation($id: ID!) { ticketReply(id: $id, body: \"Difficult caller, "
                                       "handle with care\", internal: true) { id } }", id=ticket_id))
    me = await open_account(tenant, pid)
    return World(tenant, other_tenant, me, my_name, my_contact, neighbour, neighbour_name, neighbour_contact, theirs,
                 their_name, their_contact, partner, partner_name, their_partner, uuid.UUID(ticket_id))


def my_file(world: World, **changes: Any) -> dict[str, Any]:
    """My file as I see it: every field but the staff-only labels."""
    a = world.a
    return {
        "id": world.pid, "fullName": world.my_name, "sex": "FEMALE", "birthDate": "1949-12-31",
        "occupation": "Retired teacher", "nationalIdType": "RESIDENT_ID", "nationalId": VALID_RESIDENT_ID,
        "status": "ACTIVE", "address": "1 My Road", "phone": "+8613800138000", "altPhone": "+8613800138001",
        "email": "me.home@example.com", "preferredChannel": "SMS", "preferredLanguage": "zh-CN",
        "contactConsent": True, "contactChannels": ["SMS", "WECHAT"], "medicalHistory": "Hypertension",
        "diagnoses": "Caries", "allergies": "Penicillin", "currentMedication": "Amlodipine",
        "dietPreferences": "Soft food", "activityPreferences": "Tai chi", "specialNeeds": "Hard of hearing",
        "department": {"id": str(a.departments["A"].id), "name": "Department A"},
        "careTeam": [{"id": str(a.staff_ids["nurse"]), "name": staff_name(a, "nurse")}],
        "contacts": [{"id": str(world.my_contact), "patientId": world.pid, "name": "my daughter",
                      "relationship": "SPOUSE", "phone": "+8613600006666", "isEmergency": False,
                      "mayReceiveInformation": False, "notes": "Call after 6pm"}],
        "partnerConsents": [],
        **changes,
    }


def without_times(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("createdAt", "updatedAt")}


async def my_row(world: World) -> dict[str, Any]:
    return (await Patient.filter(id=world.me.patient_id).values())[0]


# -- who I am and my file -------------------------------------------------------------------------


async def test_me_is_the_patient_principal(world: World) -> None:
    reply = await world.me.call("{ me { id kind email name roles patientId partnerId scopes "
                                "institution { id name } departments { id } } }")
    assert reply.body == {"data": {"me": {
        "id": str(world.me.account_id), "kind": "PATIENT", "email": world.me.email, "name": "", "roles": [],
        "patientId": world.pid, "partnerId": None, "scopes": None,
        "institution": {"id": str(world.a.id), "name": world.a.institution.name}, "departments": []}}}


async def test_my_file_shows_every_field_but_the_staff_only_labels(world: World) -> None:
    before = await mark(world.a.id)

    reply = await world.me.call(MY_FILE)

    assert reply.errors == []
    assert without_times(reply.data["myFile"]) == my_file(world)
    assert datetime.fromisoformat(reply.data["myFile"]["createdAt"]) <= datetime.now(UTC)
    (event,) = await events_since(world.a.id, before)
    assert (event.actor_kind, event.actor_id, event.action, event.resource_type, event.patient_id, event.outcome,
            event.field_classes) == ("patient", world.me.account_id, "read", "patient", world.me.patient_id,
                                     "allowed", "clinical,contact,identity,needs")
    assert set(event.fields_read.split(",")) >= {"national_id", "phone", "diagnoses", "contact.phone"}


async def test_patient_by_my_id_and_my_only_list_entry_are_my_file(world: World) -> None:
    by_id = await world.me.call(PATIENT, id=world.pid)
    listed = await world.me.call(PATIENT_IDS)

    assert by_id.errors == [] and listed.errors == []
    assert without_times(by_id.data["patient"]) == my_file(world)
    assert listed.data == {"patients": {"nodes": [{"id": world.pid}]}}


STAFF_ONLY_READS: dict[str, tuple[str, list[Any]]] = {
    "myFile": ("{ myFile { id fullName segments tags } }", ["myFile"]),
    "patient": ("query($id: ID!) { patient(id: $id) { id fullName segments tags } }", ["patient"]),
    "patients": ("{ patients { nodes { id fullName segments tags } } }", ["patients", "nodes", 0]),
}


@pytest.mark.parametrize("shape", STAFF_ONLY_READS, ids=STAFF_ONLY_READS.keys())
async def test_staff_only_labels_are_null_and_forbidden(world: World, shape: str) -> None:
    query, path = STAFF_ONLY_READS[shape]
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call(query, **({"id": world.pid} if "$id" in query else {}))

    node = reply.data[path[0]] if shape != "patients" else reply.data["patients"]["nodes"][0]
    assert node == {"id": world.pid, "fullName": world.my_name, "segments": None, "tags": None}
    assert errors_by_path(reply) == [([*path, "segments"], "FORBIDDEN"), ([*path, "tags"], "FORBIDDEN")]
    assert {e["message"] for e in reply.errors} == {"Not allowed to read this field."}
    assert "VIP" not in json.dumps(reply.body) and "needs-call" not in json.dumps(reply.body)
    assert await stored(world.a) == state
    denied = await events_since(world.a.id, before, outcome="denied")
    assert [(e.action, e.resource_type, e.reason, e.field_classes, e.patient_id) for e in denied] == [
        ("read", "patient", "forbidden_field", "internal", world.me.patient_id)]


async def test_staff_see_the_labels_the_patient_does_not(world: World) -> None:
    """The twin of the refusal above: the labels are there, for staff."""
    reply = await world.a.call("front_desk", "query($id: ID!) { patient(id: $id) { segments tags } }", id=world.pid)
    assert reply.body == {"data": {"patient": {"segments": ["VIP"], "tags": ["needs-call"]}}}


LIST_FILTERS: dict[str, tuple[Callable[[World], dict[str, Any]], bool]] = {
    # the filter, and whether my own file matches it
    "neighbour's name": (lambda w: {"namePrefix": w.neighbour_name}, False),
    "neighbour's phone": (lambda w: {"phone": "13700001111"}, False),
    "neighbour's ID number": (lambda w: {"nationalIdType": "RESIDENT_ID", "nationalId": NEIGHBOUR_RESIDENT_ID},
                              False),
    "other institution's name": (lambda w: {"namePrefix": w.their_name}, False),
    "other institution's phone": (lambda w: {"phone": "13500005555"}, False),
    "other institution's department": (lambda w: {"departmentId": str(w.b.departments["A"].id)}, False),
    "my name": (lambda w: {"namePrefix": w.my_name}, True),
    "my phone": (lambda w: {"phone": "+86 138 0013 8000"}, True),
    "my ID number": (lambda w: {"nationalIdType": "RESIDENT_ID", "nationalId": VALID_RESIDENT_ID}, True),
    "my department": (lambda w: {"departmentId": str(w.a.departments["A"].id)}, True),
    "status": (lambda w: {"status": "ACTIVE"}, True),
}


@pytest.mark.parametrize("name", LIST_FILTERS)
async def test_my_list_holds_my_file_alone_whatever_the_filter(world: World, name: str) -> None:
    where, mine = LIST_FILTERS[name]

    reply = await world.me.call(PATIENT_IDS, filter=where(world))

    assert reply.body == {"data": {"patients": {"nodes": [{"id": world.pid}] if mine else []}}}


@pytest.mark.parametrize("where", [{"segment": "VIP"}, {"tag": "needs-call"}], ids=["segment", "tag"])
async def test_filtering_on_staff_only_labels_is_forbidden(world: World, where: dict[str, str]) -> None:
    before = await mark(world.a.id)

    reply = await world.me.call(PATIENT_IDS, filter=where)

    assert without_place(reply) == {"data": None, "errors": [NOT_ALLOWED]}
    assert await denials_since(world.a.id, before) == [("read", "patient", "forbidden", None, None)]


# -- other patients: exactly like missing ones ----------------------------------------------------

Variables = Callable[[World, str], dict[str, Any]]  # (world, the foreign id) -> variables


@dataclass(frozen=True)
class Operation:
    name: str
    query: str
    variables: Variables
    on_contact: bool  # the foreign id is a contact's (else a patient's)
    denial: tuple[str, str]  # (action, resource_type) of the refusal recorded


OPERATIONS = [
    Operation("patient", "query($id: ID!) { patient(id: $id) { id fullName phone diagnoses } }",
              lambda w, i: {"id": i}, False, ("read", "patient")),
    Operation("patient with nested contacts", "query($id: ID!) { patient(id: $id) { id contacts { id name } } }",
              lambda w, i: {"id": i}, False, ("read", "patient")),
    Operation("patientUpdate contact field", UPDATE % "phone",
              lambda w, i: {"id": i, "input": {"phone": "13911112222"}}, False, ("update", "patient")),
    Operation("patientUpdate identity field", UPDATE % "fullName",
              lambda w, i: {"id": i, "input": {"fullName": "Taken Over"}}, False, ("update", "patient")),
    Operation("contactCreate", CONTACT_CREATE,
              lambda w, i: {"patientId": i, "input": {"name": "Intruder", "relationship": "FRIEND"}}, False,
              ("create", "patient")),
    Operation("partnerConsentSet", CONSENT, lambda w, i: {"patientId": i, "partnerId": str(w.partner),
                                                          "granted": True}, False, ("consent", "patient")),
    Operation("contactUpdate", CONTACT_UPDATE, lambda w, i: {"id": i, "input": {"notes": "mine now"}}, True,
              ("update", "contact")),
    Operation("contactDelete", CONTACT_DELETE, lambda w, i: {"id": i}, True, ("delete", "contact")),
]


@pytest.mark.parametrize("whose", ["neighbour", "other institution"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
async def test_another_patients_ids_answer_like_random_ids(world: World, operation: Operation, whose: str) -> None:
    if whose == "neighbour":
        target = world.neighbour_contact if operation.on_contact else world.neighbour
    else:
        target = world.their_contact if operation.on_contact else world.theirs
    a_before, b_before = await mark(world.a.id), await mark(world.b.id)
    a_state, b_state = await stored(world.a), await stored(world.b)

    theirs = await world.me.call(operation.query, **operation.variables(world, str(target)))

    assert theirs.codes == ["NOT_FOUND"]
    # a file of this institution is named on the refusal (its patient's report shows the attempt), never in the answer
    named = target if whose == "neighbour" and not operation.on_contact else None
    assert await denials_since(world.a.id, a_before) == [(*operation.denial, "not_found", target, named)]
    assert len(await events_since(world.a.id, a_before)) == 1
    missing = await world.me.call(operation.query, **operation.variables(world, str(uuid.uuid4())))
    assert without_place(theirs) == without_place(missing)
    assert await stored(world.a) == a_state
    assert await stored(world.b) == b_state
    assert await events_since(world.b.id, b_before) == []
    text = json.dumps(theirs.body, ensure_ascii=False)
    assert [marker for marker in world.foreign_markers() if marker in text] == []


async def test_my_own_ids_do_work_for_the_same_operations(world: World) -> None:
    """The twin of the refusals above, on my own file and contact."""
    for operation in OPERATIONS:
        if operation.name == "contactDelete":
            continue
        target = world.my_contact if operation.on_contact else world.me.patient_id
        variables = operation.variables(world, str(target))
        if operation.name == "patientUpdate identity field":
            assert (await world.me.call(operation.query, **variables)).codes == ["FORBIDDEN"]
            continue
        reply = await world.me.call(operation.query, **variables)
        assert reply.errors == [], (operation.name, reply.errors)
    reply = await world.me.call(CONTACT_DELETE, id=str(world.my_contact))
    assert reply.body == {"data": {"contactDelete": str(world.my_contact)}}


ALIASES = """query($mine: ID!, $neighbour: ID!, $theirs: ID!, $random: ID!) {
  mine: patient(id: $mine) { id fullName phone }
  neighbour: patient(id: $neighbour) { id fullName phone }
  theirs: patient(id: $theirs) { id fullName phone }
  random: patient(id: $random) { id fullName phone }
  file: myFile { id }
}"""


async def test_aliases_mixing_my_file_and_others_reach_only_mine(world: World) -> None:
    before = await mark(world.a.id)

    reply = await world.me.call(ALIASES, mine=world.pid, neighbour=str(world.neighbour), theirs=str(world.theirs),
                                random=str(uuid.uuid4()))

    assert reply.data == {"mine": {"id": world.pid, "fullName": world.my_name, "phone": "+8613800138000"},
                          "neighbour": None, "theirs": None, "random": None, "file": {"id": world.pid}}
    assert sorted(path[0] for path, code in errors_by_path(reply) if code == "NOT_FOUND") == [
        "neighbour", "random", "theirs"]
    assert len(reply.errors) == 3
    denied = await denials_since(world.a.id, before)
    assert sorted(str(d[3]) for d in denied if d[3] in (world.neighbour, world.theirs)) == sorted(
        [str(world.neighbour), str(world.theirs)])
    assert [(action, kind, reason) for action, kind, reason, _, _ in denied] == [("read", "patient", "not_found")] * 3
    all_random = await world.me.call(ALIASES, mine=world.pid, neighbour=str(uuid.uuid4()),
                                     theirs=str(uuid.uuid4()), random=str(uuid.uuid4()))
    assert without_place(reply) == without_place(all_random)


async def test_aliased_updates_change_my_file_and_nothing_else(world: World) -> None:
    neighbour_before = (await Patient.filter(id=world.neighbour).values())[0]
    query = """mutation($mine: ID!, $neighbour: ID!) {
      a: patientUpdate(id: $mine, input: {dietPreferences: "Vegetarian"}) { id dietPreferences }
      b: patientUpdate(id: $neighbour, input: {dietPreferences: "Vegetarian"}) { id dietPreferences }
    }"""

    reply = await world.me.call(query, mine=world.pid, neighbour=str(world.neighbour))

    assert reply.data == {"a": {"id": world.pid, "dietPreferences": "Vegetarian"}, "b": None}
    assert errors_by_path(reply) == [(["b"], "NOT_FOUND")]
    assert (await Patient.filter(id=world.neighbour).values())[0] == neighbour_before
    assert (await my_row(world))["diet_preferences"] == "Vegetarian"


FRAGMENTS = {
    "named": "query($id: ID!) { patient(id: $id) { ...F } } fragment F on Patient { id fullName contacts { id } }",
    "inline": "query($id: ID!) { patient(id: $id) { ... on Patient { id fullName contacts { id } } } }",
    "nested named": """query($id: ID!) { ...Q } fragment Q on Query { patient(id: $id) { ...F } }
                       fragment F on Patient { id nationalId }""",
}


@pytest.mark.parametrize("kind", FRAGMENTS)
async def test_fragments_reach_my_file_and_no_other(world: World, kind: str) -> None:
    mine = await world.me.call(FRAGMENTS[kind], id=world.pid)
    assert mine.errors == [] and mine.data["patient"]["id"] == world.pid

    for other in (world.neighbour, world.theirs):
        before = await mark(world.a.id)
        theirs = await world.me.call(FRAGMENTS[kind], id=str(other))
        missing = await world.me.call(FRAGMENTS[kind], id=str(uuid.uuid4()))
        assert theirs.codes == ["NOT_FOUND"]
        assert without_place(theirs) == without_place(missing)
        named = other if other == world.neighbour else None  # a file of this institution: named on the trail only
        assert (await denials_since(world.a.id, before))[0] == ("read", "patient", "not_found", other, named)


EVERYTHING = f"""{{
  me {{ id patientId institution {{ id name }} departments {{ id name }} }}
  myFile {{ {MY_FILE_FIELDS} }}
  patients(first: 100) {{
    nodes {{ id fullName phone contacts {{ id patientId name phone notes }} careTeam {{ id }} }}
  }}
  myFile2: myFile {{ partnerConsents {{ granted partner {{ id name }} }} }}
}}"""


async def test_nested_fields_never_carry_another_patient_or_institution(world: World) -> None:
    reply = await world.me.call(EVERYTHING)
    text = json.dumps(reply.body, ensure_ascii=False)

    assert reply.errors == []
    assert [marker for marker in world.foreign_markers() if marker in text] == []
    assert world.my_name in text and "my daughter" in text  # the control: the query reaches my data
    assert [node["id"] for node in reply.data["patients"]["nodes"]] == [world.pid]
    staff_emails = [*world.a.emails.values(), *world.b.emails.values()]
    assert [email for email in staff_emails if email in text] == []


# -- changing my file -----------------------------------------------------------------------------

ALLOWED_UPDATES: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    # input, the file's answer, field written, field class
    "address": ({"address": "  2 New Road  "}, {"address": "2 New Road"}, "address", "contact"),
    "phone": ({"phone": "139 0013 9000"}, {"phone": "+8613900139000"}, "phone", "contact"),
    "altPhone": ({"altPhone": None}, {"altPhone": None}, "alt_phone", "contact"),
    "email": ({"email": "Me.New@Example.COM"}, {"email": "Me.New@example.com"}, "email", "contact"),
    "preferredChannel": ({"preferredChannel": "WECHAT"}, {"preferredChannel": "WECHAT"}, "preferred_channel",
                         "contact"),
    "preferredLanguage": ({"preferredLanguage": "en"}, {"preferredLanguage": "en"}, "preferred_language", "contact"),
    "dietPreferences": ({"dietPreferences": "Halal"}, {"dietPreferences": "Halal"}, "diet_preferences", "needs"),
    "activityPreferences": ({"activityPreferences": "Swimming"}, {"activityPreferences": "Swimming"},
                            "activity_preferences", "needs"),
    "specialNeeds": ({"specialNeeds": "Wheelchair"}, {"specialNeeds": "Wheelchair"}, "special_needs", "needs"),
}


@pytest.mark.parametrize("name", ALLOWED_UPDATES)
async def test_i_change_my_contact_details_and_needs(world: World, name: str) -> None:
    data, answer, column, field_class = ALLOWED_UPDATES[name]
    before = await mark(world.a.id)

    reply = await world.me.call(UPDATE % " ".join(answer), id=world.pid, input=data)

    assert reply.body == {"data": {"patientUpdate": {"id": world.pid, **answer}}}
    read = await world.me.call(MY_FILE)
    assert without_times(read.data["myFile"]) == my_file(world, **answer)
    writes = await events_since(world.a.id, before, action="update")
    assert [(e.actor_kind, e.actor_id, e.resource_type, e.patient_id, e.fields_read, e.field_classes, e.outcome,
             e.policy_rule) for e in writes] == [
        ("patient", world.me.account_id, "patient", world.me.patient_id, column, field_class, "allowed",
         f"patient, *, patient.{field_class}, update, allow")]
    assert await events_since(world.a.id, before, action="consent") == []
    assert await events_since(world.a.id, before, outcome="denied") == []


CONSENT_UPDATES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "withdraw": ({"contactConsent": False}, {"contactConsent": False}, "contact_consent"),
    "channels": ({"contactChannels": ["EMAIL", "PHONE", "EMAIL"]}, {"contactChannels": ["EMAIL", "PHONE"]},
                 "contact_channels"),
    "both": ({"contactConsent": True, "contactChannels": []}, {"contactConsent": True, "contactChannels": []},
             "contact_channels,contact_consent"),
}


@pytest.mark.parametrize("name", CONSENT_UPDATES)
async def test_changing_my_consent_to_be_contacted_is_a_consent_event(world: World, name: str) -> None:
    data, answer, fields = CONSENT_UPDATES[name]
    before = await mark(world.a.id)

    reply = await world.me.call(UPDATE % " ".join(answer), id=world.pid, input={**data, "phone": "13900139000"})

    assert reply.body == {"data": {"patientUpdate": {"id": world.pid, **answer}}}
    writes = await events_since(world.a.id, before, outcome="allowed")
    assert [(e.action, e.resource_type, e.resource_id, e.patient_id, e.fields_read, e.actor_kind)
            for e in writes if e.action != "read"] == [
        ("update", "patient", world.me.patient_id, world.me.patient_id, ",".join(sorted([*fields.split(","), "phone"])),
         "patient"),
        ("consent", "contact_consent", world.me.patient_id, world.me.patient_id, fields, "patient")]


FORBIDDEN_UPDATES: dict[str, dict[str, Any]] = {
    "fullName": {"fullName": "Someone Else"},
    "sex": {"sex": "MALE"},
    "birthDate": {"birthDate": "1960-01-01"},
    "occupation": {"occupation": "Astronaut"},
    "nationalId": {"nationalIdType": "PASSPORT", "nationalId": "E12345678"},
    "status": {"status": "DECEASED"},
    "departmentId": {"departmentId": "DEPARTMENT_B"},
    "medicalHistory": {"medicalHistory": "None at all"},
    "diagnoses": {"diagnoses": None},
    "allergies": {"allergies": "None"},
    "currentMedication": {"currentMedication": "None"},
    "segments": {"segments": []},
    "tags": {"tags": ["self-made"]},
    "phone with fullName": {"phone": "13911112222", "fullName": "Someone Else"},
    "needs with diagnoses": {"dietPreferences": "Halal", "diagnoses": "Healthy"},
}


@pytest.mark.parametrize("name", FORBIDDEN_UPDATES)
async def test_identity_clinical_and_staff_only_changes_are_forbidden(world: World, name: str) -> None:
    data = dict(FORBIDDEN_UPDATES[name])
    if data.get("departmentId") == "DEPARTMENT_B":
        data["departmentId"] = str(world.a.departments["B"].id)
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call(UPDATE % "fullName", id=world.pid, input=data)

    assert without_place(reply) == {"data": {"patientUpdate": None}, "errors": [NOT_ALLOWED]}
    assert await stored(world.a) == state
    assert await denials_since(world.a.id, before) == [
        ("update", "patient", "forbidden", world.me.patient_id, world.me.patient_id)]
    assert len(await events_since(world.a.id, before)) == 1


BAD_UPDATES: dict[str, tuple[dict[str, Any], str]] = {
    "phone": ({"phone": "12345"}, "input.phone"),
    "altPhone": ({"altPhone": "call me"}, "input.altPhone"),
    "email": ({"email": "not-an-email"}, "input.email"),
    "email two ats": ({"email": "a@@example.com"}, "input.email"),
    "preferredLanguage": ({"preferredLanguage": "english please"}, "input.preferredLanguage"),
    "contactConsent null": ({"contactConsent": None}, "input"),  # null leaves it as it is: no change
    "preferredLanguage null": ({"preferredLanguage": None}, "input"),
    "empty address": ({"address": "   "}, "input.address"),
    "long diet": ({"dietPreferences": "x" * 201}, "input.dietPreferences"),
    "control character": ({"specialNeeds": "bad\x00byte"}, "input.specialNeeds"),
    "nothing": ({}, "input"),
}


@pytest.mark.parametrize("name", BAD_UPDATES)
async def test_bad_contact_details_are_refused_and_nothing_written(world: World, name: str) -> None:
    data, field = BAD_UPDATES[name]
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call(UPDATE % "phone", id=world.pid, input=data)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert reply.data == {"patientUpdate": None}
    assert await stored(world.a) == state
    assert await events_since(world.a.id, before) == []


@pytest.mark.parametrize("bad_id", ["not-an-id", "", "1", "x" * 65])
async def test_malformed_ids_are_bad_input_for_a_patient(world: World, bad_id: str) -> None:
    state = await stored(world.a)
    queries: list[tuple[str, dict[str, Any], str]] = [
        ("query($id: ID!) { patient(id: $id) { id } }", {"id": bad_id}, "id"),
        (UPDATE % "phone", {"id": bad_id, "input": {"phone": "13911112222"}}, "id"),
        (CONSENT, {"patientId": world.pid, "partnerId": bad_id, "granted": True}, "partnerId"),
        (CONSENT, {"patientId": bad_id, "partnerId": str(world.partner), "granted": True}, "patientId"),
        (CONTACT_DELETE, {"id": bad_id}, "id"),
    ]
    for query, variables, field in queries:
        reply = await world.me.call(query, **variables)
        assert reply.codes == ["BAD_USER_INPUT"], (query, reply.errors)
        assert reply.errors[0]["extensions"]["field"] == field
    assert await stored(world.a) == state


# -- my family contacts ---------------------------------------------------------------------------


async def test_i_manage_my_own_family_contacts(world: World) -> None:
    before = await mark(world.a.id)

    created = await world.me.call(CONTACT_CREATE, patientId=world.pid, input={
        "name": "my son", "relationship": "CHILD", "phone": "136 0000 7777", "isEmergency": True,
        "notes": "Has a key"})
    assert created.errors == []
    contact = created.data["contactCreate"]
    cid = contact.pop("id")
    assert contact == {"patientId": world.pid, "name": "my son", "relationship": "CHILD", "phone": "+8613600007777",
                       "isEmergency": True, "notes": "Has a key"}

    updated = await world.me.call(CONTACT_UPDATE, id=cid, input={"phone": None, "notes": "Lost the key"})
    assert updated.body == {"data": {"contactUpdate": {"id": cid, "name": "my son", "phone": None,
                                                       "notes": "Lost the key"}}}
    listed = await world.me.call("{ myFile { contacts { id name } } }")
    assert listed.data == {"myFile": {"contacts": [{"id": str(world.my_contact), "name": "my daughter"},
                                                   {"id": cid, "name": "my son"}]}}

    deleted = await world.me.call(CONTACT_DELETE, id=cid)
    assert deleted.body == {"data": {"contactDelete": cid}}
    assert await Contact.filter(id=cid).count() == 0
    writes = [(e.action, e.resource_type, str(e.resource_id), e.patient_id, e.actor_kind, e.outcome)
              for e in await events_since(world.a.id, before) if e.action != "read"]
    assert writes == [(action, "contact", cid, world.me.patient_id, "patient", "allowed")
                      for action in ("create", "update", "delete")]
    assert await events_since(world.a.id, before, outcome="denied") == []


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "x", "relationship": "CHILD", "phone": "12"}, "input.phone"),
    ({"name": "   ", "relationship": "CHILD"}, "input.name"),
    ({"name": "x" * 101, "relationship": "CHILD"}, "input.name"),
], ids=["phone", "blank name", "long name"])
async def test_bad_contact_input_is_refused_and_nothing_written(world: World, data: dict[str, Any],
                                                                field: str) -> None:
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call(CONTACT_CREATE, patientId=world.pid, input=data)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert await stored(world.a) == state
    assert await events_since(world.a.id, before) == []


# -- my consents to share -------------------------------------------------------------------------


async def test_i_give_and_withdraw_consent_to_share_and_a_withdrawal_closes_grants(world: World) -> None:
    before = await mark(world.a.id)

    given = await world.me.call(CONSENT, patientId=world.pid, partnerId=str(world.partner), granted=True)

    assert given.errors == []
    changed_at = datetime.fromisoformat(given.data["partnerConsentSet"].pop("changedAt"))
    assert abs(changed_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert given.data["partnerConsentSet"] == {"partnerId": str(world.partner), "granted": True,
                                               "partner": {"id": str(world.partner), "name": world.partner_name}}

    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    grant = await world.a.call("front_desk", GRANT, input={"partnerId": str(world.partner), "patientId": world.pid,
                                                          "purpose": "Home visits", "expiresAt": until})
    assert grant.errors == []
    grant_id = grant.data["partnerGrantCreate"]["id"]

    withdrawn = await world.me.call(CONSENT, patientId=world.pid, partnerId=str(world.partner), granted=False)
    assert withdrawn.errors == []
    assert withdrawn.data["partnerConsentSet"]["granted"] is False
    assert (await PartnerGrant.get(id=grant_id)).revoked_at is not None
    consent = await PartnerConsent.get(patient_id=world.me.patient_id, partner_id=world.partner)
    assert consent.granted is False
    shown = await world.me.call("{ myFile { partnerConsents { partnerId granted } } }")
    assert shown.data == {"myFile": {"partnerConsents": [{"partnerId": str(world.partner), "granted": False}]}}

    events = await events_since(world.a.id, before, action="consent")
    assert [(e.actor_kind, e.resource_type, e.resource_id, e.patient_id, e.reason, e.fields_read, e.outcome)
            for e in events] == [
        ("patient", "partner_consent", consent.id, world.me.patient_id, "given", "share_with_partner", "allowed"),
        ("patient", "partner_consent", consent.id, world.me.patient_id, "withdrawn",
         "partner_grant.revoked_at,share_with_partner", "allowed")]


async def test_without_my_consent_staff_cannot_grant_a_partner(world: World) -> None:
    """The twin: a grant needs my consent, and I alone decide it here."""
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    reply = await world.a.call("front_desk", GRANT, input={"partnerId": str(world.partner), "patientId": world.pid,
                                                          "purpose": "Home visits", "expiresAt": until})
    assert reply.codes == ["CONSENT_REQUIRED"]


async def test_consent_for_an_unknown_or_foreign_partner_is_not_found(world: World) -> None:
    for partner in (world.their_partner, uuid.uuid4()):
        before, state = await mark(world.a.id), await stored(world.a)
        reply = await world.me.call(CONSENT, patientId=world.pid, partnerId=str(partner), granted=True)
        assert without_place(reply) == {"data": {"partnerConsentSet": None}, "errors": [
            {"message": "Not found.", "extensions": {"code": "NOT_FOUND", "field": "partnerId"}}]}
        assert await stored(world.a) == state
        assert await denials_since(world.a.id, before) == [("consent", "partner", "not_found", partner, None)]


# -- operations that are not a patient's ----------------------------------------------------------

Vars = Callable[[World], dict[str, Any]]
STAFF_OPERATIONS: list[tuple[str, str, Vars, tuple[str, str]]] = [
    ("tickets", "{ tickets { nodes { id } } }", lambda w: {}, ("read", "ticket")),
    ("ticket about me", "query($id: ID!) { ticket(id: $id) { id subject } }", lambda w: {"id": str(w.ticket)},
     ("read", "ticket")),
    ("ticket timeline with internal notes", "query($id: ID!) { ticket(id: $id) { timeline(first: 10) { edges { "
     "node { kind note } } } } }", lambda w: {"id": str(w.ticket)}, ("read", "ticket")),
    ("ticketQueue", "{ ticketQueue { nodes { id } } }", lambda w: {}, ("read", "ticket")),
    ("ticketCreate", 'mutation { ticketCreate(input: {channel: APP, category: ENQUIRY, subject: "Hi"}) { id } }',
     lambda w: {}, ("create", "ticket")),
    ("ticketReply internal", "mutation($id: ID!) { ticketReply(id: $id, body: \"note\", internal: true) { id } }",
     lambda w: {"id": str(w.ticket)}, ("update", "ticket")),
    ("auditEvents", "{ auditEvents { edges { node { id } } } }", lambda w: {}, ("read", "audit_event")),
    ("patientAccessReport", "query($p: ID!) { patientAccessReport(patientId: $p) { name } }",
     lambda w: {"p": w.pid}, ("read", "audit_report")),
    ("staff", "query($id: ID!) { staff(id: $id) { id email } }", lambda w: {"id": str(w.a.staff_ids["nurse"])},
     ("read", "staff")),
    ("departments", "{ departments { id } }", lambda w: {}, ("read", "department")),
    ("patientInvite", "mutation($p: ID!) { patientInvite(patientId: $p) { code } }", lambda w: {"p": w.pid},
     ("create", "patient_invitation")),
    ("breakGlass", 'mutation($p: ID!) { breakGlass(patientId: $p, reason: "I want to see it all") { id } }',
     lambda w: {"p": str(w.neighbour)}, ("break_glass", "emergency_access")),
    ("partnerGrantCreate", GRANT, lambda w: {"input": {
        "partnerId": str(w.partner), "patientId": w.pid, "purpose": "Home visits",
        "expiresAt": (datetime.now(UTC) + timedelta(days=3)).isoformat()}}, ("grant", "partner_grant")),
    ("partnerGrants", "query($p: ID!) { partnerGrants(patientId: $p) { edges { node { id } } } }",
     lambda w: {"p": w.pid}, ("read", "partner_grant")),
    ("partnerCreate", 'mutation { partnerCreate(name: "My Own Partner") { id } }', lambda w: {},
     ("create", "partner")),
    ("patientCreate", 'mutation { patientCreate(input: {fullName: "Second Me"}) { patient { id } } }',
     lambda w: {}, ("create", "patient")),
    ("patientArchive", "mutation($p: ID!) { patientArchive(id: $p) { id } }", lambda w: {"p": w.pid},
     ("archive", "patient")),
    ("careTeamAssign", "mutation($p: ID!, $s: ID!) { careTeamAssign(patientId: $p, staffId: $s) }",
     lambda w: {"p": w.pid, "s": str(w.a.staff_ids["doctor"])}, ("create", "care_team")),
    ("emergencyAccesses", "{ emergencyAccesses { edges { node { id } } } }", lambda w: {},
     ("read", "emergency_access")),
    ("roleAssign", "mutation($s: ID!) { roleAssign(staffId: $s, role: ADMIN) { id } }",
     lambda w: {"s": str(w.a.staff_ids["nurse"])}, ("create", "role")),
]


@pytest.mark.parametrize(("name", "query", "variables", "denial"), STAFF_OPERATIONS,
                         ids=[op[0] for op in STAFF_OPERATIONS])
async def test_staff_operations_are_forbidden_to_a_patient(world: World, name: str, query: str, variables: Vars,
                                                           denial: tuple[str, str]) -> None:
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call(query, **variables(world))

    assert reply.codes == ["FORBIDDEN"]
    assert without_place(reply)["errors"] == [NOT_ALLOWED]
    text = json.dumps(reply.body)
    assert "Difficult caller" not in text and "Waited too long" not in text
    assert await stored(world.a) == state
    denied = await denials_since(world.a.id, before)
    assert [(action, kind, reason) for action, kind, reason, _, _ in denied] == [(*denial, "forbidden")]
    assert len(await events_since(world.a.id, before)) == 1


async def test_the_list_of_partners_is_closed_to_a_patient(world: World) -> None:
    """A patient sees the partners they have a consent with (on their file), not the institution's list."""
    before, state = await mark(world.a.id), await stored(world.a)

    reply = await world.me.call("{ partners { edges { node { id name clients { id name } } } } }")

    assert reply.data is None and errors_by_path(reply) == [(["partners"], "FORBIDDEN")]
    assert await stored(world.a) == state
    assert [(a, k, r) for a, k, r, _, _ in await denials_since(world.a.id, before)] == [
        ("read", "partner", "forbidden")]


MY_TICKETS = """{ myTickets(first: 100) { edges { node { id category status subject description resolution
  replies { message } } } } }"""


async def test_my_tickets_hold_my_replies_and_no_internal_note_nor_anothers_ticket(world: World) -> None:
    neighbours = await ok(world.a.call("front_desk", """mutation($input: TicketCreateInput!) {
        ticketCreate(input: $input) { id } }""", input={"channel": "APP", "category": "ENQUIRY",
                                                      "subject": "Neighbour asks", "patientId": str(world.neighbour)}))
    assert neighbours["ticketCreate"]["id"]
    await ok(world.a.call("front_desk", TICKET_REPLY, id=str(world.ticket), body="We will call you.", internal=False))
    await ok(world.a.call("front_desk", TICKET_REPLY, id=str(world.ticket), body="Second internal remark",
                          internal=True))

    reply = await world.me.call(MY_TICKETS)

    assert reply.body == {"data": {"myTickets": {"edges": [{"node": {
        "id": str(world.ticket), "category": "COMPLAINT", "status": "ACKNOWLEDGED", "subject": "Waited too long",
        "description": None, "resolution": None, "replies": [{"message": "We will call you."}]}}]}}}
    staff = await world.a.call("support_agent", MY_TICKETS)
    assert staff.codes == ["FORBIDDEN"]


# -- who viewed my record -------------------------------------------------------------------------


def entry(action: str, classes: list[str], kind: str, name: str = "", roles: list[str] | None = None, *,
          refused: bool = False) -> dict[str, Any]:
    return {"action": action.upper(), "fieldClasses": [c.upper() for c in classes],  # enums (UPPER_CASE)
            "accessor": {"kind": kind, "name": name, "roles": [role.upper() for role in roles or []]},
            "refused": refused}


def entries(reply: Response) -> list[dict[str, Any]]:
    assert reply.errors == [], reply.errors
    return [{k: v for k, v in edge["node"].items() if k != "occurredAt"} for edge in reply.data["myAccessLog"]["edges"]]


async def test_each_entry_says_which_kind_of_record_it_was_about(tenant: Tenant) -> None:
    """Found writing docs/portals.md: an entry said what was done and to which classes of the file, not to which
    record, so a creation with no class (a contact added, an appointment booked) could not be told to the patient.
    The type's name as the API spells it, as the compliance officers' trail does; never the record's id."""
    pid = await make_patient(tenant, phone="13800138001")
    me = await open_account(tenant, pid)
    await make_contact(tenant, pid, "my son", "13600007777")
    await ok(tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName } }", id=str(pid)))
    reply = await me.call("{ myAccessLog(first: 100) { nodes { action resourceTypeName accessor { kind } } } }")
    assert reply.errors == [], reply.errors
    said = [(n["action"], n["resourceTypeName"], n["accessor"]["kind"]) for n in reply.data["myAccessLog"]["nodes"]]
    assert said[:2] == [("READ", "Patient", "STAFF"), ("CREATE", "Contact", "STAFF")], said


async def test_who_viewed_my_record_names_staff_by_name_and_role_newest_first(tenant: Tenant) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    me = await open_account(tenant, pid)
    read = "query($id: ID!) { patient(id: $id) { %s } }"
    await ok(tenant.call("nurse", read % "fullName diagnoses", id=str(pid)))
    await ok(tenant.call("nurse", UPDATE % "", id=str(pid), input={"diagnoses": "Caries"}))
    await ok(tenant.call("doctor", read % "fullName", id=str(pid)))
    await ok(tenant.call("support_agent", read % "phone", id=str(pid)))
    assert (await tenant.call("doctor", UPDATE % "", id=str(pid), input={"phone": "13911112222"})).codes == [
        "FORBIDDEN"]  # refused: shown as an attempt
    other = await make_patient(tenant)
    await ok(tenant.call("front_desk", read % "fullName phone", id=str(other)))  # another file
    await ok(me.call("{ myFile { phone } }"))

    reply = await me.call(ACCESS_LOG)

    staff = {role: (staff_name(tenant, role), [role]) for role in tenant.staff_ids}
    assert entries(reply) == [
        entry("read", ["contact"], "PATIENT"),
        entry("update", ["contact"], "STAFF", *staff["doctor"], refused=True),  # the class attempted, as for reads
        entry("read", ["contact"], "STAFF", *staff["support_agent"]),
        entry("read", ["identity"], "STAFF", *staff["doctor"]),
        entry("update", ["clinical"], "STAFF", *staff["nurse"]),
        entry("read", ["clinical", "identity"], "STAFF", *staff["nurse"]),
        entry("create", [], "PATIENT"),  # I opened my account
        entry("create", [], "STAFF", *staff["front_desk"]),  # the invitation
        entry("create", ["contact", "identity"], "STAFF", *staff["front_desk"]),  # the registration
    ]
    times = [datetime.fromisoformat(edge["node"]["occurredAt"]) for edge in reply.data["myAccessLog"]["edges"]]
    assert times == sorted(times, reverse=True)
    assert all(datetime.now(UTC) - timedelta(minutes=5) < t <= datetime.now(UTC) for t in times)
    assert reply.data["myAccessLog"]["pageInfo"]["hasNextPage"] is False
    text = json.dumps(reply.body)
    assert [secret for secret in [*tenant.emails.values(), *map(str, tenant.staff_ids.values())]
            if secret in text] == []

    again = await me.call(ACCESS_LOG)  # looking at the log is itself on it
    assert entries(again)[:2] == [entry("read", [], "PATIENT"), entry("read", ["contact"], "PATIENT")]


async def test_a_partner_reading_my_file_is_shown_by_the_partners_name(world: World) -> None:
    a = world.a
    client_made = await ok(a.call("admin", """mutation($input: PartnerClientCreateInput!) {
        partnerClientCreate(input: $input) { client { id } clientSecret } }""", input={
        "partnerId": str(world.partner), "name": "visits app", "scopes": ["patient.identity:read"]}))
    client_id = client_made["partnerClientCreate"]["client"]["id"]
    secret = client_made["partnerClientCreate"]["clientSecret"]
    await ok(world.me.call(CONSENT, patientId=world.pid, partnerId=str(world.partner), granted=True))
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    await ok(a.call("front_desk", GRANT, input={"partnerId": str(world.partner), "patientId": world.pid,
                                                "purpose": "Home visits", "expiresAt": until}))
    issued = await a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                       "client_secret": secret})
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    partner_read = await gql(a.client, "query($id: ID!) { patient(id: $id) { fullName } }", {"id": world.pid},
                             token=token)
    assert partner_read.body == {"data": {"patient": {"fullName": world.my_name}}}

    log = entries(await world.me.call(ACCESS_LOG, first=1))
    assert log == [entry("read", ["identity"], "PARTNER", world.partner_name)]

    # withdrawing my consent closes the file to the partner at once
    await ok(world.me.call(CONSENT, patientId=world.pid, partnerId=str(world.partner), granted=False))
    closed = await gql(a.client, "query($id: ID!) { patient(id: $id) { fullName } }", {"id": world.pid}, token=token)
    assert closed.codes == ["NOT_FOUND"]


async def test_my_access_log_pages_newest_first(tenant: Tenant) -> None:
    me = await open_account(tenant)
    for _ in range(3):
        await ok(tenant.call("front_desk", "query($id: ID!) { patient(id: $id) { fullName } }",
                             id=str(me.patient_id)))
    full = entries(await me.call(ACCESS_LOG))  # registration, invitation, account, 3 reads
    assert len(full) == 6

    seen: list[dict[str, Any]] = []
    after = None
    pages = []
    while True:
        reply = await me.call(ACCESS_LOG, first=2, after=after)
        page = entries(reply)
        info = reply.data["myAccessLog"]["pageInfo"]
        pages.append((len(page), info["hasNextPage"]))
        seen.extend(page)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
        assert after == reply.data["myAccessLog"]["edges"][-1]["cursor"]
    # each page's own read of the log lands on top, above the first page: the pages walk back from where they began
    assert pages == [(2, True), (2, True), (2, True), (1, False)]
    assert seen[0] == entry("read", [], "PATIENT")  # the full read above
    assert seen[1:] == full


@pytest.mark.parametrize(("variables", "field"), [
    ({"first": 101}, "first"), ({"first": 0}, "first"), ({"first": -1}, "first"),
    ({"after": "garbage"}, "after"), ({"after": "cGF0aWVudDox"}, "after"),
], ids=["too many", "zero", "negative", "garbage cursor", "another list's cursor"])
async def test_bad_access_log_paging_is_bad_input(world: World, variables: dict[str, Any], field: str) -> None:
    reply = await world.me.call(ACCESS_LOG, **variables)
    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field


async def test_my_access_log_holds_nothing_of_other_files(world: World) -> None:
    before = entries(await world.me.call(ACCESS_LOG))
    read = "query($id: ID!) { patient(id: $id) { fullName phone } }"
    await ok(world.a.call("front_desk", read, id=str(world.neighbour)))
    await ok(world.b.call("front_desk", read, id=str(world.theirs)))
    assert (await world.me.call(read, id=str(world.neighbour))).codes == ["NOT_FOUND"]  # my own refused attempt

    after = await world.me.call(ACCESS_LOG)

    assert entries(after) == [entry("read", [], "PATIENT"), *before]  # only my look at the log was added
    text = json.dumps(after.body, ensure_ascii=False)
    assert [marker for marker in world.foreign_markers() if marker in text] == []


@pytest.mark.parametrize("role", ["front_desk", "nurse", "compliance_officer", "admin"])
@pytest.mark.parametrize(("query", "denial"), [(ACCESS_LOG, ("read", "access_log")), (EXPORT, ("export", "patient"))],
                         ids=["myAccessLog", "myDataExport"])
async def test_my_access_log_and_export_are_for_patients_only(world: World, role: str, query: str,
                                                              denial: tuple[str, str]) -> None:
    before = await mark(world.a.id)

    reply = await world.a.call(role, query)

    assert reply.codes == ["FORBIDDEN"]
    assert [(a, k, r) for a, k, r, _, _ in await denials_since(world.a.id, before)] == [(*denial, "forbidden")]


@pytest.mark.parametrize("query", [ACCESS_LOG, EXPORT, MY_FILE], ids=["myAccessLog", "myDataExport", "myFile"])
async def test_anonymous_callers_have_no_file(client: httpx.AsyncClient, query: str) -> None:
    reply = await gql(client, query)
    assert [e["message"] for e in reply.errors] == ["Authentication required."]
    assert reply.codes == ["UNAUTHENTICATED"]


# -- a copy of my data ----------------------------------------------------------------------------


async def test_my_data_export_holds_every_readable_field_my_contacts_and_consents(world: World) -> None:
    await ok(world.me.call(CONSENT, patientId=world.pid, partnerId=str(world.partner), granted=True))
    await ok(world.a.call("front_desk", TICKET_REPLY, id=str(world.ticket), body="We are sorry; we will call you.",
                          internal=False))
    before = await mark(world.a.id)

    reply = await world.me.call(EXPORT)

    assert reply.errors == []
    export = reply.data["myDataExport"]
    assert set(export) == {  # camelCase keys and UPPER_CASE codes, as everywhere in the API
        "patient", "contacts", "partnerConsents", "visits", "carePlans", "appointments", "contracts", "tickets",
        "communications", "surveyResponses", "exportedAt"}
    patient = dict(export["patient"])
    created_at, updated_at = patient.pop("createdAt"), patient.pop("updatedAt")
    row = await my_row(world)
    assert (datetime.fromisoformat(created_at), datetime.fromisoformat(updated_at)) == (row["created_at"],
                                                                                         row["updated_at"])
    assert patient == {
        "id": world.pid, "fullName": world.my_name, "sex": "FEMALE", "birthDate": "1949-12-31",
        "occupation": "Retired teacher", "nationalIdType": "RESIDENT_ID", "nationalId": VALID_RESIDENT_ID,
        "status": "ACTIVE", "departmentId": str(world.a.departments["A"].id), "address": "1 My Road",
        "phone": "+8613800138000", "altPhone": "+8613800138001", "email": "me.home@example.com",
        "preferredChannel": "SMS", "preferredLanguage": "zh-CN", "contactConsent": True,
        "contactChannels": ["SMS", "WECHAT"], "contactPurposes": ["CARE"], "medicalHistory": "Hypertension",
        "diagnoses": "Caries",
        "allergies": "Penicillin", "currentMedication": "Amlodipine", "dietPreferences": "Soft food",
        "activityPreferences": "Tai chi", "specialNeeds": "Hard of hearing",
    }
    assert export["contacts"] == [{"name": "my daughter", "relationship": "SPOUSE", "phone": "+8613600006666",
                                   "isEmergency": False, "mayReceiveInformation": False,
                                   "notes": "Call after 6pm"}]
    (consent,) = export["partnerConsents"]
    assert (consent["partnerId"], consent["granted"]) == (str(world.partner), True)
    (ticket,) = export["tickets"]
    (answer,) = ticket.pop("replies")
    received_at = datetime.fromisoformat(ticket.pop("receivedAt"))
    assert ticket == {"id": str(world.ticket), "category": "COMPLAINT", "status": "ACKNOWLEDGED",
                      "resolvedAt": None, "subject": "Waited too long", "description": None, "resolution": None}
    assert answer["message"] == "We are sorry; we will call you."
    assert received_at <= datetime.fromisoformat(answer["occurredAt"]) <= datetime.now(UTC)
    assert abs(datetime.fromisoformat(export["exportedAt"]) - datetime.now(UTC)) < timedelta(minutes=1)
    text = json.dumps(export, ensure_ascii=False)
    assert "Difficult caller" not in text  # the staff's internal note
    assert "segments" not in text and "tags" not in text and "vip" not in text.lower()
    assert [marker for marker in world.foreign_markers() if marker in text] == []

    exports = await events_since(world.a.id, before, action="export")
    assert [(e.actor_kind, e.actor_id, e.resource_type, e.resource_id, e.patient_id, e.field_classes, e.outcome,
             e.policy_rule) for e in exports] == [
        ("patient", world.me.account_id, "patient", world.me.patient_id, world.me.patient_id,
         "clinical,contact,identity,needs", "allowed", "patient, *, patient, export, allow")]
    assert await events_since(world.a.id, before, outcome="denied") == []
    shown = entries(await world.me.call(ACCESS_LOG, first=3))  # the export, and the reads it made
    assert sorted(shown, key=json.dumps) == sorted([
        entry("export", ["clinical", "contact", "identity", "needs"], "PATIENT"),
        entry("read", ["clinical", "contact", "identity", "needs"], "PATIENT"),
        entry("read", ["ticket"], "PATIENT")], key=json.dumps)


async def test_a_closed_account_loses_my_file_and_my_export(world: World) -> None:
    await ok(world.a.call("front_desk", "mutation($p: ID!) { patientAccountDeactivate(patientId: $p) }",
                          p=world.pid))
    for query in (MY_FILE, EXPORT, ACCESS_LOG):
        reply = await world.me.call(query)
        assert [e["message"] for e in reply.errors] == ["Invalid or expired token."]
