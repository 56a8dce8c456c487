"""A venue of each kind under test: its simulator on loopback and its adapter built by the
factory, both on the test's clock (pytest-trio's ``autojump_clock``: the simulator's commit
delays and the adapter's timers take no real time).

What a test needs of the simulator (its mid, volume credited to an account) is the rig's, per
kind: the tests themselves speak only the port (mm.venues.base). A new venue kind joins by
adding its simulator here (``_SIMULATORS``) and the factory's builder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.secrets import Secret
from mm.venues.config import DEV_PRIVATE_KEY, FeedsConfig, VenueConfig
from mm.venues.factory import account_of, build_adapter
from mm.venues.service import VenueService
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.venue import SimVenue

KEY = Secret(DEV_PRIVATE_KEY)
COINS = ("BTC", "ETH")
# No outside takers and a still mid: only the test's own orders trade.
QUIET = MarketConfig(taker_a=0.0, volatility_bps=0.0, jump_rate_per_hour=0.0)
STARTUP_S = 60.0  # virtual seconds for the feeds to be up and in sync


@attrs.frozen
class Simulated:
    """The simulator a kind's adapter talks to, as the tests drive it."""

    url: str
    mid: Callable[[str], float]
    credit_volume: Callable[[str, float], None]  # (account, USD traded)


@asynccontextmanager
async def _hyperliquid(account: str) -> AsyncIterator[Simulated]:
    sim = SimVenue(SimConfig(coins=COINS, market=QUIET), fund_at_start=(account,))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        assert sim.url is not None
        try:
            yield Simulated(
                sim.url,
                mid=lambda coin: float(sim.mids()[coin]),
                credit_volume=lambda user, usd: (sim.credit_volume(user, usd), None)[1],
            )
        finally:
            nursery.cancel_scope.cancel()


_SIMULATORS: dict[str, Callable[[str], AbstractAsyncContextManager[Simulated]]] = {
    "hyperliquid": _hyperliquid,
}


@attrs.frozen
class Rig:
    kind: str
    venue: VenueConfig
    sim: Simulated
    adapter: VenueService


@asynccontextmanager
async def venue_rig(kind: str) -> AsyncIterator[Rig]:
    """The kind's simulator and its adapter with both feeds running and in sync."""
    venue = VenueConfig(kind=kind)
    async with _SIMULATORS[kind](account_of(venue, KEY)) as sim:
        adapter = build_adapter(
            venue,
            FeedsConfig(coins=COINS),
            venue_url=lambda: sim.url,
            signing_key=KEY,
            registry=CollectorRegistry(),
            killed=lambda: False,
            on_fill=lambda fill: None,
            on_order_events=lambda events: None,
            on_feed_state=lambda feed, state: None,
            on_startup=lambda account: None,
        )
        async with trio.open_nursery() as nursery:
            with trio.fail_after(STARTUP_S):
                await nursery.start(adapter.run_market)
                await nursery.start(adapter.run_user)
                while not adapter.in_sync() or adapter.stale_coins():  # noqa: ASYNC110
                    await trio.sleep(0.1)
            try:
                yield Rig(kind, venue, sim, adapter)
            finally:
                nursery.cancel_scope.cancel()
