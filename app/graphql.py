"""The GraphQL view: one Context per request, authenticated once; HTTP as the GraphQL-over-HTTP specification
(https://graphql.github.io/graphql-over-http/draft/) has it.

- POST only, ``Content-Type: application/json`` (415 otherwise). GET is refused (405) except for GraphiQL in
  development: variables in a URL end up in proxy and server logs.
- The answer is ``application/graphql-response+json`` when the client's Accept asks for it, else
  ``application/json`` (also without Accept, or with ``*/*``); 406 when Accept allows neither.
- Every answer is JSON, ``{"errors": [{"message", "extensions": {"code", "field"?}}]}`` for a refused request.
- A request that fails before execution (parse, validation, variable coercion, operation selection) has no
  ``data`` entry; under ``application/graphql-response+json`` it is a 4xx (400; 401/403 for a refused caller;
  5xx for our own failure), under ``application/json`` a 200 as the specification's legacy rules want.
- A document with several operations and no ``operationName`` is an error, never "run the first one".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from json import JSONDecodeError
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from app import graphiql, metrics
from app.logs import RefusalLines
from app.websocket_limit import TRY_AGAIN_LATER, Refused, WebSocketLimit
from audit.events import RequestMeta
from core.backends.asyncpg import connection_lost
from core.errors import Unavailable, kind_and_place
from core.principal import STAFF
from resolvers import session
from resolvers.context import Context, Services
from schema.extensions import finish_error

log = logging.getLogger("careloop.graphql")
UNAVAILABLE_RETRY_AFTER_SECONDS = 5  # a failover takes seconds; the pool connects anew on the next request


class OriginRefusals(logging.Filter):
    """Strawberry warns, with the origin and the host, for every handshake from a disallowed origin: anyone could
    fill the logs with made-up origins (found in review). Its line gives way to the refusal lines' (at most one a
    minute, then a count), which name neither."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = RefusalLines(log, "WebSocket")

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Rejected WebSocket connection from origin"):
            self.lines.refused("origin", "WebSocket refused: its origin is not allowed")
            return False
        return True


ORIGIN_REFUSALS = OriginRefusals()
logging.getLogger("strawberry.ws").addFilter(ORIGIN_REFUSALS)  # once per process, whatever apps it serves


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages go out as text frames: the ``graphql-ws`` client that Apollo and urql
    use reads a binary frame as a message without a type. A message in is held to the HTTP body limit."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        """Strawberry's loop, but a message over the HTTP body limit closes the socket (1009, too big) before
        it is parsed (found in review: a 4 MiB ``connection_init``, anonymous ones too, was parsed and
        acknowledged; ``careloop serve`` also tells uvicorn the limit, which stops reading it sooner)."""
        limit = cast("CareloopGraphQL", self.view).max_body_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > limit or len(text.encode()) > limit:
                    await self.ws.close(code=WS_MESSAGE_TOO_BIG)
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as e:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from e
        except KeyError as e:
            raise NonTextMessageReceived from e
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


WS_MESSAGE_TOO_BIG = 1009  # RFC 6455
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# A request refused before execution, by its errors' code, when the client reads graphql-response+json;
# anything else (syntax, validation, variables, operation selection, limits) is a 400.
REQUEST_FAILURE_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "CONFLICT": 409, "RATE_LIMITED": 429,
                          "INTERNAL_SERVER_ERROR": 500, "TIMEOUT": 504}


class RequestError(Exception):
    """A request refused before GraphQL could run it: answered as JSON with this status, whatever the
    negotiated media type, and without a ``data`` entry."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = dict(headers or {})


def unreachable(request: Request | WebSocket, error: BaseException) -> RequestError:
    """The refusal of a request that the database's loss caught outside GraphQL's execution (its sign-in, a plain
    route), told in one line by the error's kind and place."""
    log.warning("the database could not be reached (%s), request %s", kind_and_place(error),
                getattr(request.state, "request_id", ""))
    return RequestError(503, Unavailable.code, Unavailable.default_message,
                        headers={"retry-after": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})


class BodyTooLarge(Exception):
    pass


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, from the Accept header (q-values and wildcards as RFC 9110 has them);
    None when it allows neither. ``*/*`` and a missing header get application/json, the legacy default the
    specification keeps; graphql-response+json only when named."""
    if accept is None or not accept.strip():
        return JSON
    best: dict[str, tuple[float, int]] = {}  # media type -> (q, specificity of the range that matched)
    for part in accept.split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        for supported in (GRAPHQL_RESPONSE_JSON, JSON):
            specificity = {supported: 3, "application/*": 2, "*/*": 1}.get(media, 0)
            if specificity > best.get(supported, (0.0, 0))[1]:
                best[supported] = (q, specificity)
    (q_new, named_new), (q_json, _) = best.get(GRAPHQL_RESPONSE_JSON, (0.0, 0)), best.get(JSON, (0.0, 0))
    if q_new <= 0 and q_json <= 0:
        return None
    if q_new > q_json or (q_new == q_json and named_new == 3):
        return GRAPHQL_RESPONSE_JSON
    return JSON


@lru_cache(maxsize=128)  # as Strawberry's parser cache: a portal sends the same few documents again and again
def operations_of(query: str, max_tokens: int) -> tuple[OperationDefinitionNode, ...] | None:
    """The document's operations, or None when it does not parse (GraphQL then reports the syntax error)."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    return tuple(d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def error_body(message: str, code: str, field: str | None = None, **more: str) -> dict[str, Any]:
    extensions: dict[str, str] = {"code": code, **({"field": field} if field else {}), **more}
    return {"errors": [{"message": message, "extensions": extensions}]}


class CareloopGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = TextFrames

    def __init__(self, schema: Any, services: Services, *, ide: bool, budget_seconds: float,
                 max_body_bytes: int | None = None, allowed_origins: Sequence[str] = (),
                 websockets: WebSocketLimit | None = None) -> None:
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
            allowed_origins=allowed_origins,  # browser pages on other origins (CARELOOP_CORS_ORIGINS)
        )
        self.services = services
        self.production = not ide
        limits = services.settings.limits
        self.max_body_bytes = limits.max_body_bytes if max_body_bytes is None else max_body_bytes
        self.max_tokens = limits.max_tokens
        self.websockets = websockets or WebSocketLimit(limits.websockets_pending_per_address,
                                                       limits.websockets_per_address)
        self.refused_websockets = RefusalLines(log, "WebSocket")

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from this server's own files (app/graphiql.py), never from a CDN."""
        return graphiql.page()

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """orjson's error for a body that is not UTF-8 is a JSONDecodeError too: a 400, never a 500."""
        return orjson.loads(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP requests: the body limit is counted here (not by Starlette's middleware, whose 413 is plain
        text), and every answer, refusals included, comes from ``run`` as JSON."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        request, started = Request(scope, receive=receive_within_limit), time.perf_counter()
        try:
            response = await self.run(request)
        finally:  # by operation name only, bounded (app/metrics.py): never variables
            context = getattr(request.state, "context", None)
            principal = context.principal if context is not None else None
            metrics.observe_request(getattr(request.state, "operation_name", None), time.perf_counter() - started,
                                    signed_in=principal is not None,
                                    staff=principal is not None and principal.kind == STAFF)
            if context is not None:
                context.release()
        await response(scope, receive, send)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """The HTTP rules (method, Accept, Content-Type, body) are checked before the caller is signed in, and
        a refusal is answered in JSON. Every HTTP request has a time budget; past it, it is cancelled
        (transactions roll back, see core/backends) and answered TIMEOUT. A WebSocket lives longer than any
        request; its subscriptions are re-authorised at each event instead."""
        if isinstance(request, WebSocket):
            return await self.run_websocket(request, context, root_value)
        media = negotiate(request.headers.get("accept"))
        try:
            if request.method != "POST":
                if request.method == "GET" and self.graphql_ide \
                        and self.should_render_graphql_ide(self.request_adapter_class(request)):
                    return await self.render_graphql_ide(request)
                raise RequestError(
                    405, "METHOD_NOT_ALLOWED", "Send GraphQL operations with POST (Content-Type: application/json); "
                    "GET is not accepted, so that variables never end up in URLs and logs.",
                    headers={"allow": "GET, POST" if self.graphql_ide else "POST"})
            if media is None:
                raise RequestError(406, "NOT_ACCEPTABLE", "This endpoint answers in application/graphql-response+json "
                                   "or application/json: accept one of them.")
            self.check_content_type(request)
            request.state.graphql_status = 200
            async with asyncio.timeout(self.budget_seconds):
                response = await super().run(request, context, root_value)
        except RequestError as refused:
            return self.refusal(refused, media)
        except BodyTooLarge:
            return self.refusal(RequestError(413, "PAYLOAD_TOO_LARGE", f"The request body is larger than "
                                             f"{self.max_body_bytes} bytes."), media)
        except HTTPException as exc:  # what Strawberry refuses by itself
            return self.refusal(RequestError(exc.status_code, "BAD_REQUEST", exc.reason), media)
        except TimeoutError:
            request_id = getattr(request.state, "request_id", "")
            log.warning("request %s stopped after its budget of %s s", request_id, self.budget_seconds)
            timeout = {"message": f"The request took longer than its budget of {self.budget_seconds:g} s and "
                                  "was stopped; a change it had not yet committed was rolled back.",
                       "extensions": {"code": "TIMEOUT", "requestId": request_id}}
            metrics.count_errors(["TIMEOUT"])
            return self.json_response({"data": None, "errors": [timeout]}, media, 200)
        except Exception as error:  # before execution (the sign-in); during it, the field errors say so
            if not connection_lost(error):
                raise
            return self.refusal(unreachable(request, error), media)
        if response.headers.get("content-type", "").startswith(JSON):  # not GraphiQL's page
            response.headers["content-type"] = media
            response.headers["vary"] = "Accept"
            if media == GRAPHQL_RESPONSE_JSON:
                response.status_code = request.state.graphql_status
                if response.status_code == 429 and getattr(request.state, "retry_after", None):
                    response.headers["retry-after"] = str(request.state.retry_after)
        return response

    async def run_websocket(self, websocket: WebSocket, context: Any, root_value: Any) -> WebSocket:
        """Its origin first: a page on a disallowed one is refused (403) and never told to try again later, nor
        counted as rate limited (found in review). Then its address's caps (app/websocket_limit.py): within them
        held until it ends; over them closed at once, before Strawberry waits for its connection_init. The cap in
        all is met before a token in its Authorization header is looked up (found in review: a partner's lookup
        counts against its budget, which a client retrying the refusal spent), the waiting cap after it (so a
        socket signed in as it opens never takes a waiting slot, found in review too)."""
        if not self._check_websocket_origin(websocket):  # Strawberry's own check, which its run repeats (and passes)
            return cast(WebSocket, await self.reject_websocket(websocket))
        try:
            socket = self.websockets.admit(websocket.client.host if websocket.client else "")
        except Refused as refused:
            return await self.close_over_cap(websocket, refused)
        try:
            context = await self.get_context(websocket, websocket) if context is UNSET else context
            self.websockets.set_context(socket, context)
            return cast(WebSocket, await super().run(websocket, context, root_value))
        except Refused as refused:  # over the waiting cap (set_context)
            return await self.close_over_cap(websocket, refused)
        finally:
            self.websockets.release(socket)

    async def close_over_cap(self, websocket: WebSocket, refused: Refused) -> WebSocket:
        """Closed as soon as accepted, with 1013 and the cap's reason: the graphql-ws client retries that code."""
        metrics.count_errors(["RATE_LIMITED"])
        self.refused_websockets.refused(refused.cap, "WebSocket refused: its address holds %d already (%s)",
                                        refused.limit, refused.cap)
        with contextlib.suppress(WebSocketDisconnect, OSError):  # gone already: no traceback per socket
            await websocket.accept(subprotocol=await self.pick_websocket_subprotocol(websocket))
            await websocket.close(code=TRY_AGAIN_LATER, reason=refused.close_reason)
        return websocket

    def check_content_type(self, request: Request) -> None:
        """POST bodies are application/json in UTF-8 (the charset may be left out); the declared length is
        checked against the limit before anything is read."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise BodyTooLarge
        media_type, *params = (piece.strip().lower() for piece in request.headers.get("content-type", "").split(";"))
        charset = next((p.partition("=")[2].strip('" ') for p in params if p.startswith("charset=")), "utf-8")
        if media_type != JSON or charset not in ("utf-8", "utf8"):
            raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json (UTF-8): "
                               '{"query": "...", "variables": {...}, "operationName": "..."}.')

    def refusal(self, error: RequestError, media: str | None) -> Response:
        metrics.count_errors([error.code])
        body = error_body(error.message, error.code, error.field)
        response = self.json_response(body, media or JSON, error.status)
        response.headers.update(error.headers)
        return response

    def json_response(self, body: object, media: str | None, status: int) -> Response:
        response = Response(self.encode_json(body), status_code=status, media_type=media or JSON)
        response.headers["vary"] = "Accept"
        return response

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        """The body is one JSON object with a string ``query``; ``operationName`` a string, ``variables`` and
        ``extensions`` objects, each possibly null. Anything else is a 400 naming the parameter."""
        body = await request.get_body()
        if not body.strip():
            raise RequestError(400, "BAD_REQUEST", 'The request has no body: send {"query": "..."}.')
        try:
            data = self.decode_json(body)
        except json.JSONDecodeError:
            raise RequestError(400, "BAD_REQUEST", "The request body is not valid JSON (UTF-8).") from None
        if isinstance(data, list):
            raise RequestError(400, "BAD_REQUEST", "Batching is not enabled: send one operation per request.")
        if not isinstance(data, dict):
            raise RequestError(400, "BAD_REQUEST", 'The request body must be a JSON object: {"query": "...", '
                               '"variables": {...}, "operationName": "..."}.')
        query = data.get("query")
        if not isinstance(query, str) or not query:
            raise RequestError(400, "BAD_REQUEST", "The request has no GraphQL document: `query` must be a "
                               "non-empty string.", field="query")
        for name, kind in (("operationName", str), ("variables", dict), ("extensions", dict)):
            if data.get(name) is not None and not isinstance(data[name], kind):
                raise RequestError(400, "BAD_REQUEST", f"`{name}` must be "
                                   f"{'a string' if kind is str else 'an object'} or null.", field=name)
        return GraphQLRequestData(query=query, variables=data.get("variables"),
                                  operation_name=data.get("operationName"), extensions=data.get("extensions"))

    async def execute_single(self, request: Request, request_adapter: AsyncHTTPRequestAdapter,
                             sub_response: Response, context: Context, root_value: None,
                             request_data: GraphQLRequestData) -> ExecutionResult:
        """Picks the operation as the GraphQL specification says: with several in the document and no
        ``operationName`` that is a request error, never "run the first one" (Strawberry's habit). It is
        sent on with a name that matches nothing, so it still stops before execution in Strawberry's own
        path, where extensions record it (PartnerGate)."""
        operations = None
        if request_data.operation_name is None and request_data.query:
            operations = operations_of(request_data.query, self.max_tokens)
            # With an anonymous one among them the document fails validation (LoneAnonymousOperation) first.
            if operations is not None and len(operations) > 1 and all(o.name for o in operations):
                request_data = dataclasses.replace(request_data, operation_name="")  # no operation has this name
        request.state.operation_name = metrics.operation_name(request_data.operation_name, operations)
        try:
            return await super().execute_single(request, request_adapter, sub_response, context, root_value,
                                                request_data)
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, CannotGetOperationTypeError):
                if operations:
                    message = (f"The document has {len(operations)} operations: name the one to run in "
                               "operationName.")
                elif request_data.operation_name is None:
                    message = "The document has no operation to run."
                else:
                    message = f'The document has no operation named "{request_data.operation_name[:100]}".'
                error = GraphQLError(message, extensions={"code": "BAD_USER_INPUT", "field": "operationName"})
                return PreExecutionError(data=None, errors=[error])
            if isinstance(cause, InvalidOperationTypeError):
                raise RequestError(400, "BAD_REQUEST", "Subscriptions are served over the WebSocket at /graphql "
                                   "(graphql-transport-ws), not over POST.", field="query") from None
            if isinstance(cause, MissingQueryError):
                raise RequestError(400, "BAD_REQUEST", "The request has no GraphQL document.",
                                   field="query") from None
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """A last pass over errors that never reached the schema's extensions (parse errors); and a request
        that failed before execution (parse, validation, variable coercion, operation selection: errors
        without a path and no data) has no ``data`` entry, and its status for graphql-response+json."""
        if result.errors:
            request_id = getattr(request.state, "request_id", "")
            result.errors = [finish_error(e, request_id=request_id, production=self.production)
                             for e in result.errors]
            metrics.count_errors([(e.extensions or {}).get("code") for e in result.errors])
        response = await super().process_result(request, result)
        if result.errors and result.data is None and (
                isinstance(result, PreExecutionError) or all(e.path is None for e in result.errors)):
            response.pop("data", None)
            statuses = [REQUEST_FAILURE_STATUS.get((e.extensions or {}).get("code", ""), 400) for e in result.errors]
            request.state.graphql_status = next((s for s in statuses if s < 500), statuses[0])
            waits = [wait for e in result.errors if (wait := (e.extensions or {}).get("retryAfter"))]
            request.state.retry_after = max(waits, default=None)  # a 429's Retry-After (RFC 9110), in seconds
        return response

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
        context = await build_context(self.services, request)
        if isinstance(request, Request):
            request.state.context = context  # released once the request has answered (__call__)
        return context


async def build_context(services: Services, request: Request | WebSocket) -> Context:
    """The request's context, authenticated from its bearer token (GraphQL and the file routes alike)."""
    meta = RequestMeta(
        request_id=getattr(request.state, "request_id", ""),
        client_address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:200],
    )
    keys = request.headers.getlist("idempotency-key")  # several are joined, which no key matches: refused
    context = Context(services=services, request=meta, authorization=presented_credentials(request),
                      idempotency_key=", ".join(keys) if keys else None)
    await session.sign_in(context)
    return context


def presented_credentials(request: Request | WebSocket) -> str | None:
    """The Authorization header; several are joined as a list would be (RFC 9110 §5.3), which no token matches:
    ambiguous credentials are refused (found in review: the first was used, whatever a proxy in front or the
    audit's reader took the request to carry)."""
    return ", ".join(request.headers.getlist("authorization")) or None
