"""The GraphQL view: one Context per request, authenticated once."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from audit.events import RequestMeta
from core.errors import Unauthenticated
from resolvers import session
from resolvers.context import Context, Services
from resolvers.loaders import Loaders
from schema.extensions import finish_error


class CareloopGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, services: Services, *, ide: bool) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if ide else None,
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
        )
        self.services = services
        self.production = not ide

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """A last pass over errors that never reached the schema's extensions (parse errors)."""
        if result.errors:
            request_id = getattr(request.state, "request_id", "")
            result.errors = [finish_error(e, request_id=request_id, production=self.production)
                             for e in result.errors]
        return await super().process_result(request, result)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        return await build_context(self.services, request)


async def build_context(services: Services, request: Request | WebSocket) -> Context:
    """The request's context, authenticated from its bearer token (GraphQL and the file routes alike)."""
    meta = RequestMeta(
        request_id=getattr(request.state, "request_id", ""),
        client_address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:200],
    )
    context = Context(services=services, request=meta)
    try:
        principal = await session.authenticate(services, request.headers.get("authorization"))
    except Unauthenticated:
        context.auth_failed = True
        return context
    if principal is not None:
        context.principal = principal
        context.keys = await services.keyring.get(principal.institution_id)
        context.loaders = Loaders(principal.institution_id)
    return context
