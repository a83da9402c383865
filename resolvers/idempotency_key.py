"""A mutation sent again with its ``Idempotency-Key`` is not written twice (docs/portals.md, "Sending a change again").

A portal whose mutation's answer was lost (the connection dropped as the server committed: UNAVAILABLE, or a timeout)
cannot tell whether it was written. Sent with an ``Idempotency-Key`` header (a value the client makes once per change,
a UUID), the mutation's first write writes the key's row with its audit record, in the same statement or transaction
(``audit.writer.RequestKey``): the row exists exactly when the write committed; each later write names itself in it.
Sent again with the same key:

- done already: refused before it runs, CONFLICT with reason ``already_done`` and what was written
  (``extensions.resourceType``, ``resourceId``: read it rather than write again), the refusal on the trail; unless
  what it was written on has left the caller's reach since (``_out_of_reach``): then it runs again as new, answered
  by its own checks as a request about a missing record is (a write that passes them meets the key: told done);
- under way in another request: the unique key waits for it, and refuses this one's write the same way if it
  committed (this one's write is undone, and it is told and recorded as if sent after: what the other wrote, or the
  key reused if the other was another request; 409 alike); if it failed, this one writes. A resend that its own
  check refused before it wrote (a name the other had just taken) is answered so too (``done_meanwhile``);
- never written (refused, invalid, failed): it runs as the first time.

The same key with another request (document, operation name or variables) is refused, BAD_USER_INPUT
``idempotency_key_reused``: a client reusing keys by mistake would otherwise have a different change taken for done.

Only the keyed hashes of the key and of the request are kept, with what the write was as its audit record names it,
never the request or its answer (health data at rest in another table): so a resend is told, not answered again.
A key is the signed-in caller's own (another caller's same key is another key) and is kept a day at least
(``forget_expired``). A key on one mutation field per request: with two, which of them was written could not be told.
Queries are safe to send again and take no key (it is ignored), nor do anonymous mutations, which no key row could
belong to, nor sign-ins, even sent with a token (its answer, the new token, could not be told again), nor the
mutations that carry a password (``UNKEYED``), whose request's hash would keep it a day.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from tortoise.expressions import Subquery

from audit import writer
from audit.events import Action
from core.db import delete_in_batches
from core.errors import BadUserInput, CareloopError, Conflict
from core.principal import STAFF
from core.tokens import token_digest
from models import Attachment, IdempotencyKey, Patient, Ticket
from policies.scopes import ROLE_REACH, Reach
from resolvers import access, sign_in_limit
from resolvers import ticket as tickets
from resolvers.context import Context

# Visible ASCII but the double quote, as every client library's keys (UUIDs, ULIDs); the IETF draft's quoted form
# ("...", a structured field's string) is the same key.
_KEY = re.compile(r'[\x21\x23-\x7e]{1,255}|"([\x21\x23-\x7e]{1,255})"')
KEPT_FOR = timedelta(hours=24)
ALREADY_DONE = writer.ALREADY_DONE
# Mutations that take no key (it is ignored): a sign-in's answer, a token, could not be told again (found in review:
# a resend was refused, naming the first's session); the others carry a password, which the key's request hash would
# keep a day as a fast HMAC, open to guessing where argon2 is not (found in review)
UNKEYED = sign_in_limit.SIGN_IN_FIELDS | {"passwordChange", "passwordResetComplete", "patientAccountActivate",
                                          "staffCreate"}
MALFORMED, ONE_FIELD, REUSED = "idempotency_key_malformed", "idempotency_key_one_field", "idempotency_key_reused"


class AlreadyDone(Conflict):
    """A resend of a change that was written: what it wrote, to read rather than write again."""

    def __init__(self, row: IdempotencyKey) -> None:
        super().__init__("This request was done already (its Idempotency-Key came with a change that was written): "
                         "read the record rather than send the change again.", reason=ALREADY_DONE)
        self.extensions = {**(self.extensions or {}), "resourceType": row.resource_type,
                           "resourceId": None if row.resource_id is None else str(row.resource_id)}


async def admit(ctx: Context, fields: list[str], query: str, operation_name: str | None,
                variables: dict[str, Any] | None) -> writer.RequestKey | None:
    """The key of a mutation asking for ``fields`` (its root fields' names, ``schema.extensions.mutation_fields``)
    to hold while it runs; None when it has none, or none applies (an anonymous caller, a mutation of ``UNKEYED``
    fields only, whoever's token came with it). Refused: a malformed key, a key on more than one mutation field, a
    key used with another request, and a key whose change was written (recorded)."""
    sent = ctx.idempotency_key
    if sent is None or ctx.principal is None or UNKEYED.issuperset(fields):
        return None
    key = well_formed(sent)
    if len(fields) != 1:
        raise BadUserInput("A request with an Idempotency-Key asks for one mutation field.", reason=ONE_FIELD)
    request = orjson.dumps([query, operation_name, variables or {}], option=orjson.OPT_SORT_KEYS).decode()
    return await _admitted(ctx, key, request)


async def admit_upload(ctx: Context, route: str, ticket_id: uuid.UUID | None, filename: str | None,
                       content_type: str | None, data: bytes) -> writer.RequestKey | None:
    """``admit`` for an attachment's upload (app/files.py), the request being the route, the ticket, the file's name
    and type and its bytes' SHA-256."""
    sent = ctx.idempotency_key
    if sent is None or ctx.principal is None:
        return None
    key = well_formed(sent)
    request = orjson.dumps([route, None if ticket_id is None else str(ticket_id), filename, content_type,
                            hashlib.sha256(data).hexdigest()]).decode()
    return await _admitted(ctx, key, request)


def well_formed(sent: str) -> str:
    """The key the header holds (the quoted form's inside), or BAD_USER_INPUT ``idempotency_key_malformed``."""
    matched = _KEY.fullmatch(sent)
    if matched is None:
        raise BadUserInput("The Idempotency-Key header takes 1 to 255 visible ASCII characters (a UUID, say).",
                           reason=MALFORMED)
    return matched.group(1) or matched.group(0)


async def _admitted(ctx: Context, sent: str, request: str) -> writer.RequestKey:
    """The key ``sent`` held for ``request`` (its canonical text); refused when used with another request, or when
    its change was written (recorded)."""
    token_key, actor = ctx.services.master_key.token_key, ctx.actor
    key = writer.RequestKey(
        institution_id=ctx.institution_id, actor_kind=actor.kind, actor_id=actor.id,  # type: ignore[arg-type]
        key_hash=token_digest(token_key, f"idempotency-key:{sent}"),
        request_hash=token_digest(token_key, f"idempotency-request:{request}"), request_id=ctx.request.request_id)
    row = await _row(key)
    if row is None:
        return key
    if row.request_hash == key.request_hash and await _out_of_reach(ctx, row):
        key.run_again = True
        return key
    raise await _resent(ctx, key, row)


async def _out_of_reach(ctx: Context, row: IdempotencyKey) -> bool:
    """Whether what the key's change was written on has left the caller's reach since (a role revoked, a move to
    another department, the file to another, a care team left, a break-glass or a partner's grant ended, a ticket
    handed on): the resend then runs again as new, so its own checks answer it as they answer a request about a
    missing record (found in review: a nurse whose role was revoked, or who moved department, was told CONFLICT
    already_done with the id of the contact written on a file she no longer reaches, where a new request was
    refused). Should the run pass its checks after all, its write meets the key (``audit.writer.KeyTaken``) and it is
    told done: nothing is written twice."""
    principal = ctx.require_principal()
    if principal.kind == STAFF and not principal.roles:  # every role revoked: no record is in its reach
        return True
    if principal.kind == STAFF and row.resource_id is not None and row.resource_type in ("ticket", "attachment"):
        tickets_reached = tickets.reached_ids(ctx)
        found = (Ticket.filter(id=row.resource_id, id__in=Subquery(tickets_reached))
                 if row.resource_type == "ticket" else
                 Attachment.filter(id=row.resource_id, ticket_id__in=Subquery(tickets_reached)))
        # a ticket kept by ownership alone reaches no one whose roles were all revoked (found in review)
        if not ctx.decide("ticket", "read").allowed or not await found.exists():
            return True
    return row.patient_id is not None and await _file_left(ctx, row)


async def _file_left(ctx: Context, row: IdempotencyKey) -> bool:
    """Whether the file of the key's change is out of the caller's reach: the reach of the roles of theirs the policy
    allows that change (``ROLE_REACH``; all their roles when none is, or the change is no object of the policy), as a
    section's (found in review: a nurse who also works in finance reaches every file through finance). Asked only where
    those roles reach files by department, care team, grant or their own file, or where the caller holds none: a role
    reaching the institution, or one writing on any file of it without reading one (an admin's care teams and
    contracts), reaches the file still."""
    principal = ctx.require_principal()
    guard = ctx.services.guard
    writing = [role for role in principal.roles
               if guard.role_allows(role, principal.institution_id, row.resource_type, row.action)]
    counted = writing or list(principal.roles)
    if any(Reach.INSTITUTION in ROLE_REACH.get(role, frozenset({Reach.INSTITUTION})) for role in counted):
        return False
    reach = frozenset[Reach]().union(*(ROLE_REACH[role] for role in counted))
    condition = access.patient_scope(ctx).narrowed_to(reach).filter()
    return condition is None or not await Patient.filter(condition, id=row.patient_id).exists()


async def _row(key: writer.RequestKey) -> IdempotencyKey | None:
    return await IdempotencyKey.get_or_none(institution_id=key.institution_id, actor_kind=key.actor_kind,
                                            actor_id=key.actor_id, key_hash=key.key_hash)


async def _resent(ctx: Context, key: writer.RequestKey, row: IdempotencyKey) -> CareloopError:
    """The refusal of a request whose key ``row`` holds: the key reused with another request, or a resend of a
    change written (recorded, naming what was written)."""
    if row.request_hash != key.request_hash:
        return BadUserInput("This Idempotency-Key came with another request: make a new key for each change.",
                            reason=REUSED)
    await access.deny(ctx, Action(row.action), row.resource_type, row.resource_id, row.patient_id,
                      reason=ALREADY_DONE)
    return AlreadyDone(row)


def held(key: writer.RequestKey) -> contextlib.AbstractContextManager[writer.RequestKey]:
    """``key`` held for the writes the mutation makes inside the block."""
    return writer.request_key(key)


async def done_meanwhile(ctx: Context, key: writer.RequestKey) -> CareloopError | None:
    """The answer to a request that failed while another request with its key wrote: its write refused by the key
    (``audit.writer.KeyTaken``), or its own check refused it first (a name taken by the other's write, say: found in
    review), told and recorded as a resend after that one is (``_taken``), so that a resend is answered the same
    whenever it comes; None when nobody else wrote under the key (its own errors stand) or when this request did."""
    if key.taken_by is not None:
        return await _taken(ctx, key)
    if key.run_again:  # its own refusal stands: the key's change is on a file out of its reach
        return None
    row = await _row(key)
    if row is None or row.request_id == key.request_id[:64]:
        return None
    return await _resent(ctx, key, row)


async def _taken(ctx: Context, key: writer.RequestKey) -> CareloopError | None:
    """The refusal of a write refused because another request with its key committed first
    (``audit.writer.KeyTaken``; None if none was), once its transaction has rolled back: as the request is told when
    sent after that one, the key reused with another request, or a resend of the change written, recorded naming what
    was written (found in review: another change was told it was done, and the refusal named this request's own
    write, undone)."""
    record = key.taken_by
    if record is None:
        return None
    key.taken_by = None
    row = await _row(key)
    if row is None:  # forgotten since (the sweep): refused all the same, as its write was
        await access.deny(ctx, record.action, record.resource_type, record.resource_id, record.patient_id,
                          reason=ALREADY_DONE)
        return None
    return await _resent(ctx, key, row)


async def forget_expired(now: datetime | None = None) -> int:
    """Keys older than ``KEPT_FOR`` deleted (a sweep): a change is sent again within seconds or minutes."""
    cutoff = (now or datetime.now(UTC)) - KEPT_FOR
    return await delete_in_batches(IdempotencyKey.filter(created_at__lt=cutoff))
