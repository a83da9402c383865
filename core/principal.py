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
    "finance",
    "admin",
)

# Who can hold a token. Staff hold the roles above; a patient (self-service) and a partner's API
# client each hold the one role named after their kind in the policy.
STAFF, PATIENT, PARTNER = "staff", "patient", "partner"


@dataclass(frozen=True)
class Principal:
    institution_id: uuid.UUID
    user_id: uuid.UUID  # the staff member, the patient account or the partner's API client
    token_id: uuid.UUID | None
    email: str
    name: str
    roles: frozenset[str]
    department_ids: frozenset[uuid.UUID]
    kind: str = STAFF
    # A partner token's scopes ("patient.identity:read"): its rights are the policy's for partners
    # intersected with these. None for staff and patients, whom scopes do not narrow.
    scopes: frozenset[str] | None = None
    partner_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None  # a patient's own file
    documents_only: bool = False  # a partner client restricted to its registered operation documents
    requests_per_minute: int = 0  # a partner client's request budget (0: not rate-limited)
    # The institution's time zone, read by the sign-in's own statement (None: not read there, a partner's): the
    # requests that count local days need no statement of their own for it (``resolvers.institution.zone_of``).
    time_zone: str | None = None

    @property
    def subject(self) -> str:
        """The Casbin subject. Staff are named by kind and id, never by e-mail, and linked to the roles
        they hold; a patient or a partner client holds one fixed role and is decided as that role, so
        no role link per patient or client piles up in the enforcer."""
        return f"{self.kind}:{self.user_id}" if self.kind == STAFF else self.kind

    def scoped(self, obj: str, act: str) -> bool:
        """Whether the token's scopes cover (object, action); always true without scopes."""
        return self.scopes is None or f"{obj}:{act}" in self.scopes
