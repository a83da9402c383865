"""Opaque bearer tokens: 256 random bits behind a recognisable prefix; only a keyed hash is stored.

The prefix says whose token it is, so authentication looks in one table: ``cl_`` staff sessions,
``clp_`` patients' sessions, ``clc_`` partner clients' access tokens; ``cls_`` is a partner
client's secret (exchanged for access tokens, never a bearer token itself), ``cli_`` a patient's
one-time invitation code, ``clr_`` a one-time password reset code and ``clq_`` a survey invitation's link
(derived, see ``survey_link``). Also the RFC 6238 time-based codes of staff's second factor (``pyotp``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime

import pyotp

from core.crypto import derive_key
from core.principal import PARTNER, PATIENT, STAFF

TOKEN_PREFIX = "cl_"  # noqa: S105 -- a prefix that makes leaked tokens recognisable, not a secret
PATIENT_PREFIX = "clp_"
PARTNER_PREFIX = "clc_"
SECRET_PREFIX = "cls_"  # noqa: S105 -- a prefix, not a secret
INVITATION_PREFIX = "cli_"
SURVEY_LINK_PREFIX = "clq_"
RESET_PREFIX = "clr_"
_TOKEN_SHAPE = re.compile(r"cl[pc]?_[A-Za-z0-9_-]{43}")
_SECRET_SHAPE = re.compile(r"cls_[A-Za-z0-9_-]{43}")
_INVITATION_SHAPE = re.compile(r"cli_[A-Za-z0-9_-]{43}")
_SURVEY_LINK_SHAPE = re.compile(r"clq_[A-Za-z0-9_-]{43}")
_RESET_SHAPE = re.compile(r"clr_[A-Za-z0-9_-]{43}")
_TOTP_SHAPE = re.compile(r"[0-9]{6}")
TOTP_ISSUER = "careloop"
TOTP_PERIOD = 30  # seconds per time step (RFC 6238's default, what every authenticator app assumes)
TOTP_DRIFT_STEPS = 1  # a code of the step before or after is accepted too: clocks drift, people type slowly


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    return bool(_TOKEN_SHAPE.fullmatch(value))


def looks_like_secret(value: str) -> bool:
    return bool(_SECRET_SHAPE.fullmatch(value))


def looks_like_invitation(value: str) -> bool:
    return bool(_INVITATION_SHAPE.fullmatch(value))


def looks_like_reset_code(value: str) -> bool:
    return bool(_RESET_SHAPE.fullmatch(value))


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


# -- RFC 6238 time-based one-time passwords ---------------------------------------------------


def new_totp_secret() -> str:
    """160 random bits in base32, as RFC 4226 recommends and authenticator apps expect."""
    return pyotp.random_base32()


def totp_uri(secret: str, account_name: str) -> str:
    """The otpauth:// URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret, interval=TOTP_PERIOD).provisioning_uri(name=account_name, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step a code belongs to (now, or one step either side), if it is valid and later than the last
    step accepted for this secret: a code works once, even within its 30 seconds. None otherwise."""
    code = code.strip()
    if not _TOTP_SHAPE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = int(now.timestamp()) // TOTP_PERIOD
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.at(step * TOTP_PERIOD), code):
            return step
    return None
