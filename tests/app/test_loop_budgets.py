"""Every background loop's round has a time budget (core.rounds): with the database server fallen silent (its machine
gone: the bytes sent to it are swallowed and nothing comes back, no reset), a round ends at its budget, told as one
failed round by its kind (a timeout) and nothing else, its connection closed rather than given back busy; once the
server answers again, the next round works (docs/operations.md, "A server that stops answering without closing").
Before, such a round waited until the kernel gave the connection up, about 15 minutes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from tortoise import connections

from app import checkpoints, metrics, notifier, sweeps
from app.leader import Leadership
from core.rounds import Budget, RoundOverBudget
from core.settings import Settings
from core.wakeups import Outbox
from resolvers import outbox, sign_in_limit
from resolvers.context import Services
from tests.api.test_lost_connections import POSTGRES_ONLY, Hop, hop  # noqa: F401 (the fixture)

BUDGET = 0.5  # each loop's budget, made small
PAUSE = 1.0  # each loop's pause between rounds: the failed round's aftermath is looked at meanwhile
SLACK = 30.0  # how long a condition is waited for at most: far below the 15 minutes a silent server held a round

Loop = Callable[[Settings, Services], Coroutine[Any, Any, None]]
LOOPS: dict[str, tuple[str, tuple[Any, str], Loop]] = {
    "metrics": ("metrics: reading the audit chains and the outbox", (metrics, "REFRESH_BUDGET_SECONDS"),
                lambda settings, services: metrics.run(every=PAUSE)),
    "sweep": ("sign-in windows sweep", (sweeps, "ROUND_BUDGET_SECONDS"),
              lambda settings, services: sweeps._every(sweeps.Sweep(
                  "sign-in windows", lambda: sign_in_limit.forget_past_windows(), PAUSE))),
    "checkpoint signer": ("signing audit checkpoints", (checkpoints, "SIGN_BUDGET_SECONDS"),
                          lambda settings, services: checkpoints.run(settings, services, look_every=PAUSE)),
    "audit sealer": ("sealing waiting audit events", (checkpoints, "SEAL_BUDGET_SECONDS"),
                     lambda settings, services: checkpoints.seal_waiting(look_every=PAUSE)),
    "escalation outbox": ("outbox delivery", (notifier, "ESCALATION_BUDGET_SECONDS"),
                          lambda settings, services: notifier.run(notifier.LoggingSender(), Outbox(),
                                                                  poll_seconds=PAUSE)),
    "message outbox": ("outbox delivery", (notifier, "MESSAGE_BUDGET_SECONDS"),
                       lambda settings, services: notifier.run_messages(services, {}, poll_seconds=PAUSE)),
}


async def _until(done: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if done():
            return True
        await asyncio.sleep(0.01)
    return done()


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= level and r.name.startswith("careloop")]


@POSTGRES_ONLY
@pytest.mark.parametrize("name", list(LOOPS))
async def test_a_round_on_a_silent_server_ends_at_its_budget_and_the_next_works_once_it_answers(
        name: str, hop: Hop, settings: Settings, services: Services, caplog: pytest.LogCaptureFixture,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO)
    what, (module, constant), loop = LOOPS[name]
    monkeypatch.setattr(module, constant, BUDGET)
    pool = connections.get("default")._pool
    hop.answering.clear()
    task = asyncio.create_task(loop(settings, services))
    try:
        # the budget, and ample slack for a busy machine (a condition polled, not a time measured: before, about
        # 15 minutes)
        assert await _until(lambda: bool(_lines(caplog, logging.ERROR)), SLACK), "the round did not end"
        assert not task.done()
        assert pool.get_idle_size() == pool.get_size(), "a connection of the round was given back busy"

        hop.answering.set()
        assert await _until(lambda: any("works again" in r.getMessage() for r in caplog.records), SLACK), \
            "the next round did not work"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    [failed] = _lines(caplog, logging.WARNING)
    line = failed.getMessage()
    assert line.startswith(f"{what} failed (RoundOverBudget at "), line
    assert "core/rounds.py:" in line and line.endswith("; retrying"), line
    assert failed.exc_info is None and "SELECT" not in line
    assert f"{what} works again after " in caplog.text
    assert pool.get_idle_size() == pool.get_size()


async def test_a_round_over_its_budget_is_told_as_a_timeout_and_the_loop_goes_on(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """On both databases: the round's own work (here a sweep that waits) is cut at the budget."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(sweeps, "ROUND_BUDGET_SECONDS", 0.05)
    rounds = [0]

    async def slow_once() -> int:
        rounds[0] += 1
        if rounds[0] == 1:
            await asyncio.sleep(3600)
        return 0

    task = asyncio.create_task(sweeps._every(sweeps.Sweep("probe", slow_once, 0.01)))
    try:
        assert await _until(lambda: rounds[0] >= 2 and "works again" in caplog.text, SLACK)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("careloop")]
    assert lines[0].startswith("probe sweep failed (RoundOverBudget at "), lines
    assert lines[1] == "probe sweep works again after 1 failed rounds", lines


async def test_a_loop_stopped_mid_round_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancellation from outside (the service stopping) is not taken for the budget's: the loop ends."""
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.sleep(3600)

    async def nothing_due() -> datetime | None:
        return None

    task = asyncio.create_task(outbox.run(waits, nothing_due, asyncio.Event(), poll_seconds=60.0,
                                          log=logging.getLogger("careloop.test_outbox"),
                                          now=lambda: datetime.now(UTC), budget_seconds=60.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@POSTGRES_ONLY
async def test_a_round_cut_short_while_asking_for_its_lock_takes_a_new_session(database: str, hop: Hop) -> None:  # noqa: F811
    """The leader's lock statement cut short by its round's budget (here 0.2 s), the silent server never answering
    it: once the server answers, the next round leads again (asyncpg gives the cut-short session up by itself, so
    ``app.leader`` needs nothing more: this passed before the budgets, and guards it)."""
    url = urlsplit(database)
    credentials = url.netloc.rsplit("@", 1)[0]
    leadership = Leadership(url._replace(netloc=f"{credentials}@127.0.0.1:{hop.server.sockets[0].getsockname()[1]}")
                            .geturl())
    try:
        assert await leadership.leads("probe job")
        hop.answering.clear()
        with pytest.raises(RoundOverBudget):
            async with Budget(0.2):
                await leadership.leads("probe job")
        hop.answering.set()
        leading = False
        async with asyncio.timeout(3):
            for _ in range(50):  # the old session's lock goes with its backend, a moment after it is dropped
                if leading := await leadership.leads("probe job"):
                    break
                await asyncio.sleep(0.05)
        assert leading
    finally:
        await leadership.close()
