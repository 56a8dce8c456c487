"""A venue of each kind under test: its simulator on loopback and its adapter built by the
factory, both on the test's clock (pytest-trio's ``autojump_clock``: the simulator's commit
delays and the adapter's timers take no real time).

What a test needs of the simulator (the symbols it lists, its mid, volume credited to an
account, what an account holds of a symbol's base) is the rig's, per kind: the tests themselves
speak only the port (mm.venues.base). A new venue kind joins by adding its simulator here
(``_SIMULATORS``) and the factory's builder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.model import AccountState
from mm.secrets import Secret
from mm.venues.config import DEV_PRIVATE_KEY, FeedsConfig, VenueConfig, dev_api_credentials
from mm.venues.factory import account_of, build_adapter
from mm.venues.service import VenueService
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.kucoin.triangle import TriangleConfig
from mm.venues.sim.venue import SimVenue

KEY = Secret(DEV_PRIVATE_KEY)
API = dev_api_credentials()
# No outside takers and a still mid: only the test's own orders trade.
QUIET = MarketConfig(taker_a=0.0, volatility_bps=0.0, jump_rate_per_hour=0.0)
QUIET_TRIANGLE = TriangleConfig(volatility_bps=0.0, dislocation_bps=0.0, shocks_per_minute=0.0)
STARTUP_S = 60.0  # virtual seconds for the feeds to be up and in sync


@attrs.frozen
class Simulated:
    """The simulator a kind's adapter talks to, as the tests drive it."""

    url: str
    coins: tuple[str, ...]  # the symbols the adapter follows, as the venue names them
    mid: Callable[[str], float]
    # (account, USD traded), for a venue whose dead-man's switch waits for volume (else None)
    credit_volume: Callable[[str, float], None] | None
    # What the account holds of the symbol's base: a position, or a spot balance.
    holding: Callable[[AccountState, str], float]


def _position(account: AccountState, coin: str) -> float:
    return sum(position.szi for position in account.positions if position.coin == coin)


@asynccontextmanager
async def _hyperliquid(account: str) -> AsyncIterator[Simulated]:
    coins = ("BTC", "ETH")
    sim = SimVenue(SimConfig(coins=coins, market=QUIET), fund_at_start=(account,))
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        assert sim.url is not None
        try:
            yield Simulated(
                sim.url,
                coins,
                mid=lambda coin: float(sim.mids()[coin]),
                credit_volume=lambda user, usd: (sim.credit_volume(user, usd), None)[1],
                holding=_position,
            )
        finally:
            nursery.cancel_scope.cancel()


def _base_balance(account: AccountState, symbol: str) -> float:
    base = symbol.split("-", 1)[0]
    return sum(balance.total for balance in account.balances if balance.currency == base)


@asynccontextmanager
async def _kucoin(account: str) -> AsyncIterator[Simulated]:
    sim = KucoinSimVenue(market=QUIET_TRIANGLE)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(sim.run)
        try:
            yield Simulated(
                url,
                ("BTC-USDT", "ETH-USDT", "ETH-BTC"),
                mid=lambda symbol: sim.market.mids()[symbol],
                credit_volume=None,
                holding=_base_balance,
            )
        finally:
            nursery.cancel_scope.cancel()


_SIMULATORS: dict[str, Callable[[str], AbstractAsyncContextManager[Simulated]]] = {
    "hyperliquid": _hyperliquid,
    "kucoin": _kucoin,
}


@attrs.frozen
class Rig:
    kind: str
    venue: VenueConfig
    sim: Simulated
    adapter: VenueService

    @property
    def coins(self) -> tuple[str, ...]:
        return self.sim.coins

    @property
    def coin(self) -> str:
        """The symbol the tests trade."""
        return self.sim.coins[0]


@asynccontextmanager
async def venue_rig(kind: str) -> AsyncIterator[Rig]:
    """The kind's simulator and its adapter with both feeds running and in sync."""
    venue = VenueConfig(kind=kind)
    async with _SIMULATORS[kind](account_of(venue, KEY, API)) as sim:
        adapter = build_adapter(
            venue,
            FeedsConfig(coins=sim.coins),
            venue_url=lambda: sim.url,
            signing_key=KEY,
            api_credentials=API,
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
