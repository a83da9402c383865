"""Logging in and out, and turning a bearer token into a Principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.errors import BadUserInput, RateLimited, Unauthenticated
from core.principal import PARTNER, PATIENT, STAFF, Principal
from core.tokens import PATIENT_PREFIX, TOKEN_PREFIX, looks_like_token, new_token, token_digest, token_kind
from models import Department, Institution, PartnerToken, PatientAccount, PatientSession, Session, Staff
from resolvers import partner as partners
from resolvers.context import Context, Services
from resolvers.loaders import Loaders

INVALID_CREDENTIALS = "Invalid email or password."


@dataclass(frozen=True)
class Me:
    principal: Principal
    institution: Institution
    departments: list[Department]


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime


# The session, its account, the account's roles and its departments in one statement: one row per
# (role, department) pair, a handful at most.
_PRINCIPAL_COLUMNS = ("id", "staff_id", "staff__institution_id", "staff__email", "staff__name", "staff__is_active",
                      "staff__role_assignments__role", "staff__memberships__department_id")


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


async def authenticate(services: Services, authorization: str | None) -> Principal | None:
    """The principal behind an ``Authorization: Bearer cl_...`` header; None without one.

    Raises Unauthenticated for a malformed, unknown, expired or revoked token, or a
    deactivated account: checked against the database on every request, so a revocation
    takes effect on the next one. The token's prefix says which table to look in.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_token(token):
        raise Unauthenticated("Invalid or expired token.")
    digest = token_digest(services.master_key.token_key, token)
    kind = token_kind(token)
    principal = await (_staff(digest) if kind == STAFF else _patient(digest) if kind == PATIENT
                       else partners.principal(digest))
    if principal is None:
        raise Unauthenticated("Invalid or expired token.")
    if principal.kind == STAFF:  # patients and partners are decided as their one role (Principal.subject)
        services.guard.sync_roles(principal.subject, principal.institution_id, principal.roles)
    return principal


async def _staff(digest: str) -> Principal | None:
    rows = await Session.filter(token_hash=digest, revoked_at=None, expires_at__gt=datetime.now(UTC)).values_list(
        *_PRINCIPAL_COLUMNS)
    if not rows or not rows[0][5]:
        return None
    session_id, staff_id, institution_id, email, name, _active, _role, _department = rows[0]
    return Principal(
        institution_id=institution_id,
        user_id=staff_id,
        token_id=session_id,
        email=email,
        name=name,
        roles=frozenset(str(row[6]) for row in rows if row[6] is not None),
        department_ids=frozenset(row[7] for row in rows if row[7] is not None),
    )


async def _patient(digest: str) -> Principal | None:
    row = await PatientSession.filter(token_hash=digest, revoked_at=None, expires_at__gt=datetime.now(UTC),
                                      account__is_active=True).first().values_list(
        "id", "account_id", "institution_id", "account__email", "account__patient_id")
    if row is None:
        return None
    session_id, account_id, institution_id, email, patient_id = row
    return Principal(institution_id=institution_id, user_id=account_id, token_id=session_id, email=email, name="",
                     roles=frozenset({PATIENT}), department_ids=frozenset(), kind=PATIENT, patient_id=patient_id)


async def sign_in(ctx: Context) -> None:
    """Authenticate the context from ``ctx.authorization``; ``auth_failed`` when the token is bad.

    Long-lived operations (subscriptions) call it again before each event, so a revoked token, a
    deactivated account or a changed role takes effect there too. A partner client over its request
    budget is refused (RATE_LIMITED), and the refusal is on its record.
    """
    try:
        principal = await authenticate(ctx.services, ctx.authorization)
    except Unauthenticated:
        ctx.principal, ctx.auth_failed = None, True
        return
    ctx.principal, ctx.auth_failed, ctx.rate_limited = principal, False, False
    if principal is None:
        return
    if principal.kind == PARTNER:
        used = await partners.spend_request(principal)
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
    return Me(principal, institution, departments)


async def login(ctx: Context, email: str, password: str, accounts: Accounts = STAFF_ACCOUNTS) -> LoginResult:
    if len(email) > 254 or len(password) > 1024:
        raise BadUserInput("email or password is too long.", field="email")
    address = email.strip().lower()
    # No address on file holds a NUL (addresses are validated when stored), and PostgreSQL cannot
    # even compare with one: such an address is unknown, like any other (issue 11).
    account = None if "\x00" in address else await accounts.account.get_or_none(email=address)
    now = datetime.now(UTC)
    if account is not None and account.locked_until is not None and account.locked_until > now:
        await writer.append([_login_record(ctx, accounts, account, Action.LOGIN,
                                           Outcome.DENIED, "locked")])
        raise RateLimited("Too many failed sign-in attempts; the account is locked for a while.")
    stored_hash = account.password_hash if account is not None and account.is_active else None
    verification = await ctx.services.passwords.verify(stored_hash, password)
    if account is None or stored_hash is None or not verification.ok:
        await _failed(ctx, accounts, account, now)
        raise Unauthenticated(INVALID_CREDENTIALS)
    updates: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if verification.needs_rehash:
        updates["password_hash"] = await ctx.services.passwords.hash(password)
    async with in_transaction():
        await accounts.account.filter(id=account.id).update(**updates)
        return await open_session(ctx, accounts, account)


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


async def _failed(ctx: Context, accounts: Accounts, account: Staff | PatientAccount | None, now: datetime) -> None:
    """Count the failure in the database, one by one, and lock the account at the limit."""
    if account is None:
        await writer.append([_login_record(ctx, accounts, None, Action.LOGIN, Outcome.DENIED, "bad_credentials")])
        return
    limits = ctx.services.settings.limits
    model = accounts.account
    async with in_transaction():
        await model.filter(id=account.id).update(failed_logins=F("failed_logins") + 1)
        failures = await model.filter(id=account.id).first().values_list("failed_logins", flat=True)
        records = [_login_record(ctx, accounts, account, Action.LOGIN, Outcome.DENIED, "bad_credentials")]
        if isinstance(failures, int) and failures >= limits.login_max_failures:
            locked_until = now + timedelta(minutes=limits.login_lock_minutes)
            await model.filter(id=account.id).update(failed_logins=0, locked_until=locked_until)
            records.append(_login_record(ctx, accounts, account, Action.LOCKOUT, Outcome.DENIED, "too_many_failures"))
        await writer.append(records)


def _login_record(ctx: Context, accounts: Accounts, account: Staff | PatientAccount | None, action: Action,
                  outcome: Outcome, reason: str, token_id: uuid.UUID | None = None) -> AuditRecord:
    institution_id = account.institution_id if account is not None else writer.SYSTEM_CHAIN
    actor = Actor(accounts.kind, account.id, token_id) if account is not None else Actor("anonymous")
    return AuditRecord(institution_id, actor, action, "session", outcome, ctx.request,
                       resource_id=account.id if account is not None else None, reason=reason)
