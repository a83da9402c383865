"""The guard's role links follow each sign-in's roles, also when they change back and forth."""

from __future__ import annotations

import uuid
from pathlib import Path

from policies.guard import POLICY_PATH, Guard


def test_a_users_role_links_follow_their_roles_at_each_sign_in() -> None:
    guard, institution, subject = Guard(), uuid.uuid4(), f"staff:{uuid.uuid4()}"

    def may_create_contracts(roles: frozenset[str]) -> bool:
        guard._link_roles(subject, institution, roles)
        return guard.decide(subject, roles, institution, "contract", "create").allowed

    nurse, finance = frozenset({"nurse"}), frozenset({"finance"})
    assert not may_create_contracts(nurse)
    assert not may_create_contracts(nurse)  # the same roles again: the links are left as they are
    assert may_create_contracts(finance)
    assert guard._enforcer.get_roles_for_user_in_domain(subject, str(institution)) == ["finance"]
    guard._link_roles(subject, institution, nurse)  # back again: the finance link goes
    assert guard._enforcer.get_roles_for_user_in_domain(subject, str(institution)) == ["nurse"]
    guard._link_roles(subject, uuid.uuid4(), finance)  # another institution's links are its own
    assert guard._enforcer.get_roles_for_user_in_domain(subject, str(institution)) == ["nurse"]


def test_a_decision_is_made_for_the_roles_asked_whatever_the_user_linked_last() -> None:
    """Two requests of one user, signed in before and after a role change, interleave: the older one's decision
    is made for its own roles, not for the links the newer one set, and is kept for everyone with those roles."""
    guard, institution, subject = Guard(), uuid.uuid4(), f"staff:{uuid.uuid4()}"
    nurse, finance = frozenset({"nurse"}), frozenset({"finance"})
    guard._link_roles(subject, institution, nurse)  # the older request signs in as a nurse
    guard._link_roles(subject, institution, finance)  # the newer one, after finance was granted instead
    assert not guard.decide(subject, nurse, institution, "contract", "create").allowed  # the older one decides
    other_nurse = f"staff:{uuid.uuid4()}"
    guard._link_roles(other_nurse, institution, nurse)
    assert not guard.decide(other_nurse, nurse, institution, "contract", "create").allowed
    assert guard.decide(subject, finance, institution, "contract", "create").allowed


def test_a_principal_decided_as_its_one_role_gets_no_link() -> None:
    """A patient or a partner client is its role's subject ("patient", "partner"): no link piles up for it."""
    guard, institution = Guard(), uuid.uuid4()
    assert guard.decide("patient", frozenset({"patient"}), institution, "patient.contact", "read").allowed
    assert not guard.decide("patient", frozenset({"patient"}), institution, "contract", "create").allowed
    assert guard._enforcer.get_roles_for_user_in_domain("patient", str(institution)) == []


def test_institutions_no_rule_names_share_decisions_and_a_named_one_keeps_its_own(tmp_path: Path) -> None:
    """Every institution reads the same ``*`` rules, so a decision made in one is kept for all (each new
    institution no longer walks the rules again); one a rule names is decided, and kept, on its own."""
    named, other, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + f"p, nurse, {named}, contract, create, allow\n")
    for first in (named, other):  # the order the two are first asked in changes nothing
        guard = Guard(policy_path=policy)
        for institution in (first, other if first == named else named, third):
            subject = f"staff:{uuid.uuid4()}"
            allowed = institution == named
            assert guard.decide(subject, NURSE, institution, "contract", "create").allowed is allowed
            assert guard.role_allows("nurse", institution, "contract", "create") is allowed
        assert len(guard._decisions) == 2  # the named institution's, and one for every other


NURSE = frozenset({"nurse"})


def test_an_institution_a_role_link_of_the_policy_names_keeps_its_own_decisions(tmp_path: Path) -> None:
    """Found in review: only the ``p`` rules were read for the institutions they name; a ``g`` line of the policy
    file (a role made to hold another in one institution) was not, so a decision made there was kept for every
    other institution, and the role's holders elsewhere were allowed what only that institution grants."""
    named, other = uuid.uuid4(), uuid.uuid4()
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY_PATH.read_text() + f"g, nurse, finance, {named}\n")  # its nurses also do finance
    for first in (named, other):
        guard = Guard(policy_path=policy)
        for institution in (first, other if first == named else named):
            subject = f"staff:{uuid.uuid4()}"
            allowed = institution == named
            assert guard.decide(subject, NURSE, institution, "contract", "create").allowed is allowed
            assert guard.role_allows("nurse", institution, "contract", "create") is allowed
