"""SLA boundaries through the API, with the clock of resolvers.ticket frozen at chosen moments (found in review
against shared/domain.md): a response at exactly the target meets it ("within 30 minutes"), and waiting on the
patient over a time with no working hours (lunch, an evening) moves no due time, though one that ends a working
day sits at a closing time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

import resolvers.ticket as ticket_module
import schema.ticket as ticket_schema
from tests.api.test_ticket_sla import LEVEL_SET, MOVE, open_ticket
from tests.factories import Tenant

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Frozen:
    moment: datetime = datetime.now(UTC)


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return Frozen.moment if tz is None else Frozen.moment.astimezone(tz)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> type[Frozen]:
    monkeypatch.setattr(ticket_module, "datetime", FrozenDatetime)
    return Frozen


def last_monday() -> date:
    day = datetime.now(SHANGHAI).date() - timedelta(days=1)
    while day.weekday() != 0:
        day -= timedelta(days=1)
    return day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


async def transition(tenant: Tenant, frozen: type[Frozen], ticket_id: str, to: str, when: datetime) -> dict:
    frozen.moment = when.astimezone(UTC)
    extra = {"resolution": "Done."} if to == "RESOLVED" else {}
    reply = await tenant.call("support_agent", MOVE, id=ticket_id, to=to, **extra)
    assert reply.errors == [], reply.errors
    return dict(reply.data["ticketTransition"])


async def test_a_first_response_exactly_at_30_minutes_is_within_the_target(tenant: Tenant, frozen) -> None:
    """domain.md: level 1 urgent, first response '30 minutes' (seed: 30分钟内响应, within 30 minutes)."""
    monday = last_monday()
    received = local(monday, 10, 0)
    frozen.moment = local(monday, 10, 5).astimezone(UTC)
    ticket = await open_ticket(tenant, received, postOperative=True)
    assert ticket["level"] == 1
    assert datetime.fromisoformat(ticket["responseSla"]["dueAt"]) == received + timedelta(minutes=30)

    answered = await transition(tenant, frozen, ticket["id"], "ACKNOWLEDGED", received + timedelta(minutes=30))

    assert answered["responseSla"]["state"] == "MET"  # answered within 30 minutes


async def test_a_pause_outside_working_hours_does_not_move_the_due_time(tenant: Tenant, frozen) -> None:
    """Level 2: closed within 1 business day (8 working hours, business clock). Received Monday 08:00, due Monday
    17:00. Waiting on the patient over the lunch break (no working time) must not move the due time."""
    monday = last_monday()
    received = local(monday, 8, 0)
    frozen.moment = local(monday, 8, 30).astimezone(UTC)
    ticket = await open_ticket(tenant, received)
    assert ticket["level"] == 2
    assert datetime.fromisoformat(ticket["resolutionSla"]["dueAt"]) == local(monday, 17)

    await transition(tenant, frozen, ticket["id"], "ACKNOWLEDGED", local(monday, 9))
    await transition(tenant, frozen, ticket["id"], "INVESTIGATING", local(monday, 9, 5))
    await transition(tenant, frozen, ticket["id"], "WAITING_ON_PATIENT", local(monday, 12, 10))
    back = await transition(tenant, frozen, ticket["id"], "INVESTIGATING", local(monday, 12, 50))

    assert datetime.fromisoformat(back["resolutionSla"]["dueAt"]) == local(monday, 17)


async def test_a_pause_in_the_evening_does_not_move_the_next_day_due_time(tenant: Tenant, frozen) -> None:
    """Level 2 received Monday 20:00 (24x7 hotline): 8 working hours end Tuesday 17:00. The agent waits on the
    patient from 20:30 to 21:00 (no working time): still due Tuesday 17:00, not Wednesday 08:00."""
    monday = last_monday()
    received = local(monday, 20, 0)
    frozen.moment = local(monday, 20, 5).astimezone(UTC)
    ticket = await open_ticket(tenant, received)
    tuesday = monday + timedelta(days=1)
    assert datetime.fromisoformat(ticket["resolutionSla"]["dueAt"]) == local(tuesday, 17)

    await transition(tenant, frozen, ticket["id"], "ACKNOWLEDGED", local(monday, 20, 10))
    await transition(tenant, frozen, ticket["id"], "INVESTIGATING", local(monday, 20, 15))
    await transition(tenant, frozen, ticket["id"], "WAITING_ON_PATIENT", local(monday, 20, 30))
    back = await transition(tenant, frozen, ticket["id"], "INVESTIGATING", local(monday, 21, 0))

    assert datetime.fromisoformat(back["resolutionSla"]["dueAt"]) == local(tuesday, 17)


async def test_a_vip_first_response_due_on_business_time_counts_its_time_left_on_business_time(
        tenant: Tenant, frozen, monkeypatch: pytest.MonkeyPatch) -> None:
    """Level 2 answered within 20 business minutes: a VIP ticket received Monday 07:55 is due 08:20, sooner than the
    adviser's 30 calendar minutes (08:25), so the business clock sets the due time; at 07:56 its time left is the 20
    working minutes to 08:20, not the 24 minutes of calendar time."""
    monkeypatch.setattr(ticket_schema, "datetime", FrozenDatetime)  # the time left is read at the schema's now
    assert (await tenant.call("admin", LEVEL_SET, level=2, first=20, resolution=480, clock="BUSINESS")).errors == []
    monday = last_monday()
    frozen.moment = local(monday, 7, 56).astimezone(UTC)
    ticket = await open_ticket(tenant, local(monday, 7, 55), channel="VIP_ADVISER", level=2)

    assert (ticket["vip"], ticket["level"]) == (True, 2)
    assert datetime.fromisoformat(ticket["responseSla"]["dueAt"]) == local(monday, 8, 20)
    assert ticket["responseSla"]["timeLeftSeconds"] == 20 * 60
