"""A mutation sent again with its ``Idempotency-Key`` is written once (resolvers/idempotency_key.py): the resend is
refused CONFLICT ``already_done`` naming what was written, and the refusal is on the trail; a key with another
request, on two fields, or malformed is refused and writes nothing; a change never written runs as the first time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from models import (
    AuditEvent,
    Contact,
    Flag,
    FollowUpRule,
    FollowUpTask,
    IdempotencyKey,
    Patient,
    QuestionnaireResponse,
    Ticket,
    Visit,
)
from resolvers import idempotency_key
from resolvers.context import Services
from tests.api.test_lost_connections import OTHERS, POSTGRES_ONLY, Hop, hop  # noqa: F401 -- the fixture, used by name
from tests.api.test_survey_invitations import ANSWER as SURVEY_ANSWER
from tests.api.test_ticket_portal import OPEN_MINE, complaint, portal_token
from tests.api.test_ticket_portal import REPORT as PARTNER_REPORT
from tests.factories import CREATE_PATIENT, LOGIN, PASSWORD, Response, Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import open_account
from tests.surveys import invited, questionnaire

CONTACT = "mutation($p: ID!, $i: ContactCreateInput!) { contactCreate(patientId: $p, input: $i) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
READ = "query($id: ID!) { patient(id: $id) { id } }"
PHONE = "13900139000"
GRAPHQL_RESPONSE = "application/graphql-response+json"
DEPARTMENT = "mutation($n: String!) { departmentCreate(name: $n) { id } }"


async def keyed(tenant: Tenant, role: str | None, query: str, key: str | bytes | list[str], *,
                media: str = "application/json", **variables: Any) -> Response:
    """``query`` sent as ``role`` with the ``Idempotency-Key`` header ``key`` (each of a list: the header sent as
    many times)."""
    headers = [("content-type", "application/json"), ("accept", media),
               *(("idempotency-key", k) for k in (key if isinstance(key, list) else [key]))]
    if role is not None:
        headers.append(("authorization", f"Bearer {tenant.tokens[role]}"))
    reply = await tenant.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return Response(reply.status_code, reply.json())


def contact_input(name: str = "Wang Fang") -> dict[str, str]:
    return {"name": name, "relationship": "SPOUSE", "phone": PHONE}


async def contacts_of(patient: uuid.UUID) -> int:
    return await Contact.filter(patient_id=patient).count()


async def last_seq(tenant: Tenant) -> int:
    events = await tenant.audit_events()
    return events[-1].seq if events else 0


def reason(reply: Response) -> str | None:
    return reply.errors[0]["extensions"].get("reason") if reply.errors else None


async def test_a_change_sent_again_with_its_key_is_written_once_and_the_resend_refused_on_the_trail(
        tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    key = str(uuid.uuid4())
    first = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())
    assert not first.errors, first.body
    written = first.data["contactCreate"]["id"]
    mark = await last_seq(tenant)

    again = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert again.errors[0]["extensions"]["resourceType"] == "contact"
    assert again.errors[0]["extensions"]["resourceId"] == written
    assert "data" not in again.body or again.data is None
    assert await contacts_of(patient) == 1
    [refusal] = await tenant.audit_events(seq__gt=mark)
    assert (refusal.action, refusal.outcome, refusal.reason) == ("create", "denied", "already_done")
    assert (refusal.resource_type, str(refusal.resource_id), refusal.patient_id) == ("contact", written, patient)
    assert refusal.actor_id == tenant.staff_ids["nurse"]


async def test_without_a_key_the_same_change_sent_again_is_written_again(tenant: Tenant) -> None:
    """The twin: what the key prevents."""
    patient = await make_patient(tenant)
    for _ in range(2):
        reply = await tenant.call("nurse", CONTACT, p=str(patient), i=contact_input())
        assert not reply.errors, reply.body
    assert await contacts_of(patient) == 2


async def test_a_resend_done_already_is_409_under_graphql_response_json(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    media = "application/graphql-response+json"
    first = await keyed(tenant, "nurse", CONTACT, "k-409", media=media, p=str(patient), i=contact_input())
    assert first.status == 200 and not first.errors, first.body

    again = await keyed(tenant, "nurse", CONTACT, "k-409", media=media, p=str(patient), i=contact_input())

    assert again.status == 409 and again.codes == ["CONFLICT"], again.body


@pytest.mark.parametrize("how", ["patientCreate", "flagCreate"])
async def test_writes_in_a_transaction_of_their_own_hold_the_key_too(tenant: Tenant, how: str) -> None:
    """contactCreate writes in one statement with its records; these in a transaction with their records."""
    key = f"key-{how}"
    if how == "patientCreate":
        name = f"Keyed {uuid.uuid4().hex[:6]}"
        send = lambda: keyed(tenant, "front_desk", CREATE_PATIENT, key, anyway=True,  # noqa: E731
                             input={"fullName": name, "departmentId": str(tenant.departments["A"].id)})
        count = lambda: Patient.filter(institution_id=tenant.id, status="active").count()  # noqa: E731
    else:
        patient = await make_patient(tenant)
        send = lambda: keyed(tenant, "nurse", FLAG, key, input={"patientId": str(patient), "kind": "FALL_RISK"})  # noqa: E731
        count = lambda: Flag.filter(patient_id=patient).count()  # noqa: E731
    before = await count()
    first = await send()
    assert not first.errors, first.body

    again = await send()

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert await count() == before + 1


async def test_the_same_key_with_another_request_is_refused_and_writes_nothing(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    assert not (await keyed(tenant, "nurse", CONTACT, "k-reused", p=str(patient), i=contact_input())).errors
    mark = await last_seq(tenant)

    other = await keyed(tenant, "nurse", CONTACT, "k-reused", p=str(patient), i=contact_input("Li Lei"))

    assert other.codes == ["BAD_USER_INPUT"] and reason(other) == "idempotency_key_reused", other.body
    assert await contacts_of(patient) == 1
    assert await tenant.audit_events(seq__gt=mark) == []


async def test_another_callers_same_key_is_another_key(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    for role in ("nurse", "front_desk"):
        reply = await keyed(tenant, role, CONTACT, "k-shared", p=str(patient), i=contact_input())
        assert not reply.errors, reply.body
    assert await contacts_of(patient) == 2


async def test_a_change_refused_or_invalid_the_first_time_runs_as_new_when_sent_again(tenant: Tenant) -> None:
    """Nothing was written, so the key was not taken: the corrected request (same key) writes."""
    patient = await make_patient(tenant)
    invalid = await keyed(tenant, "nurse", CONTACT, "k-retry", p=str(patient),
                          i={**contact_input(), "phone": "not a phone"})
    assert invalid.codes == ["BAD_USER_INPUT"], invalid.body
    refused = await keyed(tenant, "nurse", CONTACT, "k-retry", p=str(uuid.uuid4()), i=contact_input())
    assert refused.codes == ["NOT_FOUND"], refused.body
    assert await IdempotencyKey.filter(institution_id=tenant.id).count() == 0

    corrected = await keyed(tenant, "nurse", CONTACT, "k-retry", p=str(patient), i=contact_input())

    assert not corrected.errors, corrected.body
    assert await contacts_of(patient) == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "", "café".encode(), '"unbalanced', ["one", "two"]],
                         ids=["space", "too-long", "empty", "non-ascii", "quote", "twice"])
async def test_a_malformed_key_is_refused_and_writes_nothing(tenant: Tenant, key: str | bytes | list[str]) -> None:
    patient = await make_patient(tenant)
    mark = await last_seq(tenant)

    reply = await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())

    assert reply.codes == ["BAD_USER_INPUT"] and reason(reply) == "idempotency_key_malformed", reply.body
    assert "data" not in reply.body or reply.data is None
    assert await contacts_of(patient) == 0
    assert await tenant.audit_events(seq__gt=mark) == []


async def test_the_drafts_quoted_key_is_the_same_key(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    assert not (await keyed(tenant, "nurse", CONTACT, "k-quoted", p=str(patient), i=contact_input())).errors

    again = await keyed(tenant, "nurse", CONTACT, '"k-quoted"', p=str(patient), i=contact_input())

    assert reason(again) == "already_done", again.body


async def test_a_key_on_two_mutation_fields_is_refused_and_writes_nothing(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    two = ("mutation($p: ID!, $i: ContactCreateInput!) { a: contactCreate(patientId: $p, input: $i) { id } "
           "...More } fragment More on Mutation { b: contactCreate(patientId: $p, input: $i) { id } }")

    reply = await keyed(tenant, "nurse", two, "k-two", p=str(patient), i=contact_input())

    assert reply.codes == ["BAD_USER_INPUT"] and reason(reply) == "idempotency_key_one_field", reply.body
    assert await contacts_of(patient) == 0
    typename = ("mutation($p: ID!, $i: ContactCreateInput!) { __typename "
                "contactCreate(patientId: $p, input: $i) { id } }")
    assert not (await keyed(tenant, "nurse", typename, "k-two", p=str(patient), i=contact_input())).errors


async def test_a_query_and_an_anonymous_sign_in_ignore_the_key(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    for _ in range(2):
        read = await keyed(tenant, "nurse", READ, "k-query", id=str(patient))
        assert read.data == {"patient": {"id": str(patient)}}, read.body
        signed_in = await keyed(tenant, None, LOGIN, "k-login", email=tenant.emails["nurse"], password=PASSWORD)
        assert signed_in.data["login"]["token"], signed_in.body
    assert await IdempotencyKey.filter(institution_id=tenant.id).count() == 0


@pytest.mark.parametrize("role", ["nurse", "front_desk"], ids=["oneself", "another"])
async def test_a_sign_in_sent_with_a_token_ignores_the_key_too(tenant: Tenant, role: str) -> None:
    """A sign-in is no change to send again (its answer, the token, cannot be told again): one sent while a token is
    still held signs in each time, as an anonymous one does (found in review: the second was refused CONFLICT
    already_done, the key taken by the first's session under the token's account)."""
    for _ in range(2):
        signed_in = await keyed(tenant, role, LOGIN, "k-login", email=tenant.emails["nurse"], password=PASSWORD)
        assert not signed_in.errors and signed_in.data["login"]["token"], signed_in.body
    assert await IdempotencyKey.filter(institution_id=tenant.id).count() == 0


async def test_the_same_change_sent_twice_at_once_is_written_once(tenant: Tenant) -> None:
    """Both may pass the look before the write: the key's unique row refuses the second write, which is undone."""
    patient = await make_patient(tenant)
    mark = await last_seq(tenant)

    replies = await asyncio.gather(*(keyed(tenant, "nurse", CONTACT, "k-race", p=str(patient), i=contact_input())
                                     for _ in range(2)))

    assert sorted(r.codes[0] if r.errors else "ok" for r in replies) == ["CONFLICT", "ok"], [r.body for r in replies]
    assert [reason(r) for r in replies if r.errors] == ["already_done"]
    assert await contacts_of(patient) == 1
    events = await tenant.audit_events(seq__gt=mark)
    assert sorted((e.action, e.outcome, e.reason) for e in events if e.resource_type == "contact") == [
        ("create", "allowed", ""), ("create", "denied", "already_done")]


async def test_a_key_is_kept_a_day_then_forgotten(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    assert not (await keyed(tenant, "nurse", CONTACT, "k-day", p=str(patient), i=contact_input())).errors
    assert await idempotency_key.forget_expired(datetime.now(UTC) + timedelta(hours=23)) == 0

    assert await idempotency_key.forget_expired(datetime.now(UTC) + timedelta(hours=24, minutes=1)) >= 1

    assert not (await keyed(tenant, "nurse", CONTACT, "k-day", p=str(patient), i=contact_input())).errors
    assert await contacts_of(patient) == 2


async def test_only_keyed_hashes_are_kept(tenant: Tenant) -> None:
    patient = await make_patient(tenant)
    key = f"visible-{uuid.uuid4().hex}"
    assert not (await keyed(tenant, "nurse", CONTACT, key, p=str(patient), i=contact_input())).errors

    [row] = await IdempotencyKey.filter(institution_id=tenant.id).values()
    kept = " ".join(str(value) for value in row.values())
    assert key not in kept and PHONE not in kept and "Wang" not in kept
    assert (row["action"], row["resource_type"], row["patient_id"]) == ("create", "contact", patient)
    events = " ".join(str(e.__dict__) for e in await AuditEvent.filter(institution_id=tenant.id))
    assert key not in events


@POSTGRES_ONLY
async def test_a_change_whose_answer_was_lost_is_refused_when_sent_again(tenant: Tenant, hop: Hop) -> None:  # noqa: F811
    """What the key is for: the write committed and its answer was lost (UNAVAILABLE, "read before sending it
    again"); the client sends it again with its key and learns it was written, and which record it wrote."""
    patient = await make_patient(tenant)
    hop.lose_the_answer_to(b'"body_head"', b'"contact"', str(patient).encode())  # the write's own statement

    lost = await keyed(tenant, "nurse", CONTACT, "k-lost", p=str(patient), i=contact_input())
    assert lost.codes == ["UNAVAILABLE"] and hop.answers_lost == 1, lost.body
    [contact] = await Contact.filter(patient_id=patient).values_list("id", flat=True)

    again = await keyed(tenant, "nurse", CONTACT, "k-lost", p=str(patient), i=contact_input())

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert again.errors[0]["extensions"]["resourceId"] == str(contact)
    assert await contacts_of(patient) == 1


@POSTGRES_ONLY
async def test_a_keyed_change_that_lost_the_database_answers_unavailable(
        tenant: Tenant, hop: Hop, database: str) -> None:  # noqa: F811
    """The write waits on a lock when the server ends every connection and can no longer be reached: UNAVAILABLE, as
    without a key, nothing written; the look for a key written meanwhile, which a failed keyed request makes, fails
    too and is told the same way (not a 500)."""
    patient = await make_patient(tenant)
    admin = await asyncpg.connect(database)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE contact IN EXCLUSIVE MODE")
            call = asyncio.ensure_future(keyed(tenant, "nurse", CONTACT, "k-gone", p=str(patient),
                                               i=contact_input()))
            while await admin.fetchval(WAITING_ON_LOCKS) < 1:  # noqa: ASYNC110 -- another process's state
                await asyncio.sleep(0.02)
            hop.refusing = True  # no new connection; every one the app holds ended by the server
            await admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OTHERS}")
            reply = await call
    finally:
        await admin.close()

    assert reply.codes == ["UNAVAILABLE"], reply.body
    hop.refusing = False
    assert await contacts_of(patient) == 0


# Statistics are a snapshot per transaction: cleared, so that each look sees the backends as they are now
WAITING_ON_LOCKS = ("SELECT count(*) FROM pg_stat_activity, pg_stat_clear_snapshot() "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()")


async def sent_while_held(database: str, lock: str, *requests: Awaitable[Response]) -> list[Response]:
    """``requests`` sent at once while another session holds ``lock`` (a statement taking it), so that each has found
    no key (and passed the look) before either writes."""
    admin = await asyncpg.connect(database)
    try:
        async with admin.transaction():
            await admin.execute(lock)
            sent = [asyncio.ensure_future(request) for request in requests]
            while await admin.fetchval(WAITING_ON_LOCKS) < len(requests):  # noqa: ASYNC110 -- another process's state
                await asyncio.sleep(0.02)
        return list(await asyncio.gather(*sent))
    finally:
        await admin.close()


async def sent_while_the_file_is_held(tenant: Tenant, database: str, patient: uuid.UUID,
                                      *inputs: dict[str, str]) -> list[Response]:
    """A contact created with each of ``inputs`` under the one key "k-wait" (answers as graphql-response+json), the
    requests sent at once while another session holds the file's lock."""
    return await sent_while_held(database, f"SELECT 1 FROM patient WHERE id = '{patient}' FOR UPDATE", *(
        keyed(tenant, "nurse", CONTACT, "k-wait", media=GRAPHQL_RESPONSE, p=str(patient), i=i) for i in inputs))


@POSTGRES_ONLY
async def test_a_resend_that_passed_the_look_while_the_first_ran_is_undone_by_the_key(
        tenant: Tenant, database: str) -> None:
    """Both requests find no key and wait on the file's lock, which another session holds; once it is let go, the
    first writes, and the second's write (its statement holding the key's row) is refused by the key and undone,
    and the refusal recorded once it has rolled back: told and recorded as a resend after the first is, naming what
    the first wrote (found in review: it named the record of its own write, undone, and told nothing of the first's)."""
    patient = await make_patient(tenant)
    mark = await last_seq(tenant)

    replies = await sent_while_the_file_is_held(tenant, database, patient, contact_input(), contact_input())

    assert sorted(r.codes[0] if r.errors else "ok" for r in replies) == ["CONFLICT", "ok"], [r.body for r in replies]
    refused, written = next(r for r in replies if r.errors), next(r for r in replies if not r.errors)
    # answered as a resend after the first is (found in review: 200 with the field's error, where a later one is 409)
    assert reason(refused) == "already_done" and refused.status == 409 and "data" not in refused.body, refused.body
    assert "path" not in refused.errors[0], refused.body
    contact = written.data["contactCreate"]["id"]
    assert (refused.errors[0]["extensions"]["resourceType"], refused.errors[0]["extensions"]["resourceId"]) == (
        "contact", contact)
    assert await contacts_of(patient) == 1
    events = await tenant.audit_events(seq__gt=mark)
    assert sorted((e.action, e.outcome, e.reason, str(e.resource_id)) for e in events
                  if e.resource_type == "contact") == [
        ("create", "allowed", "", contact), ("create", "denied", "already_done", contact)]


@POSTGRES_ONLY
async def test_another_change_with_the_key_while_the_first_ran_is_refused_as_the_key_reused(
        tenant: Tenant, database: str) -> None:
    """The same key with another change, both past the look before either writes: the second is refused as the
    key reused, as it is when sent after the first (found in review: it was told its own change was done already,
    which it never was), and nothing of it is written or recorded as done."""
    patient = await make_patient(tenant)
    mark = await last_seq(tenant)

    replies = await sent_while_the_file_is_held(tenant, database, patient, contact_input(), contact_input("Li Lei"))

    assert sorted(r.codes[0] if r.errors else "ok" for r in replies) == ["BAD_USER_INPUT", "ok"], [
        r.body for r in replies]
    assert [(reason(r), r.status, "data" in r.body) for r in replies if r.errors] == [
        ("idempotency_key_reused", 400, False)]
    assert await contacts_of(patient) == 1
    events = await tenant.audit_events(seq__gt=mark)
    assert [(e.action, e.outcome) for e in events if e.resource_type == "contact"] == [("create", "allowed")]


@POSTGRES_ONLY
async def test_a_resend_its_own_check_refused_while_the_first_ran_is_answered_as_done(
        tenant: Tenant, database: str) -> None:
    """Both requests pass the look and wait on the department table, which another session holds; once it is let
    go, the first creates the department, and the second is refused by the name's unique key, which its own check
    answers as the name taken. It is answered as a resend after the first is: already done, naming the department,
    409, and recorded (found in review: told that the name was taken by its own first sending)."""
    mark = await last_seq(tenant)

    replies = await sent_while_held(database, "LOCK TABLE department IN ACCESS EXCLUSIVE MODE", *(
        keyed(tenant, "admin", DEPARTMENT, "k-department", media=GRAPHQL_RESPONSE, n="Dermatology")
        for _ in range(2)))

    assert sorted(r.codes[0] if r.errors else "ok" for r in replies) == ["CONFLICT", "ok"], [r.body for r in replies]
    refused, written = next(r for r in replies if r.errors), next(r for r in replies if not r.errors)
    department = written.data["departmentCreate"]["id"]
    assert (reason(refused), refused.status, "data" in refused.body) == ("already_done", 409, False), refused.body
    assert refused.errors[0]["extensions"]["resourceId"] == department
    events = await tenant.audit_events(seq__gt=mark)
    assert sorted((e.action, e.outcome, e.reason, str(e.resource_id)) for e in events
                  if e.resource_type == "department") == [
        ("create", "allowed", "", department), ("create", "denied", "already_done", department)]


async def test_another_change_sent_at_once_with_the_same_key_is_refused_as_the_key_reused(tenant: Tenant) -> None:
    """Sent together, whichever of them passes the look first: the other is refused as the key reused, never told
    its change was done."""
    patient = await make_patient(tenant)

    replies = await asyncio.gather(*(keyed(tenant, "nurse", CONTACT, "k-race-other", p=str(patient),
                                           i=contact_input(name)) for name in ("Wang Fang", "Li Lei")))

    assert sorted(r.codes[0] if r.errors else "ok" for r in replies) == ["BAD_USER_INPUT", "ok"], [
        r.body for r in replies]
    assert [reason(r) for r in replies if r.errors] == ["idempotency_key_reused"]
    assert await contacts_of(patient) == 1

async def test_a_patients_change_sent_again_with_its_key_is_refused_on_the_trail(tenant: Tenant) -> None:
    """A patient signed in to the portal: their key is theirs, and a resend is refused as a staff member's is."""
    patient = await make_patient(tenant)
    token = await portal_token(tenant, tenant.client, patient)
    first = await gql(tenant.client, OPEN_MINE, {"input": complaint()}, token, {"idempotency-key": "k-portal"})
    assert first.errors == [], first.body
    mark = await last_seq(tenant)

    again = await gql(tenant.client, OPEN_MINE, {"input": complaint()}, token, {"idempotency-key": "k-portal"})

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert again.errors[0]["extensions"]["resourceId"] == first.data["myTicketCreate"]["id"]
    assert await Ticket.filter(patient_id=patient).count() == 1
    [refusal] = await tenant.audit_events(seq__gt=mark)
    assert (refusal.actor_kind, refusal.action, refusal.outcome, refusal.reason, refusal.patient_id) == (
        "patient", "create", "denied", "already_done", patient)
    without = await gql(tenant.client, OPEN_MINE, {"input": complaint()}, token)  # the twin: no key, written again
    assert without.errors == [], without.body
    assert await Ticket.filter(patient_id=patient).count() == 2


async def test_a_partners_change_sent_again_with_its_key_is_refused_on_the_trail(tenant: Tenant) -> None:
    reporter = await make_partnership(tenant, [*ALL_SCOPES, "ticket:create"])
    report = {"patientId": str(reporter.granted), "category": "COMPLAINT", "subject": "Wound bleeding"}
    send = lambda: gql(tenant.client, PARTNER_REPORT, {"input": report}, reporter.token,  # noqa: E731
                       {"idempotency-key": "k-partner"})
    first = await send()
    assert first.errors == [], first.body

    again = await send()

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert await Ticket.filter(patient_id=reporter.granted).count() == 1
    assert [(e.action, e.reason) for e in await reporter.events(outcome="denied")] == [("create", "already_done")]


@pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous", "identified"])
async def test_an_anonymous_answer_sent_with_a_key_leaves_no_key_naming_its_patient(
        tenant: Tenant, services: Services, anonymous: bool) -> None:
    """An anonymous survey's answer names nobody on the trail (its record carries no request): no key's row may
    tie the patient's account to it, to its second; a resend is refused as answered. The identified twin's key is
    kept, and its resend refused as done."""
    q = await questionnaire(tenant, anonymous=anonymous)
    patient, invitation, _ = await invited(tenant, services, q)
    user = await open_account(tenant, patient)
    answers = [{"linkId": "q1", "number": 4}, {"linkId": "q3", "number": 5}]
    send = lambda: gql(tenant.client, SURVEY_ANSWER, {"id": str(invitation.id), "answers": answers},  # noqa: E731
                       user.token, {"idempotency-key": "k-survey"})
    first = await send()
    assert first.errors == [], first.body

    again = await send()

    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 1
    kept = await IdempotencyKey.filter(institution_id=tenant.id, actor_id=user.account_id).count()
    if anonymous:
        assert kept == 0
        assert again.codes == ["BAD_USER_INPUT"] and reason(again) == "answered", again.body
    else:
        assert kept == 1
        assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body


async def test_a_mutation_carrying_a_password_ignores_the_key(tenant: Tenant) -> None:
    """Its request's keyed hash would keep the password a day, open to guessing without argon2 (found in review):
    no key row, and the change runs as it would without the header."""
    change = ("mutation($current: String!, $new: String!) { passwordChange(currentPassword: $current, "
              "newPassword: $new) }")
    reply = await keyed(tenant, "nurse", change, "k-password", current=PASSWORD, new="a much longer passphrase 1")

    assert reply.data == {"passwordChange": True}, reply.body
    assert await IdempotencyKey.filter(institution_id=tenant.id).count() == 0


async def test_the_resend_names_the_requests_last_write_not_what_it_wrote_first_on_the_way(tenant: Tenant) -> None:
    """An institution's first follow-up rule writes its default rules first (found in review: the resend named one of
    them): the key's row names each later write of the request, so the resend names the rule asked for."""
    rule = ("mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate(input: $input) { id } }")
    data = {"name": "After an implant", "offsetsDays": [30, 1, 7], "visitKind": "DENTAL"}
    first = await keyed(tenant, "admin", rule, "k-rule", input=data)
    assert not first.errors, first.body

    again = await keyed(tenant, "admin", rule, "k-rule", input=data)

    assert reason(again) == "already_done", again.body
    assert again.errors[0]["extensions"]["resourceId"] == first.data["followUpRuleCreate"]["id"]


@pytest.mark.parametrize("rules", ["defaults", "home_care_rule"])
async def test_a_partners_finished_visit_sent_again_names_the_visit_not_what_the_system_wrote_after_it(
        tenant: Tenant, rules: str) -> None:
    """A finished visit writes the follow-up tasks its rules ask for (an institution's first, its default rules too)
    after the visit (found in review: the resend of a partner's home-care visit was told, and recorded, that it had
    written a follow-up rule or task: a record of a class its token does not read, not the visit it asked for). The
    resend names the visit; nothing is written again, and its refusal is on the trail naming the visit."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "visit:create", "visit:read"])
    if rules == "home_care_rule":
        made = await tenant.call("admin", "mutation($input: FollowUpRuleCreateInput!) { followUpRuleCreate("
                                          "input: $input) { id } }",
                                 input={"name": "After home care", "offsetsDays": [1, 7], "visitKind": "HOME_CARE"})
        assert not made.errors, made.body
    visit = {"patientId": str(partnership.granted), "kind": "HOME_CARE", "status": "FINISHED",
             "startedAt": "2026-11-20T09:00:00+08:00", "endedAt": "2026-11-20T10:00:00+08:00"}
    send = lambda: gql(tenant.client, "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }",  # noqa: E731
                       {"input": visit}, partnership.token, {"idempotency-key": "k-home-care"})
    first = await send()
    assert not first.errors, first.body
    written = first.data["visitCreate"]["id"]
    if rules == "home_care_rule":
        assert await FollowUpTask.filter(visit_id=written).count() == 2  # written after the visit
    else:
        assert await FollowUpRule.filter(institution_id=tenant.id).count() > 0

    again = await send()

    assert again.codes == ["CONFLICT"] and reason(again) == "already_done", again.body
    assert (again.errors[0]["extensions"]["resourceType"], again.errors[0]["extensions"]["resourceId"]) == (
        "visit", written)
    assert await Visit.filter(patient_id=partnership.granted).count() == 1
    [refusal] = await partnership.events(outcome="denied")
    assert (refusal.action, refusal.resource_type, str(refusal.resource_id), refusal.reason, refusal.patient_id) == (
        "create", "visit", written, "already_done", partnership.granted)
