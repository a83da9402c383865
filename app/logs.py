"""Logging: plain lines to stderr. Nothing we log carries patient data, identifiers or secrets."""

from __future__ import annotations

import logging

# These log every SQL statement with its parameters at DEBUG (ciphertexts, blind indexes, names):
# they stay at WARNING whatever level is asked for.
SQL_LOGGERS = ("tortoise", "aiosqlite", "asyncpg")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in SQL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("casbin").setLevel(logging.WARNING)  # logs denied requests' values when enabled
