"""Daytime in the test institution's zone, for tests that drive the outbox with an explicit ``now``.

The outbox never sends in the institution's quiet hours (21:00-08:00 local by default): a message due then is
moved to their end, at scheduling and again at sending. A test that schedules a message relative to the wall
clock and sends it "at its due time" therefore depends on the hour it runs at; these helpers pick moments clear
of the quiet hours whatever that hour is.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")  # the test institution's zone (models.Institution's default)
DAY_STARTS, DAY_ENDS = time(9), time(20)  # well inside the default waking hours, either side


def daytime_from(moment: datetime) -> datetime:
    """``moment`` if it falls between 09:00 and 20:00 in the institution's zone, else the next 09:00 there."""
    local = moment.astimezone(ZONE)
    if DAY_STARTS <= local.time() < DAY_ENDS:
        return moment
    day = local.date() if local.time() < DAY_STARTS else local.date() + timedelta(days=1)
    return datetime.combine(day, DAY_STARTS, tzinfo=ZONE).astimezone(UTC)


def local_today() -> date:
    """The institution's date now (it turns at 16:00 UTC)."""
    return datetime.now(UTC).astimezone(ZONE).date()


async def a_whole_local_day(margin: float = 30) -> date:
    """The institution's date, with at least ``margin`` seconds of it left: waits for its midnight when that is
    nearer. A test that takes "today" and then asks the API what holds today must not straddle midnight there (the
    API would answer for the next day); assert ``local_today()`` unchanged at its end to tell a margin too small."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(ZONE).date() + timedelta(days=1), time(0), tzinfo=ZONE)
    left = (midnight - now).total_seconds()
    if left < margin:
        await asyncio.sleep(left + 0.05)
    return local_today()
