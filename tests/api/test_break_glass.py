"""Break-glass end to end: a clinician outside the care team opens a file with a reason, reads it
under a time-boxed grant recorded as emergency access, and a compliance officer reviews it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from models import CareTeamMember, EmergencyAccess
from resolvers import access
from tests.api.test_patient_merge import MERGE
from tests.api.test_separation_of_duties import ROLE_ASSIGN, ROLE_REVOKE, STAFF_UPDATE, refusal, signed_in
from tests.conftest import BACKEND
from tests.factories import Tenant, login, make_patient
from tests.locks import held, pause_before, pause_before_entering, until_waiting

BREAK = """mutation($id: ID!, $reason: String!, $hours: Int! = 4) {
  breakGlass(patientId: $id, reason: $reason, hours: $hours) { id patientId active expiresAt staff { id } } }"""
READ = "query($id: ID!) { patient(id: $id) { id fullName allergies } }"
QUEUE = """query($unreviewed: Boolean! = true) { emergencyAccessUnreviewedCount
  emergencyAccesses(unreviewedOnly: $unreviewed) { edges { node { id patientId reason active outcome reviewNote
  staff { id } } } } }"""
REVIEW = """mutation($id: ID!, $outcome: ReviewOutcome!, $note: String) {
  emergencyAccessReview(id: $id, outcome: $outcome, note: $note) { id outcome reviewedAt reviewNote } }"""
REASON = "Unconscious in the emergency room, allergies needed"


async def patient_of_b(tenant: Tenant) -> uuid.UUID:
    """A department-B file with a clinical field: the nurse registers it (she may write clinical data),
    then leaves its care team, so it is outside every clinician's reach."""
    pid = await make_patient(tenant, "nurse", departmentId=str(tenant.departments["B"].id), allergies="Penicillin")
    await CareTeamMember.filter(patient_id=pid).delete()
    return pid


async def test_break_glass_end_to_end(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)  # outside the nurse's department and care team
    assert (await tenant.call("nurse", READ, id=str(pid))).codes == ["NOT_FOUND"]

    opened = await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)
    assert opened.errors == [], opened.errors
    grant = opened.data["breakGlass"]
    assert grant["active"] is True and grant["staff"]["id"] == str(tenant.staff_ids["nurse"])
    expires = datetime.fromisoformat(grant["expiresAt"])
    assert timedelta(hours=3, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=4)

    read = await tenant.call("nurse", READ, id=str(pid))
    assert read.errors == [] and read.data["patient"]["allergies"] == "Penicillin"
    [record] = [e for e in await tenant.audit_events(patient_id=pid, action="read", outcome="allowed")
                if e.actor_id == tenant.staff_ids["nurse"]]
    assert f"emergency_access {grant['id']}" in record.policy_rule
    [opening] = await tenant.audit_events(action="break_glass")
    assert opening.resource_id == uuid.UUID(grant["id"]) and opening.patient_id == pid
    assert REASON not in str(opening.__dict__)

    queue = await tenant.call("compliance_officer", QUEUE)
    assert queue.errors == [], queue.errors
    assert queue.data["emergencyAccessUnreviewedCount"] == 1
    [item] = [e["node"] for e in queue.data["emergencyAccesses"]["edges"]]
    assert item["reason"] == REASON and item["outcome"] is None and item["patientId"] == str(pid)
    reviewed = await tenant.call("compliance_officer", REVIEW, id=grant["id"], outcome="JUSTIFIED",
                                 note="Confirmed with the ER log")
    assert reviewed.errors == [] and reviewed.data["emergencyAccessReview"]["outcome"] == "JUSTIFIED"
    after = await tenant.call("compliance_officer", QUEUE)
    assert after.data["emergencyAccessUnreviewedCount"] == 0 and after.data["emergencyAccesses"]["edges"] == []
    again = await tenant.call("compliance_officer", REVIEW, id=grant["id"], outcome="UNJUSTIFIED")
    assert again.codes == ["BAD_USER_INPUT"]
    everything = await tenant.call("compliance_officer", QUEUE, unreviewed=False)
    assert [e["node"]["reviewNote"] for e in everything.data["emergencyAccesses"]["edges"]] == [
        "Confirmed with the ER log"]


WRITES = {
    "contactCreate": """mutation($id: ID!) { contactCreate(patientId: $id, input: {name: "Li Na", relationship: SPOUSE})
                        { id } }""",
    "patientUpdate": """mutation($id: ID!) { patientUpdate(id: $id, input: {allergies: "Penicillin, latex"})
                        { id } }""",
}


async def rules_of_writes(tenant: Tenant, pid: uuid.UUID) -> dict[str, str]:
    return {e.resource_type: e.policy_rule for e in await tenant.audit_events(patient_id=pid, outcome="allowed")
            if e.action in ("create", "update") and e.actor_id == tenant.staff_ids["nurse"]}


async def test_writes_under_break_glass_name_the_access(tenant: Tenant) -> None:
    """Found in review: a write made under break-glass named the role's rule alone, where the file's reads name the
    access; the trail did not say under which access the file was changed."""
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    for mutation in WRITES.values():
        reply = await tenant.call("nurse", mutation, id=str(pid))
        assert reply.errors == [], reply.errors
    rules = await rules_of_writes(tenant, pid)
    assert set(rules) == {"contact", "patient"}
    for rule in rules.values():
        assert rule.startswith(f"emergency_access {grant['id']}; "), rule


async def test_writes_in_reach_name_no_access(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", departmentId=str(tenant.departments["A"].id))
    for mutation in WRITES.values():
        reply = await tenant.call("nurse", mutation, id=str(pid))
        assert reply.errors == [], reply.errors
    rules = await rules_of_writes(tenant, pid)
    assert set(rules) == {"contact", "patient"} and not any("emergency_access" in r for r in rules.values())


async def test_the_access_ends_when_its_time_is_up(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("doctor", BREAK, id=str(pid), reason=REASON, hours=1)).data["breakGlass"]
    assert (await tenant.call("doctor", READ, id=str(pid))).errors == []
    await EmergencyAccess.filter(id=grant["id"]).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert (await tenant.call("doctor", READ, id=str(pid))).codes == ["NOT_FOUND"]


@pytest.mark.parametrize("role", ["front_desk", "support_agent", "compliance_officer", "admin"])
async def test_only_clinicians_may_break_the_glass(tenant: Tenant, role: str) -> None:
    pid = await patient_of_b(tenant)
    reply = await tenant.call(role, BREAK, id=str(pid), reason=REASON)
    assert reply.codes == ["FORBIDDEN"]
    assert await EmergencyAccess.filter(institution_id=tenant.id).count() == 0
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids[role])
    assert [(e.action, e.reason) for e in denied] == [("break_glass", "forbidden")]


async def test_bad_requests_open_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    cases = [({"id": str(pid), "reason": "because"}, "BAD_USER_INPUT"),  # under 10 characters
             ({"id": str(pid), "reason": REASON, "hours": 5}, "BAD_USER_INPUT"),
             ({"id": str(pid), "reason": REASON, "hours": 0}, "BAD_USER_INPUT"),
             ({"id": str(uuid.uuid4()), "reason": REASON}, "NOT_FOUND"),
             ({"id": str(await make_patient(other_tenant)), "reason": REASON}, "NOT_FOUND")]
    for variables, code in cases:
        assert (await tenant.call("nurse", BREAK, **variables)).codes == [code], variables
    assert await EmergencyAccess.filter(institution_id=tenant.id).count() == 0
    assert (await tenant.call("nurse", READ, id=str(pid))).codes == ["NOT_FOUND"]


async def test_the_review_queue_is_for_compliance_officers(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    for role in ("nurse", "doctor", "department_head", "admin", "front_desk"):
        assert (await tenant.call(role, QUEUE)).codes[0] == "FORBIDDEN"
        assert (await tenant.call(role, REVIEW, id=grant["id"], outcome="JUSTIFIED")).codes == ["FORBIDDEN"]
    assert (await EmergencyAccess.get(id=grant["id"])).reviewed_at is None


async def test_break_glass_on_a_merged_file_opens_the_file_it_was_merged_into(tenant: Tenant) -> None:
    """A grant on a merged file reached nothing (its records moved to the survivor), and the clinician, outside
    its care team, could not read where it went (found in review). The grant is made on the survivor, as an
    unsubscribe link sent before a merge follows it; the answer's patientId says which file it opened."""
    survivor, duplicate = await patient_of_b(tenant), await patient_of_b(tenant)
    merged = await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate))
    assert merged.errors == [], merged.errors

    opened = await tenant.call("nurse", BREAK, id=str(duplicate), reason=REASON)

    assert opened.errors == [], opened.errors
    assert opened.data["breakGlass"]["patientId"] == str(survivor)
    assert await EmergencyAccess.filter(patient_id=duplicate).count() == 0
    read = await tenant.call("nurse", READ, id=str(survivor))
    assert read.errors == [] and read.data["patient"]["allergies"] == "Penicillin"
    [opening] = await tenant.audit_events(action="break_glass")
    assert opening.patient_id == survivor


@pytest.mark.parametrize(("outcome", "still_open"), [("UNJUSTIFIED", False), ("JUSTIFIED", True)])
async def test_an_access_found_unjustified_while_open_ends_with_the_finding(tenant: Tenant, outcome: str,
                                                                           still_open: bool) -> None:
    """Found in review: an access reviewed as unjustified within its hours went on opening the file until they ran
    out. It ends with the finding, the ending recorded with the review; a justified one runs its course."""
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("doctor", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    assert (await tenant.call("doctor", READ, id=str(pid))).errors == []
    reviewed = await tenant.call("compliance_officer", REVIEW, id=grant["id"], outcome=outcome)
    assert reviewed.errors == [], reviewed.errors
    read = await tenant.call("doctor", READ, id=str(pid))
    assert (read.errors == []) is still_open and (still_open or read.codes == ["NOT_FOUND"])
    row = await EmergencyAccess.get(id=grant["id"])
    assert (row.expires_at > datetime.now(UTC)) is still_open
    [review] = await tenant.audit_events(resource_id=uuid.UUID(grant["id"]), action="update")
    assert ("expires_at" in review.fields_read.split(",")) is not still_open


async def test_an_access_over_already_keeps_its_end_when_found_unjustified(tenant: Tenant) -> None:
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("doctor", BREAK, id=str(pid), reason=REASON, hours=1)).data["breakGlass"]
    ended = datetime.now(UTC) - timedelta(minutes=5)
    await EmergencyAccess.filter(id=grant["id"]).update(expires_at=ended)
    reviewed = await tenant.call("compliance_officer", REVIEW, id=grant["id"], outcome="UNJUSTIFIED")
    assert reviewed.errors == [], reviewed.errors
    assert (await EmergencyAccess.get(id=grant["id"])).expires_at == ended
    [review] = await tenant.audit_events(resource_id=uuid.UUID(grant["id"]), action="update")
    assert "expires_at" not in review.fields_read.split(",")


async def test_nobody_reviews_a_break_glass_access_of_their_own(tenant: Tenant) -> None:
    """A doctor who is also a compliance officer opens a file by break-glass; a colleague reviews it, not they
    (found in review: they could record their own access as justified, which role grants already refused)."""
    me = uuid.UUID(await signed_in(tenant, "doctor_officer", roles=["DOCTOR", "COMPLIANCE_OFFICER"]))
    pid = await patient_of_b(tenant)
    opened = await tenant.call("doctor_officer", BREAK, id=str(pid), reason=REASON)
    assert opened.errors == [], opened.errors
    grant_id = uuid.UUID(opened.data["breakGlass"]["id"])
    before = await EmergencyAccess.filter(id=grant_id).values()
    last = (await tenant.audit_events())[-1].seq

    reply = await tenant.call("doctor_officer", REVIEW, id=str(grant_id), outcome="JUSTIFIED", note="Fine by me")

    assert refusal(reply) == ("FORBIDDEN", "id", "self_review")
    assert await EmergencyAccess.filter(id=grant_id).values() == before
    refused = [e for e in await tenant.audit_events() if e.seq > last]
    assert [(e.actor_id, e.action, e.outcome, e.resource_type, e.resource_id, e.patient_id, e.reason, e.fields_read)
            for e in refused] == [(me, "update", "denied", "emergency_access", grant_id, pid, "self_review", "")]
    assert "Fine by me" not in str([e.__dict__ for e in refused])
    colleague = await tenant.call("compliance_officer", REVIEW, id=str(grant_id), outcome="UNJUSTIFIED")
    assert colleague.errors == [] and colleague.data["emergencyAccessReview"]["outcome"] == "UNJUSTIFIED"


async def test_reading_a_review_note_is_recorded_on_the_file(tenant: Tenant) -> None:
    """The reviewer's note is sealed like the reason, and the schema says reading it is audited (found in review: the
    reason's read was recorded on the file, the note's was not)."""
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    reviewed = await tenant.call("compliance_officer", REVIEW, id=grant["id"], outcome="JUSTIFIED",
                                 note="Confirmed with the ER log")
    assert reviewed.errors == [], reviewed.errors
    last = (await tenant.audit_events())[-1].seq

    listed = await tenant.call("compliance_officer", "query { emergencyAccesses(unreviewedOnly: false) { edges { node "
                                                     "{ reviewNote } } } }")

    assert listed.errors == [] and [e["node"]["reviewNote"] for e in listed.data["emergencyAccesses"]["edges"]] == [
        "Confirmed with the ER log"]
    reads = [e for e in await tenant.audit_events(patient_id=pid, action="read", outcome="allowed") if e.seq > last]
    assert [(e.actor_id, e.resource_type, e.resource_id, e.fields_read) for e in reads] == [
        (tenant.staff_ids["compliance_officer"], "emergency_access", uuid.UUID(grant["id"]), "review_note")]
    assert "Confirmed" not in str([e.__dict__ for e in reads])


async def test_deactivating_the_account_ends_its_break_glass_accesses(tenant: Tenant) -> None:
    """Found in review: an access outlived the account's deactivation; reactivated within its hours, the account
    read the file again on the old reason. Deactivation ends it now, each ending recorded on its file."""
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    nurse = str(tenant.staff_ids["nurse"])
    last = (await tenant.audit_events())[-1].seq

    for active in (False, True):
        reply = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": active})
        assert reply.errors == [], reply.errors
    tenant.tokens["nurse"] = await login(tenant.client, tenant.emails["nurse"])

    assert (await tenant.call("nurse", READ, id=str(pid))).codes == ["NOT_FOUND"]
    assert (await EmergencyAccess.get(id=grant["id"])).expires_at <= datetime.now(UTC)
    ended = [e for e in await tenant.audit_events(resource_type="emergency_access", action="update") if e.seq > last]
    assert [(e.actor_id, e.resource_id, e.patient_id, e.fields_read) for e in ended] == [
        (tenant.staff_ids["admin"], uuid.UUID(grant["id"]), pid, "expires_at")]


@pytest.mark.parametrize(("revoked", "ends"), [("NURSE", True), ("FRONT_DESK", False)])
async def test_revoking_the_role_that_broke_the_glass_ends_the_access(tenant: Tenant, revoked: str,
                                                                      ends: bool) -> None:
    """Found in review: an access outlived the revocation of the role it was opened under; the role given back
    within its hours, the file opened again on the old reason. Revoking the last role that may break the glass
    ends it; revoking another role leaves it."""
    pid = await patient_of_b(tenant)
    grant = (await tenant.call("nurse", BREAK, id=str(pid), reason=REASON)).data["breakGlass"]
    nurse = str(tenant.staff_ids["nurse"])
    assert (await tenant.call("admin", ROLE_ASSIGN, id=nurse, to="FRONT_DESK")).errors == []

    assert (await tenant.call("admin", ROLE_REVOKE, id=nurse, to=revoked)).errors == []
    assert (await tenant.call("admin", ROLE_ASSIGN, id=nurse, to="NURSE")).errors == []

    read = await tenant.call("nurse", READ, id=str(pid))
    assert (read.data["patient"]["allergies"] is None) is ends
    assert ((await EmergencyAccess.get(id=grant["id"])).expires_at <= datetime.now(UTC)) is ends
    ended = await tenant.audit_events(resource_type="emergency_access", action="update")
    assert [(e.resource_id, e.patient_id) for e in ended] == ([(uuid.UUID(grant["id"]), pid)] if ends else [])


@pytest.mark.parametrize("change", ["deactivated", "role_revoked"])
async def test_an_access_opened_as_the_account_loses_the_right_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """A break-glass request checked before the account was deactivated (or lost its role), writing after: found in
    review, it opened an access the change never saw, and the account reactivated (or given the role back) read the
    file on it. The opening checks the account again under its row's lock: FORBIDDEN, recorded, nothing opened."""
    pid = await patient_of_b(tenant)
    nurse = str(tenant.staff_ids["nurse"])
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    async with held(tenant.call("nurse", BREAK, id=str(pid), reason=REASON), pause) as opening:
        if change == "deactivated":
            reply = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": False})
        else:
            reply = await tenant.call("admin", ROLE_REVOKE, id=nurse, to="NURSE")
        assert reply.errors == [], reply.errors
    opened = await opening

    assert opened.codes == ["FORBIDDEN"]
    assert await EmergencyAccess.filter(institution_id=tenant.id).count() == 0
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids["nurse"])
    assert [(e.action, e.patient_id, e.reason) for e in denied] == [("break_glass", pid, "forbidden")]


@pytest.mark.skipif(BACKEND == "sqlite", reason="concurrent transactions: PostgreSQL")
@pytest.mark.parametrize("change", ["deactivated", "role_revoked"])
async def test_an_access_being_opened_as_the_account_loses_the_right_ends_with_it(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """The other order: the opening holds the account's row as the change comes; the change waits for it, then
    sees the access and ends it (without the lock it saw none, and the access outlived the change)."""
    pid = await patient_of_b(tenant)
    nurse = str(tenant.staff_ids["nurse"])
    pause = pause_before(monkeypatch, EmergencyAccess, "create")
    async with held(tenant.call("nurse", BREAK, id=str(pid), reason=REASON), pause) as opening:
        changing = asyncio.ensure_future(
            tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": False}) if change == "deactivated"
            else tenant.call("admin", ROLE_REVOKE, id=nurse, to="NURSE"))
        await until_waiting([changing])
    opened, changed = await opening, await asyncio.wait_for(changing, 10)

    assert opened.errors == [] and changed.errors == [], (opened.errors, changed.errors)
    grant_id = uuid.UUID(opened.data["breakGlass"]["id"])
    assert (await EmergencyAccess.get(id=grant_id)).expires_at <= datetime.now(UTC)
    ended = await tenant.audit_events(resource_type="emergency_access", action="update")
    assert [(e.resource_id, e.patient_id) for e in ended] == [(grant_id, pid)]
