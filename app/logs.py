"""Logging to stderr: plain lines, or JSON lines with ``CARELOOP_LOG_FORMAT=json`` (one object per line: time,
level, logger, message, and for uvicorn's access lines the request's fields). Nothing we log carries patient
data, identifiers or secrets: the format changes the shape of a line, never what goes into it."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from core.errors import kind_and_place

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# These log every SQL statement with its parameters at DEBUG (ciphertexts, blind indexes, names):
# they stay at WARNING whatever level is asked for.
SQL_LOGGERS = ("tortoise", "aiosqlite", "asyncpg")

# The websockets library logs every frame at DEBUG with its payload (`< TEXT '{"type":"connection_init",
# "payload":{"authorization":"Bearer cl_..."}}'`, `> TEXT '{"type":"next",...}'`: tokens, names, phones).
# Its own loggers ("websockets", "websockets.server", "websockets.client") stay at WARNING. But uvicorn
# hands the library *its* logger, "uvicorn.error" (websockets-sansio and websockets implementations alike),
# and sets that one's level itself from --log-level after we configured ours: a filter on it drops the
# library's DEBUG lines whatever its level.
WEBSOCKET_LOGGERS = ("websockets",)
UVICORN_WEBSOCKET_LOGGER = "uvicorn.error"
STRAWBERRY_WEBSOCKET_LOGGERS = ("strawberry.ws", "strawberry.ws.task")  # a filter holds for its own logger only
# Loggers that write what escapes whole, text and traceback: Strawberry's WebSocket handlers, and uvicorn's error
# logger ("Exception in ASGI application"), which an unexpected error of a plain HTTP route (attachments, exports,
# /oauth/token, delivery callbacks) reaches: a database error's text quotes the values at fault (found in review).
# asyncpg's pool logs a traceback each time it fails to reconnect its floor of connections while the database is
# away (backing off from 1 to 60 s): a line each is enough.
EXCEPTION_LOGGERS = (*STRAWBERRY_WEBSOCKET_LOGGERS, UVICORN_WEBSOCKET_LOGGER, "asyncpg.pool")


def _package_dir(name: str) -> str | None:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


class NoWebSocketFrames(logging.Filter):
    """Drops records below INFO that the websockets library writes (frames, with their payloads)."""

    def __init__(self) -> None:
        super().__init__()
        self.library = _package_dir("websockets")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        if record.name == "websockets" or record.name.startswith("websockets."):
            return False
        return self.library is None or not str(Path(record.pathname).resolve()).startswith(self.library)


class NoExceptionText(logging.Filter):
    """Keeps an exception's kind and place and drops its text and traceback's values: Strawberry's WebSocket
    handlers and uvicorn log what escapes whole, and a GraphQL error's text quotes the document (found in review:
    a document with a typo was logged with the patient's name and ID number in it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage().rstrip()}: {kind_and_place(record.exc_info[1])}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def clamp_library_logging() -> None:
    """Idempotent: also for processes that do not go through `configure_logging` (uvicorn's workers)."""
    for name in WEBSOCKET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _add_once(logging.getLogger(UVICORN_WEBSOCKET_LOGGER), NoWebSocketFrames)
    for name in EXCEPTION_LOGGERS:
        _add_once(logging.getLogger(name), NoExceptionText)


def _add_once(logger: logging.Logger, kind: type[logging.Filter]) -> None:
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


class RefusalLines:
    """At most one line a minute per reason, for refusals a stranger can cause at will (found in review: each bad
    delivery callback wrote a line, so anyone could fill the logs). The first refusal of a reason is logged at once,
    with its detail; those that follow within the minute are only counted, and told in one line when the minute
    ends, which opens the next one: a steady flood writes a line a minute, and after a quiet minute a reason starts
    over with a detailed line. Kept per process (each worker has its own minute)."""

    def __init__(self, logger: logging.Logger, what: str, *, seconds: float = 60.0) -> None:
        self.logger, self.what, self.seconds = logger, what, seconds
        self._more: dict[str, int] = {}  # reason -> refusals since its last line, while its minute is open

    def refused(self, reason: str, message: str, *args: object) -> None:
        """``message % args`` is the first line's detail: never an identifier, a secret or patient data."""
        if reason in self._more:
            self._more[reason] += 1
            return
        self.logger.info(message, *args)
        self._open(reason)

    def _open(self, reason: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop to end the minute: nothing is held back
            return
        self._more[reason] = 0
        loop.call_later(self.seconds, self._close, reason)

    def _close(self, reason: str) -> None:
        more = self._more.pop(reason, 0)
        if more:
            self.logger.info("%s refused (%s): %d more in the last %g s", self.what, reason, more, self.seconds)
            self._open(reason)


class JsonLines(logging.Formatter):
    """One JSON object per record, for log collectors that read JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            entry.update(client=client, method=method, path=path, status=status)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class NoQueryStrings(logging.Filter):
    """uvicorn's access lines show the query string, and the unsubscribe links carry a signed token there:
    the path stays, the query goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].partition("?")[0] + "?...", *args[3:])
        return True


def formatter(log_format: str) -> logging.Formatter:
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    for name in SQL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("casbin").setLevel(logging.WARNING)  # logs denied requests' values when enabled
    clamp_library_logging()


def uvicorn_log_config(level: str = "INFO", log_format: str = "text") -> dict[str, Any]:
    """What ``careloop serve`` hands uvicorn, which applies it in every worker process: its own loggers and
    ours in one format on stderr, the SQL and websockets loggers held at WARNING, no query strings."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"careloop": {"()": "app.logs.JsonLines"} if log_format == "json" else {"format": TEXT_FORMAT}},
        "filters": {"no_query_strings": {"()": "app.logs.NoQueryStrings"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "careloop",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": [], "propagate": True, "filters": ["no_query_strings"]},
            **{name: {"level": "WARNING"} for name in (*SQL_LOGGERS, *WEBSOCKET_LOGGERS, "casbin")},
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }
