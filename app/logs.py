"""Logging: plain lines to stderr. Nothing we log carries patient data, identifiers or secrets."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Tortoise logs every SQL statement with its parameters at DEBUG: ciphertexts, blind indexes, names.
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("casbin").setLevel(logging.WARNING)
