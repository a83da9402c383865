"""What one operation read, gathered while fields resolve, written as audit records at its end.

Field resolvers are synchronous and cheap; they only note which record's which fields were
returned or refused. One record per resource touched and outcome comes out of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta


@dataclass
class _Touched:
    field_classes: set[str] = field(default_factory=set)
    fields_read: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)


@dataclass
class ReadLog:
    _entries: dict[tuple[str, uuid.UUID | None, uuid.UUID | None, Outcome, str], _Touched] = field(default_factory=dict)

    def note(
        self,
        resource_type: str,
        resource_id: uuid.UUID | None,
        patient_id: uuid.UUID | None,
        *,
        field_class: str | None = None,
        field_name: str | None = None,
        rule: str = "",
        outcome: Outcome = Outcome.ALLOWED,
        reason: str = "",
    ) -> None:
        entry = self._entries.setdefault((resource_type, resource_id, patient_id, outcome, reason), _Touched())
        if field_class:
            entry.field_classes.add(field_class)
        if field_name:
            entry.fields_read.add(field_name)
        if rule:
            entry.rules.add(rule)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def drain(self, institution_id: uuid.UUID, actor: Actor, request: RequestMeta) -> list[AuditRecord]:
        records = [
            AuditRecord(
                institution_id=institution_id,
                actor=actor,
                action=Action.READ,
                resource_type=resource_type,
                outcome=outcome,
                request=request,
                resource_id=resource_id,
                patient_id=patient_id,
                field_classes=frozenset(touched.field_classes),
                fields_read=frozenset(touched.fields_read),
                reason=reason,
                policy_rule="; ".join(sorted(touched.rules, key=_grants_first))[:200],
            )
            for (resource_type, resource_id, patient_id, outcome, reason), touched in self._entries.items()
        ]
        self._entries.clear()
        return records


def _grants_first(rule: str) -> tuple[bool, str]:
    """A grant the file was open under (break-glass, a partner's) leads: the column keeps 200
    characters, and the accounting of disclosures reads the grant from it."""
    return (not rule.startswith(("partner_grant ", "emergency_access ")), rule)
