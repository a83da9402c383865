"""Daytime in the test institution's zone, for tests that drive the outbox with an explicit ``now``.

The outbox never sends in the institution's quiet hours (21:00-08:00 local by default): a message due then is
moved to their end, at scheduling and again at sending. A test that schedules a message relative to the wall
clock and sends it "at its due time" therefore depends on the hour it runs at; these helpers pick moments clear
of the quiet hours whatever that hour is.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
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
