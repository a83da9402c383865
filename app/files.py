"""Attachment bytes over plain HTTP, beside GraphQL: JSON stays small (its body limit is 64 KiB),
files get their own limit. Same bearer tokens, same policy, same audit as the GraphQL API.

- ``POST /tickets/{ticketId}/attachments``: the raw file as the body, its type in
  ``Content-Type``, its name percent-encoded in ``X-Filename``; answers 201 with the metadata.
- ``POST /attachments``: the same as ``multipart/form-data``, as a browser's form or ``FormData`` sends it:
  a ``ticketId`` field and one ``file`` part (its filename and type from the part). The bearer token still
  goes in the Authorization header, which a cross-site form cannot send (so no CSRF).
- ``GET /attachments/{id}``: the file, as a download (never rendered inline).
- ``GET /attachments/{id}/download?session=...&expires=...&signature=...``: the same through a signed link
  (``Attachment.downloadUrl``, 5 minutes), without an Authorization header; a link tampered with, expired
  or whose session ended answers 403 FORBIDDEN.
- ``GET /contracts/{contractId}/versions/{number}/document``: a contract version's document (PDF) as sent for
  signature, checked against its SHA-256 on every download (a mismatch answers DOCUMENT_TAMPERED and no byte);
  ``Repr-Digest`` carries the SHA-256.

Errors answer ``{"errors": [{"message", "extensions": {"code", "field"}}]}`` as GraphQL does.
"""

from __future__ import annotations

import base64
import codecs
import uuid
from urllib.parse import quote, unquote_to_bytes

from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from app.graphql import build_context
from core.errors import BadUserInput, CareloopError
from resolvers import attachment as attachments
from resolvers import contract_signature as contract_signatures
from resolvers import idempotency_key
from resolvers import partner as partners
from resolvers.attachment import PayloadTooLarge
from resolvers.context import Context, Services
from schema.common import uuid_of

FORM_OVERHEAD = 16 * 1024  # a multipart body's boundaries, part headers and ticketId field, beyond the file
STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400, "CONFLICT": 409,
          "PAYLOAD_TOO_LARGE": 413, "RATE_LIMITED": 429, "DOCUMENT_TAMPERED": 500}


async def _signed_in(ctx: Context) -> None:
    """UNAUTHENTICATED without a principal; a client restricted to registered GraphQL documents is refused here."""
    ctx.require_principal()
    await partners.check_file_route(ctx)


def routes(services: Services) -> list[Route]:
    limit = services.settings.limits.max_attachment_bytes

    async def upload(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            await _signed_in(ctx)
            ticket_id = uuid_of(request.path_params["ticket_id"], "ticketId")
            data = await _body(request, limit)
            name = _header_filename(request.headers.get("x-filename"))
            view = await _upload(ctx, request, ticket_id, name, request.headers.get("content-type"), data)
        except CareloopError as error:
            return _error(error)
        return _created(view)

    async def form_upload(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            await _signed_in(ctx)
            ticket_id, name, content_type, data = await _form(request, limit)
            view = await _upload(ctx, request, ticket_id, name, content_type, data)
        except CareloopError as error:
            return _error(error)
        return _created(view)

    async def download(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            await _signed_in(ctx)
            view, name, data = await attachments.download(ctx, uuid_of(request.path_params["attachment_id"]))
        except CareloopError as error:
            return _error(error)
        return _file(view, name, data)

    async def signed_download(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            query = request.query_params
            attachment_id = await attachments.sign_in_by_link(ctx, request.path_params["attachment_id"],
                                                              query.get("session"), query.get("expires"),
                                                              query.get("signature"))
            view, name, data = await attachments.download(ctx, attachment_id)
        except CareloopError as error:
            return _error(error)
        return _file(view, name, data)

    async def contract_document(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            await _signed_in(ctx)
            document = await contract_signatures.download(
                ctx, uuid_of(request.path_params["contract_id"], "contractId"), _number(request.path_params["number"]))
        except CareloopError as error:
            return _error(error)
        digest = base64.b64encode(bytes.fromhex(document.version.row.document_sha256 or "")).decode()
        return Response(document.data, media_type="application/pdf",
                        headers={**attachment(document.filename), "repr-digest": f"sha-256=:{digest}:"})

    return [
        Route("/tickets/{ticket_id}/attachments", upload, methods=["POST"]),
        Route("/attachments", form_upload, methods=["POST"]),
        Route("/attachments/{attachment_id}", download, methods=["GET"]),
        Route("/attachments/{attachment_id}/download", signed_download, methods=["GET"]),
        Route("/contracts/{contract_id}/versions/{number}/document", contract_document, methods=["GET"]),
    ]


async def _upload(ctx: Context, request: Request, ticket_id: uuid.UUID | None, name: str | None,
                  content_type: str | None, data: bytes) -> attachments.AttachmentView:
    """An attachment stored, once for its ``Idempotency-Key`` if it came with one (as a mutation: an upload whose
    answer was lost, sent again, is refused CONFLICT ``already_done`` naming the attachment written)."""
    key = await idempotency_key.admit_upload(ctx, request.url.path, ticket_id, name, content_type, data)
    if key is None:
        return await attachments.upload(ctx, ticket_id, name, content_type, data)
    try:
        with idempotency_key.held(key):
            return await attachments.upload(ctx, ticket_id, name, content_type, data)
    except CareloopError as error:  # failed while another request with the key stored it: told as a resend after it
        raise (await idempotency_key.done_meanwhile(ctx, key) or error) from None


def _created(view: attachments.AttachmentView) -> JSONResponse:
    row = view.row
    return JSONResponse({"id": str(row.id), "ticketId": str(row.ticket_id), "contentType": row.content_type,
                         "size": row.size, "sha256": row.sha256}, status_code=201)


def attachment(filename: str) -> dict[str, str]:
    """The header that makes an answer a download named ``filename`` (any characters: RFC 6266's UTF-8 form)."""
    return {"content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


def _file(view: attachments.AttachmentView, name: str, data: bytes) -> Response:
    """Always a download, never rendered inline; no-store and nosniff come with every response
    (app.main.SECURITY_HEADERS)."""
    return Response(data, media_type=view.row.content_type, headers=attachment(name))


async def _form(request: Request, limit: int) -> tuple[uuid.UUID | None, str | None, str | None, bytes]:
    """(ticket id, file name, declared type, bytes) of a multipart/form-data upload: the body is read under
    the file limit (plus the form's overhead) before it is parsed, so nothing larger is ever spooled."""
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise BadUserInput("Content-Type: send multipart/form-data (a ticketId field and a file part).",
                           field="file")
    body = await _body(request, limit + FORM_OVERHEAD)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
    except (HTTPException, MultiPartException, ValueError):
        raise BadUserInput("file: not a well-formed multipart/form-data body.", field="file") from None
    ticket_id, upload = form.get("ticketId"), form.get("file")
    if not isinstance(ticket_id, str):
        raise BadUserInput("ticketId: is required.", field="ticketId")
    if not isinstance(upload, UploadFile):
        raise BadUserInput("file: is required (one file part named file).", field="file")
    _check_form_filename(request, upload)
    data = await upload.read()
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.", field="file")
    return uuid_of(ticket_id, "ticketId"), upload.filename, upload.content_type, data


def _check_form_filename(request: Request, upload: UploadFile) -> None:
    """The file part's name is read in the form's charset (UTF-8 unless its Content-Type names another); bytes that
    are not in it are refused, as X-Filename's are (found in review: Starlette read them as Latin-1 without a word,
    and GBK's "张伟.png" was stored as "ÕÅÎ°.png"). A charset Python does not know, or that is no text encoding, is
    read as Latin-1, as Starlette reads it."""
    _, options = parse_options_header(request.headers.get("content-type", ""))
    try:
        codec = codecs.lookup(options.get(b"charset", b"utf-8").decode("latin-1")).name
    except (LookupError, ValueError):
        return
    # the part's headers as sent (Starlette keeps their bytes, read as Latin-1), the last one as Starlette reads it
    disposition = (upload.headers.getlist("content-disposition") or [""])[-1]
    _, part = parse_options_header(disposition.encode("latin-1"))
    try:
        part.get(b"filename", b"").decode(codec)
    except LookupError:  # a codec that is no text encoding (base64, zlib): Latin-1 too
        return
    except UnicodeDecodeError:
        raise BadUserInput("filename: not in the form's charset (send the file's name as UTF-8, or name its charset "
                           "in the form's Content-Type).", field="filename") from None


def _header_filename(value: str | None) -> str | None:
    """X-Filename's name: percent-encoded UTF-8 (raw UTF-8 is read as such). Bytes that are not UTF-8 are refused
    (found in review: unquote replaced them with U+FFFD, and the name was stored changed without a word)."""
    if not value:
        return None
    try:  # the server hands header bytes over as Latin-1: back to the bytes the client sent
        return unquote_to_bytes(value.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise BadUserInput("filename: not UTF-8 (percent-encode the name's UTF-8 bytes in X-Filename).",
                           field="filename") from None


def _number(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise BadUserInput("number: a version number.", field="number")
    return int(value)


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes the limit (a declared length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.", field="file") if declared.isdigit() \
            else BadUserInput("Content-Length: not a number.", field="file")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The file is larger than {limit} bytes.", field="file")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(error: CareloopError) -> JSONResponse:
    extensions = error.extensions or {}
    code = str(extensions.get("code", "INTERNAL_SERVER_ERROR"))
    return JSONResponse({"errors": [{"message": error.message, "extensions": extensions}]},
                        status_code=STATUS.get(code, 500))
