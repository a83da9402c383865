"""The per-request context every resolver takes, and the process-wide services behind it."""

from __future__ import annotations

import asyncio
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError

from audit.events import Actor, RequestMeta
from audit.group_commit import GroupCommit
from audit.reads import ReadLog
from core.crypto import InstitutionKeys, MasterKey
from core.errors import RateLimited, Unauthenticated
from core.passwords import Passwords
from core.principal import Principal
from core.principal_cache import PrincipalCache
from core.running import Running
from core.settings import Settings
from core.sla import SlaSettings
from core.storage import Storage
from core.wakeups import Changes, Outbox
from models.keyring import KeyRing
from policies.guard import Decision, Guard
from policies.scopes import PatientScope, TicketScope
from resolvers.loaders import Loaders

# Verifications of an institution's audit chain under way at once in a process: each reads up to
# ``audit_chain.MAX_EVENTS`` events (a second or so), and a portal walks the chain one call after the other.
VERIFYING_AT_ONCE = 2


@dataclass
class Services:
    """Built once per process by the app."""

    settings: Settings
    master_key: MasterKey
    keyring: KeyRing
    guard: Guard
    passwords: Passwords
    storage: Storage  # attachment bytes (sealed)
    audit: GroupCommit = field(default_factory=GroupCommit)  # where operations' reads are written
    outbox: Outbox = field(default_factory=Outbox)  # wakes the escalation deliverer
    messages: Outbox = field(default_factory=Outbox)  # wakes the message deliverer (bookings, campaigns)
    ticket_changes: Changes = field(default_factory=Changes)  # wakes ticket subscriptions
    visit_changes: Changes = field(default_factory=Changes)  # wakes check-in alert subscriptions
    principals: PrincipalCache = field(default_factory=PrincipalCache)  # signed-in staff and patients, kept while live
    verifications: Running = field(default_factory=lambda: Running(  # of the audit chain (resolvers/audit_chain.py)
        VERIFYING_AT_ONCE, "A verification of this institution's audit trail is under way; try again shortly."))


class _Mark:
    """One operation's: whether a write, a refusal or its reads are on the audit trail yet; and the errors to answer
    beside its data (``Context.add_error``)."""

    __slots__ = ("errors", "recorded")

    def __init__(self) -> None:
        self.recorded = False
        self.errors: list[GraphQLError] = []


# The running operation's mark, per operation rather than per Context: a WebSocket connection's operations share its
# one Context and run at once, each in a task of its own (found in review: only the first of a partner connection's
# operations that touched no patient was recorded). The tasks graphql-core starts for sibling fields copy the
# variable, so they mark the same operation.
_OPERATION: ContextVar[_Mark | None] = ContextVar("careloop_operation", default=None)


@dataclass
class Context:
    services: Services
    request: RequestMeta
    principal: Principal | None = None
    keys: InstitutionKeys | None = None
    loaders: Loaders | None = None
    reads: ReadLog = field(default_factory=ReadLog)
    connection_params: dict[str, Any] | None = None  # filled by Strawberry on WebSocket connections
    decisions: dict[tuple[str, str], Decision] = field(default_factory=dict)
    patient_scope: PatientScope | None = None
    ticket_scope: TicketScope | None = None
    patient_views: Any = None  # DataLoaders of patients in scope per set of columns, made on first use (access)
    # the grant each file this request reached was open under (break-glass, a partner's), by patient: the records
    # of its writes name it, as its reads' do (access.views fills it, access.write_record reads it)
    file_grants: dict[uuid.UUID, str] = field(default_factory=dict)
    sla: asyncio.Future[SlaSettings] | None = None  # the institution's SLA, loaded once per request
    auth_failed: bool = False  # a token was sent but is invalid, expired or revoked
    rate_limited: bool = False  # a partner client over its request budget
    authorization: str | None = None  # the credentials presented (header or WebSocket connection_init)
    idempotency_key: str | None = None  # the Idempotency-Key header as sent (resolvers/idempotency_key.py)

    @staticmethod
    def begin_operation() -> None:
        """An operation starts (``schema.extensions.PartnerGate``): nothing of it is on the trail yet."""
        _OPERATION.set(_Mark())

    @property
    def recorded(self) -> bool:
        """Whether a write, a refusal or the reads of the running operation are on the audit trail already."""
        mark = _OPERATION.get()
        return mark is not None and mark.recorded

    @recorded.setter
    def recorded(self, value: bool) -> None:
        mark = _OPERATION.get()
        if mark is not None:  # outside an operation (a sweep's, a test's resolver call) nobody asks
            mark.recorded = value

    def add_error(self, error: GraphQLError) -> None:
        """An error answered beside a field's data (which a resolver, returning or raising, cannot do): added to the
        running operation's result once it has run (``schema.extensions.AuditReads``). Outside an operation it is
        dropped: nobody is answered."""
        mark = _OPERATION.get()
        if mark is not None:
            mark.errors.append(error)

    def take_errors(self) -> list[GraphQLError]:
        """The running operation's errors added beside its data, once."""
        mark = _OPERATION.get()
        if mark is None or not mark.errors:
            return []
        errors, mark.errors = mark.errors, []
        return errors

    def require_principal(self) -> Principal:
        if self.principal is None:
            if self.rate_limited:
                raise RateLimited()
            raise Unauthenticated("Invalid or expired token." if self.auth_failed else None)
        return self.principal

    @property
    def institution_id(self) -> uuid.UUID:
        return self.require_principal().institution_id

    @property
    def actor(self) -> Actor:
        if self.principal is None:
            return Actor("anonymous")
        return Actor(self.principal.kind, self.principal.user_id, self.principal.token_id)

    def decide(self, obj: str, act: str) -> Decision:
        """One policy decision per (object, action) and request, however many fields ask."""
        key = (obj, act)
        if key not in self.decisions:
            p = self.require_principal()
            # A partner token's rights: the policy's for partners, within the token's scopes.
            self.decisions[key] = (self.services.guard.decide(p.subject, p.roles, p.institution_id, obj, act)
                                   if p.scoped(obj, act) else Decision.denied())
        return self.decisions[key]

    def missing_scope(self, obj: str, act: str) -> str | None:
        """The scope (``object:action``) a partner's token lacks where the policy grants partners the right: what
        refused it, for the error to name. None when the token's scopes are not what refuses it."""
        p = self.require_principal()
        if p.scoped(obj, act) or not self.services.guard.decide(p.subject, p.roles, p.institution_id, obj, act).allowed:
            return None
        return f"{obj}:{act}"

    def forget_decisions(self) -> None:
        """Before re-checking a long-lived operation's rights: decisions, scopes, the patient views made under them
        and the grants those found files open under are per sign-in (a subscription's next event must not show a
        file the caller no longer reaches, nor name a grant revoked since: found in review, the grants were kept
        for the connection's life)."""
        self.decisions.clear()
        self.patient_scope = self.ticket_scope = None
        self.patient_views = None
        self.file_grants.clear()
        self.sla = None

    def forget_loaded(self) -> None:
        """Before a mutation's next root field: the rows its loaders kept and the views and reach made so far were
        read before the earlier fields wrote (found in review: a patient's contacts read back after a contactCreate
        of the same request answered the list as it was before it), so the next field reads afresh."""
        self.forget_decisions()
        if self.loaders is not None:
            self.loaders = Loaders(self.loaders.institution_id)

    def release(self) -> None:
        """Once a request has answered: its loaders, views and their rows go now. The patient views' batch functions
        and the loaders ``Loaders.made`` for the caller's reach hold this context, so without this they would wait
        for the cyclic garbage collector, which then pauses the server for every request's leftovers at once."""
        self.forget_decisions()
        self.loaders = None

    def require_keys(self) -> InstitutionKeys:
        if self.keys is None:
            raise Unauthenticated()
        return self.keys

    def require_loaders(self) -> Loaders:
        if self.loaders is None:
            raise Unauthenticated()
        return self.loaders
