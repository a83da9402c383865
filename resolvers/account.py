"""Credentials: the signed-in user's own (password, second factor) and an admin's actions on staff accounts.

- Staff and patients change their own password with the current one; their other sessions end.
- A forgotten password is replaced with a one-time reset code (``clr_...``, a day to use it, only its keyed hash
  kept) that an admin issues for staff and a clerk of the patient's reach for a patient, handed over in person or
  on paper, never e-mailed with a password. Using it sets the new password, unlocks the account and ends every
  session; an unknown, used or expired code gets one generic refusal, on the trail.
- An admin unlocks a locked staff account, and turns off a staff member's second factor (a lost phone).
- A staff member enrols a second factor (RFC 6238 TOTP): the secret, sealed like health data, is pending until
  a first code confirms it. Where the institution requires one and the account has none, the secret is had with
  e-mail and password (``enroll_for_login``) and the first sign-in with its code confirms it.
Every change and every refusal is on the trail; never a password, a code or a secret.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.crypto import field_aad
from core.errors import BadUserInput, Conflict, Forbidden
from core.passwords import MAX_PASSWORD, password_problem
from core.principal import PATIENT, STAFF
from core.tokens import (
    RESET_PREFIX,
    looks_like_reset_code,
    new_token,
    new_totp_secret,
    token_digest,
    totp_step,
    totp_uri,
)
from models import Institution, PasswordReset, PatientAccount, Session, Staff
from policies.guard import Decision
from resolvers import access, sign_in_limit, versioning
from resolvers import session as sessions
from resolvers.context import Context
from resolvers.session import PATIENT_ACCOUNTS, STAFF_ACCOUNTS, Accounts

RESET_LIFETIME = timedelta(hours=24)
SELF_SERVICE = "self_service"  # refused: an admin's action on their own account (they use the self-service one)


@dataclass(frozen=True)
class ResetCode:
    code: str  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str  # shown once; stored sealed
    uri: str


# -- my own password ------------------------------------------------------------------------------


async def change_password(ctx: Context, current: str, new: str) -> bool:
    """Set a new password, the current one given: counted toward the lockout when wrong. Every other session of
    the account ends (a password changed because it leaked must shut out whoever used it); this one goes on."""
    accounts, account = await _own_account(ctx)
    _check_new_password(new)
    now = datetime.now(UTC)
    attempts = sessions.attempts_at(ctx, accounts, account)
    attempt = await sessions.claim_attempt(ctx, attempts, now, _denial(ctx, account, "locked"))
    if len(current) > MAX_PASSWORD or not (await ctx.services.passwords.verify(account.password_hash, current)).ok:
        await sessions.record_failure(ctx, accounts, account, now, attempt, "bad_current_password")
        raise BadUserInput("currentPassword: does not match your password.", field="currentPassword")
    await sessions.release_attempt(ctx, attempts, now, _denial(ctx, account, "locked"))
    if new == current:
        raise BadUserInput("newPassword: must differ from the current password.", field="newPassword")
    password_hash = await ctx.services.passwords.hash(new)
    async with in_transaction():
        await _set_password(accounts, account.id, password_hash, now)
        await accounts.session.filter(**{accounts.owner: account.id}, revoked_at=None).exclude(
            id=ctx.require_principal().token_id).update(revoked_at=now)
        await writer.append([_account_record(ctx.actor, accounts, account, ctx, {"password", "sessions"},
                                             "password_change")])
    ctx.recorded = True
    return True


async def _own_account(ctx: Context) -> tuple[Accounts, Staff | PatientAccount]:
    """The signed-in staff member's or patient's account; a partner's client has no password (FORBIDDEN)."""
    principal = ctx.require_principal()
    if principal.kind not in (STAFF, PATIENT):
        await access.deny(ctx, Action.UPDATE, "account", reason="forbidden")
        raise Forbidden()
    accounts = STAFF_ACCOUNTS if principal.kind == STAFF else PATIENT_ACCOUNTS
    return accounts, await accounts.account.get(id=principal.user_id)


def _check_new_password(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise BadUserInput(f"newPassword: {problem}.", field="newPassword")


async def _set_password(accounts: Accounts, account_id: uuid.UUID, password_hash: str, now: datetime) -> None:
    values: dict[str, object] = {"password_hash": password_hash, "failed_logins": 0, "locked_until": None}
    if accounts is STAFF_ACCOUNTS:
        values.update(password_changed_at=now, **_bumped())
    await accounts.account.filter(id=account_id).update(**values)


# -- one-time reset codes ---------------------------------------------------------------------------


async def issue_staff_reset(ctx: Context, staff_id: uuid.UUID | None) -> ResetCode:
    """A one-time code for a staff member to set a new password (admins): shown once, a day to use it."""
    decision = await access.authorize(ctx, "staff_credential", "update", action=Action.CREATE,
                                      resource_type="password_reset", resource_id=staff_id)
    staff = await _staff(ctx, staff_id, Action.CREATE, "password_reset")
    if staff.id == ctx.actor.id:  # a stolen admin session must not turn into a password of its own choosing
        await access.deny(ctx, Action.CREATE, "password_reset", staff.id, reason=SELF_SERVICE)
        raise BadUserInput("staffId: change your own password with passwordChange.", field="staffId")
    return await issue_code(ctx, decision, STAFF_ACCOUNTS, staff)


async def issue_code(ctx: Context, decision: Decision, accounts: Accounts, account: Staff | PatientAccount
                     ) -> ResetCode:
    """Store a new reset code's keyed hash for the account (an older code still open stops working) and record
    it, under the account's id (and the patient's, for a patient's account)."""
    code = new_token(RESET_PREFIX)
    now = datetime.now(UTC)
    expires_at = now + RESET_LIFETIME
    owner: dict[str, Any] = {"staff_id" if accounts is STAFF_ACCOUNTS else "patient_account_id": account.id}
    async with in_transaction():
        await void_reset_codes(accounts, account.id, now)
        await PasswordReset.create(institution_id=ctx.institution_id, code_hash=token_digest(
            ctx.services.master_key.token_key, code), expires_at=expires_at, created_by_id=ctx.actor.id, **owner)
        await writer.append([access.write_record(ctx, Action.CREATE, "password_reset", account.id,
                                                 patient_id=_patient_of(account), decision=decision)])
    return ResetCode(code, expires_at)


async def void_reset_codes(accounts: Accounts, account_id: uuid.UUID, now: datetime) -> int:
    """End the account's open reset codes now (they expire at ``now``), how many: a newer code replaces them, and a
    deactivation voids them (found in review: a code issued before a deactivation worked again once the account was
    reactivated within its day)."""
    owner = "staff_id" if accounts is STAFF_ACCOUNTS else "patient_account_id"
    return await PasswordReset.filter(**{owner: account_id}, used_at=None, expires_at__gt=now).update(expires_at=now)


async def complete_reset(ctx: Context, code: str, new: str) -> bool:
    """Set a new password with a reset code, signed in or not: the code works once, unlocks the account and
    ends every session of it. It does not sign in (a second factor is still asked for at the next sign-in)."""
    _check_new_password(new)
    now = datetime.now(UTC)
    reset = None
    if looks_like_reset_code(code.strip()):
        reset = await PasswordReset.get_or_none(code_hash=token_digest(ctx.services.master_key.token_key,
                                                                       code.strip()))
    accounts = STAFF_ACCOUNTS if reset is None or reset.staff_id is not None else PATIENT_ACCOUNTS
    account = None if reset is None else await accounts.account.get_or_none(
        id=reset.staff_id or reset.patient_account_id, is_active=True)
    if reset is None or account is None or reset.used_at is not None or reset.expires_at <= now:
        raise await _refuse_reset(ctx, reset, account)
    password_hash = await ctx.services.passwords.hash(new)
    if not await _use_reset(ctx, reset, accounts, account, password_hash, now):
        raise await _refuse_reset(ctx, reset, account)  # used by a concurrent request a moment ago
    ctx.recorded = True
    return True


async def _use_reset(ctx: Context, reset: PasswordReset, accounts: Accounts, account: Staff | PatientAccount,
                     password_hash: str, now: datetime) -> bool:
    """Mark the code used (compare-and-set: one request wins) and set the password; False when it was used."""
    async with in_transaction():
        if not await PasswordReset.filter(id=reset.id, used_at=None).update(used_at=now):
            return False
        await _set_password(accounts, account.id, password_hash, now)
        await accounts.session.filter(**{accounts.owner: account.id}, revoked_at=None).update(revoked_at=now)
        await writer.append([_account_record(Actor(accounts.kind, account.id), accounts, account, ctx,
                                             {"password", "locked_until", "sessions"}, "password_reset")])
    return True


async def _refuse_reset(ctx: Context, reset: PasswordReset | None, account: Staff | PatientAccount | None
                        ) -> BadUserInput:
    """Record a refused code (on its institution's trail when it is a real one) and the one answer for all; the
    refusal counts against the caller's address first (over its limit: RATE_LIMITED, and no row). A caller signed
    in at another institution is recorded there as anyone without a sign-in: the trail names no account of another
    institution (found in review: its staff member's name and roles showed in the file's access report)."""
    await sign_in_limit.admit_link(ctx, Action.UPDATE, "password_reset")
    chain = reset.institution_id if reset else writer.SYSTEM_CHAIN
    foreign = ctx.principal is not None and reset is not None and ctx.principal.institution_id != chain
    await writer.append([AuditRecord(chain, Actor("anonymous") if foreign else ctx.actor,
                                     Action.UPDATE, "password_reset", Outcome.DENIED, ctx.request,
                                     resource_id=account.id if account else None,
                                     patient_id=_patient_of(account), reason="bad_reset_code")])
    ctx.recorded = True
    return _bad_reset_code()


def _bad_reset_code() -> BadUserInput:
    return BadUserInput("code: not a valid reset code (unknown, used or expired).", field="code")


# -- an admin's actions on staff accounts ------------------------------------------------------------


async def unlock_staff(ctx: Context, staff_id: uuid.UUID | None) -> bool:
    """Open a locked staff account now (admins); its failure count starts again."""
    decision = await access.authorize(ctx, "staff_credential", "update", action=Action.UPDATE,
                                      resource_type="staff", resource_id=staff_id)
    staff = await _staff(ctx, staff_id, Action.UPDATE, "staff")
    async with in_transaction():
        await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=None, **_bumped())
        await writer.append([replace(access.write_record(ctx, Action.UPDATE, "staff", staff.id, decision=decision,
                                                         fields=frozenset({"failed_logins", "locked_until"})),
                                     reason="unlock")])
    return True


async def disable_staff_totp(ctx: Context, staff_id: uuid.UUID | None) -> bool:
    """Turn a staff member's second factor off (admins), for a lost or replaced phone: they enrol again. Every
    session of the account ends with it (found in review: the sessions opened with a code of the lost phone went
    on, a stolen phone's among them); recorded with ``sessions`` when any was open."""
    decision = await access.authorize(ctx, "staff_credential", "update", action=Action.UPDATE,
                                      resource_type="staff", resource_id=staff_id)
    staff = await _staff(ctx, staff_id, Action.UPDATE, "staff")
    if staff.id == ctx.actor.id:  # one's own goes with a code of it (totpDisable)
        await access.deny(ctx, Action.UPDATE, "staff", staff.id, reason=SELF_SERVICE)
        raise BadUserInput("staffId: turn your own second factor off with totpDisable.", field="staffId")
    async with in_transaction():
        await _clear_totp(staff)
        fields = {"totp_secret", "totp_enabled_at"} | await _end_sessions(staff.id, keep=None)
        await writer.append([replace(access.write_record(ctx, Action.UPDATE, "staff", staff.id, decision=decision,
                                                         fields=frozenset(fields)),
                                     reason="totp_disabled")])
    return True


async def update_security(ctx: Context, totp_required: bool, version: int | None = None) -> Institution:
    """Set whether staff whose roles read clinical data must sign in with a second factor (admins), over the
    version of the institution the caller read (stale: CONFLICT, nothing written, no session ended). Switched on,
    the sessions of those who have none end now: they enrol at their next sign-in."""
    decision = await access.authorize(ctx, "institution_security", "update", action=Action.UPDATE,
                                      resource_type="institution", resource_id=ctx.institution_id)
    fields = {"totp_required"}
    async with in_transaction():
        # locked: without a version the write goes over the current one, never stale itself
        institution = await Institution.select_for_update(no_key=True).get(id=ctx.institution_id)
        await versioning.update_versioned(institution, version, "institution", totp_required=totp_required)
        if totp_required and await sessions.end_sessions_without_a_factor(ctx.services.guard, ctx.institution_id):
            fields.add("sessions")
        await writer.append([access.write_record(ctx, Action.UPDATE, "institution", ctx.institution_id,
                                                 fields=frozenset(fields), decision=decision)])
    return await Institution.get(id=ctx.institution_id)


async def _staff(ctx: Context, staff_id: uuid.UUID | None, action: Action, resource_type: str) -> Staff:
    """A staff member of the caller's institution; another's or none answers NOT_FOUND, on the trail."""
    return await access.find_in_institution(ctx, Staff, staff_id, action=action, resource_type=resource_type,
                                            field="staffId")


# -- my second factor (staff) ---------------------------------------------------------------------


async def enroll(ctx: Context) -> TotpEnrolment:
    """A new TOTP secret for the signed-in staff member, pending until ``confirm`` (a pending one is replaced)."""
    staff = await _own_staff(ctx)
    if staff.totp_enabled_at is not None:
        raise BadUserInput("Your second factor is on already; turn it off first (totpDisable).")
    return await _enrol(ctx, staff, ctx.actor)


async def enroll_for_login(ctx: Context, email: str, password: str) -> TotpEnrolment:
    """A TOTP secret for a staff member who cannot sign in without one, had with e-mail and password (checked,
    counted and locked out as a sign-in is): the first sign-in with its code confirms it."""
    # the attempt stays counted until a sign-in succeeds: enrolling must not reset the count between guesses
    staff, _, attempt = await sessions.check_credentials(ctx, STAFF_ACCOUNTS, email, password)
    assert isinstance(staff, Staff)
    if staff.totp_enabled_at is not None:
        # a refusal after the password, as a sign-in's missing code is: recorded, and the limit's attempt locks
        # (found in review: neither, so whoever held a stolen password tried to replace the factor unseen)
        await sessions.record_failure(ctx, STAFF_ACCOUNTS, staff, datetime.now(UTC), attempt, "totp_enabled_already")
        raise BadUserInput("A second factor is on already: sign in with its code.")
    return await _enrol(ctx, staff, Actor(STAFF, staff.id))


async def _enrol(ctx: Context, staff: Staff, actor: Actor) -> TotpEnrolment:
    secret = new_totp_secret()
    keys = ctx.keys if ctx.keys is not None else await ctx.services.keyring.get(staff.institution_id)
    sealed = keys.seal(secret, field_aad(staff.institution_id, "staff", "totp_secret", staff.id))
    async with in_transaction():
        await Staff.filter(id=staff.id).update(totp_secret=sealed, totp_enabled_at=None, totp_last_step=None,
                                               **_bumped())
        await writer.append([_account_record(actor, STAFF_ACCOUNTS, staff, ctx, {"totp_secret"}, "totp_enrol")])
    ctx.recorded = True
    return TotpEnrolment(secret, totp_uri(secret, staff.email))


async def confirm(ctx: Context, code: str) -> bool:
    """Turn the pending second factor on with a first code of it."""
    staff = await _own_staff(ctx)
    if staff.totp_secret is None or staff.totp_enabled_at is not None:
        raise BadUserInput("code: there is no pending second factor to confirm (totpEnroll first).", field="code")
    step = await _step(ctx, staff, code)
    async with in_transaction():
        # the secret the code was checked against, still pending (found in review: enrolled again meanwhile, in
        # another tab or device, the new secret was turned on, confirmed by no code)
        if not await Staff.filter(id=staff.id, totp_secret=staff.totp_secret, totp_enabled_at=None).update(
                totp_enabled_at=datetime.now(UTC), totp_last_step=step, **_bumped()):
            raise Conflict("code: your pending second factor changed since; confirm the new one with its code.",
                           field="code", reason="pending_factor_changed")
        await writer.append([_account_record(ctx.actor, STAFF_ACCOUNTS, staff, ctx, {"totp_enabled_at"},
                                             "totp_enabled")])
    ctx.recorded = True
    return True


async def disable(ctx: Context, code: str) -> bool:
    """Turn my second factor (on or pending) off, with a code of it: a stolen session alone cannot. My other
    sessions end, as a changed password ends them (sessions elsewhere were opened with a factor that is gone, and
    whoever turns it off may be putting a lost phone's sessions out of use); the one that proved a code goes on."""
    staff = await _own_staff(ctx)
    if staff.totp_secret is None:
        raise BadUserInput("code: you have no second factor to turn off.", field="code")
    await _step(ctx, staff, code)
    async with in_transaction():
        await _clear_totp(staff)
        ended = await _end_sessions(staff.id, keep=ctx.require_principal().token_id)
        await writer.append([_account_record(ctx.actor, STAFF_ACCOUNTS, staff, ctx,
                                             {"totp_secret", "totp_enabled_at"} | ended, "totp_disabled")])
    ctx.recorded = True
    return True


async def _own_staff(ctx: Context) -> Staff:
    principal = ctx.require_principal()
    if principal.kind != STAFF:  # patients and partners' clients have no second factor here
        await access.deny(ctx, Action.UPDATE, "staff", reason="forbidden")
        raise Forbidden()
    return await Staff.get(id=principal.user_id)


async def _step(ctx: Context, staff: Staff, code: str) -> int:
    """The time step of a valid, unused code of the staff member's secret, claimed; refused and recorded
    otherwise (a wrong code, or one already used: RFC 6238's one-time rule)."""
    now = datetime.now(UTC)
    # counted toward the lockout like a sign-in's code: a stolen session must not guess its way to turning it off
    attempts = sessions.attempts_at(ctx, STAFF_ACCOUNTS, staff)
    attempt = await sessions.claim_attempt(ctx, attempts, now, _denial(ctx, staff, "locked"))
    step = totp_step(await sessions.totp_secret(ctx, staff), code, now, staff.totp_last_step)
    claimed = step is not None and await Staff.filter(
        Q(totp_last_step=None) | Q(totp_last_step__lt=step), id=staff.id).update(totp_last_step=step)
    if step is None or not claimed:
        await sessions.record_failed_attempt(ctx, attempts, now, attempt, _denial(ctx, staff, "bad_totp"))
        raise BadUserInput("code: not a valid code of your authenticator app (each code works once).", field="code")
    await sessions.release_attempt(ctx, attempts, now, _denial(ctx, staff, "locked"))
    return step


def _bumped() -> dict[str, Any]:
    """What every change of a staff row also sets: its version (optimistic concurrency) and ``updated_at``, which a
    query-set update leaves alone."""
    return {"version": F("version") + 1, "updated_at": datetime.now(UTC)}


async def _end_sessions(staff_id: uuid.UUID, keep: uuid.UUID | None) -> set[str]:
    """End the staff member's open sessions but ``keep``: ``{"sessions"}`` when any ended, for the record."""
    query = Session.filter(staff_id=staff_id, revoked_at=None)
    if keep is not None:
        query = query.exclude(id=keep)
    return {"sessions"} if await query.update(revoked_at=datetime.now(UTC)) else set()


async def _clear_totp(staff: Staff) -> None:
    await Staff.filter(id=staff.id).update(totp_secret=None, totp_enabled_at=None, totp_last_step=None,
                                           **_bumped())


# -- records ------------------------------------------------------------------------------------


def _patient_of(account: Staff | PatientAccount | None) -> uuid.UUID | None:
    return account.patient_id if isinstance(account, PatientAccount) else None


def _resource(accounts: Accounts) -> str:
    return "staff" if accounts is STAFF_ACCOUNTS else "patient_account"


def _account_record(actor: Actor, accounts: Accounts, account: Staff | PatientAccount, ctx: Context,
                    fields: set[str], reason: str) -> AuditRecord:
    """A change of an account's credentials: the names of what changed, never a value."""
    return AuditRecord(account.institution_id, actor, Action.UPDATE, _resource(accounts), Outcome.ALLOWED,
                       ctx.request, resource_id=account.id, patient_id=_patient_of(account),
                       fields_read=frozenset(fields), reason=reason)


def _denial(ctx: Context, account: Staff | PatientAccount, reason: str) -> AuditRecord:
    """The record of a refused change of one's own account (as ``access.deny`` writes it)."""
    accounts = STAFF_ACCOUNTS if isinstance(account, Staff) else PATIENT_ACCOUNTS
    return AuditRecord(account.institution_id, ctx.actor, Action.UPDATE, _resource(accounts), Outcome.DENIED,
                       ctx.request, resource_id=account.id, patient_id=_patient_of(account), reason=reason)
