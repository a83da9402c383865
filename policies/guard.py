"""The one place that asks Casbin for a decision.

The database is the source of truth for who holds which role: every request's principal
carries the roles read at its sign-in, and ``decide`` links the user to exactly those in the
enforcer before it asks Casbin, so a role revoked through any worker or the CLI takes effect
on that user's next request. The policy rules themselves come from the reviewed ``policy.csv``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import casbin

POLICY_DIR = Path(__file__).parent
MODEL_PATH = POLICY_DIR / "model.conf"
POLICY_PATH = POLICY_DIR / "policy.csv"
MEMO_LIMIT = 100_000  # distinct (roles, institution, object, action) keys kept; past it, evaluate each time


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
    """Decisions are memoized per (roles, institution, object, action): the policy is fixed for the
    life of the process and a user's decision depends only on the roles they hold, which every
    request loads afresh. A Casbin evaluation walks every rule (~1 ms); a memoized one is a lookup.
    Institutions no rule names (all of them, while every rule reads ``*``) share their decisions: the
    matcher tells them apart only by a rule's domain, so a decision made in one holds in every other."""

    def __init__(self, model_path: Path = MODEL_PATH, policy_path: Path = POLICY_PATH) -> None:
        self._enforcer = casbin.Enforcer(str(model_path), str(policy_path))
        # What this process enforces, for the audit trail's record of policy changes.
        self.digest = hashlib.sha256(model_path.read_bytes() + b"\0" + policy_path.read_bytes()).hexdigest()
        self._decisions: dict[tuple[frozenset[str], uuid.UUID | None, str, str], Decision] = {}
        self._role_allows: dict[tuple[str, uuid.UUID | None, str, str], bool] = {}
        self._linked: dict[tuple[str, str], frozenset[str]] = {}  # each user's role links in the enforcer
        # the institutions the policy file names: in a rule's domain, or in a role link's (``g, role, role, dom``)
        self._named = ({rule[1] for rule in self._enforcer.get_policy()}
                       | {link[2] for link in self._enforcer.get_grouping_policy() if len(link) > 2}) - {"*"}

    def _domain_key(self, institution_id: uuid.UUID) -> uuid.UUID | None:
        """The institution as far as the rules tell it apart: itself if a rule names it, else None (any other)."""
        return institution_id if self._named and str(institution_id) in self._named else None

    def _link_roles(self, subject: str, institution_id: uuid.UUID, roles: frozenset[str]) -> None:
        """The user's role links in the enforcer set to ``roles``."""
        domain = str(institution_id)
        if self._linked.get((subject, domain)) == roles:
            return  # as this guard, their links' only writer, left them: nothing to ask Casbin
        held = set(self._enforcer.get_roles_for_user_in_domain(subject, domain))
        for role in held - roles:
            self._enforcer.delete_roles_for_user_in_domain(subject, role, domain)
        for role in roles - held:
            self._enforcer.add_role_for_user_in_domain(subject, role, domain)
        self._linked[subject, domain] = roles

    def decide(self, subject: str, roles: frozenset[str], institution_id: uuid.UUID, obj: str, act: str) -> Decision:
        """The decision for a user holding ``roles``. It is kept for everyone holding them, so it is made with the
        user's links set to ``roles`` first, in the same step: another request of the same user, signed in with
        other roles (a role granted or revoked meanwhile), may have linked those since this request signed in."""
        key = (roles, self._domain_key(institution_id), obj, act)
        decision = self._decisions.get(key)
        if decision is None:
            if subject not in roles:  # (a patient or a partner client is decided as its one role: no link)
                self._link_roles(subject, institution_id, roles)
            allowed, explain = self._enforcer.enforce_ex(subject, str(institution_id), obj, act)
            decision = Decision(True, ", ".join(explain)) if allowed else Decision.denied()
            if len(self._decisions) < MEMO_LIMIT:
                self._decisions[key] = decision
        return decision

    def role_allows(self, role: str, institution_id: uuid.UUID, obj: str, act: str) -> bool:
        """Whether the role alone is allowed: row scopes depend on which role grants a read."""
        key = (role, self._domain_key(institution_id), obj, act)
        allowed = self._role_allows.get(key)
        if allowed is None:
            allowed = bool(self._enforcer.enforce(role, str(institution_id), obj, act))
            if len(self._role_allows) < MEMO_LIMIT:
                self._role_allows[key] = allowed
        return allowed

    def rules(self) -> list[PolicyRule]:
        return [PolicyRule(*rule) for rule in self._enforcer.get_policy()]
