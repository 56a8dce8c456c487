"""Hyperliquid's market stream under the generic market feed: against the simulator on
loopback, with a fake connection, and on the venue's recorded frames.

(a) The simulator, real loopback, real clock: a ``SimVenue``, a ``WsConnection`` and the
``MarketFeed`` on a ``HyperliquidMarketStream`` run side by side in one nursery; the feed's clock
is the venue's (``venue.now_ms``), so book ages are latencies. Faults are switched on over HTTP.

(b) A fake connection (``FakeConnection``, the ``MarketConnection`` protocol: ``connected``,
``wait_connected``, ``subscribe`` returning real ``Subscription`` streams, ``unsubscribe``):
raw frames are offered straight into the streams, to test the venue's subscriptions, parsing,
malformed frames, gaps of a full subscription and a refused one without a socket. The generic
feed's own behaviour on typed events is in tests/feeds/test_market.py.

(c) The venue's recorded frames (tests/fixtures/hyperliquid) come out as the port's types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm.book import BookBus
from mm.connection import ConnectionConfig
from mm.feeds.market import FeedError, MarketFeed, MarketFeedConfig
from mm.feeds.metrics import FeedMetrics
from mm.model import BookSnapshot, Level, Mids, Side, Trade
from mm.venues.base import BookEvent, Gap, Malformed
from mm.venues.hyperliquid.codec import parse_l2_book
from mm.venues.hyperliquid.market_stream import HyperliquidMarketStream
from mm.venues.hyperliquid.ws import (
    ConflatingSubscription,
    Subscription,
    WsConnection,
    subscription_key,
)
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.engine import OrderRequest, Resting
from mm.venues.sim.venue import SimVenue
from tests.feeds.running import COINS, FEED, RunningFeed, running_feed
from tests.fixture_paths import HYPERLIQUID as FIXTURES
from tests.ids import hl_tid

Json = dict[str, Any]
EPOCH_MS = 1_800_000_000_000

USER = "0x" + "ab" * 20

# Quiet: no takers, no diffusion, no jumps; the ladder is requoted at the same prices every step,
# so books are republished (every book interval) with the same levels.
QUIET = MarketConfig(step_ms=20, taker_a=0.0, volatility_bps=0.0, jump_rate_per_hour=0.0)
# Busy: takers every few steps, so trades print all the time.
BUSY = MarketConfig(step_ms=20, taker_a=20.0, taker_k=0.1)


def sim_config(market: MarketConfig = QUIET) -> SimConfig:
    return SimConfig(book_interval_ms=20, market=market)


@attrs.define
class Harness:
    venue: SimVenue
    conn: WsConnection
    feed: MarketFeed
    bus: BookBus
    trades: trio.MemoryReceiveChannel[Trade]
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def crossed(self, coin: str = "BTC") -> float:
        return self.sample("mm_data_quality_errors_total", symbol=coin, kind="crossed")

    async def control(self, path: str, body: Json | None = None) -> Json:
        assert self.venue.url is not None
        async with httpx.AsyncClient(base_url=self.venue.url, timeout=5.0) as client:
            response = await client.post(path, json=body or {})
        assert response.status_code == 200, response.text
        answer: Json = response.json()
        return answer


@asynccontextmanager
async def running(
    config: SimConfig,
    *,
    trades_buffer: int = 1024,
    feed_config: MarketFeedConfig | None = None,
    feed_first: bool = False,
) -> AsyncIterator[Harness]:
    """Venue, connection and feed in one nursery; the feed is ready when this yields.

    ``feed_first``: the feed registers its subscriptions before the connection is up (they
    are made on connect), rather than on a connection already up (each acknowledged at once).
    """
    venue = SimVenue(config, epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        conn = WsConnection(venue.url, ConnectionConfig(backoff_initial_s=0.05, backoff_cap_s=0.2))
        if not feed_first:
            await nursery.start(conn.run)
        send, receive = trio.open_memory_channel[Trade](trades_buffer)
        registry = CollectorRegistry()
        bus = BookBus()
        feed = MarketFeed(
            HyperliquidMarketStream(conn),
            COINS,
            bus,
            send,
            config=feed_config,
            metrics=FeedMetrics(registry),
            now_ms=venue.now_ms,
            name=FEED,
        )
        if feed_first:
            nursery.start_soon(connect_later, conn)
        await nursery.start(feed.run)
        yield Harness(venue, conn, feed, bus, receive, registry)
        nursery.cancel_scope.cancel()


async def connect_later(conn: WsConnection) -> None:
    await trio.sleep(0.05)
    await conn.run()


async def until(predicate: Callable[[], bool], step: float = 0.01) -> None:
    while not predicate():  # noqa: ASYNC110 -- polling state the code under test owns
        await trio.sleep(step)


# --- (a) the simulator ----------------------------------------------------------------------------


async def test_ready_with_a_book_per_coin_and_mids() -> None:
    with trio.fail_after(5):
        async with running(sim_config()) as h:
            assert h.feed.ready
            for coin in COINS:
                book = h.bus.latest(coin)
                assert book is not None
                assert book.best_bid is not None
                assert book.best_ask is not None
                assert book.best_bid < book.best_ask
                assert h.feed.last_book_ms(coin) is not None
                age = h.sample("mm_book_age_seconds", symbol=coin)
                assert 0.0 <= age < 1.0
            assert h.feed.stale_coins(h.venue.now_ms(), 1_000) == []
            await until(lambda: set(COINS) <= set(h.feed.mids))
            assert h.feed.mids["BTC"] == pytest.approx(h.venue.engine.mark(0))
            assert sum(h.feed.malformed.values()) == 0
            assert h.feed.status()["ready"] is True


async def test_ready_when_started_before_the_connection() -> None:
    with trio.fail_after(5):
        async with running(sim_config(), feed_first=True) as h:
            assert h.feed.ready
            assert h.conn.connected
            assert all(sub.active for sub in h.conn.subscriptions)
            assert all(h.bus.latest(coin) is not None for coin in COINS)


async def test_books_track_the_simulator() -> None:
    with trio.fail_after(5):
        async with running(sim_config()) as h:
            venue, engine = h.venue, h.venue.engine
            btc = engine.by_name["BTC"]
            engine.fund(USER, 100_000.0)
            mark = engine.mark(btc.index)
            assert mark is not None
            ticks = btc.round_px(mark * (1 - 1e-4), up=False)  # inside the ladder's spread
            px = btc.px_float(ticks)
            placed = engine.place(
                USER, OrderRequest(btc.index, True, btc.px_str(ticks), "0.01"), venue.now_ms()
            )
            assert isinstance(placed, Resting)
            venue.publish_events()

            def best_bid() -> float | None:
                book = h.bus.latest("BTC")
                return book.best_bid if book is not None else None

            await until(lambda: best_bid() == px)
            book = h.bus.latest("BTC")
            expected = parse_l2_book(venue.l2_snapshot(btc.index), h.feed.config.book_depth)
            assert book is not None
            assert book.bids[0] == Level(px, 0.01, 1)
            assert (book.bids, book.asks) == (expected.bids, expected.asks)

            assert engine.cancel(USER, btc.index, placed.oid, venue.now_ms()) is None
            venue.publish_events()
            await until(lambda: best_bid() != px)
            book = h.bus.latest("BTC")
            expected = parse_l2_book(venue.l2_snapshot(btc.index), h.feed.config.book_depth)
            assert book is not None
            assert (book.bids, book.asks) == (expected.bids, expected.asks)
            assert book.best_bid is not None
            assert book.best_bid < px


async def test_trades_reach_the_trades_channel() -> None:
    with trio.fail_after(5):
        async with running(sim_config(BUSY)) as h:
            seen: set[str] = set()
            while seen != set(COINS):
                trade = await h.trades.receive()
                assert trade.px > 0
                assert trade.sz > 0
                assert trade.side in (Side.BUY, Side.SELL)
                seen.add(trade.coin)
            assert h.feed.trades_forwarded >= 2
            assert h.feed.trades_dropped == 0


async def test_crossed_books_are_rejected_and_counted() -> None:
    with trio.fail_after(5):
        async with running(sim_config()) as h:
            assert h.crossed() == 0
            await h.control("/sim/faults", {"crossed_book": 1.0})
            await until(lambda: h.crossed() >= 1)
            version = h.bus.version("BTC")  # every frame from here on is crossed
            await until(lambda: h.crossed() >= 4)
            assert h.bus.version("BTC") == version
            book = h.bus.latest("BTC")
            assert book is not None
            assert not book.is_crossed
            assert h.feed.books_rejected >= 4
            await until(lambda: "BTC" in h.feed.stale_coins(h.venue.now_ms(), 200))


async def test_stalled_books_make_the_coin_stale() -> None:
    with trio.fail_after(5):
        async with running(sim_config()) as h:
            now = h.venue.now_ms
            assert h.feed.stale_coins(now(), 500) == []
            await h.control("/sim/faults", {"stall_books": True})
            await until(lambda: h.feed.stale_coins(now(), 300) == list(COINS))
            version = h.bus.version("BTC")
            await trio.sleep(0.1)
            assert h.bus.version("BTC") == version
            await h.control("/sim/faults", {"stall_books": False})
            await until(lambda: h.feed.stale_coins(now(), 300) == [])
            assert h.bus.version("BTC") > version


async def test_books_flow_again_after_a_disconnect() -> None:
    with trio.fail_after(5):
        async with running(sim_config()) as h:
            assert await h.control("/sim/disconnect") == {"closed": 1}
            await until(lambda: h.conn.reconnects == 1 and h.conn.connected)
            for coin in COINS:
                version = h.bus.version(coin)
                newer, book = await h.bus.wait_newer(coin, version)
                assert newer > version
                assert book.coin == coin
            assert h.feed.ready
            assert all(sub.active for sub in h.conn.subscriptions)
            assert sum(h.feed.malformed.values()) == 0


async def test_a_slow_trades_consumer_does_not_stop_books() -> None:
    with trio.fail_after(5):
        async with running(sim_config(BUSY), trades_buffer=1) as h:
            await until(lambda: h.feed.trades_dropped >= 5)
            for _ in range(3):
                version = h.bus.version("BTC")
                await h.bus.wait_newer("BTC", version)
            assert h.sample("mm_feed_dropped_messages_total", feed=FEED) == h.feed.trades_dropped
            assert h.feed.trades_forwarded == 1  # the one slot, never read


# --- (b) a fake connection ------------------------------------------------------------------------


class FakeConnection:
    """The ``MarketConnection`` protocol with real ``Subscription`` streams and no socket."""

    def __init__(self, *, connected: bool = True, snapshots: bool = True) -> None:
        self.connected = connected
        self.snapshots = snapshots  # offer a first book on each l2Book subscription
        self.subs: dict[str, Subscription] = {}
        self.unsubscribed: list[str] = []
        self.refuse: set[str] = set()
        self._up = trio.Event()
        if connected:
            self._up.set()

    def connect(self) -> None:
        self.connected = True
        for sub in self.subs.values():
            sub.active = True
        self._up.set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None, conflate: bool = False
    ) -> Subscription:
        key = subscription_key(subscription)
        sub = (
            ConflatingSubscription(subscription, key)
            if conflate
            else Subscription(subscription, key, buffer or 16)
        )
        sub.active = self.connected
        self.subs[key] = sub
        if key in self.refuse:
            sub.close(f"Invalid subscription {dict(subscription)}")
        elif self.snapshots and subscription["type"] == "l2Book":
            sub.offer(book_frame(subscription["coin"], 1_000))
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        self.unsubscribed.append(sub.key)
        sub.close()

    def push(self, key: str, frame: Json, received_ns: int = 0) -> bool:
        return self.subs[key].offer(frame, received_ns)


def book_frame(coin: str, time: int, bid: str = "99.0", ask: str = "101.0") -> Json:
    levels = [[{"px": bid, "sz": "1.5", "n": 2}], [{"px": ask, "sz": "2.5", "n": 1}]]
    return {"channel": "l2Book", "data": {"coin": coin, "time": time, "levels": levels}}


def trades_frame(coin: str, *tids: int) -> Json:
    data = [
        {"coin": coin, "side": "B", "px": "100.5", "sz": "0.1", "time": 1_000, "tid": tid}
        for tid in tids
    ]
    return {"channel": "trades", "data": data}


@attrs.define
class Fake(RunningFeed):
    conn: FakeConnection = attrs.field(kw_only=True)


@asynccontextmanager
async def faked(
    conn: FakeConnection | None = None,
    *,
    coins: tuple[str, ...] = COINS,
    trades_buffer: int = 16,
    config: MarketFeedConfig | None = None,
    start: bool = True,
) -> AsyncIterator[Fake]:
    conn = conn or FakeConnection()
    stream = HyperliquidMarketStream(conn)
    async with running_feed(
        stream, coins=coins, trades_buffer=trades_buffer, config=config, start=start
    ) as running:
        yield Fake(**attrs.asdict(running, recurse=False), conn=conn)


async def test_fake_ready_subscribes_everything() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            assert f.feed.ready
            assert set(f.conn.subs) == {
                "l2Book:btc",
                "l2Book:eth",
                "trades:btc",
                "trades:eth",
                "allMids",
            }
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.bids == (Level(99.0, 1.5, 2),)
            assert book.asks == (Level(101.0, 2.5, 1),)
            assert book.received_ms == 1_000
            await f.feed.wait_ready()


async def test_malformed_frames_are_counted_and_skipped() -> None:
    bad_books: list[Json] = [
        {"channel": "l2Book"},  # no data
        {"channel": "l2Book", "data": {"coin": "BTC", "time": 2_000}},  # no levels
        book_frame("BTC", 2_000, bid="abc"),  # not a number
        book_frame("BTC", 2_000, bid="nan"),  # not finite
        {"channel": "l2Book", "data": {"coin": "BTC", "time": "2000", "levels": [[], []]}},
        book_frame("ETH", 2_000),  # another coin's book on BTC's subscription
    ]
    bad_trades: list[Json] = [
        {"channel": "trades", "data": [{"coin": "BTC", "side": "X", "px": "1", "sz": "1"}]},
        {"channel": "trades", "data": {"coin": "BTC"}},
        {"channel": "candle", "data": [{"coin": "BTC"}]},  # parses, but not as trades
    ]
    bad_mids: list[Json] = [
        {"channel": "allMids", "data": {"mids": {"BTC": 100.0}}},  # a number, not a string
        {"channel": "allMids", "data": ["BTC"]},
    ]
    with trio.fail_after(2):
        async with faked() as f:
            version = f.bus.version("BTC")
            for frame in bad_books:  # one at a time: books conflate to the latest
                assert f.conn.push("l2Book:btc", frame)
                await trio.testing.wait_all_tasks_blocked()
            for frame in bad_trades:
                assert f.conn.push("trades:btc", frame)
            for frame in bad_mids:
                assert f.conn.push("allMids", frame)
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.malformed == {
                "l2Book": len(bad_books),
                "trades": len(bad_trades),
                "allMids": len(bad_mids),
            }
            total = len(bad_books) + len(bad_trades) + len(bad_mids)
            assert f.sample("mm_feed_malformed_messages_total", feed=FEED) == total
            assert f.bus.version("BTC") == version
            # Good frames after bad ones go through.
            f.conn.push("l2Book:btc", book_frame("BTC", 2_000, bid="99.5"))
            f.conn.push("trades:btc", trades_frame("BTC", 7, 8))
            f.conn.push("allMids", {"channel": "allMids", "data": {"mids": {"BTC": "100.25"}}})
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert book.best_bid == 99.5
            assert [
                trade.tid for trade in (f.trades.receive_nowait(), f.trades.receive_nowait())
            ] == [hl_tid(7), hl_tid(8)]
            assert f.feed.mids == {"BTC": 100.25}
            assert f.feed.mids_received_ms == 1_000


async def test_a_book_carries_the_connections_stamp_of_its_frames_arrival() -> None:
    with trio.fail_after(2):
        async with faked() as f:
            f.conn.push("l2Book:btc", book_frame("BTC", 2_000, bid="99.5"), 7_000_000_123)
            await trio.testing.wait_all_tasks_blocked()
            book = f.bus.latest("BTC")
            assert book is not None
            assert (book.best_bid, book.received_ns) == (99.5, 7_000_000_123)


async def test_books_reach_the_feed_as_they_arrive_while_trades_and_mids_mark_a_gap() -> None:
    """Frames offered without yielding: the feed takes each book from its subscription as it
    is offered (in the offering task: no slot, no task switch), so it is never behind and the
    bus holds the newest (for its readers, latest wins), while the trades and mids streams
    hold what fits, drop the rest and mark a gap."""
    config = MarketFeedConfig(book_buffer=2, trades_buffer=2, mids_buffer=2)
    with trio.fail_after(2):
        async with faked(config=config) as f:
            published = f.feed.books_published
            results = []
            for i in range(5):
                results.append(
                    f.conn.push("l2Book:btc", book_frame("BTC", 2_000 + i, bid=f"{99 + i / 10}"))
                )
                book = f.bus.latest("BTC")  # at once: before any other task ran
                assert book is not None
                assert (book.time_ms, book.best_bid) == (2_000 + i, 99 + i / 10)
            assert results == [True] * 5
            assert f.feed.books_published == published + 5
            for i in range(5):
                f.conn.push("trades:eth", trades_frame("ETH", i))
                f.conn.push("allMids", {"channel": "allMids", "data": {"mids": {"ETH": f"{i}"}}})
            await trio.testing.wait_all_tasks_blocked()
            assert f.feed.gaps == {"trades": 1, "allMids": 1}
            sub = f.conn.subs["l2Book:btc"]
            assert isinstance(sub, ConflatingSubscription)
            assert (sub.conflated, sub.gaps, sub.dropped, sub.delivered) == (0, 0, 0, 6)
            # Two mids fit (the one handed to the waiting feed counts until it takes it).
            assert f.feed.mids == {"ETH": 1.0}
            f.conn.push("l2Book:btc", book_frame("BTC", 3_000, bid="100.0"))
            book = f.bus.latest("BTC")
            assert book is not None
            assert (book.time_ms, book.best_bid) == (3_000, 100.0)
            assert f.feed.gaps == {"trades": 1, "allMids": 1}


class Broken(Exception):
    pass


class BrokenFeed(MarketFeed):
    """A feed whose book handler fails on the book of time 2,000 (a bug of its own)."""

    def on_book(self, coin: str, channel: str, event: BookEvent) -> None:
        if event.time_ms == 2_000:
            raise Broken(f"a bug on the {coin} book")
        super().on_book(coin, channel, event)


async def test_a_failing_book_handler_ends_the_feed_not_the_connection() -> None:
    """What the feed's book handler raises, called in the connection's task, is raised by the
    feed's own task (where its supervisor expects it); the connection's offer returns, refused
    (a real connection then forgets the subscription), and the other coins' books go on."""
    conn = FakeConnection()
    send, _receive = trio.open_memory_channel[Trade](16)
    bus = BookBus()
    feed = BrokenFeed(HyperliquidMarketStream(conn), COINS, bus, send, now_ms=lambda: 1_000)
    with pytest.RaisesGroup(pytest.RaisesExc(Broken, match="ETH"), flatten_subgroups=True):
        with trio.fail_after(2):
            async with trio.open_nursery() as nursery:
                await nursery.start(feed.run)
                assert conn.push("l2Book:eth", book_frame("ETH", 2_000)) is False
                eth = conn.subs["l2Book:eth"]
                assert isinstance(eth, ConflatingSubscription)
                assert eth.closed
                assert isinstance(eth.failure, Broken)
                assert conn.push("l2Book:btc", book_frame("BTC", 2_001, bid="99.5"))
                book = bus.latest("BTC")
                assert book is not None
                assert book.best_bid == 99.5
                await trio.sleep_forever()  # the feed's task raises it
    assert "l2Book:eth" in conn.unsubscribed  # the feed cleaned up on its way out


async def test_a_refused_subscription_ends_the_feed() -> None:
    conn = FakeConnection()
    conn.refuse.add("l2Book:eth")
    with pytest.RaisesGroup(
        pytest.RaisesExc(FeedError, match="Invalid subscription"), flatten_subgroups=True
    ):
        with trio.fail_after(2):
            async with faked(conn, start=False):
                await trio.sleep_forever()
    assert sorted(conn.unsubscribed) == ["allMids", "l2Book:btc", "trades:btc", "trades:eth"]


# --- (c) the venue's recorded frames --------------------------------------------------------------

RECORDED: list[Json] = [
    json.loads(line)
    for line in (FIXTURES / "ws_frames.jsonl").read_text().splitlines()
    if line.strip()
]
INFO: dict[str, Json] = json.loads((FIXTURES / "info_responses.json").read_text())["info"]


def recorded(channel: str) -> Json:
    [frame] = [frame for frame in RECORDED if frame["channel"] == channel]
    return frame


async def test_recorded_frames_come_out_as_the_ports_types() -> None:
    conn = FakeConnection(snapshots=False)
    stream = HyperliquidMarketStream(conn)
    # The venue's l2Book frame carries exactly its /info l2Book answer (the recording).
    book_data = INFO["l2Book"]["response"]
    coin = book_data["coin"]
    with trio.fail_after(2):
        books = await stream.books(coin, buffer=4)
        trades = await stream.trades("BTC", buffer=4)
        mids = await stream.mids(buffer=4)
        assert [books.channel, trades.channel, mids.channel] == ["l2Book", "trades", "allMids"]
        assert conn.push(books.subscription.key, {"channel": "l2Book", "data": book_data})
        assert conn.push(trades.subscription.key, recorded("trades"))
        assert conn.push(mids.subscription.key, recorded("allMids"))
        book = await anext(aiter(books))
        trade = await anext(aiter(trades))
        mid = await anext(aiter(mids))
    assert isinstance(book, BookSnapshot)
    first_bid, first_ask = book_data["levels"][0][0], book_data["levels"][1][0]
    assert (book.coin, book.time_ms, book.seq) == (coin, book_data["time"], None)
    assert book.bids[0] == Level(float(first_bid["px"]), float(first_bid["sz"]), first_bid["n"])
    assert book.asks[0] == Level(float(first_ask["px"]), float(first_ask["sz"]), first_ask["n"])
    assert (len(book.bids), len(book.asks)) == tuple(map(len, book_data["levels"]))
    assert trade == Trade(
        "BTC", Side.SELL, 80639.0, 0.00022, 1788490042052, hl_tid(1095884267920331)
    )
    assert isinstance(mid, Mids)
    assert mid.mids == {
        "@142": 80907.5,
        "BTC": 80868.5,
        "ETH": 2296.45,
        "SOL": 94.8775,
        "PURR/USDC": 0.067131,
    }


async def test_a_frame_of_trades_is_each_trade_in_order_and_markers_pass() -> None:
    conn = FakeConnection(snapshots=False)
    stream = HyperliquidMarketStream(conn)
    with trio.fail_after(2):
        trades = await stream.trades("BTC", buffer=2)
        key = trades.subscription.key
        assert conn.push(key, trades_frame("BTC", 1, 2, 3))
        assert conn.push(key, trades_frame("BTC"))  # no trades: nothing comes of it
        assert not conn.push(key, trades_frame("BTC", 4))  # the stream is full: a gap
        events = [await anext(aiter(trades)) for _ in range(4)]
        assert [event.tid for event in events[:3] if isinstance(event, Trade)] == [
            hl_tid(1),
            hl_tid(2),
            hl_tid(3),
        ]
        assert isinstance(events[3], Gap)
        assert conn.push(key, {"channel": "trades", "data": {"coin": "BTC"}})
        malformed = await anext(aiter(trades))
        assert isinstance(malformed, Malformed)
        assert conn.push(key, {"channel": "candle", "data": [{"coin": "BTC"}]})
        assert await anext(aiter(trades)) == Malformed("not a trades frame: UnknownFrame")
        await stream.unsubscribe(trades)
        assert conn.unsubscribed == [key]
        assert [event async for event in trades] == []  # ended


async def test_only_its_own_streams_are_unsubscribed() -> None:
    stream = HyperliquidMarketStream(FakeConnection())
    send, receive = trio.open_memory_channel[Trade](1)
    with pytest.raises(TypeError, match="not a stream of this venue"):
        await stream.unsubscribe(receive)  # type: ignore[arg-type]
    send.close()
