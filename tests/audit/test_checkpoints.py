"""Signed checkpoints, exports (NDJSON, CSV, FHIR R4) and offline verification of an export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from tortoise.transactions import in_transaction

from audit import checkpoint, export, offline
from audit.chain import row_hash
from audit.checkpoint import Checkpoint
from audit.events import Action
from core.settings import load_settings
from models import AuditCheckpoint
from resolvers.context import Services
from tests.factories import Tenant, make_patient


async def trail(tenant: Tenant, fmt: str = "ndjson") -> str:
    out = io.StringIO()
    await export.write(tenant.id, fmt, out)
    return out.getvalue()


async def busy(tenant: Tenant, patients: int = 3) -> None:
    for _ in range(patients):
        await make_patient(tenant)


async def test_an_intact_export_verifies_against_its_checkpoints(tenant: Tenant, services: Services) -> None:
    key = services.master_key.checkpoint_key
    await busy(tenant)
    first = await checkpoint.take(key, tenant.id)
    await busy(tenant)
    second = await checkpoint.take(key, tenant.id)
    assert first is not None and second is not None and second.last_seq > first.last_seq
    assert await checkpoint.take(key, tenant.id) is None  # nothing new to sign
    lines = (await trail(tenant)).splitlines()
    report = offline.verify(lines[:second.last_seq], [first, second], key.public_key())
    assert report.ok, report.problem
    assert report.events == second.last_seq and report.checkpoints == 2


async def test_events_after_the_last_checkpoint_are_named_an_unverified_tail(tenant: Tenant,
                                                                             services: Services) -> None:
    key = services.master_key.checkpoint_key
    await busy(tenant)
    signed = await checkpoint.take(key, tenant.id)
    await busy(tenant)
    assert signed is not None
    lines = (await trail(tenant)).splitlines()
    report = offline.verify(lines, [signed], key.public_key())
    assert report.ok, report.problem
    assert report.vouched_to == signed.last_seq and report.unverified_tail == (signed.last_seq + 1, len(lines))
    # The export's own signed end vouches for all of it, and a later checkpoint is no failure then.
    last = json.loads(lines[-1])
    end = export.end_line(checkpoint.sign(key, tenant.id, int(last["seq"]), last["hash"], datetime.now(UTC)))
    later = checkpoint.sign(key, tenant.id, len(lines) + 5, "0" * 64, datetime.now(UTC))
    ended = offline.verify([*lines, end], [signed, later], key.public_key())
    assert ended.ok and ended.signed_end and ended.unverified_tail is None and ended.later_checkpoints == 1
    cut = offline.verify([*lines[:-1], end], [signed], key.public_key())
    assert cut.problem == f"truncated: the export's signed end is seq {last['seq']}, its events end at " \
                          f"{len(lines) - 1}"
    stranger = Ed25519PrivateKey.generate()
    forged = export.end_line(checkpoint.sign(stranger, tenant.id, int(last["seq"]), last["hash"], datetime.now(UTC)))
    assert not offline.verify([*lines, forged], [signed], key.public_key()).ok


async def test_truncation_rewriting_and_forgery_are_detected(tenant: Tenant, services: Services) -> None:
    key = services.master_key.checkpoint_key
    await busy(tenant)
    signed = await checkpoint.take(key, tenant.id)
    assert signed is not None
    lines = (await trail(tenant)).splitlines()[:signed.last_seq]
    public = key.public_key()

    truncated = offline.verify(lines[:-2], [signed], public)  # no signed end of its own: the checkpoint is a cut
    assert not truncated.ok and truncated.problem.startswith("truncated")

    # Rewritten from scratch: one event changed and every hash after it recomputed, so the chain
    # is consistent in itself, but its head no longer matches the signature.
    rows = [json.loads(line) for line in lines]
    rows[1]["reason"] = "nothing to see"
    for i, row in enumerate(rows):
        if i:
            row["prev_hash"] = rows[i - 1]["hash"]
        row["hash"] = row_hash(row)
    rewritten = offline.verify([json.dumps(r) for r in rows], [signed], public)
    assert not rewritten.ok and rewritten.problem.startswith("rewritten")

    edited = [json.loads(line) for line in lines]
    edited[2]["fields_read"] = "diagnoses"
    tampered = offline.verify([json.dumps(r) for r in edited], [signed], public)
    assert tampered.problem == f"seq {edited[2]['seq']}: content does not match its hash"

    forged = Checkpoint(**{**signed.to_json(), "head_hash": rows[-1]["hash"]})
    assert offline.verify(lines, [forged], public).problem.endswith("does not verify with this public key")
    stranger = Ed25519PrivateKey.generate().public_key()
    assert not offline.verify(lines, [signed], stranger).ok
    unvouched = offline.verify(lines, [], public)
    assert unvouched.problem == "no signed checkpoint falls inside the export"
    gap = offline.verify(lines[:2] + lines[3:], [signed], public)
    assert gap.problem.startswith("seq") and "gap" in gap.problem


async def test_checkpoints_every_n_events_or_t_seconds(tenant: Tenant, services: Services) -> None:
    key = services.master_key.checkpoint_key
    await busy(tenant, 1)
    now = datetime.now(UTC)
    taken = await checkpoint.take_due(key, every_events=10_000, every_seconds=60, now=now)
    assert str(tenant.id) in {c.institution_id for c in taken}  # a chain's first checkpoint is due at once
    await busy(tenant, 1)
    later = await checkpoint.take_due(key, every_events=10_000, every_seconds=60, now=now + timedelta(seconds=30))
    assert str(tenant.id) not in {c.institution_id for c in later}  # neither 10,000 events nor 60 s
    by_count = await checkpoint.take_due(key, every_events=1, every_seconds=60, now=now + timedelta(seconds=31))
    assert str(tenant.id) in {c.institution_id for c in by_count}
    await busy(tenant, 1)
    by_time = await checkpoint.take_due(key, every_events=10_000, every_seconds=60,
                                        now=now + timedelta(seconds=100))
    assert str(tenant.id) in {c.institution_id for c in by_time}
    stored = await checkpoint.of_institution(tenant.id)
    assert [c.last_seq for c in stored] == sorted(c.last_seq for c in stored)
    assert all(c.signed_by(key.public_key()) for c in stored)


def test_the_signers_period_is_a_second_at_least() -> None:
    # the signer sleeps min(5 s, this) between rounds: 0 (or less) had it query the database without a pause
    assert load_settings({"CARELOOP_CHECKPOINT_EVERY_SECONDS": "1"}).checkpoint_every_seconds == 1
    for wrong in ("0", "-5"):
        with pytest.raises(SystemExit):
            load_settings({"CARELOOP_CHECKPOINT_EVERY_SECONDS": wrong})


async def test_checkpoints_are_append_only(tenant: Tenant, services: Services) -> None:
    await busy(tenant, 1)
    await checkpoint.take(services.master_key.checkpoint_key, tenant.id)
    for attempt in (AuditCheckpoint.filter(institution_id=tenant.id).update(head_hash="0" * 64),
                    AuditCheckpoint.filter(institution_id=tenant.id).delete()):
        with pytest.raises(Exception, match="append-only"):  # each driver raises its own type
            async with in_transaction():
                await attempt
    assert await AuditCheckpoint.filter(institution_id=tenant.id).count() == 1


async def test_the_fhir_export_is_valid_r4(tenant: Tenant) -> None:
    await busy(tenant, 2)
    await tenant.call("front_desk", "{ patient(id: \"00000000-0000-7000-8000-000000000000\") { id } }")  # denied
    resources = [json.loads(line) for line in (await trail(tenant, "fhir")).splitlines()]
    assert resources
    for resource in resources:
        FhirAuditEvent.model_validate(resource)
    outcomes = {r["outcome"] for r in resources}
    assert {"0", "4"} <= outcomes
    assert any(e.get("role", {}).get("code") == "1" for r in resources for e in r["entity"])  # the patient


# What a FHIR reader sees of each kind of event: (type's code, action, the RESTful interaction or None)
FHIR_CODES = {
    Action.READ: ("rest", "R", "read"), Action.CREATE: ("rest", "C", "create"),
    Action.UPDATE: ("rest", "U", "update"), Action.DELETE: ("rest", "D", "delete"),
    Action.ARCHIVE: ("rest", "U", "update"), Action.CONSENT: ("rest", "U", "update"),
    Action.GRANT: ("rest", "U", "update"),
    Action.LOGIN: ("110114", "E", None), Action.LOGOUT: ("110114", "E", None), Action.LOCKOUT: ("110114", "E", None),
    Action.TOKEN: ("110114", "E", None),
    Action.EXPORT: ("110106", "R", None), Action.DISCLOSE: ("110106", "R", None),
    Action.ARCHIVE_TRAIL: ("110106", "D", None),
    Action.BREAK_GLASS: ("110113", "E", None), Action.KEY_ROTATION: ("110113", "E", None),
    Action.RETENTION: ("110113", "U", None),
}


async def test_each_kind_of_event_has_its_own_fhir_codes(tenant: Tenant) -> None:
    """Found in review: a disclosure (patient data handed to a gateway) was exported as a RESTful update executed
    ("E"), and break-glass, consent, key rotation and retention as RESTful updates. Each kind of event has its codes,
    and the resource is valid R4 whatever the kind."""
    assert set(FHIR_CODES) == set(Action), "a new kind of event needs its FHIR codes"
    await busy(tenant, 1)
    row = await anext(export.rows(tenant.id))
    for action, (kind, fhir_action, interaction) in FHIR_CODES.items():
        resource = export.fhir_audit_event({**row, "action": action.value})
        FhirAuditEvent.model_validate(resource)
        subtype = [coding["code"] for coding in resource.get("subtype", [])]
        assert (resource["type"]["code"], resource["action"], subtype) == (
            kind, fhir_action, [interaction] if interaction else []), action


async def test_the_csv_export_has_every_hashed_column(tenant: Tenant) -> None:
    await busy(tenant, 1)
    table = list(csv.DictReader(io.StringIO(await trail(tenant, "csv"))))
    assert table and tuple(table[0]) == export.COLUMNS
    assert [row_hash(row) for row in table] == [row["hash"] for row in table]


async def test_exports_carry_no_patient_data(tenant: Tenant) -> None:
    await make_patient(tenant, fullName="Zhang Wei Exportcheck", phone="+8613811112222")
    for fmt in export.FORMATS:
        text = await trail(tenant, fmt)
        assert "Exportcheck" not in text and "13811112222" not in text


async def test_a_line_read_two_ways_does_not_verify(tenant: Tenant, services: Services) -> None:
    """The offline check read a line as Python's json does, the last of two same keys winning, and passed over keys
    no export writes: a line holding a second patient_id (hashed: the genuine one) or a note beside the columns
    verified, and whoever read the evidence with another reader (one that keeps the first key) or trusted the note
    read something the hash never covered (found in review). A line is an event's columns, each once."""
    key = services.master_key.checkpoint_key
    await busy(tenant, 1)
    signed = await checkpoint.take(key, tenant.id)
    assert signed is not None
    lines = (await trail(tenant)).splitlines()[:signed.last_seq]
    assert offline.verify(lines, [signed], key.public_key()).ok
    first = lines[0]
    twice = first[:1] + f'"patient_id":"{uuid.uuid4()}",' + first[1:]
    noted = first[:-1] + ',"note":"not what happened"}'

    for changed, problem in ((twice, 'line 1: holds "patient_id" twice'),
                             (noted, 'line 1: holds "note", which no export writes')):
        assert offline.verify([changed, *lines[1:]], [signed], key.public_key()).problem == problem
