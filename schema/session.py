"""Signing in and out, and who is signed in."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from core.principal import ROLES
from resolvers import session as sessions
from schema import permission as permissions
from schema.common import Info, optional_id
from schema.department import Department
from schema.permission import Permissions
from schema.staff import Role

if TYPE_CHECKING:
    from models import Institution as InstitutionRow


@strawberry.type(description="A bearer token: send it as `Authorization: Bearer <token>`. Shown once, never stored.")
class LoginPayload:
    token: str = strawberry.field(description="The bearer token: cl_... for staff, clp_... for patients.")
    expires_at: datetime = strawberry.field(description="When the token stops working; sign in again then.")


@strawberry.enum(description="What kind of institution.")
class InstitutionKind(Enum):
    HOSPITAL = strawberry.enum_value("hospital", description="A hospital.")
    CLINIC = strawberry.enum_value("clinic", description="A clinic.")
    DENTAL = strawberry.enum_value("dental", description="A dental practice.")
    CHECKUP = strawberry.enum_value("checkup", description="A health check-up centre.")
    NURSING = strawberry.enum_value("nursing", description="A nursing service.")
    ELDERCARE = strawberry.enum_value("eldercare", description="An elderly-care home.")


@strawberry.type(description="An institution (tenant).")
class Institution:
    id: strawberry.ID = strawberry.field(description="The institution's id.")
    name: str = strawberry.field(description="The institution's name, to show to whoever signed in.")
    kind: InstitutionKind = strawberry.field(description="What kind of institution.")
    time_zone: str = strawberry.field(description="Its IANA time zone (e.g. Asia/Shanghai): local dates and the "
                                                  "business calendar are in it.")
    totp_required: bool = strawberry.field(description="Whether staff whose roles read clinical data must sign in "
                                                       "with a second factor (TOTP); set by an admin with "
                                                       "`institutionSecurityUpdate`.")
    version: int = strawberry.field(description="Pass back as `version` to institutionSecurityUpdate.")

    @classmethod
    def of(cls, row: InstitutionRow) -> Institution:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, kind=InstitutionKind(row.kind),
                   time_zone=row.time_zone, totp_required=row.totp_required, version=row.version)


@strawberry.enum(description="Who holds a token: staff, a patient (self-service) or a partner's API client.")
class PrincipalKind(Enum):
    STAFF = strawberry.enum_value("staff", description="A staff member of the institution.")
    PATIENT = strawberry.enum_value("patient", description="A patient signed in to the self-service portal.")
    PARTNER = strawberry.enum_value("partner", description="A care partner's API client (an OAuth access token).")


@strawberry.type(description="Who is signed in: a staff member, a patient or a partner's API client.")
class Me:
    id: strawberry.ID = strawberry.field(description="The staff member, patient account or API client.")
    kind: PrincipalKind = strawberry.field(description="What kind of principal.")
    email: str = strawberry.field(description="The sign-in e-mail; empty for a partner's client.")
    name: str = strawberry.field(description="A staff member's name or a client's; empty for a patient.")
    roles: list[Role] = strawberry.field(description="A staff member's roles; empty for others.")
    institution: Institution = strawberry.field(description="The institution (tenant) the token belongs to.")
    departments: list[Department] = strawberry.field(description="A staff member's departments: at most 50 (an "
                                                                 "account's cap); empty for others.")
    patient_id: strawberry.ID | None = strawberry.field(description="A patient's own file (Patient.id); null "
                                                                    "for staff and partners.")
    partner_id: strawberry.ID | None = strawberry.field(description="A partner client's partner (Partner.id); "
                                                                    "null for staff and patients.")
    scopes: list[str] | None = strawberry.field(description="A partner token's scopes; null for staff and "
                                                           "patients.")
    totp_enabled: bool = strawberry.field(description="Whether you sign in with a second factor (a staff member's "
                                                      "authenticator app); false for others.")

    @strawberry.field(description="What you may do: the policy's (object, action) pairs you are allowed and, for "
                                  "each class of a patient's fields, whether you may read and update it. Computed "
                                  "from the decisions the server itself applies; no database query.")
    def permissions(self, info: Info) -> Permissions:
        return permissions.of(info.context)



@strawberry.type
class SessionQuery:
    @strawberry.field(description="Who you are signed in as; null without a token.")
    async def me(self, info: Info) -> Me | None:
        found = await sessions.me(info.context)
        if found is None:
            return None
        principal, institution = found.principal, found.institution
        staff_roles = principal.roles & set(ROLES)
        return Me(
            id=strawberry.ID(str(principal.user_id)), kind=PrincipalKind(principal.kind), email=principal.email,
            name=principal.name, roles=sorted((Role(r) for r in staff_roles), key=lambda r: str(r.value)),
            institution=Institution.of(institution),
            departments=[Department.of(d) for d in found.departments],
            patient_id=optional_id(principal.patient_id), partner_id=optional_id(principal.partner_id),
            scopes=sorted(principal.scopes) if principal.scopes is not None else None,
            totp_enabled=found.totp_enabled,
        )


@strawberry.type
class SessionMutation:
    @strawberry.mutation(description="Sign in with e-mail and password, and the authenticator app's code when the "
                                     "account has a second factor. Repeated failures lock the account (RATE_LIMITED, "
                                     "with `extensions.retryAfter` in seconds). A right password without a code an "
                                     "account needs answers TOTP_REQUIRED; without the enrolment the institution "
                                     "requires, TOTP_ENROLMENT_REQUIRED (see `totpEnrollForLogin`); both count as "
                                     "failures. Too many sign-ins from one address in a minute are refused before "
                                     "they run (RATE_LIMITED, `extensions.retryAfter`).")
    async def login(
        self, info: Info,
        email: Annotated[str, strawberry.argument(description="The staff member's sign-in e-mail.")],
        password: Annotated[str, strawberry.argument(
            description="The account's password as typed (at most 256 characters); a wrong one counts toward the "
                        "lockout.")],
        totp_code: Annotated[str | None, strawberry.argument(
            description="The 6-digit code of your authenticator app (RFC 6238), when you have enrolled one (or to "
                        "confirm an enrolment your institution requires); each code works once.")] = None,
    ) -> LoginPayload | None:
        result = await sessions.login(info.context, email, password, totp_code=totp_code)
        return LoginPayload(token=result.token, expires_at=result.expires_at)

    @strawberry.mutation(description="Revoke the token this request was made with (staff, patients, partners). "
                                     "Answers true when done (never false); a refusal is an error, with null here.")
    async def logout(self, info: Info) -> bool | None:
        return await sessions.logout(info.context)
