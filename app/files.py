"""Attachment bytes over plain HTTP, beside GraphQL: JSON stays small (its body limit is 64 KiB),
files get their own limit. Same bearer tokens, same policy, same audit as the GraphQL API.

- ``POST /tickets/{ticketId}/attachments``: the raw file as the body, its type in
  ``Content-Type``, its name percent-encoded in ``X-Filename``; answers 201 with the metadata.
- ``GET /attachments/{id}``: the file, as a download (never rendered inline).
- ``GET /contracts/{contractId}/versions/{number}/document``: a contract version's document (PDF) as sent for
  signature, checked against its SHA-256 on every download (a mismatch answers DOCUMENT_TAMPERED and no byte);
  ``Repr-Digest`` carries the SHA-256.

Errors answer ``{"errors": [{"message", "extensions": {"code", "field"}}]}`` as GraphQL does.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.graphql import build_context
from core.errors import BadUserInput, CareloopError
from resolvers import attachment as attachments
from resolvers import contract_signature as contract_signatures
from resolvers.attachment import PayloadTooLarge
from resolvers.context import Services
from schema.common import uuid_of

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400,
          "PAYLOAD_TOO_LARGE": 413, "RATE_LIMITED": 429, "DOCUMENT_TAMPERED": 500}


def routes(services: Services) -> list[Route]:
    limit = services.settings.limits.max_attachment_bytes

    async def upload(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            ctx.require_principal()
            ticket_id = uuid_of(request.path_params["ticket_id"], "ticketId")
            data = await _body(request, limit)
            name = request.headers.get("x-filename")
            view = await attachments.upload(ctx, ticket_id, unquote(name) if name else None,
                                            request.headers.get("content-type"), data)
        except CareloopError as error:
            return _error(error)
        row = view.row
        return JSONResponse({"id": str(row.id), "ticketId": str(row.ticket_id), "contentType": row.content_type,
                             "size": row.size, "sha256": row.sha256}, status_code=201)

    async def download(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            ctx.require_principal()
            view, name, data = await attachments.download(ctx, uuid_of(request.path_params["attachment_id"]))
        except CareloopError as error:
            return _error(error)
        # no-store and nosniff come with every response (app.main.SECURITY_HEADERS)
        return Response(data, media_type=view.row.content_type,
                        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"})

    async def contract_document(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            ctx.require_principal()
            document = await contract_signatures.download(
                ctx, uuid_of(request.path_params["contract_id"], "contractId"), _number(request.path_params["number"]))
        except CareloopError as error:
            return _error(error)
        digest = base64.b64encode(bytes.fromhex(document.version.row.document_sha256 or "")).decode()
        return Response(document.data, media_type="application/pdf",
                        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(document.filename)}",
                                 "repr-digest": f"sha-256=:{digest}:"})

    return [
        Route("/tickets/{ticket_id}/attachments", upload, methods=["POST"]),
        Route("/attachments/{attachment_id}", download, methods=["GET"]),
        Route("/contracts/{contract_id}/versions/{number}/document", contract_document, methods=["GET"]),
    ]


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
