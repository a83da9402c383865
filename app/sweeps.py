"""The periodic sweeps of a running service: work that falls due by the clock rather than by a request.

- no-shows: booked appointments whose slot ended a grace period ago (``appointment.mark_no_shows``);
- reminders and greetings: what falls due today or tomorrow in each institution's zone
  (``reminder.sweep``: re-visits, pending treatment, follow-up announcements, birthdays, holidays);
- survey reminders: unanswered invitations whose trigger asks for a reminder (``survey.remind_unanswered``);
- contracts: terms ending (expired, or renewed automatically) at the institution's local midnight
  (``contract.expire_due``), and reminders of ends, unsigned versions and suspensions (``contract_reminder.sweep``).
- compliance alerts: yesterday's access anomalies and break-glass accesses unreviewed after 24 hours, to the
  compliance officers through the staff notification outbox (``compliance_alert.sweep``).
- sign-in throttles: the failure counts of addresses without an account, once idle for 30 days
  (``session.forget_idle_unknown_addresses``), and the per-address sign-in counts of minutes gone by
  (``sign_in_limit.forget_past_windows``).
- idempotency keys: those of changes written a day ago (``idempotency_key.forget_expired``).

Each sweep runs on one node of the fleet: the one that leads it (``app.leader``: an advisory lock per
sweep on PostgreSQL, a file lock on SQLite); the others look again every ``FOLLOWER_RETRY_SECONDS`` at
most, to take over when the leader stops. Each sweep is also idempotent and safe in several workers at once
(rows are locked or keyed), so a restart or a second leader only repeats work that changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from app.leader import Leadership
from core import rounds
from core.errors import FailingRounds
from resolvers import (
    appointment,
    compliance_alert,
    contract,
    contract_reminder,
    idempotency_key,
    reminder,
    session,
    sign_in_limit,
    survey,
)
from resolvers.context import Services

log = logging.getLogger("careloop.sweeps")
FOLLOWER_RETRY_SECONDS = 30.0
# A round (the leader's lock, then the sweep) past this is cut short (core.rounds). A sweep works in short transactions
# of a bounded batch (SWEEP_BATCH rows, one contract, one reminder...), each whole, and a round takes milliseconds to
# seconds; a large fleet's reminders may take a minute. Generous, since a sweep always cut at the same point would
# never reach the institutions after it, and the sweeps run every 1 to 60 minutes anyway.
ROUND_BUDGET_SECONDS = 300.0


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[], Awaitable[int]]
    every_seconds: float
    leadership: Leadership | None = None  # None: this process runs it (tests, one-off runs)


def of(services: Services) -> tuple[Sweep, ...]:
    """The service's sweeps (the contracts' needs the key ring: an automatic renewal re-seals its clauses),
    each led by one node of the fleet."""
    leadership = Leadership(services.settings.database_url)
    return (
        Sweep("no-shows", lambda: appointment.mark_no_shows(), 60.0, leadership),
        Sweep("reminders", lambda: reminder.sweep(), 600.0, leadership),
        Sweep("survey reminders", lambda: survey.remind_unanswered(), 600.0, leadership),
        Sweep("contract terms", lambda: contract.expire_due(services.keyring), 600.0, leadership),
        Sweep("contract reminders", lambda: contract_reminder.sweep(), 600.0, leadership),
        Sweep("compliance alerts", lambda: compliance_alert.sweep(), 600.0, leadership),
        Sweep("sign-in throttles", lambda: session.forget_idle_unknown_addresses(), 3600.0, leadership),
        Sweep("sign-in windows", lambda: sign_in_limit.forget_past_windows(), 600.0, leadership),
        Sweep("idempotency keys", lambda: idempotency_key.forget_expired(), 3600.0, leadership),
    )


async def run(sweeps: Sequence[Sweep]) -> None:
    try:
        await asyncio.gather(*(_every(sweep) for sweep in sweeps))
    finally:
        for leadership in {id(s.leadership): s.leadership for s in sweeps if s.leadership is not None}.values():
            await leadership.close()


async def leads(sweep: Sweep) -> bool:
    return sweep.leadership is None or await sweep.leadership.leads(f"sweep:{sweep.name}")


async def _every(sweep: Sweep) -> None:
    told = FailingRounds(log, f"{sweep.name} sweep")
    while True:
        leading = False
        try:
            async with rounds.Budget(ROUND_BUDGET_SECONDS):
                leading = await leads(sweep)
                done = await sweep.run() if leading else 0
            if done:
                log.info("%s: %s", sweep.name, done)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database may be briefly away: look again later
            told.failed(error)
        else:
            told.worked()
        await asyncio.sleep(sweep.every_seconds if leading else min(sweep.every_seconds, FOLLOWER_RETRY_SECONDS))
