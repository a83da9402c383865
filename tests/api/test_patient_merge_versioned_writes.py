"""Writes over a version (or a status) of a record a merge moves, found before the merge and written after it
(found in review, as contactUpdate was: tests/api/test_patient_merge.py). The merge moves a file's records to the
survivor with their versions as they were, so a compare-and-set on the version alone wrote the record on the
survivor, a file the caller never looked up (maybe out of their reach), and recorded it on the merged file. Each
write now compares the file too (``writes.write_over_version(on_file=)``) and, the record moved, finds it again:
written and recorded on the survivor in the caller's reach, else NOT_FOUND, recorded, nothing written.

Each race twice: made sequential (the merge run once the write has found its record; SQLite and PostgreSQL), and on
PostgreSQL as it happens, the write sent while the merge holds the records it moved, uncommitted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from typing import Any

import pytest

from audit.events import Action
from models import (
    Appointment,
    CareTeamMember,
    Contact,
    PartnerConsent,
    PartnerGrant,
    Patient,
    PatientAccount,
    Visit,
    VisitCode,
)
from resolvers import appointment as appointments
from resolvers import care_team, partner_grant, patient_account, patient_merge, review_queue
from resolvers import contact as contacts
from resolvers import visit as visits
from tests.api.test_appointments import NO_SHOW, TOMORROW_9, book, make_schedule
from tests.api.test_break_glass import BREAK, REASON, REVIEW, patient_of_b
from tests.api.test_patient_merge import merge
from tests.api.test_visits import ADD_CODE, CATALOGUE, MOVE, UPDATE, a_visit
from tests.conftest import BACKEND
from tests.factories import Tenant, make_patient
from tests.locks import held, pause_before, until_waiting
from tests.partners import GRANT_REVOKE, consent, consent_and_grant, make_partner
from tests.patients import DEACTIVATE, activate, invite, make_contact, new_email, open_account

SET_CODE_STATUS = """mutation($id: ID!, $status: ProcedureStatus!) {
  visitCodeSetStatus(id: $id, status: $status) { id status } }"""

postgres_only = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")


def merged_once_found(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, owner: object, name: str,
                      survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    """The race made sequential: the files merged once the async ``owner.<name>`` (a step of the write after its
    lookup, before its write) has first answered."""
    original = getattr(owner, name)

    async def then_merged(*args: Any, **kwargs: Any) -> Any:
        answer = await original(*args, **kwargs)
        monkeypatch.setattr(owner, name, original)
        assert (await merge(tenant, survivor, duplicate)).errors == []
        return answer

    monkeypatch.setattr(owner, name, then_merged)


def merged_as_a_transaction_opens(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, module: object,
                                  survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    """The race made sequential for a write that reads its row, then writes it in a transaction: the files merged
    as the first transaction ``module`` opens (its ``in_transaction``) begins."""
    original = module.in_transaction

    @asynccontextmanager
    async def merged_first(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        monkeypatch.setattr(module, "in_transaction", original)
        assert (await merge(tenant, survivor, duplicate)).errors == []
        async with original(*args, **kwargs) as connection:
            yield connection

    monkeypatch.setattr(module, "in_transaction", merged_first)


async def during_a_moving_merge(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor: uuid.UUID,
                                duplicate: uuid.UUID, write: Callable[[], Awaitable[Any]]) -> Any:
    """``write`` sent while a merge of the two files holds what it moved, uncommitted (PostgreSQL): the write finds
    its record on the duplicate, as committed, and its UPDATE waits for the record's row; the merge then commits.
    Both must end; answers what ``write`` answered."""
    moved = pause_before(monkeypatch, patient_merge, "_one_greeting_or_campaign_message_each")
    async with held(merge(tenant, survivor, duplicate), moved) as merging:
        writing = asyncio.ensure_future(write())
        await until_waiting([writing])  # the write's UPDATE waits for the row the merge moved
        moved.release()
        merged, written = await asyncio.wait_for(asyncio.gather(merging, writing, return_exceptions=True), 30)
    assert not isinstance(merged, BaseException) and merged.errors == [], merged
    assert not isinstance(written, BaseException), repr(written)
    assert (await Patient.get(id=duplicate)).status == "merged"
    return written


async def files_pair(tenant: Tenant, reached: bool) -> tuple[uuid.UUID, uuid.UUID]:
    """A survivor (in department A, which the nurse reaches, or B, which she does not) and a duplicate in A."""
    department = tenant.departments["A" if reached else "B"]
    return await make_patient(tenant, departmentId=str(department.id)), await make_patient(tenant)


async def allowed(tenant: Tenant, resource_type: str) -> list[uuid.UUID | None]:
    """The files the trail's allowed updates of that kind of record are recorded on."""
    return [e.patient_id for e in await tenant.audit_events(resource_type=resource_type, action=Action.UPDATE,
                                                            outcome="allowed")]


async def refused_as_missing(tenant: Tenant, resource_type: str) -> list[tuple[uuid.UUID | None, str | None,
                                                                              uuid.UUID | None]]:
    denied = await tenant.audit_events(outcome="denied", resource_type=resource_type)
    return [(e.actor_id, e.reason, e.resource_id) for e in denied]


# -- visitUpdate --------------------------------------------------------------------------------------------------


async def update_visit(tenant: Tenant, visit: str) -> Any:
    return await tenant.call("nurse", UPDATE, id=visit, input={"summary": "Scaling done"})


async def check_visit_updated(tenant: Tenant, reply: Any, visit: str, survivor: uuid.UUID, reached: bool) -> None:
    row = await Visit.get(id=visit)
    if reached:
        assert reply.errors == [] and reply.data["visitUpdate"]["version"] == 2, reply.errors
        assert (row.patient_id, row.version, row.summary is not None) == (survivor, 2, True)
        assert await allowed(tenant, "visit") == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (row.patient_id, row.version, row.summary) == (survivor, 1, None)
    assert await allowed(tenant, "visit") == []
    assert await refused_as_missing(tenant, "visit") == [(tenant.staff_ids["nurse"], "not_found", uuid.UUID(visit))]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_visit_updated_across_a_merge_follows_the_survivor(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                   reached: bool) -> None:
    """visitUpdate found the visit on the duplicate and wrote it once the merge had moved it: on the survivor,
    recorded on the merged file, and (survivor out of reach) answered NOT_FOUND by its read-back with the change
    written. Now written and recorded on the survivor when the nurse reaches it there, else NOT_FOUND, nothing
    written, the refusal recorded."""
    survivor, duplicate = await files_pair(tenant, reached)
    visit = (await a_visit(tenant, duplicate, role="nurse"))["id"]
    merged_once_found(tenant, monkeypatch, visits, "find", survivor, duplicate)

    reply = await update_visit(tenant, visit)

    await check_visit_updated(tenant, reply, visit, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_visit_updated_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    visit = (await a_visit(tenant, duplicate, role="nurse"))["id"]

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate, lambda: update_visit(tenant, visit))

    await check_visit_updated(tenant, reply, visit, survivor, reached)


async def test_a_stale_visit_version_is_still_a_conflict(tenant: Tenant) -> None:
    """The other reason a write over a version writes nothing: the visit did not move, so it is not looked for
    again; CONFLICT, nothing written."""
    visit = (await a_visit(tenant, await make_patient(tenant), role="nurse"))["id"]
    assert (await update_visit(tenant, visit)).errors == []

    reply = await tenant.call("nurse", UPDATE, id=visit, input={"summary": "Again"}, version=1)

    assert reply.codes == ["CONFLICT"], reply.errors
    assert (await Visit.get(id=visit)).version == 2


# -- visitTransition ----------------------------------------------------------------------------------------------


async def check_visit_arrived(tenant: Tenant, reply: Any, visit: str, survivor: uuid.UUID, reached: bool) -> None:
    row = await Visit.get(id=visit)
    if reached:
        assert reply.errors == [] and reply.data["visitTransition"]["status"] == "ARRIVED", reply.errors
        assert (row.patient_id, row.status, row.version) == (survivor, "arrived", 2)
        assert await allowed(tenant, "visit") == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "planned", 1)
    assert await allowed(tenant, "visit") == []
    assert await refused_as_missing(tenant, "visit") == [(tenant.staff_ids["nurse"], "not_found", uuid.UUID(visit))]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_visit_moved_on_across_a_merge_follows_the_survivor(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                    reached: bool) -> None:
    """visitTransition to ARRIVED (any move but FINISHED, which locks the file and is refused once it is merged):
    found on the duplicate, written on the survivor after the merge and recorded on the merged file, also when the
    nurse does not reach the survivor. Now as visitUpdate."""
    survivor, duplicate = await files_pair(tenant, reached)
    visit = (await a_visit(tenant, duplicate, role="nurse"))["id"]
    merged_once_found(tenant, monkeypatch, visits, "find", survivor, duplicate)

    reply = await tenant.call("nurse", MOVE, id=visit, to="ARRIVED")

    await check_visit_arrived(tenant, reply, visit, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_visit_moved_on_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    visit = (await a_visit(tenant, duplicate, role="nurse"))["id"]

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", MOVE, id=visit, to="ARRIVED"))

    await check_visit_arrived(tenant, reply, visit, survivor, reached)


# -- visitCodeSetStatus -------------------------------------------------------------------------------------------


async def pending_procedure(tenant: Tenant, patient: uuid.UUID) -> str:
    assert (await tenant.call("admin", CATALOGUE, code="IMPLANT")).errors == []
    visit = (await a_visit(tenant, patient, role="nurse"))["id"]
    reply = await tenant.call("nurse", ADD_CODE, id=visit, input={"kind": "PROCEDURE", "code": "IMPLANT",
                                                                  "status": "PENDING"})
    assert reply.errors == [], reply.errors
    return str(reply.data["visitCodeAdd"]["id"])


async def check_procedure_done(tenant: Tenant, reply: Any, code: str, survivor: uuid.UUID, reached: bool) -> None:
    row = await VisitCode.get(id=code)
    if reached:
        assert reply.errors == [] and reply.data["visitCodeSetStatus"]["status"] == "DONE", reply.errors
        assert (row.patient_id, row.status, row.version) == (survivor, "done", 2)
        assert await allowed(tenant, "visit_code") == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "pending", 1)
    assert await allowed(tenant, "visit_code") == []
    assert await refused_as_missing(tenant, "visit_code") == [(tenant.staff_ids["nurse"], "not_found",
                                                               uuid.UUID(code))]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_procedure_done_across_a_merge_follows_the_survivor(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                    reached: bool) -> None:
    """visitCodeSetStatus found the code on the duplicate and wrote it once the merge had moved it (the code and its
    visit): recorded on the merged file, also when the nurse does not reach the survivor. Now as visitUpdate."""
    survivor, duplicate = await files_pair(tenant, reached)
    code = await pending_procedure(tenant, duplicate)
    merged_once_found(tenant, monkeypatch, visits, "_check_text_rights", survivor, duplicate)

    reply = await tenant.call("nurse", SET_CODE_STATUS, id=code, status="DONE")

    await check_procedure_done(tenant, reply, code, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_procedure_done_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    code = await pending_procedure(tenant, duplicate)

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", SET_CODE_STATUS, id=code, status="DONE"))

    await check_procedure_done(tenant, reply, code, survivor, reached)


# -- appointmentNoShow --------------------------------------------------------------------------------------------


async def booked_and_missed(tenant: Tenant, monkeypatch: pytest.MonkeyPatch, patient: uuid.UUID) -> str:
    """An appointment of ``patient`` booked for tomorrow 09:00, now ten minutes into its slot."""
    made = await book(tenant, await make_schedule(tenant), patient)
    monkeypatch.setattr(appointments, "_now", lambda: TOMORROW_9.astimezone(UTC) + timedelta(minutes=10))
    return str(made["id"])


async def check_no_show(tenant: Tenant, reply: Any, appointment: str, survivor: uuid.UUID, reached: bool) -> None:
    row = await Appointment.get(id=appointment)
    if reached:
        assert reply.errors == [] and reply.data["appointmentNoShow"]["status"] == "NO_SHOW", reply.errors
        assert (row.patient_id, row.status, row.version) == (survivor, "noshow", 2)
        assert await allowed(tenant, "appointment") == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (row.patient_id, row.status, row.version) == (survivor, "booked", 1)
    assert await allowed(tenant, "appointment") == []
    assert await refused_as_missing(tenant, "appointment") == [(tenant.staff_ids["nurse"], "not_found",
                                                                uuid.UUID(appointment))]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_no_show_recorded_across_a_merge_follows_the_survivor(tenant: Tenant,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      reached: bool) -> None:
    """appointmentNoShow found the appointment on the duplicate and wrote it once the merge had moved it: recorded
    on the merged file, also when the nurse does not reach the survivor (appointmentCancel asked already). Now as
    visitUpdate."""
    survivor, duplicate = await files_pair(tenant, reached)
    appointment = await booked_and_missed(tenant, monkeypatch, duplicate)
    merged_once_found(tenant, monkeypatch, appointments, "find", survivor, duplicate)

    reply = await tenant.call("nurse", NO_SHOW, id=appointment)

    await check_no_show(tenant, reply, appointment, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_no_show_recorded_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    appointment = await booked_and_missed(tenant, monkeypatch, duplicate)

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", NO_SHOW, id=appointment))

    await check_no_show(tenant, reply, appointment, survivor, reached)


# -- what the merge refuses, read under its locks -----------------------------------------------------------------


async def consenting_pair(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Two files, each consenting to share with one partner: mergeable, until the duplicate's consent is withdrawn."""
    survivor, duplicate, partner = await make_patient(tenant), await make_patient(tenant), await make_partner(tenant)
    for patient in (survivor, duplicate):
        assert (await consent(tenant, patient, partner, granted=True)).errors == []
    return survivor, duplicate, partner


async def check_refused_for_the_withdrawal(tenant: Tenant, reply: Any, survivor: uuid.UUID, duplicate: uuid.UUID,
                                           partner: uuid.UUID) -> None:
    """The files disagree now: the merge is refused, nothing moved, the withdrawal stands on its file."""
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["field"] == "duplicateId", reply.errors
    assert (await Patient.get(id=duplicate)).status == "active"
    consents = await PartnerConsent.filter(institution_id=tenant.id, partner_id=partner).values_list("patient_id",
                                                                                                    "granted")
    assert sorted(consents, key=lambda c: c[0] != survivor) == [(survivor, True), (duplicate, False)]


async def test_a_consent_withdrawn_as_the_merge_begins_refuses_it(tenant: Tenant,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """patientMerge read what refuses a merge (a portal account on both files, consents to one partner that
    disagree) before it locked the files: the duplicate's consent withdrawn in between (the race made sequential,
    the withdrawal committed as the merge's transaction opens), the merge went on, the withdrawal stayed on the merged
    file (kept: its partner's consent on the survivor took its place) and the survivor's consent stood, so the
    partner kept reaching the person's file. Now read once both files are locked: refused, as disagreeing consents
    are, until someone settles it."""
    survivor, duplicate, partner = await consenting_pair(tenant)
    original = patient_merge.in_transaction

    @asynccontextmanager
    async def withdrawn_first(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        monkeypatch.setattr(patient_merge, "in_transaction", original)
        assert (await consent(tenant, duplicate, partner, granted=False)).errors == []
        async with original(*args, **kwargs) as connection:
            yield connection

    monkeypatch.setattr(patient_merge, "in_transaction", withdrawn_first)
    reply = await merge(tenant, survivor, duplicate)

    await check_refused_for_the_withdrawal(tenant, reply, survivor, duplicate, partner)


@postgres_only
async def test_a_consent_withdrawn_while_the_merge_waits_for_the_file_refuses_it(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race as it happens: the withdrawal holds the duplicate's file (its transaction open), the merge is sent
    and waits for the file, then the withdrawal commits."""
    survivor, duplicate, partner = await consenting_pair(tenant)
    locked = pause_before(monkeypatch, PartnerConsent, "get_or_create")  # inside the withdrawal, the file locked
    async with held(consent(tenant, duplicate, partner, granted=False), locked) as withdrawing:
        merging = asyncio.ensure_future(merge(tenant, survivor, duplicate))
        await until_waiting([merging])  # the merge waits for the file the withdrawal holds
        locked.release()
        withdrawn, reply = await asyncio.wait_for(asyncio.gather(withdrawing, merging, return_exceptions=True), 30)
    assert not isinstance(withdrawn, BaseException) and withdrawn.errors == [], withdrawn
    assert not isinstance(reply, BaseException), repr(reply)

    await check_refused_for_the_withdrawal(tenant, reply, survivor, duplicate, partner)


# -- patientAccountActivate ---------------------------------------------------------------------------------------


async def check_activated(tenant: Tenant, reply: Any, email: str, survivor: uuid.UUID, duplicate: uuid.UUID,
                          survivor_had_one: bool) -> None:
    """The code opens the account on the survivor, where the invitation moved, recorded there; or, the survivor
    holding an account already, the code is refused and nothing is opened (least of all on the merged file)."""
    opened = await tenant.audit_events(resource_type="patient_account", action=Action.CREATE, outcome="allowed")
    if not survivor_had_one:
        assert reply.errors == [] and reply.data["patientAccountActivate"]["token"], reply.errors
        account = await PatientAccount.get(email=email)
        assert account.patient_id == survivor
        assert [e.patient_id for e in opened if e.resource_id == account.id] == [survivor]
        return
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "code", reply.errors
    assert not await PatientAccount.exists(email=email)
    assert not await PatientAccount.exists(patient_id=duplicate)
    assert [e.patient_id for e in opened] == [survivor]  # the survivor's own, opened before


async def invited_pair(tenant: Tenant, survivor_had_one: bool) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A survivor (with an open account, or none) and a duplicate with an invitation code, not used yet."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    if survivor_had_one:
        await open_account(tenant, survivor)
    return survivor, duplicate, await invite(tenant, duplicate)


@pytest.mark.parametrize("survivor_had_one", [False, True], ids=["survivor_without_account", "survivor_with_one"])
async def test_an_account_opened_across_a_merge_is_the_survivors(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                 survivor_had_one: bool) -> None:
    """patientAccountActivate read the invitation (on the duplicate), the files were merged (the race made
    sequential: as its transaction opens), and it used the moved invitation anyway and opened the account on the
    invitation's file as read: the merged file, recorded there, beside the survivor's own account if it had one.
    Now the invited file is held first; merged, the code is read again on the survivor."""
    survivor, duplicate, code = await invited_pair(tenant, survivor_had_one)
    merged_as_a_transaction_opens(tenant, monkeypatch, patient_account, survivor, duplicate)
    email = new_email()
    reply = await activate(tenant, code, email)

    await check_activated(tenant, reply, email, survivor, duplicate, survivor_had_one)


@postgres_only
@pytest.mark.parametrize("survivor_had_one", [False, True], ids=["survivor_without_account", "survivor_with_one"])
async def test_an_account_opened_while_a_merge_moves_the_invitation_is_the_survivors(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, survivor_had_one: bool) -> None:
    survivor, duplicate, code = await invited_pair(tenant, survivor_had_one)
    email = new_email()

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate, lambda: activate(tenant, code, email))

    await check_activated(tenant, reply, email, survivor, duplicate, survivor_had_one)


# -- contactDelete ------------------------------------------------------------------------------------------------

CONTACT_DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"


async def check_contact_deleted(tenant: Tenant, reply: Any, contact: uuid.UUID, survivor: uuid.UUID,
                                reached: bool) -> None:
    deleted = [e.patient_id for e in await tenant.audit_events(resource_type="contact", action=Action.DELETE,
                                                                outcome="allowed")]
    if reached:
        assert reply.errors == [] and reply.data == {"contactDelete": str(contact)}, reply.errors
        assert not await Contact.exists(id=contact)
        assert deleted == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (await Contact.get(id=contact)).patient_id == survivor
    assert deleted == []
    assert await refused_as_missing(tenant, "contact") == [(tenant.staff_ids["nurse"], "not_found", contact)]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_contact_deleted_across_a_merge_follows_the_survivor(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                     reached: bool) -> None:
    """contactDelete found the contact on the duplicate and deleted it by its id once the merge had moved it: the
    survivor's contact, also one out of the nurse's reach, deleted and recorded on the merged file. Now deleted only
    while on the file found; moved, found again, as contactUpdate does."""
    survivor, duplicate = await files_pair(tenant, reached)
    contact = await make_contact(tenant, duplicate, "Li Lei")
    merged_once_found(tenant, monkeypatch, contacts, "_referenced", survivor, duplicate)

    reply = await tenant.call("nurse", CONTACT_DELETE, id=str(contact))

    await check_contact_deleted(tenant, reply, contact, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_contact_deleted_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    contact = await make_contact(tenant, duplicate, "Li Lei")

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", CONTACT_DELETE, id=str(contact)))

    await check_contact_deleted(tenant, reply, contact, survivor, reached)


# -- partnerGrantRevoke -------------------------------------------------------------------------------------------


async def granted(tenant: Tenant, duplicate: uuid.UUID) -> uuid.UUID:
    return await consent_and_grant(tenant, await make_partner(tenant), duplicate)


async def check_grant_revoked(tenant: Tenant, reply: Any, grant: uuid.UUID, survivor: uuid.UUID,
                              reached: bool) -> None:
    row = await PartnerGrant.get(id=grant)
    revocations = [e.patient_id for e in await tenant.audit_events(resource_type="partner_grant", reason="revoked",
                                                                   outcome="allowed")]
    if reached:
        assert reply.errors == [] and reply.data["partnerGrantRevoke"]["revokedAt"] is not None, reply.errors
        assert (row.patient_id, row.revoked_at is not None) == (survivor, True)
        assert revocations == [survivor]
        return
    assert reply.codes == ["NOT_FOUND"], reply.errors
    assert (row.patient_id, row.revoked_at) == (survivor, None)
    assert revocations == []
    assert await refused_as_missing(tenant, "partner_grant") == [(tenant.staff_ids["nurse"], "not_found", grant)]


@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_grant_revoked_across_a_merge_follows_the_survivor(tenant: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                   reached: bool) -> None:
    """partnerGrantRevoke found the grant on the duplicate and revoked it by its id once the merge had moved it: a
    grant on the survivor, also one out of the nurse's reach, revoked and recorded on the merged file. Now revoked
    only while on the file found; moved, found again, as contactUpdate does."""
    survivor, duplicate = await files_pair(tenant, reached)
    grant = await granted(tenant, duplicate)
    merged_once_found(tenant, monkeypatch, partner_grant, "_find", survivor, duplicate)

    reply = await tenant.call("nurse", GRANT_REVOKE, id=str(grant))

    await check_grant_revoked(tenant, reply, grant, survivor, reached)


@postgres_only
@pytest.mark.parametrize("reached", [True, False], ids=["survivor_reached", "survivor_out_of_reach"])
async def test_a_grant_revoked_while_a_merge_moves_it_follows_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch, reached: bool) -> None:
    survivor, duplicate = await files_pair(tenant, reached)
    grant = await granted(tenant, duplicate)

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", GRANT_REVOKE, id=str(grant)))

    await check_grant_revoked(tenant, reply, grant, survivor, reached)


# -- patientAccountDeactivate -------------------------------------------------------------------------------------


async def check_not_closed(tenant: Tenant, reply: Any, account: uuid.UUID, survivor: uuid.UUID,
                           duplicate: uuid.UUID) -> None:
    """The file named is merged: refused as every write to a merged file (CONFLICT, reason merged, recorded on it);
    the account, the survivor's now, stays open."""
    assert reply.codes == ["CONFLICT"] and reply.errors[0]["extensions"]["reason"] == "merged", reply.errors
    row = await PatientAccount.get(id=account)
    assert (row.patient_id, row.is_active) == (survivor, True)
    assert await allowed(tenant, "patient_account") == []
    denied = await tenant.audit_events(outcome="denied", reason="merged")
    assert [(e.actor_id, e.patient_id) for e in denied] == [(tenant.staff_ids["nurse"], duplicate)]


async def test_an_account_closed_across_a_merge_is_refused_as_the_merged_files(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """patientAccountDeactivate found the account on the file named, the files were merged (sequential: as its
    transaction opens), and it closed the account by its id: the survivor's account now, closed and recorded on the
    merged file, also when the survivor is out of the caller's reach. It names a file, so it is now refused as a
    write to a merged file is."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    account = (await open_account(tenant, duplicate)).account_id
    merged_as_a_transaction_opens(tenant, monkeypatch, patient_account, survivor, duplicate)
    reply = await tenant.call("nurse", DEACTIVATE, patientId=str(duplicate))

    await check_not_closed(tenant, reply, account, survivor, duplicate)


@postgres_only
async def test_an_account_closed_while_a_merge_moves_it_is_refused_as_the_merged_files(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    account = (await open_account(tenant, duplicate)).account_id

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate,
                                        lambda: tenant.call("nurse", DEACTIVATE, patientId=str(duplicate)))

    await check_not_closed(tenant, reply, account, survivor, duplicate)


# -- careTeamUnassign ---------------------------------------------------------------------------------------------

UNASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamUnassign(patientId: $pid, staffId: $sid) }"
ASSIGN = "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }"


async def on_the_duplicates_team(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    survivor, duplicate, doctor = await make_patient(tenant), await make_patient(tenant), tenant.staff_ids["doctor"]
    assert (await tenant.call("admin", ASSIGN, pid=str(duplicate), sid=str(doctor))).errors == []
    return survivor, duplicate, doctor


async def check_kept_on_the_survivor(tenant: Tenant, reply: Any, survivor: uuid.UUID, doctor: uuid.UUID) -> None:
    """The place named is no longer on the file named: nothing taken off, nothing recorded, as once the merge is
    over; the doctor stays on the survivor's team."""
    assert reply.errors == [] and reply.data == {"careTeamUnassign": True}, reply.errors
    assert await CareTeamMember.exists(patient_id=survivor, staff_id=doctor)
    assert await tenant.audit_events(resource_type="care_team", action=Action.DELETE) == []


async def test_a_place_taken_off_across_a_merge_stays_on_the_survivors_team(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """careTeamUnassign found the place on the file named, the files were merged (sequential: as its transaction
    opens), and it deleted the place by its id: taken off the survivor's team, which the caller did not name,
    recorded on the merged file. Now deleted only while on the file named."""
    survivor, duplicate, doctor = await on_the_duplicates_team(tenant)
    merged_as_a_transaction_opens(tenant, monkeypatch, care_team, survivor, duplicate)

    reply = await tenant.call("admin", UNASSIGN, pid=str(duplicate), sid=str(doctor))

    await check_kept_on_the_survivor(tenant, reply, survivor, doctor)


@postgres_only
async def test_a_place_taken_off_while_a_merge_moves_it_stays_on_the_survivors_team(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate, doctor = await on_the_duplicates_team(tenant)

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate, lambda: tenant.call(
        "admin", UNASSIGN, pid=str(duplicate), sid=str(doctor)))

    await check_kept_on_the_survivor(tenant, reply, survivor, doctor)


# -- emergencyAccessReview ----------------------------------------------------------------------------------------


async def broken_into(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, str]:
    """Two files of department B, and a break-glass access of the nurse (department A) to the duplicate."""
    survivor, duplicate = await patient_of_b(tenant), await patient_of_b(tenant)
    opened = await tenant.call("nurse", BREAK, id=str(duplicate), reason=REASON)
    assert opened.errors == [], opened.errors
    return survivor, duplicate, str(opened.data["breakGlass"]["id"])


async def check_reviewed_on_the_survivor(tenant: Tenant, reply: Any, survivor: uuid.UUID) -> None:
    assert reply.errors == [] and reply.data["emergencyAccessReview"]["outcome"] == "JUSTIFIED", reply.errors
    assert await allowed(tenant, "emergency_access") == [survivor]


async def test_a_break_glass_reviewed_across_a_merge_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """emergencyAccessReview found the access on the duplicate, the files were merged (sequential: as the review's
    transaction opens), and the review, written by the access's id, was recorded on the merged file, not on the
    file the access (and the person's records) had moved to. Compliance officers reach every access, so there is
    no reach to lose: only the file recorded."""
    survivor, duplicate, access_id = await broken_into(tenant)
    merged_as_a_transaction_opens(tenant, monkeypatch, review_queue, survivor, duplicate)

    reply = await tenant.call("compliance_officer", REVIEW, id=access_id, outcome="JUSTIFIED")

    await check_reviewed_on_the_survivor(tenant, reply, survivor)


@postgres_only
async def test_a_break_glass_reviewed_while_a_merge_moves_it_is_recorded_on_the_survivor(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate, access_id = await broken_into(tenant)

    reply = await during_a_moving_merge(tenant, monkeypatch, survivor, duplicate, lambda: tenant.call(
        "compliance_officer", REVIEW, id=access_id, outcome="JUSTIFIED"))

    await check_reviewed_on_the_survivor(tenant, reply, survivor)
