"""The audit vocabulary: what an audit record says, and never patient data.

Records carry identifiers, field names and field classes, never values: the audit
trail is read by compliance officers who may read no health data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from core.ids import uuid7


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ARCHIVE = "archive"
    LOGIN = "login"
    LOGOUT = "logout"
    LOCKOUT = "lockout"
    EXPORT = "export"
    BREAK_GLASS = "break_glass"  # emergency access to a file outside the caller's reach
    RETENTION = "retention"  # the audit retention period changed
    ARCHIVE_TRAIL = "archive_trail"  # the oldest signed stretch of the audit chain moved to a file
    CONSENT = "consent"  # a patient's consent given or withdrawn (reason: given, withdrawn)
    GRANT = "grant"  # a partner's access to a patient granted or revoked (reason: revoked)
    KEY_ROTATION = "key_rotation"  # a new data key version for an institution
    DISCLOSE = "disclose"  # patient data handed outside by the system (a message's address to its gateway)
    TOKEN = "token"  # noqa: S105 -- an action's name: a partner client's access token issued (or refused)


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


@dataclass(frozen=True)
class Actor:
    kind: str  # "staff", "patient", "partner" (an API client), "anonymous", "system"
    id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RequestMeta:
    request_id: str = ""
    client_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class AuditRecord:
    institution_id: uuid.UUID
    actor: Actor
    action: Action
    resource_type: str
    outcome: Outcome
    request: RequestMeta = RequestMeta()
    resource_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    field_classes: frozenset[str] = frozenset()
    fields_read: frozenset[str] = frozenset()
    reason: str = ""  # a code such as "not_found" or "forbidden_field", never free text
    policy_rule: str = ""
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Several alike reads as one record: each (record, patient) read; resource_id and patient_id are then None.
    subjects: frozenset[tuple[uuid.UUID | None, uuid.UUID | None]] = frozenset()
    # The event's id, given once, when the record is made: an append tried again after a failure that may have
    # been committed (a connection lost before the answer was read) sends the same id, and the writer skips an event
    # already on the chain (audit.writer). Not an argument: ``dataclasses.replace`` makes another event, with an id
    # of its own. Not compared: two records that say the same are equal as before.
    id: uuid.UUID = field(default_factory=uuid7, init=False, compare=False)


# Reason codes of separation of duties and of staff accounts (docs/security.md, "Hardening (issue 11)").
SELF_GRANT = "self_grant"  # refused: a role, or a department widening one's reach, given to oneself
SELF_REVIEW = "self_review"  # refused: a review of a role grant one made or received
SELF_APPROVAL = "self_approval"  # refused: a campaign approved by its own author (four eyes before it is sent)
GRANTS_PATIENT_DATA = "grants_patient_data"  # allowed: a role whose rules read patient data was granted
EMAIL_UNAVAILABLE = "email_unavailable"  # refused: a new staff account's e-mail is taken, here or elsewhere
SELF_DEACTIVATION = "self_deactivation"  # refused: an admin deactivating their own account
LAST_ADMIN = "last_admin"  # refused: a change that would leave the institution without an active admin
