"""Delivers both outboxes at the moment their rows are due: the escalations to staff and the messages
to patients and their contacts.

Each loop sleeps until the earliest pending due time, and wakes sooner when a change in this process
schedules something (the escalations' ``Outbox.scheduled``). Changes made by other workers are seen
within ``POLL_SECONDS``. Nothing lives only in memory: the outboxes are tables, so a restart resumes
where the last process stopped, and sends what fell due while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from app import senders as message_senders
from core.messages import MessageSender
from core.wakeups import Outbox
from resolvers import campaign, communication, notification, outbox
from resolvers.context import Services
from resolvers.notification import Message, Sender

log = logging.getLogger("careloop.notifications")
POLL_SECONDS = 5.0
# A delivery round past its budget is cut short and told as a failed round (core.rounds); what it had handed over and
# not yet recorded goes again once its claim runs out (at least once, as when a worker dies). Escalations: a
# transaction a notification, sent to staff's notifier (a log line by default): milliseconds each, few at a time.
ESCALATION_BUDGET_SECONDS = 60.0
# Messages: a round is one batch (``communication.BATCH``, 500), handed over SEND_AT_ONCE (20) at a time: 25 waves of
# gateway answers of 0.1-2 s, recorded as they come, so seconds to a minute. Its lease: cut there, the rows it had not
# handed over are free for any worker anyway. A gateway slow enough to need more (each hand-over may take up to
# HAND_OVER, 2 minutes) has the rest of the batch go in later rounds.
MESSAGE_BUDGET_SECONDS = communication.LEASE.total_seconds()


def _now() -> datetime:
    return datetime.now(UTC)


class LoggingSender:
    """The development sender: one log line per notification (ids and times only, no ticket text)."""

    async def send(self, message: Message) -> None:
        log.info("notify %s staff about %s: %s", len(message.recipients), message.kind, message.text)


async def run(sender: Sender, scheduled: Outbox, poll_seconds: float = POLL_SECONDS) -> None:
    """The escalation outbox's loop."""
    await outbox.run(lambda: notification.deliver_due(sender), notification.next_due, scheduled.scheduled,
                     poll_seconds=poll_seconds, log=log, now=_now, budget_seconds=ESCALATION_BUDGET_SECONDS)


async def run_messages(services: Services, senders: Mapping[str, MessageSender],
                       poll_seconds: float = POLL_SECONDS) -> None:
    """The message outbox's loop: the next batch of each campaign being sent is queued, then each message
    due goes to the sender of the channel the gate chose."""
    async def deliver() -> None:
        await campaign.advance()
        await communication.deliver_due(services, senders, batches=1)  # the next round takes the next batch at once

    async def soonest() -> datetime | None:
        return _now() if await campaign.sending() else await communication.next_due()

    await outbox.run(deliver, soonest, services.messages.scheduled, poll_seconds=poll_seconds, log=log, now=_now,
                     budget_seconds=MESSAGE_BUDGET_SECONDS)


async def run_outboxes(services: Services, poll_seconds: float = POLL_SECONDS) -> None:
    """Both loops, with the senders the settings configure (the SMTP relay, the institutions' gateways,
    or log lines in development); the senders' connections close when the loops stop."""
    senders = message_senders.senders_from_settings(services.settings)
    try:
        await asyncio.gather(run(LoggingSender(), services.outbox, poll_seconds),
                             run_messages(services, senders, poll_seconds))
    finally:
        with contextlib.suppress(Exception):
            await senders.aclose()
