"""How ``acquire`` waits: asleep until its wait is over, woken sooner only when the budget that
holds it grows (weight given back, the venue's figures, a fill), and granted at the first instant
the limiter allows; checked against the loop it replaced, which looked again every second."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mm.model import RateLimitState
from mm.venues.hyperliquid.rate_limit import (
    Cost,
    RateLimitConfig,
    RateLimiter,
    RateLimitError,
    acquire,
    acquire_at,
    as_cost,
)

CONFIG = RateLimitConfig()  # the shipped figures: 2 tokens a second, a burst of 20, ...
CAP = 10_000
RESERVE = CONFIG.address_reserve_requests


class FixedRandom(random.Random):
    def random(self) -> float:
        return 0.0


async def polling_acquire_at(
    limiter: RateLimiter, cost: Cost | int, *, clock: Callable[[], float] = trio.current_time
) -> float:
    """The loop ``acquire_at`` replaced (the oracle): it looked again at least every second."""
    held = 0
    try:
        while True:
            now = clock()
            wait = limiter.wait_time(cost, now)
            if wait == 0.0:
                limiter.record(cost, now)
                return now
            if math.isinf(wait):
                raise RateLimitError("never fits")
            if not held:
                held = limiter.reserve_orders(cost)
            await trio.sleep(min(wait, 1.0))
    finally:
        limiter.release_orders(held)


class CountingClock:
    """Trio's clock, counting how often the waiter looks at it (once a look)."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return trio.current_time()


def at_the_address_limit(now: float) -> RateLimiter:
    """A limiter whose address is one request past the reserve, its last action at ``now``:
    the next action waits the throttled pace (11 s)."""
    limiter = RateLimiter(CONFIG)
    limiter.observe(RateLimitState(0.0, CAP - RESERVE, CAP), now)
    limiter.record(Cost.cancels(1), now)
    return limiter


async def test_a_batch_waiting_for_its_tokens_looks_once_when_they_are_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(CONFIG)
    limiter.record(Cost.orders(80), trio.current_time())  # 60 tokens owed
    clock = CountingClock()
    assert await acquire(limiter, Cost.orders(80), clock=clock) == 40.0  # 80 tokens at 2 a second
    assert clock.reads == 3  # the start, the first look, the look that finds them in (not 41)


async def test_new_figures_wake_a_request_held_by_the_address_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    limiter = at_the_address_limit(start)
    assert limiter.wait_time(Cost.orders(1), start) == 11.0
    granted: list[float] = []

    async def send() -> None:
        granted.append(await acquire_at(limiter, Cost.orders(1)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(2.25)
        limiter.observe(RateLimitState(0.0, CAP - RESERVE - 50, CAP), trio.current_time())
    assert granted == [start + 2.25]  # at once, not at the next whole second


async def test_a_fills_volume_wakes_a_request_held_by_the_address_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    limiter = at_the_address_limit(start)
    granted: list[float] = []

    async def send() -> None:
        granted.append(await acquire_at(limiter, Cost.orders(1)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(3.5)
        limiter.add_volume(1.5)  # one request more on the cap: still one short
        await trio.sleep(1.0)
        limiter.add_volume(0.5)  # two
    assert granted == [start + 4.5]


async def test_weight_given_back_wakes_a_request_held_by_the_ip_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    limiter = RateLimiter(CONFIG)
    limiter.record(1000, start)  # a reservation for an answer's items
    assert limiter.wait_time(200, start) == 60.0
    granted: list[float] = []

    async def send() -> None:
        granted.append(await acquire_at(limiter, 200))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await trio.sleep(0.75)
        limiter.settle(start, 1000, 1020, trio.current_time())  # heavier: still held
        await trio.sleep(0.75)
        limiter.settle(start, 1000, 20, trio.current_time())  # it weighed 20
    assert granted == [start + 1.5]


async def test_a_budget_that_does_not_hold_a_request_does_not_wake_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    limiter = RateLimiter(CONFIG)
    limiter.record(Cost.orders(40), start)  # 20 tokens owed: the bucket holds it for 20 s
    clock = CountingClock()
    granted: list[float] = []

    async def send() -> None:
        granted.append(await acquire_at(limiter, Cost.orders(1), clock=clock))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        for _ in range(5):
            await trio.sleep(1.0)
            limiter.add_volume(100.0)
            limiter.observe(RateLimitState(0.0, 0, CAP), trio.current_time())
    assert granted == [start + 10.5]
    assert clock.reads == 2


async def test_a_cancelled_waiter_gives_its_tokens_back_to_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    limiter = RateLimiter(CONFIG)
    limiter.record(Cost.orders(20), start)  # the bucket is empty
    async with trio.open_nursery() as nursery:
        nursery.start_soon(acquire, limiter, Cost.orders(5))
        await trio.sleep(2.0)
        assert limiter.order_budget(trio.current_time()) == 0  # four tokens, held for it
        nursery.cancel_scope.cancel()
    assert limiter.order_budget(trio.current_time()) == 4


# --- against the loop it replaced ---------------------------------------------------------------

# What happens while a request waits, each at its own instant: (kind, amount).
KINDS = ("order", "info", "cancel", "settle", "observe", "volume", "429")


def scenario_limiter(used: int, owed: int) -> RateLimiter:
    """At 0: the address ``used`` requests short of its limit... (see the property)."""
    limiter = RateLimiter(CONFIG, FixedRandom())
    limiter.observe(RateLimitState(0.0, CAP - RESERVE - used, CAP), 0.0)
    limiter.record(as_cost(900), 0.0)  # a reservation, settled (or not) by the schedule
    limiter.record(Cost.orders(owed), 0.0)
    return limiter


def apply(limiter: RateLimiter, kind: str, amount: int, now: float) -> None:
    if kind == "order":
        limiter.record(Cost.orders(1 + amount % 30), now)
    elif kind == "info":
        limiter.record(20 * (1 + amount % 10), now)
    elif kind == "cancel":
        limiter.record(Cost.cancels(1), now)
    elif kind == "settle":
        limiter.settle(0.0, 900, amount % 1000, now)
    elif kind == "observe":
        limiter.observe(RateLimitState(0.0, CAP - RESERVE - amount % 50, CAP), now)
    elif kind == "volume":
        limiter.add_volume(float(amount % 40))
    else:
        limiter.on_http_429(now)


def first_fit(
    limiter: RateLimiter, cost: Cost, schedule: list[tuple[float, str, int]]
) -> float | None:
    """The first instant ``cost`` fits, the schedule applied at its instants: what a waiter
    looking at every instant would be granted (None: not before the schedule's end + 600 s)."""
    now = 0.0
    for at, kind, amount in [*schedule, (math.inf, "", 0)]:
        wait = limiter.wait_time(cost, now)
        if now + wait < at:
            return now + wait if now + wait < schedule_end(schedule) + 600 else None
        apply(limiter, kind, amount, at)
        now = at
    return None


def schedule_end(schedule: list[tuple[float, str, int]]) -> float:
    return schedule[-1][0] if schedule else 0.0


def granted(
    waiter: Callable[..., object],
    limiter: RateLimiter,
    cost: Cost,
    schedule: list[tuple[float, str, int]],
) -> float | None:
    result: list[float] = []

    async def main() -> None:
        async def wait() -> None:
            at = await waiter(limiter, cost)  # type: ignore[misc]
            result.append(at)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            for at, kind, amount in schedule:
                await trio.sleep_until(at)
                apply(limiter, kind, amount, trio.current_time())
            await trio.sleep(600)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result[0] if result else None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    used=st.integers(-3, 40),
    owed=st.integers(0, 60),
    request=st.sampled_from(["order", "batch", "info", "cancel"]),
    events=st.lists(
        st.tuples(st.integers(1, 40), st.sampled_from(KINDS), st.integers(0, 10_000)),
        max_size=12,
    ),
)
def test_acquire_grants_at_the_first_instant_the_limiter_allows(
    used: int,
    owed: int,
    request: str,
    events: list[tuple[int, str, int]],
) -> None:
    """The address ``used`` requests short of its limit (negative: over it), the bucket
    ``owed`` tokens short of full, a 900-weight reservation in the IP window, and while a
    request waits, other requests, a settled reservation, new figures, fills and 429s at
    their own instants (quarter seconds apart, and a seventh of a millisecond off the grid the
    waits end on, so that no event ties with a grant). The request is granted at the first
    instant the limiter allows it, never later than the polling loop granted it, and at the
    same instant whenever nothing grew the budget in between."""
    cost = {
        "order": Cost.orders(1),
        "batch": Cost.orders(25),
        "info": as_cost(400),
        "cancel": Cost.cancels(1),
    }[request]
    schedule = []
    at = 0.0
    for n, (steps, kind, amount) in enumerate(events):
        at += 0.25 * steps
        schedule.append((at + (n + 1) / 7000, kind, amount))
    first = first_fit(scenario_limiter(used, owed), cost, schedule)
    new = granted(acquire_at, scenario_limiter(used, owed), cost, schedule)
    old = granted(polling_acquire_at, scenario_limiter(used, owed), cost, schedule)
    event(f"polling later: {new is not None and (old is None or old > new + 1e-9)}")
    assert (new is None) == (first is None)
    if new is not None and first is not None:
        assert new == pytest.approx(first, abs=1e-9)
        assert old is None or old >= new - 1e-9
        grew = {kind for t, kind, _ in schedule if t <= new} & {"settle", "observe", "volume"}
        if not grew:
            assert old == pytest.approx(new, abs=1e-9)
