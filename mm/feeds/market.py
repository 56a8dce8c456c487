"""The market-data feed task: a venue's typed market data in, checked books on the ``BookBus`` out.

``MarketFeed`` is a supervised child for a list of coins on one venue ``MarketStream`` (the
venue port's: a connection that runs as its own child elsewhere and keeps the socket up,
subscribing again after every reconnect, and parses every frame at the venue's edge). The feed
registers, per coin, a book and a trades subscription, and one mids subscription, then serves
them:

- **books**: the events of a stream that can hand them over directly (the port's
  ``DirectStream``: Hyperliquid's book streams) are handled as they arrive, in the venue
  connection's task, without a task switch per book; an error of the handler there is raised
  by this feed's task all the same. A ``BookSnapshot`` replaces the coin's book, a
  ``BookDelta`` changes it when it continues the book's sequence (``BookBuilder``; one that
  does not is a gap: no book until the venue's next snapshot). The book is stamped with our
  clock (``now_ms``, injected) and with its arrival on the monotonic nanosecond clock
  (``received_ns``: the venue adapter's stamp of the frame's arrival, or, when the event
  carries none, ``now_ns``, injected; decision latency is measured from it), checked by the
  coin's ``BookQuality``; an accepted book is published on the ``BookBus`` (latest wins)
  and ``mm_book_age_seconds{symbol}`` is set to its age at that moment; every issue the checks
  flag (rejected or not) counts in ``mm_data_quality_errors_total{symbol, kind}``. A rejected
  book is not published: the coin's last book time does not advance, so a feed of crossed books
  turns the coin stale.
- **trades**: each ``Trade`` goes to the caller's bounded memory channel with ``send_nowait``;
  when it is full (or closed) the trade is dropped and counted, in ``trades_dropped`` and
  ``mm_feed_dropped_messages_total{feed}``. The strategy never slows the feed.
- **mids**: the latest ``{coin: mid}`` of the venue is kept (``mids``; the dict is replaced
  whole on each update, never mutated, so a reader holding it sees one consistent snapshot).

A ``Malformed`` marker (a venue message that did not parse) is counted (``malformed`` per
channel and ``mm_feed_malformed_messages_total{feed}``) and skipped, as is a book of another
coin on a coin's subscription. A ``Gap`` marker (messages were dropped because this feed fell
behind) is counted in ``gaps`` per channel; a book built from deltas waits for the venue's next
snapshot, and a venue of snapshots (Hyperliquid's l2Book) needs nothing more. Channels are
named as the venue names them. Per-message logging is at DEBUG at most (and only for the
unusual: gaps, malformed messages).

Readiness: ``run`` reports started once every subscription is acknowledged on the current
socket and a first book of every coin has been published, or, at the latest, after
``ready_timeout_s``. Past the timeout it reports started anyway (``ready`` stays False), logs a
warning naming the coins without a book, and keeps serving: a missing book never blocks the
rest of the service from starting, and those coins are in ``stale_coins`` (no data is stale
data), so whatever gates quotes on freshness keeps them unquoted until their books arrive.
``wait_ready`` waits for real readiness.

On exit (cancelled, or failing) the feed unsubscribes, shielded and within
``unsubscribe_timeout_s``, so that a restarted feed subscribes afresh and gets the venue's
initial snapshots. A subscription whose stream ends (the venue refused it: an unknown coin)
ends ``run`` with ``FeedError`` (a config error: the supervisor restarts, then escalates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Final

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from mm import clock
from mm.book import Applied, Book, BookBuilder, BookBus
from mm.feeds.metrics import FeedMetrics
from mm.feeds.quality import BookQuality, Issue, QualityConfig
from mm.model import BookDelta, Mids, Trade
from mm.settings import at_least, non_negative, positive, setting
from mm.venues.base import BookEvent, DirectStream, EventStream, Gap, Malformed, MarketStream

__all__ = ["FeedError", "MarketFeed", "MarketFeedConfig", "wall_clock_ms"]


class FeedError(Exception):
    """The feed cannot serve: a subscription was refused or its stream ended."""


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
    # Levels per side the venue's adapter parses into each book (the rest of a frame's levels
    # are not read): the quality checks and the quoter read the top of the book, the cascade
    # detector's depletion the levels within its depth_bps of the mid, among these.
    book_depth: int = setting(10, at_least(1))
    trades_buffer: int = setting(1024, at_least(1))
    mids_buffer: int = setting(8, at_least(1))


wall_clock_ms: Final = clock.wall_ms
"""Milliseconds since the epoch (the default clock): ``mm.clock.wall_ms`` itself, read on
every book without a wrapper's call."""


class MarketFeed:
    """L2 books, trades and mids of ``coins`` from one connection; see the module docstring."""

    def __init__(
        self,
        stream: MarketStream,
        coins: Iterable[str],
        bus: BookBus,
        trades: trio.MemorySendChannel[Trade],
        *,
        config: MarketFeedConfig | None = None,
        metrics: FeedMetrics | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        now_ns: Callable[[], int] = clock.monotonic_ns,
        name: str = "market",
    ) -> None:
        self.coins: tuple[str, ...] = tuple(dict.fromkeys(coins))
        if not self.coins:
            raise ValueError("a market feed needs at least one coin")
        self.stream = stream
        self.bus = bus
        self.trades = trades
        self.config = config or MarketFeedConfig()
        self.metrics = metrics or FeedMetrics(CollectorRegistry())
        self.now_ms = now_ms
        self.now_ns = now_ns
        self.name = name
        self.quality: dict[str, BookQuality] = {
            coin: BookQuality(self.config.quality) for coin in self.coins
        }
        self.builders: dict[str, BookBuilder] = {coin: BookBuilder(coin) for coin in self.coins}
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
        self._subs: list[EventStream[Any]] = []
        self._booked: set[str] = set()  # coins with a published book since this run started
        self._all_booked = trio.Event()
        self._ready = trio.Event()
        self._trades_closed = False
        # Prometheus children, resolved once per label set (``labels()`` is not free).
        self._malformed_metric = self.metrics.malformed.labels(feed=name)
        self._dropped_metric = self.metrics.dropped.labels(feed=name)
        # Per coin: the age of its last published book (ms) when it was published, which its
        # mm_book_age_seconds child reads when scraped (set on every book, it cost a lock).
        self._age_ms: dict[str, int] = {}
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
            books, trades, mids = await self._subscribe_all()
            async with trio.open_nursery() as nursery:
                for coin in self.coins:
                    book_stream = books[coin]
                    on_gap = partial(self.on_book_gap, coin, book_stream.channel)
                    on_book = partial(self.on_book, coin, book_stream.channel)
                    nursery.start_soon(self._serve, book_stream, on_book, on_gap)
                    trade_stream = trades[coin]
                    on_trades_gap = partial(self.on_gap, trade_stream.channel)
                    nursery.start_soon(self._serve, trade_stream, self.on_trade, on_trades_gap)
                on_mids_gap = partial(self.on_gap, mids.channel)
                nursery.start_soon(self._serve, mids, self.on_mids, on_mids_gap)
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

    async def _subscribe_all(
        self,
    ) -> tuple[dict[str, EventStream[BookEvent]], dict[str, EventStream[Trade]], EventStream[Mids]]:
        """Register every subscription, concurrently (each may await the venue's ack)."""
        config, stream = self.config, self.stream
        books: dict[str, EventStream[BookEvent]] = {}
        trades: dict[str, EventStream[Trade]] = {}
        mids: list[EventStream[Mids]] = []

        async def book(coin: str) -> None:
            sub = await stream.books(coin, buffer=config.book_buffer, depth=config.book_depth)
            self._subs.append(sub)
            books[coin] = sub

        async def trade(coin: str) -> None:
            sub = await stream.trades(coin, buffer=config.trades_buffer)
            self._subs.append(sub)
            trades[coin] = sub

        async def mid() -> None:
            sub = await stream.mids(buffer=config.mids_buffer)
            self._subs.append(sub)
            mids.append(sub)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(mid)
            for coin in self.coins:
                nursery.start_soon(book, coin)
                nursery.start_soon(trade, coin)
        return books, trades, mids[0]

    async def _unsubscribe_all(self) -> None:
        subs, self._subs = self._subs, []
        if not subs:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(self.config.unsubscribe_timeout_s):
            async with trio.open_nursery() as nursery:
                for sub in subs:
                    nursery.start_soon(self.stream.unsubscribe, sub)

    def _live(self) -> bool:
        return self.stream.connected and all(sub.active for sub in self._subs)

    async def _until_ready(self) -> None:
        await self._all_booked.wait()
        while not self._live():
            await self.stream.wait_connected()
            if not self._live():  # acknowledgements still on their way
                await trio.sleep(0.01)
        self.ready = True
        self._ready.set()

    async def _announce_ready(self) -> None:
        """Past the ready timeout: say so when the feed does become ready."""
        await self._until_ready()
        logger.info("{}: ready ({})", self.name, ", ".join(self.coins))

    async def _serve(
        self,
        sub: EventStream[Any],
        handle: Callable[[Any], None],
        on_gap: Callable[[], None],
    ) -> None:
        """Hand each event of one subscription to ``handle``; markers are counted on its
        channel. A ``DirectStream`` hands them over itself, as they arrive (in the venue's
        task: no task switch per event); this task then only waits for the stream to end, or
        raises what ``handle`` raised there."""
        channel = sub.channel
        malformed = self._malformed

        def dispatch(event: Any) -> None:
            if type(event) is Gap:
                on_gap()
            elif type(event) is Malformed:
                malformed(channel, event.why)
            else:
                handle(event)

        if isinstance(sub, DirectStream):
            sub.deliver(dispatch)
        async for event in sub:
            dispatch(event)
        self._ended(sub)

    def _ended(self, sub: EventStream[Any]) -> None:
        if sub in self._subs:
            self._subs.remove(sub)  # nothing left to unsubscribe
        reason = sub.error or "stream closed"
        raise FeedError(f"{self.name}: subscription {sub.description} ended: {reason}")

    # --- events (synchronous: the hot path) -----------------------------------------------------

    def on_book(self, coin: str, channel: str, event: BookEvent) -> None:
        """One book event for ``coin``: a snapshot, or a delta of its sequence."""
        if event.coin != coin:
            self._malformed(channel, f"a {event.coin} book on the {coin} subscription")
            return
        received_ns = event.received_ns or self.now_ns()
        now = self.now_ms()
        builder = self.builders[coin]
        if isinstance(event, BookDelta):
            applied = builder.delta(event)
            if applied is Applied.GAP:
                self.on_gap(channel)
            built = builder.book(now, received_ns) if applied is Applied.APPLIED else None
            if built is None:
                return
            book = built
        else:
            builder.snapshot(event)
            # (as Book.from_snapshot, written out: one call less a book)
            book = Book(event.coin, event.time_ms, event.bids, event.asks, now, received_ns)
        quality = self.quality[coin]
        if quality.accept_usual(book, now):  # (no verdict made for the usual book)
            accepted = book
        else:
            verdict = quality.check_unusual(book, now)
            if verdict.issues:
                self._count_issues(coin, verdict.issues)
            if not verdict.accept or verdict.book is None:
                self.books_rejected += 1
                return
            accepted = verdict.book
        # Its time first: a bus listener (the strategy, as it is published) reads the coin's
        # freshness as of this book.
        self._last_book_ms[coin] = now
        self.books_published += 1
        self.bus.publish(accepted)
        ages = self._age_ms
        if coin not in ages:
            self._age_metric(coin)
        ages[coin] = now - accepted.time_ms
        booked = self._booked
        if coin not in booked:
            booked.add(coin)
            if len(booked) == len(self.coins):
                self._all_booked.set()

    def _age_metric(self, coin: str) -> None:
        """Point the coin's ``mm_book_age_seconds`` at this feed's reading (a restarted feed
        takes it over at its first book of the coin)."""
        ages = self._age_ms
        self.metrics.book_age.labels(symbol=coin).set_function(lambda: ages[coin] / 1000)

    def on_trade(self, trade: Trade) -> None:
        """One trade to the trades channel, or dropped if it is full."""
        try:
            self.trades.send_nowait(trade)
        except trio.WouldBlock:
            self._drop_trade()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if not self._trades_closed:
                self._trades_closed = True
                logger.warning("{}: the trades channel is closed; dropping trades", self.name)
            self._drop_trade()
        else:
            self.trades_forwarded += 1

    def on_mids(self, mids: Mids) -> None:
        """The latest mids replace the previous ones."""
        self.mids = mids.mids
        self.mids_received_ms = self.now_ms()

    def on_book_gap(self, coin: str, channel: str) -> None:
        """Book events of ``coin`` were dropped: a book built from deltas waits for a snapshot."""
        self.builders[coin].lose()
        self.on_gap(channel)

    def on_gap(self, channel: str) -> None:
        """Events of ``channel`` were dropped for us (we fell behind)."""
        self.gaps[channel] += 1
        logger.debug("{}: gap on {} (messages dropped while behind)", self.name, channel)

    def _drop_trade(self) -> None:
        self.trades_dropped += 1
        self._dropped_metric.inc()

    def _malformed(self, channel: str, why: object) -> None:
        self.malformed[channel] += 1
        self._malformed_metric.inc()
        logger.debug("{}: skipped a malformed {} message: {}", self.name, channel, why)

    def _count_issues(self, coin: str, issues: Iterable[Issue]) -> None:
        children = self._issue_metric
        for issue in issues:
            child = children.get((coin, issue))
            if child is None:
                child = children[(coin, issue)] = self.metrics.quality_errors.labels(
                    symbol=coin, kind=issue.value
                )
            child.inc()
