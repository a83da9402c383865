"""The policy in force is on the audit trail: a change of ``policy.csv`` or ``model.conf`` is an event.

At start-up the service compares the SHA-256 of the policy it loaded with the last one recorded on
each institution's chain, and appends a ``policy`` event where it differs (the first start too).
Workers starting together may each record the same change once; the trail stays correct.

Where the institution requires a second factor of the roles that read clinical data, a changed policy may have
made a role read them: its holders' sessions opened without a code end with the change, as a grant of such a role
ends them (``resolvers.staff``), each on the trail as an update of the account's ``sessions``.
"""

from __future__ import annotations

import logging
import uuid

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from models import AuditEvent, Institution
from resolvers import session as sessions
from resolvers.context import Services

RESOURCE = "policy"
LOADED = "policy_loaded"
STARTUP = RequestMeta(request_id="startup", user_agent="careloop")
log = logging.getLogger(__name__)
LAST_RECORDED = (
    "SELECT event.institution_id, event.fields_read FROM audit_event event JOIN "
    "(SELECT institution_id, MAX(seq) AS seq FROM audit_event WHERE resource_type = 'policy' "
    "GROUP BY institution_id) latest ON event.institution_id = latest.institution_id AND event.seq = latest.seq")


async def record_change(services: Services) -> int:
    """Append a policy event to every institution whose last recorded policy differs, ending the codeless sessions
    the new policy lets read clinical data where a second factor is required; returns how many institutions.

    The last recorded policies are read in one statement, whatever the number of institutions: found in review,
    each worker's start read them institution by institution (two statements each, the last walking the chain
    backward to its last policy event), seconds with thousands of institutions. Only the institutions that need
    an event cost statements of their own.

    An institution whose chain refuses the event (damaged by someone with the database owner's rights: its head
    deleted or moved back) is logged and passed over: found in review, one such chain kept the service from starting
    for every institution. ``careloop audit verify`` names that chain; its writes fail until it is repaired, and the
    next start records the policy there."""
    digest = f"sha256:{services.guard.digest}"
    await writer.seal_all()  # a policy event another worker just posted is read, not recorded twice
    last = await last_recorded()
    recorded = 0
    for institution in await Institution.all().only("id", "totp_required"):
        if last.get(institution.id) == digest:
            continue
        try:
            await _record_in(services, institution, digest)
        except (IntegrityError, writer.ChainHeadMissing) as error:
            log.error("the policy in force was not recorded on the trail of institution %s: its chain refused the "
                      "event (%s); run careloop audit verify", institution.id, writer.failure(error))
            continue
        recorded += 1
    return recorded


async def last_recorded() -> dict[uuid.UUID, str]:
    """The digest of the policy last recorded on each institution's trail (institutions with none are absent).

    The policy events alone are indexed (``audit_event_policy``, migration 0040), so this reads a few rows per
    institution, not its trail; the literal ``'policy'`` (not a parameter) lets both databases match the partial
    index's condition."""
    rows = await AuditEvent._meta.db.execute_query_dict(LAST_RECORDED)
    return {uuid.UUID(str(row["institution_id"])): row["fields_read"] for row in rows}


async def _record_in(services: Services, institution: Institution, digest: str) -> None:
    """Append the policy event to the institution's trail, with the ends of the sessions it ends."""
    institution_id = institution.id
    async with in_transaction():
        ended: list[uuid.UUID] = []
        if institution.totp_required:  # found in review: a policy change left those sessions running
            ended = await sessions.end_sessions_without_a_factor(services.guard, institution_id)
        await writer.append([AuditRecord(institution_id, Actor("system"), Action.UPDATE, RESOURCE,
                                         Outcome.ALLOWED, STARTUP, fields_read=frozenset({digest}), reason=LOADED),
                             *(AuditRecord(institution_id, Actor("system"), Action.UPDATE, "staff",
                                           Outcome.ALLOWED, STARTUP, resource_id=staff_id,
                                           fields_read=frozenset({"sessions"}), reason=LOADED)
                               for staff_id in ended)])
