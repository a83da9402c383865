"""What one operation read, gathered while fields resolve, written as audit records at its end.

Field resolvers are synchronous and cheap; they only note which record's which fields were
returned or refused. One record per resource touched and outcome comes out of it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta

# The accesses a record's ``policy_rule`` names beside the policy's lines: the grant a file was open under, as
# ``<kind> <id>`` (``grant_line``): a partner's grant (the accounting of disclosures reads it back, ``granted``), a
# break-glass access. Made, read and put first here only (found in review: the format was written in
# resolvers.access, parsed by a regex in resolvers.disclosure and known again in resolvers.audit_words).
PARTNER_GRANT, EMERGENCY_ACCESS = "partner_grant", "emergency_access"
GRANT_KINDS = (PARTNER_GRANT, EMERGENCY_ACCESS)
_GRANT_IDS = {kind: re.compile(rf"{kind} ([0-9a-f-]{{36}})") for kind in GRANT_KINDS}


def grant_line(kind: str, grant_id: uuid.UUID) -> str:
    """The line naming the grant of ``kind`` a file was open under: ``partner_grant <id>``."""
    if kind not in GRANT_KINDS:
        raise ValueError(f"not a kind of grant: {kind}")
    return f"{kind} {grant_id}"


def granted(rule: str, kind: str) -> uuid.UUID | None:
    """The id of the grant of ``kind`` that ``rule`` (a record's ``policy_rule``) names, or None."""
    found = _GRANT_IDS[kind].search(rule)
    return uuid.UUID(found.group(1)) if found else None


@dataclass
class _Touched:
    field_classes: set[str] = field(default_factory=set)
    fields_read: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)


_Key = tuple[str, uuid.UUID | None, uuid.UUID | None, Outcome, str]


@dataclass
class ReadLog:
    _entries: dict[_Key, _Touched] = field(default_factory=dict)
    # Reads already on the trail: a write that returns its record appends the read of what it returns with
    # itself (``mark_recorded``), and the fields' own notes then add nothing.
    _recorded: dict[_Key, _Touched] = field(default_factory=dict)

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
        key = (resource_type, resource_id, patient_id, outcome, reason)
        if self._recorded and _covers(self._recorded.get(key), field_class, field_name, rule):
            return
        entry = self._entries.get(key)
        if entry is None:  # not setdefault: a page notes ~700 times, nearly always on a key already there
            entry = self._entries[key] = _Touched()
        if field_class:
            entry.field_classes.add(field_class)
        if field_name:
            entry.fields_read.add(field_name)
        if rule:
            entry.rules.add(rule)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def mark_recorded(self, other: ReadLog) -> None:
        """What ``other`` noted is on the trail now (a write appended its ``records`` with itself): the same
        notes made here afterwards, as the fields it returned resolve, add nothing."""
        for key, touched in other._entries.items():
            kept = self._recorded.setdefault(key, _Touched())
            kept.field_classes |= touched.field_classes
            kept.fields_read |= touched.fields_read
            kept.rules |= touched.rules

    def drain(self, institution_id: uuid.UUID, actor: Actor, request: RequestMeta) -> list[AuditRecord]:
        """One record per kind of read: the records read alike (same type, outcome, reason, field classes,
        fields and rules, such as a page of patients) share one, which lists them as its subjects; a record
        read alone keeps its own, named by resource_id and patient_id."""
        records = self.records(institution_id, actor, request)
        self._entries.clear()
        return records

    def records(self, institution_id: uuid.UUID, actor: Actor, request: RequestMeta) -> list[AuditRecord]:
        """The records ``drain`` writes, leaving the log as it is. A read that adds to one already recorded
        (``mark_recorded``) is written whole, what was recorded included, so that each record stands alone: the
        grant a file was open under, noted once, is on every record of it."""
        alike: dict[tuple[str, Outcome, str, frozenset[str], frozenset[str], str],
                    list[tuple[uuid.UUID | None, uuid.UUID | None]]] = {}
        for key, touched in self._entries.items():
            resource_type, resource_id, patient_id, outcome, reason = key
            recorded = self._recorded.get(key) if self._recorded else None
            if recorded is not None:
                touched = _Touched(touched.field_classes | recorded.field_classes,
                                   touched.fields_read | recorded.fields_read, touched.rules | recorded.rules)
            rule = rule_text(touched.rules)
            kind = (resource_type, outcome, reason, frozenset(touched.field_classes),
                    frozenset(touched.fields_read), rule)
            alike.setdefault(kind, []).append((resource_id, patient_id))
        return [_record(institution_id, actor, request, kind, subjects) for kind, subjects in alike.items()]


def _covers(recorded: _Touched | None, field_class: str | None, field_name: str | None, rule: str) -> bool:
    return recorded is not None and (not field_class or field_class in recorded.field_classes) and (
        not field_name or field_name in recorded.fields_read) and (not rule or rule in recorded.rules)


def _record(institution_id: uuid.UUID, actor: Actor, request: RequestMeta,
            kind: tuple[str, Outcome, str, frozenset[str], frozenset[str], str],
            subjects: list[tuple[uuid.UUID | None, uuid.UUID | None]]) -> AuditRecord:
    resource_type, outcome, reason, field_classes, fields_read, rule = kind
    (resource_id, patient_id), many = subjects[0], len(subjects) > 1
    return AuditRecord(
        institution_id=institution_id, actor=actor, action=Action.READ, resource_type=resource_type,
        outcome=outcome, request=request, resource_id=None if many else resource_id,
        patient_id=None if many else patient_id, field_classes=field_classes, fields_read=fields_read,
        reason=reason, policy_rule=rule, subjects=frozenset(subjects) if many else frozenset(),
    )


def rule_text(rules: Iterable[str]) -> str:
    """The rules a record names, as its ``policy_rule`` holds them: a grant first, 200 characters at most."""
    return "; ".join(sorted((r for r in rules if r), key=_grants_first))[:200]


def _grants_first(rule: str) -> tuple[bool, str]:
    """A grant the file was open under (break-glass, a partner's) leads: the column keeps 200
    characters, and the accounting of disclosures reads the grant from it."""
    return (not rule.startswith(tuple(f"{kind} " for kind in GRANT_KINDS)), rule)
