"""Exports for compliance officers over HTTP, beside the server's shell: the same bearer tokens, policy and
audit as the GraphQL API (``audit: read``; anyone else gets 403 and the refusal is on the trail).

- ``GET /compliance/exports/patient-access/{patientId}.pdf`` (or ``.csv``) ``?from=&to=&language=en|zh-CN``: a
  patient's access report for people (names, roles, partners, local times, plain actions). A patient outside
  the institution answers 404 like a missing one.
- ``GET /compliance/exports/audit.ndjson?from=&to=``: the institution's trail of a period, streamed, ended by
  a checkpoint signed at its last event: what ``careloop audit verify --export`` checks offline.

Periods are ISO 8601 times with a zone, at most 366 days (default: the year up to now). At most
``MAX_RUNNING`` exports run at once per institution (429 RATE_LIMITED with Retry-After beyond). Every export is
on the trail (action export) before its first byte. Errors answer ``{"errors": [...]}`` as GraphQL does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.files import _error, attachment
from app.graphql import build_context
from core import running
from core.errors import CareloopError, RateLimited
from resolvers import audit_report as reports
from resolvers.context import Context, Services
from schema.common import uuid_of

MAX_RUNNING = 2  # exports at once per institution, per process
RETRY_AFTER_SECONDS = 10


class Running(running.Running):
    """Exports under way per institution in this process: a cheap bound on what one institution can ask of the
    database at once (the period bound keeps each one finite)."""

    def __init__(self, limit: int = MAX_RUNNING) -> None:
        super().__init__(limit, "Exports of this institution are already under way; try again shortly.")

    def take_for(self, ctx: Context) -> uuid.UUID:
        """A slot of the caller's institution (RATE_LIMITED past the limit; the caller must be signed in): its id."""
        institution_id = ctx.require_principal().institution_id
        self.take(institution_id)
        return institution_id


class Streamed(StreamingResponse):
    """A streamed answer that gives its export slot back however it ends: sent, failed, or the client gone."""

    def __init__(self, content: AsyncIterator[bytes], done: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._done()


def routes(services: Services, running: Running | None = None) -> list[Route]:
    slots = running or Running()

    async def allowed_slot(ctx: Context, resource_type: str, patient_id: uuid.UUID | None = None) -> uuid.UUID:
        """A slot of the caller's institution, taken once the caller is known to be allowed (found in review: the
        slot came first, so while two exports ran anyone else was answered RATE_LIMITED, not FORBIDDEN, and the
        attempt left no trace on the trail; it also told them exports were under way)."""
        ctx.require_principal()
        await reports.authorize_export(ctx, resource_type, patient_id)
        return slots.take_for(ctx)

    async def patient_access(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            patient_id = uuid_of(request.path_params["patient_id"], "patientId")
            institution_id = await allowed_slot(ctx, "audit_report", patient_id)
            try:
                query = request.query_params
                document = await reports.patient_access_export(
                    ctx, patient_id, query.get("from"), query.get("to"), request.path_params["format"],
                    query.get("language", "en"))
            finally:
                slots.give_back(institution_id)
        except CareloopError as error:
            return _refused(error)
        return Response(document.body, media_type=document.media_type,
                        headers=attachment(document.filename))

    async def trail(request: Request) -> Response:
        ctx = await build_context(services, request)
        try:
            institution_id = await allowed_slot(ctx, "audit_event")
            try:
                query = request.query_params
                lines = await reports.trail_export(ctx, query.get("from"), query.get("to"))
            except BaseException:
                slots.give_back(institution_id)
                raise
        except CareloopError as error:
            return _refused(error)

        async def body() -> AsyncIterator[bytes]:
            async for line in lines:
                yield line.encode("utf-8")

        name = f"audit-{institution_id}.ndjson"
        return Streamed(body(), lambda: slots.give_back(institution_id), media_type="application/x-ndjson",
                        headers=attachment(name))

    return [
        Route("/compliance/exports/audit.ndjson", trail, methods=["GET"]),
        Route("/compliance/exports/patient-access/{patient_id}.{format}", patient_access, methods=["GET"]),
    ]


def _refused(error: CareloopError) -> Response:
    response = _error(error)
    if (error.extensions or {}).get("code") == RateLimited.code:
        response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    return response
