"""Every ``/info`` request through the rate limiter with its true weight (issue 14, item 6)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing

from mm.venues.hyperliquid.queries import RestQueries, ask
from mm.venues.hyperliquid.rate_limit import RateLimitConfig, RateLimiter
from mm.venues.hyperliquid.rest import TooManyRequests, VenueUnavailable

USER = "0x" + "ab" * 20
PAGE = {"type": "userFillsByTime", "user": USER, "startTime": 0}
ROOMY = RateLimitConfig(order_tokens_per_second=1e6, order_burst=1e6)


class FixedRandom(random.Random):
    def random(self) -> float:
        return 0.0


class FakeRest:
    """``POST /info`` answering from a script: a list to return, or an exception to raise."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[Mapping[str, Any], float | None]] = []

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any:
        self.calls.append((request, deadline_s))
        await trio.sleep(0.5)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_page_of_fills_is_charged_its_weight_by_the_items_it_lists(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY)
    rest = FakeRest([{}] * 2000, [{}] * 45)
    queries = RestQueries(rest, limiter)
    start = trio.current_time()
    assert len(await queries.info(PAGE, deadline_s=3.0)) == 2000
    assert rest.calls == [(PAGE, 3.0)]
    assert limiter.ip_used(trio.current_time()) == 120
    assert len(await queries.info(PAGE)) == 45
    assert limiter.ip_used(trio.current_time()) == 142
    assert await ask(limiter, {"type": "clearinghouseState", "user": USER}, _answer({})) == {}
    assert limiter.ip_used(trio.current_time()) == 144
    # Charged when sent: gone from the window a minute after.
    assert limiter.ip_used(start + 60.0) == 24


async def test_a_page_waits_until_its_largest_answer_would_fit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(1000, trio.current_time())  # 80 left of the 1080 budget
    start = trio.current_time()
    rest = FakeRest([])
    await RestQueries(rest, limiter).info(PAGE)
    # 120 did not fit before the 1000 left the window, though the answer weighed 20 only.
    assert trio.current_time() == start + 60.0 + 0.5
    assert limiter.ip_used(trio.current_time()) == 20


async def test_a_429_backs_the_limiter_off_and_is_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0))
    told: list[float] = []
    rest = FakeRest(TooManyRequests("/info", 429, "429 Too Many Requests"), [])
    queries = RestQueries(rest, limiter, on_rate_limited=lambda: told.append(1.0))
    with pytest.raises(TooManyRequests):
        await queries.info(PAGE)
    limited_at = trio.current_time()
    assert told == [1.0]
    assert limiter.rejections == 1
    # Every request waits out the backoff, and the budget is cut and recovers.
    assert limiter.blocked_until("info") == limiter.blocked_until("order") == limited_at + 0.5
    assert limiter.budget_factor(limited_at) == 0.5
    assert limiter.ip_used(limited_at) == 0  # the venue counts none of a refused request
    await queries.info(PAGE)
    assert trio.current_time() == limited_at + 0.5 + 0.5


async def test_a_failed_request_keeps_its_weight_and_gives_back_the_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY)
    rest = FakeRest(VenueUnavailable("/info", 500, "Internal Server Error"))
    with pytest.raises(VenueUnavailable):
        await RestQueries(rest, limiter).info(PAGE)
    assert limiter.ip_used(trio.current_time()) == 20
    assert limiter.rejections == 0


async def test_a_cancelled_request_gives_back_the_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY)
    with trio.move_on_after(0.1):
        await RestQueries(FakeRest([{}] * 2000), limiter).info(PAGE)
    assert limiter.ip_used(trio.current_time()) == 20


def _answer(value: Any) -> Any:
    async def send() -> Any:
        return value

    return send


async def test_the_user_streams_reads_are_not_held_by_the_cut_after_a_429(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0))
    limiter.record(700, trio.current_time())  # trading's weight in the window
    rest = FakeRest(TooManyRequests("/info", 429, "429 Too Many Requests"), [], [])
    essential = RestQueries(rest, limiter, essential=True)
    with pytest.raises(TooManyRequests):
        await essential.info(PAGE)
    limited_at = trio.current_time()
    await essential.info(PAGE)  # after the block: 720 + 120 fit the full budget
    assert trio.current_time() == limited_at + 0.5 + 0.5
    # Another reader waits for the cut budget (half, recovering) to make room.
    started = trio.current_time()
    await RestQueries(rest, limiter).info(PAGE)
    assert trio.current_time() - started > 30.0
