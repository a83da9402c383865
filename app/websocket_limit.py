"""WebSockets open at once per client address, in this worker process.

A WebSocket is held up to 10 s before its ``connection_init`` signs it in (Strawberry's wait), and costs a socket
and the memory of its connection until then: without a cap one address could open thousands and hold a worker's
sockets (found in review). So each address (the peer, or behind a trusted proxy its ``X-Forwarded-For``, as
uvicorn's ProxyHeadersMiddleware sets it, app/main.py; an IPv6 address with its /64) may hold
``websockets_pending_per_address`` sockets not yet signed in, and ``websockets_per_address`` in all. Over either, the
socket is closed as soon as it is accepted, before anything is read from it, with 1013 "Try Again Later"
(RFC 6455): the ``graphql-ws`` client (Apollo, urql) retries that code with its backoff, where graphql-ws's own
4429 (meant for a second ``connection_init`` on one socket) would end it for good.

Only the Origin is checked before the count (``CareloopGraphQL.run_websocket``), so that a page on a disallowed
origin is refused as such and never told to retry. Then the socket takes its place among its address's sockets in
all (``admit``): over that cap it is refused before anything is looked up, so a client retrying its 1013 costs no
token lookup, which for a partner's token would count against its requests a minute (found in review). Only then
is a token in its Authorization header checked, and the socket's context given to its place (``set_context``):
signed in, it never takes a waiting slot (found in review: it did while its token was checked, and a burst of such
sockets from one address was refused); not signed in, it meets the waiting cap. While its token is checked a
socket counts in all but not as waiting.

The count lives in memory, per process: it costs nothing, and what it protects (a worker's sockets and memory) is
per process too. So the caps are per worker: a node with four workers lets four times as many through.
"""

from __future__ import annotations

from dataclasses import dataclass

from resolvers.context import Context
from resolvers.sign_in_limit import counted_address

TRY_AGAIN_LATER = 1013  # RFC 6455 (IANA registry): a temporary condition; graphql-ws retries it
# The close frame's reasons (at most 123 bytes)
TOO_MANY_PENDING = "Too many connections from your address are waiting to sign in; try again later."
TOO_MANY = "Too many connections from your address; try again later."


@dataclass(eq=False)  # by identity: two sockets are never the same one
class Socket:
    address: str
    context: Context | None = None  # None while the token in its header is checked: counted in all, not as waiting

    @property
    def waiting(self) -> bool:
        """Not signed in by an Authorization header, nor yet by connection_init's payload (``on_ws_connect``)."""
        return self.context is not None and self.context.principal is None


class Refused(Exception):
    """Over ``cap``, the limit of that name (``Limits``), which the log names; ``close_reason`` tells the client."""

    def __init__(self, cap: str, limit: int, close_reason: str) -> None:
        super().__init__(cap)
        self.cap, self.limit, self.close_reason = cap, limit, close_reason


class WebSocketLimit:
    """The sockets of this process by counted address; 0 for a cap means none."""

    def __init__(self, pending_per_address: int, per_address: int) -> None:
        self.pending_per_address, self.per_address = pending_per_address, per_address
        self._open: dict[str, set[Socket]] = {}

    def admit(self, client_address: str) -> Socket:
        """The socket's place among its address's sockets in all, to ``release`` when it ends; ``Refused`` when the
        address holds that cap already. Taken before its context is built: a socket refused here is looked up for
        nothing, and a burst opened at once cannot all get past the cap while their tokens are checked."""
        address = counted_address(client_address)
        held = self._open.setdefault(address, set())
        if self.per_address and len(held) >= self.per_address:  # so held is not empty: the map keeps no empty set
            raise Refused("websockets_per_address", self.per_address, TOO_MANY)
        socket = Socket(address)
        held.add(socket)
        return socket

    def set_context(self, socket: Socket, context: Context) -> None:
        """The admitted socket's context, built once it had its place: one not signed in by then waits for its
        connection_init, and is ``Refused`` when its address holds the waiting cap already (still to ``release``)."""
        held = self._open.get(socket.address, set())
        if (self.pending_per_address and context.principal is None
                and sum(s.waiting for s in held) >= self.pending_per_address):
            raise Refused("websockets_pending_per_address", self.pending_per_address, TOO_MANY_PENDING)
        socket.context = context

    def release(self, socket: Socket) -> None:
        held = self._open.get(socket.address)
        if held is None:
            return
        held.discard(socket)
        if not held:  # an address without sockets is forgotten: the map holds open sockets only
            del self._open[socket.address]
