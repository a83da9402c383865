"""A write naming a patient's contact while another desk deletes that contact (PostgreSQL; found in review, after
``ticketCreate``'s same race). ``communicationLogCall`` (``contactId``) and ``contractCreate``
(``guarantorContactId``) checked the contact, then inserted the row naming it in a later transaction: a delete
committed between the two (or under way when the insert ran, and committed) made the row's foreign key refuse the
contact, and the desk was answered INTERNAL_SERVER_ERROR. Now the write answers as for a contact that is not the
patient's (the same code and field as the check's), writes nothing, and records the refusal (``contact``,
``not_found``); with no delete, or the delete rolled back, the row is written naming the contact.

Each test holds the write right after the check (``tests.locks.held``, as ``test_races_survey_family`` does), so the
order is fixed rather than left to chance. SQLite runs one writer at a time: the race cannot happen there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from models import Communication, Contact, Contract
from resolvers import access
from resolvers import contract as contracts
from tests.conftest import BACKEND
from tests.contracts import CREATE, draft_input, item_input, make_item
from tests.factories import Response, Tenant, make_patient
from tests.locks import Pause, another_transaction, held, pause_after, pause_before_entering, until_waiting
from tests.patients import denials_since, make_contact, mark

pytestmark = pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent transactions: PostgreSQL")

LOG_CALL = "mutation($input: CommunicationLogCallInput!) { communicationLogCall(input: $input) { id contactId } }"
CONTACT_DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"


@asynccontextmanager
async def call_paused(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, pid: uuid.UUID, contact: uuid.UUID
                      ) -> AsyncIterator[tuple[asyncio.Future[Response], Pause]]:
    """A call logged naming the contact, held after the contact was checked and before its transaction opens (the
    first ``access.file_transaction``, the one the call's insert runs in). Yields the answer to come and the pause
    to release."""
    pause = pause_before_entering(monkeypatch, access, "file_transaction")
    request = tenant.call("front_desk", LOG_CALL, input={"patientId": str(pid), "contactId": str(contact),
                                                         "note": "Asked about the next visit"})
    async with held(request, pause) as answer:
        yield answer, pause


async def a_contact(tenant: Tenant) -> tuple[uuid.UUID, uuid.UUID]:
    pid = await make_patient(tenant)
    return pid, await make_contact(tenant, pid, "Zhao Family")


async def call_refused(tenant: Tenant, answer: asyncio.Future[Response], pid: uuid.UUID, contact: uuid.UUID,
                       before: int) -> None:
    """The call answered as for a contact not the patient's, nothing written, the refusal recorded."""
    reply = await asyncio.wait_for(answer, 30)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None, reply.errors
    assert reply.errors[0]["extensions"]["field"] == "input.contactId"  # as for a contact that is not the patient's
    assert not await Contact.exists(id=contact)
    assert await Communication.filter(institution_id=tenant.id, patient_id=pid).count() == 0
    assert await denials_since(tenant.id, before) == [("create", "contact", "not_found", contact, pid)]


async def call_logged(tenant: Tenant, answer: asyncio.Future[Response], pid: uuid.UUID, contact: uuid.UUID,
                      before: int) -> None:
    reply = await asyncio.wait_for(answer, 30)
    assert reply.errors == [], reply.errors
    assert reply.data["communicationLogCall"]["contactId"] == str(contact)
    [row] = await Communication.filter(institution_id=tenant.id, patient_id=pid)
    assert (row.contact_id, row.cause) == (contact, "logged_call")
    assert await denials_since(tenant.id, before) == []


async def test_a_call_naming_a_contact_deleted_meanwhile_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete first: another desk deletes the contact (and commits) after the call checked it."""
    pid, contact = await a_contact(tenant)
    before = await mark(tenant.id)
    async with call_paused(monkeypatch, tenant, pid, contact) as (answer, pause):
        deleted = await tenant.call("nurse", CONTACT_DELETE, id=str(contact))
        assert deleted.errors == [] and deleted.data == {"contactDelete": str(contact)}, deleted.errors
        pause.release()
        await call_refused(tenant, answer, pid, contact, before)


async def test_a_call_naming_a_contact_being_deleted_waits_and_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete under way (not committed) when the call's insert runs: the insert waits, the delete commits."""
    pid, contact = await a_contact(tenant)
    before = await mark(tenant.id)
    async with call_paused(monkeypatch, tenant, pid, contact) as (answer, pause):
        async with another_transaction() as other:
            assert await other.execute('DELETE FROM "contact" WHERE "id" = $1', contact) == "DELETE 1"
            pause.release()
            await until_waiting([answer])  # the insert reaches the contact the delete holds, and waits
        await call_refused(tenant, answer, pid, contact, before)


async def test_a_call_naming_a_contact_whose_delete_is_rolled_back_is_logged(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin: the delete under way is rolled back; the call, having waited, is logged naming the contact."""
    pid, contact = await a_contact(tenant)
    before = await mark(tenant.id)
    async with call_paused(monkeypatch, tenant, pid, contact) as (answer, pause):
        with pytest.raises(RuntimeError, match="rolled back"):
            async with another_transaction() as other:
                assert await other.execute('DELETE FROM "contact" WHERE "id" = $1', contact) == "DELETE 1"
                pause.release()
                await until_waiting([answer])
                raise RuntimeError("rolled back")
        await call_logged(tenant, answer, pid, contact, before)


async def test_a_call_naming_a_contact_with_no_delete_is_logged(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed twin, paused as the others: nothing deleted, the call is logged naming the contact."""
    pid, contact = await a_contact(tenant)
    before = await mark(tenant.id)
    async with call_paused(monkeypatch, tenant, pid, contact) as (answer, pause):
        pause.release()
        await call_logged(tenant, answer, pid, contact, before)


# -- a contract's guarantor ----------------------------------------------------------------------------------------


@asynccontextmanager
async def contract_paused(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, pid: uuid.UUID, guarantor: uuid.UUID
                          ) -> AsyncIterator[tuple[asyncio.Future[Response], Pause]]:
    """A draft contract naming the guarantor, held once its parties (the guarantor among them) and items were
    checked (``contract._lines``), before its insert; as ``call_paused``."""
    item = await make_item(tenant)
    pause = pause_after(monkeypatch, contracts, "_lines")
    request = tenant.call("front_desk", CREATE, input=draft_input(pid, [item_input(item)],
                                                                  guarantorContactId=str(guarantor)))
    async with held(request, pause) as answer:
        yield answer, pause


async def test_a_contract_naming_a_guarantor_deleted_meanwhile_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete first: the guarantor is deleted (and committed) after the draft checked it. The draft is refused
    as for a contact not the client's, nothing written, the refusal recorded."""
    pid, guarantor = await a_contact(tenant)
    before = await mark(tenant.id)
    async with contract_paused(monkeypatch, tenant, pid, guarantor) as (answer, pause):
        deleted = await tenant.call("nurse", CONTACT_DELETE, id=str(guarantor))
        assert deleted.errors == [] and deleted.data == {"contactDelete": str(guarantor)}, deleted.errors
        pause.release()
        reply = await asyncio.wait_for(answer, 30)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data == {"contractCreate": None}, reply.errors
    assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
        "input.guarantorContactId", "not_patient_contact")
    assert not await Contact.exists(id=guarantor)
    assert await Contract.filter(institution_id=tenant.id, patient_id=pid).count() == 0
    assert await denials_since(tenant.id, before) == [("create", "contact", "not_found", guarantor, pid)]


async def test_a_contract_naming_a_guarantor_with_no_delete_is_drafted(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The allowed twin, paused as the other: nothing deleted, the draft names the guarantor."""
    pid, guarantor = await a_contact(tenant)
    before = await mark(tenant.id)
    async with contract_paused(monkeypatch, tenant, pid, guarantor) as (answer, pause):
        pause.release()
        reply = await asyncio.wait_for(answer, 30)
    assert reply.errors == [], reply.errors
    assert reply.data["contractCreate"]["guarantorContactId"] == str(guarantor)
    [row] = await Contract.filter(institution_id=tenant.id, patient_id=pid)
    assert row.guarantor_id == guarantor
    assert await denials_since(tenant.id, before) == []


DRAFT_UPDATE = """mutation($id: ID!, $input: ContractDraftInput!, $v: Int!) {
  contractDraftUpdate(contractId: $id, input: $input, expectedVersion: $v) { id guarantorContactId } }"""


@asynccontextmanager
async def draft_update_paused(monkeypatch: pytest.MonkeyPatch, tenant: Tenant, pid: uuid.UUID, guarantor: uuid.UUID
                              ) -> AsyncIterator[tuple[asyncio.Future[Response], Pause, uuid.UUID]]:
    """A draft with no guarantor, then its edit naming one, held as ``contract_paused`` holds the draft."""
    item = await make_item(tenant)
    made = await tenant.call("front_desk", CREATE, input=draft_input(pid, [item_input(item)]))
    assert made.errors == [], made.errors
    contract_id = uuid.UUID(made.data["contractCreate"]["id"])
    pause = pause_after(monkeypatch, contracts, "_lines")
    request = tenant.call("front_desk", DRAFT_UPDATE, id=str(contract_id), v=made.data["contractCreate"]["version"],
                          input={"guarantorContactId": str(guarantor)})
    async with held(request, pause) as answer:
        yield answer, pause, contract_id


async def test_a_draft_edited_to_name_a_guarantor_deleted_meanwhile_is_refused(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete first, on ``contractDraftUpdate``: refused as for a contact not the client's, the draft as it
    was, the refusal recorded."""
    pid, guarantor = await a_contact(tenant)
    before = await mark(tenant.id)
    async with draft_update_paused(monkeypatch, tenant, pid, guarantor) as (answer, pause, contract_id):
        deleted = await tenant.call("nurse", CONTACT_DELETE, id=str(guarantor))
        assert deleted.errors == [] and deleted.data == {"contactDelete": str(guarantor)}, deleted.errors
        pause.release()
        reply = await asyncio.wait_for(answer, 30)
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data == {"contractDraftUpdate": None}, reply.errors
    assert (reply.errors[0]["extensions"]["field"], reply.errors[0]["extensions"]["reason"]) == (
        "input.guarantorContactId", "not_patient_contact")
    row = await Contract.get(id=contract_id)
    assert (row.guarantor_id, row.version) == (None, 1)
    assert await denials_since(tenant.id, before) == [("update", "contact", "not_found", guarantor, pid)]


async def test_a_draft_edited_to_name_a_guarantor_with_no_delete_names_them(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    pid, guarantor = await a_contact(tenant)
    before = await mark(tenant.id)
    async with draft_update_paused(monkeypatch, tenant, pid, guarantor) as (answer, pause, contract_id):
        pause.release()
        reply = await asyncio.wait_for(answer, 30)
    assert reply.errors == [], reply.errors
    assert reply.data["contractDraftUpdate"]["guarantorContactId"] == str(guarantor)
    assert (await Contract.get(id=contract_id)).guarantor_id == guarantor
    assert await denials_since(tenant.id, before) == []
