"""At DEBUG, WebSocket traffic leaves no token, name or phone in any log record.

The websockets library logs each frame with its payload at DEBUG, through the logger uvicorn hands it
("uvicorn.error"), whose level uvicorn sets from --log-level after the app configured logging: the
server here is configured in that order, as `careloop serve` does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.logs import SQL_LOGGERS, WEBSOCKET_LOGGERS, configure_logging
from app.main import create_app
from core.settings import Settings
from resolvers.context import Services
from tests.app.conftest import serve
from tests.app.test_subscriptions import subscribe
from tests.factories import Tenant, make_patient

NAME, PHONE, CALLER, CALLER_PHONE = "Qiao Secretname", "13912345678", "Wu Callername", "13987654321"
LIVE = ("subscription { ticketChanges { id subject callerName callerPhone "
        "patient { fullName phone } } }")
CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def attach_to_uvicorn(self) -> None:
        """uvicorn's loggers do not propagate to the root logger, and a uvicorn.Config removes their handlers."""
        for name in UVICORN_LOGGERS:
            logging.getLogger(name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in self.records)


@pytest.fixture
def every_record() -> Iterator[Everything]:
    """Every record that reaches the root logger, and (once attached) uvicorn's."""
    handler = Everything()
    names = (*SQL_LOGGERS, "casbin", *WEBSOCKET_LOGGERS, *UVICORN_LOGGERS, "")
    levels = {name: logging.getLogger(name).level for name in names}
    logging.getLogger().addHandler(handler)
    yield handler
    for name in ("", *UVICORN_LOGGERS):
        logging.getLogger(name).removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("implementation", [
    "websockets-sansio",  # what uvicorn's --ws auto picks
    pytest.param("websockets", marks=pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                                             "ignore:The `websockets` implementation")),
])
async def test_websocket_traffic_at_debug_logs_no_token_name_or_phone(
        tenant: Tenant, settings: Settings, services: Services, every_record: Everything,
        implementation: str) -> None:
    configure_logging("DEBUG")
    logging.getLogger().setLevel(logging.DEBUG)
    app = create_app(settings, services, manage_database=False)
    async with serve(app, ws=implementation, log_level="debug") as url:  # uvicorn sets its levels after ours
        every_record.attach_to_uvicorn()
        assert logging.getLogger("uvicorn.error").isEnabledFor(logging.DEBUG), "the server logs at DEBUG"
        token = tenant.tokens["support_agent"]
        live = await subscribe(url, token)  # connection_init carries the bearer token
        await live.connection.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": LIVE}}))
        pid = await make_patient(tenant, fullName=NAME, phone=PHONE, departmentId=str(tenant.departments["A"].id))
        reply = await tenant.call("front_desk", CREATE, input={
            "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Logs", "patientId": str(pid),
            "callerName": CALLER, "callerPhone": CALLER_PHONE})
        assert reply.errors == [], reply.errors
        frames = [await live.next(), await live.next()]
        await live.connection.close()
    sent = json.dumps(frames)
    assert CALLER in sent and CALLER_PHONE[-8:] in sent, "the event carried a name and a phone over the socket"

    text = every_record.text()
    assert "WebSocket /graphql" in text, "uvicorn's WebSocket logger was captured"
    for value in (token, token[-12:], NAME, PHONE, PHONE[-8:], CALLER, CALLER_PHONE, CALLER_PHONE[-8:]):
        assert value not in text


async def test_a_document_that_does_not_parse_on_the_websocket_leaves_its_values_out_of_the_log(
        tenant: Tenant, settings: Settings, services: Services, every_record: Everything) -> None:
    """Found in review: the parse error escaped Strawberry's handling and was logged whole at ERROR, with the
    document's excerpt; now the client gets an ``error`` message and nothing is logged of the document."""
    national_id, name, diagnosis = "ZZ123456789", "Zelda Quokkafield", "Diagnosis-Quokka-Syndrome"
    typo = (f'mutation {{ patientCreate(input: {{fullName: "{name}", nationalIdType: PASSPORT, nationalId: '
            f'"{national_id}", diagnoses: "{diagnosis}"}}) {{ matchedOn }}')  # the closing brace missing
    configure_logging("DEBUG")
    app = create_app(settings, services, manage_database=False)
    async with serve(app, log_level="debug") as url:
        every_record.attach_to_uvicorn()
        live = await subscribe(url, tenant.tokens["nurse"], query=typo)
        answer = await live.next()
        await live.connection.close()

    assert answer["type"] == "error" and answer["payload"][0]["message"].startswith("Syntax Error")
    text = every_record.text()
    assert [value for value in (national_id, name, diagnosis) if value in text] == []


def test_what_escapes_a_websocket_operation_is_logged_by_kind_and_place_only(every_record: Everything) -> None:
    """Whatever else escapes Strawberry's WebSocket handlers is logged whole by them; only its kind and place
    are kept."""
    configure_logging("INFO")
    try:
        raise ValueError('Syntax Error: ... 1 | { patient(nationalId: "ZZ123456789") }')
    except ValueError as error:
        logging.getLogger("strawberry.ws.task").exception("Exception in worker task", exc_info=error)

    (record,) = [r for r in every_record.records if r.name == "strawberry.ws.task"]
    assert "ZZ123456789" not in every_record.text() and record.exc_info is None
    assert record.getMessage().startswith("Exception in worker task: ValueError at ")


async def test_what_escapes_a_plain_http_route_is_logged_by_kind_and_place_only(
        every_record: Everything, settings: Settings, services: Services) -> None:
    """uvicorn logs an error no route handles ("Exception in ASGI application") with its text and traceback: found in
    review, an unexpected error of a plain HTTP route (attachments, exports, /oauth/token, delivery callbacks), a
    database error quoting the values at fault, would have been logged whole. Its kind and place only."""

    async def failing(request: Request) -> Response:
        raise ValueError("duplicate key value (email)=(zhao.secret@example.org) violates unique constraint")

    app = create_app(settings, services, manage_database=False)
    app.router.routes.append(Route("/failing", failing))
    async with serve(app, log_level="info") as url:
        every_record.attach_to_uvicorn()
        async with httpx.AsyncClient() as client:
            answer = await client.get(url.replace("ws://", "http://").replace("/graphql", "/failing"))

    assert answer.status_code == 500
    errors = [r for r in every_record.records if r.name == "uvicorn.error" and r.levelno >= logging.ERROR]
    assert errors and "zhao.secret" not in every_record.text() and all(r.exc_info is None for r in errors)
    assert {r.getMessage().split(" at ")[0] for r in errors} == {"Exception in ASGI application: ValueError"}
