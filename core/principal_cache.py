"""Signed-in staff and patients remembered for a few seconds, while the database can say when to forget them.

Keyed by the token's digest. The cache answers only while it is *live*: on PostgreSQL, with this process's
listener connected to the ``careloop_principals`` channel, on which the database itself announces (at commit)
every change that could alter a principal: a session revoked, deleted or moved in time, an account deactivated
or renamed, a role or a department membership added or removed (migration 0024's triggers). Each notification
names the account (its id) or everyone (``*``), and its entries are dropped. Without a live listener (SQLite,
start-up, a lost connection) nothing is kept and every request asks the database, as before.

Notifications travel asynchronously, so an entry is answered only after a fence (``current``): a round trip on
the listening connection, before whose answer PostgreSQL delivers every notification committed earlier. A
request that arrives after a logout was answered therefore never sees the session; concurrent requests share
one fence, and a miss needs none. A lookup that started before a notification must not store what it read
after the notification went by (its snapshot may predate the change): ``put`` takes the epoch read before the
lookup and stores only if no notification, and no change of liveness, came in between. Each entry lives
``ttl`` seconds at most, and never past its session's expiry: the safety net should a notification ever go
missing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from core.principal import Principal

EVERYONE = "*"
DEFAULT_TTL_SECONDS = 30
MAX_ENTRIES = 50_000  # live sessions of one process, bounded: the oldest entry gives way


class PrincipalCache:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, *, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}  # digest -> (principal, valid until)
        self._by_account: dict[uuid.UUID, set[str]] = {}
        self._live = False
        self._fence: Callable[[], Awaitable[None]] | None = None
        self._epoch = 0

    @property
    def live(self) -> bool:
        """Whether the cache answers: a listener is connected and the TTL is not zero."""
        return self._live and self.ttl > 0

    @property
    def epoch(self) -> int:
        """Read before a database lookup and handed to ``put`` with its result."""
        return self._epoch

    def __len__(self) -> int:
        return len(self._entries)

    async def current(self, digest: str) -> Principal | None:
        """The entry for this token once every change committed before this call has been applied; None when
        there is none (or the cache is not live, or the fence failed): then the caller asks the database.

        The fence is a round trip on the listening connection (``go_live``'s ``fence``): PostgreSQL sends a
        listening session every notification already committed before it answers a statement there, so a
        request that arrives after a logout's answer can never be served from before the logout. One round
        trip serves every request that arrived before it started; a miss needs none."""
        if self._fence is None or digest not in self._entries:
            return None
        try:
            await self._fence()
        except Exception:  # the connection failed: its listener turns the cache off; this request asks the database
            return None
        return self.get(digest)

    def get(self, digest: str) -> Principal | None:
        """The entry as it stands, without a fence (``current`` is what sign-in uses)."""
        if not self._live:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            self._drop(digest)
            return None
        return entry[0]

    def put(self, digest: str, principal: Principal, epoch: int, session_expires_at: datetime) -> None:
        """Remember a principal just read from the database, unless anything was invalidated since ``epoch``."""
        if not self.live or epoch != self._epoch:
            return
        lifetime = min(self.ttl, (session_expires_at - datetime.now(UTC)).total_seconds())
        if lifetime <= 0:
            return
        self._drop(digest)
        while len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[digest] = (principal, self._clock() + lifetime)
        self._by_account.setdefault(principal.user_id, set()).add(digest)

    def forget(self, account: str) -> None:
        """A notification: drop this account's entries (its id), or every entry (``*``, or a payload not understood)."""
        self._epoch += 1
        try:
            account_id = uuid.UUID(account)
        except ValueError:
            self._clear()
            return
        for digest in self._by_account.pop(account_id, set()):
            self._entries.pop(digest, None)

    def go_live(self, fence: Callable[[], Awaitable[None]]) -> None:
        """The listener is listening: changes committed from now on will be announced, and ``fence`` returns
        once every change committed before it was called has been (raises if it cannot tell)."""
        self._clear()
        self._epoch += 1
        self._fence = fence
        self._live = True

    def go_dark(self) -> None:
        """The listener is gone (or not yet there): forget everything and answer nothing."""
        self._live = False
        self._fence = None
        self._epoch += 1
        self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._by_account.clear()

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            digests = self._by_account.get(entry[0].user_id)
            if digests is not None:
                digests.discard(digest)
                if not digests:
                    del self._by_account[entry[0].user_id]
