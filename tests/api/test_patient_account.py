"""Patients' self-service accounts through the API: staff invitations, one-time codes, opening the
account, signing in and out, lockout, deactivation, tenant isolation, and what is stored."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.writer import SYSTEM_CHAIN
from core.tokens import token_digest
from models import AuditEvent, PatientAccount, PatientInvitation, PatientSession
from resolvers.context import Services
from tests.factories import LOGIN, PASSWORD, Response, Tenant, gql, make_patient, raw_sqlite_bytes
from tests.patients import (
    ACTIVATE,
    BAD_CODE,
    BAD_TOKEN,
    DEACTIVATE,
    INVALID_CREDENTIALS,
    INVITE,
    NOT_ALLOWED,
    PATIENT_LOGIN,
    PATIENT_PASSWORD,
    activate,
    denials_since,
    events_since,
    invite,
    mark,
    new_email,
    open_account,
    patient_login,
    stored,
    without_place,
)

WRONG = "not my password at all"
LOCKED = {"message": "Too many failed sign-in attempts; the account is locked for a while.",
          "extensions": {"code": "RATE_LIMITED", "retryAfter": "1 to 900 s"}}
ME = "{ me { id kind email name roles patientId partnerId scopes institution { id } departments { id } } }"
MY_FILE_ID = "{ myFile { id } }"
CODE_SHAPE = r"cli_[A-Za-z0-9_-]{43}"
PATIENT_TOKEN_SHAPE = r"clp_[A-Za-z0-9_-]{43}"


def errors(reply: Response) -> list[dict[str, Any]]:
    return without_place(reply)["errors"]


def about(when: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(when) - expected) < timedelta(minutes=1)


async def invitations(patient_id: uuid.UUID) -> list[dict[str, Any]]:
    return await PatientInvitation.filter(patient_id=patient_id).order_by("created_at").values()


async def account_of(patient_id: uuid.UUID) -> PatientAccount | None:
    return await PatientAccount.get_or_none(patient_id=patient_id)


def me_of(user_email: str, account_id: uuid.UUID, patient_id: uuid.UUID, tenant: Tenant) -> dict[str, Any]:
    return {"me": {"id": str(account_id), "kind": "PATIENT", "email": user_email, "name": "", "roles": [],
                   "patientId": str(patient_id), "partnerId": None, "scopes": None,
                   "institution": {"id": str(tenant.id)}, "departments": []}}


# -- invitations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "nurse"])
async def test_staff_invite_a_patient_in_reach_with_a_one_time_code(tenant: Tenant, services: Services,
                                                                    role: str) -> None:
    pid = await make_patient(tenant)
    before = await mark(tenant.id)

    reply = await tenant.call(role, INVITE, patientId=str(pid))

    assert reply.errors == []
    code, expires = reply.data["patientInvite"]["code"], reply.data["patientInvite"]["expiresAt"]
    assert re.fullmatch(CODE_SHAPE, code)
    assert about(expires, datetime.now(UTC) + timedelta(days=7))
    (row,) = await invitations(pid)
    assert (row["institution_id"], row["created_by_id"], row["used_at"]) == (tenant.id, tenant.staff_ids[role], None)
    assert row["code_hash"] == token_digest(services.master_key.token_key, code)
    assert code not in " ".join(str(value) for value in row.values())
    assert about(row["expires_at"].isoformat(), datetime.now(UTC) + timedelta(days=7))
    (event,) = await events_since(tenant.id, before)
    assert (event.action, event.resource_type, event.resource_id, event.patient_id, event.outcome, event.actor_id,
            event.policy_rule) == ("create", "patient_invitation", row["id"], pid, "allowed", tenant.staff_ids[role],
                                   f"{role}, *, patient_account, create, allow")


@pytest.mark.parametrize("role", ["doctor", "department_head", "support_agent", "compliance_officer", "admin"])
async def test_roles_without_the_right_may_not_invite(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    before, state = await mark(tenant.id), await stored(tenant)

    reply = await tenant.call(role, INVITE, patientId=str(pid))

    assert without_place(reply) == {"data": {"patientInvite": None}, "errors": [NOT_ALLOWED]}
    assert await stored(tenant) == state
    assert await denials_since(tenant.id, before) == [("create", "patient_invitation", "forbidden", None, pid)]
    assert len(await events_since(tenant.id, before)) == 1


async def test_a_patient_may_not_invite_anyone(tenant: Tenant) -> None:
    me = await open_account(tenant)
    other = await make_patient(tenant)
    for target in (me.patient_id, other):
        before, state = await mark(tenant.id), await stored(tenant)
        reply = await me.call(INVITE, patientId=str(target))
        assert without_place(reply) == {"data": {"patientInvite": None}, "errors": [NOT_ALLOWED]}
        assert await stored(tenant) == state
        assert await denials_since(tenant.id, before) == [("create", "patient_invitation", "forbidden", None, target)]


async def test_nurse_cannot_invite_a_patient_outside_her_reach(tenant: Tenant) -> None:
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    before, state = await mark(tenant.id), await stored(tenant)

    theirs = await tenant.call("nurse", INVITE, patientId=str(in_b))

    assert await denials_since(tenant.id, before) == [("create", "patient", "not_found", in_b, in_b)]
    assert len(await events_since(tenant.id, before)) == 1
    missing = await tenant.call("nurse", INVITE, patientId=str(uuid.uuid4()))
    assert without_place(theirs) == without_place(missing) == {
        "data": {"patientInvite": None},
        "errors": [{"message": "Not found.", "extensions": {"code": "NOT_FOUND", "field": "patientId"}}]}
    assert await stored(tenant) == state
    assert (await tenant.call("front_desk", INVITE, patientId=str(in_b))).errors == []  # the front desk reaches it


async def test_another_institutions_patient_cannot_be_invited(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs_pid = await make_patient(other_tenant)
    before, b_before, b_state = await mark(tenant.id), await mark(other_tenant.id), await stored(other_tenant)

    theirs = await tenant.call("front_desk", INVITE, patientId=str(theirs_pid))

    assert theirs.codes == ["NOT_FOUND"]
    assert await denials_since(tenant.id, before) == [("create", "patient", "not_found", theirs_pid, None)]
    assert len(await events_since(tenant.id, before)) == 1
    missing = await tenant.call("front_desk", INVITE, patientId=str(uuid.uuid4()))
    assert without_place(theirs) == without_place(missing)
    assert await stored(other_tenant) == b_state
    assert await invitations(theirs_pid) == []
    assert await events_since(other_tenant.id, b_before) == []


async def test_a_file_with_an_account_takes_no_invitation(tenant: Tenant) -> None:
    me = await open_account(tenant)
    state = await stored(tenant)

    reply = await tenant.call("front_desk", INVITE, patientId=str(me.patient_id))

    assert without_place(reply) == {"data": {"patientInvite": None}, "errors": [
        {"message": "patientId: this patient has an account already.",
         "extensions": {"code": "BAD_USER_INPUT", "field": "patientId", "reason": "invalid"}}]}
    assert await stored(tenant) == state


@pytest.mark.parametrize("patient_id", ["not-an-id", "", "12345", "01a22831-c2ad-7d87-845d-970357f03c2cX",
                                        "x" * 100], ids=["word", "empty", "number", "uuid-and-more", "long"])
async def test_malformed_patient_id_is_bad_input(tenant: Tenant, patient_id: str) -> None:
    before, state = await mark(tenant.id), await stored(tenant)

    reply = await tenant.call("front_desk", INVITE, patientId=patient_id)

    assert without_place(reply) == {"data": {"patientInvite": None}, "errors": [
        {"message": "patientId: not a valid id.",
         "extensions": {"code": "BAD_USER_INPUT", "field": "patientId", "reason": "invalid"}}]}
    assert await stored(tenant) == state
    assert await events_since(tenant.id, before) == []


async def test_anonymous_cannot_invite(client: httpx.AsyncClient, tenant: Tenant) -> None:
    pid = await make_patient(tenant)

    reply = await gql(client, INVITE, {"patientId": str(pid)})

    assert without_place(reply) == {"data": {"patientInvite": None}, "errors": [
        {"message": "Authentication required.", "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert await invitations(pid) == []


async def test_a_newer_invitation_does_not_cancel_an_older_one(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    older, newer = await invite(tenant, pid), await invite(tenant, pid, "nurse")
    assert older != newer

    reply = await activate(tenant, older, new_email())

    assert reply.errors == []
    assert [row["used_at"] is not None for row in await invitations(pid)] == [True, False]


# -- opening the account --------------------------------------------------------------------------


async def test_activation_opens_an_account_on_the_invited_file_and_signs_in(tenant: Tenant, services: Services,
                                                                          settings: Any) -> None:
    pid = await make_patient(tenant)
    code, email = await invite(tenant, pid), new_email()
    before = await mark(tenant.id)

    reply = await activate(tenant, code, email)

    assert reply.errors == []
    token = reply.data["patientAccountActivate"]["token"]
    assert re.fullmatch(PATIENT_TOKEN_SHAPE, token)
    assert about(reply.data["patientAccountActivate"]["expiresAt"],
                 datetime.now(UTC) + timedelta(hours=settings.limits.token_ttl_hours))
    account = await account_of(pid)
    assert account is not None
    assert (account.institution_id, account.email, account.is_active, account.failed_logins) == (
        tenant.id, email, True, 0)
    assert account.password_hash.startswith("$argon2id$")
    assert PATIENT_PASSWORD not in account.password_hash
    (invitation,) = await invitations(pid)
    assert invitation["used_at"] is not None
    (session,) = await PatientSession.filter(account_id=account.id).values()
    assert session["token_hash"] == token_digest(services.master_key.token_key, token)
    assert [(e.actor_kind, e.actor_id, e.token_id, e.action, e.resource_type, e.resource_id, e.patient_id,
             e.fields_read, e.outcome) for e in await events_since(tenant.id, before)] == [
        ("patient", account.id, None, "create", "patient_account", account.id, pid, "email", "allowed"),
        ("patient", account.id, session["id"], "login", "session", account.id, None, "", "allowed")]

    me = await gql(tenant.client, ME, token=token)
    assert me.body == {"data": me_of(email, account.id, pid, tenant)}
    assert (await gql(tenant.client, MY_FILE_ID, token=token)).body == {"data": {"myFile": {"id": str(pid)}}}


async def test_a_used_code_is_refused_like_an_unknown_one(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    assert (await activate(tenant, code, new_email())).errors == []
    system, before, state = await mark(), await mark(tenant.id), await stored(tenant)

    used = await activate(tenant, code, new_email())
    unknown = await activate(tenant, "cli_" + "A" * 43, new_email())

    assert without_place(used) == without_place(unknown) == {"data": {"patientAccountActivate": None},
                                                            "errors": [BAD_CODE]}
    assert await stored(tenant) == state
    assert await events_since(tenant.id, before) == []
    assert [(e.action, e.reason, e.resource_id, e.patient_id) for e in await events_since(SYSTEM_CHAIN, system)] == [
        ("create", "bad_invitation", None, None)] * 2


BAD_CODES: dict[str, Any] = {
    "empty": "",
    "spaces": "   ",
    "too short": "cl_abc",
    "too long": "cl_" + "A" * 44,
    "unknown": "cli_" + "A" * 43,
    "patient token prefix": "clp_" + "A" * 43,
    "no prefix": "A" * 46,
    "huge": "cl_" + "A" * 5000,
    "control characters": "cl_" + "\x00" * 43,
}


@pytest.mark.parametrize("code", BAD_CODES.values(), ids=BAD_CODES.keys())
async def test_unknown_or_malformed_codes_are_refused(tenant: Tenant, code: str) -> None:
    pid = await make_patient(tenant)
    real = await invite(tenant, pid)
    system, before, state = await mark(), await mark(tenant.id), await stored(tenant)

    reply = await activate(tenant, code, new_email())

    assert without_place(reply) == {"data": {"patientAccountActivate": None}, "errors": [BAD_CODE]}
    assert await stored(tenant) == state
    assert await events_since(tenant.id, before) == []
    assert [(e.actor_kind, e.reason) for e in await events_since(SYSTEM_CHAIN, system)] == [
        ("anonymous", "bad_invitation")]
    assert (await activate(tenant, real, new_email())).errors == []  # the real code still works


async def test_a_staff_token_or_the_codes_digest_is_not_a_code(tenant: Tenant, services: Services) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    state = await stored(tenant)

    for fake in (tenant.tokens["front_desk"], token_digest(services.master_key.token_key, code), code.upper(),
                 code[:-1] + ("A" if code[-1] != "A" else "B")):
        assert errors(await activate(tenant, fake, new_email())) == [BAD_CODE]
    assert await stored(tenant) == state


async def test_a_code_with_surrounding_spaces_still_works(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)

    reply = await activate(tenant, f"  {code}\n", new_email())

    assert reply.errors == []
    assert (account := await account_of(pid)) is not None and account.patient_id == pid


async def test_an_expired_code_is_refused(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    await PatientInvitation.filter(patient_id=pid).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    system, state = await mark(), await stored(tenant)

    reply = await activate(tenant, code, new_email())

    assert errors(reply) == [BAD_CODE]
    assert await stored(tenant) == state
    assert [e.reason for e in await events_since(SYSTEM_CHAIN, system)] == ["bad_invitation"]


async def test_a_code_just_within_its_week_works(tenant: Tenant) -> None:
    """The twin of the expired code: a code a minute from expiry still opens the account."""
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    await PatientInvitation.filter(patient_id=pid).update(expires_at=datetime.now(UTC) + timedelta(minutes=1))

    assert (await activate(tenant, code, new_email())).errors == []


async def test_a_second_code_for_a_file_that_has_an_account_is_refused_and_recorded(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    first, second = await invite(tenant, pid), await invite(tenant, pid)
    assert (await activate(tenant, first, new_email())).errors == []
    system, before, state = await mark(), await mark(tenant.id), await stored(tenant)

    reply = await activate(tenant, second, new_email())

    assert errors(reply) == [BAD_CODE]
    assert await stored(tenant) == state
    assert await PatientAccount.filter(patient_id=pid).count() == 1
    # refused like a used code, and on the record like one: exactly one refusal
    refusals = await events_since(SYSTEM_CHAIN, system, outcome="denied") + await events_since(
        tenant.id, before, outcome="denied")
    assert [(e.action, e.resource_type, e.reason) for e in refusals] == [
        ("create", "patient_account", "bad_invitation")]


PASSWORDS = {"11 characters": "x" * 11, "empty": "", "1025 characters": "x" * 1025}


@pytest.mark.parametrize("password", PASSWORDS.values(), ids=PASSWORDS.keys())
async def test_bad_password_is_refused_and_the_code_kept(tenant: Tenant, password: str) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    state = await stored(tenant)

    reply = await activate(tenant, code, new_email(), password)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "password"
    assert reply.data == {"patientAccountActivate": None}
    assert await stored(tenant) == state
    assert (await activate(tenant, code, new_email(), "x" * 12)).errors == []  # 12 characters are enough


EMAILS = {
    "empty": "",
    "no at": "patient.example.com",
    "two ats": "a@@example.com",
    "no domain dot": "a@example",
    "space inside": "li na@example.com",
    "too long": "a" * 250 + "@example.com",
    "only a domain": "@example.com",
}


@pytest.mark.parametrize("email", EMAILS.values(), ids=EMAILS.keys())
async def test_invalid_email_is_refused_and_the_code_kept(tenant: Tenant, email: str) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)
    state = await stored(tenant)

    reply = await activate(tenant, code, email)

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "email"
    assert await stored(tenant) == state
    assert (await activate(tenant, code, new_email())).errors == []


async def test_email_is_unique_among_patient_accounts(tenant: Tenant, other_tenant: Tenant) -> None:
    taken = await open_account(tenant)
    for clinic in (tenant, other_tenant):
        pid = await make_patient(clinic)
        code = await invite(clinic, pid)
        state = await stored(clinic)

        reply = await activate(clinic, code, taken.email)

        assert without_place(reply) == {"data": {"patientAccountActivate": None}, "errors": [
            {"message": "email: already in use.",
             "extensions": {"code": "BAD_USER_INPUT", "field": "email", "reason": "invalid"}}]}
        assert await stored(clinic) == state
        assert (await activate(clinic, code, new_email())).errors == []  # the code was not spent


async def test_email_differing_only_in_case_is_the_same_address(tenant: Tenant) -> None:
    taken = await open_account(tenant)
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)

    reply = await activate(tenant, code, taken.email.upper())

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == "email"
    assert await account_of(pid) is None


async def test_a_mixed_case_email_signs_in_as_typed_and_in_lower_case(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    email = f"Li.Na.{uuid.uuid4().hex[:6]}@Example.COM"
    assert (await activate(tenant, await invite(tenant, pid), email)).errors == []

    for typed in (email, email.lower(), f" {email.upper()} "):
        reply = await patient_login(tenant, typed)
        assert reply.errors == [], typed
        assert re.fullmatch(PATIENT_TOKEN_SHAPE, reply.data["patientLogin"]["token"])


async def test_a_staff_members_email_may_open_a_patient_account_and_the_two_stay_apart(tenant: Tenant) -> None:
    """E-mail is unique among patient accounts: a nurse who is also a patient has two separate sign-ins."""
    email = tenant.emails["nurse"]
    me = await open_account(tenant, email=email)

    as_patient = await patient_login(tenant, email)
    as_staff = await gql(tenant.client, LOGIN, {"email": email, "password": PASSWORD})
    staff_password_in_portal = await patient_login(tenant, email, PASSWORD)

    assert as_patient.data["patientLogin"]["token"].startswith("clp_")
    assert as_staff.data["login"]["token"].startswith("cl_")
    assert errors(staff_password_in_portal) == [INVALID_CREDENTIALS]
    staff_me = await gql(tenant.client, "{ me { id kind } }", token=as_staff.data["login"]["token"])
    patient_me = await gql(tenant.client, "{ me { id kind } }", token=as_patient.data["patientLogin"]["token"])
    assert staff_me.data == {"me": {"id": str(tenant.staff_ids["nurse"]), "kind": "STAFF"}}
    assert patient_me.data == {"me": {"id": str(me.account_id), "kind": "PATIENT"}}


async def test_concurrent_uses_of_one_code_open_one_account(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)

    replies = await asyncio.gather(*(activate(tenant, code, new_email()) for _ in range(3)))

    assert sorted(tuple(reply.codes) for reply in replies) == [(), ("BAD_USER_INPUT",), ("BAD_USER_INPUT",)]
    assert await PatientAccount.filter(patient_id=pid).count() == 1


async def test_concurrent_codes_for_one_file_open_one_account(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    codes = [await invite(tenant, pid) for _ in range(3)]

    replies = await asyncio.gather(*(activate(tenant, code, new_email()) for code in codes))

    assert sorted(tuple(reply.codes) for reply in replies) == [(), ("BAD_USER_INPUT",), ("BAD_USER_INPUT",)]
    assert [errors(reply) for reply in replies if reply.errors] == [[BAD_CODE], [BAD_CODE]]
    assert await PatientAccount.filter(patient_id=pid).count() == 1


async def test_concurrent_activations_with_one_email_open_one_account(tenant: Tenant) -> None:
    pids = [await make_patient(tenant) for _ in range(2)]
    codes = [await invite(tenant, pid) for pid in pids]
    email = new_email()

    replies = await asyncio.gather(*(activate(tenant, code, email) for code in codes))

    assert sorted(tuple(reply.codes) for reply in replies) == [(), ("BAD_USER_INPUT",)]
    refused = next(reply for reply in replies if reply.errors)
    assert refused.errors[0]["extensions"]["field"] == "email"
    assert await PatientAccount.filter(email=email).count() == 1
    # the refused file's code was not spent
    unused = [pid for pid in pids if await account_of(pid) is None]
    assert len(unused) == 1
    assert [row["used_at"] for row in await invitations(unused[0])] == [None]


async def test_a_code_of_one_institution_opens_the_account_on_its_own_file(tenant: Tenant,
                                                                           other_tenant: Tenant) -> None:
    ours = await make_patient(tenant, fullName="Wang Fang")
    theirs = await make_patient(other_tenant, fullName="Wang Fang")
    code = await invite(tenant, ours)

    reply = await activate(other_tenant, code, new_email())  # whoever carries it, the code names its file

    assert reply.errors == []
    token = reply.data["patientAccountActivate"]["token"]
    account = await account_of(ours)
    assert account is not None and account.institution_id == tenant.id
    assert await account_of(theirs) is None
    me = await gql(tenant.client, "{ me { patientId institution { id } } myFile { id fullName } }", token=token)
    assert me.data == {"me": {"patientId": str(ours), "institution": {"id": str(tenant.id)}},
                       "myFile": {"id": str(ours), "fullName": "Wang Fang"}}
    # the other institution's staff reach neither the account nor the file
    b_before = await mark(other_tenant.id)
    for query in (DEACTIVATE, INVITE):
        assert (await other_tenant.call("front_desk", query, patientId=str(ours))).codes == ["NOT_FOUND"]
    assert (await PatientAccount.get(id=account.id)).is_active is True
    assert [(e.reason, e.resource_id) for e in await events_since(other_tenant.id, b_before)] == [
        ("not_found", ours)] * 2


# -- signing in -----------------------------------------------------------------------------------


async def test_patient_login_returns_a_patient_token(tenant: Tenant, services: Services, settings: Any) -> None:
    me = await open_account(tenant)
    before = await mark(tenant.id)

    reply = await patient_login(tenant, me.email)

    assert reply.errors == []
    token = reply.data["patientLogin"]["token"]
    assert re.fullmatch(PATIENT_TOKEN_SHAPE, token) and token != me.token
    assert about(reply.data["patientLogin"]["expiresAt"],
                 datetime.now(UTC) + timedelta(hours=settings.limits.token_ttl_hours))
    session = await PatientSession.get(token_hash=token_digest(services.master_key.token_key, token))
    assert session.account_id == me.account_id
    assert [(e.actor_kind, e.actor_id, e.token_id, e.action, e.resource_id, e.outcome)
            for e in await events_since(tenant.id, before)] == [
        ("patient", me.account_id, session.id, "login", me.account_id, "allowed")]
    assert (await gql(tenant.client, ME, token=token)).data == me_of(me.email, me.account_id, me.patient_id, tenant)


async def test_patient_login_ignores_email_case_and_spaces(tenant: Tenant) -> None:
    me = await open_account(tenant)

    reply = await patient_login(tenant, f"  {me.email.upper()} ")

    assert reply.errors == []
    assert reply.data["patientLogin"]["token"].startswith("clp_")


async def test_wrong_password_is_unauthenticated_and_audited_once(tenant: Tenant) -> None:
    me = await open_account(tenant)
    sessions = await PatientSession.filter(account_id=me.account_id).count()
    before = await mark(tenant.id)

    reply = await patient_login(tenant, me.email, WRONG)

    assert without_place(reply) == {"data": {"patientLogin": None}, "errors": [INVALID_CREDENTIALS]}
    assert [(e.actor_kind, e.actor_id, e.action, e.resource_type, e.resource_id, e.outcome, e.reason)
            for e in await events_since(tenant.id, before)] == [
        ("patient", me.account_id, "login", "session", me.account_id, "denied", "bad_credentials")]
    assert await PatientSession.filter(account_id=me.account_id).count() == sessions
    assert (await PatientAccount.get(id=me.account_id)).failed_logins == 1


async def test_unknown_email_answers_like_a_wrong_password(tenant: Tenant) -> None:
    me = await open_account(tenant)
    system = await mark()

    wrong = await patient_login(tenant, me.email, WRONG)
    unknown = await patient_login(tenant, new_email(), WRONG)

    assert without_place(unknown) == without_place(wrong)
    assert [(e.actor_kind, e.actor_id, e.action, e.reason) for e in await events_since(SYSTEM_CHAIN, system)] == [
        ("anonymous", None, "login", "bad_credentials")]


async def test_staff_and_patient_credentials_open_only_their_own_door(tenant: Tenant) -> None:
    me = await open_account(tenant)

    staff_in_portal = await patient_login(tenant, tenant.emails["front_desk"], PASSWORD)
    patient_as_staff = await gql(tenant.client, LOGIN, {"email": me.email, "password": PATIENT_PASSWORD})

    assert errors(staff_in_portal) == [INVALID_CREDENTIALS]
    assert errors(patient_as_staff) == [INVALID_CREDENTIALS]


async def test_five_failures_lock_the_patient_account(tenant: Tenant, settings: Any) -> None:
    me = await open_account(tenant)
    before = await mark(tenant.id)
    for _ in range(settings.limits.login_max_failures):
        assert errors(await patient_login(tenant, me.email, WRONG)) == [INVALID_CREDENTIALS]

    right = await patient_login(tenant, me.email)

    assert without_place(right) == {"data": {"patientLogin": None}, "errors": [LOCKED]}
    assert [(e.action, e.reason, e.actor_kind, e.resource_id) for e in await events_since(tenant.id, before)] == [
        ("login", "bad_credentials", "patient", me.account_id)] * 5 + [
        ("lockout", "too_many_failures", "patient", me.account_id), ("login", "locked", "patient", me.account_id)]
    account = await PatientAccount.get(id=me.account_id)
    assert account.locked_until is not None
    assert about(account.locked_until.isoformat(),
                 datetime.now(UTC) + timedelta(minutes=settings.limits.login_lock_minutes))
    assert errors(await patient_login(tenant, me.email, WRONG)) == [LOCKED]
    # the lock holds sign-ins, not the tokens already issued
    assert (await me.call(MY_FILE_ID)).data == {"myFile": {"id": str(me.patient_id)}}


async def test_a_success_before_the_limit_resets_the_count(tenant: Tenant) -> None:
    me = await open_account(tenant)
    before = await mark(tenant.id)
    for _ in range(2):
        for _ in range(4):
            assert errors(await patient_login(tenant, me.email, WRONG)) == [INVALID_CREDENTIALS]
        assert (await patient_login(tenant, me.email)).errors == []
    assert await events_since(tenant.id, before, action="lockout") == []


async def test_aliased_patient_logins_in_one_request_count_one_by_one(tenant: Tenant) -> None:
    me = await open_account(tenant)
    passwords = [WRONG] * 5 + [PATIENT_PASSWORD]
    fields = " ".join(f"a{i}: patientLogin(email: $email, password: $p{i}) {{ token }}" for i in range(6))
    params = ", ".join(f"$p{i}: String!" for i in range(6))
    before = await mark(tenant.id)

    reply = await gql(tenant.client, f"mutation($email: String!, {params}) {{ {fields} }}",
                      {"email": me.email, **{f"p{i}": p for i, p in enumerate(passwords)}})

    assert reply.data == {f"a{i}": None for i in range(6)}
    assert [(e["path"], e["extensions"]["code"]) for e in reply.errors] == [
        *(([f"a{i}"], "UNAUTHENTICATED") for i in range(5)), (["a5"], "RATE_LIMITED")]
    assert [(e.action, e.reason) for e in await events_since(tenant.id, before)] == [
        ("login", "bad_credentials")] * 5 + [("lockout", "too_many_failures"), ("login", "locked")]


# -- tokens ---------------------------------------------------------------------------------------


async def test_logout_revokes_the_patient_token_only(tenant: Tenant, services: Services) -> None:
    me = await open_account(tenant)
    second = (await patient_login(tenant, me.email)).data["patientLogin"]["token"]
    before = await mark(tenant.id)

    assert (await me.call("mutation { logout }")).body == {"data": {"logout": True}}

    after = await me.call(MY_FILE_ID)
    assert without_place(after) == {"data": {"myFile": None}, "errors": [BAD_TOKEN]}
    assert errors(await me.call("{ me { id } }")) == [BAD_TOKEN]
    assert (await me.call("mutation { logout }")).codes == ["UNAUTHENTICATED"]
    assert (await gql(tenant.client, MY_FILE_ID, token=second)).data == {"myFile": {"id": str(me.patient_id)}}
    session = await PatientSession.get(token_hash=token_digest(services.master_key.token_key, me.token))
    assert session.revoked_at is not None
    assert [(e.actor_kind, e.actor_id, e.token_id, e.action, e.outcome)
            for e in await events_since(tenant.id, before, action="logout")] == [
        ("patient", me.account_id, session.id, "logout", "allowed")]


async def test_a_patient_token_used_after_logout_is_recorded_once(tenant: Tenant, services: Services) -> None:
    """As a staff token's (tests/api/test_auth.py): the first use after the session ended is on the trail, once."""
    me = await open_account(tenant)
    session = await PatientSession.get(token_hash=token_digest(services.master_key.token_key, me.token))
    before = await mark(tenant.id)
    assert (await me.call(MY_FILE_ID)).errors == []  # while it lives: nothing of the kind
    assert (await me.call("mutation { logout }")).errors == []
    for _ in range(3):
        assert errors(await me.call(MY_FILE_ID)) == [BAD_TOKEN]
    assert [(e.actor_kind, e.actor_id, e.token_id, e.action, e.resource_id, e.outcome)
            for e in await events_since(tenant.id, before, reason="used_after_end")] == [
        ("patient", me.account_id, session.id, "login", session.id, "denied")]


async def test_an_expired_patient_token_is_unauthenticated(tenant: Tenant, services: Services) -> None:
    me = await open_account(tenant)
    await PatientSession.filter(token_hash=token_digest(services.master_key.token_key, me.token)).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1))

    assert errors(await me.call(MY_FILE_ID)) == [BAD_TOKEN]


BAD_PATIENT_AUTHORIZATION = {
    "too short": "Bearer clp_abc",
    "unknown": "Bearer clp_" + "A" * 43,
    "staff prefix on an unknown token": "Bearer cl_" + "B" * 43,
    "token without scheme": "clp_" + "A" * 43,
}


@pytest.mark.parametrize("authorization", BAD_PATIENT_AUTHORIZATION.values(), ids=BAD_PATIENT_AUTHORIZATION.keys())
async def test_bad_patient_bearer_token_is_unauthenticated(client: httpx.AsyncClient, authorization: str) -> None:
    reply = await gql(client, MY_FILE_ID, headers={"authorization": authorization})
    assert without_place(reply) == {"data": {"myFile": None}, "errors": [BAD_TOKEN]}


async def test_an_invitation_code_is_not_a_bearer_token(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    code = await invite(tenant, pid)

    assert errors(await gql(tenant.client, MY_FILE_ID, token=code)) == [BAD_TOKEN]
    assert (await activate(tenant, code, new_email())).errors == []  # and trying it spent nothing


async def test_a_patient_token_with_its_prefix_changed_is_refused(tenant: Tenant) -> None:
    me = await open_account(tenant)
    as_staff = "cl_" + me.token.removeprefix("clp_")

    assert errors(await gql(tenant.client, MY_FILE_ID, token=as_staff)) == [BAD_TOKEN]


# -- deactivation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "nurse"])
async def test_staff_close_an_account_and_its_tokens_stop(tenant: Tenant, role: str) -> None:
    me = await open_account(tenant)
    before = await mark(tenant.id)

    reply = await tenant.call(role, DEACTIVATE, patientId=str(me.patient_id))

    assert reply.body == {"data": {"patientAccountDeactivate": True}}
    assert (await PatientAccount.get(id=me.account_id)).is_active is False
    assert [(e.actor_id, e.action, e.resource_type, e.resource_id, e.patient_id, e.fields_read, e.outcome)
            for e in await events_since(tenant.id, before)] == [
        (tenant.staff_ids[role], "update", "patient_account", me.account_id, me.patient_id, "is_active", "allowed")]
    assert errors(await me.call(MY_FILE_ID)) == [BAD_TOKEN]
    assert errors(await patient_login(tenant, me.email)) == [INVALID_CREDENTIALS]


@pytest.mark.parametrize("role", ["doctor", "department_head", "support_agent", "compliance_officer", "admin"])
async def test_roles_without_the_right_may_not_close_an_account(tenant: Tenant, role: str) -> None:
    me = await open_account(tenant)
    before, state = await mark(tenant.id), await stored(tenant)

    reply = await tenant.call(role, DEACTIVATE, patientId=str(me.patient_id))

    assert without_place(reply) == {"data": {"patientAccountDeactivate": None}, "errors": [NOT_ALLOWED]}
    assert await stored(tenant) == state
    assert await denials_since(tenant.id, before) == [("update", "patient_account", "forbidden", None, me.patient_id)]
    assert (await me.call(MY_FILE_ID)).errors == []


async def test_a_patient_may_not_close_their_own_account(tenant: Tenant) -> None:
    me = await open_account(tenant)
    before, state = await mark(tenant.id), await stored(tenant)

    reply = await me.call(DEACTIVATE, patientId=str(me.patient_id))

    assert without_place(reply) == {"data": {"patientAccountDeactivate": None}, "errors": [NOT_ALLOWED]}
    assert await stored(tenant) == state
    assert await denials_since(tenant.id, before) == [("update", "patient_account", "forbidden", None, me.patient_id)]


async def test_closing_a_file_without_an_account_is_not_found(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    before, state = await mark(tenant.id), await stored(tenant)

    reply = await tenant.call("front_desk", DEACTIVATE, patientId=str(pid))

    assert without_place(reply) == {"data": {"patientAccountDeactivate": None}, "errors": [
        {"message": "Not found.", "extensions": {"code": "NOT_FOUND", "field": "patientId"}}]}
    assert await stored(tenant) == state
    assert await denials_since(tenant.id, before) == [("update", "patient_account", "not_found", None, None)]


async def test_a_new_invitation_reopens_a_closed_account_without_its_old_tokens(tenant: Tenant) -> None:
    me = await open_account(tenant)
    assert (await tenant.call("front_desk", DEACTIVATE, patientId=str(me.patient_id))).errors == []
    before = await mark(tenant.id)

    code = await invite(tenant, me.patient_id)
    address = new_email()
    reopened = await activate(tenant, code, address, "a brand new long secret")

    assert reopened.errors == []
    account = await PatientAccount.get(patient_id=me.patient_id)
    assert (account.id, account.email, account.is_active) == (me.account_id, address, True)
    assert errors(await me.call(MY_FILE_ID)) == [BAD_TOKEN]  # the token of before stays dead
    assert errors(await patient_login(tenant, me.email)) == [INVALID_CREDENTIALS]
    assert (await patient_login(tenant, address, "a brand new long secret")).errors == []
    assert [(e.action, e.resource_type, e.fields_read) for e in await events_since(
        tenant.id, before, resource_type="patient_account")] == [
        ("update", "patient_account", "email,is_active,password_hash")]


# -- what is stored and recorded ------------------------------------------------------------------


async def test_no_password_code_token_or_patient_value_reaches_the_audit_trail(tenant: Tenant,
                                                                              database_url: str) -> None:
    system = await mark()
    pid = await make_patient(tenant, fullName="Zhao Xiaoming", phone="13912345678", address="88 Harbour Road",
                             email="zhao.home@example.net")
    code = await invite(tenant, pid)
    email = f"zhao.portal.{uuid.uuid4().hex[:6]}@example.org"
    await activate(tenant, code[:-2] + "zz", email, "the first secret passphrase")  # a wrong code
    token = (await activate(tenant, code, email, "the real secret passphrase")).data["patientAccountActivate"][
        "token"]
    await patient_login(tenant, email, "a wrong secret passphrase")
    second = (await patient_login(tenant, email, "the real secret passphrase")).data["patientLogin"]["token"]
    await gql(tenant.client, 'mutation($id: ID!) { patientUpdate(id: $id, input: {address: "9 Quiet Lane", '
                             'contactConsent: true}) { id } }', {"id": str(pid)}, token=token)
    await gql(tenant.client, "{ myFile { fullName phone address segments } myDataExport }", token=token)
    await gql(tenant.client, "mutation { logout }", token=second)

    rows = [*await AuditEvent.filter(institution_id=tenant.id).values(),
            *await AuditEvent.filter(institution_id=SYSTEM_CHAIN, seq__gt=system).values()]
    text = "\n".join(" ".join(str(value) for value in row.values()) for row in rows)
    secrets = ["the first secret passphrase", "the real secret passphrase", "a wrong secret passphrase",
               code, code.removeprefix("cli_"), code[:-2] + "zz", token, token.removeprefix("clp_"), second,
               second.removeprefix("clp_"), email, email.split("@")[0], "Zhao Xiaoming", "13912345678",
               "88 Harbour Road", "9 Quiet Lane", "zhao.home"]
    assert [secret for secret in secrets if secret in text] == []
    assert {row["action"] for row in rows} >= {"create", "login", "update", "consent", "read", "export", "logout"}

    if database_url.startswith("sqlite://"):
        raw = raw_sqlite_bytes(Path(database_url.removeprefix("sqlite://")))
        for secret in (code.removeprefix("cl_"), token.removeprefix("clp_"), "the real secret passphrase"):
            assert secret.encode() not in raw


async def test_refused_activation_records_no_input_at_all(tenant: Tenant) -> None:
    system = await mark()
    email = new_email()

    await gql(tenant.client, ACTIVATE, {"code": "cl_" + "Q" * 43, "email": email, "password": "secret pass 1234"})

    (event,) = await events_since(SYSTEM_CHAIN, system)
    assert (event.resource_id, event.patient_id, event.field_classes, event.fields_read, event.actor_id) == (
        None, None, "", "", None)
    assert event.client_address == "203.0.113.7"


async def test_patient_login_query_answers_with_the_staff_logins_shape(tenant: Tenant) -> None:
    """patientLogin and login are the same door for two kinds of account: same payload, same errors."""
    me = await open_account(tenant)
    staff = await gql(tenant.client, LOGIN.replace("{ token }", "{ token expiresAt }"),
                      {"email": tenant.emails["nurse"], "password": WRONG})
    patient = await gql(tenant.client, PATIENT_LOGIN, {"email": me.email, "password": WRONG})
    assert errors(staff) == errors(patient) == [INVALID_CREDENTIALS]
