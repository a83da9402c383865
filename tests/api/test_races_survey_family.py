"""A visit finished while another desk deletes the contact its family survey invitation goes to (PostgreSQL; found
in review). The finish reads the patient's contacts (``survey.family_contacts``), then inserts the invitation that
names the chosen one: a delete committed between the two made the invitation's foreign key refuse the contact, and
the finish answered INTERNAL_SERVER_ERROR with nothing written, the visit included. Now the contacts chosen are
held (FOR KEY SHARE) before the invitations are inserted: one deleted meanwhile is simply not invited (the visit
finishes, no invitation and no message), and a delete that comes once they are held waits and is refused as for
any contact an invitation names (CONFLICT contact_referenced).

Each test holds the finish right after the read, or after the insert (``tests.locks.held``, as
``test_races_merge_writers`` holds a merge), so the order is fixed rather than left to chance. SQLite runs one
writer at a time: the race cannot happen there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from models import Communication, Contact, SurveyInvitation, Visit
from resolvers import survey
from tests.api.test_survey_family import INVITE, family_questionnaire
from tests.conftest import BACKEND
from tests.factories import Response, Tenant
from tests.locks import Pause, another_transaction, held, pause_after, until_waiting
from tests.patients import denials_since, events_since, mark
from tests.surveys import family_member, texted

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")

VISIT_CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id status } }"
MOVE = "mutation($id: ID!, $to: VisitStatus!) { visitTransition(id: $id, to: $to) { id status } }"
CONTACT_DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"


async def a_visit_under_way(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A patient of department A with one contact a family questionnaire may ask (a trigger on finished visits),
    and a visit of theirs in progress: (patient, contact, visit)."""
    await family_questionnaire(tenant)
    pid = await texted(tenant)
    contact = await family_member(tenant, pid, "Zhao Family")
    started = datetime.now(UTC) - timedelta(minutes=30)
    reply = await tenant.call("nurse", VISIT_CREATE, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id),
        "status": "ARRIVED", "plannedAt": started.isoformat()})
    assert reply.errors == [], reply.errors
    visit = reply.data["visitCreate"]["id"]
    moved = await tenant.call("nurse", MOVE, id=visit, to="IN_PROGRESS")
    assert moved.errors == [], moved.errors
    return pid, contact, uuid.UUID(visit)


@asynccontextmanager
async def paused(monkeypatch: pytest.MonkeyPatch, name: str, tenant: Tenant,
                 visit: uuid.UUID) -> AsyncIterator[tuple[asyncio.Future[Response], Pause]]:
    """The visit's finish started and held once it has run ``survey.<name>`` (its transaction open, the file held);
    the block runs meanwhile and releases the pause it is given to let the finish go on (leaving the block lets go
    too). Yields the finish's answer to come."""
    async with held_after(monkeypatch, name, tenant.call("nurse", MOVE, id=str(visit), to="FINISHED")) as finish:
        yield finish


@asynccontextmanager
async def held_after(monkeypatch: pytest.MonkeyPatch, name: str, request: Awaitable[Response]
                     ) -> AsyncIterator[tuple[asyncio.Future[Response], Pause]]:
    """``request`` started and held once it has run ``survey.<name>``; as ``paused``."""
    pause = pause_after(monkeypatch, survey, name)
    async with held(request, pause) as answer:
        yield answer, pause


async def finished(finishing: asyncio.Future[Response], visit: uuid.UUID) -> None:
    """The finish answered, without an error, and the visit is finished."""
    reply = await asyncio.wait_for(finishing, 30)
    assert reply.errors == [], reply.errors
    assert reply.data["visitTransition"]["status"] == "FINISHED"
    assert (await Visit.get(id=visit)).status == "finished"


async def not_invited(tenant: Tenant, pid: uuid.UUID, contact: uuid.UUID) -> None:
    """The contact is gone, and no invitation or message was made for them (nor for the patient instead)."""
    assert not await Contact.exists(id=contact)
    assert await SurveyInvitation.filter(institution_id=tenant.id, patient_id=pid).count() == 0
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid, cause="survey_invitation").count() == 0


async def test_a_contact_deleted_between_the_read_and_the_invitation_is_not_invited(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete first: another desk deletes the contact (and commits) after the finish chose it and before it
    made the invitation. The visit finishes, with no family invitation; the delete went through."""
    pid, contact, visit = await a_visit_under_way(tenant)
    before = await mark(tenant.id)
    async with paused(monkeypatch, "family_contacts", tenant, visit) as (finishing, pause):
        deleted = await tenant.call("front_desk", CONTACT_DELETE, id=str(contact))
        assert deleted.errors == [] and deleted.data == {"contactDelete": str(contact)}, deleted.errors
        pause.release()
        await finished(finishing, visit)
    await not_invited(tenant, pid, contact)
    assert await denials_since(tenant.id, before) == []
    written = [(e.action, e.resource_type, e.resource_id) for e in await events_since(
        tenant.id, before, outcome="allowed") if e.action in ("update", "delete", "create")]
    assert ("update", "visit", visit) in written and ("delete", "contact", contact) in written
    assert [w for w in written if w[1] == "survey_invitation"] == []


async def test_a_contact_being_deleted_as_the_invitation_is_made_is_not_invited(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete under way: another session has deleted the contact and not committed yet when the finish makes
    the invitation. The finish waits for it, and once it commits, finishes with no family invitation."""
    pid, contact, visit = await a_visit_under_way(tenant)
    async with paused(monkeypatch, "family_contacts", tenant, visit) as (finishing, pause):
        async with another_transaction() as other:
            assert await other.execute('DELETE FROM "contact" WHERE "id" = $1', contact) == "DELETE 1"
            pause.release()
            await until_waiting([finishing])  # the finish reaches the contact the delete holds, and waits
        await finished(finishing, visit)
    await not_invited(tenant, pid, contact)


async def test_a_contact_whose_delete_is_rolled_back_is_invited(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin: the delete under way is rolled back; the finish, having waited, invites the contact."""
    pid, contact, visit = await a_visit_under_way(tenant)
    async with paused(monkeypatch, "family_contacts", tenant, visit) as (finishing, pause):
        with pytest.raises(RuntimeError, match="rolled back"):
            async with another_transaction() as other:
                assert await other.execute('DELETE FROM "contact" WHERE "id" = $1', contact) == "DELETE 1"
                pause.release()
                await until_waiting([finishing])
                raise RuntimeError("rolled back")
        await finished(finishing, visit)
    await invited(tenant, pid, contact, visit)


async def test_a_contact_deleted_once_the_invitation_is_made_is_kept(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The finish first: the invitation is made (not committed yet) when another desk deletes the contact. The
    delete waits for the finish and is refused, CONFLICT contact_referenced, the refusal recorded; the contact is
    kept with the invitation and its message."""
    pid, contact, visit = await a_visit_under_way(tenant)
    before = await mark(tenant.id)
    async with paused(monkeypatch, "_send", tenant, visit) as (finishing, pause):
        deleting = asyncio.ensure_future(tenant.call("front_desk", CONTACT_DELETE, id=str(contact)))
        await until_waiting([deleting])  # the delete reaches the contact the invitation holds, and waits
        pause.release()
        await finished(finishing, visit)
        deleted = await asyncio.wait_for(deleting, 30)
    assert deleted.codes == ["CONFLICT"] and deleted.data == {"contactDelete": None}, deleted.errors
    assert deleted.errors[0]["extensions"]["reason"] == "contact_referenced"
    assert await Contact.exists(id=contact)
    await invited(tenant, pid, contact, visit)
    assert await denials_since(tenant.id, before) == [("delete", "contact", "contact_referenced", contact, pid)]


async def test_with_no_delete_the_family_is_invited(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed twin, paused as the others: nothing deleted, the contact is invited."""
    pid, contact, visit = await a_visit_under_way(tenant)
    async with paused(monkeypatch, "family_contacts", tenant, visit) as (finishing, pause):
        pause.release()
        await finished(finishing, visit)
    await invited(tenant, pid, contact, visit)


async def test_a_campaign_does_not_ask_a_contact_deleted_meanwhile(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A family campaign (``surveyInvite``) the same way: of two patients, the one whose contact was deleted after
    the campaign chose it counts as noContact, the other is asked."""
    q = await family_questionnaire(tenant)
    asked, left = await texted(tenant), await texted(tenant)
    contact = await family_member(tenant, asked, "Asked")
    deleted_contact = await family_member(tenant, left, "Deleted")
    async with held_after(monkeypatch, "family_contacts",
                          tenant.call("department_head", INVITE, qid=str(q.id))) as (inviting, pause):
        deleted = await tenant.call("front_desk", CONTACT_DELETE, id=str(deleted_contact))
        assert deleted.errors == [], deleted.errors
        pause.release()
        reply = await asyncio.wait_for(inviting, 30)
    assert reply.errors == [], reply.errors
    assert reply.data["surveyInvite"] == {"invited": 1, "refused": 0, "fatigued": 0, "inactive": 0, "noContact": 1}
    await not_invited(tenant, left, deleted_contact)
    [row] = await SurveyInvitation.filter(institution_id=tenant.id, questionnaire_id=q.id)
    assert (row.patient_id, row.contact_id) == (asked, contact)


async def invited(tenant: Tenant, pid: uuid.UUID, contact: uuid.UUID, visit: uuid.UUID) -> None:
    """The visit's family invitation went to the contact, its message queued to them."""
    [row] = await SurveyInvitation.filter(institution_id=tenant.id, patient_id=pid)
    assert (row.contact_id, row.visit_id) == (contact, visit)
    [message] = await Communication.filter(institution_id=tenant.id, patient_id=pid, cause="survey_invitation")
    assert (message.key, message.contact_id) == (f"survey:{row.id}:invitation", contact)
