"""Opaque bearer tokens: 256 random bits behind a recognisable prefix; only a keyed hash is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "cl_"  # noqa: S105 -- a prefix that makes leaked tokens recognisable, not a secret
_TOKEN_SHAPE = re.compile(r"cl_[A-Za-z0-9_-]{43}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    return bool(_TOKEN_SHAPE.fullmatch(value))


def token_digest(token_key: bytes, token: str) -> str:
    return hmac.new(token_key, token.encode(), hashlib.sha256).hexdigest()
