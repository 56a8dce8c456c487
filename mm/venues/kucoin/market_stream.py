"""KuCoin's market data as the venue port's ``MarketStream``, on a ``KucoinWs``.

Books. ``books(symbol)`` subscribes ``/market/level2:SYMBOL`` (increments) and keeps the
symbol's ``Level2Book`` by the venue's sync procedure: increments are buffered until the REST
full book (``snapshot(symbol)``, supplied by the caller: ``GET /api/v3/market/orderbook/level2``
parsed by ``codec.parse_level2_snapshot``) is handed over; then the stream emits a
``BookSnapshot`` with the book's sequence, and one for every increment applied after. Each is a
fresh ``BookSnapshot`` of the best ``depth`` levels (the whole book when ``depth`` is None),
never a ``BookDelta``, because:

* the consumer asks for ``depth`` levels; deltas on a book cut to ``depth`` go wrong as soon as
  a level inside the cut is removed (the one below it was never sent), so deltas would mean
  handing the consumer the whole book and having it keep and re-sort every level, as
  ``Level2Book`` does here already;
* KuCoin's increments may overlap the snapshot change by change (a change carries its own
  sequence): ``Level2Book`` applies each only when newer, which a generic delta cannot say;
* the snapshots supersede each other, so a consumer that falls behind is handed the newest book
  and never works through stale ones (as Hyperliquid's books): the output holds at most the
  latest book, with the ``Gap`` before it, and ``Malformed`` markers (at most ``buffer``).

No task switch per frame: the book task attaches to its subscription (``TopicSubscription.
attach``), so each increment is parsed and applied in the socket's receive loop as it arrives;
and the stream is the port's ``DirectStream``: after ``deliver(handle)`` every book and marker is
handed to ``handle`` there and then (the market feed's, which publishes it), nothing queued. A
``handle`` that raises stops the deliveries and iterating the stream raises that exception, in
the consumer's task; an error of the book's own code raises from ``follow``, in the book task
(the socket's receive loop never fails for either).

On a break of the sequence (``Level2Book`` answers ``GAP``), or a ``Gap`` marker from the
socket (frames dropped because this stream fell behind, or a reconnect), the stream emits
``Gap`` (the book is gone) and takes a new snapshot, then resumes with a ``BookSnapshot``.
Snapshots are taken in a task of the stream's own, never in the socket's receive loop, while
the increments keep being buffered; a snapshot that fails (the venue refuses, the answer does
not parse, the request times out) is asked again after a backoff (full jitter, doubling up to
``snapshot_backoff_cap_s``), logged as a warning: it never ends the stream. A snapshot older
than the increments it must continue is taken again at once.

Running: the book tasks need a nursery, so the stream is a child of its own: the connector runs
``KucoinWs.run`` and ``KucoinMarketStream.run`` side by side in one nursery (``await
nursery.start(ws.run)``, then ``await nursery.start(stream.run)``), and cancels both together.
``books`` raises ``RuntimeError`` while ``run`` is not running.

Trades: ``/market/match:SYMBOL`` messages as ``mm.model.Trade`` (taker side, price, size, time
in ms, ``ids.trade_id``), parsed in the consumer's task. Mids: ``/market/ticker:all`` (or, with
``mid_symbols``, ``/market/ticker:SYM,…`` for those only) kept as the latest mid per symbol
(best bid and ask); each ``Mids`` is the whole map, a new dict, built only when the consumer
takes it (messages queued meanwhile are folded in first).

How it fails: a message that does not parse comes as ``Malformed`` (a level-2 one is then a hole
in the sequence, which the next increment shows as a gap); frames the socket dropped because a
consumer fell behind come as ``Gap`` (for trades: those trades are lost; for mids: the next
ticker of each symbol mends them). A subscription the venue refuses raises
``SubscriptionRejected`` from the call (or, refused on a later connect, ends its stream with
``error`` set).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import trio
from loguru import logger

from mm import randomness
from mm.model import BookSnapshot, Mids, Trade
from mm.venues.base import BookEvent, EventStream, Gap, Malformed
from mm.venues.kucoin.codec import CodecError, parse_level2_increment, parse_match, parse_ticker
from mm.venues.kucoin.level2 import Level2Book, Outcome, Snapshot
from mm.venues.kucoin.topics import OnTopic, ParsedTopic
from mm.venues.kucoin.ws import Frame, KucoinWs, TopicSubscription
from supervisors.backoff import Backoff

__all__ = [
    "BOOK_CHANNEL",
    "MIDS_CHANNEL",
    "TRADES_CHANNEL",
    "BookStream",
    "KucoinMarketStream",
    "MidsStream",
]

BOOK_CHANNEL = "/market/level2"
TRADES_CHANNEL = "/market/match"
MIDS_CHANNEL = "/market/ticker"
ALL_LEVELS = 1 << 30

_T = TypeVar("_T")
SnapshotSource = Callable[[str], Awaitable[Snapshot]]


def _trade(frame: Frame) -> tuple[Trade]:
    return (parse_match(frame.data),)


class MidsStream(OnTopic):
    """The latest mid of every symbol the ticker subscription names, as ``Mids`` (see the
    module): the frames queued when the consumer asks are folded in at once, and one ``Mids``
    (a new dict) is built for them; markers met on the way follow it."""

    def __init__(self, sub: TopicSubscription) -> None:
        super().__init__(sub)
        self._mids: dict[str, float] = {}
        self._pending: deque[Gap | Malformed] = deque()

    def __aiter__(self) -> AsyncIterator[Mids | Gap | Malformed]:
        return self

    async def __anext__(self) -> Mids | Gap | Malformed:
        if self._pending:
            return self._pending.popleft()
        sub = self.subscription
        try:
            delivery = await sub.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        changed = False
        while True:
            if isinstance(delivery, Frame):
                changed = self._fold(delivery) or changed
            else:
                self._pending.append(delivery)
            try:
                delivery = sub.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        if changed:
            return Mids(dict(self._mids))
        return self._pending.popleft()

    def _fold(self, frame: Frame) -> bool:
        try:
            ticker = parse_ticker(frame.topic, frame.subject, frame.data)
        except CodecError as error:
            self._pending.append(Malformed(str(error)))
            return False
        mid = ticker.mid
        if mid is None:
            return self._mids.pop(ticker.symbol, None) is not None
        self._mids[ticker.symbol] = mid
        return True


class BookStream(OnTopic):
    """A symbol's book from its level-2 increments, as the port's ``EventStream`` (see the
    module). The stream's book task (``follow``) feeds it; the consumer iterates it."""

    def __init__(
        self,
        symbol: str,
        sub: TopicSubscription,
        snapshot: SnapshotSource,
        *,
        depth: int | None,
        buffer: int,
        buffer_limit: int,
        backoff: Backoff,
        rng: random.Random,
        name: str,
    ) -> None:
        super().__init__(sub)
        self.symbol = symbol
        self.depth = ALL_LEVELS if depth is None else depth
        self.buffer = buffer
        self.book = Level2Book(symbol, buffer_limit)
        self._buffer_limit = buffer_limit
        self._snapshot = snapshot
        self._backoff = backoff
        self._rng = rng
        self._name = name
        # What the consumer has not taken yet: at most a Gap, the latest book, and markers.
        self._gap: Gap | None = None
        self._latest: BookSnapshot | None = None
        self._markers: deque[Malformed] = deque()
        self._ready = trio.Event()
        self._ended = False
        self._handle: Callable[[BookEvent | Gap | Malformed], None] | None = None
        self._failure: Exception | None = None  # what ``handle`` raised, for the consumer
        self._nursery: trio.Nursery | None = None  # the book task's, for the resyncs
        self._generation = 0  # bumped whenever the book is lost: a snapshot asked before is old
        self._resyncing = False
        # Counters (``gaps``: the Gap markers this stream issued, the socket's and its own).
        self._gaps = 0
        self.resyncs = 0  # snapshots taken and applied
        self.snapshot_failures = 0
        self.conflated = 0  # books replaced by a newer one before the consumer took them
        self.markers_dropped = 0

    @property
    def gaps(self) -> int:
        return self._gaps

    # --- the consumer's side --------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[BookEvent | Gap | Malformed]:
        return self

    def deliver(self, handle: Callable[[BookEvent | Gap | Malformed], None]) -> None:
        """Hand every book and marker to ``handle`` as it is made (see the module); what waits
        for the consumer goes to it at once. Iterating then only waits for the end (or raises
        what ``handle`` raised)."""
        if self._handle is not None:
            raise trio.BusyResourceError("this book stream delivers to a handler already")
        self._handle = handle
        waiting: list[BookEvent | Gap | Malformed] = []
        if self._gap is not None:
            waiting.append(self._gap)
        waiting.extend(self._markers)
        if self._latest is not None:
            waiting.append(self._latest)
        self._gap, self._latest = None, None
        self._markers.clear()
        for event in waiting:
            self._hand(handle, event)

    def _hand(
        self,
        handle: Callable[[BookEvent | Gap | Malformed], None],
        event: BookEvent | Gap | Malformed,
    ) -> None:
        if self._failure is not None:
            return  # stopped: the consumer's task raises its failure
        try:
            handle(event)
        except Exception as exc:  # the consumer's error, for the consumer's task
            self._failure = exc
            self._wake()

    async def __anext__(self) -> BookEvent | Gap | Malformed:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._gap is not None:
                gap, self._gap = self._gap, None
                return gap
            if self._markers:
                return self._markers.popleft()
            if self._latest is not None:
                book, self._latest = self._latest, None
                return book
            if self._ended:
                raise StopAsyncIteration
            self._ready = trio.Event()
            await self._ready.wait()

    def _wake(self) -> None:
        self._ready.set()

    def _emit_book(self, received_ns: int) -> None:
        book = self.book.book(self.depth, received_ns)
        if book is None:
            return
        handle = self._handle
        if handle is not None:
            self._hand(handle, book)
            return
        if self._latest is not None:
            self.conflated += 1
        self._latest = book
        self._wake()

    def _emit_gap(self) -> None:
        self._gaps += 1
        handle = self._handle
        if handle is not None:
            self._hand(handle, Gap(trio.current_time()))
            return
        if self._gap is None:
            self._gap = Gap(trio.current_time())
        self._latest = None  # superseded: the book is gone
        self._wake()

    def _emit_malformed(self, marker: Malformed) -> None:
        handle = self._handle
        if handle is not None:
            self._hand(handle, marker)
            return
        if len(self._markers) >= self.buffer:
            self.markers_dropped += 1
            return
        self._markers.append(marker)
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    # --- the stream's task ----------------------------------------------------------------------

    async def follow(self) -> None:
        """Apply the subscription's increments until it ends, each as it arrives in the
        socket's receive loop (attached to the subscription: see the module); resync in a
        child task. Raises what applying one raised."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._resync_soon(nursery)
                self.subscription.attach(self._on_delivery)
                async for delivery in self.subscription:
                    self._on_delivery(delivery)  # (none once attached: each went there)
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._end()

    def _on_delivery(self, delivery: Frame | Gap | Malformed) -> None:
        nursery = self._nursery
        if nursery is None:
            return  # the book task is gone: so is the subscription
        if type(delivery) is Frame:
            self._increment(delivery, nursery)
        elif isinstance(delivery, Gap):
            self._lose()
            self._resync_soon(nursery)
        elif isinstance(delivery, Malformed):
            self._emit_malformed(delivery)

    def _increment(self, frame: Frame, nursery: trio.Nursery) -> None:
        try:
            increment = parse_level2_increment(frame.data)
        except CodecError as error:
            self._emit_malformed(Malformed(str(error)))
            return
        if increment.symbol != self.symbol:
            self._emit_malformed(Malformed(f"a {increment.symbol} increment on {self.symbol}"))
            return
        outcome = self.book.increment(increment)
        if outcome is Outcome.APPLIED:
            self._emit_book(frame.received_ns)
        elif outcome is Outcome.GAP:
            logger.debug("{}: {} sequence broke; resyncing", self._name, self.symbol)
            self._generation += 1  # (the book buffers again from the increment that broke it)
            self._emit_gap()
            self._resync_soon(nursery)
        elif outcome is Outcome.BUFFERED:
            self._resync_soon(nursery)

    def _lose(self) -> None:
        """Frames were lost on the socket: no book, and buffering from scratch."""
        self._generation += 1
        self.book = Level2Book(self.symbol, self._buffer_limit)
        self._emit_gap()

    def _resync_soon(self, nursery: trio.Nursery) -> None:
        if not self._resyncing and not self.book.synced:
            self._resyncing = True
            nursery.start_soon(self._resync)

    async def _resync(self) -> None:
        """Take snapshots until one continues the buffered increments."""
        attempt = 0
        try:
            while not self.book.synced:
                await self.subscription.wait_active()
                if self.subscription.closed:
                    return
                generation = self._generation
                try:
                    snapshot = await self._snapshot(self.symbol)
                except Exception as error:  # whatever the request raised: asked again later
                    self.snapshot_failures += 1
                    delay = self._backoff.delay(attempt, self._rng)
                    attempt += 1
                    logger.warning(
                        "{}: {} snapshot failed ({}: {}); again in {:.2f}s",
                        self._name,
                        self.symbol,
                        type(error).__name__,
                        error,
                        delay,
                    )
                    await trio.sleep(delay)
                    continue
                if generation != self._generation or self.book.synced:
                    continue  # the book was lost meanwhile: this snapshot is of the old one
                if self.book.snapshot(snapshot) is Outcome.SYNCED:
                    self.resyncs += 1
                    self._emit_book(0)
                    return
                # Older than the increments it must continue: take a newer one, after a pause
                # that grows if it keeps happening (a venue whose REST lags its stream).
                self._generation += 1
                await trio.sleep(self._backoff.delay(attempt, self._rng) / 10)
                attempt += 1
        finally:
            self._resyncing = False


class KucoinMarketStream:
    """Books, trades and mids of one ``KucoinWs``, typed; see the module docstring."""

    def __init__(
        self,
        ws: KucoinWs,
        snapshot: SnapshotSource,
        *,
        mid_symbols: Sequence[str] | None = None,
        increment_buffer: int = 4096,
        level2_buffer_limit: int = 10_000,
        snapshot_backoff_initial_s: float = 0.5,
        snapshot_backoff_cap_s: float = 30.0,
        rng: random.Random | None = None,
        name: str = "kucoin-market",
    ) -> None:
        self.ws = ws
        self.snapshot = snapshot
        self.mid_symbols = tuple(mid_symbols) if mid_symbols is not None else None
        self.increment_buffer = increment_buffer
        self.level2_buffer_limit = level2_buffer_limit
        self.backoff = Backoff(
            initial=snapshot_backoff_initial_s, multiplier=2.0, cap=snapshot_backoff_cap_s
        )
        self.rng = rng or randomness.generator()
        self.name = name
        self._nursery: trio.Nursery | None = None
        self.books_streams: list[BookStream] = []

    @property
    def connected(self) -> bool:
        return self.ws.connected

    async def wait_connected(self) -> None:
        await self.ws.wait_connected()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the book tasks until cancelled (see the module)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    async def books(self, symbol: str, *, buffer: int, depth: int | None = None) -> BookStream:
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError(f"{self.name}: books need the stream's run() running")
        sub = await self.ws.subscribe(
            f"{BOOK_CHANNEL}:{symbol}", private=False, buffer=max(buffer, self.increment_buffer)
        )
        stream = BookStream(
            symbol,
            sub,
            self.snapshot,
            depth=depth,
            buffer=buffer,
            buffer_limit=self.level2_buffer_limit,
            backoff=self.backoff,
            rng=self.rng,
            name=self.name,
        )
        self.books_streams.append(stream)
        nursery.start_soon(stream.follow)
        return stream

    async def trades(self, symbol: str, *, buffer: int) -> ParsedTopic[Trade]:
        sub = await self.ws.subscribe(f"{TRADES_CHANNEL}:{symbol}", private=False, buffer=buffer)
        return ParsedTopic(sub, _trade)

    async def mids(self, *, buffer: int) -> MidsStream:
        names = ",".join(self.mid_symbols) if self.mid_symbols else "all"
        sub = await self.ws.subscribe(f"{MIDS_CHANNEL}:{names}", private=False, buffer=buffer)
        return MidsStream(sub)

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        if not isinstance(stream, ParsedTopic | MidsStream | BookStream):
            raise TypeError(f"not a stream of this venue: {stream!r}")
        if isinstance(stream, BookStream) and stream in self.books_streams:
            self.books_streams.remove(stream)
        await self.ws.unsubscribe(stream.subscription)
