"""The senders of messages to patients, one per channel (the seam: ``core.messages``).

- e-mail: ``SmtpSender`` through the relay of ``CARELOOP_SMTP_*`` (``LoggingSender`` when none is set);
- SMS and WeChat: ``WebhookSender``, a JSON POST to the institution's gateway signed with HMAC-SHA256
  under its secret, retried with backoff within one send;
- app: ``PortalInboxSender``: the message is the communication row itself, which the patient reads in
  the portal; handing it over moves nothing.

A sender answers the gateway's id for the message or raises ``SendFailed`` with a short reason. No
address, subject or body reaches a log line or an exception's text (the libraries' exceptions, which
quote recipients, are not chained).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import email.utils
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import aiosmtplib
import httpcore
import httpx

from core.messages import Gateway, MessageSender, Outgoing, SendFailed, is_internal_address
from core.settings import Settings, SmtpSettings

log = logging.getLogger("careloop.messages")

TIMESTAMP_HEADER = "X-Careloop-Timestamp"
SIGNATURE_HEADER = "X-Careloop-Signature"
GATEWAY_ID_MAX = 100  # Communication.gateway_message_id
# httpx logs every request's URL at INFO; a gateway's URL may carry its own credentials.
HTTP_LOGGERS = ("httpx", "httpcore")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature both ways (our webhooks, the gateways' callbacks): hex HMAC-SHA256 of
    ``timestamp + "." + body`` under the gateway's secret."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Constant-time; a signature that is not even ASCII simply does not match."""
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.strip().lower().encode())


# --- e-mail -----------------------------------------------------------------------------------------


class SmtpSender:
    """E-mail over SMTP: one connection per message, STARTTLS or implicit TLS, optional AUTH."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> str | None:
        """As ``aiosmtplib.send``, but a send cut short (the outbox's hand-over deadline cancels it) hangs up at once:
        aiosmtplib's own says QUIT first and waits for its answer, up to one SMTP timeout past the deadline (found in
        review), and a close would still flush what was written of the message."""
        email_message = self.compose(message)
        smtp = self.settings
        client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, username=smtp.username or None,
                                 password=smtp.password or None, use_tls=smtp.security == "tls",
                                 start_tls=smtp.security == "starttls", cert_bundle=smtp.ca_file or None,
                                 timeout=smtp.timeout_seconds)
        try:
            try:
                await client.connect()
                await client.send_message(email_message)
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as error:
                await _hang_up(client, error)
                raise smtp_failure(error) from None  # the library's text names the recipient
            await _hang_up(client)
        except asyncio.CancelledError:
            _abort(client)
            raise
        return str(email_message["Message-ID"])

    def compose(self, message: Outgoing) -> EmailMessage:
        """A text/plain UTF-8 message; the Message-ID carries the communication id for tracing."""
        sender = message.sender_address or self.settings.sender_address
        if not sender:
            raise SendFailed("no_sender_address")
        email_message = EmailMessage(policy=SMTP_POLICY)
        try:
            email_message["From"] = Address(addr_spec=sender)
            email_message["To"] = Address(addr_spec=message.address)
        except (ValueError, IndexError, email.errors.MessageError):  # the parser's errors quote the address
            raise SendFailed("bad_address", permanent=True) from None
        email_message["Subject"] = " ".join(message.subject.split())  # one line: no header injection
        email_message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        email_message["Message-ID"] = f"<{message.communication_id}@{_domain_of(sender)}>"
        email_message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        if message.unsubscribe_url:
            email_message["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            email_message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        # base64: Chinese text stays compact and passes relays without 8BITMIME
        email_message.set_content(message.body, subtype="plain", charset="utf-8", cte="base64")
        return email_message


async def _hang_up(client: aiosmtplib.SMTP, error: BaseException | None = None) -> None:
    """QUIT and close, as ``aiosmtplib.send`` does; a connection lost or timed out is closed without a word. Cut short
    meanwhile, the caller aborts the connection."""
    if client.is_connected and not isinstance(error, ConnectionError | TimeoutError):
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):  # the message's fate is settled already
            await client.quit()
    client.close()


def _abort(client: aiosmtplib.SMTP) -> None:
    """Drop the connection at once: nothing more is said, and nothing written but not yet sent goes out."""
    if isinstance(client.transport, asyncio.WriteTransport):
        client.transport.abort()
    client.close()


def _domain_of(address: str) -> str:
    domain = address.rpartition("@")[2].strip().lower()
    return domain if domain and len(domain) <= GATEWAY_ID_MAX - 40 else "careloop.invalid"


def smtp_failure(error: BaseException) -> SendFailed:
    """A short reason for what went wrong; permanent only when the server refused this message for good
    (5xx to the recipient or the data): retrying the same message would be refused again."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return SendFailed("recipient_refused" if permanent else "recipient_deferred", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return SendFailed("recipient_refused" if error.code >= 500 else "recipient_deferred",
                          permanent=error.code >= 500)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError) or (
            type(error) is aiosmtplib.SMTPException and "AUTH" in str(error)):  # a relay that offers no AUTH
        return SendFailed("auth")
    if isinstance(error, TimeoutError):  # aiosmtplib's connect and read timeouts are TimeoutErrors too
        return SendFailed("timeout")
    if isinstance(error, ssl.SSLError | ssl.CertificateError) or (
            isinstance(error, aiosmtplib.SMTPException) and "TLS" in str(error)):
        return SendFailed("tls")
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return SendFailed("disconnected")
    if isinstance(error, aiosmtplib.SMTPConnectError | ConnectionRefusedError):
        return SendFailed("refused")
    if isinstance(error, aiosmtplib.SMTPDataError):
        return SendFailed("data_refused", permanent=error.code >= 500)
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return SendFailed("not_supported", permanent=True)  # e.g. a non-ASCII address without SMTPUTF8
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendFailed(f"smtp_{error.code}")
    if isinstance(error, aiosmtplib.SMTPException):
        return SendFailed("smtp_error")
    return SendFailed("network")


# --- SMS and WeChat ---------------------------------------------------------------------------------

RETRIED_STATUSES = frozenset({408, 425, 429})  # besides every 5xx: the gateway may take it a moment later
ANSWER_MAX_BYTES = 16 * 1024  # a gateway's answer is read this far: its id fits in far less


class WebhookSender:
    """POSTs ``{id, channel, to, subject, body, institution}`` to the message's gateway, signed.

    Up to ``tries`` attempts within one send: timeouts, network errors, 5xx (and 408/425/429) are tried
    again after ``backoff``, ``2 * backoff``, ... seconds, each with up to half of it taken off at
    random so that many senders do not retry in step; any other 4xx is permanent. The outbox decides
    about later attempts. The same ``Idempotency-Key`` (the communication id) goes with every attempt:
    a try that timed out may still have been taken.
    """

    needs_gateway = True  # core.messages.needs_gateway: without one, the outbox tries the next channel

    def __init__(self, client: httpx.AsyncClient | None = None, *, tries: int = 3, backoff: float = 0.2,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random, public_only: bool = False) -> None:
        for name in HTTP_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        transport = PublicOnlyTransport() if public_only else None
        self.client = client or httpx.AsyncClient(follow_redirects=False, transport=transport)
        self.tries, self.backoff, self.sleep, self.jitter = max(1, tries), backoff, sleep, jitter

    async def send(self, message: Outgoing) -> str | None:
        gateway = message.gateway
        if gateway is None:
            raise SendFailed("no_gateway", permanent=True)
        body = json.dumps({"id": str(message.communication_id), "channel": message.channel, "to": message.address,
                           "subject": message.subject, "body": message.body,
                           "institution": str(message.institution_id)},
                          ensure_ascii=False, separators=(",", ":")).encode()
        failure = SendFailed("unreachable")
        for attempt in range(self.tries):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                await self.sleep(delay * (1 - self.jitter() / 2))
            try:
                return await self._post(gateway, message, body)
            except SendFailed as failed:
                if failed.permanent:
                    raise
                failure = failed
                log.info("message %s via %s: try %d failed (%s)", message.communication_id, message.channel,
                         attempt + 1, failed.reason)
        raise failure

    async def _post(self, gateway: Gateway, message: Outgoing, body: bytes) -> str | None:
        timestamp = str(int(time.time()))  # signed afresh for each try: the gateway checks its age
        headers = {"content-type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(gateway.secret, timestamp, body),
                   "idempotency-key": str(message.communication_id)}
        try:
            async with self.client.stream("POST", gateway.url, content=body, headers=headers,
                                          timeout=gateway.timeout_seconds) as response:
                status = response.status_code
                if status >= 500 or status in RETRIED_STATUSES:
                    raise SendFailed(f"http_{status}")
                if status >= 300:
                    raise SendFailed(f"http_{status}", permanent=True)
                answer = await _answer(response)
        except httpx.TimeoutException:
            raise SendFailed("timeout") from None
        except httpx.ConnectError:
            raise SendFailed("refused") from None
        except httpx.HTTPError:  # the request's own errors may quote the URL
            raise SendFailed("network") from None
        return _gateway_id(answer)

    async def aclose(self) -> None:
        await self.client.aclose()


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """Production's gateway connections: only to public addresses. The URL was checked when it was saved, but a
    name may resolve to this machine or a private network (or be pointed there later: DNS rebinding), which
    would have careloop POST signed messages to an internal service. A proxy configured in the environment is
    the operator's control point instead: httpx routes through it, and this check does not apply."""

    def __init__(self) -> None:
        super().__init__()
        # httpx takes no network backend of its own; its pool does (the same pool httpx would build).
        limits = httpx.Limits()  # httpx's defaults, as its own pool would have them
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PublicAddresses())


class _PublicAddresses(httpcore.AsyncNetworkBackend):
    """Resolves the name itself and connects to the address it checked, so a second lookup cannot answer
    differently; a name with any internal address is refused for good (``private_address``)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout() from None
        except OSError:
            raise httpcore.ConnectError() from None
        addresses = [ipaddress.ip_address(entry[4][0]) for entry in found]
        if not addresses or any(is_internal_address(address) for address in addresses):
            raise SendFailed("private_address", permanent=True)
        return await self._inner.connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise SendFailed("private_address", permanent=True)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _answer(response: httpx.Response) -> bytes | None:
    """The body of an accepted message's answer, None past ``ANSWER_MAX_BYTES`` (not read further: found in review,
    the whole answer was read into memory, however large a gateway made it, in a worker every institution shares)."""
    read = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            read += chunk
            if len(read) > ANSWER_MAX_BYTES:
                return None
    except httpx.HTTPError:  # the status said taken: an answer cut short (a timeout, a reset) does not undo that
        return None
    return bytes(read)


def _gateway_id(body: bytes | None) -> str | None:
    """``{"id": ...}`` from the gateway's answer, when it gives one that fits the log. Nothing in an answer makes the
    send fail: the gateway took the message (found in review: an answer nested past the JSON parser's recursion limit
    raised RecursionError, and the outbox retried, so sent again, a message the gateway had accepted)."""
    if body is None:
        return None
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    # printable only: PostgreSQL stores no NUL in text, and a control character has no place in an id the log shows
    return text if 0 < len(text) <= GATEWAY_ID_MAX and text.isprintable() else None


# --- development and the portal ---------------------------------------------------------------------


class LoggingSender:
    """Development: one log line per message, with its channel and communication id only."""

    async def send(self, message: Outgoing) -> str | None:
        log.info("message %s via %s: logged, not sent (development sender)", message.communication_id,
                 message.channel)
        return None


class PortalInboxSender:
    """The app channel: the message is its communication row, which the patient reads in the portal
    once it is sent. Nothing to hand over and no gateway to report back: the outbox can count it
    delivered when it records it sent."""

    async def send(self, message: Outgoing) -> str | None:
        return None


class Senders(Mapping[str, MessageSender]):
    """The sender of each channel, and the connections they keep (closed with ``aclose``)."""

    def __init__(self, by_channel: Mapping[str, MessageSender]) -> None:
        self._by_channel = dict(by_channel)

    def __getitem__(self, channel: str) -> MessageSender:
        return self._by_channel[channel]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_channel)

    def __len__(self) -> int:
        return len(self._by_channel)

    async def aclose(self) -> None:
        for sender in {id(s): s for s in self._by_channel.values()}.values():
            close = getattr(sender, "aclose", None)
            if close is not None:
                await close()


def senders_from_settings(settings: Settings) -> Senders:
    """E-mail through the SMTP relay when one is configured (else logged); SMS and WeChat through each
    institution's gateway: in production a message without one fails for good (``no_gateway``), in
    development it is logged, as e-mail without a relay is; app to the portal."""
    webhook: MessageSender = WebhookSender(public_only=settings.is_production)
    if not settings.is_production:
        webhook = GatewayOrLog(webhook, LoggingSender())
    return Senders({"email": SmtpSender(settings.smtp) if settings.smtp.configured else LoggingSender(),
                    "sms": webhook, "wechat": webhook, "app": PortalInboxSender()})


class GatewayOrLog:
    """Development: a message goes to its institution's gateway when it has one, else to the log."""

    def __init__(self, gateway: MessageSender, log_sender: MessageSender) -> None:
        self.gateway, self.log_sender = gateway, log_sender

    async def send(self, message: Outgoing) -> str | None:
        return await (self.gateway if message.gateway is not None else self.log_sender).send(message)

    async def aclose(self) -> None:
        close = getattr(self.gateway, "aclose", None)
        if close is not None:
            await close()


def logging_senders() -> Senders:
    """Every channel logged (development without gateways, campaign load tests)."""
    logging_sender = LoggingSender()
    return Senders({"email": logging_sender, "sms": logging_sender, "wechat": logging_sender,
                    "app": PortalInboxSender()})
