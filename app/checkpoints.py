"""Signs the audit chains' heads while the service runs (every N events or T seconds).

Several workers may run this loop: a checkpoint is unique per (institution, sequence number), so
two workers signing the same head write it once.
"""

from __future__ import annotations

import asyncio
import logging

from audit import checkpoint
from core.settings import Settings
from resolvers.context import Services

log = logging.getLogger("careloop.audit")
LOOK_EVERY_SECONDS = 5.0


async def run(settings: Settings, services: Services, look_every: float = LOOK_EVERY_SECONDS) -> None:
    while True:
        try:
            await checkpoint.take_due(services.master_key.checkpoint_key,
                                      every_events=settings.checkpoint_every_events,
                                      every_seconds=settings.checkpoint_every_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be briefly away: look again later
            log.exception("signing audit checkpoints failed; retrying")
        await asyncio.sleep(min(look_every, settings.checkpoint_every_seconds))
