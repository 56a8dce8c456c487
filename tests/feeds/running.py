"""A generic market feed running on a stream of the test's, for the feed's tests and the
venues' stream tests alike: a settable millisecond clock, the feed's bus, trades and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.book import BookBus
from mm.feeds.market import MarketFeed, MarketFeedConfig
from mm.feeds.metrics import FeedMetrics
from mm.feeds.quality import QualityConfig
from mm.model import Trade
from mm.venues.base import MarketStream

FEED = "test-market"
COINS = ("BTC", "ETH")


class Clock:
    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@attrs.define
class RunningFeed:
    feed: MarketFeed
    bus: BookBus
    trades: trio.MemoryReceiveChannel[Trade]
    registry: CollectorRegistry
    clock: Clock

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running_feed(
    stream: MarketStream,
    *,
    coins: tuple[str, ...] = COINS,
    trades_buffer: int = 16,
    config: MarketFeedConfig | None = None,
    start: bool = True,
) -> AsyncIterator[RunningFeed]:
    """The feed on ``stream`` (books fresh for 5 s unless ``config`` says otherwise), started
    (or, with ``start=False``, only started soon); cancelled on exit."""
    send, receive = trio.open_memory_channel[Trade](trades_buffer)
    registry = CollectorRegistry()
    bus = BookBus()
    clock = Clock()
    feed = MarketFeed(
        stream,
        coins,
        bus,
        send,
        config=config or MarketFeedConfig(quality=QualityConfig(max_age_ms=5_000)),
        metrics=FeedMetrics(registry),
        now_ms=clock,
        name=FEED,
    )
    async with trio.open_nursery() as nursery:
        if start:
            await nursery.start(feed.run)
        else:
            nursery.start_soon(feed.run)
        yield RunningFeed(feed, bus, receive, registry, clock)
        nursery.cancel_scope.cancel()
