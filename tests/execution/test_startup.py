"""The startup sequence against the simulator: order of steps, cancel-all, and a stuck venue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio
import trio.testing

from mm.execution.startup import StartupConfig, StartupFailed, run_startup
from mm.model import (
    AccountState,
    AssetMeta,
    CancelOrder,
    CancelResult,
    OpenOrder,
    PlaceOrder,
    RateLimitState,
    Side,
    Tif,
)
from mm.venues.hyperliquid.wire import new_cloid
from tests.venues.hyperliquid.harness import setup


class Recorder:
    """Wraps a venue and records the order of the calls."""

    def __init__(self, venue: Any) -> None:
        self.venue = venue
        self.calls: list[str] = []

    async def metadata(self) -> list[AssetMeta]:
        self.calls.append("metadata")
        result: list[AssetMeta] = await self.venue.metadata()
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
            state = await run_startup(recorder, StartupConfig(cancel_settle_s=0.05))
            assert recorder.calls == [
                "metadata",
                "open_orders",
                "cancel",
                "open_orders",
                "account_state",
                "rate_limit",
            ]
            assert state.canceled == 2
            assert state.open_orders == ()
            assert [a.coin for a in state.assets] == ["BTC", "ETH"]
            assert await client.open_orders() == []


async def test_keeping_open_orders_when_configured() -> None:
    with trio.fail_after(20):
        async with setup() as (venue, client):
            mid = float(venue.mids()["BTC"])
            await client.place(
                [PlaceOrder("BTC", Side.BUY, mid * 0.8, 0.001, Tif.GTC, new_cloid())]
            )
            state = await run_startup(client, StartupConfig(cancel_open_orders=False))
            assert len(state.open_orders) == 1
            assert state.canceled == 0


class StuckVenue(Recorder):
    """A venue whose orders never go away."""

    async def open_orders(self) -> list[OpenOrder]:
        self.calls.append("open_orders")
        return [OpenOrder("BTC", Side.BUY, 1.0, 1.0, 1.0, 7, None, 0)]

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        return [None for _ in cancels]


async def test_a_venue_that_keeps_orders_stops_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = StuckVenue(None)

    async def metadata() -> list[AssetMeta]:
        return []

    venue.metadata = metadata  # type: ignore[method-assign]
    with pytest.raises(StartupFailed, match="1 orders still open after 3"):
        await run_startup(venue, StartupConfig(cancel_attempts=3))
    assert venue.calls.count("cancel") == 3
    assert "account_state" not in venue.calls
