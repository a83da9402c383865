"""The last place of a slot, booked by two requests at once over HTTP: exactly one wins and the other gets
CONFLICT, on SQLite and PostgreSQL. The requests are shown to overlap (each starts before the other ends);
with ``both_read_first`` each has read the slot's seats as free before either writes, so the unique seat in
the database alone decides, and the loser's one retry finds the slot full (or, with a place left, takes it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from models import Appointment, AuditEvent
from resolvers import appointment as appointments
from resolvers import institution as institutions
from resolvers.context import Services
from tests.api.test_appointments import BOOK, NOW, RESCHEDULE, TOMORROW_9, at, book, booking, make_schedule
from tests.factories import PASSWORD, Response, Tenant, login, make_patient

ROUNDS = 5


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slots are test_appointments' (2 to 6 March 2027): its clock too, or they would be past on that day."""
    monkeypatch.setattr(appointments, "_now", lambda: NOW)


async def second_desk(tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    """Another front-desk account, signed in as ``tenant.call("desk2", ...)``."""
    email = f"desk2.{uuid.uuid4().hex[:8]}@careloop.test"
    await institutions.create_account(services, tenant.institution, email=email, name="Second desk",
                                      password=PASSWORD, roles=["front_desk"], departments=[])
    tenant.tokens["desk2"] = await login(client, email)


class Overlap:
    """Wraps a resolver to note when each call starts and ends, starts its first two calls together, and (with
    ``hold``) makes the first two calls of ``_free_seat`` wait for each other once they have read the seats."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, resolver: str, hold: bool) -> None:
        self.spans: list[tuple[float, float]] = []
        self.reads = self.calls = 0
        self.barrier = asyncio.Barrier(2)
        self.started = asyncio.Barrier(2)  # the first two calls begin together: they overlap even on a busy machine
        loop = asyncio.get_running_loop()
        wrapped, free_seat = getattr(appointments, resolver), appointments._free_seat

        async def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls <= 2:
                await asyncio.wait_for(self.started.wait(), timeout=10)
            began = loop.time()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                self.spans.append((began, loop.time()))

        async def read_then_wait(*args: Any) -> int | None:
            seat = await free_seat(*args)
            self.reads += 1
            if hold and self.reads <= 2:
                await asyncio.wait_for(self.barrier.wait(), timeout=10)
            return seat

        monkeypatch.setattr(appointments, resolver, timed)
        monkeypatch.setattr(appointments, "_free_seat", read_then_wait)

    def overlapped(self) -> bool:
        (a_start, a_end), (b_start, b_end) = self.spans
        return a_start < b_end and b_start < a_end


def utc(moment: str) -> datetime:
    """A slot start as stored (UTC): SQLite compares timestamps as text."""
    return datetime.fromisoformat(moment).astimezone(UTC)


def outcome(replies: dict[str, Response]) -> tuple[list[str], list[str]]:
    winners = [who for who, reply in replies.items() if reply.errors == []]
    losers = [who for who, reply in replies.items() if reply.errors]
    return winners, losers


async def creates(tenant: Tenant) -> int:
    return await AuditEvent.filter(institution_id=tenant.id, resource_type="appointment", action="create").count()


@pytest.mark.parametrize("capacity", [1, 3])
@pytest.mark.parametrize("both_read_first", [False, True])
async def test_two_bookings_of_the_last_place_exactly_one_wins(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch,
        both_read_first: bool, capacity: int) -> None:
    await second_desk(tenant, client, services)
    schedule = await make_schedule(tenant, capacity=capacity)
    for round_ in range(ROUNDS):
        start = at(2 + round_, 9)
        for _ in range(capacity - 1):  # every place but the last taken
            await book(tenant, schedule, await make_patient(tenant), start=start)
        first, second = await make_patient(tenant), await make_patient(tenant)
        written = await creates(tenant)
        with monkeypatch.context() as patch:
            overlap = Overlap(patch, "book", both_read_first)
            replies = dict(zip(("front_desk", "desk2"), await asyncio.gather(
                tenant.call("front_desk", BOOK, input=booking(schedule, first, start)),
                tenant.call("desk2", BOOK, input=booking(schedule, second, start))), strict=True))
        assert overlap.overlapped()
        winners, losers = outcome(replies)
        assert len(winners) == 1 and len(losers) == 1, [r.body for r in replies.values()]
        loser = replies[losers[0]]
        assert loser.codes == ["CONFLICT"] and loser.errors[0]["extensions"]["field"] == "input.slotStart"
        assert loser.data == {"appointmentBook": None}
        if both_read_first:
            assert overlap.reads == 3  # the loser's insert failed on the seat, and its one fresh read found none
        held = await Appointment.filter(institution_id=tenant.id, schedule_id=schedule,
                                        slot_start=utc(start)).values_list("seat", "patient_id")
        assert sorted(seat for seat, _ in held) == list(range(1, capacity + 1))
        winner_patient = first if winners[0] == "front_desk" else second
        assert winner_patient in {patient for _, patient in held} and len(held) == capacity
        assert await creates(tenant) == written + 1  # the winner's record; the loser's rolled back with it


async def test_with_a_place_left_the_loser_of_a_seat_takes_the_next_one(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read seat 1 as the smallest free one; the second insert fails on it, reads again and takes seat 2."""
    await second_desk(tenant, client, services)
    schedule = await make_schedule(tenant, capacity=2)
    first, second = await make_patient(tenant), await make_patient(tenant)
    overlap = Overlap(monkeypatch, "book", hold=True)
    replies = await asyncio.gather(tenant.call("front_desk", BOOK, input=booking(schedule, first)),
                                   tenant.call("desk2", BOOK, input=booking(schedule, second)))
    assert [reply.errors for reply in replies] == [[], []]
    assert overlap.overlapped() and overlap.reads == 3
    seats = await Appointment.filter(institution_id=tenant.id, schedule_id=schedule).values_list("seat", flat=True)
    assert sorted(seats) == [1, 2]


async def test_a_move_and_a_booking_racing_for_the_last_place(
        tenant: Tenant, client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """One wins; when the move loses, the appointment it would have cancelled is still booked where it was."""
    await second_desk(tenant, client, services)
    schedule = await make_schedule(tenant)
    results: dict[str, int] = {"moved": 0, "booked": 0}
    for round_ in range(ROUNDS):
        start = at(2 + round_, 10)
        mover = await book(tenant, schedule, await make_patient(tenant), start=at(2 + round_, 9))
        other = await make_patient(tenant)
        with monkeypatch.context() as patch:
            patch.setattr(appointments, "_free_seat", _held(appointments._free_seat))
            moved, booked = await asyncio.gather(
                tenant.call("front_desk", RESCHEDULE, id=mover["id"], slotStart=start, version=1),
                tenant.call("desk2", BOOK, input=booking(schedule, other, start)))
        assert sorted(bool(reply.errors) for reply in (moved, booked)) == [False, True], (moved.body, booked.body)
        old = await Appointment.get(id=mover["id"])
        if moved.errors:
            assert moved.codes == ["CONFLICT"] and (old.status, old.seat, old.version) == ("booked", 1, 1)
            results["booked"] += 1
        else:
            assert booked.codes == ["CONFLICT"] and (old.status, old.seat) == ("cancelled", None)
            results["moved"] += 1
        taken = await Appointment.filter(institution_id=tenant.id, schedule_id=schedule, slot_start=utc(start),
                                         seat__isnull=False).count()
        assert taken == 1
    assert sum(results.values()) == ROUNDS


def _held(free_seat: Callable[..., Awaitable[int | None]]) -> Callable[..., Awaitable[int | None]]:
    """The first two seat reads wait for each other: both requests saw the last place free."""
    barrier, reads = asyncio.Barrier(2), [0]

    async def read_then_wait(*args: Any) -> int | None:
        seat = await free_seat(*args)
        reads[0] += 1
        if reads[0] <= 2:
            await asyncio.wait_for(barrier.wait(), timeout=10)
        return seat

    return read_then_wait


async def test_twenty_requests_at_once_never_overbook(tenant: Tenant) -> None:
    """Twenty requests at once for a slot of three places: never more than three win, each on its own seat,
    and every other one meets CONFLICT (a request that lost a seat twice gives up, as the one retry says)."""
    schedule = await make_schedule(tenant, capacity=3)
    patients = [await make_patient(tenant) for _ in range(20)]
    replies = await asyncio.gather(*(tenant.call("front_desk", BOOK, input=booking(schedule, pid))
                                     for pid in patients))
    won = [reply for reply in replies if not reply.errors]
    assert all(reply.codes == ["CONFLICT"] for reply in replies if reply.errors)
    seats = await Appointment.filter(institution_id=tenant.id, schedule_id=schedule,
                                     slot_start=TOMORROW_9.astimezone(UTC)).values_list("seat", flat=True)
    assert 1 <= len(won) == len(seats) <= 3 and len(set(seats)) == len(seats) and set(seats) <= {1, 2, 3}
