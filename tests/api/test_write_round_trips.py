"""Writes in three round trips (issue 17): sign-in; the patient in scope with its checks; one statement that
writes the row and appends its audit record.

What is counted. On PostgreSQL: every exchange asyncpg has with the server, seen by a query logger on each
pooled connection (``Connection.add_query_logger``): each statement (prepared ones come from asyncpg's cache
after a first request warmed it, so each is one Bind/Execute/Sync exchange) and each simple query, which
includes the BEGIN and COMMIT Tortoise's own statement log does not show. On SQLite, where there is no
round trip to save, Tortoise's statement log (``sql_counter``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from tortoise import connections
from tortoise.exceptions import IntegrityError

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import verify_all
from core.ids import uuid7
from models import AuditChainHead, Contact, Patient
from resolvers import writes
from tests.api.test_break_glass import BREAK, REASON, patient_of_b
from tests.conftest import SqlCounter
from tests.factories import Tenant, make_patient

CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id } }"""
SPOUSE = {"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"}


class RoundTrips:
    """The statements asyncpg sends on every pooled connection, BEGIN and COMMIT included."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def log(self, query: Any) -> None:
        self.statements.append(query.query)

    async def since(self, start: int) -> list[str]:
        await asyncio.sleep(0)  # asyncpg hands each query to its loggers with call_soon
        return self.statements[start:]


@pytest_asyncio.fixture
async def round_trips() -> AsyncIterator[RoundTrips | None]:
    db = connections.get("default")
    if db.capabilities.dialect != "postgres":
        yield None
        return
    pool, trips = db._pool, RoundTrips()
    held = [await pool.acquire() for _ in range(pool.get_max_size())]  # every connection the pool may use
    for connection in held:
        connection.add_query_logger(trips.log)
    for connection in held:
        await pool.release(connection)
    yield trips
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    for connection in held:
        connection.remove_query_logger(trips.log)
    for connection in held:
        await pool.release(connection)


async def test_a_contact_is_created_in_three_round_trips(tenant: Tenant, sql_counter: SqlCounter,
                                                         round_trips: RoundTrips | None) -> None:
    pid = await make_patient(tenant)
    await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)  # warms asyncpg's statement cache
    before = await tenant.audit_count()
    await asyncio.sleep(0)
    start = len(round_trips.statements) if round_trips else 0
    sql_counter.statements.clear()

    reply = await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)

    assert reply.errors == []
    cid = reply.data["contactCreate"]["id"]
    if round_trips:
        # sign-in; the patient in scope; the row and its record
        sign_in, patient, write = await round_trips.since(start)
        assert '"session"' in sign_in and 'FROM "patient"' in patient
        assert write.startswith('WITH written AS (INSERT INTO "contact"') and "audit_append(" in write
        assert len(sql_counter.statements) == 3
    else:  # one transaction: the row, then the chain (its head, the event, its patient index row, the head moved)
        statements = sql_counter.statements
        assert len(statements) == 7 and statements[2].startswith('INSERT INTO "contact"'), statements
    [event] = await tenant.audit_events(seq__gt=before)
    assert (event.action, event.resource_type, str(event.resource_id), event.patient_id) == (
        "create", "contact", cid, pid)
    assert await Contact.filter(institution_id=tenant.id, id=cid).exists()
    (report,) = await verify_all(tenant.id)
    assert report.ok


READ_BACK = """mutation($pid: ID!, $input: ContactCreateInput!, $noPhone: Boolean!) {
  contactCreate(patientId: $pid, input: $input) { id ...shown phone @skip(if: $noPhone) } }
fragment shown on Contact { name relationship }"""


@pytest.mark.parametrize("no_phone", [False, True])
async def test_what_a_new_contact_shows_is_recorded_with_the_write(tenant: Tenant, round_trips: RoundTrips | None,
                                                                 no_phone: bool) -> None:
    """W3's shape: the read of the fields the caller reads back goes in the write's statement (three round trips,
    not four) and says what the fields' own notes said before: the patient's contact class, the sealed column
    named only when asked for (fragments and @skip collected as graphql-core collects them)."""
    pid = await make_patient(tenant)
    await tenant.call("front_desk", READ_BACK, pid=str(pid), input=SPOUSE, noPhone=no_phone)  # warms the caches
    before = await tenant.audit_count()
    await asyncio.sleep(0)
    start = len(round_trips.statements) if round_trips else 0

    reply = await tenant.call("front_desk", READ_BACK, pid=str(pid), input=SPOUSE, noPhone=no_phone)

    assert reply.errors == []
    shown = {"name": "Wang Fang", "relationship": "SPOUSE", **({} if no_phone else {"phone": "+8613900139000"})}
    assert reply.data["contactCreate"] == {"id": reply.data["contactCreate"]["id"], **shown}
    if round_trips:
        assert len(await round_trips.since(start)) == 3
    created, read = await tenant.audit_events(seq__gt=before)
    assert (created.action, read.action) == ("create", "read")
    assert (read.resource_type, read.resource_id, read.patient_id, read.field_classes, read.fields_read) == (
        "patient", pid, pid, "contact", "" if no_phone else "contact.phone")
    assert read.policy_rule == "front_desk, *, contact, read, allow"  # the rule the fields' own notes give
    (report,) = await verify_all(tenant.id)
    assert report.ok


CHANGE = """mutation($id: ID!, $input: ContactUpdateInput!, $version: Int) {
  contactUpdate(id: $id, input: $input, version: $version) { id name phone version } }"""


async def test_a_contact_is_updated_in_four_round_trips(tenant: Tenant, round_trips: RoundTrips | None) -> None:
    """Sign-in; the contact; its patient in scope with its checks; one statement that writes the row over the
    version read and appends the write's record and the read of what the caller reads back."""
    pid = await make_patient(tenant)
    created = await tenant.call("nurse", CREATE, pid=str(pid), input=SPOUSE)
    cid = created.data["contactCreate"]["id"]
    await tenant.call("nurse", CHANGE, id=cid, input={"name": "Wang Fang"}, version=1)  # warms the caches
    before = await tenant.audit_count()
    await asyncio.sleep(0)
    start = len(round_trips.statements) if round_trips else 0

    reply = await tenant.call("nurse", CHANGE, id=cid, input={"phone": "13900139001"}, version=2)

    assert reply.errors == []
    assert reply.data["contactUpdate"] == {"id": cid, "name": "Wang Fang", "phone": "+8613900139001", "version": 3}
    if round_trips:
        trips = await round_trips.since(start)
        assert len(trips) == 4, trips
        assert trips[3].startswith('WITH written AS (UPDATE "contact"') and "audit_append(" in trips[3]
    updated, read = await tenant.audit_events(seq__gt=before)
    assert (updated.action, updated.resource_type, updated.fields_read) == ("update", "contact", "phone")
    assert (read.action, read.patient_id, read.field_classes, read.fields_read) == (
        "read", pid, "contact", "contact.phone")

    stale = await tenant.call("nurse", CHANGE, id=cid, input={"name": "Li Na"}, version=2)

    assert [e["extensions"]["code"] for e in stale.errors] == ["CONFLICT"]
    assert (await Contact.get(id=cid)).name == "Wang Fang"
    assert len(await tenant.audit_events(seq__gt=before)) == 2  # nothing written, nothing recorded
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_a_refused_contact_create_records_no_read(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await tenant.audit_count()

    reply = await tenant.call("compliance_officer", READ_BACK, pid=str(pid), input=SPOUSE, noPhone=False)

    assert [e["extensions"]["code"] for e in reply.errors] == ["FORBIDDEN"]
    assert [(e.action, e.outcome) for e in await tenant.audit_events(seq__gt=before)] == [("create", "denied")]
    assert not await Contact.filter(institution_id=tenant.id, patient_id=pid).exists()


def _new_contact(tenant: Tenant, patient_id: object) -> Contact:
    return Contact(id=uuid7(), institution_id=tenant.id, patient_id=patient_id, name="Li Na", relationship="child")


def _record(tenant: Tenant, resource_type: str = "contact") -> AuditRecord:
    return AuditRecord(tenant.id, Actor("system"), Action.CREATE, resource_type, Outcome.ALLOWED)


async def test_a_record_that_fails_leaves_no_row(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    head = await AuditChainHead.get(institution_id=tenant.id)
    row = _new_contact(tenant, pid)

    with pytest.raises(Exception):  # noqa: B017 - each dialect fails in its own way
        await writer.append_with(*writes.insert_returning_id(row), [_record(tenant, "x" * 500)])  # too long

    assert not await Contact.filter(id=row.id).exists()
    assert (await AuditChainHead.get(institution_id=tenant.id)).last_seq == head.last_seq
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_a_write_that_fails_appends_nothing(tenant: Tenant) -> None:
    head = await AuditChainHead.get(institution_id=tenant.id)
    row = _new_contact(tenant, uuid7())  # no such patient: the foreign key refuses it at the statement's end

    with pytest.raises(IntegrityError):
        await writer.append_with(*writes.insert_returning_id(row), [_record(tenant)])

    assert not await Contact.filter(id=row.id).exists()
    assert (await AuditChainHead.get(institution_id=tenant.id)).last_seq == head.last_seq
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_the_write_and_its_record_commit_together(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before = await tenant.audit_count()
    row = _new_contact(tenant, pid)

    returned = await writer.append_with(*writes.insert_returning_id(row), [_record(tenant)])

    assert returned == [{"id": row.id}] or returned == [{"id": str(row.id)}]
    assert await Contact.filter(id=row.id).exists()
    assert await tenant.audit_count() == before + 1
    (report,) = await verify_all(tenant.id)
    assert report.ok


UPDATE = """mutation($id: ID!, $input: PatientUpdateInput!, $version: Int) {
  patientUpdate(id: $id, input: $input, version: $version) { id fullName phone version } }"""


async def test_a_patient_is_updated_in_three_round_trips(tenant: Tenant, sql_counter: SqlCounter,
                                                        round_trips: RoundTrips | None) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    await tenant.call("front_desk", UPDATE, id=str(pid), input={"fullName": "Zhang Wei"})  # warms the cache
    before = await tenant.audit_count()
    await asyncio.sleep(0)
    start = len(round_trips.statements) if round_trips else 0
    sql_counter.statements.clear()

    reply = await tenant.call("front_desk", UPDATE, id=str(pid), input={"fullName": "Zhang Wei Jr"})

    assert reply.errors == []
    # built from the row as written: the new name, the new version, a sealed field opened
    assert reply.data["patientUpdate"] == {"id": str(pid), "fullName": "Zhang Wei Jr", "phone": "+8613800138000",
                                           "version": 3}
    statements = sql_counter.statements
    assert sum('UPDATE "patient"' in s for s in statements) == 1
    assert sum('FROM "patient"' in s for s in statements) == 1  # found in scope, not read again after
    if round_trips:
        trips = await round_trips.since(start)
        sign_in, patient, write = trips[:3]
        assert '"session"' in sign_in and 'FROM "patient"' in patient
        assert write.startswith('WITH written AS (UPDATE "patient"') and "audit_append(" in write
        assert len(trips) == 3  # with the read of the fields shown
    update, read = await tenant.audit_events(seq__gt=before)
    assert (update.action, update.resource_type, update.patient_id, update.fields_read) == (
        "update", "patient", pid, "full_name")
    assert (read.action, read.patient_id, read.field_classes, read.fields_read) == (
        "read", pid, "contact,identity", "phone")
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_a_stale_version_writes_and_appends_nothing(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    row = await Patient.get(id=pid)
    head = await AuditChainHead.get(institution_id=tenant.id)

    # over a version someone else already replaced (as when two updates race past the version check)
    written = await writer.append_with(*writes.update_over_version(row, row.version + 1, {"preferred_language": "en"}),
                                       [_record(tenant, "patient")])

    assert written == []
    assert (await Patient.get(id=pid)).preferred_language == "zh-CN"
    assert (await AuditChainHead.get(institution_id=tenant.id)).last_seq == head.last_seq


NESTED = """mutation($id: ID!, $input: PatientUpdateInput!) {
  patientUpdate(id: $id, input: $input) { fullName contacts { name phone } } }"""


async def test_each_read_record_of_a_write_stands_alone(tenant: Tenant) -> None:
    """Under break-glass, what patientUpdate reads back beyond what it recorded with itself (the contacts) is
    recorded whole: every read record of the file names the grant, and the last holds every class read."""
    pid = await patient_of_b(tenant)  # outside the nurse's reach
    await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]["id"]
    before = await tenant.audit_count()

    reply = await tenant.call("nurse", NESTED, id=str(pid), input={"occupation": "Teacher"})

    assert reply.errors == []
    assert reply.data["patientUpdate"]["contacts"] == [{"name": "Wang Fang", "phone": "+8613900139000"}]
    reads = await tenant.audit_events(seq__gt=before, action="read", outcome="allowed")
    assert len(reads) == 2  # with the write, then whole after the contacts
    assert all(f"emergency_access {grant}" in read.policy_rule for read in reads)
    assert set(reads[-1].field_classes.split(",")) == {"identity", "contact"}
    assert reads[-1].fields_read == "contact.phone"


READ_BACKS = {
    "plain": "{ id fullName }",
    "sealed": "{ fullName phone allergies }",
    "fragment": "{ ...shown } fragment shown on Patient { fullName phone }",
    "skipped": "{ fullName phone @skip(if: true) allergies @include(if: false) }",
    "nested": "{ fullName contacts { name phone } }",
    "refused": "{ fullName diagnoses }",  # clinical: refused to the front desk, read by the nurse
    "aliases": "{ a: fullName b: fullName c: phone }",
}


def _read_union(events: list[Any]) -> dict[str, tuple[set[str], set[str], set[str]]]:
    """What the read records of one patient say altogether, by outcome: classes, columns named, rules."""
    union: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for event in events:
        classes, fields, rules = union.setdefault(event.outcome, (set(), set(), set()))
        classes.update(filter(None, event.field_classes.split(",")))
        fields.update(filter(None, event.fields_read.split(",")))
        rules.update(filter(None, event.policy_rule.split("; ")))
    return union


@pytest.mark.parametrize("shape", READ_BACKS)
@pytest.mark.parametrize("caller", ["front_desk", "nurse", "break_glass"])
async def test_a_write_records_what_it_reads_back_as_a_read_would(tenant: Tenant, caller: str, shape: str) -> None:
    """Differential: the read records of a patientUpdate say, altogether and in its last allowed one, what a
    patient query of the same selection by the same caller right after says (classes, sealed columns, rules,
    refusals)."""
    role = "nurse" if caller == "break_glass" else caller
    if caller == "break_glass":
        pid = await patient_of_b(tenant)
        await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)
    else:
        pid = await make_patient(tenant, "nurse", phone="13800138000", allergies="Penicillin", diagnoses="Caries")
    await tenant.call("front_desk", CREATE, pid=str(pid), input=SPOUSE)
    selection = READ_BACKS[shape]
    head, _, fragments = selection.partition(" fragment ")
    tail = f" fragment {fragments}" if fragments else ""
    update = (f"mutation($id: ID!) {{ patientUpdate(id: $id, input: {{occupation: \"Teacher\"}}) {head} }}{tail}")
    query = f"query($id: ID!) {{ patient(id: $id) {head} }}{tail}"

    before = await tenant.audit_count()
    written = await tenant.call(role, update, id=str(pid))
    middle = await tenant.audit_count()
    read = await tenant.call(role, query, id=str(pid))
    after_write = [e for e in await tenant.audit_events(seq__gt=before, seq__lte=middle, action="read")
                   if e.patient_id == pid]
    after_read = [e for e in await tenant.audit_events(seq__gt=middle, action="read") if e.patient_id == pid]

    assert written.data["patientUpdate"] == read.data["patient"]
    assert [(e["path"][1:], e["extensions"]["code"]) for e in written.errors] == [
        (e["path"][1:], e["extensions"]["code"]) for e in read.errors]
    assert _read_union(after_write) == _read_union(after_read)
    # and each record stands alone: the write's last allowed read says all its allowed reads say
    allowed = [e for e in after_write if e.outcome == "allowed"]
    assert _read_union(allowed[-1:]) == _read_union([e for e in after_read if e.outcome == "allowed"])


CONTACT_READ_BACKS = {
    "plain": "{ id name }",
    "sealed": "{ name phone notes }",
    "fragment": "{ ...shown } fragment shown on Contact { name phone }",
    "skipped": "{ name phone @skip(if: true) notes @include(if: false) }",
    "nothing": "{ id patientId version }",
}


@pytest.mark.parametrize("shape", CONTACT_READ_BACKS)
@pytest.mark.parametrize("caller", ["front_desk", "break_glass"])
async def test_a_contact_write_records_what_it_reads_back_as_a_read_would(tenant: Tenant, caller: str,
                                                                         shape: str) -> None:
    """Differential, as above, for contactCreate and contactUpdate against the patient's contacts read right
    after with the same selection (a contact's reads are recorded on its patient's read record, with the grant
    the file is open under)."""
    role = "nurse" if caller == "break_glass" else caller
    if caller == "break_glass":
        pid = await patient_of_b(tenant)
        await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)
    else:
        pid = await make_patient(tenant)
    selection = CONTACT_READ_BACKS[shape]
    head, _, fragments = selection.partition(" fragment ")
    tail = f" fragment {fragments}" if fragments else ""
    create = ("mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) "
              f"{head} }}{tail}")
    change = f"mutation($id: ID!) {{ contactUpdate(id: $id, input: {{notes: \"Calls after six\"}}) {head} }}{tail}"
    query = f"query($id: ID!) {{ patient(id: $id) {{ contacts {head} }} }}{tail}"

    for write, variables in ((create, {"pid": str(pid), "input": {**SPOUSE, "notes": "Prefers mornings"}}),
                             (change, None)):
        if variables is None:
            [contact] = await Contact.filter(patient_id=pid).values_list("id", flat=True)
            variables = {"id": str(contact)}
        before = await tenant.audit_count()
        written = await tenant.call(role, write, **variables)
        middle = await tenant.audit_count()
        read = await tenant.call(role, query, id=str(pid))
        after_write = [e for e in await tenant.audit_events(seq__gt=before, seq__lte=middle, action="read")
                       if e.patient_id == pid]
        after_read = [e for e in await tenant.audit_events(seq__gt=middle, action="read") if e.patient_id == pid]

        assert written.errors == [] and read.errors == []
        [shown] = read.data["patient"]["contacts"]
        assert next(iter(written.data.values())) == shown
        if shape == "nothing":  # no field of the contact read back: no read (the section read is one)
            assert after_write == []
            continue
        wrote, was_read = _read_union(after_write), _read_union(after_read)
        assert wrote.keys() == was_read.keys()
        for outcome, (classes, fields, rules) in wrote.items():
            # the patient's contacts section also notes its class check's rule (patient.contact), the
            # contact the write returns is read under the contact rule alone, as before
            assert (classes, fields) == was_read[outcome][:2] and rules <= was_read[outcome][2]
            assert caller != "break_glass" or any(rule.startswith("emergency_access ") for rule in rules)
