"""The simulator's KuCoin face over loopback for the WebSocket tests: the venue running, a
signed REST transport to it, the bullet (token) request and the REST full book the adapter's
WebSocket and market stream are given, and ways to reach the face's sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from mm import clock
from mm.venues.kucoin.codec import parse_level2_snapshot
from mm.venues.kucoin.level2 import Snapshot
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.ws_protocol import Bullet, parse_bullet
from mm.venues.sim.hub import Session
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue


@attrs.define(eq=False)
class Face:
    """A running face and the calls the adapter is handed for it."""

    venue: KucoinSimVenue
    rest: KucoinRestTransport
    bullets: int = 0  # bullet requests made
    snapshots: int = 0  # full books asked for

    async def bullet(self) -> Bullet:
        self.bullets += 1
        return parse_bullet(await self.rest.request("POST", "/api/v1/bullet-public", signed=False))

    async def snapshot(self, symbol: str) -> Snapshot:
        self.snapshots += 1
        data = await self.rest.request(
            "GET", "/api/v3/market/orderbook/level2", query={"symbol": symbol}
        )
        return parse_level2_snapshot(data, symbol)

    def sessions(self, channel: str, name: str) -> list[Session]:
        """The face's WebSocket sessions subscribed to ``(channel, name)``."""
        return list(self.venue.hub._subscribers.get((channel, name), ()))

    def drop_sessions(self, channel: str, name: str) -> int:
        """Close, at the face, every session subscribed to ``(channel, name)``."""
        sessions = self.sessions(channel, name)
        for session in sessions:
            session.close("closed by the test")
        return len(sessions)


@asynccontextmanager
async def running_face(seed: int = 7, step_s: float = 0.1) -> AsyncIterator[Face]:
    venue = KucoinSimVenue(seed=seed, step_s=step_s)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with KucoinRestTransport(
            url, DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=10.0
        ) as rest:
            yield Face(venue, rest)
        nursery.cancel_scope.cancel()
