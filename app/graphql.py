"""The GraphQL view: one Context per request, authenticated once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from audit.events import RequestMeta
from resolvers import session
from resolvers.context import Context, Services
from schema.extensions import finish_error

log = logging.getLogger("careloop.graphql")


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages go out as text frames: the ``graphql-ws`` client that Apollo and urql
    use reads a binary frame as a message without a type."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class CareloopGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = TextFrames

    def __init__(self, schema: Any, services: Services, *, ide: bool, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        super().__init__(
            schema,
            graphql_ide="graphiql" if ide else None,
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
            # The WebSocket carries subscriptions only (see CareloopSchema.stream), in the one current protocol;
            # an unauthenticated socket has 10 s to say who it is.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=10,
        )
        self.services = services
        self.production = not ide

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """orjson's error for a body that is not UTF-8 is a JSONDecodeError too: a 400, never a 500."""
        return orjson.loads(data)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Every HTTP request has a time budget; past it, it is cancelled (transactions roll back, see
        core/backends) and answered TIMEOUT. A WebSocket lives longer than any request; its subscriptions
        are re-authorised at each event instead."""
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        try:
            async with asyncio.timeout(self.budget_seconds):
                return await super().run(request, context, root_value)
        except TimeoutError:
            request_id = getattr(request.state, "request_id", "")
            log.warning("request %s stopped after its budget of %s s", request_id, self.budget_seconds)
            error = {"message": f"The request took longer than its budget of {self.budget_seconds:g} s and was "
                                "stopped; a change it had not yet committed was rolled back.",
                     "extensions": {"code": "TIMEOUT", "requestId": request_id}}
            return Response(self.encode_json({"data": None, "errors": [error]}), media_type="application/json")

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """A last pass over errors that never reached the schema's extensions (parse errors)."""
        if result.errors:
            request_id = getattr(request.state, "request_id", "")
            result.errors = [finish_error(e, request_id=request_id, production=self.production)
                             for e in result.errors]
        return await super().process_result(request, result)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a WebSocket: the token may come in connection_init's payload
        as ``{"authorization": "Bearer cl_..."}``. A bad one closes the connection (4403)."""
        params = context.connection_params or {}
        offered = params.get("authorization") or params.get("Authorization")
        if isinstance(offered, str):
            context.authorization = offered
            await session.sign_in(context)
        if context.principal is None:
            raise ConnectionRejectionError()
        return UNSET

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        return await build_context(self.services, request)


async def build_context(services: Services, request: Request | WebSocket) -> Context:
    """The request's context, authenticated from its bearer token (GraphQL and the file routes alike)."""
    meta = RequestMeta(
        request_id=getattr(request.state, "request_id", ""),
        client_address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:200],
    )
    context = Context(services=services, request=meta, authorization=request.headers.get("authorization"))
    await session.sign_in(context)
    return context
