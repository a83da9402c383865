"""Row scopes: which patients a principal reaches, applied inside the SQL query.

A role reaches the whole institution, its departments, or its care team and departments.
A field class is readable on a row when some role that the policy allows to read the
class reaches that row. Rows no role reaches are not fetched at all, so they are
indistinguishable from missing ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tortoise.expressions import Case, Q, Subquery, When
from tortoise.queryset import QuerySet

from models import CareTeamMember, EmergencyAccess, PartnerConsent, PartnerGrant
from policies.fields import PATIENT_CLASSES
from policies.guard import Decision, Guard


class Reach(StrEnum):
    INSTITUTION = "institution"
    DEPARTMENT = "department"
    CARE_TEAM = "care_team"
    EMERGENCY = "emergency"  # break-glass: files opened with a stated reason, for a few hours
    GRANT = "grant"  # a partner: patients granted to it while their consent to share stands
    SELF = "self"  # a patient: their own file


# The row checks as columns of the query that loads the rows (PatientScope.check_columns): "1" or "0".
IN_CARE_TEAM = "scope_in_care_team"
IN_EMERGENCY = "scope_in_emergency"
# What PatientScope.values names: the values its SQL binds.
SCOPE_VALUES = ("institution_id", "staff_id", "department_ids", "now", "partner_id", "patient_id")


ROLE_REACH: dict[str, frozenset[Reach]] = {
    "front_desk": frozenset({Reach.INSTITUTION}),
    "support_agent": frozenset({Reach.INSTITUTION}),
    "finance": frozenset({Reach.INSTITUTION}),  # contracts of every client; reads no patient field class
    "compliance_officer": frozenset({Reach.INSTITUTION}),  # identity only: finds whom a question is about
    "nurse": frozenset({Reach.CARE_TEAM, Reach.DEPARTMENT, Reach.EMERGENCY}),
    "doctor": frozenset({Reach.CARE_TEAM, Reach.DEPARTMENT, Reach.EMERGENCY}),
    "department_head": frozenset({Reach.DEPARTMENT, Reach.EMERGENCY}),
    "partner": frozenset({Reach.GRANT}),
    "patient": frozenset({Reach.SELF}),
}


@dataclass(frozen=True)
class PatientScope:
    institution_id: uuid.UUID
    staff_id: uuid.UUID
    department_ids: frozenset[uuid.UUID]
    reach_by_class: dict[str, frozenset[Reach]]
    rules: dict[str, str]  # class -> the policy rule that allows reading it
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # emergency and partner grants in force
    partner_id: uuid.UUID | None = None  # a partner's principal
    patient_id: uuid.UUID | None = None  # a patient's principal: their own file
    _classes: dict[tuple[bool, ...], tuple[frozenset[str], frozenset[Reach]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def reach(self) -> frozenset[Reach]:
        return frozenset().union(*self.reach_by_class.values())

    @property
    def uses_care_team(self) -> bool:
        """Whether some class is reached through the care team: rows then need a membership check,
        even when another role reaches every row (a nurse who also works the front desk)."""
        return Reach.CARE_TEAM in self.reach

    @property
    def uses_emergency(self) -> bool:
        return Reach.EMERGENCY in self.reach

    def care_team(self) -> QuerySet[CareTeamMember]:
        return CareTeamMember.filter(institution_id=self.institution_id, staff_id=self.staff_id)

    def check_columns(self) -> dict[str, Case]:
        """What ``classes_for`` needs to know of each row beyond its columns, as columns of the query that loads
        the rows, from the same subqueries as ``filter``: whether the caller's care team holds the patient and
        whether a break-glass grant of the caller's opens the file. A page and its checks in one statement."""
        columns = {}
        if self.uses_care_team:
            columns[IN_CARE_TEAM] = _flag(Q(id__in=Subquery(self.care_team().values("patient_id"))))
        if self.uses_emergency:
            columns[IN_EMERGENCY] = _flag(Q(id__in=Subquery(self.emergency_grants().values("patient_id"))))
        return columns

    def emergency_grants(self) -> QuerySet[EmergencyAccess]:
        return EmergencyAccess.filter(institution_id=self.institution_id, staff_id=self.staff_id,
                                      expires_at__gt=self.now)

    @property
    def uses_grants(self) -> bool:
        return Reach.GRANT in self.reach

    def partner_grants(self) -> QuerySet[PartnerGrant]:
        """The partner's grants in force: not revoked, not expired, and the patient's consent to share
        with the partner stands (a withdrawn consent closes the grant on the next request)."""
        consenting = PartnerConsent.filter(institution_id=self.institution_id, partner_id=self.partner_id,
                                           granted=True)
        return PartnerGrant.filter(institution_id=self.institution_id, partner_id=self.partner_id, revoked_at=None,
                                   expires_at__gt=self.now, patient_id__in=Subquery(consenting.values("patient_id")))

    @property
    def reaches_anyone(self) -> bool:
        """Whether ``filter`` has a condition (it is None when no reach of the principal can hold a patient)."""
        reach = self.reach
        return bool(reach & {Reach.INSTITUTION, Reach.CARE_TEAM, Reach.EMERGENCY}
                    or (Reach.DEPARTMENT in reach and self.department_ids)
                    or (Reach.GRANT in reach and self.partner_id is not None)
                    or (Reach.SELF in reach and self.patient_id is not None))

    def values(self) -> dict[str, Any]:
        """The values the scope's SQL binds, by ``SCOPE_VALUES``; the rest (its reach) shapes the text
        (``core.statements``)."""
        return dict(zip(SCOPE_VALUES, (self.institution_id, self.staff_id, sorted(self.department_ids), self.now,
                                       self.partner_id, self.patient_id), strict=True))

    def with_values(self, department_ids: list[uuid.UUID], **values: Any) -> PatientScope:
        """The same scope over other ``values`` (as ``values`` names them)."""
        return replace(self, department_ids=frozenset(department_ids), **values)

    def filter(self) -> Q | None:
        """The SQL condition for reachable patients, or None when the principal reaches none."""
        if not self.reaches_anyone:
            return None
        tenant = Q(institution_id=self.institution_id)
        if Reach.INSTITUTION in self.reach:
            return tenant
        parts: list[Q] = []
        if Reach.DEPARTMENT in self.reach and self.department_ids:
            parts.append(Q(department_id__in=sorted(self.department_ids)))
        if Reach.CARE_TEAM in self.reach:
            parts.append(Q(id__in=Subquery(self.care_team().values("patient_id"))))
        if Reach.EMERGENCY in self.reach:
            parts.append(Q(id__in=Subquery(self.emergency_grants().values("patient_id"))))
        if Reach.GRANT in self.reach and self.partner_id is not None:
            parts.append(Q(id__in=Subquery(self.partner_grants().values("patient_id"))))
        if Reach.SELF in self.reach and self.patient_id is not None:
            parts.append(Q(id=self.patient_id))
        return tenant & Q(*parts, join_type=Q.OR)

    def filter_for(self, field_class: str) -> Q | None:
        """``filter`` narrowed to the patients whose ``field_class`` the principal reads (that class's reach alone),
        or None when there are none: a query that compares or counts a class's values (a phone search, a diagnosis
        code) answers for those files only, not for every file some other class reaches."""
        return replace(self, reach_by_class={field_class: self.reach_by_class.get(field_class, frozenset())}).filter()

    def classes_for(self, department_id: uuid.UUID | None, in_care_team: bool, in_emergency: bool = False,
                    in_grant: bool = False, patient_id: uuid.UUID | None = None) -> frozenset[str]:
        return self.reached_for(department_id, in_care_team, in_emergency, in_grant, patient_id)[0]

    def reached_for(self, department_id: uuid.UUID | None, in_care_team: bool, in_emergency: bool = False,
                    in_grant: bool = False, patient_id: uuid.UUID | None = None,
                    ) -> tuple[frozenset[str], frozenset[Reach]]:
        """The field classes the principal reads on a row, and the reaches that hold for it (INSTITUTION always): a
        role reaches the row when its reach meets these (a section's check: ``access.section_reached``)."""
        in_department = department_id is not None and department_id in self.department_ids
        is_self = patient_id is not None and patient_id == self.patient_id
        key = (in_department, in_care_team, in_emergency, in_grant, is_self)
        found = self._classes.get(key)
        if found is None:  # a page's patients share a few of these 32 answers: each is worked out once
            found = self._classes[key] = self._reached_classes(*key)
        return found

    def _reached_classes(self, in_department: bool, in_care_team: bool, in_emergency: bool, in_grant: bool,
                         is_self: bool) -> tuple[frozenset[str], frozenset[Reach]]:
        reached = {Reach.INSTITUTION}
        for reach, holds in ((Reach.DEPARTMENT, in_department), (Reach.CARE_TEAM, in_care_team),
                             (Reach.EMERGENCY, in_emergency), (Reach.GRANT, in_grant), (Reach.SELF, is_self)):
            if holds:
                reached.add(reach)
        return (frozenset(cls for cls, reach in self.reach_by_class.items() if reach & reached),
                frozenset(reached))

    def narrowed_to(self, reach: frozenset[Reach]) -> PatientScope:
        """The scope of the files that the roles whose reach is ``reach`` reach (each class's reach met with it),
        for a record or section read under its own permission: itself when ``reach`` holds every file it reaches
        (an account of one role)."""
        if reach >= self.reach:
            return self
        return replace(self, reach_by_class={cls: found & reach for cls, found in self.reach_by_class.items()
                                             if found & reach})


def _flag(condition: Q) -> Case:
    return Case(When(condition, then="1"), default="0")


def patient_scope(
    guard: Guard,
    decide: Callable[[str, str], Decision],
    *,
    institution_id: uuid.UUID,
    staff_id: uuid.UUID,
    roles: frozenset[str],
    department_ids: frozenset[uuid.UUID],
    partner_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> PatientScope:
    """Build the scope from one user-level decision per class (deny overrides) and the roles' reach."""
    reach_by_class: dict[str, frozenset[Reach]] = {}
    rules: dict[str, str] = {}
    for cls in PATIENT_CLASSES:
        obj = f"patient.{cls}"
        decision = decide(obj, "read")
        if not decision.allowed:
            continue
        granting = [role for role in roles if guard.role_allows(role, institution_id, obj, "read")]
        reach = frozenset().union(*(ROLE_REACH.get(role, frozenset()) for role in granting))
        if reach:
            reach_by_class[cls] = reach
            rules[cls] = decision.rule
    return PatientScope(institution_id, staff_id, department_ids, reach_by_class, rules,
                        partner_id=partner_id, patient_id=patient_id)


# -- tickets -------------------------------------------------------------------------------

# Support agents work the whole institution's queue and department heads their departments';
# everyone who may read tickets reaches the ones they own (received, or were handed) or are
# assigned to work on.
TICKET_REACH: dict[str, frozenset[Reach]] = {
    "support_agent": frozenset({Reach.INSTITUTION}),
    "department_head": frozenset({Reach.DEPARTMENT}),
}


@dataclass(frozen=True)
class TicketScope:
    institution_id: uuid.UUID
    staff_id: uuid.UUID
    department_ids: frozenset[uuid.UUID]
    reach: frozenset[Reach]

    def filter(self) -> Q:
        tenant = Q(institution_id=self.institution_id)
        if Reach.INSTITUTION in self.reach:
            return tenant
        parts = [Q(owner_id=self.staff_id), Q(assignee_id=self.staff_id)]
        if Reach.DEPARTMENT in self.reach and self.department_ids:
            parts.append(Q(department_id__in=sorted(self.department_ids)))
        return tenant & Q(*parts, join_type=Q.OR)

    def reaches(self, institution_id: uuid.UUID, owner_id: uuid.UUID | None, assignee_id: uuid.UUID | None,
                department_id: uuid.UUID | None) -> bool:
        """``filter`` evaluated on a loaded ticket's columns (the two must agree)."""
        return institution_id == self.institution_id and (
            self.staff_id in (owner_id, assignee_id) or self.reaches_department(department_id))

    def reaches_department(self, department_id: uuid.UUID | None) -> bool:
        return Reach.INSTITUTION in self.reach or (
            Reach.DEPARTMENT in self.reach and department_id is not None and department_id in self.department_ids)


def ticket_scope(
    guard: Guard,
    *,
    institution_id: uuid.UUID,
    staff_id: uuid.UUID,
    roles: frozenset[str],
    department_ids: frozenset[uuid.UUID],
) -> TicketScope:
    """Reach of the roles that may read tickets (a role without ``ticket: read`` adds nothing)."""
    readers = [role for role in roles if guard.role_allows(role, institution_id, "ticket", "read")]
    reach = frozenset().union(*(TICKET_REACH.get(role, frozenset()) for role in readers))
    return TicketScope(institution_id, staff_id, department_ids, reach)
