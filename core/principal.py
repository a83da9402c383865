"""Who is calling: resolved once per request from the bearer token, then frozen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

ROLES = (
    "front_desk",
    "nurse",
    "doctor",
    "department_head",
    "support_agent",
    "compliance_officer",
    "admin",
)


@dataclass(frozen=True)
class Principal:
    institution_id: uuid.UUID
    user_id: uuid.UUID
    token_id: uuid.UUID | None
    email: str
    name: str
    roles: frozenset[str]
    department_ids: frozenset[uuid.UUID]
    kind: str = "staff"

    @property
    def subject(self) -> str:
        """The Casbin subject: users are named by kind and id, never by e-mail."""
        return f"{self.kind}:{self.user_id}"
