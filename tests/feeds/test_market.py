"""The generic market-data feed, fed the venue port's typed events through memory channels.

``FakeMarket`` is a ``MarketStream`` with no venue behind it: each subscription is a
``FakeStream`` (the port's ``EventStream``) over a memory channel, into which a test pushes
``BookSnapshot``, ``BookDelta``, ``Trade`` and ``Mids`` values and the ``Gap`` and
``Malformed`` markers. The feed's own behaviour is tested here: the quality checks and their
metrics, books from snapshots and from sequenced deltas, gaps, staleness, dropped trades,
readiness and clean-up. Hyperliquid's stream (its subscriptions, parsing, the simulator) is
tested in tests/venues/hyperliquid/test_market_stream.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import attrs
import pytest
import trio
import trio.testing

from mm.book import BookBus
from mm.feeds.market import FeedError, MarketFeed, MarketFeedConfig, wall_clock_ms
from mm.feeds.quality import QualityConfig
from mm.model import BookDelta, BookSnapshot, Level, Mids, Side, Trade
from mm.venues.base import BookEvent, EventStream, Gap, Malformed, MarketStream
from tests.feeds.running import COINS, FEED, RunningFeed, running_feed
from tests.ids import hl_tid

T = TypeVar("T")


class FakeStream(Generic[T]):
    """The port's ``EventStream`` over a memory channel."""

    def __init__(self, channel: str, key: str, buffer: int, *, active: bool) -> None:
        self.channel = channel
        self.key = key
        self.description = f"{{'type': {channel!r}, 'key': {key!r}}}"
        self.active = active
        self.error: str | None = None
        self.gaps = 0
        self.send, self.receive = trio.open_memory_channel[T | Gap | Malformed](buffer)

    def push(self, event: T | Gap | Malformed) -> bool:
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            return False
        if isinstance(event, Gap):
            self.gaps += 1
        return True

    def close(self, error: str | None = None) -> None:
        self.error = error
        self.send.close()

    def __aiter__(self) -> AsyncIterator[T | Gap | Malformed]:
        return self.receive


class FakeMarket:
    """A ``MarketStream`` of ``FakeStream`` subscriptions; ``snapshots``: each book stream
    starts with a book of every coin at 1,000 ms."""

    def __init__(self, *, connected: bool = True, snapshots: bool = True) -> None:
        self.connected = connected
        self.snapshots = snapshots
        self.streams: dict[str, FakeStream[Any]] = {}
        self.unsubscribed: list[str] = []
        self.depths: dict[str, int | None] = {}  # the depth each book was asked for
        self.refuse: set[str] = set()
        self._up = trio.Event()
        if connected:
            self._up.set()

    def connect(self) -> None:
        self.connected = True
        for stream in self.streams.values():
            stream.active = True
        self._up.set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    def _register(self, stream: FakeStream[T]) -> FakeStream[T]:
        self.streams[stream.key] = stream
        if stream.key in self.refuse:
            stream.close(f"Invalid subscription {stream.key}")
        return stream

    async def books(
        self, symbol: str, *, buffer: int, depth: int | None = None
    ) -> FakeStream[BookEvent]:
        stream = FakeStream[BookEvent]("book", f"book:{symbol}", buffer, active=self.connected)
        self.depths[symbol] = depth
        if self.snapshots:
            stream.push(snapshot(symbol, 1_000))
        return self._register(stream)

    async def trades(self, symbol: str, *, buffer: int) -> FakeStream[Trade]:
        key = f"trades:{symbol}"
        return self._register(FakeStream[Trade]("trades", key, buffer, active=self.connected))

    async def mids(self, *, buffer: int) -> FakeStream[Mids]:
        return self._register(FakeStream[Mids]("mids", "mids", buffer, active=self.connected))

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        assert isinstance(stream, FakeStream)
        self.unsubscribed.append(stream.key)
        stream.close()

    def push(self, key: str, event: Any) -> bool:
        return self.streams[key].push(event)


def typed(market: FakeMarket) -> MarketStream:
    return market  # mypy checks that the fake is a MarketStream


def snapshot(
    coin: str, time_ms: int, bid: float = 99.0, ask: float = 101.0, seq: int | None = None
) -> BookSnapshot:
    return BookSnapshot(coin, time_ms, (Level(bid, 1.5, 2),), (Level(ask, 2.5, 1),), seq)


def trade(coin: str, tid: int) -> Trade:
    return Trade(coin, Side.BUY, 100.5, 0.1, 1_000, hl_tid(tid))


@attrs.define
class Fake(RunningFeed):
    market: FakeMarket = attrs.field(kw_only=True)


@asynccontextmanager
async def faked(
    market: FakeMarket | None = None,
    *,
    trades_buffer: int = 16,
    config: MarketFeedConfig | None = None,
    start: bool = True,
) -> AsyncIterator[Fake]:
    market = market or FakeMarket()
    stream = typed(market)
    async with running_feed(
        stream, trades_buffer=trades_buffer, config=config, start=start
    ) as running:
        yield Fake(**attrs.asdict(running, recurse=False), market=market)


def is_ready(feed: MarketFeed) -> bool:
    """Whether the feed is ready (a call, so that the type checker does not narrow it)."""
    return feed.ready


async def test_ready_with_a_book_of_every_coin() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            assert f.feed.ready
            assert set(f.market.streams) == {
                "book:BTC",
                "book:ETH",
                "trades:BTC",
                "trades:ETH",
                "mids",
            }
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.bids == (Level(99.0, 1.5, 2),)
            assert book.asks == (Level(101.0, 2.5, 1),)
            assert book.received_ms == 1_000
            await f.feed.wait_ready()


async def test_books_are_asked_for_at_the_configured_depth() -> None:
    config = MarketFeedConfig(quality=QualityConfig(max_age_ms=5_000), book_depth=3)
    with trio.fail_after(2):
        async with faked(config=config) as f:
            assert f.market.depths == {"BTC": 3, "ETH": 3}


async def test_books_carry_their_arrival_in_monotonic_nanoseconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``received_ns`` is Trio's clock in whole nanoseconds when the book event came in, not
    the millisecond wall stamp (which would bias a latency measured from it by up to 1 ms)."""
    with trio.fail_after(2):
        async with faked() as f:
            await trio.sleep(1.2345678)
            arrived = trio.current_time()
            assert f.market.push("book:BTC", snapshot("BTC", 2_000, bid=99.5))
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.best_bid == 99.5
            assert book.received_ns == int(arrived * 1_000_000_000)
            assert book.received_ns % 1_000_000 != 0  # finer than a millisecond
            assert book.received_ms == 1_000  # the wall stamp stays as it was


async def test_markers_and_foreign_books_are_counted_per_channel() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            version = f.bus.version("BTC")
            assert f.market.push("book:BTC", Malformed("no levels"))
            assert f.market.push("book:BTC", snapshot("ETH", 2_000))  # another coin's book
            assert f.market.push("trades:BTC", Malformed("bad side"))
            assert f.market.push("mids", Malformed("a number"))
            assert f.market.push("mids", Gap(0.0))
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.malformed == {"book": 2, "trades": 1, "mids": 1}
            assert f.feed.gaps == {"mids": 1}
            assert f.sample("mm_feed_malformed_messages_total", feed=FEED) == 4
            assert f.bus.version("BTC") == version
            # Good events after bad ones go through.
            f.market.push("book:BTC", snapshot("BTC", 2_000, bid=99.5))
            f.market.push("trades:BTC", trade("BTC", 7))
            f.market.push("trades:BTC", trade("BTC", 8))
            f.market.push("mids", Mids({"BTC": 100.25}))
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.best_bid == 99.5
            assert [f.trades.receive_nowait().tid, f.trades.receive_nowait().tid] == [
                hl_tid(7),
                hl_tid(8),
            ]
            assert f.feed.mids == {"BTC": 100.25}
            assert f.feed.mids_received_ms == 1_000
            assert f.feed.status()["malformed"] == {"book": 2, "trades": 1, "mids": 1}


async def test_books_from_sequenced_deltas() -> None:
    """A venue of deltas: the snapshot's sequence is continued, a stale delta ignored, a delta
    that does not follow is a gap and nothing is published until the next snapshot."""
    market = FakeMarket(snapshots=False)
    with trio.fail_after(2):
        async with faked(market, start=False) as f:
            await trio.testing.wait_all_tasks_blocked()  # subscribed
            push = f.market.push
            assert push("book:ETH", snapshot("ETH", 1_000))
            assert push("book:BTC", BookDelta("BTC", 1_000, 5, 5, (Level(98.0, 1.0),)))
            await trio.testing.wait_all_tasks_blocked()
            assert f.bus.latest("BTC") is None  # no snapshot to apply it to
            assert push("book:BTC", snapshot("BTC", 1_000, seq=10))
            await f.feed.wait_ready()
            # Overlapping the snapshot (8..11), then continuing it (12..12).
            assert push("book:BTC", BookDelta("BTC", 1_100, 8, 11, (Level(99.0, 0.0),)))
            assert push("book:BTC", BookDelta("BTC", 1_200, 12, 12, (), (Level(100.5, 3.0, 1),)))
            assert push("book:BTC", BookDelta("BTC", 1_150, 11, 11, (Level(1.0, 1.0),)))  # stale
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert (book.bids, book.time_ms) == ((), 1_200)
            assert book.asks == (Level(100.5, 3.0, 1), Level(101.0, 2.5, 1))
            version = f.bus.version("BTC")
            assert push("book:BTC", BookDelta("BTC", 1_300, 14, 14, (Level(99.9, 1.0),)))  # gap
            assert push("book:BTC", BookDelta("BTC", 1_400, 15, 15, (Level(99.8, 1.0),)))
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.gaps == {"book": 1}
            assert f.bus.version("BTC") == version
            assert push("book:BTC", snapshot("BTC", 1_500, bid=99.7, seq=20))
            assert push("book:BTC", BookDelta("BTC", 1_600, 21, 21, (Level(99.6, 1.0),)))
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert [level[0] for level in book.bids] == [99.7, 99.6]
            # A Gap marker: the deltas that follow have no base until the next snapshot.
            assert push("book:BTC", Gap(0.0))
            assert push("book:BTC", BookDelta("BTC", 1_700, 22, 22, (Level(99.5, 1.0),)))
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.gaps == {"book": 2}
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.time_ms == 1_600


async def test_quality_issues_are_counted_by_kind() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            clock = f.clock

            def errors(kind: str) -> float:
                return f.sample("mm_data_quality_errors_total", symbol="BTC", kind=kind)

            version = f.bus.version("BTC")
            clock.now = 2_500
            f.market.push("book:BTC", snapshot("BTC", 2_000, bid=102.0))  # crossed
            f.market.push("book:BTC", snapshot("BTC", 500))  # older than the last accepted
            await trio.testing.wait_all_tasks_blocked()
            assert (errors("crossed"), errors("time_backwards")) == (1, 1)
            assert f.bus.version("BTC") == version
            assert f.feed.books_rejected == 2
            f.market.push("book:BTC", snapshot("BTC", 2_100, bid=101.0))  # locked: published
            await trio.testing.wait_all_tasks_blocked()
            assert errors("locked") == 1
            assert f.bus.version("BTC") > version
            assert f.sample("mm_book_age_seconds", symbol="BTC") == pytest.approx(0.4)
            clock.now = 20_000
            f.market.push("book:BTC", snapshot("BTC", 2_200))  # 17.8 s old: stale, published
            await trio.testing.wait_all_tasks_blocked()
            assert errors("stale") == 1
            assert f.sample("mm_book_age_seconds", symbol="BTC") == pytest.approx(17.8)
            assert f.feed.last_book_ms("BTC") == 20_000
            assert f.sample("mm_data_quality_errors_total", symbol="ETH", kind="crossed") == 0


async def test_stale_coins_by_last_book_time() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            assert f.feed.last_books_ms == {"BTC": 1_000, "ETH": 1_000}
            assert f.feed.stale_coins(1_500, 500) == []
            assert f.feed.stale_coins(1_501, 500) == ["BTC", "ETH"]
            f.clock.now = 1_400
            f.market.push("book:ETH", snapshot("ETH", 1_400))
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.stale_coins(1_600, 500) == ["BTC"]
            assert f.feed.status()["book_age_ms"] == {"BTC": 400, "ETH": 0}


async def test_a_full_trades_channel_drops_and_counts() -> None:
    with trio.fail_after(2):
        async with faked(trades_buffer=2) as f:
            for tid in (1, 2, 3, 4):
                f.market.push("trades:BTC", trade("BTC", tid))
            f.market.push("book:BTC", snapshot("BTC", 2_000, bid=99.9))
            await trio.testing.wait_all_tasks_blocked()
            assert (f.feed.trades_forwarded, f.feed.trades_dropped) == (2, 2)
            assert f.sample("mm_feed_dropped_messages_total", feed=FEED) == 2
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.best_bid == 99.9  # books are not held up
            f.trades.close()  # the consumer goes away: trades are dropped, nothing breaks
            f.market.push("trades:BTC", trade("BTC", 5))
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.trades_dropped == 3


async def test_not_ready_by_the_timeout_starts_anyway() -> None:
    market = FakeMarket(connected=False, snapshots=False)
    config = MarketFeedConfig(ready_timeout_s=0.05)
    with trio.fail_after(2):
        async with faked(market, config=config) as f:
            assert not is_ready(f.feed)
            assert f.feed.stale_coins(1_000, 60_000) == list(COINS)
            market.connect()
            market.push("book:BTC", snapshot("BTC", 1_000))
            await trio.testing.wait_all_tasks_blocked()
            assert not is_ready(f.feed)  # ETH has no book yet
            market.push("book:ETH", snapshot("ETH", 1_000))
            await f.feed.wait_ready()
            assert is_ready(f.feed)
            assert f.feed.stale_coins(1_000, 60_000) == []


async def test_ready_waits_for_live_subscriptions() -> None:
    market = FakeMarket(connected=False)  # books are there, subscriptions not acknowledged
    with trio.fail_after(2):
        async with faked(market, start=False) as f:
            await trio.testing.wait_all_tasks_blocked()
            assert f.bus.latest("BTC") is not None
            assert not f.feed.ready
            market.connect()
            await f.feed.wait_ready()


async def test_a_refused_subscription_ends_the_feed() -> None:
    market = FakeMarket()
    market.refuse.add("book:ETH")
    with pytest.RaisesGroup(
        pytest.RaisesExc(FeedError, match="subscription .*book:ETH.* Invalid subscription"),
        flatten_subgroups=True,
    ):
        with trio.fail_after(2):
            async with faked(market, start=False):
                await trio.sleep_forever()
    assert sorted(market.unsubscribed) == ["book:BTC", "mids", "trades:BTC", "trades:ETH"]


async def test_unsubscribes_on_the_way_out() -> None:
    market = FakeMarket()
    with trio.fail_after(2):
        async with faked(market):
            pass
    assert sorted(market.unsubscribed) == sorted(market.streams)


def test_the_default_clock_is_epoch_milliseconds() -> None:
    assert abs(wall_clock_ms() - time.time() * 1000) < 1_000


def test_a_feed_needs_coins() -> None:
    send, _ = trio.open_memory_channel[Trade](1)
    with pytest.raises(ValueError, match="at least one coin"):
        MarketFeed(FakeMarket(), [], BookBus(), send)
