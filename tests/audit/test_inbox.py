"""Issue 17, item 5: an audit chain that is not one lock. On PostgreSQL writers post events to an inbox without
waiting for the chain head, and whoever finds the head free seals them into the chain; readers seal first, so they
see every committed event; a crash before sealing loses nothing; only sealing removes inbox rows. Every event
carries a MAC under a key derived from the master key, which ``verify`` checks on the trail and in the inbox (both
databases)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import pytest
import pytest_asyncio

from app import checkpoints
from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import ChainReport, verify_all
from core.crypto import new_data_key
from models import AuditEvent, Institution
from resolvers.context import Services
from tests.audit.test_chain import REFUSED, connection, is_postgres
from tests.factories import Tenant, make_patient

AUDIT = "query { auditEvents(first: 100) { edges { node { seq resourceType patientId patientIds } } } }"


def read(institution_id: uuid.UUID, patient: uuid.UUID | None = None) -> AuditRecord:
    return AuditRecord(institution_id, Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                       resource_id=patient, patient_id=patient, field_classes=frozenset({"identity"}))


def require_postgres() -> None:
    if not is_postgres():
        pytest.skip("the inbox is PostgreSQL's: SQLite has one writer")


async def seqs(institution_id: uuid.UUID) -> list[int]:
    return [e.seq for e in await AuditEvent.filter(institution_id=institution_id).order_by("seq")]


async def waiting(institution_id: uuid.UUID) -> int:
    [row] = await connection().execute_query_dict(
        "SELECT count(*) AS n FROM audit_inbox WHERE institution_id = $1", [institution_id])
    return int(row["n"])


@asynccontextmanager
async def head_held(database: str, institution_id: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
    """Another transaction holds the chain head (a long write, a sealer at work) until the block ends."""
    other = await asyncpg.connect(database)
    transaction = other.transaction()
    await transaction.start()
    await other.execute("SELECT 1 FROM audit_chain_head WHERE institution_id = $1 FOR UPDATE", institution_id)
    try:
        yield other
    finally:
        if not other.is_closed():
            await transaction.rollback()
            await other.close()


@contextmanager
def mac_key(key: bytes | None) -> Iterator[None]:
    """Events appended meanwhile are MACed with ``key`` (none: no MAC), as by a process holding another key."""
    before = writer.current_mac_key()
    writer.use_mac_key(key)
    try:
        yield
    finally:
        writer.use_mac_key(before)


@pytest_asyncio.fixture
async def chain(database: str, services: Services) -> uuid.UUID:
    """An institution whose chain has begun (three events, MACed with the deployment's key)."""
    institution = await Institution.create(name=f"Inbox Clinic {uuid.uuid4().hex[:6]}", kind="clinic")
    writer.use_mac_key(services.master_key.audit_mac_key)
    await writer.append([read(institution.id, uuid.uuid4()) for _ in range(3)])
    return institution.id


async def report(institution_id: uuid.UUID, services: Services) -> ChainReport:
    [found] = await verify_all(institution_id, mac_key=services.master_key.audit_mac_key)
    return found


# -- PostgreSQL: the link names every column ------------------------------------------------


async def test_audit_link_inserts_every_column_of_the_trail(database: str) -> None:
    """Migration 0030's ``audit_link`` names the columns it inserts: a column added to ``audit_event`` (or to the
    per-patient index) without it would be stored empty. Failing here says which one to add to a new migration's
    ``audit_link``."""
    require_postgres()
    definition = (await connection().execute_query_dict(
        "SELECT pg_get_functiondef('audit_link(uuid, jsonb)'::regprocedure) AS text"))[0]["text"]
    for table in ("audit_event", "audit_patient_index"):
        columns = {row["column_name"] for row in await connection().execute_query_dict(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = $1", [table])}
        inserted = re.search(rf"INSERT INTO {table} \(([^)]*)\)", definition)
        assert inserted is not None, f"audit_link inserts no {table}"
        named = {name.strip() for name in inserted.group(1).split(",")}
        assert named == columns - ({"id"} if table == "audit_patient_index" else set()), table  # its id: a serial


# -- PostgreSQL: writers do not take turns -------------------------------------------------


async def test_a_writer_does_not_wait_for_a_busy_head_and_a_reader_sees_its_event(
        chain: uuid.UUID, database: str, services: Services) -> None:
    require_postgres()
    async with head_held(database, chain) as holder:
        await asyncio.wait_for(writer.append([read(chain, uuid.uuid4())]), timeout=5)  # would block before 0023
        assert await waiting(chain) == 1 and await seqs(chain) == [1, 2, 3]
        reader = asyncio.create_task(writer.seal(chain))  # a reader waits for the head, then links what waits
        await asyncio.sleep(0.2)
        assert not reader.done()
        await holder.execute("COMMIT")
        await asyncio.wait_for(reader, timeout=5)
    assert await seqs(chain) == [1, 2, 3, 4] and await waiting(chain) == 0
    assert (await report(chain, services)).ok


async def test_readers_of_the_trail_see_events_still_waiting(tenant: Tenant, database: str,
                                                             services: Services) -> None:
    require_postgres()
    patient = await make_patient(tenant)
    async with head_held(database, tenant.id) as holder:
        read_it = await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName } }", id=str(patient))
        assert not read_it.errors
        assert await waiting(tenant.id) >= 1  # the read is on record, not yet linked
        asyncio.get_running_loop().call_later(0.2, lambda: asyncio.ensure_future(holder.execute("COMMIT")))
        trail = await tenant.call("compliance_officer", AUDIT)
    assert not trail.errors
    reads = [e["node"] for e in trail.data["auditEvents"]["edges"] if e["node"]["patientId"] == str(patient)]
    assert reads and reads[0]["resourceType"] == "patient"
    assert await waiting(tenant.id) == 0


async def test_sixteen_writers_at_once_leave_a_gap_free_chain(chain: uuid.UUID, services: Services) -> None:
    require_postgres()

    async def write(n: int) -> None:
        for _ in range(10):
            await writer.append([read(chain, uuid.uuid4())])

    await asyncio.gather(*(write(n) for n in range(16)))
    await writer.seal(chain)
    assert await seqs(chain) == list(range(1, 3 + 160 + 1))
    assert await report(chain, services) == ChainReport(chain, 163)


async def test_a_crash_before_sealing_loses_nothing(chain: uuid.UUID, database: str, services: Services) -> None:
    require_postgres()
    async with head_held(database, chain) as holder:
        await writer.append([read(chain, uuid.uuid4()), read(chain, uuid.uuid4())])
        await holder.close()  # the transaction holding the head dies with its connection (a crashed node)
    assert await waiting(chain) == 2
    assert await writer.seal_pending(older_than=0) >= 1  # what every node's sealing loop does each second
    assert await seqs(chain) == [1, 2, 3, 4, 5] and await waiting(chain) == 0
    assert (await report(chain, services)).ok


async def test_the_sealing_loop_links_events_left_behind(chain: uuid.UUID, database: str) -> None:
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
    loop = asyncio.create_task(checkpoints.seal_waiting(look_every=0.05))
    try:
        for _ in range(100):
            if await waiting(chain) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    assert await seqs(chain) == [1, 2, 3, 4]


async def test_a_failed_seal_is_logged_by_its_kind_never_its_text(chain: uuid.UUID, database: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The sealing loop logged a chain's failed seal with ``log.exception``: the error's text and traceback, and a
    database error's text quotes the values at fault (found in review). Its kind and SQLSTATE are logged instead.
    The fault here: a trigger refusing the chain's inserts with a message that names a patient."""
    require_postgres()
    secret = "patient Wang Fang, ID 110101199003077777"
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
    await connection().execute_script(f"""
        CREATE FUNCTION test_refuse_seal() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{secret}' USING DETAIL = '{secret}'; END $$;
        CREATE TRIGGER test_refuse_seal BEFORE INSERT ON audit_event FOR EACH ROW
          WHEN (NEW.institution_id = '{chain}') EXECUTE FUNCTION test_refuse_seal();""")
    caplog.set_level(logging.INFO, logger="careloop.audit")
    try:
        assert await writer.seal_pending(older_than=0) == 0
    finally:
        await connection().execute_script("DROP TRIGGER test_refuse_seal ON audit_event; "
                                          "DROP FUNCTION test_refuse_seal()")
    [line] = [record for record in caplog.records if record.name == "careloop.audit"]
    assert line.exc_info is None and line.exc_text is None and "Wang" not in caplog.text
    assert line.getMessage() == (f"sealing the waiting audit events of institution {chain} failed "
                                 "(RaiseError, SQLSTATE P0001)")
    assert await waiting(chain) == 1  # left for the next pass
    assert await writer.seal_pending(older_than=0) == 1


async def test_the_sealing_loop_does_not_wait_for_a_busy_head(chain: uuid.UUID, database: str) -> None:
    """A chain whose head a long transaction holds is left for a later pass; the other chains are sealed now."""
    require_postgres()
    other = await Institution.create(name=f"Other Clinic {uuid.uuid4().hex[:6]}", kind="clinic")
    await writer.append([read(other.id, uuid.uuid4())])
    async with head_held(database, other.id):
        await writer.append([read(other.id, uuid.uuid4())])
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
        assert await asyncio.wait_for(writer.seal_pending(older_than=0), timeout=5) == 1
        assert await waiting(other.id) == 0 and await seqs(other.id) == [1, 2]
        assert await waiting(chain) == 1
    assert await writer.seal_pending(older_than=0) == 1
    assert await waiting(chain) == 0 and await seqs(chain) == [1, 2, 3, 4]


async def test_a_seal_answers_the_heads_number_with_the_inbox_empty_or_not(chain: uuid.UUID, database: str) -> None:
    """``audit_seal``'s answer on each of its paths (migration 0031 walks the inbox only when an event waits):
    the head's number with nothing waiting, the number after linking what waited, NULL when the head is busy
    and the caller would not wait, and a new chain's head made at 0."""
    require_postgres()

    async def seal(institution_id: uuid.UUID, wait: bool) -> int | None:
        [row] = await connection().execute_query_dict("SELECT audit_seal($1, $2) AS seq", [institution_id, wait])
        return row["seq"]

    assert await seal(chain, False) == 3 and await seal(chain, True) == 3
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4()), read(chain, uuid.uuid4())])
        assert await seal(chain, False) is None
    assert await waiting(chain) == 2
    assert await seal(chain, False) == 5
    assert await waiting(chain) == 0 and await seqs(chain) == [1, 2, 3, 4, 5]
    fresh = await Institution.create(name=f"Fresh Clinic {uuid.uuid4().hex[:6]}", kind="clinic")
    assert await seal(fresh.id, False) == 0 and await seal(fresh.id, True) == 0


async def test_inbox_rows_leave_only_by_being_sealed(chain: uuid.UUID, database: str) -> None:
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
    for statement in ("UPDATE audit_inbox SET mac = '' WHERE institution_id = $1",
                      "DELETE FROM audit_inbox WHERE institution_id = $1"):
        with pytest.raises(REFUSED, match="sealed into the chain"):
            await connection().execute_query(statement, [chain])
    with pytest.raises(REFUSED, match="sealed into the chain"):
        await connection().execute_script("TRUNCATE audit_inbox")
    with pytest.raises(REFUSED, match="sealed into the chain"):  # from a function of the caller's own neither
        await connection().execute_script(
            f"DO $$ BEGIN DELETE FROM audit_inbox WHERE institution_id = '{chain}'; END $$")
    assert await waiting(chain) == 1
    await writer.seal(chain)
    assert await waiting(chain) == 0 and await seqs(chain) == [1, 2, 3, 4]


async def test_an_event_posted_without_the_key_is_found_waiting_and_sealed(
        chain: uuid.UUID, database: str, services: Services) -> None:
    require_postgres()
    async with head_held(database, chain):
        with mac_key(new_data_key()):  # someone who can insert, with a key of their own
            await writer.append([read(chain, uuid.uuid4())])
    found = await report(chain, services)
    assert not found.ok and found.problem.startswith("an event waiting to be sealed")
    await writer.seal(chain)
    event = await AuditEvent.get(institution_id=chain, seq=4)
    assert await report(chain, services) == ChainReport(
        chain, 3, "the event's MAC does not match: it was not written with this deployment's key", 4, event.id)


async def test_an_inbox_row_forged_by_hand_is_found(chain: uuid.UUID, database: str, services: Services) -> None:
    """An INSERT straight into the inbox (the service role may insert) of a well-formed event with a MAC made up:
    found while it waits, and at its sequence number once sealed."""
    require_postgres()
    [event] = json.loads(writer.events_json([read(chain, uuid.uuid4())]))
    await connection().execute_query(
        "INSERT INTO audit_inbox (institution_id, event, mac) VALUES ($1, $2::jsonb, $3)",
        [chain, json.dumps({k: v for k, v in event.items() if k != "mac"}), "0" * 64])
    found = await report(chain, services)
    assert not found.ok and "has no valid MAC" in found.problem
    await writer.seal(chain)
    assert (await report(chain, services)).problem.startswith("the event's MAC does not match")


async def test_an_inbox_row_whose_subjects_are_no_ids_is_named_once_sealed(
        chain: uuid.UUID, database: str, services: Services) -> None:
    """The service role may insert into the inbox: a row whose body and row agree, its subjects text no record/patient
    ids, is linked (audit_link hashes the body, copies the text). Verify named nothing, it raised ValueError reading
    them (auditChainVerification: INTERNAL_SERVER_ERROR); now the row is named at its sequence number."""
    require_postgres()
    subjects = frozenset((p, p) for p in (uuid.uuid4(), uuid.uuid4()))
    [event] = json.loads(writer.events_json([dataclasses.replace(read(chain), subjects=subjects)]))
    stored = event["row"]["subjects"]
    assert json.dumps(stored) in event["body_middle"]
    event["body_middle"] = event["body_middle"].replace(json.dumps(stored), json.dumps("nothing/here"))
    event["row"]["subjects"], event["patients"] = "nothing/here", []
    await post_by_hand(chain, {k: v for k, v in event.items() if k != "mac"})
    await writer.seal(chain)
    assert await seqs(chain) == [1, 2, 3, 4] and await rejected(chain) == []

    found = await report(chain, services)

    forged = await AuditEvent.get(institution_id=chain, seq=4)
    assert forged.subjects == "nothing/here"
    assert found == ChainReport(chain, 3, "the event's subjects are not record/patient ids: the patient index cannot "
                                          "match", 4, forged.id)


MALFORMED = [
    {},  # no body pieces: no hash
    {"body_head": "[", "body_middle": "]", "row": "not an object"},
    {"body_head": "[", "body_middle": "]", "row": {"id": "not a uuid"}},
]


async def post_by_hand(institution_id: uuid.UUID, event: object, mac: str = "") -> None:
    await connection().execute_query("INSERT INTO audit_inbox (institution_id, event, mac) VALUES ($1, $2::jsonb, $3)",
                                     [institution_id, json.dumps(event), mac])


async def rejected(institution_id: uuid.UUID) -> list[str]:
    rows = await connection().execute_query_dict(
        "SELECT sqlstate FROM audit_inbox_rejected WHERE institution_id = $1 ORDER BY id", [institution_id])
    return [row["sqlstate"] for row in rows]


@pytest.mark.parametrize("malformed", MALFORMED)
async def test_a_malformed_inbox_row_is_set_aside_and_the_chain_goes_on(
        chain: uuid.UUID, database: str, services: Services, malformed: object) -> None:
    """A row the writer never makes, inserted by hand among waiting events, stopped every later seal of the
    institution (each write, each reader, the loop) before 0027. Now the events around it are linked in order,
    it is kept aside as evidence, and verify names it."""
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])  # waits in the inbox
        await post_by_hand(chain, malformed)
        await writer.append([read(chain, uuid.uuid4())])
    assert await waiting(chain) == 3

    await asyncio.wait_for(writer.append([read(chain, uuid.uuid4())]), timeout=5)  # a write seals first

    assert await waiting(chain) == 0 and await seqs(chain) == [1, 2, 3, 4, 5, 6]
    [state] = await rejected(chain)
    assert state[:2] in ("22", "23")
    found = await report(chain, services)
    assert not found.ok and "could not be sealed into the chain" in found.problem, found
    [without_key] = await verify_all(chain)  # named without the key too: no writer posts such a row
    assert not without_key.ok and without_key.events == 6  # the chain itself verifies up to its head


async def test_a_row_naming_another_institution_is_linked_into_its_own_chain(
        chain: uuid.UUID, database: str, services: Services, tenant: Tenant) -> None:
    """A posted row cannot place an event in another institution's table: the chain's institution is taken."""
    require_postgres()
    [event] = json.loads(writer.events_json([read(chain, uuid.uuid4())]))
    event["row"]["institution_id"] = str(tenant.id)
    other = await tenant.audit_count()
    await post_by_hand(chain, {k: v for k, v in event.items() if k != "mac"}, event.get("mac", ""))
    await writer.seal(chain)
    assert await seqs(chain) == [1, 2, 3, 4] and await tenant.audit_count() == other
    assert await rejected(chain) == []


async def test_a_row_posted_by_hand_takes_the_servers_place_and_a_copy_is_set_aside(
        chain: uuid.UUID, database: str, services: Services) -> None:
    """Ids and times of inbox rows are the server's: a copy of a waiting event posted by hand with an earlier id
    (another patient) cannot be linked before the event, which is linked; the copy is set aside and named."""
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
    [genuine] = await connection().execute_query_dict(
        "SELECT id, event, mac FROM audit_inbox WHERE institution_id = $1", [chain])
    copy = json.loads(genuine["event"])
    copy["patients"] = [str(uuid.uuid4())]
    await connection().execute_query(
        "INSERT INTO audit_inbox (id, institution_id, created_at, event, mac) "
        "VALUES (-1, $1, '2000-01-01', $2::jsonb, $3)",
        [chain, json.dumps(copy), genuine["mac"]])
    ids = [row["id"] for row in await connection().execute_query_dict(
        "SELECT id FROM audit_inbox WHERE institution_id = $1 ORDER BY id", [chain])]
    assert ids == [genuine["id"], genuine["id"] + 1]  # one number of the sequence each (0028)

    await writer.seal(chain)

    event = await AuditEvent.get(institution_id=chain, seq=4)
    assert str(event.id) == json.loads(genuine["event"])["row"]["id"] and await seqs(chain) == [1, 2, 3, 4]
    assert await rejected(chain) == ["23505"]
    found = await report(chain, services)
    assert not found.ok and "set aside" in found.problem


@pytest.mark.parametrize("when", ["infinity", "10000-01-01T00:00:00+00:00", "0044-03-15 12:00:00+00 BC",
                                  "2200-01-01T00:00:00+00:00"])
async def test_an_event_at_a_time_no_reader_holds_is_set_aside(chain: uuid.UUID, services: Services,
                                                               when: str) -> None:
    """A well-formed event posted by hand at a time no date type holds was linked before 0028, and every later
    read of the institution's trail failed, verify's too; an event's time lies in 2000-2199 (it is written at the
    server's present), so it is set aside and named, and the trail reads on."""
    require_postgres()
    [event] = json.loads(writer.events_json([read(chain, uuid.uuid4())]))
    event["row"]["occurred_at"] = when
    await post_by_hand(chain, {k: v for k, v in event.items() if k != "mac"}, event.get("mac", ""))
    await writer.append([read(chain, uuid.uuid4())])
    assert await seqs(chain) == [1, 2, 3, 4] and await rejected(chain) == ["23514"]
    assert [e.seq for e in await AuditEvent.filter(institution_id=chain).order_by("-occurred_at").limit(1)] == [4]
    found = await report(chain, services)  # its body, which the MAC covers, is the writer's: named as replayed
    assert not found.ok and "set aside (inbox row" in found.problem


async def test_rows_are_set_aside_by_the_seal_alone(chain: uuid.UUID) -> None:
    require_postgres()
    with pytest.raises(REFUSED, match="set aside by audit_seal alone"):
        await connection().execute_query(
            "INSERT INTO audit_inbox_rejected VALUES (1, $1, now(), now(), '{}', '', '22000')", [chain])


async def test_a_backlog_larger_than_a_chunk_is_sealed_in_order(chain: uuid.UUID, database: str,
                                                                services: Services) -> None:
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4()) for _ in range(1_100)])
    await writer.seal(chain)
    assert await waiting(chain) == 0 and await seqs(chain) == list(range(1, 3 + 1_100 + 1))
    assert (await report(chain, services)).ok


async def test_a_seal_fails_as_before_for_what_is_not_the_rows_fault(chain: uuid.UUID, database: str) -> None:
    """Only data errors set a row aside: a seal that cannot take a lock in time fails, and every well-formed event
    stays waiting for the next seal."""
    require_postgres()
    async with head_held(database, chain):
        await writer.append([read(chain, uuid.uuid4())])
    blocker, sealer = await asyncpg.connect(database), await asyncpg.connect(database)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE audit_event IN SHARE MODE")  # inserts wait
            async with sealer.transaction():
                await sealer.execute("SET LOCAL lock_timeout = '200ms'")
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await sealer.execute("SELECT audit_seal($1, true)", chain)
    finally:
        await blocker.close()
        await sealer.close()
    assert await waiting(chain) == 1 and await rejected(chain) == []
    await writer.seal(chain)
    assert await waiting(chain) == 0 and await seqs(chain) == [1, 2, 3, 4]


# -- both databases: the MAC ---------------------------------------------------------------


async def test_every_event_carries_its_mac_and_the_chain_verifies(chain: uuid.UUID, services: Services) -> None:
    await writer.append([read(chain, uuid.uuid4()), read(chain)])
    rows = await AuditEvent.filter(institution_id=chain).order_by("seq").values("mac")
    assert len(rows) == 5 and all(len(row["mac"]) == 64 for row in rows)
    assert await report(chain, services) == ChainReport(chain, 5)


async def test_an_event_made_with_another_key_is_named(chain: uuid.UUID, services: Services) -> None:
    with mac_key(new_data_key()):
        await writer.append([read(chain, uuid.uuid4())])
    await writer.append([read(chain, uuid.uuid4())])
    event = await AuditEvent.get(institution_id=chain, seq=4)
    assert await report(chain, services) == ChainReport(
        chain, 3, "the event's MAC does not match: it was not written with this deployment's key", 4, event.id)
    [without_key] = await verify_all(chain)  # verify without the key checks hashes only
    assert without_key.ok


async def test_an_event_without_a_mac_after_macs_began_is_named(chain: uuid.UUID, services: Services) -> None:
    with mac_key(None):
        await writer.append([read(chain, uuid.uuid4())])
    event = await AuditEvent.get(institution_id=chain, seq=4)
    assert await report(chain, services) == ChainReport(
        chain, 3, "the event carries no MAC, though earlier events of the chain do", 4, event.id)


async def test_a_chain_begun_before_macs_verifies(database: str, services: Services) -> None:
    """Events written before 0023 have no MAC; the chain verifies, and the MACs begin with the next event."""
    institution = await Institution.create(name=f"Old Clinic {uuid.uuid4().hex[:6]}", kind="clinic")
    with mac_key(None):
        await writer.append([read(institution.id, uuid.uuid4()) for _ in range(2)])
    await writer.append([read(institution.id, uuid.uuid4())])
    assert await report(institution.id, services) == ChainReport(institution.id, 3)
