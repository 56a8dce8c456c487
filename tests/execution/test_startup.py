"""The startup sequence against the simulator: order of steps, cancel-all, and a stuck venue."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm.execution.startup import StartupConfig, StartupFailed, StartupWaits, run_startup
from mm.model import (
    AccountState,
    CancelOrder,
    CancelResult,
    Instrument,
    OpenOrder,
    PlaceOrder,
    RateLimitState,
    Side,
    Tif,
)
from mm.venues.base import RateLimited, RequestBudget
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import VenueUnavailable
from mm.venues.hyperliquid.wire import new_cloid
from tests.ids import hl_oid
from tests.venues.hyperliquid.harness import setup


class Recorder:
    """Wraps a venue and records the order of the calls."""

    def __init__(self, venue: Any) -> None:
        self.venue = venue
        self.calls: list[str] = []

    async def instruments(self) -> list[Instrument]:
        self.calls.append("instruments")
        result: list[Instrument] = await self.venue.instruments()
        return result

    async def open_orders(self) -> list[OpenOrder]:
        self.calls.append("open_orders")
        result: list[OpenOrder] = await self.venue.open_orders()
        return result

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        result: list[CancelResult] = await self.venue.cancel(cancels)
        return result

    async def account_state(self) -> AccountState:
        self.calls.append("account_state")
        result: AccountState = await self.venue.account_state()
        return result

    async def rate_limit(self) -> RateLimitState:
        self.calls.append("rate_limit")
        result: RateLimitState = await self.venue.rate_limit()
        return result


async def test_the_sequence_cancels_what_a_previous_run_left() -> None:
    with trio.fail_after(20):
        async with setup() as (venue, client):
            mid = float(venue.mids()["BTC"])
            left = [
                PlaceOrder("BTC", Side.BUY, mid * 0.8, 0.001, Tif.GTC, new_cloid()),
                PlaceOrder("BTC", Side.SELL, mid * 1.2, 0.001, Tif.GTC, new_cloid()),
            ]
            await client.place(left)
            recorder = Recorder(client)
            state = await run_startup(
                recorder, StartupConfig(cancel_settle_s=0.05), StartupWaits(RateLimiter())
            )
            assert recorder.calls == [
                "instruments",
                "open_orders",
                "cancel",
                "open_orders",
                "account_state",
                "rate_limit",
            ]
            assert state.canceled == 2
            assert state.open_orders == ()
            assert [i.symbol for i in state.instruments] == ["BTC", "ETH"]
            assert await client.open_orders() == []


async def test_keeping_open_orders_when_configured() -> None:
    with trio.fail_after(20):
        async with setup() as (venue, client):
            mid = float(venue.mids()["BTC"])
            await client.place(
                [PlaceOrder("BTC", Side.BUY, mid * 0.8, 0.001, Tif.GTC, new_cloid())]
            )
            state = await run_startup(
                client, StartupConfig(cancel_open_orders=False), StartupWaits(RateLimiter())
            )
            assert len(state.open_orders) == 1
            assert state.canceled == 0


class StuckVenue(Recorder):
    """A venue whose orders never go away."""

    async def open_orders(self) -> list[OpenOrder]:
        self.calls.append("open_orders")
        return [OpenOrder("BTC", Side.BUY, 1.0, 1.0, 1.0, hl_oid(7), None, 0)]

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        return [None for _ in cancels]


async def test_a_venue_that_keeps_orders_stops_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = StuckVenue(None)

    async def instruments() -> list[Instrument]:
        return []

    venue.instruments = instruments  # type: ignore[method-assign]
    with pytest.raises(StartupFailed, match="1 orders still open after 3"):
        await run_startup(venue, StartupConfig(cancel_attempts=3), StartupWaits(RateLimiter()))
    assert venue.calls.count("cancel") == 3
    assert "account_state" not in venue.calls


# --- a 429 at startup is waited out (issue 13, item 6) -----------------------------------------


class RateLimitedVenue(StuckVenue):
    """A venue that answers 429 until ``until`` (trio time), telling the limiter as the real
    client does, then answers: no orders, an empty account."""

    def __init__(self, limiter: RateLimiter, until: float, *, on: tuple[str, ...]) -> None:
        super().__init__(None)
        self.limiter = limiter
        self.until = until
        self.on = on
        self.refused: list[tuple[str, float]] = []

    def _gate(self, step: str) -> None:
        self.calls.append(step)
        now = trio.current_time()
        if step in self.on and now < self.until:
            self.refused.append((step, now))
            self.limiter.on_http_429(now)
            raise RateLimited("/info: HTTP 429: 429 Too Many Requests")

    async def instruments(self) -> list[Instrument]:
        self._gate("metadata")
        return []

    async def open_orders(self) -> list[OpenOrder]:
        self._gate("open_orders")
        return []

    async def account_state(self) -> AccountState:
        self._gate("account_state")
        return AccountState(0, 0.0, 0.0, 0.0, ())

    async def rate_limit(self) -> RateLimitState:
        self._gate("rate_limit")
        return RateLimitState(0.0, 0, 10_000)


async def test_a_429_on_each_step_is_waited_out_on_the_limiters_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(rng=random.Random(7))
    registry = CollectorRegistry()
    waits = StartupWaits(limiter, registry)
    steps = ("metadata", "account_state", "rate_limit")
    venue = RateLimitedVenue(limiter, until=100.0, on=steps)
    await run_startup(venue, StartupConfig(cancel_open_orders=False), waits)
    assert trio.current_time() >= 100.0  # it waited the 429s out
    assert venue.calls[-2:] == ["account_state", "rate_limit"]  # each step in the end
    refused = {step: [at for s, at in venue.refused if s == step] for step in steps}
    assert refused["metadata"], venue.refused
    # Never sooner than the limiter allowed: each retry came after the backoff it started, and
    # the backoff grew (exponential, capped), so a minute of 429s is a handful of requests.
    times = refused["metadata"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= limiter.config.backoff_initial_seconds * 0.5 for gap in gaps)
    assert len(times) < 15
    assert waits.rate_limited == len(venue.refused) == limiter.rejections
    sample = registry.get_sample_value("mm_startup_rate_limited_total", {"step": "metadata"})
    assert sample == len(times)
    assert registry.get_sample_value("mm_startup_waiting") == 0.0
    assert waits.waiting() is None
    assert waits.status()["rate_limited_total"] == waits.rate_limited


async def test_while_a_step_waits_status_says_which_and_since_when(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(rng=random.Random(1))
    waits = StartupWaits(limiter, CollectorRegistry())
    venue = RateLimitedVenue(limiter, until=math.inf, on=("metadata",))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waits.call, "metadata", venue.instruments)
        await trio.sleep(20.0)
        status = waits.status()
        assert status["waiting"] == "metadata"
        assert status["rate_limited_now"] == len(venue.refused) >= 3
        assert status["next_try_in_s"] is not None
        said = waits.waiting()
        assert said is not None
        assert said.startswith("metadata rate limited by the venue (HTTP 429) for 20s")
        nursery.cancel_scope.cancel()


async def test_a_cancel_all_that_cannot_read_for_429s_is_waited_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter(rng=random.Random(3))
    waits = StartupWaits(limiter, CollectorRegistry())
    # 429s for longer than the startup cancel-all's own deadline (30 s): it reports that it
    # could not read, and the startup waits and runs it again instead of failing.
    venue = RateLimitedVenue(limiter, until=45.0, on=("open_orders",))
    state = await run_startup(venue, StartupConfig(), waits)
    assert state.canceled == 0
    assert trio.current_time() >= 45.0
    assert waits.rate_limited == limiter.rejections > 0
    assert venue.calls[-2:] == ["account_state", "rate_limit"]


async def test_other_venue_errors_are_not_waited_on() -> None:
    waits = StartupWaits(RateLimiter(), CollectorRegistry())

    async def broken() -> list[Instrument]:
        raise VenueUnavailable("/info", 500, "Internal Server Error")

    with pytest.raises(VenueUnavailable):
        await waits.call("metadata", broken)
    assert waits.rate_limited == 0


class PortBudget:
    """A request budget known only through the port (no venue's limiter behind it)."""

    def __init__(self) -> None:
        self.asked: list[bool] = []
        self.rejections = 0

    def headroom(self, now: float) -> float:
        return 1.0

    def order_budget(self, now: float) -> int:
        return 10

    def headroom_by_kind(self, now: float) -> dict[str, float]:
        return {"overall": 1.0}

    def read_retry_wait(self, now: float, *, counted: bool) -> float:
        self.asked.append(counted)
        return 7.0


async def test_startup_waits_on_the_ports_request_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = PortBudget()
    budget_type: RequestBudget = budget  # mypy: it is the port's
    waits = StartupWaits(budget_type, CollectorRegistry())
    refusals = [RateLimited("refused"), RateLimited("refused")]

    async def request() -> list[str]:
        if refusals:
            raise refusals.pop()
        return ["BTC"]

    started = trio.current_time()
    assert await waits.call("metadata", request) == ["BTC"]
    assert trio.current_time() - started == pytest.approx(14.0)  # the budget's wait, twice
    assert budget.asked == [False, False]  # a refusal raised here had not reached the budget
    assert waits.rate_limited == 2
