"""The principal cache's own rules, without a database: what it keeps, for how long, and what makes it forget."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.principal import Principal
from core.principal_cache import PrincipalCache
from core.settings import load_settings

LATER = datetime.now(UTC) + timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fence:
    def __init__(self, fails: bool = False) -> None:
        self.calls, self.fails = 0, fails

    async def __call__(self) -> None:
        self.calls += 1
        if self.fails:
            raise ConnectionError("lost")


def principal(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(institution_id=uuid.uuid4(), user_id=user_id or uuid.uuid4(), token_id=uuid.uuid4(),
                     email="a@careloop.test", name="A", roles=frozenset({"nurse"}), department_ids=frozenset())


def live_cache(ttl: float = 30, **options: object) -> tuple[PrincipalCache, Clock, Fence]:
    clock, fence = Clock(), Fence()
    cache = PrincipalCache(ttl, clock=clock, **options)  # type: ignore[arg-type]
    cache.go_live(fence)
    return cache, clock, fence


async def test_a_cache_that_is_not_live_keeps_and_answers_nothing() -> None:
    cache = PrincipalCache(30)
    cache.put("d", principal(), cache.epoch, LATER)
    assert not cache.live and len(cache) == 0 and await cache.current("d") is None
    zero = PrincipalCache(0)  # CARELOOP_PRINCIPAL_CACHE_SECONDS=0: never live, even with a listener
    zero.go_live(Fence())
    zero.put("d", principal(), zero.epoch, LATER)
    assert not zero.live and len(zero) == 0


async def test_a_live_cache_answers_after_its_fence() -> None:
    cache, _, fence = live_cache()
    nurse = principal()
    cache.put("d", nurse, cache.epoch, LATER)
    assert await cache.current("d") == nurse and fence.calls == 1
    assert await cache.current("other") is None and fence.calls == 1  # a miss needs no fence: the database answers


async def test_a_failed_fence_answers_nothing() -> None:
    cache = PrincipalCache(30)
    cache.go_live(Fence(fails=True))
    cache.put("d", principal(), cache.epoch, LATER)
    assert await cache.current("d") is None


def test_an_entry_lives_the_ttl_and_never_past_its_session() -> None:
    cache, clock, _ = live_cache(ttl=30)
    cache.put("long", principal(), cache.epoch, LATER)
    cache.put("short", principal(), cache.epoch, datetime.now(UTC) + timedelta(seconds=5))
    cache.put("over", principal(), cache.epoch, datetime.now(UTC) - timedelta(seconds=1))
    assert "over" not in cache._entries
    clock.now += 6
    assert cache.get("long") is not None and cache.get("short") is None
    clock.now += 25
    assert cache.get("long") is None and len(cache) == 0


def test_a_lookup_overtaken_by_a_notification_is_not_kept() -> None:
    cache, _, _ = live_cache()
    epoch = cache.epoch  # read before the statement
    cache.forget(str(uuid.uuid4()))  # any change announced while it ran
    cache.put("d", principal(), epoch, LATER)
    assert cache.get("d") is None
    cache.put("d", principal(), cache.epoch, LATER)
    assert cache.get("d") is not None


def test_a_notification_drops_its_accounts_entries_only() -> None:
    cache, _, _ = live_cache()
    nurse, doctor = uuid.uuid4(), uuid.uuid4()
    for digest, user in (("n1", nurse), ("n2", nurse), ("d1", doctor)):
        cache.put(digest, principal(user), cache.epoch, LATER)
    cache.forget(str(nurse))
    assert [cache.get(d) is not None for d in ("n1", "n2", "d1")] == [False, False, True]


@pytest.mark.parametrize("payload", ["*", "not an id", ""])
def test_everyone_or_a_payload_not_understood_drops_everything(payload: str) -> None:
    cache, _, _ = live_cache()
    cache.put("a", principal(), cache.epoch, LATER)
    cache.put("b", principal(), cache.epoch, LATER)
    cache.forget(payload)
    assert len(cache) == 0 and cache.live


def test_going_dark_forgets_everything_and_stops_keeping() -> None:
    cache, _, _ = live_cache()
    epoch = cache.epoch
    cache.put("a", principal(), epoch, LATER)
    cache.go_dark()
    assert not cache.live and len(cache) == 0
    cache.go_live(Fence())  # a lookup begun before the loss is not kept after the reconnection either
    cache.put("a", principal(), epoch, LATER)
    assert len(cache) == 0


def test_the_oldest_entry_gives_way_at_the_bound() -> None:
    cache, _, _ = live_cache(max_entries=2)
    for digest in ("a", "b", "c"):
        cache.put(digest, principal(), cache.epoch, LATER)
    assert [cache.get(d) is not None for d in ("a", "b", "c")] == [False, True, True]
    assert sum(len(digests) for digests in cache._by_account.values()) == 2


def test_the_ttl_is_a_setting() -> None:
    assert load_settings({}).principal_cache_seconds == 30
    assert load_settings({"CARELOOP_PRINCIPAL_CACHE_SECONDS": "0"}).principal_cache_seconds == 0  # off
    for wrong in ("-1", "301", "soon"):
        with pytest.raises(SystemExit):
            load_settings({"CARELOOP_PRINCIPAL_CACHE_SECONDS": wrong})
