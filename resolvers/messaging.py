"""An institution's messaging settings and its SMS / WeChat gateways.

Settings are one row per institution; until an admin saves them the defaults of the model are in
force (``settings`` answers an unsaved row, version 0). A gateway's secret signs the bodies sent to
it (HMAC-SHA256): it is sealed with the institution's key, written and never read back through the
API, named (never shown) in audit rows, and opened only by ``gateway`` for the sender. ``gateway``
needs no request: the outbox's background worker passes the process's keyring.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import uuid
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.crypto import InstitutionKeys, field_aad
from core.errors import BadUserInput, Conflict
from core.ids import uuid7
from core.messages import Gateway, is_internal_address
from core.validation import Problems, camel_case, clean_text, normalize_email, one_of
from models import MessageGateway, MessagingSettings
from models.keyring import KeyRing
from models.messaging import GATEWAY_CHANNELS
from policies.guard import Decision
from resolvers import access, versioning
from resolvers.context import Context

# column: (least, most) for the whole-number settings
RANGES: dict[str, tuple[int, int]] = {
    "reminder_hours_before": (1, 168),
    "non_care_cap": (0, 50),
    "non_care_cap_days": (1, 90),
    "portal_change_min_hours": (0, 168),
    "portal_horizon_days": (1, 365),
}
SETTINGS_COLUMNS = (*RANGES, "quiet_start", "quiet_end", "institution_phone", "email_from")
TIMEOUT_MS = (100, 30_000)
SECRET_LENGTH = (16, 256)
URL_LIMIT = 500
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# As it is printed in a message: digits with the usual separators, e.g. "0755-1234 5678", "400-800-1234", "95555".
_PHONE_AS_SHOWN = re.compile(r"\+?[0-9][0-9 ()\-]*[0-9]")


# -- the outbox's side ------------------------------------------------------------------------------


async def settings(institution_id: uuid.UUID) -> MessagingSettings:
    """The institution's settings, or the defaults (an unsaved row, version 0) when it has none."""
    row = await MessagingSettings.get_or_none(institution_id=institution_id)
    return row if row is not None else MessagingSettings(institution_id=institution_id, version=0)


async def gateway(institution_id: uuid.UUID, channel: str, keyring: KeyRing, *,
                  switched_off_too: bool = False) -> Gateway | None:
    """The institution's active gateway for a channel with its secret opened, or None (no gateway, or
    switched off). For the sender only: the secret is never logged or returned through the API.
    ``switched_off_too``: one switched off as well, for the delivery reports of what it was handed before."""
    found = MessageGateway.filter(institution_id=institution_id, channel=channel)
    row = await (found if switched_off_too else found.filter(active=True)).first()
    if row is None:
        return None
    keys = await keyring.get(institution_id)
    secret = keys.open_bytes(bytes(row.secret), _secret_aad(institution_id, row.id))
    return Gateway(url=row.url, secret=secret, timeout_seconds=row.timeout_ms / 1000)


def _secret_aad(institution_id: uuid.UUID, gateway_id: uuid.UUID) -> bytes:
    return field_aad(institution_id, "message_gateway", "secret", gateway_id)


def seal_secret(keys: InstitutionKeys, institution_id: uuid.UUID, gateway_id: uuid.UUID, secret: str) -> bytes:
    return keys.seal_bytes(secret.encode(), _secret_aad(institution_id, gateway_id))


# -- the API: settings ------------------------------------------------------------------------------


async def read(ctx: Context) -> tuple[MessagingSettings, list[MessageGateway]]:
    """Settings and gateways (admins). The gateways' secrets stay sealed: the API shows only that one is set."""
    decision = await access.authorize(ctx, "messaging", "read", action=Action.READ, resource_type="messaging_settings")
    row = await settings(ctx.institution_id)
    gateways = list(await MessageGateway.filter(institution_id=ctx.institution_id).order_by("channel"))
    ctx.reads.note("messaging_settings", row.id if row.version else None, None, rule=decision.rule)
    return row, gateways


async def update(ctx: Context, data: dict[str, Any], version: int | None) -> MessagingSettings:
    """Change the settings given (others stay). ``version``: the one read (0 for the defaults); a stale one
    is a CONFLICT and writes nothing. Without it, the last write wins."""
    decision = await access.authorize(ctx, "messaging", "update", action=Action.UPDATE,
                                      resource_type="messaging_settings")
    if not data:
        raise BadUserInput("input: give at least one setting to change.", field="input")
    values = _settings_values(data)
    try:
        row_id = await _write_settings(ctx, values, version, decision)
    except IntegrityError:  # another request saved the first settings a moment ago
        if version is not None:
            raise _stale() from None
        # without a version the last write wins (found in review: it was a CONFLICT): that row is there to change
        row_id = await _write_settings(ctx, values, version, decision)
    return await MessagingSettings.get(id=row_id)


async def _write_settings(ctx: Context, values: dict[str, Any], version: int | None,
                          decision: Decision) -> uuid.UUID:
    """``update``'s transaction: the institution's row created or changed over ``version`` (None: whatever it is),
    recorded; the row's id."""
    async with in_transaction():
        row = await MessagingSettings.filter(institution_id=ctx.institution_id).select_for_update().first()
        if version is not None and version != (0 if row is None else row.version):
            raise _stale()
        current = row if row is not None else MessagingSettings(institution_id=ctx.institution_id)
        _check_quiet_hours(values.get("quiet_start", current.quiet_start), values.get("quiet_end",
                                                                                      current.quiet_end))
        _check_portal_window(values.get("portal_change_min_hours", current.portal_change_min_hours),
                             values.get("portal_horizon_days", current.portal_horizon_days),
                             "portalChangeMinHours" if "portal_change_min_hours" in values else "portalHorizonDays")
        if row is None:
            row = await MessagingSettings.create(id=uuid7(), institution_id=ctx.institution_id, version=1, **values)
            action = Action.CREATE
        else:
            await MessagingSettings.filter(id=row.id).update(version=row.version + 1, updated_at=datetime.now(UTC),
                                                             **values)  # a query set's update skips auto_now
            action = Action.UPDATE
        await writer.append([access.write_record(ctx, action, "messaging_settings", row.id,
                                                 fields=frozenset(values), decision=decision)])
    return row.id


def _settings_values(data: dict[str, Any]) -> dict[str, Any]:
    """The settings given, checked: every problem reported at once (quiet hours, and the portal's window, against
    each other when both are given; against the stored ones when one is, in the transaction)."""
    problems = Problems()
    values = problems.each(data, _setting)
    if "quiet_start" in values and "quiet_end" in values:
        with problems.collect("quietEnd"):
            _check_quiet_hours(values["quiet_start"], values["quiet_end"])
    if "portal_change_min_hours" in values and "portal_horizon_days" in values:
        with problems.collect("portalChangeMinHours"):
            _check_portal_window(values["portal_change_min_hours"], values["portal_horizon_days"],
                                 "portalChangeMinHours")
    problems.check()
    return values


def _setting(name: str, value: Any) -> Any:
    field = camel_case(name)
    if value is None:
        raise BadUserInput(f"{field}: leave it out to keep it; it cannot be null.", field=field, reason="required")
    if name in RANGES:
        least, most = RANGES[name]
        if not least <= value <= most:
            raise BadUserInput(f"{field}: must be between {least} and {most}.", field=field, reason="out_of_range")
        return value
    if name in ("quiet_start", "quiet_end"):
        return _local_time(value, field)
    if name == "institution_phone":
        return _phone_as_shown(value)
    if name == "email_from":
        address = value.strip()
        return normalize_email(address, field=field) if address else ""
    raise BadUserInput(f"{field}: cannot be set here.", field=field)


def _local_time(value: time, field: str) -> str:
    if value.tzinfo is not None or value.second or value.microsecond:
        raise BadUserInput(f"{field}: a local time in whole minutes, without an offset (the institution's zone "
                           "applies).", field=field)
    return value.isoformat("minutes")


def _check_portal_window(min_hours: int, horizon_days: int, field: str) -> None:
    """The portal books, moves and cancels from ``min_hours`` before a slot up to ``horizon_days`` ahead: a window
    closed before it opens leaves patients and partners nothing (found in review: each setting was checked alone)."""
    if min_hours >= horizon_days * 24:
        raise BadUserInput(f"{field}: online changes would close ({min_hours} hours before a slot) no later than "
                           f"booking opens ({horizon_days} days ahead): no slot would be left to book.", field=field,
                           reason="portal_window_empty")


def _check_quiet_hours(start: str, end: str) -> None:
    if start == end:
        raise BadUserInput("quietEnd: quiet hours must end at another time than they start.", field="quietEnd")


def _phone_as_shown(value: str) -> str:
    """Kept as the institution writes it (it is printed in messages), checked to be a phone number."""
    text = clean_text(value, field="institutionPhone", max_length=32)
    if text and (not _PHONE_AS_SHOWN.fullmatch(text) or sum(c.isdigit() for c in text) < 3):
        raise BadUserInput("institutionPhone: digits, with spaces, hyphens, parentheses or a leading + only.",
                           field="institutionPhone")
    return text


# -- the API: gateways ------------------------------------------------------------------------------


async def set_gateway(ctx: Context, data: dict[str, Any], version: int | None = None) -> MessageGateway:
    """Create or change the gateway of a channel. Fields left out stay; a new gateway needs url and secret.
    ``version``: the one read (0 for a channel without a gateway); a stale one is a CONFLICT and writes nothing.
    Without it, the last write wins. The secret is sealed before it reaches the database, and only its field
    name is recorded."""
    decision = await access.authorize(ctx, "messaging", "update", action=Action.UPDATE,
                                      resource_type="message_gateway")
    problems = Problems()
    channel = ""
    with problems.collect("channel"):
        channel = one_of(data.get("channel"), GATEWAY_CHANNELS, "channel")
    values = _gateway_values(ctx, data, problems)
    secret = values.pop("secret", None)
    try:
        row_id = await _write_gateway(ctx, channel, dict(values), secret, version, decision)
    except IntegrityError:  # another request created this channel's gateway a moment ago
        if version is not None:
            raise versioning.stale("gateway") from None
        # without a version the last write wins (found in review: it was a CONFLICT): that gateway is there to change
        row_id = await _write_gateway(ctx, channel, dict(values), secret, version, decision)
    return await MessageGateway.get(id=row_id)


async def _write_gateway(ctx: Context, channel: str, values: dict[str, Any], secret: str | None, version: int | None,
                         decision: Decision) -> uuid.UUID:
    """``set_gateway``'s transaction: the channel's gateway created or changed over ``version`` (None: whatever it
    is), its secret sealed for its row, recorded; the row's id."""
    async with in_transaction():
        row = await MessageGateway.filter(institution_id=ctx.institution_id,
                                          channel=channel).select_for_update().first()
        if version is not None and version != (0 if row is None else row.version):
            raise versioning.stale("gateway")
        if row is None:
            if "url" not in values or secret is None:
                field = "url" if "url" not in values else "secret"
                raise BadUserInput(f"{field}: required for a new gateway.", field=field)
            gateway_id = uuid7()
            sealed = seal_secret(ctx.require_keys(), ctx.institution_id, gateway_id, secret)
            row = await MessageGateway.create(id=gateway_id, institution_id=ctx.institution_id, channel=channel,
                                              secret=sealed, **values)
            action = Action.CREATE
        else:
            if secret is not None:
                values["secret"] = seal_secret(ctx.require_keys(), ctx.institution_id, row.id, secret)
            if values:  # locked, so over the version read (checked above when the caller gave one)
                await versioning.update_versioned(row, None, "gateway", **values)
            action = Action.UPDATE
        written = frozenset(values) | ({"secret"} if secret is not None else frozenset())
        if written:
            await writer.append([access.write_record(ctx, action, "message_gateway", row.id, fields=written,
                                                     decision=decision)])
    return row.id


def _gateway_values(ctx: Context, data: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """The gateway's fields given, checked: every problem reported at once (with those already in ``problems``)."""
    given: dict[str, Any] = {name: data[name] for name in ("url", "secret", "timeout_ms", "active") if name in data}
    values = problems.each(given, lambda name, value: _gateway_value(ctx, name, value))
    problems.check()
    return values


def _gateway_value(ctx: Context, name: str, value: Any) -> Any:
    field = camel_case(name)
    if value is None:
        raise BadUserInput(f"{field}: leave it out to keep it; it cannot be null.", field=field, reason="required")
    if name == "url":
        return check_url(value, production=ctx.services.settings.is_production)
    if name == "secret":
        return _secret(value)
    if name == "timeout_ms":
        if not TIMEOUT_MS[0] <= value <= TIMEOUT_MS[1]:
            raise BadUserInput(f"timeoutMs: must be between {TIMEOUT_MS[0]} and {TIMEOUT_MS[1]}.",
                               field="timeoutMs", reason="out_of_range")
        return value
    return bool(value)


def _secret(value: str) -> str:
    least, most = SECRET_LENGTH
    if not least <= len(value) <= most or not value.isascii() or not value.isprintable() or value != value.strip():
        raise BadUserInput(f"secret: {least} to {most} printable ASCII characters, without spaces around.",
                           field="secret")
    return value


def check_url(value: str, *, production: bool) -> str:
    """An https URL (plain http only to this machine, and only outside production), with no credentials
    or fragment; in production not an address of this machine or a private network."""
    text = value.strip()
    try:
        if len(text) > URL_LIMIT or not text.isascii() or not text.isprintable() or " " in text:
            raise ValueError
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port  # .port raises ValueError when it is not a port number
    except ValueError:
        raise BadUserInput("url: not a valid URL.", field="url") from None
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise BadUserInput("url: a host, and no user, password or fragment.", field="url")
    host = host.removesuffix(".")  # "localhost." is localhost
    loopback = host in LOOPBACK_NAMES or host.endswith(".localhost") or _is_loopback(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback and not production):
        raise BadUserInput("url: must be https (http only to this machine, in development).", field="url")
    if production and (loopback or _is_private(host)):
        raise BadUserInput("url: must not be an address of this machine or a private network.", field="url")
    return text


_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, also in the spellings the resolver reads as IPv4 (found in review:
    "127.1", "2130706433", "0x7f000001" and "0177.0.0.1" all reach 127.0.0.1, the last two past the check)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_loopback(host: str) -> bool:
    address = _address(host)
    return address is not None and address.is_loopback


def _is_private(host: str) -> bool:
    address = _address(host)
    return address is not None and is_internal_address(address)


def url_host(url: str) -> str:
    """What the API shows of a gateway's URL: its host (a path or query may carry an account key)."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]


def _stale() -> Conflict:
    return Conflict("version: the settings were changed since you read them; read them again.", field="version")

