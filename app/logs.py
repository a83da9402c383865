"""Logging: plain lines to stderr. Nothing we log carries patient data, identifiers or secrets."""

from __future__ import annotations

import logging
from importlib.util import find_spec
from pathlib import Path

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


def clamp_websocket_logging() -> None:
    """Idempotent: also for processes that do not go through `configure_logging` (uvicorn's workers)."""
    for name in WEBSOCKET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logger = logging.getLogger(UVICORN_WEBSOCKET_LOGGER)
    if not any(isinstance(f, NoWebSocketFrames) for f in logger.filters):
        logger.addFilter(NoWebSocketFrames())


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in SQL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("casbin").setLevel(logging.WARNING)  # logs denied requests' values when enabled
    clamp_websocket_logging()
