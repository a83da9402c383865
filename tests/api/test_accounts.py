"""Accounts through the API: changing one's password, one-time reset codes (staff by an admin, patients by a
clerk), unlocking, and the lockout's retryAfter; each allowed path with its denied twin, and the trail."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.writer import SYSTEM_CHAIN
from core.tokens import token_digest
from models import AuditEvent, PasswordReset, PatientAccount, PatientSession, Session, Staff
from resolvers.context import Services
from tests.factories import PASSWORD, Response, Tenant, gql, login
from tests.partners import make_client, make_partner, token_for
from tests.patients import (
    DEACTIVATE,
    PATIENT_PASSWORD,
    PatientUser,
    activate,
    invite,
    open_account,
    patient_login,
)

NEW_PASSWORD = "a brand new long passphrase"
WRONG = "not the password at all"
CHANGE = """mutation($current: String!, $new: String!) {
  passwordChange(currentPassword: $current, newPassword: $new)
}"""
ISSUE = "mutation($id: ID!) { staffPasswordResetIssue(staffId: $id) { code expiresAt } }"
COMPLETE = "mutation($code: String!, $new: String!) { passwordResetComplete(code: $code, newPassword: $new) }"
UNLOCK = "mutation($id: ID!) { staffUnlock(staffId: $id) }"
PATIENT_ISSUE = "mutation($pid: ID!) { patientPasswordResetIssue(patientId: $pid) { code expiresAt } }"
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}"""
ME = "{ me { id } }"
STAFF_UPDATE = "mutation($id: ID!, $input: StaffUpdateInput!) { staffUpdate(id: $id, input: $input) { active } }"
CODE_SHAPE = r"clr_[A-Za-z0-9_-]{43}"
BAD_CODE = {"message": "code: not a valid reset code (unknown, used or expired).",
            "extensions": {"code": "BAD_USER_INPUT", "field": "code", "reason": "invalid"}}


def errors(reply: Response) -> list[dict[str, Any]]:
    return [{k: v for k, v in error.items() if k not in ("path", "locations")} for error in reply.errors]


async def sign_in(tenant: Tenant, role: str, password: str) -> Response:
    return await gql(tenant.client, LOGIN, {"email": tenant.emails[role], "password": password})


async def staff_row(tenant: Tenant, role: str) -> dict[str, Any]:
    return (await Staff.filter(id=tenant.staff_ids[role]).values())[0]


async def lock(tenant: Tenant, role: str, failures: int = 5) -> None:
    for _ in range(failures):
        assert (await sign_in(tenant, role, WRONG)).codes == ["UNAUTHENTICATED"]


async def since(tenant_id: uuid.UUID, seq: int, **filters: Any) -> list[AuditEvent]:
    return await AuditEvent.filter(institution_id=tenant_id, seq__gt=seq, **filters).order_by("seq")


async def mark(tenant_id: uuid.UUID) -> int:
    last = await AuditEvent.filter(institution_id=tenant_id).order_by("-seq").first()
    return 0 if last is None else int(last.seq)


async def nothing_secret_on_the_trail(*secrets: str) -> None:
    """No password, code or digest in any column of any audit event."""
    for row in await AuditEvent.all().values():
        text = " ".join(str(value) for value in row.values())
        for secret in secrets:
            assert secret not in text


# -- my own password ------------------------------------------------------------------------------


async def test_staff_change_their_password_and_their_other_sessions_end(tenant: Tenant) -> None:
    other = await login(tenant.client, tenant.emails["nurse"])
    before = await staff_row(tenant, "nurse")
    start = await mark(tenant.id)

    reply = await tenant.call("nurse", CHANGE, current=PASSWORD, new=NEW_PASSWORD)

    assert reply.body == {"data": {"passwordChange": True}}
    assert (await tenant.call("nurse", ME)).data == {"me": {"id": str(tenant.staff_ids["nurse"])}}
    assert (await gql(tenant.client, ME, token=other)).codes == ["UNAUTHENTICATED"]
    assert (await sign_in(tenant, "nurse", PASSWORD)).codes == ["UNAUTHENTICATED"]
    assert (await sign_in(tenant, "nurse", NEW_PASSWORD)).errors == []
    after = await staff_row(tenant, "nurse")
    assert after["password_hash"] != before["password_hash"] and after["version"] == before["version"] + 1
    assert after["password_changed_at"] is not None
    changed = await since(tenant.id, start, action="update", resource_type="staff")
    assert [(e.actor_id, e.resource_id, e.outcome, e.reason, e.fields_read) for e in changed] == [
        (tenant.staff_ids["nurse"], tenant.staff_ids["nurse"], "allowed", "password_change", "password,sessions")]
    await nothing_secret_on_the_trail(NEW_PASSWORD, PASSWORD)


async def test_a_wrong_current_password_changes_nothing_and_counts_toward_the_lockout(tenant: Tenant) -> None:
    before = await staff_row(tenant, "nurse")
    start = await mark(tenant.id)

    reply = await tenant.call("nurse", CHANGE, current=WRONG, new=NEW_PASSWORD)

    assert reply.data == {"passwordChange": None}
    assert errors(reply) == [{"message": "currentPassword: does not match your password.",
                              "extensions": {"code": "BAD_USER_INPUT", "field": "currentPassword",
                                             "reason": "invalid"}}]
    after = await staff_row(tenant, "nurse")
    assert {**after, "failed_logins": 0} == before and after["failed_logins"] == 1
    denied = await since(tenant.id, start, outcome="denied")
    assert [(e.action, e.resource_id, e.reason) for e in denied] == [
        ("login", tenant.staff_ids["nurse"], "bad_current_password")]
    assert (await sign_in(tenant, "nurse", PASSWORD)).errors == []


async def test_four_wrong_logins_and_a_wrong_current_password_lock_the_account(tenant: Tenant) -> None:
    await lock(tenant, "doctor", failures=4)
    assert (await tenant.call("doctor", CHANGE, current=WRONG, new=NEW_PASSWORD)).codes == ["BAD_USER_INPUT"]

    reply = await tenant.call("doctor", CHANGE, current=PASSWORD, new=NEW_PASSWORD)

    assert reply.codes == ["RATE_LIMITED"]
    assert 14 * 60 < reply.errors[0]["extensions"]["retryAfter"] <= 15 * 60
    assert (await sign_in(tenant, "doctor", PASSWORD)).codes == ["RATE_LIMITED"]


async def test_a_bad_new_password_is_refused_and_writes_nothing(tenant: Tenant) -> None:
    before, start = await staff_row(tenant, "nurse"), await mark(tenant.id)
    short = await tenant.call("nurse", CHANGE, current=PASSWORD, new="too short")
    same = await tenant.call("nurse", CHANGE, current=PASSWORD, new=PASSWORD)
    assert errors(short) == [{"message": "newPassword: must be 12 to 256 characters.",
                              "extensions": {"code": "BAD_USER_INPUT", "field": "newPassword", "reason": "invalid"}}]
    assert errors(same) == [{"message": "newPassword: must differ from the current password.",
                             "extensions": {"code": "BAD_USER_INPUT", "field": "newPassword", "reason": "invalid"}}]
    assert await staff_row(tenant, "nurse") == before
    assert await since(tenant.id, start) == []


async def test_changing_a_password_needs_a_sign_in(tenant: Tenant) -> None:
    reply = await tenant.call(None, CHANGE, current=PASSWORD, new=NEW_PASSWORD)
    assert reply.codes == ["UNAUTHENTICATED"]


async def test_a_partners_client_has_no_password_to_change(tenant: Tenant) -> None:
    client = await make_client(tenant, await make_partner(tenant))
    token = await token_for(tenant.client, client)
    start = await mark(tenant.id)

    reply = await gql(tenant.client, CHANGE, {"current": client.secret, "new": NEW_PASSWORD}, token=token)

    assert reply.codes == ["FORBIDDEN"]
    denied = await since(tenant.id, start, outcome="denied")
    assert [(e.actor_kind, e.actor_id, e.resource_type, e.reason) for e in denied] == [
        ("partner", client.id, "account", "forbidden")]


async def test_a_patient_changes_their_password(tenant: Tenant) -> None:
    me = await open_account(tenant)
    other = (await patient_login(tenant, me.email)).data["patientLogin"]["token"]

    reply = await me.call(CHANGE, current=PATIENT_PASSWORD, new=NEW_PASSWORD)

    assert reply.body == {"data": {"passwordChange": True}}
    assert (await me.call(ME)).data == {"me": {"id": str(me.account_id)}}
    assert (await gql(tenant.client, ME, token=other)).codes == ["UNAUTHENTICATED"]
    assert (await patient_login(tenant, me.email)).codes == ["UNAUTHENTICATED"]
    assert (await patient_login(tenant, me.email, NEW_PASSWORD)).errors == []
    (event,) = await tenant.audit_events(reason="password_change")
    assert (event.actor_kind, event.resource_type, event.resource_id, event.patient_id) == (
        "patient", "patient_account", me.account_id, me.patient_id)


# -- staff reset codes ---------------------------------------------------------------------------


async def issue(tenant: Tenant, role: str = "nurse") -> str:
    reply = await tenant.call("admin", ISSUE, id=str(tenant.staff_ids[role]))
    assert reply.errors == [], reply.errors
    return str(reply.data["staffPasswordResetIssue"]["code"])


async def test_an_admin_issues_a_one_time_code_that_sets_a_new_password_and_unlocks(
        tenant: Tenant, services: Services) -> None:
    await lock(tenant, "nurse")
    start = await mark(tenant.id)

    reply = await tenant.call("admin", ISSUE, id=str(tenant.staff_ids["nurse"]))

    assert reply.errors == []
    code = reply.data["staffPasswordResetIssue"]["code"]
    assert re.fullmatch(CODE_SHAPE, code)
    expires = datetime.fromisoformat(reply.data["staffPasswordResetIssue"]["expiresAt"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    (row,) = await PasswordReset.filter(staff_id=tenant.staff_ids["nurse"]).values()
    assert row["code_hash"] == token_digest(services.master_key.token_key, code)
    assert (row["created_by_id"], row["used_at"], row["patient_account_id"]) == (tenant.staff_ids["admin"], None,
                                                                                 None)
    assert (await tenant.call("nurse", ME)).errors == []  # nothing changes until the code is used

    done = await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)

    assert done.body == {"data": {"passwordResetComplete": True}}
    assert (await tenant.call("nurse", ME)).codes == ["UNAUTHENTICATED"]  # every session ended
    assert (await sign_in(tenant, "nurse", NEW_PASSWORD)).errors == []  # unlocked
    assert (await PasswordReset.get(id=row["id"])).used_at is not None
    events = await since(tenant.id, start, outcome="allowed", action__in=["create", "update"])
    assert [(e.actor_kind, e.actor_id, e.action, e.resource_type, e.resource_id, e.reason) for e in events] == [
        ("staff", tenant.staff_ids["admin"], "create", "password_reset", tenant.staff_ids["nurse"], ""),
        ("staff", tenant.staff_ids["nurse"], "update", "staff", tenant.staff_ids["nurse"], "password_reset")]
    await nothing_secret_on_the_trail(code, row["code_hash"], NEW_PASSWORD)


async def test_a_code_works_once(tenant: Tenant) -> None:
    code = await issue(tenant)
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []
    start = await mark(tenant.id)

    again = await tenant.call(None, COMPLETE, code=code, new="yet another long passphrase")

    assert again.data == {"passwordResetComplete": None}
    assert errors(again) == [BAD_CODE]
    assert (await sign_in(tenant, "nurse", NEW_PASSWORD)).errors == []
    denied = await since(tenant.id, start, outcome="denied")
    assert [(e.actor_kind, e.resource_type, e.resource_id, e.reason) for e in denied] == [
        ("anonymous", "password_reset", tenant.staff_ids["nurse"], "bad_reset_code")]


async def test_a_code_used_twice_at_once_works_once(tenant: Tenant) -> None:
    code = await issue(tenant)
    passwords = [f"concurrent passphrase {n}" for n in range(3)]

    replies = await asyncio.gather(*(tenant.call(None, COMPLETE, code=code, new=new) for new in passwords))

    assert sorted(str(reply.codes) for reply in replies) == ["['BAD_USER_INPUT']"] * 2 + ["[]"]
    (winner,) = [new for new, reply in zip(passwords, replies, strict=True) if reply.errors == []]
    assert (await sign_in(tenant, "nurse", winner)).errors == []
    assert len(await tenant.audit_events(reason="password_reset")) == 1
    assert len(await tenant.audit_events(reason="bad_reset_code")) == 2  # the losers' refusals too


async def test_expired_forged_and_replaced_codes_get_one_answer(tenant: Tenant) -> None:
    expired = await issue(tenant, "doctor")
    await PasswordReset.filter(staff_id=tenant.staff_ids["doctor"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1))
    replaced = await issue(tenant)
    newer = await issue(tenant)
    before = await staff_row(tenant, "nurse"), await staff_row(tenant, "doctor")
    system = await mark(SYSTEM_CHAIN)

    answers = [await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)
               for code in (expired, replaced, "clr_" + "A" * 43, "nonsense")]

    assert [errors(reply) for reply in answers] == [[BAD_CODE]] * 4
    assert (await staff_row(tenant, "nurse"), await staff_row(tenant, "doctor")) == before
    forged = await since(SYSTEM_CHAIN, system, reason="bad_reset_code")
    assert [(e.actor_kind, e.resource_id) for e in forged] == [("anonymous", None)] * 2
    assert (await tenant.call(None, COMPLETE, code=newer, new=NEW_PASSWORD)).errors == []


async def test_a_bad_new_password_leaves_the_code_unused(tenant: Tenant) -> None:
    code = await issue(tenant)
    reply = await tenant.call(None, COMPLETE, code=code, new="short")
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "newPassword"
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []


async def test_a_nurse_cannot_issue_a_reset_code(tenant: Tenant) -> None:
    start = await mark(tenant.id)

    reply = await tenant.call("nurse", ISSUE, id=str(tenant.staff_ids["doctor"]))

    assert reply.data == {"staffPasswordResetIssue": None}
    assert reply.codes == ["FORBIDDEN"]
    assert await PasswordReset.filter(institution_id=tenant.id).count() == 0
    denied = await since(tenant.id, start)
    assert [(e.actor_id, e.outcome, e.reason, e.resource_id) for e in denied] == [
        (tenant.staff_ids["nurse"], "denied", "forbidden", tenant.staff_ids["doctor"])]


async def test_an_admin_of_another_institution_finds_no_such_staff(tenant: Tenant, other_tenant: Tenant) -> None:
    start, theirs = await mark(tenant.id), await mark(other_tenant.id)

    replies = [await other_tenant.call("admin", query, id=str(tenant.staff_ids["nurse"]))
               for query in (ISSUE, UNLOCK)]

    assert [reply.codes for reply in replies] == [["NOT_FOUND"], ["NOT_FOUND"]]
    assert [reply.errors[0]["extensions"].get("field") for reply in replies] == ["staffId", "staffId"]
    assert await PasswordReset.filter(staff_id=tenant.staff_ids["nurse"]).count() == 0
    assert await since(tenant.id, start) == []
    denied = await since(other_tenant.id, theirs)
    assert [(e.actor_id, e.outcome, e.reason) for e in denied] == [(other_tenant.staff_ids["admin"], "denied",
                                                                    "not_found")] * 2


async def test_an_admin_does_not_reset_their_own_password(tenant: Tenant) -> None:
    reply = await tenant.call("admin", ISSUE, id=str(tenant.staff_ids["admin"]))
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "staffId"
    assert await PasswordReset.filter(institution_id=tenant.id).count() == 0
    (event,) = await tenant.audit_events(outcome="denied")
    assert (event.resource_type, event.reason) == ("password_reset", "self_service")



async def test_a_deactivation_voids_an_open_code_the_reactivated_account_cannot_use(tenant: Tenant) -> None:
    """Found in review: a code issued before a deactivation worked again once the account was reactivated within
    its day (the code was refused only while the account was inactive)."""
    code = await issue(tenant)
    start = await mark(tenant.id)
    nurse = str(tenant.staff_ids["nurse"])

    assert (await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": False})).errors == []
    assert (await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"active": True})).errors == []
    before = await staff_row(tenant, "nurse")
    reply = await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)

    assert errors(reply) == [BAD_CODE]
    assert await staff_row(tenant, "nurse") == before
    assert (await sign_in(tenant, "nurse", NEW_PASSWORD)).codes == ["UNAUTHENTICATED"]
    assert (await sign_in(tenant, "nurse", PASSWORD)).errors == []
    events = await since(tenant.id, start, resource_type__in=["staff", "password_reset"])
    assert [(e.action, e.outcome, e.fields_read, e.reason) for e in events] == [
        ("update", "allowed", "is_active,password_resets,sessions", ""),
        ("update", "allowed", "is_active", ""),
        ("update", "denied", "", "bad_reset_code")]
    assert (await tenant.call(None, COMPLETE, code=await issue(tenant), new=NEW_PASSWORD)).errors == []


async def test_a_code_outlives_changes_that_are_no_deactivation(tenant: Tenant) -> None:
    """The twin: a renaming, an ended session and a deactivation refused to a nurse leave the code open."""
    code = await issue(tenant)
    nurse = str(tenant.staff_ids["nurse"])
    start = await mark(tenant.id)

    renamed = await tenant.call("admin", STAFF_UPDATE, id=nurse, input={"name": "Nurse Renamed",
                                                                          "revokeSessions": True})
    refused = await tenant.call("doctor", STAFF_UPDATE, id=nurse, input={"active": False})

    assert renamed.errors == [] and refused.codes == ["FORBIDDEN"]
    assert (await staff_row(tenant, "nurse"))["is_active"] is True
    events = await since(tenant.id, start)
    assert [(e.actor_id, e.outcome, e.fields_read, e.reason) for e in events] == [
        (tenant.staff_ids["admin"], "allowed", "name,sessions", ""),
        (tenant.staff_ids["doctor"], "denied", "", "forbidden")]
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []


# -- lockout and unlocking -------------------------------------------------------------------------


async def test_the_lockout_says_when_to_try_again(tenant: Tenant) -> None:
    await lock(tenant, "support_agent")
    reply = await sign_in(tenant, "support_agent", PASSWORD)
    assert errors(reply) == [{"message": "Too many failed sign-in attempts; the account is locked for a while.",
                              "extensions": {"code": "RATE_LIMITED", "retryAfter": reply.errors[0]["extensions"][
                                  "retryAfter"]}}]
    assert 14 * 60 < reply.errors[0]["extensions"]["retryAfter"] <= 15 * 60
    await Staff.filter(id=tenant.staff_ids["support_agent"]).update(
        locked_until=datetime.now(UTC) + timedelta(seconds=42))
    later = await sign_in(tenant, "support_agent", PASSWORD)
    assert 40 <= later.errors[0]["extensions"]["retryAfter"] <= 42


async def test_a_locked_patient_is_told_when_to_try_again(tenant: Tenant) -> None:
    me = await open_account(tenant)
    for _ in range(5):
        assert (await patient_login(tenant, me.email, WRONG)).codes == ["UNAUTHENTICATED"]
    reply = await patient_login(tenant, me.email)
    assert reply.codes == ["RATE_LIMITED"]
    assert 14 * 60 < reply.errors[0]["extensions"]["retryAfter"] <= 15 * 60


async def test_an_admin_unlocks_a_staff_account(tenant: Tenant) -> None:
    await lock(tenant, "nurse")
    start = await mark(tenant.id)

    reply = await tenant.call("admin", UNLOCK, id=str(tenant.staff_ids["nurse"]))

    assert reply.body == {"data": {"staffUnlock": True}}
    row = await staff_row(tenant, "nurse")
    assert (row["locked_until"], row["failed_logins"]) == (None, 0)
    assert (await sign_in(tenant, "nurse", PASSWORD)).errors == []
    (event,) = await since(tenant.id, start, action="update")
    assert (event.actor_id, event.resource_id, event.reason, event.fields_read) == (
        tenant.staff_ids["admin"], tenant.staff_ids["nurse"], "unlock", "failed_logins,locked_until")


async def test_a_front_desk_clerk_cannot_unlock_an_account(tenant: Tenant) -> None:
    await lock(tenant, "nurse")
    before, start = await staff_row(tenant, "nurse"), await mark(tenant.id)

    reply = await tenant.call("front_desk", UNLOCK, id=str(tenant.staff_ids["nurse"]))

    assert reply.codes == ["FORBIDDEN"]
    assert await staff_row(tenant, "nurse") == before
    assert (await sign_in(tenant, "nurse", PASSWORD)).codes == ["RATE_LIMITED"]
    denied = await since(tenant.id, start, actor_id=tenant.staff_ids["front_desk"])
    assert [(e.outcome, e.reason) for e in denied] == [("denied", "forbidden")]


# -- patients' reset codes ----------------------------------------------------------------------------


async def test_the_desk_issues_a_patient_a_reset_code(tenant: Tenant) -> None:
    me = await open_account(tenant)
    for _ in range(5):
        await patient_login(tenant, me.email, WRONG)
    start = await mark(tenant.id)

    reply = await tenant.call("front_desk", PATIENT_ISSUE, pid=str(me.patient_id))

    assert reply.errors == []
    code = reply.data["patientPasswordResetIssue"]["code"]
    assert re.fullmatch(CODE_SHAPE, code)
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []
    assert (await me.call(ME)).codes == ["UNAUTHENTICATED"]
    assert await PatientSession.filter(account_id=me.account_id, revoked_at=None).count() == 0
    assert (await patient_login(tenant, me.email, NEW_PASSWORD)).errors == []
    events = await since(tenant.id, start, action__in=["create", "update"])
    assert [(e.actor_kind, e.action, e.resource_type, e.resource_id, e.patient_id, e.reason) for e in events] == [
        ("staff", "create", "password_reset", me.account_id, me.patient_id, ""),
        ("patient", "update", "patient_account", me.account_id, me.patient_id, "password_reset")]


async def test_a_support_agent_cannot_issue_a_patient_reset_code(tenant: Tenant) -> None:
    me = await open_account(tenant)
    start = await mark(tenant.id)

    reply = await tenant.call("support_agent", PATIENT_ISSUE, pid=str(me.patient_id))

    assert reply.codes == ["FORBIDDEN"]
    assert await PasswordReset.filter(institution_id=tenant.id).count() == 0
    denied = await since(tenant.id, start)
    assert [(e.outcome, e.reason, e.patient_id) for e in denied] == [("denied", "forbidden", me.patient_id)]


async def test_another_institution_finds_no_such_patient(tenant: Tenant, other_tenant: Tenant) -> None:
    me = await open_account(tenant)
    reply = await other_tenant.call("front_desk", PATIENT_ISSUE, pid=str(me.patient_id))
    assert reply.codes == ["NOT_FOUND"]
    assert await PasswordReset.filter(patient_account_id=me.account_id).count() == 0


async def test_a_patient_without_an_open_account_gets_no_code(tenant: Tenant) -> None:
    me: PatientUser = await open_account(tenant)
    await PatientAccount.filter(id=me.account_id).update(is_active=False)
    reply = await tenant.call("front_desk", PATIENT_ISSUE, pid=str(me.patient_id))
    assert reply.codes == ["NOT_FOUND"]
    assert await PasswordReset.filter(institution_id=tenant.id).count() == 0


async def test_a_reset_ends_every_staff_session(tenant: Tenant) -> None:
    code = await issue(tenant)
    await login(tenant.client, tenant.emails["nurse"])
    assert (await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)).errors == []
    assert await Session.filter(staff_id=tenant.staff_ids["nurse"], revoked_at=None).count() == 0


async def test_a_closed_patient_account_reopened_cannot_use_its_old_code(tenant: Tenant) -> None:
    """A patient's account closed by the desk voids its open reset code as a staff deactivation does: reopened by a
    new invitation, the old code must not set the password."""
    me = await open_account(tenant)
    code = (await tenant.call("front_desk", PATIENT_ISSUE, pid=str(me.patient_id))).data[
        "patientPasswordResetIssue"]["code"]
    start = await mark(tenant.id)

    assert (await tenant.call("front_desk", DEACTIVATE, patientId=str(me.patient_id))).errors == []
    assert (await activate(tenant, await invite(tenant, me.patient_id), me.email, "the reopened passphrase")).errors \
        == []
    reply = await tenant.call(None, COMPLETE, code=code, new=NEW_PASSWORD)

    assert errors(reply) == [BAD_CODE]
    assert (await patient_login(tenant, me.email, NEW_PASSWORD)).codes == ["UNAUTHENTICATED"]
    assert (await patient_login(tenant, me.email, "the reopened passphrase")).errors == []
    closed = await since(tenant.id, start, resource_type="patient_account", actor_kind="staff")
    assert [(e.outcome, e.fields_read) for e in closed] == [("allowed", "is_active,password_resets")]
    denied = await since(tenant.id, start, reason="bad_reset_code")
    assert [(e.resource_id, e.patient_id) for e in denied] == [(me.account_id, me.patient_id)]
