"""The market-data feed task: venue frames in, checked books on the ``BookBus`` out.

``MarketFeed`` is a supervised child for a list of coins on one WebSocket connection (a
``WsConnection``, which runs as its own child elsewhere and keeps the socket up, resubscribing
after every reconnect). The feed registers, per coin, an ``l2Book`` and a ``trades``
subscription, and one ``allMids`` subscription, then serves them:

- **l2Book** (every frame is a full snapshot): parsed by the codec, stamped with our clock
  (``now_ms``, injected), checked by the coin's ``BookQuality``; an accepted book is published
  on the ``BookBus`` (latest wins) and ``mm_book_age_seconds{symbol}`` is set to its age at
  that moment; every issue the checks flag (rejected or not) counts in
  ``mm_data_quality_errors_total{symbol, kind}``. A rejected book is not published: the coin's
  last book time does not advance, so a feed of crossed books turns the coin stale.
- **trades**: each ``Trade`` goes to the caller's bounded memory channel with ``send_nowait``;
  when it is full (or closed) the trade is dropped and counted, in ``trades_dropped`` and
  ``mm_feed_dropped_messages_total{feed}``. The strategy never slows the feed.
- **allMids**: the latest ``{coin: mid}`` of the venue is kept (``mids``; the dict is replaced
  whole on each frame, never mutated, so a reader holding it sees one consistent snapshot).

A frame that does not parse is counted (``malformed`` per channel and
``mm_feed_malformed_messages_total{feed}``) and skipped. A ``Gap`` marker (the connection
dropped frames because this feed fell behind) is counted in ``gaps`` per channel; nothing else
is needed, since the next l2Book frame is a full snapshot that replaces the book.
Per-message logging is at DEBUG at most (and only for the unusual: gaps, malformed frames).

Readiness: ``run`` reports started once every subscription is acknowledged on the current
socket and a first book of every coin has been published, or, at the latest, after
``ready_timeout_s``. Past the timeout it reports started anyway (``ready`` stays False), logs a
warning naming the coins without a book, and keeps serving: a missing book never blocks the
rest of the service from starting, and those coins are in ``stale_coins`` (no data is stale
data), so whatever gates quotes on freshness keeps them unquoted until their books arrive.
``wait_ready`` waits for real readiness.

On exit (cancelled, or failing) the feed unsubscribes, shielded and within
``unsubscribe_timeout_s``, so that a restarted feed subscribes afresh and gets the venue's
initial snapshots. A subscription the venue refuses (an unknown coin) ends ``run`` with
``FeedError`` (a config error: the supervisor restarts, then escalates).

The connection protocol the feed relies on (``MarketConnection``) is the subset of
``WsConnection`` it uses: ``connected``, ``wait_connected()``, ``subscribe(subscription,
buffer=...)`` returning a ``Subscription`` (a stream of parsed JSON frames and ``Gap``
markers, with ``active``, ``closed`` and ``error``), and ``unsubscribe(subscription)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge

from mm import clock
from mm.book import Book, BookBus
from mm.feeds.quality import BookQuality, Issue, QualityConfig
from mm.model import Trade
from mm.settings import at_least, non_negative, positive, setting
from mm.venues.hyperliquid.codec import (
    CodecError,
    TradesFrame,
    decode_message,
    parse_all_mids,
    parse_l2_book,
)
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.ws import Gap, Subscription

__all__ = ["FeedError", "MarketConnection", "MarketFeed", "MarketFeedConfig", "wall_clock_ms"]

BOOK_CHANNEL = "l2Book"
TRADES_CHANNEL = "trades"
MIDS_CHANNEL = "allMids"


class FeedError(Exception):
    """The feed cannot serve: a subscription was refused or its stream ended."""


class MarketConnection(Protocol):
    """What the feed uses of its connection (``WsConnection`` satisfies it)."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self) -> None: ...

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None
    ) -> Subscription: ...

    async def unsubscribe(self, sub: Subscription) -> None: ...


@attrs.frozen
class MarketFeedConfig:
    """One market-data feed: data quality, readiness and per-subscription buffers."""

    quality: QualityConfig = attrs.field(factory=QualityConfig)
    # Report started after this long even without a first book of every coin (see the module).
    ready_timeout_s: float = setting(10.0, positive)
    # On exit, how long to wait for the venue to acknowledge our unsubscriptions.
    unsubscribe_timeout_s: float = setting(1.0, non_negative)
    # Frames queued per subscription before the connection drops them and marks a Gap. Books
    # are full snapshots, so a short queue keeps them fresh; trades are not conflated.
    book_buffer: int = setting(8, at_least(1))
    trades_buffer: int = setting(1024, at_least(1))
    mids_buffer: int = setting(8, at_least(1))


def wall_clock_ms() -> int:
    """Milliseconds since the epoch (the default clock)."""
    return clock.wall_ms()


class MarketFeed:
    """L2 books, trades and mids of ``coins`` from one connection; see the module docstring."""

    def __init__(
        self,
        conn: MarketConnection,
        coins: Iterable[str],
        bus: BookBus,
        trades: trio.MemorySendChannel[Trade],
        *,
        config: MarketFeedConfig | None = None,
        metrics: AdapterMetrics | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        name: str = "hyperliquid-market",
    ) -> None:
        self.coins: tuple[str, ...] = tuple(dict.fromkeys(coins))
        if not self.coins:
            raise ValueError("a market feed needs at least one coin")
        self.conn = conn
        self.bus = bus
        self.trades = trades
        self.config = config or MarketFeedConfig()
        self.metrics = metrics or AdapterMetrics(CollectorRegistry())
        self.now_ms = now_ms
        self.name = name
        self.quality: dict[str, BookQuality] = {
            coin: BookQuality(self.config.quality) for coin in self.coins
        }
        # Latest venue mids (all coins the venue lists), and when they arrived (our clock).
        self.mids: dict[str, float] = {}
        self.mids_received_ms: int | None = None
        # Counters, for status (the Prometheus ones are in ``metrics``).
        self.books_published = 0
        self.books_rejected = 0
        self.trades_forwarded = 0
        self.trades_dropped = 0
        self.malformed: Counter[str] = Counter()
        self.gaps: Counter[str] = Counter()
        self.ready = False
        # Per coin: our clock when its last accepted book was published.
        self._last_book_ms: dict[str, int] = {}
        self._subs: list[Subscription] = []
        self._booked: set[str] = set()  # coins with a published book since this run started
        self._all_booked = trio.Event()
        self._ready = trio.Event()
        self._trades_closed = False
        # Prometheus children, resolved once per label set (``labels()`` is not free).
        self._malformed_metric = self.metrics.malformed.labels(feed=name)
        self._dropped_metric = self.metrics.dropped.labels(feed=name)
        self._age_metric: dict[str, PromGauge] = {}
        self._issue_metric: dict[tuple[str, Issue], PromCounter] = {}

    # --- questions ------------------------------------------------------------------------------

    def last_book_ms(self, coin: str) -> int | None:
        """Our clock when the coin's last accepted book was published (None: never)."""
        return self._last_book_ms.get(coin)

    @property
    def last_books_ms(self) -> Mapping[str, int]:
        """Every coin's last book time (coins that never had a book are absent)."""
        return dict(self._last_book_ms)

    def stale_coins(self, now_ms: int, max_age_ms: int) -> list[str]:
        """Coins whose last accepted book is older than ``max_age_ms``, or that never had one."""
        last = self._last_book_ms
        stale = []
        for coin in self.coins:
            at = last.get(coin)
            if at is None or now_ms - at > max_age_ms:
                stale.append(coin)
        return stale

    async def wait_ready(self) -> None:
        """Return once every subscription is live and every coin has had a book."""
        await self._ready.wait()

    def status(self) -> dict[str, Any]:
        """Plain data for ``/status``."""
        now = self.now_ms()
        return {
            "name": self.name,
            "ready": self.ready,
            "coins": list(self.coins),
            "book_age_ms": {
                coin: (now - at if (at := self._last_book_ms.get(coin)) is not None else None)
                for coin in self.coins
            },
            "books_published": self.books_published,
            "books_rejected": self.books_rejected,
            "trades_forwarded": self.trades_forwarded,
            "trades_dropped": self.trades_dropped,
            "malformed": dict(self.malformed),
            "gaps": dict(self.gaps),
            "mids": len(self.mids),
        }

    # --- the child ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, then serve until cancelled; started once ready (or at the ready timeout)."""
        config = self.config
        self.ready = False
        self._booked = set()
        self._all_booked = trio.Event()
        self._ready = trio.Event()
        self._subs = []
        deadline = trio.current_time() + config.ready_timeout_s
        try:
            subs = await self._subscribe_all()
            async with trio.open_nursery() as nursery:
                for coin in self.coins:
                    on_book = partial(self.on_book, coin)
                    nursery.start_soon(self._serve, subs[BOOK_CHANNEL, coin], BOOK_CHANNEL, on_book)
                    trades = subs[TRADES_CHANNEL, coin]
                    nursery.start_soon(self._serve, trades, TRADES_CHANNEL, self.on_trades)
                nursery.start_soon(self._serve, subs[MIDS_CHANNEL, ""], MIDS_CHANNEL, self.on_mids)
                with trio.move_on_at(deadline):
                    await self._until_ready()
                if self.ready:
                    logger.info("{}: ready ({})", self.name, ", ".join(self.coins))
                else:
                    missing = [coin for coin in self.coins if coin not in self._booked]
                    logger.warning(
                        "{}: not ready after {:g}s (no book yet: {}; subscriptions live: {});"
                        " serving anyway",
                        self.name,
                        config.ready_timeout_s,
                        ", ".join(missing) or "none",
                        self._live(),
                    )
                    nursery.start_soon(self._announce_ready)
                task_status.started()
        finally:
            await self._unsubscribe_all()

    async def _subscribe_all(self) -> dict[tuple[str, str], Subscription]:
        """Register every subscription, concurrently (each may await the venue's ack)."""
        config = self.config
        wanted: list[tuple[str, str, int]] = [(MIDS_CHANNEL, "", config.mids_buffer)]
        for coin in self.coins:
            wanted.append((BOOK_CHANNEL, coin, config.book_buffer))
            wanted.append((TRADES_CHANNEL, coin, config.trades_buffer))
        subs: dict[tuple[str, str], Subscription] = {}

        async def subscribe(channel: str, coin: str, buffer: int) -> None:
            subscription = {"type": channel, "coin": coin} if coin else {"type": channel}
            sub = await self.conn.subscribe(subscription, buffer=buffer)
            self._subs.append(sub)
            subs[channel, coin] = sub

        async with trio.open_nursery() as nursery:
            for channel, coin, buffer in wanted:
                nursery.start_soon(subscribe, channel, coin, buffer)
        return subs

    async def _unsubscribe_all(self) -> None:
        subs, self._subs = self._subs, []
        if not subs:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(self.config.unsubscribe_timeout_s):
            async with trio.open_nursery() as nursery:
                for sub in subs:
                    nursery.start_soon(self.conn.unsubscribe, sub)

    def _live(self) -> bool:
        return self.conn.connected and all(sub.active for sub in self._subs)

    async def _until_ready(self) -> None:
        await self._all_booked.wait()
        while not self._live():
            await self.conn.wait_connected()
            if not self._live():  # acknowledgements still on their way
                await trio.sleep(0.01)
        self.ready = True
        self._ready.set()

    async def _announce_ready(self) -> None:
        """Past the ready timeout: say so when the feed does become ready."""
        await self._until_ready()
        logger.info("{}: ready ({})", self.name, ", ".join(self.coins))

    async def _serve(
        self, sub: Subscription, channel: str, handle: Callable[[dict[str, Any]], None]
    ) -> None:
        """Hand each frame of one subscription to ``handle``; a gap is counted on ``channel``."""
        async for delivery in sub:
            if type(delivery) is dict:
                handle(delivery)
            elif isinstance(delivery, Gap):
                self.on_gap(channel)
        self._ended(sub)

    def _ended(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)  # nothing left to unsubscribe
        reason = sub.error or "stream closed"
        raise FeedError(f"{self.name}: subscription {sub.subscription} ended: {reason}")

    # --- frames (synchronous: the hot path) -----------------------------------------------------

    def on_book(self, coin: str, frame: dict[str, Any]) -> None:
        """One l2Book frame (a full snapshot) for ``coin``."""
        try:
            snapshot = parse_l2_book(frame.get("data"))
        except CodecError as error:
            self._malformed(BOOK_CHANNEL, error)
            return
        if snapshot.coin != coin:
            self._malformed(BOOK_CHANNEL, f"a {snapshot.coin} book on the {coin} subscription")
            return
        now = self.now_ms()
        verdict = self.quality[coin].check(Book.from_snapshot(snapshot, now), now)
        if verdict.issues:
            self._count_issues(coin, verdict.issues)
        book = verdict.book
        if not verdict.accept or book is None:
            self.books_rejected += 1
            return
        self.bus.publish(book)
        self.books_published += 1
        self._last_book_ms[coin] = now
        gauge = self._age_metric.get(coin)
        if gauge is None:
            gauge = self._age_metric[coin] = self.metrics.book_age.labels(symbol=coin)
        gauge.set((now - book.time_ms) / 1000)
        booked = self._booked
        if coin not in booked:
            booked.add(coin)
            if len(booked) == len(self.coins):
                self._all_booked.set()

    def on_trades(self, frame: dict[str, Any]) -> None:
        """One trades frame: every trade to the trades channel, or dropped if it is full."""
        try:
            # The codec parses text; the connection hands us the frame already parsed.
            decoded = decode_message(frame)
        except CodecError as error:
            self._malformed(TRADES_CHANNEL, error)
            return
        if not isinstance(decoded, TradesFrame):
            self._malformed(TRADES_CHANNEL, f"not a trades frame: {type(decoded).__name__}")
            return
        send = self.trades.send_nowait
        for trade in decoded.trades:
            try:
                send(trade)
            except trio.WouldBlock:
                self._drop_trade()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                if not self._trades_closed:
                    self._trades_closed = True
                    logger.warning("{}: the trades channel is closed; dropping trades", self.name)
                self._drop_trade()
            else:
                self.trades_forwarded += 1

    def on_mids(self, frame: dict[str, Any]) -> None:
        """One allMids frame: the latest mids replace the previous ones."""
        data = frame.get("data")
        try:
            mids = parse_all_mids(data.get("mids") if type(data) is dict else None)
        except CodecError as error:
            self._malformed(MIDS_CHANNEL, error)
            return
        self.mids = mids.mids
        self.mids_received_ms = self.now_ms()

    def on_gap(self, channel: str) -> None:
        """The connection dropped frames of ``channel`` for us (we fell behind)."""
        self.gaps[channel] += 1
        logger.debug("{}: gap on {} (frames dropped while behind)", self.name, channel)

    def _drop_trade(self) -> None:
        self.trades_dropped += 1
        self._dropped_metric.inc()

    def _malformed(self, channel: str, why: object) -> None:
        self.malformed[channel] += 1
        self._malformed_metric.inc()
        logger.debug("{}: skipped a malformed {} frame: {}", self.name, channel, why)

    def _count_issues(self, coin: str, issues: Iterable[Issue]) -> None:
        children = self._issue_metric
        for issue in issues:
            child = children.get((coin, issue))
            if child is None:
                child = children[(coin, issue)] = self.metrics.quality_errors.labels(
                    symbol=coin, kind=issue.value
                )
            child.inc()
