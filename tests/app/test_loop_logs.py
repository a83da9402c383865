"""The background loops (sweeps, the outboxes, the audit checkpoints and sealer) log a failure by its kind and place,
never its text nor a traceback (found in review: they logged with ``log.exception``, and a database error's text quotes
the values at fault, such as a unique key's, here an identity number)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from app import sweeps
from core.errors import FailingRounds
from resolvers import outbox

SECRET = "110101199001011234"


class DuplicateKey(Exception):
    pass


async def failing() -> int:
    raise DuplicateKey(f'duplicate key value violates unique constraint: Key (national_id)=({SECRET}) already exists')


async def _stop_once(loop: asyncio.Task[None], done: Callable[[], bool], polls: int) -> None:
    """Let ``loop`` run until ``done()`` (polled every 10 ms, at most ``polls`` times), then cancel it."""
    try:
        for _ in range(polls):
            if done():
                break
            await asyncio.sleep(0.01)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


async def _first_lines(caplog: pytest.LogCaptureFixture, loop: asyncio.Task[None]) -> list[logging.LogRecord]:
    await _stop_once(loop, lambda: any(r.levelno >= logging.ERROR for r in caplog.records), 200)
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _told_by_kind_and_place(records: list[logging.LogRecord]) -> None:
    assert records, "the failure was not logged"
    for record in records:
        line = record.getMessage()
        assert "DuplicateKey at " in line and "test_loop_logs.py:" in line, line
        assert SECRET not in line and "national_id" not in line
        assert record.exc_info is None and record.exc_text is None


async def test_a_failed_sweep_is_logged_by_kind_and_place(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    loop = asyncio.create_task(sweeps._every(sweeps.Sweep("probe", failing, 60.0)))
    _told_by_kind_and_place(await _first_lines(caplog, loop))


async def test_a_failed_delivery_is_logged_by_kind_and_place(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def nothing_due() -> datetime | None:
        return None

    loop = asyncio.create_task(outbox.run(failing, nothing_due, asyncio.Event(), poll_seconds=60.0,
                                          log=logging.getLogger("careloop.test_outbox"), now=lambda: datetime.now(UTC)))
    _told_by_kind_and_place(await _first_lines(caplog, loop))


async def _rounds_told(caplog: pytest.LogCaptureFixture, loop: asyncio.Task[None], rounds: list[int]) -> list[str]:
    """The lines a loop logged until it had run ``rounds[0]`` rounds."""
    await _stop_once(loop, lambda: rounds[0] >= 12, 500)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def failing_then_working(rounds: list[int], fails: int = 10) -> Callable[[], Awaitable[int]]:
    """A round that fails ``fails`` times (the database away), then works; ``rounds[0]`` counts the rounds."""
    async def round_() -> int:
        rounds[0] += 1
        if rounds[0] <= fails:
            raise ConnectionResetError(104, "Connection reset by peer")
        return 0
    return round_


async def test_a_sweep_failing_round_after_round_is_told_once_and_its_recovery_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Found in review: a database away for a minute wrote a line each round (the audit sealer: one a second)."""
    caplog.set_level(logging.INFO)
    rounds = [0]
    lines = await _rounds_told(caplog, asyncio.create_task(sweeps._every(sweeps.Sweep(
        "probe", failing_then_working(rounds), 0.001))), rounds)

    assert len(lines) == 2, lines
    assert lines[0].startswith("probe sweep failed (ConnectionResetError at "), lines
    assert lines[1] == "probe sweep works again after 10 failed rounds"


async def test_an_outbox_failing_round_after_round_is_told_once_and_its_recovery_once(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rounds = [0]

    async def nothing_due() -> datetime | None:
        return None

    deliver = failing_then_working(rounds)
    lines = await _rounds_told(caplog, asyncio.create_task(outbox.run(
        deliver, nothing_due, asyncio.Event(), poll_seconds=0.001, log=logging.getLogger("careloop.test_outbox"),
        now=lambda: datetime.now(UTC))), rounds)

    assert len(lines) == 2, lines
    assert lines[0].startswith("outbox delivery failed (ConnectionResetError at "), lines
    assert lines[1] == "outbox delivery works again after 10 failed rounds"


async def test_a_failure_that_lasts_is_told_again_once_a_period(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    told = FailingRounds(logging.getLogger("careloop.test_loop"), "probing", seconds=0.05)
    for _ in range(3):
        told.failed(ConnectionResetError())
    await asyncio.sleep(0.06)
    told.failed(ConnectionResetError())
    told.failed(ConnectionResetError())
    told.worked()
    told.worked()

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[1].startswith("probing still fails (ConnectionResetError at ") and "4 rounds so far" in lines[1]
    assert lines[2] == "probing works again after 5 failed rounds"
