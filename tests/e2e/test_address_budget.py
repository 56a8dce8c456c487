"""The address budget grows with volume (issue 14, item 2), with the shipped config.toml on
virtual time.

The venue lets an address send 10000 actions plus one per USDC it has traded. mm read
``userRateLimit`` once, at startup, and never credited its own fills: at the shipped order rate
its address headroom ran down by about 1.3% a minute while the venue's grew, and after about
1.4 hours on a fresh account it throttled itself to one action per 11 s although the venue
would have taken more. Now every fill raises the limiter's cap, the venue's figures are read
again every minute and after every resync, and mm's headroom is the venue's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from mm.app import Service
from tests.e2e.virtual import resting_sides, shipped_service, venue, wait_for
from tests.hyperliquid_adapter import hyperliquid

pytestmark = pytest.mark.slow

MINUTE = 60.0


def venue_headroom(service: Service) -> float:
    """The address headroom by the simulator's own figures, on mm's terms: the requests left
    before the reserve mm keeps back from the cap, over the cap less that reserve."""
    state = venue(service).address_limits.state(service.adapter.account)
    limit: int = state["nRequestsCap"] - service.config.rate_limit.address_reserve_requests
    used: int = state["nRequestsUsed"]
    return min(1.0, max(0.0, (limit - used) / limit))


def mm_headroom(service: Service) -> float:
    return service.adapter.limiter.headroom_by_kind(trio.current_time())["address"]


def quoting(service: Service) -> bool:
    sides = resting_sides(service)
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


async def test_headroom_follows_the_venue_through_a_trading_session(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting(service), within=MINUTE)
        sim = venue(service)
        account = service.adapter.account
        gaps = []
        for _ in range(10):
            await trio.sleep(MINUTE)
            state = sim.address_limits.state(account)
            limiter = hyperliquid(service).limiter
            # The cap as mm reckons it is the venue's (the fills credited between reads), and
            # so is the headroom the quote tiers and mm_api_headroom_ratio act on.
            cap, venue_cap = limiter.address_cap(), state["nRequestsCap"]
            assert abs(cap - venue_cap) <= 0.05 * venue_cap, (cap, state)
            gaps.append(round(abs(mm_headroom(service) - venue_headroom(service)), 4))
        # mm traded all along, and its volume grew the venue's cap past the initial buffer.
        assert float(state["cumVlm"]) > 10_000.0, state
        assert max(gaps) <= 0.05, gaps
        metric = service.registry.get_sample_value("mm_api_headroom_ratio", {"kind": "address"})
        assert metric is not None
        assert abs(metric - venue_headroom(service)) <= 0.05
        reads = service.registry.get_sample_value("mm_address_budget_reads_total", {"result": "ok"})
        assert reads is not None
        assert reads >= 9  # one a minute
        status = service.status()["address_budget"]
        assert status["venue"]["cap"] > 10_000


async def test_past_the_initial_buffer_mm_keeps_its_pace(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # The venue's initial buffer of this account is 500 requests (the simulator's knob for
    # rehearsing the address limit), so that the point where the shipped order rate has used
    # it comes within minutes instead of 1.4 hours. mm's volume grows the venue's cap far
    # beyond: mm must keep sending at its own pace, never at the throttled one (one action per
    # 11 s), and never meet the venue's address-limit error.
    initial = 500
    overrides = {"sim.address_initial_requests": initial}
    async with shipped_service(tmp_path / "run", overrides) as service:
        await wait_for(lambda: quoting(service), within=MINUTE)
        sim = venue(service)
        account = service.adapter.account
        await wait_for(
            lambda: sim.address_limits.requests_used(account) > initial, within=15 * MINUTE
        )
        passed_at = sim.address_limits.requests_used(account)
        await trio.sleep(2 * MINUTE)
        sent = sim.address_limits.requests_used(account) - passed_at
        # Throttled, two minutes are at most 11 actions; mm's own pace is over 100 a minute.
        assert sent > 150, sent
        assert sim.address_limits.cap(account) > sim.address_limits.requests_used(account)
        assert service.adapter.limiter.rejections == 0
        assert abs(mm_headroom(service) - venue_headroom(service)) <= 0.05
