"""A KuCoin level-2 book kept from the venue's increments, by its sync procedure: pure state.

The ``/market/level2`` channel sends increments (``trade.l2update``): changes to price levels,
each ``[price, size, sequence]``, the message spanning ``sequenceStart`` to ``sequenceEnd``. A
full book comes only over REST (``/api/v3/market/orderbook/level2``, with its ``sequence``).
The procedure (KuCoin's documentation, "Level 2 - calibration procedure"):

1. subscribe, and buffer the increments while the book has no base (``Level2Book.increment``
   answers ``BUFFERED``);
2. take the REST snapshot (sequence S) and hand it over (``snapshot``): the book is the
   snapshot, and the buffered increments are replayed through the rule of 3;
3. an increment ending at or before the book's sequence is old news (``STALE``, dropped); one
   that continues it (``sequenceStart <= last + 1 <= sequenceEnd``) is applied, each change
   newer than the book's sequence, in order (``APPLIED``), and the book's sequence becomes its
   ``sequenceEnd``; one that starts past ``last + 1`` means increments were lost (the venue
   drops messages to a slow client): ``GAP``. The book is then no longer trusted: it is
   emptied, buffering starts again from the increment that showed the gap, and the caller
   takes a new snapshot (step 2).

A change's price ``"0"`` only advances the sequence (no level); size ``"0"`` removes the level;
any other size replaces the level's. While buffering, at most ``buffer_limit`` increments are
kept (the oldest dropped): a snapshot older than what is left then shows as a gap, and a new one
is taken, so a slow snapshot costs a retry, never a wrong book.

``top(depth)`` reads the best ``depth`` levels of each side as ``PriceLevel``s (KuCoin gives no
order count: it reads 0): each side's prices are kept sorted as levels come and go, so that is a
slice, whatever the side's size (the REST snapshot is the venue's whole book).

Fails: ``ValueError`` for an increment or snapshot of another symbol;
the numbers are parsed by the codec before they get here.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import attrs

from mm.model import BookSnapshot, PriceLevel

__all__ = ["Change", "Increment", "Level2Book", "Outcome", "Snapshot"]


class Change(NamedTuple):
    """One level's change: its price and new size (0 removes it) as floats, and its sequence.
    ``price`` None: the venue's price ``"0"``, a change that only advances the sequence. (A
    named tuple: an increment carries a dozen, each made in the socket's receive loop.)"""

    price: float | None
    size: float
    sequence: int


@attrs.frozen(slots=True)
class Increment:
    """A ``trade.l2update`` message's data."""

    symbol: str
    sequence_start: int
    sequence_end: int
    time_ms: int
    bids: tuple[Change, ...] = ()
    asks: tuple[Change, ...] = ()


@attrs.frozen(slots=True)
class Snapshot:
    """The REST full book: its sequence and levels (price, size), best first."""

    symbol: str
    sequence: int
    time_ms: int
    bids: tuple[tuple[float, float], ...] = ()
    asks: tuple[tuple[float, float], ...] = ()


class Outcome(enum.Enum):
    BUFFERED = "buffered"  # no base yet: kept for the replay
    STALE = "stale"  # at or before the book's sequence: dropped
    APPLIED = "applied"
    GAP = "gap"  # increments were lost: the book is gone, a new snapshot is needed
    SYNCED = "synced"  # a snapshot taken and the buffer replayed onto it


class Level2Book:
    """One symbol's book from its increments (see the module docstring)."""

    def __init__(self, symbol: str, buffer_limit: int = 10_000) -> None:
        if buffer_limit < 1:
            raise ValueError(f"buffer_limit must be at least 1, got {buffer_limit}")
        self.symbol = symbol
        self.sequence: int | None = None  # None: no base (buffering)
        self.time_ms = 0
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        # Each side's prices, ascending, kept with its levels: the best ``depth`` are a slice
        # (a heap over a venue's whole side, thousands of levels, took 120 us a book).
        self._bid_prices: list[float] = []
        self._ask_prices: list[float] = []
        self._buffer: deque[Increment] = deque(maxlen=buffer_limit)
        self.gaps = 0
        self.stale = 0
        self.buffer_dropped = 0

    @property
    def synced(self) -> bool:
        return self.sequence is not None

    def increment(self, increment: Increment) -> Outcome:
        self._check_symbol(increment.symbol)
        if self.sequence is None:
            if len(self._buffer) == self._buffer.maxlen:
                self.buffer_dropped += 1
            self._buffer.append(increment)
            return Outcome.BUFFERED
        return self._apply(increment, self.sequence)

    def snapshot(self, snapshot: Snapshot) -> Outcome:
        """The base: the book becomes ``snapshot`` and the buffered increments are replayed
        onto it. ``GAP`` when the replay finds one (the snapshot is older than what the buffer
        still holds, or increments were lost): buffering goes on, and another snapshot is due."""
        self._check_symbol(snapshot.symbol)
        self._bids = {price: size for price, size in snapshot.bids if size > 0}
        self._asks = {price: size for price, size in snapshot.asks if size > 0}
        self._bid_prices, self._ask_prices = sorted(self._bids), sorted(self._asks)
        self.sequence, self.time_ms = snapshot.sequence, snapshot.time_ms
        buffered, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        while buffered:
            increment = buffered.popleft()
            if self._apply(increment, self.sequence) is Outcome.GAP:
                self._buffer.extend(buffered)  # after the one that showed it, kept too
                return Outcome.GAP
        return Outcome.SYNCED

    def top(self, depth: int) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]:
        """The best ``depth`` levels of each side, best first."""
        if depth <= 0:
            return (), ()
        bid_sizes, ask_sizes = self._bids, self._asks
        return (
            tuple((price, bid_sizes[price], 0) for price in reversed(self._bid_prices[-depth:])),
            tuple((price, ask_sizes[price], 0) for price in self._ask_prices[:depth]),
        )

    def book(self, depth: int, received_ns: int = 0) -> BookSnapshot | None:
        """The port's snapshot of the best ``depth`` levels, or None while there is no base."""
        if self.sequence is None:
            return None
        bids, asks = self.top(depth)
        return BookSnapshot(self.symbol, self.time_ms, bids, asks, self.sequence, received_ns)

    def _apply(self, increment: Increment, last: int) -> Outcome:
        if increment.sequence_end <= last:
            self.stale += 1
            return Outcome.STALE
        if increment.sequence_start > last + 1:
            self.gaps += 1
            self._lose(increment)
            return Outcome.GAP
        _change(self._bids, self._bid_prices, increment.bids, last)
        _change(self._asks, self._ask_prices, increment.asks, last)
        self.sequence = increment.sequence_end
        self.time_ms = max(self.time_ms, increment.time_ms)
        return Outcome.APPLIED

    def _lose(self, increment: Increment) -> None:
        """No longer a base: emptied, and buffering again from ``increment``."""
        self.sequence = None
        self._bids, self._asks = {}, {}
        self._bid_prices, self._ask_prices = [], []
        self._buffer.clear()
        self._buffer.append(increment)

    def _check_symbol(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise ValueError(f"a {symbol} book message for the {self.symbol} book")


def _change(
    levels: dict[float, float], prices: list[float], changes: Iterable[Change], last: int
) -> None:
    """``changes`` applied to one side: its levels, and its ``prices`` kept sorted with them."""
    for price, size, sequence in changes:
        if sequence <= last or price is None:
            continue  # in the base already, or a change of the sequence alone
        if size == 0:
            if levels.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        else:
            if price not in levels:
                insort(prices, price)
            levels[price] = size
