"""Credentials: changing my password, reset codes, unlocking, a second factor (TOTP), the institution's rule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import account as accounts
from schema.common import Info, Version, uuid_of
from schema.session import Institution

_NEW_PASSWORD = Annotated[str, strawberry.argument(description="The new password, 12 to 256 characters.")]
_STAFF_ID = Annotated[strawberry.ID, strawberry.argument(description="The staff member, of your institution.")]
_CODE = Annotated[str, strawberry.argument(description="The 6-digit code your authenticator app shows now; each "
                                                       "code works once.")]


@strawberry.type(description="A one-time code to set a new password: shown once, valid a day. Hand it over in "
                             "person or on paper (never with a password); the user enters it with a new password "
                             "in `passwordResetComplete`.")
class PasswordResetCode:
    code: str = strawberry.field(description="The code (clr_...); only its keyed hash is stored, so it cannot be "
                                             "shown again. A newer code for the same account replaces it.")
    expires_at: datetime = strawberry.field(description="When the code stops working (a day after it was made).")

    @classmethod
    def of(cls, found: accounts.ResetCode) -> PasswordResetCode:
        return cls(code=found.code, expires_at=found.expires_at)


@strawberry.type(description="A second factor to add to an authenticator app: shown once. It is pending until a "
                             "first code confirms it (`totpConfirm`, or signing in with `totpCode`).")
class TotpEnrollment:
    secret: str = strawberry.field(description="The shared secret in base32, to type into the app by hand.")
    uri: str = strawberry.field(description="The otpauth:// URI (RFC 6238, SHA-1, 6 digits, 30 s) to show as a QR "
                                            "code.")

    @classmethod
    def of(cls, found: accounts.TotpEnrolment) -> TotpEnrollment:
        return cls(secret=found.secret, uri=found.uri)


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Change your own password (staff and patients), giving the current one; a "
                                     "wrong one counts toward the lockout. Your other sessions end; this one goes "
                                     "on. "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def password_change(
        self, info: Info,
        current_password: Annotated[str, strawberry.argument(
            description="Your current password as typed; a wrong one counts toward the lockout.")],
        new_password: _NEW_PASSWORD,
    ) -> bool | None:
        return await accounts.change_password(info.context, current_password, new_password)

    @strawberry.mutation(description="Set a new password with a one-time reset code, without signing in (staff and "
                                     "patients). The code works once; the account is unlocked and all its sessions "
                                     "end. Sign in afterwards. An unknown, used or expired code gets one answer. "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def password_reset_complete(
        self, info: Info,
        code: Annotated[str, strawberry.argument(description="The reset code you were given (clr_...).")],
        new_password: _NEW_PASSWORD,
    ) -> bool | None:
        return await accounts.complete_reset(info.context, code, new_password)

    @strawberry.mutation(description="Issue a one-time code for a staff member to set a new password (admins; not "
                                     "for yourself: use passwordChange). Nothing changes until it is used.")
    async def staff_password_reset_issue(self, info: Info, staff_id: _STAFF_ID) -> PasswordResetCode | None:
        return PasswordResetCode.of(await accounts.issue_staff_reset(info.context, uuid_of(staff_id, "staffId")))

    @strawberry.mutation(description="Unlock a staff account locked by failed sign-ins (admins). "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def staff_unlock(self, info: Info, staff_id: _STAFF_ID) -> bool | None:
        return await accounts.unlock_staff(info.context, uuid_of(staff_id, "staffId"))

    @strawberry.mutation(description="Turn a staff member's second factor off, e.g. after a lost phone (admins; "
                                     "not your own: use totpDisable). They enrol again. "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def staff_totp_disable(self, info: Info, staff_id: _STAFF_ID) -> bool | None:
        return await accounts.disable_staff_totp(info.context, uuid_of(staff_id, "staffId"))

    @strawberry.mutation(description="Start adding a second factor to your account (staff): a new secret, pending "
                                     "until `totpConfirm`. Refused while one is on.")
    async def totp_enroll(self, info: Info) -> TotpEnrollment | None:
        return TotpEnrollment.of(await accounts.enroll(info.context))

    @strawberry.mutation(description="For a staff member whose institution requires a second factor they do not "
                                     "have yet (login answered TOTP_ENROLMENT_REQUIRED): a new secret, had with "
                                     "e-mail and password (checked and counted as a sign-in). Then sign in with "
                                     "`totpCode` set to a code of it, which turns it on.")
    async def totp_enroll_for_login(
        self, info: Info,
        email: Annotated[str, strawberry.argument(description="Your sign-in e-mail.")],
        password: Annotated[str, strawberry.argument(
            description="Your password as typed; checked and counted as a sign-in.")],
    ) -> TotpEnrollment | None:
        return TotpEnrollment.of(await accounts.enroll_for_login(info.context, email, password))

    @strawberry.mutation(description="Turn your pending second factor on with a first code of it (staff). "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def totp_confirm(self, info: Info, code: _CODE) -> bool | None:
        return await accounts.confirm(info.context, code)

    @strawberry.mutation(description="Turn your second factor off, with a code of it (staff). If your institution "
                                     "requires one, you enrol again at your next sign-in. "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def totp_disable(self, info: Info, code: _CODE) -> bool | None:
        return await accounts.disable(info.context, code)

    @strawberry.mutation(description="Set your institution's sign-in rules (admins). Requiring a second factor ends "
                                     "the sessions of staff who must have one and have none. Pass the version you "
                                     "read: a stale one answers CONFLICT.")
    async def institution_security_update(
        self, info: Info,
        totp_required: Annotated[bool, strawberry.argument(
            description="Whether staff whose roles read clinical data must sign in with a second factor (TOTP).")],
        version: Version = None,
    ) -> Institution | None:
        return Institution.of(await accounts.update_security(info.context, totp_required, version))
