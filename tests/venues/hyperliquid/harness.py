"""A simulator plus a HyperliquidClient on loopback, for adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.model import PlaceOrder, Side, Tif
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.hyperliquid.ws import WsConnection
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.faults import FaultConfig
from mm.venues.sim.venue import SimVenue

KEY = "0x" + "5a" * 32
QUIET = MarketConfig(taker_a=0.0, volatility_bps=0.0, jump_rate_per_hour=0.0)


@asynccontextmanager
async def setup(
    *,
    websocket: bool = True,
    faults: FaultConfig | None = None,
    post_timeout_s: float = 5.0,
    address_initial_requests: int | None = None,
    action_expiry_s: float = 3.0,
) -> AsyncIterator[tuple[SimVenue, HyperliquidClient]]:
    config = SimConfig(market=QUIET, faults=faults or FaultConfig(), rate_limits=False)
    if address_initial_requests is not None:  # rehearse the venue's address limit
        config = attrs.evolve(
            config, rate_limits=True, address_initial_requests=address_initial_requests
        )
    signer = L1Signer(KEY)
    # On the wall clock (nonces are wall-clock milliseconds); the faucet funds the key's account.
    venue = SimVenue(config, fund_at_start=(signer.address,))
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        ws = WsConnection(venue.url) if websocket else None
        if ws is not None:
            await nursery.start(ws.run)
        async with RestTransport(venue.url) as rest:
            client = HyperliquidClient(
                rest=rest,
                ws=ws,
                signer=signer,
                account=signer.address,
                mainnet=False,
                limiter=RateLimiter(),
                metrics=AdapterMetrics(CollectorRegistry()),
                post_timeout_s=post_timeout_s,
                action_expiry_s=action_expiry_s,
            )
            await client.metadata()
            try:
                yield venue, client
            finally:
                nursery.cancel_scope.cancel()


def passive(venue: SimVenue, side: Side, *, away: float = 0.2) -> float:
    mid = float(venue.mids()["BTC"])
    return mid * (1 - away) if side is Side.BUY else mid * (1 + away)


def order(px: float, side: Side = Side.BUY, tif: Tif = Tif.GTC, sz: float = 0.001) -> PlaceOrder:
    return PlaceOrder("BTC", side, px, sz, tif, new_cloid())
