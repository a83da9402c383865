"""In-process wake-ups: a change made in this worker wakes whoever waits on it here at once. Other workers' changes
are found by the waiters' own polling, so a lost wake-up only delays, never loses, work."""

from __future__ import annotations

import asyncio
import contextlib


class Outbox:
    """Wakes this process's deliverer when a change schedules something sooner (escalations, messages)."""

    def __init__(self) -> None:
        self.scheduled = asyncio.Event()


class Changes:
    """Wakes this process's subscriptions when a record changes here; other workers' changes are found by the
    subscriptions' own polling. Each change wakes every current waiter once."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, at_most: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await event.wait()
