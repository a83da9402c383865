"""Opaque bearer tokens: 256 random bits behind a recognisable prefix; only a keyed hash is stored.

The prefix says whose token it is, so authentication looks in one table: ``cl_`` staff sessions,
``clp_`` patients' sessions, ``clc_`` partner clients' access tokens; ``cls_`` is a partner
client's secret (exchanged for access tokens, never a bearer token itself), ``cli_`` a patient's
one-time invitation code and ``clq_`` a survey invitation's link (derived, see ``survey_link``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid

from core.crypto import derive_key
from core.principal import PARTNER, PATIENT, STAFF

TOKEN_PREFIX = "cl_"  # noqa: S105 -- a prefix that makes leaked tokens recognisable, not a secret
PATIENT_PREFIX = "clp_"
PARTNER_PREFIX = "clc_"
SECRET_PREFIX = "cls_"  # noqa: S105 -- a prefix, not a secret
INVITATION_PREFIX = "cli_"
SURVEY_LINK_PREFIX = "clq_"
_TOKEN_SHAPE = re.compile(r"cl[pc]?_[A-Za-z0-9_-]{43}")
_SECRET_SHAPE = re.compile(r"cls_[A-Za-z0-9_-]{43}")
_INVITATION_SHAPE = re.compile(r"cli_[A-Za-z0-9_-]{43}")
_SURVEY_LINK_SHAPE = re.compile(r"clq_[A-Za-z0-9_-]{43}")


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    return bool(_TOKEN_SHAPE.fullmatch(value))


def looks_like_secret(value: str) -> bool:
    return bool(_SECRET_SHAPE.fullmatch(value))


def looks_like_invitation(value: str) -> bool:
    return bool(_INVITATION_SHAPE.fullmatch(value))


def looks_like_survey_link(value: str) -> bool:
    return bool(_SURVEY_LINK_SHAPE.fullmatch(value))


def survey_link(token_key: bytes, institution_id: uuid.UUID, invitation_id: uuid.UUID) -> str:
    """A survey invitation's link token: 256 bits of HMAC under a key derived from the token key, over the
    invitation. Derived rather than random so it is stored nowhere (the outbox computes it when it sends the
    message, the invitation keeps only its ``token_digest``); unguessable without the master key."""
    key = derive_key(token_key, "survey-link:v1")
    mac = hmac.new(key, f"{institution_id}|{invitation_id}".encode(), hashlib.sha256).digest()
    return SURVEY_LINK_PREFIX + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def token_kind(token: str) -> str:
    """Whose token it is (a principal kind), from its prefix (the token already looks like one)."""
    if token.startswith(PATIENT_PREFIX):
        return PATIENT
    if token.startswith(PARTNER_PREFIX):
        return PARTNER
    return STAFF


def token_digest(token_key: bytes, token: str) -> str:
    return hmac.new(token_key, token.encode(), hashlib.sha256).hexdigest()
