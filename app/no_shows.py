"""Records no-shows while the service runs: booked appointments whose slot ended a grace period ago
(``resolvers.appointment.mark_no_shows``).

Several workers may run this loop: the sweep locks the rows it marks (``SKIP LOCKED`` on PostgreSQL) and
marks only appointments still booked, so none is marked or recorded twice.
"""

from __future__ import annotations

import asyncio
import logging

from resolvers import appointment

log = logging.getLogger("careloop.appointments")
LOOK_EVERY_SECONDS = 60.0


async def run(look_every: float = LOOK_EVERY_SECONDS) -> None:
    while True:
        try:
            marked = await appointment.mark_no_shows()
            if marked:
                log.info("recorded %s no-shows", marked)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be briefly away: look again later
            log.exception("recording no-shows failed; retrying")
        await asyncio.sleep(look_every)
