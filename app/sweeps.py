"""The periodic sweeps of a running service: work that falls due by the clock rather than by a request.

- no-shows: booked appointments whose slot ended a grace period ago (``appointment.mark_no_shows``);
- reminders and greetings: what falls due today or tomorrow in each institution's zone
  (``reminder.sweep``: re-visits, pending treatment, follow-up announcements, birthdays, holidays);
- survey reminders: unanswered invitations whose trigger asks for a reminder (``survey.remind_unanswered``);
- contracts: terms ending (expired, or renewed automatically) at the institution's local midnight
  (``contract.expire_due``), and reminders of ends, unsigned versions and suspensions (``contract_reminder.sweep``).

Each sweep is idempotent and safe to run in several workers at once (rows are locked or keyed), so a
restart or a second worker only repeats work that changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from resolvers import appointment, contract, contract_reminder, reminder, survey
from resolvers.context import Services

log = logging.getLogger("careloop.sweeps")


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[], Awaitable[int]]
    every_seconds: float


def of(services: Services) -> tuple[Sweep, ...]:
    """The service's sweeps (the contracts' needs the key ring: an automatic renewal re-seals its clauses)."""
    return (
        Sweep("no-shows", lambda: appointment.mark_no_shows(), 60.0),
        Sweep("reminders", lambda: reminder.sweep(), 600.0),
        Sweep("survey reminders", lambda: survey.remind_unanswered(), 600.0),
        Sweep("contract terms", lambda: contract.expire_due(services.keyring), 600.0),
        Sweep("contract reminders", lambda: contract_reminder.sweep(), 600.0),
    )


async def run(sweeps: Sequence[Sweep]) -> None:
    await asyncio.gather(*(_every(sweep) for sweep in sweeps))


async def _every(sweep: Sweep) -> None:
    while True:
        try:
            done = await sweep.run()
            if done:
                log.info("%s: %s", sweep.name, done)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be briefly away: look again later
            log.exception("%s sweep failed; retrying", sweep.name)
        await asyncio.sleep(sweep.every_seconds)
