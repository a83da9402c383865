"""The plan entries of the audit trail's pages (bench W4: the root ``auditEvents``, and a partner's
``partnerAccessLog``, both an ``AuditEventConnection``): every field of an event is an attribute set when the page
is read (``AuditEvent.of``), so the whole page is completed from the plan; the read itself was noted by the root
resolver, as on the generic path."""

from __future__ import annotations

from schema.audit_event import AuditEvent, AuditEventConnection, AuditEventEdge
from schema.compiled.plan import Compiled, readers_of

TYPES: dict[str, Compiled] = {
    **readers_of(AuditEvent),
    **readers_of(AuditEventEdge),
    **readers_of(AuditEventConnection),
}
ROOTS: dict[type, str] = {AuditEventConnection: "AuditEventConnection"}
