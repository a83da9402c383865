"""Delivers the escalation outbox at the moment each notification is due.

The loop sleeps until the earliest pending due time, and wakes sooner when a ticket change in
this process schedules something (``Outbox.scheduled``). Changes made by other workers are
seen within ``POLL_SECONDS``. Nothing lives only in memory: the outbox is a table, so a restart
resumes where the last process stopped, and sends what fell due while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from resolvers import notification
from resolvers.notification import Message, Outbox, Sender

log = logging.getLogger("careloop.notifications")
POLL_SECONDS = 5.0


class LoggingSender:
    """The development sender: one log line per notification (ids and times only, no ticket text)."""

    async def send(self, message: Message) -> None:
        log.info("notify %s staff about %s: %s", len(message.recipients), message.kind, message.text)


async def run(sender: Sender, outbox: Outbox, poll_seconds: float = POLL_SECONDS) -> None:
    while True:
        outbox.scheduled.clear()
        try:
            await notification.deliver_due(sender)
            due = await notification.next_due()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be briefly away: try again at the next poll
            log.exception("notification delivery failed; retrying")
            due = None
        wait = poll_seconds
        if due is not None:
            wait = min(wait, max(0.0, (due - datetime.now(UTC)).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outbox.scheduled.wait(), timeout=wait)
