"""The compliance desk verifies its institution's audit trail through GraphQL (``auditChainVerification``): the
hash chain, the MACs, the signed checkpoints and the per-patient index, as ``careloop audit verify`` does
(``audit/verify.py``, the same code), a bounded stretch per call with a cursor to walk the whole chain. The answer
names the first bad sequence number and a kind of fault; the verification is on the trail; anyone else is refused,
on the record; another institution's chain is never touched."""

from __future__ import annotations

import base64
import itertools
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint, writer
from audit.chain import GENESIS_HASH, HASHED_COLUMNS, row_hash
from audit.events import Action, Actor, AuditRecord, Outcome
from audit.verify import Stretch, verify_stretch
from core.principal import ROLES
from models import AuditChainHead, AuditCheckpoint, AuditEvent, Contact
from resolvers import audit_chain
from resolvers.context import Services
from tests.audit.test_chain import append_only_lifted, connection, flip, is_postgres
from tests.audit.test_patient_index import forge_index_row
from tests.audit.test_verify_truncation import forge, head_rewind_allowed
from tests.factories import Response, Tenant, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import open_account

VERIFY = """query($first: Int, $after: String, $fromSeq: Int) {
  auditChainVerification(first: $first, after: $after, fromSeq: $fromSeq) {
    intact fromSeq toSeq eventsVerified headSeq archivedThroughSeq reachedHead inboxSealed
    checkpoint { lastSeq headHash signedAt signatureValid }
    fault { kind seq eventId detail }
    hasMore endCursor
  }
}"""
NOTHING = {"auditChainVerification": None}  # a refused or bad call: null, with its error


async def verification(tenant: Tenant, role: str | None = "compliance_officer", **variables: Any) -> Response:
    return await tenant.call(role, VERIFY, **variables)


async def verified(tenant: Tenant, **variables: Any) -> dict[str, Any]:
    reply = await verification(tenant, **variables)
    assert reply.errors == [], reply.errors
    return dict(reply.data["auditChainVerification"])


async def last_seq(tenant: Tenant) -> int:
    return await tenant.audit_count()


async def events_since(tenant: Tenant, seq: int) -> list[AuditEvent]:
    return [event for event in await tenant.audit_events() if event.seq > seq]


async def event_at(tenant: Tenant, seq: int) -> AuditEvent:
    return await AuditEvent.get(institution_id=tenant.id, seq=seq)


# -- an intact chain ----------------------------------------------------------------------


async def test_an_intact_chain_verifies_from_its_first_event_to_its_head(tenant: Tenant) -> None:
    await make_patient(tenant, "nurse", diagnoses="Gingivitis", phone="13912345678")
    head = await last_seq(tenant)

    answer = await verified(tenant)

    assert answer == {
        "intact": True, "fromSeq": 1, "toSeq": head, "eventsVerified": head, "headSeq": head,
        "archivedThroughSeq": 0, "reachedHead": True, "inboxSealed": is_postgres(), "checkpoint": None,
        "fault": None, "hasMore": False, "endCursor": answer["endCursor"],
    }
    assert answer["endCursor"]


async def test_the_verification_is_on_the_trail_and_the_next_one_verifies_it(tenant: Tenant) -> None:
    head = await last_seq(tenant)

    await verified(tenant)

    [record] = await events_since(tenant, head)
    assert (record.action, record.outcome, record.resource_type, record.reason) == (
        "read", "allowed", "audit_chain", "")
    assert (record.actor_id, record.resource_id, record.patient_id) == (
        tenant.staff_ids["compliance_officer"], None, None)
    assert record.field_classes == "audit"
    assert set(record.fields_read.split(",")) == {"from_seq:1", f"to_seq:{head}", "intact:true"}
    assert "audit, read, allow" in record.policy_rule
    again = await verified(tenant)
    assert (again["toSeq"], again["intact"]) == (record.seq, True)


async def test_a_chain_is_held_against_its_newest_signed_checkpoint(tenant: Tenant, services: Services) -> None:
    signed = await checkpoint.take(services.master_key.checkpoint_key, tenant.id)
    assert signed is not None
    await make_patient(tenant)

    answer = await verified(tenant)

    assert answer["intact"] and answer["reachedHead"]
    assert answer["checkpoint"] == {"lastSeq": signed.last_seq, "headHash": signed.head_hash,
                                    "signedAt": answer["checkpoint"]["signedAt"], "signatureValid": True}
    assert answer["checkpoint"]["signedAt"].startswith(signed.created_at[:19])


async def test_from_the_newest_checkpoint_to_the_head_in_one_call(tenant: Tenant, services: Services) -> None:
    signed = await checkpoint.take(services.master_key.checkpoint_key, tenant.id)
    assert signed is not None
    await make_patient(tenant)
    head = await last_seq(tenant)

    answer = await verified(tenant, fromSeq=signed.last_seq + 1)

    assert (answer["intact"], answer["fromSeq"], answer["toSeq"], answer["eventsVerified"]) == (
        True, signed.last_seq + 1, head, head - signed.last_seq)
    assert answer["reachedHead"] and answer["checkpoint"]["lastSeq"] == signed.last_seq


# -- a bounded stretch per call -----------------------------------------------------------


async def test_paging_through_a_chain_longer_than_one_call_covers_it_all(tenant: Tenant) -> None:
    await make_patient(tenant, "nurse")
    head = await last_seq(tenant)
    assert head > 12
    stretches: list[tuple[int, int]] = []
    after = None

    for _ in range(head):  # each call adds its own record: the walk must still end
        answer = await verified(tenant, first=5, after=after)
        assert answer["intact"] and answer["fault"] is None
        assert answer["eventsVerified"] == answer["toSeq"] - answer["fromSeq"] + 1 <= 5
        stretches.append((answer["fromSeq"], answer["toSeq"]))
        after = answer["endCursor"]
        if not answer["hasMore"]:
            assert answer["reachedHead"] and answer["toSeq"] == answer["headSeq"]
            break
        assert not answer["reachedHead"]

    assert stretches[0][0] == 1 and len(stretches) > 2
    assert all(following[0] == previous[1] + 1 for previous, following in itertools.pairwise(stretches))
    assert stretches[-1][1] >= head


async def test_a_fault_is_named_by_the_call_whose_stretch_holds_it(tenant: Tenant) -> None:
    await make_patient(tenant, "nurse")
    target = await event_at(tenant, 8)
    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(reason="nothing happened")

    first = await verified(tenant, first=5)
    second = await verified(tenant, first=5, after=first["endCursor"])

    assert (first["intact"], first["fromSeq"], first["toSeq"], first["fault"]) == (True, 1, 5, None)
    assert (second["intact"], second["fromSeq"], second["eventsVerified"]) == (False, 6, 2)
    assert second["fault"] == {"kind": "HASH_MISMATCH", "seq": 8, "eventId": str(target.id),
                               "detail": "content does not match its hash"}
    assert (second["hasMore"], second["endCursor"]) == (False, None)


async def test_an_event_rewritten_between_two_calls_is_named_by_the_second(tenant: Tenant) -> None:
    first = await verified(tenant, first=5)
    target = await event_at(tenant, 5)
    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(hash="0" * 64)

    second = await verified(tenant, first=5, after=first["endCursor"])

    assert (second["fault"]["kind"], second["fault"]["seq"], second["fault"]["eventId"]) == (
        "HASH_MISMATCH", 5, str(target.id))


async def test_a_tail_cut_below_a_previous_calls_cursor_is_named_truncated(tenant: Tenant) -> None:
    """Found in the last session's review: the events a previous call verified, cut off with the head moved back
    below them, were named a SEQUENCE_GAP at the cursor's event; they are missing at the chain's end."""
    first = await verified(tenant, first=5)
    async with append_only_lifted(), head_rewind_allowed():
        await AuditEvent.filter(institution_id=tenant.id, seq__gt=3).delete()
        head = await AuditChainHead.get(institution_id=tenant.id)
        await AuditChainHead.filter(institution_id=tenant.id).update(last_seq=3, last_hash=(await event_at(
            tenant, 3)).hash)
    assert head.last_seq > 5

    second = await verification(tenant, after=first["endCursor"])

    fault = second.data["auditChainVerification"]["fault"]
    assert (fault["kind"], fault["seq"], fault["eventId"]) == ("TRUNCATED", 4, None), second.body
    assert "seq 5" in fault["detail"]


async def test_a_gap_below_a_previous_calls_cursor_is_still_a_gap(tenant: Tenant) -> None:
    first = await verified(tenant, first=5)
    async with append_only_lifted():
        await AuditEvent.filter(institution_id=tenant.id, seq=5).delete()

    second = await verified(tenant, after=first["endCursor"])

    assert (second["fault"]["kind"], second["fault"]["seq"]) == ("SEQUENCE_GAP", 5)


@pytest.mark.parametrize(("variables", "field"), [
    pytest.param({"first": 0}, "first", id="first-zero"),
    pytest.param({"first": audit_chain.MAX_EVENTS + 1}, "first", id="first-too-many"),
    pytest.param({"after": "bm90IGEgY3Vyc29y"}, "after", id="forged-cursor"),
    pytest.param({"fromSeq": 0}, "fromSeq", id="from-zero"),
    pytest.param({"fromSeq": 10**6}, "fromSeq", id="from-beyond-the-head"),
])
async def test_bad_input_is_refused_with_its_field(tenant: Tenant, variables: dict[str, Any], field: str) -> None:
    head = await last_seq(tenant)

    reply = await verification(tenant, **variables)

    assert reply.data == NOTHING and reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await events_since(tenant, head) == []


async def test_a_cursor_and_a_start_together_are_refused(tenant: Tenant) -> None:
    first = await verified(tenant, first=3)

    reply = await verification(tenant, after=first["endCursor"], fromSeq=2)

    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "fromSeq"


async def test_a_cursor_of_another_list_is_refused(tenant: Tenant) -> None:
    trail = await tenant.call("compliance_officer", "{ auditEvents(first: 1) { pageInfo { endCursor } } }")
    cursor = trail.data["auditEvents"]["pageInfo"]["endCursor"]

    reply = await verification(tenant, after=cursor)

    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "after"


def written_by_hand(key: str) -> str:
    """A cursor as a client can write one: the kind and a key, in base64."""
    return base64.urlsafe_b64encode(f"{audit_chain.CURSOR_KIND}:{key}".encode()).decode()


@pytest.mark.parametrize("key", [
    pytest.param(f"{10**18 - 1}|{'a' * 64}", id="far-beyond-the-head"),
    pytest.param(f"2|{'0' * 64}", id="another-hash"),
])
async def test_a_cursor_written_by_hand_is_refused_and_blames_no_event(tenant: Tenant, key: str) -> None:
    """Found in review: the cursor was base64 only, so a client's own one was taken as a previous call's word on the
    chain: a false fault (HASH_MISMATCH naming a sound event, a gap at a sequence number no Int holds) on the answer
    and on the trail as intact:false."""
    head = await last_seq(tenant)

    reply = await verification(tenant, after=written_by_hand(key))

    assert reply.data == NOTHING and reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "after"
    assert await events_since(tenant, head) == []


async def test_another_institutions_cursor_is_refused(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = await verified(other_tenant, first=3)
    head = await last_seq(tenant)

    reply = await verification(tenant, after=theirs["endCursor"])

    assert reply.data == NOTHING and reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "after"
    assert await events_since(tenant, head) == []
    their_hash = (await event_at(other_tenant, theirs["toSeq"])).hash  # sealed: the cursor does not show it
    assert their_hash.encode() not in base64.urlsafe_b64decode(theirs["endCursor"] + "==")


async def test_verifications_under_way_are_bounded_per_institution(tenant: Tenant, other_tenant: Tenant,
                                                                   services: Services) -> None:
    for _ in range(services.verifications.limit):
        services.verifications.take(tenant.id)
    try:
        busy = await verification(tenant)
        elsewhere = await verification(other_tenant)
    finally:
        for _ in range(services.verifications.limit):
            services.verifications.give_back(tenant.id)

    assert busy.codes == ["RATE_LIMITED"] and busy.data == NOTHING
    assert elsewhere.errors == []
    assert (await verification(tenant)).errors == []  # slots are given back
    assert services.verifications.under_way(tenant.id) == 0


# -- tampering, named ---------------------------------------------------------------------


async def change_a_column(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    target = await event_at(tenant, 5)
    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(reason="nothing happened")
    return 5, target.id


async def delete_a_row(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    doomed, successor = await event_at(tenant, 5), await event_at(tenant, 6)
    async with append_only_lifted():
        await AuditEvent.filter(id=doomed.id).delete()
    return 6, successor.id


async def delete_the_last_row(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    head = await last_seq(tenant)
    async with append_only_lifted():
        await AuditEvent.filter(institution_id=tenant.id, seq=head).delete()
    return head, None


async def break_a_mac(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    target = await event_at(tenant, 5)
    assert target.mac
    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(mac=flip(target.mac))
    return 5, target.id


async def edit_the_patient_index(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    target = await event_at(tenant, 5)
    await forge_index_row(tenant.id, 5, uuid.uuid4())
    return 5, target.id


async def insert_a_row_before_the_first(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    """The nurse's event on the file, made again and inserted at seq 0: below the chain's first event, linked to the
    genesis hash, its hash computed (no MAC: whoever inserts holds no key). The officer's pages list it."""
    made = (await tenant.audit_events(resource_type="patient"))[0]
    columns = {name: getattr(made, name) for name in HASHED_COLUMNS}
    columns |= {"id": uuid.uuid4(), "seq": 0, "prev_hash": GENESIS_HASH}
    await AuditEvent.create(**columns, hash=row_hash(columns))
    return 0, columns["id"]


async def append_a_row_with_subjects_that_are_no_ids(tenant: Tenant) -> tuple[int, uuid.UUID | None]:
    """A row made up at the head, linked to it, its hash computed and the head moved on to it (a head moves forward),
    its subjects no record/patient ids: verify named nothing, it failed (INTERNAL_SERVER_ERROR) reading them."""
    head = await AuditChainHead.get(institution_id=tenant.id)
    last = await event_at(tenant, head.last_seq)
    columns = {name: getattr(last, name) for name in HASHED_COLUMNS}
    columns |= {"id": uuid.uuid4(), "seq": head.last_seq + 1, "prev_hash": last.hash, "subjects": "nothing/here"}
    made = row_hash(columns)
    await AuditEvent.create(**columns, hash=made)
    await AuditChainHead.filter(institution_id=tenant.id).update(last_seq=head.last_seq + 1, last_hash=made)
    return head.last_seq + 1, columns["id"]


TAMPERING = {
    "append-a-row-with-subjects-that-are-no-ids": (append_a_row_with_subjects_that_are_no_ids, "INDEX_MISMATCH"),
    "insert-a-row-before-the-first": (insert_a_row_before_the_first, "SEQUENCE_GAP"),
    "change-a-column": (change_a_column, "HASH_MISMATCH"),
    "delete-a-row": (delete_a_row, "SEQUENCE_GAP"),
    "delete-the-last-row": (delete_the_last_row, "TRUNCATED"),
    "break-a-mac": (break_a_mac, "MAC_MISMATCH"),
    "edit-the-patient-index": (edit_the_patient_index, "INDEX_MISMATCH"),
}


@pytest.mark.parametrize("tampering", TAMPERING)
async def test_tampering_names_the_first_bad_sequence_number_and_its_kind(tenant: Tenant, other_tenant: Tenant,
                                                                          tampering: str) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Wang Fang", diagnoses="Gingivitis", phone="13912345678")
    tamper, kind = TAMPERING[tampering]
    seq, event_id = await tamper(tenant)
    theirs = await AuditEvent.filter(institution_id=other_tenant.id).count()

    reply = await verification(tenant)

    answer = reply.data["auditChainVerification"]
    assert (answer["intact"], answer["fault"]["kind"], answer["fault"]["seq"]) == (False, kind, seq), answer
    assert answer["fault"]["eventId"] == (None if event_id is None else str(event_id))
    assert (answer["hasMore"], answer["endCursor"]) == (False, None)
    for secret in (str(pid), "Wang Fang", "Gingivitis", "13912345678"):
        assert secret not in str(reply.body)
    [record] = (await tenant.audit_events(resource_type="audit_chain"))[-1:]
    assert {"intact:false", f"fault:{kind.lower()}", f"fault_seq:{seq}"} <= set(record.fields_read.split(","))
    assert (await verified(other_tenant))["intact"]  # their chain is intact, and was not read for ours
    assert await AuditEvent.filter(institution_id=other_tenant.id).count() == theirs + 1


async def test_a_forged_checkpoint_signature_is_named(tenant: Tenant) -> None:
    head = await event_at(tenant, await last_seq(tenant))
    await forge(tenant.id, head.seq, head.hash, Ed25519PrivateKey.generate())  # a key that is not careloop's

    answer = await verified(tenant)

    assert (answer["intact"], answer["fault"]["kind"], answer["fault"]["seq"]) == (
        False, "CHECKPOINT_SIGNATURE", head.seq)
    assert answer["checkpoint"]["lastSeq"] == head.seq and answer["checkpoint"]["signatureValid"] is False


async def test_a_chain_rewritten_under_a_checkpoint_is_named(tenant: Tenant, services: Services) -> None:
    signed = await checkpoint.take(services.master_key.checkpoint_key, tenant.id)
    assert signed is not None
    assert await AuditCheckpoint.filter(institution_id=tenant.id).count() == 1
    target = await event_at(tenant, signed.last_seq)
    async with append_only_lifted():
        await AuditEvent.filter(id=target.id).update(reason="nothing happened")

    answer = await verified(tenant, fromSeq=signed.last_seq)

    assert (answer["fault"]["kind"], answer["fault"]["seq"]) == ("HASH_MISMATCH", signed.last_seq)


# -- nobody else ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [role for role in ROLES if role != "compliance_officer"])
async def test_every_other_role_is_refused_and_the_refusal_recorded(tenant: Tenant, role: str) -> None:
    head = await last_seq(tenant)

    reply = await verification(tenant, role)

    assert reply.data == NOTHING and reply.codes == ["FORBIDDEN"]
    [event] = await events_since(tenant, head)
    assert (event.action, event.outcome, event.reason, event.resource_type) == (
        "read", "denied", "forbidden", "audit_chain")
    assert (event.actor_id, event.resource_id, event.patient_id) == (tenant.staff_ids[role], None, None)


async def test_partners_and_patients_are_refused_and_the_refusal_recorded(tenant: Tenant) -> None:
    partnership = await make_partnership(tenant, ALL_SCOPES)
    patient = await open_account(tenant)
    head = await last_seq(tenant)

    for kind, actor, token in (("partner", partnership.client.id, partnership.token),
                               ("patient", patient.account_id, patient.token)):
        reply = await tenant.client.post("/graphql", json={"query": VERIFY},
                                         headers={"authorization": f"Bearer {token}"})
        assert reply.json().get("data") == NOTHING, kind
        assert [e["extensions"]["code"] for e in reply.json()["errors"]] == ["FORBIDDEN"], kind
        refused = await AuditEvent.filter(institution_id=tenant.id, seq__gt=head, actor_kind=kind, actor_id=actor,
                                          resource_type="audit_chain", outcome="denied").count()
        assert refused == 1, kind
    assert await AuditEvent.filter(institution_id=tenant.id, resource_type="audit_chain",
                                   outcome="allowed").count() == 0


async def test_without_a_token_it_is_refused(tenant: Tenant) -> None:
    head = await last_seq(tenant)

    reply = await verification(tenant, None)

    assert reply.data == NOTHING and reply.codes == ["UNAUTHENTICATED"]
    assert await events_since(tenant, head) == []


async def test_another_institutions_tampered_chain_is_never_touched(tenant: Tenant, other_tenant: Tenant) -> None:
    await change_a_column(other_tenant)
    theirs = await AuditEvent.filter(institution_id=other_tenant.id).count()

    answer = await verified(tenant)

    assert answer["intact"] and answer["fault"] is None
    assert await AuditEvent.filter(institution_id=other_tenant.id).count() == theirs
    assert (await verified(other_tenant))["fault"]["kind"] == "HASH_MISMATCH"


# -- a deleted chain head -------------------------------------------------------------------

CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, input: $input) {
  id } }"""
UNRECORDED = {"code": "INTERNAL_SERVER_ERROR", "reason": "audit_unrecorded"}


async def delete_the_head(tenant: Tenant) -> None:
    """The owner, with 0014's triggers dropped, deletes the institution's chain head row."""
    async with head_rewind_allowed():
        await connection().execute_query(f"DELETE FROM audit_chain_head WHERE institution_id = '{tenant.id}'")


async def test_a_deleted_head_without_a_checkpoint_is_named_and_the_officer_told(tenant: Tenant) -> None:
    """No signed checkpoint names the chain yet: verification said "no chain yet" (intact), and the call's own record
    failed, so the query answered INTERNAL_SERVER_ERROR and nothing else. Now the officer is answered with the fault,
    and an error says that the trail could not record the call."""
    await make_patient(tenant, "nurse", fullName="Wang Fang", diagnoses="Gingivitis", phone="13912345678")
    assert not await AuditCheckpoint.exists(institution_id=tenant.id)
    head = await last_seq(tenant)
    await delete_the_head(tenant)

    reply = await verification(tenant)

    answer = reply.data["auditChainVerification"]
    assert answer["fault"] == {"kind": "HEAD_MISSING", "seq": None, "eventId": None,
                               "detail": f"the chain head is missing: the chain holds events from seq 1 to {head}"}
    assert (answer["intact"], answer["fromSeq"], answer["headSeq"], answer["reachedHead"]) == (False, 1, None, False)
    assert (answer["hasMore"], answer["endCursor"]) == (False, None)
    [error] = reply.errors
    assert {key: error["extensions"][key] for key in UNRECORDED} == UNRECORDED and error["extensions"]["requestId"]
    assert error["path"] == ["auditChainVerification"]
    assert "Wang Fang" not in str(reply.body) and "13912345678" not in str(reply.body)
    assert await last_seq(tenant) == head  # nothing landed: no chain forked at seq 1
    assert not await AuditChainHead.exists(institution_id=tenant.id)


async def test_a_write_after_the_head_was_deleted_is_refused_with_nothing_written(tenant: Tenant,
                                                                                 other_tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse")
    head = await last_seq(tenant)
    await delete_the_head(tenant)

    reply = await tenant.call("nurse", CONTACT_CREATE, pid=str(pid),
                              input={"name": "Li Na", "relationship": "SPOUSE", "phone": "13900139000"})

    assert reply.data == {"contactCreate": None}
    [error] = reply.errors
    assert {key: error["extensions"][key] for key in UNRECORDED} == UNRECORDED
    assert "13900139000" not in str(reply.body) and "Li Na" not in str(reply.body)
    assert await Contact.filter(institution_id=tenant.id).count() == 0
    assert await last_seq(tenant) == head
    assert not await AuditChainHead.exists(institution_id=tenant.id)  # not re-created: the deletion stays visible
    assert (await verified(other_tenant))["intact"]  # other institutions write and verify as before


async def test_a_fresh_institution_has_no_chain_yet_and_its_first_write_starts_one(database: str,
                                                                                  database_url: str) -> None:
    fresh = uuid.uuid4()
    assert await verify_stretch(fresh, Stretch(limit=10)) is None

    await writer.append([AuditRecord(fresh, Actor("system"), Action.READ, "audit_chain", Outcome.ALLOWED)])

    head = await AuditChainHead.get(institution_id=fresh)
    [event] = await AuditEvent.filter(institution_id=fresh)
    assert (head.last_seq, head.last_hash, event.seq) == (1, event.hash, 1)
    report = await verify_stretch(fresh, Stretch(limit=10))
    assert report is not None and report.ok


async def test_a_read_after_the_head_was_deleted_is_withheld(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Wang Fang")
    head = await last_seq(tenant)
    await delete_the_head(tenant)

    reply = await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName } }", id=str(pid))

    assert reply.data is None and "Wang Fang" not in str(reply.body)
    [error] = reply.errors
    assert {key: error["extensions"][key] for key in UNRECORDED} == UNRECORDED
    assert await last_seq(tenant) == head
