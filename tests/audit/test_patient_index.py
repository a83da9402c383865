"""Issue 17, item 2: alike reads of one request are one audit event naming its subjects, and the trail has an
append-only per-patient index that ``verify`` holds against the events and that every "who read this file"
reader goes through (auditEvents, myAccessLog, disclosures), through exports, archives and the upgrade."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from audit import archive, checkpoint, export, offline, verify, writer
from audit.chain import HASHED_COLUMNS, canonical, parse_subjects, row_hash, subjects_text
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import ChainReport, verify_all
from models import AuditEvent, AuditPatientIndex, Institution
from resolvers import institution as institutions
from resolvers import pagination
from resolvers.context import Services
from tests.api.test_disclosures import DISCLOSURES, WIDE
from tests.audit import test_chain, test_retention
from tests.audit.test_chain import REFUSED, append_only_lifted, careloop, connection, is_postgres
from tests.audit.test_retention import LONG_AGO, Chain
from tests.factories import PASSWORD, Tenant, gql, make_patient
from tests.partners import consent_and_grant, make_client, make_partner, token_for
from tests.patients import open_account
from tests.upgrade import OLD_HASHED

subjects_migration = importlib.import_module("migrations.0022_audit_subjects")
# Fixtures shared with those modules: the CLI's environment and the checkpoint key.
cli_environment = test_chain.cli_environment
key, public = test_retention.key, test_retention.public

READ_PAGE = "query($first: Int!) { patients(first: $first) { nodes { id fullName } } }"
AUDIT = """query($first: Int! = 100, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { node { seq resourceId patientId resourceIds patientIds } } pageInfo { hasNextPage } } }"""
ACCESS_LOG = """query($first: Int! = 100) { myAccessLog(first: $first) {
  edges { node { action fieldClasses accessor { kind name } refused } } } }"""
# The hashed columns before ``subjects`` joined them (migration 0021): every old row's hash is over these.
INDEX_MISMATCH = "the patient index does not match the event"
STRAY = "a patient index row names no event of the chain"


# -- helpers -----------------------------------------------------------------------------


def hash_by_hand(row: dict[str, Any], columns: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps([canonical(row[c]) for c in columns], ensure_ascii=False).encode()).hexdigest()


async def index_of(institution_id: uuid.UUID, seq: int | None = None) -> list[tuple[int, uuid.UUID]]:
    """The institution's index rows as (seq, patient), in order."""
    query = AuditPatientIndex.filter(institution_id=institution_id)
    if seq is not None:
        query = query.filter(seq=seq)
    return [(int(s), uuid.UUID(str(p))) for s, p in await query.order_by("seq", "patient_id").values_list(
        "seq", "patient_id")]


@asynccontextmanager
async def index_lifted() -> AsyncIterator[None]:
    """An attacker with the database owner's rights drops the index's triggers; 0022 puts them back."""
    if is_postgres():
        drop = ["DROP TRIGGER audit_patient_index_no_update_delete ON audit_patient_index",
                "DROP TRIGGER audit_patient_index_no_truncate ON audit_patient_index"]
    else:
        drop = ["DROP TRIGGER audit_patient_index_no_update", "DROP TRIGGER audit_patient_index_no_delete"]
    for statement in drop:
        await connection().execute_script(statement)
    try:
        yield
    finally:
        guards = [s for s in subjects_migration.POSTGRES if s is not subjects_migration.FUNCTION] if is_postgres() \
            else subjects_migration.SQLITE  # 0022's audit_append was replaced by 0023's: keep that one
        for statement in guards:
            await connection().execute_script(statement)


async def forge_index_row(institution_id: uuid.UUID, seq: int, patient_id: uuid.UUID) -> None:
    """A plain INSERT (the index takes inserts, as the trail does): an index row no append wrote."""
    await AuditPatientIndex.create(institution_id=institution_id, seq=seq, patient_id=patient_id,
                                   occurred_at=datetime.now(UTC), actor_kind="staff", actor_id=uuid.uuid4(),
                                   action="read", outcome="allowed")


def read(chain_id: uuid.UUID, *, subjects: int = 0, patient: uuid.UUID | None = None,
         when: datetime | None = None, actor: Actor | None = None) -> AuditRecord:
    """A read of one patient (``patient``) or of ``subjects`` patients as one event."""
    grouped = frozenset((p, p) for p in (uuid.uuid4() for _ in range(subjects)))
    return AuditRecord(chain_id, actor or Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                       resource_id=patient, patient_id=patient, field_classes=frozenset({"identity"}),
                       subjects=grouped, occurred_at=when or datetime.now(UTC))


async def mixed_chain(chain: Chain) -> None:
    """Seq 1-8: grouped reads (3 and 2 patients), single reads, and an event about no patient."""
    await writer.append([read(chain.id, subjects=3), read(chain.id, patient=uuid.uuid4()),
                         read(chain.id, subjects=2), read(chain.id)])
    await writer.append([read(chain.id, patient=uuid.uuid4()), read(chain.id, subjects=2),
                         read(chain.id, subjects=3), read(chain.id, patient=uuid.uuid4())])
    assert await chain.seqs() == list(range(1, 9))


@pytest_asyncio.fixture
async def chain(database: str, key: Ed25519PrivateKey) -> Chain:
    """An institution whose chain is built event by event (test_retention's, with the database opened first:
    that one relies on an earlier test having opened it)."""
    return Chain(await Institution.create(name=f"Index Clinic {uuid.uuid4().hex[:6]}", kind="clinic"), key)


@dataclass
class Paged:
    """A nurse's page of three patients (one audit event), and a patient of another department."""

    tenant: Tenant
    page: list[uuid.UUID]
    outsider: uuid.UUID
    event: AuditEvent


@pytest_asyncio.fixture
async def paged(tenant: Tenant) -> Paged:
    page = [await make_patient(tenant, "nurse") for _ in range(3)]
    outsider = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))  # beyond the nurse
    before = (await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first())
    assert before is not None
    reply = await tenant.call("nurse", READ_PAGE, first=10)
    assert reply.errors == [], reply.errors
    assert sorted(node["id"] for node in reply.data["patients"]["nodes"]) == sorted(str(p) for p in page)
    [event] = await AuditEvent.filter(institution_id=tenant.id, seq__gt=before.seq).order_by("seq")
    return Paged(tenant, page, outsider, event)


# -- 1. one event per page, found by patient and by record ----------------------------------


async def test_a_page_read_is_one_event_indexed_under_each_patient_and_found_by_each(paged: Paged) -> None:
    tenant, event = paged.tenant, paged.event
    assert (event.resource_id, event.patient_id) == (None, None)
    assert parse_subjects(event.subjects) == sorted((p, p) for p in paged.page)
    assert await index_of(tenant.id, event.seq) == sorted((event.seq, p) for p in paged.page)

    for patient in paged.page:
        for by in ("patient", "resource"):
            reply = await tenant.call("compliance_officer", AUDIT, filter={by: str(patient)})
            assert reply.errors == [], reply.errors
            nodes = {n["seq"]: n for n in (e["node"] for e in reply.data["auditEvents"]["edges"])}
            assert event.seq in nodes, by
            assert nodes[event.seq]["patientIds"] == sorted(str(p) for p in paged.page)
            assert nodes[event.seq]["resourceIds"] == sorted(str(p) for p in paged.page)
            assert (nodes[event.seq]["patientId"], nodes[event.seq]["resourceId"]) == (None, None)
    for by in ("patient", "resource"):
        reply = await tenant.call("compliance_officer", AUDIT, filter={by: str(paged.outsider)})
        seqs = [e["node"]["seq"] for e in reply.data["auditEvents"]["edges"]]
        assert seqs and event.seq not in seqs  # its own registration, not the page
    assert (await verify_all(tenant.id))[0].ok


REPORT = "query($id: ID!) { patientAccessReport(patientId: $id) { name reads writes fieldClasses } }"
ANOMALIES = """query($from: DateTime!, $to: DateTime!) {
  accessAnomalies(from: $from, to: $to, factor: 1.5, minimum: 1) { staffId patientsRead } }"""


async def test_the_access_report_and_the_anomaly_count_see_the_page_read(paged: Paged, services: Services) -> None:
    tenant, nurse = paged.tenant, f"nurse {paged.tenant.institution.name.rsplit(' ', 1)[-1]}"
    for patient in paged.page:
        reply = await tenant.call("compliance_officer", REPORT, id=str(patient))
        assert reply.errors == [], reply.errors
        people = {p["name"]: p for p in reply.data["patientAccessReport"]}
        assert (people[nurse]["reads"], people[nurse]["writes"]) == (1, 1)  # the page, and the registration
    reply = await tenant.call("compliance_officer", REPORT, id=str(paged.outsider))
    assert nurse not in {p["name"] for p in reply.data["patientAccessReport"]}

    # a second nurse who read nothing: the first one's three files are then above the role's median
    await institutions.create_account(services, tenant.institution, email=f"nurse.{uuid.uuid4().hex[:8]}@careloop.test",
                                      name="second nurse", password=PASSWORD, roles=["nurse"],
                                      departments=[tenant.departments["A"]])
    period = {"from": (paged.event.occurred_at - timedelta(minutes=1)).isoformat(),
              "to": (paged.event.occurred_at + timedelta(minutes=1)).isoformat()}
    reply = await tenant.call("compliance_officer", ANOMALIES, **period)
    assert reply.errors == [], reply.errors
    counts = {a["staffId"]: a["patientsRead"] for a in reply.data["accessAnomalies"]}
    assert counts.get(str(tenant.staff_ids["nurse"])) == 3


# -- 2. tampering is found by verify -------------------------------------------------------


async def test_a_subjects_change_that_keeps_the_patients_is_a_hash_mismatch(chain: Chain) -> None:
    await mixed_chain(chain)
    target = await AuditEvent.get(institution_id=chain.id, seq=3)
    (_, patient), *rest = parse_subjects(target.subjects)
    forged = subjects_text([(uuid.uuid4(), patient), *rest])  # another record, the same patients: index agrees

    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(subjects=forged)

    assert await chain.report() == ChainReport(chain.id, 2, "content does not match its hash", 3, target.id)


async def test_a_subjects_change_that_swaps_a_patient_is_a_hash_mismatch(chain: Chain) -> None:
    await mixed_chain(chain)
    target = await AuditEvent.get(institution_id=chain.id, seq=6)
    subjects = parse_subjects(target.subjects)
    forged = subjects_text([*subjects[1:], (subjects[0][0], uuid.uuid4())])

    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(subjects=forged)

    assert await chain.report() == ChainReport(chain.id, 5, "content does not match its hash", 6, target.id)


@pytest.mark.parametrize("seq", [1, 2, 7])  # grouped, single, grouped in the second append
async def test_a_deleted_index_row_is_named(chain: Chain, seq: int) -> None:
    await mixed_chain(chain)
    target = await AuditEvent.get(institution_id=chain.id, seq=seq)
    [(_, patient), *_] = await index_of(chain.id, seq)

    async with index_lifted():
        await AuditPatientIndex.filter(institution_id=chain.id, seq=seq, patient_id=patient).delete()

    assert await chain.report() == ChainReport(chain.id, seq - 1, INDEX_MISMATCH, seq, target.id)


@pytest.mark.parametrize("seq", [3, 4, 5])  # grouped, about no patient, single
async def test_an_index_row_for_a_patient_the_event_is_not_about_is_named(chain: Chain, seq: int) -> None:
    await mixed_chain(chain)
    target = await AuditEvent.get(institution_id=chain.id, seq=seq)

    await forge_index_row(chain.id, seq, uuid.uuid4())

    assert await chain.report() == ChainReport(chain.id, seq - 1, INDEX_MISMATCH, seq, target.id)


async def test_an_index_row_beyond_the_head_is_named(chain: Chain) -> None:
    await mixed_chain(chain)

    await forge_index_row(chain.id, 11, uuid.uuid4())

    assert await chain.report() == ChainReport(chain.id, 8, STRAY, 11, None)


async def test_index_rows_are_checked_across_batches(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "BATCH", 3)
    await mixed_chain(chain)
    assert await chain.report() == ChainReport(chain.id, 8)
    target = await AuditEvent.get(institution_id=chain.id, seq=7)  # the first row of the third batch

    await forge_index_row(chain.id, 7, uuid.uuid4())

    assert await chain.report() == ChainReport(chain.id, 6, INDEX_MISMATCH, 7, target.id)


async def test_the_first_bad_row_is_named_whichever_kind_comes_first(chain: Chain) -> None:
    await mixed_chain(chain)
    third, sixth = await AuditEvent.get(institution_id=chain.id, seq=3), await AuditEvent.get(
        institution_id=chain.id, seq=6)

    # an index problem at 3, a hash problem at 6
    await forge_index_row(chain.id, 3, uuid.uuid4())
    async with append_only_lifted():
        await AuditEvent.filter(id=sixth.id).update(reason="nothing happened")
    assert await chain.report() == ChainReport(chain.id, 2, INDEX_MISMATCH, 3, third.id)

    # and the other way round: a hash problem at 3 before the index problem at 6 (and the old one at 3)
    async with append_only_lifted():
        await AuditEvent.filter(id=sixth.id).update(reason="")
        await AuditEvent.filter(id=third.id).update(reason="nothing happened")
    await forge_index_row(chain.id, 6, uuid.uuid4())
    assert await chain.report() == ChainReport(chain.id, 2, "content does not match its hash", 3, third.id)
    async with index_lifted():
        await AuditPatientIndex.filter(institution_id=chain.id, seq=3).delete()
    async with append_only_lifted():
        await AuditEvent.filter(id=third.id).update(reason="")
    await writer.append([read(chain.id, subjects=2)])  # seq 9: index rows of seq 3 are gone, 3 still found first
    assert await chain.report() == ChainReport(chain.id, 2, INDEX_MISMATCH, 3, third.id)


async def test_a_cut_tail_is_named_before_the_index_rows_it_left(chain: Chain) -> None:
    """A tail cut with its events leaves index rows beyond the head: the cut is named, not the strays."""
    await mixed_chain(chain)
    last = await AuditEvent.get(institution_id=chain.id, seq=8)
    async with append_only_lifted():
        await AuditEvent.filter(id=last.id).delete()

    assert await chain.report() == ChainReport(chain.id, 7, "rows missing after the last event", 8, None)


async def test_an_index_row_rewritten_to_hide_a_disclosure_is_named(chain: Chain) -> None:
    """Disclosures, anomalies and periods filter on the index's copies of the event's columns: changing them
    (here: a partner's read made to look like a staff read) hides the read from the accounting."""
    partner = Actor("partner", uuid.uuid4())
    await writer.append([read(chain.id, subjects=2, actor=partner)])
    target = await AuditEvent.get(institution_id=chain.id, seq=1)

    async with index_lifted():
        await AuditPatientIndex.filter(institution_id=chain.id, seq=1).update(actor_kind="staff")

    assert await chain.report() == ChainReport(chain.id, 0, INDEX_MISMATCH, 1, target.id)


@pytest.mark.usefixtures("cli_environment")
async def test_cli_verify_names_index_tampering(chain: Chain) -> None:
    await mixed_chain(chain)
    target = await AuditEvent.get(institution_id=chain.id, seq=5)
    async with index_lifted():
        await AuditPatientIndex.filter(institution_id=chain.id, seq=5).delete()
    await forge_index_row(chain.id, 12, uuid.uuid4())  # a later problem too: not the first

    code, stdout, stderr = await careloop("audit", "verify", "--institution", str(chain.id))

    assert code == 1, stdout + stderr
    assert stdout == f"{chain.id}: FIRST BAD ROW seq 5 (id {target.id}): {INDEX_MISMATCH}\n", stderr


# -- 3. append-only -------------------------------------------------------------------------


async def test_the_database_refuses_to_change_or_delete_index_rows(chain: Chain) -> None:
    await mixed_chain(chain)
    rows = await index_of(chain.id)
    assert len(rows) == 13  # 3 + 1 + 2 + 0 + 1 + 2 + 3 + 1

    with pytest.raises(REFUSED, match="append-only"):
        await AuditPatientIndex.filter(institution_id=chain.id, seq=1).update(patient_id=uuid.uuid4())
    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(
            f"UPDATE audit_patient_index SET outcome = 'denied' WHERE institution_id = '{chain.id}'")
    with pytest.raises(REFUSED, match="append-only"):
        await AuditPatientIndex.filter(institution_id=chain.id, seq=2).delete()
    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(f"DELETE FROM audit_patient_index WHERE institution_id = '{chain.id}'")
    # An event deleted behind the trail's back, with no archive anchor over it: its index rows still stay.
    gone = await AuditEvent.get(institution_id=chain.id, seq=8)
    async with append_only_lifted():
        await AuditEvent.filter(id=gone.id).delete()
    with pytest.raises(REFUSED, match="append-only"):
        await AuditPatientIndex.filter(institution_id=chain.id, seq=8).delete()

    assert await index_of(chain.id) == rows


async def test_the_database_refuses_to_overwrite_an_index_row_by_upsert(chain: Chain) -> None:
    await mixed_chain(chain)
    rows = await index_of(chain.id)
    [original] = await connection().execute_query_dict(
        f"SELECT * FROM audit_patient_index WHERE institution_id = '{chain.id}' AND seq = 2")
    forged = {**original, "outcome": "denied"}
    if is_postgres():
        del forged["id"]
        marks = ", ".join(f"${n}" for n in range(1, len(forged) + 1))
        statement = (f"INSERT INTO audit_patient_index ({', '.join(forged)}) VALUES ({marks}) "
                     "ON CONFLICT (institution_id, seq, patient_id) DO UPDATE SET outcome = excluded.outcome")
    else:  # INSERT OR REPLACE deletes the clashing row without firing DELETE triggers
        statement = (f"INSERT OR REPLACE INTO audit_patient_index ({', '.join(forged)}) "
                     f"VALUES ({', '.join('?' for _ in forged)})")

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_query(statement, list(forged.values()))

    assert await index_of(chain.id) == rows
    assert (await AuditPatientIndex.get(id=original["id"])).outcome == "allowed"


async def test_the_database_refuses_to_truncate_the_index(chain: Chain) -> None:
    if not is_postgres():
        pytest.skip("SQLite has no TRUNCATE; an unqualified DELETE is refused above")
    await mixed_chain(chain)
    rows = await index_of(chain.id)

    with pytest.raises(REFUSED, match="append-only"):
        await connection().execute_script("TRUNCATE audit_patient_index")

    assert await index_of(chain.id) == rows


# -- 4. hashes ------------------------------------------------------------------------------


async def test_an_event_without_subjects_hashes_as_before_and_one_with_them_covers_them(chain: Chain) -> None:
    await mixed_chain(chain)
    rows = await AuditEvent.filter(institution_id=chain.id).order_by("seq").values(*HASHED_COLUMNS, "hash")
    new_hashed = (*OLD_HASHED[:-1], "subjects", "prev_hash")
    assert HASHED_COLUMNS == new_hashed

    for row in rows:
        assert row_hash(row) == row["hash"]
        if row["subjects"]:
            # on PostgreSQL written by audit_append from the pieces the writer sent: the same hash
            assert hash_by_hand(row, new_hashed) == row["hash"]
            assert hash_by_hand(row, OLD_HASHED) != row["hash"]
        else:
            assert hash_by_hand(row, OLD_HASHED) == row["hash"]  # exactly the hash of before issue 17
            assert row_hash({name: value for name, value in row.items() if name != "subjects"}) == row["hash"]
    assert sorted(bool(row["subjects"]) for row in rows) == [False] * 4 + [True] * 4


async def test_index_rows_repeat_their_events_columns(chain: Chain) -> None:
    """Disclosures, anomalies and periods filter on these copies (on PostgreSQL written by audit_append)."""
    await mixed_chain(chain)
    columns = ("occurred_at", "actor_kind", "actor_id", "action", "outcome")
    events = {row["seq"]: row for row in await AuditEvent.filter(institution_id=chain.id).values("seq", *columns)}
    rows = await AuditPatientIndex.filter(institution_id=chain.id).values("seq", *columns)

    assert len(rows) == 13
    for row in rows:
        assert row == events[row["seq"]]


async def test_a_grouped_event_through_the_api_hashes_over_its_subjects(paged: Paged) -> None:
    [row] = await AuditEvent.filter(id=paged.event.id).values(*HASHED_COLUMNS, "hash")
    assert row["subjects"] == subjects_text((p, p) for p in paged.page)
    assert hash_by_hand(row, (*OLD_HASHED[:-1], "subjects", "prev_hash")) == row["hash"] == row_hash(row)


# -- 5. the offline check -----------------------------------------------------------------


def pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.usefixtures("cli_environment")
async def test_an_export_with_subjects_verifies_offline_and_old_lines_without_them_too(
    paged: Paged, key: Ed25519PrivateKey, public: Ed25519PublicKey, tmp_path: Path
) -> None:
    tenant = paged.tenant
    assert await checkpoint.take(key, tenant.id) is not None
    trail, signed, key_file = tmp_path / "trail.ndjson", tmp_path / "signed.ndjson", tmp_path / "key.pem"
    signed.write_text("".join(json.dumps(c.to_json()) + "\n" for c in await checkpoint.of_institution(tenant.id)))
    key_file.write_bytes(pem(public))

    code, _, stderr = await careloop("audit", "export", "--institution", str(tenant.id), "--format", "ndjson",
                                     "--output", str(trail))
    assert code == 0, stderr
    offline_check = ("audit", "verify", "--export", str(trail), "--checkpoint", str(signed), "--public-key",
                     str(key_file))
    code, stdout, stderr = await careloop(*offline_check)
    assert code == 0 and "chain intact" in stdout, stdout + stderr

    lines = trail.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    [grouped] = [row for row in rows if row.get("seq") == str(paged.event.seq)]
    assert grouped["subjects"] == paged.event.subjects
    checkpoints = await checkpoint.of_institution(tenant.id)
    # As an export made before issue 17 has them: no "subjects" key on the lines that have none.
    old_style = [json.dumps({k: v for k, v in row.items() if k != "subjects" or v}) for row in rows]
    assert sum(row.get("subjects") == "" for row in rows) > 10  # lines that lose the key
    assert offline.verify(old_style, checkpoints, public).ok
    trail.write_text("".join(line + "\n" for line in old_style))
    code, stdout, stderr = await careloop(*offline_check)
    assert code == 0 and "chain intact" in stdout, stdout + stderr

    # The subjects are covered: dropped or changed on the grouped line, the line no longer verifies.
    at = rows.index(grouped)
    for forged in ({k: v for k, v in grouped.items() if k != "subjects"},
                   {**grouped, "subjects": subjects_text((p, p) for p in paged.page[:2])}):
        report = offline.verify([*old_style[:at], json.dumps(forged), *old_style[at + 1:]], checkpoints, public)
        assert report.problem == f"seq {grouped['seq']}: content does not match its hash"


# -- 6. FHIR ------------------------------------------------------------------------------


async def test_the_fhir_export_of_a_grouped_read_names_each_patient_once(paged: Paged) -> None:
    out = io.StringIO()
    await export.write(paged.tenant.id, "fhir", out)
    resources = [json.loads(line) for line in out.getvalue().splitlines()]

    def seq_of(resource: dict[str, Any]) -> str:
        return next(d["valueString"] for d in resource["entity"][0]["detail"] if d["type"] == "seq")

    [resource] = [r for r in resources if seq_of(r) == str(paged.event.seq)]
    FhirAuditEvent.model_validate(resource)
    persons = [e for e in resource["entity"] if e["type"]["code"] == "1"]
    objects = [e for e in resource["entity"] if e["type"]["code"] == "2"]
    assert [e["what"]["identifier"]["value"] for e in persons] == sorted(str(p) for p in paged.page)
    assert all(e["what"]["identifier"]["system"] == "urn:careloop:patient" for e in persons)
    assert sorted(e["what"]["identifier"]["value"] for e in objects) == sorted(str(p) for p in paged.page)
    # a single read keeps one object and one person
    [single] = [r for r in resources if any(e["type"]["code"] == "1" for e in r["entity"])
                and r["entity"][0]["what"]["identifier"]["value"] == str(paged.outsider)][:1]
    assert [e["type"]["code"] for e in single["entity"]] == ["2", "1"]


# -- 7. who viewed my file -----------------------------------------------------------------


async def test_a_patient_sees_a_page_read_that_included_them_and_another_does_not(tenant: Tenant) -> None:
    on_page = await open_account(tenant, await make_patient(tenant, "nurse"))
    await make_patient(tenant, "nurse")  # a second patient on the page: the read is one grouped event
    elsewhere = await open_account(tenant, departmentId=str(tenant.departments["B"].id))

    reply = await tenant.call("nurse", READ_PAGE, first=10)
    assert reply.errors == [], reply.errors
    assert str(on_page.patient_id) in {n["id"] for n in reply.data["patients"]["nodes"]}
    last = await AuditEvent.filter(institution_id=tenant.id).order_by("-seq").first()
    assert last is not None and last.patient_id is None and str(on_page.patient_id) in last.subjects

    nurse_read = {"action": "READ", "fieldClasses": ["IDENTITY"],
                  "accessor": {"kind": "STAFF", "name": f"nurse {tenant.institution.name.rsplit(' ', 1)[-1]}"},
                  "refused": False}
    mine = await on_page.call(ACCESS_LOG)
    assert mine.errors == [], mine.errors
    assert mine.data["myAccessLog"]["edges"][0]["node"] == nurse_read
    theirs = await elsewhere.call(ACCESS_LOG)
    assert theirs.errors == [], theirs.errors
    assert nurse_read not in [edge["node"] for edge in theirs.data["myAccessLog"]["edges"]]
    assert [e["node"]["accessor"]["kind"] for e in theirs.data["myAccessLog"]["edges"]].count("STAFF") >= 1


# -- 8. disclosures ------------------------------------------------------------------------


async def test_a_partner_reading_several_files_is_one_disclosure_each_paged_one_by_one(tenant: Tenant) -> None:
    partner = await make_partner(tenant, "Gamma Home Care")
    client = await make_client(tenant, partner)
    patients = [await make_patient(tenant, "nurse") for _ in range(3)]
    purposes = {p: f"Visits {n}" for n, p in enumerate(patients)}
    grants = {p: await consent_and_grant(tenant, partner, p, purposes[p]) for p in patients}
    await make_patient(tenant, "nurse")  # no grant: never disclosed
    token = await token_for(tenant.client, client)
    before = await AuditPatientIndex.filter(institution_id=tenant.id).count()

    assert (await gql(tenant.client, "query($id: ID!) { patient(id: $id) { fullName } }",
                      {"id": str(patients[0])}, token)).errors == []
    page = await gql(tenant.client, "{ patients { nodes { id fullName } } }", None, token)
    assert page.errors == [], page.errors
    assert sorted(n["id"] for n in page.data["patients"]["nodes"]) == sorted(str(p) for p in patients)
    assert await AuditPatientIndex.filter(institution_id=tenant.id).count() - before >= 4

    seen, cursors, after = [], set(), None
    for _ in range(10):
        reply = await tenant.call("compliance_officer", DISCLOSURES, **WIDE, partnerId=str(partner), first=1,
                                  after=after)
        assert reply.errors == [], reply.errors
        edges = reply.data["disclosures"]["edges"]
        assert len(edges) == 1
        seen.append(edges[0]["node"])
        cursors.add(edges[0]["cursor"])
        if not reply.data["disclosures"]["pageInfo"]["hasNextPage"]:
            break
        after = reply.data["disclosures"]["pageInfo"]["endCursor"]

    assert len(cursors) == len(seen) == 4
    assert Counter(n["patientId"] for n in seen) == Counter({str(patients[0]): 2, str(patients[1]): 1,
                                                            str(patients[2]): 1})
    for node in seen:
        patient = uuid.UUID(node["patientId"])
        assert (node["purpose"], node["grantId"], node["dataCategories"]) == (purposes[patient],
                                                                              str(grants[patient]), ["identity"])
    whole = await tenant.call("compliance_officer", DISCLOSURES, **WIDE, partnerId=str(partner))
    assert [e["node"] for e in whole.data["disclosures"]["edges"]] == seen  # the same order, newest first


async def test_one_partner_event_about_several_patients_pages_one_disclosure_at_a_time(tenant: Tenant) -> None:
    """Today a partner's reads of several files differ by grant (each its own event); an event covering several
    (as alike reads are grouped) is still one disclosure per patient, and the cursor walks inside it."""
    partner = await make_partner(tenant)
    client = await make_client(tenant, partner)
    patients = sorted(uuid.uuid4() for _ in range(3))
    await writer.append([AuditRecord(tenant.id, Actor("partner", client.id), Action.READ, "patient",
                                     Outcome.ALLOWED, field_classes=frozenset({"identity"}),
                                     subjects=frozenset((p, p) for p in patients))])

    seen: list[str] = []
    after = None
    for _ in range(5):
        reply = await tenant.call("compliance_officer", DISCLOSURES, **WIDE, partnerId=str(partner), first=1,
                                  after=after)
        assert reply.errors == [], reply.errors
        seen.extend(edge["node"]["patientId"] for edge in reply.data["disclosures"]["edges"])
        if not reply.data["disclosures"]["pageInfo"]["hasNextPage"]:
            break
        after = reply.data["disclosures"]["pageInfo"]["endCursor"]

    assert sorted(seen) == [str(p) for p in patients]


async def test_a_disclosure_cursor_of_before_the_index_is_refused(tenant: Tenant) -> None:
    """Disclosure cursors now hold index positions: one from before the upgrade (an event's seq) is refused, it
    does not resume from the wrong place."""
    old = pagination.encode("disclosure", "5")
    reply = await tenant.call("compliance_officer", DISCLOSURES, **WIDE, first=1, after=old)
    assert reply.codes == ["BAD_USER_INPUT"]


async def test_a_node_on_the_old_code_appends_on_postgres_with_its_patient_indexed(chain: Chain) -> None:
    """During a rolling upgrade a node still on 0021's writer calls audit_append without subjects or patients:
    the event is written (subjects empty, its old hash right) and indexed under its patient_id."""
    if not is_postgres():
        pytest.skip("audit_append is PostgreSQL's")
    patient = uuid.uuid4()
    record = AuditRecord(chain.id, Actor("staff", uuid.uuid4()), Action.READ, "patient", Outcome.ALLOWED,
                         resource_id=patient, patient_id=patient, field_classes=frozenset({"identity"}))
    [event] = json.loads(writer.events_json([record]))
    old_event = {"body_head": event["body_head"], "body_middle": event["body_middle"],
                 "row": {name: value for name, value in event["row"].items() if name != "subjects"}}
    await connection().execute_query("SELECT audit_append($1, $2::jsonb)", [chain.id, json.dumps([old_event])])

    [row] = await AuditEvent.filter(institution_id=chain.id).values(*HASHED_COLUMNS, "hash")
    assert row["subjects"] == "" and hash_by_hand(row, OLD_HASHED) == row["hash"]
    assert await AuditPatientIndex.filter(institution_id=chain.id).values_list("patient_id", flat=True) == [patient]
    assert (await chain.report()).ok


# -- 9. the upgrade --------------------------------------------------------------------------


async def test_the_upgrade_backfills_the_index_and_old_chains_verify(upgraded: dict[str, Any]) -> None:
    """Migrate to 0021, append as 0021's writer did, migrate to 0022: the index holds each old event's patient,
    every old hash still verifies, and new appends (0022's audit_append on PostgreSQL) link on. (The upgrade:
    tests/upgrade.py, shared with test_migrations.py's.)"""
    out = upgraded["audit"]
    p1, p2 = out["patients"]
    chain_id = uuid.UUID(out["chain"])

    events = {e["seq"]: e for e in out["events"]}
    assert [e["subjects"] for e in out["events"]] == [""] * 4
    assert sorted((r["seq"], r["patient_id"]) for r in out["index"]) == sorted([(1, p1), (3, p2), (4, p1)])
    for row in out["index"]:
        assert (row["actor_kind"], row["actor_id"], row["action"], row["outcome"]) == (
            "staff", out["actor"], "read", "allowed")
        assert datetime.fromisoformat(row["occurred_at"]) == datetime.fromisoformat(events[row["seq"]]["occurred_at"])
    assert out["report"] == repr([ChainReport(chain_id, 4)])
    assert out["after"] == repr([ChainReport(chain_id, 5)])
    assert out["new_index"] == sorted([p1, p2])


# -- 10. archive ---------------------------------------------------------------------------


async def test_archiving_deletes_the_index_rows_of_the_archived_stretch(chain: Chain, public: Ed25519PublicKey,
                                                                        tmp_path: Path) -> None:
    old = datetime.now(UTC) - LONG_AGO
    await writer.append([read(chain.id, subjects=3, when=old), read(chain.id, patient=uuid.uuid4(), when=old),
                         read(chain.id, when=old), read(chain.id, subjects=2, when=old)])
    await chain.sign()
    await writer.append([read(chain.id, subjects=2, when=old), read(chain.id, subjects=2)])  # 6 is young
    await chain.sign()
    kept = await index_of(chain.id)
    assert {seq for seq, _ in kept} == {1, 2, 4, 5, 6}

    anchor = await archive.archive(chain.id, tmp_path / "archive.ndjson", public)

    assert anchor is not None and anchor.up_to_seq == 4
    assert await index_of(chain.id) == [row for row in kept if row[0] > 4]
    assert await chain.report() == ChainReport(chain.id, 3, archived=4)  # 5, 6 and the archive's own record
    lines = (tmp_path / "archive.ndjson").read_text().splitlines()
    assert offline.verify(lines, await chain.checkpoints(4), public).ok  # with its subjects
    assert [json.loads(line)["subjects"] != "" for line in lines] == [True, False, False, True]
    # what is left stays append-only, and a stray row slipped in below the anchor is named
    with pytest.raises(REFUSED, match="append-only"):
        await AuditPatientIndex.filter(institution_id=chain.id, seq=5).delete()
    await forge_index_row(chain.id, 2, uuid.uuid4())
    assert await chain.report() == ChainReport(chain.id, 3, STRAY, 2, None, 4)
