"""Signs the audit chains' heads while the service runs (every N events or T seconds).

One node of the fleet signs: the one that leads the ``checkpoints`` job (``app.leader``: an advisory lock
on PostgreSQL). The others only look again, so a fleet signs each head once and keeps no idle node busy.
Should two ever sign at once, the lock on the chain head and the unique (institution, sequence number)
still write each checkpoint once.
"""

from __future__ import annotations

import asyncio
import logging

from app.leader import Leadership
from audit import checkpoint, writer
from core import rounds
from core.errors import FailingRounds
from core.settings import Settings
from resolvers.context import Services

log = logging.getLogger("careloop.audit")
LOOK_EVERY_SECONDS = 5.0
SEAL_EVERY_SECONDS = 1.0
JOB = "checkpoints"
# Past these a round is cut short (core.rounds). Signing reads each chain's head and writes a checkpoint per chain
# due, each in a transaction of its own (milliseconds a chain); sealing links the waiting events of each chain whose
# inbox holds some, a statement a chain (milliseconds, a second after a burst).
SIGN_BUDGET_SECONDS = 60.0
SEAL_BUDGET_SECONDS = 30.0


async def sign_if_leader(settings: Settings, services: Services, leadership: Leadership
                         ) -> list[checkpoint.Checkpoint] | None:
    """One round: the checkpoints due, signed by the leader; None on a node that does not lead."""
    if not await leadership.leads(JOB):
        return None
    return await checkpoint.take_due(services.master_key.checkpoint_key,
                                     every_events=settings.checkpoint_every_events,
                                     every_seconds=settings.checkpoint_every_seconds)


async def run(settings: Settings, services: Services, look_every: float = LOOK_EVERY_SECONDS) -> None:
    leadership = Leadership(settings.database_url)
    told = FailingRounds(log, "signing audit checkpoints")
    try:
        while True:
            try:
                async with rounds.Budget(SIGN_BUDGET_SECONDS):
                    await sign_if_leader(settings, services, leadership)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be briefly away: look again later
                told.failed(error)
            else:
                told.worked()
            await asyncio.sleep(min(look_every, settings.checkpoint_every_seconds))
    finally:
        await leadership.close()


async def seal_waiting(look_every: float = SEAL_EVERY_SECONDS) -> None:
    """Every node, on PostgreSQL: link the audit events writers left in the inbox when they found their chain's
    head busy and no one came after them (``audit.writer.seal_pending``). Sealers take turns on each head, so
    every node may run this; a node that is down leaves the work to the others."""
    told = FailingRounds(log, "sealing waiting audit events")
    while True:
        try:
            async with rounds.Budget(SEAL_BUDGET_SECONDS):
                await writer.seal_pending()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database may be briefly away: look again later
            told.failed(error)
        else:
            told.worked()
        await asyncio.sleep(look_every)
