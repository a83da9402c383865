"""The policy in force is on the audit trail: a change of ``policy.csv`` or ``model.conf`` is an event.

At start-up the service compares the SHA-256 of the policy it loaded with the last one recorded on
each institution's chain, and appends a ``policy`` event where it differs (the first start too).
Workers starting together may each record the same change once; the trail stays correct.
"""

from __future__ import annotations

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from models import AuditEvent, Institution
from resolvers.context import Services

RESOURCE = "policy"


async def record_change(services: Services) -> int:
    """Append a policy event to every institution whose last recorded policy differs; returns how many."""
    digest = f"sha256:{services.guard.digest}"
    recorded = 0
    for institution in await Institution.all().only("id"):
        institution_id = institution.id
        await writer.seal(institution_id)
        last = await AuditEvent.filter(institution_id=institution_id, resource_type=RESOURCE).order_by(
            "-seq").first().values_list("fields_read", flat=True)
        if last == digest:
            continue
        await writer.append([AuditRecord(institution_id, Actor("system"), Action.UPDATE, RESOURCE, Outcome.ALLOWED,
                                         RequestMeta(request_id="startup", user_agent="careloop"),
                                         fields_read=frozenset({digest}), reason="policy_loaded")])
        recorded += 1
    return recorded
