"""The background loops (sweeps, the outboxes, the audit checkpoints and sealer) log a failure by its kind and place,
never its text nor a traceback (found in review: they logged with ``log.exception``, and a database error's text quotes
the values at fault, such as a unique key's, here an identity number)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from app import sweeps
from resolvers import outbox

SECRET = "110101199001011234"


class DuplicateKey(Exception):
    pass


async def failing() -> int:
    raise DuplicateKey(f'duplicate key value violates unique constraint: Key (national_id)=({SECRET}) already exists')


async def _first_lines(caplog: pytest.LogCaptureFixture, loop: asyncio.Task[None]) -> list[logging.LogRecord]:
    try:
        for _ in range(200):
            if any(r.levelno >= logging.ERROR for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
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
