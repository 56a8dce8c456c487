"""The address budget: fills credited as they come, the venue's figures read periodically and
after every resync (issue 14, item 2)."""

from __future__ import annotations

import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm import clock
from mm.model import Fill, RateLimitState, Side
from mm.venues.base import RateLimited
from mm.venues.hyperliquid.address_budget import AddressBudget
from mm.venues.hyperliquid.rate_limit import RateLimiter
from tests.ids import hl_oid, hl_tid


def fill(px: float, sz: float, time_ms: int) -> Fill:
    return Fill(
        coin="BTC",
        side=Side.BUY,
        px=px,
        sz=sz,
        time_ms=time_ms,
        oid=hl_oid(1),
        tid=hl_tid(time_ms),
        cloid=None,
        fee=0.0,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="Open Long",
        closed_pnl=0.0,
        hash="0x0",
    )


class Venue:
    """``userRateLimit`` as the order client reads it: into the limiter, at a wall time."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.state = RateLimitState(cum_volume=0.0, requests_used=0, requests_cap=10_000)
        self.reads: list[float] = []
        self.fail: Exception | None = None
        self.wall_ms = 1_000_000

    async def read(self) -> RateLimitState:
        self.reads.append(trio.current_time())
        if self.fail is not None:
            raise self.fail
        self.limiter.observe(self.state, trio.current_time(), volume_as_of_ms=self.wall_ms)
        return self.state


def reads(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("mm_address_budget_reads_total", {"result": result})
    return value or 0.0


async def test_fills_raise_the_cap_between_reads_of_the_venue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter()
    venue = Venue(limiter)
    registry = CollectorRegistry()
    budget = AddressBudget(limiter, lambda: venue.read, every_s=60.0, registry=registry)
    assert await budget.refresh()
    budget.on_fill(fill(100_000.0, 0.0005, 1_000_001))  # 50 USDC: 50 more requests
    budget.on_fill(fill(3_500.0, 0.02, 1_000_002))  # 70 USDC
    assert limiter.address_cap() == 10_120
    budget.on_fill(fill(100_000.0, 0.01, 999_999))  # made before the read: in its figure
    assert limiter.address_cap() == 10_120
    status = budget.status()
    assert status["cap"] == 10_120
    assert status["venue"] == {
        "used": 0,
        "cap": 10_000,
        "cum_volume": 0.0,
        "read_at": clock.wall(),
    }
    assert reads(registry, "ok") == 1


async def test_read_every_period_and_at_once_after_a_resync(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter()
    venue = Venue(limiter)
    budget = AddressBudget(limiter, lambda: venue.read, every_s=60.0)
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(budget.run)
        await trio.sleep(130.0)
        assert [at - start for at in venue.reads] == [60.0, 120.0]
        venue.state = RateLimitState(cum_volume=5_000.0, requests_used=700, requests_cap=15_000)
        budget.resynced(started_at=start + 125.0)  # after the last read: read again
        await trio.testing.wait_all_tasks_blocked()
        assert [at - start for at in venue.reads] == [60.0, 120.0, 130.0]
        assert (limiter.address_used(), limiter.address_cap()) == (700, 15_000)
        await trio.sleep(61.0)  # the period starts again from the resync's read
        assert [at - start for at in venue.reads] == [60.0, 120.0, 130.0, 190.0]
        # A resync that began before the last read (at startup, say): that read is enough.
        budget.resynced(started_at=start + 189.0)
        await trio.testing.wait_all_tasks_blocked()
        assert [at - start for at in venue.reads] == [60.0, 120.0, 130.0, 190.0]
        nursery.cancel_scope.cancel()


async def test_a_failed_read_is_counted_and_done_again_next_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter()
    venue = Venue(limiter)
    registry = CollectorRegistry()
    budget = AddressBudget(limiter, lambda: venue.read, every_s=60.0, registry=registry)
    venue.fail = RateLimited("/info: HTTP 429: 429 Too Many Requests")
    async with trio.open_nursery() as nursery:
        await nursery.start(budget.run)
        await trio.sleep(61.0)
        assert reads(registry, "failed") == 1
        known = [limiter.address_known]  # the limiter keeps its own estimate meanwhile
        venue.fail = None
        await trio.sleep(60.0)
        assert reads(registry, "ok") == 1
        known.append(limiter.address_known)
        assert known == [False, True]
        nursery.cancel_scope.cancel()


async def test_no_client_no_read(autojump_clock: trio.testing.MockClock) -> None:
    budget = AddressBudget(RateLimiter(), lambda: None, every_s=60.0)
    assert not await budget.refresh()
    assert budget.status()["venue"] is None
