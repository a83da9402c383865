"""Files attached to tickets: checked, sealed with the institution's key, stored, audited.

Limits: a size cap (``Limits.max_attachment_bytes``), a per-ticket count, and an allow-list of
content types whose first bytes must match what the client declared (a "PDF" that is not one is
refused). The bytes are sealed with AES-GCM bound to the attachment's id before they reach the
storage, and their SHA-256 (of the plaintext) is checked again on the way out.

Downloads also go through short-lived signed links (``signed_path``), so that a browser's ``<img src>`` or
``<a href>`` works without an Authorization header: an HMAC, under a key derived from the master key, over
the attachment, the caller's session and an expiry. Following one signs the session's staff member in
again (a revoked or expired session, or a deactivated account, stops the link), checks their rights afresh
and audits the download in their name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.crypto import DecryptionError, derive_key, field_aad
from core.errors import BadUserInput, CareloopError, Forbidden
from core.ids import uuid7
from core.principal import STAFF
from core.validation import Problems, clean_text
from models import Attachment, Session
from resolvers import access, session
from resolvers import ticket as tickets
from resolvers.context import Context
from resolvers.loaders import Loaders

LINK_SECONDS = 300  # how long a signed download link works
LINK_REFUSED = "The link is invalid or has expired: ask for a new one (downloadUrl)."
ITEM_COUNT = "item_count"  # refused: the ticket holds its most attachments (extensions.reason, audit reason)

# content type -> accepted leading bytes (None: text, checked as UTF-8 without NULs)
CONTENT_TYPES: dict[str, tuple[bytes, ...] | None] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
    "audio/mpeg": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "audio/amr": (b"#!AMR",),  # WeChat voice messages
    "text/plain": None,
}


class PayloadTooLarge(CareloopError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The file is larger than allowed."


@dataclass(frozen=True)
class AttachmentView:
    row: Attachment
    ticket: tickets.TicketView


async def upload(ctx: Context, ticket_id: uuid.UUID | None, filename: str | None, content_type: str | None,
                 data: bytes) -> AttachmentView:
    decision = await access.authorize(ctx, "ticket", "update", action=Action.UPDATE, resource_type="ticket",
                                      resource_id=ticket_id)
    name, kind = _upload_shape(filename, content_type, data, ctx.services.settings.limits.max_attachment_bytes)
    attachment_id, key = uuid7(), uuid.uuid4().hex
    most = ctx.services.settings.limits.max_attachments_per_ticket
    found = await tickets.find(ctx, ticket_id, Action.UPDATE)  # before the transaction: see tickets.find
    async with access.refusals_recorded(ctx), in_transaction():
        ticket = await tickets.lock(ctx, found)
        # counted under the ticket's lock; the refusal recorded once the transaction is rolled back (found in review:
        # it was not recorded)
        if await Attachment.filter(ticket_id=ticket.id).count() >= most:
            raise access.Refusal(BadUserInput(f"file: a ticket holds at most {most} attachments.", field="file",
                                              reason=ITEM_COUNT), Action.UPDATE, "ticket", found.id, found.patient_id)
        sealed = ctx.require_keys().seal_bytes(data, _aad(ctx, attachment_id))
        # Bytes first: a failure after this leaves an unreferenced file, never a row without its bytes.
        await ctx.services.storage.put(key, sealed)
        row = await Attachment.create(
            id=attachment_id, institution_id=ctx.institution_id, ticket_id=ticket.id,
            filename=access.seal(ctx, "attachment", "filename", attachment_id, name), content_type=kind,
            size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_key=key,
            uploaded_by_id=ctx.actor.id)
        await tickets.add_event(ctx, ticket, "attachment")
        await writer.append([access.write_record(ctx, Action.CREATE, "attachment", attachment_id,
                                                 patient_id=ticket.patient_id,
                                                 fields=frozenset({"filename", "content"}), decision=decision)])
    return AttachmentView(row, tickets.TicketView(ticket))


async def download(ctx: Context, attachment_id: uuid.UUID | None) -> tuple[AttachmentView, str, bytes]:
    """An attachment of a ticket in the caller's reach, with its name and bytes; recorded as a read."""
    await access.authorize(ctx, "ticket", "read", action=Action.READ, resource_type="attachment",
                           resource_id=attachment_id)
    # The ticket's reach is in the lookup: an attachment out of reach costs what a missing one does.
    row = None if attachment_id is None else await Attachment.get_or_none(
        id=attachment_id, institution_id=ctx.institution_id, ticket_id__in=Subquery(tickets.reached_ids(ctx)))
    ticket = None
    if row is not None:
        ticket = await tickets.find_or_none(ctx, row.ticket_id)
    if row is None or ticket is None:
        raise await access.not_found(ctx, Action.READ, "attachment", attachment_id)
    try:  # bytes of another attachment (sealed to its id) do not open; bytes gone are not there
        data: bytes | None = ctx.require_keys().open_bytes(await ctx.services.storage.get(row.storage_key),
                                                           _aad(ctx, row.id))
    except (OSError, DecryptionError):
        data = None
    if data is None or hashlib.sha256(data).hexdigest() != row.sha256:
        raise CareloopError("The stored file does not open or does not match its checksum.")
    name = access.open_sealed(ctx, "attachment", "filename", row.id, row.filename)
    for field in ("content", "filename"):
        ctx.reads.note("attachment", row.id, ticket.patient_id, field_class="ticket", field_name=field,
                       rule=ctx.decide("ticket", "read").rule)
    await access.flush_reads(ctx)  # durable before a byte leaves
    return AttachmentView(row, tickets.TicketView(ticket)), name, data


def read_filename(ctx: Context, view: AttachmentView) -> str:
    ctx.reads.note("ticket", view.ticket.row.id, view.ticket.row.patient_id, field_class="ticket",
                   field_name="attachment.filename", rule=ctx.decide("ticket", "read").rule)
    return access.open_sealed(ctx, "attachment", "filename", view.row.id, view.row.filename)


async def of_ticket(ctx: Context, view: tickets.TicketView) -> list[AttachmentView]:
    rows = await ctx.require_loaders().attachments_by_ticket.load(view.row.id)
    return [AttachmentView(row, view) for row in rows]


# -- signed download links ----------------------------------------------------------------------


def signed_path(ctx: Context, view: AttachmentView, now: float | None = None) -> str:
    """A link to GET the file for ``LINK_SECONDS`` without an Authorization header, for the caller's session."""
    principal = ctx.require_principal()
    expires = int(now if now is not None else time.time()) + LINK_SECONDS
    signature = _link_signature(ctx.services.master_key.token_key, view.row.id, principal.kind,
                                principal.token_id, expires)
    return (f"/attachments/{view.row.id}/download?session={principal.token_id}&expires={expires}"
            f"&signature={signature}")


async def sign_in_by_link(ctx: Context, attachment: str, session_id: str | None, expires: str | None,
                          signature: str | None) -> uuid.UUID:
    """Sign the link's session in on ``ctx`` and return the attachment's id, or FORBIDDEN: a link tampered
    with, expired, for another file, or whose session has ended. The signature is checked before the
    database is asked anything."""
    attachment_id, parsed_session = _uuid(attachment), _uuid(session_id)
    # ASCII only (found in review): "²" is a digit to isdigit but not to int, and compare_digest raises on non-ASCII
    # text; both escaped as an unexpected error
    if (attachment_id is None or parsed_session is None or not (expires or "").isascii()
            or not (expires or "").isdigit() or len(expires or "") > 12 or not signature or not signature.isascii()):
        raise Forbidden(LINK_REFUSED)
    expected = _link_signature(ctx.services.master_key.token_key, attachment_id, STAFF, parsed_session,
                               int(expires or 0))
    if not hmac.compare_digest(expected, signature) or int(expires or 0) < time.time():
        raise Forbidden(LINK_REFUSED)
    digest = await Session.filter(id=parsed_session).values_list("token_hash", flat=True)
    principal = await session.staff_of(str(digest[0])) if digest else None  # revoked, expired, deactivated: None
    if principal is None:
        raise Forbidden(LINK_REFUSED)
    ctx.principal, ctx.auth_failed = principal, False
    ctx.keys = await ctx.services.keyring.get(principal.institution_id)
    ctx.loaders = Loaders(principal.institution_id)
    return attachment_id


def _link_signature(token_key: bytes, attachment_id: uuid.UUID, kind: str, session_id: uuid.UUID | None,
                    expires: int) -> str:
    key = derive_key(token_key, "attachment-link:v1")
    mac = hmac.new(key, f"{attachment_id}|{kind}|{session_id}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value and len(value) <= 36 else None
    except ValueError:
        return None


def _aad(ctx: Context, attachment_id: uuid.UUID) -> bytes:
    return field_aad(ctx.institution_id, "attachment", "content", attachment_id)


def _upload_shape(filename: str | None, content_type: str | None, data: bytes, limit: int) -> tuple[str, str]:
    """The file's name and type; every problem of the name, the type and the bytes at once (a file over the
    limit is refused as such first: PAYLOAD_TOO_LARGE)."""
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.", field="file")
    problems = Problems()
    name, kind = "", ""
    with problems.collect("filename"):
        name = _filename(filename)
    if not data:
        problems.add("file", "invalid", "is empty.")
    with problems.collect("contentType"):
        kind = _content_type(content_type)
    if kind and data and not _content_matches(kind, data):
        problems.add("file", "invalid", "the content is not what contentType says.")
    problems.check()
    return name, kind


def _filename(value: str | None) -> str:
    if value is None:
        raise BadUserInput("filename: is required (the X-Filename header, percent-encoded).", field="filename",
                           reason="required")
    name = clean_text(value, field="filename", max_length=200, min_length=1)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise BadUserInput("filename: a file name, not a path.", field="filename")
    return name


def _content_type(declared: str | None) -> str:
    kind = (declared or "").split(";", 1)[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise BadUserInput(f"contentType: one of {', '.join(sorted(CONTENT_TYPES))}.", field="contentType",
                           reason="invalid_choice")
    return kind


def _content_matches(kind: str, data: bytes) -> bool:
    """Whether the first bytes are what the declared type says (text: UTF-8 without NULs)."""
    signatures = CONTENT_TYPES[kind]
    if signatures is None:
        try:
            return "\x00" not in data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return data.startswith(signatures)
