"""What the signed-in principal may do, for a UI to shape its screens.

Nothing here restates the policy: the (object, action) pairs are those the reviewed policy names
(``Guard.rules``), and each answer is the decision the resolvers themselves take (``ctx.decide``:
the enforcer's, narrowed by a partner token's scopes). A patient field class is readable when the
row scope (``access.patient_scope``) gives it some reach, as it does when a file is read, and
updatable when it is readable and ``patient.<class>: update`` is allowed, as ``patientUpdate``
checks. All in memory: no SQL statement, one memoized decision per pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.fields import PATIENT_CLASSES
from policies.guard import Guard
from resolvers import access
from resolvers.context import Context

_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {}  # policy digest -> the (object, action) pairs it names


@dataclass(frozen=True)
class FieldClassPermission:
    field_class: str
    read: bool
    update: bool


@dataclass(frozen=True)
class Permissions:
    allowed: tuple[str, ...]  # "object:action", sorted
    patient_fields: tuple[FieldClassPermission, ...]


def policy_pairs(guard: Guard) -> tuple[tuple[str, str], ...]:
    """Every (object, action) the policy has a rule for, allow or deny, sorted; computed once per policy."""
    pairs = _PAIRS.get(guard.digest)
    if pairs is None:
        pairs = _PAIRS[guard.digest] = tuple(sorted({(rule.obj, rule.act) for rule in guard.rules()}))
    return pairs


def name(obj: str, act: str) -> str:
    """The pair's name, as a partner token's scopes spell it (``ticket:update``)."""
    return f"{obj}:{act}"


def of(ctx: Context) -> Permissions:
    ctx.require_principal()
    allowed = tuple(name(obj, act) for obj, act in policy_pairs(ctx.services.guard) if ctx.decide(obj, act).allowed)
    readable = access.patient_scope(ctx).reach_by_class
    classes = tuple(
        FieldClassPermission(cls, cls in readable, cls in readable and ctx.decide(f"patient.{cls}", "update").allowed)
        for cls in PATIENT_CLASSES)
    return Permissions(allowed, classes)
