"""The one place that asks Casbin for a decision.

The database is the source of truth for who holds which role; ``sync_roles`` mirrors a
principal's roles into the enforcer's role links at authentication, so a role revoked
through any worker or the CLI takes effect on that user's next request. The policy
rules themselves come from the reviewed ``policy.csv``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import casbin

POLICY_DIR = Path(__file__).parent
MODEL_PATH = POLICY_DIR / "model.conf"
POLICY_PATH = POLICY_DIR / "policy.csv"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # the policy line that allowed it, for the audit record; empty when denied

    @classmethod
    def denied(cls) -> Decision:
        return cls(False, "")


@dataclass(frozen=True)
class PolicyRule:
    role: str
    domain: str
    obj: str
    act: str
    effect: str


class Guard:
    def __init__(self, model_path: Path = MODEL_PATH, policy_path: Path = POLICY_PATH) -> None:
        self._enforcer = casbin.Enforcer(str(model_path), str(policy_path))

    def sync_roles(self, subject: str, institution_id: uuid.UUID, roles: Iterable[str]) -> None:
        domain = str(institution_id)
        held = set(self._enforcer.get_roles_for_user_in_domain(subject, domain))
        wanted = set(roles)
        for role in held - wanted:
            self._enforcer.delete_roles_for_user_in_domain(subject, role, domain)
        for role in wanted - held:
            self._enforcer.add_role_for_user_in_domain(subject, role, domain)

    def decide(self, subject: str, institution_id: uuid.UUID, obj: str, act: str) -> Decision:
        allowed, explain = self._enforcer.enforce_ex(subject, str(institution_id), obj, act)
        return Decision(True, ", ".join(explain)) if allowed else Decision.denied()

    def role_allows(self, role: str, institution_id: uuid.UUID, obj: str, act: str) -> bool:
        """Whether the role alone is allowed: row scopes depend on which role grants a read."""
        return bool(self._enforcer.enforce(role, str(institution_id), obj, act))

    def rules(self) -> list[PolicyRule]:
        return [PolicyRule(*rule) for rule in self._enforcer.get_policy()]
