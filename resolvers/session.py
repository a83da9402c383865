"""Logging in and out, and turning a bearer token into a Principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome
from core.errors import BadUserInput, RateLimited, Unauthenticated
from core.principal import Principal
from core.tokens import looks_like_token, new_token, token_digest
from models import Department, Institution, Session, Staff
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


async def authenticate(services: Services, authorization: str | None) -> Principal | None:
    """The principal behind an ``Authorization: Bearer cl_...`` header; None without one.

    Raises Unauthenticated for a malformed, unknown, expired or revoked token, or a
    deactivated account: checked against the database on every request, so a revocation
    takes effect on the next one.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not looks_like_token(token.strip()):
        raise Unauthenticated("Invalid or expired token.")
    digest = token_digest(services.master_key.token_key, token.strip())
    rows = await Session.filter(token_hash=digest, revoked_at=None, expires_at__gt=datetime.now(UTC)).values_list(
        *_PRINCIPAL_COLUMNS)
    if not rows or not rows[0][5]:
        raise Unauthenticated("Invalid or expired token.")
    session_id, staff_id, institution_id, email, name, _active, _role, _department = rows[0]
    principal = Principal(
        institution_id=institution_id,
        user_id=staff_id,
        token_id=session_id,
        email=email,
        name=name,
        roles=frozenset(str(row[6]) for row in rows if row[6] is not None),
        department_ids=frozenset(row[7] for row in rows if row[7] is not None),
    )
    services.guard.sync_roles(principal.subject, principal.institution_id, principal.roles)
    return principal


async def sign_in(ctx: Context) -> None:
    """Authenticate the context from ``ctx.authorization``; ``auth_failed`` when the token is bad.

    Long-lived operations (subscriptions) call it again before each event, so a revoked token, a
    deactivated account or a changed role takes effect there too.
    """
    try:
        principal = await authenticate(ctx.services, ctx.authorization)
    except Unauthenticated:
        ctx.principal, ctx.auth_failed = None, True
        return
    ctx.principal, ctx.auth_failed = principal, False
    if principal is not None:
        ctx.keys = await ctx.services.keyring.get(principal.institution_id)
        ctx.loaders = Loaders(principal.institution_id)  # fresh: a subscription signs in before each event


async def me(ctx: Context) -> Me | None:
    """The signed-in principal; None without a token, UNAUTHENTICATED with a bad one."""
    if ctx.principal is None and not ctx.auth_failed:
        return None
    principal = ctx.require_principal()
    institution = await Institution.get(id=principal.institution_id)
    departments = await Department.filter(id__in=list(principal.department_ids)).order_by("name")
    return Me(principal, institution, departments)


async def login(ctx: Context, email: str, password: str) -> LoginResult:
    limits = ctx.services.settings.limits
    if len(email) > 254 or len(password) > 1024:
        raise BadUserInput("email or password is too long.", field="email")
    staff = await Staff.get_or_none(email=email.strip().lower())
    now = datetime.now(UTC)
    if staff is not None and staff.locked_until is not None and staff.locked_until > now:
        await _record(ctx, staff, Action.LOGIN, Outcome.DENIED, "locked")
        raise RateLimited("Too many failed sign-in attempts; the account is locked for a while.")
    stored_hash = staff.password_hash if staff is not None and staff.is_active else None
    verification = await ctx.services.passwords.verify(stored_hash, password)
    if staff is None or stored_hash is None or not verification.ok:
        await _failed(ctx, staff, now)
        raise Unauthenticated(INVALID_CREDENTIALS)
    token = new_token()
    expires_at = now + timedelta(hours=limits.token_ttl_hours)
    async with in_transaction():
        updates: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if verification.needs_rehash:
            updates["password_hash"] = await ctx.services.passwords.hash(password)
        await Staff.filter(id=staff.id).update(**updates)
        session = await Session.create(institution_id=staff.institution_id, staff_id=staff.id,
                                       token_hash=token_digest(ctx.services.master_key.token_key, token),
                                       expires_at=expires_at)
        await writer.append([_login_record(ctx, staff, Action.LOGIN, Outcome.ALLOWED, "", session.id)])
    return LoginResult(token, expires_at)


async def logout(ctx: Context) -> bool:
    principal = ctx.require_principal()
    async with in_transaction():
        await Session.filter(id=principal.token_id).update(revoked_at=datetime.now(UTC))
        await writer.append([AuditRecord(principal.institution_id, ctx.actor, Action.LOGOUT, "session",
                                         Outcome.ALLOWED, ctx.request, resource_id=principal.token_id)])
    return True


async def _failed(ctx: Context, staff: Staff | None, now: datetime) -> None:
    """Count the failure in the database, one by one, and lock the account at the limit."""
    if staff is None:
        await writer.append([_login_record(ctx, None, Action.LOGIN, Outcome.DENIED, "bad_credentials")])
        return
    limits = ctx.services.settings.limits
    async with in_transaction():
        await Staff.filter(id=staff.id).update(failed_logins=F("failed_logins") + 1)
        failures = await Staff.filter(id=staff.id).first().values_list("failed_logins", flat=True)
        records = [_login_record(ctx, staff, Action.LOGIN, Outcome.DENIED, "bad_credentials")]
        if isinstance(failures, int) and failures >= limits.login_max_failures:
            locked_until = now + timedelta(minutes=limits.login_lock_minutes)
            await Staff.filter(id=staff.id).update(failed_logins=0, locked_until=locked_until)
            records.append(_login_record(ctx, staff, Action.LOCKOUT, Outcome.DENIED, "too_many_failures"))
        await writer.append(records)


async def _record(ctx: Context, staff: Staff, action: Action, outcome: Outcome, reason: str) -> None:
    await writer.append([_login_record(ctx, staff, action, outcome, reason)])


def _login_record(
    ctx: Context, staff: Staff | None, action: Action, outcome: Outcome, reason: str, token_id: uuid.UUID | None = None
) -> AuditRecord:
    institution_id = staff.institution_id if staff is not None else writer.SYSTEM_CHAIN
    actor = Actor("staff", staff.id, token_id) if staff is not None else Actor("anonymous")
    return AuditRecord(institution_id, actor, action, "session", outcome, ctx.request,
                       resource_id=staff.id if staff is not None else None, reason=reason)

