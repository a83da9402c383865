"""What a message sender is given and answers: the seam between the outbox and the senders.

The outbox (``resolvers.communication``) renders a message and hands it to the sender of its channel
(``app.senders``): SMTP for e-mail, an HMAC-signed HTTP webhook for SMS and WeChat, a log line in
development. A sender answers the gateway's message id (for delivery callbacks) or raises
``SendFailed``; whether to retry is the outbox's decision.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Gateway:
    """An institution's HTTP gateway for one channel; ``secret`` signs each body (HMAC-SHA256)."""

    url: str = field(repr=False)  # may carry a key in its path or query
    secret: bytes = field(repr=False)
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class Outgoing:
    communication_id: uuid.UUID
    institution_id: uuid.UUID
    channel: str  # sms, email, wechat, app
    address: str = field(repr=False)  # a phone number or an e-mail address: never logged
    subject: str = field(repr=False)
    body: str = field(repr=False)
    sender_address: str = ""  # the institution's From for e-mail
    gateway: Gateway | None = None
    # The message's signed unsubscribe link (``<public URL>/unsubscribe?token=...``): e-mail carries it
    # as List-Unsubscribe with RFC 8058 one-click too. It holds a credential: never logged.
    unsubscribe_url: str = field(default="", repr=False)


class SendFailed(Exception):
    """A message could not be handed over. ``reason`` is a short code (``timeout``, ``http_503``,
    ``refused``), never the message or its address; ``permanent`` stops the retries."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class MessageSender(Protocol):
    async def send(self, message: Outgoing) -> str | None:
        """Hand the message over; answer the gateway's id for it when it gives one."""
        ...


def needs_gateway(sender: MessageSender | None) -> bool:
    """Whether ``sender`` sends only through the institution's gateway (its class says ``needs_gateway = True``,
    as the production SMS and WeChat sender does): on an institution without an active gateway for the channel,
    a message cannot go that way and the outbox picks the patient's next channel."""
    return bool(getattr(sender, "needs_gateway", False))


def is_internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not an address of the public internet: this machine, a private, shared (100.64.0.0/10, carrier NAT),
    link-local, reserved or multicast network. A gateway in production must be none of them, by the URL it
    is saved with and by the address its name resolves to when a message is sent."""
    return not address.is_global or address.is_multicast
