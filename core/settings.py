"""Settings read once from ``CARELOOP_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from core.db import backend_of
from core.passwords import HashParameters

Environment = Literal["development", "production"]
SmtpSecurity = Literal["off", "starttls", "tls"]
LogFormat = Literal["text", "json"]

DEFAULT_DATABASE_URL = "sqlite://var/careloop.sqlite3"
DEFAULT_KEY_FILE = "var/master.key"
DEFAULT_ATTACHMENT_DIR = "var/attachments"
# Browser origins allowed by CORS in development when CARELOOP_CORS_ORIGINS is unset: the usual dev servers
# (create-react-app, Next.js on 3000; Vite on 5173). Production allows none unless told.
DEV_CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173", "http://127.0.0.1:5173")


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 15
    max_fields: int = 500  # fields of a document with its fragments expanded
    request_timeout_ms: int = 10_000  # an HTTP request's time budget, sign-in to response
    max_tokens: int = 2000
    max_body_bytes: int = 64 * 1024
    max_page_size: int = 100
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    # Sign-in attempts (login, patientLogin, totpEnrollForLogin, POST /oauth/token) per client address and minute,
    # counted before any password is checked: an address over it is refused (RATE_LIMITED) without argon2 work.
    login_per_address_per_minute: int = 30
    # WebSockets of one client address open at once in one worker process (app/websocket_limit.py; 0: no cap):
    # those not yet signed in (held up to 10 s waiting for connection_init), and all of them.
    websockets_pending_per_address: int = 10
    websockets_per_address: int = 200
    token_ttl_hours: int = 12
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_attachments_per_ticket: int = 20


@dataclass(frozen=True)
class SmtpSettings:
    """The relay e-mail to patients goes through; no ``host`` means e-mails are only logged."""

    host: str = ""
    port: int = 587
    security: SmtpSecurity = "starttls"  # off: plain; starttls: upgrade on connect (required); tls: implicit TLS
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 10
    sender_address: str = ""  # the From when the institution has set none
    ca_file: str = ""  # trust these CAs instead of the system's (a private relay)

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    environment: Environment = "development"
    master_key: str | None = None
    key_file: Path = Path(DEFAULT_KEY_FILE)
    attachment_dir: Path = Path(DEFAULT_ATTACHMENT_DIR)
    checkpoint_every_events: int = 10_000  # sign a chain's head after this many new events...
    checkpoint_every_seconds: int = 60  # ...or once its newest event is this old, whichever comes first
    host: str = "127.0.0.1"
    port: int = 8000
    limits: Limits = field(default_factory=Limits)
    password_hashing: HashParameters = field(default_factory=HashParameters)
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8000"  # where patients reach the server (links in messages)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    cors_origins: tuple[str, ...] | None = None  # None: DEV_CORS_ORIGINS in development, none in production
    trusted_proxies: tuple[str, ...] = ()  # IPs/CIDRs whose X-Forwarded-For names the client (docs/operations.md)
    log_format: LogFormat = "text"  # json: one JSON object per line
    metrics_port: int = 0  # Prometheus metrics on this port (0: off); never the API's port
    metrics_host: str = "127.0.0.1"
    # Signed-in principals kept this many seconds per process (0: off), only on PostgreSQL while the database's
    # change notifications reach the process (core/principal_cache.py); the TTL is the safety net.
    principal_cache_seconds: int = 30

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def cors_allowed_origins(self) -> tuple[str, ...]:
        """The browser origins (``scheme://host[:port]``) whose pages may call the API."""
        if self.cors_origins is not None:
            return self.cors_origins
        return () if self.is_production else DEV_CORS_ORIGINS


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(f"CARELOOP_{name}")
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"CARELOOP_{name} must be a whole number") from None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Settings from the environment; invalid values stop the process with a clear message."""
    env = dict(os.environ if env is None else env)
    environment = env.get("CARELOOP_ENV", "development")
    if environment not in ("development", "production"):
        raise SystemExit("CARELOOP_ENV must be 'development' or 'production'")
    defaults = Limits()
    limits = Limits(**{name: _int(env, f"LIMIT_{name.upper()}", getattr(defaults, name))
                       for name in defaults.__dataclass_fields__})
    return Settings(
        database_url=_database_url(env.get("CARELOOP_DATABASE_URL") or DEFAULT_DATABASE_URL),
        environment=cast(Environment, environment),
        master_key=env.get("CARELOOP_MASTER_KEY") or None,
        key_file=Path(env.get("CARELOOP_KEY_FILE") or DEFAULT_KEY_FILE),
        attachment_dir=Path(env.get("CARELOOP_ATTACHMENT_DIR") or DEFAULT_ATTACHMENT_DIR),
        checkpoint_every_events=_int(env, "CHECKPOINT_EVERY_EVENTS", 10_000),
        checkpoint_every_seconds=_checkpoint_every_seconds(env),
        host=env.get("CARELOOP_HOST", "127.0.0.1"),
        port=_int(env, "PORT", 8000),
        limits=limits,
        password_hashing=HashParameters(
            time_cost=_int(env, "ARGON2_TIME_COST", HashParameters.time_cost),
            memory_cost_kib=_int(env, "ARGON2_MEMORY_KIB", HashParameters.memory_cost_kib),
            parallelism=_int(env, "ARGON2_PARALLELISM", HashParameters.parallelism),
        ),
        log_level=env.get("CARELOOP_LOG_LEVEL", "INFO").upper(),
        public_url=env.get("CARELOOP_PUBLIC_URL") or "http://127.0.0.1:8000",
        smtp=_smtp(env, environment == "production"),
        cors_origins=_cors_origins(env.get("CARELOOP_CORS_ORIGINS")),
        trusted_proxies=_trusted_proxies(env.get("CARELOOP_TRUSTED_PROXIES", "")),
        log_format=_log_format(env.get("CARELOOP_LOG_FORMAT") or "text"),
        metrics_port=_metrics_port(env),
        metrics_host=env.get("CARELOOP_METRICS_HOST") or "127.0.0.1",
        principal_cache_seconds=_principal_cache_seconds(env),
    )


def _database_url(url: str) -> str:
    try:
        backend_of(url)
    except ValueError:
        raise SystemExit("CARELOOP_DATABASE_URL must be sqlite://PATH or postgres://USER@HOST:PORT/DATABASE") from None
    return url


def _checkpoint_every_seconds(env: dict[str, str]) -> int:
    """At least 1: the signer looks again after this long at most, and 0 had it loop without a pause."""
    seconds = _int(env, "CHECKPOINT_EVERY_SECONDS", 60)
    if seconds < 1:
        raise SystemExit("CARELOOP_CHECKPOINT_EVERY_SECONDS must be at least 1")
    return seconds


def _principal_cache_seconds(env: dict[str, str]) -> int:
    seconds = _int(env, "PRINCIPAL_CACHE_SECONDS", 30)
    if not 0 <= seconds <= 300:
        raise SystemExit("CARELOOP_PRINCIPAL_CACHE_SECONDS must be 0 (no cache) to 300")
    return seconds


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """``CARELOOP_TRUSTED_PROXIES``: comma-separated IP addresses or networks (CIDR) of the reverse proxies in
    front of careloop. Checked here, since a typo would otherwise trust nobody without a word; no ``*``: a
    client that reaches the port directly could then choose the address its audit records show."""
    proxies = []
    for item in (piece.strip() for piece in raw.split(",") if piece.strip()):
        try:  # normalised: uvicorn would take "10.0.0.1/8" for a host name and trust nobody
            proxies.append(str(ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)))
        except ValueError:
            raise SystemExit("CARELOOP_TRUSTED_PROXIES must list IP addresses or networks like 10.0.0.0/8, "
                             "comma-separated") from None
    return tuple(proxies)


def _metrics_port(env: dict[str, str]) -> int:
    port = _int(env, "METRICS_PORT", 0)
    if not 0 <= port <= 65535 or (port and port == _int(env, "PORT", 8000)):
        raise SystemExit("CARELOOP_METRICS_PORT must be a free TCP port other than CARELOOP_PORT (0: no metrics)")
    return port


def _log_format(raw: str) -> LogFormat:
    if raw not in ("text", "json"):
        raise SystemExit("CARELOOP_LOG_FORMAT must be 'text' or 'json'")
    return cast(LogFormat, raw)


def _cors_origins(raw: str | None) -> tuple[str, ...] | None:
    """``CARELOOP_CORS_ORIGINS``: comma-separated exact origins; set but empty means none. No ``*``: every
    portal is named, so a page from anywhere else cannot read answers with a token it holds."""
    if raw is None:
        return None
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#*@ "):
            raise SystemExit("CARELOOP_CORS_ORIGINS must list origins like https://portal.example.org "
                             "(scheme, host and port only, comma-separated)")
    return origins


def _smtp(env: dict[str, str], production: bool) -> SmtpSettings:
    security = env.get("CARELOOP_SMTP_STARTTLS") or "starttls"
    if security not in ("off", "starttls", "tls"):
        raise SystemExit("CARELOOP_SMTP_STARTTLS must be 'off', 'starttls' or 'tls'")
    smtp = SmtpSettings(
        host=env.get("CARELOOP_SMTP_HOST", ""),
        port=_int(env, "SMTP_PORT", 465 if security == "tls" else 587),
        security=cast(SmtpSecurity, security),
        username=env.get("CARELOOP_SMTP_USERNAME", ""),
        password=env.get("CARELOOP_SMTP_PASSWORD", ""),
        timeout_seconds=_int(env, "SMTP_TIMEOUT_SECONDS", 10),
        sender_address=env.get("CARELOOP_SMTP_FROM", ""),
        ca_file=env.get("CARELOOP_SMTP_CA_FILE", ""),
    )
    if production and smtp.configured and smtp.security == "off" and smtp.password:
        raise SystemExit("CARELOOP_SMTP_PASSWORD would cross the network in clear: set CARELOOP_SMTP_STARTTLS")
    return smtp
