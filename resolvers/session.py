"""Logging in and out, and turning a bearer token into a Principal.

Staff with a second factor (RFC 6238 TOTP) give its code with their password; an institution may require one of
every staff member whose roles read clinical data (``Institution.totp_required``, decided by the policy itself:
``patient.clinical: read``). Every refusal counts toward the lockout, and the lockout error says when to try again
(``extensions.retryAfter``, seconds).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.crypto import field_aad
from core.db import delete_in_batches
from core.errors import BadUserInput, RateLimited, TotpEnrolmentRequired, TotpRequired, Unauthenticated
from core.principal import PARTNER, PATIENT, ROLES, STAFF, Principal
from core.principal_cache import PrincipalCache
from core.tokens import (
    PATIENT_PREFIX,
    TOKEN_PREFIX,
    looks_like_token,
    new_token,
    token_digest,
    token_kind,
    totp_step,
)
from models import (
    Department,
    Institution,
    PartnerToken,
    PatientAccount,
    PatientSession,
    RoleAssignment,
    Session,
    SignInThrottle,
    Staff,
)
from policies.fields import CLINICAL
from policies.guard import Guard
from resolvers import partner as partners
from resolvers.context import Context, Services
from resolvers.loaders import Loaders

INVALID_CREDENTIALS = "Invalid email or password."
LOCKED = "Too many failed sign-in attempts; the account is locked for a while."
THROTTLE_IDLE_DAYS = 30


@dataclass(frozen=True)
class Me:
    principal: Principal
    institution: Institution
    departments: list[Department]
    totp_enabled: bool = False  # a staff member signs in with a second factor


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime


# The session, its account, the account's roles and its departments in one statement: one row per
# (role, department) pair, a handful at most.
_PRINCIPAL_COLUMNS = ("id", "staff_id", "staff__institution_id", "staff__email", "staff__name", "staff__is_active",
                      "staff__role_assignments__role", "staff__memberships__department_id", "expires_at",
                      "staff__institution__time_zone")


@dataclass(frozen=True)
class Accounts:
    """Who signs in with e-mail and password: staff, and patients in the self-service portal. Both
    sign in alike (argon2id, decoy verification, lockout); their sessions live in their own tables."""

    kind: str
    account: type[Staff] | type[PatientAccount]
    session: type[Session] | type[PatientSession]
    owner: str  # the session's foreign key to the account
    prefix: str


STAFF_ACCOUNTS = Accounts(STAFF, Staff, Session, "staff_id", TOKEN_PREFIX)
PATIENT_ACCOUNTS = Accounts(PATIENT, PatientAccount, PatientSession, "account_id", PATIENT_PREFIX)
_SESSIONS = {STAFF: Session, PATIENT: PatientSession, PARTNER: PartnerToken}
USED_AFTER_END = "used_after_end"  # refused: a token used after its session ended (audit reason)


async def authenticate(services: Services, authorization: str | None) -> tuple[Principal, int] | None:
    """The principal behind an ``Authorization: Bearer cl_...`` header, and for a partner client this request's
    number in its client's minute (counted by the same statement; 0 for staff and patients); None without one.

    Raises Unauthenticated for a malformed, unknown, expired or revoked token, or a
    deactivated account: checked against the database (one statement), so a revocation takes effect on
    the next request. Staff and patients may be answered from ``services.principals`` instead, which is live
    only while the database announces every such change to this process (core/principal_cache.py); a
    partner's request is always counted in the database. The token's prefix says which table to look in.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_token(token):
        raise Unauthenticated("Invalid or expired token.")
    digest = token_digest(services.master_key.token_key, token)
    kind = token_kind(token)
    if kind == PARTNER:
        found = await partners.principal(digest)
    else:
        principal = await _signed_in(services.principals, digest, kind)
        found = None if principal is None else (principal, 0)
    if found is None:
        raise Unauthenticated("Invalid or expired token.")
    return found


@dataclass(frozen=True)
class _Ended:
    """A session ended (a logout, a revocation, a deactivation, a second factor required) whose token came again."""

    kind: str
    session_id: uuid.UUID
    institution_id: uuid.UUID
    owner_id: uuid.UUID
    recorded: bool  # its first use after the end is on the trail already


class _EndedSession(Unauthenticated):
    """Refused as any bad token is (the same words: nobody learns the token was once good); ``sign_in`` records it."""

    def __init__(self, ended: _Ended) -> None:
        super().__init__("Invalid or expired token.")
        self.ended = ended


async def _record_use_after_end(ctx: Context, ended: _Ended) -> None:
    """Put on the institution's trail the first use of a staff or patient token after its session ended: refused
    like any bad token, it was recorded nowhere, so a stolen token tried after its owner signed out left no trace.
    Once per session (``used_after_end_at``, set in the same transaction): a client retrying it cannot fill the
    trail. The sign-in's own statement tells an ended session apart; an expired token is not recorded (a device
    left signed in overnight), nor a token nobody issued (no institution to record it in)."""
    if ended.recorded:
        return
    model = _SESSIONS[ended.kind]
    async with in_transaction():
        if not await model.filter(id=ended.session_id, used_after_end_at=None).update(
                used_after_end_at=datetime.now(UTC)):
            return  # another request recorded it first
        await writer.append([AuditRecord(ended.institution_id, Actor(ended.kind, ended.owner_id,
                                                                     token_id=ended.session_id),
                                         Action.LOGIN, "session", Outcome.DENIED, ctx.request,
                                         resource_id=ended.session_id, reason=USED_AFTER_END)])


async def _signed_in(cache: PrincipalCache, digest: str, kind: str) -> Principal | None:
    """A staff member's or patient's principal: from the cache while it is live, else from the database (and
    then kept, unless a change was announced while the statement ran)."""
    principal = await cache.current(digest)
    if principal is not None:
        return principal
    epoch = cache.epoch
    found = await (_staff_session(digest) if kind == STAFF else _patient_session(digest))
    if isinstance(found, _Ended):
        raise _EndedSession(found)
    if found is None:
        return None
    principal, expires_at = found
    cache.put(digest, principal, epoch, expires_at)
    return principal


async def staff_of(digest: str) -> Principal | None:
    """The staff principal of a live session's token digest (signed download links name the session too),
    from the database."""
    found = await _staff_session(digest)
    return found[0] if isinstance(found, tuple) else None


async def _staff_session(digest: str) -> tuple[Principal, datetime] | _Ended | None:
    """The staff principal of a live session's token digest, and when the session expires; or the session, ended
    before it expired (its token refused, its use recorded)."""
    rows = await Session.filter(token_hash=digest, expires_at__gt=datetime.now(UTC)).values_list(
        *_PRINCIPAL_COLUMNS, "revoked_at", "used_after_end_at")
    if not rows:
        return None
    session_id, staff_id, institution_id, email, name, active, _role, _department, expires_at, time_zone, \
        revoked_at, used_after_end_at = rows[0]
    if revoked_at is not None:
        return _Ended(STAFF, session_id, institution_id, staff_id, used_after_end_at is not None)
    if not active:
        return None
    principal = Principal(
        institution_id=institution_id,
        user_id=staff_id,
        token_id=session_id,
        email=email,
        name=name,
        roles=frozenset(str(row[6]) for row in rows if row[6] is not None),
        department_ids=frozenset(row[7] for row in rows if row[7] is not None),
        time_zone=time_zone,
    )
    return principal, expires_at


async def _patient_session(digest: str) -> tuple[Principal, datetime] | _Ended | None:
    """As ``_staff_session``, for a patient's portal session."""
    row = await PatientSession.filter(token_hash=digest, expires_at__gt=datetime.now(UTC)).first().values_list(
        "id", "account_id", "institution_id", "account__email", "account__patient_id", "expires_at",
        "institution__time_zone", "account__is_active", "revoked_at", "used_after_end_at")
    if row is None:
        return None
    session_id, account_id, institution_id, email, patient_id, expires_at, time_zone, active, revoked_at, used = row
    if revoked_at is not None:
        return _Ended(PATIENT, session_id, institution_id, account_id, used is not None)
    if not active:
        return None
    return Principal(institution_id=institution_id, user_id=account_id, token_id=session_id, email=email, name="",
                     roles=frozenset({PATIENT}), department_ids=frozenset(), kind=PATIENT,
                     patient_id=patient_id, time_zone=time_zone), expires_at


async def sign_in(ctx: Context) -> None:
    """Authenticate the context from ``ctx.authorization``; ``auth_failed`` when the token is bad.

    Long-lived operations (subscriptions) call it again before each event, so a revoked token, a
    deactivated account or a changed role takes effect there too. A partner client over its request
    budget is refused (RATE_LIMITED), and the refusal is on its record.
    """
    try:
        found = await authenticate(ctx.services, ctx.authorization)
    except Unauthenticated as refused:
        ctx.principal, ctx.auth_failed = None, True
        if isinstance(refused, _EndedSession):
            await _record_use_after_end(ctx, refused.ended)
        return
    principal, used = found or (None, 0)
    ctx.principal, ctx.auth_failed, ctx.rate_limited = principal, False, False
    if principal is None:
        return
    if principal.kind == PARTNER:
        if used > principal.requests_per_minute:
            if used == principal.requests_per_minute + 1:  # recorded once a minute, however hard it floods
                await writer.append([AuditRecord(principal.institution_id, ctx.actor, Action.READ, "request",
                                                 Outcome.DENIED, ctx.request, reason="rate_limited")])
            ctx.principal, ctx.rate_limited = None, True
            return
    ctx.keys = await ctx.services.keyring.get(principal.institution_id)
    ctx.loaders = Loaders(principal.institution_id)  # fresh: a subscription signs in before each event


async def me(ctx: Context) -> Me | None:
    """The signed-in principal; None without a token, UNAUTHENTICATED with a bad one."""
    if ctx.principal is None and not (ctx.auth_failed or ctx.rate_limited):
        return None
    principal = ctx.require_principal()
    institution = await Institution.get(id=principal.institution_id)
    departments = await Department.filter(id__in=list(principal.department_ids)).order_by("name")
    totp = principal.kind == STAFF and await Staff.filter(id=principal.user_id, totp_enabled_at__isnull=False).exists()
    return Me(principal, institution, departments, totp)


def locked_error(locked_until: datetime, now: datetime) -> RateLimited:
    """The lockout's refusal, with the seconds until the account opens again (``extensions.retryAfter``)."""
    error = RateLimited(LOCKED)
    error.extensions = {**(error.extensions or {}),
                        "retryAfter": max(1, math.ceil((locked_until - now).total_seconds()))}
    return error


async def check_credentials(ctx: Context, accounts: Accounts, email: str, password: str
                            ) -> tuple[Staff | PatientAccount, bool, int]:
    """The account these credentials open, whether its hash wants upgrading and the attempt's number (see
    ``claim_attempt``: the caller releases it once the whole sign-in succeeds); refused (and counted toward the
    lockout, and recorded) otherwise. A locked account is refused whatever the password. The mutations that call it
    are named in ``sign_in_limit.SIGN_IN_FIELDS``, counted against the client's address first."""
    if len(email) > 254 or len(password) > 1024:
        raise BadUserInput("email or password is too long.", field="email")
    address = email.strip().lower()
    # No address on file holds a NUL (addresses are validated when stored), and PostgreSQL cannot
    # even compare with one: such an address is unknown, like any other (issue 11).
    account = None if "\x00" in address else await accounts.account.get_or_none(email=address)
    now = datetime.now(UTC)
    key = await _address_tried(ctx, accounts, address)
    attempts = attempts_at(ctx, accounts, account) if account is not None else _attempts_at_unknown(ctx, accounts, key)
    attempt = await claim_attempt(ctx, attempts, now,
                                  _login_record(ctx, accounts, account, Action.LOGIN, Outcome.DENIED, "locked"))
    stored_hash = account.password_hash if account is not None and account.is_active else None
    verification = await ctx.services.passwords.verify(stored_hash, password)
    if account is None or stored_hash is None or not verification.ok:
        await record_failed_attempt(ctx, attempts, now, attempt, _login_record(
            ctx, accounts, account, Action.LOGIN, Outcome.DENIED, "bad_credentials"))
        raise Unauthenticated(INVALID_CREDENTIALS)
    return account, verification.needs_rehash, attempt


async def login(ctx: Context, email: str, password: str, accounts: Accounts = STAFF_ACCOUNTS,
                totp_code: str | None = None) -> LoginResult:
    account, needs_rehash, attempt = await check_credentials(ctx, accounts, email, password)
    now = datetime.now(UTC)
    updates: dict[str, object] = {}
    # what its secrets were checked against, on an account then active
    checked: dict[str, object] = {"password_hash": account.password_hash, "is_active": True}
    enabling, step = False, None
    if isinstance(account, Staff):
        step, enabling = await _second_factor(ctx, account, totp_code, now, attempt)
        if step is not None and not await _claim_step(account, step):  # the same code, a moment ago
            await record_failure(ctx, accounts, account, now, attempt, "bad_totp")
            raise Unauthenticated(INVALID_CREDENTIALS)
        if step is not None:  # the code was checked against this secret (sealed afresh at each enrolment)
            checked["totp_secret"] = account.totp_secret
        if enabling:
            updates.update(totp_enabled_at=now, version=F("version") + 1, updated_at=now)
    if needs_rehash:
        updates["password_hash"] = await ctx.services.passwords.hash(password)
    attempts = attempts_at(ctx, accounts, account)
    try:
        return await _open_if_unchanged(ctx, accounts, account, Checked(attempts, checked, now, attempt), updates,
                                        enabling=enabling, codeless=isinstance(account, Staff) and step is None)
    except _FactorRequiredMeanwhile:
        await record_failure(ctx, accounts, account, now, attempt, "totp_enrolment_required")
        # as the sign-in would answer now: a pending secret's code was not checked, so send it again
        raise (TotpRequired() if isinstance(account, Staff) and account.totp_secret and totp_code
               else TotpEnrolmentRequired()) from None


class _FactorRequiredMeanwhile(Exception):
    """The institution began requiring a second factor of an account signing in without one (rolls it back)."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What a sign-in checked: its attempt, the account's columns its secrets were checked against, and when."""

    attempts: Attempts
    columns: dict[str, object]
    now: datetime
    attempt: int


async def _open_if_unchanged(ctx: Context, accounts: Accounts, account: Staff | PatientAccount, checked: Checked,
                             updates: dict[str, object], *, enabling: bool, codeless: bool) -> LoginResult:
    """Open the session of a sign-in whose secrets were checked, if the account has not changed since."""
    async with in_transaction():
        # The attempt is released (and the rehash or enrolment written) in one conditional UPDATE, only while the
        # account is still active and holds the hash just verified and the secret the code was checked against; it
        # locks the row until the session commits. A concurrent password change or reset, a deactivation, and turning
        # the second factor off or enrolling again, update that row before they end the sessions, so either they wait
        # and then end this session too, or this UPDATE finds the change and the sign-in is refused (found in review:
        # a sign-in checked before a change committed opened its session after the change had ended the others; one
        # checked before a deactivation left a session that came back to life when the account was reopened).
        if await checked.attempts.rows(checked.now).filter(**checked.columns).update(failed_logins=0, **updates):
            # Asked for no code: the institution may have begun requiring one of this account since (the rule
            # switched on, a role that reads clinical data granted). Those changes lock the account's row before
            # they end its codeless sessions, so read now, under this row's lock, either they committed and show
            # here, or they wait and end this session too (found in review: a session opened without a code after
            # the change had ended the others, the window one argon2 check wide).
            if codeless and await totp_required_of(ctx, cast(Staff, account)):
                raise _FactorRequiredMeanwhile
            if enabling:  # an enrolment the institution required, confirmed by its first code
                await writer.append([AuditRecord(account.institution_id, Actor(STAFF, account.id), Action.UPDATE,
                                                 "staff", Outcome.ALLOWED, ctx.request, resource_id=account.id,
                                                 fields_read=frozenset({"totp_enabled_at"}), reason="totp_enabled")])
            return await open_session(ctx, accounts, account)
    raise await _refusal(ctx, accounts, account, checked)


async def _refusal(ctx: Context, accounts: Accounts, account: Staff | PatientAccount, checked: Checked
                   ) -> Unauthenticated | RateLimited:
    """The refusal (recorded) of a sign-in whose account changed since its secrets were checked, as the change makes
    it: a password changed, reset or deactivated; a factor turned off or enrolled again; locked by other attempts."""
    attempts, now, attempt = checked.attempts, checked.now, checked.attempt
    current = await accounts.account.filter(id=account.id).values(*checked.columns)
    held = current[0] if current else {}
    if held.get("password_hash") != account.password_hash or not held.get("is_active"):
        # changed, reset or deactivated since it was checked: the password given no longer opens the account
        await record_failed_attempt(ctx, attempts, now, attempt, _login_record(
            ctx, accounts, account, Action.LOGIN, Outcome.DENIED, "bad_credentials"))
        return Unauthenticated(INVALID_CREDENTIALS)
    if held != checked.columns:
        # the second factor turned off or enrolled again since the code was checked: the code is not of it
        await record_failure(ctx, accounts, account, now, attempt, "bad_totp")
        return Unauthenticated(INVALID_CREDENTIALS)
    return await _refuse_locked(ctx, attempts, now,  # other attempts locked the account meanwhile
                                _login_record(ctx, accounts, account, Action.LOGIN, Outcome.DENIED, "locked"))


# -- the second factor ---------------------------------------------------------------------------


async def _second_factor(ctx: Context, staff: Staff, code: str | None, now: datetime, attempt: int
                         ) -> tuple[int | None, bool]:
    """The time step of the code a staff member must give, and whether it confirms an enrolment; refused (and
    counted) when a code is due and missing or wrong. (None, False) when no code is asked of the account."""
    if staff.totp_enabled_at is None and not await totp_required_of(ctx, staff):
        return None, False  # a code given anyway is ignored
    if staff.totp_enabled_at is None and (staff.totp_secret is None or not code):
        await record_failure(ctx, STAFF_ACCOUNTS, staff, now, attempt, "totp_enrolment_required")
        raise TotpEnrolmentRequired()
    if not code:
        await record_failure(ctx, STAFF_ACCOUNTS, staff, now, attempt, "totp_missing")
        raise TotpRequired()
    step = totp_step(await totp_secret(ctx, staff), code, now, staff.totp_last_step)
    if step is None:
        await record_failure(ctx, STAFF_ACCOUNTS, staff, now, attempt, "bad_totp")
        raise Unauthenticated(INVALID_CREDENTIALS)
    return step, staff.totp_enabled_at is None


async def totp_secret(ctx: Context, staff: Staff) -> str:
    """The staff member's TOTP secret, opened with their institution's key (sealed like health data)."""
    keys = ctx.keys if ctx.keys is not None else await ctx.services.keyring.get(staff.institution_id)
    return keys.open(bytes(staff.totp_secret or b""), field_aad(staff.institution_id, "staff", "totp_secret",
                                                                staff.id))


async def _claim_step(staff: Staff, step: int) -> bool:
    """Record the code's time step as used, unless a later or equal one was meanwhile (a replayed code)."""
    return bool(await Staff.filter(Q(totp_last_step=None) | Q(totp_last_step__lt=step), id=staff.id).update(
        totp_last_step=step))


def reads_clinical_data(ctx: Context, institution_id: uuid.UUID, roles: list[str]) -> bool:
    """Whether any of these roles may read a patient's clinical class: the policy's own answer."""
    return any(ctx.services.guard.role_allows(role, institution_id, f"patient.{CLINICAL}", "read") for role in roles)


async def end_sessions_without_a_factor(guard: Guard, institution_id: uuid.UUID) -> list[uuid.UUID]:
    """End the open sessions of the institution's staff who hold a role the policy (``guard``) lets read clinical
    data and have no second factor, for an institution that requires one (inside the caller's transaction): they
    were opened without a code. The accounts whose sessions ended, for the record."""
    clinical = [role for role in ROLES if guard.role_allows(role, institution_id, f"patient.{CLINICAL}", "read")]
    if not clinical:
        return []
    holders = RoleAssignment.filter(institution_id=institution_id, role__in=clinical,
                                    staff__totp_enabled_at__isnull=True).values_list("staff_id", flat=True)
    staff_ids = cast(list[uuid.UUID], list(await holders))
    await lock_accounts(staff_ids)
    sessions = Session.filter(staff_id__in=staff_ids, revoked_at=None)
    ended = sorted(set(cast(list[uuid.UUID], await sessions.values_list("staff_id", flat=True))))
    if ended:
        await Session.filter(staff_id__in=ended, revoked_at=None).update(revoked_at=datetime.now(UTC))
    return ended


async def lock_accounts(staff_ids: list[uuid.UUID]) -> None:
    """Lock these accounts' rows, in id order (inside the caller's transaction), before ending their codeless
    sessions: a sign-in asked for no code holds its account's row while it opens its session, and reads the rule
    again under that lock (``_open_if_unchanged``), so one of the two waits for the other."""
    if staff_ids:  # .only, not values_list: Tortoise leaves FOR UPDATE out of a values query
        await Staff.filter(id__in=staff_ids).order_by("id").select_for_update(no_key=True).only("id")


async def totp_required_of(ctx: Context, staff: Staff) -> bool:
    """Whether the institution requires a second factor of this staff member (``totp_required`` and a role
    that reads clinical data)."""
    if not await Institution.filter(id=staff.institution_id, totp_required=True).exists():
        return False
    roles = await RoleAssignment.filter(staff_id=staff.id).values_list("role", flat=True)
    return reads_clinical_data(ctx, staff.institution_id, [str(role) for role in roles])


async def open_session(ctx: Context, accounts: Accounts, account: Staff | PatientAccount) -> LoginResult:
    """A new bearer token for an account whose credentials were just checked (inside the caller's
    transaction): only its keyed hash is stored, and the sign-in is on the record."""
    token = new_token(accounts.prefix)
    expires_at = datetime.now(UTC) + timedelta(hours=ctx.services.settings.limits.token_ttl_hours)
    columns: dict[str, Any] = {"institution_id": account.institution_id, accounts.owner: account.id,
                               "token_hash": token_digest(ctx.services.master_key.token_key, token),
                               "expires_at": expires_at}
    session = await accounts.session.create(**columns)
    await writer.append([_login_record(ctx, accounts, account, Action.LOGIN, Outcome.ALLOWED, "", session.id)])
    return LoginResult(token, expires_at)


async def logout(ctx: Context) -> bool:
    principal = ctx.require_principal()
    async with in_transaction():
        await _SESSIONS[principal.kind].filter(id=principal.token_id).update(revoked_at=datetime.now(UTC))
        await writer.append([AuditRecord(principal.institution_id, ctx.actor, Action.LOGOUT, "session",
                                         Outcome.ALLOWED, ctx.request, resource_id=principal.token_id)])
    ctx.recorded = True
    return True


# -- the lockout ----------------------------------------------------------------------------------
#
# Every attempt at an account's secret (password or second-factor code) is counted before the secret is
# checked, in one conditional UPDATE, so that attempts sent at once are held to the limit like attempts sent one
# by one (found in review: twenty wrong passwords at once were all checked, and a right one among them signed
# in). ``failed_logins`` counts the failures and the attempts still being checked; a success releases the count.
# An address without an account is counted and locked alike, in ``sign_in_throttle`` under a keyed hash: the
# lockout must not tell which addresses have an account.


@dataclass(frozen=True)
class Attempts:
    """Where one address's attempts are counted: its account's row, or the throttle row of an unknown one."""

    model: type[Staff] | type[PatientAccount] | type[SignInThrottle]
    key: Any
    lockout: AuditRecord  # recorded when these attempts lock it

    def rows(self, now: datetime | None = None) -> Any:
        """The row; with ``now``, only while it is not locked."""
        rows = self.model.filter(id=self.key)
        return rows if now is None else rows.filter(Q(locked_until=None) | Q(locked_until__lte=now))


def attempts_at(ctx: Context, accounts: Accounts, account: Staff | PatientAccount) -> Attempts:
    return Attempts(accounts.account, account.id,
                    _login_record(ctx, accounts, account, Action.LOCKOUT, Outcome.DENIED, "too_many_failures"))


async def _address_tried(ctx: Context, accounts: Accounts, address: str) -> str:
    """Note when the address was last tried, in its throttle row (made at its first try), and return the row's key:
    for every address, with an account or without, so that both cost the same statements. Found in review: only an
    address without an account was written here, one committed write more per attempt, which a refusal of a locked
    address (answered without an argon2 check to hide it) made a timing oracle of who has an account."""
    key = token_digest(ctx.services.master_key.token_key, f"{accounts.kind}:{address}")
    if not await SignInThrottle.filter(id=key).update(updated_at=datetime.now(UTC)):
        await SignInThrottle.bulk_create([SignInThrottle(id=key)], ignore_conflicts=True)
    return key


def _attempts_at_unknown(ctx: Context, accounts: Accounts, key: str) -> Attempts:
    """The attempts at an address without an account: counted in its throttle row (``_address_tried``'s key)."""
    return Attempts(SignInThrottle, key,
                    _login_record(ctx, accounts, None, Action.LOCKOUT, Outcome.DENIED, "too_many_failures"))


async def forget_idle_unknown_addresses(now: datetime | None = None) -> int:
    """Delete the throttle rows of addresses nobody tried for ``THROTTLE_IDLE_DAYS`` (a sweep): the table would
    otherwise keep every address ever tried. An account's count is on its own row and kept, so the two differ only
    to someone who waits that long between two tries."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=THROTTLE_IDLE_DAYS)
    return await delete_in_batches(SignInThrottle.filter(updated_at__lt=cutoff))


async def claim_attempt(ctx: Context, attempts: Attempts, now: datetime, refusal: AuditRecord) -> int:
    """Count an attempt at a secret and return its number; refused (RATE_LIMITED, ``refusal`` recorded) when
    the address is locked or the limit's attempts are counted already, which locks it."""
    limit = ctx.services.settings.limits.login_max_failures
    async with in_transaction():
        if await attempts.rows(now).filter(failed_logins__lt=limit).update(failed_logins=F("failed_logins") + 1):
            (count,) = await attempts.rows().values_list("failed_logins", flat=True)
            return int(count)
    async with in_transaction():
        await writer.append([refusal, *await _lock(ctx, attempts, now)])
    ctx.recorded = True
    raise await _locked(attempts, now)


async def release_attempt(ctx: Context, attempts: Attempts, now: datetime, refusal: AuditRecord) -> None:
    """The attempt succeeded: the count starts again, unless other attempts locked the address meanwhile
    (refused then, as any attempt on a locked account)."""
    if not await attempts.rows(now).update(failed_logins=0):
        raise await _refuse_locked(ctx, attempts, now, refusal)


async def _refuse_locked(ctx: Context, attempts: Attempts, now: datetime, refusal: AuditRecord) -> RateLimited:
    """Record ``refusal`` of an attempt at an address locked while it was checked; the error to raise."""
    await writer.append([refusal])
    ctx.recorded = True
    return await _locked(attempts, now)


async def record_failed_attempt(ctx: Context, attempts: Attempts, now: datetime, attempt: int,
                                record: AuditRecord) -> None:
    """``record`` the failure of a counted attempt; the limit's attempt locks the address."""
    async with in_transaction():
        locking = attempt >= ctx.services.settings.limits.login_max_failures
        await writer.append([record, *(await _lock(ctx, attempts, now) if locking else [])])
    ctx.recorded = True


async def record_failure(ctx: Context, accounts: Accounts, account: Staff | PatientAccount, now: datetime,
                         attempt: int, reason: str) -> None:
    """A sign-in refused after its credentials were checked (a second factor missing or wrong)."""
    await record_failed_attempt(ctx, attempts_at(ctx, accounts, account), now, attempt,
                                _login_record(ctx, accounts, account, Action.LOGIN, Outcome.DENIED, reason))


async def _lock(ctx: Context, attempts: Attempts, now: datetime) -> list[AuditRecord]:
    """Lock the address unless it is locked already; its lockout's record when it was not."""
    locked_until = now + timedelta(minutes=ctx.services.settings.limits.login_lock_minutes)
    return [attempts.lockout] if await attempts.rows(now).update(failed_logins=0, locked_until=locked_until) else []


async def _locked(attempts: Attempts, now: datetime) -> RateLimited:
    (locked_until,) = await attempts.rows().values_list("locked_until", flat=True)
    return locked_error(locked_until if isinstance(locked_until, datetime) else now, now)


def _login_record(ctx: Context, accounts: Accounts, account: Staff | PatientAccount | None, action: Action,
                  outcome: Outcome, reason: str, token_id: uuid.UUID | None = None) -> AuditRecord:
    institution_id = account.institution_id if account is not None else writer.SYSTEM_CHAIN
    actor = Actor(accounts.kind, account.id, token_id) if account is not None else Actor("anonymous")
    return AuditRecord(institution_id, actor, action, "session", outcome, ctx.request,
                       resource_id=account.id if account is not None else None, reason=reason)
