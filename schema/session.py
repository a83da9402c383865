"""Signing in and out, and who is signed in."""

from __future__ import annotations

from datetime import datetime

import strawberry

from resolvers import session as sessions
from schema.common import Info
from schema.department import Department
from schema.staff import Role


@strawberry.type(description="A bearer token: send it as `Authorization: Bearer <token>`. Shown once, never stored.")
class LoginPayload:
    token: str
    expires_at: datetime


@strawberry.type(description="An institution (tenant).")
class Institution:
    id: strawberry.ID
    name: str
    kind: str
    time_zone: str


@strawberry.type(description="The signed-in staff member.")
class Me:
    id: strawberry.ID
    email: str
    name: str
    roles: list[Role]
    institution: Institution
    departments: list[Department]


@strawberry.type
class SessionQuery:
    @strawberry.field(description="Who you are signed in as; null without a token.")
    async def me(self, info: Info) -> Me | None:
        found = await sessions.me(info.context)
        if found is None:
            return None
        principal, institution = found.principal, found.institution
        return Me(
            id=strawberry.ID(str(principal.user_id)), email=principal.email, name=principal.name,
            roles=sorted((Role(r) for r in principal.roles), key=lambda r: r.value),
            institution=Institution(id=strawberry.ID(str(institution.id)), name=institution.name,
                                    kind=institution.kind, time_zone=institution.time_zone),
            departments=[Department.of(d) for d in found.departments],
        )


@strawberry.type
class SessionMutation:
    @strawberry.mutation(description="Sign in with e-mail and password. Repeated failures lock the account.")
    async def login(self, info: Info, email: str, password: str) -> LoginPayload | None:
        result = await sessions.login(info.context, email, password)
        return LoginPayload(token=result.token, expires_at=result.expires_at)

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def logout(self, info: Info) -> bool | None:
        return await sessions.logout(info.context)
